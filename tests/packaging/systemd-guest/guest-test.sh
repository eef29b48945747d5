#!/bin/bash
# Runs inside test_systemd.sh's guest, as the oneshot bw-systemd-test.service under the
# root's real systemd (PID 1), after the package's buildwarden-agent.service started at
# boot. Each check prints one line on the console the host parses:
#   BWSD-CHECK <name> ok|FAIL <detail>
# then BWSD-DONE and a poweroff. A failed check also prints the unit's status and journal.
set -u
export LC_ALL=C SYSTEMD_PAGER='' SYSTEMD_COLORS=0
AGENT=buildwarden-agent.service
COLLECTOR=buildwarden-collector.service
EVENTS=/var/lib/buildwarden/events.pb.gz
PROTECTED=/srv/bw-protected
# a copy of dash: the policy's build root (by inode, so not /bin/sh itself)
RUNNER=/usr/local/lib/bw-systemd-test/fake-runner

check() { # name ok|FAIL detail...
	local name=$1 res=$2
	shift 2
	echo "BWSD-CHECK $name $res $*"
	echo "BWSD-TIME $name $(cut -d' ' -f1 /proc/uptime)"
}
diag() { # unit: its state and journal, on a failure
	echo "--- systemctl status $1"
	systemctl status --no-pager --full -n 0 "$1" 2>&1 | sed 's/^/BWSD-LOG /'
	echo "--- journalctl -u $1"
	journalctl --no-pager -o short-monotonic -u "$1" 2>&1 | tail -60 | sed 's/^/BWSD-LOG /'
}
prop() { systemctl show -P "$2" "$1"; }
wait_for() { # seconds, command...: until the command succeeds
	local n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 1
		n=$((n - 1))
	done
	return 1
}
# decode a finished events file and look for the planted file's name
events_name() { # file name
	buildwarden decode "$1" 2>/dev/null | grep -q -- "$2"
}

echo "BWSD-BEGIN $(uname -r) systemd $(systemctl --version | head -1 | cut -d' ' -f2)"

# 1. the package enabled the agent: it started at boot, and Type=notify means active
#    only after READY=1 (the sensor attached)
state=$(prop $AGENT ActiveState)
if [ "$state" = active ]; then
	check boot-active ok "started at boot, $(prop $AGENT ExecMainPID) is the agent"
else
	check boot-active FAIL "ActiveState=$state Result=$(prop $AGENT Result) ExecMainStatus=$(prop $AGENT ExecMainStatus)"
	diag $AGENT
	# the rest needs a running agent: try once more by hand, to see the failure again
	systemctl start $AGENT
fi

# 2. the sensor works under the sandbox: a write into the protected tree by a process
#    that is not the build shows up in the events (checked after the stop below)
planted=planted-$$-$RANDOM
echo x >"$PROTECTED/$planted"
# 3. SIGHUP (systemctl reload) reopens the events file: move it away, reload, a new
#    file appears at the path. The write above is in the moved file or, when the agent
#    had not read it yet at the reload, in the new one: no wait for it, which would
#    race under load; the stop drains the sensor, so after it one of the two has it.
moved=
if [ -e $EVENTS ]; then
	mv $EVENTS $EVENTS.moved
	moved=$EVENTS.moved
	if systemctl reload $AGENT && wait_for 30 test -e $EVENTS; then
		check reload-reopens ok "a new $EVENTS after systemctl reload"
	else
		check reload-reopens FAIL "no new $EVENTS 30 s after systemctl reload"
		diag $AGENT
	fi
else
	check reload-reopens FAIL "no $EVENTS while the agent runs"
	ls -la /var/lib/buildwarden 2>&1 | sed 's/^/BWSD-LOG /'
	diag $AGENT
fi

# 4. a stop after a violation: exit 77, which SuccessExitStatus=77 makes a clean stop
#    (inactive, Result=success, not restarted)
systemctl stop $AGENT
st=$(prop $AGENT ExecMainStatus) state=$(prop $AGENT ActiveState) res=$(prop $AGENT Result)
if [ "$st" = 77 ] && [ "$state" = inactive ] && [ "$res" = success ]; then
	check stop-violation-77 ok "ExecMainStatus=77 ActiveState=inactive Result=success"
else
	check stop-violation-77 FAIL "ExecMainStatus=$st ActiveState=$state Result=$res (want 77 inactive success)"
	diag $AGENT
fi
if { [ -n "$moved" ] && events_name $moved "$planted"; } || events_name $EVENTS "$planted"; then
	check sensor-write ok "the write of $PROTECTED/$planted is in the events"
