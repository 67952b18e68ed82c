/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of src/emu/nvme/dptr.c: PRP (NVMe 1.4, 4.3) and SGL (4.4) resolution against a
 * fake host memory of 1 MiB at iova MEM_BASE behind a read callback that records what it was
 * asked to read.
 *
 * Link with src/emu/nvme/dptr.c, src/core/log.c and tests/fake_dma_mem.c only (not libudrv):
 * the last has stand-ins for udrv_vfu_dma_ptr/read/write over the same fake memory, so
 * nvemu_dptr_iov() and nvemu_dptr_copy() are exercised too.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "emu/nvme/nvme_emu.h"
#include "fake_dma_mem.h"
#include "test.h"

#define MEM_BASE 0x100000ull
#define MEM_SIZE 0x100000ull
#define PG	 4096ull

static uint8_t mem[MEM_SIZE];
static unsigned nreads;
static uint64_t bytes_read;
static bool read_outside; /* a read asked for bytes outside the fake memory */

static int fake_read(void *ctx, uint64_t iova, void *buf, size_t len)
{
	(void)ctx;
	nreads++;
	bytes_read += len;
	if (!fake_mem_has(iova, len)) {
		read_outside = true;
		return -EFAULT;
	}
	memcpy(buf, mem + (iova - MEM_BASE), len);
	return 0;
}

static struct nvemu_dptr d;

static void reset(void)
{
	memset(mem, 0, sizeof(mem));
	nreads = 0;
	bytes_read = 0;
	read_outside = false;
}

static void put64(uint64_t iova, uint64_t v)
{
	REQUIRE(fake_mem_has(iova, 8));
	memcpy(mem + (iova - MEM_BASE), &v, 8);
}

static void put_desc(uint64_t iova, uint64_t addr, uint32_t len, uint8_t type, uint8_t sub)
{
	struct nvme_sgl_desc sd = {.addr = addr, .len = len, .id = (uint8_t)(type << 4 | sub)};

	REQUIRE(fake_mem_has(iova, 16));
	memcpy(mem + (iova - MEM_BASE), &sd, 16);
}

static struct nvme_sqe prp_cmd(uint64_t prp1, uint64_t prp2)
{
	struct nvme_sqe c = {.opc = 0x02, .flags = NVME_CMD_PSDT_PRP};

	c.prp1 = prp1;
	c.prp2 = prp2;
	return c;
}

static struct nvme_sqe sgl_cmd(uint64_t addr, uint32_t len, uint8_t type, uint8_t sub)
{
	struct nvme_sqe c = {.opc = 0x02, .flags = NVME_CMD_PSDT_SGL};

	c.sgl.addr = addr;
	c.sgl.len = len;
	c.sgl.id = (uint8_t)(type << 4 | sub);
	return c;
}

static uint16_t prp(uint64_t prp1, uint64_t prp2, uint64_t len)
{
	struct nvme_sqe c = prp_cmd(prp1, prp2);

	return nvemu_dptr_resolve(&c, len, true, fake_read, NULL, &d);
}

#define GS(sc) NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_##sc)

static void check_seg(unsigned i, uint64_t iova, uint32_t len, bool bucket)
{
	REQUIRE(i < d.n);
	CHECK_EQ(d.seg[i].iova, iova);
	CHECK_EQ(d.seg[i].len, len);
	CHECK_EQ(d.seg[i].bucket, bucket);
}

static void test_prp_single_page(void)
{
	reset();
	CHECK_EQ(prp(MEM_BASE, 0xdead, PG), 0); /* PRP2 ignored */
	CHECK_EQ(d.n, 1);
	CHECK_EQ(d.len, PG);
	check_seg(0, MEM_BASE, PG, false);
	CHECK_EQ(prp(MEM_BASE + 0x200, 0, 512), 0);
	CHECK_EQ(d.n, 1);
	check_seg(0, MEM_BASE + 0x200, 512, false);
	CHECK_EQ(prp(MEM_BASE + 0xffc, 0, 4), 0); /* last dword of the page */
	check_seg(0, MEM_BASE + 0xffc, 4, false);
	CHECK_EQ(nreads, 0);
}

