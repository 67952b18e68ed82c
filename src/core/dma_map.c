/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "dma_map.h"

#define SZ_2M (1ull << DMA_MAP_SHIFT_2M)
#define SZ_4K (1ull << DMA_MAP_SHIFT_4K)

int dma_map_init(struct dma_map *m)
{
	/* 2 MiB of pointers, reserved but only backed where touched. */
	void *p = mmap(NULL, DMA_MAP_L1_SIZE * sizeof(*m->l1), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	m->l1 = p;
	return 0;
}

static void free_l2(struct dma_map_l2 *l2)
{
	for (unsigned i = 0; i < DMA_MAP_ENTRIES; i++) {
		uint64_t e = atomic_load_explicit(&l2->e[i], memory_order_relaxed);
		if ((e & DMA_MAP_VALID) && (e & DMA_MAP_TABLE))
			free((void *)(uintptr_t)(e & ~DMA_MAP_FLAGS));
	}
	free(l2);
}

void dma_map_fini(struct dma_map *m)
{
	if (!m->l1)
		return;
	for (unsigned i = 0; i < DMA_MAP_L1_SIZE; i++) {
		struct dma_map_l2 *l2 = atomic_load_explicit(&m->l1[i], memory_order_relaxed);
		if (l2)
			free_l2(l2);
	}
	munmap(m->l1, DMA_MAP_L1_SIZE * sizeof(*m->l1));
	m->l1 = NULL;
}

static struct dma_map_l2 *get_l2(struct dma_map *m, uintptr_t va)
{
	size_t i = va >> DMA_MAP_SHIFT_1G;
	struct dma_map_l2 *l2 = atomic_load_explicit(&m->l1[i], memory_order_relaxed);

	if (l2)
		return l2;
	l2 = calloc(1, sizeof(*l2));
	if (l2)
		atomic_store_explicit(&m->l1[i], l2, memory_order_release);
	return l2;
}

static struct dma_map_l3 *get_l3(struct dma_map_l2 *l2, unsigned idx)
{
	uint64_t e = atomic_load_explicit(&l2->e[idx], memory_order_relaxed);
	struct dma_map_l3 *l3;

	if (e & DMA_MAP_VALID)
		return (e & DMA_MAP_TABLE) ? (struct dma_map_l3 *)(uintptr_t)(e & ~DMA_MAP_FLAGS)
					   : NULL;
	l3 = calloc(1, sizeof(*l3));
	if (!l3)
		return NULL;
	atomic_store_explicit(&l2->e[idx], (uint64_t)(uintptr_t)l3 | DMA_MAP_TABLE | DMA_MAP_VALID,
			      memory_order_release);
	return l3;
}

int dma_map_any(const struct dma_map *m, uintptr_t va, size_t len)
{
	for (uintptr_t p = va; p < va + len; p += SZ_4K)
		if (dma_map_lookup(m, p) != UINT64_MAX)
			return 1;
	return 0;
}

int dma_map_set(struct dma_map *m, uintptr_t va, size_t len, size_t page_size,
		uint64_t (*xlate)(void *ctx, uintptr_t va), void *ctx)
{
	uintptr_t end = va + len, p = va;
	int rc = 0;

	if ((va | len) & (SZ_4K - 1) || (end - 1) >> (DMA_MAP_SHIFT_1G + DMA_MAP_L1_BITS))
		return -EINVAL;
	while (p < end) {
		struct dma_map_l2 *l2 = get_l2(m, p);
		unsigned i2 = (p >> DMA_MAP_SHIFT_2M) & (DMA_MAP_ENTRIES - 1);
		uintptr_t block_end = (p & ~(SZ_2M - 1)) + SZ_2M;
		struct dma_map_l3 *l3;
		uint64_t old;

		if (!l2) {
			rc = -ENOMEM;
			break;
		}
		old = atomic_load_explicit(&l2->e[i2], memory_order_relaxed);
		if ((old & DMA_MAP_VALID) && !(old & DMA_MAP_TABLE)) {
			rc = -EEXIST; /* another chunk owns this whole 2 MiB block */
			break;
		}
		if (page_size >= SZ_2M && !(p & (SZ_2M - 1)) && block_end <= end && !old) {
			uint64_t iova = xlate(ctx, p);
			if (iova & (SZ_2M - 1)) {
				rc = -EINVAL; /* the caller broke the congruence rule */
				break;
			}
			atomic_store_explicit(&l2->e[i2], iova | DMA_MAP_VALID,
					      memory_order_release);
			p = block_end;
			continue;
		}
		l3 = get_l3(l2, i2);
		if (!l3) {
			rc = -ENOMEM;
			break;
		}
		for (; p < end && p < block_end; p += SZ_4K) {
			unsigned i3 = (p >> DMA_MAP_SHIFT_4K) & (DMA_MAP_ENTRIES - 1);
			atomic_store_explicit(&l3->e[i3], xlate(ctx, p) | DMA_MAP_VALID,
					      memory_order_release);
		}
	}
	if (rc < 0)
		dma_map_clear(m, va, p - va, page_size);
	return rc;
}

void dma_map_clear(struct dma_map *m, uintptr_t va, size_t len, size_t page_size)
{
	uintptr_t end = va + len, p = va;

	(void)page_size;
	while (p < end) {
		size_t i1 = p >> DMA_MAP_SHIFT_1G;
		struct dma_map_l2 *l2 = atomic_load_explicit(&m->l1[i1], memory_order_relaxed);
		unsigned i2 = (p >> DMA_MAP_SHIFT_2M) & (DMA_MAP_ENTRIES - 1);
		uintptr_t block_end = (p & ~(SZ_2M - 1)) + SZ_2M;
		uint64_t e;

		if (!l2) {
			p = (p & ~((1ull << DMA_MAP_SHIFT_1G) - 1)) + (1ull << DMA_MAP_SHIFT_1G);
			continue;
		}
		e = atomic_load_explicit(&l2->e[i2], memory_order_relaxed);
		if ((e & DMA_MAP_VALID) && !(e & DMA_MAP_TABLE)) {
			atomic_store_explicit(&l2->e[i2], 0, memory_order_release);
		} else if (e & DMA_MAP_VALID) {
			struct dma_map_l3 *l3 =
			    (struct dma_map_l3 *)(uintptr_t)(e & ~DMA_MAP_FLAGS);
			for (uintptr_t q = p; q < end && q < block_end; q += SZ_4K) {
				unsigned i3 = (q >> DMA_MAP_SHIFT_4K) & (DMA_MAP_ENTRIES - 1);
				atomic_store_explicit(&l3->e[i3], 0, memory_order_release);
			}
			/* Tables are freed only when the whole map goes (dma_map_fini): a
			 * concurrent lookup of another chunk may still be walking this one. */
		}
		p = block_end < end ? block_end : end;
	}
}
