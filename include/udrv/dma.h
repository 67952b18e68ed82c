/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv/dma.h - memory a device may read and write, and the IOVAs it knows it by.
 *
 * Two objects:
 *
 *  - struct udrv_dma_mem: one chunk of memory backed by a memfd, so the same pages can be
 *    handed to another process or to a vfio-user device by file descriptor. 2 MiB hugepages
 *    (MFD_HUGETLB) are used when the system has them reserved, ordinary pages otherwise.
 *
 *  - struct udrv_dma_domain: the address space a set of devices sees (a VFIO container, the
 *    physical address space under UIO, a vfio-user connection's DMA table). Each chunk added
 *    to a domain is mapped once into every device attached to it and gets an IOVA;
 *    udrv_dma_iova() translates a virtual address to its IOVA in O(1) (a three-level table,
 *    two or three loads, no locks, no system calls).
 *
 * How IOVAs are chosen depends on the first device attached to the domain:
 *  - behind an IOMMU (VFIO) or over vfio-user, the domain allocates IOVAs itself from the
 *    ranges the IOMMU accepts, congruent with the virtual address modulo 2 MiB; chunks are
 *    IOVA-contiguous;
 *  - under UIO (no IOMMU) the IOVA is the physical address from /proc/self/pagemap, so the
 *    memory must never move: it is locked, and it must be on 2 MiB hugepages, because the
 *    kernel's memory compaction migrates even locked ordinary pages (unless the sysctl
 *    vm.compact_unevictable_allowed is 0, when 4 KiB pages are accepted too). A buffer is
 *    contiguous only within a physical page run, which udrv_dma_contig() reports.
 *
 * Most code needs only udrv_dma_zalloc()/udrv_dma_free(): memory from the domain's own heap,
 * already mapped and IOVA-contiguous.
 *
 * Threads: object creation and destruction, and domain add/remove, are slow-path calls that
 * may be made from any thread but must not race with each other on the same object.
 * udrv_dma_iova() and udrv_dma_contig() may be called from any number of threads concurrently
 * with each other and with adds of other chunks.
 */
#ifndef UDRV_DMA_H
#define UDRV_DMA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct udrv_dma_mem;
struct udrv_dma_domain;

/* Returned by udrv_dma_iova() for an address that is not mapped in the domain. */
#define UDRV_DMA_IOVA_INVALID UINT64_MAX

/* udrv_dma_mem_alloc() flags. */
enum {
	/* Fail rather than fall back to ordinary pages when no 2 MiB hugepage is free. */
	UDRV_DMA_HUGE = 1u << 0,
	/* Never use hugepages. */
	UDRV_DMA_NOHUGE = 1u << 1,
	/* mlock the pages now (also done on demand by domains that need it, e.g. UIO). */
	UDRV_DMA_LOCK = 1u << 2,
};

/*
 * Allocate a zeroed chunk of at least size bytes, rounded up to its page size, backed by a
 * memfd and mapped shared into this process, populated up front.
 * Returns the chunk, or NULL with errno:
 *   ENOMEM  no memory, or UDRV_DMA_HUGE and no free hugepage (udrv_errmsg() says how many
 *           to reserve), or UDRV_DMA_LOCK and RLIMIT_MEMLOCK too small (says what to run);
 *   EINVAL  size is 0 or flags conflict.
 */
struct udrv_dma_mem *udrv_dma_mem_alloc(size_t size, unsigned flags);

/*
 * Unmap and close. The chunk must no longer be in any domain (udrv_dma_domain_remove()).
 * NULL is ignored.
 */
void udrv_dma_mem_free(struct udrv_dma_mem *mem);

void *udrv_dma_mem_va(const struct udrv_dma_mem *mem);
size_t udrv_dma_mem_size(const struct udrv_dma_mem *mem);
/* 4096 or 2 MiB. */
size_t udrv_dma_mem_page_size(const struct udrv_dma_mem *mem);
/* The memfd, for sharing with another process or device; owned by the chunk. */
int udrv_dma_mem_fd(const struct udrv_dma_mem *mem);

/*
 * Lock the chunk's pages in RAM (mlock). Idempotent. Returns 0, or -ENOMEM/-EPERM when
 * RLIMIT_MEMLOCK does not allow it (udrv_errmsg() says what to run).
 */
