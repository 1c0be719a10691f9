#!/usr/bin/env bash
# t_ino: st_ino through the union.
#
# Every branch sits on its own tmpfs, so backing inode numbers collide
# across branches (tmpfs numbers are small and sequential). Checked:
# distinct visible objects never share st_ino (hard links inside one
# branch do share it); the number of a path is the same whether it was
# reached by lookup alone or after readdir, and after unmount + remount
# with the same options when paths are looked up in a different order.
# Listings give every entry the d_ino its lstat gives: merged, from
# complete directories, after the lower list changed, and for directories
# kernel overlayfs moved; and that -o readdirplus=never turns READDIRPLUS off.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon

M=$T/mnt
mkdir -p "$M"
kmount tmpfs "$T/ufs" size=16m,mode=0755
kmount tmpfs "$T/l1" size=16m,mode=0755
kmount tmpfs "$T/l2" size=16m,mode=0755
kmount tmpfs "$T/l3" size=16m,mode=0755
U=$T/ufs/upper W=$T/ufs/work L1=$T/l1 L2=$T/l2 L3=$T/l3
mkdir -p "$U" "$W"

# Same-shaped trees in every branch, so the same tmpfs inode numbers
# show up in each; partial overlaps make merged dirs and shadowed files.
build() { # build LAYER DIRS FILES
	local l=$1 d f
	for d in $2; do
		mkdir -p "$l/d$d"
		for f in $3; do printf '%s\n' "${l##*/}" >"$l/d$d/f$f"; done
	done
}
build "$L3" "0 1 2 3 4 5 6 7 8 9" "$(seq -s ' ' 0 19)"
build "$L2" "0 1 2 3 4 5" "$(seq -s ' ' 0 9) 20 21 22"
build "$L1" "3 4 5 6 7 8 9 10 11" "5 6 7 8 30 31"
build "$U" "0 9 12" "0 1 40"
for l in "$L1" "$L2" "$L3" "$U"; do
	for f in $(seq 0 30); do printf x >"$l/top-${l##*/}-$f"; done
	printf x >"$l/same"
done
mkf "$L2" hl/a
mkhl "$L2" hl/a hl/b
mkhl "$L2" hl/a d0/hl-c
mkwh "$U" d0/f3
mkwh "$L2" d7
mkopq "$L1" d4

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2" "$L3")"

# stat_all ORDERFILE OUT: "PATH INO" for each path (lookup only: stat
# never reads a directory), sorted by path.
stat_all() {
	UM_TIMEOUT=120 tin "$M" xargs -d '\n' stat -c '%n %i' -- <"$1" | LC_ALL=C sort >"$2"
	local n
	n=$(wc -l <"$2")
	[ "$n" -eq "$npaths" ] || fail "stat through the union answered $n of $npaths paths"
}

check_unique() { # check_unique LABEL MAPFILE
	local dups
	dups=$(awk '{ p[$2] = p[$2] " " $1; c[$2]++ }
		END { for (i in c) if (c[i] > 1) print i ":" p[i] }' "$2" |
		grep -v -E '^[0-9]+: (d0/hl-c|hl/a|hl/b) (d0/hl-c|hl/a|hl/b) (d0/hl-c|hl/a|hl/b)$')
	if [ -z "$dups" ]; then
		pass "$1: distinct objects have distinct st_ino ($(wc -l <"$2") paths)"
	else
		fail "$1: distinct objects share st_ino (ino: paths):"
		printf '%s\n' "$dups" | head -20 | sed 's/^/     /'
	fi
	local a b c
	a=$(awk '$1 == "hl/a" { print $2 }' "$2")
	b=$(awk '$1 == "hl/b" { print $2 }' "$2")
	c=$(awk '$1 == "d0/hl-c" { print $2 }' "$2")
	if [ -n "$a" ] && [ "$a" == "$b" ] && [ "$a" == "$c" ]; then
		pass "$1: the three names of one hard-linked lower file share st_ino"
	else
		fail "$1: hard links hl/a hl/b d0/hl-c have st_ino '$a' '$b' '$c' (want one number)"
	fi
}

# dino_check LABEL: in every directory of the union at $M, each entry's
# d_ino (what readdir(3) callers such as os.scandir().inode() see, and
# the kernel itself when it has no inode yet) is the st_ino lstat gives
# it. The unions it is used on are mounted
# with readdirplus=never: with readdirplus the kernel fills d_ino from the
# lookups the listing makes, and never sees the listing's own numbers.
dino_check() {
	local label=$1 d name ino want bad='' n=0
	while IFS= read -r d; do
		while read -r name _ ino; do
			case $name in .|..) continue ;; esac
			printf -v name '%b' "$name"
			want=$(t stat -c %i -- "$M/$d/$name" 2>&1)
			n=$((n + 1))
			[ "$ino" == "$want" ] || bad+=" ${d:+$d/}$name: d_ino $ino, st_ino $want;"
		done < <(tin "$M/$d" "$HELPERS/seekdir" -p . 2>/dev/null)
	done < <(cd "$M" && tl 60 find . -type d -printf '%P\n')
	if [ -z "$bad" ] && [ "$n" -gt 20 ]; then
		pass "$label: readdir's d_ino equals lstat's st_ino for all $n entries"
	else
		fail "$label: readdir's d_ino differs from st_ino ($n entries):${bad:0:1500}"
	fi
}

