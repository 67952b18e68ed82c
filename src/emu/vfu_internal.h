/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user server's shared state and the contracts between its files:
 *   vfio_user_server.c  life cycle, socket, serving loop, connection set-up and tear-down
 *   vfu_transport.c     framing: receive/send with fds, server->client requests, deferral
 *   vfu_msg.c           vfu_handle_msg(): validate and answer one client message
 *   vfu_dma.c           the client's DMA table and udrv_vfu_dma_*()
 *   vfu_irq.c           eventfds, SET_IRQS, MSI/MSI-X emulation, udrv_vfu_irq_trigger()
 *   vfu_poller.c        the device poll thread and its pause handshake
 *   pci_config.c        type-0 config header, BARs, capability list, BAR region access
 */
#ifndef UDRV_EMU_VFU_INTERNAL_H
#define UDRV_EMU_VFU_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <udrv/vfio_user_server.h>

#include "proto/vfio_user.h"

#define VFU_NUM_REGIONS	 VFIO_PCI_NUM_REGIONS /* BAR0-5, ROM, CONFIG, VGA */
#define VFU_NUM_IRQS	 5		      /* INTx, MSI, MSI-X, ERR, REQ */
#define VFU_NUM_BARS	 6
#define VFU_PAGE_SIZE	 4096u
#define VFU_CFG_SIZE	 256u  /* conventional config space */
#define VFU_CFG_EXP_SIZE 4096u /* with a PCI Express capability */
/* Largest count in REGION_READ/WRITE and DMA_READ/WRITE that udrv accepts; advertised as
 * max_data_xfer_size. VFIO_USER_MAX_MSG_SIZE leaves room for the headers. */
#define VFU_MAX_XFER		 VFIO_USER_DEFAULT_MAX_DATA_XFER
#define VFU_DEFAULT_MAX_DMA_MAPS 1024u
/* Commands a client may pipeline while we wait for its reply to our DMA request; more is a
 * flood, and the connection is closed. */
#define VFU_MAX_DEFERRED       1024u
#define VFU_MAX_DEFERRED_BYTES (64u << 20)
#define VFU_MAX_MSIX_VECS      2048u

/* Type-0 header offsets (PCI Local Bus 3.0, 6.1). */
#define PCI_VENDOR_ID		  0x00
#define PCI_DEVICE_ID		  0x02
#define PCI_COMMAND		  0x04
#define PCI_COMMAND_IO		  0x0001
#define PCI_COMMAND_MEMORY	  0x0002
#define PCI_COMMAND_MASTER	  0x0004
#define PCI_COMMAND_PARITY	  0x0040
#define PCI_COMMAND_SERR	  0x0100
#define PCI_COMMAND_INTX_DISABLE  0x0400
#define PCI_STATUS		  0x06
#define PCI_STATUS_CAP_LIST	  0x0010
#define PCI_REVISION_ID		  0x08
#define PCI_CLASS_PROG		  0x09
#define PCI_CACHE_LINE_SIZE	  0x0c
#define PCI_HEADER_TYPE		  0x0e
#define PCI_BASE_ADDRESS_0	  0x10
#define PCI_SUBSYSTEM_VENDOR_ID	  0x2c
#define PCI_SUBSYSTEM_ID	  0x2e
#define PCI_CAPABILITY_LIST	  0x34
#define PCI_INTERRUPT_LINE	  0x3c
#define PCI_INTERRUPT_PIN	  0x3d
#define PCI_CAP_LIST_START	  0x40
#define PCI_CAP_ID_MSI		  0x05
#define PCI_CAP_ID_EXP		  0x10
#define PCI_CAP_ID_MSIX		  0x11
#define PCI_BASE_ADDRESS_SPACE_IO 0x01
#define PCI_BASE_ADDRESS_MEM_64	  0x04
#define PCI_BASE_ADDRESS_MEM_PREF 0x08

