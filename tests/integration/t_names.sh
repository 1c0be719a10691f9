#!/usr/bin/env bash
# t_names: awkward names and long paths.
#
# Names with spaces, newlines, tabs, backslashes, invalid UTF-8, leading
# dashes, colons, 255-byte names (the limit) in upper and lowers, some
# shadowed or whited out, compared with kernel overlayfs; a 256-byte name
# gives ENAMETOOLONG (lookup, open, and mkdir with an upper); a path of
# about 4080 bytes below the mountpoint (so longer than PATH_MAX once the
# branch's own path is prefixed) works through merged directories.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon

U=$T/upper W=$T/work L1=$T/l1 L2=$T/l2 M=$T/mnt
mkdir -p "$U" "$W" "$L1" "$L2" "$M"

n255=$(printf 'a%.0s' $(seq 255))
n256=$(printf 'b%.0s' $(seq 256))
d255=$(printf 'd%.0s' $(seq 255))
names=(
	"with space" $'new\nline' $'tab\there' 'back\slash' $'bad\xff\xfeutf8'
	'ünïcödé' '-leading-dash' '...' 'colon:name' '*star?' '#hash' ' lead'
	'trail ' $'\x01ctl' "$n255"
)
for n in "${names[@]}"; do
	printf 'l2\n' >"$L2/$n"
done
mkdir -p "$L1/$d255" "$L2/$d255"
printf 'l1\n' >"$L1/$d255/$n255"
printf 'l2\n' >"$L2/$d255/x"
printf 'l1\n' >"$L1/with space"              # shadows L2
printf 'up\n' >"$U/$n255"                    # shadows L2 (255 bytes)
mknod "$U/"$'new\nline' c 0 0                # whites out L2
mknod "$L1/"$'bad\xff\xfeutf8' c 0 0         # whites out L2 (middle... top lower)
mkdir -p "$U/"$'dir\nnl' "$L2/"$'dir\nnl'
printf 'u\n' >"$U/"$'dir\nnl/'$'\xe9'
printf 'l\n' >"$L2/"$'dir\nnl/'$'\xe8'
# 600 names of 255 bytes in one merged dir (about 14 fit in a 4 KiB
# readdir page), a third in each branch, some shadowed.
mkdir -p "$U/long" "$L1/long" "$L2/long"
pad=$(printf 'p%.0s' $(seq 250))
for i in $(seq -w 0 599); do
	n="$i$pad"
	case $((10#$i % 3)) in
	0) printf 'u\n' >"$U/long/$n" ;;
	1) printf 'l1\n' >"$L1/long/$n" ;;
	2) printf 'l2\n' >"$L2/long/$n"; ((10#$i % 2)) && printf 'l1\n' >"$L1/long/$n" ;;
	esac
done
# A symlink with a 4000-byte target (readlink buffers).
longtarget=$(printf 't/%.0s' $(seq 2000))
ln -s "$longtarget" "$L1/longlink"

# A path of about 4080 bytes: 20 directories of 200 bytes and a file.
# L2 holds all of it, L1 the first 10 levels, upper the first 5, so every
# step is a merged directory for a while.
rel=
for i in $(seq -w 1 20); do
	rel+="${rel:+/}d$i$(printf 'x%.0s' $(seq 197))"
done
relfile="$rel/$(printf 'f%.0s' $(seq 59))"
(cd "$L2" && mkdir -p "$rel" && printf 'deep\n' >"$relfile") || die "cannot build the deep path"
rel10=$(cut -d/ -f1-10 <<<"$rel")
rel5=$(cut -d/ -f1-5 <<<"$rel")
(cd "$L1" && mkdir -p "$rel10" && printf 'l1\n' >"$rel10/l1file")
(cd "$U" && mkdir -p "$rel5" && printf 'up\n' >"$rel5/upfile")
log "deep path: ${#relfile} bytes below the mountpoint, $((${#L2} + 1 + ${#relfile})) from / in L2"

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2")"
oracle_dump "$T/oracle.dump" "$U" "$L1" "$L2"

# The oracle answers the long-name probes the same way (harness check).
ovl_mount "$T/oracle" "$U" "$L1" "$L2"
expect_eq "harness: oracle lstat of a 256-byte name" ENAMETOOLONG "$(probe_out lstat "$T/oracle/$n256")"
ovl_umount "$T/oracle"

um_mount "$M" "$OPTS" || finish

expect_probe "lstat 256-byte name" ENAMETOOLONG lstat "$M/$n256"
expect_probe "open 256-byte name" ENAMETOOLONG open "$M/$n256" r
expect_probe "lstat 256-byte name in a subdir" ENAMETOOLONG lstat "$M/$d255/$n256"
expect_probe "mkdir 256-byte name (upper present)" ENAMETOOLONG mkdir "$M/$n256"
expect_probe "create 256-byte name (upper present)" ENAMETOOLONG creat "$M/$n256"
expect_probe "lstat absent 255-byte name" ENOENT lstat "$M/$d255/$(printf 'z%.0s' $(seq 255))"
expect_eq "255-byte name from upper" "up" "$(t cat "$M/$n255")"
expect_eq "255-byte name in a 255-byte dir" "l1" "$(t cat "$M/$d255/$n255")"
expect_eq "name with a space (shadowed)" "l1" "$(t cat "$M/with space")"
expect_probe "name with a newline (whited out)" ENOENT lstat "$M/"$'new\nline'
expect_probe "invalid UTF-8 name (whited out)" ENOENT lstat "$M/"$'bad\xff\xfeutf8'
expect_eq "readlink of a 4000-byte target" "OK $longtarget" "$(probe_out readlink "$M/longlink")"
expect_eq "name with a tab" "l2" "$(t cat "$M/"$'tab\there')"
expect_eq "non-UTF-8 name in a merged dir" "l" "$(t cat "$M/"$'dir\nnl/'$'\xe8')"

out=$(tl 60 "$HELPERS/seekdir" -p "$M/long" 2>&1 >/dev/null)
expect_eq "600 names of 255 bytes: telldir/seekdir" "seekdir: 602 entries, 603 seeks, ok" "$out"
out=$(tl 60 "$HELPERS/seekdir" -g 300 "$M/long" 2>&1 >/dev/null)
expect_match "600 names of 255 bytes: getdents64 with a 300-byte buffer" "602 entries.*, ok$" "$out"
expect_eq "deep path: read through the union" "deep" "$(tin "$M" cat "$relfile")"
expect_probe "deep path: lstat" OK lstat "$M/$rel5/upfile"
expect_eq "deep path: L1 part" "l1" "$(tin "$M" cat "$rel10/l1file")"
expect_eq "deep path: listing of the deepest dir" "$(basename "$relfile")" "$(tin "$M" ls "$rel")"

tree_dump "$M" "$T/union.dump"
expect_same_file "tree equals kernel overlayfs" "$T/oracle.dump" "$T/union.dump"
um_umount "$M"

finish
