/* The parts of the FUSE protocol (linux/fuse.h 7.40) that Debian 12's
 * header lacks: passthrough. Used by devio.c and passthrough.c, and by
 * bench/floor.c, which must ask the kernel for what the daemon asks. */
#ifndef UM_FUSE_PROTO_H
#define UM_FUSE_PROTO_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

/* FUSE_PASSTHROUGH is bit 37 of INIT's flags, so bit 5 of flags2. */
#define UM_FUSE_PASSTHROUGH_FLAGS2 (1u << 5)
/* In an OPEN/CREATE reply's open_flags; the backing id is the padding of
 * 7.39's fuse_open_out. */
#define UM_FOPEN_PASSTHROUGH (1u << 7)
/* The INIT reply's max_stack_depth follows flags2. */
#define UM_INIT_OUT_STACK_DEPTH (offsetof(struct fuse_init_out, flags2) + sizeof(uint32_t))

struct um_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define UM_DEV_IOC_BACKING_OPEN _IOW(229, 1, struct um_backing_map)
#define UM_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

#endif
