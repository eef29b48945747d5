#!/bin/bash
# The GitHub action's scripts (action.yml, ci/github/) run as the runner would run
# them: GITHUB_* and RUNNER_TEMP in a temporary job, a real small build, and the
# summary, outputs, uploaded files and exit status checked. `run` mode with a planted
# outside write (the job fails, the summary names it), the same build clean (passes),
# fail-on never, agent mode (start ... build step ... stop), and a bad policy.
. "$(dirname "$0")/lib.sh"

action=$top/ci/github
# the action's wiring: each script it names exists, and the upload comes before the check
check "action.yml names the scripts" bash -c "for s in setup start run stop check; do
	grep -q \"ci/github/\$s.sh\" '$top/action.yml' && [ -x '$action/'\$s.sh ] || exit 1; done"
check "upload before the check" bash -c "awk '/upload-artifact/{u=NR} /check.sh/{c=NR} END{exit !(u && c && u < c)}' '$top/action.yml'"

# job_env: the runner's variables for the current job
job_env() {
	export RUNNER_TEMP=$tmp/job/runner-temp GITHUB_WORKSPACE=$ws
	export GITHUB_STEP_SUMMARY=$tmp/job/step_summary.md GITHUB_ENV=$tmp/job/github_env
	export GITHUB_OUTPUT=$tmp/job/github_output GITHUB_ACTION_PATH=$top
	export BW_POLICY=.github/buildwarden.yaml BW_FAIL_ON=${1:-violations}
	export GITHUB_ACTIONS=true GITHUB_REPOSITORY=acme/widget GITHUB_SHA=0123abcd
	export GITHUB_RUN_ID=1234 GITHUB_JOB=build GITHUB_SERVER_URL=https://github.example
	mkdir -p "$RUNNER_TEMP"
	: >"$GITHUB_STEP_SUMMARY"
	: >"$GITHUB_ENV"
	: >"$GITHUB_OUTPUT"
	unset BUILDWARDEN
	# the workflow gives the binary (the setup step's other branches install the package)
	BUILDWARDEN=$BW_BIN sh "$action/setup.sh" || fail "setup.sh"
	# what GitHub does with GITHUB_ENV between steps
	set -a
	. "$GITHUB_ENV"
	set +a
}

t0=$(date +%s)
echo "== run mode, an outsider writes src/main.c during the build"
new_job
job_env violations
check "setup put the binary in GITHUB_ENV" has "$GITHUB_ENV" "BUILDWARDEN=$BW_BIN"
start_outsider
BW_RUN="make -C $ws && $(handshake)" sh "$action/run.sh" >"$tmp/job/run.log" 2>&1
rc=$?
check "run.sh: the build itself succeeded (status $rc)" test "$rc" -eq 0
sh "$action/check.sh" >"$tmp/job/check.log" 2>&1
rc=$?
check "check.sh fails the job (status $rc)" test "$rc" -ne 0
check "the failure says why" has "$tmp/job/check.log" "::error title=buildwarden::fail: violations"
check "summary: violations" has "$GITHUB_STEP_SUMMARY" "## buildwarden: violations"
check "summary: one violation" has "$GITHUB_STEP_SUMMARY" "### Violations (1)"
check "summary: the CI job (runStart.ci)" has "$GITHUB_STEP_SUMMARY" 'CI: github acme\/widget \@ 0123abcd\, job build\, run 1234\, https\:\/\/github\.example\/acme\/widget\/actions\/runs\/1234'
check "summary: the file" has "$GITHUB_STEP_SUMMARY" 'src\/main\.c'
check "summary: the outsider" has "$GITHUB_STEP_SUMMARY" 'outside the build\)'
check "summary: the build's own writes are listed" has "$GITHUB_STEP_SUMMARY" 'out\/app'
check "output verdict" grep -q '^verdict=fail' "$GITHUB_OUTPUT"
for f in events.pb.gz report.html report.sarif summary.md; do
	check "upload dir has $f" test -s "$RUNNER_TEMP/buildwarden/$f"
done
check "the report log is in the job log" has "$tmp/job/run.log" "### Violations (1)"
[ "$failed" -eq 0 ] || { cat "$tmp/job/run.log" "$tmp/job/check.log"; }

