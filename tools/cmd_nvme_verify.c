/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv nvme verify: write a pattern in which every byte of a block is a function of (seed,
 * LBA, offset) (cmd_nvme_pattern.c), read it all back and compare, with DEPTH commands in
 * flight.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include <udrv/log.h>
#include <udrv/nvme.h>

#include "cli.h"

#define DEFAULT_DEPTH	32u
#define DEFAULT_IO_SIZE (128u * 1024)
#define LISTED_TEXT	10u  /* mismatches printed as text */
#define LISTED_MAX	100u /* mismatches kept (JSON lists them all) */
#define ERRORS_MAX	10u  /* I/O errors kept and printed */
#define FAILED_RANGES	64u  /* failed writes remembered, so their blocks are not compared */
#define STALL_NS	(60ull * 1000000000u) /* no completion for this long: give up */
#define PROGRESS_NS	(250ull * 1000000u)

struct ioerr {
	bool write;
	uint64_t lba;
	uint32_t nlb;
	bool at_submit; /* the submit call failed (rc), rather than the command */
	struct udrv_nvme_cpl cpl;
};

struct verify;

struct vslot {
	struct verify *v;
	void *buf;
	uint64_t lba;
	uint32_t nlb;
};

struct verify {
	struct udrv_nvme_qpair *qp;
	uint32_t nsid, bs, io_blocks;
	uint64_t seed, start, end;

	/* The phase under way. */
	bool writing;
	uint64_t next, done_blocks;
	struct {
		bool ran;
		uint64_t ns, bytes; /* time taken, bytes moved without error */
	} phase[2];		    /* write, read */
	unsigned inflight;
	bool eagain, gone;

	struct vslot *slots;
	struct vslot **idle;
	unsigned nidle;

	/* Results. */
	uint64_t compared, unverified, mismatches, io_errors;
	struct nvme_cli_mismatch list[LISTED_MAX];
	unsigned nlist;
	struct ioerr errs[ERRORS_MAX];
	unsigned nerrs;
	struct {
		uint64_t lba, end;
	} failed[FAILED_RANGES];
	unsigned nfailed;
};

static bool in_failed_write(const struct verify *v, uint64_t lba)
{
	for (unsigned i = 0; i < v->nfailed; i++)
		if (lba >= v->failed[i].lba && lba < v->failed[i].end)
			return true;
	return false;
}

/* Describe a block that does not match: what its header says it is. */
static void check_block(struct verify *v, const uint8_t *p, uint64_t lba)
{
	struct nvme_cli_mismatch *m = v->nlist < LISTED_MAX ? &v->list[v->nlist] : NULL;

	v->compared++;
	if (nvme_cli_pattern_check(p, v->bs, v->seed, lba, m))
		return;
	v->mismatches++;
	if (m)
		v->nlist++;
}

static void add_error(struct verify *v, bool at_submit, const struct vslot *s,
		      const struct udrv_nvme_cpl *cpl)
{
	v->io_errors++;
	if (cpl->rc == -ENODEV)
		v->gone = true;
	if (v->writing) {
		if (v->nfailed < FAILED_RANGES) {
			v->failed[v->nfailed].lba = s->lba;
			v->failed[v->nfailed++].end = s->lba + s->nlb;
		}
	}
	v->unverified += s->nlb;
	if (v->nerrs < ERRORS_MAX)
		v->errs[v->nerrs++] = (struct ioerr){.write = v->writing,
						     .lba = s->lba,
						     .nlb = s->nlb,
						     .at_submit = at_submit,
						     .cpl = *cpl};
}

static void verify_cb(void *arg, const struct udrv_nvme_cpl *cpl);

