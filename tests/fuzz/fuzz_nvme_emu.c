/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the emulated NVMe controller (src/emu/nvme/) driven by a hostile host,
 * in-process and single-threaded, without a socket client. The fuzzer plays the host: it owns
 * "host memory" (memfds registered as DMA windows with vfu_dma_map(), as a client's DMA_MAP
 * would), writes registers through BAR0's register callbacks, rings doorbells in the shared
 * doorbell page and calls the device thread's poll function, nvemu_poll(), itself. Nothing is
 * served and no thread is started, so nothing sleeps.
 *
 * DMA windows (iova):
 *   0x100000 +2 MiB  host memory, read/write, an fd window (zero copy)
 *   0x300000 +8 KiB  read/write, no fd: reached by DMA_READ/WRITE messages, which fail at
 *                    once with no client (-ENOTCONN -> -EFAULT)
 *   0x302000 +8 KiB  read-only fd window
 *   0x304000 +8 KiB  write-only fd window
 * The windows are adjacent, so transfers may cross from one kind into the next.
 *
 * Per input: the controller is reset as a function-level reset would (the library's reset
 * callback), faults are cleared, the store and host memory are zeroed, and the host brings the
 * controller up: PCI Command memory space and bus master enable, AQA/ASQ/ACQ (16-entry admin
 * queues at host pages 0 and 1), CC.EN=1 with IOSQES=6/IOCQES=4, polls until CSTS.RDY. The
 * rest of the input is up to MAX_OPS ops, each an op byte (low nibble: kind; high nibble:
 * flags) followed by a fixed-size payload; an op whose payload is cut short ends the input.
 * Unless flag 0x80 is set, every op that the controller could see is followed by one poll.
 *
 *   0 ADMIN_SQE [64]              raw SQE into the admin SQ at the host's tail, ring
 *   1 IO_SQE    [q][64]           raw SQE into I/O SQ 1 + q % 4 (if live), ring
 *        flags for 0/1: 0x10 relocate PRP1 into the windows, 0x20 PRP2, 0x40 do not ring
 *   2 DB_RAW    [idx:2][val:4]    any dword of the doorbell page; 0x10: val % 80
 *   3 CQ_REAP   [q][n]            consume up to n (0: all) posted entries of CQ q % 5 and
 *                                 write its head doorbell (0x10: do not write it)
 *   4 HOST_WR   [off:2][64]       64 bytes at (off * 64) % 2 MiB of host memory (0x10: into
 *                                 the read-only/write-only windows' memory instead)
 *   5 PRP_LIST  [list:2][first:2][n] a PRP list of n entries at host page list % 512,
 *                                 pointing at consecutive pages from first (0x10: the last
 *                                 entry chains to the next page)
 *   6 SGL_DESC  [off:2][id][len:4][addr:2] one SGL descriptor at (off * 16) % 2 MiB, address
 *                                 relocated from addr * 16 (0x10: len % 8192)
 *   7 REG_WR    [sel][val:4]      sel % 16 < 8: a BAR0 register: CC, AQA, ASQ, ASQ+4, ACQ,
 *                                 ACQ+4, INTMS, INTMC (0x10: a sensible value derived from
 *                                 val); else read them all, a 64-bit write, a write anywhere
 *                                 in 0..3Fh, or accesses of bad size/alignment (refused)
 *   8 REINIT                      CC.EN=0, poll, program the admin queues, CC.EN=1, poll
 *   9 FAULT     [sel]             udrv_emu_nvme_inject() of one spec of a fixed table
 *  10 POLL      [n]               n % 8 + 1 more polls
 *  11 RESET                       the library's reset callback (0x10: disconnect callback);
 *                                 0x20: PCI Command.BME := flag 0x10 instead (no DMA without)
 *  12 IO_CMD    [q][opc][nsid][slba:2][nlb][page][mode] a well-formed NVM command (see
 *                                 io_cmd()); 0x40: do not ring
 *  13 ADMIN_CMD [which][q][arg:2] a well-formed admin command (see admin_cmd()); 0x10 raw
 *                                 queue id, 0x20 raw queue size, 0x40 misaligned buffers
 *  14 RING      [q]               ring SQ q % 5's tail doorbell with the host's tail
 *  15 NOP
 *
 * Invariants checked after every poll (abort() on violation):
 *   - CSTS has only RDY, CFS and SHST set, SHST is never "occurring" or reserved once a poll
 *     returned; RDY only while enabled, and enabled only with CC.EN applied; CC.EN applied and
 *     RDY clear means CFS; every CC write was applied (cc_seen == cc_seq);
 *   - npending <= NVEMU_PENDING, ninflight == 0 (RAM store: transfers are synchronous),
 *     naer/naer_events within their arrays, granted queue counts within what is offered;
 *   - live queues: head/tail < size, an SQ's CQ is live, each CQ's nsq is the number of live
 *     SQs completing into it, owed <= size - 1; the admin queues are live while enabled;
 *   - held (latency) completions belong to live I/O SQs, and a CQ is owed exactly the
 *     completions held for its SQs: with the RAM store every other command completes (or
 *     loses its completion to a fault) before the poll returns, and an Asynchronous Event
 *     Request holds no room;
 *   - a poll never posts into a CQ beyond the host's head: entries posted by the poll plus
 *     those the host had not consumed before it stay <= size - 1, counted from the head the
 *     host last wrote (when that head is sane: between the controller's head and tail);
 *   - a poll never fetches an SQ beyond its tail doorbell.
 * Polls in which queues may have been created or deleted (such admin commands were waiting
 * in the admin SQ) or CC changed skip the two ring checks.
 *
 * Build (the CMake target does the same):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -D_GNU_SOURCE -Iinclude -Isrc -Itests $(pkg-config --cflags json-c) \
 *     tests/fuzz/fuzz_nvme_emu.c src/emu/(star).c src/emu/nvme/(star).c src/core/log.c \
 *     $(pkg-config --libs json-c) -luring -lpthread -o fuzz_nvme_emu
 *   ./fuzz_nvme_emu -max_total_time=60 tests/fuzz/corpus/nvme_emu
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <udrv/log.h>

#include "emu/nvme/nvme_emu.h"
#include "emu/vfu_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HOST_IOVA 0x100000ull
#define HOST_SIZE (2u << 20)
#define MSG_IOVA  0x300000ull /* no fd */
#define MSG_SIZE  0x2000u
#define AUX_IOVA  0x302000ull /* read-only, then write-only */
#define AUX_SIZE  0x4000u
#define SPAN	  (AUX_IOVA + AUX_SIZE - HOST_IOVA) /* all windows, contiguous */

#define NQ	   5u /* admin + 4 I/O queue pairs */
#define MAX_OPS	   256u
#define ADMIN_ENTS 16u
#define CC_ON	   (1u | NVME_SQES_LOG2 << 16 | NVME_CQES_LOG2 << 20)
#define Q_AREA	   0x10000u /* host offset of the I/O queues made by ADMIN_CMD */
#define LIST_AREA  0x20000u /* PRP lists and SGL segments made by IO_CMD: 32 pages */
#define DATA_AREA  0x40000u /* data pages: 256 */
#define RDY	   (NVME_CSTS_RDY_MASK << NVME_CSTS_RDY_SHIFT)
#define CFS	   (NVME_CSTS_CFS_MASK << NVME_CSTS_CFS_SHIFT)

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "fuzz_nvme_emu: " __VA_ARGS__);                                    \
		fputc('\n', stderr);                                                               \
		abort();                                                                           \
	} while (0)

