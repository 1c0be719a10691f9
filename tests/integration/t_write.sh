#!/usr/bin/env bash
# t_write: the write path for data and attributes, differential against
# kernel overlayfs (redirect_dir=on, index=on, xino=on) on an identical
# copy of the branches (see "differential write tests" in lib.sh):
# create, mknod (regular, fifo, socket, char and block devices), mkdir,
# symlink, link (st_nlink truthful across copy-up), write, append,
# truncate/ftruncate, fallocate (plain, keep-size, punch, zero), setattr
# (mode, owner, size, atime/mtime with explicit values, UTIME_NOW and
# UTIME_OMIT), xattrs (user., trusted., security., a POSIX ACL set as the
# raw system.posix_acl_access value), the read-only-descriptor calls that
# must copy up (fchmod, fchown, futimens, fsetxattr, fremovexattr), fsync,
# copy_file_range, SEEK_DATA/SEEK_HOLE (holes stay holes across copy-up),
# and a descriptor opened before copy-up seeing the new data. Every answer
# and the visible trees are compared, across a remount too; upper must hold
# the copied-up files with the right content; lowers stay unchanged.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon

build() {
	local r=$1
	# l3: the bottom layer, most of the objects
	mkf "$r/l3" f/plain "plain-l3"
	mkf "$r/l3" f/shadow "shadow-l3"
	mkf "$r/l3" f/trunc "0123456789abcdef"
	mkf "$r/l3" f/ftrunc "ftrunc-data"
	mkf "$r/l3" f/hl1 "hard-linked"
	mkhl "$r/l3" f/hl1 f/hl2
	mkf "$r/l3" f/owned "owned by 1000"
	chown 1000:1000 "$r/l3/f/owned" && chmod 0640 "$r/l3/f/owned"
	mkf "$r/l3" f/xattr "with xattrs"
	setfattr -n user.a -v 1 "$r/l3/f/xattr"
	setfattr -n trusted.t -v 2 "$r/l3/f/xattr"
	setfattr -n security.s -v 3 "$r/l3/f/xattr"
	for i in 1 2 3 4 5 6; do mkf "$r/l3" "f/ro$i" "ro-fd $i"; done
	setfattr -n user.gone -v x "$r/l3/f/ro5"
	mkf "$r/l3" f/times "times"
	mkf "$r/l3" f/times2 "times2"
	mkf "$r/l3" f/coh "old-content"
	mkf "$r/l3" f/sync "sync-me"
	mkf "$r/l3" f/acl "acl"
	mkf "$r/l3" f/cfr-dst "destination-existing"
	# sparse: 1 MiB data, 2 MiB hole, 4 KiB data (chunk-aligned, so any
	# hole-preserving copy allocates the same blocks)
	head -c 1048576 /dev/zero | tr '\0' 'a' >"$r/l3/f/sparse"
	printf 'tail' | dd of="$r/l3/f/sparse" bs=4096 seek=768 conv=notrunc status=none
	truncate -s $((3 * 1048576 + 4096)) "$r/l3/f/sparse"
	cp --sparse=always "$r/l3/f/sparse" "$r/l3/f/sparse2"
	cp --sparse=always "$r/l3/f/sparse" "$r/l3/f/sparse3"
	mkdir -p "$r/l3/d/inner" "$r/l3/deep/a/b/c"
	chown 1000:1001 "$r/l3/d" "$r/l3/deep/a"
	chmod 0750 "$r/l3/d"
	chmod 0711 "$r/l3/deep/a/b"
	mkf "$r/l3" deep/a/b/c/file "deep-l3"
	mkln "$r/l3" sym f/plain
	mkln "$r/l3" f/sym-own plain
	mkfifo_at "$r/l3" f/fifo
	# l2: shadows part of l3
	mkf "$r/l2" f/shadow "shadow-l2"
	mkf "$r/l2" d/from-l2 "from-l2"
	chmod 0751 "$r/l2/d" # the top-most copy of d gives its mode
	# l1
	mkf "$r/l1" f/top "top-l1"
	mkf "$r/l1" d/inner/from-l1 "from-l1"
	# upper
	mkf "$r/u" f/upper "upper-data"
	mkd "$r/u" updir
	return 0
}

diff_setup build
dcmp "as built"

