#!/usr/bin/env bash
# t_faults: the union under faults of its branches, differential against
# kernel overlayfs (redirect_dir=on, index=on, xino=on) on identical
# branches. A daemon bug under faults is a crash, a hang, a wrong errno,
# a half-done change, a leftover in the work dir or a union that does not
# work once the fault is gone, so each part checks all of those.
#
# 1. Upper and workdir on a full file system, four ways: a tmpfs out of
#    blocks (size=) and one out of inodes (nr_inodes=), a loop-mounted
#    ext4 image out of blocks (1 KiB blocks, -m 0) and one out of inodes
#    (-N). A filler file outside the branches, on the same file system,
#    takes the last block or inode. Then the first listing of two merged
#    dirs (41 names, and 400, so that on ext4 the fallthrus need new
#    directory blocks), and create, growing an upper file (past its end,
#    and appending at a block boundary), mkdir, short and long symlinks,
#    a fifo, renames of a merged lower dir (relative redirect), of a lower
#    dir into another dir (absolute redirect), of a merged dir over a
#    merged dir that only looks empty (its upper part holds a whiteout),
#    of a small and a big lower file, unlink of a lower file in each lower
#    (whiteout), rmdir of a lower dir and of a merged dir that only looks
#    empty, link of a lower file, unlink and rename of names of the listed
#    dir, rename of a lower dir over an empty lower dir in it, mkdir and
#    create over whiteouts, setxattr on a lower file (copy-up) and a
#    700-byte one on an upper file (an xattr block on ext4). Each answer:
#    OK, ENOSPC, or what overlayfs answered; the daemon alive;
#    WORKDIR/unionmount/work empty; after a failure the whole visible tree
#    exactly as before, and a remount still on the full file system shows
#    the same tree (what the daemon remembers must not hide what it left on
#    disk); a listing always right (names and types equal overlayfs's),
#    and on disk either not complete or complete with every fallthru.
#    After the filler is removed every failed operation works, the trees
#    of both sides are equal, and stay equal across a remount; unionctl
#    check finds nothing; the loop devices are gone after the unmounts.
#    Harness: the fill took effect (overlayfs fails with ENOSPC what must
#    need room: growing a file when out of blocks; create, mkdir and a
#    whiteout when out of inodes). Then a tmpfs out of inodes and an ext4
#    out of blocks again, with one inode or block given back before each
#    operation (and taken again after it), so that changes needing
#    several get only part of them.
# 2. The upper file system (tmpfs, then ext4) remounted read-only while
#    the union is mounted: reads of upper and lower files and dirs work,
#    the first listing of a merged dir lists right (and writes nothing),
#    every change fails with EROFS as on overlayfs; the daemon lives; after
#    remount,rw the same changes work and the trees equal overlayfs's.
# 3. Lower objects removed or replaced behind the daemon's back while
#    mounted (not supported, DESIGN.md: but no crash): a file removed, a
#    file replaced, a file renamed away, a file replaced by a dir, a dir
#    removed, a dir replaced by a file, a dir replaced by a symlink to a
#    dir outside the branches, a name removed below a complete dir, a
#    file held open. Looked at with the kernel's caches warm and after
#    dropping them: each answer is the old object, the new one, or
#    ENOENT/ESTALE/EIO/ENOTDIR (the answer overlayfs gives is logged); the
#    directory behind the symlink is never listed nor read through the old
#    directory; the daemon lives, untouched files are served as before, and
#    it exits 0 at unmount.
# 4. The daemon out of file descriptors (its limit lowered with prlimit
#    while mounted, since root may raise its own): walking 150 merged
#    directories of three lowers needs more than 256. The lowers are on
#    kernel overlayfs, which gives no file handles, so the daemon cannot
#    close their directories' fds (t_dirfds covers layers that can). The
#    walk fails with EMFILE somewhere, the log says so in one documented
#    line (repeats counted, not printed), the daemon lives, and once the
#    kernel forgot the directories and the limit is back the whole tree
#    is there.
# The self-test runs every part against kernel overlayfs on both sides
# (the on-disk checks and unionctl are skipped).
. "$(dirname "$0")/lib.sh" || exit 99
setup_test
require_overlay
require_daemon
command -v getfattr >/dev/null || skip "getfattr (package attr) needed"

HAVE_EXT4=1
for c in mkfs.ext4 losetup; do
	command -v "$c" >/dev/null || HAVE_EXT4=0
done
[ -e /dev/loop-control ] || HAVE_EXT4=0
[ $HAVE_EXT4 -eq 1 ] || log "no mkfs.ext4, losetup or /dev/loop-control: the ext4 cases are skipped"

ondisk() { ! selftest; }
DIFF_T0=$(date +%s)
START=$DIFF_T0

# ---------------------------------------------------------------- loop devices
# An ext4 image's loop device is detached (losetup -d) right after the
# mount: the kernel then frees it at the unmount, even at the lazy one of
# the cleanup. The exit trap detaches whatever is still attached to our
# images first, then runs lib.sh's cleanup.
_imgs=()
_fx_detach() {
	local img d
	for img in "${_imgs[@]}"; do
		for d in $(losetup -j "$img" -O NAME -n 2>/dev/null); do
			losetup -d "$d" 2>/dev/null
		done
	done
}
_fx_exit() {
	local rc=$?
	_fx_detach
	(exit "$rc")
	_cleanup
}
trap _fx_exit EXIT

