/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Mempool: a shared MPMC ring of free buffer descriptors, fronted by per-thread caches.
 *
 * Each pool owns a slot in a small process-wide table; a thread finds its cache for the pool in
 * its thread-local array at that slot, tagged with the pool's generation (never reused), so a
 * stale entry left by a destroyed pool is never followed. A thread-exit destructor flushes the
 * thread's caches back into their pools.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <udrv/mempool.h>
#include <udrv/ring.h>

#include "dma_domain_internal.h"
#include "dma_mem_internal.h"
#include "log_internal.h"

#define POOL_SLOTS 64
#define CACHE_MAX  512

struct pool_cache {
	unsigned len;	/* buffers held */
	unsigned size;	/* target fill after a refill or flush */
	unsigned limit; /* flush above this (1.5 x size, as DPDK does, to damp ping-pong) */
	struct pool_cache *next;	      /* in the pool's list, under registry_lock */
	struct udrv_buf *objs[CACHE_MAX * 3]; /* limit + one put of up to size */
};

struct udrv_mempool {
	struct udrv_ring *ring;
	struct udrv_dma_domain *dom;
	struct udrv_buf *bufs; /* descriptors, count of them */
	unsigned count;
	unsigned cache_size;
	int slot; /* -1: no per-thread cache */
	uint64_t gen;
	struct udrv_dma_mem **mems; /* DMA chunks owned by the pool */
	unsigned nr_mems;
	struct pool_cache *caches; /* under registry_lock */
};

struct tls_slot {
	uint64_t gen;
	struct pool_cache *cache;
};

static _Thread_local struct tls_slot tls[POOL_SLOTS];
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct udrv_mempool *registry[POOL_SLOTS];
static uint64_t next_gen = 1;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void cache_unlink(struct udrv_mempool *p, struct pool_cache *c)
{
	for (struct pool_cache **pp = &p->caches; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			return;
		}
}

/* Thread exit: give cached buffers back to pools that still exist. */
static void thread_exit(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&registry_lock);
	for (int i = 0; i < POOL_SLOTS; i++) {
		struct udrv_mempool *p = registry[i];
		struct pool_cache *c = tls[i].cache;

		if (!c)
			continue;
		if (p && p->gen == tls[i].gen) {
			udrv_ring_enqueue_bulk(p->ring, (void *const *)c->objs, c->len, NULL);
			cache_unlink(p, c);
			free(c);
		}
		tls[i].cache = NULL;
		tls[i].gen = 0;
	}
	pthread_mutex_unlock(&registry_lock);
}

static void make_key(void)
{
	pthread_key_create(&exit_key, thread_exit);
}

static struct pool_cache *cache_create(struct udrv_mempool *p)
{
	struct pool_cache *c;

	if (p->slot < 0 || p->cache_size == 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		/* Use the ring directly from now on (slower, still correct): remember that, so
		 * the fast path does not retry the allocation on every call. */
		tls[p->slot].gen = p->gen;
		tls[p->slot].cache = NULL;
		return NULL;
	}
	c->size = p->cache_size;
	c->limit = p->cache_size + p->cache_size / 2;
	pthread_once(&exit_once, make_key);
	pthread_setspecific(exit_key, tls); /* any non-NULL value arms the destructor */
	pthread_mutex_lock(&registry_lock);
	c->next = p->caches;
	p->caches = c;
	pthread_mutex_unlock(&registry_lock);
	tls[p->slot].gen = p->gen;
	tls[p->slot].cache = c;
	return c;
}

static inline struct pool_cache *my_cache(struct udrv_mempool *p)
{
	if (p->slot >= 0 && tls[p->slot].gen == p->gen)
		return tls[p->slot].cache;
	return cache_create(p);
}

