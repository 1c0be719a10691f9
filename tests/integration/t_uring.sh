#!/usr/bin/env bash
# t_uring: FUSE over io_uring (-o uring=auto|off; man page, uring=).
#
# The kernel offers it only while the fuse module's enable_uring is set;
# the test sets it for each mount's INIT and puts the old value back
# right after (a connection keeps what it negotiated).
# 1. uring=auto where offered: the daemon says it serves through
#    io_uring, and a program sees what it sees through /dev/fuse: files
#    made, written past one request's size (several MiB), read back,
#    appended, renamed, removed; a 3000-entry listing; xattrs both ways
#    (value sizes asked, then read); symlinks; a lower file copied up by
#    a write. Callers on every CPU at once are all answered (the kernel
#    queues a request on its caller's CPU); more writers on one CPU than
#    the CPU has workers finish too. Requests made while the daemon is
#    stopped (SIGSTOP) are answered once it continues, and so are
#    requests made while io_uring_enter() fails with EAGAIN (injected by
#    strace). Upper holds what was written.
# 2. SIGTERM while mounted through io_uring: the daemon stops its
#    workers, unmounts and exits 0. Then the workers' class (uring_idle=):
#    normal under -f in the test's session (section 1), SCHED_IDLE for a
#    backgrounded daemon where autogroups count, and the same program
#    served; normal with uring_idle=off, in a cgroup namespace of its
#    own, and in a session it leads but shares with another process.
#    And io_uring offered in INIT's request but no longer when the reply
#    comes (enable_uring cleared meanwhile): served through /dev/fuse,
#    the daemon does not unmount.
# 3. uring=off, or io_uring unusable in the daemon (a seccomp filter
#    refusing io_uring_setup, as containers do): served through
#    /dev/fuse, same results, no hang at the first request.
# 4. uring=bogus, uring_idle=bogus: refused with a message naming the
#    option, nothing mounted.
# Where the kernel lacks FUSE over io_uring, 1 and 2 are skipped and 3
# and 4 still run.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
selftest && skip "io_uring is the daemon's transport; nothing to compare with overlayfs"

P=/sys/module/fuse/parameters/enable_uring
OLD=
[ -w "$P" ] && OLD=$(cat "$P")
if [ -n "$OLD" ]; then log "kernel has FUSE over io_uring (enable_uring=$OLD)"; else log "kernel has no FUSE over io_uring"; fi

# offer ON|OFF: what the kernel offers at the next INIT.
offer() { [ -n "$OLD" ] && echo "$1" >"$P"; }
restore() { [ -n "$OLD" ] && echo "$OLD" >"$P"; }

L=$T/lower
mkf "$L" keep/low.txt "from lower
"
mkd "$L" keep/sub
for i in $(seq 1 3000); do : >"$L/big_$i"; done
# Read from a lower file not read before in the mount, so the kernel
# asks the daemon: readahead's large READs, and one short at the end (a
# size off a page boundary). Over io_uring the daemon reads them into
# the request's slot itself.
head -c $((3 * 1024 * 1024 + 1234)) /dev/urandom >"$L/keep/blob"

# serving MNT: "uring" or "dev" from the daemon's log. The line comes
# once the workers registered, which may be after the first request.
serving() {
	local i
	for i in $(seq 30); do
		grep -q "serving requests through io_uring" "${_log_of[$1]}" && { echo uring; return; }
		sleep 0.1
	done
	echo dev
}

