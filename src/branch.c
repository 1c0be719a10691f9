#include "branch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "sys.h"

int um_branch_open(const char *path, const char *option, struct um_layer *ret, char *err, size_t errlen)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	/* The one place a branch is named by path: resolved by the kernel
	 * once, at mount time, the way the administrator wrote it. */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open '%s': %s; give an existing directory", option, path,
			 strerror(-r));
		return r;
	}
	r = um_sys_fstat(fd, &st);
	if (r < 0) {
		snprintf(err, errlen, "%s: cannot stat '%s': %s", option, path, strerror(-r));
		return r;
	}
	ret->path = strdup(path);
	if (!ret->path) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret->dev = st.st_dev;
	ret->fd = TAKE_FD(fd);
	return 0;
}

void um_branch_close(struct um_layer *layer)
{
	if (layer->fd >= 0)
		(void)close(layer->fd);
	layer->fd = -1;
	free(layer->path);
	layer->path = NULL;
}
