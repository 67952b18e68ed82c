/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv/ring.h - lock-free FIFO rings of pointer-sized values.
 *
 * A ring is one contiguous, position-independent block: a header followed by the slots. It holds
 * no pointers, only 32-bit indices, so it can live in memory shared between processes that map
 * it at different addresses; each process uses its own mapping's address as the ring pointer.
 * Elements are opaque pointer-sized values (void *). Between processes a pointer means nothing
 * to the peer, so store offsets into the shared region instead, cast through uintptr_t:
 *
 *	udrv_ring_enqueue(r, (void *)(uintptr_t)(buf - shm_base));	// producer
 *	buf = shm_base + (uintptr_t)obj;				// consumer
 *
 * Modes. By default any number of threads (or processes) may enqueue and dequeue concurrently
 * (multi-producer / multi-consumer, "MP/MC"). UDRV_RING_SP_ENQ and UDRV_RING_SC_DEQ promise that
 * at most one thread at a time enqueues, respectively dequeues, which makes those operations
 * cheaper (no atomic read-modify-write). The default functions (udrv_ring_enqueue_burst() ...)
 * pick the mode from the ring's flags; the explicit ones (udrv_ring_sp_enqueue_burst(),
 * udrv_ring_mp_enqueue_burst() ...) skip that check. Calling an sp_/sc_ function is correct
 * whenever the caller knows no other thread uses that side at the same time, whatever the
 * flags say.
 *
 * Operations. "bulk" moves all n objects or none and returns n or 0; "burst" moves as many as
 * it can (up to n) and returns how many. Single-object helpers return 0 or a negative errno.
 * None of them sleeps or allocates. In MP/MC mode threads publish the slots they reserved in
 * reservation order, so a thread preempted in the middle of an operation holds up the others
 * on its side until it runs again, as in DPDK's rte_ring: MP/MC rings are meant for threads
 * pinned to their own cores. A thread kept waiting like that for more than about a thousand
 * pause instructions calls sched_yield() to let the preempted one run; that is the only system
 * call a ring ever makes, and only when threads share cores. A process that dies in the middle
 * of an MP/MC operation on a shared ring stalls that side for good; between processes prefer
 * SP/SC rings (one ring per producer process) or reinitialize the ring after a crash.
 *
 * Capacity. A ring of count slots (a power of two, 2 .. 2^31) holds count objects: all slots
 * are usable. Indices are free-running 32-bit counters masked into the slot array.
 *
 * Speed. Each side keeps, next to its head, the room it last saw (free slots for the producer,
 * filled slots for the consumer) and reads the other side's cache line only when that room
 * runs out, so two cores streaming through a ring do not pull each other's index line over on
 * every operation. Producer and consumer state live on separate cache lines.
 *
 * Trust. All processes that share a ring must trust each other: the header is not re-validated
 * on each operation. A corrupted header cannot make an operation touch memory outside the
 * ring's slots unless the size or mask fields themselves are overwritten.
 *
 * Memory ordering (C11 model, __atomic builtins so the header also works from C++):
 *  - a producer writes the slots, then store-releases its tail; a consumer load-acquires the
 *    producer tail before reading those slots;
 *  - a consumer reads the slots, then store-releases its tail; a producer load-acquires the
 *    consumer tail before overwriting those slots.
 * On x86 all of these are plain loads and stores; MP/MC adds one lock cmpxchg per operation.
 * 64-bit atomics must be lock-free (they are on x86-64 and AArch64).
 */
#ifndef UDRV_RING_H
#define UDRV_RING_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* udrv_ring_init() / udrv_ring_create() flags. The default is multi-producer/multi-consumer. */
enum {
	UDRV_RING_SP_ENQ = 1u << 0, /* only one thread at a time enqueues */
	UDRV_RING_SC_DEQ = 1u << 1, /* only one thread at a time dequeues */
};

