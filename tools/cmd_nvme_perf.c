/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv nvme perf: like SPDK's perf. C queue pairs, each driven by its own thread, each
 * keeping DEPTH I/Os of SIZE bytes in flight for SECONDS; every I/O's latency goes into a
 * log-linear histogram (tools/cmd_nvme_hist.c), from which the percentiles and --plot come;
 * cmd_nvme_perf_report.c prints the results.
 */
#include <errno.h>
#include <poll.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <udrv/log.h>
#include <udrv/nvme.h>

#include "cli.h"

#define ERRS_KEPT 5u			/* I/O errors described per queue pair */
#define DRAIN_NS  (30ull * 1000000000u) /* waiting for outstanding I/O at the end */
#define SECOND_NS 1000000000ull
#define TICK_NS	  (100ull * 1000000u) /* the main thread's progress poll */

enum workload { W_READ, W_WRITE, W_RANDREAD, W_RANDWRITE, W_RW, W_RANDRW };
static const char *const workload_names[] = {"read",	  "write", "randread",
					     "randwrite", "rw",	   "randrw"};

struct perf_opts {
	const char *device, *plot;
	uint64_t depth, io_size, seconds, qpairs, nsid, read_pct;
	enum workload w;
	bool has_m, json, interrupts, yes;
};

struct worker;

struct pslot {
	struct worker *w;
	void *buf;
	uint64_t t0, lba;
	bool read;
};

struct perf;

struct worker {
	struct perf *p;
	unsigned id;
	pthread_t tid;
	struct udrv_nvme_qpair *qp;
	int efd; /* --interrupts: the queue pair's eventfd, else -1 */
	int setup_rc;
	char setup_err[256];

	struct pslot *slots;
	struct pslot **idle;
	unsigned nidle;
	uint64_t rng;
	uint64_t seq_next, seq_lo, seq_hi; /* sequential: this worker's units [lo, hi) */
	uint64_t deadline;
	bool stopping, eagain, failed;

	struct nvme_cli_hist hist[2]; /* reads, writes: completed in the window */
	uint64_t t_end;		      /* the window is [p->t_start, t_end) */
	uint64_t cpu_ns;	      /* this thread's CPU time in its window */
	uint64_t errors;
	struct nvme_cli_perf_err errs[ERRS_KEPT];
	unsigned nerrs;
	unsigned stuck; /* still outstanding after the drain */
	_Atomic uint64_t pub_ios, pub_done;
};

struct perf {
	struct perf_opts o;
	struct udrv_nvme_ctrlr *c;
	uint32_t nsid, bs, io_blocks;
	uint64_t units; /* I/O-sized, aligned pieces of the namespace */
	bool random;
	pthread_barrier_t ready, go;
	bool abort;
	uint64_t t_start, deadline;
	struct worker *w;
};

static inline uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void add_err(struct worker *w, const struct pslot *s, bool at_submit, int rc,
		    const struct udrv_nvme_cpl *cpl)
{
	w->errors++;
	if (w->nerrs < ERRS_KEPT) {
		struct nvme_cli_perf_err *e = &w->errs[w->nerrs++];

		e->qpair = w->id;
		e->read = s->read;
		e->at_submit = at_submit;
		e->lba = s->lba;
		e->rc = rc;
		e->status = cpl ? cpl->status : 0;
	}
}

static void perf_cb(void *arg, const struct udrv_nvme_cpl *cpl);

static void submit(struct worker *w, struct pslot *s)
{
	struct perf *p = w->p;
	uint64_t unit;
	int rc;

	if (p->o.read_pct == 100)
		s->read = true;
	else if (p->o.read_pct == 0)
		s->read = false;
	else
		s->read = xorshift(&w->rng) % 100 < p->o.read_pct;
	if (p->random) {
		unit = xorshift(&w->rng) % p->units;
	} else {
		unit = w->seq_next++;
		if (w->seq_next == w->seq_hi)
			w->seq_next = w->seq_lo;
	}
	s->lba = unit * p->io_blocks;
	s->t0 = nvme_cli_now_ns();
	if (s->read)
		rc = udrv_nvme_read(w->qp, p->nsid, s->buf, s->lba, p->io_blocks, perf_cb, s);
	else
		rc = udrv_nvme_write(w->qp, p->nsid, s->buf, s->lba, p->io_blocks, perf_cb, s);
	if (!rc)
		return;
	w->idle[w->nidle++] = s;
	if (rc == -EAGAIN) {
		w->eagain = true;
		return;
	}
	/* -ENODEV, or a bug (-EINVAL, -EFAULT) that would repeat: stop this queue pair. */
	add_err(w, s, true, rc, NULL);
	w->failed = true;
}

