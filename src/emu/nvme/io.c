/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated controller's NVM command set (NVMe 1.4, 6): Read, Write, Compare, Flush,
 * Write Zeroes, Dataset Management. Data moves only through the command's checked data
 * pointer; transfers are zero copy where the host shared its memory by fd.
 */
#include <errno.h>
#include <string.h>

#include "core/log_internal.h"
#include "emu/nvme/nvme_emu.h"

/* Errors a retry cannot fix carry Do Not Retry (4.6.1.2); media errors may be transient. */
#define SC(sc)	(NVME_STATUS(NVME_SCT_GENERIC, sc) | NVME_SC_DNR)
#define MSC(sc) NVME_STATUS(NVME_SCT_MEDIA, sc)
#define FUA	(1u << 30) /* CDW12 Force Unit Access (6.9) */
#define DEAC	(1u << 25) /* Write Zeroes CDW12 Deallocate (6.16) */
#define MAX_DSM 256u

/* Media errors (Figure 131): what a failed backing transfer looks like to the host. */
#define SC_WRITE_FAULT 0x80
#define SC_READ_ERROR  0x81

static void done_ok(struct udrv_emu_nvme *e, bool write, uint64_t bytes)
{
	if (write) {
		atomic_fetch_add_explicit(&e->cnt.write_cmds, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&e->cnt.bytes_written, bytes, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&e->cnt.read_cmds, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&e->cnt.bytes_read, bytes, memory_order_relaxed);
	}
}

static uint16_t finish_rw(struct udrv_emu_nvme *e, bool write, bool fua, uint64_t bytes, int res)
{
	if (res < 0) {
		udrv_warn("emulated NVMe %s: backing %s failed: %s", e->opts.socket_path,
			  write ? "write" : "read", strerror(-res));
		return MSC(write ? SC_WRITE_FAULT : SC_READ_ERROR);
	}
	/* FUA, or no volatile cache enabled (5.21.1.6): durable before the completion. */
	if (write && (fua || !e->feat_wce) && nvemu_backing_flush(e->store) < 0)
		return MSC(SC_WRITE_FAULT);
	done_ok(e, write, bytes);
	return 0;
}

void nvemu_io_done(void *ctx, void *cookie, int res)
{
	struct udrv_emu_nvme *e = ctx;
	struct nvemu_inflight *f = cookie;
	uint16_t st = finish_rw(e, f->write, f->fua, f->bytes, res);

	f->used = false;
	e->ninflight--;
	nvemu_complete(e, f->sqid, f->cid, st, 0);
}

static struct nvemu_inflight *get_slot(struct udrv_emu_nvme *e)
{
	if (e->ninflight == NVEMU_INFLIGHT)
		nvemu_backing_reap(e->store, nvemu_io_done, e);
	for (unsigned i = 0; i < NVEMU_INFLIGHT; i++)
		if (!e->inflight[i].used)
			return &e->inflight[i];
	return NULL; /* not reached: reap() empties the table */
}

/* Hand the transfer to the store. Returns 1 if it finished (*st set), 0 if queued. */
static int submit(struct udrv_emu_nvme *e, struct nvemu_inflight *f, unsigned iovcnt, uint64_t off,
		  uint16_t *st)
{
	int res = 0, rc;

	rc = nvemu_backing_rw(e->store, f->write, off, f->iov, iovcnt, f, &res);
	if (rc == -EAGAIN) {
		nvemu_backing_reap(e->store, nvemu_io_done, e);
		rc = nvemu_backing_rw(e->store, f->write, off, f->iov, iovcnt, f, &res);
	}
	if (rc == 0) {
		f->used = true;
		e->ninflight++;
		return 0;
	}
	*st = finish_rw(e, f->write, f->fua, f->bytes, rc < 0 ? rc : res);
	return 1;
}

static uint16_t bad_dptr(struct udrv_emu_nvme *e, uint16_t st)
{
	atomic_fetch_add(&e->cnt.bad_dptr, 1);
	return st | NVME_SC_DNR;
}