# run_set LABEL OPTS LAYER...: the checks for one set of mount options.
run_set() {
	local label=$1 opts=$2
	shift 2
	# The visible paths, from the oracle.
	ovl_mount "$T/oracle" "$@"
	(cd "$T/oracle" && find . -mindepth 1 -printf '%P\n') | LC_ALL=C sort >"$T/paths"
	ovl_umount "$T/oracle"
	echo . >>"$T/paths"
	npaths=$(wc -l <"$T/paths")
	log "$label: $npaths visible paths"

	um_mount "$M" "$opts" || return
	stat_all "$T/paths" "$T/ino.lookup"
	check_unique "$label, lookup only" "$T/ino.lookup"
	# Now read every directory (the daemon may write entries into upper), stat again.
	UM_TIMEOUT=120 tin "$M" find . -printf '%P\n' >/dev/null
	stat_all "$T/paths" "$T/ino.readdir"
	expect_same_file "$label: st_ino unchanged after readdir" "$T/ino.lookup" "$T/ino.readdir"
	um_umount "$M"

	um_mount "$M" "$opts" || return
	tac "$T/paths" >"$T/paths.rev"
	stat_all "$T/paths.rev" "$T/ino.remount"
	expect_same_file "$label: st_ino unchanged after remount (reverse lookup order)" "$T/ino.lookup" "$T/ino.remount"
	check_unique "$label, after remount" "$T/ino.remount"
	um_umount "$M"
}

run_set "with upper" "$OPTS" "$U" "$L1" "$L2" "$L3"
run_set "read-only union" "$(lowerdir_opt "$L1" "$L2" "$L3")" "$L1" "$L2" "$L3"

# Listing numbers, in every directory: the first listing (merged, which
# writes the fallthrus), a listing of the complete upper directories
# alone after remount, and the same with fallthru=off and read-only.
NORDP=readdirplus=never
for lbl in "with upper" "fallthru=off" "read-only union"; do
	case $lbl in
	with*) o=$OPTS ;;
	fallthru*) o=$OPTS,fallthru=off ;;
	*) o=$(lowerdir_opt "$L1" "$L2" "$L3") ;;
	esac
	um_mount "$M" "$o,$NORDP" || finish
	dino_check "$lbl: first listings"
	um_umount "$M"
	um_mount "$M" "$o,$NORDP" || finish
	dino_check "$lbl: after remount"
	um_umount "$M"
done

# The option itself: with readdirplus=never the kernel asks plain
# READDIRs only (and the d_ino checks above saw the listing's numbers);
# with the default it asks READDIRPLUS. From the daemon's -d log.
if ! selftest; then
	for rdp in never auto; do
		um_mount "$M" "$OPTS,readdirplus=$rdp" -d || finish
		tin "$M" ls -f d3 >/dev/null
		nplus=$(grep -c 'opcode: READDIRPLUS ' "${_log_of[$M]}")
		nplain=$(grep -c 'opcode: READDIR ' "${_log_of[$M]}")
		um_umount "$M"
		if [ $rdp == never ]; then
			expect_eq "readdirplus=never: READDIR requests only (READDIRPLUS count)" 0 "$nplus"
			[ "$nplain" -gt 0 ] && pass "readdirplus=never: the listing came as READDIR ($nplain)" ||
				fail "readdirplus=never: no READDIR request in the daemon's log"
		else
			[ "$nplus" -gt 0 ] && pass "readdirplus=auto: the first chunk came as READDIRPLUS ($nplus)" ||
				fail "readdirplus=auto: no READDIRPLUS request in the daemon's log"
		fi
	done
fi

