/* SPDX-License-Identifier: BSD-3-Clause */
/* The emulated NVMe controller's backing store: RAM, a file, a file through io_uring. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <udrv/log.h>

#include "core/log_internal.h"
#include "emu/nvme/nvme_emu.h"
#include "test.h"

#define SIZE	(1u << 20)
#define NCOOKIE 256

static uint8_t model[SIZE]; /* what the store must hold */
static uint8_t rbuf[SIZE], wbuf[SIZE];
static uint8_t cookies[NCOOKIE]; /* cookie i is &cookies[i] */

static struct {
	int calls[NCOOKIE];
	int res[NCOOKIE];
	int total;
} reaped;

static void done(void *ctx, void *cookie, int res)
{
	ptrdiff_t i = (uint8_t *)cookie - cookies;

	REQUIRE(ctx == &reaped && i >= 0 && i < NCOOKIE);
	reaped.calls[i]++;
	reaped.res[i] = res;
	reaped.total++;
}

static void tmp_path(char *path, size_t len)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(path, len, "%s/udrv-backing-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	REQUIRE(fd >= 0);
	close(fd);
}

/* Cut buf into odd pieces (a 0-length one included) so transfers cross element edges. */
static unsigned split(uint8_t *buf, size_t len, struct iovec *iov, unsigned max)
{
	static const size_t piece[] = {1, 511, 0, 4096, 7, 3000, 65536};
	unsigned n = 0;

	for (size_t at = 0; at < len; n++) {
		size_t l = piece[n % 7] < len - at ? piece[n % 7] : len - at;

		REQUIRE(n < max);
		iov[n] = (struct iovec){.iov_base = buf + at, .iov_len = l};
		at += l;
	}
	return n;
}

/* One transfer to its end, whatever kind the store is; returns its result. */
static int xfer(struct nvemu_backing *b, bool write, uint64_t off, uint8_t *buf, size_t len)
{
	struct iovec iov[64];
	unsigned cnt = split(buf, len, iov, 64);
	int res = 12345, rc;

	memset(&reaped, 0, sizeof(reaped));
	rc = nvemu_backing_rw(b, write, off, iov, cnt, &cookies[7], &res);
	if (rc == 1)
		return res;
	REQUIRE(rc == 0);
	nvemu_backing_reap(b, done, &reaped);
	CHECK_EQ(reaped.total, 1);
	CHECK_EQ(reaped.calls[7], 1);
	return reaped.res[7];
}

static void verify(struct nvemu_backing *b, int line)
{
	memset(rbuf, 0xee, SIZE);
	CHECK_EQ(nvemu_backing_pread(b, 0, rbuf, SIZE), 0);
	for (size_t i = 0; i < SIZE; i++)
		if (rbuf[i] != model[i]) {
			fprintf(stderr, "line %d: byte %zu is %#x, want %#x\n", line, i, rbuf[i],
				model[i]);
			test_failures++;
			return;
		}
}

static void pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 13 + (i >> 9) + seed * 101 + 1);
}

