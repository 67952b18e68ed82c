/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A fake /sys, /proc and /dev in a temporary directory, for udrv_pci_set_root() and UDRV_ROOT,
 * and a fake kernel: a thread that watches the files a driver-binding program writes
 * (drivers/NAME/unbind and bind, drivers_probe, driver_override) with inotify and does what
 * Linux does on those writes (drivers/base/bus.c, drivers/pci/pci-driver.c):
 *   unbind          remove the device's driver link;
 *   bind            bind the device to that driver if it is unbound;
 *   driver_override remember it for the next probe (the kernel keeps it in struct device);
 *   drivers_probe   bind an unbound device to its driver_override if set (and loaded), else to
 *                   its default driver (recorded here) if that is loaded.
 * Binding to uio_pci_generic creates <dev>/uio/uioN and /dev/uioN; binding to vfio-pci creates
 * /dev/vfio/N. The layout follows sysfs: devices/ADDR holds vendor, device, subsystem_*, class,
 * driver_override, and symlinks driver -> ../../drivers/NAME, iommu_group ->
 * ../../../../kernel/iommu_groups/N; block devices and interfaces below a device have a
 * subsystem link ending in "block" or "net". Devices are directories here (sysfs uses symlinks
 * into /sys/devices; nothing in udrv depends on the difference).
 *
 * Header-only; used by tests/unit/test_pci.c and tests/integration/test_cli_pci.c. Set up the
 * tree, then fake_kernel_start(); the thread serves any process that writes the files.
 */
#ifndef UDRV_FAKE_SYSFS_H
#define UDRV_FAKE_SYSFS_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define FAKE_API	 static __attribute__((unused))
#define FAKE_MAX_DEVS	 32
#define FAKE_MAX_WATCHES 128

struct fake_dev {
	char addr[16];
	char default_driver[64]; /* what drivers_probe picks without an override ("" none) */
	char refuse[64];	 /* a driver whose probe fails on this device ("" none) */
	char override[64];	 /* driver_override as last written ("" none) */
	int group;
};

enum fake_watch_kind { FW_PROBE, FW_UNBIND, FW_BIND, FW_OVERRIDE };

struct fake_watch {
	int wd;
	enum fake_watch_kind kind;
	char name[64]; /* driver name, or device address for FW_OVERRIDE */
};

struct fake_sysfs {
	char root[PATH_MAX / 2];
	int ifd;     /* inotify */
	int stop_fd; /* eventfd: tells the thread to exit */
	bool running;
	pthread_t thread;
	pthread_mutex_t lock; /* devs and watches, between the test and the fake kernel */
	struct fake_dev devs[FAKE_MAX_DEVS];
	int ndevs;
	struct fake_watch watches[FAKE_MAX_WATCHES];
	int nwatches;
	int next_uio;
};

/* snprintf for paths that fit by construction (keeps -Wformat-truncation quiet at -O2). */
FAKE_API __attribute__((format(printf, 3, 4))) void fake_fmt(char *buf, size_t len, const char *fmt,
							     ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(buf, len, fmt, ap) >= (int)len)
		fprintf(stderr, "fake_sysfs: truncated: %s\n", buf);
	va_end(ap);
}

/* root + "/" + rel into buf (which holds PATH_MAX). */
FAKE_API void fake_path(const struct fake_sysfs *fs, char *buf, const char *rel)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", fs->root, rel) >= PATH_MAX)
		fprintf(stderr, "fake_sysfs: path too long: %s\n", rel);
}

