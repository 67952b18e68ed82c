/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user server library against a hand-built client on a real UNIX socket: every
 * command of the spec (QEMU docs/interop/vfio-user.rst), config space as PCI defines it,
 * DMA by mapping and by messages, interrupts and MSI-X masking, reset, disconnect and
 * reconnect, and hostile input - each followed by a check that the connection still works
 * and that no file descriptor leaked (client and server share this process's fd table).
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json.h>

#include <udrv/log.h>
#include <udrv/vfio_user_server.h>

#include "proto/vfio_user.h"
#include "test.h"

#define BAR0_SIZE  0x4000
#define AREA_OFF   0x1000
#define AREA_LEN   0x1000
#define MSIX_NVEC  8
#define PBA_OFF	   0x800
#define MSI_NVEC   4
#define CLI_IOVA   0x200000ull /* the client's memory reached by messages */
#define CLI_MEMLEN 0x4000

static char sock_path[108];

/* --- the device model --- */

static struct model {
	uint8_t bar[6][BAR0_SIZE];
	atomic_int resets, connects, disconnects, cfg_writes;
	struct udrv_vfu_dev *dev;
	int dma_result;
	/* poller */
	atomic_long polls;
	atomic_int poll_tid;
	atomic_int poll_touch;	/* read mapped DMA memory in every poll */
	atomic_int poll_msgdma; /* read client memory by message in every poll */
	atomic_int msgdma_fails;
	uint64_t touch_iova;
	uint8_t *area; /* the server's view of BAR0's mmap area */
} M;

static int model_read(void *ctx, unsigned bar, uint64_t off, void *buf, size_t len)
{
	struct model *m = ctx;

	if (bar == 2 && off == 0xff0)
		return -EIO;
	memcpy(buf, m->bar[bar] + off, len);
	return (int)len;
}

/* BAR2 0x100: iova (8 bytes), 0x108: length (4), 0x10c: 1 = write a pattern there by DMA and
 * read it back; 0x110 holds 0 or the errno. */
static int model_write(void *ctx, unsigned bar, uint64_t off, const void *buf, size_t len)
{
	struct model *m = ctx;

	if (bar == 2 && off == 0xff0)
		return -EIO;
	memcpy(m->bar[bar] + off, buf, len);
	if (bar == 2 && off == 0x10c && len == 4 && m->bar[2][0x10c] == 1) {
		uint64_t iova;
		uint32_t n, res = 0;
		uint8_t *out, *in;

		memcpy(&iova, m->bar[2] + 0x100, 8);
		memcpy(&n, m->bar[2] + 0x108, 4);
		out = malloc(n);
		in = calloc(1, n);
		for (uint32_t i = 0; i < n; i++)
			out[i] = (uint8_t)(i * 7 + 3);
		if (udrv_vfu_dma_write(m->dev, iova, out, n) < 0 ||
		    udrv_vfu_dma_read(m->dev, iova, in, n) < 0)
			res = EFAULT;
		else if (memcmp(in, out, n) != 0)
			res = EIO;
		memcpy(m->bar[2] + 0x110, &res, 4);
		free(out);
		free(in);
	}
	return (int)len;
}

static const struct udrv_vfu_region_ops model_ops = {model_read, model_write};

static int model_reset(void *ctx)
{
	struct model *m = ctx;

	atomic_fetch_add(&m->resets, 1);
	return 0;
}

static void model_connected(void *ctx)
{
	atomic_fetch_add(&((struct model *)ctx)->connects, 1);
}

static void model_disconnected(void *ctx)
{
	atomic_fetch_add(&((struct model *)ctx)->disconnects, 1);
}

static void model_cfg_written(void *ctx, unsigned off, size_t len)
{
	atomic_fetch_add(&((struct model *)ctx)->cfg_writes, 1);
}

static int model_poll(void *ctx)
{
	struct model *m = ctx;
	int work = 0;

	atomic_store(&m->poll_tid, (int)syscall(SYS_gettid));
	atomic_fetch_add(&m->polls, 1);
	if (atomic_load(&m->poll_touch)) {
		/* Touch all of a mapped window: after DMA_UNMAP this would fault, unless the
		 * library paused us first. */
		volatile uint8_t *p = udrv_vfu_dma_ptr(m->dev, m->touch_iova, 0x4000, false);
		unsigned sum = 0;

		if (p)
			for (unsigned i = 0; i < 0x4000; i += 64)
				sum += p[i];
		(void)sum;
		work = 1;
	}
	if (atomic_load(&m->poll_msgdma)) {
		uint8_t tmp[16];

		if (udrv_vfu_dma_read(m->dev, CLI_IOVA, tmp, sizeof(tmp)) < 0)
			atomic_fetch_add(&m->msgdma_fails, 1);
	}
	/* A doorbell in the mmap area, as an NVMe model polls it: echo it back. */
	if (m->area[0] != m->area[1]) {
		m->area[1] = m->area[0];
		work = 1;
	}
	return work;
}

/* --- helpers --- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	REQUIRE(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static void sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&t, NULL);
}

static bool wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 500; i++) {
		if (atomic_load(v) >= want)
			return true;
		sleep_ms(10);
	}
	return false;
}

static struct udrv_vfu_dev *make_dev(unsigned max_maps, int (*poll)(void *))
{
	struct udrv_vfu_opts o = {
	    .socket_path = sock_path,
	    .vendor_id = 0x1b36,
	    .device_id = 0x0010,
	    .subsys_vendor_id = 0x1af4,
	    .subsys_id = 0x1100,
	    .class_code = 0x010802,
	    .revision = 2,
	    .ctx = &M,
	    .reset = model_reset,
	    .connected = model_connected,
	    .disconnected = model_disconnected,
	    .config_written = model_cfg_written,
	    .max_dma_maps = max_maps,
	};
	uint8_t vcap[8] = {0, 0, 8, 0x11, 0x22}, vmask[8] = {0, 0, 0, 0, 0xff};
	struct udrv_vfu_dev *dev;
	void *area;

	memset(&M, 0, sizeof(M));
	dev = udrv_vfu_create(&o);
	if (!dev)
		fprintf(stderr, "create: %s\n", udrv_errmsg());
	REQUIRE(dev);
	M.dev = dev;
	REQUIRE(udrv_vfu_add_bar(dev, 0, BAR0_SIZE, UDRV_VFU_BAR_MEM64, &model_ops, &M) == 0);
	REQUIRE(udrv_vfu_add_bar(dev, 2, 0x1000, UDRV_VFU_BAR_MEM32 | UDRV_VFU_BAR_PREFETCH,
				 &model_ops, &M) == 0);
	REQUIRE(udrv_vfu_add_bar(dev, 4, 0x100, UDRV_VFU_BAR_IO, &model_ops, &M) == 0);
	area = udrv_vfu_bar_mmap_area(dev, 0, AREA_OFF, AREA_LEN);
	REQUIRE(area);
	M.area = area;
	CHECK_EQ(udrv_vfu_add_msix(dev, MSIX_NVEC, 0, 0, 0, PBA_OFF), 0x40);
	CHECK_EQ(udrv_vfu_add_msi(dev, MSI_NVEC), 0x4c);
	CHECK_EQ(udrv_vfu_add_cap(dev, 0x09, vcap, sizeof(vcap), vmask), 0x64);
	if (poll)
		REQUIRE(udrv_vfu_set_poller(dev, poll) == 0);
	REQUIRE(udrv_vfu_start(dev) == 0);
	return dev;
}

/* --- a minimal client --- */

static int cli_connect(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct timeval tv = {5, 0};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	REQUIRE(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
	REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void cli_send_raw(int fd, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 64)];
		struct cmsghdr align;
	} c;
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds) {
		struct cmsghdr *cm;

		memset(&c, 0, sizeof(c));
		mh.msg_control = c.b;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	REQUIRE(sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)len);
}

static uint16_t next_id = 100;

static uint16_t cli_send(int fd, uint16_t cmd, uint32_t flags, const void *p, size_t plen,
			 const int *fds, size_t nfds)
{
	uint8_t *buf = malloc(sizeof(struct vfio_user_header) + plen);
	struct vfio_user_header h = {next_id++, cmd, (uint32_t)(sizeof(h) + plen), flags, 0};

	memcpy(buf, &h, sizeof(h));
	if (plen)
		memcpy(buf + sizeof(h), p, plen);
	cli_send_raw(fd, buf, sizeof(h) + plen, fds, nfds);
	free(buf);
	return h.msg_id;
}

