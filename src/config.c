/* Command line and -o parsing, and the layout checks that must fail before
 * anything is mounted. This module neither logs nor exits: every failure
 * is one line in the caller's err buffer, starting with the option it is
 * about, and main.c decides what to do with it.
 *
 * errno is read here right after stat/statx/statvfs/realpath/faccessat:
 * sys.c only wraps fd-relative, non-following calls for branch access,
 * while these checks work on the user's paths as given, before any
 * branch fd exists. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fuse_opt.h>

#include "cleanup.h"

#define DEFAULT_CACHE_TIMEOUT 86400.0
#define USAGE_LINE "unionmount [SOURCE] MOUNTPOINT -o lowerdir=DIR[:DIR...][,upperdir=DIR,workdir=DIR]"

static int fail(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Fill err (when there is one) and hand r back, so callers can write
 * "return fail(...)". */
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		/* The value or path quoted back may hold a newline or a terminal
		 * escape: the message stays one line of printable text. */
		for (char *c = err; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
	}
	return r;
}

static int fail_oom(char *err, size_t errlen)
{
	return fail(err, errlen, -ENOMEM, "out of memory while parsing options");
}

/* ---- escapes ------------------------------------------------------------ */

/* Length of the element starting at s, up to the first unescaped sep or the
 * end. A backslash always escapes the next character here; unescape()
 * removes it later, so "\," and "\:" survive the outer split intact. */
static size_t element_len(const char *s, char sep)
{
	size_t len = 0;

	while (s[len] && s[len] != sep) {
		if (s[len] == '\\' && s[len + 1])
			len++;
		len++;
	}
	return len;
}

/* New string from src[0, len) with every "\x" turned into "x". A lone
 * backslash at the end escapes nothing: -EINVAL rather than a guess. */
static int unescape(const char *src, size_t len, char **ret)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if (src[i] == '\\') {
			if (++i == len) {
				free(out);
				return -EINVAL;
			}
		}
		out[o++] = src[i];
	}
	out[o] = '\0';
	*ret = out;
	return 0;
}

static void free_strv(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int split_lowerdir(const char *spec, char ***ret_dirs, size_t *ret_n, char *err, size_t errlen)
{
	char **dirs = NULL;
	size_t n = 1, i = 0;
	const char *p;
	int r;

	if (!*spec)
		return fail(err, errlen, -EINVAL, "lowerdir: empty list; give at least one directory: -o lowerdir=DIR[:DIR...]");

	for (p = spec; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == ':')
			n++;
	}

	/* One spare slot keeps the vector NULL-terminated for anyone who
	 * prefers walking it to counting. */
	dirs = calloc(n + 1, sizeof(*dirs));
	if (!dirs)
		return fail_oom(err, errlen);

	for (p = spec; i < n; i++) {
		size_t len = element_len(p, ':');

		if (len == 0) {
			r = fail(err, errlen, -EINVAL,
				 "lowerdir: entry %zu of '%s' is empty; remove the extra ':' (write '\\:' for a colon in a name)",
				 i + 1, spec);
			goto free_dirs;
		}
		r = unescape(p, len, &dirs[i]);
		if (r == -EINVAL) {
			r = fail(err, errlen, r, "lowerdir: '%s' ends in a lone '\\'; write '\\\\' for a backslash", spec);
			goto free_dirs;
		}
		if (r < 0) {
			r = fail_oom(err, errlen);
			goto free_dirs;
		}
		p += len;
		if (*p == ':')
			p++;
	}

	*ret_dirs = dirs;
	*ret_n = n;
	return 0;

free_dirs:
	free_strv(dirs, n);
	return r;
}

int um_config_split_lowerdir(const char *spec, char ***ret_dirs, size_t *ret_n)
{
	return split_lowerdir(spec, ret_dirs, ret_n, NULL, 0);
}

/* ---- -o options --------------------------------------------------------- */

enum opt_kind {
	OPT_LOWERDIR,
	OPT_UPPERDIR,
	OPT_WORKDIR,
	OPT_CACHE_TIMEOUT,
	OPT_FALLTHRU,
	OPT_METACOPY,
	OPT_RO,   /* ours and fuse's: also passed on */
	OPT_RW,   /* likewise */
	OPT_PASS, /* fuse's alone: passed on as given */
	OPT_DROP, /* accepted, not passed on: see the table */
	OPT_LOWERDIR_ADD, /* overlayfs's lowerdir+=DIR: one more layer, taken literally */
	OPT_OVL,  /* an overlayfs option: the values in ovl_accepts are what we do */
	OPT_REFUSE_BLKSIZE,
	OPT_READDIRPLUS,
	OPT_USERXATTR,
	OPT_MAX_DIRFDS,
	OPT_NICE,
	OPT_PASSTHROUGH,
	OPT_URING,
	OPT_URING_IDLE,
};

enum opt_arg {
	ARG_NONE,   /* a flag: "name" */
	ARG_STRING, /* "name=VALUE", VALUE not empty */
	ARG_UINT,   /* "name=N", N a positive integer */
};

struct opt_def {
	const char *name;
	enum opt_kind kind;
	enum opt_arg arg;
	const char *syntax; /* left column of --help */
	const char *help;   /* right column: one line per option */
};