/* The checks are not the code under test: keep them out of the coverage feedback. */
#ifdef __clang__
#define NO_COV __attribute__((no_sanitize("coverage")))
#else
#define NO_COV
#endif

static struct udrv_emu_nvme *e;
static uint8_t *host, *aux; /* the fuzzer's views of the fd windows */
static int host_fd = -1, aux_fd = -1;
static char sock_path[108];

/* What the host knows of its queues. */
static struct {
	bool live;
	uint64_t base;
	uint32_t size, tail;
} hsq[NQ];
static struct {
	bool live;
	uint64_t base;
	uint32_t size, head;
} hcq[NQ];
static uint16_t next_cid;

/* Controller state before a poll, for the ring checks. */
static struct {
	bool live;
	uint64_t base;
	uint32_t size, head, tail, pos, db;
} pre_cq[NQ], pre_sq[NQ];
static bool pre_skip;

NO_COV static void *host_ptr(uint64_t iova, uint64_t len)
{
	if (iova >= HOST_IOVA && len <= HOST_SIZE && iova - HOST_IOVA <= HOST_SIZE - len)
		return host + (iova - HOST_IOVA);
	if (iova >= AUX_IOVA && len <= AUX_SIZE && iova - AUX_IOVA <= AUX_SIZE - len)
		return aux + (iova - AUX_IOVA);
	return NULL;
}

/* Any address into one of the windows, keeping its offset in the page. */
static uint64_t reloc(uint64_t v)
{
	return HOST_IOVA + (((v >> 12) % (SPAN >> 12)) << 12) + (v & 0xfff);
}

static uint32_t le16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
	return le16(p) | le16(p + 2) << 16;
}

/* ---- registers, through BAR0's callbacks as a client's REGION_WRITE would ---------- */

static void reg_write(uint64_t off, uint32_t v)
{
	const struct vfu_bar *b = &e->dev->bars[NVEMU_BAR_REGS];

	if (b->ops->write(b->ctx, NVEMU_BAR_REGS, off, &v, 4) != 4)
		FAIL("register write at %#llx refused", (unsigned long long)off);
}

NO_COV static uint32_t reg_read(uint64_t off)
{
	const struct vfu_bar *b = &e->dev->bars[NVEMU_BAR_REGS];
	uint32_t v = 0;

	if (b->ops->read(b->ctx, NVEMU_BAR_REGS, off, &v, 4) != 4)
		FAIL("register read at %#llx refused", (unsigned long long)off);
	return v;
}

/* ---- invariants ------------------------------------------------------------------ */

NO_COV static uint32_t ring_pos(const struct nvemu_cq *cq)
{
	/* Position modulo 2 * size: the phase says which lap the tail is on. */
	return cq->tail + (cq->phase ? 0 : cq->size);
}

/* Could the next poll create or delete queues, or change CC? */
NO_COV static bool queues_may_change(void)
{
	const struct nvemu_sq *sq = &e->sq[0];
	uint32_t tail = sq->tail, db = e->db[0];

	if (atomic_load(&e->cc_seq) != e->cc_seen)
		return true;
	if (!sq->live)
		return false;
	if (db < sq->size)
		tail = db;
	for (uint32_t h = sq->head, n = 0; h != tail && n < 64; h = (h + 1) % sq->size, n++) {
		const uint8_t *p = host_ptr(sq->base + (uint64_t)h * NVME_SQE_SIZE, NVME_SQE_SIZE);

		if (!p)
			return true; /* cannot tell */
		if (p[0] == nvme_admin_create_cq || p[0] == nvme_admin_delete_cq ||
		    p[0] == nvme_admin_create_sq || p[0] == nvme_admin_delete_sq)
			return true;
	}
	return false;
}

