/* SPDX-License-Identifier: BSD-3-Clause */
/* A minimal, test-only NVMe host: see nvme_host.h. Simple and obvious on purpose. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <udrv/log.h>

#include "nvme_host.h"

/* ---- fixture ---- */

static char tmpdir[64];

static void rm_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	char p[512];

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(tmpdir);
}

const char *nh_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/udrv-nvt-XXXXXX");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			exit(1);
		}
		atexit(rm_tmpdir);
	}
	return tmpdir;
}

void nh_tmppath(char *buf, size_t len, const char *name)
{
	static unsigned n;

	snprintf(buf, len, "%s/%s-%u", nh_tmpdir(), name, n++);
}

struct udrv_emu_nvme *nh_emu_start(struct udrv_emu_nvme_opts *o, char *sock)
{
	struct udrv_emu_nvme *e;

	if (!o->socket_path) {
		nh_tmppath(sock, 128, "nvme.sock");
		o->socket_path = sock;
	} else if (sock != o->socket_path) {
		snprintf(sock, 128, "%s", o->socket_path);
	}
	e = udrv_emu_nvme_create(o);
	if (!e || udrv_emu_nvme_start(e) < 0) {
		fprintf(stderr, "emulator on %s: %s\n", o->socket_path, udrv_errmsg());
		exit(1);
	}
	return e;
}

double nh_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void nh_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* ---- connection and registers ---- */

int nh_open(const char *sock, struct nvme_host **out)
{
	struct nvme_host *h = calloc(1, sizeof(*h));
	char name[256];
	int rc;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	snprintf(name, sizeof(name), "vfio-user:%s", sock);
	rc = udrv_device_open(name, NULL, &h->dev);
	if (rc < 0) {
		free(h);
		return rc;
	}
	h->dom = udrv_device_domain(h->dev);
	h->bar0 = udrv_device_region_map(h->dev, UDRV_REGION_BAR0);
	h->prp_pool = udrv_dma_zalloc(h->dom, NH_PRP_PAGES * 4096, 4096, &h->prp_pool_iova);
	rc = !h->bar0 || !h->prp_pool ? -errno : nh_read64(h, NVME_REG_CAP, &h->cap);
	if (rc == 0)
		rc = udrv_device_set_bus_master(h->dev, true);
	if (rc < 0) {
		udrv_device_close(h->dev);
		free(h);
		return rc;
	}
	h->next_cid = 1;
	*out = h;
	return 0;
}

void nh_close(struct nvme_host *h)
{
	uint32_t csts;

	if (!h)
		return;
	/* The controller must stop before its queues' memory goes away. */
	if (nh_write32(h, NVME_REG_CC, 0) == 0)
		nh_wait_csts(h, NH_RDY, 0, 2000, &csts);
	udrv_device_close(h->dev); /* destroys the domain and its heap too */
	free(h);
}

int nh_read32(struct nvme_host *h, unsigned off, uint32_t *v)
{
	int rc = udrv_device_region_read(h->dev, UDRV_REGION_BAR0, off, v, 4);

	return rc < 0 ? rc : 0;
}

int nh_read64(struct nvme_host *h, unsigned off, uint64_t *v)
{
	int rc = udrv_device_region_read(h->dev, UDRV_REGION_BAR0, off, v, 8);

	return rc < 0 ? rc : 0;
}

int nh_write32(struct nvme_host *h, unsigned off, uint32_t v)
{
	int rc = udrv_device_region_write(h->dev, UDRV_REGION_BAR0, off, &v, 4);

	return rc < 0 ? rc : 0;
}

int nh_write64(struct nvme_host *h, unsigned off, uint64_t v)
{
	int rc = udrv_device_region_write(h->dev, UDRV_REGION_BAR0, off, &v, 8);

	return rc < 0 ? rc : 0;
}

int nh_wait_csts(struct nvme_host *h, uint32_t mask, uint32_t want, int timeout_ms, uint32_t *csts)
{
	double end = nh_now() + timeout_ms / 1000.0;

	for (;;) {
		int rc = nh_read32(h, NVME_REG_CSTS, csts);

		if (rc < 0)
			return rc;
		if ((*csts & mask) == want)
			return 0;
		if (nh_now() > end)
			return -ETIMEDOUT;
		nh_sleep_ms(1);
	}
}

