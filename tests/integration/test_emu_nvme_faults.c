/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller's injected faults, seen from a host (nvme_host.c): latency,
 * lost, failed, duplicated and bogus completions, fatal status, a hung controller, surprise
 * removal, and the control socket through `udrv emu fault`. Then robustness: clients that
 * send garbage, a host that writes random registers, doorbells and commands, and a client
 * process that dies mid-I/O; after each, the next client is served normally.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <udrv/log.h>

#include "nvme_host.h"
#include "proto/vfio_user.h"
#include "test.h"

#define SC_G(sc) NVME_STATUS(NVME_SCT_GENERIC, sc)
#define AQ	 32
#define QSIZE	 32
#define QUEUES	 4

static struct udrv_emu_nvme *emu;
static char sock[128], ctl[128];

/* A connected, enabled host with I/O queue pair 1 and a 64 KiB buffer. */
static struct nvme_host *up(uint8_t **buf)
{
	struct nvme_host *h;

	REQUIRE(nh_open(sock, &h) == 0);
	REQUIRE(nh_enable(h, AQ) == 0);
	REQUIRE(nh_create_qpair(h, 1, QSIZE) == 0);
	*buf = nh_alloc(h, 64 * 1024, NULL);
	REQUIRE(*buf);
	return h;
}

/* Submit a one-block read of lba on queue 1; returns its cid. */
static uint16_t read_async(struct nvme_host *h, uint8_t *buf, uint64_t lba)
{
	struct nvme_sqe c;
	int cid;

	nh_rw_cmd(&c, nvme_cmd_read, 1, lba, 1);
	nh_prp(h, &c, buf, 512);
	cid = nh_submit(h, 1, &c);
	REQUIRE(cid > 0);
	return (uint16_t)cid;
}

static int read1(struct nvme_host *h, uint8_t *buf, uint64_t lba)
{
	return nh_io(h, 1, nvme_cmd_read, 1, lba, 1, buf, 512);
}

static uint64_t fired(void)
{
	struct udrv_emu_nvme_stats st;

	udrv_emu_nvme_stats(emu, &st);
	return st.faults_fired;
}

static void test_latency(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);
	struct nvme_cqe e;
	uint16_t cid[8];
	double t0;

	CHECK_EQ(udrv_emu_nvme_inject(emu, "latency=150ms"), 0);
	t0 = nh_now();
	CHECK_EQ(read1(h, buf, 0), 0);
	CHECK(nh_now() - t0 >= 0.150);
	/* Eight in flight: each held its own 150 ms, not 8 x 150 ms. */
	t0 = nh_now();
	for (int i = 0; i < 8; i++)
		cid[i] = read_async(h, buf + 512 * i, (uint64_t)i);
	for (int i = 0; i < 8; i++) {
		CHECK_EQ(nh_wait(h, 1, cid[i], &e, 2000), 0);
		CHECK_EQ(NVME_CQE_STATUS(&e), 0);
	}
	CHECK(nh_now() - t0 >= 0.150);
	CHECK(nh_now() - t0 < 1.0);
	/* Admin commands are never delayed. */
	t0 = nh_now();
	CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_CTRL, 0, buf), 0);
	CHECK(nh_now() - t0 < 0.150);
	CHECK_EQ(udrv_emu_nvme_inject(emu, "latency=0"), 0);
	t0 = nh_now();
	CHECK_EQ(read1(h, buf, 0), 0);
	CHECK(nh_now() - t0 < 0.150);
	nh_close(h);
}

static void test_drop(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);
	struct nvme_cqe e;
	struct nvme_sqe w;
	uint64_t f0 = fired();
	int a, b;

	memset(buf, 0xd7, 512);
	CHECK_EQ(udrv_emu_nvme_inject(emu, "drop=1"), 0);
	nh_rw_cmd(&w, nvme_cmd_write, 1, 10, 1);
	nh_prp(h, &w, buf, 512);
	a = nh_submit(h, 1, &w);
	b = read_async(h, buf + 4096, 11);
	CHECK_EQ(nh_wait(h, 1, (uint16_t)b, &e, 2000), 0);
	CHECK_EQ(NVME_CQE_STATUS(&e), 0);
	CHECK_EQ(nh_wait(h, 1, (uint16_t)a, &e, 500), -ETIMEDOUT);
	CHECK_EQ(fired(), f0 + 1);
	/* The dropped write did execute. */
	memset(buf + 8192, 0, 512);
	CHECK_EQ(read1(h, buf + 8192, 10), 0);
	CHECK(memcmp(buf, buf + 8192, 512) == 0);
	/* A count: the next two are lost, the third is not. */
	CHECK_EQ(udrv_emu_nvme_inject(emu, "drop=2"), 0);
	a = read_async(h, buf, 1);
	b = read_async(h, buf, 2);
	CHECK_EQ(read1(h, buf, 3), 0);
	CHECK_EQ(nh_wait(h, 1, (uint16_t)a, &e, 100), -ETIMEDOUT);
	CHECK_EQ(nh_wait(h, 1, (uint16_t)b, &e, 100), -ETIMEDOUT);
	CHECK_EQ(fired(), f0 + 3);
	/* Admin commands are never hit. */
	CHECK_EQ(udrv_emu_nvme_inject(emu, "drop=1"), 0);
	CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_CTRL, 0, buf + 4096), 0);
	CHECK(nh_wait(h, 1, read_async(h, buf, 0), &e, 500) == -ETIMEDOUT);
	CHECK_EQ(read1(h, buf, 0), 0);
	nh_close(h);
}