static const struct opt_def opt_defs[] = {
	{ "lowerdir", OPT_LOWERDIR, ARG_STRING, "lowerdir=L1:L2:...",
	  "read-only layers, top-most first; '\\:' is a colon, '\\\\' a backslash" },
	{ "upperdir", OPT_UPPERDIR, ARG_STRING, "upperdir=DIR", "writable layer; needs workdir" },
	{ "workdir", OPT_WORKDIR, ARG_STRING, "workdir=DIR",
	  "empty directory on the same filesystem as upperdir, beside it" },
	{ "lowerdir+", OPT_LOWERDIR_ADD, ARG_STRING, "lowerdir+=DIR",
	  "one more read-only layer below those given, no escapes (repeatable)" },
	{ "cache_timeout", OPT_CACHE_TIMEOUT, ARG_STRING, "cache_timeout=SECONDS",
	  "kernel entry/attribute cache lifetime (default 86400)" },
	{ "fallthru", OPT_FALLTHRU, ARG_STRING, "fallthru=on|off",
	  "list a merged directory once into upper (default on)" },
	{ "metacopy", OPT_METACOPY, ARG_STRING, "metacopy=on|off",
	  "chmod, chown, touch, xattrs copy up no data (default on)" },
	{ "readdirplus", OPT_READDIRPLUS, ARG_STRING, "readdirplus=adaptive|auto|always|never",
	  "listings also look entries up (default adaptive)" },
	{ "passthrough", OPT_PASSTHROUGH, ARG_STRING, "passthrough=auto|all|off",
	  "kernel does the I/O of files that cannot move (default), all, none" },
	{ "uring", OPT_URING, ARG_STRING, "uring=auto|off",
	  "requests through io_uring when the kernel offers it (default), or not" },
	{ "uring_idle", OPT_URING_IDLE, ARG_STRING, "uring_idle=auto|off",
	  "io_uring workers SCHED_IDLE when the daemon's group is its own (default)" },
	{ "max_dirfds", OPT_MAX_DIRFDS, ARG_STRING, "max_dirfds=N",
	  "most directory fds kept open (default half the open-files limit)" },
	{ "nice", OPT_NICE, ARG_STRING, "nice=N",
	  "scheduling weight of the daemon, -20 to 19 (default -10; 0 leaves it)" },
	{ "userxattr", OPT_USERXATTR, ARG_NONE, "userxattr",
	  "markers in user.* xattrs (default when trusted.* cannot be written)" },
	{ "ro", OPT_RO, ARG_NONE, "ro", "read-only union, even with an upperdir" },
	{ "rw", OPT_RW, ARG_NONE, "rw", "writable when there is an upperdir (default)" },

	{ "allow_other", OPT_PASS, ARG_NONE, "allow_other", "let other users in (default as root)" },
	{ "default_permissions", OPT_PASS, ARG_NONE, "default_permissions",
	  "kernel checks permissions (default as root)" },
	{ "fsname", OPT_PASS, ARG_STRING, "fsname=NAME", "source in /proc/mounts (default SOURCE, or unionmount)" },
	{ "subtype", OPT_PASS, ARG_STRING, "subtype=NAME", "type shown as fuse.NAME (default unionmount)" },
	{ "auto_unmount", OPT_PASS, ARG_NONE, "auto_unmount", "unmount when the daemon dies" },
	{ "max_read", OPT_PASS, ARG_UINT, "max_read=BYTES", "largest read request" },
	/* fuse_opt knows blksize, but the kernel takes it only for fuseblk
	 * mounts (block-device backed), which a union never is: passed on, it
	 * makes mount(2) fail with a bare EINVAL, so refuse it up front. */
	{ "blksize", OPT_REFUSE_BLKSIZE, ARG_STRING, "blksize=BYTES", "refused: only for block-device FUSE mounts" },

	/* Generic mount flags from mount(8) / mount.fuse3; libfuse 3.14 sets
	 * the matching MS_* flag for each. */
	{ "suid", OPT_PASS, ARG_NONE, "suid", "honour set-user/group-ID bits" },
	{ "nosuid", OPT_PASS, ARG_NONE, "nosuid", "ignore set-user/group-ID bits" },
	{ "dev", OPT_PASS, ARG_NONE, "dev", "allow device files" },
	{ "nodev", OPT_PASS, ARG_NONE, "nodev", "refuse to open device files" },
	{ "exec", OPT_PASS, ARG_NONE, "exec", "allow running programs" },
	{ "noexec", OPT_PASS, ARG_NONE, "noexec", "refuse to run programs" },
	{ "async", OPT_PASS, ARG_NONE, "async", "asynchronous writes (default)" },
	{ "sync", OPT_PASS, ARG_NONE, "sync", "synchronous writes" },
	{ "dirsync", OPT_PASS, ARG_NONE, "dirsync", "synchronous directory changes" },
	{ "atime", OPT_PASS, ARG_NONE, "atime", "mount flag, passed to the kernel" },
	{ "noatime", OPT_PASS, ARG_NONE, "noatime", "mount flag, passed to the kernel" },
	/* SELinux labels: libfuse hands them to the kernel, where the LSM
	 * consumes them; without SELinux the kernel refuses them, as it would
	 * for any filesystem. */
	{ "context", OPT_PASS, ARG_STRING, "context=LABEL", "SELinux label, passed to the kernel" },
	{ "fscontext", OPT_PASS, ARG_STRING, "fscontext=LABEL", "SELinux label, passed to the kernel" },
	{ "defcontext", OPT_PASS, ARG_STRING, "defcontext=LABEL", "SELinux label, passed to the kernel" },
	{ "rootcontext", OPT_PASS, ARG_STRING, "rootcontext=LABEL", "SELinux label, passed to the kernel" },

	/* Kernel overlayfs's own options, so that an fstab line written for
	 * "overlay" needs only its type changed. A value is accepted where it
	 * asks for what unionmount does anyway (ovl_opt_accepts), refused
	 * where it asks for something else. */
	{ "redirect_dir", OPT_OVL, ARG_STRING, "redirect_dir=on|follow",
	  "overlayfs compatibility: directory renames are always recorded" },
	{ "index", OPT_OVL, ARG_STRING, "index=on|off", "overlayfs compatibility: hard links are always kept" },
	{ "xino", OPT_OVL, ARG_STRING, "xino=on|off|auto", "overlayfs compatibility: inode numbers are always unique" },
	{ "uuid", OPT_OVL, ARG_STRING, "uuid=on|off|null|auto", "overlayfs compatibility: ignored" },
	{ "nfs_export", OPT_OVL, ARG_STRING, "nfs_export=off", "overlayfs compatibility: no NFS export" },
	{ "volatile", OPT_OVL, ARG_NONE, "volatile", "refused: copied data is always synced" },

	/* mount(8)'s own options, for fstab: mount(8) and mount.fuse3 strip
	 * them before the helper runs, but a systemd unit or a script may pass
	 * them straight to us. x-* (x-systemd.*, x-gvfs-*, ...) are taken as a
	 * family in parse_one_opt. "user"/"users"/"owner"/"group" are not
	 * here: they imply nosuid,nodev,noexec, which only mount(8) adds. */
	{ "defaults", OPT_DROP, ARG_NONE, "defaults", "fstab: accepted and ignored" },
	{ "auto", OPT_DROP, ARG_NONE, "auto", "fstab: accepted and ignored (mount -a's business)" },
	{ "noauto", OPT_DROP, ARG_NONE, "noauto", "fstab: accepted and ignored (mount -a's business)" },
	{ "nofail", OPT_DROP, ARG_NONE, "nofail", "fstab: accepted and ignored (mount -a's business)" },
	{ "_netdev", OPT_DROP, ARG_NONE, "_netdev", "fstab: accepted and ignored (boot ordering)" },
	{ "comment", OPT_DROP, ARG_STRING, "comment=TEXT", "fstab: accepted and ignored" },
	{ "x-*", OPT_DROP, ARG_NONE, "x-NAME[=VALUE]", "fstab: accepted and ignored (x-systemd.*, ...)" },

	/* mount(8) may hand these over from fstab, but libfuse 3.14's
	 * fuse_session_new() rejects them as unknown. Dropping them changes
	 * nothing: a FUSE mount's atime is whatever the daemon reports, and
	 * ours reports the backing file's, kept by the backing mount under its
	 * own atime flags. */
	{ "diratime", OPT_DROP, ARG_NONE, "diratime", "accepted and ignored: atime is the backing file's" },
	{ "nodiratime", OPT_DROP, ARG_NONE, "nodiratime", "accepted and ignored: atime is the backing file's" },
	{ "relatime", OPT_DROP, ARG_NONE, "relatime", "accepted and ignored: atime is the backing file's" },
	{ "norelatime", OPT_DROP, ARG_NONE, "norelatime", "accepted and ignored: atime is the backing file's" },
	{ "strictatime", OPT_DROP, ARG_NONE, "strictatime", "accepted and ignored: atime is the backing file's" },
	{ "nostrictatime", OPT_DROP, ARG_NONE, "nostrictatime", "accepted and ignored: atime is the backing file's" },
	{ "lazytime", OPT_DROP, ARG_NONE, "lazytime", "accepted and ignored: atime is the backing file's" },
	{ "nolazytime", OPT_DROP, ARG_NONE, "nolazytime", "accepted and ignored: atime is the backing file's" },
};

