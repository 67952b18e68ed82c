/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests for the lock-free rings (include/udrv/ring.h). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <udrv/log.h>
#include <udrv/ring.h>

#include "test.h"

#if defined(__SANITIZE_THREAD__)
#define SLOW_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLOW_SANITIZER 1
#endif
#endif
#ifndef SLOW_SANITIZER
#define SLOW_SANITIZER 0
#endif

/* Values streamed between threads; fewer under ThreadSanitizer, which is ~10x slower. */
#define SPSC_N (SLOW_SANITIZER ? 1000000u : 10000000u)
#define MPMC_N (SLOW_SANITIZER ? 200000u : 1000000u) /* per producer */
#define PROC_N 1000000u

#define V(x) ((void *)(uintptr_t)(x))
#define U(p) ((uintptr_t)(p))

/*
 * Wait for the peer: spin, then yield, and now and then sleep. The MPMC test runs four threads
 * on what may be two cores; a thread preempted between reserving and publishing slots holds up
 * the others on its side (see ring.h), and only a real sleep reliably gives it the core back
 * (spinning and sched_yield() alone made some runs 50x slower).
 */
static void backoff(unsigned *spins)
{
	++*spins;
	if (*spins % 1024 == 0) {
		struct timespec ts = {0, 20000};

		nanosleep(&ts, NULL);
	} else if (*spins % 64 == 0) {
		sched_yield();
	}
}

