/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller's NVM command set, driven through vfio-user by the test host
 * (nvme_host.c): data written and read back byte for byte with 512- and 4096-byte blocks,
 * through every kind of data pointer (PRP1 only, PRP2, PRP lists and chained lists, SGL data
 * blocks, segment chains, bit buckets); Flush, Write Zeroes, Dataset Management, Compare;
 * range and size errors; bad pointers; several namespaces; file and io_uring backings.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <udrv/log.h>

#include "nvme_host.h"
#include "test.h"

#define SC_G(sc) NVME_STATUS(NVME_SCT_GENERIC, sc)
#define SC_M(sc) NVME_STATUS(NVME_SCT_MEDIA, sc)
#define AQ	 32
#define KIB	 1024u
#define MIB	 (1024u * 1024u)

/* The byte at offset i of block lba of namespace ns, as written by fill(). */
static uint8_t pat(uint32_t ns, uint64_t lba, unsigned i, unsigned seed)
{
	return (uint8_t)(lba * 31 + i * 7 + ns * 101 + seed * 13 + (i >> 8));
}

static void fill(uint8_t *p, uint32_t ns, uint64_t lba, unsigned nlb, unsigned bs, unsigned seed)
{
	for (unsigned b = 0; b < nlb; b++)
		for (unsigned i = 0; i < bs; i++)
			p[(size_t)b * bs + i] = pat(ns, lba + b, i, seed);
}

