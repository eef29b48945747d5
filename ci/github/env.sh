# Sourced by the GitHub action's steps: the runner's variables mapped to
# ci/buildwarden-ci.sh's, and the binary found (or installed, or built).
: "${RUNNER_TEMP:?not on a GitHub runner (RUNNER_TEMP unset)}"
BW_CI_DIR=${BW_CI_DIR:-$RUNNER_TEMP/buildwarden}
BW_SOURCE_ROOT=${BW_SOURCE_ROOT:-${GITHUB_WORKSPACE:-}}
BW_HERE=$(cd "$(dirname "$0")" && pwd)
BW_CI=$BW_HERE/../buildwarden-ci.sh
export BW_CI_DIR BW_SOURCE_ROOT
# the policy input is relative to the checkout
if [ -n "${BW_POLICY:-}" ] && [ "${BW_POLICY#/}" = "$BW_POLICY" ] && [ -n "${GITHUB_WORKSPACE:-}" ]; then
	BW_POLICY=$GITHUB_WORKSPACE/$BW_POLICY
fi
export BW_POLICY
BW_SUMMARY=${BW_SUMMARY:-${GITHUB_STEP_SUMMARY:-}}
export BW_SUMMARY
