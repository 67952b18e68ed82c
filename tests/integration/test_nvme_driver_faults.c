/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NVMe driver against every fault the emulated controller can inject (udrv_emu_nvme_
 * inject()): each ends in a clean error or a transparent recovery, never a hang or a
 * crash, and every submitted command calls back exactly once. Timeouts are short
 * (udrv_nvme_opts.timeout_ms 300 ms unless a test needs other timing) so that the file
 * runs in seconds. Last, `udrv emu nvme` as a process of its own, killed with SIGKILL while
 * commands are outstanding.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <udrv/dma.h>
#include <udrv/nvme.h>

#include "nvme_drv_test.h"

#define TIMEOUT_MS 300
#define QUEUES	   4
#define NREQ	   16

static struct drv_emu emu;

/* One driver on the emulator: a queue pair, 1 MiB of DMA memory, the counters at start. */
struct fx {
	struct udrv_nvme_ctrlr *c;
	struct udrv_nvme_qpair *qp;
	uint8_t *buf;
	struct udrv_nvme_stats st0;
	struct udrv_emu_nvme_stats es0;
};

static void fx_open(struct fx *f, unsigned timeout_ms)
{
	f->c = drv_open(&emu, QUEUES, timeout_ms);
	f->qp = drv_qpair(f->c, 32);
	f->buf = udrv_nvme_dma_alloc(f->c, 1u << 20);
	REQUIRE(f->buf);
	udrv_nvme_stats(f->c, &f->st0);
	REQUIRE(udrv_emu_nvme_stats(emu.e, &f->es0) == 0);
}

static void fx_close(struct fx *f)
{
	double t0 = nh_now();

	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "clear"), 0);
	udrv_nvme_close(f->c); /* the queue pairs and the buffer with it */
	CHECK(nh_now() - t0 < 3);
}

/* Counter changes since fx_open. */
static struct udrv_nvme_stats fx_delta(struct fx *f)
{
	struct udrv_nvme_stats s;

	udrv_nvme_stats(f->c, &s);
	s.bad_cqes -= f->st0.bad_cqes;
	s.timeouts -= f->st0.timeouts;
	s.aborts -= f->st0.aborts;
	s.resets -= f->st0.resets;
	s.resubmits -= f->st0.resubmits;
	return s;
}

static uint64_t fired_delta(struct fx *f)
{
	struct udrv_emu_nvme_stats s;

	udrv_emu_nvme_stats(emu.e, &s);
	return s.faults_fired - f->es0.faults_fired;
}

static void show(struct fx *f, const char *what)
{
	struct udrv_nvme_stats d = fx_delta(f);

	fprintf(stderr,
		"  %s: bad_cqes %llu timeouts %llu aborts %llu resets %llu resubmits %llu, "
		"faults fired %llu\n",
		what, (unsigned long long)d.bad_cqes, (unsigned long long)d.timeouts,
		(unsigned long long)d.aborts, (unsigned long long)d.resets,
		(unsigned long long)d.resubmits, (unsigned long long)fired_delta(f));
}

/* Write then read back a few blocks on a queue pair: I/O works. */
static void io_works(struct fx *f, struct udrv_nvme_qpair *qp, uint64_t lba)
{
	static uint32_t ver = 1000;
	uint32_t v = ++ver;
	uint8_t *w = f->buf + 512 * 1024, *r = w + 64 * 1024;

	drv_fill(w, 512, 9, lba, 16, v);
	CHECK_EQ(drv_write(qp, 1, w, lba, 16), 0);
	memset(r, 0, 16 * 512);
	CHECK_EQ(drv_read(qp, 1, r, lba, 16), 0);
	CHECK_EQ(drv_verify(r, 512, 9, lba, 16, v), -1);
}

/* Submit n one-block reads of lba + i into buf + 4096 i. */
static void reads(struct fx *f, struct udrv_nvme_qpair *qp, struct drv_req *r, unsigned n,
		  uint64_t lba)
{
	for (unsigned i = 0; i < n; i++) {
		r[i] = (struct drv_req){0};
		CHECK_EQ(udrv_nvme_read(qp, 1, f->buf + 4096 * i, lba + i, 1, drv_req_cb, &r[i]),
			 0);
	}
}

static unsigned count_rc(const struct drv_req *r, unsigned n, int rc)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++)
		k += r[i].calls && r[i].rc == rc;
	return k;
}

/* Wait for the emulator to act on a one-shot fault (fatal, hang, remove). */
static void wait_fired(struct fx *f, uint64_t want)
{
	for (double end = nh_now() + 2; fired_delta(f) < want && nh_now() < end;)
		nh_sleep_ms(1);
	CHECK(fired_delta(f) >= want);
}

/* ---- latency ---- */

static void test_latency_below_timeout(void)
{
	struct fx f;
	struct drv_req r[NREQ];
	double t0, took;

	fx_open(&f, TIMEOUT_MS);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=100ms"), 0);
	t0 = nh_now();
	reads(&f, f.qp, r, 12, 0);
	drv_wait(f.qp, r, 12, DRV_WAIT_S);
	took = nh_now() - t0;
	drv_settle(&f.qp, 1, 50);
	CHECK(drv_once(r, 12, "latency 100ms"));
	CHECK_EQ(count_rc(r, 12, 0), 12);
	CHECK(took >= 0.100);
	CHECK(took < 1.0); /* (the point is that none timed out: counted below) */
	CHECK_EQ(fx_delta(&f).timeouts, 0);
	CHECK_EQ(fx_delta(&f).aborts, 0);
	/* Sync commands just take longer. */
	t0 = nh_now();
	io_works(&f, f.qp, 100);
	CHECK(nh_now() - t0 >= 0.2);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=0"), 0);
	io_works(&f, f.qp, 100);
	CHECK_EQ(fx_delta(&f).resets, 0);
	fx_close(&f);
}

