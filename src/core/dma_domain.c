/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DMA domains: which chunks a set of devices may reach, at which IOVAs, and the O(1)
 * translation from virtual address to IOVA.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dma_domain_internal.h"
#include "dma_mem_internal.h"
#include "log_internal.h"

#define SZ_2M (2ull << 20)
#define SZ_4K 4096ull
/* Without ranges from the IOMMU: above the 32-bit MMIO/MSI window (0xfee00000 on x86) and
 * below 2^39, the smallest address width of Intel VT-d (QEMU's intel-iommu default). */
#define DEFAULT_IOVA_START (1ull << 32)
#define DEFAULT_IOVA_END   ((1ull << 39) - 1)

struct udrv_dma_domain *udrv_dma_domain_create(void)
{
	struct udrv_dma_domain *d = calloc(1, sizeof(*d));

	if (!d)
		return udrv_err_null(ENOMEM, "out of memory");
	if (dma_map_init(&d->map) < 0) {
		free(d);
		return udrv_err_null(ENOMEM, "out of memory for the IOVA table");
	}
	pthread_mutex_init(&d->lock, NULL);
	d->refs = 1;
	d->ranges[0].start = DEFAULT_IOVA_START;
	d->ranges[0].end = DEFAULT_IOVA_END;
	d->nr_ranges = 1;
	return d;
}

static struct dom_chunk *find_chunk(struct udrv_dma_domain *d, const struct udrv_dma_mem *mem)
{
	for (struct dom_chunk *c = d->chunks; c; c = c->next)
		if (c->mem == mem)
			return c;
	return NULL;
}

static void chunk_segment(const struct dom_chunk *c, struct udrv_dma_segment *seg)
{
	seg->va = c->mem->va;
	seg->iova = c->iova;
	seg->len = c->mem->size;
	seg->fd = c->mem->fd;
	seg->fd_off = 0;
}

/* Lowest 2 MiB-aligned IOVA where size bytes fit inside an allowed range without touching
 * another chunk. Chunks are few (tens), so a quadratic scan is fine on this slow path. */
static int alloc_iova(struct udrv_dma_domain *d, size_t size, uint64_t *out)
{
	for (unsigned r = 0; r < d->nr_ranges; r++) {
		uint64_t start = d->ranges[r].start, end = d->ranges[r].end;
		uint64_t cand = (start + SZ_2M - 1) & ~(SZ_2M - 1);

		if (cand == 0)
			cand = SZ_2M; /* IOVA 0 looks like a NULL pointer in every dump */
		for (;;) {
			bool moved = false;
			if (cand + size - 1 > end || cand + size < cand)
				break;
			for (struct dom_chunk *c = d->chunks; c; c = c->next) {
				if (!c->mapped || d->mode != UDRV_DMA_MODE_IOVA)
					continue;
				if (cand < c->iova + c->mem->size && c->iova < cand + size) {
					cand = (c->iova + c->mem->size + SZ_2M - 1) & ~(SZ_2M - 1);
					moved = true;
				}
			}
			if (!moved) {
				*out = cand;
				return 0;
			}
		}
	}
	return -ENOSPC;
}

static uint64_t xlate_linear(void *ctx, uintptr_t va)
{
	const struct dom_chunk *c = ctx;

	return c->iova + (va - (uintptr_t)c->mem->va);
}

struct phys_ctx {
	const struct dom_chunk *c;
	const uint64_t *pfn; /* per 4 KiB page */
};

static uint64_t xlate_phys(void *ctx, uintptr_t va)
{
	const struct phys_ctx *p = ctx;
	size_t page = (va - (uintptr_t)p->c->mem->va) / SZ_4K;

	return p->pfn[page] * SZ_4K;
}

/* Read the page frame numbers of [va, va+len) from /proc/self/pagemap (Linux
 * Documentation/admin-guide/mm/pagemap.rst: bit 63 present, bits 0-54 PFN). */
