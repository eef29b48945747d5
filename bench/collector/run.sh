#!/usr/bin/env bash
# bench/collector/run.sh: the collector benchmark (issue 3, "Speed"). Loopback only.
#
#  1. Ingest: a collector (TLS, then --insecure) on a fresh database; bench/collector/
#     loadgen.c runs 8 agents (threads, one connection and one run each) sending N
#     pre-built events each through the product's own client (transport/client.c);
#     events/s from the first byte sent to the last Ack, median of ROUNDS rounds, and the
#     collector's CPU per event (utime+stime of its process / events).
#  2. Spool: the agent-side cost of spooling one event: loadgen times N
#     sink_collector__write() calls (pack, chain, spool append) while the sender thread
#     streams them to a TLS collector.
#  4. PostgreSQL (root: it runs initdb/postgres as the postgres user): the ingest of 1,
#     with TLS, into a PostgreSQL 15 cluster started in a temp dir (Unix socket, default
#     durability: fsync on, synchronous_commit on), through 1 collector and through 3
#     collectors on the same database, the agents split over them; events/s = all events
#     / the slowest loadgen's time. SQLite's figure is part 1's.
#  3. Latency (root: it runs the sensor): `buildwarden run --collector` (TLS) of a loop
#     that execs a binary from an exec.deny tree every 20 ms; loadgen polls the database
#     every 1 ms and reports (row seen - Event.timeNs, the kernel's exec time), p50/p99.
#
# Everything it starts is stopped by pid on exit; its files live in a temp dir that is
# removed at the end (BENCH_KEEP=1 keeps it).
#
# Knobs (environment):
#   OUT=build                        where build/buildwarden and build/lib are
#   BENCH_COLLECTOR_ROUNDS=3         ingest rounds per mode (median)
#   BENCH_COLLECTOR_EVENTS=50000     events per agent per round
#   BENCH_COLLECTOR_AGENTS=8
#   BENCH_COLLECTOR_MODES="tls plain"
#   BENCH_COLLECTOR_SYNC=            --sync for the collector (full|normal; "" = default)
#   BENCH_COLLECTOR_ARGS=            more collector flags (e.g. "--batch 16384")
#   BENCH_COLLECTOR_SPOOL_EVENTS=200000
#   BENCH_COLLECTOR_LATENCY_EVENTS=200   violations in the latency run (20 ms apart)
#   BENCH_COLLECTOR_PARTS="ingest spool latency pg"
#   BENCH_COLLECTOR_PG_ROUNDS=$BENCH_COLLECTOR_ROUNDS
#   BENCH_COLLECTOR_PG_COLS="1 3"        collectors per PostgreSQL configuration
#   BENCH_KEEP=0
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-build}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
BW=$OUT/buildwarden
ROUNDS=${BENCH_COLLECTOR_ROUNDS:-3}
EVENTS=${BENCH_COLLECTOR_EVENTS:-50000}
AGENTS=${BENCH_COLLECTOR_AGENTS:-8}
MODES=${BENCH_COLLECTOR_MODES:-tls plain}
SYNC=${BENCH_COLLECTOR_SYNC:-}
read -r -a COL_ARGS <<< "${BENCH_COLLECTOR_ARGS:-}"
SPOOL_EVENTS=${BENCH_COLLECTOR_SPOOL_EVENTS:-200000}
LAT_EVENTS=${BENCH_COLLECTOR_LATENCY_EVENTS:-200}
PARTS=${BENCH_COLLECTOR_PARTS:-ingest spool latency pg}
PGBIN=/usr/lib/postgresql/15/bin
PGDIR=
T_ROUND=180     # one ingest round, one spool run
T_START=15      # a collector start

WORK=$(mktemp -d /tmp/bw-collector-bench.XXXXXX)
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$PGDIR" ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
		rm -rf "$PGDIR"
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*" >&2; }
forget_pid() {
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]+"${keep[@]}"}")
}

[ -x "$BW" ] || { say "no $BW: run make first"; exit 1; }
for lib in transport policy base; do
	[ -f "$OUT/lib/libbw_$lib.a" ] || { say "no $OUT/lib/libbw_$lib.a: run make first"; exit 1; }
done

