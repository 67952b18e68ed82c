/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NVMe controller: bring-up and shutdown (NVMe 1.4, 7.6), registers, the admin queue
 * (one synchronous command at a time), controller reset after failures, namespaces.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "drivers/nvme/nvme_internal.h"

#define CLASS_NVME 0x010802u

uint64_t nvd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void nvd_log_bad(struct udrv_nvme_ctrlr *c, const char *fmt, ...)
{
	/* A misbehaving device must not flood the log: the first few, then every 1000th. */
	uint64_t n = atomic_fetch_add(&c->logged, 1);
	char msg[256];
	va_list ap;

	if (n >= 10 && n % 1000)
		return;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	udrv_warn("nvme %s: %s%s", c->name, msg,
		  n == 9 ? " (further reports are thinned out)" : "");
}

static void mark_gone(struct udrv_nvme_ctrlr *c)
{
	if (!atomic_exchange(&c->gone, true))
		udrv_warn("nvme %s: the controller is gone; failing its I/O with -ENODEV", c->name);
}

bool nvd_ctrlr_removal(struct udrv_nvme_ctrlr *c)
{
	uint64_t v;

	if (atomic_load(&c->gone))
		return true;
	/* The kernel asks for the device back (hot-unplug, VFIO's request interrupt): let go,
	 * so that it can be removed, rather than hold the kernel waiting. */
	if (c->req_fd >= 0 && read(c->req_fd, &v, sizeof(v)) == sizeof(v)) {
		udrv_warn("nvme %s: the kernel asks for the device back (hot-unplug); releasing it",
			  c->name);
		mark_gone(c);
		return true;
	}
	if (udrv_device_removed(c->dev)) {
		mark_gone(c);
		return true;
	}
	return false;
}

int nvd_reg_read32(struct udrv_nvme_ctrlr *c, unsigned off, uint32_t *v)
{
	int rc;

	if (atomic_load(&c->gone))
		return -ENODEV;
	if (c->regs_mapped) {
		*v = udrv_mmio_read32(c->bar + off);
		/* All ones: a surprise-removed PCIe device (reads complete with UR), or a mapping
		 * the kernel revoked (udrv's SIGBUS guard put all ones there). */
		if (*v == UINT32_MAX && (off == NVME_REG_CSTS || udrv_device_removed(c->dev))) {
			mark_gone(c);
			return -ENODEV;
		}
		return 0;
	}
	/* By message (vfio-user): one request at a time per device (device.h). */
	pthread_mutex_lock(&c->reg_lock);
	rc = udrv_device_region_read(c->dev, UDRV_REGION_BAR0, off, v, 4);
	pthread_mutex_unlock(&c->reg_lock);
	if (rc < 0) {
		mark_gone(c);
		return -ENODEV;
	}
	return 0;
}

int nvd_reg_write32(struct udrv_nvme_ctrlr *c, unsigned off, uint32_t v)
{
	int rc;

	if (atomic_load(&c->gone))
		return -ENODEV;
	if (c->regs_mapped) {
		udrv_mmio_write32(c->bar + off, v);
		return 0;
	}
	pthread_mutex_lock(&c->reg_lock);
	rc = udrv_device_region_write(c->dev, UDRV_REGION_BAR0, off, &v, 4);
	pthread_mutex_unlock(&c->reg_lock);
	if (rc < 0) {
		mark_gone(c);
		return -ENODEV;
	}
	return 0;
}

static uint64_t db_off(const struct udrv_nvme_ctrlr *c, unsigned idx)
{
	return NVME_DB_BASE + (uint64_t)idx * (4u << c->dstrd); /* 3.1.24: CAP.DSTRD stride */
}

volatile uint32_t *nvd_doorbell_addr(struct udrv_nvme_ctrlr *c, unsigned idx)
{
	uint64_t off = db_off(c, idx);

	return c->db_mapped && off + 4 <= c->db_end ? (volatile uint32_t *)(c->bar + off) : NULL;
}

void nvd_doorbell(struct udrv_nvme_ctrlr *c, volatile uint32_t *db, unsigned idx, uint32_t v)
{
	if (db)
		udrv_mmio_write32(db, v);
	else if (db_off(c, idx) + 4 <= c->bar_size)
		nvd_reg_write32(c, (unsigned)db_off(c, idx), v);
}

