#!/usr/bin/env python3
"""difftest: random-operation differential tester, unionmount against
kernel overlayfs.

For each seed: build the same three lower branches twice (a random tree
with overlapping names, whiteouts and opaque directories made the
overlayfs way: character device 0:0, trusted.overlay.opaque=y), mount
kernel overlayfs (redirect_dir=on,index=on,xino=on, as lib.sh's
ovl_rw_mount) over one copy and the union ($UNIONMOUNT) over the other,
apply the same random operations to both, and after every operation
compare the answers (OK / errno name / values) and the whole visible tree
(names, types, d_type, contents, modes, owners, mtimes, xattrs, symlink
targets, sizes and link counts of non-directories, and which names share
an st_ino). A failure is shrunk to the shortest case that still fails
the same way (delta debugging over the operations, the kernel-only
prefix and the initial tree), replaying on fresh branches, and printed
as a command line and as a replay file.

  difftest.py --ci                  fixed seeds and cases/ (README.md: times)
  difftest.py --time SECONDS        random seeds until the time is up
  difftest.py --seed N [--nops K]   one seed
  difftest.py --replay FILE         replay a saved case
  difftest.py --tree '...' --ops '...' [--fallthru on|off]
  difftest.py --emit-shell FILE     a replay file as a shell script (fsop)

Needs root, /dev/fuse and kernel overlayfs (exit 77 otherwise); the union
binary from $UNIONMOUNT or --unionmount. Exit: 0 clean, 1 divergence,
77 skip, 99 harness error. See README.md beside this file.
"""

import argparse
import ctypes
import errno
import hashlib
import json
import os
import random
import re
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

# ------------------------------------------------------------------ libc

libc = ctypes.CDLL("libc.so.6", use_errno=True)


class Dirent(ctypes.Structure):
    # struct dirent of glibc on 64-bit Linux (== struct dirent64)
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.restype = None
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.rewinddir.restype = None
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                           ctypes.c_char_p, ctypes.c_uint]
libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p,
                           ctypes.POINTER(Timespec), ctypes.c_int]
libc.futimens.argtypes = [ctypes.c_int, ctypes.POINTER(Timespec)]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                           ctypes.c_int64]

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
RENAME_FLAGS = {"noreplace": 1, "exchange": 2}
FALLOC_MODES = {"0": 0, "keep": 1, "punch": 3, "zero": 0x10}
DT = {0: "u", 1: "p", 2: "c", 4: "d", 6: "b", 8: "f", 10: "l", 12: "s"}


def errno_error(what=""):
    """OSError from the errno a failed libc call left."""
    e = ctypes.get_errno()
    return OSError(e, os.strerror(e), what or None)


def ename(e):
    return errno.errorcode.get(e, "E%d" % e)


def tchar(mode):
    for test, c in ((stat.S_ISREG, "f"), (stat.S_ISDIR, "d"),
                    (stat.S_ISLNK, "l"), (stat.S_ISCHR, "c"),
                    (stat.S_ISBLK, "b"), (stat.S_ISFIFO, "p"),
                    (stat.S_ISSOCK, "s")):
        if test(mode):
            return c
    return "?"


def readdir_raw(path):
    """[(name, dtype char, d_ino)] in readdir order, '.' and '..' included;
    raises OSError."""
    d = libc.opendir(os.fsencode(path))
    if not d:
        raise errno_error(path)
    out = []
    try:
        while True:
            ctypes.set_errno(0)
            p = libc.readdir(d)
            if not p:
                if ctypes.get_errno():
                    raise errno_error(path)
                break
            de = p.contents
            out.append((os.fsdecode(de.d_name), DT.get(de.d_type, "?"),
                        de.d_ino))
    finally:
        libc.closedir(d)
    return out


def tspec(s):
    if s == "now":
        return Timespec(0, UTIME_NOW)
    if s == "omit":
        return Timespec(0, UTIME_OMIT)
    sec, _, frac = s.partition(".")
    ns = int((frac + "000000000")[:9]) if frac else 0
    return Timespec(int(sec), ns)


# ------------------------------------------------------------------ names and contents

POOL = [["a", "b", "c", "d", "e", "f"], ["g", "h", "i", "j"], ["k", "m", "n"]]
NEWNAMES = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "m", "n",
            "p", "q"]
XNAMES = ["user.a", "user.b", "user.c"]
XVALUES = ["1", "hello", "v" * 40]
T_OLD = 1000000000
# Operations that use a descriptor or handle kept by the worker between
# operations (slots "0" and "1"), and the remount: never run as another
# user, never in the kernel-only prefix.
STATEFUL = ("hold", "hread", "hwrite", "hfstat", "hfchmod", "hclose",
            "dopen", "dread", "dclose", "remount")
# Operations that add or remove names: they make the names they touch
# exempt from the checks of a directory listing in progress.
NAMESPACE = {"create": (1,), "mkdir": (1,), "mknod": (1,), "symlink": (2,),
             "link": (2,), "unlink": (1,), "rmdir": (1,), "rename": (1, 2),
             "copy_file_range": (2,)}


def join(d, n):
    return n if d in (".", "") else d + "/" + n


def parent(p):
    return p.rsplit("/", 1)[0] if "/" in p else "."


