#!/usr/bin/env bash
# t_corrupt: damaged or odd on-disk state in upper costs the damaged object,
# not the union. For each kind of damage: the object fails with EIO, or gets
# the behaviour the man pages document (unionmount(8) ON-DISK FORMAT and
# DIAGNOSTICS, unionctl(8) check), with a log line where the daemon
# refuses it; every other name keeps working; the daemon does not crash;
# nothing in upper is rewritten over the damage.
#
# 1. An origin attribute that does not decode, in an impure directory
#    (where the daemon reads origins): the name is still listed (first
#    listing, which writes fallthrus, and later ones) with one log line
#    naming it, a lookup of a damaged file fails with EIO.
# 2. Odd markers kernel overlayfs reads the same way (compared with it,
#    and run by the self-test): trusted.overlay.opaque other than "y" ("n",
#    "yes", "Y", empty, "x", "y\0") is not opaque; character devices 0:7,
#    0:1 and 0:0x80000 and a block device 0:0 in upper are objects, not
#    whiteouts; a whiteout in upper (or in a lower) where a lower has a
#    directory hides the whole path (a/b is ENOENT, and cannot be created);
#    a redirect naming nothing (a truncated "/targ" for "/target") leaves
#    the directory its upper part alone.
# 3. Fallthrus in a complete directory that show nothing: to a layer
#    beyond the stack (9, and 0x7ffff, the last minor number), to a layer
#    that has a whiteout there, to a layer that has only a fallthru there:
#    EIO with the documented log line, listed once each, the rest served.
# 4. Redirects that name no place (empty, "..", "/../x", "a/b", ".", "/",
#    a NUL inside), in directories marked impure by us and by kernel
#    overlayfs: lookup fails with EIO, with a log line naming the dir.
# 5. trusted.unionmount.* values that do not decode: complete on a
#    directory (EIO, log line), origin of 15 or 17 digits, with a NUL, on a
#    symlink and on a file with two names (EIO, log line), impure other
#    than "y" (origins there are not read: the file works), lowerlinks of
#    index entries ("abc", "99999", empty: EIO for every name of the file,
#    log line), junk names in the workdir's index and fallthru dirs (left
#    alone); format on the upper root (refused at mount, one line saying
#    the directory is damaged) and complete on the root (refused).
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
command -v getfattr >/dev/null && command -v setfattr >/dev/null || skip "getfattr/setfattr (package attr) needed"
# Part 2's oracle; without it the daemon's own checks still run.
if grep -qw overlay /proc/filesystems || { modprobe overlay 2>/dev/null && grep -qw overlay /proc/filesystems; }; then
	HAVE_OVL=1
else
	HAVE_OVL=0
	selftest && skip "kernel overlayfs not available"
fi

# xval FILE NAME: the attribute's value in hex (0x...), "" when absent.
xval() { getfattr --absolute-names -h -e hex -n "$2" "$1" 2>/dev/null | sed -n "s/^$2=//p"; }
complete_of() { getfattr --absolute-names --only-values -n trusted.unionmount.complete "$1" 2>/dev/null; }
# listed DIR: "NAME DTYPE" per entry (cookies list: one readdir pass).
listed() {
	local c=$HELPERS/cookies
	[ -x "$c" ] || { c=$T/cookies; [ -x "$c" ] || cc -O2 -Wall -o "$c" "$LIB_DIR/cookies.c" || die "cannot build helper cookies"; }
	tl 60 "$c" list "$1" 2>&1 | awk '$1 != "/" { print $1, $2 }' | LC_ALL=C sort
}
# logged MNT ERE: does the daemon's log have a line matching ERE?
logged() { grep -qE -- "$2" "${_log_of[$1]}"; }
alive() {
	if daemon_alive "$1"; then pass "$2: the daemon still runs"; else fail "$2: the daemon died"; fi
}

