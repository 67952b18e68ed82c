/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Framing on the connected socket: whole messages with their SCM_RIGHTS fds in, whole
 * messages out, and the server's own requests (DMA_READ/DMA_WRITE) with their replies.
 *
 * Without a twin socket, the client's replies to our requests arrive on the main socket
 * interleaved with its commands ("Socket", "Command Concurrency"). So whoever reads - the
 * serving loop, or a thread waiting for its reply - takes rx_lock for one whole message and
 * routes it: our reply goes to the waiting request, a command read by a waiter is queued
 * for the serving loop, which handles the queue first to keep the client's order.
 *
 * The socket is non-blocking; every wait also watches the stop eventfd, so a client that
 * stalls mid-message or never replies cannot keep udrv_vfu_stop() from working.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "proto/scm.h"
#include "vfu_internal.h"

void vfu_close_fds(int *fds, size_t nfds)
{
	for (size_t i = 0; i < nfds; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

void vfu_transport_init(struct udrv_vfu_dev *dev)
{
	pthread_mutex_init(&dev->rx_lock, NULL);
	pthread_mutex_init(&dev->tx_lock, NULL);
	pthread_mutex_init(&dev->req_lock, NULL);
	dev->defer_head = NULL;
	dev->defer_tail = &dev->defer_head;
}

void vfu_defer_free(struct vfu_deferred *d)
{
	if (!d)
		return;
	vfu_close_fds(d->fds, d->nfds);
	free(d->buf);
	free(d);
}

void vfu_transport_fini(struct udrv_vfu_dev *dev)
{
	struct vfu_deferred *d;

	while ((d = vfu_defer_pop_locked(dev)))
		vfu_defer_free(d);
	free(dev->req.reply);
	dev->req.reply = NULL;
	pthread_mutex_destroy(&dev->rx_lock);
	pthread_mutex_destroy(&dev->tx_lock);
	pthread_mutex_destroy(&dev->req_lock);
}

/*
 * How long the client may take to finish a message it started, to drain what we send, or to
 * answer our DMA request: UDRV_VFIO_USER_TIMEOUT_MS, default 5 s, as the client side uses. An
 * idle client (between messages) is waited for without limit, elsewhere.
 */
static int timeout_ms(void)
{
	const char *env = getenv("UDRV_VFIO_USER_TIMEOUT_MS");

	return env && atoi(env) > 0 ? atoi(env) : 5000;
}

/* Wait for events on fd; -EINTR when a stop is requested, -ETIMEDOUT when the client stalls
 * in the middle of an exchange (the connection is then closed). */
static int wait_fd(struct udrv_vfu_dev *dev, int fd, short events)
{
	struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = dev->stop_fd, .events = POLLIN}};

	for (;;) {
		int rc = poll(p, 2, timeout_ms());

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (rc == 0)
			return udrv_err(
			    ETIMEDOUT,
			    "the vfio-user client stalled for %d ms in the middle of an "
			    "exchange; closing its connection",
			    timeout_ms());
		if (p[1].revents)
			return -EINTR;
		if (p[0].revents)
			return 0;
	}
}

/* One recvmsg(); fds beyond VFIO_USER_MAX_FDS are closed and reported as truncation. */
static ssize_t recv_part(struct udrv_vfu_dev *dev, void *buf, size_t len, int *fds, size_t *nfds,
			 bool *ctrunc)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * VFIO_USER_MAX_FDS)];
		struct cmsghdr align;
	} c;
	struct iovec iov = {buf, len};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.b, .msg_controllen = sizeof(c.b)};
	ssize_t n = recvmsg(dev->conn_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

	if (n < 0)
		return -errno;
	if (mh.msg_flags & MSG_CTRUNC)
		*ctrunc = true; /* the kernel closed the fds that did not fit */
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (*nfds < VFIO_USER_MAX_FDS) {
				fds[(*nfds)++] = fd;
			} else {
				close(fd);
				*ctrunc = true;
			}
		}
	}
	return n;
}

static int recv_full(struct udrv_vfu_dev *dev, uint8_t *buf, size_t len, int *fds, size_t *nfds,
		     bool *ctrunc, bool nonblock)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv_part(dev, buf + got, len - got, fds, nfds, ctrunc);
		int rc;

		if (n == -EAGAIN || n == -EWOULDBLOCK) {
			if (nonblock && got == 0)
				return -EAGAIN;
			rc = wait_fd(dev, dev->conn_fd, POLLIN);
			if (rc < 0)
				return rc;
			continue;
		}
		if (n == -EINTR)
			continue;
		if (n <= 0) {
			udrv_debug("vfio-user client %s",
				   n == 0 ? "disconnected" : "socket failed");
			return -ECONNRESET;
		}
		got += (size_t)n;
	}
	return 0;
}

static int conn_send(void *ctx, const struct iovec *iov, int iovcnt, const int *fds, size_t nfds)
{
	return vfu_send(ctx, iov, iovcnt, fds, nfds);
}

