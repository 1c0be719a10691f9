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
# daemon of the run is undone on any exit, also when the driver itself
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

# Cleanup owns only what lives under $T: the mounts below it (lazily, the
# union's with fusermount3), then the daemons whose command line names a
# mountpoint below it (the driver starts them with unique temp paths, so
# nothing else can match), then $T itself when nothing is mounted there.
cleanup() {
	local rc=$? m pid i
	trap - EXIT INT TERM
	cd / || true
	for i in 1 2 3; do
		while read -r m; do
			timeout 10 fusermount3 -uz "$m" 2>/dev/null ||
				timeout 10 umount -l "$m" 2>/dev/null
		done < <(awk -v p="$T/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r)
	done
	for pid in $(pgrep -x unionmount 2>/dev/null); do
		tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "^$T/" || continue
		kill -TERM "$pid" 2>/dev/null
		for i in $(seq 20); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
	done
	if awk -v p="$T/" 'index($2, p) == 1 { f = 1 } END { exit !f }' /proc/self/mounts; then
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
if selftest; then
	args+=(--selftest)
else
	args+=(--unionmount "$UNIONMOUNT")
fi
# shellcheck disable=SC2206 # DIFFTEST_ARGS is split on purpose
args+=(${DIFFTEST_ARGS:-})

log "difftest.py ${args[*]}"
timeout -k 10 "${DIFFTEST_TIMEOUT:-240}" python3 "$DIR/difftest.py" "${args[@]}"
rc=$?
case $rc in
0) printf 'PASS %s\n' "$TEST_NAME" ;;
77) exit 77 ;;
124 | 137) printf 'FAILED %s: difftest.py timed out after %ss\n' "$TEST_NAME" "${DIFFTEST_TIMEOUT:-240}"; rc=1 ;;
99) printf 'ERROR %s: harness error (see above)\n' "$TEST_NAME" ;;
*) printf 'FAILED %s: divergence from kernel overlayfs (reproduction above)\n' "$TEST_NAME"; rc=1 ;;
esac
exit "$rc"
