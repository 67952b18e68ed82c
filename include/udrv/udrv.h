/* SPDX-License-Identifier: BSD-3-Clause */
/* udrv/udrv.h - everything libudrv offers; include the concept headers for less. */
#ifndef UDRV_UDRV_H
#define UDRV_UDRV_H

#include <udrv/device.h>
#include <udrv/dma.h>
#include <udrv/emu_nvme.h>
#include <udrv/log.h>
#include <udrv/mempool.h>
#include <udrv/nvme.h>
#include <udrv/pci.h>
#include <udrv/ring.h>
#include <udrv/vfio_user_server.h>

#endif
