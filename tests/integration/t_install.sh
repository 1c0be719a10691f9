#!/usr/bin/env bash
# t_install: after `meson install`, with nothing else configured, the
# union mounts the ways administrators mount things:
#  - mount -t fuse.unionmount SOURCE MNT -o ... and umount (mount(8) runs
#    /sbin/mount.fuse3, which runs `unionmount` from its helper PATH);
#  - fstab lines through mount -T FILE MNT, with mount(8)'s own options
#    (defaults, noauto, nofail, x-systemd.*, _netdev, comment=, rw/ro) and
#    overlayfs's, and `mount -a` honouring noauto;
#  - a line written for kernel overlayfs works with only its type changed:
#    same option names, ':' between lowers, "\:" for a colon in a name,
#    fstab's \040 for a space; both show the same tree;
#  - man finds the installed pages.
# The install goes to a --destdir that is bind-mounted over the prefix in
# a private mount namespace: the machine's /usr/local is never touched.

# Into a private mount namespace first (once): everything mounted below is
# then invisible outside and goes away with the test.
if [ -z "${UM_T_INSTALL_NS:-}" ]; then
	[ "$(id -u)" -eq 0 ] || { echo "SKIP t_install: needs root"; exit 77; }
	command -v unshare >/dev/null || { echo "SKIP t_install: no unshare"; exit 77; }
	UM_T_INSTALL_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi

. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon
selftest && skip "tests the installed daemon, which kernel overlayfs is not"
[ -n "${BUILDDIR:-}" ] && [ -f "$BUILDDIR/build.ninja" ] || die "BUILDDIR is not set to a meson build directory"