/* Largest slot count a ring may have. */
#define UDRV_RING_COUNT_MAX (1u << 31)
/* Alignment udrv_ring_init() requires of the memory it is given. */
#define UDRV_RING_ALIGN 64

/*
 * One side (producer or consumer) of a ring. Internal: use the functions below.
 * The side's own threads write this cache line; the other side reads tail, and only when it
 * has run out of room.
 */
struct udrv_ring_side_ {
	/*
	 * head (high 32 bits): the next index this side reserves.
	 * room (low 32 bits): how many indices from head on this side may take without looking
	 * at the other side's line again: free slots for the producer, filled slots for the
	 * consumer, as last seen. Never more than there really are. The two share one 64-bit
	 * word so they always change together (one store, or one CAS in MP/MC mode): room can
	 * never describe a head other than its own.
	 */
	uint64_t state;
	uint32_t tail; /* every index below is published to the other side */
	uint32_t pad_[13];
};

/*
 * The ring header; count slots follow inline. Internal: the layout is exposed only so the fast
 * path can be inlined. Line 0 is written once by init; producer and consumer state each have
 * their own cache line with an empty line on either side (adjacent-line prefetchers fetch
 * 128-byte pairs, which would otherwise make the two sides share).
 */
struct udrv_ring {
	uint32_t size;	/* number of slots, a power of two */
	uint32_t mask;	/* size - 1 */
	uint32_t flags; /* UDRV_RING_SP_ENQ | UDRV_RING_SC_DEQ */
	uint32_t pad0_[29];
	struct udrv_ring_side_ prod; /* offset 128 */
	uint32_t pad1_[16];
	struct udrv_ring_side_ cons; /* offset 256 */
	uint32_t pad2_[16];
	void *slots[]; /* offset 384 */
};

/*
 * Bytes needed for a ring of count slots (header included), a multiple of 64, or 0 if count
 * is not a power of two in 2 .. UDRV_RING_COUNT_MAX.
 * Thread: any.
 */
size_t udrv_ring_memsize(unsigned count);

/*
 * Initialize an empty ring of count slots in caller-provided memory of at least
 * udrv_ring_memsize(count) bytes, aligned to UDRV_RING_ALIGN (64) bytes: for example shared
 * memory another process maps too. The ring needs no cleanup beyond freeing that memory.
 * flags: UDRV_RING_SP_ENQ, UDRV_RING_SC_DEQ or 0.
 * Thread: any, but nobody may use the ring until this returns (publish the ring to other threads
 * or processes with a release store or a system call after this).
 * Returns 0, or -EINVAL (count not a power of two in 2 .. UDRV_RING_COUNT_MAX, r misaligned,
 * unknown flags; udrv_errmsg() says which).
 */
int udrv_ring_init(struct udrv_ring *r, unsigned count, unsigned flags);

/*
 * Allocate (64-byte aligned, from the C heap) and initialize a ring of count slots.
 * Thread: any.
 * Returns the ring, or NULL with errno EINVAL (as for udrv_ring_init()) or ENOMEM.
 */
struct udrv_ring *udrv_ring_create(unsigned count, unsigned flags);

/*
 * Free a ring from udrv_ring_create(). NULL is ignored. Never call it on a ring initialized
 * in caller memory with udrv_ring_init().
 * Thread: any, once no other thread uses the ring.
 */
void udrv_ring_free(struct udrv_ring *r);

/*
 * Empty the ring, discarding its contents. Thread: no other thread may use the ring meanwhile.
 */
void udrv_ring_reset(struct udrv_ring *r);

/*
 * Like udrv_ring_reset() but the free-running indices restart at start instead of 0. For tests:
 * a start just below UINT32_MAX exercises the 32-bit index wrap-around without 2^32 operations.
 */
void udrv_ring_reset_at(struct udrv_ring *r, uint32_t start);

/* ---- internals of the inline fast path ---------------------------------------------------- */

#if defined(__x86_64__) || defined(__i386__)
#define udrv_ring_pause_() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define udrv_ring_pause_() __asm__ volatile("yield" ::: "memory")
#else
#define udrv_ring_pause_() ((void)0)
#endif

