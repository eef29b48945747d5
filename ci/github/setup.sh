#!/bin/sh
# The action's first step: find buildwarden, install the package, or build it from
# the action's own tree; the binary's path goes to GITHUB_ENV for the later steps.
set -eu
. "$(dirname "$0")/env.sh"
say() { printf 'buildwarden-ci: %s\n' "$*" >&2; }
sudo_=
[ "$(id -u)" -eq 0 ] || sudo_="sudo"

if [ -n "${BUILDWARDEN:-}" ]; then
	bw=$BUILDWARDEN                      # given by the workflow (or the test)
elif [ -n "${BW_PACKAGE:-}" ]; then      # the package input: a .deb in the checkout
	$sudo_ apt-get install -y --no-install-recommends "$(cd "$(dirname "$BW_PACKAGE")" && pwd)/$(basename "$BW_PACKAGE")"
	bw=$(command -v buildwarden)
elif command -v buildwarden >/dev/null 2>&1; then
	bw=$(command -v buildwarden)         # already on the runner image
elif apt-cache show buildwarden >/dev/null 2>&1; then
	$sudo_ apt-get install -y --no-install-recommends buildwarden
	bw=$(command -v buildwarden)
else
	src=$(cd "$(dirname "$0")/../.." && pwd)
	say "no buildwarden package: building it from $src"
	$sudo_ make -C "$src" deps-build >/dev/null
	make -C "$src" -j"$(nproc)" build/buildwarden >/dev/null
	bw=$src/build/buildwarden
fi
"$bw" version >&2
if [ -n "${GITHUB_ENV:-}" ]; then
	echo "BUILDWARDEN=$bw" >>"$GITHUB_ENV"
fi
