/* SPDX-License-Identifier: BSD-3-Clause */
/* udrv/pci.h against a fake sysfs tree served by a fake kernel thread (tests/fake_sysfs.h). */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <udrv/log.h>
#include <udrv/pci.h>

#include "bus/pci_internal.h"
#include "fake_sysfs.h"
#include "test.h"

static struct fake_sysfs fs;

#define HAS(s, sub) (strstr((s), (sub)) != NULL)

/*
 * The machine the tests run on:
 *   00:00.0 host bridge, unbound                 group 0
 *   00:1c.0 root port (pcieport) + 01:00.0 nvme  group 1  (the bind/unbind target)
 *   02:00.0 nvme, nvme1n1p1 mounted on "/boot efi" group 2
 *   03:00.0 nvme, nvme2n1p2 is swap              group 3
 *   04:00.0 nvme, nvme3n1 held by dm-0           group 4
 *   05:00.0 e1000e, eth0 up                      group 5
 *   06:00.0 virtio-pci, eth1 down + 06:00.1 snd_hda_intel  group 6
 *   07:00.0 virtio-pci, no IOMMU group
 *   08:00.0 unbound + 08:00.1 pci-stub           group 8
 *   09:00.0 e1000e that vfio-pci refuses         group 9
 *   0a:00.0 nvme, nvme4n1 has btrfs on /home (anonymous 0:45 in mountinfo)  group 10
 *   0b:00.0 nvme, native multipath: nvme5c5n1 below it, nvme5n1p2 on /srv   group 11
 *   0c:00.0 virtio-pci in a vfio no-IOMMU group                              group 12
 */
static void setup(void)
{
	static const char *const drivers[] = {"nvme",	       "pcieport", "e1000e",  "virtio-pci",
					      "snd_hda_intel", "pci-stub", "vfio-pci"};

	REQUIRE(fake_sysfs_init(&fs) == 0);
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		fake_add_driver(&fs, drivers[i]);
	fake_add_device(&fs, "0000:00:00.0", 0x8086, 0x29c0, 0x060000, NULL, 0);
	fake_add_device(&fs, "0000:00:1c.0", 0x8086, 0xa110, 0x060400, "pcieport", 1);
	fake_add_device(&fs, "0000:01:00.0", 0x144d, 0xa808, 0x010802, "nvme", 1);
	fake_add_block(&fs, "0000:01:00.0", "nvme/nvme0/nvme0n1", "259:0");
	fake_add_device(&fs, "0000:02:00.0", 0x144d, 0xa808, 0x010802, "nvme", 2);
	fake_add_block(&fs, "0000:02:00.0", "nvme/nvme1/nvme1n1", "259:2");
	fake_add_block(&fs, "0000:02:00.0", "nvme/nvme1/nvme1n1/nvme1n1p1", "259:3");
	fake_add_device(&fs, "0000:03:00.0", 0x144d, 0xa808, 0x010802, "nvme", 3);
	fake_add_block(&fs, "0000:03:00.0", "nvme/nvme2/nvme2n1", "259:4");
	fake_add_block(&fs, "0000:03:00.0", "nvme/nvme2/nvme2n1/nvme2n1p2", "259:5");
	fake_add_device(&fs, "0000:04:00.0", 0x144d, 0xa808, 0x010802, "nvme", 4);
	fake_add_block(&fs, "0000:04:00.0", "nvme/nvme3/nvme3n1", "259:6");
	fake_add_holder(&fs, "0000:04:00.0", "nvme/nvme3/nvme3n1", "dm-0");
	fake_add_device(&fs, "0000:05:00.0", 0x8086, 0x10d3, 0x020000, "e1000e", 5);
	fake_add_net(&fs, "0000:05:00.0", "", "eth0", 0x1003);
	fake_add_device(&fs, "0000:06:00.0", 0x1af4, 0x1041, 0x020000, "virtio-pci", 6);
	fake_add_net(&fs, "0000:06:00.0", "virtio0", "eth1", 0x1002);
	fake_add_device(&fs, "0000:06:00.1", 0x8086, 0x293e, 0x040300, "snd_hda_intel", 6);
	fake_add_device(&fs, "0000:07:00.0", 0x1af4, 0x1041, 0x020000, "virtio-pci", -1);
	fake_add_device(&fs, "0000:08:00.0", 0x1af4, 0x1041, 0x020000, NULL, 8);
	fake_add_device(&fs, "0000:08:00.1", 0x1af4, 0x1041, 0x020000, "pci-stub", 8);
	fake_add_device(&fs, "0000:09:00.0", 0x8086, 0x10d3, 0x020000, "e1000e", 9);
	fake_refuse(&fs, "0000:09:00.0", "vfio-pci");
	fake_add_device(&fs, "0000:0a:00.0", 0x144d, 0xa808, 0x010802, "nvme", 10);
	fake_add_block(&fs, "0000:0a:00.0", "nvme/nvme4/nvme4n1", "259:8");
	fake_add_device(&fs, "0000:0b:00.0", 0x144d, 0xa808, 0x010802, "nvme", 11);
	fake_add_nvme_mpath(&fs, "0000:0b:00.0", 5, 5, 1, "259:9");
	fake_add_block_dir(&fs, "devices/virtual/nvme-subsystem/nvme-subsys5/nvme5n1/nvme5n1p2",
			   "259:10");
	fake_add_device(&fs, "0000:0c:00.0", 0x1af4, 0x1041, 0x020000, "virtio-pci", 12);
	fake_write(&fs, "sys/kernel/iommu_groups/12/name", "vfio-noiommu\n");
	fake_write(&fs, "proc/self/mountinfo",
		   "22 1 0:21 / /proc rw,relatime - proc proc rw\n"
		   "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
		   "31 27 259:3 / /boot\\040efi rw,relatime - vfat /dev/nvme1n1p1 rw\n"
		   "41 27 0:45 /@home /home rw,relatime shared:5 - btrfs /dev/nvme4n1 rw\n"
		   "42 27 259:10 / /srv rw,relatime - ext4 /dev/nvme5n1p2 rw\n");
	fake_write(&fs, "proc/swaps",
		   "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
		   "/dev/nvme2n1p2                          partition\t8388604\t\t0\t\t-2\n");
	REQUIRE(fake_kernel_start(&fs) == 0);
	REQUIRE(udrv_pci_set_root(fs.root) == 0);
}

