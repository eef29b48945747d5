#!/bin/busybox sh
# shellcheck shell=dash
# /init of test_systemd.sh's initramfs: loads the modules the root disk needs (Debian's
# kernel has virtio and ext4 as modules), mounts the ext4 root read-write and hands
# over to the root's systemd as PID 1. A failure here prints BWSD-INIT-FAIL (the host
# script names it) and powers off.
/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin /newroot
/bin/busybox --install -s /bin 2>/dev/null
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
die() {
	echo "BWSD-INIT-FAIL $*"
	poweroff -f
}
while read -r m; do
	case $m in '#'* | '') ;; *) insmod "/modules/$m.ko" || echo "insmod $m failed" ;; esac
done </modules/load.list
for _ in $(seq 1 40); do [ -b /dev/vda ] && break; sleep 0.25; done
mount -t ext4 -o rw /dev/vda /newroot || die "cannot mount /dev/vda"
[ -x /newroot/lib/systemd/systemd ] || die "no /lib/systemd/systemd in the root"
umount /proc /sys
umount /dev
exec switch_root /newroot /lib/systemd/systemd