/* Writes, reads, zeroing and flush on an open store of SIZE bytes holding model. */
static void exercise(struct nvemu_backing *b)
{
	static const struct {
		uint64_t off;
		size_t len;
	} w[] = {{0, 4096},	     {512, 100},	  {4000, 9000},
		 {65536 + 7, 70000}, {SIZE - 3000, 3000}, {SIZE / 2, 256 * 1024 - 1}};
	static const struct {
		uint64_t off, len;
		bool dealloc;
	} z[] = {{100, 50, false},
		 {100, 50, true},
		 {3 * 4096 + 10, 4 * 4096, false},
		 {9 * 4096 + 10, 4 * 4096, true},
		 {8192, 8192, false},
		 {65536, 65536, true},
		 {SIZE - 100, 100, true},
		 {SIZE / 2, 0, true}};
	int res = 0;

	CHECK_EQ(nvemu_backing_size(b), SIZE);
	/* Fill everything so that zeroing has something to clear. */
	for (unsigned i = 0; i < SIZE / NVEMU_MAX_XFER; i++) {
		pattern(wbuf, NVEMU_MAX_XFER, i);
		CHECK_EQ(xfer(b, true, (uint64_t)i * NVEMU_MAX_XFER, wbuf, NVEMU_MAX_XFER), 0);
		memcpy(model + i * NVEMU_MAX_XFER, wbuf, NVEMU_MAX_XFER);
	}
	verify(b, __LINE__);
	for (unsigned i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		pattern(wbuf, w[i].len, 50 + i);
		CHECK_EQ(xfer(b, true, w[i].off, wbuf, w[i].len), 0);
		memcpy(model + w[i].off, wbuf, w[i].len);
	}
	verify(b, __LINE__);
	for (unsigned i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		memset(rbuf, 0xee, w[i].len);
		CHECK_EQ(xfer(b, false, w[i].off, rbuf, w[i].len), 0);
		CHECK(memcmp(rbuf, model + w[i].off, w[i].len) == 0);
	}
	for (unsigned i = 0; i < sizeof(z) / sizeof(z[0]); i++) {
		CHECK_EQ(nvemu_backing_zero(b, z[i].off, z[i].len, z[i].dealloc), 0);
		memset(model + z[i].off, 0, z[i].len);
		verify(b, __LINE__);
		/* and the neighbours can still be rewritten */
		pattern(wbuf, 1, i);
		if (z[i].off > 0) {
			CHECK_EQ(xfer(b, true, z[i].off - 1, wbuf, 1), 0);
			model[z[i].off - 1] = wbuf[0];
		}
	}
	verify(b, __LINE__);
	CHECK_EQ(nvemu_backing_flush(b), 0);

	/* Out of range: refused, nothing touched. */
	{
		struct iovec iov = {.iov_base = wbuf, .iov_len = 20};

		CHECK_EQ(nvemu_backing_rw(b, true, SIZE - 10, &iov, 1, &cookies[0], &res), 1);
		CHECK_EQ(res, -EINVAL);
		CHECK_EQ(nvemu_backing_zero(b, SIZE - 10, 20, false), -EINVAL);
		CHECK_EQ(nvemu_backing_pread(b, SIZE + 1, rbuf, 0), -EINVAL);
	}
	verify(b, __LINE__);
}

static void test_ram(void)
{
	struct nvemu_backing *b = NULL;
	int res = 0;

	/* the io_uring flag means nothing for RAM */
	for (int uring = 0; uring < 2; uring++) {
		REQUIRE(nvemu_backing_open(&b, NULL, SIZE, uring) == 0);
		memset(model, 0, SIZE);
		verify(b, __LINE__);
		exercise(b);
		/* synchronous: reap has nothing to report */
		memset(&reaped, 0, sizeof(reaped));
		{
			struct iovec iov = {.iov_base = wbuf, .iov_len = 512};

			CHECK_EQ(nvemu_backing_rw(b, false, 0, &iov, 1, &cookies[1], &res), 1);
		}
		nvemu_backing_reap(b, done, &reaped);
		CHECK_EQ(reaped.total, 0);
		nvemu_backing_close(b);
	}
	nvemu_backing_close(NULL);
}

/* A file shorter than the store (changed behind its back): reads past its end are zeros,
 * so the transfer comes back short and is completed here. */
static void short_read(struct nvemu_backing *b, const char *path)
{
	int fd = open(path, O_RDWR);

	REQUIRE(fd >= 0);
	CHECK_EQ(ftruncate(fd, SIZE - 5000), 0);
	memset(model + SIZE - 5000, 0, 5000);
	memset(rbuf, 0xee, 8192);
	CHECK_EQ(xfer(b, false, SIZE - 8192, rbuf, 8192), 0);
	CHECK(memcmp(rbuf, model + SIZE - 8192, 8192) == 0);
	CHECK_EQ(ftruncate(fd, SIZE), 0);
	close(fd);
	verify(b, __LINE__);
}

