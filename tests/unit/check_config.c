/* config.c: option grammar, escapes, and every refusal that must happen
 * before mounting, each on a real temporary layout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "config.h"
#include "fixture.h"

static struct um_fx fx;
static struct um_config cfg;
static char err[1024];

#define ARGV(...) ((char *[]){ "unionmount", __VA_ARGS__, NULL })
#define ARGC(v) ((int)(sizeof(v) / sizeof((v)[0])) - 1)
#define PARSE(...)                                                          \
	({                                                                  \
		char **_v = ARGV(__VA_ARGS__);                              \
		um_config_parse(&cfg, ARGC(ARGV(__VA_ARGS__)), _v, err, sizeof(err)); \
	})

static void setup(void)
{
	int r = um_fx_init(&fx);

	ck_assert_msg(r == 0, "fixture: %s", strerror(-r));
	cfg = (struct um_config){ 0 };
	err[0] = '\0';
}

static void teardown(void)
{
	um_config_release(&cfg);
	ck_assert_int_eq(um_fx_leaked_fds(&fx), 0);
	um_fx_release(&fx);
}

/* Check's fork mode skips the teardown above when a test fails; this one
 * runs in the parent and removes whatever was left. */
static TCase *tcase_new(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, um_fx_base_setup, um_fx_base_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	return tc;
}

/* Check has no skip result: the case passes, and says so on stderr (stdout
 * may be carrying TAP). */
#define SKIP_CASE(why)                                               \
	do {                                                         \
		fprintf(stderr, "SKIP %s: %s\n", __func__, why);     \
		return;                                              \
	} while (0)

/* The error is one line, starts with the option it is about and says what
 * went wrong. */
#define ck_assert_err(prefix, what)                                                           \
	do {                                                                                   \
		ck_assert_msg(!strncmp(err, prefix, strlen(prefix)), "err '%s' should start '%s'", err, \
			      prefix);                                                         \
		ck_assert_msg(strstr(err, what), "err '%s' should say '%s'", err, what);         \
		ck_assert_msg(!strchr(err, '\n'), "err '%s' is more than one line", err);       \
	} while (0)

/* fuse_args as one string, "-o" list included, for strstr checks. */
static const char *fuse_argv_str(void)
{
	static char buf[4096];
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < cfg.fuse_args.argc; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " " : "", cfg.fuse_args.argv[i]);
	return buf;
}

/* The -o list handed to fuse, wrapped in commas so ",name," matches whole
 * options only. */
static const char *fuse_opts(void)
{
	static char buf[4096];

	for (int i = 0; i + 1 < cfg.fuse_args.argc; i++)
		if (!strcmp(cfg.fuse_args.argv[i], "-o")) {
			snprintf(buf, sizeof(buf), ",%s,", cfg.fuse_args.argv[i + 1]);
			return buf;
		}
	return "";
}

static bool has_fuse_opt(const char *opt)
{
	char want[256];

	snprintf(want, sizeof(want), ",%s,", opt);
	return strstr(fuse_opts(), want) != NULL;
}

/* ---- um_config_split_lowerdir() ------------------------------------------ */

static char **dirs;
static size_t n_dirs;

static void free_dirs(void)
{
	for (size_t i = 0; i < n_dirs; i++)
		free(dirs[i]);
	free(dirs);
	dirs = NULL;
	n_dirs = 0;
}

static int split(const char *spec)
{
	free_dirs();
	return um_config_split_lowerdir(spec, &dirs, &n_dirs);
}

START_TEST(split_one)
{
	ck_assert_int_eq(split("/a"), 0);
	ck_assert_uint_eq(n_dirs, 1);
	ck_assert_str_eq(dirs[0], "/a");
	ck_assert_ptr_null(dirs[1]);
	free_dirs();
}
END_TEST

START_TEST(split_order_kept)
{
	ck_assert_int_eq(split("/top:/mid:rel/bottom"), 0);
	ck_assert_uint_eq(n_dirs, 3);
	ck_assert_str_eq(dirs[0], "/top");
	ck_assert_str_eq(dirs[1], "/mid");
	ck_assert_str_eq(dirs[2], "rel/bottom");
	free_dirs();
}
END_TEST

START_TEST(split_escaped_colon)
{
	ck_assert_int_eq(split("/a\\:b:/c"), 0);
	ck_assert_uint_eq(n_dirs, 2);
	ck_assert_str_eq(dirs[0], "/a:b");
	ck_assert_str_eq(dirs[1], "/c");
	free_dirs();
}
END_TEST

START_TEST(split_escaped_backslash)
{
	/* "\\:" is a backslash, then a separator */
	ck_assert_int_eq(split("/a\\\\:/b\\\\c"), 0);
	ck_assert_uint_eq(n_dirs, 2);
	ck_assert_str_eq(dirs[0], "/a\\");
	ck_assert_str_eq(dirs[1], "/b\\c");
	/* "\\\:" is a backslash, then a colon */
	ck_assert_int_eq(split("/a\\\\\\:b"), 0);
	ck_assert_uint_eq(n_dirs, 1);
	ck_assert_str_eq(dirs[0], "/a\\:b");
	/* any other escaped character stands for itself */
	ck_assert_int_eq(split("/a\\,b"), 0);
	ck_assert_str_eq(dirs[0], "/a,b");
	free_dirs();
}
END_TEST

START_TEST(split_refuses_empty)
{
	static const char *bad[] = { "", ":", ":/a", "/a:", "/a::/b", "/a\\" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dirs = (char **)&dirs; /* must be left alone on failure */
		ck_assert_msg(um_config_split_lowerdir(bad[i], &dirs, &n_dirs) == -EINVAL, "'%s' accepted", bad[i]);
		ck_assert_ptr_eq(dirs, (char **)&dirs);
		dirs = NULL;
	}
}
END_TEST

START_TEST(split_many)
{
	char spec[UM_MAX_LOWER * 8] = "";
	size_t o = 0;

	for (int i = 0; i < UM_MAX_LOWER; i++)
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, "%s/d%d", i ? ":" : "", i);
	ck_assert_int_eq(split(spec), 0);
	ck_assert_uint_eq(n_dirs, UM_MAX_LOWER);
	ck_assert_str_eq(dirs[0], "/d0");
	ck_assert_str_eq(dirs[UM_MAX_LOWER - 1], "/d499");
	free_dirs();
}
END_TEST

/* ---- um_config_parse() --------------------------------------------------- */

