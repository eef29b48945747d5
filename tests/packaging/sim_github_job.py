#!/usr/bin/python3
"""Runs one job of a GitHub Actions workflow the way a runner does, inside a chroot.

    sim_github_job.py --root ROOT --workflow FILE --job NAME --action USES=DIR
                      --workspace DIR --temp DIR --artifacts HOSTDIR --summary HOSTFILE
                      [--env K=V ...]

Paths but --artifacts and --summary are inside ROOT. What a runner does and this does:
each step is a file run by `bash --noprofile --norc -eo pipefail` in the workspace,
with the runner's variables (GITHUB_*, RUNNER_TEMP, CI) and a fresh GITHUB_OUTPUT,
GITHUB_ENV and GITHUB_STEP_SUMMARY file of its own; what a step writes to GITHUB_ENV is in
the environment of the steps after it, its outputs are `steps.ID.outputs.KEY`, its
summary is appended to the job's. `uses:` of the action named by --action runs that
action.yml's composite steps (inputs from `with:` over their defaults, GITHUB_ACTION_PATH
set); actions/upload-artifact copies its path to HOSTDIR/NAME. `if:` is evaluated (the
default is success(): no step before has failed). ${{ }} expressions: inputs, steps,
runner.temp, github.workspace, env; always(), success(), failure(); == != && || ! and
parentheses. Anything else is refused, loudly: this must not pass for what it does not do.

Prints the job log; exits 0 when the job succeeded, 1 when it failed, 2 on a bad input.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

import yaml

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class Bad(Exception):
    pass


# ---- expressions --------------------------------------------------------------------
TOKEN = re.compile(r"\s*(?:(\|\||&&|==|!=|!|\(|\)|\.)|'((?:[^']|'')*)'|([A-Za-z_][A-Za-z0-9_-]*))")


def tokens(text):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise Bad("cannot read the expression %r at %d" % (text, pos))
        if m.group(1):
            out.append(("op", m.group(1)))
        elif m.group(2) is not None:
            out.append(("str", m.group(2).replace("''", "'")))
        else:
            out.append(("name", m.group(3)))
        pos = m.end()
    return out


class Expr:
    def __init__(self, text, ctx):
        self.t, self.i, self.ctx, self.text = tokens(text), 0, ctx, text

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self, value=None):
        tok = self.peek()
        if tok[0] is None or (value is not None and tok[1] != value):
            raise Bad("expected %r in %r" % (value, self.text))
        self.i += 1
        return tok

    def value(self):
        v = self.or_()
        if self.i != len(self.t):
            raise Bad("trailing tokens in %r" % self.text)
        return v

    def or_(self):
        v = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            r = self.and_()
            v = v if truthy(v) else r
        return v

    def and_(self):
        v = self.cmp()
        while self.peek() == ("op", "&&"):
            self.take()
            r = self.cmp()
            v = r if truthy(v) else v
        return v

    def cmp(self):
        v = self.unary()
        while self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            r = self.unary()
            v = (str(v).lower() == str(r).lower()) == (op == "==")
        return v

    def unary(self):
        if self.peek() == ("op", "!"):
            self.take()
            return not truthy(self.unary())
        if self.peek() == ("op", "("):
            self.take()
            v = self.or_()
            self.take(")")
            return v
        kind, val = self.take()
        if kind == "str":
            return val
        if kind != "name":
            raise Bad("unexpected %r in %r" % (val, self.text))
        if self.peek() == ("op", "("):
            self.take()
            self.take(")")
            if val not in ("always", "success", "failure"):
                raise Bad("function %s() is not simulated" % val)
            return {"always": True, "success": not self.ctx["failed"],
                    "failure": self.ctx["failed"]}[val]
        path = [val]
        while self.peek() == ("op", "."):
            self.take()
            path.append(self.take()[1])
        return lookup(self.ctx, path, self.text)


def truthy(v):
    return v not in (None, "", False, 0)


def lookup(ctx, path, text):
    if path[0] not in ("inputs", "steps", "runner", "github", "env"):
        raise Bad("context %s in %r is not simulated" % (path[0], text))
    v = ctx[path[0]]
    for p in path[1:]:
        v = v.get(p, "") if isinstance(v, dict) else ""
    return v


def substitute(text, ctx):
    def one(m):
        v = Expr(m.group(1), ctx).value()
        return "" if v is None else ("true" if v is True else "false" if v is False else str(v))
    return re.sub(r"\$\{\{(.*?)\}\}", one, str(text))


def condition(cond, ctx):
    if cond is None:
        return not ctx["failed"]
    cond = str(cond).strip()
    if cond.startswith("${{") and cond.endswith("}}"):
        cond = cond[3:-2]
    # GitHub adds success() && to a condition without a status function
    v = truthy(Expr(cond, ctx).value())
    if not re.search(r"\b(always|failure|success|cancelled)\s*\(", cond):
        v = v and not ctx["failed"]
    return v


# ---- steps --------------------------------------------------------------------------
class Job:
    def __init__(self, a):
        self.a = a
        self.root = a.root
        self.env = dict(kv.split("=", 1) for kv in a.env)
        self.failed = False
        self.n = 0
        os.makedirs(self.host(a.temp), exist_ok=True)
        os.makedirs(self.host(a.workspace), exist_ok=True)
        os.makedirs(a.artifacts, exist_ok=True)
        open(a.summary, "w").close()
        self.actions = dict(x.split("=", 1) for x in a.action)

    def host(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def log(self, text):
        sys.stdout.write(text)
        sys.stdout.flush()

    def ctx(self, steps, inputs):
        return {"failed": self.failed, "steps": steps, "inputs": inputs,
                "runner": {"temp": self.a.temp}, "github": {"workspace": self.a.workspace},
                "env": self.env}

    def shell_step(self, name, script, step_env, extra):
        """Runs one bash step; returns (ok, outputs)."""
        self.n += 1
        d = "%s/_runner_file_commands/%d" % (self.a.temp, self.n)
        os.makedirs(self.host(d), exist_ok=True)
        files = {k: "%s/%s" % (d, k.lower()) for k in
                 ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY", "GITHUB_PATH")}
        for f in files.values():
            open(self.host(f), "w").close()
        with open(self.host(d + "/step.sh"), "w") as f:
            f.write(script if script.endswith("\n") else script + "\n")
        env = {"PATH": PATH, "LC_ALL": "C", "HOME": "/root", "CI": "true",
               "GITHUB_ACTIONS": "true", "RUNNER_TEMP": self.a.temp,
               "GITHUB_WORKSPACE": self.a.workspace}
        env.update(self.env)
        env.update(files)
        env.update(extra)
        env.update({k: str(v) for k, v in step_env.items()})
        argv = ["chroot", self.root, "/usr/bin/env", "-i", "-C", self.a.workspace]
        argv += ["%s=%s" % kv for kv in env.items()]
        argv += ["bash", "--noprofile", "--norc", "-eo", "pipefail", d + "/step.sh"]
        self.log("##[group]%s\n" % name)
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.log(p.stdout.decode("utf-8", "replace"))
        self.log("##[endgroup] %s exit %d\n" % (name, p.returncode))
        outputs = {}
        text = open(self.host(files["GITHUB_OUTPUT"])).read().splitlines()
        it = iter(text)
        for line in it:
            if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
                k, eof = line.split("<<", 1)
                body = []
                for b in it:
                    if b == eof:
                        break
                    body.append(b)
                outputs[k] = "\n".join(body)
            elif "=" in line:
                k, v = line.split("=", 1)
                outputs[k] = v
        for line in open(self.host(files["GITHUB_ENV"])).read().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                self.env[k] = v
            elif line.strip():
                raise Bad("GITHUB_ENV line %r is not simulated" % line)
        with open(self.a.summary, "a") as out:
            out.write(open(self.host(files["GITHUB_STEP_SUMMARY"])).read())
        return p.returncode == 0, outputs

    def upload(self, with_, ctx):
        name = substitute(with_.get("name", "artifact"), ctx)
        src = self.host(substitute(with_["path"], ctx).strip())
        dst = os.path.join(self.a.artifacts, name)
        self.log("##[group]upload-artifact %s\n" % name)
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
            self.log("uploaded %s\n" % " ".join(sorted(os.listdir(src))))
        elif with_.get("if-no-files-found", "warn") == "error":
            self.log("##[error]no files at %s\n" % src)
            return False
        else:
            self.log("##[warning]no files at %s\n" % src)
        self.log("##[endgroup]\n")
        return True

    def steps(self, steps, inputs, extra, label):
        """Runs a list of steps (the job's, or a composite action's)."""
        done = {}
        for i, s in enumerate(steps):
            ctx = self.ctx(done, inputs)
            name = s.get("name") or s.get("id") or "%s step %d" % (label, i + 1)
            if not condition(s.get("if"), ctx):
                self.log("(skipped: %s)\n" % name)
                continue
            outputs, ok = {}, True
            if "run" in s:
                if s.get("shell", "bash") != "bash":
                    raise Bad("shell %r is not simulated" % s.get("shell"))
                env = {k: substitute(v, ctx) for k, v in (s.get("env") or {}).items()}
                ok, outputs = self.shell_step(name, substitute(s["run"], ctx), env, extra)
            elif str(s.get("uses", "")).startswith("actions/upload-artifact@"):
                ok = self.upload(s.get("with") or {}, ctx)
            elif s.get("uses") in self.actions:
                with_ = {k: substitute(v, ctx) for k, v in (s.get("with") or {}).items()}
                ok, outputs = self.action(self.actions[s["uses"]], with_)
            else:
                raise Bad("step %r is neither run nor a simulated uses" % name)
            if s.get("id"):
                done[s["id"]] = {"outputs": outputs, "outcome": "success" if ok else "failure"}
            if not ok:
                self.failed = True
                self.log("##[error]%s failed\n" % name)
        return done

    def action(self, path, with_):
        spec = yaml.safe_load(open(self.host(path + "/action.yml")))
        if spec["runs"]["using"] != "composite":
            raise Bad("%s is not a composite action" % path)
        inputs = {}
        for k, v in (spec.get("inputs") or {}).items():
            inputs[k] = with_.pop(k, str(v.get("default", "")))
        if with_:
            raise Bad("inputs %s are not the action's" % ", ".join(with_))
        before = self.failed
        self.failed = False
        done = self.steps(spec["runs"]["steps"], inputs, {"GITHUB_ACTION_PATH": path}, path)
        ok = not self.failed
        ctx = self.ctx(done, inputs)
        outputs = {k: substitute(v.get("value", ""), ctx) for k, v in (spec.get("outputs") or {}).items()}
        self.failed = before
        return ok, outputs


def main():
    p = argparse.ArgumentParser()
    for o in ("root", "workflow", "job", "workspace", "temp", "artifacts", "summary"):
        p.add_argument("--" + o, required=True)
    p.add_argument("--action", action="append", default=[])
    p.add_argument("--env", action="append", default=[])
    a = p.parse_args()
    try:
        job = Job(a)
        wf = yaml.safe_load(open(job.host(a.workflow)))
        j = wf["jobs"][a.job]
        job.env.update({k: str(v) for k, v in (wf.get("env") or {}).items()})
        job.env.update({k: str(v) for k, v in (j.get("env") or {}).items()})
        job.steps(j["steps"], {}, {}, a.job)
    except (Bad, KeyError, OSError, yaml.YAMLError) as e:
        print("sim_github_job: %s" % e, file=sys.stderr)
        return 2
    print("job %s: %s" % (a.job, "failure" if job.failed else "success"))
    return 1 if job.failed else 0


if __name__ == "__main__":
    sys.exit(main())
