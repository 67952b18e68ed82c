/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv nvme identify: what the controller says about itself (Identify Controller and
 * Namespace, as the driver keeps them) and its SMART/health log (Get Log Page).
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <nvme/types.h>

#include <udrv/log.h>
#include <udrv/nvme.h>

#include "cli.h"

#define SMART_LID     0x02u
#define SMART_LOG_LEN 512u
#define NSID_ALL      0xffffffffu
#define OPC_GET_LOG   0x02u

/* The low 64 bits of a 128-bit little-endian SMART counter; UINT64_MAX if it is larger. */
static uint64_t le128(const uint8_t *p)
{
	uint64_t lo = 0;

	for (int i = 15; i >= 8; i--)
		if (p[i])
			return UINT64_MAX;
	for (int i = 7; i >= 0; i--)
		lo = lo << 8 | p[i];
	return lo;
}

static const char *const oncs_names[] = {
    "Compare",	   "Write Uncorrectable", "Dataset Management", "Write Zeroes",
    "Save/Select", "Reservations",	  "Timestamp",		"Verify",
    "Copy",
};
#define ONCS_NAMES (sizeof(oncs_names) / sizeof(oncs_names[0]))

/* The SMART/health log, decoded. */
struct smart {
	uint8_t critical_warning;
	int temperature_k;
	unsigned avail_spare, spare_thresh, percent_used;
	uint64_t data_units_read, data_units_written, host_reads, host_writes;
	uint64_t busy_minutes, power_cycles, power_on_hours, unsafe_shutdowns;
	uint64_t media_errors, error_entries;
};

/* Get Log Page, SMART/health (NVMe 1.4, 5.14.1.2). 0, or -errno with a message in msg. */
static int read_smart(struct udrv_nvme_ctrlr *c, struct smart *s, char *msg, size_t len)
{
	struct nvme_smart_log log;
	struct udrv_nvme_cpl cpl = {0};
	uint32_t cmd[16] = {0};
	int ret;

	_Static_assert(sizeof(log) == SMART_LOG_LEN, "SMART/health log is 512 bytes");
	memset(&log, 0, sizeof(log));
	cmd[0] = OPC_GET_LOG; /* CDW0: opcode; the driver fills the command id */
	cmd[1] = NSID_ALL;
	cmd[10] = SMART_LID | (SMART_LOG_LEN / 4 - 1) << 16; /* LID, NUMDL (0's based) */
	ret = udrv_nvme_admin(c, cmd, &log, sizeof(log), false, &cpl);
	if (ret < 0) {
		if (ret == -EIO) {
			nvme_cli_cpl_str(&cpl, msg, len);
		} else {
			const char *m = udrv_errmsg();

			snprintf(msg, len, "%s", m[0] ? m : strerror(-ret));
		}
		return ret;
	}
	s->critical_warning = log.critical_warning;
	s->temperature_k = log.temperature[0] | log.temperature[1] << 8;
	s->avail_spare = log.avail_spare;
	s->spare_thresh = log.spare_thresh;
	s->percent_used = log.percent_used;
	s->data_units_read = le128(log.data_units_read);
	s->data_units_written = le128(log.data_units_written);
	s->host_reads = le128(log.host_reads);
	s->host_writes = le128(log.host_writes);
	s->busy_minutes = le128(log.ctrl_busy_time);
	s->power_cycles = le128(log.power_cycles);
	s->power_on_hours = le128(log.power_on_hours);
	s->unsafe_shutdowns = le128(log.unsafe_shutdowns);
	s->media_errors = le128(log.media_errors);
	s->error_entries = le128(log.num_err_log_entries);
	return 0;
}

/* Data units are thousands of 512 bytes: "2048 (1.05 GB)". */
static void data_units(uint64_t du, char *buf, size_t len)
{
	char cap[64];

	if (du > UINT64_MAX / 512000) {
		snprintf(buf, len, "%" PRIu64, du);
		return;
	}
	nvme_cli_capacity(du * 512000, cap, sizeof(cap));
	/* "1.05 GB (1000.00 MiB)" is too much here: keep the decimal part. */
	cap[strcspn(cap, "(")] = '\0';
	if (cap[0] && cap[strlen(cap) - 1] == ' ')
		cap[strlen(cap) - 1] = '\0';
	snprintf(buf, len, "%" PRIu64 " (%s)", du, cap);
}

