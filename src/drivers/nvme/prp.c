/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Data pointers for the driver: PRP entries and lists (NVMe 1.4, 4.3) for a buffer or an
 * I/O vector, and SGL data block descriptors (4.4) for vectors PRPs cannot describe.
 * Addresses come from the DMA domain's O(1) table: no system call, nothing allocated.
 */
#include <errno.h>

#include "drivers/nvme/nvme_internal.h"

static inline uint64_t iova_of(struct udrv_dma_domain *dom, const void *va)
{
	return udrv_dma_iova(dom, va);
}

/* Append the pages of [va, va+len) to a PRP description; *n counts entries so far. The
 * first entry may have an offset, later ones start on a page (4.3). */
static int add_pages(struct udrv_dma_domain *dom, const uint8_t *va, size_t len, uint64_t *prp,
		     unsigned *n, unsigned max)
{
	while (len) {
		uint64_t iova = iova_of(dom, va);
		size_t in_page = NVD_PAGE - (iova & (NVD_PAGE - 1));
		size_t step = len < in_page ? len : in_page;

		if (iova == UDRV_DMA_IOVA_INVALID)
			return -EFAULT;
		if (*n && (iova & (NVD_PAGE - 1)))
			return -EINVAL; /* only the first entry may have an offset */
		if (*n >= max)
			return -EINVAL;
		prp[(*n)++] = iova;
		va += step;
		len -= step;
	}
	return 0;
}

/* Entries 0..n-1 in prp[]: PRP1 is the first; PRP2 the second, or the list of the rest. The
 * list lives in the slot's page, so prp[] is that page shifted by one entry. */
static void finish(struct nvme_sqe *cmd, uint64_t *list, uint64_t list_iova, uint64_t first,
		   unsigned n)
{
	cmd->flags &= (uint8_t)~NVME_CMD_PSDT_MASK;
	cmd->prp1 = first;
	cmd->prp2 = n == 1 ? 0 : n == 2 ? list[0] : list_iova;
}

int nvd_prp_build(struct udrv_dma_domain *dom, struct nvme_sqe *cmd, const void *buf, size_t len,
		  uint64_t *list, uint64_t list_iova)
{
	uint64_t first = iova_of(dom, buf), last;
	size_t in_page = NVD_PAGE - (first & (NVD_PAGE - 1));
	unsigned n = 0;
	int rc;

	if (first == UDRV_DMA_IOVA_INVALID)
		return -EFAULT;
	if (first & 3)
		return -EINVAL; /* PRP entries are dword aligned */
	if (len <= in_page) {
		/* One page: the last byte must be mapped too (a buffer running off the end of a
		 * chunk would otherwise be described by a wrong address). */
		last = iova_of(dom, (const uint8_t *)buf + len - 1);
		if (last != first + len - 1)
			return -EFAULT;
		finish(cmd, list, list_iova, first, 1);
		return 0;
	}
	rc = add_pages(dom, (const uint8_t *)buf + in_page, len - in_page, list, &n,
		       (unsigned)(NVD_PAGE / sizeof(uint64_t)));
	if (rc < 0)
		return rc;
	finish(cmd, list, list_iova, first, n + 1);
	return 0;
}

/* SGL: one data block descriptor per contiguous piece, in the slot's page as a last
 * segment (4.4.2); a single piece goes straight into the command. */
static int sgl_build(struct udrv_dma_domain *dom, struct nvme_sqe *cmd, const struct iovec *iov,
		     unsigned iovcnt, uint64_t *list, uint64_t list_iova)
{
	struct nvme_sgl_desc *d = (struct nvme_sgl_desc *)list;
	unsigned n = 0;

	for (unsigned i = 0; i < iovcnt; i++) {
		const uint8_t *va = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left) {
			size_t run = udrv_dma_contig(dom, va, left);

			if (!run)
				return -EFAULT;
			if (n == NVD_MAX_SGL_DESC)
				return -EINVAL;
			d[n++] = (struct nvme_sgl_desc){.addr = iova_of(dom, va),
							.len = (uint32_t)run,
							.id = NVME_SGL_TYPE_DATA << 4};
			va += run;
			left -= run;
		}
	}
	if (!n)
		return -EINVAL;
	cmd->flags = (uint8_t)((cmd->flags & ~NVME_CMD_PSDT_MASK) | NVME_CMD_PSDT_SGL);
	if (n == 1) {
		cmd->sgl = d[0];
		return 0;
	}
	cmd->sgl = (struct nvme_sgl_desc){.addr = list_iova,
					  .len = n * (uint32_t)sizeof(*d),
					  .id = NVME_SGL_TYPE_LAST_SEGMENT << 4};
	return 0;
}

int nvd_iov_build(struct udrv_dma_domain *dom, struct nvme_sqe *cmd, const struct iovec *iov,
		  unsigned iovcnt, size_t len, bool sgl, uint64_t *list, uint64_t list_iova)
{
	uint64_t prp[1] = {0};
	size_t total = 0;
	unsigned n = 0;
	int rc = 0;

	for (unsigned i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_len)
			return -EINVAL; /* a PRP entry for no bytes would still move a page */
		total += iov[i].iov_len;
	}
	if (!iovcnt || total != len)
		return -EINVAL;
	if (iovcnt == 1) {
		rc = nvd_prp_build(dom, cmd, iov[0].iov_base, len, list, list_iova);
		return rc == -EINVAL && sgl ? sgl_build(dom, cmd, iov, 1, list, list_iova) : rc;
	}
	/* PRPs: the first entry goes to PRP1, the rest to the list; every buffer but the
	 * first starts on a page, every one but the last ends on one. */
	for (unsigned i = 0; i < iovcnt && rc == 0; i++) {
		uint64_t start = iova_of(dom, iov[i].iov_base);
		uint64_t end = start + iov[i].iov_len;

		if (start == UDRV_DMA_IOVA_INVALID)
			return -EFAULT;
		if ((i > 0 && (start & (NVD_PAGE - 1))) ||
		    (i + 1 < iovcnt && (end & (NVD_PAGE - 1))) || (start & 3)) {
			rc = -EINVAL;
			break;
		}
		if (i == 0) {
			size_t in_page = NVD_PAGE - (start & (NVD_PAGE - 1));
			size_t l = iov[0].iov_len;

			prp[0] = start;
			if (l > in_page)
				rc = add_pages(dom, (const uint8_t *)iov[0].iov_base + in_page,
					       l - in_page, list, &n, NVD_PAGE / 8);
		} else {
			rc =
			    add_pages(dom, iov[i].iov_base, iov[i].iov_len, list, &n, NVD_PAGE / 8);
		}
	}
	if (rc == 0) {
		finish(cmd, list, list_iova, prp[0], n + 1);
		return 0;
	}
	if (rc == -EINVAL && sgl)
		return sgl_build(dom, cmd, iov, iovcnt, list, list_iova);
	return rc;
}
