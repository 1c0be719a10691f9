/* FUSE_HANDLE_KILLPRIV_V2 on libfuse 3.14, by rewriting the INIT reply.
 *
 * Without it the kernel asks for security.capability before every
 * write(2) (FUSE superblocks get SB_NOSEC only with it; with it, once
 * per file until its attributes are next refreshed) and refreshes the mode
 * before every chown: two round trips per extracted file in untar
 * (bench/README.md, "HANDLE_KILLPRIV_V2"). With it the kernel leaves
 * clearing setuid/setgid on write, truncate and chown to us: truncate
 * and O_TRUNC already clear them here (um_file_kill_priv(), op_file.c),
 * the upper filesystem clears them when we chown, and the empty SETATTR
 * the kernel sends for chown(f, -1, -1) and before a setuid file's data
 * changes clears them (op_attr.c). libfuse 3.14 never offers the flag in
 * its reply, so we add it on the way out. t_security checks every case
 * against kernel overlayfs.
 *
 * Only the protocol is relied on (linux/fuse.h): the INIT request is the
 * first one the kernel sends and the only one until it has its reply, so
 * the hooks look at no other message. libfuse answers as protocol 7.31
 * and the flag is 7.33's; the kernel takes the flags it offered whatever
 * minor the reply names. Side effect: with I/O hooks that have no splice
 * functions, libfuse 3.14 no longer receives requests by splice
 * (FUSE_CAP_SPLICE_READ), which strace showed it never did here anyway
 * (bench/README.md, "Splice"). */
#include "initreply.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "unionmount.h"

/* Written by the thread that read INIT, read by the one replying to it
 * (the same thread in libfuse 3.14; atomics since nothing promises it).
 * init_unique: the INIT request's, while its reply is to be rewritten (0
 * otherwise); init_done: INIT was read, stop looking. One session per
 * process, so one pair. */
static _Atomic uint64_t init_unique;
static atomic_bool init_done;

static ssize_t hook_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *h = buf;
	const struct fuse_init_in *in = (const void *)(h + 1);

	(void)userdata;
	if (n < (ssize_t)(sizeof(*h) + offsetof(struct fuse_init_in, flags2)) ||
	    atomic_load_explicit(&init_done, memory_order_relaxed) || h->opcode != FUSE_INIT)
		return n;
	/* FUSE_HANDLE_KILLPRIV_V2 sits in the first flags word. */
	if (in->major == FUSE_KERNEL_VERSION && (in->flags & FUSE_HANDLE_KILLPRIV_V2))
		atomic_store(&init_unique, h->unique);
	atomic_store(&init_done, true);
	return n;
}

static ssize_t hook_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct um_fs *fs = userdata;
	uint64_t unique = atomic_load_explicit(&init_unique, memory_order_relaxed);

	if (unique && count >= 2 && iov[0].iov_len == sizeof(struct fuse_out_header) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof(uint32_t)) {
		const struct fuse_out_header *oh = iov[0].iov_base;
		struct fuse_init_out *out = iov[1].iov_base;

		if (oh->unique == unique && oh->error == 0) {
			out->flags |= FUSE_HANDLE_KILLPRIV_V2;
			/* Before the reply: no WRITE can reach us earlier. */
			atomic_store(&fs->killpriv_v2, true);
			atomic_store(&init_unique, 0);
			um_debug("INIT: asking the kernel to leave setuid/setgid clearing to us (HANDLE_KILLPRIV_V2)");
		}
	}
	return writev(fd, iov, count);
}

static const struct fuse_custom_io hooks = {
	.read = hook_read,
	.writev = hook_writev,
};

int um_initreply_install(struct fuse_session *se, struct um_fs *fs)
{
	int r;

	(void)fs; /* reaches the hooks as the session's userdata */
	r = fuse_session_custom_io(se, &hooks, fuse_session_fd(se));
	return r < 0 ? r : 0; /* -errno in libfuse 3.14 */
}
