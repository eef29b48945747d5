#!/bin/sh
# step: run: the command of the `run` input, as the build, under `buildwarden run`
# (the build is that command and its descendants, tracked in the kernel). The command
# comes in BW_RUN, never through the workflow's expression syntax into a script.
set -eu
. "$(dirname "$0")/env.sh"
: "${BW_RUN:?the run input is empty}"
set +e
"$BW_CI" run /bin/sh -c "$BW_RUN"
status=$?
set -e
"$(dirname "$0")/outputs.sh"
exit "$status"
