/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ring_bench: udrv rings against DPDK's rte_ring, in one run, on the same machine.
 *
 * Build and run:
 *   cmake -S . -B build-bench -DUDRV_BENCH=ON && cmake --build build-bench &&
 *   build-bench/bench/ring_bench
 *
 * Prints TSC cycles per element (enqueue + dequeue), the median of REPS repetitions, and the
 * median and range of the per-repetition ratio udrv / rte_ring, for:
 *   - mode SPSC (rings created single-producer/single-consumer) and MPMC (the default mode);
 *     both use the mode-checking API (udrv_ring_enqueue_burst / rte_ring_enqueue_burst ...);
 *   - burst 1 (udrv_ring_enqueue / rte_ring_enqueue), 8 and 32 (the _burst calls), with the
 *     burst size a compile-time constant as in most applications;
 *   - one core: the same thread enqueues a burst then dequeues it;
 *     two cores: a producer pinned to CPU 0 streams to a consumer pinned to CPU 1.
 * The two implementations alternate within each repetition so drift hits both alike.
 * rte_ring is used without EAL: rte_ring_init() on our own aligned memory needs none.
 *
 * Options: -r REPS (default 9), -q (quick: fewer elements, for smoke tests),
 *          -p one|two (only that placement).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_ring.h>

#include <udrv/ring.h>

#define RING_SLOTS 1024 /* same slot count for both; rte_ring then holds 1023 */
#define MAX_REPS   31
#define MAX_BURST  32

static unsigned reps = 9;
static uint64_t one_core_elems = 1u << 21;
static uint64_t two_core_elems = 1u << 21;

static inline uint64_t rdtsc(void)
{
	return __builtin_ia32_rdtsc();
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		fprintf(stderr, "ring_bench: cannot pin to CPU %d; numbers will be noisier\n", cpu);
}

/* ---- the two rings behind one set of names, so each loop is inlined for each ring ---------- */

static struct udrv_ring *u_create(int single)
{
	struct udrv_ring *r =
	    udrv_ring_create(RING_SLOTS, single ? UDRV_RING_SP_ENQ | UDRV_RING_SC_DEQ : 0);

	if (!r) {
		perror("udrv_ring_create");
		exit(1);
	}
	return r;
}

static struct rte_ring *d_create(int single)
{
	ssize_t size = rte_ring_get_memsize(RING_SLOTS);
	struct rte_ring *r;
	int rc;

	if (size < 0) {
		fprintf(stderr, "rte_ring_get_memsize: %zd\n", size);
		exit(1);
	}
	r = aligned_alloc(128, ((size_t)size + 127) & ~(size_t)127);
	if (!r) {
		perror("aligned_alloc");
		exit(1);
	}
	rc = rte_ring_init(r, "bench", RING_SLOTS, single ? RING_F_SP_ENQ | RING_F_SC_DEQ : 0);
	if (rc) {
		fprintf(stderr, "rte_ring_init: %d\n", rc);
		exit(1);
	}
	return r;
}

#define u_enq1(r, o)   (udrv_ring_enqueue(r, o) == 0)
#define u_deq1(r, o)   (udrv_ring_dequeue(r, o) == 0)
#define u_enq(r, o, n) udrv_ring_enqueue_burst(r, o, n, NULL)
#define u_deq(r, o, n) udrv_ring_dequeue_burst(r, o, n, NULL)
#define d_enq1(r, o)   (rte_ring_enqueue(r, o) == 0)
#define d_deq1(r, o)   (rte_ring_dequeue(r, o) == 0)
#define d_enq(r, o, n) rte_ring_enqueue_burst(r, o, n, NULL)
#define d_deq(r, o, n) rte_ring_dequeue_burst(r, o, n, NULL)

/* One call moving up to B objects (B a constant; the single-object calls for 1): how many. */
#define ENQ(P, r, o, B) ((B) == 1 ? P##_enq1(r, (o)[0]) : P##_enq(r, o, B))
#define DEQ(P, r, o, B) ((B) == 1 ? P##_deq1(r, &(o)[0]) : P##_deq(r, o, B))

struct stream_arg {
	void *ring;
	uint64_t elems;
	int *go;      /* set by main to start both threads at once */
	uint64_t end; /* consumer: TSC when the last element arrived */
	int bad;      /* consumer: received a value that was never sent */
};

/*
 * One core: enqueue B then dequeue B, elems / B times. Returns TSC cycles.
 * Two cores: producer and consumer threads stream at least elems objects (a burst call may
 * move fewer than B; the counts are what moved). Values are 1..MAX_BURST; the consumer checks.
 */
