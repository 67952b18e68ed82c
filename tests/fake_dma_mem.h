/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fake host memory for tests that link src/emu/nvme/dptr.c without libudrv (test_nvme_dptr,
 * fuzz_nvme_dptr): one window of fake_mem_size bytes at iova fake_mem_base, and stand-ins for
 * the vfio-user server's udrv_vfu_dma_ptr/read/write over it (tests/fake_dma_mem.c), so that
 * nvemu_dptr_iov() and nvemu_dptr_copy() run against the same memory as the PRP/SGL walker.
 */
#ifndef FAKE_DMA_MEM_H
#define FAKE_DMA_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern uint8_t *fake_mem;
extern size_t fake_mem_size;
extern uint64_t fake_mem_base;

/* [iova, iova + len) lies inside the window (len 0 included). */
bool fake_mem_has(uint64_t iova, uint64_t len);

#endif