static void test_init_validation(void)
{
	struct udrv_ring *r;
	void *mem;

	CHECK_EQ(udrv_ring_memsize(0), 0);
	CHECK_EQ(udrv_ring_memsize(1), 0);
	CHECK_EQ(udrv_ring_memsize(3), 0);
	CHECK_EQ(udrv_ring_memsize(1000), 0);
	CHECK_EQ(udrv_ring_memsize(UDRV_RING_COUNT_MAX + 1u), 0);
	CHECK_EQ(udrv_ring_memsize(~0u), 0);
	CHECK_EQ(udrv_ring_memsize(2), 448); /* 384-byte header + 16, rounded to 64 */
	CHECK_EQ(udrv_ring_memsize(1024), 384 + 1024 * sizeof(void *));
	CHECK(udrv_ring_memsize(UDRV_RING_COUNT_MAX) > 0);

	mem = aligned_alloc(64, udrv_ring_memsize(64) + 64);
	REQUIRE(mem);
	r = mem;
	CHECK_EQ(udrv_ring_init(r, 3, 0), -EINVAL);
	CHECK(strlen(udrv_errmsg()) > 0);
	CHECK_EQ(udrv_ring_init(r, 1, 0), -EINVAL);
	CHECK_EQ(udrv_ring_init(r, 0, 0), -EINVAL);
	CHECK_EQ(udrv_ring_init(r, 64, 1u << 5), -EINVAL);
	CHECK_EQ(udrv_ring_init((struct udrv_ring *)((char *)mem + 8), 64, 0), -EINVAL);
	CHECK_EQ(udrv_ring_init(NULL, 64, 0), -EINVAL);
	CHECK_EQ(udrv_ring_init(r, 2, 0), 0);
	CHECK_EQ(udrv_ring_capacity(r), 2);
	CHECK_EQ(udrv_ring_init(r, 64, UDRV_RING_SP_ENQ | UDRV_RING_SC_DEQ), 0);
	CHECK_EQ(udrv_ring_capacity(r), 64);
	CHECK_EQ(udrv_ring_count(r), 0);
	CHECK_EQ(udrv_ring_free_count(r), 64);
	free(mem);

	errno = 0;
	CHECK(udrv_ring_create(6, 0) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(udrv_ring_create(16, 0x100) == NULL);
	CHECK_EQ(errno, EINVAL);
	r = udrv_ring_create(16, 0);
	REQUIRE(r);
	CHECK_EQ((uintptr_t)r % UDRV_RING_ALIGN, 0);
	udrv_ring_free(r);
	udrv_ring_free(NULL);
}

/* Full/empty, bulk all-or-nothing and burst partial semantics on a ring of 8. */
static void check_semantics(unsigned flags, uint32_t start)
{
	struct udrv_ring *r = udrv_ring_create(8, flags);
	void *in[16], *out[16];
	unsigned left, i;
	void *obj;

	REQUIRE(r);
	udrv_ring_reset_at(r, start);
	for (i = 0; i < 16; i++)
		in[i] = V(i + 1);

	/* single objects: exactly capacity fit */
	for (i = 0; i < 8; i++)
		CHECK_EQ(udrv_ring_enqueue(r, in[i]), 0);
	CHECK_EQ(udrv_ring_enqueue(r, in[8]), -ENOBUFS);
	CHECK_EQ(udrv_ring_count(r), 8);
	CHECK_EQ(udrv_ring_free_count(r), 0);
	for (i = 0; i < 8; i++) {
		obj = NULL;
		CHECK_EQ(udrv_ring_dequeue(r, &obj), 0);
		CHECK_EQ(U(obj), i + 1);
	}
	obj = V(99);
	CHECK_EQ(udrv_ring_dequeue(r, &obj), -ENOENT);
	CHECK_EQ(U(obj), 99);
	CHECK_EQ(udrv_ring_count(r), 0);

	/* bulk: all or nothing */
	CHECK_EQ(udrv_ring_enqueue_bulk(r, in, 5, &left), 5);
	CHECK_EQ(left, 3);
	CHECK_EQ(udrv_ring_enqueue_bulk(r, in + 5, 4, &left), 0);
	CHECK_EQ(left, 3);
	CHECK_EQ(udrv_ring_count(r), 5);
	CHECK_EQ(udrv_ring_enqueue_bulk(r, in, 9, NULL), 0); /* more than capacity */
	CHECK_EQ(udrv_ring_dequeue_bulk(r, out, 6, &left), 0);
	CHECK_EQ(left, 5);
	CHECK_EQ(udrv_ring_dequeue_bulk(r, out, 2, &left), 2);
	CHECK_EQ(left, 3);
	CHECK_EQ(U(out[0]), 1);
	CHECK_EQ(U(out[1]), 2);

	/* burst: as many as fit / as are there */
	CHECK_EQ(udrv_ring_enqueue_burst(r, in + 5, 11, &left), 5);
	CHECK_EQ(left, 0);
	CHECK_EQ(udrv_ring_enqueue_burst(r, in, 1, &left), 0);
	CHECK_EQ(udrv_ring_count(r), 8);
	CHECK_EQ(udrv_ring_dequeue_burst(r, out, 16, &left), 8);
	CHECK_EQ(left, 0);
	for (i = 0; i < 8; i++)
		CHECK_EQ(U(out[i]), i + 3); /* 3 4 5 then 6..10 */
	CHECK_EQ(udrv_ring_dequeue_burst(r, out, 4, &left), 0);
	CHECK_EQ(udrv_ring_enqueue_burst(r, in, 0, NULL), 0);
	CHECK_EQ(udrv_ring_dequeue_burst(r, out, 0, NULL), 0);

	/* explicit-mode variants agree with the defaults */
	CHECK_EQ(udrv_ring_sp_enqueue_bulk(r, in, 3, NULL), 3);
	CHECK_EQ(udrv_ring_mp_enqueue_bulk(r, in + 3, 3, NULL), 3);
	CHECK_EQ(udrv_ring_sp_enqueue_burst(r, in + 6, 1, NULL), 1);
	CHECK_EQ(udrv_ring_mp_enqueue_burst(r, in + 7, 4, &left), 1);
	CHECK_EQ(left, 0);
	CHECK_EQ(udrv_ring_sp_enqueue(r, in[0]), -ENOBUFS);
	CHECK_EQ(udrv_ring_mp_enqueue(r, in[0]), -ENOBUFS);
	CHECK_EQ(udrv_ring_sc_dequeue_bulk(r, out, 2, NULL), 2);
	CHECK_EQ(udrv_ring_mc_dequeue_bulk(r, out + 2, 2, NULL), 2);
	CHECK_EQ(udrv_ring_sc_dequeue_burst(r, out + 4, 1, NULL), 1);
	CHECK_EQ(udrv_ring_mc_dequeue_burst(r, out + 5, 1, &left), 1);
	CHECK_EQ(left, 2);
	CHECK_EQ(udrv_ring_sc_dequeue(r, &out[6]), 0);
	CHECK_EQ(udrv_ring_mc_dequeue(r, &out[7]), 0);
	CHECK_EQ(udrv_ring_sc_dequeue(r, &obj), -ENOENT);
	CHECK_EQ(udrv_ring_mc_dequeue(r, &obj), -ENOENT);
	CHECK_EQ(udrv_ring_sp_enqueue(r, in[0]), 0);
	CHECK_EQ(udrv_ring_mp_enqueue(r, in[1]), 0);
	for (i = 0; i < 8; i++)
		CHECK_EQ(U(out[i]), i + 1);
	CHECK_EQ(udrv_ring_count(r), 2);
	udrv_ring_reset(r);
	CHECK_EQ(udrv_ring_count(r), 0);
	CHECK_EQ(udrv_ring_dequeue(r, &obj), -ENOENT);
	udrv_ring_free(r);
}

static void test_semantics(void)
{
	check_semantics(0, 0);
	check_semantics(UDRV_RING_SP_ENQ | UDRV_RING_SC_DEQ, 0);
	check_semantics(UDRV_RING_SP_ENQ, 0);
	check_semantics(UDRV_RING_SC_DEQ, 0);
}

/* 32-bit index wrap: start the free-running indices just below UINT32_MAX. */
static void check_wrap(unsigned flags)
{
	static const uint32_t starts[] = {UINT32_MAX - 2, UINT32_MAX - 7, UINT32_MAX - 100,
					  UINT32_MAX, 0x7fffffff};
	struct udrv_ring *r = udrv_ring_create(16, flags);
	uintptr_t next_in, next_out;
	void *buf[32] = {0};

	REQUIRE(r);
	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		udrv_ring_reset_at(r, starts[s]);
		next_in = next_out = 1;
		/*
		 * Sizes that are not multiples of the ring size so every wrap point is hit. Odd
		 * rounds ask for the room left (which reads the other side's tail), even rounds
		 * pass NULL and run on the room each side remembers.
		 */
		for (unsigned it = 0; it < 500; it++) {
			unsigned n = 1 + (it * 7) % 19, got, left = 0;
			unsigned *lp = (it / 2) % 2 ? &left : NULL;
			unsigned room = udrv_ring_free_count(r);

			for (unsigned i = 0; i < n; i++)
				buf[i] = V(next_in + i);
			if (it % 3 == 0) {
				got = udrv_ring_enqueue_bulk(r, buf, n, lp);
				CHECK_EQ(got, n <= room ? n : 0);
			} else {
				got = udrv_ring_enqueue_burst(r, buf, n, lp);
				CHECK_EQ(got, n <= room ? n : room);
			}
			next_in += got;
			CHECK_EQ(udrv_ring_count(r), next_in - next_out);
			if (lp)
				CHECK_EQ(left, 16 - (next_in - next_out));

			n = 1 + (it * 5) % 13;
			room = udrv_ring_count(r);
			got = (it % 4 == 0) ? udrv_ring_dequeue_bulk(r, buf, n, lp)
					    : udrv_ring_dequeue_burst(r, buf, n, lp);
			CHECK_EQ(got, n <= room ? n : (it % 4 == 0 ? 0 : room));
			for (unsigned i = 0; i < got; i++)
				CHECK_EQ(U(buf[i]), next_out + i);
			next_out += got;
			if (lp)
				CHECK_EQ(left, next_in - next_out);
			CHECK_EQ(udrv_ring_free_count(r), 16 - (next_in - next_out));
		}
		CHECK(next_out > 1000); /* ran through the wrap many times */
		/* The indices really went past 2^32. */
		CHECK(r->prod.tail < starts[s] || starts[s] == 0x7fffffff);
	}
	udrv_ring_free(r);
}

