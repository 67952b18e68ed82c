/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv/vfio_user_server.h - serve an emulated PCI device over the vfio-user protocol.
 *
 * A device model (an NVMe controller, a sample device) describes its PCI function - IDs,
 * BARs, capabilities, MSI/MSI-X - and the library does the rest of the protocol (QEMU
 * docs/interop/vfio-user.rst): version negotiation, config space, region info with sparse
 * mmap areas, region read/write, the client's DMA table, interrupts via eventfds, reset, and
 * reconnects. Every message from the client is validated; bad ones get an error reply.
 *
 * Life cycle:
 *   dev = udrv_vfu_create(&opts);                  bind the socket
 *   udrv_vfu_add_bar(), udrv_vfu_bar_mmap_area(),  describe the function (set-up time only)
 *   udrv_vfu_add_cap(), udrv_vfu_add_msix(), udrv_vfu_set_poller()
 *   udrv_vfu_run(dev)  or  udrv_vfu_start(dev)     serve clients, one at a time
 *   udrv_vfu_stop(dev); udrv_vfu_destroy(dev);
 *
 * Threads:
 *  - The serving thread (the caller of udrv_vfu_run(), or the thread udrv_vfu_start()
 *    creates) handles messages and makes every callback in udrv_vfu_opts and
 *    udrv_vfu_region_ops.
 *  - The poller thread (only with udrv_vfu_set_poller()) calls the poll function while a
 *    client is connected. The library pauses it, and waits until its poll function has
 *    returned, before it changes the DMA table (DMA_MAP/DMA_UNMAP), calls reset and on
 *    disconnect: a poll function never sees memory disappear under it, as the spec requires
 *    ("VFIO_USER_DMA_UNMAP": release all references before replying).
 *  - DMA functions may be called from the poll function and from callbacks on the serving
 *    thread. A pointer from udrv_vfu_dma_ptr() stays valid until that poll function or
 *    callback returns.
 *  - udrv_vfu_irq_trigger() and the config helpers may be called from any thread.
 *  - Set-up functions must be called before udrv_vfu_run()/udrv_vfu_start() (-EBUSY after).
 *
 * Errors: functions return 0 (or a count/offset) on success and a negative errno on failure,
 * or NULL with errno; udrv_errmsg() then holds one sentence saying what to do.
 */
#ifndef UDRV_VFIO_USER_SERVER_H
#define UDRV_VFIO_USER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <udrv/device.h> /* enum udrv_irq_type */