static void test_prp_two_pages(void)
{
	reset();
	CHECK_EQ(prp(MEM_BASE, MEM_BASE + 0x10000, 2 * PG), 0);
	CHECK_EQ(d.n, 2);
	CHECK_EQ(d.len, 2 * PG);
	check_seg(0, MEM_BASE, PG, false);
	check_seg(1, MEM_BASE + 0x10000, PG, false);
	/* physically adjacent pages merge */
	CHECK_EQ(prp(MEM_BASE, MEM_BASE + PG, 2 * PG), 0);
	CHECK_EQ(d.n, 1);
	check_seg(0, MEM_BASE, 2 * PG, false);
	/* a second page needing only a few bytes */
	CHECK_EQ(prp(MEM_BASE, MEM_BASE + 0x10000, PG + 8), 0);
	check_seg(1, MEM_BASE + 0x10000, 8, false);
	CHECK_EQ(nreads, 0);
}

static void test_prp_unaligned_prp1(void)
{
	reset();
	CHECK_EQ(prp(MEM_BASE + 0x800, MEM_BASE + 0x20000, PG), 0);
	CHECK_EQ(d.n, 2);
	check_seg(0, MEM_BASE + 0x800, 0x800, false);
	check_seg(1, MEM_BASE + 0x20000, 0x800, false);
	/* offset PRP1 + one full page + a bit needs a list */
	put64(MEM_BASE + 0x30000, MEM_BASE + 0x40000);
	put64(MEM_BASE + 0x30008, MEM_BASE + 0x50000);
	CHECK_EQ(prp(MEM_BASE + 0x800, MEM_BASE + 0x30000, 2 * PG), 0);
	CHECK_EQ(d.n, 3);
	check_seg(0, MEM_BASE + 0x800, 0x800, false);
	check_seg(1, MEM_BASE + 0x40000, PG, false);
	check_seg(2, MEM_BASE + 0x50000, 0x800, false);
	CHECK_EQ(bytes_read, 16);
}

static void test_prp_list(void)
{
	uint64_t list = MEM_BASE + 0x10000;

	reset();
	for (unsigned i = 0; i < 3; i++)
		put64(list + 8 * i, MEM_BASE + 0x80000 + 0x2000 * i);
	put64(list + 24, 0x1234); /* never read */
	CHECK_EQ(prp(MEM_BASE, list, 4 * PG), 0);
	CHECK_EQ(d.n, 4);
	CHECK_EQ(d.len, 4 * PG);
	check_seg(0, MEM_BASE, PG, false);
	for (unsigned i = 0; i < 3; i++)
		check_seg(1 + i, MEM_BASE + 0x80000 + 0x2000 * i, PG, false);
	CHECK_EQ(bytes_read, 24);
	/* the last page partially */
	CHECK_EQ(prp(MEM_BASE, list, 3 * PG + 100), 0);
	check_seg(3, MEM_BASE + 0x84000, 100, false);

	/* the largest transfer: 64 list entries after an offset PRP1, all adjacent -> merged */
	for (unsigned i = 0; i < 64; i++)
		put64(list + 8 * i, MEM_BASE + 0x41000 + PG * i);
	bytes_read = 0;
	CHECK_EQ(prp(MEM_BASE + 0x40800, list, NVEMU_MAX_XFER), 0);
	CHECK_EQ(d.n, 1);
	check_seg(0, MEM_BASE + 0x40800, NVEMU_MAX_XFER, false);
	CHECK_EQ(bytes_read, 64 * 8);
}

static void test_prp_list_offset(void)
{
	uint64_t list = MEM_BASE + 0x10f00;

	reset();
	put64(list, MEM_BASE + 0x30000);
	put64(list + 8, MEM_BASE + 0x20000);
	CHECK_EQ(prp(MEM_BASE + 0xf00, list, 0x100 + 2 * PG), 0);
	CHECK_EQ(d.n, 3);
	check_seg(0, MEM_BASE + 0xf00, 0x100, false);
	check_seg(1, MEM_BASE + 0x30000, PG, false);
	check_seg(2, MEM_BASE + 0x20000, PG, false);
	CHECK_EQ(bytes_read, 16);
}