START_TEST(parse_minimal)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l1:/l2"), 0);
	ck_assert_ptr_null(cfg.source);
	ck_assert_str_eq(cfg.mountpoint, "/mnt");
	ck_assert_uint_eq(cfg.n_lower, 2);
	ck_assert_str_eq(cfg.lowerdirs[0], "/l1");
	ck_assert_str_eq(cfg.lowerdirs[1], "/l2");
	ck_assert_ptr_null(cfg.upperdir);
	ck_assert_ptr_null(cfg.workdir);
	ck_assert(cfg.readonly);
	ck_assert(!cfg.foreground && !cfg.debug && !cfg.single_thread);
	ck_assert(!cfg.show_help && !cfg.show_version);
	ck_assert(cfg.cache_timeout == 86400.0);
	ck_assert_str_eq(err, "");

	ck_assert_int_ge(cfg.fuse_args.argc, 3);
	ck_assert_str_eq(cfg.fuse_args.argv[0], "unionmount");
	ck_assert_str_eq(cfg.fuse_args.argv[1], "-o");
	ck_assert_ptr_null(cfg.fuse_args.argv[cfg.fuse_args.argc]);
	ck_assert(has_fuse_opt("fsname=unionmount"));
	ck_assert(has_fuse_opt("subtype=unionmount"));
	ck_assert(!has_fuse_opt("ro"));
	ck_assert(!strstr(fuse_argv_str(), " -d"));
	/* our own options stay ours */
	ck_assert(!strstr(fuse_opts(), "lowerdir"));
}
END_TEST

START_TEST(parse_source_is_fsname)
{
	ck_assert_int_eq(PARSE("my-src", "/mnt", "-o", "lowerdir=/l"), 0);
	ck_assert_str_eq(cfg.source, "my-src");
	ck_assert_str_eq(cfg.mountpoint, "/mnt");
	ck_assert(has_fuse_opt("fsname=my-src"));
	ck_assert(!has_fuse_opt("fsname=unionmount"));
}
END_TEST

START_TEST(parse_source_with_comma_escaped_for_fuse)
{
	ck_assert_int_eq(PARSE("a,b", "/mnt", "-o", "lowerdir=/l"), 0);
	ck_assert(has_fuse_opt("fsname=a\\,b"));
}
END_TEST

START_TEST(parse_upper_work)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,upperdir=/u,workdir=/w"), 0);
	ck_assert_str_eq(cfg.upperdir, "/u");
	ck_assert_str_eq(cfg.workdir, "/w");
	ck_assert(!cfg.readonly);
}
END_TEST

START_TEST(parse_ro_rw_last_wins)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,upperdir=/u,workdir=/w,ro"), 0);
	ck_assert(cfg.readonly);
	ck_assert(has_fuse_opt("ro"));
	um_config_release(&cfg);

	ck_assert_int_eq(PARSE("/mnt", "-o", "ro,lowerdir=/l,upperdir=/u,workdir=/w", "-o", "rw"), 0);
	ck_assert(!cfg.readonly);
	ck_assert(strstr(fuse_opts(), ",ro,rw,")); /* fuse applies them in order too */
	um_config_release(&cfg);

	/* rw cannot make an upper-less union writable */
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,rw"), 0);
	ck_assert(cfg.readonly);
}
END_TEST

START_TEST(parse_flags)
{
	ck_assert_int_eq(PARSE("-f", "/mnt", "-s", "-o", "lowerdir=/l"), 0);
	ck_assert(cfg.foreground && cfg.single_thread && !cfg.debug);
	ck_assert(!strstr(fuse_argv_str(), " -f") && !strstr(fuse_argv_str(), " -s"));
	um_config_release(&cfg);

	ck_assert_int_eq(PARSE("/mnt", "-d", "-o", "lowerdir=/l"), 0);
	ck_assert(cfg.debug && cfg.foreground);
	ck_assert_str_eq(cfg.fuse_args.argv[cfg.fuse_args.argc - 1], "-d");
}
END_TEST

START_TEST(parse_o_forms)
{
	/* -oLIST, repeated -o, options after the positionals (mount.fuse3's
	 * order), empty elements ignored */
	ck_assert_int_eq(PARSE("src", "-olowerdir=/l", "/mnt", "-o", "upperdir=/u,,", "-o", ",workdir=/w"), 0);
	ck_assert_str_eq(cfg.lowerdirs[0], "/l");
	ck_assert_str_eq(cfg.upperdir, "/u");
	ck_assert_str_eq(cfg.workdir, "/w");
	ck_assert_str_eq(cfg.mountpoint, "/mnt");
}
END_TEST

START_TEST(parse_double_dash)
{
	ck_assert_int_eq(PARSE("-o", "lowerdir=/l", "--", "-odd-mountpoint"), 0);
	ck_assert_str_eq(cfg.mountpoint, "-odd-mountpoint");
}
END_TEST

START_TEST(parse_escapes)
{
	/* "\," keeps a comma in a value; in lowerdir "\:" and "\\" work as in
	 * um_config_split_lowerdir() */
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/a\\,b:/c\\:d:/e\\\\,upperdir=/u\\,1,workdir=/w\\\\x"), 0);
	ck_assert_uint_eq(cfg.n_lower, 3);
	ck_assert_str_eq(cfg.lowerdirs[0], "/a,b");
	ck_assert_str_eq(cfg.lowerdirs[1], "/c:d");
	ck_assert_str_eq(cfg.lowerdirs[2], "/e\\");
	ck_assert_str_eq(cfg.upperdir, "/u,1");
	ck_assert_str_eq(cfg.workdir, "/w\\x");
	um_config_release(&cfg);

	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,fsname=a\\,b"), 0);
	ck_assert(has_fuse_opt("fsname=a\\,b"));
}
END_TEST

START_TEST(parse_lowerdir_64_and_max)
{
	static char spec[16 + UM_MAX_LOWER * 8];
	size_t o;

	for (int n = 64; n <= UM_MAX_LOWER; n += UM_MAX_LOWER - 64) {
		o = (size_t)snprintf(spec, sizeof(spec), "lowerdir=");
		for (int i = 0; i < n; i++)
			o += (size_t)snprintf(spec + o, sizeof(spec) - o, "%s/d%d", i ? ":" : "", i);
		ck_assert_int_eq(PARSE("/mnt", "-o", spec), 0);
		ck_assert_uint_eq(cfg.n_lower, (size_t)n);
		um_config_release(&cfg);
	}
	snprintf(spec + o, sizeof(spec) - o, ":/one-more");
	ck_assert_int_eq(PARSE("/mnt", "-o", spec), -EINVAL);
	ck_assert_err("lowerdir:", "at most 500");
}
END_TEST

