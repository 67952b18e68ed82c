/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: arbitrary bytes as a stream of client messages, with real fds attached,
 * fed to vfu_handle_msg() of a device laid out like an NVMe model (64-bit BAR0 with an mmap
 * area and MSI-X table/PBA, a callback BAR whose registers make the model DMA and raise
 * interrupts, an I/O BAR, MSI, a vendor capability).
 *
 * Input: one mode byte, then records of [ctl][message]. The message is as long as its
 * header's msg_size says (at least 16 bytes, at most what is left, so the handler sees
 * truncation). ctl bits 0-2: how many fds come with it; bits 3-4: their kind (memfd,
 * eventfd, pipe, mixed). A message that makes the handler close the connection is followed
 * by the disconnect clean-up, and the stream continues as a new client.
 * Mode bit 0: start negotiated (skip VERSION); bit 1: client takes no fds; bit 2: client's
 * max_data_xfer_size is 64.
 *
 * Every run checks that the fd table is back to where it was: no fd leaks.
 *
 * Build with clang -fsanitize=fuzzer,address,undefined together with the src/emu sources,
 * src/core/log.c and json-c (the CMake target does), then run:
 *   fuzz_vfio_user_server -max_total_time=60 tests/fuzz/corpus/server
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "emu/vfu_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t regs[6][0x4000];
static volatile uint8_t reply_sum;
static struct udrv_vfu_dev *cur;

static int fz_read(void *ctx, unsigned bar, uint64_t off, void *buf, size_t len)
{
	if (off + len > sizeof(regs[0]))
		abort(); /* the library promised a range inside the BAR */
	if (bar == 2 && off == 0xff0)
		return -EIO;
	if (bar == 2 && off == 0xff4)
		return (int)len - 1; /* a short callback */
	memcpy(buf, regs[bar] + off, len);
	return (int)len;
}

/* BAR2 registers: 0x100 iova (8), 0x108 length (4), 0x10c command (1 byte):
 * 1 dma_ptr + touch, 2 dma_write, 3 dma_read, 4 irq trigger (type = byte 0x110, vector =
 * byte 0x111). */
static int fz_write(void *ctx, unsigned bar, uint64_t off, const void *buf, size_t len)
{
	static uint8_t tmp[8192];
	uint64_t iova;
	uint32_t n;
	uint8_t *p;

	if (off + len > sizeof(regs[0]))
		abort();
	if (bar == 2 && off == 0xff0)
		return -EIO;
	memcpy(regs[bar] + off, buf, len);
	if (bar != 2 || off > 0x10c || off + len <= 0x10c)
		return (int)len;
	memcpy(&iova, regs[2] + 0x100, 8);
	memcpy(&n, regs[2] + 0x108, 4);
	n %= sizeof(tmp) + 1;
	switch (regs[2][0x10c]) {
	case 1:
		p = udrv_vfu_dma_ptr(cur, iova, n, regs[2][0x10d] & 1);
		if (p && (regs[2][0x10d] & 1))
			memset(p, 0x5a, n);
		else if (p)
			memcpy(tmp, p, n);
		break;
	case 2:
		memset(tmp, 0xa5, n);
		udrv_vfu_dma_write(cur, iova, tmp, n);
		break;
	case 3:
		udrv_vfu_dma_read(cur, iova, tmp, n);
		break;
	case 4:
		udrv_vfu_irq_trigger(cur, (enum udrv_irq_type)(regs[2][0x110] % 6), regs[2][0x111]);
		break;
	}
	return (int)len;
}

static const struct udrv_vfu_region_ops fz_ops = {fz_read, fz_write};

static int fz_reset(void *ctx)
{
	return regs[2][0x200] ? -EBUSY : 0;
}

