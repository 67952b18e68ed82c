/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NVMe driver under random mixed I/O, against the emulated controller in process: a
 * shadow copy says what every block should hold (the version of the write that last set it,
 * or zeros), every read is checked against it, and every command must call back exactly
 * once with the result its kind expects. Reads, writes, vectors (PRP-shaped and SGL-shaped
 * with odd addresses), Write Zeroes, deallocation, compares that match and that do not,
 * flushes; queue depths up to the queue size. Then the same with one queue pair per thread,
 * two and four threads at once on disjoint ranges, and on a namespace of 4096-byte blocks.
 * At the end each range is read back whole and compared with the shadow copy.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <udrv/dma.h>
#include <udrv/nvme.h>

#include "nvme_drv_test.h"

#define QD_MAX	  64
#define MAX_IOV	  20
#define UNKNOWN	  UINT32_MAX /* a write failed: the blocks' content is not known */
#define POISON	  0xa5
#define RUN_LIMIT 60.0 /* seconds a worker may take */

enum kind { K_READ, K_WRITE, K_READV, K_WRITEV, K_WZ, K_DEALLOC, K_CMP, K_CMPBAD, K_FLUSH, K_N };

static const char *const kind_name[K_N] = {"read",    "write",	 "readv",    "writev", "w-zeroes",
					   "dealloc", "compare", "cmp-fail", "flush"};
/* Out of 100. */
static const unsigned kind_weight[K_N] = {28, 28, 10, 10, 5, 5, 6, 4, 4};

struct worker;

struct op {
	struct worker *w;
	bool busy;
	enum kind kind;
	uint64_t lba;
	uint32_t nlb, ver;
	size_t off;    /* of the data in buf */
	uint8_t *buf;  /* linear data */
	uint8_t *scat; /* where vector pieces live */
	struct iovec iov[MAX_IOV];
	unsigned niov;
	bool sgl_shaped;
};

struct worker {
	/* set up by the test */
	struct udrv_nvme_ctrlr *c;
	struct udrv_nvme_qpair *qp;
	uint32_t nsid, bs;
	uint64_t base, n; /* the blocks this worker owns */
	uint64_t tag;
	unsigned qd, nops, maxnlb;
	uint64_t rng;
	bool faults;	   /* commands may fail -ETIMEDOUT or -EIO (injected faults) */
	atomic_bool *stop; /* when set: submit until it is true, not nops */
	/* state */
	uint32_t *ver;
	uint8_t *busy;
	struct op op[QD_MAX];
	size_t buf_len, scat_len;
	unsigned inflight, submitted, completed;
	uint32_t next_ver;
	/* results (the worker thread does not touch test.h's counter) */
	unsigned bad_data, bad_rc, dup_cb, submit_err, pc_err, eagain;
	unsigned timedout, failed; /* tolerated under faults: -ETIMEDOUT, -EIO */
	bool stuck;
	unsigned by_kind[K_N];
	unsigned sgl_shaped, prp_shaped;
	double secs;
	char first[256];
};

