#!/usr/bin/env bash
# t_fsx: data integrity under load. The helper fsx (fsx.c) runs random,
# seed-determined reads, writes (also past EOF: holes), truncates (grow
# and shrink, by descriptor and by path), fallocates, mmap reads and
# MAP_SHARED mmap writes, fsyncs and reopens on one file and checks every
# byte read and the size after every operation against its own model.
#
# Six fsx processes run at once, each on its own file:
#   a  lower (bottom branch), sparse, 200,000 bytes, grows to 1 MiB
#   b  lower (top branch), 40,001 bytes, over another b in the bottom one
#   c  lower, empty, three lower-only directories deep (its parents are
#      copied up while the others copy up too)
#   d  upper, over a lower d that must never show
#   e  lower, with a second process (fsx -R) that opens it O_RDONLY before
#      the first write and checks through that one descriptor, with pread
#      and fresh mappings, after every operation: the man page (COPY-UP)
#      and DESIGN.md promise that a descriptor opened on the lower file
#      before the copy-up reads the copy afterwards (kernel overlayfs has
#      done so for read(2) since 4.19, which the self-test checks)
#   f  lower, with O_DIRECT reads and writes too (fsx -Z: 4 KiB-aligned
#      offsets, lengths and buffers), when kernel overlayfs takes them
# fsx holds only an O_RDONLY descriptor until its first change, so each
# lower file is copied up mid-run with a reader open (by the first open
# for writing or truncate by path, whichever comes first in the sequence).
#
# mmap through such a descriptor: the union's page cache belongs to the
# object, so a mapping made after the copy-up shows the copy too, and
# fsx checks it. Kernel overlayfs maps the file the descriptor was opened
# on, the lower one (overlayfs.rst, "Non-standard behavior"): stale data,
# SIGBUS past its old size. The self-test passes fsx -k, which then maps
# through a descriptor of its own, opened after the change.
#
# fallocate: the modes (plain, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE,
# ZERO_RANGE, ZERO_RANGE|KEEP_SIZE) kernel overlayfs takes on the upper
# filesystem (probed with "fsx -p" on a copied-up file) are the reference:
# through the union each of them must work every time, and any other mode
# must fail with EOPNOTSUPP every time and change nothing. On ext4 all
# five work; round 3 puts the upper on tmpfs, which refuses ZERO_RANGE,
# so the union must pass that EOPNOTSUPP through as kernel overlayfs does.
#
# Round 1 (70% of the operations) does the copy-ups. Then the union, and
# the upper branch on disk, hold exactly the models' final bytes (fsx -w
# writes them to a reference file), and again after an unmount and a
# mount with cache_timeout=0. Round 2 (20%) runs six new sequences on the
# files as round 1 left them, all in upper now, with cache_timeout=0 so
# that every size check asks the daemon, not the kernel's attribute cache;
# then the same content checks after a remount. Round 3 (10%): two more
# lower files (one with the reader pair) in a second union over the same
# lowers with its upper on tmpfs, the same checks. The lowers are
# byte-for-byte unchanged; (unionmount only) the daemons logged nothing
# but their mount and unmount lines and their work dirs are empty.
#
# FSX_OPS: total operations over the rounds (default 40000, about 12 s);
# FSX_OPS=1000000 is the long run. FSX_SEED: the first seed (default 1);
# round 1 takes FSX_SEED..FSX_SEED+5, round 2 the next six, round 3 the
# next two. A failure prints
# the seed, the operation number, the first bad offset and the last 30
# operations; the line "command:" replays it on a fresh union.
# FSX_ODIRECT=0 runs f without -Z.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
require_overlay

# The exit trap stops the fsx processes still running (a failed check
# or a signal in the middle of a round), then runs lib.sh's cleanup.
FSX_PIDS=()
# shellcheck disable=SC2317 # reached through the trap
_fsx_exit() {
	local rc=$? p
	for p in "${FSX_PIDS[@]}"; do
		# Only our own children: a PID not reaped yet cannot be reused.
		[ "$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null)" == "$_main_pid" ] &&
			kill -TERM "$p" 2>/dev/null
	done
	for p in "${FSX_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	(exit "$rc")
	_cleanup
}
trap _fsx_exit EXIT

