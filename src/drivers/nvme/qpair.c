/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * I/O queue pairs: submission and completion on the fast path (no system call, lock or
 * allocation), completion entries checked before use, command timeouts with Abort and
 * controller reset, reconnection after a reset with the outstanding commands submitted
 * again. Each callback runs exactly once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log_internal.h"
#include "drivers/nvme/nvme_internal.h"

#define TIMEOUT_SCAN_NS 1000000ull   /* look for timeouts at most every 1 ms */
#define HEALTH_CHECK_NS 100000000ull /* read CSTS after 100 ms without a completion */

/*
 * Create I/O CQ then SQ (5.3, 5.4: the order the spec requires), under admin_lock, so that
 * no reset lands between them: qp->gen is then exactly the generation they exist in. A
 * refusal on a live controller (stale queues of ours after a lost reset) resets it and
 * tries again. Returns 0 or -ENODEV.
 */
static int create_queues(struct udrv_nvme_qpair *qp)
{
	struct udrv_nvme_ctrlr *c = qp->c;
	bool ien = qp->efd >= 0;
	int rc = -ENODEV;

	pthread_mutex_lock(&c->admin_lock);
	for (int tries = 0; tries < 3 && !atomic_load(&c->gone); tries++) {
		struct nvme_sqe cq = {.opc = nvme_admin_create_cq,
				      .prp1 = qp->cq_iova,
				      .cdw10 = (qp->entries - 1) << 16 | qp->qid,
				      .cdw11 = (ien ? (uint32_t)qp->qid << 16 | NVME_CQ_IEN : 0) |
					       NVME_QUEUE_PC};
		struct nvme_sqe sq = {.opc = nvme_admin_create_sq,
				      .prp1 = qp->sq_iova,
				      .cdw10 = (qp->entries - 1) << 16 | qp->qid,
				      .cdw11 = (uint32_t)qp->qid << 16 | NVME_QUEUE_PC};
		struct udrv_nvme_cpl cpl;

		memset(qp->sq, 0, qp->entries * sizeof(*qp->sq));
		memset((void *)qp->cq, 0, qp->entries * sizeof(*qp->cq));
		qp->sq_tail = qp->cq_head = qp->cq_head_rung = qp->sq_tail_rung = 0;
		qp->phase = 1;
		rc = nvd_admin_locked(c, &cq, NULL, 0, false, &cpl);
		if (rc == 0)
			rc = nvd_admin_locked(c, &sq, NULL, 0, false, &cpl);
		if (rc == 0) {
			qp->gen = atomic_load(&c->gen);
			break;
		}
		if (rc != -ETIMEDOUT) /* a timeout has reset it already */
			nvd_reset_locked(c);
		rc = -ENODEV;
	}
	pthread_mutex_unlock(&c->admin_lock);
	return rc;
}

/* Delete SQ then CQ (5.6, 5.7). If the controller refuses on a live controller, a reset
 * drops the queues anyway: their memory is freed next and must see no more DMA. */
static void delete_queues(struct udrv_nvme_qpair *qp)
{
	struct udrv_nvme_ctrlr *c = qp->c;
	struct nvme_sqe sq = {.opc = nvme_admin_delete_sq, .cdw10 = qp->qid};
	struct nvme_sqe cq = {.opc = nvme_admin_delete_cq, .cdw10 = qp->qid};
	struct udrv_nvme_cpl cpl;
	int a, b;

	pthread_mutex_lock(&c->admin_lock);
	if (qp->gen == atomic_load(&c->gen) && !atomic_load(&c->gone)) {
		a = nvd_admin_locked(c, &sq, NULL, 0, false, &cpl);
		b = nvd_admin_locked(c, &cq, NULL, 0, false, &cpl);
		if ((a < 0 || b < 0) && a != -ETIMEDOUT && b != -ETIMEDOUT &&
		    !atomic_load(&c->gone))
			nvd_reset_locked(c);
	}
	pthread_mutex_unlock(&c->admin_lock);
}

