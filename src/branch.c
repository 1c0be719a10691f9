#include "branch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "sys.h"

/* Is anything mounted below the directory open at fd? Read once at mount
 * time from mountinfo, so that listings know when a directory entry may
 * be a mount point (and its d_ino not the number lookup gives). When in
 * doubt, say yes: that only costs an lstat per listed directory. */
static bool has_submounts(int fd)
{
	_cleanup_free_ char *line = NULL, *root = NULL;
	char self[64];
	size_t cap = 0, len;
	bool found = false;
	FILE *f;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	root = realpath(self, NULL);
	f = fopen("/proc/self/mountinfo", "re");
	if (!root || !f) {
		if (f)
			fclose(f);
		return true;
	}
	len = strlen(root);
	while (!found && getline(&line, &cap, f) > 0) {
		char *mnt = line;

		/* id parent major:minor root mountpoint ...: the fields are
		 * split by single blanks, since mountinfo writes a blank, tab,
		 * newline or backslash inside one as \ooo. Undone before the
		 * comparison: root is the raw path, and a branch below
		 * "/tmp/a b" is "/tmp/a\040b" here. */
		for (int i = 0; i < 4 && mnt; i++) {
			mnt = strchr(mnt, ' ');
			if (mnt)
				mnt++;
		}
		if (!mnt)
			continue;
		mnt[strcspn(mnt, " \n")] = '\0';
		um_mountinfo_unescape(mnt);
		if (len == 1 ? mnt[1] != '\0' : !strncmp(mnt, root, len) && mnt[len] == '/')
			found = true;
	}
	fclose(f);
	return found;
}

void um_mountinfo_unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

int um_branch_open(const char *path, const char *option, struct um_layer *ret, char *err, size_t errlen)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	fd = um_sys_open_path(path, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open '%s': %s; give an existing directory", option, path,
			 strerror(-fd));
		return fd;
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
	ret->submounts = has_submounts(fd);
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