/* Read one whole message; returns its size, 0 on EOF/timeout. */
static size_t cli_read(int fd, uint8_t *buf, size_t cap, int *fds, size_t *nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} c;
	struct vfio_user_header h;
	size_t got = 0;

	*nfds = 0;
	while (got < sizeof(h)) {
		struct iovec iov = {buf + got, sizeof(h) - got};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = c.b,
				    .msg_controllen = sizeof(c.b)};
		ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

		if (n <= 0)
			return 0;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
				memcpy(&fds[(*nfds)++], CMSG_DATA(cm) + i * sizeof(int),
				       sizeof(int));
		got += (size_t)n;
	}
	memcpy(&h, buf, sizeof(h));
	REQUIRE(h.msg_size >= sizeof(h) && h.msg_size <= cap);
	while (got < h.msg_size) {
		ssize_t n = recv(fd, buf + got, h.msg_size - got, 0);

		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	return got;
}

/* The client's memory that the server reaches with DMA_READ/DMA_WRITE. */
static uint8_t cli_mem[CLI_MEMLEN];
static unsigned cli_dma_reqs;
static uint64_t cli_dma_max;
/* How the client answers: 0 properly, 1 with an error, 2 with a wrong count, 3 truncated. */
static int cli_dma_fault;
/* If set, pipeline a DEVICE_GET_INFO before answering the next request; its id: */
static bool cli_dma_inject;
static uint16_t cli_injected_id;

static void serve_dma(int fd, const uint8_t *msg, size_t len)
{
	struct vfio_user_header h;
	struct vfio_user_dma_access a;
	uint8_t *r;

	memcpy(&h, msg, sizeof(h));
	memcpy(&a, msg + sizeof(h), sizeof(a));
	cli_dma_reqs++;
	if (cli_dma_inject) {
		struct vfio_user_device_info di = {.argsz = sizeof(di)};

		cli_dma_inject = false;
		cli_injected_id =
		    cli_send(fd, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), NULL, 0);
	}
	if (a.count > cli_dma_max)
		cli_dma_max = a.count;
	REQUIRE(a.addr >= CLI_IOVA && a.addr + a.count <= CLI_IOVA + CLI_MEMLEN);
	r = malloc(sizeof(h) + sizeof(a) + a.count);
	h.flags = VFIO_USER_F_TYPE_REPLY;
	if (h.command == VFIO_USER_DMA_READ) {
		h.msg_size = (uint32_t)(sizeof(h) + sizeof(a) + a.count);
		memcpy(r + sizeof(h) + sizeof(a), cli_mem + (a.addr - CLI_IOVA), a.count);
	} else {
		CHECK_EQ(len, sizeof(h) + sizeof(a) + a.count);
		memcpy(cli_mem + (a.addr - CLI_IOVA), msg + sizeof(h) + sizeof(a), a.count);
		h.msg_size = sizeof(h) + sizeof(a);
	}
	if (cli_dma_fault == 1) {
		h.flags |= VFIO_USER_F_ERROR;
		h.error_no = EIO;
		h.msg_size = sizeof(h);
	} else if (cli_dma_fault == 2) {
		a.count--;
	} else if (cli_dma_fault == 3) {
		h.msg_size = sizeof(h) + 4;
	}
	memcpy(r, &h, sizeof(h));
	memcpy(r + sizeof(h), &a, sizeof(a));
	cli_send_raw(fd, r, h.msg_size, NULL, 0);
	free(r);
}

struct reply {
	uint32_t err; /* error_no when the error flag is set, else 0 */
	bool error;
	size_t len; /* payload bytes */
	uint8_t p[1 << 16];
	int fds[8];
	size_t nfds;
	uint16_t id;
};

static struct reply R;

