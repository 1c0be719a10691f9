#!/usr/bin/env bash
# t_concurrency: many processes change the namespace and copy up in the
# SAME directories at once, over three lowers full of overlapping and
# hidden names; the daemon must neither hang, crash, lose nor duplicate a
# name, and must leave a tree that is exactly what the processes did.
#
# The workload is the helper stress.c (its header lists the layout): 6
# mutator processes, each owning tokens (lower files, lower directories
# merged from two layers, empty-looking lower dirs, temporaries, new dirs)
# that it renames within and across the shared top directories (directory
# tokens: redirects, also into one another), exchanges, links, chmods,
# appends to, truncates, setxattrs, creates and removes, checking every
# answer and listing its own places against its model as it goes; plus
# races on shared names (one unlink, mkdir, NOREPLACE rename or link
# winner; appends and chmods to the same lower files); and 2 readers
# walking the whole tree all along (first listings write the fallthrus).
# Each cycle, on fresh branches:
#   - no unexpected answer, no listing with a name twice or a name that must
#     stay hidden, static names always listed (the helper's own checks).
#     One answer is retried, not failed: link(2) ENOENT on a source that
#     lstat then shows alive with the expected st_nlink, the kernel FUSE
#     client's own race (a READDIRPLUS reply and an unlink of another name
#     both lower i_nlink; libfuse's passthrough_ll shows it too); the
#     run's output counts them;
#   - watchdog: no operation stuck more than CONC_STUCK (30) s; otherwise
#     the daemon's thread stacks (gdb, else /proc/PID/task/*/stack and
#     wchan) and the stuck processes' kernel stacks are printed, the check
#     fails, the union is unmounted lazily and the daemon killed by its PID;
#   - the daemon is alive; a tree dump (treedump) has no anomaly (a name
#     twice, readdir and lstat disagreeing); the tree equals the union of
#     what each mutator recorded plus the static names and the races'
#     outcomes (modes, link counts, contents, user xattrs); every line
#     appended to the hot files is there once;
#   - WORKDIR/unionmount/work is empty, mounted and after unmount; the
#     daemon exits 0; its log has no sanitizer report; unionctl check
#     reports clean; the lowers are unchanged; after a remount the tree
#     dump is identical.
# CI mode: two cycles of CONC_SECONDS (10) s, the second with
# cache_timeout=0 (every lookup reaches the daemon). Long mode:
# CONC_LONG=SECONDS runs cycles of CONC_SECONDS (default 60 then) until
# that much time has passed, rotating the options through default,
# cache_timeout=0, fallthru=off, and both. Also CONC_MUTATORS (6),
# CONC_READERS (2), CONC_SEED (random, printed). CONC_HANG_SELFTEST=1
# proves the watchdog: the daemon is stopped (SIGSTOP) 2 s into a run with
# CONC_STUCK=5, and the watchdog must catch it and clean up.
# Self-test: the same on kernel overlayfs (no daemon checks, no unionctl).
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon

NW=${CONC_MUTATORS:-6}
NR=${CONC_READERS:-2}
LONG=${CONC_LONG:-0}
HANG=${CONC_HANG_SELFTEST:-0}
STUCK=${CONC_STUCK:-30}
[ "$HANG" == 1 ] && STUCK=${CONC_STUCK:-5}
if [ "$LONG" -gt 0 ]; then
	SECS=${CONC_SECONDS:-60}
else
	SECS=${CONC_SECONDS:-10}
fi
SEED=${CONC_SEED:-$((RANDOM * 32768 + RANDOM))}
log "seed $SEED (CONC_SEED=$SEED to reuse), $NW mutators, $NR readers, ${SECS}s per cycle, stuck after ${STUCK}s"

STRESS=$HELPERS/stress
if [ ! -x "$STRESS" ]; then
	STRESS=$T/stress
	cc -std=gnu11 -O2 -Wall -Wextra -o "$STRESS" "$LIB_DIR/stress.c" || die "cannot build helper stress"
