#!/usr/bin/env bash
# t_unionctl: the offline companion unionctl(8) on branch sets written by
# the daemon itself (mount, change things through the mountpoint,
# unmount, then run unionctl). Rules checked (issue 5):
# 1. diff: one record per path, sorted by path component in byte order:
#    A added, M data (content, symlink target, type) changed, m metadata
#    only (mode, owner, user xattrs; times alone are no change), D deleted
#    (whiteouts, rm -rf of a lower tree, names an opaque directory hides),
#    R NEW<TAB>OLD for a moved directory (nested moves too) and none of
#    the deletions at its old place; a type change is M with the names
#    inside A or D; a directory's own chmod is m; changes to hard-linked
#    lower files, kept in the index, show under every name (and not
#    without workdir); fallthrus, complete, origin and impure marks are
#    never reported; names with spaces, newlines, tabs, control bytes and
#    backslashes are escaped (\n, \t, \001, \\), and exact with -z (R
#    then NUL-separated); the summary line on stderr, none with -q; diff
#    and check change nothing on disk (strict snapshots).
# 2. Locking: diff, check and check --repair refuse (exit 2, one line)
#    while the union is mounted read-write; with -o ro diff and check run
#    and check --repair refuses.
# 3. Usage errors exit 2 with a one-line message.
# 4. check on a clean set: exit 0, nothing on stdout. Damage made by hand
#    (a leftover file and tree in work/, a garbage origin xattr, a
#    fallthru to a layer beyond the stack, a lower object removed behind
#    its fallthru, a lower name added below a complete directory, an
#    orphaned index entry, a char device 0:7): each reported on its own
#    line, exit 1; --repair fixes all but the undecodable markers (one
#    line per fix); the next check reports only those (exit 1), and exit
#    0 once they are removed by hand; the union then mounts and lists
#    right, and check stays clean after the daemon refills the directory.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
selftest && skip "unionctl reads unionmount's own on-disk format; nothing to compare with kernel overlayfs"
command -v getfattr >/dev/null && command -v setfattr >/dev/null || skip "getfattr/setfattr (package attr) needed"

UNIONCTL=${UNIONCTL:-$(dirname "$UNIONMOUNT")/ctl/unionctl}
[ -x "$UNIONCTL" ] || die "UNIONCTL=$UNIONCTL is not executable"

L1=$T/l1 L2=$T/l2 U=$T/u W=$T/w M=$T/mnt
mkdir -p "$L1" "$L2" "$U" "$W" "$M"
OPTS="$(lowerdir_opt "$L1" "$L2"),upperdir=$U,workdir=$W"

# ctl ARGS...: run unionctl under the timeout; stdout in $T/out, stderr
# in $T/err, the exit status in $rc.
ctl() {
	t "$UNIONCTL" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}

# expect_out LABEL FILE: stdout of the last ctl equals FILE.
expect_out() { expect_same_file "$1" "$2" "$T/out"; }

# ---------------------------------------------------------------- the branches

NL=$'\n'
TAB=$'\t'
CTL=$'\001'
mkf "$L2" keep
mkf "$L2" mod "old"
mkf "$L2" meta
mkf "$L2" own
mkf "$L2" xat
mkf "$L2" touched
mkf "$L2" same
mkf "$L2" shadow "l2 version"
mkf "$L2" gone/x
mkf "$L2" gone/sub/y
mkf "$L2" mvsrc/a
mkf "$L2" mvsrc/deep/b
mkf "$L2" nest/inner/f
mkf "$L2" nest/g
mkf "$L2" reop/r
mkln "$L2" lnk tgt
mkf "$L2" tofile/c
mkf "$L2" todir
mkf "$L2" "sp ace"
mkf "$L2" "del${NL}me"
mkf "$L2" hl1 "linked"
mkhl "$L2" hl1 hl2
mkf "$L2" dir/a
mkf "$L1" dir/b
mkf "$L1" shadow "l1 version"
mkf "$L1" l1only
chmod 0644 "$L2/same"

