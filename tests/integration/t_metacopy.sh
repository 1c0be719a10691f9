#!/usr/bin/env bash
# t_metacopy: metadata-only copy-up (metacopy=on, the default; copyup.h).
# A change of metadata alone (chmod, chown, setxattr, utimens through a
# read-only descriptor) copies a lower file up without its data: what a
# program sees through the union is what kernel overlayfs shows after a
# whole copy-up, and the upper holds a marked hole of the lower size.
#  1. chmod, chown, setxattr, futimens: the union reads the lower data,
#     size and blocks; upper holds the mark, no byte, the format is 3.
#  2. Every call that needs the data in upper gets it first, as a whole
#     copy: append, overwrite, truncate (to 0 and to a length), O_TRUNC,
#     rename, link, unlink of an open file (then read through
#     /proc/PID/fd); the mode, owner, xattrs and times of the metacopy
#     file are kept, the mark is gone, the data is the lower file's.
#  3. A descriptor opened before the chmod reads on after it and after
#     the data is copied.
#  4. Remount: metacopy files read the same, with the same inode number.
#  5. A lower file with several names is copied whole (the index);
#     metacopy=off copies whole and leaves the format at 2.
#  6. The lower branches are unchanged.
#  7. unionctl: diff reports a metacopy file as "m" (metadata only);
#     check finds nothing wrong; metacopy=off reads metacopy files. The
#     lower file replaced or gone while unmounted: EIO and a log line,
#     nothing written; put back, it reads again. An upper with metacopy
#     files is refused as a lowerdir (it would show their holes).
# 2b. A truncate racing a rename over the metacopy file: the name holds
#     the renamed file, whole or truncated, never the lower data. (A
#     stress check: it did not catch the race it guards against, found by
#     review, in two runs of the build before the fix; the window is a
#     few microseconds.)
# The same operations run on kernel overlayfs (metacopy=off) as the oracle
# for what the union shows; the self-test runs the visible part only.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon

ROFD=$HELPERS/rofd
[ -x "$ROFD" ] || die "helper rofd not built: $ROFD"
export ROFD
U=$T/upper W=$T/work L1=$T/l1 L2=$T/l2 M=$T/mnt
K=$T/k KU=$T/k.upper KW=$T/k.work
mkdir -p "$U" "$W" "$L1" "$L2" "$M" "$K" "$KU" "$KW"

# 64 KiB of data with a hole of 1 MiB in front, so blocks and size differ.
mkbig() {
	mkdir -p "$(dirname "$1")"
	head -c 65536 /dev/urandom >"$T/big.data"
	dd if="$T/big.data" of="$1" bs=1M seek=1 conv=notrunc status=none
}
NAMES="chmod chown setxattr futimens append overwrite trunc0 trunc3 otrunc rename link openrm keepfd remount"
for n in $NAMES; do
	mkf "$L2" "d/$n" "lower data of $n
