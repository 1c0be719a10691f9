#!/usr/bin/env bash
# t_oldcalls: the daemon and unionctl where the kernel lacks the calls they
# prefer: getxattrat, setxattrat, listxattrat, removexattrat (Linux 6.13)
# and fchmodat2 (6.6), which take a directory fd and a name they do not
# follow. Without them every marker, xattr and chmod goes through the fd's
# magic link in /proc (src/sys.c). On this machine's kernel that route is
# otherwise never taken, so the calls are denied here (the helper `deny`,
# a seccomp filter on the daemon alone): with ENOSYS, as an older kernel
# answers, and with EPERM, as a container's seccomp profile that does not
# know them does. Under each, the tests that lean on xattrs and chmod run
# whole: markers (whiteouts, opaque, origin, redirect, impure, metacopy,
# index), user xattrs through the union, copy-up of every kind, renames,
# and unionctl's reading and repair of what the daemon wrote.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
selftest && skip "nothing to deny kernel overlayfs"

UNIONCTL=${UNIONCTL:-$(dirname "$UNIONMOUNT")/ctl/unionctl}
DENY=$(helper deny)
CALLS="getxattrat setxattrat listxattrat removexattrat fchmodat2"

# The filter does what it says: a call with invalid flags, which changes
# nothing, fails with the errno asked for (EINVAL, or ENOSYS on a kernel
# without it, when not denied).
probe_errno() { # probe_errno [deny-spec]: errno of getxattrat and fchmodat2
	local py='import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.syscall(ctypes.c_long(464), ctypes.c_int(-100), b"", ctypes.c_uint(0xffffffff), b"user.x", None, ctypes.c_size_t(0))
a = ctypes.get_errno()
libc.syscall(ctypes.c_long(452), ctypes.c_int(-100), b"", ctypes.c_uint(0), ctypes.c_uint(0xffffffff))
print(a, ctypes.get_errno())'
	if [ $# -gt 0 ]; then
		t "$DENY" "$1" python3 -c "$py"
	else
		t python3 -c "$py"
	fi
}
command -v python3 >/dev/null || skip "no python3"
have=$(probe_errno)
log "without the filter, getxattrat and fchmodat2 fail with: $have (22 = they exist, 38 = this kernel lacks them)"

# route DAEMON: the route the daemon's debug log says it took, after an
# xattr and a chmod through a union mounted by DAEMON.
route() {
	local real=$UNIONMOUNT r
	rm -rf "$T/r" && mkdir -p "$T/r/l" "$T/r/u" "$T/r/w" "$T/r/m" && mkf "$T/r/l" f
	UNIONMOUNT=$1
	if um_mount "$T/r/m" "lowerdir=$T/r/l,upperdir=$T/r/u,workdir=$T/r/w" -d; then
		t setfattr -n user.k -v v "$T/r/m/f" && t chmod 0600 "$T/r/m/f" ||
			fail "route: setfattr or chmod through the union failed"
		um_umount "$T/r/m"
	fi
	UNIONMOUNT=$real
	r=$(grep -o 'branch xattrs .*' "${_log_of[$T/r/m]}")
	printf '%s\n' "${r:-no route in the debug log}"
}
if [ "$have" = "22 22" ]; then
	expect_eq "no filter: the daemon takes the new calls" \
		"branch xattrs by getxattrat() and its siblings, modes by fchmodat2()" "$(route "$UNIONMOUNT")"
fi

SUBTESTS="t_statfs_xattr t_copyup_triggers t_rename t_metacopy t_copyup_hardlinks t_unionctl"
for err in ENOSYS EPERM; do
	spec=""
	for c in $CALLS; do spec=${spec:+$spec,}$c=$err; done
	want=$([ $err = ENOSYS ] && echo "38 38" || echo "1 1")
	expect_eq "$err: the filter denies the calls" "$want" "$(probe_errno "$spec")"
	for prog in unionmount unionctl; do
		real=$([ $prog = unionmount ] && echo "$UNIONMOUNT" || echo "$UNIONCTL")
		printf '#!/bin/sh\nexec "%s" "%s" "%s" "$@"\n' "$DENY" "$spec" "$real" >"$T/$prog-$err"
		chmod 0755 "$T/$prog-$err"
	done
	expect_eq "$err: the daemon takes /proc/self/fd" \
		"branch xattrs through /proc/self/fd, modes through /proc/self/fd" "$(route "$T/unionmount-$err")"
	for sub in $SUBTESTS; do
		UNIONMOUNT=$T/unionmount-$err UNIONCTL=$T/unionctl-$err \
			tl 300 bash "$LIB_DIR/$sub.sh" >"$T/$sub-$err.log" 2>&1
		rc=$?
		if [ $rc = 77 ]; then # its own reason, as without the filter
			log "$err: $sub skipped: $(tail -n 1 "$T/$sub-$err.log")"
			continue
		fi
		expect_eq "$err: $sub passes ($(tail -n 1 "$T/$sub-$err.log"))" 0 "$rc"
		[ $rc = 0 ] || grep -E '^(FAIL|ERROR)' "$T/$sub-$err.log" | head -n 20
	done
done

finish
