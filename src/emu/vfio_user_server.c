/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user server's life cycle: create and bind the socket, serve one client at a time,
 * clean up after it ("Client Disconnection": unmap its memory, close its fds, keep device
 * state) and wait for the next, until udrv_vfu_stop().
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "emu/unix_listen.h"
#include "vfu_internal.h"

struct udrv_vfu_dev *vfu_dev_alloc(const struct udrv_vfu_opts *opts)
{
	struct udrv_vfu_dev *dev;
	unsigned maps;

	if (!opts)
		return udrv_err_null(EINVAL, "udrv_vfu_create needs options");
	maps = opts->max_dma_maps ? opts->max_dma_maps : VFU_DEFAULT_MAX_DMA_MAPS;
	if (maps > VFIO_USER_DEFAULT_MAX_DMA_MAPS)
		return udrv_err_null(EINVAL, "max_dma_maps %u is above the protocol's 65535",
				     opts->max_dma_maps);
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return udrv_err_null(ENOMEM, "out of memory");
	dev->opts = *opts;
	dev->opts.socket_path = NULL;
	dev->max_dma_maps = maps;
	dev->listen_fd = dev->conn_fd = -1;
	for (unsigned i = 0; i < VFU_NUM_BARS; i++)
		dev->bars[i].memfd = -1;
	pthread_mutex_init(&dev->lock, NULL);
	vfu_transport_init(dev);
	vfu_poller_init(dev);
	vfu_pci_init(dev);
	vfu_session_reset(dev);
	atomic_init(&dev->running, 0);
	dev->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	dev->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	dev->defer_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dev->stop_fd < 0 || dev->kick_fd < 0 || dev->defer_fd < 0 || vfu_irq_init(dev) < 0) {
		int e = dev->stop_fd < 0 || dev->kick_fd < 0 || dev->defer_fd < 0 ? errno : ENOMEM;

		vfu_dev_free(dev);
		return udrv_err_null(e, "cannot set up the device: %s", strerror(e));
	}
	return dev;
}

void vfu_dev_free(struct udrv_vfu_dev *dev)
{
	vfu_dma_fini(dev);
	vfu_irq_fini(dev);
	vfu_bars_fini(dev);
	vfu_transport_fini(dev);
	vfu_poller_fini(dev);
	pthread_mutex_destroy(&dev->lock);
	if (dev->stop_fd >= 0)
		close(dev->stop_fd);
	if (dev->kick_fd >= 0)
		close(dev->kick_fd);
	if (dev->defer_fd >= 0)
		close(dev->defer_fd);
	if (dev->listen_fd >= 0)
		close(dev->listen_fd);
	free(dev->path);
	free(dev);
}

/* A socket file nobody listens on is left by a server that died: replace it. A live one, or
 * anything that is not a socket, is someone else's. */
static int bind_socket(struct udrv_vfu_dev *dev)
{
	int fd = udrv_unix_listen(dev->path, "socket", &dev->sock_ino);

	if (fd < 0)
		return fd;
	dev->listen_fd = fd;
	return 0;
}

struct udrv_vfu_dev *udrv_vfu_create(const struct udrv_vfu_opts *opts)
{
	struct udrv_vfu_dev *dev;
	int rc;

	udrv_err_clear();
	if (!opts || !opts->socket_path || !*opts->socket_path)
		return udrv_err_null(EINVAL, "udrv_vfu_create needs opts with a socket_path");
	dev = vfu_dev_alloc(opts);
	if (!dev)
		return NULL;
	dev->path = strdup(opts->socket_path);
	if (!dev->path) {
		vfu_dev_free(dev);
		return udrv_err_null(ENOMEM, "out of memory");
	}
	dev->opts.socket_path = dev->path;
	rc = bind_socket(dev);
	if (rc < 0) {
		vfu_dev_free(dev);
		errno = -rc;
		return NULL;
	}
	return dev;
}