static void test_wrap(void)
{
	check_wrap(0);
	check_wrap(UDRV_RING_SP_ENQ | UDRV_RING_SC_DEQ);
}

/* ---- two threads, one producer, one consumer ------------------------------------------------ */

struct stream {
	struct udrv_ring *r;
	uintptr_t n;	  /* values 1..n per producer */
	uintptr_t id;	  /* producer id, in the value's top bits */
	int errors;	  /* consumer: out of order values */
	uintptr_t seen;	  /* consumer: values received */
	uint64_t *bitmap; /* MPMC consumer: values seen, per producer */
	uintptr_t *stop;  /* MPMC: values still expected, shared by consumers */
};

#define ID_SHIFT 40

static void *spsc_producer(void *arg)
{
	struct stream *s = arg;
	static const unsigned sizes[] = {1, 32, 7, 8, 3, 64, 1, 17, 31, 2};
	void *buf[64];
	uintptr_t next = 1;
	unsigned k = 0, spins = 0;

	while (next <= s->n) {
		unsigned n = sizes[k++ % 10], got;

		if (n > s->n - next + 1)
			n = (unsigned)(s->n - next + 1);
		for (unsigned i = 0; i < n; i++)
			buf[i] = V(next + i);
		if (n == 1)
			got = udrv_ring_enqueue(s->r, buf[0]) == 0;
		else if (k % 2)
			got = udrv_ring_enqueue_bulk(s->r, buf, n, NULL);
		else
			got = udrv_ring_sp_enqueue_burst(s->r, buf, n, NULL);
		if (!got)
			backoff(&spins);
		next += got;
	}
	return NULL;
}