#define N_OPT_DEFS (sizeof(opt_defs) / sizeof(opt_defs[0]))

/* What find_opt() hands back for any x-NAME: its value, if any, is not
 * looked at (ARG_STRING would demand one). */
static const struct opt_def x_family = { "x-*", OPT_DROP, ARG_STRING, NULL, NULL };

/* For OPT_OVL: the values that ask for what unionmount does anyway, and
 * why the others are refused. */
static const struct {
	const char *name;
	const char *const accepts[5];
	const char *refusal;
} ovl_values[] = {
	{ "redirect_dir", { "on", "follow" }, "unionmount always records renamed directories (as redirect_dir=on)" },
	{ "index", { "on", "off" }, NULL },
	{ "xino", { "on", "off", "auto" }, NULL },
	{ "uuid", { "on", "off", "null", "auto" }, NULL },
	{ "nfs_export", { "off" }, "a FUSE union cannot be exported over NFS" },
	{ "volatile", { NULL }, "copied data is always synced; there is no option to skip that" },
};

static int ovl_opt(const char *name, const char *value, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(ovl_values) / sizeof(ovl_values[0]); i++) {
		if (strcmp(ovl_values[i].name, name))
			continue;
		for (size_t v = 0; value && ovl_values[i].accepts[v]; v++)
			if (!strcmp(ovl_values[i].accepts[v], value))
				return 0;
		if (!value)
			return fail(err, errlen, -EINVAL, "%s: not supported: %s; remove it", name,
				    ovl_values[i].refusal);
		return fail(err, errlen, -EINVAL, "%s=%s: not supported%s%s; remove it or see unionmount --help",
			    name, value, ovl_values[i].refusal ? ": " : "",
			    ovl_values[i].refusal ? ovl_values[i].refusal : "");
	}
	return fail(err, errlen, -EINVAL, "%s: internal error: no accepted values", name);
}

/* What parsing collects on the way besides struct um_config. */
struct parse_state {
	char *fuse_opts; /* comma-separated, fuse_opt-escaped */
	bool ro;         /* the last of ro / rw wins, as in mount(8) */
	bool gave_fsname;
	bool gave_subtype;
	bool gave_allow_other;
	bool gave_default_permissions;
	bool lowerdir_listed; /* lowerdir= seen: overlayfs refuses mixing it with lowerdir+= */
	bool lowerdir_added;  /* lowerdir+= seen */
};

static const struct opt_def *find_opt(const char *name, size_t len)
{
	/* x-* is a family: take any x-NAME, with a value or not. */
	if (len > 2 && !strncmp(name, "x-", 2))
		return &x_family;
	for (size_t i = 0; i < N_OPT_DEFS; i++)
		if (strlen(opt_defs[i].name) == len && !strncmp(opt_defs[i].name, name, len))
			return &opt_defs[i];
	return NULL;
}

static int parse_uint(const char *name, const char *value, char *err, size_t errlen)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (value[0] < '0' || value[0] > '9' || *end || errno || v == 0 || v > UINT_MAX)
		return fail(err, errlen, -EINVAL, "%s: '%s' is not a positive whole number; give a size in bytes",
			    name, value);
	return 0;
}

static int parse_timeout(const char *value, double *ret, char *err, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(value, &end);
	if (!*value || *end || errno || !isfinite(v) || v < 0)
		return fail(err, errlen, -EINVAL,
			    "cache_timeout: '%s' is not a number of seconds >= 0; e.g. -o cache_timeout=86400", value);
	*ret = v;
	return 0;
}

