/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NVMe driver (udrv/nvme.h) against the emulated controller in process, over vfio-user:
 * bring-up and identify data, namespaces of 512- and 4096-byte blocks, every command with
 * its data checked (PRP single page, two pages and lists at unaligned offsets, vectors as
 * PRPs and as SGLs), argument checks, queue-full behaviour, queue pair limits and destroy
 * with commands outstanding. Random mixed I/O against a shadow copy lives in
 * test_nvme_driver_io.c, injected faults in test_nvme_driver_faults.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <udrv/dma.h>
#include <udrv/nvme.h>

#include "nvme_drv_test.h"

#define SIZE	   (64ull << 20) /* 64 MiB: 131072 blocks of 512 */
#define BLOCKS	   (SIZE / 512)
#define QUEUES	   4
#define SERIAL	   "DRV-SN-0001"
#define MAX_XFER   (256u * 1024)
#define MAX_BLOCKS (MAX_XFER / 512)

static struct drv_emu emu;

/* ---- bring-up ---- */

static void test_open_info(void)
{
	struct udrv_nvme_ctrlr *c = drv_open(&emu, 8, 0);
	const struct udrv_nvme_ctrlr_info *info = udrv_nvme_ctrlr_info(c);
	struct udrv_nvme_ns_info ns;

	REQUIRE(info);
	CHECK_STR(info->mn, "udrv emulated NVMe");
	CHECK_STR(info->sn, SERIAL);
	CHECK_STR(info->fr, "udrv0.1");
	CHECK_EQ(info->vid, 0x1b36);
	CHECK_EQ(info->ssvid, 0x1b36);
	CHECK_EQ(info->version, 0x010400);
	CHECK_EQ(info->nn, 1);
	CHECK_EQ(info->max_xfer, MAX_XFER);
	CHECK_EQ(info->io_queues, QUEUES); /* min(8 asked, 4 offered) */
	CHECK_EQ(info->max_entries, 1024);
	CHECK(info->sgl);
	CHECK(info->vwc);
	CHECK_EQ(info->oncs & 0xd, 0xd); /* Compare, Dataset Management, Write Zeroes */
	CHECK_STR(info->backend, "vfio-user");
	CHECK(info->device != NULL);
	REQUIRE(info->identify);
	/* Identify Controller: MN at byte 24, NN at byte 516. */
	CHECK(!memcmp((const uint8_t *)info->identify + 24, "udrv emulated NVMe ", 19));
	CHECK_EQ(*(const uint32_t *)((const uint8_t *)info->identify + 516), 1);

	memset(&ns, 0xff, sizeof(ns));
	CHECK_EQ(udrv_nvme_ns_info(c, 1, &ns), 0);
	CHECK_EQ(ns.nsid, 1);
	CHECK_EQ(ns.blocks, BLOCKS);
	CHECK_EQ(ns.block_size, 512);
	CHECK(ns.active);
	REQUIRE(ns.identify);
	CHECK_EQ(*(const uint64_t *)ns.identify, BLOCKS); /* NSZE */
	CHECK_EQ(udrv_nvme_ns_info(c, 0, &ns), -EINVAL);
	CHECK_EQ(udrv_nvme_ns_info(c, 2, &ns), -EINVAL);
	CHECK_EQ(udrv_nvme_ns_info(c, 0xffffffff, &ns), -EINVAL);
	CHECK(udrv_errmsg()[0] != '\0');
	CHECK_EQ(udrv_nvme_ns_info(c, 1, NULL), -EINVAL);
	CHECK(udrv_nvme_domain(c) != NULL);
	{
		struct udrv_nvme_stats st;

		udrv_nvme_stats(c, &st);
		CHECK_EQ(st.bad_cqes + st.timeouts + st.aborts + st.resets + st.resubmits, 0);
	}
	udrv_nvme_close(c);

	/* Fewer asked than offered: granted what was asked. */
	c = drv_open(&emu, 2, 0);
	CHECK_EQ(udrv_nvme_ctrlr_info(c)->io_queues, 2);
	udrv_nvme_close(c);
	/* 0 asks for 8: granted the 4 there are. */
	c = drv_open(&emu, 0, 0);
	CHECK_EQ(udrv_nvme_ctrlr_info(c)->io_queues, QUEUES);
	udrv_nvme_close(c);
	udrv_nvme_close(NULL);
}

