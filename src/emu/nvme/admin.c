/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated controller's admin command set (NVMe 1.4, 5): Identify, queue creation and
 * deletion, features, log pages, Abort, Asynchronous Event Request, Keep Alive.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/log_internal.h"
#include "emu/nvme/nvme_emu.h"

#define SC(sc)	NVME_STATUS(NVME_SCT_GENERIC, sc)
#define CSC(sc) NVME_STATUS(NVME_SCT_CMD_SPECIFIC, sc)
#define KAS_MS	100u /* Keep Alive Support granularity (Identify KAS, 100 ms units) */
#define TEMP_K	313u /* a comfortable 40 C */
#define CD_BIT	(1u << 16)

/* Copy len bytes of controller data to the host through the command's PRPs (admin
 * commands use PRPs only on PCIe: 4.2, PSDT). */
static uint16_t to_host(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd, const void *buf,
			size_t len)
{
	uint16_t st;

	if (cmd->flags & NVME_CMD_PSDT_MASK)
		return SC(NVME_SC_INVALID_FIELD);
	st = nvemu_dptr_resolve(cmd, len, true, nvemu_host_read, e, &e->dptr);
	if (!st && nvemu_dptr_copy(e->dev, &e->dptr, (void *)buf, true) < 0)
		st = SC(NVME_SC_DATA_XFER_ERROR);
	if (st)
		atomic_fetch_add(&e->cnt.bad_dptr, 1);
	return st ? st | NVME_SC_DNR : 0;
}

static void put_str(char *dst, size_t n, const char *s)
{
	size_t l = strlen(s);

	memset(dst, ' ', n); /* ASCII, space padded (5.15.2.1) */
	memcpy(dst, s, l < n ? l : n);
}

static uint64_t id_hash(const struct udrv_emu_nvme *e, uint32_t nsid, uint32_t salt)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a 64 */

	for (const char *p = e->serial; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = (h ^ nsid) * 1099511628211ull;
	return (h ^ salt) * 1099511628211ull;
}

static void ns_ids(const struct udrv_emu_nvme *e, uint32_t nsid, uint8_t eui64[8],
		   uint8_t nguid[16], uint8_t uuid[16])
{
	uint64_t a = id_hash(e, nsid, 1), b = id_hash(e, nsid, 2), c = id_hash(e, nsid, 3);

	memcpy(eui64, &a, 8);
	memcpy(nguid, &b, 8);
	memcpy(nguid + 8, &c, 8);
	memcpy(uuid, &c, 8);
	memcpy(uuid + 8, &b, 8);
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x80); /* RFC 9562 version 8: custom */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
}

static void identify_ctrl(struct udrv_emu_nvme *e, struct nvme_id_ctrl *id)
{
	id->vid = NVEMU_VENDOR_ID;
	id->ssvid = NVEMU_VENDOR_ID;
	put_str(id->sn, sizeof(id->sn), e->serial);
	put_str(id->mn, sizeof(id->mn), "udrv emulated NVMe");
	put_str(id->fr, sizeof(id->fr), "udrv0.1");
	id->rab = 6;
	id->mdts = NVEMU_MDTS;
	id->cntlid = 1;
	id->ver = 0x00010400;
	id->cntrltype = 1; /* I/O controller */
	id->acl = NVEMU_ACL;
	id->aerl = NVEMU_AERL;
	id->frmw = 1u << 1 | 1u; /* one slot, read-only */
	id->lpa = 1u << 2;	 /* extended data for Get Log Page (NUMDU, offsets) */
	id->elpe = NVEMU_ELPE;
	id->wctemp = 343;
	id->cctemp = 358;
	id->kas = 1;
	id->sqes = NVME_SQES_LOG2 << 4 | NVME_SQES_LOG2;
	id->cqes = NVME_CQES_LOG2 << 4 | NVME_CQES_LOG2;
	id->nn = e->nr_ns;
	id->oncs = NVME_CTRL_ONCS_COMPARE | NVME_CTRL_ONCS_DSM | NVME_CTRL_ONCS_WRITE_ZEROES;
	id->vwc = NVME_CTRL_VWC_PRESENT;
	/* SGLs without alignment rules, bit buckets, SGLs longer than the transfer. */
	id->sgls = 1u | NVME_CTRL_SGLS_BIT_BUCKET | NVME_CTRL_SGLS_OVERSIZE;
	snprintf(id->subnqn, sizeof(id->subnqn), "nqn.2026-11.io.udrv:emu:%s", e->serial);
	id->psd[0].mp = 2500; /* 25 W, in 0.01 W */
}

