#!/usr/bin/env bash
# bench/micro_ab.sh: bench/micro.c loops as a build process under `buildwarden run
# --mode enforce`, for one or more buildwarden binaries (e.g. before and after a
# change) alternated with runs without the sensor in the same rounds, so the machine's
# load falls on every side alike. Prints the median wall and CPU time per iteration and
# their ratios to the runs without (docs/PERFORMANCE.md, "Enforce mode: where the time
# goes"). Root only.
#
# usage: bench/micro_ab.sh ROUNDS "TESTS" BUILDWARDEN...
#   e.g. bench/micro_ab.sh 5 "write_unprot open_ro_unprot open_ro_prot" /tmp/old/buildwarden build/buildwarden
# env: MICRO_AB_WORK (/tmp/bw-micro-ab: its own protected dir and policy, so it never
#      protects another run's trees), MICRO_AB_ITERS (30000)
set -eu
[ $# -ge 3 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=$1 T=$2
shift 2
W=${MICRO_AB_WORK:-/tmp/bw-micro-ab}
N=${MICRO_AB_ITERS:-30000}
mkdir -p "$W/u" "$W/p"
printf 'version: 1\nmode: audit\nprotect:\n  - path: %s\n' "$W/p" >"$W/policy.yaml"
gcc -O2 -Wall -o "$W/micro" "$ROOT/bench/micro.c" -pthread
: >"$W/raw"
for r in $(seq 1 "$R"); do
	# shellcheck disable=SC2086
	timeout 300 "$W/micro" "$W/u" "$W/p" "$N" 10 10 $T | awk '{ print "none", $1, $3, $4 }' >>"$W/raw"
	for b in "$@"; do
		# shellcheck disable=SC2086
		timeout 300 "$b" run --mode enforce --policy "$W/policy.yaml" --events "$W/e.pb" -- \
			"$W/micro" "$W/u" "$W/p" "$N" 10 10 $T 2>"$W/err" | awk -v b="$b" '{ print b, $1, $3, $4 }' >>"$W/raw"
	done
done
python3 - "$W/raw" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    b, t, w, c = line.split()
    d[(t, b)].append((float(w), float(c)))
    if b not in order:
        order.append(b)
for t in sorted({k[0] for k in d}):
    bw = statistics.median(x[0] for x in d[(t, "none")])
    bc = statistics.median(x[1] for x in d[(t, "none")])
    for b in order:
        w = statistics.median(x[0] for x in d[(t, b)])
        c = statistics.median(x[1] for x in d[(t, b)])
        print(f"{t:16s} {b:40s} wall {w:9.1f} ns ({w / bw:.3f}x)  cpu {c:9.1f} ns ({c / bc:.3f}x)")
PY