unsigned udrv_mempool_get_bulk(struct udrv_mempool *p, struct udrv_buf **bufs, unsigned n)
{
	struct pool_cache *c = my_cache(p);

	if (!c || n > c->size)
		return udrv_ring_dequeue_bulk(p->ring, (void **)bufs, n, NULL);
	if (c->len < n) {
		/* Refill to size plus what this request takes. */
		unsigned want = c->size + n - c->len;
		c->len += udrv_ring_dequeue_burst(p->ring, (void **)&c->objs[c->len], want, NULL);
		if (c->len < n)
			return 0;
	}
	/* Hand out from the top: the most recently freed buffers are the cache-hot ones. */
	for (unsigned i = 0; i < n; i++)
		bufs[i] = c->objs[--c->len];
	return n;
}

void udrv_mempool_put_bulk(struct udrv_mempool *p, struct udrv_buf *const *bufs, unsigned n)
{
	struct pool_cache *c = my_cache(p);

	if (!c || n > c->size) {
		/* The ring has room for every buffer of the pool, so this cannot fail. */
		udrv_ring_enqueue_bulk(p->ring, (void *const *)bufs, n, NULL);
		return;
	}
	memcpy(&c->objs[c->len], bufs, n * sizeof(*bufs));
	c->len += n;
	if (c->len > c->limit) {
		unsigned extra = c->len - c->size;
		udrv_ring_enqueue_bulk(p->ring, (void *const *)&c->objs[c->size], extra, NULL);
		c->len = c->size;
	}
}

static unsigned next_pow2(unsigned v)
{
	unsigned r = 2;

	while (r < v)
		r <<= 1;
	return r;
}

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Carve buffers from a new DMA chunk until the pool has count or the chunk is used up. */
static int carve_chunk(struct udrv_mempool *p, size_t stride, size_t buf_size, unsigned *made)
{
	size_t want = (size_t)(p->count - *made) * stride;
	struct udrv_dma_mem *mem;
	struct udrv_dma_mem **mems;
	char *base;
	size_t size;
	int rc;

	mems = realloc(p->mems, (p->nr_mems + 1) * sizeof(*mems));
	if (!mems)
		return udrv_err(ENOMEM, "out of memory");
	p->mems = mems;
	mem = udrv_dma_mem_alloc(want, 0);
	if (!mem)
		return -errno;
	rc = udrv_dma_domain_add(p->dom, mem);
	if (rc < 0) {
		udrv_dma_mem_free(mem);
		return rc;
	}
	p->mems[p->nr_mems++] = mem;
	base = udrv_dma_mem_va(mem);
	size = udrv_dma_mem_size(mem);
	for (size_t off = 0; off + buf_size <= size && *made < p->count; off += stride) {
		struct udrv_buf *b = &p->bufs[*made];

		/* Skip a position that straddles a physical discontinuity (UIO, 4 KiB pages). */
		if (udrv_dma_contig(p->dom, base + off, buf_size) < buf_size)
			continue;
		b->data = base + off;
		b->iova = udrv_dma_iova(p->dom, base + off);
		b->pool = p;
		b->size = (uint32_t)buf_size;
		b->index = *made;
		(*made)++;
	}
	return 0;
}

