/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The domain's heap: small IOVA-contiguous allocations (queues, PRP lists, identify buffers)
 * carved from 2 MiB chunks that the domain owns. A first-fit list of blocks per chunk: this is
 * set-up-time memory, not the fast path (buffers for I/O come from mempools).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dma_domain_internal.h"
#include "dma_mem_internal.h"
#include "log_internal.h"

#define SZ_2M	  (2ull << 20)
#define MIN_ALIGN 64

struct hblock {
	size_t off, size;
	bool used;
	struct hblock *next; /* by offset; the blocks partition the chunk */
};

struct heap_chunk {
	struct udrv_dma_mem *mem;
	struct hblock *blocks;
	struct heap_chunk *next;
};

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int split(struct hblock *b, size_t pos, size_t size)
{
	struct hblock *head = NULL, *tail = NULL;

	if (pos > b->off) {
		head = calloc(1, sizeof(*head));
		if (!head)
			return -ENOMEM;
	}
	if (pos + size < b->off + b->size) {
		tail = calloc(1, sizeof(*tail));
		if (!tail) {
			free(head);
			return -ENOMEM;
		}
	}
	if (tail) {
		tail->off = pos + size;
		tail->size = b->off + b->size - tail->off;
		tail->next = b->next;
		b->next = tail;
	}
	if (head) {
		/* b keeps the leading free part; head becomes the allocated block after it. */
		head->off = pos;
		head->size = size;
		head->used = true;
		head->next = b->next;
		b->size = pos - b->off;
		b->next = head;
		return 0;
	}
	b->size = size;
	b->used = true;
	return 0;
}

/* Find room in chunk hc; returns the block whose range was allocated, or NULL. */
static void *try_chunk(struct udrv_dma_domain *d, struct heap_chunk *hc, size_t size, size_t align)
{
	char *base = hc->mem->va;

	for (struct hblock *b = hc->blocks; b; b = b->next) {
		if (b->used || b->size < size)
			continue;
		for (size_t pos = align_up(b->off, align); pos + size <= b->off + b->size;) {
			size_t ok = udrv_dma_contig(d, base + pos, size);
			if (ok >= size) {
				if (split(b, pos, size) < 0)
					return NULL;
				memset(base + pos, 0, size);
				return base + pos;
			}
			/* Not contiguous across a physical page boundary: retry past it. */
			pos = align_up(pos + (ok ? ok : 1), align);
		}
	}
	return NULL;
}

static struct heap_chunk *grow(struct udrv_dma_domain *d, size_t size, size_t align)
{
	struct heap_chunk *hc = calloc(1, sizeof(*hc));
	size_t bytes = align_up(size + align, SZ_2M);
	int rc;

	if (!hc)
		return udrv_err_null(ENOMEM, "out of memory");
	hc->blocks = calloc(1, sizeof(*hc->blocks));
	hc->mem = udrv_dma_mem_alloc(bytes, 0);
	if (!hc->blocks || !hc->mem)
		goto fail;
	rc = dma_domain_add_locked(d, hc->mem);
	if (rc < 0) {
		errno = -rc;
		goto fail;
	}
	hc->blocks->size = hc->mem->size;
	hc->next = d->heap;
	d->heap = hc;
	return hc;
fail:
	udrv_dma_mem_free(hc->mem);
	free(hc->blocks);
	free(hc);
	return NULL;
}

/* Remove an unlinked heap chunk from the domain and free it. */
static void free_chunk_locked(struct udrv_dma_domain *d, struct heap_chunk *hc)
{
	dma_domain_remove_locked(d, hc->mem);
	udrv_dma_mem_free(hc->mem);
	while (hc->blocks) {
		struct hblock *b = hc->blocks;
		hc->blocks = b->next;
		free(b);
	}
	free(hc);
}

void *udrv_dma_zalloc(struct udrv_dma_domain *d, size_t size, size_t align, uint64_t *iova)
{
	struct heap_chunk *hc;
	void *va = NULL;

	if (align == 0)
		align = MIN_ALIGN;
	if (size == 0 || (align & (align - 1)) || align > SZ_2M || size > SIZE_MAX / 4)
		return udrv_err_null(
		    EINVAL, "DMA allocation of %zu bytes aligned to %zu is invalid", size, align);
	if (align < MIN_ALIGN)
		align = MIN_ALIGN;
	size = align_up(size, MIN_ALIGN);

	pthread_mutex_lock(&d->lock);
	if (d->mode == UDRV_DMA_MODE_UNSET) {
		pthread_mutex_unlock(&d->lock);
		return udrv_err_null(EINVAL, "the DMA domain has no device yet: open a device with "
					     "it before allocating DMA memory from it");
	}
	for (hc = d->heap; hc && !va; hc = hc->next)
		va = try_chunk(d, hc, size, align);
	if (!va) {
		int err = ENOMEM;

		hc = grow(d, size, align);
		if (!hc)
			err = errno;
		else
			va = try_chunk(d, hc, size, align);
		if (hc && !va) {
			/* Even a fresh chunk cannot hold it (no physically contiguous run that
			 * long): do not keep memory a retry would pile up. */
			size_t page = hc->mem->page_size;
			d->heap = hc->next;
			free_chunk_locked(d, hc);
			udrv_err(ENOMEM,
				 "%zu bytes of physically contiguous DMA memory are needed but "
				 "only %zu-byte pages are available; reserve hugepages with `echo "
				 "64 > /proc/sys/vm/nr_hugepages`",
				 size, page);
		}
		if (!va) {
			pthread_mutex_unlock(&d->lock);
			errno = err;
			return NULL;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (iova)
		*iova = udrv_dma_iova(d, va);
	return va;
}

void udrv_dma_free(struct udrv_dma_domain *d, void *va)
{
	if (!va)
		return;
	pthread_mutex_lock(&d->lock);
	for (struct heap_chunk *hc = d->heap; hc; hc = hc->next) {
		char *base = hc->mem->va;
		struct hblock *prev = NULL;

		if ((char *)va < base || (char *)va >= base + hc->mem->size)
			continue;
		for (struct hblock *b = hc->blocks; b; prev = b, b = b->next) {
			if (base + b->off != (char *)va || !b->used)
				continue;
			b->used = false;
			if (b->next && !b->next->used) {
				struct hblock *n = b->next;
				b->size += n->size;
				b->next = n->next;
				free(n);
			}
			if (prev && !prev->used) {
				prev->size += b->size;
				prev->next = b->next;
				free(b);
			}
			pthread_mutex_unlock(&d->lock);
			return;
		}
	}
	pthread_mutex_unlock(&d->lock);
	udrv_warn("udrv_dma_free(%p): not an allocation of this DMA domain; ignored", va);
}

void dma_heap_fini_locked(struct udrv_dma_domain *d)
{
	while (d->heap) {
		struct heap_chunk *hc = d->heap;
		d->heap = hc->next;
		free_chunk_locked(d, hc);
	}
}