/* Start the next chunk of the range on slot s, or leave s idle. */
static void submit_next(struct verify *v, struct vslot *s)
{
	uint64_t left = v->end - v->next;
	int rc;

	if (!left || v->gone || v->eagain || nvme_cli_interrupted()) {
		v->idle[v->nidle++] = s;
		return;
	}
	s->lba = v->next;
	s->nlb = left < v->io_blocks ? (uint32_t)left : v->io_blocks;
	/* A range that failed to write is not read back: its blocks are unverified. */
	if (!v->writing && in_failed_write(v, s->lba)) {
		v->next += s->nlb;
		v->done_blocks += s->nlb;
		submit_next(v, s);
		return;
	}
	if (v->writing) {
		for (uint32_t i = 0; i < s->nlb; i++)
			nvme_cli_pattern_fill((uint8_t *)s->buf + (size_t)i * v->bs, v->bs, v->seed,
					      s->lba + i);
		rc = udrv_nvme_write(v->qp, v->nsid, s->buf, s->lba, s->nlb, verify_cb, s);
	} else {
		rc = udrv_nvme_read(v->qp, v->nsid, s->buf, s->lba, s->nlb, verify_cb, s);
	}
	if (rc == -EAGAIN) {
		/* Full: retry after the next completions. */
		v->eagain = true;
		v->idle[v->nidle++] = s;
		return;
	}
	v->next += s->nlb;
	if (rc < 0) {
		struct udrv_nvme_cpl cpl = {.rc = rc};

		add_error(v, true, s, &cpl);
		v->done_blocks += s->nlb;
		v->idle[v->nidle++] = s;
		return;
	}
	v->inflight++;
}

static void verify_cb(void *arg, const struct udrv_nvme_cpl *cpl)
{
	struct vslot *s = arg;
	struct verify *v = s->v;

	v->inflight--;
	if (cpl->rc) {
		add_error(v, false, s, cpl);
	} else {
		v->phase[!v->writing].bytes += (uint64_t)s->nlb * v->bs;
		if (!v->writing)
			for (uint32_t i = 0; i < s->nlb; i++)
				check_block(v, (const uint8_t *)s->buf + (size_t)i * v->bs,
					    s->lba + i);
	}
	v->done_blocks += s->nlb;
	submit_next(v, s);
}

static void progress(const struct verify *v, uint64_t t0, uint64_t now)
{
	uint64_t total = (v->end - v->start) * v->bs, done = v->done_blocks * v->bs;
	double secs = (double)(now - t0) / 1e9;
	char a[32], b[32];

	cli_iec(done, a, sizeof(a));
	cli_iec(total, b, sizeof(b));
	fprintf(stderr, "\r\033[Kverify: %s %3.0f%%  %s of %s  %.1f MiB/s",
		v->writing ? "writing" : "reading", 100.0 * (double)done / (double)total, a, b,
		secs > 0 ? (double)done / 1048576.0 / secs : 0.0);
}

/* Write (or read and compare) the whole range. Returns 0, or -ETIMEDOUT when the
 * controller stopped completing commands (message printed). */
static int run_phase(struct verify *v, bool writing, bool show)
{
	uint64_t t0 = nvme_cli_now_ns(), last = t0, shown = t0, now;

	v->writing = writing;
	v->next = v->start;
	v->done_blocks = 0;
	for (;;) {
		int n;

		v->eagain = false;
		while (v->nidle && v->next < v->end && !v->gone && !v->eagain &&
		       !nvme_cli_interrupted())
			submit_next(v, v->idle[--v->nidle]);
		if (!v->inflight && (v->next >= v->end || v->gone || nvme_cli_interrupted()))
			break;
		n = udrv_nvme_process_completions(v->qp, 0);
		now = nvme_cli_now_ns();
		if (n < 0) {
			v->gone = true;
			if (n != -ENODEV)
				fprintf(stderr,
					"udrv nvme verify: processing completions failed: %s\n",
					strerror(-n));
		}
		if (n > 0)
			last = now;
		else if (now - last > STALL_NS) {
			if (show)
				fputs("\r\033[K", stderr);
			fprintf(stderr,
				"udrv nvme verify: %u commands have not completed in %llu s; the "
				"driver should have timed them out\n",
				v->inflight, STALL_NS / 1000000000u);
			return -ETIMEDOUT;
		}
		if (show && now - shown >= PROGRESS_NS) {
			progress(v, t0, now);
			shown = now;
		}
	}
	v->phase[!writing].ran = true;
	v->phase[!writing].ns = nvme_cli_now_ns() - t0;
	if (show)
		fputs("\r\033[K", stderr);
	return 0;
}