NO_COV static void snapshot(void)
{
	pre_skip = queues_may_change();
	for (unsigned q = 0; q < NQ; q++) {
		const struct nvemu_cq *cq = &e->cq[q];
		const struct nvemu_sq *sq = &e->sq[q];

		pre_cq[q].live = cq->live;
		pre_cq[q].base = cq->base;
		pre_cq[q].size = cq->size;
		pre_cq[q].head = cq->head;
		pre_cq[q].tail = cq->tail;
		pre_cq[q].pos = ring_pos(cq);
		pre_cq[q].db = e->db[2 * q + 1];
		pre_sq[q].live = sq->live;
		pre_sq[q].base = sq->base;
		pre_sq[q].size = sq->size;
		pre_sq[q].head = sq->head;
		pre_sq[q].tail = sq->tail;
		pre_sq[q].db = e->db[2 * q];
	}
}

NO_COV static void check_ring(unsigned q)
{
	const struct nvemu_cq *cq = &e->cq[q];
	const struct nvemu_sq *sq = &e->sq[q];

	if (pre_cq[q].live && cq->live && pre_cq[q].base == cq->base &&
	    pre_cq[q].size == cq->size) {
		uint32_t size = cq->size, h = pre_cq[q].db, he = pre_cq[q].head, t = pre_cq[q].tail;
		uint32_t posted = (ring_pos(cq) + 2 * size - pre_cq[q].pos) % (2 * size);
		bool sane = true;

		if (h >= size) /* ignored by the controller: its own head stands */
			h = he;
		else if ((h + size - he) % size > (t + size - he) % size)
			sane = false; /* the host moved its head backwards or past the tail */
		if (sane && (t + size - h) % size + posted > size - 1)
			FAIL("CQ %u overrun: %u entries unconsumed (host head %u, tail %u), a poll "
			     "posted %u more, size %u",
			     q, (t + size - h) % size, h, t, posted, size);
	}
	if (pre_sq[q].live && sq->live && pre_sq[q].base == sq->base &&
	    pre_sq[q].size == sq->size) {
		uint32_t size = sq->size, t = pre_sq[q].db < size ? pre_sq[q].db : pre_sq[q].tail;
		uint32_t fetched = (sq->head + size - pre_sq[q].head) % size;

		if (fetched > (t + size - pre_sq[q].head) % size)
			FAIL("SQ %u fetched past its tail: head %u -> %u, tail %u, size %u", q,
			     pre_sq[q].head, sq->head, t, size);
	}
}

NO_COV static void check(void)
{
	uint32_t csts = atomic_load(&e->csts), cc = e->cc_applied;
	unsigned shst = NVME_CSTS_SHST(csts), nsq[NQ], held[NQ];

	if (csts & ~(RDY | CFS | NVME_CSTS_SHST_MASK << NVME_CSTS_SHST_SHIFT))
		FAIL("CSTS %#x has bits other than RDY, CFS, SHST", csts);
	if (shst == NVME_CSTS_SHST_OCCUR || shst == 3)
		FAIL("CSTS %#x: SHST %u after a poll returned", csts, shst);
	if (reg_read(NVME_REG_CSTS) != csts)
		FAIL("CSTS register %#x differs from the state %#x", reg_read(NVME_REG_CSTS), csts);
	if (atomic_load(&e->cc_seq) != e->cc_seen)
		FAIL("a CC write was not applied by the poll");
	if ((csts & RDY) && !e->enabled)
		FAIL("CSTS.RDY set while the controller is not enabled");
	if (e->enabled && !NVME_CC_EN(cc))
		FAIL("enabled with CC.EN clear");
	if (NVME_CC_EN(cc) && !(csts & RDY) && !(csts & CFS))
		FAIL("CC.EN applied, CSTS %#x has neither RDY nor CFS", csts);
	if (e->enabled && (!e->sq[0].live || !e->cq[0].live))
		FAIL("enabled without live admin queues");
	if (e->npending > NVEMU_PENDING)
		FAIL("npending %u", e->npending);
	if (e->ninflight != 0)
		FAIL("ninflight %u after a poll (RAM store)", e->ninflight);
	if (e->naer > NVEMU_AERL + 1 ||
	    e->naer_events > sizeof(e->aer_events) / sizeof(e->aer_events[0]))
		FAIL("naer %u, naer_events %u", e->naer, e->naer_events);
	if (e->nsqa >= e->nr_queues || e->ncqa >= e->nr_queues)
		FAIL("nsqa %u ncqa %u of %u queues", e->nsqa, e->ncqa, e->nr_queues);
	memset(nsq, 0, sizeof(nsq));
	memset(held, 0, sizeof(held));
	for (unsigned i = 0; i < e->npending; i++) {
		const struct nvemu_pending *p = &e->pending[i];

		if (p->sqid == 0 || p->sqid >= NQ || !e->sq[p->sqid].live)
			FAIL("a held completion for SQ %u, which is not a live I/O SQ", p->sqid);
		held[e->sq[p->sqid].cqid]++;
	}
	for (unsigned q = 0; q < NQ; q++) {
		const struct nvemu_sq *sq = &e->sq[q];

		if (!sq->live)
			continue;
		if (sq->size < 2 || sq->head >= sq->size || sq->tail >= sq->size ||
		    sq->cqid >= NQ || !e->cq[sq->cqid].live || (q == 0) != (sq->cqid == 0))
			FAIL("SQ %u: size %u head %u tail %u cqid %u", q, sq->size, sq->head,
			     sq->tail, sq->cqid);
		nsq[sq->cqid]++;
	}
	for (unsigned q = 0; q < NQ; q++) {
		const struct nvemu_cq *cq = &e->cq[q];

		if (cq->live && (cq->size < 2 || cq->head >= cq->size || cq->tail >= cq->size ||
				 cq->phase > 1 || cq->owed > cq->size - 1 || cq->nsq != nsq[q] ||
				 cq->owed != held[q]))
			FAIL("CQ %u: size %u head %u tail %u phase %u owed %u (%u held) nsq %u (%u "
			     "live SQs)",
			     q, cq->size, cq->head, cq->tail, cq->phase, cq->owed, held[q], cq->nsq,
			     nsq[q]);
	}
	if (!pre_skip)
		for (unsigned q = 0; q < NQ; q++)
			check_ring(q);
}