def lower_content(layer, path, size):
    """[(offset, bytes)] of a lower file: a pattern naming its layer and
    path; big sizes are sparse (a hole, then 200 bytes at the end)."""
    unit = ("%s:%s|" % (layer, path)).encode()
    if size > 16384:
        tail = (unit * (200 // len(unit) + 1))[:200]
        return [(size - 200, tail)]
    return [(0, (unit * (size // len(unit) + 1))[:size])]


def stamp(layer, rel):
    c = zlib.crc32(("%s/%s" % (layer, rel)).encode())
    return T_OLD + c % 50000000, c % 1000000000


def safe_rel(p):
    if p.startswith("/") or ".." in p.split("/") or "\0" in p or p == "":
        raise ValueError("unsafe path %r" % p)
    return p


# ------------------------------------------------------------------ initial tree

# Hand-written entries (--tree, cases/) may leave out the trailing fields.
TREE_DEFAULTS = {"dir": ["0755", "0", "0"], "file": ["0644", "0", "0", "5"],
                 "fifo": ["0644"]}


def full_entry(e):
    if len(e) < 3:
        raise ValueError("bad tree entry %r" % e)
    return e + TREE_DEFAULTS.get(e[0], [])[len(e) - 3:]


def gen_tree(rng, hardlinks=True):
    """A random lower tree: a list of entries (token lists) for l1..l3."""
    entries = []
    for layer in ("l1", "l2", "l3"):
        files = []

        def fill(d, depth):
            for name in POOL[depth]:
                if rng.random() > (0.7, 0.6, 0.45)[depth]:
                    continue
                p = join(d, name)
                kinds = [("dir", 45 if depth < 2 else 10), ("file", 35),
                         ("sym", 6), ("wh", 8), ("fifo", 2),
                         ("opq", 5 if layer != "l3" else 0),
                         ("hl", 6 if files and hardlinks else 0)]
                k = rng.choices([k for k, _ in kinds],
                                [w for _, w in kinds])[0]
                if k in ("dir", "opq"):
                    mode = rng.choice(["0755", "0755", "0700", "0775",
                                       "02775", "01777"])
                    owner = rng.choice([("0", "0")] * 4 + [("1000", "1000"),
                                                           ("65534", "65534")])
                    entries.append(["dir", layer, p, mode] + list(owner))
                    if k == "opq":
                        entries.append(["opq", layer, p])
                    if rng.random() < 0.15:
                        entries.append(["xa", layer, p, rng.choice(XNAMES),
                                        rng.choice(XVALUES)])
                    if depth < 2:
                        fill(p, depth + 1)
                elif k == "file":
                    mode = rng.choice(["0644", "0644", "0600", "0755",
                                       "0444", "04755", "0640"])
                    owner = rng.choice([("0", "0")] * 4 + [("1000", "1000"),
                                                           ("65534", "65534")])
                    size = rng.choice([0, 5, 40, 100, 1000, 5000, 100000])
                    entries.append(["file", layer, p, mode] + list(owner)
                                   + [str(size)])
                    files.append(p)
                    if rng.random() < 0.15:
                        entries.append(["xa", layer, p, rng.choice(XNAMES),
                                        rng.choice(XVALUES)])
                elif k == "sym":
                    tgt = rng.choice(NEWNAMES[:8] + ["g/h", "a/g", "nowhere"])
                    entries.append(["sym", layer, p, tgt])
                elif k == "wh":
                    entries.append(["wh", layer, p])
                elif k == "fifo":
                    entries.append(["fifo", layer, p, "0644"])
                elif k == "hl":
                    entries.append(["hl", layer, p, rng.choice(files)])
                    files.append(p)

        fill(".", 0)
    return entries


def build_tree(base, entries):
    """Create the entries under base/l1..l3 (parents as 0755 dirs), then
    pin every time stamp to a value derived from layer and path."""
    for layer in ("l1", "l2", "l3"):
        os.makedirs(os.path.join(base, layer), exist_ok=True)
    for e in entries:
        e = full_entry(e)
        kind, layer, rel = e[0], e[1], safe_rel(e[2])
        if layer not in ("l1", "l2", "l3"):
            raise ValueError("bad layer in %r" % e)
        p = os.path.join(base, layer, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        try:
            if kind == "dir":
                if not os.path.isdir(p):
                    os.mkdir(p)
                os.lchown(p, int(e[4]), int(e[5]))
                os.chmod(p, int(e[3], 8))
            elif kind == "opq":
                if not os.path.isdir(p):
                    os.mkdir(p)
                os.setxattr(p, "trusted.overlay.opaque", b"y",
                            follow_symlinks=False)
            elif kind == "file":
                fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                size = int(e[6])
                for off, data in lower_content(layer, rel, size):
                    os.pwrite(fd, data, off)
                os.ftruncate(fd, size)
                os.close(fd)
                os.lchown(p, int(e[4]), int(e[5]))
                os.chmod(p, int(e[3], 8))
            elif kind == "sym":
                os.symlink(e[3], p)
            elif kind == "hl":
                os.link(os.path.join(base, layer, safe_rel(e[3])), p)
            elif kind == "wh":
                os.mknod(p, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            elif kind == "fifo":
                os.mknod(p, stat.S_IFIFO | int(e[3], 8))
            elif kind == "xa":
                os.setxattr(p, e[3], e[4].encode(), follow_symlinks=False)
            else:
                raise ValueError("unknown tree entry %r" % e)
        except (FileExistsError, FileNotFoundError, NotADirectoryError,
                IsADirectoryError):
            # A shrunk or hand-edited tree may hold conflicting entries:
            # skipped the same way on both sides.
            pass
    for layer in ("l1", "l2", "l3"):
        top = os.path.join(base, layer)
        for dirpath, dirnames, filenames in os.walk(top, topdown=False):
            for n in filenames + dirnames:
                p = os.path.join(dirpath, n)
                rel = os.path.relpath(p, top)
                s, ns = stamp(layer, rel)
                os.utime(p, ns=(s * 10**9 + ns, s * 10**9 + ns),
                         follow_symlinks=False)
        s, ns = stamp(layer, ".")
        os.utime(top, ns=(s * 10**9 + ns, s * 10**9 + ns))


def snapshot(top):
    """Strict digest of a branch (inode numbers, ctimes, contents,
    xattrs): proves a lower branch was not written."""
    h = hashlib.sha1()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for n in sorted(filenames + dirnames) + ["."]:
            p = os.path.join(dirpath, n) if n != "." else dirpath
            st = os.lstat(p)
            h.update(repr((os.path.relpath(p, top), st.st_mode, st.st_uid,
                           st.st_gid, st.st_size, st.st_nlink, st.st_ino,
                           st.st_mtime_ns, st.st_ctime_ns, st.st_rdev)).encode())
            for x in sorted(os.listxattr(p, follow_symlinks=False)):
                h.update(x.encode() + os.getxattr(p, x, follow_symlinks=False))
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h.update(f.read())
            elif stat.S_ISLNK(st.st_mode):
                h.update(os.fsencode(os.readlink(p)))
    return h.hexdigest()


# ------------------------------------------------------------------ worker (runs inside one side)

class Answer(Exception):
    """A refusal answered with more than the errno name."""


class Worker:
    """Executes operations and dumps the tree of one mountpoint. Runs as a
    child process (difftest.py --worker ROOT T0) so that a hung mount can
    be killed without taking the driver with it."""

    def __init__(self, root, t0):
        self.root = root
        self.t0 = t0
        self.held = {}
        self.dirs = {}
        os.umask(0o022)

    def p(self, rel):
        rel = safe_rel(rel)
        return self.root if rel == "." else os.path.join(self.root, rel)

    def tcls(self, ns):
        s = ns // 10**9
        if s >= self.t0 - 1:
            return "recent"
        return "%d.%09d" % (s, ns % 10**9)

    def is_fifo(self, p):
        try:
            return stat.S_ISFIFO(os.stat(p).st_mode)
        except OSError:
            return False

    # --inject OP (a check of the tester itself, for the union side's
    # worker only): OP runs with the lowest bit of its second argument
    # flipped when that is a number (an offset, size, mode or uid), so
    # that what it changes must show as a divergence.
    inject = None

    def op(self, a):
        """Answers "OK", "OK VALUE" or an errno name, as fsop does."""
        if self.inject == a[0] and len(a) > 2 and a[2].isdigit():
            a = list(a)
            a[2] = str(int(a[2]) ^ 1)
        if a[0] == "as":
            return self.op_as(int(a[1]), a[2:])
        try:
            r = self._op(a)
            return "OK" if r is None else "OK " + r
        except OSError as e:
            return ename(e.errno)
        except Answer as e:
            return str(e)

    def op_as(self, uid, a):
        """as UID OP...: OP run by a child process with uid = gid = UID
        and no supplementary groups (permission checks, ownership of
        what it creates)."""
        if a[0] == "as" or a[0] in STATEFUL:
            raise ValueError("'as' cannot wrap %r" % a[0])
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(rfd)
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                os.write(wfd, self.op(a).encode())
            except BaseException:
                code = 1
            os._exit(code)
        os.close(wfd)
        chunks = []
        while True:
            b = os.read(rfd, 65536)
            if not b:
                break
            chunks.append(b)
        os.close(rfd)
        _, st = os.waitpid(pid, 0)
        if st != 0:
            raise RuntimeError("'as %d' child failed (%d)" % (uid, st))
        return b"".join(chunks).decode()

    def _write(self, p, flags, off, s):
        if self.is_fifo(p):
            # fsop would block on a FIFO without a reader.
            return "fifo-skipped"
        fd = os.open(p, flags)
        try:
            data = s.encode()
            if flags & os.O_APPEND:
                os.write(fd, data)
            elif data:
                os.pwrite(fd, data, off)
        finally:
            os.close(fd)
        return None

    def _op(self, a):
        op = a[0]
        p = self.p(a[1]) if len(a) > 1 and op != "symlink" and op not in STATEFUL else None
        if op == "create":
            os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                             int(a[2], 8)))
        elif op == "mkdir":
            os.mkdir(p, int(a[2], 8))
        elif op == "mknod":  # mknod P fifo MODE
            os.mknod(p, stat.S_IFIFO | int(a[3], 8))
        elif op == "symlink":  # symlink TARGET P
            os.symlink(a[1], self.p(a[2]))
        elif op == "link":
            os.link(p, self.p(a[2]), follow_symlinks=False)
        elif op == "unlink":
            os.unlink(p)
        elif op == "rmdir":
            os.rmdir(p)
        elif op == "rename":
            fl = RENAME_FLAGS[a[3]] if len(a) > 3 else 0
            if libc.renameat2(AT_FDCWD, os.fsencode(p), AT_FDCWD,
                              os.fsencode(self.p(a[2])), fl) < 0:
                raise errno_error()
        elif op == "write":
            return self._write(p, os.O_WRONLY, int(a[2]), a[3])
        elif op == "append":
            return self._write(p, os.O_WRONLY | os.O_APPEND, 0, a[2])
        elif op == "otrunc":
            return self._write(p, os.O_WRONLY | os.O_TRUNC, 0, a[2])
        elif op == "truncate":
            os.truncate(p, int(a[2]))
        elif op == "ftruncate":
            if self.is_fifo(p):
                return "fifo-skipped"
            fd = os.open(p, os.O_WRONLY)
            try:
                os.ftruncate(fd, int(a[2]))
            finally:
                os.close(fd)
        elif op == "fallocate":
            if self.is_fifo(p):
                return "fifo-skipped"
            fd = os.open(p, os.O_WRONLY)
            try:
                if libc.fallocate(fd, FALLOC_MODES[a[2]], int(a[3]),
                                  int(a[4])) < 0:
                    raise errno_error()
            finally:
                os.close(fd)
        elif op == "copy_file_range":  # SRC DST LEN
            if self.is_fifo(p) or self.is_fifo(self.p(a[2])):
                return "fifo-skipped"
            fi = os.open(p, os.O_RDONLY)
            try:
                fo = os.open(self.p(a[2]), os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    total, want = 0, int(a[3])
                    while total < want:
                        n = os.copy_file_range(fi, fo, want - total)
                        if n == 0:
                            break
                        total += n
                finally:
                    os.close(fo)
            finally:
                os.close(fi)
            return str(total)
        elif op == "chmod":  # follows a final symlink, as fsop's chmod
            os.chmod(p, int(a[2], 8))
        elif op == "chown":
            os.lchown(p, int(a[2]), int(a[3]))
        elif op == "utimens":
            ts = (Timespec * 2)(tspec(a[2]), tspec(a[3]))
            if libc.utimensat(AT_FDCWD, os.fsencode(p), ts,
                              AT_SYMLINK_NOFOLLOW) < 0:
                raise errno_error()
        elif op == "setxattr":
            fl = {"create": os.XATTR_CREATE,
                  "replace": os.XATTR_REPLACE}.get(a[4] if len(a) > 4 else "", 0)
            os.setxattr(p, a[2], a[3].encode(), fl, follow_symlinks=False)
        elif op == "removexattr":
            os.removexattr(p, a[2], follow_symlinks=False)
        elif op.endswith("-ro"):
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                if op == "fchmod-ro":
                    os.fchmod(fd, int(a[2], 8))
                elif op == "fchown-ro":
                    os.fchown(fd, int(a[2]), int(a[3]))
                elif op == "futimens-ro":
                    ts = (Timespec * 2)(tspec(a[2]), tspec(a[3]))
                    if libc.futimens(fd, ts) < 0:
                        raise errno_error()
                elif op == "fsetxattr-ro":
                    os.setxattr(fd, a[2], a[3].encode())
                elif op == "fremovexattr-ro":
                    os.removexattr(fd, a[2])
                else:
                    raise ValueError("unknown op %r" % op)
            finally:
                os.close(fd)
        elif op == "seekdir":
            return self.seekdir(p, int(a[2]))
        elif op == "hold":  # hold SLOT P ro|rw
            self.hclose(a[1])
            fl = os.O_RDONLY if a[3] == "ro" else os.O_RDWR
            pp = self.p(a[2])
            if self.is_fifo(pp):
                return "fifo-skipped"
            self.held[a[1]] = os.open(pp, fl)
        elif op == "hread":
            fd = self.held.get(a[1])
            if fd is None:
                return "not-held"
            d = os.pread(fd, 1 << 20, 0)
            return "%s/%d" % (hashlib.sha1(d).hexdigest()[:12], len(d))
        elif op == "hwrite":  # hwrite SLOT OFF STRING
            fd = self.held.get(a[1])
            if fd is None:
                return "not-held"
            os.pwrite(fd, a[3].encode(), int(a[2]))
        elif op == "hfstat":
            fd = self.held.get(a[1])
            if fd is None:
                return "not-held"
            st = os.fstat(fd)
            r = "%s %04o %d:%d" % (tchar(st.st_mode), st.st_mode & 0o7777,
                                   st.st_uid, st.st_gid)
            if stat.S_ISDIR(st.st_mode):
                # hold can open a directory: its size and link count are
                # left out, as in the dumps (normalise_dump).
                return "%s m=%s" % (r, self.tcls(st.st_mtime_ns))
            return "%s s=%d n=%d m=%s" % (r, st.st_size, st.st_nlink,
                                          self.tcls(st.st_mtime_ns))
        elif op == "hfchmod":
            fd = self.held.get(a[1])
            if fd is None:
                return "not-held"
            try:
                os.fchmod(fd, int(a[2], 8))
            except OSError as e:
                # Marks a refusal on a file left without a visible name:
                # the one case where run_case accepts overlayfs's EEXIST
                # against the union's ENOENT (man unionmount.8, CURRENT
                # LIMITS).
                if self.nameless(fd):
                    raise Answer(ename(e.errno) + " nameless")
                raise
        elif op == "hclose":
            if a[1] not in self.held:
                return "not-held"
            self.hclose(a[1])
        elif op == "dopen":  # dopen SLOT D: a directory handle kept open
            self.dclose(a[1])
            d = libc.opendir(os.fsencode(self.p(a[2])))
            if not d:
                raise errno_error()
            self.dirs[a[1]] = [d, []]
        elif op in ("dread", "dclose"):  # dread SLOT N | dclose SLOT
            h = self.dirs.get(a[1])
            if h is None:
                return "not-held"
            n = int(a[2]) if op == "dread" else 1 << 30
            try:
                while n > 0:
                    ctypes.set_errno(0)
                    de = libc.readdir(h[0])
                    if not de:
                        if ctypes.get_errno():
                            raise errno_error("readdir")
                        break
                    h[1].append("%s/%s" % (os.fsdecode(de.contents.d_name),
                                           DT.get(de.contents.d_type, "?")))
                    n -= 1
            except OSError:
                if op == "dclose":
                    self.dclose(a[1])
                raise
            if op == "dclose":
                names = h[1]
                self.dclose(a[1])
                # the names in the order read: the driver judges them
                # (check_listing), this answer is never compared as is
                return "LIST " + "\0".join(names)
        else:
            raise ValueError("unknown op %r" % op)
        return None

    def nameless(self, fd):
        """No name in the tree reaches the file open as fd."""
        try:
            ino = os.fstat(fd).st_ino
        except OSError:
            return False
        for dirpath, dirnames, filenames in os.walk(self.root):
            for n in dirnames + filenames:
                try:
                    if os.lstat(os.path.join(dirpath, n)).st_ino == ino:
                        return False
                except OSError:
                    pass
        return True

    def hclose(self, slot):
        fd = self.held.pop(slot, None)
        if fd is not None:
            os.close(fd)

    def dclose(self, slot):
        h = self.dirs.pop(slot, None)
        if h is not None:
            libc.closedir(h[0])

    def drop(self):
        for s in list(self.held):
            self.hclose(s)
        for s in list(self.dirs):
            self.dclose(s)

    def seekdir(self, p, k):
        """telldir/seekdir on one handle (as tests/integration/seekdir.c):
        every name once, '.' and '..' once, seeking to a recorded
        position gives the entry recorded there and the ones after it,
        the end position gives the end, rewinddir the first entry.
        Answers the sorted names (a name whose lstat fails ENOENT is
        marked '!ghost/' and its d_type, see normalise_seekdir) or BAD
        with the reason."""
        d = libc.opendir(os.fsencode(p))
        if not d:
            raise errno_error("opendir")
        bad = []
        try:
            recs = []
            while True:
                pos = libc.telldir(d)
                ctypes.set_errno(0)
                de = libc.readdir(d)
                if not de:
                    if ctypes.get_errno():
                        raise errno_error("readdir")
                    break
                recs.append((pos, os.fsdecode(de.contents.d_name),
                             DT.get(de.contents.d_type, "?")))
            endpos = libc.telldir(d)
            names = [n for _, n, _ in recs]
            if names.count(".") != 1 or names.count("..") != 1:
                bad.append("dots")
            if len(set(names)) != len(names):
                bad.append("dup")
            order = list(range(len(recs)))
            random.Random(k).shuffle(order)
            for i in order[:8]:
                libc.seekdir(d, recs[i][0])
                for j in range(i, i + 3):
                    de = libc.readdir(d)
                    got = os.fsdecode(de.contents.d_name) if de else None
                    want = recs[j][1] if j < len(recs) else None
                    if got != want:
                        bad.append("seek#%d+%d:%s!=%s" % (i, j - i, got, want))
                        break
                    if want is None:
                        break
            libc.seekdir(d, endpos)
            if libc.readdir(d):
                bad.append("end")
            libc.rewinddir(d)
            de = libc.readdir(d)
            if recs and (not de or os.fsdecode(de.contents.d_name) != recs[0][1]):
                bad.append("rewind")
        finally:
            libc.closedir(d)
        if bad:
            return "BAD " + ",".join(bad)
        out = []
        for _, n, dt in sorted(recs, key=lambda r: r[1]):
            if n in (".", ".."):
                continue
            try:
                os.lstat(os.path.join(p, n))
                out.append(n)
            except FileNotFoundError:
                out.append(n + "!ghost/" + dt)
        return ",".join(out)

    def dump(self):
        """{path: {field: value}} for every visible object. Fields:
        t type, m mode, o owner, s size (not of directories), n nlink,
        mt mtime (exact if older than the run, else 'recent'), l symlink
        target, h content digest, x xattrs, dt d_type in the parent's
        listing, dino d_ino == st_ino, ino (raw st_ino, turned into groups
        by the driver).
        Readdir names whose lstat fails are kept as {'ghost': d_type};
        listing anomalies (dots, duplicates) become fields of the dir."""
        out = {}

        def obj(rel, full, st, extra):
            r = {"t": tchar(st.st_mode), "m": "%04o" % (st.st_mode & 0o7777),
                 "o": "%d:%d" % (st.st_uid, st.st_gid), "ino": st.st_ino,
                 "n": st.st_nlink, "mt": self.tcls(st.st_mtime_ns)}
            if not stat.S_ISDIR(st.st_mode):
                r["s"] = st.st_size
            r.update(extra)
            if stat.S_ISLNK(st.st_mode):
                try:
                    r["l"] = os.readlink(full)
                except OSError as e:
                    r["l"] = "ERR:" + ename(e.errno)
            if stat.S_ISREG(st.st_mode):
                try:
                    with open(full, "rb", buffering=0) as f:
                        d = f.read()
                    r["h"] = "%s/%d" % (hashlib.sha1(d).hexdigest()[:12], len(d))
                except OSError as e:
                    r["h"] = "ERR:" + ename(e.errno)
            try:
                xs = {}
                for x in sorted(os.listxattr(full, follow_symlinks=False)):
                    try:
                        xs[x] = os.getxattr(full, x, follow_symlinks=False).decode(
                            "utf-8", "backslashreplace")
                    except OSError as e:
                        xs[x] = "ERR:" + ename(e.errno)
                if xs:
                    r["x"] = xs
            except OSError as e:
                r["x"] = "ERR:" + ename(e.errno)
            out[rel] = r
            if stat.S_ISDIR(st.st_mode):
                walk(rel, full)

        def walk(rel, full):
            try:
                ents = readdir_raw(full)
            except OSError as e:
                out[rel]["readdir"] = "ERR:" + ename(e.errno)
                return
            names = [n for n, _, _ in ents]
            if names.count(".") != 1 or names.count("..") != 1:
                out[rel]["dots"] = "%d,%d" % (names.count("."), names.count(".."))
            dups = sorted({n for n in names if names.count(n) > 1})
            if dups:
                out[rel]["dups"] = ",".join(dups)
            seen = set()
            for n, dt, dino in ents:
                if n in (".", "..") or n in seen:
                    continue
                seen.add(n)
                cr = join(rel, n)
                cf = os.path.join(full, n)
                try:
                    st = os.lstat(cf)
                except OSError as e:
                    out[cr] = {"ghost": dt, "err": ename(e.errno)}
                    continue
                obj(cr, cf, st, {"dt": dt, "dino": dino == st.st_ino})

        try:
            st = os.lstat(self.root)
        except OSError as e:
            return {".": {"err": ename(e.errno)}}
        obj(".", self.root, st, {})
        return out


def worker_main(root, t0, inject=None):
    w = Worker(root, int(t0))
    w.inject = inject
    out = sys.stdout
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            c = msg["cmd"]
            if c == "op":
                res = {"r": w.op(msg["op"])}
            elif c == "dump":
                res = {"dump": w.dump()}
            elif c == "drop":
                w.drop()
                res = {"r": "OK"}
            elif c == "quit":
                w.drop()
                break
            else:
                res = {"error": "unknown command %r" % c}
        except Exception:
            res = {"error": traceback.format_exc()}
        out.write(json.dumps(res) + "\n")
        out.flush()
    return 0


# ------------------------------------------------------------------ driver side

class Harness(Exception):
    """A problem of the tester or the machine, not a divergence."""


class Failure:
    def __init__(self, step, kind, key, detail):
        self.step, self.kind, self.key, self.detail = step, kind, key, detail

    def same(self, other):
        # A shrunk case must fail the same way: the same kind, and for an
        # answer mismatch the same operation, for a tree mismatch at least
        # one field in common.
        if other is None or self.kind != other.kind:
            return False
        if self.kind == "tree":
            return bool(set(self.key) & set(other.key))
        return self.key == other.key

    def __str__(self):
        return "step %d: %s" % (self.step, self.detail)


LIVE = {"mounts": [], "procs": [], "dirs": []}   # for cleanup on any exit
STOPPING = False   # a signal came: clean up and exit, as fast as possible


def mounts():
    """(mount point, type) of each line of /proc/self/mounts. The kernel
    writes a blank, tab, newline or backslash in a mount point as \\ooo:
    undone, so that the paths compare with ours (a TMPDIR with a blank)."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fs = line.split()
            if len(fs) > 2:
                yield (re.sub(r"\\([0-3][0-7][0-7])", lambda m: chr(int(m.group(1), 8)), fs[1]),
                       fs[2])


def is_mounted(path, fstype=None):
    return any(mp == path and (fstype is None or ty == fstype) for mp, ty in mounts())


def mounted_under(prefix):
    return [mp for mp, _ in mounts() if mp.startswith(prefix.rstrip("/") + "/")]


def run_cmd(cmd, timeout=20):
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        return r.returncode, (r.stdout + r.stderr).strip()
    except subprocess.TimeoutExpired:
        return 124, "timeout after %ds: %s" % (timeout, " ".join(cmd))


class LineReader:
    def __init__(self, proc):
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return b""
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line


class Side:
    """One branch set (l1 l2 l3 u w mnt) with its mount and worker."""

    def __init__(self, name, base, cfg, t0, fallthru):
        self.name, self.base, self.cfg, self.t0 = name, base, cfg, t0
        self.fallthru = fallthru
        self.copied_upper = False
        self.mnt = os.path.join(base, "mnt")
        self.daemon = None
        self.worker = None
        self.reader = None
        self.nmount = 0
        self.log = os.path.join(base, "daemon.log")

    def lowers(self):
        return ":".join(os.path.join(self.base, l) for l in ("l1", "l2", "l3"))

    def mount(self):
        up, wk = os.path.join(self.base, "u"), os.path.join(self.base, "w")
        self.nmount += 1
        if self.name == "ref" or self.cfg.selftest:
            opts = "lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=on,index=on,xino=on" % (
                self.lowers(), up, wk)
            if self.name == "un" and self.copied_upper:
                # --selftest over a copy of the kernel's upper: its origin
                # file handles name the other side's lowers, which
                # index=on refuses (ESTALE). The trees of such runs have
                # no lower hard links, the one thing index=on is for here.
                opts = opts.replace("index=on", "index=off")
            for _ in range(25):
                rc, out = run_cmd(["mount", "-t", "overlay", "overlay", "-o", opts,
                                   self.mnt])
                # Rarely the kernel still holds the upper dir of the mount
                # just undone ("upperdir is in-use", EBUSY): wait a little.
                if rc == 0 or "busy" not in out:
                    break
                time.sleep(0.2)
            if rc != 0:
                raise Harness("kernel overlayfs mount failed: %s" % out)
            LIVE["mounts"].append(("k", self.mnt))
        else:
            opts = "lowerdir=%s,upperdir=%s,workdir=%s,fallthru=%s" % (
                self.lowers(), up, wk, self.fallthru)
            if self.cfg.union_opts:
                opts += "," + self.cfg.union_opts
            logf = open(self.log, "a")
            logf.write("=== mount %d\n" % self.nmount)
            logf.flush()
            self.daemon = subprocess.Popen(
                [self.cfg.unionmount, self.mnt, "-o", opts, "-f"],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                start_new_session=True)
            logf.close()
            LIVE["procs"].append((self.daemon, self.mnt))
            LIVE["mounts"].append(("f", self.mnt))
            deadline = time.monotonic() + 10
            while not is_mounted(self.mnt, "fuse.unionmount"):
                if self.daemon.poll() is not None:
                    return "daemon exited with status %d before mounting: %s" % (
                        self.daemon.returncode, self.logtail())
                if time.monotonic() > deadline:
                    return "not mounted after 10s: %s" % self.logtail()
                time.sleep(0.02)
        self.start_worker()
        return None

    def logtail(self, n=15):
        try:
            with open(self.log) as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def start_worker(self):
        self.worker = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", self.mnt,
             str(self.t0)] + (["--inject", self.cfg.inject]
                              if self.cfg.inject and self.name == "un" else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            start_new_session=True)
        LIVE["procs"].append((self.worker, None))
        self.reader = LineReader(self.worker)

    def send(self, msg):
        self.worker.stdin.write((json.dumps(msg) + "\n").encode())
        self.worker.stdin.flush()

    def recv(self, timeout):
        line = self.reader.readline(timeout)
        if line is None:
            self.kill_worker()
            return {"timeout": True}
        if line == b"":
            raise Harness("%s worker died (status %s)" % (self.name, self.worker.wait()))
        res = json.loads(line)
        if "error" in res:
            raise Harness("%s worker: %s" % (self.name, res["error"]))
        return res

    def kill_worker(self):
        if self.worker and self.worker.poll() is None:
            self.worker.kill()
            try:
                self.worker.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def stop_worker(self):
        if self.worker and self.worker.poll() is None:
            try:
                self.send({"cmd": "quit"})
                self.worker.stdin.close()
                self.worker.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill_worker()
        self.worker = None

    def daemon_dead(self):
        return self.daemon is not None and self.daemon.poll() is not None

    def umount(self):
        """Unmount; for the union, the daemon must exit with status 0."""
        self.stop_worker()
        if self.name == "ref":
            rc, out = run_cmd(["umount", self.mnt])
            if rc != 0:
                run_cmd(["umount", "-l", self.mnt])
                return "umount failed: %s" % out
            return None
        err = None
        if is_mounted(self.mnt):
            rc, out = run_cmd(["fusermount3", "-u", self.mnt])
            if rc != 0:
                err = "fusermount3 -u failed: %s" % out
                run_cmd(["fusermount3", "-uz", self.mnt])
        d = self.daemon
        self.daemon = None
        if d is not None:
            try:
                rc = d.wait(10)
                if rc != 0 and err is None:
                    err = "daemon exited with status %d after unmount: %s" % (
                        rc, self.logtail())
            except subprocess.TimeoutExpired:
                err = err or "daemon still running 10s after unmount"
                d.kill()
        return err


def cleanup_all():
    """Undo every mount, stop every process this run started (by the
    Popen objects we hold), remove the temp dirs: also on errors and
    signals."""
    for kind, m in reversed(LIVE["mounts"]):
        if is_mounted(m):
            if kind == "f":
                if run_cmd(["fusermount3", "-uz", m], 10)[0] != 0:
                    run_cmd(["umount", "-l", m], 10)
            else:
                run_cmd(["umount", "-l", m], 10)
    LIVE["mounts"].clear()
    for proc, _ in LIVE["procs"]:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(3)
                except subprocess.TimeoutExpired:
                    pass
    LIVE["procs"].clear()
    for d in LIVE["dirs"]:
        if mounted_under(d):
            print("# cleanup: something still mounted under %s, leaving it" % d)
        elif os.path.isdir(d):
            shutil.rmtree(d, ignore_errors=True)
    LIVE["dirs"].clear()


# ------------------------------------------------------------------ normalisation and comparison

def normalise_dump(side, d):
    """Turn raw st_ino into groups of names and apply the documented
    differences. Returns a new dict."""
    out = {}
    for path, r in d.items():
        if "ghost" in r:
            # DIFFERENCE (intended): kernel overlayfs lists the whiteouts
            # of a directory that is not merged (an upper-only, one-branch
            # or opaque directory: it reads the real directory) as char
            # devices, and lookup then fails; unionmount never lists
            # whiteouts (man unionmount.8, NAME RESOLUTION: "Listings
            # never show whiteouts"; tests/integration/README.md, "Where
            # DESIGN.md and kernel overlayfs differ on purpose"). Only on
            # the kernel side and only for a char device that is not
            # there: on the union side a listed name lstat cannot find is
            # always reported.
            if side == "ref" and r.get("ghost") == "c" and r.get("err") == "ENOENT":
                continue
        r = dict(r)
        if "dino" in r:
            # d_ino: unionmount must list every entry with the st_ino of
            # the object (DESIGN.md, readdir: fallthrus reported as the
            # object they point to), so a mismatch on the union side is
            # reported. Kernel overlayfs itself does not always agree
            # with itself (a hard link made through it into an upper-only
            # directory is listed with the upper inode number while
            # st_ino is the origin's): its d_ino is not the reference.
            if side == "ref" or r["dino"]:
                del r["dino"]
        out[path] = r
    # Inode numbers are not compared (man unionmount.8, DIFFERENCES FROM
    # OVERLAYFS: "Inode numbers follow INODE NUMBERS, not overlayfs's xino
    # scheme"); which names share an st_ino is.
    groups = {}
    for path, r in out.items():
        if "ino" in r:
            groups.setdefault(r["ino"], []).append(path)
    for path, r in out.items():
        if "ino" in r:
            g = [p for p in groups[r.pop("ino")] if p != path]
            if g:
                r["same_ino"] = ",".join(sorted(g))
        if r.get("t") == "d":
            # Directory st_nlink is not compared: both report 1 for a
            # directory they merge and the backing directory's count for
            # one they do not, but they do not agree on which directories
            # are merged (a lower directory copied up because of a child:
            # overlayfs the upper's count, the union 1; the other way
            # round elsewhere). Directory st_size is not even recorded
            # (Worker.dump): it is the backing directory's and grows with
            # the fallthrus the union writes into upper (man unionmount.8,
            # DIFFERENCES FROM OVERLAYFS). Directory mtimes are compared:
            # the union keeps them when it writes its markers (DIRECTORY
            # LISTINGS).
            r.pop("n", None)
    return out


def normalise_seekdir(side, res):
    # The intended difference of normalise_dump (kernel overlayfs lists
    # the whiteouts of a directory that is not merged: char devices that
    # lookup does not find), on the kernel side only.
    if not res.startswith("OK ") or side != "ref":
        return res
    names = [n for n in res[3:].split(",") if not n.endswith("!ghost/c")]
    return "OK " + ",".join(names)


def compare_dumps(a, b):
    """[(path, field, ref value, union value)]"""
    diffs = []
    for path in sorted(set(a) | set(b)):
        ra, rb = a.get(path), b.get(path)
        if ra is None or rb is None:
            diffs.append((path, "presence", "present" if ra else "absent",
                          "present" if rb else "absent"))
            continue
        for k in sorted(set(ra) | set(rb)):
            if ra.get(k) != rb.get(k):
                diffs.append((path, k, ra.get(k), rb.get(k)))
    return diffs


def fmt_diffs(diffs, limit=12):
    lines = ["    %s: %s: overlayfs %r, unionmount %r" % d for d in diffs[:limit]]
    if len(diffs) > limit:
        lines.append("    ... %d more" % (len(diffs) - limit))
    return "\n".join(lines)


# ------------------------------------------------------------------ random operations

class Gen:
    """Random operations, chosen against the tree the kernel side shows."""

    WEIGHTS = [("create", 8), ("mkdir", 6), ("symlink", 3), ("mknod", 1),
               ("write", 8), ("append", 3), ("otrunc", 3), ("truncate", 4),
               ("ftruncate", 1), ("fallocate", 1), ("copy_file_range", 1),
               ("chmod", 5), ("chown", 3), ("utimens", 4), ("setxattr", 5),
               ("removexattr", 2), ("fchmod-ro", 1), ("fchown-ro", 1),
               ("futimens-ro", 1), ("fsetxattr-ro", 1), ("fremovexattr-ro", 1),
               ("link", 6), ("unlink", 7), ("rmdir", 5), ("rename", 14),
               ("seekdir", 3), ("remount", 1.2), ("hold", 2), ("hread", 1.5),
               ("hwrite", 1), ("hfstat", 1.5), ("hfchmod", 0.5), ("hclose", 1),
               ("dopen", 1.5), ("dread", 2), ("dclose", 1.2)]

    def __init__(self, rng, weights=None):
        self.rng = rng
        weights = dict(weights or {})
        self.user_weights = dict(weights)
        self.as_user = weights.pop("as", 0.15)
        w = dict(self.WEIGHTS)
        w.update(weights or {})
        self.ops = [o for o, _ in self.WEIGHTS]
        self.w = [w[o] for o in self.ops]

    def setstate(self, dump):
        self.paths = sorted(p for p, r in dump.items() if p != "." and "t" in r)
        self.dirs = ["."] + [p for p in self.paths if dump[p]["t"] == "d"]
        self.nondirs = [p for p in self.paths if dump[p]["t"] != "d"]
        self.files = [p for p in self.paths if dump[p]["t"] == "f"]
        self.symlinks = [p for p in self.paths if dump[p]["t"] == "l"]

    def new(self):
        r = self.rng
        if r.random() < 0.04 and self.symlinks:
            # through a symlink (relative targets: it stays in the union)
            return join(r.choice(self.symlinks), r.choice(NEWNAMES))
        if r.random() < 0.03 and self.nondirs:
            return join(r.choice(self.nondirs), "z")  # ENOTDIR
        if r.random() < 0.03:
            return join(join(r.choice(self.dirs), "nodir"), "y")  # ENOENT
        return join(r.choice(self.dirs), r.choice(NEWNAMES))

    def any(self):
        r = self.rng
        if self.paths and r.random() < 0.85:
            return r.choice(self.paths)
        return self.new()

    def pick(self, lst, p=0.85):
        if lst and self.rng.random() < p:
            return self.rng.choice(lst)
        return self.any()

    def data(self):
        r = self.rng
        return r.choice("ABCDEFGHXYZ") * r.choice([1, 3, 10, 30, 64])

    def tstamp(self):
        return self.rng.choice(["now", "omit", "1100000000.5", "1200000000",
                                "1234567890.123456789", "1300000000.000000001"])

    AS_USERS = [1000, 65534]

    def next(self):
        op = self.next_op()
        if self.rng.random() < self.as_user and op[0] not in STATEFUL:
            # run by an unprivileged user
            op = ["as", str(self.rng.choice(self.AS_USERS))] + op
        return op

    def next_op(self):
        r = self.rng
        op = r.choices(self.ops, self.w)[0]
        if op == "create":
            return [op, self.new() if r.random() < 0.8 else self.any(),
                    r.choice(["0644", "0600", "0755", "04755", "0640"])]
        if op == "mkdir":
            return [op, self.new() if r.random() < 0.85 else self.any(),
                    r.choice(["0755", "0700", "02775", "01777", "0750"])]
        if op == "symlink":
            return [op, r.choice(NEWNAMES[:8] + ["g/h", "a/g", "nowhere"]),
                    self.new() if r.random() < 0.85 else self.any()]
        if op == "mknod":
            return [op, self.new(), "fifo", "0644"]
        if op in ("write",):
            return [op, self.pick(self.files),
                    str(r.choice([0, 0, 1, 7, 100, 4096, 70000])), self.data()]
        if op in ("append", "otrunc"):
            return [op, self.pick(self.files), self.data()]
        if op in ("truncate", "ftruncate"):
            return [op, self.pick(self.files),
                    str(r.choice([0, 1, 5, 100, 5000, 70000]))]
        if op == "fallocate":
            return [op, self.pick(self.files), r.choice(list(FALLOC_MODES)),
                    str(r.choice([0, 10, 4096])), str(r.choice([1, 100, 8192]))]
        if op == "copy_file_range":
            return [op, self.pick(self.files),
                    self.pick(self.files, 0.5) if r.random() < 0.7 else self.new(),
                    str(r.choice([5, 100, 100000]))]
        if op in ("chmod", "fchmod-ro"):
            return [op, self.any(),
                    r.choice(["0644", "0600", "0755", "0700", "04755", "02755",
                              "01777", "0000", "0444"])]
        if op in ("chown", "fchown-ro"):
            u, g = r.choice([(1000, 1000), (65534, 65534), (0, 0),
                             (1000, -1), (-1, 65534)])
            return [op, self.any(), str(u), str(g)]
        if op in ("utimens", "futimens-ro"):
            return [op, self.any(), self.tstamp(), self.tstamp()]
        if op in ("setxattr", "fsetxattr-ro"):
            a = [op, self.any(), r.choice(XNAMES), r.choice(XVALUES)]
            if op == "setxattr" and r.random() < 0.3:
                a.append(r.choice(["create", "replace"]))
            return a
        if op in ("removexattr", "fremovexattr-ro"):
            return [op, self.any(), r.choice(XNAMES)]
        if op == "link":
            return [op, self.pick(self.nondirs),
                    self.new() if r.random() < 0.8 else self.any()]
        if op == "unlink":
            return [op, self.pick(self.nondirs, 0.8)]
        if op == "rmdir":
            return [op, self.pick(self.dirs[1:], 0.85)]
        if op == "rename":
            src = self.any()
            x = r.random()
            if x < 0.45:
                dst = self.new()
            elif x < 0.8:
                same = self.dirs[1:] if src in self.dirs else self.nondirs
                dst = self.pick(same, 0.9)
            else:
                dst = self.any()
            a = [op, src, dst]
            f = r.random()
            if f < 0.15:
                a.append("noreplace")
            elif f < 0.3:
                a.append("exchange")
            return a
        if op == "seekdir":
            return [op, r.choice(self.dirs), str(r.randrange(1000))]
        if op == "remount":
            return [op]
        if op == "hold":
            return [op, r.choice("01"), self.pick(self.files, 0.9),
                    r.choice(["ro", "ro", "rw"])]
        if op == "hwrite":
            return [op, r.choice("01"), str(r.choice([0, 3, 200])), self.data()]
        if op == "hfchmod":
            return [op, r.choice("01"), r.choice(["0600", "0755", "0444"])]
        if op in ("hread", "hfstat", "hclose", "dclose"):
            return [op, r.choice("01")]
        if op == "dopen":
            return [op, r.choice("01"), r.choice(self.dirs)]
        if op == "dread":
            return [op, r.choice("01"), str(r.choice([1, 2, 3, 8]))]
        raise AssertionError(op)


# The kernel-only prefix (kernel_prefix): no stateful operations, and no
# hard links: kernel overlayfs ties the names of a copied-up lower hard
# link together through its own index in its workdir, which the union
# never sees (man unionmount.8, DIFFERENCES FROM OVERLAYFS: a kernel
# work directory "is refused; give unionmount an empty one. The upper
# directory itself is shared"). Trees of prefix runs have no lower hard
# links either (gen_tree hardlinks=False).
PREFIX_WEIGHTS = dict([(o, 0) for o in STATEFUL] + [("link", 0), ("as", 0.1)])

# ------------------------------------------------------------------ one case

class Config:
    def __init__(self, args):
        self.unionmount = args.unionmount
        self.tmp = args.tmp
        self.keep = args.keep
        self.op_timeout = args.op_timeout
        self.selftest = args.selftest
        self.inject = args.inject
        self.union_opts = args.union_opts
        self.pre_weights = {}


class Case:
    """What a run replays: the lower tree, the operations run on kernel
    overlayfs alone before the union is mounted over a copy of the upper
    it wrote (pre), the differential operations (ops), and the union's
    fallthru option."""

    def __init__(self, tree, ops, pre=(), fallthru="on", seed="-"):
        self.tree, self.ops, self.pre = list(tree), list(ops), list(pre)
        self.fallthru, self.seed = fallthru, seed

    def but(self, **kw):
        c = Case(self.tree, self.ops, self.pre, self.fallthru, self.seed)
        for k, v in kw.items():
            setattr(c, k, list(v))
        return c


def children(state, d):
    return {p.rsplit("/", 1)[-1] for p, r in state.items()
            if p != "." and parent(p) == d and "t" in r}


def through_symlink(p, state):
    parts = p.split("/")
    for i in range(1, len(parts)):
        r = state.get("/".join(parts[:i]))
        if r is not None and r.get("t") == "l":
            return True
    return False


class OpenDirs:
    """The driver's view of the directory handles kept open by dopen:
    the names of the directory when it was opened, and the names that
    operations since then added or removed. At dclose each side's
    listing is judged on its own (check): every name there from open to
    close and not touched meanwhile must be listed exactly once, nothing
    else but touched names may be listed, '.' and '..' once each. POSIX
    leaves names added or removed during a listing open, so only those
    are exempt; copy-ups (a fallthru replaced by the real entry in the
    union's upper directory) are not."""

    def __init__(self):
        self.slots = {}

    def before(self, op, state):
        a = op[2:] if op[0] == "as" else op
        if a[0] == "remount":
            self.slots.clear()
            return
        for i in NAMESPACE.get(a[0], ()):
            if i >= len(a):
                continue
            p = a[i]
            if through_symlink(p, state):
                for sl in self.slots.values():
                    sl["invalid"] = True
                continue
            for sl in self.slots.values():
                if parent(p) == sl["d"]:
                    sl["touched"].add(p.rsplit("/", 1)[-1])
                if sl["d"] == p or sl["d"].startswith(p + "/"):
                    sl["invalid"] = True

    def opened(self, slot, d, state, answer):
        if answer == "OK":
            self.slots[slot] = {"d": d, "open": children(state, d),
                                "touched": set(), "invalid": False}
        else:
            self.slots.pop(slot, None)

    def check(self, kind, slot, answer, state):
        if not answer.startswith("OK LIST"):
            return answer
        sl = self.slots.get(slot)
        if sl is None or sl["invalid"]:
            return "OK unchecked"
        body = answer[len("OK LIST "):]
        ents = [e.rsplit("/", 1) for e in body.split("\0")] if body else []
        opn, cls, touched = sl["open"], children(state, sl["d"]), sl["touched"]
        listed = []
        for n, dt in ents:
            if n in (".", ".."):
                continue
            # The kernel lists the whiteouts of a non-merged directory
            # (the intended difference of normalise_dump).
            if kind == "ref" and dt == "c" and n not in opn | cls:
                continue
            listed.append(n)
        bad = []
        names = [n for n, _ in ents]
        if names.count(".") != 1 or names.count("..") != 1:
            bad.append("dots=%d,%d" % (names.count("."), names.count("..")))
        missing = sorted((opn & cls) - touched - set(listed))
        dup = sorted({n for n in listed if listed.count(n) > 1} - touched)
        extra = sorted(set(listed) - opn - cls - touched)
        for what, v in (("missing", missing), ("dup", dup), ("extra", extra)):
            if v:
                bad.append("%s=%s" % (what, ",".join(v)))
        return "BAD " + ";".join(bad) if bad else "OK"

    def closed(self, slot):
        self.slots.pop(slot, None)


def run_case(cfg, case, gen=None, nops=0, npre=0, trace=None):
    """Build both sides from case.tree; run case.pre (or npre generated
    operations) on kernel overlayfs alone and give the union a copy of
    the upper it wrote; mount both; run case.ops (or nops generated ones,
    when gen is given), comparing answers and trees after each. Returns
    (failure or None, the Case actually run, steps run)."""
    base = tempfile.mkdtemp(prefix="umdiff.", dir=cfg.tmp)
    LIVE["dirs"].append(base)
    os.chmod(base, 0o755)
    t0 = int(time.time())
    sides = []
    run = Case(case.tree, [], [], case.fallthru, case.seed)
    failure = None
    step = 0
    try:
        for name in ("ref", "un"):
            sb = os.path.join(base, name)
            for d in ("l1", "l2", "l3", "u", "w", "mnt"):
                os.makedirs(os.path.join(sb, d))
            build_tree(sb, case.tree)
            sides.append(Side(name, sb, cfg, t0, case.fallthru))
        ref, un = sides
        before = {(s.name, l): snapshot(os.path.join(s.base, l))
                  for s in sides for l in ("l1", "l2", "l3")}

        if case.pre or npre:
            kernel_prefix(cfg, ref, un, case, run, gen, npre, trace)

        for s in sides:
            err = s.mount()
            if err:
                return Failure(0, "mount", "mount", "%s: %s" % (s.name, err)), run, 0

        def both(msg, timeout, what):
            """Both answers; the kernel side timing out is the machine's
            problem, the union's is a failure (None then)."""
            for s in sides:
                s.send(msg)
            res = [s.recv(timeout) for s in sides]
            if "timeout" in res[0]:
                raise Harness("kernel overlayfs did not answer %s in %ds" % (what, timeout))
            return None if "timeout" in res[1] else res

        def timed_out(step, what, timeout):
            return Failure(step, "timeout", what.split()[0],
                           "%s: unionmount did not answer in %ds" % (what, timeout))

        # DIFFERENCE (documented, man unionmount.8 DIFFERENCES): kernel
        # overlayfs may set the mtime of the moved directory's parent
        # in a rename that then fails (ENOTEMPTY), where a failed call
        # changes nothing in the union. Path -> the mtime the union kept.
        mt_kept = {}

        def check_tree(step, prev=None, failed_rename=False):
            res = both({"cmd": "dump"}, cfg.op_timeout * 3, "the tree dump")
            if res is None:
                return None, timed_out(step, "dump", cfg.op_timeout * 3)
            da = normalise_dump("ref", res[0]["dump"])
            # In --selftest the union side is kernel overlayfs as well.
            db = normalise_dump(unkind, res[1]["dump"])
            diffs = compare_dumps(da, db)
            if failed_rename and prev:
                for path, k, va, vb in diffs:
                    if (k == "mt" and va == "recent" and path in prev and
                            prev[path].get("mt") == vb and da[path].get("t") == "d"):
                        mt_kept[path] = vb
            diffs = [d for d in diffs
                     if not (d[1] == "mt" and d[2] == "recent" and mt_kept.get(d[0]) == d[3])]
            if diffs:
                return da, Failure(step, "tree", tuple(sorted({k for _, k, _, _ in diffs})),
                                   "visible trees differ after %s:\n%s" % (
                                       "step %d" % step if step else "mounting",
                                       fmt_diffs(diffs)))
            return da, None

        unkind = "ref" if cfg.selftest else "un"
        dirs = OpenDirs()
        state, failure = check_tree(0)
        if failure:
            return failure, run, 0
        total = len(case.ops) if gen is None else nops
        for i in range(total):
            step = i + 1
            if gen is None:
                op = case.ops[i]
            else:
                gen.setstate(state)
                op = gen.next()
            run.ops.append(op)
            inner = op[2:] if op[0] == "as" else op
            accepted = None
            dirs.before(op, state)
            if op[0] == "remount":
                # The kept descriptors and handles are closed first (or
                # the unmount would be refused); a hang there is the
                # union's.
                if both({"cmd": "drop"}, cfg.op_timeout, "closing kept handles") is None:
                    failure = timed_out(step, "remount (closing kept handles)",
                                        cfg.op_timeout)
                    break
                errs = [s.umount() for s in sides]
                if errs[0]:
                    raise Harness("kernel side: " + errs[0])
                if errs[1]:
                    failure = Failure(step, "umount", "umount", "unmount of the union: " + errs[1])
                    break
                for s in sides:
                    err = s.mount()
                    if err:
                        if s.name == "ref":
                            raise Harness("kernel side remount: " + err)
                        failure = Failure(step, "mount", "mount", "remount of the union: " + err)
                        break
                if failure:
                    break
                ra = rb = "OK"
            else:
                res = both({"cmd": "op", "op": op}, cfg.op_timeout, shlex.join(op))
                if res is None:
                    failure = timed_out(step, shlex.join(inner), cfg.op_timeout)
                    break
                ra, rb = res[0]["r"], res[1]["r"]
                if inner[0] == "seekdir":
                    ra = normalise_seekdir("ref", ra)
                    rb = normalise_seekdir(unkind, rb)
                elif op[0] == "dopen":
                    dirs.opened(op[1], op[2], state, ra)
                elif op[0] == "dclose":
                    ra = dirs.check("ref", op[1], ra, state)
                    rb = dirs.check(unkind, op[1], rb, state)
                    dirs.closed(op[1])
                elif op[0] == "hfchmod" and (ra, rb) == ("EEXIST nameless",
                                                         "ENOENT nameless"):
                    # DIFFERENCE (documented, man unionmount.8 CURRENT
                    # LIMITS): a lower file that lost its last name while
                    # open cannot be copied up; both refuse, with another
                    # errno. Only when neither side shows a name of it.
                    accepted, rb = rb, ra
            if trace:
                trace("%4d %-60s %s%s" % (
                    step, shlex.join(op), ra,
                    "   <> union: " + rb if ra != rb else
                    "   (union: %s, accepted)" % accepted if accepted else ""))
            if un.daemon_dead():
                failure = Failure(step, "crash", "crash",
                                  "%s: the union daemon died (status %s): %s" % (
                                      shlex.join(op), un.daemon.returncode, un.logtail()))
                break
            if ra != rb:
                failure = Failure(step, "answer", inner[0],
                                  "%s: overlayfs answered %r, unionmount %r" % (
                                      shlex.join(op), ra, rb))
                break
            state, failure = check_tree(step, state, inner[0] == "rename" and ra != "OK")
            if failure:
                break
        # Unmount both; the union daemon must exit cleanly, must leave
        # nothing in its work dir, and no lower branch may have changed.
        if failure is None:
            errs = [s.umount() for s in sides]
            if errs[1]:
                failure = Failure(step, "umount", "umount", "final unmount of the union: " + errs[1])
            if errs[0]:
                raise Harness("kernel side: " + errs[0])
        if failure is None and not cfg.selftest:
            left = os.path.join(un.base, "w", "unionmount", "work")
            if os.path.isdir(left) and os.listdir(left):
                failure = Failure(step, "workdir", "workdir",
                                  "workdir/unionmount/work not empty after unmount: %s"
                                  % sorted(os.listdir(left))[:5])
        if failure is None:
            for s in sides:
                for l in ("l1", "l2", "l3"):
                    if snapshot(os.path.join(s.base, l)) != before[(s.name, l)]:
                        if s.name == "ref":
                            raise Harness("kernel overlayfs changed lower %s" % l)
                        failure = Failure(step, "lower", "lower",
                                          "lower branch %s was modified" % l)
        return failure, run, step
    finally:
        # After a signal, straight to cleanup_all (lazy unmounts, then
        # SIGTERM): the orderly way can wait on a hung union for a minute.
        if not STOPPING:
            for s in sides:
                s.stop_worker()
            for s in sides:
                if is_mounted(s.mnt):
                    s.umount()
        if failure is not None and cfg.keep:
            print("# kept %s" % base)
            LIVE["dirs"].remove(base)
        # Everything in LIVE belongs to this case (cases run one at a time).
        cleanup_all()


def kernel_prefix(cfg, ref, un, case, run, gen, npre, trace):
    """Kernel overlayfs alone writes the upper first (case.pre, or npre
    generated operations); the union side then starts from a copy of
    that upper (cp -a: whiteouts, opaque dirs, redirects, origins) and an
    empty workdir. DESIGN.md: "An upper dir written by kernel overlayfs
    (whiteouts + opaque dirs) must mount correctly"; man unionmount.8,
    ON-DISK FORMAT: such an upper (redirects too) "mounts correctly"."""
    err = ref.mount()
    if err:
        raise Harness("kernel side: " + err)
    n = len(case.pre) if gen is None else npre
    pgen = Gen(gen.rng, dict(gen.user_weights, **PREFIX_WEIGHTS, **cfg.pre_weights)) \
        if gen is not None else None
    for i in range(n):
        if pgen is not None:
            ref.send({"cmd": "dump"})
            d = ref.recv(cfg.op_timeout * 3)
            if "timeout" in d:
                raise Harness("kernel overlayfs dump timed out")
            pgen.setstate(normalise_dump("ref", d["dump"]))
            op = pgen.next()
        else:
            op = case.pre[i]
        run.pre.append(op)
        ref.send({"cmd": "op", "op": op})
        r = ref.recv(cfg.op_timeout)
        if "timeout" in r:
            raise Harness("kernel overlayfs timed out on %s" % shlex.join(op))
        if trace:
            trace("pre %-60s %s" % (shlex.join(op), r["r"]))
    e = ref.umount()
    if e:
        raise Harness("kernel side: " + e)
    rc, out = run_cmd(["cp", "-a", os.path.join(ref.base, "u") + "/.",
                       os.path.join(un.base, "u")], 60)
    if rc != 0:
        raise Harness("cannot copy the kernel's upper: " + out)
    un.copied_upper = True


# ------------------------------------------------------------------ shrinking

def ddmin(items, test, deadline):
    """Zeller's delta debugging: a 1-minimal sublist of items for which
    test() holds (as far as the deadline allows)."""
    n = 2
    while len(items) >= 2 and time.monotonic() < deadline:
        chunk = -(-len(items) // n)
        subsets = [items[i:i + chunk] for i in range(0, len(items), chunk)]
        done = False
        for s in subsets:
            if time.monotonic() >= deadline:
                return items
            if len(s) < len(items) and test(s):
                items, n, done = s, 2, True
                break
        if not done:
            for i in range(len(subsets)):
                if time.monotonic() >= deadline:
                    return items
                comp = [x for j, s in enumerate(subsets) if j != i for x in s]
                if test(comp):
                    items, n, done = comp, max(n - 1, 2), True
                    break
        if not done:
            if n >= len(items):
                break
            n = min(len(items), 2 * n)
    return items


def shrink(cfg, case, failure, budget, log):
    """The shortest case that still fails the same way (Failure.same):
    delta debugging over the operations, the kernel-only prefix and the
    tree, each replay on fresh branches, within budget seconds."""
    deadline = time.monotonic() + budget
    case = case.but(ops=case.ops[:failure.step])
    runs = [0]
    best = [failure]

    def fails(c):
        runs[0] += 1
        try:
            f, _, _ = run_case(cfg, c)
        except Harness as e:
            # A candidate that trips up the kernel side reproduces nothing;
            # the failure being shrunk is reported all the same.
            log("# a candidate was rejected: %s" % e)
            return False
        if f is not None and failure.same(f):
            best[0] = f
            return True
        return False

    if not fails(case):
        log("# the failure did not reproduce on fresh branches: not shrunk")
        return case, failure, False
    for rnd in range(2):
        n0 = (len(case.ops), len(case.pre), len(case.tree))
        case = case.but(ops=ddmin(case.ops, lambda o: fails(case.but(ops=o)), deadline))
        if case.pre:
            case = case.but(pre=ddmin(case.pre, lambda p: fails(case.but(pre=p)), deadline))
        case = case.but(tree=ddmin(case.tree, lambda t: fails(case.but(tree=t)), deadline))
        log("# round %d: %d operations, %d prefix operations, %d tree entries (%d replays)"
            % (rnd + 1, len(case.ops), len(case.pre), len(case.tree), runs[0]))
        if (len(case.ops), len(case.pre), len(case.tree)) == n0:
            break
    complete = time.monotonic() < deadline
    ok = fails(case)   # confirm, and take the final failure's description
    return case, best[0], complete and ok


# ------------------------------------------------------------------ replay files and output

def format_case(case, failure=None):
    lines = ["# difftest replay file (tests/difftest/difftest.py --replay FILE)",
             "seed %s" % case.seed, "fallthru %s" % case.fallthru]
    if failure is not None:
        for l in str(failure).splitlines():
            lines.append("# " + l)
    lines += ["tree " + shlex.join(e) for e in case.tree]
    lines += ["pre " + shlex.join(o) for o in case.pre]
    lines += ["op " + shlex.join(o) for o in case.ops]
    return "\n".join(lines) + "\n"


def parse_case(text):
    c = Case([], [])
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kw, _, rest = line.partition(" ")
        if kw == "seed":
            c.seed = rest
        elif kw == "fallthru":
            c.fallthru = rest
        elif kw == "tree":
            c.tree.append(shlex.split(rest))
        elif kw == "pre":
            c.pre.append(shlex.split(rest))
        elif kw == "op":
            c.ops.append(shlex.split(rest))
        else:
            raise ValueError("bad replay line: %r" % line)
    return c


def parse_list(s):
    return [shlex.split(x) for x in s.split(";") if x.strip()]


def cmdline(case):
    j = lambda l: shlex.quote("; ".join(shlex.join(x) for x in l))
    return "%s --fallthru %s --tree %s%s --ops %s" % (
        os.path.relpath(os.path.abspath(__file__)), case.fallthru, j(case.tree),
        " --pre %s" % j(case.pre) if case.pre else "", j(case.ops))


def emit_shell(case):
    """A shell script that builds both sides and runs the operations with
    the integration helpers (fsop, seekdir): for writing a finding up."""
    S = ["#!/bin/bash", "# generated by difftest.py --emit-shell",
         "# needs UNIONMOUNT, FSOP (tests/integration/fsop), SEEKDIR (tests/integration/seekdir)",
         "set -u", "T=$(mktemp -d /tmp/umrepro.XXXXXX)",
         "for s in ref un; do mkdir -p $T/$s/{l1,l2,l3,u,w,mnt}; done",
         "build() { local r=$1"]
    for e in case.tree:
        e = full_entry(e)
        k, L, p = e[0], e[1], e[2]
        q = shlex.quote("%s/%s" % (L, p))
        S.append("\tmkdir -p \"$r\"/$(dirname %s)" % q)
        if k == "dir":
            S.append("\tmkdir -p \"$r\"/%s; chown %s:%s \"$r\"/%s; chmod %s \"$r\"/%s" % (
                q, e[4], e[5], q, e[3], q))
        elif k == "opq":
            S.append("\tmkdir -p \"$r\"/%s; setfattr -n trusted.overlay.opaque -v y \"$r\"/%s" % (q, q))
        elif k == "file":
            S.append("\t: > \"$r\"/%s" % q)
            for off, data in lower_content(L, p, int(e[6])):
                S.append("\tprintf %%s %s | dd of=\"$r\"/%s bs=1 seek=%d conv=notrunc status=none" % (
                    shlex.quote(data.decode()), q, off))
            S.append("\ttruncate -s %s \"$r\"/%s; chown %s:%s \"$r\"/%s; chmod %s \"$r\"/%s" % (
                e[6], q, e[4], e[5], q, e[3], q))
        elif k == "sym":
            S.append("\tln -s %s \"$r\"/%s" % (shlex.quote(e[3]), q))
        elif k == "hl":
            S.append("\tln \"$r\"/%s \"$r\"/%s" % (shlex.quote("%s/%s" % (L, e[3])), q))
        elif k == "wh":
            S.append("\tmknod \"$r\"/%s c 0 0" % q)
        elif k == "fifo":
            S.append("\tmkfifo -m %s \"$r\"/%s" % (e[3], q))
        elif k == "xa":
            S.append("\tsetfattr -h -n %s -v %s \"$r\"/%s" % (e[3], shlex.quote(e[4]), q))
    S.append("\t:; }")
    S.append("build $T/ref; build $T/un")
    S.append("lo() { echo lowerdir=$T/$1/l1:$T/$1/l2:$T/$1/l3,upperdir=$T/$1/u,workdir=$T/$1/w; }")
    kmount = "mount -t overlay overlay -o \"$(lo ref),redirect_dir=on,index=on,xino=on\" $T/ref/mnt"
    umount = ("\"$UNIONMOUNT\" $T/un/mnt -o \"$(lo un),fallthru=%s\" -f & "
              "while ! grep -q \" $T/un/mnt fuse.unionmount \" /proc/mounts; do sleep 0.05; done"
              % case.fallthru)

    def shell_op(o, each):
        if o[0] == "as":
            return shell_op(o[2:], each + " setpriv --reuid=%s --regid=%s --clear-groups" % (o[1], o[1]))
        if o[0] == "seekdir":
            return "%s \"$SEEKDIR\" %s" % (each, shlex.quote(o[1]))
        if o[0] == "otrunc":
            return ("%s python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY|os.O_TRUNC); "
                    "os.write(fd, sys.argv[2].encode())' %s" % (each, shlex.join(o[1:])))
        if o[0] in STATEFUL:
            return "# %s (a descriptor kept across operations: replay with difftest.py)" % shlex.join(o)
        return "%s \"$FSOP\" %s" % (each, shlex.join(o))

    if case.pre:
        S.append("# kernel overlayfs alone writes the upper first; the union gets a copy")
        S.append(kmount)
        for o in case.pre:
            S.append(shell_op(o, "(cd $T/ref/mnt &&") + ")")
        S.append("umount $T/ref/mnt; cp -a $T/ref/u/. $T/un/u/")
    S.append(kmount)
    S.append(umount)
    S.append("each() { for s in ref un; do printf '%-4s ' $s; (cd $T/$s/mnt && \"$@\"); done; }")
    for o in case.ops:
        if o[0] == "remount":
            S.append("umount $T/ref/mnt; fusermount3 -u $T/un/mnt; sleep 0.3")
            S.append(kmount)
            S.append(umount)
        else:
            S.append(shell_op(o, "each"))
    S.append("echo \"# compare: diff <(cd $T/ref/mnt && find . -printf '%p %y %m %u:%g %s %n\\n' | sort) "
             "<(cd $T/un/mnt && find . -printf '%p %y %m %u:%g %s %n\\n' | sort)\"")
    S.append("echo \"# when done: umount $T/ref/mnt; fusermount3 -u $T/un/mnt; rm -rf $T\"")
    return "\n".join(S) + "\n"


# ------------------------------------------------------------------ main

# CI mode: these seeds (fallthru on for even, off for odd ones; every third
# with a kernel-written upper), CI_NOPS operations each, then every replay
# file in cases/ (reproductions of divergences found: regression tests).
CI_SEEDS = list(range(1, 13))
CI_NOPS = 200
CASES_DIR = os.path.join(HERE, "cases")


def preflight(args):
    if os.geteuid() != 0:
        print("SKIP difftest: needs root")
        sys.exit(77)
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        print("SKIP difftest: needs /dev/fuse and fusermount3")
        sys.exit(77)
    with open("/proc/filesystems") as f:
        have = "overlay" in f.read().split()
    if not have:
        subprocess.run(["modprobe", "overlay"], capture_output=True)
        with open("/proc/filesystems") as f:
            have = "overlay" in f.read().split()
    if not have:
        print("SKIP difftest: kernel overlayfs (the oracle) not available")
        sys.exit(77)
    if not args.selftest and (not args.unionmount or not os.access(args.unionmount, os.X_OK)):
        print("ERROR difftest: UNIONMOUNT=%r is not an executable (set UNIONMOUNT or --unionmount)"
              % args.unionmount)
        sys.exit(99)


def short_sig(f):
    """A one-line class of a failure, for the summary of a long run."""
    if f.kind == "answer":
        m = f.detail.split(": overlayfs answered ", 1)
        op = m[0].split()
        op = op[2:] if op and op[0] == "as" else op
        ra, _, rb = (m[1] if len(m) > 1 else "").partition(", unionmount ")
        ra, rb = ra.strip("'").split(" ")[0], rb.strip("'").split(" ")[0]
        return "answer %s: overlayfs %s, unionmount %s%s" % (
            op[0] if op else "?", ra, rb, " (values differ)" if ra == rb else "")
    if f.kind == "tree":
        return "tree: fields %s" % ",".join(f.key)
    return f.kind


SHRINK_USED = [0.0]   # seconds of the --shrink-time budget spent so far


def report_failure(cfg, args, case, failure, out, shrink_it=True):
    out("FAIL seed %s (fallthru=%s%s), %s" % (
        case.seed, case.fallthru,
        ", %d kernel-only operations first" % len(case.pre) if case.pre else "", failure))
    budget = args.shrink_time - SHRINK_USED[0]
    if shrink_it and not args.no_shrink and budget < 5:
        out("# not shrunk: the --shrink-time budget (%ds for the whole run) is used up"
            % args.shrink_time)
    elif shrink_it and not args.no_shrink:
        out("# shrinking (replaying on fresh branches, budget %ds)..." % budget)
        t = time.monotonic()
        case, failure, minimal = shrink(cfg, case, failure, budget, out)
        SHRINK_USED[0] += time.monotonic() - t
        out("# %s reproduction: %d tree entries, %d prefix operations, %d operations" % (
            "1-minimal" if minimal else "shrunk (not proven minimal)", len(case.tree),
            len(case.pre), len(case.ops)))
        out("# it fails with: %s" % failure)
    text = format_case(case, failure)
    path = None
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "difftest-%s-%d.replay" % (case.seed, int(time.time() * 1000)))
        with open(path, "w") as f:
            f.write(text)
    out("# replay file%s:" % ((" " + path) if path else ""))
    for line in text.splitlines():
        out("  | " + line)
    out("# replay with:")
    more = " --union-opts %s" % shlex.quote(cfg.union_opts) if cfg.union_opts else ""
    if path:
        out("  %s --replay %s%s" % (os.path.relpath(os.path.abspath(__file__)), path, more))
    out("  " + cmdline(case) + more)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", nargs=2, metavar=("ROOT", "T0"), help=argparse.SUPPRESS)
    ap.add_argument("--ci", action="store_true",
                    help="the fixed CI seeds, then the replay files in cases/")
    ap.add_argument("--no-cases", action="store_true", help="--ci without cases/")
    ap.add_argument("--time", type=float, help="run random seeds for SECONDS")
    ap.add_argument("--seed", type=int, help="one seed")
    ap.add_argument("--first-seed", type=int, help="--time: start here (default: random)")
    ap.add_argument("--nops", type=int, help="operations per seed (CI %d, else 300)" % CI_NOPS)
    ap.add_argument("--ovl-upper", default="auto",
                    help="N: kernel overlayfs alone runs N operations first and the union "
                    "starts from a copy of its upper (auto: 40 for every third seed)")
    ap.add_argument("--no-lower-hardlinks", action="store_true",
                    help="random trees without hard links in the lower branches")
    ap.add_argument("--fallthru", choices=["on", "off", "auto"], default="auto",
                    help="union fallthru option (auto: on for even seeds, off for odd)")
    ap.add_argument("--replay", help="replay a case file")
    ap.add_argument("--tree", help="tree entries, ';'-separated (with --ops)")
    ap.add_argument("--pre", help="kernel-only operations, ';'-separated (with --ops)")
    ap.add_argument("--ops", help="operations, ';'-separated")
    ap.add_argument("--emit-shell", metavar="FILE", help="print FILE (a replay file) as a shell script")
    ap.add_argument("--unionmount", default=os.environ.get("UNIONMOUNT"))
    ap.add_argument("--union-opts", default=os.environ.get("UM_DIFFTEST_OPTS", ""),
                    help="more -o options for the union (or $UM_DIFFTEST_OPTS), e.g. readdirplus=never")
    ap.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"))
    # t_difftest.sh: --tmp is its own temp dir, removed here at the end
    # as well, in case the shell was killed before its trap could.
    ap.add_argument("--tmp-owned", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help="directory for replay files of failures")
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--shrink-time", type=int, default=600,
                    help="seconds of shrinking for the whole run (default 600)")
    ap.add_argument("--weights", help="OP=W,...: change how often operations are chosen "
                    "(0 never; the defaults are in Gen.WEIGHTS; 'as' is the share run "
                    "by another user, 0.15)")
    ap.add_argument("--pre-weights", help="OP=W,...: the same for the kernel-only operations")
    ap.add_argument("--keep-going", action="store_true",
                    help="continue after a failure (always in --ci)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir of a failing case")
    ap.add_argument("--op-timeout", type=int, default=20)
    ap.add_argument("-v", "--verbose", action="store_true", help="print every operation")
    ap.add_argument("--selftest", action="store_true",
                    help="mount kernel overlayfs on the union side too: any difference is a tester bug")
    ap.add_argument("--inject", help=argparse.SUPPRESS)  # tester self-check: OP on the union side lies
    args = ap.parse_args()

    if args.worker:
        return worker_main(*args.worker, inject=args.inject)
    if args.emit_shell:
        with open(args.emit_shell) as f:
            sys.stdout.write(emit_shell(parse_case(f.read())))
        return 0

    preflight(args)
    args.unionmount = os.path.abspath(args.unionmount or "/nonexistent")
    if args.tmp:
        args.tmp = os.path.abspath(args.tmp)

    def on_signal(signum, frame):
        # The first signal unwinds to the cleanup in the finally clauses;
        # later ones (t_difftest.sh's trap, timeout's) must not cut that
        # cleanup short.
        global STOPPING
        if not STOPPING:
            STOPPING = True
            raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    def out(msg):
        print(msg, flush=True)
    cfg = Config(args)
    trace = out if args.verbose else None

    def ft_for(seed):
        if args.fallthru != "auto":
            return args.fallthru
        return "on" if int(seed) % 2 == 0 else "off"

    def npre_for(seed):
        if args.ovl_upper == "auto":
            return 40 if int(seed) % 3 == 0 else 0
        return int(args.ovl_upper)

    def parse_weights(spec, opt):
        w = {}
        for item in (spec or "").split(","):
            if item.strip():
                op, _, v = item.partition("=")
                if op not in dict(Gen.WEIGHTS) and op != "as":
                    ap.error("%s: unknown operation %r" % (opt, op))
                w[op] = float(v)
        return w
    weights = parse_weights(args.weights, "--weights")
    cfg.pre_weights = parse_weights(args.pre_weights, "--pre-weights")

    try:
        if args.replay or args.ops is not None:
            if args.replay:
                with open(args.replay) as f:
                    case = parse_case(f.read())
                if args.fallthru != "auto":
                    case.fallthru = args.fallthru
            else:
                if args.tree is not None:
                    tree = parse_list(args.tree)
                elif args.seed is not None:
                    tree = gen_tree(random.Random(args.seed))
                else:
                    tree = []
                case = Case(tree, parse_list(args.ops), parse_list(args.pre or ""),
                             args.fallthru if args.fallthru != "auto" else "on",
                             args.seed if args.seed is not None else "-")
            f, _, n = run_case(cfg, case, trace=out)
            if f:
                report_failure(cfg, args, case, f, out,
                               shrink_it=args.shrink_time > 0 and not args.no_shrink)
                return 1
            out("PASS replay: %d operations, no difference" % n)
            return 0

        cases = []
        if args.ci:
            seeds = CI_SEEDS
            nops = args.nops or CI_NOPS
            deadline = None
            if not args.no_cases and os.path.isdir(CASES_DIR):
                cases = sorted(os.path.join(CASES_DIR, f) for f in os.listdir(CASES_DIR)
                               if f.endswith(".replay"))
        elif args.seed is not None:
            seeds = [args.seed]
            nops = args.nops or 300
            deadline = None
        elif args.time:
            first = args.first_seed if args.first_seed is not None else random.randrange(10**6)
            seeds = None
            nops = args.nops or 300
            deadline = time.monotonic() + args.time
            out("# random seeds from %d for %ds" % (first, args.time))
        else:
            ap.error("give --ci, --time, --seed, --replay or --ops")

        start = time.monotonic()
        total_ops = clean_seeds = failures = 0
        kinds = {}
        k = 0
        while True:
            if seeds is not None:
                if k >= len(seeds):
                    break
                seed = seeds[k]
            else:
                if time.monotonic() >= deadline:
                    break
                seed = first + k
            k += 1
            npre = npre_for(seed)
            rng = random.Random(seed)
            case = Case(gen_tree(rng, hardlinks=npre == 0 and not args.no_lower_hardlinks),
                        [], [], ft_for(seed), seed)
            f, run, n = run_case(cfg, case, gen=Gen(rng, weights), nops=nops, npre=npre,
                                 trace=trace)
            if f is None:
                clean_seeds += 1
                total_ops += n
                out("ok   seed %d (fallthru=%s%s): %d operations, no difference" % (
                    seed, case.fallthru, ", kernel-written upper" if npre else "", n))
                continue
            failures += 1
            total_ops += max(n - 1, 0)
            kinds[short_sig(f)] = kinds.get(short_sig(f), 0) + 1
            report_failure(cfg, args, run, f, out)
            if not args.keep_going and not args.ci:
                break
        nclean = 0
        for path in cases:
            with open(path) as fh:
                case = parse_case(fh.read())
            f, _, n = run_case(cfg, case)
            if f is None:
                nclean += 1
                out("ok   case %s: %d operations, no difference" % (os.path.basename(path), n))
            else:
                failures += 1
                out("FAIL case %s (replay with: %s --replay %s): %s" % (
                    os.path.basename(path), os.path.relpath(os.path.abspath(__file__)),
                    path, f))
                if not args.keep_going and not args.ci:
                    break
        el = time.monotonic() - start
        for k in sorted(kinds, key=lambda k: -kinds[k]):
            out("# failing seeds: %3d  %s" % (kinds[k], k))
        out("# %d seeds clean (%d operations compared clean in total), %d of %d cases clean, "
            "%d failing, %.0fs" % (clean_seeds, total_ops, nclean, len(cases), failures, el))
        if failures:
            out("FAILED difftest")
            return 1
        out("PASS difftest")
        return 0
    except Harness as e:
        out("ERROR difftest: %s" % e)
        return 99
    except Exception:
        # A bug of the tester (or a worker answering garbage): not a
        # divergence, and never a pass.
        out("ERROR difftest: %s" % traceback.format_exc())
        return 99
    finally:
        cleanup_all()
        if args.tmp_owned and not mounted_under(args.tmp):
            shutil.rmtree(args.tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