/* Held past the timeout: each command is aborted, completes -ETIMEDOUT, no reset. */
static void test_latency_above_timeout(void)
{
	struct fx f;
	struct drv_req r[NREQ];
	struct udrv_nvme_stats d;
	double t0, took;

	fx_open(&f, TIMEOUT_MS);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=2s"), 0);
	t0 = nh_now();
	reads(&f, f.qp, r, 4, 0);
	drv_wait(f.qp, r, 4, DRV_WAIT_S);
	took = nh_now() - t0;
	drv_settle(&f.qp, 1, 100);
	CHECK(drv_once(r, 4, "latency 2s"));
	CHECK_EQ(count_rc(r, 4, -ETIMEDOUT), 4);
	CHECK(took >= TIMEOUT_MS / 1000.0);
	CHECK(took < 1.5); /* aborted, not waited for */
	d = fx_delta(&f);
	show(&f, "latency 2s");
	CHECK_EQ(d.timeouts, 4);
	CHECK_EQ(d.aborts, 4);
	CHECK_EQ(d.resets, 0);
	CHECK_EQ(d.resubmits, 0);
	for (unsigned i = 0; i < 4; i++)
		if (r[i].calls)
			fprintf(stderr, "  aborted command %u: status %#x (%s)\n", i, r[i].status,
				udrv_nvme_status_str(r[i].status));
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=0"), 0);
	io_works(&f, f.qp, 200);
	CHECK_EQ(fx_delta(&f).resets, 0);
	fx_close(&f);
}

/* ---- lost completions ---- */

/*
 * drop=1 on a write A; 300 ms later B (write) and C (read) on qp1 and D (read) on qp2,
 * held 450 ms by latency. At 600 ms A times out; Abort finds nothing (A's completion is
 * gone, not held) and the controller is reset, taking B, C, D's held completions with it:
 * A fails -ETIMEDOUT, B, C, D are submitted again (qp2 when next polled) and succeed.
 */
static void test_drop(void)
{
	struct fx f;
	struct udrv_nvme_qpair *qp2;
	struct drv_req r[4] = {{0}};
	struct udrv_nvme_stats d;
	uint8_t *a, *b, *c, *dd;

	fx_open(&f, 600);
	qp2 = drv_qpair(f.c, 8);
	a = f.buf;
	b = f.buf + 8192;
	c = f.buf + 16384;
	dd = f.buf + 24576;
	drv_fill(c, 512, 5, 30, 1, 1);
	CHECK_EQ(drv_write(f.qp, 1, c, 30, 1), 0);
	memset(c, 0, 512);
	drv_fill(a, 512, 5, 10, 1, 2);
	drv_fill(b, 512, 5, 20, 1, 3);

	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "drop=1,latency=450ms"), 0);
	CHECK_EQ(udrv_nvme_write(f.qp, 1, a, 10, 1, drv_req_cb, &r[0]), 0);
	{
		struct udrv_nvme_qpair *both[2] = {f.qp, qp2};

		drv_settle(both, 2, 300);
		CHECK_EQ(r[0].calls, 0);
		CHECK_EQ(udrv_nvme_write(f.qp, 1, b, 20, 1, drv_req_cb, &r[1]), 0);
		CHECK_EQ(udrv_nvme_read(f.qp, 1, c, 30, 1, drv_req_cb, &r[2]), 0);
		CHECK_EQ(udrv_nvme_read(qp2, 1, dd, 30, 1, drv_req_cb, &r[3]), 0);
		CHECK_EQ(udrv_nvme_qpair_outstanding(f.qp), 3);
		long reaped = 0;

		drv_wait_qps(both, 2, r, 4, DRV_WAIT_S, &reaped);
		drv_settle(both, 2, 100);
		/* "Returns the number of commands completed": the timed-out one included. */
		if (reaped != 4)
			fprintf(stderr, "  process_completions() counted %ld of 4 completions\n",
				reaped);
		CHECK_EQ(reaped, 4);
	}
	CHECK(drv_once(r, 4, "drop"));
	CHECK_EQ(r[0].rc, -ETIMEDOUT);
	CHECK_EQ(r[1].rc, 0);
	CHECK_EQ(r[2].rc, 0);
	CHECK_EQ(r[3].rc, 0);
	CHECK_EQ(drv_verify(c, 512, 5, 30, 1, 1), -1);
	CHECK_EQ(drv_verify(dd, 512, 5, 30, 1, 1), -1);
	d = fx_delta(&f);
	show(&f, "drop + held");
	CHECK_EQ(d.timeouts, 1);
	CHECK_EQ(d.aborts, 1);
	CHECK_EQ(d.resets, 1);
	CHECK_EQ(d.resubmits, 3);
	CHECK_EQ(udrv_nvme_qpair_outstanding(f.qp), 0);
	CHECK_EQ(udrv_nvme_qpair_outstanding(qp2), 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=0"), 0);
	/* The dropped write executed (its completion was lost); B was written. */
	memset(a, 0, 512);
	CHECK_EQ(drv_read(f.qp, 1, a, 10, 1), 0);
	CHECK_EQ(drv_verify(a, 512, 5, 10, 1, 2), -1);
	CHECK_EQ(drv_read(qp2, 1, b, 20, 1), 0);
	CHECK_EQ(drv_verify(b, 512, 5, 20, 1, 3), -1);
	io_works(&f, f.qp, 300);
	io_works(&f, qp2, 400);

	/* Three lost at once: the first to time out fails, the reset resubmits the others,
	 * which complete (the fault's count is spent). */
	{
		struct drv_req r3[3];
		double t0 = nh_now();

		CHECK_EQ(udrv_emu_nvme_inject(emu.e, "drop=3"), 0);
		reads(&f, f.qp, r3, 3, 0);
		drv_wait(f.qp, r3, 3, DRV_WAIT_S);
		drv_settle(&f.qp, 1, 50);
		CHECK(drv_once(r3, 3, "drop=3"));
		CHECK_EQ(count_rc(r3, 3, -ETIMEDOUT), 1);
		CHECK_EQ(count_rc(r3, 3, 0), 2);
		CHECK(nh_now() - t0 < 3);
		show(&f, "drop=3");
		CHECK_EQ(fx_delta(&f).resets, 2);
	}
	/* A new queue pair after the resets. */
	udrv_nvme_qpair_destroy(qp2);
	qp2 = drv_qpair(f.c, 8);
	io_works(&f, qp2, 500);
	fx_close(&f);
}