/* The host's view follows queues that appeared, vanished or moved. */
NO_COV static void sync_host(void)
{
	for (unsigned q = 0; q < NQ; q++) {
		const struct nvemu_sq *sq = &e->sq[q];
		const struct nvemu_cq *cq = &e->cq[q];

		if (sq->live != hsq[q].live || sq->base != hsq[q].base || sq->size != hsq[q].size) {
			hsq[q].live = sq->live;
			hsq[q].base = sq->base;
			hsq[q].size = sq->size;
			hsq[q].tail = sq->tail;
		}
		if (cq->live != hcq[q].live || cq->base != hcq[q].base || cq->size != hcq[q].size) {
			hcq[q].live = cq->live;
			hcq[q].base = cq->base;
			hcq[q].size = cq->size;
			hcq[q].head = cq->head;
		}
	}
}

static void poll_once(void)
{
	snapshot();
	nvemu_poll(e);
	check();
	sync_host();
}

/* ---- host actions ---------------------------------------------------------------- */

/* PCI Command: memory space and, unless master is false, bus mastering (DMA). */
static void set_command(bool master)
{
	uint16_t cmd = PCI_COMMAND_MEMORY | (master ? PCI_COMMAND_MASTER : 0);

	if (vfu_cfg_client_write(e->dev, PCI_COMMAND, &cmd, sizeof(cmd)) != sizeof(cmd))
		FAIL("config write refused");
}

static void bring_up(void)
{
	set_command(true);
	reg_write(NVME_REG_AQA, (ADMIN_ENTS - 1) << 16 | (ADMIN_ENTS - 1));
	reg_write(NVME_REG_ASQ, (uint32_t)HOST_IOVA);
	reg_write(NVME_REG_ASQ + 4, 0);
	reg_write(NVME_REG_ACQ, (uint32_t)(HOST_IOVA + 0x1000));
	reg_write(NVME_REG_ACQ + 4, 0);
	reg_write(NVME_REG_CC, CC_ON);
	for (unsigned i = 0; i < 4 && !(reg_read(NVME_REG_CSTS) & RDY); i++)
		poll_once();
}

static void reinit(void)
{
	reg_write(NVME_REG_CC, 0);
	for (unsigned i = 0; i < 4 && (reg_read(NVME_REG_CSTS) & RDY); i++)
		poll_once();
	bring_up();
}

static void ring_sq(unsigned q)
{
	e->db[2 * q] = hsq[q].tail;
}

/* Write cmd at the host's tail of SQ q and advance it. */
static void submit(unsigned q, const struct nvme_sqe *cmd, bool ring)
{
	uint8_t *p;

	if (!hsq[q].live || hsq[q].size < 2)
		return;
	p = host_ptr(hsq[q].base + (uint64_t)hsq[q].tail * NVME_SQE_SIZE, NVME_SQE_SIZE);
	if (p)
		memcpy(p, cmd, sizeof(*cmd));
	hsq[q].tail = (hsq[q].tail + 1) % hsq[q].size;
	if (ring)
		ring_sq(q);
}

static volatile uint32_t reaped_sum;

/* Consume up to n posted entries (never past the controller's tail) and write the head. */
static void reap(unsigned q, unsigned n, bool write_db)
{
	const struct nvemu_cq *cq = &e->cq[q];
	uint32_t size = hcq[q].size, avail;

	if (!hcq[q].live || !cq->live || size < 2)
		return;
	avail = (cq->tail + size - hcq[q].head % size) % size;
	if (!n || n > avail)
		n = avail;
	for (unsigned i = 0; i < n; i++) {
		const struct nvme_cqe *c =
		    host_ptr(hcq[q].base + (uint64_t)hcq[q].head * NVME_CQE_SIZE, NVME_CQE_SIZE);

		if (c)
			reaped_sum += c->status ^ c->cid;
		hcq[q].head = (hcq[q].head + 1) % size;
	}
	if (write_db)
		e->db[2 * q + 1] = hcq[q].head;
}

