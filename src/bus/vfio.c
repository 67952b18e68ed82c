/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The VFIO backend: a PCI device bound to vfio-pci, its DMA confined by the IOMMU through a
 * type1v2 container.
 *
 * The flow is the one of Linux Documentation/driver-api/vfio.rst ("VFIO Usage Example"), with
 * every ioctl as include/uapi/linux/vfio.h documents it: open the container /dev/vfio/vfio,
 * open the group /dev/vfio/N, check that the group is viable, put the group in the container,
 * choose the IOMMU model, map DMA memory into the container, and ask the group for the device.
 *
 * Sharing: one container per DMA domain (found through the domain's mapper list) and one
 * group object per IOMMU group in the process (the kernel lets a group be opened only once),
 * both counted by open devices and kept in a process-wide registry under one mutex, because
 * devices of one group or one domain may be opened and closed from different threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include <linux/vfio.h>

#include <udrv/pci.h>

#include "core/dma_internal.h"
#include "core/log_internal.h"
#include "device_internal.h"

/* VFIO-PCI puts region N at offset N << 40 of the device fd (vfio_pci_core.h,
 * VFIO_PCI_INDEX_TO_OFFSET), beyond a 32-bit off_t. */
_Static_assert(sizeof(off_t) >= 8, "VFIO region offsets need a 64-bit off_t");

/* The sanity bound on an INFO reply with capabilities; real ones are a few hundred bytes. */
#define INFO_MAX (64u << 10)

/* PCI 3.0 section 6.2.5.1: bit 0 of a Base Address register is 1 for an I/O-space BAR. */
#define PCI_BASE_ADDRESS_0	  0x10
#define PCI_BASE_ADDRESS_SPACE_IO 0x1

struct vfio_container {
	int fd;
	unsigned refs; /* open devices using it, in all its groups */
	struct udrv_dma_domain *dom;
	uint64_t pgsizes; /* IOMMU page sizes; the smallest is the mapping granule */
	/* IOVAs every group in the container accepts, as the kernel last reported them */
	struct udrv_dma_range *ranges;
	unsigned nr_ranges;
};

struct vfio_group {
	int id;
	int fd;
	unsigned refs; /* open devices of this group */
	struct vfio_container *c;
	struct vfio_group *next;
};

struct vfio_region {
	uint64_t offset; /* of the region in the device fd */
	uint32_t vflags; /* VFIO_REGION_INFO_FLAG_* */
	struct udrv_region_info info;
};

struct vfio_irq {
	uint32_t vflags;  /* VFIO_IRQ_INFO_* */
	uint32_t count;	  /* vectors the device has */
	uint32_t enabled; /* vectors [0, enabled) set up in the kernel; 0: index off */
	int *fds;	  /* the caller's eventfd per vector, -1 for none */
};

struct vfio_dev {
	char addr[UDRV_PCI_ADDR_LEN];
	int fd;
	struct vfio_group *g;
	uint32_t vflags; /* VFIO_DEVICE_FLAGS_* */
	uint32_t nr_regions, nr_irqs;
	struct vfio_region regions[UDRV_REGION_MAX];
	struct vfio_irq irqs[UDRV_IRQ_TYPES];
	int irq_mode; /* which of INTx, MSI, MSI-X is on, or -1 */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vfio_group *groups; /* under registry_lock */

static const char *const irq_names[UDRV_IRQ_TYPES] = {"INTx", "MSI", "MSI-X", "error (AER)",
						      "device-request"};

/* ---- INFO ioctls and their capability chains ---- */

/*
 * Run an INFO ioctl whose reply may carry a capability chain: once with the fixed struct,
 * then again with the size the kernel asked for (vfio.h: callers passing insufficiently sized
 * buffers see argsz updated to the necessary size). *bufp is a malloc()ed buffer of `fixed`
 * bytes with the input fields set; it may be reallocated. Returns the buffer size or -errno.
 */
static ssize_t info_ioctl(int fd, unsigned long req, void **bufp, size_t fixed)
{
	uint32_t argsz;
	void *big;

	if (ioctl(fd, req, *bufp) < 0)
		return -errno;
	memcpy(&argsz, *bufp, sizeof(argsz));
	if (argsz <= fixed)
		return (ssize_t)fixed;
	if (argsz > INFO_MAX)
		return -EOVERFLOW;
	big = realloc(*bufp, argsz);
	if (!big)
		return -ENOMEM;
	memset((char *)big + fixed, 0, argsz - fixed);
	*bufp = big;
	if (ioctl(fd, req, big) < 0)
		return -errno;
	return argsz;
}

/*
 * Offset of capability id in an INFO buffer of size bytes whose chain starts at first, with
 * at least need bytes of it inside the buffer; 0 if absent. Offsets are relative to the start
 * of the buffer (vfio.h, struct vfio_info_cap_header). Older kernels may place a capability
 * at a 4-byte boundary only (vfio_info_cap_add() aligns to 8 since 2023), so callers memcpy()
 * out of the buffer.
 */
static size_t find_cap(const void *buf, size_t size, size_t fixed, uint32_t first, uint16_t id,
		       size_t need)
{
	uint32_t off = first;

	for (unsigned hops = 0; off != 0 && hops < 64; hops++) {
		struct vfio_info_cap_header h;

		if (off < fixed || off > size || size - off < sizeof(h))
			return 0;
		memcpy(&h, (const char *)buf + off, sizeof(h));
		if (h.id == id)
			return size - off >= need ? off : 0;
		off = h.next;
	}
	return 0;
}

/* ---- container ---- */

/* Refresh the IOMMU page sizes and valid IOVA ranges (vfio.h, VFIO_IOMMU_GET_INFO and
 * VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE); they narrow as groups join the container.
 * *changed tells whether the ranges differ from the previous ones. */
static int container_query(struct vfio_container *c, bool *changed)
{
	struct vfio_iommu_type1_info *info = calloc(1, sizeof(*info));
	struct vfio_iommu_type1_info_cap_iova_range cap;
	struct udrv_dma_range *ranges = NULL;
	ssize_t size;
	size_t off;
	int rc = 0;

	*changed = false;
	if (!info)
		return udrv_err(ENOMEM, "out of memory");
	info->argsz = sizeof(*info);
	size = info_ioctl(c->fd, VFIO_IOMMU_GET_INFO, (void **)&info, sizeof(*info));
	if (size < 0) {
		rc = udrv_err((int)-size,
			      "cannot read the IOMMU's properties (VFIO_IOMMU_GET_INFO): %s",
			      strerror((int)-size));
		goto out;
	}
	c->pgsizes = (info->flags & VFIO_IOMMU_INFO_PGSIZES) ? info->iova_pgsizes : 0;
	off = (info->flags & VFIO_IOMMU_INFO_CAPS)
		  ? find_cap(info, (size_t)size, sizeof(*info), info->cap_offset,
			     VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, sizeof(cap))
		  : 0;
	if (off == 0) {
		/* Kernels before 5.4 do not report ranges: the domain keeps its default ones. */
		udrv_debug("the IOMMU reports no valid IOVA ranges; using the domain's defaults");
		goto out;
	}
	memcpy(&cap, (char *)info + off, sizeof(cap));
	if (cap.nr_iovas == 0 ||
	    cap.nr_iovas > ((size_t)size - off - sizeof(cap)) / sizeof(struct vfio_iova_range)) {
		rc = udrv_err(EIO, "the kernel reported a malformed IOVA range list (%u ranges)",
			      cap.nr_iovas);
		goto out;
	}
	ranges = calloc(cap.nr_iovas, sizeof(*ranges));
	if (!ranges) {
		rc = udrv_err(ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < cap.nr_iovas; i++) {
		struct vfio_iova_range r;

		memcpy(&r, (char *)info + off + sizeof(cap) + i * sizeof(r), sizeof(r));
		ranges[i].start = r.start;
		ranges[i].end = r.end;
	}
	*changed = c->nr_ranges != cap.nr_iovas ||
		   memcmp(c->ranges, ranges, cap.nr_iovas * sizeof(*ranges)) != 0;
	free(c->ranges);
	c->ranges = ranges;
	c->nr_ranges = cap.nr_iovas;
out:
	free(info);
	return rc;
}

static void container_free(struct vfio_container *c)
{
	close(c->fd);
	free(c->ranges);
	free(c);
}

/* Open /dev/vfio/vfio, the sibling of the group node under the current root. Returns the
 * container, or NULL with *rc set. */
static struct vfio_container *container_open(const char *group_path, struct udrv_dma_domain *dom,
					     int *rc)
{
	char path[PATH_MAX];
	const char *slash = strrchr(group_path, '/');
	struct vfio_container *c;
	int fd, version;

	if (!slash || (size_t)(slash - group_path) + sizeof("/vfio") > sizeof(path)) {
		*rc = udrv_err(ENAMETOOLONG, "bad VFIO group path %s", group_path);
		return NULL;
	}
	memcpy(path, group_path, (size_t)(slash - group_path));
	memcpy(path + (slash - group_path), "/vfio", sizeof("/vfio"));

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			*rc = udrv_err(
			    ENODEV, "VFIO is not available (no %s): run `modprobe vfio-pci`", path);
		else if (errno == EACCES || errno == EPERM)
			*rc = udrv_err(EACCES,
				       "no permission to open %s: run `sudo chown $(id -un) %s`",
				       path, path);
		else
			*rc = udrv_err(errno, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	version = ioctl(fd, VFIO_GET_API_VERSION);
	if (version != VFIO_API_VERSION) {
		*rc = udrv_err(EINVAL, "%s speaks VFIO API version %d; udrv needs version %d", path,
			       version, VFIO_API_VERSION);
		goto err;
	}
	/* vfio.h: CHECK_EXTENSION returns 0 when the IOMMU model is unsupported. */
	if (ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
		*rc = udrv_err(ENODEV,
			       "the VFIO type1v2 IOMMU driver is not available: run `modprobe "
			       "vfio_iommu_type1` and boot with intel_iommu=on (or amd_iommu=on)");
		goto err;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		*rc = udrv_err(ENOMEM, "out of memory");
		goto err;
	}
	c->fd = fd;
	c->dom = dom;
	return c;
err:
	close(fd);
	return NULL;
}

/* ---- DMA mapper: the domain maps its chunks into the container through these ---- */

static int map_error(int err, const struct udrv_dma_segment *seg)
{
	struct rlimit rl;

	switch (err) {
	case ENOMEM:
	case EPERM:
		/* type1 pins the pages and charges them to RLIMIT_MEMLOCK (vfio_lock_acct). */
		if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
			return udrv_err(
			    ENOMEM,
			    "cannot pin %zu KiB of DMA memory for the IOMMU: the "
			    "locked-memory limit is %llu KiB for all memory this process "
			    "pins; raise it with `ulimit -l unlimited` or a memlock line in "
			    "/etc/security/limits.conf",
			    seg->len >> 10, (unsigned long long)rl.rlim_cur >> 10);
		return udrv_err(ENOMEM,
				"the kernel could not pin %zu KiB of DMA memory for the "
				"IOMMU: out of memory",
				seg->len >> 10);
	case ENOSPC:
		return udrv_err(ENOSPC, "the VFIO container holds as many DMA mappings as allowed: "
					"use larger DMA chunks, or raise the limit with `modprobe "
					"vfio_iommu_type1 dma_entry_limit=N`");
	case EEXIST:
		return udrv_err(EEXIST,
				"IOVA 0x%" PRIx64 " (%zu bytes) is already mapped in this "
				"VFIO container",
				seg->iova, seg->len);
	case EINVAL:
		return udrv_err(EINVAL,
				"the IOMMU refused %zu bytes at IOVA 0x%" PRIx64 ": the "
				"range is outside the IOVAs it accepts",
				seg->len, seg->iova);
	default:
		return udrv_err(err,
				"cannot map %zu bytes at IOVA 0x%" PRIx64 " into the IOMMU: %s",
				seg->len, seg->iova, strerror(err));
	}
}

static int vfio_dma_map(void *ctx, const struct udrv_dma_segment *seg)
{
	struct vfio_container *c = ctx;
	struct vfio_iommu_type1_dma_map m = {
	    .argsz = sizeof(m),
	    .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
	    .vaddr = (uintptr_t)seg->va,
	    .iova = seg->iova,
	    .size = seg->len,
	};
	uint64_t granule = c->pgsizes & -c->pgsizes;

	/* type1 rejects a vaddr, iova or size not aligned to its smallest page (EINVAL). */
	if (granule && ((m.vaddr | m.iova | m.size) & (granule - 1)))
		return udrv_err(EINVAL,
				"cannot map %zu bytes at IOVA 0x%" PRIx64 ": this IOMMU "
				"maps in units of %" PRIu64 " KiB",
				seg->len, seg->iova, granule >> 10);
	if (ioctl(c->fd, VFIO_IOMMU_MAP_DMA, &m) < 0)
		return map_error(errno, seg);
	return 0;
}

static int vfio_dma_unmap(void *ctx, const struct udrv_dma_segment *seg)
{
	struct vfio_container *c = ctx;
	struct vfio_iommu_type1_dma_unmap u = {
	    .argsz = sizeof(u),
	    .iova = seg->iova,
	    .size = seg->len,
	};
	int err;

	if (ioctl(c->fd, VFIO_IOMMU_UNMAP_DMA, &u) < 0) {
		err = errno;
		udrv_warn("cannot unmap %zu bytes at IOVA 0x%" PRIx64 " from the IOMMU: %s",
			  seg->len, seg->iova, strerror(err));
		return -err;
	}
	/* vfio.h: "The actual unmapped size is returned in the size field." */
	if (u.size != seg->len)
		udrv_warn("the IOMMU unmapped %llu of %zu bytes at IOVA 0x%" PRIx64,
			  (unsigned long long)u.size, seg->len, seg->iova);
	return 0;
}

static const struct udrv_dma_mapper_ops vfio_mapper_ops = {
    .kind = "vfio",
    .map = vfio_dma_map,
    .unmap = vfio_dma_unmap,
};

/* ---- groups ---- */

/* Why the device has no usable VFIO group node: not bound to vfio-pci, or no IOMMU. */
static int not_bound(const char *addr, const char *path)
{
	struct udrv_pci_info info;
	int rc = udrv_pci_get(addr, &info);

	if (rc < 0)
		return rc;
	if (info.iommu_group < 0)
		return udrv_err(
		    ENODEV,
		    "%s has no IOMMU group, so the IOMMU is off: boot with intel_iommu=on "
		    "(or amd_iommu=on), or drive it without an IOMMU after `udrv bind %s "
		    "uio_pci_generic`",
		    addr, addr);
	if (strcmp(info.driver, "vfio-pci") != 0) {
		if (info.driver[0] == '\0')
			return udrv_err(ENODEV,
					"%s is not bound to vfio-pci: run `udrv bind %s vfio-pci`",
					addr, addr);
		return udrv_err(ENODEV,
				"%s is bound to %s, not vfio-pci: run `udrv bind %s vfio-pci`",
				addr, info.driver, addr);
	}
	return udrv_err(ENODEV,
			"%s is bound to vfio-pci but %s does not exist: check that /dev is "
			"a devtmpfs mount (`mount -t devtmpfs devtmpfs /dev`)",
			addr, path ? path : "its VFIO group node");
}

/* vfio.rst: a group is viable only when every device in it is bound to a VFIO driver (or to
 * none, or is a bridge); name the others. */
static int not_viable(const char *addr, int id)
{
	struct udrv_pci_info *devs = NULL;
	char list[400] = "";
	size_t len = 0;
	int n = udrv_pci_group_devices(addr, &devs);

	for (int i = 0; i < n && len < sizeof(list) - 1; i++) {
		const char *drv = devs[i].driver;
		int w;

		if (strcmp(devs[i].addr, addr) == 0 || drv[0] == '\0' ||
		    strcmp(drv, "vfio-pci") == 0 || strcmp(drv, "pci-stub") == 0 ||
		    strcmp(drv, "pcieport") == 0)
			continue;
		w = snprintf(list + len, sizeof(list) - len, "%s%s (%s)", len ? ", " : "",
			     devs[i].addr, drv);
		len = w < 0 ? len : len + (size_t)w;
	}
	free(devs);
	if (len == 0)
		return udrv_err(EBUSY,
				"IOMMU group %d of %s is not viable: bind every device in it "
				"to vfio-pci (`udrv list` shows the group)",
				id, addr);
	return udrv_err(EBUSY,
			"IOMMU group %d of %s is not viable: it also holds %s; run `udrv "
			"bind ADDR vfio-pci` for each",
			id, addr, list);
}

static struct vfio_group *find_group(int id)
{
	for (struct vfio_group *g = groups; g; g = g->next)
		if (g->id == id)
			return g;
	return NULL;
}

static void group_close(struct vfio_group *g)
{
	/* vfio.h: all device fds of the group must be closed before UNSET_CONTAINER. */
	ioctl(g->fd, VFIO_GROUP_UNSET_CONTAINER);
	close(g->fd);
	free(g);
}

/* Open /dev/vfio/N, check viability and put it in container c. */
static int group_open(const char *addr, int id, const char *path, struct vfio_container *c,
		      struct vfio_group **out)
{
	struct vfio_group_status st = {.argsz = sizeof(st)};
	struct vfio_group *g;
	int fd, rc;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		switch (errno) {
		case ENOENT:
			return not_bound(addr, path);
		case EACCES:
		case EPERM:
			return udrv_err(EACCES,
					"no permission to open %s: run `sudo chown $(id -un) %s`",
					path, path);
		case EBUSY:
			return udrv_err(EBUSY,
					"IOMMU group %d of %s is already in use by another "
					"process (`fuser -v %s` shows which)",
					id, addr, path);
		default:
			return udrv_err(errno, "cannot open %s: %s", path, strerror(errno));
		}
	}
	if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st) < 0) {
		rc = udrv_err(errno, "cannot read the status of VFIO group %d: %s", id,
			      strerror(errno));
		goto err;
	}
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		rc = not_viable(addr, id);
		goto err;
	}
	if (ioctl(fd, VFIO_GROUP_SET_CONTAINER, &c->fd) < 0) {
		/* type1 refuses a group whose reserved IOVAs overlap existing mappings. */
		if (errno == EINVAL && c->refs > 0)
			rc = udrv_err(EINVAL,
				      "IOMMU group %d of %s cannot join this DMA domain: its "
				      "IOMMU reserves IOVAs the domain already uses; open %s "
				      "with a DMA domain of its own",
				      id, addr, addr);
		else
			rc = udrv_err(errno, "cannot attach VFIO group %d to its container: %s", id,
				      strerror(errno));
		goto err;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		rc = udrv_err(ENOMEM, "out of memory");
		ioctl(fd, VFIO_GROUP_UNSET_CONTAINER);
		goto err;
	}
	g->id = id;
	g->fd = fd;
	g->c = c;
	*out = g;
	return 0;
err:
	close(fd);
	return rc;
}

