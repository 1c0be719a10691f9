/* The daemon's scheduling weight against the programs it serves (-o nice=).
 *
 * A caller blocked on a request sleeps on its CPU while the worker pinned
 * there (uring.h) serves it; when the reply wakes it, that CPU is still
 * busy with the worker, and unless the caller counts as ineligible there
 * the scheduler moves it to an idle CPU, where its next request wakes
 * another worker from idle. Measured on untar (bench/README.md, "The
 * daemon's scheduling weight"), the daemon in a session of its own as
 * every mount from fstab is: 6.6 such moves per file at nice 0, and nearly
 * twice the time of nice -10 in two runs of three (in the third, as
 * slow). A heavier daemon keeps the caller where it is, mostly. */
#ifndef UM_NICE_H
#define UM_NICE_H

#include <stdbool.h>

/* Give the calling thread, and every thread it creates afterwards, nice
 * value nice; and when this process leads its own session (after
 * fuse_daemonize(), or started by setsid or a service manager), the
 * session's autogroup the same, as that is what the scheduler weighs
 * against other sessions. 0 changes nothing. Either may be refused (no
 * CAP_SYS_NICE, no autogroups): logged, at warning level when the value
 * was asked for (explicit), and the daemon runs on unchanged. */
void um_nice_setup(int nice, bool explicit);

#endif
