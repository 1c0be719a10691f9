#!/usr/bin/env bash
# t_fallthru: fallthru entries and complete directories (fallthru=on, the
# default): what a program sees through the mount, and what is left on
# disk in upper and the workdir. Rules checked (DESIGN.md "readdir and
# fallthrus", issue 4):
# 1. The first listing of a merged directory writes into upper one
#    fallthru (char 0:(0x80000+L), a hard link to a shared marker
#    WORKDIR/unionmount/fallthru/L.N) per name visible from below that
#    upper lacks, L the top-most lower showing it; none for upper's own
#    names or hidden ones; then trusted.unionmount.complete (16 hex
#    digits); the upper dir's mtime is kept; trusted.unionmount.format is
#    "2" on the upper root. Lower-only dirs get no upper part by being
#    listed. fallthru=off and -o ro write nothing (and still list right).
# 2. Cookies (telldir/seekdir) resume within one handle, in a fresh open
#    by another process, and after unmount + mount: on ext4 (the temp dir)
#    and on a tmpfs upper.
# 3. d_type and d_ino of fallthrus equal lstat through the mount.
# 4. A 100,000-name dir from 3 lowers (plus upper, whiteouts, shadowing,
#    255-byte names, newline, control bytes, invalid UTF-8, ".wh." names):
#    every name once, the same after remount, seekdir spot checks, the
#    ext4 link limit of a marker (1.1 full at 65000: 1.2 started).
# 5. Lookups in complete dirs answer from upper: an absent name is ENOENT;
#    a name added to a lower while unmounted stays hidden (documented
#    difference from overlayfs) until the lowerdir list changes (one
#    appended, one prepended: the refill fixes every layer); a lower
#    object removed while unmounted lists as DT_UNKNOWN and stat says EIO.
# 6. Differential against kernel overlayfs on complete dirs: unlink/rmdir
#    (whiteout replaces the fallthru), create, renames in and out and over
#    fallthru'd names, copy-up (chmod/write/truncate) replacing the
#    fallthru, hard links, mkdir in a fallthru'd lower dir, rmdir
#    emptiness, a redirected dir listed after the move and after remount.
# 7. Crash states: fallthrus without the complete mark, fallthrus of the
#    wrong layer, fallthrus of names gone below (built by hand), and real
#    kill -9 rounds during the filling of 100,000 names: the next listing
#    is right and leaves the dir complete.
# 8. Concurrent first listings; a writer churning other names meanwhile.
# 9. -o fallthru=maybe is refused (one line, nothing mounted); an upper of
#    format "4" is refused; one of format "1" is upgraded to "2" at a
#    read-write mount and left alone at a read-only one.
# UNIONMOUNT=kernel-overlay runs what applies to kernel overlayfs (the
# listings, cookies, lookups, the differential part) and skips the on-disk
# checks, the documented differences, the kill rounds and the options.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon
command -v python3 >/dev/null || skip "python3 is needed to build the 100,000-name layers"
command -v getfattr >/dev/null && command -v setfattr >/dev/null || skip "getfattr/setfattr (package attr) needed"

# The cookies helper (cookies.c): from HELPERS when meson built it,
# otherwise compiled here.
COOKIES=$HELPERS/cookies
if [ ! -x "$COOKIES" ]; then
	COOKIES=$T/cookies
	cc -O2 -Wall -o "$COOKIES" "$LIB_DIR/cookies.c" || die "cannot build helper cookies"
fi
ondisk() { ! selftest; }
START=$(date +%s)

# ---------------------------------------------------------------- python side
# big.py lowers N L1 L2 L3 | upper N U | expect N | scan DIR
#   the 100,000-name directory: "lowers"/"upper" build it, "expect" prints
#   "NAME TYPE LAYER" per visible name (escaped as treedump does, sorted;
#   LAYER 0 = upper's own), "scan" prints what a directory holds on disk:
#   "NAME ft:L" (fallthru), "NAME wh" (whiteout) or "NAME TYPE", sorted.
cat >"$T/big.py" <<'EOF'
import os, stat, sys

def esc(b):
    return ''.join(chr(c) if 0x20 < c < 0x7f and c != 0x5c else '\\x%02x' % c for c in b)

SPECIAL = [  # name, layer, kind
    (b'L' * 255, 1, 'f'),
    (b'M' * 254 + b'3', 3, 'f'),
    (b'new\nline', 2, 'f'),
    (b'ctl\x01\x02\x1b\x7f', 3, 'f'),
    (b'bad\xff\xfe', 1, 'f'),
    (b'\xc3\x28', 2, 'f'),
    (b'.wh.foo', 2, 'f'),
    (b'.wh..wh..opq', 3, 'f'),
    (b'sp ace\\tab\t', 1, 'l'),
    (b'\xe2\x82\xac-euro', 3, 'd'),
]

def plan(n):
    # name -> [(layer, kind)], top first; kind w = whiteout, layer 0 = upper
    p = {}
    for i in range(n):
        r = i % 10
        top = 1 if r < 7 else 2 if r < 9 else 3
        m = i % 1000
        kind = 'd' if m == 1 else 'l' if m == 2 else 'p' if m == 3 else 'f'
        ents = [(top, kind)]
        if i % 7 == 0 and top < 3:
            ents.append((3, 'f'))           # shadowed below
        if top == 3 and i % 13 == 0:
            ents.insert(0, (2, 'w'))        # hidden by a whiteout in l2
        if i % 100 == 5:
            ents.insert(0, (0, 'f'))        # upper's own
        elif i % 100 == 6:
            ents.insert(0, (0, 'w'))        # whited out in upper
        p[b'n%06d' % i] = ents
    for name, layer, kind in SPECIAL:
        p[name] = [(layer, kind)]
    p[b'U' * 255] = [(0, 'f')]
    for i in range(500):
        p[b'u%05d' % i] = [(0, 'f')]
    for i in range(3):
        p[b'stale%d' % i] = [(0, 'w')]     # whiteouts hiding nothing
    return p

def make(path, kind):
    if kind == 'f':
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    elif kind == 'd':
        os.mkdir(path)
    elif kind == 'l':
        os.symlink(b'target', path)
    elif kind == 'p':
        os.mkfifo(path)
    elif kind == 'w':
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))

def kind_of(st):
    m = st.st_mode
    if stat.S_ISCHR(m) and os.major(st.st_rdev) == 0:
        mi = os.minor(st.st_rdev)
        if mi == 0:
            return 'wh'
        if 0x80000 < mi <= 0x80000 + 0xffff:
            return 'ft:%d' % (mi - 0x80000)
    for f, c in ((stat.S_ISREG, 'f'), (stat.S_ISDIR, 'd'), (stat.S_ISLNK, 'l'), (stat.S_ISFIFO, 'p'),
                 (stat.S_ISCHR, 'c'), (stat.S_ISBLK, 'b'), (stat.S_ISSOCK, 's')):
        if f(m):
            return c
    return '?'

def main():
    mode = sys.argv[1]
    if mode == 'scan':
        d = os.fsencode(sys.argv[2])
        out = [esc(e.name) + ' ' + kind_of(os.lstat(os.path.join(d, e.name))) for e in os.scandir(d)]
        sys.stdout.write(''.join(l + '\n' for l in sorted(out)))
        return
    p = plan(int(sys.argv[2]))
    if mode in ('lowers', 'upper'):
        dirs = [os.fsencode(d) for d in sys.argv[3:]]
        want = [0] if mode == 'upper' else [1, 2, 3]
        for d in dirs:
            os.makedirs(d, exist_ok=True)
        for name, ents in p.items():
            for layer, kind in ents:
                if layer in want:
                    make(os.path.join(dirs[want.index(layer)], name), kind)
    elif mode == 'expect':
        out = ['%s %s %d' % (esc(name), ents[0][1], ents[0][0]) for name, ents in p.items() if ents[0][1] != 'w']
        sys.stdout.write(''.join(l + '\n' for l in sorted(out)))

main()
EOF
py() { python3 "$T/big.py" "$@"; }

# ---------------------------------------------------------------- helpers

# A dir's complete mark ("" when absent).
complete_of() { getfattr --absolute-names --only-values -n trusted.unionmount.complete "$1" 2>/dev/null; }
format_of() { getfattr --absolute-names --only-values -n trusted.unionmount.format "$1" 2>/dev/null; }