static void *spsc_consumer(void *arg)
{
	struct stream *s = arg;
	static const unsigned sizes[] = {32, 1, 5, 8, 64, 13, 2, 32};
	void *buf[64];
	uintptr_t expect = 1;
	unsigned k = 0, spins = 0;

	while (expect <= s->n) {
		unsigned n = sizes[k++ % 8], got;

		if (n == 1)
			got = udrv_ring_dequeue(s->r, &buf[0]) == 0;
		else if (k % 3 == 0)
			got = udrv_ring_dequeue_bulk(s->r, buf, n, NULL);
		else
			got = udrv_ring_sc_dequeue_burst(s->r, buf, n, NULL);
		if (!got)
			backoff(&spins);
		for (unsigned i = 0; i < got; i++, expect++)
			if (U(buf[i]) != expect && s->errors++ < 5)
				fprintf(stderr, "spsc: got %lu, expected %lu\n",
					(unsigned long)U(buf[i]), (unsigned long)expect);
	}
	s->seen = expect - 1;
	return NULL;
}

static void test_spsc_threads(void)
{
	struct udrv_ring *r = udrv_ring_create(1024, UDRV_RING_SP_ENQ | UDRV_RING_SC_DEQ);
	struct stream s = {.r = r, .n = SPSC_N};
	pthread_t p, c;

	REQUIRE(r);
	udrv_ring_reset_at(r, UINT32_MAX - SPSC_N / 2); /* wrap mid-stream */
	REQUIRE(pthread_create(&c, NULL, spsc_consumer, &s) == 0);
	REQUIRE(pthread_create(&p, NULL, spsc_producer, &s) == 0);
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	CHECK_EQ(s.errors, 0);
	CHECK_EQ(s.seen, SPSC_N);
	CHECK_EQ(udrv_ring_count(r), 0);
	udrv_ring_free(r);
}

/* ---- two producers, two consumers ---------------------------------------------------------- */

