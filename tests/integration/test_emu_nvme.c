/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller, in process, driven through vfio-user by a minimal host
 * (nvme_host.c): registers and the controller state machine (enable, disable, shutdown,
 * fatal status), and the admin command set (Identify, queue creation rules, features, log
 * pages, Abort, asynchronous events, Keep Alive). I/O is test_emu_nvme_io.c; faults and
 * robustness are test_emu_nvme_faults.c.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <udrv/log.h>

#include "nvme_host.h"
#include "test.h"

#define QUEUES	 8
#define ENTRIES	 256
#define NS	 3
#define NS_BYTES (64ull << 20)
#define SERIAL	 "udrv-test-sn-0001"
#define SC_G(sc) NVME_STATUS(NVME_SCT_GENERIC, sc)
#define SC_C(sc) NVME_STATUS(NVME_SCT_CMD_SPECIFIC, sc)
#define AQ	 32 /* admin queue entries */

static struct udrv_emu_nvme *emu; /* the shared controller: 3 namespaces, 8 queue pairs */
static char sock[128];

/* A fresh connection to the shared controller, enabled. */
static struct nvme_host *connect_enabled(void)
{
	struct nvme_host *h;

	REQUIRE(nh_open(sock, &h) == 0);
	REQUIRE(nh_enable(h, AQ) == 0);
	return h;
}

static int identify_ok(struct nvme_host *h)
{
	static uint8_t buf[4096];

	return nh_identify(h, NVME_IDENTIFY_CNS_CTRL, 0, buf);
}

/* ---- registers and the state machine ---- */

static void test_registers(void)
{
	struct udrv_region_info ri;
	struct nvme_host *h;
	uint64_t cap;
	uint32_t vs, csts, cc;
	uint16_t vid = 0, did = 0;
	uint8_t cls[3] = {0};

	REQUIRE(nh_open(sock, &h) == 0);
	CHECK_EQ(nh_read64(h, NVME_REG_CAP, &cap), 0);
	CHECK_EQ(NVME_CAP_MQES(cap), ENTRIES - 1);
	CHECK_EQ(NVME_CAP_CQR(cap), 1);
	CHECK_EQ(NVME_CAP_TO(cap), 10);
	CHECK_EQ(NVME_CAP_DSTRD(cap), 0);
	CHECK(NVME_CAP_CSS(cap) & NVME_CAP_CSS_NVM);
	CHECK_EQ(NVME_CAP_MPSMIN(cap), 0);
	CHECK_EQ(NVME_CAP_MPSMAX(cap), 0);
	/* The two halves read separately agree with the 64-bit read. */
	CHECK_EQ(nh_read32(h, NVME_REG_CAP + 4, &vs), 0);
	CHECK_EQ(vs, (uint32_t)(cap >> 32));
	CHECK_EQ(nh_read32(h, NVME_REG_VS, &vs), 0);
	CHECK_EQ(vs, 0x00010400);
	CHECK_EQ(nh_read32(h, NVME_REG_CSTS, &csts), 0);
	CHECK_EQ(csts, 0);
	CHECK_EQ(nh_read32(h, NVME_REG_CC, &cc), 0);
	CHECK_EQ(cc, 0);

	/* PCI identity, BARs, MSI-X. */
	udrv_device_config_read16(h->dev, 0x00, &vid);
	udrv_device_config_read16(h->dev, 0x02, &did);
	udrv_device_config_read(h->dev, 0x09, cls, 3);
	CHECK_EQ(vid, 0x1b36);
	CHECK_EQ(did, 0xd3a1);
	CHECK(cls[2] == 0x01 && cls[1] == 0x08 && cls[0] == 0x02);
	CHECK_EQ(udrv_device_region_info(h->dev, UDRV_REGION_BAR0, &ri), 0);
	CHECK(ri.size >= 0x2000);
	CHECK(ri.flags & UDRV_REGION_F_MMAP);
	CHECK(ri.nr_areas >= 1 && ri.areas[0].offset == NVME_DB_BASE && ri.areas[0].size >= 4096);
	CHECK_EQ(udrv_device_irq_count(h->dev, UDRV_IRQ_MSIX), QUEUES + 1);
	/* Registers take 4- and 8-byte aligned accesses only. */
	CHECK(udrv_device_region_read(h->dev, UDRV_REGION_BAR0, NVME_REG_VS + 1, &vs, 4) < 0);
	/* Read-only registers ignore writes. */
	CHECK_EQ(nh_write32(h, NVME_REG_VS, 0x12345678), 0);
	CHECK_EQ(nh_read32(h, NVME_REG_VS, &vs), 0);
	CHECK_EQ(vs, 0x00010400);
	/* AQA keeps its defined bits; ASQ/ACQ drop 11:0. */
	CHECK_EQ(nh_write32(h, NVME_REG_AQA, 0xffffffff), 0);
	CHECK_EQ(nh_read32(h, NVME_REG_AQA, &vs), 0);
	CHECK_EQ(vs, 0x0fff0fff);
	CHECK_EQ(nh_write64(h, NVME_REG_ASQ, 0x123456789abcdefull), 0);
	CHECK_EQ(nh_read64(h, NVME_REG_ASQ, &cap), 0);
	CHECK_EQ(cap, 0x123456789abc000ull);
	nh_close(h);
}

static void test_enable_disable(void)
{
	struct nvme_host *h;
	uint32_t csts, cc;
	double t0;

	REQUIRE(nh_open(sock, &h) == 0);
	t0 = nh_now();
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK(nh_now() - t0 < NVME_CAP_TO(h->cap) * 0.5);
	CHECK_EQ(nh_read32(h, NVME_REG_CSTS, &csts), 0);
	CHECK_EQ(csts, NH_RDY);
	CHECK_EQ(nh_read32(h, NVME_REG_CC, &cc), 0);
	CHECK_EQ(cc, nh_cc_enable());
	CHECK_EQ(identify_ok(h), 0);
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_read32(h, NVME_REG_CSTS, &csts), 0);
	CHECK_EQ(csts & NH_RDY, 0);
	/* And again, with a different admin queue size. */
	CHECK_EQ(nh_enable(h, 2), 0);
	CHECK_EQ(identify_ok(h), 0);
	CHECK_EQ(identify_ok(h), 0); /* wraps the 2-entry queue */
	CHECK_EQ(identify_ok(h), 0);
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_enable(h, 4096), 0);
	CHECK_EQ(identify_ok(h), 0);
	CHECK_EQ(h->bad_cqes, 0);
	nh_close(h);
}

/* A command whose doorbell was rung while the controller was disabled never runs. */
static void test_doorbell_before_enable(void)
{
	struct nvme_host *h;
	struct nvme_cqe c;
	struct nvme_sqe kato = {.opc = nvme_admin_keep_alive, .cid = 0x777};
	uint32_t csts;

	REQUIRE(nh_open(sock, &h) == 0);
	REQUIRE(nh_setup_admin(h, AQ) == 0);
	REQUIRE(nh_submit_raw(h, 0, &kato, true) == 0);
	nh_sleep_ms(300);
	CHECK_EQ(nh_poll(h, 0, &c), 0);
	CHECK_EQ(h->q[0].cq[0].status, 0);
	/* Enable by hand: the host's queue state stays as it is (tail 1). */
	CHECK_EQ(nh_write32(h, NVME_REG_CC, nh_cc_enable()), 0);
	CHECK_EQ(nh_wait_csts(h, NH_RDY, NH_RDY, 5000, &csts), 0);
	nh_sleep_ms(300);
	CHECK_EQ(h->q[0].cq[0].status, 0); /* the stale doorbell did not survive enable */
	/* The controller starts at entry 0: restart the host's queue there. */
	h->q[0].sq_tail = h->q[0].sq_head = 0;
	CHECK_EQ(identify_ok(h), 0);
	CHECK_EQ(nh_next(h, 0, &c, 200), -ETIMEDOUT); /* nothing else completed */
	CHECK_EQ(h->bad_cqes, 0);
	nh_close(h);
}