static int read_pfns(const void *va, size_t len, uint64_t *pfn)
{
	size_t n = len / SZ_4K;
	off_t off = (off_t)((uintptr_t)va / SZ_4K * sizeof(uint64_t));
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (fd < 0)
		return udrv_err(errno, "cannot open /proc/self/pagemap: %s", strerror(errno));
	got = pread(fd, pfn, n * sizeof(uint64_t), off);
	close(fd);
	if (got != (ssize_t)(n * sizeof(uint64_t)))
		return udrv_err(EIO, "short read from /proc/self/pagemap");
	for (size_t i = 0; i < n; i++) {
		if (!(pfn[i] >> 63))
			return udrv_err(EFAULT, "DMA page %p is not resident",
					(const char *)va + i * SZ_4K);
		pfn[i] &= (1ull << 55) - 1;
		if (pfn[i] == 0)
			return udrv_err(EPERM, "physical addresses are hidden from this process: "
					       "UIO needs root (CAP_SYS_ADMIN); run as root, or "
					       "use vfio-pci with the IOMMU on");
	}
	return 0;
}

uint64_t udrv_dma_virt_to_phys(const void *va, int *err)
{
	uint64_t pfn;
	int rc = read_pfns((const void *)((uintptr_t)va & ~(SZ_4K - 1)), SZ_4K, &pfn);

	if (rc < 0) {
		if (err)
			*err = rc;
		return 0;
	}
	return pfn * SZ_4K + ((uintptr_t)va & (SZ_4K - 1));
}

/*
 * Without an IOMMU the device keeps using the physical addresses it was given, so they must not
 * change. mlock() does not guarantee that for ordinary pages: memory compaction migrates locked
 * pages unless vm.compact_unevictable_allowed is 0 (Documentation/admin-guide/sysctl/vm.rst).
 * Hugetlb pages are not compacted. Memory hot-unplug can still move them, as DPDK accepts too.
 */
static int phys_pages_ok(const struct udrv_dma_mem *m)
{
	char v = '1';
	int fd;

	if (m->page_size >= SZ_2M)
		return 0;
	fd = open("/proc/sys/vm/compact_unevictable_allowed", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &v, 1) != 1)
			v = '1';
		close(fd);
	}
	if (v == '0')
		return 0;
	return udrv_err(ENOMEM,
			"UIO needs DMA memory whose physical addresses cannot move, and no 2 MiB "
			"hugepage was free: reserve some with `echo 64 > "
			"/proc/sys/vm/nr_hugepages` (or, less safely, `sysctl "
			"vm.compact_unevictable_allowed=0`)");
}

/* Give c its IOVAs and record them in the table (mode known, not yet mapped to devices). */
static int realize(struct udrv_dma_domain *d, struct dom_chunk *c)
{
	struct udrv_dma_mem *m = c->mem;
	int rc;

	if (d->mode == UDRV_DMA_MODE_IOVA) {
		rc = alloc_iova(d, m->size, &c->iova);
		if (rc < 0)
			return udrv_err(ENOSPC, "no IOVA space left for %zu bytes of DMA memory",
					m->size);
		rc = dma_map_set(&d->map, (uintptr_t)m->va, m->size, SZ_2M, xlate_linear, c);
	} else {
		struct phys_ctx p = {.c = c};
		uint64_t *pfn;

		bool was_locked = m->locked;

		rc = phys_pages_ok(m);
		if (rc < 0)
			return rc;
		rc = udrv_dma_mem_lock(m);
		if (rc < 0)
			return rc;
		pfn = malloc(m->size / SZ_4K * sizeof(*pfn));
		if (!pfn)
			rc = udrv_err(ENOMEM, "out of memory");
		if (pfn)
			rc = read_pfns(m->va, m->size, pfn);
		if (rc == 0) {
			p.pfn = pfn;
			c->iova = pfn[0] * SZ_4K;
			rc = dma_map_set(&d->map, (uintptr_t)m->va, m->size, m->page_size,
					 xlate_phys, &p);
		}
		free(pfn);
		if (rc < 0 && !was_locked)
			udrv_dma_mem_unlock(m);
	}
	if (rc < 0)
		return rc == -ENOMEM ? udrv_err(ENOMEM, "out of memory for the IOVA table") : rc;
	c->mapped = true;
	return 0;
}