static void test_prp_list_chain(void)
{
	uint64_t list = MEM_BASE + 0x10ff0; /* room for 2 entries */
	uint64_t next = MEM_BASE + 0x70000;

	reset();
	put64(list, MEM_BASE + 0x20000);
	put64(list + 8, next); /* 4 entries needed: the last slot chains */
	put64(next, MEM_BASE + 0x22000);
	put64(next + 8, MEM_BASE + 0x24000);
	put64(next + 16, MEM_BASE + 0x26000);
	CHECK_EQ(prp(MEM_BASE, list, 5 * PG), 0);
	CHECK_EQ(d.n, 5);
	check_seg(0, MEM_BASE, PG, false);
	check_seg(1, MEM_BASE + 0x20000, PG, false);
	check_seg(2, MEM_BASE + 0x22000, PG, false);
	check_seg(3, MEM_BASE + 0x24000, PG, false);
	check_seg(4, MEM_BASE + 0x26000, PG, false);
	CHECK_EQ(nreads, 2);
	CHECK_EQ(bytes_read, 16 + 24);

	/* exactly as many entries as the page holds: the last slot is data, not a pointer */
	reset();
	put64(list, MEM_BASE + 0x20000);
	put64(list + 8, MEM_BASE + 0x28000);
	CHECK_EQ(prp(MEM_BASE, list, 3 * PG), 0);
	CHECK_EQ(d.n, 3);
	check_seg(2, MEM_BASE + 0x28000, PG, false);
	CHECK_EQ(bytes_read, 16);

	/* a list starting at the page's last entry is only a pointer */
	reset();
	put64(MEM_BASE + 0x10ff8, next);
	put64(next, MEM_BASE + 0x20000);
	put64(next + 8, MEM_BASE + 0x30000);
	CHECK_EQ(prp(MEM_BASE, MEM_BASE + 0x10ff8, 3 * PG), 0);
	CHECK_EQ(d.n, 3);
	check_seg(2, MEM_BASE + 0x30000, PG, false);

	/* chained pointer not page aligned */
	reset();
	put64(list, MEM_BASE + 0x20000);
	put64(list + 8, next + 8);
	CHECK_EQ(prp(MEM_BASE, list, 5 * PG), GS(PRP_INVALID_OFFSET));
	CHECK_EQ(d.n, 0);
	CHECK_EQ(d.len, 0);
}

static void test_prp_bad_offsets(void)
{
	uint64_t list = MEM_BASE + 0x10000;

	reset();
	CHECK_EQ(prp(MEM_BASE + 2, 0, 16), GS(PRP_INVALID_OFFSET));
	CHECK_EQ(prp(MEM_BASE + 1, 0, 16), GS(PRP_INVALID_OFFSET));
	CHECK_EQ(prp(MEM_BASE, MEM_BASE + 0x20004, 2 * PG), GS(PRP_INVALID_OFFSET));
	CHECK_EQ(prp(MEM_BASE, MEM_BASE + 0x20800, PG + 1), GS(PRP_INVALID_OFFSET));
	CHECK_EQ(prp(MEM_BASE, list + 4, 3 * PG), GS(PRP_INVALID_OFFSET)); /* not qword */
	CHECK_EQ(nreads, 0);
	put64(list, MEM_BASE + 0x20000);
	put64(list + 8, MEM_BASE + 0x30000);
	put64(list + 16, MEM_BASE + 0x40010);
	CHECK_EQ(prp(MEM_BASE, list, 4 * PG), GS(PRP_INVALID_OFFSET));
	CHECK_EQ(prp(MEM_BASE, list, 3 * PG), 0); /* the bad entry is not needed */
}

