#!/usr/bin/env bash
# t_submounts: filesystems mounted inside a branch. Their inode numbers
# start again from 1, so the union must number them apart (st_ino of
# distinct objects never equal) and never merge two of them into one
# object; readdir's d_ino must agree with lstat's st_ino at the mount
# points. (Kernel overlayfs shows the covered directories instead: a
# difference documented in the man page, so there is no oracle here.)
#
# The daemon learns that a branch has mounts inside from mountinfo, where
# the kernel writes a blank in a path as \040: the second part repeats
# the d_ino check with a blank in every branch path, for a lower branch
# (merged listing) and for the upper (a directory of upper alone, listed
# straight from upper). Without the flag the listing passes getdents's
# d_ino on, the covered directory's number: whatever takes the number
# from the listing (Python's os.scandir().inode(), a getdents caller)
# sees another object than lstat does. (ls -i and find stat the entry.)
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
selftest && skip "kernel overlayfs shows the covered directories: no oracle for submounts"

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

# Blanks in the branch paths; every listing consumer of the flag: a
# merged listing (fallthru=off) for the lower, a directory of upper alone
# for the upper, and below a complete directory with more fallthrus than
# the stream lstats one by one, whose numbers then come from one read of
# the lower directory. readdirplus=never: the kernel passes the listing's
# d_ino on as it is (READDIRPLUS would take the lookups' numbers and hide
# a wrong one). Upper is a tmpfs: it lists newest first, as the lower
# does, so "m 1", made last in the lower, is filled first and streamed
# last, after all the pads' fallthrus (checked below, not assumed).
M=$T/mnt\ b L1=$T/low\ one L2=$T/low\ two U=$T/up\ per
mkdir -p "$M" "$L2"
kmount tmpfs "$L1" size=4m,mode=0755
for i in $(seq 1 100); do printf x >"$L1/pad$i"; done
kmount tmpfs "$L1/m 1" size=4m,mode=0755
mkf "$L1/m 1" f one
mkf "$L2" "m 1/below" l2
kmount tmpfs "$U" size=4m,mode=0755
mkdir -p "$U/w" "$U/u/only"
kmount tmpfs "$U/u/only/m 2" size=4m,mode=0755
mkf "$U/u/only/m 2" g two
OPTS="$(lowerdir_opt "$L1" "$L2"),upperdir=$U/u,workdir=$U/w,readdirplus=never"
# d_ino of NAME (escaped as seekdir -p prints it: a blank is \x20) in
# union directory DIR, from a plain readdir.
dino_of() {
	tin "$1" "$HELPERS/seekdir" -p . 2>/dev/null | N=$2 awk '$1 == ENVIRON["N"] { print $3 }'
}
um_mount "$M" "$OPTS,fallthru=off" || finish
expect_eq "blank in the paths: submount in a lower seen through" "one" "$(t cat "$M/m 1/f")"
expect_eq "blank in the paths: submount in upper seen through" "two" "$(t cat "$M/only/m 2/g")"
expect_eq "blank in the paths: lower mount point's d_ino (merged listing) equals its st_ino" \
	"$(t stat -c %i "$M/m 1")" "$(dino_of "$M" 'm\x201')"
expect_eq "blank in the paths: upper mount point's d_ino (upper alone) equals its st_ino" \
	"$(t stat -c %i "$M/only/m 2")" "$(dino_of "$M/only" 'm\x202')"
um_umount "$M"
um_mount "$M" "$OPTS" || finish
listing=$(tin "$M" "$HELPERS/seekdir" -p . 2>/dev/null)
before=$(awk '$1 == "m\\x201" { print NR - 1; exit }' <<<"$listing")
if [ "${before:-0}" -gt 70 ]; then
	expect_eq "blank in the paths: lower mount point's d_ino (complete dir, from the lower's map) equals its st_ino" \
		"$(t stat -c %i "$M/m 1")" "$(awk '$1 == "m\\x201" { print $3 }' <<<"$listing")"
else
	fail "scenario: 'm 1' is entry ${before:-none} of the complete root, want it after the 64 fallthrus the stream lstats"
fi
um_umount "$M"
finish