static void test_error(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);

	memset(buf, 0x11, 512);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_write, 1, 20, 1, buf, 512), 0);
	/* Two reads fail with Unrecovered Read Error and DNR; the third succeeds. */
	CHECK_EQ(udrv_emu_nvme_inject(emu, "error=2:0x4281"), 0);
	CHECK_EQ(read1(h, buf, 20), 0x4281);
	CHECK_EQ(read1(h, buf, 20), 0x4281);
	CHECK_EQ(read1(h, buf, 20), 0);
	/* The default is Internal Error; a failed write is not executed. */
	CHECK_EQ(udrv_emu_nvme_inject(emu, "error"), 0);
	memset(buf, 0x22, 512);
	CHECK_EQ(nh_sct_sc(nh_io(h, 1, nvme_cmd_write, 1, 20, 1, buf, 512)),
		 SC_G(NVME_SC_INTERNAL));
	CHECK_EQ(read1(h, buf + 4096, 20), 0);
	CHECK_EQ(buf[4096], 0x11);
	CHECK_EQ(buf[4096 + 511], 0x11);
	/* Bad specs are refused whole. */
	CHECK_EQ(udrv_emu_nvme_inject(emu, "error=1:0"), -EINVAL);
	CHECK_EQ(udrv_emu_nvme_inject(emu, "drop=2,bogus"), -EINVAL);
	CHECK_EQ(read1(h, buf, 20), 0); /* drop=2 was not armed */
	CHECK_EQ(read1(h, buf, 20), 0);
	nh_close(h);
}

static void test_dup_cid(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);
	struct nvme_cqe e1, e2;
	uint16_t cid;

	CHECK_EQ(udrv_emu_nvme_inject(emu, "dup-cid"), 0);
	cid = read_async(h, buf, 0);
	CHECK_EQ(nh_next(h, 1, &e1, 2000), 0);
	CHECK_EQ(nh_next(h, 1, &e2, 2000), 0);
	CHECK_EQ(e1.cid, cid);
	CHECK_EQ(e2.cid, cid);
	CHECK_EQ(NVME_CQE_STATUS(&e1), 0);
	CHECK_EQ(NVME_CQE_STATUS(&e2), 0);
	CHECK_EQ(nh_next(h, 1, &e1, 200), -ETIMEDOUT);
	CHECK_EQ(read1(h, buf, 0), 0);
	CHECK_EQ(nh_next(h, 1, &e1, 200), -ETIMEDOUT);
	nh_close(h);
}

static void test_bogus_cid(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);
	struct nvme_cqe e;
	uint16_t cid;

	CHECK_EQ(udrv_emu_nvme_inject(emu, "bogus-cid"), 0);
	cid = read_async(h, buf, 0);
	CHECK_EQ(nh_next(h, 1, &e, 2000), 0);
	CHECK_EQ(e.cid, cid ^ 0x8000);
	CHECK_EQ(nh_wait(h, 1, cid, &e, 200), -ETIMEDOUT);
	CHECK_EQ(read1(h, buf, 0), 0);
	nh_close(h);
}

static void test_bad_sq_head(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);
	struct nvme_cqe e;
	uint16_t cid;

	CHECK_EQ(udrv_emu_nvme_inject(emu, "bad-sq-head"), 0);
	cid = read_async(h, buf, 0);
	CHECK_EQ(nh_wait(h, 1, cid, &e, 2000), 0);
	CHECK(e.sq_head >= QSIZE);
	cid = read_async(h, buf, 0);
	CHECK_EQ(nh_wait(h, 1, cid, &e, 2000), 0);
	CHECK(e.sq_head < QSIZE);
	CHECK_EQ(e.sq_head, h->q[1].sq_tail);
	nh_close(h);
}

static void test_fatal(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);
	struct nvme_cqe e;
	uint32_t csts;
	uint16_t cid;
	int acid;
	struct nvme_sqe ka = {.opc = nvme_admin_keep_alive};

	CHECK_EQ(udrv_emu_nvme_inject(emu, "fatal"), 0);
	CHECK_EQ(nh_wait_csts(h, NH_CFS, NH_CFS, 2000, &csts), 0);
	cid = read_async(h, buf, 0);
	acid = nh_submit(h, 0, &ka);
	CHECK_EQ(nh_wait(h, 1, cid, &e, 300), -ETIMEDOUT);
	CHECK_EQ(nh_wait(h, 0, (uint16_t)acid, &e, 10), -ETIMEDOUT);
	/* A reset recovers. */
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_read32(h, NVME_REG_CSTS, &csts), 0);
	CHECK_EQ(csts, 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(nh_create_qpair(h, 1, QSIZE), 0);
	CHECK_EQ(read1(h, buf, 0), 0);
	CHECK_EQ(h->bad_cqes, 0);
	nh_close(h);
}

/* Completions held by the latency fault die with a reset: none turns up afterwards. */
static void test_latency_then_reset(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);
	struct nvme_cqe e;

	CHECK_EQ(udrv_emu_nvme_inject(emu, "latency=300ms"), 0);
	for (int i = 0; i < 8; i++)
		read_async(h, buf, (uint64_t)i);
	nh_sleep_ms(50);
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu, "latency=0"), 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(nh_create_qpair(h, 1, QSIZE), 0);
	nh_sleep_ms(400);
	CHECK_EQ(nh_next(h, 1, &e, 100), -ETIMEDOUT);
	CHECK_EQ(read1(h, buf, 0), 0);
	CHECK_EQ(h->bad_cqes, 0);
	nh_close(h);
}

/* One client at a time: a second is refused at once; the first carries on. */
static void test_second_client(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf), *h2 = NULL;
	double t0 = nh_now();
	int rc = nh_open(sock, &h2);

	CHECK(rc < 0);
	CHECK(nh_now() - t0 < 2);
	if (rc == 0)
		nh_close(h2);
	CHECK_EQ(read1(h, buf, 0), 0);
	nh_close(h);
}

