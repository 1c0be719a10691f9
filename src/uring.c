/* FUSE over io_uring: the transport (uring.h). The protocol is the
 * kernel's (fs/fuse/dev_uring.c, include/uapi/linux/fuse.h 7.42), which
 * Debian 12's headers predate, hence the structures here.
 *
 * Each request slot is two buffers registered with the kernel: a header
 * block (the fuse_in_header, then the operation's own header, then the
 * slot's bookkeeping) and a payload buffer (the rest: names, written
 * data). A slot is placed FRONT bytes into its allocation so the two
 * headers can be copied in front of the payload, which makes the request
 * the byte stream read(2) on /dev/fuse would have returned, and libfuse
 * dispatches it unchanged. The kernel keeps one queue per possible CPU
 * and puts a request on the queue of the CPU its caller runs on, so each
 * worker is pinned to its queue's CPU: the caller and the worker that
 * serves it then share a CPU, and waking either needs no other CPU. */
#include "uring.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#ifdef UM_HAVE_LIBURING
#include <liburing.h>

struct ring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;    /* names the request in COMMIT_AND_FETCH */
	uint32_t payload_sz;   /* bytes of payload, both ways */
	uint32_t padding;
	uint64_t reserved;
};

struct ring_hdr {
	char in_out[128];      /* fuse_in_header in, fuse_out_header back */
	char op_in[128];       /* the operation's header (fuse_read_in...) */
	struct ring_ent_in_out ent;
};

/* In the SQE's command area (IORING_SETUP_SQE128). */
struct ring_cmd {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

enum { CMD_REGISTER = 1, CMD_COMMIT_AND_FETCH = 2 };

/* Room before the payload for both headers; a page keeps it aligned. */
#define FRONT 4096u

struct worker {
	struct fuse_session *se;
	unsigned qid;
	bool idle;             /* run in SCHED_IDLE */
	struct io_uring ring;
	struct ring_hdr hdr;
	struct iovec iov[2];
	char *buf;             /* FRONT bytes, then the payload */
	size_t payload;
	uint64_t unique;       /* of the request being served */
	uint32_t opcode;       /* ... and its opcode */
	bool replied;
	pthread_t tid;
	int state;             /* under start_lock: 0 starting, 1 registered, -errno failed */
};

/* Set by um_uring_accept() in the thread writing the INIT reply, read by
 * um_uring_start() afterwards in the same thread. probe: a ring made to
 * learn that io_uring works here, kept to send the kernel a registration
 * it must refuse if a queue is left without workers: until every queue
 * has one the kernel holds all requests, and a refused registration makes
 * it go back to /dev/fuse. */
static _Atomic size_t payload_size;
static _Atomic unsigned n_queues;
static atomic_bool accepted;
static struct io_uring probe;

/* start_lock guards workers, n_workers and every worker's state; start
 * writes them once, the workers report their registration, and
 * um_uring_stop() joins them. stop_fd: written once to stop them. */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;
static struct worker **workers;
static unsigned n_workers;
static int stop_fd = -1;

/* Set by the first worker the kernel refuses SCHED_IDLE, so that the
 * refusal is logged once for all of them. */
static atomic_bool idle_refused;

/* The worker whose request this thread is dispatching: its reply goes to
 * that slot (um_uring_reply()). */
static _Thread_local struct worker *serving;

bool um_uring_built(void)
{
	return true;
}

/* The number of queues the kernel makes: one per possible CPU. */
static unsigned possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	char line[256];
	unsigned n = 0;
	long conf;

	if (f && fgets(line, sizeof(line), f)) {
		/* "0-1", "0", "0-3,5-7": the last number is the highest CPU. */
		char *p = line + strcspn(line, "\n");

		while (p > line && (p[-1] < '0' || p[-1] > '9'))
			p--;
		while (p > line && p[-1] >= '0' && p[-1] <= '9')
			p--;
		n = (unsigned)strtoul(p, NULL, 10) + 1;
	}
	if (f)
		fclose(f);
	conf = sysconf(_SC_NPROCESSORS_CONF);
	/* A queue more than the kernel has gets its registration refused,
	 * and the kernel goes back to /dev/fuse (safe); one fewer leaves a
	 * queue without workers, which holds every request: so the larger
	 * of the two counts. */
	if (conf > (long)n)
		n = (unsigned)conf;
	return n;
}

