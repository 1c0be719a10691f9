#!/usr/bin/env bash
# t_copyup_triggers: every change to a lower-only file copies up exactly
# that file and its parent directories, with everything the lower had.
#
# Triggers: open O_WRONLY, O_RDWR, O_TRUNC (": > f", copies no data),
# truncate (to the same size), chmod, chown (to the same values), utimens
# (to the same mtime), setxattr, removexattr, fallocate (inside the file),
# link source, rename source; and fchmod, fchown, fsetxattr, futimens
# through a descriptor opened O_RDONLY (helper rofd).
#
# Each trigger works on its own file X.d/sub/f (mode 0640, owner 1234:5678,
# mtime with nanoseconds, user./trusted./security.capability xattrs) under
# parents that are merged (X.d: in both lowers) or lower-only (X.d/sub),
# next to siblings that must stay below. The expected state of the file is
# the same operation applied to a plain copy (cp -a) of the lower file: the
# kernel's own rules (chown, truncate, O_TRUNC drop security.capability,
# ...) then hold for the union too. The upper copy and the file seen
# through the union must both match it: content, mode, uid/gid, size,
# xattrs, and the mtime to the nanosecond whenever the operation did not
# change it on the plain copy. Parents on upper carry the lower's mode,
# owner and xattrs (and mtime, except where link/rename changed the dir).
# The union shows the upper copy's ctime afterwards (open O_WRONLY and
# O_RDWR send no new attributes to the kernel: the daemon invalidates).
# A setuid+setgid executable keeps S_ISUID/S_ISGID through chown-free
# copy-ups (utimens, setxattr, fsetxattr, futimens, chmod to the same mode).
# Upper ends up holding exactly the expected objects; lowers are unchanged.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
command -v setfattr >/dev/null && command -v getfattr >/dev/null || skip "no setfattr/getfattr"

ROFD=$HELPERS/rofd
if [ ! -x "$ROFD" ]; then
	ROFD=$T/rofd
	cc -O2 -Wall -o "$ROFD" "$LIB_DIR/rofd.c" || die "cannot build helper rofd"
fi

U=$T/upper W=$T/work L1=$T/l1 L2=$T/l2 M=$T/mnt R=$T/ref
mkdir -p "$U" "$W" "$L1" "$L2" "$M" "$R"
umask 022

MT='2001-02-03 04:05:06.123456789'
DMT='2002-03-04 05:06:07.987654321'
FOWN=1234:5678

setcap_f() { # setcap_f FILE: security.capability, by setcap or raw
	if command -v setcap >/dev/null && setcap cap_net_raw+ep "$1" 2>/dev/null; then
		return
	fi
	setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 "$1" ||
		die "cannot set security.capability on $1"
}

# mkfile LAYER PATH MODE: the test file, everything set, mtime last.
mkfile() {
	local f=$1/$2
	mkdir -p "$(dirname "$f")"
	{
		printf '#!/bin/sh\n# %s\n' "$2"
		head -c 9000 /dev/urandom | base64
	} >"$f"
	chown "$FOWN" "$f"
	chmod "$3" "$f"
	setfattr -n user.a -v 1 "$f"
	setfattr -n user.gone -v bye "$f"
	setfattr -n trusted.b -v 2 "$f"
	setcap_f "$f"
	touch -m -d "$MT" "$f"
}

# mkparents X: X.d merged (L1 on top of L2), X.d/sub only in L2, siblings.
mkparents() {
	local x=$1
	mkdir -p "$L1/$x.d" "$L2/$x.d/sub"
	mkf "$L1" "$x.d/other2"
	mkf "$L2" "$x.d/sub/other"
	chown 2001:2002 "$L1/$x.d"
	chmod 0751 "$L1/$x.d"
	setfattr -n user.dir -v l1 "$L1/$x.d"
	setfattr -n trusted.dir -v l1t "$L1/$x.d"
	chown 3:3 "$L2/$x.d"
	chmod 0700 "$L2/$x.d"
	setfattr -n user.dir -v l2 "$L2/$x.d"
	chown 2003:2004 "$L2/$x.d/sub"
	chmod 0755 "$L2/$x.d/sub"
	setfattr -n user.sub -v s "$L2/$x.d/sub"
	setfattr -n trusted.sub -v st "$L2/$x.d/sub"
	touch -m -d "$DMT" "$L2/$x.d/sub" "$L2/$x.d" "$L1/$x.d"
}