# ---- the load generator: the product's transport, linked as the agent links it -------
say "collector bench: building loadgen"
timeout 120 ${CC:-gcc} -O2 -g -D_GNU_SOURCE -Iinclude -Iuser -I"$OUT/gen" -std=gnu11 \
	-Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wvla -Wwrite-strings \
	-Wno-unused-parameter -o "$WORK/loadgen" bench/collector/loadgen.c \
	"$OUT/lib/libbw_transport.a" "$OUT/lib/libbw_policy.a" "$OUT/lib/libbw_base.a" \
	"$OUT/obj/gen/buildwarden.pb-c.o" "$OUT/obj/gen/collector.pb-c.o" \
	-lprotobuf-c -lsqlite3 -lssl -lcrypto -lz -lpthread
LG=$WORK/loadgen

# ---- certificates: a CA, the server (127.0.0.1), one agent ----------------------------
PKI=$WORK/pki
mkdir -p "$PKI"
cat > "$PKI/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[srv_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
[cli_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
EOF
# the collector binds Hello.host to the agent certificate's DNS names: the host loadgen
# reports, and this machine's (what `buildwarden run` reports in the latency part)
echo "subjectAltName = DNS:ci-runner-042.build.example.net,DNS:$(hostname)" >> "$PKI/openssl.cnf"
ossl() { timeout 30 openssl "$@" >/dev/null 2>&1; }
ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$PKI/ca.key" -out "$PKI/ca.pem" -days 2 -subj /CN=bench-ca \
	-config "$PKI/openssl.cnf" -extensions ca_ext
issue() { # name subj ext
	ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "$2" -config "$PKI/openssl.cnf"
	ossl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
		-set_serial "$RANDOM" -out "$PKI/$1.pem" -days 2 -extfile "$PKI/openssl.cnf" \
		-extensions "$3"
}
issue server /CN=127.0.0.1 srv_ext
issue agent /CN=bench-agent cli_ext

# ---- collector ------------------------------------------------------------------------
COL_PID=
COL_PORT=
# start_collector MODE DB LOG
start_collector() {
	local args=(collector --listen 127.0.0.1:0 --db "$2")
	if [ "$1" = tls ]; then
		args+=(--tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" --tls-client-ca "$PKI/ca.pem")
	else
		args+=(--insecure)
	fi
	[ -z "$SYNC" ] || args+=(--sync "$SYNC")
	args+=("${COL_ARGS[@]+"${COL_ARGS[@]}"}")
	# created before the fork: the loop below reads it at once (with pipefail, a sed of
	# a file the child has not opened yet ended the script)
	: > "$3"
	"$BW" "${args[@]}" 2>"$3" &
	COL_PID=$!
	PIDS+=("$COL_PID")
	COL_PORT=
	for _ in $(seq $((T_START * 10))); do
		COL_PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$3" | head -1)
		[ -n "$COL_PORT" ] && return 0
		kill -0 "$COL_PID" 2>/dev/null || break
		sleep 0.1
	done
	say "collector did not start: $(cat "$3")"
	exit 1
}
# CPU seconds (user+system) of a live process
cpu_of() {
	awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
# minor page faults of a live process
faults_of() { awk '{ print $10 }' "/proc/$1/stat"; }
stop_collector() {
	kill -TERM "$COL_PID" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$COL_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$COL_PID" 2>/dev/null || true
	wait "$COL_PID" 2>/dev/null || true
	forget_pid "$COL_PID"
	COL_PID=
}
tls_args() { # mode
	if [ "$1" = tls ]; then
		echo "--cert $PKI/agent.pem --key $PKI/agent.key --ca $PKI/ca.pem"
	else
		echo "--insecure"
	fi
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

say "collector bench: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), sync=${SYNC:-default} ${COL_ARGS[*]+"${COL_ARGS[*]}"}"
echo "## collector bench $(date -u +%Y-%m-%dT%H:%MZ): $AGENTS agents x $EVENTS events, $ROUNDS rounds, sync=${SYNC:-default}"

# ---- 1. ingest ----------------------------------------------------------------------
if [[ " $PARTS " == *" ingest "* ]]; then
	for mode in $MODES; do
		: > "$WORK/rates.$mode"
		: > "$WORK/cpu.$mode"
		for r in $(seq "$ROUNDS"); do
			db=$WORK/ingest-$mode-$r.db
			start_collector "$mode" "$db" "$WORK/collector-$mode-$r.log"
			# shellcheck disable=SC2046
			line=$(timeout "$T_ROUND" "$LG" ingest "127.0.0.1:$COL_PORT" $(tls_args "$mode") \
				--agents "$AGENTS" --events "$EVENTS")
			cpu=$(cpu_of "$COL_PID")
			flt=$(faults_of "$COL_PID")
			stop_collector
			rate=$(echo "$line" | field events_per_s)
			n=$(echo "$line" | field events)
			us=$(awk -v c="$cpu" -v n="$n" 'BEGIN { printf "%.2f", c * 1e6 / n }')
			stored=$(sqlite3 "$db" 'SELECT count(*) FROM events' 2>/dev/null || echo "?")
			echo "ingest $mode round $r: $line collector_cpu_us_per_event=$us collector_minflt=$flt stored=$stored"
			[ "$stored" = "$n" ] || { say "round stored $stored of $n events"; exit 1; }
			echo "$rate" >> "$WORK/rates.$mode"
			echo "$us" >> "$WORK/cpu.$mode"
			rm -f "$db" "$db-wal" "$db-shm" "$db.lock"
		done
		echo "ingest $mode: median events_per_s=$(median < "$WORK/rates.$mode") collector_cpu_us_per_event=$(median < "$WORK/cpu.$mode") (rounds: $(tr '\n' ' ' < "$WORK/rates.$mode"))"
	done
fi

# ---- 2. agent-side spooling cost ----------------------------------------------------
if [[ " $PARTS " == *" spool "* ]]; then
	start_collector tls "$WORK/spool.db" "$WORK/collector-spool.log"
	mkdir -p "$WORK/spool"
	# shellcheck disable=SC2046
	line=$(timeout "$T_ROUND" "$LG" spool "127.0.0.1:$COL_PORT" $(tls_args tls) \
		--spool "$WORK/spool" --events "$SPOOL_EVENTS")
	stop_collector
	echo "$line"
fi

# ---- 3. kernel-to-row latency -------------------------------------------------------
if [[ " $PARTS " == *" latency "* ]]; then
	if [ "$(id -u)" != 0 ]; then
		echo "latency: skipped (needs root: it runs the sensor)"
	else
		mkdir -p "$WORK/denied" "$WORK/lat-spool"
		cp /bin/true "$WORK/denied/true"
		printf 'version: 1\nmode: audit\nexec:\n  deny: [%s]\n' "$WORK/denied" > "$WORK/policy.yaml"
		start_collector tls "$WORK/latency.db" "$WORK/collector-latency.log"
		timeout $((LAT_EVENTS / 20 + 60)) "$LG" latency --db "$WORK/latency.db" \
			--count "$LAT_EVENTS" --timeout $((LAT_EVENTS / 20 + 40)) > "$WORK/latency.out" &
		lpid=$!
		PIDS+=("$lpid")
		timeout $((LAT_EVENTS / 20 + 60)) "$BW" run --policy "$WORK/policy.yaml" \
			--collector "127.0.0.1:$COL_PORT" --spool "$WORK/lat-spool" \
			--tls-cert "$PKI/agent.pem" --tls-key "$PKI/agent.key" --tls-ca "$PKI/ca.pem" \
			-- /bin/sh -c "i=0; while [ \$i -lt $LAT_EVENTS ]; do i=\$((i+1)); $WORK/denied/true; sleep 0.02; done" \
			> "$WORK/run.out" 2> "$WORK/run.err" || true
		wait "$lpid" || true
		forget_pid "$lpid"
		stop_collector
		if [ -s "$WORK/latency.out" ]; then
			cat "$WORK/latency.out"
		else
			echo "latency: no result; run: $(tail -3 "$WORK/run.err")"
		fi
	fi
fi

# ---- 4. PostgreSQL: 1 and 3 collectors on one database -------------------------------
if [[ " $PARTS " == *" pg "* ]]; then
	if [ "$(id -u)" != 0 ] || [ ! -x "$PGBIN/initdb" ] || ! id postgres >/dev/null 2>&1; then
		echo "pg: skipped (needs root, a postgres user and $PGBIN)"
	else
		PG_ROUNDS=${BENCH_COLLECTOR_PG_ROUNDS:-$ROUNDS}
		PGDIR=$(mktemp -d /tmp/bw-pg-bench.XXXXXX)
		chown postgres: "$PGDIR"
		chmod 700 "$PGDIR"
		runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U bw --no-sync \
			> "$PGDIR/initdb.log" 2>&1 || { say "initdb failed: $(tail -3 "$PGDIR/initdb.log")"; exit 1; }
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" \
			-o "-k $PGDIR -c listen_addresses='' -c shared_buffers=256MB -c max_wal_size=4GB" \
			-w start > /dev/null || { say "pg_ctl start failed: $(tail -3 "$PGDIR/server.log")"; exit 1; }
		pgq() { psql -XAtq "host=$PGDIR user=bw dbname=$1" -c "$2"; }
		# CPU seconds of the server: the postmaster and its children (backends,
		# WAL writer, checkpointer, ...), those alive now
		pg_cpu() {
			local pm s=0 p
			pm=$(head -1 "$PGDIR/data/postmaster.pid")
			for p in "$pm" $(ps --ppid "$pm" -o pid=); do
				s=$(awk -v a="$s" -v b="$(cpu_of "$p" 2>/dev/null || echo 0)" 'BEGIN { print a + b }')
			done
			echo "$s"
		}
		for ncol in ${BENCH_COLLECTOR_PG_COLS:-1 3}; do
			: > "$WORK/rates.pg$ncol"
			for r in $(seq "$PG_ROUNDS"); do
				dbname=bench_${ncol}_$r
				pgq postgres "CREATE DATABASE $dbname"
				conninfo="host=$PGDIR user=bw dbname=$dbname"
				ports=() cols=()
				for c in $(seq "$ncol"); do
					start_collector tls "$conninfo" "$WORK/collector-pg$ncol-$r-$c.log"
					ports+=("$COL_PORT")
					cols+=("$COL_PID")
				done
				# the agents split over the collectors, as behind a TCP load balancer
				pg0=$(pg_cpu)
				col0=0
				for p in "${cols[@]}"; do col0=$(awk -v a="$col0" -v b="$(cpu_of "$p")" 'BEGIN { print a + b }'); done
				lgpids=()
				for c in $(seq "$ncol"); do
					a=$(( AGENTS / ncol + (c <= AGENTS % ncol ? 1 : 0) ))
					# shellcheck disable=SC2046
					timeout "$T_ROUND" "$LG" ingest "127.0.0.1:${ports[$((c - 1))]}" $(tls_args tls) \
						--agents "$a" --events "$EVENTS" > "$WORK/lg-pg$ncol-$r-$c.out" &
					lgpids+=($!)
				done
				for p in "${lgpids[@]}"; do wait "$p"; done
				pgcpu=$(awk -v a="$(pg_cpu)" -v b="$pg0" 'BEGIN { print a - b }')
				colcpu=0
				for p in "${cols[@]}"; do colcpu=$(awk -v a="$colcpu" -v b="$(cpu_of "$p")" 'BEGIN { print a + b }'); done
				colcpu=$(awk -v a="$colcpu" -v b="$col0" 'BEGIN { print a - b }')
				for p in "${cols[@]}"; do COL_PID=$p; stop_collector; done
				total=$(cat "$WORK"/lg-pg$ncol-$r-*.out | field events | awk '{ s += $1 } END { print s }')
				secs=$(cat "$WORK"/lg-pg$ncol-$r-*.out | field seconds | sort -g | tail -1)
				rate=$(awk -v n="$total" -v s="$secs" 'BEGIN { printf "%d", n / s }')
				stored=$(pgq "$dbname" 'SELECT count(*) FROM events')
				echo "ingest pg collectors=$ncol round $r: events=$total seconds=$secs events_per_s=$rate stored=$stored collector_us_per_event=$(awk -v c="$colcpu" -v n="$total" 'BEGIN { printf "%.2f", c * 1e6 / n }') postgres_us_per_event=$(awk -v c="$pgcpu" -v n="$total" 'BEGIN { printf "%.2f", c * 1e6 / n }') load=$(cut -d' ' -f1-3 /proc/loadavg)"
				[ "$stored" = "$total" ] || { say "round stored $stored of $total events"; exit 1; }
				echo "$rate" >> "$WORK/rates.pg$ncol"
				pgq postgres "DROP DATABASE $dbname"
			done
			echo "ingest pg collectors=$ncol: median events_per_s=$(median < "$WORK/rates.pg$ncol") (rounds: $(tr '\n' ' ' < "$WORK/rates.pg$ncol"))"
		done
	fi
fi
