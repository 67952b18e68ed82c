/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fault-injection syntax (--faults, udrv_emu_nvme_inject(), the control socket) and the
 * armed faults the device thread consumes.
 *
 * A spec is parsed completely into a local copy before anything is stored, so a typo in the
 * last item never leaves the first ones armed. Counts are set, not added: after
 * "drop=3" the next three I/O commands lose their completion, whatever was armed before,
 * which is what a test script arming faults in a loop expects.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/log_internal.h"
#include "emu/nvme/nvme_emu.h"

#define COUNT_MAX      1000000u
#define STATUS_DEFAULT 0x0006u	     /* SCT 0 (Generic), SC 06h Internal Error */
#define STATUS_MASK    0x7fffu	     /* the CQE status field without the phase tag: DW3 31:17 */
#define STATUS_SCT_SC  0x07ffu	     /* SCT 10:8 and SC 7:0: both 0 means success */
#define LATENCY_MAX_US 3600000000ull /* one hour: longer is a hang, and "hang" says so */
#define ITEM_SHOW      80	     /* characters of an item quoted in a message */

const char nvemu_fault_help[] =
    "Faults: armed by --faults SPEC at start or `udrv emu fault --control PATH SPEC`.\n"
    "SPEC is comma-separated NAME or NAME=VALUE items, applied left to right, all or\n"
    "none: if one item is bad, nothing is armed. A counted fault hits the next N I/O\n"
    "commands (admin commands are never hit); N is 1..1000000, 1 if omitted. Arming a\n"
    "fault again sets its count to N: counts do not add up.\n"
    "\n"
    "  latency=TIME     every I/O completes no sooner than TIME after it was fetched;\n"
    "                   TIME is microseconds, or a number ending in us, ms or s (at\n"
    "                   most 1 hour); 0 turns it off\n"
    "  drop[=N]         the command executes but its completion is never posted\n"
    "  error[=N[:ST]]   the completion carries status ST and the command is not\n"
    "                   executed. ST is the 15-bit status field, in hex (0x...) or\n"
    "                   decimal: DNR<<14 | More<<13 | CRD<<11 | SCT<<8 | SC, with SCT\n"
    "                   and SC not both 0 (success); default 0x0006 (Internal Error)\n"
    "  dup-cid[=N]      the completion is posted twice\n"
    "  bogus-cid[=N]    the completion carries the command identifier with its top\n"
    "                   bit flipped (never submitted by a driver that keeps its\n"
    "                   identifiers below 32768); the command itself is lost\n"
    "  bad-sq-head[=N]  the completion reports an SQ head beyond the queue\n"
    "\n"
    "One-shot faults:\n"
    "  fatal            set CSTS.CFS; no command runs until the host resets the\n"
    "                   controller\n"
    "  hang             stop fetching commands and posting completions until the host\n"
    "                   resets the controller (CC.EN=0)\n"
    "  remove           surprise removal: drop the client's connection now\n"
    "  clear            disarm everything, latency included, and cancel fatal, hang\n"
    "                   and remove if the controller has not acted on them yet\n"
    "\n"
    "Examples:\n"
    "  udrv emu nvme --socket /tmp/nvme.sock --faults latency=500us,error=3:0x4004\n"
    "      every I/O takes 500 us; the next 3 fail with Data Transfer Error (SC 04h)\n"
    "      and Do Not Retry\n"
    "  udrv emu fault --control /tmp/nvme.ctl drop=1\n"
    "      the next I/O command is never completed: the driver's timeout must fire\n"
    "  udrv emu fault --control /tmp/nvme.ctl clear\n";

const char *udrv_emu_nvme_fault_help(void)
{
	return nvemu_fault_help;
}

/* What one spec arms, before it is stored. has_*: an item set that field (a later item
 * wins). cleared: the spec holds "clear", so fields no later item set are stored as zero. */
struct parsed {
	bool cleared;
	bool has_latency, has_drop, has_error, has_dup_cid, has_bogus_cid, has_bad_sq_head;
	uint64_t latency_ns;
	unsigned drop, error, dup_cid, bogus_cid, bad_sq_head;
	uint16_t error_status;
	bool fatal, hang, remove;
};