static void test_error_status(void)
{
	struct fx f;
	struct drv_req r[NREQ];
	uint16_t st;

	fx_open(&f, TIMEOUT_MS);
	drv_fill(f.buf, 512, 6, 40, 1, 1);
	CHECK_EQ(drv_write(f.qp, 1, f.buf, 40, 1), 0);
	/* Two reads fail with Unrecovered Read Error and DNR, the third succeeds. */
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "error=2:0x4281"), 0);
	for (unsigned i = 0; i < 3; i++) {
		r[i] = (struct drv_req){0};
		CHECK_EQ(udrv_nvme_read(f.qp, 1, f.buf + 4096, 40, 1, drv_req_cb, &r[i]), 0);
		drv_wait(f.qp, &r[i], 1, DRV_WAIT_S);
		CHECK_EQ(r[i].calls, 1);
	}
	CHECK_EQ(r[0].rc, -EIO);
	CHECK_EQ(r[0].status, 0x4281);
	CHECK_EQ(r[1].rc, -EIO);
	CHECK_EQ(r[1].status, 0x4281);
	CHECK_STR(udrv_nvme_status_str(r[0].status), "Unrecovered Read Error");
	CHECK_EQ(r[2].rc, 0);
	CHECK_EQ(r[2].status, 0);
	CHECK_EQ(drv_verify(f.buf + 4096, 512, 6, 40, 1, 1), -1);
	/* The default status (Internal Error) on a write, which is then not executed. */
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "error"), 0);
	drv_fill(f.buf, 512, 6, 40, 1, 2);
	r[0] = (struct drv_req){0};
	CHECK_EQ(udrv_nvme_write(f.qp, 1, f.buf, 40, 1, drv_req_cb, &r[0]), 0);
	drv_wait(f.qp, r, 1, DRV_WAIT_S);
	CHECK_EQ(r[0].rc, -EIO);
	CHECK_EQ(r[0].status & DRV_SC_MASK, 0x006);
	CHECK_STR(udrv_nvme_status_str(r[0].status), "Internal Error");
	CHECK_EQ(drv_read(f.qp, 1, f.buf + 4096, 40, 1), 0);
	CHECK_EQ(drv_verify(f.buf + 4096, 512, 6, 40, 1, 1), -1);
	/* Three of eight outstanding at once fail, with Data Transfer Error; other kinds too. */
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "error=3:0x0004"), 0);
	reads(&f, f.qp, r, 8, 0);
	drv_wait(f.qp, r, 8, DRV_WAIT_S);
	drv_settle(&f.qp, 1, 20);
	CHECK(drv_once(r, 8, "error=3"));
	CHECK_EQ(count_rc(r, 8, -EIO), 3);
	CHECK_EQ(count_rc(r, 8, 0), 5);
	for (unsigned i = 0; i < 8; i++)
		if (r[i].rc == -EIO)
			CHECK_EQ(r[i].status, 0x0004);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "error=1:0x0280"), 0);
	CHECK_EQ(drv_flush(f.qp, 1), -EIO);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "error=1:0x0280"), 0);
	CHECK_EQ(drv_write_zeroes(f.qp, 1, 0, 8, false), -EIO);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "error=1:0x0285"), 0);
	CHECK_EQ(drv_compare(f.qp, 1, f.buf, 40, 1, &st), -EIO);
	CHECK_EQ(st, 0x0285);
	CHECK_EQ(fx_delta(&f).timeouts, 0);
	CHECK_EQ(fx_delta(&f).resets, 0);
	io_works(&f, f.qp, 600);
	fx_close(&f);
}

/* ---- bad completion entries ---- */

static struct udrv_nvme_qpair *chain_qp;
static struct drv_req chain_r[64];
static unsigned chain_next, chain_total;
static uint8_t *chain_buf;

