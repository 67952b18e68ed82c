/* SPDX-License-Identifier: BSD-3-Clause */
/* DMA chunks, domains (IOVA assignment, mapper fan-out, O(1) translation) and the heap. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <udrv/dma.h>
#include <udrv/log.h>

#include "core/dma_internal.h"
#include "test.h"

#define SZ_2M (2ull << 20)

/* A mapper that records what the domain asks of it, standing in for a VFIO container. */
struct fake_mapper {
	int maps, unmaps;
	int fail_after; /* fail the map call after this many successes; -1: never */
	struct udrv_dma_segment last;
	size_t mapped_bytes;
};

static int fake_map(void *ctx, const struct udrv_dma_segment *seg)
{
	struct fake_mapper *f = ctx;

	if (f->fail_after >= 0 && f->maps >= f->fail_after)
		return -ENOMEM;
	f->maps++;
	f->last = *seg;
	f->mapped_bytes += seg->len;
	return 0;
}

static int fake_unmap(void *ctx, const struct udrv_dma_segment *seg)
{
	struct fake_mapper *f = ctx;

	f->unmaps++;
	f->mapped_bytes -= seg->len;
	return 0;
}

static const struct udrv_dma_mapper_ops fake_ops = {"fake", fake_map, fake_unmap};
static const struct udrv_dma_mapper_ops fake_ops2 = {"fake2", fake_map, fake_unmap};

static void test_mem_alloc(void)
{
	struct udrv_dma_mem *m = udrv_dma_mem_alloc(5000, UDRV_DMA_NOHUGE);
	unsigned char *p;

	REQUIRE(m);
	CHECK_EQ(udrv_dma_mem_page_size(m), 4096);
	CHECK_EQ(udrv_dma_mem_size(m), 8192);
	CHECK(udrv_dma_mem_fd(m) >= 0);
	p = udrv_dma_mem_va(m);
	CHECK_EQ((uintptr_t)p % SZ_2M, 0);
	CHECK_EQ(p[0] | p[8191], 0);
	p[100] = 0xab;
	/* Same pages through the fd, as another process or a vfio-user server would see them. */
	unsigned char byte = 0;
	CHECK_EQ(pread(udrv_dma_mem_fd(m), &byte, 1, 100), 1);
	CHECK_EQ(byte, 0xab);
	CHECK_EQ(udrv_dma_mem_lock(m), 0);
	udrv_dma_mem_free(m);

	CHECK(udrv_dma_mem_alloc(0, 0) == NULL && errno == EINVAL);
	CHECK(udrv_dma_mem_alloc(4096, UDRV_DMA_HUGE | UDRV_DMA_NOHUGE) == NULL);
}

static long read_long(const char *path)
{
	long v = -1;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fprintf(f, "%ld\n", v);
		fclose(f);
	}
}

/* With no hugepages reserved, UDRV_DMA_HUGE fails and says what to run; default falls back.
 * As root, reserve two pages for a moment to exercise the hugetlb path, then restore. */
static void test_hugepages(void)
{
	const char *nr = "/proc/sys/vm/nr_hugepages";
	long before = read_long(nr);
	struct udrv_dma_mem *m;

	if (read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") == 0) {
		m = udrv_dma_mem_alloc(SZ_2M, UDRV_DMA_HUGE);
		CHECK(m == NULL && errno == ENOMEM);
		CHECK(strstr(udrv_errmsg(), "nr_hugepages") != NULL);
		m = udrv_dma_mem_alloc(SZ_2M, 0);
		CHECK(m && udrv_dma_mem_page_size(m) == 4096);
		udrv_dma_mem_free(m);
	}
	if (geteuid() != 0 || before < 0)
		return;
	write_long(nr, before + 2);
	if (read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") >= 2) {
		m = udrv_dma_mem_alloc(100, UDRV_DMA_HUGE);
		CHECK(m != NULL);
		if (m) {
			CHECK_EQ(udrv_dma_mem_page_size(m), SZ_2M);
			CHECK_EQ(udrv_dma_mem_size(m), SZ_2M);
			memset(udrv_dma_mem_va(m), 1, SZ_2M);
			udrv_dma_mem_free(m);
		}
	} else {
		fprintf(stderr, "note: could not reserve hugepages here; hugetlb path skipped\n");
	}
	write_long(nr, before);
}

