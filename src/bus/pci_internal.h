/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by pci_sysfs.c, pci_bind.c and pci_names.c: paths under the root, small sysfs I/O. */
#ifndef UDRV_PCI_INTERNAL_H
#define UDRV_PCI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <udrv/pci.h>

#include "core/log_internal.h"

/*
 * root + rel (rel starts with '/') formatted into buf. Returns 0 or -ENAMETOOLONG.
 * The root is "" for "/", so real paths come out unchanged.
 */
int pci_path(char *buf, size_t len, const char *fmt, ...) UDRV_PRINTF(3, 4);

/* udrv_pci_parse_addr() that records nothing: for sysfs names that may be other things. */
int pci_parse_addr(const char *s, char out[UDRV_PCI_ADDR_LEN]);

/* The device's sysfs directory, opened (O_DIRECTORY); an fd or -errno. */
int pci_open_dev_dir(const char *addr);

/* First line of file name in directory dfd, without its newline; 0 or -errno. */
int pci_read_line_at(int dfd, const char *name, char *buf, size_t len);

/* A "0x1234" attribute no larger than max; 0, -EIO (malformed) or -errno. */
int pci_read_hex_at(int dfd, const char *name, unsigned long max, unsigned long *out);

/* Basename of a symlink's target ("../../bus/pci/drivers/nvme" -> "nvme"); 0 or -errno. */
int pci_read_link_name(const char *path, char *buf, size_t len);
int pci_read_link_name_at(int dfd, const char *name, char *buf, size_t len);

/*
 * Write s to a sysfs attribute as `echo s > path` does (O_TRUNC, one write()).
 * Returns 0 or -errno; nothing recorded.
 */
int pci_write(const char *path, const char *s);

/*
 * The fields sysfs gives directly (ids, class, driver, override, group). Names, viability and
 * in_use are left empty. Returns 0, -ENOENT (no such device, message recorded) or -errno.
 */
int pci_read_basic(const char *addr, struct udrv_pci_info *info);

/* Record and return -ENODEV: addr has no IOMMU group, with the boot parameters that fix it. */
int pci_err_iommu_off(const char *addr);

/* Whether a device that stays bound to driver keeps its IOMMU group usable by VFIO. */
bool pci_driver_viable(const char *driver, uint32_t class_code);

/* Why addr is in use, into buf ("" if it is not). Returns 0 or -errno. */
int pci_in_use(const char *addr, char *buf, size_t len);

/* pci.ids names for info's ids and class; empty strings when unknown. Thread-safe. */
void pci_names_fill(struct udrv_pci_info *info);

/*
 * Tests only: read names from path instead of libpci's default pci.ids. Must be called before
 * the first name lookup in the process; returns 0 or -EBUSY afterwards.
 */
int pci_names_set_ids_path(const char *path);

#endif
