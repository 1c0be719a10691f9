#include "copyup/workdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "sys.h"

/* Is everything in the workdir ours? Returns 0, or -ENOTEMPTY with the
 * first stranger named in err. */
static int check_only_ours(int fd, const char *path, char *err, size_t errlen)
{
	_cleanup_close_ int dfd = um_sys_openat(fd, ".", O_RDONLY | O_DIRECTORY);
	char buf[8192];
	int n;

	if (dfd < 0) {
		snprintf(err, errlen, "workdir: cannot list '%s': %s", path, strerror(-dfd));
		return dfd;
	}
	while ((n = um_sys_getdents(dfd, buf, sizeof(buf))) > 0) {
		for (int off = 0; off < n;) {
			struct dirent64 *e = (struct dirent64 *)(buf + off);

			off += e->d_reclen;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
			    !strcmp(e->d_name, UM_WORKDIR_NAME))
				continue;
			snprintf(err, errlen,
				 "workdir: '%s' holds '%s', which is not ours; give an empty directory on the upperdir's filesystem",
				 path, e->d_name);
			return -ENOTEMPTY;
		}
	}
	if (n < 0)
		snprintf(err, errlen, "workdir: cannot list '%s': %s", path, strerror(-n));
	return n;
}

int um_workdir_open(const char *path, dev_t upper_dev, int *ret_fd, char *err, size_t errlen)
{
	_cleanup_close_ int fd = um_sys_open_path(path, O_RDONLY | O_DIRECTORY);
	struct stat st;
	int r, wfd;

	if (fd < 0) {
		snprintf(err, errlen, "workdir: cannot open '%s': %s; give an existing directory", path, strerror(-fd));
		return fd;
	}
	r = um_sys_fstat(fd, &st);
	if (r == 0 && st.st_dev != upper_dev) {
		snprintf(err, errlen, "workdir: '%s' is not on the upperdir's filesystem; give a directory there", path);
		return -EXDEV;
	}
	if (r < 0) {
		snprintf(err, errlen, "workdir: cannot stat '%s': %s", path, strerror(-r));
		return r;
	}
	r = check_only_ours(fd, path, err, errlen);
	if (r < 0)
		return r;
	r = um_sys_mkdirat(fd, UM_WORKDIR_NAME, 0700);
	if (r < 0 && r != -EEXIST) {
		snprintf(err, errlen, "workdir: cannot create '%s/%s': %s", path, UM_WORKDIR_NAME, strerror(-r));
		return r;
	}
	wfd = um_sys_open_dir(fd, UM_WORKDIR_NAME);
	if (wfd < 0) {
		snprintf(err, errlen, "workdir: cannot open '%s/%s': %s", path, UM_WORKDIR_NAME, strerror(-wfd));
		return wfd;
	}
	*ret_fd = wfd;
	return 0;
}
