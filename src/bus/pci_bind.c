/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Taking a PCI device from the kernel and giving it back, the way the kernel documents it
 * (Documentation/ABI/testing/sysfs-bus-pci: driver_override, drivers/.../unbind,
 * drivers_probe); refusing while the kernel is using the device (a mounted filesystem, swap,
 * a device-mapper or md stack, a network interface that is up); and saying what to do when
 * something is missing: the IOMMU, the driver module, root, access to /dev/vfio.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "pci_internal.h"

/* How long to wait for the driver link after drivers_probe (see wait_driver()). */
#define BIND_TIMEOUT_MS	  3000
#define KERNEL_TIMEOUT_MS 1000
#define POLL_MS		  10

/* Drivers that hold a device for user space (or park it) rather than use it. */
static bool user_driver(const char *drv)
{
	return strstr(drv, "vfio") || !strcmp(drv, "uio_pci_generic") || !strcmp(drv, "pci-stub");
}

/* The command a user reruns as root to repeat this call. */
static void retry_cmd(char *buf, size_t len, const char *addr, const char *driver)
{
	if (!strcmp(driver, "kernel"))
		snprintf(buf, len, "sudo udrv unbind %s", addr);
	else
		snprintf(buf, len, "sudo udrv bind %s %s", addr, driver);
}