void udrv_vfu_destroy(struct udrv_vfu_dev *dev)
{
	if (!dev)
		return;
	if (dev->thread_ok) {
		udrv_vfu_stop(dev);
		pthread_join(dev->thread, NULL);
		dev->thread_ok = false;
	}
	udrv_unix_unlisten(dev->listen_fd, dev->path, dev->sock_ino);
	dev->listen_fd = -1;
	vfu_dev_free(dev);
}

void vfu_conn_close(struct udrv_vfu_dev *dev)
{
	struct vfu_deferred *d;

	/* Wake a thread waiting for the client's reply to our DMA request: it fails, so the
	 * poller can park. Only this thread changes conn_fd. */
	if (dev->conn_fd >= 0)
		shutdown(dev->conn_fd, SHUT_RDWR);
	vfu_poller_pause(dev); /* released when the next client connects */
	vfu_dma_unmap_all(dev);
	vfu_irq_disable_all(dev);
	pthread_mutex_lock(&dev->rx_lock);
	pthread_mutex_lock(&dev->tx_lock);
	if (dev->conn_fd >= 0)
		close(dev->conn_fd);
	dev->conn_fd = -1;
	dev->conn_dead = false;
	while ((d = vfu_defer_pop_locked(dev)))
		vfu_defer_free(d);
	pthread_mutex_unlock(&dev->tx_lock);
	pthread_mutex_unlock(&dev->rx_lock);
	vfu_session_reset(dev);
	if (dev->opts.disconnected)
		dev->opts.disconnected(dev->opts.ctx);
}

static void drain(int efd)
{
	uint64_t v;

	while (read(efd, &v, sizeof(v)) == sizeof(v))
		;
}