# expect_ft LABEL PATH LAYER: PATH (in an upper) is a fallthru to LAYER.
expect_ft() {
	local seen
	if seen=$(_is_fallthru "$2" "$3"); then
		pass "$1: ${2#"$T"/} is a fallthru to layer $3"
	else
		fail "$1: expected ${2#"$T"/} to be a fallthru to layer $3 (char 0:$(printf %x $((0x80000 + $3)))), seen: $seen"
	fi
}
# expect_nothing LABEL PATH: no entry at all.
expect_nothing() {
	if [ ! -e "$2" ] && [ ! -L "$2" ]; then
		pass "$1: no ${2#"$T"/} in upper"
	else
		fail "$1: expected no ${2#"$T"/}, seen: $(_describe "$2")"
	fi
}
expect_complete() { # LABEL DIR
	local v
	v=$(complete_of "$2")
	expect_match "$1: ${2#"$T"/} is marked complete" '^[0-9a-f]{16}$' "$v"
}
expect_not_complete() {
	local v
	v=$(complete_of "$2")
	expect_eq "$1: ${2#"$T"/} has no complete mark" "" "$v"
}
# The fallthrus of DIR on disk, "NAME LAYER" sorted.
ft_set() { py scan "$1" | awk '$2 ~ /^ft:/ { sub(/^ft:/, "", $2); print $1, $2 }'; }

# list DIR OUT: cookies list, with a timeout; returns its status.
list() {
	local rc
	tl 180 "$COOKIES" list "$1" >"$2" 2>"$2.err"
	rc=$?
	[ $rc -eq 124 ] && echo "TIMEOUT listing $1" >>"$2.err"
	return $rc
}
# names_types LIST: "NAME DTYPE" per entry of a cookies list (without the
# end line), sorted.
names_types() { awk '$1 != "/" { print $1, $2 }' "$1" | LC_ALL=C sort; }
# oracle_names DUMP DIR: "NAME DTYPE" of DIR's entries in a treedump.
oracle_names() { awk -v d="$2" '$1 == "e" && $2 == d { print $3, $4 }' "$1" | LC_ALL=C sort; }

# expect_list_ok LABEL LISTFILE RC: the listing ran, no name twice.
expect_list_ok() {
	local dups
	if [ "$3" -ne 0 ]; then
		fail "$1: listing failed (status $3): $(head -3 "$2.err")"
		return
	fi
	dups=$(awk '$1 != "/" { print $1 }' "$2" | LC_ALL=C sort | uniq -d | head -5 | xargs)
	expect_eq "$1: no name listed twice" "" "$dups"
}

# cookie_checks LABEL DIR: the cookie rules on DIR, from a fresh listing
# saved to $T/cookies.LABEL: within one handle (seekdir), in a fresh
# open by another process, and again after dropping the caches (so the
# kernel's cached listing cannot answer for the daemon).
cookie_checks() {
	local label=$1 dir=$2 f=$T/cookies.$1 rc
	tl 120 "$HELPERS/seekdir" "$dir" >"$f.seek" 2>&1
	rc=$?
	expect_eq "$label: telldir/seekdir within one handle ($(tail -1 "$f.seek"))" 0 "$rc"
	list "$dir" "$f"
	rc=$?
	expect_list_ok "$label: saved listing" "$f" "$rc"
	tl 120 "$COOKIES" check "$dir" "$f" 2>"$f.chk"
	rc=$?
	expect_eq "$label: every saved cookie resumes in a fresh open by another process ($(tail -1 "$f.chk"))" 0 "$rc"
	[ $rc -eq 0 ] || head -5 "$f.chk" | sed 's/^/     /'
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
	tl 120 "$COOKIES" check "$dir" "$f" 2>"$f.chk2"
	rc=$?
	expect_eq "$label: ... and after dropping the caches ($(tail -1 "$f.chk2"))" 0 "$rc"
	[ $rc -eq 0 ] || head -5 "$f.chk2" | sed 's/^/     /'
}
# cookie_recheck LABEL DIR SAVEDLABEL: after a remount, the cookies saved
# by cookie_checks SAVEDLABEL still resume, and a new listing is the same
# (names, order, d_type, d_ino, cookies).
cookie_recheck() {
	local label=$1 dir=$2 f=$T/cookies.$3 rc
	tl 120 "$COOKIES" check "$dir" "$f" 2>"$f.re.$label"
	rc=$?
	expect_eq "$label: cookies saved before the remount resume ($(tail -1 "$f.re.$label"))" 0 "$rc"
	[ $rc -eq 0 ] || head -5 "$f.re.$label" | sed 's/^/     /'
	list "$dir" "$f.again.$label"
	rc=$?
	expect_list_ok "$label: listing" "$f.again.$label" "$rc"
	expect_same_file "$label: the listing (names, order, d_type, d_ino, cookies) is the one before" \
		"$f" "$f.again.$label"
}

# ftype PATH: the one-letter type of lstat (treedump's letters).
ftype() {
	case $(t stat -c %F -- "$1" 2>/dev/null) in
	"regular file" | "regular empty file") echo f ;;
	directory) echo d ;;
	"symbolic link") echo l ;;
	fifo) echo p ;;
	"character special file") echo c ;;
	"block special file") echo b ;;
	socket) echo s ;;
	*) echo "?" ;;
	esac
}
# dtype_ino_checks LABEL DIR LIST: every entry's d_type and d_ino equal
# lstat's through the mount (names unescaped with printf %b). The
# self-test compares d_type only: kernel overlayfs gives an upper dir
# merged with a lower one it was not copied from its upper d_ino.
dtype_ino_checks() {
	local label=$1 dir=$2 lst=$3 name dt ino cookie raw got want bad='' n=0
	while read -r name dt ino cookie; do
		[ "$name" == / ] && continue
		printf -v raw '%b' "$name"
		if selftest; then
			got=$dt
			want=$(ftype "$dir/$raw")
		else
			got="$dt $ino"
			want="$(ftype "$dir/$raw") $(t stat -c %i -- "$dir/$raw" 2>&1)"
		fi
		n=$((n + 1))
		[ "$got" == "$want" ] || bad+=" $name: readdir '$got', lstat '$want';"
	done <"$lst"
	if [ -z "$bad" ] && [ $n -gt 2 ]; then
		pass "$label: d_type and d_ino of all $n entries equal lstat's"
	else
		fail "$label: d_type/d_ino differ from lstat ($n entries):$bad"
	fi
}

# strip the ctimes of a treedump (copies of an upper have new ones).
noctime() { sed -E 's/ c=[0-9]+\.[0-9]+//' "$1" >"$1.noc"; }
# tree_vs_oracle LABEL MNT ORACLEDUMP
tree_vs_oracle() {
	local out=$T/tree.$((++NTREE)) rc
	tree_dump "$2" "$out"
	rc=$?
	[ $rc -eq 0 ] || { fail "$1: tree dump has anomalies (status $rc):"; grep '^!' "$out" | head -10 | sed 's/^/     /'; }
	noctime "$out"
	expect_same_file "$1: whole tree equals kernel overlayfs" "$3.noc" "$out.noc"
}
NTREE=0

pin_times() { find "$@" -exec touch -h -d "@$DIFF_OLD" {} + || die "cannot pin times in $*"; }

# kill_daemon MNT: SIGKILL our daemon for MNT and undo the dead mount as
# cleanup would (lazy unmount), forgetting it.
kill_daemon() {
	local m=$1 pid=${_pid_of[$1]:-}
	if [ -n "$pid" ] && _is_our_daemon "$pid" "$m"; then
		kill -KILL "$pid"
	else
		fail "the daemon for $m is not running before the kill"
	fi
	timeout 10 fusermount3 -uz "$m" 2>/dev/null || timeout 10 umount -l "$m"
	_forget_mount "$m"
	if [ -n "$pid" ]; then
		wait "$pid" 2>/dev/null
		unset '_pid_of[$m]'
	fi
	_is_mounted "$m" && die "$m still mounted after the lazy unmount"
}

