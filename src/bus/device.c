/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device model: name -> backend dispatch, argument checks, region mappings, and the
 * config-space helpers every driver needs. Backends (vfio.c, uio.c) only move bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <udrv/pci.h>

#include "core/dma_internal.h"
#include "core/log_internal.h"
#include "device_internal.h"

#define PCI_COMMAND	     0x04
#define PCI_COMMAND_MASTER   0x4
#define PCI_STATUS	     0x06
#define PCI_STATUS_CAP_LIST  0x10
#define PCI_CAPABILITY_LIST  0x34
#define PCI_CONFIG_SPACE_MAX 4096

static bool starts_with(const char *s, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);

	if (strncmp(s, prefix, n) != 0)
		return false;
	*rest = s + n;
	return true;
}

/* Pick the backend for a PCI address from the driver it is bound to, binding it if asked. */
static int pick_pci_backend(struct udrv_device *dev, const char *want, const char *addr)
{
	struct udrv_pci_info info;
	const char *target_drv;
	int rc = udrv_pci_get(addr, &info);

	if (rc < 0)
		return rc;
	if (!strcmp(info.driver, "vfio-pci") && (!want || !strcmp(want, "vfio"))) {
		dev->ops = &udrv_vfio_ops;
		return 0;
	}
	if (!strcmp(info.driver, "uio_pci_generic") && (!want || !strcmp(want, "uio"))) {
		dev->ops = &udrv_uio_ops;
		return 0;
	}
	target_drv = (want && !strcmp(want, "uio")) ? "uio_pci_generic" : "vfio-pci";
	if (!(dev->flags & UDRV_OPEN_BIND))
		return udrv_err(ENODEV,
				"%s is %s%s, not %s: run `udrv bind %s %s` first (or open it with "
				"UDRV_OPEN_BIND)",
				addr, info.driver[0] ? "bound to " : "not bound to any driver",
				info.driver, target_drv, addr, target_drv);
	rc = udrv_pci_bind(addr, target_drv, 0);
	if (rc < 0)
		return rc;
	dev->rebind = true;
	snprintf(dev->orig_driver, sizeof(dev->orig_driver), "%s", info.driver);
	dev->ops = strcmp(target_drv, "vfio-pci") ? &udrv_uio_ops : &udrv_vfio_ops;
	return 0;
}

static const struct udrv_region_info *region(struct udrv_device *dev, unsigned index);

/* Undo UDRV_OPEN_BIND: back to the exact driver the device had, or to none. */
static void give_back(struct udrv_device *dev)
{
	int rc;

	if (!dev->rebind)
		return;
	rc = udrv_pci_bind(dev->name, dev->orig_driver[0] ? dev->orig_driver : "none",
			   UDRV_PCI_FORCE);
	if (rc < 0)
		udrv_warn("%s: could not give the device back to %s: %s", dev->name,
			  dev->orig_driver[0] ? dev->orig_driver : "no driver", udrv_errmsg());
}

int udrv_device_open(const char *name, const struct udrv_device_opts *opts,
		     struct udrv_device **out)
{
	struct udrv_device *dev;
	const char *rest = name, *want = NULL;
	char addr[UDRV_PCI_ADDR_LEN];
	int rc;

	*out = NULL;
	udrv_err_clear();
	if (!name || !*name)
		return udrv_err(EINVAL,
				"no device name given; use a PCI address such as "
				"0000:01:00.0 (see `udrv list`) or vfio-user:/path/to/socket");
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return udrv_err(ENOMEM, "out of memory");
	dev->flags = opts ? opts->flags : 0;
	for (unsigned i = 0; i < UDRV_REGION_MAX; i++)
		dev->guard[i] = -1;

	if (starts_with(name, "vfio-user:", &rest)) {
		if (strlen(rest) >= sizeof(dev->name)) {
			rc = udrv_err(ENAMETOOLONG, "the socket path in %s is too long", name);
			goto fail;
		}
		snprintf(dev->name, sizeof(dev->name), "%s", rest);
		dev->ops = &udrv_vfio_user_ops;
	} else {
		if (starts_with(name, "vfio:", &rest))
			want = "vfio";
		else if (starts_with(name, "uio:", &rest))
			want = "uio";
		if (udrv_pci_parse_addr(rest, addr) < 0) {
			rc = udrv_err(EINVAL,
				      "'%s' is not a device name: use a PCI address such as "
				      "0000:01:00.0 (see `udrv list`) or vfio-user:/path/to/socket",
				      name);
			goto fail;
		}
		snprintf(dev->name, sizeof(dev->name), "%s", addr);
		rc = pick_pci_backend(dev, want, addr);
		if (rc < 0)
			goto fail;
	}

