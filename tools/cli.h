/* SPDX-License-Identifier: BSD-3-Clause */
/* The udrv command: each subcommand is `int cmd_x(int argc, char **argv)` with argv[0] its name,
 * returning the process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef UDRV_CLI_H
#define UDRV_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int cmd_list(int argc, char **argv);
int cmd_bind(int argc, char **argv);
int cmd_unbind(int argc, char **argv);
int cmd_emu(int argc, char **argv);
int cmd_nvme(int argc, char **argv);

/* Print "udrv: <what>: <udrv_errmsg() or strerror(-err)>" to stderr; returns 1. */
int cli_fail(const char *what, int err);

/* A number lo..hi, decimal or 0x hex, nothing after it. */
bool cli_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
/* Bytes more than 0, or a number with K, M, G or T (powers of 1024; "4K", "4KiB"). */
bool cli_parse_size(const char *s, uint64_t *out);
/* "512 bytes", "1 GiB", "1.50 GiB". */
void cli_iec(uint64_t bytes, char *buf, size_t len);

/*
 * The `udrv nvme` subcommands (tools/cmd_nvme*.c) and what they share, from cmd_nvme.c.
 */
struct udrv_nvme_ctrlr;
struct udrv_nvme_cpl;
int cmd_nvme_identify(int argc, char **argv);
int cmd_nvme_verify(int argc, char **argv);
int cmd_nvme_perf(int argc, char **argv);
int cmd_nvme_rw(int argc, char **argv); /* read and write */

/* Open DEVICE asking for io_queues queue pairs (0: the driver's default). 0 and *c, or 1
 * with the reason printed as "udrv: nvme CMD: ...". */
int nvme_cli_open(const char *cmd, const char *device, unsigned io_queues,
		  struct udrv_nvme_ctrlr **c);
/* Commands that overwrite data ask for --yes on anything but an emulated (vfio-user)
 * controller; false after saying so. */
bool nvme_cli_may_overwrite(const char *cmd, const char *device, bool yes);
/* The same with udrv_nvme_opts.flags (UDRV_NVME_INTERRUPTS). */
int nvme_cli_open_flags(const char *cmd, const char *device, unsigned io_queues, unsigned flags,
			struct udrv_nvme_ctrlr **c);
/* Check nsid is an active namespace of c; its size in *blocks and *block_size. false with
 * a message saying which namespaces there are. */
bool nvme_cli_namespace(const char *cmd, const char *device, struct udrv_nvme_ctrlr *c,
			uint32_t nsid, uint64_t *blocks, uint32_t *block_size);
/* After getopt_long() (optstring starting with ':') returned opt ':' or '?': say which
 * option is unknown or lacks its value. Returns 2. */
int nvme_cli_opt_error(const char *cmd, int opt, char **argv);
/* After the options, argv[optind] must be the only operand, DEVICE: say what is wrong.
 * Returns 2. */
int nvme_cli_device_error(const char *cmd, int argc, char **argv);
/* "1.07 GB (1.00 GiB)". */
void nvme_cli_capacity(uint64_t bytes, char *buf, size_t len);
/* One sentence for a failed command: "LBA Out of Range (status 0x0080)", "timed out". */
void nvme_cli_cpl_str(const struct udrv_nvme_cpl *cpl, char *buf, size_t len);
/* A JSON number printed with decimals digits after the point. */
struct json_object;
struct json_object *nvme_cli_jdouble(double v, int decimals);
/* The driver's error counters: one line "driver: ..." on f when any is not 0; and as JSON. */
void nvme_cli_print_stats(FILE *f, const struct udrv_nvme_ctrlr *c);
struct json_object *nvme_cli_json_stats(const struct udrv_nvme_ctrlr *c);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t nvme_cli_now_ns(void);
/* Ctrl-C (SIGINT) and SIGTERM set a flag instead of killing the process, so that I/O in
 * flight is completed and the controller shut down; a second one kills. */
void nvme_cli_catch_signals(void);
void nvme_cli_restore_signals(void);
bool nvme_cli_interrupted(void);
/* stderr is a terminal: show progress there. */
bool nvme_cli_progress(void);

/*
 * A latency histogram (tools/cmd_nvme_hist.c), log-linear like HdrHistogram's: values below
 * 16 ns exact, then 16 equal buckets per power of two, so a bucket is within 1/16 (6.25%)
 * of its values; 976 buckets reach 2^64 ns.
 */
