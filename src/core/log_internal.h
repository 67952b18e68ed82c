/* SPDX-License-Identifier: BSD-3-Clause */
/* Internal logging and error-recording helpers shared by every libudrv layer. */
#ifndef UDRV_LOG_INTERNAL_H
#define UDRV_LOG_INTERNAL_H

#include <udrv/log.h>

#define UDRV_PRINTF(a, b) __attribute__((format(printf, a, b)))

void udrv_logf(enum udrv_log_level level, const char *fmt, ...) UDRV_PRINTF(2, 3);

/*
 * Record the calling thread's error message (see udrv_errmsg()), log it at debug level, and
 * return -err so that call sites read: return udrv_err(ENOENT, "no device %s", name);
 */
int udrv_err(int err, const char *fmt, ...) UDRV_PRINTF(2, 3);

/* Like udrv_err() but also sets errno, for functions returning a pointer; returns NULL. */
void *udrv_err_null(int err, const char *fmt, ...) UDRV_PRINTF(2, 3);

/* Clear the calling thread's error message. */
void udrv_err_clear(void);

#define udrv_warn(...)	udrv_logf(UDRV_LOG_WARN, __VA_ARGS__)
#define udrv_info(...)	udrv_logf(UDRV_LOG_INFO, __VA_ARGS__)
#define udrv_debug(...) udrv_logf(UDRV_LOG_DEBUG, __VA_ARGS__)

#endif