/* Wait until CSTS.RDY == want, within CAP.TO (3.1.1). */
static int wait_ready(struct udrv_nvme_ctrlr *c, bool want)
{
	uint64_t end = nvd_now_ns() + (uint64_t)c->ready_ms * 1000000ull;
	uint32_t csts;

	for (;;) {
		int rc = nvd_reg_read32(c, NVME_REG_CSTS, &csts);

		if (rc < 0)
			return rc;
		if (NVME_CSTS_RDY(csts) == want)
			return 0;
		if (want && NVME_CSTS_CFS(csts))
			return udrv_err(EIO,
					"nvme %s reported fatal status while enabling; reset it "
					"(`udrv nvme identify` retries) or check its firmware",
					c->name);
		if (nvd_now_ns() > end)
			return udrv_err(ETIMEDOUT,
					"nvme %s: CSTS.RDY did not become %d within CAP.TO (%u ms)",
					c->name, want, c->ready_ms);
		usleep(1000);
	}
}

static int disable(struct udrv_nvme_ctrlr *c)
{
	uint32_t cc;
	int rc = nvd_reg_read32(c, NVME_REG_CC, &cc);

	if (rc == 0 && NVME_CC_EN(cc))
		rc = nvd_reg_write32(c, NVME_REG_CC, cc & ~(uint32_t)NVME_CC_EN_MASK);
	return rc < 0 ? rc : wait_ready(c, false);
}

/* Admin queues at their start, then CC.EN (7.6.1 steps 3-6). admin_lock held or single. */
static int enable(struct udrv_nvme_ctrlr *c)
{
	uint32_t cc = NVME_CC_EN_MASK << NVME_CC_EN_SHIFT | NVME_SQES_LOG2 << NVME_CC_IOSQES_SHIFT |
		      NVME_CQES_LOG2 << NVME_CC_IOCQES_SHIFT;
	int rc;

	memset(c->asq, 0, c->aentries * sizeof(*c->asq));
	memset((void *)c->acq, 0, c->aentries * sizeof(*c->acq));
	c->asq_tail = c->acq_head = 0;
	c->aphase = 1;
	rc = nvd_reg_write32(c, NVME_REG_AQA, (c->aentries - 1) << 16 | (c->aentries - 1));
	if (!rc)
		rc = nvd_reg_write32(c, NVME_REG_ASQ, (uint32_t)c->asq_iova);
	if (!rc)
		rc = nvd_reg_write32(c, NVME_REG_ASQ + 4, (uint32_t)(c->asq_iova >> 32));
	if (!rc)
		rc = nvd_reg_write32(c, NVME_REG_ACQ, (uint32_t)c->acq_iova);
	if (!rc)
		rc = nvd_reg_write32(c, NVME_REG_ACQ + 4, (uint32_t)(c->acq_iova >> 32));
	if (!rc)
		rc = nvd_reg_write32(c, NVME_REG_CC, cc);
	return rc < 0 ? rc : wait_ready(c, true);
}