START_TEST(parse_lowerdir_last_wins)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/a:/b", "-o", "lowerdir=/c"), 0);
	ck_assert_uint_eq(cfg.n_lower, 1);
	ck_assert_str_eq(cfg.lowerdirs[0], "/c");
}
END_TEST

START_TEST(parse_cache_timeout)
{
	static const struct {
		char *opt;
		double want;
	} ok[] = { { "cache_timeout=0", 0 }, { "cache_timeout=1.5", 1.5 }, { "cache_timeout=3600", 3600 } };
	static char *bad[] = { "cache_timeout=-1", "cache_timeout=abc", "cache_timeout=1s", "cache_timeout=inf",
				     "cache_timeout=nan", "cache_timeout=1e999" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l", "-o", ok[i].opt), 0);
		ck_assert(cfg.cache_timeout == ok[i].want);
		um_config_release(&cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(PARSE("/mnt", "-o", "lowerdir=/l", "-o", bad[i]) == -EINVAL, "%s accepted", bad[i]);
		ck_assert_err("cache_timeout:", "seconds");
	}
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,cache_timeout="), -EINVAL);
	ck_assert_err("cache_timeout:", "empty");
}
END_TEST

START_TEST(parse_fallthru)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l"), 0);
	ck_assert(cfg.fallthru); /* the default */
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,fallthru=off"), 0);
	ck_assert(!cfg.fallthru);
	ck_assert_msg(!has_fuse_opt("fallthru=off"), "ours, not fuse's: %s", fuse_opts());
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,fallthru=off,fallthru=on"), 0);
	ck_assert(cfg.fallthru); /* the last one wins, as with mount(8) */
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,fallthru=maybe"), -EINVAL);
	ck_assert_err("fallthru:", "maybe");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,fallthru"), -EINVAL);
	ck_assert_err("fallthru", "");
}
END_TEST

START_TEST(parse_metacopy)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l"), 0);
	ck_assert(cfg.metacopy); /* the default */
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,metacopy=off"), 0);
	ck_assert(!cfg.metacopy);
	ck_assert_msg(!has_fuse_opt("metacopy=off"), "ours, not fuse's: %s", fuse_opts());
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,metacopy=off,metacopy=on"), 0);
	ck_assert(cfg.metacopy);
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,metacopy=maybe"), -EINVAL);
	ck_assert_err("metacopy:", "maybe");
}
END_TEST

START_TEST(parse_readdirplus)
{
	static const struct {
		const char *opt;
		enum um_rdplus want;
	} ok[] = { { "readdirplus=adaptive", UM_RDPLUS_ADAPTIVE },
		   { "readdirplus=auto", UM_RDPLUS_AUTO },
		   { "readdirplus=always", UM_RDPLUS_ALWAYS },
		   { "readdirplus=never", UM_RDPLUS_NEVER },
		   { "readdirplus=never,readdirplus=always", UM_RDPLUS_ALWAYS } };
	char opts[128];

	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l"), 0);
	ck_assert_int_eq(cfg.readdirplus, UM_RDPLUS_DEFAULT);
	ck_assert_int_eq(UM_RDPLUS_DEFAULT, UM_RDPLUS_ADAPTIVE);
	um_config_release(&cfg);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(opts, sizeof(opts), "lowerdir=/l,%s", ok[i].opt);
		ck_assert_int_eq(PARSE("/mnt", "-o", opts), 0);
		ck_assert_msg(cfg.readdirplus == ok[i].want, "%s gave %d", ok[i].opt, cfg.readdirplus);
		ck_assert_msg(!strstr(fuse_opts(), "readdirplus"), "ours, not fuse's: %s", fuse_opts());
		um_config_release(&cfg);
	}
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,readdirplus=off"), -EINVAL);
	ck_assert_err("readdirplus:", "off");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,readdirplus"), -EINVAL);
	ck_assert_err("readdirplus", "");
}
END_TEST

START_TEST(parse_passthrough_mode)
{
	static const struct {
		const char *opt;
		enum um_passthrough want;
	} ok[] = { { "passthrough=auto", UM_PASSTHROUGH_AUTO },
		   { "passthrough=all", UM_PASSTHROUGH_ALL },
		   { "passthrough=off", UM_PASSTHROUGH_OFF },
		   { "passthrough=off,passthrough=all", UM_PASSTHROUGH_ALL } };
	char opts[128];

	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l"), 0);
	ck_assert_int_eq(cfg.passthrough, UM_PASSTHROUGH_AUTO);
	ck_assert(!cfg.passthrough_given);
	um_config_release(&cfg);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(opts, sizeof(opts), "lowerdir=/l,%s", ok[i].opt);
		ck_assert_int_eq(PARSE("/mnt", "-o", opts), 0);
		ck_assert_msg(cfg.passthrough == ok[i].want, "%s gave %d", ok[i].opt, cfg.passthrough);
		ck_assert(cfg.passthrough_given);
		ck_assert_msg(!strstr(fuse_opts(), "passthrough"), "ours, not fuse's: %s", fuse_opts());
		um_config_release(&cfg);
	}
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,passthrough=on"), -EINVAL);
	ck_assert_err("passthrough:", "on");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,passthrough"), -EINVAL);
	ck_assert_err("passthrough", "");
}
END_TEST

START_TEST(parse_uring)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l"), 0);
	ck_assert(cfg.uring);
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,uring=off"), 0);
	ck_assert(!cfg.uring);
	ck_assert_msg(!strstr(fuse_opts(), "uring"), "ours, not fuse's: %s", fuse_opts());
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,uring=off,uring=auto"), 0);
	ck_assert(cfg.uring);
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,uring=on"), -EINVAL);
	ck_assert_err("uring:", "on");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,uring"), -EINVAL);
	ck_assert_err("uring", "");
}
END_TEST

START_TEST(parse_uring_idle)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l"), 0);
	ck_assert(cfg.uring_idle);
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,uring_idle=off"), 0);
	ck_assert(!cfg.uring_idle);
	ck_assert(cfg.uring);
	ck_assert_msg(!strstr(fuse_opts(), "uring"), "ours, not fuse's: %s", fuse_opts());
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,uring_idle=off,uring_idle=auto"), 0);
	ck_assert(cfg.uring_idle);
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,uring_idle=on"), -EINVAL);
	ck_assert_err("uring_idle:", "on");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,uring_idle"), -EINVAL);
	ck_assert_err("uring_idle", "");
}
END_TEST

