/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller: life cycle, the BAR0 registers (NVMe 1.4, 3.1) and the
 * controller state machine - enable, disable/reset, shutdown (7.6).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "emu/nvme/nvme_emu.h"

#define NVEMU_VS 0x00010400u /* 1.4.0 */
#define NVEMU_TO 10u	     /* CAP.TO: 5 s in 500 ms units */
#define GIB	 (1ull << 30)

uint64_t nvemu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void set_default_features(struct udrv_emu_nvme *e)
{
	e->nsqa = e->ncqa = e->nr_queues - 1;
	e->feat_irq_coalesce = 0;
	e->feat_wce = 1;
	e->feat_kato = 0;
	e->feat_async_cfg = 0;
	e->feat_temp_thresh = 343; /* 70 C in Kelvin */
	for (unsigned i = 0; i <= NVEMU_MAX_QID; i++)
		e->feat_irq_config[i] = i;
}

void nvemu_ctrl_reset(struct udrv_emu_nvme *e)
{
	if (e->enabled)
		atomic_fetch_add(&e->cnt.resets, 1);
	memset(e->sq, 0, sizeof(e->sq));
	memset(e->cq, 0, sizeof(e->cq));
	e->npending = 0;
	e->naer = 0;
	e->naer_events = 0;
	e->aer_masked_events = 0;
	e->queues_created = false;
	e->enabled = e->halted = false;
	set_default_features(e);
	/* Doorbells read as zero after a reset; a host must not ring them before CSTS.RDY. */
	memset((void *)e->db, 0, NVEMU_PAGE);
	atomic_store(&e->csts, 0);
}

void nvemu_ctrl_fatal(struct udrv_emu_nvme *e, const char *why)
{
	udrv_warn("emulated NVMe %s: %s; controller fatal status set until the host resets it",
		  e->opts.socket_path, why);
	e->halted = true;
	atomic_fetch_or(&e->csts, NVME_CSTS_CFS_MASK << NVME_CSTS_CFS_SHIFT);
}

/* CC.EN 0 -> 1 (7.6.1): check what the host programmed, then make the admin queues live. */
static void enable(struct udrv_emu_nvme *e, uint32_t cc)
{
	uint32_t asqs = (e->aqa & 0xfff) + 1, acqs = ((e->aqa >> 16) & 0xfff) + 1;

	if (NVME_CC_MPS(cc) != 0 || NVME_CC_CSS(cc) != NVME_CC_CSS_NVM ||
	    NVME_CC_AMS(cc) != NVME_CC_AMS_RR) {
		nvemu_ctrl_fatal(e, "CC asks for a page size, command set or arbitration other "
				    "than 4 KiB, NVM and round robin");
		return;
	}
	if (asqs < 2 || acqs < 2 || !e->asq || !e->acq) {
		nvemu_ctrl_fatal(e, "enabled without admin queues (AQA, ASQ, ACQ)");
		return;
	}
	e->sq[0] = (struct nvemu_sq){.live = true, .cqid = 0, .size = asqs, .base = e->asq};
	e->cq[0] = (struct nvemu_cq){
	    .live = true, .ien = true, .size = acqs, .base = e->acq, .phase = 1, .nsq = 1};
	memset((void *)e->db, 0, NVEMU_PAGE);
	e->enabled = true;
	e->halted = false;
	e->last_keep_alive_ns = nvemu_now_ns();
	atomic_store(&e->csts, NVME_CSTS_RDY_MASK << NVME_CSTS_RDY_SHIFT);
}

/* Shutdown (7.6.2): make the data durable, then report it complete. */
static void shutdown_ctrl(struct udrv_emu_nvme *e)
{
	uint32_t csts = atomic_load(&e->csts) & ~(NVME_CSTS_SHST_MASK << NVME_CSTS_SHST_SHIFT);

	atomic_store(&e->csts, csts | NVME_CSTS_SHST_OCCUR << NVME_CSTS_SHST_SHIFT);
	if (nvemu_backing_flush(e->store) < 0)
		udrv_warn("emulated NVMe %s: flush at shutdown failed: %s", e->opts.socket_path,
			  udrv_errmsg());
	e->halted = true; /* the host resets the controller before using it again */
	atomic_store(&e->csts, csts | NVME_CSTS_SHST_CMPLT << NVME_CSTS_SHST_SHIFT);
}