/* One admin command, admin_lock held. */
int nvd_admin_locked(struct udrv_nvme_ctrlr *c, struct nvme_sqe *cmd, void *buf, size_t len,
		     bool to_ctrlr, struct udrv_nvme_cpl *cpl)
{
	uint64_t end;
	int rc;

	*cpl = (struct udrv_nvme_cpl){0};
	if (atomic_load(&c->gone))
		return -ENODEV;
	if (len > c->info.max_xfer)
		return udrv_err(EINVAL, "admin data of %zu bytes is over the %u-byte limit", len,
				c->info.max_xfer);
	cmd->cid = c->next_acid++;
	if (len) {
		if (to_ctrlr)
			memcpy(c->abuf, buf, len);
		rc = nvd_prp_build(c->dom, cmd, c->abuf, len, c->alist, c->alist_iova);
		if (rc < 0)
			return rc;
	}
	c->asq[c->asq_tail] = *cmd;
	c->asq_tail = (c->asq_tail + 1) % c->aentries;
	udrv_dma_wmb(); /* the entry is visible before the doorbell */
	nvd_doorbell(c, nvd_doorbell_addr(c, 0), 0, c->asq_tail);

	end = nvd_now_ns() + (uint64_t)c->timeout_ms * 1000000ull;
	for (unsigned spins = 0;; spins++) {
		volatile struct nvme_cqe *e = &c->acq[c->acq_head];
		struct nvme_cqe cqe;

		if ((spins & 1023) == 1023 && nvd_now_ns() > end) {
			atomic_fetch_add(&c->st.timeouts, 1);
			/* The command may still run and DMA into abuf later: a reset drops it
			 * (not while a reset is what timed out). */
			if (!c->in_reset)
				nvd_reset_locked(c);
			return udrv_err(ETIMEDOUT, "nvme %s: admin command %02xh timed out",
					c->name, cmd->opc);
		}
		if ((e->status & NVME_CQE_PHASE) != c->aphase) {
			if ((spins & 1023) == 1023)
				usleep(10);
			continue;
		}
		udrv_dma_rmb(); /* the rest of the entry after its phase */
		memcpy(&cqe, (const void *)e, sizeof(cqe));
		if (++c->acq_head == c->aentries) {
			c->acq_head = 0;
			c->aphase ^= 1;
		}
		nvd_doorbell(c, nvd_doorbell_addr(c, 1), 1, c->acq_head);
		if (cqe.sq_id != 0 || cqe.cid != cmd->cid || cqe.sq_head >= c->aentries) {
			atomic_fetch_add(&c->st.bad_cqes, 1);
			nvd_log_bad(c, "admin completion with sq %u cid %u sq head %u skipped",
				    cqe.sq_id, cqe.cid, cqe.sq_head);
			continue; /* bounded by the deadline check above */
		}
		cpl->status = NVME_CQE_STATUS(&cqe);
		cpl->dw0 = cqe.dw0;
		if (cpl->status) {
			cpl->rc = -EIO;
			return udrv_err(EIO, "nvme %s: admin command %02xh failed: %s", c->name,
					cmd->opc, udrv_nvme_status_str(cpl->status));
		}
		if (len && !to_ctrlr)
			memcpy(buf, c->abuf, len);
		return 0;
	}
}

int nvd_admin(struct udrv_nvme_ctrlr *c, struct nvme_sqe *cmd, void *buf, size_t len, bool to_ctrlr,
	      struct udrv_nvme_cpl *cpl)
{
	int rc;

	pthread_mutex_lock(&c->admin_lock);
	rc = nvd_admin_locked(c, cmd, buf, len, to_ctrlr, cpl);
	pthread_mutex_unlock(&c->admin_lock);
	return rc;
}

int udrv_nvme_admin(struct udrv_nvme_ctrlr *c, const void *cmd, void *buf, size_t len,
		    bool to_ctrlr, struct udrv_nvme_cpl *cpl)
{
	struct nvme_sqe sqe;
	struct udrv_nvme_cpl dummy;

	if (!c || !cmd || (len && !buf))
		return udrv_err(EINVAL,
				"udrv_nvme_admin needs a controller, a command and a buffer");
	memcpy(&sqe, cmd, sizeof(sqe));
	return nvd_admin(c, &sqe, buf, len, to_ctrlr, cpl ? cpl : &dummy);
}

static int set_queues(struct udrv_nvme_ctrlr *c, unsigned want, unsigned *granted)
{
	struct nvme_sqe cmd = {.opc = nvme_admin_set_features,
			       .cdw10 = NVME_FEAT_FID_NUM_QUEUES,
			       .cdw11 = (want - 1) << 16 | (want - 1)};
	struct udrv_nvme_cpl cpl;
	int rc = nvd_admin_locked(c, &cmd, NULL, 0, false, &cpl);
	unsigned nsq = (cpl.dw0 & 0xffff) + 1, ncq = (cpl.dw0 >> 16) + 1;

	if (rc < 0)
		return rc;
	*granted = nsq < ncq ? nsq : ncq;
	if (*granted > want)
		*granted = want; /* the controller may grant more than asked (5.21.1.7) */
	return 0;
}

int nvd_ctrlr_check(struct udrv_nvme_ctrlr *c)
{
	uint32_t csts;
	int rc = nvd_reg_read32(c, NVME_REG_CSTS, &csts);

	return rc < 0 ? rc : NVME_CSTS_CFS(csts) ? 1 : 0;
}

/* admin_lock held. Disabling drops every queue and everything in flight (7.3): after it,
 * no old command can still DMA into memory a caller gets back. */
