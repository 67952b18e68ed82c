/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user wire format, shared by udrv's client backend (src/bus/vfio_user_client.c) and
 * its server library (src/emu/vfio_user_server.c). Source: QEMU docs/interop/vfio-user.rst
 * ("vfio-user Protocol Specification"); section names are cited beside each structure. Region,
 * IRQ and capability payloads reuse struct vfio_region_info, vfio_irq_info, vfio_irq_set and
 * vfio_info_cap_header from <linux/vfio.h>, as the specification says.
 *
 * All data is in host byte order (spec, "Protocol Specification"). Every structure here is
 * packed to the specification's offsets, checked by the static assertions at the end.
 */
#ifndef UDRV_PROTO_VFIO_USER_H
#define UDRV_PROTO_VFIO_USER_H

#include <stddef.h>
#include <stdint.h>

#include <linux/vfio.h>

/* "Commands" */
enum vfio_user_command {
	VFIO_USER_VERSION = 1,
	VFIO_USER_DMA_MAP = 2,
	VFIO_USER_DMA_UNMAP = 3,
	VFIO_USER_DEVICE_GET_INFO = 4,
	VFIO_USER_DEVICE_GET_REGION_INFO = 5,
	VFIO_USER_DEVICE_GET_REGION_IO_FDS = 6,
	VFIO_USER_DEVICE_GET_IRQ_INFO = 7,
	VFIO_USER_DEVICE_SET_IRQS = 8,
	VFIO_USER_REGION_READ = 9,
	VFIO_USER_REGION_WRITE = 10,
	VFIO_USER_DMA_READ = 11,
	VFIO_USER_DMA_WRITE = 12,
	VFIO_USER_DEVICE_RESET = 13,
	VFIO_USER_REGION_WRITE_MULTI = 15,
	VFIO_USER_DEVICE_FEATURE = 16,
	VFIO_USER_MIG_DATA_READ = 17,
	VFIO_USER_MIG_DATA_WRITE = 18,
	VFIO_USER_MAX_COMMAND = 19,
};

/* "Header": flags bits 0-3 type, bit 4 no_reply, bit 5 error. */
#define VFIO_USER_F_TYPE_MASK 0xfu
#define VFIO_USER_F_TYPE_COMMAND 0x0u
#define VFIO_USER_F_TYPE_REPLY 0x1u
#define VFIO_USER_F_NO_REPLY (1u << 4)
#define VFIO_USER_F_ERROR (1u << 5)

struct vfio_user_header {
	uint16_t msg_id;
	uint16_t command;
	uint32_t msg_size; /* the whole message, header included */
	uint32_t flags;
	uint32_t error_no; /* errno in an error reply; reserved in a command */
} __attribute__((packed));

/* "VFIO_USER_VERSION": followed by optional NUL-terminated JSON. */
#define VFIO_USER_MAJOR 0
#define VFIO_USER_MINOR 2 /* the version udrv speaks; peers settle on the lower minor */

struct vfio_user_version {
	uint16_t major;
	uint16_t minor;
	char data[]; /* JSON: {"capabilities": {...}} */
} __attribute__((packed));

/* Defaults when a capability is absent ("VFIO_USER_VERSION", Capabilities). */
#define VFIO_USER_DEFAULT_MAX_FDS 1
#define VFIO_USER_DEFAULT_MAX_DATA_XFER (1u << 20)
#define VFIO_USER_DEFAULT_MAX_DMA_MAPS 65535
#define VFIO_USER_DEFAULT_PGSIZES 4096ull

/* "VFIO_USER_DMA_MAP" / "VFIO_USER_DMA_UNMAP" */
#define VFIO_USER_F_DMA_REGION_READ (1u << 0)
#define VFIO_USER_F_DMA_REGION_WRITE (1u << 1)

struct vfio_user_dma_map {
	uint32_t argsz; /* sizeof(struct vfio_user_dma_map) == 32 */
	uint32_t flags;
	uint64_t offset; /* in the fd sent with the message; 0 when none */
	uint64_t addr;	 /* IOVA */
	uint64_t size;
} __attribute__((packed));

