#!/usr/bin/env bash
# unionmount benchmark harness: kernel overlayfs vs unionmount vs fuse-overlayfs
# vs unionfs-fuse on the same layers, interleaved, fresh mount per measurement.
# See bench/README.md. Needs root (kernel overlay mount, drop_caches, whiteouts).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# The merged-directory (fallthru) workloads, one per directory size; they use
# the separate branches merged/l1..l3 (mklayers.py).
FT_SIZES="10 1k 100k"
FT_WORKLOADS=$(for f in readdir-first readdir-again readdir-dropped neglookup; do
	for z in $FT_SIZES; do printf '%s ' "$f-$z"; done; done)
FT_WORKLOADS=${FT_WORKLOADS% }
ALL_WORKLOADS="walk-cold walk-warm walkstat-cold walkpipe-cold lstat-all readdir-wide create-10k chmod-storm append-big seqread-cold seqread-warm seqwrite rm-rf untar randread $FT_WORKLOADS"
ALL_SYSTEMS="kernel,unionmount,unionmount-noft,fuse-overlayfs,unionfs-fuse"

QUICK=0 REPS="" ONLY="" SYSTEMS=$ALL_SYSTEMS PREPARE=0
BASE=${UM_BENCH_BASE:-/var/tmp/um-bench}
UM_BIN=${UNIONMOUNT:-}
UM_ALT=""
UM_ALT_OPTS=""
OUT=""

usage() {
	cat <<USAGE
usage: bench/run.sh [--quick] [--reps N] [--only W[,W...]] [--systems S[,S...]]
                    [--base DIR] [--unionmount BINARY] [--unionmount-alt BINARY]
                    [--alt-opts OPTS]
                    [--out FILE] [--prepare]
  --quick        layers and workloads scaled down ~10x (separate layer set)
  --reps N       repetitions per system and workload (default 5, quick 3)
  --only W,...   workloads to run, from: $ALL_WORKLOADS
                 ("fallthru" stands for all of: $FT_WORKLOADS)
  --systems S,.. from: $ALL_SYSTEMS
                 (kernel gives the ratio column; unionmount-noft is unionmount
                 with -o fallthru=off); also fuse-floor (not in the default
                 set): bench/floor.c, a FUSE daemon that answers from memory,
                 the round trips' own cost, and fuse-floor-uring, the same
                 served through FUSE over io_uring (src/uring.c) where the
                 kernel offers it
  --base DIR     where layers, mounts and results live (default /var/tmp/um-bench,
                 or \$UM_BENCH_BASE); should be ext4
  --unionmount B use this unionmount binary (default: release build of this
                 checkout in BASE/build, or \$UNIONMOUNT)
  --unionmount-alt B
                 a second unionmount binary, system "unionmount-alt" (not in
                 the default set): compares two builds in the same run
  --alt-opts O   more -o options for unionmount-alt (e.g. readdirplus=never;
                 with --unionmount-alt set to the same binary, compares options)
  --out FILE     also copy the markdown table to FILE
  --prepare      only build the helpers, unionmount and the layers, then exit
                 (bench/ftcost.sh uses it)
USAGE
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--reps) REPS=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--systems) SYSTEMS=$2; shift ;;
	--base) BASE=$2; shift ;;
	--unionmount) UM_BIN=$2; shift ;;
	--unionmount-alt) UM_ALT=$2; shift ;;
	--alt-opts) UM_ALT_OPTS=$2; shift ;;
	--out) OUT=$2; shift ;;
	--prepare) PREPARE=1 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" -eq 0 ] || { echo "run.sh must run as root" >&2; exit 1; }
[ -n "$REPS" ] || { [ $QUICK = 1 ] && REPS=3 || REPS=5; }
WORKLOADS=$ALL_WORKLOADS
if [ -n "$ONLY" ]; then
	WORKLOADS=${ONLY//,/ }
	WORKLOADS=$(for w in $WORKLOADS; do [ "$w" = fallthru ] && echo "$FT_WORKLOADS" || echo "$w"; done)
	WORKLOADS=$(echo $WORKLOADS)
	for w in $WORKLOADS; do
		[[ " $ALL_WORKLOADS " == *" $w "* ]] || { echo "unknown workload $w" >&2; exit 2; }
	done
fi
IFS=, read -ra SYS <<<"$SYSTEMS"
for s in "${SYS[@]}"; do
	case $s in kernel|unionmount|unionmount-noft|fuse-overlayfs|unionfs-fuse|fuse-floor|fuse-floor-uring) ;;
	unionmount-alt) [ -x "$UM_ALT" ] || { echo "unionmount-alt needs --unionmount-alt BINARY" >&2; exit 2; } ;;
	*) echo "unknown system $s" >&2; exit 2 ;; esac
