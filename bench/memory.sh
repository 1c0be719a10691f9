#!/usr/bin/env bash
# Daemon memory over a walk of a large tree (issue 6): how much each FUSE
# union's RSS grows per inode the kernel holds, and whether it comes back
# once the kernel forgets them. See bench/README.md, "Daemon memory".
# Needs root (kernel overlay mount, drop_caches, /proc/slabinfo).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ALL_SYSTEMS="kernel,unionmount,fuse-overlayfs,unionfs-fuse"

BASE=${UM_MEM_BASE:-/var/tmp/um-mem}
UM_BIN=${UNIONMOUNT:-}
BASELINE=""
SYSTEMS=$ALL_SYSTEMS
NDIRS=1000 NFILES=1000
OUT="" KEEP=0

usage() {
	cat <<USAGE
usage: bench/memory.sh [--dirs N] [--files M] [--systems S[,S...]] [--base DIR]
                       [--unionmount BINARY] [--baseline BINARY] [--out FILE] [--keep]
  --dirs N        leaf directories (default 1000), each merged from 3 branches
  --files M       files per leaf directory (default 1000)
  --systems S,..  from: $ALL_SYSTEMS,unionmount-base
  --unionmount B  unionmount binary (default: release build of this checkout
                  in BASE/build, or \$UNIONMOUNT)
  --baseline B    a second unionmount binary, measured as system
                  unionmount-base (added to the systems) in the same run
  --base DIR      layers, mounts, results (default /var/tmp/um-mem)
  --out FILE      also copy the markdown table to FILE
  --keep          keep the layers (default: removed at the end, they hold
                  N*M inodes)
USAGE
}

while [ $# -gt 0 ]; do
	case $1 in
	--dirs) NDIRS=$2; shift ;;
	--files) NFILES=$2; shift ;;
	--systems) SYSTEMS=$2; shift ;;
	--base) BASE=$2; shift ;;
	--unionmount) UM_BIN=$2; shift ;;
	--baseline) BASELINE=$2; shift ;;
	--out) OUT=$2; shift ;;
	--keep) KEEP=1 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" -eq 0 ] || { echo "memory.sh must run as root" >&2; exit 1; }
[ -n "$BASELINE" ] && [[ ",$SYSTEMS," != *",unionmount-base,"* ]] && SYSTEMS="$SYSTEMS,unionmount-base"
IFS=, read -ra SYS <<<"$SYSTEMS"
for s in "${SYS[@]}"; do
	case $s in kernel|unionmount|fuse-overlayfs|unionfs-fuse) ;;
	unionmount-base) [ -n "$BASELINE" ] || { echo "unionmount-base needs --baseline" >&2; exit 2; } ;;
	*) echo "unknown system $s" >&2; exit 2 ;; esac
done

LAY=$BASE/layers-${NDIRS}x$NFILES
RUN=$BASE/run
MNT=$RUN/mnt
BIN=$BASE/bin
mkdir -p "$BASE/results" "$BIN" "$RUN"
STAMPNOW=$(date +%Y%m%d-%H%M%S)
LOG=$BASE/results/mem-$STAMPNOW.log
RAW=$BASE/results/mem-$STAMPNOW.tsv
: >"$LOG"
log() { echo "$*" >>"$LOG"; }
say() { echo "$*" >&2; log "$*"; }

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
	if [ $KEEP = 0 ] && [ -d "$LAY" ]; then
		echo "removing $LAY" >&2
		rm -rf "$LAY" "$RUN/upper" "$RUN/work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if mountpoint -q "$MNT" 2>/dev/null; then
	echo "$MNT is already mounted (another memory.sh?); refusing" >&2
	trap - EXIT; exit 1
fi

COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || COMMIT="$COMMIT (src/ modified)"
[ -n "$UM_BIN" ] && COMMIT="$COMMIT (binary given: $UM_BIN)"
if [ ! -x "$BIN/lstatall" ] || [ "$HERE/lstatall.c" -nt "$BIN/lstatall" ]; then
	cc -O2 -Wall -o "$BIN/lstatall" "$HERE/lstatall.c" || { echo "cc lstatall.c failed" >&2; exit 1; }
fi
if [[ " ${SYS[*]} " == *" unionmount "* ]] && [ -z "$UM_BIN" ]; then
	if [ ! -f "$BASE/build/build.ninja" ]; then
		meson setup "$BASE/build" "$REPO" -Dbuildtype=release -Dtests=disabled >>"$LOG" 2>&1 ||
			{ echo "meson setup failed, see $LOG" >&2; exit 1; }
	fi
	ninja -C "$BASE/build" src/unionmount >>"$LOG" 2>&1 || { echo "build failed, see $LOG" >&2; exit 1; }
	UM_BIN=$BASE/build/src/unionmount
fi

