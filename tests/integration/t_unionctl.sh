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
upper:mod: trusted.unionmount.origin is 'garbage', which does not decode; the daemon lists it with its upper inode number and fails to look it up (EIO); left alone
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

# The fallthrus to layer 7 say the upper was written with another lowerdir
# list: --repair alone makes only the repairs no list decides (work/).
cat >"$T/want.repair1" <<'EOF'
workdir:unionmount/work/t1.1: leftover temporary (unionmount was stopped while building it)
workdir:unionmount/work/t1.1: repaired: removed
workdir:unionmount/work/t1.2: leftover temporary (unionmount was stopped while building it)
workdir:unionmount/work/t1.2: repaired: removed
upper:keep: fallthru to layer 2, which no longer has it
upper:mod: trusted.unionmount.origin is 'garbage', which does not decode; the daemon lists it with its upper inode number and fails to look it up (EIO); left alone
upper:weird: character device 0:7 is neither a whiteout (0:0) nor a fallthru (0:0x80000+layer); left alone
upper:.: marked complete, but 1 name visible from below has no entry in upper (first: 'latecomer', from layer 1)
upper:dir/gh\nost: fallthru to layer 7, but there are 2 lowerdirs
upper:dir/ghost: fallthru to layer 7, but there are 2 lowerdirs
workdir:unionmount/index/00000000deadbeef: orphaned index entry: one link, and no name in the union reaches it
EOF
snapshot "$U" "$T/u.before.repair"
ctl check --repair -o "$OPTS"
expect_eq "check --repair, list in doubt: exit 1" 1 "$rc"
expect_out "check --repair, list in doubt: only work/ repaired" "$T/want.repair1"
expect_eq "check --repair, list in doubt: why, then the summary" \
	"unionctl: check: the lowerdir list given does not look like the one the union is mounted with (complete marks for another list, or fallthrus to layers beyond it); stale fallthrus, complete marks and orphaned index entries are reported, not repaired; if the list is right, repair them with --force-stack${NL}9 problems found, 2 repairs made" \
	"$(cat "$T/err")"
snapshot "$U" "$T/u.after.repair"
expect_same_file "check --repair, list in doubt: upper unchanged" "$T/u.before.repair" "$T/u.after.repair"
expect_eq "check --repair, list in doubt: work/ is empty" "" "$(ls -A "$W/unionmount/work")"
expect_eq "check --repair, list in doubt: the orphan stays" yes \
	"$([ -e "$W/unionmount/index/00000000deadbeef" ] && echo yes || echo no)"

cat >"$T/want.repair" <<'EOF'
upper:keep: fallthru to layer 2, which no longer has it
upper:mod: trusted.unionmount.origin is 'garbage', which does not decode; the daemon lists it with its upper inode number and fails to look it up (EIO); left alone
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
ctl check --repair --force-stack -o "$OPTS"
expect_eq "check --repair --force-stack: exit 1 (problems were found)" 1 "$rc"
expect_out "check --repair --force-stack: problems and one line per fix" "$T/want.repair"
expect_eq "check --repair --force-stack: the summary" "7 problems found, 6 repairs made" "$(cat "$T/err")"
expect_eq "repair keeps the upper root's mtime" "$root_mtime" "$(stat -c %Y "$U")"
expect_eq "the orphan is gone from the index" no "$([ -e "$W/unionmount/index/00000000deadbeef" ] && echo yes || echo no)"
expect_eq "the hard-linked copy stays in the index" 1 "$(ls "$W/unionmount/index" | wc -l)"
expect_eq "the undecodable origin is left alone" garbage \
	"$(getfattr --absolute-names --only-values -n trusted.unionmount.origin "$U/mod" 2>/dev/null)"

cat >"$T/want.after" <<'EOF'
upper:mod: trusted.unionmount.origin is 'garbage', which does not decode; the daemon lists it with its upper inode number and fails to look it up (EIO); left alone
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

