/* SPDX-License-Identifier: BSD-3-Clause */
/* udrv list: PCI devices, their drivers, IOMMU groups, and what the kernel is using. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <udrv/log.h>
#include <udrv/pci.h>

#include "cli.h"

static void list_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: udrv list [--json] [--all] [ADDR]\n"
	    "\n"
	    "List PCI devices: address, vendor:device ids, names (from pci.ids), class, the\n"
	    "driver bound now, the IOMMU group and whether VFIO can use it, and what the kernel\n"
	    "is using the device for.\n"
	    "\n"
	    "  ADDR     one device in detail (0000:01:00.0, 01:00.0 or 1:00.0), with the\n"
	    "           other devices of its IOMMU group\n"
	    "  --all    also list bridges (class 06), hidden by default\n"
	    "  --json   JSON instead of a table (all devices, bridges included)\n"
	    "\n"
	    "A group is \"viable\" when every device in it is unbound or bound to vfio-pci,\n"
	    "pci-stub or (for a bridge) pcieport: only then can udrv use a device in it via VFIO.\n"
	    "\"-\" means no IOMMU group: the IOMMU is off, and only uio_pci_generic works.\n"
	    "A device that is in use (a mounted filesystem, swap, LVM/RAID, a network interface\n"
	    "that is up) is not bound by `udrv bind` unless --force is given.\n");
}

/* Display width of UTF-8 text, counting code points (pci.ids is UTF-8, mostly ASCII). */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* s in exactly w columns: padded, or cut at a code point and ended with "...". */
static void cell(const char *s, size_t w)
{
	size_t sw = width(s), n = 0, cols = 0;

	if (sw <= w) {
		fputs(s, stdout);
		for (; sw < w; sw++)
			putchar(' ');
		return;
	}
	while (s[n] && cols < w - 3) {
		n++;
		while (((unsigned char)s[n] & 0xc0) == 0x80)
			n++;
		cols++;
	}
	fwrite(s, 1, n, stdout);
	fputs("...", stdout);
}

/* "Samsung Electronics Co Ltd" -> "Samsung Electronics": the table has little room. */
static void short_vendor(const char *in, char *out, size_t len)
{
	static const char *const suffix[] = {" Corporation", " Corp.",	  ", Inc.",  " Inc.",
					     " Co., Ltd.",   " Co., Ltd", " Co Ltd", " Ltd.",
					     " Ltd",	     " Limited",  " GmbH",   " AG"};
	bool again = true;

	snprintf(out, len, "%s", in);
	while (again) {
		size_t n = strlen(out);

		again = false;
		for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
			size_t sl = strlen(suffix[i]);

			if (n > sl && !strcmp(out + n - sl, suffix[i])) {
				out[n - sl] = '\0';
				again = true;
				break;
			}
		}
	}
}

static void name_of(const struct udrv_pci_info *d, char *buf, size_t len)
{
	char ven[128];

	short_vendor(d->vendor_name, ven, sizeof(ven));
	if (!ven[0])
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s%s%s", ven, d->device_name[0] ? " " : "", d->device_name);
}

static void group_of(const struct udrv_pci_info *d, char *buf, size_t len)
{
	if (d->iommu_group < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%d %s", d->iommu_group,
			 d->group_viable ? "viable" : "not viable");
}

static bool is_bridge(const struct udrv_pci_info *d)
{
	return (d->class_code >> 16) == 0x06;
}

