/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PCI function emulation for the vfio-user server: the type-0 config header (PCI Local Bus
 * 3.0, 6.1-6.2), BAR registers with their size masks (6.2.5.1), the capability list (6.7),
 * and client accesses to BAR regions, split between mmap areas, the MSI-X table/PBA and the
 * model's callbacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "vfu_internal.h"

uint16_t vfu_cfg_get16(const struct udrv_vfu_dev *dev, unsigned off)
{
	return (uint16_t)(dev->cfg[off] | dev->cfg[off + 1] << 8);
}

void vfu_cfg_set16(struct udrv_vfu_dev *dev, unsigned off, uint16_t v)
{
	dev->cfg[off] = (uint8_t)v;
	dev->cfg[off + 1] = (uint8_t)(v >> 8);
}

uint32_t vfu_cfg_get32(const struct udrv_vfu_dev *dev, unsigned off)
{
	return (uint32_t)vfu_cfg_get16(dev, off) | (uint32_t)vfu_cfg_get16(dev, off + 2) << 16;
}

void vfu_cfg_set32(struct udrv_vfu_dev *dev, unsigned off, uint32_t v)
{
	vfu_cfg_set16(dev, off, (uint16_t)v);
	vfu_cfg_set16(dev, off + 2, (uint16_t)(v >> 16));
}

static void set_wmask32(struct udrv_vfu_dev *dev, unsigned off, uint32_t mask)
{
	for (unsigned i = 0; i < 4; i++)
		dev->wmask[off + i] = (uint8_t)(mask >> (8 * i));
}

void vfu_pci_init(struct udrv_vfu_dev *dev)
{
	const struct udrv_vfu_opts *o = &dev->opts;

	memset(dev->cfg, 0, sizeof(dev->cfg));
	memset(dev->wmask, 0, sizeof(dev->wmask));
	memset(dev->w1c, 0, sizeof(dev->w1c));
	vfu_cfg_set16(dev, PCI_VENDOR_ID, o->vendor_id);
	vfu_cfg_set16(dev, PCI_DEVICE_ID, o->device_id);
	dev->cfg[PCI_REVISION_ID] = o->revision;
	dev->cfg[PCI_CLASS_PROG] = (uint8_t)o->class_code;
	dev->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(o->class_code >> 8);
	dev->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(o->class_code >> 16);
	dev->cfg[PCI_HEADER_TYPE] = 0; /* type 0, single function */
	vfu_cfg_set16(dev, PCI_SUBSYSTEM_VENDOR_ID, o->subsys_vendor_id);
	vfu_cfg_set16(dev, PCI_SUBSYSTEM_ID, o->subsys_id);
	dev->cfg[PCI_INTERRUPT_PIN] = 1; /* INTA# */

	/* 6.2.2: the command bits a function of this kind implements. */
	vfu_cfg_set16(dev, PCI_COMMAND, 0);
	dev->wmask[PCI_COMMAND] = (uint8_t)(PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
					    PCI_COMMAND_MASTER | PCI_COMMAND_PARITY);
	dev->wmask[PCI_COMMAND + 1] = (uint8_t)((PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE) >> 8);
	/* 6.2.3: the error bits of the status register are write-1-to-clear. */
	dev->w1c[PCI_STATUS + 1] = 0xf9; /* bits 8, 11-15 */
	dev->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
	dev->cap_next = PCI_CAP_LIST_START;
	dev->cap_last = 0;
	dev->express = false;
}

unsigned vfu_cfg_size(const struct udrv_vfu_dev *dev)
{
	return dev->express ? VFU_CFG_EXP_SIZE : VFU_CFG_SIZE;
}

uint64_t vfu_region_size(const struct udrv_vfu_dev *dev, unsigned index)
{
	if (index < VFU_NUM_BARS)
		return dev->bars[index].upper ? 0 : dev->bars[index].size;
	if (index == VFIO_PCI_CONFIG_REGION_INDEX)
		return vfu_cfg_size(dev);
	return 0; /* ROM, VGA, and anything beyond */
}

