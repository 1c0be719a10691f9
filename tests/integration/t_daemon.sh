#!/usr/bin/env bash
# t_daemon: the daemon's life as an administrator sees it.
#  - Started without -f it goes to the background once the union is
#    mounted (the command returns 0 with the mount in place), prints
#    nothing, and logs to syslog with the mountpoint in every message
#    (checked against a private /dev/log in a private mount namespace).
#  - -f logs to stderr, -d also traces requests; libfuse's own messages
#    carry the same prefix.
#  - umount, fusermount3 -u, a lazy unmount (at once, or once the last
#    open file closes) and SIGTERM/SIGINT/SIGHUP all leave no daemon.
#  - Exit status: 0 clean, 1 options or layout refused, 2 mount failed.
#  - SIGUSR1 logs a memory report and does not stop the daemon.
#  - -o nice=: every thread at that nice value (default -10), and the
#    session's autogroup too when the session is the daemon's own.
#  - One read-write daemon per upperdir; -o ro mounts share it and write
#    nothing into upperdir or workdir.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
selftest && skip "tests the daemon process itself, which kernel overlayfs has not"

L=$T/l U=$T/u W=$T/w M=$T/m
mkdir -p "$L" "$U" "$W" "$M"
mkf "$L" f hello
mkf "$L" d/x inside
OPTS="lowerdir=$L,upperdir=$U,workdir=$W"
EXE=$(realpath "$UNIONMOUNT")

# expect_line NAME ERE TEXT: some line of TEXT matches ERE.
expect_line() {
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then
		pass "$1"
	else
		fail "$1: expected a line matching /$2/, got:"
		printf '%s\n' "$3" | sed 's/^/     | /'
	fi
}

# bg_mount MNT ARGS...: start without -f; expect exit 0, no output, the
# mount in place when the command returns. Registers the daemon for the
# EXIT trap. Sets BG_PID.
bg_mount() {
	local mnt=$1 rc
	shift
	t "$UNIONMOUNT" "$mnt" "$@" >"$T/bg.out" 2>&1
	rc=$?
	_mounts+=("f:$mnt")
	BG_PID=$(bg_daemon_pid "$mnt") && _pid_of[$mnt]=$BG_PID
	expect_eq "background start: exit status" 0 "$rc"
	expect_eq "background start: output" "" "$(cat "$T/bg.out")"
	if ! is_union_mounted "$mnt"; then
		fail "background start: $mnt not mounted when the command returned"
		return 1
	fi
	if [ -z "$BG_PID" ]; then
		fail "background start: no daemon process serving $mnt"
		return 1
	fi
	# Detached: its own session, not our child.
	expect_eq "background daemon is a session leader" "$BG_PID" "$(ps -o sid= -p "$BG_PID" | tr -d ' ')"
	expect_eq "background daemon is not the shell's child" 1 \
		"$([ "$(ps -o ppid= -p "$BG_PID" | tr -d ' ')" != $$ ] && echo 1)"
}

# gone WHAT MNT PID: within 10 s the mount is gone and so is the daemon.
gone() {
	local what=$1 mnt=$2 pid=$3 i
	for i in $(seq 100); do
		! _is_mounted "$mnt" && ! pid_running "$pid" && break
		sleep 0.1
	done
	if _is_mounted "$mnt"; then
		fail "$what: $mnt still mounted after 10s"
	elif pid_running "$pid"; then
		fail "$what: daemon $pid still running 10s after the unmount"
	else
		pass "$what: unmounted, daemon gone"
	fi
	_forget_mount "$mnt"
	unset '_pid_of[$mnt]'
}

# ---------------------------------------------------------------- background

log "background start, then each way of unmounting"
bg_mount "$M" -o "$OPTS" && {
	expect_eq "served after backgrounding" hello "$(t cat "$M/f")"
	t umount "$M"
	gone "umount" "$M" "$BG_PID"
}
bg_mount "$M" -o "$OPTS" && {
	t fusermount3 -u "$M"
	gone "fusermount3 -u" "$M" "$BG_PID"
}
bg_mount "$M" -o "$OPTS" && {
	t umount -l "$M"
	gone "umount -l (nothing open)" "$M" "$BG_PID"
}
bg_mount "$M" -o "$OPTS" && {
	exec 7<"$M/f"
	t umount -l "$M"
	sleep 1
	if pid_running "$BG_PID"; then
		pass "umount -l with a file open: the daemon serves it until it is closed"
	else
		fail "umount -l with a file open: the daemon exited while a file was still open"
	fi
	expect_eq "umount -l: the open file still reads" hello "$(cat <&7)"
	exec 7<&-
	gone "umount -l, then the last file closed" "$M" "$BG_PID"
}
for sig in TERM INT HUP; do
	bg_mount "$M" -o "$OPTS" && {
		kill -"$sig" "$BG_PID"
		gone "SIG$sig" "$M" "$BG_PID"
	}
