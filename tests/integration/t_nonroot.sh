#!/usr/bin/env bash
# t_nonroot: the daemon started by an unprivileged user, as users of such
# a union see it.
#
# How it runs here: /dev/fuse is 0600 root and libfuse 3.14 gives up when
# it cannot open it (no fallback to fusermount3 on EACCES), and
# fusermount3 wants a passwd entry for the caller and user_allow_other in
# /etc/fuse.conf for allow_other. The whole test therefore re-executes
# itself in a private mount namespace (unshare -m) where a tmpfs of its
# own provides a 0666 copy of the fuse device node (c 10 229) bound over
# /dev/fuse, and copies of /etc/passwd, /etc/group and /etc/fuse.conf
# (with two test users, a group and user_allow_other) bound over the
# real ones: nothing outside the namespace changes, and every mount dies
# with it. The daemon then opens /dev/fuse, mount(2) refuses it (EPERM)
# and libfuse mounts through the set-user-ID fusermount3, as on a machine
# whose /dev/fuse is 0666.
#
# Users: D = 61101 (runs the daemon), O = 61102 (another user), group
# G = 61110 (O's supplementary group when asked; D is not in it).
#
# 1. The daemon runs as D: every uid and gid of the process is D's, no
#    capabilities; /proc/mounts shows fuse.unionmount with user_id=D and
#    default_permissions (the kernel turns it on: the daemon asks for
#    POSIX ACLs), neither allow_other nor default_permissions asked. It
#    logs at mount that its markers are user.* attributes (it cannot
#    write trusted.*: rootless format, fallthru off), and nothing about
#    passthrough, the default it cannot have (no CAP_SYS_ADMIN). Without
#    allow_other, O and root are refused (EACCES).
# 2. What D can do, compared with kernel overlayfs in a user namespace
#    of D's (unshare -U -m as D, userxattr: the kernel's non-root union),
#    on identical branches owned by D: create, write, read; unlink of a
#    lower file and of an upper file over a lower one, rmdir of an empty
#    lower dir, in the root and in a merged dir (both leave whiteouts); a
#    file created over a whiteout; mkdir, symlink, fifo, socket, hard
#    link, renames of upper files and dirs (also over a lower name,
#    across dirs, RENAME_EXCHANGE, RENAME_NOREPLACE);
#    chmod/utimens/truncate/user.* xattrs on upper files; readdir of
#    merged, lower-only and upper-only dirs; rmdir of an emptied merged
#    dir; refused: rmdir of a non-empty dir (ENOTEMPTY), device nodes and
#    trusted.* xattrs (EPERM). Each answer must equal the kernel's and a
#    hard-coded one; the visible trees must be equal.
#    On disk: whiteouts are character devices 0:0 owned by D (the kernel
#    lets anyone make those since Linux 5.8; kernel overlayfs makes the
#    same), upper holds no marker but user.unionmount.format = 2 on its
#    root (nothing here needed a copy-up), no trusted.* at all, no
#    fallthru although fallthru is on by default.
# 3. Copy-ups with the rootless format (user.overlay.* and
#    user.unionmount.* xattrs, man page ON-DISK FORMAT), against the
#    kernel on fresh branches: write, append, truncate, chmod (the lower
#    file's own user.* xattr comes along), utimens, setxattr, link,
#    rename of a lower file, symlink and fifo, create/mkdir/unlink in a
#    lower-only dir, chmod of a lower dir, a mkdir over a removed lower
#    dir (opaque: shows nothing of below). Then, the union alone (kernel
#    overlayfs with userxattr has no redirects and no index, so it
#    answers EXDEV and breaks the link): rename of a lower dir (a
#    redirect), a link to a file hard-linked below (one object under
#    every name, st_nlink counting the lower names). Through the union D
#    can neither see (getxattr ENODATA, not listed) nor set or remove
#    (EPERM) any user.overlay.* / user.unionmount.* name, while other
#    user.* names work. On disk: exactly the keys the man page lists, on
#    the objects that need them (origin on copied-up files and dirs,
#    none on a symlink, opaque as the kernel writes it, redirect "/mv",
#    lowerlinks on the index entry), no trusted.*; a remount shows the
#    same tree.
# 4. allow_other (D mounts with it; user_allow_other in the private
#    fuse.conf): O gets exactly what the modes give (read 0644 yes, 0600
#    no, write 0644 no, 0666 yes and the owner stays D, group-readable
#    only with G, unlink in D's 0755 dir no, in a sticky dir no), and
#    never more than D: a root-only lower file or dir is refused to O, to
#    D and to root alike (the daemon has D's rights, not root's), while
#    root reads D's 0600 file. A new object by O or root would have to be
#    chowned to them: refused with EPERM, nothing left on upper. chown to
#    another uid (by D or root), chgrp to a group D is not in, mknod of a
#    device: EPERM.
# 5. Each format refused where it would be misread, with one line: root
#    mounting part 3's user upper without -o userxattr (it would read it
#    as an upper without markers and show what D removed), root's
#    unionctl likewise; with -o userxattr root shows D's tree. An upper
#    written by a root daemon (trusted.*, stamped
#    user.unionmount.format=trusted) refused to D (who cannot read
#    trusted.*) and to root with -o userxattr.
# Lowers are byte-for-byte unchanged at the end; the daemons exit 0.
#
# UNIONMOUNT=kernel-overlay (the self-test) runs part 2 with kernel
# overlayfs in a user namespace on both sides (the hard-coded answers
# and the scenario) and the compared half of part 3; parts 1, 4 and 5
# and the rest of part 3 are about the daemon and are left out.
. "$(dirname "$0")/lib.sh"