/* Bytes that differ from the pattern; 0 when all match. */
static size_t check(const uint8_t *p, uint32_t ns, uint64_t lba, unsigned nlb, unsigned bs,
		    unsigned seed)
{
	size_t bad = 0;

	for (unsigned b = 0; b < nlb; b++)
		for (unsigned i = 0; i < bs; i++)
			bad += p[(size_t)b * bs + i] != pat(ns, lba + b, i, seed);
	return bad;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

struct rig {
	struct udrv_emu_nvme *e;
	struct nvme_host *h;
	char sock[128];
	unsigned bs;
	uint64_t nsze;
};

static void rig_up(struct rig *r, struct udrv_emu_nvme_opts *o, unsigned qpairs, unsigned entries)
{
	struct nvme_id_ns id;

	memset(r, 0, sizeof(*r));
	r->e = nh_emu_start(o, r->sock);
	REQUIRE(nh_open(r->sock, &r->h) == 0);
	REQUIRE(nh_enable(r->h, AQ) == 0);
	for (uint16_t q = 1; q <= qpairs; q++)
		REQUIRE(nh_create_qpair(r->h, q, entries) == 0);
	REQUIRE(nh_identify(r->h, NVME_IDENTIFY_CNS_NS, 1, &id) == 0);
	r->bs = 1u << id.lbaf[id.flbas & 0xf].ds;
	r->nsze = id.nsze;
}

static void rig_down(struct rig *r)
{
	CHECK_EQ(r->h->bad_cqes, 0);
	nh_close(r->h);
	udrv_emu_nvme_destroy(r->e);
}

/* Write nlb blocks at lba from a buffer at page offset off, read them back into a buffer
 * at page offset roff, and compare. */
static void rw_roundtrip(struct rig *r, uint64_t lba, unsigned nlb, size_t off, size_t roff,
			 unsigned seed)
{
	size_t len = (size_t)nlb * r->bs;
	uint8_t *w = nh_alloc(r->h, len + off + 4096, NULL);
	uint8_t *d = nh_alloc(r->h, len + roff + 4096, NULL);

	REQUIRE(w && d);
	fill(w + off, 1, lba, nlb, r->bs, seed);
	memset(d, 0x5a, len + roff + 4096);
	CHECK_EQ(nh_io(r->h, 1, nvme_cmd_write, 1, lba, nlb, w + off, len), 0);
	CHECK_EQ(nh_io(r->h, 1, nvme_cmd_read, 1, lba, nlb, d + roff, len), 0);
	CHECK_EQ(check(d + roff, 1, lba, nlb, r->bs, seed), 0);
	/* Nothing written around the buffer. */
	CHECK(roff == 0 || d[roff - 1] == 0x5a);
	CHECK_EQ(d[roff + len], 0x5a);
	nh_free(r->h, w);
	nh_free(r->h, d);
}

/* A chained PRP list: PRP2 points 'slots' entries before the end of a list page, so the
 * list continues on a second page through that page's last entry. */
static int io_chained(struct rig *r, uint8_t opc, uint64_t lba, uint8_t *buf, size_t len,
		      unsigned slots)
{
	uint64_t liova, *l1, *l2, page = nh_iova(r->h, buf) + 4096;
	uint8_t *lists = nh_alloc(r->h, 2 * 4096, &liova);
	struct nvme_sqe c;
	unsigned n = 0, pages = (unsigned)((len - 1) / 4096); /* after PRP1's page */
	int st;

	REQUIRE(lists && ((uintptr_t)buf & 4095) == 0);
	l1 = (uint64_t *)(lists + 4096 - 8 * slots);
	l2 = (uint64_t *)(lists + 4096);
	nh_rw_cmd(&c, opc, 1, lba, (unsigned)(len / r->bs));
	c.prp1 = nh_iova(r->h, buf);
	c.prp2 = liova + 4096 - 8 * slots;
	for (unsigned i = 0; i < pages; i++, page += 4096) {
		if (n < slots - 1)
			l1[n++] = page;
		else
			l2[i - (slots - 1)] = page;
	}
	l1[slots - 1] = liova + 4096; /* the chain */
	st = nh_exec(r->h, 1, &c, NULL);
	nh_free(r->h, lists);
	return st;
}

static void rw_sizes(struct rig *r)
{
	unsigned per_page = 4096 / r->bs, max_nlb = 256 * KIB / r->bs;
	uint8_t *a, *b;
	struct nvme_sqe c;

	rw_roundtrip(r, 5, 1, 0, 0, 1);			      /* one block, PRP1 */
	rw_roundtrip(r, 100, 2 * per_page, 0x200, 0x800, 2);  /* 8 KiB, PRP1 unaligned */
	rw_roundtrip(r, 200, per_page, 0, 0x400, 3);	      /* 4 KiB: PRP1 + PRP2 */
	rw_roundtrip(r, 1000, max_nlb, 0, 0, 4);	      /* 256 KiB, PRP list */
	rw_roundtrip(r, 2000, max_nlb, 0x200, 0x1000 - 4, 5); /* 256 KiB unaligned: 65 pages */
	rw_roundtrip(r, r->nsze - max_nlb, max_nlb, 0, 0, 6); /* the last blocks */

	/* Chained PRP lists, writing and reading. */
	a = nh_alloc(r->h, 256 * KIB, NULL);
	b = nh_alloc(r->h, 256 * KIB, NULL);
	REQUIRE(a && b);
	fill(a, 1, 3000, max_nlb, r->bs, 7);
	CHECK_EQ(io_chained(r, nvme_cmd_write, 3000, a, 256 * KIB, 4), 0);
	CHECK_EQ(nh_io(r->h, 1, nvme_cmd_read, 1, 3000, max_nlb, b, 256 * KIB), 0);
	CHECK_EQ(check(b, 1, 3000, max_nlb, r->bs, 7), 0);
	memset(b, 0, 256 * KIB);
	CHECK_EQ(io_chained(r, nvme_cmd_read, 3000, b, 64 * KIB, 2), 0);
	CHECK_EQ(check(b, 1, 3000, 64 * KIB / r->bs, r->bs, 7), 0);
	/* A list that ends exactly at its page end needs no chain: 15 entries in 15 slots. */
	memset(b, 0, 256 * KIB);
	{
		uint64_t liova;
		uint8_t *l = nh_alloc(r->h, 4096, &liova);

		REQUIRE(l);
		for (unsigned i = 0; i < 15; i++)
			((uint64_t *)(l + 4096 - 15 * 8))[i] = nh_iova(r->h, b) + 4096 * (i + 1);
		nh_rw_cmd(&c, nvme_cmd_read, 1, 3000, 64 * KIB / r->bs);
		c.prp1 = nh_iova(r->h, b);
		c.prp2 = liova + 4096 - 15 * 8;
		CHECK_EQ(nh_exec(r->h, 1, &c, NULL), 0);
		nh_free(r->h, l);
	}
	CHECK_EQ(check(b, 1, 3000, 64 * KIB / r->bs, r->bs, 7), 0);
	CHECK(all_zero(b + 64 * KIB, 4096));

	/* Out of range; too large; no such namespace; unknown opcode. */
	CHECK_EQ(nh_sct_sc(nh_io(r->h, 1, nvme_cmd_read, 1, r->nsze, 1, a, r->bs)),
		 SC_G(NVME_SC_LBA_RANGE));
	CHECK_EQ(nh_sct_sc(nh_io(r->h, 1, nvme_cmd_read, 1, r->nsze - 1, 2, a, 2 * r->bs)),
		 SC_G(NVME_SC_LBA_RANGE));
	CHECK_EQ(nh_sct_sc(nh_io(r->h, 1, nvme_cmd_write, 1, 1ull << 40, 1, a, r->bs)),
		 SC_G(NVME_SC_LBA_RANGE));
	nh_rw_cmd(&c, nvme_cmd_read, 1, 0, max_nlb + 1);
	nh_prp(r->h, &c, a, 256 * KIB);
	CHECK_EQ(nh_sct_sc(nh_exec(r->h, 1, &c, NULL)), SC_G(NVME_SC_INVALID_FIELD));
	CHECK_EQ(nh_sct_sc(nh_io(r->h, 1, nvme_cmd_read, 0, 0, 1, a, r->bs)),
		 SC_G(NVME_SC_INVALID_NS));
	CHECK_EQ(nh_sct_sc(nh_io(r->h, 1, nvme_cmd_read, 7, 0, 1, a, r->bs)),
		 SC_G(NVME_SC_INVALID_NS));
	c = (struct nvme_sqe){.opc = 0x7e, .nsid = 1};
	CHECK_EQ(nh_sct_sc(nh_exec(r->h, 1, &c, NULL)), SC_G(NVME_SC_INVALID_OPCODE));
	nh_free(r->h, a);
	nh_free(r->h, b);
}

static void test_rw_512(void)
{
	struct udrv_emu_nvme_opts o = {.size = 64 * MIB};
	struct rig r;

	rig_up(&r, &o, 1, 64);
	CHECK_EQ(r.bs, 512);
	CHECK_EQ(r.nsze, 64 * MIB / 512);
	rw_sizes(&r);
	rig_down(&r);
}

static void test_rw_4096(void)
{
	struct udrv_emu_nvme_opts o = {.size = 64 * MIB, .block_size = 4096};
	struct rig r;

	rig_up(&r, &o, 1, 64);
	CHECK_EQ(r.bs, 4096);
	CHECK_EQ(r.nsze, 64 * MIB / 4096);
	rw_sizes(&r);
	rig_down(&r);
}

/* Data in scattered pieces through SGLs; bit buckets drop what a read does not want. */
static void test_sgl(void)
{
	struct udrv_emu_nvme_opts o = {.size = 64 * MIB};
	struct rig r;
	uint8_t *src, *dst, *segs;
	uint64_t siova, diova, giova;
	struct nvme_sgl_desc *s1, *s2;
	struct nvme_sqe c;

	rig_up(&r, &o, 1, 64);
	src = nh_alloc(r.h, 64 * KIB, &siova);
	dst = nh_alloc(r.h, 64 * KIB, &diova);
	segs = nh_alloc(r.h, 8192, &giova);
	REQUIRE(src && dst && segs);

	/* One data block, both ways (8 blocks from an odd address). */
	fill(src + 3, 1, 10, 8, 512, 1);
	nh_rw_cmd(&c, nvme_cmd_write, 1, 10, 8);
	nh_sgl1(&c, siova + 3, 4096, NVME_SGL_TYPE_DATA);
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	nh_rw_cmd(&c, nvme_cmd_read, 1, 10, 8);
	nh_sgl1(&c, diova + 1, 4096, NVME_SGL_TYPE_DATA);
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	CHECK_EQ(check(dst + 1, 1, 10, 8, 512, 1), 0);

	/* A segment chain: Segment -> [data, data, Last Segment] -> [data, data, data]. The
	 * write gathers 16 blocks from five places in src. */
	fill(dst, 1, 100, 16, 512, 2); /* the expected data, contiguous */
	{
		static const struct {
			size_t src_off, len;
		} piece[5] = {{40000, 1000}, {100, 3000}, {20000, 96}, {8192, 2048}, {30000, 2048}};
		size_t at = 0;

		for (int i = 0; i < 5; i++) {
			memcpy(src + piece[i].src_off, dst + at, piece[i].len);
			at += piece[i].len;
		}
		CHECK_EQ(at, 8192);
		s1 = (struct nvme_sgl_desc *)segs;
		s2 = (struct nvme_sgl_desc *)(segs + 4096 + 256);
		s1[0] = nh_sgl_desc(siova + piece[0].src_off, 1000, NVME_SGL_TYPE_DATA);
		s1[1] = nh_sgl_desc(siova + piece[1].src_off, 3000, NVME_SGL_TYPE_DATA);
		s1[2] = nh_sgl_desc(giova + 4096 + 256, 3 * 16, NVME_SGL_TYPE_LAST_SEGMENT);
		for (int i = 0; i < 3; i++)
			s2[i] = nh_sgl_desc(siova + piece[2 + i].src_off,
					    (uint32_t)piece[2 + i].len, NVME_SGL_TYPE_DATA);
	}
	nh_rw_cmd(&c, nvme_cmd_write, 1, 100, 16);
	nh_sgl1(&c, giova, 3 * 16, NVME_SGL_TYPE_SEGMENT);
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	memset(dst, 0, 64 * KIB);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 100, 16, dst, 8192), 0);
	CHECK_EQ(check(dst, 1, 100, 16, 512, 2), 0);

	/* A read with bit buckets: blocks 100..115 -> keep 1 KiB, drop 5 KiB, keep 2 KiB. */
	memset(dst, 0x77, 64 * KIB);
	s1[0] = nh_sgl_desc(diova + 4096, 1024, NVME_SGL_TYPE_DATA);
	s1[1] = nh_sgl_desc(0, 5120, NVME_SGL_TYPE_BIT_BUCKET);
	s1[2] = nh_sgl_desc(diova + 16384, 2048, NVME_SGL_TYPE_DATA);
	nh_rw_cmd(&c, nvme_cmd_read, 1, 100, 16);
	nh_sgl1(&c, giova, 3 * 16, NVME_SGL_TYPE_LAST_SEGMENT);
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	CHECK_EQ(check(dst + 4096, 1, 100, 2, 512, 2), 0);
	CHECK_EQ(check(dst + 16384, 1, 112, 4, 512, 2), 0);
	CHECK(dst[4095] == 0x77 && dst[4096 + 1024] == 0x77 && dst[16383] == 0x77 &&
	      dst[16384 + 2048] == 0x77);
	/* Bit buckets cannot be written from. */
	nh_rw_cmd(&c, nvme_cmd_write, 1, 100, 16);
	nh_sgl1(&c, giova, 3 * 16, NVME_SGL_TYPE_LAST_SEGMENT);
	CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_SGL_INVALID_TYPE));
	/* An SGL shorter than the transfer. */
	nh_rw_cmd(&c, nvme_cmd_read, 1, 0, 8);
	nh_sgl1(&c, diova, 4096 - 512, NVME_SGL_TYPE_DATA);
	CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_SGL_INVALID_DATA));
	/* A segment descriptor that is not the last of its segment. */
	s1[0] = nh_sgl_desc(giova + 4096 + 256, 16, NVME_SGL_TYPE_LAST_SEGMENT);
	s1[1] = nh_sgl_desc(diova, 4096, NVME_SGL_TYPE_DATA);
	nh_rw_cmd(&c, nvme_cmd_read, 1, 0, 8);
	nh_sgl1(&c, giova, 2 * 16, NVME_SGL_TYPE_SEGMENT);
	CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_SGL_INVALID_COUNT));
	/* A segment that points at itself ends with an error, not a hang. */
	s1[0] = nh_sgl_desc(giova, 16, NVME_SGL_TYPE_SEGMENT);
	nh_rw_cmd(&c, nvme_cmd_read, 1, 0, 8);
	nh_sgl1(&c, giova, 16, NVME_SGL_TYPE_SEGMENT);
	CHECK(nh_exec(r.h, 1, &c, NULL) > 0);
	/* A Segment descriptor inside a last segment; a segment length not a multiple of 16. */
	s2[0] = nh_sgl_desc(diova, 1024, NVME_SGL_TYPE_DATA);
	s2[1] = nh_sgl_desc(giova, 16, NVME_SGL_TYPE_SEGMENT);
	nh_rw_cmd(&c, nvme_cmd_read, 1, 0, 8);
	nh_sgl1(&c, giova + 4096 + 256, 2 * 16, NVME_SGL_TYPE_LAST_SEGMENT);
	CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_SGL_INVALID_LAST));
	nh_rw_cmd(&c, nvme_cmd_read, 1, 0, 8);
	nh_sgl1(&c, giova + 4096 + 256, 24, NVME_SGL_TYPE_LAST_SEGMENT);
	CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_SGL_INVALID_LAST));
	/* Zero-length data descriptors contribute nothing. */
	fill(src, 1, 600, 8, 512, 3);
	s1[0] = nh_sgl_desc(siova, 0, NVME_SGL_TYPE_DATA);
	s1[1] = nh_sgl_desc(siova, 4096, NVME_SGL_TYPE_DATA);
	s1[2] = nh_sgl_desc(siova, 0, NVME_SGL_TYPE_DATA);
	nh_rw_cmd(&c, nvme_cmd_write, 1, 600, 8);
	nh_sgl1(&c, giova, 3 * 16, NVME_SGL_TYPE_LAST_SEGMENT);
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 600, 8, dst, 4096), 0);
	CHECK_EQ(check(dst, 1, 600, 8, 512, 3), 0);
	/* Compare through an SGL; a bit bucket cannot be compared. */
	nh_rw_cmd(&c, nvme_cmd_compare, 1, 600, 8);
	nh_sgl1(&c, siova, 4096, NVME_SGL_TYPE_DATA);
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	nh_rw_cmd(&c, nvme_cmd_compare, 1, 600, 8);
	nh_sgl1(&c, 0, 4096, NVME_SGL_TYPE_BIT_BUCKET);
	CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_SGL_INVALID_TYPE));
	/* A segment in memory the host never mapped. */
	nh_rw_cmd(&c, nvme_cmd_read, 1, 0, 8);
	nh_sgl1(&c, 0xdead00000000ull, 32, NVME_SGL_TYPE_LAST_SEGMENT);
	CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_DATA_XFER_ERROR));
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 10, 8, dst, 4096), 0);
	CHECK_EQ(check(dst, 1, 10, 8, 512, 1), 0);
	rig_down(&r);
}

