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
cd "$(dirname "$0")/../.." || exit 1

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
. tests/packaging/lib_root.sh

# ---- inside the private mount namespace: mount, test, unmount --------------------
if [ "${1:-}" = --in-namespace ]; then
	root=$2 deb=$3
	root_mount "$root"
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
		grep -vF -f <(printf '%s\n' "${root_mounted[@]}" | sed 's/^/note: mounted by another: /') || true
	echo "ok: installed, ran, purged clean"
	exit 0
fi

# ---- outside: the package, the cached root, a fresh copy --------------------------
root_prereqs
start=$(date +%s)
root_make_deb
root_tarball
root_unpack
root_enter "$deb"
rc=$?
echo "wall time: $(($(date +%s) - start)) s"
exit $rc
