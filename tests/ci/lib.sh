# Shared by the CI integration tests (tests/ci/test_*.sh): a temporary job with a real
# small build (a C file compiled into out/), a policy protecting src/ and out/, an
# outsider that writes src/main.c while the build runs, and checks that print what
# they saw before failing. Sourced by bash scripts; exit 0 passes, 77 skips.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BW_BIN=${BW_BIN:-$top/build/buildwarden}
case $BW_BIN in /*) ;; *) BW_BIN=$top/$BW_BIN ;; esac

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the job runs the sensor (buildwarden run and agent): it needs root"
	exit 77
fi
[ -x "$BW_BIN" ] || { echo "FAIL: no binary at $BW_BIN (make build/buildwarden)"; exit 1; }

tmp=$(mktemp -d /tmp/bw-ci.XXXXXX)
outsider_pid=
cleanup() {
	# only what this test started, by pid
	[ -n "$outsider_pid" ] && kill "$outsider_pid" 2>/dev/null
	if [ -f "$tmp/job/runner-temp/buildwarden/agent.pid" ]; then
		kill -KILL "$(cat "$tmp/job/runner-temp/buildwarden/agent.pid")" 2>/dev/null
	fi
	if [ -f "$tmp/job/bw/agent.pid" ]; then
		kill -KILL "$(cat "$tmp/job/bw/agent.pid")" 2>/dev/null
	fi
	[ -n "${BW_CI_KEEP:-}" ] && { echo "kept: $tmp"; return; }
	rm -rf "$tmp"
}
trap cleanup EXIT

failed=0
fail() {
	echo "FAIL: $*"
	failed=1
}
# check DESCRIPTION COMMAND...: runs COMMAND, a failure is reported with DESCRIPTION
check() {
	local what=$1
	shift
	if "$@"; then echo "ok: $what"; else fail "$what"; fi
}
has() { grep -qF -- "$2" "$1"; }
lacks() { ! grep -qF -- "$2" "$1"; }

# new_job NAME: a fresh workspace at $tmp/job with the project and its policy
new_job() {
	rm -rf "$tmp/job"
	ws=$tmp/job/ws
	mkdir -p "$ws/src" "$ws/out" "$ws/.github" "$ws/bin"
	cat >"$ws/src/main.c" <<'C'
#include <stdio.h>
int main(void) { puts("hello"); return 0; }
C
	printf 'out/app: src/main.c\n\tcc -O0 -o out/app src/main.c\n' >"$ws/Makefile"
	# the agent-mode build root: a copy of the shell, an inode of its own
	cp /bin/dash "$ws/bin/buildsh"
	cat >"$ws/.github/buildwarden.yaml" <<YAML
version: 1
mode: audit
protect:
  - path: $ws/src
  - path: $ws/out
build_roots:
  - exe: $ws/bin/buildsh
YAML
	mkfifo "$tmp/job/go" "$tmp/job/done"
}

# start_outsider: a process of this test (not of the build) that waits for the
# build's "go", appends to src/main.c, and answers "done"
start_outsider() {
	(read -r _ <"$tmp/job/go"; echo '/* planted */' >>"$ws/src/main.c"; echo done >"$tmp/job/done") &
	outsider_pid=$!
}
# what the build runs to let the outsider act while it is still running
handshake() { echo "echo go > $tmp/job/go && cat $tmp/job/done > /dev/null"; }

finish() {
	if [ "$failed" -ne 0 ]; then
		echo "FAIL: $(basename "$0")"
		exit 1
	fi
	echo "PASS: $(basename "$0")"
	exit 0
}