static void print_table(const struct udrv_pci_info *l, int n, bool all)
{
	size_t name_w = 34;
	struct winsize ws;
	int hidden = 0;
	char buf[300];

	/* The other columns take 84; a wide terminal gives the name all but 24 for IN USE. */
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 142)
		name_w = ws.ws_col - 108u;
	printf("%-12s  %-9s  ", "ADDRESS", "IDS");
	cell("NAME", name_w);
	printf("  %-24s  %-15s  %-12s  %s\n", "CLASS", "DRIVER", "GROUP", "IN USE");
	for (int i = 0; i < n; i++) {
		const struct udrv_pci_info *d = &l[i];

		if (!all && is_bridge(d)) {
			hidden++;
			continue;
		}
		printf("%-12s  %04x:%04x  ", d->addr, d->vendor, d->device);
		name_of(d, buf, sizeof(buf));
		cell(buf, name_w);
		fputs("  ", stdout);
		if (d->class_name[0]) {
			cell(d->class_name, 24);
		} else {
			snprintf(buf, sizeof(buf), "[%06x]", d->class_code);
			cell(buf, 24);
		}
		fputs("  ", stdout);
		cell(d->driver[0] ? d->driver : "-", 15);
		fputs("  ", stdout);
		group_of(d, buf, sizeof(buf));
		cell(buf, 12);
		printf("  %s\n", d->in_use[0] ? d->in_use : "-");
	}
	if (hidden)
		printf("(%d bridge%s hidden: `udrv list --all` shows them)\n", hidden,
		       hidden == 1 ? "" : "s");
}

