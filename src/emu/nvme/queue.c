/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated controller's device thread: doorbells (NVMe 1.4, 3.1.24-25), submission queue
 * fetch and completion queue post (4.1, 4.6), held completions, interrupts and their
 * coalescing (5.21.1.8), asynchronous events (5.2), and the fault hooks on completions.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "core/log_internal.h"
#include "emu/nvme/nvme_emu.h"

#define SQ_BUDGET 32u /* commands per queue per pass, so one queue cannot starve the others */

int nvemu_host_read(void *ctx, uint64_t iova, void *buf, size_t len)
{
	struct udrv_emu_nvme *e = ctx;

	return udrv_vfu_dma_read(e->dev, iova, buf, len) < 0 ? -EFAULT : 0;
}

static unsigned cq_used(const struct nvemu_cq *cq)
{
	return (cq->tail + cq->size - cq->head) % cq->size;
}

/*
 * Write one entry at the CQ tail. The dword with the phase tag is stored last, with
 * release ordering: the host must never see the new phase before the rest of the entry.
 * owed: this completes a fetched command (not a duplicate).
 */
static void post_raw(struct udrv_emu_nvme *e, uint16_t sqid, uint16_t cid, uint16_t status,
		     uint32_t dw0, uint16_t sq_head, bool owed)
{
	struct nvemu_sq *sq = &e->sq[sqid];
	struct nvemu_cq *cq = &e->cq[sq->cqid];
	struct nvme_cqe c = {.dw0 = dw0, .sq_head = sq_head, .sq_id = sqid, .cid = cid};
	uint64_t at;
	uint8_t *p;

	if (owed && cq->owed)
		cq->owed--;
	if (!cq->live)
		return;
	if ((cq->tail + 1) % cq->size == cq->head) {
		/* Only a host that moved the head doorbell backwards gets here. */
		atomic_fetch_add(&e->cnt.bad_doorbells, 1);
		return;
	}
	c.status = (uint16_t)(status << 1 | cq->phase);
	at = cq->base + (uint64_t)cq->tail * NVME_CQE_SIZE;
	p = udrv_vfu_dma_ptr(e->dev, at, NVME_CQE_SIZE, true);
	if (p) {
		uint32_t last;

		memcpy(p, &c, 12);
		memcpy(&last, (uint8_t *)&c + 12, 4);
		__atomic_store_n((uint32_t *)(p + 12), last, __ATOMIC_RELEASE);
	} else if (udrv_vfu_dma_write(e->dev, at, &c, sizeof(c)) < 0) {
		nvemu_ctrl_fatal(e, "a completion queue is not in memory the host mapped");
		return;
	}
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase ^= 1;
	}
	if (!cq->unsignaled++)
		cq->first_unsignaled_ns = nvemu_now_ns();
}

void nvemu_post(struct udrv_emu_nvme *e, uint16_t sqid, uint16_t cid, uint16_t status, uint32_t dw0)
{
	post_raw(e, sqid, cid, status, dw0, (uint16_t)e->sq[sqid].head, true);
}

/* Post with the completion faults applied (I/O queues only). */
static void post_io(struct udrv_emu_nvme *e, uint16_t sqid, uint16_t cid, uint16_t status,
		    uint32_t dw0)
{
	struct nvemu_sq *sq = &e->sq[sqid];
	struct nvemu_cq *cq = &e->cq[sq->cqid];
	uint16_t head = (uint16_t)sq->head;

	if (nvemu_fault_take(&e->faults.bogus_cid)) {
		atomic_fetch_add(&e->cnt.faults_fired, 1);
		cid ^= 0x8000;
	}
	if (nvemu_fault_take(&e->faults.bad_sq_head)) {
		atomic_fetch_add(&e->cnt.faults_fired, 1);
		head = (uint16_t)(sq->size + 7);
	}
	post_raw(e, sqid, cid, status, dw0, head, true);
	/* A duplicate only where it cannot take the room of a completion still owed. */
	if (cq_used(cq) + cq->owed + 1 < cq->size - 1 && nvemu_fault_take(&e->faults.dup_cid)) {
		atomic_fetch_add(&e->cnt.faults_fired, 1);
		post_raw(e, sqid, cid, status, dw0, head, false);
	}
}

