/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv/log.h - diagnostics: the reason behind the last error, and log routing.
 *
 * Every libudrv function that fails returns a negative errno (or NULL with errno set) and
 * records one human-readable sentence saying what went wrong and, where a user can fix it,
 * the command that fixes it. udrv_errmsg() returns that sentence for the calling thread.
 *
 * Library code never writes to stdout. Warnings (for example "device opened without an
 * IOMMU") go to the log handler, which by default writes them to stderr.
 */
#ifndef UDRV_LOG_H
#define UDRV_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum udrv_log_level {
	UDRV_LOG_ERR = 0,
	UDRV_LOG_WARN = 1,
	UDRV_LOG_INFO = 2,
	UDRV_LOG_DEBUG = 3,
};

/*
 * Log handler: called with a complete message (no trailing newline). May be called from any
 * thread that calls into libudrv, concurrently; it must be thread-safe and must not call
 * back into libudrv.
 */
typedef void (*udrv_log_fn)(void *ctx, enum udrv_log_level level, const char *msg);

/*
 * Route log messages to fn (NULL restores the default, which writes to stderr).
 * Thread: call before other threads use libudrv; not synchronised against concurrent logging.
 */
void udrv_log_set_handler(udrv_log_fn fn, void *ctx);

/*
 * Messages above level are dropped. Default: UDRV_LOG_WARN, or the value of the environment
 * variable UDRV_LOG (err|warn|info|debug) read at the first log call.
 */
void udrv_log_set_level(enum udrv_log_level level);
enum udrv_log_level udrv_log_get_level(void);

/*
 * The reason for the most recent failure of a libudrv call on this thread, as one sentence;
 * "" when none was recorded. Valid until the next libudrv call on this thread.
 */
const char *udrv_errmsg(void);

#ifdef __cplusplus
}
#endif
#endif
