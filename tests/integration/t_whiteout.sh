#!/usr/bin/env bash
# t_whiteout: unlink, rmdir and re-creation over deleted names,
# differential against kernel overlayfs (see "differential write tests"
# in lib.sh). Rules checked (DESIGN.md, Namespace changes):
# - unlink/rmdir of a lower object (file, symlink, fifo, copied-up file,
#   empty lower dir) leaves a whiteout (char 0:0) in upper and no copy;
# - rmdir of a merged dir is ENOTEMPTY while any name in it is visible
#   (from upper or from any lower), and succeeds once all are deleted,
#   leaving a whiteout;
# - mkdir where a whiteout stands makes an opaque dir
#   (trusted.overlay.opaque=y) that shows none of the old lower names;
#   create/symlink/mknod over a whiteout make a plain new object;
# - upper-only objects just go;
# - everything deleted stays deleted after unmount + mount;
# - (unionmount) whiteouts are hard links to the shared whiteout
#   WORKDIR/unionmount/whiteout/w.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon

build() {
	local r=$1
	mkf "$r/l3" fileonly
	mkf "$r/l3" written
	mkln "$r/l3" sym fileonly
	mkfifo_at "$r/l3" fifo
	mkf "$r/l3" a/f1
	mkf "$r/l3" a/f2
	mkf "$r/l3" m/x
	mkd "$r/l3" e
	mkd "$r/l3" e2
	mkf "$r/l3" w/z
	mkf "$r/l3" w/sub/deeper
	mkf "$r/l3" over/old1
	mkf "$r/l3" tofile/inside
	mkf "$r/l3" again
	mkf "$r/l3" hid/x
	mkf "$r/l3" hid/y
	mkf "$r/l2" m/y
	mkf "$r/l2" a/f3
	mkf "$r/l2" w/z "l2 shadows l3"
	mkd "$r/l2" e2
	mkf "$r/l2" over/old2
	mkf "$r/l1" top
	mkf "$r/l1" m/t
	mkf "$r/u" m/u
	mkf "$r/u" uonly/a
	mkd "$r/u" uempty
	mkf "$r/u" ufile
	mkwh "$r/u" hid/x # a kernel-written upper: whiteouts already there
	return 0
}

diff_setup build
dcmp "as built"

log "unlink"
dop "unlink a lower-only file" OK unlink fileonly
dop "it is gone" ENOENT stat fileonly
up_whiteout "unlink of a lower file" fileonly
dop "write a lower file (copy-up)" OK append written "+w"
dop "unlink the copied-up file" OK unlink written
dop "copied-up file gone" ENOENT stat written
up_whiteout "unlink of a copied-up file" written
dop "unlink a lower symlink" OK unlink sym
up_whiteout "unlink of a lower symlink" sym
dop "unlink a lower fifo" OK unlink fifo
up_whiteout "unlink of a lower fifo" fifo
dop "unlink an upper-only file" OK unlink ufile
dop "upper-only file gone" ENOENT stat ufile
dop "unlink again" ENOENT unlink fileonly
dop "unlink a dir" "~EISDIR|EPERM" unlink a
dop "unlink in a merged subdir" OK unlink a/f1
up_whiteout "whiteout in a copied-up parent" a/f1
up_type "the parent is a real upper dir" a directory
dop "readdir a after the unlink" "OK f2/f,f3/f" readdir a