log "changes through the mount"
um_mount "$M" "$OPTS" || finish
t ls -R "$M" >/dev/null # fallthrus and complete marks everywhere merged
(
	set -e
	cd "$M"
	echo new >"new file"
	echo nl >"nl${NL}name"
	echo tab >"tab${TAB}name"
	echo bs >'back\slash'
	echo c >"ctl${CTL}"
	mkdir newdir
	echo q >newdir/q
	echo changed >mod
	chmod 600 meta
	chown 1:1 own
	setfattr -n user.k -v v xat
	touch -d 2001-01-01 touched
	chmod 0644 same
	rm -rf gone
	mv mvsrc moved
	mv nest nest2
	mv nest2/inner inner2
	rm -rf reop
	mkdir reop
	echo n >reop/n
	rm lnk
	ln -s other lnk
	rm -rf tofile
	echo f >tofile
	rm todir
	mkdir todir
	echo t >todir/t
	rm "sp ace" "del${NL}me"
	echo more >>hl1
	rm dir/a
	chmod 0700 dir
	ls -R . >/dev/null
) 2>"$T/ops.err"
expect_eq "all changes through the mount succeed" "" "$(cat "$T/ops.err")"
expect_eq "the hard link shows the write through its other name" "linkedmore" "$(t cat "$M/hl2")"
log "lock: refused while mounted read-write"
ctl diff -o "$OPTS"
expect_eq "diff while mounted rw: exit 2" 2 "$rc"
expect_eq "diff while mounted rw: the message" \
	"unionctl: upperdir: '$U' is in use by a mounted union; unmount it first" "$(cat "$T/err")"
expect_eq "diff while mounted rw: nothing on stdout" "" "$(cat "$T/out")"
ctl check -o "$OPTS"
expect_eq "check while mounted rw: exit 2" 2 "$rc"
ctl check --repair -o "$OPTS"
expect_eq "check --repair while mounted rw: exit 2" 2 "$rc"
expect_eq "check --repair while mounted rw: the message" \
	"unionctl: upperdir: '$U' is in use by a mounted union; unmount it first" "$(cat "$T/err")"
um_umount "$M"

# ---------------------------------------------------------------- diff

log "diff"
snapshot "$U" "$T/u.before"
snapshot "$W" "$T/w.before"
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"
cat >"$T/want" <<'EOF'
A back\\slash
A ctl\001
D del\nme
m dir
D dir/a
D gone
D gone/sub
D gone/sub/y
D gone/x
M hl1
M hl2
R inner2	nest/inner
M lnk
m meta
M mod
R moved	mvsrc
R nest2	nest
A new file
A newdir
A newdir/q
A nl\nname
m own
A reop/n
D reop/r
D sp ace
A tab\tname
M todir
A todir/t
M tofile
D tofile/c
m xat
EOF
SUMMARY="9 added, 10 modified (4 metadata only), 9 deleted, 3 renamed"
ctl diff -o "$OPTS"
expect_eq "diff: exit 0" 0 "$rc"
expect_out "diff: the records" "$T/want"
expect_eq "diff: the summary on stderr" "$SUMMARY" "$(cat "$T/err")"

# -z: the same records, names raw, NUL-terminated, R's two paths NUL-separated.
{
	printf 'A back\\slash\0A ctl\001\0D del\nme\0m dir\0D dir/a\0D gone\0D gone/sub\0D gone/sub/y\0D gone/x\0'
	printf 'M hl1\0M hl2\0R inner2\0nest/inner\0M lnk\0m meta\0M mod\0R moved\0mvsrc\0R nest2\0nest\0'
	printf 'A new file\0A newdir\0A newdir/q\0A nl\nname\0m own\0A reop/n\0D reop/r\0D sp ace\0'
	printf 'A tab\tname\0M todir\0A todir/t\0M tofile\0D tofile/c\0m xat\0'
} >"$T/want.z"
ctl diff -z -o "$OPTS"
expect_eq "diff -z: exit 0" 0 "$rc"
expect_out "diff -z: the records, byte for byte" "$T/want.z"
ctl diff -q -z -o "$OPTS"
expect_eq "diff -q: exit 0" 0 "$rc"
expect_eq "diff -q: no summary" "" "$(cat "$T/err")"
expect_out "diff -q -z: the same records" "$T/want.z"