# ================================================================ the small tree
# SMALL/l1 l2 l3 (top-most first) and SMALL/u.pristine; every upper used
# below is a copy of u.pristine.
S=$T/small
L1=$S/l1 L2=$S/l2 L3=$S/l3 L4=$S/l4 L0=$S/l0
mkdir -p "$L1" "$L2" "$L3" "$L4" "$L0" "$S/u.pristine"
build_small() {
	local u=$S/u.pristine i n
	# m: merged from upper and all three lowers.
	mkf "$L1" m/a
	mkf "$L1" m/both
	mkf "$L3" m/both
	mkf "$L1" m/shadow
	mkf "$u" m/shadow
	mkf "$L1" m/hl1
	mkhl "$L1" m/hl1 m/hl2
	mkf "$L2" m/b
	mkln "$L2" m/sl b
	mkfifo_at "$L2" m/ff
	mkf "$L2" m/two3
	mkf "$L3" m/two3
	mkf "$L2" m/gone
	mkwh "$u" m/gone
	mkwh "$L2" m/hid
	mkf "$L3" m/hid
	mkwh "$L1" m/l1hides
	mkf "$L3" m/l1hides
	mkf "$L3" m/c
	mkf "$L3" m/ldir/x
	mkf "$L3" m/ldir/sub/y
	mkf "$L2" m/ldir2/p
	mkf "$L3" m/ldir2/q
	mkopq "$L2" m/opq
	mkf "$L2" m/opq/in
	mkf "$L3" m/opq/hidden
	mkf "$u" m/udir/uf
	mkf "$L3" m/udir/lf
	mkf "$u" m/uown
	mkwh "$u" m/stale
	# top level
	mkf "$L2" top2
	mkf "$u" utop
	mkf "$L3" lonly/deep/er
	# uo: upper only, 1000 names; cdir: merged, 2000 names of every kind
	# (more fallthrus than a listing lstats one by one).
	mkdir -p "$u/uo" "$L1/cdir" "$L2/cdir" "$L3/cdir" "$u/cdir"
	for ((i = 0; i < 1000; i++)); do : >"$u/uo/o$i"; done
	for ((i = 0; i < 2000; i++)); do
		n=c$i
		case $((i % 3)) in
		0) p=$L1/cdir/$n ;;
		1) p=$L2/cdir/$n ;;
		2) p=$L3/cdir/$n ;;
		esac
		if ((i % 50 == 7)); then mkdir "$p"
		elif ((i % 71 == 5)); then ln -s "t$i" "$p"
		elif ((i % 89 == 3)); then mkfifo "$p"
		else : >"$p"
		fi
		((i % 10 == 0)) && : >"$u/cdir/$n"
	done
	for ((i = 1; i < 2000; i += 97)); do ((i % 10)) && mknod "$u/cdir/c$i" c 0 0; done
	# cr: for the crash states.
	for n in p1 p2 p3 p4 p5 p6; do mkf "$L1" "cr/$n"; done
	for n in q1 q2 q3 q4; do mkf "$L2" "cr/$n"; done
	for n in r1 r2 r3 wh3; do mkf "$L3" "cr/$n"; done
	mkwh "$L2" cr/wh3
	mkf "$L3" cr/p1
	mkd "$L2" cr/qd
	mkf "$u" cr/own
	return 0
}
build_small
pin_times "$L1" "$L2" "$L3" "$S/u.pristine"
oracle_dump "$T/small.oracle" "$S/u.pristine" "$L1" "$L2" "$L3"
noctime "$T/small.oracle"
# copy_upper NAME: a fresh copy of the pristine upper as $S/NAME with an
# empty workdir $S/NAME.w.
copy_upper() {
	rm -rf --one-file-system "$S/$1" "$S/$1.w"
	cp -a "$S/u.pristine" "$S/$1" && mkdir "$S/$1.w" || die "cannot copy the upper to $S/$1"
}
sopts() { printf 'upperdir=%s,workdir=%s,%s' "$1" "$2" "$(lowerdir_opt "$L1" "$L2" "$L3")"; }

M=$T/mnt
mkdir -p "$M"
snapshot "$L1" "$T/l1.before"

# ---------------------------------------------------------------- 1, 3: on-disk state, d_type/d_ino
log "1. the first listing of a merged directory (ext4 upper: $(stat -f -c %T "$T"))"
copy_upper u
U=$S/u W=$S/u.w
OPTS=$(sopts "$U" "$W")
pin_times "$U"
(cd "$U" && find . -type d | LC_ALL=C sort) >"$T/u.dirs.before"
um_mount "$M" "$OPTS" || finish
if ondisk; then
	expect_eq "the format mark on the upper root at a read-write mount" 2 "$(format_of "$U")"
	expect_eq "mounting alone writes no fallthru" "" "$(ft_set "$U/m")"
	expect_not_complete "mounting alone" "$U/m"
fi
list "$M/m" "$T/m.list1"
expect_list_ok "first listing of m" "$T/m.list1" $?
names_types "$T/m.list1" >"$T/m.nt1"
oracle_names "$T/small.oracle" m >"$T/m.oracle.nt"
expect_same_file "m: names and d_types of the first listing equal kernel overlayfs's" "$T/m.oracle.nt" "$T/m.nt1"
if ondisk; then
	printf '%s\n' "a 1" "both 1" "hl1 1" "hl2 1" "b 2" "sl 2" "ff 2" "two3 2" "ldir2 2" "opq 2" \
		"c 3" "ldir 3" | LC_ALL=C sort >"$T/m.ft.want"
	ft_set "$U/m" >"$T/m.ft.seen"
	expect_same_file "m: exactly one fallthru per name shown from below, to the top-most lower showing it" \
		"$T/m.ft.want" "$T/m.ft.seen"
	expect_ft "m" "$U/m/a" 1
	expect_ft "m (also in l3)" "$U/m/both" 1
	expect_ft "m (in l2 and l3)" "$U/m/two3" 2
	expect_ft "m (lower dir under an opaque marker)" "$U/m/opq" 2
	expect_ft "m (only in l3)" "$U/m/c" 3
	expect_eq "m: upper's own file kept" "u.pristine:m/shadow" "$(cat "$U/m/shadow")"
	expect_eq "m: upper's own file uown kept" "u.pristine:m/uown" "$(cat "$U/m/uown")"
	expect_eq "m: upper's whiteout kept" "character special file 0:0" "$(_describe "$U/m/gone")"
	expect_eq "m: upper's merged dir kept" "directory 0:0" "$(_describe "$U/m/udir")"
	expect_nothing "m: hidden by a whiteout in l2" "$U/m/hid"
	expect_nothing "m: hidden by a whiteout in l1" "$U/m/l1hides"
	expect_complete "m after its first listing" "$U/m"
	expect_eq "m: the upper dir's mtime is unchanged by the listing" "$DIFF_OLD" "$(stat -c %Y "$U/m")"
	mk=$(stat -c %i "$W/unionmount/fallthru/1.1" 2>&1)
	expect_eq "m: a fallthru is a hard link to the marker WORKDIR/unionmount/fallthru/1.1" "$mk" "$(stat -c %i "$U/m/a")"
	links=$(stat -c %h "$U/m/a")
	if [ "$links" -ge 5 ]; then
		pass "m: the layer-1 marker has $links links (4 fallthrus of layer 1 in m, and itself)"
	else
		fail "m: expected the layer-1 marker to have at least 5 links, seen $links"
	fi
	expect_eq "m: the layer-3 fallthrus share one marker" "$(stat -c %i "$W/unionmount/fallthru/3.1" 2>&1)" \
		"$(stat -c %i "$U/m/c")"
fi
list "$M/m" "$T/m.list2"
expect_list_ok "second listing of m (same mount)" "$T/m.list2" $?
expect_same_file "m: the second listing is the same (names, order, d_type, d_ino, cookies)" "$T/m.list1" "$T/m.list2"

log "3. d_type and d_ino of fallthrus"
dtype_ino_checks "m" "$M/m" "$T/m.list1"
for nt in "a f" "sl l" "ff p" "ldir d" "ldir2 d" "opq d" "udir d" "shadow f"; do
	expect_eq "m: readdir gives $nt" 1 "$(grep -c "^$nt " "$T/m.list1")"
done
expect_eq "m: the two names of one lower inode have one d_ino" \
	"$(awk '$1 == "hl1" { print $3 }' "$T/m.list1")" "$(awk '$1 == "hl2" { print $3 }' "$T/m.list1")"

log "1. lower-only dirs listed: no upper part"
expect_eq "listing m/ldir" "sub x" "$(t ls "$M/m/ldir" | xargs)"
expect_eq "listing m/ldir/sub" "y" "$(t ls "$M/m/ldir/sub" | xargs)"
expect_eq "listing lonly/deep" "er" "$(t ls "$M/lonly/deep" | xargs)"
expect_eq "listing the opaque lower dir m/opq" "in" "$(t ls "$M/m/opq" | xargs)"
list "$M" "$T/root.list"
expect_list_ok "listing the root" "$T/root.list" $?
if ondisk; then
	expect_ft "m/ldir after being listed" "$U/m/ldir" 3
	expect_ft "lonly after the root was listed" "$U/lonly" 3
	expect_eq "the root's mtime is unchanged by its listing" "$DIFF_OLD" "$(stat -c %Y "$U")"
	expect_complete "the root after its listing" "$U"
	expect_eq "the root's fallthrus" "lonly 3,top2 2" "$(ft_set "$U" | paste -sd,)"