static void test_enable_without_admin_queues(void)
{
	struct nvme_host *h;
	uint32_t csts;

	REQUIRE(nh_open(sock, &h) == 0);
	/* The open reset the controller: AQA, ASQ and ACQ are 0. */
	CHECK_EQ(nh_read32(h, NVME_REG_AQA, &csts), 0);
	CHECK_EQ(csts, 0);
	CHECK_EQ(nh_write32(h, NVME_REG_CC, nh_cc_enable()), 0);
	CHECK_EQ(nh_wait_csts(h, NH_CFS, NH_CFS, 5000, &csts), 0);
	CHECK_EQ(csts & NH_RDY, 0);
	/* Reset clears it; a proper enable then works. */
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_wait_csts(h, NH_CFS | NH_RDY, 0, 5000, &csts), 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(identify_ok(h), 0);
	/* A 1-entry admin queue (AQA 0) is no queue either. */
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_setup_admin(h, AQ), 0);
	CHECK_EQ(nh_write32(h, NVME_REG_AQA, 0), 0);
	CHECK_EQ(nh_write32(h, NVME_REG_CC, nh_cc_enable()), 0);
	CHECK_EQ(nh_wait_csts(h, NH_CFS, NH_CFS, 5000, &csts), 0);
	CHECK_EQ(csts & NH_RDY, 0);
	/* A page size other than 4 KiB (CC.MPS 1) is refused the same way. */
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_setup_admin(h, AQ), 0);
	CHECK_EQ(nh_write32(h, NVME_REG_CC, nh_cc_enable() | 1u << NVME_CC_MPS_SHIFT), 0);
	CHECK_EQ(nh_wait_csts(h, NH_CFS, NH_CFS, 5000, &csts), 0);
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(identify_ok(h), 0);
	nh_close(h);
}

static void test_shutdown(void)
{
	struct nvme_host *h = connect_enabled();
	uint32_t csts;

	CHECK_EQ(
	    nh_write32(h, NVME_REG_CC, nh_cc_enable() | NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT),
	    0);
	CHECK_EQ(nh_wait_csts(h, 0xc, NVME_CSTS_SHST_CMPLT << 2, 5000, &csts), 0);
	CHECK_EQ(NH_SHST(csts), NVME_CSTS_SHST_CMPLT);
	CHECK_EQ(csts & NH_CFS, 0);
	/* Back to work after a reset. */
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_read32(h, NVME_REG_CSTS, &csts), 0);
	CHECK_EQ(csts, 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(identify_ok(h), 0);
	/* Abrupt shutdown (SHN 10b) reports complete too. */
	CHECK_EQ(
	    nh_write32(h, NVME_REG_CC, nh_cc_enable() | NVME_CC_SHN_ABRUPT << NVME_CC_SHN_SHIFT),
	    0);
	CHECK_EQ(nh_wait_csts(h, 0xc, NVME_CSTS_SHST_CMPLT << 2, 5000, &csts), 0);
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(identify_ok(h), 0);
	nh_close(h);
}

/* Disable drops every queue: ringing an old I/O queue's doorbell does nothing. */
static void test_reenable_drops_queues(void)
{
	struct nvme_host *h = connect_enabled();
	uint8_t *a, *b;
	struct nvme_sqe w;
	struct nh_queue *q = &h->q[1];

	a = nh_alloc(h, 4096, NULL);
	b = nh_alloc(h, 4096, NULL);
	REQUIRE(a && b);
	memset(a, 0xa1, 512);
	CHECK_EQ(nh_create_qpair(h, 1, 16), 0);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_write, 1, 77, 1, a, 512), 0);
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_enable(h, AQ), 0);

	/* A write to the same block, placed in the old SQ memory, doorbell rung. */
	memset(q->cq, 0, 16 * sizeof(*q->cq));
	memset(b, 0xb2, 512);
	nh_rw_cmd(&w, nvme_cmd_write, 1, 77, 1);
	CHECK_EQ(nh_prp(h, &w, b, 512), 0);
	w.cid = 0x4242;
	q->sq[1] = w;
	q->sq[2] = w;
	nh_db_write(h, 2, 3);
	nh_sleep_ms(300);
	for (int i = 0; i < 16; i++)
		CHECK_EQ(q->cq[i].status, 0);
	nh_db_write(h, 2, 0);

	/* The queue id is free again, and the block still holds the first write. */
	CHECK_EQ(nh_create_qpair(h, 1, 16), 0);
	memset(b, 0, 512);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_read, 1, 77, 1, b, 512), 0);
	CHECK(memcmp(a, b, 512) == 0);
	CHECK_EQ(h->bad_cqes, 0);
	nh_close(h);
}

/* A device reset (vfio-user) returns the controller to its power-on state. */
static void test_device_reset(void)
{
	struct nvme_host *h = connect_enabled();
	uint32_t v;

	CHECK_EQ(nh_create_qpair(h, 1, 8), 0);
	CHECK_EQ(udrv_device_reset(h->dev), 0);
	CHECK_EQ(nh_read32(h, NVME_REG_CC, &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(nh_read32(h, NVME_REG_CSTS, &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(nh_read32(h, NVME_REG_AQA, &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(nh_create_qpair(h, 1, 8), 0); /* the old pair is gone */
	CHECK_EQ(identify_ok(h), 0);
	nh_close(h);
}

/*
 * With Bus Master Enable clear (PCI command register bit 2) a PCI function must not issue
 * memory requests: the controller can neither fetch the command nor write its data and
 * completion. (An early version of the emulator ignored BME.)
 */
static void test_bus_master_off(void)
{
	struct nvme_host *h;
	uint8_t *id;
	struct nvme_sqe c = {.opc = nvme_admin_identify, .cdw10 = NVME_IDENTIFY_CNS_CTRL};
	struct nvme_cqe e;
	int cid;

	REQUIRE(nh_open(sock, &h) == 0);
	id = nh_alloc(h, 4096, NULL);
	REQUIRE(id);
	CHECK_EQ(udrv_device_set_bus_master(h->dev, false), 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	nh_prp(h, &c, id, 4096);
	cid = nh_submit(h, 0, &c);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)cid, &e, 300), -ETIMEDOUT);
	CHECK_EQ(id[0] | id[1], 0); /* no Identify data (VID) was written */
	/* BME set: the waiting command runs. */
	CHECK_EQ(udrv_device_set_bus_master(h->dev, true), 0);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)cid, &e, 2000), 0);
	CHECK_EQ(NVME_CQE_STATUS(&e), 0);
	CHECK_EQ(id[0] | id[1] << 8, 0x1b36);
	/* Cleared again while running, with I/O: the I/O waits for it too. (The settling
	 * time keeps this check clear of the race test_bus_master_race shows.) */
	CHECK_EQ(nh_create_qpair(h, 1, 8), 0);
	CHECK_EQ(udrv_device_set_bus_master(h->dev, false), 0);
	nh_sleep_ms(20);
	memset(id, 0, 4096);
	c = (struct nvme_sqe){0};
	nh_rw_cmd(&c, nvme_cmd_read, 1, 0, 1);
	nh_prp(h, &c, id, 512);
	cid = nh_submit(h, 1, &c);
	CHECK_EQ(nh_wait(h, 1, (uint16_t)cid, &e, 300), -ETIMEDOUT);
	CHECK_EQ(udrv_device_set_bus_master(h->dev, true), 0);
	CHECK_EQ(nh_wait(h, 1, (uint16_t)cid, &e, 2000), 0);
	CHECK_EQ(NVME_CQE_STATUS(&e), 0);
	nh_close(h);
}

/* Admin SQ and CQ of different sizes (AQA): more commands in flight than the CQ holds;
 * the controller waits for room, nothing is lost, and an outstanding AER does not wedge a
 * small admin CQ. */
static void test_admin_queue_sizes(void)
{
	struct nvme_host *h;
	struct nvme_sqe ka = {.opc = nvme_admin_keep_alive};
	struct nvme_sqe aer = {.opc = nvme_admin_async_event};
	struct nvme_cqe e;
	uint32_t csts;
	unsigned got = 0, next = 0;
	int first = -1, cid;

	REQUIRE(nh_open(sock, &h) == 0);
	REQUIRE(nh_setup_admin(h, 32) == 0);
	CHECK_EQ(nh_write32(h, NVME_REG_AQA, 3u << 16 | 31), 0); /* 4-entry CQ, 32-entry SQ */
	h->q[0].cq_size = 4;
	CHECK_EQ(nh_write32(h, NVME_REG_CC, nh_cc_enable()), 0);
	CHECK_EQ(nh_wait_csts(h, NH_RDY, NH_RDY, 5000, &csts), 0);
	for (int i = 0; i < 20; i++) {
		cid = nh_submit(h, 0, &ka);
		if (first < 0)
			first = cid;
	}
	nh_sleep_ms(100);
	CHECK_EQ(h->q[0].cq[3].status, 0); /* one entry always stays free */
	for (double end = nh_now() + 5; got < 20 && nh_now() < end;) {
		if (!nh_poll(h, 0, &e)) {
			usleep(50);
			continue;
		}
		CHECK_EQ(NVME_CQE_STATUS(&e), 0);
		CHECK_EQ(e.cid, first + (int)next++); /* in order, none skipped */
		got++;
	}
	CHECK_EQ(got, 20);
	/* An AER outstanding, and still commands complete through the 4-entry CQ. */
	cid = nh_submit(h, 0, &aer);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(nh_exec(h, 0, &ka, NULL), 0);
	CHECK_EQ(identify_ok(h), 0);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)cid, &e, 10), -ETIMEDOUT);
	CHECK_EQ(h->bad_cqes, 0);
	nh_close(h);
}

