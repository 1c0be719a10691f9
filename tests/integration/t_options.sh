#!/usr/bin/env bash
# t_options: the command line.
#
# Bad input fails before mounting: non-zero exit, exactly one line on
# stderr naming the option, nothing mounted, branches untouched. Good
# input: the mountpoint may be one of the lowerdirs; '\:' escapes a colon;
# SOURCE and fuse.unionmount show in /proc/mounts, with allow_other and
# default_permissions as root; -o may be repeated; -o ro; cache_timeout;
# -h and -V; without -f the daemon detaches and exits after unmount.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
selftest && skip "command-line test: nothing to compare with kernel overlayfs"

L1=$T/l1 L2=$T/l2 U=$T/upper W=$T/work M=$T/mnt
mkdir -p "$L1" "$L2" "$U" "$W" "$M" "$T/upper2" "$T/work2"
mkf "$L1" one
mkf "$L2" two
mkf "$L2" one
printf x >"$T/afile"
# workdir on another filesystem than upperdir.
kmount tmpfs "$T/otherfs" size=1m,mode=0755
mkdir -p "$T/otherfs/work"
# An upper on a read-only filesystem.
kmount tmpfs "$T/rofs" size=1m,mode=0755
mkdir -p "$T/rofs/upper" "$T/rofs/work"
timeout 20 mount -o remount,ro "$T/rofs" || die "cannot remount tmpfs read-only"
# Nested layouts.
# (own upper/work dirs: W must stay empty for the good cases below)
UN=$T/un WN=$T/wn
mkdir -p "$L1/nested-upper" "$L1/nested-work" "$UN/nested-work" "$UN/nested-lower" \
	"$WN/nested-upper" "$WN/nested-lower"

snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"

LOW=$(lowerdir_opt "$L1" "$L2")

expect_refused "no -o at all" 'lowerdir' "$M"
expect_refused "no lowerdir" 'lowerdir' "$M" -o ro
expect_refused "empty lowerdir list" 'lowerdir' "$M" -o lowerdir=
expect_refused "lowerdir does not exist" 'lowerdir' "$M" -o "lowerdir=$T/nope"
expect_refused "second lowerdir does not exist" 'lowerdir' "$M" -o "lowerdir=$L1:$T/nope"
expect_refused "lowerdir is a file" 'lowerdir' "$M" -o "lowerdir=$T/afile"
expect_refused "upperdir without workdir" 'upperdir|workdir' "$M" -o "upperdir=$U,$LOW"
expect_refused "workdir without upperdir" 'upperdir|workdir' "$M" -o "workdir=$W,$LOW"
expect_refused "upperdir does not exist" 'upperdir' "$M" -o "upperdir=$T/nope,workdir=$W,$LOW"
expect_refused "workdir does not exist" 'workdir' "$M" -o "upperdir=$U,workdir=$T/nope,$LOW"
expect_refused "upperdir is a file" 'upperdir' "$M" -o "upperdir=$T/afile,workdir=$W,$LOW"
expect_refused "workdir on another filesystem" 'workdir' "$M" -o "upperdir=$U,workdir=$T/otherfs/work,$LOW"
expect_refused "upperdir equals a lowerdir" 'upperdir|lowerdir' "$M" -o "upperdir=$L2,workdir=$W,$LOW"
expect_refused "upperdir inside a lowerdir" 'upperdir|lowerdir' "$M" -o "upperdir=$L1/nested-upper,workdir=$L1/nested-work,$LOW"
expect_refused "lowerdir inside upperdir" 'upperdir|lowerdir' "$M" -o "upperdir=$UN,workdir=$W,lowerdir=$UN/nested-lower:$L2"
expect_refused "workdir inside a lowerdir" 'workdir|lowerdir' "$M" -o "upperdir=$T/upper2,workdir=$L1/nested-work,$LOW"
expect_refused "lowerdir inside workdir" 'workdir|lowerdir' "$M" -o "upperdir=$U,workdir=$WN,lowerdir=$WN/nested-lower"
expect_refused "workdir inside upperdir" 'workdir|upperdir' "$M" -o "upperdir=$UN,workdir=$UN/nested-work,$LOW"
expect_refused "upperdir inside workdir" 'workdir|upperdir' "$M" -o "upperdir=$WN/nested-upper,workdir=$WN,$LOW"
expect_refused "workdir equals upperdir" 'workdir|upperdir' "$M" -o "upperdir=$U,workdir=$U,$LOW"
expect_refused "upperdir on a read-only filesystem" 'upperdir' "$M" -o "upperdir=$T/rofs/upper,workdir=$T/rofs/work,$LOW"
expect_refused "unknown option with a value" "unknown option" "$M" -o "bogus=1,$LOW"
expect_match "unknown option: the message names it" "bogus" "$(cat "$T/refused.err")"
expect_refused "unknown flag option" "unknown option" "$M" -o "frobnicate,$LOW"
expect_match "unknown flag option: the message names it" "frobnicate" "$(cat "$T/refused.err")"
expect_refused "unknown command-line switch" 'unknown|option' "$M" -Z -o "$LOW"
expect_refused "missing mountpoint" 'mountpoint' -o "$LOW"
expect_refused "mountpoint does not exist" 'mountpoint' "$T/nope" -o "$LOW"
expect_refused "lowerdir listed twice" 'lowerdir' "$M" -o "lowerdir=$L1:$L2:$L1"
expect_refused "cache_timeout not a number" 'cache_timeout' "$M" -o "cache_timeout=abc,$LOW"
expect_refused "cache_timeout negative" 'cache_timeout' "$M" -o "cache_timeout=-1,$LOW"
# No /proc of its own (a chroot or initramfs that never mounted it): the
# daemon would lose what it reaches through /proc/self/fd.
if ldd "$UNIONMOUNT" 2>/dev/null | grep -q libasan; then
	log "not checked without /proc: AddressSanitizer itself reads /proc"