/* Wait for the reply to id, serving the server's DMA requests meanwhile. False on EOF. */
static bool cli_reply(int fd, uint16_t id)
{
	static uint8_t buf[(1 << 20) + 4096];

	for (;;) {
		struct vfio_user_header h;
		size_t n = cli_read(fd, buf, sizeof(buf), R.fds, &R.nfds);

		if (!n)
			return false;
		memcpy(&h, buf, sizeof(h));
		if ((h.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND) {
			serve_dma(fd, buf, n);
			continue;
		}
		CHECK_EQ(h.msg_id, id);
		R.id = h.msg_id;
		R.error = h.flags & VFIO_USER_F_ERROR;
		R.err = R.error ? h.error_no : 0;
		R.len = n - sizeof(h);
		memcpy(R.p, buf + sizeof(h), R.len < sizeof(R.p) ? R.len : sizeof(R.p));
		return true;
	}
}

/* Send a command and wait for its reply; returns the error number (0: success). */
static int xfer(int fd, uint16_t cmd, const void *p, size_t plen, const int *fds, size_t nfds)
{
	uint16_t id = cli_send(fd, cmd, 0, p, plen, fds, nfds);

	REQUIRE(cli_reply(fd, id));
	return (int)R.err;
}

static int cli_version(int fd, uint16_t minor, const char *json)
{
	uint8_t buf[512];
	struct vfio_user_version v = {0, minor};
	size_t n = json ? strlen(json) + 1 : 0;

	memcpy(buf, &v, sizeof(v));
	if (json)
		memcpy(buf + sizeof(v), json, n);
	return xfer(fd, VFIO_USER_VERSION, buf, sizeof(v) + n, NULL, 0);
}

static int open_session(void)
{
	int fd = cli_connect();

	REQUIRE(cli_version(fd, 2, "{\"capabilities\":{\"max_msg_fds\":8}}") == 0);
	return fd;
}

static int region_read(int fd, uint32_t region, uint64_t off, void *buf, uint32_t count)
{
	struct vfio_user_region_access ra = {off, region, count};
	int err = xfer(fd, VFIO_USER_REGION_READ, &ra, sizeof(ra), NULL, 0);

	if (!err) {
		CHECK_EQ(R.len, sizeof(ra) + count);
		memcpy(buf, R.p + sizeof(ra), count);
	}
	return err;
}

static int region_write(int fd, uint32_t region, uint64_t off, const void *buf, uint32_t count)
{
	uint8_t msg[256];
	struct vfio_user_region_access ra = {off, region, count};

	REQUIRE(count <= sizeof(msg) - sizeof(ra));
	memcpy(msg, &ra, sizeof(ra));
	memcpy(msg + sizeof(ra), buf, count);
	return xfer(fd, VFIO_USER_REGION_WRITE, msg, sizeof(ra) + count, NULL, 0);
}

static uint32_t cfg_read32(int fd, unsigned off)
{
	uint32_t v = 0;

	CHECK_EQ(region_read(fd, VFIO_PCI_CONFIG_REGION_INDEX, off, &v, 4), 0);
	return v;
}

static void cfg_write32(int fd, unsigned off, uint32_t v)
{
	CHECK_EQ(region_write(fd, VFIO_PCI_CONFIG_REGION_INDEX, off, &v, 4), 0);
}

static int dma_map(int fd, uint64_t iova, uint64_t size, uint32_t flags, uint64_t off, int mfd)
{
	struct vfio_user_dma_map m = {sizeof(m), flags, off, iova, size};

	return xfer(fd, VFIO_USER_DMA_MAP, &m, sizeof(m), &mfd, mfd >= 0 ? 1 : 0);
}

static int dma_unmap(int fd, uint64_t iova, uint64_t size)
{
	struct vfio_user_dma_unmap u = {sizeof(u), 0, iova, size};

	return xfer(fd, VFIO_USER_DMA_UNMAP, &u, sizeof(u), NULL, 0);
}

static int set_irqs(int fd, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
		    const int *fds, size_t nfds)
{
	struct vfio_user_irq_set s = {sizeof(s), flags, index, start, count};

	return xfer(fd, VFIO_USER_DEVICE_SET_IRQS, &s, sizeof(s), fds, nfds);
}

static uint64_t efd_read(int efd)
{
	uint64_t v = 0;

	if (read(efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static int memfd(size_t size)
{
	int fd = memfd_create("cli", MFD_CLOEXEC);

	REQUIRE(fd >= 0 && ftruncate(fd, (off_t)size) == 0);
	return fd;
}

/* Close the client and wait until the server has cleaned up after it. The round trip first
 * orders this thread's earlier peeks at server state before the clean-up (for TSan). */
static void cli_close(int fd)
{
	struct vfio_user_device_info di = {.argsz = sizeof(di)};
	int before = atomic_load(&M.disconnects);

	xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0);
	close(fd);
	CHECK(wait_for(&M.disconnects, before + 1));
}

/* The server closed the connection itself after d0 disconnects had been counted. */
static void cli_closed_by_server(int fd, int d0)
{
	close(fd);
	CHECK(wait_for(&M.disconnects, d0 + 1));
}

/* --- tests --- */

static void test_socket_path(void)
{
	struct udrv_vfu_opts o = {.socket_path = sock_path};
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct udrv_vfu_dev *dev, *dev2;
	int s, base = count_fds();
	FILE *f;

	/* A stale socket file: bound, then its server died without unlinking it. */
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
	REQUIRE(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	close(s);
	dev = udrv_vfu_create(&o);
	CHECK(dev != NULL);

	/* A live one. */
	dev2 = udrv_vfu_create(&o);
	CHECK(dev2 == NULL && errno == EADDRINUSE);
	CHECK(strstr(udrv_errmsg(), "another server is listening") != NULL);
	udrv_vfu_destroy(dev);
	CHECK(access(sock_path, F_OK) != 0); /* destroy removed it */

	/* Not a socket: never removed. */
	f = fopen(sock_path, "w");
	REQUIRE(f);
	fclose(f);
	CHECK(udrv_vfu_create(&o) == NULL && errno == EEXIST);
	CHECK(access(sock_path, F_OK) == 0);
	unlink(sock_path);

	o.socket_path = NULL;
	CHECK(udrv_vfu_create(&o) == NULL && errno == EINVAL);
	CHECK_EQ(count_fds(), base);
}

static void test_setup_errors(void)
{
	struct udrv_vfu_opts o = {.socket_path = sock_path};
	struct udrv_vfu_dev *dev = udrv_vfu_create(&o);

	REQUIRE(dev);
	CHECK_EQ(udrv_vfu_add_bar(dev, 0, 0x3000, 0, NULL, NULL), -EINVAL);
	CHECK(strstr(udrv_errmsg(), "not a power of two") != NULL);
	CHECK_EQ(udrv_vfu_add_bar(dev, 5, 4096, UDRV_VFU_BAR_MEM64, NULL, NULL), -EINVAL);
	CHECK_EQ(udrv_vfu_add_bar(dev, 6, 4096, 0, NULL, NULL), -EINVAL);
	CHECK_EQ(udrv_vfu_add_bar(dev, 0, 8, 0, NULL, NULL), -EINVAL);
	CHECK_EQ(udrv_vfu_add_bar(dev, 0, 512, UDRV_VFU_BAR_IO, NULL, NULL), -EINVAL);
	CHECK_EQ(udrv_vfu_add_bar(dev, 0, 1ull << 32, 0, NULL, NULL), -EINVAL);
	CHECK_EQ(udrv_vfu_add_bar(dev, 0, 4096, UDRV_VFU_BAR_IO | UDRV_VFU_BAR_MEM64, NULL, NULL),
		 -EINVAL);
	CHECK_EQ(udrv_vfu_add_bar(dev, 0, 8192, UDRV_VFU_BAR_MEM64, NULL, NULL), 0);
	CHECK_EQ(udrv_vfu_add_bar(dev, 1, 4096, 0, NULL, NULL), -EEXIST);
	CHECK(udrv_vfu_bar_mmap_area(dev, 0, 100, 4096) == NULL && errno == EINVAL);
	CHECK(udrv_vfu_bar_mmap_area(dev, 0, 4096, 8192) == NULL && errno == EINVAL);
	CHECK(udrv_vfu_bar_mmap_area(dev, 1, 0, 4096) == NULL && errno == EINVAL);
	CHECK(udrv_vfu_bar_mmap_area(dev, 0, 4096, 4096) != NULL);
	CHECK(udrv_vfu_bar_mmap_area(dev, 0, 4096, 4096) == NULL && errno == EEXIST);
	CHECK_EQ(udrv_vfu_add_msix(dev, 4, 0, 4096, 0, 0), -EEXIST); /* table over the area */
	CHECK_EQ(udrv_vfu_add_msix(dev, 4, 0, 4, 0, 512), -EINVAL);  /* unaligned */
	CHECK_EQ(udrv_vfu_add_msix(dev, 4, 0, 0, 0, 32), -EINVAL);   /* PBA in the table */
	CHECK_EQ(udrv_vfu_add_msix(dev, 0, 0, 0, 0, 512), -EINVAL);
	CHECK_EQ(udrv_vfu_add_msix(dev, 4, 2, 0, 0, 512), -EINVAL); /* no BAR 2 */
	CHECK_EQ(udrv_vfu_add_msix(dev, 4, 0, 0, 0, 512), 0x40);
	CHECK_EQ(udrv_vfu_add_msix(dev, 4, 0, 0, 0, 512), -EEXIST);
	CHECK_EQ(udrv_vfu_add_msi(dev, 3), -EINVAL);
	CHECK_EQ(udrv_vfu_add_cap(dev, 9, "ab", 1, NULL), -EINVAL);
	REQUIRE(udrv_vfu_start(dev) == 0);
	CHECK_EQ(udrv_vfu_start(dev), -EBUSY);
	CHECK_EQ(udrv_vfu_add_bar(dev, 2, 4096, 0, NULL, NULL), -EBUSY);
	CHECK_EQ(udrv_vfu_set_poller(dev, NULL), -EBUSY);
	udrv_vfu_destroy(dev);
}

static void test_version(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, NULL);
	struct json_object *root, *caps, *o;
	struct vfio_user_version v;
	int fd = cli_connect(), base;

	/* Before VERSION nothing else is accepted, but the connection stays. */
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0), EINVAL);
	/* Malformed JSON, wrong types, a non-object: errors, and the connection survives. */
	CHECK_EQ(cli_version(fd, 2, "{\"capabilities\":{\"max_msg_fds\":8}"), EINVAL);
	CHECK_EQ(cli_version(fd, 2, "{\"capabilities\":{\"max_msg_fds\":\"8\"}}"), EINVAL);
	CHECK_EQ(cli_version(fd, 2, "{\"capabilities\":{\"max_msg_fds\":-1}}"), EINVAL);
	CHECK_EQ(cli_version(fd, 2, "[1,2]"), EINVAL);
	CHECK_EQ(cli_version(fd, 2, "{\"capabilities\":7}"), EINVAL);
	CHECK_EQ(cli_version(fd, 2, "{} x"), EINVAL);
	CHECK_EQ(xfer(fd, VFIO_USER_VERSION, "\0", 1, NULL, 0), EINVAL); /* shorter than 4 */

	/* A real peer's offer, with whitespace and unknown members. */
	CHECK_EQ(
	    cli_version(fd, 2,
			" { \"capabilities\" : { \"max_msg_fds\" : 32, \"max_data_xfer_size\": "
			"1024, \"pgsizes\": 4096, \"twin_socket\": {\"supported\": true}, "
			"\"future\": [1] } } "),
	    0);
	memcpy(&v, R.p, sizeof(v));
	CHECK_EQ(v.major, 0);
	CHECK_EQ(v.minor, 2);
	CHECK_EQ(R.p[R.len - 1], 0); /* NUL-terminated */
	root = json_tokener_parse((const char *)R.p + sizeof(v));
	REQUIRE(root);
	REQUIRE(json_object_object_get_ex(root, "capabilities", &caps));
	CHECK(json_object_object_get_ex(caps, "max_msg_fds", &o) && json_object_get_int(o) > 0);
	CHECK(json_object_object_get_ex(caps, "max_data_xfer_size", &o) &&
	      json_object_get_int(o) == 1 << 20);
	CHECK(json_object_object_get_ex(caps, "pgsizes", &o) && json_object_get_int(o) == 4096);
	CHECK(json_object_object_get_ex(caps, "max_dma_maps", &o) &&
	      json_object_get_int(o) == 1024);
	CHECK(!json_object_object_get_ex(caps, "twin_socket", &o)); /* not offered */
	json_object_put(root);
	CHECK_EQ(cli_version(fd, 2, NULL), EINVAL); /* only once */
	cli_close(fd);

	/* A higher minor settles on ours; no JSON at all is fine. */
	fd = cli_connect();
	CHECK_EQ(cli_version(fd, 7, NULL), 0);
	memcpy(&v, R.p, sizeof(v));
	CHECK_EQ(v.minor, 2);
	cli_close(fd);

	/* A lower one is kept. */
	fd = cli_connect();
	CHECK_EQ(cli_version(fd, 1, "{}"), 0);
	memcpy(&v, R.p, sizeof(v));
	CHECK_EQ(v.minor, 1);
	cli_close(fd);

	/* Another major: an error, then the server closes. */
	fd = cli_connect();
	{
		struct vfio_user_version v1 = {1, 0};
		uint16_t id = cli_send(fd, VFIO_USER_VERSION, 0, &v1, sizeof(v1), NULL, 0);

		REQUIRE(cli_reply(fd, id));
		CHECK_EQ(R.err, ENOTSUP);
		CHECK(!cli_reply(fd, id)); /* EOF */
	}
	close(fd);
	CHECK(wait_for(&M.disconnects, 4));
	base = count_fds();
	udrv_vfu_destroy(dev);
	CHECK_EQ(count_fds(), base - 5); /* listening socket, BAR0 memfd, three eventfds */
}

static void test_device_and_region_info(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, NULL);
	int fd = open_session();
	struct vfio_user_device_info di = {.argsz = sizeof(di)};
	struct vfio_user_region_info ri = {.argsz = sizeof(ri)}, out;
	struct vfio_region_info_cap_sparse_mmap cap;
	struct vfio_region_sparse_mmap_area area;
	uint8_t *map;
	uint8_t buf[64] = {0};

	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0), 0);
	memcpy(&di, R.p, sizeof(di));
	CHECK_EQ(R.len, 16);
	CHECK_EQ(di.argsz, 16);
	CHECK_EQ(di.flags, VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI);
	CHECK_EQ(di.num_regions, 9);
	CHECK_EQ(di.num_irqs, 5);
	di.argsz = 8;
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0), EINVAL);

	/* BAR0 with a small buffer first, as a real client does: size and flags, no fd. */
	ri.index = 0;
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0), 0);
	memcpy(&out, R.p, sizeof(out));
	CHECK_EQ(R.len, 32);
	CHECK_EQ(R.nfds, 0);
	CHECK_EQ(out.size, BAR0_SIZE);
	CHECK_EQ(out.argsz, 32 + 16 + 16);
	CHECK_EQ(out.flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
				VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS);
	/* Then with room: the sparse mmap capability and one fd. */
	ri.argsz = out.argsz;
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0), 0);
	memcpy(&out, R.p, sizeof(out));
	CHECK_EQ(R.len, 64);
	REQUIRE(R.nfds == 1);
	CHECK_EQ(out.cap_offset, 32);
	memcpy(&cap, R.p + out.cap_offset, sizeof(cap));
	memcpy(&area, R.p + out.cap_offset + sizeof(cap), sizeof(area));
	CHECK_EQ(cap.header.id, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
	CHECK_EQ(cap.header.version, 1);
	CHECK_EQ(cap.header.next, 0);
	CHECK_EQ(cap.nr_areas, 1);
	CHECK_EQ(area.offset, AREA_OFF);
	CHECK_EQ(area.size, AREA_LEN);
	map = mmap(NULL, AREA_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, R.fds[0],
		   (off_t)(out.offset + area.offset));
	REQUIRE(map != MAP_FAILED);
	close(R.fds[0]);
	/* The client's mapping, the server's area and REGION_READ/WRITE see one memory. */
	map[0x10] = 0x5a;
	CHECK_EQ(M.area[0x10], 0x5a);
	CHECK_EQ(region_read(fd, 0, AREA_OFF + 0x10, buf, 1), 0);
	CHECK_EQ(buf[0], 0x5a);
	buf[0] = 0xa5;
	CHECK_EQ(region_write(fd, 0, AREA_OFF + 0x20, buf, 1), 0);
	CHECK_EQ(map[0x20], 0xa5);
	M.area[0x30] = 0x3c; /* the model writes, the client sees */
	CHECK_EQ(map[0x30], 0x3c);
	munmap(map, AREA_LEN);

	/* The upper half of the 64-bit BAR, ROM, VGA: no region. Config: 256 bytes. */
	for (unsigned i = 1; i < 9; i++) {
		static const uint64_t sizes[9] = {BAR0_SIZE, 0, 0x1000, 0, 0x100, 0, 0, 256, 0};

		ri.index = i;
		CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0), 0);
		memcpy(&out, R.p, sizeof(out));
		CHECK_EQ(out.size, sizes[i]);
		CHECK_EQ(out.index, i);
		CHECK_EQ(R.nfds, 0);
	}
	ri.index = 9;
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0), EINVAL);
	ri.index = 0;
	ri.argsz = 16;
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0), EINVAL);
	cli_close(fd);
	udrv_vfu_destroy(dev);
}