/*
 * The race behind BME: a command rung right after the config write that clears Bus Master
 * Enable has completed must not run, even when the device thread's poll pass had checked
 * BME just before the write. (An early version checked once per pass and ran about 1 in 6
 * of these on a busy 2-CPU machine; on a machine with idle CPUs the race is rarely hit.)
 */
static atomic_bool spin_stop;

/* CPU hogs: the device thread gets preempted at random points of its pass, which is what
 * opens the window on a busy machine. */
static void *spin(void *arg)
{
	while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
		;
	return arg;
}

static void test_bus_master_race(void)
{
	struct nvme_host *h = connect_enabled();
	uint8_t *buf = nh_alloc(h, 4096, NULL);
	unsigned bad = 0;
	pthread_t hog[2];

	REQUIRE(buf);
	REQUIRE(nh_create_qpair(h, 1, 8) == 0);
	atomic_store(&spin_stop, false);
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&hog[i], NULL, spin, NULL) == 0);
	for (int i = 0; i < 50; i++) {
		struct nvme_sqe c;
		struct nvme_cqe e;
		uint32_t dw0;
		int cid, done;

		/* Keep the device thread busy right up to the config write. */
		CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_NUM_QUEUES, 0, 0, &dw0), 0);
		CHECK_EQ(udrv_device_set_bus_master(h->dev, false), 0);
		nh_rw_cmd(&c, nvme_cmd_read, 1, 0, 1);
		nh_prp(h, &c, buf, 512);
		cid = nh_submit(h, 1, &c);
		done = nh_wait(h, 1, (uint16_t)cid, &e, 20) == 0;
		bad += done;
		CHECK_EQ(udrv_device_set_bus_master(h->dev, true), 0);
		if (!done)
			CHECK_EQ(nh_wait(h, 1, (uint16_t)cid, &e, 2000), 0);
	}
	atomic_store(&spin_stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(hog[i], NULL);
	if (bad)
		fprintf(stderr, "%u of 50 reads rung after BME was cleared were executed\n", bad);
	CHECK_EQ(bad, 0);
	nh_close(h);
}

/* ---- admin commands ---- */

static bool padded_eq(const char *field, size_t n, const char *s)
{
	size_t l = strlen(s);

	if (l > n || memcmp(field, s, l))
		return false;
	for (size_t i = l; i < n; i++)
		if (field[i] != ' ')
			return false;
	return true;
}

static void test_identify_ctrl(void)
{
	struct nvme_host *h = connect_enabled();
	struct nvme_id_ctrl id;

	memset(&id, 0xee, sizeof(id));
	CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_CTRL, 0, &id), 0);
	CHECK_EQ(id.vid, 0x1b36);
	CHECK_EQ(id.ssvid, 0x1b36);
	CHECK(padded_eq(id.sn, sizeof(id.sn), SERIAL));
	CHECK(padded_eq(id.mn, sizeof(id.mn), "udrv emulated NVMe"));
	CHECK_EQ(id.mdts, 6);
	CHECK_EQ(id.ver, 0x00010400);
	CHECK_EQ(id.sqes, 0x66);
	CHECK_EQ(id.cqes, 0x44);
	CHECK_EQ(id.nn, NS);
	CHECK((id.oncs & NVME_CTRL_ONCS_COMPARE) && (id.oncs & NVME_CTRL_ONCS_DSM) &&
	      (id.oncs & NVME_CTRL_ONCS_WRITE_ZEROES));
	CHECK_EQ(id.sgls & 3, 1);	       /* SGLs, no alignment requirement */
	CHECK(id.sgls & (1u << 16));	       /* bit buckets */
	CHECK(id.vwc & NVME_CTRL_VWC_PRESENT); /* volatile write cache */
	CHECK_EQ(id.aerl, 3);
	CHECK_EQ(id.elpe, 15);
	CHECK_EQ(id.acl, 3);
	nh_close(h);
}

static void test_identify_ns(void)
{
	struct nvme_host *h = connect_enabled();
	struct nvme_id_ns id[NS + 1];
	uint32_t list[1024];
	uint8_t d[4096], *p;

	for (uint32_t ns = 1; ns <= NS; ns++) {
		CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_NS, ns, &id[ns]), 0);
		CHECK_EQ(id[ns].nsze, NS_BYTES / 512);
		CHECK_EQ(id[ns].ncap, NS_BYTES / 512);
		CHECK_EQ(id[ns].nlbaf, 0);
		CHECK_EQ(id[ns].flbas & 0xf, 0);
		CHECK_EQ(id[ns].lbaf[0].ds, 9);
		CHECK_EQ(id[ns].lbaf[0].ms, 0);
	}
	CHECK(memcmp(id[1].nguid, id[2].nguid, 16) != 0);
	CHECK_EQ(nh_sct_sc(nh_identify(h, NVME_IDENTIFY_CNS_NS, 0, d)), SC_G(NVME_SC_INVALID_NS));
	CHECK_EQ(nh_sct_sc(nh_identify(h, NVME_IDENTIFY_CNS_NS, NS + 1, d)),
		 SC_G(NVME_SC_INVALID_NS));
	CHECK_EQ(nh_sct_sc(nh_identify(h, NVME_IDENTIFY_CNS_NS_DESC_LIST, NS + 1, d)),
		 SC_G(NVME_SC_INVALID_NS));

	/* Active namespace list: ids above NSID, ascending, zero-terminated. */
	memset(list, 0xff, sizeof(list));
	CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0, list), 0);
	CHECK(list[0] == 1 && list[1] == 2 && list[2] == 3 && list[3] == 0);
	CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 2, list), 0);
	CHECK(list[0] == 3 && list[1] == 0);
	CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 3, list), 0);
	CHECK_EQ(list[0], 0);
	CHECK_EQ(nh_sct_sc(nh_identify(h, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0xfffffffe, list)),
		 SC_G(NVME_SC_INVALID_NS));

	/* Namespace identification descriptors: EUI-64, NGUID, UUID, CSI, as Identify says. */
	CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_NS_DESC_LIST, 2, d), 0);
	p = d;
	CHECK(p[0] == NVME_NIDT_EUI64 && p[1] == 8 && !memcmp(p + 4, id[2].eui64, 8));
	p += 4 + p[1];
	CHECK(p[0] == NVME_NIDT_NGUID && p[1] == 16 && !memcmp(p + 4, id[2].nguid, 16));
	p += 4 + p[1];
	CHECK(p[0] == NVME_NIDT_UUID && p[1] == 16);
	CHECK_EQ(p[4 + 6] >> 4, 8); /* a version-8 UUID */
	p += 4 + p[1];
	CHECK(p[0] == NVME_NIDT_CSI && p[1] == 1 && p[4] == NVME_CSI_NVM);
	p += 4 + p[1];
	CHECK(p[0] == 0 && p[1] == 0);

	/* Unknown CNS. */
	CHECK_EQ(nh_sct_sc(nh_identify(h, 0x55, 0, d)), SC_G(NVME_SC_INVALID_FIELD));
	nh_close(h);
}

