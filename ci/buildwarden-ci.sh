#!/bin/sh
# buildwarden in a CI job, for any CI: the GitHub action (action.yml, ci/github/) and the
# GitLab template (ci/gitlab/) call this with their own variables mapped to the ones below.
#
#   buildwarden-ci.sh start        start `buildwarden agent` in the background for the job
#   buildwarden-ci.sh stop         stop it (SIGTERM by pid, wait), then `report`
#   buildwarden-ci.sh run CMD...   run CMD as the build under `buildwarden run`, then `report`
#   buildwarden-ci.sh report       the reports, the summary, and the verdict per BW_FAIL_ON
#   buildwarden-ci.sh check        exit 1 when the verdict is "fail" (after the upload)
#
# Environment:
#   BW_CI_DIR       where events, reports, logs and state go (required; created)
#   BW_POLICY       the policy file (start, run; required there)
#   BW_FAIL_ON      violations (default: a violation or an incomplete run fails, since a
#                   run that lost events cannot vouch for the build) | incomplete | never
#   BW_SUMMARY      a file the markdown summary is appended to (GitHub's step summary)
#   BW_SOURCE_ROOT  the checkout, so SARIF paths are relative to it
#   BUILDWARDEN     the binary (default: `buildwarden` on PATH)
#   BW_SUDO         how root commands are run (default: sudo -E when not root, else nothing)
#   BW_START_TIMEOUT seconds `start` waits for the agent to be ready (default 60)
#   BW_STOP_TIMEOUT  seconds `stop` waits for the agent to end after SIGTERM (default 120)
#   BW_RUN_AS       uid:gid the build runs as under `run` (default: the caller's, so a
#                   build started through sudo does not become root's; nothing as root)
#
# Exit status: 0; 1 on a failure of this script (it says what) or a failed check; `run`
# exits with the build's own status when the build failed.
set -eu

say() { printf 'buildwarden-ci: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

: "${BW_CI_DIR:?BW_CI_DIR must name a directory for the events and reports}"
BW=${BUILDWARDEN:-buildwarden}
FAIL_ON=${BW_FAIL_ON:-violations}
case $FAIL_ON in
violations | incomplete | never) ;;
*) die "fail-on '$FAIL_ON' is not violations, incomplete or never" ;;
esac
if [ -z "${BW_SUDO+set}" ]; then
	if [ "$(id -u)" -eq 0 ]; then BW_SUDO=; else BW_SUDO="sudo -E"; fi
fi
EVENTS=$BW_CI_DIR/events.pb.gz

need_bw() {
	command -v "$BW" >/dev/null 2>&1 || [ -x "$BW" ] ||
		die "no buildwarden binary ('$BW'): install the package or set BUILDWARDEN"
}

need_policy() {
	[ -n "${BW_POLICY:-}" ] || die "no policy: set the policy input (BW_POLICY)"
	[ -f "$BW_POLICY" ] || die "policy '$BW_POLICY' not found"
	# a bad policy is refused here, before the build starts, with FILE:LINE:COL
	$BW_SUDO "$BW" policy check "$BW_POLICY" >&2 || die "policy '$BW_POLICY' is not valid"
}

alive() { kill -0 "$1" 2>/dev/null; }

cmd_start() {
	need_bw
	need_policy
	mkdir -p "$BW_CI_DIR"
	if [ -f "$BW_CI_DIR/agent.pid" ] && alive "$(cat "$BW_CI_DIR/agent.pid")"; then
		die "an agent is already running for this job (pid $(cat "$BW_CI_DIR/agent.pid"))"
	fi
	rm -f "$EVENTS" "$BW_CI_DIR/verdict"
	: >"$BW_CI_DIR/agent.log"
	# Its own session: the agent outlives this step and is stopped by pid in `stop`.
	# (With sudo the pid is sudo's, which relays SIGTERM to the agent.)
	setsid $BW_SUDO "$BW" agent --policy "$BW_POLICY" --events "$EVENTS" \
		</dev/null >>"$BW_CI_DIR/agent.log" 2>&1 &
	pid=$!
	echo "$pid" >"$BW_CI_DIR/agent.pid"
	waited=0
	limit=$((${BW_START_TIMEOUT:-60} * 5))
	until grep -q 'agent running' "$BW_CI_DIR/agent.log"; do
		if ! alive "$pid"; then
			cat "$BW_CI_DIR/agent.log" >&2
			die "the agent exited before it was ready (log above)"
		fi
		waited=$((waited + 1))
		[ "$waited" -le "$limit" ] || die "the agent was not ready after ${BW_START_TIMEOUT:-60} s"
		sleep 0.2
	done
	say "agent running (pid $pid), events in $EVENTS"
}

