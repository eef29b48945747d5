#!/bin/busybox sh
# /init of the vmtest guest: mounts what the sensor needs, gives the tests a
# disk with file handles (fanotify's FID modes need them; tmpfs has none before
# 6.6) and every operation the tests make (fallocate: not on ext2), probes the sensor, runs the test binaries named on the kernel command
# line (VMTEST_TESTS, comma-separated, relative to VMTEST_ROOT) and powers off.
# Every line the host parses starts with "VMTEST-".
/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin
/bin/busybox --install -s /bin 2>/dev/null
# The real tools copied from the host (util-linux setsid -f, coreutils) come
# before busybox's applets.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
export HOME=/root TMPDIR=/tmp CMOCKA_MESSAGE_OUTPUT=stdout
# TCG runs the guest several times slower than the host: the tests' bound on
# one `buildwarden run` (20 s by default) grows with it.
export BW_TEST_TIMEOUT=${VMTEST_RUN_TIMEOUT:-120}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ip link set lo up
while read -r m; do
	case $m in '#'* | '') ;; *) insmod "/modules/$m.ko" || echo "VMTEST-WARN insmod $m failed" ;; esac
done </modules/load.list
# The host hands over an empty ext4 image as the first virtio disk.
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.5; done
mount -t ext4 /dev/vda /tmp || echo "VMTEST-WARN no ext4 disk: the tests' trees are on the initramfs"
chmod 1777 /tmp
echo "VMTEST-KERNEL $(uname -r)"
echo "VMTEST-LSM $(cat /sys/kernel/security/lsm 2>/dev/null || echo unknown)"
cd "${VMTEST_ROOT:-/}" || echo "VMTEST-WARN no $VMTEST_ROOT"
BW=${VMTEST_ROOT}/${VMTEST_OUT:-build}/buildwarden
# VMTEST_DEBUG=1 (make vmtest VMTEST_DEBUG=1) prints the verifier's log of a failed load.
# enforce, so the summary names the kernel layer chosen for the refusals
BUILDWARDEN_DEBUG=${VMTEST_DEBUG:-} "$BW" run --mode enforce -- /bin/true >/tmp/probe.out 2>&1
echo "VMTEST-PROBE-EXIT $?"
sed 's/^/VMTEST-PROBE /' /tmp/probe.out
export BW_BIN=$BW
# What the guest's kernel runs, known from its LSM list, not from the sensor: the
# suites that assert the BPF LSM layer's refusals check the sensor's own claim with it.
case ",$(cat /sys/kernel/security/lsm 2>/dev/null)," in
*,bpf,*) export BW_EXPECT_BPF_LSM=1 ;;
*) export BW_EXPECT_BPF_LSM=0 ;;
esac
# The layer that refuses rename, unlink, chmod, writes... on this row (lsm, fmod_ret or
# none), named by run.sh per row: the suites check the sensor's own claim with it.
[ -n "${VMTEST_GUARD_LAYER:-}" ] && export BW_EXPECT_GUARD_LAYER=$VMTEST_GUARD_LAYER
for t in $(echo "${VMTEST_TESTS:-}" | tr ',' ' '); do
	filter=
	for f in $(echo "${VMTEST_FILTERS:-}" | tr ',' ' '); do
		[ "${f%%=*}" = "$(basename "$t")" ] && filter=${f#*=}
	done
	echo "VMTEST-UPTIME $(cut -d' ' -f1 /proc/uptime) before $t"
	echo "VMTEST-BEGIN $t"
	# unset, not empty: an empty cmocka filter matches no test
	if [ -n "$filter" ]; then
		BW_TEST_FILTER=$filter timeout -s KILL "${VMTEST_TEST_TIMEOUT:-900}" "$VMTEST_ROOT/$t" 2>&1
	else
		timeout -s KILL "${VMTEST_TEST_TIMEOUT:-900}" "$VMTEST_ROOT/$t" 2>&1
	fi
	rc=$?
	# guest seconds per suite, for the row budgets in run.sh (TCG time, not a host's)
	echo "VMTEST-UPTIME $(cut -d' ' -f1 /proc/uptime) after $t"
	echo "VMTEST-END $t $rc"
done
echo "VMTEST-DONE"
sync
poweroff -f
