#!/usr/bin/env python3
"""Build the benchmark layers deterministically (same seed, same tree).

usage: mklayers.py OUTDIR full|quick

OUTDIR/l1 l2 l3   lower branches, l1 top-most (lowerdir=l1:l2:l3)
  tree/dAA/dBB/fCCC   small files (0..4 KiB); ~50,000 visible in ~2,000 dirs
                      (quick: ~5,000 in ~200). Every name lives in one branch;
                      10% are also shadowed by a copy in a higher branch; 5%
                      extra names exist in l3 but are whited out in l2
                      (character device 0:0, as kernel overlayfs).
  wide/wNNNNN         20,000 empty files, name i in branch i%3 (quick 2,000)
  rmtree/dNN/fNNN     5,000 files (quick 500), in l3, a third also in l2
  big/bigfile         1 GiB (quick 100 MiB) in l3
OUTDIR/payload.tar  ~100 MB of ~10 KiB files (quick ~10 MB), not in a branch
OUTDIR/lists/files.txt   every visible regular file under tree/ (relative)
OUTDIR/lists/chmod.txt   10,000 (quick 1,000) of those, for the chmod storm
OUTDIR/merged/l1 l2 l3  separate lower branches for the merged-directory
                      (fallthru) workloads, so the walks over l1..l3 above stay
                      as they were:
  dirs/dN             N = 10, 1,000, 100,000 (quick: 10, 1,000, 10,000) visible
                      empty files fNNNNNN, name i in branch i%3; 10% of those
                      in l2/l3 also shadowed by a copy in a higher branch;
                      N/50 (at least 1) extra names xNNNNNN in l3, whited out
                      in l2. Own random generator per directory: the layers
                      above are byte-identical to what they were without it.
Requires root for the whiteouts (mknod c 0 0).
"""
import io, os, random, stat, sys, tarfile

out, scale = sys.argv[1], sys.argv[2]
Q = scale == "quick"
FAN = 14 if Q else 45          # FAN*FAN leaf dirs
PER_DIR = 25                   # visible files per leaf dir
WIDE = 2000 if Q else 20000
RM_DIRS, RM_PER = (10, 50) if Q else (50, 100)
BIG_MIB = 100 if Q else 1024
TAR_FILES = 1000 if Q else 10000
CHMOD = 1000 if Q else 10000
MERGED = (10, 1000, 10000 if Q else 100000)

rnd = random.Random(20261121)
B = [os.path.join(out, b) for b in ("l1", "l2", "l3")]
for b in B:
    os.makedirs(b)
os.makedirs(os.path.join(out, "lists"))

def put(branch, rel, data=b""):
    p = os.path.join(B[branch], rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)

def whiteout(branch, rel):
    p = os.path.join(B[branch], rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    os.mknod(p, stat.S_IFCHR | 0o000, os.makedev(0, 0))

def blob(n):
    return rnd.randbytes(n)

visible = []
for a in range(FAN):
    for b in range(FAN):
        d = "tree/d%02d/d%02d" % (a, b)
        for c in range(PER_DIR):
            rel = "%s/f%03d" % (d, c)
            r = rnd.random()
            br = 2 if r < 0.6 else (1 if r < 0.85 else 0)
            put(br, rel, blob(rnd.randrange(0, 4097)))
            if br > 0 and rnd.random() < 0.10:      # shadowed from above
                put(rnd.randrange(0, br), rel, blob(rnd.randrange(0, 4097)))
            visible.append(rel)
        for c in range(PER_DIR, PER_DIR + 2):        # ~5%: whited out in l2
            if rnd.random() < 0.65:
                rel = "%s/f%03d" % (d, c)
                put(2, rel, blob(rnd.randrange(0, 4097)))
                whiteout(1, rel)

for i in range(WIDE):
    put(i % 3, "wide/w%05d" % i)

for d in range(RM_DIRS):
    for f in range(RM_PER):
        rel = "rmtree/d%02d/f%03d" % (d, f)
        put(2, rel, blob(rnd.randrange(0, 2049)))
        if f % 3 == 0:
            put(1, rel, blob(rnd.randrange(0, 2049)))

os.makedirs(os.path.join(B[2], "big"))
blk = bytearray(rnd.randbytes(1 << 20))
with open(os.path.join(B[2], "big/bigfile"), "wb") as f:
    for i in range(BIG_MIB):
        blk[0:8] = i.to_bytes(8, "little")
        f.write(blk)

with tarfile.open(os.path.join(out, "payload.tar"), "w", format=tarfile.GNU_FORMAT) as t:
    for i in range(TAR_FILES):
        data = rnd.randbytes(rnd.randrange(2048, 18433))
        ti = tarfile.TarInfo("payload/p%03d/f%05d" % (i // 100, i))
        ti.size, ti.mode, ti.mtime = len(data), 0o644, 1700000000
        t.addfile(ti, io.BytesIO(data))

with open(os.path.join(out, "lists/files.txt"), "w") as f:
    f.write("".join(p + "\n" for p in visible))
step = max(1, len(visible) // CHMOD)
with open(os.path.join(out, "lists/chmod.txt"), "w") as f:
    f.write("".join(p + "\n" for p in visible[::step][:CHMOD]))
# Built last, with its own generators: nothing above changes.
M = [os.path.join(out, "merged", b) for b in ("l1", "l2", "l3")]
for n in MERGED:
    mr = random.Random(20261122 + n)
    d = "dirs/d%d" % n
    for b in M:
        os.makedirs(os.path.join(b, d))
    for i in range(n):
        rel = "%s/f%06d" % (d, i)
        br = i % 3
        open(os.path.join(M[br], rel), "wb").close()
        if br > 0 and mr.random() < 0.10:           # shadowed from above
            open(os.path.join(M[mr.randrange(0, br)], rel), "wb").close()
    for i in range(max(1, n // 50)):                 # whited out in l2
        rel = "%s/x%06d" % (d, i)
        open(os.path.join(M[2], rel), "wb").close()
        os.mknod(os.path.join(M[1], rel), stat.S_IFCHR | 0o000, os.makedev(0, 0))
print("visible files under tree/: %d; merged dirs: %s" % (len(visible), ", ".join("d%d" % n for n in MERGED)))
