#!/usr/bin/env bash
# t_crash_ns: kill -9 of the daemon in the middle of namespace changes.
# DESIGN.md: a crash leaves every object wholly old or wholly new, never
# a partial file, and the next mount purges WORKDIR/unionmount/work.
#
# Two lowers (l1 over l2), upper and workdir on the temp dir's file
# system. Each round has its own subtree rN of fresh objects in the
# lowers; three workers run its operations through the union in a
# shuffled order (each object's steps in order), writing "B id" before and
# "E id ANSWER" after every one to a journal:
#   A  rename of an l2 file into a dir of l1 only (copy-up + whiteout)
#   B  rename of an l2 file over an l1 file in another dir
#   C  rename of a merged dir (l1 + l2) into another dir (absolute redirect)
#   C2 rename of an l2 dir in its own dir (relative redirect)
#   D  unlink of a file shown by l1 and shadowing one in l2 (whiteout)
#   E  rmdir of an empty merged dir (whiteout)
#   F  unlink of the one file of an l2 dir, then rmdir of the dir
#   G  unlink of the one file of an l2 dir, then rename of a merged dir
#      over it (a target dir of upper holding a whiteout)
#   H  write + fsync of a new file, then its rename into another dir
#   I  write + fsync into an l2 file (copy-up)
#   J  rename of a merged dir into another dir, then on into a third
#   K  create in an l2 dir (it gets an upper part), its listing (its empty
#      l2 subdir gets a fallthru), rename of a merged dir over that subdir
# and listings of the three dirs in between (fallthrus being written).
# Odd rounds, a timed kill: one operation, drawn at random past the first
# tenth of a worker's list, is the trigger; 0-15 ms after its worker
# started it, that worker marks every journal ("K") and sends SIGKILL to
# the daemon. Even rounds (when strace is there), an injected kill: strace
# attached to the daemon delivers SIGKILL on entering the Nth call (N
# random) in a thread of one syscall by which it changes upper (renameat2,
# mknodat, mkdirat, setxattr, unlinkat, linkat, ...), so that the crash
# falls between two steps of an operation, not only between operations.
# The dead mount is lazily unmounted (fusermount3 -uz) and the same
# branches are mounted again. Then, from the journals: an object whose
# steps all finished is wholly new, one never begun wholly old, one with
# a step in flight wholly the state before or after that step: a renamed
# name exists exactly once, under the old or the new name, with all of its
# content (files compared byte for byte, dirs recursively, against the
# lowers); fsync'ed data reads back exactly; every operation that ended
# before the mark (or the death) answered OK. Also: WORKDIR/unionmount/work is empty after the
# mount, the round's tree dumps without anomalies (no name twice, no name
# that cannot be looked up), the five rounds before are exactly as after
# their own round, the union still creates and removes, the daemon exits
# 0 at unmount, and unionctl check finds nothing. At the end every round
# is compared and dumped again (ten per mount: the daemon holds a
# descriptor per directory the kernel remembers), and the lowers are
# unchanged.
#
# Then the sweep (strace needed): a kill at every step of one operation of
# each kind that takes several steps in upper (a merged dir renamed over
# a dir whose upper part holds a whiteout, and over an empty lower dir
# shown by a fallthru; an l2 file renamed into an l1-only dir; a merged
# dir moved into another dir; unlink of a shadowing file; rmdir of a
# merged dir holding whiteouts; a file renamed over a fallthru'd one;
# mkdir and create over a whiteout; an upper dir renamed over an empty
# lower dir; link and rename of a lower file with two names). A
# dry run under strace lists the calls by which the daemon changes upper
# and the workdir during the operation (renames, mknod, mkdir, unlink,
# link, xattrs; CRASH_SWEEP=all adds the owner, mode, time and data calls
# on the objects it builds in the work dir); then for each call a fresh
# copy of the objects, SIGKILL on entering that call, the lazy unmount and
# a new mount: the work dir empty, and (read at the end, since each copy
# is left alone by the later kills) the objects wholly old or wholly new.
#
# CRASH_ROUNDS (default 4; about 30 s with the sweep) sets the number of
# rounds: CRASH_ROUNDS=100 is the long mode. CRASH_SEED repeats a run's
# objects, plans and kill points (not the timing; the seed is logged);
# CRASH_OBJECTS (default 12) is the number of objects of each kind per
# round; CRASH_INJECT (below) chooses the syscalls of the injected kills.
# The self-test (kernel overlayfs) lets every round finish, unmounts and
# mounts normally, expects every object wholly new, and skips the sweep.
. "$(dirname "$0")/lib.sh" || exit 99
setup_test
require_daemon
command -v python3 >/dev/null || skip "python3 is needed for the model of the rounds"

ROUNDS=${CRASH_ROUNDS:-4}
SEED=${CRASH_SEED:-$RANDOM}
N=${CRASH_OBJECTS:-12}   # objects of each kind per round
# The answers that say the daemon died meanwhile: ENOTCONN, ECONNABORTED,
# and through io_uring ECANCELED, with which the kernel ends a request it
# was handing to the dead daemon (dev_uring.c, fuse_uring_send_in_task).
# An extended regex; ns.py reads it from the environment.
export DEAD_ANSWERS='ENOTCONN|ECONNABORTED|ECANCELED'
WORKERS=3
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "CRASH_ROUNDS must be a positive number"
[[ $SEED =~ ^[0-9]+$ ]] || die "CRASH_SEED must be a number"
[[ $N =~ ^[1-9][0-9]*$ ]] || die "CRASH_OBJECTS must be a positive number"
log "$ROUNDS rounds, $N objects of each kind per round, seed $SEED (CRASH_SEED=$SEED repeats it)"
RANDOM=$SEED
START=$(date +%s)

# ---------------------------------------------------------------- the model
# ns.py build L1 L2 SEED ROUNDS N       the lower objects of every round
# ns.py plan ROUND SEED N W MNT OUTDIR  OUTDIR/ops.K per worker: "ID\tOP\tARG..."
# ns.py check ROUND SEED N MNT L1 L2 STATE JOURNAL...
#     prints "ok ..." / "FAIL ..." lines; STATE keeps each round's resolved
#     subtree for the later rounds (the last 5 are compared each round).
# ns.py verify STATE MNT FROM TO        rounds FROM..TO against STATE
cat >"$T/ns.py" <<'EOF'
import contextlib, hashlib, json, os, random, stat, sys

SIZES = [0, 1, 700, 4096, 65537, 300000]

