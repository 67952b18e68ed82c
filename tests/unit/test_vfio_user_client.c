/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user client backend against a scripted fake server: a thread in this process that
 * listens on a UNIX socket, answers requests with handcrafted replies built from the spec's
 * layouts (src/proto/vfio_user.h), and misbehaves on demand (wrong versions, bad JSON, silence,
 * hang-ups, error replies, DMA requests in the middle of a reply, out-of-bounds DMA).
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <udrv/device.h>
#include <udrv/dma.h>
#include <udrv/log.h>

#include "proto/vfio_user.h"
#include "test.h"

#define HDR	  sizeof(struct vfio_user_header)
#define BAR0_SIZE 16384
#define BAR2_SIZE 65536
#define NVEC	  4

enum { OP_QUIT, OP_DMA_READ, OP_DMA_WRITE };
enum { MODE_NORMAL, MODE_SILENT, MODE_CLOSE };

struct fcmd {
	int op;
	uint64_t addr, count;
	uint8_t data[256];
};

struct fres {
	int err;
	uint8_t data[256];
};

struct fmsg {
	struct vfio_user_header h;
	uint8_t *p;
	size_t plen;
	int fds[16];
	unsigned nfds;
};

struct fake {
	char path[108];
	int lfd, fd, ctl[2], done[2];
	pthread_t thr;
	/* VERSION reply */
	uint16_t major, minor;
	const char *json;
	/* device */
	int bar0_fd;
	uint8_t *bar0, bar1[32], bar2[BAR2_SIZE], config[4096];
	uint32_t max_xfer;
	/* behaviour */
	atomic_int mode, err_next, dma_before_reply;
	unsigned fail_irq_msg; /* refuse the SET_IRQS message with this number */
	uint64_t dma_addr;
	/* what the client did */
	pthread_mutex_t lock;
	unsigned n_info_small, n_info_big, n_reads, max_count, n_resets, n_unmask;
	unsigned n_set_irqs, max_irq_fds, n_maps, n_unmaps;
	int irq_fds[5][NVEC];
	struct {
		uint64_t addr, size, off;
		int fd;
		uint8_t *map;
	} maps[8];
	uint8_t interleaved[64];
	int interleaved_err;
};

static unsigned nfakes;

/* ---- the fake server's socket I/O ---- */

