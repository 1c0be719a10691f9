#!/usr/bin/env bash
# t_perms: permissions seen by a non-root user (uid/gid 65534 via setpriv).
#
# The daemon runs as root with allow_other + default_permissions: another
# user can read 0644 files through the union, gets EACCES for a 0600 or
# 0640 root file and under a 0700 root directory, can read its own 0600
# file; a merged directory's permissions are the top branch's. Each answer
# is compared with kernel overlayfs on the same branches (asked as the same
# user), and with the expected value. A non-root user cannot create in a
# root-owned 0755 directory.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon
command -v setpriv >/dev/null || skip "no setpriv"

U=$T/upper W=$T/work L1=$T/l1 L2=$T/l2 M=$T/mnt O=$T/oracle
mkdir -p "$U" "$W" "$L1" "$L2" "$M" "$O"
# The probe must be reachable by uid 65534.
mkdir -p "$T/bin"
cp "$HELPERS/probe" "$T/bin/probe"
chmod 0755 "$T/bin" "$T/bin/probe"
umask 022

mkf "$L2" pub
mkf "$L2" secret
chmod 0600 "$L2/secret"
mkf "$L1" grp
chmod 0640 "$L1/grp"
mkf "$L2" own
chown 65534:65534 "$L2/own"
chmod 0600 "$L2/own"
mkf "$L1" dir700/file
mkf "$L2" dir700/file2
chmod 0700 "$L1/dir700"
mkf "$L1" pubdir/f1
mkf "$L2" pubdir/f2
chmod 0700 "$L2/pubdir"     # below a 0755 one: the union shows 0755
mkf "$L1" closed/f1
mkf "$L2" closed/f2
chmod 0700 "$L1/closed"     # above a 0755 one: the union shows 0700
mkf "$L2" zero
chmod 0000 "$L2/zero"
mkf "$L1" xonly/pub
chmod 0711 "$L1/xonly"
mkf "$U" upub
mkf "$U" usecret
chmod 0600 "$U/usecret"
mkf "$U" shadow
chmod 0600 "$U/shadow"      # upper's mode wins over L1's 0644
mkf "$L1" shadow

# want: "PATH OP EXPECTED" as uid 65534
cases=(
	". lstat OK"
	"pub read OK"
	"secret read EACCES"
	"secret lstat OK"
	"grp read EACCES"
	"own read OK"
	"dir700 opendir EACCES"
	"dir700/file lstat EACCES"
	"dir700/file read EACCES"
	"pubdir opendir OK"
	"pubdir/f2 read OK"
	"closed opendir EACCES"
	"closed/f2 read EACCES"
	"zero read EACCES"
	"xonly opendir EACCES"
	"xonly/pub read OK"
	"upub read OK"
	"usecret read EACCES"
	"shadow read EACCES"
)

as_nobody() { t setpriv --reuid=65534 --regid=65534 --clear-groups "$T/bin/probe" "$@" 2>&1; }

run_cases() { # run_cases ROOT OUT
	local c p op
	: >"$2"
	for c in "${cases[@]}"; do
		read -r p op _ <<<"$c"
		echo "$p $op $(as_nobody "$op" "$1/$p")" >>"$2"
	done
}

ovl_mount "$O" "$U" "$L1" "$L2"
run_cases "$O" "$T/oracle.answers"
ovl_umount "$O"
printf '%s\n' "${cases[@]}" >"$T/expected.answers"
cmp -s "$T/expected.answers" "$T/oracle.answers" || {
	diff "$T/expected.answers" "$T/oracle.answers"
	die "kernel overlayfs does not give the expected answers: the scenario is wrong"
}

for mode in readonly upper; do
	if [ $mode == readonly ]; then
		# Read-only union: the upper dir serves as the top lower.
		opts=$(lowerdir_opt "$U" "$L1" "$L2")
	else
		opts="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
	fi
	um_mount "$M" "$opts" || continue
	run_cases "$M" "$T/union.$mode.answers"
	expect_same_file "$mode union: uid 65534 gets the same answers as on kernel overlayfs" \
		"$T/expected.answers" "$T/union.$mode.answers"
	expect_probe "$mode union: root reads the 0600 file" OK read "$M/secret"
	expect_probe "$mode union: root lists the 0700 dir" OK opendir "$M/dir700"
	expect_probe "$mode union: root reads the 0000 file" OK read "$M/zero"
	if [ $mode == upper ]; then
		got=$(as_nobody creat "$M/by-nobody")
		if [ "$got" != OK ] && [ ! -e "$U/by-nobody" ]; then
			pass "upper union: uid 65534 cannot create in a root 0755 dir ($got)"
		else
			fail "upper union: uid 65534 created a file in a root-owned 0755 dir ($got)"
		fi
		got=$(as_nobody write "$M/pub")
		if [ "$got" != OK ]; then
			pass "upper union: uid 65534 cannot write a root 0644 file ($got)"
		else
			fail "upper union: uid 65534 wrote to a root-owned 0644 file"
		fi
	fi
	um_umount "$M"
done

finish