fi
tree_vs_oracle "ext4 upper, first mount" "$M" "$T/small.oracle"
if ondisk; then
	(cd "$U" && find . -type d | LC_ALL=C sort) >"$T/u.dirs.after"
	expect_same_file "listing every directory gave no lower-only dir an upper part" \
		"$T/u.dirs.before" "$T/u.dirs.after"
	for d in "" /m/udir /cdir /cr; do expect_complete "after the whole-tree walk" "$U$d"; done
	expect_eq "upper-only dir: no fallthru" "" "$(ft_set "$U/uo")"
	expect_eq "m/udir: the one name from below has a fallthru" "lf 3" "$(ft_set "$U/m/udir")"
	# A lower-only directory listed (the kernel keeps that listing),
	# then copied up by a change of its own (a chmod to the mode it has:
	# no name in it changes), and its parent with it: the next listing of
	# each writes its fallthrus, as a first listing does.
	t chmod "$(stat -c %a "$M/lonly/deep")" "$M/lonly/deep"
	expect_eq "lonly/deep: copied up by a chmod, not complete yet" "directory 0:0/" \
		"$(_describe "$U/lonly/deep")/$(complete_of "$U/lonly/deep")"
	expect_eq "listing lonly/deep again after its copy-up" "er" "$(t ls "$M/lonly/deep" | xargs)"
	expect_complete "lonly/deep, listed after its copy-up" "$U/lonly/deep"
	expect_ft "lonly/deep after that listing" "$U/lonly/deep/er" 3
	expect_eq "listing lonly again after its copy-up (as deep's parent)" "deep" "$(t ls "$M/lonly" | xargs)"
	expect_complete "lonly, listed after its copy-up" "$U/lonly"
fi

log "2. cookies, ext4 upper"
cookie_checks ext4-merged "$M/cdir"
list "$M/cdir" "$T/cdir.list"
expect_list_ok "listing cdir" "$T/cdir.list" $?
dtype_ino_checks "cdir (2000 names of every kind)" "$M/cdir" "$T/cdir.list"
cookie_checks ext4-upperonly "$M/uo"
cookie_checks ext4-m "$M/m"
um_umount "$M"
if ondisk; then
	CM1=$(complete_of "$U/m")
	snapshot "$U" "$T/u.listed.before"
fi
um_mount "$M" "$OPTS" || finish
log "after remount"
cookie_recheck ext4-merged "$M/cdir" ext4-merged
cookie_recheck ext4-upperonly "$M/uo" ext4-upperonly
cookie_recheck ext4-m "$M/m" ext4-m
dtype_ino_checks "m after remount" "$M/m" "$T/cookies.ext4-m.again.ext4-m"
tree_vs_oracle "ext4 upper, after remount" "$M" "$T/small.oracle"
if ondisk; then
	expect_eq "a remount with the same lowerdir list keeps m's complete mark" "$CM1" "$(complete_of "$U/m")"
	snapshot "$U" "$T/u.listed.after"
	expect_same_file "listing complete dirs after a remount writes nothing (upper strict: ctimes, xattrs, entries)" \
		"$T/u.listed.before" "$T/u.listed.after"
fi
expect_probe "an absent name in a complete dir" ENOENT lstat "$M/m/nosuch"
expect_probe "a whited-out name in a complete dir" ENOENT lstat "$M/m/gone"
expect_probe "a name hidden in l2, in a complete dir" ENOENT lstat "$M/m/hid"
expect_eq "a fallthru'd file reads from its layer" "l1:m/both" "$(t cat "$M/m/both")"
expect_eq "a fallthru'd file of layer 2 reads" "l2:m/two3" "$(t cat "$M/m/two3")"
expect_eq "through a fallthru'd lower dir" "l3:m/ldir/sub/y" "$(t cat "$M/m/ldir/sub/y")"
um_umount "$M"

log "1. fallthru=off: nothing written, listing right"
copy_upper uoff
pin_times "$S/uoff"
snapshot "$S/uoff/m" "$T/uoff.m.before"
um_mount "$M" "$(sopts "$S/uoff" "$S/uoff.w"),fallthru=off" || finish
tree_vs_oracle "fallthru=off" "$M" "$T/small.oracle"
tl 120 "$HELPERS/seekdir" -r 1 "$M/cdir" >"$T/off.seek" 2>&1
rc=$?
expect_eq "fallthru=off: telldir/seekdir within one handle ($(tail -1 "$T/off.seek"))" 0 $rc
um_umount "$M"
if ondisk; then
	snapshot "$S/uoff/m" "$T/uoff.m.after"
	expect_same_file "fallthru=off: the merged dir m in upper unchanged (strict)" "$T/uoff.m.before" "$T/uoff.m.after"
	expect_eq "fallthru=off: no fallthru anywhere in upper" "" \
		"$(find "$S/uoff" -type c ! -exec sh -c '[ "$(stat -c %t:%T "$1")" = 0:0 ]' sh {} \; -print | head -3)"
	expect_eq "fallthru=off: no complete mark anywhere" "" \
		"$(getfattr -R --absolute-names -n trusted.unionmount.complete "$S/uoff" 2>/dev/null | grep -a '^# file' | head -3)"
	expect_eq "fallthru=off: no fallthru marker in the workdir" "" "$(ls -A "$S/uoff.w/unionmount/fallthru" 2>&1)"
fi

log "1. -o ro with an upperdir: nothing written"
copy_upper uro
pin_times "$S/uro"
snapshot "$S/uro" "$T/uro.before"
um_mount "$M" "ro,$(sopts "$S/uro" "$S/uro.w")" || finish
tree_vs_oracle "-o ro" "$M" "$T/small.oracle"
um_umount "$M"
if ondisk; then
	snapshot "$S/uro" "$T/uro.after"
	expect_same_file "-o ro: upper unchanged (strict, xattrs included)" "$T/uro.before" "$T/uro.after"
	# The workdir's empty layout may be made at any mount (kernel
	# overlayfs makes its work/ too); no marker, no file.
	expect_eq "-o ro: nothing but empty directories in the workdir" "" \
		"$(find "$S/uro.w" -mindepth 1 ! -type d | head -3)"
	log "-o ro: the workdir holds: $(cd "$S/uro.w" && find . -mindepth 1 | LC_ALL=C sort | xargs)"
else
	log "self-test: kernel overlayfs writes xattrs into upper even at a ro mount: not compared"
fi

log "2. cookies, tmpfs upper"
kmount tmpfs "$T/tfs" size=64m,mode=0755
expect_eq "the tmpfs upper is on tmpfs" tmpfs "$(stat -f -c %T "$T/tfs")"
cp -a "$S/u.pristine" "$T/tfs/u" && mkdir "$T/tfs/w" || die "cannot copy the upper to tmpfs"
pin_times "$T/tfs/u"
TOPTS=$(sopts "$T/tfs/u" "$T/tfs/w")
um_mount "$M" "$TOPTS" || finish
list "$M/m" "$T/tm.list"
expect_list_ok "tmpfs: first listing of m" "$T/tm.list" $?
names_types "$T/tm.list" >"$T/tm.nt"
expect_same_file "tmpfs: m names and d_types equal kernel overlayfs's" "$T/m.oracle.nt" "$T/tm.nt"
if ondisk; then
	ft_set "$T/tfs/u/m" >"$T/tm.ft.seen"
	expect_same_file "tmpfs: the fallthrus of m" "$T/m.ft.want" "$T/tm.ft.seen"
	expect_complete "tmpfs" "$T/tfs/u/m"
	expect_eq "tmpfs: m's mtime unchanged" "$DIFF_OLD" "$(stat -c %Y "$T/tfs/u/m")"
fi
dtype_ino_checks "tmpfs m" "$M/m" "$T/tm.list"
cookie_checks tmpfs-merged "$M/cdir"
cookie_checks tmpfs-upperonly "$M/uo"
um_umount "$M"
um_mount "$M" "$TOPTS" || finish
cookie_recheck tmpfs-merged "$M/cdir" tmpfs-merged
cookie_recheck tmpfs-upperonly "$M/uo" tmpfs-upperonly
tree_vs_oracle "tmpfs upper, after remount" "$M" "$T/small.oracle"
um_umount "$M"
kumount "$T/tfs"

# ---------------------------------------------------------------- 7 a-c: crash states by hand
log "7. crash states built by hand (dir cr)"
oracle_names "$T/small.oracle" cr >"$T/cr.oracle.nt"
printf '%s\n' "p1 1" "p2 1" "p3 1" "p4 1" "p5 1" "p6 1" "q1 2" "q2 2" "q3 2" "q4 2" "qd 2" \
	"r1 3" "r2 3" "r3 3" | LC_ALL=C sort >"$T/cr.ft.want"