uint32_t nh_cc_enable(void)
{
	return 1u << NVME_CC_EN_SHIFT | NVME_CC_CSS_NVM << NVME_CC_CSS_SHIFT |
	       NVME_SQES_LOG2 << NVME_CC_IOSQES_SHIFT | NVME_CQES_LOG2 << NVME_CC_IOCQES_SHIFT;
}

/* Allocate or reuse queue memory of entries; zeroed. */
static void *queue_mem(struct nvme_host *h, void *old, uint32_t *alloc, unsigned entries,
		       size_t esize, uint64_t *iova)
{
	if (old && *alloc >= entries) {
		memset(old, 0, (size_t)*alloc * esize);
		*iova = nh_iova(h, old);
		return old;
	}
	nh_free(h, old);
	*alloc = entries;
	return nh_alloc(h, (size_t)entries * esize, iova);
}

static void forget_queues(struct nvme_host *h)
{
	for (unsigned i = 0; i <= NH_MAX_QID; i++) {
		struct nh_queue *q = &h->q[i];

		q->sq_live = q->cq_live = false;
		q->sq_tail = q->sq_head = q->cq_head = 0;
		q->phase = 1;
		q->nstash = 0;
	}
}

int nh_setup_admin(struct nvme_host *h, unsigned entries)
{
	struct nh_queue *q = &h->q[0];
	int rc;

	forget_queues(h);
	q->sq = queue_mem(h, q->sq, &q->sq_alloc, entries, NVME_SQE_SIZE, &q->sq_iova);
	q->cq = queue_mem(h, q->cq, &q->cq_alloc, entries, NVME_CQE_SIZE, &q->cq_iova);
	if (!q->sq || !q->cq)
		return -ENOMEM;
	q->sq_size = q->cq_size = entries;
	q->cqid = 0;
	rc = nh_write32(h, NVME_REG_AQA, (entries - 1) << 16 | (entries - 1));
	if (!rc)
		rc = nh_write64(h, NVME_REG_ASQ, q->sq_iova);
	if (!rc)
		rc = nh_write64(h, NVME_REG_ACQ, q->cq_iova);
	q->sq_live = q->cq_live = rc == 0;
	return rc;
}

int nh_enable(struct nvme_host *h, unsigned entries)
{
	uint32_t csts = 0;
	int to_ms = (int)NVME_CAP_TO(h->cap) * 500, rc;
	double end = nh_now() + (to_ms ? to_ms : 5000) / 1000.0;

	rc = nh_setup_admin(h, entries);
	if (!rc)
		rc = nh_write32(h, NVME_REG_CC, nh_cc_enable());
	/* Ready, or failed: whichever comes first, within CAP.TO. */
	while (!rc && !(csts & (NH_RDY | NH_CFS))) {
		rc = nh_read32(h, NVME_REG_CSTS, &csts);
		if (!rc && !(csts & (NH_RDY | NH_CFS)) && nh_now() > end)
			rc = -ETIMEDOUT;
		else if (!rc)
			nh_sleep_ms(1);
	}
	return rc ? rc : (csts & NH_CFS) ? -EIO : 0;
}

int nh_disable(struct nvme_host *h)
{
	uint32_t csts;
	int rc = nh_write32(h, NVME_REG_CC, 0);

	/* RDY, and CFS too: after a failed enable RDY is 0 already, and only CFS going to 0
	 * says that the reset happened (the controller applies CC asynchronously). */
	if (!rc)
		rc = nh_wait_csts(h, NH_RDY | NH_CFS, 0, NH_TIMEOUT_MS, &csts);
	forget_queues(h);
	return rc;
}

/* ---- DMA memory, data pointers ---- */

void *nh_alloc(struct nvme_host *h, size_t size, uint64_t *iova)
{
	return udrv_dma_zalloc(h->dom, size, 4096, iova);
}

void nh_free(struct nvme_host *h, void *va)
{
	udrv_dma_free(h->dom, va);
}

uint64_t nh_iova(struct nvme_host *h, const void *va)
{
	return udrv_dma_iova(h->dom, va);
}