static void verify_usage(FILE *f)
{
	fprintf(f,
		"usage: udrv nvme verify DEVICE [-n NSID] [--lba START] [--count BLOCKS]\n"
		"                        [-q DEPTH] [-o IOSIZE] [--seed N] [--read-only] [--json] "
		"[--yes]\n"
		"\n"
		"Write a pattern to every block of the range with DEPTH commands in flight, read\n"
		"it all back and compare. Every byte of a block is a function of the seed, the\n"
		"block's LBA and the byte's offset (the block starts with its LBA and the seed),\n"
		"so a block never written, written to the wrong place, left from another run or\n"
		"damaged anywhere is reported, by LBA. This OVERWRITES the range.\n"
		"Exit status 1 on any mismatch or I/O error.\n"
		"\n"
		"  DEVICE          a PCI address (0000:01:00.0) or vfio-user:PATH\n"
		"  -n, --nsid N    the namespace (1)\n"
		"  --lba START     the first block (0)\n"
		"  --count BLOCKS  blocks to verify (to the end of the namespace)\n"
		"  -q, --depth N   commands in flight (%u; at most the queue entries - 1)\n"
		"  -o, --io-size SIZE\n"
		"                  bytes per command, a multiple of the block size, with K or M\n"
		"                  allowed (%u KiB, or the controller's max transfer if smaller)\n"
		"  --seed N        the pattern's seed, decimal or 0x hex (random, and printed)\n"
		"  --read-only     do not write: check what an earlier run with the same --seed\n"
		"                  wrote (its range must cover this one)\n"
		"  --json          the result as one JSON object on stdout\n"
		"  --yes           overwrite a real device (PCI address): asked for, because it\n"
		"                  destroys the data in the range\n"
		"\n"
		"On a terminal, progress is shown on stderr. Ctrl-C stops early (exit status 1).\n",
		DEFAULT_DEPTH, DEFAULT_IO_SIZE / 1024);
}

struct verify_opts {
	const char *device;
	uint64_t nsid, lba, count, depth, io_size, seed;
	bool has_lba, has_count, has_seed, read_only, json, yes;
};