/* Read and Write (6.9, 6.15). Returns 1 if the command completes later. */
static int read_write(struct udrv_emu_nvme *e, uint16_t sqid, const struct nvme_sqe *cmd,
		      const struct nvemu_ns *ns, uint16_t *st)
{
	bool write = cmd->opc == nvme_cmd_write;
	uint64_t slba = (uint64_t)cmd->cdw11 << 32 | cmd->cdw10;
	uint64_t nlb = (cmd->cdw12 & 0xffff) + 1, bytes = nlb << e->lba_shift;
	uint64_t off = ns->off + (slba << e->lba_shift);
	struct nvemu_inflight *f;
	unsigned n;

	if (slba >= ns->nlbas || nlb > ns->nlbas - slba) {
		*st = SC(NVME_SC_LBA_RANGE);
		return 0;
	}
	if (bytes > NVEMU_MAX_XFER) {
		*st = SC(NVME_SC_INVALID_FIELD); /* beyond MDTS */
		return 0;
	}
	*st = nvemu_dptr_resolve(cmd, bytes, !write, nvemu_host_read, e, &e->dptr);
	if (*st) {
		*st = bad_dptr(e, *st);
		return 0;
	}
	f = get_slot(e);
	*f = (struct nvemu_inflight){
	    .write = write, .fua = cmd->cdw12 & FUA, .sqid = sqid, .cid = cmd->cid, .bytes = bytes};
	n = nvemu_dptr_iov(e->dev, &e->dptr, !write, e->scratch, f->iov);
	if (n)
		return !submit(e, f, n, off, st);

	/* Some memory is reached by messages only: through the bounce buffer, in order. */
	if (!write) {
		int res = nvemu_backing_pread(e->store, off, e->bounce, bytes);

		*st = finish_rw(e, false, false, bytes, res);
		if (!*st && nvemu_dptr_copy(e->dev, &e->dptr, e->bounce, true) < 0)
			*st = bad_dptr(e, SC(NVME_SC_DATA_XFER_ERROR));
		return 0;
	}
	if (nvemu_dptr_copy(e->dev, &e->dptr, e->bounce, false) < 0) {
		*st = bad_dptr(e, SC(NVME_SC_DATA_XFER_ERROR));
		return 0;
	}
	f->iov[0] = (struct iovec){e->bounce, bytes};
	if (submit(e, f, 1, off, st))
		return 0;
	nvemu_backing_reap(e->store, nvemu_io_done, e); /* the bounce buffer is reused next */
	return 1;
}

/* Compare (6.4): Compare Failure when any byte differs. */
static uint16_t compare(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd,
			const struct nvemu_ns *ns)
{
	uint64_t slba = (uint64_t)cmd->cdw11 << 32 | cmd->cdw10;
	uint64_t nlb = (cmd->cdw12 & 0xffff) + 1, bytes = nlb << e->lba_shift;
	uint16_t st;

	if (slba >= ns->nlbas || nlb > ns->nlbas - slba)
		return SC(NVME_SC_LBA_RANGE);
	if (bytes > NVEMU_MAX_XFER)
		return SC(NVME_SC_INVALID_FIELD);
	st = nvemu_dptr_resolve(cmd, bytes, false, nvemu_host_read, e, &e->dptr);
	if (st)
		return bad_dptr(e, st);
	if (nvemu_dptr_copy(e->dev, &e->dptr, e->bounce, false) < 0)
		return bad_dptr(e, SC(NVME_SC_DATA_XFER_ERROR));
	st = finish_rw(
	    e, false, false, bytes,
	    nvemu_backing_pread(e->store, ns->off + (slba << e->lba_shift), e->bounce2, bytes));
	if (!st && memcmp(e->bounce, e->bounce2, bytes))
		st = MSC(NVME_SC_COMPARE_FAILED) | NVME_SC_DNR;
	return st;
}