START_TEST(parse_max_dirfds)
{
	static const char *bad[] = { "max_dirfds=0", "max_dirfds=-1", "max_dirfds=12x", "max_dirfds=2147483648",
				     "max_dirfds=99999999999999999999999" };
	char opts[128];

	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l"), 0);
	ck_assert_int_eq(cfg.max_dirfds, 0); /* half the open-files limit, decided at mount */
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,max_dirfds=4096"), 0);
	ck_assert_int_eq(cfg.max_dirfds, 4096);
	ck_assert_msg(!strstr(fuse_opts(), "max_dirfds"), "ours, not fuse's: %s", fuse_opts());
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,max_dirfds=2147483647"), 0);
	ck_assert_int_eq(cfg.max_dirfds, 2147483647);
	um_config_release(&cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(opts, sizeof(opts), "lowerdir=/l,%s", bad[i]);
		ck_assert_msg(PARSE("/mnt", "-o", opts) == -EINVAL, "%s accepted", bad[i]);
		ck_assert_err("max_dirfds:", bad[i] + strlen("max_dirfds="));
	}
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,max_dirfds"), -EINVAL);
	ck_assert_err("max_dirfds", "");
}
END_TEST

START_TEST(parse_nice)
{
	static const char *bad[] = { "nice=-21", "nice=20", "nice=x", "nice=-1x", "nice=+", "nice=+5", "nice= 5", "nice=0x5",
				     "nice=99999999999999999999" };
	char opts[128];

	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l"), 0);
	ck_assert_int_eq(cfg.nice, -10);
	ck_assert(!cfg.nice_given); /* a refusal is then not worth a warning */
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,nice=0"), 0);
	ck_assert_int_eq(cfg.nice, 0);
	ck_assert(cfg.nice_given);
	ck_assert_msg(!strstr(fuse_opts(), "nice"), "ours, not fuse's: %s", fuse_opts());
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,nice=-20,nice=19"), 0);
	ck_assert_int_eq(cfg.nice, 19); /* the last one given, as for every option */
	um_config_release(&cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(opts, sizeof(opts), "lowerdir=/l,%s", bad[i]);
		ck_assert_msg(PARSE("/mnt", "-o", opts) == -EINVAL, "%s accepted", bad[i]);
		ck_assert_err("nice:", bad[i] + strlen("nice="));
	}
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,nice"), -EINVAL);
	ck_assert_err("nice", "");
}
END_TEST

START_TEST(parse_passthrough)
{
	static char *pass[] = { "allow_other", "default_permissions", "fsname=f", "subtype=s",
				      "auto_unmount", "max_read=131072", "suid", "nosuid", "dev", "nodev",
				      "exec", "noexec", "async", "sync", "dirsync", "atime", "noatime",
				      "context=system_u:object_r:tmp_t:s0", "fscontext=x", "defcontext=x",
				      "rootcontext=x" };

	for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
		ck_assert_msg(PARSE("/mnt", "-o", "lowerdir=/l", "-o", pass[i]) == 0, "%s: %s", pass[i], err);
		ck_assert_msg(has_fuse_opt(pass[i]), "%s not passed on: %s", pass[i], fuse_opts());
		um_config_release(&cfg);
	}
}
END_TEST

START_TEST(parse_dropped)
{
	static char *drop[] = { "diratime", "nodiratime", "relatime", "norelatime",
				      "strictatime", "nostrictatime", "lazytime", "nolazytime" };

	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		ck_assert_msg(PARSE("/mnt", "-o", "lowerdir=/l", "-o", drop[i]) == 0, "%s: %s", drop[i], err);
		ck_assert_msg(!strstr(fuse_opts(), drop[i]), "%s passed on: %s", drop[i], fuse_opts());
		um_config_release(&cfg);
	}
}
END_TEST

/* fstab lines carry mount(8)'s own options; mount.fuse3 strips them, but
 * a unit or script calling us directly must not fail on them either. */
START_TEST(parse_fstab_only)
{
	static char *drop[] = { "defaults", "auto", "noauto", "nofail", "_netdev", "comment=systemd.automount",
				"x-systemd.automount", "x-systemd.requires=a.mount", "x-initrd.mount", "x-gvfs-hide",
				"x-a=b\\,c" };

	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		ck_assert_msg(PARSE("/mnt", "-o", "lowerdir=/l", "-o", drop[i]) == 0, "%s: %s", drop[i], err);
		ck_assert_msg(!strstr(fuse_opts(), drop[i]), "%s passed on: %s", drop[i], fuse_opts());
		um_config_release(&cfg);
	}
	/* "x-" alone names nothing; the user* family implies mount flags
	 * only mount(8) adds, so it is not taken silently. */
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,x-"), -EINVAL);
	ck_assert_err("unknown option 'x-'", "--help");
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,users"), -EINVAL);
	ck_assert_err("unknown option 'users'", "--help");
}
END_TEST

/* userxattr is ours too (marker.h): set, never passed to fuse. */
START_TEST(parse_userxattr)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l"), 0);
	ck_assert(!cfg.userxattr);
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,userxattr"), 0);
	ck_assert(cfg.userxattr);
	ck_assert_msg(!strstr(fuse_opts(), "userxattr"), "passed on: %s", fuse_opts());
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,userxattr=1"), -EINVAL);
	um_config_release(&cfg);
}
END_TEST

/* An overlayfs line needs only its type changed: its options are taken
 * where they ask for what we do, refused by name where not. */
START_TEST(parse_overlay_options)
{
	static char *ok[] = { "redirect_dir=on", "redirect_dir=follow", "index=on", "index=off", "xino=on",
			      "xino=off", "xino=auto", "metacopy=on", "metacopy=off", "uuid=on", "uuid=off",
			      "uuid=null", "uuid=auto", "nfs_export=off" };
	static const char *bad[][2] = { { "redirect_dir=off", "redirect_dir=off: not supported" },
					{ "redirect_dir=nofollow", "redirect_dir=nofollow: not supported" },
					{ "index=maybe", "index=maybe: not supported" },
					{ "nfs_export=on", "nfs_export=on: not supported" },
					{ "volatile", "volatile: not supported" },
					{ "xino", "xino: needs a value" } };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(PARSE("/mnt", "-o", "lowerdir=/l", "-o", ok[i]) == 0, "%s: %s", ok[i], err);
		ck_assert_msg(!strstr(fuse_opts(), ok[i]), "%s passed on: %s", ok[i], fuse_opts());
		um_config_release(&cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(PARSE("/mnt", "-o", "lowerdir=/l", "-o", (char *)bad[i][0]) == -EINVAL, "%s accepted",
			      bad[i][0]);
		ck_assert_err(bad[i][1], "");
		um_config_release(&cfg);
	}
}
END_TEST