static void perf_cb(void *arg, const struct udrv_nvme_cpl *cpl)
{
	struct pslot *s = arg;
	struct worker *w = s->w;
	uint64_t now = nvme_cli_now_ns();

	if (cpl->rc) {
		add_err(w, s, false, cpl->rc, cpl);
		if (cpl->rc == -ENODEV)
			w->failed = true;
	} else if (!w->stopping && now <= w->deadline) {
		nvme_cli_hist_add(&w->hist[s->read ? 0 : 1], now - s->t0);
	}
	if (w->stopping || w->failed || now >= w->deadline)
		w->idle[w->nidle++] = s;
	else
		submit(w, s);
}

/* CPU time of the calling thread, user and system. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * SECOND_NS + (uint64_t)ts.tv_nsec;
}

static void run(struct worker *w)
{
	struct perf *p = w->p;
	uint64_t now, bound, cpu0 = thread_cpu_ns();

	w->deadline = p->deadline;
	while (w->nidle && !w->eagain && !w->failed)
		submit(w, w->idle[--w->nidle]);
	for (;;) {
		int n = udrv_nvme_process_completions(w->qp, 0);

		if (n < 0)
			w->failed = true;
		/* --interrupts: nothing done, so sleep until the queue's MSI-X vector fires
		 * (at most 1 ms, so deadlines and Ctrl-C are still seen) instead of spinning. */
		if (n == 0 && w->efd >= 0 && udrv_nvme_qpair_outstanding(w->qp)) {
			struct pollfd pfd = {.fd = w->efd, .events = POLLIN};
			uint64_t v;

			if (poll(&pfd, 1, 1) > 0 && read(w->efd, &v, sizeof(v)) < 0)
				w->efd = -1; /* cannot happen for an eventfd; spin then */
		}
		now = nvme_cli_now_ns();
		if (now >= w->deadline || w->failed || nvme_cli_interrupted())
			break;
		w->eagain = false;
		while (w->nidle && !w->eagain && !w->failed)
			submit(w, w->idle[--w->nidle]);
		atomic_store_explicit(&w->pub_ios, w->hist[0].n + w->hist[1].n,
				      memory_order_relaxed);
	}
	w->t_end = now < w->deadline ? now : w->deadline;
	w->cpu_ns = thread_cpu_ns() - cpu0;
	w->stopping = true;
	/* Let everything in flight complete before the queue pair goes. */
	bound = now + DRAIN_NS;
	while (udrv_nvme_qpair_outstanding(w->qp) && nvme_cli_now_ns() < bound)
		udrv_nvme_process_completions(w->qp, 0);
	w->stuck = udrv_nvme_qpair_outstanding(w->qp);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct perf *p = w->p;

	/* The queue pair belongs to the thread that creates it. */
	w->qp = udrv_nvme_qpair_create(p->c, (unsigned)p->o.depth + 1);
	w->efd = w->qp ? udrv_nvme_qpair_eventfd(w->qp) : -1;
	if (!w->qp) {
		const char *m = udrv_errmsg();

		w->setup_rc = -errno;
		snprintf(w->setup_err, sizeof(w->setup_err), "%s", m[0] ? m : strerror(errno));
	}
	pthread_barrier_wait(&p->ready);
	pthread_barrier_wait(&p->go);
	if (!p->abort)
		run(w);
	/* Outstanding I/O (only if the drain timed out) gets -ECANCELED: not resubmitted. */
	udrv_nvme_qpair_destroy(w->qp);
	w->qp = NULL;
	atomic_store(&w->pub_done, 1);
	return NULL;
}

