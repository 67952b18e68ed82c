/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user client backend: a PCI device served by another process over a UNIX socket,
 * opened as "vfio-user:/path/to/socket". The protocol is QEMU docs/interop/vfio-user.rst ("the
 * spec"); section names are cited. The wire format is src/proto/vfio_user.h; every byte the
 * server sends is checked by vfio_user_client_msg.c before use, because the server is untrusted;
 * the connection (socket, receive thread, timeouts, a server that goes away) is
 * vfio_user_client_conn.c. This file maps the device model onto requests.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/dma_internal.h"
#include "core/log_internal.h"
#include "device_internal.h"
#include "vfio_user_client_internal.h"

/* PCI 3.0 section 6.2.5.1 (BAR space bit), 6.8.1.3 (MSI control), 6.8.2.3 (MSI-X control). */
#define PCI_BASE_ADDRESS_0	  0x10
#define PCI_BASE_ADDRESS_SPACE_IO 0x1
#define PCI_CAP_ID_MSI		  0x05
#define PCI_CAP_ID_MSIX		  0x11
#define PCI_MSI_FLAGS_ENABLE	  0x0001
#define PCI_MSI_FLAGS_QMASK	  0x000e
#define PCI_MSI_FLAGS_QSIZE	  0x0070
#define PCI_MSIX_FLAGS_ENABLE	  0x8000

struct vu_reg {
	struct vu_region r;
	int fd; /* the mmap fd sent with the region info, or -1 */
};

struct vu_irq {
	uint32_t vflags; /* VFIO_IRQ_INFO_* */
	uint32_t count;	 /* vectors the device has */
	int *fds;	 /* the caller's eventfd per vector as the server has it, -1 for none */
	uint32_t high;	 /* vectors [0, high) were set up since the index was last off */
};

struct vu_dev {
	struct vu_conn c;
	uint32_t dflags; /* VFIO_DEVICE_FLAGS_* */
	unsigned nr_regions, nr_irqs;
	struct vu_reg regions[UDRV_REGION_MAX];
	struct vu_irq irqs[UDRV_IRQ_TYPES];
	pthread_mutex_t irq_lock; /* irqs[], irq_mode */
	int irq_mode;		  /* which of INTx, MSI, MSI-X is on, or -1 */
	bool attached;		  /* the DMA mapper is in the domain */
};

static const char *const irq_names[UDRV_IRQ_TYPES] = {"INTx", "MSI", "MSI-X", "error (AER)",
						      "device-request"};

/* Spec, "VFIO_USER_DEVICE_GET_REGION_INFO": ask with the fixed structure, then again with the
 * size the reply asks for when capabilities do not fit ("Message sizes"). */

/*
 * A server's region fd is mapped into the driver: a file shorter than the areas would turn the
 * driver's first access beyond its end into SIGBUS. Accept only a regular file (memfd) that
 * covers every area; warn when nothing stops the server from shrinking it later (udrv's server
 * seals its BAR memfds against that; other peers may not).
 */
static bool region_fd_ok(const struct vu_dev *vd, unsigned index, const struct vu_reg *g, int fd)
{
	uint64_t need = 0;
	struct stat st;
	int seals;

	for (unsigned i = 0; i < g->r.info.nr_areas; i++) {
		uint64_t end = g->r.info.areas[i].offset + g->r.info.areas[i].size;
		if (end > need)
			need = end;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || g->r.mmap_off > UINT64_MAX - need ||
	    (uint64_t)st.st_size < g->r.mmap_off + need) {
		udrv_warn("%s: the fd for region %u does not cover its mappable areas; using "
			  "read/write for it",
			  vd->c.path, index);
		return false;
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		udrv_debug("%s: region %u's fd is not sealed against shrinking: a misbehaving "
			   "server could still make an access fault",
			   vd->c.path, index);
	return true;
}
static int region_setup(struct vu_dev *vd, unsigned index)
{
	struct vu_reg *g = &vd->regions[index];
	uint32_t asked = sizeof(struct vfio_user_region_info), need = 0;
	struct vu_msg *rep = NULL;
	int rc;

	for (int attempt = 0;; attempt++) {
		struct vfio_user_region_info q = {.argsz = asked, .index = index};
		struct iovec iov = {&q, sizeof(q)};

		rc = vu_call(&vd->c, VFIO_USER_DEVICE_GET_REGION_INFO, &iov, 1, NULL, 0, &rep);
		/* As vfio-pci, a server answers EINVAL for a region the device lacks (VGA). */
		if (rc == -EINVAL)
			return 0;
		if (rc < 0)
			return vu_with_path(&vd->c, rc);
		rc = vu_decode_region_info(vu_payload(rep), vu_plen(rep), index, asked, &g->r,
					   &need);
		if (rc < 0 || need == 0)
			break;
		vu_msg_free(rep);
		rep = NULL;
		if (attempt == 1) {
			rc = udrv_err(EPROTO,
				      "the vfio-user server asked for a larger buffer twice to "
				      "describe region %u",
				      index);
			break;
		}
		asked = need;
	}
	if (rc == 0 && rep && g->r.info.nr_areas) {
		/* "When [MMAP] is set, the reply will include a file descriptor." Any other
		 * fd that came with it is closed by vu_msg_free(). */
		if (rep->nfds >= 1 && region_fd_ok(vd, index, g, rep->fds[0])) {
			g->fd = rep->fds[0];
			rep->fds[0] = -1;
			g->r.info.flags |= UDRV_REGION_F_MMAP;
		} else if (rep->nfds >= 1) {
			g->r.info.nr_areas = 0; /* fall back to read/write; the fd is closed */
		} else {
			udrv_debug("%s: region %u is mappable but came without an fd; using "
				   "read/write",
				   vd->c.path, index);
			g->r.info.nr_areas = 0;
		}
	}
	vu_msg_free(rep);
	if (rc < 0)
		memset(&g->r, 0, sizeof(g->r));
	return rc < 0 ? vu_with_path(&vd->c, rc) : 0;
}

static int irq_setup(struct vu_dev *vd, unsigned index)
{
	struct vfio_user_irq_info q = {.argsz = sizeof(q), .index = index}, ii;
	struct iovec iov = {&q, sizeof(q)};
	struct vu_irq *irq = &vd->irqs[index];
	struct vu_msg *rep;
	int rc = vu_call(&vd->c, VFIO_USER_DEVICE_GET_IRQ_INFO, &iov, 1, NULL, 0, &rep);

	if (rc == -EINVAL)
		return 0;
	if (rc < 0)
		return vu_with_path(&vd->c, rc);
	rc = vu_decode_irq_info(vu_payload(rep), vu_plen(rep), index, &ii);
	vu_msg_free(rep);
	if (rc < 0)
		return vu_with_path(&vd->c, rc);
	if (!(ii.flags & VFIO_IRQ_INFO_EVENTFD) || ii.count == 0)
		return 0;
	irq->fds = malloc(ii.count * sizeof(*irq->fds));
	if (!irq->fds)
		return udrv_err(ENOMEM, "out of memory");
	for (uint32_t i = 0; i < ii.count; i++)
		irq->fds[i] = -1;
	irq->vflags = ii.flags;
	irq->count = ii.count;
	return 0;
}

static int region_rw(struct vu_dev *vd, unsigned index, uint64_t off, void *buf, size_t len,
		     bool write);

/* An I/O BAR (space bit set in its register) is reached by read/write only, never mapped. */
static int mark_io_bars(struct vu_dev *vd)
{
	uint32_t bars[6];
	int rc;

	if (vd->regions[UDRV_REGION_CONFIG].r.info.size < PCI_BASE_ADDRESS_0 + sizeof(bars))
		return 0;
	rc = region_rw(vd, UDRV_REGION_CONFIG, PCI_BASE_ADDRESS_0, bars, sizeof(bars), false);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < 6 && i < vd->nr_regions; i++) {
		struct udrv_region_info *ri = &vd->regions[i].r.info;

		if (ri->size && (bars[i] & PCI_BASE_ADDRESS_SPACE_IO)) {
			ri->flags = (ri->flags & ~UDRV_REGION_F_MMAP) | UDRV_REGION_F_IO;
			ri->nr_areas = 0;
		}
	}
	return 0;
}

/* Spec, "VFIO_USER_DEVICE_GET_INFO", then every region and interrupt index udrv knows. */
static int device_setup(struct vu_dev *vd)
{
	struct vfio_user_device_info q = {.argsz = sizeof(q)}, di;
	struct iovec iov = {&q, sizeof(q)};
	struct vu_msg *rep;
	int rc = vu_call(&vd->c, VFIO_USER_DEVICE_GET_INFO, &iov, 1, NULL, 0, &rep);

	if (rc < 0)
		return vu_with_path(&vd->c, rc);
	rc = vu_decode_device_info(vu_payload(rep), vu_plen(rep), &di);
	vu_msg_free(rep);
	if (rc < 0)
		return vu_with_path(&vd->c, rc);
	if (!(di.flags & VFIO_DEVICE_FLAGS_PCI))
		return udrv_err(ENODEV,
				"the device at %s is not a PCI device (flags 0x%" PRIx32
				"): udrv drives PCI devices only",
				vd->c.path, di.flags);
	if (di.num_regions <= UDRV_REGION_CONFIG)
		return udrv_err(EPROTO,
				"the vfio-user server at %s reports %" PRIu32 " regions, none of "
				"them config space",
				vd->c.path, di.num_regions);
	vd->dflags = di.flags;
	vd->nr_regions = di.num_regions < UDRV_REGION_MAX ? di.num_regions : UDRV_REGION_MAX;
	vd->nr_irqs = di.num_irqs < UDRV_IRQ_TYPES ? di.num_irqs : UDRV_IRQ_TYPES;
	for (unsigned i = 0; rc == 0 && i < vd->nr_regions; i++)
		rc = region_setup(vd, i);
	if (rc == 0)
		rc = mark_io_bars(vd);
	for (unsigned i = 0; rc == 0 && i < vd->nr_irqs; i++)
		rc = irq_setup(vd, i);
	return rc;
}

/* ---- DMA mapper: the domain's chunks become DMA_MAP windows ---- */

static int vu_dma_map(void *ctx, const struct udrv_dma_segment *seg)
{
	struct vu_dev *vd = ctx;
	struct vfio_user_dma_map m = {
	    .argsz = sizeof(m),
	    .flags = VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE,
	    .offset = seg->fd_off,
	    .addr = seg->iova,
	    .size = seg->len,
	};
	uint64_t granule = vd->c.caps.pgsizes & -vd->c.caps.pgsizes;
	/* With no fd the server reaches the memory by DMA_READ/DMA_WRITE (spec, DMA_MAP). */
	bool with_fd = seg->fd >= 0 && vd->c.caps.max_msg_fds >= 1;
	int rc;

	if ((seg->iova | seg->len | seg->fd_off) & (granule - 1))
		return udrv_err(EINVAL,
				"cannot map %zu bytes at IOVA 0x%" PRIx64 " into the vfio-user "
				"server at %s: it maps in units of %" PRIu64 " bytes",
				seg->len, seg->iova, vd->c.path, granule);
	pthread_mutex_lock(&vd->c.lock);
	if (vd->c.dma.n >= vd->c.caps.max_dma_maps)
		rc = udrv_err(ENOSPC,
			      "the vfio-user server at %s accepts at most %" PRIu32 " DMA "
			      "mappings: use fewer, larger DMA chunks",
			      vd->c.path, vd->c.caps.max_dma_maps);
	else if (vu_dma_add(&vd->c.dma, seg->iova, seg->len, seg->va) < 0)
		rc = udrv_err(ENOMEM, "out of memory");
	else
		rc = 0;
	pthread_mutex_unlock(&vd->c.lock);
	if (rc < 0)
		return rc;
	rc = vu_call_simple(&vd->c, VFIO_USER_DMA_MAP, &m, sizeof(m), &seg->fd, with_fd ? 1 : 0);
	if (rc == 0)
		return 0;
	pthread_mutex_lock(&vd->c.lock);
	vu_dma_del(&vd->c.dma, seg->iova, seg->len);
	pthread_mutex_unlock(&vd->c.lock);
	if (rc == -ENODEV)
		return rc;
	return udrv_err(-rc,
			"the vfio-user server at %s refused to map %zu bytes of DMA memory at "
			"IOVA 0x%" PRIx64 ": %s",
			vd->c.path, seg->len, seg->iova, strerror(-rc));
}

static int vu_dma_unmap(void *ctx, const struct udrv_dma_segment *seg)
{
	struct vu_dev *vd = ctx;
	struct vfio_user_dma_unmap u = {.argsz = sizeof(u), .addr = seg->iova, .size = seg->len};
	struct iovec iov = {&u, sizeof(u)};
	struct vu_msg *rep;
	int rc;

	/* Out of the table first: from now on the server's DMA_READ/WRITE there fail. */
	pthread_mutex_lock(&vd->c.lock);
	vu_dma_del(&vd->c.dma, seg->iova, seg->len);
	pthread_mutex_unlock(&vd->c.lock);
	rc = vu_call(&vd->c, VFIO_USER_DMA_UNMAP, &iov, 1, NULL, 0, &rep);
	if (rc == 0) {
		rc = vu_decode_dma_unmap(vu_payload(rep), vu_plen(rep), seg->iova, seg->len);
		vu_msg_free(rep);
	}
	if (rc < 0 && rc != -ENODEV)
		udrv_warn("the vfio-user server at %s did not unmap %zu bytes at IOVA 0x%" PRIx64
			  ": %s",
			  vd->c.path, seg->len, seg->iova, udrv_errmsg());
	return rc;
}

static const struct udrv_dma_mapper_ops vu_mapper_ops = {
    .kind = "vfio-user",
    .map = vu_dma_map,
    .unmap = vu_dma_unmap,
};

/* ---- open and close ---- */

static void vu_free(struct vu_dev *vd, bool connected)
{
	if (connected)
		vu_conn_close(&vd->c);
	for (unsigned i = 0; i < UDRV_REGION_MAX; i++)
		if (vd->regions[i].fd >= 0)
			close(vd->regions[i].fd);
	for (unsigned i = 0; i < UDRV_IRQ_TYPES; i++)
		free(vd->irqs[i].fds);
	pthread_mutex_destroy(&vd->irq_lock);
	free(vd);
}

static int vu_open(struct udrv_device *dev, const char *target)
{
	struct vu_dev *vd;
	int rc;

	if (!*target)
		return udrv_err(EINVAL, "no socket path after \"vfio-user:\": use "
					"vfio-user:/path/to/socket");
	vd = calloc(1, sizeof(*vd));
	if (!vd)
		return udrv_err(ENOMEM, "out of memory");
	vd->irq_mode = -1;
	for (unsigned i = 0; i < UDRV_REGION_MAX; i++)
		vd->regions[i].fd = -1;
	pthread_mutex_init(&vd->irq_lock, NULL);
	rc = vu_conn_open(&vd->c, target);
	if (rc < 0) {
		vu_free(vd, false);
		return rc;
	}
	rc = device_setup(vd);
	if (rc == 0) {
		rc = udrv_dma_domain_attach(dev->dom, UDRV_DMA_MODE_IOVA, &vu_mapper_ops, vd, NULL,
					    0);
		vd->attached = rc == 0;
	}
	if (rc < 0) {
		vu_free(vd, true);
		return rc;
	}
	dev->priv = vd;
	return 0;
}

/* Set or clear the enable bit of the MSI or MSI-X capability, as the kernel does when VFIO
 * enables the vectors: a device model signals only what its config space enables. */
static void msi_cap_set(struct udrv_device *dev, enum udrv_irq_type type, bool on, uint32_t n)
{
	int pos = udrv_device_find_capability(dev, type == UDRV_IRQ_MSI ? PCI_CAP_ID_MSI
									: PCI_CAP_ID_MSIX);
	uint16_t ctl, want;

	if (pos <= 0 || udrv_device_config_read16(dev, (unsigned)pos + 2, &ctl) < 0)
		return;
	if (type == UDRV_IRQ_MSIX) {
		want = on ? ctl | PCI_MSIX_FLAGS_ENABLE : ctl & ~PCI_MSIX_FLAGS_ENABLE;
	} else {
		/* Multiple Message Enable: log2 of the vectors, at most what the device can. */
		unsigned mme = 0, mmc = (ctl & PCI_MSI_FLAGS_QMASK) >> 1;

		while ((1u << mme) < n && mme < mmc)
			mme++;
		want =
		    on ? (uint16_t)((ctl & ~PCI_MSI_FLAGS_QSIZE) | mme << 4 | PCI_MSI_FLAGS_ENABLE)
		       : ctl & ~PCI_MSI_FLAGS_ENABLE;
	}
	if (want != ctl && udrv_device_config_write16(dev, (unsigned)pos + 2, want) < 0)
		udrv_debug("%s: cannot update the %s control register", dev->name, irq_names[type]);
}

/* Spec, "VFIO_USER_DEVICE_SET_IRQS": count 0 with DATA_NONE disables the whole index. Sent
 * when a vector is known to be on, or always with force (after a partial failure). */
static int irq_off(struct udrv_device *dev, struct vu_dev *vd, unsigned type, bool force)
{
	struct vu_irq *q = &vd->irqs[type];
	struct vfio_user_irq_set s = {.argsz = sizeof(s),
				      .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
				      .index = type};
	bool on = force;
	int rc;

	for (uint32_t i = 0; i < q->count; i++) {
		on |= q->fds[i] >= 0;
		q->fds[i] = -1;
	}
	q->high = 0;
	if (vd->irq_mode == (int)type)
		vd->irq_mode = -1;
	if (!on)
		return 0;
	rc = vu_call_simple(&vd->c, VFIO_USER_DEVICE_SET_IRQS, &s, sizeof(s), NULL, 0);
	if (rc == 0 && (type == UDRV_IRQ_MSI || type == UDRV_IRQ_MSIX))
		msi_cap_set(dev, type, false, 0);
	if (rc < 0 && rc != -ENODEV)
		return udrv_err(-rc, "cannot disable the %s interrupts of %s: %s", irq_names[type],
				vd->c.path, strerror(-rc));
	return rc;
}

/* Hand the server the eventfds of vectors [from, to) that have one, in runs of consecutive
 * vectors of at most max_msg_fds fds each (the server cannot take more in one message). */
static int send_runs(struct vu_dev *vd, unsigned type, const int *fds, unsigned from, unsigned to)
{
	unsigned max =
	    vd->c.caps.max_msg_fds < VU_OUR_MAX_FDS ? vd->c.caps.max_msg_fds : VU_OUR_MAX_FDS;

	for (unsigned i = from, n; i < to; i += n) {
		struct vfio_user_irq_set s = {
		    .argsz = sizeof(s),
		    .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
		    .index = type,
		    .start = i,
		};
		int rc;

		n = 1;
		if (fds[i] < 0)
			continue;
		while (i + n < to && fds[i + n] >= 0 && n < max)
			n++;
		s.count = n;
		rc = vu_call_simple(&vd->c, VFIO_USER_DEVICE_SET_IRQS, &s, sizeof(s), fds + i, n);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int irq_set_locked(struct udrv_device *dev, struct vu_dev *vd, unsigned type, unsigned start,
			  unsigned count, const int *fds)
{
	struct vu_irq *q = &vd->irqs[type];
	bool rebuild = false, any = false;
	unsigned end = start + count;
	int *next, rc;

	if (q->count == 0)
		return udrv_err(ENOTSUP, "%s has no %s interrupts", vd->c.path, irq_names[type]);
	if (vd->c.caps.max_msg_fds == 0)
		return udrv_err(ENOTSUP,
				"the vfio-user server at %s accepts no file descriptors, so it "
				"cannot signal interrupts",
				vd->c.path);
	if (!fds || start >= q->count || count > q->count - start)
		return udrv_err(EINVAL, "%s has %u %s vectors; %u-%u is out of range", vd->c.path,
				q->count, irq_names[type], start, end - 1);
	if (type <= UDRV_IRQ_MSIX && vd->irq_mode >= 0 && vd->irq_mode != (int)type)
		return udrv_err(EBUSY,
				"cannot enable %s on %s while %s is on: a PCI function uses one "
				"of INTx, MSI and MSI-X at a time; disable %s first",
				irq_names[type], vd->c.path, irq_names[vd->irq_mode],
				irq_names[vd->irq_mode]);
	/* next[0, count): the eventfds wanted; next[count, 2 count): those set up now. */
	next = malloc(2 * (size_t)q->count * sizeof(*next));
	if (!next)
		return udrv_err(ENOMEM, "out of memory");
	memcpy(next, q->fds, q->count * sizeof(*next));
	memcpy(next + q->count, q->fds, q->count * sizeof(*next));
	for (unsigned i = start; i < end; i++) {
		/* A vector losing its eventfd, or (NORESIZE) the set growing, needs the index
		 * off and on again: libvfio-user refuses DATA_EVENTFD without fds. */
		int fd = fds[i - start]; /* device.h: fds[k] is for vector start + k */
		rebuild |= q->fds[i] >= 0 && fd < 0;
		next[i] = fd < 0 ? -1 : fd;
	}
	rebuild |= (q->vflags & VFIO_IRQ_INFO_NORESIZE) && q->high && end > q->high;
	rc = rebuild ? irq_off(dev, vd, type, false) : 0;
	if (rc == 0)
		rc = send_runs(vd, type, next, rebuild ? 0 : start, rebuild ? q->count : end);
	if (rc < 0) {
		/* Some runs may be on at the server: leave the index in a known state, off. */
		irq_off(dev, vd, type, true);
		free(next);
		if (rc == -ENODEV)
			return rc;
		return udrv_err(-rc, "cannot enable %s vectors %u-%u of %s: %s", irq_names[type],
				start, end - 1, vd->c.path, strerror(-rc));
	}
	for (uint32_t i = 0; i < q->count; i++) {
		/* A vector that fired while the index was off is lost; a spurious wakeup is
		 * not. */
		if (rebuild && next[i] >= 0 && next[q->count + i] >= 0 &&
		    write(next[i], &(uint64_t){1}, sizeof(uint64_t)) < 0)
			udrv_debug("cannot signal eventfd %d: %s", next[i], strerror(errno));
		q->fds[i] = next[i];
		if (next[i] >= 0) {
			any = true;
			q->high = i + 1 > q->high ? i + 1 : q->high;
		}
	}
	free(next);
	if (type <= UDRV_IRQ_MSIX)
		vd->irq_mode = any ? (int)type : -1;
	if (any && (type == UDRV_IRQ_MSI || type == UDRV_IRQ_MSIX))
		msi_cap_set(dev, type, true, q->high);
	return 0;
}

static int vu_irq_set(struct udrv_device *dev, enum udrv_irq_type type, unsigned start,
		      unsigned count, const int *fds)
{
	struct vu_dev *vd = dev->priv;
	int rc;

	if ((unsigned)type >= UDRV_IRQ_TYPES)
		return udrv_err(EINVAL, "unknown interrupt type %d", (int)type);
	pthread_mutex_lock(&vd->irq_lock);
	if (count == 0)
		rc = irq_off(dev, vd, type, false);
	else
		rc = irq_set_locked(dev, vd, type, start, count, fds);
	pthread_mutex_unlock(&vd->irq_lock);
	return rc;
}

static int vu_irq_count(struct udrv_device *dev, enum udrv_irq_type type)
{
	const struct vu_dev *vd = dev->priv;

	if ((unsigned)type >= UDRV_IRQ_TYPES)
		return udrv_err(EINVAL, "unknown interrupt type %d", (int)type);
	return (int)vd->irqs[type].count;
}

static int vu_irq_unmask(struct udrv_device *dev)
{
	struct vu_dev *vd = dev->priv;
	/* Spec, "VFIO_USER_DEVICE_SET_IRQS": ACTION_UNMASK with DATA_NONE, vector 0 of INTx. */
	struct vfio_user_irq_set s = {.argsz = sizeof(s),
				      .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
				      .index = UDRV_IRQ_INTX,
				      .count = 1};
	int rc;

	pthread_mutex_lock(&vd->irq_lock);
	if (vd->irq_mode != UDRV_IRQ_INTX)
		rc = udrv_err(EINVAL, "INTx of %s is not enabled: enable it before unmasking it",
			      vd->c.path);
	else
		rc = vu_call_simple(&vd->c, VFIO_USER_DEVICE_SET_IRQS, &s, sizeof(s), NULL, 0);
	pthread_mutex_unlock(&vd->irq_lock);
	if (rc < 0 && rc != -ENODEV && rc != -EINVAL)
		return udrv_err(-rc, "cannot unmask INTx of %s: %s", vd->c.path, strerror(-rc));
	return rc;
}

static int vu_region_info(struct udrv_device *dev, unsigned index, struct udrv_region_info *info)
{
	const struct vu_dev *vd = dev->priv;

	if (index >= UDRV_REGION_MAX)
		return udrv_err(EINVAL, "no region %u (regions are 0-%d)", index,
				UDRV_REGION_MAX - 1);
	if (index >= vd->nr_regions)
		memset(info, 0, sizeof(*info));
	else
		*info = vd->regions[index].r.info;
	return 0;
}

static int vu_region_map_area(struct udrv_device *dev, unsigned index, uint64_t off, size_t len,
			      void *addr)
{
	const struct vu_dev *vd = dev->priv;
	const struct vu_reg *g = &vd->regions[index];
	int prot = 0;

	if (g->fd < 0)
		return udrv_err(ENOTSUP, "region %u of %s cannot be mapped", index, vd->c.path);
	if (g->r.vflags & VFIO_REGION_INFO_FLAG_READ)
		prot |= PROT_READ;
	if (g->r.vflags & VFIO_REGION_INFO_FLAG_WRITE)
		prot |= PROT_WRITE;
	/* Spec, sparse mmap: "The offset will be added to the base offset". */
	return udrv_device_map_fixed(dev, index, addr, len, prot, g->fd, g->r.mmap_off + off);
}

/* Spec, "VFIO_USER_REGION_READ"/"WRITE", in pieces no larger than the server's
 * max_data_xfer_size (and udrv's own, which bounds the replies it accepts). */
static int region_rw(struct vu_dev *vd, unsigned index, uint64_t off, void *buf, size_t len,
		     bool write)
{
	uint32_t chunk = vd->c.caps.max_data_xfer_size < VU_OUR_MAX_XFER
			     ? vd->c.caps.max_data_xfer_size
			     : VU_OUR_MAX_XFER;
	uint16_t cmd = write ? VFIO_USER_REGION_WRITE : VFIO_USER_REGION_READ;

	if (len > INT_MAX)
		return udrv_err(EINVAL, "a region access is limited to %d bytes", INT_MAX);
	for (size_t done = 0; done < len;) {
		uint32_t n = len - done < chunk ? (uint32_t)(len - done) : chunk;
		struct vfio_user_region_access ra = {
		    .offset = off + done, .region = index, .count = n};
		struct iovec iov[2] = {{&ra, sizeof(ra)}, {(char *)buf + done, n}};
		struct vu_msg *rep;
		int rc = vu_call(&vd->c, cmd, iov, write ? 2 : 1, NULL, 0, &rep);

		if (rc == 0) {
			rc = vu_decode_region_access(vu_payload(rep), vu_plen(rep), index,
						     off + done, n, !write);
			if (rc == 0 && !write)
				memcpy((char *)buf + done,
				       (const uint8_t *)vu_payload(rep) + sizeof(ra), n);
			vu_msg_free(rep);
		}
		if (rc == -ENODEV)
			return rc;
		if (rc < 0)
			return udrv_err(-rc,
					"cannot %s %u bytes at offset 0x%" PRIx64 " of region %u "
					"of %s: %s",
					write ? "write" : "read", n, off + done, index, vd->c.path,
					strerror(-rc));
		done += n;
	}
	return (int)len;
}

static int vu_region_read(struct udrv_device *dev, unsigned index, uint64_t off, void *buf,
			  size_t len)
{
	return region_rw(dev->priv, index, off, buf, len, false);
}

static int vu_region_write(struct udrv_device *dev, unsigned index, uint64_t off, const void *buf,
			   size_t len)
{
	return region_rw(dev->priv, index, off, (void *)buf, len, true);
}

static int vu_reset(struct udrv_device *dev)
{
	struct vu_dev *vd = dev->priv;
	int rc;

	if (!(vd->dflags & VFIO_DEVICE_FLAGS_RESET))
		return udrv_err(ENOTSUP, "the device at %s offers no reset", vd->c.path);
	rc = vu_call_simple(&vd->c, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0);
	if (rc < 0 && rc != -ENODEV)
		return udrv_err(-rc, "cannot reset the device at %s: %s", vd->c.path,
				strerror(-rc));
	return rc;
}

static void vu_close(struct udrv_device *dev)
{
	struct vu_dev *vd = dev->priv;

	if (!vd)
		return;
	/* Errors are ignored: the server may be gone, and closing the socket ends the session
	 * (spec, "Client Disconnection": the server drops our memory and eventfds). */
	pthread_mutex_lock(&vd->irq_lock);
	for (unsigned i = 0; i < UDRV_IRQ_TYPES; i++)
		irq_off(dev, vd, i, false);
	pthread_mutex_unlock(&vd->irq_lock);
	if (vd->attached)
		udrv_dma_domain_detach(dev->dom, &vu_mapper_ops, vd);
	vu_free(vd, true);
	dev->priv = NULL;
}

const struct udrv_device_ops udrv_vfio_user_ops = {
    .name = "vfio-user",
    .open = vu_open,
    .close = vu_close,
    .region_info = vu_region_info,
    .region_map_area = vu_region_map_area,
    .region_read = vu_region_read,
    .region_write = vu_region_write,
    .irq_count = vu_irq_count,
    .irq_set = vu_irq_set,
    .irq_unmask = vu_irq_unmask,
    .reset = vu_reset,
};