static void log_error(struct udrv_emu_nvme *e, uint16_t sqid, uint16_t cid, uint16_t status)
{
	struct nvme_error_log_page *l = &e->errlog[e->error_count % (NVEMU_ELPE + 1)];

	atomic_fetch_add(&e->cnt.errors, 1);
	*l = (struct nvme_error_log_page){
	    .error_count = ++e->error_count,
	    .sqid = sqid,
	    .cmdid = cid,
	    .status_field = (uint16_t)(status << 1),
	    .parm_error_location = 0xffff, /* not reported */
	};
}

void nvemu_complete(struct udrv_emu_nvme *e, uint16_t sqid, uint16_t cid, uint16_t status,
		    uint32_t dw0)
{
	uint64_t lat;

	if (status)
		log_error(e, sqid, cid, status);
	if (sqid == NVME_ADMIN_QID) {
		nvemu_post(e, sqid, cid, status, dw0);
		return;
	}
	if (nvemu_fault_take(&e->faults.drop)) {
		atomic_fetch_add(&e->cnt.faults_fired, 1);
		if (e->cq[e->sq[sqid].cqid].owed)
			e->cq[e->sq[sqid].cqid].owed--;
		return;
	}
	lat = atomic_load_explicit(&e->faults.latency_ns, memory_order_relaxed);
	if (lat && e->npending < NVEMU_PENDING) {
		e->pending[e->npending++] = (struct nvemu_pending){
		    .sqid = sqid,
		    .cid = cid,
		    .status = status,
		    .dw0 = dw0,
		    .due_ns = nvemu_now_ns() + lat,
		};
		return;
	}
	post_io(e, sqid, cid, status, dw0);
}

unsigned nvemu_pending_abort(struct udrv_emu_nvme *e, uint16_t sqid, int cid, uint16_t status)
{
	unsigned n = 0;

	for (unsigned i = 0; i < e->npending;) {
		struct nvemu_pending p = e->pending[i];

		if (p.sqid != sqid || (cid >= 0 && p.cid != cid)) {
			i++;
			continue;
		}
		e->pending[i] = e->pending[--e->npending];
		log_error(e, p.sqid, p.cid, status);
		nvemu_post(e, p.sqid, p.cid, status, 0);
		n++;
	}
	return n;
}

/* Post the held completions that are due; *next: when the earliest other one is. */
static unsigned deliver_due(struct udrv_emu_nvme *e, uint64_t now, uint64_t *next)
{
	unsigned n = 0;

	*next = UINT64_MAX;
	for (unsigned i = 0; i < e->npending;) {
		struct nvemu_pending p = e->pending[i];

		if (p.due_ns > now) {
			if (p.due_ns < *next)
				*next = p.due_ns;
			i++;
			continue;
		}
		e->pending[i] = e->pending[--e->npending];
		post_io(e, p.sqid, p.cid, p.status, p.dw0);
		n++;
	}
	return n;
}

/* Room in the admin CQ for an event beyond every completion still owed to it. */
static bool admin_cq_room(const struct udrv_emu_nvme *e)
{
	const struct nvemu_cq *cq = &e->cq[NVME_ADMIN_QID];

	return cq->live && cq_used(cq) + cq->owed + 1 < cq->size;
}

/* Complete outstanding requests with queued events whose type is not masked (5.2). */
static void aer_flush(struct udrv_emu_nvme *e)
{
	for (unsigned i = 0; i < e->naer_events && e->naer && admin_cq_room(e);) {
		uint32_t dw0 = e->aer_events[i];
		uint16_t cid = e->aer_cid[0];

		if (e->aer_masked_events & (1u << (dw0 & 7))) {
			i++;
			continue;
		}
		memmove(e->aer_events + i, e->aer_events + i + 1,
			(--e->naer_events - i) * sizeof(uint32_t));
		memmove(e->aer_cid, e->aer_cid + 1, --e->naer * sizeof(uint16_t));
		e->aer_masked_events |= 1u << (dw0 & 7);
		post_raw(e, NVME_ADMIN_QID, cid, 0, dw0, (uint16_t)e->sq[0].head, false);
	}
}

void nvemu_aer_submit(struct udrv_emu_nvme *e, uint16_t cid)
{
	struct nvemu_cq *cq = &e->cq[NVME_ADMIN_QID];

	if (e->naer > NVEMU_AERL) {
		nvemu_complete(e, NVME_ADMIN_QID, cid,
			       NVME_STATUS(NVME_SCT_CMD_SPECIFIC, NVME_SC_ASYNC_LIMIT), 0);
		return;
	}
	/* An outstanding request holds no room in the admin CQ: it may wait for ever, and a
	 * small admin queue must keep working. Its completion waits for room instead. */
	if (cq->owed)
		cq->owed--;
	e->aer_cid[e->naer++] = cid;
	aer_flush(e);
}

