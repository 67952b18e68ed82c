/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv-dmacopy: drive the sample DMA copy engine and check every byte it copies.
 *
 *   udrv-dmacopy DEVICE [--copies N] [--size BYTES]
 *
 * e.g. `udrv-dmacopy-emu --socket /tmp/dc.sock &` then `udrv-dmacopy vfio-user:/tmp/dc.sock`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <udrv/log.h>

#include "dmacopy.h"
#include "dmacopy_regs.h"

#define SLOTS 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned copies = 10000, size = 4096, submitted = 0, completed = 0, bad = 0, irqs = 0;
	struct dmacopy_done done[32];
	uint64_t src_iova, dst_iova;
	struct dmacopy *dc;
	uint8_t *src, *dst;
	double t0;
	int rc;

	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: udrv-dmacopy DEVICE [--copies N] [--size BYTES]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--copies"))
			copies = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--size"))
			size = (unsigned)strtoul(argv[i + 1], NULL, 0);
	}
	if (size == 0 || size > DMACOPY_MAX_LEN) {
		fprintf(stderr, "udrv-dmacopy: --size must be 1..%u\n", DMACOPY_MAX_LEN);
		return 2;
	}
	rc = dmacopy_open(argv[1], 256, &dc);
	if (rc < 0) {
		fprintf(stderr, "udrv-dmacopy: cannot open %s: %s\n", argv[1],
			udrv_errmsg()[0] ? udrv_errmsg() : strerror(-rc));
		return 1;
	}
	/* SLOTS source and destination buffers, reused round-robin. */
	src = udrv_dma_zalloc(dmacopy_domain(dc), (size_t)size * SLOTS, 4096, &src_iova);
	dst = udrv_dma_zalloc(dmacopy_domain(dc), (size_t)size * SLOTS, 4096, &dst_iova);
	if (!src || !dst) {
		fprintf(stderr, "udrv-dmacopy: %s\n", udrv_errmsg());
		dmacopy_close(dc);
		return 1;
	}
	t0 = now();
	while (completed < copies) {
		while (submitted < copies && submitted - completed < SLOTS) {
			unsigned slot = submitted % SLOTS;
			/* Each copy gets its own pattern, so a stale or misplaced copy shows. */
			for (unsigned k = 0; k < size; k++)
				src[(size_t)slot * size + k] = (uint8_t)(submitted * 131 + k);
			if (dmacopy_submit(dc, src_iova + (uint64_t)slot * size,
					   dst_iova + (uint64_t)slot * size, size,
					   (uint16_t)slot) < 0)
				break;
			submitted++;
		}
		rc = dmacopy_poll(dc, done, 32);
		if (rc < 0)
			break;
		for (int i = 0; i < rc; i++) {
			unsigned n = completed + (unsigned)i, slot = done[i].tag;
			if (done[i].status != DMACOPY_SC_OK || slot != n % SLOTS)
				bad++;
			else
				for (unsigned k = 0; k < size; k++)
					if (dst[(size_t)slot * size + k] !=
					    (uint8_t)(n * 131 + k)) {
						bad++;
						break;
					}
		}
		completed += (unsigned)rc;
		if (rc == 0) {
			int w = dmacopy_wait(dc, 100);
			irqs += w > 0;
			if (w == 0 && (rc = dmacopy_check(dc)) < 0)
				break;
		}
	}
	double secs = now() - t0;
	if (completed < copies) {
		fprintf(stderr, "udrv-dmacopy: stopped after %u of %u copies: %s\n", completed,
			copies,
			rc == -ENODEV ? "the device went away" : strerror(rc < 0 ? -rc : EIO));
		dmacopy_close(dc);
		return 1;
	}
	printf("dmacopy: %u copies of %u bytes through %s\n", copies, size, argv[1]);
	printf("dmacopy: %u verified, %u bad, %lu bogus completions, %u interrupt wakeups\n",
	       completed - bad, bad, dmacopy_bogus(dc), irqs);
	printf("dmacopy: %.0f copies/s, %.1f MiB/s\n", copies / secs,
	       (double)copies * size / secs / (1 << 20));
	dmacopy_close(dc);
	return bad ? 1 : 0;
}