static void service_cc(struct udrv_emu_nvme *e);

bool nvemu_ctrl_service(struct udrv_emu_nvme *e)
{
	/* Acquire: AQA/ASQ/ACQ written before CC are visible. */
	unsigned seq = atomic_load_explicit(&e->cc_seq, memory_order_acquire);

	if (seq == e->cc_seen)
		return false;
	e->cc_seen = seq;
	service_cc(e);
	atomic_store_explicit(&e->cc_done, seq, memory_order_release);
	return true;
}

static void service_cc(struct udrv_emu_nvme *e)
{
	uint32_t cc, old = e->cc_applied, edges;

	/* Edges latched by the serving thread: a disable followed by an enable before this
	 * pass is still a reset, and a shutdown request is never missed. */
	edges = atomic_exchange(&e->cc_edges, 0);
	cc = atomic_load(&e->cc);
	e->cc_applied = cc;
	if ((edges & NVEMU_CC_EN_FELL) || !NVME_CC_EN(cc)) {
		nvemu_ctrl_reset(e);
		old &= ~(NVME_CC_EN_MASK << NVME_CC_EN_SHIFT);
	}
	if (!NVME_CC_EN(cc))
		return;
	if (!NVME_CC_EN(old))
		enable(e, cc);
	if (e->enabled && ((edges & NVEMU_CC_SHN_ROSE) || (NVME_CC_SHN(cc) != NVME_CC_SHN_NONE &&
							   NVME_CC_SHN(old) == NVME_CC_SHN_NONE)))
		shutdown_ctrl(e);
}

static uint32_t reg32(struct udrv_emu_nvme *e, uint64_t off)
{
	switch (off) {
	case NVME_REG_CAP:
		return (uint32_t)e->cap;
	case NVME_REG_CAP + 4:
		return (uint32_t)(e->cap >> 32);
	case NVME_REG_VS:
		return NVEMU_VS;
	case NVME_REG_INTMS:
	case NVME_REG_INTMC:
		return e->intms;
	case NVME_REG_CC:
		return atomic_load(&e->cc);
	case NVME_REG_CSTS:
		return atomic_load(&e->csts);
	case NVME_REG_AQA:
		return e->aqa;
	case NVME_REG_ASQ:
		return (uint32_t)e->asq;
	case NVME_REG_ASQ + 4:
		return (uint32_t)(e->asq >> 32);
	case NVME_REG_ACQ:
		return (uint32_t)e->acq;
	case NVME_REG_ACQ + 4:
		return (uint32_t)(e->acq >> 32);
	default:
		return 0; /* NSSR, CMB, BP, PMR: not implemented, read as zero */
	}
}

static void set_reg32(struct udrv_emu_nvme *e, uint64_t off, uint32_t v)
{
	unsigned seq;

	switch (off) {
	case NVME_REG_INTMS:
		e->intms |= v;
		break;
	case NVME_REG_INTMC:
		e->intms &= ~v;
		break;
	case NVME_REG_CC: {
		uint32_t old = atomic_exchange(&e->cc, v);

		if (NVME_CC_EN(old) && !NVME_CC_EN(v))
			atomic_fetch_or(&e->cc_edges, NVEMU_CC_EN_FELL);
		if (NVME_CC_SHN(old) == NVME_CC_SHN_NONE && NVME_CC_SHN(v) != NVME_CC_SHN_NONE)
			atomic_fetch_or(&e->cc_edges, NVEMU_CC_SHN_ROSE);
		/* Release: the device thread sees AQA/ASQ/ACQ as written before CC. */
		seq = atomic_fetch_add_explicit(&e->cc_seq, 1, memory_order_release) + 1;
		/* The write completes once the device thread applied it (at most one idle sleep,
		 * ~1 ms), so CSTS read next reflects it: after a disable, CFS is gone. */
		for (int i = 0; e->cc_sync && i < 2000; i++) {
			if (atomic_load_explicit(&e->cc_done, memory_order_acquire) == seq)
				break;
			usleep(50);
		}
		break;
	}
	case NVME_REG_AQA:
		e->aqa = v & 0x0fff0fff;
		break;
	case NVME_REG_ASQ:
		e->asq = (e->asq & ~0xffffffffull) | (v & ~0xfffu); /* 11:0 reserved */
		break;
	case NVME_REG_ASQ + 4:
		e->asq = (e->asq & 0xffffffffull) | (uint64_t)v << 32;
		break;
	case NVME_REG_ACQ:
		e->acq = (e->acq & ~0xffffffffull) | (v & ~0xfffu);
		break;
	case NVME_REG_ACQ + 4:
		e->acq = (e->acq & 0xffffffffull) | (uint64_t)v << 32;
		break;
	default:
		break; /* read-only or reserved: ignored, as hardware does */
	}
}

