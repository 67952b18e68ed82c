/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user client's connection to its server: the UNIX socket, the receive thread, request
 * and reply, and VERSION negotiation. Sections cited are those of QEMU
 * docs/interop/vfio-user.rst ("the spec").
 *
 * Threads. Callers (control path, any thread) send one request at a time (call_lock) and sleep
 * until its reply or the timeout. The receive thread owns the read side of the socket: it hands
 * each reply to the caller waiting for that message id, and serves the server's own commands
 * (DMA_READ/DMA_WRITE) as they come, whether or not a caller waits, because the server may need
 * memory before it can answer anything (spec, "Socket": stalling command processing while
 * waiting for a reply may deadlock). Whole messages are written under send_lock.
 *
 * Failure. EOF, a send error, a timeout or a malformed message make the server gone: the socket
 * is shut down, the waiter wakes, and every later request fails at once with -ENODEV.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "proto/scm.h"
#include "vfio_user_client_internal.h"

#define HDR sizeof(struct vfio_user_header)

/* QEMU's client waits 5 s for a busy server; UDRV_VFIO_USER_TIMEOUT_MS overrides. */
#define DEFAULT_TIMEOUT_MS 5000

void vu_msg_free(struct vu_msg *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	free(m->buf);
	free(m);
}

/* Called with lock held. */
static void set_gone(struct vu_conn *c, const char *why)
{
	if (c->gone)
		return;
	c->gone = true;
	snprintf(c->why, sizeof(c->why), "%s", why);
	/* Wakes the receive thread, and tells the server this session is over. */
	shutdown(c->sock, SHUT_RDWR);
	pthread_cond_broadcast(&c->cond);
	if (!c->closing)
		udrv_warn("the vfio-user server at %s went away (%s); the device is gone", c->path,
			  why);
}

static void gone(struct vu_conn *c, const char *why)
{
	pthread_mutex_lock(&c->lock);
	set_gone(c, why);
	pthread_mutex_unlock(&c->lock);
}

static int gone_err(struct vu_conn *c)
{
	char why[sizeof(c->why)];

	pthread_mutex_lock(&c->lock);
	memcpy(why, c->why, sizeof(why));
	pthread_mutex_unlock(&c->lock);
	udrv_err(ENODEV,
		 "the vfio-user server at %s went away (%s): close the device and open it again "
		 "once the server is back",
		 c->path, why);
	return -ENODEV;
}

int vu_with_path(struct vu_conn *c, int rc)
{
	char msg[512];

	if (rc == -ENODEV)
		return rc;
	snprintf(msg, sizeof(msg), "%s", udrv_errmsg());
	return udrv_err(-rc, "%s: %s", c->path, msg);
}

/* ---- socket I/O ---- */

/* Write one whole message; fds travel with its first byte (SCM_RIGHTS, spec "Socket"). */
static int send_iov(struct vu_conn *c, struct iovec *iov, int iovcnt, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(VU_OUR_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
	char why[96];
	int err = 0;

	if (nfds > VU_OUR_MAX_FDS)
		return udrv_err(EINVAL, "udrv sends at most %d fds in one message", VU_OUR_MAX_FDS);
	if (nfds)
		scm_put_fds(&mh, cb.buf, fds, nfds);
	pthread_mutex_lock(&c->send_lock);
	while (mh.msg_iovlen > 0) {
		/* MSG_NOSIGNAL: a dead server is an error to report, not a SIGPIPE. */
		ssize_t n = sendmsg(c->sock, &mh, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			break;
		}
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (mh.msg_iovlen > 0 && (size_t)n >= mh.msg_iov->iov_len) {
			n -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen > 0) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
			mh.msg_iov->iov_len -= (size_t)n;
		}
	}
	pthread_mutex_unlock(&c->send_lock);
	if (!err)
		return 0;
	/* SO_SNDTIMEO turns a server that stopped reading into EAGAIN. */
	if (err == EAGAIN || err == EWOULDBLOCK)
		snprintf(why, sizeof(why), "it read nothing for %d ms", c->timeout_ms);
	else
		snprintf(why, sizeof(why), "sending failed: %s", strerror(err));
	gone(c, why);
	return -ENODEV;
}

/* Read exactly len bytes into buf, keeping the fds that come with them in m (closing those
 * beyond what a message may carry). */
