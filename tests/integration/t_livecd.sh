#!/usr/bin/env bash
# t_livecd: the live-CD use case, end to end (docs/live-cd.md).
#
# Part 1, a union over a squashfs image with its changes in a tmpfs: a
# small system tree (dirs, files, a symlink, a hard link pair, a user.*
# xattr, an executable, a nested dir, the userland the boot parts need) is
# packed with mksquashfs and loop-mounted read-only; a tmpfs holds upper
# and workdir. A workload runs through the union (create, append, overwrite
# in place, truncate, rm, rm -rf, file and directory rename, chmod, setfattr,
# a write through one name of a hard link pair, tar -x, ls). Then, unmounted:
#   (a) the image file is byte-identical (sha256);
#   (b) the squashfs tree is unchanged (strict dump: inode numbers, times,
#       xattrs, contents);
#   (c) the tmpfs holds exactly the expected entries: every object of upper
#       with its type, mode, device numbers (whiteouts 0:0, fallthrus
#       0:0x80001), content and every xattr (redirect, origin as the lower
#       path it names, impure, complete, format and the user.* stamp a
#       trusted upper carries), the index entry of the
#       hard link pair, and WORKDIR/unionmount/work empty;
#   (d) mounted again, the union shows the tree it showed before (dumps
#       before the unmount and after the remount are equal), and that tree
#       equals kernel overlayfs after the same workload over the same
#       squashfs with another tmpfs (the oracle). Listing the whole tree
#       only adds fallthrus to upper, and two more remounts show the same.
# Part 2, booting: a minimal initramfs in a tmpfs (dash, mount, mkdir,
# chroot, switch_root, unionmount and their libraries, the squashfs image)
# whose /init is the script of docs/live-cd.md, extracted from the doc and
# run as is by chroot in a private mount namespace: it mounts proc, sys,
# dev, /run, the squashfs and the tmpfs, starts the daemon (through a link
# named @unionmount), and ends in switch_root, or (SWITCH=chroot) moves
# /dev, /proc, /sys and /run into the union and chroots into it, where the image's /sbin/init (a shell
# script) reads files, writes one, deletes one and lists /. Checked: what
# it printed, what upper holds, that the daemon runs with argv[0]
# "@unionmount", that a lazy unmount of the new root ends the daemon and
# frees the loop device, that nothing is left mounted or running; after
# switch_root, /proc is gone from the daemon's root and it still copies up.
# Part 3, persistence: the same /init with RW_DEV, an ext4 file system on a
# loop device, booted twice: the second boot sees the first one's changes;
# e2fsck finds the file system clean after each boot. Then a new image with
# one more name at the top: hidden at the same lowerdir path (/ is
# complete), shown after one mount with the image at another path, then at
# the usual path too.
# Part 4, /etc/fstab: a squashfs line and a fuse.unionmount line mounted
# with mount -T FSTAB in a private mount namespace where /usr/local/sbin is
# a bind mount of a temp dir holding the daemon as "unionmount" (mount(8)
# looks for it in its helper path); umount ends the daemon.
#
# Parts 2-4 need the daemon (they are skipped in the kernel-overlay
# self-test); part 1's union-specific on-disk checks (fallthrus, origins,
# index, complete marks) are skipped there too.
#
# Everything this test mounts, attaches or starts is undone by the EXIT
# trap, even when it fails: processes left in the private namespaces are
# found by namespace and by the test's marker in their environment or
# command line and killed by PID, mounts are lazily unmounted in reverse
# order, every loop device backed by one of the test's images is detached.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon
command -v mksquashfs >/dev/null || skip "no mksquashfs (package squashfs-tools)"
grep -qw squashfs /proc/filesystems || modprobe squashfs 2>/dev/null
grep -qw squashfs /proc/filesystems || skip "no squashfs in the kernel"
for c in losetup unshare switch_root chroot mkfs.ext4 e2fsck tar setfattr getfattr ldd sha256sum; do
	command -v "$c" >/dev/null || skip "no $c"
done

OLD=1000000000 # every time stamp the test builds
DIFF_T0=$(date +%s)
MARK="UM_LIVECD_TEST=$T" # in the environment of everything the boot parts start

# ---------------------------------------------------------------- cleanup

_images=() # "INODE MAJ:MIN" of every file this test attaches to a loop device
_nsfiles=() # files holding the id of a private mount namespace we made

# ns_pids NSID: PIDs in that mount namespace that are ours: their
# environment carries $MARK or their command line names a path under $T.
ns_pids() {
	local p pid
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[ "$pid" == "$$" ] && continue
		[ "$(readlink "$p/ns/mnt" 2>/dev/null)" == "$1" ] || continue
		if tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qxF -- "$MARK" ||
			tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qF -- "$T/"; then
			echo "$pid"
		fi
	done
}

kill_ns() { # NSFILE: TERM, then KILL, what is left of ours in that namespace
	local id pids i
	id=$(cat "$1" 2>/dev/null) || return 0
	[ -n "$id" ] || return 0
	pids=$(ns_pids "$id")
	[ -z "$pids" ] && return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	for i in $(seq 30); do
		pids=$(ns_pids "$id")
		[ -z "$pids" ] && return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
}

# An image is known by inode and device, so that its loop devices are
# found even after switch_root deleted the initramfs copy.
image_id() { stat -c '%i %Hd:%Ld' "$1"; }
track_image() { _images+=("$(image_id "$1")"); }
loops_of() { # FILE or "INODE MAJ:MIN": loop devices backed by it
	local id=$1
	[ -e "$1" ] && id=$(image_id "$1")
	losetup -l -n -O NAME,BACK-INO,BACK-MAJ:MIN 2>/dev/null |
		awk -v i="${id% *}" -v d="${id#* }" '$2 == i && $3 == d { print $1 }'
}