buildopt() {
	meson introspect "$BUILDDIR" --buildoptions |
		python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == sys.argv[1]))' "$1"
}
prefix=$(buildopt prefix) bindir=$(buildopt bindir) mandir=$(buildopt mandir)
[ "$prefix" == /usr/local ] || skip "prefix is $prefix: the test binds the install over /usr/local only"
case $bindir in /*) ;; *) bindir=$prefix/$bindir ;; esac
case $mandir in /*) ;; *) mandir=$prefix/$mandir ;; esac

# ---------------------------------------------------------------- meson install

log "meson install into a destdir"
D=$T/destdir
if ! t meson install -C "$BUILDDIR" --destdir "$D" --no-rebuild >"$T/install.log" 2>&1; then
	fail "meson install failed:"
	sed 's/^/     | /' "$T/install.log"
	finish
fi
# What the build made is what gets installed: the daemon always, unionctl
# and its page when this tree has them.
want=("$bindir/unionmount:755" "$mandir/man8/unionmount.8:644")
[ -x "$BUILDDIR/src/ctl/unionctl" ] && want+=("$bindir/unionctl:755" "$mandir/man8/unionctl.8:644")
for w in "${want[@]}"; do
	f=${w%:*} mode=${w##*:}
	if [ -f "$D$f" ]; then
		expect_eq "installed $f, mode" "$mode" "$(stat -c %a "$D$f")"
	else
		fail "meson install did not install $f"
	fi
done
expect_eq "installed daemon is the built one" "$(sha256sum <"$UNIONMOUNT")" "$(sha256sum <"$D$bindir/unionmount")"

t mount --bind "$D/usr/local" /usr/local || die "cannot bind the destdir over /usr/local"
_mounts+=("k:/usr/local")
# From here on the daemon under test is the installed one.
UNIONMOUNT=$bindir/unionmount

log "man finds the installed pages"
if command -v man >/dev/null; then
	expect_eq "man -w unionmount" "$mandir/man8/unionmount.8" "$(MANPATH= man -w unionmount 2>&1)"
	if [ -x "$BUILDDIR/src/ctl/unionctl" ]; then
		expect_eq "man -w unionctl" "$mandir/man8/unionctl.8" "$(MANPATH= man -w unionctl 2>&1)"
	fi
else
	log "no man(1) here: not checked"
fi

# ---------------------------------------------------------------- layers

L1=$T/l1 L2=$T/l2
mkf "$L1" top
mkf "$L2" top
mkf "$L2" bottom
mkf "$L1" d/a
mkf "$L2" d/b
mkwh "$L1" d/gone
mkf "$L2" d/gone
# A lower whose name has a colon and a space: "\:" escapes the colon in
# the lowerdir list (both systems), fstab writes the space as \040.
L3="$T/low:er 3"
mkf "$L3" third l3third
mkf "$L3" d/c

# fresh NAME: a new upper/work pair and mountpoint; sets UP WK MP.
fresh() {
	UP=$T/$1/upper WK=$T/$1/work MP=$T/$1/mnt
	mkdir -p "$UP" "$WK" "$MP"
}

# mounted_by_mount MNT SOURCE TYPE: mounted with that source and type;
# for ours, register the backgrounded daemon for the EXIT trap.
mounted_by_mount() {
	local line
	line=$(mount_line "$1")
	expect_eq "$1: source and type in /proc/mounts" "$2 $3" "$(cut -d' ' -f1,3 <<<"$line")"
	if [ "$3" == fuse.unionmount ]; then
		_mounts+=("f:$1")
		local pid
		pid=$(bg_daemon_pid "$1") && _pid_of[$1]=$pid
		[ -n "$pid" ] || fail "$1: no unionmount daemon serving it"
	else
		_mounts+=("k:$1")
	fi
}

# unmounted MNT: umount(8) works and leaves no daemon behind.
unmounted() {
	local pid=${_pid_of[$1]:-} i
	if ! t umount "$1"; then
		fail "umount $1 failed"
		return
	fi
	_forget_mount "$1"
	for i in $(seq 100); do
		[ -n "$pid" ] && pid_running "$pid" || break
		sleep 0.1
	done
	if [ -n "$pid" ] && pid_running "$pid"; then
		fail "umount $1: daemon $pid still running after 10s"
	else
		pass "umount $1: unmounted, no daemon left"
	fi
	unset '_pid_of[$1]'
}

# ---------------------------------------------------------------- mount -t

log "mount -t fuse.unionmount, umount"
fresh cmdline
# mount(8) gives its helpers a fixed PATH; make sure ours plays no part.
if t env PATH=/usr/bin:/bin mount -t fuse.unionmount myunion "$MP" -o "lowerdir=$L1:$L2,upperdir=$UP,workdir=$WK" \
	>"$T/mount.out" 2>&1; then
	pass "mount -t fuse.unionmount"
	mounted_by_mount "$MP" myunion fuse.unionmount
	expect_eq "mount -t: output" "" "$(cat "$T/mount.out")"
	expect_eq "mount -t: top-most lower wins" "l1:top" "$(t cat "$MP/top")"
	expect_eq "mount -t: merged directory" "a b" "$(t ls "$MP/d" | tr '\n' ' ' | sed 's/ $//')"
	echo new >"$MP/new" || fail "mount -t: cannot create a file"
	unmounted "$MP"
	expect_eq "mount -t: the new file is in upper" new "$(cat "$UP/new" 2>&1)"
else
	fail "mount -t fuse.unionmount failed:"
	sed 's/^/     | /' "$T/mount.out"
fi

# ---------------------------------------------------------------- fstab

log "fstab lines through mount -T, ours beside kernel overlayfs"
fresh ours
OURS_UP=$UP OURS_WK=$WK OURS=$MP
fresh kern
KERN_UP=$UP KERN_WK=$WK KERN=$MP
fresh ro
RO_UP=$UP RO_WK=$WK RO=$MP
# The escapes: "\:" inside lowerdir for the colon (lowerdir_opt), then
# fstab's \040 for the space and \134 for that backslash (mount_escape;
# mount(8) turns them back before anyone parses -o). The whole field is
# escaped, so a blank in TMPDIR does not split the line either.
sys_opts="noauto,nofail,x-systemd.automount,x-systemd.requires=local-fs.target,x-systemd.idle-timeout=60,_netdev,comment=union"
ovl_opts="redirect_dir=on,index=on,xino=auto"
lowers=$(lowerdir_opt "$L1" "$L2" "$L3")
cat >"$T/fstab" <<EOF
# One line written for kernel overlayfs, the same with only the type changed.
overlay $(mount_escape "$KERN") overlay $(mount_escape "$sys_opts,$ovl_opts,$lowers,upperdir=$KERN_UP,workdir=$KERN_WK") 0 0
union $(mount_escape "$OURS") fuse.unionmount $(mount_escape "$sys_opts,$ovl_opts,$lowers,upperdir=$OURS_UP,workdir=$OURS_WK") 0 0
# mounted by mount -a: no noauto
unionro $(mount_escape "$RO") fuse.unionmount $(mount_escape "defaults,ro,$(lowerdir_opt "$L1"),upperdir=$RO_UP,workdir=$RO_WK") 0 0
EOF
for m in "$KERN:overlay:overlay" "$OURS:union:fuse.unionmount"; do
	mp=${m%%:*} rest=${m#*:}
	if t mount -T "$T/fstab" "$mp" >"$T/mount.out" 2>&1; then
		pass "mount -T fstab $mp (${rest#*:})"
		mounted_by_mount "$mp" "${rest%%:*}" "${rest#*:}"
	else
		fail "mount -T fstab $mp failed:"
		sed 's/^/     | /' "$T/mount.out"
	fi
done
if _is_mounted "$KERN" && _is_mounted "$OURS"; then
	expect_eq "fstab: the lower with ':' and ' ' in its name is there" "l3third c" \
		"$(t cat "$OURS/third") $(t ls "$OURS/d" | grep -x c)"
	tree_dump "$KERN" "$T/kern.dump"
	tree_dump "$OURS" "$T/ours.dump"
	expect_same_file "fstab: the same line shows the same tree through both" "$T/kern.dump" "$T/ours.dump"
	expect_eq "fstab: rw by default" rw "$(mount_line "$OURS" | cut -d' ' -f4 | cut -d, -f1)"
fi
_is_mounted "$OURS" && unmounted "$OURS"
_is_mounted "$KERN" && { t umount "$KERN" || fail "umount $KERN"; _forget_mount "$KERN"; }

log "mount -a -T: mounts what has no noauto, and ro means read-only"
if t mount -a -T "$T/fstab" >"$T/mount.out" 2>&1; then
	pass "mount -a -T fstab"
else
	fail "mount -a -T fstab failed:"
	sed 's/^/     | /' "$T/mount.out"
fi
expect_eq "mount -a: noauto lines left alone" "no no" \
	"$(_is_mounted "$OURS" && echo yes || echo no) $(_is_mounted "$KERN" && echo yes || echo no)"
if _is_mounted "$RO"; then
	mounted_by_mount "$RO" unionro fuse.unionmount
	expect_eq "fstab ro: mounted read-only" ro "$(mount_line "$RO" | cut -d' ' -f4 | cut -d, -f1)"
	expect_probe "fstab ro: creating fails" EROFS creat "$RO/new"
	unmounted "$RO"
	expect_eq "fstab ro: nothing written to upper or workdir" "" "$(find "$RO_UP" "$RO_WK" -mindepth 1)"
else
	fail "mount -a: the line without noauto is not mounted"
fi
_is_mounted "$OURS" && unmounted "$OURS"
_is_mounted "$KERN" && { t umount "$KERN"; _forget_mount "$KERN"; }

# Nothing of ours may outlive its mount.
for mp in "$T"/*/mnt; do
	if pid=$(bg_daemon_pid "$mp"); then
		fail "a daemon ($pid) still serves $mp"
	fi
done

finish