/* Flush, Write Zeroes, Dataset Management, Compare. */
static void test_other_commands(void)
{
	struct udrv_emu_nvme_opts o = {.size = 64 * MIB};
	struct rig r;
	uint8_t *buf, *rd;
	struct nvme_dsm_range *ranges;
	struct nvme_sqe c;

	rig_up(&r, &o, 1, 64);
	buf = nh_alloc(r.h, 64 * KIB, NULL);
	rd = nh_alloc(r.h, 64 * KIB, NULL);
	ranges = nh_alloc(r.h, 4096, NULL);
	REQUIRE(buf && rd && ranges);

	/* Flush: one namespace, all of them, none. */
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_flush, 1, 0, 1, NULL, 0), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_flush, 0xffffffff, 0, 1, NULL, 0), 0);
	CHECK_EQ(nh_sct_sc(nh_io(r.h, 1, nvme_cmd_flush, 9, 0, 1, NULL, 0)),
		 SC_G(NVME_SC_INVALID_NS));
	/* A write with FUA. */
	fill(buf, 1, 50, 4, 512, 9);
	nh_rw_cmd(&c, nvme_cmd_write, 1, 50, 4);
	c.cdw12 |= 1u << 30;
	nh_prp(r.h, &c, buf, 2048);
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);

	/* Write Zeroes 202..205 among 200..209. */
	fill(buf, 1, 200, 10, 512, 3);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write, 1, 200, 10, buf, 5120), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write_zeroes, 1, 202, 4, NULL, 0), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 200, 10, rd, 5120), 0);
	CHECK_EQ(check(rd, 1, 200, 2, 512, 3), 0);
	CHECK(all_zero(rd + 1024, 2048));
	CHECK_EQ(check(rd + 3072, 1, 206, 4, 512, 3), 0);
	/* With Deallocate; and beyond MDTS, which Write Zeroes is not bound by. */
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write, 1, 200, 10, buf, 5120), 0);
	nh_rw_cmd(&c, nvme_cmd_write_zeroes, 1, 201, 1);
	c.cdw12 |= 1u << 25;
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write_zeroes, 1, 4096, 65536, NULL, 0), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 200, 10, rd, 5120), 0);
	CHECK_EQ(check(rd, 1, 200, 1, 512, 3), 0);
	CHECK(all_zero(rd + 512, 512));
	CHECK_EQ(check(rd + 1024, 1, 202, 8, 512, 3), 0);
	CHECK_EQ(nh_sct_sc(nh_io(r.h, 1, nvme_cmd_write_zeroes, 1, r.nsze - 1, 2, NULL, 0)),
		 SC_G(NVME_SC_LBA_RANGE));

	/* Dataset Management, deallocate 302..304 and 310..311 among 300..315. */
	fill(buf, 1, 300, 16, 512, 4);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write, 1, 300, 16, buf, 8192), 0);
	ranges[0] = (struct nvme_dsm_range){.nlb = 3, .slba = 302};
	ranges[1] = (struct nvme_dsm_range){.nlb = 2, .slba = 310};
	c = (struct nvme_sqe){.opc = nvme_cmd_dsm, .nsid = 1, .cdw10 = 1, .cdw11 = 0};
	nh_prp(r.h, &c, ranges, 2 * sizeof(*ranges));
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0); /* no AD: a hint, data stays */
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 300, 16, rd, 8192), 0);
	CHECK_EQ(check(rd, 1, 300, 16, 512, 4), 0);
	c.cdw11 = NVME_DSM_AD;
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 300, 16, rd, 8192), 0);
	CHECK_EQ(check(rd, 1, 300, 2, 512, 4), 0);
	CHECK(all_zero(rd + 2 * 512, 3 * 512));
	CHECK_EQ(check(rd + 5 * 512, 1, 305, 5, 512, 4), 0);
	CHECK(all_zero(rd + 10 * 512, 2 * 512));
	CHECK_EQ(check(rd + 12 * 512, 1, 312, 4, 512, 4), 0);
	ranges[1] = (struct nvme_dsm_range){.nlb = 2, .slba = r.nsze - 1};
	CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_LBA_RANGE));
	/* Whole 4 KiB pages of a RAM store are released: still zeros, neighbours intact. */
	fill(buf, 1, 1024, 32, 512, 5);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write, 1, 1024, 32, buf, 16384), 0);
	ranges[0] = (struct nvme_dsm_range){.nlb = 16, .slba = 1032};
	c.cdw10 = 0;
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 1024, 32, rd, 16384), 0);
	CHECK_EQ(check(rd, 1, 1024, 8, 512, 5), 0);
	CHECK(all_zero(rd + 4096, 8192));
	CHECK_EQ(check(rd + 12288, 1, 1048, 8, 512, 5), 0);

	/* 256 ranges, the most one command takes. */
	fill(buf, 1, 2048, 64, 512, 8);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write, 1, 2048, 64, buf, 32768), 0);
	for (unsigned i = 0; i < 256; i++)
		ranges[i] = (struct nvme_dsm_range){.nlb = i % 2, .slba = 2048 + i / 4};
	c = (struct nvme_sqe){.opc = nvme_cmd_dsm, .nsid = 1, .cdw10 = 255, .cdw11 = NVME_DSM_AD};
	nh_prp(r.h, &c, ranges, 4096);
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 2048, 64, rd, 32768), 0);
	CHECK(all_zero(rd, 64 * 512));
	memset(ranges, 0, 4096);

	/* Compare: equal, then one byte off. */
	fill(buf, 1, 400, 4, 512, 6);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write, 1, 400, 4, buf, 2048), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_compare, 1, 400, 4, buf, 2048), 0);
	buf[1500] ^= 1;
	CHECK_EQ(nh_sct_sc(nh_io(r.h, 1, nvme_cmd_compare, 1, 400, 4, buf, 2048)),
		 SC_M(NVME_SC_COMPARE_FAILED));
	CHECK_EQ(nh_sct_sc(nh_io(r.h, 1, nvme_cmd_compare, 1, r.nsze, 1, buf, 512)),
		 SC_G(NVME_SC_LBA_RANGE));
	/* Compare against deallocated blocks: zeros compare equal. */
	memset(buf, 0, 1024);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_compare, 1, 302, 2, buf, 1024), 0);
	rig_down(&r);
}