static void identify_ns(struct udrv_emu_nvme *e, uint32_t nsid, struct nvme_id_ns *id)
{
	uint8_t uuid[16];
	const struct nvemu_ns *ns = &e->ns[nsid - 1];

	id->nsze = id->ncap = id->nuse = ns->nlbas;
	id->nlbaf = 0;
	id->flbas = 0;
	id->lbaf[0].ds = (uint8_t)e->lba_shift;
	/* Deallocated blocks read as zeros; Write Zeroes may deallocate (6.7.1.1, DLFEAT). */
	id->dlfeat = 1u << 3 | 1u;
	ns_ids(e, nsid, id->eui64, id->nguid, uuid);
}

static uint16_t identify(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd)
{
	uint8_t *buf = e->bounce2;
	unsigned cns = cmd->cdw10 & 0xff;
	bool valid_ns = cmd->nsid >= 1 && cmd->nsid <= e->nr_ns;

	memset(buf, 0, NVME_IDENTIFY_LEN);
	switch (cns) {
	case NVME_IDENTIFY_CNS_CTRL:
		identify_ctrl(e, (struct nvme_id_ctrl *)buf);
		break;
	case NVME_IDENTIFY_CNS_NS:
		if (!valid_ns)
			return SC(NVME_SC_INVALID_NS);
		identify_ns(e, cmd->nsid, (struct nvme_id_ns *)buf);
		break;
	case NVME_IDENTIFY_CNS_NS_ACTIVE_LIST: {
		uint32_t *list = (uint32_t *)buf, n = 0;

		if (cmd->nsid >= 0xfffffffe)
			return SC(NVME_SC_INVALID_NS);
		for (uint32_t id = cmd->nsid + 1; id <= e->nr_ns; id++)
			list[n++] = id;
		break;
	}
	case NVME_IDENTIFY_CNS_NS_DESC_LIST: {
		uint8_t eui64[8], nguid[16], uuid[16], *p = buf;

		if (!valid_ns)
			return SC(NVME_SC_INVALID_NS);
		ns_ids(e, cmd->nsid, eui64, nguid, uuid);
		p[0] = NVME_NIDT_EUI64, p[1] = 8, memcpy(p + 4, eui64, 8), p += 12;
		p[0] = NVME_NIDT_NGUID, p[1] = 16, memcpy(p + 4, nguid, 16), p += 20;
		p[0] = NVME_NIDT_UUID, p[1] = 16, memcpy(p + 4, uuid, 16), p += 20;
		p[0] = NVME_NIDT_CSI, p[1] = 1, p[4] = NVME_CSI_NVM;
		break;
	}
	default:
		return SC(NVME_SC_INVALID_FIELD);
	}
	return to_host(e, cmd, buf, NVME_IDENTIFY_LEN);
}

/* Create I/O Completion Queue (5.3). */
static uint16_t create_cq(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd)
{
	uint16_t qid = cmd->cdw10 & 0xffff, iv = cmd->cdw11 >> 16;
	uint32_t size = (cmd->cdw10 >> 16) + 1;
	bool ien = cmd->cdw11 & NVME_CQ_IEN;

	if (qid == 0 || qid > e->ncqa + 1 || e->cq[qid].live)
		return CSC(NVME_SC_QID_INVALID);
	if (size < 2 || size > e->mqes + 1)
		return CSC(NVME_SC_QUEUE_SIZE);
	if (ien && iv > e->nr_queues)
		return CSC(NVME_SC_INVALID_VECTOR);
	if (!(cmd->cdw11 & NVME_QUEUE_PC) || NVME_CC_IOCQES(e->cc_applied) != NVME_CQES_LOG2)
		return SC(NVME_SC_INVALID_FIELD);
	if (cmd->prp1 & (NVEMU_PAGE - 1))
		return SC(NVME_SC_PRP_INVALID_OFFSET);
	e->cq[qid] = (struct nvemu_cq){
	    .live = true, .ien = ien, .iv = iv, .size = size, .base = cmd->prp1, .phase = 1};
	e->db[2u * qid + 1] = 0;
	e->queues_created = true;
	return 0;
}

