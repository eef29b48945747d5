#!/bin/bash
# The GitLab template (ci/gitlab/buildwarden.gitlab-ci.yml) run as a runner would: its
# before_script, the job's own script (a real small build), the .buildwarden-finish
# lines in one shell with `set -e`, then after_script in a shell of its own, with CI_*
# variables and the template's variables in the environment. Checks the job log (the
# summary), the exit status, and the artifacts (events, reports, the dotenv report).
. "$(dirname "$0")/lib.sh"

template=$top/ci/gitlab/buildwarden.gitlab-ci.yml
# the runner's PATH has the package's binary; the helper script comes from this tree
mkdir -p "$tmp/bin"
ln -s "$BW_BIN" "$tmp/bin/buildwarden"

# job_scripts: the template's parts, one command a line (what the runner runs)
/usr/bin/python3 - "$template" "$tmp" <<'PY' || { echo "FAIL: cannot read the template"; exit 1; }
import sys, yaml
t = yaml.safe_load(open(sys.argv[1]))
job, fin, run = t[".buildwarden"], t[".buildwarden-finish"], t[".buildwarden-run"]
for j in (job, run):
    assert j["artifacts"]["when"] == "always"
    assert ".buildwarden/" in j["artifacts"]["paths"]
    assert j["artifacts"]["reports"]["dotenv"] == ".buildwarden/buildwarden.env"
    assert j["variables"] == job["variables"]
out = sys.argv[2]
open(out + "/run_before.sh", "w").write("\n".join(run["before_script"]) + "\n")
open(out + "/before.sh", "w").write("\n".join(job["before_script"]) + "\n")
open(out + "/after.sh", "w").write("\n".join(job["after_script"]) + "\n")
open(out + "/finish.sh", "w").write("\n".join(fin["script"]) + "\n")
with open(out + "/vars.sh", "w") as f:
    for k, v in job["variables"].items():
        f.write("export %s=%s\n" % (k, "'" + str(v).replace("'", "'\\''") + "'"))
PY

# run_job BUILD_SCRIPT [FAIL_ON [MODE]]: the job as the runner runs it (MODE agent:
# .buildwarden with the finish lines; run: .buildwarden-run, BUILD_SCRIPT its script);
# sets job_rc, after_rc
run_job() {
	local build=$1 mode=${3:-agent}
	mkdir -p "$ws/.gitlab"
	cp "$ws/.github/buildwarden.yaml" "$ws/.gitlab/buildwarden.yaml"
	{
		echo "set -e"
		cat "$tmp/vars.sh"
		[ -n "${2:-}" ] && echo "export BUILDWARDEN_FAIL_ON=$2"
		echo "export BUILDWARDEN_CI=$top/ci/buildwarden-ci.sh"
		echo "cd \"\$CI_PROJECT_DIR\""
		if [ "$mode" = run ]; then
			cat "$tmp/run_before.sh"
			echo "$build"
		else
			cat "$tmp/before.sh"
			echo "$build"
			cat "$tmp/finish.sh"
		fi
	} >"$tmp/job/script.sh"
	{
		cat "$tmp/vars.sh"
		[ -n "${2:-}" ] && echo "export BUILDWARDEN_FAIL_ON=$2"
		echo "export BUILDWARDEN_CI=$top/ci/buildwarden-ci.sh"
		echo "cd \"\$CI_PROJECT_DIR\""
		[ "$mode" = run ] || cat "$tmp/after.sh"
	} >"$tmp/job/after_script.sh"
	local env=(env CI=true GITLAB_CI=true CI_PROJECT_DIR="$ws" CI_JOB_ID=4242
		CI_PIPELINE_ID=77 CI_PROJECT_PATH=acme/widget CI_COMMIT_SHA=0123abcd
		CI_JOB_NAME=compile PATH="$tmp/bin:$PATH")
	"${env[@]}" sh "$tmp/job/script.sh" >"$tmp/job/log" 2>&1
	job_rc=$?
	"${env[@]}" sh "$tmp/job/after_script.sh" >>"$tmp/job/log" 2>&1
	after_rc=$?
}