static int pass_opt(struct parse_state *ps, const char *opt, char *err, size_t errlen)
{
	/* The value was unescaped on the way in; fuse_opt splits on commas
	 * again, so escape them back. */
	if (fuse_opt_add_opt_escaped(&ps->fuse_opts, opt) < 0)
		return fail_oom(err, errlen);
	return 0;
}

/* lowerdir keeps its backslashes until the split, so that "\:" is told
 * apart from ':'. */
static int set_lowerdir(struct um_config *cfg, const char *raw, size_t len, char *err, size_t errlen)
{
	_cleanup_free_ char *spec = strndup(raw, len);
	char **dirs;
	size_t n;
	int r;

	if (!spec)
		return fail_oom(err, errlen);
	r = split_lowerdir(spec, &dirs, &n, err, errlen);
	if (r < 0)
		return r;
	if (n > UM_MAX_LOWER) {
		free_strv(dirs, n);
		return fail(err, errlen, -EINVAL, "lowerdir: %zu directories given, at most %d are supported", n,
			    UM_MAX_LOWER);
	}
	/* Given twice (fstab plus command line): the last one wins, as
	 * mount(8) does with repeated options. */
	free_strv(cfg->lowerdirs, cfg->n_lower);
	cfg->lowerdirs = dirs;
	cfg->n_lower = n;
	return 0;
}

/* lowerdir+=DIR, as kernel overlayfs takes it: one layer per option,
 * appended below the others, its value literal (the -o list's own "\,"
 * escape aside). Takes dir. */
static int add_lowerdir(struct um_config *cfg, char *dir, char *err, size_t errlen)
{
	char **dirs;

	if (cfg->n_lower >= UM_MAX_LOWER) {
		free(dir);
		return fail(err, errlen, -EINVAL, "lowerdir+: more than %d directories given", UM_MAX_LOWER);
	}
	/* One spare slot: the vector stays NULL-terminated, as split_lowerdir
	 * makes it. */
	dirs = realloc(cfg->lowerdirs, (cfg->n_lower + 2) * sizeof(*dirs));
	if (!dirs) {
		free(dir);
		return fail_oom(err, errlen);
	}
	dirs[cfg->n_lower++] = dir;
	dirs[cfg->n_lower] = NULL;
	cfg->lowerdirs = dirs;
	return 0;
}

/* One "name[=value]" from an -o list, still escaped. */
static int parse_one_opt(struct um_config *cfg, struct parse_state *ps, const char *raw, size_t len, char *err,
			 size_t errlen)
{
	const char *eq = memchr(raw, '=', len);
	size_t name_len = eq ? (size_t)(eq - raw) : len;
	const struct opt_def *def = find_opt(raw, name_len);
	_cleanup_free_ char *value = NULL;
	_cleanup_free_ char *plain = NULL;
	int r;

	if (!def)
		return fail(err, errlen, -EINVAL, "unknown option '%.*s': see unionmount --help", (int)name_len, raw);
	if (def == &x_family)
		return 0;
	if (def->arg == ARG_NONE && eq)
		return fail(err, errlen, -EINVAL, "%s: takes no value; write -o %s", def->name, def->name);
	if (def->arg != ARG_NONE && !eq)
		return fail(err, errlen, -EINVAL, "%s: needs a value; write -o %s=...", def->name, def->name);

	if (def->kind == OPT_LOWERDIR) {
		if (ps->lowerdir_added)
			return fail(err, errlen, -EINVAL,
				    "lowerdir: cannot be mixed with lowerdir+=; give the layers one way or the other");
		ps->lowerdir_listed = true;
		return set_lowerdir(cfg, eq + 1, len - name_len - 1, err, errlen);
	}

	if (eq) {
		r = unescape(eq + 1, len - name_len - 1, &value);
		if (r == -EINVAL)
			return fail(err, errlen, r, "%s: value ends in a lone '\\'; write '\\\\' for a backslash",
				    def->name);
		if (r < 0)
			return fail_oom(err, errlen);
		if (!*value)
			return fail(err, errlen, -EINVAL, "%s: empty value; write -o %s=...", def->name, def->name);
		if (def->arg == ARG_UINT) {
			r = parse_uint(def->name, value, err, errlen);
			if (r < 0)
				return r;
		}
		if (asprintf(&plain, "%s=%s", def->name, value) < 0) {
			plain = NULL;
			return fail_oom(err, errlen);
		}
	}

	switch (def->kind) {
	case OPT_UPPERDIR:
		free(cfg->upperdir);
		cfg->upperdir = TAKE_PTR(value);
		return 0;
	case OPT_WORKDIR:
		free(cfg->workdir);
		cfg->workdir = TAKE_PTR(value);
		return 0;
	case OPT_CACHE_TIMEOUT:
		return parse_timeout(value, &cfg->cache_timeout, err, errlen);
	case OPT_FALLTHRU:
		if (strcmp(value, "on") && strcmp(value, "off"))
			return fail(err, errlen, -EINVAL, "fallthru: '%s' is neither on nor off; e.g. -o fallthru=off",
				    value);
		cfg->fallthru = !strcmp(value, "on");
		return 0;
	case OPT_METACOPY:
		if (strcmp(value, "on") && strcmp(value, "off"))
			return fail(err, errlen, -EINVAL, "metacopy: '%s' is neither on nor off; e.g. -o metacopy=off",
				    value);
		cfg->metacopy = !strcmp(value, "on");
		return 0;
	case OPT_PASSTHROUGH:
		if (!strcmp(value, "auto"))
			cfg->passthrough = UM_PASSTHROUGH_AUTO;
		else if (!strcmp(value, "all"))
			cfg->passthrough = UM_PASSTHROUGH_ALL;
		else if (!strcmp(value, "off"))
			cfg->passthrough = UM_PASSTHROUGH_OFF;
		else
			return fail(err, errlen, -EINVAL,
				    "passthrough: '%s' is none of auto, all, off; e.g. -o passthrough=off", value);
		cfg->passthrough_given = true;
		return 0;
	case OPT_URING:
		if (strcmp(value, "auto") && strcmp(value, "off"))
			return fail(err, errlen, -EINVAL, "uring: '%s' is neither auto nor off; e.g. -o uring=off",
				    value);
		cfg->uring = !strcmp(value, "auto");
		return 0;
	case OPT_URING_IDLE:
		if (strcmp(value, "auto") && strcmp(value, "off"))
			return fail(err, errlen, -EINVAL,
				    "uring_idle: '%s' is neither auto nor off; e.g. -o uring_idle=off", value);
		cfg->uring_idle = !strcmp(value, "auto");
		return 0;
	case OPT_READDIRPLUS:
		if (!strcmp(value, "adaptive"))
			cfg->readdirplus = UM_RDPLUS_ADAPTIVE;
		else if (!strcmp(value, "auto"))
			cfg->readdirplus = UM_RDPLUS_AUTO;
		else if (!strcmp(value, "always"))
			cfg->readdirplus = UM_RDPLUS_ALWAYS;
		else if (!strcmp(value, "never"))
			cfg->readdirplus = UM_RDPLUS_NEVER;
		else
			return fail(err, errlen, -EINVAL,
				    "readdirplus: '%s' is none of adaptive, auto, always, never; e.g. -o readdirplus=never",
				    value);
		return 0;
	case OPT_USERXATTR:
		cfg->userxattr = true;
		return 0;
	case OPT_MAX_DIRFDS: {
		char *end;

		errno = 0;
		cfg->max_dirfds = strtoul(value, &end, 10);
		if (value[0] < '0' || value[0] > '9' || *end || errno || cfg->max_dirfds == 0 ||
		    cfg->max_dirfds > INT_MAX)
			return fail(err, errlen, -EINVAL,
				    "max_dirfds: '%s' is not a whole number of descriptors from 1 up; e.g. -o max_dirfds=4096",
				    value);
		return 0;
	}
	case OPT_NICE: {
		char *end;
		long n;

		errno = 0;
		n = strtol(value, &end, 10);
		if ((value[0] != '-' && (value[0] < '0' || value[0] > '9')) || *end || errno || end == value ||
		    n < -20 || n > 19)
			return fail(err, errlen, -EINVAL,
				    "nice: '%s' is not a whole number from -20 to 19; e.g. -o nice=0", value);
		cfg->nice = (int)n;
		cfg->nice_given = true;
		return 0;
	}
	case OPT_RO:
	case OPT_RW:
		ps->ro = def->kind == OPT_RO;
		/* fuse too: the kernel then refuses writes before they reach us */
		return pass_opt(ps, def->name, err, errlen);
	case OPT_PASS:
		ps->gave_fsname |= !strcmp(def->name, "fsname");
		ps->gave_subtype |= !strcmp(def->name, "subtype");
		ps->gave_allow_other |= !strcmp(def->name, "allow_other");
		ps->gave_default_permissions |= !strcmp(def->name, "default_permissions");
		return pass_opt(ps, plain ? plain : def->name, err, errlen);
	case OPT_DROP:
		return 0;
	case OPT_LOWERDIR_ADD:
		if (ps->lowerdir_listed)
			return fail(err, errlen, -EINVAL,
				    "lowerdir+: cannot be mixed with lowerdir=; give the layers one way or the other");
		ps->lowerdir_added = true;
		return add_lowerdir(cfg, TAKE_PTR(value), err, errlen);
	case OPT_OVL:
		return ovl_opt(def->name, value, err, errlen);
	case OPT_REFUSE_BLKSIZE:
		return fail(err, errlen, -EINVAL,
			    "blksize: the kernel takes it only for block-device FUSE mounts (fuseblk), which a union is not; remove it");
	case OPT_LOWERDIR:
		break;
	}
	return fail(err, errlen, -EINVAL, "%s: internal error: option not handled", def->name);
}