FSX=$HELPERS/fsx
if [ ! -x "$FSX" ]; then
	FSX=$T/fsx
	cc -O2 -Wall -o "$FSX" "$LIB_DIR/fsx.c" || die "cannot build helper fsx"
fi

FSX_OPS=${FSX_OPS:-40000}
FSX_SEED=${FSX_SEED:-1}
if ! [[ $FSX_OPS =~ ^[0-9]+$ ]] || [ "$FSX_OPS" -lt 5 ]; then
	die "FSX_OPS must be a number >= 5"
fi
[[ $FSX_SEED =~ ^[0-9]+$ ]] || die "FSX_SEED must be a number"
NAMES=(a b c d e f)

U=$T/upper W=$T/work L1=$T/l1 L2=$T/l2 M=$T/mnt
mkdir -p "$U" "$W" "$L1" "$L2" "$M" "$T/init"

# Where each file is in the union, and fsx's extra options for it.
declare -A REL=([a]=lo/a [b]=lo/b [c]=deep/x/y/c [d]=up/d [e]=pair/e [f]=lo/f [g]=tm/g [h]=tm/h)
declare -A XOPT=([a]="-l 1048576 -o 131072" [b]="" [c]="" [d]="" [e]="-R" [f]="-Z" [g]="" [h]="-R")

mkd "$L2" lo
mkd "$L1" lo
"$FSX" -G 200000 "$L2/lo/a" || die "fsx -G"
"$FSX" -G 40001 "$L1/lo/b" || die "fsx -G"
mkf "$L2" lo/b "the bottom b, hidden by the top one
"
mkf "$L2" deep/x/y/c ""
mkf "$L2" up/d "the lower d, hidden by the upper one
"
mkd "$U" up
"$FSX" -G 100000 "$U/up/d" || die "fsx -G"
mkd "$L2" pair
"$FSX" -G 131072 "$L2/pair/e" || die "fsx -G"
"$FSX" -G 70000 "$L2/lo/f" || die "fsx -G"
mkd "$L2" tm
"$FSX" -G 90000 "$L2/tm/g" || die "fsx -G"
"$FSX" -G 33333 "$L2/tm/h" || die "fsx -G"
for n in "${NAMES[@]}" g h; do
	for b in "$U" "$L1" "$L2"; do
		if [ -f "$b/${REL[$n]}" ]; then
			cp --sparse=always "$b/${REL[$n]}" "$T/init/$n" || die "cp"
			break
		fi
	done
done

# The reference for fallocate: kernel overlayfs on the same kind of upper,
# on a lower file that the probe copies up.
mkdir -p "$T/kref/l" "$T/kref/u" "$T/kref/w"
"$FSX" -G 65536 "$T/kref/l/p" || die "fsx -G"
ovl_rw_mount "$T/kref/m" "$T/kref/u" "$T/kref/w" "$T/kref/l"
KPROBE=$(t "$FSX" -p "$T/kref/m/p" 2>&1)
ovl_umount "$T/kref/m"
UPROBE=$(t "$FSX" -p "$T/probe" 2>&1)
rm -f "$T/probe"
expect_match "fallocate modes and O_DIRECT kernel overlayfs takes (the reference)" \
	'^([a-z,]+|none) (odirect|no-odirect)$' "$KPROBE"
[ "$UPROBE" == "$KPROBE" ] ||
	log "the upper filesystem itself takes '$UPROBE', kernel overlayfs '$KPROBE': kernel overlayfs is the reference"
[[ $KPROBE =~ ^([a-z,]+|none)\ (odirect|no-odirect)$ ]] || finish
MODES=${KPROBE% *}

