/* SPDX-License-Identifier: BSD-3-Clause */
/* udrv: user-space device drivers. Git-style subcommands; see `udrv help`. */
#include <errno.h>
#include <inttypes.h>
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

bool cli_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

bool cli_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || !v)
		return false;
	if (*end) {
		const char *u = strchr(units, end[0] & ~0x20);

		/* "4K", "4k", "4KiB", "4KB": powers of 1024 all */
		if (!u || !end[0] || (end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B")))
			return false;
		shift = 10 * (unsigned)(u - units + 1);
	}
	if (v > (UINT64_MAX >> shift))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

void cli_iec(uint64_t b, char *buf, size_t len)
{
	static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	unsigned u = 0;

	if (b < 1024) {
		snprintf(buf, len, "%" PRIu64 " bytes", b);
		return;
	}
	while (u < 5 && b >= (1024ull << (10 * (u + 1))))
		u++;
	if (!(b & ((1ull << (10 * (u + 1))) - 1)))
		snprintf(buf, len, "%" PRIu64 " %s", b >> (10 * (u + 1)), unit[u]);
	else
		snprintf(buf, len, "%.2f %s", (double)b / (double)(1ull << (10 * (u + 1))),
			 unit[u]);
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