static void test_config_space(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, NULL);
	int fd = open_session();
	unsigned ids[8] = {0}, n = 0, off;
	uint32_t v;

	CHECK_EQ(cfg_read32(fd, 0x00), 0x00101b36);
	CHECK_EQ(cfg_read32(fd, 0x08), 0x01080202);
	CHECK_EQ(cfg_read32(fd, 0x2c), 0x11001af4);
	CHECK_EQ(cfg_read32(fd, 0x3c) >> 8 & 0xff, 1); /* INTA# */

	/* BAR sizing (PCI 3.0 6.2.5.1): all-ones reads back the size mask and the type bits. */
	for (unsigned b = 0; b < 6; b++)
		cfg_write32(fd, 0x10 + 4 * b, 0xffffffff);
	CHECK_EQ(cfg_read32(fd, 0x10), (uint32_t) ~(BAR0_SIZE - 1) | 0x4); /* 64-bit memory */
	CHECK_EQ(cfg_read32(fd, 0x14), 0xffffffff);			   /* its upper half */
	CHECK_EQ(cfg_read32(fd, 0x18), 0xfffff000u | 0x8);		   /* prefetchable */
	CHECK_EQ(cfg_read32(fd, 0x1c), 0);
	CHECK_EQ(cfg_read32(fd, 0x20), 0xffffff01); /* I/O */
	CHECK_EQ(cfg_read32(fd, 0x24), 0);
	cfg_write32(fd, 0x10, 0xfebf0000);
	CHECK_EQ(cfg_read32(fd, 0x10), 0xfebf0004);
	cfg_write32(fd, 0x30, 0xffffffff); /* no expansion ROM */
	CHECK_EQ(cfg_read32(fd, 0x30), 0);

	/* Command: I/O, memory, bus master (and the other implemented bits) are writable. */
	CHECK(!udrv_vfu_bus_master(dev));
	cfg_write32(fd, 0x04, 0xffff);
	CHECK_EQ(cfg_read32(fd, 0x04) & 0xffff, 0x0547);
	CHECK(udrv_vfu_bus_master(dev));
	CHECK(atomic_load(&M.cfg_writes) > 0);
	/* Read-only fields stay. */
	cfg_write32(fd, 0x00, 0);
	CHECK_EQ(cfg_read32(fd, 0x00), 0x00101b36);

	/* Status says there is a list; walk it. */
	CHECK(cfg_read32(fd, 0x04) >> 16 & 0x10);
	off = cfg_read32(fd, 0x34) & 0xff;
	while (off && n < 8) {
		v = cfg_read32(fd, off);
		ids[n++] = v & 0xff;
		off = v >> 8 & 0xff;
	}
	CHECK_EQ(n, 3);
	CHECK_EQ(ids[0], 0x11);
	CHECK_EQ(ids[1], 0x05);
	CHECK_EQ(ids[2], 0x09);

	/* MSI-X: table size N-1, table in BAR0 at 0, PBA in BAR0 at 0x800; only enable and
	 * function mask are writable. */
	v = cfg_read32(fd, 0x40);
	CHECK_EQ(v >> 16, MSIX_NVEC - 1);
	CHECK_EQ(cfg_read32(fd, 0x44), 0);
	CHECK_EQ(cfg_read32(fd, 0x48), PBA_OFF);
	cfg_write32(fd, 0x40, 0xffff0000);
	CHECK_EQ(cfg_read32(fd, 0x40) >> 16, 0xc000 | (MSIX_NVEC - 1));
	cfg_write32(fd, 0x40, 0);
	/* MSI: 64-bit, per-vector masking, 4 vectors capable. */
	v = cfg_read32(fd, 0x4c) >> 16;
	CHECK_EQ(v & 0x180, 0x180);
	CHECK_EQ(v >> 1 & 7, 2);
	/* The vendor capability's one writable byte. */
	cfg_write32(fd, 0x64, 0xffffffff);
	cfg_write32(fd, 0x68, 0xffffffff);
	CHECK_EQ(cfg_read32(fd, 0x64), 0x11080009);
	v = 0;
	CHECK_EQ(region_read(fd, 7, 0x68, &v, 4), 0);
	CHECK_EQ(v, 0xff);

	/* Device-side access sees the same bytes and bypasses masks. */
	CHECK_EQ(udrv_vfu_config_read(dev, 0x10, &v, 4), 4);
	CHECK_EQ(v, 0xfebf0004);
	v = 0x12345678;
	CHECK_EQ(udrv_vfu_config_write(dev, 0x28, &v, 4), 4);
	CHECK_EQ(cfg_read32(fd, 0x28), 0x12345678);
	CHECK_EQ(udrv_vfu_config_read(dev, 4094, &v, 4), -EINVAL);

	/* Out of config space. */
	CHECK_EQ(region_read(fd, 7, 254, &v, 4), EINVAL);
	CHECK_EQ(region_read(fd, 7, 0x100, &v, 4), EINVAL);
	cli_close(fd);
	udrv_vfu_destroy(dev);
}