fi
SARGS=(-w "$NW" -r "$NR" -k "$STUCK")

# treedump's output reduced to what stress.c records (see its header).
project() {
	awk '
	/^  e / || /^!/ { next }
	/^  x / { if ($3 ~ /^user\./) print; next }
	$1 == "." { next }
	$2 == "d" { print $1, "d", $3; next }
	{
		n = ""; h = ""
		for (i = 4; i <= NF; i++) {
			if ($i ~ /^n=/) n = $i
			if ($i ~ /^h=/) h = $i
		}
		if ($1 ~ /^d[0-9]+\/hot[0-9]+$/) h = "h=hot"
		print $1, $2, $3, n, h
	}' "$1" | LC_ALL=C sort
}

# The scenario itself, once: the model's starting tree is what kernel
# overlayfs shows over the lowers stress builds.
mkdir -p "$T/scen"
"$STRESS" build "$T/scen" "${SARGS[@]}" || die "stress build failed"
oracle_dump "$T/scen.dump" "$T/scen/l1" "$T/scen/l2" "$T/scen/l3"
project "$T/scen.dump" >"$T/scen.got"
"$STRESS" initial "${SARGS[@]}" >"$T/scen.raw" || die "stress initial failed"
LC_ALL=C sort "$T/scen.raw" >"$T/scen.want"
expect_same_file "scenario: the model's starting tree is kernel overlayfs's view of the lowers" \
	"$T/scen.want" "$T/scen.got"
rm -rf --one-file-system "$T/scen"

# ---------------------------------------------------------------- watchdog

# Kernel stacks of every thread of PID (root can read them).
kstacks() {
	local pid=$1 task
	for task in /proc/"$pid"/task/*; do
		[ -d "$task" ] || continue
		printf '     | task %s %s state=%s wchan=%s\n' "${task##*/}" \
			"$(cat "$task/comm" 2>/dev/null)" \
			"$(awk '/^State:/ { print $2 }' "$task/status" 2>/dev/null)" \
			"$(cat "$task/wchan" 2>/dev/null)"
		sed 's/^/     |     /' "$task/stack" 2>/dev/null
	done
}