/* Whether a ring can be made and used here; keeps it in probe. */
static bool probe_ring(void)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	bool ok = false;

	if (io_uring_queue_init(2, &probe, IORING_SETUP_SQE128) < 0)
		return false;
	sqe = io_uring_get_sqe(&probe);
	if (sqe) {
		io_uring_prep_nop(sqe);
		if (io_uring_submit_and_wait(&probe, 1) == 1 && io_uring_peek_cqe(&probe, &cqe) == 0) {
			ok = cqe->res == 0;
			io_uring_cqe_seen(&probe, cqe);
		}
	}
	if (!ok)
		io_uring_queue_exit(&probe);
	return ok;
}

void um_uring_accept(struct fuse_init_out *out, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size = 8192, pages = 32; /* FUSE_MIN_READ_BUFFER; the kernel's default max_pages */

	if (len < offsetof(struct fuse_init_out, flags2) + sizeof(out->flags2) || page <= 0 ||
	    atomic_load(&accepted))
		return;
	/* Not where io_uring is off (kernel.io_uring_disabled, a seccomp
	 * filter) or lacks 128-byte SQEs (before 5.19): after this reply the
	 * kernel holds every request until the workers register, and only a
	 * working ring can tell it to stop waiting (fall_back()). */
	if (!n_queues)
		n_queues = possible_cpus();
	if (!n_queues || !probe_ring())
		return;
	if (out->flags & FUSE_MAX_PAGES)
		pages = out->max_pages;
	/* As the kernel sizes a ring's payload (fuse_uring_create()). */
	if (out->max_write > size)
		size = out->max_write;
	if (pages * (size_t)page > size)
		size = pages * (size_t)page;
	out->flags |= FUSE_INIT_EXT;
	out->flags2 |= UM_FUSE_OVER_IO_URING_FLAGS2;
	atomic_store(&payload_size, size);
	atomic_store(&accepted, true);
}

static int submit(struct worker *w, unsigned op, uint64_t commit_id)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	struct ring_cmd *cmd;

	if (!sqe)
		return -EBUSY;
	memset(sqe, 0, 2 * sizeof(*sqe)); /* SQE128: the command area too */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fuse_session_fd(w->se);
	sqe->cmd_op = op;
	sqe->addr = (uintptr_t)w->iov;
	sqe->len = 2;
	cmd = (struct ring_cmd *)sqe->cmd;
	cmd->commit_id = commit_id;
	cmd->qid = (uint16_t)w->qid;
	io_uring_sqe_set_data(sqe, w);
	return 0;
}

/* Wakes the worker when um_uring_stop() writes stop_fd. */
static int submit_stop_poll(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, stop_fd, POLLIN);
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}

static void report(struct worker *w, int state)
{
	pthread_mutex_lock(&start_lock);
	if (w->state == 0)
		w->state = state;
	pthread_cond_broadcast(&start_cond);
	pthread_mutex_unlock(&start_lock);
}

/* The request in the slot, handed to libfuse as if read from /dev/fuse;
 * the handler's reply lands back in the slot through um_uring_reply(). */
static void serve(struct worker *w)
{
	struct fuse_in_header ih;
	struct fuse_out_header oh;
	uint32_t psz = w->hdr.ent.payload_sz;
	size_t oplen;
	char *wire;

	memcpy(&ih, w->hdr.in_out, sizeof(ih));
	w->replied = false;
	if (ih.len < sizeof(ih) + (size_t)psz || psz > w->payload ||
	    (oplen = ih.len - sizeof(ih) - psz) > sizeof(w->hdr.op_in)) {
		um_log(UM_LOG_ERR, "io_uring: request %llu (opcode %u) is malformed; answered EIO",
		       (unsigned long long)ih.unique, ih.opcode);
	} else {
		struct fuse_buf fb = { .size = ih.len };

		wire = w->buf + FRONT - oplen - sizeof(ih);
		memcpy(wire, &ih, sizeof(ih));
		memcpy(wire + sizeof(ih), w->hdr.op_in, oplen);
		fb.mem = wire;
		w->unique = ih.unique;
		w->opcode = ih.opcode;
		serving = w;
		fuse_session_process_buf(w->se, &fb);
		serving = NULL;
	}
	if (w->replied)
		return;
	/* Every request on the ring wants a reply (FORGET and INTERRUPT
	 * come through /dev/fuse), and the slot comes back only with one. */
	oh = (struct fuse_out_header){ .len = sizeof(oh), .error = -EIO, .unique = ih.unique };
	memcpy(w->hdr.in_out, &oh, sizeof(oh));
	w->hdr.ent.payload_sz = 0;
}