static void test_region_rw(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, NULL);
	int fd = open_session();
	uint8_t buf[256] = {0};
	uint32_t v = 0xdeadbeef;
	struct vfio_user_region_access ra;
	struct vfio_user_device_info di = {.argsz = sizeof(di)};

	CHECK_EQ(region_write(fd, 2, 0x10, &v, 4), 0);
	CHECK_EQ(memcmp(M.bar[2] + 0x10, &v, 4), 0);
	CHECK_EQ(R.len, sizeof(ra));
	memcpy(&ra, R.p, sizeof(ra));
	CHECK_EQ(ra.count, 4);
	M.bar[2][0x20] = 0x77;
	CHECK_EQ(region_read(fd, 2, 0x20, buf, 1), 0);
	CHECK_EQ(buf[0], 0x77);
	CHECK_EQ(region_write(fd, 4, 0xfc, &v, 4), 0); /* I/O BAR */
	CHECK_EQ(memcmp(M.bar[4] + 0xfc, &v, 4), 0);
	/* The callback's error reaches the client. */
	CHECK_EQ(region_read(fd, 2, 0xff0, buf, 4), EIO);
	/* A read spanning callback memory and the mmap area of BAR0 is split. */
	memset(M.bar[0] + AREA_OFF - 8, 0x11, 8);
	CHECK_EQ(region_read(fd, 0, AREA_OFF - 8, buf, 16), 0);
	CHECK_EQ(buf[0], 0x11);
	CHECK_EQ(buf[8], 0); /* area memory, not the callback's */

	/* The bogus region a real client probes with, and others: EINVAL, and the connection
	 * stays usable. */
	CHECK_EQ(region_read(fd, 9, 0, buf, 4), EINVAL);
	CHECK_EQ(region_read(fd, 0xffffffff, 0, buf, 4), EINVAL);
	CHECK_EQ(region_read(fd, 6, 0, buf, 4), EINVAL); /* no ROM */
	CHECK_EQ(region_read(fd, 1, 0, buf, 4), EINVAL); /* upper half of BAR0 */
	CHECK_EQ(region_read(fd, 2, 0x1000, buf, 1), EINVAL);
	CHECK_EQ(region_read(fd, 2, 0xffe, buf, 4), EINVAL);
	CHECK_EQ(region_read(fd, 2, UINT64_MAX - 1, buf, 4), EINVAL); /* would wrap */
	CHECK_EQ(region_write(fd, 4, 0x100, &v, 4), EINVAL);
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0), 0);
	/* A zero-length access is fine. */
	CHECK_EQ(region_read(fd, 2, 0x1000, buf, 0), 0);
	cli_close(fd);
	udrv_vfu_destroy(dev);
}

static void test_dma(void)
{
	struct udrv_vfu_dev *dev = make_dev(6, NULL);
	int fd = open_session(), mfd = memfd(0x10000), ro = memfd(0x4000), base;
	uint8_t *cli, buf[64], *p;
	const uint64_t iova = 0x100000;

	base = count_fds();
	cli = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	REQUIRE(cli != MAP_FAILED);
	/* The second half of the memfd at iova; a read-only window right after it. */
	CHECK_EQ(dma_map(fd, iova, 0x8000, 3, 0x8000, mfd), 0);
	CHECK_EQ(dma_map(fd, iova + 0x8000, 0x4000, VFIO_USER_F_DMA_REGION_READ, 0, ro), 0);
	CHECK_EQ(count_fds(), base); /* the server keeps mappings, not fds */

	p = udrv_vfu_dma_ptr(dev, iova + 0x100, 64, true);
	REQUIRE(p);
	memset(p, 0xab, 64);
	CHECK_EQ(cli[0x8100], 0xab);
	CHECK(udrv_vfu_dma_ptr(dev, iova, 0x8000, true) != NULL);	 /* all of it */
	CHECK(udrv_vfu_dma_ptr(dev, iova + 0x7fc0, 128, false) == NULL); /* straddles */
	CHECK(udrv_vfu_dma_ptr(dev, iova - 1, 2, false) == NULL);	 /* starts outside */
	CHECK(udrv_vfu_dma_ptr(dev, 0, 1, false) == NULL);
	CHECK(udrv_vfu_dma_ptr(dev, iova, 0, false) == NULL);
	CHECK(udrv_vfu_dma_ptr(dev, iova + 0x8000, 16, true) == NULL); /* read-only */
	CHECK(udrv_vfu_dma_ptr(dev, iova + 0x8000, 16, false) != NULL);
	CHECK(udrv_vfu_dma_ptr(dev, UINT64_MAX - 8, 16, false) == NULL);

	/* Copies may span adjacent windows, but every byte needs the permission. */
	memset(cli + 0xfff0, 0x3c, 16);
	CHECK_EQ(udrv_vfu_dma_read(dev, iova + 0x7ff0, buf, 32), 0);
	CHECK_EQ(buf[0], 0x3c);
	CHECK_EQ(udrv_vfu_dma_write(dev, iova + 0x7ff0, buf, 32), -EFAULT);
	CHECK_EQ(cli[0xfff0], 0x3c);
	CHECK_EQ(udrv_vfu_dma_write(dev, iova + 0x10, "hello", 5), 0);
	CHECK_EQ(memcmp(cli + 0x8010, "hello", 5), 0);
	CHECK_EQ(udrv_vfu_dma_read(dev, iova + 0xbff0, buf, 32), -EFAULT); /* past the end */
	CHECK_EQ(udrv_vfu_dma_read(dev, UINT64_MAX - 4, buf, 16), -EFAULT);

	/* The table's rules. */
	CHECK_EQ(dma_map(fd, iova + 0x1000, 0x1000, 3, 0, -1), EEXIST);
	CHECK_EQ(dma_map(fd, iova - 0x1000, 0x2000, 3, 0, -1), EEXIST);
	CHECK_EQ(dma_map(fd, 0x900000, 0, 3, 0, -1), EINVAL);
	CHECK_EQ(dma_map(fd, 0x900000, 0x1000, 0, 0, -1), EINVAL);		 /* no permission */
	CHECK_EQ(dma_map(fd, 0x900000, 0x1000, 0x10, 0, -1), EINVAL);		 /* unknown flag */
	CHECK_EQ(dma_map(fd, 0x900100, 0x1000, 3, 0, -1), EINVAL);		 /* unaligned */
	CHECK_EQ(dma_map(fd, UINT64_MAX & ~0xfffull, 0x2000, 3, 0, -1), EINVAL); /* wraps */
	CHECK_EQ(dma_map(fd, 0x900000, 0x1000, 3, 0x10000, mfd), EINVAL);	 /* past EOF */
	CHECK_EQ(dma_map(fd, 0x900000, 0x20000, 3, 0, mfd), EINVAL);
	CHECK_EQ(dma_map(fd, 0x900000, 0x1000, 3, UINT64_MAX & ~0xfffull, mfd), EINVAL);
	{
		int pfd[2];

		REQUIRE(pipe(pfd) == 0);
		CHECK_EQ(dma_map(fd, 0x900000, 0x1000, 3, 0, pfd[0]), EINVAL); /* not a file */
		close(pfd[0]);
		close(pfd[1]);
	}
	/* max_dma_maps is 6: two in use, four more fit. */
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(dma_map(fd, 0x1000000 + i * 0x10000, 0x1000, 3, 0, -1), 0);
	CHECK_EQ(dma_map(fd, 0x2000000, 0x1000, 3, 0, -1), ENOSPC);
	CHECK_EQ(count_fds(), base);

	/* Unmap: exact windows only; the reply echoes the request. */
	CHECK_EQ(dma_unmap(fd, iova, 0x4000), ENOENT);
	CHECK_EQ(dma_unmap(fd, iova + 0x1000, 0x8000), ENOENT);
	CHECK_EQ(dma_unmap(fd, iova, 0x8000), 0);
	CHECK_EQ(R.len, sizeof(struct vfio_user_dma_unmap));
	CHECK(udrv_vfu_dma_ptr(dev, iova + 0x100, 64, false) == NULL);
	CHECK_EQ(udrv_vfu_dma_read(dev, iova, buf, 1), -EFAULT);
	CHECK_EQ(dma_map(fd, iova, 0x8000, 3, 0, mfd), 0); /* the space is free again */
	{
		struct vfio_user_dma_unmap u = {sizeof(u), 1, iova, 0x8000}; /* dirty bitmap */

		CHECK_EQ(xfer(fd, VFIO_USER_DMA_UNMAP, &u, sizeof(u), NULL, 0), EINVAL);
		u.flags = VFIO_DMA_UNMAP_FLAG_ALL;
		u.addr = u.size = 0;
		CHECK_EQ(xfer(fd, VFIO_USER_DMA_UNMAP, &u, sizeof(u), NULL, 0), 0);
	}
	CHECK(udrv_vfu_dma_ptr(dev, iova + 0x8000, 16, false) == NULL);
	munmap(cli, 0x10000);
	close(mfd);
	close(ro);
	cli_close(fd);
	udrv_vfu_destroy(dev);
}

