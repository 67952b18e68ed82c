/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef UDRV_DMA_MEM_INTERNAL_H
#define UDRV_DMA_MEM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

struct udrv_dma_mem {
	void *va;	  /* 2 MiB-aligned */
	size_t size;	  /* multiple of page_size */
	size_t page_size; /* 4 KiB or 2 MiB */
	int fd;		  /* memfd; va maps it from offset 0 */
	bool locked;
};

/* Undo udrv_dma_mem_lock(). */
void udrv_dma_mem_unlock(struct udrv_dma_mem *mem);

#endif