static void unrealize(struct udrv_dma_domain *d, struct dom_chunk *c)
{
	if (!c->mapped)
		return;
	dma_map_clear(&d->map, (uintptr_t)c->mem->va, c->mem->size, c->mem->page_size);
	c->mapped = false;
}

/* Map c into every mapper; undo on failure. */
static int map_all(struct udrv_dma_domain *d, struct dom_chunk *c)
{
	struct udrv_dma_segment seg;
	struct dom_mapper *mp;
	int rc = 0;

	chunk_segment(c, &seg);
	for (mp = d->mappers; mp; mp = mp->next) {
		rc = mp->ops->map(mp->ctx, &seg);
		if (rc < 0)
			break;
	}
	if (rc < 0)
		for (struct dom_mapper *u = d->mappers; u != mp; u = u->next)
			u->ops->unmap(u->ctx, &seg);
	return rc;
}

static void unmap_all(struct udrv_dma_domain *d, struct dom_chunk *c)
{
	struct udrv_dma_segment seg;

	chunk_segment(c, &seg);
	for (struct dom_mapper *mp = d->mappers; mp; mp = mp->next)
		mp->ops->unmap(mp->ctx, &seg);
}

int dma_domain_add_locked(struct udrv_dma_domain *d, struct udrv_dma_mem *mem)
{
	struct dom_chunk *c;
	int rc;

	if (find_chunk(d, mem) || dma_map_any(&d->map, (uintptr_t)mem->va, mem->size))
		return udrv_err(EEXIST, "DMA memory at %p is already in this domain", mem->va);
	c = calloc(1, sizeof(*c));
	if (!c)
		return udrv_err(ENOMEM, "out of memory");
	c->mem = mem;
	if (d->mode != UDRV_DMA_MODE_UNSET) {
		rc = realize(d, c);
		if (rc == 0) {
			rc = map_all(d, c);
			if (rc < 0)
				unrealize(d, c);
		}
		if (rc < 0) {
			free(c);
			return rc;
		}
	}
	c->next = d->chunks;
	d->chunks = c;
	return 0;
}

int udrv_dma_domain_add(struct udrv_dma_domain *d, struct udrv_dma_mem *mem)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = dma_domain_add_locked(d, mem);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int dma_domain_remove_locked(struct udrv_dma_domain *d, struct udrv_dma_mem *mem)
{
	struct dom_chunk **pp, *c;

	for (pp = &d->chunks; *pp && (*pp)->mem != mem; pp = &(*pp)->next)
		;
	c = *pp;
	if (!c)
		return udrv_err(ENOENT, "DMA memory at %p is not in this domain", mem->va);
	if (c->mapped) {
		unmap_all(d, c);
		unrealize(d, c);
	}
	*pp = c->next;
	free(c);
	return 0;
}

int udrv_dma_domain_remove(struct udrv_dma_domain *d, struct udrv_dma_mem *mem)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = dma_domain_remove_locked(d, mem);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* Keep only the parts of the domain's ranges that are inside ranges[]. */
static void intersect_ranges(struct udrv_dma_domain *d, const struct udrv_dma_range *ranges,
			     unsigned nr)
{
	struct udrv_dma_range out[DOM_MAX_RANGES];
	unsigned n = 0;

	for (unsigned i = 0; i < d->nr_ranges; i++)
		for (unsigned j = 0; j < nr && n < DOM_MAX_RANGES; j++) {
			uint64_t s = d->ranges[i].start > ranges[j].start ? d->ranges[i].start
									  : ranges[j].start;
			uint64_t e =
			    d->ranges[i].end < ranges[j].end ? d->ranges[i].end : ranges[j].end;
			if (s <= e)
				out[n++] = (struct udrv_dma_range){s, e};
		}
	memcpy(d->ranges, out, n * sizeof(out[0]));
	d->nr_ranges = n;
}

