/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket: faults and statistics while the controller runs, one request per line.
 *   "fault SPEC" -> "ok" | "error: MESSAGE"
 *   "stats"      -> "NAME VALUE" lines, then "end"
 * Anything else gets "error: ...". One client is served at a time, which is all a test
 * script needs, and keeps requests from different clients from interleaving.
 *
 * Every wait polls the stop eventfd too, so nvemu_control_stop() returns promptly whatever
 * the client does; a client that sends nothing (or reads nothing) for IO_TIMEOUT_MS is
 * disconnected so that the next one can be served.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "emu/nvme/nvme_emu.h"
#include "emu/unix_listen.h"

#define LINE_MAX_BYTES 4096 /* a request line, without its newline */
#define IO_TIMEOUT_MS  5000
#define BACKOFF_MS     100 /* after accept() fails, e.g. for lack of fds or memory */

struct nvemu_control {
	struct udrv_emu_nvme *e;
	char *path;
	ino_t ino; /* our socket file: unlink only that */
	int listen_fd, stop_fd;
	pthread_t thread;
};

/* Wait for events on fd, or stop. Returns 1 ready, 0 stop requested or timed out (either
 * way the connection is over), -1 error. */
static int wait_fd(struct nvemu_control *c, int fd, short events, int timeout_ms)
{
	struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = c->stop_fd, .events = POLLIN}};

	for (;;) {
		int n = poll(p, 2, timeout_ms);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0 || p[1].revents)
			return 0;
		return 1;
	}
}

/* Send all of buf. false: the client is gone, stalled, or we are stopping. */
static bool send_all(struct nvemu_control *c, int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(c, fd, POLLOUT, IO_TIMEOUT_MS) <= 0)
				return false;
			continue;
		}
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* "error: MSG\n", kept to one line whatever MSG holds. */
static bool send_error(struct nvemu_control *c, int fd, const char *msg)
{
	char buf[640];
	int n = snprintf(buf, sizeof(buf), "error: %s", msg);

	if (n < 0)
		return false;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	for (int i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[n++] = '\n';
	return send_all(c, fd, buf, (size_t)n);
}

static bool do_fault(struct nvemu_control *c, int fd, const char *spec)
{
	int rc;

	udrv_err_clear();
	rc = udrv_emu_nvme_inject(c->e, spec);
	if (rc == 0)
		return send_all(c, fd, "ok\n", 3);
	return send_error(c, fd, udrv_errmsg()[0] ? udrv_errmsg() : strerror(-rc));
}

static bool do_stats(struct nvemu_control *c, int fd)
{
	struct udrv_emu_nvme_stats st;
	char buf[1024];
	int rc, n;

	memset(&st, 0, sizeof(st));
	udrv_err_clear();
	rc = udrv_emu_nvme_stats(c->e, &st);
	if (rc < 0)
		return send_error(c, fd, udrv_errmsg()[0] ? udrv_errmsg() : strerror(-rc));
	n = snprintf(buf, sizeof(buf),
		     "admin_cmds %" PRIu64 "\nio_cmds %" PRIu64 "\nread_cmds %" PRIu64
		     "\nwrite_cmds %" PRIu64 "\nbytes_read %" PRIu64 "\nbytes_written %" PRIu64
		     "\nerrors %" PRIu64 "\nbad_dptr %" PRIu64 "\nbad_doorbells %" PRIu64
		     "\nfaults_fired %" PRIu64 "\nconnects %" PRIu64 "\nresets %" PRIu64
		     "\ncsts 0x%" PRIx32 "\ncapacity %" PRIu64 "\nend\n",
		     st.admin_cmds, st.io_cmds, st.read_cmds, st.write_cmds, st.bytes_read,
		     st.bytes_written, st.errors, st.bad_dptr, st.bad_doorbells, st.faults_fired,
		     st.connects, st.resets, st.csts, st.capacity);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return send_error(c, fd, "the statistics do not fit the reply buffer");
	return send_all(c, fd, buf, (size_t)n);
}

/* One request line (newline removed). false: close the connection. */
static bool do_line(struct nvemu_control *c, int fd, char *line, size_t len)
{
	/* Tolerate CRLF and trailing blanks from interactive clients (socat, nc). */
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	line[len] = '\0';
	if (!strcmp(line, "stats"))
		return do_stats(c, fd);
	if (!strncmp(line, "fault", 5) && (line[5] == ' ' || line[5] == '\0')) {
		const char *spec = line + 5;

		while (*spec == ' ')
			spec++;
		return do_fault(c, fd, spec);
	}
	return send_error(c, fd, "unknown request; use 'fault SPEC' or 'stats'");
}

/* Serve one client until it leaves, stalls, breaks the protocol or we stop. */
static void serve(struct nvemu_control *c, int fd)
{
	char buf[LINE_MAX_BYTES + 1]; /* a longest line and its newline */
	size_t have = 0;

	for (;;) {
		char *nl;
		ssize_t n;

		while ((nl = memchr(buf, '\n', have))) {
			size_t len = (size_t)(nl - buf);

			if (!do_line(c, fd, buf, len))
				return;
			have -= len + 1;
			memmove(buf, nl + 1, have);
		}
		if (have == sizeof(buf)) {
			send_error(c, fd,
				   "request line longer than 4096 bytes; closing the "
				   "connection");
			return;
		}
		n = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(c, fd, POLLIN, IO_TIMEOUT_MS) <= 0)
				return;
			continue;
		}
		/* EOF mid-line drops the partial request: a cut-off "fault drop=10" must not
		 * arm drop=1. */
		if (n <= 0)
			return;
		have += (size_t)n;
	}
}