# small_fs DIR KIND: a small file system on DIR.
#   tmpfs-blocks tmpfs-inodes ext4-blocks ext4-inodes ext4 tmpfs
small_fs() {
	local dir=$1 kind=$2 img=$1.img dev
	case $kind in
	tmpfs-blocks) kmount tmpfs "$dir" size=2m,mode=0755 ;;
	tmpfs-inodes) kmount tmpfs "$dir" nr_inodes=1000,mode=0755 ;;
	tmpfs) kmount tmpfs "$dir" size=8m,mode=0755 ;;
	ext4*)
		local n=1024
		[ "$kind" == ext4-inodes ] && n=64
		rm -f "$img"
		truncate -s 8M "$img" || die "cannot make $img"
		_imgs+=("$img")
		mkfs.ext4 -q -F -m 0 -b 1024 -N "$n" -O ^has_journal "$img" || die "mkfs.ext4 $img failed"
		mkdir -p "$dir"
		dev=$(losetup --find --show "$img") || die "losetup $img failed"
		if ! timeout 20 mount -t ext4 "$dev" "$dir"; then
			losetup -d "$dev"
			die "cannot mount $img ($dev) on $dir"
		fi
		_mounts+=("k:$dir")
		losetup -d "$dev" || die "losetup -d $dev (autoclear) failed"
		;;
	*) die "small_fs: unknown kind $kind" ;;
	esac
}

# drop_small_fs DIR: unmount it; for an image, no loop device may stay.
drop_small_fs() {
	kumount "$1"
	if [ -e "$1.img" ]; then
		local left i
		for i in $(seq 50); do
			left=$(losetup -j "$1.img" -O NAME -n 2>/dev/null)
			[ -z "$left" ] && break
			sleep 0.1
		done
		expect_eq "no loop device left on ${1#"$T"/}.img after the unmount" "" "$left"
		rm -f "$1.img"
	fi
}

# fill DIR KIND [again]: take every block (…-blocks) or every inode
# (…-inodes) of the file system of DIR with files in DIR/fill (outside
# the branches). "again" takes back the few that spare gave.
FILLN=0
fill() {
	local s=$1 kind=$2 i k n=$((++FILLN)) passes=3
	mkdir -p "$s/fill"
	case $kind in
	*-blocks)
		if [ "${3:-}" == again ]; then
			passes=1
		else
			dd if=/dev/zero of="$s/fill/big.$n" bs=64k status=none 2>/dev/null
		fi
		# ext4 delays allocation: sync, then take the rest in 1 KiB files
		# (a page each on tmpfs)
		for ((k = 1; k <= passes; k++)); do
			sync -f "$s"
			i=0
			while head -c 1024 /dev/zero 2>/dev/null >"$s/fill/s.$n.$k.$i"; do
				i=$((i + 1))
			done
		done
		sync -f "$s"
		;;
	*-inodes)
		i=0
		while : 2>/dev/null >"$s/fill/i.$n.$i"; do i=$((i + 1)); done
		;;
	esac
}
unfill() { rm -rf --one-file-system "$1/fill"; sync -f "$1"; }
# spare DIR KIND N: give back N blocks (1 KiB files) or N inodes.
spare() {
	local s=$1 kind=$2 n=$3 f pat='i.*' size=-1
	[[ $kind == *-blocks ]] && pat='s.*' size=+0
	[ "$n" -gt 0 ] || return 0
	f=$(find "$s/fill" -name "$pat" -size "$size" | head -n "$n") 
	[ "$(printf '%s\n' "$f" | grep -c .)" -eq "$n" ] || die "spare: fewer than $n filler files in $s/fill"
	printf '%s\n' "$f" | xargs rm -f
	sync -f "$s"
}

# ---------------------------------------------------------------- both sides
# Side "un" is the union (um_mount), side "ref" kernel overlayfs; each has
# its own small file system $T/fs.SIDE with u and w in it, and a
# mountpoint $T/mnt.SIDE.
MU=$T/mnt.un MR=$T/mnt.ref
mkdir -p "$MU" "$MR"

# fop MNT OP ARGS...: fsop with MNT as the cwd: its one line.
fop() {
	local m=$1 got
	shift
	got=$(tin "$m" "$HELPERS/fsop" "$@" 2>&1)
	[ $? -eq 124 ] && got="TIMEOUT after ${UM_TIMEOUT}s"
	printf '%s' "$got"
}

# ndump MNT OUT: tree dump, normalized as the differential tests do
# (ctimes and blocks dropped, times of the test "recent"). Returns the
# dump's status.
NDUMP=0
ndump() {
	local rc
	tree_dump "$1" "$2.raw"
	rc=$?
	_dnorm <"$2.raw" >"$2"
	return $rc
}

# sides_equal LABEL: the visible trees of both sides are equal.
sides_equal() {
	local label=$1 d=$T/dump.$((++NDUMP)) rc
	ndump "$MR" "$d.ref"
	rc=$?
	[ $rc -eq 0 ] || { fail "$label: overlayfs's tree dump has anomalies (status $rc)"; grep '^!' "$d.ref.raw" | head -5; }
	ndump "$MU" "$d.un"
	rc=$?
	[ $rc -eq 0 ] || { fail "$label: the union's tree dump has anomalies (status $rc):"; grep '^!' "$d.un.raw" | head -10 | sed 's/^/     /'; }
	expect_same_file "$label: the union's tree equals overlayfs's" "$d.ref" "$d.un"
}

