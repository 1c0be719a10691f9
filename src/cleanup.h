/* Scope-bound cleanup for fds, memory and DIR streams, and ownership
 * transfer out of such a scope (TAKE_FD / TAKE_PTR). */
#ifndef UM_CLEANUP_H
#define UM_CLEANUP_H

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

static inline void um_closep(int *fd)
{
	if (*fd >= 0)
		(void)close(*fd); /* nothing useful to do with close errors of read-only or O_PATH fds */
}

static inline void um_freep(void *p)
{
	free(*(void **)p);
}

static inline void um_closedirp(DIR **d)
{
	if (*d)
		(void)closedir(*d);
}

#define _cleanup_close_ __attribute__((cleanup(um_closep)))
#define _cleanup_free_ __attribute__((cleanup(um_freep)))
#define _cleanup_closedir_ __attribute__((cleanup(um_closedirp)))

#define TAKE_FD(fd)                   \
	({                            \
		int _fd_ = (fd);      \
		(fd) = -1;            \
		_fd_;                 \
	})

#define TAKE_PTR(p)                             \
	({                                      \
		__typeof__(p) _p_ = (p);        \
		(p) = NULL;                     \
		_p_;                            \
	})

#endif