cmd_stop() {
	[ -f "$BW_CI_DIR/agent.pid" ] || die "no agent was started for this job ($BW_CI_DIR/agent.pid)"
	pid=$(cat "$BW_CI_DIR/agent.pid")
	if alive "$pid"; then
		kill -TERM "$pid"
		waited=0
		limit=$((${BW_STOP_TIMEOUT:-120} * 5))
		while alive "$pid"; do
			waited=$((waited + 1))
			if [ "$waited" -gt "$limit" ]; then
				say "the agent did not end ${BW_STOP_TIMEOUT:-120} s after SIGTERM: killing it"
				kill -KILL "$pid" 2>/dev/null || true
				break
			fi
			sleep 0.2
		done
	else
		say "the agent (pid $pid) had already exited: the events may end without runEnd"
	fi
	rm -f "$BW_CI_DIR/agent.pid"
	cat "$BW_CI_DIR/agent.log" >&2 || true
	cmd_report
}

cmd_run() {
	[ $# -gt 0 ] || die "run needs a command"
	need_bw
	need_policy
	mkdir -p "$BW_CI_DIR"
	rm -f "$EVENTS" "$BW_CI_DIR/verdict"
	run_as=${BW_RUN_AS:-}
	if [ -z "$run_as" ] && [ -n "$BW_SUDO" ]; then
		run_as="$(id -u):$(id -g)"
	fi
	if [ -n "$run_as" ]; then
		# setpriv runs inside the build (a descendant of `run`'s root), then drops to the
		# job's user with its groups: the build's files stay the job's
		set -- setpriv --reuid="${run_as%%:*}" --regid="${run_as##*:}" --init-groups -- "$@"
	fi
	set +e
	$BW_SUDO "$BW" run --policy "$BW_POLICY" --events "$EVENTS" -- "$@"
	status=$?
	set -e
	echo "$status" >"$BW_CI_DIR/build.status"
	cmd_report
	# 77 is buildwarden's "violations or incomplete": the verdict (BW_FAIL_ON) decides.
	# Any other failure is the build's own.
	if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
		say "the build failed with status $status"
		exit "$status"
	fi
}

cmd_report() {
	need_bw
	[ -f "$EVENTS" ] || {
		echo "fail: no events file: the agent never wrote one" >"$BW_CI_DIR/verdict"
		die "no events file $EVENTS"
	}
	set -- ${BW_SOURCE_ROOT:+--source-root "$BW_SOURCE_ROOT"}
	# The reports are written even from a corrupt file (status 65): they say so.
	$BW_SUDO "$BW" report --format markdown -o "$BW_CI_DIR/summary.md" "$EVENTS" || true
	$BW_SUDO "$BW" report --format html -o "$BW_CI_DIR/report.html" "$EVENTS" || true
	$BW_SUDO "$BW" report --format sarif "$@" -o "$BW_CI_DIR/report.sarif" "$EVENTS" || true
	set +e
	$BW_SUDO "$BW" report --format markdown --fail-on "$FAIL_ON" "$EVENTS" >/dev/null 2>&1
	rc=$?
	set -e
	case $rc in
	0) verdict=pass ;;
	77) verdict="fail: violations or an incomplete run (fail-on: $FAIL_ON)" ;;
	65) [ "$FAIL_ON" = never ] && verdict=pass || verdict="fail: the events file is corrupt" ;;
	*) verdict="fail: the report could not be made (status $rc)" ;;
	esac
	echo "$verdict" >"$BW_CI_DIR/verdict"
	# the verdict for later jobs (GitLab's dotenv report): one KEY=value a line
	{
		case $verdict in pass) echo "BUILDWARDEN_VERDICT=pass" ;; *) echo "BUILDWARDEN_VERDICT=fail" ;; esac
		echo "BUILDWARDEN_REASON=$verdict"
	} >"$BW_CI_DIR/buildwarden.env"
	# the artifact upload runs as the job's user: the agent's files are root's, 0640
	if [ -n "$BW_SUDO" ]; then
		$BW_SUDO chown -R "$(id -u):$(id -g)" "$BW_CI_DIR" || true
	fi
	if [ -f "$BW_CI_DIR/summary.md" ]; then
		cat "$BW_CI_DIR/summary.md"
		if [ -n "${BW_SUMMARY:-}" ]; then
			cat "$BW_CI_DIR/summary.md" >>"$BW_SUMMARY"
		fi
	fi
	say "verdict: $verdict (reports in $BW_CI_DIR)"
}

cmd_check() {
	[ -f "$BW_CI_DIR/verdict" ] || die "no verdict: stop (or run) did not finish"
	verdict=$(cat "$BW_CI_DIR/verdict")
	case $verdict in
	pass) say "passed (fail-on: $FAIL_ON)" ;;
	*) die "$verdict" ;;
	esac
}

[ $# -gt 0 ] || die "usage: buildwarden-ci.sh start|stop|run CMD...|report|check"
sub=$1
shift
case $sub in
start) cmd_start ;;
stop) cmd_stop ;;
run) cmd_run "$@" ;;
report) cmd_report ;;
check) cmd_check ;;
*) die "unknown subcommand '$sub' (start, stop, run, report, check)" ;;
esac