/* Each completion submits the next read at once, so the slot just freed is taken again
 * while the duplicate of the completion may still be in the queue. */
static void chain_cb(void *arg, const struct udrv_nvme_cpl *cpl)
{
	drv_req_cb(arg, cpl);
	if (chain_next < chain_total) {
		unsigned i = chain_next++;

		if (udrv_nvme_read(chain_qp, 1, chain_buf + 4096 * (i % 16), i, 1, chain_cb,
				   &chain_r[i]) != 0)
			chain_r[i].calls = -100; /* a submit failure shows as a bad count */
	}
}

static void test_dup_cid(void)
{
	struct fx f;
	struct drv_req r[NREQ];
	struct udrv_nvme_stats d;

	fx_open(&f, TIMEOUT_MS);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "dup-cid=8"), 0);
	reads(&f, f.qp, r, 8, 0);
	drv_wait(f.qp, r, 8, DRV_WAIT_S);
	drv_settle(&f.qp, 1, 50);
	CHECK(drv_once(r, 8, "dup-cid"));
	CHECK_EQ(count_rc(r, 8, 0), 8);
	d = fx_delta(&f);
	show(&f, "dup-cid=8");
	CHECK_EQ(d.bad_cqes, 8);
	CHECK_EQ(fired_delta(&f), 8);
	/* Chained: duplicates of a slot's previous command must not complete its new one. */
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "dup-cid=40"), 0);
	memset(chain_r, 0, sizeof(chain_r));
	chain_qp = f.qp;
	chain_buf = f.buf;
	chain_total = 64;
	chain_next = 4;
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(udrv_nvme_read(f.qp, 1, f.buf + 4096 * i, i, 1, chain_cb, &chain_r[i]), 0);
	drv_wait(f.qp, chain_r, 64, DRV_WAIT_S);
	drv_settle(&f.qp, 1, 50);
	CHECK(drv_once(chain_r, 64, "dup-cid chained"));
	CHECK_EQ(count_rc(chain_r, 64, 0), 64);
	d = fx_delta(&f);
	show(&f, "dup-cid chained");
	CHECK_EQ(d.bad_cqes, fired_delta(&f));
	CHECK_EQ(d.bad_cqes, 48);
	CHECK_EQ(d.timeouts, 0);
	CHECK_EQ(d.resets, 0);
	io_works(&f, f.qp, 700);
	fx_close(&f);
}

/* bogus-cid and bad-sq-head: the entry is skipped (counted), so its command never
 * completes: it times out, Abort finds nothing, the controller is reset, the command fails
 * -ETIMEDOUT; one submitted with it succeeds. */
static void bad_entry(const char *fault)
{
	struct fx f;
	struct drv_req r[2] = {{0}};
	struct udrv_nvme_stats d;
	double t0;

	fx_open(&f, TIMEOUT_MS);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, fault), 0);
	t0 = nh_now();
	reads(&f, f.qp, r, 2, 0);
	drv_wait(f.qp, r, 2, DRV_WAIT_S);
	drv_settle(&f.qp, 1, 50);
	CHECK(drv_once(r, 2, fault));
	CHECK_EQ(r[0].rc, -ETIMEDOUT);
	CHECK_EQ(r[1].rc, 0);
	CHECK(nh_now() - t0 >= TIMEOUT_MS / 1000.0);
	CHECK(nh_now() - t0 < 3);
	d = fx_delta(&f);
	show(&f, fault);
	CHECK_EQ(d.bad_cqes, 1);
	CHECK_EQ(fired_delta(&f), 1);
	CHECK_EQ(d.timeouts, 1);
	CHECK_EQ(d.resets, 1);
	io_works(&f, f.qp, 800);
	/* Several, with others in flight: each bad entry skipped, each command once. */
	{
		struct drv_req rr[NREQ];
		char spec[64];

		snprintf(spec, sizeof(spec), "%s=3", fault);
		CHECK_EQ(udrv_emu_nvme_inject(emu.e, spec), 0);
		reads(&f, f.qp, rr, NREQ, 0);
		drv_wait(f.qp, rr, NREQ, DRV_WAIT_S);
		drv_settle(&f.qp, 1, 50);
		CHECK(drv_once(rr, NREQ, spec));
		CHECK_EQ(count_rc(rr, NREQ, 0) + count_rc(rr, NREQ, -ETIMEDOUT), NREQ);
		CHECK(count_rc(rr, NREQ, -ETIMEDOUT) >= 1);
		d = fx_delta(&f);
		show(&f, spec);
		CHECK_EQ(d.bad_cqes, 4);
	}
	io_works(&f, f.qp, 800);
	fx_close(&f);
}

static void test_bogus_cid(void)
{
	bad_entry("bogus-cid");
}

static void test_bad_sq_head(void)
{
	bad_entry("bad-sq-head");
}

/*
 * A command submitted while an older one is still outstanding, after the caller did not
 * poll for longer than the timeout (the older one completed meanwhile): it has had no time
 * to time out, so it must complete normally.
 */