static void perf_usage(FILE *f)
{
	fprintf(
	    f, "usage: udrv nvme perf DEVICE [-q DEPTH] [-o SIZE] [-w WORKLOAD] [-M READ%%]\n"
	       "                      [-t SECONDS] [-c QPAIRS] [-n NSID] [--interrupts] [--json] "
	       "[--yes]\n"
	       "                      [--plot FILE]\n"
	       "\n"
	       "Measure IOPS, throughput and latency, like SPDK's perf: QPAIRS queue pairs, each\n"
	       "driven by its own thread, each keeping DEPTH I/Os of SIZE bytes in flight for\n"
	       "SECONDS. Every I/O's latency is measured (CLOCK_MONOTONIC) into a log-linear\n"
	       "histogram (16 buckets per power of two). Prints IOPS, MiB/s, and average, min,\n"
	       "max, median, 99th and 99.9th percentile latency per queue pair and in total,\n"
	       "and the CPU time the queue pairs' threads spent per I/O (user + system).\n"
	       "Write workloads OVERWRITE the namespace.\n"
	       "\n"
	       "  DEVICE             a PCI address (0000:01:00.0) or vfio-user:PATH\n"
	       "  -q, --depth N      I/Os in flight per queue pair (32; at most the queue\n"
	       "                     entries - 1)\n"
	       "  -o, --io-size SIZE bytes per I/O, a multiple of the block size up to the max\n"
	       "                     transfer, with K or M allowed (4K)\n"
	       "  -w, --workload W   read, write (sequential), randread, randwrite (random LBAs\n"
	       "                     aligned to SIZE), rw or randrw (mixed, see -M) (randread)\n"
	       "  -M, --rwmixread P  with rw and randrw, the percentage of reads, 0..100 (50)\n"
	       "  -t, --time S       seconds to run, 1..86400 (10)\n"
	       "  -c, --qpairs N     queue pairs, one thread each (1; at most those granted)\n"
	       "  -n, --nsid N       the namespace (1)\n"
	       "  --interrupts       sleep on the queue's MSI-X interrupt when nothing completed,\n"
	       "                     instead of polling (less CPU per I/O at low queue depth)\n"
	       "  --json             the results as one JSON object on stdout\n"
	       "  --yes              let write workloads overwrite a real device (PCI address)\n"
	       "  --plot FILE        draw the latency histogram into FILE, .png or .svg, with\n"
	       "                     gnuplot (apt-get install gnuplot-nox)\n"
	       "\n"
	       "Sequential workloads give each queue pair its own part of the namespace. On a\n"
	       "terminal, IOPS and MiB/s so far are shown on stderr every second. Ctrl-C stops\n"
	       "early and prints what was measured. Exit status 1 on any I/O error.\n");
}

