/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device model's name handling and its refusals, against a fake sysfs tree: every refusal
 * names the command that fixes it. The VFIO and UIO backends meet real (emulated) hardware in
 * the vm tier.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udrv/device.h>
#include <udrv/log.h>
#include <udrv/pci.h>

#include "test.h"

static char root[] = "/tmp/udrv-test-device-XXXXXX";

static void put(const char *rel, const char *content)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	REQUIRE(f);
	fputs(content, f);
	fclose(f);
}

static void mk(const char *rel)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/%s'", root, rel);
	REQUIRE(system(cmd) == 0);
}

static void link_to(const char *target, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	REQUIRE(symlink(target, path) == 0);
}

/* 0000:00:03.0 e1000e bound to its kernel driver; 0000:00:04.0 bound to vfio-pci in group 7
 * whose /dev/vfio/7 does not exist (as if a udev rule had not run). */
static void make_tree(void)
{
	REQUIRE(mkdtemp(root));
	mk("sys/bus/pci/drivers/e1000e");
	mk("sys/bus/pci/drivers/vfio-pci");
	mk("sys/kernel/iommu_groups/3/devices");
	mk("sys/kernel/iommu_groups/7/devices");
	mk("proc/self");
	mk("dev/vfio");
	put("proc/self/mountinfo", "");
	put("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");
	const char *devs[] = {"0000:00:03.0", "0000:00:04.0"};
	const char *drv[] = {"e1000e", "vfio-pci"};
	const char *grp[] = {"3", "7"};
	for (int i = 0; i < 2; i++) {
		char rel[256], tgt[256];
		snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s", devs[i]);
		mk(rel);
		snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/vendor", devs[i]);
		put(rel, "0x8086\n");
		snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/device", devs[i]);
		put(rel, "0x10d3\n");
		snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/class", devs[i]);
		put(rel, "0x020000\n");
		snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/subsystem_vendor", devs[i]);
		put(rel, "0x8086\n");
		snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/subsystem_device", devs[i]);
		put(rel, "0x0000\n");
		snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/driver_override", devs[i]);
		put(rel, "(null)\n");
		snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/driver", devs[i]);
		snprintf(tgt, sizeof(tgt), "../../../../sys/bus/pci/drivers/%s", drv[i]);
		link_to(tgt, rel);
		snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s/iommu_group", devs[i]);
		snprintf(tgt, sizeof(tgt), "../../../../sys/kernel/iommu_groups/%s", grp[i]);
		link_to(tgt, rel);
		snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%s/devices/%s", grp[i],
			 devs[i]);
		snprintf(tgt, sizeof(tgt), "../../../../bus/pci/devices/%s", devs[i]);
		link_to(tgt, rel);
	}
	REQUIRE(udrv_pci_set_root(root) == 0);
}

static int open_dev(const char *name, struct udrv_device **dev)
{
	return udrv_device_open(name, NULL, dev);
}

static void test_names(void)
{
	struct udrv_device *dev = (void *)1;

	CHECK_EQ(open_dev("", &dev), -EINVAL);
	CHECK(dev == NULL);
	CHECK(strstr(udrv_errmsg(), "udrv list") != NULL);
	CHECK_EQ(open_dev("not-a-device", &dev), -EINVAL);
	CHECK(strstr(udrv_errmsg(), "not-a-device") != NULL);
	CHECK_EQ(open_dev("vfio-user:/nonexistent/socket", &dev), -ENOENT);
	CHECK(strstr(udrv_errmsg(), "no vfio-user server at /nonexistent/socket") != NULL);
	CHECK(open_dev("0000:00:09.0", &dev) == -ENOENT);
	CHECK(strstr(udrv_errmsg(), "udrv list") != NULL);
}

static void test_refusals(void)
{
	struct udrv_device *dev;

	/* Bound to its kernel driver: say which bind command to run. */
	CHECK_EQ(open_dev("0000:00:03.0", &dev), -ENODEV);
	CHECK(strstr(udrv_errmsg(), "udrv bind 0000:00:03.0 vfio-pci") != NULL);
	CHECK_EQ(open_dev("00:03.0", &dev), -ENODEV);
	CHECK_EQ(open_dev("uio:0000:00:03.0", &dev), -ENODEV);
	CHECK(strstr(udrv_errmsg(), "uio_pci_generic") != NULL);
	/* Bound to vfio-pci but asked for UIO. */
	CHECK_EQ(open_dev("uio:0000:00:04.0", &dev), -ENODEV);
	/* vfio-pci bound, but no VFIO in this (fake) kernel: an error, with a reason. */
	CHECK(open_dev("0000:00:04.0", &dev) < 0);
	CHECK(udrv_errmsg()[0] != '\0');
}

int main(void)
{
	udrv_log_set_level(UDRV_LOG_ERR);
	make_tree();
	RUN(test_names);
	RUN(test_refusals);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return test_done();
}
