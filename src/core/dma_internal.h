/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The contract between a DMA domain and the device backends that map its memory.
 *
 * A backend attaches a "mapper" to a domain when a device opens: one per VFIO container, one
 * per vfio-user connection, one per UIO device (which maps nothing: the device sees physical
 * addresses). The domain then calls map() for every chunk it holds and every chunk added
 * later, and unmap() when a chunk is removed or the mapper detaches.
 */
#ifndef UDRV_DMA_INTERNAL_H
#define UDRV_DMA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <udrv/dma.h>

enum udrv_dma_mode {
	UDRV_DMA_MODE_UNSET = 0,
	UDRV_DMA_MODE_IOVA, /* the domain allocates IOVAs (IOMMU, vfio-user) */
	UDRV_DMA_MODE_PHYS, /* IOVA = physical address (UIO) */
};

struct udrv_dma_range {
	uint64_t start; /* first valid IOVA */
	uint64_t end;	/* last valid IOVA (inclusive) */
};

/* One contiguous IOVA range of a chunk handed to a mapper. */
struct udrv_dma_segment {
	void *va;
	uint64_t iova;
	size_t len;
	int fd;		 /* the chunk's memfd */
	uint64_t fd_off; /* offset of va in fd */
};

struct udrv_dma_mapper_ops {
	const char *kind; /* "vfio", "uio", "vfio-user": one mapper per kind and ctx */
	int (*map)(void *ctx, const struct udrv_dma_segment *seg);
	int (*unmap)(void *ctx, const struct udrv_dma_segment *seg);
};

/*
 * Attach a mapper. mode must match the domain's mode (or set it, when it is the first).
 * ranges (may be NULL) restrict the IOVAs the domain will hand out from now on.
 * Maps every chunk already in the domain; on failure nothing stays mapped.
 * Returns 0, -EINVAL (mode mismatch), or the mapper's error.
 */
int udrv_dma_domain_attach(struct udrv_dma_domain *dom, enum udrv_dma_mode mode,
			   const struct udrv_dma_mapper_ops *ops, void *ctx,
			   const struct udrv_dma_range *ranges, unsigned nr_ranges);

/*
 * Narrow the IOVAs the domain hands out to those inside ranges (e.g. when another IOMMU group
 * joins a shared VFIO container). Returns 0, or -ENOSPC (nothing changed) when a chunk already
 * mapped lies outside them or nothing would remain.
 */
int udrv_dma_domain_restrict(struct udrv_dma_domain *dom, const struct udrv_dma_range *ranges,
			     unsigned nr_ranges);

/* Unmap everything from the mapper and forget it. */
void udrv_dma_domain_detach(struct udrv_dma_domain *dom, const struct udrv_dma_mapper_ops *ops,
			    void *ctx);

/* The ctx of an attached mapper of this kind (e.g. the VFIO container to share), or NULL. */
void *udrv_dma_domain_find_mapper(struct udrv_dma_domain *dom,
				  const struct udrv_dma_mapper_ops *ops);

/* Number of attached mappers (devices, containers). */
unsigned udrv_dma_domain_nr_mappers(const struct udrv_dma_domain *dom);

/* Take a reference (a device opened on the domain, a mempool in it); udrv_dma_domain_destroy()
 * drops one. */
void udrv_dma_domain_get(struct udrv_dma_domain *dom);

enum udrv_dma_mode udrv_dma_domain_get_mode(const struct udrv_dma_domain *dom);

/* Physical address of the page holding va from /proc/self/pagemap, or 0 (with *err set). */
uint64_t udrv_dma_virt_to_phys(const void *va, int *err);

#endif
