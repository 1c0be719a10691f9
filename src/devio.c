/* The session's reads and writes of /dev/fuse, hooked, for two protocol
 * features libfuse 3.14 cannot ask for.
 *
 * FUSE_HANDLE_KILLPRIV_V2 (7.33). Without it the kernel asks for
 * security.capability before every write(2) (FUSE superblocks get
 * SB_NOSEC only with it; with it, once per file until its attributes are
 * next refreshed) and refreshes the mode before every chown: two round
 * trips per extracted file in untar (bench/README.md,
 * "HANDLE_KILLPRIV_V2"). With it the kernel leaves clearing
 * setuid/setgid on write, truncate and chown to us: truncate and O_TRUNC
 * already clear them here (um_file_kill_priv(), op_file.c), the upper
 * filesystem clears them when we chown, and the empty SETATTR the kernel
 * sends for chown(f, -1, -1) and before a setuid file's data changes
 * clears them (op_attr.c). t_security checks every case against kernel
 * overlayfs.
 *
 * FUSE_PASSTHROUGH (7.40, Linux 6.9): the INIT reply takes it with a
 * stacking depth, and an OPEN or CREATE reply then names a backing file
 * (FOPEN_PASSTHROUGH and a backing id in what was padding), which the
 * kernel reads and writes itself (passthrough.h). The replying thread
 * says which reply carries which id (um_pt_reply_begin()).
 *
 * FUSE_OVER_IO_URING (7.42, Linux 6.14, offered only when the fuse
 * module's enable_uring is set): the INIT reply takes it, and once INIT
 * is answered uring.c's workers serve the requests; their replies pass
 * through the writev hook too, so the rewrites here apply to them, and
 * are then copied into the request's ring slot instead of written.
 *
 * Only the protocol is relied on (linux/fuse.h): the INIT request is the
 * first one the kernel sends and the only one until it has its reply, so
 * the INIT hooks look at no other message. libfuse answers as protocol
 * 7.31; the kernel takes the flags it offered whatever minor the reply
 * names. Side effect: with I/O hooks that have no splice functions,
 * libfuse 3.14 no longer receives requests by splice
 * (FUSE_CAP_SPLICE_READ), which strace showed it never did here anyway
 * (bench/README.md, "Splice"). */
#include "devio.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse_proto.h"
#include "log.h"
#include "passthrough.h"
#include "unionmount.h"
#include "uring.h"

/* Our superblock's stacking depth: backing files may be on a filesystem
 * of depth 0 only (ext4, xfs, tmpfs; not overlayfs, whose files then get
 * no backing, ELOOP), and an overlay can still be stacked on the union. */
#define UM_STACK_DEPTH 1u

/* Written by the thread that read INIT, read by the one replying to it
 * (the same thread in libfuse 3.14; atomics since nothing promises it).
 * init_unique: the INIT request's, while its reply is to be rewritten (0
 * otherwise); init_killpriv, init_pt, init_uring: what the kernel
 * offered that we take; init_done: INIT was read, stop looking. One
 * session per process, so one set. */
static _Atomic uint64_t init_unique;
static atomic_bool init_killpriv, init_pt, init_uring, init_done;

static ssize_t hook_read(int fd, void *buf, size_t len, void *userdata)
{
	struct um_fs *fs = userdata;
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *h = buf;
	const struct fuse_init_in *in = (const void *)(h + 1);

	if (n < (ssize_t)(sizeof(*h) + offsetof(struct fuse_init_in, flags2) + sizeof(in->flags2)) ||
	    atomic_load_explicit(&init_done, memory_order_relaxed) || h->opcode != FUSE_INIT)
		return n;
	if (in->major == FUSE_KERNEL_VERSION) {
		atomic_store(&init_killpriv, (in->flags & FUSE_HANDLE_KILLPRIV_V2) != 0);
		atomic_store(&init_pt, fs->pt && (in->flags & FUSE_INIT_EXT) &&
					       (in->flags2 & UM_FUSE_PASSTHROUGH_FLAGS2));
		atomic_store(&init_uring, fs->uring && (in->flags & FUSE_INIT_EXT) &&
						  (in->flags2 & UM_FUSE_OVER_IO_URING_FLAGS2));
		atomic_store(&init_unique, h->unique);
	}
	atomic_store(&init_done, true);
	return n;
}