/* Bad data pointers complete with an error; the controller keeps working. */
static void test_bad_pointers(void)
{
	struct udrv_emu_nvme_opts o = {.size = 64 * MIB};
	struct udrv_emu_nvme_stats st;
	struct rig r;
	uint8_t *buf, *lst;
	uint64_t liova;
	struct nvme_sqe c;
	uint32_t csts;

	rig_up(&r, &o, 1, 64);
	buf = nh_alloc(r.h, 64 * KIB, NULL);
	lst = nh_alloc(r.h, 4096, &liova);
	REQUIRE(buf && lst);
	for (int opc = nvme_cmd_write; opc <= nvme_cmd_read; opc++) {
		/* PRP1 unmapped. */
		nh_rw_cmd(&c, (uint8_t)opc, 1, 0, 1);
		c.prp1 = 0xdead00000000ull;
		CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_DATA_XFER_ERROR));
		/* PRP2 (a data page) unmapped. */
		nh_rw_cmd(&c, (uint8_t)opc, 1, 0, 16);
		nh_prp(r.h, &c, buf, 8192);
		c.prp2 = 0xbeef000000ull;
		CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_DATA_XFER_ERROR));
		/* The PRP list unmapped. */
		nh_rw_cmd(&c, (uint8_t)opc, 1, 0, 32);
		nh_prp(r.h, &c, buf, 16384);
		c.prp2 = 0xbeef000000ull;
		CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_DATA_XFER_ERROR));
		/* An entry of the list unmapped. */
		memset(lst, 0, 4096);
		((uint64_t *)lst)[0] = nh_iova(r.h, buf) + 4096;
		((uint64_t *)lst)[1] = 0xfeed0000000ull;
		((uint64_t *)lst)[2] = nh_iova(r.h, buf) + 3 * 4096;
		nh_rw_cmd(&c, (uint8_t)opc, 1, 0, 32);
		c.prp1 = nh_iova(r.h, buf);
		c.prp2 = liova;
		CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_DATA_XFER_ERROR));
		/* Offsets: PRP1 not dword aligned; a list entry not page aligned. */
		nh_rw_cmd(&c, (uint8_t)opc, 1, 0, 1);
		c.prp1 = nh_iova(r.h, buf) + 2;
		CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_PRP_INVALID_OFFSET));
		((uint64_t *)lst)[1] = nh_iova(r.h, buf) + 2 * 4096 + 8;
		nh_rw_cmd(&c, (uint8_t)opc, 1, 0, 32);
		c.prp1 = nh_iova(r.h, buf);
		c.prp2 = liova;
		CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_PRP_INVALID_OFFSET));
		/* A buffer that runs off the end of the host's mapping. */
		nh_rw_cmd(&c, (uint8_t)opc, 1, 0, 1);
		c.prp1 = 0xfffffffffffff000ull;
		CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_DATA_XFER_ERROR));
		/* PSDT 11b is reserved. */
		nh_rw_cmd(&c, (uint8_t)opc, 1, 0, 1);
		nh_prp(r.h, &c, buf, 512);
		c.flags = 0xc0;
		CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_INVALID_FIELD));
	}
	/* Still healthy. */
	fill(buf, 1, 0, 8, 512, 1);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write, 1, 0, 8, buf, 4096), 0);
	memset(buf, 0, 4096);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 0, 8, buf, 4096), 0);
	CHECK_EQ(check(buf, 1, 0, 8, 512, 1), 0);
	CHECK_EQ(nh_read32(r.h, NVME_REG_CSTS, &csts), 0);
	CHECK_EQ(csts, NH_RDY);
	CHECK_EQ(udrv_emu_nvme_stats(r.e, &st), 0);
	CHECK_EQ(st.bad_dptr, 16);
	rig_down(&r);
}