done

if [ $QUICK = 1 ]; then
	SCALE=quick NCREATE=1000 BIG_MIB=100 NRAND=10000 FT_BIG=10000
else
	SCALE=full NCREATE=10000 BIG_MIB=1024 NRAND=100000 FT_BIG=100000
fi
NNEG=10000        # negative lookups per neglookup-* measurement (both scales)
NLIST=10          # timed listings in readdir-again-* and readdir-dropped-*

mkdir -p "$BASE"
FSTYPE=$(findmnt -n -o FSTYPE -T "$BASE" 2>/dev/null || stat -f -c %T "$BASE")
case $FSTYPE in ext4|ext2/ext3) ;; *) echo "warning: $BASE is on $FSTYPE, not ext4" >&2 ;; esac

LAY=$BASE/layers-$SCALE          # l1 l2 l3 payload.tar lists/
RUN=$BASE/run                    # mnt upper work (recreated per measurement)
MNT=$RUN/mnt
BIN=$BASE/bin
STAMP=$LAY/.stamp
LOG=$BASE/results/run-$(date +%Y%m%d-%H%M%S).log
mkdir -p "$BASE/results" "$BIN" "$RUN"
: >"$LOG"
log() { echo "$*" >>"$LOG"; }
say() { echo "$*" >&2; log "$*"; }

# ---- safety: never leave a mount or a daemon behind ------------------------
DPID=""
# fuse-floor's source (mount_sys): lazily, as the floor may still hold it
floorsrc_off() {
	while mountpoint -q "$RUN/floorsrc" 2>/dev/null; do umount -l "$RUN/floorsrc" || break; done
}
cleanup() {
	local i
	for i in 1 2 3; do
		mountpoint -q "$MNT" 2>/dev/null || break
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	done
	floorsrc_off
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		sleep 0.5
		kill "$DPID" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if mountpoint -q "$MNT" 2>/dev/null; then
	echo "$MNT is already mounted (another run.sh?); refusing" >&2
	trap - EXIT; exit 1
fi

# ---- tools and the unionmount binary ------------------------------------------
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || COMMIT="$COMMIT (src/ modified)"
[ -n "$UM_BIN" ] && COMMIT="$COMMIT (binary given: $UM_BIN)"
[[ " ${SYS[*]} " == *" unionmount-alt "* ]] && COMMIT="$COMMIT; unionmount-alt: $UM_ALT${UM_ALT_OPTS:+ -o $UM_ALT_OPTS}"
for t in randread lstatall mkfiles negstat; do
	if [ ! -x "$BIN/$t" ] || [ "$HERE/$t.c" -nt "$BIN/$t" ]; then
		cc -O2 -Wall -o "$BIN/$t" "$HERE/$t.c" || { echo "cc $t.c failed" >&2; exit 1; }
	fi
done
if [[ " ${SYS[*]} " == *" fuse-floor"* ]] && { [ ! -x "$BIN/floor" ] || [ "$HERE/floor.c" -nt "$BIN/floor" ] ||
	[ "$REPO/src/fuse_proto.h" -nt "$BIN/floor" ] || [ "$REPO/src/uring.c" -nt "$BIN/floor" ] || [ "$REPO/src/log.c" -nt "$BIN/floor" ] ||
	[ "$REPO/src/nice.c" -nt "$BIN/floor" ]; }; then
	# With liburing the floor can also serve through io_uring
	# (FLOOR_URING=N, fuse-floor-uring), with the daemon's transport.
	uring=()
	! pkg-config --exists liburing || uring=(-DUM_HAVE_LIBURING -luring)
	# shellcheck disable=SC2046 # pkg-config's flags are words
	cc -O2 -Wall -D_GNU_SOURCE -DFUSE_USE_VERSION=312 -I "$REPO/src" $(pkg-config --cflags fuse3) -o "$BIN/floor" \
		"$HERE/floor.c" "$REPO/src/uring.c" "$REPO/src/log.c" "$REPO/src/nice.c" $(pkg-config --libs fuse3) -lxxhash -lpthread "${uring[@]}" ||
		{ echo "cc floor.c failed" >&2; exit 1; }
fi
if [[ " ${SYS[*]} " == *" unionmount"* || $PREPARE = 1 ]] && [ -z "$UM_BIN" ]; then
	if [ ! -f "$BASE/build/build.ninja" ]; then
		meson setup "$BASE/build" "$REPO" -Dbuildtype=release >>"$LOG" 2>&1 ||
			{ echo "meson setup failed, see $LOG" >&2; exit 1; }
	fi
	ninja -C "$BASE/build" src/unionmount >>"$LOG" 2>&1 || { echo "build failed, see $LOG" >&2; exit 1; }
	UM_BIN=$BASE/build/src/unionmount
fi

# ---- layers (built once; the stamp records generator + scale) ---------------
GENSUM=$(sha1sum "$HERE/mklayers.py" | cut -c1-12)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$SCALE $GENSUM" ]; then
	say "building $SCALE layers in $LAY (once)"
	rm -rf "$LAY" "$LAY.tmp"
	python3 "$HERE/mklayers.py" "$LAY.tmp" "$SCALE" >&2 || { echo "mklayers failed" >&2; exit 1; }
	mv "$LAY.tmp" "$LAY"
	sync
	echo "$SCALE $GENSUM" >"$STAMP"
fi
L1=$LAY/l1 L2=$LAY/l2 L3=$LAY/l3
M1=$LAY/merged/l1 M2=$LAY/merged/l2 M3=$LAY/merged/l3
if [ $PREPARE = 1 ]; then
	echo "layers $LAY, unionmount ${UM_BIN:-not built}, helpers in $BIN" >&2
	[ -s "$LOG" ] || rm -f "$LOG"
	trap - EXIT
	exit 0
fi

# What the workload being measured mounts: the branches (LOW, top-most
# first) and, for the merged-directory workloads, the directory MDIR (relative
# to the union root) that exists, empty, in every fresh upper.
LOW=("$L1" "$L2" "$L3") MDIR=""
set_workload() {
	case $1 in
	readdir-first-*|readdir-again-*|readdir-dropped-*|neglookup-*)
		LOW=("$M1" "$M2" "$M3")
		case ${1##*-} in 10) MDIR=dirs/d10 ;; 1k) MDIR=dirs/d1000 ;; 100k) MDIR=dirs/d$FT_BIG ;; esac ;;
	*)
		LOW=("$L1" "$L2" "$L3") MDIR="" ;;
	esac
}

