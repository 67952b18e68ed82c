/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NVMe driver's shared state and the contracts between its files:
 *   ctrlr.c    open/close, registers, the admin queue (serialised), reset, namespaces
 *   qpair.c    I/O queue pairs: submit, complete, timeouts, reconnect after a reset
 *   prp.c      data pointers: PRP entries and lists (NVMe 1.4, 4.3), SGLs (4.4)
 *   status.c   status field names
 */
#ifndef UDRV_DRIVERS_NVME_INTERNAL_H
#define UDRV_DRIVERS_NVME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <udrv/device.h>
#include <udrv/nvme.h>

#include "proto/nvme.h"

#define NVD_PAGE	 4096u
#define NVD_MAX_XFER	 (2u << 20) /* one PRP list page: 512 entries of 4 KiB */
#define NVD_MAX_NS	 1024u
#define NVD_SLOT_BITS	 12u /* command id: slot | sequence << 12 (stale ids are caught) */
#define NVD_SLOT_MASK	 ((1u << NVD_SLOT_BITS) - 1)
#define NVD_MAX_ENTRIES	 4096u
#define NVD_MAX_SGL_DESC (NVD_PAGE / sizeof(struct nvme_sgl_desc))

enum nvd_slot_state {
	NVD_FREE = 0,
	NVD_OUTSTANDING,
	NVD_TIMED_OUT, /* Abort sent: its completion reports -ETIMEDOUT */
};

/* One command in flight; its index is the low bits of the command id. */
struct nvd_slot {
	uint8_t state;
	uint16_t cid;
	uint64_t deadline_ns;
	udrv_nvme_cb cb;
	void *arg;
	struct nvme_sqe cmd; /* as submitted, to submit again after a reset */
	uint64_t *list;	     /* this slot's PRP list / SGL segment page */
	uint64_t list_iova;
};

struct udrv_nvme_qpair {
	struct udrv_nvme_ctrlr *c;
	uint16_t qid;
	uint32_t entries;
	struct nvme_sqe *sq;
	volatile struct nvme_cqe *cq;
	uint64_t sq_iova, cq_iova;
	volatile uint32_t *sq_db, *cq_db;
	uint32_t sq_tail, cq_head, cq_head_rung, sq_tail_rung;
	bool in_reap; /* inside the reap loop: submissions ring the SQ doorbell at its end */
	uint8_t phase;
	unsigned gen; /* controller generation it is connected in */
	bool dead;    /* the controller is gone: everything fails */
	struct nvd_slot *slots;
	uint16_t *free; /* stack of free slot indexes */
	unsigned nfree;
	unsigned outstanding;
	uint64_t now_ns;	   /* clock as of the last process_completions() */
	uint64_t next_check_ns;	   /* next timeout scan */
	uint64_t last_progress_ns; /* last completion (or start from idle) */
	uint64_t next_removal_ns;  /* next look for a hot-unplug request */
	void *lists;		   /* entries pages: the slots' lists */
	int efd;		   /* MSI-X eventfd, or -1 */
};

struct udrv_nvme_ctrlr {
	struct udrv_device *dev;
	struct udrv_dma_domain *dom;
	struct udrv_nvme_opts opts;
	struct udrv_nvme_ctrlr_info info;
	char name[128];
	volatile uint8_t *bar; /* BAR0 mapping (parts may be PROT_NONE) */
	bool regs_mapped;      /* registers (0..0xfff) are in a mapped area */
	bool db_mapped;	       /* doorbells are */
	uint64_t db_end;       /* end of the mapped area holding them */
	uint64_t bar_size;
	uint64_t cap;
	unsigned dstrd;
	unsigned timeout_ms; /* per command */
	unsigned ready_ms;   /* CAP.TO */

	/* The admin queue and everything below: admin_lock. */
	pthread_mutex_t admin_lock;
	pthread_mutex_t reg_lock; /* register access by message, one at a time */
	struct nvme_sqe *asq;
	volatile struct nvme_cqe *acq;
	uint64_t asq_iova, acq_iova;
	uint32_t aentries, asq_tail, acq_head;
	uint8_t aphase;
	bool in_reset; /* a reset is issuing the admin commands */
	uint16_t next_acid;
	void *abuf; /* bounce for admin data, NVD_MAX_XFER */
	uint64_t *alist;
	uint64_t alist_iova;
	struct udrv_nvme_qpair **qps; /* by qid, info.io_queues + 1 */