/* overlayfs's other way to list layers: one per option, literal. */
START_TEST(parse_lowerdir_add)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir+=/a:b,lowerdir+=/c", "-o", "lowerdir+=/d\\,e"), 0);
	ck_assert_uint_eq(cfg.n_lower, 3);
	ck_assert_str_eq(cfg.lowerdirs[0], "/a:b");
	ck_assert_str_eq(cfg.lowerdirs[1], "/c");
	ck_assert_str_eq(cfg.lowerdirs[2], "/d,e");
	ck_assert_ptr_null(cfg.lowerdirs[3]);
	um_config_release(&cfg);

	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/a,lowerdir+=/c"), -EINVAL);
	ck_assert_err("lowerdir+: cannot be mixed with lowerdir=", "one way or the other");
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir+=/a,lowerdir=/c"), -EINVAL);
	ck_assert_err("lowerdir: cannot be mixed with lowerdir+=", "one way or the other");
}
END_TEST

/* What we hand on must be what this libfuse accepts: fuse_session_new()
 * rejects unknown options (mounting is left to the integration tests). */
START_TEST(parse_fuse_accepts_args)
{
	static const struct fuse_lowlevel_ops ops;
	struct fuse_session *se;

	ck_assert_int_eq(PARSE("src,x", "/mnt", "-d", "-o",
			       "lowerdir=/l,allow_other,default_permissions,auto_unmount,max_read=65536,"
			       "ro,rw,suid,nosuid,dev,nodev,exec,noexec,async,sync,dirsync,atime,noatime,"
			       "context=a,fscontext=b,defcontext=c,rootcontext=d,"
			       "diratime,nodiratime,relatime,norelatime,strictatime,nostrictatime,lazytime,nolazytime"),
			 0);
	se = fuse_session_new(&cfg.fuse_args, &ops, sizeof(ops), NULL);
	ck_assert_msg(se != NULL, "fuse_session_new refused: %s", fuse_argv_str());
	fuse_session_destroy(se);
}
END_TEST

START_TEST(parse_root_defaults)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l"), 0);
	if (geteuid() == 0) {
		ck_assert(has_fuse_opt("allow_other"));
		ck_assert(has_fuse_opt("default_permissions"));
	} else {
		ck_assert(!has_fuse_opt("allow_other"));
		ck_assert(!has_fuse_opt("default_permissions"));
	}
	um_config_release(&cfg);

	/* given by the user: not added twice, and fsname/subtype not replaced */
	ck_assert_int_eq(PARSE("src", "/mnt", "-o",
			       "lowerdir=/l,allow_other,default_permissions,fsname=mine,subtype=sub"),
			 0);
	ck_assert_str_eq(fuse_opts(), ",allow_other,default_permissions,fsname=mine,subtype=sub,");
}
END_TEST

START_TEST(parse_help_version)
{
	/* nothing else needs to be valid */
	ck_assert_int_eq(PARSE("-o", "bogus", "--help"), 0);
	ck_assert(cfg.show_help);
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("-h"), 0);
	ck_assert(cfg.show_help && !cfg.show_version);
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("a", "b", "c", "-V"), 0);
	ck_assert(cfg.show_version && !cfg.show_help);
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("--version"), 0);
	ck_assert(cfg.show_version);
	um_config_release(&cfg);
	/* "-h" as the list of -o, or after "--", is no help request */
	ck_assert_int_eq(PARSE("/mnt", "-o", "-h"), -EINVAL);
	ck_assert(!cfg.show_help);
	ck_assert_int_eq(PARSE("-o", "lowerdir=/l", "--", "-h"), 0);
	ck_assert(!cfg.show_help);
	ck_assert_str_eq(cfg.mountpoint, "-h");
}
END_TEST

START_TEST(parse_unknown)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,bogus"), -EINVAL);
	ck_assert_str_eq(err, "unknown option 'bogus': see unionmount --help");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,bogus=1"), -EINVAL);
	ck_assert_str_eq(err, "unknown option 'bogus': see unionmount --help");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l", "-x"), -EINVAL);
	ck_assert_str_eq(err, "unknown option '-x': see unionmount --help");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l", "--frobnicate"), -EINVAL);
	ck_assert_err("unknown option '--frobnicate'", "--help");
	/* fuse knows it, the kernel refuses it for a non-block mount */
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,blksize=4096"), -EINVAL);
	ck_assert_err("blksize:", "remove it");
	/* not in our list, even if fuse or mount(8) knows it */
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,user=bob"), -EINVAL);
	ck_assert_err("unknown option 'user'", "--help");
}
END_TEST

START_TEST(parse_option_values)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,ro=1"), -EINVAL);
	ck_assert_err("ro:", "takes no value");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,fsname"), -EINVAL);
	ck_assert_err("fsname:", "needs a value");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,upperdir"), -EINVAL);
	ck_assert_err("upperdir:", "needs a value");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,upperdir=,workdir=/w"), -EINVAL);
	ck_assert_err("upperdir:", "empty");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,max_read=lots"), -EINVAL);
	ck_assert_err("max_read:", "number");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,max_read=0"), -EINVAL);
	ck_assert_err("max_read:", "number");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,fsname=x\\"), -EINVAL);
	ck_assert_err("fsname:", "lone '\\'");
	ck_assert_int_eq(PARSE("/mnt", "-o"), -EINVAL);
	ck_assert_err("-o:", "missing option list");
}
END_TEST

START_TEST(parse_lowerdir_errors)
{
	ck_assert_int_eq(PARSE("/mnt"), -EINVAL);
	ck_assert_err("missing lowerdir", "-o lowerdir=");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir="), -EINVAL);
	ck_assert_err("lowerdir:", "empty list");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/a::/b"), -EINVAL);
	ck_assert_err("lowerdir:", "entry 2 of '/a::/b' is empty");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/a:"), -EINVAL);
	ck_assert_err("lowerdir:", "entry 2");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/a\\"), -EINVAL);
	ck_assert_err("lowerdir:", "lone '\\'");
}
END_TEST

START_TEST(parse_positional_errors)
{
	ck_assert_int_eq(PARSE("-o", "lowerdir=/l"), -EINVAL);
	ck_assert_err("missing MOUNTPOINT", "unionmount [SOURCE] MOUNTPOINT -o lowerdir=");
	ck_assert_int_eq(PARSE("a", "b", "c", "-o", "lowerdir=/l"), -EINVAL);
	ck_assert_err("'c'", "one argument too many");
	ck_assert_int_eq(PARSE("", "-o", "lowerdir=/l"), -EINVAL);
	ck_assert_err("mountpoint:", "empty");
	ck_assert_int_eq(PARSE("", "/mnt", "-o", "lowerdir=/l"), -EINVAL);
	ck_assert_err("source:", "empty");
}
END_TEST

