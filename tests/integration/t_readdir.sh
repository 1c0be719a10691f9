#!/usr/bin/env bash
# t_readdir: a 10,000-name directory merged from upper + 3 lowers, about a
# third of the names shadowed and some whited out (in upper and in a middle
# lower), compared with kernel overlayfs; d_type of every entry; telldir /
# seekdir resume on one handle; getdents64 with tiny buffers; the same again
# on a second open and after a remount. Last, with fallthru=off (listings
# from snapshots) and on (from upper): a name renamed away while another
# listing of its directory is under way must not come back in a listing
# opened afterwards. The kernel fills its cached listing of a directory
# from whichever open handle continues it at the right cookie, completes
# it on any handle's last reply, and checks for changes only when a
# listing starts at 0 on a complete cache: a handle's reply read before
# the change, or the end of a listing begun before it, would put the name
# back (cookies stale, two orders; each failed on a build without the
# daemon's answer to it: rereading a handle behind the change, and
# dropping the kernel's cached listing at the change).
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon

U=$T/upper W=$T/work L1=$T/l1 L2=$T/l2 L3=$T/l3 M=$T/mnt
mkdir -p "$U/big" "$W" "$L1/big" "$L2/big" "$L3/big" "$M"

N=10000
log "building $N names"
# Which branch holds e<i>:  i%3 == 0 -> L3, 1 -> L2, 2 -> L1.
# Shadowed (about 1/3): i%3==0 && even -> also in L1; i%3==1 && even -> also in U.
# Whited out: i%3==2 && i%7==0 -> whiteout in U; i%3==0 && i%11==0 -> whiteout
# in L2 (still visible when L1 also has it, i.e. even i).
# Kinds: i%50==0 directory, i%97==0 symlink, i%113==0 fifo, else a file.
put() { # put LAYER NAME I
	local p=$1/big/$2
	if (($3 % 50 == 0)); then
		mkdir "$p" && printf '%s\n' "${1##*/}" >"$p/in"
	elif (($3 % 97 == 0)); then
		ln -s "target-${1##*/}-$2" "$p"
	elif (($3 % 113 == 0)); then
		mkfifo "$p"
	else
		printf '%s:%s\n' "${1##*/}" "$2" >"$p"
	fi
}
for ((i = 0; i < N; i++)); do
	n=$(printf 'e%05d' "$i")
	case $((i % 3)) in
	0)
		put "$L3" "$n" "$i"
		((i % 2 == 0)) && put "$L1" "$n" "$i"
		((i % 11 == 0)) && mknod "$L2/big/$n" c 0 0
		;;
	1)
		put "$L2" "$n" "$i"
		((i % 2 == 0)) && put "$U" "$n" "$i"
		;;
	2)
		put "$L1" "$n" "$i"
		((i % 7 == 0)) && mknod "$U/big/$n" c 0 0
		;;
	esac
done
for ((i = 0; i < 500; i++)); do
	printf 'upper\n' >"$U/big/$(printf 'u%04d' "$i")"
done
# Whiteouts hiding nothing (stale) in the merged dir: invisible as well.
for i in 1 2 3; do mknod "$U/big/stale$i" c 0 0; done
# Small cases: an empty merged dir, a merged dir whose every name is whited out.
mkdir -p "$U/empty" "$L1/empty" "$L3/empty"
mkf "$L2" allgone/a
mkf "$L3" allgone/b
mkwh "$L1" allgone/a
mkwh "$L1" allgone/b
mkd "$U" allgone
# A directory of one lower alone: listed from a snapshot.
mkf "$L2" onlylow/x

expected_visible=$(
	for ((i = 0; i < N; i++)); do
		case $((i % 3)) in
		0) ((i % 11 == 0 && i % 2 == 1)) || echo x ;;
		1) echo x ;;
		2) ((i % 7 == 0)) || echo x ;;
		esac
	done | wc -l
)
expected_visible=$((expected_visible + 500 + 2))

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2" "$L3")"
# A pristine copy of upper for the concurrent-first-readers phase.
{ cp -a "$U" "$T/upper.copy" && mkdir "$T/work.copy"; } || die "cannot copy upper"
oracle_dump "$T/oracle.copy.dump" "$T/upper.copy" "$L1" "$L2" "$L3"  # new ctimes in the copy
oracle_dump "$T/oracle.dump" "$U" "$L1" "$L2" "$L3"
# The oracle's view of big/: "NAME DTYPE" per entry, sorted.
awk '$1 == "e" && $2 == "big" { print $3, $4 }' "$T/oracle.dump" | LC_ALL=C sort >"$T/oracle.big"
expect_eq "harness: oracle shows the expected number of names in big/" \
	"$expected_visible" "$(wc -l <"$T/oracle.big")"