# The same probe with the upper on tmpfs, for round 3.
TU=$T/tupper
kmount tmpfs "$TU" size=256m,mode=0755
mkdir -p "$TU/ku" "$TU/kw" "$TU/u" "$TU/w"
ovl_rw_mount "$T/kref/m" "$TU/ku" "$TU/kw" "$T/kref/l"
KPROBE3=$(t "$FSX" -p "$T/kref/m/p" 2>&1)
ovl_umount "$T/kref/m"
expect_match "fallocate modes and O_DIRECT kernel overlayfs takes with a tmpfs upper" \
	'^([a-z,]+|none) (odirect|no-odirect)$' "$KPROBE3"
MODES3=${KPROBE3% *}
if [ "${KPROBE#* }" != odirect ]; then
	log "kernel overlayfs refuses O_DIRECT here: f runs without -Z"
	XOPT[f]=""
elif [ "${FSX_ODIRECT:-1}" == 0 ]; then
	log "FSX_ODIRECT=0: f runs without -Z"
	XOPT[f]=""
fi

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"
KOPT=
selftest && KOPT=-k

# run_round ROUND FIRSTSEED OPS FROM TO: one fsx per file at once, each
# starting from $T/FROM/NAME (its first content) and writing its model's
# final bytes to $T/TO/NAME; one check per process.
run_round() {
	local round=$1 seed=$2 ops=$3 from=$4 to=$5 n rc what start end
	local limit=$((120 + ops / 50)) # a hang guard only: ASan, two shared cores
	local -A pid=() sd=()
	mkdir -p "$T/$to"
	log "round $round: ${#NAMES[@]} processes x $ops operations, seeds $seed..$((seed + ${#NAMES[@]} - 1))"
	start=$(date +%s.%N)
	for n in "${NAMES[@]}"; do
		sd[$n]=$seed
		seed=$((seed + 1))
		[ -f "$T/$from/$n" ] || continue # failed before: reported there
		# timeout itself, not tl: $! must be the process that passes
		# the exit trap's SIGTERM on to fsx, not a subshell around it.
		# shellcheck disable=SC2086 # XOPT holds separate options
		timeout -k 5 "$limit" "$FSX" -s "${sd[$n]}" -N "$ops" -f "$MODES" ${XOPT[$n]} $KOPT \
			-i "$T/$from/$n" -w "$T/$to/$n" "$M/${REL[$n]}" >"$T/fsx.$round.$n.out" 2>&1 &
		pid[$n]=$!
		FSX_PIDS+=("$!")
	done
	for n in "${NAMES[@]}"; do
		[ -n "${pid[$n]:-}" ] || continue
		wait "${pid[$n]}"
		rc=$?
		what="round $round: fsx $n (${REL[$n]}, seed ${sd[$n]}, $ops operations${XOPT[$n]:+, ${XOPT[$n]}})"
		if [ $rc -eq 0 ]; then
			pass "$what: $(sed -n 's/^fsx: [^ ]* seed [0-9]*: //p' "$T/fsx.$round.$n.out")"
		else
			[ $rc -eq 124 ] && what+=": TIMEOUT after ${limit}s"
			fail "$what: exit status $rc; its output:"
			tail -n 60 "$T/fsx.$round.$n.out" | sed 's/^/     | /'
			rm -f "$T/$to/$n"
		fi
	done
	FSX_PIDS=()
	end=$(date +%s.%N)
	log "$(awk -v a="$start" -v b="$end" -v n=$((ops * ${#NAMES[@]})) \
		'BEGIN { printf "%d operations in %.1f s", n, b - a }') (per process:)"
	for n in "${NAMES[@]}"; do
		sed -n 's/^fsx:  /#   '"$n"':/p' "$T/fsx.$round.$n.out" 2>/dev/null
	done
}

# check_content LABEL REFDIR: the union holds the models' final bytes.
check_content() {
	local label=$1 ref=$2 n
	for n in "${NAMES[@]}"; do
		[ -f "$T/$ref/$n" ] || continue # its fsx failed: already reported
		if t cmp "$T/$ref/$n" "$M/${REL[$n]}"; then
			pass "$label: ${REL[$n]} through the union equals the model's final bytes"
		else
			fail "$label: ${REL[$n]} through the union differs from the model's final bytes ($T/$ref/$n)"
		fi
	done
}

