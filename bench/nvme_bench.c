/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvme_bench: the NVMe driver's own cost per I/O, and IOPS, against a controller (normally
 * the emulated one, `udrv emu nvme`, running as another process on the other core).
 *
 *   nvme_bench [options] DEVICE           e.g. nvme_bench vfio-user:/tmp/nvme.sock
 *
 * Timed mode (default): one queue pair, 4 KiB random reads (and writes with -w), at queue
 * depths 1 and 32, -t seconds per row after a short warm-up, every row -r times (the rows
 * taking turns); each metric is the median over the repetitions. Per row: IOPS, average and
 * p99 latency (submit call to the poll that reaped it), and the driver-side TSC cycles per
 * I/O: rdtsc around the driver calls only, never around the wait for the device:
 *   submit    udrv_nvme_read()/write() calls, per I/O
 *   complete  udrv_nvme_process_completions() calls that returned > 0, per I/O (includes the
 *             bench's callback, which only pushes the slot on a list)
 *   driver    submit + complete: the driver's cycles per I/O
 *   p50       medians: of a submit call, and of a reaping poll's cycles per I/O reaped
 *             (the means above include the odd interrupt or preemption; medians do not)
 *   empty     polls that found nothing: how many per I/O, and cycles per such poll
 * The cost of one rdtsc pair is measured at start and subtracted from every interval.
 *
 * Callgrind mode (--callgrind N): exactly N I/Os at depth -d (first depth given), with
 * callgrind's collection switched on only around the driver calls; run it under
 *   valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=OUT nvme_bench ...
 * Three dumps are written (OUT.1, OUT.2, OUT.3; see callgrind_annotate):
 *   io     N I/Os: submits and every poll, empty ones included
 *   empty  M polls that find nothing while one command is outstanding (the controller is
 *          stopped with SIGSTOP for this: needs --emu-pid; skipped without it)
 *   idle   M polls with nothing outstanding
 * and a line "callgrind: ios=N empty_polls=E ..." gives the counts to divide by.
 *
 * Options:
 *   -t SECONDS   per row (default 2)         -d DEPTHS   e.g. 1,32 (default 1,32)
 *   -r REPS      repetitions (default 3)
 *   -w           also writes (-W: writes only)  -s BYTES  I/O size (default 4096)
 *   -n NSID      namespace (default 1)       -e ENTRIES  queue pair entries (default: driver's)
 *   -c CPU       pin to CPU                  --callgrind N, --emu-pid PID, --probe M
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <udrv/log.h>
#include <udrv/nvme.h>

#ifdef UDRV_HAVE_CALLGRIND_H
#include <valgrind/callgrind.h>
#define COLLECT() CALLGRIND_TOGGLE_COLLECT
#define HAVE_CG	  1
#else
#define COLLECT()		   ((void)0)
#define RUNNING_ON_VALGRIND	   0
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#define HAVE_CG			   0
#endif

#define MAX_DEPTHS    8
#define MAX_DEPTH     1024
#define LAT_BUCKET    64u    /* latency histogram: buckets of 64 TSC cycles ... */
#define LAT_BUCKETS   65536u /* ... up to ~4.2 M cycles (~1.8 ms at 2.3 GHz), then one more */
#define CYC_BUCKET    4u     /* driver cycles per call: buckets of 4 cycles ... */
#define CYC_BUCKETS   4096u  /* ... up to 16384, then one more */
#define WARMUP_NS     300000000ull
#define CG_WARMUP     2000u
#define DEFAULT_PROBE 10000u

static inline uint64_t rdtsc(void)
{
	return __builtin_ia32_rdtsc();
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct io {
	struct bench *b;
	unsigned idx;
	void *buf;
	uint64_t t_submit;
};

struct stats {
	uint64_t ios, submit_cyc, complete_cyc, polls, empty_polls, empty_cyc, lat_sum;
	uint64_t ns;			  /* wall time of the row */
	uint32_t lat[LAT_BUCKETS + 1];	  /* latency, LAT_BUCKET cycles a bucket */
	uint32_t submit[CYC_BUCKETS + 1]; /* cycles per submit call, CYC_BUCKET a bucket */
	uint32_t cpl[CYC_BUCKETS + 1];	  /* cycles per I/O of each reaping poll, per I/O */
};

struct bench {
	struct udrv_nvme_ctrlr *c;
	struct udrv_nvme_qpair *qp;
	uint32_t nsid, nlb;
	uint64_t span; /* I/O-sized units in the namespace */
	uint64_t rng;
	bool write;
	struct io *ios;
	unsigned *done; /* slots completed by the last poll */
	unsigned ndone;
	uint64_t errors;
	int last_err;
	uint64_t ovh; /* cycles of an empty rdtsc pair */
};

static void on_done(void *arg, const struct udrv_nvme_cpl *cpl)
{
	struct io *io = arg;
	struct bench *b = io->b;

	if (__builtin_expect(cpl->rc != 0, 0)) {
		b->errors++;
		b->last_err = cpl->rc;
	}
	b->done[b->ndone++] = io->idx;
}

static inline uint64_t next_lba(struct bench *b)
{
	/* xorshift64*: cheap, and the same sequence every run */
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return ((b->rng * 0x2545F4914F6CDD1Dull) >> 16) % b->span * b->nlb;
}

static inline int submit_one(struct bench *b, struct io *io)
{
	uint64_t lba = next_lba(b);

	return b->write ? udrv_nvme_write(b->qp, b->nsid, io->buf, lba, b->nlb, on_done, io)
			: udrv_nvme_read(b->qp, b->nsid, io->buf, lba, b->nlb, on_done, io);
}

static void die_rc(const char *what, int rc)
{
	const char *m = udrv_errmsg();

	fprintf(stderr, "nvme_bench: %s: %s%s%s\n", what, strerror(-rc), m && *m ? ": " : "",
		m && *m ? m : "");
	exit(1);
}

static uint64_t rdtsc_overhead(void)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 100000; i++) {
		uint64_t t0 = rdtsc();
		uint64_t t1 = rdtsc();

		if (t1 - t0 < best)
			best = t1 - t0;
	}
	return best;
}

static double tsc_ghz(void)
{
	uint64_t n0 = now_ns(), t0 = rdtsc(), n1, t1;
	struct timespec d = {0, 100000000};

	nanosleep(&d, NULL);
	n1 = now_ns();
	t1 = rdtsc();
	return (double)(t1 - t0) / (double)(n1 - n0);
}

static inline uint64_t span_of(uint64_t t0, uint64_t t1, uint64_t ovh)
{
	uint64_t d = t1 - t0;

	return d > ovh ? d - ovh : 0;
}

static inline void count(uint32_t *hist, uint64_t v, uint64_t width, unsigned nbuckets, uint32_t n)
{
	uint64_t i = v / width;

	hist[i < nbuckets ? i : nbuckets] += n;
}

/* Keep depth commands in flight for ns nanoseconds (then drain), accumulating into st. */
static void run(struct bench *b, unsigned depth, uint64_t ns, struct stats *st)
{
	uint64_t ovh = b->ovh, end, t0, t1;
	unsigned inflight = 0, checks = 0;
	bool stop = false;
	int rc;

	b->ndone = 0;
	t0 = now_ns();
	end = t0 + ns;
	for (unsigned i = 0; i < depth; i++) {
		struct io *io = &b->ios[i];

		t0 = rdtsc();
		rc = submit_one(b, io);
		t1 = rdtsc();
		if (rc < 0)
			die_rc("submit", rc);
		io->t_submit = t0;
		st->submit_cyc += span_of(t0, t1, ovh);
		count(st->submit, span_of(t0, t1, ovh), CYC_BUCKET, CYC_BUCKETS, 1);
		inflight++;
	}
	while (inflight) {
		int n;

		t0 = rdtsc();
		n = udrv_nvme_process_completions(b->qp, 0);
		t1 = rdtsc();
		if (n < 0)
			die_rc("process_completions", n);
		if (n == 0) {
			st->empty_polls++;
			st->empty_cyc += span_of(t0, t1, ovh);
			if (!stop && ++checks >= 256) {
				checks = 0;
				stop = now_ns() >= end;
			}
			continue;
		}
		st->polls++;
		st->complete_cyc += span_of(t0, t1, ovh);
		count(st->cpl, span_of(t0, t1, ovh) / (unsigned)n, CYC_BUCKET, CYC_BUCKETS,
		      (uint32_t)n);
		for (unsigned k = 0; k < b->ndone; k++) {
			struct io *io = &b->ios[b->done[k]];
			uint64_t lat = t1 - io->t_submit;

			st->ios++;
			st->lat_sum += lat;
			count(st->lat, lat, LAT_BUCKET, LAT_BUCKETS, 1);
			inflight--;
			if (stop)
				continue;
			t0 = rdtsc();
			rc = submit_one(b, io);
			t1 = rdtsc();
			if (rc < 0)
				die_rc("submit", rc);
			io->t_submit = t0;
			st->submit_cyc += span_of(t0, t1, ovh);
			count(st->submit, span_of(t0, t1, ovh), CYC_BUCKET, CYC_BUCKETS, 1);
			inflight++;
		}
		b->ndone = 0;
		if (!stop && ++checks >= 16) {
			checks = 0;
			stop = now_ns() >= end;
		}
	}
}

/* The p-th quantile of a histogram, width to a bucket (the bucket's middle). */
static double percentile(const uint32_t *hist, unsigned nbuckets, unsigned width, double p)
{
	uint64_t total = 0, want, seen = 0;

	for (unsigned i = 0; i <= nbuckets; i++)
		total += hist[i];
	want = (uint64_t)((double)total * p);
	for (unsigned i = 0; i <= nbuckets; i++) {
		seen += hist[i];
		if (seen > want)
			return ((double)i + 0.5) * width;
	}
	return (double)nbuckets * width;
}

/* One measured row: the metrics printed, in table order. */
enum {
	M_IOPS,
	M_LAT,
	M_P99,
	M_SUBMIT,
	M_COMPLETE,
	M_DRIVER,
	M_SUBMIT_P50,
	M_COMPLETE_P50,
	M_EMPTY_PER_IO,
	M_EMPTY_CYC,
	M_N
};

static void timed_row(struct bench *b, unsigned depth, double seconds, double ghz, double m[M_N])
{
	struct stats *st = calloc(2, sizeof(*st)), *warm = st + 1;
	double ios;
	uint64_t t0;

	if (!st) {
		fprintf(stderr, "nvme_bench: out of memory\n");
		exit(1);
	}
	run(b, depth, WARMUP_NS, warm);
	t0 = now_ns();
	run(b, depth, (uint64_t)(seconds * 1e9), st);
	st->ns = now_ns() - t0;
	if (b->errors) {
		fprintf(stderr, "nvme_bench: %" PRIu64 " I/O errors (last %s)\n", b->errors,
			strerror(-b->last_err));
		exit(1);
	}
	ios = (double)st->ios;
	m[M_IOPS] = ios * 1e9 / (double)st->ns;
	m[M_LAT] = (double)st->lat_sum / ios / ghz / 1000.0;
	m[M_P99] = percentile(st->lat, LAT_BUCKETS, LAT_BUCKET, 0.99) / ghz / 1000.0;
	m[M_SUBMIT] = (double)st->submit_cyc / ios;
	m[M_COMPLETE] = (double)st->complete_cyc / ios;
	m[M_DRIVER] = (double)(st->submit_cyc + st->complete_cyc) / ios;
	m[M_SUBMIT_P50] = percentile(st->submit, CYC_BUCKETS, CYC_BUCKET, 0.5);
	m[M_COMPLETE_P50] = percentile(st->cpl, CYC_BUCKETS, CYC_BUCKET, 0.5);
	m[M_EMPTY_PER_IO] = (double)st->empty_polls / ios;
	m[M_EMPTY_CYC] = st->empty_polls ? (double)st->empty_cyc / (double)st->empty_polls : 0.0;
	free(st);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of v[0..n-1] (sorts v). */
static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Every row reps times, the rows taking turns so that drift hits them alike; print each
 * metric's median over the repetitions, and the range of IOPS. */
static void timed_table(struct bench *b, const bool ops[2], const unsigned *depths,
			unsigned ndepths, unsigned reps, double seconds, double ghz)
{
	unsigned r = 0;
	double(*m)[M_N] = calloc((size_t)2 * ndepths * reps, sizeof(*m));

	if (!m) {
		fprintf(stderr, "nvme_bench: out of memory\n");
		exit(1);
	}
	for (unsigned rep = 0; rep < reps; rep++) {
		r = 0;
		for (int w = 0; w < 2; w++) {
			if (!ops[w])
				continue;
			b->write = w == 1;
			for (unsigned i = 0; i < ndepths; i++, r++)
				timed_row(b, depths[i], seconds, ghz, m[(size_t)r * reps + rep]);
		}
		fprintf(stderr, "nvme_bench: repetition %u of %u done\n", rep + 1, reps);
	}
	printf("| op    | depth |      IOPS | IOPS min..max     | avg µs | p99 µs | submit | "
	       "complete | driver | submit p50 | complete p50 | empty polls/IO | cycles/empty "
	       "poll |\n");
	printf("|-------|------:|----------:|------------------:|-------:|-------:|-------:|"
	       "---------:|-------:|-----------:|-------------:|---------------:|-------------"
	       "-----:|\n");
	r = 0;
	for (int w = 0; w < 2; w++) {
		if (!ops[w])
			continue;
		for (unsigned i = 0; i < ndepths; i++, r++) {
			double med[M_N], v[64], lo = 1e300, hi = 0;

			for (unsigned k = 0; k < M_N; k++) {
				for (unsigned rep = 0; rep < reps; rep++)
					v[rep] = m[(size_t)r * reps + rep][k];
				med[k] = median(v, reps);
			}
			for (unsigned rep = 0; rep < reps; rep++) {
				double x = m[(size_t)r * reps + rep][M_IOPS];

				lo = x < lo ? x : lo;
				hi = x > hi ? x : hi;
			}
			printf("| %-5s | %5u | %9.0f | %7.0f..%-7.0f | %6.1f | %6.1f | %6.0f | "
			       "%8.0f | "
			       "%6.0f | %10.0f | %12.0f | %14.1f | %17.0f |\n",
			       w ? "write" : "read", depths[i], med[M_IOPS], lo, hi, med[M_LAT],
			       med[M_P99], med[M_SUBMIT], med[M_COMPLETE], med[M_DRIVER],
			       med[M_SUBMIT_P50], med[M_COMPLETE_P50], med[M_EMPTY_PER_IO],
			       med[M_EMPTY_CYC]);
		}
	}
	fflush(stdout);
	free(m);
}

/* Collect exactly n I/Os at depth (submits and polls only); first warm up uncollected. */
static void cg_ios(struct bench *b, unsigned depth, uint64_t n, bool collect, uint64_t *empty,
		   uint64_t *polls)
{
	uint64_t submitted = 0, completed = 0;
	unsigned inflight = 0;
	int rc, got;

	b->ndone = 0;
	for (unsigned i = 0; i < depth && submitted < n; i++) {
		if (collect)
			COLLECT();
		rc = submit_one(b, &b->ios[i]);
		if (collect)
			COLLECT();
		if (rc < 0)
			die_rc("submit", rc);
		submitted++;
		inflight++;
	}
	while (inflight) {
		if (collect)
			COLLECT();
		got = udrv_nvme_process_completions(b->qp, 0);
		if (collect)
			COLLECT();
		if (got < 0)
			die_rc("process_completions", got);
		if (got == 0) {
			(*empty)++;
			continue;
		}
		(*polls)++;
		for (unsigned k = 0; k < b->ndone; k++) {
			completed++;
			inflight--;
			if (submitted == n)
				continue;
			if (collect)
				COLLECT();
			rc = submit_one(b, &b->ios[b->done[k]]);
			if (collect)
				COLLECT();
			if (rc < 0)
				die_rc("submit", rc);
			submitted++;
			inflight++;
		}
		b->ndone = 0;
	}
	if (completed != n || b->errors) {
		fprintf(stderr,
			"nvme_bench: %" PRIu64 " of %" PRIu64 " completed, %" PRIu64 " errors\n",
			completed, n, b->errors);
		exit(1);
	}
}

/* Is thread tid of process pid stopped (state T or t in its stat)? */
static bool thread_stopped(pid_t pid, const char *tid)
{
	char path[320], buf[512], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, tid);
	f = fopen(path, "r");
	if (!f)
		return true; /* gone meanwhile */
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	p = p ? strrchr(buf, ')') : NULL;
	return p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
}

/* Wait until every thread of process pid is stopped: only then can no command complete. */
static bool wait_stopped(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	for (int i = 0; i < 5000; i++) {
		DIR *d = opendir(path);
		struct dirent *e;
		bool all = true;

		if (!d)
			return false;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.' && !thread_stopped(pid, e->d_name))
				all = false;
		closedir(d);
		if (all)
			return true;
		usleep(1000);
	}
	return false;
}

static void callgrind_mode(struct bench *b, unsigned depth, uint64_t n, pid_t emu, unsigned probe)
{
	uint64_t empty = 0, polls = 0, w_empty = 0, w_polls = 0, probe_empty = 0;
	unsigned idle_bad = 0;
	int got;

	if (HAVE_CG && !RUNNING_ON_VALGRIND)
		fprintf(stderr, "nvme_bench: --callgrind without valgrind: nothing is counted; run "
				"it under valgrind --tool=callgrind --collect-atstart=no\n");
	if (!HAVE_CG) {
		/* Built without <valgrind/callgrind.h>: no client requests, so no warm-up and
		 * no probes; run valgrind with --toggle-collect=udrv_nvme_read (or _write)
		 * --toggle-collect=udrv_nvme_process_completions instead. */
		cg_ios(b, depth, n, false, &empty, &polls);
		probe = 0;
		goto out;
	}
	/* Warm up (first touches, branch history) uncollected. */
	cg_ios(b, depth, CG_WARMUP, false, &w_empty, &w_polls);
	cg_ios(b, depth, n, true, &empty, &polls);
	CALLGRIND_DUMP_STATS_AT("io");

	if (emu > 0) {
		struct io *io = &b->ios[0];
		int rc;

		if (kill(emu, SIGSTOP) < 0 || !wait_stopped(emu)) {
			fprintf(stderr, "nvme_bench: cannot stop the controller process %d: %s\n",
				(int)emu, strerror(errno));
			kill(emu, SIGCONT);
			exit(1);
		}
		rc = submit_one(b, io);
		if (rc < 0) {
			kill(emu, SIGCONT);
			die_rc("submit", rc);
		}
		for (unsigned i = 0; i < probe; i++) {
			COLLECT();
			got = udrv_nvme_process_completions(b->qp, 0);
			COLLECT();
			if (got != 0) {
				kill(emu, SIGCONT);
				fprintf(stderr, "nvme_bench: a poll found a completion while the "
						"controller was stopped\n");
				exit(1);
			}
			probe_empty++;
		}
		kill(emu, SIGCONT);
		b->ndone = 0;
		while ((got = udrv_nvme_process_completions(b->qp, 0)) == 0)
			;
		if (got < 0)
			die_rc("process_completions", got);
		b->ndone = 0;
	}
	CALLGRIND_DUMP_STATS_AT("empty");

	for (unsigned i = 0; i < probe; i++) {
		COLLECT();
		got = udrv_nvme_process_completions(b->qp, 0);
		COLLECT();
		if (got != 0)
			idle_bad++;
	}
	CALLGRIND_DUMP_STATS_AT("idle");
	if (idle_bad) {
		fprintf(stderr, "nvme_bench: %u idle polls found completions\n", idle_bad);
		exit(1);
	}
out:
	printf("callgrind: op=%s depth=%u ios=%" PRIu64 " empty_polls=%" PRIu64
	       " nonempty_polls=%" PRIu64 " empty_probe=%" PRIu64
	       " idle_probe=%u client_requests=%s"
	       " valgrind=%s\n",
	       b->write ? "write" : "read", depth, n, empty, polls, probe_empty, probe,
	       HAVE_CG ? "yes" : "no",
	       !HAVE_CG		     ? "unknown"
	       : RUNNING_ON_VALGRIND ? "yes"
				     : "no");
}

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: nvme_bench [-t SECONDS] [-r REPS] [-d DEPTHS] [-w|-W] [-s BYTES] [-n NSID]\n"
	       "                  [-e ENTRIES] [-c CPU] [--callgrind N [--emu-pid PID]\n"
	       "                  [--probe M]] DEVICE\n"
	       "DEVICE: e.g. vfio-user:/tmp/nvme.sock (see `udrv emu nvme`) or a PCI address.\n"
	       "See the comment at the top of bench/nvme_bench.c.\n");
}

