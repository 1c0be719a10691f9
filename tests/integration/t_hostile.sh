#!/usr/bin/env bash
# t_hostile: hostile and odd input through the union (issue 7), compared
# with kernel overlayfs wherever the two mean the same. t_names.sh (odd
# bytes, 255-byte names, 4 KiB paths) and t_fallthru.sh (".wh." names in a
# 100,000-name listing) are not repeated. Rules checked:
# 1. Names that are markers elsewhere are ordinary names here: aufs's
#    ".wh.NAME", ".wh..wh..opq", ".wh..wh.plnk"; overlayfs's workdir names
#    ("work", "index", "incompat/volatile", "#7"); the daemon's own
#    ("unionmount/fallthru/1.1", "unionmount/index/<16 hex digits>").
#    Created, renamed, linked, removed (whiteouts) and listed through the
#    union, and found in lowers and upper: the same answers and trees as
#    kernel overlayfs.
# 2. Trees deeper than PATH_MAX (24 levels of 250-byte names, about 6 KiB
#    below the root), reached with *at() calls relative to directory fds:
#    read a deep lower file, append to it (copy-up of 24 parents), mkdir
#    a new chain through the union, rename a deep directory with lower
#    parts within its parent (as kernel overlayfs does it: a relative
#    redirect), rename the chain's top, walk it, rm -rf it, across a
#    remount. A rename of a deep directory into another parent may fail
#    with EXDEV (kernel overlayfs does: mv then copies), nothing else.
# 3. Symlink loops (two-link loop, an absolute link to itself through the
#    mount point, a component loop, a chain of 41 links; 40 still resolve):
#    ELOOP as in overlayfs; the daemon never follows them itself (lstat,
#    readlink, lchown copy-up, rename work).
# 4. Sizes: 0-byte files (stat, read, copy-up by chmod, truncate, append,
#    copy_file_range, SEEK_DATA); a 5 GiB sparse lower file with data at 0,
#    across 4 GiB and at its end: copy-up by chmod keeps it sparse (upper
#    st_blocks under 4 MiB) and every offset right; a write past 4 GiB, a
#    truncate to 6 GiB and a new file written at 4.5 GiB.
# 5. Special files from lowers (fifo, unix socket, char 1:3, char 0:7,
#    block 7:0, block 0:0): stat, copy-up by chmod keeps type and device
#    number, rename, removal leaves a whiteout; a fifo and a socket with
#    two names each stay one object through copy-up, link and unlink;
#    mknod char 0:7 and block 0:0 through the union (neither is a
#    marker). With -o dev (one mount, kernel overlayfs in the self-test):
#    a lower fifo carries data through the union (before and after its
#    copy-up), a char device node opens; a unix socket bound through the
#    union accepts a connection made through the union.
# 6. One directory of 20,000 names (UM_HOSTILE_LONG=1: 1,000,000;
#    UM_HOSTILE_NAMES=N sets any number) from two lowers and upper, with
#    shadowed and whited-out names: the listing gives each visible name
#    once (the same set as kernel overlayfs), sampled lookups answer as
#    kernel overlayfs does, with fallthru=on (first and second listing,
#    after a remount) and fallthru=off; the daemon's RSS after each long
#    listing is logged (not checked).
# Parts 1-5 (the use of special files aside) run the same operations
# through kernel overlayfs (read-write, redirect_dir=on, index=on) on an
# identical copy of the branches (the differential machinery of lib.sh)
# and compare every answer and the trees; lowers must be unchanged.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon
command -v python3 >/dev/null || skip "python3 is needed (deep trees, sockets, the big directory)"
command -v setfattr >/dev/null || skip "setfattr (package attr) needed"
START=$(date +%s)
section() { log "$* (at $(($(date +%s) - START))s)"; }

if [ -n "${UM_HOSTILE_NAMES:-}" ]; then
	NBIG=$UM_HOSTILE_NAMES
elif [ "${UM_HOSTILE_LONG:-0}" == 1 ]; then
	NBIG=1000000
else
	NBIG=20000
fi
[[ $NBIG =~ ^[0-9]+$ ]] && [ "$NBIG" -ge 1000 ] || die "UM_HOSTILE_NAMES must be a number of at least 1000"

GiB=$((1024 * 1024 * 1024))
DEPTH=24

# ---------------------------------------------------------------- python side
# hx.py: one operation, one line: "OK [VALUE]" or the errno name.
#   deep build ROOT NAME DEPTH CONTENT    the chain ROOT/NAME/<level 1>/.../<level DEPTH>
#                                         (levels: 3 digits + 247 'd'), holding the file
#                                         "bottom" (CONTENT) and the dir "x" with "inx"
#   deep part ROOT NAME K                 only levels 1..K of that chain, with a file "mid"
#   deep read MNT NAME K FILE             FILE at level K (0 = NAME itself)
#   deep append MNT NAME K FILE TEXT
#   deep mkchain MNT NAME K TEXT          mkdir NAME and K levels, create "bottom"
#   deep list MNT NAME K [SUB]            names of level K (or of SUB there), sorted
#   deep rename MNT NAME K SRC DST [up]   renameat within level K, or into level K-1
#   deep walk MNT NAME                    entries, deepest level, longest path (bytes)
#   pin SECONDS ROOT...                   every time stamp under each ROOT (links not followed)
#   sock serve MNT PATH                   bind PATH, listen, connect to PATH, talk
#   sock mk DIR NAME                      a socket file, no listener
#   big build N L1 L2 U                   the big directory (see big_name)
#   big check DIR N                       names listed, listed twice, missing, extra
#   big lookup DIR N                      lstat of every (N/2000)th name and 50 absent ones
#   big count N                           how many names are visible
# "hx.py seq OP ARGS -- OP ARGS ..." runs several, one answer line each;
# "hx.py both MNT1 MNT2 OP ARGS" runs OP twice, "@MNT" in ARGS being MNT1,
# then MNT2.
cat >"$T/hx.py" <<'EOF'
import errno, os, socket, stat, sys