# ================================================================ 1. origins
if ! selftest; then
	L=$T/l U=$T/u W=$T/w M=$T/m
	mkdir -p "$U" "$W" "$M"
	mkf "$L" a
	mkf "$L" b
	mkf "$L" dir/x
	mkd "$U" dir
	printf 'upper a\n' >"$U/a"
	mkd "$U" sub
	printf 'upper s\n' >"$U/sub/s"
	setfattr -n trusted.unionmount.impure -v y "$U"
	setfattr -n trusted.unionmount.origin -v garbage "$U/a"
	setfattr -n trusted.unionmount.origin -v 00000000000001zz "$U/sub"

	um_mount "$M" "lowerdir=$L,upperdir=$U,workdir=$W" || finish
	expect_eq "first listing: every name, the damaged ones too" "a b dir sub" "$(t ls "$M" | tr '\n' ' ' | sed 's/ $//')"
	expect_probe "lookup of the damaged file" EIO stat "$M/a"
	# A directory's number never comes from its origin (INODE NUMBERS), so its
	# lookup does not read it: only the listing meets the damage.
	expect_eq "the damaged directory still works" "l:x upper s" "$(t cat "$M/dir/x" | sed 's/dir\///') $(t cat "$M/sub/s")"
	expect_eq "the other names work" "l:b|l:dir/x" "$(t cat "$M/b")|$(t cat "$M/dir/x")"
	expect_eq "a later listing too" "a b dir sub" "$(t ls "$M" | tr '\n' ' ' | sed 's/ $//')"
	expect_eq "log lines name the damaged names" "yes yes" \
		"$(grep -q "'a': its trusted.unionmount.origin attribute does not decode" "${_log_of[$M]}" && echo yes) $(grep -q "'sub': its trusted.unionmount.origin attribute does not decode" "${_log_of[$M]}" && echo yes)"
	um_umount "$M"
	expect_eq "the damage is left as it was, for unionctl check to report" "garbage 00000000000001zz" \
		"$(getfattr --absolute-names --only-values -n trusted.unionmount.origin "$U/a") $(getfattr --absolute-names --only-values -n trusted.unionmount.origin "$U/sub")"
	if got=$(_is_fallthru "$U/b" 1); then
		pass "the first listing completed around the damage: b has its fallthru"
	else
		fail "the first listing did not write the fallthru of b: $got"
	fi
fi

# ================================================================ 2. as kernel overlayfs
log "2. odd markers kernel overlayfs reads the same way"
K=$T/k
KL1=$K/l1 KL2=$K/l2 KU=$K/u KW=$K/w KM=$K/m
mkdir -p "$KL1" "$KL2" "$KU" "$KW" "$KM"
declare -A OPQ=([opq_n]=n [opq_yes]=yes [opq_Y]=Y [opq_empty]='""' [opq_x]=x [opq_y0]=0x7900 [opq_y]=y)
for d in "${!OPQ[@]}"; do
	mkf "$KU" "$d/uf"
	mkf "$KL1" "$d/l1f"
	mkf "$KL2" "$d/l2f"
	setfattr -n trusted.overlay.opaque -v "${OPQ[$d]}" "$KU/$d" || die "cannot set the opaque value ${OPQ[$d]}"
done
for n in c07 c01 c80000 b00; do mkf "$KL1" "$n"; done
mknod "$KU/c07" c 0 7
mknod "$KU/c01" c 0 1
mknod "$KU/c80000" c 0 $((0x80000))
mknod "$KU/b00" b 0 0
mkwh "$KU" wd
mkf "$KL1" wd/b
mkf "$KL1" wd/sub/c
mkf "$KU" lw/own
mkwh "$KL1" lw
mkf "$KL2" lw/b
mkf "$KL1" target/tf
mkf "$KU" rp/rtrunc/own
mkf "$KU" rp/fine
setfattr -n trusted.overlay.impure -v y "$KU/rp"
setfattr -n trusted.overlay.redirect -v /targ "$KU/rp/rtrunc"
opq_before=$(for d in $(printf '%s\n' "${!OPQ[@]}" | sort); do printf '%s=%s ' "$d" "$(xval "$KU/$d" trusted.overlay.opaque)"; done)

[ $HAVE_OVL -eq 1 ] && oracle_dump "$K/oracle.dump" "$KU" "$KL1" "$KL2"
um_mount "$KM" "upperdir=$KU,workdir=$KW,$(lowerdir_opt "$KL1" "$KL2")" || finish
if [ $HAVE_OVL -eq 1 ]; then
	tree_dump "$KM" "$K/union.dump"
	expect_same_file "the tree equals kernel overlayfs (read-only, upper as a lower)" "$K/oracle.dump" "$K/union.dump"
