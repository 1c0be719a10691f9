#!/usr/bin/env bash
# t_rename: rename(2) and renameat2 flags through the union, differential
# against kernel overlayfs with redirect_dir=on (see "differential write
# tests" in lib.sh). Checked:
# - files: upper-only, lower (copy-up + whiteout at the old name), over a
#   lower file, over an upper file, hard-linked lower files (st_nlink),
#   into other dirs, onto themselves;
# - directories: upper-only; a lower/merged dir moved (must not fail with
#   EXDEV: DESIGN.md says record where the contents come from), then
#   renames deeper inside it, a second move of the moved dir, a remount:
#   every name and content stays right and the old names stay deleted;
#   onto an empty lower dir; onto a merged dir that only looks empty
#   (its lower names are whited out: they must not come back);
# - errors: ENOTEMPTY, ENOTDIR, EISDIR, EINVAL (into itself), ENOENT;
# - RENAME_NOREPLACE (EEXIST on a visible name, OK on a whited-out one),
#   RENAME_EXCHANGE (lower/lower, lower/upper, file/dir, dir/dir);
# - RENAME_WHITEOUT: the union may answer EINVAL (as the kernel does) or
#   OK; only that is checked, the two sides are made equal after it.
. "$(dirname "$0")/lib.sh"
setup_test
require_overlay
require_daemon

build() {
	local r=$1
	mkf "$r/l3" F1
	mkf "$r/l3" F2
	mkf "$r/l3" F3
	mkf "$r/l3" X1
	mkf "$r/l3" X2
	mkf "$r/l3" hl1 "linked"
	mkhl "$r/l3" hl1 hl2
	mkf "$r/l3" D/f
	mkf "$r/l3" D/g
	mkf "$r/l3" D/s1/s2/file
	mkf "$r/l3" D/s1/s2/other
	mkln "$r/l3" D/link ../F1
	mkf "$r/l2" D/l2file
	mkf "$r/l2" D/s1/from-l2
	mkf "$r/u" D/ufile
	mkd "$r/l3" E
	mkf "$r/l3" E2/x
	mkf "$r/l3" N/n1
	mkf "$r/l3" N/sub/n2
	mkf "$r/l3" NE/keep
	mkf "$r/l3" XD1/a
	mkf "$r/l3" XD2/b
	mkf "$r/l3" gone
	mkf "$r/l3" sub/inner
	mkf "$r/l3" wo/src
	mkf "$r/u" UF
	mkf "$r/u" UF2
	mkf "$r/u" UD/ua
	mkf "$r/u" UD/deep/ub
	mkwh "$r/u" E2/x # E2 is merged and looks empty
	mkf "$r/l3" hla "hard"
	mkhl "$r/l3" hla hlb
	mkf "$r/l3" back/inside
	mkf "$r/l3" whd
	mkf "$r/l3" over1/x
	mkf "$r/l3" over2/y
	return 0
}

diff_setup build
dcmp "as built"

log "files"
dop "rename an upper file" OK rename UF UFr
dop "rename a lower file" OK rename F1 F1r
dop "old name gone" ENOENT stat F1
dop "new name has the content" "OK l3:F1\x0a" read F1r
up_whiteout "whiteout at the old name of a renamed lower file" F1
up_file "renamed lower file copied up" F1r "l3:F1"
dop "rename a lower file over a lower file" OK rename F1r F2
dop "F2 has F1's content" "OK l3:F1\x0a" read F2
dop "rename an upper file over a lower file" OK rename UF2 F3
dop "F3 has UF2's content" "OK u:UF2\x0a" read F3
dop "rename a lower file over an upper file" OK rename X2 UFr
dop "rename a lower file into a lower dir" OK rename gone D/gone
dop "rename a hard-linked lower file" OK rename hl1 hl1r
dop "nlink of the renamed name" "OK f 0644 0:0 6 2" stat hl1r
dop "nlink of the other name" "OK f 0644 0:0 6 2" stat hl2
dop "write through the renamed name" OK write hl1r 0 L
dop "the other name sees it" "OK Linked" read hl2
dop "rename onto itself" OK rename X1 X1
dop "rename a missing file" ENOENT rename nothere x
dop "rename a file over a dir" EISDIR rename X1 E
dop "rename a file into a file's path" ENOTDIR rename X1 F2/x
dop "rename the old (whited-out) name" ENOENT rename F1 F9
dcmp "after file renames"

log "directories"
dop "rename an upper-only dir" OK rename UD UDr
dop "move a merged dir (l2, l3, upper parts; no EXDEV)" OK rename D Dm
dop "old dir name gone" ENOENT stat D
up_whiteout "whiteout at the old name of a moved lower dir" D
dop "moved dir shows every branch's names" "OK f/f,g/f,gone/f,l2file/f,link/l,s1/d,ufile/f" readdir Dm
dop "a lower name through the moved dir" "OK l3:D/s1/s2/file\x0a" read Dm/s1/s2/file
dop "rename deeper: a lower file inside the moved dir" OK rename Dm/s1/s2/file Dm/s1/file2
dop "rename deeper: a lower subdir inside the moved dir" OK rename Dm/s1 Dm/s1m
dop "rename deeper: out of the moved dir" OK rename Dm/g g
dop "moved dir's subdir content" "OK file2/f,from-l2/f,s2/d" readdir Dm/s1m
dop "moved-twice file content" "OK l3:D/s1/s2/file\x0a" read Dm/s1m/file2
dop "symlink inside the moved dir" "OK ../F1" readlink Dm/link
dcmp "after directory moves"
dremount "remount after directory moves"
dop "after remount: old name stays deleted" ENOENT stat D
dop "after remount: moved dir" "OK f/f,gone/f,l2file/f,link/l,s1m/d,ufile/f" readdir Dm
dop "after remount: renamed subdir" "OK file2/f,from-l2/f,s2/d" readdir Dm/s1m
dop "after remount: s2 keeps its other file only" "OK other/f" readdir Dm/s1m/s2
dop "after remount: old subdir name gone" ENOENT stat Dm/s1
dop "after remount: file moved out" "OK l3:D/g\x0a" read g
dop "move the moved dir again, into a new dir" OK mkdir P 0755
dop "second move" OK rename Dm P/D2
dop "content after the second move" "OK l3:D/s1/s2/other\x0a" read P/D2/s1m/s2/other
dop "a new file in the moved dir" OK create P/D2/s1m/new 0644
dremount "remount after the second move"
dop "after remount: second move kept" "OK file2/f,from-l2/f,new/f,s2/d" readdir P/D2/s1m
dop "after remount: Dm gone" ENOENT stat Dm

