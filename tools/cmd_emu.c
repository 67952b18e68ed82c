/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv emu: serve an emulated NVMe controller over vfio-user, and talk to a running one
 * through its control socket (inject faults, read counters).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <udrv/emu_nvme.h>
#include <udrv/log.h>

#include "cli.h"

#define CONTROL_LINE_MAX 4096 /* the control socket's longest request line */
#define REPLY_MAX	 16384
#define REPLY_TIMEOUT_S	 10 /* a wedged emulator must not hang a test script */

static void emu_usage(FILE *f)
{
	fprintf(f,
		"usage: udrv emu nvme --socket PATH [options]  serve an emulated NVMe controller\n"
		"       udrv emu fault --control PATH SPEC     inject faults into a running one\n"
		"       udrv emu stats --control PATH          print a running one's counters\n"
		"\n"
		"`udrv emu nvme --help` describes the controller, its options and the faults.\n");
}

static void nvme_usage(FILE *f)
{
	fprintf(f,
		"usage: udrv emu nvme --socket PATH [--size SIZE | --backing FILE [--size SIZE]]\n"
		"                     [--namespaces N] [--queues N] [--entries N]\n"
		"                     [--block-size 512|4096] [--io-uring] [--faults SPEC]\n"
		"                     [--control PATH] [--serial S]\n"
		"\n"
		"Serve an emulated NVMe 1.4 controller over vfio-user at PATH until Ctrl-C or\n"
		"SIGTERM. Any vfio-user client drives it as a disk: udrv's NVMe driver with\n"
		"device \"vfio-user:PATH\", or SPDK. Faults test the driver's error paths.\n"
		"\n"
		"  --socket PATH      the vfio-user socket to create (a stale one is replaced)\n"
		"  --size SIZE        capacity in bytes, or with K, M, G or T (powers of 1024);\n"
		"                     in RAM the default is 1G, and memory is used only where\n"
		"                     data is written\n"
		"  --backing FILE     keep the data in FILE (a file or block device) instead of\n"
		"                     RAM; with --size the file is created or extended to SIZE,\n"
		"                     without it the file's size is the capacity\n"
		"  --io-uring         do the backing file's I/O through io_uring\n"
		"  --namespaces N     split the capacity into N equal namespaces (1..%d; 1)\n"
		"  --queues N         I/O queue pairs offered (1..%d; 8)\n"
		"  --entries N        entries per queue (2..4096; 1024)\n"
		"  --block-size B     logical block size, 512 or 4096 (512)\n"
		"  --faults SPEC      faults armed from the start (below)\n"
		"  --control PATH     a control socket for `udrv emu fault` and `udrv emu stats`\n"
		"  --serial S         the Identify serial number (up to 20 characters)\n"
		"\n",
		UDRV_EMU_NVME_MAX_NS, UDRV_EMU_NVME_MAX_QUEUES);
	fputs(udrv_emu_nvme_fault_help(), f);
}

static void fault_usage(FILE *f)
{
	fprintf(f, "usage: udrv emu fault --control PATH SPEC\n"
		   "\n"
		   "Arm the faults in SPEC in the controller served by `udrv emu nvme --control\n"
		   "PATH`. Prints nothing on success.\n"
		   "\n");
	fputs(udrv_emu_nvme_fault_help(), f);
}

static void stats_usage(FILE *f)
{
	fprintf(f,
		"usage: udrv emu stats --control PATH\n"
		"\n"
		"Print the counters of the controller served by `udrv emu nvme --control PATH`,\n"
		"one \"name value\" per line: commands fetched, SMART read/write commands and\n"
		"bytes, error completions, bad data pointers and doorbells, faults fired,\n"
		"client connections, controller resets, and CSTS.\n");
}

static bool is_help(const char *a)
{
	return !strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help");
}

/*
 * "--name VALUE" or "--name=VALUE" at argv[*i]. Returns 1 with *val (and *i past it), 0 if
 * argv[*i] is another option, -1 when the value is missing (message printed).
 */
static int opt_value(int argc, char **argv, int *i, const char *cmd, const char *name,
		     const char **val)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n))
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n])
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "udrv emu %s: %s needs a value; see `udrv emu %s --help`\n", cmd,
			name, cmd);
		return -1;
	}
	*val = argv[++*i];
	return 1;
}

