#!/usr/bin/env bash
# t_copyup_data: copy-up copies data sparsely, completely, and only when
# it has to; st_ino does not move.
#
# - A 512 MiB sparse lower file with one 4 KiB data block at 300 MiB: one
#   byte appended through the union leaves an upper file of under 1 MiB
#   allocated (stat %b) whose content is the lower's plus that byte.
# - A lower file of 1 MiB data runs and 1 MiB+ holes (hole at the end
#   too), written in the middle of a data run: upper has exactly the
#   lower's data map (SEEK_DATA/SEEK_HOLE, helper "rofd map") and the
#   lower's content with that byte changed.
# - Opening a large (64 MiB, real data) lower file with O_TRUNC copies no
#   data: the upper file is empty with no blocks.
# - st_ino seen through the union is the same before the copy-up, after
#   it, and after unmount + remount.
# Lowers are unchanged.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon

ROFD=$HELPERS/rofd
if [ ! -x "$ROFD" ]; then
	ROFD=$T/rofd
	cc -O2 -Wall -o "$ROFD" "$LIB_DIR/rofd.c" || die "cannot build helper rofd"
fi

U=$T/upper W=$T/work L1=$T/l1 L2=$T/l2 M=$T/mnt R=$T/ref
mkdir -p "$U" "$W" "$L1" "$L2" "$M" "$R"

# 512 MiB, one random 4 KiB block at 300 MiB.
truncate -s 512M "$L2/sparse"
head -c 4096 /dev/urandom | dd of="$L2/sparse" bs=1M seek=300 conv=notrunc status=none
# data 0-1M, hole 1-3M, data 3-4M, hole 4-6M, data 6-8M, hole 8-10M
mkdir -p "$L2/dir"
truncate -s 10M "$L2/dir/holes"
for s in 0 3 6 7; do
	head -c 1M /dev/urandom | dd of="$L2/dir/holes" bs=1M seek=$s conv=notrunc status=none
done
head -c 64M /dev/urandom >"$L1/big"
mkf "$L1" plain

[ "$(stat -c %b "$L2/sparse")" -lt 2048 ] || skip "the lower filesystem does not keep holes"
"$ROFD" map "$L2/dir/holes" >"$T/holes.map.lower"
[ "$(grep -c '^data' "$T/holes.map.lower")" -ge 3 ] || skip "SEEK_DATA/SEEK_HOLE do not see holes on the lower filesystem"

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"
um_mount "$M" "$OPTS" || finish

declare -A ino0=()
for f in sparse dir/holes big plain; do
	ino0[$f]=$(t stat -c %i "$M/$f")
done

# --- the 512 MiB sparse file
if t sh -c 'printf Z >>"$1"' sh "$M/sparse"; then
	pass "append to the 512 MiB sparse file"
else
	fail "append to the 512 MiB sparse file: expected success, failed"
fi
if [ -f "$U/sparse" ]; then
	blk=$(stat -c %b "$U/sparse")
	# Kernel overlayfs copies whole 1 MiB chunks from each data start (it
	# allocates 1 MiB + 4 KiB here); the union copies data runs only.
	lim=$((1024 * 1024)) limt="1 MiB"
	selftest && lim=$((2 * 1024 * 1024)) limt="2 MiB (self-test: kernel copies 1 MiB chunks)"
	if [ $((blk * 512)) -lt $lim ]; then
		pass "sparse copy-up: upper file allocates $((blk * 512)) bytes (< $limt)"
	else
		fail "sparse copy-up: expected < $limt allocated on upper, got $((blk * 512)) bytes"
	fi
	expect_eq "sparse copy-up: upper size is lower + 1" $((512 * 1024 * 1024 + 1)) "$(stat -c %s "$U/sparse")"
	if cmp -s <(cat "$L2/sparse"; printf Z) "$U/sparse"; then
		pass "sparse copy-up: upper content is the lower's plus the appended byte"
	else
		fail "sparse copy-up: upper content differs from lower + 'Z' ($(cmp <(cat "$L2/sparse"; printf Z) "$U/sparse" 2>&1 | head -1))"
	fi
else
	fail "sparse copy-up: expected $U/sparse, there is none"
fi
if tl 60 cmp -s <(cat "$L2/sparse"; printf Z) "$M/sparse"; then
	pass "sparse copy-up: the union reads lower + appended byte"
else
	fail "sparse copy-up: the union does not read lower + 'Z'"
fi

# --- several holes, one byte written inside the second data run
cp --sparse=always "$L2/dir/holes" "$R/holes"
printf X | dd of="$R/holes" bs=1 seek=$((3 * 1024 * 1024 + 10)) conv=notrunc status=none
if printf X | t dd of="$M/dir/holes" bs=1 seek=$((3 * 1024 * 1024 + 10)) conv=notrunc status=none; then
	pass "write one byte inside the holey file"
else
	fail "write one byte inside the holey file: expected success, failed"
fi
if [ -f "$U/dir/holes" ]; then
	"$ROFD" map "$U/dir/holes" >"$T/holes.map.upper"
	expect_same_file "holey copy-up: upper has the lower's data runs and holes" \
		"$T/holes.map.lower" "$T/holes.map.upper"
	if cmp -s "$R/holes" "$U/dir/holes"; then
		pass "holey copy-up: upper content is the lower's with the written byte"
	else
		fail "holey copy-up: upper content differs from the expected ($(cmp "$R/holes" "$U/dir/holes" 2>&1 | head -1))"
	fi
else
	fail "holey copy-up: expected $U/dir/holes, there is none"
fi
if t cmp -s "$R/holes" "$M/dir/holes"; then
	pass "holey copy-up: the union reads the expected content"
else
	fail "holey copy-up: the union reads something else than the lower's with the byte written"
fi

# --- O_TRUNC on a 64 MiB file copies no data
expect_probe "O_TRUNC open of the 64 MiB lower file" OK open "$M/big" wt
if [ -f "$U/big" ]; then
	expect_eq "O_TRUNC copy-up: upper file size and blocks" "0 0" "$(stat -c '%s %b' "$U/big")"
else
	fail "O_TRUNC copy-up: expected $U/big, there is none"
fi
expect_eq "O_TRUNC copy-up: the union shows an empty file" 0 "$(t stat -c %s "$M/big")"

# plain: chmod copy-up (possibly metadata-only): content must not change
expect_probe "chmod of a small lower file" OK chmod "$M/plain" 600
expect_eq "chmod copy-up: content still the lower's" "l1:plain" "$(t cat "$M/plain")"

for f in sparse dir/holes big plain; do
	expect_eq "st_ino of $f unchanged by the copy-up" "${ino0[$f]}" "$(t stat -c %i "$M/$f")"
done
um_umount "$M"

snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower l1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "lower l2 unchanged" "$T/l2.before" "$T/l2.after"

um_mount "$M" "$OPTS" || finish
for f in sparse dir/holes big plain; do
	expect_eq "st_ino of $f unchanged after remount" "${ino0[$f]}" "$(t stat -c %i "$M/$f")"
done
expect_eq "after remount: sizes" "$((512 * 1024 * 1024 + 1)) 10485760 0 9" \
	"$(t stat -c %s "$M/sparse" "$M/dir/holes" "$M/big" "$M/plain" | tr '\n' ' ' | sed 's/ $//')"
um_umount "$M"

finish
