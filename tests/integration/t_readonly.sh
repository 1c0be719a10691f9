#!/usr/bin/env bash
# t_readonly: a union without upperdir is read-only. Every change fails
# with EROFS (create, mkdir, mknod, unlink, rmdir, rename, chmod, chown,
# truncate, utimes, setxattr, removexattr, link, symlink, opens for
# writing or truncating, and the fd-based fchmod/fchown/fsetxattr/
# fremovexattr/futimens), the shell tools fail the same way, reads equal
# kernel overlayfs, statfs is the top lower's, and the lowers are unchanged.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon

L1=$T/l1 L2=$T/l2 M=$T/mnt
mkdir -p "$L2" "$M"
# The top lower on its own small tmpfs so its statfs is recognisable.
kmount tmpfs "$L1" size=23m,nr_inodes=2323,mode=0755

mkf "$L1" f
mkf "$L2" f
mkf "$L2" low
setfattr -n user.k -v v "$L2/low"
mkf "$L1" d/a
mkf "$L2" d/b
mkwh "$L1" d/gone
mkf "$L2" d/gone
mkd "$L2" emptydir
mkln "$L1" link f
mkf "$L2" sub/deep/file

OPTS=$(lowerdir_opt "$L1" "$L2")
oracle_dump "$T/oracle.dump" "$L1" "$L2"
snapshot "$L1" "$T/l1.before"
snapshot "$L2" "$T/l2.before"

um_mount "$M" "$OPTS" || finish

e=EROFS
expect_probe "creat new file" $e creat "$M/new"
expect_probe "open O_CREAT new file" $e open "$M/new2" wc
expect_probe "open existing for write" $e open "$M/f" w
expect_probe "open existing read-write" $e open "$M/low" b
expect_probe "open existing for append" $e open "$M/low" wa
expect_probe "open O_RDONLY|O_TRUNC" $e open "$M/low" rt
expect_probe "open O_WRONLY|O_TRUNC" $e open "$M/d/b" wt
expect_probe "mkdir" $e mkdir "$M/newdir"
expect_probe "mkdir in a merged dir" $e mkdir "$M/d/newdir"
expect_probe "mkfifo" $e mkfifo "$M/fifo"
expect_probe "unlink a top-lower file" $e unlink "$M/f"
expect_probe "unlink a bottom-lower file" $e unlink "$M/low"
expect_probe "unlink a symlink" $e unlink "$M/link"
expect_probe "rmdir an empty dir" $e rmdir "$M/emptydir"
expect_probe "rename a file" $e rename "$M/low" "$M/low2"
expect_probe "rename a file over another" $e rename "$M/low" "$M/f"
expect_probe "rename a merged dir" $e rename "$M/d" "$M/d2"
expect_probe "chmod" $e chmod "$M/low" 600
expect_probe "chmod a dir" $e chmod "$M/d" 700
expect_probe "chown" $e chown "$M/low" 65534 65534
expect_probe "lchown a symlink" $e chown "$M/link" 65534 65534
expect_probe "truncate" $e truncate "$M/low" 0
expect_probe "truncate (extend)" $e truncate "$M/low" 100000
expect_probe "utimes" $e utimes "$M/low"
expect_probe "setxattr user.*" $e setxattr "$M/low" user.new val
expect_probe "setxattr on a dir" $e setxattr "$M/d" user.new val
expect_probe "removexattr user.k" $e removexattr "$M/low" user.k
expect_probe "link" $e link "$M/low" "$M/hard"
expect_probe "symlink" $e symlink target "$M/sym"
expect_probe "fchmod on an O_RDONLY fd" $e fchmod "$M/low" 600
expect_probe "fchown on an O_RDONLY fd" $e fchown "$M/low" 65534 65534
expect_probe "fsetxattr on an O_RDONLY fd" $e fsetxattr "$M/low" user.new val
expect_probe "fremovexattr on an O_RDONLY fd" $e fremovexattr "$M/low" user.k
expect_probe "futimens on an O_RDONLY fd" $e futimens "$M/low"

# The same through the usual tools: each must fail and say so.
tool() { # tool LABEL CMD...
	local label=$1 out
	shift
	out=$(t "$@" 2>&1)
	local rc=$?
	if [ $rc -ne 0 ] && [[ $out == *"Read-only file system"* ]]; then
		pass "tool: $label fails with EROFS"
	else
		fail "tool: $label: expected failure with 'Read-only file system', got status $rc: $out"
	fi
}
tool "touch new" touch "$M/newfile"
tool "touch existing" touch "$M/low"
tool "mkdir" mkdir "$M/nd"
tool "rm" rm -f "$M/low"
tool "rmdir" rmdir "$M/emptydir"
tool "mv" mv "$M/low" "$M/moved"
tool "chmod" chmod 600 "$M/low"
tool "chown" chown 65534 "$M/low"
tool "truncate" truncate -s 0 "$M/low"
tool "setfattr" setfattr -n user.x -v y "$M/low"
tool "ln" ln "$M/low" "$M/hl"
tool "ln -s" ln -s x "$M/sl"
tool "redirect >" sh -c "echo x > '$M/low'"
tool "redirect >>" sh -c "echo x >> '$M/low'"
tool "cp into" cp /etc/hostname "$M/copied"

# Reads are unaffected.
tree_dump "$M" "$T/union.dump"
expect_same_file "tree equals kernel overlayfs" "$T/oracle.dump" "$T/union.dump"
expect_eq "read a file" "l1:f" "$(t cat "$M/f")"
expect_eq "getfattr" "v" "$(t getfattr --absolute-names --only-values -n user.k "$M/low" 2>&1)"

# statfs of a read-only union is the top lower's.
want=$(probe_out statfs "$L1")
expect_eq "statfs equals the top lower's (a 23m tmpfs)" "$want" "$(probe_out statfs "$M")"

um_umount "$M"
snapshot "$L1" "$T/l1.after"
snapshot "$L2" "$T/l2.after"
expect_same_file "L1 unchanged" "$T/l1.before" "$T/l1.after"
expect_same_file "L2 unchanged" "$T/l2.before" "$T/l2.after"

finish
