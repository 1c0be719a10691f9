#!/usr/bin/env bash
# t_copyup_hardlinks: a lower inode with several names stays one inode
# through copy-up: a lower file with names a, b, sub/c (nlink 3):
# - an append through a is read through b and sub/c; all three names show
#   the st_ino they had before and st_nlink 3;
# - ln a d: four names, nlink 4, same st_ino, same content;
# - rm b: nlink 3 on a, sub/c, d; b is gone;
# - the names that exist on upper are one upper inode;
# - all of it holds after unmount + remount.
# A second group (x, y, sub/z) is changed by chmod through y only: x and
# sub/z show the new mode, the old content, the same st_ino, nlink 3.
# Lowers are unchanged.
# Self-test: kernel overlayfs keeps lower hard links only with index=on
# (lib.sh does not ask for it), so the script mounts it itself then.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon

U=$T/upper W=$T/work L1=$T/l1 L2=$T/l2 M=$T/mnt
mkdir -p "$U" "$W" "$L1" "$L2" "$M"

mkf "$L2" a "orig
"
mkhl "$L2" a b
mkhl "$L2" a sub/c
mkf "$L2" x "xdata
"
chmod 0644 "$L2/x"
mkhl "$L2" x y
mkhl "$L2" x sub/z
mkf "$L1" top "l1
"
mkd "$L1" sub

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
mount_union() {
	if selftest; then
		timeout 20 mount -t overlay overlay \
			-o "$(lowerdir_opt "$L1" "$L2"),upperdir=$U,workdir=$W,index=on,xino=on" "$M" ||
			die "kernel overlayfs with index=on refused"
		_mounts+=("k:$M")
		return 0
	fi
	um_mount "$M" "$OPTS"
}

snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"
mount_union || finish

# names LIST...: "ino nlink content" of each name, one line each
show() {
	local n
	for n in "$@"; do
		printf '%s: %s %s; ' "$n" "$(t stat -c '%i %h' "$M/$n" 2>&1)" "$(t cat "$M/$n" 2>&1 | tr '\n' '|')"
	done
}
ino=$(t stat -c %i "$M/a")
xino=$(t stat -c %i "$M/x")
expect_eq "before: a, b, sub/c are one inode with nlink 3" \
	"$(printf '%s: %s 3 orig|; ' a "$ino" b "$ino" sub/c "$ino")" "$(show a b sub/c)"

if t sh -c 'echo new >>"$1"' sh "$M/a"; then pass "append through a"; else fail "append through a failed"; fi
expect_eq "after the append through a: b and sub/c read it, same st_ino, nlink 3" \
	"$(printf '%s: %s 3 orig|new|; ' a "$ino" b "$ino" sub/c "$ino")" "$(show a b sub/c)"

expect_probe "ln a d" OK link "$M/a" "$M/d"
expect_eq "after ln a d: four names, nlink 4" \
	"$(printf '%s: %s 4 orig|new|; ' a "$ino" b "$ino" d "$ino" sub/c "$ino")" "$(show a b d sub/c)"

expect_probe "rm b" OK unlink "$M/b"
expect_probe "b is gone" ENOENT lstat "$M/b"
expect_eq "after rm b: three names, nlink 3" \
	"$(printf '%s: %s 3 orig|new|; ' a "$ino" d "$ino" sub/c "$ino")" "$(show a d sub/c)"

expect_probe "chmod 600 y" OK chmod "$M/y" 600
expect_eq "after chmod through y: x, y, sub/z show mode 600, same st_ino, nlink 3" \
	"$(printf '%s: 600 %s 3 xdata|; ' x "$xino" y "$xino" sub/z "$xino")" \
	"$(for n in x y sub/z; do printf '%s: %s %s; ' $n "$(t stat -c '%a %i %h' "$M/$n")" "$(t cat "$M/$n" | tr '\n' '|')"; done)"

# On disk: whatever names of one group exist on upper share one inode.
# The union keeps the copy of a hard-linked lower object in
# WORKDIR/unionmount/index (names move to upper only when renamed or
# linked), so there the index entries count as its upper names.
upper_one_inode() { # LABEL NAME...
	local label=$1 n inos='' f
	shift
	for n in "$@"; do
		[ -f "$U/$n" ] && inos+="$(stat -c %i "$U/$n") "
	done
	if [ -z "$inos" ] && ! selftest; then
		for f in "$W"/unionmount/index/*; do
			[ -f "$f" ] && [ "$(stat -c %s "$f")" -gt 0 ] && inos+="$(stat -c %i "$f") "
		done
		[ -n "$inos" ] && inos=$(printf '%s\n' $inos | head -1)
	fi
	if [ -z "$inos" ]; then
		fail "$label: no name of the group is on upper"
	else
		expect_eq "$label: the upper names ($inos) are one inode" 1 \
			"$(printf '%s\n' $inos | sort -u | wc -l)"
	fi
}
upper_one_inode "group a" a d sub/c
upper_one_inode "group x" x y sub/z
expect_eq "upper: b is a whiteout" "character special file 0:0" "$(stat -c '%F %Hr:%Lr' "$U/b" 2>&1)"

um_umount "$M"
snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower l1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "lower l2 unchanged" "$T/l2.before" "$T/l2.after"

mount_union || finish
expect_eq "after remount: a, d, sub/c one inode, nlink 3, new content" \
	"$(printf '%s: %s 3 orig|new|; ' a "$ino" d "$ino" sub/c "$ino")" "$(show a d sub/c)"
expect_probe "after remount: b is still gone" ENOENT lstat "$M/b"
expect_eq "after remount: x, y, sub/z mode 600, one inode, nlink 3" \
	"$(printf '%s: 600 %s 3 xdata|; ' x "$xino" y "$xino" sub/z "$xino")" \
	"$(for n in x y sub/z; do printf '%s: %s %s; ' $n "$(t stat -c '%a %i %h' "$M/$n")" "$(t cat "$M/$n" | tr '\n' '|')"; done)"
# A write through another name after the remount still reaches all names.
if t sh -c 'echo again >>"$1"' sh "$M/sub/c"; then pass "append through sub/c after remount"; else fail "append through sub/c after remount failed"; fi
expect_eq "after remount + append through sub/c: a and d read it" \
	"$(printf '%s: %s 3 orig|new|again|; ' a "$ino" d "$ino" sub/c "$ino")" "$(show a d sub/c)"
um_umount "$M"

finish