# crash_check TAG LABEL UPPER: mount, check lookups before the listing,
# list, compare, check upper, remount, list again.
crash_check() {
	local tag=$1 label=$2 u=$3 o
	o=$(sopts "$u" "$u.w")
	um_mount "$M" "$o" || return
	expect_eq "$label: before the listing, q1 reads from l2" "l2:cr/q1" "$(t cat "$M/cr/q1")"
	expect_eq "$label: before the listing, r1 reads from l3" "l3:cr/r1" "$(t cat "$M/cr/r1")"
	expect_probe "$label: before the listing, ghost is absent" ENOENT lstat "$M/cr/ghost"
	expect_probe "$label: before the listing, wh3 (whited out in l2) is absent" ENOENT lstat "$M/cr/wh3"
	list "$M/cr" "$T/cr.$tag"
	expect_list_ok "$label: listing cr" "$T/cr.$tag" $?
	names_types "$T/cr.$tag" >"$T/cr.$tag.nt"
	expect_same_file "$label: cr lists what kernel overlayfs shows" "$T/cr.oracle.nt" "$T/cr.$tag.nt"
	ft_set "$u/cr" >"$T/cr.$tag.ft"
	expect_same_file "$label: after the listing, upper holds exactly the right fallthrus" "$T/cr.ft.want" "$T/cr.$tag.ft"
	expect_complete "$label: after the listing" "$u/cr"
	expect_eq "$label: upper's own file kept" "u.pristine:cr/own" "$(cat "$u/cr/own")"
	expect_eq "$label: q1 reads from l2" "l2:cr/q1" "$(t cat "$M/cr/q1")"
	expect_eq "$label: p1 reads from l1" "l1:cr/p1" "$(t cat "$M/cr/p1")"
	expect_probe "$label: ghost is absent" ENOENT lstat "$M/cr/ghost"
	dtype_ino_checks "$label: cr" "$M/cr" "$T/cr.$tag"
	um_umount "$M"
	um_mount "$M" "$o" || return
	list "$M/cr" "$T/cr.$tag.2"
	expect_list_ok "$label: listing cr after remount" "$T/cr.$tag.2" $?
	expect_same_file "$label: the same listing after remount" "$T/cr.$tag" "$T/cr.$tag.2"
	um_umount "$M"
}
if ondisk; then
	# (a) a filling interrupted: some fallthrus (real links to markers), no mark.
	copy_upper cra
	um_mount "$M" "$(sopts "$S/cra" "$S/cra.w")" && { t ls "$M/cr" >/dev/null; um_umount "$M"; }
	expect_complete "(a) setup: a real filling" "$S/cra/cr"
	setfattr -x trusted.unionmount.complete "$S/cra/cr"
	rm -f "$S/cra/cr"/{p2,p4,p6,q2,q4,qd,r2}
	expect_eq "(a) setup: 7 fallthrus left, no mark" "7 " "$(ft_set "$S/cra/cr" | wc -l) $(complete_of "$S/cra/cr")"
	crash_check a "(a) some fallthrus, no mark" "$S/cra"
	# (b) fallthrus (made by mknod, as cp -a would leave them) of the wrong layer.
	copy_upper crb
	mknod "$S/crb/cr/p1" c 0 $((0x80003)) # p1 is in l1 and l3: l1 shows it
	mknod "$S/crb/cr/q1" c 0 $((0x80003)) # q1 is in l2 only
	mknod "$S/crb/cr/r1" c 0 $((0x80001)) # r1 is in l3 only
	mknod "$S/crb/cr/p3" c 0 $((0x80001)) # right
	mknod "$S/crb/cr/qd" c 0 $((0x80001)) # a dir in l2
	crash_check b "(b) fallthrus of the wrong layer, no mark" "$S/crb"
	# (c) fallthrus of names nothing below shows.
	copy_upper crc
	mknod "$S/crc/cr/ghost" c 0 $((0x80002))
	mknod "$S/crc/cr/wh3" c 0 $((0x80003)) # in l3, whited out in l2
	mknod "$S/crc/cr/p2" c 0 $((0x80001))
	crash_check c "(c) stale fallthrus, no mark" "$S/crc"
	expect_nothing "(c) the stale fallthru ghost was removed" "$S/crc/cr/ghost"
	expect_nothing "(c) the stale fallthru wh3 was removed" "$S/crc/cr/wh3"
	# (a+b+c) on top of a complete mark of another lower stack.
	copy_upper crd
	mknod "$S/crd/cr/ghost" c 0 $((0x80001))
	mknod "$S/crd/cr/q2" c 0 $((0x80001))
	setfattr -n trusted.unionmount.complete -v 0123456789abcdef "$S/crd/cr"
	crash_check abc "(a+b+c) stale and wrong fallthrus under a complete mark of another stack" "$S/crd"
else
	log "self-test: the crash states are unionmount's own on-disk format: skipped"
fi

# ---------------------------------------------------------------- 5: lookups in complete dirs
log "5. lookups in complete directories, lowers changed while unmounted"
mkf "$L2" m/late
um_mount "$M" "$OPTS" || finish
if ondisk; then
	expect_probe "a name added to l2 while unmounted stays hidden in the complete m (documented)" ENOENT lstat "$M/m/late"
	list "$M/m" "$T/m.late1"
	expect_eq "... and is not listed" 0 "$(grep -c '^late ' "$T/m.late1")"
	c1=$(complete_of "$U/m")
else
	expect_eq "self-test: kernel overlayfs shows a name added while unmounted" "l2:m/late" "$(t cat "$M/m/late")"
fi
um_umount "$M"
# Another lowerdir list: appended empty l4.
um_mount "$M" "upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2" "$L3" "$L4")" || finish
list "$M/m" "$T/m.l4"
expect_list_ok "with l4 appended: listing m" "$T/m.l4" $?
expect_eq "with l4 appended: the new name is listed" 1 "$(grep -c '^late f ' "$T/m.l4")"
expect_eq "with l4 appended: it reads" "l2:m/late" "$(t cat "$M/m/late")"
names_types "$T/m.l4" >"$T/m.l4.nt"
{ cat "$T/m.oracle.nt"; echo "late f"; } | LC_ALL=C sort >"$T/m.late.nt"
expect_same_file "with l4 appended: m lists what kernel overlayfs would" "$T/m.late.nt" "$T/m.l4.nt"
if ondisk; then
	expect_ft "with l4 appended: the refill" "$U/m/late" 2
	c2=$(complete_of "$U/m")
	expect_match "with l4 appended: m is complete again" '^[0-9a-f]{16}$' "$c2"
	[ "$c2" != "$c1" ] && pass "with l4 appended: the complete mark names another stack" ||
		fail "with l4 appended: the complete mark is still '$c1'"
fi
um_umount "$M"
# Another lowerdir list: empty l0 prepended, so every lower layer number
# moves by one; a dir complete for the old list and not listed yet still
# resolves through its lowers. (Kernel overlayfs with index=on refuses
# another top lower: ESTALE. Not in the self-test.)
if ! selftest; then
	um_mount "$M" "upperdir=$U,workdir=$W,$(lowerdir_opt "$L0" "$L1" "$L2" "$L3")" || finish
	expect_eq "with l0 prepended: a name in a not yet listed dir (old fallthrus) reads" "l3:m/udir/lf" "$(t cat "$M/m/udir/lf")"
	expect_eq "with l0 prepended: cr/q1 before cr is listed" "l2:cr/q1" "$(t cat "$M/cr/q1")"
	list "$M/m" "$T/m.l0"
	expect_list_ok "with l0 prepended: listing m" "$T/m.l0" $?
	names_types "$T/m.l0" >"$T/m.l0.nt"
	expect_same_file "with l0 prepended: m lists the same names" "$T/m.late.nt" "$T/m.l0.nt"
	expect_eq "with l0 prepended: m/a reads from l1" "l1:m/a" "$(t cat "$M/m/a")"
	expect_eq "with l0 prepended: m/c reads from l3" "l3:m/c" "$(t cat "$M/m/c")"
	dtype_ino_checks "with l0 prepended: m" "$M/m" "$T/m.l0"
	if ondisk; then
		awk '{ print $1, $2 + 1 } END { print "late 3" }' "$T/m.ft.want" | LC_ALL=C sort >"$T/m.ft.l0.want"
		ft_set "$U/m" >"$T/m.ft.l0.seen"
		expect_same_file "with l0 prepended: every fallthru of m rewritten one layer down" "$T/m.ft.l0.want" "$T/m.ft.l0.seen"
	fi
	um_umount "$M"
fi
um_mount "$M" "$OPTS" || finish
list "$M/m" "$T/m.back"
names_types "$T/m.back" >"$T/m.back.nt"
expect_same_file "the original list again: m lists the same names" "$T/m.late.nt" "$T/m.back.nt"
expect_eq "the original list again: m/a" "l1:m/a" "$(t cat "$M/m/a")"
if ondisk; then
	{ cat "$T/m.ft.want"; echo "late 2"; } | LC_ALL=C sort >"$T/m.ft.back.want"
	ft_set "$U/m" >"$T/m.ft.back.seen"
	expect_same_file "the original list again: fallthrus back to their layers" "$T/m.ft.back.want" "$T/m.ft.back.seen"
	expect_eq "the original list again: the complete mark is the first one again" "$c1" "$(complete_of "$U/m")"
