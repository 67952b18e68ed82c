/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client's DMA table ("VFIO_USER_DMA_MAP", "VFIO_USER_DMA_UNMAP") and the device's
 * access to it: windows sent with an fd are mapped into the server; the others are reached
 * with VFIO_USER_DMA_READ/WRITE messages ("Read and Write Operations"). A device touches only
 * what the client mapped, with the permission it was mapped with.
 *
 * The table is a sorted array, changed only on the serving thread with the poller paused,
 * so lookups from the poll function and from callbacks need no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "vfu_internal.h"

/* Index of the first window whose iova is >= iova. */
static unsigned lower_bound(const struct udrv_vfu_dev *dev, uint64_t iova)
{
	unsigned lo = 0, hi = dev->dma_n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (dev->dma[mid].iova < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The window containing iova, or NULL. */
static const struct vfu_dma_win *find(const struct udrv_vfu_dev *dev, uint64_t iova)
{
	unsigned i = lower_bound(dev, iova);

	if (i < dev->dma_n && dev->dma[i].iova == iova)
		return &dev->dma[i];
	if (i == 0)
		return NULL;
	i--;
	return iova - dev->dma[i].iova < dev->dma[i].size ? &dev->dma[i] : NULL;
}

static void close_fd(int fd)
{
	if (fd >= 0)
		close(fd);
}

static int map_fd(const struct vfio_user_dma_map *m, int fd, uint8_t **va)
{
	int prot = ((m->flags & VFIO_USER_F_DMA_REGION_READ) ? PROT_READ : 0) |
		   ((m->flags & VFIO_USER_F_DMA_REGION_WRITE) ? PROT_WRITE : 0);
	struct stat st;
	void *p;

	/* Only files with a size we can check: mapping past the end of a file would turn the
	 * device's first access into SIGBUS. (A client that shrinks the file afterwards can
	 * still do that; memfds sealed with F_SEAL_SHRINK cannot.) */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return udrv_err(EINVAL, "DMA_MAP: the fd is not a regular file or memfd");
	if (m->offset > (uint64_t)st.st_size || m->size > (uint64_t)st.st_size - m->offset)
		return udrv_err(EINVAL,
				"DMA_MAP: [%#llx, +%#llx) of the fd is beyond its %lld bytes",
				(unsigned long long)m->offset, (unsigned long long)m->size,
				(long long)st.st_size);
	if (m->size > SIZE_MAX)
		return udrv_err(EINVAL, "DMA_MAP: window too large to map");
	p = mmap(NULL, (size_t)m->size, prot, MAP_SHARED, fd, (off_t)m->offset);
	if (p == MAP_FAILED)
		return udrv_err(errno == ENOMEM ? ENOMEM : EINVAL, "DMA_MAP: mmap failed: %s",
				strerror(errno));
	*va = p;
	return 0;
}

int vfu_dma_map(struct udrv_vfu_dev *dev, const struct vfio_user_dma_map *m, int fd)
{
	const uint32_t perms = VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE;
	struct vfu_dma_win w = {m->addr, m->size, m->flags, NULL};
	unsigned pos;
	int rc;

	if (!(m->flags & perms) || (m->flags & ~perms)) {
		close_fd(fd);
		return udrv_err(EINVAL, "DMA_MAP: flags 0x%x must be READ and/or WRITE only",
				m->flags);
	}
	if (!m->size || m->addr + m->size < m->addr || (m->addr | m->size) % VFU_PAGE_SIZE ||
	    (fd >= 0 ? m->offset % VFU_PAGE_SIZE : m->offset)) {
		close_fd(fd);
		return udrv_err(EINVAL,
				"DMA_MAP: [%#llx, +%#llx) offset %#llx is empty, wraps, or is not "
				"4 KiB-aligned",
				(unsigned long long)m->addr, (unsigned long long)m->size,
				(unsigned long long)m->offset);
	}
	if (dev->dma_n >= dev->max_dma_maps) {
		close_fd(fd);
		return udrv_err(ENOSPC, "DMA_MAP: the %u windows of max_dma_maps are in use",
				dev->max_dma_maps);
	}
	pos = lower_bound(dev, m->addr);
	if ((pos > 0 && dev->dma[pos - 1].iova + dev->dma[pos - 1].size > m->addr) ||
	    (pos < dev->dma_n && dev->dma[pos].iova < m->addr + m->size)) {
		close_fd(fd);
		return udrv_err(EEXIST, "DMA_MAP: [%#llx, +%#llx) overlaps a mapped window",
				(unsigned long long)m->addr, (unsigned long long)m->size);
	}
	if (fd >= 0) {
		rc = map_fd(m, fd, &w.va);
		close(fd); /* the mapping keeps the file; holding fds would cap max_dma_maps */
		if (rc < 0)
			return rc;
	}

	vfu_poller_pause(dev);
	if (dev->dma_n == dev->dma_cap) {
		unsigned cap = dev->dma_cap ? dev->dma_cap * 2 : 16;
		struct vfu_dma_win *a = realloc(dev->dma, cap * sizeof(*a));

		if (!a) {
			vfu_poller_resume(dev);
			if (w.va)
				munmap(w.va, (size_t)w.size);
			return udrv_err(ENOMEM, "DMA_MAP: out of memory");
		}
		dev->dma = a;
		dev->dma_cap = cap;
	}
	memmove(&dev->dma[pos + 1], &dev->dma[pos], (dev->dma_n - pos) * sizeof(w));
	dev->dma[pos] = w;
	dev->dma_n++;
	vfu_poller_resume(dev);
	return 0;
}

static void drop(struct vfu_dma_win *w)
{
	if (w->va)
		munmap(w->va, (size_t)w->size);
	w->va = NULL;
}

int vfu_dma_unmap(struct udrv_vfu_dev *dev, const struct vfio_user_dma_unmap *u)
{
	unsigned i;

	if (u->flags == VFIO_DMA_UNMAP_FLAG_ALL) {
		/* Not in the vfio-user spec, but QEMU's client sends it (as for VFIO). */
		vfu_dma_unmap_all(dev);
		return 0;
	}
	if (u->flags)
		return udrv_err(EINVAL, "DMA_UNMAP: flags 0x%x are not supported", u->flags);
	i = lower_bound(dev, u->addr);
	if (i == dev->dma_n || dev->dma[i].iova != u->addr || dev->dma[i].size != u->size)
		return udrv_err(ENOENT, "DMA_UNMAP: [%#llx, +%#llx) is not a mapped window",
				(unsigned long long)u->addr, (unsigned long long)u->size);
	/* "release all references to that DMA region before replying". */
	vfu_poller_pause(dev);
	drop(&dev->dma[i]);
	memmove(&dev->dma[i], &dev->dma[i + 1], (dev->dma_n - i - 1) * sizeof(dev->dma[0]));
	dev->dma_n--;
	vfu_poller_resume(dev);
	return 0;
}

void vfu_dma_unmap_all(struct udrv_vfu_dev *dev)
{
	vfu_poller_pause(dev);
	for (unsigned i = 0; i < dev->dma_n; i++)
		drop(&dev->dma[i]);
	dev->dma_n = 0;
	vfu_poller_resume(dev);
}

void vfu_dma_fini(struct udrv_vfu_dev *dev)
{
	vfu_dma_unmap_all(dev);
	free(dev->dma);
	dev->dma = NULL;
	dev->dma_cap = 0;
}

void *udrv_vfu_dma_ptr(struct udrv_vfu_dev *dev, uint64_t iova, size_t len, bool write)
{
	const struct vfu_dma_win *w = find(dev, iova);
	uint32_t need = write ? VFIO_USER_F_DMA_REGION_WRITE : VFIO_USER_F_DMA_REGION_READ;

	if (!w || !w->va || !len || !(w->prot & need) || len > w->size - (iova - w->iova)) {
		errno = EFAULT;
		return NULL;
	}
	return w->va + (iova - w->iova);
}

/* One message-based transfer of at most the client's max_data_xfer_size. */
static int msg_xfer(struct udrv_vfu_dev *dev, uint64_t iova, uint8_t *p, size_t n, bool write)
{
	struct vfio_user_dma_access a = {iova, n};
	struct iovec iov[2] = {{&a, sizeof(a)}, {p, n}};
	const struct vfio_user_dma_access *r;
	void *reply = NULL;
	size_t rlen = 0;
	uint32_t count32 = 0;
	int rc;

	rc = vfu_request(dev, write ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ, iov, write ? 2 : 1,
			 &reply, &rlen);
	if (rc < 0)
		return udrv_err(EFAULT, "DMA %s of %#llx failed: the client %s",
				write ? "write" : "read", (unsigned long long)iova,
				rc == -ENOTCONN || rc == -ECONNRESET ? "is gone" : "refused it");
	r = reply;
	/* The DMA_WRITE reply's count is 4 bytes in the spec and 8 from peers: read 4. */
	if (rlen >= 12)
		memcpy(&count32, (const uint8_t *)reply + 8, sizeof(count32));
	if (rlen < 12 || r->addr != iova || count32 != n ||
	    (!write && (rlen != sizeof(*r) + n || r->count != n))) {
		free(reply);
		return udrv_err(EFAULT, "DMA %s of %#llx: the client's reply is malformed",
				write ? "write" : "read", (unsigned long long)iova);
	}
	if (!write)
		memcpy(p, r->data, n);
	free(reply);
	return 0;
}

static int dma_copy(struct udrv_vfu_dev *dev, uint64_t iova, uint8_t *p, size_t len, bool write)
{
	uint32_t need = write ? VFIO_USER_F_DMA_REGION_WRITE : VFIO_USER_F_DMA_REGION_READ;
	uint64_t x;
	size_t left;

	if (!dev || (len && !p))
		return udrv_err(EFAULT, "DMA %s without a device or buffer",
				write ? "write" : "read");
	if (iova + len < iova)
		return udrv_err(EFAULT, "DMA range [%#llx, +%zu) wraps", (unsigned long long)iova,
				len);
	/* Check every byte first: a failed access copies nothing. */
	for (x = iova, left = len; left;) {
		const struct vfu_dma_win *w = find(dev, x);
		uint64_t n;

		if (!w || !(w->prot & need))
			return udrv_err(EFAULT,
					"DMA %s of [%#llx, +%zu): %#llx is not %s by the client",
					write ? "write" : "read", (unsigned long long)iova, len,
					(unsigned long long)x, w ? "permitted" : "mapped");
		n = w->size - (x - w->iova);
		n = n < left ? n : left;
		x += n;
		left -= (size_t)n;
	}
	for (x = iova, left = len; left;) {
		const struct vfu_dma_win *w = find(dev, x);
		uint64_t n = w->size - (x - w->iova);
		int rc = 0;

		n = n < left ? n : left;
		if (w->va) {
			if (write)
				memcpy(w->va + (x - w->iova), p, (size_t)n);
			else
				memcpy(p, w->va + (x - w->iova), (size_t)n);
		} else {
			for (uint64_t done = 0; done < n && rc == 0;) {
				uint64_t chunk = n - done;

				if (chunk > dev->client_max_xfer)
					chunk = dev->client_max_xfer;
				rc = msg_xfer(dev, x + done, p + done, (size_t)chunk, write);
				done += chunk;
			}
		}
		if (rc < 0)
			return rc;
		x += n;
		p += n;
		left -= (size_t)n;
	}
	return 0;
}

int udrv_vfu_dma_read(struct udrv_vfu_dev *dev, uint64_t iova, void *buf, size_t len)
{
	return dma_copy(dev, iova, buf, len, false);
}

int udrv_vfu_dma_write(struct udrv_vfu_dev *dev, uint64_t iova, const void *buf, size_t len)
{
	return dma_copy(dev, iova, (uint8_t *)buf, len, true);
}