# Split options, the workdir left out: the same answer (the index copy of
# hl1 is reached through the workdir, so without it hl1/hl2 look unchanged).
ctl diff -o "$(lowerdir_opt "$L1" "$L2")" -o "upperdir=$U,workdir=$W"
expect_out "diff with the options in two -o" "$T/want"
ctl diff -o "$(lowerdir_opt "$L1" "$L2"),upperdir=$U"
grep -v '^M hl[12]$' "$T/want" >"$T/want.nowork"
expect_out "diff without workdir: all but the index copies" "$T/want.nowork"

log "check on the set the daemon left"
ctl check -o "$OPTS"
expect_eq "check: exit 0 on a clean set" 0 "$rc"
expect_eq "check: nothing on stdout" "" "$(cat "$T/out")"
expect_eq "check: the summary" "no problems found" "$(cat "$T/err")"

snapshot "$U" "$T/u.after"
snapshot "$W" "$T/w.after"
snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "diff and check change nothing in upper" "$T/u.before" "$T/u.after"
expect_same_file "diff and check change nothing in the workdir" "$T/w.before" "$T/w.after"
expect_same_file "diff and check change nothing in l1" "$T/l1.before" "$T/l1.after"
expect_same_file "diff and check change nothing in l2" "$T/l2.before" "$T/l2.after"

log "a read-only mount shares the upper"
um_mount "$M" "$OPTS,ro" || finish
ctl diff -q -o "$OPTS"
expect_eq "diff while mounted ro: exit 0" 0 "$rc"
expect_out "diff while mounted ro: the records" "$T/want"
ctl check -o "$OPTS"
expect_eq "check while mounted ro: exit 0" 0 "$rc"
ctl check --repair -o "$OPTS"
expect_eq "check --repair while mounted ro: exit 2" 2 "$rc"
expect_match "check --repair while mounted ro: the message" "is in use by a mounted union; unmount it first" \
	"$(cat "$T/err")"
um_umount "$M"

# ---------------------------------------------------------------- usage

log "usage errors"
usage_case() { # LABEL ERE ARGS...
	local label=$1 ere=$2
	shift 2
	ctl "$@"
	expect_eq "$label: exit 2" 2 "$rc"
	expect_match "$label: one line naming the problem" "^unionctl: .*$ere" "$(cat "$T/err")"
	expect_eq "$label: one line only" 1 "$(wc -l <"$T/err")"
}
usage_case "no command" "missing command"
usage_case "unknown command" "unknown command 'frob'" frob -o "$OPTS"
usage_case "diff without -o" "missing -o" diff
usage_case "unknown option" "unknown option '--repair'" diff --repair -o "$OPTS"
usage_case "stray argument" "unexpected argument 'extra'" diff -o "$OPTS" extra
usage_case "-o without a list" "-o: missing option list" diff -o
usage_case "unknown -o option" "unknown option 'bogus'" diff -o "$OPTS,bogus"
usage_case "no upperdir" "missing upperdir" diff -o "$(lowerdir_opt "$L1")"
usage_case "check without workdir" "missing workdir" check -o "$(lowerdir_opt "$L1"),upperdir=$U"
usage_case "missing upperdir" "upperdir: cannot open '$T/nothere'" diff -o "$(lowerdir_opt "$L1"),upperdir=$T/nothere"
usage_case "missing lowerdir" "lowerdir: cannot open '$T/nolower'" diff -o "lowerdir=$T/nolower,upperdir=$U"
usage_case "workdir on another filesystem" "workdir: '/dev' is not on the upperdir's filesystem" \
	check -o "$OPTS,workdir=/dev"
ctl --help
expect_eq "--help: exit 0" 0 "$rc"
expect_match "--help: usage on stdout" "^usage: unionctl diff" "$(cat "$T/out")"
ctl -V
expect_eq "-V: exit 0" 0 "$rc"
expect_match "-V: version" "^unionctl [0-9]" "$(cat "$T/out")"

# ---------------------------------------------------------------- check

