#!/usr/bin/env bash
# bench/run.sh: `make bench`. Measures what `buildwarden run` costs a real build
# and single syscalls. See docs/PERFORMANCE.md for the method and the figures.
#
#  1. Build: nginx (upstream tarball from Debian's source package, 182 C
#     compilation units) with `make -jN`, alternately without and with
#     `buildwarden run --policy ... --events ... -- make -jN` (W S W S ... W);
#     median wall-time ratio, each S against the mean of its neighbouring Ws.
#     Kernel drops, events and violations are read from the events file.
#  2. Micro: bench/micro.c loops (open/write/close, read-only open, fork+exec,
#     loopback connect), alternately without the sensor, as a build process
#     under `buildwarden run`, and (BENCH_HOST=1) as a non-build process while a
#     `buildwarden run -- <idle>` sensor is active; median per-iteration ratio.
#
# Knobs (environment):
#   OUT=build                   where build/buildwarden is (as in the Makefile)
#   BENCH_PAIRS=3               build pairs (without, with) after one warm-up, + 1 closing without
#   BENCH_JOBS=$(nproc)         make -jN
#   BENCH_ROUNDS=9              micro rounds (without, with[, host]) per round
#   BENCH_FILE_ITERS=50000      iterations of the file loops
#   BENCH_EXEC_ITERS=300        iterations of fork+exec
#   BENCH_CONNECT_ITERS=20000   iterations of connect
#   BENCH_HOST=1                also measure non-build processes under a host sensor
#   BENCH_BUILD=1 BENCH_MICRO=1 run that part (0 skips it)
#   BENCH_NO_SENSOR=0           1: only the runs without the sensor (debug the harness)
#   BENCH_WORK=bench/work       work dir (sources, objects, results; gitignored)
#   BENCH_TARBALL=              use this nginx-*.tar.gz instead of fetching one
#   BENCH_BUILD_TIMEOUT=600     seconds allowed for one build
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-build}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
BW=$OUT/buildwarden
WORK=${BENCH_WORK:-$ROOT/bench/work}
case $WORK in /*) ;; *) WORK=$ROOT/$WORK ;; esac
PAIRS=${BENCH_PAIRS:-3}
JOBS=${BENCH_JOBS:-$(nproc)}
ROUNDS=${BENCH_ROUNDS:-9}
FILE_ITERS=${BENCH_FILE_ITERS:-50000}
EXEC_ITERS=${BENCH_EXEC_ITERS:-300}
CONNECT_ITERS=${BENCH_CONNECT_ITERS:-20000}
HOST=${BENCH_HOST:-1}
DO_BUILD=${BENCH_BUILD:-1}
DO_MICRO=${BENCH_MICRO:-1}
NO_SENSOR=${BENCH_NO_SENSOR:-0}
BUILD_TIMEOUT=${BENCH_BUILD_TIMEOUT:-600}
T_SHORT=60      # a sensor start, a decode, a compile of micro.c
T_FETCH=600     # apt-get update + source download, configure
T_MICRO=300     # one invocation of the micro program

# nginx's configure: every module that needs nothing beyond `make deps`
# (zlib, OpenSSL); the rewrite module is left out because it needs PCRE.
NGINX_CONFIGURE=(--without-http_rewrite_module --with-threads --with-http_ssl_module
	--with-http_v2_module --with-http_realip_module --with-http_addition_module
	--with-http_sub_module --with-http_dav_module --with-http_gunzip_module
	--with-http_random_index_module --with-http_secure_link_module
	--with-http_degradation_module --with-http_slice_module
	--with-http_stub_status_module --with-http_auth_request_module --with-mail
	--with-mail_ssl_module --with-stream --with-stream_ssl_module
	--with-stream_realip_module --with-stream_ssl_preread_module)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
	if (NR % 2) printf "%.6g\n", a[(NR + 1) / 2]; else printf "%.6g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%.4g-%.4g", lo, hi; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "nan" || b == "nan") print "nan"; else printf "%.3f", a / b }'; }
verdict() { # ratio target
	awk -v r="$1" -v t="$2" 'BEGIN { if (t == "-" || r == "nan") print "-"; else if (r + 0 <= t + 0) print "met"; else printf "MISSED by %.1f%%\n", (r / t - 1) * 100 }'
}

mkdir -p "$WORK"
RES=$WORK/results
rm -rf "$RES" && mkdir -p "$RES"

# ---- preconditions -------------------------------------------------------
if [ "$NO_SENSOR" != 1 ]; then
	[ "$(id -u)" = 0 ] || die "run as root (the sensor loads BPF programs); BENCH_NO_SENSOR=1 runs only the baseline"
	[ -x "$BW" ] || die "$BW not built (make build/buildwarden)"
	if ! timeout -k 5 $T_SHORT "$BW" run -- true >"$RES/probe.out" 2>"$RES/probe.err"; then
		cat "$RES/probe.err" >&2
		die "'buildwarden run -- true' fails: the sensor does not work on this host yet"
	fi
fi
for t in gcc make tar awk python3; do
	command -v $t >/dev/null || die "$t missing (make deps)"
done

# ---- 1. the project: nginx from Debian's source package ------------------
# The upstream tarball is fetched once into $WORK/dl with `apt-get source
# --download-only` through a private apt configuration (deb-src entry for the
# Debian mirror the system already uses; the system's apt config and lists are
# never modified), and reused afterwards.
APT=$WORK/apt
apt_opts() {
	printf '%s\n' -o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/sources.list.d" \
		-o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o "Dir::Etc::Preferences=$APT/preferences" \
		-o "Dir::Etc::PreferencesParts=$APT/preferences.d" -o "APT::Sandbox::User=root"
}
fetch_nginx() {
	local tb
	tb=$(ls "$WORK"/dl/nginx_*.orig.tar.gz 2>/dev/null | tail -1 || true)
	if [ -n "${BENCH_TARBALL:-}" ]; then
		tb=$BENCH_TARBALL
	elif [ -z "$tb" ]; then
		command -v apt-get >/dev/null || die "no apt-get: set BENCH_TARBALL=/path/to/nginx-X.Y.Z.tar.gz"
		log "fetching nginx's Debian source package (first run only)"
		rm -rf "$APT" && mkdir -p "$APT"/{sources.list.d,preferences.d,lists/partial,cache/archives/partial} "$WORK/dl"
		: >"$APT/sources.list"
		# The configured Debian repository whose suite is the release itself
		# (not -updates/-security), as apt resolved it from the system config.
		local repo
		repo=$(apt-get indextargets --format '$(TARGET_OF) $(REPO_URI) $(RELEASE)' 2>/dev/null |
			awk '$1 == "deb" && $3 !~ /-/ && $2 ~ /debian/ { print $2, $3; exit }')
		[ -n "$repo" ] || die "no Debian repository in the apt configuration; set BENCH_TARBALL"
		set -- $repo
		{
			echo "Types: deb-src"
			echo "URIs: $1"
			echo "Suites: $2"
			echo "Components: main"
			[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] &&
				echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
		} >"$APT/sources.list.d/bench-src.sources"
		mapfile -t O < <(apt_opts)
		timeout -k 10 $T_FETCH apt-get "${O[@]}" -q update >"$RES/apt-update.log" 2>&1 ||
			{ cat "$RES/apt-update.log" >&2; die "apt-get update (private source list) failed"; }
		(cd "$WORK/dl" && timeout -k 10 $T_FETCH apt-get "${O[@]}" -q source --download-only nginx) \
			>"$RES/apt-source.log" 2>&1 || { cat "$RES/apt-source.log" >&2; die "apt-get source nginx failed"; }
		tb=$(ls "$WORK"/dl/nginx_*.orig.tar.gz | tail -1)
	fi
	[ -f "$tb" ] || die "no nginx tarball ($tb)"
	echo "$tb"
}

SRC=
prepare_nginx() {
	local tb dir
	tb=$(fetch_nginx)
	dir=$(tar tzf "$tb" | awk -F/ 'NR == 1 { d = $1 } END { print d }')
	SRC=$WORK/src/$dir
	if [ ! -f "$SRC/src/core/nginx.c" ]; then
		log "unpacking $(basename "$tb")"
		rm -rf "$WORK/src" && mkdir -p "$WORK/src"
		timeout -k 5 $T_FETCH tar xzf "$tb" -C "$WORK/src"
	fi
	local want="${NGINX_CONFIGURE[*]}"
	if [ ! -f "$SRC/objs/Makefile" ] || [ "$(cat "$SRC/.bench-configure" 2>/dev/null)" != "$want" ]; then
		log "configuring $dir"
		(cd "$SRC" && timeout -k 5 $T_FETCH ./configure "${NGINX_CONFIGURE[@]}") >"$RES/configure.log" 2>&1 ||
			{ tail -20 "$RES/configure.log" >&2; die "nginx configure failed (see $RES/configure.log)"; }
		echo "$want" >"$SRC/.bench-configure"
	fi
	NCU=$(grep -c '^objs/.*\.o:' "$SRC/objs/Makefile" || true)
}

# ---- policy --------------------------------------------------------------
MU=$WORK/micro-dirs/unprotected
MP=$WORK/micro-dirs/protected
DENYX=$WORK/micro-dirs/no-exec
POLICY=$WORK/policy.yaml
write_policy() {
	mkdir -p "$MU" "$MP" "$DENYX"
	{
		echo "version: 1"
		echo "mode: audit"
		echo "protect:"
		if [ -n "$SRC" ]; then
			echo "  - path: $SRC/src"
			echo "  - path: $SRC/objs"
		fi
		echo "  - path: $MP"
		echo "exec:"
		echo "  scope: build"
		echo "  deny: [\"$DENYX\"]"
		echo "network:"
		echo "  scope: build"
		echo "  default: deny"
		echo "  allow: [\"127.0.0.0/8\", \"::1/128\"]"
	} >"$POLICY"
	if [ "$NO_SENSOR" != 1 ]; then
		timeout -k 5 $T_SHORT "$BW" policy check "$POLICY" >"$RES/policy-check.log" 2>&1 ||
			{ cat "$RES/policy-check.log" >&2; die "buildwarden rejects the bench policy $POLICY"; }
	fi
}

# events file -> one summary line (events, violations, drops) via decode
ev_summary() { # events-file
	if [ ! -s "$1" ]; then echo "events=0 violations=? drops=? (no events file)"; return; fi
	if timeout -k 5 $T_SHORT "$BW" decode "$1" >"$1.json" 2>"$1.decode.err"; then :; else
		echo "decode-exit=$? $(head -c 200 "$1.decode.err" | tr '\n' ' ')"
	fi
	python3 "$ROOT/bench/evsummary.py" "$1.json" 2>&1 | head -1
}
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# ---- 2. build benchmark ----------------------------------------------------
clean_objs() { find "$SRC/objs" -name '*.o' -delete; rm -f "$SRC/objs/nginx"; }

build_once() { # label with(0|1) -> prints "wall-seconds cpu-seconds"
	local label=$1 with=$2 rc=0 TIMEFORMAT='%R %U %S'
	clean_objs
	sync
	if [ "$with" = 1 ]; then
		{ time { (cd "$SRC" && exec timeout -k 10 "$BUILD_TIMEOUT" "$BW" run --policy "$POLICY" \
			--events "$RES/$label.pb" -- make -j"$JOBS") >"$RES/$label.out" 2>"$RES/$label.err"; }; } \
			2>"$RES/$label.time" || rc=$?
	else
		{ time { (cd "$SRC" && exec timeout -k 10 "$BUILD_TIMEOUT" make -j"$JOBS") \
			>"$RES/$label.out" 2>"$RES/$label.err"; }; } 2>"$RES/$label.time" || rc=$?
	fi
	echo "$rc" >"$RES/$label.rc"
	case $rc in
	0) ;;
	77) log "$label: buildwarden reported violations (exit 77) on a clean build" ;;
	124 | 137) die "$label: timed out after ${BUILD_TIMEOUT}s" ;;
	*) tail -20 "$RES/$label.err" >&2; die "$label: build failed (exit $rc)" ;;
	esac
	[ -x "$SRC/objs/nginx" ] || die "$label: no objs/nginx after the build"
	awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$RES/$label.time"
}

BUILD_ROWS=()
BUILD_NOTES=()
# Order: W1 S1 W2 S2 ... Wn Sn W(n+1) (W without, S with the sensor). Each S is
# compared with the mean of the W just before and just after it, which cancels
# a linear drift of the machine's speed (other load fading in or out); the
# headline is the median of those n bracketed ratios.
bracketed() { # column -> one ratio per pair
	awk -v c="$1" 'NR == FNR { w[FNR] = $c; next } { printf "%.4f\n", $c / ((w[FNR] + w[FNR + 1]) / 2) }' \
		"$RES/build.without" "$RES/build.with"
}
run_build_bench() {
	log "build: nginx, $NCU compilation units, make -j$JOBS, warm-up + $PAIRS pairs + 1 closing run without"
	build_once warmup 0 >/dev/null
	: >"$RES/build.without"; : >"$RES/build.with"
	local i s sum
	for i in $(seq 1 "$((PAIRS + 1))"); do
		s=$(build_once "build$i-without" 0); echo "$s" >>"$RES/build.without"
		log "  run $i: without ${s% *}s wall, ${s#* }s cpu; load $(cut -d' ' -f1-3 /proc/loadavg)"
		[ "$NO_SENSOR" = 1 ] && continue
		[ "$i" -gt "$PAIRS" ] && break
		s=$(build_once "build$i-with" 1); echo "$s" >>"$RES/build.with"
		sum=$(ev_summary "$RES/build$i-with.pb")
		echo "$sum" >"$RES/build$i-with.summary"
		log "  run $i: with    ${s% *}s wall, ${s#* }s cpu; load $(cut -d' ' -f1-3 /proc/loadavg); exit=$(cat "$RES/build$i-with.rc") $sum"
		grep -i -E 'drop|lost' "$RES/build$i-with.err" | sed 's/^/           summary: /' >&2 || true
	done
	local mo co mw cw r rc rplain
	mo=$(awk '{ print $1 }' "$RES/build.without" | median)
	co=$(awk '{ print $2 }' "$RES/build.without" | median)
	if [ "$NO_SENSOR" = 1 ]; then
		BUILD_ROWS+=("| nginx build, make -j$JOBS ($NCU CUs) | ${mo} s (cpu ${co} s) | - | - | 1.02 | - | - | - | $(awk '{ print $1 }' "$RES/build.without" | minmax) / - s |")
		return 0
	fi
	mw=$(awk '{ print $1 }' "$RES/build.with" | median)
	cw=$(awk '{ print $2 }' "$RES/build.with" | median)
	r=$(bracketed 1 | median); r=$(ratio "$r" 1)
	rc=$(bracketed 2 | median); rc=$(ratio "$rc" 1)
	rplain=$(ratio "$mw" "$mo")
	local rmin
	rmin=$(ratio "$(awk '{ print $1 }' "$RES/build.with" | sort -g | head -1)" "$(awk '{ print $1 }' "$RES/build.without" | sort -g | head -1)")
	BUILD_NOTES+=("- Build, wall ratio of each run with the sensor to the mean of the runs without just before and after it: $(bracketed 1 | paste -sd' ' -) (median $r);" \
		"  the same for cpu time (user+sys of make, compilers and buildwarden): $(bracketed 2 | paste -sd' ' -) (median $rc);" \
		"  plain ratio of the medians: $rplain; ratio of the fastest runs (min/min): $rmin." \
		"  Wall times in run order, without: $(awk '{ print $1 }' "$RES/build.without" | paste -sd' ' -) s; with: $(awk '{ print $1 }' "$RES/build.with" | paste -sd' ' -) s.")
	BUILD_ROWS+=("| nginx build, make -j$JOBS ($NCU CUs), wall | ${mo} s (cpu ${co} s) | ${mw} s (cpu ${cw} s) | **$r** | 1.02 ($(verdict "$r" 1.02)) | $rc | $rmin | - | $(awk '{ print $1 }' "$RES/build.without" | minmax) / $(awk '{ print $1 }' "$RES/build.with" | minmax) s |")
	# drops / events / violations of every build under the sensor
	local f d=0 dq=0 v=0 dv
	for f in "$RES"/build*-with.summary; do
		dv=$(field drops "$(cat "$f")")
		case $dv in '' | '?') dq=1 ;; *) d=$((d + dv)) ;; esac
		v=$((v + $(field violations "$(cat "$f")" | sed 's/?/0/;s/^$/0/')))
	done
	BUILD_NOTES+=("- Builds under the sensor: events per build $(for f in "$RES"/build*-with.summary; do field events "$(cat "$f")"; done | paste -sd/ -);" \
		"  kernel drops (sum over $PAIRS builds): $([ $dq = 1 ] && echo "NOT REPORTED by the events stream (no stats/runEnd drop counter)" || echo "$d") (target 0);" \
		"  violations: $v (a clean build should have 0); exit codes: $(cat "$RES"/build*-with.rc | paste -sd/ -).")
	local stderr_drops
	stderr_drops=$(grep -h -i -E 'drop|lost' "$RES"/build*-with.err 2>/dev/null | sort | uniq -c | sed 's/^ */    /' || true)
	if [ -n "$stderr_drops" ]; then
		BUILD_NOTES+=("- Run summary lines about drops (stderr of \`buildwarden run\`, count of identical lines):" '```' "$stderr_drops" '```')
	fi
	BUILD_RATIO=$r
	return 0
}