# ---- mounting ---------------------------------------------------------------
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
warm_lower() { find "$L1" "$L2" "$L3" -printf '' 2>/dev/null; }

fresh_dirs() {
	rm -rf "$RUN/upper" "$RUN/work"
	mkdir -p "$RUN/upper" "$RUN/work" "$MNT"
	[ -z "$MDIR" ] || mkdir -p "$RUN/upper/$MDIR"
	sync
}

mount_sys() {   # $1 system; sets DPID for FUSE daemons
	local s=$1 i
	local lower="${LOW[0]}:${LOW[1]}:${LOW[2]}"
	fresh_dirs
	DPID=""
	# Every FUSE daemon in a session of its own, as a mount from fstab
	# (mount.fuse3, then fuse_daemonize()) or a service runs it, not in
	# this script's: the scheduler weighs sessions (autogroups) against
	# each other, and a daemon sharing the caller's serves it differently
	# (bench/README.md, "The daemon's scheduling weight"). setsid(1) execs
	# in place here (a background job of a script leads no process group),
	# so $! is the daemon's pid.
	case $s in
	kernel)
		mount -t overlay overlay -o "lowerdir=$lower,upperdir=$RUN/upper,workdir=$RUN/work" "$MNT" >>"$LOG" 2>&1 || return 1
		return 0 ;;
	unionmount)
		setsid "$UM_BIN" -f "$MNT" -o "lowerdir=$lower,upperdir=$RUN/upper,workdir=$RUN/work" >>"$LOG" 2>&1 &
		DPID=$! ;;
	unionmount-alt)
		setsid "$UM_ALT" -f "$MNT" -o "lowerdir=$lower,upperdir=$RUN/upper,workdir=$RUN/work${UM_ALT_OPTS:+,$UM_ALT_OPTS}" >>"$LOG" 2>&1 &
		DPID=$! ;;
	unionmount-noft)
		setsid "$UM_BIN" -f "$MNT" -o "lowerdir=$lower,upperdir=$RUN/upper,workdir=$RUN/work,fallthru=off" >>"$LOG" 2>&1 &
		DPID=$! ;;
	fuse-overlayfs)
		setsid fuse-overlayfs -f -o "lowerdir=$lower,upperdir=$RUN/upper,workdir=$RUN/work" "$MNT" >>"$LOG" 2>&1 &
		DPID=$! ;;
	unionfs-fuse)
		setsid unionfs -f -o cow "$RUN/upper=RW:${LOW[0]}=RO:${LOW[1]}=RO:${LOW[2]}=RO" "$MNT" >>"$LOG" 2>&1 &
		DPID=$! ;;
	fuse-floor|fuse-floor-uring)
		# It copies the union's names and attributes into memory at
		# start: from a read-only kernel overlay of the same branches.
		mkdir -p "$RUN/floorsrc"
		floorsrc_off
		mount -t overlay overlay -o "lowerdir=$lower" "$RUN/floorsrc" >>"$LOG" 2>&1 || return 1
		if [ "$s" = fuse-floor-uring ]; then
			FLOOR_URING=16 setsid "$BIN/floor" "$RUN/floorsrc" "$MNT" -f >>"$LOG" 2>&1 &
		else
			setsid "$BIN/floor" "$RUN/floorsrc" "$MNT" -f >>"$LOG" 2>&1 &
		fi
		DPID=$! ;;
	esac
	for i in $(seq 600); do
		mountpoint -q "$MNT" && break
		kill -0 "$DPID" 2>/dev/null || { log "$s daemon exited before mounting"; DPID=""; break; }
		sleep 0.05
	done
	# setsid(1) forks when its caller leads a process group (job control
	# on): DPID would then not be the daemon, and its CPU not counted.
	if [ -n "$DPID" ] && [ "$(ps -o sid= -p "$DPID" | tr -d ' ')" != "$DPID" ]; then
		log "$s: pid $DPID is not the daemon leading its own session; run bench/run.sh without job control"
	fi
	# fuse-floor's source is not needed once it has mounted, nor if it failed
	[[ "$s" != fuse-floor* ]] || floorsrc_off
	mountpoint -q "$MNT" && return 0
	[ -z "$DPID" ] || log "$s: mount did not appear in 30 s"
	return 1
}