#define DEFINE_LOOPS(P, T, B)                                                                      \
	static uint64_t P##_one_core_##B(T *r, uint64_t elems)                                     \
	{                                                                                          \
		void *objs[MAX_BURST];                                                             \
		uint64_t t0, i;                                                                    \
                                                                                                   \
		for (i = 0; i < MAX_BURST; i++)                                                    \
			objs[i] = (void *)(uintptr_t)(i + 1);                                      \
		t0 = rdtsc();                                                                      \
		for (i = 0; i < elems / (B); i++) {                                                \
			if (!ENQ(P, r, objs, B) || !DEQ(P, r, objs, B))                            \
				abort();                                                           \
		}                                                                                  \
		return rdtsc() - t0;                                                               \
	}                                                                                          \
	static void *P##_producer_##B(void *arg)                                                   \
	{                                                                                          \
		struct stream_arg *a = arg;                                                        \
		T *r = a->ring;                                                                    \
		void *objs[MAX_BURST];                                                             \
		uint64_t sent = 0;                                                                 \
                                                                                                   \
		pin(0);                                                                            \
		for (unsigned i = 0; i < MAX_BURST; i++)                                           \
			objs[i] = (void *)(uintptr_t)(i + 1);                                      \
		while (!__atomic_load_n(a->go, __ATOMIC_ACQUIRE))                                  \
			;                                                                          \
		while (sent < a->elems) {                                                          \
			unsigned n = ENQ(P, r, objs, B);                                           \
			if (!n)                                                                    \
				__builtin_ia32_pause();                                            \
			sent += n;                                                                 \
		}                                                                                  \
		return NULL;                                                                       \
	}                                                                                          \
	static void *P##_consumer_##B(void *arg)                                                   \
	{                                                                                          \
		struct stream_arg *a = arg;                                                        \
		T *r = a->ring;                                                                    \
		void *objs[MAX_BURST];                                                             \
		uint64_t got = 0;                                                                  \
		uintptr_t bad = 0;                                                                 \
                                                                                                   \
		pin(1);                                                                            \
		while (!__atomic_load_n(a->go, __ATOMIC_ACQUIRE))                                  \
			;                                                                          \
		while (got < a->elems) {                                                           \
			unsigned n = DEQ(P, r, objs, B);                                           \
			if (!n)                                                                    \
				__builtin_ia32_pause();                                            \
			for (unsigned i = 0; i < n; i++)                                           \
				bad |= (uintptr_t)objs[i] - 1 >= MAX_BURST;                        \
			got += n;                                                                  \
		}                                                                                  \
		a->end = rdtsc();                                                                  \
		a->bad = bad != 0;                                                                 \
		return NULL;                                                                       \
	}

DEFINE_LOOPS(u, struct udrv_ring, 1)
DEFINE_LOOPS(u, struct udrv_ring, 8)
DEFINE_LOOPS(u, struct udrv_ring, 32)
DEFINE_LOOPS(d, struct rte_ring, 1)
DEFINE_LOOPS(d, struct rte_ring, 8)
DEFINE_LOOPS(d, struct rte_ring, 32)

typedef uint64_t (*one_core_fn)(void *r, uint64_t elems);
typedef void *(*thread_fn)(void *arg);

struct impl {
	void *(*create)(int single);
	void (*destroy)(void *r);
	one_core_fn one_core[3];
	thread_fn producer[3], consumer[3];
};

static void *u_create_v(int single)
{
	return u_create(single);
}

static void *d_create_v(int single)
{
	return d_create(single);
}

static void u_destroy(void *r)
{
	udrv_ring_free(r);
}

static void d_destroy(void *r)
{
	free(r);
}

/* Adapters: the loop functions take typed rings; the casts happen once per repetition. */
#define ONE_CORE_ADAPTER(P, T, B)                                                                  \
	static uint64_t P##_oc_##B(void *r, uint64_t elems)                                        \
	{                                                                                          \
		return P##_one_core_##B((T *)r, elems);                                            \
	}
ONE_CORE_ADAPTER(u, struct udrv_ring, 1)
ONE_CORE_ADAPTER(u, struct udrv_ring, 8)
ONE_CORE_ADAPTER(u, struct udrv_ring, 32)
ONE_CORE_ADAPTER(d, struct rte_ring, 1)
ONE_CORE_ADAPTER(d, struct rte_ring, 8)
ONE_CORE_ADAPTER(d, struct rte_ring, 32)