static void test_hang(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);
	struct nvme_cqe e;
	uint32_t csts;
	uint16_t cid;

	CHECK_EQ(udrv_emu_nvme_inject(emu, "hang"), 0);
	nh_sleep_ms(50);
	cid = read_async(h, buf, 0);
	CHECK_EQ(nh_wait(h, 1, cid, &e, 500), -ETIMEDOUT);
	{ /* admin commands hang too */
		struct nvme_sqe ka = {.opc = nvme_admin_keep_alive};
		int acid = nh_submit(h, 0, &ka);

		CHECK_EQ(nh_wait(h, 0, (uint16_t)acid, &e, 300), -ETIMEDOUT);
	}
	/* It looks alive: no fatal status. */
	CHECK_EQ(nh_read32(h, NVME_REG_CSTS, &csts), 0);
	CHECK_EQ(csts, NH_RDY);
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(nh_create_qpair(h, 1, QSIZE), 0);
	CHECK_EQ(read1(h, buf, 0), 0);
	CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_CTRL, 0, buf), 0);
	nh_close(h);
}

static void test_remove(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);
	struct udrv_emu_nvme_stats st0, st1;
	uint32_t csts;
	double t0;
	int rc = 0;

	udrv_emu_nvme_stats(emu, &st0);
	CHECK_EQ(read1(h, buf, 0), 0);
	CHECK_EQ(udrv_emu_nvme_inject(emu, "remove"), 0);
	t0 = nh_now();
	while (rc == 0 && nh_now() - t0 < 5) {
		rc = nh_read32(h, NVME_REG_CSTS, &csts);
		if (rc == 0)
			nh_sleep_ms(5);
	}
	CHECK_EQ(rc, -ENODEV);
	CHECK_EQ(nh_write32(h, NVME_REG_CC, 0), -ENODEV);
	nh_close(h); /* must not hang with the device gone */
	/* Plugged back: a new connection works. */
	h = up(&buf);
	CHECK_EQ(read1(h, buf, 0), 0);
	udrv_emu_nvme_stats(emu, &st1);
	CHECK_EQ(st1.connects, st0.connects + 1);
	nh_close(h);
}

