#!/usr/bin/env bash
# t_difftest: the random-operation differential tester against kernel
# overlayfs (tests/difftest/difftest.py, see README.md beside this file)
# in its CI mode: a fixed set of seeds, each a random lower tree and a
# random sequence of operations applied to kernel overlayfs and to the
# union, answers and visible trees compared after every operation. A
# divergence prints the seed and a shrunk, replayable reproduction.
#
# Conventions of tests/integration/lib.sh: root, /dev/fuse and kernel
# overlayfs needed (else exit 77, SKIP); UNIONMOUNT=kernel-overlay runs
# the self-test (kernel overlayfs on both sides: any difference is a bug
# of the tester); everything runs under a time limit; every mount and
# process of the run is undone on any exit, also when the driver itself
# had to be killed.
#
# Environment: UNIONMOUNT (meson sets it); DIFFTEST_TIMEOUT (seconds for
# the whole run, 240); DIFFTEST_ARGS (extra difftest.py arguments, e.g.
# "--time 600" for a longer run); KEEP=1 keeps the temp dir.
. "$(dirname "$0")/../integration/lib.sh"

require_root_fuse
require_overlay
require_daemon
command -v python3 >/dev/null || skip "no python3"

DIR=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/um-$TEST_NAME.XXXXXX") || die "mktemp"
T=$(realpath "$T")
chmod 0755 "$T"
main_pid=$$
driver=
LIMIT=${DIFFTEST_TIMEOUT:-240}

# names_t PID: one of the process's arguments is a path below $T. The
# driver, its workers, the daemons and their mount helpers all have one
# ($T is new and unique); nothing this run did not start can.
names_t() {
	[ -r "/proc/$1/cmdline" ] &&
		tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null |
		P=$T/ awk 'index($0, ENVIRON["P"]) == 1 { f = 1 } END { exit !f }'
}

# Cleanup owns only what lives under $T. First the driver: it undoes its
# own mounts and processes on SIGTERM (timeout passes the signal on), and
# removes $T (--tmp-owned).
# Then, for a driver that had to be killed, the mounts below $T (lazily,
# the union's with fusermount3), then every process still naming $T,
# then $T itself when nothing is mounted there.
cleanup() {
	local rc=$? m pid _
	[ "$BASHPID" == "$main_pid" ] || return 0
	trap - EXIT INT TERM
	cd / || true
	if [ -n "$driver" ] && pid_running "$driver"; then
		kill -TERM "$driver" 2>/dev/null
		for _ in $(seq 400); do
			pid_running "$driver" || break
			sleep 0.1
		done
	fi
	for _ in 1 2 3; do
		while IFS= read -r m; do
			timeout 10 fusermount3 -uz "$m" 2>/dev/null ||
				timeout 10 umount -l "$m" 2>/dev/null
		done < <(mounts_awk 'index(mp, ENVIRON["UM_P"]) == 1 { print mp }' UM_P="$T/" | sort -r)
	done
	# pgrep's pattern is a regex: it only narrows the candidates, names_t
	# decides.
	for pid in $(pgrep -f -- "$(printf '%s/' "$T" | sed 's/[][\.*^$]/\\&/g')"); do
		if [ "$pid" == "$main_pid" ] || ! names_t "$pid"; then
			continue
		fi
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 20); do
			pid_running "$pid" || break
			sleep 0.1
		done
		pid_running "$pid" && names_t "$pid" && kill -KILL "$pid" 2>/dev/null
	done
	if mounted_below "$T"; then
		echo "# cleanup: something is still mounted under $T, leaving it"
	elif [ "${KEEP:-0}" == 1 ]; then
		echo "# KEEP=1: leaving $T"
	else
		rm -rf --one-file-system "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

args=(--ci --tmp "$T" --out "$T/failures" --shrink-time 60)
[ "${KEEP:-0}" == 1 ] || args+=(--tmp-owned)
if selftest; then
	args+=(--selftest)
else
	args+=(--unionmount "$UNIONMOUNT")
fi
# shellcheck disable=SC2206 # DIFFTEST_ARGS is split on purpose
args+=(${DIFFTEST_ARGS:-})

log "difftest.py ${args[*]}"
# In the background and waited for: bash runs a trap only once a
# foreground command is done, but interrupts wait. timeout puts itself
# and the driver in their own process group, which meson's kill of this
# test's group (SIGTERM, SIGKILL half a second later) does not reach: the
# TERM the trap passes on lets the driver clean up even after this shell
# is gone.
timeout -k 30 "$LIMIT" python3 "$DIR/difftest.py" "${args[@]}" &
driver=$!
wait "$driver"
rc=$?
driver=
case $rc in
0) printf 'PASS %s\n' "$TEST_NAME" ;;
77) exit 77 ;;
124 | 137) printf 'FAILED %s: difftest.py timed out after %ss\n' "$TEST_NAME" "$LIMIT"; rc=1 ;;
99) printf 'ERROR %s: harness error (see above)\n' "$TEST_NAME" ;;
*) printf 'FAILED %s: divergence from kernel overlayfs, or the run was cut short (status %s; see above)\n' "$TEST_NAME" "$rc"; rc=1 ;;
esac
exit "$rc"
