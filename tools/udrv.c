/* SPDX-License-Identifier: BSD-3-Clause */
/* udrv: user-space device drivers. Git-style subcommands; see `udrv help`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <udrv/log.h>
#include <udrv/pci.h>

#include "cli.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
    {"list", cmd_list, "list PCI devices, their drivers and IOMMU groups"},
    {"bind", cmd_bind, "bind a device to vfio-pci, uio_pci_generic or its kernel driver"},
    {"unbind", cmd_unbind, "give a device back to its kernel driver"},
    {"emu", cmd_emu, "serve an emulated device (NVMe) over vfio-user, inject faults"},
    {"nvme", cmd_nvme, "drive an NVMe controller: identify, verify data, measure performance"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: udrv <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n`udrv <command> --help` describes a command.\n");
}

int cli_fail(const char *what, int err)
{
	const char *msg = udrv_errmsg();

	fprintf(stderr, "udrv: %s: %s\n", what, msg[0] ? msg : strerror(err < 0 ? -err : err));
	return 1;
}

int main(int argc, char **argv)
{
	const char *root = getenv("UDRV_ROOT");

	/* Test hook: run against a fake /sys, /proc and /dev tree. */
	if (root && udrv_pci_set_root(root) < 0)
		return cli_fail("UDRV_ROOT", -1);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "udrv: '%s' is not a udrv command; run `udrv help` for the list.\n",
		argv[1]);
	return 2;
}