/* A piece of the spec: not NUL-terminated, since items are parsed in place. */
struct span {
	const char *p;
	size_t n;
};

static bool span_is(struct span s, const char *word)
{
	return s.n == strlen(word) && !memcmp(s.p, word, s.n);
}

/* Decimal digits only: no sign, space or base prefix. false on overflow past max. */
static bool parse_dec(struct span s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s.n)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		unsigned d = (unsigned char)s.p[i] - '0';

		if (d > 9 || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool parse_hex(struct span s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s.n)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		char c = s.p[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		if (v > (max - d) / 16)
			return false;
		v = v * 16 + d;
	}
	*out = v;
	return true;
}

static int bad_item(struct span item, const char *what)
{
	return udrv_err(EINVAL, "bad fault '%.*s': %s; `udrv emu nvme --help` lists the syntax",
			(int)(item.n > ITEM_SHOW ? ITEM_SHOW : item.n), item.p, what);
}

/* latency=TIME: microseconds, or with a us, ms or s suffix. */
static int parse_latency(struct span item, struct span v, uint64_t *ns)
{
	static const struct {
		const char *suffix;
		uint64_t us;
	} units[] = {{"us", 1}, {"ms", 1000}, {"s", 1000000}};
	uint64_t mult = 1, n;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t sl = strlen(units[i].suffix);

		if (v.n > sl && !memcmp(v.p + v.n - sl, units[i].suffix, sl)) {
			v.n -= sl;
			mult = units[i].us;
			break;
		}
	}
	if (!parse_dec(v, LATENCY_MAX_US / mult, &n))
		return bad_item(item, "TIME is microseconds, or a number ending in us, ms or s, "
				      "up to 1 hour");
	*ns = n * mult * 1000;
	return 0;
}

/* N of a counted fault: 1 when absent. */
static int parse_count(struct span item, const struct span *v, unsigned *out)
{
	uint64_t n = 1;

	if (v && !parse_dec(*v, COUNT_MAX, &n))
		return bad_item(item, "N must be a number from 1 to 1000000");
	if (!n)
		return bad_item(item, "N must be a number from 1 to 1000000");
	*out = (unsigned)n;
	return 0;
}

/* ST: hex with 0x, or decimal; a 15-bit status field that is not a success. */
static int parse_status(struct span item, struct span v, uint16_t *out)
{
	uint64_t st;
	bool ok;

	if (v.n > 2 && v.p[0] == '0' && (v.p[1] == 'x' || v.p[1] == 'X'))
		ok = parse_hex((struct span){v.p + 2, v.n - 2}, STATUS_MASK, &st);
	else
		ok = parse_dec(v, STATUS_MASK, &st);
	if (!ok || !(st & STATUS_SCT_SC))
		return bad_item(item, "ST must be a status field up to 0x7fff whose SCT and SC "
				      "are not both 0 (success), such as 0x0006");
	*out = (uint16_t)st;
	return 0;
}

/* error[=N[:ST]] */
static int parse_error(struct span item, const struct span *v, struct parsed *p)
{
	struct span n = {0}, st = {0};
	const char *colon;
	int rc;

	p->error_status = STATUS_DEFAULT;
	if (!v)
		return parse_count(item, NULL, &p->error);
	colon = memchr(v->p, ':', v->n);
	n = (struct span){v->p, colon ? (size_t)(colon - v->p) : v->n};
	rc = parse_count(item, &n, &p->error);
	if (rc < 0 || !colon)
		return rc;
	st = (struct span){colon + 1, v->n - n.n - 1};
	return parse_status(item, st, &p->error_status);
}

