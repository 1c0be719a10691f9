/* FUSE over io_uring (protocol 7.42, Linux 6.14): requests reach worker
 * threads through io_uring commands on /dev/fuse instead of read(2), and
 * each reply goes back with the command that fetches the next request.
 * libfuse before 3.18 cannot ask for it; this transport feeds the ring's
 * requests to the session's own dispatcher (fuse_session_process_buf)
 * and catches their replies in the /dev/fuse writev hook, so the
 * operation handlers do not change. */
#ifndef UM_URING_H
#define UM_URING_H

#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

/* FUSE_OVER_IO_URING is bit 41 of INIT's flags, so bit 9 of flags2. */
#define UM_FUSE_OVER_IO_URING_FLAGS2 (1u << 9)

/* Whether this build can serve requests through io_uring at all. */
bool um_uring_built(void);

/* From the INIT reply about to be written: takes the flag when the kernel
 * offered it and sizes the payload buffers as the kernel will require. */
void um_uring_accept(struct fuse_init_out *out, size_t len);

/* After the INIT reply is written: starts about `threads` workers, at
 * least two for each possible CPU (pinned to it, so one request that
 * blocks long does not stall the CPU's callers), each registering one request slot, and
 * waits for their registrations. Negative errno if a queue was left with
 * no worker; the kernel has then been made to use /dev/fuse. idle: the
 * workers run in SCHED_IDLE (nice.h, um_sched_own_group()). */
int um_uring_start(struct fuse_session *se, unsigned threads, bool idle);
/* Did the kernel refuse a worker SCHED_IDLE (logged once)? */
bool um_uring_idle_refused(void);

/* Stops the workers and waits for them: after the session loop ends, so
 * no request is still being served when the filesystem is freed. */
void um_uring_stop(void);

/* Where the handler of the request this thread is serving from the ring
 * may build a reply payload of `size` bytes: the slot's payload buffer,
 * which um_uring_reply() then does not copy again. NULL when the thread
 * serves no ring request, or the slot is smaller. The request's own
 * payload (names, written data) lies there too: only for a handler that
 * has read its arguments, READ's being all in its header. */
void *um_uring_reply_area(size_t size);

/* In the writev hook: the reply of the request this thread is serving
 * from the ring is copied into its slot (returns the bytes taken);
 * anything else (notifications, /dev/fuse requests) returns -1 and goes
 * to /dev/fuse. */
ssize_t um_uring_reply(const struct iovec *iov, int count);

#endif