/* Three namespaces of 4096-byte blocks on a second emulator: sizes, isolation, limits. */
static void test_open_4k_namespaces(void)
{
	struct drv_emu m;
	struct udrv_nvme_ctrlr *c;
	struct udrv_nvme_qpair *qp;
	struct udrv_nvme_ns_info ns;
	uint8_t *buf;
	const uint32_t nblk = 8u << 20 >> 12; /* 8 MiB each: 2048 blocks */

	drv_emu_up(&m, (struct udrv_emu_nvme_opts){.size = 24ull << 20,
						   .namespaces = 3,
						   .queues = 2,
						   .block_size = 4096,
						   .max_entries = 64});
	c = drv_open(&m, 0, 0);
	CHECK_EQ(udrv_nvme_ctrlr_info(c)->nn, 3);
	CHECK_EQ(udrv_nvme_ctrlr_info(c)->io_queues, 2);
	CHECK_EQ(udrv_nvme_ctrlr_info(c)->max_entries, 64);
	CHECK(udrv_nvme_ctrlr_info(c)->sn[0] != '\0'); /* derived when not given */
	for (uint32_t i = 1; i <= 3; i++) {
		CHECK_EQ(udrv_nvme_ns_info(c, i, &ns), 0);
		CHECK_EQ(ns.nsid, i);
		CHECK_EQ(ns.blocks, nblk);
		CHECK_EQ(ns.block_size, 4096);
		CHECK(ns.active);
	}
	CHECK_EQ(udrv_nvme_ns_info(c, 4, &ns), -EINVAL);
	qp = drv_qpair(c, 0);
	buf = udrv_nvme_dma_alloc(c, 2 * MAX_XFER);
	REQUIRE(buf);
	{
		/* 0 entries: min(256, max_entries 64): 63 outstanding at most. */
		unsigned n = 0;

		while (n < 100 && udrv_nvme_read(qp, 1, buf, n, 1, NULL, NULL) == 0)
			n++;
		CHECK_EQ(n, 63);
		for (double end = nh_now() + DRV_WAIT_S;
		     udrv_nvme_qpair_outstanding(qp) && nh_now() < end;)
			udrv_nvme_process_completions(qp, 0);
		CHECK_EQ(udrv_nvme_qpair_outstanding(qp), 0);
	}
	/* The same LBA in each namespace holds its own data. */
	for (uint32_t i = 1; i <= 3; i++) {
		drv_fill(buf, 4096, 40 + i, 5, 2, 1);
		CHECK_EQ(drv_write(qp, i, buf, 5, 2), 0);
	}
	for (uint32_t i = 1; i <= 3; i++) {
		memset(buf, 0xa5, 8192);
		CHECK_EQ(drv_read(qp, i, buf, 5, 2), 0);
		CHECK_EQ(drv_verify(buf, 4096, 40 + i, 5, 2, 1), -1);
	}
	/* max_xfer is 64 blocks here; the last blocks of a namespace; past its end. */
	drv_fill(buf + 4, 4096, 50, nblk - 64, 64, 1);
	CHECK_EQ(drv_write(qp, 2, buf + 4, nblk - 64, 64), 0);
	memset(buf + MAX_XFER, 0, MAX_XFER);
	CHECK_EQ(drv_read(qp, 2, buf + MAX_XFER, nblk - 64, 64), 0);
	CHECK_EQ(drv_verify(buf + MAX_XFER, 4096, 50, nblk - 64, 64, 1), -1);
	CHECK_EQ(udrv_nvme_read(qp, 2, buf, nblk - 64, 65, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_read(qp, 2, buf, nblk, 1, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_read(qp, 4, buf, 0, 1, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(drv_read(qp, 3, buf, nblk - 1, 1), 0);
	CHECK(drv_is_zero(buf, 4096));
	CHECK_EQ(drv_flush(qp, 0xffffffff), 0);
	CHECK_EQ(drv_flush(qp, 3), 0);
	CHECK_EQ(udrv_nvme_flush(qp, 4, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_qpair_outstanding(qp), 0);
	udrv_dma_free(udrv_nvme_domain(c), buf);
	udrv_nvme_close(c); /* the queue pair with it */
	drv_emu_down(&m);
}

static void test_open_errors(void)
{
	struct udrv_nvme_ctrlr *c = (struct udrv_nvme_ctrlr *)&c;
	char name[256], path[200];
	double t0;
	int rc;

	nh_tmppath(path, sizeof(path), "nobody-serves-this.sock");
	snprintf(name, sizeof(name), "vfio-user:%s", path);
	t0 = nh_now();
	rc = udrv_nvme_open(name, NULL, &c);
	CHECK(rc < 0);
	CHECK(nh_now() - t0 < 5);
	CHECK(udrv_errmsg()[0] != '\0');
	fprintf(stderr, "  open of a missing socket: %d: %s\n", rc, udrv_errmsg());
	CHECK_EQ(udrv_nvme_open(NULL, NULL, &c), -EINVAL);
	CHECK(udrv_errmsg()[0] != '\0');
	CHECK_EQ(udrv_nvme_open(emu.name, NULL, NULL), -EINVAL);
	/* A failed open leaves the emulator free for the next client. */
	c = drv_open(&emu, 1, 0);
	udrv_nvme_close(c);
}

/* ---- I/O with data ---- */

static struct udrv_nvme_ctrlr *ctrl;
static struct udrv_nvme_qpair *qp;
static uint8_t *wbuf, *rbuf; /* 2 * MAX_XFER each */
static uint32_t version = 100;

#define POISON 0xa5

/* Write nlb blocks at lba from wbuf+woff, read them into rbuf+roff, check the data and that
 * the bytes around the read buffer were left alone. */
static void wr_rd(uint64_t lba, uint32_t nlb, size_t woff, size_t roff)
{
	size_t len = (size_t)nlb * 512;
	uint32_t v = ++version;
	int rc;

	drv_fill(wbuf + woff, 512, 1, lba, nlb, v);
	rc = drv_write(qp, 1, wbuf + woff, lba, nlb);
	CHECK_EQ(rc, 0);
	memset(rbuf, POISON, 2 * MAX_XFER);
	rc = drv_read(qp, 1, rbuf + roff, lba, nlb);
	CHECK_EQ(rc, 0);
	if (drv_verify(rbuf + roff, 512, 1, lba, nlb, v) >= 0 ||
	    (roff && rbuf[roff - 1] != POISON) || rbuf[roff + len] != POISON) {
		fprintf(stderr, "  data wrong: lba %llu nlb %u woff %zu roff %zu: block %ld\n",
			(unsigned long long)lba, nlb, woff, roff,
			drv_verify(rbuf + roff, 512, 1, lba, nlb, v));
		CHECK(!"data read back as written");
	}
}

static void test_read_write(void)
{
	static const uint32_t sizes[] = {1,  2,	 7,   8,   9,	15,  16, 17,
					 63, 64, 100, 255, 256, 511, 512};
	static const size_t offs[] = {0, 4, 508, 512, 1024, 2048, 3584, 4092, 60, 4096 + 12};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t nlb = sizes[i];
		uint64_t lbas[] = {0, 1, 4095, BLOCKS - nlb, 77777 + i * 3};

		for (size_t j = 0; j < sizeof(lbas) / sizeof(lbas[0]); j++)
			wr_rd(lbas[j], nlb, offs[(i + j) % 10], offs[(i + 3 * j + 1) % 10]);
	}
	/* The PRP shapes: one page; two pages (PRP2 is data); three (PRP2 is a list); the
	 * largest transfer at a dword offset, 65 pages, a list of 64. */
	wr_rd(500, 8, 0, 0);
	wr_rd(500, 1, 4092, 4092);
	wr_rd(500, 16, 0, 4096);
	wr_rd(500, 9, 3072, 3584);
	wr_rd(500, 24, 4, 8);
	wr_rd(1000, MAX_BLOCKS, 4, 4092);
	wr_rd(BLOCKS - MAX_BLOCKS, MAX_BLOCKS, 2048, 0);
	/* A large write read back in small, unaligned pieces, and the other way round. */
	{
		uint32_t v = ++version;

		drv_fill(wbuf + 12, 512, 1, 20000, MAX_BLOCKS, v);
		CHECK_EQ(drv_write(qp, 1, wbuf + 12, 20000, MAX_BLOCKS), 0);
		for (uint32_t b = 0; b < MAX_BLOCKS; b += 37) {
			uint32_t n = b + 5 <= MAX_BLOCKS ? 5 : MAX_BLOCKS - b;

			memset(rbuf, POISON, 8192);
			CHECK_EQ(drv_read(qp, 1, rbuf + 4092 - 4 * (b % 7), 20000 + b, n), 0);
			CHECK_EQ(drv_verify(rbuf + 4092 - 4 * (b % 7), 512, 1, 20000 + b, n, v),
				 -1);
		}
		v = ++version;
		for (uint32_t b = 0; b < 64; b += 4) {
			drv_fill(wbuf + 100 * b, 512, 1, 30000 + b, 4, v);
			CHECK_EQ(drv_write(qp, 1, wbuf + 100 * b, 30000 + b, 4), 0);
		}
		CHECK_EQ(drv_read(qp, 1, rbuf, 30000, 64), 0);
		CHECK_EQ(drv_verify(rbuf, 512, 1, 30000, 64, v), -1);
	}
	/* Never written: zeros. */
	memset(rbuf, POISON, 4096);
	CHECK_EQ(drv_read(qp, 1, rbuf, 100000, 8), 0);
	CHECK(drv_is_zero(rbuf, 4096));
	CHECK_EQ(udrv_nvme_qpair_outstanding(qp), 0);
}

static void test_compare(void)
{
	uint16_t st = 0xffff;
	uint32_t v = ++version;

	drv_fill(wbuf + 8, 512, 1, 300, 16, v);
	CHECK_EQ(drv_write(qp, 1, wbuf + 8, 300, 16), 0);
	memcpy(rbuf + 4, wbuf + 8, 16 * 512);
	CHECK_EQ(drv_compare(qp, 1, rbuf + 4, 300, 16, &st), 0);
	CHECK_EQ(st, 0);
	CHECK_EQ(drv_compare(qp, 1, rbuf + 4 + 512 * 3, 303, 2, &st), 0);
	/* One byte different in the last block. */
	rbuf[4 + 16 * 512 - 1] ^= 1;
	CHECK_EQ(drv_compare(qp, 1, rbuf + 4, 300, 16, &st), -EIO);
	CHECK_EQ(st & DRV_SC_MASK, DRV_SC_CMPFAIL);
	CHECK_STR(udrv_nvme_status_str(st), "Compare Failure");
	/* Against blocks never written (zeros). */
	memset(rbuf, 0, 4096);
	CHECK_EQ(drv_compare(qp, 1, rbuf, 110000, 8, &st), 0);
	rbuf[7] = 1;
	CHECK_EQ(drv_compare(qp, 1, rbuf, 110000, 8, &st), -EIO);
	CHECK_EQ(st & DRV_SC_MASK, DRV_SC_CMPFAIL);
	/* Compare does not write. */
	CHECK_EQ(drv_read(qp, 1, rbuf, 300, 16), 0);
	CHECK_EQ(drv_verify(rbuf, 512, 1, 300, 16, v), -1);
}

static void test_flush(void)
{
	CHECK_EQ(drv_flush(qp, 1), 0);
	CHECK_EQ(drv_flush(qp, 0xffffffff), 0);
	CHECK_EQ(udrv_nvme_flush(qp, 0, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_flush(qp, 2, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_qpair_outstanding(qp), 0);
}

/* Write Zeroes with and without Deallocate, and Dataset Management: zeros where asked,
 * the neighbours untouched. */
static void test_zeroes_deallocate(void)
{
	const uint64_t base = 40000;
	uint32_t v = ++version;
	long bad;

	drv_fill(wbuf, 512, 1, base, 100, v);
	CHECK_EQ(drv_write(qp, 1, wbuf, base, 100), 0);
	CHECK_EQ(drv_write_zeroes(qp, 1, base + 10, 10, false), 0);
	CHECK_EQ(drv_write_zeroes(qp, 1, base + 30, 10, true), 0);
	CHECK_EQ(drv_deallocate(qp, 1, base + 50, 10), 0);
	CHECK_EQ(drv_deallocate(qp, 1, base + 99, 1), 0);
	memset(rbuf, POISON, 100 * 512);
	CHECK_EQ(drv_read(qp, 1, rbuf, base, 100), 0);
	for (uint32_t b = 0; b < 100; b++) {
		bool zero =
		    (b >= 10 && b < 20) || (b >= 30 && b < 40) || (b >= 50 && b < 60) || b == 99;

		bad = zero ? (drv_is_zero(rbuf + b * 512, 512) ? -1 : 0)
			   : drv_verify(rbuf + b * 512, 512, 1, base + b, 1, v);
		if (bad >= 0) {
			fprintf(stderr, "  block %u: expected %s\n", b, zero ? "zeros" : "data");
			CHECK(!"zeroed exactly the blocks asked");
			break;
		}
	}
	/* The largest Write Zeroes (65536 blocks) and a deallocation over 256 KiB. */
	drv_fill(wbuf, 512, 1, 50000, 1, v);
	CHECK_EQ(drv_write(qp, 1, wbuf, 50000, 1), 0);
	CHECK_EQ(drv_write(qp, 1, wbuf + 512, 50000 + 65535, 1), 0);
	CHECK_EQ(drv_write(qp, 1, wbuf, 50000 + 65536, 1), 0); /* just past: stays */
	CHECK_EQ(drv_write_zeroes(qp, 1, 50000, 65535, true), 0);
	CHECK_EQ(drv_read(qp, 1, rbuf, 50000 + 65535, 1), 0);
	CHECK(!drv_is_zero(rbuf, 512));
	CHECK_EQ(drv_write_zeroes(qp, 1, 50000, 65536, false), 0);
	CHECK_EQ(drv_read(qp, 1, rbuf, 50000, 1), 0);
	CHECK(drv_is_zero(rbuf, 512));
	CHECK_EQ(drv_read(qp, 1, rbuf, 50000 + 65535, 1), 0);
	CHECK(drv_is_zero(rbuf, 512));
	CHECK_EQ(drv_read(qp, 1, rbuf, 50000 + 65536, 1), 0);
	CHECK(!drv_is_zero(rbuf, 512));
	drv_fill(wbuf, 512, 1, 60000, MAX_BLOCKS, v);
	CHECK_EQ(drv_write(qp, 1, wbuf, 60000, MAX_BLOCKS), 0);
	CHECK_EQ(drv_deallocate(qp, 1, 60000, 2 * MAX_BLOCKS), 0);
	CHECK_EQ(drv_read(qp, 1, rbuf, 60000, MAX_BLOCKS), 0);
	CHECK(drv_is_zero(rbuf, MAX_XFER));
	/* Limits. */
	CHECK_EQ(udrv_nvme_write_zeroes(qp, 1, 0, 65537, false, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_write_zeroes(qp, 1, 0, 0, false, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_write_zeroes(qp, 1, BLOCKS - 1, 2, true, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_write_zeroes(qp, 2, 0, 1, false, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_deallocate(qp, 1, BLOCKS, 1, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_deallocate(qp, 1, 1, BLOCKS, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_deallocate(qp, 1, 0, 0, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_deallocate(qp, 0, 0, 1, drv_req_cb, NULL), -EINVAL);
	CHECK_EQ(udrv_nvme_qpair_outstanding(qp), 0);
}

/* Copy between a linear buffer and iov pieces. */
static void scatter(const struct iovec *iov, unsigned n, const uint8_t *lin)
{
	for (unsigned i = 0; i < n; i++) {
		memcpy(iov[i].iov_base, lin, iov[i].iov_len);
		lin += iov[i].iov_len;
	}
}

static void gather(const struct iovec *iov, unsigned n, uint8_t *lin)
{
	for (unsigned i = 0; i < n; i++) {
		memcpy(lin, iov[i].iov_base, iov[i].iov_len);
		lin += iov[i].iov_len;
	}
}

/* writev from the pieces, read back linear; readv into the same layout elsewhere, gather;
 * the bytes between pieces must stay as they were. */
static void vec_roundtrip(const struct iovec *wiov, const struct iovec *riov, unsigned n,
			  uint64_t lba, uint32_t nlb, const char *what)
{
	uint8_t *lin = malloc((size_t)nlb * 512);
	uint32_t v = ++version;
	size_t sum = 0;
	int rc;

	REQUIRE(lin);
	for (unsigned i = 0; i < n; i++)
		sum += wiov[i].iov_len;
	REQUIRE(sum == (size_t)nlb * 512);
	drv_fill(lin, 512, 2, lba, nlb, v);
	scatter(wiov, n, lin);
	rc = drv_writev(qp, 1, wiov, n, lba, nlb);
	if (rc)
		fprintf(stderr, "  %s: writev %d\n", what, rc);
	CHECK_EQ(rc, 0);
	memset(rbuf, POISON, (size_t)nlb * 512);
	CHECK_EQ(drv_read(qp, 1, rbuf, lba, nlb), 0);
	if (rc == 0 && drv_verify(rbuf, 512, 2, lba, nlb, v) >= 0) {
		fprintf(stderr, "  %s: writev data wrong at block %ld\n", what,
			drv_verify(rbuf, 512, 2, lba, nlb, v));
		CHECK(!"writev wrote the pieces in order");
	}
	memset(rbuf, POISON, 2 * MAX_XFER);
	rc = drv_readv(qp, 1, riov, n, lba, nlb);
	if (rc)
		fprintf(stderr, "  %s: readv %d\n", what, rc);
	CHECK_EQ(rc, 0);
	gather(riov, n, lin);
	if (rc == 0 && drv_verify(lin, 512, 2, lba, nlb, v) >= 0) {
		fprintf(stderr, "  %s: readv data wrong at block %ld\n", what,
			drv_verify(lin, 512, 2, lba, nlb, v));
		CHECK(!"readv filled the pieces in order");
	}
	/* Nothing outside the pieces was written (riov points into rbuf). */
	{
		static bool in[2 * MAX_XFER];
		size_t outside = 0;

		memset(in, 0, sizeof(in));
		for (unsigned i = 0; i < n; i++)
			memset(in + ((uint8_t *)riov[i].iov_base - rbuf), 1, riov[i].iov_len);
		for (size_t off = 0; off < 2 * MAX_XFER; off++)
			if (!in[off] && rbuf[off] != POISON)
				outside++;
		if (outside)
			fprintf(stderr, "  %s: %zu bytes outside the pieces written\n", what,
				outside);
		CHECK_EQ(outside, 0);
	}
	free(lin);
}

/* Pieces that follow the PRP rules: the first may start at a dword offset and ends on a
 * page, the middle ones are whole pages, the last starts on a page. */
static void test_vectors_prp(void)
{
	struct iovec w[16], r[16];

	/* 3584 + 8192 + 1536 = 26 blocks, with gaps and out of address order. */
	w[0] = (struct iovec){wbuf + 512, 3584};
	w[1] = (struct iovec){wbuf + 5 * 4096, 8192};
	w[2] = (struct iovec){wbuf + 2 * 4096, 1536};
	r[0] = (struct iovec){rbuf + 4096 + 1024, 3072 + 512};
	r[1] = (struct iovec){rbuf + 10 * 4096, 8192};
	r[2] = (struct iovec){rbuf + 3 * 4096, 1536};
	vec_roundtrip(w, r, 3, 2000, 26, "prp 3 pieces");
	/* First at a dword offset. */
	w[0] = (struct iovec){wbuf + 4096 - 516, 516};
	w[1] = (struct iovec){wbuf + 8 * 4096, 4096};
	w[2] = (struct iovec){wbuf + 3 * 4096, 4092};
	r[0] = (struct iovec){rbuf + 4096 - 516, 516};
	r[1] = (struct iovec){rbuf + 6 * 4096, 4096};
	r[2] = (struct iovec){rbuf + 2 * 4096, 4092};
	vec_roundtrip(w, r, 3, 2100, (516 + 4096 + 4092) / 512, "prp dword offset");
	/* 16 single pages in reverse order: a PRP list that goes backwards. */
	for (unsigned i = 0; i < 16; i++) {
		w[i] = (struct iovec){wbuf + (size_t)(31 - 2 * i) * 4096, 4096};
		r[i] = (struct iovec){rbuf + (size_t)(30 - 2 * i) * 4096, 4096};
	}
	vec_roundtrip(w, r, 16, 2200, 128, "prp 16 pages backwards");
	/* The largest transfer in two pieces. */
	w[0] = (struct iovec){wbuf + 4092, 4};
	w[1] = (struct iovec){wbuf + 8192, MAX_XFER - 4};
	r[0] = (struct iovec){rbuf + 4096 * 3 - 4, 4};
	r[1] = (struct iovec){rbuf + 4096 * 4, MAX_XFER - 4};
	vec_roundtrip(w, r, 2, 2400, MAX_BLOCKS, "prp max_xfer");
	/* One piece is a plain buffer. */
	w[0] = (struct iovec){wbuf + 20, 4096};
	r[0] = (struct iovec){rbuf + 40, 4096};
	vec_roundtrip(w, r, 1, 2950, 8, "one piece");
}

/* Pieces PRPs cannot describe: the controller takes SGLs. */
static void test_vectors_sgl(void)
{
	struct iovec w[256], r[256];

	/* One piece at an odd address: "SGLs ... describe any buffers". */
	w[0] = (struct iovec){wbuf + 1, 4096};
	r[0] = (struct iovec){rbuf + 4097 + 2, 4096};
	vec_roundtrip(w, r, 1, 2990, 8, "sgl one odd piece");
	/* Odd addresses and lengths: 511 + 1000 + 537 = 4 blocks. */
	w[0] = (struct iovec){wbuf + 1, 511};
	w[1] = (struct iovec){wbuf + 4097 + 8, 1000};
	w[2] = (struct iovec){wbuf + 10003, 537};
	r[0] = (struct iovec){rbuf + 3, 511};
	r[1] = (struct iovec){rbuf + 7001, 1000};
	r[2] = (struct iovec){rbuf + 5003, 537};
	vec_roundtrip(w, r, 3, 3000, 4, "sgl odd");
	/* Aligned pieces that break the PRP rules (a middle piece not a whole page). */
	w[0] = (struct iovec){wbuf, 4096};
	w[1] = (struct iovec){wbuf + 8192, 1024};
	w[2] = (struct iovec){wbuf + 16384, 3072};
	r[0] = (struct iovec){rbuf + 4096, 4096};
	r[1] = (struct iovec){rbuf + 12288, 1024};
	r[2] = (struct iovec){rbuf + 20480, 3072};
	vec_roundtrip(w, r, 3, 3100, 16, "sgl aligned, short middle");
	/* 256 pieces of 16 bytes, a byte apart: the most descriptors one segment holds. */
	for (unsigned i = 0; i < 256; i++) {
		w[i] = (struct iovec){wbuf + 17 * i, 16};
		r[i] = (struct iovec){rbuf + 100 + 17 * i, 16};
	}
	vec_roundtrip(w, r, 256, 3200, 8, "sgl 256 pieces");
	/* A large transfer in a few big unaligned pieces. */
	w[0] = (struct iovec){wbuf + 3, 100000};
	w[1] = (struct iovec){wbuf + 100000 + 64 + 3, MAX_XFER - 100000 - 1000};
	w[2] = (struct iovec){wbuf + MAX_XFER + 1, 1000};
	r[0] = (struct iovec){rbuf + 5, 100000};
	r[1] = (struct iovec){rbuf + 100000 + 128 + 1, MAX_XFER - 100000 - 1000};
	r[2] = (struct iovec){rbuf + MAX_XFER + 77, 1000};
	vec_roundtrip(w, r, 3, 3300, MAX_BLOCKS, "sgl max_xfer");
}

/* Buffers that are not DMA memory, ranges past the end, sizes over the limits: refused at
 * submission, nothing left outstanding, the queue pair still whole. */
static void test_bad_args(void)
{
	uint8_t *heap = aligned_alloc(4096, 16384);
	uint8_t stack[1024] __attribute__((aligned(64)));
	struct udrv_nvme_qpair *q8 = drv_qpair(ctrl, 8);
	struct drv_req r[8] = {{0}};
	struct iovec iov[3];
	int rc;

	REQUIRE(heap);
	CHECK_EQ(udrv_nvme_read(qp, 1, heap, 0, 1, drv_req_cb, r), -EFAULT);
	CHECK_EQ(udrv_nvme_write(qp, 1, heap, 0, 8, drv_req_cb, r), -EFAULT);
	CHECK_EQ(udrv_nvme_compare(qp, 1, heap + 4096, 0, 2, drv_req_cb, r), -EFAULT);
	CHECK_EQ(udrv_nvme_read(qp, 1, stack, 0, 2, drv_req_cb, r), -EFAULT);
	/* Vectors with one piece outside DMA memory: PRP-shaped and SGL-shaped. */
	iov[0] = (struct iovec){wbuf, 4096};
	iov[1] = (struct iovec){heap, 4096};
	CHECK_EQ(udrv_nvme_writev(qp, 1, iov, 2, 0, 16, drv_req_cb, r), -EFAULT);
	iov[0] = (struct iovec){wbuf + 1, 511};
	iov[1] = (struct iovec){heap + 3, 513};
	CHECK_EQ(udrv_nvme_readv(qp, 1, iov, 2, 0, 2, drv_req_cb, r), -EFAULT);
	/* Vectors whose total is not nlb blocks. */
	iov[0] = (struct iovec){wbuf, 4096};
	iov[1] = (struct iovec){wbuf + 8192, 4096};
	CHECK_EQ(udrv_nvme_writev(qp, 1, iov, 2, 0, 15, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_readv(qp, 1, iov, 2, 0, 17, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_readv(qp, 1, iov, 0, 0, 1, drv_req_cb, r), -EINVAL);
	/* The tail of a buffer past the end of a DMA chunk. */
	{
		struct udrv_dma_mem *m = udrv_dma_mem_alloc(4096, UDRV_DMA_NOHUGE);
		uint8_t *va;
		size_t sz;

		REQUIRE(m);
		REQUIRE(udrv_dma_domain_add(udrv_nvme_domain(ctrl), m) == 0);
		va = udrv_dma_mem_va(m);
		sz = udrv_dma_mem_size(m);
		drv_fill(va + sz - 512, 512, 3, 7, 1, 1);
		CHECK_EQ(drv_write(qp, 1, va + sz - 512, 7, 1), 0); /* fits: fine */
		memset(va, 0, sz);
		CHECK_EQ(drv_read(qp, 1, va + sz - 512, 7, 1), 0);
		CHECK_EQ(drv_verify(va + sz - 512, 512, 3, 7, 1, 1), -1);
		if (udrv_dma_iova(udrv_nvme_domain(ctrl), va + sz) != UDRV_DMA_IOVA_INVALID) {
			fprintf(stderr, "  (the page after the chunk is DMA memory: not tried)\n");
		} else {
			CHECK_EQ(udrv_nvme_read(qp, 1, va + sz - 512, 7, 2, drv_req_cb, r),
				 -EFAULT);
			CHECK_EQ(udrv_nvme_read(qp, 1, va + sz - 4096 - 512, 7, 9, drv_req_cb, r),
				 -EFAULT);
		}
		CHECK_EQ(udrv_dma_domain_remove(udrv_nvme_domain(ctrl), m), 0);
		/* Removed from the domain: no longer DMA memory. */
		CHECK_EQ(udrv_nvme_read(qp, 1, va, 7, 1, drv_req_cb, r), -EFAULT);
		udrv_dma_mem_free(m);
	}
	/* Ranges and sizes. */
	CHECK_EQ(udrv_nvme_read(qp, 1, rbuf, BLOCKS, 1, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_read(qp, 1, rbuf, BLOCKS - 1, 2, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_read(qp, 1, rbuf, UINT64_MAX, 1, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_read(qp, 1, rbuf, UINT64_MAX - 1, 4, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_write(qp, 1, wbuf, 1ull << 32, 1, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_read(qp, 1, rbuf, 0, 0, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_read(qp, 1, rbuf, 0, MAX_BLOCKS + 1, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_write(qp, 1, wbuf, 0, MAX_BLOCKS + 1, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_compare(qp, 1, wbuf, 0, UINT32_MAX, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_read(qp, 0, rbuf, 0, 1, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_read(qp, 2, rbuf, 0, 1, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_read(qp, 0xffffffff, rbuf, 0, 1, drv_req_cb, r), -EINVAL);
	CHECK_EQ(udrv_nvme_readv(qp, 1, iov, 2, BLOCKS - 8, 16, drv_req_cb, r), -EINVAL);
	CHECK_EQ(drv_read(qp, 1, rbuf, BLOCKS - 1, 1), 0);
	/* Not dword aligned: PRPs cannot; refused or done right. */
	rc = udrv_nvme_write(qp, 1, wbuf + 1, 0, 1, drv_req_cb, r);
	CHECK(rc == -EINVAL || rc == 0);
	if (rc == 0) {
		drv_wait(qp, r, 1, DRV_WAIT_S);
		CHECK_EQ(r[0].calls, 1);
	}
	CHECK_EQ(r[0].calls, rc == 0 ? 1 : 0);
	CHECK_EQ(udrv_nvme_qpair_outstanding(qp), 0);
	memset(r, 0, sizeof(r));
	/* Every refusal gave its slot back: 7 commands still fit in 8 entries. */
	for (unsigned i = 0; i < 7; i++) {
		CHECK_EQ(udrv_nvme_read(q8, 1, heap, 0, 1, drv_req_cb, &r[i]), -EFAULT);
		CHECK_EQ(udrv_nvme_read(q8, 1, rbuf, BLOCKS, 1, drv_req_cb, &r[i]), -EINVAL);
	}
	for (unsigned i = 0; i < 7; i++)
		CHECK_EQ(udrv_nvme_read(q8, 1, rbuf + 4096 * i, i, 1, drv_req_cb, &r[i]), 0);
	CHECK_EQ(udrv_nvme_qpair_outstanding(q8), 7);
	drv_wait(q8, r, 7, DRV_WAIT_S);
	CHECK(drv_once(r, 7, "after refusals"));
	udrv_nvme_qpair_destroy(q8);
	free(heap);
}

/* ---- queue pairs ---- */

static struct udrv_nvme_qpair *chain_qp;
static unsigned chain_left, chain_done, chain_max_out;
static int chain_err;

/* A callback that submits the next command, up to chain_left of them. */
static void chain_cb(void *arg, const struct udrv_nvme_cpl *cpl)
{
	(void)arg;
	if (cpl->rc)
		chain_err = cpl->rc;
	chain_done++;
	if (chain_left) {
		int rc = udrv_nvme_read(chain_qp, 1, rbuf + 512 * (chain_left % 64), chain_left, 1,
					chain_cb, NULL);

		if (rc)
			chain_err = rc;
		else
			chain_left--;
	}
	if (udrv_nvme_qpair_outstanding(chain_qp) > chain_max_out)
		chain_max_out = udrv_nvme_qpair_outstanding(chain_qp);
}

static void test_queue_full(void)
{
	struct udrv_nvme_qpair *q = drv_qpair(ctrl, 8);
	struct drv_req r[32] = {{0}};
	struct iovec iov = {wbuf, 512};
	unsigned n = 0, done;
	int rc;

	/* Seven fit in eight entries. */
	while ((rc = udrv_nvme_read(q, 1, rbuf + 512 * n, n, 1, drv_req_cb, &r[n])) == 0 && n < 31)
		n++;
	CHECK_EQ(rc, -EAGAIN);
	CHECK_EQ(n, 7);
	CHECK_EQ(udrv_nvme_qpair_outstanding(q), 7);
	/* Every kind of command is refused the same way, and nothing calls back for them. */
	CHECK_EQ(udrv_nvme_write(q, 1, wbuf, 0, 1, drv_req_cb, &r[31]), -EAGAIN);
	CHECK_EQ(udrv_nvme_compare(q, 1, wbuf, 0, 1, drv_req_cb, &r[31]), -EAGAIN);
	CHECK_EQ(udrv_nvme_flush(q, 1, drv_req_cb, &r[31]), -EAGAIN);
	CHECK_EQ(udrv_nvme_write_zeroes(q, 1, 0, 1, false, drv_req_cb, &r[31]), -EAGAIN);
	CHECK_EQ(udrv_nvme_deallocate(q, 1, 0, 1, drv_req_cb, &r[31]), -EAGAIN);
	CHECK_EQ(udrv_nvme_readv(q, 1, &iov, 1, 0, 1, drv_req_cb, &r[31]), -EAGAIN);
	CHECK_EQ(udrv_nvme_writev(q, 1, &iov, 1, 0, 1, drv_req_cb, &r[31]), -EAGAIN);
	CHECK_EQ(udrv_nvme_qpair_outstanding(q), 7);
	/* Completions free slots. */
	for (double end = nh_now() + DRV_WAIT_S; !r[0].calls && nh_now() < end;)
		udrv_nvme_process_completions(q, 1);
	done = 0;
	for (unsigned i = 0; i < n; i++)
		done += (unsigned)r[i].calls;
	CHECK(done >= 1);
	CHECK_EQ(udrv_nvme_qpair_outstanding(q), 7 - done);
	while (n < 31 && udrv_nvme_read(q, 1, rbuf + 512 * n, n, 1, drv_req_cb, &r[n]) == 0)
		n++;
	CHECK_EQ(udrv_nvme_qpair_outstanding(q), 7);
	CHECK_EQ(n, 7 + done);
	drv_wait(q, r, n, DRV_WAIT_S);
	drv_settle(&q, 1, 20);
	CHECK(drv_once(r, n, "queue full"));
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(r[i].rc, 0);
	CHECK_EQ(udrv_nvme_qpair_outstanding(q), 0);
	CHECK_EQ(udrv_nvme_process_completions(q, 0), 0);
	/* process_completions(max) reaps at most max. */
	for (unsigned i = 0; i < 7; i++) {
		r[i] = (struct drv_req){0};
		CHECK_EQ(udrv_nvme_read(q, 1, rbuf + 512 * i, i, 1, drv_req_cb, &r[i]), 0);
	}
	nh_sleep_ms(20);
	{
		long total = 0;

		for (double end = nh_now() + DRV_WAIT_S; total < 7 && nh_now() < end;) {
			rc = udrv_nvme_process_completions(q, 2);
			CHECK(rc >= 0 && rc <= 2);
			if (rc > 0)
				total += rc;
		}
		CHECK_EQ(total, 7);
	}
	CHECK(drv_once(r, 7, "max"));
	/* Callbacks that submit again keep the queue full without overflowing it. */
	chain_qp = q;
	chain_left = 200;
	chain_done = chain_max_out = 0;
	chain_err = 0;
	for (unsigned i = 0; i < 7; i++)
		CHECK_EQ(udrv_nvme_read(q, 1, rbuf + 512 * i, i, 1, chain_cb, NULL), 0);
	for (double end = nh_now() + DRV_WAIT_S; chain_done < 207 && nh_now() < end;)
		udrv_nvme_process_completions(q, 0);
	CHECK_EQ(chain_done, 207);
	CHECK_EQ(chain_err, 0);
	CHECK(chain_max_out <= 7);
	CHECK_EQ(udrv_nvme_qpair_outstanding(q), 0);
	udrv_nvme_qpair_destroy(q);

	/* Two entries: one command at a time. */
	q = drv_qpair(ctrl, 2);
	memset(r, 0, sizeof(r));
	CHECK_EQ(udrv_nvme_read(q, 1, rbuf, 0, 1, drv_req_cb, &r[0]), 0);
	CHECK_EQ(udrv_nvme_read(q, 1, rbuf, 0, 1, drv_req_cb, &r[1]), -EAGAIN);
	drv_wait(q, r, 1, DRV_WAIT_S);
	CHECK_EQ(r[0].calls, 1);
	CHECK_EQ(r[0].rc, 0);
	CHECK_EQ(drv_read(q, 1, rbuf, 0, 1), 0);
	udrv_nvme_qpair_destroy(q);
	/* 0 entries: min(256, max_entries), so 255 outstanding. */
	q = drv_qpair(ctrl, 0);
	n = 0;
	while (n < 300 && udrv_nvme_read(q, 1, rbuf, 0, 1, NULL, NULL) == 0)
		n++;
	CHECK_EQ(n, 255);
	for (double end = nh_now() + DRV_WAIT_S; udrv_nvme_qpair_outstanding(q) && nh_now() < end;)
		udrv_nvme_process_completions(q, 0);
	CHECK_EQ(udrv_nvme_qpair_outstanding(q), 0);
	udrv_nvme_qpair_destroy(q);
	/* Sizes out of range. */
	errno = 0;
	CHECK(udrv_nvme_qpair_create(ctrl, 1) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(udrv_nvme_qpair_create(ctrl, 1025) == NULL);
	CHECK_EQ(errno, EINVAL);
	q = drv_qpair(ctrl, 1024);
	CHECK_EQ(drv_read(q, 1, rbuf, 0, 1), 0);
	udrv_nvme_qpair_destroy(q);
	udrv_nvme_qpair_destroy(NULL);
}

/* Commands a callback submits reach the controller together, in one SQ doorbell write after
 * the reap loop; a submission outside a callback is rung at once. */
#define CHAINED 4
struct batch {
	struct drv_req first, next[CHAINED];
	uint64_t fetched_before, fetched_after; /* the emulator's io_cmds, in the callback */
	int submit_rc[CHAINED];
};

static uint64_t emu_io_cmds(void)
{
	struct udrv_emu_nvme_stats es;

	CHECK_EQ(udrv_emu_nvme_stats(emu.e, &es), 0);
	return es.io_cmds;
}

static void batch_cb(void *arg, const struct udrv_nvme_cpl *cpl)
{
	struct batch *ch = arg;

	drv_req_cb(&ch->first, cpl);
	ch->fetched_before = emu_io_cmds();
	for (unsigned i = 0; i < CHAINED; i++)
		ch->submit_rc[i] =
		    udrv_nvme_read(qp, 1, rbuf + 4096 * i, 8 * i, 8, drv_req_cb, &ch->next[i]);
	nh_sleep_ms(50); /* the controller polls its doorbells far more often than this */
	ch->fetched_after = emu_io_cmds();
}

static void test_batched_doorbell(void)
{
	struct batch ch = {0};
	struct drv_req r = {0};
	uint64_t before;
	double end;

	CHECK_EQ(udrv_nvme_read(qp, 1, rbuf, 0, 8, batch_cb, &ch), 0);
	CHECK_EQ(drv_wait(qp, &ch.first, 1, DRV_WAIT_S), 0);
	REQUIRE(ch.first.calls == 1);
	CHECK_EQ(ch.first.rc, 0);
	for (unsigned i = 0; i < CHAINED; i++)
		CHECK_EQ(ch.submit_rc[i], 0);
	/* Not one of them was visible to the controller while the callback ran... */
	CHECK_EQ(ch.fetched_after, ch.fetched_before);
	/* ...and all of them after process_completions() returned. */
	CHECK_EQ(drv_wait(qp, ch.next, CHAINED, DRV_WAIT_S), 0);
	CHECK(drv_once(ch.next, CHAINED, "chained reads"));
	for (unsigned i = 0; i < CHAINED; i++)
		CHECK_EQ(ch.next[i].rc, 0);
	CHECK_EQ(emu_io_cmds(), ch.fetched_before + CHAINED);

	/* Outside a callback the doorbell is rung by the submit itself: the controller fetches
	 * the command without anyone polling the queue pair. */
	before = emu_io_cmds();
	CHECK_EQ(udrv_nvme_read(qp, 1, rbuf, 0, 8, drv_req_cb, &r), 0);
	end = nh_now() + DRV_WAIT_S;
	while (emu_io_cmds() == before && nh_now() < end)
		nh_sleep_ms(1);
	CHECK_EQ(emu_io_cmds(), before + 1);
	CHECK_EQ(drv_wait(qp, &r, 1, DRV_WAIT_S), 0);
	CHECK_EQ(r.calls, 1);
	CHECK_EQ(udrv_nvme_qpair_outstanding(qp), 0);
}

/* As many queue pairs as granted, then ENOSPC; a destroyed one's queue is reused. */
static void test_qpair_limit(void)
{
	struct udrv_nvme_qpair *q[QUEUES + 1] = {qp};
	unsigned n = 1;

	for (; n <= QUEUES; n++) {
		q[n] = udrv_nvme_qpair_create(ctrl, 16);
		if (!q[n])
			break;
	}
	CHECK_EQ(n, QUEUES); /* qp and three more */
	errno = 0;
	CHECK(udrv_nvme_qpair_create(ctrl, 16) == NULL);
	CHECK_EQ(errno, ENOSPC);
	CHECK(udrv_errmsg()[0] != '\0');
	/* Each works, on its own queue. */
	for (unsigned i = 0; i < n; i++) {
		drv_fill(wbuf + 4096 * i, 512, 4, 50 + i, 1, 1);
		CHECK_EQ(drv_write(q[i], 1, wbuf + 4096 * i, 50 + i, 1), 0);
	}
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(drv_read(q[(i + 1) % n], 1, rbuf, 50 + i, 1), 0);
		CHECK_EQ(drv_verify(rbuf, 512, 4, 50 + i, 1, 1), -1);
	}
	udrv_nvme_qpair_destroy(q[2]);
	q[2] = udrv_nvme_qpair_create(ctrl, 32);
	CHECK(q[2] != NULL);
	if (q[2])
		CHECK_EQ(drv_read(q[2], 1, rbuf, 50, 1), 0);
	CHECK(udrv_nvme_qpair_create(ctrl, 16) == NULL);
	for (unsigned i = 1; i < n; i++)
		udrv_nvme_qpair_destroy(q[i]);
}

static struct udrv_nvme_qpair *dying_qp;
static int resubmit_rc;

/* Called with -ECANCELED from inside destroy: submitting now must fail, not queue. */
static void resubmit_cb(void *arg, const struct udrv_nvme_cpl *cpl)
{
	drv_req_cb(arg, cpl);
	resubmit_rc = udrv_nvme_read(dying_qp, 1, rbuf, 0, 1, drv_req_cb, NULL);
}

/* Destroy (and close) with commands outstanding: each calls back -ECANCELED, once. */
static void test_destroy_outstanding(void)
{
	struct drv_req r[8] = {{0}};
	struct udrv_nvme_qpair *q = drv_qpair(ctrl, 16);

	/* Held by the controller. */
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=300ms"), 0);
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ(udrv_nvme_read(q, 1, rbuf + 4096 * i, i, 8, drv_req_cb, &r[i]), 0);
	CHECK_EQ(udrv_nvme_write(q, 1, wbuf, 90, 1, drv_req_cb, &r[6]), 0);
	dying_qp = q;
	resubmit_rc = 0;
	CHECK_EQ(udrv_nvme_read(q, 1, rbuf, 0, 1, resubmit_cb, &r[7]), 0);
	udrv_nvme_process_completions(q, 0);
	udrv_nvme_qpair_destroy(q);
	CHECK(drv_once(r, 8, "destroy, held"));
	for (unsigned i = 0; i < 8; i++)
		CHECK_EQ(r[i].rc, -ECANCELED);
	CHECK(resubmit_rc < 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=0"), 0);

	/* Completed by the controller, not yet reaped. */
	q = drv_qpair(ctrl, 16);
	memset(r, 0, sizeof(r));
	for (unsigned i = 0; i < 8; i++)
		CHECK_EQ(udrv_nvme_read(q, 1, rbuf + 4096 * i, i, 8, drv_req_cb, &r[i]), 0);
	nh_sleep_ms(50);
	udrv_nvme_qpair_destroy(q);
	CHECK(drv_once(r, 8, "destroy, completed"));
	for (unsigned i = 0; i < 8; i++)
		CHECK_EQ(r[i].rc, -ECANCELED);

	/* The queue is reused and works. */
	q = drv_qpair(ctrl, 16);
	CHECK_EQ(drv_read(q, 1, rbuf, 0, 1), 0);
	udrv_nvme_qpair_destroy(q);
}

static void test_close_outstanding(void)
{
	struct drv_req r[6] = {{0}};
	struct udrv_nvme_ctrlr *c = drv_open(&emu, 2, 0);
	struct udrv_nvme_qpair *q1 = drv_qpair(c, 8), *q2 = drv_qpair(c, 8);
	uint8_t *b = udrv_nvme_dma_alloc(c, 8192);
	double t0;

	REQUIRE(b);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=500ms"), 0);
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ(udrv_nvme_read(q1, 1, b, i, 1, drv_req_cb, &r[i]), 0);
		CHECK_EQ(udrv_nvme_read(q2, 1, b + 4096, i, 1, drv_req_cb, &r[3 + i]), 0);
	}
	t0 = nh_now();
	udrv_nvme_close(c); /* queue pairs and buffers with it */
	CHECK(nh_now() - t0 < 2);
	CHECK(drv_once(r, 6, "close"));
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ(r[i].rc, -ECANCELED);
	CHECK_EQ(udrv_emu_nvme_inject(emu.e, "latency=0"), 0);
	/* The next open finds the controller in order. */
	c = drv_open(&emu, 2, 0);
	q1 = drv_qpair(c, 8);
	b = udrv_nvme_dma_alloc(c, 4096);
	REQUIRE(b);
	CHECK_EQ(drv_read(q1, 1, b, 0, 1), 0);
	udrv_nvme_close(c);
}

/* Raw admin commands: Identify into a caller's buffer, Get Features, a failing one. */
static void test_admin(void)
{
	uint8_t id[4096];
	struct udrv_nvme_cpl cpl;
	uint8_t cmd[64] = {0};

	cmd[0] = 0x06; /* Identify */
	cmd[40] = 1;   /* CDW10: CNS 1, controller */
	CHECK_EQ(udrv_nvme_admin(ctrl, cmd, id, sizeof(id), false, &cpl), 0);
	CHECK_EQ(cpl.rc, 0);
	CHECK(!memcmp(id + 4, SERIAL, strlen(SERIAL)));
	memset(cmd, 0, sizeof(cmd));
	cmd[0] = 0x0a; /* Get Features, Number of Queues */
	cmd[40] = 0x07;
	CHECK_EQ(udrv_nvme_admin(ctrl, cmd, NULL, 0, false, &cpl), 0);
	CHECK_EQ(cpl.dw0 & 0xffff, QUEUES - 1);
	memset(cmd, 0, sizeof(cmd));
	cmd[0] = 0x7f; /* no such opcode */
	CHECK_EQ(udrv_nvme_admin(ctrl, cmd, NULL, 0, false, &cpl), -EIO);
	CHECK_EQ(cpl.status & DRV_SC_MASK, 0x001);
	CHECK_STR(udrv_nvme_status_str(cpl.status), "Invalid Command Opcode");
	CHECK(udrv_errmsg()[0] != '\0');
	CHECK_EQ(udrv_nvme_admin(ctrl, NULL, NULL, 0, false, &cpl), -EINVAL);
	memset(cmd, 0, sizeof(cmd));
	cmd[0] = 0x06;
	cmd[40] = 1;
	CHECK_EQ(udrv_nvme_admin(ctrl, cmd, wbuf, MAX_XFER + 4096, false, &cpl), -EINVAL);
	/* I/O still fine after a failed admin command. */
	CHECK_EQ(drv_read(qp, 1, rbuf, 0, 1), 0);
}

/* UDRV_NVME_INTERRUPTS: a queue pair's eventfd becomes readable when it has completions. */
static void test_interrupts(void)
{
	struct udrv_nvme_opts o = {.flags = UDRV_NVME_INTERRUPTS, .io_queues = 2};
	struct udrv_nvme_ctrlr *c = drv_open_opts(&emu, &o);
	struct udrv_nvme_qpair *q1 = drv_qpair(c, 16), *q2 = drv_qpair(c, 16);
	struct drv_req r = {0};
	struct pollfd pf[2];
	uint8_t *b = udrv_nvme_dma_alloc(c, 4096);
	uint64_t v;

	REQUIRE(b);
	pf[0] = (struct pollfd){.fd = udrv_nvme_qpair_eventfd(q1), .events = POLLIN};
	pf[1] = (struct pollfd){.fd = udrv_nvme_qpair_eventfd(q2), .events = POLLIN};
	CHECK(pf[0].fd >= 0);
	CHECK(pf[1].fd >= 0);
	CHECK(pf[0].fd != pf[1].fd);
	if (pf[0].fd >= 0 && pf[1].fd >= 0) {
		for (int round = 0; round < 3; round++) {
			r = (struct drv_req){0};
			CHECK_EQ(udrv_nvme_read(q1, 1, b, (uint64_t)round, 1, drv_req_cb, &r), 0);
			CHECK_EQ(poll(pf, 1, 2000), 1);
			CHECK_EQ(read(pf[0].fd, &v, sizeof(v)), (ssize_t)sizeof(v));
			CHECK_EQ(udrv_nvme_process_completions(q1, 0), 1);
			CHECK_EQ(r.calls, 1);
			CHECK_EQ(r.rc, 0);
			CHECK_EQ(poll(pf + 1, 1, 0), 0); /* nothing for the other queue pair */
		}
		/* And the other one's. */
		r = (struct drv_req){0};
		CHECK_EQ(udrv_nvme_read(q2, 1, b, 0, 1, drv_req_cb, &r), 0);
		CHECK_EQ(poll(pf + 1, 1, 2000), 1);
		CHECK_EQ(poll(pf, 1, 0), 0);
		CHECK_EQ(read(pf[1].fd, &v, sizeof(v)), (ssize_t)sizeof(v));
		drv_wait(q2, &r, 1, DRV_WAIT_S);
		CHECK_EQ(r.calls, 1);
	}
	udrv_nvme_close(c);
}

/* udrv_nvme_opts.domain: the driver uses the caller's DMA domain. */
static void test_shared_domain(void)
{
	struct udrv_dma_domain *dom = udrv_dma_domain_create();
	struct udrv_nvme_opts o = {.io_queues = 1, .domain = dom};
	struct udrv_nvme_ctrlr *c;
	struct udrv_nvme_qpair *q;
	uint8_t *b;

	REQUIRE(dom);
	c = drv_open_opts(&emu, &o);
	CHECK(udrv_nvme_domain(c) == dom);
	q = drv_qpair(c, 8);
	CHECK_EQ(udrv_nvme_qpair_eventfd(q), -1); /* opened without interrupts */
	b = udrv_dma_zalloc(dom, 16384, 4096, NULL);
	REQUIRE(b);
	drv_fill(b + 4, 512, 12, 70, 8, 1);
	CHECK_EQ(drv_write(q, 1, b + 4, 70, 8), 0);
	memset(b + 8192, 0, 4096);
	CHECK_EQ(drv_read(q, 1, b + 8192, 70, 8), 0);
	CHECK_EQ(drv_verify(b + 8192, 512, 12, 70, 8, 1), -1);
	udrv_dma_free(dom, b);
	udrv_nvme_close(c);
	udrv_dma_domain_destroy(dom);
}

int main(void)
{
	udrv_log_set_level(UDRV_LOG_ERR);
	drv_emu_up(&emu,
		   (struct udrv_emu_nvme_opts){.size = SIZE, .queues = QUEUES, .serial = SERIAL});
	RUN(test_open_info);
	RUN(test_open_4k_namespaces);
	RUN(test_open_errors);

	ctrl = drv_open(&emu, QUEUES, 0);
	qp = drv_qpair(ctrl, 0);
	wbuf = udrv_nvme_dma_alloc(ctrl, 2 * MAX_XFER);
	rbuf = udrv_nvme_dma_alloc(ctrl, 2 * MAX_XFER);
	REQUIRE(wbuf && rbuf);
	RUN(test_read_write);
	RUN(test_compare);
	RUN(test_flush);
	RUN(test_zeroes_deallocate);
	RUN(test_vectors_prp);
	RUN(test_vectors_sgl);
	RUN(test_bad_args);
	RUN(test_queue_full);
	RUN(test_batched_doorbell);
	RUN(test_qpair_limit);
	RUN(test_destroy_outstanding);
	RUN(test_admin);
	{
		struct udrv_nvme_stats st;

		udrv_nvme_stats(ctrl, &st);
		CHECK_EQ(st.bad_cqes + st.timeouts + st.resets + st.resubmits, 0);
	}
	{
		/* The driver never gave the controller a bad data pointer or doorbell. */
		struct udrv_emu_nvme_stats es;

		CHECK_EQ(udrv_emu_nvme_stats(emu.e, &es), 0);
		CHECK_EQ(es.bad_dptr, 0);
		CHECK_EQ(es.bad_doorbells, 0);
		CHECK(es.write_cmds > 100 && es.read_cmds > 100);
	}
	udrv_nvme_qpair_destroy(qp);
	udrv_dma_free(udrv_nvme_domain(ctrl), wbuf);
	udrv_dma_free(udrv_nvme_domain(ctrl), rbuf);
	udrv_nvme_close(ctrl);
	RUN(test_close_outstanding);
	RUN(test_shared_domain);
	RUN(test_interrupts);
	drv_emu_down(&emu);
	return test_done();
}