int vfu_cfg_client_read(struct udrv_vfu_dev *dev, uint64_t off, void *buf, size_t len)
{
	pthread_mutex_lock(&dev->lock);
	memcpy(buf, dev->cfg + off, len);
	pthread_mutex_unlock(&dev->lock);
	return (int)len;
}

int vfu_cfg_client_write(struct udrv_vfu_dev *dev, uint64_t off, const void *buf, size_t len)
{
	const uint8_t *src = buf;

	pthread_mutex_lock(&dev->lock);
	/* Bytes at 0x100 and beyond (PCIe extended space) have no writable bits: the list
	 * there is empty (PCIe base 7.6.3: a zero header ends it). */
	for (size_t i = 0; i < len && off + i < VFU_CFG_SIZE; i++) {
		size_t o = (size_t)off + i;
		uint8_t v = (uint8_t)((dev->cfg[o] & ~dev->wmask[o]) | (src[i] & dev->wmask[o]));

		dev->cfg[o] = (uint8_t)(v & ~(src[i] & dev->w1c[o]));
	}
	/* Mask and enable bits of MSI/MSI-X may have changed. */
	vfu_irq_update_locked(dev);
	pthread_mutex_unlock(&dev->lock);
	if (dev->opts.config_written)
		dev->opts.config_written(dev->opts.ctx, (unsigned)off, len);
	return (int)len;
}

int udrv_vfu_config_read(struct udrv_vfu_dev *dev, unsigned off, void *buf, size_t len)
{
	if (!dev || !buf || off > VFU_CFG_EXP_SIZE || len > VFU_CFG_EXP_SIZE - off)
		return udrv_err(EINVAL, "config access [%u, +%zu) is outside the 4096-byte space",
				off, len);
	pthread_mutex_lock(&dev->lock);
	memcpy(buf, dev->cfg + off, len);
	pthread_mutex_unlock(&dev->lock);
	return (int)len;
}

int udrv_vfu_config_write(struct udrv_vfu_dev *dev, unsigned off, const void *buf, size_t len)
{
	if (!dev || !buf || off > VFU_CFG_EXP_SIZE || len > VFU_CFG_EXP_SIZE - off)
		return udrv_err(EINVAL, "config access [%u, +%zu) is outside the 4096-byte space",
				off, len);
	pthread_mutex_lock(&dev->lock);
	memcpy(dev->cfg + off, buf, len);
	pthread_mutex_unlock(&dev->lock);
	return (int)len;
}

bool udrv_vfu_bus_master(struct udrv_vfu_dev *dev)
{
	bool on;

	pthread_mutex_lock(&dev->lock);
	on = vfu_cfg_get16(dev, PCI_COMMAND) & PCI_COMMAND_MASTER;
	pthread_mutex_unlock(&dev->lock);
	return on;
}

int vfu_cap_add_locked(struct udrv_vfu_dev *dev, uint8_t id, const void *data, size_t len,
		       const void *wmask)
{
	unsigned off = dev->cap_next;

	if (len < 2 || len > VFU_CFG_SIZE - PCI_CAP_LIST_START)
		return udrv_err(EINVAL, "a capability is 2 to 192 bytes long, not %zu", len);
	if (off + len > VFU_CFG_SIZE)
		return udrv_err(ENOSPC,
				"no room for a %zu-byte capability: the list ends at 0x%x of 0x100",
				len, off);
	memcpy(dev->cfg + off, data, len);
	dev->cfg[off] = id;
	dev->cfg[off + 1] = 0; /* end of list */
	memset(dev->wmask + off, 0, len);
	if (wmask)
		memcpy(dev->wmask + off + 2, (const uint8_t *)wmask + 2, len - 2);
	if (dev->cap_last)
		dev->cfg[dev->cap_last + 1] = (uint8_t)off;
	else
		dev->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	vfu_cfg_set16(dev, PCI_STATUS, vfu_cfg_get16(dev, PCI_STATUS) | PCI_STATUS_CAP_LIST);
	dev->cap_last = off;
	dev->cap_next = (unsigned)((off + len + 3) & ~3u);
	if (id == PCI_CAP_ID_EXP)
		dev->express = true;
	return (int)off;
}