static uint64_t rnd(struct worker *w)
{
	uint64_t x = w->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void note(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The first problem a worker saw, for the report. */
static void note(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	if (w->first[0])
		return;
	va_start(ap, fmt);
	vsnprintf(w->first, sizeof(w->first), fmt, ap);
	va_end(ap);
}

static void worker_init(struct worker *w)
{
	struct udrv_dma_domain *dom = udrv_nvme_domain(w->c);
	size_t max = (size_t)w->maxnlb * w->bs;

	REQUIRE(w->qd <= QD_MAX);
	w->ver = calloc(w->n, sizeof(*w->ver));
	w->busy = calloc(w->n, 1);
	REQUIRE(w->ver && w->busy);
	w->buf_len = max + 4096;
	w->scat_len = 2 * (max / 4096 + 3) * 4096 + 4096;
	for (unsigned i = 0; i < w->qd; i++) {
		w->op[i].w = w;
		w->op[i].buf = udrv_dma_zalloc(dom, w->buf_len, 4096, NULL);
		w->op[i].scat = udrv_dma_zalloc(dom, w->scat_len, 4096, NULL);
		REQUIRE(w->op[i].buf && w->op[i].scat);
	}
	/* Start from zeros, whatever an earlier test left there. */
	CHECK_EQ(drv_deallocate(w->qp, w->nsid, w->base, (uint32_t)w->n), 0);
}

static void worker_fini(struct worker *w)
{
	struct udrv_dma_domain *dom = udrv_nvme_domain(w->c);

	for (unsigned i = 0; i < w->qd; i++) {
		udrv_dma_free(dom, w->op[i].buf);
		udrv_dma_free(dom, w->op[i].scat);
	}
	free(w->ver);
	free(w->busy);
}

/* The content the shadow copy says blocks [lba, lba+nlb) hold, into p; false if unknown. */
static bool expected(struct worker *w, uint8_t *p, uint64_t lba, uint32_t nlb)
{
	for (uint32_t j = 0; j < nlb; j++) {
		uint32_t v = w->ver[lba + j - w->base];

		if (v == UNKNOWN)
			return false;
		drv_fill_block(p + (size_t)j * w->bs, w->bs, w->tag, lba + j, v);
	}
	return true;
}

/* Check blocks at p against the shadow copy; counts and notes a mismatch. */
static void check_blocks(struct worker *w, const uint8_t *p, uint64_t lba, uint32_t nlb,
			 const char *what)
{
	for (uint32_t j = 0; j < nlb; j++) {
		uint32_t v = w->ver[lba + j - w->base];

		if (v == UNKNOWN)
			continue;
		if (drv_verify(p + (size_t)j * w->bs, w->bs, w->tag, lba + j, 1, v) >= 0) {
			w->bad_data++;
			note(w, "%s: block %llu (of %u at %llu) is not version %u", what,
			     (unsigned long long)(lba + j), nlb, (unsigned long long)lba, v);
			return;
		}
	}
}

/* Pieces for len bytes in o->scat: PRP-shaped (first at a dword offset ending on a page,
 * whole pages, last starting on a page; a page left out between them) or SGL-shaped (odd
 * addresses and lengths, gaps of up to 63 bytes). */
static void make_iov(struct worker *w, struct op *o, size_t len)
{
	size_t left = len;

	o->niov = 0;
	o->sgl_shaped = rnd(w) % 2;
	if (!o->sgl_shaped) {
		size_t off = (rnd(w) % 1024) * 4, page;
		size_t first = 4096 - off < left ? 4096 - off : left;

		o->iov[o->niov++] = (struct iovec){o->scat + off, first};
		left -= first;
		page = 2;
		while (left) {
			size_t k = 1 + rnd(w) % 3, piece = k * 4096;

			if (piece >= left || o->niov == MAX_IOV - 1)
				piece = left;
			o->iov[o->niov++] = (struct iovec){o->scat + page * 4096, piece};
			left -= piece;
			page += (piece + 4095) / 4096 + 1;
		}
		REQUIRE(page * 4096 <= w->scat_len);
		w->prp_shaped++;
	} else {
		size_t cur = rnd(w) % 64;

		while (left) {
			size_t piece = o->niov == 15 ? left : 1 + rnd(w) % left;

			/* A single piece at an odd address is test_nvme_driver.c's business
			 * (the driver refuses it: see test_vectors_sgl). */
			if (!o->niov && piece == left)
				cur &= ~(size_t)3;
			o->iov[o->niov++] = (struct iovec){o->scat + cur, piece};
			left -= piece;
			cur += piece + rnd(w) % 64;
		}
		REQUIRE(cur <= w->scat_len);
		w->sgl_shaped++;
	}
}

static void op_cb(void *arg, const struct udrv_nvme_cpl *cpl)
{
	struct op *o = arg;
	struct worker *w = o->w;
	int want = o->kind == K_CMPBAD ? -EIO : 0;
	bool ok;

	if (!o->busy) {
		w->dup_cb++;
		note(w, "a second callback: %s of %u at lba %llu", kind_name[o->kind], o->nlb,
		     (unsigned long long)o->lba);
		return;
	}
	o->busy = false;
	w->inflight--;
	w->completed++;
	w->by_kind[o->kind]++;
	ok = cpl->rc == want &&
	     (o->kind != K_CMPBAD || (cpl->status & DRV_SC_MASK) == DRV_SC_CMPFAIL);
	if (!ok && w->faults && (cpl->rc == -ETIMEDOUT || cpl->rc == -EIO)) {
		/* Not what the command asked for, but what a fault may do: reads are not
		 * checked, what a write left is unknown until the blocks are written again. */
		if (cpl->rc == -ETIMEDOUT)
			w->timedout++;
		else
			w->failed++;
	} else if (!ok) {
		w->bad_rc++;
		note(w, "%s of %u at lba %llu: rc %d status %#x", kind_name[o->kind], o->nlb,
		     (unsigned long long)o->lba, cpl->rc, cpl->status);
	}
	switch (o->kind) {
	case K_READ:
		if (ok)
			check_blocks(w, o->buf + o->off, o->lba, o->nlb, "read");
		break;
	case K_READV:
		if (ok) {
			uint8_t *p = o->buf;

			for (unsigned i = 0; i < o->niov; i++) {
				memcpy(p, o->iov[i].iov_base, o->iov[i].iov_len);
				p += o->iov[i].iov_len;
			}
			check_blocks(w, o->buf, o->lba, o->nlb,
				     o->sgl_shaped ? "readv (sgl)" : "readv (prp)");
		}
		break;
	case K_WRITE:
	case K_WRITEV:
	case K_WZ:
	case K_DEALLOC:
		for (uint32_t j = 0; j < o->nlb; j++)
			w->ver[o->lba + j - w->base] = ok ? o->ver : UNKNOWN;
		break;
	default:
		break;
	}
	if (o->kind != K_FLUSH)
		memset(w->busy + (o->lba - w->base), 0, o->nlb);
}

static enum kind pick_kind(struct worker *w)
{
	unsigned x = (unsigned)(rnd(w) % 100), acc = 0;

	for (unsigned k = 0; k < K_N; k++) {
		acc += kind_weight[k];
		if (x < acc)
			return (enum kind)k;
	}
	return K_READ;
}

/* Submit one random command on blocks no other outstanding command touches. false if it
 * could not (no free op, no free range, or the submit failed). */
static bool submit_one(struct worker *w)
{
	struct op *o = NULL;
	size_t len;
	int rc;

	for (unsigned i = 0; i < w->qd && !o; i++)
		if (!w->op[i].busy)
			o = &w->op[i];
	if (!o)
		return false;
	o->kind = pick_kind(w);
	o->nlb = 1 + (uint32_t)(rnd(w) % (rnd(w) % 4 ? 8 : w->maxnlb));
	if (o->nlb > w->n)
		o->nlb = (uint32_t)w->n;
	if (o->kind != K_FLUSH) {
		bool found = false;

		for (int t = 0; t < 8 && !found; t++) {
			o->lba = w->base + rnd(w) % (w->n - o->nlb + 1);
			found = !memchr(w->busy + (o->lba - w->base), 1, o->nlb);
		}
		if (!found)
			return false;
	}
	len = (size_t)o->nlb * w->bs;
	o->off = (rnd(w) % 1024) * 4;
	if (o->kind == K_CMP || o->kind == K_CMPBAD) {
		if (!expected(w, o->buf + o->off, o->lba, o->nlb))
			o->kind = K_READ;
		else if (o->kind == K_CMPBAD)
			o->buf[o->off + rnd(w) % len] ^= (uint8_t)(1u << (rnd(w) % 8));
	}
	o->ver = 0;
	switch (o->kind) {
	case K_READ:
		memset(o->buf + o->off, POISON, len);
		rc = udrv_nvme_read(w->qp, w->nsid, o->buf + o->off, o->lba, o->nlb, op_cb, o);
		break;
	case K_WRITE:
		o->ver = ++w->next_ver;
		drv_fill(o->buf + o->off, w->bs, w->tag, o->lba, o->nlb, o->ver);
		rc = udrv_nvme_write(w->qp, w->nsid, o->buf + o->off, o->lba, o->nlb, op_cb, o);
		break;
	case K_READV:
		make_iov(w, o, len);
		memset(o->scat, POISON, w->scat_len);
		rc = udrv_nvme_readv(w->qp, w->nsid, o->iov, o->niov, o->lba, o->nlb, op_cb, o);
		break;
	case K_WRITEV: {
		const uint8_t *p = o->buf;

		o->ver = ++w->next_ver;
		drv_fill(o->buf, w->bs, w->tag, o->lba, o->nlb, o->ver);
		make_iov(w, o, len);
		for (unsigned i = 0; i < o->niov; i++) {
			memcpy(o->iov[i].iov_base, p, o->iov[i].iov_len);
			p += o->iov[i].iov_len;
		}
		rc = udrv_nvme_writev(w->qp, w->nsid, o->iov, o->niov, o->lba, o->nlb, op_cb, o);
		break;
	}
	case K_WZ:
		rc = udrv_nvme_write_zeroes(w->qp, w->nsid, o->lba, o->nlb, rnd(w) % 2, op_cb, o);
		break;
	case K_DEALLOC:
		rc = udrv_nvme_deallocate(w->qp, w->nsid, o->lba, o->nlb, op_cb, o);
		break;
	case K_CMP:
	case K_CMPBAD:
		rc = udrv_nvme_compare(w->qp, w->nsid, o->buf + o->off, o->lba, o->nlb, op_cb, o);
		break;
	case K_FLUSH:
	default:
		rc = udrv_nvme_flush(w->qp, w->nsid, op_cb, o);
		break;
	}
	if (rc == -EAGAIN) {
		/* The queue pair must reconnect after a reset (nvme.h): the next
		 * process_completions() does it; this operation is tried again later. */
		w->eagain++;
		return false;
	}
	if (rc) {
		if (!w->submit_err && (o->kind == K_READV || o->kind == K_WRITEV)) {
			fprintf(stderr, "  %s %s of %u blocks at lba %llu failed %d; pieces:",
				o->sgl_shaped ? "sgl-shaped" : "prp-shaped", kind_name[o->kind],
				o->nlb, (unsigned long long)o->lba, rc);
			for (unsigned i = 0; i < o->niov; i++)
				fprintf(stderr, " +%zu/%zu",
					(size_t)((uint8_t *)o->iov[i].iov_base - o->scat),
					o->iov[i].iov_len);
			fprintf(stderr, "\n");
		}
		w->submit_err++;
		note(w, "submit of %s of %u at lba %llu: %d", kind_name[o->kind], o->nlb,
		     (unsigned long long)o->lba, rc);
		return false;
	}
	if (o->kind != K_FLUSH)
		memset(w->busy + (o->lba - w->base), 1, o->nlb);
	o->busy = true;
	w->inflight++;
	w->submitted++;
	return true;
}

static bool more(struct worker *w)
{
	return w->stop ? !atomic_load(w->stop) : w->submitted < w->nops;
}

static void worker_run(struct worker *w)
{
	double t0 = nh_now(), end = t0 + RUN_LIMIT;

	while ((more(w) || w->inflight) && nh_now() < end) {
		int rc;

		while (more(w) && w->inflight < w->qd && submit_one(w))
			;
		rc = udrv_nvme_process_completions(w->qp, 0);
		if (rc < 0) {
			w->pc_err++;
			note(w, "process_completions: %d", rc);
			break;
		}
		if (w->submit_err > 10)
			break;
	}
	w->stuck = w->inflight != 0;
	w->secs = nh_now() - t0;
}

static void *worker_thread(void *arg)
{
	worker_run(arg);
	return NULL;
}

/* Read the worker's whole range back (on qp) and compare with the shadow copy. */
static void final_check(struct worker *w, struct udrv_nvme_qpair *qp)
{
	uint32_t chunk = udrv_nvme_ctrlr_info(w->c)->max_xfer / w->bs;
	uint8_t *buf = udrv_nvme_dma_alloc(w->c, (size_t)chunk * w->bs);
	unsigned before = w->bad_data;

	REQUIRE(buf);
	for (uint64_t lba = w->base; lba < w->base + w->n; lba += chunk) {
		uint32_t nlb =
		    lba + chunk <= w->base + w->n ? chunk : (uint32_t)(w->base + w->n - lba);

		CHECK_EQ(drv_read(qp, w->nsid, buf, lba, nlb), 0);
		check_blocks(w, buf, lba, nlb, "final read");
	}
	CHECK_EQ(w->bad_data, before);
	udrv_dma_free(udrv_nvme_domain(w->c), buf);
}

static void report(struct worker *w, const char *name)
{
	fprintf(stderr,
		"  %s: %u commands in %.2f s (qd %u): read %u write %u readv %u writev %u "
		"wz %u dealloc %u cmp %u cmp-fail %u flush %u; vectors prp %u sgl %u\n",
		name, w->completed, w->secs, w->qd, w->by_kind[K_READ], w->by_kind[K_WRITE],
		w->by_kind[K_READV], w->by_kind[K_WRITEV], w->by_kind[K_WZ], w->by_kind[K_DEALLOC],
		w->by_kind[K_CMP], w->by_kind[K_CMPBAD], w->by_kind[K_FLUSH], w->prp_shaped,
		w->sgl_shaped);
	if (w->first[0])
		fprintf(stderr, "  %s: first problem: %s\n", name, w->first);
	CHECK_EQ(w->bad_data, 0);
	CHECK_EQ(w->bad_rc, 0);
	CHECK_EQ(w->dup_cb, 0);
	CHECK_EQ(w->submit_err, 0);
	CHECK_EQ(w->pc_err, 0);
	CHECK(!w->stuck);
	if (!w->stop) {
		CHECK_EQ(w->completed, w->nops);
		CHECK_EQ(w->submitted, w->nops);
	}
	CHECK_EQ(w->completed, w->submitted);
	if (!w->faults)
		CHECK_EQ(w->timedout + w->failed, 0);
	else
		fprintf(stderr, "  %s: %u timed out, %u failed with an error status\n", name,
			w->timedout, w->failed);
	CHECK_EQ(udrv_nvme_qpair_outstanding(w->qp), 0);
	for (unsigned k = 0; k < K_N; k++)
		if (!w->by_kind[k])
			fprintf(stderr, "  %s: no %s ran\n", name, kind_name[k]);
}

static struct drv_emu emu;

static void run_one(struct udrv_nvme_ctrlr *c, unsigned entries, unsigned qd, unsigned nops,
		    uint64_t base, uint64_t n, const char *name)
{
	struct worker *w = calloc(1, sizeof(*w));

	REQUIRE(w);
	*w = (struct worker){.c = c,
			     .qp = drv_qpair(c, entries),
			     .nsid = 1,
			     .base = base,
			     .n = n,
			     .tag = 7,
			     .qd = qd,
			     .nops = nops,
			     .maxnlb = udrv_nvme_ctrlr_info(c)->max_xfer / 512,
			     .rng = 0x9e3779b97f4a7c15ull ^ base};
	{
		struct udrv_nvme_ns_info ns;

		REQUIRE(udrv_nvme_ns_info(c, 1, &ns) == 0);
		w->bs = ns.block_size;
		w->maxnlb = udrv_nvme_ctrlr_info(c)->max_xfer / ns.block_size;
	}
	worker_init(w);
	worker_run(w);
	report(w, name);
	final_check(w, w->qp);
	udrv_nvme_qpair_destroy(w->qp);
	worker_fini(w);
	free(w);
}

/* One queue pair, deep queue, every kind of command, 16384 blocks. */
static void test_integrity(void)
{
	struct udrv_nvme_ctrlr *c = drv_open(&emu, 4, 0);

	run_one(c, 64, 63, 6000, 0, 16384, "qd 63");
	/* A small queue wraps its phase often; one command at a time. */
	run_one(c, 4, 3, 2000, 16384, 2048, "entries 4");
	run_one(c, 2, 1, 300, 18432, 1024, "entries 2");
	udrv_nvme_close(c);
}

/* nthreads threads, each its own queue pair and range, at once. */
static void run_threads(unsigned nthreads, unsigned nops)
{
	struct udrv_nvme_ctrlr *c = drv_open(&emu, 4, 0);
	struct worker *w = calloc(nthreads, sizeof(*w));
	pthread_t t[8];
	char name[32];

	REQUIRE(w && nthreads <= 8);
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct worker){.c = c,
				       .qp = drv_qpair(c, 32),
				       .nsid = 1,
				       .bs = 512,
				       .base = 30000 + 10000 * (uint64_t)i,
				       .n = 8192,
				       .tag = 100 + i,
				       .qd = 24,
				       .nops = nops,
				       .maxnlb = 64,
				       .rng = 0x1234567ull * (i + 1)};
		worker_init(&w[i]);
	}
	for (unsigned i = 0; i < nthreads; i++)
		REQUIRE(pthread_create(&t[i], NULL, worker_thread, &w[i]) == 0);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	for (unsigned i = 0; i < nthreads; i++) {
		snprintf(name, sizeof(name), "thread %u/%u", i + 1, nthreads);
		report(&w[i], name);
	}
	/* Each range read back through another thread's queue pair: nothing crossed over. */
	for (unsigned i = 0; i < nthreads; i++)
		final_check(&w[i], w[(i + 1) % nthreads].qp);
	for (unsigned i = 0; i < nthreads; i++) {
		udrv_nvme_qpair_destroy(w[i].qp);
		worker_fini(&w[i]);
	}
	{
		struct udrv_nvme_stats st;

		udrv_nvme_stats(c, &st);
		CHECK_EQ(st.bad_cqes + st.timeouts + st.resets, 0);
	}
	free(w);
	udrv_nvme_close(c);
}