/* 32- and 64-bit accesses, naturally aligned (3.1: registers are accessed in their size). */
static int regs_read(void *ctx, unsigned bar, uint64_t off, void *buf, size_t len)
{
	struct udrv_emu_nvme *e = ctx;
	uint32_t v[2];

	if ((len != 4 && len != 8) || off % len)
		return -EINVAL;
	v[0] = reg32(e, off);
	v[1] = len == 8 ? reg32(e, off + 4) : 0;
	memcpy(buf, v, len);
	return (int)len;
}

static int regs_write(void *ctx, unsigned bar, uint64_t off, const void *buf, size_t len)
{
	struct udrv_emu_nvme *e = ctx;
	uint32_t v[2];

	if ((len != 4 && len != 8) || off % len)
		return -EINVAL;
	memcpy(v, buf, len);
	/* The high half first, so CC (never 64-bit) and the queue bases end up whole. */
	if (len == 8)
		set_reg32(e, off + 4, v[1]);
	set_reg32(e, off, v[0]);
	return (int)len;
}

/* Function reset and disconnect (the library has paused the device thread). */
static int reset_cb(void *ctx)
{
	struct udrv_emu_nvme *e = ctx;

	nvemu_ctrl_reset(e);
	atomic_store(&e->cc, 0);
	atomic_store(&e->cc_edges, 0);
	e->cc_applied = 0;
	e->cc_seen = atomic_load(&e->cc_seq);
	atomic_store(&e->cc_done, e->cc_seen);
	e->aqa = e->intms = 0;
	e->asq = e->acq = 0;
	return 0;
}

static void connected_cb(void *ctx)
{
	struct udrv_emu_nvme *e = ctx;

	atomic_fetch_add(&e->cnt.connects, 1);
	/* Config space outlives a client: the next one inherits the command register. */
	atomic_store(&e->bus_master, udrv_vfu_bus_master(e->dev));
}

static void config_written_cb(void *ctx, unsigned off, size_t len)
{
	if (off <= 4 && off + len > 4) /* the command register's low byte */
		nvemu_bus_master_changed(ctx);
}

/* The host's memory is gone: nothing it set up may be touched again. */
static void disconnected_cb(void *ctx)
{
	struct udrv_emu_nvme *e = ctx;

	if (e->enabled && NVME_CSTS_SHST(atomic_load(&e->csts)) != NVME_CSTS_SHST_CMPLT)
		e->unsafe_shutdowns++;
	reset_cb(ctx);
}

static int setup_namespaces(struct udrv_emu_nvme *e)
{
	uint64_t total = nvemu_backing_size(e->store);
	uint64_t per = (total / e->nr_ns) >> e->lba_shift;

	if (per < 8)
		return udrv_err(ENOSPC,
				"%llu bytes cannot hold %u namespaces of %u-byte blocks; use a "
				"larger --size",
				(unsigned long long)total, e->nr_ns, 1u << e->lba_shift);
	for (unsigned i = 0; i < e->nr_ns; i++)
		e->ns[i] = (struct nvemu_ns){.off = (i * per) << e->lba_shift, .nlbas = per};
	return 0;
}