#ifdef __cplusplus
extern "C" {
#endif

struct udrv_vfu_dev;

/*
 * Access to the parts of a BAR that are neither mmap areas nor MSI-X structures. Both are
 * called on the serving thread with off/len inside the BAR (len >= 1, at most 1 MiB; the
 * client chooses size and alignment). Return len, or a negative errno that is sent to the
 * client as an error reply. A NULL callback makes that direction read as zeros / ignore
 * writes.
 */
struct udrv_vfu_region_ops {
	int (*read)(void *ctx, unsigned bar, uint64_t off, void *buf, size_t len);
	int (*write)(void *ctx, unsigned bar, uint64_t off, const void *buf, size_t len);
};

struct udrv_vfu_opts {
	/* UNIX socket to listen on. A stale socket file (nobody listening) is replaced. */
	const char *socket_path;
	/* PCI identity (PCI Local Bus 3.0, 6.2.1). class_code is 24 bits: base class,
	 * sub-class, programming interface, e.g. 0x010802 for an NVMe controller. */
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subsys_vendor_id;
	uint16_t subsys_id;
	uint32_t class_code;
	uint8_t revision;
	/* Passed to every callback and to the poll function. */
	void *ctx;
	/* VFIO_USER_DEVICE_RESET: return the model to its power-on state. Serving thread, with
	 * the poller paused. Config space, interrupts and DMA mappings are kept, as a VFIO
	 * function reset keeps them; pending MSI/MSI-X bits are cleared. Return 0 or -errno
	 * (sent as an error reply). NULL: reset only clears pending bits. */
	int (*reset)(void *ctx);
	/* Optional notifications on the serving thread. connected: a client's socket was
	 * accepted (before any message). disconnected: it went away; its DMA mappings and
	 * interrupt eventfds are already gone, device state is kept for a reconnect. */
	void (*connected)(void *ctx);
	void (*disconnected)(void *ctx);
	/* Optional: the client wrote config space bytes [off, off+len) (after the write took
	 * effect). Serving thread. Lets a model react to e.g. Bus Master Enable. */
	void (*config_written)(void *ctx, unsigned off, size_t len);
	/* Maximum simultaneous DMA windows offered to the client; 0: 1024, at most 65535. */
	unsigned max_dma_maps;
};

/*
 * Create a device and bind+listen on opts->socket_path. Nothing is served until
 * udrv_vfu_run()/udrv_vfu_start().
 * Returns the device, or NULL with errno:
 *   EADDRINUSE    another server is listening on the path (udrv_errmsg() says so);
 *   EEXIST        the path exists and is not a socket (it is never removed);
 *   ENAMETOOLONG  the path does not fit a sockaddr_un;
 *   EINVAL        opts or socket_path missing, max_dma_maps too large;
 *   other         from socket()/bind()/memory allocation.
 * Thread: any.
 */
struct udrv_vfu_dev *udrv_vfu_create(const struct udrv_vfu_opts *opts);

/*
 * Stop serving (joining the thread udrv_vfu_start() made), disconnect the client, close
 * and unlink the socket, free everything. Must not be called while another thread is inside
 * udrv_vfu_run() for this device (stop it and wait first). NULL is ignored.
 */
void udrv_vfu_destroy(struct udrv_vfu_dev *dev);

/* udrv_vfu_add_bar() flags (PCI Local Bus 3.0, 6.2.5.1). */
enum {
	UDRV_VFU_BAR_MEM32 = 0,		 /* 32-bit memory BAR */
	UDRV_VFU_BAR_MEM64 = 1u << 0,	 /* 64-bit memory BAR: uses slots bar and bar+1 */
	UDRV_VFU_BAR_IO = 1u << 1,	 /* I/O BAR (4..256 bytes, never mappable) */
	UDRV_VFU_BAR_PREFETCH = 1u << 2, /* prefetchable memory */
};

/*
 * Declare BAR bar (0..5) of size bytes. size must be a power of two (PCI requires it): at
 * least 16 for memory, 4..256 for I/O, at most 2 GiB for MEM32. ops (may be NULL) and ctx
 * serve the client's region reads and writes. Sizing by writing all-ones to the BAR
 * register reads back the size mask, as PCI requires.
 * Returns 0, or -EINVAL (bad index, size, flags; 64-bit BAR in slot 5), -EEXIST (slot
 * taken), -EBUSY (already serving).
 */
int udrv_vfu_add_bar(struct udrv_vfu_dev *dev, unsigned bar, uint64_t size, unsigned flags,
		     const struct udrv_vfu_region_ops *ops, void *ctx);

#define UDRV_VFU_MAX_AREAS 8

/*
 * Back [off, off+len) of memory BAR bar with shared memory the client can mmap (reported
 * in the VFIO_REGION_INFO_CAP_SPARSE_MMAP capability, with the BAR's memfd in the reply).
 * The device model reads and writes the same memory through the returned pointer, e.g. to
 * poll doorbells; accesses the client makes by REGION_READ/WRITE land there too, without a
 * callback. off and len must be 4 KiB-aligned, inside the BAR, and overlap neither another
 * area nor an MSI-X table or PBA. Memory starts zeroed and lives until udrv_vfu_destroy().
 * Returns the area's address, or NULL with errno EINVAL (bad range, I/O BAR, no such BAR),
 * EEXIST (overlap), ENOSPC (more than UDRV_VFU_MAX_AREAS), EBUSY (already serving), or an
 * error from memfd_create()/mmap().
 */
void *udrv_vfu_bar_mmap_area(struct udrv_vfu_dev *dev, unsigned bar, uint64_t off, uint64_t len);

/*
 * Append a capability to the config-space list (PCI Local Bus 3.0, 6.7). data holds the
 * whole capability, len bytes (2..192) starting with its ID and next-pointer bytes, which
 * the library fills in. wmask (len bytes, or NULL for read-only) marks the bits the client
 * may write. The capability is placed at the next dword-aligned offset from 0x40 and the
 * status register's Capabilities List bit is set. Adding a PCI Express capability (ID
 * 0x10) makes config space 4096 bytes; otherwise it is 256.
 * Returns the capability's config-space offset, or -EINVAL (bad length), -ENOSPC (no room
 * below 0x100), -EBUSY (already serving).
 */
int udrv_vfu_add_cap(struct udrv_vfu_dev *dev, uint8_t id, const void *data, size_t len,
		     const void *wmask);

/*
 * Add an MSI-X capability with nvec vectors (1..2048), its table at table_off of BAR
 * table_bar and its pending-bit array at pba_off of BAR pba_bar (PCI Local Bus 3.0, 6.8.2).
 * Both must be QWORD-aligned inside memory BARs already added, and must not overlap each
 * other or an mmap area. The library emulates table and PBA: per-vector mask, function mask
 * and enable bit; an interrupt raised while masked sets its pending bit and is delivered on
 * unmask. Like the kernel's vfio-pci, enabling vectors with SET_IRQS enables MSI-X and
 * unmasks those vectors; the client may mask them again through the table.
 * Returns the capability's offset, or -EINVAL, -EEXIST (already added), -ENOSPC, -EBUSY.
 */
int udrv_vfu_add_msix(struct udrv_vfu_dev *dev, unsigned nvec, unsigned table_bar,
		      uint64_t table_off, unsigned pba_bar, uint64_t pba_off);

/*
 * Add an MSI capability (64-bit, per-vector masking; PCI Local Bus 3.0, 6.8.1) with nvec
 * vectors (1, 2, 4, 8, 16 or 32). Masking and pending bits behave as for MSI-X.
 * Returns the capability's offset, or -EINVAL, -EEXIST, -ENOSPC, -EBUSY.
 */
int udrv_vfu_add_msi(struct udrv_vfu_dev *dev, unsigned nvec);

/*
 * Device-side config space access, bypassing write masks and side effects: a model reads
 * what the client programmed or updates read-only fields (a capability's status). off+len
 * must lie within 4096 bytes. Returns len or -EINVAL. Thread: any.
 */
int udrv_vfu_config_read(struct udrv_vfu_dev *dev, unsigned off, void *buf, size_t len);
int udrv_vfu_config_write(struct udrv_vfu_dev *dev, unsigned off, const void *buf, size_t len);

/* Whether the client set Bus Master Enable (command register bit 2). Thread: any. */
bool udrv_vfu_bus_master(struct udrv_vfu_dev *dev);

/*
 * Run poll(ctx) on a device thread while a client is connected. It returns > 0 when it did
 * work; otherwise the thread spins briefly, then sleeps with a growing interval up to about
 * 1 ms, so an idle device does not burn a core (work is picked up within ~1 ms of idleness).
 * Returns 0, or -EBUSY (already serving). NULL removes the poller.
 */
int udrv_vfu_set_poller(struct udrv_vfu_dev *dev, int (*poll)(void *ctx));

/*
 * Serve clients in the calling thread until udrv_vfu_stop(): accept one client, handle its
 * messages, clean up when it disconnects (DMA mappings dropped, interrupt eventfds closed,
 * device state kept), accept the next. Extra simultaneous connections are closed at once.
 * Returns 0 after udrv_vfu_stop(), -EBUSY if already running, or -errno if the listening
 * socket fails.
 */
int udrv_vfu_run(struct udrv_vfu_dev *dev);

/* udrv_vfu_run() on a new thread. Returns 0, -EBUSY (running), or -errno. */
int udrv_vfu_start(struct udrv_vfu_dev *dev);

/*
 * Make udrv_vfu_run() return soon (also interrupts a wait for a client's DMA reply).
 * Async-signal-safe: it only write()s an eventfd. A stop before run() makes the next run()
 * return at once. Thread: any.
 */
void udrv_vfu_stop(struct udrv_vfu_dev *dev);

/*
 * Drop the current client, as a surprise removal would: the serving thread closes the
 * connection (the client's next request fails), cleans up as for a disconnect, and waits
 * for the next client. Async-signal-safe; may be called from the poll function. No client:
 * nothing happens.
 */
void udrv_vfu_disconnect(struct udrv_vfu_dev *dev);

/*
 * Pointer to client memory [iova, iova+len) if it lies entirely inside one DMA window the
 * client mapped with a file descriptor and with the needed permission (write: the window is
 * writable; else readable). NULL otherwise (also for len 0 and for windows without an fd:
 * use udrv_vfu_dma_read/write for those). Thread: see above.
 */
void *udrv_vfu_dma_ptr(struct udrv_vfu_dev *dev, uint64_t iova, size_t len, bool write);

/*
 * Copy len bytes from / to client memory at iova. The range may span adjacent windows;
 * every byte must be mapped with the needed permission, else nothing is copied. Windows
 * without an fd are reached with VFIO_USER_DMA_READ/WRITE messages in chunks of at most the
 * client's max_data_xfer_size (this waits for the client's replies).
 * Returns 0, or -EFAULT (not mapped, no permission, client error or gone; udrv_errmsg()
 * says which). Thread: see above.
 */
int udrv_vfu_dma_read(struct udrv_vfu_dev *dev, uint64_t iova, void *buf, size_t len);
int udrv_vfu_dma_write(struct udrv_vfu_dev *dev, uint64_t iova, const void *buf, size_t len);

/*
 * Raise interrupt vector of type (UDRV_IRQ_INTX: vector 0; MSI, MSI-X; ERR and REQ: vector
 * 0) by signalling the client's eventfd. A masked MSI/MSI-X vector (or INTx masked with
 * SET_IRQS) is marked pending instead and delivered when unmasked.
 * Returns 0 (signalled or left pending), -ENOENT (the client has not enabled it: no eventfd,
 * MSI/MSI-X disabled, or INTx disabled in the command register), -EINVAL (no such vector).
 * Thread: any.
 */
int udrv_vfu_irq_trigger(struct udrv_vfu_dev *dev, enum udrv_irq_type type, unsigned vector);

#ifdef __cplusplus
}
#endif
#endif