static int create_cq_raw(struct nvme_host *h, uint32_t cdw10, uint32_t cdw11, uint64_t prp1)
{
	struct nvme_sqe c = {
	    .opc = nvme_admin_create_cq, .prp1 = prp1, .cdw10 = cdw10, .cdw11 = cdw11};

	return nh_sct_sc(nh_exec(h, 0, &c, NULL));
}

static void test_queue_rules(void)
{
	struct nvme_host *h = connect_enabled();
	uint64_t iova;
	void *mem = nh_alloc(h, 64 * 1024, &iova);

	REQUIRE(mem);
	/* An SQ needs its CQ first. */
	CHECK_EQ(nh_sct_sc(nh_create_sq(h, 1, 1, 16)), SC_C(NVME_SC_CQ_INVALID));
	/* Queue identifiers: not 0, not beyond what is granted (8 pairs by default). */
	CHECK_EQ(nh_sct_sc(nh_create_cq(h, 0, 16, false)), SC_C(NVME_SC_QID_INVALID));
	CHECK_EQ(nh_sct_sc(nh_create_cq(h, QUEUES + 1, 16, false)), SC_C(NVME_SC_QID_INVALID));
	/* Sizes: 1 entry (QSIZE 0) or more than CAP.MQES + 1. */
	CHECK_EQ(nh_sct_sc(nh_create_cq(h, 1, 1, false)), SC_C(NVME_SC_QUEUE_SIZE));
	CHECK_EQ(nh_sct_sc(nh_create_cq(h, 1, ENTRIES + 1, false)), SC_C(NVME_SC_QUEUE_SIZE));
	/* Interrupt vector beyond the MSI-X table. */
	CHECK_EQ(nh_sct_sc(create_cq_raw(h, 15u << 16 | 1,
					 NVME_QUEUE_PC | NVME_CQ_IEN | (QUEUES + 1) << 16, iova)),
		 SC_C(NVME_SC_INVALID_VECTOR));
	/* Not physically contiguous: CAP.CQR says contiguous is required. */
	CHECK_EQ(create_cq_raw(h, 15u << 16 | 1, 0, iova), SC_G(NVME_SC_INVALID_FIELD));
	/* The largest queue is fine. */
	CHECK_EQ(nh_create_cq(h, 1, ENTRIES, false), 0);
	CHECK_EQ(nh_sct_sc(nh_create_cq(h, 1, 16, false)), SC_C(NVME_SC_QID_INVALID)); /* exists */
	CHECK_EQ(nh_sct_sc(nh_create_sq(h, 0, 1, 16)), SC_C(NVME_SC_QID_INVALID));
	CHECK_EQ(nh_sct_sc(nh_create_sq(h, QUEUES + 1, 1, 16)), SC_C(NVME_SC_QID_INVALID));
	CHECK_EQ(nh_sct_sc(nh_create_sq(h, 1, 0, 16)), SC_C(NVME_SC_CQ_INVALID));
	CHECK_EQ(nh_sct_sc(nh_create_sq(h, 1, 2, 16)), SC_C(NVME_SC_CQ_INVALID));
	CHECK_EQ(nh_sct_sc(nh_create_sq(h, 1, 1, 1)), SC_C(NVME_SC_QUEUE_SIZE));
	CHECK_EQ(nh_sct_sc(nh_create_sq(h, 1, 1, ENTRIES + 1)), SC_C(NVME_SC_QUEUE_SIZE));
	CHECK_EQ(nh_create_sq(h, 1, 1, ENTRIES), 0);
	/* Two SQs may share a CQ. */
	CHECK_EQ(nh_create_sq(h, 2, 1, 16), 0);
	/* Deletion order: not the CQ while SQs complete into it. */
	CHECK_EQ(nh_sct_sc(nh_delete_cq(h, 1)), SC_C(NVME_SC_INVALID_QUEUE));
	CHECK_EQ(nh_delete_sq(h, 1), 0);
	CHECK_EQ(nh_sct_sc(nh_delete_cq(h, 1)), SC_C(NVME_SC_INVALID_QUEUE));
	CHECK_EQ(nh_delete_sq(h, 2), 0);
	CHECK_EQ(nh_delete_cq(h, 1), 0);
	CHECK_EQ(nh_sct_sc(nh_delete_sq(h, 1)), SC_C(NVME_SC_QID_INVALID));
	CHECK_EQ(nh_sct_sc(nh_delete_cq(h, 1)), SC_C(NVME_SC_QID_INVALID));
	CHECK_EQ(nh_sct_sc(nh_delete_sq(h, 0)), SC_C(NVME_SC_QID_INVALID));
	CHECK_EQ(nh_sct_sc(nh_delete_cq(h, 0)), SC_C(NVME_SC_QID_INVALID));
	/* And all pairs can be made and used. */
	for (uint16_t q = 1; q <= QUEUES; q++)
		CHECK_EQ(nh_create_qpair(h, q, 8), 0);
	for (uint16_t q = 1; q <= QUEUES; q++)
		CHECK_EQ(nh_io(h, q, nvme_cmd_read, 1, q, 1, mem, 512), 0);
	CHECK_EQ(h->bad_cqes, 0);
	nh_close(h);
}

static void test_number_of_queues(void)
{
	struct nvme_host *h = connect_enabled();
	uint32_t dw0 = 0;

	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_NUM_QUEUES, 0, 0, &dw0), 0);
	CHECK_EQ(dw0, (QUEUES - 1) << 16 | (QUEUES - 1));
	/* 3 SQs, 2 CQs asked (0's based): granted as asked. */
	CHECK_EQ(nh_set_features(h, NVME_FEAT_FID_NUM_QUEUES, 1u << 16 | 2, &dw0), 0);
	CHECK_EQ(dw0, 1u << 16 | 2);
	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_NUM_QUEUES, 0, 0, &dw0), 0);
	CHECK_EQ(dw0, 1u << 16 | 2);
	/* More than offered: the offer. */
	CHECK_EQ(nh_set_features(h, NVME_FEAT_FID_NUM_QUEUES, 100u << 16 | 100, &dw0), 0);
	CHECK_EQ(dw0, (QUEUES - 1) << 16 | (QUEUES - 1));
	CHECK_EQ(nh_sct_sc(nh_set_features(h, NVME_FEAT_FID_NUM_QUEUES, 0xffff, &dw0)),
		 SC_G(NVME_SC_INVALID_FIELD));
	/* Grant 2 pairs: pair 3 is beyond it. */
	CHECK_EQ(nh_set_features(h, NVME_FEAT_FID_NUM_QUEUES, 1u << 16 | 1, &dw0), 0);
	CHECK_EQ(dw0, 1u << 16 | 1);
	CHECK_EQ(nh_create_qpair(h, 1, 8), 0);
	CHECK_EQ(nh_create_qpair(h, 2, 8), 0);
	CHECK_EQ(nh_sct_sc(nh_create_cq(h, 3, 8, false)), SC_C(NVME_SC_QID_INVALID));
	/* Once a queue exists the number is fixed until reset. */
	CHECK_EQ(nh_sct_sc(nh_set_features(h, NVME_FEAT_FID_NUM_QUEUES, 3u << 16 | 3, &dw0)),
		 SC_G(NVME_SC_CMD_SEQ_ERROR));
	CHECK_EQ(nh_delete_sq(h, 2), 0);
	CHECK_EQ(nh_delete_cq(h, 2), 0);
	CHECK_EQ(nh_sct_sc(nh_set_features(h, NVME_FEAT_FID_NUM_QUEUES, 3u << 16 | 3, &dw0)),
		 SC_G(NVME_SC_CMD_SEQ_ERROR));
	/* A reset restores the default. */
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_NUM_QUEUES, 0, 0, &dw0), 0);
	CHECK_EQ(dw0, (QUEUES - 1) << 16 | (QUEUES - 1));
	CHECK_EQ(nh_set_features(h, NVME_FEAT_FID_NUM_QUEUES, 0, &dw0), 0);
	CHECK_EQ(dw0, 0);
	nh_close(h);
}