fi
um_umount "$M"
# A lower object removed while unmounted.
rm -f "$L3/m/c"
um_mount "$M" "$OPTS" || finish
list "$M/m" "$T/m.gonec"
expect_list_ok "after removing l3's m/c: listing m" "$T/m.gonec" $?
if ondisk; then
	expect_eq "a fallthru whose object is gone lists with DT_UNKNOWN" "c u" "$(awk '$1 == "c" { print $1, $2 }' "$T/m.gonec")"
	expect_probe "... and lstat says EIO" EIO lstat "$M/m/c"
	expect_match "... and the daemon says why" "'c'.*layer 3" "$(cat "${_log_of[$M]}")"
	if daemon_alive "$M"; then pass "the daemon still runs after the EIO"; else fail "the daemon died after the EIO"; fi
else
	expect_probe "self-test: kernel overlayfs no longer shows m/c" ENOENT lstat "$M/m/c"
fi
expect_eq "the other names still read" "l1:m/a l2:m/b" "$(t cat "$M/m/a" "$M/m/b" | xargs)"
expect_eq "the rest of m still lists" "$(grep -cv '^c ' "$T/m.back")" "$(grep -cv '^c ' "$T/m.gonec")"
um_umount "$M"
printf 'l3:m/c\n' >"$L3/m/c"
touch -d "@$DIFF_OLD" "$L3/m/c"
if ondisk; then
	# Fallthrus standing for nothing: they must not block a name or a
	# removal. stalecase: no complete mark (the fallthru is transparent);
	# rmc: complete (the mark of this stack, copied from m) with only a
	# fallthru whose layer has no part there.
	mkdir "$U/stalecase" "$U/rmc"
	mknod "$U/stalecase/ghost" c 0 $((0x80001))
	mknod "$U/rmc/ghost" c 0 $((0x80003))
	setfattr -n trusted.unionmount.complete -v "$(complete_of "$U/m")" "$U/rmc"
	um_mount "$M" "$OPTS" || finish
	expect_probe "a fallthru nothing below backs, in a dir not complete: the name is absent" ENOENT lstat "$M/stalecase/ghost"
	expect_eq "... and can be created" "new" "$(t sh -c 'echo new >"$1" && cat "$1"' sh "$M/stalecase/ghost")"
	expect_eq "... as a real upper file" "regular file" "$(stat -c %F "$U/stalecase/ghost")"
	expect_probe "a broken fallthru in a complete dir: EIO" EIO lstat "$M/rmc/ghost"
	expect_probe "... and that dir can still be removed" OK rmdir "$M/rmc"
	expect_eq "... leaving nothing in upper" "absent" "$(_describe "$U/rmc")"
	expect_eq "mknod of a fallthru's device number through the union is refused" EPERM \
		"$(tin "$M" "$HELPERS/fsop" mknod fakeft chr 0 $((0x80001)) 2>&1)"
	um_umount "$M"
fi

# ================================================================ the big directory
log "4. a 100,000-name directory from 3 lowers"
N=100000
B=$T/big
t0=$(date +%s.%N)
py lowers $N "$B/l1/big" "$B/l2/big" "$B/l3/big" || die "cannot build the big lowers"
py upper $N "$B/u0/big" || die "cannot build the big upper"
py expect $N >"$B/expect" || die "cannot compute the big expectation"
log "built in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
awk '{ print $1, $2 }' "$B/expect" | sed '1i . d\n.. d' | LC_ALL=C sort >"$B/expect.nt"
awk '$3 != 0 { print $1, $3 }' "$B/expect" >"$B/expect.ft"
NVIS=$(($(wc -l <"$B/expect") + 2))
# big_upper NAME: a fresh copy of the big upper (few entries: cheap).
big_upper() {
	rm -rf --one-file-system "$B/$1" "$B/$1.w"
	cp -a "$B/u0" "$B/$1" && mkdir "$B/$1.w" || die "cannot copy the big upper"
}
bopts() { printf 'upperdir=%s,workdir=%s,%s' "$B/$1" "$B/$1.w" "$(lowerdir_opt "$B/l1" "$B/l2" "$B/l3")"; }
# big_listing_ok LABEL LIST RC: count, every name once, the expected set.
big_listing_ok() {
	expect_list_ok "$1" "$2" "$3"
	expect_eq "$1: entry count" "$NVIS" "$(grep -vc '^/ ' "$2")"
	names_types "$2" >"$2.nt"
	expect_same_file "$1: names and d_types" "$B/expect.nt" "$2.nt"
}
big_upper u1
um_mount "$M" "$(bopts u1)" || finish
t0=$(date +%s.%N)
list "$M/big" "$B/list1"
rc=$?
FILL_MS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%d", (b - a) * 1000 }')
log "first listing of big/ (the filling included): ${FILL_MS} ms"
big_listing_ok "big: first listing" "$B/list1" $rc
if ondisk; then
	py scan "$B/u1/big" | awk '$2 ~ /^ft:/ { sub(/^ft:/, "", $2); print $1, $2 }' >"$B/ft1"
	expect_same_file "big: one fallthru per name from below, of the right layer" "$B/expect.ft" "$B/ft1"
	expect_complete "big" "$B/u1/big"
	n1=$(grep -c ' 1$' "$B/expect.ft")
	nm=$(find "$B/u1.w/unionmount/fallthru" -name '1.*' | wc -l)
	expect_eq "big: the layer-1 markers hold one link per layer-1 fallthru ($n1), plus their own names" \
		"$((n1 + nm))" "$(find "$B/u1.w/unionmount/fallthru" -name '1.*' -printf '%n\n' | awk '{ s += $1 } END { print s + 0 }')"
	if [ "$(stat -f -c %T "$B")" == ext2/ext3 ]; then
		expect_eq "big: marker 1.1 reached ext4's link limit" 65000 "$(stat -c %h "$B/u1.w/unionmount/fallthru/1.1" 2>&1)"
		expect_eq "big: marker 1.2 took the rest of layer 1's $n1 fallthrus" "$((n1 - 64999 + 1))" \
			"$(stat -c %h "$B/u1.w/unionmount/fallthru/1.2" 2>&1)"
	else
		log "upper on $(stat -f -c %T "$B"), not ext4: the 65000-link limit is not checked"
	fi
	expect_eq "big: the upper's own and whiteouts kept" "$(awk '$3 == 0' "$B/expect" | wc -l) 1000" \
		"$(py scan "$B/u1/big" | awk '$2 == "f" { f++ } $2 == "wh" && $1 ~ /^n/ { w++ } END { print f + 0, w + 0 }')"
fi
tl 120 "$COOKIES" check -e 997 "$M/big" "$B/list1" 2>"$B/chk1"
rc=$?
expect_eq "big: seekdir spot checks in a fresh open ($(tail -1 "$B/chk1"))" 0 $rc
# Odd names, looked up through the mount.
for nm in "$(printf 'L%.0s' $(seq 255))" "$(printf 'M%.0s' $(seq 254))3" $'new\nline' $'ctl\x01\x02\x1b\x7f' \
	$'bad\xff\xfe' $'\xc3\x28' .wh.foo .wh..wh..opq $'sp ace\\tab\t' $'\xe2\x82\xac-euro' "$(printf 'U%.0s' $(seq 255))"; do
	printf -v shown '%q' "$nm"
	expect_probe "big: lstat of ${shown:0:40}" OK lstat "$M/big/$nm"
done
expect_probe "big: a name whited out in upper" ENOENT lstat "$M/big/n000006"
expect_probe "big: a name whited out in l2" ENOENT lstat "$M/big/n000039"
expect_probe "big: an absent name" ENOENT lstat "$M/big/n100000"
for i in 000001 000002 000003 000777 099999; do
	s=$(t stat -c '%i' "$M/big/n$i" 2>&1)
	expect_eq "big: d_ino of n$i equals its st_ino" "$s" "$(awk -v n="n$i" '$1 == n { print $3 }' "$B/list1")"
done
um_umount "$M"
um_mount "$M" "$(bopts u1)" || finish
list "$M/big" "$B/list2"
big_listing_ok "big: after remount" "$B/list2" $?
expect_same_file "big: the listing after remount is the one before (order, d_ino, cookies)" "$B/list1" "$B/list2"
tl 120 "$COOKIES" check -e 997 -n 3 "$M/big" "$B/list1" 2>"$B/chk2"
rc=$?
expect_eq "big: cookies from before the remount resume ($(tail -1 "$B/chk2"))" 0 $rc
um_umount "$M"