static void *mpmc_producer(void *arg)
{
	struct stream *s = arg;
	void *buf[16];
	uintptr_t next = 1;
	unsigned k = 0, spins = 0;

	while (next <= s->n) {
		unsigned n = 1 + (k++ * 5) % 16, got;

		if (n > s->n - next + 1)
			n = (unsigned)(s->n - next + 1);
		for (unsigned i = 0; i < n; i++)
			buf[i] = V(s->id << ID_SHIFT | (next + i));
		if (n == 1)
			got = udrv_ring_enqueue(s->r, buf[0]) == 0;
		else if (k % 2)
			got = udrv_ring_enqueue_bulk(s->r, buf, n, NULL);
		else
			got = udrv_ring_mp_enqueue_burst(s->r, buf, n, NULL);
		if (!got)
			backoff(&spins);
		next += got;
	}
	return NULL;
}

static void *mpmc_consumer(void *arg)
{
	struct stream *s = arg;
	uintptr_t last[2] = {0, 0};
	void *buf[16];
	unsigned k = 0, spins = 0;

	while (__atomic_load_n(s->stop, __ATOMIC_RELAXED) > 0) {
		unsigned n = 1 + (k++ * 3) % 16, got;

		if (n == 1)
			got = udrv_ring_dequeue(s->r, &buf[0]) == 0;
		else if (k % 2)
			got = udrv_ring_dequeue_bulk(s->r, buf, n, NULL);
		else
			got = udrv_ring_mc_dequeue_burst(s->r, buf, n, NULL);
		if (!got) {
			backoff(&spins);
			continue;
		}
		__atomic_fetch_sub(s->stop, got, __ATOMIC_RELAXED);
		for (unsigned i = 0; i < got; i++) {
			uintptr_t v = U(buf[i]), id = v >> ID_SHIFT;
			uintptr_t seq = v & (((uintptr_t)1 << ID_SHIFT) - 1);

			if (id > 1 || seq == 0 || seq > s->n) {
				s->errors++;
				continue;
			}
			/* One producer's values reach one consumer in the order produced. */
			if (seq <= last[id])
				s->errors++;
			last[id] = seq;
			s->bitmap[id * (s->n / 64 + 1) + seq / 64] |= 1ull << (seq % 64);
			s->seen++;
		}
	}
	return NULL;
}

static void test_mpmc_threads(void)
{
	struct udrv_ring *r = udrv_ring_create(256, 0);
	size_t words = MPMC_N / 64 + 1;
	uintptr_t remaining = 2 * (uintptr_t)MPMC_N;
	struct stream prod[2], cons[2];
	pthread_t pt[2], ct[2];
	uintptr_t total = 0;
	int dup = 0, missing = 0;

	REQUIRE(r);
	udrv_ring_reset_at(r, UINT32_MAX - MPMC_N / 2);
	for (int i = 0; i < 2; i++) {
		prod[i] = (struct stream){.r = r, .n = MPMC_N, .id = (uintptr_t)i};
		cons[i] = (struct stream){.r = r, .n = MPMC_N, .stop = &remaining};
		cons[i].bitmap = calloc(2 * words, sizeof(uint64_t));
		REQUIRE(cons[i].bitmap);
	}
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&ct[i], NULL, mpmc_consumer, &cons[i]) == 0);
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&pt[i], NULL, mpmc_producer, &prod[i]) == 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(pt[i], NULL);
		pthread_join(ct[i], NULL);
	}
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(cons[i].errors, 0);
		CHECK(cons[i].seen > 0); /* both consumers took part */
		total += cons[i].seen;
	}
	CHECK_EQ(total, 2 * (uintptr_t)MPMC_N);
	/* Each value exactly once: the consumers' bitmaps are disjoint and cover 1..n. */
	for (size_t w = 0; w < 2 * words; w++) {
		uint64_t a = cons[0].bitmap[w], b = cons[1].bitmap[w], want = ~0ull;
		size_t first = (w % words) * 64;

		if (first == 0)
			want &= ~1ull; /* no value 0 */
		if (first + 64 > MPMC_N + 1)
			want &= (1ull << (MPMC_N + 1 - first)) - 1;
		dup += (a & b) != 0;
		missing += ((a | b) != want);
	}
	CHECK_EQ(dup, 0);
	CHECK_EQ(missing, 0);
	CHECK_EQ(udrv_ring_count(r), 0);
	for (int i = 0; i < 2; i++)
		free(cons[i].bitmap);
	udrv_ring_free(r);
}