static void test_features(void)
{
	struct nvme_host *h = connect_enabled();
	uint32_t dw0 = 0;

	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_VOLATILE_WC, 0, 0, &dw0), 0);
	CHECK_EQ(dw0, 1);
	CHECK_EQ(nh_set_features(h, NVME_FEAT_FID_VOLATILE_WC, 0, NULL), 0);
	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_VOLATILE_WC, 0, 0, &dw0), 0);
	CHECK_EQ(dw0, 0);
	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_VOLATILE_WC, 1, 0, &dw0), 0); /* default */
	CHECK_EQ(dw0, 1);
	CHECK_EQ(nh_set_features(h, NVME_FEAT_FID_VOLATILE_WC, 1, NULL), 0);

	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_IRQ_COALESCE, 0, 0, &dw0), 0);
	CHECK_EQ(dw0, 0);
	CHECK_EQ(nh_set_features(h, NVME_FEAT_FID_IRQ_COALESCE, 0x0a05, NULL), 0);
	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_IRQ_COALESCE, 0, 0, &dw0), 0);
	CHECK_EQ(dw0, 0x0a05);
	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_IRQ_COALESCE, 1, 0, &dw0), 0);
	CHECK_EQ(dw0, 0);
	/* Supported capabilities (SEL 3): changeable, not saveable. */
	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_IRQ_COALESCE, 3, 0, &dw0), 0);
	CHECK_EQ(dw0 & 7, 4);
	/* Saving is refused; unknown features are invalid. */
	CHECK_EQ(nh_sct_sc(nh_set_features(h, NVME_FEAT_FID_VOLATILE_WC | 1u << 31, 1, NULL)),
		 SC_C(NVME_SC_FEATURE_NOT_SAVEABLE));
	CHECK_EQ(nh_sct_sc(nh_get_features(h, 0x7e, 0, 0, &dw0)), SC_G(NVME_SC_INVALID_FIELD));
	/* Features go back to their defaults on reset. */
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_IRQ_COALESCE, 0, 0, &dw0), 0);
	CHECK_EQ(dw0, 0);
	nh_close(h);
}

static uint64_t u128(const uint8_t v[16])
{
	uint64_t lo, hi;

	memcpy(&lo, v, 8);
	memcpy(&hi, v + 8, 8);
	return hi ? UINT64_MAX : lo;
}

/* SMART counters on a controller of its own, so that they count only this I/O. */
static void test_smart_log(void)
{
	struct udrv_emu_nvme_opts o = {.size = 16 << 20};
	char s[128];
	struct udrv_emu_nvme *e = nh_emu_start(&o, s);
	struct nvme_host *h;
	struct nvme_smart_log sl;
	struct udrv_emu_nvme_stats st;
	uint8_t *buf;

	REQUIRE(nh_open(s, &h) == 0);
	REQUIRE(nh_enable(h, AQ) == 0);
	REQUIRE(nh_create_qpair(h, 1, 16) == 0);
	buf = nh_alloc(h, 256 << 10, NULL);
	REQUIRE(buf);
	CHECK_EQ(nh_get_log(h, NVME_LOG_LID_SMART, 0xffffffff, &sl, sizeof(sl)), 0);
	CHECK_EQ(u128(sl.host_reads), 0);
	CHECK_EQ(u128(sl.data_units_written), 0);
	/* 1001 units of 512 bytes written in 4 commands: 2 data units (thousands, rounded up). */
	for (int i = 0; i < 3; i++)
		CHECK_EQ(nh_io(h, 1, nvme_cmd_write, 1, (uint64_t)i * 256, 256, buf, 128 << 10), 0);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_write, 1, 768, 233, buf, 233 * 512), 0);
	/* 1000 units read in 2 commands: exactly 1 data unit. */
	CHECK_EQ(nh_io(h, 1, nvme_cmd_read, 1, 0, 500, buf, 500 * 512), 0);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_read, 1, 500, 500, buf, 500 * 512), 0);
	/* Not counted: a flush, and a failed read. */
	CHECK_EQ(nh_io(h, 1, nvme_cmd_flush, 1, 0, 1, NULL, 0), 0);
	CHECK(nh_io(h, 1, nvme_cmd_read, 1, 1u << 30, 1, buf, 512) != 0);
	CHECK_EQ(nh_get_log(h, NVME_LOG_LID_SMART, 0, &sl, sizeof(sl)), 0);
	CHECK_EQ(u128(sl.host_writes), 4);
	CHECK_EQ(u128(sl.host_reads), 2);
	CHECK_EQ(u128(sl.data_units_written), 2);
	CHECK_EQ(u128(sl.data_units_read), 1);
	CHECK_EQ(u128(sl.num_err_log_entries), 1);
	CHECK_EQ(sl.critical_warning, 0);
	CHECK(sl.temperature[0] | sl.temperature[1] << 8);
	/* One more 512-byte read tips reads over 1000 units. */
	CHECK_EQ(nh_io(h, 1, nvme_cmd_read, 1, 0, 1, buf, 512), 0);
	CHECK_EQ(nh_get_log(h, NVME_LOG_LID_SMART, 0, &sl, sizeof(sl)), 0);
	CHECK_EQ(u128(sl.data_units_read), 2);
	CHECK_EQ(u128(sl.host_reads), 3);
	/* The stats agree. */
	CHECK_EQ(udrv_emu_nvme_stats(e, &st), 0);
	CHECK_EQ(st.write_cmds, 4);
	CHECK_EQ(st.read_cmds, 3);
	CHECK_EQ(st.bytes_written, 1001 * 512);
	CHECK_EQ(st.bytes_read, 1001 * 512);
	/* No per-namespace SMART data (LPA bit 0 clear). */
	CHECK_EQ(nh_sct_sc(nh_get_log(h, NVME_LOG_LID_SMART, 1, &sl, sizeof(sl))),
		 SC_G(NVME_SC_INVALID_FIELD));
	nh_close(h);
	udrv_emu_nvme_destroy(e);
}