/* Extra clients are refused at once rather than left hanging in the backlog. */
static bool refuse_extra(struct udrv_vfu_dev *dev)
{
	int c = accept4(dev->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return errno == EAGAIN || errno == EINTR || errno == ECONNABORTED;
	udrv_warn("vfio-user server %s already has a client: refused another", dev->path);
	close(c);
	return true;
}

/* Next message to handle: a deferred one first, then the socket. 1: got one, 0: none yet. */
static int next_msg(struct udrv_vfu_dev *dev, void **buf, size_t *len, int *fds, size_t *nfds)
{
	struct vfu_deferred *d;
	int rc;

	pthread_mutex_lock(&dev->rx_lock);
	d = vfu_defer_pop_locked(dev);
	if (d) {
		pthread_mutex_unlock(&dev->rx_lock);
		*buf = d->buf;
		*len = d->len;
		memcpy(fds, d->fds, d->nfds * sizeof(int));
		*nfds = d->nfds;
		free(d);
		return 1;
	}
	drain(dev->defer_fd);
	rc = vfu_recv_locked(dev, true, buf, len, fds, nfds);
	if (rc == 0) {
		struct vfio_user_header h;

		memcpy(&h, *buf, sizeof(h));
		if ((h.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY) {
			/* Possibly the reply a waiting request is about to look for. */
			vfu_route_locked(dev, *buf, *len, fds, *nfds);
			rc = -EAGAIN;
		}
	}
	pthread_mutex_unlock(&dev->rx_lock);
	return rc == 0 ? 1 : rc == -EAGAIN ? 0 : rc;
}

static void serve(struct udrv_vfu_dev *dev, int conn)
{
	struct vfu_sink sink = vfu_conn_sink(dev);
	int fds[VFIO_USER_MAX_FDS];
	bool watch_listen = true;

	pthread_mutex_lock(&dev->rx_lock);
	pthread_mutex_lock(&dev->tx_lock);
	dev->conn_fd = conn;
	dev->conn_dead = false;
	pthread_mutex_unlock(&dev->tx_lock);
	pthread_mutex_unlock(&dev->rx_lock);
	vfu_session_reset(dev);
	drain(dev->kick_fd); /* meant for an earlier client */
	if (dev->opts.connected)
		dev->opts.connected(dev->opts.ctx);
	vfu_poller_resume(dev);

	for (;;) {
		struct pollfd p[5] = {
		    {.fd = conn, .events = POLLIN},
		    {.fd = dev->stop_fd, .events = POLLIN},
		    {.fd = dev->defer_fd, .events = POLLIN},
		    {.fd = watch_listen ? dev->listen_fd : -1, .events = POLLIN},
		    {.fd = dev->kick_fd, .events = POLLIN},
		};
		void *buf;
		size_t len, nfds;
		int rc = next_msg(dev, &buf, &len, fds, &nfds);

		if (rc < 0)
			break;
		if (rc > 0) {
			rc = vfu_handle_msg(dev, buf, len, fds, nfds, &sink);
			free(buf);
			if (rc < 0)
				break;
			continue;
		}
		rc = poll(p, 5, -1);
		if (rc < 0 && errno != EINTR)
			break;
		if (p[1].revents || p[4].revents)
			break;
		/* A client that closed and at once reconnected has its EOF pending here: handle
		 * the current connection first, so the new one is accepted, not refused. */
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
			continue;
		/* If accept() fails (out of fds), stop watching rather than spin. */
		if (p[3].revents & POLLIN)
			watch_listen = refuse_extra(dev);
	}
	vfu_conn_close(dev);
}

/* Claim the device for serving; set-up functions refuse from now on. */
static int claim(struct udrv_vfu_dev *dev)
{
	int idle = 0;

	if (!dev)
		return udrv_err(EINVAL, "udrv_vfu_run/start needs a device");
	if (dev->listen_fd < 0)
		return udrv_err(EINVAL, "the device has no socket to serve");
	if (!atomic_compare_exchange_strong(&dev->running, &idle, 1))
		return udrv_err(EBUSY, "the vfio-user server %s is already running", dev->path);
	return 0;
}

/* udrv_vfu_run() after claim(). */
static int run_claimed(struct udrv_vfu_dev *dev)
{
	int rc = vfu_poller_start(dev);

	if (rc < 0) {
		atomic_store(&dev->running, 0);
		return rc;
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = dev->listen_fd, .events = POLLIN},
				      {.fd = dev->stop_fd, .events = POLLIN}};
		int c;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = udrv_err(errno, "poll on %s failed: %s", dev->path, strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents & (POLLERR | POLLNVAL)) {
			rc = udrv_err(EIO, "the listening socket %s failed", dev->path);
			break;
		}
		c = accept4(dev->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
				continue;
			rc = udrv_err(errno, "accept on %s failed: %s", dev->path, strerror(errno));
			break;
		}
		serve(dev, c);
	}
	vfu_poller_stop(dev);
	drain(dev->stop_fd);
	atomic_store(&dev->running, 0);
	return rc;
}

int udrv_vfu_run(struct udrv_vfu_dev *dev)
{
	int rc = claim(dev);

	return rc < 0 ? rc : run_claimed(dev);
}

static void *run_thread(void *arg)
{
	run_claimed(arg);
	return NULL;
}

int udrv_vfu_start(struct udrv_vfu_dev *dev)
{
	int rc;

	if (!dev)
		return udrv_err(EINVAL, "udrv_vfu_start needs a device");
	if (dev->thread_ok)
		return udrv_err(EBUSY, "the vfio-user server %s is already running", dev->path);
	rc = claim(dev);
	if (rc < 0)
		return rc;
	rc = pthread_create(&dev->thread, NULL, run_thread, dev);
	if (rc) {
		atomic_store(&dev->running, 0);
		return udrv_err(rc, "cannot start the server thread: %s", strerror(rc));
	}
	dev->thread_ok = true;
	return 0;
}

void udrv_vfu_disconnect(struct udrv_vfu_dev *dev)
{
	uint64_t one = 1;

	if (dev && write(dev->kick_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: saturated, a disconnect is already pending. */
	}
}

void udrv_vfu_stop(struct udrv_vfu_dev *dev)
{
	uint64_t one = 1;

	if (dev && write(dev->stop_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, a stop is already pending. */
	}
}