static void *control_thread(void *arg)
{
	struct nvemu_control *c = arg;

	for (;;) {
		int fd, w = wait_fd(c, c->listen_fd, POLLIN, -1);

		if (w < 0) {
			udrv_warn("control socket %s: poll failed: %s; it stops serving", c->path,
				  strerror(errno));
			return NULL;
		}
		if (w == 0)
			return NULL;
		fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			struct pollfd stop = {.fd = c->stop_fd, .events = POLLIN};

			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			    errno == ECONNABORTED)
				continue;
			/* Out of fds or memory: retry later rather than spin on a listening
			 * socket that stays readable. */
			if (poll(&stop, 1, BACKOFF_MS) > 0)
				return NULL;
			continue;
		}
		serve(c, fd);
		close(fd);
	}
}

/* Bind path, replacing a socket file nobody listens on (a controller that died left it). */
static int bind_path(struct nvemu_control *c)
{
	int fd = udrv_unix_listen(c->path, "control socket", &c->ino);

	if (fd < 0)
		return fd;
	c->listen_fd = fd;
	return 0;
}

static void control_free(struct nvemu_control *c)
{
	udrv_unix_unlisten(c->listen_fd, c->path, c->ino);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	free(c->path);
	free(c);
}

struct nvemu_control *nvemu_control_start(const char *path, struct udrv_emu_nvme *e)
{
	struct nvemu_control *c;
	sigset_t all, old;
	int rc;

	if (!path || !*path || !e)
		return udrv_err_null(EINVAL, "nvemu_control_start needs a socket path and a "
					     "controller");
	c = calloc(1, sizeof(*c));
	if (!c)
		return udrv_err_null(ENOMEM, "out of memory");
	c->e = e;
	c->listen_fd = c->stop_fd = -1;
	c->path = strdup(path);
	if (!c->path) {
		control_free(c);
		return udrv_err_null(ENOMEM, "out of memory");
	}
	rc = bind_path(c);
	if (rc < 0) {
		control_free(c);
		errno = -rc;
		return NULL;
	}
	c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->stop_fd < 0) {
		rc = errno;
		control_free(c);
		return udrv_err_null(rc, "cannot create an eventfd: %s", strerror(rc));
	}
	/* Signals go to the application's threads, not this one: a SIGINT handler that
	 * stops the controller must not instead interrupt the control thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&c->thread, NULL, control_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		control_free(c);
		return udrv_err_null(rc, "cannot start the control socket thread: %s",
				     strerror(rc));
	}
	return c;
}

void nvemu_control_stop(struct nvemu_control *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	/* The counter cannot overflow from one write; EAGAIN would mean it is already set. */
	if (write(c->stop_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		udrv_warn("control socket %s: cannot signal its thread: %s", c->path,
			  strerror(errno));
	pthread_join(c->thread, NULL);
	control_free(c);
}
