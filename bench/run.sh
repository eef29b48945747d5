#!/usr/bin/env bash
# bench/run.sh: `make bench`. Measures what `buildwarden run` costs a real build
# and single syscalls. See docs/PERFORMANCE.md for the method and the figures.
#
#  1. Builds: nginx (upstream tarball from Debian's source package, 182 C
#     compilation units) with `make -jN`, and GNU hello (autotools: ./configure
#     + make -jN, exec-heavy), alternately without the sensor, under
#     `buildwarden run --mode audit` and `--mode enforce` (W A E W A E ... W);
#     median wall- and cpu-time ratios, each against the mean of the Ws around it.
#     Kernel drops, events and violations are read from the events file.
#  2. Micro: bench/micro.c loops (open/write/close, read-only open, fork+exec,
#     loopback connect), alternately without the sensor, as a build process
#     under `buildwarden run`, and (BENCH_HOST=1) as a non-build process while a
#     `buildwarden run -- <idle>` sensor is active; median per-iteration ratio.
#
# Knobs (environment):
#   OUT=build                   where build/buildwarden is (as in the Makefile)
#   BENCH_PAIRS=3               build rounds (without, then each mode) after one warm-up, + 1 closing without
#   BENCH_PROJECTS="nginx hello" which builds: nginx (make only) and GNU hello (./configure + make)
#   BENCH_MODES="audit enforce" the sensor's modes measured beside no sensor; with
#                               BENCH_BASE_BW set, also audit-base / enforce-base
#   BENCH_BASE_BW=              another buildwarden binary (e.g. the commit before a
#                               change), run by the *-base modes in the same rounds, so
#                               a before/after comparison shares the machine's load
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
read -r -a PROJECTS <<<"${BENCH_PROJECTS:-nginx hello}"
read -r -a MODES <<<"${BENCH_MODES:-audit enforce}"
BASE_BW=${BENCH_BASE_BW:-}
for m in "${MODES[@]}"; do case $m in audit | enforce) ;;
	audit-base | enforce-base) [ -x "$BASE_BW" ] || { echo "[bench] error: BENCH_MODES: '$m' needs BENCH_BASE_BW, an executable buildwarden" >&2; exit 1; } ;;
	*) echo "[bench] error: BENCH_MODES: '$m' is not audit, enforce, audit-base or enforce-base" >&2; exit 1 ;; esac; done
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
orig_tarball() { # package -> its downloaded upstream tarball (not the .asc beside it), or nothing
	ls "$WORK"/dl/"$1"_*.orig.tar.gz "$WORK"/dl/"$1"_*.orig.tar.xz "$WORK"/dl/"$1"_*.orig.tar.bz2 2>/dev/null | tail -1 || true
}
fetch_orig() { # Debian source package -> path of its upstream tarball
	local pkg=$1 tb
	tb=$(orig_tarball "$pkg")
	if [ "$pkg" = nginx ] && [ -n "${BENCH_TARBALL:-}" ]; then
		tb=$BENCH_TARBALL
	elif [ -z "$tb" ]; then
		command -v apt-get >/dev/null || die "no apt-get: set BENCH_TARBALL=/path/to/nginx-X.Y.Z.tar.gz"
		log "fetching $pkg's Debian source package (first run only)"
		mkdir -p "$APT"/{sources.list.d,preferences.d,lists/partial,cache/archives/partial} "$WORK/dl"
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
		[ -d "$APT/lists" ] && ls "$APT"/lists/*Sources* >/dev/null 2>&1 ||
		timeout -k 10 $T_FETCH apt-get "${O[@]}" -q update >"$RES/apt-update.log" 2>&1 ||
			{ cat "$RES/apt-update.log" >&2; die "apt-get update (private source list) failed"; }
		(cd "$WORK/dl" && timeout -k 10 $T_FETCH apt-get "${O[@]}" -q source --download-only "$pkg") \
			>"$RES/apt-source.log" 2>&1 || { cat "$RES/apt-source.log" >&2; die "apt-get source $pkg failed"; }
		tb=$(orig_tarball "$pkg")
	fi
	[ -f "$tb" ] || die "no $pkg tarball ($tb)"
	echo "$tb"
}

SRC=
prepare_nginx() {
	local tb dir
	tb=$(fetch_orig nginx)
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
		if [ -n "$HSRC" ]; then
			echo "  - path: $HSRC"
			echo "  - path: $HBUILD"
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
# Two projects: nginx (make only: its configure runs once, outside the
# measurement) and GNU hello (an autotools project measured as a whole:
# ./configure + make, which is what most CI builds run and is exec-heavy).
# Each measured run starts from the same state (objects removed, or a fresh
# build directory) and is run without the sensor (W), under `run --mode audit`
# (A) and under `run --mode enforce` (E).
HSRC=
HBUILD=$WORK/hello-build
prepare_hello() {
	local tb dir
	tb=$(fetch_orig hello)
	dir=$(tar tf "$tb" | awk -F/ 'NR == 1 { d = $1 } END { print d }')
	HSRC=$WORK/src/$dir
	if [ ! -f "$HSRC/configure" ]; then
		log "unpacking $(basename "$tb")"
		mkdir -p "$WORK/src"
		timeout -k 5 $T_FETCH tar xf "$tb" -C "$WORK/src"
	fi
	mkdir -p "$HBUILD"
}
project_clean() { # project
	case $1 in
	nginx) find "$SRC/objs" -name '*.o' -delete; rm -f "$SRC/objs/nginx" ;;
	hello) rm -rf "$HBUILD" && mkdir -p "$HBUILD" ;;
	esac
}
project_cmd() { # project -> the command line to measure, run in project_dir
	case $1 in
	nginx) echo "make -j$JOBS" ;;
	hello) echo "sh -c '\"$HSRC/configure\" -q >/dev/null && make -j$JOBS'" ;;
	esac
}
project_dir() { case $1 in nginx) echo "$SRC" ;; hello) echo "$HBUILD" ;; esac; }
project_output() { case $1 in nginx) echo "$SRC/objs/nginx" ;; hello) echo "$HBUILD/hello" ;; esac; }
project_title() { # project
	case $1 in
	nginx) echo "nginx build, make -j$JOBS ($NCU CUs)" ;;
	hello) echo "GNU hello, ./configure + make -j$JOBS" ;;
	esac
}

build_once() { # project label mode(none|audit|enforce) -> prints "wall-seconds cpu-seconds"
	local p=$1 label=$2 mode=$3 rc=0 TIMEFORMAT='%R %U %S' dir cmd
	project_clean "$p"
	sync
	dir=$(project_dir "$p")
	cmd=$(project_cmd "$p")
	if [ "$mode" != none ]; then
		local bw=$BW
		case $mode in *-base) bw=$BASE_BW; mode=${mode%-base} ;; esac
		{ time { (cd "$dir" && eval exec timeout -k 10 "$BUILD_TIMEOUT" "$bw" run --mode "$mode" --policy "$POLICY" \
			--events "$RES/$label.pb" -- "$cmd") >"$RES/$label.out" 2>"$RES/$label.err"; }; } \
			2>"$RES/$label.time" || rc=$?
	else
		{ time { (cd "$dir" && eval exec timeout -k 10 "$BUILD_TIMEOUT" "$cmd") \
			>"$RES/$label.out" 2>"$RES/$label.err"; }; } 2>"$RES/$label.time" || rc=$?
	fi
	echo "$rc" >"$RES/$label.rc"
	case $rc in
	0) ;;
	77) log "$label: buildwarden reported violations or an incomplete run (exit 77) on a clean build" ;;
	124 | 137) die "$label: timed out after ${BUILD_TIMEOUT}s" ;;
	*) tail -20 "$RES/$label.err" >&2; die "$label: build failed (exit $rc)" ;;
	esac
	[ -x "$(project_output "$p")" ] || die "$label: no $(project_output "$p") after the build"
	awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$RES/$label.time"
}

BUILD_ROWS=()
BUILD_NOTES=()
# Order: W1 A1 E1 W2 A2 E2 ... Wn An En W(n+1). Each A and E is compared with
# the mean of the W just before and just after its round, which cancels a
# linear drift of the machine's speed (other load fading in or out); the
# headline is the median of those n bracketed ratios.
bracketed() { # project mode column -> one ratio per round
	awk -v c="$3" 'NR == FNR { w[FNR] = $c; next } { printf "%.4f\n", $c / ((w[FNR] + w[FNR + 1]) / 2) }' \
		"$RES/$1.none" "$RES/$1.$2"
}
build_row() { # project mode target
	local p=$1 m=$2 t=$3 mo co mw cw r rc rmin
	mo=$(awk '{ print $1 }' "$RES/$p.none" | median)
	co=$(awk '{ print $2 }' "$RES/$p.none" | median)
	mw=$(awk '{ print $1 }' "$RES/$p.$m" | median)
	cw=$(awk '{ print $2 }' "$RES/$p.$m" | median)
	r=$(bracketed "$p" "$m" 1 | median); r=$(ratio "$r" 1)
	rc=$(bracketed "$p" "$m" 2 | median); rc=$(ratio "$rc" 1)
	rmin=$(ratio "$(awk '{ print $1 }' "$RES/$p.$m" | sort -g | head -1)" "$(awk '{ print $1 }' "$RES/$p.none" | sort -g | head -1)")
	BUILD_ROWS+=("| $(project_title "$p"), $m mode | ${mo} s (cpu ${co} s) | ${mw} s (cpu ${cw} s) | **$r** | $t ($(verdict "$r" "$t")) | $rc ($(verdict "$rc" "$t")) | $rmin | - | - | $(awk '{ print $1 }' "$RES/$p.none" | minmax) / $(awk '{ print $1 }' "$RES/$p.$m" | minmax) s |")
	BUILD_NOTES+=("- $(project_title "$p"), $m mode: wall ratio of each run to the mean of the runs without just before and after its round: $(bracketed "$p" "$m" 1 | paste -sd' ' -) (median $r);" \
		"  cpu time (user+sys of the build and buildwarden): $(bracketed "$p" "$m" 2 | paste -sd' ' -) (median $rc); ratio of the fastest runs: $rmin." \
		"  Wall times in run order, without: $(awk '{ print $1 }' "$RES/$p.none" | paste -sd' ' -) s; $m: $(awk '{ print $1 }' "$RES/$p.$m" | paste -sd' ' -) s.")
}
build_drops_note() { # project mode
	local p=$1 m=$2 f d=0 dq=0 v=0 dv
	for f in "$RES"/"$p"*-"$m".summary; do
		dv=$(field drops "$(cat "$f")")
		case $dv in '' | '?') dq=1 ;; *) d=$((d + dv)) ;; esac
		v=$((v + $(field violations "$(cat "$f")" | sed 's/?/0/;s/^$/0/')))
	done
	BUILD_NOTES+=("  Under the sensor ($m): events per build $(for f in "$RES"/"$p"*-"$m".summary; do field events "$(cat "$f")"; done | paste -sd/ -);" \
		"  kernel drops (sum): $([ $dq = 1 ] && echo "NOT REPORTED by the events stream" || echo "$d") (target 0);" \
		"  violations: $v (a clean build should have 0); exit codes: $(cat "$RES"/"$p"*-"$m".rc | paste -sd/ -).")
	local perm
	# audit mode asks nothing: no such line, and grep's exit 1 must not end the bench
	perm=$({ grep -h 'permission answers:' "$RES"/"$p"*-"$m".err 2>/dev/null || true; } |
		sed 's/^ *permission answers: //; s/ (.*);/;/' | paste -sd'|' - | sed 's/|/ | /g')
	[ -n "$perm" ] && BUILD_NOTES+=("  Permission answers per build ($m): $perm.")
	return 0
}
run_build_bench() { # project
	local p=$1 i s sum m
	log "build: $(project_title "$p"), warm-up + $PAIRS rounds (without, ${MODES[*]}) + 1 closing run without"
	build_once "$p" "$p-warmup" none >/dev/null
	: >"$RES/$p.none"
	for m in "${MODES[@]}"; do : >"$RES/$p.$m"; done
	for i in $(seq 1 "$((PAIRS + 1))"); do
		s=$(build_once "$p" "$p$i-none" none); echo "$s" >>"$RES/$p.none"
		log "  $p run $i: without ${s% *}s wall, ${s#* }s cpu; load $(cut -d' ' -f1-3 /proc/loadavg)"
		[ "$NO_SENSOR" = 1 ] && continue
		[ "$i" -gt "$PAIRS" ] && break
		for m in "${MODES[@]}"; do
			s=$(build_once "$p" "$p$i-$m" "$m"); echo "$s" >>"$RES/$p.$m"
			sum=$(ev_summary "$RES/$p$i-$m.pb")
			echo "$sum" >"$RES/$p$i-$m.summary"
			log "  $p run $i: $m ${s% *}s wall, ${s#* }s cpu; load $(cut -d' ' -f1-3 /proc/loadavg); exit=$(cat "$RES/$p$i-$m.rc") $sum"
		done
	done
	if [ "$NO_SENSOR" = 1 ]; then
		BUILD_ROWS+=("| $(project_title "$p") | $(awk '{ print $1 }' "$RES/$p.none" | median) s | - | - | - | - | - | - | - | - |")
		return 0
	fi
	for m in "${MODES[@]}"; do
		case $m in audit*) build_row "$p" "$m" 1.02 ;; enforce*) build_row "$p" "$m" 1.03 ;; esac
		build_drops_note "$p" "$m"
	done
	local stderr_drops
	stderr_drops=$(grep -h -i -E 'drop|lost' "$RES"/"$p"*-audit*.err "$RES"/"$p"*-enforce*.err 2>/dev/null | sort | uniq -c | sed 's/^ */    /' || true)
	if [ -n "$stderr_drops" ]; then
		BUILD_NOTES+=("- $p: run summary lines about drops (stderr of \`buildwarden run\`, count of identical lines):" '```' "$stderr_drops" '```')
	fi
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
			if [[ " ${MODES[*]} " == *" enforce "* ]]; then
				rc=0
				# shellcheck disable=SC2046
				timeout -k 5 $T_MICRO "$BW" run --mode enforce --policy "$POLICY" --events "$RES/micro$r-enforce.pb" \
					-- "$MICRO" $(micro_args) >"$RES/micro$r.enforce" 2>"$RES/micro$r-enforce.err" || rc=$?
				case $rc in 0) ;; *) cat "$RES/micro$r-enforce.err" >&2; die "micro under the sensor in enforce mode failed (exit $rc)" ;; esac
			fi
			[ "$HOST" = 1 ] && micro_host "$r"
		fi
		log "  round $r/$ROUNDS done"
	done
	local t mo mw mh rw rh co cw rcpu spread rmin re
	for t in "${TESTS[@]}"; do
		mo=$(col "$t" 3 without | median)
		if [ "$NO_SENSOR" = 1 ]; then
			MICRO_ROWS+=("| ${LABEL[$t]} | $(fmt_ns "$mo") | - | - | ${TARGET[$t]} | - | - | - | - | $(col "$t" 3 without | minmax) ns / - |")
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
		re=-
		[[ " ${MODES[*]} " == *" enforce "* ]] && re=$(ratio "$(col "$t" 3 enforce | median)" "$mo")
		spread="$(col "$t" 3 without | awk '{ print $1 / 1000 }' | minmax) / $(col "$t" 3 with | awk '{ print $1 / 1000 }' | minmax) µs"
		MICRO_ROWS+=("| ${LABEL[$t]} | $(fmt_ns "$mo") | $(fmt_ns "$mw") | **$rw** | $(target_cell "$rw" "${TARGET[$t]}") | $rcpu | $rmin | $rh | $re | $spread |")
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
if [ "$DO_BUILD" = 1 ]; then
	for p in "${PROJECTS[@]}"; do
		case $p in nginx) prepare_nginx ;; hello) prepare_hello ;; *) die "unknown project '$p' in BENCH_PROJECTS (nginx, hello)" ;; esac
	done