# check_upper REFDIR: ... and so does the upper branch on disk.
check_upper() {
	local ref=$1 n
	for n in "${NAMES[@]}"; do
		[ -f "$T/$ref/$n" ] || continue
		if cmp "$T/$ref/$n" "$U/${REL[$n]}"; then
			pass "upper holds the model's final bytes in ${REL[$n]}"
		else
			fail "upper/${REL[$n]} differs from the model's final bytes ($T/$ref/$n)"
		fi
	done
}

# 70% of the operations in round 1 (the copy-ups), 20% in round 2 on the
# files as round 1 left them (all in upper by then), with cache_timeout=0:
# every size check and lookup reaches the daemon instead of the kernel's
# attribute cache (the self-test ignores the option); 10% in round 3 on
# the tmpfs upper.
PER1=$(((FSX_OPS * 7 / 10 + 5) / 6))
PER2=$(((FSX_OPS * 2 / 10 + 5) / 6))
PER3=$(((FSX_OPS / 10 + 1) / 2))
log "$((PER1 * 6 + PER2 * 6 + PER3 * 2)) operations; reference: $KPROBE; with a tmpfs upper: $KPROBE3"

um_mount "$M" "$OPTS" || finish
run_round 1 "$FSX_SEED" "$PER1" init ref1
check_content "round 1" ref1
check_upper ref1
um_umount "$M"
um_mount "$M" "$OPTS,cache_timeout=0" || finish
check_content "round 1, after unmount and mount" ref1
run_round 2 $((FSX_SEED + ${#NAMES[@]})) "$PER2" ref1 ref2
check_content "round 2" ref2
um_umount "$M"
um_mount "$M" "$OPTS" || finish
check_content "round 2, after unmount and mount" ref2
check_upper ref2
# fsx -Z writes O_DIRECT into files that exist; a file created with
# O_CREAT|O_DIRECT takes another path in the daemon.
if [ "${KPROBE#* }" == odirect ]; then
	head -c 16384 /dev/urandom >"$T/odnew.src"
	if t dd if="$T/odnew.src" of="$M/odnew" bs=4096 count=4 oflag=direct status=none 2>"$T/odnew.err" &&
		cmp -s "$T/odnew.src" "$M/odnew"; then
		pass "a new file written with O_CREAT|O_DIRECT holds what was written"
	else
		fail "a new file written with O_CREAT|O_DIRECT: $(head -2 "$T/odnew.err")"
	fi
	rm -f "$M/odnew"
fi
um_umount "$M"

# Round 3: the rounds' helpers work on NAMES, M, U and MODES.
M1=$M
NAMES=(g h) M=$T/mnt3 U=$TU/u MODES=$MODES3
mkdir -p "$M"
OPTS3="upperdir=$U,workdir=$TU/w,$(lowerdir_opt "$L1" "$L2")"
um_mount "$M" "$OPTS3" || finish
run_round 3 $((FSX_SEED + 12)) "$PER3" init ref3
check_content "round 3 (tmpfs upper)" ref3
check_upper ref3
um_umount "$M"
um_mount "$M" "$OPTS3" || finish
check_content "round 3 (tmpfs upper), after unmount and mount" ref3
um_umount "$M"

snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower l1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "lower l2 unchanged" "$T/l2.before" "$T/l2.after"

if ! selftest; then
	extra=$(cat "$T"/daemon.*.log | grep -v -E "^unionmount: ($M1|$M): (mounted: |unmounted$|serving requests through io_uring$)")
	expect_eq "the daemons logged only their mount and unmount lines" "" "$extra"
	for w in "$W" "$TU/w"; do
		left=$(find "$w/unionmount/work" -mindepth 1 2>/dev/null | head -5)
		if [ -d "$w/unionmount/work" ] && [ -z "$left" ]; then
			pass "$w/unionmount/work is empty after unmount"
		else
			fail "$w/unionmount/work after unmount: expected an empty dir, seen: ${left:-no such dir}"
		fi
	done
fi

finish
