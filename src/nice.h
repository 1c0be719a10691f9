/* How the daemon is scheduled against the programs it serves: its weight
 * (-o nice=) and its io_uring workers' class (-o uring_idle=).
 *
 * A caller blocked on a request sleeps on its CPU while the worker pinned
 * there (uring.h) serves it; when the reply wakes it, that CPU is still
 * busy with the worker, and unless the caller counts as ineligible there
 * the scheduler moves it to an idle CPU, where its next request wakes
 * another worker from idle. Measured on untar (bench/README.md, "The
 * daemon's scheduling weight"), the daemon in a session of its own as
 * every mount from fstab is: 6.6 such moves per file at nice 0, and nearly
 * twice the time of nice -10 in two runs of three (in the third, as
 * slow). A heavier daemon keeps the caller where it is, mostly.
 *
 * Nearly always where the workers are SCHED_IDLE: a CPU whose only
 * runnable task is SCHED_IDLE counts as idle to the wakeup, which then
 * leaves the caller there (bench/README.md, "The io_uring workers in
 * SCHED_IDLE"). That class is safe only in a scheduling group of the
 * daemon's own, where it competes with the daemon's other threads alone
 * and the group keeps its weight against others (while those threads are
 * idle: a group's weight is spread over CPUs by their load); in a group
 * shared with a busy program, each request waits for that program's time
 * slices (untar 48 s against 2.6 s, with two busy loops in the daemon's
 * session). */
#ifndef UM_NICE_H
#define UM_NICE_H

#include <stdbool.h>
#include <stdio.h>

/* Give the calling thread, and every thread it creates afterwards, nice
 * value nice; and when this process leads its own session (after
 * fuse_daemonize(), or started by setsid or a service manager), the
 * session's autogroup the same, as that is what the scheduler weighs
 * against other sessions. 0 changes nothing. Either may be refused (no
 * CAP_SYS_NICE, no autogroups): logged, at warning level when the value
 * was asked for (explicit), and the daemon runs on unchanged. */
void um_nice_setup(int nice, bool explicit);

/* Is this process a scheduling group of its own: the autogroup of the
 * session it leads and no other process is in, in effect (autogroups on,
 * the initial cgroup namespace, no cpu cgroup below the root holding it)?
 * A cpu cgroup of its own would do as well, but that it holds nothing
 * else is not checked: false there, and wherever something cannot be
 * read. Decided once, at mount: nothing changes it afterwards. */
bool um_sched_own_group(void);

/* Its cgroup part: does f, read as /proc/self/cgroup, put the process in
 * the root cpu cgroup, the only one where autogroups count? Lines are
 * ID:CONTROLLERS:PATH; cgroup v1's cpu controller has a line of its own,
 * v2's is "0::PATH", checked against the hierarchy mounted on v2_root
 * (no cpu controller enabled from PATH up to the root). False when
 * unsure. */
bool um_sched_root_cpu_cgroup(FILE *f, const char *v2_root);

#endif