/* MSI capability, 64-bit with per-vector masking (PCI Local Bus 3.0, 6.8.1): 24 bytes. */
#define PCI_MSI_FLAGS	      2
#define PCI_MSI_FLAGS_ENABLE  0x0001
#define PCI_MSI_FLAGS_QMASK   0x000e
#define PCI_MSI_FLAGS_QSIZE   0x0070
#define PCI_MSI_FLAGS_64BIT   0x0080
#define PCI_MSI_FLAGS_MASKBIT 0x0100
#define PCI_MSI_ADDRESS_LO    4
#define PCI_MSI_ADDRESS_HI    8
#define PCI_MSI_DATA_64	      12
#define PCI_MSI_MASK_64	      16
#define PCI_MSI_PENDING_64    20
#define PCI_MSI_CAP_SIZE      24
/* MSI-X capability (6.8.2): 12 bytes; table entries 16 bytes (6.8.2.6-9). */
#define PCI_MSIX_FLAGS	       2
#define PCI_MSIX_FLAGS_QSIZE   0x07ff
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define PCI_MSIX_FLAGS_ENABLE  0x8000
#define PCI_MSIX_TABLE	       4
#define PCI_MSIX_PBA	       8
#define PCI_MSIX_CAP_SIZE      12
#define PCI_MSIX_ENTRY_SIZE    16
#define PCI_MSIX_ENTRY_CTRL    12
#define PCI_MSIX_ENTRY_MASKBIT 0x1

struct vfu_area {
	uint64_t off, len;
	void *mem; /* the server's mapping of the BAR memfd at off */
};

struct vfu_bar {
	uint64_t size;	/* 0: not implemented */
	unsigned flags; /* UDRV_VFU_BAR_* */
	bool upper;	/* the upper dword slot of a 64-bit BAR: no region of its own */
	const struct udrv_vfu_region_ops *ops;
	void *ctx;
	int memfd; /* backs the mmap areas, as large as the BAR; -1: none */
	unsigned nr_areas;
	struct vfu_area areas[UDRV_VFU_MAX_AREAS];
};

/* One DMA window of the client's table ("VFIO_USER_DMA_MAP"). */
struct vfu_dma_win {
	uint64_t iova, size;
	uint32_t prot; /* VFIO_USER_F_DMA_REGION_READ|WRITE */
	uint8_t *va;   /* the mapping of [iova, iova+size), or NULL: reached by messages */
};

struct vfu_msix {
	unsigned nvec; /* 0: no MSI-X capability */
	unsigned cap;
	unsigned table_bar, pba_bar;
	uint64_t table_off, pba_off;
	uint8_t *table;	   /* nvec * 16 bytes, as the client sees it */
	uint64_t *pending; /* the PBA, one bit per vector */
};

struct vfu_msi {
	unsigned nvec; /* 0: no MSI capability */
	unsigned cap;  /* mask and pending bits live in config space */
};

/* A message received while a thread waited for a reply to its own request: the serving
 * loop handles it later, in order. */
struct vfu_deferred {
	struct vfu_deferred *next;
	void *buf;
	size_t len;
	int fds[VFIO_USER_MAX_FDS];
	size_t nfds;
};

/* Where vfu_handle_msg() sends its reply. fds are borrowed, not passed on. */
struct vfu_sink {
	int (*send)(void *ctx, const struct iovec *iov, int iovcnt, const int *fds, size_t nfds);
	void *ctx;
};

struct vfu_poller {
	int (*fn)(void *ctx);
	pthread_t thread;
	bool thread_ok;
	pthread_mutex_t lock;
	pthread_cond_t cond;  /* poller parks and sleeps on it; pausers wait on it for the ack */
	int pause;	      /* outstanding pause requests (lock) */
	bool paused;	      /* the poller is parked outside its poll function (lock) */
	bool quit;	      /* (lock) */
	atomic_int attention; /* pause || quit, read by the poller without the lock */
};

struct udrv_vfu_dev {
	struct udrv_vfu_opts opts; /* socket_path points at path */
	char *path;
	int listen_fd;
	ino_t sock_ino; /* the socket file we bound, to unlink only our own */
	int stop_fd;	/* eventfd: udrv_vfu_stop() */
	int kick_fd;	/* eventfd: udrv_vfu_disconnect() */

	/* Config space and interrupt state; taken by udrv_vfu_irq_trigger() from any thread.
	 * Never held across a callback or a socket operation. */
	pthread_mutex_t lock;
	uint8_t cfg[VFU_CFG_EXP_SIZE];
	uint8_t wmask[VFU_CFG_SIZE]; /* bits the client may write */
	uint8_t w1c[VFU_CFG_SIZE];   /* bits the client clears by writing 1 */
	unsigned cap_next;	     /* where the next capability goes */
	unsigned cap_last;	     /* offset of the last capability, 0: none */
	bool express;		     /* a PCI Express capability exists: 4 KiB config space */
	struct vfu_bar bars[VFU_NUM_BARS];
	struct vfu_msix msix;
	struct vfu_msi msi;
	unsigned irq_count[VFU_NUM_IRQS];
	int *irq_fd[VFU_NUM_IRQS]; /* eventfd per vector, -1: none */
	bool intx_masked, intx_pending;