static void test_two_threads(void)
{
	run_threads(2, 4000);
}

static void test_four_threads(void)
{
	run_threads(4, 2000);
}

/*
 * Two threads at random mixed I/O, each on its own queue pair, while the controller is
 * made to lose, duplicate and garble completions, fail commands and report fatal status.
 * Resets come from whichever thread's command timed out, while the other thread is in the
 * middle of its own I/O. Commands may fail (-ETIMEDOUT, -EIO) but each calls back once,
 * successful reads return what the shadow copy says, no thread hangs or loses its queue
 * pair, and afterwards every range reads back as the shadow copy says.
 */
static void test_faults_under_load(void)
{
	static const char *const faults[] = {
	    "drop=1", "dup-cid=5", "bogus-cid=1",	    "error=2:0x4281", "bad-sq-head=1",
	    "fatal",  "drop=3",	   "dup-cid=2,bogus-cid=1", "error=1,drop=1",
	};
	const unsigned n = 2;
	struct udrv_nvme_ctrlr *c = drv_open(&emu, 4, 300);
	struct worker *w = calloc(n, sizeof(*w));
	struct udrv_nvme_stats st;
	atomic_bool stop = false;
	pthread_t t[2];
	char name[32];

	REQUIRE(w);
	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct worker){.c = c,
				       .qp = drv_qpair(c, 32),
				       .nsid = 1,
				       .bs = 512,
				       .base = 80000 + 10000 * (uint64_t)i,
				       .n = 4096,
				       .tag = 200 + i,
				       .qd = 16,
				       .maxnlb = 64,
				       .faults = true,
				       .stop = &stop,
				       .rng = 0xfeedull * (i + 1)};
		worker_init(&w[i]);
	}
	for (unsigned i = 0; i < n; i++)
		REQUIRE(pthread_create(&t[i], NULL, worker_thread, &w[i]) == 0);
	for (size_t f = 0; f < sizeof(faults) / sizeof(faults[0]); f++) {
		nh_sleep_ms(100);
		CHECK_EQ(udrv_emu_nvme_inject(emu.e, faults[f]), 0);
		nh_sleep_ms(600); /* past the timeout and the recovery */
	}
	nh_sleep_ms(200);
	atomic_store(&stop, true);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	udrv_nvme_stats(c, &st);
	fprintf(stderr,
		"  driver: bad_cqes %llu timeouts %llu aborts %llu resets %llu resubmits %llu\n",
		(unsigned long long)st.bad_cqes, (unsigned long long)st.timeouts,
		(unsigned long long)st.aborts, (unsigned long long)st.resets,
		(unsigned long long)st.resubmits);
	CHECK(st.resets >= 4);
	CHECK(st.bad_cqes >= 9);
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "faults, thread %u", i + 1);
		report(&w[i], name);
	}
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "clear"), 0);
	/* Each range read back through the other thread's queue pair. */
	for (unsigned i = 0; i < n; i++)
		final_check(&w[i], w[(i + 1) % n].qp);
	for (unsigned i = 0; i < n; i++) {
		udrv_nvme_qpair_destroy(w[i].qp);
		worker_fini(&w[i]);
	}
	free(w);
	udrv_nvme_close(c);
}

/* 4096-byte blocks: transfers up to 64 blocks, vectors of whole pages. */
static void test_4k_blocks(void)
{
	struct drv_emu m;
	struct udrv_nvme_ctrlr *c;

	drv_emu_up(
	    &m, (struct udrv_emu_nvme_opts){.size = 32ull << 20, .block_size = 4096, .queues = 2});
	c = drv_open(&m, 0, 0);
	run_one(c, 32, 16, 2000, 100, 4096, "4k blocks");
	udrv_nvme_close(c);
	drv_emu_down(&m);
}

int main(void)
{
	struct udrv_emu_nvme_stats es;

	udrv_log_set_level(UDRV_LOG_ERR);
	drv_emu_up(&emu, (struct udrv_emu_nvme_opts){.size = 64ull << 20, .queues = 4});
	RUN(test_integrity);
	RUN(test_two_threads);
	RUN(test_four_threads);
	RUN(test_4k_blocks);
	RUN(test_faults_under_load);
	CHECK_EQ(udrv_emu_nvme_stats(emu.e, &es), 0);
	CHECK_EQ(es.bad_dptr, 0);
	drv_emu_down(&emu);
	return test_done();
}