static const char *const fault_specs[] = {
    "clear", "drop", "drop=3", "error", "error=2:0x4004", "error=1:0x7fff", "dup-cid", "dup-cid=8",
    "bogus-cid", "bogus-cid=2", "bad-sq-head", "bad-sq-head=3", "fatal", "hang", "latency=1",
    "latency=0", "latency=1us,drop", "error=0:0x6", "dup-cid=1000000", "drop=0", "bogus,",
    "error=1:0", "latency=1,dup-cid=3,bogus-cid,bad-sq-head",
    /* held for the whole input: Abort and SQ deletion find them */
    "latency=1s", "latency=20ms,dup-cid=2"};

static void inject(unsigned sel)
{
	(void)udrv_emu_nvme_inject(e,
				   fault_specs[sel % (sizeof(fault_specs) / sizeof(*fault_specs))]);
}

static void sensible_reg(unsigned sel, uint32_t v)
{
	static const uint32_t ccs[] = {
	    CC_ON,
	    0,
	    CC_ON | NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT,
	    CC_ON | NVME_CC_SHN_ABRUPT << NVME_CC_SHN_SHIFT,
	    NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT,
	    CC_ON & ~(0xfu << 20),		   /* IOCQES 0 */
	    CC_ON | 1u << 7,			   /* MPS 1 */
	    CC_ON | 1u << 11,			   /* AMS WRR */
	    CC_ON | 7u << 4,			   /* CSS 7 */
	    (CC_ON & ~(0xffu << 16)) | 0x7u << 16, /* IOSQES 7 */
	};

	switch (sel % 8) {
	case 0:
		reg_write(NVME_REG_CC, ccs[v % (sizeof(ccs) / sizeof(*ccs))]);
		break;
	case 1: /* queue sizes: 1..64 entries each */
		reg_write(NVME_REG_AQA, (v >> 8) % 64 << 16 | v % 64);
		break;
	case 2:
	case 4:
		reg_write(sel % 8 == 2 ? NVME_REG_ASQ : NVME_REG_ACQ,
			  (uint32_t)reloc((uint64_t)v << 12));
		reg_write((sel % 8 == 2 ? NVME_REG_ASQ : NVME_REG_ACQ) + 4, 0);
		break;
	default:
		reg_write(NVME_REG_INTMS + 4 * (sel & 1), v);
	}
}

/* Register accesses of any kind, through the callbacks as REGION_READ/WRITE would: reads,
 * 64-bit writes, read-only and reserved registers, bad sizes and alignment. */
static void odd_reg(unsigned sel, uint32_t v)
{
	const struct vfu_bar *b = &e->dev->bars[NVEMU_BAR_REGS];
	uint64_t off = v % 0x40 & ~3u, v64[1] = {(uint64_t)v << 32 | v};
	uint8_t buf[8] = {0};

	switch (sel % 4) {
	case 0: /* every register, as 32- and 64-bit reads */
		for (off = 0; off < 0x48; off += 4)
			(void)reg_read(off);
		for (off = 0; off < 0x48; off += 8)
			(void)b->ops->read(b->ctx, NVEMU_BAR_REGS, off, buf, 8);
		break;
	case 1: /* a 64-bit write */
		if (v & 1)
			v64[0] = reloc(v64[0]) & ~0xfffull;
		(void)b->ops->write(b->ctx, NVEMU_BAR_REGS, off & ~7u, v64, 8);
		break;
	case 2: /* a 32-bit write anywhere, read-only registers included */
		reg_write(off, v);
		break;
	default: /* refused: a bad size or alignment */
		if (b->ops->write(b->ctx, NVEMU_BAR_REGS, off + 1 + v % 3, buf, 4) != -EINVAL ||
		    b->ops->read(b->ctx, NVEMU_BAR_REGS, off, buf, 1 + v % 3) != -EINVAL ||
		    b->ops->write(b->ctx, NVEMU_BAR_REGS, (off & ~7u) + 4 * (v & 1), buf, 8) !=
			(v & 1 ? -EINVAL : 8))
			FAIL("a misaligned or odd-sized register access was not refused");
	}
}

static void raw_reg(unsigned sel, uint32_t v)
{
	static const uint32_t offs[] = {NVME_REG_CC,	  NVME_REG_AQA,	 NVME_REG_ASQ,
					NVME_REG_ASQ + 4, NVME_REG_ACQ,	 NVME_REG_ACQ + 4,
					NVME_REG_INTMS,	  NVME_REG_INTMC};

	if (sel % 16 >= 8)
		odd_reg(sel, v);
	else
		reg_write(offs[sel % 8], v);
}

/* PRP list at host page lp: n entries pointing at consecutive pages from fp. */
static void prp_list(unsigned lp, unsigned fp, unsigned n, bool chain)
{
	uint64_t *l = (uint64_t *)(host + (uint64_t)(lp % (HOST_SIZE / 4096)) * 4096);

	n = n % 512 + 1;
	for (unsigned i = 0; i < n; i++)
		l[i] = HOST_IOVA + (uint64_t)((fp + i) % (HOST_SIZE / 4096)) * 4096;
	if (chain)
		l[511] = HOST_IOVA + (uint64_t)((lp + 1) % (HOST_SIZE / 4096)) * 4096;
}

static uint64_t data_page(unsigned page)
{
	return HOST_IOVA + DATA_AREA + (uint64_t)(page % 256) * 4096;
}

/* n PRP entries for the consecutive pages from first, as a list at iova at: when the list
 * reaches the last slot of a page with more than one entry left, that slot points to the
 * next page and the list goes on there (4.3). */