	/* The client's DMA table, sorted by iova; changed only with the poller paused. */
	struct vfu_dma_win *dma;
	unsigned dma_n, dma_cap, max_dma_maps;

	/* Per connection. */
	int conn_fd;	 /* -1: no client */
	bool conn_dead;	 /* a reader saw EOF or an error (rx_lock) */
	bool negotiated; /* VERSION done */
	uint32_t client_max_fds;
	uint64_t client_max_xfer;

	/* Transport: one reader at a time (rx_lock), one writer at a time (tx_lock), one
	 * outstanding server->client request (req_lock). */
	pthread_mutex_t rx_lock, tx_lock, req_lock;
	struct {
		bool active, done;
		uint16_t msg_id, cmd;
		void *reply; /* malloc'd whole message, or NULL */
		size_t len;
	} req;					       /* rx_lock */
	uint16_t next_id;			       /* req_lock */
	struct vfu_deferred *defer_head, **defer_tail; /* rx_lock */
	size_t defer_n, defer_bytes;		       /* rx_lock */
	int defer_fd;				       /* eventfd: something was deferred */

	struct vfu_poller poller;
	atomic_int running;
	pthread_t thread; /* from udrv_vfu_start() */
	bool thread_ok;
};

/* vfu_msg.c: handle one client message of len bytes (header included) with the fds that
 * came with it. Takes ownership of every fd: keeps or closes each and sets its slot to -1.
 * Returns 0 (answered, possibly with an error reply), or a negative errno when the
 * connection must be closed (framing broken, unsupported major version, reply failed). */
int vfu_handle_msg(struct udrv_vfu_dev *dev, const void *buf, size_t len, int *fds, size_t nfds,
		   const struct vfu_sink *sink);
/* Send an error reply (errno err) for the command in hdr unless it asked for none. */
int vfu_reply_error(const struct vfu_sink *sink, const struct vfio_user_header *hdr, int err);
/* Forget the negotiated session (disconnect). */
void vfu_session_reset(struct udrv_vfu_dev *dev);

/* vfu_transport.c */
void vfu_transport_init(struct udrv_vfu_dev *dev);
void vfu_transport_fini(struct udrv_vfu_dev *dev);
/* Read one whole message while holding rx_lock. nonblock: return -EAGAIN if no byte is
 * available yet. On success *buf is malloc'd (len bytes) and fds/nfds hold its fds.
 * Returns 0, -EAGAIN, -ECONNRESET (peer gone), -EINTR (stop requested), -EPROTO (framing
 * broken, after an error reply when one was possible). */
int vfu_recv_locked(struct udrv_vfu_dev *dev, bool nonblock, void **buf, size_t *len, int *fds,
		    size_t *nfds);
/* Send a whole message (tx_lock taken inside). Returns 0 or -errno. */
int vfu_send(struct udrv_vfu_dev *dev, const struct iovec *iov, int iovcnt, const int *fds,
	     size_t nfds);
/* A vfu_sink that sends on the connection. */
struct vfu_sink vfu_conn_sink(struct udrv_vfu_dev *dev);
/* Route a received reply to the waiting request, or queue a command for the serving loop;
 * consumes buf and fds. rx_lock held. */
void vfu_route_locked(struct udrv_vfu_dev *dev, void *buf, size_t len, int *fds, size_t nfds);
/* Pop the oldest deferred message (rx_lock held); NULL when none. */
struct vfu_deferred *vfu_defer_pop_locked(struct udrv_vfu_dev *dev);
void vfu_defer_free(struct vfu_deferred *d);
/* Send command cmd with payload to the client and wait for its reply, whose payload (after
 * the header) is returned malloc'd in *reply (length *reply_len). Returns 0, or -errno: the
 * client's error reply, -ENOTCONN, -ECONNRESET, -EINTR (stop). Any thread (see the header). */
int vfu_request(struct udrv_vfu_dev *dev, uint16_t cmd, const struct iovec *payload, int iovcnt,
		void **reply, size_t *reply_len);