static struct vfu_sink conn_sink(struct udrv_vfu_dev *dev)
{
	return (struct vfu_sink){conn_send, dev};
}

/* The stream can no longer be trusted (a message cut short, a stall mid-exchange): stop using
 * it, and wake the serving thread's poll() so that it closes the connection. */
static void mark_dead(struct udrv_vfu_dev *dev)
{
	dev->conn_dead = true;
	if (dev->conn_fd >= 0)
		shutdown(dev->conn_fd, SHUT_RDWR);
}

int vfu_recv_locked(struct udrv_vfu_dev *dev, bool nonblock, void **bufp, size_t *lenp, int *fds,
		    size_t *nfds)
{
	struct vfio_user_header h;
	struct vfu_sink sink = conn_sink(dev);
	bool ctrunc = false;
	uint8_t *buf = NULL;
	int rc;

	*nfds = 0;
	if (dev->conn_fd < 0 || dev->conn_dead)
		return -ECONNRESET;
	rc = recv_full(dev, (uint8_t *)&h, sizeof(h), fds, nfds, &ctrunc, nonblock);
	if (rc == -EAGAIN)
		return rc;
	if (rc < 0)
		goto fail;
	if (h.msg_size < sizeof(h) || h.msg_size > VFIO_USER_MAX_MSG_SIZE) {
		/* We cannot find the next message: too small to be one, or more than we
		 * buffer. Say why, then close. */
		udrv_err(EPROTO, "message size %u is outside [16, %u]: closing the connection",
			 h.msg_size, VFIO_USER_MAX_MSG_SIZE);
		if ((h.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND)
			vfu_reply_error(&sink, &h, h.msg_size < sizeof(h) ? EINVAL : E2BIG);
		rc = -EPROTO;
		goto fail;
	}
	buf = malloc(h.msg_size);
	if (!buf) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(buf, &h, sizeof(h));
	rc = recv_full(dev, buf + sizeof(h), h.msg_size - sizeof(h), fds, nfds, &ctrunc, false);
	if (rc < 0)
		goto fail;
	if (ctrunc) {
		/* More fds than max_msg_fds: the message is whole but we cannot know what the
		 * lost fds were for. Refuse it and go on. */
		vfu_close_fds(fds, *nfds);
		*nfds = 0;
		free(buf);
		udrv_err(EINVAL, "command %u came with more than %d fds: refused", h.command,
			 VFIO_USER_MAX_FDS);
		if ((h.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND &&
		    vfu_reply_error(&sink, &h, EINVAL) < 0) {
			dev->conn_dead = true;
			return -ECONNRESET;
		}
		return -EAGAIN;
	}
	*bufp = buf;
	*lenp = h.msg_size;
	return 0;
fail:
	vfu_close_fds(fds, *nfds);
	*nfds = 0;
	free(buf);
	if (rc != -EINTR)
		mark_dead(dev);
	return rc;
}

int vfu_send(struct udrv_vfu_dev *dev, const struct iovec *iov_in, int iovcnt, const int *fds,
	     size_t nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * VFIO_USER_MAX_FDS)];
		struct cmsghdr align;
	} c;
	struct iovec iov[8];
	int first = 0, rc = 0;
	bool fds_sent = nfds == 0;

	if (iovcnt > 8 || nfds > VFIO_USER_MAX_FDS)
		return -EINVAL;
	memcpy(iov, iov_in, (size_t)iovcnt * sizeof(iov[0]));
	pthread_mutex_lock(&dev->tx_lock);
	if (dev->conn_fd < 0) {
		pthread_mutex_unlock(&dev->tx_lock);
		return -ENOTCONN;
	}
	while (first < iovcnt) {
		struct msghdr mh = {.msg_iov = iov + first, .msg_iovlen = (size_t)(iovcnt - first)};
		ssize_t n;

		if (!fds_sent)
			scm_put_fds(&mh, c.b, fds, nfds);
		n = sendmsg(dev->conn_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rc = wait_fd(dev, dev->conn_fd, POLLOUT);
			if (rc < 0)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		fds_sent = true; /* they travel with the first byte */
		while (first < iovcnt && (size_t)n >= iov[first].iov_len)
			n -= (ssize_t)iov[first++].iov_len;
		if (first < iovcnt) {
			iov[first].iov_base = (uint8_t *)iov[first].iov_base + n;
			iov[first].iov_len -= (size_t)n;
		}
		while (first < iovcnt && iov[first].iov_len == 0)
			first++;
	}
	if (rc < 0 && rc != -EINTR)
		mark_dead(dev); /* part of a message may be out: the stream is broken */
	pthread_mutex_unlock(&dev->tx_lock);
	return rc;
}

struct vfu_sink vfu_conn_sink(struct udrv_vfu_dev *dev)
{
	return conn_sink(dev);
}

struct vfu_deferred *vfu_defer_pop_locked(struct udrv_vfu_dev *dev)
{
	struct vfu_deferred *d = dev->defer_head;