static void drv(const char *addr, char *buf)
{
	fake_driver_of(&fs, addr, buf, 64);
}

static void test_parse_addr(void)
{
	static const char *const bad[] = {
	    "",
	    "01:00",
	    "01:20.0",
	    "01:00.8",
	    "0000:01:00.0x",
	    "g1:00.0",
	    "00000:01:00.0",
	    "0000:001:00.0",
	    " 01:00.0",
	    "01:00.0\n",
	    "0000:01:00.",
	    ":01:00.0",
	    "1:2:3:4.0",
	    "-1:00.0",
	};
	char out[UDRV_PCI_ADDR_LEN];

	CHECK_EQ(udrv_pci_parse_addr("1:00.0", out), 0);
	CHECK_STR(out, "0000:01:00.0");
	CHECK_EQ(udrv_pci_parse_addr("01:00.0", out), 0);
	CHECK_STR(out, "0000:01:00.0");
	CHECK_EQ(udrv_pci_parse_addr("0000:01:00.0", out), 0);
	CHECK_STR(out, "0000:01:00.0");
	CHECK_EQ(udrv_pci_parse_addr("0001:0A:1f.7", out), 0);
	CHECK_STR(out, "0001:0a:1f.7");
	CHECK_EQ(udrv_pci_parse_addr("ffff:ff:1f.7", out), 0);
	CHECK_STR(out, "ffff:ff:1f.7");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (udrv_pci_parse_addr(bad[i], out) != -EINVAL)
			fprintf(stderr, "accepted '%s'\n", bad[i]);
		CHECK_EQ(udrv_pci_parse_addr(bad[i], out), -EINVAL);
		CHECK(HAS(udrv_errmsg(), "udrv list"));
	}
	CHECK_EQ(udrv_pci_parse_addr(NULL, out), -EINVAL);
}