# trigger NAME: "FILEMODE|COMMAND" where @ stands for the file's path and
# the command prints OK on success (probe / rofd answers). COMMAND is
# eval'ed: the paths in it are quoted for the shell (a TMPDIR with a blank).
PROBE_Q=$(printf '%q' "$HELPERS/probe") ROFD_Q=$(printf '%q' "$ROFD")
declare -A TRIG=(
	[wronly]="0640|$PROBE_Q open @ w"
	[rdwr]="0640|$PROBE_Q open @ b"
	[otrunc]="0640|sh -c ': > \"\$1\" && echo OK' sh @"
	[truncate]="0640|$PROBE_Q truncate @ SIZE"
	[chmod]="0640|$PROBE_Q chmod @ 640"
	[chown]="0640|$PROBE_Q chown @ 1234 5678"
	[utimens]="0640|sh -c 'touch -m -d \"$MT\" \"\$1\" && echo OK' sh @"
	[setxattr]="0640|$PROBE_Q setxattr @ user.new v"
	[removexattr]="0640|$PROBE_Q removexattr @ user.gone"
	[fallocate]="0640|$PROBE_Q fallocate @ 4096"
	[link]="0640|$PROBE_Q link @ @.link"
	[rename]="0640|$PROBE_Q rename @ @.renamed"
	[fchmod]="0640|$ROFD_Q fchmod @ 640"
	[fchown]="0640|$ROFD_Q fchown @ 1234 5678"
	[fsetxattr]="0640|$ROFD_Q fsetxattr @ user.new v"
	[futimens]="0640|$ROFD_Q futimens @"
	[suid-utimens]="6755|sh -c 'touch -m -d \"$MT\" \"\$1\" && echo OK' sh @"
	[suid-setxattr]="6755|$PROBE_Q setxattr @ user.new v"
	[suid-fsetxattr]="6755|$ROFD_Q fsetxattr @ user.new v"
	[suid-futimens]="6755|$ROFD_Q futimens @"
	[suid-chmod]="6755|$PROBE_Q chmod @ 6755"
)
NAMES=$(printf '%s\n' "${!TRIG[@]}" | sort)
# The triggers that change metadata alone (copyup.h: metacopy); not
# utimens here: touch(1) opens the file for writing first.
META="chmod chown setxattr removexattr fchmod fchown fsetxattr futimens suid-setxattr suid-fsetxattr suid-futimens suid-chmod"

for x in $NAMES; do
	mkparents "$x"
	mkfile "$L2" "$x.d/sub/f" "${TRIG[$x]%%|*}"
done
# A same-named file in L1 elsewhere, and a top-level lower file: not touched.
mkf "$L1" untouched
mkf "$L2" deep/a/b/untouched

# Run a trigger on PATH; prints its answer.
run_trigger() {
	local x=$1 p=$2 cmd size q
	cmd=${TRIG[$x]#*|}
	size=$(stat -c %s "$L2/$x.d/sub/f")
	cmd=${cmd//SIZE/$size}
	printf -v q '%q' "$p"
	cmd=${cmd//@/"$q"}
	eval "t $cmd" 2>&1
}

# fattrs PATH WITH_MTIME: what must survive a copy-up, one line each.
# DATA_FROM: where the bytes are, if not PATH (a metacopy file's are below).
fattrs() {
	t stat -c 'type=%F mode=%a uid=%u gid=%g size=%s' -- "$1" 2>&1
	[ "$2" == 1 ] && t stat -c 'mtime=%.9Y' -- "$1" 2>&1
	echo "data=$(t sha256sum -- "${3:-$1}" 2>&1 | cut -c1-16)"
	t getfattr -h -d -m - -e hex --absolute-names -- "$1" 2>/dev/null |
		grep -Ev '^(#|$|trusted\.(overlay|unionmount)\.)' | sort
}
# dattrs PATH WITH_MTIME: the same for a directory (no size or content).
dattrs() {
	t stat -c 'type=%F mode=%a uid=%u gid=%g' -- "$1" 2>&1
	[ "$2" == 1 ] && t stat -c 'mtime=%.9Y' -- "$1" 2>&1
	t getfattr -h -d -m - -e hex --absolute-names -- "$1" 2>/dev/null |
		grep -Ev '^(#|$|trusted\.(overlay|unionmount)\.)' | sort
}
flat() { tr '\n' ' ' | sed 's/ $//'; }

# The reference: the same operations on plain copies.
for x in $NAMES; do
	mkdir -p "$R/$x"
	cp -a "$L2/$x.d/sub/f" "$R/$x/f"
	got=$(run_trigger "$x" "$R/$x/f")
	[ "$got" == OK ] || die "trigger $x fails on a plain file ($got): the scenario is wrong"
done

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"
um_mount "$M" "$OPTS" || finish

for x in $NAMES; do
	got=$(run_trigger "$x" "$M/$x.d/sub/f")
	expect_eq "$x: the trigger succeeds through the union" OK "$got"
done

# expected upper content, exactly
expected_upper() {
	local x
	for x in $NAMES; do
		echo "$x.d d"
		echo "$x.d/sub d"
		case $x in
		link) echo "$x.d/sub/f f" && echo "$x.d/sub/f.link f" ;;
		rename) echo "$x.d/sub/f c" && echo "$x.d/sub/f.renamed f" ;;
		*) echo "$x.d/sub/f f" ;;
		esac
	done | LC_ALL=C sort
}
expected_upper >"$T/upper.expected"
(cd "$U" && find . -mindepth 1 -printf '%P %y\n' | LC_ALL=C sort) >"$T/upper.seen"
expect_same_file "upper holds exactly the triggered files and their parents" \
	"$T/upper.expected" "$T/upper.seen"