	if (d) {
		dev->defer_head = d->next;
		if (!dev->defer_head)
			dev->defer_tail = &dev->defer_head;
		dev->defer_n--;
		dev->defer_bytes -= d->len;
	}
	return d;
}

void vfu_route_locked(struct udrv_vfu_dev *dev, void *buf, size_t len, int *fds, size_t nfds)
{
	struct vfio_user_header h;
	struct vfu_deferred *d;
	uint64_t one = 1;

	memcpy(&h, buf, sizeof(h));
	if ((h.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY) {
		vfu_close_fds(fds, nfds); /* replies to DMA_READ/WRITE carry none */
		if (dev->req.active && !dev->req.done && h.msg_id == dev->req.msg_id &&
		    h.command == dev->req.cmd) {
			dev->req.reply = buf;
			dev->req.len = len;
			dev->req.done = true;
			return;
		}
		udrv_debug("vfio-user: dropped a reply (id %u, command %u) nobody waits for",
			   h.msg_id, h.command);
		free(buf);
		return;
	}
	if (dev->defer_n >= VFU_MAX_DEFERRED || dev->defer_bytes + len > VFU_MAX_DEFERRED_BYTES) {
		udrv_err(ENOBUFS,
			 "the client sent over %u commands while we waited for its reply: "
			 "closing the connection",
			 VFU_MAX_DEFERRED);
		vfu_close_fds(fds, nfds);
		free(buf);
		dev->conn_dead = true;
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		/* Cannot keep it: at least answer it, so the client is not left waiting. */
		struct vfu_sink sink = conn_sink(dev);

		vfu_reply_error(&sink, &h, ENOMEM);
		vfu_close_fds(fds, nfds);
		free(buf);
		return;
	}
	d->buf = buf;
	d->len = len;
	memcpy(d->fds, fds, nfds * sizeof(int));
	d->nfds = nfds;
	*dev->defer_tail = d;
	dev->defer_tail = &d->next;
	dev->defer_n++;
	dev->defer_bytes += len;
	if (write(dev->defer_fd, &one, sizeof(one)) < 0)
		udrv_debug("vfio-user: cannot signal a deferred message");
}

int vfu_request(struct udrv_vfu_dev *dev, uint16_t cmd, const struct iovec *payload, int iovcnt,
		void **reply, size_t *reply_len)
{
	struct vfio_user_header h = {.command = cmd, .flags = VFIO_USER_F_TYPE_COMMAND};
	struct iovec iov[4] = {{&h, sizeof(h)}};
	int fds[VFIO_USER_MAX_FDS];
	struct vfio_user_header rh;
	uint8_t *buf = NULL;
	size_t len = 0, nfds;
	int rc = 0;

	*reply = NULL;
	*reply_len = 0;
	if (iovcnt > 3)
		return -EINVAL;
	h.msg_size = sizeof(h);
	for (int i = 0; i < iovcnt; i++) {
		iov[i + 1] = payload[i];
		h.msg_size += (uint32_t)payload[i].iov_len;
	}
	pthread_mutex_lock(&dev->req_lock);
	pthread_mutex_lock(&dev->rx_lock);
	if (dev->conn_fd < 0 || dev->conn_dead) {
		pthread_mutex_unlock(&dev->rx_lock);
		pthread_mutex_unlock(&dev->req_lock);
		return -ENOTCONN;
	}
	h.msg_id = dev->next_id++;
	dev->req.active = true;
	dev->req.done = false;
	dev->req.msg_id = h.msg_id;
	dev->req.cmd = cmd;
	pthread_mutex_unlock(&dev->rx_lock);

	rc = vfu_send(dev, iov, iovcnt + 1, NULL, 0);

	pthread_mutex_lock(&dev->rx_lock);
	while (rc == 0 && !dev->req.done) {
		void *m;
		size_t mlen;

		rc = vfu_recv_locked(dev, false, &m, &mlen, fds, &nfds);
		if (rc == -EAGAIN) {
			rc = 0;
			continue;
		}
		if (rc == 0)
			vfu_route_locked(dev, m, mlen, fds, nfds);
	}
	if (dev->req.done) {
		buf = dev->req.reply;
		len = dev->req.len;
		rc = 0;
	}
	dev->req.active = false;
	dev->req.done = false;
	dev->req.reply = NULL;
	pthread_mutex_unlock(&dev->rx_lock);
	pthread_mutex_unlock(&dev->req_lock);
	if (rc < 0)
		return rc;
	if (!buf)
		return -EIO;
	memcpy(&rh, buf, sizeof(rh));
	if (rh.flags & VFIO_USER_F_ERROR) {
		free(buf);
		return -(int)(rh.error_no > 0 && rh.error_no < 4096 ? rh.error_no : EIO);
	}
	memmove(buf, buf + sizeof(rh), len - sizeof(rh));
	*reply = buf;
	*reply_len = len - sizeof(rh);
	return 0;
}