def rnd(seed, *key):
    return random.Random('%s/%s' % (seed, '/'.join(map(str, key))))

def data(seed, *key):
    r = rnd(seed, 'data', *key)
    n = r.choice(SIZES)
    return r.randbytes(n)

def put(root, rel, content=None):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if content is None:
        os.makedirs(p, exist_ok=True)
    else:
        with open(p, 'wb') as f:
            f.write(content)

def build(l1, l2, seed, rounds, n):
    for r in range(1, rounds + 1):
        R = 'r%d' % r
        for d in ('src', 'dst'):
            put(l1, '%s/%s' % (R, d))
        put(l2, '%s/src' % R)
        put(l2, '%s/tgt' % R)
        for i in range(n):
            put(l2, '%s/src/fa%d' % (R, i), data(seed, R, 'fa', i))
            put(l2, '%s/src/fb%d' % (R, i), data(seed, R, 'fb', i))
            put(l1, '%s/dst/gb%d' % (R, i), data(seed, R, 'gb', i))
            put(l1, '%s/src/dc%d/x' % (R, i), data(seed, R, 'dcx', i))
            put(l1, '%s/src/dc%d/sub/y' % (R, i), data(seed, R, 'dcy', i))
            put(l2, '%s/src/dc%d/z' % (R, i), data(seed, R, 'dcz', i))
            put(l2, '%s/src/dc%d/sub/w' % (R, i), data(seed, R, 'dcw', i))
            put(l2, '%s/src/dr%d/q' % (R, i), data(seed, R, 'drq', i))
            put(l2, '%s/src/dr%d/deep/er/p' % (R, i), data(seed, R, 'drp', i))
            put(l1, '%s/src/ud%d' % (R, i), data(seed, R, 'ud1', i))
            put(l2, '%s/src/ud%d' % (R, i), data(seed, R, 'ud2', i))
            put(l1, '%s/src/ed%d' % (R, i))
            put(l2, '%s/src/ed%d' % (R, i))
            put(l2, '%s/src/rd%d/f' % (R, i), data(seed, R, 'rdf', i))
            put(l1, '%s/src/ov%d/a' % (R, i), data(seed, R, 'ova', i))
            put(l2, '%s/src/ov%d/b' % (R, i), data(seed, R, 'ovb', i))
            put(l2, '%s/tgt/tg%d/x' % (R, i), data(seed, R, 'tgx', i))
            put(l2, '%s/src/wc%d' % (R, i), rnd(seed, R, 'wc', i).randbytes(5000))
            put(l1, '%s/src/dj%d/m' % (R, i), data(seed, R, 'djm', i))
            put(l2, '%s/src/dj%d/sub/n' % (R, i), data(seed, R, 'djn', i))
            put(l1, '%s/src/ok%d/a' % (R, i), data(seed, R, 'oka', i))
            put(l2, '%s/src/ok%d/sub/b' % (R, i), data(seed, R, 'okb', i))
            put(l2, '%s/tgt/tk%d/empty' % (R, i))

def newdata(seed, R, kind, i):
    return ('%s-%s-%d-%s' % (kind, R, i, rnd(seed, R, kind, i).randbytes(6).hex())).encode()

# Objects: kind, i, steps (argv lists, paths relative to the mount).
def objects(r, seed, n):
    R = 'r%d' % r
    s, d, t = R + '/src', R + '/dst', R + '/tgt'
    obs = []
    for i in range(n):
        obs.append(('A', i, [['rename', '%s/fa%d' % (s, i), '%s/fa%d' % (d, i)]]))
        obs.append(('B', i, [['rename', '%s/fb%d' % (s, i), '%s/gb%d' % (d, i)]]))
        obs.append(('C', i, [['rename', '%s/dc%d' % (s, i), '%s/dc%d' % (d, i)]]))
        obs.append(('C2', i, [['rename', '%s/dr%d' % (s, i), '%s/dr%d.new' % (s, i)]]))
        obs.append(('D', i, [['unlink', '%s/ud%d' % (s, i)]]))
        obs.append(('E', i, [['rmdir', '%s/ed%d' % (s, i)]]))
        obs.append(('F', i, [['unlink', '%s/rd%d/f' % (s, i)], ['rmdir', '%s/rd%d' % (s, i)]]))
        obs.append(('G', i, [['unlink', '%s/tg%d/x' % (t, i)], ['rename', '%s/ov%d' % (s, i), '%s/tg%d' % (t, i)]]))
        obs.append(('H', i, [['create', '%s/new%d' % (d, i), '0644'],
                             ['write-fsync', '%s/new%d' % (d, i), '0', newdata(seed, R, 'H', i).decode()],
                             ['rename', '%s/new%d' % (d, i), '%s/moved%d' % (s, i)]]))
        obs.append(('I', i, [['write-fsync', '%s/wc%d' % (s, i), '0', newdata(seed, R, 'I', i).decode()]]))
        obs.append(('J', i, [['rename', '%s/dj%d' % (s, i), '%s/dj%d' % (d, i)],
                             ['rename', '%s/dj%d' % (d, i), '%s/dj%d.again' % (t, i)]]))
        obs.append(('K', i, [['create', '%s/tk%d/new' % (t, i), '0644'], ['readdir', '%s/tk%d' % (t, i)],
                             ['rename', '%s/ok%d' % (s, i), '%s/tk%d/empty' % (t, i)]]))
    return obs

def plan_ops(r, seed, n, w):
    """Per worker: [(id, argv)], each object's steps in order."""
    rng = rnd(seed, 'plan', r)
    obs = objects(r, seed, n)
    per = [[] for _ in range(w)]
    for k, (kind, i, steps) in enumerate(obs):
        per[rng.randrange(w)].append([('%s.%d.%d' % (kind, i, j), st) for j, st in enumerate(steps)])
    out = []
    for lst in per:
        # interleave the objects' steps: pick a random object, take its next step
        ops, queues = [], [list(q) for q in lst]
        while queues:
            q = rng.choice(queues)
            ops.append(q.pop(0))
            if not q:
                queues.remove(q)
        out.append(ops)
    R = 'r%d' % r
    for k in range(6):   # listings in between: fallthrus being written
        ops = out[rng.randrange(w)]
        ops.insert(rng.randrange(len(ops) + 1), ('L.%d.0' % k, ['readdir', '%s/%s' % (R, ('src', 'dst', 'tgt')[k % 3])]))
    return out

