/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SIGBUS guard of mapped regions (src/bus/bar_guard.c). A mapping of a memfd that is
 * then truncated faults with SIGBUS on access, as a BAR mapping vfio-pci revoked does: the
 * guarded access must complete with all ones, the slot report the hit, and faults outside
 * guarded regions still reach the previous handler.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bus/device_internal.h"
#include "test.h"

static volatile uint32_t sink;
static sigjmp_buf jb;
static volatile int prev_calls;

static void prev_handler(int sig)
{
	(void)sig;
	prev_calls++;
	siglongjmp(jb, 1);
}

static void *revoked_mapping(size_t len, int *fd)
{
	void *p;

	*fd = memfd_create("bar", MFD_CLOEXEC);
	REQUIRE(*fd >= 0 && ftruncate(*fd, (off_t)len) == 0);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	REQUIRE(p != MAP_FAILED);
	((volatile uint32_t *)p)[0] = 7;
	REQUIRE(ftruncate(*fd, 0) == 0); /* every later access faults with SIGBUS */
	return p;
}

static void test_guarded_access_survives(void)
{
	int fd, slot;
	volatile uint32_t *bar = revoked_mapping(16384, &fd);

	slot = udrv_bar_guard_add((void *)bar, 16384);
	REQUIRE(slot >= 0);
	CHECK(!udrv_bar_guard_hit(slot));
	sink = bar[0x1c / 4]; /* a register read on a removed device */
	CHECK_EQ(sink, 0xffffffffu);
	CHECK(udrv_bar_guard_hit(slot));
	bar[0x1000 / 4] = 1; /* a doorbell write on another page: also survives */
	CHECK_EQ(bar[0x1000 / 4], 1);
	udrv_bar_guard_remove(slot);
	munmap((void *)bar, 16384);
	close(fd);
}

static void test_other_faults_reach_previous_handler(void)
{
	int fd;
	volatile uint32_t *p;

	/* Not in a guarded region: the application's handler, installed before udrv's. */
	p = revoked_mapping(4096, &fd);
	if (sigsetjmp(jb, 1) == 0)
		sink = p[0];
	CHECK_EQ(prev_calls, 1);
	munmap((void *)p, 4096);
	close(fd);
}

int main(void)
{
	struct sigaction sa = {0};

	sa.sa_handler = prev_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL); /* the application's own handler, before udrv's */
	RUN(test_guarded_access_survives);
	RUN(test_other_faults_reach_previous_handler);
	return test_done();
}