/* ---- one ring, two mappings ------------------------------------------------------------------ */

static void test_two_mappings(void)
{
	size_t size = udrv_ring_memsize(64);
	int fd = memfd_create("udrv-ring-test", 0);
	struct udrv_ring *a, *b;
	void *ma, *mb, *objs[8], *obj = NULL;
	unsigned left;

	REQUIRE(fd >= 0);
	REQUIRE(ftruncate(fd, (off_t)size) == 0);
	ma = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	mb = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(ma != MAP_FAILED && mb != MAP_FAILED);
	REQUIRE(ma != mb);
	a = ma;
	b = mb;
	CHECK_EQ(udrv_ring_init(a, 64, 0), 0);
	CHECK_EQ(udrv_ring_capacity(b), 64);

	/* Offsets into the shared region, not pointers. */
	for (uintptr_t i = 0; i < 100; i++) {
		CHECK_EQ(udrv_ring_enqueue(a, V(i * 64)), 0);
		CHECK_EQ(udrv_ring_count(b), 1);
		CHECK_EQ(udrv_ring_dequeue(b, &obj), 0);
		CHECK_EQ(U(obj), i * 64);
	}
	for (uintptr_t i = 0; i < 8; i++)
		objs[i] = V(i + 10);
	CHECK_EQ(udrv_ring_enqueue_burst(b, objs, 8, NULL), 8);
	memset(objs, 0, sizeof(objs));
	CHECK_EQ(udrv_ring_dequeue_bulk(a, objs, 8, &left), 8);
	CHECK_EQ(left, 0);
	for (uintptr_t i = 0; i < 8; i++)
		CHECK_EQ(U(objs[i]), i + 10);
	CHECK_EQ(udrv_ring_count(a), 0);

	munmap(ma, size);
	munmap(mb, size);
	close(fd);
}

/*
 * Two processes: the child maps the memfd afresh (at an address of its own choosing) and
 * streams PROC_N values; the parent consumes them through its own mapping.
 */
static void test_two_processes(void)
{
	size_t size = udrv_ring_memsize(256);
	int fd = memfd_create("udrv-ring-test", 0), status = 0, errors = 0;
	struct udrv_ring *r;
	uintptr_t expect = 1;
	unsigned spins = 0;
	pid_t pid;
	void *m;

	REQUIRE(fd >= 0);
	REQUIRE(ftruncate(fd, (off_t)size) == 0);
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(m != MAP_FAILED);
	r = m;
	REQUIRE(udrv_ring_init(r, 256, UDRV_RING_SP_ENQ | UDRV_RING_SC_DEQ) == 0);

	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		/* Keep the old mapping reserved so the new one surely lands elsewhere. */
		void *cm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		struct udrv_ring *cr = cm;
		void *buf[8];

		if (cm == MAP_FAILED || cm == m)
			_exit(2);
		for (uintptr_t next = 1; next <= PROC_N;) {
			unsigned n = PROC_N - next + 1 < 8 ? (unsigned)(PROC_N - next + 1) : 8;

			for (unsigned i = 0; i < n; i++)
				buf[i] = V(next + i);
			n = udrv_ring_enqueue_burst(cr, buf, n, NULL);
			if (!n)
				backoff(&spins);
			next += n;
		}
		_exit(0);
	}
	while (expect <= PROC_N) {
		void *buf[16];
		unsigned n = udrv_ring_dequeue_burst(r, buf, 16, NULL);

		if (!n)
			backoff(&spins);
		for (unsigned i = 0; i < n; i++, expect++)
			errors += U(buf[i]) != expect;
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ(errors, 0);
	CHECK_EQ(udrv_ring_count(r), 0);
	munmap(m, size);
	close(fd);
}

int main(void)
{
	RUN(test_init_validation);
	RUN(test_semantics);
	RUN(test_wrap);
	RUN(test_spsc_threads);
	RUN(test_mpmc_threads);
	RUN(test_two_mappings);
	RUN(test_two_processes);
	return test_done();
}