START_TEST(parse_upper_work_pairing)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,upperdir=/u"), -EINVAL);
	ck_assert_str_eq(err, "upperdir given without workdir: add -o workdir=DIR on the same filesystem as upperdir");
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/l,workdir=/w"), -EINVAL);
	ck_assert_err("workdir given without upperdir", "add -o upperdir=DIR");
}
END_TEST

START_TEST(parse_failure_leaves_cfg_released)
{
	/* everything parsed before the error is freed (ASan checks the rest) */
	ck_assert_int_eq(PARSE("src", "/mnt", "-d", "-o", "lowerdir=/a:/b,upperdir=/u,workdir=/w,fsname=x,bogus"),
			 -EINVAL);
	ck_assert_ptr_null(cfg.source);
	ck_assert_ptr_null(cfg.mountpoint);
	ck_assert_ptr_null(cfg.lowerdirs);
	ck_assert_ptr_null(cfg.upperdir);
	ck_assert_int_eq(cfg.fuse_args.argc, 0);
}
END_TEST

/* ---- um_config_validate() ------------------------------------------------ */

/* Parse "-o lowerdir=L1:L2..,upperdir=U,workdir=W MNT" with every name
 * relative to the fixture root (or absolute), then validate. */
static int layout(const char *lowers, const char *upper, const char *work, const char *mnt)
{
	char spec[16384];
	char *copy = strdup(lowers), *save = NULL;
	size_t o = (size_t)snprintf(spec, sizeof(spec), "lowerdir=");
	int r;

	ck_assert_ptr_nonnull(copy);
	for (char *l = strtok_r(copy, ":", &save); l; l = strtok_r(NULL, ":", &save))
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, "%s%s", o > 9 ? ":" : "", um_fx_path(&fx, l));
	free(copy);
	if (upper)
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, ",upperdir=%s", um_fx_path(&fx, upper));
	if (work)
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, ",workdir=%s", um_fx_path(&fx, work));
	ck_assert_uint_lt(o, sizeof(spec));

	um_config_release(&cfg);
	r = um_config_parse(&cfg, 4, ARGV((char *)um_fx_path(&fx, mnt), "-o", spec), err, sizeof(err));
	ck_assert_msg(r == 0, "parse: %s", err);
	return um_config_validate(&cfg, err, sizeof(err));
}

#define ck_assert_ok(expr) ck_assert_msg((expr) == 0, "refused: %s", err)