static void build_prps(uint64_t at, uint64_t first, unsigned n)
{
	for (unsigned i = 0; i < n;) {
		uint64_t *slot = host_ptr(at, 8);

		if (!slot)
			return;
		if ((at & 0xfff) == 0xff8 && n - i > 1) {
			at = (at & ~0xfffull) + 0x1000;
			*slot = at;
			continue;
		}
		*slot = first + 4096ull * i++;
		at += 8;
	}
}

/*
 * A well-formed NVM command, or one slightly off: [q][opc][nsid][slba:2][nlb][page][mode].
 * mode bits 1:0: PRPs, PRPs, one SGL data block, an SGL segment of two descriptors;
 * bit 2: chained (a PRP list crossing into a second page, or a Segment then a Last
 * Segment); bit 3: a bit bucket for the first half of an SGL read; bit 4: FUA; bit 5:
 * deallocate (Write Zeroes DEAC, DSM AD); bit 6: data at an offset into its page; bit 7: an
 * SLBA beyond every namespace.
 */
static void io_cmd(const uint8_t *a, bool ring)
{
	static const uint8_t opcs[] = {nvme_cmd_read,  nvme_cmd_write,	      nvme_cmd_compare,
				       nvme_cmd_flush, nvme_cmd_write_zeroes, nvme_cmd_dsm};
	unsigned q = 1 + a[0] % 4, mode = a[7];
	struct nvme_sqe c = {.cid = next_cid++};
	uint32_t nlb = a[5], bytes;
	uint64_t data = data_page(a[6]);
	/* Two list pages per command, 16 commands before they are reused. */
	uint64_t list = HOST_IOVA + LIST_AREA + (uint64_t)(c.cid % 16) * 8192;

	c.opc = a[1] % 8 < 6 ? opcs[a[1] % 8] : a[1] >> 3;
	c.nsid = a[2] == 3 ? 0xffffffffu : a[2] < 3 ? a[2] : a[2] % 4;
	c.cdw10 = le16(a + 3);
	c.cdw11 = mode & 0x80 ? 0xffffffffu : 0;
	c.cdw12 = nlb | (mode & 0x10 ? 1u << 30 : 0) | (mode & 0x20 ? 1u << 25 : 0);
	bytes = (nlb + 1) << e->lba_shift;
	if (c.opc == nvme_cmd_dsm) {
		c.cdw10 = nlb; /* ranges - 1 */
		c.cdw11 = mode & 0x20 ? NVME_DSM_AD : 0;
		bytes = (nlb + 1) * 16;
	}
	if (mode & 0x40)
		data += (uint64_t)(a[4] & 0x3f) * 64 + 4; /* a dword offset into the page */
	switch (mode % 4) {
	case 0:
	case 1: { /* PRPs */
		uint64_t first = 4096 - (data & 0xfff);

		c.prp1 = data;
		if (bytes <= first)
			break;
		if (bytes - first <= 4096) {
			c.prp2 = (data & ~0xfffull) + 4096;
			break;
		}
		c.prp2 = list + (mode & 4 ? 0xfe0 : 0);
		build_prps(c.prp2, (data & ~0xfffull) + 4096, (bytes - first + 4095) / 4096);
		break;
	}
	case 2: /* one data block descriptor */
		c.flags = NVME_CMD_PSDT_SGL;
		c.sgl = (struct nvme_sgl_desc){.addr = data, .len = bytes};
		break;
	case 3: { /* two data blocks (or a bit bucket, then a block) in one or two segments */
		struct nvme_sgl_desc *d = host_ptr(list, 64);
		uint32_t half = bytes / 2;

		c.flags = NVME_CMD_PSDT_SGL;
		c.sgl = (struct nvme_sgl_desc){
		    .addr = list, .len = 32, .id = NVME_SGL_TYPE_LAST_SEGMENT << 4};
		d[0] = (struct nvme_sgl_desc){.addr = data, .len = half};
		if (mode & 0x08)
			d[0].id = NVME_SGL_TYPE_BIT_BUCKET << 4;
		d[1] = (struct nvme_sgl_desc){.addr = data + 0x10000, .len = bytes - half};
		if (mode & 4) { /* d[1] moves to a last segment of its own */
			c.sgl.id = NVME_SGL_TYPE_SEGMENT << 4;
			d[2] = d[1];
			d[1] = (struct nvme_sgl_desc){
			    .addr = list + 32, .len = 16, .id = NVME_SGL_TYPE_LAST_SEGMENT << 4};
		}
		break;
	}
	}
	submit(q, &c, ring);
}

static const uint8_t fids[] = {
    NVME_FEAT_FID_ARBITRATION, NVME_FEAT_FID_POWER_MGMT,
    NVME_FEAT_FID_TEMP_THRESH, NVME_FEAT_FID_VOLATILE_WC,
    NVME_FEAT_FID_NUM_QUEUES,  NVME_FEAT_FID_IRQ_COALESCE,
    NVME_FEAT_FID_IRQ_CONFIG,  NVME_FEAT_FID_ASYNC_EVENT,
    NVME_FEAT_FID_KATO,	       0x05, /* error recovery: not supported */
};

/* A well-formed admin command, or one slightly off. flags: 0x10 raw queue id, 0x20 raw
 * queue size, 0x40 misaligned / offset buffer. */
