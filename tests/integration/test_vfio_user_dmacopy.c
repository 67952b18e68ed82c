/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sample driver against the sample device in another process, over vfio-user: data
 * checked byte for byte, bad descriptors answered with an error status (never a crash),
 * reconnects, and a server killed in the middle of a run making the driver fail with -ENODEV
 * promptly instead of hanging.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <udrv/log.h>

#include "dmacopy.h"
#include "dmacopy_regs.h"
#include "test.h"

static char sock[64]; /* the server's socket path */
static char name[80]; /* the device name the driver opens: "vfio-user:" + sock */
static pid_t server;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void stop_server(int sig);

static void kill_server_at_exit(void)
{
	stop_server(SIGKILL);
}

static void start_server(void)
{
	struct stat st;

	server = fork();
	REQUIRE(server >= 0);
	if (server == 0) {
		/* Never outlive the test: an orphan would hold CTest's output pipe open. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(DMACOPY_EMU, DMACOPY_EMU, "--socket", sock, (char *)NULL);
		_exit(127);
	}
	atexit(kill_server_at_exit);
	/* Generous: under sanitizers on a loaded 2-core machine start-up takes a while. */
	for (int i = 0; i < 3000 && stat(sock, &st) != 0; i++)
		usleep(10000);
	REQUIRE(stat(sock, &st) == 0);
}

static void stop_server(int sig)
{
	int status;

	if (server <= 0)
		return;
	kill(server, sig);
	waitpid(server, &status, 0);
	server = 0;
}

/* Copy count buffers of size bytes, each with its own pattern, and check every byte. */
static int copy_and_check(struct dmacopy *dc, unsigned count, unsigned size)
{
	struct udrv_dma_domain *dom = dmacopy_domain(dc);
	uint64_t s_iova, d_iova;
	uint8_t *src = udrv_dma_zalloc(dom, (size_t)size * 8, 4096, &s_iova);
	uint8_t *dst = udrv_dma_zalloc(dom, (size_t)size * 8, 4096, &d_iova);
	unsigned done = 0, bad = 0, sent = 0;
	struct dmacopy_done d[8];
	double deadline = now() + 30;

	REQUIRE(src && dst);
	while (done < count && now() < deadline) {
		while (sent < count && sent - done < 8) {
			unsigned slot = sent % 8;
			for (unsigned k = 0; k < size; k++)
				src[slot * size + k] = (uint8_t)(sent * 7 + k);
			memset(dst + slot * size, 0, size);
			if (dmacopy_submit(dc, s_iova + slot * size, d_iova + slot * size, size,
					   (uint16_t)slot) < 0)
				break;
			sent++;
		}
		int n = dmacopy_poll(dc, d, 8);
		REQUIRE(n >= 0);
		for (int i = 0; i < n; i++, done++) {
			unsigned slot = d[i].tag;
			if (d[i].status != DMACOPY_SC_OK || slot != done % 8 ||
			    memcmp(src + slot * size, dst + slot * size, size) != 0)
				bad++;
		}
		if (n == 0)
			dmacopy_wait(dc, 10);
	}
	udrv_dma_free(dom, src);
	udrv_dma_free(dom, dst);
	CHECK_EQ(done, count);
	return (int)bad;
}

static void test_copies(void)
{
	struct dmacopy *dc;

	REQUIRE(dmacopy_open(name, 64, &dc) == 0);
	CHECK_EQ(copy_and_check(dc, 2000, 4096), 0);
	CHECK_EQ(copy_and_check(dc, 50, 1), 0);
	CHECK_EQ(copy_and_check(dc, 20, 1 << 20), 0);
	CHECK_EQ(copy_and_check(dc, 300, 1000), 0); /* not page-aligned sizes */
	CHECK_EQ(dmacopy_bogus(dc), 0);
	CHECK_EQ(dmacopy_check(dc), 0);
	dmacopy_close(dc);
}

/* Descriptors pointing outside what the driver mapped get an error status; the device never
 * touches that memory and keeps working. */
static void test_bad_descriptors(void)
{
	struct dmacopy *dc;
	struct dmacopy_done d[4];
	uint64_t iova;
	uint8_t *buf;
	int got = 0;

	REQUIRE(dmacopy_open(name, 16, &dc) == 0);
	buf = udrv_dma_zalloc(dmacopy_domain(dc), 8192, 4096, &iova);
	REQUIRE(buf);
	CHECK_EQ(dmacopy_submit(dc, 0xdead0000000ull, iova, 64, 1), 0);	   /* unmapped src */
	CHECK_EQ(dmacopy_submit(dc, iova, iova + (1ull << 40), 64, 2), 0); /* unmapped dst */
	CHECK_EQ(dmacopy_submit(dc, iova, iova + 4096, 0, 3), 0);	   /* zero length */
	CHECK_EQ(dmacopy_submit(dc, iova, iova + 4096, 64, 4), 0);	   /* fine */
	for (double end = now() + 10; got < 4 && now() < end;) {
		int n = dmacopy_poll(dc, d + got, (unsigned)(4 - got));
		REQUIRE(n >= 0);
		got += n;
		if (!n)
			dmacopy_wait(dc, 10);
	}
	REQUIRE(got == 4);
	CHECK(d[0].tag == 1 && d[0].status == DMACOPY_SC_BAD_ADDRESS);
	CHECK(d[1].tag == 2 && d[1].status == DMACOPY_SC_BAD_ADDRESS);
	CHECK(d[2].tag == 3 && d[2].status == DMACOPY_SC_BAD_LENGTH);
	CHECK(d[3].tag == 4 && d[3].status == DMACOPY_SC_OK);
	CHECK_EQ(dmacopy_check(dc), 0);
	udrv_dma_free(dmacopy_domain(dc), buf);
	dmacopy_close(dc);
}

/* The server keeps running across clients: close, reopen at once, copy again. A reopen right
 * after a close once raced the server noticing the old client's EOF. */
static void test_reconnect(void)
{
	for (int i = 0; i < 20; i++) {
		struct dmacopy *dc;
		REQUIRE(dmacopy_open(name, 32, &dc) == 0);
		CHECK_EQ(copy_and_check(dc, 20, 512), 0);
		dmacopy_close(dc);
	}
}

/* kill -9 the server mid-run: the driver notices within the request timeout, gets -ENODEV,
 * and closes cleanly; its memory is untouched afterwards. */
static void test_server_killed(void)
{
	struct dmacopy *dc;
	struct dmacopy_done d[64];
	uint64_t iova;
	uint8_t *buf;
	double t0;
	int rc = 0;

	REQUIRE(dmacopy_open(name, 256, &dc) == 0);
	buf = udrv_dma_zalloc(dmacopy_domain(dc), 1 << 20, 4096, &iova);
	REQUIRE(buf);
	for (unsigned i = 0; i < 200; i++)
		dmacopy_submit(dc, iova, iova + (512 << 10), 256 << 10, (uint16_t)i);
	stop_server(SIGKILL);
	t0 = now();
	while (now() - t0 < 20) {
		int n = dmacopy_poll(dc, d, 64);
		if (n < 0)
			break;
		if (n == 0) {
			rc = dmacopy_check(dc);
			if (rc < 0)
				break;
		}
	}
	CHECK_EQ(rc, -ENODEV);
	CHECK(now() - t0 < 15);
	fprintf(stderr, "server killed: driver saw -ENODEV after %.2f s: %s\n", now() - t0,
		udrv_errmsg());
	dmacopy_close(dc); /* must not hang or crash with the peer gone */
	/* And a new open says there is no server. */
	CHECK(dmacopy_open(name, 16, &dc) < 0);
}

int main(void)
{
	udrv_log_set_level(UDRV_LOG_ERR);
	signal(SIGPIPE, SIG_IGN);
	setenv("UDRV_VFIO_USER_TIMEOUT_MS", "2000", 0);
	snprintf(sock, sizeof(sock), "/tmp/udrv-dmacopy-%d.sock", (int)getpid());
	snprintf(name, sizeof(name), "vfio-user:%s", sock);
	start_server();
	RUN(test_copies);
	RUN(test_bad_descriptors);
	RUN(test_reconnect);
	RUN(test_server_killed);
	stop_server(SIGTERM);
	unlink(sock);
	return test_done();
}
