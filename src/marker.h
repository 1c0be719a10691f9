/* THE on-disk format: the only module that knows how markers look.
 *
 * Format version 3 (man/unionmount.8, ON-DISK FORMAT; version 1 had no
 * fallthrus and complete directories, and is read as a version 2 upper
 * none of whose directories was listed yet; version 2 had no metacopy
 * files, and a version 2 upper is one without them), in one of two xattr
 * namespaces chosen per mount (um_marker_choose): NS below is "trusted"
 * (a daemon run as root, the default) or "user" (-o userxattr, or a
 * daemon that cannot write trusted.*: kernel overlayfs's userxattr):
 *   whiteout   character device 0:0 (as kernel overlayfs)
 *   opaque dir xattr NS.overlay.opaque = "y" (as kernel overlayfs)
 *   version    xattr NS.unionmount.format on the upper root, decimal;
 *              a newer version than UM_FORMAT_VERSION is refused at mount.
 *              A trusted upper also carries user.unionmount.format =
 *              "trusted" (best effort), so that a daemon not run as root,
 *              which cannot read trusted.*, refuses it rather than
 *              reading it as an upper without markers
 *   redirect   xattr NS.overlay.redirect on an upper directory that
 *              was moved: where its lower parts are, as kernel overlayfs
 *              writes it ("/a/b" from the branch roots, or a plain name
 *              relative to the parent's lower parts)
 *   origin     xattr NS.unionmount.origin on an upper object copied
 *              up (or moved) from below: its union st_ino, 16 hex digits,
 *              so st_ino survives copy-up and remount. user.* xattrs exist
 *              only on regular files and directories: in the user
 *              namespace other objects get none (um_marker_can_hold)
 *   impure     xattr NS.unionmount.impure = "y" on an upper directory
 *              holding entries with an origin: readdir reads their origin
 *              only there
 *   index      WORKDIR/unionmount/index/<origin as 16 hex digits>: a hard
 *              link to the upper copy of a hard-linked object, reached by
 *              st_ino rather than by any one of its names
 *   lowerlinks xattr NS.unionmount.lowerlinks on an index entry,
 *              decimal: the names the object still has only in lower
 *              branches (visible st_nlink = index nlink - 1 + lowerlinks)
 *   fallthru   character device 0:(0x80000 + L) where L is the layer the
 *              name is visible from (1 = top-most lowerdir); usually a hard
 *              link to a shared marker in WORKDIR/unionmount/fallthru/, so
 *              it costs a directory entry and no inode (readdir/fallthru.h).
 *              Never written in the user namespace (mknod of any device
 *              but 0:0 needs CAP_MKNOD): fallthru=off there
 *   metacopy   xattr NS.unionmount.metacopy = "y" on an upper regular
 *              file copied up without its data (copyup.h): its size is
 *              the lower file's, its bytes are not yet written, and its
 *              data is read from the file of the same name in the first
 *              lower part of its directory that has one, which must carry
 *              the origin's number
 *   complete   xattr NS.unionmount.complete on an upper directory,
 *              16 hex digits: every name visible in it is in upper (real,
 *              fallthru or whiteout), for the lower stack with that id
 *              (fs.h: a hash of the lowerdir list); another id reads as
 *              not complete
 * Internal xattrs (trusted.overlay.*, trusted.unionmount.*, user.overlay.*,
 * user.unionmount.*: both namespaces, whichever this mount uses) are
 * hidden from getxattr/listxattr, refused by setxattr and never copied up.
 */
#ifndef UM_MARKER_H
#define UM_MARKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* The newest format this daemon reads. A mount records 2 on an upper
 * without a version; the first metadata-only copy-up raises it to 3, so
 * a daemon that would read such a file as its sparse upper copy (zeros)
 * refuses the upper instead. */
#define UM_FORMAT_VERSION 3
#define UM_FORMAT_BASE 2
#define UM_FORMAT_METACOPY 3

/* The two namespaces markers can live in. */
enum um_marker_ns {
	UM_MARKER_NS_TRUSTED,
	UM_MARKER_NS_USER,
};

/* The marker keys of one namespace. */
struct um_marker_keys {
	enum um_marker_ns ns;
	const char *prefix; /* "trusted." or "user." */
	const char *opaque;
	const char *format;
	const char *redirect;
	const char *origin;
	const char *impure;
	/* Kernel overlayfs's own mark for a directory holding copied-up or
	 * moved entries: read, never written, so that its redirects are
	 * followed. */
	const char *ovl_impure;
	const char *lowerlinks;
	const char *complete;
	const char *metacopy;
};