# ---------------------------------------------------------------- regressions
# Each on a branch set of its own, made by the daemon and damaged by hand.

# set_up NAME: empty branches under $T/NAME: S_L1 S_L2 S_U S_W S_M, S_OPTS.
set_up() {
	local d=$T/$1
	S_L1=$d/l1 S_L2=$d/l2 S_U=$d/u S_W=$d/w S_M=$d/m
	mkdir -p "$S_L1" "$S_L2" "$S_U" "$S_W" "$S_M"
	S_OPTS="$(lowerdir_opt "$S_L1" "$S_L2"),upperdir=$S_U,workdir=$S_W"
}

log "regression: an index entry the union reaches through a fallthru is kept, and so is the fallthru"
# A hard-linked lower file changed through the union lives in the index;
# its name stays a fallthru to layer 2. A file (then a whiteout) added to
# layer 1 while unmounted makes a fresh listing pick layer 1, but the
# daemon, honouring the complete mark, still shows the change.
set_up r1
mkf "$S_L2" d/x "orig${NL}"
mkhl "$S_L2" d/x d/z
mkf "$S_L1" d/other
um_mount "$S_M" "$S_OPTS" || finish
echo "MY EDIT" >>"$S_M/d/x"
rm "$S_M/d/z"
t ls "$S_M/d" >/dev/null
um_umount "$S_M"
key=$(ls "$S_W/unionmount/index")
[ "$(_fallthru_layer "$S_U/d/x")" == 2 ] && [ -n "$key" ] ||
	die "scenario: d/x should be a fallthru to layer 2 with its copy in the index"
echo "l1 new" >"$S_L1/d/x"
cat >"$T/want.r1" <<EOF
upper:d/x: fallthru to layer 2, but layer 1 shows the name now; kept: by it the union shows index entry $key, a file changed through the union, which removing it would hide
EOF
ctl check --repair -o "$S_OPTS"
expect_eq "fallthru to an index copy, layer 1 added: exit 1" 1 "$rc"
expect_out "fallthru to an index copy, layer 1 added: reported, kept" "$T/want.r1"
expect_eq "fallthru to an index copy, layer 1 added: the index entry stays" yes \
	"$([ -e "$S_W/unionmount/index/$key" ] && echo yes || echo no)"
rm "$S_L1/d/x"
mknod "$S_L1/d/x" c 0 0
sed -i 's/but layer 1 shows the name now/but a whiteout above that layer hides it/' "$T/want.r1"
ctl check --repair -o "$S_OPTS"
expect_out "fallthru to an index copy, whiteout added in layer 1: reported, kept" "$T/want.r1"
expect_eq "fallthru to an index copy, whiteout added: the index entry stays" yes \
	"$([ -e "$S_W/unionmount/index/$key" ] && echo yes || echo no)"
um_mount "$S_M" "$S_OPTS" || finish
expect_eq "the union still shows the change made through it" "orig${NL}MY EDIT" "$(t cat "$S_M/d/x")"
um_umount "$S_M"
# Its lower names gone while unmounted: no name reaches the entry, but its
# lowerlinks still counts one, and the daemon would keep it.
rm "$S_L1/d/x" "$S_L2/d/x" "$S_L2/d/z"
cat >"$T/want.r1b" <<EOF
upper:d/x: fallthru to layer 2, which no longer has it
upper:d/x: repaired: stale fallthru removed
upper:d: repaired: complete mark removed (the next listing fills the directory again)
workdir:unionmount/index/$key: index entry no name of the union reaches, but its trusted.unionmount.lowerlinks counts 1 name in lower directories; kept, as the daemon keeps it
EOF
ctl check --repair -o "$S_OPTS"
expect_out "index entry with lowerlinks no name reaches: reported, kept" "$T/want.r1b"
expect_eq "index entry with lowerlinks no name reaches: it stays" yes \
	"$([ -e "$S_W/unionmount/index/$key" ] && echo yes || echo no)"