/* Run the udrv CLI with args; its exit status, stdout into out. */
static int run_cli(char *out, size_t cap, const char *const *args)
{
	int p[2], status = -1;
	size_t have = 0;
	pid_t pid;

	REQUIRE(pipe(p) == 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		char *argv[16];
		int n = 0;

		argv[n++] = (char *)UDRV_CLI;
		for (; args[n - 1] && n < 15; n++)
			argv[n] = (char *)args[n - 1];
		argv[n] = NULL;
		dup2(p[1], 1);
		close(p[0]);
		execv(UDRV_CLI, argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], out + have, cap - 1 - have);

		if (n <= 0)
			break;
		have += (size_t)n;
	}
	out[have] = '\0';
	close(p[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Faults through the control socket: the CLI, and the line protocol itself. */
/* The host takes its queues' memory away while the controller uses them: the controller
 * reports fatal status instead of touching anything, and a reset recovers. */
static void test_queue_memory_unmapped(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);
	struct udrv_dma_mem *m = udrv_dma_mem_alloc(1u << 20, 0);
	struct nvme_sqe c;
	uint8_t *va;
	uint64_t iova;
	uint32_t csts;

	REQUIRE(m);
	REQUIRE(udrv_dma_domain_add(h->dom, m) == 0);
	va = udrv_dma_mem_va(m);
	iova = nh_iova(h, va);
	/* CQ 2 at +0, SQ 2 at +4096, built by hand in that memory. */
	c = (struct nvme_sqe){.opc = nvme_admin_create_cq,
			      .prp1 = iova,
			      .cdw10 = 7u << 16 | 2,
			      .cdw11 = NVME_QUEUE_PC};
	CHECK_EQ(nh_exec(h, 0, &c, NULL), 0);
	c = (struct nvme_sqe){.opc = nvme_admin_create_sq,
			      .prp1 = iova + 4096,
			      .cdw10 = 7u << 16 | 2,
			      .cdw11 = 2u << 16 | NVME_QUEUE_PC};
	CHECK_EQ(nh_exec(h, 0, &c, NULL), 0);
	nh_rw_cmd(&c, nvme_cmd_read, 1, 0, 1);
	nh_prp(h, &c, buf, 512);
	c.cid = 1;
	memcpy(va + 4096, &c, sizeof(c));
	nh_db_write(h, 4, 1);
	for (double end = nh_now() + 2; !(va[14] & 1) && nh_now() < end;)
		usleep(100);
	CHECK(va[14] & 1); /* the first command completed, phase 1 */
	/* Away with it, then ring for a second command. */
	CHECK_EQ(udrv_dma_domain_remove(h->dom, m), 0);
	nh_db_write(h, 4, 2);
	CHECK_EQ(nh_wait_csts(h, NH_CFS, NH_CFS, 2000, &csts), 0);
	CHECK_EQ(nh_disable(h), 0);
	udrv_dma_mem_free(m);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(nh_create_qpair(h, 1, QSIZE), 0);
	CHECK_EQ(read1(h, buf, 0), 0);
	nh_close(h);
}

static void test_control_socket(void)
{
	uint8_t *buf;
	struct nvme_host *h = up(&buf);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char out[4096];
	const char *fault[] = {"emu", "fault", "--control", ctl, "error=1:0x0281", NULL};
	const char *bad[] = {"emu", "fault", "--control", ctl, "explode=1", NULL};
	const char *stats[] = {"emu", "stats", "--control", ctl, NULL};
	ssize_t n;
	int fd;

	CHECK_EQ(run_cli(out, sizeof(out), fault), 0);
	CHECK_EQ(read1(h, buf, 0), 0x0281);
	CHECK_EQ(read1(h, buf, 0), 0);
	CHECK(run_cli(out, sizeof(out), bad) != 0);
	CHECK_EQ(read1(h, buf, 0), 0);
	CHECK_EQ(run_cli(out, sizeof(out), stats), 0);
	CHECK(strstr(out, "io_cmds ") != NULL);
	CHECK(strstr(out, "faults_fired ") != NULL);
	CHECK(strstr(out, "csts 0x1") != NULL);
	{
		struct udrv_emu_nvme_stats st;
		const char *p = strstr(out, "read_cmds ");
		char missing[160];
		const char *nowhere[] = {"emu", "fault", "--control", missing, "drop=1", NULL};

		udrv_emu_nvme_stats(emu, &st);
		CHECK(p && strtoull(p + 10, NULL, 10) == st.read_cmds);
		snprintf(missing, sizeof(missing), "%s/nothing-here", nh_tmpdir());
		CHECK_EQ(run_cli(out, sizeof(out), nowhere), 1);
	}

	/* The protocol by hand. */
	memcpy(a.sun_path, ctl, strnlen(ctl, sizeof(a.sun_path) - 1));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	REQUIRE(fd >= 0);
	REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK_EQ(write(fd, "fault dup-cid=1\n", 16), 16);
	n = read(fd, out, sizeof(out) - 1);
	CHECK(n == 3 && !memcmp(out, "ok\n", 3));
	CHECK_EQ(write(fd, "nonsense\n", 9), 9);
	n = read(fd, out, sizeof(out) - 1);
	CHECK(n > 7 && !memcmp(out, "error: ", 7));
	close(fd);
	{
		struct nvme_cqe e1, e2;
		uint16_t cid = read_async(h, buf, 0);

		CHECK_EQ(nh_next(h, 1, &e1, 2000), 0);
		CHECK_EQ(nh_next(h, 1, &e2, 2000), 0);
		CHECK(e1.cid == cid && e2.cid == cid);
	}
	/* A request cut off by EOF is dropped, not armed. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	REQUIRE(fd >= 0);
	REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK_EQ(write(fd, "fault drop=1", 12), 12);
	close(fd);
	nh_sleep_ms(50);
	CHECK_EQ(read1(h, buf, 0), 0);
	/* An overlong line gets an error and the connection closed; the next client is served. */
	{
		static char big[6000];

		memset(big, 'a', sizeof(big));
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		REQUIRE(fd >= 0);
		REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
		CHECK(send(fd, big, sizeof(big), MSG_NOSIGNAL) > 0);
		n = read(fd, out, sizeof(out) - 1);
		CHECK(n > 7 && !memcmp(out, "error: ", 7));
		close(fd);
	}
	CHECK_EQ(run_cli(out, sizeof(out), stats), 0);
	CHECK(strstr(out, "io_cmds ") != NULL);
	nh_close(h);
}

static void *run_thread(void *e)
{
	return (void *)(intptr_t)udrv_emu_nvme_run(e);
}

/* Start, run, stop and destroy, with a client connected and I/O held. */
static void test_lifecycle(void)
{
	struct udrv_emu_nvme_opts o = {.size = 1 << 20};
	char s[128];
	struct udrv_emu_nvme *e = nh_emu_start(&o, s);
	struct nvme_host *h;
	uint8_t *buf;
	uint32_t csts;
	pthread_t t;
	void *ret;
	double t0;
	int rc = 0;
	static uint8_t id[4096];

	CHECK_EQ(udrv_emu_nvme_start(e), -EBUSY);
	REQUIRE(nh_open(s, &h) == 0);
	REQUIRE(nh_enable(h, AQ) == 0);
	REQUIRE(nh_create_qpair(h, 1, 8) == 0);
	buf = nh_alloc(h, 4096, NULL);
	REQUIRE(buf);
	CHECK_EQ(udrv_emu_nvme_inject(e, "latency=10s"), 0);
	read_async(h, buf, 0);
	nh_sleep_ms(50);
	/* Destroyed under the client's feet: prompt, and the client sees the device gone. */
	t0 = nh_now();
	udrv_emu_nvme_destroy(e);
	CHECK(nh_now() - t0 < 3);
	for (t0 = nh_now(); rc == 0 && nh_now() - t0 < 5;)
		rc = nh_read32(h, NVME_REG_CSTS, &csts);
	CHECK_EQ(rc, -ENODEV);
	nh_close(h);
	CHECK(nh_open(s, &h) < 0);

	/* run() in a thread of ours; stop() makes it return 0. */
	o = (struct udrv_emu_nvme_opts){.size = 1 << 20};
	nh_tmppath(s, sizeof(s), "run.sock");
	o.socket_path = s;
	e = udrv_emu_nvme_create(&o);
	REQUIRE(e);
	REQUIRE(pthread_create(&t, NULL, run_thread, e) == 0);
	rc = -1;
	for (int i = 0; i < 100 && rc < 0; i++) {
		rc = nh_open(s, &h);
		if (rc < 0)
			nh_sleep_ms(20);
	}
	CHECK_EQ(rc, 0);
	if (rc == 0) {
		CHECK_EQ(nh_enable(h, AQ), 0);
		/* (Not into buf: that was the first host's DMA memory, gone with it.) */
		CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_CTRL, 0, id), 0);
		nh_close(h);
	}
	udrv_emu_nvme_stop(e);
	pthread_join(t, &ret);
	CHECK_EQ((intptr_t)ret, 0);
	udrv_emu_nvme_destroy(e);
}

