#!/usr/bin/env bash
# What unionmount's fallthrus cost in the upper filesystem: for the merged
# directories of 1,000 and 100,000 names (quick: 1,000 and 10,000) built by
# bench/mklayers.py, mount unionmount (fallthru=on) with an empty upper part
# of that directory, measure the upper filesystem, list the directory once
# (which writes the fallthrus), measure again. Once with upper+work on ext4
# (under BASE, default /var/tmp/um-bench) and once on a tmpfs mounted for
# the purpose. Prints a markdown table; see bench/README.md. Needs root.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
QUICK=0 OUT=""
BASE=${UM_BENCH_BASE:-/var/tmp/um-bench}
UM_BIN=${UNIONMOUNT:-}

usage() {
	cat <<USAGE
usage: bench/ftcost.sh [--quick] [--base DIR] [--unionmount BINARY] [--out FILE]
  --quick        the quick layers: 1,000 and 10,000 names (default 1,000 and 100,000)
  --base DIR     as for bench/run.sh (default /var/tmp/um-bench, or \$UM_BENCH_BASE)
  --unionmount B use this binary (default: the release build run.sh makes)
  --out FILE     also copy the table to FILE
USAGE
}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--base) BASE=$2; shift ;;
	--unionmount) UM_BIN=$2; shift ;;
	--out) OUT=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" -eq 0 ] || { echo "ftcost.sh must run as root" >&2; exit 1; }

# Layers, helpers and the binary, exactly as run.sh builds them.
PREP=(--prepare --base "$BASE")
[ $QUICK = 1 ] && PREP+=(--quick)
[ -n "$UM_BIN" ] && PREP+=(--unionmount "$UM_BIN")
"$HERE/run.sh" "${PREP[@]}" || exit 1
[ -n "$UM_BIN" ] || UM_BIN=$BASE/build/src/unionmount
if [ $QUICK = 1 ]; then SCALE=quick BIG=10000; else SCALE=full BIG=100000; fi
LAY=$BASE/layers-$SCALE/merged
EXT=$BASE/ftcost               # ext4 case: upper, work, mnt in here
TMP=$BASE/ftcost-tmpfs         # tmpfs mount point: upper, work in there
MNT=$BASE/ftcost-mnt
LOG=$BASE/results/ftcost-$(date +%Y%m%d-%H%M%S).log
mkdir -p "$BASE/results"
: >"$LOG"