int udrv_dma_mem_lock(struct udrv_dma_mem *mem);

/*
 * Create an empty domain. Devices attach to it when opened with it (see device.h); a device
 * opened without one gets its own. Returns NULL with errno ENOMEM.
 */
struct udrv_dma_domain *udrv_dma_domain_create(void);

/*
 * Drop the caller's reference. The domain lives on while devices opened on it are open and
 * mempools created in it exist (each holds a reference); the last one frees it: every chunk is
 * removed (chunks the caller added stay the caller's to free) and the heap is released.
 * NULL is ignored.
 */
void udrv_dma_domain_destroy(struct udrv_dma_domain *dom);

/*
 * Map mem into the domain: give it an IOVA range and map it into every device attached to the
 * domain, now and when more devices attach later. The caller keeps ownership of mem.
 * Returns 0, or:
 *   -EEXIST  mem (or memory overlapping it) is already in the domain;
 *   -ENOSPC  no IOVA space left;
 *   -ENOMEM  memory could not be locked, or is on movable 4 KiB pages (UIO), or the IOMMU
 *            could not pin it (VFIO: usually RLIMIT_MEMLOCK); udrv_errmsg() says what to run;
 *   -EPERM   physical addresses unreadable (UIO needs CAP_SYS_ADMIN);
 *   other    as returned by the device backend.
 */
int udrv_dma_domain_add(struct udrv_dma_domain *dom, struct udrv_dma_mem *mem);

/* Unmap mem from every attached device and forget its IOVAs. Returns 0 or -ENOENT. */
int udrv_dma_domain_remove(struct udrv_dma_domain *dom, struct udrv_dma_mem *mem);

/*
 * IOVA of the byte at va, or UDRV_DMA_IOVA_INVALID when va is not in a chunk of this domain.
 * O(1), lock-free; safe on the fast path.
 */
uint64_t udrv_dma_iova(const struct udrv_dma_domain *dom, const void *va);

/*
 * How many bytes starting at va (up to len) are mapped and IOVA-contiguous, i.e. can be
 * described to a device by the single address udrv_dma_iova(dom, va). 0 if va is unmapped.
 */
size_t udrv_dma_contig(const struct udrv_dma_domain *dom, const void *va, size_t len);

/*
 * Allocate size bytes of zeroed, IOVA-contiguous DMA memory aligned to align (a power of two,
 * at most 2 MiB; 0 means 64) from the domain's heap, which grows by adding chunks.
 * If iova is not NULL, *iova receives the IOVA of the first byte.
 * Returns the virtual address, or NULL with errno:
 *   EINVAL  size 0, align not a power of two or too large;
 *   ENOMEM  as udrv_dma_mem_alloc()/udrv_dma_domain_add(); or, under UIO without
 *           hugepages, size larger than a page (udrv_errmsg() says to reserve hugepages).
 * Thread: slow path; serialised internally, callable from any thread.
 */
void *udrv_dma_zalloc(struct udrv_dma_domain *dom, size_t size, size_t align, uint64_t *iova);

/* Return memory from udrv_dma_zalloc() to the domain's heap. NULL is ignored. */
void udrv_dma_free(struct udrv_dma_domain *dom, void *va);

/*
 * Named barriers for memory shared with a device (Linux's dma_wmb/dma_rmb).
 * udrv_dma_wmb(): stores to DMA memory (a descriptor, a queue entry) become visible to the
 * device before any later store, in particular the doorbell write that tells it to look.
 * udrv_dma_rmb(): a load from DMA memory (a completion's phase bit) is ordered before later
 * loads of the rest of the entry. On x86 both are compiler barriers: TSO keeps stores in order
 * and uncached MMIO stores are not reordered with earlier stores.
 */
#if defined(__x86_64__) || defined(__i386__)
#define udrv_dma_wmb() __asm__ volatile("" ::: "memory")
#define udrv_dma_rmb() __asm__ volatile("" ::: "memory")
#else
#define udrv_dma_wmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define udrv_dma_rmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

/* "iova" (IOMMU or vfio-user: the domain picks IOVAs), "phys" (UIO), or "unset". */
const char *udrv_dma_domain_mode(const struct udrv_dma_domain *dom);

#ifdef __cplusplus
}
#endif
#endif