	if (opts && opts->domain) {
		dev->dom = opts->domain;
		udrv_dma_domain_get(dev->dom);
	} else {
		dev->dom = udrv_dma_domain_create();
		if (!dev->dom) {
			rc = -errno;
			goto fail;
		}
	}
	rc = dev->ops->open(dev, dev->name);
	if (rc < 0)
		goto fail;
	/* Describe every region now, so that later lookups only read (threads may map and
	 * access different regions concurrently). */
	for (unsigned i = 0; i < UDRV_REGION_MAX; i++)
		region(dev, i);
	if (!(dev->flags & UDRV_OPEN_NO_RESET)) {
		/* Start from a known state: a previous owner may have left it DMAing. */
		rc = dev->ops->reset(dev);
		if (rc < 0 && rc != -ENOTSUP)
			udrv_warn("%s: reset on open failed (%s); continuing", dev->name,
				  strerror(-rc));
	}
	udrv_err_clear();
	*out = dev;
	return 0;
fail:
	udrv_dma_domain_destroy(dev->dom);
	give_back(dev);
	free(dev);
	return rc;
}

void udrv_device_close(struct udrv_device *dev)
{
	if (!dev)
		return;
	for (unsigned i = 0; i < UDRV_REGION_MAX; i++) {
		udrv_bar_guard_remove(dev->guard[i]);
		if (dev->region_map[i])
			munmap(dev->region_map[i], dev->regions[i].size);
	}
	dev->ops->close(dev);
	udrv_dma_domain_destroy(dev->dom);
	give_back(dev);
	free(dev);
}

const char *udrv_device_name(const struct udrv_device *dev)
{
	return dev->name;
}

const char *udrv_device_backend(const struct udrv_device *dev)
{
	return dev->ops->name;
}

struct udrv_dma_domain *udrv_device_domain(const struct udrv_device *dev)
{
	return dev->dom;
}

/* Region info is asked once and kept: the backend's answer does not change while open. The
 * answer comes from a kernel or a peer, so areas are checked before anything maps them. */
static const struct udrv_region_info *region(struct udrv_device *dev, unsigned index)
{
	struct udrv_region_info *ri;
	long page = sysconf(_SC_PAGESIZE);

	if (index >= UDRV_REGION_MAX)
		return NULL;
	ri = &dev->regions[index];
	if (dev->region_valid[index])
		return ri;
	memset(ri, 0, sizeof(*ri));
	if (dev->ops->region_info(dev, index, ri) < 0)
		return NULL;
	if (ri->nr_areas > UDRV_REGION_MAX_AREAS)
		ri->nr_areas = 0;
	for (unsigned i = 0; i < ri->nr_areas; i++) {
		uint64_t off = ri->areas[i].offset, len = ri->areas[i].size;
		if ((off | len) & (uint64_t)(page - 1) || len == 0 || off > ri->size ||
		    len > ri->size - off) {
			udrv_warn("%s: region %u reports a bad mappable area (offset 0x%llx size "
				  "0x%llx); it will be accessed by read/write only",
				  dev->name, index, (unsigned long long)off,
				  (unsigned long long)len);
			ri->nr_areas = 0;
			break;
		}
	}
	if (ri->nr_areas == 0)
		ri->flags &= ~UDRV_REGION_F_MMAP;
	dev->region_valid[index] = true;
	return ri;
}

int udrv_device_region_info(struct udrv_device *dev, unsigned index, struct udrv_region_info *info)
{
	const struct udrv_region_info *ri = region(dev, index);

	if (!ri)
		return udrv_err(EINVAL, "%s has no region %u", dev->name, index);
	*info = *ri;
	return 0;
}

