#!/bin/bash
# The package's systemd units under a real systemd: a Debian 12 root with systemd as
# init and the .deb installed (apt, from its Depends alone) boots under QEMU (TCG) on
# Debian 12's 6.1 kernel, and a oneshot unit of the test image
# (tests/packaging/systemd-guest/) checks there that buildwarden-agent.service, hardened
# as shipped, started at boot (Type=notify: READY=1 after the sensor attached), sees a
# write into a protected tree, reopens its events file on `systemctl reload`, stops
# cleanly with 77 after a violation (SuccessExitStatus=77) and 0 without, starts again
# by `systemctl start`; that buildwarden-collector.service starts as its dynamic user
# and listens; and prints `systemd-analyze security` of both. Each check is a
# "BWSD-CHECK name ok|FAIL detail" line on the serial console; this script asserts on
# them and prints the console when one fails or is missing.
#
# The root is tests/packaging/lib_root.sh's (root_tarball: minbase, here with systemd,
# systemd-sysv and dbus, the Depends' .debs downloaded; built once by mmdebstrap, cached
# in $BW_CHROOT_CACHE, default /var/tmp/buildwarden-chroot-cache), the package
# root_make_deb's (`make deb`, or BW_DEB=FILE); each run unpacks a fresh copy, installs
# the .deb there, makes an ext4 image of it with mke2fs -d (no mounts) and boots that.
# The kernel comes from scripts/vmtest/fetch-kernel.sh's cache ($VMTEST_CACHE, default
# $OUT/vmtest/cache, shared with `make vmtest`), the initramfs from its mkinitramfs.sh.
# Skips (77) where it cannot run, and when BW_SYSTEMD_TEST=0. Knobs: BW_SYSTEMD_TIMEOUT
# (seconds for the guest, default 600).
set -u
cd "$(dirname "$0")/../.." || exit 1
TOP=$(pwd)
GUEST_TIMEOUT=${BW_SYSTEMD_TIMEOUT:-600}
GUEST=tests/packaging/systemd-guest
# the checks guest-test.sh makes, each of which must print "ok"
CHECKS="boot-active reload-reopens sensor-write stop-violation-77 start-active stop-clean
events-complete guards-unconfined enforce-start enforce-build-write enforce-outsider-write enforce-exec-deny
enforce-events collector-active transport-start run-readonly enroll collector-received collector-stop security-buildwarden-agent.service
security-buildwarden-collector.service order-before-runner purge"

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
. tests/packaging/lib_root.sh
KCACHE=${VMTEST_CACHE:-$OUT/vmtest/cache}
case $KCACHE in /*) ;; *) KCACHE=$TOP/$KCACHE ;; esac

[ "${BW_SYSTEMD_TEST:-1}" = 0 ] && skip "BW_SYSTEMD_TEST=0"
root_prereqs
for tool in qemu-system-x86_64 mke2fs openssl cpio; do
	command -v $tool >/dev/null || skip "no $tool (make deps installs it)"
done
[ -x /bin/busybox ] || skip "no /bin/busybox for the initramfs (make deps installs busybox-static)"

start=$(date +%s)
work=$(mktemp -d "$CACHE/systemd-test.XXXXXX" 2>/dev/null || { mkdir -p "$CACHE" && mktemp -d "$CACHE/systemd-test.XXXXXX"; }) ||
	fail "cannot create a work directory in $CACHE"
chmod 755 "$work"
qemu_pid=
cleanup() {
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid" 2>/dev/null
		sleep 1
		kill -KILL "$qemu_pid" 2>/dev/null
	fi
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP # so the EXIT trap runs when timeout(1) stops the test

root_make_deb

echo "--- Debian 12's kernel (scripts/vmtest/fetch-kernel.sh, cache $KCACHE)"
vmlinuz=$(scripts/vmtest/fetch-kernel.sh bookworm "$KCACHE") || skip "cannot fetch Debian 12's kernel (no mirror?)"
kdir=$(dirname "$(dirname "$vmlinuz")")

# the cached root: systemd as init, the Depends' .debs downloaded
root_tarball systemd systemd-sysv dbus

# ---- this run's root: the .deb installed, the test's policy, unit and TLS files ----
t0=$(date +%s)
root=$work/root
mkdir "$root" && chmod 755 "$root"
tar -xf "$tarball" -C "$root" || fail "cannot unpack $tarball"
ROOT=$root # lib_root.sh's in_root chroots there
cp "$deb" "$root/tmp/buildwarden.deb"
in_root dpkg -i /tmp/buildwarden.deb >"$work/apt.log" 2>&1
in_root apt-get install -f -y --no-download --no-install-recommends >>"$work/apt.log" 2>&1 ||
	{ cat "$work/apt.log"; fail "the package does not install"; }
in_root dpkg -s buildwarden | grep -q '^Status: install ok installed' || { cat "$work/apt.log"; fail "not installed"; }
rm -f "$root/tmp/buildwarden.deb"
# the package enables the agent (multi-user.target.wants), as on a user's host
[ -L "$root/etc/systemd/system/multi-user.target.wants/buildwarden-agent.service" ] ||
	fail "the package did not enable buildwarden-agent.service"
install -m 0644 "$GUEST/policy.yaml" "$root/etc/buildwarden/policy.yaml"
mkdir -p "$root/srv/bw-protected"
install -D -m 0755 "$GUEST/guest-test.sh" "$root/usr/local/lib/bw-systemd-test/guest-test.sh"
cp "$root/bin/dash" "$root/usr/local/lib/bw-systemd-test/fake-runner"
install -m 0644 "$GUEST/bw-systemd-test.service" "$root/etc/systemd/system/"
ln -s ../bw-systemd-test.service "$root/etc/systemd/system/multi-user.target.wants/bw-systemd-test.service"
ln -sf /lib/systemd/system/multi-user.target "$root/etc/systemd/system/default.target"
# no login prompts on the console the checks print to; not a first boot (no firstboot prompts)
for u in serial-getty@ttyS0.service getty@tty1.service; do ln -sf /dev/null "$root/etc/systemd/system/$u"; done
echo 0123456789abcdef0123456789abcdef >"$root/etc/machine-id"
echo bw-systemd-test >"$root/etc/hostname"
printf '127.0.0.1 localhost bw-systemd-test\n::1 localhost ip6-localhost\n' >"$root/etc/hosts"
# the collector's TLS files: one self-signed certificate serves as its own client CA,
# and the agent's (guest-test.sh's transport check) as its certificate and its CA
mkdir -p "$root/etc/buildwarden/collector"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bw-systemd-test \
	-addext subjectAltName=DNS:bw-systemd-test,IP:127.0.0.1 \
	-keyout "$root/etc/buildwarden/collector/tls-key.pem" -out "$root/etc/buildwarden/collector/tls-cert.pem" \
	>"$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; fail "openssl"; }
cp "$root/etc/buildwarden/collector/tls-cert.pem" "$root/etc/buildwarden/collector/tls-client-ca.pem"
chmod 600 "$root/etc/buildwarden/collector/tls-key.pem"
# the kernel's modules (those fetch-kernel.sh extracted), for systemd's and udev's loads
mkdir -p "$root/lib/modules" && cp -a "$kdir/lib/modules/." "$root/lib/modules/"

disk=$work/root.ext4
size=$(($(du -sm "$root" | cut -f1) + 512))
mke2fs -q -t ext4 -d "$root" -L bwroot -F "$disk" "${size}M" >"$work/mke2fs.log" 2>&1 ||
	{ cat "$work/mke2fs.log"; fail "mke2fs -d"; }
rm -rf --one-file-system "$root"
scripts/vmtest/mkinitramfs.sh "$work/initrd.gz" "$GUEST/initramfs-init.sh" "$kdir/lib/modules" \
	virtio_pci,virtio_blk,ext4,crc32c_generic || fail "mkinitramfs"
echo "image made in $(($(date +%s) - t0)) s (${size} MiB ext4)"

# ---- boot it ------------------------------------------------------------------------
echo "--- booting $(basename "$vmlinuz") with init=/lib/systemd/systemd under QEMU (TCG)"
log=$work/console.log
t0=$(date +%s)
qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp 2 -m 1024 \
	-kernel "$vmlinuz" -initrd "$work/initrd.gz" -display none -monitor none -no-reboot \
	-serial "file:$log" -drive "file=$disk,if=virtio,format=raw,cache=unsafe" \
	-append "console=ttyS0 panic=-1 loglevel=4 systemd.show_status=error systemd.firstboot=off" \
	>"$work/qemu.log" 2>&1 &
qemu_pid=$!
deadline=$((t0 + GUEST_TIMEOUT))
while kill -0 "$qemu_pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
	sleep 1
done
timed_out=0
if kill -0 "$qemu_pid" 2>/dev/null; then
	timed_out=1
	kill "$qemu_pid"
fi
wait "$qemu_pid" 2>/dev/null
qemu_pid=
guest_s=$(($(date +%s) - t0))
console=$(tr -d '\r' <"$log")
# kept for a look after a pass too (the checks' details, the units' logs on a failure)
printf '%s\n' "$console" >"$OUT/test_systemd.console"

bad=0
for c in $CHECKS; do
	line=$(printf '%s\n' "$console" | grep -m1 "^BWSD-CHECK $c ")
	if [ -z "$line" ]; then
		echo "FAIL: $c: no result from the guest"
		bad=1
	else
		echo "${line#BWSD-CHECK }"
		case $line in "BWSD-CHECK $c ok"*) ;; *) bad=1 ;; esac
	fi
done
printf '%s\n' "$console" | grep -q '^BWSD-DONE' || { echo "FAIL: the guest did not finish its checks"; bad=1; }
[ $timed_out -eq 1 ] && { echo "FAIL: the guest ran past ${GUEST_TIMEOUT} s and was stopped"; bad=1; }
echo "guest: ${guest_s} s; wall time: $(($(date +%s) - start)) s"
echo "guest uptime (s) at each check: $(printf '%s\n' "$console" | sed -n 's/^BWSD-TIME \([^ ]*\) \([0-9]*\).*/\1=\2/p' | tr '\n' ' ')"
if [ $bad -ne 0 ]; then
	echo "--- the guest's console:"
	printf '%s\n' "$console" | tail -300
	echo "(whole console: $OUT/test_systemd.console)"
	echo "--- qemu:"
	cat "$work/qemu.log"
	fail "the units do not work under systemd as checked above"
fi
echo "ok: the agent and collector units work under systemd"