static void test_error_and_fw_logs(void)
{
	struct nvme_host *h = connect_enabled();
	struct nvme_error_log_page el[16];
	struct nvme_firmware_slot fw;
	struct nvme_sqe c;
	uint8_t *buf = nh_alloc(h, 4096, NULL);
	int cid_io, cid_admin;
	struct nvme_cqe e;

	REQUIRE(buf);
	REQUIRE(nh_create_qpair(h, 1, 16) == 0);
	/* Two failures: an I/O out of range, then an Identify of a bad namespace. */
	nh_rw_cmd(&c, nvme_cmd_read, 1, NS_BYTES / 512, 1);
	nh_prp(h, &c, buf, 512);
	cid_io = nh_submit(h, 1, &c);
	REQUIRE(cid_io > 0);
	REQUIRE(nh_wait(h, 1, (uint16_t)cid_io, &e, NH_TIMEOUT_MS) == 0);
	CHECK_EQ(NVME_CQE_STATUS(&e) & 0x7ff, SC_G(NVME_SC_LBA_RANGE));
	c = (struct nvme_sqe){.opc = nvme_admin_identify, .nsid = 99, .cdw10 = 0};
	nh_prp(h, &c, buf, 4096);
	cid_admin = nh_submit(h, 0, &c);
	REQUIRE(cid_admin > 0);
	REQUIRE(nh_wait(h, 0, (uint16_t)cid_admin, &e, NH_TIMEOUT_MS) == 0);
	CHECK_EQ(NVME_CQE_STATUS(&e) & 0x7ff, SC_G(NVME_SC_INVALID_NS));

	memset(el, 0xee, sizeof(el));
	CHECK_EQ(nh_get_log(h, NVME_LOG_LID_ERROR, 0, el, sizeof(el)), 0);
	/* Newest first. */
	CHECK_EQ(el[0].sqid, 0);
	CHECK_EQ(el[0].cmdid, cid_admin);
	CHECK_EQ((el[0].status_field >> 1) & 0x7ff, SC_G(NVME_SC_INVALID_NS));
	CHECK_EQ(el[1].sqid, 1);
	CHECK_EQ(el[1].cmdid, cid_io);
	CHECK_EQ((el[1].status_field >> 1) & 0x7ff, SC_G(NVME_SC_LBA_RANGE));
	CHECK_EQ(el[0].error_count, el[1].error_count + 1);
	CHECK(el[1].error_count >= 1);

	/* More failures than entries (ELPE + 1 = 16): the newest 16, counts descending. */
	for (int i = 0; i < 20; i++)
		CHECK(nh_identify(h, NVME_IDENTIFY_CNS_NS, 1000u + (unsigned)i, buf) != 0);
	CHECK_EQ(nh_get_log(h, NVME_LOG_LID_ERROR, 0, el, sizeof(el)), 0);
	for (int i = 0; i < 16; i++) {
		CHECK_EQ(el[i].error_count, el[0].error_count - (uint64_t)i);
		CHECK_EQ(el[i].sqid, 0);
		CHECK_EQ((el[i].status_field >> 1) & 0x7ff, SC_G(NVME_SC_INVALID_NS));
	}

	CHECK_EQ(nh_get_log(h, NVME_LOG_LID_FW_SLOT, 0, &fw, sizeof(fw)), 0);
	CHECK_EQ(fw.afi & 7, 1);
	CHECK(memcmp(fw.frs[0], "udrv0.1 ", 8) == 0);
	/* Unknown log page. */
	CHECK_EQ(nh_sct_sc(nh_get_log(h, 0x7f, 0, buf, 512)), SC_C(NVME_SC_INVALID_LOG_PAGE));
	nh_close(h);
}

static void test_abort(void)
{
	struct nvme_host *h = connect_enabled();
	uint8_t *buf = nh_alloc(h, 4096, NULL);
	struct nvme_sqe r, a;
	struct nvme_cqe e;
	int cid, st;
	double t0;

	REQUIRE(buf);
	REQUIRE(nh_create_qpair(h, 1, 16) == 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu, "latency=2s"), 0);
	nh_rw_cmd(&r, nvme_cmd_read, 1, 0, 1);
	nh_prp(h, &r, buf, 512);
	t0 = nh_now();
	cid = nh_submit(h, 1, &r);
	REQUIRE(cid > 0);
	nh_sleep_ms(100); /* fetched and held */
	a = (struct nvme_sqe){.opc = nvme_admin_abort_cmd, .cdw10 = (uint32_t)cid << 16 | 1};
	st = nh_exec(h, 0, &a, &e);
	CHECK_EQ(st, 0);
	CHECK_EQ(e.dw0 & 1, 0); /* aborted */
	CHECK_EQ(nh_wait(h, 1, (uint16_t)cid, &e, 1500), 0);
	CHECK_EQ(NVME_CQE_STATUS(&e) & 0x7ff, SC_G(NVME_SC_ABORT_REQ));
	CHECK(nh_now() - t0 < 1.5);
	/* An unknown command: not aborted. */
	a.cdw10 = 0x1234u << 16 | 1;
	CHECK_EQ(nh_exec(h, 0, &a, &e), 0);
	CHECK_EQ(e.dw0 & 1, 1);
	CHECK_EQ(udrv_emu_nvme_inject(emu, "latency=0"), 0);
	/* The aborted command's completion came once. */
	CHECK_EQ(nh_next(h, 1, &e, 200), -ETIMEDOUT);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_read, 1, 0, 1, buf, 512), 0);
	CHECK_EQ(h->bad_cqes, 0);
	nh_close(h);
}

static void test_async_events(void)
{
	struct nvme_host *h = connect_enabled();
	struct nvme_sqe aer = {.opc = nvme_admin_async_event};
	struct nvme_error_log_page el[16];
	struct nvme_cqe e;
	int cid, cids[4];

	cid = nh_submit(h, 0, &aer);
	REQUIRE(cid > 0);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)cid, &e, 200), -ETIMEDOUT);
	/* An admin SQ tail beyond the queue: an error event, Invalid Doorbell Write Value. */
	nh_db_write(h, 0, AQ + 5);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)cid, &e, 2000), 0);
	CHECK_EQ(NVME_CQE_STATUS(&e), 0);
	CHECK_EQ(e.dw0 & 7, NVME_AER_ERROR);
	CHECK_EQ((e.dw0 >> 8) & 0xff, NVME_AER_ERROR_INVALID_DB_VAL);
	CHECK_EQ((e.dw0 >> 16) & 0xff, NVME_LOG_LID_ERROR);
	/* Put the right tail back; the queue works; the log page read re-arms the event. */
	nh_db_write(h, 0, h->q[0].sq_tail);
	CHECK_EQ(nh_get_log(h, NVME_LOG_LID_ERROR, 0, el, sizeof(el)), 0);

	/* AERL + 1 = 4 outstanding requests; the 5th is refused. */
	for (int i = 0; i < 4; i++) {
		cids[i] = nh_submit(h, 0, &aer);
		REQUIRE(cids[i] > 0);
	}
	cid = nh_submit(h, 0, &aer);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)cid, &e, 2000), 0);
	CHECK_EQ(NVME_CQE_STATUS(&e) & 0x7ff, SC_C(NVME_SC_ASYNC_LIMIT));
	for (int i = 0; i < 4; i++)
		CHECK_EQ(nh_wait(h, 0, (uint16_t)cids[i], &e, 1), -ETIMEDOUT);
	/* A bad CQ head doorbell is reported too, to the oldest request. */
	nh_db_write(h, 1, 0xffff);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)cids[0], &e, 2000), 0);
	CHECK_EQ(e.dw0,
		 NVME_AER_DW0(NVME_AER_ERROR, NVME_AER_ERROR_INVALID_DB_VAL, NVME_LOG_LID_ERROR));
	nh_db_write(h, 1, h->q[0].cq_head);
	CHECK_EQ(identify_ok(h), 0);
	nh_close(h);
}

/* Events of a reported type wait for the log page read (without RAE) before the next one;
 * an event with no request outstanding waits for the next request. */