static unsigned long num(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end) {
		fprintf(stderr, "nvme_bench: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned depths[MAX_DEPTHS] = {1, 32}, ndepths = 2, entries = 0, probe = DEFAULT_PROBE;
	unsigned io_size = 4096, max_depth = 0, reps = 3;
	double seconds = 2;
	bool reads = true, writes = false;
	uint64_t cg_n = 0;
	pid_t emu = 0;
	int cpu = -1, rc;
	const char *dev = NULL;
	struct bench b = {.nsid = 1, .rng = 0x9e3779b97f4a7c15ull};
	struct udrv_nvme_ns_info ns;
	const struct udrv_nvme_ctrlr_info *ci;
	uint8_t *bufs;
	double ghz;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "-w")) {
			writes = true;
			takes = false;
		} else if (!strcmp(a, "-W")) {
			writes = true;
			reads = false;
			takes = false;
		} else if (a[0] != '-') {
			if (dev) {
				usage(stderr);
				return 2;
			}
			dev = a;
			takes = false;
		}
		if (!takes)
			continue;
		if (!v) {
			fprintf(stderr, "nvme_bench: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "-t")) {
			seconds = strtod(v, NULL);
			if (!(seconds > 0)) {
				fprintf(stderr, "nvme_bench: bad -t '%s'\n", v);
				return 2;
			}
		} else if (!strcmp(a, "-d")) {
			char *copy = strdup(v), *save = NULL;

			ndepths = 0;
			for (char *t = strtok_r(copy, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				unsigned long d = num(t, "depth");

				if (!d || d > MAX_DEPTH || ndepths == MAX_DEPTHS) {
					fprintf(stderr,
						"nvme_bench: depths are 1..%d, at most %d\n",
						MAX_DEPTH, MAX_DEPTHS);
					return 2;
				}
				depths[ndepths++] = (unsigned)d;
			}
			free(copy);
			if (!ndepths) {
				usage(stderr);
				return 2;
			}
		} else if (!strcmp(a, "-r")) {
			reps = (unsigned)num(v, "repetitions");
			if (!reps || reps > 64) {
				fprintf(stderr, "nvme_bench: -r is 1..64\n");
				return 2;
			}
		} else if (!strcmp(a, "-s")) {
			io_size = (unsigned)num(v, "I/O size");
		} else if (!strcmp(a, "-n")) {
			b.nsid = (uint32_t)num(v, "namespace");
		} else if (!strcmp(a, "-e")) {
			entries = (unsigned)num(v, "entries");
		} else if (!strcmp(a, "-c")) {
			cpu = (int)num(v, "CPU");
		} else if (!strcmp(a, "--callgrind")) {
			cg_n = num(v, "--callgrind count");
		} else if (!strcmp(a, "--emu-pid")) {
			emu = (pid_t)num(v, "--emu-pid");
		} else if (!strcmp(a, "--probe")) {
			probe = (unsigned)num(v, "--probe");
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!dev) {
		usage(stderr);
		return 2;
	}
	for (unsigned i = 0; i < ndepths; i++)
		if (depths[i] > max_depth)
			max_depth = depths[i];
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			fprintf(stderr, "nvme_bench: cannot pin to CPU %d: %s\n", cpu,
				strerror(errno));
	}

	rc = udrv_nvme_open(dev, NULL, &b.c);
	if (rc < 0)
		die_rc(dev, rc);
	ci = udrv_nvme_ctrlr_info(b.c);
	rc = udrv_nvme_ns_info(b.c, b.nsid, &ns);
	if (rc < 0)
		die_rc("namespace", rc);
	if (!io_size || io_size % ns.block_size || io_size > ci->max_xfer) {
		fprintf(stderr,
			"nvme_bench: -s must be a multiple of the block size %u, at most %u\n",
			ns.block_size, ci->max_xfer);
		return 2;
	}
	b.nlb = io_size / ns.block_size;
	b.span = ns.blocks / b.nlb;
	b.qp = udrv_nvme_qpair_create(b.c, entries);
	if (!b.qp)
		die_rc("queue pair", -errno);
	bufs = udrv_nvme_dma_alloc(b.c, (size_t)max_depth * io_size);
	b.ios = calloc(max_depth, sizeof(*b.ios));
	b.done = calloc(max_depth, sizeof(*b.done));
	if (!bufs || !b.ios || !b.done)
		die_rc("buffers", -ENOMEM);
	for (unsigned i = 0; i < max_depth; i++) {
		b.ios[i] = (struct io){.b = &b, .idx = i, .buf = bufs + (size_t)i * io_size};
		memset(b.ios[i].buf, 0xa5 ^ (int)i, io_size);
	}

	if (cg_n) {
		if (writes && !reads)
			b.write = true;
		callgrind_mode(&b, depths[0], cg_n, emu, probe);
	} else {
		bool ops[2] = {reads, writes};

		b.ovh = rdtsc_overhead();
		ghz = tsc_ghz();
		printf(
		    "nvme_bench: %s (%s, %s), namespace %u: %" PRIu64 " blocks of %u; %u-byte "
		    "random I/O; median of %u x %.1f s per row; TSC %.2f GHz; rdtsc pair %" PRIu64
		    " cycles (subtracted)\n\n",
		    dev, ci->mn, ci->backend, b.nsid, ns.blocks, ns.block_size, io_size, reps,
		    seconds, ghz, b.ovh);
		fflush(stdout);
		timed_table(&b, ops, depths, ndepths, reps, seconds, ghz);
		printf("\nsubmit/complete/driver: mean TSC cycles per I/O inside "
		       "udrv_nvme_read|write() and\ninside udrv_nvme_process_completions() calls "
		       "that reaped something; p50: medians\nper call (complete: per I/O reaped); "
		       "empty polls are counted apart.\n");
	}
	udrv_dma_free(udrv_nvme_domain(b.c), bufs);
	udrv_nvme_qpair_destroy(b.qp);
	udrv_nvme_close(b.c);
	free(b.ios);
	free(b.done);
	return 0;
}