static int frecv(int fd, struct fmsg *m)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = {&m->h, HDR};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cb.buf,
			    .msg_controllen = sizeof(cb.buf)};
	ssize_t n = recvmsg(fd, &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC);

	m->nfds = 0;
	m->p = NULL;
	if (n != (ssize_t)HDR || m->h.msg_size < HDR)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
			memcpy(&m->fds[m->nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	m->plen = m->h.msg_size - HDR;
	m->p = calloc(1, m->plen + 1);
	if (m->plen && recv(fd, m->p, m->plen, MSG_WAITALL) != (ssize_t)m->plen)
		return -1;
	return 0;
}

static void fmsg_free(struct fmsg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	free(m->p);
	m->nfds = 0;
	m->p = NULL;
}

static void fsend(int fd, uint16_t id, uint16_t cmd, uint32_t flags, uint32_t err, const void *p,
		  size_t len, const int *fds, unsigned nfds)
{
	struct vfio_user_header h = {id, cmd, (uint32_t)(HDR + len), flags, err};
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov[2] = {{&h, HDR}, {(void *)p, len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};

	if (nfds) {
		struct cmsghdr *c;
		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	REQUIRE(sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)(HDR + len));
}

static void reply(struct fake *f, const struct fmsg *m, const void *p, size_t len, uint32_t err)
{
	fsend(f->fd, m->h.msg_id, m->h.command,
	      VFIO_USER_F_TYPE_REPLY | (err ? VFIO_USER_F_ERROR : 0), err, err ? NULL : p,
	      err ? 0 : len, NULL, 0);
}

/* Send DMA_READ/DMA_WRITE to the client and wait for its reply. */
static int fake_dma(struct fake *f, uint16_t cmd, uint64_t addr, uint64_t count, uint8_t *data)
{
	struct vfio_user_dma_access a = {addr, count};
	uint8_t req[sizeof(a) + 256];
	struct fmsg m;
	int err = 0;

	memcpy(req, &a, sizeof(a));
	if (cmd == VFIO_USER_DMA_WRITE)
		memcpy(req + sizeof(a), data, count);
	fsend(f->fd, 0x7777, cmd, VFIO_USER_F_TYPE_COMMAND, 0, req,
	      sizeof(a) + (cmd == VFIO_USER_DMA_WRITE ? count : 0), NULL, 0);
	REQUIRE(frecv(f->fd, &m) == 0);
	CHECK_EQ(m.h.msg_id, 0x7777);
	CHECK_EQ(m.h.command, cmd);
	CHECK((m.h.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY);
	if (m.h.flags & VFIO_USER_F_ERROR)
		err = (int)m.h.error_no;
	else if (cmd == VFIO_USER_DMA_READ && m.plen == sizeof(a) + count)
		memcpy(data, m.p + sizeof(a), count);
	else if (cmd == VFIO_USER_DMA_READ || m.plen != sizeof(a))
		err = -1;
	fmsg_free(&m);
	return err;
}

/* ---- the fake device ---- */

static uint8_t *region_mem(struct fake *f, uint32_t index, uint64_t *size)
{
	switch (index) {
	case 0:
		*size = BAR0_SIZE;
		return f->bar0;
	case 1:
		*size = sizeof(f->bar1);
		return f->bar1;
	case 2:
		*size = BAR2_SIZE;
		return f->bar2;
	case 7:
		*size = sizeof(f->config);
		return f->config;
	default:
		*size = 0;
		return NULL;
	}
}

static void on_region_info(struct fake *f, const struct fmsg *m)
{
	struct vfio_user_region_info q, *r;
	struct vfio_region_info_cap_sparse_mmap *cap;
	uint8_t buf[64] = {0};
	uint64_t size;
	uint32_t need;

	memcpy(&q, m->p, sizeof(q));
	if (q.index >= 8) {
		reply(f, m, NULL, 0, EINVAL);
		return;
	}
	r = (void *)buf;
	r->index = q.index;
	r->argsz = sizeof(*r);
	region_mem(f, q.index, &size);
	r->size = size;
	if (size)
		r->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	if (q.index != 0) {
		reply(f, m, buf, sizeof(*r), 0);
		return;
	}
	/* BAR0: registers in the first page by message, the rest mapped (spec, Sparse Regions). */
	need = sizeof(*r) + sizeof(*cap) + sizeof(struct vfio_region_sparse_mmap_area);
	r->argsz = need;
	r->flags |= VFIO_REGION_INFO_FLAG_MMAP;
	pthread_mutex_lock(&f->lock);
	if (q.argsz < need)
		f->n_info_small++;
	else
		f->n_info_big++;
	pthread_mutex_unlock(&f->lock);
	if (q.argsz < need) {
		/* As libvfio-user: no capabilities and no fd until they fit. */
		reply(f, m, buf, sizeof(*r), 0);
		return;
	}
	r->flags |= VFIO_REGION_INFO_FLAG_CAPS;
	r->cap_offset = sizeof(*r);
	cap = (void *)(buf + sizeof(*r));
	cap->header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
	cap->header.version = 1;
	cap->nr_areas = 1;
	cap->areas[0].offset = 4096;
	cap->areas[0].size = BAR0_SIZE - 4096;
	fsend(f->fd, m->h.msg_id, m->h.command, VFIO_USER_F_TYPE_REPLY, 0, buf, need, &f->bar0_fd,
	      1);
}

static void on_irq_info(struct fake *f, const struct fmsg *m)
{
	static const uint32_t counts[5] = {1, 0, NVEC, 1, 1};
	struct vfio_user_irq_info q;

	memcpy(&q, m->p, sizeof(q));
	q.count = q.index < 5 ? counts[q.index] : 0;
	q.flags = VFIO_IRQ_INFO_EVENTFD | (q.index == 0 ? VFIO_IRQ_INFO_AUTOMASKED : 0);
	reply(f, m, &q, sizeof(q), q.index < 5 ? 0 : EINVAL);
}

static void on_set_irqs(struct fake *f, struct fmsg *m)
{
	struct vfio_user_irq_set s;

	memcpy(&s, m->p, sizeof(s));
	pthread_mutex_lock(&f->lock);
	if (++f->n_set_irqs == f->fail_irq_msg) {
		pthread_mutex_unlock(&f->lock);
		reply(f, m, NULL, 0, EINVAL);
		return;
	}
	if (m->nfds > f->max_irq_fds)
		f->max_irq_fds = m->nfds;
	if (s.flags & VFIO_IRQ_SET_ACTION_UNMASK) {
		f->n_unmask++;
	} else if (s.count == 0) {
		for (unsigned i = 0; i < NVEC; i++)
			if (f->irq_fds[s.index][i] >= 0) {
				close(f->irq_fds[s.index][i]);
				f->irq_fds[s.index][i] = -1;
			}
	} else if ((s.flags & VFIO_IRQ_SET_DATA_EVENTFD) && m->nfds == s.count &&
		   s.start + s.count <= NVEC) {
		for (unsigned i = 0; i < s.count; i++) {
			if (f->irq_fds[s.index][s.start + i] >= 0)
				close(f->irq_fds[s.index][s.start + i]);
			f->irq_fds[s.index][s.start + i] = m->fds[i];
			m->fds[i] = -1;
		}
	} else {
		pthread_mutex_unlock(&f->lock);
		reply(f, m, NULL, 0, EINVAL);
		return;
	}
	pthread_mutex_unlock(&f->lock);
	reply(f, m, NULL, 0, 0);
}

static void on_region_rw(struct fake *f, const struct fmsg *m)
{
	struct vfio_user_region_access a;
	uint8_t *mem, *out;
	uint64_t size;
	int err = atomic_exchange(&f->err_next, 0);

	memcpy(&a, m->p, sizeof(a));
	mem = region_mem(f, a.region, &size);
	pthread_mutex_lock(&f->lock);
	f->n_reads++;
	if (a.count > f->max_count)
		f->max_count = a.count;
	pthread_mutex_unlock(&f->lock);
	if (!err && (!mem || a.count > f->max_xfer || a.offset > size || a.count > size - a.offset))
		err = EINVAL;
	if (err) {
		reply(f, m, NULL, 0, (uint32_t)err);
		return;
	}
	if (m->h.command == VFIO_USER_REGION_WRITE) {
		memcpy(mem + a.offset, m->p + sizeof(a), a.count);
		reply(f, m, &a, sizeof(a), 0);
		return;
	}
	if (atomic_exchange(&f->dma_before_reply, 0))
		f->interleaved_err = fake_dma(f, VFIO_USER_DMA_READ, f->dma_addr,
					      sizeof(f->interleaved), f->interleaved);
	out = malloc(sizeof(a) + a.count);
	memcpy(out, &a, sizeof(a));
	memcpy(out + sizeof(a), mem + a.offset, a.count);
	reply(f, m, out, sizeof(a) + a.count, 0);
	free(out);
}

static void on_dma_map(struct fake *f, struct fmsg *m)
{
	struct vfio_user_dma_map d;
	unsigned n;

	memcpy(&d, m->p, sizeof(d));
	pthread_mutex_lock(&f->lock);
	n = f->n_maps++;
	REQUIRE(n < 8 && m->nfds == 1);
	f->maps[n].addr = d.addr;
	f->maps[n].size = d.size;
	f->maps[n].off = d.offset;
	f->maps[n].fd = m->fds[0];
	m->fds[0] = -1;
	f->maps[n].map =
	    mmap(NULL, d.size, PROT_READ | PROT_WRITE, MAP_SHARED, f->maps[n].fd, (off_t)d.offset);
	REQUIRE(f->maps[n].map != MAP_FAILED);
	pthread_mutex_unlock(&f->lock);
	reply(f, m, NULL, 0, 0);
}

static void handle(struct fake *f, struct fmsg *m)
{
	struct vfio_user_device_info di = {sizeof(di),
					   VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET, 9, 5};
	uint8_t ver[256];
	size_t n;

	switch (m->h.command) {
	case VFIO_USER_VERSION:
		memcpy(ver, &f->major, 2);
		memcpy(ver + 2, &f->minor, 2);
		n = f->json ? strlen(f->json) + 1 : 0;
		memcpy(ver + 4, f->json ? f->json : "", n);
		reply(f, m, ver, 4 + n, 0);
		break;
	case VFIO_USER_DEVICE_GET_INFO:
		reply(f, m, &di, sizeof(di), 0);
		break;
	case VFIO_USER_DEVICE_GET_REGION_INFO:
		on_region_info(f, m);
		break;
	case VFIO_USER_DEVICE_GET_IRQ_INFO:
		on_irq_info(f, m);
		break;
	case VFIO_USER_DEVICE_SET_IRQS:
		on_set_irqs(f, m);
		break;
	case VFIO_USER_REGION_READ:
	case VFIO_USER_REGION_WRITE:
		on_region_rw(f, m);
		break;
	case VFIO_USER_DMA_MAP:
		on_dma_map(f, m);
		break;
	case VFIO_USER_DMA_UNMAP:
		pthread_mutex_lock(&f->lock);
		f->n_unmaps++;
		pthread_mutex_unlock(&f->lock);
		reply(f, m, m->p, sizeof(struct vfio_user_dma_unmap), 0);
		break;
	case VFIO_USER_DEVICE_RESET:
		pthread_mutex_lock(&f->lock);
		f->n_resets++;
		pthread_mutex_unlock(&f->lock);
		reply(f, m, NULL, 0, 0);
		break;
	default:
		reply(f, m, NULL, 0, EINVAL);
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		struct pollfd p[2] = {{f->fd >= 0 ? f->fd : f->lfd, POLLIN, 0},
				      {f->ctl[0], POLLIN, 0}};
		struct fcmd c;
		struct fres r = {0};
		struct fmsg m;

		REQUIRE(poll(p, 2, -1) > 0);
		if (p[1].revents) {
			REQUIRE(read(f->ctl[0], &c, sizeof(c)) == sizeof(c));
			if (c.op == OP_QUIT)
				return NULL;
			if (c.op == OP_DMA_WRITE)
				memcpy(r.data, c.data, sizeof(r.data));
			r.err = fake_dma(
			    f, c.op == OP_DMA_READ ? VFIO_USER_DMA_READ : VFIO_USER_DMA_WRITE,
			    c.addr, c.count, r.data);
			REQUIRE(write(f->done[1], &r, sizeof(r)) == sizeof(r));
			continue;
		}
		if (f->fd < 0) {
			f->fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
			continue;
		}
		if (!p[0].revents)
			continue;
		if (frecv(f->fd, &m) < 0 || atomic_load(&f->mode) == MODE_CLOSE) {
			/* The client hung up, or the script says to: the connection ends. */
			fmsg_free(&m);
			close(f->fd);
			f->fd = -2;
			continue;
		}
		if (atomic_load(&f->mode) == MODE_NORMAL)
			handle(f, &m);
		fmsg_free(&m);
	}
}

static void fake_start(struct fake *f, uint16_t major, uint16_t minor, const char *json)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "/tmp/udrv-vu-test-%d-%u.sock", getpid(), nfakes++);
	f->major = major;
	f->minor = minor;
	f->json = json;
	f->max_xfer = 1u << 20;
	f->fd = -1;
	memset(f->irq_fds, -1, sizeof(f->irq_fds));
	pthread_mutex_init(&f->lock, NULL);
	f->bar0_fd = memfd_create("fake-bar0", MFD_CLOEXEC);
	REQUIRE(f->bar0_fd >= 0 && ftruncate(f->bar0_fd, BAR0_SIZE) == 0);
	f->bar0 = mmap(NULL, BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->bar0_fd, 0);
	REQUIRE(f->bar0 != MAP_FAILED);
	/* Config space: ids, an I/O BAR1, and an MSI-X capability at 0x40 (PCI 3.0 6.8.2). */
	memcpy(f->config, "\x36\x1b\x10\x00", 4);
	f->config[0x06] = 0x10;
	f->config[0x14] = 0x01;
	f->config[0x34] = 0x40;
	f->config[0x40] = 0x11;
	f->config[0x42] = NVEC - 1;
	REQUIRE(pipe2(f->ctl, O_CLOEXEC) == 0 && pipe2(f->done, O_CLOEXEC) == 0);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memcpy(sa.sun_path, f->path, strlen(f->path));
	unlink(f->path);
	REQUIRE(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(f->lfd, 1) == 0);
	REQUIRE(pthread_create(&f->thr, NULL, fake_main, f) == 0);
}

static struct fres fake_cmd(struct fake *f, int op, uint64_t addr, uint64_t count, const void *data)
{
	struct fcmd c = {op, addr, count, {0}};
	struct fres r = {0};

	if (data)
		memcpy(c.data, data, count);
	REQUIRE(write(f->ctl[1], &c, sizeof(c)) == sizeof(c));
	if (op != OP_QUIT)
		REQUIRE(read(f->done[0], &r, sizeof(r)) == sizeof(r));
	return r;
}

static void fake_stop(struct fake *f)
{
	fake_cmd(f, OP_QUIT, 0, 0, NULL);
	pthread_join(f->thr, NULL);
	if (f->fd >= 0)
		close(f->fd);
	for (unsigned i = 0; i < 5; i++)
		for (unsigned v = 0; v < NVEC; v++)
			if (f->irq_fds[i][v] >= 0)
				close(f->irq_fds[i][v]);
	for (unsigned i = 0; i < f->n_maps; i++) {
		munmap(f->maps[i].map, f->maps[i].size);
		close(f->maps[i].fd);
	}
	munmap(f->bar0, BAR0_SIZE);
	close(f->bar0_fd);
	close(f->lfd);
	close(f->ctl[0]);
	close(f->ctl[1]);
	close(f->done[0]);
	close(f->done[1]);
	unlink(f->path);
	pthread_mutex_destroy(&f->lock);
}

static int open_fake(struct fake *f, struct udrv_device **dev)
{
	char name[128];

	snprintf(name, sizeof(name), "vfio-user:%s", f->path);
	return udrv_device_open(name, NULL, dev);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	REQUIRE(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- tests ---- */

static void test_no_server(void)
{
	struct udrv_device *dev;

	CHECK_EQ(udrv_device_open("vfio-user:/tmp/udrv-no-such-socket", NULL, &dev), -ENOENT);
	CHECK(strstr(udrv_errmsg(), "no vfio-user server at /tmp/udrv-no-such-socket"));
	CHECK(strstr(udrv_errmsg(), "udrv emu"));
}

static void expect_version(uint16_t major, uint16_t minor, const char *json, int want)
{
	struct udrv_device *dev = NULL;
	struct fake f;
	int rc;

	fake_start(&f, major, minor, json);
	rc = open_fake(&f, &dev);
	if (rc != want)
		fprintf(stderr, "version %u.%u %s: got %d (%s)\n", major, minor, json ? json : "",
			rc, udrv_errmsg());
	CHECK_EQ(rc, want);
	udrv_device_close(dev);
	fake_stop(&f);
}

static void test_version(void)
{
	/* A lower minor and JSON laid out differently, with keys udrv does not know. */
	expect_version(0, 1,
		       " {\n\t\"capabilities\" : { \"max_msg_fds\" : 8 ,\"migration\":{\"pgsize\":"
		       "4096}, \"max_data_xfer_size\": 1048576, \"x\": [1,2]}, \"y\": null }\n",
		       0);
	expect_version(0, 2, NULL, 0);
	expect_version(1, 0, "{}", -EPROTONOSUPPORT);
	expect_version(0, 3, "{}", -EPROTONOSUPPORT);
	expect_version(0, 2, "{\"capabilities\": {\"max_msg_fds\": 8,", -EPROTO);
	expect_version(0, 2, "{\"capabilities\": 7}", -EPROTO);
	expect_version(0, 2, "{} {}", -EPROTO);
	expect_version(0, 2, "{\"capabilities\": {\"max_data_xfer_size\": 0}}", -EPROTO);
	expect_version(0, 2, "{\"capabilities\": {\"max_msg_fds\": -1}}", -EPROTO);
	expect_version(0, 2, "{\"capabilities\": {\"max_dma_maps\": \"many\"}}", -EPROTO);
	expect_version(0, 2, "{\"capabilities\": {\"pgsizes\": 4096.5}}", -EPROTO);
	expect_version(0, 2, "{\"capabilities\": {\"twin_socket\": {\"supported\": true}}}",
		       -EPROTO);
}

static void test_regions_and_config(void)
{
	struct udrv_region_info ri;
	struct udrv_device *dev;
	volatile uint8_t *bar0;
	uint32_t id = 0;
	uint8_t b[8];
	struct fake f;

	fake_start(&f, 0, 2, "{\"capabilities\":{\"max_msg_fds\":8}}");
	REQUIRE(open_fake(&f, &dev) == 0);
	CHECK_STR(udrv_device_backend(dev), "vfio-user");
	CHECK_EQ(f.n_resets, 1); /* udrv_device_open resets by default */
	/* Region info: asked small, then with the size the reply gave (spec, Message sizes). */
	CHECK(f.n_info_small >= 1 && f.n_info_big >= 1);
	REQUIRE(udrv_device_region_info(dev, 0, &ri) == 0);
	CHECK_EQ(ri.size, BAR0_SIZE);
	CHECK(ri.flags & UDRV_REGION_F_MMAP);
	CHECK_EQ(ri.nr_areas, 1);
	CHECK_EQ(ri.areas[0].offset, 4096);
	CHECK_EQ(ri.areas[0].size, BAR0_SIZE - 4096);
	REQUIRE(udrv_device_region_info(dev, 1, &ri) == 0);
	CHECK(ri.flags & UDRV_REGION_F_IO);
	REQUIRE(udrv_device_region_info(dev, 4, &ri) == 0);
	CHECK_EQ(ri.size, 0);
	REQUIRE(udrv_device_region_info(dev, 8, &ri) == 0); /* the server refused: absent */
	CHECK_EQ(ri.size, 0);

	/* The mappable part of BAR0 is the server's memory. */
	bar0 = udrv_device_region_map(dev, 0);
	REQUIRE(bar0);
	udrv_mmio_write32(bar0 + 4096, 0xfeedf00d);
	CHECK_EQ(*(uint32_t *)(f.bar0 + 4096), 0xfeedf00d);
	f.bar0[8192] = 0x42;
	CHECK_EQ(bar0[8192], 0x42);
	/* The trapped first page goes through REGION_READ/WRITE. */
	f.bar0[16] = 0x99;
	CHECK_EQ(udrv_device_region_read(dev, 0, 16, b, 1), 1);
	CHECK_EQ(b[0], 0x99);
	CHECK(udrv_device_region_map(dev, 2) == NULL && errno == ENOTSUP);

	/* Config space is region 7 through REGION_READ/WRITE. */
	CHECK_EQ(udrv_device_config_read32(dev, 0, &id), 0);
	CHECK_EQ(id, 0x00101b36);
	CHECK_EQ(udrv_device_set_bus_master(dev, true), 0);
	CHECK_EQ(f.config[4] & 0x4, 0x4);
	CHECK_EQ(udrv_device_find_capability(dev, 0x11), 0x40);
	CHECK_EQ(udrv_device_reset(dev), 0);
	CHECK_EQ(f.n_resets, 2);
	udrv_device_close(dev);
	fake_stop(&f);
}

static void test_chunking_and_errors(void)
{
	struct udrv_device *dev;
	uint8_t buf[1000];
	struct fake f;

	fake_start(&f, 0, 2, "{\"capabilities\":{\"max_data_xfer_size\":64}}");
	f.max_xfer = 64;
	REQUIRE(open_fake(&f, &dev) == 0);
	for (unsigned i = 0; i < sizeof(buf); i++)
		f.bar2[100 + i] = (uint8_t)(i * 7);
	f.n_reads = f.max_count = 0;
	CHECK_EQ(udrv_device_region_read(dev, 2, 100, buf, sizeof(buf)), (int)sizeof(buf));
	CHECK_EQ(f.max_count, 64);
	CHECK_EQ(f.n_reads, (sizeof(buf) + 63) / 64);
	CHECK(memcmp(buf, f.bar2 + 100, sizeof(buf)) == 0);
	memset(buf, 0x3c, sizeof(buf));
	CHECK_EQ(udrv_device_region_write(dev, 2, 5000, buf, 300), 300);
	CHECK(f.bar2[5000] == 0x3c && f.bar2[5299] == 0x3c && f.bar2[5300] == 0);

	/* An error reply is the server's errno, with a sentence. */
	atomic_store(&f.err_next, EACCES);
	CHECK_EQ(udrv_device_region_write(dev, 2, 0, buf, 4), -EACCES);
	CHECK(strstr(udrv_errmsg(), "region 2"));
	atomic_store(&f.err_next, 0);
	CHECK_EQ(udrv_device_region_read(dev, 2, 0, buf, 4), 4);
	udrv_device_close(dev);
	fake_stop(&f);
}

static void test_irqs(void)
{
	struct udrv_device *dev;
	int efd[NVEC], fds[NVEC], intx;
	uint64_t v = 0;
	uint16_t ctl;
	struct fake f;

	fake_start(&f, 0, 2, "{\"capabilities\":{\"max_msg_fds\":2}}");
	REQUIRE(open_fake(&f, &dev) == 0);
	CHECK_EQ(udrv_device_irq_count(dev, UDRV_IRQ_MSIX), NVEC);
	CHECK_EQ(udrv_device_irq_count(dev, UDRV_IRQ_MSI), 0);
	CHECK_EQ(udrv_device_irq_count(dev, UDRV_IRQ_ERR), 1);
	CHECK_EQ(udrv_device_irq_count(dev, UDRV_IRQ_REQ), 1);
	for (int i = 0; i < NVEC; i++)
		REQUIRE((efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) >= 0);

	/* Four eventfds, at most two per message (the server's max_msg_fds). */
	CHECK_EQ(udrv_device_irq_enable(dev, UDRV_IRQ_MSIX, 0, NVEC, efd), 0);
	CHECK_EQ(f.n_set_irqs, 2);
	CHECK_EQ(f.max_irq_fds, 2);
	CHECK_EQ(udrv_device_config_read16(dev, 0x42, &ctl), 0);
	CHECK(ctl & 0x8000);
	REQUIRE(f.irq_fds[2][3] >= 0);
	CHECK_EQ(write(f.irq_fds[2][3], &(uint64_t){1}, 8), 8);
	CHECK_EQ(read(efd[3], &v, 8), 8);
	CHECK_EQ(v, 1);
	CHECK_EQ(read(efd[0], &v, 8), -1); /* nothing fired there */

	/* A range not starting at 0: fds[k] is for vector start + k (device.h), never read past
	 * the caller's array. Re-point vector 3 to a new eventfd given as element 0. */
	int late = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	REQUIRE(late >= 0);
	CHECK_EQ(udrv_device_irq_enable(dev, UDRV_IRQ_MSIX, 3, 1, &late), 0);
	REQUIRE(f.irq_fds[2][3] >= 0);
	CHECK_EQ(write(f.irq_fds[2][3], &(uint64_t){1}, 8), 8);
	CHECK_EQ(read(late, &v, 8), 8);
	CHECK_EQ(read(efd[3], &v, 8), -1);
	CHECK_EQ(udrv_device_irq_enable(dev, UDRV_IRQ_MSIX, 3, 1, &efd[3]), 0);
	close(late);
	while (read(efd[0], &v, 8) == 8 || read(efd[1], &v, 8) == 8 || read(efd[2], &v, 8) == 8 ||
	       read(efd[3], &v, 8) == 8)
		; /* drop wakeups a rebuild may have sent */

	/* Taking vector 1's eventfd away: the index is rebuilt without it. */
	memcpy(fds, efd, sizeof(fds));
	fds[1] = -1;
	CHECK_EQ(udrv_device_irq_enable(dev, UDRV_IRQ_MSIX, 0, NVEC, fds), 0);
	CHECK(f.irq_fds[2][0] >= 0 && f.irq_fds[2][1] == -1 && f.irq_fds[2][3] >= 0);
	/* The vectors kept through the rebuild get a wakeup, in case they fired meanwhile. */
	CHECK_EQ(read(efd[2], &v, 8), 8);
	CHECK_EQ(read(efd[1], &v, 8), -1);
	REQUIRE((intx = eventfd(0, EFD_CLOEXEC)) >= 0);
	CHECK_EQ(udrv_device_irq_enable(dev, UDRV_IRQ_INTX, 0, 1, &intx), -EBUSY);
	CHECK_EQ(udrv_device_irq_disable(dev, UDRV_IRQ_MSIX), 0);
	CHECK(f.irq_fds[2][0] == -1 && f.irq_fds[2][3] == -1);
	CHECK_EQ(udrv_device_config_read16(dev, 0x42, &ctl), 0);
	CHECK(!(ctl & 0x8000));

	/* The second of two messages refused: the vectors the first set up are turned off. */
	f.fail_irq_msg = f.n_set_irqs + 2;
	CHECK_EQ(udrv_device_irq_enable(dev, UDRV_IRQ_MSIX, 0, NVEC, efd), -EINVAL);
	CHECK(f.irq_fds[2][0] == -1 && f.irq_fds[2][1] == -1);
	CHECK(strstr(udrv_errmsg(), "cannot enable MSI-X vectors 0-3"));

	CHECK_EQ(udrv_device_irq_enable(dev, UDRV_IRQ_INTX, 0, 1, &intx), 0);
	CHECK_EQ(udrv_device_irq_unmask(dev), 0);
	CHECK_EQ(f.n_unmask, 1);
	CHECK_EQ(udrv_device_irq_enable(dev, UDRV_IRQ_REQ, 0, 1, &efd[0]), 0);
	CHECK(f.irq_fds[4][0] >= 0);
	udrv_device_close(dev); /* disables them */
	CHECK(f.irq_fds[0][0] == -1 && f.irq_fds[4][0] == -1);
	for (int i = 0; i < NVEC; i++)
		close(efd[i]);
	close(intx);
	fake_stop(&f);
}

static void test_dma(void)
{
	struct udrv_dma_domain *dom;
	struct udrv_device *dev;
	struct udrv_dma_mem *extra;
	uint8_t *va, *seen;
	uint64_t iova, chunk, size;
	uint16_t id;
	struct fres r;
	struct fake f;

	fake_start(&f, 0, 2, "{\"capabilities\":{\"max_dma_maps\":1}}");
	REQUIRE(open_fake(&f, &dev) == 0);
	dom = udrv_device_domain(dev);
	va = udrv_dma_zalloc(dom, 4096, 0, &iova);
	REQUIRE(va);
	CHECK_EQ(f.n_maps, 1);
	chunk = f.maps[0].addr;
	size = f.maps[0].size;
	CHECK(iova >= chunk && iova + 4096 <= chunk + size);
	/* The server maps the same pages through the fd that came with DMA_MAP. */
	memset(va, 0x5a, 4096);
	seen = f.maps[0].map + (iova - chunk);
	CHECK(seen[0] == 0x5a && seen[4095] == 0x5a);

	/* Served DMA_READ/WRITE, while the client is idle. */
	r = fake_cmd(&f, OP_DMA_READ, iova, 256, NULL);
	CHECK_EQ(r.err, 0);
	CHECK(r.data[0] == 0x5a && r.data[255] == 0x5a);
	r = fake_cmd(&f, OP_DMA_WRITE, iova + 512, 64, (uint8_t[64]){[0 ... 63] = 0xa5});
	CHECK_EQ(r.err, 0);
	CHECK(va[511] == 0x5a && va[512] == 0xa5 && va[575] == 0xa5 && va[576] == 0x5a);
	/* Out of bounds: past the window's end, and where nothing is mapped. */
	CHECK_EQ(fake_cmd(&f, OP_DMA_READ, chunk + size - 16, 64, NULL).err, EFAULT);
	CHECK_EQ(fake_cmd(&f, OP_DMA_WRITE, chunk - 8, 16, (uint8_t[16]){0}).err, EFAULT);
	CHECK_EQ(fake_cmd(&f, OP_DMA_READ, 0x1000, 8, NULL).err, EFAULT);
	CHECK_EQ(fake_cmd(&f, OP_DMA_READ, UINT64_MAX - 4, 8, NULL).err, EFAULT);

	/* A DMA_READ arrives before the reply the client waits for. */
	f.dma_addr = iova;
	atomic_store(&f.dma_before_reply, 1);
	CHECK_EQ(udrv_device_config_read16(dev, 2, &id), 0);
	CHECK_EQ(id, 0x0010);
	CHECK_EQ(f.interleaved_err, 0);
	CHECK(f.interleaved[0] == 0x5a && f.interleaved[63] == 0x5a);

	/* The server keeps one window (max_dma_maps): a second chunk is refused. */
	extra = udrv_dma_mem_alloc(4096, UDRV_DMA_NOHUGE);
	REQUIRE(extra);
	CHECK_EQ(udrv_dma_domain_add(dom, extra), -ENOSPC);
	CHECK(strstr(udrv_errmsg(), "at most 1 DMA mappings"));
	udrv_dma_mem_free(extra);
	udrv_device_close(dev);
	CHECK_EQ(f.n_unmaps, 1);
	fake_stop(&f);
}

static void test_timeout(void)
{
	struct udrv_device *dev;
	double t0, t1;
	uint32_t v;
	struct fake f;
	int fd;

	setenv("UDRV_VFIO_USER_TIMEOUT_MS", "300", 1);
	fake_start(&f, 0, 2, NULL);
	REQUIRE(open_fake(&f, &dev) == 0);
	atomic_store(&f.mode, MODE_SILENT);
	t0 = now();
	CHECK_EQ(udrv_device_config_read32(dev, 0, &v), -ENODEV);
	t1 = now();
	CHECK(t1 - t0 >= 0.25 && t1 - t0 < 3);
	CHECK(strstr(udrv_errmsg(), "went away (no reply within 300 ms)"));
	/* Gone: later calls fail at once. */
	REQUIRE((fd = eventfd(0, EFD_CLOEXEC)) >= 0);
	t0 = now();
	CHECK_EQ(udrv_device_irq_enable(dev, UDRV_IRQ_MSIX, 0, 1, &fd), -ENODEV);
	CHECK_EQ(udrv_device_reset(dev), -ENODEV);
	CHECK(udrv_dma_zalloc(udrv_device_domain(dev), 4096, 0, NULL) == NULL && errno == ENODEV);
	udrv_device_close(dev);
	CHECK(now() - t0 < 0.25);
	close(fd);
	fake_stop(&f);
	unsetenv("UDRV_VFIO_USER_TIMEOUT_MS");
}

static void test_server_closes(void)
{
	struct udrv_device *dev;
	uint32_t v;
	struct fake f;

	fake_start(&f, 0, 2, NULL);
	REQUIRE(open_fake(&f, &dev) == 0);
	REQUIRE(udrv_dma_zalloc(udrv_device_domain(dev), 4096, 0, NULL));
	atomic_store(&f.mode, MODE_CLOSE);
	CHECK_EQ(udrv_device_config_read32(dev, 0, &v), -ENODEV);
	CHECK(strstr(udrv_errmsg(), "went away"));
	CHECK_EQ(udrv_device_region_write(dev, 2, 0, &v, 4), -ENODEV);
	CHECK_EQ(udrv_device_reset(dev), -ENODEV);
	udrv_device_close(dev);
	fake_stop(&f);
}

static void *reader(void *arg)
{
	struct udrv_device *dev = arg;
	uintptr_t bad = 0;

	for (int i = 0; i < 200; i++) {
		uint32_t id = 0;

		if (udrv_device_config_read32(dev, 0, &id) < 0 || id != 0x00101b36)
			bad++;
	}
	return (void *)bad;
}

static void test_threads(void)
{
	struct udrv_device *dev;
	pthread_t t[4];
	struct fake f;

	fake_start(&f, 0, 2, NULL);
	REQUIRE(open_fake(&f, &dev) == 0);
	/* device.c fills its region cache on first use without a lock: fill it first. */
	REQUIRE(reader(dev) == NULL);
	for (int i = 0; i < 4; i++)
		REQUIRE(pthread_create(&t[i], NULL, reader, dev) == 0);
	for (int i = 0; i < 4; i++) {
		void *bad;

		pthread_join(t[i], &bad);
		CHECK_EQ((uintptr_t)bad, 0);
	}
	udrv_device_close(dev);
	fake_stop(&f);
}

int main(void)
{
	int fds = count_fds();

	/* The refusals under test log warnings; keep the output to the results. */
	udrv_log_set_level(UDRV_LOG_ERR);
	RUN(test_no_server);
	RUN(test_version);
	RUN(test_regions_and_config);
	RUN(test_chunking_and_errors);
	RUN(test_irqs);
	RUN(test_dma);
	RUN(test_timeout);
	RUN(test_server_closes);
	RUN(test_threads);
	CHECK_EQ(count_fds(), fds);
	return test_done();
}
