/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `udrv nvme read|write DEVICE --lba L --count N [-n NSID] [-f FILE]`: raw blocks between a
 * namespace and a file (or stdin/stdout), one command of up to max_xfer at a time - for
 * scripts, e.g. checking byte for byte what another driver wrote (like `nvme read` of
 * nvme-cli, or dd on the kernel's block device).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <udrv/dma.h>
#include <udrv/nvme.h>

#include "cli.h"

struct wait {
	int done;
	struct udrv_nvme_cpl cpl;
};

static void on_done(void *arg, const struct udrv_nvme_cpl *cpl)
{
	struct wait *w = arg;

	w->cpl = *cpl;
	w->done = 1;
}

static void usage(FILE *f, const char *cmd)
{
	bool rd = !strcmp(cmd, "read");

	fprintf(f,
		"usage: udrv nvme %s DEVICE --lba LBA --count BLOCKS [-n NSID] [-f FILE]\n"
		"\n"
		"%s BLOCKS logical blocks starting at LBA of namespace NSID (default 1) %s FILE\n"
		"(default: %s), as raw bytes.%s\n"
		"\n"
		"  --lba LBA        the first block\n"
		"  --count BLOCKS   how many blocks\n"
		"  -n, --namespace  the namespace (1)\n"
		"  -f, --file FILE  %s\n",
		cmd, rd ? "Read" : "Write", rd ? "into" : "from",
		rd ? "standard output" : "standard input",
		rd ? "" : " FILE must hold BLOCKS whole blocks.",
		rd ? "where the data goes" : "where the data comes from");
}

/* All of n bytes, or -1. */
static int io_all(int fd, void *buf, size_t n, bool rd)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = rd ? read(fd, (char *)buf + done, n - done)
			       : write(fd, (const char *)buf + done, n - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

static int transfer(const char *cmd, struct udrv_nvme_ctrlr *c, struct udrv_nvme_qpair *qp,
		    uint32_t nsid, uint32_t bs, uint64_t lba, uint64_t count, int fd, bool rd)
{
	uint32_t per = udrv_nvme_ctrlr_info(c)->max_xfer / bs;
	uint8_t *buf = udrv_nvme_dma_alloc(c, (size_t)per * bs);
	int rc = 0;

	if (!buf)
		return cli_fail("nvme: DMA buffer", -ENOMEM);
	for (uint64_t at = lba; at < lba + count && rc == 0;) {
		uint32_t n = (uint32_t)(lba + count - at < per ? lba + count - at : per);
		struct wait w = {0};
		int r;

		if (!rd && io_all(fd, buf, (size_t)n * bs, true) < 0) {
			fprintf(stderr,
				"udrv nvme write: the input ended before %" PRIu64
				" blocks; give exactly --count blocks\n",
				count);
			rc = 1;
			break;
		}
		r = rd ? udrv_nvme_read(qp, nsid, buf, at, n, on_done, &w)
		       : udrv_nvme_write(qp, nsid, buf, at, n, on_done, &w);
		while (r == 0 && !w.done) {
			int p = udrv_nvme_process_completions(qp, 0);

			if (p < 0 && !w.done)
				r = p;
		}
		if (r < 0 || w.cpl.rc < 0) {
			char what[96], why[128];

			nvme_cli_cpl_str(&w.cpl, why, sizeof(why));
			snprintf(what, sizeof(what), "nvme %s of LBA %" PRIu64 "+%u", cmd, at, n);
			if (r < 0)
				return cli_fail(what, r);
			fprintf(stderr, "udrv: %s: %s\n", what, why);
			rc = 1;
			break;
		}
		if (rd && io_all(fd, buf, (size_t)n * bs, false) < 0) {
			fprintf(stderr, "udrv nvme read: cannot write the output: %s\n",
				strerror(errno));
			rc = 1;
		}
		at += n;
	}
	udrv_dma_free(udrv_nvme_domain(c), buf);
	return rc;
}

int cmd_nvme_rw(int argc, char **argv)
{
	static const struct option longopts[] = {{"lba", required_argument, NULL, 'l'},
						 {"count", required_argument, NULL, 'c'},
						 {"namespace", required_argument, NULL, 'n'},
						 {"file", required_argument, NULL, 'f'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *cmd = argv[0], *file = NULL;
	bool rd = !strcmp(cmd, "read"), have_lba = false, have_count = false;
	uint64_t lba = 0, count = 0, nsid = 1, blocks;
	struct udrv_nvme_ctrlr *c = NULL;
	struct udrv_nvme_qpair *qp;
	uint32_t bs;
	int opt, fd, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, ":n:f:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			have_lba = cli_parse_u64(optarg, 0, UINT64_MAX, &lba);
			if (!have_lba)
				return nvme_cli_opt_error(cmd, '?', argv);
			break;
		case 'c':
			have_count = cli_parse_u64(optarg, 1, UINT64_MAX, &count);
			if (!have_count)
				return nvme_cli_opt_error(cmd, '?', argv);
			break;
		case 'n':
			if (!cli_parse_u64(optarg, 1, UINT32_MAX, &nsid))
				return nvme_cli_opt_error(cmd, '?', argv);
			break;
		case 'f':
			file = optarg;
			break;
		case 'h':
			usage(stdout, cmd);
			return 0;
		default:
			return nvme_cli_opt_error(cmd, opt, argv);
		}
	}
	if (optind + 1 != argc || !have_lba || !have_count) {
		fprintf(stderr,
			"udrv nvme %s: give DEVICE, --lba and --count; see `udrv nvme %s "
			"--help`\n",
			cmd, cmd);
		return 2;
	}
	fd = !file
		 ? (rd ? STDOUT_FILENO : STDIN_FILENO)
		 : open(file, rd ? O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC : O_RDONLY | O_CLOEXEC,
			0644);
	if (fd < 0) {
		fprintf(stderr, "udrv nvme %s: cannot open %s: %s\n", cmd, file, strerror(errno));
		return 1;
	}
	rc = nvme_cli_open(cmd, argv[optind], 1, &c);
	if (rc == 0 && !nvme_cli_namespace(cmd, argv[optind], c, (uint32_t)nsid, &blocks, &bs))
		rc = 2;
	else if (rc == 0 && (lba >= blocks || count > blocks - lba)) {
		fprintf(stderr,
			"udrv nvme %s: LBA %" PRIu64 "+%" PRIu64 " is beyond namespace %" PRIu64
			" (%" PRIu64 " blocks)\n",
			cmd, lba, count, nsid, blocks);
		rc = 2;
	}
	if (rc == 0) {
		qp = udrv_nvme_qpair_create(c, 4);
		rc = qp ? transfer(cmd, c, qp, (uint32_t)nsid, bs, lba, count, fd, rd)
			: cli_fail("nvme: queue pair", -errno);
		udrv_nvme_qpair_destroy(qp);
	}
	udrv_nvme_close(c);
	if (file)
		close(fd);
	return rc;
}