static void test_submit_after_pause(void)
{
	struct fx f;
	struct drv_req r[2] = {{0}};

	fx_open(&f, TIMEOUT_MS);
	CHECK_EQ(udrv_nvme_read(f.qp, 1, f.buf, 0, 1, drv_req_cb, &r[0]), 0);
	nh_sleep_ms(TIMEOUT_MS + 200); /* busy elsewhere; the controller completed it */
	CHECK_EQ(udrv_nvme_read(f.qp, 1, f.buf + 4096, 1, 1, drv_req_cb, &r[1]), 0);
	drv_wait(f.qp, r, 2, DRV_WAIT_S);
	drv_settle(&f.qp, 1, 50);
	CHECK(drv_once(r, 2, "after a pause"));
	CHECK_EQ(r[0].rc, 0);
	CHECK_EQ(r[1].rc, 0);
	show(&f, "after a pause");
	CHECK_EQ(fx_delta(&f).timeouts, 0);
	CHECK_EQ(fx_delta(&f).resets, 0);
	fx_close(&f);
}

/* "its callback runs later from udrv_nvme_process_completions() on this queue pair (never
 * from inside the submit call)": also when the submit is the first call on a queue pair to
 * notice a reset or a controller gone. */
static int in_submit;
static unsigned cb_in_submit;

static void submit_watch_cb(void *arg, const struct udrv_nvme_cpl *cpl)
{
	if (in_submit)
		cb_in_submit++;
	drv_req_cb(arg, cpl);
}

static int watched_read(struct udrv_nvme_qpair *qp, uint8_t *buf, struct drv_req *r)
{
	int rc;

	in_submit = 1;
	rc = udrv_nvme_read(qp, 1, buf, 0, 1, submit_watch_cb, r);
	in_submit = 0;
	return rc;
}

static void test_no_callback_in_submit(void)
{
	struct fx f;
	struct udrv_nvme_qpair *qp2;
	struct drv_req x = {0}, y = {0}, z = {0}, r[2] = {{0}};
	int rc;

	/* After a reset: X on qp2 was aborted (its -ETIMEDOUT still to be delivered) when a
	 * reset caused by qp1 happened; the next call on qp2 is a submit. */
	fx_open(&f, TIMEOUT_MS);
	qp2 = drv_qpair(f.c, 8);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=2s"), 0);
	CHECK_EQ(udrv_nvme_read(qp2, 1, f.buf, 0, 1, submit_watch_cb, &x), 0);
	for (double end = nh_now() + 3; !fx_delta(&f).aborts && nh_now() < end;)
		udrv_nvme_process_completions(qp2, 0);
	CHECK_EQ(fx_delta(&f).aborts, 1);
	CHECK_EQ(x.calls, 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "drop=1,latency=0"), 0);
	CHECK_EQ(udrv_nvme_read(f.qp, 1, f.buf + 4096, 0, 1, drv_req_cb, &y), 0);
	drv_wait(f.qp, &y, 1, DRV_WAIT_S);
	CHECK_EQ(y.rc, -ETIMEDOUT);
	CHECK_EQ(fx_delta(&f).resets, 1);
	cb_in_submit = 0;
	rc = watched_read(qp2, f.buf + 8192, &z);
	if (rc == -EAGAIN) { /* must reconnect first, which process_completions() does */
		CHECK_EQ(cb_in_submit, 0);
		udrv_nvme_process_completions(qp2, 0);
		rc = watched_read(qp2, f.buf + 8192, &z);
	}
	CHECK_EQ(rc, 0);
	if (cb_in_submit)
		fprintf(stderr, "  a callback ran inside udrv_nvme_read() after a reset\n");
	CHECK_EQ(cb_in_submit, 0);
	for (double end = nh_now() + DRV_WAIT_S; (!x.calls || !z.calls) && nh_now() < end;)
		udrv_nvme_process_completions(qp2, 0);
	CHECK_EQ(x.calls, 1);
	CHECK_EQ(x.rc, -ETIMEDOUT);
	CHECK_EQ(z.calls, 1);
	CHECK_EQ(z.rc, 0);
	fx_close(&f);

	/* Gone: qp2's outstanding commands fail -ENODEV, but not from inside a submit. */
	fx_open(&f, TIMEOUT_MS);
	qp2 = drv_qpair(f.c, 8);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=5s"), 0);
	CHECK_EQ(udrv_nvme_read(qp2, 1, f.buf, 0, 1, submit_watch_cb, &r[0]), 0);
	CHECK_EQ(udrv_nvme_read(qp2, 1, f.buf, 1, 1, submit_watch_cb, &r[1]), 0);
	y = (struct drv_req){0};
	CHECK_EQ(udrv_nvme_read(f.qp, 1, f.buf + 4096, 0, 1, drv_req_cb, &y), 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "remove"), 0);
	wait_fired(&f, 1);
	drv_wait(f.qp, &y, 1, DRV_WAIT_S);
	CHECK_EQ(y.rc, -ENODEV);
	cb_in_submit = 0;
	z = (struct drv_req){0};
	CHECK_EQ(watched_read(qp2, f.buf + 8192, &z), -ENODEV);
	if (cb_in_submit)
		fprintf(stderr, "  %u callbacks ran inside udrv_nvme_read() on a gone controller\n",
			cb_in_submit);
	CHECK_EQ(cb_in_submit, 0);
	CHECK_EQ(udrv_nvme_process_completions(qp2, 0), -ENODEV);
	CHECK(drv_once(r, 2, "gone, qp2"));
	CHECK_EQ(count_rc(r, 2, -ENODEV), 2);
	CHECK_EQ(z.calls, 0);
	fx_close(&f);
}

/* ---- the controller fails ---- */