else
	check sensor-write FAIL "no event names $PROTECTED/$planted"
	for f in $moved $EVENTS; do buildwarden decode $f 2>&1 | tail -10 | sed 's/^/BWSD-LOG /'; done
	diag $AGENT
fi

# 5. systemctl start by hand: active (READY=1) in time; the start took how long
t0=$(date +%s%N)
if systemctl start $AGENT; then
	t1=$(date +%s%N)
	if [ "$(prop $AGENT ActiveState)" = active ] && [ "$(prop $AGENT StatusErrno)" = 0 ]; then
		check start-active ok "active $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s after systemctl start"
	else
		check start-active FAIL "ActiveState=$(prop $AGENT ActiveState)"
		diag $AGENT
	fi
else
	check start-active FAIL "systemctl start exited $?: Result=$(prop $AGENT Result) ExecMainStatus=$(prop $AGENT ExecMainStatus)"
	diag $AGENT
fi

# 6. a stop with nothing recorded against the policy: exit 0, inactive
systemctl stop $AGENT
st=$(prop $AGENT ExecMainStatus) state=$(prop $AGENT ActiveState) res=$(prop $AGENT Result)
if [ "$st" = 0 ] && [ "$state" = inactive ] && [ "$res" = success ]; then
	check stop-clean ok "ExecMainStatus=0 ActiveState=inactive Result=success"
else
	check stop-clean FAIL "ExecMainStatus=$st ActiveState=$state Result=$res (want 0 inactive success)"
	diag $AGENT
fi
# the sandbox takes no guard away: the guards the agent chose under the unit (its stop
# summary, in the journal) are those `buildwarden run` chooses unconfined, as root here
guards() { sed -n '/guards on this host:/,$p' | sed 1d | grep '^    ' | sed 's/^ *//'; }
confined=$(journalctl --no-pager -o cat -u $AGENT _SYSTEMD_INVOCATION_ID="$(prop $AGENT InvocationID)" | guards)
unconfined=$(buildwarden run --policy /etc/buildwarden/policy.yaml -- true 2>&1 | guards)
if [ -n "$confined" ] && [ "$confined" = "$unconfined" ]; then
	check guards-unconfined ok "$(printf '%s\n' "$confined" | wc -l) guard lines, the same as unconfined"
else
	check guards-unconfined FAIL "the guards under the unit differ from buildwarden run's unconfined:"
	diff <(printf '%s\n' "$unconfined") <(printf '%s\n' "$confined") | sed 's/^/BWSD-LOG /'
fi
# the restarted agent appended to the new events file, which ends with a runEnd
if buildwarden decode $EVENTS 2>/dev/null | grep -q '"runEnd"'; then
	check events-complete ok "$EVENTS decodes and ends its runs"
else
	check events-complete FAIL "$EVENTS does not decode to a runEnd"
	buildwarden decode $EVENTS 2>&1 | tail -5 | sed 's/^/BWSD-LOG /'
fi

# 7. enforce mode under the sandbox, with a build root in a service's cgroup (as a
#    runner's): the build's write to the protected tree goes through, an outsider's is
#    stopped, an exec from /tmp is killed; the agent stops with 77 (violations)
cat >/etc/buildwarden/policy.yaml <<POLICY
version: 1
mode: enforce
protect:
  - path: $PROTECTED
build_roots:
  - exe: $RUNNER
    cgroup: /system.slice/bw-fake-runner.service
exec:
  scope: host
  deny: [/tmp]
POLICY
rm -f $EVENTS
if systemctl start $AGENT; then
	check enforce-start ok "active in enforce mode"
else
	check enforce-start FAIL "Result=$(prop $AGENT Result) ExecMainStatus=$(prop $AGENT ExecMainStatus)"
	diag $AGENT
fi
# the runner's service: the root's exec waits until the agent has resolved the
# service's cgroup (once a second; it logs the id), as a runner's job comes long after
# its service started
agent_inv=$(prop $AGENT InvocationID)
systemd-run --quiet --remain-after-exit --unit=bw-fake-runner /bin/sh -c \
	"while [ ! -e /run/bw-go ]; do sleep 0.2; done; exec $RUNNER -c 'echo build >$PROTECTED/by-build'"
