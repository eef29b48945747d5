#!/bin/sh
# The step's outputs (GITHUB_OUTPUT): where the files are, and the verdict.
set -eu
. "$(dirname "$0")/env.sh"
[ -n "${GITHUB_OUTPUT:-}" ] || exit 0
{
	echo "dir=$BW_CI_DIR"
	echo "events=$BW_CI_DIR/events.pb.gz"
	echo "report-html=$BW_CI_DIR/report.html"
	echo "report-sarif=$BW_CI_DIR/report.sarif"
	echo "verdict=$(cat "$BW_CI_DIR/verdict" 2>/dev/null || echo 'fail: no verdict')"
} >>"$GITHUB_OUTPUT"