static void test_list(void)
{
	struct udrv_pci_info *l;
	int n = udrv_pci_list(&l);

	REQUIRE(n == 16);
	for (int i = 1; i < n; i++)
		CHECK(strcmp(l[i - 1].addr, l[i].addr) < 0);
	CHECK_STR(l[0].addr, "0000:00:00.0");
	CHECK_STR(l[0].driver, "");
	CHECK_EQ(l[0].iommu_group, 0);
	CHECK_STR(l[2].addr, "0000:01:00.0");
	CHECK_EQ(l[2].vendor, 0x144d);
	CHECK_EQ(l[2].device, 0xa808);
	CHECK_EQ(l[2].subsys_vendor, 0x144d);
	CHECK_EQ(l[2].subsys_device, 0x1234);
	CHECK_EQ(l[2].class_code, 0x010802);
	CHECK_STR(l[2].driver, "nvme");
	CHECK_STR(l[2].driver_override, "");
	CHECK_EQ(l[2].iommu_group, 1);
	/* From the system's pci.ids (Debian package pci.ids). */
	CHECK(HAS(l[2].vendor_name, "Samsung"));
	CHECK(HAS(l[2].device_name, "NVMe"));
	CHECK_STR(l[2].class_name, "Non-Volatile memory controller");
	CHECK_STR(l[1].class_name, "PCI bridge");
	CHECK_STR(l[9].addr, "0000:07:00.0");
	CHECK_EQ(l[9].iommu_group, -1);
	CHECK(!l[9].group_viable);
	free(l);
}