done

log "a relative mountpoint still unmounts on a signal (the daemon left its cwd)"
(cd "$T" && t "$UNIONMOUNT" m -o "lowerdir=l,upperdir=u,workdir=w" >"$T/bg.out" 2>&1)
expect_eq "relative paths: background start" "" "$(cat "$T/bg.out")"
_mounts+=("f:$M")
# Its command line names the mountpoint as given: "m".
if pid=$(bg_daemon_pid m); then
	_pid_of[$M]=$pid
	kill -TERM "$pid"
	gone "relative mountpoint, SIGTERM" "$M" "$pid"
else
	fail "relative paths: no daemon found serving $M"
fi

# ---------------------------------------------------------------- foreground

log "-f: stderr, signals, exit status 0"
for sig in TERM INT HUP; do
	# bash starts background jobs with SIGINT ignored, and libfuse (like
	# any daemon) leaves an ignored signal alone: restore the default, as
	# a daemon started from a terminal or a service manager has it.
	env --default-signal=INT,HUP,TERM "$UNIONMOUNT" "$M" -o "$OPTS" -f >"$T/fg.out" 2>"$T/fg.err" &
	pid=$!
	_pid_of[$M]=$pid
	_mounts+=("f:$M")
	for i in $(seq 100); do is_union_mounted "$M" && break; sleep 0.1; done
	t ls "$M" >/dev/null
	kill -"$sig" "$pid"
	rc=0
	if ! timeout 10 tail --pid="$pid" -f /dev/null; then
		fail "-f SIG$sig: daemon still running after 10s"
		kill -KILL "$pid"
	fi
	wait "$pid" || rc=$?
	expect_eq "-f SIG$sig: exit status" 0 "$rc"
	gone "-f SIG$sig" "$M" "$pid"
	expect_eq "-f: nothing on stdout" "" "$(cat "$T/fg.out")"
	expect_line "-f SIG$sig: stderr says it mounted, with the mountpoint" \
		"^unionmount: $M: mounted: 1 lowerdir, upperdir $U\$" "$(cat "$T/fg.err")"
	sigdesc=$(python3 -c "import signal; print(signal.strsignal(signal.SIG$sig))")
	expect_line "-f SIG$sig: stderr says why it unmounts" \
		"^unionmount: $M: unmounting: $sigdesc\$" "$(cat "$T/fg.err")"
done

# ---------------------------------------------------------------- weight

log "nice=: every thread at the weight asked for, and the session's autogroup when the session is its own"
# threads_nice PID: the distinct nice values of PID's threads; those in
# SCHED_IDLE (io_uring workers, uring_idle=auto) have none ("-").
threads_nice() { ps -L -o cls=,ni= -p "$1" | awk '$1 != "IDL" { print $2 }' | sort -u | xargs; }
# autogroup_nice PID: the nice of PID's autogroup ("/autogroup-N nice V").
autogroup_nice() { sed -n 's/^.* nice //p' "/proc/$1/autogroup"; }
for want in "" 7; do
	bg_mount "$M" -o "$OPTS${want:+,nice=$want}" && {
		t ls "$M" >/dev/null # every serving thread started
		expect_eq "background, nice=${want:-default}: every thread" "${want:--10}" "$(threads_nice "$BG_PID")"
		if [ -r "/proc/$BG_PID/autogroup" ]; then
			expect_eq "background, nice=${want:-default}: its session's autogroup" "${want:--10}" \
				"$(autogroup_nice "$BG_PID")"
		else
			log "no autogroups in this kernel: the threads' nice is all there is"
		fi
		t umount "$M"
		gone "nice=${want:-default}" "$M" "$BG_PID"
	}
done
# nice=0 leaves the priority it was started with: started at nice 3.
t nice -n 3 "$UNIONMOUNT" "$M" -o "$OPTS,nice=0" >"$T/bg.out" 2>&1
expect_eq "background under nice -n 3, nice=0: exit status, output" "0:" "$?:$(cat "$T/bg.out")"
_mounts+=("f:$M")
if BG_PID=$(bg_daemon_pid "$M") && is_union_mounted "$M"; then
	_pid_of[$M]=$BG_PID
	t ls "$M" >/dev/null
	expect_eq "nice=0: every thread keeps nice 3" 3 "$(threads_nice "$BG_PID")"
	[ -r "/proc/$BG_PID/autogroup" ] &&
		expect_eq "nice=0: its new session's autogroup keeps nice 0" 0 "$(autogroup_nice "$BG_PID")"
	t umount "$M"
	gone "nice=0" "$M" "$BG_PID"