/* Create I/O Submission Queue (5.4). */
static uint16_t create_sq(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd)
{
	uint16_t qid = cmd->cdw10 & 0xffff, cqid = cmd->cdw11 >> 16;
	uint32_t size = (cmd->cdw10 >> 16) + 1;

	if (qid == 0 || qid > e->nsqa + 1 || e->sq[qid].live)
		return CSC(NVME_SC_QID_INVALID);
	if (cqid == 0 || cqid > e->nr_queues || !e->cq[cqid].live)
		return CSC(NVME_SC_CQ_INVALID);
	if (size < 2 || size > e->mqes + 1)
		return CSC(NVME_SC_QUEUE_SIZE);
	if (!(cmd->cdw11 & NVME_QUEUE_PC) || NVME_CC_IOSQES(e->cc_applied) != NVME_SQES_LOG2)
		return SC(NVME_SC_INVALID_FIELD);
	if (cmd->prp1 & (NVEMU_PAGE - 1))
		return SC(NVME_SC_PRP_INVALID_OFFSET);
	e->sq[qid] = (struct nvemu_sq){.live = true, .cqid = cqid, .size = size, .base = cmd->prp1};
	e->cq[cqid].nsq++;
	e->db[2u * qid] = 0;
	e->queues_created = true;
	return 0;
}

/* Delete I/O Submission Queue (5.7): its held commands end as aborted by SQ deletion,
 * posted before this command's own completion. */
static uint16_t delete_sq(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd)
{
	uint16_t qid = cmd->cdw10 & 0xffff;

	if (qid == 0 || qid > e->nr_queues || !e->sq[qid].live)
		return CSC(NVME_SC_QID_INVALID);
	nvemu_pending_abort(e, qid, -1, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORT_QUEUE));
	e->cq[e->sq[qid].cqid].nsq--;
	e->sq[qid].live = false;
	return 0;
}

/* Delete I/O Completion Queue (5.6): not while an SQ still completes into it. */
static uint16_t delete_cq(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd)
{
	uint16_t qid = cmd->cdw10 & 0xffff;

	if (qid == 0 || qid > e->nr_queues || !e->cq[qid].live)
		return CSC(NVME_SC_QID_INVALID);
	if (e->cq[qid].nsq)
		return CSC(NVME_SC_INVALID_QUEUE);
	e->cq[qid].live = false;
	return 0;
}

static void put_u128(uint8_t dst[16], uint64_t v)
{
	memset(dst, 0, 16);
	memcpy(dst, &v, 8); /* little endian, as every field (1.4, 1.5.1) */
}

static void smart_log(struct udrv_emu_nvme *e, struct nvme_smart_log *s)
{
	uint64_t now = nvemu_now_ns();
	/* Data units: thousands of 512-byte units, rounded up (5.14.1.2, Figure 194). */
	uint64_t rd = atomic_load(&e->cnt.bytes_read), wr = atomic_load(&e->cnt.bytes_written);

	s->temperature[0] = TEMP_K & 0xff;
	s->temperature[1] = TEMP_K >> 8;
	s->avail_spare = 100;
	s->spare_thresh = 10;
	put_u128(s->data_units_read, (rd / 512 + 999) / 1000);
	put_u128(s->data_units_written, (wr / 512 + 999) / 1000);
	put_u128(s->host_reads, atomic_load(&e->cnt.read_cmds));
	put_u128(s->host_writes, atomic_load(&e->cnt.write_cmds));
	put_u128(s->ctrl_busy_time, e->busy_ns / 60000000000ull);
	put_u128(s->power_cycles, atomic_load(&e->cnt.connects));
	put_u128(s->power_on_hours, (now - e->power_on_ns) / 3600000000000ull);
	put_u128(s->unsafe_shutdowns, e->unsafe_shutdowns);
	put_u128(s->num_err_log_entries, e->error_count);
}