else
	log "no kernel overlayfs: the tree is not compared with it"
fi
for d in opq_n opq_yes opq_Y opq_empty opq_x opq_y0; do
	expect_eq "trusted.overlay.opaque=${OPQ[$d]}: not opaque, merged" "l1f l2f uf" "$(t ls "$KM/$d" | xargs)"
done
expect_eq "trusted.overlay.opaque=y: opaque" "uf" "$(t ls "$KM/opq_y" | xargs)"
expect_eq "char 0:7 in upper over a lower file" "character special file 0:7" "$(t stat -c '%F %t:%T' "$KM/c07")"
expect_eq "char 0:1 in upper over a lower file" "character special file 0:1" "$(t stat -c '%F %t:%T' "$KM/c01")"
expect_eq "char 0:80000 in upper over a lower file" "character special file 0:80000" "$(t stat -c '%F %t:%T' "$KM/c80000")"
expect_eq "block 0:0 in upper over a lower file" "block special file 0:0" "$(t stat -c '%F %t:%T' "$KM/b00")"
expect_probe "a whiteout in upper over a lower dir" ENOENT lstat "$KM/wd"
expect_probe "... hides a/b" ENOENT lstat "$KM/wd/b"
expect_probe "... and a/sub/c" ENOENT lstat "$KM/wd/sub/c"
expect_probe "... a/b cannot be created" ENOENT creat "$KM/wd/b"
expect_probe "... nor a/new made a dir" ENOENT mkdir "$KM/wd/new"
expect_eq "a whiteout in l1 between an upper dir and an l2 dir: the upper part only" "own" "$(t ls "$KM/lw" | xargs)"
expect_probe "... l2's lw/b is hidden" ENOENT lstat "$KM/lw/b"
expect_eq "a redirect naming nothing (truncated): its upper part alone" "own" "$(t ls "$KM/rp/rtrunc" | xargs)"
expect_eq "... and its sibling works" "u:rp/fine" "$(t cat "$KM/rp/fine")"
expect_probe "unlink the char 0:7 over a lower file" OK unlink "$KM/c07"
expect_probe "... the lower file stays hidden" ENOENT lstat "$KM/c07"
alive "$KM" "after the odd markers"
um_umount "$KM"
expect_eq "the unlinked char 0:7 became a whiteout" "character special file 0:0" "$(_describe "$KU/c07")"
expect_eq "the opaque values are left as they were" "$opq_before" \
	"$(for d in $(printf '%s\n' "${!OPQ[@]}" | sort); do printf '%s=%s ' "$d" "$(xval "$KU/$d" trusted.overlay.opaque)"; done)"
expect_eq "the truncated redirect is left as it was" "/targ" "$(getfattr --absolute-names --only-values -n trusted.overlay.redirect "$KU/rp/rtrunc" 2>/dev/null)"

if selftest; then
	log "self-test: parts 3-5 are unionmount's own markers: skipped"
	finish
fi

# ================================================================ 3-5: our own markers
# One layout; the first mount makes the markers (listings write fallthrus
# and complete marks, chmods make index entries), then they are damaged by
# hand and the second mount meets the damage.
D=$T/d
DL1=$D/l1 DL2=$D/l2 DU=$D/u DW=$D/w DM=$D/m
mkdir -p "$DL1" "$DL2" "$DU" "$DW" "$DM"
DOPTS="upperdir=$DU,workdir=$DW,$(lowerdir_opt "$DL1" "$DL2")"
# 3: ft/ gets fallthrus; c is whited out in l2 below l1's c, ghost in l2
# is a fallthru device (says "look further down", and nothing is there).
for n in a b c keep; do mkf "$DL1" "ft/$n"; done
mkf "$DL2" ft/e
mkwh "$DL2" ft/c
mknod "$DL2/ft/ghost" c 0 $((0x80002))
mkd "$DU" ft
# 5: complete marks on cm*/, a sibling with a valid mark written in upper case
for d in cm_z cm_short cm_long cm_blank cm_nl cm_nul cm_upper cm_ok; do
	mkf "$DL1" "$d/lf"
	mkf "$DU" "$d/uf"
