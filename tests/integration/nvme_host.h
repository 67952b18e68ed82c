/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvme_host - a minimal, test-only NVMe host over udrv's device model, for the emulated
 * controller's integration tests. It opens "vfio-user:PATH", maps BAR0's doorbell page,
 * takes DMA memory from the device's own domain, and does the few things a driver does:
 * enable/disable, submit an SQE, wait for its CQE (phase tag) with a timeout, create and
 * delete queues, build PRPs and SGLs. It also lets a test break the rules on purpose: raw
 * register writes, raw doorbell values, raw SQEs.
 *
 * Every wait has a timeout and returns -ETIMEDOUT when it expires; nothing here can hang.
 * Commands return the CQE status field (>= 0: SCT<<8 | SC, plus CRD/More/DNR) or -errno.
 */
#ifndef NVME_HOST_H
#define NVME_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <udrv/device.h>
#include <udrv/emu_nvme.h>

#include "proto/nvme.h"

#define NH_TIMEOUT_MS 5000 /* default wait for one completion */
#define NH_MAX_QID    64
#define NH_STASH      256 /* completions kept aside while waiting for another cid */
#define NH_PRP_PAGES  256 /* PRP list pages, used round robin */

/* CSTS bits (NVMe 1.4, 3.1.6). */
#define NH_RDY	      0x1u
#define NH_CFS	      0x2u
#define NH_SHST(csts) (((csts) >> 2) & 3u)

/* Status field without CRD/More/DNR (what tests compare); negative errors pass through. A
 * function, so that the command in the argument runs once. */
static inline int nh_sct_sc(int st)
{
	return st < 0 ? st : (st & 0x7ff);
}

struct nh_queue {
	/* SQ with this qid */
	bool sq_live;
	uint16_t cqid;
	uint32_t sq_size, sq_alloc;
	struct nvme_sqe *sq;
	uint64_t sq_iova;
	uint32_t sq_tail, sq_head;
	/* CQ with this qid */
	bool cq_live;
	uint32_t cq_size, cq_alloc;
	struct nvme_cqe *cq;
	uint64_t cq_iova;
	uint32_t cq_head;
	uint8_t phase;
	unsigned nstash;
	struct nvme_cqe stash[NH_STASH];
};

struct nvme_host {
	struct udrv_device *dev;
	struct udrv_dma_domain *dom;
	volatile uint8_t *bar0; /* only the doorbell page (1000h) is mapped */
	uint64_t cap;
	uint16_t next_cid;
	uint8_t *prp_pool;
	uint64_t prp_pool_iova;
	unsigned prp_next;
	unsigned long bad_cqes; /* completions naming an SQ that does not complete here */
	struct nh_queue q[NH_MAX_QID + 1];
};

/* ---- the emulator, in process, on a socket in a private temporary directory ---- */

/* The directory (made once, removed with its files at exit). */
const char *nh_tmpdir(void);
/* A fresh path in it: "<dir>/<name>-<n>". */
void nh_tmppath(char *buf, size_t len, const char *name);
/* Create and start an emulator with o (socket_path filled in when NULL; *sock receives it,
 * at least 128 bytes). Fails the test (exit 1) if that does not work. */
struct udrv_emu_nvme *nh_emu_start(struct udrv_emu_nvme_opts *o, char *sock);
double nh_now(void);
void nh_sleep_ms(int ms);

/* ---- connection and registers ---- */

int nh_open(const char *sock, struct nvme_host **out);
/* Disable the controller (when still reachable) and close. NULL is ignored. */
void nh_close(struct nvme_host *h);
int nh_read32(struct nvme_host *h, unsigned off, uint32_t *v);
int nh_read64(struct nvme_host *h, unsigned off, uint64_t *v);
int nh_write32(struct nvme_host *h, unsigned off, uint32_t v);
int nh_write64(struct nvme_host *h, unsigned off, uint64_t v);
/* Wait until (CSTS & mask) == want. Returns 0, -ETIMEDOUT, or a register access error. */
int nh_wait_csts(struct nvme_host *h, uint32_t mask, uint32_t want, int timeout_ms, uint32_t *csts);
/* CC for enable: EN, NVM, 4 KiB pages, round robin, IOSQES 6, IOCQES 4. */
uint32_t nh_cc_enable(void);
/* Allocate (or reuse) and zero the admin queues, program AQA/ASQ/ACQ, reset host state. */
int nh_setup_admin(struct nvme_host *h, unsigned entries);
/* nh_setup_admin, CC.EN=1, wait for RDY within CAP.TO. -EIO if CSTS.CFS comes instead. */
int nh_enable(struct nvme_host *h, unsigned entries);
/* CC.EN=0, wait for !RDY and !CFS; the host forgets its queues (their memory is kept for reuse). */
int nh_disable(struct nvme_host *h);