/* Get Log Page (5.14): error information, SMART / health, firmware slot. */
static uint16_t get_log(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd)
{
	unsigned lid = cmd->cdw10 & 0xff;
	bool rae = cmd->cdw10 & (1u << 15);
	uint64_t len = ((uint64_t)(cmd->cdw11 & 0xffff) << 16 | cmd->cdw10 >> 16) * 4 + 4;
	uint64_t off = (uint64_t)cmd->cdw13 << 32 | cmd->cdw12;
	uint8_t *buf = e->bounce2;
	size_t size;

	if (len > NVEMU_MAX_XFER || (off & 3))
		return SC(NVME_SC_INVALID_FIELD);
	memset(buf, 0, NVEMU_MAX_XFER);
	switch (lid) {
	case NVME_LOG_LID_ERROR: {
		struct nvme_error_log_page *l = (struct nvme_error_log_page *)buf;
		unsigned n =
		    e->error_count < NVEMU_ELPE + 1 ? (unsigned)e->error_count : NVEMU_ELPE + 1;

		for (unsigned i = 0; i < n; i++) /* newest first */
			l[i] = e->errlog[(e->error_count - 1 - i) % (NVEMU_ELPE + 1)];
		size = (NVEMU_ELPE + 1) * sizeof(*l);
		break;
	}
	case NVME_LOG_LID_SMART:
		if (cmd->nsid != 0 && cmd->nsid != 0xffffffff)
			return SC(NVME_SC_INVALID_FIELD); /* LPA bit 0: no per-namespace data */
		smart_log(e, (struct nvme_smart_log *)buf);
		size = sizeof(struct nvme_smart_log);
		break;
	case NVME_LOG_LID_FW_SLOT: {
		struct nvme_firmware_slot *fw = (struct nvme_firmware_slot *)buf;

		fw->afi = 1;
		memcpy(fw->frs[0], "udrv0.1 ", 8);
		size = sizeof(*fw);
		break;
	}
	default:
		return CSC(NVME_SC_INVALID_LOG_PAGE);
	}
	if (off >= size)
		return SC(NVME_SC_INVALID_FIELD);
	if (!rae)
		nvemu_aer_unmask(e, lid == NVME_LOG_LID_ERROR	? NVME_AER_ERROR
				    : lid == NVME_LOG_LID_SMART ? NVME_AER_SMART
								: NVME_AER_NOTICE);
	memmove(buf, buf + off, size - off);
	memset(buf + (size - off), 0, NVEMU_MAX_XFER - (size - off));
	return to_host(e, cmd, buf, len);
}

static uint16_t get_features(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd, uint32_t *dw0)
{
	unsigned fid = cmd->cdw10 & 0xff, sel = (cmd->cdw10 >> 8) & 7;

	switch (fid) {
	case NVME_FEAT_FID_ARBITRATION:
	case NVME_FEAT_FID_POWER_MGMT:
	case NVME_FEAT_FID_TEMP_THRESH:
	case NVME_FEAT_FID_VOLATILE_WC:
	case NVME_FEAT_FID_NUM_QUEUES:
	case NVME_FEAT_FID_IRQ_COALESCE:
	case NVME_FEAT_FID_IRQ_CONFIG:
	case NVME_FEAT_FID_ASYNC_EVENT:
	case NVME_FEAT_FID_KATO:
		break;
	default:
		return SC(NVME_SC_INVALID_FIELD);
	}
	if (sel == 3) { /* supported capabilities (5.15, Figure 180): changeable only */
		*dw0 = 1u << 2;
		return 0;
	}
	if (sel == 2) /* nothing is saveable: the saved value is the default */
		sel = 1;
	switch (fid) {
	case NVME_FEAT_FID_ARBITRATION:
	case NVME_FEAT_FID_POWER_MGMT:
		*dw0 = 0;
		return 0;
	case NVME_FEAT_FID_TEMP_THRESH:
		*dw0 = sel == 1 ? 343 : e->feat_temp_thresh;
		return 0;
	case NVME_FEAT_FID_VOLATILE_WC:
		*dw0 = sel == 1 ? 1 : e->feat_wce;
		return 0;
	case NVME_FEAT_FID_NUM_QUEUES:
		*dw0 = sel == 1 ? (e->nr_queues - 1) << 16 | (e->nr_queues - 1)
				: e->ncqa << 16 | e->nsqa;
		return 0;
	case NVME_FEAT_FID_IRQ_COALESCE:
		*dw0 = sel == 1 ? 0 : e->feat_irq_coalesce;
		return 0;
	case NVME_FEAT_FID_IRQ_CONFIG: {
		unsigned iv = cmd->cdw11 & 0xffff;

		if (iv > e->nr_queues)
			return SC(NVME_SC_INVALID_FIELD);
		*dw0 = sel == 1 ? iv : e->feat_irq_config[iv];
		return 0;
	}
	case NVME_FEAT_FID_ASYNC_EVENT:
		*dw0 = sel == 1 ? 0 : e->feat_async_cfg;
		return 0;
	case NVME_FEAT_FID_KATO:
		*dw0 = sel == 1 ? 0 : e->feat_kato;
		return 0;
	default:
		return SC(NVME_SC_INVALID_FIELD);
	}
}