/* `udrv emu nvme` as its own process: the options reach the controller; SIGTERM ends it. */
static void test_cli_server(void)
{
	char s[128], c[128];
	struct nvme_host *h;
	struct nvme_id_ctrl id;
	struct nvme_id_ns ns;
	struct stat sb;
	uint8_t *buf;
	uint64_t cap;
	pid_t pid;
	int status = -1, rc = -1;
	const char *stats[] = {"emu", "stats", "--control", c, NULL};
	char out[4096];

	nh_tmppath(s, sizeof(s), "cli.sock");
	nh_tmppath(c, sizeof(c), "cli.ctl");
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(UDRV_CLI, UDRV_CLI, "emu", "nvme", "--socket", s, "--size", "32M",
		      "--namespaces", "2", "--queues", "3", "--entries", "64", "--block-size",
		      "4096", "--serial", "CLI-SN", "--control", c, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && (stat(s, &sb) != 0 || stat(c, &sb) != 0); i++)
		nh_sleep_ms(10);
	for (int i = 0; i < 50 && rc < 0; i++) {
		rc = nh_open(s, &h);
		if (rc < 0)
			nh_sleep_ms(20);
	}
	CHECK_EQ(rc, 0);
	if (rc == 0) {
		CHECK_EQ(nh_read64(h, NVME_REG_CAP, &cap), 0);
		CHECK_EQ(NVME_CAP_MQES(cap), 63);
		CHECK_EQ(udrv_device_irq_count(h->dev, UDRV_IRQ_MSIX), 4);
		CHECK_EQ(nh_enable(h, AQ), 0);
		CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_CTRL, 0, &id), 0);
		CHECK_EQ(id.nn, 2);
		CHECK(!memcmp(id.sn, "CLI-SN ", 7));
		CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_NS, 2, &ns), 0);
		CHECK_EQ(ns.nsze, 16u * 1024 * 1024 / 4096);
		CHECK_EQ(ns.lbaf[0].ds, 12);
		CHECK_EQ(nh_create_qpair(h, 3, 64), 0);
		buf = nh_alloc(h, 8192, NULL);
		REQUIRE(buf);
		memset(buf, 0x42, 8192);
		CHECK_EQ(nh_io(h, 3, nvme_cmd_write, 2, 4094, 2, buf, 8192), 0);
		memset(buf, 0, 8192);
		CHECK_EQ(nh_io(h, 3, nvme_cmd_read, 2, 4094, 2, buf, 8192), 0);
		CHECK(buf[0] == 0x42 && buf[8191] == 0x42);
		CHECK_EQ(run_cli(out, sizeof(out), stats), 0);
		CHECK(strstr(out, "write_cmds 1\n") != NULL);
		nh_close(h);
	}
	kill(pid, SIGTERM);
	for (int i = 0; i < 500 && waitpid(pid, &status, WNOHANG) == 0; i++)
		nh_sleep_ms(10);
	if (waitpid(pid, &status, WNOHANG) == 0) {
		CHECK(!"udrv emu nvme did not exit on SIGTERM");
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- robustness ---- */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static int raw_connect(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(a.sun_path, sock, strnlen(sock, sizeof(a.sun_path) - 1));
	REQUIRE(fd >= 0);
	REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	return fd;
}

/* The next real client after a bad one: connect (retrying while the server finishes with
 * the last one), enable, do I/O. */
static void serve_check(const char *what)
{
	struct nvme_host *h = NULL;
	uint8_t *buf;
	int rc = -1, tries = 0;

	for (; tries < 100 && rc < 0; tries++) {
		rc = nh_open(sock, &h);
		if (rc == 0 && nh_enable(h, AQ) != 0) {
			nh_close(h);
			rc = -1;
		}
		if (rc < 0)
			nh_sleep_ms(50);
	}
	if (rc < 0) {
		fprintf(stderr, "not served after %s\n", what);
		CHECK(!"served");
		return;
	}
	if (tries > 1)
		fprintf(stderr, "served after %s at the %d. try\n", what, tries);
	CHECK_EQ(nh_create_qpair(h, 1, QSIZE), 0);
	buf = nh_alloc(h, 4096, NULL);
	REQUIRE(buf);
	memset(buf, 0x3c, 4096);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_write, 1, 5000, 8, buf, 4096), 0);
	memset(buf, 0, 4096);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_read, 1, 5000, 8, buf, 4096), 0);
	CHECK(buf[0] == 0x3c && buf[4095] == 0x3c);
	nh_close(h);
}

static void test_garbage_clients(void)
{
	uint8_t junk[8192];
	struct vfio_user_header hdr = {.msg_id = 1, .command = VFIO_USER_VERSION};
	int fd;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rnd();
	/* Connect and go. */
	close(raw_connect());
	serve_check("a silent client");
	/* Random bytes. */
	fd = raw_connect();
	CHECK(send(fd, junk, sizeof(junk), MSG_NOSIGNAL) > 0);
	nh_sleep_ms(20);
	close(fd);
	serve_check("random bytes");
	/* A header that announces 4 GiB. */
	fd = raw_connect();
	hdr.msg_size = 0xffffffff;
	CHECK(send(fd, &hdr, sizeof(hdr), MSG_NOSIGNAL) > 0);
	nh_sleep_ms(20);
	close(fd);
	serve_check("a huge message");
	/* Half a header. */
	fd = raw_connect();
	CHECK(send(fd, &hdr, 7, MSG_NOSIGNAL) > 0);
	nh_sleep_ms(100);
	close(fd);
	serve_check("half a header");
	/* A version message with broken JSON, then more junk. */
	fd = raw_connect();
	{
		uint8_t m[64] = {0};
		struct vfio_user_version v = {.major = VFIO_USER_MAJOR, .minor = VFIO_USER_MINOR};

		hdr.msg_size = sizeof(hdr) + sizeof(v) + 12;
		memcpy(m, &hdr, sizeof(hdr));
		memcpy(m + sizeof(hdr), &v, sizeof(v));
		memcpy(m + sizeof(hdr) + sizeof(v), "{\"max_msg\":", 11); /* no NUL, no end */
		CHECK(send(fd, m, hdr.msg_size, MSG_NOSIGNAL) > 0);
		CHECK(send(fd, junk, 512, MSG_NOSIGNAL) > 0);
	}
	nh_sleep_ms(20);
	close(fd);
	serve_check("bad JSON");
}