int nh_prp(struct nvme_host *h, struct nvme_sqe *cmd, const void *buf, size_t len)
{
	uint64_t iova = nh_iova(h, buf), first, page, *list;
	unsigned n = 0;

	if (iova == UDRV_DMA_IOVA_INVALID || !len)
		return -EINVAL;
	cmd->flags &= (uint8_t)~NVME_CMD_PSDT_MASK;
	cmd->prp1 = iova;
	cmd->prp2 = 0;
	first = 4096 - (iova & 4095);
	if (len <= first)
		return 0;
	page = iova + first;
	if (len - first <= 4096) {
		cmd->prp2 = page;
		return 0;
	}
	if (len - first > 511ull * 4096)
		return -EINVAL; /* one list page is plenty for the MDTS we test */
	list = (uint64_t *)(h->prp_pool + (size_t)(h->prp_next++ % NH_PRP_PAGES) * 4096);
	for (uint64_t left = len - first; left; page += 4096) {
		list[n++] = page;
		left -= left < 4096 ? left : 4096;
	}
	cmd->prp2 = nh_iova(h, list);
	return 0;
}

struct nvme_sgl_desc nh_sgl_desc(uint64_t addr, uint32_t len, uint8_t type)
{
	return (struct nvme_sgl_desc){.addr = addr, .len = len, .id = (uint8_t)(type << 4)};
}

void nh_sgl1(struct nvme_sqe *cmd, uint64_t addr, uint32_t len, uint8_t type)
{
	cmd->flags = (uint8_t)((cmd->flags & ~NVME_CMD_PSDT_MASK) | NVME_CMD_PSDT_SGL);
	cmd->sgl = nh_sgl_desc(addr, len, type);
}

/* ---- queues ---- */

void nh_db_write(struct nvme_host *h, unsigned index, uint32_t v)
{
	udrv_dma_wmb(); /* queue entries before the doorbell */
	udrv_mmio_write32(h->bar0 + NVME_DB_BASE + 4u * index, v);
}

int nh_submit_raw(struct nvme_host *h, uint16_t qid, const struct nvme_sqe *cmd, bool ring)
{
	struct nh_queue *q = qid <= NH_MAX_QID ? &h->q[qid] : NULL;

	if (!q || !q->sq_live)
		return -EINVAL;
	if ((q->sq_tail + 1) % q->sq_size == q->sq_head)
		return -EAGAIN;
	memcpy(&q->sq[q->sq_tail], cmd, sizeof(*cmd));
	q->sq_tail = (q->sq_tail + 1) % q->sq_size;
	if (ring)
		nh_db_write(h, 2u * qid, q->sq_tail);
	return 0;
}

int nh_submit(struct nvme_host *h, uint16_t qid, struct nvme_sqe *cmd)
{
	int rc;

	cmd->cid = h->next_cid;
	rc = nh_submit_raw(h, qid, cmd, true);
	if (rc < 0)
		return rc;
	/* Below 8000h: the bogus-cid fault flips bit 15. */
	h->next_cid = (uint16_t)(h->next_cid % 0x7fff + 1);
	return cmd->cid;
}

int nh_poll(struct nvme_host *h, uint16_t cqid, struct nvme_cqe *out)
{
	struct nh_queue *q = &h->q[cqid % (NH_MAX_QID + 1)];
	volatile struct nvme_cqe *c;

	if (cqid > NH_MAX_QID || !q->cq_live)
		return 0;
	c = &q->cq[q->cq_head];
	if ((c->status & NVME_CQE_PHASE) != q->phase)
		return 0;
	udrv_dma_rmb(); /* the phase tag before the rest */
	memcpy(out, (const void *)c, sizeof(*out));
	if (++q->cq_head == q->cq_size) {
		q->cq_head = 0;
		q->phase ^= 1;
	}
	nh_db_write(h, 2u * cqid + 1, q->cq_head);
	/* Minimal checks: the entry names an SQ of ours that completes here. */
	if (out->sq_id > NH_MAX_QID || !h->q[out->sq_id].sq_live || h->q[out->sq_id].cqid != cqid)
		h->bad_cqes++;
	else if (out->sq_head < h->q[out->sq_id].sq_size)
		h->q[out->sq_id].sq_head = out->sq_head;
	return 1;
}

/* The CQ that SQ qid completes to (itself when the host does not know the SQ). */
static uint16_t cq_of(struct nvme_host *h, uint16_t qid)
{
	qid %= NH_MAX_QID + 1;
	return h->q[qid].sq_live ? h->q[qid].cqid % (NH_MAX_QID + 1) : qid;
}

