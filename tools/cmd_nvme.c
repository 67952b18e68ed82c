/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv nvme: drive an NVMe controller with udrv's poll-mode driver (include/udrv/nvme.h).
 * This file: the command list and what the subcommands share; identify, verify and perf
 * are in cmd_nvme_identify.c, cmd_nvme_verify.c and cmd_nvme_perf.c.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <udrv/log.h>
#include <udrv/nvme.h>

#include "cli.h"

static void nvme_usage(FILE *f)
{
	fprintf(f,
		"usage: udrv nvme <command> DEVICE [options]\n"
		"\n"
		"Drive an NVMe controller with udrv's poll-mode driver. DEVICE is a PCI address\n"
		"bound to vfio-pci or uio_pci_generic (see `udrv bind`), or vfio-user:PATH for a\n"
		"controller served over vfio-user, such as `udrv emu nvme --socket PATH`.\n"
		"\n"
		"commands:\n"
		"  identify  the controller, its namespaces and its SMART/health log\n"
		"  verify    write LBA-tagged patterns, read them back and compare (overwrites)\n"
		"  perf      measure IOPS, throughput and latency with queue pairs on threads\n"
		"  read      raw blocks to a file or standard output\n"
		"  write     raw blocks from a file or standard input (overwrites)\n"
		"\n"
		"`udrv nvme <command> --help` describes a command and its options.\n");
}

int cmd_nvme(int argc, char **argv)
{
	if (argc < 2) {
		nvme_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		nvme_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "identify") || !strcmp(argv[1], "id"))
		return cmd_nvme_identify(argc - 1, argv + 1);
	if (!strcmp(argv[1], "verify"))
		return cmd_nvme_verify(argc - 1, argv + 1);
	if (!strcmp(argv[1], "perf"))
		return cmd_nvme_perf(argc - 1, argv + 1);
	if (!strcmp(argv[1], "read") || !strcmp(argv[1], "write"))
		return cmd_nvme_rw(argc - 1, argv + 1);
	fprintf(stderr,
		"udrv nvme: '%s' is not an nvme command; run `udrv nvme --help` for the list\n",
		argv[1]);
	return 2;
}

/* ---- shared by the subcommands ---- */

bool nvme_cli_may_overwrite(const char *cmd, const char *device, bool yes)
{
	/* An emulated controller holds nothing of value; a real SSD may hold anything. */
	if (yes || !strncmp(device, "vfio-user:", 10))
		return true;
	fprintf(stderr,
		"udrv nvme %s: this overwrites data on %s; add --yes if that is what you want\n",
		cmd, device);
	return false;
}

int nvme_cli_open(const char *cmd, const char *device, unsigned io_queues,
		  struct udrv_nvme_ctrlr **c)
{
	return nvme_cli_open_flags(cmd, device, io_queues, 0, c);
}

int nvme_cli_open_flags(const char *cmd, const char *device, unsigned io_queues, unsigned flags,
			struct udrv_nvme_ctrlr **c)
{
	struct udrv_nvme_opts o = {.io_queues = io_queues, .flags = flags};
	char what[64];
	int ret;

	ret = udrv_nvme_open(device, &o, c);
	if (ret < 0) {
		snprintf(what, sizeof(what), "nvme %s: %s", cmd, device);
		return cli_fail(what, ret);
	}
	return 0;
}

bool nvme_cli_namespace(const char *cmd, const char *device, struct udrv_nvme_ctrlr *c,
			uint32_t nsid, uint64_t *blocks, uint32_t *block_size)
{
	const struct udrv_nvme_ctrlr_info *ci = udrv_nvme_ctrlr_info(c);
	struct udrv_nvme_ns_info ns;
	char list[128] = "";
	size_t len = 0;
	unsigned n = 0;

	if (udrv_nvme_ns_info(c, nsid, &ns) == 0 && ns.active && ns.blocks && ns.block_size) {
		*blocks = ns.blocks;
		*block_size = ns.block_size;
		return true;
	}
	for (uint32_t i = 1; i <= ci->nn && len + 16 < sizeof(list); i++) {
		if (udrv_nvme_ns_info(c, i, &ns) || !ns.active)
			continue;
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%" PRIu32,
					n++ ? ", " : "", i);
	}
	if (!n)
		fprintf(stderr, "udrv nvme %s: %s has no active namespace to use\n", cmd, device);
	else
		fprintf(stderr,
			"udrv nvme %s: -n must be an active namespace of %s (%s), not %" PRIu32
			"\n",
			cmd, device, list, nsid);
	return false;
}