int nvd_reset_locked(struct udrv_nvme_ctrlr *c)
{
	unsigned granted = 0;
	int rc;

	atomic_fetch_add(&c->st.resets, 1);
	udrv_warn("nvme %s: resetting the controller", c->name);
	c->in_reset = true;
	rc = disable(c);
	if (rc == 0)
		rc = enable(c);
	if (rc == 0)
		rc = set_queues(c, c->info.io_queues, &granted);
	if (rc == 0 && granted < c->info.io_queues)
		rc = udrv_err(EIO, "nvme %s granted fewer queues after a reset", c->name);
	c->in_reset = false;
	/* Queue pairs reconnect on their next use, whatever the outcome. */
	atomic_fetch_add(&c->gen, 1);
	if (rc < 0)
		mark_gone(c);
	return rc < 0 ? -ENODEV : 0;
}

int nvd_ctrlr_reset(struct udrv_nvme_ctrlr *c, unsigned gen_seen)
{
	int rc = 0;

	pthread_mutex_lock(&c->admin_lock);
	if (atomic_load(&c->gen) != gen_seen) /* another thread already reset it */
		rc = atomic_load(&c->gone) ? -ENODEV : 0;
	else
		rc = nvd_reset_locked(c);
	pthread_mutex_unlock(&c->admin_lock);
	return rc;
}

static void trim(char *dst, const char *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = 0;
	while (n && (dst[n - 1] == ' ' || dst[n - 1] == 0))
		dst[--n] = 0;
}

static int identify(struct udrv_nvme_ctrlr *c, unsigned cns, uint32_t nsid, void *buf)
{
	struct nvme_sqe cmd = {.opc = nvme_admin_identify, .nsid = nsid, .cdw10 = cns};
	struct udrv_nvme_cpl cpl;

	return nvd_admin_locked(c, &cmd, buf, NVME_IDENTIFY_LEN, false, &cpl);
}

static int load_namespaces(struct udrv_nvme_ctrlr *c)
{
	uint32_t *list = malloc(NVME_IDENTIFY_LEN);
	int rc;

	if (!list)
		return -ENOMEM;
	c->nr_ns = c->info.nn < NVD_MAX_NS ? c->info.nn : NVD_MAX_NS;
	c->id_ns = calloc(c->nr_ns ? c->nr_ns : 1, NVME_IDENTIFY_LEN);
	rc = c->id_ns ? identify(c, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0, list) : -ENOMEM;
	for (unsigned i = 0; rc == 0 && i < NVME_IDENTIFY_LEN / 4 && list[i]; i++) {
		uint32_t nsid = list[i];
		struct nvme_id_ns *id;
		unsigned lbads, fmt;

		if (nsid > c->nr_ns)
			continue; /* beyond NN or our table: a bogus list entry */
		id = (struct nvme_id_ns *)(c->id_ns + (size_t)(nsid - 1) * NVME_IDENTIFY_LEN);
		rc = identify(c, NVME_IDENTIFY_CNS_NS, nsid, id);
		if (rc < 0)
			break;
		/* FLBAS: format index bits 3:0, and 6:5 as bits 5:4 beyond 16 formats. */
		fmt = (id->flbas & 0xfu) | ((id->flbas >> 5) & 3u) << 4;
		if (fmt > id->nlbaf || fmt >= 64)
			continue;
		lbads = id->lbaf[fmt].ds;
		/* Metadata or protection information would make the controller move more
		 * bytes than a block, or DMA to MPTR: such namespaces stay inactive. */
		if (lbads < 9 || lbads > 16 || !id->nsze || id->lbaf[fmt].ms || (id->dps & 7))
			continue;
		c->ns[nsid - 1] = (struct udrv_nvme_ns_info){.nsid = nsid,
							     .blocks = id->nsze,
							     .block_size = 1u << lbads,
							     .active = true,
							     .identify = id};
	}
	free(list);
	return rc;
}

