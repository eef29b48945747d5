#!/bin/bash
# Runs the README's quick start literally from a clean clone of HEAD (committed work
# only): every line of the code blocks under "## Quick start", as written, in a fresh
# login-like environment, then checks what the README promises about each: `make`
# built build/buildwarden, `run` exited 0 after building the demo and wrote the events
# file, `decode` printed it as JSON lines from runStart to runEnd with the build's execs
# and its writes to out/. Needs root (the sensor; `make deps` runs apt-get).
# Exit 0 passed, 1 failed, 77 skipped (the reason is printed).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
STEP_TIMEOUT=${QUICKSTART_STEP_TIMEOUT:-300}

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the quick start loads the sensor and installs packages: it needs root"
	exit 77
fi
if ! git -C "$top" rev-parse --verify -q HEAD >/dev/null; then
	echo "SKIP: $top is not a git checkout: nothing to clone"
	exit 77
fi

tmp=$(mktemp -d /tmp/bw-quickstart.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
clone="$tmp/buildwarden"
fail() {
	echo "FAIL: $*"
	exit 1
}

start=$(date +%s)
git clone --quiet --no-hardlinks "$top" "$clone" || fail "git clone $top"
echo "clone of $(git -C "$clone" rev-parse --short HEAD) in $clone"

# The commands: lines of ```sh blocks between "## Quick start" and the next "## ",
# with backslash continuations joined.
mapfile -t cmds < <(python3 - "$clone/README.md" <<'EOF'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
inside = block = False
cmd = ""
for line in lines:
    if line.startswith("## "):
        inside = line.strip().lower() == "## quick start"
        continue
    if not inside:
        continue
    if line.startswith("```"):
        block = not block and line.strip() in ("```sh", "```bash", "```shell")
        continue
    if block and line.strip() and not line.lstrip().startswith("#"):
        cmd += line.rstrip()
        if cmd.endswith("\\"):
            cmd = cmd[:-1] + " "
        else:
            print(cmd.strip())
            cmd = ""
EOF
)
[ "${#cmds[@]}" -gt 0 ] || fail "no commands in the README's quick start"

# What each line is, known before any runs: a line this test has no promise for fails
# here instead of being run (it could be anything, `make test` included).
kind() {
	case $1 in
	*"make deps"*) echo build ;;
	*"buildwarden run "*) echo run ;;
	*"buildwarden decode "*) echo decode ;;
	*) echo unknown ;;
	esac
}
order=""
for cmd in "${cmds[@]}"; do
	k=$(kind "$cmd")
	[ "$k" != unknown ] || fail "\`$cmd\`: a quick-start command this test does not know what to expect of"
	order="$order $k"
done
[ "$order" = " build run decode" ] ||
	fail "the quick start must build (make deps && make), run the demo, then decode it; it does:$order"

# As a user's fresh shell would run them: no make or test variables of ours. `sudo` as
# written when it exists; as root without it, a function that runs the command.
prelude='command -v sudo >/dev/null 2>&1 || sudo() { "$@"; }'
for i in "${!cmds[@]}"; do
	cmd=${cmds[$i]}
	out="$tmp/step$i.out" err="$tmp/step$i.err"
	t0=$(date +%s)
	echo "\$ $cmd"
	(cd "$clone" && timeout -k 10 "$STEP_TIMEOUT" env -i PATH="$PATH" HOME="${HOME:-/root}" LANG=C.UTF-8 \
		TERM=dumb DEBIAN_FRONTEND=noninteractive bash -c "$prelude; $cmd") >"$out" 2>"$err" </dev/null
	rc=$?
	echo "  exit $rc after $(($(date +%s) - t0)) s"
	if [ "$rc" -ne 0 ]; then
		echo "---- stdout (tail):"; tail -20 "$out"
		echo "---- stderr (tail):"; tail -40 "$err"
		fail "\`$cmd\` exited $rc, the README promises 0"
	fi
	case $(kind "$cmd") in
	build)
		[ -x "$clone/build/buildwarden" ] || fail "\`$cmd\` did not build build/buildwarden"
		;;
	run)
		events=$(sed -n 's/.*--events \([^ ]*\).*/\1/p' <<<"$cmd")
		[ -n "$events" ] || fail "\`$cmd\` names no --events file"
		[ -s "$clone/$events" ] || fail "\`$cmd\` left no events file $events"
		[ -x "$clone/examples/demo/out/app" ] || fail "\`$cmd\` did not build examples/demo/out/app"
		grep -q "violations: 0" "$err" || { tail -20 "$err"; fail "\`$cmd\`: no \"violations: 0\" in the summary"; }
		;;
	decode)
		python3 - "$out" <<'EOF' || fail "\`$cmd\` does not print what the README promises"
import json, sys
out = sys.argv[1]
evs = []
for n, line in enumerate(open(out, encoding="utf-8"), 1):
    try:
        evs.append(json.loads(line))
    except ValueError as e:
        sys.exit("line %d is not JSON (%s): %.200s" % (n, e, line))
def has(ev, body):
    return body in ev
problems = []
if not evs or not has(evs[0], "runStart"):
    problems.append("the first event is not runStart")
if not evs or not has(evs[-1], "runEnd"):
    problems.append("the last event is not runEnd")
if not any(has(e, "stats") for e in evs):
    problems.append("no stats event")
execs = [e["exec"].get("filename", "") for e in evs if has(e, "exec")]
if not any(f.endswith("/make") for f in execs):
    problems.append("no exec of make: %s" % execs)
if sum(f.endswith("/cc") for f in execs) < 3:
    problems.append("not an exec of cc per object and for the link: %s" % execs)
written = {e["file"]["path"] for e in evs if has(e, "file")}
for obj in ("main.o", "greet.o", "app"):
    if not any(p.endswith("/examples/demo/out/" + obj) for p in written):
        problems.append("no file event for out/%s: %s" % (obj, sorted(written)))
if any(e.get("verdict", {}).get("violation") for e in evs):
    problems.append("a violation in the demo build")
for p in problems:
    print("  " + p)
print("  %d events, %d execs, %d files written" % (len(evs), len(execs), len(written)))
sys.exit(1 if problems else 0)
EOF
		;;
	esac
done
echo "quick start ok in $(($(date +%s) - start)) s"
