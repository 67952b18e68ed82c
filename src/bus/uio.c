/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The UIO backend: a PCI device bound to uio_pci_generic, with NO IOMMU between it and memory.
 *
 * uio_pci_generic (Documentation/driver-api/uio-howto.rst, "Generic PCI UIO driver") only
 * forwards INTx: its handler masks the line with the command register's Interrupt Disable bit,
 * a read() of /dev/uioN returns a 4-byte event count, and a 4-byte write of 1 unmasks it.
 * Everything else goes through sysfs (Documentation/PCI/sysfs-pci.rst): config space through
 * `config`, BARs through `resourceN`, the expansion ROM through `rom`, reset through `reset`.
 * DMA uses physical addresses from /proc/self/pagemap, which the domain reads itself in
 * UDRV_DMA_MODE_PHYS; that file shows them only to CAP_SYS_ADMIN, so this backend is root-only.
 *
 * Region read/write: config space and I/O BARs use pread/pwrite on their sysfs files. The
 * kernel implements read/write on resourceN only for I/O resources (pci-sysfs.c,
 * pci_resource_io), so a memory BAR is mapped privately on its first read/write and accessed
 * with volatile loads and stores of the requested width.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/capability.h>

#include <udrv/pci.h>

#include "core/dma_internal.h"
#include "core/log_internal.h"
#include "device_internal.h"

/* include/linux/ioport.h: the flags column of sysfs `resource`. */
#define IORESOURCE_IO	    0x00000100ull
#define IORESOURCE_MEM	    0x00000200ull
#define IORESOURCE_DISABLED 0x10000000ull
#define IORESOURCE_UNSET    0x20000000ull

/* PCI 3.0 section 6.2.2 (Command register) and 6.2.4 (Interrupt Pin). */
#define PCI_COMMAND	  0x04
#define PCI_INTERRUPT_PIN 0x3d

#define NR_BARS (UDRV_REGION_BAR5 + 1)

struct uio_bar {
	uint64_t start; /* bus address, from sysfs `resource` */
	int fd;		/* resourceN, opened on first use; -1 before */
	void *map;	/* private mapping for region_read/write; NULL before */
	size_t map_len;
	volatile uint8_t *base; /* the BAR's first byte inside map */
};

struct uio_dev {
	char addr[UDRV_PCI_ADDR_LEN];
	int uio_fd;
	int cfg_fd;
	uint16_t saved_cmd; /* PCI command register at open, restored at close */
	bool cmd_saved;
	bool has_intx;
	bool attached; /* mapper attached to the domain */
	struct udrv_region_info regions[UDRV_REGION_MAX];
	struct uio_bar bars[NR_BARS];
	/* INTx relay from /dev/uioN to the caller's eventfd */
	bool relay_on;
	pthread_t relay;
	int stop_fd;		 /* eventfd that tells the relay thread to exit */
	int target_fd;		 /* our duplicate of the caller's eventfd (like VFIO's reference) */
	_Atomic bool relay_dead; /* the relay thread stopped on an error */
};

/* ---- DMA mapper: nothing to map, the device sees physical addresses ---- */

static int uio_dma_map(void *ctx, const struct udrv_dma_segment *seg)
{
	/* The domain has locked the pages and read their frames; 0 means pagemap hid them. */
	if (seg->iova == 0)
		return udrv_err(EPERM,
				"the physical address of DMA memory at %p is hidden: UIO "
				"needs CAP_SYS_ADMIN; run as root",
				seg->va);
	return 0;
}

static int uio_dma_unmap(void *ctx, const struct udrv_dma_segment *seg)
{
	return 0;
}

static const struct udrv_dma_mapper_ops uio_mapper_ops = {
    .kind = "uio",
    .map = uio_dma_map,
    .unmap = uio_dma_unmap,
};

/* ---- helpers ---- */

/* /proc/self/pagemap shows frame numbers only with CAP_SYS_ADMIN
 * (Documentation/admin-guide/mm/pagemap.rst); CapEff is in proc(5) /proc/pid/status. */
static bool has_cap_sys_admin(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	unsigned long long caps = 0;
	char line[256];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "CapEff: %llx", &caps) == 1;
	fclose(f);
	return found && (caps >> CAP_SYS_ADMIN & 1);
}