static void test_dma_messages(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, NULL);
	int fd = cli_connect();
	uint32_t n = 5000, go = 1, res = 0xff;
	uint64_t iova = CLI_IOVA + 100;

	CHECK_EQ(cli_version(fd, 2, "{\"capabilities\":{\"max_data_xfer_size\":1024}}"), 0);
	/* No fd: the server reaches this memory with DMA_READ/DMA_WRITE messages. */
	CHECK_EQ(dma_map(fd, CLI_IOVA, CLI_MEMLEN, 3, 0, -1), 0);
	CHECK(udrv_vfu_dma_ptr(dev, CLI_IOVA, 16, false) == NULL);
	CHECK_EQ(region_write(fd, 2, 0x100, &iova, 8), 0);
	CHECK_EQ(region_write(fd, 2, 0x108, &n, 4), 0);
	cli_dma_reqs = 0;
	cli_dma_max = 0;
	CHECK_EQ(region_write(fd, 2, 0x10c, &go, 4), 0); /* served while we wait */
	CHECK_EQ(region_read(fd, 2, 0x110, &res, 4), 0);
	CHECK_EQ(res, 0);
	CHECK_EQ(cli_mem[100], 3);
	CHECK_EQ(cli_mem[100 + 4999], (uint8_t)(4999 * 7 + 3));
	CHECK_EQ(cli_mem[100 + 5000], 0);
	CHECK_EQ(cli_dma_max, 1024); /* the client's max_data_xfer_size */
	CHECK_EQ(cli_dma_reqs, 10);  /* 5 writes, 5 reads */
	/* Outside the window: refused before any message. */
	iova = CLI_IOVA + CLI_MEMLEN - 10;
	CHECK_EQ(region_write(fd, 2, 0x100, &iova, 8), 0);
	cli_dma_reqs = 0;
	CHECK_EQ(region_write(fd, 2, 0x10c, &go, 4), 0);
	CHECK_EQ(region_read(fd, 2, 0x110, &res, 4), 0);
	CHECK_EQ(res, EFAULT);
	CHECK_EQ(cli_dma_reqs, 0);

	/* The client's bad answers fail the access, not the server. */
	iova = CLI_IOVA;
	n = 100;
	CHECK_EQ(region_write(fd, 2, 0x100, &iova, 8), 0);
	CHECK_EQ(region_write(fd, 2, 0x108, &n, 4), 0);
	for (cli_dma_fault = 1; cli_dma_fault <= 3; cli_dma_fault++) {
		res = 0xff;
		CHECK_EQ(region_write(fd, 2, 0x10c, &go, 4), 0);
		CHECK_EQ(region_read(fd, 2, 0x110, &res, 4), 0);
		CHECK_EQ(res, EFAULT);
	}
	cli_dma_fault = 0;

	/* A command pipelined while the server waits for our DMA reply is handled after the
	 * command that caused the DMA, in order. */
	cli_dma_inject = true;
	CHECK_EQ(region_write(fd, 2, 0x10c, &go, 4), 0);
	REQUIRE(cli_reply(fd, cli_injected_id));
	CHECK_EQ(R.err, 0);
	CHECK_EQ(R.len, sizeof(struct vfio_user_device_info));
	CHECK_EQ(region_read(fd, 2, 0x110, &res, 4), 0);
	CHECK_EQ(res, 0);
	cli_close(fd);
	udrv_vfu_destroy(dev);
}

static void test_irqs(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, NULL);
	int fd = open_session(), base = count_fds();
	int e[3] = {eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK)};
	const uint32_t evt = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	struct vfio_user_irq_info ii = {.argsz = sizeof(ii)};
	uint32_t ctrl, v;
	uint8_t pba[8];

	static const uint32_t counts[5] = {1, MSI_NVEC, MSIX_NVEC, 1, 1};
	for (unsigned i = 0; i < 5; i++) {
		ii.index = i;
		CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0), 0);
		memcpy(&ii, R.p, sizeof(ii));
		CHECK_EQ(ii.count, counts[i]);
		CHECK(ii.flags & VFIO_IRQ_INFO_EVENTFD);
		CHECK_EQ(ii.index, i);
		ii.argsz = sizeof(ii);
	}
	ii.index = 5;
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0), EINVAL);

	/* MSI-X vectors 0 and 1 to eventfds: like vfio-pci this enables MSI-X. */
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_MSIX, 0), -ENOENT); /* not yet */
	CHECK_EQ(set_irqs(fd, evt, VFIO_PCI_MSIX_IRQ_INDEX, 0, 2, e, 2), 0);
	CHECK(cfg_read32(fd, 0x40) >> 31);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_MSIX, 0), 0);
	CHECK_EQ(efd_read(e[0]), 1);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_MSIX, 5), 0); /* masked: pending */
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_MSIX, 8), -EINVAL);

	/* Mask vector 0 in the table: the interrupt becomes pending, unmask delivers. */
	v = 1;
	CHECK_EQ(region_write(fd, 0, 0 * 16 + 12, &v, 4), 0);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_MSIX, 0), 0);
	CHECK_EQ(efd_read(e[0]), 0);
	CHECK_EQ(region_read(fd, 0, PBA_OFF, pba, 8), 0);
	CHECK_EQ(pba[0], 0x21); /* vectors 0 and 5 */
	v = 0xfffffffe;		/* only bit 0 is implemented */
	CHECK_EQ(region_write(fd, 0, 12, &v, 4), 0);
	CHECK_EQ(region_read(fd, 0, 12, &v, 4), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(efd_read(e[0]), 1);
	CHECK_EQ(region_read(fd, 0, PBA_OFF, pba, 8), 0);
	CHECK_EQ(pba[0], 0x20);
	CHECK_EQ(region_write(fd, 0, PBA_OFF, "\0\0\0\0", 4), 0); /* PBA is read-only */
	CHECK_EQ(region_read(fd, 0, PBA_OFF, pba, 1), 0);
	CHECK_EQ(pba[0], 0x20);

	/* Function mask. */
	ctrl = cfg_read32(fd, 0x40);
	cfg_write32(fd, 0x40, ctrl | 0x40000000);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_MSIX, 1), 0);
	CHECK_EQ(efd_read(e[1]), 0);
	cfg_write32(fd, 0x40, ctrl);
	CHECK_EQ(efd_read(e[1]), 1);

	/* De-assign vector 1 the way QEMU does (EVENTFD, no fds): masked, no signal. */
	CHECK_EQ(set_irqs(fd, evt, VFIO_PCI_MSIX_IRQ_INDEX, 1, 1, NULL, 0), 0);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_MSIX, 1), 0);
	CHECK_EQ(efd_read(e[1]), 0);
	/* Client-side trigger (DATA_NONE) and DATA_BOOL. */
	CHECK_EQ(set_irqs(fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
			  VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, NULL, 0),
		 0);
	CHECK_EQ(efd_read(e[0]), 1);
	{
		uint8_t m[22];
		struct vfio_user_irq_set s = {sizeof(m),
					      VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER,
					      VFIO_PCI_MSIX_IRQ_INDEX, 0, 2};

		memcpy(m, &s, sizeof(s));
		m[20] = 1;
		m[21] = 0;
		CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_SET_IRQS, m, sizeof(m), NULL, 0), 0);
		CHECK_EQ(efd_read(e[0]), 1);
		CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_SET_IRQS, m, sizeof(m) - 1, NULL, 0), EINVAL);
	}
	/* Disable all (count 0, DATA_NONE): MSI-X off, eventfds closed. */
	CHECK_EQ(set_irqs(fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
			  VFIO_PCI_MSIX_IRQ_INDEX, 0, 0, NULL, 0),
		 0);
	CHECK(!(cfg_read32(fd, 0x40) >> 31));
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_MSIX, 0), -ENOENT);
	CHECK_EQ(count_fds(), base + 3);

	/* INTx, with mask/unmask. */
	CHECK_EQ(set_irqs(fd, evt, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, &e[2], 1), 0);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_INTX, 0), 0);
	CHECK_EQ(efd_read(e[2]), 1);
	CHECK_EQ(set_irqs(fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK,
			  VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL, 0),
		 0);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_INTX, 0), 0);
	CHECK_EQ(efd_read(e[2]), 0);
	CHECK_EQ(set_irqs(fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
			  VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL, 0),
		 0);
	CHECK_EQ(efd_read(e[2]), 1);
	cfg_write32(fd, 0x04, 0x0400); /* Interrupt Disable */
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_INTX, 0), -ENOENT);
	cfg_write32(fd, 0x04, 0);

	/* MSI vector 0, masked through config space. */
	CHECK_EQ(set_irqs(fd, evt, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, &e[1], 1), 0);
	CHECK(cfg_read32(fd, 0x4c) >> 16 & 1);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_MSI, 0), 0);
	CHECK_EQ(efd_read(e[1]), 1);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_INTX, 0), -ENOENT); /* MSI is on */
	cfg_write32(fd, 0x4c + 16, 1);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_MSI, 0), 0);
	CHECK_EQ(efd_read(e[1]), 0);
	CHECK_EQ(cfg_read32(fd, 0x4c + 20), 1); /* pending */
	cfg_write32(fd, 0x4c + 16, 0);
	CHECK_EQ(efd_read(e[1]), 1);
	CHECK_EQ(cfg_read32(fd, 0x4c + 20), 0);

	/* ERR and REQ have one vector each. */
	CHECK_EQ(set_irqs(fd, evt, VFIO_PCI_REQ_IRQ_INDEX, 0, 1, &e[0], 1), 0);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_REQ, 0), 0);
	CHECK_EQ(efd_read(e[0]), 1);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_ERR, 0), -ENOENT);

	/* Malformed requests: refused, with every fd closed. */
	CHECK_EQ(set_irqs(fd, evt, 5, 0, 1, NULL, 0), EINVAL);
	CHECK_EQ(set_irqs(fd, evt, VFIO_PCI_MSIX_IRQ_INDEX, 1, 0xffffffff, NULL, 0), EINVAL);
	CHECK_EQ(set_irqs(fd, evt, VFIO_PCI_MSIX_IRQ_INDEX, 8, 1, NULL, 0), EINVAL);
	CHECK_EQ(set_irqs(fd, evt | VFIO_IRQ_SET_DATA_NONE, 0, 0, 1, NULL, 0), EINVAL);
	CHECK_EQ(set_irqs(fd, evt | 0x100, 0, 0, 1, NULL, 0), EINVAL);
	CHECK_EQ(set_irqs(fd, evt, VFIO_PCI_MSIX_IRQ_INDEX, 0, 2, e, 1), EINVAL);
	CHECK_EQ(set_irqs(fd, evt, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, e, 2), EINVAL);
	CHECK_EQ(set_irqs(fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, 1, e, 1),
		 EINVAL);
	CHECK_EQ(set_irqs(fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK,
			  VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, NULL, 0),
		 EINVAL);
	{
		int pfd[2];

		REQUIRE(pipe(pfd) == 0);
		CHECK_EQ(set_irqs(fd, evt, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, &pfd[1], 1), EINVAL);
		close(pfd[0]);
		close(pfd[1]);
	}
	CHECK_EQ(count_fds(), base + 3 + 3); /* INTx, MSI 0 and REQ hold an eventfd each */
	for (unsigned i = 0; i < 3; i++)
		close(e[i]);
	cli_close(fd);
	CHECK_EQ(count_fds(), base - 2); /* both ends of the connection */
	udrv_vfu_destroy(dev);
}