/* Commands outstanding when the controller stops. At most one fails -ETIMEDOUT (the one
 * whose timeout found the controller stopped; none when fatal status is noticed before any
 * timeout); the reset resubmits the others, which succeed with their data. */
static void stopped(const char *fault, unsigned want_aborts)
{
	struct fx f;
	struct drv_req r[3];
	struct udrv_nvme_stats d;
	double t0, worst = 0;
	unsigned lost;

	fx_open(&f, TIMEOUT_MS);
	drv_fill(f.buf + 65536, 512, 8, 50, 3, 1);
	CHECK_EQ(drv_write(f.qp, 1, f.buf + 65536, 50, 3), 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, fault), 0);
	wait_fired(&f, 1);
	t0 = nh_now();
	reads(&f, f.qp, r, 3, 50);
	while (!drv_all_done(r, 3) && nh_now() - t0 < 20) {
		double t1 = nh_now();

		udrv_nvme_process_completions(f.qp, 0);
		if (nh_now() - t1 > worst)
			worst = nh_now() - t1;
	}
	fprintf(stderr, "  %s: recovered in %.2f s; longest process_completions() %.2f s\n", fault,
		nh_now() - t0, worst);
	drv_settle(&f.qp, 1, 50);
	CHECK(drv_once(r, 3, fault));
	lost = count_rc(r, 3, -ETIMEDOUT);
	CHECK(lost <= 1);
	CHECK_EQ(count_rc(r, 3, 0), 3 - lost);
	for (unsigned i = 0; i < 3; i++)
		if (r[i].rc == 0)
			CHECK_EQ(drv_verify(f.buf + 4096 * i, 512, 8, 50 + i, 1, 1), -1);
	/* Recovery within a few timeouts, not the 10 s admin timeout. */
	CHECK(nh_now() - t0 < 3);
	d = fx_delta(&f);
	show(&f, fault);
	CHECK(d.timeouts >= lost && d.timeouts <= lost + want_aborts); /* + the Abort's own */
	CHECK_EQ(d.aborts, want_aborts);
	CHECK_EQ(d.resets, 1);
	CHECK_EQ(d.resubmits, 3 - lost);
	io_works(&f, f.qp, 900);
	{
		/* Admin commands work again too. */
		uint8_t cmd[64] = {0x06};
		uint8_t id[4096];
		struct udrv_nvme_cpl cpl;

		cmd[40] = 1;
		CHECK_EQ(udrv_nvme_admin(f.c, cmd, id, sizeof(id), false, &cpl), 0);
	}
	fx_close(&f);
}

static void test_fatal(void)
{
	stopped("fatal", 0); /* CSTS.CFS seen: straight to the reset, no Abort */
}

static void test_hang(void)
{
	stopped("hang", 1); /* looks alive: at the timeout an Abort, which gets no answer */
}

/* Closing a hung controller (with a queue pair and a command outstanding) takes a bounded
 * time; the next open finds it working. */
static void test_close_hung(void)
{
	struct fx f;
	struct drv_req r = {0};
	double t0;

	fx_open(&f, TIMEOUT_MS);
	drv_qpair(f.c, 8);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "hang"), 0);
	wait_fired(&f, 1);
	CHECK_EQ(udrv_nvme_read(f.qp, 1, f.buf, 0, 1, drv_req_cb, &r), 0);
	t0 = nh_now();
	udrv_nvme_close(f.c);
	fprintf(stderr, "  close of a hung controller: %.2f s\n", nh_now() - t0);
	CHECK(nh_now() - t0 < 3);
	CHECK_EQ(r.calls, 1);
	CHECK_EQ(r.rc, -ECANCELED);
	fx_open(&f, TIMEOUT_MS);
	io_works(&f, f.qp, 0);
	fx_close(&f);
}

/* With UDRV_NVME_INTERRUPTS the vectors work again after a reset. */
static void test_interrupts_after_reset(void)
{
	struct udrv_nvme_opts o = {
	    .flags = UDRV_NVME_INTERRUPTS, .io_queues = 2, .timeout_ms = TIMEOUT_MS};
	struct udrv_nvme_ctrlr *c = drv_open_opts(&emu, &o);
	struct udrv_nvme_qpair *q = drv_qpair(c, 8);
	struct pollfd pf = {.fd = udrv_nvme_qpair_eventfd(q), .events = POLLIN};
	uint8_t *b = udrv_nvme_dma_alloc(c, 8192);
	struct drv_req r = {0};
	struct udrv_nvme_stats st;
	uint64_t v;

	REQUIRE(b);
	CHECK(pf.fd >= 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "drop=1"), 0);
	CHECK_EQ(udrv_nvme_read(q, 1, b, 0, 1, drv_req_cb, &r), 0);
	/* Wait on the eventfd as an interrupt-driven caller does, polling for timeouts. */
	for (double end = nh_now() + DRV_WAIT_S; !r.calls && nh_now() < end;) {
		if (poll(&pf, 1, 10) == 1)
			CHECK_EQ(read(pf.fd, &v, sizeof(v)), (ssize_t)sizeof(v));
		udrv_nvme_process_completions(q, 0);
	}
	CHECK_EQ(r.calls, 1);
	CHECK_EQ(r.rc, -ETIMEDOUT);
	udrv_nvme_stats(c, &st);
	CHECK_EQ(st.resets, 1);
	for (int round = 0; round < 3; round++) {
		r = (struct drv_req){0};
		while (poll(&pf, 1, 0) == 1) /* stale signals from before */
			CHECK_EQ(read(pf.fd, &v, sizeof(v)), (ssize_t)sizeof(v));
		CHECK_EQ(udrv_nvme_read(q, 1, b, 1, 1, drv_req_cb, &r), 0);
		CHECK_EQ(poll(&pf, 1, 2000), 1);
		CHECK_EQ(read(pf.fd, &v, sizeof(v)), (ssize_t)sizeof(v));
		CHECK_EQ(udrv_nvme_process_completions(q, 0), 1);
		CHECK_EQ(r.calls, 1);
		CHECK_EQ(r.rc, 0);
	}
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "clear"), 0);
	udrv_nvme_close(c);
}