resolved() {
	journalctl --no-pager -o cat -u $AGENT _SYSTEMD_INVOCATION_ID="$agent_inv" |
		grep -q "build root cgroup '/system.slice/bw-fake-runner.service' is id"
}
wait_for 60 resolved || echo "BWSD-LOG the agent did not log the runner's cgroup id in 60 s"
touch /run/bw-go
runner_done() { [ "$(prop bw-fake-runner.service SubState)" != running ]; }
wait_for 60 runner_done
rc=$(prop bw-fake-runner.service ExecMainStatus)
if [ "$rc" = 0 ] && [ "$(cat $PROTECTED/by-build 2>/dev/null)" = build ]; then
	check enforce-build-write ok "the build root's write went through"
else
	check enforce-build-write FAIL "the runner exited $rc; $PROTECTED/by-build: $(cat $PROTECTED/by-build 2>&1)"
	diag $AGENT
fi
sh -c "echo outsider >$PROTECTED/by-outsider" 2>/dev/null
rc=$?
if [ "$(cat $PROTECTED/by-outsider 2>/dev/null)" != outsider ]; then
	check enforce-outsider-write ok "stopped (sh exited $rc, nothing written)"
else
	check enforce-outsider-write FAIL "the outsider's write landed (sh exited $rc)"
	diag $AGENT
fi
cp /bin/true /tmp/bw-denied-exec
/tmp/bw-denied-exec 2>/dev/null
rc=$?
if [ $rc -ne 0 ]; then
	check enforce-exec-deny ok "an exec from /tmp was stopped (exit $rc)"
else
	check enforce-exec-deny FAIL "an exec from /tmp ran (exit 0)"
	diag $AGENT
fi
systemctl stop $AGENT
st=$(prop $AGENT ExecMainStatus) res=$(prop $AGENT Result)
ev=$(buildwarden decode $EVENTS 2>&1)
if [ "$st" = 77 ] && [ "$res" = success ] &&
	printf '%s\n' "$ev" | grep by-build | grep -q '"ALLOWED"' &&
	printf '%s\n' "$ev" | grep by-outsider | grep -qE '"(DENIED|KILLED)"'; then
	check enforce-events ok "exit 77; the build's write ALLOWED, the outsider's stopped, in the events"
else
	check enforce-events FAIL "ExecMainStatus=$st Result=$res; events naming the writes:"
	printf '%s\n' "$ev" | grep -E 'by-build|by-outsider|bw-denied-exec' | cut -c1-600 | sed 's/^/BWSD-LOG /'
	diag $AGENT
fi

# 8. the collector (not enabled by the package: it needs the TLS files, placed here by
#    the test image) starts as its dynamic user and listens
if systemctl start $COLLECTOR && wait_for 60 bash -c 'exec 3<>/dev/tcp/127.0.0.1/7400' 2>/dev/null; then
	check collector-active ok "active, listening on 127.0.0.1:7400 as $(prop $COLLECTOR ExecMainPID)"
else
	check collector-active FAIL "ActiveState=$(prop $COLLECTOR ActiveState) Result=$(prop $COLLECTOR Result)"
	diag $COLLECTOR
fi
# 9. the agent as the README tells an operator to extend it (a drop-in): events to the
#    collector over mutual TLS, and the enroll socket at its default path
#    /run/buildwarden/enroll.sock for a runner's job hook (docs/runners.md)
TLS=/etc/buildwarden/collector
mkdir -p /etc/systemd/system/$AGENT.d
cat >/etc/systemd/system/$AGENT.d/transport.conf <<DROPIN
[Service]
ExecStart=
ExecStart=/usr/bin/buildwarden agent --policy /etc/buildwarden/policy.yaml --events $EVENTS \
	--enroll-socket /run/buildwarden/enroll.sock --collector bw-systemd-test:7400 \
	--tls-cert $TLS/tls-cert.pem --tls-key $TLS/tls-key.pem --tls-ca $TLS/tls-client-ca.pem
DROPIN
cat >/etc/buildwarden/policy.yaml <<POLICY
version: 1
mode: audit
protect:
  - path: $PROTECTED
POLICY
systemctl daemon-reload
if systemctl start $AGENT; then
	check transport-start ok "active with the collector transport and the enroll socket"
else
	check transport-start FAIL "Result=$(prop $AGENT Result) ExecMainStatus=$(prop $AGENT ExecMainStatus)"
	diag $AGENT
fi
agent_inv=$(prop $AGENT InvocationID)
# what the agent may write in /run: its own directory (the enroll socket), nothing else
mounts=$(awk '$5 == "/run" || $5 == "/run/buildwarden" { print $5, $6 }' /proc/"$(prop $AGENT MainPID)"/mountinfo)
if printf '%s\n' "$mounts" | grep -q '^/run ro,' && printf '%s\n' "$mounts" | grep -q '^/run/buildwarden rw,'; then
	check run-readonly ok "/run read-only for the agent, /run/buildwarden writable"