# ---- the layers ---------------------------------------------------------------
# tree/gGG/dDDDD/fFFFFF: NDIRS leaf directories in groups of 100, each
# present in all three branches (so every directory the walk meets is
# merged from three parts, and the daemons keep three fds for it); each
# file is created in one branch (15% l1, 25% l2, 60% l3, as in run.sh's
# tree), 5% of those in l2/l3 shadowed by an empty copy in l1. Empty
# files: the walk measures metadata, not data. Deterministic.
if [ "$(cat "$LAY/.stamp" 2>/dev/null)" != "$NDIRS $NFILES v1" ]; then
	need=$((NDIRS * NFILES * 21 / 20 + NDIRS * 3 + 1000))
	free=$(stat -f -c %f "$BASE" 2>/dev/null || echo 0)
	ifree=$(stat -f -c %d "$BASE")
	[ "$ifree" -gt $((need * 2)) ] || { echo "$BASE: $ifree free inodes, need about $need (x2 margin)" >&2; exit 1; }
	say "building $LAY: $NDIRS dirs x $NFILES files ($need inodes) (free blocks $free)"
	rm -rf "$LAY"
	python3 - "$LAY" "$NDIRS" "$NFILES" <<'PY' || { echo "layer generator failed" >&2; exit 1; }
import os, random, stat, sys
lay, ndirs, nfiles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(6)
br = [os.path.join(lay, b) for b in ("l1", "l2", "l3")]
mode = stat.S_IFREG | 0o644
os.makedirs(os.path.join(lay, "lists"))
with open(os.path.join(lay, "lists", "files.txt"), "w") as lst:
    for d in range(ndirs):
        rel = "tree/g%02d/d%04d" % (d // 100, d)
        for b in br:
            os.makedirs(os.path.join(b, rel))
        for f in range(nfiles):
            name = "%s/f%05d" % (rel, f)
            x = rnd.random()
            k = 0 if x < 0.15 else 1 if x < 0.40 else 2
            os.mknod(os.path.join(br[k], name), mode)
            if k and rnd.random() < 0.05:
                os.mknod(os.path.join(br[0], name), mode)
            lst.write(name + "\n")
PY
	sync
	echo "$NDIRS $NFILES v1" >"$LAY/.stamp"
fi
NENTRIES=$((NDIRS * NFILES + NDIRS + (NDIRS + 99) / 100 + 1)) # files, leaves, groups, tree/
LOWER="$LAY/l1:$LAY/l2:$LAY/l3"

# ---- sampling -----------------------------------------------------------------
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# Kernel-side FUSE inodes (all FUSE mounts of the machine: other mounts
# add noise; the harness reports the change over its own steps).
fuse_inodes() { awk '$1 == "fuse_inode" {print $2}' /proc/slabinfo; }
KB2MIB() { awk -v k="$1" 'BEGIN { if (k == "" || k == "-") print "-"; else printf "%.1f", k / 1024 }'; }

# Background sampler, while the walk runs: the largest fd count of the
# daemon and the largest number of FUSE inodes in the kernel (VmHWM
# already gives the RSS peak). Other work on the machine may drop caches
# (bench/run.sh does) and make the kernel forget inodes in the middle of
# a walk: the largest count, not the one at the end, is what the daemon
# had to hold at once.
SAMPLER=""
start_sampler() {  # $1 daemon pid or "", $2 slab count before the mount
	(
		max=0 imax=0
		while :; do
			if [ -n "$1" ]; then
				n=$(nfds "$1")
				[ "$n" -gt "$max" ] && { max=$n; echo "$max" >"$RUN/fdmax"; }
			fi
			i=$(( $(fuse_inodes) - $2 ))
			[ "$i" -gt "$imax" ] && { imax=$i; echo "$imax" >"$RUN/fimax"; }
			sleep 0.5
		done
	) &
	SAMPLER=$!
}
stop_sampler() { [ -n "$SAMPLER" ] && { kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; }; SAMPLER=""; }

# The kernel forgets inodes when their dentries go: drop_caches 2 frees
# unused dentries and inodes, but a directory's dentry is unused only once
# its children are gone, so one drop frees a layer or two of the tree;
# repeat until the FUSE inode count stops falling, then wait for the
# daemon to have processed the FORGETs (they are asynchronous).
forget_all() {
	local i prev=-1 cur
	sync
	for i in $(seq 10); do
		echo 2 >/proc/sys/vm/drop_caches
		sleep 1
		cur=$(fuse_inodes)
		log "    drop_caches 2 #$i: fuse_inode slab $cur"
		[ "$cur" = "$prev" ] && break
		prev=$cur
	done
	echo 3 >/proc/sys/vm/drop_caches
	sleep 3
}

mount_sys() {
	local s=$1 i
	rm -rf "$RUN/upper" "$RUN/work"
	mkdir -p "$RUN/upper" "$RUN/work" "$MNT"
	DPID=""
	case $s in
	kernel)
		mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$RUN/upper,workdir=$RUN/work" "$MNT" >>"$LOG" 2>&1
		return ;;
	unionmount|unionmount-base)
		local b=$UM_BIN
		[ "$s" = unionmount-base ] && b=$BASELINE
		"$b" -f "$MNT" -o "lowerdir=$LOWER,upperdir=$RUN/upper,workdir=$RUN/work" >>"$DLOG" 2>&1 &
		DPID=$! ;;
	fuse-overlayfs)
		fuse-overlayfs -f -o "lowerdir=$LOWER,upperdir=$RUN/upper,workdir=$RUN/work" "$MNT" >>"$LOG" 2>&1 &
		DPID=$! ;;
	unionfs-fuse)
		unionfs -f -o cow "$RUN/upper=RW:$LAY/l1=RO:$LAY/l2=RO:$LAY/l3=RO" "$MNT" >>"$LOG" 2>&1 &
		DPID=$! ;;
	esac
	for i in $(seq 200); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$DPID" 2>/dev/null || { log "$s daemon exited before mounting"; DPID=""; return 1; }
		sleep 0.05
	done
	log "$s: mount did not appear in 10 s"
	return 1
}