int nvme_cli_opt_error(const char *cmd, int opt, char **argv)
{
	const char *arg = argv[optind - 1];
	bool is_long = !strncmp(arg, "--", 2);

	if (opt == ':' && is_long)
		fprintf(stderr, "udrv nvme %s: %.*s needs a value; see `udrv nvme %s --help`\n",
			cmd, (int)strcspn(arg, "="), arg, cmd);
	else if (opt == ':')
		fprintf(stderr, "udrv nvme %s: -%c needs a value; see `udrv nvme %s --help`\n", cmd,
			optopt, cmd);
	else if (is_long || !optopt)
		fprintf(stderr, "udrv nvme %s: unexpected '%s'; see `udrv nvme %s --help`\n", cmd,
			arg, cmd);
	else
		fprintf(stderr, "udrv nvme %s: unexpected option -%c; see `udrv nvme %s --help`\n",
			cmd, optopt, cmd);
	return 2;
}

int nvme_cli_device_error(const char *cmd, int argc, char **argv)
{
	if (optind >= argc)
		fprintf(stderr,
			"udrv nvme %s: which controller? Give a PCI address or vfio-user:PATH; see "
			"`udrv nvme %s --help`\n",
			cmd, cmd);
	else
		fprintf(stderr, "udrv nvme %s: unexpected '%s' after the device %s\n", cmd,
			argv[optind + 1], argv[optind]);
	return 2;
}

void nvme_cli_capacity(uint64_t b, char *buf, size_t len)
{
	static const char *const si[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
	static const char *const iec[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double d = (double)b, i = (double)b;
	int ud = -1, ui = -1;

	if (b < 1000) {
		snprintf(buf, len, "%" PRIu64 " bytes", b);
		return;
	}
	while (d >= 1000 && ud < 5) {
		d /= 1000;
		ud++;
	}
	while (i >= 1024 && ui < 5) {
		i /= 1024;
		ui++;
	}
	if (ui < 0)
		snprintf(buf, len, "%.2f %s (%" PRIu64 " bytes)", d, si[ud], b);
	else
		snprintf(buf, len, "%.2f %s (%.2f %s)", d, si[ud], i, iec[ui]);
}

void nvme_cli_cpl_str(const struct udrv_nvme_cpl *cpl, char *buf, size_t len)
{
	switch (cpl->rc) {
	case -EIO:
		snprintf(buf, len, "%s (status 0x%04x)", udrv_nvme_status_str(cpl->status),
			 cpl->status);
		break;
	case -ETIMEDOUT:
		snprintf(buf, len, "timed out (aborted, or the controller was reset)");
		break;
	case -ENODEV:
		snprintf(buf, len, "the controller is gone");
		break;
	case -ECANCELED:
		snprintf(buf, len, "cancelled: its queue pair was destroyed");
		break;
	default:
		snprintf(buf, len, "%s", strerror(cpl->rc < 0 ? -cpl->rc : cpl->rc));
		break;
	}
}

struct json_object *nvme_cli_jdouble(double v, int decimals)
{
	char b[64];

	snprintf(b, sizeof(b), "%.*f", decimals, v);
	return json_object_new_double_s(v, b);
}

void nvme_cli_print_stats(FILE *f, const struct udrv_nvme_ctrlr *c)
{
	struct udrv_nvme_stats st;

	udrv_nvme_stats(c, &st);
	if (!st.bad_cqes && !st.timeouts && !st.aborts && !st.resets && !st.resubmits)
		return;
	fprintf(f,
		"driver: %" PRIu64 " bad completion entries skipped, %" PRIu64 " timeouts, %" PRIu64
		" aborts, %" PRIu64 " controller resets, %" PRIu64 " commands resubmitted\n",
		st.bad_cqes, st.timeouts, st.aborts, st.resets, st.resubmits);
}

struct json_object *nvme_cli_json_stats(const struct udrv_nvme_ctrlr *c)
{
	struct udrv_nvme_stats st;
	json_object *o = json_object_new_object();

	udrv_nvme_stats(c, &st);
	json_object_object_add(o, "bad_cqes", json_object_new_uint64(st.bad_cqes));
	json_object_object_add(o, "timeouts", json_object_new_uint64(st.timeouts));
	json_object_object_add(o, "aborts", json_object_new_uint64(st.aborts));
	json_object_object_add(o, "resets", json_object_new_uint64(st.resets));
	json_object_object_add(o, "resubmits", json_object_new_uint64(st.resubmits));
	return o;
}

uint64_t nvme_cli_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static atomic_bool interrupted;
static struct sigaction old_int, old_term;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&interrupted, true);
}

void nvme_cli_catch_signals(void)
{
	struct sigaction sa = {0};

	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills, should draining ever hang */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
}

void nvme_cli_restore_signals(void)
{
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
}

bool nvme_cli_interrupted(void)
{
	return atomic_load_explicit(&interrupted, memory_order_relaxed);
}

bool nvme_cli_progress(void)
{
	return isatty(STDERR_FILENO);
}