static int full_pio(int fd, void *buf, size_t len, uint64_t off, bool write)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write ? pwrite(fd, (char *)buf + done, len - done, (off_t)(off + done))
				  : pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int cfg_read16(struct uio_dev *ud, unsigned off, uint16_t *val)
{
	uint8_t b[2];
	int rc = full_pio(ud->cfg_fd, b, sizeof(b), off, false);

	if (rc == 0)
		*val = (uint16_t)(b[0] | b[1] << 8);
	return rc;
}

static int cfg_write16(struct uio_dev *ud, unsigned off, uint16_t val)
{
	uint8_t b[2] = {(uint8_t)val, (uint8_t)(val >> 8)};

	return full_pio(ud->cfg_fd, b, sizeof(b), off, true);
}

/* Why there is no /dev/uioN for addr. */
static int not_bound(const char *addr)
{
	struct udrv_pci_info info;
	int rc = udrv_pci_get(addr, &info);

	if (rc < 0)
		return rc;
	if (strcmp(info.driver, "uio_pci_generic") == 0)
		return udrv_err(ENODEV,
				"%s is bound to uio_pci_generic but has no /dev/uio node: "
				"check that /dev is a devtmpfs mount",
				addr);
	if (info.driver[0] == '\0')
		return udrv_err(ENODEV,
				"%s is not bound to uio_pci_generic: run `udrv bind %s "
				"uio_pci_generic`",
				addr, addr);
	return udrv_err(ENODEV,
			"%s is bound to %s, not uio_pci_generic: run `udrv bind %s "
			"uio_pci_generic`",
			addr, info.driver, addr);
}

/* An IOMMU group whose default domain translates (type "DMA" or "DMA-FQ",
 * Documentation/ABI/testing/sysfs-kernel-iommu_groups) blocks DMA to physical addresses;
 * only "identity" (iommu=pt) lets it through. */
static void warn_if_translated(const char *addr)
{
	char path[PATH_MAX], type[32] = "";
	ssize_t n;
	int fd;

	if (udrv_pci_sysfs_path(addr, "iommu_group/type", path, sizeof(path)) < 0)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, type, sizeof(type) - 1);
	close(fd);
	if (n <= 0)
		return;
	type[n] = '\0';
	type[strcspn(type, "\n")] = '\0';
	if (strcmp(type, "identity") != 0)
		udrv_warn("%s sits behind an IOMMU that translates its DMA (group type %s): DMA to "
			  "physical addresses will fault; bind it to vfio-pci (`udrv bind %s "
			  "vfio-pci`) or boot with iommu=pt",
			  addr, type, addr);
}

/*
 * BAR0-5 and the ROM from sysfs `resource`: one "0x<start> 0x<end> 0x<flags>" line per
 * resource, in that order (drivers/pci/pci-sysfs.c, resource_show).
 */
static int parse_resources(struct uio_dev *ud)
{
	char path[PATH_MAX], line[128];
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	FILE *f;
	int rc;

	rc = udrv_pci_sysfs_path(ud->addr, "resource", path, sizeof(path));
	if (rc < 0)
		return rc;
	f = fopen(path, "re");
	if (!f)
		return udrv_err(errno, "cannot read %s: %s", path, strerror(errno));
	for (unsigned i = 0; i <= UDRV_REGION_ROM; i++) {
		struct udrv_region_info *r = &ud->regions[i];
		unsigned long long start, end, flags;

		if (!fgets(line, sizeof(line), f) ||
		    sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3) {
			fclose(f);
			return udrv_err(EIO, "cannot parse line %u of %s", i + 1, path);
		}
		/* An unassigned BAR has no address yet: touching it would reach address 0. */
		if (end <= start || !(flags & (IORESOURCE_IO | IORESOURCE_MEM)) ||
		    (flags & (IORESOURCE_UNSET | IORESOURCE_DISABLED)))
			continue;
		r->size = end - start + 1;
		if (i == UDRV_REGION_ROM) {
			r->flags = UDRV_REGION_F_READ;
			continue;
		}
		ud->bars[i].start = start;
		r->flags = UDRV_REGION_F_READ | UDRV_REGION_F_WRITE;
		if (flags & IORESOURCE_IO) {
			r->flags |= UDRV_REGION_F_IO;
		} else if ((start & (page - 1)) == 0) {
			/* A sub-page BAR not at a page start would appear at an offset inside
			 * the mapping: such a BAR is reached by read/write only. */
			r->flags |= UDRV_REGION_F_MMAP;
			r->nr_areas = 1;
			r->areas[0].offset = 0;
			r->areas[0].size = r->size;
		}
	}
	fclose(f);
	return 0;
}