if [ "${UM_NONROOT_NS:-}" != 1 ]; then
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	command -v unshare >/dev/null || skip "no unshare"
	UM_NONROOT_NS=1 exec unshare -m --propagation private bash "$0" "$@"
	die "cannot exec unshare"
fi

setup_test
require_overlay
require_daemon
command -v setpriv >/dev/null || skip "no setpriv"
command -v getfattr >/dev/null || skip "no getfattr"

D=61101 O=61102 G=61110
umask 022
for id in $D $O; do
	getent passwd "$id" >/dev/null && skip "uid $id is taken on this machine"
done
getent group "$G" >/dev/null && skip "gid $G is taken on this machine"

# ---------------------------------------------------------------- the namespace

NS=$T/ns
kmount tmpfs "$NS" mode=0755
mknod -m 0666 "$NS/fuse" c 10 229 || die "mknod fuse"
{
	cat /etc/passwd
	printf 'umnr-d:x:%d:%d::/nonexistent:/usr/sbin/nologin\n' $D $D
	printf 'umnr-o:x:%d:%d::/nonexistent:/usr/sbin/nologin\n' $O $O
} >"$NS/passwd"
{
	cat /etc/group
	printf 'umnr-d:x:%d:\numnr-o:x:%d:\numnr-g:x:%d:umnr-o\n' $D $O $G
} >"$NS/group"
printf 'user_allow_other\n' >"$NS/fuse.conf"
chmod 0644 "$NS/passwd" "$NS/group" "$NS/fuse.conf"
nsbind() {
	[ -e "$2" ] || : >"$2" 2>/dev/null || die "cannot create $2 to bind over"
	timeout 20 mount --bind "$1" "$2" || die "mount --bind $1 $2"
	_mounts+=("k:$2")
}
nsbind "$NS/fuse" /dev/fuse
nsbind "$NS/passwd" /etc/passwd
nsbind "$NS/group" /etc/group
nsbind "$NS/fuse.conf" /etc/fuse.conf
[ "$(stat -c '%a %t:%T' /dev/fuse)" == "666 a:e5" ] || die "the private /dev/fuse is not in place"

# The programs the users run.
mkdir -p "$T/bin"
for h in fsop probe treedump; do
	cp "$HELPERS/$h" "$T/bin/$h" || die "cannot copy helper $h"