t0=$(date +%s)
echo "== an outside write during the job fails it; the log has the summary"
new_job
run_job "$ws/bin/buildsh -c 'make -C $ws' && sh -c \"echo '/* planted */' >> $ws/src/main.c\""
check "the job fails (status $job_rc)" test "$job_rc" -ne 0
check "after_script succeeds" test "$after_rc" -eq 0
check "job log: the summary" has "$tmp/job/log" "### Violations (1)"
check "job log: the file" has "$tmp/job/log" 'src\/main\.c'
check "job log: why it failed" has "$tmp/job/log" "fail: violations"
check "job log: the CI job (runStart.ci)" has "$tmp/job/log" 'CI: gitlab acme\/widget \@ 0123abcd\, workflow 77\, job compile\, run 4242'
for f in events.pb.gz report.html report.sarif summary.md; do
	check "artifact $f" test -s "$ws/.buildwarden/$f"
done
check "dotenv report" grep -qx "BUILDWARDEN_VERDICT=fail" "$ws/.buildwarden/buildwarden.env"
check "the agent is stopped" test ! -e "$ws/.buildwarden/agent.pid"
[ "$failed" -eq 0 ] || cat "$tmp/job/log"

echo "== the same job, clean"
new_job
run_job "$ws/bin/buildsh -c 'make -C $ws'"
check "the job passes (status $job_rc)" test "$job_rc" -eq 0
check "job log: clean" has "$tmp/job/log" "## buildwarden: no violation, run complete"
check "dotenv report" grep -qx "BUILDWARDEN_VERDICT=pass" "$ws/.buildwarden/buildwarden.env"
[ "$failed" -eq 0 ] || cat "$tmp/job/log"

echo "== the build fails: after_script stops the agent and still reports"
new_job
run_job "false"
check "the job fails" test "$job_rc" -ne 0
check "after_script stopped the agent" test ! -e "$ws/.buildwarden/agent.pid"
check "job log: the summary from after_script" has "$tmp/job/log" "## buildwarden:"
check "the HTML report is there" test -s "$ws/.buildwarden/report.html"
[ "$failed" -eq 0 ] || cat "$tmp/job/log"

echo "== fail-on never"
new_job
run_job "$ws/bin/buildsh -c 'make -C $ws' && sh -c \"echo x >> $ws/src/main.c\"" never
check "the job passes (status $job_rc)" test "$job_rc" -eq 0
check "the violation is still in the log" has "$tmp/job/log" "### Violations (1)"

echo "== .buildwarden-run: the build under buildwarden run, an outsider during it"
new_job
start_outsider
run_job "sh \"\$BUILDWARDEN_CI\" run sh -c 'make -C $ws && $(handshake)'
sh \"\$BUILDWARDEN_CI\" check" violations run
check "the job fails (status $job_rc)" test "$job_rc" -ne 0
check "job log: the summary" has "$tmp/job/log" "### Violations (1)"
check "job log: the outsider's write" has "$tmp/job/log" 'src\/main\.c'
check "dotenv report" grep -qx "BUILDWARDEN_VERDICT=fail" "$ws/.buildwarden/buildwarden.env"
[ "$failed" -eq 0 ] || cat "$tmp/job/log"

echo "== .buildwarden-run, clean"
new_job
run_job "sh \"\$BUILDWARDEN_CI\" run make -C $ws
sh \"\$BUILDWARDEN_CI\" check" violations run
check "the job passes (status $job_rc)" test "$job_rc" -eq 0
check "job log: clean" has "$tmp/job/log" "## buildwarden: no violation, run complete"
[ "$failed" -eq 0 ] || cat "$tmp/job/log"

echo "figure: the GitLab template test took $(($(date +%s) - t0)) s"
finish