/* Length of the UTF-8 sequence at p (1 to 4), or 0 if it is not one (overlongs pass). */
static int utf8_seq(const unsigned char *p)
{
	int n = 0;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		n = 2;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4;
	for (int i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* A JSON string: escapes per RFC 8259 section 7; bytes that are not UTF-8 become U+FFFD. */
static void json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int n;

	putchar('"');
	for (; *p; p += n) {
		n = 1;
		if (*p == '"' || *p == '\\') {
			printf("\\%c", *p);
		} else if (*p == '\n') {
			fputs("\\n", stdout);
		} else if (*p == '\t') {
			fputs("\\t", stdout);
		} else if (*p < 0x20 || *p == 0x7f) {
			printf("\\u%04x", *p);
		} else if ((n = utf8_seq(p)) > 0) {
			fwrite(p, 1, (size_t)n, stdout);
		} else {
			fputs("\\ufffd", stdout);
			n = 1;
		}
	}
	putchar('"');
}

/* A string member, or null when empty. */
static void json_opt(const char *key, const char *val, bool last)
{
	printf("    \"%s\": ", key);
	if (val[0])
		json_str(val);
	else
		fputs("null", stdout);
	fputs(last ? "\n" : ",\n", stdout);
}

/* One device; with detail, also the addresses of its group (grp, ngrp; empty if none). */
static void json_dev(const struct udrv_pci_info *d, bool detail, const struct udrv_pci_info *grp,
		     int ngrp)
{
	printf("  {\n    \"address\": \"%s\",\n", d->addr);
	printf("    \"vendor_id\": \"%04x\",\n    \"device_id\": \"%04x\",\n", d->vendor,
	       d->device);
	printf("    \"subsystem_vendor_id\": \"%04x\",\n    \"subsystem_device_id\": \"%04x\",\n",
	       d->subsys_vendor, d->subsys_device);
	printf("    \"class\": \"%06x\",\n", d->class_code);
	json_opt("vendor", d->vendor_name, false);
	json_opt("device", d->device_name, false);
	json_opt("class_name", d->class_name, false);
	json_opt("driver", d->driver, false);
	json_opt("driver_override", d->driver_override, false);
	if (d->iommu_group >= 0)
		printf("    \"iommu_group\": %d,\n    \"group_viable\": %s,\n", d->iommu_group,
		       d->group_viable ? "true" : "false");
	else
		printf("    \"iommu_group\": null,\n    \"group_viable\": null,\n");
	json_opt("in_use", d->in_use, !detail);
	if (detail) {
		printf("    \"group_devices\": [");
		for (int i = 0; i < ngrp; i++)
			printf("%s\"%s\"", i ? ", " : "", grp[i].addr);
		printf("]\n");
	}
	printf("  }");
}

static void print_json(const struct udrv_pci_info *l, int n)
{
	printf("[\n");
	for (int i = 0; i < n; i++) {
		json_dev(&l[i], false, NULL, 0);
		printf("%s\n", i + 1 < n ? "," : "");
	}
	printf("]\n");
}

static void print_detail(const struct udrv_pci_info *d, const struct udrv_pci_info *grp, int ngrp)
{
	char path[4096];

	printf("%s  %s%s%s\n", d->addr, d->vendor_name[0] ? d->vendor_name : "(unknown vendor)",
	       d->device_name[0] ? " " : "", d->device_name);
	printf("  ids          %04x:%04x, subsystem %04x:%04x\n", d->vendor, d->device,
	       d->subsys_vendor, d->subsys_device);
	printf("  class        %s (%06x)\n", d->class_name[0] ? d->class_name : "unknown",
	       d->class_code);
	printf("  driver       %s\n", d->driver[0] ? d->driver : "none");
	if (d->driver_override[0])
		printf("  override     %s\n", d->driver_override);
	if (d->iommu_group < 0)
		printf("  IOMMU group  none: the IOMMU is off (only uio_pci_generic works)\n");
	else
		printf("  IOMMU group  %d, %s\n", d->iommu_group,
		       d->group_viable ? "viable for VFIO"
				       : "not viable for VFIO until the devices marked * are "
					 "bound to vfio-pci or unbound");
	printf("  in use       %s\n", d->in_use[0] ? d->in_use : "no");
	if (udrv_pci_sysfs_path(d->addr, NULL, path, sizeof(path)) == 0)
		printf("  sysfs        %s\n", path);
	if (strstr(d->driver, "vfio") && udrv_pci_vfio_group_path(d->addr, path, sizeof(path)) == 0)
		printf("  device node  %s\n", path);
	if (!strcmp(d->driver, "uio_pci_generic") &&
	    udrv_pci_uio_path(d->addr, path, sizeof(path)) == 0)
		printf("  device node  %s\n", path);
	for (int i = 0; i < ngrp; i++) {
		const struct udrv_pci_info *g = &grp[i];

		printf("  %-12s %c%s  %04x:%04x  %-15s  %s\n", i ? "" : "group",
		       udrv_pci_viable_member(g) ? ' ' : '*', g->addr, g->vendor, g->device,
		       g->driver[0] ? g->driver : "-", g->class_name);
	}
	if (strstr(d->driver, "vfio") || !strcmp(d->driver, "uio_pci_generic"))
		printf("  next         sudo udrv unbind %s   (back to its kernel driver)\n",
		       d->addr);
	else if (d->in_use[0])
		printf("  next         stop using it first: `udrv bind` refuses a device in use "
		       "(unless --force)\n");
	else if (d->iommu_group >= 0)
		printf("  next         sudo udrv bind %s   (to vfio-pci, for udrv)\n", d->addr);
	else
		printf("  next         sudo udrv bind %s uio_pci_generic   (no IOMMU protection)\n",
		       d->addr);
}

static int show_one(const char *addr, bool json)
{
	struct udrv_pci_info d, *grp = NULL;
	int ngrp = 0, ret;

	ret = udrv_pci_get(addr, &d);
	if (ret < 0)
		return cli_fail("list", ret);
	if (d.iommu_group >= 0) {
		ngrp = udrv_pci_group_devices(d.addr, &grp);
		if (ngrp < 0)
			return cli_fail("list", ngrp);
	}
	if (json) {
		json_dev(&d, true, grp, ngrp);
		printf("\n");
	} else {
		print_detail(&d, grp, ngrp);
	}
	free(grp);
	return 0;
}

int cmd_list(int argc, char **argv)
{
	bool json = false, all = false;
	const char *addr = NULL;
	struct udrv_pci_info *l;
	int n;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--all") || !strcmp(argv[i], "-a")) {
			all = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			list_usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' || addr) {
			fprintf(stderr, "udrv list: unexpected '%s'\n", argv[i]);
			list_usage(stderr);
			return 2;
		} else {
			addr = argv[i];
		}
	}
	if (addr)
		return show_one(addr, json);
	n = udrv_pci_list(&l);
	if (n < 0)
		return cli_fail("list", n);
	if (json)
		print_json(l, n);
	else
		print_table(l, n, all);
	free(l);
	return 0;
}
