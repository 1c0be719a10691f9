/* Command line and -o option parsing, and every check that must fail
 * before mounting. Keeps no fds: branches are opened by branch.c after
 * the configuration has been validated.
 *
 * Grammar (see man/unionmount.8):
 *   unionmount [SOURCE] MOUNTPOINT [-f] [-d] [-s] [-o OPTS]... | -h | --help | -V | --version
 *   OPTS: lowerdir=L1:L2:...   top-most first, "\:" is a literal colon,
 *                              "\\" a literal backslash (required, >= 1 entry)
 *         upperdir=DIR, workdir=DIR   both or neither; neither = read-only union
 *         cache_timeout=SECONDS       kernel entry/attr cache lifetime (default 86400)
 *         ro, rw                      read-only mount even with an upperdir / the default
 *         fallthru=on|off             write fallthrus on first listing (default on)
 *         userxattr                   markers in user.* xattrs (marker.h)
 *         allow_other, default_permissions, fsname=, subtype=, and the
 *         other mount options fuse and mount(8) accept: passed through
 *         anything else                an error naming the option
 *   SOURCE, when given, becomes fsname (shown in /proc/mounts).
 */
#ifndef UM_CONFIG_H
#define UM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <fuse_lowlevel.h>

#include "unionmount.h"

/* At least 64 lower branches; the layer number must fit st_ino encoding (ino.h). */
#define UM_MAX_LOWER 500

/* -o nice=: measured in bench/README.md, "The daemon's scheduling weight". */
#define UM_DEFAULT_NICE (-10)

struct um_config {
	char *source;             /* NULL when not given */
	char *mountpoint;         /* as given on the command line */
	char **lowerdirs;         /* unescaped, top-most first */
	size_t n_lower;
	char *upperdir;           /* NULL: read-only union */
	char *workdir;            /* NULL iff upperdir is NULL */
	double cache_timeout;     /* seconds */
	bool readonly;            /* -o ro, or no upperdir */
	bool fallthru;            /* fallthru=on (the default) */
	bool metacopy;            /* metacopy=on (the default): copyup.h */
	bool userxattr;           /* -o userxattr: markers in user.* (marker.h) */
	enum um_rdplus readdirplus;
	enum um_passthrough passthrough; /* -o passthrough= (default auto) */
	bool passthrough_given;          /* ... named on the command line */
	bool uring;               /* -o uring=auto (the default): uring.h */
	bool uring_idle;          /* -o uring_idle=auto (the default): nice.h */
	unsigned long max_dirfds; /* -o max_dirfds; 0: half the open-files limit (dirfds.h) */
	int nice;                 /* -o nice= (default UM_DEFAULT_NICE): nice.h */
	bool nice_given;          /* ... named on the command line */
	bool foreground;          /* -f, or -d */
	bool debug;               /* -d */
	bool single_thread;       /* -s */
	bool show_help;           /* -h / --help: print um_config_usage() and exit 0 */
	bool show_version;        /* -V / --version */
	/* argv for fuse_session_new(): argv[0], then "-o" with the pass-through
	 * options plus fsname/subtype, and allow_other,default_permissions when
	 * running as root (euid 0); "-d" when debugging. */
	struct fuse_args fuse_args;
};

/*
 * Parse argv into *cfg (which the caller zero-initialises). Returns 0, or
 * -EINVAL with one line in err (no trailing newline) naming the option and
 * the fix, e.g. "unknown option 'bogus': see unionmount --help". A help or
 * version request returns 0 with show_help/show_version set; nothing else
 * needs to be valid then.
 */
int um_config_parse(struct um_config *cfg, int argc, char **argv, char *err, size_t errlen);

/*
 * Check the layout against the filesystem, before anything is mounted:
 * every directory exists and is a directory; mountpoint exists; upperdir
 * and workdir given together; workdir on the same filesystem as upperdir;
 * upperdir writable (not on a read-only filesystem); no lowerdir equal to,
 * inside, or containing upperdir or workdir; workdir not inside upperdir
 * nor the reverse, and not equal. The mountpoint may equal a lowerdir.
 * Returns 0 or a negative errno with one line in err.
 */
int um_config_validate(const struct um_config *cfg, char *err, size_t errlen);

/*
 * Parse one -o list ("lowerdir=...,upperdir=...,workdir=...", same grammar
 * and escapes as the daemon's -o) into *cfg, for tools that work on a
 * branch set without mounting it (unionctl). Callable repeatedly, the last
 * value winning; the mount options the daemon passes on to fuse are
 * accepted and dropped, so an fstab line can be pasted as is. Sets
 * cfg->readonly as um_config_parse() does; checks nothing against the
 * filesystem and nothing about which options are missing. Returns 0 or
 * -EINVAL with one line in err; on failure *cfg is left as it was parsed
 * so far (the caller releases it either way).
 */
int um_config_parse_opts(struct um_config *cfg, const char *opts, char *err, size_t errlen);

/* Split "a:b\:c" into {"a", "b:c"}. Exposed for unit tests. */
int um_config_split_lowerdir(const char *spec, char ***ret_dirs, size_t *ret_n);

/* The -h text: every option, one line each. */
void um_config_usage(FILE *out);

void um_config_release(struct um_config *cfg);

#endif