static uint8_t sent_opc[65536]; /* opcode by command identifier, for the summary */
static unsigned ok_by_opc[256];

/* Drain what completes on the admin queue within ms of quiet. */
static unsigned drain(struct nvme_host *h, int quiet_ms)
{
	struct nvme_cqe e;
	unsigned n = 0;
	double last = nh_now();

	while (nh_now() - last < quiet_ms / 1000.0) {
		int got = 0;

		for (uint16_t q = 0; q <= QUEUES; q++)
			while (h->q[q].cq_live && nh_poll(h, q, &e)) {
				if (NVME_CQE_STATUS(&e) == 0)
					ok_by_opc[sent_opc[e.cid]]++;
				n++;
				got++;
			}
		if (got)
			last = nh_now();
		else
			usleep(100);
	}
	return n;
}

/* Back to a known state when the random stream wedged or failed the controller. */
static unsigned recover(struct nvme_host *h)
{
	uint32_t csts = 0;

	if (nh_read32(h, NVME_REG_CSTS, &csts) == 0 && csts == NH_RDY &&
	    (h->q[0].sq_tail + 1) % AQ != h->q[0].sq_head)
		return 0;
	REQUIRE(nh_disable(h) == 0);
	REQUIRE(nh_enable(h, AQ) == 0);
	return 1;
}

static const uint8_t admin_ops[] = {
    nvme_admin_delete_sq,    nvme_admin_create_sq,    nvme_admin_get_log_page,
    nvme_admin_delete_cq,    nvme_admin_create_cq,    nvme_admin_identify,
    nvme_admin_abort_cmd,    nvme_admin_set_features, nvme_admin_get_features,
    nvme_admin_async_event,  nvme_admin_keep_alive,   0x7f,
    nvme_admin_create_cq,    nvme_admin_create_sq,    nvme_admin_create_sq,
    nvme_admin_get_log_page,
};

static uint64_t rnd_page(uint64_t base, size_t len)
{
	return base + (rnd() % len & ~4095ull);
}

/*
 * A command that is mostly plausible, so that it gets past the first checks: a known opcode
 * with fields in range and pointers into scratch; a quarter are all random and a quarter of
 * the rest get a random bit flipped.
 */
static void random_sqe(struct nvme_sqe *c, uint64_t scratch, size_t scratch_len)
{
	uint64_t *w = (uint64_t *)c;

	for (int i = 0; i < 8; i++)
		w[i] = rnd();
	if (rnd() % 4 == 0)
		return; /* all random */
	c->opc = admin_ops[rnd() % sizeof(admin_ops)];
	c->flags = 0;
	c->nsid = (uint32_t[]){0, 1, 2, 0xffffffff, (uint32_t)rnd()}[rnd() % 5];
	c->prp1 = scratch + (rnd() % scratch_len & ~(rnd() % 2 ? 4095ull : 3ull));
	c->prp2 = rnd_page(scratch, scratch_len);
	c->cdw12 = c->cdw13 = 0;
	switch (c->opc) {
	case nvme_admin_create_cq:
		c->prp1 = rnd_page(scratch, scratch_len);
		c->cdw10 = (uint32_t)(rnd() % 64 + 1) << 16 | (uint32_t)(1 + rnd() % QUEUES);
		c->cdw11 = NVME_QUEUE_PC |
			   (rnd() % 2 ? NVME_CQ_IEN | (uint32_t)(rnd() % (QUEUES + 1)) << 16 : 0);
		break;
	case nvme_admin_create_sq:
		c->prp1 = rnd_page(scratch, scratch_len);
		c->cdw10 = (uint32_t)(rnd() % 64 + 1) << 16 | (uint32_t)(1 + rnd() % QUEUES);
		c->cdw11 = (uint32_t)(1 + rnd() % QUEUES) << 16 | NVME_QUEUE_PC;
		break;
	case nvme_admin_delete_sq:
	case nvme_admin_delete_cq:
		c->cdw10 = (uint32_t)(rnd() % (QUEUES + 2));
		break;
	case nvme_admin_get_log_page:
		c->cdw10 = (uint32_t)(rnd() % 1024) << 16 | (uint32_t)(rnd() % 2) << 15 |
			   (uint32_t[]){1, 2, 3, (uint32_t)rnd() % 256}[rnd() % 4];
		c->cdw11 = rnd() % 8 ? 0 : (uint32_t)rnd();
		c->cdw12 = rnd() % 2 ? 0 : (uint32_t)(rnd() % 1024);
		break;
	case nvme_admin_identify:
		c->cdw10 = (uint32_t[]){0, 1, 2, 3, (uint32_t)rnd()}[rnd() % 5];
		break;
	case nvme_admin_set_features:
	case nvme_admin_get_features:
		c->cdw10 = (uint32_t)(rnd() % 8) << 8 | (uint32_t)(rnd() % 13);
		if (rnd() % 2)
			c->cdw11 = (uint32_t)(rnd() % 16) << 16 | (uint32_t)(rnd() % 16);
		if (c->opc == nvme_admin_set_features && c->cdw10 % 256 == NVME_FEAT_FID_KATO)
			c->cdw11 = 0; /* a keep-alive timeout would only make this test reset */
		break;
	case nvme_admin_abort_cmd:
		c->cdw10 = (uint32_t)(rnd() % 65536) << 16 | (uint32_t)(rnd() % (QUEUES + 1));
		break;
	default:
		break;
	}
	if (rnd() % 4 == 0)
		w[rnd() % 8] ^= 1ull << (rnd() % 64);
}

/* Scratch holds whatever queues the random commands create there: make its 64-byte slots
 * plausible I/O commands half of the time (opcodes 0-9, namespace 1, data in scratch). */