done
# 5: origins and impure flags
mkf "$DU" or/o15
mkf "$DU" or/o17
mkf "$DU" or/onul
mkf "$DU" or/oupper
mkf "$DU" or/fine
mkf "$DU" or/hl1
mkhl "$DU" or/hl1 or/hl2
mkln "$DU" or/sl fine
mkf "$DU" ig/f
# 5: lower files with several names, for index entries
for n in hx hy hz hok; do
	mkf "$DL1" "h/$n"
	mkhl "$DL1" "h/$n" "h/$n.2"
done
mkhl "$DL1" h/hx h/hx.3
# 4: redirects, below one dir marked impure by us and one by kernel overlayfs
mkf "$DL1" target/tf
mkf "$DL1" target2/tf2
declare -A RED=([rempty]='""' [rdotdot]=/../target [rslash]=a/b [rdotdotrel]=.. [rdot]=. [rroot]=/ [rnul]=0x2f7461726765740078)
for p in rp rq; do
	for n in "${!RED[@]}" rok; do mkf "$DU" "$p/$n/own"; done
	mkf "$DU" "$p/fine"
done

um_mount "$DM" "$DOPTS" || finish
t ls "$DM" "$DM/ft" "$DM"/cm_* >/dev/null
for n in hx hy hz hok; do t chmod 0600 "$DM/h/$n"; done
declare -A KEY=()
for n in hx hy hz hok; do KEY[$n]=$(printf '%016x' "$(t stat -c %i "$DM/h/$n")"); done
um_umount "$DM"
STACK=$(complete_of "$DU/ft")
[[ $STACK =~ ^[0-9a-f]{16}$ ]] || die "the first listing left no complete mark on ft (saw '$STACK')"
for n in hx hy hz hok; do
	[ -f "$DW/unionmount/index/${KEY[$n]}" ] || die "no index entry ${KEY[$n]} for h/$n after its copy-up"
done
expect_eq "setup: h/hx's index entry counts its 3 names still below" 3 \
	"$(getfattr --absolute-names --only-values -n trusted.unionmount.lowerlinks "$DW/unionmount/index/${KEY[hx]}")"