/* ---- DMA memory, data pointers ---- */

void *nh_alloc(struct nvme_host *h, size_t size, uint64_t *iova);
void nh_free(struct nvme_host *h, void *va);
uint64_t nh_iova(struct nvme_host *h, const void *va);
/* PRP1/PRP2 (and a PRP list when needed) for len bytes at buf, which must be DMA memory
 * from nh_alloc (IOVA-contiguous). Returns 0 or -EINVAL. */
int nh_prp(struct nvme_host *h, struct nvme_sqe *cmd, const void *buf, size_t len);
/* SGL1 = one descriptor; PSDT = SGL. */
void nh_sgl1(struct nvme_sqe *cmd, uint64_t addr, uint32_t len, uint8_t type);
struct nvme_sgl_desc nh_sgl_desc(uint64_t addr, uint32_t len, uint8_t type);

/* ---- queues, submission, completion ---- */

/* Raw doorbell write: index 2*qid is the SQ tail, 2*qid+1 the CQ head. */
void nh_db_write(struct nvme_host *h, unsigned index, uint32_t v);
/* Give cmd the next command identifier (returned), copy it at the SQ tail, ring. -EAGAIN
 * when the SQ is full, -EINVAL for a queue the host has not created. */
int nh_submit(struct nvme_host *h, uint16_t qid, struct nvme_sqe *cmd);
/* Copy cmd verbatim at the tail (cid included); ring the doorbell when ring. */
int nh_submit_raw(struct nvme_host *h, uint16_t qid, const struct nvme_sqe *cmd, bool ring);
/* Next new completion on CQ cqid, if any: 1 (consumed, head doorbell written) or 0. */
int nh_poll(struct nvme_host *h, uint16_t cqid, struct nvme_cqe *out);
/* Next completion for SQ qid's CQ (kept-aside ones first), waiting up to timeout_ms. */
int nh_next(struct nvme_host *h, uint16_t qid, struct nvme_cqe *out, int timeout_ms);
/* The completion of cid from SQ qid; others that arrive meanwhile are kept aside. */
int nh_wait(struct nvme_host *h, uint16_t qid, uint16_t cid, struct nvme_cqe *out, int timeout_ms);
/* Submit and wait (NH_TIMEOUT_MS): the status field, or -errno. out may be NULL. */
int nh_exec(struct nvme_host *h, uint16_t qid, struct nvme_sqe *cmd, struct nvme_cqe *out);

/* Create/delete (status field or -errno). Create CQ: IEN with vector qid when ien. */
int nh_create_cq(struct nvme_host *h, uint16_t qid, unsigned entries, bool ien);
int nh_create_sq(struct nvme_host *h, uint16_t qid, uint16_t cqid, unsigned entries);
int nh_delete_sq(struct nvme_host *h, uint16_t qid);
int nh_delete_cq(struct nvme_host *h, uint16_t qid);
/* CQ then SQ with the same qid: 0, or the first failing status / -errno. */
int nh_create_qpair(struct nvme_host *h, uint16_t qid, unsigned entries);

/* ---- commands ---- */

int nh_identify(struct nvme_host *h, unsigned cns, uint32_t nsid, void *buf4k);
int nh_get_log(struct nvme_host *h, unsigned lid, uint32_t nsid, void *buf, size_t len);
int nh_get_features(struct nvme_host *h, unsigned fid, unsigned sel, uint32_t cdw11, uint32_t *dw0);
int nh_set_features(struct nvme_host *h, unsigned fid, uint32_t cdw11, uint32_t *dw0);
/* Read/Write/Compare command: nlb blocks (1-based) at slba. */
void nh_rw_cmd(struct nvme_sqe *c, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb);
/* nh_rw_cmd + nh_prp(buf, bytes) + nh_exec. */
int nh_io(struct nvme_host *h, uint16_t qid, uint8_t opc, uint32_t nsid, uint64_t slba,
	  uint32_t nlb, void *buf, size_t bytes);

#endif