static int setup_info(struct udrv_nvme_ctrlr *c)
{
	const struct nvme_id_ctrl *id = (const struct nvme_id_ctrl *)c->id_ctrl;
	uint32_t vs = 0;
	uint64_t mdts;

	nvd_reg_read32(c, NVME_REG_VS, &vs);
	c->info.vid = id->vid;
	c->info.ssvid = id->ssvid;
	trim(c->info.sn, id->sn, sizeof(id->sn));
	trim(c->info.mn, id->mn, sizeof(id->mn));
	trim(c->info.fr, id->fr, sizeof(id->fr));
	c->info.version = vs;
	c->info.nn = id->nn;
	mdts = id->mdts ? (uint64_t)NVD_PAGE << (id->mdts > 20 ? 20 : id->mdts) : NVD_MAX_XFER;
	c->info.max_xfer = (uint32_t)(mdts < NVD_MAX_XFER ? mdts : NVD_MAX_XFER);
	c->info.oncs = id->oncs;
	c->info.sgl = (id->sgls & 3) == 1; /* 10b wants dword alignment: use PRPs there */
	c->info.vwc = id->vwc & 1;
	c->info.identify = c->id_ctrl;
	return 0;
}

static int map_bar(struct udrv_nvme_ctrlr *c)
{
	struct udrv_region_info ri;
	int rc = udrv_device_region_info(c->dev, UDRV_REGION_BAR0, &ri);

	if (rc < 0)
		return rc;
	if (ri.size < NVME_DB_BASE + 2 * 4)
		return udrv_err(ENODEV, "%s: BAR0 is too small for an NVMe controller", c->name);
	c->bar_size = ri.size;
	c->bar = udrv_device_region_map(c->dev, UDRV_REGION_BAR0);
	for (unsigned i = 0; c->bar && i < ri.nr_areas; i++) {
		uint64_t a = ri.areas[i].offset, e = a + ri.areas[i].size;

		if (a == 0 && e >= 0x40)
			c->regs_mapped = true;
		if (a <= NVME_DB_BASE && e >= NVME_DB_BASE + 8) {
			c->db_mapped = true;
			c->db_end = e;
		}
	}
	if (!c->db_mapped)
		udrv_warn("%s: doorbells are not mappable: every doorbell is a message", c->name);
	return 0;
}

static int check_class(struct udrv_nvme_ctrlr *c)
{
	uint32_t v = 0;
	int rc = udrv_device_config_read32(c->dev, 0x08, &v);

	if (rc < 0)
		return rc;
	if ((v >> 8) != CLASS_NVME)
		return udrv_err(ENODEV,
				"%s is not an NVMe controller (class %06x); `udrv list` shows "
				"what it is",
				c->name, v >> 8);
	return 0;
}

static int read_cap(struct udrv_nvme_ctrlr *c)
{
	uint32_t lo, hi;
	int rc = nvd_reg_read32(c, NVME_REG_CAP, &lo);

	if (!rc)
		rc = nvd_reg_read32(c, NVME_REG_CAP + 4, &hi);
	if (rc < 0)
		return rc;
	c->cap = (uint64_t)hi << 32 | lo;
	c->dstrd = NVME_CAP_DSTRD(c->cap);
	c->ready_ms = (NVME_CAP_TO(c->cap) ? NVME_CAP_TO(c->cap) : 1) * 500u;
	c->info.max_entries = (unsigned)NVME_CAP_MQES(c->cap) + 1;
	if (c->info.max_entries < 2)
		return udrv_err(ENODEV, "%s reports queues of one entry (CAP.MQES 0)", c->name);
	if (NVME_CAP_MPSMIN(c->cap) != 0 || !(NVME_CAP_CSS(c->cap) & NVME_CAP_CSS_NVM))
		return udrv_err(ENODEV, "%s needs pages over 4 KiB or lacks the NVM command set",
				c->name);
	return 0;
}

static int setup_irqs(struct udrv_nvme_ctrlr *c)
{
	int n = udrv_device_irq_count(c->dev, UDRV_IRQ_MSIX);

	if (n <= 0)
		return udrv_err(ENOTSUP, "%s has no MSI-X: open it without UDRV_NVME_INTERRUPTS",
				c->name);
	c->nefds = (unsigned)n < c->info.io_queues + 1 ? (unsigned)n : c->info.io_queues + 1;
	c->efds = malloc(c->nefds * sizeof(int));
	if (!c->efds)
		return -ENOMEM;
	for (unsigned i = 0; i < c->nefds; i++)
		c->efds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (unsigned i = 0; i < c->nefds; i++)
		if (c->efds[i] < 0)
			return udrv_err(errno, "no eventfd for MSI-X");
	return udrv_device_irq_enable(c->dev, UDRV_IRQ_MSIX, 0, c->nefds, c->efds);
}

