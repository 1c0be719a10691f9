#!/usr/bin/env bash
# t_dirfds: directories whose fds the daemon closed while the kernel still
# holds them (dirfds.h: past -o max_dirfds, or half the open-files limit,
# unused directories' fds close and are reopened by file handle on the
# next request that needs them).
#
# 1. Differential, with -o max_dirfds=4 on the union side: a tree of 40
#    merged directories (three lowers and upper, nested) is walked, so
#    nearly every directory is closed by the time it is used again; then
#    every kind of change lands in directories closed meanwhile (create,
#    mkdir, unlink, rmdir, whiteouts, copy-up of a file two closed levels
#    down, hard links, renames of files and of merged directories between
#    closed directories, xattrs, chmod, an opaque directory over a
#    whiteout), each answer and the whole tree compared with kernel
#    overlayfs, before and after a remount.
# 2. (daemon only) The fds are really closed: after the walk the daemon
#    holds a few dozen fds, not the 200+ the directories' parts need,
#    and its log has no error.
# 3. (daemon only) A directory whose fds were closed and that is then
#    renamed by the union is reopened where it went: its files read back.
# 4. (daemon only) A directory removed from upper behind the union's back
#    while closed: its next use fails with EIO and a log line naming the
#    cause; the daemon lives and serves everything else.
# 5. (daemon only) The daemon's open-files limit lowered with prlimit
#    while mounted (root may raise its own), no max_dirfds: the mark
#    follows the limit within a second, and a walk that needs 450+
#    directory fds succeeds (the old daemon found none of the 450 files:
#    EMFILE), and once idle the daemon holds at most 170 fds.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon

UM_EXTRA_OPTS="${UM_EXTRA_OPTS:+$UM_EXTRA_OPTS,}max_dirfds=4"

build() {
	local r=$1 i
	for i in $(seq 40); do
		mkf "$r/l3" "d$i/deep/er/f3" "l3-$i"
		mkf "$r/l2" "d$i/deep/f2" "l2-$i"
		mkf "$r/l1" "d$i/f1" "l1-$i"
		mkd "$r/l2" "d$i/deep/er"
	done
	mkf "$r/u" d1/up "upper"
	mkf "$r/l3" hl/a "linked"
	mkf "$r/l3" gone/x "x"
	return 0
}

# The daemon's fd count and its log, for the parts below.
fds_of() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

diff_setup build
dcmp "walked once"
UNPID=${_pid_of[$T/un/mnt]:-}
# Let the closing thread finish its rounds: everything is idle now.
sleep 1.5
if ! selftest; then
	n=$(fds_of "$UNPID")
	# 123 directories with up to 4 parts each are known to the kernel.
	if [ "$n" -lt 80 ]; then pass "after the walk the daemon holds $n fds (< 80)"; else fail "after the walk the daemon holds $n fds (want < 80: nothing closed?)"; fi
fi

log "changes in closed directories"
dop "create in a closed dir" OK create d5/new 0644
dop "mkdir two levels down" OK mkdir d6/deep/nd 0755
dop "unlink a lower file" OK unlink d7/f1
dop "unlink deeper" OK unlink d7/deep/er/f3
dop "rmdir the emptied dir" OK rmdir d7/deep/er
dop "its name is gone" ENOENT stat d7/deep/er
dop "mkdir over the whiteout" OK mkdir d7/deep/er 0700
dop "it is empty (opaque)" OK readdir d7/deep/er
dop "copy-up two closed levels down" OK append d8/deep/er/f3 "-more"
dop "reads back" "OK l3-8-more" read d8/deep/er/f3
dop "hard link across closed dirs" OK link hl/a d9/deep/a-link
dop "the link reads the object" "OK linked" read d9/deep/a-link
dop "rename a file between closed dirs" OK rename d10/deep/f2 d11/deep/er/moved
dop "rename a merged dir into another" OK rename d12/deep d13/deep/er/d12deep
dop "its lower files follow" "OK l3-12" read d13/deep/er/d12deep/er/f3
dop "exchange two merged dirs" OK rename d14 d15 exchange
dop "one side" "OK l1-14" read d15/f1
dop "other side" "OK l1-15" read d14/f1
dop "setxattr on a closed dir" OK setxattr d16/deep user.k v
dop "getxattr" "OK v" getxattr d16/deep user.k
dop "chmod a closed dir" OK chmod d17/deep/er 0711
dop "stat it" "~OK d 0711 .*" stat d17/deep/er
dop "rmdir a non-empty merged dir" ENOTEMPTY rmdir d18
dop "readdir a merged dir" "OK deep/d,f1/f" readdir d19
dcmp "after the changes"
sleep 1.5
dcmp "after the changes, closed again"
dremount "after remount"