# ---- 3. micro-benchmarks --------------------------------------------------
MICRO=$WORK/micro
TESTS=(null_syscall write_unprot write_prot open_ro_unprot open_ro_prot exec connect)
declare -A TARGET=([null_syscall]=- [write_unprot]=1.05 [write_prot]=- [open_ro_unprot]=1.05 [open_ro_prot]=- [exec]=1.10 [connect]=1.05)
declare -A LABEL=(
	[null_syscall]="(0) getppid(), the cost every syscall pays"
	[write_unprot]="(a) open(O_CREAT\\|O_WRONLY)+write 4 KiB+close, unprotected dir"
	[write_prot]="(b) same, protected dir (build writes it: allowed)"
	[open_ro_unprot]="(c) open(O_RDONLY)+close, unprotected file"
	[open_ro_prot]="(c') open(O_RDONLY)+close, protected file"
	[exec]="(d) fork+exec /bin/true+wait"
	[connect]="(e) TCP connect 127.0.0.1 + close"
)
micro_args() { echo "$MU" "$MP" "$FILE_ITERS" "$EXEC_ITERS" "$CONNECT_ITERS"; }

micro_host() { # round -> runs micro as a non-build process under an idle host sensor
	local r=$1 fifo=$RES/host.fifo ready=$RES/host.ready pid rc=0 i
	rm -f "$fifo" "$ready"; mkfifo "$fifo"
	timeout -k 10 $T_MICRO "$BW" run --policy "$POLICY" --events "$RES/micro$r-host.pb" \
		-- sh -c 'echo up > "$1"; read x < "$2"' sh "$ready" "$fifo" \
		>"$RES/micro$r-host.out" 2>"$RES/micro$r-host.err" &
	pid=$!
	for i in $(seq 1 600); do [ -s "$ready" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
	if [ -s "$ready" ]; then
		# shellcheck disable=SC2046
		# write_prot is left out: a non-build process writing a protected tree
		# is a violation (that path is not the cost of an ordinary process).
		timeout -k 5 $T_MICRO "$MICRO" $(micro_args) null_syscall write_unprot open_ro_unprot open_ro_prot exec connect \
			>"$RES/micro$r.host" || rc=$?
	else
		log "host sensor did not start (see $RES/micro$r-host.err)"; rc=1
	fi
	timeout 10 sh -c 'echo > "$1"' sh "$fifo" || true
	wait $pid || true
	rm -f "$fifo"
	[ $rc = 0 ] || die "micro under host sensor failed (exit $rc)"
}

MICRO_ROWS=()
MICRO_NOTES=()
run_micro_bench() {
	timeout -k 5 $T_SHORT gcc -O2 -Wall -o "$MICRO" "$ROOT/bench/micro.c" -pthread
	log "micro: $ROUNDS rounds; file loops x$FILE_ITERS, exec x$EXEC_ITERS, connect x$CONNECT_ITERS"
	local r rc
	for r in $(seq 1 "$ROUNDS"); do
		# shellcheck disable=SC2046
		timeout -k 5 $T_MICRO "$MICRO" $(micro_args) >"$RES/micro$r.without" ||
			die "micro (without sensor) failed"
		if [ "$NO_SENSOR" != 1 ]; then
			rc=0
			# shellcheck disable=SC2046
			timeout -k 5 $T_MICRO "$BW" run --policy "$POLICY" --events "$RES/micro$r-with.pb" \
				-- "$MICRO" $(micro_args) >"$RES/micro$r.with" 2>"$RES/micro$r-with.err" || rc=$?
			echo $rc >"$RES/micro$r-with.rc"
			case $rc in 0) ;; 77) log "micro round $r: violations reported (exit 77)" ;;
			*) cat "$RES/micro$r-with.err" >&2; die "micro under the sensor failed (exit $rc)" ;; esac
			[ "$HOST" = 1 ] && micro_host "$r"
		fi
		log "  round $r/$ROUNDS done"
	done
	local t mo mw mh rw rh co cw rcpu spread rmin
	for t in "${TESTS[@]}"; do
		mo=$(col "$t" 3 without | median)
		if [ "$NO_SENSOR" = 1 ]; then
			MICRO_ROWS+=("| ${LABEL[$t]} | $(fmt_ns "$mo") | - | - | ${TARGET[$t]} | - | - | - | $(col "$t" 3 without | minmax) ns / - |")
			continue
		fi
		mw=$(col "$t" 3 with | median)
		co=$(col "$t" 4 without | median)
		cw=$(col "$t" 4 with | median)
		rw=$(ratio "$mw" "$mo")
		rcpu=$(ratio "$cw" "$co")
		rh=-
		if [ "$HOST" = 1 ]; then
			mh=$(col "$t" 3 host | median)
			rh=$(ratio "$mh" "$mo")
			[ "$rh" = nan ] && rh="- (a violation there)"
		fi
		rmin=$(ratio "$(col "$t" 3 with | sort -g | head -1)" "$(col "$t" 3 without | sort -g | head -1)")
		spread="$(col "$t" 3 without | awk '{ print $1 / 1000 }' | minmax) / $(col "$t" 3 with | awk '{ print $1 / 1000 }' | minmax) µs"
		MICRO_ROWS+=("| ${LABEL[$t]} | $(fmt_ns "$mo") | $(fmt_ns "$mw") | **$rw** | $(target_cell "$rw" "${TARGET[$t]}") | $rcpu | $rmin | $rh | $spread |")
	done
	[ "$NO_SENSOR" = 1 ] && return 0
	local s lost
	lost=$(sed -n 's/^ *lost: \([0-9]*\).*/\1/p' "$RES"/micro*-with.err | paste -sd/ -)
	MICRO_NOTES+=("- Events lost by the micro runs as a build process, per round (\`lost:\` in the run summary): ${lost:-not reported}.")
	s=$(ev_summary "$RES/micro1-with.pb")
	MICRO_NOTES+=("- One micro run as a build process (round 1): $s; exit $(cat "$RES/micro1-with.rc").")
	if [ "$HOST" = 1 ] && [ -s "$RES/micro1-host.pb" ]; then
		MICRO_NOTES+=("- Idle host sensor during round 1 (micro is not a build process there): $(ev_summary "$RES/micro1-host.pb").")
	fi
	return 0
}
col() { # test column kind -> values of that column over all rounds
	cat "$RES"/micro*."$3" | awk -v t="$1" -v c="$2" '$1 == t { print $c }'
}
target_cell() { # ratio target
	if [ "$2" = - ]; then echo -; else echo "$2 ($(verdict "$1" "$2"))"; fi
}
fmt_ns() { awk -v n="$1" 'BEGIN { if (n == "nan") print "nan"; else if (n >= 1e6) printf "%.2f ms", n / 1e6; else printf "%.2f µs", n / 1e3 }'; }