static int parse_item(struct span item, struct parsed *p)
{
	const char *eq = memchr(item.p, '=', item.n);
	struct span name = {item.p, eq ? (size_t)(eq - item.p) : item.n};
	struct span val = {eq ? eq + 1 : NULL, eq ? item.n - name.n - 1 : 0};
	const struct span *v = eq ? &val : NULL;
	const struct {
		const char *name;
		bool *has;
		unsigned *count;
	} counted[] = {
	    {"drop", &p->has_drop, &p->drop},
	    {"dup-cid", &p->has_dup_cid, &p->dup_cid},
	    {"bogus-cid", &p->has_bogus_cid, &p->bogus_cid},
	    {"bad-sq-head", &p->has_bad_sq_head, &p->bad_sq_head},
	};

	for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++) {
		if (span_is(name, counted[i].name)) {
			*counted[i].has = true;
			return parse_count(item, v, counted[i].count);
		}
	}
	if (span_is(name, "error")) {
		p->has_error = true;
		return parse_error(item, v, p);
	}
	if (span_is(name, "latency")) {
		if (!v)
			return bad_item(item, "latency needs a value, such as latency=500us");
		p->has_latency = true;
		return parse_latency(item, val, &p->latency_ns);
	}
	if (span_is(name, "fatal") || span_is(name, "hang") || span_is(name, "remove") ||
	    span_is(name, "clear")) {
		if (v)
			return bad_item(item, "this fault takes no value");
		if (span_is(name, "fatal")) {
			p->fatal = true;
		} else if (span_is(name, "hang")) {
			p->hang = true;
		} else if (span_is(name, "remove")) {
			p->remove = true;
		} else {
			memset(p, 0, sizeof(*p));
			p->cleared = true;
		}
		return 0;
	}
	return udrv_err(EINVAL, "unknown fault '%.*s'; `udrv emu nvme --help` lists them",
			(int)(name.n > ITEM_SHOW ? ITEM_SHOW : name.n), name.p);
}

static void store_count(atomic_uint *dst, bool has, unsigned n, bool cleared)
{
	if (has || cleared)
		atomic_store(dst, has ? n : 0);
}

int nvemu_faults_arm(struct nvemu_faults *f, const char *spec)
{
	struct parsed p;
	const char *s;

	if (!f)
		return udrv_err(EINVAL, "nvemu_faults_arm needs the faults to arm");
	if (!spec || !*spec)
		return udrv_err(EINVAL, "empty fault spec: give faults such as drop=1; `udrv emu "
					"nvme --help` lists them");
	memset(&p, 0, sizeof(p));
	for (s = spec;;) {
		const char *end = strchr(s, ',');
		struct span item = {s, end ? (size_t)(end - s) : strlen(s)};
		int rc;

		if (!item.n)
			return udrv_err(EINVAL,
					"empty item in fault spec '%.*s': remove the extra comma",
					ITEM_SHOW, spec);
		rc = parse_item(item, &p);
		if (rc < 0)
			return rc;
		if (!end)
			break;
		s = end + 1;
	}

	/* The status is stored before its count: the device thread reads error_status after
	 * taking a hit of error, and the count's store publishes it. clear leaves the status
	 * alone: a hit taken just before must still complete with an error, never with 0. */
	if (p.has_error)
		atomic_store(&f->error_status, p.error_status);
	if (p.has_latency || p.cleared)
		atomic_store(&f->latency_ns, p.latency_ns);
	store_count(&f->drop, p.has_drop, p.drop, p.cleared);
	store_count(&f->error, p.has_error, p.error, p.cleared);
	store_count(&f->dup_cid, p.has_dup_cid, p.dup_cid, p.cleared);
	store_count(&f->bogus_cid, p.has_bogus_cid, p.bogus_cid, p.cleared);
	store_count(&f->bad_sq_head, p.has_bad_sq_head, p.bad_sq_head, p.cleared);
	/* A one-shot request stays until the device thread takes it; clear withdraws it. */
	if (p.fatal || p.cleared)
		atomic_store(&f->fatal, p.fatal);
	if (p.hang || p.cleared)
		atomic_store(&f->hang, p.hang);
	if (p.remove || p.cleared)
		atomic_store(&f->remove, p.remove);
	return 0;
}

bool nvemu_fault_take(atomic_uint *count)
{
	/* The relaxed first load keeps the common case (nothing armed) free of a locked
	 * instruction: this runs for every I/O command. */
	unsigned v = atomic_load_explicit(count, memory_order_relaxed);

	while (v) {
		if (atomic_compare_exchange_weak_explicit(count, &v, v - 1, memory_order_acquire,
							  memory_order_relaxed))
			return true;
	}
	return false;
}
