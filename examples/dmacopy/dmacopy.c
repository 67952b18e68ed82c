/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Driver for the sample DMA copy engine. Read it top to bottom: bring-up follows the
 * "datasheet" (dmacopy_regs.h) step by step, then submit and poll are the fast path.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <udrv/device.h>
#include <udrv/log.h>

#include "dmacopy.h"
#include "dmacopy_regs.h"

struct dmacopy {
	struct udrv_device *dev;
	struct udrv_dma_domain *dom;
	volatile uint32_t *doorbell; /* BAR2, mapped: writing it tells the device to look */
	struct dmacopy_desc *sq;     /* submission ring, our DMA memory */
	struct dmacopy_cqe *cq;	     /* completion ring, written by the device */
	unsigned entries;	     /* ring size, a power of two */
	unsigned sq_tail;	     /* next slot we fill */
	unsigned sq_head;	     /* how far the device has consumed (from completions) */
	unsigned cq_head;	     /* next completion we read */
	unsigned phase;		     /* phase bit of a new completion at cq_head */
	unsigned inflight;
	unsigned long bogus;
	int irq_fd; /* eventfd for MSI-X vector 0, -1 when the device has none */
};

static int reg_write(struct dmacopy *dc, unsigned off, uint32_t v)
{
	int rc = udrv_device_region_write(dc->dev, DMACOPY_BAR_REGS, off, &v, 4);

	return rc < 0 ? rc : 0;
}

static int reg_read(struct dmacopy *dc, unsigned off, uint32_t *v)
{
	int rc = udrv_device_region_read(dc->dev, DMACOPY_BAR_REGS, off, v, 4);

	return rc < 0 ? rc : 0;
}

int dmacopy_open(const char *name, unsigned entries, struct dmacopy **out)
{
	struct dmacopy *dc = calloc(1, sizeof(*dc));
	uint64_t sq_iova, cq_iova;
	uint32_t id = 0, max = 0, status = 0;
	uint16_t vendor = 0, device = 0;
	int rc;

	*out = NULL;
	if (!dc)
		return -ENOMEM;
	dc->irq_fd = -1;
	rc = udrv_device_open(name, NULL, &dc->dev);
	if (rc < 0)
		goto fail;
	dc->dom = udrv_device_domain(dc->dev);

	/* Step 1: is this our device? */
	udrv_device_config_read16(dc->dev, 0x00, &vendor);
	udrv_device_config_read16(dc->dev, 0x02, &device);
	rc = reg_read(dc, DMACOPY_REG_ID, &id);
	if (rc == 0 &&
	    (vendor != DMACOPY_VENDOR_ID || device != DMACOPY_DEVICE_ID || id != DMACOPY_ID))
		rc = -ENODEV;
	if (rc == 0)
		rc = reg_read(dc, DMACOPY_REG_MAX_ENTRIES, &max);
	if (rc < 0)
		goto fail;
	if (entries < 2 || entries > max || (entries & (entries - 1))) {
		rc = -EINVAL;
		goto fail;
	}
	dc->entries = entries;

	/* Step 2: rings in DMA memory, doorbell page mapped. */
	dc->sq = udrv_dma_zalloc(dc->dom, entries * sizeof(*dc->sq), 4096, &sq_iova);
	dc->cq = udrv_dma_zalloc(dc->dom, entries * sizeof(*dc->cq), 4096, &cq_iova);
	dc->doorbell = udrv_device_region_map(dc->dev, DMACOPY_BAR_DOORBELL);
	if (!dc->sq || !dc->cq || !dc->doorbell) {
		rc = -errno;
		goto fail;
	}

	/* Step 3: interrupt on an eventfd (optional: the driver also works by polling). */
	if (udrv_device_irq_count(dc->dev, UDRV_IRQ_MSIX) > 0) {
		dc->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (dc->irq_fd >= 0 &&
		    udrv_device_irq_enable(dc->dev, UDRV_IRQ_MSIX, 0, 1, &dc->irq_fd) < 0) {
			close(dc->irq_fd);
			dc->irq_fd = -1;
		}
	}

	/* Step 4: program the rings, enable, check READY. */
	udrv_device_set_bus_master(dc->dev, true);
	rc = reg_write(dc, DMACOPY_REG_CTRL, 0);
	if (!rc)
		rc = reg_write(dc, DMACOPY_REG_SQ_LO, (uint32_t)sq_iova);
	if (!rc)
		rc = reg_write(dc, DMACOPY_REG_SQ_HI, (uint32_t)(sq_iova >> 32));
	if (!rc)
		rc = reg_write(dc, DMACOPY_REG_CQ_LO, (uint32_t)cq_iova);
	if (!rc)
		rc = reg_write(dc, DMACOPY_REG_CQ_HI, (uint32_t)(cq_iova >> 32));
	if (!rc)
		rc = reg_write(dc, DMACOPY_REG_ENTRIES, entries);
	if (!rc)
		rc = reg_write(dc, DMACOPY_REG_CTRL, DMACOPY_CTRL_ENABLE);
	if (!rc)
		rc = reg_read(dc, DMACOPY_REG_STATUS, &status);
	if (!rc && status != DMACOPY_STATUS_READY)
		rc = -EIO;
	if (rc < 0)
		goto fail;
	dc->phase = 1; /* the device writes phase 1 on its first pass */
	*out = dc;
	return 0;
fail:
	dmacopy_close(dc);
	return rc;
}