static void test_file(bool uring)
{
	struct nvemu_backing *b = NULL;
	char path[4096];
	struct stat st;

	tmp_path(path, sizeof(path));
	REQUIRE(nvemu_backing_open(&b, path, SIZE, uring) == 0);
	CHECK(stat(path, &st) == 0 && st.st_size == SIZE);
	memset(model, 0, SIZE);
	verify(b, __LINE__);
	exercise(b);
	short_read(b, path);
	nvemu_backing_close(b);

	/* Opened again without a size: the file's size and data, by either kind of I/O. */
	for (int again = 0; again < 2; again++) {
		b = NULL;
		REQUIRE(nvemu_backing_open(&b, path, 0, again ? uring : !uring) == 0);
		CHECK_EQ(nvemu_backing_size(b), SIZE);
		verify(b, __LINE__);
		nvemu_backing_close(b);
	}
	/* A larger size extends the file, keeping the data. */
	REQUIRE(nvemu_backing_open(&b, path, 2 * SIZE, uring) == 0);
	CHECK_EQ(nvemu_backing_size(b), 2 * SIZE);
	CHECK(stat(path, &st) == 0 && st.st_size == 2 * SIZE);
	verify(b, __LINE__);
	CHECK_EQ(nvemu_backing_pread(b, SIZE, rbuf, SIZE), 0);
	for (size_t i = 0; i < SIZE; i++)
		if (rbuf[i]) {
			CHECK(rbuf[i] == 0);
			break;
		}
	nvemu_backing_close(b);
	unlink(path);
}

static void test_file_sync(void)
{
	test_file(false);
}

static void test_file_uring(void)
{
	test_file(true);
}

/* Queue n 4 KiB transfers of two elements each; a full queue is reaped and the transfer
 * retried. Every cookie must be reported exactly once, with 0. */
static void queue_many(struct nvemu_backing *b, bool write, unsigned n)
{
	static struct iovec iov[NCOOKIE][2];
	unsigned since_reap = 0, eagain = 0;

	memset(&reaped, 0, sizeof(reaped));
	for (unsigned i = 0; i < n; i++) {
		int res = 12345, rc;

		iov[i][0] =
		    (struct iovec){.iov_base = (write ? wbuf : rbuf) + i * 4096, .iov_len = 1000};
		iov[i][1] = (struct iovec){.iov_base = (write ? wbuf : rbuf) + i * 4096 + 1000,
					   .iov_len = 3096};
		rc = nvemu_backing_rw(b, write, (uint64_t)i * 4096, iov[i], 2, &cookies[i], &res);
		if (rc == -EAGAIN) {
			int before = reaped.total;

			eagain++;
			CHECK_EQ(since_reap, 64);
			nvemu_backing_reap(b, done, &reaped);
			CHECK_EQ(reaped.total - before, since_reap);
			since_reap = 0;
			rc = nvemu_backing_rw(b, write, (uint64_t)i * 4096, iov[i], 2, &cookies[i],
					      &res);
		}
		CHECK_EQ(rc, 0);
		since_reap++;
	}
	nvemu_backing_reap(b, done, &reaped);
	CHECK_EQ(eagain, (n - 1) / 64);
	CHECK_EQ(reaped.total, n);
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(reaped.calls[i], 1);
		CHECK_EQ(reaped.res[i], 0);
	}
	/* nothing is left outstanding */
	nvemu_backing_reap(b, done, &reaped);
	CHECK_EQ(reaped.total, n);
}

static void test_uring_queue_full(void)
{
	struct nvemu_backing *b = NULL;
	char path[4096];
	const unsigned n = 200;

	tmp_path(path, sizeof(path));
	REQUIRE(nvemu_backing_open(&b, path, SIZE, true) == 0);
	pattern(wbuf, n * 4096, 9);
	queue_many(b, true, n);
	memset(rbuf, 0xee, n * 4096);
	queue_many(b, false, n);
	CHECK(memcmp(rbuf, wbuf, n * 4096) == 0);
	CHECK_EQ(nvemu_backing_pread(b, 0, rbuf, n * 4096), 0);
	CHECK(memcmp(rbuf, wbuf, n * 4096) == 0);
	nvemu_backing_close(b);
	unlink(path);
}

