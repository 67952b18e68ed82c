/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where the emulated disk's blocks live: anonymous memory, a file (or block device) read and
 * written with preadv/pwritev, or the same file through io_uring. Used by the device thread
 * only, so nothing here locks.
 *
 * io_uring: rw() only prepares an SQE; reap() submits the batch and waits for all of it, so
 * at most QD transfers are outstanding and the CQ (2 * QD entries by default) cannot
 * overflow. Transfers are not ordered among themselves nor against the synchronous pread(),
 * zero() and flush(); NVMe does not order commands in flight either.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <liburing.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "emu/nvme/nvme_emu.h"

#define QD 64u /* io_uring queue depth: transfers queued at once */

/* A queued transfer: enough to finish it synchronously if the kernel returns it short. */
struct uop {
	void *cookie;
	const struct iovec *iov;
	unsigned iovcnt;
	bool write, busy;
	uint64_t off;
	size_t len;
	struct uop *next_free;
};

struct nvemu_backing {
	uint64_t size;
	uint8_t *mem; /* RAM store, else NULL */
	size_t pgsz;
	int fd;	    /* file store, else -1 */
	bool uring; /* ring set up and in use */
	struct io_uring ring;
	unsigned queued; /* prepared or submitted, not yet reaped */
	struct uop *free;
	struct uop op[QD];
};

static char zeros[65536]; /* only ever read: the source of zero-filling writes */

/*
 * Transfer iov, less its first skip bytes, at file offset off. preadv(2)/pwritev(2) may
 * transfer less than asked (signals, limits); continue from where they stopped without
 * copying the iovec array: a partly done element is finished by itself. A read at EOF
 * yields zeros, as the RAM store does beyond what was written.
 */
static int file_rw(int fd, bool write, uint64_t off, const struct iovec *iov, unsigned cnt,
		   size_t skip)
{
	unsigned i = 0;

	while (i < cnt) {
		ssize_t n;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			i++;
			continue;
		}
		if (skip) {
			char *p = (char *)iov[i].iov_base + skip;
			size_t len = iov[i].iov_len - skip;

			n = write ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);
		} else {
			int c = cnt - i > IOV_MAX ? IOV_MAX : (int)(cnt - i);

			n = write ? pwritev(fd, iov + i, c, (off_t)off)
				  : preadv(fd, iov + i, c, (off_t)off);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 && write)
			return -EIO;
		if (n == 0) {
			for (; i < cnt; i++, skip = 0)
				memset((char *)iov[i].iov_base + skip, 0, iov[i].iov_len - skip);
			return 0;
		}
		off += (uint64_t)n;
		skip += (size_t)n;
	}
	return 0;
}

static size_t iov_total(const struct iovec *iov, unsigned cnt)
{
	size_t t = 0;

	for (unsigned i = 0; i < cnt; i++)
		t += iov[i].iov_len;
	return t;
}

static bool in_range(const struct nvemu_backing *b, uint64_t off, uint64_t len)
{
	return off <= b->size && len <= b->size - off;
}

/* Record "cannot WHAT PATH: <errno>HINT" for the user; returns -errno. */
static int fail(const char *what, const char *path, const char *hint)
{
	int err = errno;

	return udrv_err(err, "cannot %s %s: %s%s", what, path, strerror(err), hint);
}