/* An ordinary user with a small RLIMIT_MEMLOCK gets a sentence naming the fix. */
static void test_lock_limit(void)
{
	pid_t pid = fork();
	int status = 0;

	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {64 << 10, 64 << 10};
		struct udrv_dma_mem *m;

		setrlimit(RLIMIT_MEMLOCK, &rl);
		/* root has CAP_IPC_LOCK, which ignores the limit: become nobody first */
		if (geteuid() == 0 && setuid(65534) < 0)
			_exit(3);
		m = udrv_dma_mem_alloc(1 << 20, UDRV_DMA_NOHUGE | UDRV_DMA_LOCK);
		if (m)
			_exit(1);
		if (errno != ENOMEM || !strstr(udrv_errmsg(), "ulimit -l")) {
			fprintf(stderr, "errno %d msg '%s'\n", errno, udrv_errmsg());
			_exit(2);
		}
		_exit(0);
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "child status 0x%x\n", status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_domain_iova(void)
{
	struct fake_mapper f = {.fail_after = -1};
	struct udrv_dma_domain *d = udrv_dma_domain_create();
	struct udrv_dma_range r = {0x200000000ull, 0x3ffffffffull};
	struct udrv_dma_mem *a = udrv_dma_mem_alloc(3 * SZ_2M + 4096, UDRV_DMA_NOHUGE);
	struct udrv_dma_mem *b = udrv_dma_mem_alloc(8192, UDRV_DMA_NOHUGE);
	char *pa, *pb;
	uint64_t ia, ib;

	REQUIRE(d && a && b);
	pa = udrv_dma_mem_va(a);
	pb = udrv_dma_mem_va(b);
	CHECK_STR(udrv_dma_domain_mode(d), "unset");
	/* Added before any device: no IOVA yet. */
	CHECK_EQ(udrv_dma_domain_add(d, a), 0);
	CHECK(udrv_dma_iova(d, pa) == UDRV_DMA_IOVA_INVALID);
	CHECK_EQ(udrv_dma_domain_add(d, a), -EEXIST);

	CHECK_EQ(udrv_dma_domain_attach(d, UDRV_DMA_MODE_IOVA, &fake_ops, &f, &r, 1), 0);
	CHECK_STR(udrv_dma_domain_mode(d), "iova");
	CHECK_EQ(f.maps, 1);
	ia = udrv_dma_iova(d, pa);
	CHECK(ia >= r.start && ia + udrv_dma_mem_size(a) - 1 <= r.end);
	CHECK_EQ(ia % SZ_2M, 0);
	CHECK(f.last.va == pa && f.last.iova == ia && f.last.fd == udrv_dma_mem_fd(a));
	/* Every byte translates linearly: leaves for the full 2 MiB blocks, 4 KiB at the tail. */
	for (size_t off = 0; off < udrv_dma_mem_size(a); off += 4093)
		CHECK(udrv_dma_iova(d, pa + off) == ia + off);
	CHECK_EQ(udrv_dma_contig(d, pa + 10, udrv_dma_mem_size(a) - 10), udrv_dma_mem_size(a) - 10);
	CHECK(udrv_dma_iova(d, pa + udrv_dma_mem_size(a)) == UDRV_DMA_IOVA_INVALID);
	CHECK(udrv_dma_iova(d, (void *)0x1000) == UDRV_DMA_IOVA_INVALID);
	CHECK(udrv_dma_iova(d, (void *)~0ull) == UDRV_DMA_IOVA_INVALID);

	/* Added after: mapped at once, no IOVA overlap. */
	CHECK_EQ(udrv_dma_domain_add(d, b), 0);
	CHECK_EQ(f.maps, 2);
	ib = udrv_dma_iova(d, pb);
	CHECK(ib != UDRV_DMA_IOVA_INVALID);
	CHECK(ib >= ia + udrv_dma_mem_size(a) || ib + 8192 <= ia);
	CHECK(udrv_dma_iova(d, pb + 8191) == ib + 8191);

	/* Narrowing: refused when a mapped chunk falls outside, honoured for new chunks. */
	struct udrv_dma_range away = {0x1000000000ull, 0x1fffffffffull};
	CHECK_EQ(udrv_dma_domain_restrict(d, &away, 1), -ENOSPC);
	CHECK_EQ(udrv_dma_domain_restrict(d, &r, 1), 0);

	/* A second mapper (another container) gets both chunks, at the same IOVAs. */
	struct fake_mapper g = {.fail_after = -1};
	CHECK_EQ(udrv_dma_domain_attach(d, UDRV_DMA_MODE_IOVA, &fake_ops2, &g, NULL, 0), 0);
	CHECK_EQ(g.maps, 2);
	CHECK(udrv_dma_domain_find_mapper(d, &fake_ops2) == &g);
	CHECK_EQ(udrv_dma_domain_nr_mappers(d), 2);

	/* A UIO device cannot join an IOMMU domain. */
	struct fake_mapper h = {.fail_after = -1};
	CHECK_EQ(udrv_dma_domain_attach(d, UDRV_DMA_MODE_PHYS, &fake_ops2, &h, NULL, 0), -EINVAL);
	CHECK(strstr(udrv_errmsg(), "domain of its own") != NULL);

	/* A map failure in the second mapper is rolled back in the first. */
	struct udrv_dma_mem *c = udrv_dma_mem_alloc(4096, UDRV_DMA_NOHUGE);
	g.fail_after = g.maps;
	int fmaps = f.maps, funmaps = f.unmaps;
	CHECK(udrv_dma_domain_add(d, c) < 0);
	CHECK(udrv_dma_iova(d, udrv_dma_mem_va(c)) == UDRV_DMA_IOVA_INVALID);
	CHECK_EQ(f.maps - fmaps, f.unmaps - funmaps);
	g.fail_after = -1;
	udrv_dma_mem_free(c);

	udrv_dma_domain_detach(d, &fake_ops2, &g);
	CHECK_EQ(g.mapped_bytes, 0);
	CHECK_EQ(udrv_dma_domain_remove(d, a), 0);
	CHECK(udrv_dma_iova(d, pa) == UDRV_DMA_IOVA_INVALID);
	CHECK_EQ(udrv_dma_domain_remove(d, a), -ENOENT);
	udrv_dma_domain_destroy(d);
	CHECK_EQ(f.mapped_bytes, 0); /* b was unmapped by destroy */
	udrv_dma_mem_free(a);
	udrv_dma_mem_free(b);
}

/* Under UIO the IOVA is the physical address from pagemap (root only). */
static void test_domain_phys(void)
{
	const char *compact = "/proc/sys/vm/compact_unevictable_allowed";
	struct fake_mapper f = {.fail_after = -1};
	struct udrv_dma_domain *d;
	struct udrv_dma_mem *m;
	long compact_before = read_long(compact);
	char *p;
	int err = 0;

	if (geteuid() != 0) {
		fprintf(stderr, "note: not root; physical-address mode skipped\n");
		return;
	}
	d = udrv_dma_domain_create();
	m = udrv_dma_mem_alloc(64 * 4096, UDRV_DMA_NOHUGE);
	REQUIRE(d && m);
	p = udrv_dma_mem_va(m);
	CHECK_EQ(udrv_dma_domain_attach(d, UDRV_DMA_MODE_PHYS, &fake_ops, &f, NULL, 0), 0);
	/* Locked 4 KiB pages can still be migrated by compaction: refused, with the fix. */
	if (compact_before != 0) {
		CHECK_EQ(udrv_dma_domain_add(d, m), -ENOMEM);
		CHECK(strstr(udrv_errmsg(), "nr_hugepages") != NULL);
		CHECK(udrv_dma_iova(d, p) == UDRV_DMA_IOVA_INVALID);
		write_long(compact, 0);
	}
	CHECK_EQ(udrv_dma_domain_add(d, m), 0);
	for (int i = 0; i < 64; i++) {
		uint64_t phys = udrv_dma_virt_to_phys(p + i * 4096 + 12, &err);
		CHECK(phys != 0);
		CHECK(udrv_dma_iova(d, p + i * 4096 + 12) == phys);
	}
	/* contig() stops exactly where the physical pages stop being adjacent. */
	size_t run = udrv_dma_contig(d, p, 64 * 4096);
	CHECK(run >= 4096 && run % 4096 == 0);
	if (run < 64 * 4096)
		CHECK(udrv_dma_iova(d, p + run) != udrv_dma_iova(d, p) + run);

	void *x = udrv_dma_zalloc(d, 512, 512, NULL);
	CHECK(x != NULL);
	udrv_dma_free(d, x);
	udrv_dma_domain_remove(d, m);
	udrv_dma_domain_destroy(d);
	udrv_dma_mem_free(m);
	if (compact_before != 0)
		write_long(compact, compact_before);

	/* With hugepages reserved, physical mode needs no sysctl: 2 MiB runs are contiguous. */
	const char *nr = "/proc/sys/vm/nr_hugepages";
	long before = read_long(nr);
	write_long(nr, before + 2);
	m = udrv_dma_mem_alloc(SZ_2M, UDRV_DMA_HUGE);
	if (m) {
		struct fake_mapper g = {.fail_after = -1};
		d = udrv_dma_domain_create();
		REQUIRE(d);
		CHECK_EQ(udrv_dma_domain_attach(d, UDRV_DMA_MODE_PHYS, &fake_ops, &g, NULL, 0), 0);
		CHECK_EQ(udrv_dma_domain_add(d, m), 0);
		p = udrv_dma_mem_va(m);
		CHECK_EQ(udrv_dma_iova(d, p) % SZ_2M, 0);
		CHECK_EQ(udrv_dma_contig(d, p, SZ_2M), SZ_2M);
		CHECK(udrv_dma_iova(d, p + 123456) == udrv_dma_virt_to_phys(p + 123456, &err));
		udrv_dma_domain_remove(d, m);
		udrv_dma_domain_destroy(d);
		udrv_dma_mem_free(m);
	} else {
		fprintf(stderr,
			"note: could not reserve hugepages; hugepage physical mode skipped\n");
	}
	write_long(nr, before);
}

/* A failed attach undoes only what it did: memory of an earlier device keeps its IOVAs, and
 * the domain's ranges are as before. */
static void test_attach_rollback(void)
{
	struct fake_mapper a = {.fail_after = -1}, bad = {.fail_after = 0};
	struct udrv_dma_domain *d = udrv_dma_domain_create();
	struct udrv_dma_range narrow = {0x200000000ull, 0x3ffffffffull};
	struct udrv_dma_range other = {0x100000000ull, 0x1ffffffffull};
	uint64_t iova;
	void *q;

	REQUIRE(d);
	CHECK_EQ(udrv_dma_domain_attach(d, UDRV_DMA_MODE_IOVA, &fake_ops, &a, NULL, 0), 0);
	q = udrv_dma_zalloc(d, 4096, 4096, &iova);
	REQUIRE(q);
	udrv_dma_domain_detach(d, &fake_ops, &a);
	CHECK(udrv_dma_domain_attach(d, UDRV_DMA_MODE_IOVA, &fake_ops2, &bad, &narrow, 1) < 0);
	CHECK(udrv_dma_iova(d, q) == iova); /* still valid, unchanged */
	CHECK_STR(udrv_dma_domain_mode(d), "iova");
	/* The failed attach's narrowing was undone: a range disjoint from it still works. */
	struct fake_mapper c = {.fail_after = -1};
	CHECK_EQ(udrv_dma_domain_attach(d, UDRV_DMA_MODE_IOVA, &fake_ops2, &c, &other, 1), 0);
	CHECK_EQ(c.maps, 1);
	udrv_dma_free(d, q);
	udrv_dma_domain_detach(d, &fake_ops2, &c);
	udrv_dma_domain_destroy(d);
}

/* The domain lives while someone holds a reference (a device, a mempool). */
static void test_refcount(void)
{
	struct fake_mapper a = {.fail_after = -1};
	struct udrv_dma_domain *d = udrv_dma_domain_create();
	void *q;

	REQUIRE(d);
	CHECK_EQ(udrv_dma_domain_attach(d, UDRV_DMA_MODE_IOVA, &fake_ops, &a, NULL, 0), 0);
	udrv_dma_domain_get(d);
	udrv_dma_domain_destroy(d);	      /* the creator's reference */
	q = udrv_dma_zalloc(d, 100, 0, NULL); /* still alive: one reference left */
	CHECK(q != NULL);
	udrv_dma_free(d, q);
	udrv_dma_domain_detach(d, &fake_ops, &a);
	udrv_dma_domain_destroy(d); /* the last: frees (ASan checks) */
}

static void test_heap(void)
{
	struct fake_mapper f = {.fail_after = -1};
	struct udrv_dma_domain *d = udrv_dma_domain_create();
	void *v[64];
	uint64_t iova;

	REQUIRE(d);
	CHECK(udrv_dma_zalloc(d, 4096, 4096, &iova) == NULL && errno == EINVAL);
	CHECK(strstr(udrv_errmsg(), "open a device") != NULL);
	CHECK_EQ(udrv_dma_domain_attach(d, UDRV_DMA_MODE_IOVA, &fake_ops, &f, NULL, 0), 0);
	for (int i = 0; i < 64; i++) {
		size_t size = (size_t)(i % 7 + 1) * 1000;
		size_t align = (size_t)1 << (6 + i % 7);
		v[i] = udrv_dma_zalloc(d, size, align, &iova);
		REQUIRE(v[i]);
		CHECK_EQ((uintptr_t)v[i] % align, 0);
		CHECK(iova == udrv_dma_iova(d, v[i]));
		CHECK_EQ(udrv_dma_contig(d, v[i], size), size);
		for (size_t k = 0; k < size; k++)
			if (((unsigned char *)v[i])[k]) {
				CHECK(!"heap memory not zeroed");
				break;
			}
		memset(v[i], 0x5a, size);
		for (int j = 0; j < i; j++)
			CHECK(v[j] != v[i]);
	}
	for (int i = 0; i < 64; i += 2)
		udrv_dma_free(d, v[i]);
	/* Freed room is reused and zeroed again. */
	void *again = udrv_dma_zalloc(d, 1000, 64, NULL);
	CHECK(again != NULL && ((unsigned char *)again)[999] == 0);
	udrv_dma_free(d, again);
	for (int i = 1; i < 64; i += 2)
		udrv_dma_free(d, v[i]);
	/* A large allocation gets a chunk of its own. */
	void *big = udrv_dma_zalloc(d, 5 * SZ_2M, SZ_2M, &iova);
	CHECK(big && (uintptr_t)big % SZ_2M == 0 &&
	      udrv_dma_contig(d, big, 5 * SZ_2M) == 5 * SZ_2M);
	udrv_dma_free(d, big);
	CHECK(udrv_dma_zalloc(d, 100, 3, NULL) == NULL && errno == EINVAL);
	udrv_dma_free(d, (void *)&f); /* not ours: warned and ignored */
	udrv_dma_domain_destroy(d);
	CHECK_EQ(f.mapped_bytes, 0);
}

int main(void)
{
	udrv_log_set_level(UDRV_LOG_ERR);
	RUN(test_mem_alloc);
	RUN(test_hugepages);
	RUN(test_lock_limit);
	RUN(test_domain_iova);
	RUN(test_domain_phys);
	RUN(test_attach_rollback);
	RUN(test_refcount);
	RUN(test_heap);
	return test_done();
}