elif command -v unshare >/dev/null; then
	printf '#!/bin/sh\nexec unshare -m sh -c %s "%s" "$@"\n' "'umount -l /proc && exec \"\$0\" \"\$@\"'" \
		"$UNIONMOUNT" >"$T/um-noproc"
	chmod 0755 "$T/um-noproc"
	mkdir -p "$T/upper3" "$T/work3"
	REAL=$UNIONMOUNT
	UNIONMOUNT=$T/um-noproc
	expect_refused "no /proc" '/proc is not mounted' "$M" -o "upperdir=$T/upper3,workdir=$T/work3,$LOW"
	UNIONMOUNT=$REAL
	expect_eq "no /proc: upper untouched" "" "$(ls -A "$T/upper3")"
else
	log "no unshare: the mount without /proc not checked"
fi

# --- good input
if um_mount --source mysource "$M" "$LOW"; then
	line=$(mount_line "$M")
	expect_eq "/proc/mounts shows SOURCE, MOUNTPOINT, fuse.unionmount" \
		"mysource $(mount_escape "$M") fuse.unionmount" "$(cut -d' ' -f1-3 <<<"$line")"
	expect_match "allow_other by default as root" '[ ,]allow_other[ ,]' "$line"
	expect_match "default_permissions by default as root" '[ ,]default_permissions[ ,]' "$line"
	expect_eq "lowerdir order: L1 over L2" "l1:one" "$(t cat "$M/one")"
	um_umount "$M"
fi
if um_mount "$M" "$LOW"; then
	expect_eq "without SOURCE the fsname is unionmount" "unionmount $(mount_escape "$M") fuse.unionmount" \
		"$(mount_line "$M" | cut -d' ' -f1-3)"
	um_umount "$M"
fi
# The mountpoint is one of the lowerdirs: its old contents show through.
if um_mount "$L2" "$LOW"; then
	expect_eq "mountpoint = bottom lowerdir: its file is visible" "l2:two" "$(t cat "$L2/two")"
	expect_eq "mountpoint = bottom lowerdir: L1 still on top" "l1:one" "$(t cat "$L2/one")"
	um_umount "$L2"
fi
if um_mount "$L1" "upperdir=$U,workdir=$W,$LOW"; then
	expect_eq "mountpoint = top lowerdir (with upper): lower file visible" "l1:one" "$(t cat "$L1/one")"
	expect_eq "mountpoint = top lowerdir (with upper): L2 visible" "l2:two" "$(t cat "$L1/two")"
	um_umount "$L1"
fi
# '\:' in a lowerdir path.
mkdir -p "$T/co:lon"
mkf "$T/co:lon" colonfile
if um_mount "$M" "$(lowerdir_opt "$T/co:lon" "$L2")"; then
	expect_eq "lowerdir with an escaped colon" "co:lon:colonfile" "$(t cat "$M/colonfile")"
	um_umount "$M"
fi
# The order of DESIGN.md's synopsis: lowerdir first, then more options.
if um_mount "$M" "$LOW,upperdir=$U,workdir=$W"; then
	expect_eq "-o lowerdir=L1:L2,upperdir=U,workdir=W (lowerdir first)" "l1:one" "$(t cat "$M/one")"
	um_umount "$M"