static const struct impl impls[2] = {
    {u_create_v,
     u_destroy,
     {u_oc_1, u_oc_8, u_oc_32},
     {u_producer_1, u_producer_8, u_producer_32},
     {u_consumer_1, u_consumer_8, u_consumer_32}},
    {d_create_v,
     d_destroy,
     {d_oc_1, d_oc_8, d_oc_32},
     {d_producer_1, d_producer_8, d_producer_32},
     {d_consumer_1, d_consumer_8, d_consumer_32}},
};
static const unsigned bursts[3] = {1, 8, 32};

/* Cycles per element for one repetition. */
static double run_once(const struct impl *im, int single, int two_cores, int b)
{
	void *r = im->create(single);
	double cpe;

	if (!two_cores) {
		im->one_core[b](r, one_core_elems / 16); /* warm up */
		cpe = (double)im->one_core[b](r, one_core_elems) / (double)one_core_elems;
	} else {
		int go = 0;
		struct stream_arg a = {.ring = r, .elems = two_core_elems, .go = &go};
		pthread_t pt, ct;
		uint64_t t0;

		if (pthread_create(&ct, NULL, im->consumer[b], &a) ||
		    pthread_create(&pt, NULL, im->producer[b], &a)) {
			perror("pthread_create");
			exit(1);
		}
		usleep(2000); /* both threads pinned and spinning on go */
		t0 = rdtsc();
		__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
		pthread_join(pt, NULL);
		pthread_join(ct, NULL);
		if (a.bad) {
			fprintf(stderr, "ring_bench: consumer received garbage\n");
			exit(1);
		}
		cpe = (double)(a.end - t0) / (double)two_core_elems;
	}
	im->destroy(r);
	return cpe;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v. */
static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double tsc_ghz(void)
{
	struct timespec a, b;
	uint64_t t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &a);
	t0 = rdtsc();
	usleep(100000);
	clock_gettime(CLOCK_MONOTONIC, &b);
	t1 = rdtsc();
	return (double)(t1 - t0) /
	       ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec));
}

int main(int argc, char **argv)
{
	int opt, only = -1;

	while ((opt = getopt(argc, argv, "r:qp:")) != -1) {
		switch (opt) {
		case 'r':
			reps = (unsigned)atoi(optarg);
			if (reps < 1 || reps > MAX_REPS) {
				fprintf(stderr, "ring_bench: -r takes 1..%d\n", MAX_REPS);
				return 2;
			}
			break;
		case 'q':
			one_core_elems >>= 4;
			two_core_elems >>= 4;
			break;
		case 'p':
			only = strcmp(optarg, "two") == 0;
			break;
		default:
			fprintf(stderr, "usage: %s [-r reps] [-q] [-p one|two]\n", argv[0]);
			return 2;
		}
	}
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		fprintf(stderr, "ring_bench: needs CPUs 0 and 1\n");
		return 1;
	}
	pin(0);
	printf("ring_bench: %u slots, median of %u reps, TSC %.2f GHz; "
	       "TSC cycles per element (enqueue + dequeue), lower is better\n\n",
	       RING_SLOTS, reps, tsc_ghz());
	printf(
	    "| mode | placement | burst | udrv | rte_ring | udrv / rte_ring | ratio min..max |\n");
	printf(
	    "|------|-----------|------:|-----:|---------:|----------------:|---------------:|\n");
	for (int single = 1; single >= 0; single--) {
		for (int two = 0; two <= 1; two++) {
			if (only >= 0 && two != only)
				continue;
			for (int b = 0; b < 3; b++) {
				double v[2][MAX_REPS], ratio[MAX_REPS], med[2], rmed;

				for (unsigned rep = 0; rep < reps; rep++) {
					/* Alternate which ring goes first. */
					int first = rep % 2;

					v[first][rep] = run_once(&impls[first], single, two, b);
					v[!first][rep] = run_once(&impls[!first], single, two, b);
					ratio[rep] = v[0][rep] / v[1][rep];
				}
				med[0] = median(v[0], reps);
				med[1] = median(v[1], reps);
				/*
				 * The ratio column is the median of the per-repetition ratios, not
				 * the ratio of the medians: the two runs of a repetition follow
				 * each other closely, so a machine that changes speed between
				 * repetitions (a VM's vCPUs moving between host cores) affects both
				 * alike.
				 */
				rmed = median(ratio, reps);
				printf("| %s | %s | %u | %.1f | %.1f | %.2f | %.2f..%.2f |\n",
				       single ? "SPSC" : "MPMC", two ? "two cores" : "one core",
				       bursts[b], med[0], med[1], rmed, ratio[0], ratio[reps - 1]);
				fflush(stdout);
			}
		}
	}
	return 0;
}