START_TEST(validate_ok)
{
	ck_assert_int_eq(um_fx_build(&fx, "l1/ l2/ u/ w/ m/"), 0);
	ck_assert_ok(layout("l1:l2", NULL, NULL, "m"));
	ck_assert_ok(layout("l1:l2", "u", "w", "m"));
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(validate_mountpoint_may_be_lowerdir)
{
	ck_assert_int_eq(um_fx_build(&fx, "l1/ l2/ u/ w/"), 0);
	ck_assert_ok(layout("l1:l2", "u", "w", "l1"));
	ck_assert_ok(layout("l1:l2", NULL, NULL, "l2"));
	/* strictly inside a lowerdir the union would contain itself */
	ck_assert_int_eq(um_fx_mkdir(&fx, "l2/m"), 0);
	ck_assert_int_eq(layout("l1:l2", "u", "w", "l2/m"), -EINVAL);
	ck_assert_err("mountpoint: '", "is inside lowerdir");
}
END_TEST

START_TEST(validate_many_lowerdirs)
{
	char lowers[16384];
	size_t o = 0;

	ck_assert_int_eq(um_fx_build(&fx, "m/"), 0);
	for (int i = 0; i < 70; i++) {
		char name[16];

		snprintf(name, sizeof(name), "l%d", i);
		ck_assert_int_eq(um_fx_mkdir(&fx, name), 0);
		o += (size_t)snprintf(lowers + o, sizeof(lowers) - o, "%s%s", i ? ":" : "", name);
	}
	ck_assert_ok(layout(lowers, NULL, NULL, "m"));
	ck_assert_uint_eq(cfg.n_lower, 70);
}
END_TEST

START_TEST(validate_missing_dirs)
{
	ck_assert_int_eq(um_fx_build(&fx, "l/ u/ w/ m/ file"), 0);

	ck_assert_int_eq(layout("l:nope", NULL, NULL, "m"), -ENOENT);
	ck_assert_err("lowerdir: '", "nope' does not exist; give an existing directory");
	ck_assert_int_eq(layout("file", NULL, NULL, "m"), -ENOTDIR);
	ck_assert_err("lowerdir: '", "file' is not a directory");
	ck_assert_int_eq(layout("l", "nope", "w", "m"), -ENOENT);
	ck_assert_err("upperdir: '", "does not exist");
	ck_assert_int_eq(layout("l", "u", "file", "m"), -ENOTDIR);
	ck_assert_err("workdir: '", "not a directory");
	ck_assert_int_eq(layout("l", "u", "w", "nope"), -ENOENT);
	ck_assert_err("mountpoint: '", "does not exist");
	ck_assert_int_eq(layout("l", "u", "w", "file"), -ENOTDIR);
	ck_assert_err("mountpoint: '", "not a directory");
	ck_assert_int_eq(layout("file/sub", NULL, NULL, "m"), -ENOTDIR);
	ck_assert_err("lowerdir: '", "non-directory in its path");
}
END_TEST

START_TEST(validate_upper_work_pairing)
{
	char *lowers[] = { (char *)um_fx_path(&fx, "l") };
	struct um_config c = { .mountpoint = (char *)um_fx_path(&fx, "m"),
			       .lowerdirs = lowers,
			       .n_lower = 1,
			       .upperdir = (char *)um_fx_path(&fx, "u") };

	ck_assert_int_eq(um_fx_build(&fx, "l/ u/ w/ m/"), 0);
	ck_assert_int_eq(um_config_validate(&c, err, sizeof(err)), -EINVAL);
	ck_assert_err("upperdir given without workdir", "add -o workdir=DIR");
	c.upperdir = NULL;
	c.workdir = (char *)um_fx_path(&fx, "w");
	ck_assert_int_eq(um_config_validate(&c, err, sizeof(err)), -EINVAL);
	ck_assert_err("workdir given without upperdir", "upperdir");
	c.workdir = NULL;
	c.n_lower = 0;
	ck_assert_int_eq(um_config_validate(&c, err, sizeof(err)), -EINVAL);
	ck_assert_err("missing lowerdir", "lowerdir=");
}
END_TEST

START_TEST(validate_workdir_other_fs)
{
	const char *other;
	int r;

	ck_assert_int_eq(um_fx_build(&fx, "l/ u/ m/"), 0);
	r = um_fx_other_fs(&fx, &other);
	if (r < 0)
		SKIP_CASE("no second filesystem to put workdir on");
	ck_assert_int_eq(layout("l", "u", other, "m"), -EXDEV);
	ck_assert_err("workdir: '", "different filesystem from upperdir");
}
END_TEST

START_TEST(validate_workdir_other_mount)
{
	int r;

	ck_assert_int_eq(um_fx_build(&fx, "l/ u/ m/ elsewhere/w/"), 0);
	r = um_fx_bind(&fx, "elsewhere", "bound");
	if (r == -EPERM)
		SKIP_CASE("bind mounts need root");
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(layout("l", "u", "bound/w", "m"), -EXDEV);
	ck_assert_err("workdir: '", "different mount");
}
END_TEST

START_TEST(validate_readonly_upper)
{
	int r;

	ck_assert_int_eq(um_fx_build(&fx, "l/ m/"), 0);
	r = um_fx_mount_tmpfs(&fx, "rofs");
	if (r == -EPERM)
		SKIP_CASE("mounting a read-only tmpfs needs root");
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(um_fx_build(&fx, "rofs/u/ rofs/w/"), 0);
	ck_assert_int_eq(um_fx_remount_ro(&fx, "rofs"), 0);
	ck_assert_int_eq(layout("l", "rofs/u", "rofs/w", "m"), -EROFS);
	ck_assert_err("upperdir: '", "read-only filesystem");
}
END_TEST

START_TEST(validate_unwritable_upper)
{
	ck_assert_int_eq(um_fx_build(&fx, "l/ u/ w/ m/"), 0);
	if (geteuid() == 0)
		SKIP_CASE("root writes through any mode");
	ck_assert_int_eq(chmod(um_fx_path(&fx, "u"), 0555), 0);
	ck_assert_int_eq(layout("l", "u", "w", "m"), -EACCES);
	ck_assert_err("upperdir: '", "not writable");
}
END_TEST

START_TEST(validate_upper_vs_lower)
{
	ck_assert_int_eq(um_fx_build(&fx, "l/ l/u/ l/w/ w/ u/ u/l/ m/ lnk->l"), 0);

	ck_assert_int_eq(layout("u:l", "l", "w", "m"), -EINVAL);
	ck_assert_err("upperdir: '", "is also a lowerdir");
	ck_assert_int_eq(layout("lnk", "l", "w", "m"), -EINVAL); /* the same, through a symlink */
	ck_assert_err("upperdir: '", "is also a lowerdir");
	ck_assert_int_eq(layout("l", "l/u", "w", "m"), -EINVAL);
	ck_assert_err("upperdir: '", "is inside lowerdir");
	ck_assert_int_eq(layout("lnk", "l/u", "w", "m"), -EINVAL);
	ck_assert_err("upperdir: '", "is inside lowerdir");
	ck_assert_int_eq(layout("u/l", "u", "w", "m"), -EINVAL);
	ck_assert_err("lowerdir: '", "is inside upperdir");
	/* "/" contains everything */
	ck_assert_int_eq(layout("/", "u", "w", "m"), -EINVAL);
	ck_assert_err("upperdir: '", "is inside lowerdir '/'");
}
END_TEST

START_TEST(validate_work_vs_lower)
{
	ck_assert_int_eq(um_fx_build(&fx, "l/ l/w/ u/ w/ w/l/ m/"), 0);

	ck_assert_int_eq(layout("l", "u", "l", "m"), -EINVAL);
	ck_assert_err("workdir: '", "is also a lowerdir");
	ck_assert_int_eq(layout("l", "u", "l/w", "m"), -EINVAL);
	ck_assert_err("workdir: '", "is inside lowerdir");
	ck_assert_int_eq(layout("w/l", "u", "w", "m"), -EINVAL);
	ck_assert_err("lowerdir: '", "is inside workdir");
}
END_TEST

START_TEST(validate_work_vs_upper)
{
	ck_assert_int_eq(um_fx_build(&fx, "l/ u/ u/w/ w/ w/u/ m/"), 0);

	ck_assert_int_eq(layout("l", "u", "u", "m"), -EINVAL);
	ck_assert_err("workdir: '", "is the upperdir itself");
	ck_assert_int_eq(layout("l", "u", "u/w", "m"), -EINVAL);
	ck_assert_err("workdir: '", "is inside upperdir");
	ck_assert_int_eq(layout("l", "w/u", "w", "m"), -EINVAL);
	ck_assert_err("upperdir: '", "is inside workdir");
}
END_TEST

START_TEST(validate_duplicate_lowerdir)
{
	ck_assert_int_eq(um_fx_build(&fx, "l1/ l2/ l1/sub/ m/ again->l1"), 0);

	ck_assert_int_eq(layout("l1:l2:l1", NULL, NULL, "m"), -EINVAL);
	ck_assert_err("lowerdir: '", "is listed twice (entries 1 and 3)");
	ck_assert_int_eq(layout("l1:again", NULL, NULL, "m"), -EINVAL);
	ck_assert_err("lowerdir: '", "is listed twice");
	/* nested lowerdirs are allowed: each gives a different view */
	ck_assert_ok(layout("l1:l1/sub", NULL, NULL, "m"));
	ck_assert_ok(layout("l1/sub:l1", NULL, NULL, "m"));
}
END_TEST

START_TEST(validate_mountpoint_vs_upper_work)
{
	ck_assert_int_eq(um_fx_build(&fx, "l/ u/ u/m/ w/ w/m/"), 0);

	ck_assert_int_eq(layout("l", "u", "w", "u"), -EINVAL);
	ck_assert_err("mountpoint: '", "is the upperdir");
	ck_assert_int_eq(layout("l", "u", "w", "u/m"), -EINVAL);
	ck_assert_err("mountpoint: '", "is inside upperdir");
	ck_assert_int_eq(layout("l", "u", "w", "w"), -EINVAL);
	ck_assert_err("mountpoint: '", "is the workdir");
	ck_assert_int_eq(layout("l", "u", "w", "w/m"), -EINVAL);
	ck_assert_err("mountpoint: '", "is inside workdir");
}
END_TEST

/* ---- um_config_usage() --------------------------------------------------- */

START_TEST(usage_lists_every_option)
{
	static const char *opts[] = { "lowerdir=", "upperdir=", "workdir=", "cache_timeout=", "max_dirfds=", "passthrough=", "ro", "rw",
				      "allow_other", "default_permissions", "fsname=", "subtype=", "auto_unmount",
				      "max_read=", "blksize=", "suid", "nosuid", "dev", "nodev", "exec", "noexec",
				      "async", "sync", "dirsync", "atime", "noatime", "context=", "fscontext=",
				      "defcontext=", "rootcontext=", "diratime", "nodiratime", "relatime",
				      "norelatime", "strictatime", "nostrictatime", "lazytime", "nolazytime",
				      "lowerdir+=", "redirect_dir=", "index=", "xino=", "metacopy=", "uuid=",
				      "nfs_export=", "userxattr", "volatile", "defaults", "auto", "noauto", "nofail",
				      "_netdev", "comment=", "x-NAME[=VALUE]" };
	static const char *flags[] = { "\n  -f ", "\n  -d ", "\n  -s ", "\n  -o OPTION", "\n  -h, --help ",
				       "\n  -V, --version " };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	um_config_usage(f);
	ck_assert_int_eq(fclose(f), 0);

	ck_assert(!strncmp(text, "usage: unionmount [SOURCE] MOUNTPOINT", 37));
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		ck_assert_msg(strstr(text, flags[i]), "no line for '%s'", flags[i] + 3);
	/* one line each, beginning "  -o NAME" */
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		char want[64];
		size_t n = strlen(opts[i]);

		snprintf(want, sizeof(want), "\n  -o %s%s", opts[i], opts[i][n - 1] == '=' ? "" : " ");
		ck_assert_msg(strstr(text, want), "no line for %s", opts[i]);
	}
	for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1)
		ck_assert_msg(nl - line <= 100, "line too long: %.*s", (int)(nl - line), line);
	free(text);
}
END_TEST

