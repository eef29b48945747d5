#!/bin/bash
# scripts/vmtest/run.sh (`make vmtest`): the sensor's real tests on other
# kernels, booted under QEMU (TCG: KVM cannot run stock kernels on our hosts).
#
# Each matrix row is a Debian kernel from Debian's archive (scripts/vmtest/
# fetch-kernel.sh: a private apt configuration, extracted, never installed) and
# a kernel command line; the guest boots from an initramfs holding busybox, the
# host's build/buildwarden and test binaries with their shared libraries
# (scripts/vmtest/mkinitramfs.sh), and scripts/vmtest/init.sh as /init, which
# runs the tests and powers off. Row 1 is this host's kernel, run natively.
#
# Prints per row: the kernel, the guards the sensor chose there (its run
# summary), and "N passed, N failed, N skipped" of the suites run there; then
# one total line. A failing row prints the guest's console.
#
# Knobs: OUT=build, VMTEST_ROWS="1 2 3 4 5", VMTEST_CACHE=$OUT/vmtest/cache,
# VMTEST_TESTS (space-separated test binaries relative to the tree, for every
# row), VMTEST_TIMEOUT=900 (seconds per guest), VMTEST_MEM=2048 (MiB),
# VMTEST_JOBS=$(nproc) (guests booted at once).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-build}
CACHE=${VMTEST_CACHE:-$OUT/vmtest/cache}
case $CACHE in /*) ;; *) CACHE=$ROOT/$CACHE ;; esac
WORK=$ROOT/$OUT/vmtest
ROWS=${VMTEST_ROWS:-1 2 3 4 5}
GUEST_TIMEOUT=${VMTEST_TIMEOUT:-900}
MEM=${VMTEST_MEM:-2048}
JOBS=${VMTEST_JOBS:-$(nproc)}
# The suites that need only busybox, the sensor and the test binary (the
# guests carry no compiler, python or openssl: test_enforce_access and the
# collector suites need python3 or openssl; the two scenario cases that compile
# C skip there and say so), chosen to cover each guard.
DEFAULT_TESTS="$OUT/tests/integration/test_run_scenarios $OUT/tests/integration/test_enforce
$OUT/tests/integration/test_enforce_write $OUT/tests/integration/test_fanwatch"
TESTS=${VMTEST_TESTS:-$DEFAULT_TESTS}
# Per row, to keep CI's whole run within its budget (a guest runs ~10x slower
# under TCG): rows 2 and 4 run every default suite; row 2 (no BPF LSM, but
# fmod_ret on the security_* functions refuses) also runs test_enforce_taint's
# enforce tests with one spelling per op (BW_TAINT_ONE_SPELLING, row_env) and
# test_enforce_mapped's test_enforce_premapped_mprotect, which assert those
# refusals with the file system unchanged: measured 105 s + 8 s of guest time on
# 2026-12-03 (369 s for the whole row, 6m21s wall, host at load 6-15; with every
# spelling the taint suite took 167 s); row 3 boots the same 6.1
# kernel as row 2 with BPF LSM on, so it runs the enforcement suites; rows 3 and
# 4 also run test_enforce_taint's enforce tests, which there assert the BPF LSM
# refusals (EPERM, file system unchanged, DENIED), and test_enforce_selfguard (no
# descriptor to the sensor's own BPF objects): measured 256 s (row 3) and 303 s
# (row 4) of guest time for boot, probe and these two suites, 9m45s of wall for
# both rows, on our 2-CPU host at load 11-15 (other builds running);
# row 5 (5.10, the oldest kernel we name: fmod_ret loads there, chown on
# security_inode_setattr) runs the refusal suites as row 2 does (measured 282 s wall,
# 275 s of guest time, alone on an idle host, 2026-12-03), the scenarios and the
# enforcement suite. VMTEST_TESTS overrides every row.
REFUSAL_SUITE="$OUT/tests/integration/test_enforce_taint $OUT/tests/integration/test_enforce_mapped"
LSM_SUITE="$REFUSAL_SUITE $OUT/tests/integration/test_enforce_selfguard"
row_tests() { # row -> the suites to run there
	if [ -n "${VMTEST_TESTS:-}" ]; then echo "$TESTS"; return; fi
	case $1 in
	2) echo "$TESTS $REFUSAL_SUITE" ;;
	3) echo "$OUT/tests/integration/test_enforce $OUT/tests/integration/test_enforce_write $LSM_SUITE" ;;
	4) echo "$TESTS $LSM_SUITE" ;;
	5) echo "$OUT/tests/integration/test_run_scenarios $OUT/tests/integration/test_enforce $REFUSAL_SUITE" ;;
	*) echo "$TESTS" ;;
	esac
}
# Per row, "suite=cmocka-pattern" pairs (comma-separated) that init.sh hands to
# that suite as BW_TEST_FILTER: test_enforce_taint's audit cases test nothing
# the BPF LSM rows add, so rows 3 and 4 run its test_enforce_* only.
row_filters() { # row -> the filters
	case $1 in
	2 | 3 | 4 | 5) echo "test_enforce_taint=test_enforce_*,test_enforce_mapped=test_enforce_premapped*" ;;
	*) echo "" ;;
	esac
}
# Per row, the layer that refuses rename, unlink, chmod, writes... there (lsm, fmod_ret,
# none; empty: unchecked): the guest hands it to the suites as BW_EXPECT_GUARD_LAYER,
# which check the sensor's own claim (its run summary) against it.
row_guard_layer() { # row -> the layer
	case $1 in
	2 | 5) echo fmod_ret ;;
	3 | 4) echo lsm ;;
	*) echo "" ;;
	esac
}
# Per row, environment for the suites (on the kernel command line: the kernel hands
# unknown name=value words to /init's environment).
row_env() { # row -> NAME=value words
	case $1 in
	2 | 5) echo "BW_TAINT_ONE_SPELLING=1" ;;
	*) echo "" ;;
	esac
}
# Without bpf in lsm=: Ubuntu's runners (BPF LSM built, not enabled). With it:
# hardened fleets that boot with lsm=...,bpf.
# The tree's files sit here in the guest: never under /tmp, where the tests' disk is
# mounted (a clone in /tmp/ci would be hidden by it).
GUEST_ROOT=/bw
# A kernel that locks up (seen on row 5 in two CI runs under load: both CPUs "stuck" in a
# test for the whole guest timeout) panics after 2 x 60 s instead, and prints the
# stacks of both CPUs (loglevel 5 lets the backtrace through quiet), so the row fails
# in minutes and says where. 60 s, not the default 10: a host at load 15 can starve
# TCG's vCPUs for seconds, which is not a lockup.
LOCKUP_ARGS="watchdog_thresh=60 softlockup_panic=1 softlockup_all_cpu_backtrace=1 loglevel=5"
LSM_NO_BPF=landlock,lockdown,yama,integrity,apparmor
LSM_BPF=landlock,lockdown,yama,integrity,apparmor,bpf

row_name() {
	case $1 in
	1) echo "this host's kernel" ;;
	2) echo "Debian 12 (6.1), BPF LSM not enabled" ;;
	3) echo "Debian 12 (6.1), lsm=...,bpf" ;;
	4) echo "Debian 13 (6.12), lsm=...,bpf" ;;
	5) echo "Debian 11 (5.10)" ;;
	esac
}
row_suite() { case $1 in 2 | 3) echo bookworm ;; 4) echo trixie ;; 5) echo bullseye ;; esac; }
row_cmdline() { case $1 in 2) echo "lsm=$LSM_NO_BPF" ;; 3 | 4) echo "lsm=$LSM_BPF" ;; 5) echo "" ;; esac; }

die() { echo "vmtest: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root (row 1 loads the sensor on this host)"
[ -x "$OUT/buildwarden" ] || die "$OUT/buildwarden not built (make test-bins)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (make deps)"
[ -x /bin/busybox ] || die "/bin/busybox missing (make deps installs busybox-static)"
for row in $ROWS; do
	for t in $(row_tests "$row"); do [ -x "$t" ] || die "$t not built (make test-bins)"; done
done
mkdir -p "$WORK" "$CACHE"

# Counts cmocka's summary lines of one suite's output, as tests/run.sh does.
count_suite() { # output-file rc -> "p f s"
	local p f s
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$1" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$1" | awk '{s+=$1} END {print s+0}')
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test(s).*/\1/p' "$1" | awk '{s+=$1} END {print s+0}')
	[ "$2" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	echo "$p $f $s"
}