static int recv_full(struct vu_conn *c, void *buf, size_t len, struct vu_msg *m)
{
	size_t done = 0;

	while (done < len) {
		union {
			char buf[CMSG_SPACE(VU_OUR_MAX_FDS * sizeof(int))];
			struct cmsghdr align;
		} cb;
		struct iovec iov = {(char *)buf + done, len - done};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cb.buf,
				    .msg_controllen = sizeof(cb.buf)};
		ssize_t n = recvmsg(c->sock, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); n > 0 && cm;
		     cm = CMSG_NXTHDR(&mh, cm)) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
				if (m->nfds < VU_OUR_MAX_FDS)
					m->fds[m->nfds++] = fd;
				else
					close(fd);
			}
		}
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int recv_msg(struct vu_conn *c, struct vu_msg **out)
{
	struct vu_msg *m = calloc(1, sizeof(*m));
	struct vfio_user_header h;
	int rc;

	if (!m)
		return -ENOMEM;
	rc = recv_full(c, &h, HDR, m);
	if (rc == 0 && vu_hdr_check(&h, VFIO_USER_MAX_MSG_SIZE) < 0)
		rc = -EPROTO;
	if (rc == 0) {
		m->len = h.msg_size;
		m->buf = malloc(m->len);
		rc = m->buf ? 0 : -ENOMEM;
	}
	if (rc == 0) {
		memcpy(m->buf, &h, HDR);
		rc = recv_full(c, m->buf + HDR, m->len - HDR, m);
	}
	if (rc != 0) {
		vu_msg_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* A command from the server: serve it against the DMA windows and answer. */
static void serve(struct vu_conn *c, struct vu_msg *m)
{
	void *reply = NULL;
	size_t len = 0;
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = vu_serve(&c->dma, m->buf, m->len, &reply, &len);
	pthread_mutex_unlock(&c->lock);
	if (rc == 0 && reply) {
		struct iovec iov = {reply, len};

		send_iov(c, &iov, 1, NULL, 0);
	}
	free(reply);
	vu_msg_free(m);
}

static void *rx_main(void *arg)
{
	struct vu_conn *c = arg;

	for (;;) {
		struct vu_msg *m = NULL;
		int rc = recv_msg(c, &m);
		char why[96];
		const struct vfio_user_header *h;

		if (rc != 0) {
			if (rc == -ECONNRESET)
				snprintf(why, sizeof(why), "it closed the connection");
			else if (rc == -EPROTO)
				snprintf(why, sizeof(why), "it sent a malformed message");
			else
				snprintf(why, sizeof(why), "receiving failed: %s", strerror(-rc));
			gone(c, why);
			return NULL;
		}
		h = (const struct vfio_user_header *)m->buf;
		if ((h->flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND) {
			serve(c, m);
			continue;
		}
		pthread_mutex_lock(&c->lock);
		if (c->waiting && !c->reply && h->msg_id == c->wait_id) {
			c->reply = m;
			m = NULL;
			pthread_cond_broadcast(&c->cond);
		}
		pthread_mutex_unlock(&c->lock);
		if (m)
			udrv_warn("the vfio-user server at %s sent a reply to no pending request; "
				  "dropped",
				  c->path);
		vu_msg_free(m);
	}
}

int vu_call(struct vu_conn *c, uint16_t cmd, const struct iovec *iov, int iovcnt, const int *fds,
	    unsigned nfds, struct vu_msg **rep)
{
	struct vfio_user_header h = {.command = cmd, .flags = VFIO_USER_F_TYPE_COMMAND};
	struct iovec all[4] = {{&h, HDR}};
	struct vu_msg *m;
	struct timespec dl;
	size_t total = HDR;
	int rc;

	*rep = NULL;
	if (iovcnt > 3)
		return udrv_err(EINVAL, "a vfio-user request has at most 3 parts");
	for (int i = 0; i < iovcnt; i++) {
		all[i + 1] = iov[i];
		total += iov[i].iov_len;
	}
	h.msg_size = (uint32_t)total;
	pthread_mutex_lock(&c->call_lock);
	pthread_mutex_lock(&c->lock);
	if (c->gone) {
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_unlock(&c->call_lock);
		return gone_err(c);
	}
	/* Waiting before sending: the reply may arrive before send_iov() returns. */
	h.msg_id = c->next_id++;
	c->wait_id = h.msg_id;
	c->waiting = true;
	pthread_mutex_unlock(&c->lock);

	rc = send_iov(c, all, iovcnt + 1, fds, nfds);
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += c->timeout_ms / 1000;
	dl.tv_nsec += (long)(c->timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	while (rc == 0 && !c->reply && !c->gone) {
		if (pthread_cond_timedwait(&c->cond, &c->lock, &dl) == ETIMEDOUT && !c->reply) {
			char why[96];

			snprintf(why, sizeof(why), "no reply within %d ms", c->timeout_ms);
			set_gone(c, why);
		}
	}
	m = c->reply;
	c->reply = NULL;
	c->waiting = false;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->call_lock);
	if (rc == -EINVAL)
		return rc;
	if (!m)
		return gone_err(c);
	rc = vu_reply_check(m->buf, m->len, h.msg_id, cmd);
	if (rc < 0) {
		vu_msg_free(m);
		return rc;
	}
	*rep = m;
	return 0;
}

int vu_call_simple(struct vu_conn *c, uint16_t cmd, const void *req, size_t len, const int *fds,
		   unsigned nfds)
{
	struct iovec iov = {(void *)req, len};
	struct vu_msg *rep;
	int rc = vu_call(c, cmd, &iov, len ? 1 : 0, fds, nfds, &rep);

	vu_msg_free(rep);
	return rc;
}

/* ---- opening ---- */

static int timeout_from_env(void)
{
	const char *s = getenv("UDRV_VFIO_USER_TIMEOUT_MS");
	char *end;
	long v;

	if (!s || !*s)
		return DEFAULT_TIMEOUT_MS;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 3600000) {
		udrv_warn("UDRV_VFIO_USER_TIMEOUT_MS=%s is not a number of milliseconds "
			  "(1-3600000); using %d",
			  s, DEFAULT_TIMEOUT_MS);
		return DEFAULT_TIMEOUT_MS;
	}
	return (int)v;
}

static int connect_to(struct vu_conn *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = c->timeout_ms / 1000,
			     .tv_usec = (suseconds_t)(c->timeout_ms % 1000) * 1000};

	memcpy(sa.sun_path, c->path, sizeof(sa.sun_path));
	c->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->sock < 0)
		return udrv_err(errno, "cannot create a UNIX socket: %s", strerror(errno));
	/* Bounds sends, and connect(), which for AF_UNIX waits while the server's backlog is
	 * full. */
	if (setsockopt(c->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return udrv_err(errno, "cannot set a send timeout on a UNIX socket: %s",
				strerror(errno));
	if (connect(c->sock, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return 0;
	switch (errno) {
	case ENOENT:
	case ECONNREFUSED:
		return udrv_err(
		    ENOENT, "no vfio-user server at %s: start one (e.g. `udrv emu ...`)", c->path);
	case EACCES:
	case EPERM:
		return udrv_err(EACCES,
				"no permission to connect to %s: run as its owner, or `sudo chown "
				"$(id -un) %s`",
				c->path, c->path);
	case EAGAIN:
		return udrv_err(EBUSY,
				"the vfio-user server at %s accepted no connection within %d ms; "
				"it may be serving another client: close that one first",
				c->path, c->timeout_ms);
	default:
		return udrv_err(errno, "cannot connect to %s: %s", c->path, strerror(errno));
	}
}

/* Spec, "VFIO_USER_VERSION". */
static int negotiate(struct vu_conn *c)
{
	struct vu_msg *rep;
	struct iovec iov;
	void *offer;
	int rc, n = vu_version_build(&offer);

	if (n < 0)
		return n;
	iov = (struct iovec){offer, (size_t)n};
	rc = vu_call(c, VFIO_USER_VERSION, &iov, 1, NULL, 0, &rep);
	free(offer);
	/* "[The server] closes the connection if it cannot support the advertised version."
	 * A server busy with another client (udrv's, libvfio-user's) hangs up the same way,
	 * and that is by far the likelier reason. */
	if (rc == -ENODEV)
		return udrv_err(EBUSY,
				"the vfio-user server at %s hung up at once: it is probably serving "
				"another client (close that one first), or it does not speak "
				"vfio-user %d.x (see its log)",
				c->path, VFIO_USER_MAJOR);
	if (rc < 0)
		return vu_with_path(c, rc);
	/* Twin-socket mode was not offered, so no fd belongs here; vu_msg_free() closes any. */
	rc = vu_version_parse(vu_payload(rep), vu_plen(rep), &c->caps);
	vu_msg_free(rep);
	return rc < 0 ? vu_with_path(c, rc) : 0;
}

int vu_conn_open(struct vu_conn *c, const char *path)
{
	pthread_condattr_t ca;
	int rc;

	memset(c, 0, sizeof(*c));
	c->sock = -1;
	if (strlen(path) >= sizeof(c->path))
		return udrv_err(ENAMETOOLONG,
				"the socket path %s is longer than the %zu bytes a UNIX socket "
				"address holds: use a shorter path",
				path, sizeof(c->path) - 1);
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->timeout_ms = timeout_from_env();
	pthread_mutex_init(&c->call_lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	/* Timeouts must not move with the wall clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = connect_to(c);
	if (rc == 0) {
		rc = pthread_create(&c->rx, NULL, rx_main, c);
		if (rc)
			rc = udrv_err(rc, "cannot start a thread: %s", strerror(rc));
		c->rx_started = rc == 0;
	}
	if (rc == 0)
		rc = negotiate(c);
	if (rc < 0)
		vu_conn_close(c);
	return rc;
}

void vu_conn_close(struct vu_conn *c)
{
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	if (c->sock >= 0)
		shutdown(c->sock, SHUT_RDWR);
	pthread_mutex_unlock(&c->lock);
	if (c->rx_started)
		pthread_join(c->rx, NULL);
	if (c->sock >= 0)
		close(c->sock);
	c->sock = -1;
	vu_msg_free(c->reply);
	c->reply = NULL;
	vu_dma_fini(&c->dma);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->call_lock);
}