# ---- run -------------------------------------------------------------------
START=$(now)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
NCU=0
BUILD_RATIO=
if [ "$DO_BUILD" = 1 ]; then prepare_nginx; fi
write_policy
STARTUP=-
if [ "$NO_SENSOR" != 1 ]; then
	: >"$RES/startup"
	for i in 1 2 3; do
		t0=$(now); timeout -k 5 $T_SHORT "$BW" run --policy "$POLICY" -- true >/dev/null 2>&1 || true; t1=$(now)
		sub "$t1" "$t0" >>"$RES/startup"; echo >>"$RES/startup"
	done
	STARTUP=$(median <"$RES/startup")
fi
if [ "$DO_BUILD" = 1 ]; then run_build_bench; fi
if [ "$DO_MICRO" = 1 ]; then run_micro_bench; fi

# ---- report ---------------------------------------------------------------
REPORT=$WORK/results.md
{
	echo "# buildwarden bench results"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); host: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
	echo "- buildwarden: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- bpf user include 2>/dev/null || echo ' (+ uncommitted changes)'); sensor: $([ "$NO_SENSOR" = 1 ] && echo 'NOT USED (BENCH_NO_SENSOR=1)' || echo "$BW")"
	[ "$DO_BUILD" = 1 ] && echo "- project: $(basename "$SRC") ($NCU compilation units), make -j$JOBS, warm-up + $PAIRS pairs (W S ... W, each S bracketed by two Ws)"
	[ "$DO_MICRO" = 1 ] && echo "- micro: $ROUNDS rounds; file loops $FILE_ITERS iterations, exec $EXEC_ITERS, connect $CONNECT_ITERS"
	echo "- \`buildwarden run --policy ... -- true\` (sensor start + stop), median of 3: ${STARTUP} s"
	echo "- policy: $POLICY"
	echo "- load average at start / end: $LOAD0 / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the host inflates wall times; cpu = user+sys incl. children)"
	echo
	echo "| what | without (median) | with (median) | ratio with/without (wall; build: median of bracketed pairs) | target | ratio (cpu) | ratio of minima (wall) | non-build process under a host sensor (wall ratio) | spread min-max without / with |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for row in "${BUILD_ROWS[@]+"${BUILD_ROWS[@]}"}" "${MICRO_ROWS[@]+"${MICRO_ROWS[@]}"}"; do echo "$row"; done
	echo
	for n in "${BUILD_NOTES[@]+"${BUILD_NOTES[@]}"}" "${MICRO_NOTES[@]+"${MICRO_NOTES[@]}"}"; do echo "$n"; done
	echo "- total bench time: $(sub "$(now)" "$START") s; raw data: $RES"
} >"$REPORT"
echo
cat "$REPORT"