# dump_hang MNT STATE: what the daemon and the stuck processes are doing.
dump_hang() {
	local mnt=$1 state=$2 pid=${_pid_of[$1]:-} dev conn p role idx
	# lib.sh's um_unescape: mountinfo writes a blank in the path as \040.
	dev=$(M=$mnt awk "$_MOUNTS_AWK"'um_unescape($5) == ENVIRON["M"] { print $3 }' /proc/self/mountinfo | tail -n 1)
	conn=/sys/fs/fuse/connections/${dev#*:}
	[ -r "$conn/waiting" ] && log "FUSE connection ${dev#*:}: $(cat "$conn/waiting") requests waiting"
	if [ -n "$pid" ] && _is_our_daemon "$pid" "$mnt"; then
		if command -v gdb >/dev/null; then
			log "daemon $pid, gdb 'thread apply all bt':"
			timeout -k 5 60 gdb -batch -nx -p "$pid" -ex 'thread apply all bt' </dev/null 2>&1 |
				grep -v '^\[New LWP\|^\[Thread debugging\|^Using host libthread' |
				head -n 600 | sed 's/^/     | /'
		else
			log "no gdb: the daemon's threads' kernel stacks only"
		fi
		log "daemon $pid, kernel stacks:"
		kstacks "$pid"
	fi
	while read -r p role idx; do
		[ -r "/proc/$p/stack" ] || continue
		pid_running "$p" || continue
		log "$role $idx (pid $p), kernel stack:"
		kstacks "$p"
	done <"$state/pids"
}

# abort_run MNT STATE: after a hang: the stress processes, the mount and
# the daemon go, by PID (each checked to still be ours).
abort_run() {
	local mnt=$1 state=$2 pid=${_pid_of[$1]:-} p rest i
	if [ -n "$pid" ] && _is_our_daemon "$pid" "$mnt"; then
		kill -CONT "$pid" 2>/dev/null
		kill -KILL "$pid" 2>/dev/null
	fi
	timeout 10 fusermount3 -uz "$mnt" 2>/dev/null || timeout 10 umount -l "$mnt" 2>/dev/null
	_forget_mount "$mnt"
	while read -r p rest; do
		tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$state" &&
			kill -KILL "$p" 2>/dev/null
	done <"$state/pids"
	for i in $(seq 100); do
		local alive=0
		while read -r p rest; do pid_running "$p" && alive=1; done <"$state/pids"
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	if [ -n "$pid" ]; then
		wait "$pid" 2>/dev/null
		unset '_pid_of[$mnt]'
	fi
}

# ---------------------------------------------------------------- cycles

sanitizer_report() { # the first lines of a sanitizer report in the log of MNT
	local f=${_log_of[$1]:-}
	[ -n "$f" ] && grep -m 5 -E 'runtime error|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer' "$f"
}

# cycle N EXTRA_OPTS: one run on fresh branches and every check after it.
# Returns 1 when the run hung (no further cycle).
cycle() {
	local n=$1 extra=$2 R=$T/c$1 rc l
	local label="cycle $n${extra:+ ($extra)}"
	mkdir -p "$R"/{u,w,mnt,state}
	"$STRESS" build "$R" "${SARGS[@]}" || die "stress build failed"
	for l in l1 l2 l3; do snapshot "$R/$l" "$R/$l.before"; done
	local opts
	opts="upperdir=$R/u,workdir=$R/w,$(lowerdir_opt "$R/l1" "$R/l2" "$R/l3")${extra:+,$extra}"
	um_mount "$R/mnt" "$opts" || return 1

	if [ "$HANG" == 1 ] && ! selftest; then
		(sleep 2 && kill -STOP "${_pid_of[$R/mnt]}") &
	fi
	tl $((SECS + STUCK + 90)) "$STRESS" run "$R/mnt" "$R/state" "${SARGS[@]}" \
		-s $((SEED + n)) -t "$SECS" >"$R/run.out" 2>&1
	rc=$?
	sed 's/^/# /' "$R/run.out"
	if [ "$HANG" == 1 ] && ! selftest; then
		if [ $rc -eq 3 ]; then
			pass "$label: the watchdog caught the stopped daemon"
			dump_hang "$R/mnt" "$R/state" >"$R/hang.txt"
			if grep -q 'thread apply all bt\|kernel stacks' "$R/hang.txt"; then
				pass "$label: the daemon's stacks were dumped ($(wc -l <"$R/hang.txt") lines)"
			else
				fail "$label: no stack dump of the daemon"
			fi
			head -n 40 "$R/hang.txt"
		else
			fail "$label: expected the watchdog to stop the run (status 3), got status $rc"
		fi
		abort_run "$R/mnt" "$R/state"
		if _is_mounted "$R/mnt"; then
			fail "$label: still mounted after the lazy unmount"
		else
			pass "$label: unmounted after the hang"
		fi
		local left=''
		while read -r p _; do pid_running "$p" && left+=" $p"; done <"$R/state/pids"
		expect_eq "$label: no stress process left" "" "$left"
		return 1
	fi
	case $rc in
	0) pass "$label: every answer as expected, no listing anomaly, races with one winner" ;;
	1) fail "$label: the workload saw unexpected results (above)" ;;
	3 | 124 | 137)
		fail "$label: an operation was stuck for more than ${STUCK}s (status $rc): the daemon's and the stuck processes' stacks follow"
		dump_hang "$R/mnt" "$R/state"
		abort_run "$R/mnt" "$R/state"
		return 1
		;;
	*) fail "$label: stress run failed with status $rc" ;;
	esac
	if selftest || daemon_alive "$R/mnt"; then
		pass "$label: the daemon is alive after the run"
	else
		fail "$label: the daemon died during the run; its log:"
		daemon_log "$R/mnt" 30
		abort_run "$R/mnt" "$R/state"
		return 1
	fi

	tree_dump "$R/mnt" "$R/dump"
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "$label: tree dump: no name twice, readdir agrees with lstat"
	else
		fail "$label: tree dump anomalies (status $rc):"
		grep '^!' "$R/dump" | head -20 | sed 's/^/     /'
	fi
	project "$R/dump" >"$R/got"
	LC_ALL=C sort "$R/state/expected" >"$R/want"
	expect_same_file "$label: the tree is what the processes recorded ($(wc -l <"$R/want") lines)" \
		"$R/want" "$R/got"
	local bad='' f p
	for f in "$R"/state/hot.*; do
		p=${f##*/hot.}
		p=${p/./\/}
		cmp -s <(LC_ALL=C sort "$f") <(t cat "$R/mnt/$p" | LC_ALL=C sort) || bad+=" $p"
	done
	expect_eq "$label: every line appended to the hot files is there once (wrong:)" "" "$bad"
	if ! selftest; then
		expect_eq "$label: WORKDIR/unionmount/work is empty while mounted" "" \
			"$(ls -A "$R/w/unionmount/work" 2>&1)"
	fi

	um_umount "$R/mnt" && pass "$label: unmounted, the daemon exited with status 0"
	if ! selftest; then
		expect_eq "$label: WORKDIR/unionmount/work is empty after unmount" "" \
			"$(ls -A "$R/w/unionmount/work" 2>&1)"
		expect_eq "$label: no sanitizer report in the daemon's log" "" "$(sanitizer_report "$R/mnt")"
		# Nothing here is damage: a warning (e.g. an inode number
		# "reused by the upper filesystem") means the daemon lost track.
		expect_eq "$label: the daemon logged nothing but its mount and unmount" "" \
			"$(grep -v -e ': mounted: ' -e ': unmounted$' -e ': serving requests through io_uring$' "${_log_of[$R/mnt]}" | head -5)"
		if [ -n "${UNIONCTL:-}" ]; then
			local out
			out=$(t "$UNIONCTL" check -o "$opts" 2>&1)
			rc=$?
			if [ $rc -eq 0 ]; then
				pass "$label: unionctl check reports clean ($out)"
			else
				fail "$label: unionctl check: status $rc:"
				printf '%s\n' "$out" | head -20 | sed 's/^/     /'
			fi
		else
			log "UNIONCTL not set: unionctl check skipped"
		fi
	fi
	for l in l1 l2 l3; do
		snapshot "$R/$l" "$R/$l.after"
		expect_same_file "$label: lower $l unchanged" "$R/$l.before" "$R/$l.after"
	done

	um_mount "$R/mnt" "$opts" || return 1
	tree_dump "$R/mnt" "$R/dump2"
	expect_same_file "$label: after a remount the tree dump is identical" "$R/dump" "$R/dump2"
	um_umount "$R/mnt"
	[ "${KEEP:-0}" == 1 ] || rm -rf --one-file-system "$R"
	return 0
}

if [ "$HANG" == 1 ]; then
	selftest && skip "CONC_HANG_SELFTEST needs a daemon to stop"
	cycle 1 ""
elif [ "$LONG" -gt 0 ]; then
	OPTSETS=("" "cache_timeout=0" "fallthru=off" "cache_timeout=0,fallthru=off")
	start=$SECONDS n=0
	while [ $((SECONDS - start)) -lt "$LONG" ]; do
		n=$((n + 1))
		cycle "$n" "${OPTSETS[$(((n - 1) % 4))]}" || break
	done
	log "long mode: $n cycles in $((SECONDS - start)) s"
else
	cycle 1 "" && cycle 2 "cache_timeout=0"
fi
finish