if ! selftest; then
	log "the daemon's side"
	MNT=$T/un/mnt
	if [ "$(grep -ciE 'bad file descriptor|EBADF|internal error' "${_log_of[$MNT]}")" -eq 0 ]; then
		pass "no fd error in the log"
	else
		fail "fd errors in the log:"
		daemon_log "$MNT"
	fi

	# 3. Renamed by the union while closed.
	t ls -R "$MNT" >/dev/null
	sleep 1.5
	t mv "$MNT/d20" "$MNT/d21/deep/d20moved" || fail "mv of a closed directory failed"
	sleep 1.5
	expect_eq "a moved closed dir reopens where it went" "l3-20" "$(t cat "$MNT/d21/deep/d20moved/deep/er/f3")"
	expect_eq "and lists" "deep f1" "$(t ls "$MNT/d21/deep/d20moved" | tr '\n' ' ' | sed 's/ $//')"

	# 4. Removed behind the union's back while closed. A process sitting
	# in the directory keeps the kernel's inode of it, whatever the
	# kernel does with names meanwhile.
	mkdir "$T/un/u/solo" && echo s >"$T/un/u/solo/file"
	(cd "$MNT/solo" && exec sleep 120) &
	PINPID=$!
	_pids+=("$PINPID")
	sleep 0.5
	t ls -R "$MNT" >/dev/null
	sleep 1.5
	rm -r "$T/un/u/solo"
	mkdir "$T/un/u/solo" # same name, another directory
	out=$(t ls "/proc/$PINPID/cwd/" 2>&1)
	kill "$PINPID"
	expect_match "a directory replaced behind the union's back fails" "Input/output error|No such file" "$out"
	expect_match "with a log line saying so" "gone or was replaced behind the union's back" \
		"$(cat "${_log_of[$MNT]}")"
	if daemon_alive "$MNT"; then pass "the daemon lives"; else fail "the daemon died"; fi
	expect_eq "the rest is served" "l1-23" "$(t cat "$MNT/d23/f1")"
	_dumount
	_dmount
	_dumount

	# 5. The open-files limit lowered under a running daemon.
	UM_EXTRA_OPTS=${UM_EXTRA_OPTS%max_dirfds=4}
	UM_EXTRA_OPTS=${UM_EXTRA_OPTS%,}
	mkdir -p "$T/fd/l1" "$T/fd/l2" "$T/fd/l3" "$T/fd/u" "$T/fd/w" "$T/fd/mnt"
	for i in $(seq 150); do
		for l in l1 l2 l3; do mkdir -p "$T/fd/$l/d$i" && : >"$T/fd/$l/d$i/$l"; done
	done
	if um_mount "$T/fd/mnt" "upperdir=$T/fd/u,workdir=$T/fd/w,$(lowerdir_opt "$T/fd/l1" "$T/fd/l2" "$T/fd/l3")"; then
		FDPID=${_pid_of[$T/fd/mnt]}
		FDHARD=$(prlimit --pid "$FDPID" --nofile --output HARD --noheadings)
		prlimit --pid "$FDPID" --nofile="256:$FDHARD" || fail "prlimit failed"
		sleep 1.5
		echo 2 >/proc/sys/vm/drop_caches
		out=$(t find "$T/fd/mnt" -type f 2>&1)
		expect_eq "a walk of 150 merged dirs under a 256-fd limit sees every file" 450 \
			"$(grep -c "^$T/fd/mnt/d" <<<"$out")"
		expect_eq "and no error" "" "$(grep -v "^$T/fd/mnt/d" <<<"$out")"
		# The limit itself caps the count at 256; during the walk it may
		# reach 1.5 times the mark (128) before requests close fds
		# themselves. Once idle it is at most the mark (the thread looks
		# every second), plus the daemon's own ~25.
		sleep 2
		n=$(fds_of "$FDPID")
		if [ "$n" -le 170 ]; then pass "the daemon holds $n fds once idle (<= 170)"; else fail "the daemon holds $n fds once idle (> 170)"; fi
		um_umount "$T/fd/mnt"
	fi
fi

finish