else
	fail "background under nice -n 3, nice=0: no union mounted on $M"
fi
# -f in a session the daemon does not lead (a shell's): the session's
# autogroup holds other programs, and keeps its weight. A fresh session
# led by a shell, so that no earlier daemon of this script has touched it;
# nice= given, so that a refusal would be a warning.
setsid bash -c '"$@" & wait' nice-leader "$UNIONMOUNT" "$M" -o "$OPTS,nice=-10" -f >"$T/fgnice.out" 2>&1 &
leader=$!
_mounts+=("f:$M")
for i in $(seq 100); do is_union_mounted "$M" && break; sleep 0.1; done
if pid=$(bg_daemon_pid "$M") && is_union_mounted "$M"; then
	_pid_of[$M]=$pid
	t ls "$M" >/dev/null
	expect_eq "-f under another session leader: in that leader's session" "$leader" "$(ps -o sid= -p "$pid" | tr -d ' ')"
	expect_eq "-f under another session leader: every thread at nice -10" -10 "$(threads_nice "$pid")"
	if [ -r "/proc/$leader/autogroup" ]; then
		expect_eq "-f under another session leader: the session's autogroup untouched" 0 \
			"$(autogroup_nice "$leader")"
	fi
	t umount "$M"
	gone "-f under another session leader" "$M" "$pid"
	expect_eq "-f, nice=-10 as root: no warning" "" "$(grep -i nice "$T/fgnice.out")"
else
	fail "-f under another session leader: no union mounted on $M"
	kill -TERM -- -"$leader" 2>/dev/null
fi
if ! timeout 10 tail --pid="$leader" -f /dev/null; then
	fail "-f under another session leader: its session still running 10 s after the unmount"
	kill -KILL -- -"$leader" 2>/dev/null
fi
wait "$leader"
for bad in -21 20 x -1x +5 " 5" ""; do
	expect_refused "nice='$bad'" "nice" "$M" -o "$OPTS,nice=$bad"
done

log "SIGUSR1: a memory report, and the daemon serves on"
um_mount "$M" "$OPTS" -f || finish
for f in a b c; do : >"$M/usr1_$f"; done
t ls -l "$M" >/dev/null
kill -USR1 "${_pid_of[$M]}"
for i in $(seq 50); do grep -q ': memory: ' "${_log_of[$M]}" && break; sleep 0.1; done
expect_line "SIGUSR1: one report line, with the inodes held" \
	"^unionmount: $M: memory: [0-9]+ inodes \(peak [0-9]+, [0-9]+ freed" "$(cat "${_log_of[$M]}")"
expect_eq "SIGUSR1: the union still answers" "usr1_a usr1_b usr1_c" "$(t ls "$M" | grep usr1_ | xargs)"
um_umount "$M" && pass "SIGUSR1: the daemon exits 0 at unmount"

log "-d: a request trace on stderr, every line with the prefix"
"$UNIONMOUNT" "$M" -o "$OPTS" -d >"$T/dbg.out" 2>"$T/dbg.err" &
pid=$!
_pid_of[$M]=$pid
_mounts+=("f:$M")
for i in $(seq 100); do is_union_mounted "$M" && break; sleep 0.1; done
t cat "$M/f" >/dev/null
t fusermount3 -u "$M"
rc=0
if ! timeout 10 tail --pid="$pid" -f /dev/null; then
	fail "-d: daemon still running 10s after fusermount3 -u"
	kill -KILL "$pid"
fi
wait "$pid" || rc=$?
expect_eq "-d: exit status after fusermount3 -u" 0 "$rc"
gone "-d" "$M" "$pid"
expect_line "-d: traces LOOKUP" "opcode: LOOKUP" "$(cat "$T/dbg.err")"
expect_line "-d: traces READ" "opcode: READ " "$(cat "$T/dbg.err")"
expect_line "-d: libfuse's own lines are prefixed too" "^unionmount: $M: FUSE library version" \
	"$(cat "$T/dbg.err")"
