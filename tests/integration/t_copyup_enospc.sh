#!/usr/bin/env bash
# t_copyup_enospc: a copy-up that runs out of space fails cleanly.
#
# upper and workdir live on a 1 MiB tmpfs; a 4 MiB lower file cannot be
# copied up. Opening it for append (probe open wa), writing into it (probe
# write) and "echo >>" through the union must fail with ENOSPC, and leave:
# the file as seen through the union equal to the lower (cmp), no upper
# file of that name, the tmpfs' free space as before (no leaked temporary),
# and (unionmount only) WORKDIR/unionmount/work empty. Then a small lower
# file is copied up on the same mount as usual, and after a remount the
# big file still reads as the lower. Lowers are unchanged.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon

S=$T/small L1=$T/l1 L2=$T/l2 M=$T/mnt
kmount tmpfs "$S" size=1m,mode=0755
U=$S/upper W=$S/work
mkdir -p "$U" "$W" "$L1" "$L2" "$M"

head -c 4M /dev/urandom >"$L2/big"
mkf "$L1" small "small
"
mkf "$L2" dir/small2 "small2
"

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"
um_mount "$M" "$OPTS" || finish

avail() { df -B1 --output=avail "$S" | tail -n 1 | tr -d ' '; }
free0=$(avail)

check_clean() { # LABEL
	if t cmp -s "$L2/big" "$M/big"; then
		pass "$1: the union still reads the lower file"
	else
		fail "$1: the union's big differs from the lower ($(t cmp "$L2/big" "$M/big" 2>&1 | head -1))"
	fi
	expect_eq "$1: no upper file named big" "" "$(ls -d "$U/big" 2>/dev/null)"
	expect_eq "$1: the union shows size 4 MiB" 4194304 "$(t stat -c %s "$M/big")"
	local f
	f=$(avail)
	if [ "$f" -ge $((free0 - 8192)) ]; then
		pass "$1: the tmpfs has its space back ($f bytes free, $free0 before)"
	else
		fail "$1: expected about $free0 bytes free on the upper tmpfs, got $f (a leaked temporary?)"
	fi
	if ! selftest; then
		expect_eq "$1: WORKDIR/unionmount/work is empty" "" "$(ls -A "$W/unionmount/work" 2>&1)"
	fi
}

expect_probe "open big O_WRONLY|O_APPEND: the copy-up fails with ENOSPC" ENOSPC open "$M/big" wa
check_clean "after the failed open"
expect_probe "write into big: ENOSPC" ENOSPC write "$M/big"
check_clean "after the failed write"
err=$(t sh -c 'echo more >>"$1"' sh "$M/big" 2>&1)
expect_match "echo >> big fails for lack of space" 'No space left on device' "$err"
check_clean "after the failed echo >>"

if t sh -c 'echo more >>"$1"' sh "$M/small"; then
	pass "small copy-up after the failures"
else
	fail "small copy-up after the failures: expected success, failed"
fi
expect_eq "small: union and upper have the appended line" "small|more| small|more|" \
	"$(t cat "$M/small" | tr '\n' '|') $(tr '\n' '|' <"$U/small" 2>&1)"
if t sh -c 'echo more >>"$1"' sh "$M/dir/small2"; then
	pass "small copy-up with a parent after the failures"
else
	fail "small copy-up with a parent after the failures: expected success, failed"
fi
expect_eq "dir/small2: upper has the appended line" "small2|more|" "$(tr '\n' '|' <"$U/dir/small2" 2>&1)"
if ! selftest; then
	expect_eq "WORKDIR/unionmount/work is empty after the small copy-ups" "" "$(ls -A "$W/unionmount/work" 2>&1)"
fi
um_umount "$M"

snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower l1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "lower l2 unchanged" "$T/l2.before" "$T/l2.after"

um_mount "$M" "$OPTS" || finish
if t cmp -s "$L2/big" "$M/big"; then
	pass "after remount: big still reads as the lower"
else
	fail "after remount: big differs from the lower"
fi
expect_eq "after remount: small has the appended line" "small|more|" "$(t cat "$M/small" | tr '\n' '|')"
um_umount "$M"
kumount "$S"

# No inode left on upper: removing a lower name needs a whiteout, which
# cannot be written; the name must stay (with the error), never vanish
# until remount and come back.
log "whiteout on an upper with no free inode"
S2=$T/ispace
kmount tmpfs "$S2" "nr_inodes=8,mode=0755"
mkdir -p "$S2/u" "$S2/w"
OPTS2="upperdir=$S2/u,workdir=$S2/w,$(lowerdir_opt "$L1" "$L2")"
um_mount "$M" "$OPTS2" || finish
i=0
while t touch "$M/fill$i" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || break
done
err=$(t rm "$M/small" 2>&1)
expect_match "rm of a lower file without room for a whiteout fails" 'No space left on device' "$err"
expect_eq "the lower file is still there" "small|" "$(t cat "$M/small" | tr '\n' '|')"
um_umount "$M"
# (Kernel overlayfs cannot mount on the full tmpfs again: union only.)
if ! selftest; then
	um_mount "$M" "$OPTS2" || finish
	expect_eq "after remount: still there" "small|" "$(t cat "$M/small" | tr '\n' '|')"
	um_umount "$M"
fi
kumount "$S2"

finish