/* Run a slot's callback after freeing it, so the callback may submit again. */
static void finish(struct udrv_nvme_qpair *qp, struct nvd_slot *s, int rc, uint16_t status,
		   uint32_t dw0)
{
	struct udrv_nvme_cpl cpl = {.rc = rc, .status = status, .dw0 = dw0};
	udrv_nvme_cb cb = s->cb;
	void *arg = s->arg;

	s->state = NVD_FREE;
	qp->free[qp->nfree++] = (uint16_t)(s - qp->slots);
	qp->outstanding--;
	if (cb)
		cb(arg, &cpl);
}

/* Fail every outstanding command (queue destroyed, controller gone). */
static void fail_all(struct udrv_nvme_qpair *qp, int rc)
{
	for (uint32_t i = 0; i < qp->entries - 1; i++)
		if (qp->slots[i].state != NVD_FREE)
			finish(qp, &qp->slots[i], rc, 0, 0);
}

/* Submitting on a queue pair that must reconnect first, or whose controller is gone: the
 * callbacks that involves run from process_completions(), never inside a submit call. */
static int stale_submit(const struct udrv_nvme_qpair *qp)
{
	return qp->dead || atomic_load(&qp->c->gone) ? -ENODEV : -EAGAIN;
}

static void put_sqe(struct udrv_nvme_qpair *qp, const struct nvme_sqe *cmd)
{
	qp->sq[qp->sq_tail] = *cmd;
	if (++qp->sq_tail == qp->entries)
		qp->sq_tail = 0;
}

/* After a controller reset: the queues again, then every command still owed a completion,
 * in submission order as far as slots tell (the spec does not order them anyway). */
int nvd_qpair_connect(struct udrv_nvme_qpair *qp)
{
	struct udrv_nvme_ctrlr *c = qp->c;
	unsigned n = 0;

	if (create_queues(qp) < 0) {
		qp->dead = true;
		fail_all(qp, -ENODEV);
		return -ENODEV;
	}
	qp->now_ns = nvd_now_ns(); /* a reset may have taken seconds */
	qp->last_progress_ns = qp->now_ns;
	for (uint32_t i = 0; i < qp->entries - 1; i++) {
		struct nvd_slot *s = &qp->slots[i];

		if (s->state == NVD_OUTSTANDING) {
			s->deadline_ns = 0; /* stamped by the next timeout scan */
			put_sqe(qp, &s->cmd);
			n++;
		}
	}
	if (n) {
		atomic_fetch_add(&c->st.resubmits, n);
		udrv_dma_wmb(); /* entries before the doorbell */
		nvd_doorbell(c, qp->sq_db, 2u * qp->qid, qp->sq_tail);
		qp->sq_tail_rung = qp->sq_tail;
	}
	/* Last: their callbacks may submit, and those commands must not be resubmitted. */
	n = 0;
	for (uint32_t i = 0; i < qp->entries - 1; i++)
		if (qp->slots[i].state == NVD_TIMED_OUT) {
			finish(qp, &qp->slots[i], -ETIMEDOUT, 0, 0);
			n++;
		}
	return (int)n;
}

struct udrv_nvme_qpair *udrv_nvme_qpair_create(struct udrv_nvme_ctrlr *c, unsigned entries)
{
	struct udrv_nvme_qpair *qp;
	unsigned qid = 0;

