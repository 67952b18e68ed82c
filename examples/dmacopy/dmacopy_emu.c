/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sample device, emulated: a DMA copy engine served over vfio-user (see dmacopy_regs.h).
 *
 *   udrv-dmacopy-emu --socket PATH
 *
 * Everything the driver writes is untrusted input: ring addresses, sizes, the doorbell value
 * and every descriptor are checked, and all DMA goes through udrv_vfu_dma_*(), which only
 * reaches memory the driver mapped.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <udrv/log.h>
#include <udrv/vfio_user_server.h>

#include "dmacopy_regs.h"

struct engine {
	struct udrv_vfu_dev *dev;
	volatile uint32_t *doorbell; /* BAR2, shared with the driver */
	/* Registers, written on the serving thread, read by the poller: the poller is paused
	 * around reset, and reads the ring setup only after ENABLE publishes it. */
	uint64_t sq, cq;
	uint32_t entries;
	_Atomic uint32_t status;
	_Atomic uint64_t bytes;
	/* Set by the poller while it works on the rings. Disable clears READY and waits for this
	 * to drop (both seq_cst: one side always sees the other), so after a disable the serving
	 * thread owns everything below and the rings of an old setup are never touched again. */
	_Atomic int busy;
	/* Ring positions: the poller's while READY. */
	uint32_t sq_head, cq_tail, phase;
	uint8_t bounce[DMACOPY_MAX_LEN];
};

static struct udrv_vfu_dev *the_dev;

static void stop_on_signal(int sig)
{
	(void)sig;
	udrv_vfu_stop(the_dev); /* async-signal-safe */
}

static void disable(struct engine *e)
{
	atomic_store(&e->status, 0);
	while (atomic_load(&e->busy))
		usleep(50);
	e->sq_head = e->cq_tail = 0;
	e->phase = 1;
	*e->doorbell = 0;
}

static int regs_read(void *ctx, unsigned bar, uint64_t off, void *buf, size_t len)
{
	struct engine *e = ctx;
	uint64_t bytes = atomic_load(&e->bytes);
	uint32_t v;

	if (len != 4 || (off & 3))
		return -EINVAL; /* 32-bit registers only */
	switch (off) {
	case DMACOPY_REG_ID:
		v = DMACOPY_ID;
		break;
	case DMACOPY_REG_MAX_ENTRIES:
		v = DMACOPY_MAX_ENTRIES;
		break;
	case DMACOPY_REG_SQ_LO:
		v = (uint32_t)e->sq;
		break;
	case DMACOPY_REG_SQ_HI:
		v = (uint32_t)(e->sq >> 32);
		break;
	case DMACOPY_REG_CQ_LO:
		v = (uint32_t)e->cq;
		break;
	case DMACOPY_REG_CQ_HI:
		v = (uint32_t)(e->cq >> 32);
		break;
	case DMACOPY_REG_ENTRIES:
		v = e->entries;
		break;
	case DMACOPY_REG_CTRL:
		v = (atomic_load(&e->status) & DMACOPY_STATUS_READY) ? DMACOPY_CTRL_ENABLE : 0;
		break;
	case DMACOPY_REG_STATUS:
		v = atomic_load(&e->status);
		break;
	case DMACOPY_REG_BYTES_LO:
		v = (uint32_t)bytes;
		break;
	case DMACOPY_REG_BYTES_HI:
		v = (uint32_t)(bytes >> 32);
		break;
	default:
		v = 0;
	}
	memcpy(buf, &v, 4);
	return 4;
}

static int regs_write(void *ctx, unsigned bar, uint64_t off, const void *buf, size_t len)
{
	struct engine *e = ctx;
	uint32_t v;

	if (len != 4 || (off & 3))
		return -EINVAL;
	memcpy(&v, buf, 4);
	if (atomic_load(&e->status) & DMACOPY_STATUS_READY && off != DMACOPY_REG_CTRL)
		return 4; /* ring registers are frozen while enabled */
	switch (off) {
	case DMACOPY_REG_SQ_LO:
		e->sq = (e->sq & ~0xffffffffull) | v;
		break;
	case DMACOPY_REG_SQ_HI:
		e->sq = (e->sq & 0xffffffffull) | (uint64_t)v << 32;
		break;
	case DMACOPY_REG_CQ_LO:
		e->cq = (e->cq & ~0xffffffffull) | v;
		break;
	case DMACOPY_REG_CQ_HI:
		e->cq = (e->cq & 0xffffffffull) | (uint64_t)v << 32;
		break;
	case DMACOPY_REG_ENTRIES:
		e->entries = v;
		break;
	case DMACOPY_REG_CTRL:
		if (!(v & DMACOPY_CTRL_ENABLE)) {
			disable(e);
		} else if (!(atomic_load(&e->status) & DMACOPY_STATUS_READY)) {
			bool ok = e->entries >= 2 && e->entries <= DMACOPY_MAX_ENTRIES &&
				  !(e->entries & (e->entries - 1)) && e->sq % 64 == 0 &&
				  e->cq % 64 == 0;
			disable(e);
			/* Release: the poller sees the ring setup before READY. */
			atomic_store(&e->status, ok ? DMACOPY_STATUS_READY : DMACOPY_STATUS_FATAL);
		}
		break;
	default:
		break; /* read-only or reserved: ignored, as hardware does */
	}
	return 4;
}