/* Three namespaces keep their own blocks. */
static void test_namespaces(void)
{
	struct udrv_emu_nvme_opts o = {.size = 3 * 16 * MIB, .namespaces = 3};
	struct rig r;
	uint8_t *buf;
	uint64_t last = 16 * MIB / 512 - 1;

	rig_up(&r, &o, 2, 32);
	buf = nh_alloc(r.h, 64 * KIB, NULL);
	REQUIRE(buf);
	CHECK_EQ(r.nsze, 16 * MIB / 512);
	for (uint32_t ns = 1; ns <= 3; ns++) {
		fill(buf, ns, 0, 8, 512, 0);
		CHECK_EQ(nh_io(r.h, ns == 2 ? 2 : 1, nvme_cmd_write, ns, 0, 8, buf, 4096), 0);
		fill(buf, ns, last, 1, 512, 0);
		CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write, ns, last, 1, buf, 512), 0);
	}
	for (uint32_t ns = 1; ns <= 3; ns++) {
		memset(buf, 0, 4096);
		CHECK_EQ(nh_io(r.h, ns == 3 ? 2 : 1, nvme_cmd_read, ns, 0, 8, buf, 4096), 0);
		CHECK_EQ(check(buf, ns, 0, 8, 512, 0), 0);
		CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, ns, last, 1, buf, 512), 0);
		CHECK_EQ(check(buf, ns, last, 1, 512, 0), 0);
	}
	/* Zeroing one namespace leaves the others. */
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write_zeroes, 2, 0, 8, NULL, 0), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 2, 0, 8, buf, 4096), 0);
	CHECK(all_zero(buf, 4096));
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 0, 8, buf, 4096), 0);
	CHECK_EQ(check(buf, 1, 0, 8, 512, 0), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 3, 0, 8, buf, 4096), 0);
	CHECK_EQ(check(buf, 3, 0, 8, 512, 0), 0);
	/* A transfer crossing the end of namespace 1 does not reach namespace 2. */
	CHECK_EQ(nh_sct_sc(nh_io(r.h, 1, nvme_cmd_read, 1, last, 2, buf, 1024)),
		 SC_G(NVME_SC_LBA_RANGE));
	rig_down(&r);
}