static void test_reset(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, NULL);
	int fd = open_session();

	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0), 0);
	CHECK_EQ(atomic_load(&M.resets), 1);
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_RESET, "x", 1, NULL, 0), EINVAL);
	CHECK_EQ(atomic_load(&M.resets), 1);
	cli_close(fd);
	udrv_vfu_destroy(dev);
}

static void test_disconnect_reconnect(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, NULL);
	int fd = open_session(), mfd = memfd(0x4000), e = eventfd(0, EFD_NONBLOCK), base;
	uint32_t v = 0x1234;

	base = count_fds();
	CHECK_EQ(atomic_load(&M.connects), 1);
	CHECK_EQ(dma_map(fd, 0x100000, 0x4000, 3, 0, mfd), 0);
	CHECK_EQ(set_irqs(fd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
			  VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, &e, 1),
		 0);
	CHECK_EQ(region_write(fd, 2, 0x40, &v, 4), 0);
	cfg_write32(fd, 0x04, 0x6);
	CHECK_EQ(count_fds(), base + 1); /* the server's copy of the eventfd */
	CHECK(udrv_vfu_dma_ptr(dev, 0x100000, 16, false) != NULL);
	cli_close(fd);
	/* Mappings and eventfds are gone (and both ends of the socket); state is kept. */
	CHECK_EQ(count_fds(), base - 2);
	CHECK(udrv_vfu_dma_ptr(dev, 0x100000, 16, false) == NULL);
	CHECK_EQ(udrv_vfu_irq_trigger(dev, UDRV_IRQ_MSIX, 0), -ENOENT);
	CHECK_EQ(efd_read(e), 0);

	fd = open_session();
	CHECK_EQ(atomic_load(&M.connects), 2);
	v = 0;
	CHECK_EQ(region_read(fd, 2, 0x40, &v, 4), 0);
	CHECK_EQ(v, 0x1234);
	CHECK_EQ(cfg_read32(fd, 0x04) & 0xffff, 0x6);
	CHECK_EQ(dma_map(fd, 0x100000, 0x4000, 3, 0, mfd), 0); /* the old window is free */
	cli_close(fd);
	close(mfd);
	close(e);
	udrv_vfu_destroy(dev);
}

/* udrv_vfu_disconnect(): surprise removal. The client sees EOF, the model its disconnect,
 * and the next client is served; a disconnect with no client changes nothing. */
static void test_forced_disconnect(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, NULL);
	int fd = open_session(), d0 = atomic_load(&M.disconnects);
	struct vfio_user_device_info di = {.argsz = sizeof(di)};
	uint8_t buf[64];

	udrv_vfu_disconnect(dev);
	CHECK(wait_for(&M.disconnects, d0 + 1));
	CHECK_EQ(read(fd, buf, sizeof(buf)), 0); /* EOF */
	close(fd);
	fd = open_session();
	CHECK_EQ(atomic_load(&M.connects), 2);
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0), 0);
	cli_close(fd);
	udrv_vfu_disconnect(dev); /* no client: a no-op, also for the next one */
	fd = open_session();
	sleep_ms(50);
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0), 0);
	cli_close(fd);
	udrv_vfu_destroy(dev);
}

/* A client that stops in the middle of a message: the server gives up after the timeout and
 * closes the connection, instead of waiting for ever with the socket locked. */
static void test_stall(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, NULL);
	struct vfio_user_header h = {
	    .msg_id = 1, .command = VFIO_USER_DEVICE_GET_INFO, .msg_size = sizeof(h) + 16};
	int fd, d0;
	char c;

	setenv("UDRV_VFIO_USER_TIMEOUT_MS", "500", 1);
	fd = open_session();
	d0 = atomic_load(&M.disconnects);
	cli_send_raw(fd, &h, 8, NULL, 0); /* half a header, then nothing */
	CHECK_EQ(recv(fd, &c, 1, 0), 0);  /* EOF from the server, well before SO_RCVTIMEO */
	cli_closed_by_server(fd, d0);
	fd = open_session(); /* and the next client is served */
	cli_close(fd);
	unsetenv("UDRV_VFIO_USER_TIMEOUT_MS");
	udrv_vfu_destroy(dev);
}