static void test_get_and_paths(void)
{
	struct udrv_pci_info info;
	char path[PATH_MAX], want[PATH_MAX];

	CHECK_EQ(udrv_pci_get("5:00.0", &info), 0);
	CHECK_STR(info.addr, "0000:05:00.0");
	CHECK_STR(info.vendor_name, "Intel Corporation");
	CHECK_EQ(udrv_pci_get("0000:42:00.0", &info), -ENOENT);
	CHECK(HAS(udrv_errmsg(), "no PCI device 0000:42:00.0"));
	CHECK(HAS(udrv_errmsg(), "udrv list"));
	CHECK_EQ(udrv_pci_get("bogus", &info), -EINVAL);
	CHECK_EQ(udrv_pci_sysfs_path("1:00.0", "vendor", path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/sys/bus/pci/devices/0000:01:00.0/vendor", fs.root);
	CHECK_STR(path, want);
	CHECK_EQ(udrv_pci_sysfs_path("1:00.0", NULL, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/sys/bus/pci/devices/0000:01:00.0", fs.root);
	CHECK_STR(path, want);
	CHECK_EQ(udrv_pci_sysfs_path("1:00.0", NULL, path, 8), -ENAMETOOLONG);
	CHECK_EQ(udrv_pci_vfio_group_path("0000:04:00.0", path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/dev/vfio/4", fs.root);
	CHECK_STR(path, want);
	CHECK_EQ(udrv_pci_vfio_group_path("0000:0c:00.0", path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/dev/vfio/noiommu-12", fs.root);
	CHECK_STR(path, want);
	CHECK_EQ(udrv_pci_vfio_group_path("0000:07:00.0", path, sizeof(path)), -ENODEV);
	CHECK(HAS(udrv_errmsg(), "intel_iommu=on"));
	CHECK_EQ(udrv_pci_uio_path("0000:07:00.0", path, sizeof(path)), -ENODEV);
	CHECK(HAS(udrv_errmsg(), "udrv bind 0000:07:00.0 uio_pci_generic"));
}

static void test_viability(void)
{
	struct udrv_pci_info info, *g;
	int n;

	/* The kernel's rule, case by case. */
	CHECK(pci_driver_viable("", 0x020000));
	CHECK(pci_driver_viable("vfio-pci", 0x020000));
	CHECK(pci_driver_viable("mlx5_vfio_pci", 0x020000));
	CHECK(pci_driver_viable("pci-stub", 0x020000));
	CHECK(pci_driver_viable("pcieport", 0x060400));
	CHECK(!pci_driver_viable("pcieport", 0x010802));
	CHECK(!pci_driver_viable("shpchp", 0x060400));
	CHECK(!pci_driver_viable("uio_pci_generic", 0x020000));
	CHECK(!pci_driver_viable("nvme", 0x010802));

	CHECK_EQ(udrv_pci_get("0000:00:00.0", &info), 0);
	CHECK(info.group_viable); /* alone and unbound */
	CHECK_EQ(udrv_pci_get("0000:08:00.0", &info), 0);
	CHECK(info.group_viable); /* unbound + pci-stub */
	CHECK_EQ(udrv_pci_get("0000:06:00.0", &info), 0);
	CHECK(!info.group_viable); /* virtio-pci and snd_hda_intel bound */
	CHECK_EQ(udrv_pci_get("0000:01:00.0", &info), 0);
	CHECK(!info.group_viable); /* nvme bound */

	n = udrv_pci_group_devices("1:00.0", &g);
	REQUIRE(n == 2);
	CHECK_STR(g[0].addr, "0000:00:1c.0");
	CHECK_STR(g[0].driver, "pcieport");
	CHECK_STR(g[1].addr, "0000:01:00.0");
	free(g);
	CHECK_EQ(udrv_pci_group_devices("0000:07:00.0", &g), -ENODEV);
	CHECK(g == NULL);
	CHECK(HAS(udrv_errmsg(), "amd_iommu=on"));
}

static void test_in_use(void)
{
	struct udrv_pci_info info;

	CHECK_EQ(udrv_pci_get("0000:01:00.0", &info), 0);
	CHECK_STR(info.in_use, "");
	CHECK_EQ(udrv_pci_get("0000:02:00.0", &info), 0);
	CHECK_STR(info.in_use, "nvme1n1p1 is mounted on /boot efi");
	CHECK_EQ(udrv_pci_get("0000:03:00.0", &info), 0);
	CHECK_STR(info.in_use, "nvme2n1p2 is used for swap");
	CHECK_EQ(udrv_pci_get("0000:04:00.0", &info), 0);
	CHECK_STR(info.in_use, "nvme3n1 is used by dm-0 (device-mapper or md)");
	CHECK_EQ(udrv_pci_get("0000:05:00.0", &info), 0);
	CHECK_STR(info.in_use, "interface eth0 is up");
	CHECK_EQ(udrv_pci_get("0000:0a:00.0", &info), 0);
	CHECK_STR(info.in_use, "nvme4n1 is mounted on /home");
	CHECK_EQ(udrv_pci_get("0000:0b:00.0", &info), 0);
	CHECK_STR(info.in_use, "nvme5n1p2 is mounted on /srv");
	CHECK_EQ(udrv_pci_get("0000:06:00.0", &info), 0);
	CHECK_STR(info.in_use, ""); /* eth1 is down */
	CHECK_EQ(udrv_pci_get("0000:00:1c.0", &info), 0);
	CHECK_STR(info.in_use, ""); /* the NVMe behind it is its own device */
}

static void test_bind_roundtrip(void)
{
	struct udrv_pci_info info;
	char d[64], path[PATH_MAX], want[PATH_MAX];

	CHECK_EQ(udrv_pci_bind("1:00.0", "vfio-pci", 0), 0);
	CHECK_STR(udrv_errmsg(), ""); /* the bridge does not spoil the group */
	drv("0000:01:00.0", d);
	CHECK_STR(d, "vfio-pci");
	CHECK_EQ(udrv_pci_get("0000:01:00.0", &info), 0);
	CHECK_STR(info.driver_override, "vfio-pci");
	CHECK(info.group_viable);
	CHECK_EQ(udrv_pci_vfio_group_access("0000:01:00.0", path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/dev/vfio/1", fs.root);
	CHECK_STR(path, want);
	CHECK_EQ(udrv_pci_vfio_group_access("0000:01:00.0", path, 4), -ENAMETOOLONG);
	/* Already there: nothing to do. */
	CHECK_EQ(udrv_pci_bind("0000:01:00.0", NULL, 0), 0);

	CHECK_EQ(udrv_pci_unbind("0000:01:00.0", 0), 0);
	drv("0000:01:00.0", d);
	CHECK_STR(d, "nvme");
	CHECK_EQ(udrv_pci_get("0000:01:00.0", &info), 0);
	CHECK_STR(info.driver_override, "");
	CHECK_EQ(udrv_pci_vfio_group_access("0000:01:00.0", path, sizeof(path)), -ENODEV);
	CHECK(HAS(udrv_errmsg(), "sudo udrv bind 0000:01:00.0"));
	/* Unbinding a device on its kernel driver changes nothing. */
	CHECK_EQ(udrv_pci_unbind("0000:01:00.0", 0), 0);
	drv("0000:01:00.0", d);
	CHECK_STR(d, "nvme");
}

static void test_refuse_in_use(void)
{
	static const struct {
		const char *addr, *why, *drv;
	} busy[] = {
	    {"0000:02:00.0", "nvme1n1p1 is mounted on /boot efi", "nvme"},
	    {"0000:03:00.0", "nvme2n1p2 is used for swap", "nvme"},
	    {"0000:04:00.0", "dm-0", "nvme"},
	    {"0000:05:00.0", "interface eth0 is up", "e1000e"},
	};
	char d[64];

	for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++) {
		CHECK_EQ(udrv_pci_bind(busy[i].addr, "vfio-pci", 0), -EBUSY);
		CHECK(HAS(udrv_errmsg(), busy[i].why));
		CHECK(HAS(udrv_errmsg(), "--force"));
		drv(busy[i].addr, d);
		CHECK_STR(d, busy[i].drv);
	}
	CHECK_EQ(udrv_pci_bind("0000:02:00.0", "vfio-pci", UDRV_PCI_FORCE), 0);
	drv("0000:02:00.0", d);
	CHECK_STR(d, "vfio-pci");
	CHECK_EQ(udrv_pci_unbind("0000:02:00.0", 0), 0);
	drv("0000:02:00.0", d);
	CHECK_STR(d, "nvme");
}

static void test_errors(void)
{
	char d[64];

	CHECK_EQ(udrv_pci_bind("0000:07:00.0", "vfio-pci", 0), -ENODEV);
	CHECK(HAS(udrv_errmsg(), "IOMMU is off"));
	CHECK(HAS(udrv_errmsg(), "intel_iommu=on iommu=pt"));
	CHECK(HAS(udrv_errmsg(), "amd_iommu=on"));
	CHECK(HAS(udrv_errmsg(), "uio_pci_generic"));
	CHECK_EQ(udrv_pci_bind("0000:07:00.0", "uio_pci_generic", 0), -ENODEV);
	CHECK(HAS(udrv_errmsg(), "run `sudo modprobe uio_pci_generic`"));
	CHECK_EQ(udrv_pci_bind("0000:42:00.0", "vfio-pci", 0), -ENOENT);
	CHECK(HAS(udrv_errmsg(), "no PCI device 0000:42:00.0"));
	CHECK(HAS(udrv_errmsg(), "`udrv list`"));
	CHECK_EQ(udrv_pci_bind("42", "vfio-pci", 0), -EINVAL);
	CHECK(HAS(udrv_errmsg(), "not a PCI address"));
	CHECK_EQ(udrv_pci_bind("0000:01:00.0", "bogus", 0), -ENODEV);
	CHECK(HAS(udrv_errmsg(), "no PCI driver named bogus"));
	CHECK_EQ(udrv_pci_bind("0000:01:00.0", "../x", 0), -EINVAL);
	CHECK_EQ(udrv_pci_bind("0000:00:1c.0", "vfio-pci", 0), -EINVAL);
	CHECK(HAS(udrv_errmsg(), "is a PCI bridge"));
	drv("0000:07:00.0", d);
	CHECK_STR(d, "virtio-pci");

	/* The kernel refusing: an error that says so, and the old driver back. */
	CHECK_EQ(udrv_pci_bind("0000:09:00.0", "vfio-pci", 0), -EIO);
	CHECK(HAS(udrv_errmsg(), "did not bind 0000:09:00.0 to vfio-pci"));
	CHECK(HAS(udrv_errmsg(), "dmesg"));
	CHECK(HAS(udrv_errmsg(), "given back to e1000e"));
	for (int i = 0; i < 100; i++) {
		drv("0000:09:00.0", d);
		if (d[0])
			break;
		usleep(10000);
	}
	CHECK_STR(d, "e1000e");
}

static void test_uio(void)
{
	char d[64], path[PATH_MAX], want[PATH_MAX];

	fake_add_driver(&fs, "uio_pci_generic");
	CHECK_EQ(udrv_pci_bind("0000:07:00.0", "uio_pci_generic", 0), 0);
	drv("0000:07:00.0", d);
	CHECK_STR(d, "uio_pci_generic");
	CHECK_EQ(udrv_pci_uio_path("0000:07:00.0", path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/dev/uio0", fs.root);
	CHECK_STR(path, want);
	CHECK_EQ(udrv_pci_unbind("0000:07:00.0", 0), 0);
	drv("0000:07:00.0", d);
	CHECK_STR(d, "virtio-pci");
	CHECK_EQ(udrv_pci_uio_path("0000:07:00.0", path, sizeof(path)), -ENODEV);
}

static void test_not_viable(void)
{
	const char *msg;
	char d[64];

	CHECK_EQ(udrv_pci_bind("0000:06:00.0", "vfio-pci", 0), 0);
	msg = udrv_errmsg();
	CHECK(HAS(msg, "IOMMU group 6 is not viable"));
	CHECK(HAS(msg, "0000:06:00.1 (snd_hda_intel): run `sudo udrv bind 0000:06:00.1`"));
	CHECK(!HAS(msg, "0000:06:00.0 ("));
	drv("0000:06:00.0", d);
	CHECK_STR(d, "vfio-pci");
	CHECK_EQ(udrv_pci_unbind("0000:06:00.0", 0), 0);
	drv("0000:06:00.0", d);
	CHECK_STR(d, "virtio-pci");
	/* Unbinding a device no kernel driver wants: it stays unbound. */
	CHECK_EQ(udrv_pci_bind("0000:08:00.0", "vfio-pci", 0), 0);
	CHECK_STR(udrv_errmsg(), "");
	CHECK_EQ(udrv_pci_unbind("0000:08:00.0", 0), 0);
	drv("0000:08:00.0", d);
	CHECK_STR(d, "");
}

static void test_no_sysfs(void)
{
	struct udrv_pci_info *l = NULL;
	char empty[PATH_MAX];

	snprintf(empty, sizeof(empty), "%s/proc", fs.root);
	REQUIRE(udrv_pci_set_root(empty) == 0);
	CHECK_EQ(udrv_pci_list(&l), -ENOENT);
	CHECK(l == NULL);
	CHECK(HAS(udrv_errmsg(), "sysfs"));
	REQUIRE(udrv_pci_set_root(fs.root) == 0);
}

/* Re-run this binary as a child in mode, so that it starts clean (no threads, no libpci). */
static int run_child(const char *mode, const char *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execl("/proc/self/exe", "test_pci", mode, fs.root, arg, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void test_not_root(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "skip test_not_root: needs root to drop privileges\n");
		return;
	}
	CHECK_EQ(udrv_pci_bind("0000:01:00.0", "vfio-pci", 0), 0);
	CHECK_EQ(run_child("--child-nobody", ""), 0);
	CHECK_EQ(udrv_pci_unbind("0000:01:00.0", 0), 0);
}

static void test_names_missing(void)
{
	char bad[PATH_MAX];

	CHECK_EQ(run_child("--child-ids", "/nonexistent/pci.ids"), 0);
	snprintf(bad, sizeof(bad), "%s/bad.ids", fs.root);
	fake_write(&fs, "bad.ids", "8086  Intel\n\tzz\tnot hex\n");
	CHECK_EQ(run_child("--child-ids", bad), 0);
}

/* Children: exit 0 when every check passes. */
static int child_main(const char *mode, const char *root, const char *arg)
{
	struct udrv_pci_info info;
	char path[PATH_MAX];

	REQUIRE(udrv_pci_set_root(root) == 0);
	if (!strcmp(mode, "--child-nobody")) {
		REQUIRE(setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0);
		CHECK_EQ(udrv_pci_bind("0000:04:00.0", "vfio-pci", UDRV_PCI_FORCE), -EACCES);
		CHECK(HAS(udrv_errmsg(), "run as root: sudo udrv bind 0000:04:00.0 vfio-pci"));
		CHECK_EQ(udrv_pci_unbind("0000:01:00.0", 0), -EACCES);
		CHECK(HAS(udrv_errmsg(), "sudo udrv unbind 0000:01:00.0"));
		CHECK_EQ(udrv_pci_vfio_group_access("0000:01:00.0", path, sizeof(path)), -EACCES);
		CHECK(HAS(udrv_errmsg(), "sudo chown $USER /dev/vfio/1"));
	} else {
		REQUIRE(pci_names_set_ids_path(arg) == 0);
		CHECK_EQ(udrv_pci_get("0000:05:00.0", &info), 0);
		CHECK_STR(info.vendor_name, "");
		CHECK_STR(info.device_name, "");
		CHECK_STR(info.class_name, "");
		CHECK_EQ(info.vendor, 0x8086);
		CHECK_EQ(pci_names_set_ids_path(arg), -EBUSY);
	}
	return test_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	int ret;

	if (argc == 4 && !strncmp(argv[1], "--child-", 8))
		return child_main(argv[1], argv[2], argv[3]);
	setup();
	RUN(test_parse_addr);
	RUN(test_list);
	RUN(test_get_and_paths);
	RUN(test_viability);
	RUN(test_in_use);
	RUN(test_bind_roundtrip);
	RUN(test_refuse_in_use);
	RUN(test_errors);
	RUN(test_uio);
	RUN(test_not_viable);
	RUN(test_no_sysfs);
	RUN(test_not_root);
	RUN(test_names_missing);
	ret = test_done();
	udrv_pci_set_root(NULL);
	fake_sysfs_destroy(&fs);
	return ret;
}