log "regression: a lowerdir list unlike the union's gets no list-judged repairs"
set_up r2
mkf "$S_L1" a/one
mkf "$S_L2" a/two
mkf "$S_L2" h1 linked
mkhl "$S_L2" h1 h2
um_mount "$S_M" "$S_OPTS" || finish
t ls -R "$S_M" >/dev/null
echo more >>"$S_M/h1"
rm "$S_M/h2"
um_umount "$S_M"
snapshot "$S_U" "$T/r2.u.before"
snapshot "$S_W" "$T/r2.w.before"
ctl check --repair -o "lowerdir=$S_L2,upperdir=$S_U,workdir=$S_W"
expect_eq "short lowerdir list: exit 1" 1 "$rc"
expect_match "short lowerdir list: complete marks for another list reported" \
	"^upper:\.: marked complete for another list of lower directories \(1 directory in all\)" "$(cat "$T/out")"
expect_match "short lowerdir list: a fallthru beyond it, in words" \
	"upper:h1: fallthru to layer 2, but there is 1 lowerdir" "$(cat "$T/out")"
expect_match "short lowerdir list: why nothing is repaired" \
	"^unionctl: check: the lowerdir list given does not look like the one the union is mounted with" "$(cat "$T/err")"
snapshot "$S_U" "$T/r2.u.after"
snapshot "$S_W" "$T/r2.w.after"
expect_same_file "short lowerdir list: upper unchanged" "$T/r2.u.before" "$T/r2.u.after"
expect_same_file "short lowerdir list: workdir unchanged (index kept)" "$T/r2.w.before" "$T/r2.w.after"
um_mount "$S_M" "$S_OPTS" || finish
expect_eq "short lowerdir list: the union still shows its change" "linkedmore" "$(t cat "$S_M/h1")"
# Another upper with this workdir: the mounted union holds the workdir.
mkdir -p "$T/r2/u2"
ctl diff -o "$(lowerdir_opt "$S_L1" "$S_L2"),upperdir=$T/r2/u2,workdir=$S_W"
expect_eq "diff with a workdir in use by another union: exit 2" 2 "$rc"
expect_eq "diff with a workdir in use by another union: the message" \
	"unionctl: workdir: '$S_W' is in use by a mounted union; unmount it first" "$(cat "$T/err")"
ctl check -o "$(lowerdir_opt "$S_L1" "$S_L2"),upperdir=$T/r2/u2,workdir=$S_W"
expect_eq "check with a workdir in use by another union: exit 2" 2 "$rc"
um_umount "$S_M"

log "regression: the work/ purge leaves a filesystem mounted in work/ alone"
set_up r3
mkf "$S_L1" f
um_mount "$S_M" "$S_OPTS" || finish
um_umount "$S_M"
mkdir "$S_W/unionmount/work/mnt"
mount -t tmpfs tmpfs "$S_W/unionmount/work/mnt" || die "cannot mount a tmpfs"
_mounts+=("k:$S_W/unionmount/work/mnt")
echo precious >"$S_W/unionmount/work/mnt/file"
cat >"$T/want.r3" <<'EOF'
workdir:unionmount/work/mnt: leftover temporary (unionmount was stopped while building it)
workdir:unionmount/work/mnt: not removed: another filesystem is mounted there; unmount it first
EOF
ctl check --repair -o "$S_OPTS"
expect_eq "a mount in work/: exit 1" 1 "$rc"
expect_out "a mount in work/: reported, not removed" "$T/want.r3"
expect_eq "a mount in work/: its files stay" precious "$(cat "$S_W/unionmount/work/mnt/file" 2>&1)"
umount "$S_W/unionmount/work/mnt" && _forget_mount "$S_W/unionmount/work/mnt"

