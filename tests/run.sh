#!/bin/bash
# Runs every test binary with a time bound and prints one summary line:
# "N passed, N failed, N skipped". A binary that crashes or times out counts as a failure.
set -u
OUT=${OUT:-build}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
INTEG_TIMEOUT=${INTEG_TIMEOUT:-300}
FUZZ_RUNS=${FUZZ_RUNS:-20000}
export CMOCKA_MESSAGE_OUTPUT=stdout
# `sudo make test`: run's builds would default to the sudo caller, in workspaces root
# made 0700. The suites that test that default set these themselves.
unset SUDO_UID SUDO_GID
passed=0 failed=0 skipped=0
failed_names=()
log=$(mktemp -d)
# Each suite's wall time, so a slow CI run says where its minutes went.
timings=$log/timings
trap 'rm -rf "$log"' EXIT

count() { # name, output file, exit status
	local name=$1 out=$2 rc=$3 p f s
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test(s).*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL: $name exited with status $rc (crash or timeout)"
		f=1
	fi
	[ "$f" -gt 0 ] && failed_names+=("$name")
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

run_bin() { # timeout, binary[, command to run it under...]
	local t=$1 bin=$2 name out rc
	shift 2
	name=$(basename "$bin")
	out="$log/$name.out"
	echo "=== $name${1:+ (as: $*)}"
	local start=$SECONDS
	timeout -k 10 "$t" "$@" "$bin" >"$out" 2>&1
	rc=$?
	echo "$((SECONDS - start)) $name" >>"$timings"
	cat "$out"
	count "$name" "$out" "$rc"
}

# A script is one test: exit 0 passes, 77 skips (it prints why), anything else fails.
run_script() { # name, timeout, command...
	local name=$1 t=$2 out rc
	shift 2
	out="$log/$name.out"
	echo "=== $name"
	local start=$SECONDS
	timeout -k 10 "$t" "$@" >"$out" 2>&1
	rc=$?
	echo "$((SECONDS - start)) $name" >>"$timings"
	cat "$out"
	case $rc in
	0) echo "[  PASSED  ] 1 test(s)."; passed=$((passed + 1)) ;;
	77) echo "[  SKIPPED ] 1 test(s)."; skipped=$((skipped + 1)) ;;
	*) echo "FAIL: $name exited with status $rc"; failed=$((failed + 1)); failed_names+=("$name") ;;
	esac
}

# The one-way include rules (docs/architecture.md), and proof the check catches a crossing.
run_script check-layers 60 scripts/check-layers.py
run_script test_layers 120 tests/layers/test_layers.sh

for bin in "$OUT"/tests/unit/test_*; do
	[ -x "$bin" ] && run_bin "$UNIT_TIMEOUT" "$bin"
done

# The command-line tier needs no root, so it runs for everyone; as root it runs as
# uid 65534 to keep it that way, when that user can reach the binaries.
export BW_BIN=${BW_BIN:-$OUT/buildwarden}
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
for bin in "$OUT"/tests/cli/test_*; do
	[ -x "$bin" ] || continue
	if [ "$(id -u)" -eq 0 ] && "${nobody[@]}" test -x "$bin" -a -x "$BW_BIN" 2>/dev/null; then
		run_bin "$UNIT_TIMEOUT" "$bin" "${nobody[@]}"
	else
		run_bin "$UNIT_TIMEOUT" "$bin"
	fi
done

if [ "$(id -u)" -ne 0 ]; then
	n=$(ls "$OUT"/tests/integration/test_* 2>/dev/null | wc -l)
	echo "SKIP: $n integration suites: they load eBPF programs and need root"
	skipped=$((skipped + n))
else
	for bin in "$OUT"/tests/integration/test_*; do
		[ -x "$bin" ] && run_bin "$INTEG_TIMEOUT" "$bin"
	done
fi

# Other kernels under QEMU (`make vmtest`, scripts/vmtest/run.sh): Debian's 6.1 (without
# and with BPF LSM), 6.12 and 5.10 kernels boot and run the sensor's suites; every case
# run there counts here. Row 1 (this kernel) is the rest of this run. VMTEST=0 leaves it out.
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: vmtest: its guests run the integration suites, which need root"
	skipped=$((skipped + 1))
elif [ "${VMTEST:-1}" = 0 ]; then
	echo "SKIP: vmtest: VMTEST=0"
	skipped=$((skipped + 1))
else
	echo "=== vmtest"
	start=$SECONDS
	VMTEST_ROWS=${VMTEST_ROWS:-2 3 4 5} OUT=$OUT timeout -k 10 "${VMTEST_TIMEOUT_ALL:-3000}" \
		scripts/vmtest/run.sh >"$log/vmtest.out" 2>&1
	rc=$?
	echo "$((SECONDS - start)) vmtest" >>"$timings"
	cat "$log/vmtest.out"
	line=$(tail -1 "$log/vmtest.out")
	if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
		passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2]))
		skipped=$((skipped + BASH_REMATCH[3]))
		[ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ] && { echo "FAIL: vmtest exited $rc"; failed=$((failed + 1)); }
		[ "${BASH_REMATCH[2]}" -gt 0 ] || [ "$rc" -ne 0 ] && failed_names+=("vmtest")
	else
		echo "FAIL: vmtest exited $rc without its summary line"
		failed=$((failed + 1))
		failed_names+=("vmtest")
	fi
fi

# The README's quick start, literally, from a clean clone (root; it skips itself otherwise).
run_script test_quickstart "${QUICKSTART_TIMEOUT:-600}" tests/quickstart/test_quickstart.sh

# The CI integrations (action.yml, ci/github/, ci/gitlab/) in a simulated runner around a
# real small build (root; they skip themselves otherwise).
run_script test_github_action 600 tests/ci/test_github_action.sh
run_script test_gitlab_template 600 tests/ci/test_gitlab_template.sh

# The systemd units and the Debian package (each skips itself, with the reason, where
# it cannot run: no systemd-analyze, no mirror for the chroot).
for t in tests/packaging/test_*.sh; do
	[ -x "$t" ] && run_script "$(basename "$t" .sh)" "${PACKAGING_TIMEOUT:-900}" "$t"
done

# Fuzz targets run as smoke tests on their seed corpus plus fresh inputs; `make fuzz` runs longer.
for bin in "$OUT"/fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	echo "=== $name ($FUZZ_RUNS runs)"
	work="$log/corpus-$name"
	mkdir -p "$work"
	if timeout -k 10 300 "$bin" -runs="$FUZZ_RUNS" "$work" "tests/fuzz/corpus/$name" >"$log/$name.out" 2>&1; then
		echo "[  PASSED  ] 1 test(s)."
		passed=$((passed + 1))
	else
		tail -40 "$log/$name.out"
		echo "FAIL: $name found a crash"
		failed=$((failed + 1))
		failed_names+=("$name")
	fi
done

# Repeated just above the summary, because a CI log is often read from its tail.
echo "slowest suites (seconds):" $(sort -rn "$timings" 2>/dev/null | head -8 | tr '\n' ' ')
[ "${#failed_names[@]}" -gt 0 ] && echo "failed suites: ${failed_names[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
