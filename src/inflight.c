#include "inflight.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* One slot per thread that ever ran a request. libfuse starts and ends
 * worker threads as load changes: a thread's slot goes back to the list
 * when it exits (the key's destructor) and the next new thread takes it,
 * so the list is as long as the most threads alive at once. Slots are
 * never freed, so walking the list needs no lock. */
struct slot {
	/* The epoch the running request entered in; 0 between requests. */
	_Atomic uint64_t active;
	atomic_bool taken;
	struct slot *next; /* set before the slot is published, never after */
};

/* Starts at 1 so that 0 can mean "no request" in a slot. */
static _Atomic uint64_t epoch = 1;
/* Head of the slot list: pushed to with compare-and-swap. */
static _Atomic(struct slot *) slots;
static pthread_key_t slot_key;
static pthread_once_t slot_key_once = PTHREAD_ONCE_INIT;
static _Thread_local struct slot *mine;

static void slot_release(void *p)
{
	struct slot *s = p;

	atomic_store(&s->active, 0);
	atomic_store(&s->taken, false);
}

static void slot_key_create(void)
{
	if (pthread_key_create(&slot_key, slot_release) != 0)
		abort(); /* only fails when the process is out of keys, at startup */
}

static struct slot *slot_get(void)
{
	struct slot *s;

	(void)pthread_once(&slot_key_once, slot_key_create);
	for (s = atomic_load(&slots); s; s = s->next) {
		bool no = false;

		if (atomic_compare_exchange_strong(&s->taken, &no, true))
			break;
	}
	if (!s) {
		/* A request cannot run untracked: without memory for a slot
		 * (a few bytes, once per thread) there is no safe way on. */
		s = calloc(1, sizeof(*s));
		if (!s)
			abort();
		atomic_store(&s->taken, true);
		s->next = atomic_load(&slots);
		while (!atomic_compare_exchange_weak(&slots, &s->next, s))
			;
	}
	if (pthread_setspecific(slot_key, s) != 0)
		abort(); /* ENOMEM for a thread-specific value: as above */
	return s;
}

void um_inflight_enter(void)
{
	if (!mine)
		mine = slot_get();
	/* Sequentially consistent, like um_inflight_advance(): either the
	 * reaper sees this request, or the request sees the new epoch (and
	 * marks what it uses with it, see dirfds.c). */
	atomic_store(&mine->active, atomic_load(&epoch));
}

void um_inflight_leave(void)
{
	atomic_store(&mine->active, 0);
}

uint64_t um_inflight_epoch(void)
{
	return atomic_load(&epoch);
}

uint64_t um_inflight_advance(void)
{
	return atomic_fetch_add(&epoch, 1) + 1;
}

uint64_t um_inflight_oldest(void)
{
	uint64_t oldest = UINT64_MAX;

	for (struct slot *s = atomic_load(&slots); s; s = s->next) {
		uint64_t a = atomic_load(&s->active);

		if (a && a < oldest)
			oldest = a;
	}
	return oldest;
}

void um_inflight_wait(uint64_t e)
{
	const struct timespec nap = { .tv_nsec = 200 * 1000 };

	for (struct slot *s = atomic_load(&slots); s; s = s->next) {
		uint64_t a;

		while ((a = atomic_load(&s->active)) && a < e)
			(void)nanosleep(&nap, NULL);
	}
}