static void test_aer_masking(void)
{
	struct nvme_host *h = connect_enabled();
	struct nvme_sqe aer = {.opc = nvme_admin_async_event};
	struct nvme_sqe log = {.opc = nvme_admin_get_log_page};
	uint8_t *buf = nh_alloc(h, 4096, NULL);
	struct nvme_cqe e;
	int cid;

	REQUIRE(buf);
	/* No request outstanding: the event is kept, and the next request gets it at once. */
	nh_db_write(h, 0, AQ + 1);
	nh_sleep_ms(50);
	nh_db_write(h, 0, h->q[0].sq_tail);
	cid = nh_submit(h, 0, &aer);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)cid, &e, 2000), 0);
	CHECK_EQ(e.dw0,
		 NVME_AER_DW0(NVME_AER_ERROR, NVME_AER_ERROR_INVALID_DB_VAL, NVME_LOG_LID_ERROR));
	/* Masked until the error log is read: a second bad value is not reported. */
	cid = nh_submit(h, 0, &aer);
	nh_db_write(h, 0, AQ + 2);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)cid, &e, 300), -ETIMEDOUT);
	nh_db_write(h, 0, h->q[0].sq_tail);
	/* Reading it with Retain Asynchronous Event keeps the mask. */
	log.cdw10 = 1u << 15 | (64u / 4 - 1) << 16 | NVME_LOG_LID_ERROR;
	nh_prp(h, &log, buf, 64);
	CHECK_EQ(nh_exec(h, 0, &log, NULL), 0);
	nh_db_write(h, 0, AQ + 3);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)cid, &e, 300), -ETIMEDOUT);
	nh_db_write(h, 0, h->q[0].sq_tail);
	/* Without RAE it is lifted: the next bad value is reported. */
	log.cdw10 &= ~(1u << 15);
	CHECK_EQ(nh_exec(h, 0, &log, NULL), 0);
	nh_db_write(h, 0, AQ + 4);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)cid, &e, 2000), 0);
	CHECK_EQ(e.dw0 & 0xff00ff, NVME_AER_DW0(NVME_AER_ERROR, 0, NVME_LOG_LID_ERROR));
	nh_db_write(h, 0, h->q[0].sq_tail);
	CHECK_EQ(identify_ok(h), 0);
	nh_close(h);
}

/* Get Log Page with an offset (LPA bit 2), and a length beyond the page: zeros. */
static void test_log_offset(void)
{
	struct nvme_host *h = connect_enabled();
	struct nvme_error_log_page all[16], part[2];
	struct nvme_sqe c = {.opc = nvme_admin_get_log_page};
	struct nvme_smart_log sl[2];
	uint8_t *buf = nh_alloc(h, 8192, NULL);
	struct nvme_id_ctrl id;

	REQUIRE(buf);
	CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_CTRL, 0, &id), 0);
	CHECK(id.lpa & 4);
	/* Make sure there are at least three entries. */
	for (int i = 0; i < 3; i++)
		CHECK(nh_identify(h, NVME_IDENTIFY_CNS_NS, 1000, buf) != 0);
	CHECK_EQ(nh_get_log(h, NVME_LOG_LID_ERROR, 0, all, sizeof(all)), 0);
	c.cdw10 = (uint32_t)(sizeof(part) / 4 - 1) << 16 | NVME_LOG_LID_ERROR;
	c.cdw12 = sizeof(all[0]);
	nh_prp(h, &c, buf, sizeof(part));
	CHECK_EQ(nh_exec(h, 0, &c, NULL), 0);
	memcpy(part, buf, sizeof(part));
	CHECK(memcmp(part, &all[1], sizeof(part)) == 0);
	/* Offsets must be dword aligned and inside the page. */
	c.cdw12 = 2;
	CHECK_EQ(nh_sct_sc(nh_exec(h, 0, &c, NULL)), SC_G(NVME_SC_INVALID_FIELD));
	c.cdw12 = sizeof(all);
	CHECK_EQ(nh_sct_sc(nh_exec(h, 0, &c, NULL)), SC_G(NVME_SC_INVALID_FIELD));
	/* 1 KiB of a 512-byte page: the rest reads as zeros. */
	memset(sl, 0xee, sizeof(sl));
	CHECK_EQ(nh_get_log(h, NVME_LOG_LID_SMART, 0, sl, sizeof(sl)), 0);
	CHECK_EQ(sl[0].avail_spare, 100);
	for (size_t i = 0; i < sizeof(sl[1]); i++)
		if (((uint8_t *)&sl[1])[i]) {
			CHECK(!"SMART log beyond 512 bytes is not zero");
			break;
		}
	nh_close(h);
}

/* Deleting an SQ completes its held commands as aborted by SQ deletion, first. */
static void test_delete_sq_aborts_held(void)
{
	struct nvme_host *h = connect_enabled();
	uint8_t *buf = nh_alloc(h, 4096, NULL);
	struct nvme_sqe r;
	struct nvme_cqe e;
	int cid[3];

	REQUIRE(buf);
	REQUIRE(nh_create_qpair(h, 1, 16) == 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu, "latency=3s"), 0);
	for (int i = 0; i < 3; i++) {
		nh_rw_cmd(&r, nvme_cmd_read, 1, (uint64_t)i, 1);
		nh_prp(h, &r, buf, 512);
		cid[i] = nh_submit(h, 1, &r);
	}
	nh_sleep_ms(100);
	CHECK_EQ(nh_delete_sq(h, 1), 0);
	h->q[1].sq_live = true; /* to match the completions still in CQ 1 */
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(nh_wait(h, 1, (uint16_t)cid[i], &e, 100), 0);
		CHECK_EQ(NVME_CQE_STATUS(&e) & 0x7ff, SC_G(NVME_SC_ABORT_QUEUE));
	}
	h->q[1].sq_live = false;
	CHECK_EQ(udrv_emu_nvme_inject(emu, "latency=0"), 0);
	CHECK_EQ(nh_delete_cq(h, 1), 0);
	CHECK_EQ(nh_create_qpair(h, 1, 16), 0);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_read, 1, 0, 1, buf, 512), 0);
	nh_close(h);
}

/* Keep Alive Timeout (set in ms, 100 ms granularity): the timer expiring is fatal. */
static void test_keep_alive_timeout(void)
{
	struct nvme_host *h = connect_enabled();
	struct nvme_sqe ka = {.opc = nvme_admin_keep_alive};
	uint32_t dw0 = 0, csts = 0;

	CHECK_EQ(nh_set_features(h, NVME_FEAT_FID_KATO, 250, NULL), 0);
	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_KATO, 0, 0, &dw0), 0);
	CHECK_EQ(dw0, 300);
	for (int i = 0; i < 8; i++) { /* 0.8 s, kept alive */
		nh_sleep_ms(100);
		CHECK_EQ(nh_exec(h, 0, &ka, NULL), 0);
	}
	CHECK_EQ(nh_read32(h, NVME_REG_CSTS, &csts), 0);
	CHECK_EQ(csts, NH_RDY);
	CHECK_EQ(nh_wait_csts(h, NH_CFS, NH_CFS, 2000, &csts), 0);
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(nh_get_features(h, NVME_FEAT_FID_KATO, 0, 0, &dw0), 0);
	CHECK_EQ(dw0, 0);
	nh_sleep_ms(300);
	CHECK_EQ(identify_ok(h), 0);
	nh_close(h);
}