/* cli_parse_u64() into an unsigned option. */
static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	uint64_t v;

	if (!cli_parse_u64(s, lo, hi, &v))
		return false;
	*out = (unsigned)v;
	return true;
}

/* "an 8 GiB", "an 11 GiB", "a 1 GiB". */
static const char *article(const char *size)
{
	unsigned long whole = strtoul(size, NULL, 10);

	return size[0] == '8' || whole == 11 || whole == 18 ? "an" : "a";
}

/* Lock-free, so the handler may read it. */
static _Atomic(struct udrv_emu_nvme *) running;

/* Only udrv_emu_nvme_stop() (async-signal-safe) here. SA_RESETHAND makes a second Ctrl-C
 * kill the process if stopping ever hangs. */
static void on_signal(int sig)
{
	int saved = errno;
	struct udrv_emu_nvme *e = atomic_load(&running);

	(void)sig;
	if (e)
		udrv_emu_nvme_stop(e);
	errno = saved;
}

/* Options with a value: NAME VALUE or NAME=VALUE. */
static const char *const nvme_value_opts[] = {
    "--socket",	 "--size",	 "--backing", "--namespaces", "--queues",
    "--entries", "--block-size", "--faults",  "--control",    "--serial",
};

/* Store one option's value. false: bad value (message printed). */
static bool nvme_option(struct udrv_emu_nvme_opts *o, const char *name, const char *v)
{
	if (!strcmp(name, "--socket")) {
		o->socket_path = v;
	} else if (!strcmp(name, "--size")) {
		if (!cli_parse_size(v, &o->size)) {
			fprintf(
			    stderr,
			    "udrv emu nvme: bad --size '%s': give bytes, or a number with K, M, "
			    "G or T, such as 4G\n",
			    v);
			return false;
		}
	} else if (!strcmp(name, "--backing")) {
		o->backing = v;
	} else if (!strcmp(name, "--namespaces")) {
		if (!parse_uint(v, 1, UDRV_EMU_NVME_MAX_NS, &o->namespaces)) {
			fprintf(stderr, "udrv emu nvme: --namespaces must be 1..%d, not '%s'\n",
				UDRV_EMU_NVME_MAX_NS, v);
			return false;
		}
	} else if (!strcmp(name, "--queues")) {
		if (!parse_uint(v, 1, UDRV_EMU_NVME_MAX_QUEUES, &o->queues)) {
			fprintf(stderr, "udrv emu nvme: --queues must be 1..%d, not '%s'\n",
				UDRV_EMU_NVME_MAX_QUEUES, v);
			return false;
		}
	} else if (!strcmp(name, "--entries")) {
		if (!parse_uint(v, 2, 4096, &o->max_entries)) {
			fprintf(stderr, "udrv emu nvme: --entries must be 2..4096, not '%s'\n", v);
			return false;
		}
	} else if (!strcmp(name, "--block-size")) {
		if (!parse_uint(v, 512, 4096, &o->block_size) ||
		    (o->block_size != 512 && o->block_size != 4096)) {
			fprintf(stderr,
				"udrv emu nvme: --block-size must be 512 or 4096, not '%s'\n", v);
			return false;
		}
	} else if (!strcmp(name, "--faults")) {
		o->faults = v;
	} else if (!strcmp(name, "--control")) {
		o->control = v;
	} else {
		o->serial = v;
	}
	return true;
}