# --- the damage
# 3: fallthrus that show nothing
rm -f "$DU/ft/a" "$DU/ft/b" "$DU/ft/c"
mknod "$DU/ft/a" c 0 $((0x80009))
mknod "$DU/ft/b" c 0 $((0xfffff))
mknod "$DU/ft/c" c 0 $((0x80002))
[ -e "$DU/ft/ghost" ] || mknod "$DU/ft/ghost" c 0 $((0x80002))
ft_before=$(cd "$DU/ft" && stat -c '%n %F %t:%T' -- a b c ghost)
# 5: complete marks
setfattr -n trusted.unionmount.complete -v zzzzzzzzzzzzzzzz "$DU/cm_z"
setfattr -n trusted.unionmount.complete -v 0123 "$DU/cm_short"
setfattr -n trusted.unionmount.complete -v "${STACK}0" "$DU/cm_long"
setfattr -n trusted.unionmount.complete -v " ${STACK:1}" "$DU/cm_blank"
setfattr -n trusted.unionmount.complete -v "0x$(printf '%s' "${STACK:0:15}" | od -An -tx1 | tr -d ' \n')0a" "$DU/cm_nl"
setfattr -n trusted.unionmount.complete -v "0x$(printf '%s' "${STACK:0:8}" | od -An -tx1 | tr -d ' \n')00$(printf '%s' "${STACK:9:7}" | od -An -tx1 | tr -d ' \n')" "$DU/cm_nul"
setfattr -n trusted.unionmount.complete -v "$(printf '%s' "$STACK" | tr a-f A-F)" "$DU/cm_upper"
setfattr -n trusted.unionmount.complete -v "$STACK" "$DU/cm_ok"
CMBAD="cm_z cm_short cm_long cm_blank cm_nl cm_nul"
cm_before=$(for d in $CMBAD cm_upper; do printf '%s=%s ' "$d" "$(xval "$DU/$d" trusted.unionmount.complete)"; done)
# 5: origins (or/ impure) and an impure flag that does not decode (ig/)
setfattr -n trusted.unionmount.impure -v y "$DU/or"
setfattr -n trusted.unionmount.origin -v 0123456789abcde "$DU/or/o15"
setfattr -n trusted.unionmount.origin -v 0123456789abcdef0 "$DU/or/o17"
setfattr -n trusted.unionmount.origin -v 0x30313233343536370038393031323334 "$DU/or/onul"
setfattr -n trusted.unionmount.origin -v 0123456789ABCDEF "$DU/or/oupper"
setfattr -n trusted.unionmount.origin -v 01234567zz89abcd "$DU/or/hl1"
setfattr -n trusted.unionmount.origin -v zz "$DU/or/sl" -h
setfattr -n trusted.unionmount.impure -v yes "$DU/ig"
setfattr -n trusted.unionmount.origin -v garbage "$DU/ig/f"
or_before=$(for n in o15 o17 onul hl1 sl; do printf '%s=%s ' "$n" "$(xval "$DU/or/$n" trusted.unionmount.origin)"; done)
# 5: lowerlinks
setfattr -n trusted.unionmount.lowerlinks -v abc "$DW/unionmount/index/${KEY[hx]}"
setfattr -n trusted.unionmount.lowerlinks -v 99999 "$DW/unionmount/index/${KEY[hy]}"
setfattr -n trusted.unionmount.lowerlinks -v '""' "$DW/unionmount/index/${KEY[hz]}"
ll_before=$(for n in hx hy hz; do printf '%s=%s ' "$n" "$(xval "$DW/unionmount/index/${KEY[$n]}" trusted.unionmount.lowerlinks)"; done)
# 5: junk in the workdir's own dirs
printf 'junk\n' >"$DW/unionmount/index/notakey"
printf 'junk\n' >"$DW/unionmount/fallthru/junk"
# 4: redirects
for p in rp rq; do
	for n in "${!RED[@]}"; do
		setfattr -n trusted.overlay.redirect -v "${RED[$n]}" "$DU/$p/$n" || die "cannot set the redirect ${RED[$n]}"
	done
	setfattr -n trusted.overlay.redirect -v /target "$DU/$p/rok"
done
setfattr -n trusted.unionmount.impure -v y "$DU/rp"
setfattr -n trusted.overlay.impure -v y "$DU/rq"
red_before=$(for p in rp rq; do for n in $(printf '%s\n' "${!RED[@]}" | sort); do printf '%s=%s ' "$p/$n" "$(xval "$DU/$p/$n" trusted.overlay.redirect)"; done; done)

um_mount "$DM" "$DOPTS" || finish

log "3. fallthrus that show nothing, in a complete directory"
expect_probe "a fallthru to layer 9 of 2" EIO lstat "$DM/ft/a"
expect_probe "a fallthru to layer 0x7ffff (the last minor number)" EIO lstat "$DM/ft/b"
expect_probe "a fallthru to a layer with a whiteout there" EIO lstat "$DM/ft/c"
expect_probe "a fallthru to a layer with only a fallthru there" EIO lstat "$DM/ft/ghost"
expect_eq "ft lists every name once, the broken ones with no type" "a u,b u,c u,e f,ghost u,keep f" \
	"$(listed "$DM/ft" | grep -v '^\.' | paste -sd,)"
expect_eq "the other names of ft work" "l1:ft/keep l2:ft/e" "$(t cat "$DM/ft/keep" "$DM/ft/e" | xargs)"
for nl in "a 9" "b 524287" "c 2" "ghost 2"; do
	set -- $nl
	if logged "$DM" "'$1': its fallthru says layer $2, which does not have it"; then
		pass "log line for the fallthru of $1 (layer $2)"
	else
		fail "expected the log line \"'$1': its fallthru says layer $2, which does not have it ...\"; log:"
		daemon_log "$DM" 10
	fi
done
expect_probe "create a file beside them" OK creat "$DM/ft/new"
expect_probe "remove a sound name beside them" OK unlink "$DM/ft/keep"
expect_probe "writing a broken one fails" EIO open "$DM/ft/a" w
expect_probe "so does renaming a sound name over a broken one" EIO rename "$DM/ft/e" "$DM/ft/b"
expect_eq "... which leaves the sound one" "l2:ft/e" "$(t cat "$DM/ft/e")"
alive "$DM" "after the broken fallthrus"