FAKE_API int fake_mkdirs(const struct fake_sysfs *fs, const char *rel)
{
	char path[PATH_MAX];

	fake_path(fs, path, rel);
	for (char *p = path + strlen(fs->root) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Write a whole file under the root (creating it), as the kernel would present it. */
FAKE_API int fake_write(const struct fake_sysfs *fs, const char *rel, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	FILE *f;

	fake_path(fs, path, rel);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	return fclose(f) == 0 ? 0 : -errno;
}

FAKE_API int fake_read(const struct fake_sysfs *fs, const char *rel, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	fake_path(fs, path, rel);
	buf[0] = '\0';
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

FAKE_API int fake_symlink(const struct fake_sysfs *fs, const char *target, const char *rel)
{
	char path[PATH_MAX];

	fake_path(fs, path, rel);
	unlink(path);
	return symlink(target, path) < 0 ? -errno : 0;
}

FAKE_API bool fake_exists(const struct fake_sysfs *fs, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	fake_path(fs, path, rel);
	return lstat(path, &st) == 0;
}

/* The driver addr is bound to, per its driver link ("" if unbound). */
FAKE_API void fake_driver_of(const struct fake_sysfs *fs, const char *addr, char *buf, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	ssize_t n;

	fake_fmt(target, sizeof(target), "sys/bus/pci/devices/%s/driver", addr);
	fake_path(fs, path, target);
	n = readlink(path, target, sizeof(target) - 1);
	buf[0] = '\0';
	if (n <= 0)
		return;
	target[n] = '\0';
	base = strrchr(target, '/');
	if (snprintf(buf, len, "%s", base ? base + 1 : target) >= (int)len)
		buf[0] = '\0';
}

FAKE_API void fake_watch_file(struct fake_sysfs *fs, const char *rel, enum fake_watch_kind kind,
			      const char *name)
{
	char path[PATH_MAX];
	int wd;

	fake_path(fs, path, rel);
	wd = inotify_add_watch(fs->ifd, path, IN_CLOSE_WRITE);
	if (wd < 0 || fs->nwatches == FAKE_MAX_WATCHES) {
		fprintf(stderr, "fake_sysfs: cannot watch %s\n", path);
		return;
	}
	pthread_mutex_lock(&fs->lock);
	fs->watches[fs->nwatches].wd = wd;
	fs->watches[fs->nwatches].kind = kind;
	fake_fmt(fs->watches[fs->nwatches].name, sizeof(fs->watches[0].name), "%s", name);
	fs->nwatches++;
	pthread_mutex_unlock(&fs->lock);
}

/* An empty tree: no devices, no drivers, / mounted from a disk that is not PCI. */
FAKE_API int fake_sysfs_init(struct fake_sysfs *fs)
{
	static const char *const dirs[] = {
	    "sys/bus/pci/devices",
	    "sys/bus/pci/drivers",
	    "sys/kernel/iommu_groups",
	    "sys/class/block",
	    "sys/class/net",
	    "proc/self",
	    "dev/vfio",
	};

	memset(fs, 0, sizeof(*fs));
	fs->ifd = fs->stop_fd = -1;
	fake_fmt(fs->root, sizeof(fs->root), "/tmp/udrv-fake-XXXXXX");
	if (!mkdtemp(fs->root))
		return -errno;
	/* Readable by all, so that a test can drop root and see writes fail with EACCES. */
	chmod(fs->root, 0755);
	umask(022);
	pthread_mutex_init(&fs->lock, NULL);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (fake_mkdirs(fs, dirs[i]) < 0)
			return -errno;
	fs->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	fs->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (fs->ifd < 0 || fs->stop_fd < 0)
		return -errno;
	fake_write(fs, "sys/bus/pci/drivers_probe", "");
	fake_watch_file(fs, "sys/bus/pci/drivers_probe", FW_PROBE, "");
	fake_write(fs, "proc/self/mountinfo",
		   "22 1 0:21 / /proc rw,relatime - proc proc rw\n"
		   "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n");
	fake_write(fs, "proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
	return 0;
}

/* Load a driver: drivers/NAME with bind and unbind. */
FAKE_API void fake_add_driver(struct fake_sysfs *fs, const char *name)
{
	char rel[256];

	fake_fmt(rel, sizeof(rel), "sys/bus/pci/drivers/%s", name);
	fake_mkdirs(fs, rel);
	fake_fmt(rel, sizeof(rel), "sys/bus/pci/drivers/%s/new_id", name);
	fake_write(fs, rel, "");
	fake_fmt(rel, sizeof(rel), "sys/bus/pci/drivers/%s/unbind", name);
	fake_write(fs, rel, "");
	fake_watch_file(fs, rel, FW_UNBIND, name);
	fake_fmt(rel, sizeof(rel), "sys/bus/pci/drivers/%s/bind", name);
	fake_write(fs, rel, "");
	fake_watch_file(fs, rel, FW_BIND, name);
}

FAKE_API struct fake_dev *fake_find(struct fake_sysfs *fs, const char *addr)
{
	for (int i = 0; i < fs->ndevs; i++)
		if (!strcmp(fs->devs[i].addr, addr))
			return &fs->devs[i];
	return NULL;
}

/* Caller holds fs->lock. Mirrors driver_bound(): the link both ways, plus the device nodes. */
FAKE_API void fake_do_bind(struct fake_sysfs *fs, struct fake_dev *d, const char *drv)
{
	char rel[256], target[256];

	fake_fmt(rel, sizeof(rel), "sys/bus/pci/drivers/%s", drv);
	if (!fake_exists(fs, rel) || !strcmp(d->refuse, drv))
		return;
	/* Nodes first: devtmpfs has them in place before the bind is visible. */
	if (!strcmp(drv, "uio_pci_generic")) {
		fake_fmt(rel, sizeof(rel), "sys/bus/pci/devices/%s/uio/uio%d", d->addr,
			 fs->next_uio);
		fake_mkdirs(fs, rel);
		fake_fmt(rel, sizeof(rel), "dev/uio%d", fs->next_uio++);
		fake_write(fs, rel, "");
	} else if (!strcmp(drv, "vfio-pci") && d->group >= 0) {
		char path[PATH_MAX];

		fake_fmt(rel, sizeof(rel), "sys/kernel/iommu_groups/%d/name", d->group);
		fake_read(fs, rel, path, sizeof(path));
		fake_fmt(rel, sizeof(rel), "dev/vfio/%s%d",
			 strcmp(path, "vfio-noiommu") ? "" : "noiommu-", d->group);
		fake_write(fs, rel, "");
		fake_path(fs, path, rel);
		chmod(path, 0600);
	}
	fake_fmt(target, sizeof(target), "../../devices/%s", d->addr);
	fake_fmt(rel, sizeof(rel), "sys/bus/pci/drivers/%s/%s", drv, d->addr);
	fake_symlink(fs, target, rel);
	fake_fmt(target, sizeof(target), "../../drivers/%s", drv);
	fake_fmt(rel, sizeof(rel), "sys/bus/pci/devices/%s/driver", d->addr);
	fake_symlink(fs, target, rel);
}

FAKE_API int fake_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

FAKE_API void fake_rm_tree(const struct fake_sysfs *fs, const char *rel)
{
	char path[PATH_MAX];

	fake_path(fs, path, rel);
	nftw(path, fake_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Caller holds fs->lock. Mirrors __device_release_driver(). */
FAKE_API void fake_do_unbind(struct fake_sysfs *fs, struct fake_dev *d)
{
	char rel[256], drv[64];

	fake_driver_of(fs, d->addr, drv, sizeof(drv));
	if (!drv[0])
		return;
	fake_fmt(rel, sizeof(rel), "sys/bus/pci/devices/%s/driver", d->addr);
	fake_rm_tree(fs, rel);
	fake_fmt(rel, sizeof(rel), "sys/bus/pci/drivers/%s/%s", drv, d->addr);
	fake_rm_tree(fs, rel);
	fake_fmt(rel, sizeof(rel), "sys/bus/pci/devices/%s/uio", d->addr);
	fake_rm_tree(fs, rel);
}

/* Caller holds fs->lock. drivers_probe on one device (pci_bus_match() with driver_override). */
FAKE_API void fake_do_probe(struct fake_sysfs *fs, struct fake_dev *d)
{
	char drv[64];

	fake_driver_of(fs, d->addr, drv, sizeof(drv));
	if (drv[0])
		return;
	/* With an override set, no other driver may bind (pci_match_device()). */
	if (d->override[0])
		fake_do_bind(fs, d, d->override);
	else if (d->default_driver[0])
		fake_do_bind(fs, d, d->default_driver);
}

FAKE_API void fake_handle(struct fake_sysfs *fs, const struct fake_watch *w)
{
	char rel[256], val[64];
	struct fake_dev *d;

	switch (w->kind) {
	case FW_PROBE:
		fake_read(fs, "sys/bus/pci/drivers_probe", val, sizeof(val));
		break;
	case FW_UNBIND:
	case FW_BIND:
		fake_fmt(rel, sizeof(rel), "sys/bus/pci/drivers/%s/%s", w->name,
			 w->kind == FW_BIND ? "bind" : "unbind");
		fake_read(fs, rel, val, sizeof(val));
		break;
	case FW_OVERRIDE:
		fake_fmt(rel, sizeof(rel), "sys/bus/pci/devices/%s/driver_override", w->name);
		fake_read(fs, rel, val, sizeof(val));
		d = fake_find(fs, w->name);
		if (d)
			fake_fmt(d->override, sizeof(d->override), "%s",
				 strcmp(val, "(null)") ? val : "");
		return;
	}
	d = fake_find(fs, val);
	if (!d)
		return;
	if (w->kind == FW_PROBE) {
		fake_do_probe(fs, d);
	} else if (w->kind == FW_BIND) {
		fake_driver_of(fs, d->addr, val, sizeof(val));
		if (!val[0])
			fake_do_bind(fs, d, w->name);
	} else {
		fake_driver_of(fs, d->addr, val, sizeof(val));
		if (!strcmp(val, w->name))
			fake_do_unbind(fs, d);
	}
}

FAKE_API void *fake_kernel_main(void *arg)
{
	struct fake_sysfs *fs = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		struct pollfd pfd[2] = {{fs->ifd, POLLIN, 0}, {fs->stop_fd, POLLIN, 0}};
		ssize_t n;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		n = read(fs->ifd, buf, sizeof(buf));
		for (char *p = buf; n > 0 && p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			pthread_mutex_lock(&fs->lock);
			for (int i = 0; i < fs->nwatches; i++)
				if (fs->watches[i].wd == ev->wd) {
					struct fake_watch w = fs->watches[i];

					fake_handle(fs, &w);
					break;
				}
			pthread_mutex_unlock(&fs->lock);
			p += sizeof(*ev) + ev->len;
		}
	}
	return NULL;
}

/*
 * A device. default_driver: what the kernel would bind it to (NULL: none); it is bound now if
 * that driver is loaded. group < 0: no IOMMU group (IOMMU off).
 */
FAKE_API void fake_add_device(struct fake_sysfs *fs, const char *addr, unsigned vendor,
			      unsigned device, unsigned class_code, const char *default_driver,
			      int group)
{
	char rel[256], target[256];
	struct fake_dev *d;

	pthread_mutex_lock(&fs->lock);
	if (fs->ndevs == FAKE_MAX_DEVS) {
		pthread_mutex_unlock(&fs->lock);
		return;
	}
	d = &fs->devs[fs->ndevs++];
	fake_fmt(d->addr, sizeof(d->addr), "%s", addr);
	fake_fmt(d->default_driver, sizeof(d->default_driver), "%s",
		 default_driver ? default_driver : "");
	d->group = group;
	fake_fmt(rel, sizeof(rel), "sys/bus/pci/devices/%s", addr);
	fake_mkdirs(fs, rel);
#define FAKE_ATTR(name, fmt, val)                                                                  \
	do {                                                                                       \
		fake_fmt(rel, sizeof(rel), "sys/bus/pci/devices/%s/" name, addr);                  \
		fake_write(fs, rel, fmt "\n", val);                                                \
	} while (0)
	FAKE_ATTR("vendor", "0x%04x", vendor);
	FAKE_ATTR("device", "0x%04x", device);
	FAKE_ATTR("subsystem_vendor", "0x%04x", vendor);
	FAKE_ATTR("subsystem_device", "0x%04x", 0x1234u);
	FAKE_ATTR("class", "0x%06x", class_code);
	FAKE_ATTR("driver_override", "%s", "(null)");
#undef FAKE_ATTR
	fake_fmt(rel, sizeof(rel), "sys/bus/pci/devices/%s/subsystem", addr);
	fake_symlink(fs, "../../../bus/pci", rel);
	if (group >= 0) {
		fake_fmt(rel, sizeof(rel), "sys/kernel/iommu_groups/%d/devices", group);
		fake_mkdirs(fs, rel);
		fake_fmt(rel, sizeof(rel), "sys/kernel/iommu_groups/%d/devices/%s", group, addr);
		fake_fmt(target, sizeof(target), "../../../../bus/pci/devices/%s", addr);
		fake_symlink(fs, target, rel);
		fake_fmt(rel, sizeof(rel), "sys/bus/pci/devices/%s/iommu_group", addr);
		fake_fmt(target, sizeof(target), "../../../../kernel/iommu_groups/%d", group);
		fake_symlink(fs, target, rel);
	}
	if (d->default_driver[0])
		fake_do_bind(fs, d, d->default_driver);
	pthread_mutex_unlock(&fs->lock);
	fake_fmt(rel, sizeof(rel), "sys/bus/pci/devices/%s/driver_override", addr);
	fake_watch_file(fs, rel, FW_OVERRIDE, addr);
}

/* Make driver's probe fail on addr (as uio_pci_generic does on a device without INTx). */
FAKE_API void fake_refuse(struct fake_sysfs *fs, const char *addr, const char *driver)
{
	struct fake_dev *d;

	pthread_mutex_lock(&fs->lock);
	d = fake_find(fs, addr);
	if (d)
		fake_fmt(d->refuse, sizeof(d->refuse), "%s", driver);
	pthread_mutex_unlock(&fs->lock);
}

/* A block device at sys/REL with major:minor majmin ("" for a hidden disk without one). */
FAKE_API void fake_add_block_dir(struct fake_sysfs *fs, const char *rel, const char *majmin)
{
	char p[512], target[PATH_MAX];

	fake_fmt(p, sizeof(p), "sys/%s/holders", rel);
	fake_mkdirs(fs, p);
	if (majmin[0]) {
		fake_fmt(p, sizeof(p), "sys/%s/dev", rel);
		fake_write(fs, p, "%s\n", majmin);
	}
	fake_fmt(p, sizeof(p), "sys/%s/subsystem", rel);
	fake_path(fs, target, "sys/class/block");
	fake_symlink(fs, target, p);
}

/* A block device at devices/ADDR/REL ("nvme/nvme0/nvme0n1") with major:minor majmin. */
FAKE_API void fake_add_block(struct fake_sysfs *fs, const char *addr, const char *rel,
			     const char *majmin)
{
	char p[512];

	fake_fmt(p, sizeof(p), "bus/pci/devices/%s/%s", addr, rel);
	fake_add_block_dir(fs, p, majmin);
}

/*
 * A native-multipath NVMe disk: the hidden path device nvme<S>c<C>n<N> below ADDR's
 * controller nvme<C>, and the disk nvme<S>n<N> (majmin) under the virtual nvme-subsystem,
 * linked from /sys/class/block as the kernel does.
 */
FAKE_API void fake_add_nvme_mpath(struct fake_sysfs *fs, const char *addr, int s, int c, int n,
				  const char *majmin)
{
	char p[256], target[512];

	fake_fmt(p, sizeof(p), "nvme/nvme%d/nvme%dc%dn%d", c, s, c, n);
	fake_add_block(fs, addr, p, "");
	fake_fmt(p, sizeof(p), "devices/virtual/nvme-subsystem/nvme-subsys%d/nvme%dn%d", s, s, n);
	fake_add_block_dir(fs, p, majmin);
	fake_fmt(target, sizeof(target), "../../%s", p);
	fake_fmt(p, sizeof(p), "sys/class/block/nvme%dn%d", s, n);
	fake_symlink(fs, target, p);
}

/* Stack holder (a dm or md device) on the block device at devices/ADDR/REL. */
FAKE_API void fake_add_holder(struct fake_sysfs *fs, const char *addr, const char *rel,
			      const char *holder)
{
	char p[512], target[PATH_MAX];

	fake_fmt(p, sizeof(p), "sys/bus/pci/devices/%s/%s/holders/%s", addr, rel, holder);
	fake_fmt(target, sizeof(target), "../../../../../../virtual/block/%s", holder);
	fake_symlink(fs, target, p);
}

/* A network interface at devices/ADDR/REL/net/IFNAME with the given flags (IFF_UP = 1). */
FAKE_API void fake_add_net(struct fake_sysfs *fs, const char *addr, const char *rel,
			   const char *ifname, unsigned flags)
{
	char p[512], target[PATH_MAX];

	fake_fmt(p, sizeof(p), "sys/bus/pci/devices/%s/%s%snet/%s", addr, rel, rel[0] ? "/" : "",
		 ifname);
	fake_mkdirs(fs, p);
	fake_fmt(p, sizeof(p), "sys/bus/pci/devices/%s/%s%snet/%s/flags", addr, rel,
		 rel[0] ? "/" : "", ifname);
	fake_write(fs, p, "0x%x\n", flags);
	fake_fmt(p, sizeof(p), "sys/bus/pci/devices/%s/%s%snet/%s/subsystem", addr, rel,
		 rel[0] ? "/" : "", ifname);
	fake_path(fs, target, "sys/class/net");
	fake_symlink(fs, target, p);
}

FAKE_API int fake_kernel_start(struct fake_sysfs *fs)
{
	int ret = pthread_create(&fs->thread, NULL, fake_kernel_main, fs);

	fs->running = ret == 0;
	return -ret;
}

FAKE_API void fake_kernel_stop(struct fake_sysfs *fs)
{
	uint64_t one = 1;

	if (!fs->running)
		return;
	if (write(fs->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(fs->thread, NULL);
	fs->running = false;
}

/* Stop the fake kernel and delete the tree. */
FAKE_API void fake_sysfs_destroy(struct fake_sysfs *fs)
{
	fake_kernel_stop(fs);
	if (fs->ifd >= 0)
		close(fs->ifd);
	if (fs->stop_fd >= 0)
		close(fs->stop_fd);
	if (fs->root[0])
		nftw(fs->root, fake_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	pthread_mutex_destroy(&fs->lock);
}

#endif