static int emu_nvme(int argc, char **argv)
{
	struct udrv_emu_nvme_opts o = {0};
	struct sigaction sa = {0}, old_int, old_term, old_pipe;
	struct udrv_emu_nvme *e;
	char size[32] = "";
	unsigned ns, q;
	struct udrv_emu_nvme_stats st;
	uint64_t cap;
	int ret;

	for (int i = 1; i < argc; i++) {
		const char *name = NULL, *v = NULL;

		if (is_help(argv[i])) {
			nvme_usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--io-uring")) {
			o.io_uring = true;
			continue;
		}
		for (size_t k = 0; k < sizeof(nvme_value_opts) / sizeof(nvme_value_opts[0]); k++) {
			int r = opt_value(argc, argv, &i, "nvme", nvme_value_opts[k], &v);

			if (r < 0)
				return 2;
			if (r) {
				name = nvme_value_opts[k];
				break;
			}
		}
		if (!name) {
			fprintf(stderr,
				"udrv emu nvme: unexpected '%s'; see `udrv emu nvme --help`\n",
				argv[i]);
			return 2;
		}
		if (!nvme_option(&o, name, v))
			return 2;
	}
	if (!o.socket_path || !*o.socket_path) {
		fprintf(stderr, "udrv emu nvme: where should it listen? Give --socket PATH; see "
				"`udrv emu nvme --help`\n");
		return 2;
	}

	e = udrv_emu_nvme_create(&o);
	if (!e) {
		int err = errno;

		cli_fail("emu nvme", -err);
		/* EINVAL is a bad option value the library knows better (--faults, --serial). */
		return err == EINVAL ? 2 : 1;
	}

	cap = udrv_emu_nvme_stats(e, &st) == 0 ? st.capacity : 0;
	if (cap)
		cli_iec(cap, size, sizeof(size));
	ns = o.namespaces ? o.namespaces : 1;
	q = o.queues ? o.queues : 8;
	fprintf(stderr,
		"udrv emu nvme: serving %s%s%s NVMe controller (%u namespace%s, %u I/O queue%s) "
		"on %s%s%s\n",
		size[0] ? article(size) : "an", size[0] ? " " : "", size, ns, ns == 1 ? "" : "s", q,
		q == 1 ? "" : "s", o.socket_path, o.control ? "; control socket " : "",
		o.control ? o.control : "");

	atomic_store(&running, e);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	/* A client that goes away mid-reply must cost an EPIPE, not the process. */
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGPIPE, &sa, &old_pipe);

	ret = udrv_emu_nvme_run(e);

	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	atomic_store(&running, NULL);
	if (ret < 0)
		cli_fail("emu nvme", ret);
	udrv_emu_nvme_destroy(e);
	return ret < 0 ? 1 : 0;
}

/* Connect to the control socket; -1 with a message printed. */
static int control_connect(const char *cmd, const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
	int fd, err;

	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "udrv emu %s: control socket path %s is longer than %zu bytes\n",
			cmd, path, sizeof(a.sun_path) - 1);
		return -1;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "udrv emu %s: cannot create a UNIX socket: %s\n", cmd,
			strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)&a, sizeof(a)) < 0) {
		err = errno;
		close(fd);
		if (err == ENOENT || err == ECONNREFUSED)
			fprintf(stderr,
				"udrv emu %s: nothing serves %s (%s); start `udrv emu nvme "
				"--control %s` first\n",
				cmd, path, strerror(err), path);
		else
			fprintf(stderr, "udrv emu %s: cannot connect to %s: %s\n", cmd, path,
				strerror(err));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/*
 * Send req and read the reply up to and including the line end_line (stats: "end"), or the
 * first line when end_line is NULL. A reply line "error: ..." also ends it. Returns the
 * reply length, or -1 with a message printed.
 */
static int control_request(const char *cmd, const char *path, const char *req, const char *end_line,
			   char *reply, size_t cap)
{
	size_t len = strlen(req), have = 0, line = 0;
	int fd = control_connect(cmd, path);

	if (fd < 0)
		return -1;
	for (size_t off = 0; off < len;) {
		ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "udrv emu %s: cannot send to %s: %s\n", cmd, path,
				n < 0 ? strerror(errno) : "connection closed");
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	for (;;) {
		char *nl;
		ssize_t n;

		/* Complete lines: is this the last one? */
		while ((nl = memchr(reply + line, '\n', have - line))) {
			size_t ll = (size_t)(nl - (reply + line));
			bool last = !end_line || !strncmp(reply + line, "error: ", 7) ||
				    (ll == strlen(end_line) && !memcmp(reply + line, end_line, ll));

			line += ll + 1;
			if (last) {
				close(fd);
				reply[line] = '\0';
				return (int)line;
			}
		}
		if (have + 1 >= cap) {
			fprintf(stderr, "udrv emu %s: the reply from %s is longer than %zu bytes\n",
				cmd, path, cap - 1);
			break;
		}
		n = recv(fd, reply + have, cap - 1 - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "udrv emu %s: no reply from %s: %s\n", cmd, path,
				errno == EAGAIN || errno == EWOULDBLOCK ? "timed out"
									: strerror(errno));
			break;
		}
		if (n == 0) {
			fprintf(stderr,
				"udrv emu %s: %s closed the connection before replying in full\n",
				cmd, path);
			break;
		}
		have += (size_t)n;
	}
	close(fd);
	return -1;
}