/* ---- the controller goes away ---- */

static void test_remove(void)
{
	struct fx f;
	struct udrv_nvme_qpair *qp2;
	struct drv_req r[6], late = {0};
	struct udrv_nvme_cpl cpl;
	uint8_t cmd[64] = {0x06};
	double t0;
	int rc = 0;

	fx_open(&f, TIMEOUT_MS);
	qp2 = drv_qpair(f.c, 8);
	drv_fill(f.buf, 512, 10, 60, 1, 1);
	CHECK_EQ(drv_write(f.qp, 1, f.buf, 60, 1), 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=5s"), 0);
	reads(&f, f.qp, r, 4, 0);
	for (unsigned i = 4; i < 6; i++) {
		r[i] = (struct drv_req){0};
		CHECK_EQ(udrv_nvme_read(qp2, 1, f.buf + 4096 * i, i, 1, drv_req_cb, &r[i]), 0);
	}
	nh_sleep_ms(20);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "remove"), 0);
	wait_fired(&f, 1);
	t0 = nh_now();
	while (rc >= 0 && nh_now() - t0 < 5)
		rc = udrv_nvme_process_completions(f.qp, 0);
	CHECK_EQ(rc, -ENODEV);
	CHECK(nh_now() - t0 < 2);
	fprintf(stderr, "  remove: noticed in %.2f s\n", nh_now() - t0);
	/* Every outstanding command failed -ENODEV once; qp2's when it is next polled. */
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(r[i].calls, 1);
	CHECK_EQ(udrv_nvme_process_completions(qp2, 0), -ENODEV);
	drv_settle((struct udrv_nvme_qpair *[]){f.qp, qp2}, 2, 50);
	CHECK(drv_once(r, 6, "remove"));
	CHECK_EQ(count_rc(r, 6, -ENODEV), 6);
	CHECK_EQ(udrv_nvme_qpair_outstanding(f.qp), 0);
	CHECK_EQ(udrv_nvme_qpair_outstanding(qp2), 0);
	/* From now on everything fails at once, and nothing calls back. */
	CHECK_EQ(udrv_nvme_process_completions(f.qp, 0), -ENODEV);
	CHECK_EQ(udrv_nvme_read(f.qp, 1, f.buf, 0, 1, drv_req_cb, &late), -ENODEV);
	CHECK_EQ(udrv_nvme_write(qp2, 1, f.buf, 0, 1, drv_req_cb, &late), -ENODEV);
	CHECK_EQ(udrv_nvme_flush(f.qp, 1, drv_req_cb, &late), -ENODEV);
	CHECK_EQ(udrv_nvme_write_zeroes(f.qp, 1, 0, 1, false, drv_req_cb, &late), -ENODEV);
	CHECK_EQ(udrv_nvme_deallocate(f.qp, 1, 0, 1, drv_req_cb, &late), -ENODEV);
	cmd[40] = 1;
	CHECK_EQ(udrv_nvme_admin(f.c, cmd, f.buf, 4096, false, &cpl), -ENODEV);
	errno = 0;
	CHECK(udrv_nvme_qpair_create(f.c, 8) == NULL);
	drv_settle(&f.qp, 1, 20);
	CHECK_EQ(late.calls, 0);
	udrv_nvme_qpair_destroy(qp2);
	fx_close(&f);

	/* The controller, plugged back in, serves a new open; the data is still there. */
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "clear"), 0);
	fx_open(&f, TIMEOUT_MS);
	CHECK_EQ(drv_read(f.qp, 1, f.buf + 4096, 60, 1), 0);
	CHECK_EQ(drv_verify(f.buf + 4096, 512, 10, 60, 1, 1), -1);
	fx_close(&f);
}

/* Removed with nothing outstanding: the next command finds out (at the latest by its
 * timeout) and fails -ENODEV once. */
static void test_remove_idle(void)
{
	struct fx f;
	struct drv_req r = {0};
	double t0;
	int rc, pc = 0;

	fx_open(&f, TIMEOUT_MS);
	io_works(&f, f.qp, 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "remove"), 0);
	wait_fired(&f, 1);
	nh_sleep_ms(20);
	t0 = nh_now();
	rc = udrv_nvme_read(f.qp, 1, f.buf, 0, 1, drv_req_cb, &r);
	CHECK(rc == 0 || rc == -ENODEV);
	while (rc == 0 && !r.calls && nh_now() - t0 < 5)
		pc = udrv_nvme_process_completions(f.qp, 0);
	if (rc == 0) {
		CHECK_EQ(r.calls, 1);
		CHECK_EQ(r.rc, -ENODEV);
		CHECK_EQ(pc, -ENODEV);
	}
	CHECK(nh_now() - t0 < 2);
	CHECK_EQ(udrv_nvme_read(f.qp, 1, f.buf, 0, 1, drv_req_cb, &r), -ENODEV);
	drv_settle(&f.qp, 1, 20);
	CHECK(r.calls <= 1);
	fx_close(&f);
}