def plan(r, seed, n, w, mnt, outdir):
    for k, ops in enumerate(plan_ops(r, seed, n, w)):
        with open(os.path.join(outdir, 'ops.%d' % k), 'w') as f:
            for oid, argv in ops:
                args = [os.path.join(mnt, argv[1])] + argv[2:]
                if argv[0] == 'rename':
                    args[1] = os.path.join(mnt, argv[2])
                f.write('\t'.join([oid, argv[0]] + args) + '\n')

# ---------------------------------------------------------------- signatures
def sig_tree(paths):
    """Signature of the merged tree of PATHS (top-most first; no whiteouts
    in our lowers): {rel: (type, mode, size, sha1)}; None if absent.
    Errors show as ('error', errno name)."""
    out = {}
    def walk(ps, rel):
        sts = []
        for p in ps:
            try:
                sts.append((p, os.lstat(p)))
            except FileNotFoundError:
                continue
            except OSError as e:
                out[rel] = ('error', os.strerror(e.errno))
                return
        if not sts:
            return
        p0, st0 = sts[0]
        m = stat.S_IMODE(st0.st_mode)
        if stat.S_ISDIR(st0.st_mode):
            out[rel] = ('d', m)
            dirs = [p for p, st in sts if stat.S_ISDIR(st.st_mode)]
            names = set()
            for p in dirs:
                try:
                    names.update(os.listdir(p))
                except OSError as e:
                    out[rel] = ('error', 'listdir: ' + os.strerror(e.errno))
                    return
            for nm in sorted(names):
                walk([os.path.join(p, nm) for p in dirs], rel + '/' + nm if rel else nm)
        elif stat.S_ISREG(st0.st_mode):
            try:
                with open(p0, 'rb') as f:
                    b = f.read()
            except OSError as e:
                out[rel] = ('error', 'read: ' + os.strerror(e.errno))
                return
            out[rel] = ('f', m, len(b), hashlib.sha1(b).hexdigest()[:16])
        else:
            out[rel] = ('other', stat.S_IFMT(st0.st_mode), st0.st_rdev)
    walk(paths, '')
    return out or None

def sig_bytes(b, mode=0o644):
    return {'': ('f', mode, len(b), hashlib.sha1(b).hexdigest()[:16])}

EMPTY_DIR = {'': ('d', 0o755)}

def show(sig):
    if sig is None:
        return 'absent'
    if list(sig) == ['']:
        v = sig['']
        return 'empty dir' if v == ('d', 0o755) else 'file %d bytes %s' % (v[2], v[3]) if v[0] == 'f' else str(v)
    return 'tree of %d entries' % len(sig)

# ---------------------------------------------------------------- check
def journals(files):
    """{id: answer or 'begun'}, and the ids that ended after the kill
    ("K": the killer's mark, written to every journal just before it)."""
    st, late = {}, set()
    for fn in files:
        killed = False
        with open(fn) as f:
            for line in f:
                p = line.rstrip('\n').split(' ', 2)
                if p[0] == 'K':
                    killed = True
                elif p[0] == 'B':
                    st.setdefault(p[1], 'begun')
                elif p[0] == 'E' and len(p) >= 2:
                    st[p[1]] = p[2] if len(p) > 2 else ''
                    if killed:
                        late.add(p[1])
    return st, late

