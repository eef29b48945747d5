#!/usr/bin/env python3
"""Checks the one-way include rules of docs/architecture.md ("Who may include whom").

Every `#include` in user/<part>/, bpf/ and include/ is classified by what it names:
a part ("policy/policy.h"), the ABI ("sensor_abi.h"), the schema ("*.pb-c.h"), the
BPF skeleton ("sensor.skel.h") or libbpf (<bpf/...>). An include of another part or
layer that the table below does not allow is reported as FILE:LINE with the rule, and
the exit status is 1. A folder under user/ with no row in the table is an error too,
so a new part cannot slip in without deciding what it may use.

usage: scripts/check-layers.py [--root DIR]   (DIR defaults to the repository root)
"""
import os
import re
import sys

# part -> what it may include besides itself. Keep in step with docs/architecture.md.
RULES = {
    "base": set(),
    "policy": {"base"},
    "transport": {"schema", "base"},
    "pipeline": {"policy", "ABI", "schema", "base"},
    "sensor": {"policy", "ABI", "skeleton", "libbpf", "base"},
    "collector": {"transport", "schema", "base"},
    "agent": {"sensor", "pipeline", "transport", "policy", "ABI", "schema", "base"},
    # everything except the skeleton: only the sensor builds against the BPF object
    "cli": {"agent", "collector", "sensor", "pipeline", "transport", "policy", "base",
            "ABI", "schema", "libbpf"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def rule_text(part):
    allowed = sorted(RULES[part])
    return "%s -> %s" % (part, ", ".join(allowed) if allowed else "nothing")


def classify(name, quoted, src_dir, user):
    """What an include names: a layer, a part, None (not ours) or "?"."""
    base = os.path.basename(name)
    if base == "sensor_abi.h":
        return "ABI"
    if base.endswith(".pb-c.h"):
        return "schema"
    if base == "sensor.skel.h":
        return "skeleton"
    here = os.path.join(src_dir, name)
    if quoted and os.path.exists(here):
        # found next to the includer, as the compiler looks first: the part it lands in
        rel = os.path.relpath(os.path.realpath(here), os.path.realpath(user))
        return rel.split(os.sep, 1)[0] if not rel.startswith("..") and os.sep in rel else "?"
    first = name.split("/", 1)[0]
    if "/" in name and os.path.isdir(os.path.join(user, first)):
        return first
    if not quoted:
        return "libbpf" if first == "bpf" and "/" in name else None
    return "?"


def sources(root, folder):
    top = os.path.join(root, folder)
    for d, _, files in os.walk(top):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                yield os.path.join(d, f)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as fp:
        for n, line in enumerate(fp, 1):
            m = INCLUDE.match(line)
            if m:
                yield n, m.group(1) == '"', m.group(2)


def spelled(quoted, name):
    return '"%s"' % name if quoted else "<%s>" % name


def check_user(root, errors):
    user = os.path.join(root, "user")
    user_parts = sorted(d for d in os.listdir(user) if os.path.isdir(os.path.join(user, d)))
    for part in user_parts:
        if part not in RULES:
            errors.append("user/%s/: a part with no rule in scripts/check-layers.py (and "
                          "docs/architecture.md): say what it may include" % part)
            continue
        for path in sources(root, os.path.join("user", part)):
            rel = os.path.relpath(path, root)
            for n, quoted, name in includes(path):
                what = classify(name, quoted, os.path.dirname(path), user)
                if what is None or what == part:
                    continue
                if what == "?":
                    errors.append("%s:%d: %s is not a part, the ABI, the schema or the "
                                  "skeleton (write part/file.h)" % (rel, n, spelled(quoted, name)))
                elif what not in RULES[part]:
                    errors.append("%s:%d: %s must not include %s (%s): rule %s"
                                  % (rel, n, part, spelled(quoted, name), what, rule_text(part)))


def check_kernel_side(root, errors):
    """bpf/ may include only bpf/ and include/; include/ (the ABI) nothing of ours."""
    search = {
        "bpf": ["bpf/include", "bpf", "include"],
        "include": ["include"],
    }
    allowed = {"bpf": ("bpf", "include"), "include": ("include",)}
    for folder, dirs in search.items():
        for path in sources(root, folder):
            rel = os.path.relpath(path, root)
            for n, quoted, name in includes(path):
                if not quoted:
                    # system and libbpf headers; but not ours through <...>
                    if name.split("/", 1)[0] in RULES or name.endswith((".pb-c.h", ".skel.h")):
                        errors.append("%s:%d: %s must not include <%s>: rule %s -> %s"
                                      % (rel, n, folder, name, folder,
                                         ", ".join(allowed[folder])))
                    continue
                cands = [os.path.join(os.path.dirname(path), name)]
                cands += [os.path.join(root, d, name) for d in dirs]
                hit = next((c for c in cands if os.path.exists(c)), None)
                where = os.path.relpath(os.path.realpath(hit), os.path.realpath(root)) if hit else None
                if where is None or where.split(os.sep, 1)[0] not in allowed[folder]:
                    errors.append('%s:%d: %s must not include "%s" (%s): rule %s -> %s'
                                  % (rel, n, folder, name, where or "not found in " + ", ".join(dirs),
                                     folder, ", ".join(allowed[folder])))


def main(argv):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    if len(argv) == 3 and argv[1] == "--root":
        root = argv[2]
    elif len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 64
    errors = []
    check_user(root, errors)
    check_kernel_side(root, errors)
    for e in errors:
        print("check-layers: " + e, file=sys.stderr)
    if errors:
        print("check-layers: %d include(s) cross the one-way rules (docs/architecture.md)"
              % len(errors), file=sys.stderr)
        return 1
    print("check-layers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