static void derive_serial(struct udrv_emu_nvme *e)
{
	uint32_t h = 2166136261u; /* FNV-1a of the socket path: stable across restarts */

	if (e->opts.serial) {
		snprintf(e->serial, sizeof(e->serial), "%s", e->opts.serial);
		return;
	}
	for (const char *p = e->opts.socket_path; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(e->serial, sizeof(e->serial), "UDRV%08X", h);
}

static int check_opts(const struct udrv_emu_nvme_opts *o)
{
	if (!o || !o->socket_path)
		return udrv_err(EINVAL, "the emulated NVMe controller needs a socket path");
	if (o->namespaces > UDRV_EMU_NVME_MAX_NS)
		return udrv_err(EINVAL, "at most %u namespaces are supported",
				UDRV_EMU_NVME_MAX_NS);
	if (o->queues > UDRV_EMU_NVME_MAX_QUEUES)
		return udrv_err(EINVAL, "at most %u I/O queues are supported",
				UDRV_EMU_NVME_MAX_QUEUES);
	if (o->max_entries && (o->max_entries < 2 || o->max_entries > 4096))
		return udrv_err(EINVAL, "queue entries must be 2..4096");
	if (o->block_size && o->block_size != 512 && o->block_size != 4096)
		return udrv_err(EINVAL, "the block size must be 512 or 4096");
	if (o->serial && strlen(o->serial) > 20)
		return udrv_err(EINVAL, "the serial number has at most 20 characters");
	return 0;
}

static int setup_pci(struct udrv_emu_nvme *e)
{
	static const struct udrv_vfu_region_ops ops = {regs_read, regs_write};
	/* PCI Express capability, version 2, endpoint (PCIe Base 4.0, 7.5.3): enough for
	 * hosts that look for one; link and slot registers read as zero. */
	uint8_t pcie[60] = {0};

	pcie[2] = 0x02;
	if (udrv_vfu_add_bar(e->dev, NVEMU_BAR_REGS, NVEMU_BAR0_SIZE, UDRV_VFU_BAR_MEM64, &ops, e) <
		0 ||
	    !(e->db = udrv_vfu_bar_mmap_area(e->dev, NVEMU_BAR_REGS, NVME_DB_BASE, NVEMU_PAGE)) ||
	    udrv_vfu_add_bar(e->dev, NVEMU_BAR_MSIX, 0x4000, UDRV_VFU_BAR_MEM32, NULL, e) < 0 ||
	    udrv_vfu_add_bar(e->dev, NVEMU_BAR_PBA, 0x1000, UDRV_VFU_BAR_MEM32, NULL, e) < 0 ||
	    udrv_vfu_add_msix(e->dev, e->nr_queues + 1, NVEMU_BAR_MSIX, 0, NVEMU_BAR_PBA, 0) < 0 ||
	    udrv_vfu_add_cap(e->dev, 0x10, pcie, sizeof(pcie), NULL) < 0 ||
	    udrv_vfu_set_poller(e->dev, nvemu_poll) < 0)
		return -EINVAL;
	return 0;
}

static void *alloc_or_fail(size_t n, int *rc)
{
	void *p = calloc(1, n);

	if (!p && *rc == 0)
		*rc = udrv_err(ENOMEM, "out of memory for the emulated NVMe controller");
	return p;
}

struct udrv_emu_nvme *udrv_emu_nvme_create(const struct udrv_emu_nvme_opts *opts)
{
	struct udrv_emu_nvme *e;
	int rc = check_opts(opts);

	if (rc < 0) {
		errno = -rc; /* the message is set */
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return udrv_err_null(ENOMEM, "out of memory for the emulated NVMe controller");
	e->opts = *opts;
	e->nr_ns = opts->namespaces ? opts->namespaces : 1;
	e->nr_queues = opts->queues ? opts->queues : 8;
	e->mqes = (opts->max_entries ? opts->max_entries : 1024) - 1;
	e->lba_shift = opts->block_size == 4096 ? 12 : 9;
	e->cap = (uint64_t)e->mqes << NVME_CAP_MQES_SHIFT | (uint64_t)1 << NVME_CAP_CQR_SHIFT |
		 (uint64_t)NVEMU_TO << NVME_CAP_TO_SHIFT |
		 (uint64_t)NVME_CAP_CSS_NVM << NVME_CAP_CSS_SHIFT;
	derive_serial(e);
	e->power_on_ns = nvemu_now_ns();
	e->cc_sync = true;
	e->pending = alloc_or_fail(NVEMU_PENDING * sizeof(*e->pending), &rc);
	e->inflight = alloc_or_fail(NVEMU_INFLIGHT * sizeof(*e->inflight), &rc);
	e->bounce = alloc_or_fail(NVEMU_MAX_XFER, &rc);
	e->bounce2 = alloc_or_fail(NVEMU_MAX_XFER, &rc);
	e->scratch = alloc_or_fail(NVEMU_MAX_XFER, &rc);
	if (rc == 0)
		rc = nvemu_backing_open(&e->store, opts->backing,
					opts->backing ? opts->size
					: opts->size  ? opts->size
						      : GIB,
					opts->io_uring);
	if (rc == 0)
		rc = setup_namespaces(e);
	if (rc == 0 && opts->faults)
		rc = nvemu_faults_arm(&e->faults, opts->faults);
	if (rc == 0) {
		struct udrv_vfu_opts vo = {
		    .socket_path = opts->socket_path,
		    .vendor_id = NVEMU_VENDOR_ID,
		    .device_id = NVEMU_DEVICE_ID,
		    .subsys_vendor_id = NVEMU_VENDOR_ID,
		    .subsys_id = NVEMU_DEVICE_ID,
		    .class_code = NVEMU_CLASS,
		    .revision = 1,
		    .ctx = e,
		    .reset = reset_cb,
		    .connected = connected_cb,
		    .disconnected = disconnected_cb,
		    .config_written = config_written_cb,
		};
		e->dev = udrv_vfu_create(&vo);
		rc = e->dev ? setup_pci(e) : -errno;
	}
	if (rc == 0 && opts->control) {
		e->control = nvemu_control_start(opts->control, e);
		if (!e->control)
			rc = -errno;
	}
	if (rc < 0) {
		int err = -rc;

		/* Keep the first failure's message. */
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", udrv_errmsg());
		udrv_emu_nvme_destroy(e);
		return udrv_err_null(err, "%s", msg);
	}
	set_default_features(e);
	return e;
}

int udrv_emu_nvme_run(struct udrv_emu_nvme *e)
{
	return e ? udrv_vfu_run(e->dev) : udrv_err(EINVAL, "udrv_emu_nvme_run needs a controller");
}

int udrv_emu_nvme_start(struct udrv_emu_nvme *e)
{
	return e ? udrv_vfu_start(e->dev)
		 : udrv_err(EINVAL, "udrv_emu_nvme_start needs a controller");
}

void udrv_emu_nvme_stop(struct udrv_emu_nvme *e)
{
	if (e)
		udrv_vfu_stop(e->dev);
}

void udrv_emu_nvme_destroy(struct udrv_emu_nvme *e)
{
	if (!e)
		return;
	if (e->control)
		nvemu_control_stop(e->control);
	udrv_vfu_destroy(e->dev); /* joins the serving and device threads */
	if (e->store) {
		nvemu_backing_flush(e->store);
		nvemu_backing_close(e->store);
	}
	free(e->pending);
	free(e->inflight);
	free(e->bounce);
	free(e->bounce2);
	free(e->scratch);
	free(e);
}

int udrv_emu_nvme_inject(struct udrv_emu_nvme *e, const char *spec)
{
	if (!e || !spec)
		return udrv_err(EINVAL, "udrv_emu_nvme_inject needs a controller and a fault spec");
	return nvemu_faults_arm(&e->faults, spec);
}

int udrv_emu_nvme_stats(struct udrv_emu_nvme *e, struct udrv_emu_nvme_stats *st)
{
	if (!e || !st)
		return udrv_err(EINVAL, "udrv_emu_nvme_stats needs a controller and a result");
	*st = (struct udrv_emu_nvme_stats){
	    .admin_cmds = atomic_load(&e->cnt.admin_cmds),
	    .io_cmds = atomic_load(&e->cnt.io_cmds),
	    .read_cmds = atomic_load(&e->cnt.read_cmds),
	    .write_cmds = atomic_load(&e->cnt.write_cmds),
	    .bytes_read = atomic_load(&e->cnt.bytes_read),
	    .bytes_written = atomic_load(&e->cnt.bytes_written),
	    .errors = atomic_load(&e->cnt.errors),
	    .bad_dptr = atomic_load(&e->cnt.bad_dptr),
	    .bad_doorbells = atomic_load(&e->cnt.bad_doorbells),
	    .faults_fired = atomic_load(&e->cnt.faults_fired),
	    .connects = atomic_load(&e->cnt.connects),
	    .resets = atomic_load(&e->cnt.resets),
	    .csts = atomic_load(&e->csts),
	};
	for (unsigned i = 0; i < e->nr_ns; i++)
		st->capacity += e->ns[i].nlbas << e->lba_shift;
	return 0;
}