static int bar_fd(struct uio_dev *ud, unsigned index)
{
	char path[PATH_MAX], name[16];
	int rc;

	if (ud->bars[index].fd >= 0)
		return ud->bars[index].fd;
	snprintf(name, sizeof(name), "resource%u", index);
	rc = udrv_pci_sysfs_path(ud->addr, name, path, sizeof(path));
	if (rc < 0)
		return rc;
	ud->bars[index].fd = open(path, O_RDWR | O_CLOEXEC);
	if (ud->bars[index].fd < 0)
		return udrv_err(errno, "cannot open %s: %s", path, strerror(errno));
	return ud->bars[index].fd;
}

/* Map a memory BAR privately for region_read/write. The mapping of resourceN starts at the
 * page holding the BAR (pci-sysfs.c, pci_mmap_resource_range). */
static int bar_map(struct uio_dev *ud, unsigned index)
{
	struct uio_bar *b = &ud->bars[index];
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), in_page = b->start & (page - 1);
	size_t len = (size_t)((in_page + ud->regions[index].size + page - 1) & ~(page - 1));
	int fd = bar_fd(ud, index);
	void *p;

	if (fd < 0)
		return fd;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return udrv_err(errno, "cannot map BAR%u of %s: %s", index, ud->addr,
				strerror(errno));
	b->map = p;
	b->map_len = len;
	b->base = (volatile uint8_t *)p + in_page;
	return 0;
}

/* The widest of 8, 4, 2, 1 bytes that is aligned at off and fits in len. */
static size_t access_width(uint64_t off, size_t len, size_t max)
{
	for (size_t w = max; w > 1; w /= 2)
		if (len >= w && off % w == 0)
			return w;
	return 1;
}

/* MMIO is accessed at the width asked for: device registers react to their access size. */
static int mem_rw(struct uio_dev *ud, unsigned index, uint64_t off, void *buf, size_t len,
		  bool write)
{
	volatile uint8_t *base;
	size_t done = 0;

	if (!ud->bars[index].map) {
		int rc = bar_map(ud, index);
		if (rc < 0)
			return rc;
	}
	base = ud->bars[index].base;
	while (done < len) {
		uint64_t o = off + done;
		size_t w = access_width(o, len - done, 8);
		char *p = (char *)buf + done;
		uint64_t v64;
		uint32_t v32;
		uint16_t v16;

		switch (w) {
		case 8:
			if (write) {
				memcpy(&v64, p, 8);
				*(volatile uint64_t *)(base + o) = v64;
			} else {
				v64 = *(volatile uint64_t *)(base + o);
				memcpy(p, &v64, 8);
			}
			break;
		case 4:
			if (write) {
				memcpy(&v32, p, 4);
				*(volatile uint32_t *)(base + o) = v32;
			} else {
				v32 = *(volatile uint32_t *)(base + o);
				memcpy(p, &v32, 4);
			}
			break;
		case 2:
			if (write) {
				memcpy(&v16, p, 2);
				*(volatile uint16_t *)(base + o) = v16;
			} else {
				v16 = *(volatile uint16_t *)(base + o);
				memcpy(p, &v16, 2);
			}
			break;
		default:
			if (write)
				base[o] = (uint8_t)*p;
			else
				*p = (char)base[o];
			break;
		}
		done += w;
	}
	return (int)len;
}

/* The kernel takes 1, 2 or 4 bytes per access to an I/O resource file (pci-sysfs.c,
 * pci_resource_io), so longer accesses are split into naturally aligned pieces. */
