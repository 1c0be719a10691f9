#!/usr/bin/env bash
# t_upper_nowrite: with an upperdir, attempted changes of every kind never
# modify a lower branch. Which changes succeed and with what errno is not
# checked here (write support is still being built); what is checked:
# every lower file, directory, symlink and their metadata (inode numbers,
# modes, owners, sizes, mtimes and ctimes, xattrs, contents) are exactly
# as before, the daemon survives the batch, and it exits cleanly.
. "$(dirname "$0")/lib.sh"
setup_test
require_daemon

U=$T/upper W=$T/work L1=$T/l1 L2=$T/l2 L3=$T/l3 M=$T/mnt
mkdir -p "$U" "$W" "$L1" "$L2" "$L3" "$M"

for l in "$L1" "$L2" "$L3"; do
	mkf "$l" "shared"
	mkf "$l" "dir/shared"
	mkf "$l" "dir/only-${l##*/}"
	mkf "$l" "tree/a/b/${l##*/}"
done
mkf "$L3" file3
head -c 300000 /dev/urandom >"$L3/bin3"
setfattr -n user.keep -v 1 "$L3/file3"
mkf "$L2" file2
mkhl "$L2" file2 file2.link
mkf "$L1" file1
chmod 0640 "$L1/file1"
mkln "$L2" sym2 file2
mkfifo_at "$L3" fifo3
mkd "$L2" empty2
mkopq "$L2" opq
mkf "$L2" opq/in
mkwh "$L1" dir/only-l3
mkf "$U" upperfile
mkf "$L1" ro-fd
mkf "$L2" ro-fd2
setfattr -n user.x -v 1 "$L2/ro-fd2"

OPTS="upperdir=$U,workdir=$W,$(lowerdir_opt "$L1" "$L2" "$L3")"
for l in l1 l2 l3; do snapshot "$T/$l" "$T/$l.before"; done

um_mount "$M" "$OPTS" || finish

log "attempting changes (results ignored)"
try() { t "$@" >/dev/null 2>&1; }
p() { try "$HELPERS/probe" "$@"; }
# Data changes on lower files.
try sh -c "echo more >> '$M/file3'"
try sh -c "echo new > '$M/shared'"
try sh -c "printf x | dd of='$M/bin3' bs=1 seek=1000 conv=notrunc"
p write "$M/file2"
p write "$M/file2.link"
p open "$M/dir/shared" wt
p open "$M/tree/a/b/l3" bt
p truncate "$M/bin3" 10
p truncate "$M/file1" 1000000
p fallocate "$M/file1" 4096
# Metadata changes, by path and through read-only descriptors.
p chmod "$M/file3" 600
p chmod "$M/dir" 700
p chown "$M/file2" 65534 65534
p chown "$M/sym2" 65534 65534
p utimes "$M/file3"
try touch -d '2001-02-03 04:05:06' "$M/shared"
p setxattr "$M/file3" user.new 1
p removexattr "$M/file3" user.keep
p setxattr "$M/dir" user.new 1
p setxattr "$M/opq" trusted.overlay.opaque n
p removexattr "$M/opq" trusted.overlay.opaque
p setxattr "$M/empty2" trusted.overlay.opaque y
p setxattr "$M/file2" trusted.unionmount.format 99
p fchmod "$M/ro-fd" 600
p fchown "$M/ro-fd" 65534 65534
p fsetxattr "$M/ro-fd2" user.y 2
p fremovexattr "$M/ro-fd2" user.x
p futimens "$M/ro-fd"
# Namespace changes.
p unlink "$M/file3"
p unlink "$M/shared"
p unlink "$M/sym2"
p unlink "$M/fifo3"
p rmdir "$M/empty2"
try rm -rf "$M/tree"
try rm -rf "$M/opq"
p rename "$M/file2" "$M/file2.renamed"
p rename "$M/dir" "$M/dir.renamed"
p rename "$M/file1" "$M/dir/shared"
p rename "$M/upperfile" "$M/file3"
p link "$M/file2.link" "$M/file2.link2"
p symlink file3 "$M/newsym"
p mkdir "$M/newdir"
p mkdir "$M/dir/only-l3"
p mkfifo "$M/newfifo"
p creat "$M/dir/newfile"
try cp -a /etc/hostname /etc/passwd "$M/dir/"
try sh -c "tar -C /etc -cf - hostname passwd | tar -C '$M/empty2' -xf -"
try mv "$M/shared" "$M/dir/"

if daemon_alive "$M"; then
	pass "daemon still running after the batch"
else
	fail "daemon died during the batch of attempted changes; output:"
	daemon_log "$M"
fi
if t stat "$M" >/dev/null 2>&1 && t ls "$M" >/dev/null 2>&1; then
	pass "mount still answers"
else
	fail "mount no longer answers stat/ls after the batch"
fi
um_umount "$M"

for l in l1 l2 l3; do
	snapshot "$T/$l" "$T/$l.after"
	expect_same_file "lower $l unchanged (contents, metadata, xattrs, inode numbers)" \
		"$T/$l.before" "$T/$l.after"
done

finish