# readdirplus=adaptive (the default): a walk that only descends gets the
# files' names without their attributes (no LOOKUP: it asks for none, and
# listings no longer carry them past its first); a walk after it that
# stats every file, in another process, then sees every file as a walk
# on a fresh mount with readdirplus=auto does (the kernel's lean
# listings are dropped when it turns out to stat: at most one
# directory's files are looked up one by one); a third walk asks for
# nothing. Counted in the daemon's -d log.
walkstat() { tin "$M" find . -printf '%p %y %i %s %m %n\n' | LC_ALL=C sort; }
if ! selftest; then
	um_mount "$M" "$OPTS,readdirplus=auto" || finish
	walkstat >"$T/walk.auto"
	um_umount "$M"
	um_mount "$M" "$OPTS" -d || finish
	tin "$M" find . -printf "" || fail "adaptive: find failed"
	n1=$(grep -c 'opcode: LOOKUP ' "${_log_of[$M]}")
	walkstat >"$T/walk.adaptive"
	n2=$(grep -c 'opcode: LOOKUP ' "${_log_of[$M]}")
	walkstat >"$T/walk.adaptive2"
	n3=$(grep -c 'opcode: LOOKUP ' "${_log_of[$M]}")
	um_umount "$M"
	expect_eq "adaptive: a find that only descends looks nothing up" 0 "$n1"
	expect_same_file "adaptive: a stat walk after it sees what one on readdirplus=auto sees" \
		"$T/walk.auto" "$T/walk.adaptive"
	most=$(awk '$2 == "f" { sub("/[^/]*$", "", $1); c[$1]++ } END { m = 0; for (d in c) if (c[d] > m) m = c[d]; print m }' "$T/walk.auto")
	if [ "$n2" -gt 0 ] && [ "$n2" -le "$most" ]; then
		pass "adaptive: the stat walk looked up $n2 files one by one (one directory's worth: at most $most)"
	else
		fail "adaptive: the stat walk looked up $n2 files one by one (expected 1 to $most)"
	fi
	expect_eq "adaptive: a second stat walk looks nothing up" "$n2" "$n3"
	expect_same_file "adaptive: and sees the same" "$T/walk.adaptive" "$T/walk.adaptive2"

	# Directories too big for one READDIRPLUS: the kernel lists the rest
	# with plain READDIRs, so a find looks up the subdirectories it
	# meets there to descend. That is no sign of a stat walker: the
	# daemon says when a job turns to full listings (-d), and only the
	# stat walk may turn it.
	kmount tmpfs "$T/l4" size=16m,mode=0755
	for b in b1 b2; do
		mkdir -p "$T/l4/$b/zsub"
		for ((i = 0; i < 1500; i++)); do : >"$T/l4/$b/file-with-a-longish-name-$i"; done
		: >"$T/l4/$b/zsub/x"
	done
	um_mount "$M" "lowerdir=$T/l4" -d || finish
	tin "$M" find . -printf "" || fail "adaptive: find of big directories failed"
	t1=$(grep -c 'looks names up' "${_log_of[$M]}")
	nl1=$(grep -c 'opcode: LOOKUP ' "${_log_of[$M]}")
	tin "$M" find . -printf '%s\n' >/dev/null || fail "adaptive: stat walk of big directories failed"
	t2=$(grep -c 'looks names up' "${_log_of[$M]}")
	um_umount "$M"
	expect_eq "adaptive: a find of directories bigger than one READDIRPLUS stays lean (it looked up $nl1 names)" 0 "$t1"
	expect_eq "adaptive: the stat walk after it turns the job to full listings" 1 "$t2"
fi

# Another lower list: an empty layer on top moves every lower layer's
# number by one; the complete directories of the mounts above were
# written for the old list (their origins too).
# (Kernel overlayfs with index=on refuses another lower list: ESTALE.)
if ! selftest; then
	kmount tmpfs "$T/l0" size=1m,mode=0755
	L0=$T/l0
	for round in "first listings" "after remount"; do
		um_mount "$M" "upperdir=$U,workdir=$W,$(lowerdir_opt "$L0" "$L1" "$L2" "$L3"),$NORDP" || finish
		dino_check "empty l0 on top: $round"
		um_umount "$M"
	done
fi

# Directories kernel overlayfs moved (redirect_dir=on): it writes no
# origin of ours, only trusted.overlay.redirect, absolute for a move into
# another directory and relative for a rename in place, and marks the new
# parent trusted.overlay.impure. The union numbers a moved directory from
# where it came from, in lookups and in listings.
U2=$T/ufs/upper2 W2=$T/ufs/work2 W3=$T/ufs/work3
mkdir -p "$U2" "$W2" "$W3"
ovl_rw_mount "$T/kmnt" "$U2" "$W2" "$L1" "$L2" "$L3"
(cd "$T/kmnt" && mv d3 d10/moved3 && mv d5 d5renamed && mv d11 d1/moved11 && mkdir d1/fresh &&
	mv d6 d2/moved6) || fail "kernel overlayfs: the moves failed"
ovl_umount "$T/kmnt"
getfattr -n trusted.overlay.redirect --only-values "$U2/d10/moved3" >/dev/null 2>&1 ||
	fail "kernel overlayfs wrote no redirect for d10/moved3 (the scenario needs one)"
for o in "" ",fallthru=off"; do
	for round in "first listings" "after remount"; do
		um_mount "$M" "upperdir=$U2,workdir=$W3,$(lowerdir_opt "$L1" "$L2" "$L3"),$NORDP$o" || finish
		dino_check "directories overlayfs moved${o:+ ($o)}: $round"
		um_umount "$M"
	done
done

finish
