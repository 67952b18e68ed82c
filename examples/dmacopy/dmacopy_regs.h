/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "datasheet" of udrv's sample device: a DMA copy engine.
 *
 * The driver puts copy descriptors in a submission ring in its DMA memory and writes the new
 * tail to a doorbell; the device copies each buffer, appends a completion entry (with a phase
 * bit, like NVMe) to a completion ring in the driver's memory, and raises MSI-X vector 0.
 *
 *   BAR0  4 KiB   registers, reached by region read/write (vfio-user messages)
 *   BAR2  4 KiB   doorbell page, mapped into the driver: offset 0 is the SQ tail
 *   BAR4  16 KiB  MSI-X table (offset 0) and pending-bit array (offset 0x2000), 1 vector
 *
 * Both the emulator (dmacopy_emu.c) and the driver (dmacopy.c) include this file: one
 * definition of the device, as with a real datasheet.
 */
#ifndef DMACOPY_REGS_H
#define DMACOPY_REGS_H

#include <stdint.h>

#define DMACOPY_VENDOR_ID 0x1b36 /* QEMU's vendor ID for emulated test devices */
#define DMACOPY_DEVICE_ID 0xd3a0
#define DMACOPY_CLASS	  0x088000 /* base system peripheral, other */

#define DMACOPY_BAR_REGS     0
#define DMACOPY_BAR_DOORBELL 2
#define DMACOPY_BAR_MSIX     4

/* BAR0 registers, all 32-bit. */
#define DMACOPY_REG_ID		0x00 /* RO: DMACOPY_ID */
#define DMACOPY_REG_MAX_ENTRIES 0x04 /* RO: largest ring the device accepts */
#define DMACOPY_REG_SQ_LO	0x08 /* RW: IOVA of the submission ring */
#define DMACOPY_REG_SQ_HI	0x0c
#define DMACOPY_REG_CQ_LO	0x10 /* RW: IOVA of the completion ring */
#define DMACOPY_REG_CQ_HI	0x14
#define DMACOPY_REG_ENTRIES	0x18 /* RW: ring size, a power of two, 2..MAX_ENTRIES */
#define DMACOPY_REG_CTRL	0x1c /* RW: DMACOPY_CTRL_* */
#define DMACOPY_REG_STATUS	0x20 /* RO: DMACOPY_STATUS_* */
#define DMACOPY_REG_BYTES_LO	0x24 /* RO: bytes copied since reset */
#define DMACOPY_REG_BYTES_HI	0x28
#define DMACOPY_REGS_SIZE	4096

#define DMACOPY_ID	    0x31434d44u /* "DMC1" */
#define DMACOPY_MAX_ENTRIES 4096u
#define DMACOPY_MAX_LEN	    (1u << 20) /* largest single copy */

/* CTRL: writing ENABLE starts the engine with the ring registers as they are; clearing it
 * stops it and forgets the ring positions. */
#define DMACOPY_CTRL_ENABLE 1u
/* STATUS: READY once enabled with a valid configuration; FATAL when the driver broke a rule
 * (bad doorbell value, ring in memory it did not map); cleared by disabling. */
#define DMACOPY_STATUS_READY 1u
#define DMACOPY_STATUS_FATAL 2u

/* Submission entry, 32 bytes, in driver memory. */
struct dmacopy_desc {
	uint64_t src;	/* IOVA to read */
	uint64_t dst;	/* IOVA to write */
	uint32_t len;	/* 1..DMACOPY_MAX_LEN */
	uint16_t tag;	/* echoed in the completion */
	uint16_t flags; /* must be 0 */
	uint64_t reserved;
};

/* Completion entry, 16 bytes, written by the device. */
struct dmacopy_cqe {
	uint16_t tag;
	uint16_t status;  /* DMACOPY_SC_* */
	uint32_t sq_head; /* how far the device has consumed the submission ring */
	uint32_t reserved;
	uint32_t phase; /* bit 0 flips each time the device wraps the completion ring */
};

#define DMACOPY_SC_OK	       0
#define DMACOPY_SC_BAD_ADDRESS 1 /* src or dst not mapped (for DMA) by the driver */
#define DMACOPY_SC_BAD_LENGTH  2
#define DMACOPY_SC_BAD_FLAGS   3

_Static_assert(sizeof(struct dmacopy_desc) == 32, "descriptor layout");
_Static_assert(sizeof(struct dmacopy_cqe) == 16, "completion layout");

#endif
