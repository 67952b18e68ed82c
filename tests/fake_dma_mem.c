/* SPDX-License-Identifier: BSD-3-Clause */
/* Fake host memory and the vfio-user DMA stand-ins over it: see fake_dma_mem.h. */
#include <errno.h>
#include <string.h>

#include "emu/nvme/nvme_emu.h"
#include "fake_dma_mem.h"

uint8_t *fake_mem;
size_t fake_mem_size;
uint64_t fake_mem_base;

bool fake_mem_has(uint64_t iova, uint64_t len)
{
	return fake_mem && iova >= fake_mem_base && len <= fake_mem_size &&
	       iova - fake_mem_base <= fake_mem_size - len;
}

void *udrv_vfu_dma_ptr(struct udrv_vfu_dev *dev, uint64_t iova, size_t len, bool write)
{
	(void)dev;
	(void)write;
	return len && fake_mem_has(iova, len) ? fake_mem + (iova - fake_mem_base) : NULL;
}

int udrv_vfu_dma_read(struct udrv_vfu_dev *dev, uint64_t iova, void *buf, size_t len)
{
	(void)dev;
	if (!fake_mem_has(iova, len))
		return -EFAULT;
	memcpy(buf, fake_mem + (iova - fake_mem_base), len);
	return 0;
}

int udrv_vfu_dma_write(struct udrv_vfu_dev *dev, uint64_t iova, const void *buf, size_t len)
{
	(void)dev;
	if (!fake_mem_has(iova, len))
		return -EFAULT;
	memcpy(fake_mem + (iova - fake_mem_base), buf, len);
	return 0;
}