	if (!c)
		return udrv_err_null(EINVAL, "udrv_nvme_qpair_create needs a controller");
	if (!entries)
		entries = c->info.max_entries < 256 ? c->info.max_entries : 256;
	if (entries < 2 || entries > c->info.max_entries || entries > NVD_MAX_ENTRIES)
		return udrv_err_null(EINVAL, "a queue pair of %s has 2..%u entries", c->name,
				     c->info.max_entries < NVD_MAX_ENTRIES ? c->info.max_entries
									   : NVD_MAX_ENTRIES);
	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return udrv_err_null(ENOMEM, "out of memory for a queue pair");
	pthread_mutex_lock(&c->admin_lock);
	for (unsigned q = 1; q <= c->info.io_queues && !qid; q++)
		if (!c->qps[q])
			c->qps[qid = q] = qp;
	pthread_mutex_unlock(&c->admin_lock);
	if (!qid) {
		free(qp);
		return udrv_err_null(ENOSPC, "all %u queue pairs of %s are in use",
				     c->info.io_queues, c->name);
	}
	qp->c = c;
	qp->qid = (uint16_t)qid;
	qp->entries = entries;
	qp->efd = c->efds && qid < c->nefds ? c->efds[qid] : -1;
	qp->slots = calloc(entries, sizeof(*qp->slots));
	qp->free = calloc(entries, sizeof(*qp->free));
	qp->sq = udrv_dma_zalloc(c->dom, entries * sizeof(*qp->sq), NVD_PAGE, &qp->sq_iova);
	qp->cq = udrv_dma_zalloc(c->dom, entries * sizeof(*qp->cq), NVD_PAGE, &qp->cq_iova);
	qp->lists = udrv_dma_zalloc(c->dom, (size_t)(entries - 1) * NVD_PAGE, NVD_PAGE, NULL);
	if (!qp->slots || !qp->free || !qp->sq || !qp->cq || !qp->lists)
		goto nomem;
	for (unsigned i = 0; i < entries - 1; i++) {
		struct nvd_slot *s = &qp->slots[i];

		s->list = (uint64_t *)((uint8_t *)qp->lists + (size_t)i * NVD_PAGE);
		s->list_iova = udrv_dma_iova(c->dom, s->list);
		s->cid = (uint16_t)i;
		qp->free[qp->nfree++] = (uint16_t)(entries - 2 - i); /* slot 0 on top */
	}
	qp->sq_db = nvd_doorbell_addr(c, 2u * qid);
	qp->cq_db = nvd_doorbell_addr(c, 2u * qid + 1);
	qp->now_ns = nvd_now_ns();
	if (create_queues(qp) < 0) {
		udrv_nvme_qpair_destroy(qp);
		errno = EIO;
		return NULL;
	}
	return qp;
nomem:
	udrv_nvme_qpair_destroy(qp);
	return udrv_err_null(ENOMEM, "out of DMA memory for a queue pair of %u entries", entries);
}

void udrv_nvme_qpair_destroy(struct udrv_nvme_qpair *qp)
{
	struct udrv_nvme_ctrlr *c;

	if (!qp)
		return;
	c = qp->c;
	if (qp->slots) {
		bool live = !qp->dead && qp->sq && qp->cq;

		/* Callbacks run below may submit: those calls fail instead of queueing. */
		qp->dead = true;
		if (live)
			delete_queues(qp);
		fail_all(qp, -ECANCELED);
	}
	udrv_dma_free(c->dom, qp->sq);
	udrv_dma_free(c->dom, (void *)qp->cq);
	udrv_dma_free(c->dom, qp->lists);
	pthread_mutex_lock(&c->admin_lock);
	c->qps[qp->qid] = NULL;
	pthread_mutex_unlock(&c->admin_lock);
	free(qp->slots);
	free(qp->free);
	free(qp);
}

/* The slow path process_completions() checks first: a reset happened (reconnect; returns
 * how many commands that completed), or the controller is gone (-ENODEV, all failed). */
static int revalidate(struct udrv_nvme_qpair *qp)
{
	if (qp->dead)
		return -ENODEV;
	if (atomic_load(&qp->c->gone)) {
		qp->dead = true;
		fail_all(qp, -ENODEV);
		return -ENODEV;
	}
	if (atomic_load_explicit(&qp->c->gen, memory_order_acquire) != qp->gen)
		return nvd_qpair_connect(qp);
	return 0;
}

static inline bool stale(const struct udrv_nvme_qpair *qp)
{
	return qp->dead || atomic_load_explicit(&qp->c->gen, memory_order_relaxed) != qp->gen ||
	       atomic_load_explicit(&qp->c->gone, memory_order_relaxed);
}

