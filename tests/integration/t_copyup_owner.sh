#!/usr/bin/env bash
# t_copyup_owner: creations and copy-ups by a non-root user (uid/gid 65534
# via setpriv --clear-groups, mount with allow_other).
#
# - files and dirs the user creates (in its own lower-only dir, which is
#   copied up first) are owned 65534:65534 through the union and on upper;
#   the umask is honoured (027 and 002);
# - in a lower setgid dir (0:4242, 2777) new files get group 4242 and
#   new dirs group 4242 plus S_ISGID;
# - the user cannot write, truncate, chmod, chown, utime, setxattr, unlink,
#   rename or create where permissions forbid it (EACCES/EPERM exactly as
#   kernel overlayfs answers on the same branches), and those refusals
#   copy nothing up;
# - allowed changes copy up with the lower owner kept (a root 0666 file
#   written by the user stays root's);
# - a write by the non-owner to a group-writable setuid+setgid file
#   (root:65534 6775) clears S_ISUID and S_ISGID (mode 0775 after).
# Each answer and the stat of each object is compared with a hard-coded
# expectation and with kernel overlayfs (a separate read-write overlay on
# the same lowers with its own upper), and the two uppers must list the
# same objects with the same modes and owners. Lowers are unchanged.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon
command -v setpriv >/dev/null || skip "no setpriv"

L1=$T/l1 L2=$T/l2 M=$T/mnt O=$T/omnt
U=$T/upper W=$T/work UO=$T/oupper WO=$T/owork
mkdir -p "$L1" "$L2" "$M" "$O" "$U" "$W" "$UO" "$WO"
mkdir -p "$T/bin"
cp "$HELPERS/probe" "$T/bin/probe"
chmod 0755 "$T/bin" "$T/bin/probe"
chmod 0755 "$L1" "$L2"
umask 022

mkf "$L1" rootfile "root
"
mkf "$L1" world "world
"
chmod 0666 "$L1/world"
mkf "$L2" secret "secret
"
chmod 0600 "$L2/secret"
mkf "$L2" home/own "own
"
chown 65534:65534 "$L2/home" "$L2/home/own"
mkf "$L2" rootdir/f "f
"
mkd "$L2" sg
chown 0:4242 "$L2/sg"
chmod 2777 "$L2/sg"
mkd "$L2" sticky
chmod 1777 "$L2/sticky"
mkf "$L2" sticky/rootowned "r
"
chmod 0666 "$L2/sticky/rootowned"
mkf "$L2" sticky/mine "m
"
chown 65534:65534 "$L2/sticky/mine"
mkf "$L2" suidf "#!/bin/sh
"
chown 0:65534 "$L2/suidf"
chmod 6775 "$L2/suidf"

as_nobody() { # as_nobody DIR CMD...: run CMD in DIR as 65534:65534
	local d=$1
	shift
	tin "$d" setpriv --reuid=65534 --regid=65534 --clear-groups "$@" 2>&1
}
P=$T/bin/probe

# run_batch ROOT UPPER OUT: the actions in order; answers and stats in OUT.
run_batch() {
	local r=$1 up=$2 out=$3 p
	{
		echo "umask 027: $(as_nobody "$r" sh -c 'umask 027 && echo x >home/f027 && mkdir home/d027 && echo OK')"
		echo "umask 002: $(as_nobody "$r" sh -c 'umask 002 && echo x >home/f002 && mkdir home/d002 && echo OK')"
		echo "setgid dir: $(as_nobody "$r" sh -c 'echo x >sg/f && mkdir sg/d && echo OK')"
		echo "write rootfile: $(as_nobody "$r" "$P" write rootfile)"
		echo "O_TRUNC rootfile: $(as_nobody "$r" "$P" open rootfile wt)"
		echo "truncate rootfile: $(as_nobody "$r" "$P" truncate rootfile 0)"
		echo "chmod rootfile: $(as_nobody "$r" "$P" chmod rootfile 666)"
		echo "utimes rootfile: $(as_nobody "$r" "$P" utimes rootfile)"
		echo "setxattr rootfile: $(as_nobody "$r" "$P" setxattr rootfile user.x 1)"
		echo "read secret: $(as_nobody "$r" "$P" read secret)"
		echo "chown own to root: $(as_nobody "$r" "$P" chown home/own 0 0)"
		echo "chgrp own to 4242: $(as_nobody "$r" "$P" chown home/own 65534 4242)"
		echo "unlink rootdir/f: $(as_nobody "$r" "$P" unlink rootdir/f)"
		echo "rename rootdir/f: $(as_nobody "$r" "$P" rename rootdir/f home/stolen)"
		echo "creat rootdir/new: $(as_nobody "$r" "$P" creat rootdir/new)"
		echo "mkdir rootdir/newd: $(as_nobody "$r" "$P" mkdir rootdir/newd)"
		echo "unlink sticky/rootowned: $(as_nobody "$r" "$P" unlink sticky/rootowned)"
		echo "write world: $(as_nobody "$r" "$P" write world)"
		echo "chmod own: $(as_nobody "$r" "$P" chmod home/own 600)"
		echo "rename own: $(as_nobody "$r" "$P" rename home/own home/own2)"
		echo "unlink sticky/mine: $(as_nobody "$r" "$P" unlink sticky/mine)"
		echo "write suidf: $(as_nobody "$r" sh -c 'echo "echo hi" >>suidf && echo OK')"
		for p in home home/f027 home/d027 home/f002 home/d002 sg sg/f sg/d world home/own2 suidf rootfile; do
			echo "union $p: $(t stat -c '%A %u:%g' "$r/$p" 2>&1)"
		done
		for p in home home/f027 home/d027 home/f002 home/d002 sg sg/f sg/d world home/own2 suidf; do
			echo "upper $p: $(stat -c '%A %u:%g' "$up/$p" 2>&1)"
		done
	} >"$out"
}

