/* SPDX-License-Identifier: BSD-3-Clause */
/* udrv bind / udrv unbind: move a PCI device between its kernel driver and a user-space one. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <udrv/log.h>
#include <udrv/pci.h>

#include "cli.h"

static void bind_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: udrv bind ADDR [vfio-pci|uio_pci_generic|kernel] [--force]\n"
	    "       udrv unbind ADDR [--force]\n"
	    "\n"
	    "Bind the PCI device ADDR (0000:01:00.0, 01:00.0 or 1:00.0; see `udrv list`) to a\n"
	    "driver that hands it to user space, so that udrv can drive it:\n"
	    "\n"
	    "  vfio-pci         (default) the IOMMU confines the device's DMA to memory udrv\n"
	    "                   maps; needs the IOMMU on (intel_iommu=on or amd_iommu=on)\n"
	    "  uio_pci_generic  no IOMMU: the device can DMA to any memory; udrv then needs root\n"
	    "  kernel           give the device back to its kernel driver (= udrv unbind)\n"
	    "\n"
	    "The kernel must not be using the device: if a filesystem on it is mounted, it is\n"
	    "swap, under LVM/RAID, or its network interface is up, bind refuses unless --force\n"
	    "is given (the kernel then loses the device, and whatever was on it).\n"
	    "Binding changes sysfs, so it needs root: sudo udrv bind ADDR.\n");
}

static const char *or_none(const char *drv)
{
	return drv[0] ? drv : "(no driver)";
}

/* "0000:01:00.0: nvme -> vfio-pci (IOMMU group 5, /dev/vfio/5)" and any warnings. */
static void report(const struct udrv_pci_info *before, const char *note, bool forced)
{
	struct udrv_pci_info now;
	char node[4096], where[4200] = "";

	if (udrv_pci_get(before->addr, &now) < 0) {
		printf("%s: bound\n", before->addr);
		return;
	}
	if (strstr(now.driver, "vfio") &&
	    udrv_pci_vfio_group_path(now.addr, node, sizeof(node)) == 0)
		snprintf(where, sizeof(where), " (IOMMU group %d, %s)", now.iommu_group, node);
	else if (!strcmp(now.driver, "uio_pci_generic") &&
		 udrv_pci_uio_path(now.addr, node, sizeof(node)) == 0)
		snprintf(where, sizeof(where), " (%s)", node);
	if (!strcmp(before->driver, now.driver))
		printf("%s: already bound to %s%s\n", now.addr, or_none(now.driver), where);
	else
		printf("%s: %s -> %s%s\n", now.addr, or_none(before->driver), or_none(now.driver),
		       where);
	if (!now.driver[0] && before->driver[0])
		printf("%s: no kernel driver claimed it; it stays unbound\n", now.addr);
	if (forced && before->in_use[0])
		fprintf(stderr, "udrv: warning: %s was in use (%s); the kernel no longer has it\n",
			now.addr, before->in_use);
	if (!strcmp(now.driver, "uio_pci_generic"))
		fprintf(stderr, "udrv: warning: %s: no IOMMU: the device can DMA to any memory\n",
			now.addr);
	if (note[0])
		fprintf(stderr, "udrv: warning: %s\n", note);
}

/* Both commands: argv is "bind ADDR [DRIVER] [--force]" or "unbind ADDR [--force]". */
static int bind_main(int argc, char **argv, bool unbind)
{
	const char *pos[2] = {NULL, NULL};
	struct udrv_pci_info before;
	unsigned flags = 0;
	int npos = 0, ret;
	char note[512];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f")) {
			flags |= UDRV_PCI_FORCE;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			bind_usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' || npos == (unbind ? 1 : 2)) {
			fprintf(stderr, "udrv %s: unexpected '%s'; see `udrv %s --help`\n", argv[0],
				argv[i], argv[0]);
			return 2;
		} else {
			pos[npos++] = argv[i];
		}
	}
	if (!npos) {
		fprintf(stderr,
			"udrv %s: which device? `udrv list` shows them; see `udrv %s "
			"--help`\n",
			argv[0], argv[0]);
		return 2;
	}
	ret = udrv_pci_get(pos[0], &before);
	if (ret < 0)
		return cli_fail(argv[0], ret);
	ret = udrv_pci_bind(before.addr, unbind ? "kernel" : pos[1] ? pos[1] : "vfio-pci", flags);
	if (ret < 0)
		return cli_fail(argv[0], ret);
	/* Success may still carry advice (a group that is not viable). */
	snprintf(note, sizeof(note), "%s", udrv_errmsg());
	report(&before, note, flags & UDRV_PCI_FORCE);
	return 0;
}

int cmd_bind(int argc, char **argv)
{
	return bind_main(argc, argv, false);
}

int cmd_unbind(int argc, char **argv)
{
	return bind_main(argc, argv, true);
}
