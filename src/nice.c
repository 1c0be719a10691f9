#include "nice.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

/* The inode number of the initial cgroup namespace (PROC_CGROUP_INIT_INO,
 * include/linux/proc_ns.h): a fixed value of the kernel's ABI. */
#define CGROUP_NS_INIT_INO 0xEFFFFFFBU

/* The first line of path into buf, without its newline ("" for an empty
 * file); -errno. */
static int read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	int r = 0;

	if (!f)
		return -errno;
	if (fgets(buf, (int)size, f))
		buf[strcspn(buf, "\n")] = '\0';
	else if (ferror(f))
		r = -EIO;
	else
		buf[0] = '\0';
	(void)fclose(f);
	return r;
}

/* Is word one of the sep-separated words of list? */
static bool has_word(const char *list, const char *word, char sep)
{
	size_t n = strlen(word);

	for (const char *p = list;; p++) {
		if (!strncmp(p, word, n) && (p[n] == sep || p[n] == '\0'))
			return true;
		p = strchr(p, sep);
		if (!p)
			return false;
	}
}

/* cgroup v2 (mounted on root): does the cpu controller hold path or one
 * of its ancestors below the root? A cgroup lists in cgroup.controllers
 * what its parent enabled for it. */
static bool v2_cpu_below_root(const char *root, const char *path)
{
	char dir[PATH_MAX], file[PATH_MAX + 32], line[512];
	size_t root_len = strlen(root);

	if (path[0] != '/' || snprintf(dir, sizeof(dir), "%s%s", root, path) >= (int)sizeof(dir))
		return true;
	while (strlen(dir) > root_len) {
		(void)snprintf(file, sizeof(file), "%s/cgroup.controllers", dir);
		if (read_line(file, line, sizeof(line)) < 0 || has_word(line, "cpu", ' '))
			return true;
		*strrchr(dir, '/') = '\0';
	}
	return false;
}

bool um_sched_root_cpu_cgroup(FILE *f, const char *v2_root)
{
	char line[PATH_MAX + 64], v2[PATH_MAX] = "", file[PATH_MAX];
	bool v1 = false, v1_root = false, have_v2 = false;

	while (fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *path = ctl ? strchr(ctl + 1, ':') : NULL;

		if (!path)
			continue;
		*ctl++ = '\0';
		*path++ = '\0';
		path[strcspn(path, "\n")] = '\0';
		if (!strcmp(line, "0") && !*ctl) {
			have_v2 = snprintf(v2, sizeof(v2), "%s", path) < (int)sizeof(v2);
		} else if (has_word(ctl, "cpu", ',')) {
			v1 = true;
			v1_root = !strcmp(path, "/");
		}
	}
	if (ferror(f))
		return false;
	if (v1)
		return v1_root;
	(void)snprintf(file, sizeof(file), "%s/cgroup.controllers", v2_root);
	if (!have_v2 || access(file, R_OK) < 0)
		return false;
	return !strcmp(v2, "/") || !v2_cpu_below_root(v2_root, v2);
}

/* Does another process share this session, and so its autogroup? Its
 * leader may have started one before it exec'd the daemon (a script's
 * `helper & exec unionmount -f`); the daemon starts none, so one look at
 * mount time holds. True when /proc cannot be read through. */
static bool session_shared(void)
{
	DIR *d = opendir("/proc");
	long self = (long)getpid();
	bool shared = false;
	struct dirent *e;

	if (!d)
		return true;
	for (errno = 0; !shared && (e = readdir(d)); errno = 0) {
		char path[64], line[1024], *end;
		long pid = strtol(e->d_name, &end, 10), sid;

		if (*end || pid <= 0 || pid == self)
			continue;
		(void)snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		/* Gone since the listing, or hidden (hidepid): not ours. */
		if (read_line(path, line, sizeof(line)) < 0)
			continue;
		/* pid (comm) state ppid pgrp session ...; comm may hold
		 * anything, ')' included: the fields start after the last. */
		end = strrchr(line, ')');
		shared = end && sscanf(end + 1, " %*c %*d %*d %ld", &sid) == 1 && sid == self;
	}
	if (errno)
		shared = true;
	(void)closedir(d);
	return shared;
}

bool um_sched_own_group(void)
{
	char on[8];
	struct stat st;
	FILE *f;
	bool r;

	/* A session's autogroup holds the daemon alone when it leads the
	 * session and nothing else is in it. */
	if (getsid(0) != getpid() || session_shared())
		return false;
	if (read_line("/proc/sys/kernel/sched_autogroup_enabled", on, sizeof(on)) < 0 || strcmp(on, "1"))
		return false;
	/* In another cgroup namespace, paths are the container's: its root
	 * may be anywhere below the real one. */
	if (stat("/proc/self/ns/cgroup", &st) < 0 || st.st_ino != CGROUP_NS_INIT_INO)
		return false;
	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return false;
	r = um_sched_root_cpu_cgroup(f, "/sys/fs/cgroup");
	(void)fclose(f);
	return r;
}