log "4. redirects that name no place"
for p in rp rq; do
	[ "$p" == rp ] && by="trusted.unionmount.impure" || by="trusted.overlay.impure"
	for n in $(printf '%s\n' "${!RED[@]}" | sort); do
		expect_probe "$p ($by): redirect ${RED[$n]}" EIO lstat "$DM/$p/$n"
	done
	expect_eq "$p: the dir with a good redirect merges it" "own tf" "$(t ls "$DM/$p/rok" | xargs)"
	expect_eq "$p: its sibling file works" "u:$p/fine" "$(t cat "$DM/$p/fine")"
	expect_eq "$p lists every name once" "fine rdot rdotdot rdotdotrel rempty rnul rok rroot rslash" \
		"$(listed "$DM/$p" | awk '$1 != "." && $1 != ".." { print $1 }' | xargs)"
done
missing=''
for n in $(printf '%s\n' "${!RED[@]}" | sort); do
	logged "$DM" "'$n'.*redirect|redirect.*'$n'" || missing+=" $n"
done
expect_eq "a log line names each dir whose redirect names no place (missing for:)" "" "${missing# }"
alive "$DM" "after the bad redirects"

log "5. trusted.unionmount.* values that do not decode"
for d in $CMBAD; do
	expect_probe "complete mark $d" EIO lstat "$DM/$d"
done
expect_eq "a complete mark in upper case digits decodes" "lf uf" "$(t ls "$DM/cm_upper" | xargs)"
expect_eq "a good complete mark" "lf uf" "$(t ls "$DM/cm_ok" | xargs)"
missing=''
for d in $CMBAD; do logged "$DM" "'$d'.*complete|complete.*'$d'" || missing+=" $d"; done
expect_eq "a log line names each dir whose complete mark does not decode (missing for:)" "" "${missing# }"
for n in o15 o17 onul hl1 hl2 sl; do
	expect_probe "origin that does not decode: or/$n" EIO lstat "$DM/or/$n"
done
expect_probe "an origin in upper case digits decodes" OK lstat "$DM/or/oupper"
expect_eq "... and is the number" "$((0x0123456789abcdef))" "$(t stat -c %i "$DM/or/oupper")"
expect_eq "or/ lists every name once" "fine hl1 hl2 o15 o17 onul oupper sl" \
	"$(listed "$DM/or" | awk '$1 != "." && $1 != ".." { print $1 }' | xargs)"
expect_eq "the sound file of or/ works" "u:or/fine" "$(t cat "$DM/or/fine")"
expect_probe "renaming it over a damaged name fails" EIO rename "$DM/or/fine" "$DM/or/o15"
expect_eq "... and leaves it" "u:or/fine" "$(t cat "$DM/or/fine")"
expect_probe "a new file in or/" OK creat "$DM/or/new"
missing=''
for n in o15 o17 onul hl1 sl; do
	logged "$DM" "'$n': its trusted.unionmount.origin attribute does not decode" || missing+=" $n"
done
expect_eq "the documented log line for each damaged origin (missing for:)" "" "${missing# }"
# Every look at a damaged object fails, and each logs: ten in a row give
# one line and a count, not a screenful.
t stat "$DM/or/o17" >/dev/null 2>&1 # so that o15's is not the line before
before=$(wc -l <"${_log_of[$DM]}")
for i in 1 2 3 4 5 6 7 8 9 10; do t stat "$DM/or/o15" >/dev/null 2>&1; done
t stat "$DM/or/oupper" >/dev/null 2>&1
t touch "$DM/or/o17" 2>/dev/null # another damaged one: a different line
expect_eq "ten failing stats of one damaged file log its line once" 1 \
	"$(tail -n +$((before + 1)) "${_log_of[$DM]}" | grep -c "'o15': its trusted.unionmount.origin")"
expect_eq "... and then how often it was held back" 1 \
	"$(tail -n +$((before + 1)) "${_log_of[$DM]}" | grep -cE 'the line before repeated [0-9]+ more times')"