static uint16_t set_features(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd, uint32_t *dw0)
{
	unsigned fid = cmd->cdw10 & 0xff;
	uint32_t v = cmd->cdw11;

	if (cmd->cdw10 & (1u << 31))
		return CSC(NVME_SC_FEATURE_NOT_SAVEABLE);
	switch (fid) {
	case NVME_FEAT_FID_ARBITRATION:
	case NVME_FEAT_FID_POWER_MGMT:
		return 0;
	case NVME_FEAT_FID_TEMP_THRESH:
		e->feat_temp_thresh = v & 0xffff;
		return 0;
	case NVME_FEAT_FID_VOLATILE_WC:
		e->feat_wce = v & 1;
		return 0;
	case NVME_FEAT_FID_NUM_QUEUES: {
		unsigned nsqr = v & 0xffff, ncqr = v >> 16, max = e->nr_queues - 1;

		/* 5.21.1.7: only before any I/O queue exists; 65535 is invalid. */
		if (e->queues_created)
			return SC(NVME_SC_CMD_SEQ_ERROR);
		if (nsqr == 0xffff || ncqr == 0xffff)
			return SC(NVME_SC_INVALID_FIELD);
		e->nsqa = nsqr < max ? nsqr : max;
		e->ncqa = ncqr < max ? ncqr : max;
		*dw0 = e->ncqa << 16 | e->nsqa;
		return 0;
	}
	case NVME_FEAT_FID_IRQ_COALESCE:
		e->feat_irq_coalesce = v & 0xffff;
		return 0;
	case NVME_FEAT_FID_IRQ_CONFIG:
		if ((v & 0xffff) > e->nr_queues)
			return SC(NVME_SC_INVALID_FIELD);
		e->feat_irq_config[v & 0xffff] = v & (0xffff | CD_BIT);
		return 0;
	case NVME_FEAT_FID_ASYNC_EVENT:
		e->feat_async_cfg = v;
		return 0;
	case NVME_FEAT_FID_KATO:
		/* Rounded up to the granularity we report in KAS, without wrapping to 0 (off). */
		e->feat_kato = v > UINT32_MAX / KAS_MS * KAS_MS
				   ? UINT32_MAX / KAS_MS * KAS_MS
				   : (uint32_t)(((uint64_t)v + KAS_MS - 1) / KAS_MS * KAS_MS);
		e->last_keep_alive_ns = nvemu_now_ns();
		return 0;
	default:
		return SC(NVME_SC_INVALID_FIELD);
	}
}

void nvemu_admin(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd)
{
	uint32_t dw0 = 0;
	uint16_t st;

	/* Nothing in flight may outlive a queue this command deletes. */
	nvemu_backing_reap(e->store, nvemu_io_done, e);
	if (cmd->flags & NVME_CMD_FUSE_MASK) {
		nvemu_complete(e, NVME_ADMIN_QID, cmd->cid, SC(NVME_SC_INVALID_FIELD), 0);
		return;
	}
	switch (cmd->opc) {
	case nvme_admin_identify:
		st = identify(e, cmd);
		break;
	case nvme_admin_create_cq:
		st = create_cq(e, cmd);
		break;
	case nvme_admin_create_sq:
		st = create_sq(e, cmd);
		break;
	case nvme_admin_delete_sq:
		st = delete_sq(e, cmd);
		break;
	case nvme_admin_delete_cq:
		st = delete_cq(e, cmd);
		break;
	case nvme_admin_get_log_page:
		st = get_log(e, cmd);
		break;
	case nvme_admin_get_features:
		st = get_features(e, cmd, &dw0);
		break;
	case nvme_admin_set_features:
		st = set_features(e, cmd, &dw0);
		break;
	case nvme_admin_abort_cmd:
		/* 5.1: dword 0 bit 0 clear when the command was aborted. */
		dw0 = nvemu_pending_abort(e, cmd->cdw10 & 0xffff, (int)(cmd->cdw10 >> 16),
					  NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORT_REQ))
			  ? 0
			  : 1;
		st = 0;
		break;
	case nvme_admin_async_event:
		nvemu_aer_submit(e, cmd->cid);
		return;
	case nvme_admin_keep_alive:
		e->last_keep_alive_ns = nvemu_now_ns();
		st = 0;
		break;
	default:
		st = SC(NVME_SC_INVALID_OPCODE);
	}
	nvemu_complete(e, NVME_ADMIN_QID, cmd->cid, st, dw0);
}
