/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the vfio-user client's handling of what a server sends: VERSION data,
 * reply headers and payloads (src/bus/vfio_user_client_msg.c decoders), and the server's own
 * DMA_READ/DMA_WRITE commands against a table of DMA windows. No socket: the bytes are exactly
 * what the receive thread would hand over. ASan watches the windows (separate heap blocks of
 * odd sizes), so any access outside what was "mapped" is a crash.
 *
 * Input: one selector byte, then the bytes under test.
 *   selector % 3 == 0: a VERSION reply payload;
 *   selector % 3 == 1: a whole reply message, checked against the request it claims to answer
 *                      (bit 2 of the selector: against another one), then decoded by command;
 *   selector % 3 == 2: a whole command message from the server, served.
 *
 * Build and run (seeds in tests/fuzz/corpus/client):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
 *     $(pkg-config --cflags json-c) tests/fuzz/fuzz_vfio_user_client.c \
 *     src/bus/vfio_user_client_msg.c src/core/log.c $(pkg-config --libs json-c) -o fuzz_vu
 *   ./fuzz_vu -max_total_time=60 tests/fuzz/corpus/client
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <udrv/log.h>

#include "bus/vfio_user_client_internal.h"

#define HDR sizeof(struct vfio_user_header)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vu_dma_table table;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Two adjacent windows (a DMA may cross from one to the other) and one of odd size
	 * after a gap. */
	static const struct {
		uint64_t iova, len;
	} w[] = {{0x10000, 4096}, {0x11000, 4096}, {0x20000, 100}};

	udrv_log_set_level(UDRV_LOG_ERR);
	for (unsigned i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (vu_dma_add(&table, w[i].iova, w[i].len, calloc(1, w[i].len)) < 0)
			abort();
	return 0;
}

static uint32_t u32_at(const uint8_t *p, size_t len, size_t off)
{
	uint32_t v = 0;

	if (len >= off + sizeof(v))
		memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint64_t u64_at(const uint8_t *p, size_t len, size_t off)
{
	uint64_t v = 0;

	if (len >= off + sizeof(v))
		memcpy(&v, p + off, sizeof(v));
	return v;
}

/* Decode p (the payload of a reply to cmd) as the client would, with the request's parameters
 * taken from the reply itself so that the deeper checks are reached. */
static void decode(uint16_t cmd, const uint8_t *p, size_t len, uint8_t sel)
{
	struct vfio_user_device_info di;
	struct vfio_user_irq_info ii;
	struct vu_region r;
	struct vu_caps caps;
	uint32_t need;

	switch (cmd) {
	case VFIO_USER_VERSION:
		vu_version_parse(p, len, &caps);
		break;
	case VFIO_USER_DEVICE_GET_INFO:
		vu_decode_device_info(p, len, &di);
		break;
	case VFIO_USER_DEVICE_GET_REGION_INFO:
		if (vu_decode_region_info(p, len, u32_at(p, len, 8), (sel & 8) ? VU_INFO_MAX : 32,
					  &r, &need) == 0 &&
		    need == 0) {
			if (r.info.nr_areas > UDRV_REGION_MAX_AREAS)
				abort();
			for (unsigned i = 0; i < r.info.nr_areas; i++)
				if (r.info.areas[i].offset + r.info.areas[i].size > r.info.size ||
				    r.info.areas[i].offset + r.info.areas[i].size <
					r.info.areas[i].offset)
					abort();
		}
		break;
	case VFIO_USER_DEVICE_GET_IRQ_INFO:
		vu_decode_irq_info(p, len, u32_at(p, len, 8), &ii);
		break;
	case VFIO_USER_REGION_READ:
	case VFIO_USER_REGION_WRITE:
		vu_decode_region_access(p, len, u32_at(p, len, 8), u64_at(p, len, 0),
					u32_at(p, len, 12), cmd == VFIO_USER_REGION_READ);
		break;
	case VFIO_USER_DMA_UNMAP:
		vu_decode_dma_unmap(p, len, u64_at(p, len, 8), u64_at(p, len, 16));
		break;
	default:
		break;
	}
}

static void reply(const uint8_t *buf, size_t size, uint8_t sel)
{
	struct vfio_user_header h;

	if (size < HDR)
		return;
	memcpy(&h, buf, HDR);
	if (vu_hdr_check(&h, VFIO_USER_MAX_MSG_SIZE) < 0)
		return;
	if (sel & 4)
		h.msg_id++;
	if (vu_reply_check(buf, size, h.msg_id, h.command) == 0)
		decode(h.command, buf + HDR, size - HDR, sel);
}

static void command(const uint8_t *buf, size_t size)
{
	struct vfio_user_header h, rh;
	void *r = NULL;
	size_t rlen = 0;

	if (vu_serve(&table, buf, size, &r, &rlen) < 0 || !r)
		return;
	memcpy(&h, buf, HDR);
	memcpy(&rh, r, HDR);
	/* A reply answers the command it was asked, and says how long it is. */
	if (rlen < HDR || rh.msg_size != rlen || rh.msg_id != h.msg_id || rh.command != h.command ||
	    (rh.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_REPLY)
		abort();
	if ((rh.flags & VFIO_USER_F_ERROR) && rlen != HDR)
		abort();
	if (!(rh.flags & VFIO_USER_F_ERROR) && h.command == VFIO_USER_DMA_READ &&
	    rlen != HDR + sizeof(struct vfio_user_dma_access) + u64_at(buf, size, HDR + 8))
		abort();
	free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sel, *buf;

	if (size < 1)
		return 0;
	sel = data[0];
	/* An exact-size copy, so that ASan sees a read past the end of the message. */
	buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	switch (sel % 3) {
	case 0: {
		struct vu_caps caps;

		vu_version_parse(buf, size - 1, &caps);
		break;
	}
	case 1:
		reply(buf, size - 1, sel);
		break;
	default:
		command(buf, size - 1);
		break;
	}
	free(buf);
	return 0;
}
