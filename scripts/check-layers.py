#!/usr/bin/env python3
"""Checks the one-way include rules of docs/architecture.md ("Who may include whom").

Every `#include` in user/<part>/, bpf/ and include/ is classified by what it names:
a part ("policy/policy.h"), the ABI ("sensor_abi.h"), the schema ("*.pb-c.h"), the
BPF skeleton ("sensor.skel.h") or libbpf (<bpf/...>). An include of another part or
layer that the table below does not allow is reported as FILE:LINE with the rule, and
the exit status is 1. A folder under user/ with no row in the table is an error too,
so a new part cannot slip in without deciding what it may use.

Besides the table, in user/:
- a name with ".." in it (or an absolute one) is an error: "transport/../sensor/x.h"
  would pass as transport and land in sensor;
- the skeleton and libbpf only in user/sensor/*.c: sensor headers are included by
  agent and cli, and the Makefile makes only sensor objects wait for the skeleton;
- a private header (*_priv.h, *_int.h, *_internal.h) only in its own part;
and everywhere, `#include MACRO` is an error: what it names cannot be checked.

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
    "report": {"transport", "schema", "base"},
    # draft policies: learn one from events files, replay events against one
    "draft": {"policy", "ABI", "transport", "schema", "base"},
    "agent": {"sensor", "pipeline", "transport", "policy", "ABI", "schema", "base"},
    # everything but the skeleton and libbpf: only the sensor builds against them
    "cli": {"agent", "collector", "report", "draft", "sensor", "pipeline", "transport", "policy",
            "base", "ABI", "schema"},
}

# A part allowed these may include them from its .c files only: its headers are
# included by other parts, which would then need them to build.
C_ONLY = {"skeleton", "libbpf"}

# include/: the structs and the network decision shared by kernel and agent
ABI_HEADERS = ("sensor_abi.h", "netmatch.h")

PRIVATE_SUFFIXES = ("_priv.h", "_int.h", "_internal.h")

DIRECTIVE = re.compile(r'^\s*#\s*include\b\s*(.*?)\s*$')
LITERAL = re.compile(r'([<"])([^>"]+)[>"]')


def rule_text(part):
    allowed = sorted(RULES[part])
    return "%s -> %s" % (part, ", ".join(allowed) if allowed else "nothing")


def part_of(path, user):
    """The part a file under user/ belongs to (after symlinks), or None outside."""
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(user))
    if rel.startswith(".." + os.sep) or rel == ".." or os.sep not in rel:
        return None
    return rel.split(os.sep, 1)[0]


def classify(name, quoted, src_dir, user):
    """What a normalised include names: a layer, a part, None (not ours) or "?"."""
    base = os.path.basename(name)
    if base in ABI_HEADERS:
        return "ABI"
    if base.endswith(".pb-c.h"):
        return "schema"
    if base == "sensor.skel.h":
        return "skeleton"
    here = os.path.join(src_dir, name)
    if quoted and os.path.exists(here):
        # found next to the includer, as the compiler looks first: the part it lands in
        return part_of(here, user) or "?"
    first = name.split("/", 1)[0]
    if "/" in name and os.path.isdir(os.path.join(user, first)):
        # through -Iuser: where the file really is (after symlinks), else its folder
        there = os.path.join(user, name)
        return (part_of(there, user) or "?") if os.path.exists(there) else first
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
    """(line, quoted, name) per #include; quoted is None when it names no literal file."""
    with open(path, encoding="utf-8", errors="replace") as fp:
        for n, line in enumerate(fp, 1):
            m = DIRECTIVE.match(line)
            if not m:
                continue
            lit = LITERAL.match(m.group(1))
            if lit:
                yield n, lit.group(1) == '"', lit.group(2)
            else:
                yield n, None, m.group(1).split("//", 1)[0].split("/*", 1)[0].strip()


def spelled(quoted, name):
    return '"%s"' % name if quoted else "<%s>" % name


def not_literal(rel, n, text):
    return ('%s:%d: #include %s does not name a file ("file.h" or <file.h>): the check '
            "cannot see what it includes" % (rel, n, text))


def climbs(name, quoted, src_dir, user):
    """Why a name that leaves its own folder is refused, or None when it does not."""
    if name.startswith("/"):
        return "is an absolute path: write part/file.h"
    if ".." not in name.split("/"):
        return None
    here = os.path.join(src_dir, name)
    lands = os.path.normpath(here if quoted and os.path.exists(here) else os.path.join(user, name))
    rel = os.path.relpath(lands, user)
    if rel == ".." or rel.startswith(".." + os.sep):
        return 'climbs out of user/ with "..": include it by its own name'
    return 'uses "..", which hides the part it lands in: write "%s"' % rel.replace(os.sep, "/")


def private_to(name):
    return os.path.basename(name).endswith(PRIVATE_SUFFIXES)


def check_include(part, rel, n, quoted, name, src_dir, user):
    """The error for one include in user/<part>/, or None."""
    if quoted is None:
        return not_literal(rel, n, name)
    why = climbs(name, quoted, src_dir, user)
    if why:
        return "%s:%d: %s %s" % (rel, n, spelled(quoted, name), why)
    name = os.path.normpath(name).replace(os.sep, "/")
    what = classify(name, quoted, src_dir, user)
    if what is None:
        return None
    if what == "?":
        return ("%s:%d: %s is not a part, the ABI, the schema or the skeleton (write "
                "part/file.h)" % (rel, n, spelled(quoted, name)))
    if what != part and what not in RULES[part]:
        return ("%s:%d: %s must not include %s (%s): rule %s"
                % (rel, n, part, spelled(quoted, name), what, rule_text(part)))
    if what in C_ONLY and not rel.endswith(".c"):
        return ("%s:%d: %s header must not include %s (%s): only user/%s/*.c may, as agent "
                "and cli include %s headers (declare the struct instead)"
                % (rel, n, part, spelled(quoted, name), what, part, part))
    if what != part and private_to(name):
        return ("%s:%d: %s must not include %s: it is private to %s"
                % (rel, n, part, spelled(quoted, name), what))
    return None


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
                e = check_include(part, rel, n, quoted, name, os.path.dirname(path), user)
                if e:
                    errors.append(e)


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
                if quoted is None:
                    errors.append(not_literal(rel, n, name))
                    continue
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
