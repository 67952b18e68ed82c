/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The block pattern of `udrv nvme verify` (declared in cli.h).
 *
 * Every byte of a block is a function of (seed, LBA, offset). Little-endian 64-bit words:
 * word 0 is the LBA, word 1 the seed, word i >= 2 mix(key + i * golden) with key =
 * mix(seed ^ mix(LBA + golden)), mix being SplitMix64's finaliser. A block never written,
 * written elsewhere (misdirected), written by another run, or damaged anywhere fails the
 * comparison, and its header says which of these it looks like.
 */
#include <endian.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define GOLDEN 0x9e3779b97f4a7c15ull

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static inline uint64_t block_key(uint64_t seed, uint64_t lba)
{
	return mix64(seed ^ mix64(lba + GOLDEN));
}

/* Word i of block lba, as stored (little-endian). */
static inline uint64_t pattern_word(uint64_t seed, uint64_t lba, uint64_t key, size_t i)
{
	if (i == 0)
		return htole64(lba);
	if (i == 1)
		return htole64(seed);
	return htole64(mix64(key + i * GOLDEN));
}

void nvme_cli_pattern_fill(void *block, uint32_t bs, uint64_t seed, uint64_t lba)
{
	uint64_t key = block_key(seed, lba), w;
	uint8_t *p = block;

	for (size_t i = 0; i < bs / 8; i++) {
		w = pattern_word(seed, lba, key, i);
		memcpy(p + 8 * i, &w, 8);
	}
}

/* What a block that does not match looks like, from its header. */
static void diagnose(const uint8_t *p, uint32_t bs, uint64_t seed, struct nvme_cli_mismatch *m)
{
	uint64_t hdr_lba, hdr_seed;
	size_t nz = 0;

	for (uint32_t i = 0; i < bs; i++)
		nz += p[i] != 0;
	memcpy(&hdr_lba, p, 8);
	memcpy(&hdr_seed, p + 8, 8);
	hdr_lba = le64toh(hdr_lba);
	hdr_seed = le64toh(hdr_seed);
	if (!nz)
		snprintf(m->note, sizeof(m->note), "reads as zeros (never written?)");
	else if (hdr_seed == seed && hdr_lba != m->lba)
		snprintf(m->note, sizeof(m->note), "holds the data of LBA %" PRIu64, hdr_lba);
	else if (hdr_lba == m->lba && hdr_seed != seed)
		snprintf(m->note, sizeof(m->note),
			 "written with seed 0x%" PRIx64 ", not 0x%" PRIx64 " (stale data?)",
			 hdr_seed, seed);
	else if (hdr_lba == m->lba && hdr_seed == seed)
		snprintf(m->note, sizeof(m->note), "right header, damaged data");
	else
		snprintf(m->note, sizeof(m->note),
			 "no pattern of this run (header %016" PRIx64 " %016" PRIx64 ")", hdr_lba,
			 hdr_seed);
}

bool nvme_cli_pattern_check(const void *block, uint32_t bs, uint64_t seed, uint64_t lba,
			    struct nvme_cli_mismatch *m)
{
	uint64_t key = block_key(seed, lba), w, want;
	const uint8_t *p = block;
	size_t i, words = bs / 8;

	for (i = 0; i < words; i++) {
		memcpy(&w, p + 8 * i, 8);
		if (w != pattern_word(seed, lba, key, i))
			break;
	}
	if (i == words)
		return true;
	if (!m)
		return false;
	m->lba = lba;
	m->differ = 0;
	m->first = UINT32_MAX;
	for (; i < words; i++) {
		want = pattern_word(seed, lba, key, i);
		for (unsigned b = 0; b < 8; b++) {
			if (p[8 * i + b] == ((const uint8_t *)&want)[b])
				continue;
			if (m->first == UINT32_MAX)
				m->first = (uint32_t)(8 * i + b);
			m->differ++;
		}
	}
	diagnose(p, bs, seed, m);
	return false;
}