struct vfio_user_dma_unmap {
	uint32_t argsz; /* maximum reply payload */
	uint32_t flags; /* unused in this version */
	uint64_t addr;
	uint64_t size;
} __attribute__((packed));

/* "VFIO_USER_DEVICE_GET_INFO": struct vfio_device_info's first four fields. */
struct vfio_user_device_info {
	uint32_t argsz;
	uint32_t flags; /* VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI */
	uint32_t num_regions;
	uint32_t num_irqs;
} __attribute__((packed));

/* "VFIO_USER_DEVICE_GET_REGION_INFO": struct vfio_region_info, then capabilities. */
struct vfio_user_region_info {
	uint32_t argsz;
	uint32_t flags; /* VFIO_REGION_INFO_FLAG_READ|WRITE|MMAP|CAPS */
	uint32_t index;
	uint32_t cap_offset; /* from the start of this structure */
	uint64_t size;
	uint64_t offset; /* mmap offset in the fd sent with the reply */
} __attribute__((packed));

/* "VFIO_USER_DEVICE_GET_IRQ_INFO": struct vfio_irq_info. */
struct vfio_user_irq_info {
	uint32_t argsz;
	uint32_t flags; /* VFIO_IRQ_INFO_EVENTFD|MASKABLE|AUTOMASKED|NORESIZE */
	uint32_t index;
	uint32_t count;
} __attribute__((packed));

/* "VFIO_USER_DEVICE_SET_IRQS": struct vfio_irq_set; eventfds travel as SCM_RIGHTS. */
struct vfio_user_irq_set {
	uint32_t argsz;
	uint32_t flags; /* VFIO_IRQ_SET_DATA_* | VFIO_IRQ_SET_ACTION_* */
	uint32_t index;
	uint32_t start;
	uint32_t count;
	uint8_t data[]; /* DATA_BOOL: count bytes */
} __attribute__((packed));

/* "VFIO_USER_REGION_READ" / "VFIO_USER_REGION_WRITE" */
struct vfio_user_region_access {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
	uint8_t data[]; /* read reply, write request */
} __attribute__((packed));

/* "VFIO_USER_DMA_READ" / "VFIO_USER_DMA_WRITE" (server -> client). The DMA_WRITE reply's
 * count is documented as 4 bytes wide; peers send 8. Accept a reply of at least 12 bytes. */
struct vfio_user_dma_access {
	uint64_t addr;
	uint64_t count;
	uint8_t data[]; /* read reply, write request */
} __attribute__((packed));

/* Sanity limits for messages from an untrusted peer. */
#define VFIO_USER_MAX_MSG_SIZE ((1u << 20) + 4096) /* max_data_xfer_size + headers */
#define VFIO_USER_MAX_FDS 32			  /* per message, udrv's side */

_Static_assert(sizeof(struct vfio_user_header) == 16, "spec: Header is 16 bytes");
_Static_assert(sizeof(struct vfio_user_dma_map) == 32, "spec: DMA_MAP payload is 32 bytes");
_Static_assert(sizeof(struct vfio_user_dma_unmap) == 24, "spec: DMA_UNMAP payload is 24 bytes");
_Static_assert(sizeof(struct vfio_user_device_info) == 16, "spec: DEVICE_GET_INFO is 16 bytes");
_Static_assert(sizeof(struct vfio_user_region_info) == 32, "spec: REGION_INFO is 32 bytes");
_Static_assert(sizeof(struct vfio_user_region_info) == sizeof(struct vfio_region_info),
	       "spec: region info is struct vfio_region_info");
_Static_assert(sizeof(struct vfio_user_irq_info) == sizeof(struct vfio_irq_info),
	       "spec: IRQ info is struct vfio_irq_info");
_Static_assert(sizeof(struct vfio_user_irq_set) == 20, "spec: SET_IRQS header is 20 bytes");
_Static_assert(sizeof(struct vfio_user_region_access) == 16, "spec: REGION_READ is 16 bytes");
_Static_assert(sizeof(struct vfio_user_dma_access) == 16, "spec: DMA_READ is 16 bytes");
_Static_assert(offsetof(struct vfio_user_region_info, size) == 16, "spec offsets");
_Static_assert(offsetof(struct vfio_user_dma_map, addr) == 16, "spec offsets");

#endif