/* I/O queues need CC.IOSQES = 6 and CC.IOCQES = 4; the admin queue does not. */
static void test_queue_entry_sizes(void)
{
	struct nvme_host *h;
	uint32_t csts;

	REQUIRE(nh_open(sock, &h) == 0);
	REQUIRE(nh_setup_admin(h, AQ) == 0);
	CHECK_EQ(nh_write32(h, NVME_REG_CC, 1), 0);
	CHECK_EQ(nh_wait_csts(h, NH_RDY, NH_RDY, 5000, &csts), 0);
	CHECK_EQ(identify_ok(h), 0);
	CHECK_EQ(nh_sct_sc(nh_create_cq(h, 1, 8, false)), SC_G(NVME_SC_INVALID_FIELD));
	/* Only IOCQES: the CQ can be made, not the SQ. */
	CHECK_EQ(nh_write32(h, NVME_REG_CC, 1 | NVME_CQES_LOG2 << NVME_CC_IOCQES_SHIFT), 0);
	nh_sleep_ms(20); /* the controller applies CC asynchronously */
	CHECK_EQ(nh_create_cq(h, 1, 8, false), 0);
	CHECK_EQ(nh_sct_sc(nh_create_sq(h, 1, 1, 8)), SC_G(NVME_SC_INVALID_FIELD));
	/* Wrong sizes (SQ entries of 128 bytes) are refused too. */
	CHECK_EQ(nh_write32(h, NVME_REG_CC, nh_cc_enable() + (1u << NVME_CC_IOSQES_SHIFT)), 0);
	nh_sleep_ms(20);
	CHECK_EQ(nh_sct_sc(nh_create_sq(h, 1, 1, 8)), SC_G(NVME_SC_INVALID_FIELD));
	CHECK_EQ(nh_write32(h, NVME_REG_CC, nh_cc_enable()), 0);
	nh_sleep_ms(20);
	CHECK_EQ(nh_create_sq(h, 1, 1, 8), 0);
	CHECK_EQ(nh_read32(h, NVME_REG_CSTS, &csts), 0);
	CHECK_EQ(csts, NH_RDY);
	nh_close(h);
}

static void test_misc_admin(void)
{
	struct nvme_host *h = connect_enabled();
	struct nvme_sqe c = {.opc = nvme_admin_keep_alive};

	CHECK_EQ(nh_exec(h, 0, &c, NULL), 0);
	c = (struct nvme_sqe){.opc = 0x7f};
	CHECK_EQ(nh_sct_sc(nh_exec(h, 0, &c, NULL)), SC_G(NVME_SC_INVALID_OPCODE));
	c = (struct nvme_sqe){.opc = 0xc5}; /* vendor specific */
	CHECK_EQ(nh_sct_sc(nh_exec(h, 0, &c, NULL)), SC_G(NVME_SC_INVALID_OPCODE));
	/* Fused admin commands are not supported. */
	c = (struct nvme_sqe){.opc = nvme_admin_keep_alive, .flags = 1};
	CHECK_EQ(nh_sct_sc(nh_exec(h, 0, &c, NULL)), SC_G(NVME_SC_INVALID_FIELD));
	/* Admin data through an SGL is refused (PRPs only on PCIe). */
	c = (struct nvme_sqe){.opc = nvme_admin_identify, .cdw10 = NVME_IDENTIFY_CNS_CTRL};
	nh_sgl1(&c, h->prp_pool_iova, 4096, NVME_SGL_TYPE_DATA);
	CHECK_EQ(nh_sct_sc(nh_exec(h, 0, &c, NULL)), SC_G(NVME_SC_INVALID_FIELD));
	/* Identify into memory the host never mapped. */
	c = (struct nvme_sqe){
	    .opc = nvme_admin_identify, .cdw10 = NVME_IDENTIFY_CNS_CTRL, .prp1 = 0xdead00000000ull};
	CHECK_EQ(nh_sct_sc(nh_exec(h, 0, &c, NULL)), SC_G(NVME_SC_DATA_XFER_ERROR));
	CHECK_EQ(identify_ok(h), 0);
	nh_close(h);
}

/* Options are checked; a socket that is being served cannot be taken. */
static void test_create_options(void)
{
	struct udrv_emu_nvme_opts o;
	char s[128];
	struct udrv_emu_nvme *e;
	static const struct {
		unsigned namespaces, queues, max_entries, block_size;
		const char *serial, *faults;
	} bad[] = {
	    {17, 0, 0, 0, NULL, NULL},
	    {0, 65, 0, 0, NULL, NULL},
	    {0, 0, 1, 0, NULL, NULL},
	    {0, 0, 4097, 0, NULL, NULL},
	    {0, 0, 0, 1024, NULL, NULL},
	    {0, 0, 0, 0, "123456789012345678901", NULL},
	    {0, 0, 0, 0, NULL, "drop=0"},
	    {0, 0, 0, 0, NULL, "latency"},
	    {0, 0, 0, 0, NULL, "error=1:0x0000"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		nh_tmppath(s, sizeof(s), "bad.sock");
		o = (struct udrv_emu_nvme_opts){.socket_path = s,
						.size = 1 << 20,
						.namespaces = bad[i].namespaces,
						.queues = bad[i].queues,
						.max_entries = bad[i].max_entries,
						.block_size = bad[i].block_size,
						.serial = bad[i].serial,
						.faults = bad[i].faults};
		errno = 0;
		e = udrv_emu_nvme_create(&o);
		CHECK(e == NULL);
		CHECK_EQ(errno, EINVAL);
		if (e)
			fprintf(stderr, "bad option set %zu accepted\n", i);
		udrv_emu_nvme_destroy(e);
	}
	/* Too small for the namespaces. */
	nh_tmppath(s, sizeof(s), "small.sock");
	o = (struct udrv_emu_nvme_opts){.socket_path = s, .size = 4096, .namespaces = 2};
	errno = 0;
	e = udrv_emu_nvme_create(&o);
	CHECK(e == NULL && errno == ENOSPC);
	udrv_emu_nvme_destroy(e);
	/* The shared controller's socket is taken. */
	o = (struct udrv_emu_nvme_opts){.socket_path = sock, .size = 1 << 20};
	errno = 0;
	e = udrv_emu_nvme_create(&o);
	CHECK(e == NULL && errno == EADDRINUSE);
	udrv_emu_nvme_destroy(e);
	/* Faults armed at creation hit the first I/O. */
	{
		struct nvme_host *h;
		uint8_t *buf;

		o = (struct udrv_emu_nvme_opts){.size = 1 << 20, .faults = "error=1:0x0281"};
		e = nh_emu_start(&o, s);
		REQUIRE(nh_open(s, &h) == 0);
		REQUIRE(nh_enable(h, AQ) == 0);
		REQUIRE(nh_create_qpair(h, 1, 8) == 0);
		buf = nh_alloc(h, 4096, NULL);
		REQUIRE(buf);
		CHECK_EQ(nh_io(h, 1, nvme_cmd_read, 1, 0, 1, buf, 512), 0x0281);
		CHECK_EQ(nh_io(h, 1, nvme_cmd_read, 1, 0, 1, buf, 512), 0);
		nh_close(h);
		udrv_emu_nvme_destroy(e);
	}
}

int main(void)
{
	struct udrv_emu_nvme_opts o = {
	    .size = NS * NS_BYTES,
	    .namespaces = NS,
	    .queues = QUEUES,
	    .max_entries = ENTRIES,
	    .serial = SERIAL,
	};
	double t0 = nh_now();

	udrv_log_set_level(UDRV_LOG_ERR);
	signal(SIGPIPE, SIG_IGN);
	alarm(120); /* a hang is a failure, not a stuck CI job */
	emu = nh_emu_start(&o, sock);
	RUN(test_create_options);
	RUN(test_registers);
	RUN(test_enable_disable);
	RUN(test_doorbell_before_enable);
	RUN(test_enable_without_admin_queues);
	RUN(test_shutdown);
	RUN(test_reenable_drops_queues);
	RUN(test_device_reset);
	RUN(test_admin_queue_sizes);
	RUN(test_bus_master_off);
	RUN(test_bus_master_race);
	RUN(test_identify_ctrl);
	RUN(test_identify_ns);
	RUN(test_queue_rules);
	RUN(test_queue_entry_sizes);
	RUN(test_number_of_queues);
	RUN(test_features);
	RUN(test_smart_log);
	RUN(test_error_and_fw_logs);
	RUN(test_abort);
	RUN(test_async_events);
	RUN(test_aer_masking);
	RUN(test_log_offset);
	RUN(test_delete_sq_aborts_held);
	RUN(test_keep_alive_timeout);
	RUN(test_misc_admin);
	udrv_emu_nvme_destroy(emu);
	fprintf(stderr, "%.1f s\n", nh_now() - t0);
	return test_done();
}