/* A whole -o argument: options separated by unescaped commas. Empty
 * elements ("a,,b", a trailing comma) are skipped, as mount(8) does. */
static int parse_opt_list(struct um_config *cfg, struct parse_state *ps, const char *list, char *err, size_t errlen)
{
	const char *p = list;

	for (;;) {
		size_t len = element_len(p, ',');
		int r;

		if (len > 0) {
			r = parse_one_opt(cfg, ps, p, len, err, errlen);
			if (r < 0)
				return r;
		}
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

/* ---- argv --------------------------------------------------------------- */

/* -h and -V win over everything else, wherever they stand (before "--"),
 * so that "unionmount --help" answers even next to broken options. */
static bool scan_help_version(struct um_config *cfg, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "-o"))
			i++; /* its list may well be "-h"-shaped text; not a flag */
		else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			cfg->show_help = true;
		else if (!strcmp(a, "-V") || !strcmp(a, "--version"))
			cfg->show_version = true;
	}
	return cfg->show_help || cfg->show_version;
}

static int add_default_opts(struct um_config *cfg, struct parse_state *ps, char *err, size_t errlen)
{
	_cleanup_free_ char *fsname = NULL;
	int r;

	if (!ps->gave_fsname) {
		if (asprintf(&fsname, "fsname=%s", cfg->source ? cfg->source : "unionmount") < 0) {
			fsname = NULL;
			return fail_oom(err, errlen);
		}
		r = pass_opt(ps, fsname, err, errlen);
		if (r < 0)
			return r;
	}
	if (!ps->gave_subtype) {
		r = pass_opt(ps, "subtype=unionmount", err, errlen);
		if (r < 0)
			return r;
	}
	/* Started by root the union is usually a system mount (fstab, a
	 * live system's root) that every user sees; the kernel must then check
	 * permissions, since the daemon's own credentials would let anyone
	 * read anything. */
	if (geteuid() == 0) {
		if (!ps->gave_allow_other) {
			r = pass_opt(ps, "allow_other", err, errlen);
			if (r < 0)
				return r;
		}
		if (!ps->gave_default_permissions) {
			r = pass_opt(ps, "default_permissions", err, errlen);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int build_fuse_args(struct um_config *cfg, struct parse_state *ps, const char *argv0, char *err,
			   size_t errlen)
{
	int r = add_default_opts(cfg, ps, err, errlen);

	if (r < 0)
		return r;
	if (fuse_opt_add_arg(&cfg->fuse_args, argv0) < 0 || fuse_opt_add_arg(&cfg->fuse_args, "-o") < 0 ||
	    fuse_opt_add_arg(&cfg->fuse_args, ps->fuse_opts) < 0 ||
	    (cfg->debug && fuse_opt_add_arg(&cfg->fuse_args, "-d") < 0))
		return fail_oom(err, errlen);
	return 0;
}

static int parse_argv(struct um_config *cfg, struct parse_state *ps, int argc, char **argv, char *err,
		      size_t errlen)
{
	const char *pos[2];
	int n_pos = 0;
	bool opts_done = false;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (opts_done || a[0] != '-' || a[1] == '\0') {
			if (n_pos == 2)
				return fail(err, errlen, -EINVAL, "'%s': one argument too many; usage: " USAGE_LINE,
					    a);
			pos[n_pos++] = a;
		} else if (!strcmp(a, "--")) {
			opts_done = true;
		} else if (!strcmp(a, "-f")) {
			cfg->foreground = true;
		} else if (!strcmp(a, "-d")) {
			cfg->debug = true;
			cfg->foreground = true;
		} else if (!strcmp(a, "-s")) {
			cfg->single_thread = true;
		} else if (!strcmp(a, "-o")) {
			if (++i == argc)
				return fail(err, errlen, -EINVAL, "-o: missing option list; e.g. -o lowerdir=DIR");
			r = parse_opt_list(cfg, ps, argv[i], err, errlen);
			if (r < 0)
				return r;
		} else if (!strncmp(a, "-o", 2)) {
			r = parse_opt_list(cfg, ps, a + 2, err, errlen);
			if (r < 0)
				return r;
		} else {
			return fail(err, errlen, -EINVAL, "unknown option '%s': see unionmount --help", a);
		}
	}

	if (n_pos == 0)
		return fail(err, errlen, -EINVAL, "missing MOUNTPOINT: " USAGE_LINE);
	if (n_pos == 2) {
		if (!*pos[0])
			return fail(err, errlen, -EINVAL, "source: empty; give a name for /proc/mounts or leave it out");
		cfg->source = strdup(pos[0]);
		if (!cfg->source)
			return fail_oom(err, errlen);
	}
	if (!*pos[n_pos - 1])
		return fail(err, errlen, -EINVAL, "mountpoint: empty path; give an existing directory");
	cfg->mountpoint = strdup(pos[n_pos - 1]);
	if (!cfg->mountpoint)
		return fail_oom(err, errlen);

	if (cfg->n_lower == 0)
		return fail(err, errlen, -EINVAL, "missing lowerdir: add -o lowerdir=DIR[:DIR...] (top-most first)");
	if (cfg->upperdir && !cfg->workdir)
		return fail(err, errlen, -EINVAL,
			    "upperdir given without workdir: add -o workdir=DIR on the same filesystem as upperdir");
	if (cfg->workdir && !cfg->upperdir)
		return fail(err, errlen, -EINVAL,
			    "workdir given without upperdir: add -o upperdir=DIR, or drop workdir for a read-only union");
	cfg->readonly = ps->ro || !cfg->upperdir;
	return 0;
}

/* On failure *cfg is released (and zeroed), so calling um_config_release()
 * afterwards, as callers do on every path, is harmless. */
int um_config_parse(struct um_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	struct parse_state ps = { 0 };
	int r;

	if (err && errlen > 0)
		err[0] = '\0';
	cfg->cache_timeout = DEFAULT_CACHE_TIMEOUT;
	cfg->fallthru = true;
	cfg->metacopy = true;
	cfg->readdirplus = UM_RDPLUS_DEFAULT;
	cfg->passthrough = UM_PASSTHROUGH_AUTO;
	cfg->uring = true;
	cfg->uring_idle = true;
	cfg->nice = UM_DEFAULT_NICE;
	if (scan_help_version(cfg, argc, argv))
		return 0;

	r = parse_argv(cfg, &ps, argc, argv, err, errlen);
	if (r < 0)
		goto release;
	r = build_fuse_args(cfg, &ps, argc > 0 ? argv[0] : "unionmount", err, errlen);
	if (r < 0)
		goto release;
	free(ps.fuse_opts);
	return 0;

release:
	free(ps.fuse_opts);
	um_config_release(cfg);
	return r;
}

int um_config_parse_opts(struct um_config *cfg, const char *opts, char *err, size_t errlen)
{
	struct parse_state ps = { 0 };
	int r;

	if (err && errlen > 0)
		err[0] = '\0';
	r = parse_opt_list(cfg, &ps, opts, err, errlen);
	free(ps.fuse_opts);
	cfg->readonly = ps.ro || !cfg->upperdir;
	return r;
}

/* ---- validation --------------------------------------------------------- */

/* One directory named on the command line, and what we learned about it. */
struct layer {
	const char *opt; /* "lowerdir", "upperdir", "workdir" */
	const char *path;
	struct stat st;
	char *real; /* realpath(path) */
};

static int check_dir(const char *opt, const char *path, struct stat *ret_st, char *err, size_t errlen)
{
	int e;

	if (stat(path, ret_st) < 0) {
		e = errno;
		if (e == ENOENT)
			return fail(err, errlen, -ENOENT, "%s: '%s' does not exist; give an existing directory", opt,
				    path);
		if (e == ENOTDIR)
			return fail(err, errlen, -ENOTDIR,
				    "%s: '%s' has a non-directory in its path; give an existing directory", opt, path);
		return fail(err, errlen, -e, "%s: cannot access '%s': %s", opt, path, strerror(e));
	}
	if (!S_ISDIR(ret_st->st_mode))
		return fail(err, errlen, -ENOTDIR, "%s: '%s' is not a directory; give a directory", opt, path);
	return 0;
}

static int resolve(struct layer *l, char *err, size_t errlen)
{
	int e;

	l->real = realpath(l->path, NULL);
	if (!l->real) {
		e = errno;
		return fail(err, errlen, -e, "%s: cannot resolve '%s': %s", l->opt, l->path, strerror(e));
	}
	return 0;
}

static bool same_dir(const struct layer *a, const struct layer *b)
{
	/* The inode check also catches one directory reached through two
	 * bind mounts, which realpath alone would call different. */
	return !strcmp(a->real, b->real) || (a->st.st_dev == b->st.st_dev && a->st.st_ino == b->st.st_ino);
}

/* Is the canonical path inside the canonical dir (strictly below it)? */
static bool path_inside(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	if (!strcmp(dir, "/"))
		return strcmp(path, "/") != 0;
	return !strncmp(path, dir, len) && path[len] == '/';
}

/* The rules between a lowerdir and upperdir/workdir: a layer that is, or
 * is inside, or contains the writable side would see the daemon's own
 * writes (copy-ups, whiteouts, workdir temp files) appear in a layer that
 * is promised to be immutable. */
static int check_lower_vs(const struct layer *lower, const struct layer *w, char *err, size_t errlen)
{
	if (same_dir(lower, w))
		return fail(err, errlen, -EINVAL, "%s: '%s' is also a lowerdir; give a directory outside every lowerdir",
			    w->opt, w->path);
	if (path_inside(w->real, lower->real))
		return fail(err, errlen, -EINVAL,
			    "%s: '%s' is inside lowerdir '%s'; give a directory outside every lowerdir", w->opt, w->path,
			    lower->path);
	if (path_inside(lower->real, w->real))
		return fail(err, errlen, -EINVAL, "lowerdir: '%s' is inside %s '%s'; move it out, or pick another %s",
			    lower->path, w->opt, w->path, w->opt);
	return 0;
}

static int check_upper_work(const struct layer *upper, const struct layer *work, char *err, size_t errlen)
{
	struct statx su, sw;

	if (same_dir(upper, work))
		return fail(err, errlen, -EINVAL,
			    "workdir: '%s' is the upperdir itself; give a separate empty directory beside it", work->path);
	/* Inside upper it would show up in the union; upper inside work
	 * would be emptied by the purge of leftover temp files at mount. */
	if (path_inside(work->real, upper->real))
		return fail(err, errlen, -EINVAL,
			    "workdir: '%s' is inside upperdir '%s'; give a directory beside upperdir, not in it",
			    work->path, upper->path);
	if (path_inside(upper->real, work->real))
		return fail(err, errlen, -EINVAL,
			    "upperdir: '%s' is inside workdir '%s'; give a workdir beside upperdir, not above it",
			    upper->path, work->path);

	/* Copy-up publishes with rename(2) from workdir into upper, which
	 * fails with EXDEV across filesystems... */
	if (upper->st.st_dev != work->st.st_dev)
		return fail(err, errlen, -EXDEV,
			    "workdir: '%s' is on a different filesystem from upperdir '%s'; give a workdir on the same filesystem",
			    work->path, upper->path);
	/* ...and also across two mounts of one filesystem (bind mounts share
	 * st_dev). statx's mount id tells them apart where the kernel has it
	 * (5.8+); without it st_dev is all we can check. */
	if (statx(AT_FDCWD, upper->real, 0, STATX_MNT_ID, &su) == 0 &&
	    statx(AT_FDCWD, work->real, 0, STATX_MNT_ID, &sw) == 0 && (su.stx_mask & sw.stx_mask & STATX_MNT_ID) &&
	    su.stx_mnt_id != sw.stx_mnt_id)
		return fail(err, errlen, -EXDEV,
			    "workdir: '%s' is on a different mount from upperdir '%s' (rename cannot cross mounts); give a workdir on the same mount",
			    work->path, upper->path);
	return 0;
}

static int check_writable(const struct layer *l, char *err, size_t errlen)
{
	struct statvfs sv;
	int e = 0;

	if (statvfs(l->real, &sv) == 0 && (sv.f_flag & ST_RDONLY))
		e = EROFS;
	else if (faccessat(AT_FDCWD, l->real, W_OK, AT_EACCESS) < 0)
		e = errno;

	if (e == EROFS)
		return fail(err, errlen, -EROFS,
			    "%s: '%s' is on a read-only filesystem; give a writable directory (or list it in lowerdir for a read-only union)",
			    l->opt, l->path);
	if (e == EACCES || e == EPERM)
		return fail(err, errlen, -e, "%s: '%s' is not writable by this user; fix its permissions or owner",
			    l->opt, l->path);
	if (e)
		return fail(err, errlen, -e, "%s: cannot check '%s' for writing: %s", l->opt, l->path, strerror(e));
	return 0;
}

/* The mountpoint may be a lowerdir: branch fds are opened before mounting
 * and fd-relative lookups never cross into the mount on top. Not so for
 * the writable side:
 * - inside upperdir, resolving the mountpoint's own name from the upper fd
 *   walks into our mount, so the daemon would send requests to itself (a
 *   deadlock in single-threaded mode, endless recursion for find(1)), and
 *   writes through that name would land in the union, not in the layer;
 * - inside workdir, the purge of leftover temp files at mount would try to
 *   remove the mountpoint;
 * - equal to either, the writable layer vanishes under the mount: fsck,
 *   backups and, after a crash, the next mount (which would open the dead
 *   mount's root as its upper layer) can no longer reach it by path. */
static int check_mountpoint(const struct layer *mnt, const struct layer *w, char *err, size_t errlen)
{
	if (same_dir(mnt, w))
		return fail(err, errlen, -EINVAL,
			    "mountpoint: '%s' is the %s; mount elsewhere (a lowerdir may be the mountpoint, the %s not)",
			    mnt->path, w->opt, w->opt);
	if (path_inside(mnt->real, w->real))
		return fail(err, errlen, -EINVAL, "mountpoint: '%s' is inside %s '%s'; mount outside it", mnt->path,
			    w->opt, w->path);
	return 0;
}

int um_config_validate(const struct um_config *cfg, char *err, size_t errlen)
{
	size_t n = cfg->n_lower;
	struct layer *lower = NULL;
	struct layer upper = { .opt = "upperdir", .path = cfg->upperdir };
	struct layer work = { .opt = "workdir", .path = cfg->workdir };
	struct layer mnt = { .opt = "mountpoint", .path = cfg->mountpoint };
	bool has_upper = cfg->upperdir != NULL;
	int r;

	if (err && errlen > 0)
		err[0] = '\0';
	if (!cfg->mountpoint)
		return fail(err, errlen, -EINVAL, "missing MOUNTPOINT: " USAGE_LINE);
	if (n == 0)
		return fail(err, errlen, -EINVAL, "missing lowerdir: add -o lowerdir=DIR[:DIR...] (top-most first)");
	if (n > UM_MAX_LOWER)
		return fail(err, errlen, -EINVAL, "lowerdir: %zu directories given, at most %d are supported", n,
			    UM_MAX_LOWER);
	if (cfg->upperdir && !cfg->workdir)
		return fail(err, errlen, -EINVAL,
			    "upperdir given without workdir: add -o workdir=DIR on the same filesystem as upperdir");
	if (cfg->workdir && !cfg->upperdir)
		return fail(err, errlen, -EINVAL,
			    "workdir given without upperdir: add -o upperdir=DIR, or drop workdir for a read-only union");

	lower = calloc(n, sizeof(*lower));
	if (!lower)
		return fail(err, errlen, -ENOMEM, "out of memory while checking the layers");

	/* Existence first: a typo is the likeliest mistake and its message
	 * the most useful. */
	for (size_t i = 0; i < n; i++) {
		lower[i] = (struct layer){ .opt = "lowerdir", .path = cfg->lowerdirs[i] };
		r = check_dir("lowerdir", lower[i].path, &lower[i].st, err, errlen);
		if (r < 0)
			goto out;
	}
	if (has_upper) {
		r = check_dir("upperdir", upper.path, &upper.st, err, errlen);
		if (r < 0)
			goto out;
		r = check_dir("workdir", work.path, &work.st, err, errlen);
		if (r < 0)
			goto out;
	}
	r = check_dir("mountpoint", mnt.path, &mnt.st, err, errlen);
	if (r < 0)
		goto out;

	for (size_t i = 0; i < n; i++) {
		r = resolve(&lower[i], err, errlen);
		if (r < 0)
			goto out;
	}
	r = resolve(&mnt, err, errlen);
	if (r < 0)
		goto out;
	if (has_upper) {
		r = resolve(&upper, err, errlen);
		if (r < 0)
			goto out;
		r = resolve(&work, err, errlen);
		if (r < 0)
			goto out;
	}

	/* A layer listed twice adds nothing (its second copy is shadowed
	 * entirely by the first), so it can only be a slip of the keyboard;
	 * kernel overlayfs refuses it too ("conflicting lowerdir path").
	 * Nested lowerdirs (/a and /a/b) are allowed: each gives a different
	 * view, e.g. a subtree flattened onto the root. The kernel refuses
	 * those as well, to keep its lookups from looping; fd-relative
	 * lookups here cannot loop. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (same_dir(&lower[i], &lower[j])) {
				r = fail(err, errlen, -EINVAL,
					 "lowerdir: '%s' is listed twice (entries %zu and %zu); remove one",
					 lower[j].path, i + 1, j + 1);
				goto out;
			}

	if (has_upper) {
		for (size_t i = 0; i < n; i++) {
			r = check_lower_vs(&lower[i], &upper, err, errlen);
			if (r < 0)
				goto out;
			r = check_lower_vs(&lower[i], &work, err, errlen);
			if (r < 0)
				goto out;
		}
		r = check_upper_work(&upper, &work, err, errlen);
		if (r < 0)
			goto out;
		r = check_writable(&upper, err, errlen);
		if (r < 0)
			goto out;
		r = check_writable(&work, err, errlen);
		if (r < 0)
			goto out;
		r = check_mountpoint(&mnt, &upper, err, errlen);
		if (r < 0)
			goto out;
		r = check_mountpoint(&mnt, &work, err, errlen);
		if (r < 0)
			goto out;
	}
	/* Equal is fine (the branch fd was opened before mounting and sees
	 * the covered directory), but strictly inside a lowerdir the daemon's
	 * own lookups of the mountpoint's name would cross into the union
	 * itself: requests to ourselves, and a tree that contains itself. */
	for (size_t i = 0; i < n; i++)
		if (path_inside(mnt.real, lower[i].real)) {
			r = fail(err, errlen, -EINVAL,
				 "mountpoint: '%s' is inside lowerdir '%s', so the union would contain itself; mount outside it (the lowerdir itself may be the mountpoint)",
				 mnt.path, lower[i].path);
			goto out;
		}

	r = 0;

out:
	for (size_t i = 0; i < n; i++)
		free(lower[i].real);
	free(lower);
	free(upper.real);
	free(work.real);
	free(mnt.real);
	return r;
}

/* ---- usage and release -------------------------------------------------- */

void um_config_usage(FILE *out)
{
	static const char *const flags[][2] = {
		{ "-f", "stay in the foreground" },
		{ "-d", "debug output (implies -f)" },
		{ "-s", "single-threaded" },
		{ "-o OPTION[,OPTION...]", "mount options, repeatable; '\\,' is a comma in a value" },
		{ "-h, --help", "this text" },
		{ "-V, --version", "version" },
	};

	fprintf(out, "usage: " USAGE_LINE "\n"
		     "       unionmount -h | --help | -V | --version\n"
		     "\n"
		     "SOURCE is shown in /proc/mounts; MOUNTPOINT may be one of the lowerdirs.\n"
		     "\n");
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		fprintf(out, "  %-25s %s\n", flags[i][0], flags[i][1]);
	fprintf(out, "\nOptions:\n");
	for (size_t i = 0; i < N_OPT_DEFS; i++)
		fprintf(out, "  -o %-22s %s\n", opt_defs[i].syntax, opt_defs[i].help);
}

void um_config_release(struct um_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->source);
	free(cfg->mountpoint);
	free_strv(cfg->lowerdirs, cfg->n_lower);
	free(cfg->upperdir);
	free(cfg->workdir);
	fuse_opt_free_args(&cfg->fuse_args);
	*cfg = (struct um_config){ 0 };
}