void nvemu_async_event(struct udrv_emu_nvme *e, uint32_t dw0)
{
	unsigned type = dw0 & 7;

	if (e->aer_masked_events & (1u << type))
		return;
	for (unsigned i = 0; i < e->naer_events; i++)
		if ((e->aer_events[i] & 7) == type)
			return; /* one event per type until the host reads its log */
	if (e->naer_events < sizeof(e->aer_events) / sizeof(e->aer_events[0]))
		e->aer_events[e->naer_events++] = dw0;
	aer_flush(e);
}

void nvemu_aer_unmask(struct udrv_emu_nvme *e, unsigned type)
{
	e->aer_masked_events &= ~(1u << type);
	aer_flush(e);
}

/* A doorbell value beyond its queue (3.1.24): ignored, reported as an error event. */
static void bad_doorbell(struct udrv_emu_nvme *e)
{
	atomic_fetch_add(&e->cnt.bad_doorbells, 1);
	nvemu_async_event(
	    e, NVME_AER_DW0(NVME_AER_ERROR, NVME_AER_ERROR_INVALID_DB_VAL, NVME_LOG_LID_ERROR));
}

/* Read a doorbell: true when it changed since *last (then *last is the new value). A bad
 * value is thus reported once, however long the host leaves it there. */
static bool db_changed(struct udrv_emu_nvme *e, unsigned idx, uint32_t *last)
{
	uint32_t v = __atomic_load_n(&e->db[idx], __ATOMIC_ACQUIRE);

	if (v == *last)
		return false;
	*last = v;
	return true;
}

static bool fetch(struct udrv_emu_nvme *e, struct nvemu_sq *sq, struct nvme_sqe *cmd)
{
	uint64_t at = sq->base + (uint64_t)sq->head * NVME_SQE_SIZE;
	const void *p = udrv_vfu_dma_ptr(e->dev, at, NVME_SQE_SIZE, false);

	/* One copy: the host may rewrite the entry while we work on it. */
	if (p)
		memcpy(cmd, p, sizeof(*cmd));
	else if (udrv_vfu_dma_read(e->dev, at, cmd, sizeof(*cmd)) < 0)
		return false;
	return true;
}

static unsigned process_sq(struct udrv_emu_nvme *e, uint16_t qid)
{
	struct nvemu_sq *sq = &e->sq[qid];
	struct nvemu_cq *cq = &e->cq[sq->cqid];
	unsigned n = 0;
	uint32_t v;

	if (db_changed(e, 2u * qid, &sq->db_last)) {
		if (sq->db_last < sq->size)
			sq->tail = sq->db_last;
		else
			bad_doorbell(e);
	}
	/* A head may only move over entries we posted (5.2, Invalid Doorbell Write Value). */
	if (cq->live && db_changed(e, 2u * sq->cqid + 1, &cq->db_last)) {
		v = cq->db_last;
		if (v < cq->size && (v + cq->size - cq->head) % cq->size <= cq_used(cq))
			cq->head = v;
		else
			bad_doorbell(e);
	}
	while (sq->live && sq->head != sq->tail && n < SQ_BUDGET && !e->halted) {
		struct nvme_sqe cmd;

		/* Room for the completion, counting those still owed to this CQ. */
		if (cq_used(cq) + cq->owed >= cq->size - 1 || e->npending >= NVEMU_PENDING)
			break;
		if (!fetch(e, sq, &cmd)) {
			nvemu_ctrl_fatal(e, "a submission queue is not in memory the host mapped");
			break;
		}
		sq->head = (sq->head + 1) % sq->size;
		cq->owed++;
		n++;
		if (qid == NVME_ADMIN_QID) {
			atomic_fetch_add_explicit(&e->cnt.admin_cmds, 1, memory_order_relaxed);
			nvemu_admin(e, &cmd);
		} else {
			atomic_fetch_add_explicit(&e->cnt.io_cmds, 1, memory_order_relaxed);
			nvemu_io(e, qid, &cmd);
		}
	}
	return n;
}

