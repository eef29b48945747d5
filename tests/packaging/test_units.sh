#!/bin/bash
# The systemd units in packaging/: `systemd-analyze verify` finds nothing wrong, and
# `systemd-analyze security --offline=yes` scores each below its bound. Works on unit
# files alone: systemd need not be PID 1. Skips (77) without systemd-analyze.
#
# The bounds (0 = fully sandboxed, 10 = nothing): the agent is root with
# CAP_SYS_ADMIN, sees the host's network, /home and /tmp and every process, because
# watching builds is exactly that (packaging/buildwarden-agent.service says why per
# line); everything it can give up it gives up, which scores 3.5. The collector needs
# nothing but TCP and its state directory and scores 1.1. A bound 0.5 above each: a
# change that gives back a whole capability, a namespace or a filter group fails here.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-build}
AGENT_MAX=${AGENT_MAX:-4.0}
COLLECTOR_MAX=${COLLECTOR_MAX:-1.6}

if ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: no systemd-analyze (Debian's systemd package) on this host"
	exit 77
fi
bin=$(realpath "$OUT/buildwarden" 2>/dev/null)
if [ ! -x "$bin" ]; then
	echo "FAIL: $OUT/buildwarden is not built"
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

for unit in buildwarden-agent buildwarden-collector; do
	# as installed (make install, the .deb), the binary at its real path so verify
	# can check ExecStart
	sed -e "s|@PREFIX@/bin/buildwarden|$bin|g" -e "s|@PREFIX@|/usr|g" \
		"packaging/$unit.service" >"$work/$unit.service"
	if ! out=$(systemd-analyze verify --man=no "$work/$unit.service" 2>&1) || [ -n "$out" ]; then
		echo "FAIL: systemd-analyze verify $unit.service:"
		echo "$out"
		fail=1
	fi
	score=$(systemd-analyze security --offline=yes "$work/$unit.service" 2>&1 |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	max=$AGENT_MAX
	[ "$unit" = buildwarden-collector ] && max=$COLLECTOR_MAX
	if [ -z "$score" ]; then
		echo "FAIL: no exposure score for $unit.service:"
		systemd-analyze security --offline=yes "$work/$unit.service" 2>&1 | tail -5
		fail=1
	elif awk -v s="$score" -v m="$max" 'BEGIN { exit !(s > m) }'; then
		echo "FAIL: $unit.service exposure $score > $max; what it leaves open:"
		systemd-analyze security --offline=yes "$work/$unit.service" 2>&1 | grep '✗'
		fail=1
	else
		echo "ok: $unit.service exposure $score (bound $max), verify clean"
	fi
done
# what the issue asked of the agent's unit, by name
for want in 'Type=notify' 'SuccessExitStatus=77' 'Before=gitlab-runner.service' 'ProtectSystem=strict' \
	'NoNewPrivileges=yes' 'SystemCallArchitectures=native' '--events-max-size'; do
	if ! grep -q -- "$want" packaging/buildwarden-agent.service; then
		echo "FAIL: packaging/buildwarden-agent.service lacks $want"
		fail=1
	fi
done
exit $fail