static void test_prp_unreadable(void)
{
	reset();
	CHECK_EQ(prp(MEM_BASE, 0x900000, 3 * PG), GS(DATA_XFER_ERROR));
	CHECK_EQ(prp(MEM_BASE, 0, 3 * PG), GS(DATA_XFER_ERROR));
	/* a chained list page that is unreadable */
	put64(MEM_BASE + 0x10ff8, 0x900000);
	CHECK_EQ(prp(MEM_BASE, MEM_BASE + 0x10ff8, 3 * PG), GS(DATA_XFER_ERROR));
	/* the last page of the address space: the range would end at 2^64 */
	CHECK_EQ(prp(0xfffffffffffff000ull, 0, PG), GS(DATA_XFER_ERROR));
	CHECK_EQ(prp(0xffffffffffffe000ull, 0xfffffffffffff000ull, 2 * PG), GS(DATA_XFER_ERROR));
	CHECK_EQ(prp(0xffffffffffffe000ull, 0, PG), 0); /* addresses are not checked here */
	nreads = 0;
	CHECK_EQ(prp(MEM_BASE, 0xfffffffffffffff0ull, 3 * PG), GS(DATA_XFER_ERROR));
	CHECK_EQ(nreads, 0); /* list range wraps: not even asked */
}

static uint16_t sgl(struct nvme_sqe c, uint64_t len, bool write)
{
	return nvemu_dptr_resolve(&c, len, write, fake_read, NULL, &d);
}

static void test_sgl_data_block(void)
{
	reset();
	CHECK_EQ(sgl(sgl_cmd(MEM_BASE + 3, 5000, 0, 0), 5000, false), 0);
	CHECK_EQ(d.n, 1);
	CHECK_EQ(d.len, 5000);
	check_seg(0, MEM_BASE + 3, 5000, false);
	/* longer than the transfer: clipped */
	CHECK_EQ(sgl(sgl_cmd(MEM_BASE, 1 << 20, 0, 0), 512, true), 0);
	check_seg(0, MEM_BASE, 512, false);
	/* shorter */
	CHECK_EQ(sgl(sgl_cmd(MEM_BASE, 511, 0, 0), 512, true), GS(SGL_INVALID_DATA));
	CHECK_EQ(sgl(sgl_cmd(MEM_BASE, 0, 0, 0), 512, true), GS(SGL_INVALID_DATA));
	/* wraps */
	CHECK_EQ(sgl(sgl_cmd(0xffffffffffffff00ull, 512, 0, 0), 512, true), GS(DATA_XFER_ERROR));
	/* sub type Offset (fabrics only) */
	CHECK_EQ(sgl(sgl_cmd(MEM_BASE, 512, 0, 1), 512, true), GS(SGL_INVALID_TYPE));
	/* a bit bucket as the whole SGL: only for reads */
	CHECK_EQ(sgl(sgl_cmd(0, 512, 1, 0), 512, true), 0);
	check_seg(0, 0, 512, true);
	CHECK_EQ(sgl(sgl_cmd(0, 512, 1, 0), 512, false), GS(SGL_INVALID_TYPE));
	CHECK_EQ(nreads, 0);
}

