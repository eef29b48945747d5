#!/bin/bash
# The man pages say what --help says: for every subcommand, every word `buildwarden SUB
# --help` prints appears, in the same order, in the rendered buildwarden-SUB(8) (and the
# top-level usage in buildwarden(8)); and every --flag the page names is one --help
# names. Both come from user/cli/help.c through tools/gen_man.c: this catches a generator
# that drops or reorders text, and pages built from a stale table. Skips (77) without man.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-build}
BIN=${BW_BIN:-$OUT/buildwarden}
if ! command -v man >/dev/null; then
	echo "SKIP: no man (man-db) to render the pages"
	exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
words() { tr -s ' \t\n' '\n\n\n' | grep -v '^$' | grep -vx 'usage:' | sed 's/:$//' | tr 'A-Z' 'a-z'; }
# (a heading's ':' is --help's; the page's heading has none)

for name in buildwarden run agent enroll collector query policy decode report version; do
	if [ "$name" = buildwarden ]; then
		page=$OUT/man/buildwarden.8
		"$BIN" --help >"$work/help" || { echo "FAIL: buildwarden --help exited $?"; fail=1; }
	else
		page=$OUT/man/buildwarden-$name.8
		"$BIN" "$name" --help >"$work/help" || { echo "FAIL: buildwarden $name --help exited $?"; fail=1; }
	fi
	if [ ! -s "$page" ]; then
		echo "FAIL: $page missing (make man)"
		fail=1
		continue
	fi
	# no hyphenation, no justification (the pages say .nh .ad l), one long line width
	LC_ALL=C MANWIDTH=400 MAN_KEEP_FORMATTING= man --no-hyphenation --no-justification -l "$page" 2>"$work/err" |
		col -b >"$work/man"
	if [ -s "$work/err" ]; then
		echo "FAIL: man warns about $page:"
		cat "$work/err"
		fail=1
	fi
	words <"$work/help" >"$work/hw"
	words <"$work/man" >"$work/mw"
	# is hw a subsequence of mw?
	if ! awk 'NR == FNR { h[++n] = $0; next } i < n && $0 == h[i + 1] { i++ } END { if (i < n) { print "  first --help word not found in order: \"" h[i + 1] "\" (word " i + 1 " of " n ")"; exit 1 } }' \
		"$work/hw" "$work/mw"; then
		echo "FAIL: $page does not say what '$name --help' says"
		fail=1
	fi
	grep -o -- '--[a-z][a-z-]*' "$work/man" | sort -u >"$work/mflags"
	grep -o -- '--[a-z][a-z-]*' "$work/help" | sort -u >"$work/hflags"
	extra=$(comm -23 "$work/mflags" "$work/hflags")
	if [ -n "$extra" ]; then
		echo "FAIL: $page names flags --help does not: $extra"
		fail=1
	fi
	[ $fail = 0 ] && echo "ok: $page agrees with --help ($(wc -l <"$work/hw") words)"
done
exit $fail