void *um_uring_reply_area(size_t size)
{
	struct worker *w = serving;

	return w && !w->replied && size <= w->payload ? w->buf + FRONT : NULL;
}

ssize_t um_uring_reply(const struct iovec *iov, int count)
{
	struct worker *w = serving;
	const struct fuse_out_header *oh;
	size_t n = 0;

	if (!w || count < 1 || iov[0].iov_len != sizeof(*oh))
		return -1;
	oh = iov[0].iov_base;
	if (oh->unique != w->unique || w->replied)
		return -1;
	for (int i = 1; i < count; i++) {
		if (iov[i].iov_len > w->payload - n) {
			/* Larger than the kernel takes: the caller gets EIO
			 * (serve()), not a reply written to /dev/fuse, which
			 * has no such request. */
			um_log(UM_LOG_ERR, "io_uring: a reply to opcode %u is larger than the kernel takes; answered EIO",
			       w->opcode);
			w->replied = false;
			return (ssize_t)(sizeof(*oh) + n);
		}
		/* memmove: a reply may quote the request, whose bytes it
		 * overwrites here (handlers read no argument after replying).
		 * None when it was built in place (um_uring_reply_area()). */
		if (iov[i].iov_base != w->buf + FRONT + n)
			memmove(w->buf + FRONT + n, iov[i].iov_base, iov[i].iov_len);
		n += iov[i].iov_len;
	}
	memcpy(w->hdr.in_out, oh, sizeof(*oh));
	w->hdr.ent.payload_sz = (uint32_t)n;
	w->replied = true;
	return (ssize_t)(sizeof(*oh) + n);
}

static int ring_init(struct worker *w)
{
	int r = io_uring_queue_init(4, &w->ring, IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER |
							 IORING_SETUP_DEFER_TASKRUN);

	/* Kernels before 6.1 lack the last two; they only save wakeups. */
	if (r == -EINVAL)
		r = io_uring_queue_init(4, &w->ring, IORING_SETUP_SQE128);
	return r;
}