void *udrv_device_region_map(struct udrv_device *dev, unsigned index)
{
	const struct udrv_region_info *ri = region(dev, index);
	char *base;
	int rc;

	if (!ri || ri->size == 0 || (ri->flags & UDRV_REGION_F_IO))
		return udrv_err_null(EINVAL, "%s: region %u cannot be mapped (absent or I/O ports)",
				     dev->name, index);
	if (dev->region_map[index])
		return dev->region_map[index];
	if (!(ri->flags & UDRV_REGION_F_MMAP))
		return udrv_err_null(ENOTSUP,
				     "%s: region %u is not mappable; use udrv_device_region_read/"
				     "write",
				     dev->name, index);
	/* Reserve the whole region so that offsets are the same as the device's, then map the
	 * areas the backend allows over the reservation; the gaps fault. */
	base = mmap(NULL, ri->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return udrv_err_null(errno, "%s: cannot reserve %llu bytes for region %u: %s",
				     dev->name, (unsigned long long)ri->size, index,
				     strerror(errno));
	for (unsigned i = 0; i < ri->nr_areas; i++) {
		rc = dev->ops->region_map_area(dev, index, ri->areas[i].offset, ri->areas[i].size,
					       base + ri->areas[i].offset);
		if (rc < 0) {
			munmap(base, ri->size);
			errno = -rc;
			return NULL;
		}
	}
	dev->region_map[index] = base;
	/* A revoked mapping (removal, memory space off) must not kill the process. */
	dev->guard[index] = udrv_bar_guard_add(base, ri->size);
	if (dev->guard[index] < 0)
		udrv_warn("%s: region %u is mapped without a SIGBUS guard: %s", dev->name, index,
			  udrv_errmsg());
	return base;
}

bool udrv_device_removed(const struct udrv_device *dev)
{
	for (unsigned i = 0; dev && i < UDRV_REGION_MAX; i++)
		if (udrv_bar_guard_hit(dev->guard[i]))
			return true;
	return false;
}

int udrv_device_map_fixed(const struct udrv_device *dev, unsigned index, void *addr, size_t len,
			  int prot, int fd, uint64_t fd_off)
{
	if (mmap(addr, len, prot, MAP_SHARED | MAP_FIXED, fd, (off_t)fd_off) != MAP_FAILED)
		return 0;
	return udrv_err(errno, "cannot map %zu bytes of region %u of %s: %s", len, index, dev->name,
			strerror(errno));
}

static int check_range(struct udrv_device *dev, unsigned index, uint64_t off, size_t len)
{
	const struct udrv_region_info *ri = region(dev, index);

	if (!ri || ri->size == 0)
		return udrv_err(EINVAL, "%s has no region %u", dev->name, index);
	if (len == 0 || off >= ri->size || len > ri->size - off)
		return udrv_err(EINVAL,
				"%s: access of %zu bytes at 0x%llx is outside region %u "
				"(%llu bytes)",
				dev->name, len, (unsigned long long)off, index,
				(unsigned long long)ri->size);
	return 0;
}

int udrv_device_region_read(struct udrv_device *dev, unsigned index, uint64_t off, void *buf,
			    size_t len)
{
	int rc = check_range(dev, index, off, len);

	return rc < 0 ? rc : dev->ops->region_read(dev, index, off, buf, len);
}

int udrv_device_region_write(struct udrv_device *dev, unsigned index, uint64_t off, const void *buf,
			     size_t len)
{
	int rc = check_range(dev, index, off, len);

	return rc < 0 ? rc : dev->ops->region_write(dev, index, off, buf, len);
}

int udrv_device_config_read(struct udrv_device *dev, unsigned off, void *buf, size_t len)
{
	if (len == 0 || off >= PCI_CONFIG_SPACE_MAX || len > PCI_CONFIG_SPACE_MAX - off)
		return udrv_err(EINVAL, "%s: config access of %zu bytes at 0x%x is out of range",
				dev->name, len, off);
	return udrv_device_region_read(dev, UDRV_REGION_CONFIG, off, buf, len);
}

int udrv_device_config_write(struct udrv_device *dev, unsigned off, const void *buf, size_t len)
{
	if (len == 0 || off >= PCI_CONFIG_SPACE_MAX || len > PCI_CONFIG_SPACE_MAX - off)
		return udrv_err(EINVAL, "%s: config access of %zu bytes at 0x%x is out of range",
				dev->name, len, off);
	return udrv_device_region_write(dev, UDRV_REGION_CONFIG, off, buf, len);
}

/* Config space is little-endian (PCI Local Bus 3.0, section 6.1); so is every host udrv
 * supports today, so the sized helpers only check that the whole value arrived. */
#define CFG_READ(bits)                                                                             \
	int udrv_device_config_read##bits(struct udrv_device *dev, unsigned off,                   \
					  uint##bits##_t *val)                                     \
	{                                                                                          \
		int rc = udrv_device_config_read(dev, off, val, sizeof(*val));                     \
		return rc < 0 ? rc : 0;                                                            \
	}
CFG_READ(8)
CFG_READ(16)
CFG_READ(32)

int udrv_device_config_write16(struct udrv_device *dev, unsigned off, uint16_t val)
{
	int rc = udrv_device_config_write(dev, off, &val, sizeof(val));

	return rc < 0 ? rc : 0;
}

int udrv_device_config_write32(struct udrv_device *dev, unsigned off, uint32_t val)
{
	int rc = udrv_device_config_write(dev, off, &val, sizeof(val));

	return rc < 0 ? rc : 0;
}

int udrv_device_set_bus_master(struct udrv_device *dev, bool enable)
{
	uint16_t cmd;
	int rc = udrv_device_config_read16(dev, PCI_COMMAND, &cmd);

	if (rc < 0)
		return rc;
	cmd = enable ? (uint16_t)(cmd | PCI_COMMAND_MASTER) : (uint16_t)(cmd & ~PCI_COMMAND_MASTER);
	return udrv_device_config_write16(dev, PCI_COMMAND, cmd);
}

int udrv_device_find_capability(struct udrv_device *dev, uint8_t cap_id)
{
	uint16_t status;
	uint8_t ptr, id;
	int rc = udrv_device_config_read16(dev, PCI_STATUS, &status);

	if (rc < 0)
		return rc;
	if (!(status & PCI_STATUS_CAP_LIST))
		return -ENOENT;
	rc = udrv_device_config_read8(dev, PCI_CAPABILITY_LIST, &ptr);
	/* PCI 3.0 section 6.7: pointers are dword-aligned and above the 64-byte header; at most
	 * 48 capabilities fit, so a longer walk means a loop in device-provided data. */
	for (int n = 0; rc == 0 && n < 48; n++) {
		ptr &= 0xfc;
		if (ptr < 0x40)
			return -ENOENT;
		rc = udrv_device_config_read8(dev, ptr, &id);
		if (rc == 0 && id == cap_id)
			return ptr;
		if (rc == 0)
			rc = udrv_device_config_read8(dev, ptr + 1, &ptr);
	}
	return rc < 0 ? rc : udrv_err(EIO, "%s: the PCI capability list loops", dev->name);
}

int udrv_device_irq_count(struct udrv_device *dev, enum udrv_irq_type type)
{
	if ((unsigned)type >= UDRV_IRQ_TYPES)
		return udrv_err(EINVAL, "interrupt type %d does not exist", (int)type);
	return dev->ops->irq_count(dev, type);
}

int udrv_device_irq_enable(struct udrv_device *dev, enum udrv_irq_type type, unsigned start,
			   unsigned count, const int *fds)
{
	int n = udrv_device_irq_count(dev, type);

	if (n < 0)
		return n;
	if (n == 0) {
		static const char *const names[] = {"INTx", "MSI", "MSI-X", "ERR", "REQ"};
		bool uio = dev->ops == &udrv_uio_ops;
		return udrv_err(
		    ENOTSUP, "%s has no %s interrupts through %s%s%s%s", dev->name, names[type],
		    dev->ops->name,
		    uio ? " (UIO delivers INTx only): bind it to vfio-pci with `udrv bind " : "",
		    uio ? dev->name : "", uio ? " vfio-pci`" : "");
	}
	if (count == 0 || !fds || start >= (unsigned)n || count > (unsigned)n - start)
		return udrv_err(EINVAL, "%s: vectors %u..%u requested, the device has %d",
				dev->name, start, start + count - 1, n);
	return dev->ops->irq_set(dev, type, start, count, fds);
}

int udrv_device_irq_disable(struct udrv_device *dev, enum udrv_irq_type type)
{
	int n = udrv_device_irq_count(dev, type);

	if (n <= 0)
		return n;
	return dev->ops->irq_set(dev, type, 0, 0, NULL);
}

int udrv_device_irq_unmask(struct udrv_device *dev)
{
	return dev->ops->irq_unmask(dev);
}

int udrv_device_reset(struct udrv_device *dev)
{
	return dev->ops->reset(dev);
}