umount_sys() {
	local i
	for i in 1 2 3 4 5; do
		mountpoint -q "$MNT" || break
		umount "$MNT" 2>>"$LOG" && break
		sleep 0.2
	done
	mountpoint -q "$MNT" && { log "umount failed, lazy"; umount -l "$MNT"; }
	if [ -n "$DPID" ]; then
		for i in $(seq 200); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
		if kill -0 "$DPID" 2>/dev/null; then log "daemon $DPID still alive after umount; killing"; kill "$DPID"; fi
		wait "$DPID" 2>/dev/null
		DPID=""
	fi
}

# unionmount (not the --baseline binary, which may predate it) logs its
# own count of inodes on SIGUSR1: "memory: N inodes (peak P, ...".
DLOG=$RUN/daemon.log
um_report() {  # prints "live peak" or "- -"
	local before line
	if [ "$CUR" != unionmount ] || [ -z "$DPID" ]; then echo "- -"; return; fi
	before=$(grep -c 'memory: ' "$DLOG")
	kill -USR1 "$DPID"
	for _ in $(seq 50); do
		[ "$(grep -c 'memory: ' "$DLOG")" -gt "$before" ] && break
		sleep 0.1
	done
	line=$(grep 'memory: ' "$DLOG" | tail -1)
	log "  daemon: ${line#*: }"
	echo "$line" | sed -n 's/.*memory: \([0-9]*\) inodes (peak \([0-9]*\),.*/\1 \2/p'
}