static int write_attr(const char *addr, const char *driver, const char *rel, const char *val)
{
	char path[PATH_MAX], cmd[128];
	int ret;

	ret = pci_path(path, sizeof(path), "%s", rel);
	if (ret < 0)
		return udrv_err(ENAMETOOLONG, "the path of %s does not fit in %zu bytes", rel,
				sizeof(path));
	ret = pci_write(path, val);
	if ((ret == -EACCES || ret == -EPERM || ret == -EROFS) && geteuid() == 0)
		return udrv_err(EACCES,
				"the kernel refused the write to %s even for root (%s): sysfs is "
				"read-only here (a container?), so bind the device on the host",
				rel, strerror(-ret));
	if (ret == -EACCES || ret == -EPERM || ret == -EROFS) {
		retry_cmd(cmd, sizeof(cmd), addr, driver);
		return udrv_err(EACCES, "no permission to write %s: run as root: %s", rel, cmd);
	}
	if (ret == -ENOENT && strstr(rel, "driver_override"))
		return udrv_err(ENODEV, "this kernel has no %s (Linux 3.16 or later is needed)",
				rel);
	if (ret < 0)
		return udrv_err(-ret, "writing '%s' to %s failed: %s", val[0] == '\n' ? "" : val,
				rel, strerror(-ret));
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Poll the driver link until it names want (or, with want NULL, any driver but old), for at
 * most timeout_ms. The kernel binds inside the drivers_probe write (bus_rescan_devices_helper()
 * -> device_attach(), synchronous even for drivers that prefer asynchronous probing), but a
 * probe deferred with -EPROBE_DEFER binds later, and so does the fake kernel of the tests.
 * now receives the last driver seen ("" if unbound).
 */
static bool wait_driver(const char *addr, const char *want, const char *old, long timeout_ms,
			char *now, size_t len)
{
	char path[PATH_MAX];

	now[0] = '\0';
	if (pci_path(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", addr) < 0)
		return false;
	for (long waited = 0;; waited += POLL_MS) {
		pci_read_link_name(path, now, len);
		if (want ? !strcmp(now, want) : now[0] && strcmp(now, old) != 0)
			return true;
		if (waited >= timeout_ms)
			return false;
		sleep_ms(POLL_MS);
	}
}

/* Best effort: give addr back to whichever kernel driver wants it, with override as before. */
static void restore(const char *addr, const char *override)
{
	char path[PATH_MAX];
	char drv[64];

	if (pci_path(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", addr) == 0)
		pci_write(path, override[0] ? override : "\n");
	if (pci_path(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", addr) == 0 &&
	    pci_read_link_name(path, drv, sizeof(drv)) == -ENOENT &&
	    pci_path(path, sizeof(path), "/sys/bus/pci/drivers_probe") == 0)
		pci_write(path, addr);
}

/* The in-use walk stops this deep: USB storage behind hubs sits about 10 levels down. */
#define WALK_MAX_DEPTH 16

/* Lazily read /proc files for the in-use walk. */
struct use_ctx {
	char *buf;
	size_t len;
	char *mountinfo, *swaps;
	bool loaded;
};

static char *read_whole(const char *rel)
{
	char path[PATH_MAX], *buf = NULL, *nbuf;
	size_t cap = 0, used = 0;
	ssize_t n;
	int fd;

	if (pci_path(path, sizeof(path), "%s", rel) < 0)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	/* /proc files report size 0: read until EOF. */
	for (;;) {
		if (cap - used < 4096) {
			cap = cap ? cap * 2 : 16384;
			nbuf = realloc(buf, cap + 1);
			if (!nbuf) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nbuf;
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			buf[used] = '\0';
			break;
		}
		used += (size_t)n;
	}
	close(fd);
	return buf;
}

/* proc_pid_mountinfo(5) escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/*
 * The mount point of the first mount of block device name (majmin "259:1"), or false. Most
 * filesystems show the device number; btrfs shows an anonymous 0:N, so the mount source
 * ("/dev/nvme0n1p2", after the " - fstype " separator) is compared too.
 */
static bool find_mount(const char *mountinfo, const char *name, const char *majmin, char *mnt,
		       size_t len)
{
	const char *line = mountinfo;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);
		char tmp[2048], *f[64], *save = NULL, *src, *tok;
		bool hit;
		int nf = 0;

		/* A long line loses only its tail: options, never the first fields. */
		ll = ll < sizeof(tmp) ? ll : sizeof(tmp) - 1;
		memcpy(tmp, line, ll);
		tmp[ll] = '\0';
		line = eol ? eol + 1 : NULL;
		for (tok = strtok_r(tmp, " ", &save); tok && nf < 64;
		     tok = strtok_r(NULL, " ", &save))
			f[nf++] = tok;
		/* Fields: mount id, parent id, major:minor, root, mount point, options... */
		if (nf < 5)
			continue;
		hit = !strcmp(f[2], majmin);
		for (int i = 5; !hit && i + 2 < nf; i++) {
			if (strcmp(f[i], "-") != 0)
				continue;
			src = f[i + 2];
			unescape_octal(src);
			hit = !strncmp(src, "/dev/", 5) && !strcmp(strrchr(src, '/') + 1, name);
			break;
		}
		if (hit) {
			unescape_octal(f[4]);
			snprintf(mnt, len, "%s", f[4]);
			return true;
		}
	}
	return false;
}

/* Whether /proc/swaps names block device name (by name or by device number). */
static bool find_swap(const char *swaps, const char *name, dev_t rdev)
{
	const char *line = swaps;
	bool first = true;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);
		char file[PATH_MAX], path[PATH_MAX], *sp;
		const char *base;
		struct stat st;

		/* The first line is the column header. */
		if (!first && ll < sizeof(file)) {
			memcpy(file, line, ll);
			file[ll] = '\0';
			sp = strpbrk(file, " \t");
			if (sp)
				*sp = '\0';
			unescape_octal(file);
			base = strrchr(file, '/');
			base = base ? base + 1 : file;
			if (!strcmp(base, name))
				return true;
			if (pci_path(path, sizeof(path), "%s", file) == 0 && stat(path, &st) == 0 &&
			    S_ISBLK(st.st_mode) && st.st_rdev == rdev)
				return true;
		}
		first = false;
		line = eol ? eol + 1 : NULL;
	}
	return false;
}

static void check_block(int dfd, const char *name, struct use_ctx *c)
{
	char majmin[32], mnt[256], holder[NAME_MAX + 1], *end;
	unsigned long maj, min;
	struct dirent *de;
	int hfd;
	DIR *d;

	if (pci_read_line_at(dfd, "dev", majmin, sizeof(majmin)) < 0)
		return;
	maj = strtoul(majmin, &end, 10);
	if (end == majmin || *end != ':')
		return;
	min = strtoul(end + 1, &end, 10);
	if (*end != '\0')
		return;
	if (!c->loaded) {
		c->mountinfo = read_whole("/proc/self/mountinfo");
		c->swaps = read_whole("/proc/swaps");
		c->loaded = true;
	}
	/* Not knowing is treated as mounted: the cost of a wrong guess is someone's disk. */
	if (!c->mountinfo) {
		snprintf(c->buf, c->len, "%s may be mounted (/proc/self/mountinfo is unreadable)",
			 name);
		return;
	}
	if (find_mount(c->mountinfo, name, majmin, mnt, sizeof(mnt))) {
		snprintf(c->buf, c->len, "%s is mounted on %s", name, mnt);
		return;
	}
	if (find_swap(c->swaps, name, makedev(maj, min))) {
		snprintf(c->buf, c->len, "%s is used for swap", name);
		return;
	}
	/* A holder is a device-mapper (LVM, dm-crypt) or md device stacked on this one. */
	hfd = openat(dfd, "holders", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (hfd < 0)
		return;
	d = fdopendir(hfd);
	if (!d) {
		close(hfd);
		return;
	}
	holder[0] = '\0';
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(holder, sizeof(holder), "%s", de->d_name);
			break;
		}
	closedir(d);
	if (holder[0])
		snprintf(c->buf, c->len, "%s is used by %s (device-mapper or md)", name, holder);
}

static void check_net(int dfd, const char *name, struct use_ctx *c)
{
	unsigned long flags;

	/* IFF_UP, include/uapi/linux/if.h */
	if (pci_read_hex_at(dfd, "flags", ~0ul, &flags) == 0 && (flags & 0x1))
		snprintf(c->buf, c->len, "interface %s is up", name);
}

/*
 * With native NVMe multipath (CONFIG_NVME_MULTIPATH, on in most distributions) the disk users
 * mount is not below the controller: the controller holds a hidden path device
 * "nvme<subsys>c<ctrl>n<ns>" and the disk is "nvme<subsys>n<ns>" under
 * /sys/devices/virtual/nvme-subsystem (drivers/nvme/host/multipath.c, nvme_set_disk_name()).
 * Returns whether name is such a path device, with its disk's name in head.
 */
static bool nvme_head_name(const char *name, char *head, size_t len)
{
	unsigned long subsys, ns;
	char *end;

	if (strncmp(name, "nvme", 4) != 0 || !isdigit((unsigned char)name[4]))
		return false;
	subsys = strtoul(name + 4, &end, 10);
	if (*end != 'c' || !isdigit((unsigned char)end[1]))
		return false;
	strtoul(end + 1, &end, 10);
	if (*end != 'n' || !isdigit((unsigned char)end[1]))
		return false;
	ns = strtoul(end + 1, &end, 10);
	if (*end != '\0')
		return false;
	snprintf(head, len, "nvme%lun%lu", subsys, ns);
	return true;
}

static void walk(int dfd, const char *name, int depth, struct use_ctx *c);

/* Walk the multipath disk that path device name belongs to, if it is one. */
static void walk_nvme_head(const char *name, int depth, struct use_ctx *c)
{
	char head[64], path[PATH_MAX];
	int fd;

	if (!nvme_head_name(name, head, sizeof(head)) ||
	    pci_path(path, sizeof(path), "/sys/class/block/%s", head) < 0)
		return;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		walk(fd, head, depth + 1, c);
}

/* Depth-first over real directories only: sysfs symlinks lead back up and loop. */
static void walk(int dfd, const char *name, int depth, struct use_ctx *c)
{
	char canon[UDRV_PCI_ADDR_LEN], subsys[64];
	struct dirent *de;
	DIR *d;

	if (pci_read_link_name_at(dfd, "subsystem", subsys, sizeof(subsys)) == 0) {
		if (!strcmp(subsys, "block"))
			check_block(dfd, name, c);
		else if (!strcmp(subsys, "net"))
			check_net(dfd, name, c);
	}
	if (!c->buf[0] && depth < WALK_MAX_DEPTH)
		walk_nvme_head(name, depth, c);
	if (c->buf[0] || depth >= WALK_MAX_DEPTH) {
		close(dfd);
		return;
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	while (!c->buf[0] && (de = readdir(d))) {
		int sub;

		if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
			continue;
		/* A bridge's children are devices of their own, listed separately. */
		if (pci_parse_addr(de->d_name, canon) == 0)
			continue;
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			walk(sub, de->d_name, depth + 1, c);
	}
	closedir(d);
}

int pci_in_use(const char *addr, char *buf, size_t len)
{
	struct use_ctx c = {.buf = buf, .len = len};
	int dfd;

	buf[0] = '\0';
	dfd = pci_open_dev_dir(addr);
	if (dfd < 0)
		return dfd;
	walk(dfd, addr, 0, &c);
	free(c.mountinfo);
	free(c.swaps);
	return 0;
}

/*
 * After a vfio bind: if other devices in the group keep it from being used, record which and
 * how to fix each, without failing (the bind itself worked).
 */
static void note_group(const struct udrv_pci_info *info)
{
	struct udrv_pci_info *grp;
	char list[384] = "";
	size_t off = 0;
	int n, bad = 0;

	n = udrv_pci_group_devices(info->addr, &grp);
	if (n < 0)
		return;
	for (int i = 0; i < n && off < sizeof(list); i++) {
		if (pci_driver_viable(grp[i].driver, grp[i].class_code))
			continue;
		off += (size_t)snprintf(list + off, sizeof(list) - off,
					"%s%s (%s): run `sudo udrv bind %s`", bad++ ? "; " : "",
					grp[i].addr, grp[i].driver, grp[i].addr);
	}
	free(grp);
	if (bad)
		udrv_err(0,
			 "IOMMU group %d is not viable until its other devices are bound to "
			 "vfio-pci or unbound: %s",
			 info->iommu_group, list);
}

static int check_driver_loaded(const char *driver)
{
	char path[PATH_MAX];
	struct stat st;

	if (pci_path(path, sizeof(path), "/sys/bus/pci/drivers/%s", driver) < 0)
		return udrv_err(ENAMETOOLONG, "driver name %s is too long", driver);
	if (stat(path, &st) == 0 || errno != ENOENT)
		return 0;
	if (!strcmp(driver, "vfio-pci") || !strcmp(driver, "uio_pci_generic"))
		return udrv_err(ENODEV, "the %s driver is not loaded: run `sudo modprobe %s`",
				driver, driver);
	return udrv_err(ENODEV,
			"no PCI driver named %s is loaded: use vfio-pci, uio_pci_generic or "
			"kernel",
			driver);
}

/*
 * PCI-to-PCI (0604), CardBus (0607) and semi-transparent (0609) bridges: the classes with a
 * bridge header, which vfio-pci refuses (vfio_pci_core_register_device(): hdr_type must be
 * PCI_HEADER_TYPE_NORMAL).
 */
static bool bridge_class(uint32_t class_code)
{
	uint32_t sub = class_code >> 8;

	return sub == 0x0604 || sub == 0x0607 || sub == 0x0609;
}

static int bind_checks(const struct udrv_pci_info *info, const char *driver, unsigned flags)
{
	char why[sizeof(info->in_use)];
	int ret;

	if (!driver[0] || strchr(driver, '/') || strlen(driver) >= sizeof(info->driver))
		return udrv_err(
		    EINVAL, "'%s' is not a driver name: use vfio-pci, uio_pci_generic or kernel",
		    driver);
	if (strstr(driver, "vfio") && bridge_class(info->class_code))
		return udrv_err(EINVAL,
				"%s is a PCI bridge, which VFIO cannot assign: bind the devices "
				"behind it instead (`udrv list` shows them)",
				info->addr);
	if (strstr(driver, "vfio") && info->iommu_group < 0)
		return pci_err_iommu_off(info->addr);
	ret = check_driver_loaded(driver);
	if (ret < 0)
		return ret;
	if (!info->driver[0] || (flags & UDRV_PCI_FORCE) || !strcmp(info->driver, driver))
		return 0;
	ret = pci_in_use(info->addr, why, sizeof(why));
	if (ret == 0 && why[0])
		return udrv_err(EBUSY,
				"%s is in use (%s): stop using it first, or bind anyway with "
				"--force (UDRV_PCI_FORCE) if you know it is safe",
				info->addr, why);
	return 0;
}

/* Leave addr with no driver at all: unbind, and clear an override so nothing re-probes it. */
static int unbind_only(const struct udrv_pci_info *info, unsigned flags)
{
	char rel[96], why[sizeof(info->in_use)], now[64];
	int ret;

	if (!info->driver[0])
		return 0;
	if (!(flags & UDRV_PCI_FORCE) && pci_in_use(info->addr, why, sizeof(why)) == 0 && why[0])
		return udrv_err(EBUSY,
				"%s is in use (%s): stop using it first, or unbind anyway with "
				"--force (UDRV_PCI_FORCE) if you know it is safe",
				info->addr, why);
	snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver/unbind", info->addr);
	ret = write_attr(info->addr, "none", rel, info->addr);
	if (ret < 0)
		return ret;
	if (!wait_driver(info->addr, "", info->driver, KERNEL_TIMEOUT_MS, now, sizeof(now)))
		return udrv_err(EIO, "%s is still bound to %s after unbind (`dmesg | tail` says why)",
				info->addr, now);
	if (info->driver_override[0]) {
		snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", info->addr);
		ret = write_attr(info->addr, "none", rel, "\n");
	}
	return ret;
}

int udrv_pci_bind(const char *addr, const char *driver, unsigned flags)
{
	struct udrv_pci_info info;
	char rel[96], now[64];
	const char *want;
	bool kernel, ok;
	int ret;

	udrv_err_clear();
	if (!driver)
		driver = "vfio-pci";
	ret = pci_read_basic(addr, &info);
	if (ret < 0)
		return ret;
	if (!strcmp(driver, "none"))
		return unbind_only(&info, flags);
	kernel = !strcmp(driver, "kernel");
	if (!kernel) {
		ret = bind_checks(&info, driver, flags);
		if (ret < 0)
			return ret;
		if (!strcmp(info.driver, driver))
			goto bound;
	} else if (info.driver[0] && !user_driver(info.driver)) {
		/* Already with a kernel driver: only a stale override is left to clear. */
		if (!info.driver_override[0])
			return 0;
		snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", info.addr);
		return write_attr(info.addr, driver, rel, "\n");
	}

	/* driver_override makes the next probe pick driver; "\n" clears it. */
	snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", info.addr);
	ret = write_attr(info.addr, driver, rel, kernel ? "\n" : driver);
	if (ret < 0)
		return ret;
	if (info.driver[0]) {
		snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver/unbind", info.addr);
		ret = write_attr(info.addr, driver, rel, info.addr);
		if (ret < 0)
			goto fail;
	}
	/* A driver refusing the device fails this write; the link check below says the rest. */
	ret = write_attr(info.addr, driver, "/sys/bus/pci/drivers_probe", info.addr);
	if (ret == -EACCES)
		goto fail;

	want = kernel ? NULL : driver;
	ok = wait_driver(info.addr, want, info.driver, kernel ? KERNEL_TIMEOUT_MS : BIND_TIMEOUT_MS,
			 now, sizeof(now));
	if (kernel) {
		/* No kernel driver for this device is not an error: it stays unbound. */
		if (!ok && now[0] && user_driver(now))
			return udrv_err(
			    EIO,
			    "%s is bound to %s again: the kernel prefers it for this "
			    "device (look for vfio-pci.ids= or pci-stub.ids= on the kernel "
			    "command line and in /etc/modprobe.d)",
			    info.addr, now);
		return 0;
	}
	if (!ok) {
		restore(info.addr, info.driver_override);
		return udrv_err(
		    EIO, "the kernel did not bind %s to %s (`dmesg | tail` says why); %s%s",
		    info.addr, driver, info.driver[0] ? "it was given back to " : "it is unbound",
		    info.driver);
	}
bound:
	if (strstr(driver, "vfio") && info.iommu_group >= 0)
		note_group(&info);
	return 0;
fail:
	restore(info.addr, info.driver_override);
	return ret;
}

int udrv_pci_unbind(const char *addr, unsigned flags)
{
	return udrv_pci_bind(addr, "kernel", flags);
}

int udrv_pci_vfio_group_access(const char *addr, char *buf, size_t len)
{
	struct udrv_pci_info info;
	char path[PATH_MAX];
	const char *node;
	int ret;

	ret = pci_read_basic(addr, &info);
	if (ret < 0)
		return ret;
	ret = udrv_pci_vfio_group_path(info.addr, path, sizeof(path));
	if (ret < 0)
		return ret;
	if (!strstr(info.driver, "vfio"))
		return udrv_err(ENODEV, "%s is %s%s, not vfio-pci: run `sudo udrv bind %s`",
				info.addr, info.driver[0] ? "bound to " : "not bound to a driver",
				info.driver, info.addr);
	/* Messages name the node as on a real system, whatever the root. */
	node = strrchr(path, '/') + 1;
	if (strlen(path) >= len)
		return udrv_err(ENAMETOOLONG, "the VFIO group path does not fit in %zu bytes", len);
	/* Effective ids, as open() will use. */
	if (faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) < 0) {
		ret = errno;
		if (ret == ENOENT)
			return udrv_err(ENOENT,
					"/dev/vfio/%s is missing although %s is bound to "
					"vfio-pci: check that udev (or mdev) is running",
					node, info.addr);
		if (ret == EACCES || ret == EPERM)
			return udrv_err(EACCES,
					"no permission to open /dev/vfio/%s: run `sudo chown "
					"$USER /dev/vfio/%s` (or run as root)",
					node, node);
		return udrv_err(ret, "cannot open /dev/vfio/%s: %s", node, strerror(ret));
	}
	/* The container node is 0666 by default; a hardened system may have changed that. */
	if (pci_path(buf, len, "/dev/vfio/vfio") == 0 &&
	    faccessat(AT_FDCWD, buf, R_OK | W_OK, AT_EACCESS) < 0 && errno == EACCES)
		return udrv_err(EACCES,
				"no permission to open /dev/vfio/vfio: run `sudo chmod 0666 "
				"/dev/vfio/vfio` (or run as root)");
	strcpy(buf, path);
	return 0;
}
