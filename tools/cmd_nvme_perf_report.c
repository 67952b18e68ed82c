/* SPDX-License-Identifier: BSD-3-Clause */
/* udrv nvme perf: printing the results (struct nvme_cli_perf_result, cli.h) as text or JSON. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include <udrv/nvme.h>

#include "cli.h"

#define ERRS_SHOWN 5u /* errors printed as text */

static bool mixed(const struct nvme_cli_perf_result *r)
{
	return r->read_pct != 0 && r->read_pct != 100;
}

/* A latency in microseconds in at most 9 columns. */
static const char *us(uint64_t ns, char *buf, size_t len)
{
	double v = (double)ns / 1e3;

	snprintf(buf, len, v < 1e4 ? "%.2f" : v < 1e6 ? "%.1f" : "%.0f", v);
	return buf;
}

static void row_text(const char *label, const struct nvme_cli_perf_row *row, uint64_t io_size)
{
	const struct nvme_cli_hist *h = &row->h;
	double iops = row->secs > 0 ? (double)h->n / row->secs : 0;
	char b[6][32];

	printf("%-12s %12.1f %10.1f", label, iops, iops * (double)io_size / 1048576.0);
	if (!h->n) {
		printf("  %9s %9s %9s %9s %9s %9s\n", "-", "-", "-", "-", "-", "-");
		return;
	}
	printf("  %9s %9s %9s %9s %9s %9s\n", us(h->sum / h->n, b[0], sizeof(b[0])),
	       us(h->min, b[1], sizeof(b[1])), us(h->max, b[2], sizeof(b[2])),
	       us(nvme_cli_hist_pct(h, 50.0), b[3], sizeof(b[3])),
	       us(nvme_cli_hist_pct(h, 99.0), b[4], sizeof(b[4])),
	       us(nvme_cli_hist_pct(h, 99.9), b[5], sizeof(b[5])));
}

/* What the I/O cost the queue pairs' threads: the figure to set against a kernel engine's
 * CPU time per I/O (fio's usr + sys). */
static void cpu_text(const struct nvme_cli_perf_row *total, unsigned qpairs)
{
	uint64_t n = total->h.n;
	double busy = total->secs > 0 ? total->cpu_secs / total->secs / qpairs : 0;

	if (!n || total->secs <= 0)
		return;
	if (qpairs == 1)
		printf("cpu: the queue pair's thread was busy %.1f%% of the time", 100.0 * busy);
	else
		printf("cpu: %u queue pair threads, each busy %.1f%% of the time on average",
		       qpairs, 100.0 * busy);
	printf(": %.2f us of CPU per I/O (%.0f IOPS per CPU-second)\n",
	       total->cpu_secs * 1e6 / (double)n,
	       total->cpu_secs > 0 ? (double)n / total->cpu_secs : 0.0);
}

/* qpair: -1 for a total. cpu: the row has its threads' CPU time (not the reads/writes rows). */
static json_object *row_json(const struct nvme_cli_perf_row *row, uint64_t io_size, int qpair,
			     bool cpu)
{
	const struct nvme_cli_hist *h = &row->h;
	double iops = row->secs > 0 ? (double)h->n / row->secs : 0;
	json_object *o = json_object_new_object(), *l;

	if (qpair >= 0)
		json_object_object_add(o, "qpair", json_object_new_int(qpair));
	json_object_object_add(o, "ios", json_object_new_uint64(h->n));
	json_object_object_add(o, "seconds", nvme_cli_jdouble(row->secs, 3));
	json_object_object_add(o, "iops", nvme_cli_jdouble(iops, 1));
	json_object_object_add(o, "mib_per_s",
			       nvme_cli_jdouble(iops * (double)io_size / 1048576.0, 2));
	if (qpair >= 0)
		json_object_object_add(o, "errors", json_object_new_uint64(row->errors));
	if (cpu) {
		json_object_object_add(o, "cpu_seconds", nvme_cli_jdouble(row->cpu_secs, 3));
		json_object_object_add(
		    o, "cpu_us_per_io",
		    h->n ? nvme_cli_jdouble(row->cpu_secs * 1e6 / (double)h->n, 2) : NULL);
	}
	if (!h->n) {
		json_object_object_add(o, "latency_us", NULL);
		return o;
	}
	l = json_object_new_object();
	json_object_object_add(l, "avg", nvme_cli_jdouble((double)h->sum / (double)h->n / 1e3, 3));
	json_object_object_add(l, "min", nvme_cli_jdouble((double)h->min / 1e3, 3));
	json_object_object_add(l, "max", nvme_cli_jdouble((double)h->max / 1e3, 3));
	json_object_object_add(l, "p50",
			       nvme_cli_jdouble((double)nvme_cli_hist_pct(h, 50.0) / 1e3, 3));
	json_object_object_add(l, "p99",
			       nvme_cli_jdouble((double)nvme_cli_hist_pct(h, 99.0) / 1e3, 3));
	json_object_object_add(l, "p99_9",
			       nvme_cli_jdouble((double)nvme_cli_hist_pct(h, 99.9) / 1e3, 3));
	json_object_object_add(o, "latency_us", l);
	return o;
}