static int io_rw(struct uio_dev *ud, unsigned index, uint64_t off, void *buf, size_t len,
		 bool write)
{
	int fd = bar_fd(ud, index);
	size_t done = 0;

	if (fd < 0)
		return fd;
	while (done < len) {
		size_t w = access_width(off + done, len - done, 4);
		int rc = full_pio(fd, (char *)buf + done, w, off + done, write);

		if (rc < 0)
			return udrv_err(
			    -rc, "cannot %s I/O BAR%u of %s at offset 0x%" PRIx64 ": %s",
			    write ? "write" : "read", index, ud->addr, off + done, strerror(-rc));
		done += w;
	}
	return (int)len;
}

/* The `rom` file returns the image only while enabled by writing "1" to it
 * (Documentation/ABI/testing/sysfs-bus-pci, /sys/bus/pci/devices/.../rom). */
static int rom_read(struct uio_dev *ud, uint64_t off, void *buf, size_t len)
{
	char path[PATH_MAX];
	int fd, rc;

	rc = udrv_pci_sysfs_path(ud->addr, "rom", path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return udrv_err(errno, "cannot open %s: %s", path, strerror(errno));
	if (write(fd, "1", 1) != 1) {
		rc = udrv_err(errno, "cannot enable the ROM of %s: %s", ud->addr, strerror(errno));
		goto out;
	}
	rc = full_pio(fd, buf, len, off, false);
	if (write(fd, "0", 1) != 1)
		udrv_debug("cannot disable the ROM of %s: %s", ud->addr, strerror(errno));
	if (rc == -EIO)
		rc = udrv_err(EIO, "the ROM image of %s ends before offset 0x%" PRIx64, ud->addr,
			      off + len);
	else if (rc < 0)
		rc = udrv_err(-rc, "cannot read the ROM of %s: %s", ud->addr, strerror(-rc));
	else
		rc = (int)len;
out:
	close(fd);
	return rc;
}

/* ---- INTx relay ---- */

/*
 * Forward each INTx from /dev/uioN to the caller's eventfd, so that drivers see UIO as they
 * see VFIO. The line stays masked (uio_pci_generic masks it in its handler) until the
 * driver calls udrv_device_irq_unmask().
 */
static void *relay_main(void *arg)
{
	struct uio_dev *ud = arg;
	struct pollfd p[2] = {
	    {.fd = ud->uio_fd, .events = POLLIN},
	    {.fd = ud->stop_fd, .events = POLLIN},
	};
	const uint64_t one = 1;
	uint32_t count;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			udrv_warn("INTx relay of %s stopped: poll: %s", ud->addr, strerror(errno));
			break;
		}
		if (p[1].revents)
			return NULL; /* asked to stop */
		if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			udrv_warn("INTx relay of %s stopped: the UIO device is gone or has no "
				  "interrupt",
				  ud->addr);
			break;
		}
		if (!(p[0].revents & POLLIN))
			continue;
		if (read(ud->uio_fd, &count, sizeof(count)) != sizeof(count)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			udrv_warn("INTx relay of %s stopped: read: %s", ud->addr, strerror(errno));
			break;
		}
		/* EAGAIN: the eventfd counter is saturated, so the caller has a wakeup pending. */
		if (write(ud->target_fd, &one, sizeof(one)) != sizeof(one) && errno != EAGAIN) {
			udrv_warn("INTx relay of %s stopped: cannot signal eventfd %d: %s",
				  ud->addr, ud->target_fd, strerror(errno));
			break;
		}
	}
	atomic_store(&ud->relay_dead, true); /* every other way out is an error */
	return NULL;
}

static void relay_stop(struct uio_dev *ud)
{
	const uint64_t one = 1;

	if (!ud->relay_on)
		return;
	if (write(ud->stop_fd, &one, sizeof(one)) != sizeof(one))
		udrv_warn("cannot stop the INTx relay of %s: %s", ud->addr, strerror(errno));
	pthread_join(ud->relay, NULL);
	close(ud->stop_fd);
	ud->stop_fd = -1;
	close(ud->target_fd);
	ud->target_fd = -1;
	ud->relay_on = false;
}

