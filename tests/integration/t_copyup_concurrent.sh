#!/usr/bin/env bash
# t_copyup_concurrent: concurrent triggers on one lower object copy it up
# exactly once, and no change made during the copy-up is lost.
#
# - 16 processes, released together, each append 50 distinct lines (">>")
#   to the same 100-line lower file: afterwards the union and upper hold
#   the 100 lower lines once, in order, followed by all 800 new lines (each
#   writer's lines complete and in its own order); one upper file.
# - 16 processes each append to a different file in the same lower-only
#   directory tree: every file gets its line, the parents exist once.
# - chmod and an append started together on each of 12 lower files: every
#   file ends up with the new mode and the appended line.
# (unionmount only: its work dir WORKDIR/unionmount/work is empty after.)
# Lowers are unchanged.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon

U=$T/upper W=$T/work L1=$T/l1 L2=$T/l2 M=$T/mnt
mkdir -p "$U" "$W" "$L1" "$L2" "$M"
NP=16 NL=50

seq -f 'lower line %g' 100 >"$L2/shared"
for i in $(seq $NP); do
	mkf "$L2" "tree/a/b/own$i" "own$i
"
done
for i in $(seq 12); do
	mkf "$L1" "cm/f$i" "cm$i
"
	chmod 0644 "$L1/cm/f$i"
done

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"
um_mount "$M" "$OPTS" || finish

# Writers wait for $T/go, so they all start within a few milliseconds.
rm -f "$T/go"
pids=()
for i in $(seq $NP); do
	t bash -c '
		while [ ! -e "$1/go" ]; do sleep 0.005; done
		for j in $(seq "$3"); do echo "writer $2 line $j" >>"$4" || exit 1; done' \
		sh "$T" "$i" "$NL" "$M/shared" &
	pids+=($!)
done
for i in $(seq $NP); do
	t bash -c '
		while [ ! -e "$1/go" ]; do sleep 0.005; done
		echo "appended $2" >>"$3"' sh "$T" "$i" "$M/tree/a/b/own$i" &
	pids+=($!)
done
sleep 0.3
touch "$T/go"
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
expect_eq "all $((NP * 2)) concurrent writers succeed" 0 "$bad"

check_shared() { # check_shared LABEL FILE
	local f=$2 n
	n=$(wc -l <"$f")
	expect_eq "$1: line count" $((100 + NP * NL)) "$n"
	expect_eq "$1: the 100 lower lines come first, once" \
		"$(seq -f 'lower line %g' 100)" "$(head -n 100 "$f")"
	expect_eq "$1: lower lines appear nowhere else" 100 "$(grep -c '^lower line' "$f")"
	local i bad=''
	for i in $(seq $NP); do
		if [ "$(grep "^writer $i line " "$f")" != "$(seq -f "writer $i line %g" $NL)" ]; then
			bad+=" $i"
		fi
	done
	expect_eq "$1: each writer's $NL lines present, whole and in order (writers wrong:)" "" "$bad"
}
t cat "$M/shared" >"$T/shared.union"
check_shared "union" "$T/shared.union"
if [ -f "$U/shared" ]; then
	check_shared "upper" "$U/shared"
else
	fail "expected an upper copy of shared, there is none"
fi
expect_eq "exactly one upper object named shared" 1 "$(find "$U" -name shared | wc -l)"

bad=''
for i in $(seq $NP); do
	[ "$(t cat "$M/tree/a/b/own$i")" == "own$i
appended $i" ] || bad+=" own$i"
done
expect_eq "every file in the shared lower-only dir got its append (wrong:)" "" "$bad"
expect_eq "upper tree/a/b holds the $NP files once" \
	"$(seq -f 'own%g' $NP | sort)" "$(ls "$U/tree/a/b" 2>&1 | sort)"
expect_eq "upper tree holds a, b once" "a a/b" \
	"$(cd "$U/tree" && find . -mindepth 1 -type d -printf '%P\n' | sort | tr '\n' ' ' | sed 's/ $//')"

# chmod + append on the same lower file, started together
rm -f "$T/go"
pids=()
for i in $(seq 12); do
	t bash -c 'while [ ! -e "$1/go" ]; do sleep 0.002; done; chmod 0600 "$2"' sh "$T" "$M/cm/f$i" &
	pids+=($!)
	t bash -c 'while [ ! -e "$1/go" ]; do sleep 0.002; done; echo more >>"$2"' sh "$T" "$M/cm/f$i" &
	pids+=($!)
done
sleep 0.2
touch "$T/go"
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
expect_eq "concurrent chmod + append: all succeed" 0 "$bad"
bad=''
for i in $(seq 12); do
	got=$(t stat -c %a "$M/cm/f$i")/$(t cat "$M/cm/f$i" | tr '\n' '|')
	[ "$got" == "600/cm$i|more|" ] || bad+=" f$i=$got"
	got=$(stat -c %a "$U/cm/f$i" 2>&1)/$(tr '\n' '|' <"$U/cm/f$i" 2>&1)
	[ "$got" == "600/cm$i|more|" ] || bad+=" upper:f$i=$got"
done
expect_eq "concurrent chmod + append: every file has mode 600 and the appended line (wrong:)" "" "$bad"

if ! selftest; then
	expect_eq "unionmount work dir empty after the copy-ups" "" \
		"$(ls -A "$W/unionmount/work" 2>&1)"
fi
um_umount "$M"
if ! selftest; then
	expect_eq "unionmount work dir empty after unmount" "" "$(ls -A "$W/unionmount/work" 2>&1)"
fi

snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower l1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "lower l2 unchanged" "$T/l2.before" "$T/l2.after"

um_mount "$M" "$OPTS" || finish
t cat "$M/shared" >"$T/shared.remount"
check_shared "after remount" "$T/shared.remount"
um_umount "$M"

finish