/* The data survives the controller: destroy, create again on the same file. */
static void test_file_backing(void)
{
	struct udrv_emu_nvme_opts o = {.size = 16 * MIB};
	char file[128];
	struct rig r;
	uint8_t *buf, raw[512];
	uint64_t lbas[3] = {0, 777, 16 * MIB / 512 - 8};
	struct stat sb;
	int fd;

	nh_tmppath(file, sizeof(file), "backing");
	o.backing = file;
	rig_up(&r, &o, 1, 32);
	buf = nh_alloc(r.h, 4096, NULL);
	REQUIRE(buf);
	for (int i = 0; i < 3; i++) {
		fill(buf, 1, lbas[i], 8, 512, 11);
		CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write, 1, lbas[i], 8, buf, 4096), 0);
	}
	rig_down(&r);

	/* The file is the disk, byte for byte. */
	CHECK_EQ(stat(file, &sb), 0);
	CHECK_EQ(sb.st_size, 16 * MIB);
	fd = open(file, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, raw, 512, (off_t)(777 + 3) * 512), 512);
	CHECK_EQ(check(raw, 1, 780, 1, 512, 11), 0);
	close(fd);

	/* Size 0: the file's. */
	o = (struct udrv_emu_nvme_opts){.backing = file};
	rig_up(&r, &o, 1, 32);
	CHECK_EQ(r.nsze, 16 * MIB / 512);
	buf = nh_alloc(r.h, 4096, NULL);
	REQUIRE(buf);
	for (int i = 0; i < 3; i++) {
		memset(buf, 0, 4096);
		CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, lbas[i], 8, buf, 4096), 0);
		CHECK_EQ(check(buf, 1, lbas[i], 8, 512, 11), 0);
	}
	/* Write Zeroes and DSM on a file. */
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_write_zeroes, 1, 777, 8, NULL, 0), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 777, 8, buf, 4096), 0);
	CHECK(all_zero(buf, 4096));
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 0, 8, buf, 4096), 0);
	CHECK_EQ(check(buf, 1, 0, 8, 512, 11), 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_flush, 1, 0, 1, NULL, 0), 0);
	rig_down(&r);
}

/* io_uring: many commands in flight on several queues at once, all checked. */
static void test_io_uring(void)
{
	enum { QP = 4, DEPTH = 48, NLB = 16, ROUNDS = 3 };
	struct udrv_emu_nvme_opts o = {.size = 64 * MIB, .io_uring = true, .queues = QP};
	char file[128];
	struct rig r;
	uint8_t *bufs;
	size_t bsz = NLB * 512;
	unsigned bad = 0, done = 0, want = 0;

	nh_tmppath(file, sizeof(file), "uring");
	o.backing = file;
	rig_up(&r, &o, QP, 64);
	bufs = nh_alloc(r.h, (size_t)QP * DEPTH * bsz, NULL);
	REQUIRE(bufs);
	for (unsigned round = 0; round < ROUNDS; round++) {
		for (int pass = 0; pass < 2; pass++) { /* write all, then read all */
			uint8_t opc = pass ? nvme_cmd_read : nvme_cmd_write;
			unsigned got = 0;
			double end;

			for (unsigned q = 0; q < QP; q++)
				for (unsigned i = 0; i < DEPTH; i++) {
					uint8_t *b = bufs + ((size_t)q * DEPTH + i) * bsz;
					uint64_t lba = ((uint64_t)q * DEPTH + i) * NLB * 7 + round;
					struct nvme_sqe c;

					if (pass)
						memset(b, 0, bsz);
					else
						fill(b, 1, lba, NLB, 512, round);
					nh_rw_cmd(&c, opc, 1, lba, NLB);
					nh_prp(r.h, &c, b, bsz);
					CHECK(nh_submit(r.h, (uint16_t)(q + 1), &c) > 0);
					want++;
				}
			end = nh_now() + 20;
			while (got < QP * DEPTH && nh_now() < end) {
				struct nvme_cqe e;
				int n = 0;

				for (unsigned q = 1; q <= QP; q++)
					while (nh_poll(r.h, (uint16_t)q, &e)) {
						bad += NVME_CQE_STATUS(&e) != 0;
						got++;
						n++;
					}
				if (!n)
					usleep(50);
			}
			done += got;
			CHECK_EQ(got, QP * DEPTH);
		}
		for (unsigned q = 0; q < QP; q++)
			for (unsigned i = 0; i < DEPTH; i++) {
				uint64_t lba = ((uint64_t)q * DEPTH + i) * NLB * 7 + round;

				bad += check(bufs + ((size_t)q * DEPTH + i) * bsz, 1, lba, NLB, 512,
					     round) != 0;
			}
	}
	CHECK_EQ(done, want);
	CHECK_EQ(bad, 0);
	rig_down(&r);
}

/* MSI-X: a completion on an I/O queue created with interrupts enabled signals its
 * vector's eventfd. */
static void test_msix(void)
{
	struct udrv_emu_nvme_opts o = {.size = 16 * MIB, .queues = 2};
	struct rig r;
	uint8_t *buf;
	int fds[2];
	uint64_t n;
	struct pollfd p;

	rig_up(&r, &o, 0, 0);
	buf = nh_alloc(r.h, 4096, NULL);
	REQUIRE(buf);
	fds[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fds[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(fds[0] >= 0 && fds[1] >= 0);
	CHECK_EQ(udrv_device_irq_enable(r.h->dev, UDRV_IRQ_MSIX, 0, 2, fds), 0);
	CHECK_EQ(nh_create_cq(r.h, 1, 16, true), 0);
	CHECK_EQ(nh_create_sq(r.h, 1, 1, 16), 0);
	/* Drain what the admin commands signalled on vector 0. */
	while (read(fds[0], &n, sizeof(n)) == sizeof(n))
		;
	CHECK(read(fds[1], &n, sizeof(n)) < 0);
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 0, 1, buf, 512), 0);
	p = (struct pollfd){.fd = fds[1], .events = POLLIN};
	CHECK_EQ(poll(&p, 1, 1000), 1);
	CHECK_EQ(read(fds[1], &n, sizeof(n)), sizeof(n));
	CHECK(n >= 1);
	/* Masked in the MSI-X table (BAR4, entry 1's vector control): no interrupt, the
	 * pending bit (BAR5) is set instead; unmasking delivers it. */
	{
		uint32_t ctl = 1;
		uint64_t pba = 0;

		CHECK_EQ(udrv_device_region_write(r.h->dev, 4, 16 + 12, &ctl, 4), 4);
		CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 0, 1, buf, 512), 0);
		CHECK_EQ(poll(&p, 1, 100), 0);
		CHECK_EQ(udrv_device_region_read(r.h->dev, 5, 0, &pba, 8), 8);
		CHECK(pba & 2);
		ctl = 0;
		CHECK_EQ(udrv_device_region_write(r.h->dev, 4, 16 + 12, &ctl, 4), 4);
		CHECK_EQ(poll(&p, 1, 1000), 1);
		CHECK_EQ(read(fds[1], &n, sizeof(n)), sizeof(n));
		CHECK_EQ(udrv_device_region_read(r.h->dev, 5, 0, &pba, 8), 8);
		CHECK_EQ(pba & 2, 0);
	}
	/* A CQ created without IEN never interrupts. */
	CHECK_EQ(nh_create_cq(r.h, 2, 16, false), 0);
	CHECK_EQ(nh_create_sq(r.h, 2, 2, 16), 0);
	CHECK_EQ(nh_io(r.h, 2, nvme_cmd_read, 1, 0, 1, buf, 512), 0);
	p.fd = fds[0];
	while (read(fds[0], &n, sizeof(n)) == sizeof(n)) /* the admin commands' */
		;
	CHECK_EQ(nh_io(r.h, 2, nvme_cmd_read, 1, 0, 1, buf, 512), 0);
	CHECK_EQ(poll(&p, 1, 50), 0);
	p.fd = fds[1];
	CHECK_EQ(poll(&p, 1, 0), 0);
	udrv_device_irq_disable(r.h->dev, UDRV_IRQ_MSIX);
	close(fds[0]);
	close(fds[1]);
	rig_down(&r);
}