HWM=""
CLK_TCK=$(getconf CLK_TCK)
# The daemon's user + system CPU seconds so far, all threads (fields 14 and
# 15 of stat; counted after the ")" that ends the command name), or -.
# On a loaded machine it moves much less than the wall time does.
daemon_cpu() {
	[ -n "$DPID" ] || { echo -; return; }
	sed 's/.*) //' "/proc/$DPID/stat" 2>/dev/null |
		awk -v t="$CLK_TCK" '{ printf "%.3f", ($12 + $13) / t }'
}
umount_sys() {  # records HWM (VmHWM kB of the daemon, or -)
	local i
	HWM=-
	if [ -n "$DPID" ]; then
		HWM=$(awk '/^VmHWM:/ {print $2}' "/proc/$DPID/status" 2>/dev/null)
		[ -n "$HWM" ] || HWM=-
	fi
	for i in 1 2 3 4 5; do
		mountpoint -q "$MNT" || break
		umount "$MNT" 2>>"$LOG" && break
		sleep 0.2
	done
	mountpoint -q "$MNT" && { log "umount failed, lazy"; umount -l "$MNT"; }
	if [ -n "$DPID" ]; then
		for i in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
		if kill -0 "$DPID" 2>/dev/null; then log "daemon $DPID still alive after umount; killing"; kill "$DPID"; fi
		wait "$DPID" 2>/dev/null
		DPID=""
	fi
}

# ---- workloads: prep_W (untimed, after mount) and run_W (timed) -------------
syncs() { sync -f "$MNT" && sync -f "$RUN/upper"; }
DDREAD() { dd if="$MNT/big/bigfile" of=/dev/null bs=1M status=none; }

