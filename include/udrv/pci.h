/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv/pci.h - PCI devices as Linux's sysfs shows them: listing, IOMMU groups, whether a device
 * is in use, and binding it to vfio-pci, uio_pci_generic or back to its kernel driver.
 *
 * Everything here reads and writes files under a root that defaults to "/" (so /sys, /proc and
 * /dev); udrv_pci_set_root() points it at a fake tree for tests.
 *
 * Threads: any thread; the root is process-global and should be set before other calls.
 * Errors: negative errno, with udrv_errmsg() holding one actionable sentence.
 */
#ifndef UDRV_PCI_H
#define UDRV_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "0000:01:00.0" + NUL. Domains above ffff (Intel VMD's 10000:...) are not supported. */
#define UDRV_PCI_ADDR_LEN 13

struct udrv_pci_info {
	char addr[UDRV_PCI_ADDR_LEN];
	uint16_t vendor, device;
	uint16_t subsys_vendor, subsys_device;
	uint32_t class_code;   /* 24 bits: base class, subclass, prog-if */
	char vendor_name[128]; /* from pci.ids via libpci; "" when unknown */
	char device_name[128];
	char class_name[64];
	char driver[64]; /* bound driver, "" if none */
	char driver_override[64];
	int iommu_group; /* -1: no IOMMU group (IOMMU off) */
	/*
	 * Every device in the group is unbound or bound to vfio-pci (or a variant), pci-stub,
	 * or is a PCI bridge bound to pcieport: the kernel's rule for letting VFIO use the group.
	 */
	bool group_viable;
	/*
	 * Why the kernel is using the device, "" if it is not: a block device below it that is
	 * mounted ("nvme0n1p1 is mounted on /boot"), used for swap, or held by device-mapper or
	 * md, or a network interface that is up ("interface eth0 is up").
	 */
	char in_use[128];
};

/*
 * Point every path at prefix + "/sys/...", prefix + "/proc/...", prefix + "/dev/...".
 * NULL or "" restores "/". The string is copied. Returns 0 or -ENAMETOOLONG.
 */
int udrv_pci_set_root(const char *prefix);

/*
 * Canonicalise "1:00.0" / "01:00.0" / "0000:01:00.0" (hex, either case) into out, lowercase.
 * Returns 0 or -EINVAL.
 */
int udrv_pci_parse_addr(const char *s, char out[UDRV_PCI_ADDR_LEN]);

/*
 * Every PCI device, sorted by address, in a malloc()ed array the caller frees.
 * Returns the number of devices (>= 0) or -errno (-ENOENT: no /sys/bus/pci).
 */
int udrv_pci_list(struct udrv_pci_info **out);

/*
 * One device. Returns 0, -EINVAL (malformed address), -ENOENT (no such device: says to run
 * `udrv list`), or -errno.
 */
int udrv_pci_get(const char *addr, struct udrv_pci_info *info);

/*
 * Devices sharing addr's IOMMU group (addr included), as a malloc()ed array.
 * Returns the count, -ENODEV if the device has no IOMMU group, or -errno.
 */
int udrv_pci_group_devices(const char *addr, struct udrv_pci_info **out);

/*
 * Whether info's device, bound as it is now, lets VFIO use its IOMMU group (the rule behind
 * group_viable, for one device): unbound, vfio-pci or a variant, pci-stub, or a PCI bridge
 * bound to pcieport. A group is viable when this holds for all its devices.
 */
bool udrv_pci_viable_member(const struct udrv_pci_info *info);

/* udrv_pci_bind() flags */
enum {
	UDRV_PCI_FORCE = 1u << 0, /* bind even if the device is in use */
};

/*
 * Bind addr to driver: "vfio-pci" (also when driver is NULL), "uio_pci_generic", "kernel"
 * (clear driver_override and let the kernel pick its default driver; a device no kernel driver
 * claims stays unbound), "none" (unbind from any driver and clear driver_override), or the
 * name of another loaded PCI driver. Uses driver_override,
 * unbind and drivers_probe, then waits up to 3 s for the driver link (a deferred probe binds
 * after drivers_probe returns). If the new driver does not take the device, its previous
 * driver gets it back.
 * Returns 0 (also when already bound to driver), or:
 *   -EINVAL  malformed address or driver name, or vfio-pci requested for a PCI bridge
 *            (VFIO cannot assign bridges);
 *   -ENOENT  no such device (says to run `udrv list`);
 *   -EBUSY   the device is in use and UDRV_PCI_FORCE was not given (says by what);
 *   -ENODEV  vfio-pci requested but the IOMMU is off (says the boot parameter), or the
 *            driver module is not loaded (says the modprobe line);
 *   -EACCES  not allowed to write sysfs (says to run as root, or, for root, that sysfs is
 *            read-only);
 *   -EIO     the kernel did not bind the device (says to look at dmesg, and where the
 *            device is now).
 * After a successful vfio-pci bind whose group is not viable, returns 0 but udrv_errmsg()
 * names the other devices in the group and the `udrv bind` command for each: until they
 * are bound too, VFIO refuses the group (VFIO_GROUP_SET_CONTAINER fails with EPERM).
 * Otherwise udrv_errmsg() is "" after a success.
 */
int udrv_pci_bind(const char *addr, const char *driver, unsigned flags);

/* Same as udrv_pci_bind(addr, "kernel", flags). */
int udrv_pci_unbind(const char *addr, unsigned flags);

/*
 * Check that this process (its effective ids) may open addr's VFIO group node, and put the
 * node's path in buf. For the device layer to call before (or after a failed) open.
 * Returns 0, or:
 *   -ENOENT  no such device, or the node is missing (says to check udev);
 *   -ENODEV  no IOMMU group (says the boot parameter), or not bound to vfio-pci (says the
 *            `udrv bind` command);
 *   -EACCES  says `sudo chown $USER /dev/vfio/N` (or chmod for /dev/vfio/vfio);
 *   -ENAMETOOLONG  buf is too small.
 */
int udrv_pci_vfio_group_access(const char *addr, char *buf, size_t len);

/*
 * The device node of addr's VFIO group ("/dev/vfio/12"), or of its UIO device ("/dev/uio0")
 * under the current root. Returns 0, -EINVAL (malformed address), -ENAMETOOLONG, or -ENODEV
 * (no such device, no IOMMU group, or no UIO device: udrv_errmsg() says which).
 */
int udrv_pci_vfio_group_path(const char *addr, char *buf, size_t len);
int udrv_pci_uio_path(const char *addr, char *buf, size_t len);

/*
 * The sysfs directory of addr ("/sys/bus/pci/devices/0000:01:00.0"), or the file in it when
 * file is not NULL, under the current root. Returns 0, -EINVAL or -ENAMETOOLONG.
 */
int udrv_pci_sysfs_path(const char *addr, const char *file, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