cat >"$T/expected" <<'EOF'
umask 027: OK
umask 002: OK
setgid dir: OK
write rootfile: EACCES
O_TRUNC rootfile: EACCES
truncate rootfile: EACCES
chmod rootfile: EPERM
utimes rootfile: EACCES
setxattr rootfile: EACCES
read secret: EACCES
chown own to root: EPERM
chgrp own to 4242: EPERM
unlink rootdir/f: EACCES
rename rootdir/f: EACCES
creat rootdir/new: EACCES
mkdir rootdir/newd: EACCES
unlink sticky/rootowned: EPERM
write world: OK
chmod own: OK
rename own: OK
unlink sticky/mine: OK
write suidf: OK
union home: drwxr-xr-x 65534:65534
union home/f027: -rw-r----- 65534:65534
union home/d027: drwxr-x--- 65534:65534
union home/f002: -rw-rw-r-- 65534:65534
union home/d002: drwxrwxr-x 65534:65534
union sg: drwxrwsrwx 0:4242
union sg/f: -rw-r--r-- 65534:4242
union sg/d: drwxr-sr-x 65534:4242
union world: -rw-rw-rw- 0:0
union home/own2: -rw------- 65534:65534
union suidf: -rwxrwxr-x 0:65534
union rootfile: -rw-r--r-- 0:0
upper home: drwxr-xr-x 65534:65534
upper home/f027: -rw-r----- 65534:65534
upper home/d027: drwxr-x--- 65534:65534
upper home/f002: -rw-rw-r-- 65534:65534
upper home/d002: drwxrwxr-x 65534:65534
upper sg: drwxrwsrwx 0:4242
upper sg/f: -rw-r--r-- 65534:4242
upper sg/d: drwxr-sr-x 65534:4242
upper world: -rw-rw-rw- 0:0
upper home/own2: -rw------- 65534:65534
upper suidf: -rwxrwxr-x 0:65534
EOF
upper_list() { # upper_list DIR OUT
	(cd "$1" && find . -mindepth 1 -printf '%P %y %m %u:%g\n' | LC_ALL=C sort) >"$2"
}

snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"

# The oracle: kernel overlayfs, read-write, its own upper.
timeout 20 mount -t overlay overlay \
	-o "$(lowerdir_opt "$L1" "$L2"),upperdir=$UO,workdir=$WO,xino=on" "$O" ||
	die "kernel overlayfs refused the oracle mount"
_mounts+=("k:$O")
run_batch "$O" "$UO" "$T/oracle.answers"
ovl_umount "$O"
upper_list "$UO" "$T/oracle.upper"
cmp -s "$T/expected" "$T/oracle.answers" || {
	diff -u "$T/expected" "$T/oracle.answers"
	die "kernel overlayfs does not give the expected answers: the scenario is wrong"
}

um_mount "$M" "upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2"),allow_other" || finish
run_batch "$M" "$U" "$T/union.answers"
um_umount "$M"
expect_same_file "uid 65534 gets the expected answers and owners/modes (= kernel overlayfs)" \
	"$T/expected" "$T/union.answers"
upper_list "$U" "$T/union.upper"
expect_same_file "upper holds the same objects, modes and owners as kernel overlayfs' upper" \
	"$T/oracle.upper" "$T/union.upper"
for p in rootfile secret rootdir/f sticky/rootowned; do
	expect_eq "refused changes copied nothing up: $p" "" "$(ls -d "$U/$p" 2>/dev/null)"
done

snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower l1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "lower l2 unchanged" "$T/l2.before" "$T/l2.after"

finish
