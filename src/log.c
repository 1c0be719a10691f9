#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <fuse_log.h>

/* Written once by main() before the session threads exist, read-only after:
 * no lock needed. */
static struct {
	const char *mountpoint;
	bool debug;
	bool syslog;
} log_state;

void um_log_setup(const char *mountpoint, bool debug)
{
	log_state.mountpoint = mountpoint;
	log_state.debug = debug;
}

void um_log_to_syslog(void)
{
	openlog("unionmount", LOG_PID, LOG_DAEMON);
	log_state.syslog = true;
}

bool um_log_debug_enabled(void)
{
	return log_state.debug;
}

static void emit(enum um_log_level level, const char *msg)
{
	static const int prio[] = {
		[UM_LOG_ERR] = LOG_ERR,
		[UM_LOG_WARN] = LOG_WARNING,
		[UM_LOG_INFO] = LOG_INFO,
		[UM_LOG_DEBUG] = LOG_DEBUG,
	};

	if (log_state.syslog)
		syslog(prio[level], "%s: %s", log_state.mountpoint ? log_state.mountpoint : "-", msg);
	else
		fprintf(stderr, "unionmount: %s%s%s\n", log_state.mountpoint ? log_state.mountpoint : "",
			log_state.mountpoint ? ": " : "", msg);
}

/* Damage is reported by every request that meets it, and one failing
 * system call may be several requests (the kernel looks a name up
 * again): the same line within REPEAT_WINDOW seconds of its first
 * printing is counted instead, and the count printed before the next
 * other line. Guarded by lock: last, level, count, since. Debug lines
 * (-d) are all printed. */
#define REPEAT_WINDOW 10
static struct {
	pthread_mutex_t lock;
	char last[1024];
	enum um_log_level level;
	unsigned long count;
	time_t since;
} repeat = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void flush_repeats_locked(void)
{
	char note[64];

	if (repeat.count) {
		snprintf(note, sizeof(note), "the line before repeated %lu more times", repeat.count);
		emit(repeat.level, note);
	}
	repeat.count = 0;
}

void um_log(enum um_log_level level, const char *fmt, ...)
{
	int saved = errno; /* keep %m meaningful for the caller's format */
	char msg[1024];
	struct timespec now = { 0 };
	va_list ap;

	/* Debug lines are for -d alone, whoever calls (libfuse's too). */
	if (level == UM_LOG_DEBUG && !log_state.debug)
		return;
	va_start(ap, fmt);
	errno = saved;
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (level == UM_LOG_DEBUG) {
		emit(level, msg);
		errno = saved;
		return;
	}
	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&repeat.lock);
	if (!strcmp(msg, repeat.last) && now.tv_sec - repeat.since < REPEAT_WINDOW) {
		repeat.count++;
	} else {
		flush_repeats_locked();
		emit(level, msg);
		memcpy(repeat.last, msg, sizeof(msg));
		repeat.level = level;
		repeat.since = now.tv_sec;
	}
	pthread_mutex_unlock(&repeat.lock);
	errno = saved;
}

/* libfuse's own messages (mount failures, -d's request trace) would go to
 * stderr, which is /dev/null once daemonized: give them our prefix and
 * destination like everything else. */
static void fuse_log_cb(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t len;
	enum um_log_level ours = level <= FUSE_LOG_ERR		? UM_LOG_ERR
				 : level == FUSE_LOG_WARNING	? UM_LOG_WARN
				 : level < FUSE_LOG_DEBUG	? UM_LOG_INFO
								: UM_LOG_DEBUG;

	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	if (len > 0)
		um_log(ours, "%s", msg);
}

void um_log_capture_fuse(void)
{
	fuse_set_log_func(fuse_log_cb);
}
