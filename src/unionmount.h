/* The shared core: the mounted filesystem and its layers.
 *
 * Layer numbers are part of the on-disk contract (st_ino, later markers):
 * layer 0 is the upper branch (absent for a read-only union), layers
 * 1..n_lower are the lowerdirs, top-most first, in the order given.
 *
 * Lock order: an inode's lock before the inode table's shard lock; a
 * parent's inode lock before a child's. Nothing is held across a reply.
 */
#ifndef UM_UNIONMOUNT_H
#define UM_UNIONMOUNT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* How listings answer the kernel (-o readdirplus=). */
enum um_rdplus { UM_RDPLUS_ADAPTIVE, UM_RDPLUS_AUTO, UM_RDPLUS_ALWAYS, UM_RDPLUS_NEVER };
#define UM_RDPLUS_DEFAULT UM_RDPLUS_ADAPTIVE

/* Most threads serving requests: the session loop's (main.c), or the
 * io_uring workers (uring.h). Requests block in syscalls on the
 * branches, so there are more than CPUs. */
#define UM_THREADS 16

/* Which open files the kernel reads and writes itself (-o passthrough=,
 * passthrough.h). */
enum um_passthrough { UM_PASSTHROUGH_OFF, UM_PASSTHROUGH_AUTO, UM_PASSTHROUGH_ALL };

struct um_ftstore;
struct um_inode;
struct um_itable;
struct um_file;
struct um_pt;

struct um_layer {
	int fd;       /* branch root, O_RDONLY|O_DIRECTORY; -1 for an absent upper */
	dev_t dev;
	bool submounts; /* another filesystem is mounted somewhere inside it */
	/* Its directories' fds may be closed and reopened by handle
	 * (dirfds.c); mnt_id: the mount handles must come from. Set before
	 * the session starts. */
	bool reopenable;
	int mnt_id;
	char *path;   /* for messages only: never used to reach the branch */
};

struct fuse_session;

struct um_fs {
	struct um_layer *layers; /* [0] upper, [1..n_layers-1] lowers */
	unsigned n_layers;
	bool has_upper;
	bool readonly;           /* no upper, or -o ro */
	int work_fd;             /* WORKDIR/unionmount/work; -1 without upper */
	int index_fd;            /* WORKDIR/unionmount/index; -1 without upper */
	/* WORKDIR/unionmount/whiteout; -1 without upper, or until the first
	 * whiteout makes it (namespace.c, under wh_lock) */
	_Atomic int wh_fd;
	pthread_mutex_t wh_lock;
	int workdir_lock_fd;     /* WORKDIR/unionmount, flock()ed: see copyup/workdir.c */
	double timeout;          /* kernel entry/attr/negative cache lifetime */
	const char *mountpoint;  /* absolute (the configuration's string) */
	/* fallthru=on: the first listing of a merged directory writes its
	 * fallthrus (readdir/fill.c). Off, or read-only: merged in memory. */
	bool fallthru;
	enum um_rdplus readdirplus; /* -o readdirplus=, applied at INIT (ops.c) */
	/* readdirplus=adaptive: who gets files' attributes (readdir/rdplus.h);
	 * NULL otherwise */
	struct um_rdplus_state *rdplus;
	/* The kernel sends no OPENDIR/RELEASEDIR once told ENOSYS (set at
	 * INIT, before any request that reads it). */
	bool no_opendir;
	/* The kernel leaves clearing setuid/setgid on writes to us
	 * (HANDLE_KILLPRIV_V2, devio.c); set before INIT is answered. */
	atomic_bool killpriv_v2;
	/* The kernel took FUSE_PASSTHROUGH (devio.c; set before INIT is
	 * answered, so before any OPEN). pt: the open handles' kinds
	 * (passthrough.h), NULL with -o passthrough=off or without
	 * CAP_SYS_ADMIN (um_pt_permitted()); passthrough_all:
	 * lower files too. */
	atomic_bool passthrough;
	struct um_pt *pt;
	bool passthrough_all;
	/* -o uring=auto, multi-threaded: take FUSE over io_uring when the
	 * kernel offers it (devio.c, uring.h). */
	bool uring;
	/* ... its workers in SCHED_IDLE: uring_idle=auto and the daemon a
	 * scheduling group of its own (nice.h). Set before the session runs. */
	bool uring_idle;
	bool metacopy;           /* -o metacopy=on: metadata-only copy-up (copyup.h) */
	/* The upper's format version is at least UM_FORMAT_METACOPY (read at
	 * mount, raised by the first metadata-only copy-up; only ever set). */
	atomic_bool format_metacopy;
	/* Which lower stack complete marks hold for: a hash of the lowerdir
	 * paths (fs.c), so a changed stack reads as "not complete". */
	uint64_t stackid;
	struct um_ftstore *ft;   /* NULL without upper */
	struct um_inode *root;   /* pinned for the life of the mount */
	/* Serializes renames (see op_rename.c); guards no data of its own. */
	pthread_mutex_t rename_lock;
	struct um_itable *itable;
	/* For notifications to the kernel (ops.c); set before the session
	 * starts. */
	struct fuse_session *se;
	/* Every open file handle (op_file.c): those still open when the
	 * session ends get no RELEASE, and are freed with the mount.
	 * files_lock guards the list's links. */
	pthread_mutex_t files_lock;
	struct um_file *files;
};

#define UM_UPPER 0

#endif