/* Write Zeroes (6.16), not bounded by MDTS. */
static uint16_t write_zeroes(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd,
			     const struct nvemu_ns *ns)
{
	uint64_t slba = (uint64_t)cmd->cdw11 << 32 | cmd->cdw10;
	uint64_t nlb = (cmd->cdw12 & 0xffff) + 1;

	if (slba >= ns->nlbas || nlb > ns->nlbas - slba)
		return SC(NVME_SC_LBA_RANGE);
	if (nvemu_backing_zero(e->store, ns->off + (slba << e->lba_shift), nlb << e->lba_shift,
			       cmd->cdw12 & DEAC) < 0 ||
	    (!e->feat_wce && nvemu_backing_flush(e->store) < 0))
		return MSC(SC_WRITE_FAULT);
	return 0;
}

/* Dataset Management (6.7): deallocate ranges; the other attributes are hints. */
static uint16_t dsm(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd, const struct nvemu_ns *ns)
{
	unsigned nr = (cmd->cdw10 & 0xff) + 1;
	struct nvme_dsm_range *r = (struct nvme_dsm_range *)e->bounce;
	uint16_t st = nvemu_dptr_resolve(cmd, nr * sizeof(*r), false, nvemu_host_read, e, &e->dptr);

	if (st)
		return bad_dptr(e, st);
	if (nvemu_dptr_copy(e->dev, &e->dptr, r, false) < 0)
		return bad_dptr(e, SC(NVME_SC_DATA_XFER_ERROR));
	if (!(cmd->cdw11 & NVME_DSM_AD))
		return 0;
	for (unsigned i = 0; i < nr; i++)
		if (r[i].slba >= ns->nlbas || r[i].nlb > ns->nlbas - r[i].slba)
			return SC(NVME_SC_LBA_RANGE);
	for (unsigned i = 0; i < nr; i++)
		if (r[i].nlb && nvemu_backing_zero(e->store, ns->off + (r[i].slba << e->lba_shift),
						   (uint64_t)r[i].nlb << e->lba_shift, true) < 0)
			return MSC(SC_WRITE_FAULT);
	if (!e->feat_wce && nvemu_backing_flush(e->store) < 0)
		return MSC(SC_WRITE_FAULT);
	return 0;
}

void nvemu_io(struct udrv_emu_nvme *e, uint16_t sqid, const struct nvme_sqe *cmd)
{
	const struct nvemu_ns *ns = NULL;
	uint16_t st = 0;

	if (cmd->nsid >= 1 && cmd->nsid <= e->nr_ns)
		ns = &e->ns[cmd->nsid - 1];
	if (nvemu_fault_take(&e->faults.error)) {
		atomic_fetch_add(&e->cnt.faults_fired, 1);
		nvemu_complete(e, sqid, cmd->cid, atomic_load(&e->faults.error_status), 0);
		return;
	}
	if (cmd->flags & NVME_CMD_FUSE_MASK) {
		st = SC(NVME_SC_INVALID_FIELD);
	} else if (cmd->opc == nvme_cmd_flush) {
		/* 6.8: NSID FFFFFFFFh flushes every namespace; one store holds them all. */
		if (!ns && cmd->nsid != 0xffffffff)
			st = SC(NVME_SC_INVALID_NS);
		else if (e->feat_wce) {
			nvemu_backing_reap(e->store, nvemu_io_done, e);
			if (nvemu_backing_flush(e->store) < 0)
				st = MSC(SC_WRITE_FAULT);
		}
	} else if (!ns) {
		st = SC(NVME_SC_INVALID_NS);
	} else {
		switch (cmd->opc) {
		case nvme_cmd_read:
		case nvme_cmd_write:
			if (read_write(e, sqid, cmd, ns, &st))
				return; /* completes from nvemu_io_done() */
			break;
		case nvme_cmd_compare:
			st = compare(e, cmd, ns);
			break;
		case nvme_cmd_write_zeroes:
			st = write_zeroes(e, cmd, ns);
			break;
		case nvme_cmd_dsm:
			st = dsm(e, cmd, ns);
			break;
		default:
			st = SC(NVME_SC_INVALID_OPCODE);
		}
	}
	nvemu_complete(e, sqid, cmd->cid, st, 0);
}