# User + system CPU seconds the daemon has used (utime, stime in ticks).
cpu_s() {
	[ -n "$DPID" ] || { echo -; return; }
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$DPID/stat"
}
cpu_delta() { [ "$1" = - ] && echo - || awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---- the run ------------------------------------------------------------------
printf 'system\tentries\tfind_s\tlstat_s\trss_mount_kb\thwm_kb\trss_walk_kb\tanon_walk_kb\tfds_walk\tfds_max\tkernel_inodes_max\tdaemon_inodes_walk\tdaemon_inodes_peak\trss_forget_kb\tanon_forget_kb\tfds_forget\tkernel_inodes_forget\tdaemon_inodes_forget\trc\tcpu_walk_s\tcpu_forget_s\n' >"$RAW"
say "layers $LAY ($NENTRIES entries expected), systems ${SYS[*]}, log $LOG"
# The backing trees' dentries and inodes stay in memory for the walks
# (drop_caches between systems would make the first walk of each slower,
# not change the memory figures).
for s in "${SYS[@]}"; do
	CUR=$s
	say "== $s"
	sync; echo 3 >/proc/sys/vm/drop_caches
	find "$LAY/l1" "$LAY/l2" "$LAY/l3" -printf '' 2>/dev/null
	fi0=$(fuse_inodes)
	: >"$DLOG"
	if ! mount_sys "$s"; then
		say "  mount failed"
		cat "$DLOG" >>"$LOG"
		printf '%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\tmount\t-\t-\n' "$s" >>"$RAW"
		continue
	fi
	rc=0
	rss0=- ; [ -n "$DPID" ] && { sleep 0.5; rss0=$(status_kb "$DPID" VmRSS); }
	echo - >"$RUN/fdmax"; echo 0 >"$RUN/fimax"
	start_sampler "$DPID" "$fi0"
	c0=$(cpu_s)
	t0=$EPOCHREALTIME
	entries=$(find "$MNT" 2>>"$LOG" | wc -l) || rc=1
	t1=$EPOCHREALTIME
	"$BIN/lstatall" "$MNT" "$LAY/lists/files.txt" >/dev/null 2>>"$LOG" || rc=$((rc | 2))
	t2=$EPOCHREALTIME
	stop_sampler
	c1=$(cpu_s)
	fimax=$(cat "$RUN/fimax")
	hwm=- rssw=- anonw=- fdw=- fdmax=- rssf=- anonf=- fdf=-
	if [ -n "$DPID" ]; then
		hwm=$(status_kb "$DPID" VmHWM) rssw=$(status_kb "$DPID" VmRSS) anonw=$(status_kb "$DPID" RssAnon)
		fdw=$(nfds "$DPID") fdmax=$(cat "$RUN/fdmax")
	fi
	read -r diw dip <<<"$(um_report)"
	say "  find: $entries entries in $(secs "$t0" "$t1") s; lstat of $((NDIRS * NFILES)) files $(secs "$t1" "$t2") s; rc $rc"
	say "  after mount RSS ${rss0} kB; after walk RSS $rssw kB (anon $anonw), peak $hwm kB, fds $fdw (max seen $fdmax);"
	say "    FUSE inodes in the kernel: at most +$fimax during the walk; daemon's count $diw (peak $dip)"
	t3=$EPOCHREALTIME
	forget_all
	fif=$(( $(fuse_inodes) - fi0 ))
	c2=$(cpu_s)
	if [ -n "$DPID" ]; then
		rssf=$(status_kb "$DPID" VmRSS) anonf=$(status_kb "$DPID" RssAnon) fdf=$(nfds "$DPID")
	fi
	read -r dif _ <<<"$(um_report)"
	say "  after forget RSS $rssf kB (anon $anonf), fds $fdf, FUSE inodes in the kernel +$fif, daemon's count $dif"
	say "  daemon CPU: walk $(cpu_delta "$c0" "$c1") s, forget $(cpu_delta "$c1" "$c2") s (forget phase $(secs "$t3" "$EPOCHREALTIME") s wall)"
	umount_sys
	cat "$DLOG" >>"$LOG"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$entries" \
		"$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" "$rss0" "$hwm" "$rssw" "$anonw" "$fdw" "$fdmax" \
		"$fimax" "$diw" "$dip" "$rssf" "$anonf" "$fdf" "$fif" "$dif" "$rc" "$(cpu_delta "$c0" "$c1")" "$(cpu_delta "$c1" "$c2")" >>"$RAW"
done

# ---- the table ----------------------------------------------------------------
TABLE=$BASE/results/mem-$STAMPNOW.md
{
	echo "Files: $((NDIRS * NFILES)) in $NDIRS leaf directories, each merged from 3 lower branches"
	echo "(\`find\` then \`lstat\` of every file, then drop_caches until the kernel forgets)."
	echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r);"
	echo "commit $COMMIT; $(date -u '+%Y-%m-%d %H:%M UTC'); backing $(findmnt -n -o FSTYPE -T "$BASE")."
	echo
	echo "| system | entries seen | find s | lstat-all s | RSS after mount MiB | peak (VmHWM) MiB | RSS after walk MiB | RSS after forget MiB | inodes held at most | bytes per inode | fds after walk / after forget | daemon CPU s walk / forget |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	awk -F'\t' '
	function m(k) { return (k == "-" || k == "") ? "-" : sprintf("%.1f", k / 1024) }
	NR > 1 {
		# The daemon'"'"'s own peak count when it reports one, else the
		# kernel'"'"'s largest FUSE inode count seen during the walk.
		held = ($13 != "-" && $13 != "") ? $13 : $11
		src = ($13 != "-" && $13 != "") ? " (daemon)" : " (kernel)"
		bpi = ($5 == "-" || $6 == "-" || held + 0 <= 0) ? "-" : sprintf("%.0f", ($6 - $5) * 1024 / held)
		if ($5 == "-") src = ""
		fd = ($9 == "-") ? "-" : $9 " / " $16
		note = ($19 != "0") ? " (rc " $19 ")" : ""
		cpu = ($20 == "-" || $20 == "") ? "-" : $20 " / " $21
		printf "| %s%s | %s | %s | %s | %s | %s | %s | %s | %s%s | %s | %s | %s |\n", $1, note, $2, $3, $4, m($5), m($6), m($7), m($14), held, src, bpi, fd, cpu
	}' "$RAW"
	echo
	echo "bytes per inode = (peak RSS - RSS after mount) / inodes held at most: the daemon's own"
	echo "count (unionmount, SIGUSR1 report) or the largest rise of the kernel's fuse_inode slab seen"
	echo "during the walk (sampled every 0.5 s; includes other FUSE mounts on the machine)."
} >"$TABLE"
cat "$TABLE"
[ -n "$OUT" ] && cp "$TABLE" "$OUT"
exit 0