/* Returns whether the reply takes io_uring. */
static bool rewrite_init(struct um_fs *fs, struct fuse_init_out *out, size_t len)
{
	if (atomic_load(&init_killpriv)) {
		out->flags |= FUSE_HANDLE_KILLPRIV_V2;
		/* Before the reply: no WRITE can reach us earlier. */
		atomic_store(&fs->killpriv_v2, true);
		um_debug("INIT: asking the kernel to leave setuid/setgid clearing to us (HANDLE_KILLPRIV_V2)");
	}
	/* Not with the writeback cache, which the kernel refuses it with (we
	 * never ask for that). */
	if (atomic_load(&init_pt) && len >= UM_INIT_OUT_STACK_DEPTH + sizeof(uint32_t) &&
	    !(out->flags & FUSE_WRITEBACK_CACHE)) {
		uint32_t depth = UM_STACK_DEPTH;

		out->flags |= FUSE_INIT_EXT;
		out->flags2 |= UM_FUSE_PASSTHROUGH_FLAGS2;
		memcpy((char *)out + UM_INIT_OUT_STACK_DEPTH, &depth, sizeof(depth));
		atomic_store(&fs->passthrough, true);
		um_debug("INIT: asking for passthrough of open files (FUSE_PASSTHROUGH)");
	}
	if (atomic_load(&init_uring)) {
		um_uring_accept(out, len);
		return (out->flags2 & UM_FUSE_OVER_IO_URING_FLAGS2) != 0;
	}
	return false;
}

/* An OPEN reply is fuse_open_out, a CREATE reply fuse_entry_out then
 * fuse_open_out: in libfuse 3.14 either is one buffer after the header. */
static void rewrite_open(struct iovec *iov, int count, int32_t id)
{
	const struct fuse_out_header *oh = iov[0].iov_base;
	char *end = (char *)iov[1].iov_base + iov[1].iov_len;
	uint32_t flags;

	if (count != 2 || iov[1].iov_len < sizeof(struct fuse_open_out) || oh->error != 0) {
		um_log(UM_LOG_ERR, "passthrough: an open's reply is not shaped as expected; sent without its backing file");
		return;
	}
	memcpy(&flags, end - sizeof(struct fuse_open_out) + offsetof(struct fuse_open_out, open_flags), sizeof(flags));
	flags |= UM_FOPEN_PASSTHROUGH;
	memcpy(end - sizeof(struct fuse_open_out) + offsetof(struct fuse_open_out, open_flags), &flags, sizeof(flags));
	memcpy(end - sizeof(struct fuse_open_out) + offsetof(struct fuse_open_out, padding), &id, sizeof(id));
}

static ssize_t hook_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct um_fs *fs = userdata;
	uint64_t unique = atomic_load_explicit(&init_unique, memory_order_relaxed);
	int32_t id = um_pt_reply_id();

	bool uring = false;
	ssize_t n;
	int r;

	if (count < 1 || iov[0].iov_len != sizeof(struct fuse_out_header))
		return writev(fd, iov, count);
	if (id)
		rewrite_open(iov, count, id);
	else if (unique && count >= 2 && iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof(uint32_t)) {
		const struct fuse_out_header *oh = iov[0].iov_base;

		if (oh->unique == unique && oh->error == 0) {
			uring = rewrite_init(fs, iov[1].iov_base, iov[1].iov_len);
			atomic_store(&init_unique, 0);
		}
	}
	n = um_uring_reply(iov, count);
	if (n >= 0)
		return n;
	n = writev(fd, iov, count);
	/* Only once the kernel has INIT's reply will it take registrations. */
	if (uring && n >= 0) {
		r = um_uring_start(fs->se, UM_THREADS, fs->uring_idle);
		if (r < 0)
			um_log(UM_LOG_WARN, "io_uring: %s; serving requests through /dev/fuse", strerror(-r));
		else
			um_log(UM_LOG_INFO, "serving requests through io_uring%s",
			       fs->uring_idle && !um_uring_idle_refused() ? " (workers SCHED_IDLE)" : "");
	}
	return n;
}

static const struct fuse_custom_io hooks = {
	.read = hook_read,
	.writev = hook_writev,
};

int um_devio_install(struct fuse_session *se, struct um_fs *fs)
{
	int r;

	(void)fs; /* reaches the hooks as the session's userdata */
	r = fuse_session_custom_io(se, &hooks, fuse_session_fd(se));
	return r < 0 ? r : 0; /* -errno in libfuse 3.14 */
}