static int open_ram(struct nvemu_backing *b)
{
	void *m;

	if (b->size == 0 || (uint64_t)(size_t)b->size != b->size)
		return udrv_err(EINVAL, "a RAM disk needs a size that fits in memory; pass --size");
	/* MAP_NORESERVE: only written pages take memory; mmap(2). */
	m = mmap(NULL, (size_t)b->size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return fail("map", "the RAM disk", "; pass a smaller --size");
	b->mem = m;
	b->pgsz = (size_t)sysconf(_SC_PAGESIZE);
	return 0;
}

static int open_file(struct nvemu_backing *b, const char *path, bool uring)
{
	struct stat st;
	uint64_t cur;
	int err;

	/* Without a size there is nothing to create: a missing file is an error, not an empty
	 * file left behind. */
	b->fd = open(path, O_RDWR | O_CLOEXEC | (b->size ? O_CREAT : 0), 0644);
	if (b->fd < 0 && errno == ENOENT && !b->size)
		return udrv_err(ENOENT, "backing file %s does not exist; pass --size to create it",
				path);
	if (b->fd < 0)
		return fail("open backing file", path,
			    "; check the path and its permissions, or give no file for a RAM disk");
	if (fstat(b->fd, &st) < 0)
		return fail("stat backing file", path, "");
	if (S_ISREG(st.st_mode)) {
		cur = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &cur) < 0)
			return fail("get the size of block device", path, "");
	} else {
		return udrv_err(
		    EINVAL,
		    "backing file %s is not a regular file or block device; give one that is",
		    path);
	}
	if (!b->size && !cur)
		return udrv_err(EINVAL, "backing file %s is empty; pass --size to give it a size",
				path);
	if (!b->size) {
		b->size = cur;
	} else if (b->size > cur && S_ISBLK(st.st_mode)) {
		return udrv_err(ENOSPC,
				"block device %s has only %" PRIu64 " bytes; pass a "
				"smaller --size or none",
				path, cur);
	} else if (b->size > cur && ftruncate(b->fd, (off_t)b->size) < 0) {
		return fail("extend backing file", path, "; pass a smaller --size");
	}
	if (!uring)
		return 0;
	/* Fails with ENOSYS (old kernel), EPERM (seccomp in containers, or
	 * kernel.io_uring_disabled) or ENOMEM (RLIMIT_MEMLOCK before Linux 5.12). */
	err = -io_uring_queue_init(QD, &b->ring, 0);
	if (err > 0)
		return udrv_err(err, "cannot set up io_uring for %s: %s; run without --io-uring",
				path, strerror(err));
	b->uring = true;
	for (unsigned i = 0; i < QD; i++) {
		b->op[i].next_free = b->free;
		b->free = &b->op[i];
	}
	return 0;
}

int nvemu_backing_open(struct nvemu_backing **out, const char *path, uint64_t size, bool uring)
{
	struct nvemu_backing *b = calloc(1, sizeof(*b));
	int rc;

	if (!b)
		return udrv_err(ENOMEM, "out of memory for the backing store");
	b->fd = -1;
	b->size = size;
	rc = path ? open_file(b, path, uring) : open_ram(b);
	if (rc < 0) {
		nvemu_backing_close(b);
		return rc;
	}
	*out = b;
	return 0;
}

/* Outstanding transfers are abandoned: io_uring_queue_exit() waits for or cancels them in the
 * kernel, and done() is not called. Reap first. */
void nvemu_backing_close(struct nvemu_backing *b)
{
	if (!b)
		return;
	if (b->mem)
		munmap(b->mem, (size_t)b->size);
	if (b->uring)
		io_uring_queue_exit(&b->ring);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

uint64_t nvemu_backing_size(const struct nvemu_backing *b)
{
	return b->size;
}

int nvemu_backing_rw(struct nvemu_backing *b, bool write, uint64_t off, const struct iovec *iov,
		     unsigned iovcnt, void *cookie, int *res)
{
	size_t len = iov_total(iov, iovcnt);
	struct io_uring_sqe *sqe;
	struct uop *op;

	/* The caller checks; this only keeps a bug there from writing past the mapping. */
	if (!in_range(b, off, len)) {
		*res = -EINVAL;
		return 1;
	}
	if (b->mem) {
		uint8_t *p = b->mem + off;

		for (unsigned i = 0; i < iovcnt; p += iov[i].iov_len, i++)
			if (iov[i].iov_len)
				memcpy(write ? p : iov[i].iov_base, write ? iov[i].iov_base : p,
				       iov[i].iov_len);
		*res = 0;
		return 1;
	}
	if (!b->uring) {
		*res = file_rw(b->fd, write, off, iov, iovcnt, 0);
		return 1;
	}
	if (!b->free || !(sqe = io_uring_get_sqe(&b->ring)))
		return -EAGAIN;
	op = b->free;
	b->free = op->next_free;
	*op = (struct uop){cookie, iov, iovcnt, write, true, off, len, NULL};
	if (write)
		io_uring_prep_writev(sqe, b->fd, iov, iovcnt, off);
	else
		io_uring_prep_readv(sqe, b->fd, iov, iovcnt, off);
	io_uring_sqe_set_data(sqe, op);
	b->queued++;
	return 0;
}

/* The result of a completed transfer, finishing it if the kernel did only part of it. */
static int uop_finish(struct nvemu_backing *b, const struct uop *op, int res)
{
	if (res == -EAGAIN || res == -EINTR)
		return file_rw(b->fd, op->write, op->off, op->iov, op->iovcnt, 0);
	if (res < 0)
		return res;
	if ((size_t)res < op->len)
		return file_rw(b->fd, op->write, op->off + (uint64_t)res, op->iov, op->iovcnt,
			       (size_t)res);
	return 0;
}

static void uop_release(struct nvemu_backing *b, struct uop *op,
			void (*done)(void *ctx, void *cookie, int res), void *ctx, int res)
{
	void *cookie = op->cookie;

	op->busy = false;
	op->next_free = b->free;
	b->free = op;
	b->queued--;
	done(ctx, cookie, res); /* last: done() may queue another transfer */
}

void nvemu_backing_reap(struct nvemu_backing *b, void (*done)(void *ctx, void *cookie, int res),
			void *ctx)
{
	while (b->uring && b->queued) {
		struct io_uring_cqe *cqe;
		/* Waits for all of them unless not all could be submitted (io_uring_enter(2)
		 * then returns early); the loop submits the rest. */
		int rc = io_uring_submit_and_wait(&b->ring, b->queued);

		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			/* Not expected with our ring; fail what is queued rather than wait for
			 * ever, and do the rest synchronously. */
			udrv_warn("io_uring failed: %s; continuing without it", strerror(-rc));
			b->uring = false;
			for (unsigned i = 0; i < QD; i++)
				if (b->op[i].busy)
					uop_release(b, &b->op[i], done, ctx, rc);
			io_uring_queue_exit(&b->ring);
			return;
		}
		while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
			struct uop *op = io_uring_cqe_get_data(cqe);
			int res = uop_finish(b, op, cqe->res);

			io_uring_cqe_seen(&b->ring, cqe);
			uop_release(b, op, done, ctx, res);
		}
	}
}