log "regression: a redirect that names no directory is a problem"
set_up r4
mkf "$S_L1" a/f
um_mount "$S_M" "$S_OPTS" || finish
mv "$S_M/a" "$S_M/b"
um_umount "$S_M"
for v in / //; do
	setfattr -n trusted.overlay.redirect -v "$v" "$S_U/b"
	cat >"$T/want.r4" <<EOF
upper:b: trusted.overlay.redirect is '$v', which does not decode; the daemon fails to look it up (EIO); left alone
upper:b: skipped: a marker on it does not decode (see above)
EOF
	ctl check -o "$S_OPTS"
	expect_eq "redirect '$v': check exits 1" 1 "$rc"
	expect_out "redirect '$v': reported" "$T/want.r4"
	ctl diff -q -o "$S_OPTS"
	expect_eq "redirect '$v': diff exits 1" 1 "$rc"
done
um_mount "$S_M" "$S_OPTS" || finish
expect_probe "redirect '//': the daemon fails the lookup" EIO stat "$S_M/b"
um_umount "$S_M"

log "a garbage origin on a directory: the daemon lists it, diff compares it"
set_up r5
mkf "$S_L1" a/f
mkf "$S_L1" keep
um_mount "$S_M" "$S_OPTS" || finish
mv "$S_M/a" "$S_M/b"
mkdir "$S_M/newdir"
um_umount "$S_M"
[ "$(getfattr --absolute-names --only-values -n trusted.unionmount.impure "$S_U" 2>/dev/null)" == y ] ||
	die "scenario: the upper root should be impure"
setfattr -n trusted.unionmount.origin -v garbage "$S_U/newdir"
ctl diff -o "$S_OPTS"
expect_eq "garbage origin on a directory: diff exits 0 (a directory's number never comes from it)" 0 "$rc"
printf 'R b\ta\nA newdir\n' >"$T/want.r5"
expect_out "garbage origin on a directory: its names compared" "$T/want.r5"
ctl check -o "$S_OPTS"
expect_eq "garbage origin on a directory: check" \
	"upper:newdir: trusted.unionmount.origin is 'garbage', which does not decode; the daemon lists it with its upper inode number; left alone" \
	"$(cat "$T/out")"
um_mount "$S_M" "$S_OPTS" || finish
expect_eq "garbage origin on a directory: the daemon lists its parent" "b keep newdir" \
	"$(t ls "$S_M" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
um_umount "$S_M"

log "regression: a deletion inside a directory moved out of a moved one"
set_up r6
mkf "$S_L1" a/s/y
mkf "$S_L1" a/s/k
mkf "$S_L1" a/t
um_mount "$S_M" "$S_OPTS" || finish
mv "$S_M/a" "$S_M/b"
mv "$S_M/b/s" "$S_M/s2"
rm "$S_M/s2/y"
um_umount "$S_M"
printf 'R b\ta\nR s2\ta/s\nD s2/y\n' >"$T/want.r6"
ctl diff -o "$S_OPTS"
expect_eq "moved out of a moved directory: exit 0" 0 "$rc"
expect_out "moved out of a moved directory: the deletion inside is listed" "$T/want.r6"

log "regression: damaged format and opaque values are reported, not fatal"
set_up r7
mkf "$S_L1" d/f
um_mount "$S_M" "$S_OPTS" || finish
mkdir "$S_M/o"
um_umount "$S_M"
setfattr -n trusted.unionmount.format -v 12345678901234567890 "$S_U"
setfattr -n trusted.overlay.opaque -v 0x00 "$S_U/o"
cat >"$T/want.r7" <<'EOF'
upper:.: trusted.unionmount.format is '12345678901234567890', which does not decode; the daemon refuses to mount the union; left alone
upper:o: trusted.overlay.opaque is '\000', not y; read as not opaque
EOF
ctl check -o "$S_OPTS"
expect_eq "a long format value and a NUL opaque value: exit 1" 1 "$rc"
expect_out "a long format value and a NUL opaque value: each reported" "$T/want.r7"