"
done
mkbig "$L2/d/big"
mkf "$L1" d/hl "hard-linked
"
ln "$L1/d/hl" "$L1/d/hl2"
mkf "$L2" d/empty ""
for i in $(seq 1 60); do mkf "$L2" "race/f$i" "lower $i
"; done
touch -d @1000000000 "$L2"/d/* "$L1"/d/*
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
um_mount "$M" "$OPTS" || finish
if ! selftest; then
	ovl_rw_mount "$K" "$KU" "$KW" "$L1" "$L2" || die "cannot mount the kernel overlayfs oracle"
fi
SIDES="$M"
selftest || SIDES="$M $K"

metamark() { getfattr --absolute-names --only-values -n trusted.unionmount.metacopy "$1" 2>/dev/null; }
nonzero() { tr -d '\0' <"$1" | wc -c; }
# what a program sees: mode, owner, size, blocks, mtime, data, user xattrs
seen() {
	t stat -c '%a %u:%g size=%s blocks=%b m=%.9Y' "$1" 2>&1
	echo "data=$(t sha256sum <"$1" 2>&1 | cut -c1-16)"
	t getfattr -h -d -m '^user\.' --absolute-names "$1" 2>/dev/null | grep -v '^#' | grep .
}
flat() { tr '\n' ' ' | sed 's/ $//'; }

# Run a shell snippet (the path in $1) on the union and on the oracle;
# prints the union's answer, fails if the oracle's differs.
both() {
	local label=$1 rel=$2 code=$3 side out want=''
	for side in $SIDES; do
		out=$(t bash -c "$code" sh "$side/$rel" 2>&1 | sed "s|$side/||g")
		if [ "$side" == "$M" ]; then
			want=$out
		elif [ "$out" != "$want" ]; then
			fail "$label: the union answers '$want', kernel overlayfs '$out'"
			return
		fi
	done
	pass "$label: the union answers as kernel overlayfs ('$(printf '%s' "$want" | flat | cut -c1-80)')"
}

log "1. metadata changes copy no data"
both "chmod" d/chmod 'chmod 0600 "$1" && stat -c %a "$1" && cat "$1"'
both "chown" d/chown 'chown 1234:5678 "$1" && stat -c %u:%g "$1" && cat "$1"'
both "setxattr" d/setxattr 'setfattr -n user.k -v v "$1" && getfattr --only-values -n user.k "$1" && echo && cat "$1"'
both "futimens on a read-only descriptor" d/futimens '"$ROFD" futimens "$1" 2>&1; stat -c %.9Y "$1"; cat "$1"'
both "chmod of a sparse file: size, data" d/big 'chmod 0640 "$1" && stat -c "%a %s" "$1" && sha256sum <"$1"'
both "chmod of an empty file" d/empty 'chmod 0600 "$1" && stat -c "%a %s" "$1"'
if ! selftest; then
	for n in chmod chown setxattr big; do
		expect_eq "$n: upper holds a metacopy file of the lower size, no byte written" \
			"y $(stat -c %s "$L2/d/$n") 0" "$(metamark "$U/d/$n") $(stat -c %s "$U/d/$n") $(nonzero "$U/d/$n")"
	done
	expect_eq "big: upper uses no data blocks" 0 "$(($(stat -c %b "$U/d/big") - $(stat -c %b "$U/d/empty") > 8 ? 1 : 0))"
	expect_eq "big: the union shows the lower file's blocks (du)" "$(stat -c %b "$L2/d/big")" "$(stat -c %b "$M/d/big")"
	expect_eq "an empty file is copied as is (nothing to leave below)" "" "$(metamark "$U/d/empty")"
	expect_eq "the upper's format is 3" 3 "$(getfattr --only-values -n trusted.unionmount.format "$U" 2>/dev/null)"
fi

log "2. calls that need the data get a whole copy first"
# chmod first (metadata only), then the call; the union and the oracle
# must agree on everything a program sees afterwards.
pre='chmod 0604 "$1" && setfattr -n user.keep -v 1 "$1" && '
both "append" d/append "$pre"'echo more >>"$1" && cat "$1" && stat -c "%a %s" "$1" && getfattr --only-values -n user.keep "$1"'
both "overwrite in place" d/overwrite "$pre"'printf XY | dd of="$1" bs=1 seek=2 conv=notrunc status=none && cat "$1"'
both "truncate to 0" d/trunc0 "$pre"'truncate -s 0 "$1" && stat -c "%a %s" "$1"'
both "truncate to 3" d/trunc3 "$pre"'truncate -s 3 "$1" && cat "$1" && echo && stat -c "%a %s" "$1"'
both "O_TRUNC" d/otrunc "$pre"': >"$1" && stat -c "%a %s" "$1"'
both "rename" d/rename "$pre"'mv "$1" "$1.new" && cat "$1.new" && stat -c "%a %.9Y" "$1.new" && getfattr --only-values -n user.keep "$1.new"'
both "link" d/link "$pre"'ln "$1" "$1.2" && cat "$1.2" && stat -c "%a %h %.9Y" "$1" "$1.2"'
# Unlinked while open: a reopen through /proc reaches the object, not
# its upper hole.
both "unlink while open, reopen through /proc" d/openrm "$pre"'exec 3<"$1" && rm "$1" && cat /proc/$$/fd/3 && stat -L -c "%a %s" /proc/$$/fd/3'
if ! selftest; then
	for n in append overwrite trunc3 rename.new link; do
		expect_eq "$n: upper holds the data itself, no metacopy mark" "" "$(metamark "$U/d/$n")"
	done
	expect_eq "append: upper holds the lower data and the appended line" "lower data of append
more" "$(cat "$U/d/append")"
	expect_eq "rename: the data copy kept the lower mtime" "$(stat -c %.9Y "$L2/d/rename")" "$(stat -c %.9Y "$U/d/rename.new")"
	expect_eq "rename: upper holds the lower data" "lower data of rename" "$(cat "$U/d/rename.new")"
	expect_eq "the workdir holds nothing left over" "" "$(ls -A "$W/unionmount/work")"
fi

# A metacopy file's data copy replaces what its name holds in upper: a
# rename over that name at the same moment must win or lose whole.
log "2b. truncate of a metacopy file racing a rename over it"
for i in $(seq 1 60); do
	chmod 0600 "$M/race/f$i"
	printf 'GGGG%s\n' "$i" >"$M/race/g$i"
done
bad=
for i in $(seq 1 60); do
	t truncate -s 3 "$M/race/f$i" 2>/dev/null &
	p1=$!
	t mv "$M/race/g$i" "$M/race/f$i" &
	p2=$!
	wait "$p1" "$p2"
	c=$(cat "$M/race/f$i" 2>&1)
	# the rename after the truncate: G whole; before it: G truncated
	[ "$c" == "GGGG$i" ] || [ "$c" == GGG ] || bad+=" f$i='$c'"
done
expect_eq "60 races: each name holds the renamed file, whole or truncated, never the lower data" "" "$bad"

log "3. a descriptor opened before the chmod"
for side in $SIDES; do
	exec 4<"$side/d/keepfd"
	chmod 0600 "$side/d/keepfd"
	a=$(cat <&4)
	echo more >>"$side/d/keepfd"
	b=$(cat <&4)
	exec 4<&-
	expect_eq "$(basename "$side"): the descriptor reads the data after the chmod, then what was appended" \
		"lower data of keepfd|more" "$a|$b"
done

log "4. remount"
ino=$(stat -c %i "$M/d/remount")
chmod 0600 "$M/d/remount"
expect_eq "chmod keeps the inode number" "$ino" "$(stat -c %i "$M/d/remount")"
before=$(seen "$M/d/big" | flat)
um_umount "$M"
um_mount "$M" "$OPTS" || finish
expect_eq "after remount: the metacopy file reads the lower data" "lower data of remount" "$(cat "$M/d/remount")"
expect_eq "after remount: the same inode number and mode" "$ino 600" "$(stat -c '%i %a' "$M/d/remount")"
expect_eq "after remount: the sparse file shows the same" "$before" "$(seen "$M/d/big" | flat)"

log "5. copied whole: a lower file with two names; metacopy=off"
both "chmod of a hard-linked lower file" d/hl 'chmod 0600 "$1" && cat "$1" && stat -c "%a %h" "$1"'
if ! selftest; then
	expect_eq "hard-linked: no metacopy file (the index holds a whole copy)" 0 \
		"$(find "$U" "$W/unionmount/index" -type f -exec getfattr --absolute-names -n trusted.unionmount.metacopy {} + 2>/dev/null | grep -c hl)"
	U2=$T/upper2 W2=$T/work2 M2=$T/mnt2
	mkdir -p "$U2" "$W2" "$M2"
	um_mount "$M2" "upperdir=$U2,workdir=$W2,$(lowerdir_opt "$L1" "$L2"),metacopy=off" || finish
	chmod 0600 "$M2/d/chmod"
	expect_eq "metacopy=off: chmod copies the data" "|lower data of chmod" "$(metamark "$U2/d/chmod")|$(cat "$U2/d/chmod")"
	um_umount "$M2"
	expect_eq "metacopy=off: the format stays 2" 2 "$(getfattr --only-values -n trusted.unionmount.format "$U2" 2>/dev/null)"
fi

log "6. the lowers"
selftest || ovl_umount "$K"
um_umount "$M"
snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower 1 byte for byte unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "lower 2 byte for byte unchanged" "$T/l2.before" "$T/l2.after"

if selftest; then
	log "self-test: part 7 is about unionmount's own markers: skipped"
else
	log "7. the lower data gone or replaced while unmounted (the test changes it)"
	UNIONCTL=${UNIONCTL:-$(dirname "$UNIONMOUNT")/ctl/unionctl}
	t "$UNIONCTL" diff -o "$OPTS" >"$T/diff.out" 2>/dev/null
	expect_eq "unionctl diff: chmod and setxattr are metadata-only changes" "m d/chmod|m d/setxattr" \
		"$(grep -E ' d/(chmod|setxattr)$' "$T/diff.out" | LC_ALL=C sort | paste -sd '|')"
	t "$UNIONCTL" check -q -o "$OPTS" >"$T/check.out" 2>&1
	expect_eq "unionctl check: nothing wrong" "0 " "$? $(cat "$T/check.out")"
	expect_refused "an upper with metacopy files as a lowerdir" "metacopy files.*cannot be a lowerdir" \
		"$M" -o "lowerdir=$U:$L1:$L2"
	# metacopy=off reads what metacopy=on wrote
	um_mount "$M" "$OPTS,metacopy=off" || finish
	expect_eq "metacopy=off reads a metacopy file's lower data" "lower data of chmod" "$(cat "$M/d/chmod")"
	um_umount "$M"
	snapshot "$U" "$T/u.before"
	mv "$L2/d/chmod" "$L2/d/chmod.away"
	printf 'another file\n' >"$L2/d/chmod"
	um_mount "$M" "$OPTS" || finish
	expect_probe "replaced below: the metacopy file fails with EIO" EIO lstat "$M/d/chmod"
	expect_eq "replaced below: the other files still read" "lower data of setxattr" "$(cat "$M/d/setxattr")"
	um_umount "$M"
	expect_match "replaced below: the daemon says why" "copied up without its data \(metacopy\)" "$(cat "$T"/daemon.*.log)"
	rm "$L2/d/chmod"
	um_mount "$M" "$OPTS" || finish
	expect_probe "gone below: EIO" EIO lstat "$M/d/chmod"
	um_umount "$M"
	mv "$L2/d/chmod.away" "$L2/d/chmod"
	snapshot "$U" "$T/u.after"
	expect_same_file "nothing written to upper meanwhile" "$T/u.before" "$T/u.after"
	um_mount "$M" "$OPTS" || finish
	expect_eq "put back: it reads again" "600 lower data of chmod" "$(stat -c %a "$M/d/chmod") $(cat "$M/d/chmod")"
	um_umount "$M"
fi

finish
