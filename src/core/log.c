/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log_internal.h"

#define MSG_MAX 512

static _Thread_local char errmsg[MSG_MAX];
static udrv_log_fn log_fn;
static void *log_ctx;
/* -1: not yet read from the environment. */
static _Atomic int log_level = -1;

static void default_handler(void *ctx, enum udrv_log_level level, const char *msg)
{
	static const char *const prefix[] = {"error", "warning", "info", "debug"};

	(void)ctx;
	fprintf(stderr, "udrv: %s: %s\n", prefix[level], msg);
}

void udrv_log_set_handler(udrv_log_fn fn, void *ctx)
{
	log_fn = fn;
	log_ctx = ctx;
}

void udrv_log_set_level(enum udrv_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum udrv_log_level udrv_log_get_level(void)
{
	int lvl = atomic_load_explicit(&log_level, memory_order_relaxed);
	const char *env;

	if (lvl >= 0)
		return (enum udrv_log_level)lvl;
	lvl = UDRV_LOG_WARN;
	env = getenv("UDRV_LOG");
	if (env) {
		static const char *const names[] = {"err", "warn", "info", "debug"};
		for (int i = 0; i < 4; i++)
			if (strcasecmp(env, names[i]) == 0)
				lvl = i;
	}
	atomic_store(&log_level, lvl);
	return (enum udrv_log_level)lvl;
}

static void vlog(enum udrv_log_level level, const char *fmt, va_list ap)
{
	char msg[MSG_MAX];

	if ((int)level > (int)udrv_log_get_level())
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	(log_fn ? log_fn : default_handler)(log_ctx, level, msg);
}

void udrv_logf(enum udrv_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

static void record(const char *fmt, va_list ap)
{
	va_list copy;

	va_copy(copy, ap);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	vlog(UDRV_LOG_DEBUG, fmt, copy);
	va_end(copy);
}

int udrv_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(fmt, ap);
	va_end(ap);
	return -err;
}

void *udrv_err_null(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(fmt, ap);
	va_end(ap);
	errno = err;
	return NULL;
}

void udrv_err_clear(void)
{
	errmsg[0] = '\0';
}

const char *udrv_errmsg(void)
{
	return errmsg;
}