static void fill_scratch(uint8_t *p, uint64_t iova, size_t len)
{
	for (size_t i = 0; i < len; i += 8)
		*(uint64_t *)(p + i) = rnd();
	for (size_t i = 0; i < len; i += 64) {
		struct nvme_sqe *c = (struct nvme_sqe *)(p + i);

		if (rnd() % 2)
			continue;
		c->opc = (uint8_t)(rnd() % 10);
		c->flags = rnd() % 4 ? 0 : NVME_CMD_PSDT_SGL;
		c->nsid = 1;
		c->prp1 = iova + (rnd() % len & ~511ull);
		c->prp2 = rnd_page(iova, len);
		c->cdw10 = (uint32_t)(rnd() % 100000);
		c->cdw11 = rnd() % 2 ? 0 : NVME_DSM_AD;
		c->cdw12 = (uint32_t)(rnd() % 16);
	}
}

/* Random registers, doorbells and commands (fixed seed): no crash, no hang; afterwards the
 * controller works. Meant to run under ASan/UBSan too. */
static void test_random_host(void)
{
	struct nvme_host *h;
	uint64_t siova;
	size_t slen = 4u << 20;
	uint8_t *scratch;
	unsigned sent = 0, got = 0, resets = 0, ncmds = 3000;
	uint32_t v;
	double t0 = nh_now();
	struct udrv_emu_nvme_stats st;
	uint64_t io0;

	/* Fixed seed and count; NVT_SEED / NVT_CMDS override them to hunt with other streams. */
	if (getenv("NVT_SEED"))
		rng = strtoull(getenv("NVT_SEED"), NULL, 0) | 1;
	if (getenv("NVT_CMDS"))
		ncmds = (unsigned)strtoul(getenv("NVT_CMDS"), NULL, 0);
	udrv_emu_nvme_stats(emu, &st);
	io0 = st.io_cmds;
	REQUIRE(nh_open(sock, &h) == 0);
	scratch = nh_alloc(h, slen, &siova);
	REQUIRE(scratch);
	fill_scratch(scratch, siova, slen);

	/* Every register, every doorbell, three times; odd sizes and offsets too. */
	for (int round = 0; round < 3; round++) {
		for (unsigned off = 0; off < 0x1000; off += 4) {
			nh_write32(h, off, (uint32_t)rnd());
			nh_read32(h, off, &v);
		}
		for (unsigned off = 0; off < 0x100; off += 8)
			nh_write64(h, off, rnd());
		for (int i = 0; i < 64; i++) {
			uint64_t x = rnd();

			udrv_device_region_write(h->dev, UDRV_REGION_BAR0, rnd() % 0x4100, &x,
						 1 + rnd() % 8);
			udrv_device_region_read(h->dev, UDRV_REGION_BAR0, rnd() % 0x4100, &x,
						1 + rnd() % 8);
		}
		for (unsigned i = 0; i < 1024; i++)
			nh_db_write(h, i, (uint32_t)rnd());
		nh_sleep_ms(20);
		/* Enabled with random doorbells, too. */
		nh_disable(h);
		CHECK_EQ(nh_enable(h, AQ), 0);
		for (unsigned i = 0; i < 1024; i++)
			nh_db_write(h, i, rnd() % 2 ? (uint32_t)rnd() : (uint32_t)(rnd() % 40));
		nh_sleep_ms(20);
		nh_disable(h);
	}

	/* Thousands of random admin commands, in batches, with random doorbells between. */
	REQUIRE(nh_enable(h, AQ) == 0);
	while (sent < ncmds) {
		for (int i = 0; i < 16; i++) {
			struct nvme_sqe c;

			random_sqe(&c, siova, slen);
			c.cid = (uint16_t)sent;
			sent_opc[c.cid] = c.opc;
			if (nh_submit_raw(h, 0, &c, true) == 0)
				sent++;
		}
		/* Ring the I/O queues the random commands may have made. */
		for (unsigned q = 1; q <= QUEUES; q++) {
			nh_db_write(h, 2 * q, (uint32_t)(rnd() % 16));
			nh_db_write(h, 2 * q + 1, (uint32_t)(rnd() % 16));
		}
		got += drain(h, 5);
		resets += recover(h);
	}
	udrv_emu_nvme_stats(emu, &st);
	fprintf(stderr,
		"random host: %u commands sent, %u completions, %u resets, %.1f s; succeeded: "
		"%u create CQ, %u create SQ, %u identify, %u get log, %u set features; %llu I/O "
		"commands fetched from random queues\n",
		sent, got, resets, nh_now() - t0, ok_by_opc[nvme_admin_create_cq],
		ok_by_opc[nvme_admin_create_sq], ok_by_opc[nvme_admin_identify],
		ok_by_opc[nvme_admin_get_log_page], ok_by_opc[nvme_admin_set_features],
		(unsigned long long)(st.io_cmds - io0));
	CHECK(got > sent / 2);

	/* Still a working controller. */
	CHECK_EQ(nh_disable(h), 0);
	CHECK_EQ(nh_enable(h, AQ), 0);
	CHECK_EQ(nh_identify(h, NVME_IDENTIFY_CNS_CTRL, 0, scratch), 0);
	CHECK_EQ(nh_create_qpair(h, 1, QSIZE), 0);
	memset(scratch, 0x6b, 4096);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_write, 1, 7, 8, scratch, 4096), 0);
	memset(scratch, 0, 4096);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_read, 1, 7, 8, scratch, 4096), 0);
	CHECK(scratch[0] == 0x6b && scratch[4095] == 0x6b);
	nh_close(h);
	serve_check("the random host");
}

/* Resets while I/O is in flight (held by latency or not, RAM and io_uring): nothing from
 * before a reset completes after it, and the data that was acknowledged is there. */
