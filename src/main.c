/* argv -> configuration -> branches -> mount -> session loop -> teardown.
 * The only place that exits. Exit status (man page, EXIT STATUS):
 *   0  unmounted cleanly (or --help / --version)
 *   1  options or branch layout refused: nothing was mounted, and the
 *      message names the option to fix
 *   2  the mount itself failed (no /dev/fuse, mount(2) refused, ...), or
 *      the session ended with an error
 * In the background the caller sees the parent's status: 0 once mounted. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "config.h"
#include "dirfds.h"
#include "fs.h"
#include "devio.h"
#include "inode.h"
#include "log.h"
#include "nice.h"
#include "ops.h"
#include "sys.h"
#include "uring.h"

#define EXIT_USAGE 1
#define EXIT_MOUNT 2

/* Directories the kernel knows about each hold an fd per part until
 * dirfds.c closes unused ones past half the limit, and it cannot on every
 * layer: allow as many fds as the system does (root may raise the hard
 * limit up to fs.nr_open), else as many as the hard limit. */
static void raise_nofile(void)
{
	struct rlimit rl;
	unsigned long nr_open = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");

	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (nr_open) {
		rl.rlim_cur = rl.rlim_max = nr_open;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			return;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		um_log(UM_LOG_WARN, "cannot raise the open file limit, ignoring: %m");
}

static int absolute_mountpoint(struct um_config *cfg, char *err, size_t errlen)
{
	char *abs = realpath(cfg->mountpoint, NULL);
	int e = errno;

	if (!abs) {
		snprintf(err, errlen, "mountpoint: cannot resolve '%s': %s", cfg->mountpoint, strerror(e));
		return -e;
	}
	free(cfg->mountpoint);
	cfg->mountpoint = abs;
	return 0;
}

/* SIGUSR1 logs a memory report (man page, SIGNALS): the inodes the
 * kernel makes us keep, and what malloc holds for them. The signal is
 * blocked in every thread and taken by sigwait() in one thread of its
 * own, so no request's syscall is ever interrupted by it and the report
 * may call anything. */
static atomic_bool stats_stop;

static void *stats_thread(void *arg)
{
	const sigset_t *set = arg;

	for (;;) {
		struct um_inode_stats is;
		struct mallinfo2 mi;
		struct rusage ru;
		int sig;

		if (sigwait(set, &sig) != 0 || atomic_load(&stats_stop))
			return NULL;
		um_inode_get_stats(&is);
		mi = mallinfo2();
		if (getrusage(RUSAGE_SELF, &ru) < 0)
			ru.ru_maxrss = 0;
		um_log(UM_LOG_INFO,
		       "memory: %llu inodes (peak %llu, %llu freed, %llu trims in %llu ms); malloc: %zu KiB in use, %zu KiB free, "
		       "%zu KiB mmapped; peak RSS %ld KiB",
		       (unsigned long long)is.live, (unsigned long long)is.peak, (unsigned long long)is.freed,
		       (unsigned long long)is.trims, (unsigned long long)is.trim_ms, mi.uordblks / 1024, mi.fordblks / 1024, mi.hblkhd / 1024,
		       ru.ru_maxrss);
	}
}

/* First thing in main(), so that a SIGUSR1 never kills the daemon
 * (its default action), even before the report thread exists, and so
 * that every thread inherits the mask. */
static void stats_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGUSR1);
	if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0)
		abort(); /* only fails on a bad argument */
}

/* After fuse_daemonize(), whose fork would leave the thread behind.
 * Without it the daemon runs on without the report. */
static bool stats_start(pthread_t *ret, sigset_t *set)
{
	int r = pthread_create(ret, NULL, stats_thread, set);

	if (r != 0)
		um_log(UM_LOG_WARN, "no memory report on SIGUSR1: %s", strerror(r));
	return r == 0;
}

static void stats_stop_thread(pthread_t t)
{
	atomic_store(&stats_stop, true);
	if (pthread_kill(t, SIGUSR1) == 0)
		(void)pthread_join(t, NULL);
}

static int run_session(struct fuse_session *se, const struct um_config *cfg)
{
	struct fuse_loop_config *lc;
	int r;

	if (cfg->single_thread)
		return fuse_session_loop(se);
	lc = fuse_loop_cfg_create();
	if (!lc)
		return -ENOMEM;
	/* Requests block in syscalls on the branches: keep threads around
	 * rather than recreate them under load. */
	fuse_loop_cfg_set_max_threads(lc, UM_THREADS);
	fuse_loop_cfg_set_idle_threads(lc, 4);
	r = fuse_session_loop_mt(se, lc);
	fuse_loop_cfg_destroy(lc);
	return r;
}