prep_walk-cold()    { drop_caches; }
run_walk-cold()     { find "$MNT" -printf ''; }
prep_walk-warm()    { local n; n=$(find "$MNT" | wc -l); log "  find sees $n entries"; echo "$n" >"$RUN/count.$CUR_SYS"; }
run_walk-warm()     { find "$MNT" -printf ''; }
prep_walkstat-cold() { drop_caches; }
run_walkstat-cold()  { find "$MNT" -printf '%s\n' >/dev/null; }
prep_walkpipe-cold() { drop_caches; }
run_walkpipe-cold()  { find "$MNT" -type f -print0 | xargs -0 stat -c %s >/dev/null; }
prep_lstat-all()    { warm_lower; }
run_lstat-all()     { "$BIN/lstatall" "$MNT" "$LAY/lists/files.txt" >/dev/null; }
prep_readdir-wide() { ls -f "$L1/wide" "$L2/wide" "$L3/wide" >/dev/null; }
run_readdir-wide()  { local i; for i in 1 2 3 4 5 6 7 8 9 10; do ls -f "$MNT/wide" >/dev/null || return 1; done; }
prep_create-10k()   { mkdir "$MNT/created"; }
run_create-10k()    { "$BIN/mkfiles" "$MNT/created" "$NCREATE" 4096 && syncs; }
prep_chmod-storm()  { warm_lower; }
run_chmod-storm()   { (cd "$MNT" && xargs -d '\n' -a "$LAY/lists/chmod.txt" chmod 0600) && syncs; }
prep_append-big()   { cat "$L3/big/bigfile" >/dev/null; }
run_append-big()    { printf x >>"$MNT/big/bigfile" && syncs; }
prep_seqread-cold() { drop_caches; }
run_seqread-cold()  { DDREAD; }
prep_seqread-warm() { DDREAD; }
run_seqread-warm()  { DDREAD; }
prep_seqwrite()     { :; }
run_seqwrite()      { dd if=/dev/zero of="$MNT/newbig" bs=1M count="$BIG_MIB" conv=fsync status=none && syncs; }
prep_rm-rf()        { warm_lower; }
run_rm-rf()         { rm -rf "$MNT/rmtree" && syncs; }
prep_untar()        { cat "$LAY/payload.tar" >/dev/null; mkdir "$MNT/untar"; }
run_untar()         { tar xf "$LAY/payload.tar" -C "$MNT/untar" && syncs; }
prep_randread()     { cat "$L3/big/bigfile" >/dev/null; }
run_randread()      { "$BIN/randread" "$MNT/big/bigfile" "$NRAND" >/dev/null; }