static void test_hostile(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, NULL);
	int fd = open_session(), base = count_fds();
	struct vfio_user_device_info di = {.argsz = sizeof(di)};
	struct vfio_user_header h;
	int e[40], d0;
	uint8_t big[64] = {0};

	/* Payload sizes: each command refuses a wrong one and the connection stays. */
	static const uint16_t cmds[] = {VFIO_USER_DMA_MAP,
					VFIO_USER_DMA_UNMAP,
					VFIO_USER_DEVICE_GET_INFO,
					VFIO_USER_DEVICE_GET_REGION_INFO,
					VFIO_USER_DEVICE_GET_IRQ_INFO,
					VFIO_USER_DEVICE_SET_IRQS,
					VFIO_USER_REGION_READ,
					VFIO_USER_REGION_WRITE};
	for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		CHECK_EQ(xfer(fd, cmds[i], big, 3, NULL, 0), EINVAL);
		if (cmds[i] != VFIO_USER_DEVICE_SET_IRQS && cmds[i] != VFIO_USER_REGION_WRITE)
			CHECK_EQ(xfer(fd, cmds[i], big, 40, NULL, 0), EINVAL);
	}
	/* Unknown and unsupported commands. */
	CHECK_EQ(xfer(fd, 0, NULL, 0, NULL, 0), ENOSYS);
	CHECK_EQ(xfer(fd, 14, NULL, 0, NULL, 0), ENOSYS);
	CHECK_EQ(xfer(fd, 999, big, 10, NULL, 0), ENOSYS);
	CHECK_EQ(xfer(fd, VFIO_USER_DMA_READ, big, 16, NULL, 0), ENOSYS);
	CHECK_EQ(xfer(fd, VFIO_USER_REGION_WRITE_MULTI, big, 8, NULL, 0), ENOSYS);
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_FEATURE, big, 8, NULL, 0), ENOTTY);

	/* fds where none belong, and more than max_msg_fds: refused and closed. */
	for (unsigned i = 0; i < 40; i++)
		e[i] = eventfd(0, 0);
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), e, 3), EINVAL);
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), e, 40), EINVAL);
	CHECK_EQ(xfer(fd, 999, NULL, 0, e, 5), ENOSYS);
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0), 0);
	for (unsigned i = 0; i < 40; i++)
		close(e[i]);
	CHECK_EQ(count_fds(), base);

	/* A reply nobody asked for is dropped; an unknown type gets EINVAL; NO_REPLY is
	 * honoured even for errors: the next reply is the next command's. */
	cli_send(fd, VFIO_USER_DEVICE_GET_INFO, VFIO_USER_F_TYPE_REPLY, &di, sizeof(di), NULL, 0);
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0), 0);
	{
		uint16_t id = cli_send(fd, VFIO_USER_DEVICE_GET_INFO, 2, &di, sizeof(di), NULL, 0);

		REQUIRE(cli_reply(fd, id));
		CHECK_EQ(R.err, EINVAL);
	}
	cli_send(fd, 999, VFIO_USER_F_NO_REPLY, NULL, 0, NULL, 0);
	cli_send(fd, VFIO_USER_DEVICE_RESET, VFIO_USER_F_NO_REPLY, NULL, 0, NULL, 0);
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0), 0);
	CHECK_EQ(atomic_load(&M.resets), 1);

	/* Framing we cannot recover from: an error when possible, then the server closes. */
	d0 = atomic_load(&M.disconnects);
	h = (struct vfio_user_header){1, VFIO_USER_DEVICE_GET_INFO, 2u << 20, 0, 0};
	cli_send_raw(fd, &h, sizeof(h), NULL, 0);
	REQUIRE(cli_reply(fd, 1));
	CHECK_EQ(R.err, E2BIG);
	CHECK(!cli_reply(fd, 1));
	cli_closed_by_server(fd, d0);

	fd = open_session();
	d0 = atomic_load(&M.disconnects);
	h = (struct vfio_user_header){2, VFIO_USER_DEVICE_GET_INFO, 8, 0, 0};
	cli_send_raw(fd, &h, sizeof(h), NULL, 0);
	REQUIRE(cli_reply(fd, 2));
	CHECK_EQ(R.err, EINVAL);
	CHECK(!cli_reply(fd, 2));
	cli_closed_by_server(fd, d0);

	/* A truncated header, with an fd, and the client gone. */
	fd = open_session();
	d0 = atomic_load(&M.disconnects);
	e[0] = eventfd(0, 0);
	cli_send_raw(fd, &h, 8, e, 1);
	close(e[0]);
	cli_closed_by_server(fd, d0);
	/* A truncated body. */
	fd = open_session();
	d0 = atomic_load(&M.disconnects);
	h = (struct vfio_user_header){3, VFIO_USER_DEVICE_GET_INFO, 32, 0, 0};
	cli_send_raw(fd, &h, sizeof(h), NULL, 0);
	cli_closed_by_server(fd, d0);
	CHECK_EQ(count_fds(), base - 2);

	/* Through all of it the server kept accepting. */
	fd = open_session();
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0), 0);
	/* A second client is refused while the first is served. */
	{
		int fd2 = cli_connect();
		char c;

		CHECK_EQ(recv(fd2, &c, 1, 0), 0);
		close(fd2);
	}
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0), 0);
	cli_close(fd);
	udrv_vfu_destroy(dev);
}

static long thread_cpu_ticks(int tid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return -1;
	/* Fields after the comm: state(3) ... utime(14) stime(15). */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

static void test_poller(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, model_poll);
	int fd, mfd = memfd(0x4000), tid;
	long polls, t0, t1, hz = sysconf(_SC_CLK_TCK);

	sleep_ms(50);
	CHECK_EQ(atomic_load(&M.polls), 0); /* no client: parked */
	fd = open_session();
	sleep_ms(100);
	CHECK(atomic_load(&M.polls) > 0);
	tid = atomic_load(&M.poll_tid);
	REQUIRE(tid > 0);

	/* Idle: after the spin it backs off to ~1 ms sleeps. */
	polls = atomic_load(&M.polls);
	t0 = thread_cpu_ticks(tid);
	sleep_ms(500);
	t1 = thread_cpu_ticks(tid);
	polls = atomic_load(&M.polls) - polls;
	fprintf(stderr, "  idle poller: %ld polls, %ld ticks in 0.5 s (%ld Hz)\n", polls, t1 - t0,
		hz);
	CHECK(polls > 50 && polls < 20000);
	CHECK(t0 >= 0 && t1 - t0 <= hz / 8); /* under 25% of a core; in practice ~1% */

	/* The poller keeps reading a mapped window while the client maps and unmaps it: the
	 * library must park it before each unmap, or this faults. */
	M.touch_iova = 0x100000;
	atomic_store(&M.poll_touch, 1);
	for (unsigned i = 0; i < 200; i++) {
		CHECK_EQ(dma_map(fd, 0x100000, 0x4000, 3, 0, mfd), 0);
		CHECK_EQ(dma_unmap(fd, 0x100000, 0x4000), 0);
	}
	CHECK_EQ(dma_map(fd, 0x100000, 0x4000, 3, 0, mfd), 0);
	CHECK_EQ(xfer(fd, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0), 0);
	/* Disconnect with the poller busy on a mapping. */
	cli_close(fd);
	polls = atomic_load(&M.polls);
	sleep_ms(50);
	CHECK_EQ(atomic_load(&M.polls), polls); /* parked again */
	close(mfd);
	udrv_vfu_destroy(dev);
}

/* The poller waits for a DMA reply the client never sends: a disconnect, and a stop, must
 * still get through. */
static void test_poller_dma_wait(void)
{
	struct udrv_vfu_dev *dev = make_dev(0, model_poll);
	uint8_t buf[256];
	int fd = open_session(), fds[8];
	struct vfio_user_header h;
	struct timespec t0, t1;
	size_t nfds;

	CHECK_EQ(dma_map(fd, CLI_IOVA, CLI_MEMLEN, 3, 0, -1), 0);
	atomic_store(&M.poll_msgdma, 1);
	REQUIRE(cli_read(fd, buf, sizeof(buf), fds, &nfds) > 0);
	memcpy(&h, buf, sizeof(h));
	CHECK_EQ(h.command, VFIO_USER_DMA_READ); /* and we do not answer */
	sleep_ms(50);
	close(fd);
	CHECK(wait_for(&M.disconnects, 1));
	CHECK(atomic_load(&M.msgdma_fails) >= 1);

	fd = open_session();
	CHECK_EQ(dma_map(fd, CLI_IOVA, CLI_MEMLEN, 3, 0, -1), 0);
	REQUIRE(cli_read(fd, buf, sizeof(buf), fds, &nfds) > 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	udrv_vfu_destroy(dev);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(t1.tv_sec - t0.tv_sec < 2);
	close(fd);
}

static void *stop_later(void *arg)
{
	sleep_ms(50);
	udrv_vfu_stop(arg);
	return NULL;
}

static void test_run_stop(void)
{
	struct udrv_vfu_opts o = {.socket_path = sock_path};
	struct udrv_vfu_dev *dev = udrv_vfu_create(&o);
	pthread_t t;

	REQUIRE(dev);
	/* run() in this thread until another thread stops it. */
	REQUIRE(pthread_create(&t, NULL, stop_later, dev) == 0);
	CHECK_EQ(udrv_vfu_run(dev), 0);
	pthread_join(t, NULL);
	/* A stop before run() makes it return at once. */
	udrv_vfu_stop(dev);
	CHECK_EQ(udrv_vfu_run(dev), 0);
	/* Stop while a client is connected. */
	REQUIRE(udrv_vfu_start(dev) == 0);
	{
		int fd = cli_connect();

		CHECK_EQ(cli_version(fd, 2, NULL), 0);
		udrv_vfu_destroy(dev);
		CHECK(!cli_reply(fd, 0)); /* EOF */
		close(fd);
	}
}

int main(void)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/udrv-test-vfu-%d.sock", (int)getpid());
	unlink(sock_path);
	udrv_log_set_level(UDRV_LOG_ERR); /* the refused second client is warned about */
	RUN(test_socket_path);
	RUN(test_setup_errors);
	RUN(test_version);
	RUN(test_device_and_region_info);
	RUN(test_config_space);
	RUN(test_region_rw);
	RUN(test_dma);
	RUN(test_dma_messages);
	RUN(test_irqs);
	RUN(test_reset);
	RUN(test_disconnect_reconnect);
	RUN(test_forced_disconnect);
	RUN(test_stall);
	RUN(test_hostile);
	RUN(test_poller);
	RUN(test_poller_dma_wait);
	RUN(test_run_stop);
	unlink(sock_path);
	return test_done();
}