log "create, mknod, mkdir, symlink"
dop "create in a lower-only dir" OK create d/new 0640
dop "create an existing lower name" EEXIST create f/plain 0644
dop "create in an upper-only dir" OK create updir/new 0600
dop "create deep (parents copied up)" OK create deep/a/b/c/new 0644
dop "mknod regular" OK mknod d/reg reg 0600
dop "mknod fifo" OK mknod d/fifo fifo 0640
dop "mknod socket" OK mknod d/sock sock 0755
dop "mknod char 1:3" OK mknod d/chr chr 1 3 0666
dop "mknod block 7:0" OK mknod d/blk blk 7 0 0660
dop "stat the char dev (umask 022)" "OK c 0644 0:0 0 1 1:3" stat d/chr
dop "mknod over an existing lower fifo" EEXIST mknod f/fifo fifo
dop "mkdir in a lower dir" OK mkdir d/sub 0700
dop "mkdir an existing merged dir" EEXIST mkdir d 0755
dop "mkdir an existing lower dir" EEXIST mkdir d/inner 0755
dop "mkdir under a lower file" ENOTDIR mkdir f/plain/x 0755
dop "symlink in a lower dir" OK symlink ../f/plain d/sl
dop "readlink the new symlink" "OK ../f/plain" readlink d/sl
dop "symlink over a lower name" EEXIST symlink x sym
up_type "new file in a lower dir" d/new "regular"
up_type "parent dirs copied up" deep/a/b "directory"
up_type "mknod fifo lands in upper" d/fifo "fifo"
up_type "mknod socket lands in upper" d/sock "socket"

log "link"
dop "link a lower file (copy-up of the source)" OK link f/plain f/plain.l
dop "both names, nlink 2" "OK f 0644 0:0 8 2" stat f/plain
dop "both names, new name" "OK f 0644 0:0 8 2" stat f/plain.l
dop "link one name of a lower hard-link pair" OK link f/hl1 d/hl3
dop "nlink of the linked name" "OK f 0644 0:0 11 3" stat d/hl3
dop "nlink of the other lower name" "OK f 0644 0:0 11 3" stat f/hl2
dop "write through one name" OK write f/hl2 0 HARD
dop "other names see it" "OK HARD-linked" read f/hl1
dop "and the third" "OK HARD-linked" read d/hl3
dop "link an upper file" OK link f/upper updir/upper.l
dop "link to an existing name" EEXIST link f/top f/shadow
dop "link a directory" EPERM link d d2
up_file "link source copied up" f/plain "plain-l3"

log "write, append, truncate, ftruncate"
dop "write into a lower file" OK write f/shadow 2 XY
dop "read it back" "OK shXYow-l2" read f/shadow
dop "append to a lower file" OK append f/top "+more"
dop "read the appended file" "OK top-l1+more" read f/top
dop "write deep (parents copied up)" OK write deep/a/b/c/file 0 DEEP
dop "write past the end (sparse gap)" OK write f/plain 100 "@100"
dop "size after the far write" "OK f 0644 0:0 104 2" stat f/plain
dop "truncate a lower file shorter" OK truncate f/trunc 4
dop "truncated content" "OK 0123" read f/trunc
dop "ftruncate a lower file longer" OK ftruncate f/ftrunc 100000
dop "ftruncated size" "OK f 0644 0:0 100000 1" stat f/ftrunc
dop "truncate a lower dir" EISDIR truncate d 0
dop "truncate a missing file" ENOENT truncate f/none 0
dop "lower fifo untouched" "OK p 0644 0:0 0 1" stat f/fifo
up_file "copied-up file content" f/trunc "0123"
up_file "copied-up deep file content" deep/a/b/c/file "DEEP-l3"

log "fallocate, SEEK_DATA/SEEK_HOLE, copy_file_range"
dop "lower sparse file: first hole" "OK 1048576" seek_hole f/sparse 0
dop "lower sparse file: data after the hole" "OK 3145728" seek_data f/sparse 1048576
dop "fallocate keep-size past EOF (copy-up)" OK fallocate f/sparse keep 4194304 4096
dop "size unchanged by keep-size" "OK f 0644 0:0 3149824 1" stat f/sparse
dop "copied-up: hole still at 1 MiB" "OK 1048576" seek_hole f/sparse 0
dop "copied-up: data again at 3 MiB" "OK 3145728" seek_data f/sparse 1048576
dop "fallocate plain inside the hole" OK fallocate f/sparse2 0 1048576 4096
dop "SEEK_DATA over the allocated (unwritten) range" - seek_data f/sparse2 1048576
dop "punch a hole in a lower file" OK fallocate f/sparse3 punch 0 4096
dop "punched range is a hole" "OK 0" seek_hole f/sparse3 0
dop "punched content" 'OK \x00\x00\x00\x00aaaa' read f/sparse3 4092 8
dop "zero range in a lower file" OK fallocate f/plain.l zero 0 2
dop "zeroed content" 'OK \x00\x00' read f/plain 0 2
dop "fallocate on a lower dir" "~EBADF|EISDIR" fallocate d 0 0 10
dop "SEEK_DATA past the end" ENXIO seek_data f/top 1000
dop "copy_file_range lower sparse -> new file" "OK 3149824" copy_file_range f/sparse2 d/cfr 3149824
dop "copy_file_range into an existing lower file" "OK 5" copy_file_range f/top f/cfr-dst 5 0 3
dop "copied range" "OK destop-lion-existing" read f/cfr-dst
dop "copy_file_range from a missing file" ENOENT copy_file_range f/none d/cfr2 10
dcmp "after data changes"