/*
 * The fast path must inline into the caller so the mode, bulk and n arguments fold into
 * constants; left to itself the compiler keeps one out-of-line copy with runtime branches.
 * The mode-checking functions hint the SP/SC branch as likely so that it is laid out straight:
 * a few cycles of taken branches matter to an SP/SC operation, not next to a lock cmpxchg.
 */
#define UDRV_RING_INLINE static inline __attribute__((always_inline))

#define udrv_ring_likely_(x)   __builtin_expect(!!(x), 1)
#define udrv_ring_unlikely_(x) __builtin_expect(!!(x), 0)

/*
 * Slot copies. Runs of four go as one 32-byte struct copy, which the compiler does with vector
 * moves (a struct with void * members may access void * objects: C11 6.5p7; memcpy would do
 * the same but draws bogus -Wstringop warnings at -O0 for single-object calls). A run that
 * crosses the end of the slot array is split in two. idx <= mask and n <= mask + 1, so
 * idx + n cannot overflow.
 */
struct udrv_ring_four_ {
	void *p[4];
};

UDRV_RING_INLINE void udrv_ring_copy_in_(void **s, uint32_t idx, uint32_t size, void *const *objs,
					 unsigned n)
{
	unsigned i = 0;

	if (n == 1) {
		s[idx] = objs[0];
	} else if (udrv_ring_likely_(idx + n <= size)) {
		for (; i + 4 <= n; i += 4)
			*(struct udrv_ring_four_ *)&s[idx + i] =
			    *(const struct udrv_ring_four_ *)&objs[i];
		switch (n - i) {
		case 3:
			s[idx + i + 2] = objs[i + 2];
			/* fall through */
		case 2:
			s[idx + i + 1] = objs[i + 1];
			/* fall through */
		case 1:
			s[idx + i] = objs[i];
		}
	} else {
		for (; idx < size; i++, idx++)
			s[idx] = objs[i];
		for (idx = 0; i < n; i++, idx++)
			s[idx] = objs[i];
	}
}

UDRV_RING_INLINE void udrv_ring_copy_out_(void *const *s, uint32_t idx, uint32_t size, void **objs,
					  unsigned n)
{
	unsigned i = 0;

	if (n == 1) {
		objs[0] = s[idx];
	} else if (udrv_ring_likely_(idx + n <= size)) {
		for (; i + 4 <= n; i += 4)
			*(struct udrv_ring_four_ *)&objs[i] =
			    *(const struct udrv_ring_four_ *)&s[idx + i];
		switch (n - i) {
		case 3:
			objs[i + 2] = s[idx + i + 2];
			/* fall through */
		case 2:
			objs[i + 1] = s[idx + i + 1];
			/* fall through */
		case 1:
			objs[i] = s[idx + i];
		}
	} else {
		for (; idx < size; i++, idx++)
			objs[i] = s[idx];
		for (idx = 0; i < n; i++, idx++)
			objs[i] = s[idx];
	}
}

/* What a reservation got: n slots from index head; room is what this side has left after. */
struct udrv_ring_res_ {
	uint32_t head, n, room;
};

/*
 * Reserving slots on one side (all n if bulk, else up to n). The result comes back by value,
 * not through pointers, so that it can stay in registers.
 *
 * While the room in self->state covers n, nothing of the peer's line is read: a streaming peer's
 * cache line is not pulled over on every operation. Otherwise (or if exact is asked for) the
 * peer's tail is read and the room recomputed: size + cons tail - head for the producer,
 * prod tail - head for the consumer.
 *
 * Taking m slots adds m to head (the high half) and takes m from room (the low half): one add
 * of (m << 32) - m, where head wraps off the top of the word as a 32-bit counter should.
 *
 * Ordering: the peer store-releases its tail after its slot accesses; we load-acquire it before
 * ours. Other threads of this side (MP/MC) take over the room we store, so state is stored
 * with release and loaded with acquire to carry the peer's ordering along (for a single
 * thread relaxed would do; on x86 both are plain moves, and a memory order must be constant).
 *
 * udrv_ring_reserve_() is the inline path for when all n fit; everything else (a short burst,
 * a failed bulk, a corrupted ring, an MP/MC head that moved on meanwhile) continues out of
 * line in udrv_ring_reserve_slow_(), which keeps the inline path short and free of spills. The
 * slow path starts from the state s and peer tail t the inline path saw, so that a short burst
 * reads the peer's line once, not twice. ("unused": no warning in files that include this
 * header and never call it, as for an unused static inline function.)
 */
