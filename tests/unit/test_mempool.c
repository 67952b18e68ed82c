/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Mempool: buffers know their IOVA; 10^7 operations across 2 threads, allocated on one and
 * freed on the other, lose nothing and never hand a buffer out twice.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <udrv/log.h>
#include <udrv/mempool.h>
#include <udrv/ring.h>

#include "core/dma_internal.h"
#include "test.h"

static int nop_map(void *ctx, const struct udrv_dma_segment *seg)
{
	return 0;
}

static const struct udrv_dma_mapper_ops nop_ops = {"fake", nop_map, nop_map};

static struct udrv_dma_domain *domain(enum udrv_dma_mode mode)
{
	static int ctx;
	struct udrv_dma_domain *d = udrv_dma_domain_create();

	REQUIRE(d);
	REQUIRE(udrv_dma_domain_attach(d, mode, &nop_ops, &ctx, NULL, 0) == 0);
	return d;
}

static void test_create(void)
{
	struct udrv_dma_domain *d = domain(UDRV_DMA_MODE_IOVA);
	struct udrv_mempool_opts o = {.count = 1000, .buf_size = 2048, .align = 0};
	struct udrv_mempool *p = udrv_mempool_create(d, &o);
	struct udrv_buf *all[1000];

	REQUIRE(p);
	CHECK_EQ(udrv_mempool_count(p), 1000);
	CHECK_EQ(udrv_mempool_avail(p), 1000);
	CHECK_EQ(udrv_mempool_get_bulk(p, all, 1000), 1000);
	CHECK_EQ(udrv_mempool_avail(p), 0);
	CHECK(udrv_mempool_get(p) == NULL);
	for (int i = 0; i < 1000; i++) {
		CHECK(all[i]->pool == p && all[i]->size == 2048);
		CHECK(all[i]->iova == udrv_dma_iova(d, all[i]->data));
		CHECK(udrv_dma_contig(d, all[i]->data, 2048) == 2048);
		CHECK(udrv_mempool_buf(p, all[i]->index) == all[i]);
		CHECK_EQ((uintptr_t)all[i]->data % 64, 0);
	}
	CHECK(udrv_mempool_buf(p, 1000) == NULL);
	udrv_mempool_put_bulk(p, all, 1000);
	CHECK_EQ(udrv_mempool_avail(p), 1000);
	CHECK_EQ(udrv_mempool_get_bulk(p, all, 1001), 0);
	udrv_mempool_destroy(p);

	o.align = 4096;
	o.buf_size = 4096;
	o.count = 64;
	p = udrv_mempool_create(d, &o);
	REQUIRE(p);
	for (int i = 0; i < 64; i++)
		CHECK_EQ((uintptr_t)udrv_mempool_buf(p, (uint32_t)i)->data % 4096, 0);
	udrv_mempool_destroy(p);

	o.align = 3;
	CHECK(udrv_mempool_create(d, &o) == NULL && errno == EINVAL);
	udrv_dma_domain_destroy(d);

	d = udrv_dma_domain_create();
	o.align = 0;
	CHECK(udrv_mempool_create(d, &o) == NULL && errno == EINVAL);
	udrv_dma_domain_destroy(d);
}

/* Under UIO with 4 KiB pages, a 3000-byte buffer must not straddle two physical pages. */
static void test_phys_contig(void)
{
	struct udrv_dma_domain *d;
	struct udrv_mempool_opts o = {.count = 300, .buf_size = 3000};
	struct udrv_mempool *p;

	if (geteuid() != 0)
		return;
	/* Physical mode refuses movable 4 KiB pages unless compaction leaves locked pages
	 * alone; allow that for this test so the page-straddling logic is exercised. */
	FILE *f = fopen("/proc/sys/vm/compact_unevictable_allowed", "r+");
	int before = f ? fgetc(f) : '0';
	if (f) {
		rewind(f);
		fputc('0', f);
		fclose(f);
	}
	d = domain(UDRV_DMA_MODE_PHYS);
	o.align = 0;
	p = udrv_mempool_create(d, &o);
	f = fopen("/proc/sys/vm/compact_unevictable_allowed", "w");
	if (f) {
		fputc(before, f);
		fclose(f);
	}
	REQUIRE(p);
	for (uint32_t i = 0; i < 300; i++) {
		struct udrv_buf *b = udrv_mempool_buf(p, i);
		CHECK(udrv_dma_contig(d, b->data, b->size) == b->size);
		CHECK(b->iova == udrv_dma_iova(d, b->data));
	}
	udrv_mempool_destroy(p);
	udrv_dma_domain_destroy(d);
}