log "setattr: mode, owner, size, times"
dop "chmod a lower file" OK chmod f/owned 0604
dop "chmod a lower dir (metadata copy-up)" OK chmod d/inner 0700
dop "chmod a merged dir" OK chmod d 0705
dop "chown a lower file" OK chown f/owned 2000 2001
dop "chown keeps the mode (no setuid bits involved)" "OK f 0604 2000:2001 13 1" stat f/owned
dop "chown uid only" OK chown f/times2 3000 -1
dop "lchown a lower symlink" OK chown f/sym-own 1000 1000
dop "the symlink is owned, its target not" "OK l 0777 1000:1000 5 1" stat f/sym-own
dop "target untouched" "OK f 0644 0:0 104 2" stat f/plain
dop "chown a lower dir" OK chown deep 1234 4321
dop "utimens explicit" OK utimens f/times 1234567890.123456789 1234567891.5
dop "times after explicit" "OK a=1234567890.123456789 m=1234567891.500000000" times f/times
dop "utimens atime now, mtime omit" OK utimens f/times now omit
dop "times after now/omit" "OK a=recent m=1234567891.500000000" times f/times
dop "utimens atime omit, mtime explicit" OK utimens f/times omit 1500000000.25
dop "times after omit/explicit" "OK a=recent m=1500000000.250000000" times f/times
dop "utimens explicit again" OK utimens f/times 7.25 8.125
dop "utimens omit omit (no change)" OK utimens f/times omit omit
dop "times kept" "OK a=7.250000000 m=8.125000000" times f/times
dop "utimens omit omit on a lower file" OK utimens f/ro6 omit omit
dop "its mtime kept" "OK m=1000000000.000000000" mtime f/ro6
dop "utimens now now on a lower symlink" OK utimens sym now now
dop "symlink times" "OK a=recent m=recent" times sym
dop "utimens explicit on a lower dir" OK utimens d/inner 1.5 2.5
dop "dir times" "OK a=1.500000000 m=2.500000000" times d/inner
dop "copy-up (chmod, chown) keeps the lower mtime" "OK m=1000000000.000000000" mtime f/owned
dop "chmod a missing file" ENOENT chmod f/none 0644
up_metacopy "chmod copied the file up" f/owned "owned by 1000"

log "read-only descriptors: fchmod, fchown, futimens, fsetxattr, fremovexattr"
dop "fchmod on O_RDONLY" OK fchmod-ro f/ro1 0600
dop "fchmod result" "OK f 0600 0:0 7 1" stat f/ro1
dop "fchown on O_RDONLY" OK fchown-ro f/ro2 1000 1000
dop "fchown result" "OK f 0644 1000:1000 7 1" stat f/ro2
dop "futimens on O_RDONLY" OK futimens-ro f/ro3 5.5 6.25
dop "futimens result" "OK a=5.500000000 m=6.250000000" times f/ro3
dop "futimens now/omit on O_RDONLY" OK futimens-ro f/ro3 omit now
dop "futimens now result" "OK a=5.500000000 m=recent" times f/ro3
dop "fsetxattr on O_RDONLY" OK fsetxattr-ro f/ro4 user.fd set-through-fd
dop "fsetxattr result" "OK set-through-fd" getxattr f/ro4 user.fd
dop "fremovexattr on O_RDONLY" OK fremovexattr-ro f/ro5 user.gone
dop "fremovexattr result" ENODATA getxattr f/ro5 user.gone
up_metacopy "fchmod copied up" f/ro1 "ro-fd 1"
up_metacopy "fsetxattr copied up" f/ro4 "ro-fd 4"

