/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Virtual address -> IOVA translation table: three levels over the 47-bit user address space,
 * like a page table. Level 1 covers 1 GiB per entry, level 2 2 MiB, level 3 4 KiB. A level-2
 * entry is either a leaf (the 2 MiB block is IOVA-contiguous) or points to a level-3 table.
 * Lookups are lock-free: entries are published with release stores, read with acquire loads.
 */
#ifndef UDRV_DMA_MAP_H
#define UDRV_DMA_MAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define DMA_MAP_L1_BITS	 18 /* VA bits 47..30 */
#define DMA_MAP_L1_SIZE	 (1u << DMA_MAP_L1_BITS)
#define DMA_MAP_ENTRIES	 512
#define DMA_MAP_SHIFT_1G 30
#define DMA_MAP_SHIFT_2M 21
#define DMA_MAP_SHIFT_4K 12

#define DMA_MAP_VALID 1ull /* entry maps something */
#define DMA_MAP_TABLE 2ull /* level-2 entry points to a level-3 table */
#define DMA_MAP_FLAGS 3ull

struct dma_map_l2 {
	_Atomic uint64_t e[DMA_MAP_ENTRIES];
};

struct dma_map_l3 {
	_Atomic uint64_t e[DMA_MAP_ENTRIES];
};

struct dma_map {
	_Atomic(struct dma_map_l2 *) *l1; /* DMA_MAP_L1_SIZE entries, lazily zero pages */
};

int dma_map_init(struct dma_map *m);
void dma_map_fini(struct dma_map *m);

/*
 * Record that [va, va+len) translates to IOVAs given by xlate(ctx, va_of_page) for each page
 * of page_size (4 KiB or 2 MiB; va and len multiples of it). A 2 MiB page becomes a leaf.
 * Returns 0 or -ENOMEM (nothing recorded).
 */
int dma_map_set(struct dma_map *m, uintptr_t va, size_t len, size_t page_size,
		uint64_t (*xlate)(void *ctx, uintptr_t va), void *ctx);

/* Forget [va, va+len) (same granularity as set). */
void dma_map_clear(struct dma_map *m, uintptr_t va, size_t len, size_t page_size);

/* True if any page of [va, va+len) is already recorded. */
int dma_map_any(const struct dma_map *m, uintptr_t va, size_t len);

static inline uint64_t dma_map_lookup(const struct dma_map *m, uintptr_t va)
{
	const struct dma_map_l2 *l2;
	const struct dma_map_l3 *l3;
	uint64_t e;

	if (va >> (DMA_MAP_SHIFT_1G + DMA_MAP_L1_BITS))
		return UINT64_MAX;
	l2 = atomic_load_explicit(&m->l1[va >> DMA_MAP_SHIFT_1G], memory_order_acquire);
	if (!l2)
		return UINT64_MAX;
	e = atomic_load_explicit(&l2->e[(va >> DMA_MAP_SHIFT_2M) & (DMA_MAP_ENTRIES - 1)],
				 memory_order_acquire);
	if (!(e & DMA_MAP_VALID))
		return UINT64_MAX;
	if (!(e & DMA_MAP_TABLE))
		return (e & ~DMA_MAP_FLAGS) + (va & ((1u << DMA_MAP_SHIFT_2M) - 1));
	l3 = (const struct dma_map_l3 *)(uintptr_t)(e & ~DMA_MAP_FLAGS);
	e = atomic_load_explicit(&l3->e[(va >> DMA_MAP_SHIFT_4K) & (DMA_MAP_ENTRIES - 1)],
				 memory_order_acquire);
	if (!(e & DMA_MAP_VALID))
		return UINT64_MAX;
	return (e & ~DMA_MAP_FLAGS) + (va & ((1u << DMA_MAP_SHIFT_4K) - 1));
}

#endif