/* Parse; 0, or the exit status (-1: help printed). */
static int parse_opts(int argc, char **argv, struct verify_opts *o)
{
	static const struct option longopts[] = {
	    {"nsid", required_argument, NULL, 'n'},
	    {"lba", required_argument, NULL, 'l'},
	    {"count", required_argument, NULL, 'c'},
	    {"depth", required_argument, NULL, 'q'},
	    {"io-size", required_argument, NULL, 'o'},
	    {"seed", required_argument, NULL, 's'},
	    {"read-only", no_argument, NULL, 'r'},
	    {"json", no_argument, NULL, 'j'},
	    {"yes", no_argument, NULL, 'y'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int opt;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":n:q:o:hj", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (!cli_parse_u64(optarg, 1, UINT32_MAX - 1, &o->nsid)) {
				fprintf(stderr,
					"udrv nvme verify: -n must be a namespace ID from 1, not "
					"'%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'l':
			if (!cli_parse_u64(optarg, 0, UINT64_MAX, &o->lba)) {
				fprintf(
				    stderr,
				    "udrv nvme verify: --lba must be a block number, not '%s'\n",
				    optarg);
				return 2;
			}
			o->has_lba = true;
			break;
		case 'c':
			if (!cli_parse_u64(optarg, 1, UINT64_MAX, &o->count)) {
				fprintf(
				    stderr,
				    "udrv nvme verify: --count must be a number of blocks from 1, "
				    "not '%s'\n",
				    optarg);
				return 2;
			}
			o->has_count = true;
			break;
		case 'q':
			if (!cli_parse_u64(optarg, 1, 65535, &o->depth)) {
				fprintf(stderr,
					"udrv nvme verify: -q must be 1..65535 commands in flight, "
					"not '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'o':
			if (!cli_parse_size(optarg, &o->io_size) || o->io_size > UINT32_MAX) {
				fprintf(
				    stderr,
				    "udrv nvme verify: -o must be bytes, or a number with K or M "
				    "such as 128K, not '%s'\n",
				    optarg);
				return 2;
			}
			break;
		case 's':
			if (!cli_parse_u64(optarg, 0, UINT64_MAX, &o->seed)) {
				fprintf(stderr,
					"udrv nvme verify: --seed must be a number (decimal or 0x "
					"hex), not '%s'\n",
					optarg);
				return 2;
			}
			o->has_seed = true;
			break;
		case 'r':
			o->read_only = true;
			break;
		case 'y':
			o->yes = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			verify_usage(stdout);
			return -1;
		default:
			return nvme_cli_opt_error("verify", opt, argv);
		}
	}
	if (optind + 1 != argc)
		return nvme_cli_device_error("verify", argc, argv);
	o->device = argv[optind];
	if (!o->read_only && !nvme_cli_may_overwrite("verify", o->device, o->yes))
		return 2;
	return 0;
}

/* The options that depend on the controller and namespace. 0, or 2 with a message. */
static int check_opts(struct verify_opts *o, struct udrv_nvme_ctrlr *c, uint64_t blocks,
		      uint32_t bs)
{
	const struct udrv_nvme_ctrlr_info *ci = udrv_nvme_ctrlr_info(c);
	uint32_t max_xfer = ci->max_xfer - ci->max_xfer % bs;
	char mx[32];

	if (o->lba >= blocks) {
		fprintf(stderr,
			"udrv nvme verify: --lba must be 0..%" PRIu64 " (namespace %" PRIu64
			" has %" PRIu64 " blocks), not %" PRIu64 "\n",
			blocks - 1, o->nsid, blocks, o->lba);
		return 2;
	}
	if (!o->has_count)
		o->count = blocks - o->lba;
	if (o->count > blocks - o->lba) {
		fprintf(stderr,
			"udrv nvme verify: --count must be 1..%" PRIu64 " from LBA %" PRIu64
			" (namespace %" PRIu64 " has %" PRIu64 " blocks), not %" PRIu64 "\n",
			blocks - o->lba, o->lba, o->nsid, blocks, o->count);
		return 2;
	}
	if (!o->depth)
		o->depth =
		    DEFAULT_DEPTH < ci->max_entries - 1 ? DEFAULT_DEPTH : ci->max_entries - 1;
	if (o->depth > ci->max_entries - 1) {
		fprintf(stderr,
			"udrv nvme verify: -q must be 1..%u (the controller's queues have %u "
			"entries), not %" PRIu64 "\n",
			ci->max_entries - 1, ci->max_entries, o->depth);
		return 2;
	}
	if (max_xfer < bs) {
		fprintf(stderr,
			"udrv nvme verify: the controller's max transfer (%" PRIu32
			" bytes) is smaller than a %" PRIu32 "-byte block\n",
			ci->max_xfer, bs);
		return 1;
	}
	if (!o->io_size)
		o->io_size =
		    DEFAULT_IO_SIZE < max_xfer ? DEFAULT_IO_SIZE - DEFAULT_IO_SIZE % bs : max_xfer;
	cli_iec(max_xfer, mx, sizeof(mx));
	if (o->io_size % bs || o->io_size > max_xfer) {
		fprintf(stderr,
			"udrv nvme verify: -o must be a multiple of the %" PRIu32
			"-byte block size up to %s (the max transfer), not %" PRIu64 "\n",
			bs, mx, o->io_size);
		return 2;
	}
	return 0;
}

static const char *err_desc(const struct ioerr *e, char *buf, size_t len)
{
	char s[160];

	if (e->at_submit)
		snprintf(s, sizeof(s), "not submitted: %s", strerror(-e->cpl.rc));
	else
		nvme_cli_cpl_str(&e->cpl, s, sizeof(s));
	snprintf(buf, len, "%s of LBA %" PRIu64 "+%" PRIu32 ": %s", e->write ? "write" : "read",
		 e->lba, e->nlb, s);
	return buf;
}

/* "  write  1 GiB in 0.75 s, 1368.2 MiB/s" */
static void print_phase(const struct verify *v, int k)
{
	double secs = (double)v->phase[k].ns / 1e9;
	char sz[32];

	if (!v->phase[k].ran)
		return;
	cli_iec(v->phase[k].bytes, sz, sizeof(sz));
	printf("  %-5s  %s in %.2f s, %.1f MiB/s%s\n", k ? "read" : "write", sz, secs,
	       secs > 0 ? (double)v->phase[k].bytes / 1048576.0 / secs : 0.0,
	       k ? " (with the comparison)" : "");
}

static void print_text(const struct verify *v, bool interrupted)
{
	const char *verdict = "OK";
	char buf[320];

	print_phase(v, 0);
	print_phase(v, 1);
	for (unsigned i = 0; i < v->nerrs; i++)
		printf("  error  %s\n", err_desc(&v->errs[i], buf, sizeof(buf)));
	if (v->io_errors > v->nerrs)
		printf("  ...    %" PRIu64 " more I/O errors\n", v->io_errors - v->nerrs);
	for (unsigned i = 0; i < v->nlist && i < LISTED_TEXT; i++) {
		const struct nvme_cli_mismatch *m = &v->list[i];

		printf("  mismatch at LBA %" PRIu64 ": %" PRIu32 " of %" PRIu32
		       " bytes differ, the first at byte %" PRIu32 "; %s\n",
		       m->lba, m->differ, v->bs, m->first, m->note);
	}
	if (v->mismatches > LISTED_TEXT)
		printf("  ...    %" PRIu64 " more mismatched blocks\n",
		       v->mismatches - LISTED_TEXT);
	if (interrupted)
		printf("%" PRIu64 " of %" PRIu64 " blocks compared", v->compared,
		       v->end - v->start);
	else
		printf("%" PRIu64 " blocks compared", v->compared);
	printf(", %" PRIu64 " mismatched, %" PRIu64 " I/O errors", v->mismatches, v->io_errors);
	if (v->unverified)
		printf(" (%" PRIu64 " blocks not verified because of them)", v->unverified);
	if (interrupted)
		verdict = "INTERRUPTED";
	else if (v->mismatches || v->io_errors)
		verdict = "FAILED";
	printf(": %s\n", verdict);
}

static void print_json(const struct verify *v, const struct verify_opts *o,
		       struct udrv_nvme_ctrlr *c, bool interrupted)
{
	json_object *j = json_object_new_object(), *a;
	char buf[320];

	json_object_object_add(j, "device", json_object_new_string(o->device));
	json_object_object_add(j, "nsid", json_object_new_int64((int64_t)o->nsid));
	json_object_object_add(j, "lba", json_object_new_uint64(v->start));
	json_object_object_add(j, "blocks", json_object_new_uint64(v->end - v->start));
	json_object_object_add(j, "block_size", json_object_new_int64(v->bs));
	json_object_object_add(j, "io_size", json_object_new_uint64(o->io_size));
	json_object_object_add(j, "queue_depth", json_object_new_uint64(o->depth));
	json_object_object_add(j, "seed", json_object_new_uint64(v->seed));
	for (int k = 0; k < 2; k++) {
		double secs = (double)v->phase[k].ns / 1e9;
		json_object *p;

		if (!v->phase[k].ran) {
			json_object_object_add(j, k ? "read" : "write", NULL);
			continue;
		}
		p = json_object_new_object();
		json_object_object_add(p, "bytes", json_object_new_uint64(v->phase[k].bytes));
		json_object_object_add(p, "seconds", nvme_cli_jdouble(secs, 6));
		json_object_object_add(
		    p, "mib_per_s",
		    nvme_cli_jdouble(secs > 0 ? (double)v->phase[k].bytes / 1048576.0 / secs : 0,
				     1));
		json_object_object_add(j, k ? "read" : "write", p);
	}
	json_object_object_add(j, "compared_blocks", json_object_new_uint64(v->compared));
	json_object_object_add(j, "mismatched_blocks", json_object_new_uint64(v->mismatches));
	a = json_object_new_array();
	for (unsigned i = 0; i < v->nlist; i++) {
		const struct nvme_cli_mismatch *m = &v->list[i];
		json_object *e = json_object_new_object();

		json_object_object_add(e, "lba", json_object_new_uint64(m->lba));
		json_object_object_add(e, "first_byte", json_object_new_int64(m->first));
		json_object_object_add(e, "bytes_differ", json_object_new_int64(m->differ));
		json_object_object_add(e, "note", json_object_new_string(m->note));
		json_object_array_add(a, e);
	}
	json_object_object_add(j, "mismatches", a);
	json_object_object_add(j, "io_errors", json_object_new_uint64(v->io_errors));
	json_object_object_add(j, "unverified_blocks", json_object_new_uint64(v->unverified));
	a = json_object_new_array();
	for (unsigned i = 0; i < v->nerrs; i++) {
		const struct ioerr *e = &v->errs[i];
		json_object *x = json_object_new_object();

		json_object_object_add(x, "op",
				       json_object_new_string(e->write ? "write" : "read"));
		json_object_object_add(x, "lba", json_object_new_uint64(e->lba));
		json_object_object_add(x, "blocks", json_object_new_int64(e->nlb));
		json_object_object_add(x, "rc", json_object_new_int(e->cpl.rc));
		json_object_object_add(x, "status", json_object_new_int(e->cpl.status));
		json_object_object_add(x, "message",
				       json_object_new_string(err_desc(e, buf, sizeof(buf))));
		json_object_array_add(a, x);
	}
	json_object_object_add(j, "errors", a);
	json_object_object_add(j, "interrupted", json_object_new_boolean(interrupted));
	json_object_object_add(j, "driver", nvme_cli_json_stats(c));
	json_object_object_add(
	    j, "ok", json_object_new_boolean(!v->mismatches && !v->io_errors && !interrupted));
	printf("%s\n",
	       json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
}

static uint64_t random_seed(void)
{
	uint64_t s = nvme_cli_now_ns() ^ (uint64_t)getpid() << 32;

	s ^= s >> 31;
	s *= 0xbf58476d1ce4e5b9ull;
	s ^= s >> 29;
	return s & 0xffffffffu; /* short enough to type again */
}

int cmd_nvme_verify(int argc, char **argv)
{
	struct verify_opts o = {.nsid = 1};
	struct udrv_nvme_ctrlr *c = NULL;
	struct verify *v = NULL;
	uint64_t blocks;
	uint32_t bs;
	bool show = nvme_cli_progress(), interrupted;
	char sz[32], cap[64];
	int ret;

	ret = parse_opts(argc, argv, &o);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (!o.has_seed)
		o.seed = random_seed();
	ret = nvme_cli_open("verify", o.device, 1, &c);
	if (ret)
		return ret;
	if (!nvme_cli_namespace("verify", o.device, c, (uint32_t)o.nsid, &blocks, &bs)) {
		ret = 2;
		goto out;
	}
	ret = check_opts(&o, c, blocks, bs);
	if (ret)
		goto out;

	v = calloc(1, sizeof(*v));
	if (v)
		v->slots = calloc(o.depth, sizeof(*v->slots));
	if (v && v->slots)
		v->idle = calloc(o.depth, sizeof(*v->idle));
	if (!v || !v->slots || !v->idle) {
		ret = cli_fail("nvme verify", -ENOMEM);
		goto out;
	}
	v->nsid = (uint32_t)o.nsid;
	v->bs = bs;
	v->io_blocks = (uint32_t)(o.io_size / bs);
	v->seed = o.seed;
	v->start = o.lba;
	v->end = o.lba + o.count;
	v->qp = udrv_nvme_qpair_create(c, (unsigned)o.depth + 1);
	if (!v->qp) {
		ret = cli_fail("nvme verify: cannot create an I/O queue pair", -errno);
		goto out;
	}
	for (unsigned i = 0; i < o.depth; i++) {
		v->slots[i].v = v;
		v->slots[i].buf = udrv_nvme_dma_alloc(c, o.io_size);
		if (!v->slots[i].buf) {
			ret = cli_fail("nvme verify: cannot allocate DMA buffers", -errno);
			goto out;
		}
		v->idle[v->nidle++] = &v->slots[i];
	}

	cli_iec(o.io_size, sz, sizeof(sz));
	nvme_cli_capacity(o.count * bs, cap, sizeof(cap));
	if (!o.json)
		printf("verify %s namespace %" PRIu64 ": LBA %" PRIu64 "..%" PRIu64 " (%" PRIu64
		       " blocks of %" PRIu32 " bytes, %s), %s commands, queue depth %" PRIu64
		       ", seed 0x%" PRIx64 "%s\n",
		       o.device, o.nsid, v->start, v->end - 1, o.count, bs, cap, sz, o.depth,
		       o.seed, o.read_only ? ", read-only" : "");
	fflush(stdout);

	nvme_cli_catch_signals();
	ret = 0;
	if (!o.read_only)
		ret = run_phase(v, true, show);
	if (!ret && !v->gone && !nvme_cli_interrupted())
		ret = run_phase(v, false, show);
	interrupted = nvme_cli_interrupted();
	nvme_cli_restore_signals();
	if (ret) {
		/* Commands still out: close fails them (their callbacks must not submit
		 * again), and their buffers stay allocated under the device. */
		v->gone = true;
		udrv_nvme_close(c);
		return 1;
	}
	if (o.json)
		print_json(v, &o, c, interrupted);
	else
		print_text(v, interrupted);
	fflush(stdout);
	nvme_cli_print_stats(stderr, c);
	if (v->gone)
		fprintf(stderr, "udrv nvme verify: %s is gone (removed, or its server died)\n",
			o.device);
	ret = v->mismatches || v->io_errors || interrupted || v->gone ? 1 : 0;
out:
	if (v) {
		udrv_nvme_qpair_destroy(v->qp);
		for (unsigned i = 0; v->slots && i < o.depth; i++)
			udrv_dma_free(udrv_nvme_domain(c), v->slots[i].buf);
		free(v->slots);
		free(v->idle);
		free(v);
	}
	udrv_nvme_close(c);
	return ret;
}
