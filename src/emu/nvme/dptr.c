/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Data pointers of the emulated NVMe controller: PRP entries and PRP lists (NVMe 1.4, 4.3)
 * and Scatter Gather Lists (4.4) turned into segments of host memory.
 *
 * Everything here comes from the host and is untrusted: the command's PRP1/PRP2 or SGL1,
 * and the PRP lists and SGL segments read through the caller's read function. Lists are
 * read only as far as the transfer needs, a segment chain is bounded (a cycle ends with an
 * error), and no segment or list range may wrap past 2^64. Segment addresses are not
 * checked against the DMA windows here: nvemu_dptr_iov()/nvemu_dptr_copy() do that when the
 * data moves.
 *
 * Status codes (all Generic Command Status, 4.6.1.2):
 *   Invalid Field in Command     length 0 or above MDTS, PSDT 10b (metadata SGL), PSDT 11b
 *   PRP Offset Invalid           PRP1 not dword aligned, PRP2 list pointer not qword
 *                                aligned, PRP2 data entry / list entry / chained list
 *                                pointer not page aligned
 *   Data Transfer Error          a list unreadable, a range wrapping past 2^64
 *   Invalid SGL Segment Descr.   (SGL_INVALID_LAST) Segment/Last Segment descriptor with a
 *                                length 0 or not a multiple of 16, list not qword aligned,
 *                                a Segment descriptor inside a last segment
 *   Invalid Number of SGL Descr. (SGL_INVALID_COUNT) a Segment/Last Segment descriptor that
 *                                is not the last of its segment, more than NVEMU_MAX_SEGS
 *                                segments, more than SGL_MAX_DESCS descriptors read
 *   Data SGL Length Invalid      the SGL describes fewer bytes than the transfer
 *   SGL Descriptor Type Invalid  unsupported type or sub type, a Bit Bucket when the
 *                                controller reads host memory (a Write command)
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "emu/nvme/nvme_emu.h"

#define PAGE_MASK      ((uint64_t)NVEMU_PAGE - 1)
#define PRP_PER_PAGE   (NVEMU_PAGE / 8u)
#define SGL_MAX_DESCS  4096u /* SGL descriptors read for one command (ends segment cycles) */
#define SGL_CHUNK      64u   /* descriptors read at a time from a segment */
#define SGL_SUBTYPE(d) ((uint8_t)((d)->id & 0xfu))

#define ST(sc) NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_##sc)

/* [iova, iova + len) is representable: it neither wraps nor ends at 2^64. */
static bool range_ok(uint64_t iova, uint64_t len)
{
	return len <= UINT64_MAX - iova;
}

/* Append len bytes (may be 0: nothing) at iova, merging with the previous segment when it is
 * physically adjacent (or both are bit buckets). */
static uint16_t add_seg(struct nvemu_dptr *d, uint64_t iova, uint64_t len, bool bucket)
{
	struct nvemu_seg *last = d->n ? &d->seg[d->n - 1] : NULL;

	if (len == 0)
		return 0;
	if (bucket)
		iova = 0;
	else if (!range_ok(iova, len))
		return ST(DATA_XFER_ERROR);
	/* d->len + len never exceeds the transfer length (<= NVEMU_MAX_XFER): no overflow. */
	if (last && last->bucket == bucket && (bucket || last->iova + last->len == iova)) {
		last->len += (uint32_t)len;
	} else {
		if (d->n == NVEMU_MAX_SEGS)
			return ST(SGL_INVALID_COUNT);
		d->seg[d->n++] =
		    (struct nvemu_seg){.iova = iova, .len = (uint32_t)len, .bucket = bucket};
	}
	d->len += len;
	return 0;
}

/*
 * PRP (4.3, Figures 108-111). PRP1 addresses the first page, with a dword-aligned offset.
 * PRP2 is the second page (offset 0) when the data ends there, else a qword-aligned PRP List
 * pointer that may have an offset: entries run from it to the end of that page, and when
 * more entries are needed than the page holds, its last entry points to the next list page.
 * Every list entry (data page or next list) must have offset 0.
 */