int nh_next(struct nvme_host *h, uint16_t qid, struct nvme_cqe *out, int timeout_ms)
{
	struct nh_queue *cq = &h->q[cq_of(h, qid)];
	double end = nh_now() + timeout_ms / 1000.0;

	if (cq->nstash) {
		*out = cq->stash[0];
		memmove(cq->stash, cq->stash + 1, --cq->nstash * sizeof(*out));
		return 0;
	}
	for (unsigned spin = 0;; spin++) {
		if (nh_poll(h, cq_of(h, qid), out))
			return 0;
		if (nh_now() > end)
			return -ETIMEDOUT;
		if (spin > 100)
			usleep(50);
	}
}

int nh_wait(struct nvme_host *h, uint16_t qid, uint16_t cid, struct nvme_cqe *out, int timeout_ms)
{
	struct nh_queue *cq = &h->q[cq_of(h, qid)];
	double end = nh_now() + timeout_ms / 1000.0;

	for (unsigned i = 0; i < cq->nstash; i++) {
		if (cq->stash[i].cid == cid && cq->stash[i].sq_id == qid) {
			*out = cq->stash[i];
			memmove(cq->stash + i, cq->stash + i + 1,
				(--cq->nstash - i) * sizeof(*out));
			return 0;
		}
	}
	for (unsigned spin = 0;; spin++) {
		if (nh_poll(h, cq_of(h, qid), out)) {
			if (out->cid == cid && out->sq_id == qid)
				return 0;
			if (cq->nstash == NH_STASH) /* drop the oldest */
				memmove(cq->stash, cq->stash + 1, --cq->nstash * sizeof(*out));
			cq->stash[cq->nstash++] = *out;
			continue;
		}
		if (nh_now() > end)
			return -ETIMEDOUT;
		if (spin > 100)
			usleep(50);
	}
}

int nh_exec(struct nvme_host *h, uint16_t qid, struct nvme_sqe *cmd, struct nvme_cqe *out)
{
	struct nvme_cqe c;
	int cid = nh_submit(h, qid, cmd), rc;

	if (cid < 0)
		return cid;
	rc = nh_wait(h, qid, (uint16_t)cid, &c, NH_TIMEOUT_MS);
	if (rc < 0)
		return rc;
	if (out)
		*out = c;
	return NVME_CQE_STATUS(&c);
}

/* Queue memory for a create command: the host's slot for qid when it is free, else (a
 * create that is meant to fail: qid 0, out of range, or live) a temporary allocation, so
 * that a live queue's memory is never touched. */
static void *create_mem(struct nvme_host *h, bool cq, uint16_t qid, unsigned entries,
			uint64_t *iova, bool *slot)
{
	struct nh_queue *q = &h->q[qid % (NH_MAX_QID + 1)];
	size_t esize = cq ? NVME_CQE_SIZE : NVME_SQE_SIZE;

	entries = entries ? entries : 1;
	*slot = qid && qid <= NH_MAX_QID && !(cq ? q->cq_live : q->sq_live);
	if (!*slot)
		return nh_alloc(h, (size_t)entries * esize, iova);
	if (cq)
		return q->cq = queue_mem(h, q->cq, &q->cq_alloc, entries, esize, iova);
	return q->sq = queue_mem(h, q->sq, &q->sq_alloc, entries, esize, iova);
}

/* Create CQ or SQ qid; on success the host starts using its slot. */
static int create_q(struct nvme_host *h, bool cq, uint16_t qid, unsigned entries, uint32_t cdw11)
{
	struct nvme_sqe c = {.opc = cq ? nvme_admin_create_cq : nvme_admin_create_sq};
	struct nh_queue *q = &h->q[qid % (NH_MAX_QID + 1)];
	bool slot;
	void *mem = create_mem(h, cq, qid, entries, &c.prp1, &slot);
	int st;

	if (!mem)
		return -ENOMEM;
	c.cdw10 = (uint32_t)(entries - 1) << 16 | qid;
	c.cdw11 = cdw11;
	st = nh_exec(h, 0, &c, NULL);
	if (st != 0 && !slot)
		nh_free(h, mem); /* (kept if the controller took it after all) */
	if (st != 0 || !slot)
		return st;
	if (cq) {
		q->cq_iova = c.prp1;
		q->cq_live = true;
		q->cq_size = entries;
		q->cq_head = q->nstash = 0;
		q->phase = 1;
	} else {
		q->sq_iova = c.prp1;
		q->sq_live = true;
		q->cqid = (uint16_t)(cdw11 >> 16);
		q->sq_size = entries;
		q->sq_tail = q->sq_head = 0;
	}
	return 0;
}