/* "read of LBA 8+8: LBA Out of Range (status 0x0080)" */
static const char *err_desc(const struct nvme_cli_perf_err *e, uint32_t nlb, char *buf, size_t len)
{
	struct udrv_nvme_cpl cpl = {.rc = e->rc, .status = e->status};
	char s[160];

	if (e->at_submit)
		snprintf(s, sizeof(s), "not submitted: %s", strerror(-e->rc));
	else
		nvme_cli_cpl_str(&cpl, s, sizeof(s));
	snprintf(buf, len, "%s of LBA %" PRIu64 "+%" PRIu32 ": %s", e->read ? "read" : "write",
		 e->lba, nlb, s);
	return buf;
}

void nvme_cli_perf_text(const struct nvme_cli_perf_result *r)
{
	unsigned C = (unsigned)r->qpairs;
	char label[32], buf[320];

	printf("\n%-12s %12s %10s  %9s %9s %9s %9s %9s %9s\n", "", "IOPS", "MiB/s", "avg us",
	       "min us", "max us", "p50 us", "p99 us", "p99.9 us");
	for (unsigned i = 0; i < C; i++) {
		snprintf(label, sizeof(label), "qpair %u", i);
		row_text(label, &r->rows[i], r->io_size);
	}
	row_text("total", &r->rows[C], r->io_size);
	if (mixed(r)) {
		row_text("  reads", &r->rows[C + 1], r->io_size);
		row_text("  writes", &r->rows[C + 2], r->io_size);
	}
	cpu_text(&r->rows[C], C);
	for (unsigned i = 0; i < r->nerrs && i < ERRS_SHOWN; i++)
		printf("error: qpair %u: %s\n", r->errs[i].qpair,
		       err_desc(&r->errs[i], r->io_blocks, buf, sizeof(buf)));
	if (r->errors > ERRS_SHOWN)
		printf("error: ... %" PRIu64 " I/O errors in all\n", r->errors);
}

void nvme_cli_perf_json(const struct nvme_cli_perf_result *r)
{
	unsigned C = (unsigned)r->qpairs;
	json_object *j = json_object_new_object(), *a = json_object_new_array(), *t;
	char buf[320];

	json_object_object_add(j, "device", json_object_new_string(r->device));
	json_object_object_add(j, "nsid", json_object_new_int64(r->nsid));
	json_object_object_add(j, "workload", json_object_new_string(r->workload));
	json_object_object_add(j, "read_percent", json_object_new_int((int)r->read_pct));
	json_object_object_add(j, "io_size", json_object_new_uint64(r->io_size));
	json_object_object_add(j, "queue_depth", json_object_new_uint64(r->depth));
	json_object_object_add(j, "qpairs", json_object_new_uint64(r->qpairs));
	json_object_object_add(j, "time", json_object_new_uint64(r->seconds));
	for (unsigned i = 0; i < C; i++)
		json_object_array_add(a, row_json(&r->rows[i], r->io_size, (int)i, true));
	json_object_object_add(j, "per_qpair", a);
	t = row_json(&r->rows[C], r->io_size, -1, true);
	if (mixed(r)) {
		json_object_object_add(t, "reads",
				       row_json(&r->rows[C + 1], r->io_size, -1, false));
		json_object_object_add(t, "writes",
				       row_json(&r->rows[C + 2], r->io_size, -1, false));
	}
	json_object_object_add(j, "total", t);
	json_object_object_add(j, "errors", json_object_new_uint64(r->errors));
	a = json_object_new_array();
	for (unsigned i = 0; i < r->nerrs; i++) {
		const struct nvme_cli_perf_err *e = &r->errs[i];
		json_object *x = json_object_new_object();

		json_object_object_add(x, "qpair", json_object_new_int((int)e->qpair));
		json_object_object_add(x, "op", json_object_new_string(e->read ? "read" : "write"));
		json_object_object_add(x, "lba", json_object_new_uint64(e->lba));
		json_object_object_add(x, "rc", json_object_new_int(e->rc));
		json_object_object_add(x, "status", json_object_new_int(e->status));
		json_object_object_add(
		    x, "message",
		    json_object_new_string(err_desc(e, r->io_blocks, buf, sizeof(buf))));
		json_object_array_add(a, x);
	}
	json_object_object_add(j, "error_list", a);
	json_object_object_add(j, "interrupted", json_object_new_boolean(r->interrupted));
	json_object_object_add(j, "driver", nvme_cli_json_stats(r->c));
	printf("%s\n",
	       json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
}