int nvemu_backing_pread(struct nvemu_backing *b, uint64_t off, void *buf, size_t len)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};

	if (!in_range(b, off, len))
		return -EINVAL;
	if (b->mem) {
		memcpy(buf, b->mem + off, len);
		return 0;
	}
	return file_rw(b->fd, false, off, &iov, 1, 0);
}

static int ram_zero(struct nvemu_backing *b, uint64_t off, uint64_t len)
{
	uint8_t *p = b->mem + off, *end = p + len;
	uint8_t *a = b->mem + (off + b->pgsz - 1) / b->pgsz * b->pgsz;
	uint8_t *z = b->mem + (off + len) / b->pgsz * b->pgsz;

	if (a >= z) {
		memset(p, 0, len);
		return 0;
	}
	memset(p, 0, (size_t)(a - p));
	memset(z, 0, (size_t)(end - z));
	/* Private anonymous pages read as zeros after MADV_DONTNEED (madvise(2)), and their
	 * memory is freed: cheaper than memset even when only zeros were asked for. */
	if (madvise(a, (size_t)(z - a), MADV_DONTNEED) < 0)
		memset(a, 0, (size_t)(z - a));
	return 0;
}

int nvemu_backing_zero(struct nvemu_backing *b, uint64_t off, uint64_t len, bool dealloc)
{
	static const int modes[2][2] = {
	    {FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0},
	    {FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	     FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE},
	};

	if (!in_range(b, off, len))
		return -EINVAL;
	if (!len)
		return 0;
	if (b->mem)
		return ram_zero(b, off, len);
	/* fallocate(2): EOPNOTSUPP when the file system lacks the mode (tmpfs has no
	 * ZERO_RANGE), EINVAL for a block device when the range is not aligned to its logical
	 * block size, ENOSYS when seccomp hides the call. Writing zeros always works. */
	for (unsigned m = 0; m < 2 && modes[dealloc][m]; m++) {
		int rc = fallocate(b->fd, modes[dealloc][m], (off_t)off, (off_t)len);

		while (rc < 0 && errno == EINTR)
			rc = fallocate(b->fd, modes[dealloc][m], (off_t)off, (off_t)len);
		if (rc == 0)
			return 0;
		if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS)
			return -errno;
	}
	while (len) {
		struct iovec iov = {zeros, len < sizeof(zeros) ? (size_t)len : sizeof(zeros)};
		int rc = file_rw(b->fd, true, off, &iov, 1, 0);

		if (rc < 0)
			return rc;
		off += iov.iov_len;
		len -= iov.iov_len;
	}
	return 0;
}

int nvemu_backing_flush(struct nvemu_backing *b)
{
	if (b->mem)
		return 0;
	return fdatasync(b->fd) < 0 ? -errno : 0;
}