int nh_create_cq(struct nvme_host *h, uint16_t qid, unsigned entries, bool ien)
{
	return create_q(h, true, qid, entries,
			NVME_QUEUE_PC | (ien ? NVME_CQ_IEN | (uint32_t)qid << 16 : 0));
}

int nh_create_sq(struct nvme_host *h, uint16_t qid, uint16_t cqid, unsigned entries)
{
	return create_q(h, false, qid, entries, (uint32_t)cqid << 16 | NVME_QUEUE_PC);
}

static int delete_q(struct nvme_host *h, uint8_t opc, uint16_t qid)
{
	struct nvme_sqe c = {.opc = opc, .cdw10 = qid};
	int st = nh_exec(h, 0, &c, NULL);

	if (st == 0 && qid <= NH_MAX_QID && qid) {
		if (opc == nvme_admin_delete_sq)
			h->q[qid].sq_live = false;
		else
			h->q[qid].cq_live = false;
	}
	return st;
}

int nh_delete_sq(struct nvme_host *h, uint16_t qid)
{
	return delete_q(h, nvme_admin_delete_sq, qid);
}

int nh_delete_cq(struct nvme_host *h, uint16_t qid)
{
	return delete_q(h, nvme_admin_delete_cq, qid);
}

int nh_create_qpair(struct nvme_host *h, uint16_t qid, unsigned entries)
{
	int st = nh_create_cq(h, qid, entries, false);

	return st ? st : nh_create_sq(h, qid, qid, entries);
}

/* ---- commands ---- */

/* An admin command whose data (len bytes) goes to buf through PRPs; buf may be any memory:
 * the data is copied through a DMA bounce buffer. */
static int admin_data(struct nvme_host *h, struct nvme_sqe *c, void *buf, size_t len)
{
	void *b = nh_alloc(h, len, NULL);
	int st;

	if (!b)
		return -ENOMEM;
	st = nh_prp(h, c, b, len);
	if (st == 0)
		st = nh_exec(h, 0, c, NULL);
	if (st == 0)
		memcpy(buf, b, len);
	nh_free(h, b);
	return st;
}

int nh_identify(struct nvme_host *h, unsigned cns, uint32_t nsid, void *buf4k)
{
	struct nvme_sqe c = {.opc = nvme_admin_identify, .nsid = nsid, .cdw10 = cns};

	return admin_data(h, &c, buf4k, NVME_IDENTIFY_LEN);
}

int nh_get_log(struct nvme_host *h, unsigned lid, uint32_t nsid, void *buf, size_t len)
{
	uint32_t numd = (uint32_t)(len / 4 - 1);
	struct nvme_sqe c = {.opc = nvme_admin_get_log_page,
			     .nsid = nsid,
			     .cdw10 = (numd & 0xffff) << 16 | lid,
			     .cdw11 = numd >> 16};

	return admin_data(h, &c, buf, len);
}

int nh_get_features(struct nvme_host *h, unsigned fid, unsigned sel, uint32_t cdw11, uint32_t *dw0)
{
	struct nvme_sqe c = {
	    .opc = nvme_admin_get_features, .cdw10 = sel << 8 | fid, .cdw11 = cdw11};
	struct nvme_cqe e = {0};
	int st = nh_exec(h, 0, &c, &e);

	*dw0 = e.dw0;
	return st;
}

int nh_set_features(struct nvme_host *h, unsigned fid, uint32_t cdw11, uint32_t *dw0)
{
	struct nvme_sqe c = {.opc = nvme_admin_set_features, .cdw10 = fid, .cdw11 = cdw11};
	struct nvme_cqe e = {0};
	int st = nh_exec(h, 0, &c, &e);

	if (dw0)
		*dw0 = e.dw0;
	return st;
}

void nh_rw_cmd(struct nvme_sqe *c, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb)
{
	*c = (struct nvme_sqe){.opc = opc,
			       .nsid = nsid,
			       .cdw10 = (uint32_t)slba,
			       .cdw11 = (uint32_t)(slba >> 32),
			       .cdw12 = (nlb - 1) & 0xffff};
}

int nh_io(struct nvme_host *h, uint16_t qid, uint8_t opc, uint32_t nsid, uint64_t slba,
	  uint32_t nlb, void *buf, size_t bytes)
{
	struct nvme_sqe c;

	nh_rw_cmd(&c, opc, nsid, slba, nlb);
	if (buf && nh_prp(h, &c, buf, bytes) < 0)
		return -EINVAL;
	return nh_exec(h, qid, &c, NULL);
}