fi
if um_mount "$M" "$LOW,ro"; then
	expect_eq "-o lowerdir=L1:L2,ro (lowerdir first)" "l2:two" "$(t cat "$M/two")"
	um_umount "$M"
fi
# Branch paths that are symlinks to directories, and relative paths
# (resolved against the daemon's starting directory).
ln -s l1 "$T/l1.link"
ln -s upper "$T/upper.link"
if um_mount "$M" "upperdir=$T/upper.link,workdir=$W,$(lowerdir_opt "$T/l1.link" "$L2")"; then
	expect_eq "lowerdir and upperdir given as symlinks to dirs" "l1:one l2:two" \
		"$(t cat "$M/one" "$M/two" | xargs)"
	um_umount "$M"
fi
cd "$T" || die "cd $T"
if um_mount "$M" "lowerdir=l1:./l2/"; then
	expect_eq "relative lowerdir paths" "l1:one l2:two" "$(t cat "$M/one" "$M/two" | xargs)"
	um_umount "$M"
fi
cd / || die "cd /"
# -o repeated, ro, cache_timeout.
if um_mount "$M" "$LOW" -o cache_timeout=5 -o ro; then
	expect_eq "repeated -o, cache_timeout=5, ro: reads" "l2:two" "$(t cat "$M/two")"
	um_umount "$M"
fi
if um_mount "$M" "ro,upperdir=$U,workdir=$W,$LOW"; then
	expect_probe "-o ro with an upperdir: creating fails with EROFS" EROFS creat "$M/newfile"
	expect_probe "-o ro with an upperdir: mkdir fails with EROFS" EROFS mkdir "$M/newdir"
	um_umount "$M"
fi
# overlayfs's lowerdir+= (one literal layer each, top-most first), and
# fstab-only and overlayfs options handed straight to the daemon.
if um_mount "$M" "lowerdir+=$L1,lowerdir+=$L2,defaults,nofail,x-systemd.automount,redirect_dir=on,index=on,xino=auto"; then
	expect_eq "lowerdir+=: the first one given is on top" "l1:one l2:two" "$(t cat "$M/one") $(t cat "$M/two")"
	um_umount "$M"
fi

# -h and -V.
out=$(t "$UNIONMOUNT" -h 2>&1)
rc=$?
expect_eq "-h exits 0" 0 "$rc"
for o in lowerdir upperdir workdir ro cache_timeout; do
	expect_match "-h lists $o" "$o" "$out"
done
out=$(t "$UNIONMOUNT" -V 2>&1)
rc=$?
expect_eq "-V exits 0" 0 "$rc"
expect_match "-V prints the version" "${UM_VERSION:-[0-9]+\.[0-9]+}" "$out"

# Without -f: detaches once mounted; exits by itself after fusermount3 -u.
# (output to a file, not $(...): a detached daemon still holding the pipe
# would keep the command substitution waiting)
t "$UNIONMOUNT" "$M" -o "$LOW" >"$T/detach.out" 2>&1
rc=$?
expect_eq "without -f: the command returns 0 once mounted ($(head -c 200 "$T/detach.out"))" 0 "$rc"
if is_union_mounted "$M"; then
	pass "without -f: mounted"
	_mounts+=("f:$M")
	dpid=
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" == $$ ] && continue
		if _is_our_daemon "$p" "$M" && [[ $(readlink "/proc/$p/exe" 2>/dev/null) == */unionmount* ]]; then
			dpid=$p
		fi
	done
	if [ -n "$dpid" ]; then
		_pid_of[$M]=$dpid
	else
		fail "without -f: no process of $UNIONMOUNT with $M on its command line"
	fi
	expect_eq "without -f: read" "l1:one" "$(t cat "$M/one")"
	timeout 10 fusermount3 -u "$M"
	_forget_mount "$M"
	gone=no
	for i in $(seq 100); do
		if [ -n "$dpid" ] && ! kill -0 "$dpid" 2>/dev/null; then gone=yes; break; fi
		sleep 0.1
	done
	expect_eq "without -f: the detached daemon (pid ${dpid:-not found}) exits after unmount" yes "$gone"
	[ "$gone" == yes ] && unset '_pid_of[$M]'
else
	fail "without -f: not mounted"
fi

snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "L1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "L2 unchanged" "$T/l2.before" "$T/l2.after"

finish
