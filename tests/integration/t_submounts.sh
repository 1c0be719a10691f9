#!/usr/bin/env bash
# t_submounts: filesystems mounted inside a branch. Their inode numbers
# start again from 1, so the union must number them apart (st_ino of
# distinct objects never equal) and never merge two of them into one
# object; readdir's d_ino must agree with lstat's st_ino at the mount
# points. (Kernel overlayfs shows the covered directories instead: a
# difference documented in the man page, so there is no oracle here.)
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon

M=$T/mnt L1=$T/l1 L2=$T/l2
mkdir -p "$M" "$L2"
kmount tmpfs "$L1" size=4m,mode=0755
kmount tmpfs "$L1/m1" size=4m,mode=0755
kmount tmpfs "$L1/m2" size=4m,mode=0755
mkf "$L1/m1" f one
mkf "$L1/m2" g two
mkf "$L2" m1/below "l2"
for i in $(seq 1 300); do printf x >"$L1/pad$i"; done

um_mount "$M" "$(lowerdir_opt "$L1" "$L2")" || finish
expect_eq "first submount's file" "one" "$(t cat "$M/m1/f")"
expect_eq "second submount's file" "two" "$(t cat "$M/m2/g")"
expect_probe "no file of one submount seen in the other" ENOENT stat "$M/m2/f"
expect_eq "submount root is a directory" "directory" "$(t stat -c %F "$M/m1")"
ino_root=$(t stat -c %i "$M") ino_m1=$(t stat -c %i "$M/m1") ino_m2=$(t stat -c %i "$M/m2")
ino_f=$(t stat -c %i "$M/m1/f") ino_g=$(t stat -c %i "$M/m2/g")
expect_eq "distinct st_ino for root, m1, m2, f, g" 5 \
	"$(printf '%s\n' "$ino_root" "$ino_m1" "$ino_m2" "$ino_f" "$ino_g" | sort -u | wc -l)"
# Plain readdir (not readdirplus) of a big directory: d_ino vs st_ino.
dino=$(tin "$M" "$HELPERS/seekdir" -p . 2>/dev/null | awk '$1 == "m1" { print $3 }')
expect_eq "readdir d_ino of a mount point equals its st_ino" "$ino_m1" "$dino"
um_umount "$M"
finish