# workload LABEL MNT: the same program through any transport.
workload() {
	local l=$1 m=$2 sum
	expect_eq "$l: listing" 3001 "$(t ls "$m" | wc -l)"
	expect_eq "$l: lower file" "from lower" "$(t cat "$m/keep/low.txt")"
	expect_eq "$l: last 5000 bytes of a lower file" "$(tail -c 5000 "$L/keep/blob" | md5sum)" \
		"$(t tail -c 5000 "$m/keep/blob" | md5sum)"
	expect_eq "$l: 3 MiB lower file read" "$(md5sum <"$L/keep/blob")" "$(t md5sum <"$m/keep/blob")"
	t dd if=/dev/urandom of="$T/data" bs=1M count=5 status=none
	t cp "$T/data" "$m/data" || fail "$l: cp of 5 MiB"
	sum=$(md5sum <"$T/data")
	expect_eq "$l: 5 MiB read back" "$sum" "$(t md5sum <"$m/data")"
	echo appended | t tee -a "$m/keep/low.txt" >/dev/null
	expect_eq "$l: append copied up" "from lower
appended" "$(t cat "$m/keep/low.txt")"
	t mv "$m/data" "$m/keep/sub/moved" || fail "$l: rename"
	t ln -s sub/moved "$m/keep/link" || fail "$l: symlink"
	expect_eq "$l: readlink" sub/moved "$(t readlink "$m/keep/link")"
	expect_eq "$l: through the link" "$sum" "$(t md5sum <"$m/keep/link")"
	t setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\0' x)" "$m/keep/sub/moved" || fail "$l: setxattr"
	expect_eq "$l: getxattr" 3000 "$(t getfattr --absolute-names --only-values -n user.big "$m/keep/sub/moved" | wc -c)"
	t rm "$m/big_7" || fail "$l: unlink"
	expect_eq "$l: listing after unlink" 3000 "$(t ls "$m" | wc -l)"
	expect_eq "$l: upper holds the data" "$sum" "$(md5sum <"$U/keep/sub/moved")"
}

# classes PID: each kind of PID's threads with its scheduling class
# (ps's CLS: TS normal, IDL SCHED_IDLE), e.g. "IDL um-uring TS unionmount".
classes() { ps -L -o cls=,comm= -p "$1" | sed -e 's/^ *//' -e 's|um-uring/[0-9]*|um-uring|' | LC_ALL=C sort -u | xargs; }

# wait_workers PID: until PID (empty: none) has its io_uring threads, at
# most 10 s. A detached daemon answers INIT after its start command
# returns, and the kernel gives io_uring only if it still offers it then.
wait_workers() {
	local i
	for i in $(seq 100); do
		[ -n "$1" ] && ps -L -o comm= -p "$1" | grep -q '^um-uring/' && return
		sleep 0.1
	done
}

# umount_detached LABEL PID: unmount $M, served by PID, which is not our
# child (um_umount cannot wait for it), and check that it goes.
umount_detached() {
	local i
	unset '_pid_of[$M]'
	um_umount "$M"
	for i in $(seq 100); do pid_running "$2" || break; sleep 0.1; done
	pid_running "$2" && fail "$1: daemon $2 still running 10 s after the unmount"
}

