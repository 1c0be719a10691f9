#!/usr/bin/env bash
# t_many_lowers: a union of 70 lower branches (the issue asks for at least
# 64) plus an upper, compared with kernel overlayfs over the same layers:
# a file in every branch, a name shadowed through all of them (the
# top-most wins), a directory merged from all 70, a whiteout in the middle
# hiding a name from the bottom half, and an opaque directory half way.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon

N=70
M=$T/mnt
U=$T/upper W=$T/work
mkdir -p "$M" "$U" "$W"
lowers=()
for i in $(seq 1 $N); do
	L=$T/l$i
	lowers+=("$L")
	mkf "$L" "only$i" "layer $i"
	mkf "$L" same "layer $i"
	mkf "$L" "d/f$i" "layer $i"
	mkf "$L" "o/f$i" "layer $i"
done
mkf "$T/l60" gone "bottom half"
mkwh "$T/l35" gone
mkopq "$T/l40" o
mkf "$U" "d/upper" "upper"

oracle_dump "$T/oracle.dump" "$U" "${lowers[@]}"
um_mount "$M" "$(lowerdir_opt "${lowers[@]}"),upperdir=$U,workdir=$W" || finish
tree_dump "$M" "$T/union.dump"
expect_same_file "70 lowers + upper: tree equals kernel overlayfs" "$T/oracle.dump" "$T/union.dump"
expect_eq "top-most of 70 wins" "layer 1" "$(t cat "$M/same")"
expect_eq "bottom branch reached" "layer 70" "$(t cat "$M/only70")"
expect_eq "merged from all 70 plus upper" "71" "$(t ls "$M/d" | wc -l)"
expect_eq "opaque in branch 40 hides 41..70" "40" "$(t ls "$M/o" | wc -l)"
expect_probe "whiteout in branch 35 hides branch 60's file" ENOENT stat "$M/gone"
um_umount "$M"
finish