/* ---- um_config_release() ------------------------------------------------- */

START_TEST(release_zeroed_and_twice)
{
	um_config_release(&cfg); /* zeroed: nothing to free */
	um_config_release(NULL);
	ck_assert_int_eq(PARSE("src", "/mnt", "-d", "-o", "lowerdir=/a:/b,upperdir=/u,workdir=/w"), 0);
	um_config_release(&cfg);
	ck_assert_ptr_null(cfg.source);
	ck_assert_ptr_null(cfg.mountpoint);
	ck_assert_ptr_null(cfg.lowerdirs);
	ck_assert_uint_eq(cfg.n_lower, 0);
	ck_assert_ptr_null(cfg.upperdir);
	ck_assert_ptr_null(cfg.workdir);
	ck_assert_ptr_null(cfg.fuse_args.argv);
	ck_assert_int_eq(cfg.fuse_args.argc, 0);
	um_config_release(&cfg); /* and again */
}
END_TEST

START_TEST(release_after_failed_parse)
{
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/a,upperdir=/u"), -EINVAL);
	um_config_release(&cfg);
	ck_assert_int_eq(PARSE("/mnt", "-o", "lowerdir=/a,upperdir=/u,workdir=/w"), 0);
	um_config_release(&cfg);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_new("um_config_split_lowerdir()");
	tcase_add_test(tc, split_one);
	tcase_add_test(tc, split_order_kept);
	tcase_add_test(tc, split_escaped_colon);
	tcase_add_test(tc, split_escaped_backslash);
	tcase_add_test(tc, split_refuses_empty);
	tcase_add_test(tc, split_many);
	suite_add_tcase(s, tc);

	tc = tcase_new("um_config_parse()");
	tcase_add_test(tc, parse_minimal);
	tcase_add_test(tc, parse_source_is_fsname);
	tcase_add_test(tc, parse_source_with_comma_escaped_for_fuse);
	tcase_add_test(tc, parse_upper_work);
	tcase_add_test(tc, parse_ro_rw_last_wins);
	tcase_add_test(tc, parse_flags);
	tcase_add_test(tc, parse_o_forms);
	tcase_add_test(tc, parse_double_dash);
	tcase_add_test(tc, parse_escapes);
	tcase_add_test(tc, parse_lowerdir_64_and_max);
	tcase_add_test(tc, parse_lowerdir_last_wins);
	tcase_add_test(tc, parse_cache_timeout);
	tcase_add_test(tc, parse_fallthru);
	tcase_add_test(tc, parse_metacopy);
	tcase_add_test(tc, parse_readdirplus);
	tcase_add_test(tc, parse_passthrough_mode);
	tcase_add_test(tc, parse_uring);
	tcase_add_test(tc, parse_uring_idle);
	tcase_add_test(tc, parse_max_dirfds);
	tcase_add_test(tc, parse_nice);
	tcase_add_test(tc, parse_passthrough);
	tcase_add_test(tc, parse_dropped);
	tcase_add_test(tc, parse_fstab_only);
	tcase_add_test(tc, parse_overlay_options);
	tcase_add_test(tc, parse_userxattr);
	tcase_add_test(tc, parse_lowerdir_add);
	tcase_add_test(tc, parse_fuse_accepts_args);
	tcase_add_test(tc, parse_root_defaults);
	tcase_add_test(tc, parse_help_version);
	tcase_add_test(tc, parse_unknown);
	tcase_add_test(tc, parse_option_values);
	tcase_add_test(tc, parse_lowerdir_errors);
	tcase_add_test(tc, parse_positional_errors);
	tcase_add_test(tc, parse_upper_work_pairing);
	tcase_add_test(tc, parse_failure_leaves_cfg_released);
	suite_add_tcase(s, tc);

	tc = tcase_new("um_config_validate()");
	tcase_add_test(tc, validate_ok);
	tcase_add_test(tc, validate_mountpoint_may_be_lowerdir);
	tcase_add_test(tc, validate_many_lowerdirs);
	tcase_add_test(tc, validate_missing_dirs);
	tcase_add_test(tc, validate_upper_work_pairing);
	tcase_add_test(tc, validate_workdir_other_fs);
	tcase_add_test(tc, validate_workdir_other_mount);
	tcase_add_test(tc, validate_readonly_upper);
	tcase_add_test(tc, validate_unwritable_upper);
	tcase_add_test(tc, validate_upper_vs_lower);
	tcase_add_test(tc, validate_work_vs_lower);
	tcase_add_test(tc, validate_work_vs_upper);
	tcase_add_test(tc, validate_duplicate_lowerdir);
	tcase_add_test(tc, validate_mountpoint_vs_upper_work);
	suite_add_tcase(s, tc);

	tc = tcase_new("um_config_usage()");
	tcase_add_test(tc, usage_lists_every_option);
	suite_add_tcase(s, tc);

	tc = tcase_new("um_config_release()");
	tcase_add_test(tc, release_zeroed_and_twice);
	tcase_add_test(tc, release_after_failed_parse);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	um_fx_private_mounts();
	return um_fx_run(config_suite());
}
