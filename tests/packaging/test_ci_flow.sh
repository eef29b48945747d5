#!/bin/bash
# Issue 11's "done means", end to end, from a clean Debian 12 root (tests/packaging/
# lib_root.sh; make, gcc and libc6-dev added so the build is a real C build):
#
#  GitHub: a workflow whose one step is this repository's action (action.yml, copied into
#  the root as a runner checks an action out) with `package:` (the .deb: the action's
#  setup step installs it with apt, from the cached Depends) and `run:` (make), run by
#  tests/packaging/sim_github_job.py as a runner runs it: every composite step, its `if:`,
#  GITHUB_OUTPUT/ENV/STEP_SUMMARY, the artifact upload. Once clean (the job succeeds,
#  the summary says so), once with a planted violation: a process started before the
#  job in its own session, outside the build, appends to src/main.c while the build
#  runs. The job fails, the summary names the file and the outsider's lineage, the
#  artifact has the events (`buildwarden decode` reads them) and the reports, and the
#  file changed (the policy is audit mode: recorded and reported, not stopped). Once
#  more with the policy in enforce mode: the outsider's open for write is refused (EPERM,
#  DENIED in the summary, src/main.c byte for byte unchanged) and the job fails. And
#  the action's agent mode, its pre/main/post: `step: start`, a build step (the policy's
#  build root runs make), `step: stop` with `if: always()`, the outsider writing: fails.
#  GitLab: the template's `.buildwarden` job (before_script starts the agent, the
#  build, the .buildwarden-finish lines, after_script), its commands taken from the
#  template installed by the package, run in the root with CI_* variables; same two
#  cases, the job log and the .buildwarden/ artifact checked.
#  Every step runs /usr/bin/buildwarden from the package: the tree's binary is not in
#  the root. The HTML reports are then opened in Chromium on the host (headless
#  --dump-dom) and the violation row looked for.
#
# Exit 0 passed, 1 failed, 77 skipped (no root, no mirror, no chromium: the reason is
# printed). Wall time: tests/packaging/README.md.
set -u
cd "$(dirname "$0")/../.." || exit 1

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
. tests/packaging/lib_root.sh

# where the jobs live in the root (GitHub's layout for a self-hosted runner)
WS=/home/runner/work/widget/widget
ACTION=/home/runner/work/_actions/buildwarden
GLWS=/builds/acme/widget
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