# ---- safety: unmount the union and the tmpfs, stop only our daemon ----------
DPID=""
cleanup() {
	local i
	for i in 1 2 3; do
		mountpoint -q "$MNT" 2>/dev/null || break
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	done
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		sleep 0.5
		kill "$DPID" 2>/dev/null
	fi
	for i in 1 2 3; do
		mountpoint -q "$TMP" 2>/dev/null || break
		umount "$TMP" 2>/dev/null || umount -l "$TMP" 2>/dev/null
	done
	rm -rf "$EXT"
	rmdir "$TMP" "$MNT" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for m in "$MNT" "$TMP"; do
	if mountpoint -q "$m" 2>/dev/null; then
		echo "$m is already mounted (another ftcost.sh?); refusing" >&2
		trap - EXIT; exit 1
	fi
done

mount_um() {   # $1 upper/work parent
	local i
	"$UM_BIN" -f "$MNT" -o "lowerdir=$LAY/l1:$LAY/l2:$LAY/l3,upperdir=$1/upper,workdir=$1/work,fallthru=on" >>"$LOG" 2>&1 &
	DPID=$!
	for i in $(seq 200); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$DPID" 2>/dev/null || { DPID=""; return 1; }
		sleep 0.05
	done
	return 1
}
umount_um() {
	local i
	for i in 1 2 3 4 5; do
		mountpoint -q "$MNT" || break
		umount "$MNT" 2>>"$LOG" && break
		sleep 0.2
	done
	mountpoint -q "$MNT" && umount -l "$MNT"
	if [ -n "$DPID" ]; then
		for i in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
		kill -0 "$DPID" 2>/dev/null && kill "$DPID"
		wait "$DPID" 2>/dev/null
		DPID=""
	fi
}

# One snapshot of the upper filesystem, as KEY=VALUE words:
# fsi  inodes in use on the filesystem (stat -f: total - free)
# fsb  bytes in use on the filesystem (blocks - free blocks, times block size)
# dua  du -B1 of upper and work (allocated; a hard-linked inode counted once)
# dup  du --apparent-size of the same
# ino  distinct inode numbers under upper and work (ours, exactly)
# dsz  st_size of the merged directory's upper part; dbl its st_blocks*512
# dent dentry slab objects in use, system-wide (tmpfs keeps its names there)
snap() {   # $1 upper/work parent, $2 the directory relative to upper
	sync -f "$1/upper"
	echo "fsi=$(stat -f -c '%c %d' "$1/upper" | awk '{print $1 - $2}')" \
		"fsb=$(stat -f -c '%b %f %S' "$1/upper" | awk '{printf "%.0f", ($1 - $2) * $3}')" \
		"dua=$(du -s -B1 -c "$1/upper" "$1/work" | awk 'END {print $1}')" \
		"dup=$(du -s -B1 --apparent-size -c "$1/upper" "$1/work" | awk 'END {print $1}')" \
		"ino=$(find "$1/upper" "$1/work" -printf '%i\n' | sort -u | wc -l)" \
		"dsz=$(stat -c %s "$1/upper/$2")" "dbl=$(stat -c '%b %B' "$1/upper/$2" | awk '{print $1 * $2}')" \
		"dent=$(awk '$1 == "dentry" {print $2}' /proc/slabinfo)"
}

ROWS=()
measure() {   # $1 label (ext4|tmpfs), $2 upper/work parent, $3 N
	local d=dirs/d$3 before after nft nmark
	rm -rf "$2/upper" "$2/work"
	mkdir -p "$2/upper/$d" "$2/work" "$MNT"
	mount_um "$2" || { echo "$1 d$3: mount failed, see $LOG" >&2; return 1; }
	stat "$MNT/$d" >/dev/null || { umount_um; return 1; }   # lookups only: no listing yet
	before=$(snap "$2" "$d")
	ls -f "$MNT/$d" >/dev/null || { echo "$1 d$3: ls failed" >&2; umount_um; return 1; }
	after=$(snap "$2" "$d")
	nft=$(find "$2/upper/$d" -mindepth 1 -type c | wc -l)
	nmark=$(find "$2/work/unionmount/fallthru" -mindepth 1 | wc -l)
	local complete
	complete=$(getfattr -n trusted.unionmount.complete --only-values "$2/upper/$d" 2>/dev/null || echo none)
	umount_um
	echo "$1 d$3: before: $before" >>"$LOG"
	echo "$1 d$3: after:  $after; $nft fallthrus, $nmark markers, complete=$complete" >>"$LOG"
	ROWS+=("$1 $3 $nft $nmark $before | $after")
	rm -rf "$2/upper" "$2/work"
}

echo "ftcost: layers $LAY, log $LOG" >&2
mkdir -p "$EXT" "$TMP" "$MNT"
EXTFS=$(findmnt -n -o FSTYPE -T "$EXT")
for n in 1000 "$BIG"; do measure "$EXTFS" "$EXT" "$n"; done
mount -t tmpfs -o size=2g,nr_inodes=1000000,mode=0755 ftcost "$TMP" || { echo "cannot mount tmpfs" >&2; exit 1; }
for n in 1000 "$BIG"; do measure tmpfs "$TMP" "$n"; done
umount "$TMP"

MDF=$BASE/results/ftcost-$(date +%Y%m%d-%H%M%S).md
{
	echo "# fallthru space cost in the upper filesystem ($SCALE layers)"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(uname -r); commit $(git -C "$HERE/.." rev-parse --short HEAD 2>/dev/null)"
	echo "- ext4 case: upper+work in $EXT ($EXTFS, $(findmnt -n -o SOURCE -T "$EXT"), shared with the rest of the system:"
	echo "  the df columns may include others' activity); tmpfs case: a fresh tmpfs (size=2g,nr_inodes=1000000)"
	echo "- after minus before the first \`ls -f\` of the directory; per 1,000 names = that / (names / 1,000)"
	echo "- inodes (ours): distinct inode numbers under upper and work, exact; dentry slab objs: system-wide (other"
	echo "  activity adds noise), $(awk '$1 == "dentry" {print $4}' /proc/slabinfo) bytes each on this kernel; on ext4 they are reclaimable cache, on tmpfs the names themselves"
	echo
	printf '%s\n' "${ROWS[@]}" | python3 -c '
import sys
print("| upper fs | names | fallthrus written | markers | inodes (df) | inodes (ours) | du bytes | du apparent bytes | fs bytes (df) | dir st_size | dir blocks bytes | dentry slab objs | per 1,000 names: inodes (df) / inodes (ours) / du bytes / dir bytes (blocks) / dentries |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for line in sys.stdin:
    head, after = line.rstrip("\n").split(" | ")
    fs, n, nft, nmark, *before = head.split()
    b = dict(x.split("=") for x in before)
    a = dict(x.split("=") for x in after.split())
    d = {k: int(a[k]) - int(b[k]) for k in a}
    k = int(n) / 1000
    print("| %s | %s | %s | %s | %+d | %+d | %+d | %+d | %+d | %d (was %s) | %d (was %s) | %+d | %.0f / %.2f / %.0f / %.0f / %.0f |" % (
        fs, format(int(n), ","), nft, nmark, d["fsi"], d["ino"], d["dua"], d["dup"], d["fsb"],
        int(a["dsz"]), b["dsz"], int(a["dbl"]), b["dbl"], d["dent"],
        d["fsi"] / k, d["ino"] / k, d["dua"] / k, d["dbl"] / k, d["dent"] / k))
'
} >"$MDF"
cat "$MDF"
[ -n "$OUT" ] && cp "$MDF" "$OUT"
echo "table: $MDF  log: $LOG" >&2