# autogroup_counts: does a detached daemon started here get an autogroup
# that counts (src/nice.c, um_sched_own_group(), but for the session)?
# Autogroups on, the initial cgroup namespace, and the root cpu cgroup:
# v1's cpu line "/", or on v2 no cpu controller from our cgroup up.
autogroup_counts() {
	local v1 path
	[ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" == 1 ] || return 1
	[ "$(stat -L -c %i /proc/self/ns/cgroup 2>/dev/null)" == 4026531835 ] || return 1
	v1=$(awk -F: '$1 != 0 && $2 ~ /(^|,)cpu(,|$)/ { print $3 }' /proc/self/cgroup)
	if [ -n "$v1" ]; then
		[ "$v1" == / ]
		return
	fi
	[ -r /sys/fs/cgroup/cgroup.controllers ] || return 1
	path=$(awk -F: '$1 == 0 && $2 == "" { print $3 }' /proc/self/cgroup)
	[ "${path:0:1}" == / ] || return 1
	while [ "$path" != / ] && [ -n "$path" ]; do
		grep -qw cpu "/sys/fs/cgroup$path/cgroup.controllers" 2>/dev/null && return 1
		[ -r "/sys/fs/cgroup$path/cgroup.controllers" ] || return 1
		path=${path%/*}
	done
	return 0
}

# every_cpu SCRIPT: sh -c SCRIPT pinned to each CPU at once (CPU in its
# environment); prints how many of them failed.
every_cpu() {
	local cpu p rcs=0 pids=()
	for cpu in $(seq 0 $(($(nproc) - 1))); do
		CPU=$cpu t taskset -c "$cpu" sh -c "$1" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rcs=$((rcs + 1)); done
	echo "$rcs"
}

# fresh: a new upper and workdir.
fresh() {
	rm -rf "$T/u" "$T/w"
	U=$T/u W=$T/w
	mkdir -p "$U" "$W"
}

M=$T/mnt
mkdir -p "$M"

# ------------------------------------------------------------ 1. auto
if [ -n "$OLD" ]; then
	fresh
	offer 1
	um_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W"
	restore
	expect_eq "auto: transport" uring "$(serving "$M")"
	workload auto "$M"
	# The daemon stopped and continued (SIGSTOP, SIGCONT: job control, a
	# debugger) while requests wait: each gets its answer.
	pid=${_pid_of[$M]}
	# In this test's session, which it shares with the shell running it,
	# SCHED_IDLE workers would wait out every busy program there.
	expect_eq "auto, -f in the test's session: every thread in the normal class" "TS um-uring TS unionmount" \
		"$(classes "$pid")"
	bad=0
	for i in $(seq 1 6); do
		kill -STOP "$pid"
		t stat -c %s "$M/big_$((1000 + i))" >"$T/stopped.out" 2>&1 &
		p=$!
		sleep 0.3
		kill -CONT "$pid"
		wait "$p" || { bad=$((bad + 1)); log "stopped daemon, try $i: $(cat "$T/stopped.out")"; }
	done
	expect_eq "auto: requests waiting on a stopped daemon answered after SIGCONT" 0 "$bad"
	# A caller on each CPU, all at once.
	expect_eq "auto: callers on every CPU answered" 0 \
		"$(every_cpu "for i in \$(seq 100 400); do stat \"$M/big_\$i\" >/dev/null || exit 1; done")"
	# More writers on CPU 0 than it has workers (UM_THREADS/CPUs, at least 2).
	pids=()
	for i in $(seq 1 24); do
		t taskset -c 0 dd if=/dev/zero of="$M/w$i" bs=64k count=32 conv=fsync status=none &
		pids+=($!)
	done
	rcs=0
	for p in "${pids[@]}"; do wait "$p" || rcs=$((rcs + 1)); done
	expect_eq "auto: 24 writers on one CPU finished" 0 "$rcs"
	expect_eq "auto: their files" "24 2097152" "$(t stat -c %s "$M"/w* | awk '{ n++; s[$1] } END { for (k in s) print n, k }')"
	# io_uring_enter() failing with EAGAIN, the kernel's answer when it
	# cannot allocate a request (strace injects it into the third call of
	# each thread): the submission stays queued, the worker calls again,
	# and every request is answered. A worker that stopped instead would
	# leave the request it held unanswered, and once all of a CPU's had
	# stopped, its callers would wait until unmount. Creates, so that each
	# request reaches the daemon (names it looked up before are cached).
	if command -v strace >/dev/null; then
		strace -f -qq -o "$T/inject.out" -p "$pid" -e trace=io_uring_enter \
			-e inject=io_uring_enter:error=EAGAIN:when=3 &
		spid=$!
		for i in $(seq 100); do
			grep -q '^TracerPid:[[:space:]]*0$' /proc/"$pid"/task/*/status 2>/dev/null || break
			sleep 0.1
		done
		t mkdir "$M/inj"
		rcs=$(every_cpu "for i in \$(seq 1 200); do : >\"$M/inj/c\${CPU}_\$i\" || exit 1; done")
		kill -INT "$spid"
		wait "$spid"
		expect_eq "auto: creates answered while io_uring_enter fails with EAGAIN" 0 "$rcs"
		expect_eq "auto: their files" "$((200 * $(nproc)))" "$(t ls "$M/inj" | wc -l)"
		injected=$(grep -c 'EAGAIN.*(INJECTED)' "$T/inject.out")
		log "io_uring_enter failed by injection $injected times"
		[ "$injected" -ge 2 ] || fail "auto: strace injected EAGAIN into $injected io_uring_enter calls (want one per worker, at least 2)"
		expect_eq "auto: no worker stopped" "" "$(grep "worker.*stopped" "${_log_of[$M]}")"
	else
		log "no strace: io_uring_enter failures not injected"
	fi
	um_umount "$M"

	# ---------------------------------------------------- 2. SIGTERM
	fresh
	offer 1
	um_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W"
	restore
	expect_eq "SIGTERM: transport" uring "$(serving "$M")"
	t ls "$M" >/dev/null
	pid=${_pid_of[$M]}
	kill -TERM "$pid"
	for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		fail "SIGTERM: daemon still running 10 s later"
	else
		wait "$pid"
		expect_eq "SIGTERM: daemon's exit status" 0 "$?"
		unset '_pid_of[$M]'
	fi
	_is_mounted "$M" && fail "SIGTERM: still mounted"
	_forget_mount "$M"

	# ---------------------------------------------------- 2b. uring_idle
	# Backgrounded, the daemon leads a session of its own, as from fstab:
	# its io_uring workers go SCHED_IDLE (where autogroups are on and
	# count: the root cpu cgroup, the initial cgroup namespace) and serve
	# the same program; uring_idle=off keeps them normal, and so does a
	# cgroup namespace of its own (unshare -C), where whether the group
	# is its own cannot be told.
	if autogroup_counts; then
		idle_want="IDL um-uring TS unionmount"
	else
		idle_want="TS um-uring TS unionmount"
		log "autogroups off or not counting here (cpu cgroup, cgroup namespace): the workers stay normal"
	fi
	for how in auto off unshare; do
		fresh
		offer 1
		case $how in
		auto) t "$UNIONMOUNT" "$M" -o "lowerdir=$L,upperdir=$U,workdir=$W" >"$T/bg.out" 2>&1 ;;
		off) t "$UNIONMOUNT" "$M" -o "lowerdir=$L,upperdir=$U,workdir=$W,uring_idle=off" >"$T/bg.out" 2>&1 ;;
		unshare) t unshare -C "$UNIONMOUNT" "$M" -o "lowerdir=$L,upperdir=$U,workdir=$W" >"$T/bg.out" 2>&1 ;;
		esac
		rc=$?
		_mounts+=("f:$M")
		pid=$(bg_daemon_pid "$M") && _pid_of[$M]=$pid
		wait_workers "$pid"
		restore
		expect_eq "uring_idle, $how: background start, exit status and output" "0:" "$rc:$(cat "$T/bg.out")"
		if [ -z "$pid" ]; then
			fail "uring_idle, $how: no daemon serving $M"
			continue
		fi
		want=$idle_want
		[ $how == auto ] || want="TS um-uring TS unionmount"
		expect_eq "uring_idle, $how: threads' classes" "$want" "$(classes "$pid")"
		[ $how == auto ] && {
			workload idle "$M"
			expect_eq "idle: callers on every CPU answered" 0 \
				"$(every_cpu "for i in \$(seq 100 400); do stat \"$M/big_\$i\" >/dev/null || exit 1; done")"
		}
		umount_detached "uring_idle, $how" "$pid"
	done
	# A session it leads but shares: its starter ran something before it
	# exec'd the daemon (a script's `helper & exec unionmount -f`), which
	# the autogroup then holds too.
	fresh
	offer 1
	setsid sh -c 'sleep 60 & echo $! >"$1"; shift; exec "$@"' sh "$T/sleeper.pid" \
		"$UNIONMOUNT" "$M" -o "lowerdir=$L,upperdir=$U,workdir=$W" -f >"$T/shared.out" 2>&1 &
	_mounts+=("f:$M")
	for i in $(seq 100); do is_union_mounted "$M" && break; sleep 0.1; done
	pid=$(bg_daemon_pid "$M") && _pid_of[$M]=$pid
	wait_workers "$pid"
	restore
	if [ -z "$pid" ]; then
		fail "uring_idle, shared session: no daemon serving $M; its output: $(cat "$T/shared.out")"
	else
		expect_eq "uring_idle, shared session: the daemon leads it" "$pid" "$(ps -o sid= -p "$pid" | tr -d ' ')"
		expect_eq "uring_idle, shared session: threads' classes" "TS um-uring TS unionmount" "$(classes "$pid")"
		umount_detached "uring_idle, shared session" "$pid"
	fi
	[ -s "$T/sleeper.pid" ] && kill "$(cat "$T/sleeper.pid")" 2>/dev/null

	# ------------------------------------- 2c. offered, then taken back
	# enable_uring cleared between INIT's request (which offered io_uring)
	# and the daemon's reply (which took it): the kernel then never turns
	# it on, refuses every registration with EOPNOTSUPP, and serves
	# /dev/fuse. strace holds the reply (the daemon's first writev) for a
	# second; the offer is taken back once the mount is there.
	if command -v strace >/dev/null; then
		fresh
		# (LeakSanitizer cannot run under ptrace: an ASan daemon's
		# leak check is left to the other sections.)
		printf '#!/bin/sh\nASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 exec strace -f -qq -o /dev/null -e trace=writev -e inject=writev:delay_enter=1000000:when=1 "%s" "$@"\n' \
			"$UNIONMOUNT" >"$T/um-slowinit"
		chmod +x "$T/um-slowinit"
		offer 1
		(
			for i in $(seq 200); do is_union_mounted "$M" && break; sleep 0.01; done
			offer 0
		) &
		flip=$!
		UNIONMOUNT=$T/um-slowinit um_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W"
		wait "$flip"
		restore
		expect_eq "offered, then taken back: transport" dev "$(serving "$M")"
		expect_eq "offered, then taken back: the daemon did not give up" "" \
			"$(grep -i "unmounting" "${_log_of[$M]}")"
		workload taken-back "$M"
		um_umount "$M"
	else
		log "no strace: INIT's reply not held, section 2c skipped"
	fi