TP=0 TF=0 TS=0
SUMMARY=()
report_row() { # row kernel guards p f s note
	local layer
	layer=$(printf '%s\n' "$3" | sed -n 's/^enforce kernel layer: //p' | head -1)
	SUMMARY+=("row $1 ($(row_name "$1")): kernel $2; kernel layer ${layer:-?}; $4 passed, $5 failed, $6 skipped${7:+; $7}")
	echo "== row $1: $(row_name "$1"): kernel $2"
	echo "   guards chosen there:"
	printf '%s\n' "$3" | sed 's/^/     /'
	echo "   $4 passed, $5 failed, $6 skipped${7:+ ($7)}"
	TP=$((TP + $4)) TF=$((TF + $5)) TS=$((TS + $6))
}

run_native() { # row
	local out=$WORK/row1 t p=0 f=0 s=0 rc c guards
	mkdir -p "$out"
	"$OUT/buildwarden" run --mode enforce -- /bin/true >"$out/probe.out" 2>&1
	guards=$(sed -n '/guards on this host:/,$p' "$out/probe.out" | sed 1d | sed 's/^ *//')
	for t in $TESTS; do
		BW_BIN=$OUT/buildwarden CMOCKA_MESSAGE_OUTPUT=stdout timeout -k 10 600 "$t" >"$out/$(basename "$t").out" 2>&1
		rc=$?
		read -r a b c < <(count_suite "$out/$(basename "$t").out" $rc)
		p=$((p + a)) f=$((f + b)) s=$((s + c))
		[ "$b" -gt 0 ] && { echo "--- $(basename "$t") failed on row 1:"; cat "$out/$(basename "$t").out"; }
	done
	report_row 1 "$(uname -r)" "$guards" $p $f $s
}