/* A CQ smaller than its SQ: the controller never overfills it; completions resume as the
 * host moves the head. Two SQs share one CQ. */
static void test_cq_backpressure(void)
{
	struct udrv_emu_nvme_opts o = {.size = 16 * MIB, .queues = 2};
	struct rig r;
	uint8_t *buf;
	struct nvme_cqe e;
	struct nh_queue *cq;
	unsigned got = 0, seen[40] = {0};

	rig_up(&r, &o, 0, 0);
	buf = nh_alloc(r.h, 40 * 512, NULL);
	REQUIRE(buf);
	CHECK_EQ(nh_create_cq(r.h, 1, 4, false), 0);
	CHECK_EQ(nh_create_sq(r.h, 1, 1, 32), 0);
	CHECK_EQ(nh_create_sq(r.h, 2, 1, 32), 0);
	for (unsigned i = 0; i < 40; i++) {
		struct nvme_sqe c;

		fill(buf + i * 512, 1, i, 1, 512, 1);
		nh_rw_cmd(&c, nvme_cmd_write, 1, i, 1);
		nh_prp(r.h, &c, buf + i * 512, 512);
		c.cid = (uint16_t)i;
		CHECK_EQ(nh_submit_raw(r.h, (uint16_t)(1 + i % 2), &c, true), 0);
	}
	/* Not consumed: at most 3 of 4 entries are filled; the 4th stays untouched. */
	nh_sleep_ms(200);
	cq = &r.h->q[1];
	CHECK_EQ(cq->cq[3].status, 0);
	CHECK(cq->cq[0].status & 1);
	CHECK(cq->cq[2].status & 1);
	for (double end = nh_now() + 10; got < 40 && nh_now() < end;) {
		if (nh_poll(r.h, 1, &e)) {
			CHECK_EQ(NVME_CQE_STATUS(&e), 0);
			CHECK(e.cid < 40 && e.sq_id == 1 + e.cid % 2);
			if (e.cid < 40)
				seen[e.cid]++;
			got++;
		} else {
			usleep(50);
		}
	}
	CHECK_EQ(got, 40);
	for (unsigned i = 0; i < 40; i++)
		CHECK_EQ(seen[i], 1);
	memset(buf, 0, 40 * 512);
	CHECK_EQ(nh_io(r.h, 2, nvme_cmd_read, 1, 0, 40, buf, 40 * 512), 0);
	CHECK_EQ(check(buf, 1, 0, 40, 512, 1), 0);
	rig_down(&r);
}

/* The most queues there are (64 pairs, vectors 0..64), sizes from 2 up, all used at once. */
static void test_many_queues(void)
{
	enum { QP = UDRV_EMU_NVME_MAX_QUEUES };
	struct udrv_emu_nvme_opts o = {.size = 16 * MIB, .queues = QP, .max_entries = 128};
	struct rig r;
	uint8_t *buf;
	unsigned got = 0;
	uint32_t dw0;

	rig_up(&r, &o, 0, 0);
	CHECK_EQ(udrv_device_irq_count(r.h->dev, UDRV_IRQ_MSIX), QP + 1);
	CHECK_EQ(nh_get_features(r.h, NVME_FEAT_FID_NUM_QUEUES, 0, 0, &dw0), 0);
	CHECK_EQ(dw0, (QP - 1) << 16 | (QP - 1));
	buf = nh_alloc(r.h, QP * 4096, NULL);
	REQUIRE(buf);
	for (uint16_t q = 1; q <= QP; q++) {
		CHECK_EQ(nh_create_cq(r.h, q, 2 + q, true), 0);
		CHECK_EQ(nh_create_sq(r.h, q, q, 2 + (QP - q)), 0);
	}
	CHECK_EQ(nh_sct_sc(nh_create_cq(r.h, QP + 1, 8, false)),
		 NVME_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID));
	/* Vector 64 is the last one; interrupt config for it exists. */
	CHECK_EQ(nh_get_features(r.h, NVME_FEAT_FID_IRQ_CONFIG, 0, QP, &dw0), 0);
	CHECK_EQ(dw0 & 0xffff, QP);
	CHECK_EQ(nh_set_features(r.h, NVME_FEAT_FID_IRQ_CONFIG, 1u << 16 | QP, NULL), 0);
	CHECK_EQ(nh_sct_sc(nh_set_features(r.h, NVME_FEAT_FID_IRQ_CONFIG, QP + 1, NULL)),
		 SC_G(NVME_SC_INVALID_FIELD));
	CHECK_EQ(nh_set_features(r.h, NVME_FEAT_FID_IRQ_COALESCE, 0x0104, NULL), 0);
	for (uint16_t q = 1; q <= QP; q++) {
		struct nvme_sqe c;

		fill(buf + (q - 1) * 4096, 1, q * 8u, 8, 512, 2);
		nh_rw_cmd(&c, nvme_cmd_write, 1, q * 8u, 8);
		nh_prp(r.h, &c, buf + (q - 1) * 4096, 4096);
		CHECK(nh_submit(r.h, q, &c) > 0);
	}
	for (double end = nh_now() + 10; got < QP && nh_now() < end;) {
		struct nvme_cqe e;
		int n = 0;

		for (uint16_t q = 1; q <= QP; q++)
			while (nh_poll(r.h, q, &e)) {
				CHECK_EQ(NVME_CQE_STATUS(&e), 0);
				got++;
				n++;
			}
		if (!n)
			usleep(50);
	}
	CHECK_EQ(got, QP);
	memset(buf, 0, QP * 4096);
	CHECK_EQ(nh_io(r.h, QP, nvme_cmd_read, 1, 8, 64, buf, 32 * KIB), 0);
	CHECK_EQ(check(buf, 1, 8, 64, 512, 2), 0);
	for (uint16_t q = QP; q >= 1; q--) {
		CHECK_EQ(nh_delete_sq(r.h, q), 0);
		CHECK_EQ(nh_delete_cq(r.h, q), 0);
	}
	rig_down(&r);
}

