/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe wire structures shared by the emulated controller (src/emu/nvme/) and the driver:
 * one definition, so the two sides cannot drift apart.
 *
 * Register layouts, identify data, log pages, opcodes and status codes come from Debian's
 * libnvme-dev <nvme/types.h> (header only: nothing is linked). It has no submission or
 * completion queue entry or SGL descriptor, so those are here, cited by section of the NVM
 * Express Base Specification 1.4 ("NVMe 1.4").
 */
#ifndef UDRV_PROTO_NVME_H
#define UDRV_PROTO_NVME_H

#include <assert.h>
#include <stdint.h>

#include <nvme/types.h>

/* Doorbells start at 1000h; with stride 4 << CAP.DSTRD (3.1.24, 3.1.25). */
#define NVME_DB_BASE		    0x1000u
#define NVME_DB_SQ_TAIL(qid, dstrd) (NVME_DB_BASE + (2u * (qid)) * (4u << (dstrd)))
#define NVME_DB_CQ_HEAD(qid, dstrd) (NVME_DB_BASE + (2u * (qid) + 1u) * (4u << (dstrd)))

#define NVME_SQE_SIZE	  64u
#define NVME_CQE_SIZE	  16u
#define NVME_SQES_LOG2	  6u
#define NVME_CQES_LOG2	  4u
#define NVME_ADMIN_QID	  0u
#define NVME_MAX_QSIZE	  65536u
#define NVME_IDENTIFY_LEN 4096u

/* Command Dword 0 flags (4.2): fused operation bits 1:0, PSDT bits 7:6. */
#define NVME_CMD_FUSE_MASK 0x03u
#define NVME_CMD_PSDT_MASK 0xc0u
#define NVME_CMD_PSDT_PRP  0x00u
#define NVME_CMD_PSDT_SGL  0x40u /* SGL, metadata pointer is an address */
#define NVME_CMD_PSDT_SGL2 0x80u /* SGL, metadata pointer is an SGL segment */

/* SGL descriptor (4.4): 16 bytes, type in the identifier's upper nibble. */
struct nvme_sgl_desc {
	uint64_t addr;
	uint32_t len;
	uint8_t rsvd[3];
	uint8_t id; /* type << 4 | subtype */
};
static_assert(sizeof(struct nvme_sgl_desc) == 16, "NVMe 1.4 Figure 114");

enum {
	NVME_SGL_TYPE_DATA = 0x0,	  /* Data Block */
	NVME_SGL_TYPE_BIT_BUCKET = 0x1,	  /* Bit Bucket */
	NVME_SGL_TYPE_SEGMENT = 0x2,	  /* Segment: points at the next segment */
	NVME_SGL_TYPE_LAST_SEGMENT = 0x3, /* Last Segment: the next segment is the last */
	NVME_SGL_SUBTYPE_ADDRESS = 0x0,
};
#define NVME_SGL_TYPE(d) ((uint8_t)((d)->id >> 4))

/* Submission queue entry (4.2, Figure 105). */
struct nvme_sqe {
	uint8_t opc;
	uint8_t flags; /* FUSE, PSDT */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2, cdw3;
	uint64_t mptr;
	union {
		struct {
			uint64_t prp1, prp2;
		};
		struct nvme_sgl_desc sgl;
	};
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
static_assert(sizeof(struct nvme_sqe) == NVME_SQE_SIZE, "NVMe 1.4 Figure 105");

/* Completion queue entry (4.6, Figure 124). status: bit 0 the phase tag, bits 15:1 the
 * status field of <nvme/types.h> (SC 7:0, SCT 10:8, CRD, More, DNR 14). */
struct nvme_cqe {
	uint32_t dw0;
	uint32_t dw1;
	uint16_t sq_head;
	uint16_t sq_id;
	uint16_t cid;
	uint16_t status;
};
static_assert(sizeof(struct nvme_cqe) == NVME_CQE_SIZE, "NVMe 1.4 Figure 124");

#define NVME_CQE_PHASE	     0x1u
#define NVME_CQE_STATUS(cqe) ((uint16_t)((cqe)->status >> 1))
#define NVME_STATUS(sct, sc) ((uint16_t)(((sct) << NVME_SCT_SHIFT) | (sc)))
#define NVME_STATUS_SC(st)   ((unsigned)((st)&NVME_SC_MASK))
#define NVME_STATUS_SCT(st)  ((unsigned)(((st) >> NVME_SCT_SHIFT) & NVME_SCT_MASK))

/* Create I/O Completion / Submission Queue (5.3, 5.4): CDW10 QSIZE 31:16 (0's based),
 * QID 15:0; CDW11 of Create CQ: IV 31:16, IEN bit 1, PC bit 0; of Create SQ: CQID 31:16,
 * QPRIO 2:1, PC bit 0. */
#define NVME_QUEUE_PC 0x1u
#define NVME_CQ_IEN   0x2u

/* Dataset Management range (6.7, Figure 364) is struct nvme_dsm_range in <nvme/types.h>;
 * CDW11 bit 2 is Attribute - Deallocate (AD). */
#define NVME_DSM_AD 0x4u

/* Asynchronous event completion dword 0 (5.2, Figure 146). */
#define NVME_AER_DW0(type, info, lid)                                                              \
	((uint32_t)(type) | (uint32_t)(info) << 8 | (uint32_t)(lid) << 16)

#endif