/* VFIO's request interrupt, where the backend has one: hot-unplug notice. */
static void setup_req(struct udrv_nvme_ctrlr *c)
{
	if (udrv_device_irq_count(c->dev, UDRV_IRQ_REQ) <= 0)
		return;
	c->req_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->req_fd >= 0 && udrv_device_irq_enable(c->dev, UDRV_IRQ_REQ, 0, 1, &c->req_fd) < 0) {
		close(c->req_fd);
		c->req_fd = -1;
	}
}

static int bring_up(struct udrv_nvme_ctrlr *c)
{
	struct udrv_device_opts dopts = {
	    .domain = c->opts.domain,
	    .flags = (c->opts.flags & UDRV_NVME_BIND) ? UDRV_OPEN_BIND : 0,
	};
	unsigned granted;
	int rc = udrv_device_open(c->name, &dopts, &c->dev);

	if (rc < 0)
		return rc;
	c->dom = udrv_device_domain(c->dev);
	c->info.device = c->name;
	setup_req(c);
	c->info.backend = udrv_device_backend(c->dev);
	if ((rc = check_class(c)) < 0 || (rc = map_bar(c)) < 0 || (rc = read_cap(c)) < 0)
		return rc;
	if ((rc = udrv_device_set_bus_master(c->dev, true)) < 0 || (rc = disable(c)) < 0)
		return rc;
	c->aentries = c->opts.admin_entries ? c->opts.admin_entries : 32;
	if (c->aentries < 2 || c->aentries > 4096 || c->aentries > c->info.max_entries)
		c->aentries = c->info.max_entries < 32 ? c->info.max_entries : 32;
	c->asq = udrv_dma_zalloc(c->dom, c->aentries * sizeof(*c->asq), NVD_PAGE, &c->asq_iova);
	c->acq = udrv_dma_zalloc(c->dom, c->aentries * sizeof(*c->acq), NVD_PAGE, &c->acq_iova);
	c->abuf = udrv_dma_zalloc(c->dom, NVD_MAX_XFER, NVD_PAGE, NULL);
	c->alist = udrv_dma_zalloc(c->dom, NVD_PAGE, NVD_PAGE, &c->alist_iova);
	c->id_ctrl = calloc(1, NVME_IDENTIFY_LEN);
	if (!c->asq || !c->acq || !c->abuf || !c->alist || !c->id_ctrl)
		return -ENOMEM;
	c->info.max_xfer = NVME_IDENTIFY_LEN; /* until Identify says */
	if ((rc = enable(c)) < 0 || (rc = identify(c, NVME_IDENTIFY_CNS_CTRL, 0, c->id_ctrl)) < 0)
		return rc;
	setup_info(c);
	rc = set_queues(
	    c, c->opts.io_queues ? (c->opts.io_queues < 65535 ? c->opts.io_queues : 65535) : 8,
	    &granted);
	if (rc < 0)
		return rc;
	/* A doorbell stride the BAR cannot hold for every queue (a bogus CAP.DSTRD) limits the
	 * queues we use rather than pointing doorbells outside it. */
	while (granted && db_off(c, 2 * granted + 1) + 4 > c->bar_size)
		granted--;
	if (!granted)
		return udrv_err(ENODEV, "%s: BAR0 has no room for an I/O queue's doorbells",
				c->name);
	c->info.io_queues = granted;
	c->qps = calloc(granted + 1, sizeof(*c->qps));
	if (!c->qps)
		return -ENOMEM;
	if ((rc = load_namespaces(c)) < 0)
		return rc;
	if (c->opts.flags & UDRV_NVME_INTERRUPTS)
		rc = setup_irqs(c);
	return rc;
}

int udrv_nvme_open(const char *name, const struct udrv_nvme_opts *opts,
		   struct udrv_nvme_ctrlr **out)
{
	struct udrv_nvme_ctrlr *c;
	int rc;

