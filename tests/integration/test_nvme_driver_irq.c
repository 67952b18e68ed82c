/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NVMe driver with UDRV_NVME_INTERRUPTS: each queue pair's MSI-X vector reaches its
 * eventfd, so a thread can sleep in poll() until its completions arrive instead of spinning.
 */
#include <poll.h>
#include <stdint.h>
#include <unistd.h>

#include "nvme_drv_test.h"

static struct drv_emu emu;
static int calls;

static void count_cb(void *arg, const struct udrv_nvme_cpl *cpl)
{
	CHECK_EQ(cpl->rc, 0);
	(*(int *)arg)++;
}

/* A held completion (latency fault) wakes the sleeping thread through the eventfd. */
static void test_sleep_until_completion(void)
{
	struct udrv_nvme_opts o = {.flags = UDRV_NVME_INTERRUPTS, .io_queues = 2};
	struct udrv_nvme_ctrlr *c = drv_open_opts(&emu, &o);
	struct udrv_nvme_qpair *q1 = udrv_nvme_qpair_create(c, 0);
	struct udrv_nvme_qpair *q2 = udrv_nvme_qpair_create(c, 0);
	uint8_t *buf = udrv_nvme_dma_alloc(c, 4096);
	int fd1, fd2;

	REQUIRE(q1 && q2 && buf);
	fd1 = udrv_nvme_qpair_eventfd(q1);
	fd2 = udrv_nvme_qpair_eventfd(q2);
	CHECK(fd1 >= 0 && fd2 >= 0 && fd1 != fd2);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=30ms"), 0);
	for (int i = 0; i < 5; i++) {
		struct pollfd p[2] = {{.fd = fd1, .events = POLLIN}, {.fd = fd2, .events = POLLIN}};
		uint64_t v;
		int before = calls;

		REQUIRE(udrv_nvme_read(q1, 1, buf, (uint64_t)i * 8, 8, count_cb, &calls) == 0);
		/* Nothing yet: the completion is held for 30 ms. */
		CHECK_EQ(udrv_nvme_process_completions(q1, 0), 0);
		CHECK_EQ(poll(p, 2, 5000), 1);
		CHECK(p[0].revents & POLLIN);	 /* q1's vector ... */
		CHECK(!(p[1].revents & POLLIN)); /* ... and not q2's */
		CHECK_EQ(read(fd1, &v, sizeof(v)), (ssize_t)sizeof(v));
		CHECK_EQ(udrv_nvme_process_completions(q1, 0), 1);
		CHECK_EQ(calls, before + 1);
	}
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "clear"), 0);
	udrv_nvme_close(c);
}

/* Without the flag there is no eventfd: polling only. */
static void test_polling_default(void)
{
	struct udrv_nvme_ctrlr *c = drv_open(&emu, 1, 0);
	struct udrv_nvme_qpair *q = udrv_nvme_qpair_create(c, 0);

	REQUIRE(q);
	CHECK_EQ(udrv_nvme_qpair_eventfd(q), -1);
	udrv_nvme_close(c);
}

int main(void)
{
	udrv_log_set_level(UDRV_LOG_ERR);
	drv_emu_up(&emu, (struct udrv_emu_nvme_opts){.size = 64 << 20, .queues = 4});
	RUN(test_sleep_until_completion);
	RUN(test_polling_default);
	drv_emu_down(&emu);
	return test_done();
}
