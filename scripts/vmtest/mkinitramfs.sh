#!/bin/bash
# mkinitramfs.sh OUT.cpio.gz INIT MODDIR MODULES FILE...: an initramfs holding
# busybox (the guest's shell and tools), INIT as /init, the kernel MODULES
# (comma-separated names, found under MODDIR with their dependencies, loaded by
# /init in order from /modules/load.list), each FILE at its own absolute path or
# SRC=DEST at DEST (a directory with its contents), and every shared library
# those files load
# (found with ldd), so the host's dynamically linked binaries run unchanged.
set -euo pipefail
out=$1 init=$2 moddir=$3 modules=$4
shift 4
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,etc,usr/bin,usr/sbin,mnt,modules}
cp /bin/busybox "$root/bin/busybox"
install -m 0755 "$init" "$root/init"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/sh' >>"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

# Modules, dependencies first (read from each .ko's modinfo "depends=").
declare -A seen=()
: >"$root/modules/load.list"
add_module() { # name
	local m=${1//-/_} f d
	[ -n "${seen[$m]:-}" ] && return 0
	seen[$m]=1
	f=$(find "$moddir" -name "$m.ko" -o -name "${m//_/-}.ko" | head -1)
	if [ -z "$f" ]; then
		echo "# $m: built in (no module file)" >>"$root/modules/load.list"
		return 0
	fi
	for d in $(LC_ALL=C grep -a -o 'depends=[a-z0-9_,-]*' "$f" | head -1 | cut -d= -f2 | tr ',' ' '); do
		add_module "$d"
	done
	cp "$f" "$root/modules/$m.ko"
	echo "$m" >>"$root/modules/load.list"
}
for m in ${modules//,/ }; do add_module "$m"; done

copy() { # absolute path -> same path in the guest (a symlink's target copied under the link's name)
	local f=$1
	[ -e "$root$f" ] && return 0
	mkdir -p "$root$(dirname "$f")"
	cp -L "$f" "$root$f"
}
libs() { # binary -> the shared libraries it loads (nothing for a static binary or a script)
	ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true
}
# FILE is a path (copied to the same path in the guest) or SRC=DEST (copied to DEST).
for arg in "$@"; do
	f=${arg%%=*}
	dest=$f
	[ "$arg" != "$f" ] && dest=${arg#*=}
	[ -e "$f" ] || { echo "mkinitramfs: $f does not exist" >&2; exit 1; }
	if [ -d "$f" ]; then
		mkdir -p "$root$dest" && cp -a "$f/." "$root$dest/"
		continue
	fi
	if [ ! -e "$root$dest" ]; then
		mkdir -p "$root$(dirname "$dest")"
		cp -L "$f" "$root$dest"
	fi
	for l in $(libs "$f"); do copy "$l"; done
done
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --owner=0:0) | gzip -1 >"$out"