/* Claim a slot and fill the common part of its command. */
static inline struct nvd_slot *get_slot(struct udrv_nvme_qpair *qp, uint8_t opc, uint32_t nsid,
					udrv_nvme_cb cb, void *arg)
{
	struct nvd_slot *s;

	if (!qp->nfree)
		return NULL;
	s = &qp->slots[qp->free[--qp->nfree]];
	/* A new sequence number: a late or duplicated completion of the slot's previous
	 * command no longer matches. */
	s->cid = (uint16_t)((s->cid + (1u << NVD_SLOT_BITS)) & 0xffff);
	s->cmd = (struct nvme_sqe){.opc = opc, .cid = s->cid, .nsid = nsid};
	s->cb = cb;
	s->arg = arg;
	return s;
}

static inline void put_slot(struct udrv_nvme_qpair *qp, struct nvd_slot *s)
{
	qp->free[qp->nfree++] = (uint16_t)(s - qp->slots);
}

static inline int submit(struct udrv_nvme_qpair *qp, struct nvd_slot *s)
{
	if (!qp->outstanding)
		qp->last_progress_ns = 0; /* busy from now: the next poll starts the clock */
	s->state = NVD_OUTSTANDING;
	/* No clock here: the next timeout scan (within ~1 ms of polling) stamps the deadline,
	 * so a caller that polls rarely never sees a healthy command time out. */
	s->deadline_ns = 0;
	qp->outstanding++;
	put_sqe(qp, &s->cmd);
	/* From a callback, the doorbell is rung once after the reap loop. */
	if (qp->in_reap)
		return 0;
	udrv_dma_wmb(); /* the entry is visible to the controller before the doorbell */
	nvd_doorbell(qp->c, qp->sq_db, 2u * qp->qid, qp->sq_tail);
	qp->sq_tail_rung = qp->sq_tail;
	return 0;
}

/* The namespace if nsid is active and [lba, lba + nlb) lies inside it (nlb > 0), else NULL. */
static inline const struct udrv_nvme_ns_info *ns_range(const struct udrv_nvme_qpair *qp,
						       uint32_t nsid, uint64_t lba, uint32_t nlb)
{
	const struct udrv_nvme_ns_info *ns;

	if (nsid == 0 || nsid > qp->c->nr_ns || !qp->c->ns[nsid - 1].active)
		return NULL;
	ns = &qp->c->ns[nsid - 1];
	return nlb && lba < ns->blocks && nlb <= ns->blocks - lba ? ns : NULL;
}

static int rw(struct udrv_nvme_qpair *qp, uint8_t opc, uint32_t nsid, const void *buf,
	      const struct iovec *iov, unsigned iovcnt, uint64_t lba, uint32_t nlb, udrv_nvme_cb cb,
	      void *arg)
{
	struct udrv_nvme_ctrlr *c = qp->c;
	const struct udrv_nvme_ns_info *ns;
	struct nvd_slot *s;
	size_t len;
	int rc;

	if (__builtin_expect(stale(qp), 0))
		return stale_submit(qp);
	ns = ns_range(qp, nsid, lba, nlb);
	if (!ns || (uint64_t)nlb * ns->block_size > c->info.max_xfer)
		return -EINVAL;
	s = get_slot(qp, opc, nsid, cb, arg);
	if (!s)
		return -EAGAIN;
	len = (size_t)nlb * ns->block_size;
	rc = iov ? nvd_iov_build(c->dom, &s->cmd, iov, iovcnt, len, c->info.sgl, s->list,
				 s->list_iova)
		 : nvd_prp_build(c->dom, &s->cmd, buf, len, s->list, s->list_iova);
	if (__builtin_expect(rc == -EINVAL && !iov && c->info.sgl, 0)) {
		/* Not dword aligned: PRPs cannot say it, an SGL can (4.4). */
		struct iovec one = {(void *)buf, len};

		rc = nvd_iov_build(c->dom, &s->cmd, &one, 1, len, true, s->list, s->list_iova);
	}
	if (rc < 0) {
		put_slot(qp, s);
		return rc;
	}
	s->cmd.cdw10 = (uint32_t)lba;
	s->cmd.cdw11 = (uint32_t)(lba >> 32);
	s->cmd.cdw12 = nlb - 1;
	return submit(qp, s);
}

int udrv_nvme_read(struct udrv_nvme_qpair *qp, uint32_t nsid, void *buf, uint64_t lba, uint32_t nlb,
		   udrv_nvme_cb cb, void *arg)
{
	return rw(qp, nvme_cmd_read, nsid, buf, NULL, 0, lba, nlb, cb, arg);
}

