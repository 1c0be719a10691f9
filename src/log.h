/* Logging: stderr while in the foreground, syslog once daemonized.
 * Modules below the FUSE handlers log only at debug level; handlers and
 * main.c log once per failure, naming the operation. */
#ifndef UM_LOG_H
#define UM_LOG_H

#include <stdbool.h>

enum um_log_level {
	UM_LOG_ERR,
	UM_LOG_WARN,
	UM_LOG_INFO,
	UM_LOG_DEBUG,
};

/* Called once from main before threads start. */
void um_log_setup(const char *mountpoint, bool debug);
/* Switch to syslog (after fuse_daemonize detached from the terminal). */
void um_log_to_syslog(void);
bool um_log_debug_enabled(void);
/* Send libfuse's messages through um_log too. */
void um_log_capture_fuse(void);
void um_log(enum um_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define um_debug(...)                                    \
	do {                                             \
		if (um_log_debug_enabled())              \
			um_log(UM_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