expect_eq "impure=yes is no flag: origins there are not read, the file works" "u:ig/f" "$(t cat "$DM/ig/f")"
for n in hx hx.2 hx.3 hy hy.2 hz hz.2; do
	expect_probe "lowerlinks that do not decode: h/$n" EIO lstat "$DM/h/$n"
done
expect_eq "a file with a sound index entry: both names, one inode, nlink 2" "2 2 $(t stat -c %i "$DM/h/hok")" \
	"$(t stat -c %h "$DM/h/hok") $(t stat -c %h "$DM/h/hok.2") $(t stat -c %i "$DM/h/hok.2")"
missing=''
for n in hx hy hz; do
	logged "$DM" "${KEY[$n]}.*lowerlinks|lowerlinks.*${KEY[$n]}|'$n'.*lowerlinks|lowerlinks.*'$n'" || missing+=" $n:${KEY[$n]}"
done
expect_eq "a log line names each index entry whose lowerlinks do not decode (missing for:)" "" "${missing# }"
expect_eq "h/ lists every name once" "hok hok.2 hx hx.2 hx.3 hy hy.2 hz hz.2" \
	"$(listed "$DM/h" | awk '$1 != "." && $1 != ".." { print $1 }' | xargs)"
expect_eq "the root lists" "cm_blank cm_long cm_nl cm_nul cm_ok cm_short cm_upper cm_z ft h ig or rp rq target target2" "$(t ls "$DM" | xargs)"
alive "$DM" "after everything"
um_umount "$DM"

log "nothing in upper is rewritten over the damage"
expect_eq "the broken fallthrus" "$ft_before" "$(cd "$DU/ft" && stat -c '%n %F %t:%T' -- a b c ghost)"
expect_eq "ft keeps its complete mark" "$STACK" "$(complete_of "$DU/ft")"
expect_eq "the complete marks" "$cm_before" "$(for d in $CMBAD cm_upper; do printf '%s=%s ' "$d" "$(xval "$DU/$d" trusted.unionmount.complete)"; done)"
expect_eq "the origins" "$or_before" "$(for n in o15 o17 onul hl1 sl; do printf '%s=%s ' "$n" "$(xval "$DU/or/$n" trusted.unionmount.origin)"; done)"
expect_eq "the impure flag and the origin below it" "yes garbage" \
	"$(getfattr --absolute-names --only-values -n trusted.unionmount.impure "$DU/ig") $(getfattr --absolute-names --only-values -n trusted.unionmount.origin "$DU/ig/f")"
expect_eq "the lowerlinks" "$ll_before" "$(for n in hx hy hz; do printf '%s=%s ' "$n" "$(xval "$DW/unionmount/index/${KEY[$n]}" trusted.unionmount.lowerlinks)"; done)"
expect_eq "the redirects" "$red_before" "$(for p in rp rq; do for n in $(printf '%s\n' "${!RED[@]}" | sort); do printf '%s=%s ' "$p/$n" "$(xval "$DU/$p/$n" trusted.overlay.redirect)"; done; done)"
expect_eq "junk in the workdir's index and fallthru dirs is left alone" "junk junk" \
	"$(cat "$DW/unionmount/index/notakey" "$DW/unionmount/fallthru/junk" 2>&1 | xargs)"

log "5. damage on the upper root: refused at mount"
M=$DM # for expect_refused
for v in abc '""' 2x ' 2' 0 -1 3a 99999999999999999999999; do
	setfattr -n trusted.unionmount.format -v "$v" "$DU" || die "cannot set the format value $v"
	before=$(xval "$DU" trusted.unionmount.format)
	expect_refused "format '$v'" "trusted\.unionmount\.format.*damaged" "$DM" -o "$DOPTS"
	expect_eq "format '$v' left as it was" "$before" "$(xval "$DU" trusted.unionmount.format)"
done
setfattr -n trusted.unionmount.format -v 2 "$DU"
setfattr -n trusted.unionmount.complete -v zz "$DU"
expect_refused "a complete mark on the root that does not decode" "upperdir.*(markers|complete)" "$DM" -o "$DOPTS"
expect_eq "the root's mark left as it was" zz "$(complete_of "$DU")"
finish
