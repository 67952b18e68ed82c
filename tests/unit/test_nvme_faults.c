/* SPDX-License-Identifier: BSD-3-Clause */
/* The emulated NVMe controller's fault syntax (faults.c): parsing, all-or-nothing arming,
 * clear, and nvemu_fault_take() under contention. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <udrv/log.h>

#include "core/log_internal.h"
#include "emu/nvme/nvme_emu.h"
#include "test.h"

/* A plain copy of the armed faults, to compare before and after a rejected spec. */
struct snap {
	uint64_t latency_ns;
	unsigned drop, error, dup_cid, bogus_cid, bad_sq_head;
	unsigned error_status;
	bool fatal, hang, remove;
};

static struct snap snap_of(struct nvemu_faults *f)
{
	return (struct snap){
	    .latency_ns = atomic_load(&f->latency_ns),
	    .drop = atomic_load(&f->drop),
	    .error = atomic_load(&f->error),
	    .dup_cid = atomic_load(&f->dup_cid),
	    .bogus_cid = atomic_load(&f->bogus_cid),
	    .bad_sq_head = atomic_load(&f->bad_sq_head),
	    .error_status = atomic_load(&f->error_status),
	    .fatal = atomic_load(&f->fatal),
	    .hang = atomic_load(&f->hang),
	    .remove = atomic_load(&f->remove),
	};
}

static bool snap_eq(struct snap a, struct snap b)
{
	return a.latency_ns == b.latency_ns && a.drop == b.drop && a.error == b.error &&
	       a.dup_cid == b.dup_cid && a.bogus_cid == b.bogus_cid &&
	       a.bad_sq_head == b.bad_sq_head && a.error_status == b.error_status &&
	       a.fatal == b.fatal && a.hang == b.hang && a.remove == b.remove;
}

static int arm(struct nvemu_faults *f, const char *spec)
{
	udrv_err_clear();
	return nvemu_faults_arm(f, spec);
}

static void test_counted(void)
{
	struct nvemu_faults f;

	memset(&f, 0, sizeof(f));
	CHECK_EQ(arm(&f, "drop"), 0);
	CHECK_EQ(atomic_load(&f.drop), 1);
	CHECK_EQ(arm(&f, "drop=5,dup-cid=2,bogus-cid,bad-sq-head=1000000"), 0);
	CHECK_EQ(atomic_load(&f.drop), 5);
	CHECK_EQ(atomic_load(&f.dup_cid), 2);
	CHECK_EQ(atomic_load(&f.bogus_cid), 1);
	CHECK_EQ(atomic_load(&f.bad_sq_head), 1000000);
	CHECK_EQ(atomic_load(&f.error), 0);
	CHECK_EQ(atomic_load(&f.latency_ns), 0);
	CHECK(!atomic_load(&f.fatal) && !atomic_load(&f.hang) && !atomic_load(&f.remove));

	/* Set, not added; faults not named keep their counts. */
	CHECK_EQ(arm(&f, "drop=2"), 0);
	CHECK_EQ(atomic_load(&f.drop), 2);
	CHECK_EQ(atomic_load(&f.dup_cid), 2);
	/* Left to right: the later item wins. Leading zeros are plain decimal. */
	CHECK_EQ(arm(&f, "drop=9,drop=007"), 0);
	CHECK_EQ(atomic_load(&f.drop), 7);
}

static void test_error(void)
{
	struct nvemu_faults f;

	memset(&f, 0, sizeof(f));
	CHECK_EQ(arm(&f, "error"), 0);
	CHECK_EQ(atomic_load(&f.error), 1);
	CHECK_EQ(atomic_load(&f.error_status), 0x0006);
	CHECK_EQ(arm(&f, "error=3:0x4004"), 0);
	CHECK_EQ(atomic_load(&f.error), 3);
	CHECK_EQ(atomic_load(&f.error_status), 0x4004);
	/* error=N alone goes back to the default status. */
	CHECK_EQ(arm(&f, "error=4"), 0);
	CHECK_EQ(atomic_load(&f.error), 4);
	CHECK_EQ(atomic_load(&f.error_status), 0x0006);
	CHECK_EQ(arm(&f, "error=1:16388"), 0); /* 0x4004 in decimal */
	CHECK_EQ(atomic_load(&f.error_status), 0x4004);
	CHECK_EQ(arm(&f, "error=1:0X7FFF"), 0);
	CHECK_EQ(atomic_load(&f.error_status), 0x7fff);
	CHECK_EQ(arm(&f, "error=2:0x0281"), 0); /* SCT 2 (Media), SC 81h Unrecovered Read */
	CHECK_EQ(atomic_load(&f.error_status), 0x0281);
	CHECK_EQ(arm(&f, "error=1:0x100"), 0); /* SCT 1, SC 0: Invalid Completion Queue */
	CHECK_EQ(atomic_load(&f.error_status), 0x100);
}

