/* SPDX-License-Identifier: BSD-3-Clause */
/* Ring setup; the fast path is inline in include/udrv/ring.h. */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <udrv/ring.h>

#include "log_internal.h"

/* The header comments promise this layout: one line per concern, an empty line between. */
_Static_assert(offsetof(struct udrv_ring, prod) == 128, "producer line");
_Static_assert(offsetof(struct udrv_ring, cons) == 256, "consumer line");
_Static_assert(offsetof(struct udrv_ring, slots) == 384, "slots");
_Static_assert(sizeof(struct udrv_ring_side_) == 64, "one side per cache line");
_Static_assert(sizeof(void *) <= 8, "slots are pointer-sized");
_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0), "state needs 64-bit atomics");

static int count_ok(unsigned count)
{
	return count >= 2 && count <= UDRV_RING_COUNT_MAX && (count & (count - 1)) == 0;
}

size_t udrv_ring_memsize(unsigned count)
{
	size_t slots;

	if (!count_ok(count))
		return 0;
#if SIZE_MAX <= UINT32_MAX
	if (count > (SIZE_MAX - sizeof(struct udrv_ring) - UDRV_RING_ALIGN) / sizeof(void *))
		return 0; /* too big for a 32-bit address space */
#endif
	slots = (size_t)count * sizeof(void *);
	return (sizeof(struct udrv_ring) + slots + UDRV_RING_ALIGN - 1) &
	       ~(size_t)(UDRV_RING_ALIGN - 1);
}

void udrv_ring_reset_at(struct udrv_ring *r, uint32_t start)
{
	memset(&r->prod, 0, sizeof(r->prod));
	memset(&r->cons, 0, sizeof(r->cons));
	/* The producer may fill every slot; the consumer has nothing to take. */
	r->prod.state = (uint64_t)start << 32 | r->size;
	r->prod.tail = start;
	r->cons.state = (uint64_t)start << 32;
	r->cons.tail = start;
}

void udrv_ring_reset(struct udrv_ring *r)
{
	udrv_ring_reset_at(r, 0);
}

int udrv_ring_init(struct udrv_ring *r, unsigned count, unsigned flags)
{
	if (!r)
		return udrv_err(EINVAL, "ring: no memory given to initialize");
	if ((uintptr_t)r % UDRV_RING_ALIGN)
		return udrv_err(EINVAL, "ring: memory at %p is not %d-byte aligned", (void *)r,
				UDRV_RING_ALIGN);
	if (!count_ok(count))
		return udrv_err(EINVAL,
				"ring: %u slots requested; need a power of two from 2 to %u", count,
				UDRV_RING_COUNT_MAX);
	if (flags & ~(unsigned)(UDRV_RING_SP_ENQ | UDRV_RING_SC_DEQ))
		return udrv_err(EINVAL, "ring: unknown flags 0x%x", flags);
	memset(r, 0, sizeof(*r));
	r->size = count;
	r->mask = count - 1;
	r->flags = flags;
	udrv_ring_reset_at(r, 0);
	return 0;
}

struct udrv_ring *udrv_ring_create(unsigned count, unsigned flags)
{
	size_t size = udrv_ring_memsize(count);
	struct udrv_ring *r;
	int rc;

	if (!size)
		return udrv_err_null(EINVAL,
				     "ring: %u slots requested; need a power of two from 2 to %u",
				     count, UDRV_RING_COUNT_MAX);
	r = aligned_alloc(UDRV_RING_ALIGN, size);
	if (!r)
		return udrv_err_null(ENOMEM, "ring: out of memory for %u slots (%zu bytes)", count,
				     size);
	rc = udrv_ring_init(r, count, flags);
	if (rc) {
		free(r);
		errno = -rc;
		return NULL;
	}
	return r;
}

void udrv_ring_free(struct udrv_ring *r)
{
	free(r);
}

/*
 * Pause rounds before a waiting MP/MC thread starts yielding: far longer than another thread
 * needs to copy a burst and publish it (well under a microsecond), far shorter than a
 * scheduler time slice.
 */
#define WAIT_SPINS 1024

void udrv_ring_wait_(const uint32_t *tail, uint32_t head)
{
	unsigned spins = 0;

	/* Acquire: pairs with the release of the thread that publishes before us. */
	while (__atomic_load_n(tail, __ATOMIC_ACQUIRE) != head) {
		if (spins < WAIT_SPINS) {
			spins++;
			udrv_ring_pause_();
		} else {
			sched_yield();
		}
	}
}