static uint16_t prp_resolve(uint64_t prp1, uint64_t prp2, uint64_t len, nvemu_read_fn rd,
			    void *rctx, struct nvemu_dptr *d)
{
	uint64_t ent[PRP_PER_PAGE];
	uint64_t first, rem, list;
	uint16_t st;

	if (prp1 & 3)
		return ST(PRP_INVALID_OFFSET);
	first = NVEMU_PAGE - (prp1 & PAGE_MASK);
	if (first > len)
		first = len;
	st = add_seg(d, prp1, first, false);
	if (st)
		return st;
	rem = len - first;
	if (rem == 0)
		return 0; /* PRP2 is not used */
	if (rem <= NVEMU_PAGE) {
		if (prp2 & PAGE_MASK)
			return ST(PRP_INVALID_OFFSET);
		return add_seg(d, prp2, rem, false);
	}

	if (prp2 & 7)
		return ST(PRP_INVALID_OFFSET);
	list = prp2;
	/* Terminates: a chained pointer is page aligned, and a whole page holds more entries
	 * than NVEMU_MAX_XFER needs, so at most two list pages are read. */
	while (rem) {
		uint64_t slots = (NVEMU_PAGE - (list & PAGE_MASK)) / 8; /* >= 1 */
		uint64_t need = (rem + PAGE_MASK) / NVEMU_PAGE;
		bool chain = need > slots;
		uint64_t take = chain ? slots - 1 : need;
		uint64_t nread = chain ? slots : need;

		if (!range_ok(list, nread * 8) || rd(rctx, list, ent, nread * 8) != 0)
			return ST(DATA_XFER_ERROR);
		for (uint64_t i = 0; i < take; i++) {
			uint64_t e = le64toh(ent[i]);
			uint64_t n = rem < NVEMU_PAGE ? rem : NVEMU_PAGE;

			if (e & PAGE_MASK)
				return ST(PRP_INVALID_OFFSET);
			st = add_seg(d, e, n, false);
			if (st)
				return st;
			rem -= n;
		}
		if (chain) {
			list = le64toh(ent[take]);
			if (list & PAGE_MASK)
				return ST(PRP_INVALID_OFFSET);
		}
	}
	return 0;
}

struct sgl_walk {
	struct nvemu_dptr *d;
	uint64_t rem;	/* bytes not yet described */
	unsigned descs; /* descriptors read from host memory */
	bool write;	/* the controller writes host memory: bit buckets allowed */
};

/* A Data Block or Bit Bucket descriptor (4.4): takes what the transfer still needs of it;
 * a zero-length one adds nothing. */
static uint16_t sgl_data(struct sgl_walk *w, const struct nvme_sgl_desc *sd)
{
	bool bucket = NVME_SGL_TYPE(sd) == NVME_SGL_TYPE_BIT_BUCKET;
	uint64_t n = le32toh(sd->len);
	uint16_t st;

	if (SGL_SUBTYPE(sd) != NVME_SGL_SUBTYPE_ADDRESS || (bucket && !w->write))
		return ST(SGL_INVALID_TYPE);
	if (n > w->rem)
		n = w->rem;
	st = add_seg(w->d, le64toh(sd->addr), n, bucket);
	if (st == 0)
		w->rem -= n;
	return st;
}

static bool sgl_is_data(const struct nvme_sgl_desc *sd)
{
	return NVME_SGL_TYPE(sd) == NVME_SGL_TYPE_DATA ||
	       NVME_SGL_TYPE(sd) == NVME_SGL_TYPE_BIT_BUCKET;
}

static bool sgl_is_segment(const struct nvme_sgl_desc *sd)
{
	return NVME_SGL_TYPE(sd) == NVME_SGL_TYPE_SEGMENT ||
	       NVME_SGL_TYPE(sd) == NVME_SGL_TYPE_LAST_SEGMENT;
}

/*
 * SGL (4.4). SGL1 in the command is a data descriptor (the whole SGL) or points at the first
 * segment. A segment is a qword-aligned array of descriptors (Segment/Last Segment Length a
 * non-zero multiple of 16); only its last descriptor may point at the next
 * segment, and a last segment (one a Last Segment descriptor points at) holds none.
 */