static void test_sgl_segments(void)
{
	uint64_t s1 = MEM_BASE + 0x10000, s2 = MEM_BASE + 0x11008;
	struct nvme_sqe c = sgl_cmd(s1, 48, NVME_SGL_TYPE_SEGMENT, 0);

	reset();
	put_desc(s1, MEM_BASE + 0x20000, 1000, 0, 0);
	put_desc(s1 + 16, MEM_BASE + 0x90000, 0, 0, 0); /* zero length: skipped */
	put_desc(s1 + 32, s2, 48, NVME_SGL_TYPE_LAST_SEGMENT, 0);
	put_desc(s2, 0, 96, NVME_SGL_TYPE_BIT_BUCKET, 0);
	put_desc(s2 + 16, MEM_BASE + 0x30000, 3000, 0, 0);
	put_desc(s2 + 32, MEM_BASE + 0x30000 + 3000, 5000, 0, 0); /* adjacent: merged */
	CHECK_EQ(sgl(c, 1000 + 96 + 8000, true), 0);
	CHECK_EQ(d.n, 3);
	CHECK_EQ(d.len, 9096);
	check_seg(0, MEM_BASE + 0x20000, 1000, false);
	check_seg(1, 0, 96, true);
	check_seg(2, MEM_BASE + 0x30000, 8000, false);
	CHECK_EQ(bytes_read, 48 + 48);
	CHECK(!read_outside);

	/* the same SGL for a write: no bit buckets */
	CHECK_EQ(sgl(c, 1000 + 96 + 8000, false), GS(SGL_INVALID_TYPE));
	/* more data than needed: stop early, the last segment is not read */
	bytes_read = 0;
	CHECK_EQ(sgl(c, 900, false), 0);
	CHECK_EQ(d.n, 1);
	CHECK_EQ(bytes_read, 48);
	/* too short */
	CHECK_EQ(sgl(c, 9097, true), GS(SGL_INVALID_DATA));
	/* SGL1 a Last Segment: a segment descriptor inside is invalid */
	c = sgl_cmd(s1, 48, NVME_SGL_TYPE_LAST_SEGMENT, 0);
	CHECK_EQ(sgl(c, 9096, true), GS(SGL_INVALID_LAST));
	/* a Segment list without a next pointer that falls short */
	c = sgl_cmd(s1, 32, NVME_SGL_TYPE_SEGMENT, 0);
	CHECK_EQ(sgl(c, 2000, true), GS(SGL_INVALID_DATA));
	CHECK_EQ(sgl(c, 1000, true), 0);
	/* a segment descriptor not last in its segment */
	put_desc(s1 + 16, s2, 48, NVME_SGL_TYPE_SEGMENT, 0);
	c = sgl_cmd(s1, 48, NVME_SGL_TYPE_SEGMENT, 0);
	CHECK_EQ(sgl(c, 9096, true), GS(SGL_INVALID_COUNT));
}

static void test_sgl_bad_segments(void)
{
	uint64_t s1 = MEM_BASE + 0x10000;

	reset();
	put_desc(s1, MEM_BASE, 4096, 0, 0);
	CHECK_EQ(sgl(sgl_cmd(s1, 16, NVME_SGL_TYPE_LAST_SEGMENT, 0), 4096, false), 0);
	CHECK_EQ(sgl(sgl_cmd(s1, 0, NVME_SGL_TYPE_LAST_SEGMENT, 0), 4096, false),
		 GS(SGL_INVALID_LAST));
	CHECK_EQ(sgl(sgl_cmd(s1, 24, NVME_SGL_TYPE_LAST_SEGMENT, 0), 4096, false),
		 GS(SGL_INVALID_LAST));
	CHECK_EQ(sgl(sgl_cmd(s1 + 4, 16, NVME_SGL_TYPE_LAST_SEGMENT, 0), 4096, false),
		 GS(SGL_INVALID_LAST));
	CHECK_EQ(sgl(sgl_cmd(s1, 16, NVME_SGL_TYPE_LAST_SEGMENT, 1), 4096, false),
		 GS(SGL_INVALID_TYPE));
	CHECK_EQ(sgl(sgl_cmd(0x900000, 16, NVME_SGL_TYPE_LAST_SEGMENT, 0), 4096, false),
		 GS(DATA_XFER_ERROR));
	CHECK_EQ(
	    sgl(sgl_cmd(0xfffffffffffffff0ull, 16, NVME_SGL_TYPE_LAST_SEGMENT, 0), 4096, false),
	    GS(DATA_XFER_ERROR));
	/* types: keyed data block (4), transport (5), vendor (0xf), reserved (6) */
	CHECK_EQ(sgl(sgl_cmd(MEM_BASE, 4096, 4, 0), 4096, false), GS(SGL_INVALID_TYPE));
	CHECK_EQ(sgl(sgl_cmd(MEM_BASE, 4096, 5, 0), 4096, false), GS(SGL_INVALID_TYPE));
	CHECK_EQ(sgl(sgl_cmd(MEM_BASE, 4096, 0xf, 0), 4096, false), GS(SGL_INVALID_TYPE));
	put_desc(s1, MEM_BASE, 4096, 6, 0);
	CHECK_EQ(sgl(sgl_cmd(s1, 16, NVME_SGL_TYPE_LAST_SEGMENT, 0), 4096, false),
		 GS(SGL_INVALID_TYPE));
	put_desc(s1, MEM_BASE, 4096, 0, 1);
	CHECK_EQ(sgl(sgl_cmd(s1, 16, NVME_SGL_TYPE_LAST_SEGMENT, 0), 4096, false),
		 GS(SGL_INVALID_TYPE));
	/* a bit bucket inside a list, for a write */
	put_desc(s1, 0, 4096, NVME_SGL_TYPE_BIT_BUCKET, 0);
	CHECK_EQ(sgl(sgl_cmd(s1, 16, NVME_SGL_TYPE_LAST_SEGMENT, 0), 4096, false),
		 GS(SGL_INVALID_TYPE));
	CHECK_EQ(sgl(sgl_cmd(s1, 16, NVME_SGL_TYPE_LAST_SEGMENT, 0), 4096, true), 0);
}