static uint16_t copy_one(struct engine *e, const struct dmacopy_desc *d)
{
	const void *src;
	void *dst;

	if (d->flags)
		return DMACOPY_SC_BAD_FLAGS;
	if (d->len == 0 || d->len > DMACOPY_MAX_LEN)
		return DMACOPY_SC_BAD_LENGTH;
	/* Zero copy when both buffers are shared by fd; otherwise through a bounce buffer and
	 * DMA_READ/DMA_WRITE messages. Either way only driver-mapped memory is touched. */
	src = udrv_vfu_dma_ptr(e->dev, d->src, d->len, false);
	dst = udrv_vfu_dma_ptr(e->dev, d->dst, d->len, true);
	if (src && dst) {
		memmove(dst, src, d->len);
	} else if (udrv_vfu_dma_read(e->dev, d->src, e->bounce, d->len) < 0 ||
		   udrv_vfu_dma_write(e->dev, d->dst, e->bounce, d->len) < 0) {
		return DMACOPY_SC_BAD_ADDRESS;
	}
	atomic_fetch_add(&e->bytes, d->len);
	return DMACOPY_SC_OK;
}

static void fatal(struct engine *e, const char *why)
{
	fprintf(stderr, "%s\n", why);
	atomic_store(&e->status, DMACOPY_STATUS_FATAL);
}

/* The device thread: consume descriptors up to the doorbell, post completions, interrupt. */
static int poll_engine(void *ctx)
{
	struct engine *e = ctx;
	uint32_t tail, done = 0;

	atomic_store(&e->busy, 1);
	if (atomic_load(&e->status) != DMACOPY_STATUS_READY) {
		atomic_store(&e->busy, 0);
		return 0;
	}
	tail = __atomic_load_n(e->doorbell, __ATOMIC_ACQUIRE);
	if (tail >= e->entries) {
		fatal(e, "dmacopy: doorbell beyond the ring; stopping until disabled");
		atomic_store(&e->busy, 0);
		return 1;
	}
	while (e->sq_head != tail && atomic_load(&e->status) == DMACOPY_STATUS_READY) {
		struct dmacopy_desc d;
		struct dmacopy_cqe c = {0};

		if (udrv_vfu_dma_read(e->dev, e->sq + (uint64_t)e->sq_head * sizeof(d), &d,
				      sizeof(d)) < 0) {
			fatal(e, "dmacopy: submission ring not mapped; stopping until disabled");
			break;
		}
		c.tag = d.tag;
		c.status = copy_one(e, &d);
		e->sq_head = (e->sq_head + 1) & (e->entries - 1);
		c.sq_head = e->sq_head;
		c.phase = e->phase;
		if (udrv_vfu_dma_write(e->dev, e->cq + (uint64_t)e->cq_tail * sizeof(c), &c,
				       sizeof(c)) < 0) {
			fatal(e, "dmacopy: completion ring not mapped; stopping until disabled");
			break;
		}
		if (++e->cq_tail == e->entries) {
			e->cq_tail = 0;
			e->phase ^= 1;
		}
		done++;
	}
	atomic_store(&e->busy, 0);
	if (done)
		udrv_vfu_irq_trigger(e->dev, UDRV_IRQ_MSIX, 0); /* -ENOENT: driver polls */
	return (int)done;
}

static int reset(void *ctx)
{
	struct engine *e = ctx;

	disable(e);
	e->sq = e->cq = 0;
	e->entries = 0;
	atomic_store(&e->bytes, 0);
	return 0;
}

static void disconnected(void *ctx)
{
	disable(ctx); /* the driver's memory is gone: never touch those rings again */
}

int main(int argc, char **argv)
{
	static const struct udrv_vfu_region_ops regs_ops = {regs_read, regs_write};
	struct engine *e = calloc(1, sizeof(*e));
	const char *path = NULL;
	int rc;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			path = argv[++i];
	if (!path || !e) {
		fprintf(stderr, "usage: udrv-dmacopy-emu --socket PATH\n");
		return 2;
	}
	struct udrv_vfu_opts o = {
	    .socket_path = path,
	    .vendor_id = DMACOPY_VENDOR_ID,
	    .device_id = DMACOPY_DEVICE_ID,
	    .class_code = DMACOPY_CLASS,
	    .ctx = e,
	    .reset = reset,
	    .disconnected = disconnected,
	};
	e->dev = the_dev = udrv_vfu_create(&o);
	if (!e->dev) {
		fprintf(stderr, "udrv-dmacopy-emu: %s\n", udrv_errmsg());
		return 1;
	}
	if (udrv_vfu_add_bar(e->dev, DMACOPY_BAR_REGS, DMACOPY_REGS_SIZE, UDRV_VFU_BAR_MEM32,
			     &regs_ops, e) < 0 ||
	    udrv_vfu_add_bar(e->dev, DMACOPY_BAR_DOORBELL, 4096, UDRV_VFU_BAR_MEM32, NULL, e) < 0 ||
	    !(e->doorbell = udrv_vfu_bar_mmap_area(e->dev, DMACOPY_BAR_DOORBELL, 0, 4096)) ||
	    udrv_vfu_add_bar(e->dev, DMACOPY_BAR_MSIX, 16384, UDRV_VFU_BAR_MEM32, NULL, e) < 0 ||
	    udrv_vfu_add_msix(e->dev, 1, DMACOPY_BAR_MSIX, 0, DMACOPY_BAR_MSIX, 0x2000) < 0 ||
	    udrv_vfu_set_poller(e->dev, poll_engine) < 0) {
		fprintf(stderr, "udrv-dmacopy-emu: %s\n", udrv_errmsg());
		udrv_vfu_destroy(e->dev);
		return 1;
	}
	disable(e);
	signal(SIGINT, stop_on_signal);
	signal(SIGTERM, stop_on_signal);
	fprintf(stderr, "udrv-dmacopy-emu: serving on %s\n", path);
	rc = udrv_vfu_run(e->dev);
	udrv_vfu_destroy(e->dev);
	free(e);
	return rc < 0 ? 1 : 0;
}