log "damage made by hand"
FT_L7=$((0x80000 + 7))
echo junk >"$W/unionmount/work/t1.1"
mkdir -p "$W/unionmount/work/t1.2/d"
echo j >"$W/unionmount/work/t1.2/d/f"
setfattr -n trusted.unionmount.origin -v garbage "$U/mod"
mknod "$U/dir/ghost" c 0 "$FT_L7"
mknod "$U/dir/gh${NL}ost" c 0 "$FT_L7"
[ "$(_fallthru_layer "$U/keep")" == 2 ] || die "scenario: upper/keep should be a fallthru to layer 2"
rm "$L2/keep"
[ -n "$(getfattr --absolute-names --only-values -n trusted.unionmount.complete "$U" 2>/dev/null)" ] ||
	die "scenario: the upper root should be complete"
echo late >"$L1/latecomer"
echo orphan >"$W/unionmount/index/00000000deadbeef"
mknod "$U/weird" c 0 7

cat >"$T/want.check" <<'EOF'
workdir:unionmount/work/t1.1: leftover temporary (unionmount was stopped while building it)
workdir:unionmount/work/t1.2: leftover temporary (unionmount was stopped while building it)
upper:keep: fallthru to layer 2, which no longer has it
upper:mod: trusted.unionmount.origin is 'garbage', which does not decode; the daemon fails with EIO there; left alone
upper:weird: character device 0:7 is neither a whiteout (0:0) nor a fallthru (0:0x80000+layer); left alone
upper:.: marked complete, but 1 name visible from below has no entry in upper (first: 'latecomer', from layer 1)
upper:dir/gh\nost: fallthru to layer 7, but there are 2 lowerdirs
upper:dir/ghost: fallthru to layer 7, but there are 2 lowerdirs
workdir:unionmount/index/00000000deadbeef: orphaned index entry: one link, and no name in the union reaches it
EOF
ctl check -o "$OPTS"
expect_eq "check: exit 1 with problems" 1 "$rc"
expect_out "check: one line per problem" "$T/want.check"
expect_eq "check: the summary" "9 problems found" "$(cat "$T/err")"
expect_eq "check without --repair removes nothing" "t1.1 t1.2" "$(ls "$W/unionmount/work" | xargs)"

ctl diff -q -o "$OPTS"
expect_eq "diff on the damaged set: exit 1 (names it could not judge)" 1 "$rc"
expect_match "diff names the undecodable origin on stderr" "unionctl: mod: a marker on it does not decode" \
	"$(cat "$T/err")"
expect_match "diff names the fallthru to a layer without the object" \
	"unionctl: keep: its fallthru names layer 2, which does not have it" "$(cat "$T/err")"

cat >"$T/want.repair" <<'EOF'
workdir:unionmount/work/t1.1: leftover temporary (unionmount was stopped while building it)
workdir:unionmount/work/t1.1: repaired: removed
workdir:unionmount/work/t1.2: leftover temporary (unionmount was stopped while building it)
workdir:unionmount/work/t1.2: repaired: removed
upper:keep: fallthru to layer 2, which no longer has it
upper:mod: trusted.unionmount.origin is 'garbage', which does not decode; the daemon fails with EIO there; left alone
upper:weird: character device 0:7 is neither a whiteout (0:0) nor a fallthru (0:0x80000+layer); left alone
upper:.: marked complete, but 1 name visible from below has no entry in upper (first: 'latecomer', from layer 1)
upper:keep: repaired: stale fallthru removed
upper:.: repaired: complete mark removed (the next listing fills the directory again)
upper:dir/gh\nost: fallthru to layer 7, but there are 2 lowerdirs
upper:dir/ghost: fallthru to layer 7, but there are 2 lowerdirs
upper:dir/gh\nost: repaired: stale fallthru removed
upper:dir/ghost: repaired: stale fallthru removed
upper:dir: repaired: complete mark removed (the next listing fills the directory again)
workdir:unionmount/index/00000000deadbeef: orphaned index entry: one link, and no name in the union reaches it
workdir:unionmount/index/00000000deadbeef: repaired: removed
EOF
root_mtime=$(stat -c %Y "$U")
ctl check --repair -o "$OPTS"
expect_eq "check --repair: exit 1 (problems were found)" 1 "$rc"
expect_out "check --repair: problems and one line per fix" "$T/want.repair"
expect_eq "check --repair: the summary" "9 problems found, 8 repairs made" "$(cat "$T/err")"
expect_eq "repair keeps the upper root's mtime" "$root_mtime" "$(stat -c %Y "$U")"
expect_eq "work/ is empty" "" "$(ls -A "$W/unionmount/work")"
expect_eq "the orphan is gone from the index" no "$([ -e "$W/unionmount/index/00000000deadbeef" ] && echo yes || echo no)"
expect_eq "the hard-linked copy stays in the index" 1 "$(ls "$W/unionmount/index" | wc -l)"
expect_eq "the undecodable origin is left alone" garbage \
	"$(getfattr --absolute-names --only-values -n trusted.unionmount.origin "$U/mod" 2>/dev/null)"