# Merged directories (MDIR, set by set_workload): an empty upper part and three
# lower parts. "Warm backing": the branches' own dentries and inodes of MDIR
# are in memory (stat of every entry), so the union's cost is what is timed.
warm_md() {
	local d
	for d in "$RUN/upper/$MDIR" "${LOW[@]/%//$MDIR}"; do
		find "$d" -mindepth 1 -printf '%m' >/dev/null || return 1
	done
}
list_md()  { ls -f "$MNT/$MDIR" >/dev/null; }
# Untimed, after the timed part: what this system lists (count, sha1 of the
# sorted names) goes into the table's header, one line per directory.
check_md() {
	local names
	names=$(ls -f "$MNT/$MDIR" | LC_ALL=C sort) || return 1
	printf '%s\t%s\t%s\t%s\n' "${MDIR##*/}" "$CUR_SYS" "$(printf '%s\n' "$names" | wc -l)" \
		"$(printf '%s\n' "$names" | sha1sum | cut -c1-12)" >>"$RUN/listings.tsv"
}
# readdir-first: the first listing after a fresh mount (unionmount: writes
# the fallthrus). readdir-again: NLIST more, each a new opendir (the kernel may
# answer from its readdir cache). readdir-dropped: NLIST more, each after
# drop_caches and re-warming the backing directories (untimed), so the
# daemon / overlayfs must produce the listing again; self-timed (SELFTIME:
# only the ls calls count). neglookup: NNEG fstatat of distinct absent
# names after one listing; the same names were asked of the branches first
# (their negative dentries are warm; the union's are not).
prep_ft_first()    { warm_md; }
run_ft_first()     { list_md; }
prep_ft_again()    { warm_md && list_md; }
run_ft_again()     { local i; for i in $(seq "$NLIST"); do list_md || return 1; done; }
prep_ft_dropped()  { warm_md && list_md; }
run_ft_dropped()   {
	local i t0 sum=0
	for i in $(seq "$NLIST"); do
		drop_caches
		warm_md || return 1
		ls -f "$RUN/upper/$MDIR" >/dev/null          # ls itself back in the page cache
		stat "$MNT/$MDIR" >/dev/null || return 1   # the lookup is not timed
		t0=$EPOCHREALTIME
		list_md || return 1
		sum=$(awk -v s="$sum" -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.6f", s + b - a }')
	done
	echo "$sum" >"$SELFTIME"
}
prep_ft_neg()      {
	local d
	warm_md && list_md || return 1
	for d in "$RUN/upper/$MDIR" "${LOW[@]/%//$MDIR}"; do "$BIN/negstat" "$d" "$NNEG" >/dev/null || return 1; done
}
run_ft_neg()       { "$BIN/negstat" "$MNT/$MDIR" "$NNEG" >/dev/null; }
for z in $FT_SIZES; do
	eval "prep_readdir-first-$z() { prep_ft_first; }; run_readdir-first-$z() { run_ft_first; }; post_readdir-first-$z() { check_md; }
	      prep_readdir-again-$z() { prep_ft_again; }; run_readdir-again-$z() { run_ft_again; }; post_readdir-again-$z() { check_md; }
	      prep_readdir-dropped-$z() { prep_ft_dropped; }; run_readdir-dropped-$z() { run_ft_dropped; }; post_readdir-dropped-$z() { check_md; }
	      prep_neglookup-$z() { prep_ft_neg; }; run_neglookup-$z() { run_ft_neg; }"
done

# ---- the run ------------------------------------------------------------------
RAW=$BASE/results/raw-$(date +%Y%m%d-%H%M%S).tsv
printf 'workload\tsystem\trep\tseconds\trc\tvmhwm_kb\tdaemon_cpu_s\n' >"$RAW"
rm -f "$RUN"/count.* "$RUN/listings.tsv"
SELFTIME=$RUN/selftime
START=$EPOCHREALTIME
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
say "layers $LAY, $REPS reps, systems ${SYS[*]}, log $LOG"
for w in $WORKLOADS; do
	set_workload "$w"
	for rep in $(seq "$REPS"); do
		for CUR_SYS in "${SYS[@]}"; do
			log "== $w rep $rep $CUR_SYS"
			if ! mount_sys "$CUR_SYS"; then
				printf '%s\t%s\t%s\tNA\tmount\t-\t-\n' "$w" "$CUR_SYS" "$rep" >>"$RAW"
				say "$w $CUR_SYS rep $rep: mount FAILED"
				umount_sys
				continue
			fi
			"prep_$w" >>"$LOG" 2>&1 || log "  preparation exited $?"
			rm -f "$SELFTIME"
			c0=$(daemon_cpu)
			t0=$EPOCHREALTIME
			"run_$w" >>"$LOG" 2>&1
			rc=$?
			t1=$EPOCHREALTIME
			c1=$(daemon_cpu)
			DCPU=-
			[ "$c0" = - ] || [ -z "$c1" ] || [ "$c1" = - ] ||
				DCPU=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
			if [ "$rc" = 0 ] && declare -F "post_$w" >/dev/null; then
				"post_$w" >>"$LOG" 2>&1 || log "  post-check exited $?"
			fi
			umount_sys
			if [ -s "$SELFTIME" ]; then
				secs=$(awk '{ printf "%.4f", $1 }' "$SELFTIME")
			else
				secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
			fi
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$CUR_SYS" "$rep" "$secs" "$rc" "$HWM" "$DCPU" >>"$RAW"
			log "  $secs s rc=$rc hwm=$HWM cpu=$DCPU"
			[ "$rc" = 0 ] || say "$w $CUR_SYS rep $rep: workload exited $rc (see $LOG)"
		done
	done
	say "done $w"
done
rm -rf "$RUN/upper" "$RUN/work"
ELAPSED=$(awk -v a="$START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ---- the table ----------------------------------------------------------------
COUNTS=""
for s in "${SYS[@]}"; do
	[ -f "$RUN/count.$s" ] && COUNTS+="$s $(cat "$RUN/count.$s"), "
done
rm -f "$RUN"/count.*
LISTINGS=""
if [ -s "$RUN/listings.tsv" ]; then
	LISTINGS=$(python3 - "$RUN/listings.tsv" "${SYS[@]}" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
systems = sys.argv[2:]
out = []
for d in sorted({r[0] for r in rows}, key=lambda d: int(d[1:])):
    seen = {}
    for s in systems:
        vals = sorted({(int(r[2]) - 2, r[3]) for r in rows if r[0] == d and r[1] == s})
        if vals:
            seen.setdefault(tuple(vals), []).append(s)
    parts = []
    for vals, ss in seen.items():
        v = " / ".join("%d names (sha1 %s)" % x for x in vals)
        parts.append("%s: %s" % (" = ".join(ss), v))
    out.append("  - %s: %s" % (d, "; ".join(parts)))
print("\n".join(out))
PY
)
fi
rm -f "$RUN/listings.tsv"
MD=${RAW%.tsv}.md
{
	echo "# unionmount benchmark ($SCALE scale$([ $QUICK = 1 ] && echo ', --quick'))"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); run took ${ELAPSED} s"
	echo "- machine: $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; layers on $FSTYPE ($LAY)"
	# unionmount's default (uring=auto) takes FUSE over io_uring only
	# where the kernel offers it: say which transport the run measured.
	echo "- FUSE over io_uring offered (fuse enable_uring): $(cat /sys/module/fuse/parameters/enable_uring 2>/dev/null || echo "no such parameter")"
	echo "- commit: $COMMIT${UM_BIN:+; $("$UM_BIN" --version 2>&1 | head -1)}"
	echo "- peers: $(fuse-overlayfs --version 2>&1 | grep -m1 "^fuse-overlayfs"); $(unionfs --version 2>&1 | grep -m1 unionfs-fuse)"
	echo "- reps: $REPS per system, interleaved (${SYS[*]}), fresh upper + mount each time"
	echo "- load average (1 min) at the start and the end of the run: $LOAD0 / $(cut -d' ' -f1 /proc/loadavg)"
	[ -n "$COUNTS" ] && echo "- entries seen by \`find MNT\` (sanity; unionfs-fuse does not understand overlay whiteouts): ${COUNTS%, }"
	[ -n "$LISTINGS" ] && printf '%s\n%s\n' "- merged directories as each system lists them after the timed part (names without . and ..; systems with the same listing joined by =):" "$LISTINGS"
	echo
	python3 - "$RAW" "${SYS[@]}" <<'PY'
import sys, statistics
raw, systems = sys.argv[1], sys.argv[2:]
rows = [l.rstrip("\n").split("\t") for l in open(raw)][1:]
order, data, rss, cpu = [], {}, {}, {}
for w, s, rep, secs, rc, hwm, dcpu in rows:
    if w not in order:
        order.append(w)
    d = data.setdefault((w, s), {"ok": [], "fail": 0})
    if rc == "0":
        d["ok"].append(float(secs))
    else:
        d["fail"] += 1
    if dcpu not in ("-", "") and rc == "0":
        cpu.setdefault((w, s), []).append(float(dcpu))
    if hwm not in ("-", ""):
        rss[s] = max(rss.get(s, 0), int(hwm))
        rss[(w, s)] = max(rss.get((w, s), 0), int(hwm))
print("| workload | system | median s | min-max s | ratio to kernel | daemon CPU s | daemon peak RSS MiB |")
print("|---|---|---:|---:|---:|---:|---:|")
for w in order:
    k = data.get((w, "kernel"), {"ok": []})["ok"]
    km = statistics.median(k) if k else None
    for s in systems:
        d = data.get((w, s))
        if not d:
            continue
        ok = d["ok"]
        fail = " (%d failed)" % d["fail"] if d["fail"] else ""
        if ok:
            m = statistics.median(ok)
            med = "%.3f%s" % (m, fail)
            spread = "%.3f-%.3f" % (min(ok), max(ok))
            ratio = "x%.2f" % (m / km) if km else "n/a"
        else:
            med, spread, ratio = "FAILED%s" % fail, "-", "-"
        r = rss.get((w, s))
        c = cpu.get((w, s))
        print("| %s | %s | %s | %s | %s | %s | %s |" % (w, s, med, spread, ratio,
              "%.2f" % statistics.median(c) if c else "-",
              "%.1f" % (r / 1024) if r else "-"))
print()
print("Peak RSS (VmHWM) of each FUSE daemon over the whole run: " +
      ", ".join("%s %.1f MiB" % (s, rss[s] / 1024) for s in systems if s in rss))
PY
} >"$MD"
cat "$MD"
[ -n "$OUT" ] && cp "$MD" "$OUT"
echo "raw: $RAW  table: $MD  log: $LOG" >&2