# ---------------------------------------------------------------- 7d: kill -9 during the filling
log "7. kill -9 during the filling of big/"
interrupted=0
for round in 1 2 3; do
	big_upper k$round
	um_mount "$M" "$(bopts k$round)" || continue
	frac=$(awk -v r="$round" -v s="$RANDOM" 'BEGIN { srand(s); split("0.08 0.25 0.5", lo, " "); split("0.2 0.45 0.75", hi, " "); printf "%.3f", lo[r] + rand() * (hi[r] - lo[r]) }')
	delay=$(awk -v f="$frac" -v ms="$FILL_MS" 'BEGIN { printf "%.3f", f * ms / 1000 }')
	list "$M/big" "$B/k$round.during" &
	lpid=$!
	if selftest; then
		wait "$lpid"
		log "round $round: self-test, no kill"
		um_umount "$M"
	else
		sleep "$delay"
		kill_daemon "$M"
		wait "$lpid"
		nft=$(ft_set "$B/k$round/big" | wc -l)
		mark=$(complete_of "$B/k$round/big")
		log "round $round: killed after ${delay}s (bash reports it as Killed: expected): $nft of $(wc -l <"$B/expect.ft") fallthrus written, complete mark '${mark}'"
		[ -z "$mark" ] && [ "$nft" -gt 0 ] && [ "$nft" -lt "$(wc -l <"$B/expect.ft")" ] && interrupted=$((interrupted + 1))
		if [ -n "$mark" ]; then
			ft_set "$B/k$round/big" >"$B/k$round.ft0"
			expect_same_file "round $round: a complete mark is only there after every fallthru" "$B/expect.ft" "$B/k$round.ft0"
		fi
	fi
	um_mount "$M" "$(bopts k$round)" || continue
	list "$M/big" "$B/k$round.after"
	big_listing_ok "round $round: after the kill and a remount" "$B/k$round.after" $?
	if ondisk; then
		ft_set "$B/k$round/big" >"$B/k$round.ft"
		expect_same_file "round $round: the fallthrus after the refill" "$B/expect.ft" "$B/k$round.ft"
		expect_complete "round $round: after the refill" "$B/k$round/big"
		expect_eq "round $round: WORKDIR/unionmount/work is empty" "" "$(ls -A "$B/k$round.w/unionmount/work" 2>&1)"
	fi
	um_umount "$M"
	rm -rf --one-file-system "$B/k$round" "$B/k$round.w"
done
if ! selftest; then
	if [ $interrupted -ge 1 ]; then
		pass "harness: $interrupted of 3 kills landed during the filling"
	else
		fail "harness: no kill landed during the filling (first listing took ${FILL_MS} ms): the crash case was not exercised"
	fi
fi

# ---------------------------------------------------------------- 8: concurrency
log "8. concurrent first listings"
big_upper c1
um_mount "$M" "$(bopts c1)" || finish
pids=()
for k in 1 2 3 4; do
	list "$M/big" "$B/conc.$k" &
	pids+=($!)
done
for k in 1 2 3 4; do
	wait "${pids[k - 1]}"
	big_listing_ok "concurrent first reader $k" "$B/conc.$k" $?
done
if ondisk; then
	ft_set "$B/c1/big" >"$B/c1.ft"
	expect_same_file "concurrent first readers: the fallthrus written once" "$B/expect.ft" "$B/c1.ft"
	expect_complete "concurrent first readers" "$B/c1/big"
fi
um_umount "$M"

log "8. first listings while a writer creates and removes other names"
big_upper c2
um_mount "$M" "$(bopts c2)" || finish
pids=()
for k in 1 2 3; do
	list "$M/big" "$B/churn.$k" &
	pids+=($!)
done
tl 180 "$COOKIES" churn "$M/big" zchurn 400 2>"$B/churn.err" &
wpid=$!
for k in 1 2 3; do
	wait "${pids[k - 1]}"
	rc=$?
	expect_list_ok "reader $k during the churn" "$B/churn.$k" $rc
	grep -v '^zchurn\.' "$B/churn.$k" >"$B/churn.$k.kept"
	names_types "$B/churn.$k.kept" >"$B/churn.$k.nt"
	expect_same_file "reader $k during the churn: every untouched name exactly once" "$B/expect.nt" "$B/churn.$k.nt"
done
wait "$wpid"
rc=$?
expect_eq "the writer's creates and unlinks all worked ($(tail -1 "$B/churn.err"))" 0 $rc
list "$M/big" "$B/churn.after"
big_listing_ok "after the churn" "$B/churn.after" $?
um_umount "$M"
um_mount "$M" "$(bopts c2)" || finish
list "$M/big" "$B/churn.remount"
big_listing_ok "after the churn and a remount" "$B/churn.remount" $?
if ondisk; then
	ft_set "$B/c2/big" >"$B/c2.ft"
	expect_same_file "after the churn: the fallthrus" "$B/expect.ft" "$B/c2.ft"
	expect_complete "after the churn" "$B/c2/big"
fi
um_umount "$M"
rm -rf --one-file-system "$B/c1" "$B/c1.w" "$B/c2" "$B/c2.w" "$B/u1" "$B/u1.w"

# ---------------------------------------------------------------- 9: bad input
log "9. bad input"
if ondisk; then
	copy_upper ubad
	expect_refused "-o fallthru=maybe" "fallthru" "$M" -o "$(sopts "$S/ubad" "$S/ubad.w"),fallthru=maybe"
	expect_eq "-o fallthru=maybe: nothing written to upper" "" "$(format_of "$S/ubad")"
	setfattr -n trusted.unionmount.format -v 4 "$S/ubad"
	expect_refused "an upper of format 4" "format.*4|4.*format" "$M" -o "$(sopts "$S/ubad" "$S/ubad.w")"
	expect_eq "format 4: the mark is left as it was" 4 "$(format_of "$S/ubad")"
	expect_refused "an upper of format 4, read-only" "format.*4|4.*format" "$M" -o "ro,$(sopts "$S/ubad" "$S/ubad.w")"
	setfattr -n trusted.unionmount.format -v 1 "$S/ubad"
	if um_mount "$M" "ro,$(sopts "$S/ubad" "$S/ubad.w")"; then
		expect_eq "format 1, -o ro: the union reads" "l1:m/a" "$(t cat "$M/m/a")"
		um_umount "$M"
	fi
	expect_eq "format 1, -o ro: the mark is left alone" 1 "$(format_of "$S/ubad")"
	if um_mount "$M" "$(sopts "$S/ubad" "$S/ubad.w")"; then
		expect_eq "format 1, read-write: the union reads" "l1:m/a" "$(t cat "$M/m/a")"
		um_umount "$M"
	fi
	expect_eq "format 1, read-write: the upper is marked format 2" 2 "$(format_of "$S/ubad")"
	for v in on off; do
		if um_mount "$M" "$(sopts "$S/ubad" "$S/ubad.w"),fallthru=$v"; then
			pass "-o fallthru=$v is accepted"
			um_umount "$M"
		fi
	done
else
	log "self-test: the options and the format mark are unionmount's own: skipped"
fi

# ---------------------------------------------------------------- 6: differential
log "6. operations on complete directories, differential against kernel overlayfs"
dbuild() {
	local r=$1
	mkf "$r/u" d/uown
	mkwh "$r/u" d/uwh
	mkf "$r/l3" d/uwh
	mkf "$r/l1" d/f1
	mkf "$r/l1" d/hl
	mkhl "$r/l1" d/hl d/hl2
	mkhl "$r/l1" d/hl d/hl3
	mkf "$r/l1" d/dir1/x
	mkf "$r/l1" d/dir1/y
	mkf "$r/l3" d/dir1/z
	mkf "$r/l1" d/chm
	mkf "$r/l1" d/wr
	mkf "$r/l2" d/tr
	mkf "$r/l1" d/x1
	mkf "$r/l2" d/x2
	mkf "$r/l2" d/f2
	mkf "$r/l2" d/dir2/a
	mkln "$r/l2" d/sym f1
	mkf "$r/l2" d/ldir/lf
	mkf "$r/l2" d/ldir2/k
	mkf "$r/l3" d/ldir2/k3
	mkd "$r/l3" d/emptyl
	mkf "$r/l3" d/f3
	mkf "$r/l3" d/ovr
	mkf "$r/u" e/ue
	mkf "$r/l1" e/e1
	mkf "$r/l3" e/e3
	mkf "$r/l3" e/sub/s
	mkf "$r/u" o/own
	mkf "$r/l2" o/o2
	mkd "$r/u" n
	mkf "$r/u" n/nf
	mkf "$r/l2" lo/a
	mkf "$r/l2" lo/b
	mkd "$r/u" ue
	return 0
}
diff_setup dbuild
dop "first listing of d" "OK chm/f,dir1/d,dir2/d,emptyl/d,f1/f,f2/f,f3/f,hl/f,hl2/f,hl3/f,ldir/d,ldir2/d,ovr/f,sym/l,tr/f,uown/f,wr/f,x1/f,x2/f" readdir d
dop "first listing of e" "OK e1/f,e3/f,sub/d,ue/f" readdir e
dop "first listing of o" "OK o2/f,own/f" readdir o
dop "first listing of the root" "OK d/d,e/d,lo/d,n/d,o/d,ue/d" readdir .
if ondisk; then
	expect_ft "union side, d after its listing" "$T/un/u/d/f1" 1
	expect_ft "union side, d after its listing" "$T/un/u/d/f2" 2
	expect_ft "union side, d after its listing" "$T/un/u/d/dir1" 1
	expect_ft "union side, d after its listing" "$T/un/u/d/hl3" 1
	expect_ft "union side, e after its listing" "$T/un/u/e/e3" 3
	expect_ft "union side, root after its listing" "$T/un/u/lo" 2
	expect_complete "union side" "$T/un/u/d"
	expect_complete "union side" "$T/un/u/e"
