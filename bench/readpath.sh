#!/usr/bin/env bash
# What a READ costs on its way through the daemon, without the disk: the
# 1 GiB lower file of bench/mklayers.py's layers is put in the page cache,
# then read through each system with O_DIRECT (dd iflag=direct bs=1M), so
# every MiB is one READ request the daemon answers from the cached lower
# file, and the FUSE page cache plays no part. The systems are unionmount
# builds or options, given as NAME:BINARY[:OPTIONS], mounted once each
# over the same layers and read in rotated order (REPS rounds of each).
# Prints, per system, the sorted wall times and the daemon's CPU ticks
# (utime+stime of all its threads) for each read. Kernel overlayfs is not
# a system here: O_DIRECT there reads the block device. With --warm the
# reads are plain ones after one read per mount has filled its FUSE page
# cache (no READ reaches a daemon; "fo" as BINARY is fuse-overlayfs).
# Needs root; see bench/README.md, "READ into the ring slot".
set -uo pipefail

BASE=${UM_BENCH_BASE:-/var/tmp/um-bench}
REPS=4
WARM=0

usage() {
	cat <<USAGE
usage: bench/readpath.sh [--base DIR] [--reps N] [--warm] NAME:BINARY[:OPTS] ...
  --base DIR   as for bench/run.sh (default /var/tmp/um-bench, or \$UM_BENCH_BASE);
               the full-scale layers must exist (bench/run.sh --prepare)
  --reps N     reads of each system (default 4)
  --warm       cached reads instead of O_DIRECT ones
  NAME:BINARY[:OPTS]
               a unionmount binary and its extra -o options, e.g.
               new:/tmp/rel/src/unionmount off:/tmp/rel/src/unionmount:uring=off
USAGE
}
while [ $# -gt 0 ]; do
	case $1 in
	--base) BASE=$2; shift ;;
	--reps) REPS=$2; shift ;;
	--warm) WARM=1 ;;
	-h|--help) usage; exit 0 ;;
	-*) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
LAY=$BASE/layers-full
[ -f "$LAY/l3/big/bigfile" ] || { echo "no layers in $LAY: run bench/run.sh --prepare --base $BASE" >&2; exit 2; }
LOWER=$LAY/l1:$LAY/l2:$LAY/l3

RUN=$(mktemp -d "$BASE/readpath.XXXXXX")
NAMES=() PIDS=() MNTS=()
cleanup() {
	local m
	for m in "${MNTS[@]}"; do mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }; done
	wait "${PIDS[@]}" 2>/dev/null
	rm -rf "$RUN"
}
trap cleanup EXIT

for spec in "$@"; do
	IFS=: read -r name bin opts <<<"$spec"
	mkdir -p "$RUN/$name/u" "$RUN/$name/w" "$RUN/$name/m"
	if [ "$bin" = fo ]; then
		fuse-overlayfs -f -o "lowerdir=$LOWER,upperdir=$RUN/$name/u,workdir=$RUN/$name/w" \
			"$RUN/$name/m" 2>>"$RUN/$name.log" &
	else
		[ -x "$bin" ] || { echo "$spec: no binary $bin" >&2; exit 2; }
		"$bin" -f "$RUN/$name/m" -o "lowerdir=$LOWER,upperdir=$RUN/$name/u,workdir=$RUN/$name/w${opts:+,$opts}" \
			2>>"$RUN/$name.log" &
	fi
	PIDS+=($!) NAMES+=("$name") MNTS+=("$RUN/$name/m")
done
for m in "${MNTS[@]}"; do
	for _ in $(seq 50); do mountpoint -q "$m" && break; sleep 0.1; done
	mountpoint -q "$m" || { echo "$m: not mounted" >&2; exit 1; }
done

# ticks PID: the daemon's CPU so far, all threads, in clock ticks.
ticks() {
	local t=0 f
	for f in /proc/"$1"/task/*/stat; do
		t=$((t + $(awk '{ print $14 + $15 }' "$f" 2>/dev/null || echo 0)))
	done
	echo "$t"
}

cat "$LAY/l3/big/bigfile" >/dev/null
FLAG=iflag=direct
if [ "$WARM" = 1 ]; then
	FLAG=
	for m in "${MNTS[@]}"; do cat "$m/big/bigfile" >/dev/null; done
fi
OUTF=$RUN/times
k=${#NAMES[@]}
for r in $(seq 1 "$REPS"); do
	for i in $(seq 0 $((k - 1))); do
		j=$(((i + r) % k))
		c0=$(ticks "${PIDS[$j]}")
		s=$(date +%s%N)
		dd if="${MNTS[$j]}/big/bigfile" of=/dev/null bs=1M $FLAG status=none ||
			{ echo "${NAMES[$j]}: the read failed" >&2; exit 1; }
		e=$(date +%s%N)
		c1=$(ticks "${PIDS[$j]}")
		echo "${NAMES[$j]} $(((e - s) / 1000000)) $((c1 - c0))" >>"$OUTF"
	done
done
echo "| system | ms per 1 GiB read (sorted) | daemon CPU ticks ($(getconf CLK_TCK)/s) |"
echo "|---|---|---|"
for n in "${NAMES[@]}"; do
	echo "| $n | $(awk -v n="$n" '$1 == n { print $2 }' "$OUTF" | sort -n | xargs) | $(awk -v n="$n" '$1 == n { print $3 }' "$OUTF" | sort -n | xargs) |"
done
