#!/bin/bash
# The Debian package on a clean Debian 12 root: it installs with apt from its declared
# Depends alone (no compiler, no -dev package there), `buildwarden run -- true` works
# in it, and a purge leaves nothing behind: no file the package had (dpkg -L before
# the purge) and no other change to the root's tree.
#
# The root is built once by mmdebstrap from this host's Debian sources (minbase, plus
# the .debs its Depends need, downloaded but not installed) and cached as a tarball in
# $BW_CHROOT_CACHE (default /var/tmp/buildwarden-chroot-cache), keyed by the Depends
# line; each run unpacks a fresh copy. No mirror: exit 77, saying why.
#
# The root gets /proc, /sys and the cgroup v2 tree (the sensor's needs) and /dev; all
# mounts are made in a private mount namespace and also unmounted one by one, by the
# exact path mounted, whatever happens. Wall time: see tests/packaging/README.md.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-build}
CACHE=${BW_CHROOT_CACHE:-/var/tmp/buildwarden-chroot-cache}
SOURCES=${BW_DEB_SOURCES:-}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

# ---- inside the private mount namespace: mount, test, unmount --------------------
if [ "${1:-}" = --in-namespace ]; then
	root=$2 deb=$3
	mounted=()
	cleanup() {
		local i
		for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
			umount "${mounted[i]}" || echo "warning: cannot unmount ${mounted[i]}"
		done
	}
	trap cleanup EXIT
	trap 'exit 143' TERM INT HUP # so the EXIT trap runs when timeout(1) stops the test
	mnt() { # mount args..., the target last
		local target=${!#}
		mkdir -p "$target" && mount "$@" && mounted+=("$target")
	}
	# the cgroup v2 tree at the same path as on the host (the agent finds it in /proc/mounts)
	cg=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[ -n "$cg" ] || fail "no cgroup2 mount on this host"
	mnt -t proc proc "$root/proc" || fail "cannot mount proc"
	mnt -t sysfs sysfs "$root/sys" || fail "cannot mount sysfs"
	# a hybrid host has it under a tmpfs at /sys/fs/cgroup (e.g. .../unified): so does the root
	if [ "$cg" != /sys/fs/cgroup ] && [ "${cg#/sys/fs/cgroup/}" != "$cg" ]; then
		mnt -t tmpfs -o mode=755,size=64k cgroup-parent "$root/sys/fs/cgroup" || fail "cannot mount a tmpfs for $cg"
	fi
	mnt --bind "$cg" "$root$cg" || fail "cannot bind $cg"
	# tracefs, which the agent would otherwise mount itself (inside this namespace)
	mnt -t tracefs nodev "$root/sys/kernel/tracing" || echo "note: no tracefs; the agent mounts its own"
	mnt --bind /dev "$root/dev" || fail "cannot bind /dev"
	in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }
	snapshot() { # the root's tree, less what apt and dpkg keep about themselves
		(cd "$root" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./tmp \
			-o -path ./var/cache -o -path ./var/lib/apt -o -path ./var/lib/dpkg -o -path ./var/log \
			-o -path ./run \) -prune -o -print | sort)
	}

	snapshot >"$root/tmp/before"
	cp "$deb" "$root/tmp/buildwarden.deb"
	echo "--- dpkg -i buildwarden.deb; apt-get -f install (its Depends, from the cached archives)"
	# dpkg alone stops at the missing libraries; apt brings in what Depends names, and
	# only that (apt-get install --no-download refuses a .deb given by path)
	in_root dpkg -i /tmp/buildwarden.deb >"$root/tmp/apt.log" 2>&1
	in_root apt-get install -f -y --no-download --no-install-recommends \
		>>"$root/tmp/apt.log" 2>&1 || { cat "$root/tmp/apt.log"; fail "the package does not install"; }
	in_root dpkg -s buildwarden | grep -q '^Status: install ok installed' || fail "not installed"
	in_root sh -c 'command -v cc gcc clang' && fail "a compiler is in the root"

	echo "--- buildwarden version / policy check / run -- true"
	in_root buildwarden version || fail "buildwarden version"
	in_root buildwarden policy check /etc/buildwarden/policy.yaml || fail "the shipped policy does not load"
	in_root buildwarden run -- true >"$root/tmp/run.log" 2>&1
	rc=$?
	cat "$root/tmp/run.log"
	[ $rc -eq 0 ] || fail "buildwarden run -- true exited $rc in the root"
	in_root buildwarden run --policy /etc/buildwarden/policy.yaml --events /tmp/ev.pb -- sh -c 'exit 3'
	rc=$?
	[ $rc -eq 3 ] || fail "run with the shipped policy exited $rc, not the build's 3"
	in_root buildwarden decode /tmp/ev.pb | grep -q '"runEnd"' || fail "no runEnd in the events"
	[ -s "$root/usr/share/man/man8/buildwarden-run.8.gz" ] || fail "no man page"
	[ -f "$root/lib/systemd/system/buildwarden-agent.service" ] || fail "no agent unit"

	in_root dpkg -L buildwarden >"$root/tmp/files" || fail "dpkg -L"
	echo "--- apt-get purge buildwarden ($(wc -l <"$root/tmp/files") paths)"
	# --autoremove: the libraries that came in for it go too, so the tree is as before
	in_root apt-get purge -y --autoremove buildwarden >"$root/tmp/purge.log" 2>&1 || { cat "$root/tmp/purge.log"; fail "purge failed"; }
	in_root dpkg -s buildwarden >/dev/null 2>&1 && fail "still known to dpkg after purge"
	left=0
	while read -r f; do
		[ "$f" = /. ] && continue
		[ -e "$root$f" ] || [ -L "$root$f" ] || continue
		# a directory another package owns (/usr/bin) stays
		if [ -d "$root$f" ] && in_root dpkg -S "$f" >/dev/null 2>&1; then
			continue
		fi
		echo "left behind: $f"
		left=1
	done <"$root/tmp/files"
	rm -f "$root/tmp/ev.pb"
	snapshot >"$root/tmp/after"
	if ! diff "$root/tmp/before" "$root/tmp/after"; then
		echo "the purge did not restore the root's tree (diff above)"
		left=1
	fi
	[ $left -eq 0 ] || fail "the purge left files behind"
	# mounts this test did not make (none expected) go with the namespace; say so
	awk -v r="$root/" 'index($2, r) == 1 { print "note: mounted by another: " $2 }' /proc/self/mounts |
		grep -vF -f <(printf '%s\n' "${mounted[@]}" | sed 's/^/note: mounted by another: /') || true
	echo "ok: installed, ran, purged clean"
	exit 0
