#!/usr/bin/env bash
# t_copyup_crash: a copy-up interrupted by kill -9 of the daemon leaves
# either the lower version or the whole upper copy, never a partial file;
# the leftovers in WORKDIR/unionmount/work are purged at the next mount.
#
# A 400 MiB lower file (real data everywhere: one random MiB repeated, so
# a zero-filled or cut-off copy cannot match). Three rounds, each with a
# fresh upper and workdir: the page cache is dropped, "printf APPENDED >>"
# through the union starts in the background, and after a random delay
# (0.05-0.2 s, 0.2-0.5 s, 0.5-1 s) the daemon gets SIGKILL; the dead mount
# is lazily unmounted (fusermount3 -uz) and the same branches are mounted
# again. Then the file through the union is wholly the lower or wholly the
# lower + "APPENDED" (cmp), the upper file is absent or one of those two,
# and the daemon's work dir is empty.
# Self-test: kernel overlayfs has no daemon to kill: each round lets the
# append finish, unmounts normally and expects the new content.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon

L1=$T/l1 L2=$T/l2 M=$T/mnt
mkdir -p "$L1" "$L2" "$M"
SZ=$((400 * 1024 * 1024))

head -c 1M /dev/urandom >"$T/chunk"
for i in $(seq 400); do cat "$T/chunk"; done >"$L2/big"
rm -f "$T/chunk"
mkf "$L1" small "small
"
[ "$(stat -c %s "$L2/big")" == $SZ ] || die "cannot write the 400 MiB lower file"
# Allocation of a just-written file settles at writeback (delalloc):
# before that its block count may still change without any write.
sync -f "$L2/big"
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"

# whole FILE: "old", "new" (lower + APPENDED) or "partial"
whole() {
	local f=$1 s
	s=$(t stat -c %s "$f" 2>&1)
	if [ "$s" == $SZ ] && tl 60 cmp -s "$L2/big" "$f"; then
		echo old
	elif [ "$s" == $((SZ + 8)) ] && tl 60 cmp -s <(cat "$L2/big"; printf APPENDED) "$f"; then
		echo new
	else
		echo "partial (size $s)"
	fi
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

round=0
for window in 0.05-0.2 0.2-0.5 0.5-1.0; do
	round=$((round + 1))
	U=$T/upper$round W=$T/work$round
	mkdir -p "$U" "$W"
	OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
	um_mount "$M" "$OPTS" || continue
	drop_caches
	delay=$(awk -v w="$window" -v s="$RANDOM" 'BEGIN { split(w, a, "-"); srand(s); printf "%.3f", a[1] + rand() * (a[2] - a[1]) }')
	t sh -c 'printf APPENDED >>"$1"' sh "$M/big" 2>"$T/append.$round.err" &
	apid=$!
	if selftest; then
		wait "$apid"
		arc=$?
		log "round $round: self-test, no kill; append exit status $arc"
		um_umount "$M"
	else
		sleep "$delay"
		pid=${_pid_of[$M]:-}
		if [ -n "$pid" ] && _is_our_daemon "$pid" "$M"; then
			kill -KILL "$pid"
			log "round $round: daemon $pid killed after ${delay}s (bash reports it as Killed: expected)"
		else
			fail "round $round: the daemon for $M is not running before the kill"
		fi
		timeout 10 fusermount3 -uz "$M" 2>/dev/null || timeout 10 umount -l "$M"
		_forget_mount "$M"
		if [ -n "$pid" ]; then
			wait "$pid" 2>/dev/null
			unset '_pid_of[$M]'
		fi
		wait "$apid"
		arc=$?
		log "round $round: append exit status $arc ($(head -c 200 "$T/append.$round.err"))"
	fi
	_is_mounted "$M" && die "round $round: $M still mounted after the lazy unmount"

	um_mount "$M" "$OPTS" || continue
	state=$(whole "$M/big")
	if selftest; then
		expect_eq "round $round: after the finished append and a remount the file is wholly new" new "$state"
	elif [[ $state == old || $state == new ]]; then
		pass "round $round: after kill -9 at ${delay}s and a remount the file is wholly $state"
	else
		fail "round $round: after kill -9 at ${delay}s and a remount: expected wholly old or new, got $state"
	fi
	if [ -e "$U/big" ]; then
		ustate=$(whole "$U/big")
		if [[ $ustate == old || $ustate == new ]]; then
			pass "round $round: the upper copy is whole ($ustate)"
		else
			fail "round $round: the upper copy is not whole: $ustate"
		fi
	else
		pass "round $round: no upper copy (the lower version stands)"
	fi
	if ! selftest; then
		expect_eq "round $round: WORKDIR/unionmount/work is empty after the remount" "" \
			"$(ls -A "$W/unionmount/work" 2>&1)"
	fi
	expect_eq "round $round: the other file still reads" "small" "$(t cat "$M/small")"
	# The union still works for copy-ups after the crash.
	if t sh -c 'echo more >>"$1"' sh "$M/small"; then
		pass "round $round: a copy-up after the remount works"
	else
		fail "round $round: a copy-up after the remount failed"
	fi
	um_umount "$M"
	rm -rf --one-file-system "$U" "$W"
done

snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower l1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "lower l2 unchanged" "$T/l2.before" "$T/l2.after"

finish
