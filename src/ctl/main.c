/* unionctl: the offline companion of unionmount(8). Argument parsing,
 * dispatch and exit codes; the commands live in diff.c and check.c.
 * Exit codes: 0 clean, 1 something found (see each command), 2 usage
 * error or a branch set that cannot be worked on. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "branches.h"
#include "check.h"
#include "config.h"
#include "diff.h"
#include "marker.h"

#define EXIT_USAGE 2
#define OPTS_LINE "-o lowerdir=DIR[:DIR...],upperdir=DIR,workdir=DIR"

enum command { CMD_DIFF, CMD_CHECK };

struct args {
	enum command cmd;
	struct um_config cfg; /* branch options from every -o */
	bool nul;             /* diff -z */
	bool quiet;           /* -q */
	bool repair;          /* check --repair */
	bool force_stack;     /* check --force-stack */
	bool gave_opts;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: unionctl diff [-z] [-q] " OPTS_LINE "\n"
		"       unionctl check [--repair [--force-stack]] [-q] " OPTS_LINE "\n"
		"       unionctl -h | --help | -V | --version\n"
		"\n"
		"Work on the branches of an unmounted union (workdir optional for diff).\n"
		"\n"
		"  diff             what upper changes relative to the lowers, one record per path:\n"
		"                   A added, M data modified, m metadata only, D deleted,\n"
		"                   R NEW<TAB>OLD directory moved; summary on stderr\n"
		"  check            find leftovers and damaged or stale markers in upper and workdir\n"
		"  -o OPTIONS       the union's mount options (repeatable; others are ignored)\n"
		"  -z               diff: end records with NUL, names as they are\n"
		"  -q               no summary on stderr\n"
		"  --repair         check: fix what is safe to fix, one line per fix\n"
		"  --force-stack    check --repair: repair by this lowerdir list even if the\n"
		"                   upper looks made with another one\n"
		"  -h, --help       this text\n"
		"  -V, --version    version\n"
		"\n"
		"Exit status: 0 clean, 1 something found or not judged, 2 usage or branch error.\n");
}

static int bad_usage(const char *fmt, const char *arg)
{
	fputs("unionctl: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("; see unionctl --help\n", stderr);
	return EXIT_USAGE;
}

/* 0 to go on, or the exit status to leave with (-1: exit 0 after help). */
static int parse(int argc, char **argv, struct args *a)
{
	char err[512];

	if (argc < 2)
		return bad_usage("%s", "missing command: diff or check");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return -1;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("unionctl %s (on-disk format %d)\n", UM_VERSION, UM_FORMAT_VERSION);
		return -1;
	}
	if (!strcmp(argv[1], "diff"))
		a->cmd = CMD_DIFF;
	else if (!strcmp(argv[1], "check"))
		a->cmd = CMD_CHECK;
	else
		return bad_usage("unknown command '%s': diff or check", argv[1]);

	for (int i = 2; i < argc; i++) {
		const char *s = argv[i];
		const char *opts = NULL;

		if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
			usage(stdout);
			return -1;
		} else if (!strcmp(s, "-o")) {
			if (++i == argc)
				return bad_usage("%s", "-o: missing option list, e.g. -o lowerdir=DIR,upperdir=DIR");
			opts = argv[i];
		} else if (!strncmp(s, "-o", 2)) {
			opts = s + 2;
		} else if (!strcmp(s, "-z") && a->cmd == CMD_DIFF) {
			a->nul = true;
		} else if (!strcmp(s, "-q")) {
			a->quiet = true;
		} else if (!strcmp(s, "--repair") && a->cmd == CMD_CHECK) {
			a->repair = true;
		} else if (!strcmp(s, "--force-stack") && a->cmd == CMD_CHECK) {
			a->force_stack = true;
		} else if (s[0] == '-') {
			return bad_usage(a->cmd == CMD_DIFF ? "diff: unknown option '%s'" : "check: unknown option '%s'", s);
		} else {
			return bad_usage("unexpected argument '%s': the branches go in -o", s);
		}
		if (opts) {
			if (um_config_parse_opts(&a->cfg, opts, err, sizeof(err)) < 0) {
				fprintf(stderr, "unionctl: %s\n", err);
				return EXIT_USAGE;
			}
			a->gave_opts = true;
		}
	}
	if (!a->gave_opts)
		return bad_usage("%s", "missing " OPTS_LINE);
	if (a->force_stack && !a->repair)
		return bad_usage("%s", "check: --force-stack only goes with --repair");
	return 0;
}

/* A union over many lowers, walked deep, holds a few fds per layer and
 * level: take what the hard limit allows, as the daemon does. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl); /* the soft limit may still do */
	}
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct um_ctl_set set;
	char err[1024];
	int status = parse(argc, argv, &a);
	int r;

	if (status != 0) {
		um_config_release(&a.cfg);
		return status < 0 ? 0 : status;
	}
	raise_fd_limit();
	r = um_ctl_set_open(&a.cfg, a.cmd == CMD_CHECK, a.repair ? UM_CTL_LOCK_EXCLUSIVE : UM_CTL_LOCK_SHARED, &set,
			    err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "unionctl: %s\n", err);
		um_config_release(&a.cfg);
		return EXIT_USAGE;
	}
	if (a.cmd == CMD_DIFF)
		status = um_ctl_diff(&set, &(struct um_ctl_diff_opts){ .nul = a.nul, .quiet = a.quiet });
	else
		status = um_ctl_check(&set, &(struct um_ctl_check_opts){
						      .repair = a.repair, .force_stack = a.force_stack, .quiet = a.quiet });
	um_ctl_set_close(&set);
	um_config_release(&a.cfg);
	return status;
}
