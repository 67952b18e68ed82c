/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The contract between the generic device model (device.c) and its backends (vfio.c, uio.c,
 * and later vfio_user_client.c). device.c validates arguments and keeps region mappings;
 * a backend only moves bytes and talks to its kernel interface or peer.
 */
#ifndef UDRV_DEVICE_INTERNAL_H
#define UDRV_DEVICE_INTERNAL_H

#include <udrv/device.h>

struct udrv_device;

struct udrv_device_ops {
	const char *name; /* "vfio", "uio", "vfio-user" */
	/* Open target (the name without its prefix); fill dev->priv and attach to dev->dom. */
	int (*open)(struct udrv_device *dev, const char *target);
	/* Release everything open() acquired, including the domain attachment. */
	void (*close)(struct udrv_device *dev);
	int (*region_info)(struct udrv_device *dev, unsigned index, struct udrv_region_info *info);
	/* mmap one area of a region at exactly addr (MAP_FIXED over a reservation). */
	int (*region_map_area)(struct udrv_device *dev, unsigned index, uint64_t off, size_t len,
			       void *addr);
	/* Range-checked by the caller against region_info. Return len or -errno. */
	int (*region_read)(struct udrv_device *dev, unsigned index, uint64_t off, void *buf,
			   size_t len);
	int (*region_write)(struct udrv_device *dev, unsigned index, uint64_t off, const void *buf,
			    size_t len);
	int (*irq_count)(struct udrv_device *dev, enum udrv_irq_type type);
	/* count == 0: disable all vectors of type. */
	int (*irq_set)(struct udrv_device *dev, enum udrv_irq_type type, unsigned start,
		       unsigned count, const int *fds);
	int (*irq_unmask)(struct udrv_device *dev);
	int (*reset)(struct udrv_device *dev);
};

struct udrv_device {
	const struct udrv_device_ops *ops;
	char name[256];
	struct udrv_dma_domain *dom; /* a reference held until close */
	unsigned flags;		     /* UDRV_OPEN_* */
	/* Set when udrv bound the device for this handle; orig_driver is what it had ("" for
	 * none), so close gives it back to exactly that. */
	bool rebind;
	char orig_driver[64];
	struct udrv_region_info regions[UDRV_REGION_MAX];
	bool region_valid[UDRV_REGION_MAX];
	void *region_map[UDRV_REGION_MAX];
	int guard[UDRV_REGION_MAX]; /* bar_guard.c slot of each mapped region, or -1 */
	void *priv;		    /* backend state */
};

/* bar_guard.c: SIGBUS guard for mapped regions (see there). add returns a slot or -errno. */
int udrv_bar_guard_add(void *base, size_t len);
void udrv_bar_guard_remove(int slot);
bool udrv_bar_guard_hit(int slot);

/*
 * For region_map_area(): map len bytes of fd at fd_off exactly at addr (inside the
 * reservation device.c made), with prot. Returns 0 or -errno with the reason recorded. On
 * failure device.c drops the whole reservation, so a backend needs no clean-up.
 */
int udrv_device_map_fixed(const struct udrv_device *dev, unsigned index, void *addr, size_t len,
			  int prot, int fd, uint64_t fd_off);

extern const struct udrv_device_ops udrv_vfio_ops;
extern const struct udrv_device_ops udrv_uio_ops;
extern const struct udrv_device_ops udrv_vfio_user_ops;

#endif