static void test_sgl_cycle(void)
{
	uint64_t s1 = MEM_BASE + 0x10000, s2 = MEM_BASE + 0x20000;

	reset();
	/* a segment whose only descriptor points at itself */
	put_desc(s1, s1, 16, NVME_SGL_TYPE_SEGMENT, 0);
	CHECK_EQ(sgl(sgl_cmd(s1, 16, NVME_SGL_TYPE_SEGMENT, 0), 4096, true), GS(SGL_INVALID_COUNT));
	CHECK(bytes_read <= 4096 * 16);
	/* two segments pointing at each other, with zero-length data in between */
	reset();
	put_desc(s1, MEM_BASE, 0, 0, 0);
	put_desc(s1 + 16, s2, 32, NVME_SGL_TYPE_SEGMENT, 0);
	put_desc(s2, 0, 0, NVME_SGL_TYPE_BIT_BUCKET, 0);
	put_desc(s2 + 16, s1, 32, NVME_SGL_TYPE_SEGMENT, 0);
	CHECK_EQ(sgl(sgl_cmd(s1, 32, NVME_SGL_TYPE_SEGMENT, 0), 4096, true), GS(SGL_INVALID_COUNT));
	CHECK(bytes_read <= 4096 * 16);
	/* a huge segment of zero-length descriptors: read only up to the cap */
	reset();
	CHECK_EQ(sgl(sgl_cmd(MEM_BASE, 0xfffffff0u, NVME_SGL_TYPE_LAST_SEGMENT, 0), 4096, true),
		 GS(SGL_INVALID_COUNT));
	CHECK_EQ(bytes_read, 4096 * 16);
}

static void test_sgl_max_segs(void)
{
	uint64_t s1 = MEM_BASE + 0x10000;

	reset();
	/* NVEMU_MAX_SEGS separate 16-byte blocks fit, one more does not */
	for (unsigned i = 0; i <= NVEMU_MAX_SEGS; i++)
		put_desc(s1 + 16 * i, MEM_BASE + 0x80000 + 32 * i, 16, 0, 0);
	CHECK_EQ(sgl(sgl_cmd(s1, 16 * (NVEMU_MAX_SEGS + 1), NVME_SGL_TYPE_LAST_SEGMENT, 0),
		     16 * NVEMU_MAX_SEGS, false),
		 0);
	CHECK_EQ(d.n, NVEMU_MAX_SEGS);
	CHECK_EQ(sgl(sgl_cmd(s1, 16 * (NVEMU_MAX_SEGS + 1), NVME_SGL_TYPE_LAST_SEGMENT, 0),
		     16 * (NVEMU_MAX_SEGS + 1), false),
		 GS(SGL_INVALID_COUNT));
	/* adjacent blocks merge into one segment */
	for (unsigned i = 0; i <= NVEMU_MAX_SEGS; i++)
		put_desc(s1 + 16 * i, MEM_BASE + 0x80000 + 16 * i, 16, 0, 0);
	CHECK_EQ(sgl(sgl_cmd(s1, 16 * (NVEMU_MAX_SEGS + 1), NVME_SGL_TYPE_LAST_SEGMENT, 0),
		     16 * (NVEMU_MAX_SEGS + 1), false),
		 0);
	CHECK_EQ(d.n, 1);
	check_seg(0, MEM_BASE + 0x80000, 16 * (NVEMU_MAX_SEGS + 1), false);
}

