/* Fuzz target: the option parser (config.h). The input is split on NUL
 * bytes into strings, which are
 *   - the daemon's argv after argv[0], for um_config_parse();
 *   - one -o list each, for um_config_parse_opts() on one configuration,
 *     as unionctl calls it (the last value winning), up to a failure;
 *   - and, whole, a lowerdir list for um_config_split_lowerdir().
 * Beyond crashes, leaks and UB, every result is checked against what
 * config.h promises, and the lowerdirs parsed must come back unchanged
 * through the escapes (re-escaped, re-parsed). um_config_validate() is
 * not fuzzed: it looks at the filesystem. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define MAX_ARGS 64

/* One line naming the problem, as main.c prints it. */
static void check_err(int r, const char *err)
{
	FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
	FUZZ_CHECK(err[0] != '\0');
	FUZZ_CHECK(!strchr(err, '\n'));
}

static void check_lowerdirs(const struct um_config *cfg)
{
	FUZZ_CHECK(cfg->n_lower <= UM_MAX_LOWER);
	FUZZ_CHECK(cfg->n_lower == 0 || cfg->lowerdirs[cfg->n_lower] == NULL);
	for (size_t i = 0; i < cfg->n_lower; i++)
		FUZZ_CHECK(cfg->lowerdirs[i] && cfg->lowerdirs[i][0] != '\0');
}

/* Appends s to out with '\\', ':' and ',' escaped: the -o list's and the
 * lowerdir list's separators, and the escape itself. */
static char *escape_into(char *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == ':' || *s == ',')
			*out++ = '\\';
		*out++ = *s;
	}
	return out;
}

/* Escaped back into one -o list and parsed again, the layers, upperdir
 * and workdir come out as they went in. */
static void check_round_trip(const struct um_config *cfg)
{
	struct um_config again = { 0 };
	char err[256];
	size_t size = sizeof("lowerdir=,upperdir=,workdir=");
	char *opts, *p;
	int r;

	for (size_t i = 0; i < cfg->n_lower; i++)
		size += 2 * strlen(cfg->lowerdirs[i]) + 1;
	size += cfg->upperdir ? 2 * strlen(cfg->upperdir) : 0;
	size += cfg->workdir ? 2 * strlen(cfg->workdir) : 0;
	opts = malloc(size);
	FUZZ_CHECK(opts);

	p = stpcpy(opts, "lowerdir=");
	for (size_t i = 0; i < cfg->n_lower; i++) {
		if (i)
			*p++ = ':';
		p = escape_into(p, cfg->lowerdirs[i]);
	}
	if (cfg->upperdir) {
		p = stpcpy(p, ",upperdir=");
		p = escape_into(p, cfg->upperdir);
		p = stpcpy(p, ",workdir=");
		p = escape_into(p, cfg->workdir);
	}
	*p = '\0';

	r = um_config_parse_opts(&again, opts, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "re-parsing '%s': %s\n", opts, err);
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(again.n_lower == cfg->n_lower);
	for (size_t i = 0; i < cfg->n_lower; i++)
		FUZZ_CHECK(!strcmp(again.lowerdirs[i], cfg->lowerdirs[i]));
	FUZZ_CHECK(!again.upperdir == !cfg->upperdir);
	FUZZ_CHECK(!cfg->upperdir || !strcmp(again.upperdir, cfg->upperdir));
	FUZZ_CHECK(!cfg->workdir || !strcmp(again.workdir, cfg->workdir));
	um_config_release(&again);
	free(opts);
}

static void fuzz_parse(int argc, char **argv)
{
	struct um_config cfg = { 0 };
	char err[256];
	int r = um_config_parse(&cfg, argc, argv, err, sizeof(err));

	if (r < 0) {
		check_err(r, err);
		/* Released and zeroed on failure (config.c). */
		FUZZ_CHECK(!cfg.source && !cfg.mountpoint && !cfg.lowerdirs && !cfg.n_lower);
		FUZZ_CHECK(!cfg.upperdir && !cfg.workdir && !cfg.fuse_args.argv && !cfg.fuse_args.argc);
	} else if (!cfg.show_help && !cfg.show_version) {
		FUZZ_CHECK(r == 0);
		FUZZ_CHECK(cfg.mountpoint && cfg.mountpoint[0] != '\0');
		FUZZ_CHECK(!cfg.source || cfg.source[0] != '\0');
		FUZZ_CHECK(cfg.n_lower >= 1);
		check_lowerdirs(&cfg);
		FUZZ_CHECK(!cfg.upperdir == !cfg.workdir);
		FUZZ_CHECK(cfg.readonly || cfg.upperdir);
		FUZZ_CHECK(!cfg.debug || cfg.foreground);
		FUZZ_CHECK(cfg.cache_timeout >= 0);
		FUZZ_CHECK(cfg.fuse_args.argc >= 3 && !strcmp(cfg.fuse_args.argv[0], argv[0]));
		FUZZ_CHECK(!strcmp(cfg.fuse_args.argv[1], "-o"));
		check_round_trip(&cfg);
	}
	um_config_release(&cfg);
}

static void fuzz_parse_opts(int n, char **lists)
{
	struct um_config cfg = { 0 };
	char err[256];
	int r = 0;

	for (int i = 0; i < n && r == 0; i++) {
		r = um_config_parse_opts(&cfg, lists[i], err, sizeof(err));
		if (r < 0)
			check_err(r, err);
		check_lowerdirs(&cfg);
		FUZZ_CHECK(cfg.readonly || cfg.upperdir);
	}
	if (r == 0 && cfg.n_lower > 0 && !cfg.upperdir == !cfg.workdir)
		check_round_trip(&cfg);
	um_config_release(&cfg);
}

static void fuzz_split(const char *spec)
{
	char **dirs = NULL;
	size_t n = 0;

	if (um_config_split_lowerdir(spec, &dirs, &n) < 0)
		return;
	FUZZ_CHECK(n >= 1 && dirs[n] == NULL);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(dirs[i][0] != '\0');
		free(dirs[i]);
	}
	free(dirs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char argv0[] = "unionmount";
	char *argv[MAX_ARGS + 2];
	char *copy = malloc(size + 1);
	int argc = 0;

	FUZZ_CHECK(copy);
	memcpy(copy, data, size);
	copy[size] = '\0';

	argv[argc++] = argv0;
	for (char *p = copy; p <= copy + size && argc <= MAX_ARGS; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;

	fuzz_parse(argc, argv);
	fuzz_parse_opts(argc - 1, argv + 1);
	fuzz_split(copy);
	free(copy);
	return 0;
}