#define OPS	  10000000u
#define POOL_BUFS 4096

struct xfer {
	struct udrv_mempool *pool;
	struct udrv_ring *to_b; /* buffers allocated by A, to be freed by B */
	atomic_uint dup, lost_owner;
	atomic_uint done;
};

/* user[0] is 1 while a thread owns the buffer: taking an owned one means a double hand-out. */
static void take(struct xfer *x, struct udrv_buf *b)
{
	if (__atomic_exchange_n(&b->user[0], 1, __ATOMIC_ACQ_REL) != 0)
		atomic_fetch_add(&x->dup, 1);
}

static void give(struct xfer *x, struct udrv_buf *b)
{
	if (__atomic_exchange_n(&b->user[0], 0, __ATOMIC_ACQ_REL) != 1)
		atomic_fetch_add(&x->lost_owner, 1);
}

static void *thread_a(void *arg)
{
	struct xfer *x = arg;
	struct udrv_buf *b[32];
	unsigned sent = 0, burst = 1;

	while (sent < OPS) {
		unsigned n = burst, got;
		if (n > OPS - sent)
			n = OPS - sent;
		got = udrv_mempool_get_bulk(x->pool, b, n);
		if (!got)
			continue; /* B still holds them: it will free some */
		for (unsigned i = 0; i < got; i++)
			take(x, b[i]);
		unsigned q = 0;
		while (q < got)
			q += udrv_ring_enqueue_burst(x->to_b, (void *const *)&b[q], got - q, NULL);
		sent += got;
		burst = burst % 32 + 1;
	}
	atomic_store(&x->done, 1);
	return NULL;
}

static void *thread_b(void *arg)
{
	struct xfer *x = arg;
	struct udrv_buf *b[32];
	unsigned freed = 0, burst = 7;

	while (freed < OPS) {
		unsigned n = udrv_ring_dequeue_burst(x->to_b, (void **)b, burst, NULL);
		for (unsigned i = 0; i < n; i++)
			give(x, b[i]);
		/* Return them in varying batch sizes, some singly. */
		if (n && (freed & 1))
			for (unsigned i = 0; i < n; i++)
				udrv_mempool_put(b[i]);
		else if (n)
			udrv_mempool_put_bulk(x->pool, b, n);
		freed += n;
		burst = burst % 32 + 1;
	}
	return NULL;
}

static void test_two_threads(void)
{
	struct udrv_dma_domain *d = domain(UDRV_DMA_MODE_IOVA);
	struct udrv_mempool_opts o = {.count = POOL_BUFS, .buf_size = 64, .cache = 128};
	struct xfer x = {0};
	pthread_t a, b;

	x.pool = udrv_mempool_create(d, &o);
	x.to_b = udrv_ring_create(1024, UDRV_RING_SP_ENQ | UDRV_RING_SC_DEQ);
	REQUIRE(x.pool && x.to_b);
	REQUIRE(pthread_create(&a, NULL, thread_a, &x) == 0);
	REQUIRE(pthread_create(&b, NULL, thread_b, &x) == 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	CHECK_EQ(atomic_load(&x.dup), 0);
	CHECK_EQ(atomic_load(&x.lost_owner), 0);
	/* Both threads have exited: their caches went back to the pool. */
	CHECK_EQ(udrv_mempool_avail(x.pool), POOL_BUFS);
	struct udrv_buf *all[POOL_BUFS];
	CHECK_EQ(udrv_mempool_get_bulk(x.pool, all, POOL_BUFS), POOL_BUFS);
	for (unsigned i = 0; i < POOL_BUFS; i++)
		CHECK_EQ(all[i]->user[0], 0);
	udrv_mempool_put_bulk(x.pool, all, POOL_BUFS);
	udrv_ring_free(x.to_b);
	udrv_mempool_destroy(x.pool);
	udrv_dma_domain_destroy(d);
}

int main(void)
{
	udrv_log_set_level(UDRV_LOG_ERR);
	RUN(test_create);
	RUN(test_phys_contig);
	RUN(test_two_threads);
	return test_done();
}
