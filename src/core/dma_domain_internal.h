/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef UDRV_DMA_DOMAIN_INTERNAL_H
#define UDRV_DMA_DOMAIN_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "dma_internal.h"
#include "dma_map.h"

#define DOM_MAX_RANGES 16

struct dom_chunk {
	struct udrv_dma_mem *mem;
	uint64_t iova; /* of the first byte (IOVA mode: the whole chunk is contiguous) */
	bool mapped;   /* IOVAs assigned and recorded in the table */
	struct dom_chunk *next;
};

struct dom_mapper {
	const struct udrv_dma_mapper_ops *ops;
	void *ctx;
	struct dom_mapper *next;
};

struct heap_chunk; /* dma_heap.c */

struct udrv_dma_domain {
	struct dma_map map;   /* read lock-free by udrv_dma_iova() */
	pthread_mutex_t lock; /* everything below */
	unsigned refs;	      /* creator + open devices + mempools */
	enum udrv_dma_mode mode;
	struct dom_chunk *chunks;
	struct dom_mapper *mappers;
	struct udrv_dma_range ranges[DOM_MAX_RANGES];
	unsigned nr_ranges;
	struct heap_chunk *heap;
};

int dma_domain_add_locked(struct udrv_dma_domain *d, struct udrv_dma_mem *mem);
int dma_domain_remove_locked(struct udrv_dma_domain *d, struct udrv_dma_mem *mem);
void dma_heap_fini_locked(struct udrv_dma_domain *d);

#endif