static int relay_start(struct uio_dev *ud, int target)
{
	sigset_t all, old;
	int rc;

	/* Hold our own reference to the caller's eventfd: if the caller closes it and the number
	 * is reused, the relay must not write into an unrelated file. */
	ud->target_fd = fcntl(target, F_DUPFD_CLOEXEC, 0);
	if (ud->target_fd < 0)
		return udrv_err(errno == EBADF ? EINVAL : errno, "eventfd %d is not usable: %s",
				target, strerror(errno));
	ud->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (ud->stop_fd < 0) {
		rc = udrv_err(errno, "cannot create an eventfd: %s", strerror(errno));
		close(ud->target_fd);
		ud->target_fd = -1;
		return rc;
	}
	atomic_store(&ud->relay_dead, false);
	/* The relay must not take the application's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&ud->relay, NULL, relay_main, ud);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		close(ud->stop_fd);
		ud->stop_fd = -1;
		close(ud->target_fd);
		ud->target_fd = -1;
		return udrv_err(rc, "cannot start the INTx relay thread: %s", strerror(rc));
	}
	ud->relay_on = true;
	return 0;
}

/* uio_pci_generic's irqcontrol: 1 clears the Interrupt Disable bit, 0 sets it. */
static int intx_control(struct uio_dev *ud, uint32_t on)
{
	if (write(ud->uio_fd, &on, sizeof(on)) != sizeof(on))
		return udrv_err(errno, "cannot %s INTx of %s: %s", on ? "unmask" : "mask", ud->addr,
				strerror(errno));
	return 0;
}

/* sysfs `reset` (Documentation/ABI/testing/sysfs-bus-pci) runs pci_reset_function(), which
 * saves and restores config space around the reset. */
static int sysfs_reset(struct uio_dev *ud)
{
	char path[PATH_MAX];
	int fd, rc;

	rc = udrv_pci_sysfs_path(ud->addr, "reset", path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return udrv_err(ENOTSUP, "%s offers no reset the kernel can use (no %s)",
					ud->addr, path);
		return udrv_err(errno, "cannot open %s: %s", path, strerror(errno));
	}
	rc = write(fd, "1", 1) == 1
		 ? 0
		 : udrv_err(errno, "cannot reset %s: %s", ud->addr, strerror(errno));
	close(fd);
	return rc;
}

/* ---- ops ---- */

static void uio_release(struct uio_dev *ud, struct udrv_dma_domain *dom)
{
	relay_stop(ud);
	/* Leave the device as found; this also clears Bus Master if it was clear, so DMA stops
	 * before the domain frees the memory. */
	if (ud->cmd_saved && cfg_write16(ud, PCI_COMMAND, ud->saved_cmd) < 0)
		udrv_warn("cannot restore the command register of %s", ud->addr);
	if (ud->attached)
		udrv_dma_domain_detach(dom, &uio_mapper_ops, ud);
	for (unsigned i = 0; i < NR_BARS; i++) {
		if (ud->bars[i].map)
			munmap(ud->bars[i].map, ud->bars[i].map_len);
		if (ud->bars[i].fd >= 0)
			close(ud->bars[i].fd);
	}
	if (ud->cfg_fd >= 0)
		close(ud->cfg_fd);
	if (ud->uio_fd >= 0)
		close(ud->uio_fd);
	free(ud);
}

static int uio_open(struct udrv_device *dev, const char *target)
{
	char path[PATH_MAX];
	struct uio_dev *ud;
	struct stat st;
	uint8_t pin;
	int rc;

	ud = calloc(1, sizeof(*ud));
	if (!ud)
		return udrv_err(ENOMEM, "out of memory");
	ud->uio_fd = ud->cfg_fd = ud->stop_fd = ud->target_fd = -1;
	for (unsigned i = 0; i < NR_BARS; i++)
		ud->bars[i].fd = -1;
	if (udrv_pci_parse_addr(target, ud->addr) < 0) {
		rc = udrv_err(EINVAL,
			      "\"%s\" is not a PCI address: use the form 0000:01:00.0 that "
			      "`udrv list` shows",
			      target);
		goto err;
	}
	if (!has_cap_sys_admin()) {
		rc = udrv_err(EACCES,
			      "UIO needs CAP_SYS_ADMIN to learn the physical addresses of "
			      "DMA memory (/proc/self/pagemap): run as root, or use the IOMMU "
			      "with `udrv bind %s vfio-pci`",
			      ud->addr);
		goto err;
	}
	if (udrv_pci_uio_path(ud->addr, path, sizeof(path)) < 0) {
		rc = not_bound(ud->addr);
		goto err;
	}
	ud->uio_fd = open(path, O_RDWR | O_CLOEXEC);
	if (ud->uio_fd < 0) {
		rc = errno == ENOENT ? not_bound(ud->addr)
				     : udrv_err(errno, "cannot open %s: %s", path, strerror(errno));
		goto err;
	}
	rc = udrv_pci_sysfs_path(ud->addr, "config", path, sizeof(path));
	if (rc < 0)
		goto err;
	ud->cfg_fd = open(path, O_RDWR | O_CLOEXEC);
	if (ud->cfg_fd < 0 || fstat(ud->cfg_fd, &st) < 0) {
		rc = udrv_err(errno, "cannot open %s: %s", path, strerror(errno));
		goto err;
	}
	/* sysfs sizes `config` as the device's config space: 256, or 4096 for PCIe. */
	ud->regions[UDRV_REGION_CONFIG].size = (uint64_t)st.st_size;
	ud->regions[UDRV_REGION_CONFIG].flags = UDRV_REGION_F_READ | UDRV_REGION_F_WRITE;
	rc = parse_resources(ud);
	if (rc < 0)
		goto err;
	rc = cfg_read16(ud, PCI_COMMAND, &ud->saved_cmd);
	if (rc == 0)
		rc = full_pio(ud->cfg_fd, &pin, 1, PCI_INTERRUPT_PIN, false);
	if (rc < 0) {
		rc = udrv_err(-rc, "cannot read the config space of %s: %s", ud->addr,
			      strerror(-rc));
		goto err;
	}
	ud->cmd_saved = true;
	ud->has_intx = pin != 0;
	rc = udrv_dma_domain_attach(dev->dom, UDRV_DMA_MODE_PHYS, &uio_mapper_ops, ud, NULL, 0);
	if (rc < 0)
		goto err;
	ud->attached = true;
	warn_if_translated(ud->addr);
	udrv_warn("%s is driven through UIO WITHOUT AN IOMMU: the device can read and write ANY "
		  "physical memory, so a driver bug or a faulty device can corrupt the whole "
		  "system; prefer vfio-pci with the IOMMU on (`udrv bind %s vfio-pci`)",
		  ud->addr, ud->addr);
	dev->priv = ud;
	return 0;
err:
	uio_release(ud, dev->dom);
	return rc;
}

static void uio_close(struct udrv_device *dev)
{
	struct uio_dev *ud = dev->priv;
	int rc;

	if (!ud)
		return;
	relay_stop(ud);
	/* vfio-pci resets a device when its last fd closes (vfio_pci_core_disable); UIO leaves
	 * it running, possibly still DMAing into memory the domain is about to free. */
	rc = sysfs_reset(ud);
	if (rc < 0 && rc != -ENOTSUP)
		udrv_warn("reset of %s on close failed: %s", ud->addr, udrv_errmsg());
	uio_release(ud, dev->dom);
	dev->priv = NULL;
}

static int uio_region_info(struct udrv_device *dev, unsigned index, struct udrv_region_info *info)
{
	const struct uio_dev *ud = dev->priv;

	if (index >= UDRV_REGION_MAX)
		return udrv_err(EINVAL, "no region %u (regions are 0-%d)", index,
				UDRV_REGION_MAX - 1);
	*info = ud->regions[index];
	return 0;
}

static int uio_region_map_area(struct udrv_device *dev, unsigned index, uint64_t off, size_t len,
			       void *addr)
{
	struct uio_dev *ud = dev->priv;
	int fd;

	if (index >= NR_BARS || !(ud->regions[index].flags & UDRV_REGION_F_MMAP))
		return udrv_err(EINVAL, "region %u of %s cannot be mapped", index, ud->addr);
	fd = bar_fd(ud, index);
	if (fd < 0)
		return fd;
	return udrv_device_map_fixed(dev, index, addr, len, PROT_READ | PROT_WRITE, fd, off);
}

static int region_rw(struct uio_dev *ud, unsigned index, uint64_t off, void *buf, size_t len,
		     bool write)
{
	const struct udrv_region_info *r = &ud->regions[index];
	int rc;

	if (len > INT_MAX)
		return udrv_err(EINVAL, "a region access is limited to %d bytes", INT_MAX);
	if (index == UDRV_REGION_CONFIG) {
		rc = full_pio(ud->cfg_fd, buf, len, off, write);
		if (rc < 0)
			return udrv_err(-rc, "cannot %s config space of %s at 0x%" PRIx64 ": %s",
					write ? "write" : "read", ud->addr, off, strerror(-rc));
		return (int)len;
	}
	if (index == UDRV_REGION_ROM) {
		if (write)
			return udrv_err(EINVAL, "the ROM of %s is read-only", ud->addr);
		return rom_read(ud, off, buf, len);
	}
	if (index >= NR_BARS || r->size == 0)
		return udrv_err(EINVAL, "%s has no region %u", ud->addr, index);
	if (r->flags & UDRV_REGION_F_IO)
		return io_rw(ud, index, off, buf, len, write);
	return mem_rw(ud, index, off, buf, len, write);
}

static int uio_region_read(struct udrv_device *dev, unsigned index, uint64_t off, void *buf,
			   size_t len)
{
	return region_rw(dev->priv, index, off, buf, len, false);
}

static int uio_region_write(struct udrv_device *dev, unsigned index, uint64_t off, const void *buf,
			    size_t len)
{
	return region_rw(dev->priv, index, off, (void *)buf, len, true);
}

static int uio_irq_count(struct udrv_device *dev, enum udrv_irq_type type)
{
	const struct uio_dev *ud = dev->priv;

	return type == UDRV_IRQ_INTX && ud->has_intx ? 1 : 0;
}

static int uio_irq_set(struct udrv_device *dev, enum udrv_irq_type type, unsigned start,
		       unsigned count, const int *fds)
{
	static const char *const names[UDRV_IRQ_TYPES] = {"INTx", "MSI", "MSI-X", "error (AER)",
							  "device-request"};
	struct uio_dev *ud = dev->priv;
	int rc;

	if (type != UDRV_IRQ_INTX) {
		if (count == 0)
			return 0;
		return udrv_err(ENOTSUP,
				"UIO only supports INTx interrupts, not %s: use vfio-pci "
				"(`udrv bind %s vfio-pci`)",
				(unsigned)type < UDRV_IRQ_TYPES ? names[type] : "this type",
				ud->addr);
	}
	if (count == 0 || !fds || fds[0] < 0) {
		relay_stop(ud);
		/* Masked, so that an unserviced level interrupt does not keep firing. */
		return ud->has_intx ? intx_control(ud, 0) : 0;
	}
	if (!ud->has_intx)
		return udrv_err(ENOTSUP, "%s has no INTx pin (its Interrupt Pin register is 0)",
				ud->addr);
	if (start != 0 || count != 1)
		return udrv_err(EINVAL, "INTx has one vector (0); %u-%u is out of range", start,
				start + count - 1);
	relay_stop(ud);
	rc = relay_start(ud, fds[0]);
	if (rc < 0)
		return rc;
	/* The line may have been left masked by an earlier user. */
	rc = intx_control(ud, 1);
	if (rc < 0)
		relay_stop(ud);
	return rc;
}

static int uio_irq_unmask(struct udrv_device *dev)
{
	struct uio_dev *ud = dev->priv;

	if (!ud->relay_on)
		return udrv_err(EINVAL, "INTx of %s is not enabled: enable it before unmasking it",
				ud->addr);
	if (atomic_load(&ud->relay_dead))
		return udrv_err(EIO,
				"the INTx relay of %s has stopped (see the warning logged); "
				"disable and re-enable INTx",
				ud->addr);
	return intx_control(ud, 1);
}

static int uio_reset(struct udrv_device *dev)
{
	return sysfs_reset(dev->priv);
}

const struct udrv_device_ops udrv_uio_ops = {
    .name = "uio",
    .open = uio_open,
    .close = uio_close,
    .region_info = uio_region_info,
    .region_map_area = uio_region_map_area,
    .region_read = uio_region_read,
    .region_write = uio_region_write,
    .irq_count = uio_irq_count,
    .irq_set = uio_irq_set,
    .irq_unmask = uio_irq_unmask,
    .reset = uio_reset,
};