bool um_uring_idle_refused(void)
{
	return atomic_load(&idle_refused);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	char name[16];
	cpu_set_t cpus;
	bool stopping = false;
	int r;

	CPU_ZERO(&cpus);
	CPU_SET(w->qid, &cpus);
	/* A CPU that is possible but offline gets no requests; unpinned. */
	(void)pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	(void)snprintf(name, sizeof(name), "um-uring/%u", w->qid);
	(void)pthread_setname_np(pthread_self(), name);
	/* When a reply wakes its caller, this CPU is still busy with the
	 * worker, and the kernel places the caller on an idle one, unless
	 * all this CPU runs is SCHED_IDLE: then the caller stays, and its
	 * next request finds the worker here (nice.h). */
	if (w->idle && sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){ 0 }) < 0 &&
	    !atomic_exchange(&idle_refused, true))
		um_log(UM_LOG_WARN, "io_uring: workers stay in the normal class (uring_idle=auto): %s", strerror(errno));
	r = ring_init(w);
	if (r < 0) {
		report(w, r);
		return NULL;
	}
	r = submit_stop_poll(w);
	if (r == 0)
		r = submit(w, CMD_REGISTER, 0);
	if (r == 0 && (r = io_uring_submit(&w->ring)) >= 0) {
		struct io_uring_cqe *cqe;

		/* A registration the kernel takes stays queued until a request
		 * comes; one it refuses completes during the submission (the
		 * INIT reply is in, so not with EAGAIN). */
		r = 0;
		if (io_uring_peek_cqe(&w->ring, &cqe) == 0) {
			r = cqe->res < 0 ? cqe->res : -EIO;
			io_uring_cqe_seen(&w->ring, cqe);
		}
	}
	if (r == 0)
		report(w, 1);
	while (r == 0) {
		struct io_uring_cqe *cqe;
		uint64_t commit_id;
		int res;
		void *what;

		if (stopping) {
			/* um_uring_stop(): serve the requests already fetched
			 * with the last commits, then go. */
			r = -ECANCELED;
			if (io_uring_submit(&w->ring) < 0 || io_uring_peek_cqe(&w->ring, &cqe) != 0)
				break;
		} else {
			/* A signal (SIGSTOP and SIGCONT, a debugger) ends the
			 * wait early: with EINTR, or with the count submitted
			 * and no completion yet. Either way, wait again. */
			r = io_uring_submit_and_wait(&w->ring, 1);
			if (r < 0 && r != -EINTR && r != -EAGAIN)
				break;
			/* Short of kernel memory (no request could be made; the
			 * submission stays queued for the next call): not a busy
			 * loop. A signal that ends the sleep early only retries
			 * sooner. */
			if (r == -EAGAIN)
				(void)nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
			r = 0;
			if (io_uring_peek_cqe(&w->ring, &cqe) != 0)
				continue;
		}
		res = cqe->res;
		what = io_uring_cqe_get_data(cqe);
		io_uring_cqe_seen(&w->ring, cqe);
		if (!what) {
			stopping = true;
			r = 0;
			continue;
		}
		if (res < 0) {
			r = stopping ? -ECANCELED : res; /* ENOTCONN once unmounted */
			break;
		}
		commit_id = w->hdr.ent.commit_id;
		serve(w);
		r = submit(w, CMD_COMMIT_AND_FETCH, commit_id);
	}
	report(w, r < 0 ? r : -EIO);
	if (w->state == 1 && r != -ENOTCONN && r != -ECONNABORTED && r != -ECANCELED)
		um_log(UM_LOG_WARN, "io_uring: a worker for CPU %u stopped: %s", w->qid, strerror(-r));
	/* Cancels the command still queued in the kernel, if any. */
	io_uring_queue_exit(&w->ring);
	return NULL;
}

/* Makes the kernel serve requests through /dev/fuse again: a
 * registration it refuses (no such queue) turns io_uring off for the
 * connection while the ring is not yet in use. 0 when it did, or when
 * io_uring was never on for it; else the kernel still holds every request
 * and only unmounting ends that. */
static int fall_back(int fd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&probe);
	struct io_uring_cqe *cqe;
	int r = -EBUSY;

	if (!sqe)
		return r;
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = CMD_REGISTER;
	((struct ring_cmd *)sqe->cmd)->qid = UINT16_MAX;
	r = io_uring_submit_and_wait(&probe, 1);
	if (r >= 0 && (r = io_uring_peek_cqe(&probe, &cqe)) == 0) {
		/* EINVAL is the refusal that turned io_uring off. EOPNOTSUPP:
		 * it was never on for this connection, which /dev/fuse serves
		 * already (enable_uring was cleared between INIT's request,
		 * which offered it, and our reply, which took it). */
		r = cqe->res == -EINVAL || cqe->res == -EOPNOTSUPP ? 0 : cqe->res < 0 ? cqe->res : -EIO;
		io_uring_cqe_seen(&probe, cqe);
	}
	return r;
}

static struct worker *worker_new(struct fuse_session *se, unsigned qid, size_t size)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->buf = aligned_alloc(FRONT, FRONT + size);
	if (!w->buf) {
		free(w);
		return NULL;
	}
	w->se = se;
	w->qid = qid;
	w->payload = size;
	w->iov[0] = (struct iovec){ &w->hdr, sizeof(w->hdr) };
	w->iov[1] = (struct iovec){ w->buf + FRONT, size };
	return w;
}

