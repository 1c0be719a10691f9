#!/usr/bin/env bash
# t_rename_stat: lstat and fstat of an object never fail while other
# processes rename it; the union never answers a getattr with another
# object's attributes.
#
# A rename moves the name in upper under the directories' locks; the
# inode's own record of where it lives (parent, name) must change in the
# same step. Otherwise a getattr in between stats the old name, which
# already holds something else: the whiteout the rename left (a character
# device, where the kernel knows a regular file), or the other end of an
# exchange (a directory). The kernel takes such a reply as a stale inode,
# marks it bad and fails the lstat with EIO, with no line in the daemon's
# log (the rare EIO of t_concurrency.sh).
#
# The helper renamestat.c (its header has the details), N tokens (4):
#   - movers rename lower files d0/fK -> d0/gK -> d1/hK -> d0/fK in rounds
#     (whiteouts at d0/fK), exchangers swap the lower file d0/xK with the
#     lower directory d0/yK (RENAME_EXCHANGE);
#   - readers lstat every one of those names: absent (ENOENT, f/g/h only)
#     or of the right type and size, never another error;
#   - one reader fstats descriptors held open on each fK: always the
#     regular file of 3 bytes.
# Two cycles of RS_SECONDS (4) s, on fresh uppers: default options, then
# cache_timeout=0 (every lstat reaches the daemon). After each: the daemon
# is alive; each fK is back at d0/fK with its contents and gK, hK are
# gone; xK and yK are one file (its contents) and one directory (its
# entry); the daemon logged nothing but its mount and unmount lines; its
# work dir is empty. The lowers are unchanged.
# The old daemon fails the first check in nearly every cycle (dozens of
# EIO in 4 s). Then, on a third mount: the ctime stat shows after each of
# 2,000 renames and xattr changes of a file another process fstats is
# upper's (see the phase). Self-test: the same on kernel overlayfs.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon

N=${RS_TOKENS:-4}
SECS=${RS_SECONDS:-4}

RS=$HELPERS/renamestat
if [ ! -x "$RS" ]; then
	RS=$T/renamestat
	cc -std=gnu11 -O2 -Wall -Wextra -o "$RS" "$LIB_DIR/renamestat.c" || die "cannot build helper renamestat"
fi

L1=$T/l1
for k in $(seq 0 $((N - 1))); do
	mkf "$L1" "d0/f$k" "f$k
"
	mkf "$L1" "d0/x$k" "x$k
"
	mkf "$L1" "d0/y$k/in" "y$k
"
done
mkf "$L1" d1/keep
snapshot "$L1" "$T/l1.before"

# The names of the tokens as the union must show them at the end.
final_state() {
	local m=$1 k a b out=''
	for k in $(seq 0 $((N - 1))); do
		out+="f$k=$(t cat "$m/d0/f$k" 2>&1 | tr '\n' '|') "
		[ -e "$m/d0/g$k" ] && out+="g$k-left "
		[ -e "$m/d1/h$k" ] && out+="h$k-left "
		if [ -d "$m/d0/y$k" ]; then
			a=$m/d0/x$k b=$m/d0/y$k
		else
			a=$m/d0/y$k b=$m/d0/x$k
		fi
		out+="xy$k=$(t cat "$a" 2>&1 | tr '\n' '|')/$(t cat "$b/in" 2>&1 | tr '\n' '|') "
	done
	printf '%s\n' "$out"
}
want=''
for k in $(seq 0 $((N - 1))); do
	want+="f$k=f$k| xy$k=x$k|/y$k| "
done

cycle() { # cycle N EXTRA_OPTS
	local R=$T/c$1 extra=$2 rc out
	local label="cycle $1${extra:+ ($extra)}"
	mkdir -p "$R"/{u,w,mnt}
	um_mount "$R/mnt" "upperdir=$R/u,workdir=$R/w,$(lowerdir_opt "$L1")${extra:+,$extra}" || return 1
	out=$(tl $((SECS + 60)) "$RS" "$R/mnt" "$SECS" "$N" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed 's/^/# /'
	if [ $rc -eq 0 ]; then
		pass "$label: every lstat and fstat answered as expected while the objects moved"
	else
		fail "$label: renamestat status $rc (unexpected answers above)"
	fi
	expect_match "$label: the renames and stats did run" \
		'^renames [1-9][0-9]* exchanges [1-9][0-9]* lstats [1-9][0-9]* fstats [1-9]' "$(printf '%s\n' "$out" | tail -n 1)"
	if daemon_alive "$R/mnt"; then
		pass "$label: the daemon is alive"
	else
		fail "$label: the daemon died; its log:"
		daemon_log "$R/mnt" 30
		return 1
	fi
	expect_eq "$label: every token at its place with its contents" "$want" "$(final_state "$R/mnt")"
	um_umount "$R/mnt" && pass "$label: unmounted, the daemon exited with status 0"
	if ! selftest; then
		expect_eq "$label: the daemon logged only its mount and unmount lines" "" \
			"$(grep -v -E "^unionmount: $R/mnt: (mounted: |unmounted$|serving requests through io_uring$)" "${_log_of[$R/mnt]}")"
		expect_eq "$label: WORKDIR/unionmount/work is empty after unmount" "" \
			"$(ls -A "$R/w/unionmount/work" 2>&1)"
	fi
	return 0
}

cycle 1 "" && cycle 2 cache_timeout=0

# The ctime after a rename or an xattr change, with default caching: the
# kernel drops its cached ctime then, but took a GETATTR reply read before
# the change and arriving after it as current, for a day, unless the
# daemon invalidates the inode itself (renamestat ctime; 30-50 stale of
# 2,000 on the build before).
R=$T/ct
mkdir -p "$R"/{u,w,mnt}
if um_mount "$R/mnt" "upperdir=$R/u,workdir=$R/w,$(lowerdir_opt "$L1")"; then
	t touch "$R/mnt/d1/keep" # copied up: the union shows upper's ctime
	out=$(tl 120 "$RS" ctime "$R/mnt/d1/keep" "$R/u/d1/keep" 1000 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "renames and xattr changes while another process fstats: stat shows upper's ctime after each ($out)"
	else
		fail "renames and xattr changes while another process fstats: status $rc: $out"
	fi
	um_umount "$R/mnt"
fi

snapshot "$L1" "$T/l1.after"
expect_same_file "lower l1 unchanged" "$T/l1.before" "$T/l1.after"
finish