int udrv_nvme_write(struct udrv_nvme_qpair *qp, uint32_t nsid, const void *buf, uint64_t lba,
		    uint32_t nlb, udrv_nvme_cb cb, void *arg)
{
	return rw(qp, nvme_cmd_write, nsid, buf, NULL, 0, lba, nlb, cb, arg);
}

int udrv_nvme_compare(struct udrv_nvme_qpair *qp, uint32_t nsid, const void *buf, uint64_t lba,
		      uint32_t nlb, udrv_nvme_cb cb, void *arg)
{
	return rw(qp, nvme_cmd_compare, nsid, buf, NULL, 0, lba, nlb, cb, arg);
}

int udrv_nvme_readv(struct udrv_nvme_qpair *qp, uint32_t nsid, const struct iovec *iov,
		    unsigned iovcnt, uint64_t lba, uint32_t nlb, udrv_nvme_cb cb, void *arg)
{
	return rw(qp, nvme_cmd_read, nsid, NULL, iov, iovcnt, lba, nlb, cb, arg);
}

int udrv_nvme_writev(struct udrv_nvme_qpair *qp, uint32_t nsid, const struct iovec *iov,
		     unsigned iovcnt, uint64_t lba, uint32_t nlb, udrv_nvme_cb cb, void *arg)
{
	return rw(qp, nvme_cmd_write, nsid, NULL, iov, iovcnt, lba, nlb, cb, arg);
}

/* Commands without data. */
static int nodata(struct udrv_nvme_qpair *qp, uint8_t opc, uint32_t nsid, uint32_t cdw10,
		  uint32_t cdw11, uint32_t cdw12, udrv_nvme_cb cb, void *arg)
{
	struct nvd_slot *s;

	if (__builtin_expect(stale(qp), 0))
		return stale_submit(qp);
	s = get_slot(qp, opc, nsid, cb, arg);
	if (!s)
		return -EAGAIN;
	s->cmd.cdw10 = cdw10;
	s->cmd.cdw11 = cdw11;
	s->cmd.cdw12 = cdw12;
	return submit(qp, s);
}

int udrv_nvme_flush(struct udrv_nvme_qpair *qp, uint32_t nsid, udrv_nvme_cb cb, void *arg)
{
	if (nsid != 0xffffffff && (nsid == 0 || nsid > qp->c->nr_ns))
		return -EINVAL;
	return nodata(qp, nvme_cmd_flush, nsid, 0, 0, 0, cb, arg);
}

int udrv_nvme_write_zeroes(struct udrv_nvme_qpair *qp, uint32_t nsid, uint64_t lba, uint32_t nlb,
			   bool deallocate, udrv_nvme_cb cb, void *arg)
{
	if (!ns_range(qp, nsid, lba, nlb) || nlb > 65536)
		return -EINVAL;
	return nodata(qp, nvme_cmd_write_zeroes, nsid, (uint32_t)lba, (uint32_t)(lba >> 32),
		      (nlb - 1) | (deallocate ? 1u << 25 : 0), cb, arg);
}

int udrv_nvme_deallocate(struct udrv_nvme_qpair *qp, uint32_t nsid, uint64_t lba, uint32_t nlb,
			 udrv_nvme_cb cb, void *arg)
{
	struct nvme_dsm_range *r;
	struct nvd_slot *s;

	if (!ns_range(qp, nsid, lba, nlb))
		return -EINVAL;
	if (__builtin_expect(stale(qp), 0))
		return stale_submit(qp);
	s = get_slot(qp, nvme_cmd_dsm, nsid, cb, arg);
	if (!s)
		return -EAGAIN;
	/* The range lives in the slot's own page (6.7, Figure 364). */
	r = (struct nvme_dsm_range *)s->list;
	*r = (struct nvme_dsm_range){.nlb = nlb, .slba = lba};
	s->cmd.prp1 = s->list_iova;
	s->cmd.cdw10 = 0; /* one range */
	s->cmd.cdw11 = NVME_DSM_AD;
	return submit(qp, s);
}