static const char *critical_warning_str(uint8_t w, char *buf, size_t len)
{
	static const char *const bits[] = {"spare below threshold",	    "temperature",
					   "reliability degraded",	    "read-only",
					   "volatile memory backup failed", "PMR read-only"};
	size_t n = 0;

	if (!w)
		return "none";
	n += (size_t)snprintf(buf, len, "0x%02x:", w);
	for (unsigned i = 0; i < 6 && n < len; i++)
		if (w & (1u << i))
			n += (size_t)snprintf(buf + n, len - n, " %s", bits[i]);
	return buf;
}

static void version_str(uint32_t v, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
}

static void oncs_str(uint16_t oncs, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < ONCS_NAMES && n < len; i++)
		if (oncs & (1u << i))
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
					      oncs_names[i]);
	if (!n)
		snprintf(buf, len, "none");
}

/* "00-11-22", the IEEE OUI, most significant byte first. */
static void oui_str(const struct nvme_id_ctrl *id, char *buf, size_t len)
{
	snprintf(buf, len, "%02x-%02x-%02x", id->ieee[2], id->ieee[1], id->ieee[0]);
}

/* The NUL-terminated subsystem NQN, trailing spaces removed. */
static void subnqn_str(const struct nvme_id_ctrl *id, char *buf, size_t len)
{
	size_t n = strnlen(id->subnqn, sizeof(id->subnqn));

	while (n && id->subnqn[n - 1] == ' ')
		n--;
	if (n >= len)
		n = len - 1;
	memcpy(buf, id->subnqn, n);
	buf[n] = '\0';
}

static json_object *jhex(unsigned v, int digits)
{
	char b[16];

	snprintf(b, sizeof(b), "%0*x", digits, v);
	return json_object_new_string(b);
}