check_listing() { # check_listing LABEL
	local label=$1 out=$T/seek.out rc
	tl 120 "$HELPERS/seekdir" -p -r 2 "$M/big" >"$out" 2>"$out.err"
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "$label: telldir/seekdir resume over $(grep -c . "$out") entries ($(cat "$out.err"))"
	else
		fail "$label: telldir/seekdir (status $rc): $(head -5 "$out.err")"
	fi
	awk '{ print $1, $2 }' "$out" | LC_ALL=C sort >"$out.sorted"
	expect_same_file "$label: big/ names and d_types equal the oracle's" "$T/oracle.big" "$out.sorted"
	for d in empty allgone .; do
		tl 60 "$HELPERS/seekdir" -p "$M/$d" >"$out" 2>"$out.err"
		rc=$?
		if [ $rc -eq 0 ]; then pass "$label: seekdir on $d"; else fail "$label: seekdir on $d: $(head -3 "$out.err")"; fi
	done
	expect_eq "$label: empty/ lists only . and .." ". .." "$(t ls -a "$M/empty" | xargs)"
	expect_eq "$label: allgone/ lists only . and .." ". .." "$(t ls -a "$M/allgone" | xargs)"
	for bs in 80 600; do
		tl 120 "$HELPERS/seekdir" -g "$bs" "$M/big" >"$out" 2>"$out.err"
		rc=$?
		LC_ALL=C sort "$out" >"$out.sorted"
		if [ $rc -eq 0 ] && cmp -s <(awk '{ print $1 }' "$T/oracle.big") "$out.sorted"; then
			pass "$label: getdents64 with a $bs-byte buffer gives every name once"
		else
			fail "$label: getdents64 with a $bs-byte buffer (status $rc): $(head -3 "$out.err")"
			diff <(awk '{ print $1 }' "$T/oracle.big") "$out.sorted" | head -10 | sed 's/^/     /'
		fi
	done
}

um_mount "$M" "$OPTS" || finish
log "first open of each directory"
check_listing "first mount, first open"
tree_dump "$M" "$T/union.1.dump"
expect_same_file "whole tree equals kernel overlayfs" "$T/oracle.dump" "$T/union.1.dump"
check_listing "first mount, second open"
expect_probe "whited-out e00014 (upper whiteout over L1)" ENOENT lstat "$M/big/e00014"
expect_probe "whited-out e00033 (L2 whiteout over L3)" ENOENT lstat "$M/big/e00033"
expect_eq "e00066 from L1 above the L2 whiteout" "l1:e00066" "$(t cat "$M/big/e00066")"
expect_eq "e00004 shadowed by upper" "upper:e00004" "$(t cat "$M/big/e00004")"
expect_probe "stale whiteout stale1" ENOENT lstat "$M/big/stale1"
um_umount "$M"

um_mount "$M" "$OPTS" || finish
log "after remount"
check_listing "after remount"
tree_dump "$M" "$T/union.2.dump"
expect_same_file "whole tree equals kernel overlayfs after remount" "$T/oracle.dump" "$T/union.2.dump"
um_umount "$M"

# Four readers open big/ at once on a fresh mount over the pristine copy
# of upper: the first read of a merged dir must be right for all of them.
um_mount "$M" "upperdir=$T/upper.copy,workdir=$T/work.copy,$(lowerdir_opt "$L1" "$L2" "$L3")" || finish
log "four concurrent first readers"
pids=()
for k in 1 2 3 4; do
	tl 120 "$HELPERS/seekdir" -p "$M/big" >"$T/conc.$k" 2>"$T/conc.$k.err" &
	pids+=($!)
done
for k in 1 2 3 4; do
	wait "${pids[k - 1]}"
	rc=$?
	awk '{ print $1, $2 }' "$T/conc.$k" | LC_ALL=C sort >"$T/conc.$k.sorted"
	if [ $rc -eq 0 ] && cmp -s "$T/oracle.big" "$T/conc.$k.sorted"; then
		pass "concurrent reader $k: seekdir ok, names and d_types equal the oracle's"
	else
		fail "concurrent reader $k (status $rc): $(head -3 "$T/conc.$k.err")"
		diff "$T/oracle.big" "$T/conc.$k.sorted" | head -10 | sed 's/^/     /'
	fi
done
tree_dump "$M" "$T/union.3.dump"
expect_same_file "whole tree equals kernel overlayfs after concurrent first reads" "$T/oracle.copy.dump" "$T/union.3.dump"

