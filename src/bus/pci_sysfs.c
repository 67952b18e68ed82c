/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PCI devices as sysfs shows them (Documentation/ABI/testing/sysfs-bus-pci): ids, driver,
 * IOMMU group (Documentation/ABI/testing/sysfs-kernel-iommu_groups), and whether the kernel
 * is using the device for something a user would miss: a mounted filesystem, swap, a
 * device-mapper or md stack, or a network interface that is up.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pci_internal.h"

/* "" means "/": paths are root + "/sys/...". Set before other calls (see pci.h). */
static char root[PATH_MAX - 64];

int udrv_pci_set_root(const char *prefix)
{
	size_t n;

	if (!prefix)
		prefix = "";
	n = strlen(prefix);
	while (n > 0 && prefix[n - 1] == '/')
		n--;
	if (n >= sizeof(root))
		return udrv_err(ENAMETOOLONG, "the root %s is too long (at most %zu bytes)", prefix,
				sizeof(root) - 1);
	memcpy(root, prefix, n);
	root[n] = '\0';
	return 0;
}

int pci_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n, m;

	n = snprintf(buf, len, "%s", root);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	m = vsnprintf(buf + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)m >= len - (size_t)n)
		return -ENAMETOOLONG;
	return 0;
}

static int read_line_fd(int fd, char *buf, size_t len)
{
	ssize_t n;
	char *nl;

	n = read(fd, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	return 0;
}

int pci_read_line_at(int dfd, const char *name, char *buf, size_t len)
{
	int fd, ret;

	buf[0] = '\0';
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = read_line_fd(fd, buf, len);
	close(fd);
	return ret;
}

/* The last component of the n-byte link target in t (n < 0: readlink failed with errno). */
static int link_basename(char *t, ssize_t n, char *buf, size_t len)
{
	const char *base;

	if (n < 0)
		return -errno;
	t[n] = '\0';
	base = strrchr(t, '/');
	base = base ? base + 1 : t;
	if (strlen(base) >= len)
		return -ENAMETOOLONG;
	strcpy(buf, base);
	return 0;
}

int pci_read_link_name(const char *path, char *buf, size_t len)
{
	char target[PATH_MAX];

	buf[0] = '\0';
	return link_basename(target, readlink(path, target, sizeof(target) - 1), buf, len);
}

int pci_read_link_name_at(int dfd, const char *name, char *buf, size_t len)
{
	char target[PATH_MAX];

	buf[0] = '\0';
	return link_basename(target, readlinkat(dfd, name, target, sizeof(target) - 1), buf, len);
}

int pci_write(const char *path, const char *s)
{
	size_t len = strlen(s);
	ssize_t n;
	int fd, ret = 0;

	/* No O_CREAT: a missing attribute means a missing driver or an old kernel. */
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, s, len);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* At most maxdigits hex digits from *s, advancing it. Returns the value or -1. */
static long hex_field(const char **s, int maxdigits)
{
	long v = 0;
	int n = 0, d;

	while (n < maxdigits && (d = hexval((unsigned char)**s)) >= 0) {
		v = v * 16 + d;
		(*s)++;
		n++;
	}
	return n ? v : -1;
}

/* udrv_pci_parse_addr() without the message: for names read from sysfs that may be others. */
int pci_parse_addr(const char *s, char out[UDRV_PCI_ADDR_LEN])
{
	long dom = 0, bus, dev, fn;
	const char *p = s, *colon;

	/* Two colons: "domain:bus:dev.fn"; one: "bus:dev.fn" in domain 0. */
	colon = strchr(s, ':');
	if (colon && strchr(colon + 1, ':')) {
		dom = hex_field(&p, 4);
		if (dom < 0 || *p++ != ':')
			goto bad;
	}
	bus = hex_field(&p, 2);
	if (bus < 0 || *p++ != ':')
		goto bad;
	dev = hex_field(&p, 2);
	if (dev < 0 || dev > 0x1f || *p++ != '.')
		goto bad;
	fn = hex_field(&p, 1);
	if (fn < 0 || fn > 7 || *p != '\0')
		goto bad;
	snprintf(out, UDRV_PCI_ADDR_LEN, "%04x:%02x:%02x.%x", (unsigned)dom & 0xffff,
		 (unsigned)bus & 0xff, (unsigned)dev & 0x1f, (unsigned)fn & 7);
	return 0;
bad:
	return -EINVAL;
}

int udrv_pci_parse_addr(const char *s, char out[UDRV_PCI_ADDR_LEN])
{
	if (!s)
		return udrv_err(EINVAL, "no PCI address given; run `udrv list` to see the devices");
	if (pci_parse_addr(s, out) == 0)
		return 0;
	return udrv_err(EINVAL,
			"'%s' is not a PCI address (like 0000:01:00.0); run `udrv list` to see "
			"the devices",
			s);
}

/* A sysfs "0x1234" attribute no larger than max. */
int pci_read_hex_at(int dfd, const char *name, unsigned long max, unsigned long *out)
{
	char buf[32], *end;
	int ret;

	ret = pci_read_line_at(dfd, name, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	errno = 0;
	*out = strtoul(buf, &end, 16);
	if (errno || end == buf || *end != '\0' || *out > max)
		return -EIO;
	return 0;
}

int pci_open_dev_dir(const char *addr)
{
	char path[PATH_MAX];
	int ret;

	ret = pci_path(path, sizeof(path), "/sys/bus/pci/devices/%s", addr);
	if (ret < 0)
		return ret;
	ret = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return ret < 0 ? -errno : ret;
}

/* A required "0x1234" attribute of device addr; records the reason on failure. */
static int read_id(int dfd, const char *addr, const char *name, unsigned long max, unsigned long *v)
{
	int ret = pci_read_hex_at(dfd, name, max, v);

	if (ret < 0)
		return udrv_err(EIO, "cannot read %s of PCI device %s: %s", name, addr,
				ret == -EIO ? "unexpected value" : strerror(-ret));
	return 0;
}

int pci_read_basic(const char *addr, struct udrv_pci_info *info)
{
	unsigned long ven = 0, dev = 0, cls = 0, sv = 0, sd = 0;
	char canon[UDRV_PCI_ADDR_LEN], group[16], *end;
	int dfd, ret;

	ret = udrv_pci_parse_addr(addr, canon);
	if (ret < 0)
		return ret;
	memset(info, 0, sizeof(*info));
	memcpy(info->addr, canon, sizeof(canon));
	info->iommu_group = -1;
	dfd = pci_open_dev_dir(canon);
	if (dfd == -ENOENT)
		return udrv_err(ENOENT, "no PCI device %s; run `udrv list` to see the devices",
				canon);
	if (dfd < 0)
		return udrv_err(-dfd, "cannot read /sys/bus/pci/devices/%s: %s", canon,
				strerror(-dfd));
	ret = read_id(dfd, canon, "vendor", 0xffff, &ven);
	if (!ret)
		ret = read_id(dfd, canon, "device", 0xffff, &dev);
	if (!ret)
		ret = read_id(dfd, canon, "class", 0xffffff, &cls);
	if (ret < 0) {
		close(dfd);
		return ret;
	}
	/* Subsystem ids are informational: left 0 where absent or odd. */
	pci_read_hex_at(dfd, "subsystem_vendor", 0xffff, &sv);
	pci_read_hex_at(dfd, "subsystem_device", 0xffff, &sd);
	info->vendor = (uint16_t)ven;
	info->device = (uint16_t)dev;
	info->class_code = (uint32_t)cls;
	info->subsys_vendor = (uint16_t)(sv <= 0xffff ? sv : 0);
	info->subsys_device = (uint16_t)(sd <= 0xffff ? sd : 0);
	pci_read_link_name_at(dfd, "driver", info->driver, sizeof(info->driver));
	/* The kernel shows an unset override as "(null)". */
	pci_read_line_at(dfd, "driver_override", info->driver_override,
			 sizeof(info->driver_override));
	if (!strcmp(info->driver_override, "(null)"))
		info->driver_override[0] = '\0';
	if (pci_read_link_name_at(dfd, "iommu_group", group, sizeof(group)) == 0) {
		unsigned long v = strtoul(group, &end, 10);

		if (end != group && *end == '\0' && v <= INT_MAX)
			info->iommu_group = (int)v;
	}
	close(dfd);
	return 0;
}

/*
 * The kernel's rule for a usable group. Since Linux 5.19 it is DMA ownership: binding a driver
 * takes the group's default domain (pci_dma_configure() in drivers/pci/pci-driver.c calls
 * iommu_device_use_default_domain()) unless the driver sets driver_managed_dma, and VFIO's
 * claim (iommu_group_claim_dma_owner() in drivers/iommu/iommu.c) fails with EPERM while any
 * device holds it. driver_managed_dma is set by vfio-pci and its variant drivers, pci-stub, and
 * the PCIe port driver pcieport (commit c7d469849747, "PCI: portdrv: Set driver_managed_dma").
 * Before 5.19, vfio_dev_driver_allowed() in drivers/vfio/vfio.c allowed pci-stub and any
 * driver on a device whose header type is not normal (bridges); pcieport on a bridge is where
 * both rules agree.
 */
bool pci_driver_viable(const char *driver, uint32_t class_code)
{
	if (!driver[0] || !strcmp(driver, "pci-stub"))
		return true;
	/* vfio-pci and its variants (mlx5_vfio_pci, xe-vfio-pci, ...). */
	if (strstr(driver, "vfio"))
		return true;
	return (class_code >> 8) == 0x0604 && !strcmp(driver, "pcieport");
}

bool udrv_pci_viable_member(const struct udrv_pci_info *info)
{
	return pci_driver_viable(info->driver, info->class_code);
}

/* Whether every device in IOMMU group nr lets VFIO use it. Returns 0 or -errno. */
static int group_viable(int nr, bool *viable)
{
	char path[PATH_MAX], drv[64], canon[UDRV_PCI_ADDR_LEN];
	struct udrv_pci_info *m;
	struct dirent *de;
	DIR *d;
	int ret;

	*viable = true;
	ret = pci_path(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices", nr);
	if (ret < 0)
		return ret;
	d = opendir(path);
	if (!d)
		return -errno;
	m = malloc(sizeof(*m));
	if (!m) {
		closedir(d);
		return -ENOMEM;
	}
	while (*viable && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (pci_parse_addr(de->d_name, canon) == 0 && pci_read_basic(canon, m) == 0) {
			*viable = pci_driver_viable(m->driver, m->class_code);
			continue;
		}
		/* A non-PCI member (a platform device) is only known to be harmless unbound. */
		ret = pci_path(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices/%s/driver",
			       nr, de->d_name);
		*viable = ret == 0 && pci_read_link_name(path, drv, sizeof(drv)) == -ENOENT;
	}
	free(m);
	closedir(d);
	udrv_err_clear();
	return 0;
}

/* Everything in udrv_pci_info for a device whose basic fields are already read. */
static void fill_rest(struct udrv_pci_info *info)
{
	pci_names_fill(info);
	if (info->iommu_group >= 0 && group_viable(info->iommu_group, &info->group_viable) < 0)
		info->group_viable = false;
	pci_in_use(info->addr, info->in_use, sizeof(info->in_use));
}

int udrv_pci_get(const char *addr, struct udrv_pci_info *info)
{
	int ret = pci_read_basic(addr, info);

	if (ret < 0)
		return ret;
	fill_rest(info);
	return 0;
}

static int cmp_info(const void *a, const void *b)
{
	return strcmp(((const struct udrv_pci_info *)a)->addr,
		      ((const struct udrv_pci_info *)b)->addr);
}

/* Full info for every PCI device listed in directory rel. */
static int list_dir(const char *rel, struct udrv_pci_info **out)
{
	struct udrv_pci_info *arr = NULL, *narr;
	char path[PATH_MAX], canon[UDRV_PCI_ADDR_LEN];
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int ret;

	*out = NULL;
	ret = pci_path(path, sizeof(path), "%s", rel);
	if (ret < 0)
		return ret;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (pci_parse_addr(de->d_name, canon) < 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			narr = realloc(arr, cap * sizeof(*arr));
			if (!narr) {
				ret = -ENOMEM;
				goto fail;
			}
			arr = narr;
		}
		/* A device removed while we read it is simply not listed. */
		if (pci_read_basic(canon, &arr[n]) == 0)
			n++;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		fill_rest(&arr[i]);
	if (n > 1)
		qsort(arr, n, sizeof(*arr), cmp_info);
	udrv_err_clear();
	*out = arr;
	return (int)n;
fail:
	closedir(d);
	free(arr);
	return udrv_err(-ret, "out of memory listing PCI devices");
}

int udrv_pci_list(struct udrv_pci_info **out)
{
	int ret = list_dir("/sys/bus/pci/devices", out);

	if (ret == -ENOENT)
		return udrv_err(ENOENT, "no /sys/bus/pci: this system has no PCI bus, or sysfs is "
					"not mounted (mount -t sysfs sysfs /sys)");
	if (ret < 0 && ret != -ENOMEM)
		return udrv_err(-ret, "cannot read /sys/bus/pci/devices: %s", strerror(-ret));
	return ret;
}

int pci_err_iommu_off(const char *addr)
{
	return udrv_err(ENODEV,
			"%s has no IOMMU group because the IOMMU is off: add intel_iommu=on "
			"iommu=pt (Intel) or amd_iommu=on (AMD) to the kernel command line and "
			"reboot, or use uio_pci_generic (no DMA protection)",
			addr);
}

int udrv_pci_group_devices(const char *addr, struct udrv_pci_info **out)
{
	struct udrv_pci_info info;
	char rel[64];
	int ret;

	*out = NULL;
	ret = pci_read_basic(addr, &info);
	if (ret < 0)
		return ret;
	if (info.iommu_group < 0)
		return pci_err_iommu_off(info.addr);
	snprintf(rel, sizeof(rel), "/sys/kernel/iommu_groups/%d/devices", info.iommu_group);
	ret = list_dir(rel, out);
	if (ret < 0 && ret != -ENOMEM)
		return udrv_err(-ret, "cannot read /sys/kernel/iommu_groups/%d: %s",
				info.iommu_group, strerror(-ret));
	return ret;
}

int udrv_pci_sysfs_path(const char *addr, const char *file, char *buf, size_t len)
{
	char canon[UDRV_PCI_ADDR_LEN];
	int ret;

	ret = udrv_pci_parse_addr(addr, canon);
	if (ret < 0)
		return ret;
	ret = pci_path(buf, len, "/sys/bus/pci/devices/%s%s%s", canon, file ? "/" : "",
		       file ? file : "");
	if (ret < 0)
		return udrv_err(ENAMETOOLONG, "the sysfs path of %s does not fit in %zu bytes",
				canon, len);
	return 0;
}

int udrv_pci_vfio_group_path(const char *addr, char *buf, size_t len)
{
	struct udrv_pci_info info;
	char path[PATH_MAX], name[32];
	const char *prefix = "";
	int ret;

	ret = pci_read_basic(addr, &info);
	if (ret < 0)
		return ret == -ENOENT ? -ENODEV : ret;
	if (info.iommu_group < 0)
		return pci_err_iommu_off(info.addr);
	/*
	 * A vfio no-IOMMU group is named "vfio-noiommu" and its node is /dev/vfio/noiommu-N
	 * (drivers/vfio/group.c, vfio_noiommu_group_alloc() and vfio_group_alloc()).
	 */
	ret = pci_path(path, sizeof(path), "/sys/kernel/iommu_groups/%d/name", info.iommu_group);
	if (ret == 0 && pci_read_line_at(AT_FDCWD, path, name, sizeof(name)) == 0 &&
	    !strcmp(name, "vfio-noiommu"))
		prefix = "noiommu-";
	if (pci_path(buf, len, "/dev/vfio/%s%d", prefix, info.iommu_group) < 0)
		return udrv_err(ENAMETOOLONG, "the VFIO group path does not fit in %zu bytes", len);
	return 0;
}

int udrv_pci_uio_path(const char *addr, char *buf, size_t len)
{
	char name[NAME_MAX + 1] = "";
	struct udrv_pci_info info;
	struct dirent *de;
	int dfd, ufd;
	DIR *d = NULL;

	dfd = pci_read_basic(addr, &info);
	if (dfd < 0)
		return dfd == -ENOENT ? -ENODEV : dfd;
	dfd = pci_open_dev_dir(info.addr);
	/* uio_pci_generic registers one UIO device, shown as <dev>/uio/uioN. */
	ufd = dfd < 0 ? -1 : openat(dfd, "uio", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		close(dfd);
	if (ufd >= 0) {
		d = fdopendir(ufd);
		if (!d)
			close(ufd);
	}
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, "uio", 3) && isdigit((unsigned char)de->d_name[3])) {
			snprintf(name, sizeof(name), "%s", de->d_name);
			break;
		}
	if (d)
		closedir(d);
	if (!name[0])
		return udrv_err(ENODEV,
				"%s has no UIO device: bind it with `sudo udrv bind %s "
				"uio_pci_generic`",
				info.addr, info.addr);
	if (pci_path(buf, len, "/dev/%s", name) < 0)
		return udrv_err(ENAMETOOLONG, "the UIO device path does not fit in %zu bytes", len);
	return 0;
}