for x in $NAMES; do
	name=f
	[ $x == rename ] && name=f.renamed
	ref=$R/$x/$name
	# First (reading the file may refresh what the kernel caches): the
	# copy is a new upper file, whose ctime the kernel, caching the
	# lower's attributes, must learn of even when no write follows.
	expect_eq "$x: the union shows the upper copy's ctime" \
		"$(stat -c %.9Z "$U/$x.d/sub/$name")" "$(t stat -c %.9Z "$M/$x.d/sub/$name")"
	# The mtime is checked exactly unless the operation itself moved it.
	wm=0
	[ "$(stat -c %.9Y "$ref")" == "$(stat -c %.9Y "$L2/$x.d/sub/f")" ] && wm=1
	want=$(fattrs "$ref" $wm | flat)
	[ $wm == 1 ] && wmt=" (mtime included)" || wmt=""
	# A change of metadata alone copies no data (metacopy=on, the
	# default): the upper file is a hole of the lower size, marked, and
	# its bytes are still the lower file's.
	mc=$(getfattr --absolute-names --only-values -n trusted.unionmount.metacopy "$U/$x.d/sub/$name" 2>/dev/null)
	if ! selftest && [[ " $META " == *" $x "* ]]; then
		nonzero=$(tr -d '\0' <"$U/$x.d/sub/$name" | wc -c)
		expect_eq "$x: changes metadata only: upper holds a metacopy file of the lower size, no byte written" \
			"y $(stat -c %s "$L2/$x.d/sub/f") 0" "$mc $(stat -c %s "$U/$x.d/sub/$name") $nonzero"
		datafrom=$L2/$x.d/sub/f
	else
		expect_eq "$x: upper holds the data itself (no metacopy mark)" "" "$mc"
		datafrom=
	fi
	expect_eq "$x: upper copy has the lower's data, mode, owner, xattrs$wmt" \
		"$want" "$(fattrs "$U/$x.d/sub/$name" $wm $datafrom | flat)"
	expect_eq "$x: the union shows the same$wmt" \
		"$want" "$(fattrs "$M/$x.d/sub/$name" $wm | flat)"
	case $x in
	otrunc)
		expect_eq "$x: O_TRUNC left an empty upper file" 0 "$(stat -c %s "$U/$x.d/sub/f")" ;;
	suid-*)
		expect_eq "$x: S_ISUID and S_ISGID survive on upper" 6755 "$(stat -c %a "$U/$x.d/sub/f")" ;;
	link)
		# The union also links every object with several names into
		# WORKDIR/unionmount/index (one more link on disk).
		links=2
		selftest || links=3
		expect_eq "$x: f and f.link are one upper inode" \
			"$(stat -c "%i $links" "$U/$x.d/sub/f")" "$(stat -c '%i %h' "$U/$x.d/sub/f.link")"
		expect_eq "$x: the union shows nlink 2 on both names" "2 2" \
			"$(t stat -c %h "$M/$x.d/sub/f" "$M/$x.d/sub/f.link" | flat)" ;;
	rename)
		expect_eq "$x: the old name is a whiteout on upper" "character special file 0:0" \
			"$(stat -c '%F %Hr:%Lr' "$U/$x.d/sub/f")"
		expect_probe "$x: the old name is gone from the union" ENOENT lstat "$M/$x.d/sub/f" ;;
	esac
	# Parents: metadata of the directory the union showed (L1's X.d, L2's sub).
	dm=1
	case $x in link | rename) dm=0 ;; esac
	expect_eq "$x: upper $x.d has the top lower's mode, owner, xattrs, mtime" \
		"$(dattrs "$L1/$x.d" 1 | flat)" "$(dattrs "$U/$x.d" 1 | flat)"
	expect_eq "$x: upper $x.d/sub has the lower's mode, owner, xattrs$([ $dm == 1 ] && echo ', mtime')" \
		"$(dattrs "$L2/$x.d/sub" $dm | flat)" "$(dattrs "$U/$x.d/sub" $dm | flat)"
	expect_eq "$x: siblings still read from below" \
		"l2:$x.d/sub/other l1:$x.d/other2" \
		"$(t cat "$M/$x.d/sub/other" "$M/$x.d/other2" | flat)"
done

um_umount "$M"
snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower l1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "lower l2 unchanged" "$T/l2.before" "$T/l2.after"

# After a remount the copies are still what the union shows.
um_mount "$M" "$OPTS" || finish
for x in setxattr suid-futimens; do
	expect_eq "$x: after remount the union shows the copied-up file" \
		"$(fattrs "$R/$x/f" 1 | flat)" "$(fattrs "$M/$x.d/sub/f" 1 | flat)"
done
um_umount "$M"

finish
