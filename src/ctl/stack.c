#include "stack.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "marker.h"
#include "names.h"
#include "output.h"
#include "sys.h"

#define SCAN_MAX_DEPTH 4096 /* as the walk's (walk.c): deeper is reported there */

int um_ctl_complete_mark(const struct um_ctl_set *set, int fd, const char *name)
{
	int r = um_marker_is_complete(fd, name, set->stackid);

	if (r != 0)
		return r < 0 ? r : UM_CTL_COMPLETE_THIS;
	/* It decodes (or is absent) and is not this list's: which? */
	r = um_sys_lgetxattrat(fd, name, UM_XATTR_COMPLETE, NULL, 0);
	if (r == -ENODATA || r == -ENOTSUP)
		return UM_CTL_COMPLETE_NONE;
	return r < 0 ? r : UM_CTL_COMPLETE_FOREIGN;
}

struct scan {
	const struct um_ctl_set *set;
	struct um_ctl_path path;
	struct um_ctl_stack_scan *res;
};

static int scan_dir(struct scan *s, int fd, unsigned depth)
{
	struct um_ctl_names ns = { 0 };
	int r = 0;

	if (depth > SCAN_MAX_DEPTH)
		return 0;
	if (um_ctl_complete_mark(s->set, fd, "") == UM_CTL_COMPLETE_FOREIGN && s->res->foreign++ == 0) {
		s->res->first_foreign = strdup(um_ctl_path_str(&s->path));
		if (!s->res->first_foreign)
			return -ENOMEM;
	}
	r = um_ctl_names_read_dir(&ns, fd, 0);
	if (r < 0)
		goto out;
	um_ctl_names_sort(&ns);
	for (size_t i = 0; i < ns.n && r == 0; i++) {
		unsigned type = ns.v[i].val & 0xff;
		struct stat st;
		size_t mark;
		int sub;

		/* Only character devices can be fallthrus, only directories
		 * hold more: everything else costs no syscall. */
		if (type != DT_DIR && type != DT_CHR && type != DT_UNKNOWN)
			continue;
		if (type != DT_DIR) {
			if (um_sys_lstatat(fd, ns.v[i].name, &st) < 0)
				continue;
			if (um_marker_fallthru_layer(&st) >= s->set->n_layers)
				s->res->beyond++;
			if (!S_ISDIR(st.st_mode))
				continue;
		}
		sub = um_sys_open_dir(fd, ns.v[i].name);
		if (sub < 0)
			continue;
		r = um_ctl_path_push(&s->path, ns.v[i].name, &mark);
		if (r == 0) {
			r = scan_dir(s, sub, depth + 1);
			um_ctl_path_pop(&s->path, mark);
		}
		(void)close(sub);
	}
out:
	um_ctl_names_release(&ns);
	return r == -ENOMEM ? r : 0;
}

int um_ctl_stack_scan(const struct um_ctl_set *set, struct um_ctl_stack_scan *ret)
{
	struct scan s = { .set = set, .res = ret };
	int r = um_ctl_path_set(&s.path, "");

	*ret = (struct um_ctl_stack_scan){ 0 };
	if (r == 0)
		r = scan_dir(&s, set->layers[UM_UPPER].fd, 0);
	um_ctl_path_release(&s.path);
	if (r < 0)
		um_ctl_stack_scan_release(ret);
	return r;
}

void um_ctl_stack_scan_release(struct um_ctl_stack_scan *s)
{
	free(s->first_foreign);
	*s = (struct um_ctl_stack_scan){ 0 };
}
