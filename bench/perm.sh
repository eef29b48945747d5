#!/usr/bin/env bash
# bench/perm.sh: `make bench-perm`. Enforce mode's permission answers under load
# (docs/PERFORMANCE.md, "Permission answers").
#
#  1. Latency: a generated C project lives in a protected tree; the build under
#     `buildwarden run --mode enforce` compiles it again and again with make -jN
#     (every compile opens, reads and writes protected files: each asks the agent),
#     while an outsider started before the run, in its own session, times
#     BENCH_PERM_N refused open(O_WRONLY) calls of a protected file, 2 ms apart.
#     Prints the opener's p50/p99/max and the agent's own answer latency line.
#  2. Cost to the build: the same compile, alternately with no sensor, under
#     `--mode audit` and under `--mode enforce` (BENCH_PERM_ROUNDS rounds); median
#     wall seconds of each.
#
# Knobs: OUT=build, BENCH_JOBS=$(nproc), BENCH_PERM_N=2000, BENCH_PERM_FILES=120,
#        BENCH_PERM_ROUNDS=5 (0: no cost part), BENCH_PERM_LATENCY=1 (0: no latency part)
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-build}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
BW=$OUT/buildwarden
JOBS=${BENCH_JOBS:-$(nproc)}
N=${BENCH_PERM_N:-2000}
FILES=${BENCH_PERM_FILES:-120}
ROUNDS=${BENCH_PERM_ROUNDS:-5}

WORK=$(mktemp -d /tmp/bw-perm-bench.XXXXXX)
OUTSIDER=
cleanup() {
	[ -n "$OUTSIDER" ] && kill "$OUTSIDER" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

cc -O2 -o "$WORK/perm_latency" "$ROOT/bench/perm_latency.c"
TREE=$WORK/tree
mkdir -p "$TREE/src" "$TREE/out"
for i in $(seq 1 "$FILES"); do
	{
		echo '#include <stdio.h>'
		echo '#include <string.h>'
		echo '#include <stdlib.h>'
		for j in $(seq 1 40); do
			echo "int f${i}_$j(int x) { char b[64]; snprintf(b, sizeof b, \"%d\", x * $j); return (int)strlen(b) + atoi(b); }"
		done
	} > "$TREE/src/f$i.c"
done
cat > "$TREE/Makefile" <<'MK'
SRCS := $(wildcard src/*.c)
OBJS := $(patsubst src/%.c,out/%.o,$(SRCS))
all: $(OBJS)
out/%.o: src/%.c
	@$(CC) -O2 -c -o $@ $<
clean:
	@rm -f out/*.o
MK
printf 'version: 1\nmode: audit\nprotect:\n  - path: %s\n' "$TREE" > "$WORK/policy.yaml"
BUILD="make -s -C $TREE clean && make -s -j$JOBS -C $TREE"

mkfifo "$WORK/go"
: > "$WORK/base.txt"
# The opener at the normal priority (it also waits for a CPU after its answer, like
# any process woken under load), then at real-time priority 2 (it runs as soon as it
# is answered: what it measures is the answer's latency alone).
for prio in $( [ "${BENCH_PERM_LATENCY:-1}" = 1 ] && echo normal realtime); do
	echo "== permission answers under load: $N refused opens by an outsider ($prio priority) while make -j$JOBS runs"
	CHRT=
	[ $prio = realtime ] && CHRT="chrt -f 2"
	setsid $CHRT "$WORK/perm_latency" "$TREE/src/f1.c" "$WORK/base.txt" "$WORK/go" "$N" "$WORK/lat.txt" &
	OUTSIDER=$!
	"$BW" run --mode enforce --policy "$WORK/policy.yaml" --events "$WORK/ev.pb" -- \
		sh -c "echo go > '$WORK/go'; while kill -0 $OUTSIDER 2>/dev/null; do $BUILD || exit 1; done" \
		2> "$WORK/summary.txt" || true
	wait "$OUTSIDER" || true
	OUTSIDER=
	sed 's/^/opener (outsider): /' "$WORK/lat.txt"
	grep -E "permission answers|violations:" "$WORK/summary.txt" | sed 's/^ */agent: /'
done

[ "$ROUNDS" -gt 0 ] || exit 0
echo "== cost to the build: make -j$JOBS of $FILES files, $ROUNDS rounds (none, audit, enforce)"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for r in $(seq 1 "$ROUNDS"); do
	for m in none audit enforce; do
		s=$(date +%s.%N)
		if [ $m = none ]; then
			sh -c "$BUILD"
		else
			rc=0
			"$BW" run --quiet --mode $m --policy "$WORK/policy.yaml" --events "$WORK/ev-$m.pb" -- \
				sh -c "$BUILD" 2> "$WORK/sum-$m.txt" || rc=$?
			# a run that is not clean is reported, not hidden in a median
			[ $rc = 0 ] || { echo "round $r $m: exit $rc"; grep -E "violations|incomplete|lost" "$WORK/sum-$m.txt" || true; }
		fi
		e=$(date +%s.%N)
		echo "$e - $s" | bc >> "$WORK/t-$m.txt"
	done
done
for m in none audit enforce; do
	echo "$m: median $(median < "$WORK/t-$m.txt") s (runs: $(tr '\n' ' ' < "$WORK/t-$m.txt"))"
done