/* The keys this process uses. Set once by um_marker_use() before any
 * thread starts (fs.c at mount, unionctl when it opens a set) and only
 * read afterwards, without a lock: the hot paths pay one load for the
 * choice. The trusted namespace until then. */
extern const struct um_marker_keys *um_marker_keys;
void um_marker_use(enum um_marker_ns ns);

#define UM_XATTR_OPAQUE (um_marker_keys->opaque)
#define UM_XATTR_FORMAT (um_marker_keys->format)
#define UM_XATTR_REDIRECT (um_marker_keys->redirect)
#define UM_XATTR_ORIGIN (um_marker_keys->origin)
#define UM_XATTR_IMPURE (um_marker_keys->impure)
#define UM_XATTR_OVL_IMPURE (um_marker_keys->ovl_impure)
#define UM_XATTR_LOWERLINKS (um_marker_keys->lowerlinks)
#define UM_XATTR_COMPLETE (um_marker_keys->complete)
#define UM_XATTR_METACOPY (um_marker_keys->metacopy)

/* The format marks of both namespaces, and the value a trusted upper
 * puts into the user one. */
#define UM_XATTR_FORMAT_TRUSTED "trusted.unionmount.format"
#define UM_XATTR_FORMAT_USER "user.unionmount.format"
#define UM_FORMAT_USER_STAMP_TRUSTED "trusted"

/* Can an object of this type carry marker xattrs in the namespace in
 * use? Always for trusted.*; user.* only on regular files and
 * directories (the kernel refuses them elsewhere). */
static inline bool um_marker_can_hold(mode_t mode)
{
	return um_marker_keys->ns == UM_MARKER_NS_TRUSTED || S_ISREG(mode) || S_ISDIR(mode);
}

/* Fallthru device numbers: major 0 like a whiteout (no driver has it),
 * minors from here up; the layer fits in UM_MAX_LOWER (config.h). */
#define UM_FALLTHRU_MINOR_BASE 0x80000u
#define UM_FALLTHRU_MINOR_MAX 0xfffffu

/* Classifies from lstat alone: no extra syscall for ordinary entries. */
static inline bool um_marker_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

/* A fallthru's layer (>= 1), or 0 when st is no fallthru. */
unsigned um_marker_fallthru_layer(const struct stat *st);
dev_t um_marker_fallthru_dev(unsigned layer);

/* From a getdents d_type: could this entry be a whiteout or a fallthru
 * (needs lstat, unless readdir/fallthru.h knows its inode)? */
static inline bool um_marker_dtype_may_be_whiteout(unsigned char d_type)
{
	return d_type == 2 /* DT_CHR */ || d_type == 0 /* DT_UNKNOWN */;
}

/* Is dirfd/name (name "" = dirfd itself) an opaque directory?
 * Returns 1, 0, or -errno. */
int um_marker_is_opaque(int dirfd, const char *name);

/* Write a whiteout at dirfd/name (which must not exist). */
int um_marker_make_whiteout(int dirfd, const char *name);
/* Mark dirfd/name ("" = dirfd) opaque. */
int um_marker_set_opaque(int dirfd, const char *name);

/* Origin of dirfd/name ("" = dirfd): 1 and *ret, 0 if none, or -errno
 * (-EIO when it does not decode: a damaged marker is never guessed at). */
int um_marker_get_origin(int dirfd, const char *name, uint64_t *ret);
/* One log line for a marker key of name that does not decode (-EIO from
 * the readers here): lookup and listing say the same about it. */
void um_marker_log_bad(const char *name, const char *key);
int um_marker_set_origin(int dirfd, const char *name, uint64_t st_ino);

/* Redirect of dirfd/name: its length (value NUL-terminated), 0 if none,
 * or -errno. */
int um_marker_get_redirect(int dirfd, const char *name, char *buf, size_t size);
int um_marker_set_redirect(int dirfd, const char *name, const char *path);

/* Impure flag of a directory (name "" = dirfd): 1, 0 or -errno. */
int um_marker_is_impure(int dirfd, const char *name);
int um_marker_is_ovl_impure(int dirfd, const char *name);
int um_marker_set_impure(int dirfd, const char *name);

/* Complete mark of a directory (name "" = dirfd): 1 when it carries
 * stack id `stack`, 0 when absent or for another stack, or -errno (-EIO
 * when it does not decode). */
int um_marker_is_complete(int dirfd, const char *name, uint64_t stack);
int um_marker_set_complete(int dirfd, const char *name, uint64_t stack);

/* The stack id complete marks carry: a hash of the lowerdirs' real paths
 * (read through /proc/self/fd), top-most first. 0 or -errno. */