int main(int argc, char **argv)
{
	struct um_config cfg = { 0 };
	struct fuse_session *se = NULL;
	struct um_fs *fs = NULL;
	pthread_t stats;
	sigset_t stats_set;
	bool stats_running = false;
	char err[1024] = "";
	int r, status = EXIT_USAGE;

	stats_block(&stats_set);
	r = um_config_parse(&cfg, argc, argv, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "unionmount: %s\n", err);
		goto out;
	}
	if (cfg.show_help) {
		um_config_usage(stdout);
		status = 0;
		goto out;
	}
	if (cfg.show_version) {
		printf("unionmount %s (libfuse %s)\n", UM_VERSION, fuse_pkgversion());
		status = 0;
		goto out;
	}
	r = um_config_validate(&cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "unionmount: %s\n", err);
		goto out;
	}
	/* libfuse unmounts by this path on a signal, after fuse_daemonize()
	 * moved to "/" (and um_sys_pin_proc() to /proc): make it absolute,
	 * as it is in /proc/mounts and as logs should name it. */
	r = absolute_mountpoint(&cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "unionmount: %s\n", err);
		goto out;
	}
	um_log_setup(cfg.mountpoint, cfg.debug);
	um_log_capture_fuse();
	raise_nofile();
	/* Modes reach us with the caller's umask applied by the kernel; ours
	 * must not apply a second time. */
	(void)umask(0);

	r = um_fs_new(&cfg, &fs, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "unionmount: %s\n", err);
		goto out;
	}
	status = EXIT_MOUNT;
	/* A union without upperdir, or -o ro: let the kernel refuse changes
	 * before they reach us, and report the mount read-only. */
	if (fs->readonly && fuse_opt_add_arg(&cfg.fuse_args, "-oro") < 0)
		goto out;

	se = fuse_session_new(&cfg.fuse_args, &um_ops, sizeof(um_ops), fs);
	if (!se)
		goto out; /* libfuse printed why */
	fs->se = se;
	if (fuse_set_signal_handlers(se) < 0)
		goto destroy;
	if (fuse_session_mount(se, cfg.mountpoint) < 0)
		goto remove_handlers;
	r = um_devio_install(se, fs);
	if (r < 0)
		um_log(UM_LOG_WARN, "cannot hook the session's I/O (%s): the kernel keeps clearing setuid/setgid on writes itself, and no open file is passed through", strerror(-r));
	if (fuse_daemonize(cfg.foreground) < 0)
		goto unmount;
	if (!cfg.foreground)
		um_log_to_syslog();
	r = um_sys_pin_proc();
	if (r < 0) {
		um_log(UM_LOG_ERR, "cannot make /proc/self/fd the working directory: %s; unmounting", strerror(-r));
		goto unmount;
	}
	/* After fuse_daemonize(), whose setsid() made the session ours, and
	 * before any thread starts, so that all inherit it. */
	um_nice_setup(cfg.nice, cfg.nice_given);
	fs->uring_idle = cfg.uring_idle && um_sched_own_group();
	if (cfg.uring_idle)
		um_debug("uring_idle=auto: io_uring workers %s",
			 fs->uring_idle ? "SCHED_IDLE"
					: "in the normal class: the daemon shares its scheduling group, or that is not known");
	um_log(UM_LOG_INFO, "mounted: %zu lowerdir%s%s%s", cfg.n_lower, cfg.n_lower == 1 ? "" : "s",
	       cfg.upperdir ? ", upperdir " : "", cfg.upperdir ? cfg.upperdir : "");

	stats_running = stats_start(&stats, &stats_set);
	/* Also after fuse_daemonize(): its fork would lose the thread. */
	um_dirfds_start(fs, cfg.max_dirfds);
	r = run_session(se, &cfg);
	/* The kernel ends its commands at unmount; on a signal, stop them. */
	um_uring_stop();
	um_dirfds_stop();
	if (stats_running)
		stats_stop_thread(stats);
	/* libfuse returns the signal number when one ended the loop. */
	if (r < 0)
		um_log(UM_LOG_ERR, "session ended with an error (%s); unmounting", strerror(-r));
	else if (r > 0)
		um_log(UM_LOG_INFO, "unmounting: %s", strsignal(r));
	else
		um_log(UM_LOG_INFO, "unmounted");
	status = r < 0 ? EXIT_MOUNT : 0;

unmount:
	fuse_session_unmount(se);
remove_handlers:
	fuse_remove_signal_handlers(se);
destroy:
	fs->se = NULL;
	fuse_session_destroy(se);
out:
	um_fs_free(fs);
	um_config_release(&cfg);
	return status;
}