run_guest() { # row
	local row=$1 suite kdir vmlinuz img log tests_arg t p=0 f=0 s=0 kver guards probe_rc begin name rc tests
	tests=$(row_tests "$row")
	suite=$(row_suite "$row")
	vmlinuz=${VMLINUZ[$row]:-}
	[ -n "$vmlinuz" ] || { report_row "$row" "?" "" 0 1 0 "could not fetch Debian $suite's kernel"; return; }
	kdir=$(dirname "$(dirname "$vmlinuz")")
	rm -f "$WORK"/row"$row".*
	img=$WORK/row$row.cpio.gz
	log=$WORK/row$row.console
	tests_arg=$(echo $tests | tr ' ' ',')
	# shellcheck disable=SC2086
	scripts/vmtest/mkinitramfs.sh "$img" scripts/vmtest/init.sh "$kdir/lib/modules" virtio_pci,virtio_blk,ext4,crc32c_generic \
		"$ROOT/$OUT/buildwarden=$GUEST_ROOT/$OUT/buildwarden" /bin/true /usr/bin/true /usr/bin/touch \
		/usr/bin/setsid /bin/sh /bin/dash /usr/bin/setpriv \
		$(for t in $tests; do echo "$ROOT/$t=$GUEST_ROOT/$t"; done) ||
		{ report_row "$row" "?" "" 0 1 0 "initramfs failed"; return; }
	# The tests' /tmp: a fresh ext4 file system on a sparse image, as a virtio disk.
	rm -f "$WORK/row$row.disk"
	truncate -s 2G "$WORK/row$row.disk" && mkfs.ext4 -q -F "$WORK/row$row.disk" ||
		{ report_row "$row" "?" "" 0 1 0 "mkfs.ext4 failed"; return; }
	# thread=single: one host thread runs both vCPUs. With QEMU's multi-threaded TCG
	# (its default), a vCPU could run a stale translation of kernel text another vCPU
	# had just patched: the jump-label patching (text_poke_bp) that attaching
	# tracepoints does left one vCPU looping on, or oopsing at, its int3 breakpoint
	# after the patch was done (CI, 2026-12-03: rows 3, 4 and 5, consoles in
	# syscall_trace_enter and syscall_exit_to_user_mode, more often under host load).
	# None of that was seen in any single-threaded run; the guests run side by side
	# instead (JOBS), so the whole matrix takes no longer.
	timeout -k 10 "$GUEST_TIMEOUT" qemu-system-x86_64 -machine q35 -accel tcg,thread=single -cpu max -smp 2 -m "$MEM" \
		-kernel "$vmlinuz" -initrd "$img" -display none -monitor none -no-reboot -serial "file:$log" \
		-drive "file=$WORK/row$row.disk,if=virtio,format=raw,cache=unsafe" \
		-append "console=ttyS0 panic=-1 quiet $LOCKUP_ARGS $(row_cmdline "$row") VMTEST_ROOT=$GUEST_ROOT VMTEST_OUT=$OUT VMTEST_TESTS=$tests_arg VMTEST_FILTERS=$(row_filters "$row") VMTEST_GUARD_LAYER=$(row_guard_layer "$row") $(row_env "$row")${VMTEST_DEBUG:+ VMTEST_DEBUG=1}" \
		>"$WORK/row$row.qemu" 2>&1
	rc=$?
	rm -f "$WORK/row$row.disk"
	# A guest kernel that locked up (LOCKUP_ARGS: it panicked with both CPUs' stacks) or
	# stopped on an "Oops: int3" is booted once more, and the lost boot is counted as a
	# skip and named in the summary (README, "make vmtest"). Both were seen in CI under
	# multi-threaded TCG (see thread=single above), none since; should one come back, the
	# console says where and the row still has to pass on its second boot.
	if [ -z "${VMTEST_RETRY:-}" ] && tr -d '\r' <"$log" | grep -qE 'soft lockup|Oops: int3' &&
		! tr -d '\r' <"$log" | grep -q '^VMTEST-DONE'; then
		cp "$log" "$WORK/lockup-row$row.console"
		echo "--- row $row: the guest kernel locked up or crashed; its console ($WORK/lockup-row$row.console):"
		tr -d '\r' <"$log" | grep -v '^VMTEST-PROBE ' | tail -300
		echo "--- row $row: booting it once more; the lost boot counts as 1 skipped"
		TS=$((TS + 1))
		VMTEST_RETRY=1 run_guest "$row"
		SUMMARY[${#SUMMARY[@]} - 1]+="; the first boot locked up or crashed (1 skipped, console above)"
		return
	fi
	kver=$(sed -n 's/^VMTEST-KERNEL //p' "$log" | tr -d '\r' | head -1)
	guards=$(sed -n 's/^VMTEST-PROBE //p' "$log" | tr -d '\r' | sed -n '/guards on this host:/,$p' | sed 1d | sed 's/^ *//')
	probe_rc=$(sed -n 's/^VMTEST-PROBE-EXIT //p' "$log" | tr -d '\r' | head -1)
	# One file per suite, from its BEGIN line to its END line.
	for t in $tests; do
		name=$(basename "$t")
		awk -v t="$t" '$0 ~ "^VMTEST-BEGIN " t "\r?$" { on = 1; next } $0 ~ "^VMTEST-END " t " " { on = 0; print "RC " $3; next } on' \
			"$log" | tr -d '\r' >"$WORK/row$row.$name.out"
		begin=$(grep -c '^RC ' "$WORK/row$row.$name.out")
		if [ "$begin" -eq 0 ]; then
			f=$((f + 1)); echo "--- $name did not finish on row $row"
			continue
		fi
		read -r a b c < <(count_suite "$WORK/row$row.$name.out" "$(sed -n 's/^RC //p' "$WORK/row$row.$name.out")")
		p=$((p + a)) f=$((f + b)) s=$((s + c))
	done
	local note=
	[ "$probe_rc" = 0 ] || note="buildwarden run -- true exited ${probe_rc:-?}"
	grep -q '^VMTEST-DONE' <(tr -d '\r' <"$log") || { note="${note:+$note; }the guest did not finish (qemu exit $rc)"; f=$((f + 1)); }
	# A kernel WARN while the sensor runs there (loglevel 5 lets it through quiet) is a
	# failure: 5.10 warned on every start until the traced maps were preallocated.
	if tr -d '\r' <"$log" | grep -q -- '-\[ cut here \]-'; then
		note="${note:+$note; }the kernel warned (console below)"
		f=$((f + 1))
	fi
	report_row "$row" "${kver:-?}" "$guards" $p $f $s "$note"
	if [ "$f" -gt 0 ]; then
		echo "--- guest console of row $row ($log):"
		tr -d '\r' <"$log" | grep -v '^VMTEST-PROBE ' | tail -400
	fi
}

for row in $ROWS; do
	case $row in 1 | 2 | 3 | 4 | 5) ;; *) die "unknown row '$row' (1-5)" ;; esac
