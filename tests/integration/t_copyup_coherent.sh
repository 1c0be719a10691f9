#!/usr/bin/env bash
# t_copyup_coherent: a descriptor opened O_RDONLY on a lower file before
# the file is copied up reads the new data after it (reads follow the
# object, not the old backing file), also once the page cache is dropped.
#
# A watcher process (helper "rofd watch") opens the file through the union
# and keeps that one descriptor; on request it reads the whole file with
# pread from offset 0, or first writes 3 to /proc/sys/vm/drop_caches.
# Another process changes the file through the union:
#   append      echo >> (copy-up by open O_WRONLY|O_APPEND)
#   overwrite   dd conv=notrunc in the middle (same size)
#   replace     ": >" then a new content (O_TRUNC copy-up)
#   chmod-then  chmod first (a metadata-only copy-up is allowed), then append
# The watcher must see the new content each time, before and after
# drop_caches; a new open sees it too, and after a remount as well.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon
[ -w /proc/sys/vm/drop_caches ] || skip "cannot write /proc/sys/vm/drop_caches"

ROFD=$HELPERS/rofd
if [ ! -x "$ROFD" ]; then
	ROFD=$T/rofd
	cc -O2 -Wall -o "$ROFD" "$LIB_DIR/rofd.c" || die "cannot build helper rofd"
fi

U=$T/upper W=$T/work L1=$T/l1 L2=$T/l2 M=$T/mnt
mkdir -p "$U" "$W" "$L1" "$L2" "$M"

mkf "$L2" append "old
"
mkf "$L2" dir/overwrite "0123456789abcdef
"
mkf "$L1" replace "replace me
"
mkf "$L2" chmod-then "before
"

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"
um_mount "$M" "$OPTS" || finish

# scenario NAME PATH WATCHED OLD NEW CMD...: WATCHED is the name the
# watcher opens, PATH the one CMD changes.
scenario() {
	local name=$1 watched=$2 old=$3 new=$4
	shift 4
	watch_start "$M/$watched"
	expect_eq "$name: watcher opened $watched" OPEN "$WREPLY"
	watch_ask read
	expect_eq "$name: watcher reads the lower content first" "DATA $old" "$WREPLY"
	if t "$@"; then
		pass "$name: change through the union ($*)"
	else
		fail "$name: change through the union ($*) failed"
	fi
	watch_ask read
	expect_eq "$name: the old descriptor reads the new content" "DATA $new" "$WREPLY"
	watch_ask drop
	expect_eq "$name: ... also after drop_caches" "DATA $new" "$WREPLY"
	watch_ask read
	expect_eq "$name: ... and again" "DATA $new" "$WREPLY"
	watch_stop
	expect_eq "$name: a new open reads the new content" "DATA $new" \
		"$(t "$ROFD" watch "$M/$watched" <<<read | tail -n 1)"
}

scenario append append "old|" "old|new|" \
	sh -c 'echo new >>"$1"' sh "$M/append"
scenario overwrite dir/overwrite "0123456789abcdef|" "0123XYZ789abcdef|" \
	sh -c 'printf XYZ | dd of="$1" bs=1 seek=4 conv=notrunc status=none' sh "$M/dir/overwrite"
scenario replace replace "replace me|" "brand new|" \
	sh -c ': >"$1" && echo "brand new" >"$1"' sh "$M/replace"
scenario chmod-then chmod-then "before|" "before|after|" \
	sh -c 'chmod 600 "$1" && echo after >>"$1"' sh "$M/chmod-then"

for f in append:old\|new\| dir/overwrite:0123XYZ789abcdef\| replace:brand\ new\| \
	chmod-then:before\|after\|; do
	expect_eq "upper holds the new content of ${f%%:*}" "${f#*:}" \
		"$(tr '\n' '|' <"$U/${f%%:*}" 2>&1)"
done

um_umount "$M"
snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "lower l1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "lower l2 unchanged" "$T/l2.before" "$T/l2.after"

um_mount "$M" "$OPTS" || finish
for f in append:old\|new\| dir/overwrite:0123XYZ789abcdef\| replace:brand\ new\| \
	chmod-then:before\|after\|; do
	expect_eq "after remount: ${f%%:*}" "DATA ${f#*:}" \
		"$(t "$ROFD" watch "$M/${f%%:*}" <<<read | tail -n 1)"
done
um_umount "$M"

finish
