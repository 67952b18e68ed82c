/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The udrv command (UDRV_CLI) run as a user runs it: list, list --json, bind, unbind, their
 * refusals and exit codes, against a fake sysfs whose fake kernel (tests/fake_sysfs.h) acts on
 * the CLI's writes from another process.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_sysfs.h"
#include "test.h"

#ifndef UDRV_CLI
#error "UDRV_CLI must name the udrv binary"
#endif

static struct fake_sysfs fs;
static char out[65536], err[65536];

#define HAS(s, sub) (strstr((s), (sub)) != NULL)

/*
 * Run udrv with args (NULL-terminated) as uid (-1: as we are); stdout and stderr land in out
 * and err. Returns the exit status, or -1.
 */
static int run_as(int uid, const char *const *args)
{
	const char *argv[16] = {UDRV_CLI};
	int po[2], pe[2], status, n = 1;
	size_t lo = 0, le = 0;
	pid_t pid;

	for (; args[n - 1] && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		if (uid >= 0 &&
		    (setgroups(0, NULL) < 0 || setgid((gid_t)uid) < 0 || setuid((uid_t)uid) < 0))
			_exit(126);
		execv(UDRV_CLI, (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	for (bool oo = true, eo = true; oo || eo;) {
		struct pollfd p[2] = {{oo ? po[0] : -1, POLLIN, 0}, {eo ? pe[0] : -1, POLLIN, 0}};
		ssize_t r;

		if (poll(p, 2, 10000) <= 0)
			break;
		if (p[0].revents) {
			r = read(po[0], out + lo, sizeof(out) - 1 - lo);
			oo = r > 0;
			lo += r > 0 ? (size_t)r : 0;
		}
		if (p[1].revents) {
			r = read(pe[0], err + le, sizeof(err) - 1 - le);
			eo = r > 0;
			le += r > 0 ? (size_t)r : 0;
		}
	}
	out[lo] = err[le] = '\0';
	close(po[0]);
	close(pe[0]);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

#define RUN_CLI(...) run_as(-1, (const char *const[]){__VA_ARGS__, NULL})

/* A JSON syntax check (RFC 8259) by recursive descent; p advances past one value. */
static bool json_value(const char **p);

static void json_ws(const char **p)
{
	while (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r')
		(*p)++;
}

static bool json_string(const char **p)
{
	if (*(*p)++ != '"')
		return false;
	while (**p != '"') {
		unsigned char c = (unsigned char)**p;

		if (c < 0x20)
			return false;
		if (c == '\\') {
			(*p)++;
			if (**p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)(*p)[i]))
						return false;
				*p += 4;
			} else if (!strchr("\"\\/bfnrt", **p) || !**p) {
				return false;
			}
		}
		(*p)++;
	}
	(*p)++;
	return true;
}

static bool json_list(const char **p, char close, bool object)
{
	(*p)++;
	json_ws(p);
	if (**p == close) {
		(*p)++;
		return true;
	}
	for (;;) {
		json_ws(p);
		if (object) {
			if (!json_string(p))
				return false;
			json_ws(p);
			if (*(*p)++ != ':')
				return false;
		}
		if (!json_value(p))
			return false;
		json_ws(p);
		if (**p == close) {
			(*p)++;
			return true;
		}
		if (*(*p)++ != ',')
			return false;
	}
}

static bool json_value(const char **p)
{
	json_ws(p);
	if (**p == '{')
		return json_list(p, '}', true);
	if (**p == '[')
		return json_list(p, ']', false);
	if (**p == '"')
		return json_string(p);
	for (const char *const *w = (const char *const[]){"true", "false", "null", NULL}; *w; w++)
		if (!strncmp(*p, *w, strlen(*w))) {
			*p += strlen(*w);
			return true;
		}
	if (**p == '-' || isdigit((unsigned char)**p)) {
		char *end;

		strtod(*p, &end);
		*p = end;
		return true;
	}
	return false;
}

static bool json_valid(const char *s)
{
	if (!json_value(&s))
		return false;
	json_ws(&s);
	return *s == '\0';
}

static int count(const char *s, const char *sub)
{
	int n = 0;

	for (; (s = strstr(s, sub)); s++)
		n++;
	return n;
}

static void setup(void)
{
	static const char *const drivers[] = {"nvme",	    "pcieport",	     "e1000e",
					      "virtio-pci", "snd_hda_intel", "vfio-pci"};

	REQUIRE(fake_sysfs_init(&fs) == 0);
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		fake_add_driver(&fs, drivers[i]);
	fake_add_device(&fs, "0000:00:1c.0", 0x8086, 0xa110, 0x060400, "pcieport", 1);
	fake_add_device(&fs, "0000:01:00.0", 0x144d, 0xa808, 0x010802, "nvme", 1);
	fake_add_block(&fs, "0000:01:00.0", "nvme/nvme0/nvme0n1", "259:0");
	fake_add_device(&fs, "0000:02:00.0", 0x144d, 0xa808, 0x010802, "nvme", 2);
	fake_add_block(&fs, "0000:02:00.0", "nvme/nvme1/nvme1n1", "259:2");
	fake_add_block(&fs, "0000:02:00.0", "nvme/nvme1/nvme1n1/nvme1n1p1", "259:3");
	fake_add_device(&fs, "0000:03:00.0", 0x1af4, 0x1041, 0x020000, "virtio-pci", 3);
	fake_add_device(&fs, "0000:03:00.1", 0x8086, 0x293e, 0x040300, "snd_hda_intel", 3);
	fake_add_device(&fs, "0000:04:00.0", 0x8086, 0x10d3, 0x020000, "e1000e", -1);
	fake_add_net(&fs, "0000:04:00.0", "", "eth0", 0x1002);
	fake_add_device(&fs, "0000:05:00.0", 0x8086, 0x10d3, 0x020000, "e1000e", 5);
	fake_add_net(&fs, "0000:05:00.0", "", "eth1", 0x1003);
	/* A mount point with characters JSON must escape (mountinfo escapes only \ as \134). */
	fake_write(&fs, "proc/self/mountinfo",
		   "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
		   "31 27 259:3 / /boot/\"q\"\\134x rw,relatime - vfat /dev/nvme1n1p1 rw\n");
	/* Children inherit it; set before the fake kernel thread exists. */
	setenv("UDRV_ROOT", fs.root, 1);
	REQUIRE(fake_kernel_start(&fs) == 0);
}

static void drv(const char *addr, char *buf)
{
	fake_driver_of(&fs, addr, buf, 64);
}

static void test_help_and_usage(void)
{
	CHECK_EQ(RUN_CLI("--help"), 0);
	CHECK(HAS(out, "list") && HAS(out, "bind") && HAS(out, "unbind"));
	CHECK_EQ(RUN_CLI("list", "--help"), 0);
	CHECK(HAS(out, "--json") && HAS(out, "viable"));
	CHECK_EQ(RUN_CLI("bind", "--help"), 0);
	CHECK(HAS(out, "uio_pci_generic") && HAS(out, "--force"));
	CHECK_EQ(RUN_CLI("list", "--bogus"), 2);
	CHECK_EQ(RUN_CLI("bind"), 2);
	CHECK(HAS(err, "udrv list"));
	CHECK_EQ(RUN_CLI("bind", "1:00.0", "vfio-pci", "extra"), 2);
	CHECK_EQ(RUN_CLI("unbind", "1:00.0", "vfio-pci"), 2);
	CHECK_EQ(RUN_CLI("bind", "--bogus"), 2);
	CHECK_EQ(RUN_CLI("frobnicate"), 2);
	CHECK(HAS(err, "udrv help"));
}

static void test_list_table(void)
{
	CHECK_EQ(RUN_CLI("list"), 0);
	CHECK(HAS(out, "ADDRESS"));
	CHECK(HAS(out, "0000:01:00.0  144d:a808  Samsung Electronics"));
	CHECK(HAS(out, "Non-Volatile memory c..."));
	CHECK(HAS(out, "1 not viable"));
	CHECK(HAS(out, "nvme1n1p1 is mounted on /boot/\"q\"\\x"));
	CHECK(HAS(out, "interface eth1 is up"));
	CHECK(!HAS(out, "0000:00:1c.0")); /* bridges hidden */
	CHECK(HAS(out, "1 bridge hidden"));
	CHECK_EQ(count(out, "\n"), 8); /* header, 6 devices, footer */
	CHECK_EQ(RUN_CLI("list", "--all"), 0);
	CHECK(HAS(out, "0000:00:1c.0"));
	CHECK(HAS(out, "pcieport"));
	CHECK(!HAS(out, "hidden"));
}

static void test_list_json(void)
{
	CHECK_EQ(RUN_CLI("list", "--json"), 0);
	CHECK(json_valid(out));
	CHECK_EQ(count(out, "\"address\":"), 7);
	CHECK(HAS(out, "\"address\": \"0000:00:1c.0\""));
	CHECK(HAS(out, "\"vendor_id\": \"144d\""));
	CHECK(HAS(out, "\"class\": \"010802\""));
	CHECK(HAS(out, "\"driver\": \"nvme\""));
	CHECK(HAS(out, "\"iommu_group\": null"));
	CHECK(HAS(out, "\"group_viable\": false"));
	CHECK(HAS(out, "\"in_use\": \"nvme1n1p1 is mounted on /boot/\\\"q\\\"\\\\x\""));
	CHECK(HAS(out, "\"vendor\": \"Samsung Electronics Co Ltd\""));

	CHECK_EQ(RUN_CLI("list", "1:00.0", "--json"), 0);
	CHECK(json_valid(out));
	CHECK(HAS(out, "\"group_devices\": [\"0000:00:1c.0\", \"0000:01:00.0\"]"));
	CHECK_EQ(RUN_CLI("list", "4:00.0", "--json"), 0);
	CHECK(json_valid(out));
	CHECK(HAS(out, "\"group_devices\": []"));
}

static void test_list_one(void)
{
	CHECK_EQ(RUN_CLI("list", "1:00.0"), 0);
	CHECK(HAS(out, "0000:01:00.0  Samsung"));
	CHECK(HAS(out, "IOMMU group  1, not viable"));
	CHECK(HAS(out, "0000:00:1c.0"));
	CHECK(HAS(out, "*0000:01:00.0"));
	CHECK(HAS(out, "sudo udrv bind 0000:01:00.0"));
	CHECK_EQ(RUN_CLI("list", "4:00.0"), 0);
	CHECK(HAS(out, "the IOMMU is off"));
	CHECK_EQ(RUN_CLI("list", "0000:42:00.0"), 1);
	CHECK(HAS(err, "no PCI device 0000:42:00.0"));
	CHECK(HAS(err, "udrv list"));
}

static void test_bind_unbind(void)
{
	char d[64];

	CHECK_EQ(RUN_CLI("bind", "1:00.0"), 0);
	CHECK(HAS(out, "0000:01:00.0: nvme -> vfio-pci (IOMMU group 1, "));
	CHECK(HAS(out, "/dev/vfio/1)"));
	CHECK_STR(err, "");
	drv("0000:01:00.0", d);
	CHECK_STR(d, "vfio-pci");
	CHECK_EQ(RUN_CLI("bind", "0000:01:00.0", "vfio-pci"), 0);
	CHECK(HAS(out, "already bound to vfio-pci"));
	CHECK_EQ(RUN_CLI("list", "1:00.0"), 0);
	CHECK(HAS(out, "IOMMU group  1, viable"));
	CHECK(HAS(out, "sudo udrv unbind 0000:01:00.0"));
	CHECK_EQ(RUN_CLI("unbind", "1:00.0"), 0);
	CHECK(HAS(out, "0000:01:00.0: vfio-pci -> nvme"));
	drv("0000:01:00.0", d);
	CHECK_STR(d, "nvme");
}

static void test_refusals(void)
{
	char d[64];

	CHECK_EQ(RUN_CLI("bind", "2:00.0"), 1);
	CHECK(HAS(err, "udrv: bind: 0000:02:00.0 is in use (nvme1n1p1 is mounted on /boot/"));
	CHECK(HAS(err, "--force"));
	CHECK_STR(out, "");
	drv("0000:02:00.0", d);
	CHECK_STR(d, "nvme");
	CHECK_EQ(RUN_CLI("bind", "5:00.0"), 1);
	CHECK(HAS(err, "interface eth1 is up"));
	CHECK_EQ(RUN_CLI("bind", "2:00.0", "--force"), 0);
	CHECK(HAS(out, "nvme -> vfio-pci"));
	CHECK(HAS(err, "warning: 0000:02:00.0 was in use"));
	CHECK_EQ(RUN_CLI("unbind", "2:00.0"), 0);
	drv("0000:02:00.0", d);
	CHECK_STR(d, "nvme");

	CHECK_EQ(RUN_CLI("bind", "4:00.0"), 1);
	CHECK(HAS(err, "IOMMU is off"));
	CHECK(HAS(err, "intel_iommu=on"));
	CHECK_EQ(RUN_CLI("bind", "zz"), 1);
	CHECK(HAS(err, "not a PCI address"));
	CHECK_EQ(RUN_CLI("bind", "0000:42:00.0"), 1);
	CHECK(HAS(err, "udrv list"));
}

static void test_not_viable(void)
{
	CHECK_EQ(RUN_CLI("bind", "3:00.0"), 0);
	CHECK(HAS(out, "virtio-pci -> vfio-pci"));
	CHECK(HAS(err, "warning: IOMMU group 3 is not viable"));
	CHECK(HAS(err, "sudo udrv bind 0000:03:00.1"));
	CHECK_EQ(RUN_CLI("unbind", "3:00.0"), 0);
	CHECK(HAS(out, "vfio-pci -> virtio-pci"));
}

static void test_uio(void)
{
	CHECK_EQ(RUN_CLI("bind", "4:00.0", "uio_pci_generic"), 1);
	CHECK(HAS(err, "modprobe uio_pci_generic"));
	fake_add_driver(&fs, "uio_pci_generic");
	CHECK_EQ(RUN_CLI("bind", "4:00.0", "uio_pci_generic"), 0);
	CHECK(HAS(out, "0000:04:00.0: e1000e -> uio_pci_generic ("));
	CHECK(HAS(out, "/dev/uio0)"));
	CHECK(HAS(err, "no IOMMU: the device can DMA to any memory"));
	CHECK_EQ(RUN_CLI("unbind", "4:00.0"), 0);
	CHECK(HAS(out, "uio_pci_generic -> e1000e"));
}

static void test_not_root(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "skip test_not_root: needs root to drop privileges\n");
		return;
	}
	CHECK_EQ(run_as(65534, (const char *const[]){"bind", "1:00.0", NULL}), 1);
	CHECK(HAS(err, "run as root: sudo udrv bind 0000:01:00.0 vfio-pci"));
	CHECK_EQ(run_as(65534, (const char *const[]){"list", NULL}), 0);
	CHECK(HAS(out, "0000:01:00.0"));
}

int main(void)
{
	int ret;

	setup();
	RUN(test_help_and_usage);
	RUN(test_list_table);
	RUN(test_list_json);
	RUN(test_list_one);
	RUN(test_bind_unbind);
	RUN(test_refusals);
	RUN(test_not_viable);
	RUN(test_uio);
	RUN(test_not_root);
	ret = test_done();
	fake_sysfs_destroy(&fs);
	return ret;
}
