/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared pieces of the NVMe driver's integration tests (test_nvme_driver*.c): the emulated
 * controller in process (nvme_host.c's temporary directory and nh_emu_start()), opening the
 * driver on it, a request record whose callback counts how often it ran, bounded waits,
 * and block data patterns that say which LBA and which write they belong to.
 *
 * Header only, static inline: test.h keeps its failure count per translation unit.
 * Every wait here is bounded; a command that never calls back fails the test instead of
 * hanging it.
 */
#ifndef NVME_DRV_TEST_H
#define NVME_DRV_TEST_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <udrv/emu_nvme.h>
#include <udrv/log.h>
#include <udrv/nvme.h>

#include "nvme_host.h"
#include "test.h"

#define DRV_WAIT_S     10.0 /* the longest any wait for a callback may take */
#define DRV_SC_MASK    0x7ffu
#define DRV_SC_CMPFAIL 0x285u /* SCT 2 (Media and Data Integrity), SC 85h: Compare Failure */

/* The emulator on a socket in the test's temporary directory, and the driver's name for it. */
struct drv_emu {
	struct udrv_emu_nvme *e;
	char sock[128];
	char name[160];
};

static inline void drv_emu_up(struct drv_emu *m, struct udrv_emu_nvme_opts o)
{
	o.socket_path = NULL;
	m->e = nh_emu_start(&o, m->sock);
	snprintf(m->name, sizeof(m->name), "vfio-user:%s", m->sock);
}

static inline void drv_emu_down(struct drv_emu *m)
{
	udrv_emu_nvme_destroy(m->e);
	m->e = NULL;
}

/* Open the driver (retrying briefly while the emulator finishes with the last client). */
static inline struct udrv_nvme_ctrlr *drv_open_opts(const struct drv_emu *m,
						    const struct udrv_nvme_opts *o)
{
	struct udrv_nvme_ctrlr *c = NULL;
	int rc = -1;

	for (int i = 0; i < 100 && rc < 0; i++) {
		rc = udrv_nvme_open(m->name, o, &c);
		if (rc < 0)
			nh_sleep_ms(20);
	}
	if (rc < 0) {
		fprintf(stderr, "udrv_nvme_open(%s): %d: %s\n", m->name, rc, udrv_errmsg());
		REQUIRE(rc == 0);
	}
	return c;
}

static inline struct udrv_nvme_ctrlr *drv_open(const struct drv_emu *m, unsigned io_queues,
					       unsigned timeout_ms)
{
	struct udrv_nvme_opts o = {.io_queues = io_queues, .timeout_ms = timeout_ms};

	return drv_open_opts(m, &o);
}

static inline struct udrv_nvme_qpair *drv_qpair(struct udrv_nvme_ctrlr *c, unsigned entries)
{
	struct udrv_nvme_qpair *qp = udrv_nvme_qpair_create(c, entries);

	if (!qp)
		fprintf(stderr, "udrv_nvme_qpair_create(%u): errno %d: %s\n", entries, errno,
			udrv_errmsg());
	REQUIRE(qp);
	return qp;
}

/* One command: how often its callback ran and with what. */
struct drv_req {
	int calls;
	int rc;
	uint16_t status;
	uint32_t dw0;
	double t_done;
};

static inline void drv_req_cb(void *arg, const struct udrv_nvme_cpl *cpl)
{
	struct drv_req *r = arg;

	r->calls++;
	r->rc = cpl->rc;
	r->status = cpl->status;
	r->dw0 = cpl->dw0;
	r->t_done = nh_now();
}

static inline bool drv_all_done(const struct drv_req *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!r[i].calls)
			return false;
	return true;
}

/*
 * Poll the queue pairs until every request has called back, or secs pass. Returns the last
 * negative process_completions() result seen (e.g. -ENODEV), or 0. The number of completions
 * reported by process_completions() is added to *reaped when not NULL.
 */
static inline int drv_wait_qps(struct udrv_nvme_qpair *const *qps, unsigned nqp,
			       const struct drv_req *r, unsigned n, double secs, long *reaped)
{
	double end = nh_now() + secs;
	int last = 0;

	while (!drv_all_done(r, n) && nh_now() < end) {
		for (unsigned q = 0; q < nqp; q++) {
			int rc = udrv_nvme_process_completions(qps[q], 0);

			if (rc < 0)
				last = rc;
			else if (reaped)
				*reaped += rc;
		}
	}
	return last;
}

static inline int drv_wait(struct udrv_nvme_qpair *qp, const struct drv_req *r, unsigned n,
			   double secs)
{
	return drv_wait_qps(&qp, 1, r, n, secs, NULL);
}

/* Keep polling for ms: callbacks that come now would be second ones. */
static inline void drv_settle(struct udrv_nvme_qpair *const *qps, unsigned nqp, int ms)
{
	double end = nh_now() + ms / 1000.0;

	while (nh_now() < end)
		for (unsigned q = 0; q < nqp; q++)
			udrv_nvme_process_completions(qps[q], 0);
}