_lc_rc() { return "$1"; }
_lc_cleanup() {
	local rc=$? i m path pid nsf img dev
	[ "$BASHPID" == "$_main_pid" ] || return 0
	cd / || true
	for nsf in "${_nsfiles[@]}"; do kill_ns "$nsf"; done
	# Unmount in reverse order; a union's daemon goes right after its
	# mount, so that nothing holds the squashfs and ext4 mounts below.
	for ((i = ${#_mounts[@]} - 1; i >= 0; i--)); do
		m=${_mounts[i]}
		path=${m#*:}
		if _is_mounted "$path"; then
			if [ "${m%%:*}" == f ]; then
				timeout 10 fusermount3 -uz "$path" 2>/dev/null ||
					timeout 10 umount -l "$path" 2>/dev/null
			else
				timeout 10 umount -l "$path" 2>/dev/null
			fi
		fi
		pid=${_pid_of[$path]:-}
		if [ -n "$pid" ] && _is_our_daemon "$pid" "$path"; then
			kill -TERM "$pid" 2>/dev/null
			for _ in $(seq 20); do
				_is_our_daemon "$pid" "$path" || break
				sleep 0.1
			done
			_is_our_daemon "$pid" "$path" && kill -KILL "$pid" 2>/dev/null
		fi
	done
	for img in "${_images[@]}"; do
		for i in $(seq 50); do
			[ -z "$(loops_of "$img")" ] && break
			for dev in $(loops_of "$img"); do timeout 10 losetup -d "$dev" 2>/dev/null; done
			sleep 0.1
		done
		[ -n "$(loops_of "$img")" ] && echo "# cleanup: $img is still attached to $(loops_of "$img" | tr '\n' ' ')"
	done
	_lc_rc "$rc"
	_cleanup
}
trap _lc_cleanup EXIT

# ---------------------------------------------------------------- helpers

# copy_prog ROOT PATH [SOURCE]: copy the program SOURCE (default: PATH on
# this system) to ROOT/PATH and every library ldd lists to the same path
# under ROOT.
copy_prog() {
	local root=$1 dst=$2 from=${3:-$2} lib
	mkdir -p "$root$(dirname "$dst")"
	cp -L "$from" "$root$dst" || die "cannot copy $from"
	for lib in $(ldd "$from" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib" || die "cannot copy $lib"
	done
}

# mount_squashfs IMAGE DIR: mount -o loop,ro; the image is remembered so
# that cleanup detaches its loop devices.
mount_squashfs() {
	mkdir -p "$2"
	track_image "$1"
	t mount -o loop,ro -t squashfs "$1" "$2" || die "mount -o loop,ro -t squashfs $1 $2 failed"
	_mounts+=("k:$2")
}

# umount_loop DIR IMAGE LABEL: unmount a loop mount, then its loop device
# must be gone (mount -o loop sets autoclear).
umount_loop() {
	local i
	t umount "$1" || fail "$3: umount $1 failed"
	_forget_mount "$1"
	for i in $(seq 50); do
		[ -z "$(loops_of "$2")" ] && break
		sleep 0.1
	done
	expect_eq "$3: no loop device left on $(basename "$2")" "" "$(loops_of "$2" | tr '\n' ' ')"
}

# inventory DIR: one line per object under DIR (DIR itself is "."), sorted:
#   PATH TYPE MODE [c MAJ:MIN (hex)] [l TARGET] [n=LINKS 'CONTENT'] [x NAME=VALUE]...
# CONTENT has its newlines as |, or is a sha256 prefix above 200 bytes;
# trusted.unionmount.origin is shown as the lower path it names (from
# $ORIGINS) and a complete mark as COMPLETE (checked apart).
inventory() {
	local root=$1 p f ty line x name val
	(cd "$root" && find . | LC_ALL=C sort) | while IFS= read -r p; do
		f=$root/${p#./}
		[ "$p" == . ] && f=$root
		# index entries are named by the union inode number of the object
		if [[ $p =~ ^(\./unionmount/index/)([0-9a-f]{16})$ ]]; then
			local k=${BASH_REMATCH[2]}
			p=${BASH_REMATCH[1]}${ORIGINS[$k]:-${UPPER_INOS[$k]:-"?$k"}}
		fi
		ty=$(stat -c %F "$f")
		case $ty in
		directory) line="$p d $(stat -c %a "$f")" ;;
		"regular file" | "regular empty file")
			if [ "$(stat -c %s "$f")" -gt 0 ] && [ "$(tr -d '\0' <"$f" | wc -c)" == 0 ]; then
				# a metacopy file's hole (or a file of zeros)
				line="$p f $(stat -c %a "$f") n=$(stat -c %h "$f") zeros=$(stat -c %s "$f")"
			elif [ "$(stat -c %s "$f")" -le 200 ]; then
				line="$p f $(stat -c %a "$f") n=$(stat -c %h "$f") '$(tr '\n' '|' <"$f")'"
			else
				line="$p f $(stat -c %a "$f") n=$(stat -c %h "$f") sha=$(sha256sum <"$f" | cut -c1-16)"
			fi
			;;
		"symbolic link") line="$p l $(readlink "$f")" ;;
		"character special file") line="$p c $(stat -c '%a %t:%T n=%h' "$f")" ;;
		*) line="$p ? $ty" ;;
		esac
		while IFS= read -r x; do
			[ -n "$x" ] || continue
			name=${x%%=*}
			val=${x#*=}
			val=${val#\"}
			val=${val%\"}
			case $name in
			trusted.unionmount.origin) val=${ORIGINS[$val]:-"?$val"} ;;
			trusted.unionmount.complete)
				[[ $val =~ ^[0-9a-f]{16}$ ]] && val=COMPLETE
				;;
			esac
			line+=" x $name=$val"
		done < <(getfattr -h --absolute-names -d -m - -e text "$f" 2>/dev/null | grep -av '^#' | LC_ALL=C sort)
		printf '%s\n' "$line"
	done
}

# complete_marks DIR: the distinct complete marks under DIR.
complete_marks() {
	find "$1" -type d -exec getfattr -h --absolute-names --only-values \
		-n trusted.unionmount.complete {} \; 2>/dev/null | LC_ALL=C sort -u
}

# norm_dump ROOT OUT: a treedump of ROOT, time stamps of this run as
# "recent", ctimes and block counts dropped (as the differential tests do).
norm_dump() {
	local rc
	tree_dump "$1" "$2.raw"
	rc=$?
	_dnorm <"$2.raw" >"$2"
	if [ $rc -ne 0 ]; then
		fail "dump of $1 has anomalies (status $rc):"
		grep '^!' "$2.raw" | head -10 | sed 's/^/     /'
	fi
}

# ---------------------------------------------------------------- the image

SRC=$T/src
build_tree() {
	local r=$1
	mkdir -p "$r"/{etc/conf.d,home/user,usr/share/doc/pkg,usr/share/doc/old/sub/deeper} \
		"$r"/{opt/app/bin,opt/app/lib,var/log,var/lib,data,tmp,proc,sys,dev,run,root,sbin}
	# the userland of the boot parts
	copy_prog "$r" /bin/sh "$(readlink -f /bin/sh)"
	local c
	for c in cat rm ls; do copy_prog "$r" "/bin/$c" "$(command -v "$c")"; done
	cat >"$r/sbin/init" <<'EOF'
#!/bin/sh
# Stand-in for the live system's init (t_livecd.sh): report, change, list.
n=0
[ -r /var/lib/boots ] && n=$(cat /var/lib/boots)
n=$((n + 1))
echo "$n" >/var/lib/boots
echo "boot $n"
echo "hostname $(cat /etc/hostname)"
[ -c /dev/null ] && echo "dev ok"
[ -r /proc/self/stat ] && echo "proc ok"
[ -d /sys/kernel ] && echo "sys ok"
[ -d /run/live/rw/upper ] && echo "run ok"
if [ "$n" = 1 ]; then
	rm /etc/motd
	echo "written at boot 1" >/root/note
fi
[ -e /etc/motd ] && echo "motd present" || echo "motd absent"
[ -r /root/note ] && echo "note $(cat /root/note)"
echo "listing" $(ls /)
EOF
	chmod 0755 "$r/sbin/init"
	printf 'livecd\n' >"$r/etc/hostname"
	printf 'Welcome to the live CD.\n' >"$r/etc/motd"
	printf 'a=1\n' >"$r/etc/conf.d/a.conf"
	printf 'b=2\n' >"$r/etc/conf.d/b.conf"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
	printf 'my notes\n' >"$r/home/user/notes.txt"
	printf 'export PS1=live\n' >"$r/home/user/.profile"
	printf 'pkg readme\n' >"$r/usr/share/doc/pkg/README"
	printf 'GPL\n' >"$r/usr/share/doc/pkg/COPYING"
	printf 'x\n' >"$r/usr/share/doc/old/x"
	printf 'y\n' >"$r/usr/share/doc/old/sub/y"
	printf 'z\n' >"$r/usr/share/doc/old/sub/deeper/z"
	printf '#!/bin/sh\necho app\n' >"$r/opt/app/bin/run"
	chmod 0755 "$r/opt/app/bin/run"
	printf 'app data\n' >"$r/opt/app/lib/data.txt"
	printf 'booted\n' >"$r/var/log/boot.log"
	printf 'state: 0000\n' >"$r/var/lib/state"
	ln -s ../etc/hostname "$r/data/link"
	printf 'linked\n' >"$r/data/hl1"
	ln "$r/data/hl1" "$r/data/hl2"
	printf 'tagged\n' >"$r/data/tagged"
	setfattr -n user.comment -v original "$r/data/tagged" || die "cannot set user.* xattrs in $r"
	printf 'move me\n' >"$r/data/movable.txt"
	chmod 1777 "$r/tmp"
	chmod 0700 "$r/root"
	find "$r" -exec touch -h -d "@$OLD" {} + || die "cannot pin the times in $r"
}

build_tree "$SRC"
IMG=$T/livecd.squashfs
t mksquashfs "$SRC" "$IMG" -noappend -quiet -no-progress >"$T/mksquashfs.log" 2>&1 ||
	{ cat "$T/mksquashfs.log"; die "mksquashfs failed"; }
sha_before=$(sha256sum <"$IMG")

# A small tarball to extract into the union: into a lower dir (pkg), a new
# tree (extra) with a symlink, a hard link and an executable.
TS=$T/tarsrc
mkdir -p "$TS/pkg" "$TS/extra/sub"
printf 'news\n' >"$TS/pkg/NEWS"
printf 'a\n' >"$TS/extra/a.txt"
printf 'b\n' >"$TS/extra/sub/b.txt"
printf '#!/bin/sh\n' >"$TS/extra/run.sh"
chmod 0755 "$TS/extra/run.sh"
ln -s a.txt "$TS/extra/link"
ln "$TS/extra/a.txt" "$TS/extra/hard"
find "$TS" -exec touch -h -d "@$OLD" {} +
tar -C "$TS" -cf "$T/extra.tar" pkg extra || die "tar -c failed"

# ---------------------------------------------------------------- part 1

log "part 1: union over squashfs + tmpfs"
SQ=$T/sq
mount_squashfs "$IMG" "$SQ"
snapshot "$SQ" "$T/sq.before"
# ORIGINS: union inode number of every lower object (layer 1: 1 << 56 |
# its squashfs inode number, see INODE NUMBERS in the man page) -> its
# path(s), "+"-joined for hard links.
declare -A ORIGINS=()
map_inodes() { # ARRAY-NAME ROOT LAYER
	local -n map=$1
	local ino p k
	while read -r ino p; do
		p=${p#.}
		k=$(printf '%016x' $((($3 << 56) | ino)))
		map[$k]=${map[$k]:+${map[$k]}+}${p:-/}
	done < <(cd "$2" && find . -printf '%i %p\n' | LC_ALL=C sort -k2)
}
map_inodes ORIGINS "$SQ" 1

RW=$T/rw M=$T/root
kmount tmpfs "$RW" mode=0755
mkdir -p "$RW/upper" "$RW/work" "$M"
OPTS="lowerdir=$SQ,upperdir=$RW/upper,workdir=$RW/work"

# The workload, run the same way on the union and on kernel overlayfs.
# shellcheck disable=SC2016
WORKLOAD='set -e
M=$1 TAR=$2
echo "new file" >"$M/etc/newfile"
mkdir -p "$M/srv/www"
echo hello >"$M/srv/www/index.html"
echo "appended line" >>"$M/etc/motd"
printf XY | dd of="$M/var/lib/state" bs=1 seek=7 conv=notrunc status=none
echo "edited" >"$M/etc/hostname"
rm "$M/var/log/boot.log"
rm -rf "$M/usr/share/doc/old"
mv "$M/data/movable.txt" "$M/data/moved.txt"
mv "$M/opt/app" "$M/opt/app2"
chmod 0600 "$M/home/user/notes.txt"
setfattr -n user.comment -v changed "$M/data/tagged"
echo more >>"$M/data/hl1"
tar -xf "$TAR" -C "$M/usr/share/doc"
(cd "$M" && ls -A1F . etc home/user)
cat "$M/data/hl2" "$M/opt/app2/lib/data.txt"
"$M/opt/app2/bin/run"
'

run_workload() { # MNT OUT LABEL
	if tl 60 bash -c "$WORKLOAD" workload "$1" "$T/extra.tar" >"$2" 2>&1; then
		pass "$3: the workload ran"
	else
		fail "$3: the workload failed:"
		sed 's/^/     | /' "$2"
	fi
}

um_mount --source livecd "$M" "$OPTS" || finish
run_workload "$M" "$T/work.union" "union A"
um_umount "$M"

expect_eq "(a) the squashfs image is byte-identical" "$sha_before" "$(sha256sum <"$IMG")"
snapshot "$SQ" "$T/sq.after"
expect_same_file "(b) the squashfs tree is unchanged" "$T/sq.before" "$T/sq.after"
declare -A UPPER_INOS=()
map_inodes UPPER_INOS "$RW/upper" 0
inventory "$RW/upper" >"$T/upper.inv"
inventory "$RW/work" >"$T/work.inv"

if ! selftest; then
	# What the workload leaves, entry by entry (ON-DISK FORMAT, man page):
	# - whiteouts (c 0:0) for the deleted names: var/log/boot.log (rm),
	#   usr/share/doc/old (rm -rf: its subtree leaves nothing), both links
	#   to the shared whiteout WORKDIR/unionmount/whiteout/w (n = 1 + 2),
	#   and the old names of the two renames, data/movable.txt and opt/app
	#   (RENAME_WHITEOUT: the upper filesystem makes each its own inode);
	# - copies of changed lower objects with their origin (shown as the
	#   lower path it names), their parents copied too (origin; impure when
	#   they hold entries with an origin); the renamed directory with an
	#   absolute redirect and no copy of its content; data/tagged
	#   (setfattr) and home/user/notes.txt (chmod) changed metadata alone:
	#   metacopy files, their bytes a hole (zeros=SIZE), the upper format 3;
	# - fallthrus (c 0:80001, layer 1, all links of one marker: n = 1 + 13)
	#   for every lower name shown by a listing that upper does not have:
	#   "ls /", "ls /etc", "ls /home/user"; those three directories are
	#   complete (tar opens usr/share/doc but lists nothing: opening a
	#   directory writes nothing, listing it does);
	# - the hard link pair: nothing under data/hl1 or hl2, the copy lives in
	#   the index (lowerlinks=2), named by its union inode number; the
	#   extracted hard link pair is indexed as well (upper objects with
	#   several names); its directory is not marked impure (made in upper,
	#   the pair has no origin for a lookup to read).
	cat >"$T/upper.want" <<'EOF'
. d 755 x trusted.unionmount.complete=COMPLETE x trusted.unionmount.format=3 x trusted.unionmount.impure=y x user.unionmount.format=trusted
./bin c 0 0:80001 n=14
./data d 755 x trusted.unionmount.impure=y x trusted.unionmount.origin=/data
./data/movable.txt c 0 0:0 n=1
./data/moved.txt f 644 n=1 'move me|' x trusted.unionmount.origin=/data/movable.txt
./data/tagged f 644 n=1 zeros=7 x trusted.unionmount.metacopy=y x trusted.unionmount.origin=/data/tagged x user.comment=changed
./dev c 0 0:80001 n=14
./etc d 755 x trusted.unionmount.complete=COMPLETE x trusted.unionmount.impure=y x trusted.unionmount.origin=/etc
./etc/conf.d c 0 0:80001 n=14
./etc/hostname f 644 n=1 'edited|' x trusted.unionmount.origin=/etc/hostname
./etc/motd f 644 n=1 'Welcome to the live CD.|appended line|' x trusted.unionmount.origin=/etc/motd
./etc/newfile f 644 n=1 'new file|'
./etc/passwd c 0 0:80001 n=14
./home d 755 x trusted.unionmount.impure=y x trusted.unionmount.origin=/home
./home/user d 755 x trusted.unionmount.complete=COMPLETE x trusted.unionmount.impure=y x trusted.unionmount.origin=/home/user
./home/user/.profile c 0 0:80001 n=14
./home/user/notes.txt f 600 n=1 zeros=9 x trusted.unionmount.metacopy=y x trusted.unionmount.origin=/home/user/notes.txt
./lib c 0 0:80001 n=14
./lib64 c 0 0:80001 n=14
./opt d 755 x trusted.unionmount.impure=y x trusted.unionmount.origin=/opt
./opt/app c 0 0:0 n=1
./opt/app2 d 755 x trusted.overlay.redirect=/opt/app x trusted.unionmount.origin=/opt/app
./proc c 0 0:80001 n=14
./root c 0 0:80001 n=14
./run c 0 0:80001 n=14
./sbin c 0 0:80001 n=14
./srv d 755
./srv/www d 755
./srv/www/index.html f 644 n=1 'hello|'
./sys c 0 0:80001 n=14
./tmp c 0 0:80001 n=14
./usr d 755 x trusted.unionmount.impure=y x trusted.unionmount.origin=/usr
./usr/share d 755 x trusted.unionmount.impure=y x trusted.unionmount.origin=/usr/share
./usr/share/doc d 755 x trusted.unionmount.impure=y x trusted.unionmount.origin=/usr/share/doc
./usr/share/doc/extra d 755
./usr/share/doc/extra/a.txt f 644 n=3 'a|'
./usr/share/doc/extra/hard f 644 n=3 'a|'
./usr/share/doc/extra/link l a.txt
./usr/share/doc/extra/run.sh f 755 n=1 '#!/bin/sh|'
./usr/share/doc/extra/sub d 755
./usr/share/doc/extra/sub/b.txt f 644 n=1 'b|'
./usr/share/doc/old c 0 0:0 n=3
./usr/share/doc/pkg d 755 x trusted.unionmount.origin=/usr/share/doc/pkg
./usr/share/doc/pkg/NEWS f 644 n=1 'news|'
./var d 755 x trusted.unionmount.impure=y x trusted.unionmount.origin=/var
./var/lib d 755 x trusted.unionmount.impure=y x trusted.unionmount.origin=/var/lib
./var/lib/state f 644 n=1 'state: XY00|' x trusted.unionmount.origin=/var/lib/state
./var/log d 755 x trusted.unionmount.origin=/var/log
./var/log/boot.log c 0 0:0 n=3
EOF
	cat >"$T/work.want" <<'EOF'
. d 755
./unionmount d 700
./unionmount/fallthru d 700
./unionmount/fallthru/1.1 c 0 0:80001 n=14
./unionmount/index d 700
./unionmount/index//usr/share/doc/extra/a.txt+/usr/share/doc/extra/hard f 644 n=3 'a|'
./unionmount/index//data/hl1+/data/hl2 f 644 n=1 'linked|more|' x trusted.unionmount.lowerlinks=2 x trusted.unionmount.origin=/data/hl1+/data/hl2
./unionmount/whiteout d 700
./unionmount/whiteout/w c 0 0:0 n=3
./unionmount/work d 700
EOF
	expect_same_file "(c) upper holds exactly the workload's changes" "$T/upper.want" "$T/upper.inv"
	expect_same_file "(c) workdir: the fallthru marker, two index entries, the shared whiteout, work empty" "$T/work.want" "$T/work.inv"
	expect_eq "(c) one complete mark, for this lowerdir list" 1 "$(complete_marks "$RW/upper" | wc -l)"
fi
# The whiteouts must be those kernel overlayfs writes (checked below).
whiteouts() { (cd "$1" && find . -type c -exec stat -c '%t:%T %n' {} + | awk '$1 == "0:0" { print $2 }' | LC_ALL=C sort); }
whiteouts "$RW/upper" >"$T/wh.union"

# Union B: the same workload on another tmpfs, dumped before its unmount
# and after a remount.
RWB=$T/rwb MB=$T/rootb
kmount tmpfs "$RWB" mode=0755
mkdir -p "$RWB/upper" "$RWB/work" "$MB"
OPTSB="lowerdir=$SQ,upperdir=$RWB/upper,workdir=$RWB/work"
um_mount --source livecd "$MB" "$OPTSB" || finish
run_workload "$MB" "$T/work.unionb" "union B"
expect_same_file "union B: the workload printed what it printed on union A" "$T/work.union" "$T/work.unionb"
norm_dump "$MB" "$T/dump.b.before"
um_umount "$MB"
um_mount --source livecd "$MB" "$OPTSB" || finish
norm_dump "$MB" "$T/dump.b.after"
um_umount "$MB"
expect_same_file "(d) union B after a remount shows the tree it showed before the unmount" \
	"$T/dump.b.before" "$T/dump.b.after"

# The oracle: kernel overlayfs, the same workload over the same squashfs.
KRW=$T/krw KM=$T/kroot
kmount tmpfs "$KRW" mode=0755
mkdir -p "$KRW/upper" "$KRW/work"
ovl_rw_mount "$KM" "$KRW/upper" "$KRW/work" "$SQ"
run_workload "$KM" "$T/work.kernel" "kernel overlayfs"
expect_same_file "the workload printed on kernel overlayfs what it printed on the union" \
	"$T/work.kernel" "$T/work.union"
norm_dump "$KM" "$T/dump.kernel"
ovl_umount "$KM"
expect_same_file "(d) the union's tree equals kernel overlayfs's after the same workload" \
	"$T/dump.kernel" "$T/dump.b.before"
whiteouts "$KRW/upper" >"$T/wh.kernel"
expect_same_file "the union wrote the whiteouts kernel overlayfs wrote" "$T/wh.kernel" "$T/wh.union"

# Union A again: the same tree; listing all of it adds only fallthrus and
# complete marks to upper; one more remount shows the same again.
um_mount --source livecd "$M" "$OPTS" || finish
norm_dump "$M" "$T/dump.a.1"
um_umount "$M"
expect_same_file "(d) union A remounted over its tmpfs shows union B's tree" "$T/dump.b.before" "$T/dump.a.1"
um_mount --source livecd "$M" "$OPTS" || finish
norm_dump "$M" "$T/dump.a.2"
um_umount "$M"
expect_same_file "(d) union A after a second remount" "$T/dump.a.1" "$T/dump.a.2"
if ! selftest; then
	strip_listing() { sed -E '/ c 0 0:80001 n=[0-9]+$/d; s/ x trusted\.unionmount\.complete=COMPLETE//'; }
	inventory "$RW/upper" | strip_listing >"$T/upper.inv2"
	strip_listing <"$T/upper.inv" >"$T/upper.inv1"
	expect_same_file "listing the whole union added nothing to upper but fallthrus and complete marks" \
		"$T/upper.inv1" "$T/upper.inv2"
	expect_eq "workdir/unionmount/work is empty after the remounts" "" "$(ls -A "$RW/work/unionmount/work" 2>&1)"
	n_ft=$(find "$RW/upper" -type c -exec stat -c %t:%T {} + | grep -c '^0:80001$')
	expect_eq "the fallthru marker has one link per fallthru, plus its own" "$((n_ft + 1))" \
		"$(stat -c %h "$RW/work/unionmount/fallthru/1.1")"
	expect_eq "still one complete mark" 1 "$(complete_marks "$RW/upper" | wc -l)"
fi
snapshot "$SQ" "$T/sq.after2"
expect_same_file "(b) the squashfs tree is unchanged after all of part 1" "$T/sq.before" "$T/sq.after2"
expect_eq "(a) the squashfs image is byte-identical after all of part 1" "$sha_before" "$(sha256sum <"$IMG")"


if selftest; then
	log "parts 2-4 (boot, persistence, fstab) need the daemon: not run in the self-test"
	finish
fi

# A read-only union of the squashfs, where passthrough (the default,
# auto) lets the kernel read lower files itself. squashfs has no direct
# I/O: with passthrough an O_DIRECT open fails as on the squashfs itself
# (and overlayfs), whether or not the file is open already, never with
# EIO; without, the daemon reads it. Plain reads work either way.
RO=$T/ro
mkdir -p "$RO"
um_mount --source livecd "$RO" "lowerdir=$SQ" || finish
want=$(sha256sum <"$SQ/etc/motd")
if kernel_has_pt; then odirect=$(probe_out open "$SQ/etc/motd" ro); else odirect=OK; fi
expect_probe "read-only union: O_DIRECT open of a squashfs file: $odirect" "$odirect" open "$RO/etc/motd" ro
expect_eq "read-only union: a plain read" "$want" "$(t sha256sum <"$RO/etc/motd")"
watch_start "$RO/etc/motd"
expect_eq "read-only union: a kept plain descriptor" OPEN "$WREPLY"
expect_probe "read-only union: O_DIRECT open beside it: $odirect" "$odirect" open "$RO/etc/motd" ro
watch_stop
expect_eq "read-only union: a plain read after" "$want" "$(t sha256sum <"$RO/etc/motd")"
um_umount "$RO"

# ---------------------------------------------------------------- part 2

DOC=$(realpath -m "$LIB_DIR/../../docs/live-cd.md")
[ -r "$DOC" ] || die "cannot read $DOC (the /init and fstab lines are taken from it)"
doc_block() { # MARK: the fenced block after "<!-- t_livecd.sh: MARK -->" in the doc
	awk -v m="<!-- t_livecd.sh: $1 -->" '
		$0 == m { f = 1; next }
		f == 1 && /^```/ { f = 2; next }
		f == 2 && /^```/ { exit }
		f == 2 { print }' "$DOC"
}
doc_block /init >"$T/init"
grep -q '^exec chroot /root /sbin/init$' "$T/init" || die "no /init block found in $DOC"

# make_initramfs DIR IMAGE: the initramfs of docs/live-cd.md in DIR (a
# tmpfs of its own, as switch_root deletes what it finds there).
make_initramfs() {
	local ir=$1
	copy_prog "$ir" /bin/sh "$(readlink -f /bin/sh)"
	copy_prog "$ir" /bin/mount "$(command -v mount)"
	copy_prog "$ir" /bin/mkdir "$(command -v mkdir)"
	copy_prog "$ir" /sbin/chroot "$(command -v chroot)"
	copy_prog "$ir" /sbin/switch_root "$(command -v switch_root)"
	copy_prog "$ir" /sbin/unionmount "$UNIONMOUNT"
	ln -s unionmount "$ir/sbin/@unionmount"
	mkdir -p "$ir"/{proc,sys,dev,run,root,medium/live}
	cp "$2" "$ir/medium/live/filesystem.squashfs"
	install -m 0755 "$T/init" "$ir/init"
}

# The scripts below run in bash -c without lib.sh: they get its mounts_awk
# (mount points in /proc/self/mounts are escaped, \040 for a blank).
LIB_MOUNTS="$(declare -p _MOUNTS_AWK; declare -f mounts_awk)
"

# The boot, in a private mount namespace: chroot into the initramfs, run
# /init (which ends in the image's /sbin/init), then look at the result
# from outside the new root and take it down with umount -l. Prints
# CHECK<TAB>label<TAB>expected<TAB>seen lines.
# shellcheck disable=SC2016
BOOT='
T=$1 IR=$2 NSF=$3 OUT=$4 ROOT=$5 NAME=$6
shift 6
readlink /proc/self/ns/mnt >"$NSF"
check() { printf "CHECK\t%s\t%s\t%s\n" "$1" "$2" "$3"; }
me=$(readlink /proc/self/ns/mnt)
timeout -k 5 60 env -i PATH=/sbin:/bin "$@" chroot "$IR" /bin/sh /init >"$OUT" 2>&1
check "$NAME: /init and the image'\''s /sbin/init exit with 0" 0 $?
top=$(mounts_awk '\''mp == ENVIRON["UM_M"] { t = $3 } END { print t }'\'' UM_M="$ROOT")
check "$NAME: the new root $ROOT is the union" fuse.unionmount "$top"
pid=
for p in /proc/[0-9]*; do
	[ "$(readlink "$p/ns/mnt" 2>/dev/null)" == "$me" ] || continue
	[ "$(tr "\0" "\n" <"$p/cmdline" 2>/dev/null | head -n 1)" == @unionmount ] && pid=${p#/proc/}
done
check "$NAME: the daemon runs with argv[0] @unionmount" yes "${pid:+yes}"
sub=$(mounts_awk '\''index(mp, ENVIRON["UM_P"]) == 1 { print substr(mp, length(ENVIRON["UM_P"]) + 1) }'\'' UM_P="$ROOT/" |
	LC_ALL=C sort | tr "\n" " ")
check "$NAME: mounts in the new root" "dev proc run run/live/rootfs run/live/rw sys " "$sub"
(cd "$ROOT/run/live/rw/upper" && find . -mindepth 1 | LC_ALL=C sort | while read -r p; do
	stat -c "%n %F %t:%T" "$p"
done) >"$T/$NAME.upper"
cp "$ROOT/run/live/rw/upper/var/lib/boots" "$T/$NAME.boots" 2>/dev/null
timeout -k 5 20 umount -l "$ROOT"
check "$NAME: umount -l of the new root" 0 $?
gone=no
for i in $(seq 100); do
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || { gone=yes; break; }
	sleep 0.1
done
check "$NAME: the daemon exits once the new root is unmounted" yes "$gone"
# What is left is the initramfs'\''s own /proc (kept for the daemon by the
# chroot variant): unmount it here, then nothing of the boot is mounted.
if mounts_awk '\''mp == ENVIRON["UM_M"] { f = 1 } END { exit !f }'\'' UM_M="$IR/proc"; then
	timeout -k 5 20 umount "$IR/proc"
	check "$NAME: umount the initramfs /proc" 0 $?
fi
left=$(mounts_awk '\''index(mp, ENVIRON["UM_P"]) == 1 { printf "%s ", mp }'\'' UM_P="$IR/")
check "$NAME: nothing left mounted in the initramfs" "" "$left"
'

# boot NAME ROOT-AS-SEEN-AFTER IMAGE VAR=VALUE...: build an initramfs in a
# new tmpfs, boot it, check what the namespace leaves behind.
boot() {
	local name=$1 root=$2 image=$3 ir=$T/$1.ir l label want seen id left
	shift 3
	kmount tmpfs "$ir" mode=0755
	make_initramfs "$ir" "$image"
	id=$(image_id "$ir/medium/live/filesystem.squashfs")
	_images+=("$id")
	_nsfiles+=("$T/$name.ns")
	tl 90 unshare -m --propagation private bash -c "$LIB_MOUNTS$BOOT" boot "$T" "$ir" "$T/$name.ns" \
		"$T/$name.out" "${root//IR/$ir}" "$name" "$MARK" "$@" >"$T/$name.checks" 2>&1
	while IFS= read -r l; do
		if [[ $l == CHECK$'\t'* ]]; then
			IFS=$'\t' read -r _ label want seen <<<"$l"
			expect_eq "$label" "$want" "$seen"
		else
			log "$name: $l"
		fi
	done <"$T/$name.checks"
	left=$(ns_pids "$(cat "$T/$name.ns" 2>/dev/null)")
	expect_eq "$name: no process of ours left in its namespace" "" "$left"
	kill_ns "$T/$name.ns"
	for l in $(seq 50); do
		[ -z "$(loops_of "$id")" ] && break
		sleep 0.1
	done
	expect_eq "$name: the squashfs loop device was released" "" "$(loops_of "$id" | tr '\n' ' ')"
}

expect_out() { # NAME EXPECTED-TEXT: what /init and /sbin/init printed
	printf '%s\n' "$2" >"$T/$1.out.want"
	expect_same_file "$1: the output of /init and /sbin/init" "$T/$1.out.want" "$T/$1.out"
}

LISTING="listing bin data dev etc home lib lib64 opt proc root run sbin sys tmp usr var"
BOOT1_OUT="boot 1
hostname livecd
dev ok
proc ok
sys ok
run ok
motd absent
note written at boot 1
$LISTING"
# /sbin/init wrote var/lib/boots and root/note, deleted etc/motd, listed /.
cat >"$T/boot.upper.want" <<'EOF'
./bin character special file 0:80001
./data character special file 0:80001
./dev character special file 0:80001
./etc directory 0:0
./etc/motd character special file 0:0
./home character special file 0:80001
./lib character special file 0:80001
./lib64 character special file 0:80001
./opt character special file 0:80001
./proc character special file 0:80001
./root directory 0:0
./root/note regular file 0:0
./run character special file 0:80001
./sbin character special file 0:80001
./sys character special file 0:80001
./tmp character special file 0:80001
./usr character special file 0:80001
./var directory 0:0
./var/lib directory 0:0
./var/lib/boots regular file 0:0
EOF

log "part 2: booting the initramfs of docs/live-cd.md (chroot, then switch_root)"
boot boot-chroot IR/root "$IMG" SWITCH=chroot
expect_out boot-chroot "$BOOT1_OUT"
expect_same_file "boot-chroot: upper on the tmpfs" "$T/boot.upper.want" "$T/boot-chroot.upper"
expect_eq "boot-chroot: the initramfs is still there" "yes" \
	"$([ -x "$T/boot-chroot.ir/sbin/unionmount" ] && echo yes)"
kumount "$T/boot-chroot.ir"

# switch_root (the default) moves /proc out of the daemon's root and
# deletes the initramfs: the daemon must still reach its fds' magic links
# (branch xattrs, chmod, utimes) through the /proc it pinned at start.
boot boot-switch IR "$IMG"
expect_out boot-switch "$BOOT1_OUT"
expect_same_file "boot-switch: upper on the tmpfs" "$T/boot.upper.want" "$T/boot-switch.upper"
expect_eq "boot-switch: switch_root emptied the initramfs" "" "$(ls -A "$T/boot-switch.ir" 2>&1)"
kumount "$T/boot-switch.ir"

# ---------------------------------------------------------------- part 3

log "part 3: changes kept on an ext4 file system (RW_DEV)"
EXT=$T/persist.ext4
truncate -s 64M "$EXT"
t mkfs.ext4 -q -F "$EXT" || die "mkfs.ext4 failed"
track_image "$EXT"
RWDEV=$(t losetup --find --show "$EXT") || die "losetup --find --show $EXT failed"
fsck_clean() { # LABEL
	local out
	out=$(t e2fsck -fn "$RWDEV" 2>&1)
	expect_eq "$1: e2fsck -fn finds the ext4 file system clean" 0 "$?"
	[ -n "$out" ] && [ "${VERBOSE:-0}" == 1 ] && printf '%s\n' "$out" | sed 's/^/     | /'
}

boot persist-1 IR/root "$IMG" SWITCH=chroot RW_DEV="$RWDEV"
expect_out persist-1 "boot 1
hostname livecd
dev ok
proc ok
sys ok
run ok
motd absent
note written at boot 1
$LISTING"
expect_same_file "persist-1: upper on ext4" "$T/boot.upper.want" "$T/persist-1.upper"
kumount "$T/persist-1.ir"
fsck_clean "after boot 1"

boot persist-2 IR/root "$IMG" SWITCH=chroot RW_DEV="$RWDEV"
expect_out persist-2 "boot 2
hostname livecd
dev ok
proc ok
sys ok
run ok
motd absent
note written at boot 1
$LISTING"
expect_same_file "persist-2: upper on ext4 as after boot 1" "$T/boot.upper.want" "$T/persist-2.upper"
expect_eq "persist-2: the boot counter in upper" 2 "$(cat "$T/persist-2.boots" 2>&1)"
kumount "$T/persist-2.ir"
fsck_clean "after boot 2"

# A new image with one more name at the top: "/" was listed (complete), so
# the name stays hidden at the same lowerdir path (man page, DIRECTORY
# LISTINGS); one mount with the image at another path shows it, and so
# does the usual path afterwards.
cp -a "$SRC" "$T/src2"
printf 'v2\n' >"$T/src2/new-in-v2"
IMG2=$T/livecd-v2.squashfs
t mksquashfs "$T/src2" "$IMG2" -noappend -quiet -no-progress >"$T/mksquashfs2.log" 2>&1 ||
	{ cat "$T/mksquashfs2.log"; die "mksquashfs (v2) failed"; }
boot persist-3 IR/root "$IMG2" SWITCH=chroot RW_DEV="$RWDEV"
expect_out persist-3 "boot 3
hostname livecd
dev ok
proc ok
sys ok
run ok
motd absent
note written at boot 1
$LISTING"
kumount "$T/persist-3.ir"
PM=$T/persist SQ2=$T/sq2 M2=$T/root2
mkdir -p "$PM" "$M2"
t mount -t ext4 "$RWDEV" "$PM" || die "mount $RWDEV $PM failed"
_mounts+=("k:$PM")
mount_squashfs "$IMG2" "$SQ2"
um_mount --source live "$M2" "lowerdir=$SQ2,upperdir=$PM/upper,workdir=$PM/work" || finish
expect_eq "new image at another path: the new name is listed" "yes" \
	"$(t ls "$M2" | grep -qx new-in-v2 && echo yes)"
expect_eq "new image at another path: and reads" "v2" "$(t cat "$M2/new-in-v2" 2>&1)"
um_umount "$M2"
umount_loop "$SQ2" "$IMG2" "new image at another path"
kumount "$PM"
fsck_clean "after the mount at another path"
boot persist-4 IR/root "$IMG2" SWITCH=chroot RW_DEV="$RWDEV"
expect_out persist-4 "boot 4
hostname livecd
dev ok
proc ok
sys ok
run ok
motd absent
note written at boot 1
listing bin data dev etc home lib lib64 new-in-v2 opt proc root run sbin sys tmp usr var"
kumount "$T/persist-4.ir"
fsck_clean "after boot 4"
t losetup -d "$RWDEV" || fail "losetup -d $RWDEV failed"
sleep 0.1
expect_eq "the ext4 image is detached" "" "$(loops_of "$EXT" | tr '\n' ' ')"

# ---------------------------------------------------------------- part 4

log "part 4: /etc/fstab lines of docs/live-cd.md, mount -T in a private namespace"
FS=$T/fs
# fstab escapes a blank in $FS as \040 (mount_escape); sed's replacement
# then needs its own escapes for the backslash, & and the | delimiter.
fs_sed=$(mount_escape "$FS" | sed 's/[\\&|]/\\&/g')
doc_block fstab | sed "s|/srv/|$fs_sed/srv/|g" >"$T/fstab"
[ "$(wc -l <"$T/fstab")" -eq 2 ] || die "no fstab block found in $DOC"
mkdir -p "$FS/srv/images" "$FS/srv/tools.ro" "$FS/srv/tools" "$FS/srv/tools.rw/upper" \
	"$FS/srv/tools.rw/work" "$FS/sbin"
cp "$IMG" "$FS/srv/images/tools.squashfs"
track_image "$FS/srv/images/tools.squashfs"
ln -s "$UNIONMOUNT" "$FS/sbin/unionmount"
_nsfiles+=("$T/fstab.ns")
# shellcheck disable=SC2016
FSTAB='
T=$1 FS=$2 NSF=$3 UM=$4
readlink /proc/self/ns/mnt >"$NSF"
me=$(readlink /proc/self/ns/mnt)
check() { printf "CHECK\t%s\t%s\t%s\n" "$1" "$2" "$3"; }
export UM_LIVECD_TEST=$T
timeout -k 5 20 mount --bind "$FS/sbin" /usr/local/sbin
check "bind the daemon over /usr/local/sbin (private namespace)" 0 $?
# Not found through the caller'\''s PATH: mount(8) has its own.
timeout -k 5 20 env PATH=/nonexistent /usr/bin/mount -T "$T/fstab" "$FS/srv/tools.ro"
check "mount -T FSTAB the squashfs line" 0 $?
timeout -k 5 20 env PATH=/nonexistent /usr/bin/mount -T "$T/fstab" "$FS/srv/tools"
check "mount -T FSTAB the fuse.unionmount line" 0 $?
m=$(mounts_awk '\''mp == ENVIRON["UM_M"] { print $1, $3 }'\'' UM_M="$FS/srv/tools")
check "the union is mounted" "unionmount fuse.unionmount" "$m"
pid=
for p in /proc/[0-9]*; do
	[ "$(readlink "$p/ns/mnt" 2>/dev/null)" == "$me" ] || continue
	tr "\0" "\n" <"$p/cmdline" 2>/dev/null | grep -qxF "$FS/srv/tools" && pid=${p#/proc/}
done
check "the daemon runs" yes "${pid:+yes}"
args=$(tr "\0" " " <"/proc/$pid/cmdline" 2>/dev/null)
check "the daemon was not given the x-systemd option" "" "$(echo "$args" | grep -o "x-systemd[^, ]*")"
check "read through the union" livecd "$(timeout 10 cat "$FS/srv/tools/etc/hostname" 2>&1)"
timeout 10 sh -c "echo from-fstab >\"\$1\"" sh "$FS/srv/tools/etc/fstab-note"
check "write through the union" 0 $?
timeout -k 5 20 umount "$FS/srv/tools"
check "umount the union" 0 $?
gone=no
for i in $(seq 100); do
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || { gone=yes; break; }
	sleep 0.1
done
check "umount ends the daemon" yes "$gone"
timeout -k 5 20 umount "$FS/srv/tools.ro"
check "umount the squashfs" 0 $?
timeout -k 5 20 umount /usr/local/sbin
check "umount /usr/local/sbin in the namespace" 0 $?
'
tl 60 unshare -m --propagation private bash -c "$LIB_MOUNTS$FSTAB" fstab "$T" "$FS" "$T/fstab.ns" "$UNIONMOUNT" \
	>"$T/fstab.checks" 2>&1
while IFS= read -r l; do
	if [[ $l == CHECK$'\t'* ]]; then
		IFS=$'\t' read -r _ label want seen <<<"$l"
		expect_eq "fstab: $label" "$want" "$seen"
	else
		log "fstab: $l"
	fi
done <"$T/fstab.checks"
expect_eq "fstab: no process of ours left in its namespace" "" "$(ns_pids "$(cat "$T/fstab.ns" 2>/dev/null)")"
kill_ns "$T/fstab.ns"
expect_eq "fstab: the file written is in upper" "from-fstab" "$(cat "$FS/srv/tools.rw/upper/etc/fstab-note" 2>&1)"
expect_eq "fstab: workdir/unionmount/work is empty" "" "$(ls -A "$FS/srv/tools.rw/work/unionmount/work" 2>&1)"
for l in $(seq 50); do
	[ -z "$(loops_of "$FS/srv/images/tools.squashfs")" ] && break
	sleep 0.1
done
expect_eq "fstab: the squashfs loop device was released" "" "$(loops_of "$FS/srv/images/tools.squashfs" | tr '\n' ' ')"
expect_eq "fstab: /usr/local/sbin outside the namespace was not touched" "" \
	"$([ -e /usr/local/sbin/unionmount ] && echo "/usr/local/sbin/unionmount exists")"

umount_loop "$SQ" "$IMG" "end"
expect_eq "the squashfs image is byte-identical at the end" "$sha_before" "$(sha256sum <"$IMG")"
finish