static void admin_cmd(const uint8_t *a, unsigned flags, bool ring)
{
	unsigned which = a[0] % 12, qb = a[1], arg = le16(a + 2);
	unsigned qid = flags & 0x10 ? qb : 1 + qb % 4;
	uint32_t qsize = flags & 0x20 ? arg : arg % 64 + 1; /* 0's based */
	uint64_t qarea = HOST_IOVA + Q_AREA + (uint64_t)(qid % 8) * 0x2000;
	uint64_t data = data_page(arg >> 4) + (flags & 0x40 ? 0x100 : 0);
	struct nvme_sqe c = {.cid = next_cid++, .prp1 = data, .prp2 = (data & ~0xfffull) + 4096};

	switch (which) {
	case 0:
		c.opc = nvme_admin_create_cq;
		c.cdw10 = qsize << 16 | qid;
		c.cdw11 = NVME_QUEUE_PC | (arg & 0x8000 ? NVME_CQ_IEN : 0) |
			  (arg & 0x4000 ? (arg >> 8) & 7 : qid) << 16;
		c.prp1 = qarea + (flags & 0x40 ? 0x10 : 0);
		c.prp2 = 0;
		break;
	case 1:
		c.opc = nvme_admin_create_sq;
		c.cdw10 = qsize << 16 | qid;
		c.cdw11 = NVME_QUEUE_PC | (arg & 0x4000 ? (arg >> 8) & 7 : qid) << 16;
		c.prp1 = qarea + 0x1000 + (flags & 0x40 ? 0x10 : 0);
		c.prp2 = 0;
		break;
	case 2:
		c.opc = nvme_admin_delete_sq;
		c.cdw10 = qid;
		break;
	case 3:
		c.opc = nvme_admin_delete_cq;
		c.cdw10 = qid;
		break;
	case 4:
		c.opc = nvme_admin_identify;
		c.cdw10 = arg & 7;
		c.nsid = qb == 0xff ? 0xffffffffu : qb % 4;
		break;
	case 5: { /* log page: error, SMART, firmware slot, or another */
		static const uint8_t lids[] = {NVME_LOG_LID_ERROR, NVME_LOG_LID_SMART,
					       NVME_LOG_LID_FW_SLOT, 0x04};

		c.opc = nvme_admin_get_log_page;
		c.cdw10 = lids[arg & 3] | (arg & 4 ? 1u << 15 : 0) | ((arg >> 3) & 0x3ff) << 16;
		c.cdw12 = (qb & 0x3f) * 4 + (qb & 0x40 ? 1 : 0);
		c.nsid = qb & 0x80 ? 0xffffffffu : 0;
		break;
	}
	case 6:
		c.opc = nvme_admin_get_features;
		c.cdw10 = fids[qb % sizeof(fids)] | ((arg >> 8) & 7) << 8;
		c.cdw11 = arg & 0xff;
		break;
	case 7:
		c.opc = nvme_admin_set_features;
		c.cdw10 = fids[qb % sizeof(fids)] | (arg & 0x8000 ? 1u << 31 : 0);
		c.cdw11 = arg & 0x7fff;
		if (fids[qb % sizeof(fids)] == NVME_FEAT_FID_IRQ_CONFIG)
			c.cdw11 = (arg & 7) | (arg & 0x100 ? 1u << 16 : 0);
		break;
	case 8:
		c.opc = nvme_admin_abort_cmd;
		c.cdw10 = qb % NQ | (uint32_t)arg << 16;
		break;
	case 9:
		c.opc = nvme_admin_async_event;
		break;
	case 10:
		c.opc = nvme_admin_keep_alive;
		break;
	default:
		c.opc = nvme_admin_set_features;
		c.cdw10 = NVME_FEAT_FID_NUM_QUEUES;
		c.cdw11 = (arg >> 8) << 16 | (arg & 0xff);
		break;
	}
	submit(0, &c, ring);
}

/* ---- the harness ----------------------------------------------------------------- */

static int memfd_of(const char *name, size_t size, uint8_t **view)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		FAIL("memfd: %s", strerror(errno));
	*view = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*view == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	return fd;
}

static void map_window(uint64_t iova, uint64_t size, uint32_t flags, int fd, uint64_t off)
{
	struct vfio_user_dma_map m = {
	    .argsz = sizeof(m), .flags = flags, .offset = off, .addr = iova, .size = size};
	/* vfu_dma_map() takes the fd: give it its own. */
	int dfd = fd >= 0 ? dup(fd) : -1;

	if (vfu_dma_map(e->dev, &m, dfd) < 0)
		FAIL("vfu_dma_map(%#llx): %s", (unsigned long long)iova, udrv_errmsg());
}

static void cleanup(void)
{
	udrv_emu_nvme_destroy(e);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const uint32_t rw = VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE;
	struct udrv_emu_nvme_opts o = {
	    .socket_path = sock_path,
	    .size = 4u << 20,
	    .namespaces = 2,
	    .queues = NQ - 1,
	    .max_entries = 64,
	};

	(void)argc;
	(void)argv;
	udrv_log_set_level(UDRV_LOG_ERR); /* fatal status and hangs warn; they are expected */
	snprintf(sock_path, sizeof(sock_path), "/tmp/udrv-fuzz-nvme-emu-%d.sock", (int)getpid());
	e = udrv_emu_nvme_create(&o);
	if (!e)
		FAIL("udrv_emu_nvme_create: %s", udrv_errmsg());
	e->cc_sync = false; /* no device thread: nvemu_poll() is called here */
	unlink(sock_path);  /* never served: leave no file behind, even after a crash */
	atexit(cleanup);
	if (e->nr_queues != NQ - 1 || e->mqes != 63)
		FAIL("controller options not applied");

	host_fd = memfd_of("fuzz-host", HOST_SIZE, &host);
	aux_fd = memfd_of("fuzz-aux", AUX_SIZE, &aux);
	map_window(HOST_IOVA, HOST_SIZE, rw, host_fd, 0);
	map_window(MSG_IOVA, MSG_SIZE, rw, -1, 0);
	map_window(AUX_IOVA, AUX_SIZE / 2, VFIO_USER_F_DMA_REGION_READ, aux_fd, 0);
	map_window(AUX_IOVA + AUX_SIZE / 2, AUX_SIZE / 2, VFIO_USER_F_DMA_REGION_WRITE, aux_fd,
		   AUX_SIZE / 2);
	return 0;
}