static void reset_storm(bool uring)
{
	struct udrv_emu_nvme_opts o = {.size = 16 << 20, .queues = 2, .io_uring = uring};
	char s[128], file[128];
	struct udrv_emu_nvme *e;
	struct nvme_host *h;
	struct nvme_cqe c;
	uint8_t *buf;
	unsigned stray = 0;

	if (uring) {
		nh_tmppath(file, sizeof(file), "storm");
		o.backing = file;
	}
	e = nh_emu_start(&o, s);
	REQUIRE(nh_open(s, &h) == 0);
	buf = nh_alloc(h, 64 * 4096, NULL);
	REQUIRE(buf);
	for (int it = 0; it < 30; it++) {
		REQUIRE(nh_enable(h, AQ) == 0);
		REQUIRE(nh_create_qpair(h, 1, 64) == 0);
		REQUIRE(nh_create_qpair(h, 2, 64) == 0);
		/* What a previous incarnation left would show up here. */
		stray += (unsigned)nh_poll(h, 1, &c) + (unsigned)nh_poll(h, 2, &c);
		CHECK_EQ(udrv_emu_nvme_inject(e, it % 3 == 0 ? "latency=5ms" : "latency=0"), 0);
		for (unsigned i = 0; i < 48; i++) {
			struct nvme_sqe w;

			nh_rw_cmd(&w, i % 3 ? nvme_cmd_write : nvme_cmd_read, 1, i * 8u, 8);
			nh_prp(h, &w, buf + (i % 64) * 4096, 4096);
			nh_submit(h, (uint16_t)(1 + i % 2), &w);
		}
		if (it % 2)
			usleep((useconds_t)(rnd() % 3000));
		REQUIRE(nh_disable(h) == 0);
	}
	CHECK_EQ(udrv_emu_nvme_inject(e, "latency=0"), 0);
	REQUIRE(nh_enable(h, AQ) == 0);
	REQUIRE(nh_create_qpair(h, 1, 64) == 0);
	nh_sleep_ms(100);
	CHECK_EQ(nh_next(h, 1, &c, 50), -ETIMEDOUT);
	CHECK_EQ(stray, 0);
	memset(buf, 0x5e, 4096);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_write, 1, 1000, 8, buf, 4096), 0);
	memset(buf, 0, 4096);
	CHECK_EQ(nh_io(h, 1, nvme_cmd_read, 1, 1000, 8, buf, 4096), 0);
	CHECK(buf[0] == 0x5e && buf[4095] == 0x5e);
	CHECK_EQ(h->bad_cqes, 0);
	nh_close(h);
	udrv_emu_nvme_destroy(e);
}

static void test_reset_storm(void)
{
	reset_storm(false);
	reset_storm(true);
}

/* The child side of test_killed_client: connect, start I/O, die without cleaning up. */
static int child_main(const char *path, const char *how)
{
	struct nvme_host *h;
	uint8_t *buf;

	udrv_log_set_level(UDRV_LOG_ERR);
	if (nh_open(path, &h) || nh_enable(h, AQ) || nh_create_qpair(h, 1, 64))
		_exit(2);
	buf = nh_alloc(h, 32 * 4096, NULL);
	if (!buf)
		_exit(3);
	for (int i = 0; i < 32; i++) {
		struct nvme_sqe c;

		memset(buf + i * 4096, i, 4096);
		nh_rw_cmd(&c, nvme_cmd_write, 1, (uint64_t)i * 8, 8);
		nh_prp(h, &c, buf + i * 4096, 4096);
		nh_submit(h, 1, &c);
	}
	if (!strcmp(how, "kill"))
		raise(SIGKILL);
	_exit(0);
}

static void test_killed_client(void)
{
	static const char *const how[] = {"exit", "kill", "exit"};
	struct nvme_host *h;
	struct nvme_smart_log sl;
	uint64_t unsafe;
	uint8_t *buf;

	for (int i = 0; i < 3; i++) {
		pid_t pid = fork();
		int status;

		REQUIRE(pid >= 0);
		if (pid == 0) {
			execl("/proc/self/exe", "test_emu_nvme_faults", "--child", sock, how[i],
			      (char *)NULL);
			_exit(127);
		}
		REQUIRE(waitpid(pid, &status, 0) == pid);
		if (!strcmp(how[i], "kill"))
			CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		else
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		serve_check(how[i]);
	}
	/* The controller saw those as unsafe shutdowns (enabled, never shut down). */
	h = up(&buf);
	CHECK_EQ(nh_get_log(h, NVME_LOG_LID_SMART, 0, &sl, sizeof(sl)), 0);
	memcpy(&unsafe, sl.unsafe_shutdowns, 8);
	CHECK(unsafe >= 3);
	nh_close(h);
}

int main(int argc, char **argv)
{
	struct udrv_emu_nvme_opts o = {
	    .size = 64 << 20, .queues = QUEUES, .max_entries = 256, .control = ctl};
	double t0 = nh_now();

	if (argc == 4 && !strcmp(argv[1], "--child"))
		return child_main(argv[2], argv[3]);
	udrv_log_set_level(UDRV_LOG_ERR);
	signal(SIGPIPE, SIG_IGN);
	alarm(150);
	nh_tmppath(ctl, sizeof(ctl), "control");
	emu = nh_emu_start(&o, sock);
	RUN(test_latency);
	RUN(test_drop);
	RUN(test_error);
	RUN(test_dup_cid);
	RUN(test_bogus_cid);
	RUN(test_bad_sq_head);
	RUN(test_fatal);
	RUN(test_hang);
	RUN(test_latency_then_reset);
	RUN(test_second_client);
	RUN(test_remove);
	RUN(test_queue_memory_unmapped);
	RUN(test_control_socket);
	RUN(test_lifecycle);
	RUN(test_cli_server);
	RUN(test_garbage_clients);
	RUN(test_random_host);
	RUN(test_killed_client);
	RUN(test_reset_storm);
	udrv_emu_nvme_destroy(emu);
	fprintf(stderr, "%.1f s\n", nh_now() - t0);
	return test_done();
}