static int identify_json(const char *device, struct udrv_nvme_ctrlr *c, const struct smart *s,
			 const char *smart_err)
{
	const struct udrv_nvme_ctrlr_info *ci = udrv_nvme_ctrlr_info(c);
	const struct nvme_id_ctrl *id = ci->identify;
	json_object *o = json_object_new_object(), *a, *ns_arr = json_object_new_array();
	char buf[512];
	int ret;

	json_object_object_add(o, "device", json_object_new_string(device));
	json_object_object_add(o, "backend", json_object_new_string(ci->backend));
	json_object_object_add(o, "vid", jhex(ci->vid, 4));
	json_object_object_add(o, "ssvid", jhex(ci->ssvid, 4));
	json_object_object_add(o, "sn", json_object_new_string(ci->sn));
	json_object_object_add(o, "mn", json_object_new_string(ci->mn));
	json_object_object_add(o, "fr", json_object_new_string(ci->fr));
	version_str(ci->version, buf, sizeof(buf));
	json_object_object_add(o, "version", json_object_new_string(buf));
	json_object_object_add(o, "cntlid", json_object_new_int(le16toh(id->cntlid)));
	oui_str(id, buf, sizeof(buf));
	json_object_object_add(o, "ieee_oui", json_object_new_string(buf));
	subnqn_str(id, buf, sizeof(buf));
	json_object_object_add(o, "subnqn", json_object_new_string(buf));
	json_object_object_add(o, "nn", json_object_new_int64(ci->nn));
	json_object_object_add(o, "max_xfer", json_object_new_int64(ci->max_xfer));
	json_object_object_add(o, "io_queues", json_object_new_int64(ci->io_queues));
	json_object_object_add(o, "max_entries", json_object_new_int64(ci->max_entries));
	json_object_object_add(o, "oncs", json_object_new_int(ci->oncs));
	a = json_object_new_array();
	for (unsigned i = 0; i < ONCS_NAMES; i++)
		if (ci->oncs & (1u << i))
			json_object_array_add(a, json_object_new_string(oncs_names[i]));
	json_object_object_add(o, "oncs_commands", a);
	json_object_object_add(o, "sgl", json_object_new_boolean(ci->sgl));
	json_object_object_add(o, "vwc", json_object_new_boolean(ci->vwc));

	for (uint32_t nsid = 1; nsid <= ci->nn; nsid++) {
		struct udrv_nvme_ns_info ns;
		json_object *n;

		if (udrv_nvme_ns_info(c, nsid, &ns) || !ns.active)
			continue;
		n = json_object_new_object();
		json_object_object_add(n, "nsid", json_object_new_int64(nsid));
		json_object_object_add(n, "blocks", json_object_new_uint64(ns.blocks));
		json_object_object_add(n, "block_size", json_object_new_int64(ns.block_size));
		json_object_object_add(n, "capacity",
				       json_object_new_uint64(ns.blocks * ns.block_size));
		if (ns.identify)
			json_object_object_add(
			    n, "nuse",
			    json_object_new_uint64(
				le64toh(((const struct nvme_id_ns *)ns.identify)->nuse)));
		json_object_array_add(ns_arr, n);
	}
	json_object_object_add(o, "namespaces", ns_arr);

	if (smart_err) {
		json_object_object_add(o, "smart", NULL);
		json_object_object_add(o, "smart_error", json_object_new_string(smart_err));
	} else {
		json_object *h = json_object_new_object();

		json_object_object_add(h, "critical_warning",
				       json_object_new_int(s->critical_warning));
		json_object_object_add(h, "temperature_k", json_object_new_int(s->temperature_k));
		json_object_object_add(h, "temperature_c",
				       json_object_new_int(s->temperature_k - 273));
		json_object_object_add(h, "avail_spare", json_object_new_int((int)s->avail_spare));
		json_object_object_add(h, "spare_thresh",
				       json_object_new_int((int)s->spare_thresh));
		json_object_object_add(h, "percent_used",
				       json_object_new_int((int)s->percent_used));
		json_object_object_add(h, "data_units_read",
				       json_object_new_uint64(s->data_units_read));
		json_object_object_add(h, "data_units_written",
				       json_object_new_uint64(s->data_units_written));
		json_object_object_add(h, "host_read_commands",
				       json_object_new_uint64(s->host_reads));
		json_object_object_add(h, "host_write_commands",
				       json_object_new_uint64(s->host_writes));
		json_object_object_add(h, "controller_busy_minutes",
				       json_object_new_uint64(s->busy_minutes));
		json_object_object_add(h, "power_cycles", json_object_new_uint64(s->power_cycles));
		json_object_object_add(h, "power_on_hours",
				       json_object_new_uint64(s->power_on_hours));
		json_object_object_add(h, "unsafe_shutdowns",
				       json_object_new_uint64(s->unsafe_shutdowns));
		json_object_object_add(h, "media_errors", json_object_new_uint64(s->media_errors));
		json_object_object_add(h, "error_log_entries",
				       json_object_new_uint64(s->error_entries));
		json_object_object_add(o, "smart", h);
	}
	printf("%s\n",
	       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	ret = fflush(stdout) ? 1 : 0;
	return ret;
}

static void identify_text(const char *device, struct udrv_nvme_ctrlr *c, const struct smart *s,
			  const char *smart_err)
{
	const struct udrv_nvme_ctrlr_info *ci = udrv_nvme_ctrlr_info(c);
	const struct nvme_id_ctrl *id = ci->identify;
	char buf[512], buf2[64];
	bool header = false;

	printf("%s  %s  (%s)\n", device, ci->mn[0] ? ci->mn : "(no model)", ci->backend);
	printf("  vendor           %04x, subsystem vendor %04x\n", ci->vid, ci->ssvid);
	printf("  serial number    %s\n", ci->sn[0] ? ci->sn : "(none)");
	printf("  model            %s\n", ci->mn[0] ? ci->mn : "(none)");
	printf("  firmware         %s\n", ci->fr[0] ? ci->fr : "(none)");
	version_str(ci->version, buf, sizeof(buf));
	printf("  NVMe version     %s\n", buf);
	oui_str(id, buf, sizeof(buf));
	printf("  controller id    %u, IEEE OUI %s\n", le16toh(id->cntlid), buf);
	subnqn_str(id, buf, sizeof(buf));
	if (buf[0])
		printf("  subsystem NQN    %s\n", buf);
	cli_iec(ci->max_xfer, buf, sizeof(buf));
	printf("  max transfer     %s\n", buf);
	printf("  I/O queue pairs  %u granted, up to %u entries each\n", ci->io_queues,
	       ci->max_entries);
	oncs_str(ci->oncs, buf, sizeof(buf));
	printf("  optional cmds    %s (ONCS 0x%04x)\n", buf, ci->oncs);
	printf("  SGL              %s\n", ci->sgl ? "supported" : "not supported (PRPs only)");
	printf("  write cache      %s\n", ci->vwc ? "volatile write cache present" : "none");
	printf("  namespaces       up to %" PRIu32 "\n", ci->nn);

	for (uint32_t nsid = 1; nsid <= ci->nn; nsid++) {
		struct udrv_nvme_ns_info ns;

		if (udrv_nvme_ns_info(c, nsid, &ns) || !ns.active)
			continue;
		if (!header) {
			printf("\n  %-6s %14s %11s  %s\n", "NSID", "BLOCKS", "BLOCK SIZE",
			       "CAPACITY");
			header = true;
		}
		nvme_cli_capacity(ns.blocks * ns.block_size, buf, sizeof(buf));
		printf("  %-6" PRIu32 " %14" PRIu64 " %11" PRIu32 "  %s\n", nsid, ns.blocks,
		       ns.block_size, buf);
	}
	if (!header)
		printf("\n  no active namespace\n");

	printf("\n  SMART/health log\n");
	if (smart_err) {
		printf("    unavailable: %s\n", smart_err);
		return;
	}
	printf("    critical warning     %s\n",
	       critical_warning_str(s->critical_warning, buf, sizeof(buf)));
	printf("    temperature          %d C (%d K)\n", s->temperature_k - 273, s->temperature_k);
	printf("    available spare      %u%% (threshold %u%%)\n", s->avail_spare, s->spare_thresh);
	printf("    percentage used      %u%%\n", s->percent_used);
	data_units(s->data_units_read, buf2, sizeof(buf2));
	printf("    data units read      %s\n", buf2);
	data_units(s->data_units_written, buf2, sizeof(buf2));
	printf("    data units written   %s\n", buf2);
	printf("    host read commands   %" PRIu64 "\n", s->host_reads);
	printf("    host write commands  %" PRIu64 "\n", s->host_writes);
	printf("    controller busy      %" PRIu64 " minutes\n", s->busy_minutes);
	printf("    power cycles         %" PRIu64 "\n", s->power_cycles);
	printf("    power-on hours       %" PRIu64 "\n", s->power_on_hours);
	printf("    unsafe shutdowns     %" PRIu64 "\n", s->unsafe_shutdowns);
	printf("    media errors         %" PRIu64 "\n", s->media_errors);
	printf("    error log entries    %" PRIu64 "\n", s->error_entries);
}

static void identify_usage(FILE *f)
{
	fprintf(
	    f, "usage: udrv nvme identify DEVICE [--json]\n"
	       "\n"
	       "Print what the controller says about itself: PCI vendor and subsystem vendor,\n"
	       "serial number, model, firmware, NVMe version, the largest transfer, the I/O queue\n"
	       "pairs granted and their entries, the optional NVM commands (ONCS), SGL support,\n"
	       "the volatile write cache and the transport; then each active namespace (NSID,\n"
	       "blocks, block size, capacity) and the SMART/health log (temperature, data read\n"
	       "and written, commands, power cycles and hours, unsafe shutdowns, error log\n"
	       "entries). Nothing is written to the device.\n"
	       "\n"
	       "  DEVICE   a PCI address (0000:01:00.0) or vfio-user:PATH\n"
	       "  --json   one JSON object instead of text\n");
}

int cmd_nvme_identify(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct udrv_nvme_ctrlr *c;
	struct smart s = {0};
	char smart_msg[256];
	const char *device;
	bool json = false;
	int opt, ret;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":hj", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			identify_usage(stdout);
			return 0;
		default:
			return nvme_cli_opt_error("identify", opt, argv);
		}
	}
	if (optind + 1 != argc)
		return nvme_cli_device_error("identify", argc, argv);
	device = argv[optind];

	ret = nvme_cli_open("identify", device, 0, &c);
	if (ret)
		return ret;
	ret = read_smart(c, &s, smart_msg, sizeof(smart_msg));
	/* A controller without the log still identifies; one that is gone does not. */
	if (ret < 0 && ret != -EIO) {
		fprintf(stderr, "udrv: nvme identify: %s: cannot read the SMART/health log: %s\n",
			device, smart_msg);
		udrv_nvme_close(c);
		return 1;
	}
	if (json) {
		ret = identify_json(device, c, &s, ret < 0 ? smart_msg : NULL);
	} else {
		identify_text(device, c, &s, ret < 0 ? smart_msg : NULL);
		ret = fflush(stdout) ? 1 : 0;
	}
	udrv_nvme_close(c);
	return ret;
}