else
	check run-readonly FAIL "the agent's /run mounts: $(printf '%s; ' $mounts)"
fi
run_id=$(journalctl --no-pager -o cat -u $AGENT _SYSTEMD_INVOCATION_ID="$agent_inv" |
	sed -n 's/.*agent running (run \([0-9a-f]*\)).*/\1/p' | head -1)
sleep 600 &
job=$!
if out=$(buildwarden enroll --pid $job 2>&1); then
	check enroll ok "buildwarden enroll --pid $job: $out"
else
	check enroll FAIL "buildwarden enroll --pid $job exited $?: $out"
	ls -la /run/buildwarden 2>&1 | sed 's/^/BWSD-LOG /'
	diag $AGENT
fi
kill $job
wait $job 2>/dev/null
sent=sent-$$-$RANDOM
echo x >"$PROTECTED/$sent"
# no wait: the stop drains the sensor, then delivers to the collector
systemctl stop $AGENT
st=$(prop $AGENT ExecMainStatus)
if [ -n "$run_id" ] && [ "$st" = 77 ] &&
	buildwarden query --db /var/lib/buildwarden-collector/events.db --run "$run_id" 2>&1 | grep -q -- "$sent"; then
	check collector-received ok "run $run_id in the collector's database with the write of $sent"
else
	check collector-received FAIL "ExecMainStatus=$st, run '$run_id': not in the collector's database with $sent"
	buildwarden query --db /var/lib/buildwarden-collector/events.db --runs 2>&1 | tail -5 | sed 's/^/BWSD-LOG /'
	diag $AGENT
	diag $COLLECTOR
fi
rm -rf /etc/systemd/system/$AGENT.d
systemctl daemon-reload

systemctl stop $COLLECTOR
res=$(prop $COLLECTOR Result) state=$(prop $COLLECTOR ActiveState)
if [ "$res" = success ] && [ "$state" = inactive ]; then
	check collector-stop ok "Result=success ExecMainStatus=$(prop $COLLECTOR ExecMainStatus)"
else
	check collector-stop FAIL "ActiveState=$state Result=$res ExecMainStatus=$(prop $COLLECTOR ExecMainStatus)"
	diag $COLLECTOR
fi

# 10. the exposure score systemd itself gives the units as loaded here
for u in $AGENT $COLLECTOR; do
	score=$(systemd-analyze security --no-pager $u 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [ -n "$score" ]; then
		check "security-$u" ok "$score"
	else
		check "security-$u" FAIL "no score"
		systemd-analyze security --no-pager $u 2>&1 | tail -5 | sed 's/^/BWSD-LOG /'
	fi
done
# the ordering before the runners' services, as systemd loaded it
if prop $AGENT Before | grep -qw gitlab-runner.service; then
	check order-before-runner ok "Before=$(prop $AGENT Before)"
else
	check order-before-runner FAIL "Before=$(prop $AGENT Before)"
fi

# 11. a purge under systemd: the units stopped and gone, and nothing of theirs
#     left, what systemd made for them too (StateDirectory=, the collector's dynamic
#     user's /var/lib/private/, RuntimeDirectory=). /etc/buildwarden stays while the
#     collector's TLS files, which the operator put there, are in it (dpkg says so).
systemctl start $AGENT
# dpkg, not apt-get: the same maintainer scripts, without apt's 20 s of cache under TCG
dpkg --purge buildwarden >/tmp/purge.log 2>&1
rc=$?
systemctl daemon-reload
left=$(ls -d /var/lib/buildwarden /var/lib/buildwarden-collector /var/lib/private/buildwarden-collector \
	/run/buildwarden /etc/buildwarden/policy.yaml /lib/systemd/system/buildwarden-agent.service \
	/lib/systemd/system/buildwarden-collector.service \
	/etc/systemd/system/multi-user.target.wants/buildwarden-agent.service 2>/dev/null | tr '\n' ' ')
if [ $rc -eq 0 ] && [ -z "$left" ] && [ "$(prop $AGENT LoadState)" = not-found ] && ! pgrep -x buildwarden >/dev/null 2>&1; then
	check purge ok "dpkg --purge: units stopped and gone, nothing left"
else
	check purge FAIL "dpkg --purge exited $rc; left: ${left:-none}; agent LoadState=$(prop $AGENT LoadState)"
	sed 's/^/BWSD-LOG /' /tmp/purge.log | tail -20
fi
echo "BWSD-DONE"
systemctl --no-block poweroff