/*
 * Take a reference on the group of addr for a device opened on dom, creating the group, and
 * the container of dom with its IOMMU and DMA mapper, when this is the first device.
 * Called with registry_lock held.
 */
static int group_get(struct udrv_dma_domain *dom, const char *addr, int id, const char *path,
		     struct vfio_group **out)
{
	struct vfio_container *c = udrv_dma_domain_find_mapper(dom, &vfio_mapper_ops);
	struct vfio_group *g = find_group(id);
	bool new_c = false, narrowed;
	int rc;

	if (g) {
		if (g->c != c)
			return udrv_err(EBUSY,
					"IOMMU group %d of %s is already open in this process "
					"with another DMA domain: open the devices of one group "
					"with the same domain (udrv_device_opts.domain)",
					id, addr);
		g->refs++;
		c->refs++;
		*out = g;
		return 0;
	}
	if (!c) {
		c = container_open(path, dom, &rc);
		if (!c)
			return rc;
		new_c = true;
	}
	rc = group_open(addr, id, path, c, &g);
	if (rc < 0)
		goto err_c;
	/* vfio.h: SET_IOMMU needs a group in the container, and is set once per container. */
	if (new_c && ioctl(c->fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
		rc = udrv_err(errno, "cannot enable the type1v2 IOMMU for VFIO group %d: %s", id,
			      strerror(errno));
		goto err_g;
	}
	rc = container_query(c, &narrowed);
	if (rc < 0)
		goto err_g;
	if (new_c) {
		rc = udrv_dma_domain_attach(dom, UDRV_DMA_MODE_IOVA, &vfio_mapper_ops, c, c->ranges,
					    c->nr_ranges);
		if (rc < 0)
			goto err_g;
	} else if (narrowed) {
		/* The group's IOMMU accepts fewer IOVAs: later allocations must respect that. */
		rc = udrv_dma_domain_restrict(dom, c->ranges, c->nr_ranges);
		if (rc < 0)
			goto err_g;
	}
	g->refs = 1;
	c->refs++;
	g->next = groups;
	groups = g;
	*out = g;
	return 0;
err_g:
	group_close(g);
err_c:
	if (new_c)
		container_free(c);
	return rc;
}

/*
 * Drop a device's reference. The last device of the container unmaps the domain's memory
 * while a group is still attached (the IOMMU state goes away with the last group, vfio.h
 * VFIO_GROUP_UNSET_CONTAINER), and only after the device fd is closed, so the device is
 * quiesced by vfio-pci before its memory disappears. Called with registry_lock held.
 */
static void group_put(struct vfio_group *g)
{
	struct vfio_container *c = g->c;

	if (--c->refs == 0)
		udrv_dma_domain_detach(c->dom, &vfio_mapper_ops, c);
	if (--g->refs == 0) {
		struct vfio_group **pp = &groups;

		while (*pp != g)
			pp = &(*pp)->next;
		*pp = g->next;
		group_close(g);
	}
	if (c->refs == 0)
		container_free(c);
}

/* ---- device ---- */

/* Sparse-mmap areas (vfio.h, VFIO_REGION_INFO_CAP_SPARSE_MMAP): only these parts may be
 * mapped; the rest, e.g. an MSI-X table on older kernels, is reached by read/write. */
static void region_sparse(struct vfio_dev *vd, struct vfio_region *r, const void *buf, size_t size,
			  size_t off)
{
	struct vfio_region_info_cap_sparse_mmap cap;
	uint32_t n;

	memcpy(&cap, (const char *)buf + off, sizeof(cap));
	n = cap.nr_areas;
	if (n > (size - off - sizeof(cap)) / sizeof(struct vfio_region_sparse_mmap_area))
		n = 0;
	for (uint32_t i = 0; i < n && r->info.nr_areas < UDRV_REGION_MAX_AREAS; i++) {
		struct vfio_region_sparse_mmap_area a;

		memcpy(&a, (const char *)buf + off + sizeof(cap) + i * sizeof(a), sizeof(a));
		if (a.size == 0 || a.offset > r->info.size || a.size > r->info.size - a.offset)
			continue;
		r->info.areas[r->info.nr_areas].offset = a.offset;
		r->info.areas[r->info.nr_areas].size = a.size;
		r->info.nr_areas++;
	}
	if (n > UDRV_REGION_MAX_AREAS)
		udrv_debug("%s: region %u has %u mappable areas; mapping the first %d", vd->addr,
			   (unsigned)(r - vd->regions), n, UDRV_REGION_MAX_AREAS);
}

static int region_setup(struct vfio_dev *vd, unsigned index)
{
	struct vfio_region *r = &vd->regions[index];
	struct vfio_region_info *ri = calloc(1, sizeof(*ri));
	ssize_t size;
	size_t off;
	int rc = 0;

	if (!ri)
		return udrv_err(ENOMEM, "out of memory");
	ri->argsz = sizeof(*ri);
	ri->index = index;
	size = info_ioctl(vd->fd, VFIO_DEVICE_GET_REGION_INFO, (void **)&ri, sizeof(*ri));
	if (size == -EINVAL) {
		/* vfio-pci answers EINVAL for a region the device lacks, e.g. VGA (index 8) on
		 * anything that is not a VGA controller: that region is absent, not an error. */
		r->info.size = 0;
		goto out;
	}
	if (size < 0) {
		rc = udrv_err((int)-size, "cannot describe region %u of %s: %s", index, vd->addr,
			      strerror((int)-size));
		goto out;
	}
	r->offset = ri->offset;
	r->vflags = ri->flags;
	r->info.size = ri->size;
	if (ri->size == 0)
		goto out;
	if (ri->flags & VFIO_REGION_INFO_FLAG_READ)
		r->info.flags |= UDRV_REGION_F_READ;
	if (ri->flags & VFIO_REGION_INFO_FLAG_WRITE)
		r->info.flags |= UDRV_REGION_F_WRITE;
	if (!(ri->flags & VFIO_REGION_INFO_FLAG_MMAP))
		goto out;
	off = (ri->flags & VFIO_REGION_INFO_FLAG_CAPS)
		  ? find_cap(ri, (size_t)size, sizeof(*ri), ri->cap_offset,
			     VFIO_REGION_INFO_CAP_SPARSE_MMAP,
			     sizeof(struct vfio_region_info_cap_sparse_mmap))
		  : 0;
	if (off) {
		region_sparse(vd, r, ri, (size_t)size, off);
	} else {
		/* No sparse list: the whole region maps, including an MSI-X table when the
		 * kernel says VFIO_REGION_INFO_CAP_MSIX_MAPPABLE (vectors are still set up
		 * only through VFIO_DEVICE_SET_IRQS). */
		r->info.nr_areas = 1;
		r->info.areas[0].offset = 0;
		r->info.areas[0].size = ri->size;
	}
	if (r->info.nr_areas)
		r->info.flags |= UDRV_REGION_F_MMAP;
out:
	free(ri);
	return rc;
}

static int dev_pread(struct vfio_dev *vd, unsigned index, uint64_t off, void *buf, size_t len)
{
	const struct vfio_region *r = &vd->regions[index];
	size_t done = 0;

	while (done < len) {
		ssize_t n =
		    pread(vd->fd, (char *)buf + done, len - done, (off_t)(r->offset + off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* vfio-pci keeps the space bit of each BAR in its virtualised config space (vfio_bar_fixup),
 * so the BAR register tells I/O from memory. An I/O BAR is never mapped. */
static int mark_io_bars(struct vfio_dev *vd)
{
	for (unsigned i = UDRV_REGION_BAR0; i <= UDRV_REGION_BAR5; i++) {
		struct vfio_region *r = &vd->regions[i];
		uint32_t bar;
		uint8_t b[4];
		int rc;

		if (i >= vd->nr_regions || r->info.size == 0)
			continue;
		rc = dev_pread(vd, UDRV_REGION_CONFIG, PCI_BASE_ADDRESS_0 + 4 * i, b, sizeof(b));
		if (rc < 0)
			return udrv_err(-rc, "cannot read BAR%u of %s: %s", i, vd->addr,
					strerror(-rc));
		bar = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
		      (uint32_t)b[3] << 24;
		if (bar & PCI_BASE_ADDRESS_SPACE_IO) {
			r->info.flags = (r->info.flags & ~UDRV_REGION_F_MMAP) | UDRV_REGION_F_IO;
			r->info.nr_areas = 0;
		}
	}
	return 0;
}

static int irq_setup(struct vfio_dev *vd, unsigned index)
{
	struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = index};
	struct vfio_irq *q = &vd->irqs[index];

	if (ioctl(vd->fd, VFIO_DEVICE_GET_IRQ_INFO, &ii) < 0) {
		/* vfio-pci answers EINVAL for an index the device lacks (ERR without AER, see
		 * vfio_pci_get_irq_count): that interrupt type is absent, not an error. */
		if (errno == EINVAL)
			return 0;
		return udrv_err(errno, "cannot describe the %s interrupts of %s: %s",
				irq_names[index], vd->addr, strerror(errno));
	}
	if (!(ii.flags & VFIO_IRQ_INFO_EVENTFD) || ii.count == 0)
		return 0;
	q->fds = malloc(ii.count * sizeof(*q->fds));
	if (!q->fds)
		return udrv_err(ENOMEM, "out of memory");
	for (uint32_t i = 0; i < ii.count; i++)
		q->fds[i] = -1;
	q->vflags = ii.flags;
	q->count = ii.count;
	return 0;
}

/* Ask the group for the device fd and describe its regions and interrupts. */
static int device_setup(struct vfio_dev *vd)
{
	struct vfio_device_info info = {.argsz = sizeof(info)};
	int rc;

	vd->fd = ioctl(vd->g->fd, VFIO_GROUP_GET_DEVICE_FD, vd->addr);
	if (vd->fd < 0) {
		rc = errno;
		vd->fd = -1;
		return udrv_err(rc, "cannot get %s from VFIO group %d: %s", vd->addr, vd->g->id,
				strerror(rc));
	}
	if (ioctl(vd->fd, VFIO_DEVICE_GET_INFO, &info) < 0)
		return udrv_err(errno, "cannot describe %s (VFIO_DEVICE_GET_INFO): %s", vd->addr,
				strerror(errno));
	if (!(info.flags & VFIO_DEVICE_FLAGS_PCI))
		return udrv_err(ENODEV, "%s is not a vfio-pci device", vd->addr);
	if (info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX)
		return udrv_err(EIO, "%s reports %u VFIO regions, none of them config space",
				vd->addr, info.num_regions);
	vd->vflags = info.flags;
	vd->nr_regions = info.num_regions < UDRV_REGION_MAX ? info.num_regions : UDRV_REGION_MAX;
	vd->nr_irqs = info.num_irqs < UDRV_IRQ_TYPES ? info.num_irqs : UDRV_IRQ_TYPES;
	for (unsigned i = 0; i < vd->nr_regions; i++) {
		rc = region_setup(vd, i);
		if (rc < 0)
			return rc;
	}
	rc = mark_io_bars(vd);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < vd->nr_irqs; i++) {
		rc = irq_setup(vd, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void vdev_free(struct vfio_dev *vd)
{
	for (unsigned i = 0; i < UDRV_IRQ_TYPES; i++)
		free(vd->irqs[i].fds);
	free(vd);
}

static int vfio_open(struct udrv_device *dev, const char *target)
{
	char path[PATH_MAX];
	const char *base;
	struct vfio_dev *vd;
	char *end;
	long id;
	int rc;

	vd = calloc(1, sizeof(*vd));
	if (!vd)
		return udrv_err(ENOMEM, "out of memory");
	vd->fd = -1;
	vd->irq_mode = -1;
	if (udrv_pci_parse_addr(target, vd->addr) < 0) {
		rc = udrv_err(EINVAL,
			      "\"%s\" is not a PCI address: use the form 0000:01:00.0 that "
			      "`udrv list` shows",
			      target);
		goto err;
	}
	rc = udrv_pci_vfio_group_path(vd->addr, path, sizeof(path));
	if (rc < 0) {
		rc = not_bound(vd->addr, NULL);
		goto err;
	}
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strncmp(base, "noiommu-", 8) == 0) {
		rc = udrv_err(ENODEV,
			      "%s is in a VFIO no-IOMMU group, which udrv does not use: "
			      "run `udrv bind %s uio_pci_generic` instead",
			      vd->addr, vd->addr);
		goto err;
	}
	errno = 0;
	id = strtol(base, &end, 10);
	if (errno || end == base || *end != '\0' || id < 0 || id > INT_MAX) {
		rc = udrv_err(ENODEV, "unexpected VFIO group node %s for %s", path, vd->addr);
		goto err;
	}

	pthread_mutex_lock(&registry_lock);
	rc = group_get(dev->dom, vd->addr, (int)id, path, &vd->g);
	if (rc == 0) {
		rc = device_setup(vd);
		if (rc < 0) {
			if (vd->fd >= 0)
				close(vd->fd);
			group_put(vd->g);
		}
	}
	pthread_mutex_unlock(&registry_lock);
	if (rc < 0)
		goto err;
	dev->priv = vd;
	return 0;
err:
	vdev_free(vd);
	return rc;
}

static int set_irqs(struct vfio_dev *vd, uint32_t flags, unsigned index, unsigned start,
		    unsigned count, const int *fds)
{
	size_t size = sizeof(struct vfio_irq_set) + (fds ? count * sizeof(int32_t) : 0);
	struct vfio_irq_set *s = calloc(1, size);
	int rc = 0;

	if (!s)
		return -ENOMEM;
	s->argsz = (uint32_t)size;
	s->flags = flags;
	s->index = index;
	s->start = start;
	s->count = count;
	for (unsigned i = 0; fds && i < count; i++) {
		/* vfio.h: -1 de-assigns a vector or skips an unassigned one. */
		int32_t fd = fds[i] < 0 ? -1 : fds[i];

		memcpy(s->data + i * sizeof(fd), &fd, sizeof(fd));
	}
	if (ioctl(vd->fd, VFIO_DEVICE_SET_IRQS, s) < 0)
		rc = -errno;
	free(s);
	return rc;
}

static int irq_off(struct vfio_dev *vd, unsigned type)
{
	struct vfio_irq *q = &vd->irqs[type];
	int rc;

	/* The kernel answers EINVAL to disabling an index that is not on. */
	if (q->enabled == 0)
		return 0;
	/* vfio.h: "the index can be disabled as a whole with: flags = (DATA_NONE|
	 * ACTION_TRIGGER), count = 0". */
	rc = set_irqs(vd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, type, 0, 0, NULL);
	if (rc < 0)
		return udrv_err(-rc, "cannot disable the %s interrupts of %s: %s", irq_names[type],
				vd->addr, strerror(-rc));
	for (uint32_t i = 0; i < q->count; i++)
		q->fds[i] = -1;
	q->enabled = 0;
	if (vd->irq_mode == (int)type)
		vd->irq_mode = -1;
	return 0;
}

/*
 * Add vectors beyond those enabled on an index the kernel cannot resize while on
 * (VFIO_IRQ_INFO_NORESIZE: MSI, and MSI-X before Linux 6.5): turn it off and on again with
 * the old and new eventfds together.
 */
static int irq_grow(struct vfio_dev *vd, unsigned type, unsigned start, unsigned count,
		    const int *fds)
{
	struct vfio_irq *q = &vd->irqs[type];
	unsigned end = start + count, old = q->enabled;
	const uint64_t one = 1;
	int *all = malloc(end * sizeof(*all));
	int rc;

	if (!all)
		return udrv_err(ENOMEM, "out of memory");
	for (unsigned i = 0; i < end; i++)
		all[i] = i < old ? q->fds[i] : -1;
	for (unsigned i = 0; i < count; i++)
		all[start + i] = fds[i] < 0 ? -1 : fds[i];
	rc = set_irqs(vd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, type, 0, 0, NULL);
	if (rc == 0) {
		rc = set_irqs(vd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, type, 0,
			      end, all);
		if (rc < 0 && set_irqs(vd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
				       type, 0, old, q->fds) < 0) {
			for (uint32_t i = 0; i < q->count; i++)
				q->fds[i] = -1;
			q->enabled = 0;
			vd->irq_mode = -1;
		}
	}
	if (rc < 0) {
		free(all);
		return udrv_err(-rc, "cannot enable %s vectors 0-%u of %s: %s", irq_names[type],
				end - 1, vd->addr, strerror(-rc));
	}
	/* A vector that fired while the index was off is lost; a spurious wakeup is not. */
	for (unsigned i = 0; i < old; i++)
		if (all[i] >= 0 && write(all[i], &one, sizeof(one)) < 0)
			udrv_debug("cannot signal eventfd %d: %s", all[i], strerror(errno));
	memcpy(q->fds, all, end * sizeof(*all));
	free(all);
	q->enabled = end;
	vd->irq_mode = (int)type;
	return 0;
}

static int vfio_irq_set(struct udrv_device *dev, enum udrv_irq_type type, unsigned start,
			unsigned count, const int *fds)
{
	struct vfio_dev *vd = dev->priv;
	struct vfio_irq *q;
	bool exclusive = type <= UDRV_IRQ_MSIX;
	int rc;

	if ((unsigned)type >= UDRV_IRQ_TYPES)
		return udrv_err(EINVAL, "unknown interrupt type %d", (int)type);
	q = &vd->irqs[type];
	if (count == 0)
		return irq_off(vd, type);
	if (q->count == 0)
		return udrv_err(ENOTSUP, "%s has no %s interrupts", vd->addr, irq_names[type]);
	if (!fds)
		return udrv_err(EINVAL, "no eventfds given for the %s interrupts of %s",
				irq_names[type], vd->addr);
	if (start >= q->count || count > q->count - start)
		return udrv_err(EINVAL, "%s has %u %s vectors; %u-%u is out of range", vd->addr,
				q->count, irq_names[type], start, start + count - 1);
	/* vfio_pci_intrs.c: INTx, MSI and MSI-X exclude each other (EINVAL otherwise). */
	if (exclusive && vd->irq_mode >= 0 && vd->irq_mode != (int)type)
		return udrv_err(EBUSY,
				"cannot enable %s on %s while %s is on: a PCI function "
				"uses one of INTx, MSI and MSI-X at a time; disable %s first",
				irq_names[type], vd->addr, irq_names[vd->irq_mode],
				irq_names[vd->irq_mode]);
	if (q->enabled && start + count > q->enabled && (q->vflags & VFIO_IRQ_INFO_NORESIZE))
		return irq_grow(vd, type, start, count, fds);
	rc = set_irqs(vd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, type, start,
		      count, fds);
	if (rc < 0)
		return udrv_err(-rc, "cannot enable %s vectors %u-%u of %s: %s", irq_names[type],
				start, start + count - 1, vd->addr, strerror(-rc));
	for (unsigned i = 0; i < count; i++)
		q->fds[start + i] = fds[i] < 0 ? -1 : fds[i];
	/* The first enable allocates start + count vectors (vfio_msi_enable). */
	if (start + count > q->enabled)
		q->enabled = start + count;
	if (exclusive)
		vd->irq_mode = (int)type;
	return 0;
}

static int vfio_irq_count(struct udrv_device *dev, enum udrv_irq_type type)
{
	const struct vfio_dev *vd = dev->priv;

	if ((unsigned)type >= UDRV_IRQ_TYPES)
		return udrv_err(EINVAL, "unknown interrupt type %d", (int)type);
	return (int)vd->irqs[type].count;
}

static int vfio_irq_unmask(struct udrv_device *dev)
{
	struct vfio_dev *vd = dev->priv;
	int rc;

	if (vd->irq_mode != UDRV_IRQ_INTX)
		return udrv_err(EINVAL, "INTx of %s is not enabled: enable it before unmasking it",
				vd->addr);
	/* vfio.h: to unmask AUTOMASKED interrupt [0,0]: DATA_NONE|ACTION_UNMASK, count 1. */
	rc = set_irqs(vd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
		      VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL);
	if (rc < 0)
		return udrv_err(-rc, "cannot unmask INTx of %s: %s", vd->addr, strerror(-rc));
	return 0;
}

static int vfio_region_info(struct udrv_device *dev, unsigned index, struct udrv_region_info *info)
{
	const struct vfio_dev *vd = dev->priv;

	if (index >= UDRV_REGION_MAX)
		return udrv_err(EINVAL, "no region %u (regions are 0-%d)", index,
				UDRV_REGION_MAX - 1);
	if (index >= vd->nr_regions)
		memset(info, 0, sizeof(*info));
	else
		*info = vd->regions[index].info;
	return 0;
}

static int vfio_region_map_area(struct udrv_device *dev, unsigned index, uint64_t off, size_t len,
				void *addr)
{
	const struct vfio_dev *vd = dev->priv;
	const struct vfio_region *r = &vd->regions[index];
	int prot = 0, err;

	if (r->vflags & VFIO_REGION_INFO_FLAG_READ)
		prot |= PROT_READ;
	if (r->vflags & VFIO_REGION_INFO_FLAG_WRITE)
		prot |= PROT_WRITE;
	if (mmap(addr, len, prot, MAP_SHARED | MAP_FIXED, vd->fd, (off_t)(r->offset + off)) !=
	    MAP_FAILED)
		return 0;
	err = errno;
	/* A failed MAP_FIXED may have unmapped the reservation: put it back so nothing else
	 * lands in the middle of the region's address range. */
	(void)mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		   -1, 0);
	return udrv_err(err, "cannot map %zu bytes at offset 0x%" PRIx64 " of region %u of %s: %s",
			len, off, index, vd->addr, strerror(err));
}

/* pread/pwrite at the region's offset in the device fd: vfio-pci turns them into config
 * cycles, MMIO or port I/O of the natural width (vfio_pci_rdwr.c), for every region. */
static int region_rw(struct vfio_dev *vd, unsigned index, uint64_t off, void *buf, size_t len,
		     bool write)
{
	const struct vfio_region *r = &vd->regions[index];
	size_t done = 0;

	if (len > INT_MAX)
		return udrv_err(EINVAL, "a region access is limited to %d bytes", INT_MAX);
	while (done < len) {
		off_t pos = (off_t)(r->offset + off + done);
		ssize_t n = write ? pwrite(vd->fd, (char *)buf + done, len - done, pos)
				  : pread(vd->fd, (char *)buf + done, len - done, pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENODEV)
			return udrv_err(ENODEV, "%s is gone (hot-unplugged or released): close it",
					vd->addr);
		if (n < 0)
			return udrv_err(
			    errno,
			    "cannot %s %zu bytes at offset 0x%" PRIx64 " of region %u of %s: %s",
			    write ? "write" : "read", len, off, index, vd->addr, strerror(errno));
		if (n == 0)
			return udrv_err(EIO, "short %s at offset 0x%" PRIx64 " of region %u of %s",
					write ? "write" : "read", off + done, index, vd->addr);
		done += (size_t)n;
	}
	return (int)len;
}

static int vfio_region_read(struct udrv_device *dev, unsigned index, uint64_t off, void *buf,
			    size_t len)
{
	return region_rw(dev->priv, index, off, buf, len, false);
}

static int vfio_region_write(struct udrv_device *dev, unsigned index, uint64_t off, const void *buf,
			     size_t len)
{
	return region_rw(dev->priv, index, off, (void *)buf, len, true);
}

static int vfio_reset(struct udrv_device *dev)
{
	struct vfio_dev *vd = dev->priv;

	if (!(vd->vflags & VFIO_DEVICE_FLAGS_RESET))
		return udrv_err(ENOTSUP,
				"%s offers no reset VFIO can use (no function-level, "
				"power-management or exclusive bus reset)",
				vd->addr);
	if (ioctl(vd->fd, VFIO_DEVICE_RESET) < 0)
		return udrv_err(errno, "cannot reset %s: %s", vd->addr, strerror(errno));
	return 0;
}

static void vfio_close(struct udrv_device *dev)
{
	struct vfio_dev *vd = dev->priv;

	if (!vd)
		return;
	/* Errors are ignored: the device may be gone, and closing the fd tears the rest down. */
	for (unsigned i = 0; i < UDRV_IRQ_TYPES; i++)
		irq_off(vd, i);
	pthread_mutex_lock(&registry_lock);
	close(vd->fd);
	group_put(vd->g);
	pthread_mutex_unlock(&registry_lock);
	vdev_free(vd);
	dev->priv = NULL;
}

const struct udrv_device_ops udrv_vfio_ops = {
    .name = "vfio",
    .open = vfio_open,
    .close = vfio_close,
    .region_info = vfio_region_info,
    .region_map_area = vfio_region_map_area,
    .region_read = vfio_region_read,
    .region_write = vfio_region_write,
    .irq_count = vfio_irq_count,
    .irq_set = vfio_irq_set,
    .irq_unmask = vfio_irq_unmask,
    .reset = vfio_reset,
};
