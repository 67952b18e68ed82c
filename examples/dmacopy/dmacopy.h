/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A driver for the sample DMA copy engine (dmacopy_regs.h), on udrv's device model only: it
 * runs unchanged on any backend that offers the device (today: vfio-user).
 *
 * Threads: one thread owns a struct dmacopy (submit, poll, wait); no locks inside.
 * Errors: negative errno; udrv_errmsg() or the text of the call says why.
 */
#ifndef DMACOPY_H
#define DMACOPY_H

#include <stdint.h>

#include <udrv/dma.h>

struct dmacopy;

struct dmacopy_done {
	uint16_t tag;
	uint16_t status; /* DMACOPY_SC_* */
};

/* Open the device (e.g. "vfio-user:/tmp/dmacopy.sock") with rings of entries slots. */
int dmacopy_open(const char *name, unsigned entries, struct dmacopy **out);
void dmacopy_close(struct dmacopy *dc);

/* The DMA domain: allocate buffers here (udrv_dma_zalloc) and pass their IOVAs. */
struct udrv_dma_domain *dmacopy_domain(struct dmacopy *dc);

/* Queue one copy. Returns 0, -EAGAIN (ring full: poll first), -EIO (device stopped). No
 * system call: the doorbell is a store to mapped device memory. */
int dmacopy_submit(struct dmacopy *dc, uint64_t src, uint64_t dst, uint32_t len, uint16_t tag);

/* Collect up to max completions. Returns how many, or -EIO if the device stopped (FATAL) or
 * posted an entry that breaks the rules (counted in dmacopy_bogus(); never followed). */
int dmacopy_poll(struct dmacopy *dc, struct dmacopy_done *done, unsigned max);

/* Sleep until the device's interrupt or timeout_ms. Returns 1 (interrupt), 0 (timeout) or
 * -errno. */
int dmacopy_wait(struct dmacopy *dc, int timeout_ms);

/* Slow path: read STATUS. Returns 0 (running), -EIO (the device stopped: FATAL), or the
 * backend's error (-ENODEV: the device is gone). */
int dmacopy_check(struct dmacopy *dc);

/* Copies submitted and not yet completed; completion entries rejected as bogus. */
unsigned dmacopy_inflight(const struct dmacopy *dc);
unsigned long dmacopy_bogus(const struct dmacopy *dc);

#endif