	atomic_uint gen;	 /* bumped by every reset: queue pairs reconnect */
	atomic_bool gone;	 /* register access failed: the controller is gone */
	_Atomic uint64_t logged; /* nvd_log_bad() calls */
	uint8_t *id_ctrl;
	uint32_t nr_ns;
	struct udrv_nvme_ns_info ns[NVD_MAX_NS];
	uint8_t *id_ns; /* NVD_MAX_NS pages, allocated as needed */
	int *efds;	/* MSI-X eventfds per vector, or NULL */
	int req_fd;	/* VFIO request (hot-unplug) eventfd, or -1 */
	unsigned nefds;

	struct {
		_Atomic uint64_t bad_cqes, timeouts, aborts, resets, resubmits;
	} st;
};

/* ctrlr.c */
int nvd_reg_read32(struct udrv_nvme_ctrlr *c, unsigned off, uint32_t *v);
int nvd_reg_write32(struct udrv_nvme_ctrlr *c, unsigned off, uint32_t v);
/* Ring doorbell idx (2*qid: SQ tail, 2*qid+1: CQ head). */
void nvd_doorbell(struct udrv_nvme_ctrlr *c, volatile uint32_t *db, unsigned idx, uint32_t v);
volatile uint32_t *nvd_doorbell_addr(struct udrv_nvme_ctrlr *c, unsigned idx);
/* The same with admin_lock held, and a reset under it (bumps gen; -ENODEV if that failed). */
int nvd_admin_locked(struct udrv_nvme_ctrlr *c, struct nvme_sqe *cmd, void *buf, size_t len,
		     bool to_ctrlr, struct udrv_nvme_cpl *cpl);
int nvd_reset_locked(struct udrv_nvme_ctrlr *c);
/* Synchronous admin command; cmd's cid and data pointer are filled in. admin_lock not held. */
int nvd_admin(struct udrv_nvme_ctrlr *c, struct nvme_sqe *cmd, void *buf, size_t len, bool to_ctrlr,
	      struct udrv_nvme_cpl *cpl);
/* Reset the controller after a failure (timeout, fatal status): disable, enable, restore the
 * queue count; bumps gen. Returns 0, or -ENODEV (gone, marked). gen_seen: the generation
 * the caller saw fail, so that two threads do not both reset for one failure. */
int nvd_ctrlr_reset(struct udrv_nvme_ctrlr *c, unsigned gen_seen);
/* Hot-unplug requested or mappings revoked: marks the controller gone. Slow path (a read()
 * of an eventfd): call it every ~100 ms. */
bool nvd_ctrlr_removal(struct udrv_nvme_ctrlr *c);
/* Read CSTS: 1 if fatal status, 0 if fine, -ENODEV if gone (marked). */
int nvd_ctrlr_check(struct udrv_nvme_ctrlr *c);
void nvd_log_bad(struct udrv_nvme_ctrlr *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint64_t nvd_now_ns(void);

/* qpair.c */
int nvd_qpair_connect(struct udrv_nvme_qpair *qp);

/* prp.c: describe [buf, buf+len) (or iov) in cmd: PRP1/PRP2 and, when needed, the list in
 * list/list_iova; or an SGL when sgl is true and PRPs cannot. Returns 0 or -EFAULT (not DMA
 * memory), -EINVAL (buffers break the PRP rules and the controller takes no SGLs). */
int nvd_prp_build(struct udrv_dma_domain *dom, struct nvme_sqe *cmd, const void *buf, size_t len,
		  uint64_t *list, uint64_t list_iova);
int nvd_iov_build(struct udrv_dma_domain *dom, struct nvme_sqe *cmd, const struct iovec *iov,
		  unsigned iovcnt, size_t len, bool sgl, uint64_t *list, uint64_t list_iova);

#endif