# ---- inside the private mount namespace -------------------------------------------
if [ "${1:-}" = --in-namespace ]; then
	root=$2 deb=$3
	failed=0
	bad() { echo "FAIL: $*"; failed=1; }
	check() { # DESCRIPTION COMMAND...
		local what=$1
		shift
		if "$@"; then echo "ok: $what"; else bad "$what"; fi
	}
	has() { grep -qF -- "$2" "$1"; }
	outsider=
	cg_root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	cg_name=/bwflow-$$
	cg_home=$(sed -n 's/^0:://p' /proc/self/cgroup)
	inner_cleanup() {
		# only what this test started, by pid; then the cgroup, once empty
		[ -n "$outsider" ] && kill "$outsider" 2>/dev/null
		local f
		for f in "$root$GLWS/.buildwarden/agent.pid" "$root/home/runner/work/_temp/buildwarden/agent.pid"; do
			[ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
		done
		echo $$ >"$cg_root$cg_home/cgroup.procs" 2>/dev/null || echo $$ >"$cg_root/cgroup.procs"
		# what a job left running (alone_in_cgroup fails on it) is this test's: its cgroup's
		local p
		while read -r p; do kill -KILL "$p" 2>/dev/null; done 2>/dev/null <"$cg_root$cg_name/cgroup.procs"
		for _ in $(seq 1 50); do
			rmdir "$cg_root$cg_name" 2>/dev/null && return
			sleep 0.1
		done
		echo "warning: cgroup $cg_root$cg_name not removed"
	}
	ROOT_EXIT_HOOK=inner_cleanup
	root_mount "$root"
	# a runner's service cgroup: the GitLab job's build root is an exec in it (docs/runners.md)
	mkdir "$cg_root$cg_name" && echo $$ >"$cg_root$cg_name/cgroup.procs" || fail "cannot enter cgroup $cg_root$cg_name"

	in_root sh -c 'command -v buildwarden' && fail "buildwarden is in the root before the package"
	in_root dpkg-query -W -f '${Package}\n' | sort >"$root/tmp/pkgs.before"
	# the .debs the root's apt cache holds: the Depends, downloaded without Recommends
	(cd "$root/var/cache/apt/archives" && ls -- *.deb) | sed 's/_.*//' | sort -u >"$root/tmp/pkgs.cached"
	mkdir -p "$root/home/runner/pkg" "$root$ACTION"
	cp "$deb" "$root/home/runner/pkg/"
	pkgfile=/home/runner/pkg/$(basename "$deb")
	# the action as a runner checks it out: the repository's files it uses
	cp -r action.yml ci "$root$ACTION/"

	# new_project DIR POLICY [MODE]: a small C project (several files, objects and a
	# program in out/) and its policy protecting src/ and out/ (MODE: audit)
	new_project() {
		local d=$root$1
		rm -rf "$d"
		mkdir -p "$d/src" "$d/out" "$d/bin" "$(dirname "$d/$2")"
		cat >"$d/src/greet.h" <<'C'
const char *greeting(void);
int count_args(int argc);
C
		cat >"$d/src/main.c" <<'C'
#include <stdio.h>
#include "greet.h"
int main(int argc, char **argv) { (void)argv; printf("%s %d\n", greeting(), count_args(argc)); return 0; }
C
		cat >"$d/src/greet.c" <<'C'
#include "greet.h"
const char *greeting(void) { return "hello from widget"; }
C
		cat >"$d/src/count.c" <<'C'
#include "greet.h"
int count_args(int argc) { return argc - 1; }
C
		printf '%s\n' 'OBJS = out/main.o out/greet.o out/count.o' \
			'out/app: $(OBJS)' '	cc -o $@ $(OBJS)' \
			'out/%.o: src/%.c src/greet.h' '	@mkdir -p out' '	cc -O2 -Wall -c -o $@ $<' >"$d/Makefile"
		# the GitLab job's build root: a copy of the shell, an inode of its own
		cp "$root/bin/dash" "$d/bin/buildsh"
		cat >"$d/$2" <<YAML
version: 1
mode: ${3:-audit}
protect:
  - path: $1/src
  - path: $1/out
build_roots:
  - exe: $1/bin/buildsh
    cgroup: $cg_name
YAML
	}
	# start_outsider DIR: before the job, in a session of its own, not of the build:
	# waits for the build's "go", appends to DIR/src/main.c, answers "done"
	start_outsider() {
		rm -f "$root/tmp/go" "$root/tmp/done"
		mkfifo "$root/tmp/go" "$root/tmp/done"
		setsid chroot "$root" /bin/sh -c "read _ </tmp/go; echo '/* planted */' >>$1/src/main.c; echo done >/tmp/done" \
			2>"$root/tmp/outsider.err" &
		outsider=$!
	}
	handshake='timeout 30 sh -c "echo go >/tmp/go" && timeout 30 cat /tmp/done >/dev/null'
	stop_outsider() { planter=$outsider; kill "$outsider" 2>/dev/null; wait "$outsider" 2>/dev/null; outsider=; }
	# nothing a job started (the agent, the build, the outsider) is left running: every
	# process of this test is in its cgroup, which then holds this shell alone. Read with
	# builtins, as a reader forked for it would be there too; a stopping process gets 5 s.
	alone_in_cgroup() {
		local procs i
		for ((i = 0; i < 50; i++)); do
			mapfile -t procs <"$cg_root$cg_name/cgroup.procs"
			[ "${#procs[@]}" -eq 1 ] && [ "${procs[0]}" = $$ ] && return 0
			sleep 0.1
		done
		echo "still in $cg_name besides this shell ($$): $(printf '%s ' "${procs[@]}")"
		return 1
	}
	chromium_dom() { # HTML DOMFILE
		local html=$1 dom=$2
		timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
			--user-data-dir="$root/tmp/chromium-profile" --dump-dom "file://$html" >"$dom" 2>"$dom.log"
	}

	# gh_job NAME RUN: a workflow whose one step is the action with RUN as its run input
	gh_job() {
		gh_workflow "$1" "      - uses: acme/buildwarden@v1
        with:
          package: $pkgfile
          run: $2"
	}
	# gh_workflow NAME STEPS: the workflow with these steps (YAML), run as a runner runs
	# it; sets rc
	gh_workflow() {
		local name=$1
		rm -rf "$root/home/runner/work/_temp"
		printf '%s\n' "name: build" "on: push" "jobs:" "  build:" "    runs-on: self-hosted" \
			"    steps:" "$2" >"$root$WS/.github/workflows/build.yml"
		python3 tests/packaging/sim_github_job.py --root "$root" --workflow "$WS/.github/workflows/build.yml" \
			--job build --action "acme/buildwarden@v1=$ACTION" --workspace "$WS" \
			--temp /home/runner/work/_temp --artifacts "$root/tmp/gh-$name/artifacts" \
			--summary "$root/tmp/gh-$name/summary.md" \
			--env GITHUB_REPOSITORY=acme/widget --env GITHUB_SHA=0123abcd --env GITHUB_RUN_ID=1234 \
			--env GITHUB_JOB=build --env GITHUB_SERVER_URL=https://github.example \
			--env GITHUB_REF=refs/heads/main --env RUNNER_NAME=runner1 >"$root/tmp/gh-$name.log" 2>&1
		rc=$?
	}

	t0=$(date +%s)
	echo "== GitHub: the action installs the package, a clean build"
	new_project "$WS" .github/buildwarden.yaml
	mkdir -p "$root$WS/.github/workflows"
	gh_job clean "make -j2"
	log=$root/tmp/gh-clean.log sum=$root/tmp/gh-clean/summary.md art=$root/tmp/gh-clean/artifacts/buildwarden
	check "the job succeeds (status $rc)" test "$rc" -eq 0
	check "nothing the job started is left running" alone_in_cgroup
	check "setup installed the package with apt" has "$log" "Setting up buildwarden"
	check "the later steps use the package's binary" grep -qx "BUILDWARDEN=/usr/bin/buildwarden" \
		"$root/home/runner/work/_temp/_runner_file_commands/2/github_env"
	in_root dpkg-query -W -f '${Package}\n' | sort >"$root/tmp/pkgs.after"
	comm -13 "$root/tmp/pkgs.before" "$root/tmp/pkgs.after" >"$root/tmp/pkgs.new"
	# apt took nothing but the cached Depends (downloaded with --no-install-recommends)
	extra=$(comm -23 "$root/tmp/pkgs.new" <(echo buildwarden | sort -u - "$root/tmp/pkgs.cached") | tr '\n' ' ')
	check "apt installed buildwarden and its Depends only (new: $(tr '\n' ' ' <"$root/tmp/pkgs.new"); not of them: $extra)" test -z "$extra"
	check "apt fetched nothing from the network" bash -c "! grep -q '^Get:.*http' '$root/tmp/gh-clean.log'"
	check "the only buildwarden binary in the root is the package's" \
		test "$(find "$root" -xdev -type f -name buildwarden -perm -u+x | sed "s|^$root||")" = /usr/bin/buildwarden
	check "summary: clean" has "$sum" "## buildwarden: no violation, run complete"
	check "summary: the CI job" has "$sum" 'acme\/widget'
	check "the build's program runs" test "$(in_root "$WS/out/app" a b)" = "hello from widget 2"
	for f in events.pb.gz report.html report.sarif summary.md; do
		check "artifact: $f" test -s "$art/$f"
	done
	[ "$failed" -eq 0 ] || cat "$log" "$sum"

	echo "== GitHub: an outsider appends to src/main.c during the build"
	failed_before=$failed failed=0
	new_project "$WS" .github/buildwarden.yaml
	mkdir -p "$root$WS/.github/workflows"
	start_outsider "$WS"
	gh_job planted "make -j2 && $handshake"
	stop_outsider
	log=$root/tmp/gh-planted.log sum=$root/tmp/gh-planted/summary.md art=$root/tmp/gh-planted/artifacts/buildwarden
	check "the job fails (status $rc)" test "$rc" -eq 1
	check "nothing the job started is left running" alone_in_cgroup
	check "the check step says why" has "$log" "::error title=buildwarden::fail: violations"
	check "the build itself succeeded" has "$log" "##[endgroup] run exit 0"
	check "summary: violations" has "$sum" "## buildwarden: violations"
	check "summary: one violation" has "$sum" "### Violations (1)"
	check "summary: the file" has "$sum" 'src\/main\.c'
	# the writer is the outsider, its parent (lineage, parent first) this script
	check "summary: the outsider (pid $planter), its lineage from pid $$" \
		grep -q "| pid $planter .*(outside the build\\\\) | pid $$ " "$sum"
	check "summary: the build's own writes" has "$sum" 'out\/app'
	for f in events.pb.gz report.html report.sarif summary.md; do
		check "artifact: $f" test -s "$art/$f"
	done
	cp "$art/events.pb.gz" "$root/tmp/gh-events.pb.gz"
	in_root buildwarden decode /tmp/gh-events.pb.gz >"$root/tmp/gh-decoded.json"
	check "buildwarden decode reads the artifact's events" test $? -eq 0
	check "decode: the run ended (runEnd)" has "$root/tmp/gh-decoded.json" '"runEnd"'
	check "decode: the outsider's write to src/main.c, a violation" \
		bash -c "grep '^{\"kind\":\"file\"' '$root/tmp/gh-decoded.json' | grep '\"pid\":$planter,' |
			grep '\"violation\":true' | grep -q '\"path\":\"$WS/src/main.c\"'"
	check "audit mode: the planted write happened" grep -qx '/\* planted \*/' "$root$WS/src/main.c"
	cp "$art/report.html" "$root/tmp/gh-report.html"
	# shellcheck disable=SC2034 # read as ${!p} with the Chromium checks
	gh_planter=$planter
	[ "$failed" -eq 0 ] || cat "$log" "$sum"
	[ "$failed_before" -eq 0 ] || failed=1

	echo "== GitHub, the policy in enforce mode: the outsider's write is refused"
	failed_before=$failed failed=0
	new_project "$WS" .github/buildwarden.yaml enforce
	mkdir -p "$root$WS/.github/workflows"
	cp "$root$WS/src/main.c" "$root/tmp/main.c.orig"
	start_outsider "$WS"
	gh_job enforce "make -j2 && $handshake"
	stop_outsider
	log=$root/tmp/gh-enforce.log sum=$root/tmp/gh-enforce/summary.md
	check "the job fails (status $rc)" test "$rc" -eq 1
	check "nothing the job started is left running" alone_in_cgroup
	check "the build itself succeeded" has "$log" "##[endgroup] run exit 0"
	check "summary: one violation" has "$sum" "### Violations (1)"
	check "summary: the outsider's open for write, refused (DENIED)" \
		grep -q "| OPEN\\\\_WRITE .*src.*main.* | DENIED | pid $planter " "$sum"
	# README, "What enforce mode does on this host": refused with EPERM, content unchanged
	check "the outsider's open failed with EPERM" has "$root/tmp/outsider.err" "Operation not permitted"
	check "enforce mode: src/main.c is unchanged" cmp -s "$root/tmp/main.c.orig" "$root$WS/src/main.c"
	check "the build's program runs" test "$(in_root "$WS/out/app")" = "hello from widget 0"
	[ "$failed" -eq 0 ] || cat "$log" "$sum"
	[ "$failed_before" -eq 0 ] || failed=1

	echo "== GitHub, agent mode: the action's start step, a build step, its stop step"
	failed_before=$failed failed=0
	new_project "$WS" .github/buildwarden.yaml
	mkdir -p "$root$WS/.github/workflows"
	start_outsider "$WS"
	# the build is what the policy's build root (bin/buildsh, in the runner's cgroup) runs
	gh_workflow agent "      - uses: acme/buildwarden@v1
        with:
          step: start
      - run: bin/buildsh -c 'make -j2 && $handshake'
      - uses: acme/buildwarden@v1
        if: always()
        with:
          step: stop"
	stop_outsider
	log=$root/tmp/gh-agent.log sum=$root/tmp/gh-agent/summary.md art=$root/tmp/gh-agent/artifacts/buildwarden
	check "the job fails (status $rc)" test "$rc" -eq 1
	check "nothing the job started is left running" alone_in_cgroup
	check "the build step succeeded" has "$log" "##[endgroup] build step 2 exit 0"
	check "the stop step's check says why" has "$log" "::error title=buildwarden::fail: violations"
	check "summary: one violation" has "$sum" "### Violations (1)"
	check "summary: the outsider (pid $planter), its lineage from pid $$" \
		grep -q "| pid $planter .*(outside the build\\\\) | pid $$ " "$sum"
	check "summary: the build's own writes, in the build" grep -q 'out\\/app | .*(in the build\\) | no' "$sum"
	check "summary: the run ended cleanly" has "$sum" "runEnd seen"
	check "the agent is stopped" test ! -e "$root/home/runner/work/_temp/buildwarden/agent.pid"
	for f in events.pb.gz report.html report.sarif summary.md; do
		check "artifact: $f" test -s "$art/$f"
	done
	[ "$failed" -eq 0 ] || cat "$log" "$sum"
	[ "$failed_before" -eq 0 ] || failed=1

	# ---- GitLab ----------------------------------------------------------------------
	tpl=$root/usr/share/buildwarden/ci/buildwarden.gitlab-ci.yml
	check "the package installs the GitLab template" test -s "$tpl"
	mkdir -p "$root/tmp/gl"
	python3 - "$tpl" "$root/tmp/gl" <<'PY' || fail "cannot read the GitLab template"
import sys, yaml
t = yaml.safe_load(open(sys.argv[1]))
job, fin = t[".buildwarden"], t[".buildwarden-finish"]
out = sys.argv[2]
open(out + "/before.sh", "w").write("\n".join(job["before_script"]) + "\n")
open(out + "/after.sh", "w").write("\n".join(job["after_script"]) + "\n")
open(out + "/finish.sh", "w").write("\n".join(fin["script"]) + "\n")
with open(out + "/vars.sh", "w") as f:
    for k, v in job["variables"].items():
        f.write("export %s='%s'\n" % (k, str(v).replace("'", "'\\''")))
print(job["artifacts"]["paths"][0], job["artifacts"]["reports"]["dotenv"], job["artifacts"]["when"])
PY
	# gl_job NAME SCRIPT: the job as GitLab's shell executor runs it: before_script and
	# script in one shell that stops at the first failure, after_script in another;
	# sets job_rc, after_rc
	gl_job() {
		local name=$1 script=$2
		{
			echo "set -e"
			cat "$root/tmp/gl/vars.sh"
			echo "cd \"\$CI_PROJECT_DIR\""
			cat "$root/tmp/gl/before.sh"
			echo "$script"
			cat "$root/tmp/gl/finish.sh"
		} >"$root/tmp/gl/$name.script.sh"
		{
			cat "$root/tmp/gl/vars.sh"
			echo "cd \"\$CI_PROJECT_DIR\""
			cat "$root/tmp/gl/after.sh"
		} >"$root/tmp/gl/$name.after.sh"
		local env=(CI=true GITLAB_CI=true CI_PROJECT_DIR="$GLWS" CI_JOB_ID=4242 CI_PIPELINE_ID=77
			CI_PROJECT_PATH=acme/widget CI_COMMIT_SHA=0123abcd CI_JOB_NAME=compile
			CI_RUNNER_DESCRIPTION=runner1 CI_SERVER_URL=https://gitlab.example)
		in_root "${env[@]}" bash "/tmp/gl/$name.script.sh" >"$root/tmp/gl-$name.log" 2>&1
		job_rc=$?
		in_root "${env[@]}" bash "/tmp/gl/$name.after.sh" >>"$root/tmp/gl-$name.log" 2>&1
		after_rc=$?
	}

	echo "== GitLab: the template's agent job, a clean build"
	failed_before=$failed failed=0
	new_project "$GLWS" .gitlab/buildwarden.yaml
	gl_job clean "$GLWS/bin/buildsh -c 'make -j2'"
	log=$root/tmp/gl-clean.log
	check "the job succeeds (status $job_rc)" test "$job_rc" -eq 0
	check "nothing the job started is left running" alone_in_cgroup
	check "after_script succeeds" test "$after_rc" -eq 0
	check "job log: clean" has "$log" "## buildwarden: no violation, run complete"
	check "dotenv report: pass" grep -qx "BUILDWARDEN_VERDICT=pass" "$root$GLWS/.buildwarden/buildwarden.env"
	check "the build's program runs" test "$(in_root "$GLWS/out/app")" = "hello from widget 0"
	[ "$failed" -eq 0 ] || cat "$log"
	[ "$failed_before" -eq 0 ] || failed=1

	echo "== GitLab: an outsider appends to src/main.c during the build"
	failed_before=$failed failed=0
	new_project "$GLWS" .gitlab/buildwarden.yaml
	start_outsider "$GLWS"
	gl_job planted "$GLWS/bin/buildsh -c 'make -j2 && $handshake'"
	stop_outsider
	log=$root/tmp/gl-planted.log art=$root$GLWS/.buildwarden
	check "the job fails (status $job_rc)" test "$job_rc" -ne 0
	check "nothing the job started is left running" alone_in_cgroup
	check "after_script succeeds" test "$after_rc" -eq 0
	check "job log: one violation" has "$log" "### Violations (1)"
	check "job log: the file" has "$log" 'src\/main\.c'
	check "job log: the outsider (pid $planter), its lineage from pid $$" \
		grep -q "| pid $planter .*(outside the build\\\\) | pid $$ " "$log"
	check "job log: why it failed" has "$log" "fail: violations"
	check "job log: the CI job" has "$log" 'CI: gitlab acme\/widget \@ 0123abcd'
	for f in events.pb.gz report.html report.sarif summary.md; do
		check "artifact: $f" test -s "$art/$f"
	done
	check "dotenv report: fail" grep -qx "BUILDWARDEN_VERDICT=fail" "$art/buildwarden.env"
	check "the agent is stopped" test ! -e "$art/agent.pid"
	in_root buildwarden decode "$GLWS/.buildwarden/events.pb.gz" >"$root/tmp/gl-decoded.json"
	check "buildwarden decode reads the artifact's events" test $? -eq 0
	check "decode: the run ended (runEnd)" has "$root/tmp/gl-decoded.json" '"runEnd"'
	check "audit mode: the planted write happened" grep -qx '/\* planted \*/' "$root$GLWS/src/main.c"
	cp "$art/report.html" "$root/tmp/gl-report.html"
	# shellcheck disable=SC2034 # read as ${!p} with the Chromium checks
	gl_planter=$planter
	[ "$failed" -eq 0 ] || cat "$log"
	[ "$failed_before" -eq 0 ] || failed=1

	# ---- the HTML reports in Chromium (the host's) -------------------------------------
	if [ -x "$CHROMIUM" ]; then
		for r in gh gl; do
			p=${r}_planter
			chromium_dom "$root/tmp/$r-report.html" "$root/tmp/$r-dom.html"
			check "$r: chromium renders the report" test $? -eq 0
			check "$r: the page's script ran" has "$root/tmp/$r-dom.html" 'data-ready="1"'
			check "$r: the violation row" has "$root/tmp/$r-dom.html" '<tr class="violation" id="v-0">'
			check "$r: its file and process" \
				grep -q "class=\"violation\" id=\"v-0\">.*src/main\.c.*pid ${!p} .*(outside the build)" "$root/tmp/$r-dom.html"
		done
	else
		echo "note: no $CHROMIUM: the HTML reports were not rendered (make deps installs chromium)"
		chromium_missing=1
	fi
	echo "figure: the six jobs took $(($(date +%s) - t0)) s"
	# BW_FLOW_KEEP=DIR: the jobs' logs, summaries, artifacts and DOMs kept for a look
	if [ -n "${BW_FLOW_KEEP:-}" ]; then
		mkdir -p "$BW_FLOW_KEEP" && cp -r "$root"/tmp/gh-* "$root"/tmp/gl-* "$root"/tmp/gl "$root$GLWS/.buildwarden" "$BW_FLOW_KEEP/"
		echo "kept: $BW_FLOW_KEEP"
	fi
	[ "$failed" -eq 0 ] || exit 1
	[ -z "${chromium_missing:-}" ] || exit 77
	exit 0
fi

# ---- outside: the package, the cached root, a fresh copy --------------------------
root_prereqs
python3 -c 'import yaml' 2>/dev/null || skip "no python3-yaml (the runner simulation reads the workflow with it)"
start=$(date +%s)
root_make_deb
# a real build needs a compiler in the root (test_deb's root has none, on purpose)
root_tarball make gcc libc6-dev
root_unpack
root_enter "$deb"
rc=$?
echo "wall time: $(($(date +%s) - start)) s"
exit $rc
