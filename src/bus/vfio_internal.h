/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared by the VFIO backend's two halves: vfio_container.c (container, IOMMU, DMA mapper,
 * groups) and vfio.c (the device).
 */
#ifndef UDRV_VFIO_INTERNAL_H
#define UDRV_VFIO_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/dma_internal.h"

struct vfio_container {
	int fd;
	unsigned refs; /* open devices using it, in all its groups */
	struct udrv_dma_domain *dom;
	uint64_t pgsizes; /* IOMMU page sizes; the smallest is the mapping granule */
	/* IOVAs every group in the container accepts, as the kernel last reported them */
	struct udrv_dma_range *ranges;
	unsigned nr_ranges;
};

struct vfio_group {
	int id;
	int fd;
	unsigned refs; /* open devices of this group */
	struct vfio_container *c;
	struct vfio_group *next;
};

/* Guards every container and group, and their reference counts. */
extern pthread_mutex_t vfio_registry_lock;

/*
 * Run an INFO ioctl whose reply may carry a capability chain (see vfio_container.c). Returns the
 * buffer size or -errno; *bufp may be reallocated.
 */
ssize_t info_ioctl(int fd, unsigned long req, void **bufp, size_t fixed);

/* Offset of capability id (at least min_size bytes) in an INFO reply, or 0. */
size_t find_cap(const void *buf, size_t size, size_t fixed, uint32_t first, uint16_t id,
		size_t need);

/*
 * Take a reference on the group of addr for a device opened on dom, creating the group, and
 * the container of dom with its IOMMU and DMA mapper, when this is the first device. Called
 * with vfio_registry_lock held. group_put() drops it.
 */
int group_get(struct udrv_dma_domain *dom, const char *addr, int id, const char *path,
	      struct vfio_group **out);
void group_put(struct vfio_group *g);

/* Why addr has no usable VFIO group node (path, or NULL): not bound to vfio-pci, or no IOMMU.
 * Records the sentence with the fix and returns its negative errno. */
int not_bound(const char *addr, const char *path);

#endif
