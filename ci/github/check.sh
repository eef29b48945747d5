#!/bin/sh
# The action's last step, after the upload: fail the job per the fail-on input.
set -eu
. "$(dirname "$0")/env.sh"
if ! "$BW_CI" check; then
	echo "::error title=buildwarden::$(cat "$BW_CI_DIR/verdict" 2>/dev/null || echo 'no verdict')"
	exit 1
fi