#define NVME_CLI_HIST_SUB_BITS 4u
#define NVME_CLI_HIST_SUB      (1u << NVME_CLI_HIST_SUB_BITS)
#define NVME_CLI_HIST_BUCKETS  ((64u - NVME_CLI_HIST_SUB_BITS + 1u) * NVME_CLI_HIST_SUB)
struct nvme_cli_hist {
	uint64_t n, sum, min, max; /* ns */
	uint64_t b[NVME_CLI_HIST_BUCKETS];
};
static inline unsigned nvme_cli_hist_bucket(uint64_t v)
{
	unsigned shift;

	if (v < NVME_CLI_HIST_SUB)
		return (unsigned)v;
	shift = 63u - (unsigned)__builtin_clzll(v) - NVME_CLI_HIST_SUB_BITS;
	return (shift + 1u) * NVME_CLI_HIST_SUB + (unsigned)((v >> shift) - NVME_CLI_HIST_SUB);
}
static inline void nvme_cli_hist_add(struct nvme_cli_hist *h, uint64_t v)
{
	if (!h->n || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += v;
	h->b[nvme_cli_hist_bucket(v)]++;
}
void nvme_cli_hist_merge(struct nvme_cli_hist *dst, const struct nvme_cli_hist *src);
/* The value (ns) at percentile pct (0..100]: its bucket's middle, within min..max. */
uint64_t nvme_cli_hist_pct(const struct nvme_cli_hist *h, double pct);
/* Bucket i covers [lo, lo + width). */
uint64_t nvme_cli_hist_lo(unsigned i);
uint64_t nvme_cli_hist_width(unsigned i);
/* --plot FILE, checked before the run: 0; 2 when FILE does not end in .png or .svg; 1 when
 * gnuplot is not installed. Message printed. */
int nvme_cli_plot_check(const char *cmd, const char *file);
/* Draw the histograms (either may be empty) into file with gnuplot. 0, or 1 with the
 * reason printed. */
int nvme_cli_plot(const char *cmd, const char *file, const char *title,
		  const struct nvme_cli_hist *reads, const struct nvme_cli_hist *writes);

/*
 * The block pattern of `udrv nvme verify` (tools/cmd_nvme_pattern.c): every byte of a block
 * is a function of (seed, LBA, offset); the block starts with its LBA and the seed. bs is a
 * multiple of 8.
 */
struct nvme_cli_mismatch {
	uint64_t lba;
	uint32_t first;	 /* offset of the first byte that differs */
	uint32_t differ; /* bytes that differ */
	char note[96];	 /* what the block looks like: "holds the data of LBA 7" */
};
void nvme_cli_pattern_fill(void *block, uint32_t bs, uint64_t seed, uint64_t lba);
/* true if block holds its pattern; otherwise false, with *m filled unless m is NULL. */
bool nvme_cli_pattern_check(const void *block, uint32_t bs, uint64_t seed, uint64_t lba,
			    struct nvme_cli_mismatch *m);

/* `udrv nvme perf` results: cmd_nvme_perf.c measures, cmd_nvme_perf_report.c prints. */
struct nvme_cli_perf_err {
	unsigned qpair;
	bool read, at_submit; /* at_submit: the submit call failed with rc */
	uint64_t lba;
	int rc;		 /* struct udrv_nvme_cpl's */
	uint16_t status; /* NVMe status field */
};
struct nvme_cli_perf_row {
	uint64_t errors; /* I/O errors (queue pair rows) */
	double secs;	 /* the measured window */
	double cpu_secs; /* CPU time of the queue pairs' threads in it (the total row: all) */
	struct nvme_cli_hist h; /* latencies of the I/Os completed in it */
};
struct nvme_cli_perf_result {
	const char *device, *workload;
	uint32_t nsid, io_blocks;
	uint64_t io_size, depth, qpairs, seconds, read_pct;
	bool interrupted;
	const struct udrv_nvme_ctrlr *c;
	struct nvme_cli_perf_row *rows; /* each queue pair, then in all, all reads, all writes */
	const struct nvme_cli_perf_err *errs; /* the first errors of each queue pair */
	unsigned nerrs;
	uint64_t errors;
};
/* The table (and the first errors) on stdout; or one JSON object. */
void nvme_cli_perf_text(const struct nvme_cli_perf_result *r);
void nvme_cli_perf_json(const struct nvme_cli_perf_result *r);

#endif
