# shellcheck shell=bash
# A clean Debian 12 root for the packaging tests (tests/packaging/test_*.sh), sourced
# by bash scripts run as `$0`, which re-run themselves inside a private mount namespace
# as `$0 --in-namespace ROOT ARGS...`. The caller defines skip (exit 77) and fail.
#
# Outside:
#   root_prereqs            skips unless root, mmdebstrap, the packaging tools and
#                           Debian 12 apt sources (sets SOURCES; BW_DEB_SOURCES=FILE)
#   root_make_deb           `make deb` (lintian included); sets deb (absolute path).
#                           Not again for a tree whose files are as they were at the
#                           last successful build (their hash is kept next to the .deb):
#                           test_deb, test_ci_flow and test_systemd share one build.
#                           BW_DEB=FILE: that package instead, nothing built
#   root_tarball [PKG...]   the cached root, built once by mmdebstrap (minbase, PKGs
#                           installed, the .deb's Depends downloaded but not installed);
#                           sets tarball. Keyed by the Depends, the sources and the PKGs.
#                           No mirror: skip.
#   root_unpack             a fresh copy of it: sets root; removed on EXIT
#   root_enter ARGS...      runs `$0 --in-namespace $root ARGS...` in a private mount
#                           namespace, then fails if anything is left mounted under $root;
#                           returns the inner script's status
# Inside (`$0 --in-namespace ROOT ...`):
#   root_mount ROOT         /proc, /sys, the cgroup v2 tree at the host's path, tracefs,
#                           /dev; each unmounted by its exact path on EXIT, after
#                           ROOT_EXIT_HOOK (a command the caller may set) has run
#   in_root CMD...          CMD chrooted in ROOT with an empty environment but PATH, LC_ALL
#
# Cache: $BW_CHROOT_CACHE (default /var/tmp/buildwarden-chroot-cache); a root unused for 7 days is
# deleted by the next root_tarball.
CACHE=${BW_CHROOT_CACHE:-/var/tmp/buildwarden-chroot-cache}
SOURCES=${BW_DEB_SOURCES:-}
OUT=${OUT:-build}

root_prereqs() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (chroot, mounts, the sensor)"
	command -v mmdebstrap >/dev/null || skip "no mmdebstrap (make deps installs it)"
	local tool
	for tool in dpkg-buildpackage dh lintian; do
		command -v $tool >/dev/null || skip "no $tool to build the package (make deps installs it)"
	done
	if [ -z "$SOURCES" ]; then
		local f
		for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
			[ -s "$f" ] && grep -q bookworm "$f" && { SOURCES=$f; break; }
		done
	fi
	[ -n "$SOURCES" ] || skip "no Debian 12 (bookworm) apt sources on this host to build the root from (set BW_DEB_SOURCES)"
}

root_make_deb() {
	local log
	log=$OUT/$(basename "$0" .sh).make.log
	if [ -n "${BW_DEB:-}" ]; then # a given package (a release, or a broken one to test the test)
		deb=$(realpath "$BW_DEB") && [ -s "$deb" ] || fail "BW_DEB=$BW_DEB is not a file"
		echo "--- the package: $deb (BW_DEB; no make deb)"
		return 0
	fi
	deb=$OUT/deb/buildwarden_$(cat VERSION)_$(dpkg --print-architecture).deb
	# what `make deb` copies into its build tree, by content: unchanged, so is the package
	local tree=
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		tree=$(git ls-files -co --exclude-standard -z | xargs -0 sha256sum 2>/dev/null | sha256sum | cut -c1-64)
	fi
	# the stamp names the .deb too: one made by a later `make deb` by hand is not it
	if [ -n "$tree" ] && [ -s "$deb" ] && [ "$(cat "$deb.tree" 2>/dev/null)" = "$tree $(sha256sum <"$deb" | cut -c1-64)" ]; then
		deb=$(realpath "$deb")
		echo "--- the package: $deb (built by make deb from this very tree, lintian passed)"
		return 0
	fi
	echo "--- make deb"
	mkdir -p "$OUT"
	rm -f "$deb.tree"
	make -s OUT="$OUT" deb >"$log" 2>&1 || { tail -40 "$log"; fail "make deb"; }
	[ -s "$deb" ] || fail "make deb made no $deb"
	[ -z "$tree" ] || echo "$tree $(sha256sum <"$deb" | cut -c1-64)" >"$deb.tree"
	deb=$(realpath "$deb")
}