expect_eq "-d: lines without the prefix" "" "$(grep -v "^unionmount: $M: " "$T/dbg.err")"
expect_line "-d: says it unmounted" "^unionmount: $M: unmounted\$" "$(cat "$T/dbg.err")"

# ---------------------------------------------------------------- exit codes

log "exit status and messages of refusals"
# run_rc NAME WANT_RC WANT_MSG ARGS...: exit status and a one-line stderr.
run_rc() {
	local name=$1 want=$2 msg=$3 rc=0
	shift 3
	t "$UNIONMOUNT" "$@" >"$T/rc.out" 2>"$T/rc.err" || rc=$?
	expect_eq "$name: exit status" "$want" "$rc"
	expect_line "$name: message" "$msg" "$(cat "$T/rc.err")"
	# A mount that should have been refused went to the background: leave
	# nothing behind.
	if is_union_mounted "$RC_MNT" && [ "$rc" -eq 0 ]; then
		fail "$name: $RC_MNT is mounted"
		_mounts+=("f:$RC_MNT")
		pid=$(bg_daemon_pid "$RC_MNT") && _pid_of[$RC_MNT]=$pid
		t fusermount3 -u "$RC_MNT"
	fi
}
RC_MNT=$M
run_rc "unknown option" 1 "^unionmount: unknown option 'bogus': see unionmount --help\$" \
	"$M" -o "$OPTS,bogus"
run_rc "missing lowerdir" 1 "^unionmount: lowerdir: '$T/nope' does not exist; give an existing directory\$" "$M" -o "lowerdir=$T/nope"
run_rc "no mountpoint" 1 "^unionmount: " -o "$OPTS"
# mount(2) itself refuses: an SELinux label where there is no SELinux.
if grep -qw selinuxfs /proc/filesystems; then
	log "SELinux present: no mount(2) refusal to provoke this way"
else
	run_rc "mount(2) refused" 2 "^unionmount: $M: fuse: mount failed: Invalid argument\$" \
		"$M" -o "$OPTS,context=system_u:object_r:tmp_t:s0"
	expect_eq "mount(2) refused: workdir has no leftovers" "" "$(find "$W/unionmount/work" -mindepth 1)"
fi
rc=0
t "$UNIONMOUNT" --help >/dev/null || rc=$?
expect_eq "--help: exit status" 0 "$rc"

# ---------------------------------------------------------------- one upper, one writer

log "one read-write daemon per upperdir; -o ro shares and writes nothing"
M2=$T/m2
mkdir -p "$M2"
RC_MNT=$M2
um_mount "$M" "$OPTS" && {
	run_rc "second rw mount of the same upper" 1 \
		"^unionmount: upperdir: '$U' is in use by another mounted union \\(or by unionctl\\); unmount that first\$" \
		"$M2" -o "$OPTS"
	run_rc "ro mount while a rw one runs" 1 "^unionmount: upperdir: '$U' is in use" "$M2" -o "ro,$OPTS"
	mkdir -p "$T/u-other"
	# Stands for a copy-up the first union has in flight.
	echo inflight >"$W/unionmount/work/t-inflight"
	run_rc "another upper with the same workdir" 1 \
		"^unionmount: workdir: '$W' is in use by another mounted union \\(or by unionctl\\); give each union its own\$" \
		"$M2" -o "lowerdir=$L,upperdir=$T/u-other,workdir=$W"
	expect_eq "the refused mount purged nothing of the first's work/" inflight \
		"$(cat "$W/unionmount/work/t-inflight" 2>&1)"
	rm -f "$W/unionmount/work/t-inflight"
	expect_eq "the first union still serves" hello "$(t cat "$M/f")"
	um_umount "$M"
}
U2=$T/u2 W2=$T/w2
mkdir -p "$U2" "$W2"
um_mount "$M" "ro,lowerdir=$L,upperdir=$U2,workdir=$W2" && um_mount "$M2" "ro,lowerdir=$L,upperdir=$U2,workdir=$W2" && {
	pass "two -o ro mounts share an upperdir"
	t ls -R "$M" "$M2" >/dev/null
	expect_eq "ro: both serve" hello:hello "$(t cat "$M/f"):$(t cat "$M2/f")"
	RC_MNT=$T/m3
	mkdir -p "$RC_MNT"
	run_rc "rw mount while ro ones run" 1 "^unionmount: upperdir: '$U2' is in use" "$RC_MNT" \
		-o "lowerdir=$L,upperdir=$U2,workdir=$W2"
	um_umount "$M2"
	um_umount "$M"
}
RC_MNT=$M
expect_eq "-o ro: nothing written to a fresh upperdir" "" "$(find "$U2" -mindepth 1)"
expect_eq "-o ro: no xattr written on the upper root" "" "$(getfattr -d -m - --absolute-names "$U2" 2>/dev/null)"
expect_eq "-o ro: nothing written to a fresh workdir" "" "$(find "$W2" -mindepth 1)"

