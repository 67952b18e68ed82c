/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv/mempool.h - fixed-size DMA buffers, shared between threads.
 *
 * A pool carves count buffers of one size from DMA memory mapped in a domain; each buffer
 * knows its IOVA, so the fast path never translates. Free buffers live in a lock-free MPMC
 * ring; each thread keeps a small cache in front of it, so get/put usually touch only
 * thread-local memory, and a buffer taken on one thread may be returned on any other (DPDK's
 * rte_mempool model; ixy's pool is single-threaded).
 *
 * Every buffer is IOVA-contiguous: under UIO without hugepages, positions that would cross a
 * physical page boundary are skipped.
 *
 * Threads: get/put from any number of threads concurrently, no locks, no system calls (the first
 * get/put of a thread on a pool allocates that thread's cache, once). create/destroy are slow
 * path: destroy only when no thread uses the pool any more. Each thread's cache is flushed back
 * to the pool when the thread exits. As with DPDK, the shared ring assumes its users are not
 * preempted in the middle of an operation: run at most one pool-using thread per core (pinned)
 * for predictable speed; oversubscribed cores make requests that miss the cache slow.
 *
 * A pool holds a reference on its domain: the domain outlives the device that created it until
 * the pool is destroyed.
 */
#ifndef UDRV_MEMPOOL_H
#define UDRV_MEMPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <udrv/dma.h>

#ifdef __cplusplus
extern "C" {
#endif

struct udrv_mempool;

/* Buffer descriptor. Descriptors are ordinary memory; data points into DMA memory. */
struct udrv_buf {
	void *data;		   /* buffer start, aligned as requested */
	uint64_t iova;		   /* device address of data */
	struct udrv_mempool *pool; /* owner */
	uint32_t size;		   /* capacity of data in bytes */
	uint32_t index;		   /* 0..count-1, stable for the pool's life */
	uint32_t len;		   /* free for the user (e.g. packet length); 0 on create */
	uint32_t offset;	   /* free for the user (e.g. headroom); 0 on create */
	uint64_t user[3];	   /* free for the user */
} __attribute__((aligned(64)));

struct udrv_mempool_opts {
	unsigned count;	 /* number of buffers (required) */
	size_t buf_size; /* bytes per buffer (required) */
	size_t align;	 /* power of two; 0 means 64 (use 4096 for page-sized I/O buffers) */
	unsigned cache;	 /* per-thread cache size; 0 means min(256, count / 8) */
};

/*
 * Create a pool in dom. The domain must already have a device attached (the IOVA mode must be
 * known). Returns the pool, or NULL with errno: EINVAL (bad options, or no device in the
 * domain), ENOMEM (see udrv_dma_mem_alloc / udrv_dma_domain_add; udrv_errmsg() says what to
 * run).
 */
struct udrv_mempool *udrv_mempool_create(struct udrv_dma_domain *dom,
					 const struct udrv_mempool_opts *opts);

/* Free the pool and its DMA memory. No thread may use it concurrently. NULL is ignored. */
void udrv_mempool_destroy(struct udrv_mempool *pool);

/*
 * Take n buffers into bufs: all of them or none. Returns n, or 0 when the pool has fewer
 * than n free (nothing taken). Lock-free; any thread.
 */
unsigned udrv_mempool_get_bulk(struct udrv_mempool *pool, struct udrv_buf **bufs, unsigned n);

/* Return n buffers, all from this pool. Never fails. Any thread. */
void udrv_mempool_put_bulk(struct udrv_mempool *pool, struct udrv_buf *const *bufs, unsigned n);

/* One buffer, or NULL when the pool is empty. */
static inline struct udrv_buf *udrv_mempool_get(struct udrv_mempool *pool)
{
	struct udrv_buf *b;

	return udrv_mempool_get_bulk(pool, &b, 1) ? b : NULL;
}

static inline void udrv_mempool_put(struct udrv_buf *b)
{
	udrv_mempool_put_bulk(b->pool, &b, 1);
}

/* The descriptor of buffer index (0..count-1), e.g. to map a device's buffer id back. */
struct udrv_buf *udrv_mempool_buf(const struct udrv_mempool *pool, uint32_t index);

/* Number of buffers. */
unsigned udrv_mempool_count(const struct udrv_mempool *pool);

/*
 * Free buffers in the shared ring and every thread's cache. Exact only when no thread is
 * using the pool; otherwise a snapshot.
 */
unsigned udrv_mempool_avail(struct udrv_mempool *pool);

#ifdef __cplusplus
}
#endif
#endif
