/* Requests in flight, as epochs: what lets dirfds.c close a directory's
 * fds while the kernel still holds the directory, without closing one a
 * running request read and still uses.
 *
 * Every FUSE handler runs between um_inflight_enter() and
 * um_inflight_leave() (ops.c wraps the table). The epoch only moves
 * forward; a request is "older than e" if it entered before epoch e. */
#ifndef UM_INFLIGHT_H
#define UM_INFLIGHT_H

#include <stdint.h>

void um_inflight_enter(void);
void um_inflight_leave(void);

/* The current epoch (>= 1). */
uint64_t um_inflight_epoch(void);
/* Start a new epoch and return it. */
uint64_t um_inflight_advance(void);
/* The epoch the oldest running request entered in; UINT64_MAX if none
 * is running. */
uint64_t um_inflight_oldest(void);
/* Return once no request older than epoch e is running. Never call it
 * from inside a request: it would wait for itself. */
void um_inflight_wait(uint64_t e);

#endif