struct udrv_mempool *udrv_mempool_create(struct udrv_dma_domain *dom,
					 const struct udrv_mempool_opts *o)
{
	struct udrv_mempool *p;
	size_t align, stride;
	unsigned made = 0, tries = 0;
	int rc;

	if (!dom || !o || o->count == 0 || o->buf_size == 0 || o->buf_size > UINT32_MAX ||
	    o->count > (1u << 30) || (o->align & (o->align - 1)) || o->align > (2u << 20))
		return udrv_err_null(EINVAL,
				     "invalid mempool options (count %u, buffer size %zu, "
				     "alignment %zu)",
				     o ? o->count : 0, o ? o->buf_size : 0, o ? o->align : 0);
	if (udrv_dma_domain_get_mode(dom) == UDRV_DMA_MODE_UNSET)
		return udrv_err_null(EINVAL, "the DMA domain has no device yet: open a device with "
					     "it before creating a mempool");
	align = o->align ? o->align : 64;
	stride = align_up(o->buf_size, align);
	p = calloc(1, sizeof(*p));
	if (!p)
		return udrv_err_null(ENOMEM, "out of memory");
	p->dom = dom;
	udrv_dma_domain_get(dom); /* the pool's chunks live in the domain */
	p->count = o->count;
	p->slot = -1;
	p->cache_size = o->cache ? o->cache : (o->count / 8 < 256 ? o->count / 8 : 256);
	if (p->cache_size > CACHE_MAX)
		p->cache_size = CACHE_MAX;
	p->bufs = aligned_alloc(64, align_up((size_t)o->count * sizeof(*p->bufs), 64));
	p->ring = udrv_ring_create(next_pow2(o->count), 0);
	if (!p->bufs || !p->ring) {
		rc = udrv_err(ENOMEM, "out of memory for a mempool of %u buffers", o->count);
		goto fail;
	}
	memset(p->bufs, 0, (size_t)o->count * sizeof(*p->bufs));
	/* Each chunk is sized for what is still missing; a second round is needed only when
	 * physical discontinuities made positions unusable. */
	while (made < p->count) {
		if (++tries > 64) {
			rc = udrv_err(ENOMEM,
				      "cannot find IOVA-contiguous room for %zu-byte buffers; "
				      "reserve hugepages with `echo 64 > "
				      "/proc/sys/vm/nr_hugepages`",
				      o->buf_size);
			goto fail;
		}
		rc = carve_chunk(p, stride, o->buf_size, &made);
		if (rc < 0)
			goto fail;
	}
	for (unsigned i = 0; i < p->count; i++) {
		void *b = &p->bufs[i];
		udrv_ring_enqueue(p->ring, b);
	}
	pthread_mutex_lock(&registry_lock);
	p->gen = next_gen++;
	for (int i = 0; i < POOL_SLOTS; i++)
		if (!registry[i]) {
			registry[i] = p;
			p->slot = i;
			break;
		}
	pthread_mutex_unlock(&registry_lock);
	return p;
fail:
	udrv_mempool_destroy(p);
	errno = -rc;
	return NULL;
}

void udrv_mempool_destroy(struct udrv_mempool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&registry_lock);
	if (p->slot >= 0 && registry[p->slot] == p)
		registry[p->slot] = NULL;
	while (p->caches) {
		struct pool_cache *c = p->caches;
		p->caches = c->next;
		free(c);
	}
	pthread_mutex_unlock(&registry_lock);
	/* This thread's entry would otherwise keep a dangling pointer under a dead generation;
	 * harmless, but clear it for tidiness. Other threads' entries are never dereferenced. */
	if (p->slot >= 0 && tls[p->slot].gen == p->gen) {
		tls[p->slot].gen = 0;
		tls[p->slot].cache = NULL;
	}
	for (unsigned i = 0; i < p->nr_mems; i++) {
		udrv_dma_domain_remove(p->dom, p->mems[i]);
		udrv_dma_mem_free(p->mems[i]);
	}
	free(p->mems);
	udrv_dma_domain_destroy(p->dom);
	udrv_ring_free(p->ring);
	free(p->bufs);
	free(p);
}

struct udrv_buf *udrv_mempool_buf(const struct udrv_mempool *p, uint32_t index)
{
	return index < p->count ? &p->bufs[index] : NULL;
}

unsigned udrv_mempool_count(const struct udrv_mempool *p)
{
	return p->count;
}

unsigned udrv_mempool_avail(struct udrv_mempool *p)
{
	unsigned n = udrv_ring_count(p->ring);

	pthread_mutex_lock(&registry_lock);
	for (struct pool_cache *c = p->caches; c; c = c->next)
		n += __atomic_load_n(&c->len, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&registry_lock);
	return n;
}
