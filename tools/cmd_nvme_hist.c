/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The latency histogram of `udrv nvme perf` (declared in cli.h): percentiles, and drawing
 * it with gnuplot for --plot.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

void nvme_cli_hist_merge(struct nvme_cli_hist *dst, const struct nvme_cli_hist *src)
{
	if (!src->n)
		return;
	if (!dst->n || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->n += src->n;
	dst->sum += src->sum;
	for (unsigned i = 0; i < NVME_CLI_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
}

uint64_t nvme_cli_hist_lo(unsigned i)
{
	if (i < NVME_CLI_HIST_SUB)
		return i;
	return (uint64_t)(i % NVME_CLI_HIST_SUB + NVME_CLI_HIST_SUB) << (i / NVME_CLI_HIST_SUB - 1);
}

uint64_t nvme_cli_hist_width(unsigned i)
{
	return i < NVME_CLI_HIST_SUB ? 1 : 1ull << (i / NVME_CLI_HIST_SUB - 1);
}

uint64_t nvme_cli_hist_pct(const struct nvme_cli_hist *h, double pct)
{
	uint64_t want, seen = 0, v;

	if (!h->n)
		return 0;
	/* The smallest value with at least pct% of the values at or below it. */
	want = (uint64_t)((double)h->n * pct / 100.0 + 0.999999);
	if (want < 1)
		want = 1;
	if (want > h->n)
		want = h->n;
	for (unsigned i = 0; i < NVME_CLI_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen < want)
			continue;
		v = nvme_cli_hist_lo(i) + nvme_cli_hist_width(i) / 2;
		if (v < h->min)
			v = h->min;
		if (v > h->max)
			v = h->max;
		return v;
	}
	return h->max;
}

/* ---- --plot ---- */

/* gnuplot in $PATH, into path. */
static bool find_gnuplot(char *path, size_t len)
{
	const char *p = getenv("PATH");

	if (!p || !*p)
		p = "/usr/local/bin:/usr/bin:/bin";
	while (*p) {
		size_t n = strcspn(p, ":");

		if (n && (size_t)snprintf(path, len, "%.*s/gnuplot", (int)n, p) < len &&
		    access(path, X_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

static bool is_svg(const char *file)
{
	const char *dot = strrchr(file, '.');

	return dot && !strcasecmp(dot, ".svg");
}

int nvme_cli_plot_check(const char *cmd, const char *file)
{
	const char *dot = strrchr(file, '.');
	char path[PATH_MAX];

	if (!dot || (strcasecmp(dot, ".png") && strcasecmp(dot, ".svg"))) {
		fprintf(stderr, "udrv nvme %s: --plot FILE must end in .png or .svg, not '%s'\n",
			cmd, file);
		return 2;
	}
	if (!find_gnuplot(path, sizeof(path))) {
		fprintf(stderr,
			"udrv nvme %s: install gnuplot-nox (apt-get install gnuplot-nox) for "
			"--plot\n",
			cmd);
		return 1;
	}
	return 0;
}

/* s as a gnuplot single-quoted string: '' is a quote; control characters become '?'. */
static void gp_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("''", f);
		else if ((unsigned char)*s < 0x20)
			fputc('?', f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

/* One histogram as "latency_us percent cumulative_percent count" lines, every bucket from
 * the first used to the last, then the last one's upper edge, for `with steps`. */
static int write_data(const char *path, const struct nvme_cli_hist *h)
{
	unsigned first = 0, last = 0;
	uint64_t cum = 0;
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	for (unsigned i = 0; i < NVME_CLI_HIST_BUCKETS; i++) {
		if (h->b[i]) {
			if (!cum)
				first = i;
			last = i;
			cum += h->b[i];
		}
	}
	cum = 0;
	fprintf(f, "# latency_us percent cumulative_percent count\n");
	for (unsigned i = first; i <= last; i++) {
		double lo = (double)nvme_cli_hist_lo(i) / 1e3;

		cum += h->b[i];
		fprintf(f, "%.4f %.6f %.6f %" PRIu64 "\n", lo > 0 ? lo : 0.0005,
			100.0 * (double)h->b[i] / (double)h->n, 100.0 * (double)cum / (double)h->n,
			h->b[i]);
	}
	fprintf(f, "%.4f 0 100 0\n",
		(double)(nvme_cli_hist_lo(last) + nvme_cli_hist_width(last)) / 1e3);
	if (fclose(f))
		return -errno;
	return 0;
}

static int write_script(const char *path, const char *dir, const char *file, const char *title,
			const struct nvme_cli_hist *reads, const struct nvme_cli_hist *writes)
{
	const struct nvme_cli_hist *h[2] = {reads, writes};
	static const char *const name[2] = {"reads", "writes"};
	static const char *const color[2] = {"#1f77b4", "#d62728"};
	bool first = true;
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	if (is_svg(file))
		fprintf(f, "set terminal svg size 1100,650 dynamic noenhanced background "
			   "'#ffffff'\n");
	else
		fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
			   "  set terminal pngcairo size 1100,650 noenhanced\n"
			   "} else {\n"
			   "  set terminal png size 1100,650 noenhanced\n"
			   "}\n");
	fputs("set output ", f);
	gp_quote(f, file);
	fputs("\nset title ", f);
	gp_quote(f, title);
	fputs("\nset xlabel 'latency (us), log scale'\n"
	      "set ylabel 'I/Os per bucket (%)'\n"
	      "set y2label 'cumulative (%)'\n"
	      "set logscale x\n"
	      "set grid xtics ytics mxtics\n"
	      "set ytics nomirror\n"
	      "set y2tics 0,10,100\n"
	      "set y2range [0:100]\n"
	      "set yrange [0:*]\n"
	      "set key right center box opaque\n"
	      "plot",
	      f);
	for (int k = 0; k < 2; k++) {
		if (!h[k]->n)
			continue;
		fprintf(f,
			"%s '%s/%s.dat' using 1:2 with steps lw 2 lc rgb '%s' title '%s (%" PRIu64
			" I/Os)', \\\n"
			"     '%s/%s.dat' using 1:3 axes x1y2 with lines dt 2 lw 1 lc rgb '%s' "
			"title '%s, cumulative'",
			first ? "" : ", \\\n    ", dir, name[k], color[k], name[k], h[k]->n, dir,
			name[k], color[k], name[k]);
		first = false;
	}
	fputs("\n", f);
	if (fclose(f))
		return -errno;
	return 0;
}

/* Run gnuplot script; its exit status, or -1. */
static int run_gnuplot(const char *gnuplot, const char *script)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
		}
		execl(gnuplot, "gnuplot", script, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -1;
}

int nvme_cli_plot(const char *cmd, const char *file, const char *title,
		  const struct nvme_cli_hist *reads, const struct nvme_cli_hist *writes)
{
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX], path[PATH_MAX + 16], script[PATH_MAX + 16], gnuplot[PATH_MAX];
	const struct nvme_cli_hist *h[2] = {reads, writes};
	static const char *const name[2] = {"reads", "writes"};
	int ret;

	if (!find_gnuplot(gnuplot, sizeof(gnuplot))) {
		fprintf(stderr,
			"udrv nvme %s: install gnuplot-nox (apt-get install gnuplot-nox) for "
			"--plot\n",
			cmd);
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/udrv-plot.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr,
			"udrv nvme %s: cannot create a temporary directory for --plot: %s\n", cmd,
			strerror(errno));
		return 1;
	}
	for (int k = 0; k < 2; k++) {
		if (!h[k]->n)
			continue;
		snprintf(path, sizeof(path), "%s/%s.dat", dir, name[k]);
		ret = write_data(path, h[k]);
		if (ret < 0)
			goto write_failed;
	}
	snprintf(script, sizeof(script), "%s/plot.gp", dir);
	ret = write_script(script, dir, file, title, reads, writes);
	if (ret < 0) {
		snprintf(path, sizeof(path), "%s", script);
		goto write_failed;
	}
	ret = run_gnuplot(gnuplot, script);
	if (ret) {
		fprintf(stderr,
			"udrv nvme %s: gnuplot could not draw %s (%s); its input is in %s\n", cmd,
			file, ret == 127 ? "it did not start" : "it failed", dir);
		return 1;
	}
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof(path), "%s/%s.dat", dir, name[k]);
		unlink(path);
	}
	unlink(script);
	rmdir(dir);
	return 0;

write_failed:
	fprintf(stderr, "udrv nvme %s: cannot write %s for --plot: %s\n", cmd, path,
		strerror(-ret));
	return 1;
}