static void test_bad_command(void)
{
	struct nvme_sqe c = prp_cmd(MEM_BASE, 0);

	reset();
	CHECK_EQ(sgl(c, 0, true), GS(INVALID_FIELD));
	CHECK_EQ(sgl(c, NVEMU_MAX_XFER + 1, true), GS(INVALID_FIELD));
	c.flags = NVME_CMD_PSDT_SGL2;
	CHECK_EQ(sgl(c, 512, true), GS(INVALID_FIELD));
	c.flags = NVME_CMD_PSDT_MASK;
	CHECK_EQ(sgl(c, 512, true), GS(INVALID_FIELD));
	c.flags = NVME_CMD_PSDT_PRP | 0x01; /* fused bits are not ours */
	CHECK_EQ(sgl(c, 512, true), 0);
}

static void test_iov_copy(void)
{
	uint64_t s1 = MEM_BASE + 0x10000;
	uint8_t buf[3000], scratch[NVEMU_MAX_XFER];
	struct iovec iov[NVEMU_MAX_SEGS];
	struct udrv_vfu_dev *dev = (struct udrv_vfu_dev *)&d; /* never dereferenced */

	reset();
	put_desc(s1, MEM_BASE + 0x20000, 1000, 0, 0);
	put_desc(s1 + 16, 0, 1000, NVME_SGL_TYPE_BIT_BUCKET, 0);
	put_desc(s1 + 32, MEM_BASE + 0x30000, 1000, 0, 0);
	REQUIRE(sgl(sgl_cmd(s1, 48, NVME_SGL_TYPE_LAST_SEGMENT, 0), 3000, true) == 0);
	CHECK_EQ(nvemu_dptr_iov(dev, &d, true, scratch, iov), 3);
	CHECK(iov[0].iov_base == mem + 0x20000 && iov[0].iov_len == 1000);
	CHECK(iov[1].iov_base == scratch && iov[1].iov_len == 1000);
	CHECK(iov[2].iov_base == mem + 0x30000 && iov[2].iov_len == 1000);
	CHECK_EQ(nvemu_dptr_iov(dev, &d, false, scratch, iov), 0); /* nothing to read */

	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	CHECK_EQ(nvemu_dptr_copy(dev, &d, buf, true), 0);
	CHECK(memcmp(mem + 0x20000, buf, 1000) == 0);
	CHECK(memcmp(mem + 0x30000, buf + 2000, 1000) == 0);
	CHECK_EQ(nvemu_dptr_copy(dev, &d, buf, false), -EFAULT);

	/* host -> controller through PRPs */
	REQUIRE(prp(MEM_BASE + 0x20000 + 0xc00, MEM_BASE + 0x30000, 3000) == 0);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(nvemu_dptr_copy(dev, &d, buf, false), 0);
	CHECK(memcmp(buf, mem + 0x20c00, 1024) == 0);
	CHECK(memcmp(buf + 1024, mem + 0x30000, 3000 - 1024) == 0);
	CHECK_EQ(nvemu_dptr_iov(dev, &d, false, NULL, iov), 2);
	CHECK(iov[1].iov_base == mem + 0x30000 && iov[1].iov_len == 3000 - 1024);

	/* unmapped segment */
	REQUIRE(prp(0x900000, 0, 512) == 0);
	CHECK_EQ(nvemu_dptr_iov(dev, &d, true, scratch, iov), 0);
	CHECK_EQ(nvemu_dptr_copy(dev, &d, buf, true), -EFAULT);
}

int main(void)
{
	fake_mem = mem;
	fake_mem_size = MEM_SIZE;
	fake_mem_base = MEM_BASE;
	RUN(test_prp_single_page);
	RUN(test_prp_two_pages);
	RUN(test_prp_unaligned_prp1);
	RUN(test_prp_list);
	RUN(test_prp_list_offset);
	RUN(test_prp_list_chain);
	RUN(test_prp_bad_offsets);
	RUN(test_prp_unreadable);
	RUN(test_sgl_data_block);
	RUN(test_sgl_segments);
	RUN(test_sgl_bad_segments);
	RUN(test_sgl_cycle);
	RUN(test_sgl_max_segs);
	RUN(test_bad_command);
	RUN(test_iov_copy);
	return test_done();
}
