/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv/device.h - one PCI device, however it is reached.
 *
 * A driver sees config space, regions (BARs, read/write or mapped), interrupts delivered to
 * eventfds, a DMA domain, and reset. Which backend carries these is chosen by the name the
 * device is opened with, and a driver never needs to know it:
 *
 *   "0000:01:00.0"          the device's current driver decides: vfio-pci -> "vfio",
 *                           uio_pci_generic -> "uio"
 *   "vfio:0000:01:00.0"     VFIO only (type1v2 IOMMU: the IOMMU confines the device's DMA)
 *   "uio:0000:01:00.0"      UIO only (no IOMMU: the device can DMA anywhere; root only; a
 *                           warning is logged on every open)
 *   "vfio-user:/path/sock"  a device served over the vfio-user protocol by another process
 *
 * Threads: a device is used by one thread at a time for control operations (open, close,
 * irq setup, reset, region_read/write). Mapped region pointers and the DMA domain may be used
 * from any thread. Config space reads/writes are serialised by the kernel or the backend.
 *
 * Errors: functions return 0 (or a byte count) on success and a negative errno on failure;
 * udrv_errmsg() then holds one sentence saying what to do.
 */
#ifndef UDRV_DEVICE_H
#define UDRV_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <udrv/dma.h>

#ifdef __cplusplus
extern "C" {
#endif

struct udrv_device;

/* Region indexes, as VFIO numbers them (linux/vfio.h, VFIO_PCI_*_REGION_INDEX). */
enum {
	UDRV_REGION_BAR0 = 0,
	UDRV_REGION_BAR5 = 5,
	UDRV_REGION_ROM = 6,
	UDRV_REGION_CONFIG = 7,
	UDRV_REGION_MAX = 9,
};

/* udrv_region_info.flags */
enum {
	UDRV_REGION_F_READ = 1u << 0,
	UDRV_REGION_F_WRITE = 1u << 1,
	UDRV_REGION_F_MMAP = 1u << 2, /* at least part of the region can be mapped */
	UDRV_REGION_F_IO = 1u << 3,   /* an I/O-port BAR: read/write only, never mapped */
};

#define UDRV_REGION_MAX_AREAS 8

struct udrv_region_info {
	uint64_t size;	/* 0: the region does not exist */
	uint32_t flags; /* UDRV_REGION_F_* */
	/* The parts that udrv_device_region_map() maps; the rest is reached by read/write. */
	uint32_t nr_areas;
	struct {
		uint64_t offset;
		uint64_t size;
	} areas[UDRV_REGION_MAX_AREAS];
};

/* Interrupt types, as VFIO numbers them (VFIO_PCI_*_IRQ_INDEX). */
enum udrv_irq_type {
	UDRV_IRQ_INTX = 0,
	UDRV_IRQ_MSI = 1,
	UDRV_IRQ_MSIX = 2,
	UDRV_IRQ_ERR = 3, /* AER error notification */
	UDRV_IRQ_REQ = 4, /* the kernel asks for the device back (hot-unplug): close it */
	UDRV_IRQ_TYPES = 5,
};

/* udrv_device_opts.flags */
enum {
	/*
	 * If the device is bound to a kernel driver, bind it to vfio-pci (or, with a "uio:"
	 * name, uio_pci_generic) for the life of the handle and give it back on close. Refused
	 * if the device is in use (mounted, interface up).
	 */
	UDRV_OPEN_BIND = 1u << 0,
	/* Do not reset the device on open (default: reset if the backend can). */
	UDRV_OPEN_NO_RESET = 1u << 1,
};

struct udrv_device_opts {
	/* Share this DMA domain (and, for VFIO, its IOMMU container); NULL: a new one. */
	struct udrv_dma_domain *domain;
	unsigned flags; /* UDRV_OPEN_* */
};

/*
 * Open a device by name (see above). opts may be NULL.
 * Returns 0 and *out, or:
 *   -ENOENT  no such device, or no such socket (udrv_errmsg() says to run `udrv list`);
 *   -ENODEV  the device is not bound to a driver udrv can use (says the `udrv bind` command);
 *   -EACCES  no permission (says the chown command for /dev/vfio/N, or to run as root);
 *   -EBUSY   the device is already open elsewhere, or its IOMMU group is not viable
 *            (says which other devices share the group);
 *   -EINVAL  malformed name, or the domain already holds devices of another kind;
 *   other    errors from the kernel or the peer.
 */
int udrv_device_open(const char *name, const struct udrv_device_opts *opts,
		     struct udrv_device **out);

/*
 * Disable interrupts, unmap regions, unmap the domain's memory from the device, reset it when
 * the backend can, and rebind its original driver if udrv bound it. The domain is destroyed
 * too if the device created it. NULL is ignored. Never fails.
 */
void udrv_device_close(struct udrv_device *dev);

/* The name the device was opened with, without the backend prefix ("0000:01:00.0"). */
const char *udrv_device_name(const struct udrv_device *dev);
/* "vfio", "uio" or "vfio-user". */
const char *udrv_device_backend(const struct udrv_device *dev);
/* The device's DMA domain (shared or its own). */
struct udrv_dma_domain *udrv_device_domain(const struct udrv_device *dev);

/*
 * Config space access at offset off (0..4095) of len bytes. Returns len, or -EINVAL when the
 * access is out of range, or a backend error. Values are little-endian as on the bus; the
 * sized helpers convert.
 */
int udrv_device_config_read(struct udrv_device *dev, unsigned off, void *buf, size_t len);
int udrv_device_config_write(struct udrv_device *dev, unsigned off, const void *buf, size_t len);
int udrv_device_config_read8(struct udrv_device *dev, unsigned off, uint8_t *val);
int udrv_device_config_read16(struct udrv_device *dev, unsigned off, uint16_t *val);
int udrv_device_config_read32(struct udrv_device *dev, unsigned off, uint32_t *val);
int udrv_device_config_write16(struct udrv_device *dev, unsigned off, uint16_t val);
int udrv_device_config_write32(struct udrv_device *dev, unsigned off, uint32_t val);

/*
 * Whether an access to a mapped region faulted because the kernel revoked the mapping (the
 * device was removed, or its memory space disabled). Mapped regions are guarded: such an
 * access does not kill the process with SIGBUS; the page reads as all ones from then on,
 * as a removed PCIe device does, and this returns true. A driver that sees all-ones
 * registers should ask, then fail its I/O with -ENODEV. Thread: any.
 */
bool udrv_device_removed(const struct udrv_device *dev);

/* Set or clear Bus Master Enable (PCI command register bit 2); needed before any DMA. */
int udrv_device_set_bus_master(struct udrv_device *dev, bool enable);

/*
 * Find a PCI capability (standard list, PCI 3.0 section 6.7) with id cap_id.
 * Returns its config-space offset (> 0), -ENOENT if absent, -EIO if the list is malformed.
 */
int udrv_device_find_capability(struct udrv_device *dev, uint8_t cap_id);

/* Describe region index. Returns 0 (info->size == 0 for an absent region) or -EINVAL. */
int udrv_device_region_info(struct udrv_device *dev, unsigned index, struct udrv_region_info *info);

/*
 * Map region index into the process. Returns the base address of a virtual range as large as
 * the region, in which the areas listed by udrv_device_region_info() are mapped; touching the
 * rest faults. Mapping twice returns the same address; the mapping lives until close.
 * Returns NULL with errno: EINVAL (no such region, or an I/O BAR), ENOTSUP (nothing mappable:
 * use udrv_device_region_read/write), or a backend error.
 */
void *udrv_device_region_map(struct udrv_device *dev, unsigned index);

/*
 * Read or write len bytes (1, 2, 4 or 8 for registers; any length for memory) at offset off of
 * region index without mapping it: works for every region, mapped or not, including I/O BARs.
 * Returns len, or -EINVAL for an out-of-range access, or a backend error (-ENODEV: device
 * gone).
 */
int udrv_device_region_read(struct udrv_device *dev, unsigned index, uint64_t off, void *buf,
			    size_t len);
int udrv_device_region_write(struct udrv_device *dev, unsigned index, uint64_t off, const void *buf,
			     size_t len);

/* Number of vectors of an interrupt type (0: not supported). Returns >= 0 or -errno. */
int udrv_device_irq_count(struct udrv_device *dev, enum udrv_irq_type type);

/*
 * Deliver vectors [start, start+count) of type to eventfds: fds[i] for vector start+i; an fd of
 * -1 leaves that vector without a target. The device signals the eventfd (the caller reads or
 * polls it). For MSI/MSI-X this also enables the capability in config space. For UDRV_IRQ_REQ
 * (one vector) the eventfd fires when the kernel wants the device back: close it promptly.
 * Returns 0, or -EINVAL (out of range), -ENOTSUP (type not supported by the backend, e.g. MSI
 * under UIO), or a backend error.
 */
int udrv_device_irq_enable(struct udrv_device *dev, enum udrv_irq_type type, unsigned start,
			   unsigned count, const int *fds);

/* Stop delivering every vector of type. Returns 0 or -errno. */
int udrv_device_irq_disable(struct udrv_device *dev, enum udrv_irq_type type);

/*
 * INTx is level-triggered: the backend masks it when it fires; after servicing the device,
 * unmask it with this. Returns 0 or -errno.
 */
int udrv_device_irq_unmask(struct udrv_device *dev);

/*
 * Reset the device (function-level or whatever the backend offers). Interrupt setup and DMA
 * mappings survive; device state does not. Returns 0, -ENOTSUP if no reset is available, or a
 * backend error.
 */
int udrv_device_reset(struct udrv_device *dev);

/* MMIO accessors for mapped regions. The compiler barrier keeps accesses in program order;
 * on x86 uncached MMIO is strongly ordered, so no fence is needed between two MMIO accesses. */
static inline uint32_t udrv_mmio_read32(const volatile void *addr)
{
	return *(const volatile uint32_t *)addr;
}

static inline uint64_t udrv_mmio_read64(const volatile void *addr)
{
	return *(const volatile uint64_t *)addr;
}

static inline void udrv_mmio_write32(volatile void *addr, uint32_t val)
{
	*(volatile uint32_t *)addr = val;
}

static inline void udrv_mmio_write64(volatile void *addr, uint64_t val)
{
	*(volatile uint64_t *)addr = val;
}

#ifdef __cplusplus
}
#endif
#endif