static uint16_t sgl_resolve(const struct nvme_sgl_desc *sgl1, uint64_t len, bool write,
			    nvemu_read_fn rd, void *rctx, struct nvemu_dptr *d)
{
	struct nvme_sgl_desc buf[SGL_CHUNK];
	struct sgl_walk w = {.d = d, .rem = len, .descs = 0, .write = write};
	struct nvme_sgl_desc seg = *sgl1; /* the Segment/Last Segment descriptor in hand */
	uint16_t st;

	if (sgl_is_data(sgl1)) {
		st = sgl_data(&w, sgl1);
		return st ? st : w.rem ? ST(SGL_INVALID_DATA) : 0;
	}
	if (!sgl_is_segment(sgl1))
		return ST(SGL_INVALID_TYPE);

	for (;;) {
		uint64_t addr = le64toh(seg.addr);
		uint32_t count = le32toh(seg.len) / 16;
		bool in_last = NVME_SGL_TYPE(&seg) == NVME_SGL_TYPE_LAST_SEGMENT;
		bool next = false;

		if (SGL_SUBTYPE(&seg) != NVME_SGL_SUBTYPE_ADDRESS)
			return ST(SGL_INVALID_TYPE);
		if (count == 0 || (le32toh(seg.len) & 15) || (addr & 7))
			return ST(SGL_INVALID_LAST);
		if (!range_ok(addr, (uint64_t)count * 16))
			return ST(DATA_XFER_ERROR);
		for (uint32_t i = 0; i < count && w.rem;) {
			uint32_t k = count - i < SGL_CHUNK ? count - i : SGL_CHUNK;

			if (w.descs >= SGL_MAX_DESCS)
				return ST(SGL_INVALID_COUNT);
			if (k > SGL_MAX_DESCS - w.descs)
				k = SGL_MAX_DESCS - w.descs;
			if (rd(rctx, addr + (uint64_t)i * 16, buf, (size_t)k * 16) != 0)
				return ST(DATA_XFER_ERROR);
			w.descs += k;
			for (uint32_t j = 0; j < k && w.rem; j++) {
				const struct nvme_sgl_desc *sd = &buf[j];

				if (sgl_is_segment(sd)) {
					if (in_last)
						return ST(SGL_INVALID_LAST);
					if (i + j != count - 1)
						return ST(SGL_INVALID_COUNT);
					seg = *sd;
					next = true;
				} else if (sgl_is_data(sd)) {
					st = sgl_data(&w, sd);
					if (st)
						return st;
				} else {
					return ST(SGL_INVALID_TYPE);
				}
			}
			i += k;
		}
		if (w.rem == 0)
			return 0;
		if (!next)
			return ST(SGL_INVALID_DATA);
	}
}

uint16_t nvemu_dptr_resolve(const struct nvme_sqe *cmd, uint64_t len, bool write, nvemu_read_fn rd,
			    void *rctx, struct nvemu_dptr *out)
{
	struct nvme_sgl_desc sgl1;
	uint16_t st;

	out->n = 0;
	out->len = 0;
	if (len == 0 || len > NVEMU_MAX_XFER)
		return ST(INVALID_FIELD);
	switch (cmd->flags & NVME_CMD_PSDT_MASK) {
	case NVME_CMD_PSDT_PRP:
		st = prp_resolve(le64toh(cmd->prp1), le64toh(cmd->prp2), len, rd, rctx, out);
		break;
	case NVME_CMD_PSDT_SGL:
		memcpy(&sgl1, &cmd->sgl, sizeof(sgl1));
		st = sgl_resolve(&sgl1, len, write, rd, rctx, out);
		break;
	default: /* 10b: metadata SGL (not supported), 11b: reserved (4.2, Figure 105) */
		st = ST(INVALID_FIELD);
		break;
	}
	if (st) {
		out->n = 0;
		out->len = 0;
	}
	return st;
}

unsigned nvemu_dptr_iov(struct udrv_vfu_dev *dev, const struct nvemu_dptr *d, bool to_host,
			void *scratch, struct iovec *iov)
{
	for (unsigned i = 0; i < d->n; i++) {
		const struct nvemu_seg *s = &d->seg[i];
		void *p;

		if (s->bucket) /* discarded bytes land in scratch (s->len <= NVEMU_MAX_XFER) */
			p = to_host ? scratch : NULL;
		else
			p = udrv_vfu_dma_ptr(dev, s->iova, s->len, to_host);
		if (!p)
			return 0;
		iov[i].iov_base = p;
		iov[i].iov_len = s->len;
	}
	return d->n;
}

int nvemu_dptr_copy(struct udrv_vfu_dev *dev, const struct nvemu_dptr *d, void *buf, bool to_host)
{
	uint8_t *p = buf;

	for (unsigned i = 0; i < d->n; i++) {
		const struct nvemu_seg *s = &d->seg[i];
		int rc;

		if (s->bucket)
			rc = to_host ? 0 : -EFAULT; /* nothing to read from a bit bucket */
		else if (to_host)
			rc = udrv_vfu_dma_write(dev, s->iova, p, s->len);
		else
			rc = udrv_vfu_dma_read(dev, s->iova, p, s->len);
		if (rc != 0)
			return -EFAULT;
		p += s->len;
	}
	return 0;
}