void dmacopy_close(struct dmacopy *dc)
{
	if (!dc)
		return;
	if (dc->dev) {
		/* Stop the device before its rings are freed: it must not DMA into freed memory. */
		reg_write(dc, DMACOPY_REG_CTRL, 0);
		udrv_device_irq_disable(dc->dev, UDRV_IRQ_MSIX);
		udrv_dma_free(dc->dom, dc->sq);
		udrv_dma_free(dc->dom, dc->cq);
		udrv_device_close(dc->dev);
	}
	if (dc->irq_fd >= 0)
		close(dc->irq_fd);
	free(dc);
}

struct udrv_dma_domain *dmacopy_domain(struct dmacopy *dc)
{
	return dc->dom;
}

int dmacopy_submit(struct dmacopy *dc, uint64_t src, uint64_t dst, uint32_t len, uint16_t tag)
{
	unsigned next = (dc->sq_tail + 1) & (dc->entries - 1);

	/* One slot stays empty so that a full ring is distinguishable from an empty one. */
	if (next == dc->sq_head)
		return -EAGAIN;
	dc->sq[dc->sq_tail] = (struct dmacopy_desc){.src = src, .dst = dst, .len = len, .tag = tag};
	dc->sq_tail = next;
	dc->inflight++;
	udrv_dma_wmb(); /* the descriptor is visible before the doorbell */
	*dc->doorbell = dc->sq_tail;
	return 0;
}

int dmacopy_poll(struct dmacopy *dc, struct dmacopy_done *done, unsigned max)
{
	unsigned n = 0;

	while (n < max) {
		volatile struct dmacopy_cqe *c = &dc->cq[dc->cq_head];
		struct dmacopy_cqe e;

		if ((c->phase & 1) != dc->phase)
			break;
		udrv_dma_rmb(); /* the phase bit before the rest of the entry */
		e = *(struct dmacopy_cqe *)c;
		/* The device is untrusted: an entry must complete something we submitted. */
		if (dc->inflight == 0 || e.sq_head >= dc->entries) {
			dc->bogus++;
			return -EIO;
		}
		dc->sq_head = e.sq_head;
		dc->inflight--;
		done[n].tag = e.tag;
		done[n].status = e.status;
		n++;
		if (++dc->cq_head == dc->entries) {
			dc->cq_head = 0;
			dc->phase ^= 1;
		}
	}
	return (int)n;
}

int dmacopy_wait(struct dmacopy *dc, int timeout_ms)
{
	struct pollfd p = {.fd = dc->irq_fd, .events = POLLIN};
	uint64_t count;
	int rc;

	if (dc->irq_fd < 0) {
		usleep((useconds_t)timeout_ms * 1000u);
		return 0;
	}
	rc = poll(&p, 1, timeout_ms);
	if (rc <= 0)
		return rc < 0 ? -errno : 0;
	return read(dc->irq_fd, &count, sizeof(count)) == sizeof(count) ? 1 : 0;
}

int dmacopy_check(struct dmacopy *dc)
{
	uint32_t status = 0;
	int rc = reg_read(dc, DMACOPY_REG_STATUS, &status);

	if (rc < 0)
		return rc;
	return status == DMACOPY_STATUS_READY ? 0 : -EIO;
}

unsigned dmacopy_inflight(const struct dmacopy *dc)
{
	return dc->inflight;
}

unsigned long dmacopy_bogus(const struct dmacopy *dc)
{
	return dc->bogus;
}