# ---------------------------------------------------------------- syslog

log "syslog: in a private mount namespace whose /dev/log we read"
# Build the state for an error message: a fallthru whose object goes away
# while unmounted (resolve.c logs it at LOG_ERR and returns EIO).
U3=$T/u3 W3=$T/w3 L3=$T/l3
mkdir -p "$U3" "$W3"
mkf "$L3" x inside
um_mount "$M" "lowerdir=$L3,upperdir=$U3,workdir=$W3" && {
	t ls "$M" >/dev/null
	um_umount "$M"
}
_is_fallthru "$U3/x" >/dev/null || fail "syslog setup: no fallthru for x after listing the root"
rm "$L3/x"

cat >"$T/ns.sh" <<'NS'
# Runs in a private mount namespace: a tmpfs /dev holding the nodes the
# daemon needs plus our own /dev/log socket.
set -u
T=$1 EXE=$2 M=$3 OPTS=$4
mkdir -p "$T/olddev"
mount --rbind /dev "$T/olddev" || exit 90
mount -t tmpfs -o mode=0755 nsdev /dev || exit 91
for n in null zero full random urandom fuse tty; do
	[ -e "$T/olddev/$n" ] || continue
	touch "/dev/$n" && mount --bind "$T/olddev/$n" "/dev/$n" || exit 92
done
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
open(sys.argv[1] + ".ready", "w").close()
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
' "$T/syslog.txt" &
lpid=$!
for i in $(seq 100); do [ -e "$T/syslog.txt.ready" ] && break; sleep 0.1; done
"$EXE" "$M" -o "$OPTS" >"$T/ns.out" 2>&1
echo "start=$?" >>"$T/ns.result"
cat "$M/x" >/dev/null 2>"$T/ns.cat.err"
echo "cat=$?" >>"$T/ns.result"
umount "$M"
echo "umount=$?" >>"$T/ns.result"
# The daemon leaves after the unmount; wait so its last message is in.
for i in $(seq 100); do
	pgrep -f "^$EXE $M " >/dev/null 2>&1 || break
	sleep 0.1
done
sleep 0.2
kill "$lpid"
wait "$lpid" 2>/dev/null
exit 0
NS
mkdir -p "$T/nsm"
if ! timeout -k 5 60 unshare -m --propagation private bash "$T/ns.sh" "$T" "$EXE" "$T/nsm" \
	"lowerdir=$L3,upperdir=$U3,workdir=$W3"; then
	fail "syslog: the namespace script failed"
fi
# A daemon left in the namespace is ours: end it (the EXIT trap also would).
if pid=$(bg_daemon_pid "$T/nsm"); then
	fail "syslog: daemon $pid still running after the unmount"
	kill -TERM "$pid"
fi
expect_eq "syslog: background start, unmount" "start=0 cat=1 umount=0" "$(tr '\n' ' ' <"$T/ns.result" | sed 's/ $//')"
expect_eq "syslog: nothing on stdout/stderr" "" "$(cat "$T/ns.out")"
expect_line "syslog: the reader sees EIO" "Input/output error" "$(cat "$T/ns.cat.err")"
sl=$(cat "$T/syslog.txt" 2>/dev/null)
log "syslog as received:"
printf '%s\n' "$sl" | sed 's/^/     | /'
# <facility*8+level>: daemon = 3, so 30 is info and 27 is err.
expect_line "syslog: mounted, at LOG_INFO, tagged with the PID, with the mountpoint" \
	"^<30>.* unionmount\[[0-9]+\]: $T/nsm: mounted: 1 lowerdir, upperdir $U3\$" "$sl"
expect_line "syslog: the fallthru error at LOG_ERR, with the mountpoint" \
	"^<27>.* unionmount\[[0-9]+\]: $T/nsm: 'x': its fallthru says layer 1" "$sl"
expect_line "syslog: unmounted" "^<30>.* unionmount\[[0-9]+\]: $T/nsm: unmounted\$" "$sl"
expect_eq "syslog: messages without the mountpoint" "" \
	"$(printf '%s\n' "$sl" | grep 'unionmount\[' | grep -v "unionmount\[[0-9]*\]: $T/nsm: ")"

finish