int um_marker_stack_id(const int *lower_fds, size_t n, uint64_t *ret);

/* A directory's own marks (dirfd itself), read when its inode is made:
 * a mask of UM_MARKER_IMPURE, UM_MARKER_COMPLETE (for stack) and
 * UM_MARKER_OVL_IMPURE (kernel overlayfs's impure mark), or -errno. One
 * listxattr when it has none of them, the common case. */
#define UM_MARKER_IMPURE 1
#define UM_MARKER_COMPLETE 2
#define UM_MARKER_OVL_IMPURE 4
int um_marker_dir_flags(int dirfd, uint64_t stack);

/* lowerlinks of an index entry: the count (0 if absent) or -errno. */
int um_marker_get_lowerlinks(int dirfd, const char *name);

/* Metacopy flag of a regular file (copyup.h): 1, 0 or -errno. Never
 * cleared: the whole copy that gives the file its data replaces it. */
int um_marker_is_metacopy(int dirfd, const char *name);
int um_marker_set_metacopy(int dirfd, const char *name);
int um_marker_set_lowerlinks(int dirfd, const char *name, unsigned n);

/*
 * Decoding, apart from reading: pure functions over an xattr value as
 * read (len bytes at buf, no NUL needed after them), used by the getters
 * above and fuzzed by tests/fuzz/fuzz_markers.c. None of them guesses at
 * a damaged value: what is not in the format is -EIO.
 */
/* A flag (opaque, impure): the value "y". Anything else is no flag (kernel
 * overlayfs writes "x" into opaque for "has xwhiteouts", for instance). */
bool um_marker_decode_flag(const char *buf, size_t len);
/* origin, complete: exactly 16 hex digits (written lowercase, either case
 * read). 0 and *ret, or -EIO; *ret is written only on success. */
int um_marker_decode_hex64(const char *buf, size_t len, uint64_t *ret);
/* lowerlinks, format: decimal digits only (no sign, no blanks), their
 * value at most max. 0 and *ret, or -EIO; *ret only on success. */
int um_marker_decode_uint(const char *buf, size_t len, uint64_t max, uint64_t *ret);
/* redirect: len (as an int), or -EIO when it names no place: empty, a NUL
 * inside, a ".." component, or a relative value that is not one plain
 * name ("." and ".." are not names). An absolute one may hold "." and
 * empty components, which name nothing new. */
int um_marker_decode_redirect(const char *buf, size_t len);

/* Would a user see this xattr name? */
bool um_marker_is_internal_xattr(const char *name);

/* What user.unionmount.format says: absent, "trusted" (a trusted upper),
 * or anything else (a user upper: its version, damaged or not). Pure. */
enum um_marker_user_stamp {
	UM_STAMP_ABSENT,
	UM_STAMP_TRUSTED,
	UM_STAMP_USER,
};
enum um_marker_user_stamp um_marker_decode_user_stamp(const char *buf, size_t len);

/* Which namespace an upper's markers are in, decided once per mount
 * (man/unionmount.8, -o userxattr):
 *   - userxattr (the option): user; refused (-EPROTO) if the root carries
 *     trusted.unionmount.format (visible to root only) or the user stamp
 *     "trusted";
 *   - else if the root carries a user format mark: refused if this
 *     process can use trusted.* (root must not read a user upper as one
 *     without markers, nor pick user.* unasked), user otherwise;
 *   - else trusted if this process can use trusted.* on the upper
 *     (a removexattr of a name never written: EPERM unprivileged, no
 *     change when privileged), user otherwise, refused when the user
 *     stamp says the markers are trusted.* ones.
 * 0 and *ret, or -errno with one line in err. Changes nothing on disk. */
int um_marker_choose(int upper_root_fd, bool userxattr, enum um_marker_ns *ret, char *err, size_t errlen);

/* Can this process use trusted.* xattrs on the filesystem of fd? 1, 0 or
 * -errno (um_marker_choose). */
int um_marker_can_trusted(int fd);

/* Check the upper root's format version (in the namespace in use): 0 if
 * absent or known (the version in *ret_ver, if given: 0 when absent),
 * -EPROTO with a message in err if newer than this daemon, other -errno
 * on I/O. */
int um_marker_check_format(int upper_root_fd, unsigned *ret_ver, char *err, size_t errlen);
/* Record format `version` on the upper root (before anything an older
 * daemon would misread is written); in the trusted namespace the user
 * stamp too, where the filesystem takes user.*. The caller never lowers
 * the version an upper already has. */
int um_marker_set_format(int upper_root_fd, unsigned version);

#endif
