/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DMA memory chunks: memfd-backed, so that a chunk can be shared by fd with another process
 * or a vfio-user server; hugetlb (2 MiB) when the system has hugepages reserved.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dma_internal.h"
#include "dma_mem_internal.h"
#include "log_internal.h"

#define HUGE_SZ (2u << 20)

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21u << 26) /* MFD_HUGE_SHIFT 26, log2(2 MiB) */
#endif

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Map fd at a 2 MiB-aligned address, so the domain's table can use 2 MiB leaf entries. */
static void *map_aligned(int fd, size_t size)
{
	size_t span = size + HUGE_SZ;
	char *res, *aligned, *p;

	res = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	aligned = (char *)round_up((uintptr_t)res, HUGE_SZ);
	p = mmap(aligned, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd,
		 0);
	if (p == MAP_FAILED) {
		int err = errno;
		munmap(res, span);
		errno = err;
		return MAP_FAILED;
	}
	if (aligned > res)
		munmap(res, (size_t)(aligned - res));
	if (aligned + size < res + span)
		munmap(aligned + size, (size_t)(res + span - (aligned + size)));
	return p;
}

/* Free hugepages of the default 2 MiB pool, from sysfs; 0 when unknown. */
static unsigned long free_hugepages(void)
{
	unsigned long n = 0;
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "re");

	if (f) {
		if (fscanf(f, "%lu", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

static int try_alloc(struct udrv_dma_mem *m, size_t size, bool huge)
{
	unsigned mfd_flags = MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0);
	size_t page = huge ? HUGE_SZ : (size_t)sysconf(_SC_PAGESIZE);
	int fd, err;
	void *va;

	size = round_up(size, page);
	fd = memfd_create("udrv-dma", mfd_flags);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail;
	/* A hugetlb mapping reserves its pages at mmap time and fails with ENOMEM when the pool
	 * is short, instead of SIGBUS on first touch. MAP_POPULATE faults them in now. */
	va = map_aligned(fd, size);
	if (va == MAP_FAILED)
		goto fail;
	m->va = va;
	m->size = size;
	m->page_size = page;
	m->fd = fd;
	m->locked = false;
	return 0;
fail:
	err = errno;
	close(fd);
	return -err;
}

struct udrv_dma_mem *udrv_dma_mem_alloc(size_t size, unsigned flags)
{
	struct udrv_dma_mem *m;
	int rc = -ENOMEM;

	if (size == 0)
		return udrv_err_null(EINVAL, "DMA allocation of 0 bytes");
	if ((flags & UDRV_DMA_HUGE) && (flags & UDRV_DMA_NOHUGE))
		return udrv_err_null(EINVAL, "UDRV_DMA_HUGE and UDRV_DMA_NOHUGE both given");
	if (size > SIZE_MAX / 2)
		return udrv_err_null(ENOMEM, "DMA allocation of %zu bytes is too large", size);
	m = calloc(1, sizeof(*m));
	if (!m)
		return udrv_err_null(ENOMEM, "out of memory");

	if (!(flags & UDRV_DMA_NOHUGE))
		rc = try_alloc(m, size, true);
	if (rc < 0 && (flags & UDRV_DMA_HUGE)) {
		size_t need = round_up(size, HUGE_SZ) / HUGE_SZ;
		free(m);
		return udrv_err_null(
		    ENOMEM,
		    "no free 2 MiB hugepages for %zu bytes of DMA memory (%lu free); "
		    "reserve some with `echo %zu > /proc/sys/vm/nr_hugepages` as root",
		    size, free_hugepages(), need + 8);
	}
	if (rc < 0)
		rc = try_alloc(m, size, false);
	if (rc < 0) {
		free(m);
		return udrv_err_null(-rc, "cannot allocate %zu bytes of DMA memory: %s", size,
				     strerror(-rc));
	}
	if (flags & UDRV_DMA_LOCK) {
		rc = udrv_dma_mem_lock(m);
		if (rc < 0) {
			udrv_dma_mem_free(m);
			errno = -rc;
			return NULL;
		}
	}
	return m;
}

int udrv_dma_mem_lock(struct udrv_dma_mem *m)
{
	struct rlimit rl;

	if (m->locked)
		return 0;
	/* Through syscall(): sanitizer runtimes replace mlock() with a no-op. */
	if (syscall(SYS_mlock, m->va, m->size) == 0) {
		m->locked = true;
		return 0;
	}
	if (errno != ENOMEM && errno != EPERM && errno != EAGAIN)
		return udrv_err(errno, "cannot lock DMA memory: %s", strerror(errno));
	getrlimit(RLIMIT_MEMLOCK, &rl);
	if (rl.rlim_cur == RLIM_INFINITY)
		return udrv_err(ENOMEM, "cannot lock %zu bytes of DMA memory: out of memory",
				m->size);
	return udrv_err(ENOMEM,
			"cannot lock %zu KiB of DMA memory: the locked-memory limit is %llu KiB; "
			"raise it with `ulimit -l unlimited` (as root, or via "
			"/etc/security/limits.conf), or reserve hugepages with "
			"`echo 64 > /proc/sys/vm/nr_hugepages`",
			m->size >> 10, (unsigned long long)rl.rlim_cur >> 10);
}

void udrv_dma_mem_unlock(struct udrv_dma_mem *m)
{
	if (m->locked && syscall(SYS_munlock, m->va, m->size) == 0)
		m->locked = false;
}

void udrv_dma_mem_free(struct udrv_dma_mem *m)
{
	if (!m)
		return;
	munmap(m->va, m->size);
	close(m->fd);
	free(m);
}

void *udrv_dma_mem_va(const struct udrv_dma_mem *m)
{
	return m->va;
}

size_t udrv_dma_mem_size(const struct udrv_dma_mem *m)
{
	return m->size;
}

size_t udrv_dma_mem_page_size(const struct udrv_dma_mem *m)
{
	return m->page_size;
}

int udrv_dma_mem_fd(const struct udrv_dma_mem *m)
{
	return m->fd;
}