alive() { # LABEL (the tree dumps show whether it answers)
	if daemon_alive "$MU"; then
		pass "$1: the daemon is alive"
	else
		fail "$1: the daemon died or the mount does not answer; its log:"
		daemon_log "$MU"
	fi
}

work_empty() { # LABEL WORKDIR
	ondisk || return 0
	expect_eq "$1: WORKDIR/unionmount/work is empty" "" "$(ls -A "$2/unionmount/work" 2>&1)"
}

# unionctl_clean LABEL OPTS: with the union unmounted, unionctl check
# finds nothing to report.
unionctl_clean() {
	ondisk || return 0
	[ -n "${UNIONCTL:-}" ] && [ -x "$UNIONCTL" ] || { log "$1: UNIONCTL not set: unionctl check skipped"; return 0; }
	local out rc
	out=$(t "$UNIONCTL" check -o "$2" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [[ $out =~ ^(no problems found)?$ ]]; then
		pass "$1: unionctl check finds nothing"
	else
		fail "$1: unionctl check: status $rc, expected 0 and no output; it says: $(printf '%s' "$out" | head -5)"
	fi
}

# The number of fallthrus in upper DIR, and its complete mark.
ft_count() {
	find "$1" -mindepth 1 -maxdepth 1 -type c -exec stat -c '%t:%T' {} + |
		grep -c -E '^0:8[0-9a-f]{4}$'
}
complete_of() { getfattr --absolute-names --only-values -n trusted.unionmount.complete "$1" 2>/dev/null; }

# listing_state LABEL DIR NFT: after a listing, upper DIR is either not
# complete, or complete with all NFT fallthrus (never marked complete
# with some missing). Sets LSTATE to "complete" or "incomplete".
listing_state() {
	local label=$1 d=$2 want=$3 mark n
	mark=$(complete_of "$d")
	n=$(ft_count "$d")
	if [ -z "$mark" ]; then
		pass "$label: not marked complete ($n of $want fallthrus written)"
		LSTATE=incomplete
	elif [ "$n" -eq "$want" ]; then
		pass "$label: marked complete, with all $want fallthrus"
		LSTATE=complete
	else
		fail "$label: marked complete with $n of $want fallthrus"
		LSTATE="complete with $n"
	fi
}

# ================================================================ lowers
L1=$T/l1 L2=$T/l2
mkdir -p "$L1" "$L2"
LONG=$(printf 'long-target-%.0s' $(seq 25))
BIGX=$(head -c 700 /dev/zero | tr '\0' 'x')
build_lowers() {
	local i
	mkf "$L1" ldir/a
	mkf "$L1" ldir/sub/b
	mkf "$L2" ldir/c
	mkf "$L2" ldir2/x
	mkf "$L2" ldir2/deep/y
	mkf "$L1" lf
	head -c 300k /dev/urandom >"$L2/lbig"
	mkf "$L1" ul
	mkf "$L2" ul2
	mkd "$L1" ed
	mkd "$L2" ed
	mkf "$L1" mdir/gone
	mkf "$L1" lk
	mkf "$L1" xf
	for i in $(seq 20); do
		mkf "$L1" "md/n$i"
		mkf "$L2" "md/m$i"
	done
	mkdir -p "$L1/bd"
	for i in $(seq 400); do : >"$L1/bd/a-name-of-some-length-$i"; done
	mkf "$L1" rdir/a
	mkf "$L2" rtgt/x
	mkd "$L2" md/sd
	mkf "$L2" ldir3/f
	mkf "$L1" wd/w
	mkf "$L1" wd/w2
	mkf "$L1" keep/k1
	mkf "$L2" keep/k2
	return 0
}
build_lowers
pin_times() { find "$@" -exec touch -h -d "@$DIFF_OLD" {} + || die "cannot pin times in $*"; }
pin_times "$L1" "$L2"
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"
# fallthrus of md at its first listing, and after the operations (n1
# unlinked, n2 renamed, sd replaced by a dir)
NFT_MD=41 NFT_MD_AFTER=38 NFT_BD=400

# build_upper DIR: the upper's own part (made by hand before mounting).
build_upper() {
	local u=$1
	mkf "$u" md/own
	mkf "$u" bd/own
	mkf "$u" uf "upper file
"
	mkf "$u" ux
	head -c 4096 /dev/zero | tr '\0' 'u' >"$u/uf4k"
	mkwh "$u" mdir/gone
	mkd "$u" rdir
	mkwh "$u" rtgt/x
	mkwh "$u" wd/w
	mkwh "$u" wd/w2
	pin_times "$u"
}

side_opts() { # FS: the union's options for the branches on FS
	printf 'upperdir=%s,workdir=%s,%s' "$1/u" "$1/w" "$(lowerdir_opt "$L1" "$L2")"
}

# mount_sides KIND: make both small file systems, build their uppers,
# mount the union and overlayfs.
mount_sides() {
	local kind=$1 s
	for s in un ref; do
		small_fs "$T/fs.$s" "$kind"
		mkdir -p "$T/fs.$s/u" "$T/fs.$s/w"
		build_upper "$T/fs.$s/u"
	done
	ovl_rw_mount "$MR" "$T/fs.ref/u" "$T/fs.ref/w" "$L1" "$L2"
	um_mount "$MU" "$(side_opts "$T/fs.un")" || return 1
}
umount_sides() {
	ovl_umount "$MR"
	um_umount "$MU"
}
drop_sides() {
	local s
	for s in un ref; do drop_small_fs "$T/fs.$s"; done
}
# abort_sides: after a failed mount, undo what is mounted.
abort_sides() {
	_is_mounted "$MR" && ovl_umount "$MR"
	_is_mounted "$MU" && um_umount "$MU"
	drop_sides
}

# ================================================================ 1. full file systems
# Each entry: LABEL|OP ARGS (words; no '|' inside).
OPS=(
	"create|create newf 0644"
	"grow an upper file|write uf 65536 GROWN"
	"append to an upper file ending at a block boundary|append uf4k MORE"
	"mkdir|mkdir newd 0755"
	"short symlink|symlink tgt sls"
	"long symlink|symlink $LONG sll"
	"fifo|mknod fifo1 fifo"
	"rename a merged lower dir in its parent (relative redirect)|rename ldir ldirR"
	"rename a lower dir into another dir (absolute redirect)|rename ldir2 md/ldir2R"
	"rename a merged dir over a merged dir that only looks empty|rename rdir rtgt"
	"rename a lower file|rename lf lfR"
	"rename a 300 KiB lower file|rename lbig lbigR"
	"unlink a file of lower 1 (whiteout)|unlink ul"
	"unlink a file of lower 2 (whiteout)|unlink ul2"
	"rmdir a merged lower dir|rmdir ed"
	"rmdir a merged dir that only looks empty|rmdir mdir"
	"link a lower file|link lk lkL"
	"unlink a name of the listed merged dir|unlink md/n1"
	"rename a name of the listed merged dir in it|rename md/n2 md/n2R"
	"rename a lower dir over an empty lower dir of the listed merged dir|rename ldir3 md/sd"
	"mkdir over a whiteout (opaque dir)|mkdir wd/w 0755"
	"create over a whiteout|create wd/w2 0644"
	"setxattr on a lower file (copy-up)|setxattr xf user.k v"
	"700-byte setxattr on an upper file|setxattr ux user.big $BIGX"
)
# What overlayfs must fail with ENOSPC for the fill to count (harness).
declare -A MUST_FAIL=(
	[tmpfs-blocks]="grow an upper file|append to an upper file ending at a block boundary"
	[ext4-blocks]="grow an upper file|append to an upper file ending at a block boundary|mkdir"
	[tmpfs-inodes]="create|mkdir|unlink a file of lower 1 (whiteout)"
	[ext4-inodes]="create|mkdir|unlink a file of lower 1 (whiteout)"
)

# full_fs KIND [N]: part 1 on KIND; with N, each operation gets N blocks
# or inodes (the file system is full again before the next one), so that
# a change needing several gets only some of them.
full_fs() {
	local kind=$1 n=${2:-0} k=$1 entry label op ans_r ans_u before after i st
	[ "$n" -gt 0 ] && k="$kind, $n spare"
	log "1. $k: upper and workdir on a full file system"
	mount_sides "$kind" || { abort_sides; return; }
	local W=$T/fs.un/w U=$T/fs.un/u d
	fill "$T/fs.un" "$kind"
	fill "$T/fs.ref" "$kind"
	log "$k: filled; union side: $(df --output=iavail,avail "$T/fs.un" | tail -1 | xargs) inodes/KiB free"
	# spare_run SIDE OP...: the operation with N spare blocks or inodes
	spare_run() {
		local m=$MU s=un ans
		[ "$1" == ref ] && m=$MR s=ref
		shift
		spare "$T/fs.$s" "$kind" "$n"
		ans=$(fop "$m" "$@")
		[ "$n" -gt 0 ] && fill "$T/fs.$s" "$kind" again
		printf '%s' "$ans"
	}

	# The first listings come first: every tree dump below lists the dirs.
	for d in md bd; do
		ans_r=$(spare_run ref readdir "$d")
		ans_u=$(spare_run un readdir "$d")
		[[ $ans_r == OK* ]] || fail "$k: overlayfs cannot list $d ($ans_r): scenario wrong?"
		expect_eq "$k: first listing of merged $d lists what overlayfs lists" "$ans_r" "$ans_u"
		alive "$k: after the first listing of $d"
		work_empty "$k: after the first listing of $d" "$W"
		if ondisk; then
			local nft=$NFT_MD
			[ $d == bd ] && nft=$NFT_BD
			listing_state "$k: $d after its first listing on the full file system" "$U/$d" $nft
		fi
	done

	local -a failed_u=() failed_r=()
	local -A ref_ans=()
	before=$T/$k.before.0
	ndump "$MU" "$before" || { fail "$k: the union's tree dump has anomalies before the operations"; grep '^!' "$before.raw" | head -5; }
	i=0
	for entry in "${OPS[@]}"; do
		i=$((i + 1))
		label=${entry%%|*}
		op=${entry#*|}
		# shellcheck disable=SC2086 # OP is words on purpose
		ans_r=$(spare_run ref $op)
		# shellcheck disable=SC2086
		ans_u=$(spare_run un $op)
		ref_ans[$label]=$ans_r
		[ "$ans_r" == OK ] || failed_r+=("$entry")
		if [ "$ans_u" == "$ans_r" ] || [ "$ans_u" == OK ] || [ "$ans_u" == ENOSPC ]; then
			pass "$k: $label: $ans_u (overlayfs: $ans_r)"
		elif selftest && [[ $op == rename* ]] && [ "$ans_u" == EXDEV ]; then
			# overlayfs falls back to EXDEV when it cannot write a
			# redirect; the union must not (DESIGN.md)
			pass "$k: $label: $ans_u (overlayfs's fallback; the other side: $ans_r)"
		else
			fail "$k: $label [$op]: expected OK, ENOSPC or overlayfs's $ans_r, the union answered $ans_u"
		fi
		alive "$k: $label"
		work_empty "$k: after $label" "$W"
		after=$T/$k.before.$i
		ndump "$MU" "$after"
		st=$?
		if [ "$ans_u" != OK ]; then
			failed_u+=("$entry")
			if [[ $op == write* || $op == append* ]]; then
				# a write refused for lack of room still sets the
				# mtime (the kernel updates it before it allocates)
				sed -E 's/ t=[^ ]+//' "$before" >"$before.nt"
				sed -E 's/ t=[^ ]+//' "$after" >"$after.nt"
				expect_same_file "$k: $label failed ($ans_u): the visible tree is as before (but mtimes)" "$before.nt" "$after.nt"
			else
				expect_same_file "$k: $label failed ($ans_u): the visible tree is as before" "$before" "$after"
			fi
		fi
		[ $st -eq 0 ] || { fail "$k: after $label the union's tree dump has anomalies:"; grep '^!' "$after.raw" | head -5 | sed 's/^/     /'; }
		before=$after
	done
	# What the daemon remembers may hide what it left on disk: a remount,
	# still on the full file system, must show the same tree. (Kernel
	# overlayfs cannot mount on a full file system: union only.)
	if ! selftest; then
		if um_umount "$MU" && um_mount "$MU" "$(side_opts "$T/fs.un")"; then
			ndump "$MU" "$before.re"
			expect_same_file "$k: after the operations, a remount on the full file system shows the same tree" \
				"$before" "$before.re"
			work_empty "$k: after that remount" "$W"
		else
			fail "$k: cannot mount the union again on the full file system"
			abort_sides
			return
		fi
	fi
	local -a musts=()
	[ "$n" -eq 0 ] && IFS='|' read -ra musts <<<"${MUST_FAIL[$k]}"
	for entry in "${musts[@]}"; do
		expect_eq "$k: harness: overlayfs fails '$entry' on the full file system" ENOSPC "${ref_ans[$entry]}"
	done
	[ $((${#failed_r[@]} + ${#failed_u[@]})) -gt 0 ] || fail "$k: harness: nothing failed: the fill did not take"
	if ondisk; then
		if grep -q "cannot write the fallthrus" "${_log_of[$MU]}"; then
			log "$k: the daemon logged fallthrus it could not write (expected on a full upper)"
		fi
	fi

	log "$k: space freed: the failed operations again"
	unfill "$T/fs.un"
	unfill "$T/fs.ref"
	for entry in "${failed_r[@]}"; do
		op=${entry#*|}
		# shellcheck disable=SC2086
		ans_r=$(fop "$MR" $op)
		[ "$ans_r" == OK ] || fail "$k: overlayfs after freeing space: ${entry%%|*} answered $ans_r (scenario wrong?)"
	done
	for entry in "${failed_u[@]}"; do
		label=${entry%%|*}
		op=${entry#*|}
		# the union may have succeeded where overlayfs failed: then only
		# overlayfs repeats it (above), and this one is already done
		# shellcheck disable=SC2086
		ans_u=$(fop "$MU" $op)
		expect_eq "$k: after freeing space: $label works" OK "$ans_u"
		work_empty "$k: after $label the second time" "$W"
	done
	for d in md bd; do
		ans_r=$(fop "$MR" readdir "$d")
		ans_u=$(fop "$MU" readdir "$d")
		expect_eq "$k: after freeing space: $d lists what overlayfs lists" "$ans_r" "$ans_u"
		if ondisk; then
			local nft=$NFT_MD_AFTER
			[ $d == bd ] && nft=$NFT_BD
			listing_state "$k: $d after freeing space" "$U/$d" $nft
			expect_eq "$k: after freeing space: $d's listing made it complete" complete "$LSTATE"
		fi
	done
	alive "$k: after freeing space"
	sides_equal "$k: after freeing space"
	ndump "$MU" "$T/$k.final"
	umount_sides
	um_mount "$MU" "$(side_opts "$T/fs.un")" || { abort_sides; return; }
	work_empty "$k: after a remount" "$W"
	ndump "$MU" "$T/$k.remount"
	expect_same_file "$k: after a remount the union shows the same tree" "$T/$k.final" "$T/$k.remount"
	um_umount "$MU"
	unionctl_clean "$k: after the unmount" "$(side_opts "$T/fs.un")"
	drop_sides
}

full_fs tmpfs-blocks
full_fs tmpfs-inodes
full_fs tmpfs-inodes 1
if [ $HAVE_EXT4 -eq 1 ]; then
	full_fs ext4-blocks
	full_fs ext4-inodes
	full_fs ext4-blocks 1
fi

# ================================================================ 2. upper remounted read-only
RO_WRITES=(
	"create|create newf 0644"
	"append to an upper file|append uf MORE"
	"append to a lower file (copy-up)|append lf MORE"
	"mkdir|mkdir newd 0755"
	"symlink|symlink tgt sl"
	"rename a lower dir|rename ldir ldirR"
	"rename a lower file|rename lf lfR"
	"unlink a lower file|unlink ul"
	"unlink an upper file|unlink md/own"
	"rmdir a lower dir|rmdir ed"
	"setxattr on a lower file|setxattr xf user.k v"
	"chmod an upper file|chmod uf 0600"
	"truncate an upper file|truncate uf 3"
	"link a lower file|link lk lkL"
)
RO_READS=(
	"read an upper file|read uf"
	"read a lower file|read lf"
	"read an upper file in a merged dir|read md/own"
	"stat deep in a lower dir|stat ldir/sub/b"
	"list a lower-only dir|readdir ldir"
	"read a 300 KiB lower file|read lbig 299000 16"
)

upper_ro() {
	local kind=$1 k="$1 read-only" entry label op ans_r ans_u s
	log "2. $kind: the upper's file system remounted read-only under the mounted union"
	for s in un ref; do
		small_fs "$T/fs.$s" "$kind"
		mkdir -p "$T/fs.$s/u" "$T/fs.$s/w"
		build_upper "$T/fs.$s/u"
	done
	ovl_rw_mount "$MR" "$T/fs.ref/u" "$T/fs.ref/w" "$L1" "$L2"
	um_mount "$MU" "$(side_opts "$T/fs.un")" || { abort_sides; return; }
	local U=$T/fs.un/u W=$T/fs.un/w
	# Some writes first (a daemon holding a file open for writing would
	# make the remount fail with EBUSY), and lookups of everything
	# (overlayfs sets an origin on the upper dirs made by hand at their
	# first lookup, which it could not do on a read-only upper).
	for s in "$MR" "$MU"; do
		fop "$s" append uf "first
" >/dev/null
		fop "$s" append keep/k1 "copied" >/dev/null
		# md's first listing is for later, on the read-only upper
		tin "$s" find . -xdev -path ./md -prune -o -print >/dev/null 2>&1
		fop "$s" stat md/own >/dev/null
	done
	for s in un ref; do
		if timeout 20 mount -o remount,ro "$T/fs.$s"; then
			pass "$k: mount -o remount,ro of the $s side's upper file system"
		else
			fail "$k: mount -o remount,ro of the $s side's upper file system failed (files open for writing on it?)"
			[ $s == un ] && find "/proc/${_pid_of[$MU]:-0}/fd" -lname "$T/fs.un/*" -printf '     %p -> %l\n' 2>/dev/null
		fi
	done
	for entry in "${RO_READS[@]}"; do
		label=${entry%%|*}
		op=${entry#*|}
		# shellcheck disable=SC2086
		ans_r=$(fop "$MR" $op)
		# shellcheck disable=SC2086
		ans_u=$(fop "$MU" $op)
		[[ $ans_r == OK* ]] || fail "$k: overlayfs: $label answered $ans_r (scenario wrong?)"
		expect_eq "$k: $label works" "$ans_r" "$ans_u"
	done
	ans_r=$(fop "$MR" readdir md)
	ans_u=$(fop "$MU" readdir md)
	log "$k: first listing of merged md: overlayfs answers ${ans_r:0:40}..."
	expect_eq "$k: the first listing of merged md lists right" \
		"OK $( (printf '%s/f\n' own n{1..20} m{1..20}; echo sd/d) | LC_ALL=C sort | paste -sd,)" "$ans_u"
	if ondisk; then
		expect_eq "$k: ... and leaves md without a complete mark" "" "$(complete_of "$U/md")"
		expect_eq "$k: ... and without fallthrus" 0 "$(ft_count "$U/md")"
	fi
	alive "$k: after the reads"
	ndump "$MU" "$T/ro.before"
	for entry in "${RO_WRITES[@]}"; do
		label=${entry%%|*}
		op=${entry#*|}
		# shellcheck disable=SC2086
		ans_r=$(fop "$MR" $op)
		# shellcheck disable=SC2086
		ans_u=$(fop "$MU" $op)
		[ "$ans_r" == EROFS ] || log "$k: overlayfs answers $ans_r to $label"
		if [ "$ans_u" == EROFS ] || [ "$ans_u" == "$ans_r" ]; then
			pass "$k: $label: $ans_u (overlayfs: $ans_r)"
		else
			fail "$k: $label [$op]: expected EROFS (or overlayfs's $ans_r), the union answered $ans_u"
		fi
	done
	alive "$k: after the refused writes"
	ndump "$MU" "$T/ro.after"
	expect_same_file "$k: the refused writes changed nothing visible" "$T/ro.before" "$T/ro.after"
	for s in un ref; do
		timeout 20 mount -o remount,rw "$T/fs.$s" || fail "$k: mount -o remount,rw of the $s side failed"
	done
	for entry in "${RO_WRITES[@]}"; do
		label=${entry%%|*}
		op=${entry#*|}
		# shellcheck disable=SC2086
		ans_r=$(fop "$MR" $op)
		# shellcheck disable=SC2086
		ans_u=$(fop "$MU" $op)
		[ "$ans_r" == OK ] || fail "$k: overlayfs after remount,rw: $label answered $ans_r (scenario wrong?)"
		expect_eq "$k: after remount,rw: $label works" "$ans_r" "$ans_u"
	done
	ans_u=$(fop "$MU" readdir md)
	expect_eq "$k: after remount,rw: md lists as on overlayfs" "$(fop "$MR" readdir md)" "$ans_u"
	ondisk && expect_match "$k: after remount,rw: md's listing made it complete" '^[0-9a-f]{16}$' "$(complete_of "$U/md")"
	work_empty "$k: after remount,rw" "$W"
	sides_equal "$k: after remount,rw"
	ndump "$MU" "$T/ro.final"
	umount_sides
	um_mount "$MU" "$(side_opts "$T/fs.un")" || { abort_sides; return; }
	ndump "$MU" "$T/ro.remount"
	expect_same_file "$k: after a remount the union shows the same tree" "$T/ro.final" "$T/ro.remount"
	um_umount "$MU"
	unionctl_clean "$k: after the unmount" "$(side_opts "$T/fs.un")"
	drop_sides
}

upper_ro tmpfs
[ $HAVE_EXT4 -eq 1 ] && upper_ro ext4

snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower l1 unchanged by parts 1 and 2" "$T/l1.before" "$T/l1.after"
expect_same_file "lower l2 unchanged by parts 1 and 2" "$T/l2.before" "$T/l2.after"

# ================================================================ 3. lowers changed under the mount
log "3. lower objects removed or replaced while mounted"
OUT=$T/outside
mkf "$OUT" secret "SECRET"
build_changing() { # ROOT: lower l1, upper u
	local r=$1 i
	mkf "$r/l1" f1 "f1"
	mkf "$r/l1" f2 "f2-old"
	mkf "$r/l1" f4 "f4"
	mkf "$r/l1" f5 "f5"
	mkf "$r/l1" held "held-content"
	mkf "$r/l1" ldir/a
	mkf "$r/l1" ldir/sub/b "b"
	mkf "$r/l1" gd/sub/g
	mkf "$r/l1" sd/inner "inner"
	for i in 1 2 3 4; do
		mkf "$r/l1" "md/n$i" "n$i"
		mkf "$r/l1" "cd/c$i" "c$i"
	done
	mkf "$r/u" md/own "own"
	mkd "$r/u" cd
	mkf "$r/l1" keep/k1 "k1"
	mkf "$r/l1" keep/deep/k2 "k2"
	return 0
}
for s in un ref; do
	mkdir -p "$T/ch.$s/l1" "$T/ch.$s/u" "$T/ch.$s/w"
	build_changing "$T/ch.$s"
done
ovl_rw_mount "$MR" "$T/ch.ref/u" "$T/ch.ref/w" "$T/ch.ref/l1"
um_mount "$MU" "upperdir=$T/ch.un/u,workdir=$T/ch.un/w,$(lowerdir_opt "$T/ch.un/l1")" || finish

# Warm the caches: every object looked up, cd listed (complete, on the
# union), held open.
for m in "$MU" "$MR"; do
	tin "$m" find . -xdev >/dev/null 2>&1
	for p in f1 f2 f4 f5 ldir/sub/b md/n1 gd/sub/g sd/inner; do fop "$m" read "$p" >/dev/null; done
	fop "$m" readdir cd >/dev/null
	fop "$m" readdir sd >/dev/null
done
tree_dump "$MU/keep" "$T/keep.before"
[ -r "$MU/held" ] && [ -r "$MR/held" ] || die "cannot open held on both sides"
exec {HELD_U}<"$MU/held"
exec {HELD_R}<"$MR/held"

for s in un ref; do
	l=$T/ch.$s/l1
	rm "$l/f1"
	rm "$l/f2" && printf 'f2-new' >"$l/f2"
	mv "$l/f4" "$l/f4moved"
	rm "$l/f5" && mkdir "$l/f5"
	rm -r "$l/ldir"
	rm -r "$l/gd" && printf 'now a file' >"$l/gd"
	rm -r "$l/sd" && ln -s "$OUT" "$l/sd"
	rm "$l/md/n1"
	rm "$l/cd/c1"
	rm "$l/held"
done

# changed LABEL ERE OP ARGS...: the union's answer must match ERE;
# overlayfs's answer is logged next to it.
ERRS='ENOENT|ESTALE|EIO'
changed() {
	local label=$1 ere=$2 ans_u ans_r
	shift 2
	ans_r=$(fop "$MR" "$@")
	ans_u=$(fop "$MU" "$@")
	expect_match "$PHASE: $label [$*]: '$ans_u' (overlayfs: '$ans_r')" "^($ere)\$" "$ans_u"
}
for PHASE in "caches warm" "caches dropped"; do
	changed "read a removed file" "OK f1|$ERRS" read f1
	changed "read a replaced file" "OK f2-old|OK f2-new|$ERRS" read f2
	changed "read a file renamed away below" "OK f4|$ERRS" read f4
	changed "stat the new name below" "OK f 0644 0:0 2 1|$ERRS" stat f4moved
	changed "read a file replaced by a dir" "OK f5|EISDIR|$ERRS" read f5
	# (overlayfs shows the removed object still cached: nlink 0)
	changed "stat in a removed dir" "OK f 0644 0:0 1 [01]|$ERRS" stat ldir/sub/b
	changed "read in a removed dir" "OK b|$ERRS" read ldir/sub/b
	changed "list a removed dir" "OK a/f,sub/d|OK |OK|$ERRS" readdir ldir
	changed "list a dir replaced by a file" "OK sub/d|OK ?|ENOTDIR|$ERRS" readdir gd
	changed "stat in a dir replaced by a file" "OK f 0644 0:0 [0-9]+ [01]|ENOTDIR|$ERRS" stat gd/sub/g
	# sd is now a symlink to OUT: never list or read OUT through the
	# old directory (the daemon follows no symlink in a branch); through
	# a fresh lookup the kernel follows the union's symlink itself.
	if [ "$PHASE" == "caches warm" ]; then
		# Unless something else on the machine made the kernel forget
		# the directory (drop_caches, memory pressure): then it looks sd
		# up again, gets the symlink, and follows it itself.
		if [ "$(stat -c %F "$MU/sd" 2>&1)" == "symbolic link" ]; then
			log "sd was looked up again (the kernel forgot it): its checks are for a cached directory"
		else
			changed "list a dir replaced by a symlink to a dir outside" "OK inner/f|OK |OK|ENOTDIR|ELOOP|$ERRS" readdir sd
			changed "read in a dir replaced by a symlink to a dir outside" "OK inner|ENOTDIR|ELOOP|$ERRS" read sd/secret
			changed "read the old name in it" "OK inner|ENOTDIR|ELOOP|$ERRS" read sd/inner
		fi
	else
		changed "a dir replaced by a symlink is seen as the symlink" "OK l 0777 0:0 [0-9]+ 1" stat sd
	fi
	changed "read a name removed below a merged dir" "OK n1|$ERRS" read md/n1
	changed "read a name removed below a complete dir" "OK c1|$ERRS" read cd/c1
	changed "list the complete dir" "OK c1/[fu],c2/f,c3/f,c4/f|OK c2/f,c3/f,c4/f|$ERRS" readdir cd
	changed "read another name of it" "OK c2" read cd/c2
	changed "read another name of the merged dir" "OK n2" read md/n2
	changed "read upper's own file there" "OK own" read md/own
	alive "$PHASE"
	tree_dump "$MU/keep" "$T/keep.$PHASE"
	expect_same_file "$PHASE: an untouched dir dumps as before" "$T/keep.before" "$T/keep.$PHASE"
	sync
	echo 2 >/proc/sys/vm/drop_caches 2>/dev/null || log "cannot drop the caches"
done
PHASE="held open"
got=$(t cat <&"$HELD_U" 2>&1)
expect_match "$PHASE: reading a descriptor opened before its lower file was removed: old content or an error: '$got'" \
	"^(held-content|.*(No such file|Stale|Input/output error).*)$" "$got"
exec {HELD_U}<&- {HELD_R}<&-
PHASE="changes"
changed "unlink a removed file" "OK|$ERRS" unlink f1
changed "append to a replaced file (copy-up)" "OK|$ERRS" append f2 "+"
changed "read it" "OK f2-old\+|OK f2-new\+|$ERRS" read f2
changed "rename a file renamed away below" "OK|$ERRS" rename f4 f4b
changed "unlink a name removed below a complete dir" "OK|$ERRS" unlink cd/c1
changed "create in a removed dir" "OK|$ERRS" create ldir/new 0644
changed "create a new file" OK create newfile 0644
changed "copy-up of an untouched file" OK append keep/k1 "+"
alive "$PHASE"
um_umount "$MU"
ovl_umount "$MR"

# 4. Out of file descriptors.
if ! selftest && command -v prlimit >/dev/null; then
	PHASE="fds"
	mkdir -p "$T/fd/base/l1" "$T/fd/base/l2" "$T/fd/base/l3" "$T/fd/empty" "$T/fd/ovl" "$T/fd/u" "$T/fd/w" "$T/fd/mnt"
	for i in $(seq 150); do
		for l in l1 l2 l3; do mkdir -p "$T/fd/base/$l/d$i" && : >"$T/fd/base/$l/d$i/$l"; done
	done
	kmount overlay "$T/fd/ovl" "ro,lowerdir=$T/fd/base:$T/fd/empty"
	if um_mount "$T/fd/mnt" "upperdir=$T/fd/u,workdir=$T/fd/w,$(lowerdir_opt "$T/fd/ovl/l1" "$T/fd/ovl/l2" "$T/fd/ovl/l3")"; then
		FDPID=${_pid_of[$T/fd/mnt]}
		FDHARD=$(prlimit --pid "$FDPID" --nofile --output HARD --noheadings)
		prlimit --pid "$FDPID" --nofile="256:$FDHARD" || fail "$PHASE: prlimit failed"
		out=$(t find "$T/fd/mnt" 2>&1 >/dev/null)
		expect_match "$PHASE: the walk fails with EMFILE: '${out%%$'\n'*}'" "Too many open files" "$out"
		expect_eq "$PHASE: the log says why, once (then counts)" 1 \
			"$(grep -c 'out of file descriptors (Too many open files): directories in use keep one per branch part' "${_log_of[$T/fd/mnt]}")"
		if daemon_alive "$T/fd/mnt"; then pass "$PHASE: the daemon is alive"; else fail "$PHASE: the daemon died"; fi
		prlimit --pid "$FDPID" --nofile="$FDHARD:$FDHARD" || fail "$PHASE: prlimit failed to give the limit back"
		echo 2 >/proc/sys/vm/drop_caches
		expect_eq "$PHASE: then every directory and file is there" 450 \
			"$(t find "$T/fd/mnt" -mindepth 2 -type f | wc -l)"
		um_umount "$T/fd/mnt"
	fi
	kumount "$T/fd/ovl"
fi

log "took $(($(date +%s) - START))s"
finish