__attribute__((noinline, cold, unused)) static struct udrv_ring_res_
udrv_ring_reserve_slow_(struct udrv_ring_side_ *self, const struct udrv_ring_side_ *peer, int prod,
			uint32_t mask, unsigned n, int bulk, int single, uint64_t s, uint32_t t)
{
	const uint32_t size = mask + 1;
	struct udrv_ring_res_ res;
	uint64_t old, next;
	uint32_t h, left;
	unsigned m;

	for (;;) {
		h = (uint32_t)(s >> 32);
		left = (prod ? t + size : t) - h;
		if (left > size) {
			/* In MP/MC, s may be old (others moved head on): retry. Otherwise the ring
			 * is corrupted or misused from two threads: move nothing. */
			if (!single) {
				old = s;
				udrv_ring_pause_();
				s = __atomic_load_n(&self->state, __ATOMIC_ACQUIRE);
				if (s != old) {
					t = __atomic_load_n(&peer->tail, __ATOMIC_ACQUIRE);
					continue;
				}
			}
			left = 0;
		}
		m = n <= left ? n : bulk ? 0 : left;
		if (m == 0)
			break;
		/*
		 * Same head, fresh room. While s is current the room only grows (tails only
		 * advance), so adding the difference cannot borrow from head; if s is stale the
		 * CAS fails. Then head += m, room -= m.
		 */
		next = s + (uint32_t)(left - (uint32_t)s) + (((uint64_t)m << 32) - m);
		if (single) {
			__atomic_store_n(&self->state, next, __ATOMIC_RELEASE);
			break;
		}
		if (__atomic_compare_exchange_n(&self->state, &s, next, 1, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			break;
		t = __atomic_load_n(&peer->tail, __ATOMIC_ACQUIRE);
	}
	res.head = h;
	res.n = m;
	res.room = left - m;
	return res;
}

UDRV_RING_INLINE struct udrv_ring_res_ udrv_ring_reserve_(struct udrv_ring_side_ *self,
							  const struct udrv_ring_side_ *peer,
							  int prod, uint32_t mask, unsigned n,
							  int bulk, int single, int exact)
{
	const uint32_t size = mask + 1;
	uint64_t s = __atomic_load_n(&self->state, __ATOMIC_ACQUIRE), cur, next;
	struct udrv_ring_res_ res;
	uint32_t h, left, t;

	/* udrv_ring_init() made 1 <= mask < 2^31 */
	if (mask - 1 >= UDRV_RING_COUNT_MAX - 1)
		__builtin_unreachable();
	for (;;) {
		cur = s;
		h = (uint32_t)(s >> 32);
		left = (uint32_t)s;
		/*
		 * Room enough? n > size never fits; tested here too so that a corrupted room cannot
		 * make a copy run past the slots (rings have at least 2 slots, so for n <= 2 the
		 * test is left out; the compiler does not see that from the mask range). Expected
		 * outcome: the producer usually has room left over, the consumer usually finds its
		 * room used up (on one core it always does); each side's usual path is laid out
		 * straight.
		 */
		if (exact ||
		    __builtin_expect(left < n || (!(__builtin_constant_p(n) && n <= 2) && n > size),
				     !prod)) {
			t = __atomic_load_n(&peer->tail, __ATOMIC_ACQUIRE);
			left = (prod ? t + size : t) - h;
			/* n <= left <= size, as one compare */
			if (udrv_ring_unlikely_(!(left - n <= size - n && n <= size)))
				return udrv_ring_reserve_slow_(self, peer, prod, mask, n, bulk,
							       single, s, t);
			cur = s + (uint32_t)(left - (uint32_t)s); /* fresh room, as above */
		}
		next = cur + (((uint64_t)n << 32) - n); /* head += n, room -= n */
		if (udrv_ring_likely_(single)) {
			__atomic_store_n(&self->state, next, __ATOMIC_RELEASE);
			break;
		}
		/*
		 * The slots are ours once the CAS succeeds; on failure it reloads s. We go on with
		 * h, not with what the CAS returns (equal on success, but a data dependency on the
		 * locked instruction would hold back the copy instead of letting it run ahead).
		 */
		if (__atomic_compare_exchange_n(&self->state, &s, next, 1, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			break;
	}
	res.head = h;
	res.n = n;
	res.room = left - n;
	return res;
}

/*
 * Wait until *tail == head: out of line, in ring.c. It spins with pause and, if that lasts
 * (about a thousand rounds: the thread we wait for was preempted in the middle of an
 * operation), yields the CPU with sched_yield() so that the thread can run again. Internal.
 */
void udrv_ring_wait_(const uint32_t *tail, uint32_t head);

/*
 * Publish [head, head + n) to the other side. In MP/MC mode threads that reserved earlier
 * slots publish first: wait for them. The acquire makes their slot accesses happen before our
 * release, so a peer that acquires our tail sees every slot below it.
 */
UDRV_RING_INLINE void udrv_ring_publish_(struct udrv_ring_side_ *s, uint32_t head, unsigned n,
					 int single)
{
	if (udrv_ring_unlikely_(!single) &&
	    udrv_ring_unlikely_(__atomic_load_n(&s->tail, __ATOMIC_ACQUIRE) != head))
		udrv_ring_wait_(&s->tail, head);
	__atomic_store_n(&s->tail, head + n, __ATOMIC_RELEASE);
}

UDRV_RING_INLINE unsigned udrv_ring_enq_(struct udrv_ring *r, void *const *objs, unsigned n,
					 unsigned *free_space, int bulk, int single)
{
	const uint32_t mask = r->mask;
	struct udrv_ring_res_ res =
	    udrv_ring_reserve_(&r->prod, &r->cons, 1, mask, n, bulk, single, free_space != NULL);

	/* A bulk operation moves n or nothing: copying n (not res.n) keeps a constant n constant
	 * for the compiler, which cannot see into the slow path. */
	if (res.n) {
		udrv_ring_copy_in_(r->slots, res.head & mask, mask + 1, objs, bulk ? n : res.n);
		udrv_ring_publish_(&r->prod, res.head, res.n, single);
	}
	if (free_space)
		*free_space = res.room;
	return res.n;
}

UDRV_RING_INLINE unsigned udrv_ring_deq_(struct udrv_ring *r, void **objs, unsigned n,
					 unsigned *available, int bulk, int single)
{
	const uint32_t mask = r->mask;
	struct udrv_ring_res_ res =
	    udrv_ring_reserve_(&r->cons, &r->prod, 0, mask, n, bulk, single, available != NULL);

	if (res.n) {
		udrv_ring_copy_out_(r->slots, res.head & mask, mask + 1, objs, bulk ? n : res.n);
		udrv_ring_publish_(&r->cons, res.head, res.n, single);
	}
	if (available)
		*available = res.room;
	return res.n;
}

/* ---- the fast path -------------------------------------------------------------------------- */

/*
 * Enqueue all n objects from objs, or none.
 * Thread: per the ring's flags (UDRV_RING_SP_ENQ: one enqueuing thread at a time).
 * Returns n, or 0 if fewer than n slots were free. If free_space is not NULL it receives the
 * number of free slots left after the operation, as seen at the time. Asking for it costs a read
 * of the consumer's cache line, which passing NULL usually avoids.
 */
UDRV_RING_INLINE unsigned udrv_ring_enqueue_bulk(struct udrv_ring *r, void *const *objs, unsigned n,
						 unsigned *free_space)
{
	if (udrv_ring_likely_(r->flags & UDRV_RING_SP_ENQ))
		return udrv_ring_enq_(r, objs, n, free_space, 1, 1);
	return udrv_ring_enq_(r, objs, n, free_space, 1, 0);
}

/*
 * Enqueue as many of the n objects from objs as fit, in order.
 * Thread: per the ring's flags. Returns the number enqueued (0 .. n); free_space as for
 * udrv_ring_enqueue_bulk().
 */
UDRV_RING_INLINE unsigned udrv_ring_enqueue_burst(struct udrv_ring *r, void *const *objs,
						  unsigned n, unsigned *free_space)
{
	if (udrv_ring_likely_(r->flags & UDRV_RING_SP_ENQ))
		return udrv_ring_enq_(r, objs, n, free_space, 0, 1);
	return udrv_ring_enq_(r, objs, n, free_space, 0, 0);
}

/*
 * Dequeue exactly n objects into objs, or none.
 * Thread: per the ring's flags (UDRV_RING_SC_DEQ: one dequeuing thread at a time).
 * Returns n, or 0 if fewer than n objects were in the ring. If available is not NULL it receives
 * the number of objects left after the operation, as seen at the time. Asking for it costs a
 * read of the producer's cache line, which passing NULL usually avoids.
 */
UDRV_RING_INLINE unsigned udrv_ring_dequeue_bulk(struct udrv_ring *r, void **objs, unsigned n,
						 unsigned *available)
{
	if (udrv_ring_likely_(r->flags & UDRV_RING_SC_DEQ))
		return udrv_ring_deq_(r, objs, n, available, 1, 1);
	return udrv_ring_deq_(r, objs, n, available, 1, 0);
}

/*
 * Dequeue up to n objects into objs, oldest first.
 * Thread: per the ring's flags. Returns the number dequeued (0 .. n); available as for
 * udrv_ring_dequeue_bulk().
 */
UDRV_RING_INLINE unsigned udrv_ring_dequeue_burst(struct udrv_ring *r, void **objs, unsigned n,
						  unsigned *available)
{
	if (udrv_ring_likely_(r->flags & UDRV_RING_SC_DEQ))
		return udrv_ring_deq_(r, objs, n, available, 0, 1);
	return udrv_ring_deq_(r, objs, n, available, 0, 0);
}

/* Enqueue one object. Thread: per the ring's flags. Returns 0, or -ENOBUFS if the ring is full. */
UDRV_RING_INLINE int udrv_ring_enqueue(struct udrv_ring *r, void *obj)
{
	return udrv_ring_enqueue_bulk(r, &obj, 1, NULL) ? 0 : -ENOBUFS;
}

/*
 * Dequeue one object into *obj. Thread: per the ring's flags.
 * Returns 0, or -ENOENT if the ring is empty (*obj is then left unchanged).
 */
UDRV_RING_INLINE int udrv_ring_dequeue(struct udrv_ring *r, void **obj)
{
	return udrv_ring_dequeue_bulk(r, obj, 1, NULL) ? 0 : -ENOENT;
}

/*
 * Explicit-mode variants: same contracts as above, whatever the ring's flags say.
 * sp_ / sc_: the caller guarantees no other thread enqueues / dequeues concurrently.
 * mp_ / mc_: any number of threads may enqueue / dequeue concurrently.
 */
UDRV_RING_INLINE unsigned udrv_ring_sp_enqueue_bulk(struct udrv_ring *r, void *const *objs,
						    unsigned n, unsigned *free_space)
{
	return udrv_ring_enq_(r, objs, n, free_space, 1, 1);
}

UDRV_RING_INLINE unsigned udrv_ring_mp_enqueue_bulk(struct udrv_ring *r, void *const *objs,
						    unsigned n, unsigned *free_space)
{
	return udrv_ring_enq_(r, objs, n, free_space, 1, 0);
}

UDRV_RING_INLINE unsigned udrv_ring_sp_enqueue_burst(struct udrv_ring *r, void *const *objs,
						     unsigned n, unsigned *free_space)
{
	return udrv_ring_enq_(r, objs, n, free_space, 0, 1);
}

UDRV_RING_INLINE unsigned udrv_ring_mp_enqueue_burst(struct udrv_ring *r, void *const *objs,
						     unsigned n, unsigned *free_space)
{
	return udrv_ring_enq_(r, objs, n, free_space, 0, 0);
}

UDRV_RING_INLINE unsigned udrv_ring_sc_dequeue_bulk(struct udrv_ring *r, void **objs, unsigned n,
						    unsigned *available)
{
	return udrv_ring_deq_(r, objs, n, available, 1, 1);
}

UDRV_RING_INLINE unsigned udrv_ring_mc_dequeue_bulk(struct udrv_ring *r, void **objs, unsigned n,
						    unsigned *available)
{
	return udrv_ring_deq_(r, objs, n, available, 1, 0);
}

UDRV_RING_INLINE unsigned udrv_ring_sc_dequeue_burst(struct udrv_ring *r, void **objs, unsigned n,
						     unsigned *available)
{
	return udrv_ring_deq_(r, objs, n, available, 0, 1);
}

UDRV_RING_INLINE unsigned udrv_ring_mc_dequeue_burst(struct udrv_ring *r, void **objs, unsigned n,
						     unsigned *available)
{
	return udrv_ring_deq_(r, objs, n, available, 0, 0);
}

UDRV_RING_INLINE int udrv_ring_sp_enqueue(struct udrv_ring *r, void *obj)
{
	return udrv_ring_enq_(r, &obj, 1, NULL, 1, 1) ? 0 : -ENOBUFS;
}

UDRV_RING_INLINE int udrv_ring_mp_enqueue(struct udrv_ring *r, void *obj)
{
	return udrv_ring_enq_(r, &obj, 1, NULL, 1, 0) ? 0 : -ENOBUFS;
}

UDRV_RING_INLINE int udrv_ring_sc_dequeue(struct udrv_ring *r, void **obj)
{
	return udrv_ring_deq_(r, obj, 1, NULL, 1, 1) ? 0 : -ENOENT;
}

UDRV_RING_INLINE int udrv_ring_mc_dequeue(struct udrv_ring *r, void **obj)
{
	return udrv_ring_deq_(r, obj, 1, NULL, 1, 0) ? 0 : -ENOENT;
}

/*
 * Number of objects in the ring: a snapshot, exact only when no other thread is using it.
 * Thread: any.
 */
UDRV_RING_INLINE unsigned udrv_ring_count(const struct udrv_ring *r)
{
	/* Consumer tail first: both only grow, so reading it before the producer tail can only
	 * overcount by what was enqueued in between, never underflow. */
	uint32_t c = __atomic_load_n(&r->cons.tail, __ATOMIC_ACQUIRE);
	uint32_t p = __atomic_load_n(&r->prod.tail, __ATOMIC_ACQUIRE);
	uint32_t used = p - c;

	return used > r->size ? r->size : used;
}

/* Number of free slots: a snapshot, like udrv_ring_count(). Thread: any. */
UDRV_RING_INLINE unsigned udrv_ring_free_count(const struct udrv_ring *r)
{
	return r->size - udrv_ring_count(r);
}

/* The most objects the ring can hold: its slot count (every slot is usable). Thread: any. */
UDRV_RING_INLINE unsigned udrv_ring_capacity(const struct udrv_ring *r)
{
	return r->size;
}

#ifdef __cplusplus
}
#endif

#endif
