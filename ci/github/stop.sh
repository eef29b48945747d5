#!/bin/sh
# step: stop: the agent stopped (SIGTERM by pid, waited for), the markdown report in the
# step summary, the HTML and SARIF reports and the events ready for upload.
set -eu
. "$(dirname "$0")/env.sh"
set +e
"$BW_CI" stop
status=$?
set -e
"$(dirname "$0")/outputs.sh"
exit "$status"