/* No completion for a while with commands outstanding: is the controller still there, and
 * healthy? A removed device or fatal status is acted on now, not at the timeout. */
static int health_check(struct udrv_nvme_qpair *qp)
{
	int st = nvd_ctrlr_check(qp->c);

	if (st < 0)
		return revalidate(qp);
	if (st > 0) {
		nvd_log_bad(qp->c, "fatal status (CSTS.CFS) seen on queue %u", qp->qid);
		nvd_ctrlr_reset(qp->c, qp->gen);
		return revalidate(qp);
	}
	return 0;
}

/* A command passed its deadline: Abort it (5.1); if that fails or the controller reports
 * fatal status, reset the controller. Slow path. */
static int handle_timeout(struct udrv_nvme_qpair *qp, struct nvd_slot *s)
{
	struct udrv_nvme_ctrlr *c = qp->c;
	unsigned gen = qp->gen;
	struct udrv_nvme_cpl cpl;
	int fatal = nvd_ctrlr_check(c), rc;

	atomic_fetch_add(&c->st.timeouts, 1);
	nvd_log_bad(c, "command %02xh (cid %u) on queue %u timed out after %u ms", s->cmd.opc,
		    s->cid, qp->qid, c->timeout_ms);
	if (fatal < 0)
		return revalidate(qp);
	if (fatal == 0 && s->state == NVD_OUTSTANDING) {
		struct nvme_sqe abort = {.opc = nvme_admin_abort_cmd,
					 .cdw10 = (uint32_t)s->cid << 16 | qp->qid};

		atomic_fetch_add(&c->st.aborts, 1);
		rc = nvd_admin(c, &abort, NULL, 0, false, &cpl);
		qp->now_ns = nvd_now_ns(); /* the Abort may have waited for its own timeout */
		if (rc == 0 && !(cpl.dw0 & 1)) {
			/* Aborted: its own completion follows, reported as a timeout. */
			s->state = NVD_TIMED_OUT;
			s->deadline_ns = qp->now_ns + (uint64_t)c->timeout_ms * 1000000ull;
			return 0;
		}
	}
	s->state = NVD_TIMED_OUT; /* failed by the reconnect below */
	if (nvd_ctrlr_reset(c, gen) < 0)
		return revalidate(qp);
	return revalidate(qp);
}

/* Stamp new commands' deadlines and handle the ones past theirs. Returns how many
 * commands completed meanwhile (failed by a reconnect), or -ENODEV. */
static int scan_timeouts(struct udrv_nvme_qpair *qp)
{
	uint64_t timeout = (uint64_t)qp->c->timeout_ms * 1000000ull;
	int done = 0;

	for (uint32_t i = 0; i < qp->entries - 1; i++) {
		struct nvd_slot *s = &qp->slots[i];
		int rc;

		if (s->state == NVD_FREE)
			continue;
		if (!s->deadline_ns) {
			s->deadline_ns = qp->now_ns + timeout;
			continue;
		}
		if (s->deadline_ns > qp->now_ns)
			continue;
		rc = handle_timeout(qp, s);
		if (rc < 0)
			return rc;
		done += rc;
		if (qp->gen != atomic_load(&qp->c->gen) || !qp->outstanding)
			break;
	}
	return done;
}

/* Reap up to max completion entries, the first of which has arrived; then the doorbells.
 * Returns the callbacks run. */
