#include "nice.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* /proc/self/autogroup takes a nice value for the whole session, and only
 * from its leader's side does that touch no one else's weight. */
static int set_autogroup(int nice)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", nice);
	int fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);
	ssize_t w;
	int r = 0;

	if (fd < 0)
		return -errno;
	w = write(fd, buf, (size_t)len);
	if (w < 0)
		r = -errno;
	else if (w != len)
		r = -EIO; /* procfs takes the value whole or not at all */
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

/* A refusal of the default is no news (a daemon run by a user may not
 * lower its nice); of a value asked for, it is. */
static void refused(bool explicit, int nice, const char *what, int err)
{
	if (explicit)
		um_log(UM_LOG_WARN, "nice=%d not applied to the daemon's %s: %s", nice, what, strerror(err));
	else
		um_debug("nice=%d not applied to the daemon's %s: %s", nice, what, strerror(err));
}

void um_nice_setup(int nice, bool explicit)
{
	int r;

	if (nice == 0)
		return;
	/* Linux keeps nice per thread: set before the session's threads
	 * start, every one of them inherits it. */
	if (setpriority(PRIO_PROCESS, 0, nice) < 0)
		refused(explicit, nice, "threads", errno);
	/* A session the daemon shares (run with -f from a shell) holds other
	 * programs: leave its weight alone. */
	if (getsid(0) != getpid()) /* -1 (no session?) too */
		return;
	r = set_autogroup(nice);
	/* Without CAP_SYS_ADMIN the kernel takes one autogroup change per
	 * 100 ms, system-wide: another mount may just have made one. */
	if (r == -EAGAIN) {
		(void)nanosleep(&(struct timespec){ .tv_nsec = 110 * 1000 * 1000 }, NULL);
		r = set_autogroup(nice);
	}
	/* ENOENT: a kernel without autogroups, which then weighs threads. */
	if (r < 0 && r != -ENOENT)
		refused(explicit, nice, "session", -r);
}
