/* The kernel's readahead for the union's FUSE mount (its backing device
 * info in sysfs), set while INIT is answered. */
#include "readahead.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "branch.h"
#include "log.h"

/* The device ("MAJOR:MINOR") of the FUSE mount on mountpoint, the
 * top-most one if several, from mountinfo: stat() of the mountpoint
 * would send a request to this daemon, which is busy answering INIT. */
static int fuse_mount_dev(const char *mountpoint, char *dev, size_t devlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char mdev[32], mnt[4096], fstype[256];
		const char *sep = strstr(line, " - ");

		/* id parent MAJ:MIN root mountpoint ... - fstype ... */
		if (!sep || sscanf(line, "%*u %*u %31s %*s %4095s", mdev, mnt) != 2 ||
		    sscanf(sep, " - %255s", fstype) != 1)
			continue;
		um_mountinfo_unescape(mnt);
		if (strcmp(mnt, mountpoint) || strncmp(fstype, "fuse", 4))
			continue;
		snprintf(dev, devlen, "%s", mdev);
		r = 0;
	}
	free(line);
	fclose(f);
	return r;
}

/* The kernel reads ahead at most the backing device's read_ahead_kb, 128
 * KiB for a FUSE mount, where overlayfs gets the lower disk's (often
 * MiBs): every 128 KiB of a sequential read is then a request. Ask for
 * as much as one request can carry; the kernel keeps the smaller of the
 * device's setting and INIT's answer, so the setting is raised before
 * the answer goes out. Root only (sysfs), and only a hint: failing
 * leaves the kernel's default. */
void um_readahead_raise(const char *mountpoint, struct fuse_conn_info *conn)
{
	char dev[32], path[96], val[16];
	unsigned kib = conn->max_write / 1024;
	int fd, n;

	if (kib <= conn->max_readahead / 1024 || fuse_mount_dev(mountpoint, dev, sizeof(dev)) < 0)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		um_debug("readahead stays %u KiB: %s: %m", conn->max_readahead / 1024, path);
		return;
	}
	n = snprintf(val, sizeof(val), "%u", kib);
	if (write(fd, val, (size_t)n) != n)
		um_debug("readahead stays %u KiB: %s: %m", conn->max_readahead / 1024, path);
	else
		conn->max_readahead = kib * 1024;
	(void)close(fd);
}
