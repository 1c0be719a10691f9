#!/usr/bin/env bash
# t_statfs_xattr: statfs and extended attributes.
#
# statfs of a union with upper is the upper filesystem's; of a read-only
# union, the top lower's (each on a tmpfs of its own size). user.* and
# other ordinary xattrs of files, dirs and symlinks read back exactly as
# kernel overlayfs shows them (getfattr -d -m - on chosen files, and every
# xattr of every object in a whole-tree dump); internal ones
# (trusted.overlay.*, trusted.unionmount.*) never show, cannot be read,
# and cannot be set or removed through the union; the workdir never shows.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon

M=$T/mnt
mkdir -p "$M" "$T/l2"
kmount tmpfs "$T/ufs" size=37m,nr_inodes=3737,mode=0755
kmount tmpfs "$T/l1" size=23m,nr_inodes=2323,mode=0755
U=$T/ufs/upper W=$T/ufs/work L1=$T/l1 L2=$T/l2
mkdir -p "$U" "$W"

mkf "$U" uf
setfattr -n user.a -v 1 "$U/uf"
mkf "$L1" lf
setfattr -n user.b -v 2 "$L1/lf"
setfattr -n trusted.foo -v 3 "$L1/lf"
setfattr -n trusted.overlay.origin -v junk "$L1/lf"
setfattr -n trusted.unionmount.bogus -v 1 "$L1/lf"
mkf "$L2" big
setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\0' v)" "$L2/big"
mkf "$L2" many
for i in $(seq -w 1 60); do setfattr -n "user.attribute-number-$i" -v "$i" "$L2/many"; done
mkf "$L2" binval
setfattr -n user.bin -v 0x00ff00fe "$L2/binval"
mkopq "$U" uopq
setfattr -n user.d -v upper-opaque "$U/uopq"
mkf "$L1" uopq/hidden
mkf "$L1" lopq/x
setfattr -n user.d -v l1 "$L1/lopq"
mkopq "$L2" lopq
setfattr -n user.d -v l2 "$L2/lopq"
mkf "$L2" lopq/y
mkf "$U" md/a
setfattr -n user.which -v upper "$U/md"
mkf "$L2" md/b
setfattr -n user.which -v l2 "$L2/md"
setfattr -n user.l2only -v x "$L2/md"
mkd "$U" plain
mkf "$L2" plain/p
mkln "$L2" sym lf
setfattr -h -n trusted.symattr -v s "$L2/sym"
mkf "$L1" noxattr

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
files=(uf lf big many binval uopq lopq md plain sym noxattr .)

getfattr_all() { # getfattr_all ROOT OUT: getfattr -d -m - of each chosen file
	tin "$1" getfattr -h -d -m - -e text -- "${files[@]}" >"$2" 2>&1
}

# trusted.unionmount.* is internal to us, not to the kernel: the oracle
# shows it, so it is dropped from the oracle's answers (and, in the
# kernel-overlay self-test, from the stand-in's too). Checks of rules that
# are ours alone (trusted.unionmount.*, refusing to set trusted.overlay.*,
# which the kernel accepts and stores escaped) are skipped in the self-test.
drop_ours() { grep -a -v 'trusted\.unionmount\.' "$1" >"$1.tmp"; mv "$1.tmp" "$1"; }
ovl_mount "$T/oracle" "$U" "$L1" "$L2"
getfattr_all "$T/oracle" "$T/oracle.getfattr"
ovl_umount "$T/oracle"
oracle_dump "$T/oracle.dump" "$U" "$L1" "$L2"
drop_ours "$T/oracle.getfattr"
drop_ours "$T/oracle.dump"
grep -aq 'trusted.overlay' "$T/oracle.dump" "$T/oracle.getfattr" &&
	die "oracle shows trusted.overlay.* xattrs: scenario or oracle broken"

um_mount "$M" "$OPTS" || finish

# --- statfs
want=$(probe_out statfs "$U")
other=$(probe_out statfs "$L1")
expect_eq "statfs equals upper's (37m tmpfs)" "$want" "$(probe_out statfs "$M")"
[ "$want" != "$other" ] || die "harness: upper and L1 statfs should differ"
expect_eq "statfs of a subdirectory equals upper's" "$want" "$(probe_out statfs "$M/md")"
if out=$(t df -P "$M" 2>&1); then pass "df works on the union"; else fail "df: $out"; fi

# --- xattrs
getfattr_all "$M" "$T/union.getfattr"
selftest && drop_ours "$T/union.getfattr"
expect_same_file "getfattr -d -m - of chosen files equals kernel overlayfs" \
	"$T/oracle.getfattr" "$T/union.getfattr"