int udrv_vfu_add_cap(struct udrv_vfu_dev *dev, uint8_t id, const void *data, size_t len,
		     const void *wmask)
{
	int rc;

	if (!dev || !data)
		return udrv_err(EINVAL, "udrv_vfu_add_cap needs a device and capability data");
	if (atomic_load(&dev->running))
		return udrv_err(EBUSY, "add capabilities before udrv_vfu_run()/udrv_vfu_start()");
	pthread_mutex_lock(&dev->lock);
	rc = vfu_cap_add_locked(dev, id, data, len, wmask);
	pthread_mutex_unlock(&dev->lock);
	return rc;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int udrv_vfu_add_bar(struct udrv_vfu_dev *dev, unsigned bar, uint64_t size, unsigned flags,
		     const struct udrv_vfu_region_ops *ops, void *ctx)
{
	bool io = flags & UDRV_VFU_BAR_IO, mem64 = flags & UDRV_VFU_BAR_MEM64;
	unsigned reg = PCI_BASE_ADDRESS_0 + 4 * bar;
	uint64_t mask = ~(size - 1);
	uint32_t lo;

	if (!dev)
		return udrv_err(EINVAL, "udrv_vfu_add_bar needs a device");
	if (atomic_load(&dev->running))
		return udrv_err(EBUSY, "add BARs before udrv_vfu_run()/udrv_vfu_start()");
	if (flags & ~(unsigned)(UDRV_VFU_BAR_MEM64 | UDRV_VFU_BAR_IO | UDRV_VFU_BAR_PREFETCH) ||
	    (io && (flags & (UDRV_VFU_BAR_MEM64 | UDRV_VFU_BAR_PREFETCH))))
		return udrv_err(
		    EINVAL, "BAR flags 0x%x: an I/O BAR cannot be 64-bit or prefetchable", flags);
	if (bar >= VFU_NUM_BARS || (mem64 && bar == VFU_NUM_BARS - 1))
		return udrv_err(EINVAL, "BAR %u does not exist: use 0-5 (0-4 for a 64-bit BAR)",
				bar);
	if (dev->bars[bar].size || dev->bars[bar].upper ||
	    (mem64 && (dev->bars[bar + 1].size || dev->bars[bar + 1].upper)))
		return udrv_err(EEXIST, "BAR slot %u%s is already in use", bar,
				mem64 ? " (or the next one, for the upper half)" : "");
	if (!is_pow2(size))
		return udrv_err(
		    EINVAL,
		    "BAR %u size %#llx is not a power of two, as PCI requires: round it "
		    "up to %#llx",
		    bar, (unsigned long long)size,
		    size ? (unsigned long long)(1ull << (64 - __builtin_clzll(size))) : 16ull);
	if (io && (size < 4 || size > 256))
		return udrv_err(EINVAL, "I/O BAR %u must be 4 to 256 bytes, not %#llx", bar,
				(unsigned long long)size);
	if (!io && size < 16)
		return udrv_err(EINVAL, "memory BAR %u must be at least 16 bytes", bar);
	if (!io && !mem64 && size > (1ull << 31))
		return udrv_err(EINVAL, "a 32-bit BAR holds at most 2 GiB: make BAR %u 64-bit",
				bar);

	dev->bars[bar].size = size;
	dev->bars[bar].flags = flags;
	dev->bars[bar].ops = ops;
	dev->bars[bar].ctx = ctx;
	pthread_mutex_lock(&dev->lock);
	if (io) {
		lo = PCI_BASE_ADDRESS_SPACE_IO;
		set_wmask32(dev, reg, (uint32_t)mask & ~3u);
	} else {
		lo = (mem64 ? PCI_BASE_ADDRESS_MEM_64 : 0) |
		     ((flags & UDRV_VFU_BAR_PREFETCH) ? PCI_BASE_ADDRESS_MEM_PREF : 0);
		set_wmask32(dev, reg, (uint32_t)mask & ~0xfu);
	}
	vfu_cfg_set32(dev, reg, lo);
	if (mem64) {
		dev->bars[bar + 1].upper = true;
		set_wmask32(dev, reg + 4, (uint32_t)(mask >> 32));
		vfu_cfg_set32(dev, reg + 4, 0);
	}
	pthread_mutex_unlock(&dev->lock);
	return 0;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static uint64_t pba_size(unsigned nvec)
{
	return (uint64_t)(nvec + 63) / 64 * 8;
}

void *udrv_vfu_bar_mmap_area(struct udrv_vfu_dev *dev, unsigned bar, uint64_t off, uint64_t len)
{
	struct vfu_bar *b;
	struct vfu_area *a;
	const struct vfu_msix *x;
	void *mem;

	if (!dev || bar >= VFU_NUM_BARS)
		return udrv_err_null(EINVAL, "no BAR %u to map", bar);
	if (atomic_load(&dev->running))
		return udrv_err_null(EBUSY,
				     "add mmap areas before udrv_vfu_run()/udrv_vfu_start()");
	b = &dev->bars[bar];
	x = &dev->msix;
	if (!b->size || b->upper || (b->flags & UDRV_VFU_BAR_IO))
		return udrv_err_null(EINVAL, "BAR %u is not a memory BAR: add it first", bar);
	if (!len || off % VFU_PAGE_SIZE || len % VFU_PAGE_SIZE || off > b->size ||
	    len > b->size - off)
		return udrv_err_null(
		    EINVAL,
		    "mmap area [%#llx, +%#llx) of BAR %u must be 4 KiB-aligned and "
		    "inside its %#llx bytes",
		    (unsigned long long)off, (unsigned long long)len, bar,
		    (unsigned long long)b->size);
	for (unsigned i = 0; i < b->nr_areas; i++)
		if (overlaps(off, len, b->areas[i].off, b->areas[i].len))
			return udrv_err_null(EEXIST, "mmap area overlaps another in BAR %u", bar);
	if (x->nvec &&
	    ((x->table_bar == bar &&
	      overlaps(off, len, x->table_off, (uint64_t)x->nvec * PCI_MSIX_ENTRY_SIZE)) ||
	     (x->pba_bar == bar && overlaps(off, len, x->pba_off, pba_size(x->nvec)))))
		return udrv_err_null(EEXIST,
				     "mmap area overlaps the MSI-X table or PBA in BAR %u: the "
				     "client must trap those",
				     bar);
	if (b->nr_areas == UDRV_VFU_MAX_AREAS)
		return udrv_err_null(ENOSPC, "BAR %u already has %d mmap areas", bar,
				     UDRV_VFU_MAX_AREAS);
	if (b->memfd < 0) {
		int fd = memfd_create("udrv-vfu-bar", MFD_CLOEXEC | MFD_ALLOW_SEALING);

		if (fd < 0)
			return udrv_err_null(errno, "memfd_create for BAR %u failed: %s", bar,
					     strerror(errno));
		/* Sealed so that a client holding the fd cannot shrink it under our mapping
		 * (which would turn our next access into SIGBUS). */
		if (ftruncate(fd, (off_t)b->size) < 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
			int e = errno;

			close(fd);
			return udrv_err_null(e, "cannot size the memfd of BAR %u: %s", bar,
					     strerror(e));
		}
		b->memfd = fd;
	}
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, b->memfd, (off_t)off);
	if (mem == MAP_FAILED)
		return udrv_err_null(errno, "mmap of BAR %u area failed: %s", bar, strerror(errno));
	a = &b->areas[b->nr_areas++];
	a->off = off;
	a->len = len;
	a->mem = mem;
	return mem;
}

void vfu_bars_fini(struct udrv_vfu_dev *dev)
{
	for (unsigned i = 0; i < VFU_NUM_BARS; i++) {
		struct vfu_bar *b = &dev->bars[i];

		for (unsigned j = 0; j < b->nr_areas; j++)
			munmap(b->areas[j].mem, b->areas[j].len);
		b->nr_areas = 0;
		if (b->memfd >= 0)
			close(b->memfd);
		b->memfd = -1;
	}
}

enum seg_kind { SEG_CALLBACK, SEG_AREA, SEG_MSIX_TABLE, SEG_MSIX_PBA };

struct seg {
	uint64_t start, end;
	enum seg_kind kind;
	uint8_t *mem;
};

/* The specially handled ranges of a BAR: mmap areas and MSI-X structures (disjoint). */
static unsigned bar_specials(const struct udrv_vfu_dev *dev, unsigned bar, struct seg *s)
{
	const struct vfu_bar *b = &dev->bars[bar];
	const struct vfu_msix *x = &dev->msix;
	unsigned n = 0;

	for (unsigned i = 0; i < b->nr_areas; i++)
		s[n++] = (struct seg){b->areas[i].off, b->areas[i].off + b->areas[i].len, SEG_AREA,
				      b->areas[i].mem};
	if (x->nvec && x->table_bar == bar)
		s[n++] = (struct seg){x->table_off,
				      x->table_off + (uint64_t)x->nvec * PCI_MSIX_ENTRY_SIZE,
				      SEG_MSIX_TABLE, NULL};
	if (x->nvec && x->pba_bar == bar)
		s[n++] =
		    (struct seg){x->pba_off, x->pba_off + pba_size(x->nvec), SEG_MSIX_PBA, NULL};
	return n;
}

static int callback_access(struct udrv_vfu_dev *dev, unsigned bar, uint64_t off, uint8_t *p,
			   size_t n, bool write)
{
	const struct vfu_bar *b = &dev->bars[bar];
	int rc;

	if (write && b->ops && b->ops->write) {
		rc = b->ops->write(b->ctx, bar, off, p, n);
	} else if (!write && b->ops && b->ops->read) {
		rc = b->ops->read(b->ctx, bar, off, p, n);
	} else {
		/* No callback: reads as zeros, writes are dropped, like a reserved register. */
		if (!write)
			memset(p, 0, n);
		rc = (int)n;
	}
	if (rc < 0)
		return rc < -4095 ? -EIO : rc;
	if ((size_t)rc != n)
		return udrv_err(EIO, "BAR %u %s callback handled %d of %zu bytes", bar,
				write ? "write" : "read", rc, n);
	return 0;
}

int vfu_bar_access(struct udrv_vfu_dev *dev, unsigned bar, uint64_t off, void *buf, size_t len,
		   bool write)
{
	struct seg sp[UDRV_VFU_MAX_AREAS + 2];
	unsigned nsp = bar_specials(dev, bar, sp);
	uint64_t end = off + len;
	uint8_t *p = buf;

	while (off < end) {
		struct seg cur = {off, end, SEG_CALLBACK, NULL};
		size_t n;
		int rc = 0;

		for (unsigned i = 0; i < nsp; i++) {
			if (sp[i].start <= off && off < sp[i].end) {
				cur = sp[i]; /* start stays the range's own start */
				cur.end = sp[i].end < end ? sp[i].end : end;
				break;
			}
			if (sp[i].start > off && sp[i].start < cur.end)
				cur.end = sp[i].start;
		}
		n = (size_t)(cur.end - off);
		switch (cur.kind) {
		case SEG_AREA: {
			uint8_t *m = cur.mem + (off - cur.start);

			if (write)
				memcpy(m, p, n);
			else
				memcpy(p, m, n);
			break;
		}
		case SEG_MSIX_TABLE:
			pthread_mutex_lock(&dev->lock);
			vfu_msix_table_access_locked(dev, off - dev->msix.table_off, p, n, write);
			pthread_mutex_unlock(&dev->lock);
			break;
		case SEG_MSIX_PBA:
			/* 6.8.2.10: the PBA is read-only; writes are ignored. */
			if (!write) {
				pthread_mutex_lock(&dev->lock);
				vfu_msix_pba_read_locked(dev, off - dev->msix.pba_off, p, n);
				pthread_mutex_unlock(&dev->lock);
			}
			break;
		case SEG_CALLBACK:
			rc = callback_access(dev, bar, off, p, n, write);
			break;
		}
		if (rc < 0)
			return rc;
		off += n;
		p += n;
	}
	return (int)len;
}