/* ---- the controller's process dies ---- */

#ifdef UDRV_CLI
/* One request on the emulator's control socket; 0 when it answers "ok". */
static int control(const char *path, const char *line)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char out[256];
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	REQUIRE(fd >= 0);
	REQUIRE(strlen(path) < sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path));
	for (int i = 0; i < 100 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0; i++)
		nh_sleep_ms(10);
	n = write(fd, line, strlen(line));
	if (n == (ssize_t)strlen(line))
		n = read(fd, out, sizeof(out) - 1);
	close(fd);
	return n == 3 && !memcmp(out, "ok\n", 3) ? 0 : -1;
}

static void test_server_killed(void)
{
	char s[128], ctl[128], name[160];
	struct udrv_nvme_ctrlr *c = NULL;
	struct udrv_nvme_qpair *q1, *q2;
	struct drv_req r[8];
	struct udrv_nvme_opts o = {.io_queues = 2, .timeout_ms = TIMEOUT_MS};
	struct stat sb;
	uint8_t *buf;
	int status, rc = -1, pc1 = 0, pc2 = 0;
	double t0;
	pid_t pid;

	nh_tmppath(s, sizeof(s), "killed.sock");
	nh_tmppath(ctl, sizeof(ctl), "killed.ctl");
	snprintf(name, sizeof(name), "vfio-user:%s", s);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(UDRV_CLI, UDRV_CLI, "emu", "nvme", "--socket", s, "--size", "16M", "--queues",
		      "2", "--control", ctl, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && stat(s, &sb) != 0; i++)
		nh_sleep_ms(10);
	for (int i = 0; i < 100 && rc < 0; i++) {
		rc = udrv_nvme_open(name, &o, &c);
		if (rc < 0)
			nh_sleep_ms(20);
	}
	CHECK_EQ(rc, 0);
	if (rc == 0) {
		q1 = drv_qpair(c, 8);
		q2 = drv_qpair(c, 8);
		buf = udrv_nvme_dma_alloc(c, 65536);
		REQUIRE(buf);
		drv_fill(buf, 512, 11, 0, 8, 1);
		CHECK_EQ(drv_write(q1, 1, buf, 0, 8), 0);
		CHECK_EQ(drv_read(q2, 1, buf + 8192, 0, 8), 0);
		CHECK_EQ(drv_verify(buf + 8192, 512, 11, 0, 8, 1), -1);
		/* Completions held 5 s: the commands are in flight when it dies. */
		CHECK_EQ(control(ctl, "fault latency=5s\n"), 0);
		/* Commands in flight when it dies. */
		for (unsigned i = 0; i < 8; i++) {
			r[i] = (struct drv_req){0};
			CHECK_EQ(udrv_nvme_read(i % 2 ? q2 : q1, 1, buf + 4096 * i, i, 1,
						drv_req_cb, &r[i]),
				 0);
		}
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		/* More after its death. */
		t0 = nh_now();
		while ((pc1 >= 0 || pc2 >= 0) && nh_now() - t0 < 5) {
			if (pc1 >= 0)
				pc1 = udrv_nvme_process_completions(q1, 0);
			if (pc2 >= 0)
				pc2 = udrv_nvme_process_completions(q2, 0);
		}
		fprintf(stderr, "  server killed: noticed in %.2f s\n", nh_now() - t0);
		CHECK_EQ(pc1, -ENODEV);
		CHECK_EQ(pc2, -ENODEV);
		CHECK(nh_now() - t0 < 2);
		drv_settle((struct udrv_nvme_qpair *[]){q1, q2}, 2, 20);
		CHECK(drv_once(r, 8, "server killed"));
		CHECK_EQ(count_rc(r, 8, -ENODEV), 8);
		CHECK_EQ(udrv_nvme_read(q1, 1, buf, 0, 1, drv_req_cb, &r[0]), -ENODEV);
		t0 = nh_now();
		udrv_nvme_close(c);
		CHECK(nh_now() - t0 < 2);
	} else {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}
#endif

int main(void)
{
	if (!getenv("UDRV_LOG"))
		udrv_log_set_level(UDRV_LOG_ERR); /* the driver's warnings are expected here */
	drv_emu_up(&emu, (struct udrv_emu_nvme_opts){.size = 64ull << 20, .queues = QUEUES});
	RUN(test_latency_below_timeout);
	RUN(test_latency_above_timeout);
	RUN(test_drop);
	RUN(test_error_status);
	RUN(test_dup_cid);
	RUN(test_bogus_cid);
	RUN(test_bad_sq_head);
	RUN(test_submit_after_pause);
	RUN(test_no_callback_in_submit);
	RUN(test_fatal);
	RUN(test_hang);
	RUN(test_close_hung);
	RUN(test_interrupts_after_reset);
	RUN(test_remove);
	RUN(test_remove_idle);
#ifdef UDRV_CLI
	RUN(test_server_killed);
#endif
	drv_emu_down(&emu);
	return test_done();
}