/* Parse; 0, or the exit status (-1: help printed). */
static int parse_opts(int argc, char **argv, struct perf_opts *o)
{
	static const struct option longopts[] = {
	    {"depth", required_argument, NULL, 'q'},
	    {"io-size", required_argument, NULL, 'o'},
	    {"workload", required_argument, NULL, 'w'},
	    {"rwmixread", required_argument, NULL, 'M'},
	    {"time", required_argument, NULL, 't'},
	    {"qpairs", required_argument, NULL, 'c'},
	    {"nsid", required_argument, NULL, 'n'},
	    {"json", no_argument, NULL, 'j'},
	    {"interrupts", no_argument, NULL, 'I'},
	    {"yes", no_argument, NULL, 'y'},
	    {"plot", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	bool found;
	int opt;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":q:o:w:M:t:c:n:hjI", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			if (!cli_parse_u64(optarg, 1, 65535, &o->depth)) {
				fprintf(stderr,
					"udrv nvme perf: -q must be 1..65535 I/Os in flight, not "
					"'%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'o':
			if (!cli_parse_size(optarg, &o->io_size) || o->io_size > UINT32_MAX) {
				fprintf(stderr,
					"udrv nvme perf: -o must be bytes, or a number with K or M "
					"such as 4K, not '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'w':
			found = false;
			for (unsigned i = 0; i < sizeof(workload_names) / sizeof(*workload_names);
			     i++) {
				if (!strcmp(optarg, workload_names[i])) {
					o->w = (enum workload)i;
					found = true;
				}
			}
			if (!found) {
				fprintf(stderr,
					"udrv nvme perf: -w must be read, write, randread, "
					"randwrite, rw or randrw, not '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'M':
			if (!cli_parse_u64(optarg, 0, 100, &o->read_pct)) {
				fprintf(stderr,
					"udrv nvme perf: -M must be a percentage of reads, 0..100, "
					"not '%s'\n",
					optarg);
				return 2;
			}
			o->has_m = true;
			break;
		case 't':
			if (!cli_parse_u64(optarg, 1, 86400, &o->seconds)) {
				fprintf(stderr,
					"udrv nvme perf: -t must be whole seconds, 1..86400, not "
					"'%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'c':
			if (!cli_parse_u64(optarg, 1, 65535, &o->qpairs)) {
				fprintf(
				    stderr,
				    "udrv nvme perf: -c must be a number of queue pairs from 1, "
				    "not '%s'\n",
				    optarg);
				return 2;
			}
			break;
		case 'n':
			if (!cli_parse_u64(optarg, 1, UINT32_MAX - 1, &o->nsid)) {
				fprintf(
				    stderr,
				    "udrv nvme perf: -n must be a namespace ID from 1, not '%s'\n",
				    optarg);
				return 2;
			}
			break;
		case 'j':
			o->json = true;
			break;
		case 'I':
			o->interrupts = true;
			break;
		case 'y':
			o->yes = true;
			break;
		case 'p':
			o->plot = optarg;
			break;
		case 'h':
			perf_usage(stdout);
			return -1;
		default:
			return nvme_cli_opt_error("perf", opt, argv);
		}
	}
	if (optind + 1 != argc)
		return nvme_cli_device_error("perf", argc, argv);
	o->device = argv[optind];
	if (o->has_m && o->w != W_RW && o->w != W_RANDRW) {
		fprintf(stderr, "udrv nvme perf: -M goes with -w rw or randrw, not with -w %s\n",
			workload_names[o->w]);
		return 2;
	}
	if (o->w == W_READ || o->w == W_RANDREAD)
		o->read_pct = 100;
	else if (o->w == W_WRITE || o->w == W_RANDWRITE)
		o->read_pct = 0;
	else if (!o->has_m)
		o->read_pct = 50;
	if (o->plot)
		return nvme_cli_plot_check("perf", o->plot);
	return 0;
}

/* The options that depend on the controller and namespace. 0, or 2 with a message. */
static int check_opts(struct perf *p, uint64_t blocks)
{
	const struct udrv_nvme_ctrlr_info *ci = udrv_nvme_ctrlr_info(p->c);
	struct perf_opts *o = &p->o;
	uint32_t max_xfer = ci->max_xfer - ci->max_xfer % p->bs;
	char mx[32];

	if (o->qpairs > ci->io_queues) {
		fprintf(
		    stderr,
		    "udrv nvme perf: -c must be 1..%u (the queue pairs %s granted), not %" PRIu64
		    "\n",
		    ci->io_queues, o->device, o->qpairs);
		return 2;
	}
	if (o->depth > ci->max_entries - 1) {
		fprintf(stderr,
			"udrv nvme perf: -q must be 1..%u (the controller's queues have %u "
			"entries), not %" PRIu64 "\n",
			ci->max_entries - 1, ci->max_entries, o->depth);
		return 2;
	}
	cli_iec(max_xfer, mx, sizeof(mx));
	if (o->io_size % p->bs || o->io_size > max_xfer || o->io_size > blocks * p->bs) {
		fprintf(stderr,
			"udrv nvme perf: -o must be a multiple of the %" PRIu32
			"-byte block size up to %s (the max transfer), not %" PRIu64 "\n",
			p->bs, mx, o->io_size);
		return 2;
	}
	p->io_blocks = (uint32_t)(o->io_size / p->bs);
	p->units = blocks / p->io_blocks;
	return 0;
}

/* The results: rows per queue pair, then in all, all reads, all writes (in r->rows, C + 3
 * of them), and the first errors of each queue pair (in r->errs, C * ERRS_KEPT). */
static void make_result(const struct perf *p, struct nvme_cli_perf_result *r)
{
	unsigned C = (unsigned)p->o.qpairs;
	struct nvme_cli_perf_row *rows = r->rows;
	struct nvme_cli_perf_err *errs = (struct nvme_cli_perf_err *)r->errs;
	uint64_t longest = 0;

	r->device = p->o.device;
	r->workload = workload_names[p->o.w];
	r->nsid = p->nsid;
	r->io_blocks = p->io_blocks;
	r->io_size = p->o.io_size;
	r->depth = p->o.depth;
	r->qpairs = p->o.qpairs;
	r->seconds = p->o.seconds;
	r->read_pct = p->o.read_pct;
	r->c = p->c;
	for (unsigned i = 0; i < C; i++) {
		const struct worker *w = &p->w[i];
		uint64_t span = w->t_end > p->t_start ? w->t_end - p->t_start : 0;

		nvme_cli_hist_merge(&rows[i].h, &w->hist[0]);
		nvme_cli_hist_merge(&rows[i].h, &w->hist[1]);
		rows[i].secs = (double)span / 1e9;
		rows[i].cpu_secs = (double)w->cpu_ns / 1e9;
		rows[C].cpu_secs += rows[i].cpu_secs;
		rows[i].errors = w->errors;
		if (span > longest)
			longest = span;
		nvme_cli_hist_merge(&rows[C].h, &rows[i].h);
		nvme_cli_hist_merge(&rows[C + 1].h, &w->hist[0]);
		nvme_cli_hist_merge(&rows[C + 2].h, &w->hist[1]);
		r->errors += w->errors;
		for (unsigned k = 0; k < w->nerrs; k++)
			errs[r->nerrs++] = w->errs[k];
	}
	for (unsigned i = C; i < C + 3; i++)
		rows[i].secs = (double)longest / 1e9;
}

/* ---- the run ---- */

/* Sleep until every worker is done, with the progress line once a second on a terminal. */
static void wait_workers(struct perf *p, bool show)
{
	unsigned C = (unsigned)p->o.qpairs;
	uint64_t next = p->t_start + SECOND_NS;

	for (;;) {
		struct timespec ts = {.tv_nsec = (long)TICK_NS};
		unsigned done = 0;
		uint64_t ios = 0, now;

		nanosleep(&ts, NULL);
		for (unsigned i = 0; i < C; i++) {
			done += (unsigned)atomic_load(&p->w[i].pub_done);
			ios += atomic_load_explicit(&p->w[i].pub_ios, memory_order_relaxed);
		}
		if (done == C)
			break;
		now = nvme_cli_now_ns();
		if (show && now >= next && now < p->deadline) {
			double s = (double)(now - p->t_start) / 1e9;

			fprintf(stderr,
				"\r\033[Kperf: %.0f s of %" PRIu64 ": %.0f IOPS, %.1f MiB/s", s,
				p->o.seconds, (double)ios / s,
				(double)ios * (double)p->o.io_size / 1048576.0 / s);
			next += SECOND_NS;
		}
	}
	if (show)
		fputs("\r\033[K", stderr);
}

/* Buffers for every slot of every worker. 0, or 1 with the reason printed. */
static int alloc_slots(struct perf *p)
{
	uint64_t rng = nvme_cli_now_ns() | 1;

	for (unsigned i = 0; i < p->o.qpairs; i++) {
		struct worker *w = &p->w[i];

		w->p = p;
		w->id = i;
		w->rng = (rng += 0x9e3779b97f4a7c15ull) | 1;
		w->slots = calloc(p->o.depth, sizeof(*w->slots));
		w->idle = calloc(p->o.depth, sizeof(*w->idle));
		if (!w->slots || !w->idle)
			return cli_fail("nvme perf", -ENOMEM);
		for (unsigned k = 0; k < p->o.depth; k++) {
			struct pslot *s = &w->slots[k];

			s->w = w;
			s->buf = udrv_nvme_dma_alloc(p->c, p->o.io_size);
			if (!s->buf)
				return cli_fail("nvme perf: cannot allocate DMA buffers", -errno);
			/* Something other than zeros to write. */
			for (size_t b = 0; b + 8 <= p->o.io_size; b += 8) {
				uint64_t x = xorshift(&w->rng);

				memcpy((char *)s->buf + b, &x, 8);
			}
			w->idle[w->nidle++] = s;
		}
		/* Sequential: this worker's share of the namespace. */
		if (p->units >= p->o.qpairs) {
			w->seq_lo = p->units * i / p->o.qpairs;
			w->seq_hi = p->units * (i + 1) / p->o.qpairs;
		} else {
			w->seq_lo = 0;
			w->seq_hi = p->units;
		}
		w->seq_next = w->seq_lo;
	}
	return 0;
}

static void free_slots(struct perf *p)
{
	for (unsigned i = 0; p->w && i < p->o.qpairs; i++) {
		for (unsigned k = 0; p->w[i].slots && k < p->o.depth; k++)
			udrv_dma_free(udrv_nvme_domain(p->c), p->w[i].slots[k].buf);
		free(p->w[i].slots);
		free(p->w[i].idle);
	}
	free(p->w);
}

/* Start the workers, let them run, join them. 0, or 1 with the reason printed. */
static int run_workers(struct perf *p, bool show)
{
	unsigned C = (unsigned)p->o.qpairs, started = 0;
	int ret = 0;

	pthread_barrier_init(&p->ready, NULL, C + 1);
	pthread_barrier_init(&p->go, NULL, C + 1);
	for (; started < C; started++) {
		int e = pthread_create(&p->w[started].tid, NULL, worker_main, &p->w[started]);

		if (e) {
			fprintf(stderr, "udrv nvme perf: cannot start thread %u: %s\n", started,
				strerror(e));
			/* Those started wait at the barrier for C + 1: it never opens. Exit. */
			exit(1);
		}
	}
	pthread_barrier_wait(&p->ready);
	for (unsigned i = 0; i < C; i++) {
		if (p->w[i].setup_rc) {
			fprintf(stderr,
				"udrv: nvme perf: cannot create I/O queue pair %u of %u: %s\n",
				i + 1, C, p->w[i].setup_err);
			p->abort = true;
			ret = 1;
			break;
		}
	}
	p->t_start = nvme_cli_now_ns();
	p->deadline = p->t_start + p->o.seconds * SECOND_NS;
	pthread_barrier_wait(&p->go);
	if (!p->abort)
		wait_workers(p, show);
	for (unsigned i = 0; i < C; i++)
		pthread_join(p->w[i].tid, NULL);
	pthread_barrier_destroy(&p->ready);
	pthread_barrier_destroy(&p->go);
	return ret;
}

int cmd_nvme_perf(int argc, char **argv)
{
	struct perf p = {.o = {.depth = 32,
			       .io_size = 4096,
			       .w = W_RANDREAD,
			       .seconds = 10,
			       .qpairs = 1,
			       .nsid = 1}};
	struct nvme_cli_perf_result r = {0};
	uint64_t blocks, stuck = 0;
	bool interrupted, failed = false;
	char sz[32];
	int ret;

	ret = parse_opts(argc, argv, &p.o);
	if (ret)
		return ret < 0 ? 0 : ret;
	p.random = p.o.w == W_RANDREAD || p.o.w == W_RANDWRITE || p.o.w == W_RANDRW;
	if (p.o.w != W_READ && p.o.w != W_RANDREAD &&
	    !nvme_cli_may_overwrite("perf", p.o.device, p.o.yes))
		return 2;
	ret = nvme_cli_open_flags("perf", p.o.device, p.o.qpairs > 8 ? (unsigned)p.o.qpairs : 0,
				  p.o.interrupts ? UDRV_NVME_INTERRUPTS : 0, &p.c);
	if (ret)
		return ret;
	p.nsid = (uint32_t)p.o.nsid;
	if (!nvme_cli_namespace("perf", p.o.device, p.c, p.nsid, &blocks, &p.bs)) {
		ret = 2;
		goto out;
	}
	ret = check_opts(&p, blocks);
	if (ret)
		goto out;
	p.w = calloc(p.o.qpairs, sizeof(*p.w));
	r.rows = calloc(p.o.qpairs + 3, sizeof(*r.rows));
	r.errs = calloc(p.o.qpairs * ERRS_KEPT, sizeof(*r.errs));
	if (!p.w || !r.rows || !r.errs) {
		ret = cli_fail("nvme perf", -ENOMEM);
		goto out;
	}
	ret = alloc_slots(&p);
	if (ret)
		goto out;

	cli_iec(p.o.io_size, sz, sizeof(sz));
	if (!p.o.json) {
		printf("perf %s namespace %" PRIu32 ": %s", p.o.device, p.nsid,
		       workload_names[p.o.w]);
		if (p.o.read_pct != 0 && p.o.read_pct != 100)
			printf(" (%" PRIu64 "%% reads)", p.o.read_pct);
		printf(", %s I/Os, queue depth %" PRIu64 ", %" PRIu64 " queue pair%s, %" PRIu64
		       " s\n",
		       sz, p.o.depth, p.o.qpairs, p.o.qpairs == 1 ? "" : "s", p.o.seconds);
		fflush(stdout);
	}

	nvme_cli_catch_signals();
	ret = run_workers(&p, nvme_cli_progress());
	interrupted = nvme_cli_interrupted();
	nvme_cli_restore_signals();
	if (ret)
		goto out;

	for (unsigned i = 0; i < p.o.qpairs; i++) {
		stuck += p.w[i].stuck;
		failed |= p.w[i].failed;
	}
	r.interrupted = interrupted;
	make_result(&p, &r);
	if (p.o.json)
		nvme_cli_perf_json(&r);
	else
		nvme_cli_perf_text(&r);
	fflush(stdout);
	nvme_cli_print_stats(stderr, p.c);
	if (stuck)
		fprintf(stderr,
			"udrv nvme perf: %" PRIu64 " I/Os were still outstanding %llu s after the "
			"end; the driver should have timed them out\n",
			stuck, DRAIN_NS / SECOND_NS);
	if (!r.rows[p.o.qpairs].h.n && !r.errors && !failed)
		fprintf(stderr,
			"udrv nvme perf: no I/O completed within the %" PRIu64
			" s; give the device more time with -t\n",
			p.o.seconds);
	if (interrupted)
		fprintf(stderr, "udrv nvme perf: interrupted after %.1f s\n",
			r.rows[p.o.qpairs].secs);
	else if (failed && !r.errors)
		fprintf(stderr, "udrv nvme perf: %s is gone (removed, or its server died)\n",
			p.o.device);
	ret = r.errors || stuck || interrupted || failed ? 1 : 0;
	if (p.o.plot && r.rows[p.o.qpairs].h.n) {
		char title[512];

		snprintf(title, sizeof(title),
			 "udrv nvme perf %s: %s, %s, QD %" PRIu64 ", %" PRIu64 " qpair%s, %" PRIu64
			 " s",
			 p.o.device, workload_names[p.o.w], sz, p.o.depth, p.o.qpairs,
			 p.o.qpairs == 1 ? "" : "s", p.o.seconds);
		if (nvme_cli_plot("perf", p.o.plot, title, &r.rows[p.o.qpairs + 1].h,
				  &r.rows[p.o.qpairs + 2].h))
			ret = 1;
		else if (!p.o.json)
			printf("latency histogram: %s\n", p.o.plot);
	}
out:
	free(r.rows);
	free((void *)r.errs);
	free_slots(&p);
	udrv_nvme_close(p.c);
	return ret;
}