	if (!name || !out)
		return udrv_err(EINVAL, "udrv_nvme_open needs a device name and a result");
	c = calloc(1, sizeof(*c));
	if (!c)
		return udrv_err(ENOMEM, "out of memory for an NVMe controller");
	if (opts)
		c->opts = *opts;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->timeout_ms = c->opts.timeout_ms ? c->opts.timeout_ms : 5000;
	c->req_fd = -1;
	pthread_mutex_init(&c->admin_lock, NULL);
	pthread_mutex_init(&c->reg_lock, NULL);
	rc = bring_up(c);
	if (rc < 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", udrv_errmsg());
		udrv_nvme_close(c);
		if (rc == -ENOMEM && !msg[0])
			return udrv_err(ENOMEM, "out of DMA memory opening %s", name);
		return msg[0] ? udrv_err(-rc, "%s", msg) : rc;
	}
	*out = c;
	return 0;
}

void udrv_nvme_close(struct udrv_nvme_ctrlr *c)
{
	uint32_t cc;

	if (!c)
		return;
	/* Queues first, then a normal shutdown (7.6.2): the controller makes its cache
	 * durable. */
	for (unsigned q = 1; c->qps && q <= c->info.io_queues; q++)
		udrv_nvme_qpair_destroy(c->qps[q]);
	if (c->dev && c->asq && !atomic_load(&c->gone) &&
	    nvd_reg_read32(c, NVME_REG_CC, &cc) == 0 && NVME_CC_EN(cc)) {
		uint64_t end = nvd_now_ns() + (uint64_t)c->ready_ms * 1000000ull;
		uint32_t csts = 0;

		nvd_reg_write32(c, NVME_REG_CC,
				(cc & ~(NVME_CC_SHN_MASK << NVME_CC_SHN_SHIFT)) |
				    NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT);
		while (nvd_reg_read32(c, NVME_REG_CSTS, &csts) == 0 &&
		       NVME_CSTS_SHST(csts) != NVME_CSTS_SHST_CMPLT && nvd_now_ns() < end)
			usleep(1000);
	}
	if (c->req_fd >= 0) {
		udrv_device_irq_disable(c->dev, UDRV_IRQ_REQ);
		close(c->req_fd);
	}
	if (c->efds) {
		udrv_device_irq_disable(c->dev, UDRV_IRQ_MSIX);
		for (unsigned i = 0; i < c->nefds; i++)
			if (c->efds[i] >= 0)
				close(c->efds[i]);
		free(c->efds);
	}
	if (c->dom) {
		udrv_dma_free(c->dom, c->asq);
		udrv_dma_free(c->dom, (void *)c->acq);
		udrv_dma_free(c->dom, c->abuf);
		udrv_dma_free(c->dom, c->alist);
	}
	udrv_device_close(c->dev);
	free(c->id_ctrl);
	free(c->id_ns);
	free(c->qps);
	pthread_mutex_destroy(&c->admin_lock);
	pthread_mutex_destroy(&c->reg_lock);
	free(c);
}

const struct udrv_nvme_ctrlr_info *udrv_nvme_ctrlr_info(const struct udrv_nvme_ctrlr *c)
{
	return c ? &c->info : NULL;
}

int udrv_nvme_ns_info(const struct udrv_nvme_ctrlr *c, uint32_t nsid, struct udrv_nvme_ns_info *out)
{
	if (!c || !out || nsid == 0 || nsid > c->nr_ns)
		return udrv_err(EINVAL, "no namespace %u; `udrv nvme identify` lists them", nsid);
	*out = c->ns[nsid - 1];
	out->nsid = nsid;
	return 0;
}

struct udrv_dma_domain *udrv_nvme_domain(const struct udrv_nvme_ctrlr *c)
{
	return c ? c->dom : NULL;
}

void *udrv_nvme_dma_alloc(struct udrv_nvme_ctrlr *c, size_t size)
{
	return c ? udrv_dma_zalloc(c->dom, size, NVD_PAGE, NULL) : NULL;
}

void udrv_nvme_stats(const struct udrv_nvme_ctrlr *c, struct udrv_nvme_stats *out)
{
	struct udrv_nvme_ctrlr *m = (struct udrv_nvme_ctrlr *)c;

	if (!c || !out) {
		if (out)
			*out = (struct udrv_nvme_stats){0};
		return;
	}
	*out = (struct udrv_nvme_stats){
	    .bad_cqes = atomic_load(&m->st.bad_cqes),
	    .timeouts = atomic_load(&m->st.timeouts),
	    .aborts = atomic_load(&m->st.aborts),
	    .resets = atomic_load(&m->st.resets),
	    .resubmits = atomic_load(&m->st.resubmits),
	};
}