/* Replies are checked for consistency and dropped. */
static int fz_send(void *ctx, const struct iovec *iov, int iovcnt, const int *fds, size_t nfds)
{
	struct vfio_user_header h;
	size_t total = 0;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (iovcnt < 1 || iov[0].iov_len < sizeof(h) || nfds > 1)
		abort();
	memcpy(&h, iov[0].iov_base, sizeof(h));
	if (h.msg_size != total || (h.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_REPLY ||
	    total > VFIO_USER_MAX_MSG_SIZE)
		abort();
	/* Read every byte, so that ASan checks the reply buffers. */
	for (int i = 0; i < iovcnt; i++)
		for (size_t j = 0; j < iov[i].iov_len; j++)
			reply_sum += ((const uint8_t *)iov[i].iov_base)[j];
	return 0;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static struct udrv_vfu_dev *make_dev(void)
{
	struct udrv_vfu_opts o = {
	    .vendor_id = 0x1b36,
	    .device_id = 0x0010,
	    .class_code = 0x010802,
	    .reset = fz_reset,
	    .max_dma_maps = 8,
	};
	uint8_t vcap[8] = {0, 0, 8, 1}, vmask[8] = {0, 0, 0, 0, 0xff, 0xff};
	struct udrv_vfu_dev *dev = vfu_dev_alloc(&o);

	if (!dev || udrv_vfu_add_bar(dev, 0, 0x4000, UDRV_VFU_BAR_MEM64, &fz_ops, NULL) ||
	    udrv_vfu_add_bar(dev, 2, 0x1000, 0, &fz_ops, NULL) ||
	    udrv_vfu_add_bar(dev, 4, 0x100, UDRV_VFU_BAR_IO, &fz_ops, NULL) ||
	    !udrv_vfu_bar_mmap_area(dev, 0, 0x1000, 0x1000) ||
	    !udrv_vfu_bar_mmap_area(dev, 0, 0x3000, 0x1000) ||
	    udrv_vfu_add_msix(dev, 70, 0, 0, 0, 0x800) < 0 || udrv_vfu_add_msi(dev, 4) < 0 ||
	    udrv_vfu_add_cap(dev, 9, vcap, sizeof(vcap), vmask) < 0)
		abort();
	return dev;
}

static size_t make_fds(uint8_t ctl, int *fds)
{
	size_t n = ctl & 7;
	unsigned kind = (ctl >> 3) & 3;

	for (size_t i = 0; i < n; i++) {
		unsigned k = kind == 3 ? (unsigned)(i % 3) : kind;
		int p[2];

		fds[i] = -1;
		if (k == 0) {
			fds[i] = memfd_create("fz", MFD_CLOEXEC);
			if (fds[i] >= 0 && ftruncate(fds[i], 0x10000) < 0)
				abort();
		} else if (k == 1) {
			fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		} else if (pipe2(p, O_CLOEXEC) == 0) {
			fds[i] = p[1]; /* a write end whose reader is gone: SIGPIPE bait */
			close(p[0]);
		}
		if (fds[i] < 0)
			abort();
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct vfu_sink sink = {fz_send, NULL};
	struct udrv_vfu_dev *dev;
	uint8_t mode;
	size_t pos = 1;
	int base, now;

	if (size < 1)
		return 0;
	/* Per run: between runs libFuzzer itself may open fds (its symbolizer's pipes). */
	base = count_fds();
	memset(regs, 0, sizeof(regs));
	dev = cur = make_dev();
	mode = data[0];
	dev->negotiated = mode & 1;
	if (mode & 2)
		dev->client_max_fds = 0;
	if (mode & 4)
		dev->client_max_xfer = 64;

	while (pos < size) {
		uint8_t ctl = data[pos++];
		struct vfio_user_header h = {0};
		size_t left = size - pos, len;
		int fds[8];
		size_t nfds;

		if (left >= sizeof(h))
			memcpy(&h, data + pos, sizeof(h));
		len = h.msg_size < sizeof(h) ? sizeof(h) : h.msg_size;
		if (len > left)
			len = left;
		nfds = make_fds(ctl, fds);
		if (vfu_handle_msg(dev, data + pos, len, fds, nfds, &sink) < 0)
			vfu_conn_close(dev); /* as the server does; the stream goes on */
		for (size_t i = 0; i < nfds; i++)
			if (fds[i] != -1)
				abort(); /* the handler owns every fd */
		pos += len;
	}
	vfu_dev_free(dev);
	cur = NULL;
	now = count_fds();
	if (now != base) {
		fprintf(stderr, "fd leak: %d open, %d before\n", now, base);
		abort();
	}
	return 0;
}