log "rmdir of merged dirs"
dop "rmdir a merged dir with names from 4 branches" ENOTEMPTY rmdir m
dop "unlink m/x (l3)" OK unlink m/x
dop "unlink m/y (l2)" OK unlink m/y
dop "unlink m/t (l1)" OK unlink m/t
dop "still not empty: m/u in upper" ENOTEMPTY rmdir m
dop "unlink m/u (upper)" OK unlink m/u
dop "m shows nothing" "OK" readdir m
dop "rmdir the now empty merged dir" OK rmdir m
dop "m is gone" ENOENT stat m
up_whiteout "rmdir of a merged dir" m
dop "rmdir an empty lower dir" OK rmdir e
up_whiteout "rmdir of an empty lower dir" e
dop "rmdir an empty dir merged from two lowers" OK rmdir e2
up_whiteout "rmdir of an empty two-lower dir" e2
dop "rmdir a dir whose names are all whited out already" ENOTEMPTY rmdir hid
dop "unlink the last visible name" OK unlink hid/y
dop "rmdir with only whiteouts left" OK rmdir hid
up_whiteout "rmdir of a dir left with only whiteouts" hid
dop "rmdir an upper-only empty dir" OK rmdir uempty
dop "rmdir an upper-only non-empty dir" ENOTEMPTY rmdir uonly
dop "rmdir a file" ENOTDIR rmdir top
dop "rmdir a missing name" ENOENT rmdir nothere
log "rm -r of a lower tree"
dop "unlink w/sub/deeper" OK unlink w/sub/deeper
dop "rmdir w/sub" OK rmdir w/sub
dop "unlink w/z (shadowed in l3)" OK unlink w/z
dop "rmdir w" OK rmdir w
up_whiteout "rm -r of a lower tree leaves one whiteout at the top" w
dcmp "after deletions"
dremount "remount after deletions"
for n in fileonly written sym fifo ufile m e e2 hid w uempty a/f1; do
	dop "after remount: $n stays deleted" ENOENT stat "$n"
done

log "re-creating over whiteouts"
dop "mkdir where a whiteout stands" OK mkdir m 0755
up_opaque "mkdir over the whiteout of a merged dir" m
dop "the new dir shows none of the old names" "OK" readdir m
dop "lookup of an old lower name in it" ENOENT stat m/x
dop "create in the opaque dir" OK create m/new 0644
dop "mkdir over the whiteout of a lower file" OK mkdir fileonly 0700
up_opaque "mkdir over the whiteout of a file" fileonly
dop "mkdir over the whiteout of an empty lower dir" OK mkdir e 0755
up_opaque "mkdir over the whiteout of an empty dir" e
dop "create over the whiteout of a lower file" OK create written 0600
up_type "create over a whiteout: a plain file" written "regular"
dop "the new file is empty" "OK f 0600 0:0 0 1" stat written
dop "symlink over the whiteout of a lower symlink" OK symlink elsewhere sym
dop "readlink the new symlink" "OK elsewhere" readlink sym
dop "mknod fifo over the whiteout of a lower fifo" OK mknod fifo fifo 0600
dop "mkdir over the whiteout of a lower tree" OK mkdir w 0755
dop "none of the old tree shows" "OK" readdir w
dop "rmdir the opaque dir" OK rmdir w
up_whiteout "rmdir of an opaque dir over lower names" w
dop "rmdir an opaque dir with a file" ENOTEMPTY rmdir m
dop "unlink the file in it" OK unlink m/new
dop "rmdir the empty opaque dir" OK rmdir m
up_whiteout "whiteout after rmdir of an opaque dir" m
log "file <-> dir swaps"
dop "unlink lower tofile/inside" OK unlink tofile/inside
dop "rmdir tofile" OK rmdir tofile
dop "create a file where a lower dir was" OK create tofile 0644
dop "write it" OK write tofile 0 "now-a-file"
dop "unlink lower again" OK unlink again
dop "create again, then unlink it again" OK create again 0644
dop "unlink the re-created file" OK unlink again
up_whiteout "unlink of a re-created file over a lower name" again
dop "unlink in merged over/ (l2)" OK unlink over/old2
dop "over/ still shows l3's name" "OK old1/f" readdir over
up_not_opaque "merged dir after an unlink stays merged" over
dcmp "after re-creations"
dremount "remount after re-creations"
dop "after remount: m stays deleted" ENOENT stat m
dop "after remount: the opaque dir e stays empty" "OK" readdir e
dop "after remount: fileonly is a dir" "~OK d 0700 0:0 .*" stat fileonly
dop "after remount: tofile is a file" "OK now-a-file" read tofile
dop "after remount: over/old2 stays deleted" ENOENT stat over/old2
if ! selftest; then
	# The shared whiteout (as kernel overlayfs shares one in its workdir):
	# a whiteout is one more link to it, not a new inode.
	expect_eq "whiteouts m and again are links to WORKDIR/unionmount/whiteout/w" \
		"$(stat -c %i "$T/un/w/unionmount/whiteout/w" 2>&1) $(stat -c %i "$T/un/w/unionmount/whiteout/w" 2>&1)" \
		"$(stat -c %i "$T/un/u/m" 2>&1) $(stat -c %i "$T/un/u/again" 2>&1)"
fi
diff_end
finish
