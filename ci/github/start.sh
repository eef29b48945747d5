#!/bin/sh
# step: start: the agent for the rest of the job (the policy's build_roots say who the
# build is), writing the events file that `stop` reports on.
set -eu
. "$(dirname "$0")/env.sh"
exec "$BW_CI" start