static void test_latency_and_one_shots(void)
{
	struct nvemu_faults f;

	memset(&f, 0, sizeof(f));
	CHECK_EQ(arm(&f, "latency=500"), 0);
	CHECK_EQ(atomic_load(&f.latency_ns), 500000);
	CHECK_EQ(arm(&f, "latency=7us"), 0);
	CHECK_EQ(atomic_load(&f.latency_ns), 7000);
	CHECK_EQ(arm(&f, "latency=2ms"), 0);
	CHECK_EQ(atomic_load(&f.latency_ns), 2000000);
	CHECK_EQ(arm(&f, "latency=3s"), 0);
	CHECK_EQ(atomic_load(&f.latency_ns), 3000000000ull);
	CHECK_EQ(arm(&f, "latency=3600s"), 0);
	CHECK_EQ(atomic_load(&f.latency_ns), 3600000000000ull);
	CHECK_EQ(arm(&f, "latency=0"), 0);
	CHECK_EQ(atomic_load(&f.latency_ns), 0);

	CHECK_EQ(arm(&f, "fatal"), 0);
	CHECK(atomic_load(&f.fatal));
	CHECK(!atomic_load(&f.hang));
	CHECK_EQ(arm(&f, "hang,remove"), 0);
	CHECK(atomic_load(&f.fatal) && atomic_load(&f.hang) && atomic_load(&f.remove));
}

static void test_rejected(void)
{
	static const char *const bad[] = {
	    "",
	    "bogus",
	    "DROP",
	    " drop",
	    "drop ",
	    "drop=0",
	    "drop=1000001",
	    "drop=99999999999999999999999",
	    "drop=-1",
	    "drop=+1",
	    "drop=0x10",
	    "drop=1x",
	    "drop=",
	    "drop=1,bogus", /* all or nothing: drop=1 is not armed */
	    "error=0",
	    "error=",
	    "error=:6",
	    "error=1:",
	    "error=1:0",
	    "error=1:0x0",
	    "error=1:0x4000", /* DNR on a success is still a success */
	    "error=1:0x7800",
	    "error=1:0x8000",
	    "error=1:32768",
	    "error=1:0x",
	    "error=1:0xg",
	    "error=1:6:7",
	    "error=1:-6",
	    "latency",
	    "latency=",
	    "latency=us",
	    "latency=5x",
	    "latency=2 ms",
	    "latency=2mss",
	    "latency=3601s",
	    "latency=-1",
	    "fatal=1",
	    "hang=",
	    "remove=yes",
	    "clear=1",
	    "drop,,error",
	    ",drop",
	    "drop,",
	    ",",
	    "clear,bogus", /* not even the clear applies */
	};
	struct nvemu_faults f;
	struct snap before;

	memset(&f, 0, sizeof(f));
	REQUIRE(arm(&f, "latency=1ms,drop=7,error=2:0x4004,dup-cid=3,bogus-cid=4,bad-sq-head=5,"
			"hang") == 0);
	before = snap_of(&f);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = arm(&f, bad[i]);

		if (rc != -EINVAL || !snap_eq(before, snap_of(&f)) || !udrv_errmsg()[0]) {
			fprintf(stderr, "spec '%s': rc %d, message '%s'\n", bad[i], rc,
				udrv_errmsg());
			CHECK(0);
		}
	}
	CHECK_EQ(arm(&f, NULL), -EINVAL);
	CHECK(snap_eq(before, snap_of(&f)));

	CHECK_EQ(arm(&f, "drop=1,frobnicate=3"), -EINVAL);
	CHECK_STR(udrv_errmsg(), "unknown fault 'frobnicate'; `udrv emu nvme --help` lists them");
	CHECK_EQ(arm(&f, "drop=0"), -EINVAL);
	CHECK(strstr(udrv_errmsg(), "'drop=0'") != NULL);
	CHECK_EQ(arm(&f, "error=1:0x8000"), -EINVAL);
	CHECK(strstr(udrv_errmsg(), "'error=1:0x8000'") != NULL);
	CHECK_EQ(arm(&f, "drop,,error"), -EINVAL);
	CHECK(strstr(udrv_errmsg(), "comma") != NULL);
	CHECK(snap_eq(before, snap_of(&f)));
}