static bool chunk_in_ranges(const struct udrv_dma_domain *d, const struct dom_chunk *c)
{
	for (unsigned i = 0; i < d->nr_ranges; i++)
		if (c->iova >= d->ranges[i].start && c->iova + c->mem->size - 1 <= d->ranges[i].end)
			return true;
	return false;
}

static int restrict_locked(struct udrv_dma_domain *d, const struct udrv_dma_range *ranges,
			   unsigned nr_ranges)
{
	struct udrv_dma_range saved[DOM_MAX_RANGES];
	unsigned nsaved = d->nr_ranges;
	struct dom_chunk *c;

	memcpy(saved, d->ranges, sizeof(saved));
	intersect_ranges(d, ranges, nr_ranges);
	for (c = d->chunks; c && d->nr_ranges > 0; c = c->next)
		if (c->mapped && d->mode == UDRV_DMA_MODE_IOVA && !chunk_in_ranges(d, c))
			break;
	if (d->nr_ranges == 0 || c) {
		memcpy(d->ranges, saved, sizeof(saved));
		d->nr_ranges = nsaved;
		return udrv_err(ENOSPC, "the device's IOMMU accepts none of the IOVAs this domain "
					"already uses; open it with a DMA domain of its own");
	}
	return 0;
}

int udrv_dma_domain_restrict(struct udrv_dma_domain *d, const struct udrv_dma_range *ranges,
			     unsigned nr_ranges)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = restrict_locked(d, ranges, nr_ranges);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int udrv_dma_domain_attach(struct udrv_dma_domain *d, enum udrv_dma_mode mode,
			   const struct udrv_dma_mapper_ops *ops, void *ctx,
			   const struct udrv_dma_range *ranges, unsigned nr_ranges)
{
	struct dom_mapper *mp;
	struct dom_chunk *c;
	int rc = 0;

	struct udrv_dma_range saved[DOM_MAX_RANGES];
	unsigned nsaved;
	bool set_mode;

	pthread_mutex_lock(&d->lock);
	if (d->mode != UDRV_DMA_MODE_UNSET && d->mode != mode) {
		rc = udrv_err(EINVAL,
			      "this DMA domain holds %s devices; a %s device needs a domain "
			      "of its own (open it without sharing the domain)",
			      d->mode == UDRV_DMA_MODE_IOVA ? "IOMMU or vfio-user" : "UIO",
			      ops->kind);
		goto out;
	}
	mp = calloc(1, sizeof(*mp));
	if (!mp) {
		rc = udrv_err(ENOMEM, "out of memory");
		goto out;
	}
	mp->ops = ops;
	mp->ctx = ctx;
	/* Everything below is undone on failure: the ranges, and the mode with the IOVAs it
	 * gave, but only if this call set them (memory of an earlier device stays valid). */
	memcpy(saved, d->ranges, sizeof(saved));
	nsaved = d->nr_ranges;
	set_mode = d->mode == UDRV_DMA_MODE_UNSET;
	if (ranges && nr_ranges && mode == UDRV_DMA_MODE_IOVA) {
		rc = restrict_locked(d, ranges, nr_ranges);
		if (rc < 0)
			goto fail;
	}
	if (set_mode) {
		d->mode = mode;
		for (c = d->chunks; c && rc == 0; c = c->next)
			rc = realize(d, c);
		if (rc < 0)
			goto fail;
	}
	for (c = d->chunks; c; c = c->next) {
		struct udrv_dma_segment seg;
		chunk_segment(c, &seg);
		rc = ops->map(ctx, &seg);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		for (struct dom_chunk *u = d->chunks; u != c; u = u->next) {
			struct udrv_dma_segment seg;
			chunk_segment(u, &seg);
			ops->unmap(ctx, &seg);
		}
		goto fail;
	}
	mp->next = d->mappers;
	d->mappers = mp;
out:
	pthread_mutex_unlock(&d->lock);
	return rc;
fail:
	if (set_mode) {
		for (c = d->chunks; c; c = c->next)
			unrealize(d, c);
		d->mode = UDRV_DMA_MODE_UNSET;
	}
	memcpy(d->ranges, saved, sizeof(saved));
	d->nr_ranges = nsaved;
	free(mp);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void udrv_dma_domain_detach(struct udrv_dma_domain *d, const struct udrv_dma_mapper_ops *ops,
			    void *ctx)
{
	struct dom_mapper **pp, *mp;

	pthread_mutex_lock(&d->lock);
	for (pp = &d->mappers; *pp && !((*pp)->ops == ops && (*pp)->ctx == ctx); pp = &(*pp)->next)
		;
	mp = *pp;
	if (mp) {
		for (struct dom_chunk *c = d->chunks; c; c = c->next) {
			struct udrv_dma_segment seg;
			if (!c->mapped)
				continue;
			chunk_segment(c, &seg);
			ops->unmap(ctx, &seg);
		}
		*pp = mp->next;
		free(mp);
	}
	pthread_mutex_unlock(&d->lock);
}

void *udrv_dma_domain_find_mapper(struct udrv_dma_domain *d, const struct udrv_dma_mapper_ops *ops)
{
	void *ctx = NULL;

	pthread_mutex_lock(&d->lock);
	for (struct dom_mapper *mp = d->mappers; mp; mp = mp->next)
		if (mp->ops == ops) {
			ctx = mp->ctx;
			break;
		}
	pthread_mutex_unlock(&d->lock);
	return ctx;
}

unsigned udrv_dma_domain_nr_mappers(const struct udrv_dma_domain *d)
{
	unsigned n = 0;

	for (const struct dom_mapper *mp = d->mappers; mp; mp = mp->next)
		n++;
	return n;
}

enum udrv_dma_mode udrv_dma_domain_get_mode(const struct udrv_dma_domain *d)
{
	return d->mode;
}

const char *udrv_dma_domain_mode(const struct udrv_dma_domain *d)
{
	switch (d->mode) {
	case UDRV_DMA_MODE_IOVA:
		return "iova";
	case UDRV_DMA_MODE_PHYS:
		return "phys";
	default:
		return "unset";
	}
}

uint64_t udrv_dma_iova(const struct udrv_dma_domain *d, const void *va)
{
	return dma_map_lookup(&d->map, (uintptr_t)va);
}

size_t udrv_dma_contig(const struct udrv_dma_domain *d, const void *va, size_t len)
{
	uintptr_t p = (uintptr_t)va, end = p + len;
	uint64_t first = dma_map_lookup(&d->map, p);
	size_t done;

	if (first == UINT64_MAX || len == 0)
		return 0;
	done = SZ_4K - (p & (SZ_4K - 1));
	while (done < len) {
		if (dma_map_lookup(&d->map, p + done) != first + done)
			return done;
		done += SZ_4K;
	}
	(void)end;
	return len;
}

void udrv_dma_domain_get(struct udrv_dma_domain *d)
{
	pthread_mutex_lock(&d->lock);
	d->refs++;
	pthread_mutex_unlock(&d->lock);
}

void udrv_dma_domain_destroy(struct udrv_dma_domain *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	if (--d->refs > 0) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	dma_heap_fini_locked(d);
	while (d->chunks)
		dma_domain_remove_locked(d, d->chunks->mem);
	/* Every device detached when it closed and dropped its reference. */
	while (d->mappers) {
		struct dom_mapper *mp = d->mappers;
		d->mappers = mp->next;
		free(mp);
	}
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_destroy(&d->lock);
	dma_map_fini(&d->map);
	free(d);
}
