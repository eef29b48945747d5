#!/bin/bash
# fetch-kernel.sh SUITE CACHE: prints the path of a vmlinuz of Debian SUITE's
# newest amd64 kernel, downloaded once into CACHE.
#
# The package comes from Debian's archive through a private apt configuration
# (its own sources, lists and cache under CACHE): the host's apt configuration
# is never modified and the package is extracted with dpkg-deb, never installed.
set -euo pipefail
suite=$1
cache=$2
dir=$cache/$suite
mkdir -p "$dir"/apt/{sources.list.d,preferences.d,lists/partial,archives/partial} "$dir/pkg"
found=$(ls "$dir"/pkg/boot/vmlinuz-* 2>/dev/null | head -1 || true)
# The stamp names what was extracted: a change to the list below re-extracts.
stamp=extracted-v2
[ -n "$found" ] && [ ! -f "$dir/pkg/$stamp" ] && found= && rm -rf "$dir/pkg" && mkdir -p "$dir/pkg"
if [ -n "$found" ]; then
	echo "$found"
	exit 0
fi
mirror=${VMTEST_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || { echo "fetch-kernel: $keyring missing (apt-get install debian-archive-keyring)" >&2; exit 1; }
{
	echo "Types: deb"
	echo "URIs: $mirror"
	echo "Suites: $suite"
	echo "Components: main"
	echo "Signed-By: $keyring"
} >"$dir/apt/sources.list.d/vmtest.sources"
: >"$dir/apt/sources.list"
opts=(-o "Dir::Etc::SourceList=$dir/apt/sources.list" -o "Dir::Etc::SourceParts=$dir/apt/sources.list.d"
	-o "Dir::State::Lists=$dir/apt/lists" -o "Dir::Cache=$dir/apt" -o "Dir::Cache::archives=$dir/apt/archives"
	-o "Dir::Etc::Preferences=$dir/apt/preferences" -o "Dir::Etc::PreferencesParts=$dir/apt/preferences.d"
	-o "APT::Architecture=amd64" -o "APT::Architectures::=amd64" -o "APT::Sandbox::User=root"
	-o "Debug::NoLocking=1")
timeout -k 10 600 apt-get "${opts[@]}" -qq update >&2
# The kernel image package of this suite's default kernel ABI: the
# `linux-image-amd64` metapackage depends on it (the signed variant's
# -unsigned twin has the same vmlinuz).
image=$(apt-cache "${opts[@]}" depends linux-image-amd64 2>/dev/null |
	awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$image" ] || { echo "fetch-kernel: no linux-image-amd64 dependency in $suite" >&2; exit 1; }
(cd "$dir/apt/archives" && timeout -k 10 600 apt-get "${opts[@]}" -qq download "$image" >&2)
deb=$(ls "$dir"/apt/archives/"$image"_*.deb | head -1)
# The image, its config, and the modules the guest loads for a disk with file
# handles (loop + ext4 and their dependencies: tmpfs has none before 6.6).
# Debian 13 ships them under /usr/lib/modules, older suites under /lib/modules.
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir/pkg" --wildcards --no-wildcards-match-slash \
	'./boot/vmlinuz-*' './boot/config-*' './*lib/modules/*/kernel/fs' './*lib/modules/*/kernel/lib' \
	'./*lib/modules/*/kernel/crypto' './*lib/modules/*/kernel/drivers/block' \
	'./*lib/modules/*/kernel/drivers/virtio' './*lib/modules/*/kernel/arch/x86/crypto' \
	'./usr/lib/modules/*/kernel/fs' './usr/lib/modules/*/kernel/lib' './usr/lib/modules/*/kernel/crypto' \
	'./usr/lib/modules/*/kernel/drivers/block' './usr/lib/modules/*/kernel/drivers/virtio' \
	'./usr/lib/modules/*/kernel/arch/x86/crypto' 2>/dev/null || true
if [ -d "$dir/pkg/usr/lib/modules" ]; then
	mkdir -p "$dir/pkg/lib" && cp -a "$dir/pkg/usr/lib/modules" "$dir/pkg/lib/" && rm -rf "$dir/pkg/usr"
fi
# Compressed modules are unpacked: busybox's insmod loads plain .ko files.
find "$dir/pkg/lib/modules" -name '*.ko.xz' -exec xz -d {} +
ls "$dir"/pkg/boot/vmlinuz-* >/dev/null
touch "$dir/pkg/$stamp"
rm -f "$deb"
ls "$dir"/pkg/boot/vmlinuz-* | head -1