def level(i):
    return ('%03d' % i) + 'd' * 247

def err(e):
    return errno.errorcode.get(e.errno, 'E?')

def walk_to(root, name, k, create=False):
    """An O_DIRECTORY fd of ROOT/NAME/level1/.../levelK, one *at step each."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for comp in [name] + [level(i) for i in range(1, k + 1)]:
        if create:
            os.mkdir(comp, 0o755, dir_fd=fd)
        nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        os.close(fd)
        fd = nfd
    return fd

def write_file(dfd, name, data, flags=os.O_CREAT | os.O_EXCL | os.O_WRONLY):
    f = os.open(name, flags | os.O_NOFOLLOW, 0o644, dir_fd=dfd)
    try:
        os.write(f, data)
    finally:
        os.close(f)

def read_file(dfd, name):
    f = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
    try:
        out = b''
        while True:
            b = os.read(f, 65536)
            if not b:
                return out
            out += b
    finally:
        os.close(f)

def deep(a):
    op = a[0]
    if op == 'build':
        root, name, k, content = a[1], a[2], int(a[3]), a[4]
        fd = walk_to(root, name, k, create=not os.path.exists(os.path.join(root, name)))
        write_file(fd, 'bottom', content.encode())
        os.mkdir('x', dir_fd=fd)
        x = os.open('x', os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        write_file(x, 'inx', b'inx')
        return 'OK'
    if op == 'part':
        root, name, k = a[1], a[2], int(a[3])
        fd = walk_to(root, name, k, create=True)
        write_file(fd, 'mid', b'mid')
        return 'OK'
    root, name = a[1], a[2]
    if op == 'walk':
        n, deepest, longest = 0, 0, 0
        stack = [(walk_to(root, name, 0), 0, len(name))]
        while stack:
            fd, d, plen = stack.pop()
            deepest = max(deepest, d)
            for e in sorted(os.listdir(fd)):
                n += 1
                longest = max(longest, plen + 1 + len(e))
                st = os.lstat(e, dir_fd=fd)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((os.open(e, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd),
                                  d + 1, plen + 1 + len(e)))
            os.close(fd)
        return 'OK entries=%d depth=%d longest=%d' % (n, deepest, longest)
    k = int(a[3])
    if op == 'mkchain':
        fd = walk_to(root, name, k, create=True)
        write_file(fd, 'bottom', a[4].encode())
        return 'OK'
    fd = walk_to(root, name, k)
    if op == 'read':
        return 'OK ' + read_file(fd, a[4]).decode()
    if op == 'append':
        write_file(fd, a[4], a[5].encode(), os.O_WRONLY | os.O_APPEND)
        return 'OK'
    if op == 'list':
        if len(a) > 4:
            fd = os.open(a[4], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        return 'OK ' + ','.join(sorted(os.listdir(fd)))
    if op == 'rename':
        dst = fd
        if len(a) > 6 and a[6] == 'up':
            dst = os.open('..', os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.rename(a[4], a[5], src_dir_fd=fd, dst_dir_fd=dst)
        return 'OK'
    raise SystemExit('deep: unknown op ' + op)

def sock(a):
    if a[0] == 'mk':
        os.chdir(a[1])  # sun_path holds 108 bytes: bind a short relative name
        s = socket.socket(socket.AF_UNIX)
        s.bind(a[2])
        s.close()
        return 'OK'
    if a[0] == 'serve':
        os.chdir(a[1])
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(a[2])
        srv.listen(1)
        cli = socket.socket(socket.AF_UNIX)
        cli.settimeout(5)
        cli.connect(a[2])
        conn, _ = srv.accept()
        cli.sendall(b'hello')
        got = conn.recv(16)
        for s in (conn, cli, srv):
            s.close()
        return 'OK ' + got.decode()
    raise SystemExit('sock: unknown op ' + a[0])

# The big directory: name i is "n%07d" (every 1000th padded to 255 bytes);
# 60% live in L1, 30% in L2, 10% in upper; every 7th L1 name has a
# shadowed copy in L2; every 97th L1 name is whited out in upper.
def big_name(i):
    n = 'n%07d' % i
    return n + 'L' * (255 - len(n)) if i % 1000 == 999 else n

def big_where(i):
    r = i % 10
    return 'l1' if r < 6 else 'l2' if r < 9 else 'u'

def big_visible(i):
    return not (big_where(i) == 'l1' and i % 97 == 0)

def big(a):
    op, n = a[0], int(a[1] if a[0] in ('build', 'count') else a[2])
    if op == 'build':
        dirs = {'l1': a[2], 'l2': a[3], 'u': a[4]}
        for d in dirs.values():
            os.makedirs(d, exist_ok=True)
        for i in range(n):
            w, name = big_where(i), big_name(i)
            os.close(os.open(os.path.join(dirs[w], name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            if w == 'l1' and i % 7 == 0:
                os.close(os.open(os.path.join(dirs['l2'], name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            if w == 'l1' and i % 97 == 0:
                os.mknod(os.path.join(dirs['u'], name), 0o600 | stat.S_IFCHR, os.makedev(0, 0))
        return 'OK'
    d = a[1]
    if op == 'check':
        seen = {}
        with os.scandir(d) as it:
            for e in it:
                seen[e.name] = seen.get(e.name, 0) + 1
        dups = sum(1 for v in seen.values() if v > 1)
        want = set(big_name(i) for i in range(n) if big_visible(i))
        missing = len(want - seen.keys())
        extra = len(seen.keys() - want)
        return 'OK names=%d dups=%d missing=%d extra=%d' % (len(seen), dups, missing, extra)
    if op == 'count':
        return str(sum(1 for i in range(n) if big_visible(i)))
    if op == 'lookup':
        found = absent = bad = 0
        for i in list(range(0, n, max(1, n // 2000))) + [n - 1]:
            try:
                st = os.lstat(os.path.join(d, big_name(i)))
                found += 1
                if not stat.S_ISREG(st.st_mode) or not big_visible(i):
                    bad += 1
            except FileNotFoundError:
                absent += 1
                if big_visible(i):
                    bad += 1
        for i in range(n, n + 50):
            try:
                os.lstat(os.path.join(d, big_name(i)))
                bad += 1
            except FileNotFoundError:
                pass
        return 'OK found=%d absent=%d wrong=%d' % (found, absent, bad)
    raise SystemExit('big: unknown op ' + op)

def pin(a):
    t = int(a[0])
    def rec(fd):
        for e in os.listdir(fd):
            st = os.lstat(e, dir_fd=fd)
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(e, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                rec(sub)
                os.close(sub)
            os.utime(e, (t, t), dir_fd=fd, follow_symlinks=False)
    for root in a[1:]:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        rec(fd)
        os.utime(fd, (t, t))
        os.close(fd)
    return 'OK'

OPS = {'deep': deep, 'pin': pin, 'sock': sock, 'big': big}

def run(args):
    try:
        return OPS[args[0]](args[1:])
    except OSError as e:
        return err(e)

# One process for several operations: python takes a while to start.
a = sys.argv[1:]
if a[0] == 'both':
    for m in a[1:3]:
        print(run([x.replace('@MNT', m) for x in a[3:]]), flush=True)
elif a[0] == 'seq':
    cmd = []
    for x in a[1:] + ['--']:
        if x == '--':
            print(run(cmd), flush=True)
            cmd = []
        else:
            cmd.append(x)
else:
    print(run(a))
EOF
hx() { python3 "$T/hx.py" "$@"; }

# ---------------------------------------------------------------- differential helpers
# Like dop (lib.sh), for the python operations and for shell commands:
# every "@MNT" in the arguments becomes each side's mountpoint.
_subst() {
	local s=$1 x
	shift
	for x in "$@"; do printf '%s\0' "${x//@MNT/$T/$s/mnt}"; done
}
_pyrun() {
	local s=$1 got
	shift
	local -a args
	mapfile -d '' args < <(_subst "$s" "$@")
	got=$(tl 120 python3 "$T/hx.py" "${args[@]}" 2>&1)
	[ $? -eq 124 ] && got="TIMEOUT"
	printf '%s\n' "$got" | head -3
}
_shrun() {
	local s=$1 got rc
	got=$(tin "$T/$s/mnt" sh -c "$2" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		printf 'OK %s\n' "$(printf '%s' "$got" | head -3 | tr '\n' ' ' | sed 's/ $//')"
	else
		printf 'status %d: %s\n' "$rc" "$(printf '%s' "$got" | head -1 | cut -c1-200)"
	fi
}
# dpy LABEL WANT HX-ARGS...: both sides in one python process.
dpy() {
	local label=$1 want=$2 out rc
	shift 2
	out=$(tl 240 python3 "$T/hx.py" both "$T/ref/mnt" "$T/un/mnt" "$@" 2>&1)
	rc=$?
	local -a ans
	mapfile -t ans <<<"$out"
	if [ $rc -ne 0 ] || [ ${#ans[@]} -ne 2 ]; then
		ans=("status $rc: $(head -c 300 <<<"$out" | tr '\n' ' ')" "(not run)")
	fi
	dcheck "$label" "$want" "${ans[0]}" "${ans[1]}" "hx.py $(printf '%s ' "$@" | cut -c1-80)"
}
# dsh LABEL WANT SHELL-COMMAND (run with the mountpoint as cwd)
dsh() {
	dcheck "$1" "$2" "$(_shrun ref "$3")" "$(_shrun un "$3")" "$3"
}
# upper_blocks SIDE REL: st_blocks of the copy in that side's upper.
upper_blocks() { stat -c %b "$T/$1/u/$2" 2>/dev/null || echo absent; }

# ================================================================ parts 1-5: differential
build() {
	local r=$1 i
	# 1. marker names of aufs, overlayfs and our own
	mkf "$r/l3" .wh.foo
	mkf "$r/l3" .wh..wh..opq
	mkf "$r/l3" .wh..wh.plnk/inside
	mkf "$r/l3" work/incompat/volatile/x
	mkf "$r/l3" index/0100000000000001
	mkf "$r/l3" unionmount/fallthru/1.1
	mkf "$r/l3" "unionmount/work/#7"
	mkf "$r/l3" unionmount/index/0100000000a8c449
	mkf "$r/l2" marked/.wh.a
	mkf "$r/l2" marked/a
	mkf "$r/l3" marked/.wh.b
	mkf "$r/l3" marked/b
	mkf "$r/l3" marked/.wh.a "shadowed by l2"
	mkf "$r/u" marked/.wh.u
	mkf "$r/u" "#1f"
	mkf "$r/u" unionmount/fallthru/2.1
	# 4. empty files
	for i in zero zero2 zero3 zero4; do mkf "$r/l3" "$i" ""; done
	mkf "$r/u" uzero ""
	# 5. special files
	mkdir -p "$r/l2/dev"
	mkfifo "$r/l2/dev/fifo" "$r/l2/dev/fifoR"
	mknod "$r/l2/dev/null" c 1 3
	mknod "$r/l2/dev/c07" c 0 7
	mknod "$r/l2/dev/blk" b 7 0
	mknod "$r/l2/dev/b00" b 0 0
	# sockets (hs1 gets a second name below), and 2. the deep trees:
	# deep in l3 (24 levels) merged with l2 (12) and upper (3); deep2 for
	# rm -rf; deepx for the move into another parent.
	hx seq sock mk "$r/l2/dev" sock -- sock mk "$r/l2/dev" sockR -- sock mk "$r/l2/dev" hs1 \
		-- deep build "$r/l3" deep $DEPTH l3-bottom -- deep part "$r/l2" deep 12 -- deep part "$r/u" deep 3 \
		-- deep build "$r/l3" deep2 $DEPTH deep2 -- deep build "$r/l2" deepx $DEPTH deepx >"$r.built"
	[ "$(sort -u "$r.built")" == OK ] || { cat "$r.built"; return 1; }
	ln "$r/l2/dev/hs1" "$r/l2/dev/hs2"
	mkfifo "$r/l2/dev/hf1"
	ln "$r/l2/dev/hf1" "$r/l2/dev/hf2"
	# 3. symlink loops
	mkln "$r/l1" loops/la lb
	mkln "$r/l1" loops/lb la
	mkln "$r/l1" loops/abs /proc/self/cwd/loops/abs
	mkln "$r/l1" loops/dl dl/x
	mkln "$r/l1" loops/mnt /proc/self/cwd
	mkf "$r/l2" loops/end "end"
	mkln "$r/l2" loops/c40 end
	for ((i = 39; i >= 0; i--)); do
		mkln "$r/l2" "loops/c$(printf %02d $i)" "c$(printf %02d $((i + 1)))"
	done
}
# diff_setup, with the time stamps pinned by fd (touch takes paths, and
# these pass PATH_MAX).
for s in $DIFF_SIDES; do
	mkdir -p "$T/$s"/{l1,l2,l3,u,w,mnt}
	build "$T/$s" || die "layer builder failed for $T/$s"
	[ "$(hx pin "$DIFF_OLD" "$T/$s"/{l1,l2,l3,u})" == OK ] || die "cannot pin the times in $T/$s"
	for l in l1 l2 l3; do snapshot "$T/$s/$l" "$T/$s.$l.before"; done
done
: >"$T/ref.answers"
: >"$T/un.answers"
DIFF_T0=$(date +%s)
_dmount
[ "$(hx deep read "$T/un/l3" deep $DEPTH bottom)" == "OK l3-bottom" ] || die "the deep chain was not built"
dcmp "as built"

section "1. names that are markers elsewhere"
dop "readdir a dir of .wh. names" "OK .wh.a/f,.wh.b/f,.wh.u/f,a/f,b/f" readdir marked
dop "read .wh.a (l2 shadows l3)" "OK l2:marked/.wh.a\x0a" read marked/.wh.a
dop "readdir unionmount/fallthru (lower and upper part)" "OK 1.1/f,2.1/f" readdir unionmount/fallthru
dop "read a lower file named like a fallthru marker" "OK l3:unionmount/fallthru/1.1\x0a" read unionmount/fallthru/1.1
dop "read a lower file named like an index entry" "OK l3:unionmount/index/0100000000a8c449\x0a" read unionmount/index/0100000000a8c449
dop "create .wh.new" OK create .wh.new 0644
dop "create marked/.wh..wh..opq" OK create marked/.wh..wh..opq 0644
dop "marked still merged after it" "OK .wh..wh..opq/f,.wh.a/f,.wh.b/f,.wh.u/f,a/f,b/f" readdir marked
dop "mkdir .wh..wh..opq.d" OK mkdir .wh..wh..opq.d 0755
dop "mknod a fifo named .wh.fifo" OK mknod .wh.fifo fifo 0644
dop "symlink named .wh.lnk to .wh..wh..opq" OK symlink .wh..wh..opq .wh.lnk
dop "read through it" "OK l3:.wh..wh..opq\x0a" read .wh.lnk
dop "unlink the lower .wh.foo" OK unlink .wh.foo
up_whiteout "unlink of .wh.foo" .wh.foo
dop ".wh.foo is gone" ENOENT stat .wh.foo
dop "create .wh.foo over its whiteout" OK create .wh.foo 0600
dop "rename lower .wh..wh..opq to .wh..wh.orph" OK rename .wh..wh..opq .wh..wh.orph
up_whiteout "the renamed .wh..wh..opq" .wh..wh..opq
up_file "the moved copy" .wh..wh.orph "l3:.wh..wh..opq"
dop "rename the lower dir .wh..wh.plnk to .wh.dir" OK rename .wh..wh.plnk .wh.dir
dop "read through the moved dir" "OK l3:.wh..wh.plnk/inside\x0a" read .wh.dir/inside
dop "mkdir work/work" OK mkdir work/work 0755
dop "create work/index" OK create work/index 0644
dop "create index/0100000000000002" OK create index/0100000000000002 0644
dop "link index/0100000000000001 to unionmount/fallthru/1.2" OK link index/0100000000000001 unionmount/fallthru/1.2
dop "nlink of the linked lower file" "~OK f 0644 0:0 [0-9]+ 2" stat unionmount/fallthru/1.2
dop "rename unionmount/fallthru/1.1 to 3.1" OK rename unionmount/fallthru/1.1 unionmount/fallthru/3.1
dop "unlink unionmount/index/<key>" OK unlink unionmount/index/0100000000a8c449
up_whiteout "unlink of unionmount/index/<key>" unionmount/index/0100000000a8c449
dop "rmdir unionmount/work (holds #7)" ENOTEMPTY rmdir unionmount/work
dop "unlink unionmount/work/#7" OK unlink "unionmount/work/#7"
dop "rmdir unionmount/work" OK rmdir unionmount/work
up_whiteout "rmdir of unionmount/work" unionmount/work
dop "rename #1f to #20" OK rename "#1f" "#20"
dop "readdir the root" - readdir .
dcmp "marker names"

section "4. empty files"
dop "stat a 0-byte lower file" "OK f 0644 0:0 0 1" stat zero
dop "read it" "OK" read zero
dop "SEEK_DATA in it" ENXIO seek_data zero 0
dop "chmod it (copy-up)" OK chmod zero 0600
up_file "the 0-byte copy" zero ""
dop "stat the copy" "OK f 0600 0:0 0 1" stat zero
dop "truncate a 0-byte lower file to 0" OK truncate zero2 0
up_file "truncate to 0 copied it up" zero2 ""
dop "append to a 0-byte lower file" OK append zero3 x
dop "read it" "OK x" read zero3
dop "copy_file_range from a 0-byte lower file" "OK 0" copy_file_range zero4 zcopy 100
dop "the copy is empty" "OK f 0644 0:0 0 1" stat zcopy
dop "truncate an upper 0-byte file" OK truncate uzero 0
dop "create an empty file" OK create empty 0644
dop "stat it" "OK f 0644 0:0 0 1" stat empty

section "5. special files from lowers"
dop "stat a lower fifo" "OK p 0644 0:0 0 1" stat dev/fifo
dop "stat a lower socket" "OK s 0755 0:0 0 1" stat dev/sock
dop "stat a lower char device 1:3" "OK c 0644 0:0 0 1 1:3" stat dev/null
dop "stat a lower char device 0:7" "OK c 0644 0:0 0 1 0:7" stat dev/c07
dop "stat a lower block device 7:0" "OK b 0644 0:0 0 1 7:0" stat dev/blk
dop "stat a lower block device 0:0" "OK b 0644 0:0 0 1 0:0" stat dev/b00
for f in fifo sock null c07 blk b00; do
	dop "chmod dev/$f (copy-up)" OK chmod "dev/$f" 0600
done
up_type "copy of the fifo" dev/fifo fifo
up_type "copy of the socket" dev/sock socket
up_type "copy of char 1:3" dev/null "character special file 1:3"
up_type "copy of char 0:7" dev/c07 "character special file 0:7"
up_type "copy of block 7:0" dev/blk "block special file 7:0"
up_type "copy of block 0:0" dev/b00 "block special file 0:0"
dop "stat the copied char 0:7" "OK c 0600 0:0 0 1 0:7" stat dev/c07
dop "stat the copied block 7:0" "OK b 0600 0:0 0 1 7:0" stat dev/blk
dop "rename a lower fifo" OK rename dev/fifoR dev/fifoR2
dop "rename a lower socket" OK rename dev/sockR dev/sockR2
dop "rename the copied char 0:7" OK rename dev/c07 dev/c07b
up_whiteout "rename of the lower fifo" dev/fifoR
up_type "the moved fifo" dev/fifoR2 fifo
up_whiteout "rename of char 0:7" dev/c07
dop "stat the moved fifo" "OK p 0644 0:0 0 1" stat dev/fifoR2
dop "stat the moved socket" "OK s 0755 0:0 0 1" stat dev/sockR2
dop "mknod char 0:7 through the union" OK mknod dev/new07 chr 0 7 0640
up_type "mknod char 0:7" dev/new07 "character special file 0:7"
dop "mknod block 0:0 through the union" OK mknod dev/newb00 blk 0 0 0640
up_type "mknod block 0:0" dev/newb00 "block special file 0:0"
dop "stat it" "OK b 0640 0:0 0 1 0:0" stat dev/newb00
dop "unlink the new char 0:7" OK unlink dev/new07
up_absent "an upper-only char 0:7 just goes" dev/new07
dop "unlink the copied block 0:0" OK unlink dev/b00
up_whiteout "unlink of block 0:0" dev/b00
dop "chmod one name of a hard-linked lower fifo" OK chmod dev/hf1 0600
dop "its other name sees it" "OK p 0600 0:0 0 2" stat dev/hf2
dop "link a third name" OK link dev/hf2 dev/hf3
dop "three names" "OK p 0600 0:0 0 3" stat dev/hf1
dop "unlink the first" OK unlink dev/hf1
dop "two names left" "OK p 0600 0:0 0 2" stat dev/hf3
dop "chmod one name of a hard-linked lower socket" OK chmod dev/hs2 0700
dop "its other name sees it" "OK s 0700 0:0 0 2" stat dev/hs1
dop "readdir dev" "OK blk/b,c07b/c,fifo/p,fifoR2/p,hf2/p,hf3/p,hs1/s,hs2/s,newb00/b,null/c,sock/s,sockR2/s" readdir dev

section "3. symlink loops"
dop "readlink a two-link loop" "OK lb" readlink loops/la
dop "lstat it" "OK l 0777 0:0 2 1" stat loops/la
dop "open it" ELOOP read loops/la
dop "a chain of 40 links resolves" "OK end" read loops/c01
dop "a chain of 41 links" ELOOP read loops/c00
dop "an absolute link to itself through the mount point" ELOOP read loops/abs
dop "a link through itself as a component" ELOOP read loops/dl
dop "create below a loop" ELOOP create loops/la/x 0644
dop "a link to the mount point, twice" "OK" read loops/mnt/loops/mnt/zero
dop "lchown a loop link (copy-up)" OK chown loops/la 1000 1000
up_type "the copied loop link" loops/la "symbolic link"
dop "still a loop" ELOOP read loops/la
dop "rename one end of the loop" OK rename loops/la loops/lz
dop "the other end is now dangling" ENOENT read loops/lb
dop "so is the moved one" ENOENT read loops/lz
dop "symlink nx -> ny through the union" OK symlink ny loops/nx
dop "symlink ny -> nx through the union" OK symlink nx loops/ny
dop "a loop made through the union" ELOOP read loops/nx
dop "readlink it" "OK ny" readlink loops/nx
dcmp "empty files, special files, loops"

section "2. trees deeper than PATH_MAX ($DEPTH levels of 250-byte names)"
dpy "read the bottom file of the merged chain" "OK l3-bottom" deep read @MNT deep $DEPTH bottom
dpy "list the bottom level" "OK bottom,x" deep list @MNT deep $DEPTH
dpy "read the l2 part's file at level 12" "OK mid" deep read @MNT deep 12 mid
dpy "walk the chain (paths of 6 KiB)" "OK entries=$((DEPTH + 5)) depth=$((DEPTH + 1)) longest=$((4 + DEPTH * 251 + 7))" deep walk @MNT deep
dpy "append to the bottom file (copy-up of every parent)" OK deep append @MNT deep $DEPTH bottom "+more"
dpy "read it back" "OK l3-bottom+more" deep read @MNT deep $DEPTH bottom
for s in $DIFF_SIDES; do
	expect_eq "$s side: the copy in upper, $DEPTH levels down" "OK l3-bottom+more" "$(hx deep read "$T/$s/u" deep $DEPTH bottom)"
done
dpy "mkdir a new chain through the union" OK deep mkchain @MNT newdeep $DEPTH new
dpy "read its bottom file" "OK new" deep read @MNT newdeep $DEPTH bottom
dop "rename the chain's top" OK rename deep deepR
dpy "read through the moved top" "OK l3-bottom+more" deep read @MNT deepR $DEPTH bottom
dpy "read the l2 part through the moved top" "OK mid" deep read @MNT deepR 12 mid
dcmp "deep trees"
dremount "deep trees, after remount"
dpy "after remount: the dir below the moved top" "OK inx" deep list @MNT deepR $DEPTH x
dpy "after remount: the bottom file" "OK l3-bottom+more" deep read @MNT deepR $DEPTH bottom
# Kernel overlayfs records a move within one directory as a relative
# redirect (the new name), which fits however deep the directory is.
dpy "rename a deep dir with lower parts within its parent" OK deep rename @MNT deepR $DEPTH x y
dpy "list the moved dir" "OK inx" deep list @MNT deepR $DEPTH y
dpy "the old name is gone" "OK bottom,y" deep list @MNT deepR $DEPTH
dsh "find through the new chain" "OK $((DEPTH + 2))" "find newdeep | wc -l"
dsh "rm -rf a lower chain" "OK " "rm -rf deep2"
dop "gone" ENOENT stat deep2
up_whiteout "rm -rf of a lower chain" deep2
dsh "rm -rf the moved merged chain" "OK " "rm -rf deepR"
dsh "rm -rf the new chain" "OK " "rm -rf newdeep"
dop "the root after the removals" - readdir .
# Into another parent: kernel overlayfs refuses with EXDEV (its absolute
# redirect would pass PATH_MAX) and mv copies instead; the union may do
# the same or move it, but no other answer lets mv work.
r=$(_pyrun ref deep rename @MNT deepx $DEPTH x z up)
u=$(_pyrun un deep rename @MNT deepx $DEPTH x z up)
expect_eq "harness: kernel overlayfs refuses the deep move into the parent" EXDEV "$r"
expect_match "rename a deep dir with lower parts into its parent: moved or EXDEV" '^(OK|EXDEV)$' "$u"
if [ "$u" == OK ]; then
	expect_eq "the moved dir lists" "OK inx" "$(_pyrun un deep list @MNT deepx $((DEPTH - 1)) z)"
else
	expect_eq "the refused move left the dir" "OK inx" "$(_pyrun un deep list @MNT deepx $DEPTH x)"
fi
dsh "rm -rf the chain of the move" "OK " "rm -rf deepx"
dcmp "after the removals"
dremount "after the removals, remounted"
diff_end

# ================================================================ part 4: 5 GiB sparse
section "4. a 5 GiB sparse lower file"
rm -rf --one-file-system "$T/ref" "$T/un"
build_sparse() {
	local r=$1 f
	mkdir -p "$r"/{l1,l2,l3,u,w,mnt}
	truncate -s $((5 * GiB)) "$r/l3/big" || return 1
	printf head | dd of="$r/l3/big" conv=notrunc status=none
	printf SPAN4G | dd of="$r/l3/big" bs=1 seek=$((4 * GiB - 3)) conv=notrunc status=none
	printf after4g | dd of="$r/l3/big" bs=1 seek=$((4 * GiB + 4096)) conv=notrunc status=none
	printf tail | dd of="$r/l3/big" bs=1 seek=$((5 * GiB - 4)) conv=notrunc status=none
	for f in big2 big3; do cp --sparse=always "$r/l3/big" "$r/l3/$f" || return 1; done
	touch -d "@$DIFF_OLD" "$r/l3"/big*
}
for s in $DIFF_SIDES; do build_sparse "$T/$s" || die "cannot build the sparse files"; done
lblocks=$(stat -c %b "$T/un/l3/big")
sparse_part() {
	local s b f lower_before
	lower_state() { stat -c '%s %b %Y' "$1" && dd if="$1" bs=1 skip=$((4 * GiB - 3)) count=6 status=none && echo; }
	lower_before=$(lower_state "$T/un/l3/big")
	: >"$T/ref.answers"
	: >"$T/un.answers"
	_dmount
	dop "stat it" "OK f 0644 0:0 5368709120 1" stat big
	dop "read at 0" "OK head" read big 0 4
	dop "read across 4 GiB" "OK SPAN4G" read big $((4 * GiB - 3)) 6
	dop "read after 4 GiB" "OK after4g" read big $((4 * GiB + 4096)) 7
	dop "read the end" "OK tail" read big $((5 * GiB - 4)) 10
	dop "read a hole past 4 GiB" 'OK \x00\x00\x00\x00' read big $((4 * GiB + 100)) 4
	dop "chmod it (copy-up of 5 GiB)" OK chmod big 0600
	for s in $DIFF_SIDES; do
		b=$(upper_blocks "$s" big)
		if [ "$b" != absent ] && [ "$b" -lt 8192 ]; then
			pass "$s side: the copy in upper is sparse ($b blocks of 512 bytes)"
		else
			fail "$s side: expected the copy in upper to take under 8192 blocks (4 MiB), it takes $b"
		fi
	done
	dop "stat the copy" "OK f 0600 0:0 5368709120 1" stat big
	dop "the copy at 0" "OK head" read big 0 4
	dop "the copy across 4 GiB" "OK SPAN4G" read big $((4 * GiB - 3)) 6
	dop "the copy after 4 GiB" "OK after4g" read big $((4 * GiB + 4096)) 7
	dop "the copy's end" "OK tail" read big $((5 * GiB - 4)) 10
	dop "write past 4 GiB into a lower file (copy-up)" OK write big2 $((4 * GiB + 1)) X4G
	dop "read it across 4 GiB" "OK SPANX4G" read big2 $((4 * GiB - 3)) 7
	dop "its end" "OK tail" read big2 $((5 * GiB - 4)) 4
	dop "truncate a lower file to 6 GiB (copy-up)" OK truncate big3 $((6 * GiB))
	dop "its size" "OK f 0644 0:0 6442450944 1" stat big3
	dop "its old end" "OK tail" read big3 $((5 * GiB - 4)) 4
	dop "create a new file" OK create far 0644
	dop "write it at 4.5 GiB" OK write far $((4 * GiB + GiB / 2)) far
	dop "its size" "OK f 0644 0:0 $((4 * GiB + GiB / 2 + 3)) 1" stat far
	dop "read it back" "OK far" read far $((4 * GiB + GiB / 2)) 3
	for s in $DIFF_SIDES; do
		for f in big2 big3 far; do
			b=$(upper_blocks "$s" "$f")
			if [ "$b" != absent ] && [ "$b" -lt 8192 ]; then
				pass "$s side: upper $f is sparse ($b blocks)"
			else
				fail "$s side: expected upper $f to take under 8192 blocks, it takes $b"
			fi
		done
	done
	_dumount
	expect_same_file "answer lists of both sides are identical (sparse part)" "$T/ref.answers" "$T/un.answers"
	expect_eq "the lower 5 GiB file is unchanged (size, blocks, mtime, data at 4 GiB)" "$lower_before" "$(lower_state "$T/un/l3/big")"
}
if [ "$lblocks" -lt 1024 ]; then
	sparse_part
else
	log "the temp filesystem does not keep holes (a 5 GiB file with 4 small writes takes $lblocks blocks): sparse part left out"
fi
rm -rf --one-file-system "$T/ref" "$T/un"

# ================================================================ part 5: using special files
section "5. a fifo, a device node and a socket used through the union (-o dev)"
SL=$T/sl SU=$T/su SW=$T/sw SM=$T/sm
mkdir -p "$SL/d" "$SU" "$SW" "$SM"
mkfifo "$SL/d/fifo" "$SL/d/fifo2"
mknod "$SL/d/null" c 1 3
mknod "$SL/d/zero" c 1 5
mknod "$SL/d/c07" c 0 7
# fifo_round LABEL PATH: a reader and a writer, both through the union.
fifo_round() {
	local out=$T/fifo.out rpid got
	rm -f "$out"
	t cat "$2" >"$out" &
	rpid=$!
	t sh -c 'printf "through the fifo\n" >"$1"' sh "$2"
	wait "$rpid"
	got=$(cat "$out" 2>/dev/null)
	expect_eq "$1" "through the fifo" "$got"
}
um_mount "$SM" "lowerdir=$SL,upperdir=$SU,workdir=$SW,dev" || finish
if selftest; then
	log "self-test: the kernel mount has no nodev"
else
	expect_eq "-o dev: the union is mounted without nodev" "" "$(mount_line "$SM" | awk '{ print $4 }' | tr , '\n' | grep -x nodev)"
fi
fifo_round "a lower fifo carries data through the union" "$SM/d/fifo"
t chmod 0600 "$SM/d/fifo2"
expect_eq "chmod copied the second fifo up" "fifo" "$(stat -c %F "$SU/d/fifo2" 2>&1)"
fifo_round "a copied-up fifo carries data through the union" "$SM/d/fifo2"
t mkfifo "$SM/d/newfifo"
fifo_round "a fifo made through the union carries data" "$SM/d/newfifo"
expect_probe "write to a lower char device 1:3" OK write "$SM/d/null"
expect_probe "read a lower char device 1:3" OK read "$SM/d/null"
expect_eq "read 4 bytes of a lower char device 1:5" "00000000" "$(t head -c 4 "$SM/d/zero" | od -An -tx1 | tr -d ' \n')"
expect_probe "open a char device 0:7 (no driver)" ENXIO open "$SM/d/c07" r
expect_eq "bind a unix socket through the union and connect through the union" "OK hello" \
	"$(tl 30 python3 "$T/hx.py" sock serve "$SM/d" sock 2>&1)"
expect_eq "the bound socket is in upper" "socket" "$(stat -c %F "$SU/d/sock" 2>&1)"
um_umount "$SM"
um_mount "$SM" "lowerdir=$SL,upperdir=$SU,workdir=$SW" || finish
if mount_line "$SM" | awk '{ print $4 }' | tr , '\n' | grep -qx nodev; then
	expect_probe "without -o dev (nodev): opening a device node is refused" EACCES read "$SM/d/null"
else
	expect_probe "no nodev at this mount: a device node opens" OK read "$SM/d/null"
fi
fifo_round "fifos need no -o dev" "$SM/d/fifo"
um_umount "$SM"

# ================================================================ part 6: a huge directory
section "6. one directory of $NBIG names"
BD=$T/bigd
mkdir -p "$BD/w" "$BD/m"
t0=$(date +%s)
tl 3000 python3 "$T/hx.py" big build "$NBIG" "$BD/l1/d" "$BD/l2/d" "$BD/u/d" >/dev/null || die "cannot build the big directory"
log "built in $(($(date +%s) - t0))s"
cp -a "$BD/u" "$BD/u.off" && mkdir "$BD/w.off" || die "cannot copy the big upper"
rss_of() {
	local pid=${_pid_of[$1]:-}
	[ -n "$pid" ] && awk '/^VmRSS|^VmHWM/ { printf "%s %s kB ", $1, $2 }' "/proc/$pid/status" 2>/dev/null
}
bigcheck() { tl 1800 python3 "$T/hx.py" big check "$1" "$NBIG" 2>&1; }
biglookup() { tl 1800 python3 "$T/hx.py" big lookup "$1" "$NBIG" 2>&1; }
ovl_mount "$T/bigoracle" "$BD/u" "$BD/l1" "$BD/l2"
want=$(bigcheck "$T/bigoracle/d")
want_lookup=$(biglookup "$T/bigoracle/d")
ovl_umount "$T/bigoracle"
nvis=$(hx big count "$NBIG")
expect_eq "harness: kernel overlayfs lists every visible name once" "OK names=$nvis dups=0 missing=0 extra=0" "$want"
BOPTS="upperdir=$BD/u,workdir=$BD/w,$(lowerdir_opt "$BD/l1" "$BD/l2")"
um_mount "$BD/m" "$BOPTS" || finish
t0=$(date +%s)
expect_eq "fallthru=on, first listing: each name once, the same set as kernel overlayfs" "$want" "$(bigcheck "$BD/m/d")"
log "first listing took $(($(date +%s) - t0))s; daemon $(rss_of "$BD/m")"
expect_eq "sampled lookups answer as kernel overlayfs does" "$want_lookup" "$(biglookup "$BD/m/d")"
expect_eq "second listing" "$want" "$(bigcheck "$BD/m/d")"
log "after the second listing: daemon $(rss_of "$BD/m")"
um_umount "$BD/m"
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
um_mount "$BD/m" "$BOPTS" || finish
expect_eq "after a remount: listing" "$want" "$(bigcheck "$BD/m/d")"
expect_eq "after a remount: lookups" "$want_lookup" "$(biglookup "$BD/m/d")"
log "after remount and a listing: daemon $(rss_of "$BD/m")"
um_umount "$BD/m"
um_mount "$BD/m" "upperdir=$BD/u.off,workdir=$BD/w.off,$(lowerdir_opt "$BD/l1" "$BD/l2"),fallthru=off" || finish
expect_eq "fallthru=off (merged in memory): listing" "$want" "$(bigcheck "$BD/m/d")"
log "fallthru=off, after the listing: daemon $(rss_of "$BD/m")"
expect_eq "fallthru=off: lookups" "$want_lookup" "$(biglookup "$BD/m/d")"
um_umount "$BD/m"

log "took $(($(date +%s) - START))s"
finish