static void test_clear(void)
{
	struct nvemu_faults f;
	struct snap s;

	memset(&f, 0, sizeof(f));
	REQUIRE(arm(&f, "latency=1ms,drop=7,error=2:0x4004,dup-cid=3,bogus-cid=4,bad-sq-head=5,"
			"fatal,hang,remove") == 0);
	CHECK_EQ(arm(&f, "clear"), 0);
	s = snap_of(&f);
	CHECK_EQ(s.latency_ns, 0);
	CHECK_EQ(s.drop + s.error + s.dup_cid + s.bogus_cid + s.bad_sq_head, 0);
	CHECK(!s.fatal && !s.hang && !s.remove);

	/* Items after clear are armed; items before it are not. */
	REQUIRE(arm(&f, "drop=3,latency=5,hang") == 0);
	CHECK_EQ(arm(&f, "clear,error=2,bogus-cid"), 0);
	s = snap_of(&f);
	CHECK_EQ(s.drop, 0);
	CHECK_EQ(s.latency_ns, 0);
	CHECK(!s.hang);
	CHECK_EQ(s.error, 2);
	CHECK_EQ(s.error_status, 0x0006);
	CHECK_EQ(s.bogus_cid, 1);
	CHECK_EQ(arm(&f, "drop=3,fatal,clear"), 0);
	s = snap_of(&f);
	CHECK_EQ(s.drop + s.error + s.bogus_cid, 0);
	CHECK(!s.fatal);
}

static void test_take(void)
{
	atomic_uint c;

	atomic_init(&c, 0);
	CHECK(!nvemu_fault_take(&c));
	CHECK_EQ(atomic_load(&c), 0);
	atomic_store(&c, 2);
	CHECK(nvemu_fault_take(&c));
	CHECK(nvemu_fault_take(&c));
	CHECK(!nvemu_fault_take(&c));
	CHECK(!nvemu_fault_take(&c));
	CHECK_EQ(atomic_load(&c), 0);
}

struct taker {
	atomic_uint *count;
	atomic_bool *go;
	unsigned long taken;
};

static void *take_all(void *arg)
{
	struct taker *t = arg;

	while (!atomic_load(t->go))
		;
	/* Keep trying past zero: a miss must not be counted, and must not wrap the count. */
	for (unsigned long i = 0; i < 150000; i++)
		t->taken += nvemu_fault_take(t->count);
	return NULL;
}

static void test_take_concurrent(void)
{
	struct nvemu_faults f;
	struct taker t[2];
	pthread_t th[2];
	atomic_bool go;

	memset(&f, 0, sizeof(f));
	atomic_init(&go, false);
	REQUIRE(arm(&f, "drop=100000") == 0);
	for (int i = 0; i < 2; i++) {
		t[i] = (struct taker){.count = &f.drop, .go = &go};
		REQUIRE(pthread_create(&th[i], NULL, take_all, &t[i]) == 0);
	}
	atomic_store(&go, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(t[0].taken + t[1].taken, 100000);
	CHECK_EQ(atomic_load(&f.drop), 0);
}

static void test_help(void)
{
	const char *h = udrv_emu_nvme_fault_help(), *line;

	CHECK(h == nvemu_fault_help);
	CHECK(strstr(h, "--faults latency=500us,error=3:0x4004") != NULL);
	CHECK(strstr(h, "udrv emu fault --control") != NULL);
	CHECK(strstr(h, "bad-sq-head[=N]") != NULL);
	CHECK(h[strlen(h) - 1] == '\n');
	/* Fits an 80-column terminal. */
	for (line = h; *line;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);

		if (n > 80) {
			fprintf(stderr, "help line of %zu columns: %.*s\n", n, (int)n, line);
			CHECK(0);
		}
		line += n + (nl != NULL);
	}
}

int main(void)
{
	RUN(test_counted);
	RUN(test_error);
	RUN(test_latency_and_one_shots);
	RUN(test_rejected);
	RUN(test_clear);
	RUN(test_take);
	RUN(test_take_concurrent);
	RUN(test_help);
	return test_done();
}
