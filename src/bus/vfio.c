/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The VFIO backend: a PCI device bound to vfio-pci, its DMA confined by the IOMMU through a
 * type1v2 container.
 *
 * The flow is the one of Linux Documentation/driver-api/vfio.rst ("VFIO Usage Example"), with
 * every ioctl as include/uapi/linux/vfio.h documents it: open the container /dev/vfio/vfio,
 * open the group /dev/vfio/N, check that the group is viable, put the group in the container,
 * choose the IOMMU model, map DMA memory into the container, and ask the group for the device.
 *
 * Sharing: one container per DMA domain (found through the domain's mapper list) and one
 * group object per IOMMU group in the process (the kernel lets a group be opened only once),
 * both counted by open devices and kept in a process-wide registry under one mutex, because
 * devices of one group or one domain may be opened and closed from different threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include <linux/vfio.h>

#include <udrv/pci.h>

#include "core/dma_internal.h"
#include "core/log_internal.h"
#include "device_internal.h"
#include "vfio_internal.h"

/* VFIO-PCI puts region N at offset N << 40 of the device fd (vfio_pci_core.h,
 * VFIO_PCI_INDEX_TO_OFFSET), beyond a 32-bit off_t. */
_Static_assert(sizeof(off_t) >= 8, "VFIO region offsets need a 64-bit off_t");

/* PCI 3.0 section 6.2.5.1: bit 0 of a Base Address register is 1 for an I/O-space BAR. */
#define PCI_BASE_ADDRESS_0	  0x10
#define PCI_BASE_ADDRESS_SPACE_IO 0x1

struct vfio_region {
	uint64_t offset; /* of the region in the device fd */
	uint32_t vflags; /* VFIO_REGION_INFO_FLAG_* */
	struct udrv_region_info info;
};

struct vfio_irq {
	uint32_t vflags;  /* VFIO_IRQ_INFO_* */
	uint32_t count;	  /* vectors the device has */
	uint32_t enabled; /* vectors [0, enabled) set up in the kernel; 0: index off */
	int *fds;	  /* the caller's eventfd per vector, -1 for none */
};

struct vfio_dev {
	char addr[UDRV_PCI_ADDR_LEN];
	int fd;
	struct vfio_group *g;
	uint32_t vflags; /* VFIO_DEVICE_FLAGS_* */
	uint32_t nr_regions, nr_irqs;
	struct vfio_region regions[UDRV_REGION_MAX];
	struct vfio_irq irqs[UDRV_IRQ_TYPES];
	int irq_mode; /* which of INTx, MSI, MSI-X is on, or -1 */
};

static const char *const irq_names[UDRV_IRQ_TYPES] = {"INTx", "MSI", "MSI-X", "error (AER)",
						      "device-request"};

/* ---- device ---- */

/* Sparse-mmap areas (vfio.h, VFIO_REGION_INFO_CAP_SPARSE_MMAP): only these parts may be
 * mapped; the rest, e.g. an MSI-X table on older kernels, is reached by read/write. */
static void region_sparse(struct vfio_dev *vd, struct vfio_region *r, const void *buf, size_t size,
			  size_t off)
{
	struct vfio_region_info_cap_sparse_mmap cap;
	uint32_t n;

	memcpy(&cap, (const char *)buf + off, sizeof(cap));
	n = cap.nr_areas;
	if (n > (size - off - sizeof(cap)) / sizeof(struct vfio_region_sparse_mmap_area))
		n = 0;
	for (uint32_t i = 0; i < n && r->info.nr_areas < UDRV_REGION_MAX_AREAS; i++) {
		struct vfio_region_sparse_mmap_area a;

		memcpy(&a, (const char *)buf + off + sizeof(cap) + i * sizeof(a), sizeof(a));
		if (a.size == 0 || a.offset > r->info.size || a.size > r->info.size - a.offset)
			continue;
		r->info.areas[r->info.nr_areas].offset = a.offset;
		r->info.areas[r->info.nr_areas].size = a.size;
		r->info.nr_areas++;
	}
	if (n > UDRV_REGION_MAX_AREAS)
		udrv_debug("%s: region %u has %u mappable areas; mapping the first %d", vd->addr,
			   (unsigned)(r - vd->regions), n, UDRV_REGION_MAX_AREAS);
}

static int region_setup(struct vfio_dev *vd, unsigned index)
{
	struct vfio_region *r = &vd->regions[index];
	struct vfio_region_info *ri = calloc(1, sizeof(*ri));
	ssize_t size;
	size_t off;
	int rc = 0;

	if (!ri)
		return udrv_err(ENOMEM, "out of memory");
	ri->argsz = sizeof(*ri);
	ri->index = index;
	size = info_ioctl(vd->fd, VFIO_DEVICE_GET_REGION_INFO, (void **)&ri, sizeof(*ri));
	if (size == -EINVAL) {
		/* vfio-pci answers EINVAL for a region the device lacks, e.g. VGA (index 8) on
		 * anything that is not a VGA controller: that region is absent, not an error. */
		r->info.size = 0;
		goto out;
	}
	if (size < 0) {
		rc = udrv_err((int)-size, "cannot describe region %u of %s: %s", index, vd->addr,
			      strerror((int)-size));
		goto out;
	}
	r->offset = ri->offset;
	r->vflags = ri->flags;
	r->info.size = ri->size;
	if (ri->size == 0)
		goto out;
	if (ri->flags & VFIO_REGION_INFO_FLAG_READ)
		r->info.flags |= UDRV_REGION_F_READ;
	if (ri->flags & VFIO_REGION_INFO_FLAG_WRITE)
		r->info.flags |= UDRV_REGION_F_WRITE;
	if (!(ri->flags & VFIO_REGION_INFO_FLAG_MMAP))
		goto out;
	off = (ri->flags & VFIO_REGION_INFO_FLAG_CAPS)
		  ? find_cap(ri, (size_t)size, sizeof(*ri), ri->cap_offset,
			     VFIO_REGION_INFO_CAP_SPARSE_MMAP,
			     sizeof(struct vfio_region_info_cap_sparse_mmap))
		  : 0;
	if (off) {
		region_sparse(vd, r, ri, (size_t)size, off);
	} else {
		/* No sparse list: the whole region maps, including an MSI-X table when the
		 * kernel says VFIO_REGION_INFO_CAP_MSIX_MAPPABLE (vectors are still set up
		 * only through VFIO_DEVICE_SET_IRQS). */
		r->info.nr_areas = 1;
		r->info.areas[0].offset = 0;
		r->info.areas[0].size = ri->size;
	}
	if (r->info.nr_areas)
		r->info.flags |= UDRV_REGION_F_MMAP;
out:
	free(ri);
	return rc;
}

static int dev_pread(struct vfio_dev *vd, unsigned index, uint64_t off, void *buf, size_t len)
{
	const struct vfio_region *r = &vd->regions[index];
	size_t done = 0;

	while (done < len) {
		ssize_t n =
		    pread(vd->fd, (char *)buf + done, len - done, (off_t)(r->offset + off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* vfio-pci keeps the space bit of each BAR in its virtualised config space (vfio_bar_fixup),
 * so the BAR register tells I/O from memory. An I/O BAR is never mapped. */
static int mark_io_bars(struct vfio_dev *vd)
{
	for (unsigned i = UDRV_REGION_BAR0; i <= UDRV_REGION_BAR5; i++) {
		struct vfio_region *r = &vd->regions[i];
		uint32_t bar;
		uint8_t b[4];
		int rc;

		if (i >= vd->nr_regions || r->info.size == 0)
			continue;
		rc = dev_pread(vd, UDRV_REGION_CONFIG, PCI_BASE_ADDRESS_0 + 4 * i, b, sizeof(b));
		if (rc < 0)
			return udrv_err(-rc, "cannot read BAR%u of %s: %s", i, vd->addr,
					strerror(-rc));
		bar = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
		      (uint32_t)b[3] << 24;
		if (bar & PCI_BASE_ADDRESS_SPACE_IO) {
			r->info.flags = (r->info.flags & ~UDRV_REGION_F_MMAP) | UDRV_REGION_F_IO;
			r->info.nr_areas = 0;
		}
	}
	return 0;
}

static int irq_setup(struct vfio_dev *vd, unsigned index)
{
	struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = index};
	struct vfio_irq *q = &vd->irqs[index];

	if (ioctl(vd->fd, VFIO_DEVICE_GET_IRQ_INFO, &ii) < 0) {
		/* vfio-pci answers EINVAL for an index the device lacks (ERR without AER, see
		 * vfio_pci_get_irq_count): that interrupt type is absent, not an error. */
		if (errno == EINVAL)
			return 0;
		return udrv_err(errno, "cannot describe the %s interrupts of %s: %s",
				irq_names[index], vd->addr, strerror(errno));
	}
	if (!(ii.flags & VFIO_IRQ_INFO_EVENTFD) || ii.count == 0)
		return 0;
	q->fds = malloc(ii.count * sizeof(*q->fds));
	if (!q->fds)
		return udrv_err(ENOMEM, "out of memory");
	for (uint32_t i = 0; i < ii.count; i++)
		q->fds[i] = -1;
	q->vflags = ii.flags;
	q->count = ii.count;
	return 0;
}

/* Ask the group for the device fd and describe its regions and interrupts. */
static int device_setup(struct vfio_dev *vd)
{
	struct vfio_device_info info = {.argsz = sizeof(info)};
	int rc;

	vd->fd = ioctl(vd->g->fd, VFIO_GROUP_GET_DEVICE_FD, vd->addr);
	if (vd->fd < 0) {
		rc = errno;
		vd->fd = -1;
		return udrv_err(rc, "cannot get %s from VFIO group %d: %s", vd->addr, vd->g->id,
				strerror(rc));
	}
	if (ioctl(vd->fd, VFIO_DEVICE_GET_INFO, &info) < 0)
		return udrv_err(errno, "cannot describe %s (VFIO_DEVICE_GET_INFO): %s", vd->addr,
				strerror(errno));
	if (!(info.flags & VFIO_DEVICE_FLAGS_PCI))
		return udrv_err(ENODEV, "%s is not a vfio-pci device", vd->addr);
	if (info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX)
		return udrv_err(EIO, "%s reports %u VFIO regions, none of them config space",
				vd->addr, info.num_regions);
	vd->vflags = info.flags;
	vd->nr_regions = info.num_regions < UDRV_REGION_MAX ? info.num_regions : UDRV_REGION_MAX;
	vd->nr_irqs = info.num_irqs < UDRV_IRQ_TYPES ? info.num_irqs : UDRV_IRQ_TYPES;
	for (unsigned i = 0; i < vd->nr_regions; i++) {
		rc = region_setup(vd, i);
		if (rc < 0)
			return rc;
	}
	rc = mark_io_bars(vd);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < vd->nr_irqs; i++) {
		rc = irq_setup(vd, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void vdev_free(struct vfio_dev *vd)
{
	for (unsigned i = 0; i < UDRV_IRQ_TYPES; i++)
		free(vd->irqs[i].fds);
	free(vd);
}

static int vfio_open(struct udrv_device *dev, const char *target)
{
	char path[PATH_MAX];
	const char *base;
	struct vfio_dev *vd;
	char *end;
	long id;
	int rc;

	vd = calloc(1, sizeof(*vd));
	if (!vd)
		return udrv_err(ENOMEM, "out of memory");
	vd->fd = -1;
	vd->irq_mode = -1;
	if (udrv_pci_parse_addr(target, vd->addr) < 0) {
		rc = udrv_err(EINVAL,
			      "\"%s\" is not a PCI address: use the form 0000:01:00.0 that "
			      "`udrv list` shows",
			      target);
		goto err;
	}
	rc = udrv_pci_vfio_group_path(vd->addr, path, sizeof(path));
	if (rc < 0) {
		rc = not_bound(vd->addr, NULL);
		goto err;
	}
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strncmp(base, "noiommu-", 8) == 0) {
		rc = udrv_err(ENODEV,
			      "%s is in a VFIO no-IOMMU group, which udrv does not use: "
			      "run `udrv bind %s uio_pci_generic` instead",
			      vd->addr, vd->addr);
		goto err;
	}
	errno = 0;
	id = strtol(base, &end, 10);
	if (errno || end == base || *end != '\0' || id < 0 || id > INT_MAX) {
		rc = udrv_err(ENODEV, "unexpected VFIO group node %s for %s", path, vd->addr);
		goto err;
	}

	pthread_mutex_lock(&vfio_registry_lock);
	rc = group_get(dev->dom, vd->addr, (int)id, path, &vd->g);
	if (rc == 0) {
		rc = device_setup(vd);
		if (rc < 0) {
			if (vd->fd >= 0)
				close(vd->fd);
			group_put(vd->g);
		}
	}
	pthread_mutex_unlock(&vfio_registry_lock);
	if (rc < 0)
		goto err;
	dev->priv = vd;
	return 0;
err:
	vdev_free(vd);
	return rc;
}

static int set_irqs(struct vfio_dev *vd, uint32_t flags, unsigned index, unsigned start,
		    unsigned count, const int *fds)
{
	size_t size = sizeof(struct vfio_irq_set) + (fds ? count * sizeof(int32_t) : 0);
	struct vfio_irq_set *s = calloc(1, size);
	int rc = 0;

	if (!s)
		return -ENOMEM;
	s->argsz = (uint32_t)size;
	s->flags = flags;
	s->index = index;
	s->start = start;
	s->count = count;
	for (unsigned i = 0; fds && i < count; i++) {
		/* vfio.h: -1 de-assigns a vector or skips an unassigned one. */
		int32_t fd = fds[i] < 0 ? -1 : fds[i];

		memcpy(s->data + i * sizeof(fd), &fd, sizeof(fd));
	}
	if (ioctl(vd->fd, VFIO_DEVICE_SET_IRQS, s) < 0)
		rc = -errno;
	free(s);
	return rc;
}

static int irq_off(struct vfio_dev *vd, unsigned type)
{
	struct vfio_irq *q = &vd->irqs[type];
	int rc;

	/* The kernel answers EINVAL to disabling an index that is not on. */
	if (q->enabled == 0)
		return 0;
	/* vfio.h: "the index can be disabled as a whole with: flags = (DATA_NONE|
	 * ACTION_TRIGGER), count = 0". */
	rc = set_irqs(vd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, type, 0, 0, NULL);
	if (rc < 0)
		return udrv_err(-rc, "cannot disable the %s interrupts of %s: %s", irq_names[type],
				vd->addr, strerror(-rc));
	for (uint32_t i = 0; i < q->count; i++)
		q->fds[i] = -1;
	q->enabled = 0;
	if (vd->irq_mode == (int)type)
		vd->irq_mode = -1;
	return 0;
}

/*
 * Add vectors beyond those enabled on an index the kernel cannot resize while on
 * (VFIO_IRQ_INFO_NORESIZE: MSI, and MSI-X before Linux 6.5): turn it off and on again with
 * the old and new eventfds together.
 */
static int irq_grow(struct vfio_dev *vd, unsigned type, unsigned start, unsigned count,
		    const int *fds)
{
	struct vfio_irq *q = &vd->irqs[type];
	unsigned end = start + count, old = q->enabled;
	const uint64_t one = 1;
	int *all = malloc(end * sizeof(*all));
	int rc;

	if (!all)
		return udrv_err(ENOMEM, "out of memory");
	for (unsigned i = 0; i < end; i++)
		all[i] = i < old ? q->fds[i] : -1;
	for (unsigned i = 0; i < count; i++)
		all[start + i] = fds[i] < 0 ? -1 : fds[i];
	rc = set_irqs(vd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, type, 0, 0, NULL);
	if (rc == 0) {
		rc = set_irqs(vd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, type, 0,
			      end, all);
		if (rc < 0 && set_irqs(vd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
				       type, 0, old, q->fds) < 0) {
			for (uint32_t i = 0; i < q->count; i++)
				q->fds[i] = -1;
			q->enabled = 0;
			vd->irq_mode = -1;
		}
	}
	if (rc < 0) {
		free(all);
		return udrv_err(-rc, "cannot enable %s vectors 0-%u of %s: %s", irq_names[type],
				end - 1, vd->addr, strerror(-rc));
	}
	/* A vector that fired while the index was off is lost; a spurious wakeup is not. */
	for (unsigned i = 0; i < old; i++)
		if (all[i] >= 0 && write(all[i], &one, sizeof(one)) < 0)
			udrv_debug("cannot signal eventfd %d: %s", all[i], strerror(errno));
	memcpy(q->fds, all, end * sizeof(*all));
	free(all);
	q->enabled = end;
	vd->irq_mode = (int)type;
	return 0;
}

static int vfio_irq_set(struct udrv_device *dev, enum udrv_irq_type type, unsigned start,
			unsigned count, const int *fds)
{
	struct vfio_dev *vd = dev->priv;
	struct vfio_irq *q;
	bool exclusive = type <= UDRV_IRQ_MSIX;
	int rc;

	if ((unsigned)type >= UDRV_IRQ_TYPES)
		return udrv_err(EINVAL, "unknown interrupt type %d", (int)type);
	q = &vd->irqs[type];
	if (count == 0)
		return irq_off(vd, type);
	if (q->count == 0)
		return udrv_err(ENOTSUP, "%s has no %s interrupts", vd->addr, irq_names[type]);
	if (!fds)
		return udrv_err(EINVAL, "no eventfds given for the %s interrupts of %s",
				irq_names[type], vd->addr);
	if (start >= q->count || count > q->count - start)
		return udrv_err(EINVAL, "%s has %u %s vectors; %u-%u is out of range", vd->addr,
				q->count, irq_names[type], start, start + count - 1);
	/* vfio_pci_intrs.c: INTx, MSI and MSI-X exclude each other (EINVAL otherwise). */
	if (exclusive && vd->irq_mode >= 0 && vd->irq_mode != (int)type)
		return udrv_err(EBUSY,
				"cannot enable %s on %s while %s is on: a PCI function "
				"uses one of INTx, MSI and MSI-X at a time; disable %s first",
				irq_names[type], vd->addr, irq_names[vd->irq_mode],
				irq_names[vd->irq_mode]);
	if (q->enabled && start + count > q->enabled && (q->vflags & VFIO_IRQ_INFO_NORESIZE))
		return irq_grow(vd, type, start, count, fds);
	rc = set_irqs(vd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, type, start,
		      count, fds);
	if (rc < 0)
		return udrv_err(-rc, "cannot enable %s vectors %u-%u of %s: %s", irq_names[type],
				start, start + count - 1, vd->addr, strerror(-rc));
	for (unsigned i = 0; i < count; i++)
		q->fds[start + i] = fds[i] < 0 ? -1 : fds[i];
	/* The first enable allocates start + count vectors (vfio_msi_enable). */
	if (start + count > q->enabled)
		q->enabled = start + count;
	if (exclusive)
		vd->irq_mode = (int)type;
	return 0;
}

static int vfio_irq_count(struct udrv_device *dev, enum udrv_irq_type type)
{
	const struct vfio_dev *vd = dev->priv;

	if ((unsigned)type >= UDRV_IRQ_TYPES)
		return udrv_err(EINVAL, "unknown interrupt type %d", (int)type);
	return (int)vd->irqs[type].count;
}

static int vfio_irq_unmask(struct udrv_device *dev)
{
	struct vfio_dev *vd = dev->priv;
	int rc;

	if (vd->irq_mode != UDRV_IRQ_INTX)
		return udrv_err(EINVAL, "INTx of %s is not enabled: enable it before unmasking it",
				vd->addr);
	/* vfio.h: to unmask AUTOMASKED interrupt [0,0]: DATA_NONE|ACTION_UNMASK, count 1. */
	rc = set_irqs(vd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
		      VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL);
	if (rc < 0)
		return udrv_err(-rc, "cannot unmask INTx of %s: %s", vd->addr, strerror(-rc));
	return 0;
}

static int vfio_region_info(struct udrv_device *dev, unsigned index, struct udrv_region_info *info)
{
	const struct vfio_dev *vd = dev->priv;

	if (index >= UDRV_REGION_MAX)
		return udrv_err(EINVAL, "no region %u (regions are 0-%d)", index,
				UDRV_REGION_MAX - 1);
	if (index >= vd->nr_regions)
		memset(info, 0, sizeof(*info));
	else
		*info = vd->regions[index].info;
	return 0;
}

static int vfio_region_map_area(struct udrv_device *dev, unsigned index, uint64_t off, size_t len,
				void *addr)
{
	const struct vfio_dev *vd = dev->priv;
	const struct vfio_region *r = &vd->regions[index];
	int prot = 0;

	if (r->vflags & VFIO_REGION_INFO_FLAG_READ)
		prot |= PROT_READ;
	if (r->vflags & VFIO_REGION_INFO_FLAG_WRITE)
		prot |= PROT_WRITE;
	return udrv_device_map_fixed(dev, index, addr, len, prot, vd->fd, r->offset + off);
}

/* pread/pwrite at the region's offset in the device fd: vfio-pci turns them into config
 * cycles, MMIO or port I/O of the natural width (vfio_pci_rdwr.c), for every region. */
static int region_rw(struct vfio_dev *vd, unsigned index, uint64_t off, void *buf, size_t len,
		     bool write)
{
	const struct vfio_region *r = &vd->regions[index];
	size_t done = 0;

	if (len > INT_MAX)
		return udrv_err(EINVAL, "a region access is limited to %d bytes", INT_MAX);
	while (done < len) {
		off_t pos = (off_t)(r->offset + off + done);
		ssize_t n = write ? pwrite(vd->fd, (char *)buf + done, len - done, pos)
				  : pread(vd->fd, (char *)buf + done, len - done, pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENODEV)
			return udrv_err(ENODEV, "%s is gone (hot-unplugged or released): close it",
					vd->addr);
		if (n < 0)
			return udrv_err(
			    errno,
			    "cannot %s %zu bytes at offset 0x%" PRIx64 " of region %u of %s: %s",
			    write ? "write" : "read", len, off, index, vd->addr, strerror(errno));
		if (n == 0)
			return udrv_err(EIO, "short %s at offset 0x%" PRIx64 " of region %u of %s",
					write ? "write" : "read", off + done, index, vd->addr);
		done += (size_t)n;
	}
	return (int)len;
}

static int vfio_region_read(struct udrv_device *dev, unsigned index, uint64_t off, void *buf,
			    size_t len)
{
	return region_rw(dev->priv, index, off, buf, len, false);
}

static int vfio_region_write(struct udrv_device *dev, unsigned index, uint64_t off, const void *buf,
			     size_t len)
{
	return region_rw(dev->priv, index, off, (void *)buf, len, true);
}

static int vfio_reset(struct udrv_device *dev)
{
	struct vfio_dev *vd = dev->priv;

	if (!(vd->vflags & VFIO_DEVICE_FLAGS_RESET))
		return udrv_err(ENOTSUP,
				"%s offers no reset VFIO can use (no function-level, "
				"power-management or exclusive bus reset)",
				vd->addr);
	if (ioctl(vd->fd, VFIO_DEVICE_RESET) < 0)
		return udrv_err(errno, "cannot reset %s: %s", vd->addr, strerror(errno));
	return 0;
}

static void vfio_close(struct udrv_device *dev)
{
	struct vfio_dev *vd = dev->priv;

	if (!vd)
		return;
	/* Errors are ignored: the device may be gone, and closing the fd tears the rest down. */
	for (unsigned i = 0; i < UDRV_IRQ_TYPES; i++)
		irq_off(vd, i);
	pthread_mutex_lock(&vfio_registry_lock);
	close(vd->fd);
	group_put(vd->g);
	pthread_mutex_unlock(&vfio_registry_lock);
	vdev_free(vd);
	dev->priv = NULL;
}

const struct udrv_device_ops udrv_vfio_ops = {
    .name = "vfio",
    .open = vfio_open,
    .close = vfio_close,
    .region_info = vfio_region_info,
    .region_map_area = vfio_region_map_area,
    .region_read = vfio_region_read,
    .region_write = vfio_region_write,
    .irq_count = vfio_irq_count,
    .irq_set = vfio_irq_set,
    .irq_unmask = vfio_irq_unmask,
    .reset = vfio_reset,
};