done
# Row 1 first, alone: it loads the sensor on this host.
case " $ROWS " in *" 1 "*) run_native 1 ;; esac
# The guest rows, JOBS at a time (each guest is one host thread: thread=single above),
# the longest first (measured wall: row 4 ~7 min, rows 2 and 3 ~6, row 5 ~5), each
# into its own files; their reports are then printed in row order. The kernels are
# fetched first, one at a time: rows 2 and 3 share one cache directory.
GUEST_ROWS=
for row in 4 2 3 5; do
	case " $ROWS " in *" $row "*) GUEST_ROWS+=" $row" ;; esac
done
declare -A VMLINUZ # row -> its kernel image; empty when the fetch failed (run_guest reports it)
for row in $GUEST_ROWS; do
	VMLINUZ[$row]=$(scripts/vmtest/fetch-kernel.sh "$(row_suite "$row")" "$CACHE") || VMLINUZ[$row]=
done
running=0
for row in $GUEST_ROWS; do
	rm -f "$WORK/tally-row$row" "$WORK/summary-row$row" "$WORK/report-row$row"
done
for row in $GUEST_ROWS; do
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
	(
		TP=0 TF=0 TS=0 SUMMARY=()
		run_guest "$row"
		echo "$TP $TF $TS" >"$WORK/tally-row$row"
		printf '%s\n' "${SUMMARY[@]}" >"$WORK/summary-row$row"
	) >"$WORK/report-row$row" 2>&1 &
	running=$((running + 1))
done
wait
for row in 2 3 4 5; do
	case " $GUEST_ROWS " in *" $row "*) ;; *) continue ;; esac
	cat "$WORK/report-row$row"
	if read -r a b c <"$WORK/tally-row$row" 2>/dev/null; then
		TP=$((TP + a)) TF=$((TF + b)) TS=$((TS + c))
		mapfile -t -O "${#SUMMARY[@]}" SUMMARY <"$WORK/summary-row$row"
	else
		TF=$((TF + 1))
		SUMMARY+=("row $row ($(row_name "$row")): its runner stopped before reporting")
	fi
done
echo
printf '%s\n' "${SUMMARY[@]}"
echo "$TP passed, $TF failed, $TS skipped"
[ "$TF" -eq 0 ]