echo "== run mode, the same build with nobody outside"
new_job
job_env violations
BW_RUN="make -C $ws" sh "$action/run.sh" >"$tmp/job/run.log" 2>&1
check "run.sh passes" test $? -eq 0
sh "$action/check.sh" >"$tmp/job/check.log" 2>&1
check "check.sh passes" test $? -eq 0
check "summary: clean" has "$GITHUB_STEP_SUMMARY" "## buildwarden: no violation, run complete"
check "output verdict pass" grep -q '^verdict=pass' "$GITHUB_OUTPUT"
check "the build's output exists" test -x "$ws/out/app"
[ "$failed" -eq 0 ] || { cat "$tmp/job/run.log" "$tmp/job/check.log" "$GITHUB_STEP_SUMMARY"; }

echo "== run mode as the job's user (BW_RUN_AS, the default when the runner is not root)"
new_job
chown -R 65534:65534 "$ws"
chmod 755 "$tmp" "$tmp/job"
job_env violations
BW_RUN_AS=65534:65534 BW_RUN="make -C $ws" sh "$action/run.sh" >"$tmp/job/run.log" 2>&1
check "run.sh passes" test $? -eq 0
check "the build's output is the job user's, not root's" test "$(stat -c %u "$ws/out/app" 2>/dev/null)" = 65534
check "summary: clean" has "$GITHUB_STEP_SUMMARY" "## buildwarden: no violation, run complete"
[ "$failed" -eq 0 ] || { cat "$tmp/job/run.log"; }

echo "== run mode, a failing build fails the step with its own status"
new_job
job_env violations
BW_RUN="exit 3" sh "$action/run.sh" >"$tmp/job/run.log" 2>&1
rc=$?
check "run.sh exits with the build's status (got $rc)" test "$rc" -eq 3
check "the summary is still written" has "$GITHUB_STEP_SUMMARY" "## buildwarden:"

echo "== fail-on never: the violation is reported, the job passes"
new_job
job_env never
start_outsider
BW_RUN="make -C $ws && $(handshake)" sh "$action/run.sh" >"$tmp/job/run.log" 2>&1
check "run.sh passes" test $? -eq 0
sh "$action/check.sh" >"$tmp/job/check.log" 2>&1
check "check.sh passes under fail-on never" test $? -eq 0
check "summary still lists it" has "$GITHUB_STEP_SUMMARY" "### Violations (1)"

echo "== agent mode: start, a build step, an outside write, stop"
new_job
job_env violations
sh "$action/start.sh" >"$tmp/job/start.log" 2>&1
check "start.sh" test $? -eq 0
if [ -f "$RUNNER_TEMP/buildwarden/agent.pid" ]; then
	agent=$(cat "$RUNNER_TEMP/buildwarden/agent.pid")
	check "the agent runs after start.sh returned" kill -0 "$agent"
	# the job's build step: the policy's build root runs make
	(cd "$ws" && "$ws/bin/buildsh" -c "make -C $ws") >"$tmp/job/build.log" 2>&1
	check "build step" test $? -eq 0
	# another step, outside the build
	sh -c "echo '/* planted */' >> $ws/src/main.c"
	sh "$action/stop.sh" >"$tmp/job/stop.log" 2>&1
	check "stop.sh" test $? -eq 0
	check "the agent is gone" bash -c "! kill -0 $agent 2>/dev/null"
	sh "$action/check.sh" >"$tmp/job/check.log" 2>&1
	check "check.sh fails the job" test $? -ne 0
	check "summary: the outside write" has "$GITHUB_STEP_SUMMARY" 'src\/main\.c'
	check "summary: one violation" has "$GITHUB_STEP_SUMMARY" "### Violations (1)"
	check "summary: the build's write is not one" has "$GITHUB_STEP_SUMMARY" 'out\/app'
	check "the run ended cleanly (runEnd)" has "$GITHUB_STEP_SUMMARY" "runEnd seen"
else
	fail "no agent.pid after start.sh"
fi
[ "$failed" -eq 0 ] || cat "$tmp/job/start.log" "$tmp/job/stop.log" "$tmp/job/check.log" 2>/dev/null

echo "== a bad policy stops the job before the build"
new_job
printf 'version: 1\nprotect:\n  - pth: src\n' >"$ws/.github/buildwarden.yaml"
job_env violations
BW_RUN="touch $ws/ran" sh "$action/run.sh" >"$tmp/job/run.log" 2>&1
check "run.sh fails" test $? -ne 0
check "the build did not run" test ! -e "$ws/ran"
check "the error names the policy" has "$tmp/job/run.log" "buildwarden.yaml"

echo "figure: the GitHub action test took $(($(date +%s) - t0)) s"
finish