void vfu_close_fds(int *fds, size_t nfds);

/* vfu_dma.c */
int vfu_dma_map(struct udrv_vfu_dev *dev, const struct vfio_user_dma_map *m, int fd);
int vfu_dma_unmap(struct udrv_vfu_dev *dev, const struct vfio_user_dma_unmap *u);
void vfu_dma_unmap_all(struct udrv_vfu_dev *dev);
void vfu_dma_fini(struct udrv_vfu_dev *dev);

/* vfu_irq.c */
int vfu_irq_init(struct udrv_vfu_dev *dev);
void vfu_irq_fini(struct udrv_vfu_dev *dev);
int vfu_irq_info(struct udrv_vfu_dev *dev, unsigned index, uint32_t *flags, uint32_t *count);
/* hdr: the SET_IRQS payload header; data: the bytes after it. Consumes fds it keeps. */
int vfu_irq_set(struct udrv_vfu_dev *dev, const struct vfio_user_irq_set *hdr, const uint8_t *data,
		size_t data_len, int *fds, size_t nfds);
/* Close every eventfd and disable MSI/MSI-X (disconnect). */
void vfu_irq_disable_all(struct udrv_vfu_dev *dev);
/* Clear pending bits (reset). */
void vfu_irq_reset(struct udrv_vfu_dev *dev);
/* Deliver pending vectors that became deliverable (lock held). */
void vfu_irq_update_locked(struct udrv_vfu_dev *dev);
/* Client access to the MSI-X table / PBA; off is relative to the structure and
 * [off, off+len) lies inside it. lock held. */
void vfu_msix_table_access_locked(struct udrv_vfu_dev *dev, uint64_t off, void *buf, size_t len,
				  bool write);
void vfu_msix_pba_read_locked(struct udrv_vfu_dev *dev, uint64_t off, void *buf, size_t len);

/* pci_config.c */
void vfu_pci_init(struct udrv_vfu_dev *dev);
unsigned vfu_cfg_size(const struct udrv_vfu_dev *dev);
/* Client access to the config region; off/len already range-checked. Returns len/-errno. */
int vfu_cfg_client_read(struct udrv_vfu_dev *dev, uint64_t off, void *buf, size_t len);
int vfu_cfg_client_write(struct udrv_vfu_dev *dev, uint64_t off, const void *buf, size_t len);
/* Client access to BAR region bar; off/len range-checked. Returns len/-errno. */
int vfu_bar_access(struct udrv_vfu_dev *dev, unsigned bar, uint64_t off, void *buf, size_t len,
		   bool write);
/* Region size as reported to the client (0: no such region). */
uint64_t vfu_region_size(const struct udrv_vfu_dev *dev, unsigned index);
/* Place a capability (lock held); returns its offset or -errno. */
int vfu_cap_add_locked(struct udrv_vfu_dev *dev, uint8_t id, const void *data, size_t len,
		       const void *wmask);
void vfu_bars_fini(struct udrv_vfu_dev *dev);
uint16_t vfu_cfg_get16(const struct udrv_vfu_dev *dev, unsigned off);
void vfu_cfg_set16(struct udrv_vfu_dev *dev, unsigned off, uint16_t v);
uint32_t vfu_cfg_get32(const struct udrv_vfu_dev *dev, unsigned off);
void vfu_cfg_set32(struct udrv_vfu_dev *dev, unsigned off, uint32_t v);

/* vfu_poller.c */
void vfu_poller_init(struct udrv_vfu_dev *dev);
int vfu_poller_start(struct udrv_vfu_dev *dev); /* starts paused */
void vfu_poller_stop(struct udrv_vfu_dev *dev);
void vfu_poller_fini(struct udrv_vfu_dev *dev);
/* Wait until the poll function is not running and keep it parked until resume. Nests. */
void vfu_poller_pause(struct udrv_vfu_dev *dev);
void vfu_poller_resume(struct udrv_vfu_dev *dev);

/* vfio_user_server.c: tear down the current connection (poller paused inside). */
void vfu_conn_close(struct udrv_vfu_dev *dev);
/* Initialise everything but the socket (for the fuzzer). */
struct udrv_vfu_dev *vfu_dev_alloc(const struct udrv_vfu_opts *opts);
void vfu_dev_free(struct udrv_vfu_dev *dev);

#endif
