#!/usr/bin/env bash
# t_security: the daemon runs as root with allow_other; unprivileged users
# must get exactly what kernel overlayfs gives them, and no more.
#
# Users: A = 65534:65534, B = 1001:1001 (no passwd entry needed), BG = B
# with the supplementary group 4242, via setpriv. The union is mounted as
# root without options beyond the branches: allow_other and
# default_permissions must be on by default (man page), checked in
# /proc/mounts. Every operation runs through both the union and kernel
# overlayfs on identical branches (the differential framework of lib.sh,
# with the caller as an extra argument) and the answers are compared, with
# a hard-coded expectation where the kernel's answer does not depend on its
# version or sysctls.
#
# 1. Refusals, on lower files (a copy-up would be needed) and upper ones,
#    as A (the whole list) and as B (the main calls: B stands where A
#    does, "other" for root's files): read, write, O_TRUNC, truncate, chmod, chown, utimes
#    (to a given time even with write access, to "now" without), setxattr
#    (user.* without write access, trusted.*, security.*, POSIX ACLs by a
#    non-owner), the same through O_RDONLY descriptors, link
#    (fs.protected_hardlinks), unlink/rename/rmdir/xattrs in a sticky dir,
#    creation where the directory forbids it, device nodes. POSIX ACLs
#    are enforced: a named-user entry denies B a 0644 file, another grants
#    A a 0660 root:root file (when the file system takes ACLs). Nothing
#    was copied up: upper's subtrees are byte-for-byte and inode-for-inode
#    as before, the refused names are absent from upper.
# 2. Ownership: files, dirs, symlinks, fifos, sockets created by A and by B
#    are theirs (union and upper on disk), and root's under another gid
#    (setpriv --regid) get that group, a 06755 file both bits; in a setgid dir they get its
#    group, dirs inherit S_ISGID, S_ISGID requested by a non-member is
#    dropped and kept for a member; a parent's default ACL, not the umask,
#    gives the new modes; a copy-up triggered by a user (write,
#    setxattr, link, a creation below a lower-only dir) keeps the original
#    owner; chown/chgrp rules for users.
# 3. Setuid/setgid: cleared when a non-owner writes (write, append,
#    O_TRUNC, truncate, fallocate, copy_file_range) to a root 06777 file,
#    when the owner writes, O_TRUNCs, truncates or chowns its 06755 file,
#    when root chowns; kept when root writes. Each on a lower file (the
#    copy-up path) and an upper file; the mode is checked through the
#    union and on upper. File capabilities (security.capability) are
#    removed by a non-owner's write or O_TRUNC, the owner's truncate,
#    O_TRUNC or chown.
# 4. Symlinks in the branches pointing outside (absolute, ../../, dangling,
#    to dirs): reads follow them as the user (allowed), every change is
#    refused as on overlayfs, O_CREAT through a dangling one creates
#    nothing outside, lchown/utimes/setxattr/link/rename as root act on the
#    link itself; paths with ".." through the mount. A canary directory
#    outside the branches (the links' targets) must be unchanged (strict
#    dump: inode numbers, ctimes, xattrs, contents) and nothing new may
#    appear beside the branches.
# 5. A race (separate mount, cache_timeout=0 so that every path is looked
#    up again): as root, directly on upper, two directories and a file are
#    exchanged with symlinks to a canary outside (absolute and ../../
#    targets) and symlinks are planted where lower-only directories are
#    about to be copied up, over and over, while A and B create, rename,
#    link, chmod, truncate, set xattrs and copy up below them through the
#    union (race.c). The canary must stay unchanged, nothing
#    may appear beside the branches, the daemon must survive and unmount
#    cleanly, the lower branch must be unchanged. SECURITY_RACE_SECONDS
#    (default 4) sets the duration.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon
command -v setpriv >/dev/null || skip "no setpriv"
command -v setfattr >/dev/null || skip "no setfattr"

A=65534 B=1001 G=4242
umask 022
# The helpers must be reachable by the unprivileged users.
mkdir -p "$T/bin"
for h in fsop probe race; do
	if [ -x "$HELPERS/$h" ]; then
		cp "$HELPERS/$h" "$T/bin/$h"
	elif [ "$h" == race ]; then
		cc -O2 -Wall -o "$T/bin/race" "$LIB_DIR/race.c" || die "cannot build helper race"
	else
		die "helper $HELPERS/$h missing"
	fi
