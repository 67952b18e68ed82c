/* SPDX-License-Identifier: BSD-3-Clause */
/* Error messages are per thread; log messages go to the handler, filtered by level. */
#include <errno.h>
#include <pthread.h>

#include "core/log_internal.h"
#include "test.h"

static char last[256];
static int calls;

static void handler(void *ctx, enum udrv_log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	snprintf(last, sizeof(last), "%s", msg);
	calls++;
}

static void *other_thread(void *arg)
{
	(void)arg;
	CHECK_STR(udrv_errmsg(), "");
	CHECK_EQ(udrv_err(EIO, "thread %d", 2), -EIO);
	CHECK_STR(udrv_errmsg(), "thread 2");
	return NULL;
}

static void test_errmsg(void)
{
	pthread_t t;

	CHECK_STR(udrv_errmsg(), "");
	CHECK_EQ(udrv_err(ENOENT, "no device %s", "x"), -ENOENT);
	CHECK_STR(udrv_errmsg(), "no device x");
	REQUIRE(pthread_create(&t, NULL, other_thread, NULL) == 0);
	pthread_join(t, NULL);
	CHECK_STR(udrv_errmsg(), "no device x");
	errno = 0;
	CHECK(udrv_err_null(EBUSY, "busy") == NULL);
	CHECK_EQ(errno, EBUSY);
	udrv_err_clear();
	CHECK_STR(udrv_errmsg(), "");
}

static void test_levels(void)
{
	udrv_log_set_handler(handler, NULL);
	udrv_log_set_level(UDRV_LOG_WARN);
	calls = 0;
	udrv_info("hidden");
	CHECK_EQ(calls, 0);
	udrv_warn("shown %d", 1);
	CHECK_EQ(calls, 1);
	CHECK_STR(last, "shown 1");
	udrv_log_set_level(UDRV_LOG_DEBUG);
	udrv_err(EINVAL, "debug copy");
	CHECK_STR(last, "debug copy");
	CHECK_EQ(udrv_log_get_level(), UDRV_LOG_DEBUG);
	udrv_log_set_handler(NULL, NULL);
}

int main(void)
{
	RUN(test_errmsg);
	RUN(test_levels);
	return test_done();
}