cat >"$T/want.after" <<'EOF'
upper:mod: trusted.unionmount.origin is 'garbage', which does not decode; the daemon fails with EIO there; left alone
upper:weird: character device 0:7 is neither a whiteout (0:0) nor a fallthru (0:0x80000+layer); left alone
EOF
ctl check -o "$OPTS"
expect_eq "check after repair: exit 1 for what it left alone" 1 "$rc"
expect_out "check after repair: only the undecodable markers" "$T/want.after"
ctl check --repair -o "$OPTS"
expect_out "check --repair again: nothing more to repair" "$T/want.after"

setfattr -x trusted.unionmount.origin "$U/mod"
rm "$U/weird"
ctl check -o "$OPTS"
expect_eq "check once those are removed by hand: exit 0" 0 "$rc"
expect_eq "check once those are removed by hand: nothing on stdout" "" "$(cat "$T/out")"

log "the union after the repair"
um_mount "$M" "$OPTS" || finish
expect_eq "the lower name added meanwhile shows" "late" "$(t cat "$M/latecomer")"
expect_eq "the name removed below is gone" gone "$(t stat "$M/keep" >/dev/null 2>&1 && echo present || echo gone)"
expect_eq "dir lists without the stale fallthru" "b" "$(t ls "$M/dir" | xargs)"
# find prints each name raw: newline, tab and \001 shown as N, T and C, / between.
expect_eq "the root lists every name once" \
	'back\slash/ctlC/dir/hl1/hl2/inner2/l1only/latecomer/lnk/meta/mod/moved/nest2/new file/newdir/nlNname/own/reop/same/shadow/tabTname/todir/tofile/touched/xat/' \
	"$(tin "$M" find . -mindepth 1 -maxdepth 1 -printf '%P\0' | LC_ALL=C sort -z | tr '\0\n\t\001' '/NTC')"
expect_eq "a file reads through the repaired root" "changed" "$(t cat "$M/mod")"
um_umount "$M"
expect_eq "the listing made the root complete again" yes \
	"$([ -n "$(getfattr --absolute-names --only-values -n trusted.unionmount.complete "$U" 2>/dev/null)" ] && echo yes || echo no)"
ctl check -o "$OPTS"
expect_eq "check after the daemon refilled the root: exit 0" 0 "$rc"
expect_eq "check after the daemon refilled the root: nothing on stdout" "" "$(cat "$T/out")"
ctl diff -o "$OPTS"
expect_eq "diff afterwards: exit 0" 0 "$rc"
expect_out "diff afterwards: the same records" "$T/want"

log "lock: right after fusermount3 -u of a backgrounded daemon"
# fusermount3 returns before the daemon has exited; unionctl waits for it.
# The window is usually milliseconds: this catches a refusal, it cannot
# force the race.
if t "$UNIONMOUNT" "$M" -o "$OPTS"; then
	_mounts+=("f:$M")
	pid=$(bg_daemon_pid "$M") && _pid_of[$M]=$pid
	t cat "$M/mod" >/dev/null
	t fusermount3 -u "$M"
	_forget_mount "$M"
	ctl diff -o "$OPTS"
	expect_eq "diff straight after fusermount3 -u: exit 0" 0 "$rc"
	expect_out "diff straight after fusermount3 -u: the same records" "$T/want"
else
	fail "background mount for the unmount race failed"
fi
finish