expect_probe "user.* of an upper file" "OK 1" getxattr "$M/uf" user.a
expect_probe "user.* of a lower file" "OK 2" getxattr "$M/lf" user.b
expect_probe "trusted.* (not internal) of a lower file" "OK 3" getxattr "$M/lf" trusted.foo
expect_probe "merged dir shows the upper dir's xattr" "OK upper" getxattr "$M/md" user.which
expect_probe "merged dir hides a lower dir's xattr" ENODATA getxattr "$M/md" user.l2only
expect_probe "user.* of an opaque upper dir" "OK upper-opaque" getxattr "$M/uopq" user.d
expect_probe "user.* of a lower dir above an opaque one" "OK l1" getxattr "$M/lopq" user.d
expect_probe "3000-byte value" "OK $(head -c 3000 /dev/zero | tr '\0' v)" getxattr "$M/big" user.big
# Buffer-size protocol: size query, exact size, one byte short.
expect_probe "getxattr size query" "OK 3000" getxattr "$M/big" user.big 0
expect_probe "getxattr exact buffer" "OK 3000" getxattr "$M/big" user.big 3000
expect_probe "getxattr buffer one byte short" ERANGE getxattr "$M/big" user.big 2999
lsize=$(probe_out listxattr "$L2/many" 0)
expect_probe "listxattr size query" "$lsize" listxattr "$M/many" 0
expect_probe "listxattr buffer one byte short" ERANGE listxattr "$M/many" $((${lsize#OK } - 1))
expect_probe "getxattr of a missing name" ENODATA getxattr "$M/noxattr" user.none
expect_probe "listxattr of a file without xattrs" "OK 0" listxattr "$M/noxattr" 0
expect_eq "60 xattrs listed" 60 "$(t getfattr --absolute-names -d -m '^user\.' "$M/many" 2>/dev/null | grep -c '^user')"
for p in uopq lopq lf .; do
	internal=(trusted.overlay.opaque trusted.overlay.origin)
	selftest || internal+=(trusted.unionmount.bogus trusted.unionmount.format)
	for x in "${internal[@]}"; do
		got=$(probe_out getxattr "$M/$p" "$x")
		case $got in
		ENODATA | EOPNOTSUPP) pass "getxattr $x on $p refused ($got)" ;;
		*) fail "getxattr $x on $p: expected ENODATA or EOPNOTSUPP, got '$got'" ;;
		esac
	done
	got=$(probe_out listxattr "$M/$p")
	if [[ $got == OK* ]] && ! [[ $got =~ trusted\.(overlay|unionmount)\. ]]; then
		pass "listxattr on $p shows no internal xattr"
	elif selftest && ! [[ $got =~ trusted\.overlay\. ]]; then
		pass "listxattr on $p shows no trusted.overlay.* (self-test)"
	else
		fail "listxattr on $p: '$got'"
	fi
done
# Setting or removing internal xattrs through the union is refused and
# changes nothing below.
selftest || for x in trusted.overlay.opaque trusted.overlay.redirect trusted.unionmount.format trusted.unionmount.x; do
	got=$(probe_out setxattr "$M/plain" "$x" y)
	if [ "$got" != OK ] && ! getfattr -h --absolute-names -n "$x" "$U/plain" >/dev/null 2>&1; then
		pass "setxattr $x through the union refused ($got)"
	else
		fail "setxattr $x on plain: got '$got'; upper dir has it: $(getfattr -h --absolute-names -d -m - "$U/plain" 2>&1 | grep -c "$x")"
	fi
done
got=$(probe_out removexattr "$M/uopq" trusted.overlay.opaque)
if selftest; then
	:
elif [ "$got" != OK ] && [ "$(getfattr --absolute-names --only-values -n trusted.overlay.opaque "$U/uopq" 2>/dev/null)" == y ]; then
	pass "removexattr trusted.overlay.opaque through the union refused ($got), upper still opaque"
else
	fail "removexattr trusted.overlay.opaque on an opaque upper dir: got '$got', upper value now '$(getfattr --absolute-names --only-values -n trusted.overlay.opaque "$U/uopq" 2>&1)'"
fi
expect_probe "opaque upper dir still hides the lower entry" ENOENT lstat "$M/uopq/hidden"

tree_dump "$M" "$T/union.dump"
selftest && drop_ours "$T/union.dump"
expect_same_file "whole tree with every xattr equals kernel overlayfs" "$T/oracle.dump" "$T/union.dump"
if grep -qE ' trusted\.(overlay|unionmount)\.' "$T/union.dump"; then
	fail "internal xattrs visible somewhere: $(grep -E ' trusted\.(overlay|unionmount)\.' "$T/union.dump" | head -3)"
else
	pass "no internal xattr anywhere in the tree"
fi
# Through a descriptor on a file that lost its last name: the daemon then
# holds it as an O_PATH fd, which f*xattr() refuse (src/sys.c takes the
# fd's magic link), and changes its mode and times with AT_EMPTY_PATH.
if command -v python3 >/dev/null; then
	out=$(tin "$M" python3 -c '
import os
fd = os.open("unl", os.O_RDWR | os.O_CREAT, 0o644)
os.setxattr(fd, "user.x", b"1")
os.unlink("unl")
os.setxattr(fd, "user.y", b"2")
os.removexattr(fd, "user.x")
os.fchmod(fd, 0o600)
os.utime(fd, (1000000000, 1000000000))
st = os.fstat(fd)
print(sorted(os.listxattr(fd)), os.getxattr(fd, "user.y").decode(), oct(st.st_mode & 0o7777), int(st.st_mtime))
' 2>&1)
	expect_eq "unlinked, still open: xattrs, chmod, utimes" "['user.y'] 2 0o600 1000000000" "$out"
else
	log "no python3: the unlinked open file not checked"
fi
# The workdir never shows: nothing of its contents appears in the root.
leaked=
for n in "$W"/* "$W"/.[!.]*; do
	[ -e "$n" ] || continue
	n=${n##*/}
	[ "$(probe_out lstat "$M/$n")" == ENOENT ] || leaked+=" $n"
done
expect_eq "nothing from workdir appears in the union root" "" "$leaked"
expect_eq "root lists only upper/lower names" \
	"$( (ls -A "$U"; ls -A "$L1"; ls -A "$L2") | sort -u | xargs)" "$(t ls -A "$M" | xargs)"
um_umount "$M"

# --- read-only union: statfs is the top lower's.
um_mount "$M" "$(lowerdir_opt "$L1" "$L2")" || finish
expect_eq "read-only union: statfs equals the top lower's (23m tmpfs)" \
	"$(probe_out statfs "$L1")" "$(probe_out statfs "$M")"
um_umount "$M"

finish