log "directories onto directories"
dop "rename a dir onto a non-empty lower dir" ENOTEMPTY rename N NE
dop "rename a lower dir onto an empty lower dir" OK rename N E
dop "E shows N's names" "OK n1/f,sub/d" readdir E
dop "E's subdir" "OK n2/f" readdir E/sub
up_whiteout "whiteout at N" N
dop "rename an upper dir onto a merged dir that looks empty" OK rename UDr E2
dop "E2 shows the upper dir's names only" "OK deep/d,ua/f" readdir E2
dop "the whited-out lower name stays hidden" ENOENT stat E2/x
dop "rename a dir onto a file" ENOTDIR rename E2 X1
dop "rename a dir into itself" EINVAL rename E E/sub/E
dop "rename a lower dir into an upper dir" OK rename sub P/sub
dop "moved lower dir content" "OK l3:sub/inner\x0a" read P/sub/inner
dremount "remount after dir-onto-dir renames"
dop "after remount: E" "OK n1/f,sub/d" readdir E
dop "after remount: E2 lower name hidden" ENOENT stat E2/x
dop "after remount: E2" "OK deep/d,ua/f" readdir E2
dop "after remount: N gone" ENOENT stat N

log "renameat2 flags"
dop "NOREPLACE onto a visible lower name" EEXIST rename X1 F3 noreplace
dop "NOREPLACE onto a whited-out name" OK rename X1 F1 noreplace
dop "the moved file" "OK l3:X1\x0a" read F1
dop "NOREPLACE onto a new name" OK rename hl2 hl3 noreplace
dop "nlink after NOREPLACE" "OK f 0644 0:0 6 2" stat hl3
dop "EXCHANGE two lower files" OK rename F1 F3 exchange
dop "exchanged: F1" "OK u:UF2\x0a" read F1
dop "exchanged: F3" "OK l3:X1\x0a" read F3
dop "EXCHANGE a lower file and an upper file" OK rename F2 UFr exchange
dop "exchanged: F2" "OK l3:X2\x0a" read F2
dop "exchanged: UFr" "OK l3:F1\x0a" read UFr
dop "EXCHANGE with a missing name" ENOENT rename F2 nothere exchange
dop "EXCHANGE a file and a lower dir" OK rename F2 XD1 exchange
dop "exchanged: XD1 is the file" "OK l3:X2\x0a" read XD1
dop "exchanged: F2 is the dir" "OK a/f" readdir F2
dop "EXCHANGE two lower dirs" OK rename F2 XD2 exchange
dop "exchanged dirs: F2" "OK b/f" readdir F2
dop "exchanged dirs: XD2" "OK a/f" readdir XD2
dop_any "RENAME_WHITEOUT" "OK|EINVAL" rename wo/src wo/dst whiteout
# equalize: remove whichever of the two names exists on each side
for s in $DIFF_SIDES; do
	tin "$T/$s/mnt" "$HELPERS/fsop" unlink wo/src >/dev/null
	tin "$T/$s/mnt" "$HELPERS/fsop" unlink wo/dst >/dev/null
done
dop "after RENAME_WHITEOUT + cleanup: wo is empty" "OK" readdir wo
dcmp "after renameat2 flags"
log "review cases"
dop "a new file over one name of a lower hard link" OK create hlnew 0644
dop "... renamed over hlb" OK rename hlnew hlb
dop "the other name still reads the old data" "OK hard" read hla
dop "and has nlink 1 now" "~^OK f 0644 0:0 [0-9]+ 1$" stat hla
dop "a merged dir moved away" OK rename back backed
dop "and moved back to its name (a whiteout stands there)" OK rename backed back
dop "its content" "OK inside/f" readdir back
dop "a dir created and renamed onto a deleted lower name" OK unlink whd
dop "mkdir for it" OK mkdir newd 0755
dop "rename onto the whiteout" OK rename newd whd
dop "the moved dir is empty" OK readdir whd
dop "a dir over an empty merged dir" OK unlink over2/y
dop "rename -T over1 over2" OK rename over1 over2
dop "over2 shows over1's content" "OK x/f" readdir over2
dop "over1 is gone" ENOENT stat over1
dop "mknod c 0 0 (the whiteout format)" EPERM mknod c00 chr 0 0
dremount "remount at the end"
dop "after remount: exchanged dirs" "OK a/f" readdir XD2
dop "after remount: exchanged file" "OK l3:X2\x0a" read XD1
diff_end
finish