static void reset_all(void)
{
	(void)udrv_emu_nvme_inject(e, "clear");
	e->dev->opts.reset(e->dev->opts.ctx); /* as a client's DEVICE_RESET */
	memset(e->errlog, 0, sizeof(e->errlog));
	e->error_count = 0;
	if (nvemu_backing_zero(e->store, 0, nvemu_backing_size(e->store), true) < 0)
		FAIL("zeroing the store failed");
	/* Zero host memory; both our mappings and the controller's see the hole. */
	if (fallocate(host_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, HOST_SIZE) < 0)
		memset(host, 0, HOST_SIZE);
	if (fallocate(aux_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, AUX_SIZE) < 0)
		memset(aux, 0, AUX_SIZE);
	memset(hsq, 0, sizeof(hsq));
	memset(hcq, 0, sizeof(hcq));
	next_cid = 0;
}

/* Payload bytes of each kind. */
static const uint8_t payload[16] = {64, 65, 6, 2, 66, 5, 9, 5, 0, 1, 1, 0, 8, 4, 1, 0};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i = 0;

	reset_all();
	bring_up();
	if (!(reg_read(NVME_REG_CSTS) & RDY))
		FAIL("the controller did not become ready");

	for (unsigned ops = 0; ops < MAX_OPS && i < size; ops++) {
		unsigned op = data[i], kind = op & 0xf, flags = op & 0xf0;
		const uint8_t *a = data + i + 1;
		bool ring = !(flags & 0x40) || kind == 13, polls = !(flags & 0x80);

		if (size - i - 1 < payload[kind])
			break;
		i += 1 + payload[kind];
		switch (kind) {
		case 0:
		case 1: {
			struct nvme_sqe c;
			unsigned q = kind ? 1 + a[0] % 4 : 0;

			memcpy(&c, a + kind, sizeof(c));
			if (flags & 0x10)
				c.prp1 = reloc(c.prp1);
			if (flags & 0x20)
				c.prp2 = reloc(c.prp2);
			submit(q, &c, ring);
			break;
		}
		case 2: {
			unsigned idx = le16(a) % 1024;
			uint32_t v = le32(a + 2);

			if (flags & 0x10)
				v %= 80;
			e->db[idx] = v;
			if (idx < 2 * NQ && idx % 2 == 0 && v < hsq[idx / 2].size)
				hsq[idx / 2].tail = v;
			if (idx < 2 * NQ && idx % 2 == 1 && v < hcq[idx / 2].size)
				hcq[idx / 2].head = v;
			break;
		}
		case 3:
			reap(a[0] % NQ, a[1], !(flags & 0x10));
			break;
		case 4:
			if (flags & 0x10)
				memcpy(aux + (le16(a) * 64u) % AUX_SIZE, a + 2, 64);
			else
				memcpy(host + (le16(a) * 64u) % HOST_SIZE, a + 2, 64);
			polls = false; /* host memory only: nothing for the controller to see */
			break;
		case 5:
			prp_list(le16(a), le16(a + 2), a[4], flags & 0x10);
			polls = false;
			break;
		case 6: {
			struct nvme_sgl_desc d = {
			    .addr = reloc(le16(a + 7) * 16ull), .len = le32(a + 3), .id = a[2]};

			if (flags & 0x10)
				d.len %= 8192;
			memcpy(host + (le16(a) * 16u) % HOST_SIZE, &d, sizeof(d));
			polls = false;
			break;
		}
		case 7:
			if (flags & 0x10)
				sensible_reg(a[0], le32(a + 1));
			else
				raw_reg(a[0], le32(a + 1));
			break;
		case 8:
			reinit();
			break;
		case 9:
			inject(a[0]);
			break;
		case 10:
			for (unsigned n = a[0] % 8; n; n--)
				poll_once();
			break;
		case 11: /* checked by the next poll, which snapshots the state first */
			if (flags & 0x20)
				set_command(flags & 0x10);
			else if (flags & 0x10)
				e->dev->opts.disconnected(e->dev->opts.ctx);
			else
				e->dev->opts.reset(e->dev->opts.ctx);
			sync_host();
			break;
		case 12:
			io_cmd(a, ring);
			break;
		case 13:
			admin_cmd(a, flags, ring);
			break;
		case 14:
			ring_sq(a[0] % NQ);
			break;
		default:
			break;
		}
		if (polls)
			poll_once();
	}
	for (unsigned q = NQ; q <= NVEMU_MAX_QID; q++)
		if (e->sq[q].live || e->cq[q].live)
			FAIL("queue %u live beyond the %u offered", q, NQ - 1);
	/* Drain: a few more passes, consuming everything, still checked. */
	for (unsigned n = 0; n < 3; n++) {
		for (unsigned q = 0; q < NQ; q++)
			reap(q, 0, true);
		poll_once();
	}
	return 0;
}