log "xattrs: user., trusted., security., POSIX ACL"
dop "copied-up xattrs listed" "OK security.s,trusted.t,user.a" listxattr f/xattr
dop "setxattr user. on a lower file" OK setxattr f/xattr user.new v1
dop "setxattr trusted." OK setxattr f/xattr trusted.new v2
dop "setxattr security." OK setxattr f/xattr security.new v3
dop "removexattr a lower xattr" OK removexattr f/xattr user.a
dop "list after the changes" "OK security.new,security.s,trusted.new,trusted.t,user.new" listxattr f/xattr
dop "trusted. value kept by copy-up" "OK 2" getxattr f/xattr trusted.t
dop "security. value kept by copy-up" "OK 3" getxattr f/xattr security.s
dop "replace a missing xattr" ENODATA setxattr f/xattr user.none v replace
dop "create an existing xattr" EEXIST setxattr f/xattr user.new v create
dop "replace an existing xattr" OK setxattr f/xattr user.new v9 replace
dop "removexattr missing" ENODATA removexattr f/xattr user.none
dop "setxattr on a lower dir" OK setxattr d/inner user.dir yes
dop "setxattr user. on a lower symlink" EPERM setxattr sym user.x 1
dop "setxattr trusted. on a lower symlink" OK setxattr sym trusted.x 1
# ACL u::rw- u:1000:r-- g::r-- m::r-- o::---
acl=hex:0200000001000600ffffffff02000400e803000004000400ffffffff10000400ffffffff20000000ffffffff
dop "set a POSIX ACL (system.posix_acl_access) on a lower file" OK setxattr f/acl system.posix_acl_access $acl
dop "the ACL sets the mode" "OK f 0640 0:0 3 1" stat f/acl
dop "read the ACL back" - getxattr f/acl system.posix_acl_access
# default ACL d:u::rwx d:g::r-x d:o::r-x on a lower dir, then a new file inherits it
dacl=hex:0200000001000700ffffffff04000500ffffffff20000500ffffffff
dop "set a default ACL on a lower dir" OK setxattr d/inner system.posix_acl_default $dacl
dop "new file under a default ACL" OK create d/inner/acl-new 0666
dop "inherited mode" "OK f 0644 0:0 0 1" stat d/inner/acl-new
command -v setfacl >/dev/null || log "note: setfacl (acl package) not installed; ACLs set as raw xattrs"

log "fsync, copy-up coherence"
dop "fsync a lower file on O_RDONLY (no copy-up needed)" OK fsync f/sync ro
up_absent "fsync on a read-only descriptor copies nothing up" f/sync
dop "fsync a lower file on O_RDWR" OK fsync f/sync rw
dop "write + fsync a lower file" OK write-fsync f/sync 0 SYNC
dop "synced content" "OK SYNC-me" read f/sync
dop "fd opened before copy-up reads the new data" "OK NEW-content" cohere f/coh NEW-
dop "an open file unlinked and replaced: fstat, fchmod, read through its fd" "OK 8 0 640 unl-data" unlinked f/unl unl-data
dop "the new file under that name" "OK f 0600 0:0 0 1" stat f/unl
dcmp "after attribute changes"
dremount "after remount"
dop "after remount: appended file" "OK top-l1+more" read f/top
dop "after remount: hard links" "OK f 0644 0:0 11 3" stat f/hl1
dop "after remount: ACL mode" "OK f 0640 0:0 3 1" stat f/acl
dop "after remount: mtime" "OK m=8.125000000" mtime f/times
dop "after remount: hole kept" "OK 1048576" seek_hole f/sparse 0
dop "after remount: write again" OK write f/plain 0 AGAIN
diff_end

# A descriptor's O_APPEND changed with fcntl(F_SETFL): the kernel sends
# each WRITE with its offset, so a positional write after O_APPEND was
# cleared must land at that offset (the daemon's own fd must not append),
# and an append after O_APPEND was set lands at the end. As on tmpfs and
# overlayfs: 0123456789 -> AB23CD6789EF. On a lower file (copy-up by the
# O_APPEND open) and on a new one.
log "O_APPEND cleared and set with fcntl"
A=$T/append
mkdir -p "$A/l" "$A/u" "$A/w" "$A/m"
printf 0123456789 >"$A/l/low"
um_mount "$A/m" "upperdir=$A/u,workdir=$A/w,lowerdir=$A/l" || finish
printf 0123456789 >"$A/m/new"
for f in low new; do
	got=$(t python3 - "$A/m/$f" <<'PY'
import fcntl, os, sys
p = sys.argv[1]
fd = os.open(p, os.O_WRONLY | os.O_APPEND)
fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_APPEND)
os.pwrite(fd, b"AB", 0)
os.lseek(fd, 4, os.SEEK_SET)
os.write(fd, b"CD")
fd2 = os.open(p, os.O_WRONLY)
fcntl.fcntl(fd2, fcntl.F_SETFL, fcntl.fcntl(fd2, fcntl.F_GETFL) | os.O_APPEND)
os.write(fd2, b"EF")
os.close(fd)
os.close(fd2)
with open(p) as f:
    print(f.read())
PY
)
	expect_eq "fcntl O_APPEND off then on ($f file)" AB23CD6789EF "$got"
	expect_eq "upper holds the same ($f file)" AB23CD6789EF "$(cat "$A/u/$f")"
done
um_umount "$A/m"
finish