/* One transfer over two DMA chunks of the host (two vfio-user windows): a PRP list and an
 * SGL with pages from both, and, when the chunks happen to be IOVA-adjacent, a segment that
 * crosses from one window into the other. */
static void two_chunks(bool uring)
{
	struct udrv_emu_nvme_opts o = {.size = 16 * MIB, .io_uring = uring};
	char file[128];
	struct rig r;
	struct udrv_dma_mem *m[2];
	uint8_t *va[2], *sg;
	uint64_t iova[2], sgiova;
	struct nvme_sqe c;
	size_t sz = 2 * MIB;

	if (uring) {
		nh_tmppath(file, sizeof(file), "uring2");
		o.backing = file;
	}
	rig_up(&r, &o, 1, 16);
	for (int i = 0; i < 2; i++) {
		m[i] = udrv_dma_mem_alloc(sz, UDRV_DMA_NOHUGE);
		REQUIRE(m[i]);
		REQUIRE(udrv_dma_domain_add(r.h->dom, m[i]) == 0);
		va[i] = udrv_dma_mem_va(m[i]);
		iova[i] = nh_iova(r.h, va[i]);
	}
	sg = nh_alloc(r.h, 4096, &sgiova);
	REQUIRE(sg);
	/* 16 KiB: the last 8 KiB of chunk 0, the first 8 KiB of chunk 1 (as a PRP list). */
	fill(va[0] + sz - 8192, 1, 64, 16, 512, 4);
	fill(va[1], 1, 80, 16, 512, 4);
	nh_rw_cmd(&c, nvme_cmd_write, 1, 64, 32);
	c.prp1 = iova[0] + sz - 8192;
	((uint64_t *)sg)[0] = iova[0] + sz - 4096;
	((uint64_t *)sg)[1] = iova[1];
	((uint64_t *)sg)[2] = iova[1] + 4096;
	c.prp2 = sgiova;
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	memset(va[0] + sz - 8192, 0, 8192);
	memset(va[1], 0, 8192);
	nh_rw_cmd(&c, nvme_cmd_read, 1, 64, 32);
	c.prp1 = iova[0] + sz - 8192;
	c.prp2 = sgiova;
	CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
	CHECK_EQ(check(va[0] + sz - 8192, 1, 64, 16, 512, 4), 0);
	CHECK_EQ(check(va[1], 1, 80, 16, 512, 4), 0);
	/* An SGL data block across the seam, if there is one. */
	if (iova[1] == iova[0] + sz) {
		fprintf(stderr,
			"two chunks are IOVA-adjacent: testing a window-crossing segment\n");
		memset(va[0] + sz - 8192, 0, 8192);
		memset(va[1], 0, 8192);
		nh_rw_cmd(&c, nvme_cmd_read, 1, 64, 32);
		nh_sgl1(&c, iova[0] + sz - 8192, 16384, NVME_SGL_TYPE_DATA);
		CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
		CHECK_EQ(check(va[0] + sz - 8192, 1, 64, 16, 512, 4), 0);
		CHECK_EQ(check(va[1], 1, 80, 16, 512, 4), 0);
		nh_rw_cmd(&c, nvme_cmd_compare, 1, 64, 32);
		nh_sgl1(&c, iova[0] + sz - 8192, 16384, NVME_SGL_TYPE_DATA);
		CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
		/* (The chunks are adjacent as IOVAs, not as virtual addresses.) */
		fill(va[0] + sz - 4096, 1, 200, 8, 512, 5);
		fill(va[1], 1, 208, 8, 512, 5);
		nh_rw_cmd(&c, nvme_cmd_write, 1, 200, 16);
		nh_sgl1(&c, iova[0] + sz - 4096, 8192, NVME_SGL_TYPE_DATA);
		CHECK_EQ(nh_exec(r.h, 1, &c, NULL), 0);
		memset(va[1], 0, 8192);
		CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 200, 16, va[1], 8192), 0);
		CHECK_EQ(check(va[1], 1, 200, 16, 512, 5), 0);
	}
	/* Then one chunk goes away: pointers into it fail, the rest works. */
	CHECK_EQ(udrv_dma_domain_remove(r.h->dom, m[1]), 0);
	nh_rw_cmd(&c, nvme_cmd_read, 1, 64, 32);
	c.prp1 = iova[0] + sz - 8192;
	c.prp2 = sgiova;
	CHECK_EQ(nh_sct_sc(nh_exec(r.h, 1, &c, NULL)), SC_G(NVME_SC_DATA_XFER_ERROR));
	CHECK_EQ(nh_io(r.h, 1, nvme_cmd_read, 1, 64, 16, va[0], 8192), 0);
	CHECK_EQ(check(va[0], 1, 64, 16, 512, 4), 0);
	CHECK_EQ(udrv_dma_domain_remove(r.h->dom, m[0]), 0);
	udrv_dma_mem_free(m[0]);
	udrv_dma_mem_free(m[1]);
	rig_down(&r);
}

static void test_two_chunks(void)
{
	two_chunks(false);
	two_chunks(true); /* io_uring: the bounce buffer through the ring */
}

int main(void)
{
	double t0 = nh_now();

	udrv_log_set_level(UDRV_LOG_ERR);
	signal(SIGPIPE, SIG_IGN);
	alarm(120);
	RUN(test_rw_512);
	RUN(test_rw_4096);
	RUN(test_sgl);
	RUN(test_other_commands);
	RUN(test_bad_pointers);
	RUN(test_namespaces);
	RUN(test_file_backing);
	RUN(test_io_uring);
	RUN(test_msix);
	RUN(test_two_chunks);
	RUN(test_cq_backpressure);
	RUN(test_many_queues);
	fprintf(stderr, "%.1f s\n", nh_now() - t0);
	return test_done();
}