done
selftest || cp "$UNIONMOUNT" "$T/bin/unionmount" || die "cannot copy the daemon"
UNIONCTL=${UNIONCTL:-$(dirname "$UNIONMOUNT")/ctl/unionctl}
selftest || cp "$UNIONCTL" "$T/bin/unionctl" || die "cannot copy unionctl ($UNIONCTL)"
chmod 0755 "$T/bin" "$T/bin"/*

as_d() { t setpriv --reuid=$D --regid=$D --clear-groups "$@"; }
as_o() { t setpriv --reuid=$O --regid=$O --clear-groups "$@"; }
as_og() { t setpriv --reuid=$O --regid=$O --groups=$G "$@"; }
# fsop as WHO (d, o, og, root) in DIR: its one-line answer.
fsop_as() {
	local who=$1 dir=$2 got
	shift 2
	case $who in
	d) got=$(as_d env -C "$dir" "$T/bin/fsop" "$@" 2>&1) ;;
	o) got=$(as_o env -C "$dir" "$T/bin/fsop" "$@" 2>&1) ;;
	og) got=$(as_og env -C "$dir" "$T/bin/fsop" "$@" 2>&1) ;;
	root) got=$(tin "$dir" "$T/bin/fsop" "$@" 2>&1) ;;
	esac
	[ $? -eq 124 ] && got="TIMEOUT after ${UM_TIMEOUT}s"
	printf '%s' "$got"
}
# expect_op LABEL WANT WHO DIR OP ARGS...
expect_op() {
	local label=$1 want=$2 who=$3 dir=$4
	shift 4
	expect_eq "$label [$who: $*]" "$want" "$(fsop_as "$who" "$dir" "$@")"
}

# nr_mount MNT OPTS: the daemon as D (setpriv execs it: the PID is the
# daemon's), registered with lib.sh so that cleanup unmounts it and ends
# only this PID. um_umount undoes it.
nr_mount() {
	local mnt=$1 opts=$2
	_nlog=$((_nlog + 1))
	local logf=$T/daemon.$_nlog.log
	# RLIMIT_NICE 0: setpriv keeps root's limits, and a raised one would
	# let D lower its nice. prlimit and setpriv exec in turn: $! is the daemon.
	prlimit --nice=0 setpriv --reuid=$D --regid=$D --clear-groups "$T/bin/unionmount" "$mnt" -o "$opts" -f >"$logf" 2>&1 &
	local pid=$!
	_pids+=("$pid")
	_pid_of[$mnt]=$pid
	_log_of[$mnt]=$logf
	_mounts+=("f:$mnt")
	local waited=0
	while ! is_union_mounted "$mnt"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			local rc=$?
			unset '_pid_of[$mnt]'
			_forget_mount "$mnt"
			fail "mount $mnt as uid $D ($opts): daemon exited with status $rc; its output:"
			sed 's/^/     | /' "$logf"
			return 1
		fi
		if [ "$waited" -ge $((MOUNT_WAIT * 20)) ]; then
			fail "mount $mnt as uid $D: not mounted after ${MOUNT_WAIT}s; daemon output:"
			sed 's/^/     | /' "$logf"
			return 1
		fi
		sleep 0.05
		waited=$((waited + 1))
	done
	return 0
}

# ---------------------------------------------------------------- part 2: D's own union against the kernel's

DIFF_T0=$(date +%s)

build() {
	local L=$1/l U=$1/u
	mkdir -p "$1"/{l,u,w,mnt}
	mkf "$L" f1
	mkf "$L" f2
	mkf "$L" f3
	mkf "$L" both
	mkf "$L" m/a
	mkf "$L" m/b
	mkd "$L" emp
	mkf "$L" sub/x
	mkf "$L" dd/keep
	mkln "$L" link f1
	mkf "$U" both
	mkf "$U" m/c
	mkf "$U" up/y
	find "$L" "$U" -exec touch -h -d "@$DIFF_OLD" {} + || die "touch"
	chown -R -h $D:$D "$1"
}

# The operations of part 2: LABEL, the answer both must give, fsop args.
cat >"$T/ops" <<'EOF'
create new	OK	create new 0644
write new	OK	write new 0 hello
read new	OK hello	read new
unlink lower f1	OK	unlink f1
f1 gone	ENOENT	stat f1
create over whiteout	OK	create f1 0600
write it	OK	write f1 0 again
read it	OK again	read f1
unlink lower f2	OK	unlink f2
unlink upper over lower	OK	unlink both
both gone	ENOENT	stat both
unlink in merged dir	OK	unlink m/a
create in merged dir	OK	create m/new 0644
rmdir empty lower dir	OK	rmdir emp
emp gone	ENOENT	stat emp
rmdir non-empty	ENOTEMPTY	rmdir dd
mkdir	OK	mkdir newd 0755
create in new dir	OK	create newd/z 0644
rename in new dir	OK	rename newd/z newd/z2
rename upper over lower	OK	rename new f3
read renamed	OK hello	read f3
rename in upper dir	OK	rename up/y up/y2
rename upper dir	OK	rename up up2
rename across dirs	OK	rename f3 newd/f3m
rename upper dir across dirs	OK	rename up2 newd/up3
exchange upper files	OK	rename f1 newd/f3m exchange
rename noreplace onto a name	EEXIST	rename f1 newd/z2 noreplace
read exchanged	OK hello	read f1
symlink	OK	symlink target sl
fifo	OK	mknod fi fifo 0644
socket	OK	mknod so sock 0644
hard link	OK	link newd/z2 hl
char device	EPERM	mknod cdev chr 1 3 0644
block device	EPERM	mknod bdev blk 7 0 0644
user xattr	OK	setxattr newd/z2 user.k v
get it	OK v	getxattr newd/z2 user.k
trusted xattr	EPERM	setxattr newd/z2 trusted.k v
chmod upper	OK	chmod newd/z2 0600
utimens upper	OK	utimens newd/z2 1000 2000
truncate upper	OK	truncate newd/z2 3
create setuid, write through that fd	OK	create-write newd/sw 4755 x
the write cleared setuid	OK f 0755 61101:61101 1 1	stat newd/sw
readdir root	-	readdir .
readdir merged	OK b/f,c/f,new/f	readdir m
readdir lower-only	OK x/f	readdir sub
read lower	-	read sub/x
readlink lower	OK f1	readlink link
empty merged dir	OK	unlink m/b
empty merged dir 2	OK	unlink m/c
empty merged dir 3	OK	unlink m/new
rmdir emptied merged dir	OK	rmdir m
m gone	ENOENT	stat m
stat hl	OK f 0600 61101:61101 3 2	stat hl
EOF

# run_ops: run $T/ops with the cwd given, one answer a line, then dump
# the tree. The kernel side runs it in a user namespace of D's, after
# mounting, with no capabilities left (the user's own rights).
cat >"$T/run_ops.sh" <<'EOF'
mnt=$1 out=$2 bin=$3 drop=$4
: >"$out"
while IFS=$'\t' read -r label want args; do
	read -ra a <<<"$args"
	got=$(cd "$mnt" && $drop "$bin/fsop" "${a[@]}" 2>&1)
	printf '%s\t%s\n' "$label" "$got" >>"$out"
done <"${out%.*}.list"
$drop "$bin/treedump" "$mnt" >"$out.dump" 2>&1
EOF

# kernel_side ROOT OUT [OPS]: overlayfs with userxattr in a user and mount
# namespace of D's (D mapped to itself), the ops run, the tree dumped;
# the mount dies with the namespace.
kernel_side() {
	local r=$1 out=$2 ops=${3:-$T/ops}
	cp "$ops" "${out%.*}.list"
	tl 60 setpriv --reuid=$D --regid=$D --clear-groups \
		unshare -U -m --map-user=$D --map-group=$D --keep-caps \
		bash -c 'mount -t overlay overlay -o "userxattr,lowerdir=$1/l,upperdir=$1/u,workdir=$1/w" "$1/mnt" &&
			bash "$2" "$1/mnt" "$3" "$4" "setpriv --ambient-caps=-all --inh-caps=-all"' \
		- "$r" "$T/run_ops.sh" "$out" "$T/bin" || return 1
}
union_side() {
	local r=$1 out=$2 ops=${3:-$T/ops}
	cp "$ops" "${out%.*}.list"
	tl 60 setpriv --reuid=$D --regid=$D --clear-groups bash "$T/run_ops.sh" "$r/mnt" "$out" "$T/bin" ""
}

# part2_compare REF UN [OPS]: one check per operation, then the trees.
part2_compare() {
	local ref=$1 un=$2 ops=${3:-$T/ops} label want args r u n=0
	while IFS=$'\t' read -r label want args; do
		n=$((n + 1))
		r=$(sed -n "${n}p" "$ref" | cut -f2-)
		u=$(sed -n "${n}p" "$un" | cut -f2-)
		dcheck "$label" "$want" "$r" "$u" "$args"
	done <"$ops"
	_dnorm <"$ref.dump" >"$ref.dump.n"
	_dnorm <"$un.dump" >"$un.dump.n"
	expect_same_file "union tree equals kernel overlayfs (userxattr, user namespace)" "$ref.dump.n" "$un.dump.n"
}
: >"$T/ref.answers"
# The users write their answers here.
OUT=$T/out
mkdir -p "$OUT"
chown $D:$D "$OUT"
: >"$T/un.answers"

# Part 3's branches: every object a copy-up trigger meets once, still
# lower when it does.
build3() {
	local L=$1/l
	mkdir -p "$1"/{l,u,w,mnt}
	mkf "$L" f ffff
	mkf "$L" g gggg
	setfattr -n user.k -v v0 "$L/g" || die "setfattr user.k on a lower file"
	mkf "$L" t tttt
	mkf "$L" u1 uuuu
	mkf "$L" xa xaxa
	mkf "$L" ln1 llll
	mkf "$L" r rrrr
	mkln "$L" s f
	mkfifo_at "$L" p
	mkf "$L" sub/x xxxx
	mkf "$L" dd/keep kkkk
	mkf "$L" emp2/inner iiii
	mkf "$L" cd/in cccc
	mkf "$L" mv/a aaaa
	mkf "$L" h1 hhhh
	ln "$L/h1" "$L/h2" || die "ln h1 h2"
	find "$1" -exec touch -h -d "@$DIFF_OLD" {} + || die "touch"
	chown -R -h $D:$D "$1"
}
# Part 3's operations, the same on both sides (each a copy-up of
# something still lower, or a marker).
cat >"$T/ops3" <<'EOF'
write lower	OK	write sub/x 0 z
read written	OK zxxx	read sub/x
append lower	OK	append f z
read appended	OK ffffz	read f
truncate lower	OK	truncate t 1
read truncated	OK t	read t
chmod lower	OK	chmod g 0600
stat chmodded	OK f 0600 61101:61101 4 1	stat g
its lower user xattr came along	OK v0	getxattr g user.k
utimens lower	OK	utimens u1 5 6
times	-	times u1
user xattr on lower	OK	setxattr xa user.k2 v2
get it	OK v2	getxattr xa user.k2
list it	OK user.k2	listxattr xa
link lower	OK	link ln1 ln2
stat link	OK f 0644 61101:61101 4 2	stat ln2
rename lower file	OK	rename r r2
read renamed	OK rrrr	read r2
old name gone	ENOENT	stat r
rename lower symlink	OK	rename s s2
readlink it	OK f	readlink s2
rename lower fifo	OK	rename p p2
stat fifo	OK p 0644 61101:61101 0 1	stat p2
create in lower-only dir	OK	create sub/new 0644
mkdir in lower-only dir	OK	mkdir sub/nd 0755
readdir it	-	readdir sub
unlink in lower-only dir	OK	unlink dd/keep
readdir emptied	OK 	readdir dd
chmod lower dir	OK	chmod cd 0700
stat dir	-	stat cd
empty a lower dir	OK	unlink emp2/inner
rmdir it	OK	rmdir emp2
mkdir over it	OK	mkdir emp2 0755
new dir is empty (opaque)	OK 	readdir emp2
readdir root	-	readdir .
EOF

log "part 2: D's union against kernel overlayfs in D's user namespace"
build "$T/ref"
build "$T/un"
snapshot "$T/un/l" "$T/un.l.before"
kernel_side "$T/ref" "$OUT/ref.out" || die "kernel overlayfs in a user namespace of uid $D failed (needs Linux >= 5.11)"
grep -q . "$OUT/ref.out" || die "the kernel side ran no operation"
build3 "$T/ref3"
build3 "$T/un3"
snapshot "$T/un3/l" "$T/un3.l.before"
kernel_side "$T/ref3" "$OUT/ref3.out" "$T/ops3" || die "kernel overlayfs in a user namespace (part 3) failed"
if selftest; then
	kernel_side "$T/un" "$OUT/un.out" || die "kernel side (self-test) failed"
	part2_compare "$OUT/ref.out" "$OUT/un.out"
	up_whiteout "whiteout of a lower file" f2
	up_whiteout "whiteout of an upper file over a lower one" both
	up_whiteout "whiteout of an empty lower dir" emp
	up_whiteout "whiteout of an emptied merged dir" m
	kernel_side "$T/un3" "$OUT/un3.out" "$T/ops3" || die "kernel side of part 3 (self-test) failed"
	part2_compare "$OUT/ref3.out" "$OUT/un3.out" "$T/ops3"
	finish
fi

M=$T/un/mnt
OPTS="lowerdir=$T/un/l,upperdir=$T/un/u,workdir=$T/un/w"

# ---------------------------------------------------------------- part 1: the daemon's identity

log "part 1: the daemon runs as uid $D"
nr_mount "$M" "$OPTS" || {
	fail "the daemon cannot be mounted by uid $D; stopping"
	finish
}
pid=${_pid_of[$M]}
st=$(awk '/^(Uid|Gid|Groups|CapEff|CapPrm):/ { $1 = $1; print }' "/proc/$pid/status" | tr '\n' ';')
expect_eq "daemon's credentials" "Uid: $D $D $D $D;Gid: $D $D $D $D;Groups:;CapPrm: 0000000000000000;CapEff: 0000000000000000;" "$st"
# mount_line picks the line by its mount point (escaped there: \040).
ml=$(mount_line "$M")
expect_match "mounted as fuse.unionmount by uid $D" "^[^ ]+ [^ ]+ fuse\.unionmount [^ ]*user_id=$D,group_id=$D" "$ml"
expect_match "default_permissions is on (POSIX ACLs)" "[ ,]default_permissions[, ]" "$ml"
if [[ $ml == *allow_other* ]]; then
	fail "allow_other not asked for, but on: $ml"
else
	pass "no allow_other unless asked"
fi
expect_match "mount log: user.* markers, fallthru off" \
	"markers are user\.\* attributes \(trusted\.\* cannot be written\): fallthru=off" "$(cat "${_log_of[$M]}")"
expect_op "without allow_other another user is refused" EACCES o "$T/un" stat mnt/f3
expect_op "without allow_other root is refused" EACCES root "$T" stat un/mnt/f3

union_side "$T/un" "$OUT/un.out" || fail "the union side of part 2 did not finish"
part2_compare "$OUT/ref.out" "$OUT/un.out"
# Passthrough (the default, auto) needs CAP_SYS_ADMIN: without it the
# daemon quietly does the I/O itself (part 2 wrote and read files), with
# no warning for an option not given.
expect_eq "daemon log: no warning about passthrough, which was not asked for" "" \
	"$(grep -i 'passthrough\|backing' "${_log_of[$M]}")"
# Nor about the weight: a user may not lower nice (no CAP_SYS_NICE), and
# the default -10 then leaves it as it was.
expect_eq "daemon log: no warning about nice, which was not asked for" "" "$(grep -i 'nice' "${_log_of[$M]}")"
# Nor about the read-ahead it raises through sysfs when it can (root
# only): a hint, logged only with -d.
expect_eq "daemon log: nothing about read-ahead, a hint a user cannot give" "" \
	"$(grep -i 'readahead\|read_ahead' "${_log_of[$M]}")"
expect_eq "the daemon's threads keep the nice they were started with" "$(ps -o ni= -p $$ | tr -d ' ')" \
	"$(ps -L -o ni= -p "$pid" | tr -d ' ' | sort -u | xargs)"

# On disk. The kernel's upper proves the whiteout expectation.
up_whiteout "whiteout of a lower file" f2
up_whiteout "whiteout of an upper file over a lower one" both
up_whiteout "whiteout of an empty lower dir" emp
up_whiteout "whiteout of an emptied merged dir" m
owners=$(find "$T/un/u" -type c -printf '%U:%G %t:%T\n' 2>/dev/null | sort -u | awk '{ print $1 }' | sort -u | tr '\n' ' ')
expect_eq "union's whiteouts are D's" "$D:$D " "$owners"
majmin=$(find "$T/un/u" -type c -exec stat -c '%t:%T' {} + | sort -u | tr '\n' ' ')
expect_eq "every device node on the union's upper is a whiteout (0:0): no fallthru" "0:0 " "$majmin"
markers=$(getfattr -R -h --absolute-names -d -m - "$T/un/u" "$T/un/w" 2>/dev/null |
	grep -E '^(trusted\.|user\.overlay\.|user\.unionmount\.|security\.)' | sort -u | tr '\n' ' ')
expect_eq "no marker xattr on the union's upper or workdir but the format (as root: trusted.* shown)" \
	'user.unionmount.format="2" ' "$markers"
expect_eq "the format marker is on the upper root" "2" \
	"$(getfattr -h --absolute-names --only-values -n user.unionmount.format "$T/un/u" 2>/dev/null)"
expect_eq "the user's own xattr is there" "user.k=\"v\"" \
	"$(getfattr -h --absolute-names -d -m 'user\.' "$T/un/u/newd/z2" 2>/dev/null | grep '^user')"

# d_dump MNT OUT: the union's tree as D sees it (root is refused
# without allow_other).
d_dump() {
	as_d "$T/bin/treedump" "$1" >"$2" 2>&1 || fail "treedump of $1 as uid $D failed: $(head -c 300 "$2")"
}
d_dump "$M" "$T/p2.final"
um_umount "$M"
# Asked for by name, a weight the user may not take is said, and the
# union mounts and serves all the same.
nr_mount "$M" "$OPTS,nice=-5" || finish
expect_match "nice=-5 asked for as uid $D: a warning naming the option and why" \
	"nice=-5 not applied to the daemon's threads: Permission denied" "$(cat "${_log_of[$M]}")"
d_dump "$M" "$T/p2.remount"
expect_same_file "after a remount the union shows the same tree" "$T/p2.final" "$T/p2.remount"
um_umount "$M"

# ---------------------------------------------------------------- part 3: copy-ups, rootless format

log "part 3: copy-ups with user.* markers"
M3=$T/un3/mnt
OPTS3="lowerdir=$T/un3/l,upperdir=$T/un3/u,workdir=$T/un3/w"
nr_mount "$M3" "$OPTS3" || finish
union_side "$T/un3" "$OUT/un3.out" "$T/ops3" || fail "the union side of part 3 did not finish"
part2_compare "$OUT/ref3.out" "$OUT/un3.out" "$T/ops3"

# Kernel overlayfs with userxattr keeps no redirects (EXDEV) and no
# index (the link breaks at copy-up): the union alone, hard-coded.
expect_op "rename a lower dir (a redirect)" OK d "$M3" rename mv mv2
expect_op "read in it" "OK aaaa" d "$M3" read mv2/a
expect_op "its old name is gone" ENOENT d "$M3" stat mv
expect_op "link a file hard-linked below" OK d "$M3" link h1 h3
expect_op "st_nlink counts its lower names" "OK f 0644 $D:$D 4 3" d "$M3" stat h3
expect_op "write through the new name" OK d "$M3" write h3 0 Z
expect_op "its other lower name is the same object" "OK Zhhh" d "$M3" read h2

# The markers are the union's: unseen, and neither set nor removed.
expect_op "an origin does not show" ENODATA d "$M3" getxattr sub/x user.unionmount.origin
expect_op "nor is it listed" "OK " d "$M3" listxattr sub/x
expect_op "the opaque marker does not show" ENODATA d "$M3" getxattr emp2 user.overlay.opaque
expect_op "nor the redirect" ENODATA d "$M3" getxattr mv2 user.overlay.redirect
expect_op "nor the root's format" ENODATA d "$M3" getxattr . user.unionmount.format
expect_op "the root lists none" "OK " d "$M3" listxattr .
expect_op "setxattr user.overlay.opaque" EPERM d "$M3" setxattr cd user.overlay.opaque y
expect_op "setxattr user.unionmount.origin" EPERM d "$M3" setxattr f user.unionmount.origin 0000000000000001
expect_op "setxattr of the root's format" EPERM d "$M3" setxattr . user.unionmount.format 3
expect_op "removexattr of the opaque marker" EPERM d "$M3" removexattr emp2 user.overlay.opaque
expect_op "removexattr of the user's own xattr" OK d "$M3" removexattr xa user.k2
expect_op "another user.* name on a dir" OK d "$M3" setxattr cd user.note hi
expect_op "reads back" "OK hi" d "$M3" getxattr cd user.note
expect_op "and is listed" "OK user.note" d "$M3" listxattr cd

# On disk, as root: the keys of the man page's ON-DISK FORMAT, where
# they belong.
x_of() { getfattr -h --absolute-names --only-values -n "$2" "$1" 2>/dev/null; }
U3=$T/un3/u
all3=$(getfattr -R -h --absolute-names -d -m - "$U3" "$T/un3/w" 2>/dev/null)
expect_eq "no trusted.* xattr on upper or workdir" "" "$(grep -E '^trusted\.' <<<"$all3" | sort -u | tr '\n' ' ')"
expect_eq "the marker keys on disk" \
	"user.overlay.opaque user.overlay.redirect user.unionmount.format user.unionmount.impure user.unionmount.lowerlinks user.unionmount.metacopy user.unionmount.origin " \
	"$(grep -oE '^user\.(overlay|unionmount)\.[^=]*' <<<"$all3" | sort -u | tr '\n' ' ')"
# 3: a chmod above copied a file up without its data (metacopy).
expect_eq "format on the upper root" 3 "$(x_of "$U3" user.unionmount.format)"
expect_eq "the root is impure (copied-up entries)" y "$(x_of "$U3" user.unionmount.impure)"
expect_match "origin of a copied-up file" '^[0-9a-f]{16}$' "$(x_of "$U3/sub/x" user.unionmount.origin)"
expect_match "origin of a copied-up dir" '^[0-9a-f]{16}$' "$(x_of "$U3/cd" user.unionmount.origin)"
expect_eq "opaque dir, as the kernel writes it" "y|y" \
	"$(x_of "$U3/emp2" user.overlay.opaque)|$(x_of "$T/ref3/u/emp2" user.overlay.opaque)"
expect_eq "redirect of the moved dir" /mv "$(x_of "$U3/mv2" user.overlay.redirect)"
expect_match "and its origin" '^[0-9a-f]{16}$' "$(x_of "$U3/mv2" user.unionmount.origin)"
expect_eq "no xattr on the copied-up symlink and fifo (user.* cannot be there)" "" \
	"$(getfattr -h --absolute-names -d -m - "$U3/s2" "$U3/p2" 2>/dev/null)"
expect_eq "the lower file's own user.k was copied, no other user.* name" "user.k=\"v0\"" \
	"$(getfattr -h --absolute-names -d -m '^user\.' "$U3/g" 2>/dev/null | grep -v -e '^#' -e '^$' -e '^user\.unionmount\.')"
ll=$(for e in "$T/un3/w/unionmount/index"/*; do x_of "$e" user.unionmount.lowerlinks; echo; done | sort | tr '\n' ' ')
expect_match "lowerlinks 2 on the hard-linked object's index entry" '(^| )2 ' "$ll"
owners3=$(find "$U3" "$T/un3/w/unionmount" -printf '%U:%G\n' | sort -u | tr '\n' ' ')
expect_eq "everything on upper and in the workdir is D's" "$D:$D " "$owners3"

d_dump "$M3" "$T/p3.final"
um_umount "$M3"
nr_mount "$M3" "$OPTS3" || finish
d_dump "$M3" "$T/p3.remount"
expect_same_file "part 3: after a remount the union shows the same tree" "$T/p3.final" "$T/p3.remount"

# Directories D may search but not read (0311), in a merged directory:
# their markers are user.* xattrs, which only a reader may get. After a
# remount the kernel looks them up afresh. Neither holds a marker (with
# user.* markers fallthru is off: no complete mark): one it could not read
# would still fail, as the man page says.
expect_op "mkdir in a merged dir" OK d "$M3" mkdir nox 0755
expect_op "a file in it" OK d "$M3" create nox/f 0644
expect_op "written" OK d "$M3" write nox/f 0 seen
expect_op "chmod it 0311" OK d "$M3" chmod nox 0311
expect_op "chmod a copied-up dir 0311" OK d "$M3" chmod cd 0311
um_umount "$M3"
nr_mount "$M3" "$OPTS3" || finish
expect_match "a new dir D cannot read: lookup" "^OK d 0311 $D:$D " "$(fsop_as d "$M3" stat nox)"
expect_op "its file reads" "OK seen" d "$M3" read nox/f
expect_op "and it does not list" EACCES d "$M3" readdir nox
expect_match "a copied-up dir D cannot read: lookup" "^OK d 0311 $D:$D " "$(fsop_as d "$M3" stat cd)"
expect_op "its file reads" "OK cccc" d "$M3" read cd/in
expect_op "chmod both back" OK d "$M3" chmod nox 0755
expect_op "(the other)" OK d "$M3" chmod cd 0700
expect_op "the new dir's file goes" OK d "$M3" unlink nox/f
expect_op "and the new dir" OK d "$M3" rmdir nox
um_umount "$M3"
left=$(find "$T/un3/w/unionmount/work" -mindepth 1 2>/dev/null | head -5)
expect_eq "part 3: the work dir holds nothing" "" "$left"

# ---------------------------------------------------------------- part 4: allow_other

log "part 4: allow_other"
A=$T/ao
mkdir -p "$A"/{l,u,w,mnt}
mkf "$A/l" pub pub
mkf "$A/l" rootsecret rootsecret
chmod 0600 "$A/l/rootsecret"
mkf "$A/l" rootdir/inner inner
chmod 0700 "$A/l/rootdir"
mkf "$A/l" dfile dlower
chown $D:$D "$A/l/dfile"
mkf "$A/u" d600 dsecret
chmod 0600 "$A/u/d600"
mkf "$A/u" d644 d644
mkf "$A/u" d666 d666
chmod 0666 "$A/u/d666"
mkf "$A/u" g640 group
chmod 0640 "$A/u/g640"
mkf "$A/u" priv/file priv
mkd "$A/u" shared
chmod 0777 "$A/u/shared"
mkf "$A/u" sticky/dfile sticky
chmod 1777 "$A/u/sticky"
chown -R $D:$D "$A/u" "$A/w" "$A/mnt"
chgrp $G "$A/u/g640"
snapshot "$A/l" "$T/ao.l.before"
AM=$A/mnt
nr_mount "$AM" "lowerdir=$A/l,upperdir=$A/u,workdir=$A/w,allow_other" || finish
expect_match "allow_other is on" "[ ,]allow_other[, ]" "$(mount_line "$AM")"

r=$(fsop_as o "$AM" stat .)
if [[ $r == "OK d "* ]]; then pass "O: stat the root -> $r"; else fail "O: stat the root: expected 'OK d ...', got '$r'"; fi
expect_op "O: read D's 0644" "OK d644" o "$AM" read d644
expect_op "O: read D's 0600" EACCES o "$AM" read d600
expect_op "O: write D's 0644" EACCES o "$AM" write d644 0 x
expect_op "O: write D's 0666" OK o "$AM" write d666 0 O
expect_op "O: it stays D's" "OK f 0666 $D:$D 4 1" o "$AM" stat d666
expect_op "O: read a 0640 file of group G, not in G" EACCES o "$AM" read g640
expect_op "O: read it in G" "OK group" og "$AM" read g640
expect_op "O: unlink in D's 0755 dir" EACCES o "$AM" unlink priv/file
expect_op "O: unlink D's file in a sticky dir" EPERM o "$AM" unlink sticky/dfile
expect_op "O: chmod D's file" EPERM o "$AM" chmod d644 0666
expect_op "O: read root's 0644 lower file" "OK pub" o "$AM" read pub
expect_op "O: read root's 0600 lower file" EACCES o "$AM" read rootsecret
expect_op "O: create in D's 0777 dir (the daemon cannot chown it to O)" EPERM o "$AM" create shared/o 0644
expect_op "O: mkdir there" EPERM o "$AM" mkdir shared/od 0755
expect_op "O: symlink there" EPERM o "$AM" symlink t shared/ol
expect_op "O: nothing of those shows" "OK " o "$AM" readdir shared

expect_op "D: read root's 0600 lower file" EACCES d "$AM" read rootsecret
expect_op "D: list root's 0700 lower dir" EACCES d "$AM" readdir rootdir
expect_op "D: chown its file to O" EPERM d "$AM" chown d644 $O -1
expect_op "D: chgrp to a group it is not in" EPERM d "$AM" chown d644 -1 $G
expect_op "D: chown to itself" OK d "$AM" chown d644 $D $D
expect_op "D: device node" EPERM d "$AM" mknod shared/dev chr 1 3 0644

expect_op "root: read D's 0600 file" "OK dsecret" root "$AM" read d600
expect_op "root: read root's 0600 lower file (the daemon has D's rights)" EACCES root "$AM" read rootsecret
expect_op "root: list root's 0700 lower dir" EACCES root "$AM" readdir rootdir
expect_op "root: read in it" EACCES root "$AM" read rootdir/inner
expect_op "root: chmod D's file" OK root "$AM" chmod d644 0640
expect_op "root: chown D's file to root" EPERM root "$AM" chown d644 0 0
expect_op "root: create (the daemon cannot chown it to root)" EPERM root "$AM" create shared/r 0644
expect_op "root: mkdir" EPERM root "$AM" mkdir shared/rd 0755
expect_op "root: device node" EPERM root "$AM" mknod shared/rdev chr 1 3 0644
expect_op "root: stat D's file" "OK f 0640 $D:$D 4 1" root "$AM" stat d644

left=$(find "$A/u/shared" "$A/w/unionmount/work" -mindepth 1 2>/dev/null | head -5)
expect_eq "nothing left on upper or in the work dir by the refused creations" "" "$left"
expect_eq "D's files on upper keep their contents" "O666|dsecret|priv|sticky" "$(cat "$A/u/d666"; printf '|'; cat "$A/u/d600"; printf '|'; cat "$A/u/priv/file"; printf '|'; cat "$A/u/sticky/dfile")"
um_umount "$AM"

# ---------------------------------------------------------------- part 5: mismatched formats

log "part 5: each format refused where it would be misread"
# nr_refused LABEL ERE MNT OPTS: the daemon as D must exit non-zero with
# one line on stderr matching ERE, and mount nothing.
nr_refused() {
	local label=$1 re=$2 mnt=$3 opts=$4 err=$T/nr_refused.err rc
	t setpriv --reuid=$D --regid=$D --clear-groups "$T/bin/unionmount" "$mnt" -o "$opts" >/dev/null 2>"$err"
	rc=$?
	if is_union_mounted "$mnt"; then
		fail "$label: mounted (status $rc)"
		timeout 10 fusermount3 -u "$mnt" || timeout 10 fusermount3 -uz "$mnt"
		return
	fi
	if [ "$rc" -eq 0 ] || [ "$(grep -c '' "$err")" -ne 1 ] || ! unquoted "$err" | grep -qE -- "$re"; then
		fail "$label: status $rc, want non-zero and one line matching /$re/: '$(head -c 400 "$err")'"
	else
		pass "$label: status $rc, '$(cat "$err")'"
	fi
}
M5=$T/m5
mkdir -p "$M5"
M_SAVED=$M
M=$M5 # expect_refused watches $M
expect_refused "root, D's user upper, no -o userxattr" "user\.\* attributes.*mount it with -o userxattr" \
	"$M5" -o "$OPTS3"
t "$UNIONCTL" check -o "$OPTS3" >"$T/ctl.out" 2>"$T/ctl.err"
rc=$?
expect_match "root's unionctl refuses it too" "^[1-9][0-9]*:.*user\.\* attributes.*-o userxattr" "$rc:$(head -c 400 "$T/ctl.err")"
t "$UNIONCTL" check -o "$OPTS3,userxattr" >"$T/ctl.out" 2>"$T/ctl.err"
expect_eq "root's unionctl check with userxattr" "0:no problems found" "$?:$(head -c 400 "$T/ctl.err")"
as_d "$T/bin/unionctl" check -o "$OPTS3" >"$T/ctl.out" 2>"$T/ctl.err"
expect_eq "D's unionctl check (user.* without asking)" "0:no problems found" "$?:$(head -c 400 "$T/ctl.err")"
if um_mount "$M5" "$OPTS3,userxattr"; then
	tree_dump "$M5" "$T/p5.root"
	expect_same_file "root with -o userxattr shows D's tree" "$T/p3.final" "$T/p5.root"
	um_umount "$M5"
fi
expect_eq "root's mount wrote no trusted.* marker into D's upper" "" \
	"$(getfattr -R -h --absolute-names -d -m '^trusted\.' "$U3" "$T/un3/w" 2>/dev/null | grep -v -e '^#' -e '^$')"

# An upper written by root.
R=$T/rt
mkdir -p "$R"/{l,u,w,mnt}
mkf "$R/l" dir/sub/x xxxx
chown -R $D:$D "$R"
ROPTS="lowerdir=$R/l,upperdir=$R/u,workdir=$R/w"
if um_mount "$R/mnt" "$ROPTS"; then
	t rm "$R/mnt/dir/sub/x" && t rmdir "$R/mnt/dir/sub" && t mkdir "$R/mnt/dir/sub" || fail "root's union: rm/rmdir/mkdir"
	um_umount "$R/mnt"
fi
expect_eq "root's upper: trusted format, user stamp, trusted opaque" "2|trusted|y|" \
	"$(x_of "$R/u" trusted.unionmount.format)|$(x_of "$R/u" user.unionmount.format)|$(x_of "$R/u/dir/sub" trusted.overlay.opaque)|$(x_of "$R/u/dir/sub" user.overlay.opaque)"
nr_refused "D, root's upper" "trusted\.\* attributes.*only root can read.*mount it as root" "$R/mnt" "$ROPTS"
nr_refused "D with -o userxattr, root's upper" "trusted\.\* attributes.*remove -o userxattr" "$R/mnt" "$ROPTS,userxattr"
expect_refused "root with -o userxattr, root's upper" "trusted\.\* attributes.*remove -o userxattr" \
	"$R/mnt" -o "$ROPTS,userxattr"
M=$M_SAVED

# ---------------------------------------------------------------- the end

snapshot "$T/un/l" "$T/un.l.after"
expect_same_file "part 2 lower byte-for-byte unchanged" "$T/un.l.before" "$T/un.l.after"
snapshot "$T/un3/l" "$T/un3.l.after"
expect_same_file "part 3 lower byte-for-byte unchanged" "$T/un3.l.before" "$T/un3.l.after"
snapshot "$A/l" "$T/ao.l.after"
expect_same_file "part 4 lower byte-for-byte unchanged" "$T/ao.l.before" "$T/ao.l.after"
finish
