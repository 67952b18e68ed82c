/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A SIGBUS guard for mapped regions. vfio-pci revokes a BAR's mappings when the device goes
 * away or its memory space is disabled, and the next access to them raises SIGBUS, which
 * would kill the whole process for a device-side event. As SPDK and DPDK do, the handler
 * maps anonymous memory over the faulting page, filled with all ones (what a removed PCIe
 * device returns for reads), so the access completes; the region is marked lost, and the
 * driver, seeing all-ones registers or asking udrv_device_removed(), fails its I/O cleanly.
 * Faults outside guarded regions go to the previous handler, or kill as before.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bus/device_internal.h"
#include "core/log_internal.h"

#define GUARD_SLOTS 64

/* Read by the signal handler: only atomics, published start last on add, cleared first on
 * remove. */
static struct {
	_Atomic uintptr_t start;
	_Atomic size_t len;
	atomic_bool hit;
} slots[GUARD_SLOTS];
static struct sigaction prev;
static atomic_int installed; /* 0 no, 1 installing, 2 yes */

static void on_sigbus(int sig, siginfo_t *info, void *uctx)
{
	uintptr_t addr = (uintptr_t)info->si_addr;
	long psz = sysconf(_SC_PAGESIZE);

	for (int i = 0; i < GUARD_SLOTS; i++) {
		uintptr_t start = atomic_load(&slots[i].start);
		size_t len = atomic_load(&slots[i].len);
		void *page;

		if (!start || addr < start || addr - start >= len)
			continue;
		page = (void *)(addr & ~((uintptr_t)psz - 1));
		/* mmap is a plain system call on Linux: safe here in practice (SPDK does the
		 * same); the faulting access is retried on the new page. */
		if (mmap(page, (size_t)psz, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
			break;
		memset(page, 0xff, (size_t)psz);
		atomic_store(&slots[i].hit, true);
		return;
	}
	/* Not ours. */
	if (prev.sa_flags & SA_SIGINFO) {
		if (prev.sa_sigaction)
			prev.sa_sigaction(sig, info, uctx);
		return;
	}
	if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
		prev.sa_handler(sig);
		return;
	}
	signal(SIGBUS, SIG_DFL); /* the access faults again and kills, as without us */
}

static int install(void)
{
	int want = 0;
	struct sigaction sa;

	if (atomic_load(&installed) == 2)
		return 0;
	if (!atomic_compare_exchange_strong(&installed, &want, 1)) {
		while (atomic_load(&installed) != 2)
			; /* another thread is installing: a few instructions */
		return 0;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &prev) < 0) {
		atomic_store(&installed, 0);
		return udrv_err(errno, "cannot install the SIGBUS guard: %s", strerror(errno));
	}
	atomic_store(&installed, 2);
	return 0;
}

int udrv_bar_guard_add(void *base, size_t len)
{
	int rc = install();

	if (rc < 0)
		return rc;
	for (int i = 0; i < GUARD_SLOTS; i++) {
		uintptr_t none = 0;

		/* Claim with a placeholder, set the length, then publish the real start. */
		if (atomic_compare_exchange_strong(&slots[i].start, &none, (uintptr_t)1)) {
			atomic_store(&slots[i].hit, false);
			atomic_store(&slots[i].len, len);
			atomic_store(&slots[i].start, (uintptr_t)base);
			return i;
		}
	}
	return udrv_err(ENOSPC, "more than %d mapped regions at once", GUARD_SLOTS);
}

void udrv_bar_guard_remove(int slot)
{
	if (slot < 0 || slot >= GUARD_SLOTS)
		return;
	atomic_store(&slots[slot].len, 0);
	atomic_store(&slots[slot].start, 0);
}

bool udrv_bar_guard_hit(int slot)
{
	return slot >= 0 && slot < GUARD_SLOTS && atomic_load(&slots[slot].hit);
}