log "regression: a workdir the daemon would refuse is refused"
mkdir -p "$T/lay/l/w" "$T/lay/u/w" "$T/lay/w/u"
usage_case "workdir is upperdir" "workdir: '$T/lay/u' is the upperdir itself, which the daemon refuses" \
	check -o "lowerdir=$T/lay/l,upperdir=$T/lay/u,workdir=$T/lay/u"
usage_case "workdir inside upperdir" "workdir: '$T/lay/u/w' is inside upperdir '$T/lay/u'" \
	check -o "lowerdir=$T/lay/l,upperdir=$T/lay/u,workdir=$T/lay/u/w"
usage_case "workdir inside a lowerdir" "workdir: '$T/lay/l/w' is inside lowerdir '$T/lay/l'" \
	diff -o "lowerdir=$T/lay/l,upperdir=$T/lay/u,workdir=$T/lay/l/w"
usage_case "workdir is a lowerdir" "workdir: '$T/lay/l' is the lowerdir itself" \
	check -o "lowerdir=$T/lay/l,upperdir=$T/lay/u,workdir=$T/lay/l"
usage_case "upperdir inside workdir" "upperdir: '$T/lay/w/u' is inside workdir '$T/lay/w'" \
	check --repair -o "lowerdir=$T/lay/l,upperdir=$T/lay/w/u,workdir=$T/lay/w"
usage_case "--force-stack without --repair" "check: --force-stack only goes with --repair" \
	check --force-stack -o "$OPTS"

log "regression: no leak when an xattr list fails after it was sized"
# Only an AddressSanitizer build can tell; the failure is injected with an
# LD_PRELOAD shim that fails the Nth sized llistxattr() on a name "leakme".
if ! ldd "$UNIONCTL" 2>/dev/null | grep -q libasan; then
	log "not checked: $UNIONCTL is not built with -Db_sanitize=address"
elif ! command -v cc >/dev/null; then
	log "not checked: no cc to build the fault-injection shim"
else
	cat >"$T/shim.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
ssize_t llistxattr(const char *path, char *list, size_t size)
{
	static ssize_t (*real)(const char *, char *, size_t);
	static int n;
	const char *at = getenv("SHIM_FAIL_AT");
	size_t len = strlen(path);

	if (!real)
		real = (ssize_t (*)(const char *, char *, size_t))dlsym(RTLD_NEXT, "llistxattr");
	if (size > 0 && at && len >= 7 && !strcmp(path + len - 7, "/leakme") && ++n == atoi(at)) {
		errno = EIO;
		return -1;
	}
	return real(path, list, size);
}
EOF
	cc -shared -fPIC -o "$T/shim.so" "$T/shim.c" -ldl || die "cannot build the shim"
	# Where the kernel has listxattrat (Linux 6.13), unionctl lists
	# through it (src/sys.c); denied, it takes llistxattr(), which the
	# shim fails.
	printf '#!/bin/sh\nexec "%s" listxattrat=ENOSYS "%s" "$@"\n' "$(helper deny)" "$UNIONCTL" >"$T/unionctl-old"
	chmod 0755 "$T/unionctl-old"
	set_up r9
	mkf "$S_L1" leakme same
	setfattr -n user.low -v 1 "$S_L1/leakme"
	um_mount "$S_M" "$S_OPTS" || finish
	setfattr -n user.k -v v "$S_M/leakme"
	um_umount "$S_M"
	for k in 1 2; do # the upper's list fails, then the lower's
		UNIONCTL=$T/unionctl-old ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1 SHIM_FAIL_AT=$k \
			LD_PRELOAD=$T/shim.so ctl diff -q -o "$S_OPTS"
		expect_eq "xattr list $k fails: exit 1" 1 "$rc"
		expect_eq "xattr list $k fails: named, and nothing leaked" \
			"unionctl: leakme: cannot read it: Input/output error; not compared" "$(cat "$T/err")"
	done
fi
finish