fi

# ---- outside: the package, the cached root, a fresh copy --------------------------
[ "$(id -u)" -eq 0 ] || skip "needs root (chroot, mounts, the sensor)"
command -v mmdebstrap >/dev/null || skip "no mmdebstrap (make deps installs it)"
for tool in dpkg-buildpackage dh lintian; do
	command -v $tool >/dev/null || skip "no $tool to build the package (make deps installs it)"
done
if [ -z "$SOURCES" ]; then
	for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
		[ -s "$f" ] && grep -q bookworm "$f" && { SOURCES=$f; break; }
	done
fi
[ -n "$SOURCES" ] || skip "no Debian 12 (bookworm) apt sources on this host to build the root from (set BW_DEB_SOURCES)"

start=$(date +%s)
echo "--- make deb"
make -s OUT="$OUT" deb >"$OUT/test_deb.make.log" 2>&1 || { tail -40 "$OUT/test_deb.make.log"; fail "make deb"; }
deb=$OUT/deb/buildwarden_$(cat VERSION)_$(dpkg --print-architecture).deb
[ -s "$deb" ] || fail "make deb made no $deb"
deps=$(dpkg-deb -f "$deb" Depends | tr -d ' ')
key=$(printf '%s\n%s\n' "$deps" "$(cat "$SOURCES")" | sha256sum | cut -c1-16)
tarball=$CACHE/bookworm-$key.tar
mkdir -p "$CACHE" || fail "cannot create $CACHE"

if [ ! -s "$tarball" ]; then
	# the Depends' package names, to download into the root's apt cache
	pkgs=$(echo "$deps" | tr ',' '\n' | sed 's/(.*//; s/|.*//' | grep -v '^$' | tr '\n' ' ')
	echo "--- building the Debian 12 root (cold cache): mmdebstrap minbase, downloads: $pkgs"
	t0=$(date +%s)
	if ! timeout 900 mmdebstrap --variant=minbase --mode=root --format=tar --skip=cleanup/apt \
		--customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
		--customize-hook="chroot \"\$1\" apt-get install -y --download-only --no-install-recommends $pkgs" \
		bookworm "$tarball.tmp" "$SOURCES" >"$CACHE/mmdebstrap.log" 2>&1; then
		rm -f "$tarball.tmp"
		tail -20 "$CACHE/mmdebstrap.log"
		if grep -qiE 'Temporary failure resolving|Could not resolve|Failed to fetch|Unable to connect|Connection failed|Network is unreachable|No route to host|timed out' "$CACHE/mmdebstrap.log"; then
			skip "the Debian mirror in $SOURCES cannot be reached, so no root can be built (log: $CACHE/mmdebstrap.log)"
		fi
		fail "mmdebstrap failed (log: $CACHE/mmdebstrap.log)"
	fi
	mv "$tarball.tmp" "$tarball"
	echo "root built in $(($(date +%s) - t0)) s: $tarball ($(du -h "$tarball" | cut -f1))"
fi

root=$(mktemp -d "$CACHE/root.XXXXXX") || fail "mktemp"
chmod 755 "$root"
trap 'rm -rf --one-file-system "$root"' EXIT
trap 'exit 143' TERM INT HUP
tar -xf "$tarball" -C "$root" || fail "cannot unpack $tarball"
unshare --mount --propagation private "$0" --in-namespace "$root" "$(realpath "$deb")"
rc=$?
# the namespace is gone, and its mounts with it: nothing may be mounted under the root
if grep -q " $root/" /proc/mounts; then
	grep " $root/" /proc/mounts
	fail "mounts left under $root"
fi
echo "wall time: $(($(date +%s) - start)) s"
exit $rc
