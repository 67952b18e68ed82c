/*
 * The VFIO backend's address-space half: containers (one per DMA domain, type1v2 IOMMU), the
 * DMA mapper through which the domain maps its chunks, and IOMMU groups (opened once per
 * process, checked for viability, attached to the container). Linux
 * Documentation/driver-api/vfio.rst ("VFIO Usage Example") and include/uapi/linux/vfio.h.
 *
 * Containers and groups are shared between devices and counted, in a process-wide registry
 * under vfio_registry_lock, because devices of one group or one domain may be opened and
 * closed from different threads.
 */
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
#include "vfio_internal.h"

/* The sanity bound on an INFO reply with capabilities; real ones are a few hundred bytes. */
#define INFO_MAX (64u << 10)

pthread_mutex_t vfio_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vfio_group *groups; /* under vfio_registry_lock */

/* ---- INFO ioctls and their capability chains ---- */

/*
 * Run an INFO ioctl whose reply may carry a capability chain: once with the fixed struct,
 * then again with the size the kernel asked for (vfio.h: callers passing insufficiently sized
 * buffers see argsz updated to the necessary size). *bufp is a malloc()ed buffer of `fixed`
 * bytes with the input fields set; it may be reallocated. Returns the buffer size or -errno.
 */
ssize_t info_ioctl(int fd, unsigned long req, void **bufp, size_t fixed)
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
size_t find_cap(const void *buf, size_t size, size_t fixed, uint32_t first, uint16_t id,
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
	/* vfio.h: "The actual unmapped size is returned in the size field." Nothing at all
	 * after a hot-unplug is expected (the kernel dropped the group's mappings); a part is
	 * not. */
	if (u.size == 0 && seg->len)
		udrv_debug("IOVA 0x%" PRIx64 " was no longer mapped (device removed?)", seg->iova);
	else if (u.size != seg->len)
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
int not_bound(const char *addr, const char *path)
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
 * Called with vfio_registry_lock held.
 */
int group_get(struct udrv_dma_domain *dom, const char *addr, int id, const char *path,
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
 * quiesced by vfio-pci before its memory disappears. Called with vfio_registry_lock held.
 */
void group_put(struct vfio_group *g)
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
