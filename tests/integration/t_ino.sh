#!/usr/bin/env bash
# t_ino: st_ino through the union.
#
# Every branch sits on its own tmpfs, so backing inode numbers collide
# across branches (tmpfs numbers are small and sequential). Checked:
# distinct visible objects never share st_ino (hard links inside one
# branch do share it); the number of a path is the same whether it was
# reached by lookup alone or after readdir, and after unmount + remount
# with the same options when paths are looked up in a different order.
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
	# readdir's d_ino should agree with st_ino (ls -i, find -inum use it).
	tin "$M" "$HELPERS/seekdir" -p . 2>/dev/null | awk '$1 != "." && $1 != ".." { print $1, $3 }' |
		LC_ALL=C sort >"$T/dino.root"
	awk 'index($1, "/") == 0 && $1 != "." { print }' "$T/ino.lookup" | LC_ALL=C sort >"$T/stino.root"
	if cmp -s "$T/dino.root" "$T/stino.root"; then
		log "note: $label: readdir d_ino equals st_ino in the root"
	else
		log "note: $label: readdir d_ino differs from st_ino in the root (not checked): $(diff "$T/stino.root" "$T/dino.root" | sed -n 2p)"
	fi
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

finish