/* Every request called back exactly once (reports which did not). */
static inline bool drv_once(const struct drv_req *r, unsigned n, const char *what)
{
	bool ok = true;

	for (unsigned i = 0; i < n; i++)
		if (r[i].calls != 1) {
			fprintf(stderr, "%s: request %u called back %d times\n", what, i,
				r[i].calls);
			ok = false;
		}
	return ok;
}

/* ---- synchronous wrappers: the callback's rc, the submit error, or -EDEADLK (no callback
 * within DRV_WAIT_S, a failure of its own) ---- */

static inline int drv_finish(struct udrv_nvme_qpair *qp, int submit_rc, struct drv_req *r)
{
	if (submit_rc)
		return submit_rc;
	drv_wait(qp, r, 1, DRV_WAIT_S);
	if (r->calls != 1) {
		fprintf(stderr, "a command called back %d times\n", r->calls);
		CHECK_EQ(r->calls, 1);
		if (!r->calls)
			return -EDEADLK;
	}
	return r->rc;
}

static inline int drv_read(struct udrv_nvme_qpair *qp, uint32_t nsid, void *buf, uint64_t lba,
			   uint32_t nlb)
{
	struct drv_req r = {0};

	return drv_finish(qp, udrv_nvme_read(qp, nsid, buf, lba, nlb, drv_req_cb, &r), &r);
}

static inline int drv_write(struct udrv_nvme_qpair *qp, uint32_t nsid, const void *buf,
			    uint64_t lba, uint32_t nlb)
{
	struct drv_req r = {0};

	return drv_finish(qp, udrv_nvme_write(qp, nsid, buf, lba, nlb, drv_req_cb, &r), &r);
}

/* *status receives the status field when not NULL. */
static inline int drv_compare(struct udrv_nvme_qpair *qp, uint32_t nsid, const void *buf,
			      uint64_t lba, uint32_t nlb, uint16_t *status)
{
	struct drv_req r = {0};
	int rc = drv_finish(qp, udrv_nvme_compare(qp, nsid, buf, lba, nlb, drv_req_cb, &r), &r);

	if (status)
		*status = r.status;
	return rc;
}

static inline int drv_flush(struct udrv_nvme_qpair *qp, uint32_t nsid)
{
	struct drv_req r = {0};

	return drv_finish(qp, udrv_nvme_flush(qp, nsid, drv_req_cb, &r), &r);
}

static inline int drv_write_zeroes(struct udrv_nvme_qpair *qp, uint32_t nsid, uint64_t lba,
				   uint32_t nlb, bool dealloc)
{
	struct drv_req r = {0};

	return drv_finish(qp, udrv_nvme_write_zeroes(qp, nsid, lba, nlb, dealloc, drv_req_cb, &r),
			  &r);
}

static inline int drv_deallocate(struct udrv_nvme_qpair *qp, uint32_t nsid, uint64_t lba,
				 uint32_t nlb)
{
	struct drv_req r = {0};

	return drv_finish(qp, udrv_nvme_deallocate(qp, nsid, lba, nlb, drv_req_cb, &r), &r);
}

static inline int drv_readv(struct udrv_nvme_qpair *qp, uint32_t nsid, const struct iovec *iov,
			    unsigned n, uint64_t lba, uint32_t nlb)
{
	struct drv_req r = {0};

	return drv_finish(qp, udrv_nvme_readv(qp, nsid, iov, n, lba, nlb, drv_req_cb, &r), &r);
}

static inline int drv_writev(struct udrv_nvme_qpair *qp, uint32_t nsid, const struct iovec *iov,
			     unsigned n, uint64_t lba, uint32_t nlb)
{
	struct drv_req r = {0};

	return drv_finish(qp, udrv_nvme_writev(qp, nsid, iov, n, lba, nlb, drv_req_cb, &r), &r);
}

/* ---- data: a block's content names its LBA, a write version and a tag ---- */

static inline uint64_t drv_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Version 0 is the content of a block never written, or zeroed: all zero bytes. */
static inline void drv_fill_block(uint8_t *p, uint32_t bs, uint64_t tag, uint64_t lba,
				  uint32_t version)
{
	uint64_t seed = drv_mix(tag << 48 ^ lba << 20 ^ version);

	if (!version) {
		memset(p, 0, bs);
		return;
	}
	for (uint32_t i = 0; i < bs; i += 8) {
		uint64_t w = seed + i * 0x9e3779b97f4a7c15ull;

		memcpy(p + i, &w, 8);
	}
}

static inline void drv_fill(uint8_t *p, uint32_t bs, uint64_t tag, uint64_t lba, uint32_t nlb,
			    uint32_t version)
{
	for (uint32_t j = 0; j < nlb; j++)
		drv_fill_block(p + (size_t)j * bs, bs, tag, lba + j, version);
}

/* The first block of nlb at p that does not hold (tag, lba + j, version), or -1. */
static inline long drv_verify(const uint8_t *p, uint32_t bs, uint64_t tag, uint64_t lba,
			      uint32_t nlb, uint32_t version)
{
	uint8_t want[4096];

	for (uint32_t j = 0; j < nlb; j++) {
		drv_fill_block(want, bs, tag, lba + j, version);
		if (memcmp(p + (size_t)j * bs, want, bs))
			return (long)j;
	}
	return -1;
}

static inline bool drv_is_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

#endif