int um_uring_start(struct fuse_session *se, unsigned threads, bool idle)
{
	size_t size = atomic_load(&payload_size);
	unsigned queues = atomic_load(&n_queues), served = 0, per_queue;
	struct timespec until;
	int r = 0, back;

	if (!atomic_load(&accepted))
		return -EINVAL;
	per_queue = (threads + queues - 1) / queues;
	if (per_queue < 2)
		per_queue = 2;
	pthread_mutex_lock(&start_lock);
	stop_fd = eventfd(0, EFD_CLOEXEC);
	if (stop_fd < 0)
		r = -errno;
	workers = calloc((size_t)queues * per_queue, sizeof(*workers));
	if (!workers)
		r = -ENOMEM;
	for (unsigned i = 0; r == 0 && i < queues * per_queue; i++) {
		struct worker *w = worker_new(se, i / per_queue, size);

		if (!w) {
			r = -ENOMEM;
			break;
		}
		w->idle = idle;
		r = -pthread_create(&w->tid, NULL, work, w);
		if (r < 0) {
			free(w->buf);
			free(w);
			break;
		}
		workers[n_workers++] = w;
	}
	/* Wait until every worker has registered or failed: the kernel holds
	 * every request until each queue has a worker, so a queue without
	 * one must make it fall back before we return. */
	clock_gettime(CLOCK_REALTIME, &until); /* the condition's clock */
	until.tv_sec += 10;
	for (;;) {
		unsigned pending = 0;

		for (unsigned i = 0; i < n_workers; i++)
			pending += workers[i]->state == 0;
		if (!pending || pthread_cond_timedwait(&start_cond, &start_lock, &until) == ETIMEDOUT)
			break;
	}
	for (unsigned q = 0; q < queues; q++) {
		bool ok = false;

		for (unsigned i = 0; i < n_workers; i++)
			ok |= workers[i]->qid == q && workers[i]->state == 1;
		served += ok;
	}
	pthread_mutex_unlock(&start_lock);
	if (served < queues) {
		if (r == 0)
			r = -EIO;
		for (unsigned i = 0; i < n_workers; i++)
			if (workers[i]->state < 0)
				r = workers[i]->state;
		back = fall_back(fuse_session_fd(se));
		if (back < 0) {
			/* Callers would wait for ever: end the session as a
			 * SIGTERM does, so the union unmounts and they get
			 * errors instead. */
			um_log(UM_LOG_ERR, "io_uring: no worker for every CPU (%s), and the kernel refuses to go back to /dev/fuse (%s); unmounting",
			       strerror(-r), strerror(-back));
			(void)kill(getpid(), SIGTERM);
		}
	}
	io_uring_queue_exit(&probe);
	return r;
}

void um_uring_stop(void)
{
	uint64_t one = 1;

	pthread_mutex_lock(&start_lock);
	if (stop_fd >= 0 && write(stop_fd, &one, sizeof(one)) < 0) {
		/* An eventfd write fails only on overflow: already written. */
	}
	for (unsigned i = 0; i < n_workers; i++) {
		pthread_mutex_unlock(&start_lock);
		(void)pthread_join(workers[i]->tid, NULL);
		pthread_mutex_lock(&start_lock);
		free(workers[i]->buf);
		free(workers[i]);
	}
	free(workers);
	workers = NULL;
	n_workers = 0;
	if (stop_fd >= 0)
		close(stop_fd);
	stop_fd = -1;
	pthread_mutex_unlock(&start_lock);
}

#else /* !UM_HAVE_LIBURING */

bool um_uring_built(void)
{
	return false;
}

void um_uring_accept(struct fuse_init_out *out, size_t len)
{
	(void)out;
	(void)len;
}

int um_uring_start(struct fuse_session *se, unsigned threads, bool idle)
{
	(void)se;
	(void)threads;
	(void)idle;
	return -ENOSYS;
}

bool um_uring_idle_refused(void)
{
	return false;
}

void um_uring_stop(void)
{
}

void *um_uring_reply_area(size_t size)
{
	(void)size;
	return NULL;
}

ssize_t um_uring_reply(const struct iovec *iov, int count)
{
	(void)iov;
	(void)count;
	return -1;
}

#endif
