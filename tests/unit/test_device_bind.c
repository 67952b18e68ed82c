/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UDRV_OPEN_BIND leaves the device as it was found: after a failed open (this fake kernel has
 * no VFIO container) or a close, the device is back on exactly its original driver, or on
 * none if it had none.
 */
#include <errno.h>

#include <udrv/device.h>
#include <udrv/log.h>
#include <udrv/pci.h>

#include "fake_sysfs.h"
#include "test.h"

static struct fake_sysfs fs;

static void driver_is(const char *addr, const char *want)
{
	char now[64];

	fake_driver_of(&fs, addr, now, sizeof(now));
	CHECK_STR(now, want);
}

static void test_bind_and_give_back(void)
{
	struct udrv_device_opts o = {.flags = UDRV_OPEN_BIND};
	struct udrv_device *dev = NULL;
	int rc;

	/* Without the flag: refused with the command to run, nothing changed. */
	CHECK_EQ(udrv_device_open("0000:05:00.0", NULL, &dev), -ENODEV);
	driver_is("0000:05:00.0", "e1000e");

	rc = udrv_device_open("0000:05:00.0", &o, &dev);
	if (rc == 0)
		udrv_device_close(dev);
	driver_is("0000:05:00.0", "e1000e");

	rc = udrv_device_open("0000:06:00.0", &o, &dev);
	if (rc == 0)
		udrv_device_close(dev);
	driver_is("0000:06:00.0", "");

	rc = udrv_device_open("uio:0000:05:00.0", &o, &dev);
	if (rc == 0)
		udrv_device_close(dev);
	driver_is("0000:05:00.0", "e1000e");

	/* A device in use is not taken. */
	CHECK_EQ(udrv_device_open("0000:07:00.0", &o, &dev), -EBUSY);
	driver_is("0000:07:00.0", "e1000e");
}

int main(void)
{
	if (!getenv("UDRV_LOG"))
		udrv_log_set_level(UDRV_LOG_ERR);
	REQUIRE(fake_sysfs_init(&fs) == 0);
	fake_add_driver(&fs, "e1000e");
	fake_add_driver(&fs, "vfio-pci");
	fake_add_driver(&fs, "uio_pci_generic");
	fake_add_device(&fs, "0000:05:00.0", 0x8086, 0x10d3, 0x020000, "e1000e", 5);
	fake_add_device(&fs, "0000:06:00.0", 0x8086, 0x10d3, 0x020000, NULL, 6);
	fake_add_device(&fs, "0000:07:00.0", 0x8086, 0x10d3, 0x020000, "e1000e", 7);
	fake_add_net(&fs, "0000:07:00.0", "", "eth1", 0x1003);
	REQUIRE(fake_kernel_start(&fs) == 0);
	REQUIRE(udrv_pci_set_root(fs.root) == 0);
	RUN(test_bind_and_give_back);
	fake_kernel_stop(&fs);
	fake_sysfs_destroy(&fs);
	return test_done();
}