# rewinddir(3) shows the directory as it is now, on a handle listed from
# a snapshot (a lower-only directory; merged ones too with fallthru=off)
# as on one read from upper (listing the root filled it).
for d in onlylow .; do
	got=$(t python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
before = os.listdir(fd)
open(os.path.join(sys.argv[1], "rewound-new"), "w").close()
print(len(before), "rewound-new" in before, "rewound-new" in os.listdir(fd))' "$M/$d" 2>&1)
	case "$got" in
	*" False True") pass "rewinddir in '$d' shows a name created after the first listing" ;;
	*) fail "rewinddir in '$d' ($got): expected the new name after the rewind only" ;;
	esac
done
um_umount "$M"

COOKIES=$HELPERS/cookies
if [ ! -x "$COOKIES" ]; then
	COOKIES=$T/cookies
	cc -O2 -Wall -o "$COOKIES" "$LIB_DIR/cookies.c" || die "cannot build helper cookies"
fi
mkdir -p "$T/sl/low/d" "$T/sl/low/cu"
# Enough for several getdents64 chunks of 32 KiB on kernel overlayfs too.
for ((i = 0; i < 2000; i++)); do
	printf '%s\n' "$i" >"$T/sl/low/d/$(printf 'name-%05d-of-a-directory-listed-in-chunks' "$i")"
	ln "$T/sl/low/d/$(printf 'name-%05d-of-a-directory-listed-in-chunks' "$i")" "$T/sl/low/cu/$(printf 'cu-%05d-of-a-directory-listed-in-chunks' "$i")"
done
for ft in off on; do
	rm -rf --one-file-system "$T/sl/up" "$T/sl/work"
	mkdir -p "$T/sl/up" "$T/sl/work"
	um_mount "$M" "upperdir=$T/sl/up,workdir=$T/sl/work,lowerdir=$T/sl/low,fallthru=$ft" || finish
	mkdir "$M/dest"
	out=$(tl 60 "$COOKIES" stale "$M/d" "$M/dest" 2>&1)
	rc=$?
	moved=$(printf '%s\n' "$out" | awk '$1 == "moved" { print $2 }' | LC_ALL=C sort | xargs)
	if [ $rc -eq 0 ] && [ "$(wc -w <<<"$moved")" == 2 ]; then
		pass "fallthru=$ft: $moved renamed away while listings were under way: in no listing opened afterwards"
	else
		fail "fallthru=$ft: listings after a rename (status $rc): $out"
	fi
	expect_eq "fallthru=$ft: d/ lists 1998 names, dest/ the moved ones" "1998 $moved" \
		"$(t ls "$M/d" | wc -l) $(t ls "$M/dest" | LC_ALL=C sort | xargs)"
	# The daemon keeps no handle per open directory: a listing begun
	# before its directory was copied up (and filled) goes on with the
	# cookies it was given.
	out=$(tl 60 "$COOKIES" copyup "$M/cu" new 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "fallthru=$ft: a listing begun before its directory's copy-up and fill shows every name once"
	else
		fail "fallthru=$ft: a listing across a copy-up (status $rc): $out"
	fi
	um_umount "$M"
done

# A listing a program stops reading (one entry read, the directory
# closed: no READDIR past its end) is kept for a next READDIR, but not
# without bound: an upper-only directory's kept listing holds an open of
# that directory, besides the directory's own fd. After 200 of them, the
# daemon holds at most 200 + 64 fds on those directories (it keeps 64
# listings at most, then drops the older half).
if ! selftest; then
	mkdir -p "$T/ab/up" "$T/ab/work" "$T/ab/low"
	for ((i = 0; i < 200; i++)); do mkdir "$T/ab/up/d$i" && : >"$T/ab/up/d$i/a" && : >"$T/ab/up/d$i/b"; done
	um_mount "$M" "upperdir=$T/ab/up,workdir=$T/ab/work,lowerdir=$T/ab/low" || finish
	tl 60 python3 -c '
import os, sys
for i in range(200):
    with os.scandir(os.path.join(sys.argv[1], "d%d" % i)) as it:
        next(it)
' "$M" || fail "abandoned listings: the reader failed"
	n=$(find "/proc/${_pid_of[$M]}/fd" -mindepth 1 -printf '%l\n' 2>/dev/null | grep -c "^$T/ab/up/d")
	um_umount "$M"
	if [ "$n" -ge 200 ] && [ "$n" -le 264 ]; then
		pass "200 listings stopped after one entry: the daemon holds $n fds on those directories (200 + at most 64)"
	else
		fail "200 listings stopped after one entry: the daemon holds $n fds on those directories (expected 200 to 264)"
	fi
fi

finish