/* "--control PATH" and at most want positional arguments. Returns 0, or the exit status. */
static int control_args(int argc, char **argv, const char **control, const char **pos, int want,
			void (*usage)(FILE *))
{
	int npos = 0;

	for (int i = 1; i < argc; i++) {
		const char *v;
		int r;

		if (is_help(argv[i])) {
			usage(stdout);
			return -1;
		}
		r = opt_value(argc, argv, &i, argv[0], "--control", &v);
		if (r < 0)
			return 2;
		if (r) {
			*control = v;
		} else if (argv[i][0] == '-' || npos == want) {
			fprintf(stderr, "udrv emu %s: unexpected '%s'; see `udrv emu %s --help`\n",
				argv[0], argv[i], argv[0]);
			return 2;
		} else {
			pos[npos++] = argv[i];
		}
	}
	if (!*control) {
		fprintf(stderr,
			"udrv emu %s: which controller? Give --control PATH, the path given to "
			"`udrv emu nvme --control`\n",
			argv[0]);
		return 2;
	}
	if (npos < want) {
		fprintf(stderr,
			"udrv emu %s: which faults? Give a SPEC such as drop=1; see `udrv emu %s "
			"--help`\n",
			argv[0], argv[0]);
		return 2;
	}
	return 0;
}

static int emu_fault(int argc, char **argv)
{
	const char *control = NULL, *spec = NULL;
	char req[CONTROL_LINE_MAX + 2], reply[REPLY_MAX];
	int r = control_args(argc, argv, &control, &spec, 1, fault_usage);

	if (r)
		return r < 0 ? 0 : r;
	if (strpbrk(spec, "\r\n") || strlen(spec) > CONTROL_LINE_MAX - strlen("fault ")) {
		fprintf(stderr, "udrv emu fault: SPEC must be one line of at most %zu bytes\n",
			CONTROL_LINE_MAX - strlen("fault "));
		return 2;
	}
	snprintf(req, sizeof(req), "fault %s\n", spec);
	if (control_request("fault", control, req, NULL, reply, sizeof(reply)) < 0)
		return 1;
	if (!strcmp(reply, "ok\n"))
		return 0;
	if (!strncmp(reply, "error: ", 7))
		fprintf(stderr, "udrv emu fault: %s", reply + 7);
	else
		fprintf(stderr, "udrv emu fault: unexpected reply from %s: %s", control, reply);
	return 1;
}

static int emu_stats(int argc, char **argv)
{
	const char *control = NULL;
	char reply[REPLY_MAX];
	int r = control_args(argc, argv, &control, NULL, 0, stats_usage), n;
	char *err;

	if (r)
		return r < 0 ? 0 : r;
	n = control_request("stats", control, "stats\n", "end", reply, sizeof(reply));
	if (n < 0)
		return 1;
	/* Lines before an error (there are none today) still describe the controller. */
	err = !strncmp(reply, "error: ", 7) ? reply : strstr(reply, "\nerror: ");
	if (err) {
		if (*err == '\n')
			err++;
		fwrite(reply, 1, (size_t)(err - reply), stdout);
		fprintf(stderr, "udrv emu stats: %s", err + 7);
		return 1;
	}
	/* Everything but the final "end\n". */
	fwrite(reply, 1, (size_t)n - 4, stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_emu(int argc, char **argv)
{
	if (argc < 2) {
		emu_usage(stderr);
		return 2;
	}
	if (is_help(argv[1])) {
		emu_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "nvme"))
		return emu_nvme(argc - 1, argv + 1);
	if (!strcmp(argv[1], "fault"))
		return emu_fault(argc - 1, argv + 1);
	if (!strcmp(argv[1], "stats"))
		return emu_stats(argc - 1, argv + 1);
	fprintf(stderr,
		"udrv emu: '%s' is not an emu command; run `udrv emu --help` for the list\n",
		argv[1]);
	return 2;
}