static unsigned reap(struct udrv_nvme_qpair *qp, unsigned max)
{
	struct udrv_nvme_ctrlr *c = qp->c;
	unsigned n = 0;

	if (!max || max > qp->entries)
		max = qp->entries; /* bad entries count too: a hostile device cannot keep us */
	/* Commands the callbacks submit are rung in one SQ doorbell write after the CQ head's,
	 * as SPDK's delay_cmd_submit does: one MMIO write per batch instead of one per command,
	 * and the CQ head reaches the controller before it starts on new commands. */
	qp->in_reap = true;
	for (unsigned seen = 0; seen < max; seen++) {
		volatile struct nvme_cqe *e = &qp->cq[qp->cq_head];
		struct nvme_cqe cqe;
		struct nvd_slot *s;
		unsigned idx;

		if ((e->status & NVME_CQE_PHASE) != qp->phase)
			break;
		udrv_dma_rmb(); /* the rest of the entry is read after its phase tag */
		memcpy(&cqe, (const void *)e, sizeof(cqe));
		if (++qp->cq_head == qp->entries) {
			qp->cq_head = 0;
			qp->phase ^= 1;
		}
		/* Untrusted: the entry must name this queue, an outstanding command with its
		 * current sequence number, and an SQ head inside the queue (4.6). */
		idx = cqe.cid & NVD_SLOT_MASK;
		s = idx < qp->entries - 1 ? &qp->slots[idx] : NULL;
		if (__builtin_expect(cqe.sq_id != qp->qid || cqe.sq_head >= qp->entries || !s ||
					 s->state == NVD_FREE || s->cid != cqe.cid,
				     0)) {
			atomic_fetch_add(&c->st.bad_cqes, 1);
			nvd_log_bad(c, "queue %u: completion with sq %u cid %u sq head %u skipped",
				    qp->qid, cqe.sq_id, cqe.cid, cqe.sq_head);
			continue;
		}
		n++;
		if (s->state == NVD_TIMED_OUT && NVME_CQE_STATUS(&cqe))
			finish(qp, s, -ETIMEDOUT, NVME_CQE_STATUS(&cqe), cqe.dw0);
		else if (NVME_CQE_STATUS(&cqe))
			finish(qp, s, -EIO, NVME_CQE_STATUS(&cqe), cqe.dw0);
		else
			finish(qp, s, 0, 0, cqe.dw0);
	}
	qp->in_reap = false;
	if (qp->cq_head != qp->cq_head_rung) {
		nvd_doorbell(c, qp->cq_db, 2u * qp->qid + 1, qp->cq_head);
		qp->cq_head_rung = qp->cq_head;
	}
	if (qp->sq_tail != qp->sq_tail_rung) {
		udrv_dma_wmb(); /* the entries are visible to the controller before the doorbell */
		nvd_doorbell(c, qp->sq_db, 2u * qp->qid, qp->sq_tail);
		qp->sq_tail_rung = qp->sq_tail;
	}
	return n;
}

int udrv_nvme_process_completions(struct udrv_nvme_qpair *qp, unsigned max)
{
	unsigned n = 0;
	int rc;

	if (__builtin_expect(stale(qp), 0)) {
		rc = revalidate(qp);
		if (rc < 0)
			return rc;
		n = (unsigned)rc;
	}
	if ((qp->cq[qp->cq_head].status & NVME_CQE_PHASE) == qp->phase)
		n += reap(qp, max);
	if (qp->outstanding) {
		/* Timeouts are coarse: the clock is read once per poll, not per command. */
		qp->now_ns = nvd_now_ns();
		if (n || !qp->last_progress_ns)
			qp->last_progress_ns = qp->now_ns;
		if (qp->now_ns >= qp->next_check_ns) {
			qp->next_check_ns = qp->now_ns + TIMEOUT_SCAN_NS;
			rc = scan_timeouts(qp);
			if (rc >= 0 && qp->now_ns >= qp->next_removal_ns) {
				qp->next_removal_ns = qp->now_ns + HEALTH_CHECK_NS;
				if (nvd_ctrlr_removal(qp->c))
					rc = revalidate(qp);
			}
			if (rc >= 0 && qp->outstanding &&
			    qp->now_ns - qp->last_progress_ns >= HEALTH_CHECK_NS) {
				int h;

				qp->last_progress_ns = qp->now_ns; /* next check in as long */
				h = health_check(qp);
				rc = h < 0 ? h : rc + h;
			}
			if (rc < 0)
				return rc;
			n += (unsigned)rc;
		}
	}
	return (int)n;
}

unsigned udrv_nvme_qpair_outstanding(const struct udrv_nvme_qpair *qp)
{
	return qp ? qp->outstanding : 0;
}

int udrv_nvme_qpair_eventfd(const struct udrv_nvme_qpair *qp)
{
	return qp ? qp->efd : -1;
}