fi
dcmp "after the first listings"

log "unlink, create, rmdir over fallthrus"
dop "unlink a fallthru'd file" OK unlink d/f1
up_whiteout "unlink of a fallthru'd file" d/f1
dop "it is gone" ENOENT stat d/f1
dop "create over its whiteout" OK create d/f1 0600
up_type "create over the whiteout: a plain file" d/f1 regular
dop "create over a fallthru'd name" EEXIST create d/f2 0644
dop "mkdir over a fallthru'd name" EEXIST mkdir d/f3 0755
dop "create a new name in a complete dir" OK create d/newf 0644
dop "rmdir a fallthru'd non-empty dir" ENOTEMPTY rmdir d/dir2
dop "unlink in the fallthru'd dir" OK unlink d/dir2/a
dop "rmdir the now empty fallthru'd dir" OK rmdir d/dir2
up_whiteout "rmdir of a fallthru'd dir" d/dir2
dop "rmdir a fallthru'd empty lower dir" OK rmdir d/emptyl
up_whiteout "rmdir of a fallthru'd empty dir" d/emptyl
dop "mkdir over that whiteout" OK mkdir d/emptyl 0755
up_opaque "mkdir over the whiteout of a fallthru'd dir" d/emptyl
dop "unlink a fallthru'd symlink" OK unlink d/sym
up_whiteout "unlink of a fallthru'd symlink" d/sym
dop "listing of d" "OK chm/f,dir1/d,emptyl/d,f1/f,f2/f,f3/f,hl/f,hl2/f,hl3/f,ldir/d,ldir2/d,newf/f,ovr/f,tr/f,uown/f,wr/f,x1/f,x2/f" readdir d

log "copy-up of fallthru'd files"
dop "chmod a fallthru'd file" OK chmod d/chm 0600
up_metacopy "chmod copies up, replacing the fallthru" d/chm "l1:d/chm"
dop "write a fallthru'd file" OK write d/wr 0 "W"
up_file "write copies up" d/wr "W1:d/wr"
dop "truncate a fallthru'd file" OK truncate d/tr 3
up_file "truncate copies up" d/tr "l2:"
dop "stat after chmod" "~OK f 0600 0:0 [0-9]+ 1" stat d/chm

log "hard links of a fallthru'd lower file"
dop "stat hl (three names in l1)" "~OK f 0644 0:0 [0-9]+ 3" stat d/hl
dop "link hl to a new name" OK link d/hl d/hlnew
dop "nlink after the link" "~OK f 0644 0:0 [0-9]+ 4" stat d/hl2
dop "unlink hl2" OK unlink d/hl2
up_whiteout "unlink of a fallthru'd hard link" d/hl2
dop "nlink after the unlink" "~OK f 0644 0:0 [0-9]+ 3" stat d/hl3
dop "write through hl3" OK append d/hl3 "+hl3"
dop "read through hl" "OK l1:d/hl\x0a+hl3" read d/hl
dop "read through hlnew" "OK l1:d/hl\x0a+hl3" read d/hlnew

log "renames of fallthru'd names"
dop "rename a fallthru'd file to another complete dir" OK rename d/f3 o/f3moved
up_whiteout "rename out of a complete dir leaves a whiteout" d/f3
up_file "the moved file" o/f3moved "l3:d/f3"
dop "rename a fallthru'd file into a complete dir" OK rename o/o2 d/o2in
up_whiteout "the source of a rename into d" o/o2
dop "rename upper's own file over a fallthru'd name" OK rename d/uown d/f2
up_file "rename over a fallthru'd name" d/f2 "u:d/uown"
up_absent "the upper-only source goes" d/uown
dop "rename a fallthru'd file over another" OK rename d/x1 d/ovr
up_whiteout "its source" d/x1
up_file "its target" d/ovr "l1:d/x1"
dop "rename a fallthru'd file into an upper-only dir" OK rename d/x2 n/x2
up_whiteout "rename into an upper-only dir" d/x2
dop "rename a fallthru'd merged dir (l1+l3) to another complete dir" OK rename d/dir1 o/dir1moved
up_whiteout "the moved dir's old name" d/dir1
dop "list the moved dir" "OK x/f,y/f,z/f" readdir o/dir1moved
dop "read in the moved dir" "OK l3:d/dir1/z\x0a" read o/dir1moved/z
dop "rename a lower-only dir (fallthru'd in the root) into d" OK rename lo d/lo2
dop "list it" "OK a/f,b/f" readdir d/lo2
dop "rename a fallthru'd dir over an empty upper dir" OK rename d/ldir ue
dop "listing of the renamed dir" "OK lf/f" readdir ue
dop "mkdir in a moved lower-only dir" OK mkdir d/lo2/newsub 0755
dop "mkdir in a fallthru'd lower dir (l2+l3)" OK mkdir d/ldir2/newsub 0755
up_type "the fallthru'd dir got an upper dir" d/ldir2 directory
up_not_opaque "... not opaque" d/ldir2
dop "list it" "OK k/f,k3/f,newsub/d" readdir d/ldir2
dop "listing of d" "OK chm/f,emptyl/d,f1/f,f2/f,hl/f,hl3/f,hlnew/f,ldir2/d,lo2/d,newf/f,o2in/f,ovr/f,tr/f,wr/f" readdir d
dop "listing of o" "OK dir1moved/d,f3moved/f,own/f" readdir o
dcmp "after the renames"
dremount "remount after the renames"
dop "after remount: the moved dir lists" "OK x/f,y/f,z/f" readdir o/dir1moved
dop "after remount: read in it" "OK l1:d/dir1/x\x0a" read o/dir1moved/x
dop "after remount: lookup of a name never in it" ENOENT stat o/dir1moved/w
dop "after remount: d/dir1 stays gone" ENOENT stat d/dir1
dop "after remount: create in the moved dir" OK create o/dir1moved/n 0644
dop "after remount: mkdir in the moved dir" OK mkdir o/dir1moved/nd 0755
dop "after remount: d/ldir2 lists" "OK k/f,k3/f,newsub/d" readdir d/ldir2
up_type "the moved dir has an upper dir" o/dir1moved directory
dop "move the dir back under another name" OK rename o/dir1moved d/dir1back
dop "list it" "OK n/f,nd/d,x/f,y/f,z/f" readdir d/dir1back

log "rmdir emptiness of a complete dir"
dop "rmdir e (4 names)" ENOTEMPTY rmdir e
dop "unlink upper's own e/ue" OK unlink e/ue
dop "rmdir e (fallthrus left)" ENOTEMPTY rmdir e
dop "unlink e/e1" OK unlink e/e1
dop "unlink e/e3" OK unlink e/e3
dop "rmdir e (the dir sub left)" ENOTEMPTY rmdir e
dop "rmdir e/sub (not empty)" ENOTEMPTY rmdir e/sub
dop "unlink e/sub/s" OK unlink e/sub/s
dop "rmdir e/sub" OK rmdir e/sub
dop "e lists nothing" "OK" readdir e
dop "rmdir e" OK rmdir e
up_whiteout "rmdir of the emptied complete dir" e
dop "mkdir e again" OK mkdir e 0755
up_opaque "mkdir over it" e
dop "the new e is empty" "OK" readdir e
dcmp "after the rmdirs"
dremount "second remount"
dop "after remount: d lists" "OK chm/f,dir1back/d,emptyl/d,f1/f,f2/f,hl/f,hl3/f,hlnew/f,ldir2/d,lo2/d,newf/f,o2in/f,ovr/f,tr/f,wr/f" readdir d
dop "after remount: hl nlink" "~OK f 0644 0:0 [0-9]+ 3" stat d/hl
diff_end

# ---------------------------------------------------------------- the lowers
# (l2 and l3 of the small tree were changed on purpose in part 5; the
# differential part proves its own lowers unchanged)
snapshot "$L1" "$T/l1.after"
expect_same_file "small lower l1 unchanged" "$T/l1.before" "$T/l1.after"
log "took $(($(date +%s) - START))s"
finish
