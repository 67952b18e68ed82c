/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device poll thread: calls the model's poll function while a client is connected,
 * spinning while it finds work and backing off to ~1 ms sleeps when it does not, and parks
 * on request so the serving thread can change what the poll function may touch (the DMA
 * table, device state on reset, the connection).
 *
 * Pause handshake: the pauser raises `attention` and waits for `paused`; the poller checks
 * `attention` between calls (one relaxed load on the busy path), acknowledges under the
 * lock and parks until the last pause is released. The lock orders everything the pauser
 * changes before the poller's next call.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/log_internal.h"
#include "vfu_internal.h"

#define SPIN_ROUNDS  1000     /* idle calls before the first sleep */
#define MIN_SLEEP_NS 1000L    /* first sleep: 1 us, doubling */
#define MAX_SLEEP_NS 1000000L /* ~1 ms: the latency an idle device adds */

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

void vfu_poller_init(struct udrv_vfu_dev *dev)
{
	struct vfu_poller *p = &dev->poller;
	pthread_condattr_t ca;

	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	p->pause = 1; /* parked until a client connects */
	atomic_init(&p->attention, 1);
}

void vfu_poller_fini(struct udrv_vfu_dev *dev)
{
	pthread_mutex_destroy(&dev->poller.lock);
	pthread_cond_destroy(&dev->poller.cond);
}

static void idle_sleep(struct vfu_poller *p, unsigned idle)
{
	unsigned shift = idle - SPIN_ROUNDS;
	long ns = MIN_SLEEP_NS << (shift > 10 ? 10 : shift);
	struct timespec t;

	if (ns > MAX_SLEEP_NS)
		ns = MAX_SLEEP_NS;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_nsec += ns;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	/* A timed wait rather than nanosleep: a pause request wakes us at once. */
	pthread_mutex_lock(&p->lock);
	while (!p->pause && !p->quit)
		if (pthread_cond_timedwait(&p->cond, &p->lock, &t) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&p->lock);
}

static void *poller_main(void *arg)
{
	struct udrv_vfu_dev *dev = arg;
	struct vfu_poller *p = &dev->poller;
	unsigned idle = 0;

	for (;;) {
		if (atomic_load_explicit(&p->attention, memory_order_acquire)) {
			bool quit;

			pthread_mutex_lock(&p->lock);
			if (p->pause && !p->quit) {
				p->paused = true;
				pthread_cond_broadcast(&p->cond);
				while (p->pause && !p->quit)
					pthread_cond_wait(&p->cond, &p->lock);
				p->paused = false;
			}
			quit = p->quit;
			pthread_mutex_unlock(&p->lock);
			if (quit)
				break;
			idle = 0;
			continue;
		}
		if (p->fn(dev->opts.ctx) > 0) {
			idle = 0;
			continue;
		}
		if (++idle <= SPIN_ROUNDS) {
			cpu_relax();
			continue;
		}
		if (idle > SPIN_ROUNDS + 64)
			idle = SPIN_ROUNDS + 64; /* keep the shift bounded */
		idle_sleep(p, idle);
	}
	pthread_mutex_lock(&p->lock);
	p->paused = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int vfu_poller_start(struct udrv_vfu_dev *dev)
{
	struct vfu_poller *p = &dev->poller;
	int rc;

	if (!p->fn)
		return 0;
	p->quit = false;
	p->paused = false;
	rc = pthread_create(&p->thread, NULL, poller_main, dev);
	if (rc)
		return udrv_err(rc, "cannot start the device poll thread: %s", strerror(rc));
	p->thread_ok = true;
	return 0;
}

void vfu_poller_stop(struct udrv_vfu_dev *dev)
{
	struct vfu_poller *p = &dev->poller;

	if (!p->thread_ok)
		return;
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	atomic_store_explicit(&p->attention, 1, memory_order_release);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	p->thread_ok = false;
	pthread_mutex_lock(&p->lock);
	p->quit = false;
	p->paused = false;
	pthread_mutex_unlock(&p->lock);
}

void vfu_poller_pause(struct udrv_vfu_dev *dev)
{
	struct vfu_poller *p = &dev->poller;

	pthread_mutex_lock(&p->lock);
	p->pause++;
	atomic_store_explicit(&p->attention, 1, memory_order_release);
	pthread_cond_broadcast(&p->cond);
	/* The poll function itself must not wait for itself. */
	if (p->thread_ok && !pthread_equal(pthread_self(), p->thread))
		while (!p->paused)
			pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void vfu_poller_resume(struct udrv_vfu_dev *dev)
{
	struct vfu_poller *p = &dev->poller;

	pthread_mutex_lock(&p->lock);
	if (p->pause > 0)
		p->pause--;
	if (!p->pause && !p->quit)
		atomic_store_explicit(&p->attention, 0, memory_order_release);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

int udrv_vfu_set_poller(struct udrv_vfu_dev *dev, int (*poll)(void *ctx))
{
	if (!dev)
		return udrv_err(EINVAL, "udrv_vfu_set_poller needs a device");
	if (atomic_load(&dev->running))
		return udrv_err(EBUSY, "set the poller before udrv_vfu_run()/udrv_vfu_start()");
	dev->poller.fn = poll;
	return 0;
}