/* Interrupt coalescing (5.21.1.8): never for the admin queue or a vector with CD set. */
static bool coalesce(const struct udrv_emu_nvme *e, uint16_t qid, const struct nvemu_cq *cq,
		     uint64_t now)
{
	uint32_t thr = (e->feat_irq_coalesce & 0xff) + 1;
	uint64_t time_ns = ((e->feat_irq_coalesce >> 8) & 0xff) * 100000ull;

	if (qid == NVME_ADMIN_QID || !e->feat_irq_coalesce ||
	    (e->feat_irq_config[cq->iv % (NVEMU_MAX_QID + 1)] & (1u << 16)))
		return false;
	return cq->unsignaled < thr && now - cq->first_unsignaled_ns < time_ns;
}

static unsigned interrupts(struct udrv_emu_nvme *e, uint64_t now)
{
	unsigned held = 0;

	for (uint16_t q = 0; q <= e->nr_queues; q++) {
		struct nvemu_cq *cq = &e->cq[q];

		if (!cq->live || !cq->unsignaled || !cq->ien)
			continue;
		if (coalesce(e, q, cq, now)) {
			held++;
			continue;
		}
		cq->unsignaled = 0;
		/* -ENOENT: the host has not enabled the vector and polls. */
		udrv_vfu_irq_trigger(e->dev, UDRV_IRQ_MSIX, cq->iv);
	}
	return held;
}

static void take_requests(struct udrv_emu_nvme *e)
{
	if (atomic_exchange(&e->faults.remove, false)) {
		atomic_fetch_add(&e->cnt.faults_fired, 1);
		udrv_vfu_disconnect(e->dev);
	}
	if (atomic_exchange(&e->faults.fatal, false)) {
		atomic_fetch_add(&e->cnt.faults_fired, 1);
		nvemu_ctrl_fatal(e, "fatal status injected");
	}
	if (atomic_exchange(&e->faults.hang, false)) {
		atomic_fetch_add(&e->cnt.faults_fired, 1);
		udrv_warn("emulated NVMe %s: stopped responding (injected) until the host resets "
			  "it",
			  e->opts.socket_path);
		e->halted = true;
	}
}

static int pass(struct udrv_emu_nvme *e, bool bus_master)
{
	uint64_t now, start, next = UINT64_MAX;
	unsigned work = 0, held;

	if (nvemu_ctrl_service(e))
		work++;
	take_requests(e);
	if (!e->enabled)
		return (int)work;
	start = now = nvemu_now_ns();
	if (e->halted) /* interrupts held by coalescing still fire */
		return (int)(work + interrupts(e, now));
	/* Without Bus Master Enable a PCI function must not start DMA (PCI 3.0, 6.2.2): the
	 * queues wait, as on hardware. */
	if (!bus_master)
		return (int)work;
	if (e->feat_kato && now - e->last_keep_alive_ns > e->feat_kato * 1000000ull) {
		nvemu_ctrl_fatal(e, "the keep alive timer expired");
		return 1;
	}
	if (e->npending)
		work += deliver_due(e, now, &next);
	for (uint16_t q = 0; q <= e->nr_queues && !e->halted; q++)
		if (e->sq[q].live)
			work += process_sq(e, q);
	nvemu_backing_reap(e->store, nvemu_io_done, e);
	if (e->naer_events && e->naer)
		aer_flush(e);
	now = nvemu_now_ns();
	held = interrupts(e, now);
	if (work)
		e->busy_ns += now - start;
	/* A completion due within the poller's longest sleep (~1 ms) or a held interrupt needs
	 * the next pass soon: keep the thread awake. Later ones may wait for its back-off. */
	return (int)(work + held + (next <= now || next - now < 1000000 ? 1 : 0));
}

int nvemu_poll(void *ctx)
{
	struct udrv_emu_nvme *e = ctx;
	int rc;

	/* Both seq_cst, paired with nvemu_bus_master_changed(): either this pass sees Bus
	 * Master Enable cleared, or the config write waits until the pass is over. */
	atomic_store(&e->in_pass, true);
	rc = pass(e, atomic_load(&e->bus_master));
	atomic_store(&e->in_pass, false);
	return rc;
}

void nvemu_bus_master_changed(struct udrv_emu_nvme *e)
{
	bool on = udrv_vfu_bus_master(e->dev);

	atomic_store(&e->bus_master, on);
	/* The host's config write completes only when no DMA can follow it. */
	while (!on && atomic_load(&e->in_pass))
		sched_yield();
}