/* A transfer the kernel cannot do (its memory is not readable) fails with -EFAULT, also when
 * it fails part way. */
static void test_file_fault(void)
{
	uint8_t *bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char path[4096];

	REQUIRE(bad != MAP_FAILED);
	tmp_path(path, sizeof(path));
	for (int uring = 0; uring < 2; uring++) {
		struct nvemu_backing *b = NULL;
		struct iovec iov[2] = {{.iov_base = wbuf, .iov_len = 4096},
				       {.iov_base = bad, .iov_len = 4096}};

		REQUIRE(nvemu_backing_open(&b, path, SIZE, uring) == 0);
		for (unsigned first = 0; first < 2; first++) {
			int res = 12345, rc;

			memset(&reaped, 0, sizeof(reaped));
			rc =
			    nvemu_backing_rw(b, true, 0, iov + first, 2 - first, &cookies[3], &res);
			if (rc == 0) {
				nvemu_backing_reap(b, done, &reaped);
				CHECK_EQ(reaped.calls[3], 1);
				res = reaped.res[3];
			}
			CHECK_EQ(res, -EFAULT);
		}
		nvemu_backing_close(b);
	}
	unlink(path);
	munmap(bad, 4096);
}

static void test_errors(void)
{
	struct nvemu_backing *b = NULL;
	char path[4096], missing[4200];

	udrv_err_clear();
	CHECK_EQ(nvemu_backing_open(&b, NULL, 0, false), -EINVAL);
	CHECK(udrv_errmsg()[0] != '\0');
	CHECK(b == NULL);

	tmp_path(path, sizeof(path));
	for (int uring = 0; uring < 2; uring++) {
		udrv_err_clear();
		CHECK_EQ(nvemu_backing_open(&b, path, 0, uring), -EINVAL);
		CHECK(strstr(udrv_errmsg(), "empty") != NULL);
		CHECK(b == NULL);
	}

	/* Without a size a missing file is not created. */
	snprintf(missing, sizeof(missing), "%s.missing", path);
	udrv_err_clear();
	CHECK_EQ(nvemu_backing_open(&b, missing, 0, false), -ENOENT);
	CHECK(udrv_errmsg()[0] != '\0');
	CHECK(access(missing, F_OK) != 0);
	unlink(path);

	/* A directory or a character device is no disk. */
	udrv_err_clear();
	CHECK(nvemu_backing_open(&b, "/", SIZE, false) < 0);
	CHECK(udrv_errmsg()[0] != '\0');
	udrv_err_clear();
	CHECK_EQ(nvemu_backing_open(&b, "/dev/null", SIZE, false), -EINVAL);
	CHECK(udrv_errmsg()[0] != '\0');
	CHECK(b == NULL);
}

/* As in a container whose seccomp profile forbids io_uring: open() fails and says what to
 * do. In a child, since the filter cannot be removed. */
static void test_uring_unavailable(void)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	char path[4096];
	int status;
	pid_t pid;

	tmp_path(path, sizeof(path));
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct nvemu_backing *b = NULL;
		int rc;

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
			_exit(2);
		rc = nvemu_backing_open(&b, path, SIZE, true);
		_exit(rc == -EPERM && b == NULL && strstr(udrv_errmsg(), "--io-uring") ? 0 : 1);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	if (WEXITSTATUS(status) == 2)
		fprintf(stderr, "seccomp unavailable; skipped\n");
	else
		CHECK_EQ(WEXITSTATUS(status), 0);
	unlink(path);
}

int main(void)
{
	/* keep the recorded messages off stderr */
	udrv_log_set_level(UDRV_LOG_ERR);
	RUN(test_ram);
	RUN(test_file_sync);
	RUN(test_file_uring);
	RUN(test_uring_queue_full);
	RUN(test_errors);
	RUN(test_uring_unavailable);
	/* last: valgrind reports its deliberately unreadable buffer */
	RUN(test_file_fault);
	return test_done();
}