else
	log "sections 1-2 skipped: this kernel has no FUSE over io_uring"
fi

# ------------------------------------------ 3. off, and io_uring refused
fresh
offer 1
um_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W,uring=off"
restore
expect_eq "off: transport" dev "$(serving "$M")"
workload off "$M"
um_umount "$M"

fresh
printf '#!/bin/sh\nexec "%s" io_uring_setup=EPERM "%s" "$@"\n' "$(helper deny)" "$UNIONMOUNT" >"$T/um-nouring"
chmod +x "$T/um-nouring"
offer 1
UNIONMOUNT=$T/um-nouring um_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W"
restore
expect_eq "io_uring refused: transport" dev "$(serving "$M")"
workload refused "$M"
um_umount "$M"

# ------------------------------------------------------------ 4. bogus
fresh
out=$(t "$UNIONMOUNT" "$M" -o "lowerdir=$L,upperdir=$U,workdir=$W,uring=bogus" -f 2>&1)
expect_eq "uring=bogus: exit status" 1 "$?"
expect_match "uring=bogus: message" "uring: 'bogus' is neither auto nor off" "$out"
_is_mounted "$M" && fail "uring=bogus: mounted"
expect_eq "uring=bogus: upper untouched" "" "$(ls -A "$U")"
out=$(t "$UNIONMOUNT" "$M" -o "lowerdir=$L,upperdir=$U,workdir=$W,uring_idle=bogus" -f 2>&1)
expect_eq "uring_idle=bogus: exit status" 1 "$?"
expect_match "uring_idle=bogus: message" "uring_idle: 'bogus' is neither auto nor off" "$out"
_is_mounted "$M" && fail "uring_idle=bogus: mounted"
expect_eq "uring_idle=bogus: upper untouched" "" "$(ls -A "$U")"

finish