root_tarball() {
	local deps include key pkgs t0
	deps=$(dpkg-deb -f "$deb" Depends | tr -d ' ')
	include=$(printf '%s\n' "$@" | sort -u | tr '\n' ',' | sed 's/^,//; s/,$//')
	# with no PKGs the key is what it was before PKGs existed: test_deb's cache stays valid
	if [ -z "$include" ]; then
		key=$(printf '%s\n%s\n' "$deps" "$(cat "$SOURCES")" | sha256sum | cut -c1-16)
	else
		key=$(printf '%s\n%s\ninclude=%s\n' "$deps" "$(cat "$SOURCES")" "$include" | sha256sum | cut -c1-16)
	fi
	tarball=$CACHE/bookworm-$key.tar
	mkdir -p "$CACHE" || fail "cannot create $CACHE"
	# A root is 300-500 MB and a new key (Depends, sources, PKGs) makes a new one: roots
	# no test has used for a week go. A use marks its root (mtime), so none in use goes.
	find "$CACHE" -maxdepth 1 -name 'bookworm-*.tar' -type f -mtime +7 -delete 2>/dev/null || true
	if [ -s "$tarball" ]; then
		touch "$tarball"
		return 0
	fi
	# the Depends' package names, to download into the root's apt cache
	pkgs=$(echo "$deps" | tr ',' '\n' | sed 's/(.*//; s/|.*//' | grep -v '^$' | tr '\n' ' ')
	echo "--- building the Debian 12 root (cold cache): mmdebstrap minbase${include:+ with $include}, downloads: $pkgs"
	t0=$(date +%s)
	if ! timeout 900 mmdebstrap --variant=minbase --mode=root --format=tar --skip=cleanup/apt \
		${include:+--include="$include"} \
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
}

root_unpack() {
	root=$(mktemp -d "$CACHE/root.XXXXXX") || fail "mktemp"
	chmod 755 "$root"
	trap 'rm -rf --one-file-system "$root"' EXIT
	trap 'exit 143' TERM INT HUP
	tar -xf "$tarball" -C "$root" || fail "cannot unpack $tarball"
}

root_enter() {
	local rc
	unshare --mount --propagation private "$0" --in-namespace "$root" "$@"
	rc=$?
	# the namespace is gone, and its mounts with it: nothing may be mounted under the root
	if grep -q " $root/" /proc/mounts; then
		grep " $root/" /proc/mounts
		fail "mounts left under $root"
	fi
	return $rc
}

# ---- inside the namespace ----------------------------------------------------------
root_mounted=()
root_unmount() {
	local i
	[ -n "${ROOT_EXIT_HOOK:-}" ] && $ROOT_EXIT_HOOK
	for ((i = ${#root_mounted[@]} - 1; i >= 0; i--)); do
		umount "${root_mounted[i]}" || echo "warning: cannot unmount ${root_mounted[i]}"
	done
}

root_mnt() { # mount args..., the target last
	local target=${!#}
	mkdir -p "$target" && mount "$@" && root_mounted+=("$target")
}

root_mount() {
	local r=$1 cg
	ROOT=$r
	trap root_unmount EXIT
	trap 'exit 143' TERM INT HUP # so the EXIT trap runs when timeout(1) stops the test
	# the cgroup v2 tree at the same path as on the host (the agent finds it in /proc/mounts)
	cg=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[ -n "$cg" ] || fail "no cgroup2 mount on this host"
	root_mnt -t proc proc "$r/proc" || fail "cannot mount proc"
	root_mnt -t sysfs sysfs "$r/sys" || fail "cannot mount sysfs"
	# a hybrid host has it under a tmpfs at /sys/fs/cgroup (e.g. .../unified): so does the root
	if [ "$cg" != /sys/fs/cgroup ] && [ "${cg#/sys/fs/cgroup/}" != "$cg" ]; then
		root_mnt -t tmpfs -o mode=755,size=64k cgroup-parent "$r/sys/fs/cgroup" || fail "cannot mount a tmpfs for $cg"
	fi
	root_mnt --bind "$cg" "$r$cg" || fail "cannot bind $cg"
	# tracefs, which the agent would otherwise mount itself (inside this namespace)
	root_mnt -t tracefs nodev "$r/sys/kernel/tracing" || echo "note: no tracefs; the agent mounts its own"
	root_mnt --bind /dev "$r/dev" || fail "cannot bind /dev"
}

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }
