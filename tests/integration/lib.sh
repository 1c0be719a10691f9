# lib.sh: shared helpers for the integration tests (sourced by t_*.sh).
#
# Environment (meson sets the first two):
#   UNIONMOUNT   path of the daemon binary
#   HELPERS      directory holding treedump, seekdir, probe and fsop; when unset
#                they are compiled with cc into the test's temp root
#   UM_TIMEOUT   seconds any single command touching a mount may take (20)
#   MOUNT_WAIT   seconds to wait for a mount to appear (10)
#   KEEP=1       keep the temp root (mounts are still undone)
#   TMPDIR       where the temp root is made (/tmp); may hold blanks
#   UM_EXTRA_OPTS more -o options for every union um_mount starts, e.g.
#                readdirplus=never (the suite under another configuration)
#
# UNIONMOUNT=kernel-overlay runs a script against kernel overlayfs instead
# of the daemon (um_mount translates the options): the self-test that the
# scenario and its oracle comparison are right before the daemon is blamed.
#
# Exit codes follow meson: 0 pass, 1 fail, 77 skip, 99 harness error.
# Checks do not stop the script: every failed check prints one "FAIL"
# line saying what was expected and what was seen, and finish() turns the
# count into the exit code. Setup problems call die().
#
# Everything mounted here is undone by the EXIT trap: lazy unmounts first
# (fusermount3 -uz / umount -l), then only the daemon PIDs this test
# started, then the temp dirs (rm --one-file-system, and not at all while
# something is still mounted below them).

set -u -o pipefail

TEST_NAME=$(basename "$0" .sh)
UM_TIMEOUT=${UM_TIMEOUT:-20}
MOUNT_WAIT=${MOUNT_WAIT:-10}
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

_fails=0
_checks=0
_mounts=()              # "f:PATH" (fuse, ours) or "k:PATH" (kernel)
_pids=()                # daemon PIDs we started
declare -A _pid_of=()   # mountpoint -> daemon PID
declare -A _log_of=()   # mountpoint -> daemon log file
_tmps=()
_nlog=0
_main_pid=$$

# ---------------------------------------------------------------- reporting

log() { printf '# %s\n' "$*"; }
pass() { _checks=$((_checks + 1)); printf 'ok   %s\n' "$*"; }
fail() { _checks=$((_checks + 1)); _fails=$((_fails + 1)); printf 'FAIL %s\n' "$*"; }
skip() { printf 'SKIP %s: %s\n' "$TEST_NAME" "$*"; exit 77; }
die() { printf 'ERROR %s: %s\n' "$TEST_NAME" "$*"; exit 99; }

finish() {
	if [ "$_fails" -eq 0 ]; then
		printf 'PASS %s: %d checks\n' "$TEST_NAME" "$_checks"
		exit 0
	fi
	printf 'FAILED %s: %d of %d checks failed\n' "$TEST_NAME" "$_fails" "$_checks"
	exit 1
}

# t CMD...: run CMD with the per-command timeout (a hung mount cannot hang
# the test; the exit status is 124 then).
t() { timeout -k 5 "$UM_TIMEOUT" "$@"; }

# tl SECONDS CMD...: the same with a longer limit for whole-tree walks.
tl() { local s=$1; shift; timeout -k 5 "$s" "$@"; }

# tin DIR CMD...: run CMD with DIR as its cwd, the chdir included in the
# timeout (a cd into a hung mount would hang the shell itself).
tin() { local d=$1; shift; timeout -k 5 "$UM_TIMEOUT" env -C "$d" "$@"; }

# ---------------------------------------------------------------- assertions

# expect_eq LABEL EXPECTED ACTUAL
expect_eq() {
	if [ "$2" == "$3" ]; then
		pass "$1"
	else
		fail "$1: expected '$2', got '$3'"
	fi
}

# expect_match LABEL ERE ACTUAL
expect_match() {
	if [[ "$3" =~ $2 ]]; then
		pass "$1"
	else
		fail "$1: expected a match for /$2/, got '$3'"
	fi
}

# expect_probe LABEL EXPECTED OP ARGS...: run probe under the timeout and
# compare its one-line answer (OK, OK value, or an errno name).
expect_probe() {
	local label=$1 want=$2 got
	shift 2
	got=$(t "$HELPERS/probe" "$@" 2>&1)
	[ $? -eq 124 ] && got="TIMEOUT after ${UM_TIMEOUT}s"
	expect_eq "$label" "$want" "$got"
}

# probe_out OP ARGS...: the probe's answer, for the caller to judge.
probe_out() {
	local got
	got=$(t "$HELPERS/probe" "$@" 2>&1)
	[ $? -eq 124 ] && got="TIMEOUT"
	printf '%s' "$got"
}

# expect_same_file LABEL EXPECTED_FILE ACTUAL_FILE: diff two dumps.
expect_same_file() {
	if cmp -s "$2" "$3"; then
		pass "$1"
	else
		fail "$1: differs (- expected $2, + seen $3; first 60 lines of the diff):"
		diff -a -u "$2" "$3" | sed -n '3,62p' | sed 's/^/     /'
	fi
}

# ---------------------------------------------------------------- setup

require_root_fuse() {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	command -v fusermount3 >/dev/null || skip "no fusermount3"
}

require_overlay() {
	grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
		skip "kernel overlayfs (the oracle) not available"
	grep -qw overlay /proc/filesystems || skip "kernel overlayfs (the oracle) not available"
}

require_daemon() {
	[ -n "${UNIONMOUNT:-}" ] || die "UNIONMOUNT is not set (path of the daemon binary)"
	[ "$UNIONMOUNT" == kernel-overlay ] && return 0
	[ -x "$UNIONMOUNT" ] || die "UNIONMOUNT=$UNIONMOUNT is not executable"
}

# setup_test: temp root $T (0755, so non-root users can walk into it),
# helpers in $HELPERS, traps armed.
setup_test() {
	require_root_fuse
	T=$(mktemp -d "${TMPDIR:-/tmp}/um-$TEST_NAME.XXXXXX") || die "mktemp"
	T=$(realpath "$T")
	chmod 0755 "$T"
	_tmps+=("$T")
	trap _cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if [ -z "${HELPERS:-}" ]; then
		HELPERS=$T/helpers
		mkdir -p "$HELPERS"
		local h
		for h in treedump seekdir probe fsop rofd; do
			cc -O2 -Wall -o "$HELPERS/$h" "$LIB_DIR/$h.c" ||
				die "cannot build helper $h"
		done
	fi
	local h
	for h in treedump seekdir probe fsop rofd; do
		[ -x "$HELPERS/$h" ] || die "helper $HELPERS/$h missing"
	done
	log "temp root $T"
}

# helper NAME: the path of C helper NAME. A run by hand without HELPERS
# builds only the common ones; the others are built into the temp dir
# when a test asks.
helper() {
	local h=$1
	if [ ! -x "$HELPERS/$h" ]; then
		mkdir -p "$T/helpers" &&
			cc -O2 -Wall -o "$T/helpers/$h" "$LIB_DIR/$h.c" >&2 || die "cannot build helper $h"
		printf '%s\n' "$T/helpers/$h"
		return
	fi
	printf '%s\n' "$HELPERS/$h"
}

# The kernel writes a mount point into /proc/self/mounts (and mountinfo)
# with blank, tab, newline and backslash as \ooo, so a raw path never
# equals the field once it holds one of those (a TMPDIR with a blank).
# mounts_awk PROGRAM [NAME=VALUE...]: run the awk PROGRAM over
# /proc/self/mounts with `mp` set to each line's mount point unescaped;
# each NAME=VALUE is in its environment, for the program to read as
# ENVIRON["NAME"] (awk -v would turn a backslash in a path into an escape).
# $0 and $2 stay as the kernel wrote them.
_MOUNTS_AWK='
function um_unescape(s,    out, i, c) {
	out = ""
	while ((i = index(s, "\\")) > 0) {
		c = substr(s, i + 1, 3)
		if (c ~ /^[0-3][0-7][0-7]$/) {
			out = out substr(s, 1, i - 1) sprintf("%c", substr(c, 1, 1) * 64 + substr(c, 2, 1) * 8 + substr(c, 3, 1))
			s = substr(s, i + 4)
		} else {
			out = out substr(s, 1, i)
			s = substr(s, i + 1)
		}
	}
	return out s
}
{ mp = um_unescape($2) }
'
mounts_awk() {
	local prog=$1
	shift
	env "$@" awk "$_MOUNTS_AWK$prog" /proc/self/mounts
}

_is_mounted() {
	mounts_awk 'mp == ENVIRON["UM_M"] { f = 1 } END { exit !f }' UM_M="$1"
}

# mounted_below DIR: is anything mounted strictly below DIR?
mounted_below() {
	mounts_awk 'index(mp, ENVIRON["UM_P"]) == 1 { f = 1 } END { exit !f }' UM_P="${1%/}/"
}

# is_union_mounted MNT: mounted with type fuse.unionmount?
is_union_mounted() {
	local ty=fuse.unionmount
	[ "${UNIONMOUNT:-}" == kernel-overlay ] && ty=overlay
	mounts_awk 'mp == ENVIRON["UM_M"] && $3 == ENVIRON["UM_TY"] { f = 1 } END { exit !f }' \
		UM_M="$1" UM_TY="$ty"
}

selftest() { [ "${UNIONMOUNT:-}" == kernel-overlay ]; }

# The self-test stand-in for um_mount: kernel overlayfs with the same
# branches (a real upper when one is given).
_ovl_as_union() {
	local mnt=$1 opts=$2 o kopts='' ro=0 IFS=,
	for o in $opts; do
		case $o in
		lowerdir=* | upperdir=* | workdir=*) kopts+="${kopts:+,}$o" ;;
		ro) ro=1 ;;
		esac
	done
	unset IFS
	[[ $kopts == *upperdir=* ]] || ro=1
	[ $ro -eq 1 ] && kopts="ro,$kopts"
	kopts+=",xino=on"
	# With an upper: the kernel features that match what the union must
	# do (directory renames without EXDEV, truthful st_nlink of copied-up
	# hard links), as ovl_rw_mount mounts the reference side.
	[ $ro -eq 0 ] && kopts+=",$OVL_RW_OPTS"
	if ! timeout 20 mount -t overlay overlay -o "$kopts" "$mnt"; then
		fail "self-test: kernel overlayfs refused -o $kopts"
		return 1
	fi
	_mounts+=("k:$mnt")
}

# mount_escape PATH: PATH as the kernel writes it in /proc/self/mounts.
mount_escape() {
	local s=${1//\\/\\134}
	s=${s// /\\040}
	s=${s//$'\t'/\\011}
	printf '%s' "${s//$'\n'/\\012}"
}

# mount_line MNT: the /proc/mounts line of MNT (top-most if stacked), as
# the kernel wrote it: a blank in the mount point is \040 there, so the
# line still splits into its six fields at blanks.
mount_line() {
	mounts_awk 'mp == ENVIRON["UM_M"] { l = $0 } END { print l }' UM_M="$1"
}

# A recorded PID is only ever signalled if its command line still names
# our (unique, temp) mountpoint: guards against PID reuse.
_is_our_daemon() {
	local pid=$1 mnt=$2
	[ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$mnt"
}

_forget_mount() {
	local m=$1 i
	for i in "${!_mounts[@]}"; do
		[ "${_mounts[i]#*:}" == "$m" ] && unset '_mounts[i]'
	done
	_mounts=("${_mounts[@]}")
}

_cleanup() {
	local rc=$? i m kind path pid
	# Subshells (pipelines, $(...)) can inherit the trap: only the test's
	# own shell cleans up.
	[ "$BASHPID" == "$_main_pid" ] || return 0
	trap - EXIT INT TERM
	cd / || true
	for ((i = ${#_mounts[@]} - 1; i >= 0; i--)); do
		m=${_mounts[i]}
		kind=${m%%:*}
		path=${m#*:}
		_is_mounted "$path" || continue
		if [ "$kind" == f ]; then
			timeout 10 fusermount3 -uz "$path" 2>/dev/null ||
				timeout 10 umount -l "$path" 2>/dev/null
		else
			timeout 10 umount -l "$path" 2>/dev/null
		fi
	done
	for mnt in "${!_pid_of[@]}"; do
		pid=${_pid_of[$mnt]}
		_is_our_daemon "$pid" "$mnt" || continue
		kill -TERM "$pid" 2>/dev/null
		for i in $(seq 20); do
			_is_our_daemon "$pid" "$mnt" || break
			sleep 0.1
		done
		_is_our_daemon "$pid" "$mnt" && kill -KILL "$pid" 2>/dev/null
	done
	for path in "${_tmps[@]}"; do
		if mounted_below "$path"; then
			echo "# cleanup: something is still mounted under $path, leaving it"
		elif [ "${KEEP:-0}" == 1 ]; then
			echo "# KEEP=1: leaving $path"
		else
			rm -rf --one-file-system "$path"
		fi
	done
	exit "$rc"
}

# ---------------------------------------------------------------- layers

# Builders take a layer dir and a path inside it; parents are created.
# mkf LAYER PATH [CONTENT]: regular file; default content names layer and path,
# so a test can see which branch a visible file came from.
mkf() {
	mkdir -p "$(dirname "$1/$2")"
	if [ $# -ge 3 ]; then
		printf '%s' "$3" >"$1/$2"
	else
		printf '%s:%s\n' "$(basename "$1")" "$2" >"$1/$2"
	fi
}
mkd() { mkdir -p "$1/$2"; }
mkwh() { mkdir -p "$(dirname "$1/$2")" && mknod "$1/$2" c 0 0; }
mkopq() { mkdir -p "$1/$2" && setfattr -n trusted.overlay.opaque -v y "$1/$2"; }
mkln() { mkdir -p "$(dirname "$1/$2")" && ln -s "$3" "$1/$2"; }
mkfifo_at() { mkdir -p "$(dirname "$1/$2")" && mkfifo "$1/$2"; }
mkhl() { mkdir -p "$(dirname "$1/$3")" && ln "$1/$2" "$1/$3"; }

# ---------------------------------------------------------------- mounts

# um_mount [--source SRC] MNT OPTS [DAEMON ARGS...]
# Starts "$UNIONMOUNT [SRC] MNT -o OPTS -f ARGS..." in the background and
# waits until MNT shows in /proc/mounts as fuse.unionmount. Returns 1 (and
# reports a FAIL with the daemon's output) if it does not come up.
um_mount() {
	local src=()
	if [ "$1" == --source ]; then
		src=("$2")
		shift 2
	fi
	local mnt=$1 opts=$2
	shift 2
	if selftest; then
		_ovl_as_union "$mnt" "$opts"
		return
	fi
	_nlog=$((_nlog + 1))
	local logf=$T/daemon.$_nlog.log
	"$UNIONMOUNT" "${src[@]}" "$mnt" -o "$opts${UM_EXTRA_OPTS:+,$UM_EXTRA_OPTS}" -f "$@" >"$logf" 2>&1 &
	local pid=$!
	_pids+=("$pid")
	_pid_of[$mnt]=$pid
	_log_of[$mnt]=$logf
	_mounts+=("f:$mnt")
	local waited=0 limit=$((MOUNT_WAIT * 20))
	while ! is_union_mounted "$mnt"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			local rc=$?
			unset '_pid_of[$mnt]'
			_forget_mount "$mnt"
			fail "mount $mnt ($opts): daemon exited with status $rc before mounting; its output:"
			sed 's/^/     | /' "$logf"
			return 1
		fi
		if [ "$waited" -ge "$limit" ]; then
			fail "mount $mnt ($opts): not mounted as fuse.unionmount after ${MOUNT_WAIT}s; daemon output:"
			sed 's/^/     | /' "$logf"
			return 1
		fi
		sleep 0.05
		waited=$((waited + 1))
	done
	if ! t stat "$mnt" >/dev/null; then
		fail "mount $mnt: mounted but stat of the root fails or hangs"
		return 1
	fi
	return 0
}

# um_umount MNT: unmount, wait for the daemon to exit, and report a FAIL
# if it does not exit or exits non-zero (a crash at unmount is a bug).
um_umount() {
	local mnt=$1 pid=${_pid_of[$1]:-}
	if selftest; then
		ovl_umount "$mnt"
		return
	fi
	if _is_mounted "$mnt"; then
		if ! timeout 10 fusermount3 -u "$mnt"; then
			fail "fusermount3 -u $mnt failed; unmounting lazily"
			timeout 10 fusermount3 -uz "$mnt" || timeout 10 umount -l "$mnt"
		fi
	fi
	_forget_mount "$mnt"
	[ -n "$pid" ] || return 0
	local i
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "daemon $pid for $mnt still running 10s after unmount"
		return 1
	fi
	wait "$pid"
	local rc=$?
	unset '_pid_of[$mnt]'
	if [ "$rc" -ne 0 ]; then
		fail "daemon for $mnt exited with status $rc after unmount; last output:"
		tail -n 20 "${_log_of[$mnt]}" | sed 's/^/     | /'
		return 1
	fi
	return 0
}

# daemon_log MNT: the daemon's output so far.
daemon_log() {
	local f=${_log_of[$1]:-}
	[ -n "$f" ] && [ -r "$f" ] && sed 's/^/     | /' "$f" | tail -n "${2:-20}"
}

# daemon_alive MNT: is the daemon for MNT still running?
daemon_alive() {
	selftest && { _is_mounted "$1"; return; }
	local pid=${_pid_of[$1]:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Escape ':' and '\' for a lowerdir list element.
lower_escape() {
	local s=${1//\\/\\\\}
	printf '%s' "${s//:/\\:}"
}

# lowerdir_opt DIR...: "lowerdir=D1:D2:..." with escaping.
lowerdir_opt() {
	local out='' d
	for d in "$@"; do
		out+="${out:+:}$(lower_escape "$d")"
	done
	printf 'lowerdir=%s' "$out"
}

# ovl_mount MNT LAYER... (top-most first): kernel overlayfs, read-only,
# all layers as lowers, so the oracle never writes to any of them.
ovl_mount() {
	local mnt=$1
	shift
	mkdir -p "$mnt"
	local opt
	opt=$(lowerdir_opt "$@")
	if ! timeout 20 mount -t overlay overlay -o "ro,$opt" "$mnt"; then
		die "kernel overlayfs (oracle) mount failed: -o ro,$opt"
	fi
	_mounts+=("k:$mnt")
}

# ovl_rw_mount MNT UPPER WORK LOWER... (top-most first): kernel overlayfs
# read-write with its own upper and workdir, redirect_dir=on, index=on and
# xino=on: the reference side of the differential write-path tests.
OVL_RW_OPTS=redirect_dir=on,index=on
ovl_rw_mount() {
	local mnt=$1 up=$2 wk=$3
	shift 3
	mkdir -p "$mnt"
	local opt
	opt="$(lowerdir_opt "$@"),upperdir=$up,workdir=$wk,$OVL_RW_OPTS,xino=on"
	if ! timeout 20 mount -t overlay overlay -o "$opt" "$mnt"; then
		die "kernel overlayfs (reference) mount failed: -o $opt"
	fi
	_mounts+=("k:$mnt")
}

ovl_umount() {
	timeout 20 umount "$1" || timeout 10 umount -l "$1"
	_forget_mount "$1"
}

# kmount TYPE MNT OPTS: a kernel mount (tmpfs) that cleanup undoes.
kmount() {
	mkdir -p "$2"
	timeout 20 mount -t "$1" -o "$3" "$1" "$2" || die "mount -t $1 -o $3 $2 failed"
	_mounts+=("k:$2")
}
kumount() {
	timeout 20 umount "$1" || timeout 10 umount -l "$1"
	_forget_mount "$1"
}

# kernel_has_pt: does the kernel offer FUSE passthrough (Linux >= 6.9
# built with CONFIG_FUSE_PASSTHROUGH; read from its version and config)?
kernel_has_pt() {
	local v maj min cfg
	v=$(uname -r)
	maj=${v%%.*}
	min=${v#*.}
	min=${min%%[!0-9]*}
	[ "$maj" -gt 6 ] || { [ "$maj" -eq 6 ] && [ "$min" -ge 9 ]; } || return 1
	for cfg in /proc/config.gz "/boot/config-$v"; do
		[ -r "$cfg" ] || continue
		if zgrep -q '^CONFIG_FUSE_PASSTHROUGH=y' "$cfg"; then return 0; else return 1; fi
	done
	return 0 # no config to read: a 6.9+ kernel is taken to have it (Debian's do)
}
# ---------------------------------------------------------------- watcher

# A process that keeps one descriptor open on a file (helper "rofd
# watch", see rofd.c), for coherence checks. One at a time per script.
# watch_start PATH: start it; sets WREPLY to its first line ("OPEN").
watch_start() {
	coproc WATCH { exec timeout -k 5 60 "$HELPERS/rofd" watch "$1" 2>&1; }
	WREPLY=
	read -t "$UM_TIMEOUT" -r WREPLY <&"${WATCH[0]}" || WREPLY="no answer from the watcher"
}
# watch_ask read|drop: one request, the answer in WREPLY.
watch_ask() {
	WREPLY=
	echo "$1" >&"${WATCH[1]}" &&
		read -t "$UM_TIMEOUT" -r WREPLY <&"${WATCH[0]}" || WREPLY="no answer from the watcher"
}
# watch_stop: close its descriptor and wait for it to exit.
watch_stop() {
	local pid=$WATCH_PID
	eval "exec ${WATCH[1]}>&-"
	wait "$pid" 2>/dev/null
}

# ---------------------------------------------------------------- dumps

# tree_dump ROOT OUT [treedump flags...]: returns treedump's status
# (0 clean, 2 anomalies listed in OUT as '!' lines, 124 timeout).
tree_dump() {
	local root=$1 out=$2
	shift 2
	tl 240 "$HELPERS/treedump" "$@" "$root" >"$out" 2>"$out.err"
	local rc=$?
	[ $rc -eq 124 ] && echo "! TIMEOUT walking $root" >>"$out"
	return $rc
}

# oracle_dump OUT LAYER... (top-most first): dump kernel overlayfs over the
# layers. The layers are the test's own construction, so an anomaly in the
# oracle is a harness error, not a daemon failure.
oracle_dump() {
	local out=$1
	shift
	local mnt=$T/oracle
	ovl_mount "$mnt" "$@"
	tree_dump "$mnt" "$out"
	local rc=$?
	ovl_umount "$mnt"
	if [ $rc -ne 0 ]; then
		grep '^!' "$out" | head -20
		die "oracle dump has anomalies (status $rc): the scenario itself is wrong"
	fi
}

# snapshot DIR OUT: strict dump (inode numbers, ctimes, xattrs, contents)
# used to prove a branch was not modified.
snapshot() {
	# Delayed allocation may still change st_blocks of files just written.
	sync -f "$1" 2>/dev/null
	tree_dump "$1" "$2" -s || die "cannot snapshot $1 (status $?)"
}

# ---------------------------------------------------------------- differential write tests
#
# The same branch set is built twice ($T/ref and $T/un, each with l1 l2 l3
# (top-most first), u (upper), w (work) and mnt). The reference side is
# kernel overlayfs read-write (ovl_rw_mount: redirect_dir=on, index=on,
# xino=on); the other side is um_mount (in the self-test: kernel overlayfs
# again, which proves the scenario). Every operation runs through both
# mounts with fsop; the one-line answers are recorded per side
# ($T/ref.answers, $T/un.answers) and compared, the visible trees are
# dumped and compared at checkpoints and across remounts, and at the end
# the lower branches of both sides must be exactly as built.
#
#   diff_setup BUILDER   mkdir the layers, call "BUILDER ROOT" for both
#                        roots, pin every time stamp to DIFF_OLD, snapshot
#                        the lowers, mount both sides
#   dop LABEL WANT OP ARGS...   run "fsop OP ARGS..." with the mountpoint as
#                        cwd (so paths are relative) on both sides. WANT: the
#                        exact answer, "~ERE", or "-" (any, as long as both
#                        sides agree). One check.
#   dop_any LABEL ERE OP ARGS... only the union's answer is checked (against
#                        ERE); not compared nor recorded (RENAME_WHITEOUT)
#   dcmp LABEL           compare the dumps of both mountpoints (one check)
#   dremount LABEL       unmount and mount both sides again, then dcmp
#   up_whiteout LABEL REL | up_opaque LABEL REL | up_not_opaque LABEL REL |
#   up_absent LABEL REL (nothing of upper's own: a fallthru passes) | up_file LABEL REL CONTENT | up_type LABEL REL TYPE
#                        what upper holds on disk, checked on both sides
#                        (the reference side proves the expectation)
#   diff_end             unmount both, compare the answer lists, prove the
#                        lowers unchanged, and (daemon only) that
#                        WORKDIR/unionmount/work is empty
#
# Times: every object is built with atime = mtime = DIFF_OLD; in dumps and
# answers a time stamp at or after the start of the test is shown as
# "recent" and ctimes are dropped, so the two sides compare equal while
# "was this time preserved or set to now" stays visible.

DIFF_OLD=1000000000
DIFF_SIDES="ref un"

_dnorm() {
	awk -v t0="$DIFF_T0" '{
		out = ""
		for (i = 1; i <= NF; i++) {
			f = $i
			if (f ~ /^c=[0-9]+\.[0-9]+$/)
				continue
			# Blocks count xattr blocks too, and each side stores
			# its own markers; holes are checked by t_copyup_data.
			if (f ~ /^b=[0-9]+$/)
				continue
			if (f ~ /^[atm]=[0-9]+\.[0-9]+$/ && substr(f, 3) + 0 >= t0 - 1)
				f = substr(f, 1, 2) "recent"
			out = out (out == "" ? "" : " ") f
		}
		print out
	}'
}

_dopts() { # _dopts ROOT
	printf 'upperdir=%s,workdir=%s,%s' "$1/u" "$1/w" "$(lowerdir_opt "$1/l1" "$1/l2" "$1/l3")"
}

_dmount() {
	ovl_rw_mount "$T/ref/mnt" "$T/ref/u" "$T/ref/w" "$T/ref/l1" "$T/ref/l2" "$T/ref/l3"
	um_mount "$T/un/mnt" "$(_dopts "$T/un")" || {
		fail "cannot mount the union side; stopping"
		finish
	}
}

_dumount() {
	ovl_umount "$T/ref/mnt"
	um_umount "$T/un/mnt"
}

diff_setup() {
	local builder=$1 s l
	for s in $DIFF_SIDES; do
		mkdir -p "$T/$s"/{l1,l2,l3,u,w,mnt}
		"$builder" "$T/$s" || die "layer builder $builder failed for $T/$s"
		for l in l1 l2 l3 u; do
			find "$T/$s/$l" -exec touch -h -d "@$DIFF_OLD" {} + ||
				die "cannot pin the times in $T/$s/$l"
		done
		for l in l1 l2 l3; do snapshot "$T/$s/$l" "$T/$s.$l.before"; done
	done
	: >"$T/ref.answers"
	: >"$T/un.answers"
	DIFF_T0=$(date +%s)
	_dmount
}

# _drun SIDE OP ARGS...: fsop's answer (TIMEOUT on a hang), normalized.
_drun() {
	local s=$1 got
	shift
	got=$(tin "$T/$s/mnt" "$HELPERS/fsop" "$@" 2>&1)
	[ $? -eq 124 ] && got="TIMEOUT after ${UM_TIMEOUT}s"
	printf '%s\n' "$got" | _dnorm
}

dop() {
	local label=$1 want=$2
	shift 2
	dcheck "$label" "$want" "$(_drun ref "$@")" "$(_drun un "$@")" "$*"
}

# dcheck LABEL WANT REF UNION WHAT: one differential check of answers REF
# (kernel overlayfs) and UNION to WHAT (the operation, for the message),
# both kept in the answer lists. WANT: exact, "~ERE", or "-" (any, as
# long as both sides agree).
dcheck() {
	local label=$1 want=$2 r=$3 u=$4 what=$5 ok=1
	printf '%s: %s\n' "$label" "$r" >>"$T/ref.answers"
	printf '%s: %s\n' "$label" "$u" >>"$T/un.answers"
	case $want in
	-) ;;
	~*) [[ $r =~ ^(${want#\~})$ ]] || ok=0 ;;
	*) [ "$r" == "$want" ] || ok=0 ;;
	esac
	if [ $ok -eq 0 ]; then
		fail "$label [$what]: kernel overlayfs answered '$r', the scenario expects '$want' (scenario wrong?)"
	elif [ "$u" != "$r" ]; then
		fail "$label [$what]: expected '$r' (kernel overlayfs), union answered '$u'"
	else
		pass "$label [$what] -> $u"
	fi
}

dop_any() {
	local label=$1 ere=$2 u
	shift 2
	_drun ref "$@" >/dev/null
	u=$(_drun un "$@")
	expect_match "$label [$*] (union side, not compared)" "^($ere)\$" "$u"
}

dcmp() {
	local label=$1 s rc
	DIFF_NDUMP=$((${DIFF_NDUMP:-0} + 1))
	for s in $DIFF_SIDES; do
		tree_dump "$T/$s/mnt" "$T/$s.dump.$DIFF_NDUMP.raw"
		rc=$?
		_dnorm <"$T/$s.dump.$DIFF_NDUMP.raw" >"$T/$s.dump.$DIFF_NDUMP"
		if [ $rc -ne 0 ]; then
			fail "$label: tree dump of the $s side has anomalies (status $rc):"
			grep '^!' "$T/$s.dump.$DIFF_NDUMP.raw" | head -10 | sed 's/^/     /'
		fi
	done
	expect_same_file "$label: union tree equals kernel overlayfs (dump $DIFF_NDUMP)" \
		"$T/ref.dump.$DIFF_NDUMP" "$T/un.dump.$DIFF_NDUMP"
}

dremount() {
	_dumount
	_dmount
	dcmp "${1:-after remount}"
}

# _up_each LABEL DESCRIPTION TEST-FUNCTION REL [ARG]: run the test on the
# upper of each side.
_up_each() {
	local label=$1 what=$2 fn=$3 rel=$4 s seen bad=''
	shift 4
	for s in $DIFF_SIDES; do
		seen=$("$fn" "$T/$s/u/$rel" "$@") || bad+=" $s: $seen;"
	done
	if [ -z "$bad" ]; then
		pass "$label: upper holds $rel as $what"
	else
		fail "$label: expected upper/$rel to be $what, seen:$bad"
	fi
}

_describe() {
	local t
	if [ ! -e "$1" ] && [ ! -L "$1" ]; then
		echo absent
		return
	fi
	t=$(stat -c '%F %t:%T' "$1")
	echo "$t"
}
_is_wh() {
	local d
	d=$(_describe "$1")
	[ "$d" == "character special file 0:0" ] && return 0
	echo "$d"
	return 1
}
_is_opq() {
	local v
	[ -d "$1" ] && [ ! -L "$1" ] || { _describe "$1"; return 1; }
	v=$(getfattr --absolute-names --only-values -n trusted.overlay.opaque "$1" 2>/dev/null)
	[ "$v" == y ] && return 0
	echo "directory with trusted.overlay.opaque='$v'"
	return 1
}
_is_not_opq() {
	local v
	[ -d "$1" ] && [ ! -L "$1" ] || { _describe "$1"; return 1; }
	v=$(getfattr --absolute-names --only-values -n trusted.overlay.opaque "$1" 2>/dev/null)
	[ "$v" != y ] && return 0
	echo "opaque directory"
	return 1
}
# A fallthru (unionmount's "shown from layer L below"): char 0:(0x80000+L).
_fallthru_layer() {
	local d
	d=$(_describe "$1")
	[[ $d =~ ^"character special file 0:"8([0-9a-f]{4})$ ]] || return 1
	echo $((16#${BASH_REMATCH[1]}))
}
# Upper holds no object of its own there: nothing, or a fallthru.
_is_absent() {
	[ ! -e "$1" ] && [ ! -L "$1" ] && return 0
	_fallthru_layer "$1" >/dev/null && return 0
	_describe "$1"
	return 1
}
_is_fallthru() {
	local l
	l=$(_fallthru_layer "$1") || { _describe "$1"; return 1; }
	[ -z "${2:-}" ] || [ "$l" == "$2" ] && return 0
	echo "a fallthru to layer $l"
	return 1
}
_is_file() {
	local c
	[ -f "$1" ] && [ ! -L "$1" ] || { _describe "$1"; return 1; }
	c=$(cat "$1")
	[ "$c" == "$2" ] && return 0
	echo "file with content '$c'"
	return 1
}
_is_type() {
	local d
	d=$(_describe "$1")
	[[ $d == "$2"* ]] && return 0
	echo "$d"
	return 1
}
# A copy-up by a change of metadata alone: kernel overlayfs (metacopy=off)
# copies the data; unionmount (metacopy=on, the default) leaves it below:
# a file of the same size marked metacopy, no byte written.
_is_metacopy() {
	local v n
	if [[ $1 != "$T/un/"* ]] || selftest || [[ ${UM_EXTRA_OPTS:-} == *metacopy=off* ]]; then
		_is_file "$1" "$2"
		return
	fi
	[ -f "$1" ] && [ ! -L "$1" ] || { _describe "$1"; return 1; }
	v=$(getfattr --absolute-names --only-values -n trusted.unionmount.metacopy "$1" 2>/dev/null)
	n=$(tr -d '\0' <"$1" | wc -c)
	# CONTENT as $(cat) shows it: the file may have had a newline more.
	case $(stat -c %s "$1") in
	"${#2}" | "$((${#2} + 1))") [ "$v" == y ] && [ "$n" == 0 ] && return 0 ;;
	esac
	echo "file of $(stat -c %s "$1") bytes, $n of them not zero, metacopy mark '$v'"
	return 1
}
up_whiteout() { _up_each "$1" "a whiteout (char 0:0)" _is_wh "$2"; }
up_opaque() { _up_each "$1" "an opaque dir (trusted.overlay.opaque=y)" _is_opq "$2"; }
up_not_opaque() { _up_each "$1" "a directory that is not opaque" _is_not_opq "$2"; }
up_absent() { _up_each "$1" "absent (or a fallthru)" _is_absent "$2"; }
up_file() { _up_each "$1" "a regular file with content '$3'" _is_file "$2" "$3"; }
up_metacopy() { _up_each "$1" "a copy of a file with content '$3' (metacopy: without the data)" _is_metacopy "$2" "$3"; }
up_type() { _up_each "$1" "a '$3'" _is_type "$2" "$3"; }

diff_end() {
	local s l
	_dumount
	expect_same_file "answer lists of both sides are identical" \
		"$T/ref.answers" "$T/un.answers"
	for s in $DIFF_SIDES; do
		for l in l1 l2 l3; do
			snapshot "$T/$s/$l" "$T/$s.$l.after"
			expect_same_file "$s side: lower $l byte-for-byte unchanged" \
				"$T/$s.$l.before" "$T/$s.$l.after"
		done
	done
	if ! selftest; then
		local left
		left=$(find "$T/un/w/unionmount/work" -mindepth 1 2>/dev/null | head -5)
		if [ -d "$T/un/w/unionmount/work" ] && [ -z "$left" ]; then
			pass "workdir/unionmount/work is empty after unmount"
		else
			fail "workdir/unionmount/work after unmount: expected an empty dir, seen: ${left:-no such dir}"
		fi
	fi
}

# bg_daemon_pid MNT: the PID of a daemon that went to the background
# (started without -f, or by mount -t) serving MNT: its executable is
# $UNIONMOUNT and its command line names our unique, temp mountpoint.
bg_daemon_pid() {
	local p exe
	exe=$(realpath "$UNIONMOUNT")
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" == "$exe" ] || continue
		tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$1" && {
			echo "${p#/proc/}"
			return 0
		}
	done
	return 1
}

# pid_running PID: alive and not a zombie. A backgrounded daemon's parent
# is init (or a subreaper), which may take its time to reap it.
pid_running() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	# Reaped between the two looks: an unreadable stat is a process gone,
	# not one running (an empty state is no "Z" either).
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ -n "$st" ] && [ "${st%% *}" != Z ]
}

# The message minus its quoted values ('...'), so that an option name
# that only appears inside an echoed path or option string does not count.
# An unknown option's own name is quoted: those cases match on "unknown option".
unquoted() { sed "s/'[^']*'//g" "$1"; }

# expect_refused LABEL ERE ARGS...: run the daemon (with -f, so a wrongly accepted
# mount stays in the foreground where we can see it) and check the failure.
expect_refused() {
	local label=$1 re=$2
	shift 2
	local out=$T/refused.out err=$T/refused.err
	"$UNIONMOUNT" "$@" -f >"$out" 2>"$err" &
	local pid=$! i rc
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "$label: still running after 10s (accepted: $*)"
		_is_mounted "$M" && { timeout 10 fusermount3 -u "$M" || timeout 10 fusermount3 -uz "$M"; }
		sleep 0.5
		kill -0 "$pid" 2>/dev/null && kill -TERM "$pid"
		wait "$pid"
		return
	fi
	wait "$pid"
	rc=$?
	local lines msg
	lines=$(grep -c '' "$err")
	msg=$(head -c 400 "$err")
	if [ "$rc" -eq 0 ]; then
		fail "$label: exit status 0, want non-zero (stderr: '$msg')"
	elif [ "$lines" -ne 1 ]; then
		fail "$label: $lines lines on stderr, want exactly 1: '$msg'"
	elif ! unquoted "$err" | grep -qiE -- "$re"; then
		fail "$label: stderr does not name /$re/ outside quoted values: '$msg'"
	else
		pass "$label: status $rc, '$msg'"
	fi
	local leaked
	leaked=$(mounts_awk 'index(mp, ENVIRON["UM_P"]) == 1 && $3 == "fuse.unionmount" { print mp }' UM_P="$T/")
	if [ -n "$leaked" ]; then
		fail "$label: something got mounted under $T"
		printf '%s\n' "$leaked" | while IFS= read -r m; do timeout 10 fusermount3 -uz "$m"; done
	fi
}