done
chmod 0755 "$T/bin" "$T/bin"/*

PROT_HL=$(cat /proc/sys/fs/protected_hardlinks 2>/dev/null || echo 0)
log "fs.protected_hardlinks=$PROT_HL"

# ---------------------------------------------------------------- branches

# mkfo LAYER PATH OWNER MODE [CONTENT]: the parent must exist. Forks only
# where the defaults (root, 0644 under umask 022) do not do: the branches
# hold a few hundred objects.
mkfo() {
	printf '%s' "${5:-data
}" >"$1/$2" || die "cannot create $1/$2"
	[ "$3" == 0:0 ] || chown "$3" "$1/$2"
	[ "$4" == 0644 ] || chmod "$4" "$1/$2"
}
# mkdo LAYER PATH OWNER MODE
mkdo() {
	mkd "$1" "$2"
	chown "$3" "$1/$2"
	chmod "$4" "$1/$2"
}

SUID_CASES="nw na no nt nf nc ow oo ot of oc om rc rw rt rn gx gn gt gf gc gm"
CAP_CASES="nw no ot oo oc"
FCAP=0x0100000200200000000000000000000000000000
# ACL xattr values: version 2, then (tag, perm, id) entries, little-endian.
# tags: 1 user::, 2 user:ID, 4 group::, 0x10 mask, 0x20 other
ACL_DENY_B=0x02000000$(printf '%s' 01000600ffffffff 02000000e9030000 04000400ffffffff 10000400ffffffff 20000400ffffffff)
ACL_GRANT_A=0x02000000$(printf '%s' 01000600ffffffff 02000600feff0000 04000000ffffffff 10000600ffffffff 20000000ffffffff)
ACL_DEF_RWX=0x02000000$(printf '%s' 01000700ffffffff 04000700ffffffff 20000700ffffffff)
# Does the branches' file system take ACLs (and security.* xattrs)?
ACL_OK=0
: >"$T/acl.try"
setfattr -n system.posix_acl_access -v "$ACL_DENY_B" "$T/acl.try" 2>/dev/null && ACL_OK=1
[ "$ACL_OK" == 1 ] || log "no POSIX ACLs on $T: the ACL checks are left out"
setfattr -n security.capability -v "$FCAP" "$T/acl.try" 2>/dev/null ||
	skip "cannot set security.capability on $T"
rm -f "$T/acl.try"
[ "$B" == 1001 ] && [ "$A" == 65534 ] || die "the ACL values above name uids 1001 and 65534"

build() {
	local S=$1 L=$1/l1 U=$1/u X c
	# The side's canary: what the relative links point to (the absolute
	# ones point to $T/canary, shared, so that both sides' trees compare
	# equal). Root's and not writable by the users, so any change there
	# is the daemon's.
	mkdo "$S" canary 0:0 0755
	mkfo "$S" canary/marker 0:0 0644 "canary
"
	mkdo "$S" canary/sub 0:0 0755
	mkfo "$S" canary/sub/marker 0:0 0644 "canary sub
"
	setfattr -n user.canary -v 1 "$S/canary/marker"

	# ro: root's 0755 dir in lower and upper; nothing here may change.
	for X in l u; do
		local D=$L
		[ $X == u ] && D=$U
		mkdo "$D" ro 0:0 0755
		mkfo "$D" "ro/${X}644" 0:0 0644
		mkfo "$D" "ro/${X}600" 0:0 0600
		mkfo "$D" "ro/${X}666" 0:0 0666
		setfattr -n user.k -v v "$D/ro/${X}644"
		mkfo "$D" "ro/${X}own" "$A:$A" 0644
	done

	# POSIX ACLs (raw system.posix_acl_* values: no setfacl needed):
	# a named-user entry that denies B a 0644 file, one that grants A a
	# 0600 file (mode 0660: the mask), in lower and upper; a lower-only
	# world-writable dir whose default ACL (user::rwx group::rwx
	# other::rwx) overrides the umask of whoever creates in it.
	if [ "$ACL_OK" == 1 ]; then
		for X in l u; do
			local D=$L
			[ $X == u ] && D=$U
			mkfo "$D" "ro/${X}acl_deny" 0:0 0644
			setfattr -n system.posix_acl_access -v "$ACL_DENY_B" "$D/ro/${X}acl_deny"
			mkfo "$D" "ro/${X}acl_grant" 0:0 0600
			setfattr -n system.posix_acl_access -v "$ACL_GRANT_A" "$D/ro/${X}acl_grant"
		done
		mkdo "$L" dacl 0:0 0777
		setfattr -n system.posix_acl_default -v "$ACL_DEF_RWX" "$L/dacl"
		# Removed, then made again over the whiteout (built elsewhere
		# than in place by the union).
		mkfo "$L" dacl/wh_f 0:0 0644
		mkfo "$L" dacl/wh_d 0:0 0644
	fi

	# tmp: sticky, in lower and upper, files of A, B and root.
	mkdo "$L" tmp 0:0 1777
	mkdo "$U" tmp 0:0 1777
	mkfo "$L" tmp/a_f "$A:$A" 0666
	mkfo "$L" tmp/b_f "$B:$B" 0666
	mkfo "$L" tmp/r_f 0:0 0666
	mkdo "$L" tmp/a_d "$A:$A" 0777
	mkfo "$U" tmp/ua_f "$A:$A" 0666
	mkfo "$U" tmp/ub_f "$B:$B" 0666

	# pubw: world-writable, not sticky, merged.
	mkdo "$L" pubw 0:0 0777
	mkdo "$U" pubw 0:0 0777
	mkfo "$L" pubw/r666 0:0 0666
	mkfo "$L" pubw/r666x 0:0 0666
	mkfo "$L" pubw/r666h 0:0 0666
	mkfo "$L" pubw/r666t 0:0 0666
	mkfo "$L" pubw/r644 0:0 0644
	mkfo "$L" pubw/rsuid 0:0 06777
	mkfo "$L" pubw/b666 "$B:$B" 0666
	mkfo "$L" pubw/own_a "$A:$A" 0644
	mkfo "$U" pubw/ur666h 0:0 0666
	# lodir: lower only, B's, world-writable: a creation by A copies it up.
	mkdo "$L" lodir "$B:$B" 0777
	mkfo "$L" lodir/f "$B:$B" 0644
	# bro: lower only, B's 0755.
	mkdo "$L" bro "$B:$B" 0755
	# sg: lower only, setgid, group G.
	mkdo "$L" sg "0:$G" 2777

	# suid: one file per case in lower (C_l) and upper (C_u).
	mkdo "$L" suid 0:0 0777
	mkdo "$U" suid 0:0 0777
	for X in l u; do
		local D=$L
		[ $X == u ] && D=$U
		for c in $SUID_CASES; do
			case $c in
			n? | rw | rt) mkfo "$D" "suid/${c}_$X" 0:0 06777 ;;
			rn) mkfo "$D" "suid/${c}_$X" "0:$G" 02767 ;;
			o?) mkfo "$D" "suid/${c}_$X" "$A:$A" 06755 ;;
			rc) mkfo "$D" "suid/${c}_$X" 0:0 06755 ;;
			gx) mkfo "$D" "suid/${c}_$X" 0:0 02777 ;;
			gn | gt | gf | gc) mkfo "$D" "suid/${c}_$X" 0:0 02767 ;;
			gm) mkfo "$D" "suid/${c}_$X" "0:$G" 02767 ;;
			esac
		done
		# late: made setuid after a writer opened it
		mkfo "$D" "suid/late_$X" 0:0 0777
		# pipe: a setuid FIFO of A's (chown clears it on every non-directory)
		mkfifo "$D/suid/pipe_$X"
		chown "$A:$A" "$D/suid/pipe_$X"
		chmod 06755 "$D/suid/pipe_$X"
		# file capabilities (security.capability, CAP_NET_RAW
		# permitted+effective): removed by the same changes
		for c in $CAP_CASES; do
			case $c in
			n?) mkfo "$D" "suid/cap${c}_$X" 0:0 0666 ;;
			o?) mkfo "$D" "suid/cap${c}_$X" "$A:$A" 0666 ;;
			esac
			setfattr -n security.capability -v "$FCAP" "$D/suid/cap${c}_$X"
		done
	done

	# esc: symlinks out of the branches. Relative targets are written
	# so that they reach the same canary from the branch and from the
	# mountpoint (both two levels below the side's root).
	mkdo "$L" esc 0:0 0777
	mkdo "$U" esc 0:0 0777
	mkln "$L" esc/abs "$T/canary/marker"
	mkln "$L" esc/rel ../../canary/marker
	mkln "$L" esc/absdir "$T/canary"
	mkln "$L" esc/reldir ../../canary
	mkln "$L" esc/dangle "$T/canary/new1"
	mkln "$L" esc/reldangle ../../canary/new2
	mkln "$L" esc/rootln "$T/canary/marker"
	mkln "$L" esc/deep/up ../../../canary/sub/marker
	mkln "$U" esc/uabs "$T/canary/marker"
	mkln "$U" esc/udangle "$T/canary/new3"
	# an upper symlink standing where lower has a directory
	mkd "$L" esc/shadow/inner
	mkfo "$L" esc/shadow/f 0:0 0666
	mkln "$U" esc/shadow "$T/canary"
	chmod 0777 "$L/esc/deep"
}

# ---------------------------------------------------------------- callers

# The setpriv arguments for each caller (none for root).
declare -A WHO_ARGS=(
	[root]=''
	[rootnf]="setpriv --bounding-set=-fsetid"
	[a]="setpriv --reuid=$A --regid=$A --clear-groups"
	[b]="setpriv --reuid=$B --regid=$B --clear-groups"
	[bg]="setpriv --reuid=$B --regid=$B --groups=$G"
	[rootg]="setpriv --regid=$G --clear-groups"
)

# _urun SIDE WHO HELPER ARGS...: the helper's answer, as WHO, with the
# side's mountpoint as the cwd. No op used here prints time stamps, so
# unlike dop's answers these need no normalizing.
_urun() {
	local s=$1 who=$2 h=$3 got
	shift 3
	[ -n "${WHO_ARGS[$who]+set}" ] || die "unknown caller $who"
	# shellcheck disable=SC2086
	got=$(tin "$T/$s/mnt" ${WHO_ARGS[$who]} "$T/bin/$h" "$@" 2>&1)
	[ $? -eq 124 ] && got="TIMEOUT after ${UM_TIMEOUT}s"
	printf '%s\n' "$got"
}

# uop LABEL WANT WHO HELPER ARGS...: dop with a caller and a helper
# (fsop or probe). WANT: exact, "~ERE", or "-" (both sides agree).
uop() {
	local label=$1 want=$2 who=$3 h=$4 r u pid
	shift 4
	# The sides are independent: both at once halves the run time.
	_urun ref "$who" "$h" "$@" >"$T/uop.ref" &
	pid=$!
	_urun un "$who" "$h" "$@" >"$T/uop.un"
	wait "$pid"
	IFS= read -r r <"$T/uop.ref"
	IFS= read -r u <"$T/uop.un"
	dcheck "$label" "$want" "$r" "$u" "$who: $h $*"
}

# The upper on disk, on both sides: "TYPEMODE UID:GID" as stat -c '%A %u:%g'.
_up_stat_is() {
	local s
	s=$(stat -c '%A %u:%g' "$1" 2>&1)
	[ "$s" == "$2" ] && return 0
	echo "$s"
	return 1
}
up_stat() { _up_each "$1" "'$3'" _up_stat_is "$2" "$3"; }

# side_snap LABEL REL: strict dumps of u/REL on both sides, kept by name.
# The directory's own line and its trusted.* xattrs are left out: both
# kernel overlayfs and the union record markers on a directory they look
# into (origin, impure), which changes its ctime; everything below it must
# stay exactly as it was.
_snapf() { grep -v -e '^\. ' -e '^  x \. trusted\.' "$1.raw" >"$1"; }
side_snap() {
	local s
	for s in $DIFF_SIDES; do
		tree_dump "$T/$s/u/$2" "$T/$s.snap.$1.raw" -s || die "cannot dump $T/$s/u/$2"
		_snapf "$T/$s.snap.$1"
	done
}
# side_snap_same LABEL REL WHAT: compare with the dumps side_snap took.
side_snap_same() {
	local s
	for s in $DIFF_SIDES; do
		tree_dump "$T/$s/u/$2" "$T/$s.snap.$1.after.raw" -s
		_snapf "$T/$s.snap.$1.after"
		expect_same_file "$s side: $3" "$T/$s.snap.$1" "$T/$s.snap.$1.after"
	done
}

# outside_same LABEL: the canaries as built, nothing new beside the
# branches, no "new*" (the names the links and paths aimed at) anywhere.
outside_same() {
	local s got
	tree_dump "$T/canary" "$T/canary.after" -s
	expect_same_file "$1: the shared canary (absolute links) is unchanged" \
		"$T/canary.before" "$T/canary.after"
	expect_eq "$1: no name aimed at by a link or a .. path exists" "" \
		"$(ls -d "$T"/new* "$T"/canary/new* "$T"/*/new* "$T"/*/canary/new* 2>/dev/null)"
	for s in $DIFF_SIDES; do
		tree_dump "$T/$s/canary" "$T/$s.canary.after" -s
		expect_same_file "$1: $s side: the canary outside the branches is unchanged" \
			"$T/$s.canary.before" "$T/$s.canary.after"
		got=$(cd "$T/$s" && ls -A | LC_ALL=C sort | tr '\n' ' ')
		expect_eq "$1: $s side: nothing new beside the branches" "canary l1 l2 l3 mnt u w " "$got"
	done
}

# The shared canary, built like a side's.
mkdo "$T" canary 0:0 0755
mkfo "$T" canary/marker 0:0 0644 "canary
"
mkdo "$T" canary/sub 0:0 0755
mkfo "$T" canary/sub/marker 0:0 0644 "canary sub
"
setfattr -n user.canary -v 1 "$T/canary/marker"
tree_dump "$T/canary" "$T/canary.before" -s || die "cannot dump the canary"

diff_setup build
for s in $DIFF_SIDES; do
	tree_dump "$T/$s/canary" "$T/$s.canary.before" -s || die "cannot dump the canary"
done

if ! selftest; then
	line=$(mount_line "$T/un/mnt")
	expect_match "the union (mounted as root, no options) has allow_other" '[,[:space:]]allow_other[,[:space:]]' "$line"
	expect_match "the union has default_permissions" '[,[:space:]]default_permissions[,[:space:]]' "$line"
fi

# ---------------------------------------------------------------- 1. refusals

side_snap ro ro
side_snap tmp tmp
ACL=hex:02000000$(printf '%s' 01000600ffffffff 04000600ffffffff 10000600ffffffff 20000600ffffffff)

# A gets the whole list, B (the same position: "other" for root's files)
# the main calls, to show that the answers do not depend on the uid.
for who in a b; do
	for X in l u; do
		f=ro/${X}644
		uop "$who $f: read allowed" "OK data\x0a" "$who" fsop read "$f"
		uop "$who $f: write" EACCES "$who" fsop write "$f" 0 x
		uop "$who $f: O_TRUNC" EACCES "$who" probe open "$f" wt
		uop "$who $f: truncate" EACCES "$who" fsop truncate "$f" 0
		uop "$who $f: chmod" EPERM "$who" fsop chmod "$f" 0666
		uop "$who $f: utimes to a time" EPERM "$who" fsop utimens "$f" 5 5
		uop "$who $f: setxattr user.*" EACCES "$who" fsop setxattr "$f" user.x 1
		uop "$who $f: unlink (root 0755 dir)" EACCES "$who" fsop unlink "$f"
		if [ "$PROT_HL" == 1 ]; then
			uop "$who $f: link (protected_hardlinks)" EPERM "$who" fsop link "$f" "pubw/hl_$who$X"
		fi
		uop "$who ro/${X}600: read" EACCES "$who" fsop read "ro/${X}600"
		f=ro/${X}666
		uop "$who $f: utimes to a time, with write access" EPERM "$who" fsop utimens "$f" 7 7
		uop "$who $f: set a POSIX ACL (not the owner)" EPERM "$who" fsop setxattr "$f" system.posix_acl_access "$ACL"
		[ $who == a ] || continue
		f=ro/${X}644
		uop "$who $f: append" EACCES "$who" fsop append "$f" x
		uop "$who $f: O_CREAT of the existing file for writing" EACCES "$who" probe open "$f" wc
		uop "$who $f: chown to self" EPERM "$who" fsop chown "$f" "$A" "$A"
		uop "$who $f: utimes to now" EACCES "$who" fsop utimens "$f" now now
		uop "$who $f: removexattr user.*" EACCES "$who" fsop removexattr "$f" user.k
		uop "$who $f: setxattr trusted.*" EPERM "$who" fsop setxattr "$f" trusted.x 1
		uop "$who $f: setxattr security.*" EPERM "$who" fsop setxattr "$f" security.x 1
		uop "$who $f: fchmod (O_RDONLY fd)" EPERM "$who" fsop fchmod-ro "$f" 0666
		uop "$who $f: fchown (O_RDONLY fd)" EPERM "$who" fsop fchown-ro "$f" "$A" "$A"
		uop "$who $f: futimens now (O_RDONLY fd)" EACCES "$who" fsop futimens-ro "$f" now now
		uop "$who $f: fsetxattr user.* (O_RDONLY fd)" EACCES "$who" fsop fsetxattr-ro "$f" user.x 1
		uop "$who $f: rename out (root 0755 dir)" EACCES "$who" fsop rename "$f" "pubw/stolen_$who$X"
		uop "$who ro/${X}600: O_RDONLY|O_TRUNC" EACCES "$who" probe open "ro/${X}600" rt
		f=ro/${X}666
		uop "$who $f: chmod, with write access" EPERM "$who" fsop chmod "$f" 0777
		uop "$who $f: chgrp to own group" EPERM "$who" fsop chown "$f" -1 "$A"
		uop "$who $f: setxattr trusted.*, with write access" EPERM "$who" fsop setxattr "$f" trusted.x 1
		uop "$who $f: security.capability, with write access" EPERM "$who" fsop setxattr "$f" security.capability hex:0100000200000000000000000000000000000000
		uop "$who $f: mknod over it" EEXIST "$who" fsop mknod "$f" fifo
	done
	own=pubw/own_a
	[ $who == b ] && own=pubw/b666
	uop "$who: create in root's 0755 dir" EACCES "$who" fsop create "ro/new_$who" 0644
	uop "$who: mkdir in root's 0755 dir" EACCES "$who" fsop mkdir "ro/nd_$who" 0755
	uop "$who: link (own file) into root's 0755 dir" EACCES "$who" fsop link "$own" "ro/hl_$who"
	uop "$who: mknod a character device" EPERM "$who" fsop mknod "pubw/c_$who" chr 1 3
	uop "$who tmp: unlink root's file" EPERM "$who" fsop unlink tmp/r_f
	[ $who == a ] || continue
	uop "$who ro/lown: read of A's file" "OK data\x0a" "$who" fsop read ro/lown
	uop "$who: O_CREAT (no O_EXCL) in root's 0755 dir" EACCES "$who" probe open "ro/new2_$who" wc
	uop "$who: mkfifo in root's 0755 dir" EACCES "$who" fsop mknod "ro/np_$who" fifo
	uop "$who: symlink in root's 0755 dir" EACCES "$who" fsop symlink x "ro/ns_$who"
	uop "$who: rename into root's 0755 dir" EACCES "$who" fsop rename pubw/b666 "ro/mv_$who"
	uop "$who: create in the union's root" EACCES "$who" fsop create "new_$who" 0644
	uop "$who: chmod root's dir" EPERM "$who" fsop chmod ro 0777
	uop "$who: setxattr user.* on root's 0755 dir" EACCES "$who" fsop setxattr ro user.x 1
	uop "$who: rmdir root's dir" EACCES "$who" fsop rmdir ro
	uop "$who: rename root's dir" EACCES "$who" fsop rename ro "pubw/ro_$who"
	uop "$who: mknod a block device" EPERM "$who" fsop mknod "pubw/b_$who" blk 7 0
	uop "$who tmp: setxattr user.* on a sticky dir not owned" EPERM "$who" fsop setxattr tmp user.x 1
	uop "$who tmp: rename root's file" EPERM "$who" fsop rename tmp/r_f "tmp/r_$who"
done
uop "b tmp: unlink A's lower file" EPERM b fsop unlink tmp/a_f
uop "b tmp: unlink A's upper file" EPERM b fsop unlink tmp/ua_f
uop "b tmp: rename A's lower file" EPERM b fsop rename tmp/a_f tmp/b_new
uop "b tmp: rename A's upper file" EPERM b fsop rename tmp/ua_f tmp/b_new
uop "b tmp: rename own lower file over A's" EPERM b fsop rename tmp/b_f tmp/a_f
uop "b tmp: rename own upper file over A's" EPERM b fsop rename tmp/ub_f tmp/ua_f
uop "b tmp: exchange own file with A's" EPERM b fsop rename tmp/ub_f tmp/a_f exchange
uop "b tmp: rmdir A's dir" EPERM b fsop rmdir tmp/a_d
uop "a tmp: unlink B's lower file" EPERM a fsop unlink tmp/b_f
uop "a tmp: rename B's upper file" EPERM a fsop rename tmp/ub_f tmp/a_new

if [ "$ACL_OK" == 1 ]; then
	for X in l u; do
		uop "ro/${X}acl_deny: A (other) reads" "OK data\x0a" a fsop read "ro/${X}acl_deny"
		uop "ro/${X}acl_deny: B, denied by a named-user ACL entry, reads" EACCES b fsop read "ro/${X}acl_deny"
		uop "ro/${X}acl_grant: A, granted by a named-user ACL entry, reads a 0660 root:root file" "OK data\x0a" a fsop read "ro/${X}acl_grant"
		uop "ro/${X}acl_grant: B reads" EACCES b fsop read "ro/${X}acl_grant"
	done
fi

# Nothing of the above may have reached upper.
side_snap_same ro ro "upper's ro/ is exactly as before the refusals (inodes, ctimes, xattrs, contents)"
side_snap_same tmp tmp "upper's tmp/ is exactly as before the refusals"
for p in ro/l644 ro/l600 ro/l666 ro/lown tmp/a_f tmp/b_f tmp/r_f tmp/a_d pubw/b666 pubw/own_a; do
	up_absent "refused: nothing copied up" "$p"
done
for p in pubw/stolen_al pubw/hl_al pubw/c_a pubw/b_a ro/new_a new_a; do
	up_absent "refused: nothing created" "$p"
done
outside_same "after the refusals"

# ---------------------------------------------------------------- 2. ownership

for who in a b; do
	id=$A
	[ $who == b ] && id=$B
	uop "$who creates a file" OK "$who" fsop create "pubw/${who}_f" 0644
	uop "$who creates a dir" OK "$who" fsop mkdir "pubw/${who}_d" 0755
	uop "$who creates a symlink" OK "$who" fsop symlink target "pubw/${who}_l"
	uop "$who creates a fifo" OK "$who" fsop mknod "pubw/${who}_p" fifo
	uop "$who creates a socket" OK "$who" fsop mknod "pubw/${who}_s" sock
	uop "$who creates a setuid file of its own" OK "$who" fsop create "pubw/${who}_suid" 4755
	uop "$who creates in its new dir" OK "$who" fsop create "pubw/${who}_d/f" 0600
	uop "$who's file: owner" "OK f 0644 $id:$id 0 1" root fsop stat "pubw/${who}_f"
	uop "$who's dir: owner" "~OK d 0755 $id:$id [0-9]+ 2" root fsop stat "pubw/${who}_d"
	uop "$who's symlink: owner" "OK l 0777 $id:$id 6 1" root fsop stat "pubw/${who}_l"
	uop "$who's fifo: owner" "OK p 0644 $id:$id 0 1" root fsop stat "pubw/${who}_p"
	uop "$who's socket: owner" "OK s 0644 $id:$id 0 1" root fsop stat "pubw/${who}_s"
	uop "$who's setuid file keeps S_ISUID" "OK f 4755 $id:$id 0 1" root fsop stat "pubw/${who}_suid"
	up_stat "$who's file on upper" "pubw/${who}_f" "-rw-r--r-- $id:$id"
	up_stat "$who's dir on upper" "pubw/${who}_d" "drwxr-xr-x $id:$id"
	up_stat "$who's file in its dir on upper" "pubw/${who}_d/f" "-rw------- $id:$id"
	up_stat "$who's symlink on upper" "pubw/${who}_l" "lrwxrwxrwx $id:$id"
	up_stat "$who's fifo on upper" "pubw/${who}_p" "prw-r--r-- $id:$id"
	up_stat "$who's socket on upper" "pubw/${who}_s" "srw-r--r-- $id:$id"
	up_stat "$who's setuid file on upper" "pubw/${who}_suid" "-rwsr-xr-x $id:$id"
	uop "$who gives its file away" EPERM "$who" fsop chown "pubw/${who}_f" 0 -1
	uop "$who chgrps its file to a group it is not in" EPERM "$who" fsop chown "pubw/${who}_f" -1 "$G"
done
uop "a creates 0600" OK a fsop create pubw/a_secret 0600
uop "b reads A's 0600 file" EACCES b fsop read pubw/a_secret
uop "b chmods A's file" EPERM b fsop chmod pubw/a_secret 0644
uop "b unlinks A's file (not sticky)" OK b fsop unlink pubw/a_secret
uop "bg chgrps its file to its supplementary group" OK bg fsop chown pubw/b_f -1 "$G"
uop "bg's file: group changed" "OK f 0644 $B:$G 0 1" root fsop stat pubw/b_f
up_stat "bg's chgrp on upper" pubw/b_f "-rw-r--r-- $B:$G"
# Root under another group: the daemon makes each object as itself
# (group 0) and must hand it to the caller's group, setuid/setgid kept.
uop "root with gid $G creates" OK rootg fsop create pubw/rg_f 0644
uop "root with gid $G creates a 06755 file" OK rootg fsop create pubw/rg_s 6755
uop "root with gid $G mkdirs" OK rootg fsop mkdir pubw/rg_d 0755
uop "root with gid $G's file is 0:$G" "OK f 0644 0:$G 0 1" root fsop stat pubw/rg_f
uop "root with gid $G's 06755 file keeps both bits" "OK f 6755 0:$G 0 1" root fsop stat pubw/rg_s
uop "root with gid $G's dir is 0:$G" "~OK d 0755 0:$G [0-9]+ 2" root fsop stat pubw/rg_d
up_stat "root with gid $G's file on upper" pubw/rg_f "-rw-r--r-- 0:$G"
up_stat "root with gid $G's 06755 file on upper" pubw/rg_s "-rwsr-sr-x 0:$G"
up_stat "root with gid $G's dir on upper" pubw/rg_d "drwxr-xr-x 0:$G"

uop "a creates in B's lower-only 0777 dir" OK a fsop create lodir/a_f 0644
uop "a mkdirs in B's lower-only dir" OK a fsop mkdir lodir/a_d 0700
up_stat "copied-up parent keeps B as owner" lodir "drwxrwxrwx $B:$B"
up_stat "A's file in it" lodir/a_f "-rw-r--r-- $A:$A"
up_stat "A's dir in it" lodir/a_d "drwx------ $A:$A"
up_absent "B's lower file beside it not copied up" lodir/f
uop "a creates in B's 0755 dir" EACCES a fsop create bro/a_f 0644
up_absent "refused creation: B's dir not copied up" bro
uop "b creates in its own lower-only 0755 dir" OK b fsop create bro/b_f 0644
up_stat "copied-up parent keeps B" bro "drwxr-xr-x $B:$B"

uop "a creates in the setgid dir" OK a fsop create sg/a_f 0644
uop "a creates a setgid file in it (not in the group)" OK a fsop create sg/a_fs 2755
uop "a mkdirs in it" OK a fsop mkdir sg/a_d 0755
uop "a mkdirs below that" OK a fsop mkdir sg/a_d/sub 0750
uop "a symlinks in it" OK a fsop symlink t sg/a_l
uop "a mkfifos in it" OK a fsop mknod sg/a_p fifo
uop "bg creates a setgid file in it (in the group)" OK bg fsop create sg/g_fs 2755
uop "a's file gets the dir's group" "OK f 0644 $A:$G 0 1" root fsop stat sg/a_f
uop "a's S_ISGID dropped (not a member)" "OK f 0755 $A:$G 0 1" root fsop stat sg/a_fs
uop "a's dir gets the group and S_ISGID" "~OK d 2755 $A:$G [0-9]+ 3" root fsop stat sg/a_d
uop "and passes them on" "~OK d 2750 $A:$G [0-9]+ 2" root fsop stat sg/a_d/sub
uop "bg's S_ISGID kept (a member)" "OK f 2755 $B:$G 0 1" root fsop stat sg/g_fs
up_stat "setgid dir copied up as root's" sg "drwxrwsrwx 0:$G"
up_stat "a's file on upper" sg/a_f "-rw-r--r-- $A:$G"
up_stat "a's no-longer-setgid file on upper" sg/a_fs "-rwxr-xr-x $A:$G"
up_stat "a's dir on upper" sg/a_d "drwxr-sr-x $A:$G"
up_stat "a's subdir on upper" sg/a_d/sub "drwxr-s--- $A:$G"
up_stat "a's symlink on upper" sg/a_l "lrwxrwxrwx $A:$G"
up_stat "a's fifo on upper" sg/a_p "prw-r--r-- $A:$G"
up_stat "bg's setgid file on upper" sg/g_fs "-rwxr-sr-x $B:$G"

if [ "$ACL_OK" == 1 ]; then
	# The default ACL, not the umask, decides the new modes.
	umask 077
	uop "a creates 0666 under a default ACL, umask 077" OK a fsop create dacl/a_f 0666
	uop "a mkdirs 0777 under a default ACL, umask 077" OK a fsop mkdir dacl/a_d 0777
	umask 022
	uop "a's file: the default ACL's mode" "OK f 0666 $A:$A 0 1" root fsop stat dacl/a_f
	uop "a's dir: the default ACL's mode" "~OK d 0777 $A:$A [0-9]+ 2" root fsop stat dacl/a_d
	uop "a's dir inherits the default ACL" "OK system.posix_acl_default" root fsop listxattr dacl/a_d
	up_stat "the dir with a default ACL copied up as root's" dacl "drwxrwxrwx 0:0"
	# The same over whiteouts.
	uop "root removes the lower dacl/wh_f" OK root fsop unlink dacl/wh_f
	uop "root removes the lower dacl/wh_d" OK root fsop unlink dacl/wh_d
	umask 077
	uop "a creates 0666 over a whiteout under a default ACL, umask 077" OK a fsop create dacl/wh_f 0666
	uop "a mkdirs 0777 over a whiteout under a default ACL, umask 077" OK a fsop mkdir dacl/wh_d 0777
	umask 022
	uop "a's file over a whiteout: the default ACL's mode" "OK f 0666 $A:$A 0 1" root fsop stat dacl/wh_f
	uop "a's dir over a whiteout: the default ACL's mode" "~OK d 0777 $A:$A [0-9]+ 2" root fsop stat dacl/wh_d
	uop "a's dir over a whiteout inherits the default ACL" "OK system.posix_acl_default" root fsop listxattr dacl/wh_d
fi

uop "a writes root's 0666 lower file" OK a fsop write pubw/r666 0 A
up_stat "copy-up by A keeps root as owner" pubw/r666 "-rw-rw-rw- 0:0"
uop "a writes B's 0666 lower file" OK a fsop write pubw/b666 0 A
up_stat "copy-up by A keeps B as owner" pubw/b666 "-rw-rw-rw- $B:$B"
uop "b sets user.* on root's 0666 lower file" OK b fsop setxattr pubw/r666x user.b 1
up_stat "copy-up by setxattr keeps root" pubw/r666x "-rw-rw-rw- 0:0"
uop "b utimes root's 0666 file to now" OK b fsop utimens pubw/r666t now now
up_stat "copy-up by utimes keeps root" pubw/r666t "-rw-rw-rw- 0:0"
uop "a chmods its own lower file" OK a fsop chmod pubw/own_a 0600
up_stat "copy-up by chmod keeps A" pubw/own_a "-rw------- $A:$A"
if [ "$PROT_HL" == 1 ]; then
	uop "a links root's 0666 lower file (readable and writable)" OK a fsop link pubw/r666h pubw/a_hl
	uop "a links root's 0666 upper file" OK a fsop link pubw/ur666h pubw/a_hl2
	uop "a links root's 0644 file" EPERM a fsop link pubw/r644 pubw/a_hl3
	uop "a links root's setuid 06777 file" EPERM a fsop link pubw/rsuid pubw/a_hl4
	uop "a links its own 0600 file" OK a fsop link pubw/own_a pubw/a_hl5
	up_stat "link copy-up keeps root" pubw/a_hl "-rw-rw-rw- 0:0"
	up_absent "refused link: nothing copied up" pubw/r644
	up_absent "refused link: setuid file not copied up" pubw/rsuid
fi
dcmp "after the ownership checks"

# ---------------------------------------------------------------- 3. setuid

for X in l u; do
	for c in $SUID_CASES; do
		f=suid/${c}_$X
		case $c in
		nw) uop "$f: A writes root's 06777 file" OK a fsop write "$f" 0 x ;;
		na) uop "$f: A appends" OK a fsop append "$f" x ;;
		no) uop "$f: A opens it O_TRUNC" OK a probe open "$f" wt ;;
		nt) uop "$f: A truncates" OK a fsop truncate "$f" 1 ;;
		nf) uop "$f: A fallocates" OK a fsop fallocate "$f" 0 0 100 ;;
		nc) uop "$f: A copy_file_ranges into it" "OK 5" a fsop copy_file_range ro/l644 "$f" 5 ;;
		ow) uop "$f: the owner writes its 06755 file" OK a fsop write "$f" 0 x ;;
		oo) uop "$f: the owner opens it O_TRUNC" OK a probe open "$f" wt ;;
		ot) uop "$f: the owner truncates" OK a fsop truncate "$f" 0 ;;
		of) uop "$f: the owner ftruncates" OK a fsop ftruncate "$f" 2 ;;
		oc) uop "$f: the owner chowns to itself" OK a fsop chown "$f" "$A" "$A" ;;
		om) uop "$f: the owner chowns -1 -1" OK a fsop chown "$f" -1 -1 ;;
		rc) uop "$f: root chowns root's 06755 file" OK root fsop chown "$f" 0 0 ;;
		rw) uop "$f: root writes root's 06777 file" OK root fsop write "$f" 0 x ;;
		rt) uop "$f: root without CAP_FSETID opens root's 06777 file O_TRUNC" OK rootnf probe open "$f" wt ;;
		rn) uop "$f: root without CAP_FSETID (nor in the group) writes its 02767 file" OK rootnf fsop write "$f" 0 x ;;
		gx) uop "$f: A writes root's 02777 file" OK a fsop write "$f" 0 x ;;
		gn) uop "$f: A (not in the group) writes root's 02767 file" OK a fsop write "$f" 0 x ;;
		gt) uop "$f: A (not in the group) truncates root's 02767 file" OK a fsop truncate "$f" 1 ;;
		gf) uop "$f: A (not in the group) fallocates root's 02767 file" OK a fsop fallocate "$f" 0 0 100 ;;
		gc) uop "$f: A (not in the group) copy_file_ranges into it" "OK 5" a fsop copy_file_range ro/l644 "$f" 5 ;;
		gm) uop "$f: BG (in the group) writes its group's 02767 file" OK bg fsop write "$f" 0 x ;;
		esac
		# The mode alone, before anything asks for more: a statx of
		# STATX_MODE is answered from the kernel's cache, which no reply
		# to an OPEN refreshes.
		case $c in
		no | oo | rt)
			dcheck "$f: the mode alone, read from the kernel's cache at once" - \
				"$(stat -c %a "$T/ref/mnt/$f" 2>&1)" "$(stat -c %a "$T/un/mnt/$f" 2>&1)" "stat -c %a"
			;;
		esac
		case $c in
		n? | gx) mode=0777 own=0:0 want="-rwxrwxrwx 0:0" ;;
		o?) mode=0755 own=$A:$A want="-rwxr-xr-x $A:$A" ;;
		rc) mode=0755 own=0:0 want="-rwxr-xr-x 0:0" ;;
		rw) mode=6777 own=0:0 want="-rwsrwsrwx 0:0" ;;
		rt) mode=0777 own=0:0 want="-rwxrwxrwx 0:0" ;;
		rn) mode=0767 own=0:$G want="-rwxrw-rwx 0:$G" ;;
		gn | gt | gf | gc) mode=- ;; # S_ISGID without group-exec: dropped since Linux 6.2
		gm) mode=2767 own=0:$G want="-rwxrwSrwx 0:$G" ;;
		esac
		if [ "$mode" == - ]; then
			uop "$f: mode afterwards (as kernel overlayfs)" - root fsop stat "$f"
		else
			uop "$f: mode afterwards" "~OK f $mode $own [0-9]+ 1" root fsop stat "$f"
			up_stat "$f: mode on upper" "$f" "$want"
		fi
	done
done
for X in l u; do
	for c in $CAP_CASES; do
		f=suid/cap${c}_$X
		uop "$f: has a file capability" "OK \x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" root fsop getxattr "$f" security.capability
		case $c in
		nw) uop "$f: A writes root's 0666 file with a capability" OK a fsop write "$f" 0 x ;;
		no) uop "$f: A opens it O_TRUNC" OK a probe open "$f" wt ;;
		ot) uop "$f: the owner truncates" OK a fsop truncate "$f" 0 ;;
		oo) uop "$f: the owner opens it O_TRUNC" OK a probe open "$f" wt ;;
		oc) uop "$f: the owner chowns to itself" OK a fsop chown "$f" "$A" "$A" ;;
		esac
		uop "$f: the capability is gone" ENODATA root fsop getxattr "$f" security.capability
	done
done
# late_suid SIDE X: A opens suid/late_X for appending; root then makes it
# 06777 through the mount; A writes through the descriptor it opened
# before. Each step waits for the one before through a fifo, with
# timeouts, so a failed step cannot hang the test.
late_suid() {
	local m=$T/$1/mnt f=suid/late_$2 pid
	rm -f "$T/late.1" "$T/late.2"
	mkfifo -m 0666 "$T/late.1" "$T/late.2"
	# shellcheck disable=SC2016
	timeout 20 ${WHO_ARGS[a]} bash -c 'exec 3>>"$1" && echo >"$2" && read -r _ <"$3" && printf x >&3' \
		_ "$m/$f" "$T/late.1" "$T/late.2" &
	pid=$!
	timeout 10 cat "$T/late.1" >/dev/null
	chmod 06777 "$m/$f"
	timeout 10 bash -c 'echo >"$1"' _ "$T/late.2"
	wait "$pid"
}
# The kernel clears them itself at each write, or (HANDLE_KILLPRIV_V2)
# leaves it to the daemon, which must then look at every write, not only
# the first after an open of a file that was setuid then.
for X in l u; do
	late_suid ref $X
	late_suid un $X
	uop "suid/late_$X: made setuid after A opened it; A's write clears it" \
		"~OK f 0777 0:0 [0-9]+ 1" root fsop stat "suid/late_$X"
	up_stat "suid/late_$X: mode on upper" "suid/late_$X" "-rwxrwxrwx 0:0"
done
for X in l u; do
	uop "suid/pipe_$X: the owner chowns its setuid FIFO -1 -1" OK a fsop chown "suid/pipe_$X" -1 -1
	uop "suid/pipe_$X: mode afterwards" "OK p 0755 $A:$A 0 1" root fsop stat "suid/pipe_$X"
	up_stat "suid/pipe_$X: mode on upper" "suid/pipe_$X" "prwxr-xr-x $A:$A"
done
dcmp "after the setuid checks"

# ---------------------------------------------------------------- 4. symlinks out

for who in a b; do
	uop "$who reads through an absolute link out (the kernel follows it as the user)" "OK canary\x0a" "$who" fsop read esc/abs
	uop "$who reads through a ../../ link out" "OK canary\x0a" "$who" fsop read esc/rel
	uop "$who writes through the absolute link" EACCES "$who" fsop write esc/abs 0 x
	uop "$who O_CREATs through a dangling lower link" EACCES "$who" probe open esc/dangle wc
	uop "$who creates through a link to a dir" EACCES "$who" fsop create esc/absdir/new4 0644
	uop "$who lchowns root's link" EPERM "$who" fsop chown esc/abs "$A" "$A"
	[ $who == a ] || continue
	uop "$who reads through ../../../ from a subdir" "OK canary\x20sub\x0a" "$who" fsop read esc/deep/up
	uop "$who writes through an upper link" EACCES "$who" fsop write esc/uabs 0 x
	uop "$who truncates through the relative link" EACCES "$who" fsop truncate esc/rel 0
	uop "$who O_TRUNCs through the absolute link" EACCES "$who" probe open esc/abs wt
	uop "$who chmods through the link (following)" EPERM "$who" probe chmod esc/abs 666
	uop "$who O_CREATs through a dangling ../../ link" EACCES "$who" probe open esc/reldangle wc
	uop "$who O_CREATs through a dangling upper link" EACCES "$who" probe open esc/udangle wc
	uop "$who O_CREAT|O_EXCL on a dangling link" EEXIST "$who" fsop create esc/dangle 0644
	uop "$who creates through a ../../ link to a dir" EACCES "$who" fsop create esc/reldir/new5 0644
	uop "$who mkdirs through a link to a dir" EACCES "$who" fsop mkdir esc/absdir/nd 0755
	uop "$who creates through an upper link shadowing a lower dir" EACCES "$who" fsop create esc/shadow/new9 0644
	uop "$who writes a name of the shadowed lower dir" ENOENT "$who" fsop write esc/shadow/f 0 x
	uop "$who sets user.* on a link" EPERM "$who" fsop setxattr esc/abs user.x 1
	uop "$who utimes a link to a time" EPERM "$who" fsop utimens esc/abs 5 5
	uop "$who creates via esc/../../canary" EACCES "$who" probe creat esc/../../canary/new6
	uop "$who creates via a dir link and .." EACCES "$who" probe creat esc/absdir/../new7
	uop "$who creates via deep/../../../" EACCES "$who" probe creat esc/deep/../../../new8
done
if [ "$PROT_HL" == 1 ]; then
	uop "a hard-links root's symlink" EPERM a fsop link esc/abs esc/a_hl
fi
uop "a renames root's link in a 0777 dir" OK a fsop rename esc/reldangle esc/a_moved
uop "the moved link still points where it did" "OK ../../canary/new2" root fsop readlink esc/a_moved
uop "root lchowns a ../../ link" OK root fsop chown esc/rel "$B" "$B"
uop "root utimes a dangling link" OK root fsop utimens esc/dangle 5 5
uop "root sets trusted.* on a link" - root fsop setxattr esc/rootln trusted.t 1
uop "root hard-links an upper link" OK root fsop link esc/uabs esc/uabs_hl
uop "root unlinks a dangling upper link" OK root fsop unlink esc/udangle
uop "root truncates a lower dir shadowed by an upper link" EISDIR root fsop truncate esc/shadow 0
up_stat "lchown copied up the link itself" esc/rel "lrwxrwxrwx $B:$B"
up_type "utimes copied up the link itself" esc/dangle "symbolic link"
up_type "the renamed link on upper" esc/a_moved "symbolic link"
up_absent "refused lchown: nothing copied up" esc/abs
outside_same "after the symlink checks"
dcmp "after the symlink checks"
dremount "after a remount"

diff_end
outside_same "after unmount"

# ---------------------------------------------------------------- 5. race

RS=$T/race
mkdir -p "$RS"/{l1,u,w,mnt}
# The canary holds the names the workers use, so that a call the daemon
# made through a link would find its target; root's 0755/0644, so the
# users cannot change it themselves when the kernel follows a swapped-in
# link for them.
mkdir -p "$RS/canary/sub" "$RS/canary/sub2" "$RS"/{l1,u}/r/sub "$RS/l1/r/sub2" "$RS"/l1/r/cd{0..49}
for i in {0..49}; do echo "lower cd$i" >"$RS/l1/r/cd$i/f"; done
for i in {0..19}; do
	echo "canary $i" >"$RS/canary/lf$i"
	echo "lower $i" >"$RS/l1/r/lf$i"
done
for i in {0..9}; do
	echo "canary u$i" >"$RS/canary/uf$i"
	echo "canary sub $i" >"$RS/canary/sub/lf$i"
	echo "lower sub $i" >"$RS/l1/r/sub/lf$i"
	echo "lower sub2 $i" >"$RS/l1/r/sub2/f$i"
	echo "upper $i" >"$RS/u/r/uf$i"
done
echo marker >"$RS/canary/marker"
chmod 0755 "$RS/canary" "$RS/canary/sub" "$RS/canary/sub2"
chmod 0777 "$RS"/{l1,u}/r "$RS"/{l1,u}/r/sub "$RS/l1/r/sub2" "$RS"/l1/r/cd*
chmod 0666 "$RS"/l1/r/lf* "$RS"/l1/r/sub/lf* "$RS"/l1/r/sub2/f* "$RS"/u/r/uf*
ln -s "$RS/canary" "$RS/u/r.link"
ln -s ../../canary/sub "$RS/u/r/sub.link"
ln -s "$RS/canary/uf0" "$RS/u/r/uf0.link"
tree_dump "$RS/canary" "$T/race.canary.before" -s || die "cannot dump the race canary"
snapshot "$RS/l1" "$T/race.l1.before"

SECS=${SECURITY_RACE_SECONDS:-4}
um_mount "$RS/mnt" "upperdir=$RS/u,workdir=$RS/w,$(lowerdir_opt "$RS/l1"),cache_timeout=0" || finish
# The swapper acts on upper by directory fds, never through the links.
tl $((SECS + 30)) "$T/bin/race" swap "$SECS" x "$RS/u" r r.link x "$RS/u/r" sub sub.link x "$RS/u/r" uf0 uf0.link \
	p "$RS/u/r" sub2 ../../canary/sub2 p "$RS/u/r" 'cd#' ../../canary/sub2 >"$T/race.swap.out" 2>&1 &
swapper=$!
tl $((SECS + 30)) setpriv --reuid=$A --regid=$A --clear-groups "$T/bin/race" work "$SECS" "$RS/mnt/r" \
	>"$T/race.a.out" 2>&1 &
worker_a=$!
tl $((SECS + 30)) setpriv --reuid=$B --regid=$B --clear-groups "$T/bin/race" work "$SECS" "$RS/mnt/r" \
	>"$T/race.b.out" 2>&1 &
worker_b=$!
wait $swapper
rc_s=$?
wait $worker_a
rc_a=$?
wait $worker_b
rc_b=$?
log "swapper: $(cat "$T/race.swap.out"); A: $(cat "$T/race.a.out"); B: $(cat "$T/race.b.out")"
expect_match "race: the swapper ran (status $rc_s)" '^OK [1-9][0-9]* [1-9][0-9]*$' "$(cat "$T/race.swap.out")"
# Kernel overlayfs mostly answers ESTALE once its upper is changed
# underneath: in the self-test only the attempts count.
want_ok='[1-9][0-9]*'
selftest && want_ok='[0-9]+'
expect_match "race: A's calls ran, some succeeded (status $rc_a)" "^OK [1-9][0-9]* $want_ok\$" "$(cat "$T/race.a.out")"
expect_match "race: B's calls ran, some succeeded (status $rc_b)" "^OK [1-9][0-9]* $want_ok\$" "$(cat "$T/race.b.out")"
if daemon_alive "$RS/mnt"; then
	pass "race: the daemon survived"
else
	fail "race: the daemon died during the race; its log:"
	daemon_log "$RS/mnt"
fi
expect_eq "race: the swaps left upper as it was" "$RS/canary ../../canary/sub $RS/canary/uf0" \
	"$(readlink "$RS/u/r.link") $(readlink "$RS/u/r/sub.link") $(readlink "$RS/u/r/uf0.link")"
tree_dump "$RS/canary" "$T/race.canary.after" -s
expect_same_file "race: the canary the links pointed to is unchanged" \
	"$T/race.canary.before" "$T/race.canary.after"
expect_eq "race: nothing new beside the branches" "canary l1 mnt u w " \
	"$(cd "$RS" && ls -A | LC_ALL=C sort | tr '\n' ' ')"
um_umount "$RS/mnt"
snapshot "$RS/l1" "$T/race.l1.after"
expect_same_file "race: lower unchanged" "$T/race.l1.before" "$T/race.l1.after"

finish