fi
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
if [ "$DO_BUILD" = 1 ]; then for p in "${PROJECTS[@]}"; do run_build_bench "$p"; done; fi
if [ "$DO_MICRO" = 1 ]; then run_micro_bench; fi

# ---- report ---------------------------------------------------------------
REPORT=$WORK/results.md
{
	echo "# buildwarden bench results"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); host: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
	echo "- buildwarden: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- bpf user include 2>/dev/null || echo ' (+ uncommitted changes)'); sensor: $([ "$NO_SENSOR" = 1 ] && echo 'NOT USED (BENCH_NO_SENSOR=1)' || echo "$BW")$([ -n "$BASE_BW" ] && echo "; *-base modes: $BASE_BW")"
	[ "$DO_BUILD" = 1 ] && echo "- builds: ${PROJECTS[*]} ($([ -n "$SRC" ] && echo "$(basename "$SRC"), $NCU compilation units; ")$([ -n "$HSRC" ] && echo "$(basename "$HSRC") configure + make")), make -j$JOBS, warm-up + $PAIRS rounds (W ${MODES[*]} ... W: each run under the sensor is bracketed by the two Ws around its round)"
	[ "$DO_MICRO" = 1 ] && echo "- micro: $ROUNDS rounds; file loops $FILE_ITERS iterations, exec $EXEC_ITERS, connect $CONNECT_ITERS"
	echo "- \`buildwarden run --policy ... -- true\` (sensor start + stop), median of 3: ${STARTUP} s"
	echo "- policy: $POLICY"
	echo "- load average at start / end: $LOAD0 / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the host inflates wall times; cpu = user+sys incl. children)"
	echo
	echo "| what | without (median) | with (median) | ratio with/without (wall; build: median of bracketed rounds) | target | ratio (cpu) | ratio of minima (wall) | non-build process under a host sensor (wall ratio) | micro: build process in enforce mode (wall ratio) | spread min-max without / with |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	for row in "${BUILD_ROWS[@]+"${BUILD_ROWS[@]}"}" "${MICRO_ROWS[@]+"${MICRO_ROWS[@]}"}"; do echo "$row"; done
	echo
	for n in "${BUILD_NOTES[@]+"${BUILD_NOTES[@]}"}" "${MICRO_NOTES[@]+"${MICRO_NOTES[@]}"}"; do echo "$n"; done
	echo "- total bench time: $(sub "$(now)" "$START") s; raw data: $RES"
} >"$REPORT"
echo
cat "$REPORT"