def check(r, seed, n, mnt, l1, l2, statefile, jfiles):
    R = 'r%d' % r
    js, late = journals(jfiles)
    lines = []
    def ok(msg):
        lines.append('ok ' + msg)
    def bad(msg):
        lines.append('FAIL ' + msg)
    U = lambda rel: sig_tree([os.path.join(mnt, rel)])
    Lw = lambda rel: sig_tree([os.path.join(l1, rel), os.path.join(l2, rel)])
    # before the kill every answer is OK (listings: OK and the names)
    cut = ('begun',) + tuple(os.environ['DEAD_ANSWERS'].split('|'))   # the daemon died meanwhile
    errs = [(k, v) for k, v in sorted(js.items()) if k not in late and v not in cut and not v.startswith('OK')]
    if errs:
        bad('%s: operations answered other than OK before the kill: %s' % (R, ', '.join('%s=%s' % e for e in errs[:8])))
    else:
        ok('%s: every operation that returned before the kill answered OK (%d did; %d cut off by it)'
           % (R, sum(1 for k in js if k not in late and js[k] not in cut), sum(1 for k in js if k in late or js[k] in cut)))
    bykind = {}
    for kind, i, steps in objects(r, seed, n):
        # done: steps that finished; inflight: the next one began and did not
        done, inflight = 0, False
        for j in range(len(steps)):
            v = js.get('%s.%d.%d' % (kind, i, j))
            if v is not None and v.startswith('OK'):
                done = j + 1
                continue
            inflight = v is not None
            break
        # states[k]: the visible state after k steps: {path: signature}
        s, d, t = R + '/src', R + '/dst', R + '/tgt'
        if kind == 'A':
            o = Lw('%s/fa%d' % (s, i))
            states = [{'%s/fa%d' % (s, i): o, '%s/fa%d' % (d, i): None},
                      {'%s/fa%d' % (s, i): None, '%s/fa%d' % (d, i): o}]
        elif kind == 'B':
            o, g = Lw('%s/fb%d' % (s, i)), Lw('%s/gb%d' % (d, i))
            states = [{'%s/fb%d' % (s, i): o, '%s/gb%d' % (d, i): g},
                      {'%s/fb%d' % (s, i): None, '%s/gb%d' % (d, i): o}]
        elif kind in ('C', 'C2'):
            a, b = steps[0][1], steps[0][2]
            o = Lw(a)
            states = [{a: o, b: None}, {a: None, b: o}]
        elif kind == 'D':
            a = '%s/ud%d' % (s, i)
            states = [{a: Lw(a)}, {a: None}]
        elif kind == 'E':
            a = '%s/ed%d' % (s, i)
            states = [{a: EMPTY_DIR}, {a: None}]
        elif kind == 'F':
            a = '%s/rd%d' % (s, i)
            states = [{a: Lw(a)}, {a: EMPTY_DIR}, {a: None}]
        elif kind == 'G':
            a, b = '%s/ov%d' % (s, i), '%s/tg%d' % (t, i)
            o = Lw(a)
            states = [{a: o, b: Lw(b)}, {a: o, b: EMPTY_DIR}, {a: None, b: o}]
        elif kind == 'H':
            a, b = '%s/new%d' % (d, i), '%s/moved%d' % (s, i)
            nd = sig_bytes(newdata(seed, R, 'H', i))
            states = [{a: None, b: None}, {a: sig_bytes(b''), b: None}, {a: nd, b: None}, {a: None, b: nd}]
        elif kind == 'J':
            a, b, c = steps[0][1], steps[1][1], steps[1][2]
            o = Lw(a)
            states = [{a: o, b: None, c: None}, {a: None, b: o, c: None}, {a: None, b: None, c: o}]
        elif kind == 'K':
            a, b, c = '%s/ok%d' % (s, i), '%s/tk%d/empty' % (t, i), '%s/tk%d/new' % (t, i)
            o = Lw(a)
            s1 = {a: o, b: EMPTY_DIR, c: sig_bytes(b'')}
            states = [{a: o, b: EMPTY_DIR, c: None}, s1, s1, {a: None, b: o, c: sig_bytes(b'')}]
        elif kind == 'I':
            a = '%s/wc%d' % (s, i)
            old = open(os.path.join(l2, a), 'rb').read()
            nd = newdata(seed, R, 'I', i)
            states = [{a: Lw(a)}, {a: sig_bytes(nd + old[len(nd):])}]
        allowed = [done] + ([done + 1] if inflight else [])
        seen = {p: U(p) for p in states[0]}
        match = [k for k in range(len(states)) if states[k] == seen]
        e = bykind.setdefault(kind, {'ok': 0, 'bad': [], 'inflight': 0, 'steps': len(steps)})
        if any(k in allowed for k in match):
            e['ok'] += 1
            e['inflight'] += inflight
        else:
            want = ' or '.join('after %d step(s)' % k for k in allowed)
            got = ('the state after %d step(s)' % match[0]) if match else 'no state of the object'
            e['bad'].append('%s %s%d: expected %s (journal: %d done%s), seen %s: %s' % (
                R, kind, i, want, done, ', one in flight' if inflight else '', got,
                '; '.join('%s %s' % (p, show(v)) for p, v in seen.items())))
    names = {'A': 'renames of an l2 file into an l1-only dir', 'B': 'renames of an l2 file over an l1 file',
             'C': 'renames of a merged dir into another dir (absolute redirect)',
             'C2': 'renames of an l2 dir in its dir (relative redirect)', 'D': 'unlinks of a shadowing file',
             'E': 'rmdirs of an empty merged dir', 'F': 'unlink + rmdir of an l2 dir',
             'G': 'unlink + rename of a merged dir over the emptied dir',
             'H': "new files written + fsync'ed, then renamed", 'I': "l2 files written + fsync'ed (copy-up)",
             'J': 'merged dirs moved into another dir, then moved again (redirect rewritten)',
             'K': 'merged dirs moved over an empty lower dir shown by a fallthru'}
    for kind in ('A', 'B', 'C', 'C2', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K'):
        e = bykind[kind]
        if e['bad']:
            for b in e['bad'][:6]:
                bad(b)
            if len(e['bad']) > 6:
                bad('%s %s: %d more' % (R, kind, len(e['bad']) - 6))
        else:
            ok('%s: %d %s: each wholly old or new as the journal allows (%d with a step in flight)'
               % (R, e['ok'], names[kind], e['inflight']))
    # the last few rounds before stay as they were (all of them: at the end)
    st = load(statefile)
    lines += compare(st, mnt, range(max(1, r - RECENT), r), 'by this round or its crash')
    st[R] = json.loads(json.dumps(U(R)))
    with open(statefile, 'w') as f:
        json.dump(st, f)
    print('\n'.join(lines))

RECENT = 5

def load(statefile):
    if not os.path.exists(statefile):
        return {}
    with open(statefile) as f:
        return json.load(f)

def compare(st, mnt, rounds, why):
    rounds = [k for k in rounds if 'r%d' % k in st]
    if not rounds:
        return []
    changed = [k for k in rounds if json.loads(json.dumps(sig_tree([os.path.join(mnt, 'r%d' % k)]))) != st['r%d' % k]]
    span = 'r%d' % rounds[0] + ('..r%d' % rounds[-1] if len(rounds) > 1 else '')
    if changed:
        return ['FAIL rounds changed %s: %s' % (why, ', '.join('r%d' % k for k in changed))]
    return ['ok %s: exactly as after their own rounds' % span]

# ---------------------------------------------------------------- the sweep
# Each type: (what, build(c) -> [(layer, rel, content or None)], prep
# argvs, op argv, [paths]); old and new states come from the lowers.
# Paths are relative to the mount, under sw/TYPE.C.
def sweep_types():
    K = 70000
    def t(name, what, files, prep, op, old, new):
        return name, what, files, prep, op, old, new
    def UP(*dirs):
        # the parents get their upper part first: their copy-up is
        # swept once, as the first steps of "unlink"
        return [x for d in dirs for x in (['create', d + '/.p', '0644'], ['unlink', d + '/.p'])]
    return [
        t('dirover', 'rename of a merged dir over a dir whose upper part holds a whiteout',
          [(1, 'ov/a', 100), (2, 'ov/sub/b', 100), (2, 'tg/x', 10)],
          [['unlink', 'tg/x']], ['rename', 'ov', 'tg'],
          {'ov': 'L:ov', 'tg': 'E'}, {'ov': None, 'tg': 'L:ov'}),
        t('dirft', 'rename of a merged dir over an empty lower dir shown by a fallthru',
          [(1, 'S/a', 100), (2, 'S/sub/b', 100), (2, 'P/empty', None)],
          [['create', 'P/new', '0644'], ['readdir', 'P']], ['rename', 'S', 'P/empty'],
          {'S': 'L:S', 'P/empty': 'E'}, {'S': None, 'P/empty': 'L:S'}),
        t('file', 'rename of an l2 file into an l1-only dir',
          [(2, 'src/f', K), (1, 'dst', None)], UP('src', 'dst'), ['rename', 'src/f', 'dst/f'],
          {'src/f': 'L:src/f', 'dst/f': None}, {'src/f': None, 'dst/f': 'L:src/f'}),
        t('dirmove', 'rename of a merged dir into another dir (redirect)',
          [(1, 'a/D/x', 100), (2, 'a/D/sub/y', 100), (1, 'b', None)], UP('a', 'b'), ['rename', 'a/D', 'b/D'],
          {'a/D': 'L:a/D', 'b/D': None}, {'a/D': None, 'b/D': 'L:a/D'}),
        t('unlink', 'unlink of an l1 file shadowing an l2 one',
          [(1, 'f', 100), (2, 'f', 200)], [], ['unlink', 'f'], {'f': 'L:f'}, {'f': None}),
        t('rmdir', 'rmdir of a merged dir whose upper part holds whiteouts',
          [(1, 'd/x', 10), (2, 'd/y', 10)], [['unlink', 'd/x'], ['unlink', 'd/y']], ['rmdir', 'd'],
          {'d': 'E'}, {'d': None}),
        t('fileft', 'rename of a file over a file shown by a fallthru',
          [(1, 'a', 100), (2, 'b', 200)], [['create', 'new', '0644'], ['readdir', '.']], ['rename', 'a', 'b'],
          {'a': 'L:a', 'b': 'L:b'}, {'a': None, 'b': 'L:a'}),
        t('mkdirwh', 'mkdir over a whiteout (opaque dir)',
          [(1, 'd/x', 10)], [['unlink', 'd/x'], ['rmdir', 'd']], ['mkdir', 'd', '0755'],
          {'d': None}, {'d': 'E'}),
        t('upperdir', 'rename of an upper dir over an empty lower dir',
          [(2, 'E', None)], [['mkdir', 'U', '0755'], ['create', 'U/f', '0644']], ['rename', 'U', 'E'],
          {'U': 'U', 'E': 'E'}, {'U': None, 'E': 'U'}),
        t('createwh', 'create over a whiteout',
          [(1, 'f', 100)], [['unlink', 'f']], ['create', 'f', '0644'], {'f': None}, {'f': 'F'}),
        t('link', 'link of a lower file with two names (index)',
          [(1, 'a', 100), (1, 'b', 'a')], UP('.'), ['link', 'a', 'c'],
          {'a': 'L:a', 'b': 'L:a', 'c': None}, {'a': 'L:a', 'b': 'L:a', 'c': 'L:a'}),
        t('hlrename', 'rename of a lower file with two names',
          [(1, 'a', 100), (1, 'b', 'a')], UP('.'), ['rename', 'a', 'a2'],
          {'a': 'L:a', 'b': 'L:a', 'a2': None}, {'a': None, 'b': 'L:a', 'a2': 'L:a'}),
    ]

def sweep_build(l1, l2, seed, copies):
    for name, what, files, prep, op, old, new in sweep_types():
        for c in range(copies):
            for layer, rel, size in files:
                root = l1 if layer == 1 else l2
                base = os.path.join(root, 'sw/%s.%d' % (name, c))
                if isinstance(size, str):   # a hard link to that name
                    os.link(os.path.join(base, size), os.path.join(base, rel))
                    continue
                content = None if size is None else rnd(seed, 'sw', name, c, rel).randbytes(size)
                put(root, 'sw/%s.%d/%s' % (name, c, rel), content)

def sweep_ops(name, c, mnt):
    """Lines "ARGV..." (tab separated, absolute paths): prep ops, then the op last."""
    for n, what, files, prep, op, old, new in sweep_types():
        if n != name:
            continue
        base = os.path.join(mnt, 'sw/%s.%d' % (name, c))
        out = []
        for argv in prep + [op]:
            args = [argv[0], os.path.normpath(os.path.join(base, argv[1]))]
            if argv[0] in ('rename', 'link'):
                args.append(os.path.join(base, argv[2]))
            else:
                args += argv[2:]
            out.append('\t'.join(args))
        print('\n'.join(out))

def sweep_states(mnt, l1, l2, pairs):
    """For each "TYPE.C": a line "TYPE.C old|new|neither: ..."."""
    import io, contextlib
    for pc in pairs:
        name, c = pc.rsplit('.', 1)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            sweep_state(name, int(c), mnt, l1, l2)
        print(pc, out.getvalue().strip())

def sweep_state(name, c, mnt, l1, l2):
    """Prints old, new, or "neither: ..." for copy c of type name."""
    for n, what, files, prep, op, old, new in sweep_types():
        if n != name:
            continue
        base = 'sw/%s.%d' % (name, c)
        def want(v):
            if v is None:
                return None
            if v == 'E':
                return EMPTY_DIR
            if v == 'U':
                return {'': ('d', 0o755), 'f': ('f', 0o644, 0, hashlib.sha1(b'').hexdigest()[:16])}
            if v == 'F':
                return sig_bytes(b'')
            rel = os.path.join(base, v[2:])
            return sig_tree([os.path.join(l1, rel), os.path.join(l2, rel)])
        seen = {p: sig_tree([os.path.join(mnt, base, p)]) for p in old}
        if seen == {p: want(v) for p, v in old.items()}:
            print('old')
        elif seen == {p: want(v) for p, v in new.items()}:
            print('new')
        else:
            print('neither: ' + '; '.join('%s %s' % (p, show(v)) for p, v in seen.items()))

def main():
    m = sys.argv[1]
    a = sys.argv[2:]
    if m == 'build':
        build(a[0], a[1], a[2], int(a[3]), int(a[4]))
    elif m == 'sweep-build':
        sweep_build(a[0], a[1], a[2], int(a[3]))
    elif m == 'sweep-types':
        print('\n'.join('%s\t%s' % (t[0], t[1]) for t in sweep_types()))
    elif m == 'sweep-ops':
        sweep_ops(a[0], int(a[1]), a[2])
    elif m == 'sweep-ops-all':
        # OUTDIR/TYPE.C per copy
        for t in sweep_types():
            for c in range(int(a[2])):
                with open(os.path.join(a[1], '%s.%d' % (t[0], c)), 'w') as f, contextlib.redirect_stdout(f):
                    sweep_ops(t[0], c, a[0])
    elif m == 'sweep-states':
        sweep_states(a[0], a[1], a[2], a[3:])
    elif m == 'plan':
        plan(int(a[0]), a[1], int(a[2]), int(a[3]), a[4], a[5])
    elif m == 'check':
        check(int(a[0]), a[1], int(a[2]), a[3], a[4], a[5], a[6], a[7:])
    elif m == 'verify':
        print('\n'.join(compare(load(a[0]), a[1], range(int(a[2]), int(a[3]) + 1), 'since')))
    else:
        sys.exit('bad mode')

main()
EOF
ns() { python3 "$T/ns.py" "$@"; }

L1=$T/l1 L2=$T/l2 U=$T/upper W=$T/work M=$T/mnt
mkdir -p "$L1" "$L2" "$U" "$W" "$M"
ns build "$L1" "$L2" "$SEED" "$ROUNDS" "$N" || die "cannot build the lowers"
SWEEP_COPIES=16
ns sweep-build "$L1" "$L2" "$SEED" "$SWEEP_COPIES" || die "cannot build the lowers of the sweep"
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"
OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"

# worker OPSFILE JOURNAL TRIGGER DPID DELAY: run the operations in order
# until $R/stop exists. The worker holding the TRIGGER operation is the
# killer: it starts that operation, DELAY seconds later marks every
# journal with "K" and sends SIGKILL to the daemon DPID (ours: checked
# against its command line), then waits for its operation.
fsop_line() {
	local ans
	ans=$(timeout -k 2 "$UM_TIMEOUT" "$HELPERS/fsop" "$@" 2>&1)
	[ $? -eq 124 ] && ans=TIMEOUT
	ans=${ans%%$'\n'*}
	printf '%s' "${ans:0:200}"
}
worker() {
	local ops=$1 j=$2 trig=$3 dpid=$4 delay=$5 ans fp jj
	local -a f
	while IFS=$'\t' read -r -a f; do
		[ -e "$R/stop" ] && break
		printf 'B %s\n' "${f[0]}" >>"$j"
		if [ "${f[0]}" == "$trig" ]; then
			fsop_line "${f[@]:1}" >"$R/trigger.out" &
			fp=$!
			sleep "$delay"
			: >"$R/stop"
			for jj in "$R"/journal.*; do printf 'K\n' >>"$jj"; done
			_is_our_daemon "$dpid" "$M" && kill -KILL "$dpid"
			wait "$fp"
			ans=$(<"$R/trigger.out")
		else
			ans=$(fsop_line "${f[@]:1}")
		fi
		printf 'E %s %s\n' "${f[0]}" "$ans" >>"$j"
		# the daemon is gone (killed from inside, by strace)
		[[ $ans =~ ^($DEAD_ANSWERS)$ ]] && break
	done <"$ops"
	return 0
}

# reap_killed MNT: after the SIGKILL (and wait), the lazy unmount;
# forget the daemon.
reap_killed() {
	local m=$1
	timeout 10 fusermount3 -uz "$m" 2>/dev/null || timeout 10 umount -l "$m"
	_forget_mount "$m"
	unset '_pid_of[$m]'
	_is_mounted "$m" && die "$m still mounted after the lazy unmount"
}

ended() { cat "$@" 2>/dev/null | grep -c '^E '; }

# The syscalls by which the daemon changes upper and the workdir, with
# the highest N drawn for each (a thread makes about that many in a
# round): an injected kill lands on entering the Nth call in a thread.
# CRASH_INJECT=SYSCALL:MAX (space separated) replaces the list.
INJECT_SYSCALLS=(renameat2:30 renameat2:30 mknodat:15 mknodat:15 mkdirat:10 setxattr:10 lsetxattr:10
	unlinkat:8 linkat:4 utimensat:20 fchownat:10 copy_file_range:6 openat:40)
[ -n "${CRASH_INJECT:-}" ] && read -ra INJECT_SYSCALLS <<<"$CRASH_INJECT"
STRACE=$(command -v strace || true)
selftest || [ -n "$STRACE" ] || log "no strace: every round has a timed kill"
# The daemon changes xattrs with setxattrat and removexattrat (Linux 6.13)
# and modes with fchmodat2 (6.6) where the kernel has them (src/sys.c).
# An strace older than those calls can neither name them nor kill on
# them: the daemon then runs with them denied (ENOSYS, as on an older
# kernel), and takes the calls strace names, one for one.
NEWCALLS=""
if ! selftest && [ -n "$STRACE" ]; then
	if "$STRACE" -qq -o /dev/null -e trace=setxattrat,removexattrat,fchmodat2 true 2>/dev/null; then
		NEWCALLS=,setxattrat,removexattrat
		INJECT_SYSCALLS+=(setxattrat:10)
	else
		printf '#!/bin/sh\nexec "%s" %s "%s" "$@"\n' "$(helper deny)" \
			getxattrat=ENOSYS,setxattrat=ENOSYS,listxattrat=ENOSYS,removexattrat=ENOSYS,fchmodat2=ENOSYS \
			"$UNIONMOUNT" >"$T/um-oldcalls"
		chmod 0755 "$T/um-oldcalls"
		UNIONMOUNT=$T/um-oldcalls
		log "this strace predates getxattrat and fchmodat2: the daemon runs without them"
	fi
fi

landed=0 total_ops=0
for ((round = 1; round <= ROUNDS; round++)); do
	R=$T/round$round
	mkdir -p "$R"
	ns plan "$round" "$SEED" "$N" "$WORKERS" "$M" "$R" || die "cannot plan round $round"
	nops=$(cat "$R"/ops.* | wc -l)
	um_mount "$M" "$OPTS" || break
	# Timed kill (odd rounds): the trigger is an operation drawn at random
	# from one worker's list (not from its first tenth, so that the others
	# are busy), killed 0-15 ms after it started. Injected kill (even
	# rounds, with strace): SIGKILL on entering the Nth call of one
	# syscall that changes upper, in some thread of the daemon.
	trig='' delay=0 inject=''
	if ! selftest && [ $((round % 2)) -eq 0 ] && [ -n "$STRACE" ]; then
		sc=${INJECT_SYSCALLS[RANDOM % ${#INJECT_SYSCALLS[@]}]}
		inject="${sc%:*}:when=$((1 + RANDOM % ${sc#*:}))"
		sc=${sc%:*}
		dpid=${_pid_of[$M]:-}
		"$STRACE" -f -qq -o /dev/null -p "$dpid" -e trace="$sc" \
			-e inject="$sc:signal=SIGKILL:when=${inject#*:when=}" &
		spid=$!
		# attached: every thread of the daemon has a tracer
		for ((i = 0; i < 100; i++)); do
			grep -q '^TracerPid:[[:space:]]*0$' /proc/"$dpid"/task/*/status 2>/dev/null || break
			sleep 0.05
		done
	elif ! selftest; then
		mapfile -t ids < <(cut -f 1 "$R/ops.$((RANDOM % WORKERS))")
		trig=${ids[${#ids[@]} / 10 + RANDOM % (${#ids[@]} * 85 / 100)]}
		printf -v delay '0.%03d' $((RANDOM % 16))
	fi
	journals=()
	wpids=()
	rm -f "$R/stop"
	for ((k = 0; k < WORKERS; k++)); do
		: >"$R/journal.$k"
		journals+=("$R/journal.$k")
	done
	for ((k = 0; k < WORKERS; k++)); do
		worker "$R/ops.$k" "$R/journal.$k" "$trig" "${_pid_of[$M]:-none}" "$delay" &
		wpids+=($!)
	done
	# (bash would report its killed child, the daemon, as "Killed")
	{ for p in "${wpids[@]}"; do wait "$p"; done; } 2>/dev/null
	if selftest; then
		um_umount "$M"
		log "round $round: self-test, no kill: $(ended "${journals[@]}") of $nops operations ended"
	else
		pid=${_pid_of[$M]:-}
		if [ -n "$inject" ] && ! grep -qE " ($DEAD_ANSWERS)\$" "${journals[@]}"; then
			# all done before the Nth call: no kill this round
			kill -TERM "$spid" 2>/dev/null
			wait "$spid"
			um_umount "$M"
			log "round $round: no kill: $inject never came ($(ended "${journals[@]}") of $nops operations ended)"
		else
			# (a SIGKILLed daemon may take a moment to close its files;
			# our child, not yet waited for: its PID is not reused)
			for ((i = 0; i < 100; i++)); do
				[ -n "$pid" ] && pid_running "$pid" || break
				sleep 0.1
			done
			if [ -n "$pid" ] && pid_running "$pid"; then
				fail "round $round: the daemon still runs 10 s after its kill (was the trigger $trig reached?)"
				kill -KILL "$pid"
			fi
			[ -n "$pid" ] && { wait "$pid"; } 2>/dev/null
			[ -n "$inject" ] && wait "$spid"
			reap_killed "$M"
			n_end=$(ended "${journals[@]}")
			n_begun=$(cat "${journals[@]}" | grep -c '^B ')
			n_before=$(awk -v dead=" ($DEAD_ANSWERS)\$" 'FNR == 1 { k = 0 } /^K/ { k = 1 } $0 ~ dead { next } /^E / && !k { n++ } END { print n + 0 }' "${journals[@]}")
			left=$(ls -A "$W/unionmount/work" 2>/dev/null | wc -l)
			how="${delay}s into $trig"
			[ -n "$inject" ] && how="by strace at the call $inject"
			log "round $round: killed $how: $n_before of $nops operations ended before, $((n_begun - n_before)) cut off by the kill; $left leftovers in the work dir"
			[ "$n_end" -lt "$nops" ] && [ "$n_before" -gt 0 ] && landed=$((landed + 1))
		fi
	fi
	total_ops=$((total_ops + nops))

	um_mount "$M" "$OPTS" || break
	if ! selftest; then
		expect_eq "round $round: WORKDIR/unionmount/work is empty after the mount" "" "$(ls -A "$W/unionmount/work" 2>&1)"
	fi
	tl 300 python3 "$T/ns.py" check "$round" "$SEED" "$N" "$M" "$L1" "$L2" "$T/state.json" "${journals[@]}" >"$R/check" 2>"$R/check.err"
	rc=$?
	[ $rc -eq 0 ] || fail "round $round: the model's check failed (status $rc): $(head -c 600 "$R/check.err")"
	while IFS= read -r line; do
		case $line in
		"ok "*) pass "${line#ok }" ;;
		"FAIL "*) fail "${line#FAIL }" ;;
		esac
	done <"$R/check"
	# (Only this round's tree: the daemon holds descriptors for every
	# directory the kernel remembers, and a long run has tens of
	# thousands; the end walks all rounds, ten per mount.)
	tree_dump "$M/r$round" "$R/tree"
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "round $round: its tree dumps without anomalies ($(wc -l <"$R/tree") lines)"
	else
		fail "round $round: the union's tree dump has anomalies (status $rc):"
		grep '^!' "$R/tree" | head -10 | sed 's/^/     /'
	fi
	expect_eq "round $round: the union still creates and removes" "OK OK" \
		"$(probe_out creat "$M/r$round/probe"; echo -n ' '; probe_out unlink "$M/r$round/probe")"
	um_umount "$M"
	if ! selftest && [ -n "${UNIONCTL:-}" ] && [ -x "$UNIONCTL" ]; then
		out=$(t "$UNIONCTL" check -o "$OPTS" 2>&1)
		rc=$?
		if [ $rc -eq 0 ] && [[ $out =~ ^(no problems found)?$ ]]; then
			pass "round $round: unionctl check finds nothing"
		else
			fail "round $round: unionctl check: status $rc, expected 0 and nothing found; it says: $(printf '%s' "$out" | head -5)"
		fi
	fi
done

# Every round again, ten per mount: as after its own round, and clean.
for ((first = 1; first <= ROUNDS; first += 10)); do
	last=$((first + 9 > ROUNDS ? ROUNDS : first + 9))
	um_mount "$M" "$OPTS" || break
	tl 300 python3 "$T/ns.py" verify "$T/state.json" "$M" "$first" "$last" >"$T/verify" 2>&1 ||
		fail "the model's verify failed: $(head -c 600 "$T/verify")"
	while IFS= read -r line; do
		case $line in
		"ok "*) pass "at the end: ${line#ok }" ;;
		"FAIL "*) fail "at the end: ${line#FAIL }" ;;
		esac
	done <"$T/verify"
	bad=''
	for ((k = first; k <= last; k++)); do
		tree_dump "$M/r$k" "$T/final.r$k" || bad+=" r$k: $(grep -m1 '^!' "$T/final.r$k")"
	done
	if [ -z "$bad" ]; then
		pass "at the end: r$first..r$last dump without anomalies"
	else
		fail "at the end: tree dumps with anomalies:$bad"
	fi
	um_umount "$M"
done

# ================================================================ the sweep
# A kill at every step of one operation of each kind: a dry run under
# strace lists the calls by which the daemon changes upper and the
# workdir during the operation ("renameat2 #2 in its thread", ...); then,
# for each of them, a fresh copy of the objects, strace delivering
# SIGKILL on entering that call, the lazy unmount, a new mount, and the
# objects must be wholly old or wholly new, the work dir empty.
# Namespace calls and markers; CRASH_SWEEP=all adds the owner, mode, time
# and data calls on the objects being built in the work dir.
MUT=renameat,renameat2,mknodat,mkdirat,unlinkat,linkat,symlinkat,setxattr,lsetxattr,fsetxattr
MUT+=,removexattr,lremovexattr,fremovexattr$NEWCALLS
[ "${CRASH_SWEEP:-}" == all ] &&
	MUT+=,fchownat,fchmodat,fchmod,fchown,utimensat,copy_file_range,ftruncate,pwrite64,fallocate
# attach_strace PID ARGS...: strace on every thread of PID; returns when
# all are traced. Sets SPID.
attach_strace() {
	local dpid=$1 i
	shift
	"$STRACE" -f -qq -p "$dpid" "$@" &
	SPID=$!
	for ((i = 0; i < 500; i++)); do
		grep -q '^TracerPid:[[:space:]]*0$' /proc/"$dpid"/task/*/status 2>/dev/null || return 0
		sleep 0.01
	done
	fail "strace did not attach to $dpid"
}
# sweep_prep TYPE COPY: the preparing operations; sets SWEEP_OP (argv).
sweep_prep() {
	local -a lines f
	local l
	mapfile -t lines <"$T/sweep/$1.$2"
	for l in "${lines[@]:0:${#lines[@]}-1}"; do
		IFS=$'\t' read -r -a f <<<"$l"
		[[ $(fsop_line "${f[@]}") == OK* ]] || fail "sweep $1.$2: preparing '${f[*]}' failed"
	done
	IFS=$'\t' read -r -a SWEEP_OP <<<"${lines[${#lines[@]}-1]}"
}
if selftest; then
	log "self-test: no daemon to kill: the sweep is skipped"
elif [ -z "$STRACE" ]; then
	log "no strace: the sweep is skipped"
else
	sweeps=0 missed=0 swept=()
	declare -A steps_of=()
	mkdir -p "$T/sweep"
	ns sweep-ops-all "$M" "$T/sweep" "$SWEEP_COPIES" || die "cannot list the operations of the sweep"
	um_mount "$M" "$OPTS" || finish
	# upper gets sw itself now, not in the first dry run
	[ "$(fsop_line create "$M/sw/warm" 0644)" == OK ] || fail "sweep: cannot create sw/warm"
	while IFS=$'\t' read -r type what; do
		sweep_prep "$type" 0
		attach_strace "${_pid_of[$M]}" -o "$T/sweep.$type.dry" -e trace="$MUT"
		ans=$(fsop_line "${SWEEP_OP[@]}")
		sleep 0.2
		kill -INT "$SPID"
		wait "$SPID"
		expect_eq "sweep $type: the dry run works" OK "$ans"
		swept+=("$type.0")
		steps_of[$type.0]="no kill, the dry run"
		# the calls, numbered per syscall and thread as strace counts
		mapfile -t steps < <(awk '!/resumed>/ && $2 ~ /^[a-z0-9_]+\(/ {
			sc = $2; sub(/\(.*/, "", sc); n = ++count[$1 " " sc]; print sc ":" n }' "$T/sweep.$type.dry")
		if [ ${#steps[@]} -ge $SWEEP_COPIES ]; then
			fail "sweep $type: ${#steps[@]} steps, more than the $((SWEEP_COPIES - 1)) copies built"
			steps=("${steps[@]:0:SWEEP_COPIES-1}")
		fi
		log "sweep $type ($what): ${#steps[@]} steps: ${steps[*]}"
		c=0
		for step in "${steps[@]}"; do
			c=$((c + 1))
			sweeps=$((sweeps + 1))
			sweep_prep "$type" "$c"
			pid=${_pid_of[$M]}
			attach_strace "$pid" -o /dev/null -e trace="${step%:*}" \
				-e inject="${step%:*}:signal=SIGKILL:when=${step#*:}"
			ans=$(fsop_line "${SWEEP_OP[@]}")
			# An answer of a dead connection says the kill landed: give
			# the daemon's exit the time a loaded machine takes.
			n=1000
			[[ $ans =~ $DEAD_ANSWERS ]] && n=6000
			for ((i = 0; i < n; i++)); do
				pid_running "$pid" || break
				sleep 0.01
			done
			if pid_running "$pid"; then
				missed=$((missed + 1))
				log "sweep $type, step $c ($step): no kill (the operation answered $ans)"
				kill -TERM "$SPID"
				wait "$SPID"
				um_umount "$M"
			else
				{ wait "$pid"; } 2>/dev/null
				wait "$SPID"
				reap_killed "$M"
			fi
			um_mount "$M" "$OPTS" || finish
			expect_eq "sweep $type, killed at step $c ($step): WORKDIR/unionmount/work is empty after the mount" "" \
				"$(ls -A "$W/unionmount/work" 2>&1)"
			swept+=("$type.$c")
			steps_of[$type.$c]=$step
		done
	done < <(ns sweep-types)
	# (each copy is left alone by the later kills: their states are read
	# once, at the end)
	tl 120 python3 "$T/ns.py" sweep-states "$M" "$L1" "$L2" "${swept[@]}" >"$T/sweep.states" 2>&1
	expect_eq "sweep: a state for each of the ${#swept[@]} copies" "${#swept[@]}" "$(grep -c '' "$T/sweep.states")"
	while read -r tc st; do
		if [ "${tc##*.}" == 0 ]; then
			expect_eq "sweep ${tc%.*}: after the dry run, wholly new" new "$st"
		else
			expect_match "sweep ${tc%.*}, killed at step ${tc##*.} (${steps_of[$tc]:-?}): wholly old or wholly new" \
				'^(old|new)$' "$st"
		fi
	done <"$T/sweep.states"
	um_umount "$M"
	if [ -n "${UNIONCTL:-}" ] && [ -x "$UNIONCTL" ]; then
		out=$(t "$UNIONCTL" check -o "$OPTS" 2>&1)
		rc=$?
		if [ $rc -eq 0 ] && [[ $out =~ ^(no problems found)?$ ]]; then
			pass "after the sweep: unionctl check finds nothing"
		else
			fail "after the sweep: unionctl check: status $rc, expected 0 and nothing found; it says: $(printf '%s' "$out" | head -5)"
		fi
	fi
	if [ $((missed * 5)) -le "$sweeps" ]; then
		pass "harness: $((sweeps - missed)) of $sweeps kills of the sweep landed on their step"
	else
		fail "harness: only $((sweeps - missed)) of $sweeps kills of the sweep landed on their step"
	fi
fi

if ! selftest; then
	if [ $landed -ge $(((ROUNDS + 1) / 2)) ]; then
		pass "harness: $landed of $ROUNDS kills landed while operations were still running"
	else
		fail "harness: only $landed of $ROUNDS kills landed while operations were still running: the crash was not exercised"
	fi
fi
snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower l1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "lower l2 unchanged" "$T/l2.before" "$T/l2.after"
log "$total_ops operations in $ROUNDS rounds; took $(($(date +%s) - START))s"
finish
