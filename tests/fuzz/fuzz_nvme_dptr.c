/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: nvemu_dptr_resolve() (src/emu/nvme/dptr.c) on an arbitrary command and
 * arbitrary host memory.
 *
 * Input: a 64-byte submission queue entry, a 4-byte little-endian transfer length (taken
 * modulo NVEMU_MAX_XFER, plus 1), then host memory placed at iova MEM_BASE (PRP lists and
 * SGL segments are read from there; anything else is unreadable). Each input is resolved
 * twice, as a Read (controller writes host memory) and as a Write, checking:
 *   - lists are read only from the fake memory's exact bounds (ASan sees the memory as a
 *     heap block of exactly that size) and the total read is bounded;
 *   - success: 1..NVEMU_MAX_SEGS segments, none empty, lengths summing to len and d.len,
 *     no range wrapping past 2^64, bit buckets only for reads;
 *   - failure: no segments, and a Generic Command Status that resolve may return.
 * Successful resolutions are also copied through nvemu_dptr_iov()/nvemu_dptr_copy() with
 * stand-ins for the vfio-user DMA functions over the same memory (tests/fake_dma_mem.c).
 *
 * Build (links dptr.c, log.c and the fake memory's DMA stand-ins only, not libudrv):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc -Itests \
 *     tests/fuzz/fuzz_nvme_dptr.c tests/fake_dma_mem.c src/emu/nvme/dptr.c src/core/log.c \
 *     -o fuzz_nvme_dptr
 *   ./fuzz_nvme_dptr -max_total_time=60 tests/fuzz/corpus/nvme_dptr
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/nvme/nvme_emu.h"
#include "fake_dma_mem.h"

#define MEM_BASE 0x1000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t bytes_read;

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "fuzz_nvme_dptr: " __VA_ARGS__);                                   \
		fputc('\n', stderr);                                                               \
		abort();                                                                           \
	} while (0)

static int fake_read(void *ctx, uint64_t iova, void *buf, size_t len)
{
	(void)ctx;
	if (len == 0)
		FAIL("read of 0 bytes at %#llx", (unsigned long long)iova);
	bytes_read += len;
	if (!fake_mem_has(iova, len))
		return -EFAULT;
	memcpy(buf, fake_mem + (iova - MEM_BASE), len);
	return 0;
}

static bool expected_status(uint16_t st)
{
	if (NVME_STATUS_SCT(st) != NVME_SCT_GENERIC || (st & ~(uint16_t)0x7ff))
		return false;
	switch (NVME_STATUS_SC(st)) {
	case NVME_SC_INVALID_FIELD:
	case NVME_SC_DATA_XFER_ERROR:
	case NVME_SC_SGL_INVALID_LAST:
	case NVME_SC_SGL_INVALID_COUNT:
	case NVME_SC_SGL_INVALID_DATA:
	case NVME_SC_SGL_INVALID_TYPE:
	case NVME_SC_PRP_INVALID_OFFSET:
		return true;
	default:
		return false;
	}
}

static struct nvemu_dptr d;
static uint8_t buf[NVEMU_MAX_XFER], scratch[NVEMU_MAX_XFER];
static struct iovec iov[NVEMU_MAX_SEGS];

static void one(const struct nvme_sqe *cmd, uint64_t len, bool write)
{
	uint64_t sum = 0;
	uint16_t st;

	memset(&d, 0xa5, sizeof(d));
	bytes_read = 0;
	st = nvemu_dptr_resolve(cmd, len, write, fake_read, NULL, &d);
	/* PRP: at most two list pages; SGL: at most 4096 descriptors */
	if (bytes_read > 4096u * 16u)
		FAIL("read %llu bytes of lists", (unsigned long long)bytes_read);
	if (st) {
		if (!expected_status(st))
			FAIL("unexpected status %#x", st);
		if (d.n != 0 || d.len != 0)
			FAIL("failure with n %u len %llu", d.n, (unsigned long long)d.len);
		return;
	}
	if (d.n == 0 || d.n > NVEMU_MAX_SEGS)
		FAIL("n %u", d.n);
	for (unsigned i = 0; i < d.n; i++) {
		const struct nvemu_seg *s = &d.seg[i];

		if (s->len == 0)
			FAIL("segment %u empty", i);
		if (s->bucket && !write)
			FAIL("bit bucket in a write");
		if (!s->bucket && s->iova + s->len <= s->iova)
			FAIL("segment %u wraps: %#llx+%u", i, (unsigned long long)s->iova, s->len);
		sum += s->len;
	}
	if (sum != len || d.len != len)
		FAIL("sum %llu d.len %llu len %llu", (unsigned long long)sum,
		     (unsigned long long)d.len, (unsigned long long)len);

	/* Move the data (stand-ins over the fake memory): must not crash or overrun. */
	if (nvemu_dptr_iov(NULL, &d, write, scratch, iov) == d.n) {
		for (unsigned i = 0; i < d.n; i++)
			if (iov[i].iov_len != d.seg[i].len)
				FAIL("iov %u length", i);
	}
	(void)nvemu_dptr_copy(NULL, &d, buf, write);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvme_sqe cmd;
	uint32_t v;
	uint64_t len;

	if (size < sizeof(cmd) + 4)
		return 0;
	memcpy(&cmd, data, sizeof(cmd));
	memcpy(&v, data + sizeof(cmd), 4);
	len = 1 + (uint64_t)(v % NVEMU_MAX_XFER);
	fake_mem_base = MEM_BASE;
	fake_mem_size = size - sizeof(cmd) - 4;
	fake_mem = malloc(fake_mem_size ? fake_mem_size : 1);
	if (!fake_mem)
		return 0;
	memcpy(fake_mem, data + sizeof(cmd) + 4, fake_mem_size);
	one(&cmd, len, true);
	memcpy(fake_mem, data + sizeof(cmd) + 4, fake_mem_size); /* the copy may have written it */
	one(&cmd, len, false);
	free(fake_mem);
	fake_mem = NULL;
	return 0;
}
