/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user client in three parts:
 *   vfio_user_client_msg.c   the VERSION offer, and the checks and decoding of everything the
 *                            server sends, with no socket involved, so that the unit tests and
 *                            the fuzz target reach every check an untrusted server's bytes meet;
 *   vfio_user_client_conn.c  the connection: socket, receive thread, request/reply, VERSION;
 *   vfio_user_client.c       the device backend (struct udrv_device_ops) on top.
 *
 * Every decoder takes a payload (the bytes after the 16-byte header) of len bytes and returns 0
 * or a negative errno with udrv_errmsg() set; none of them trusts a length or offset it reads.
 */
#ifndef UDRV_VFIO_USER_CLIENT_INTERNAL_H
#define UDRV_VFIO_USER_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <udrv/device.h>

#include "proto/vfio_user.h"

/* What udrv offers in VERSION, and so the most it accepts from the server. */
#define VU_OUR_MAX_FDS	VFIO_USER_MAX_FDS
#define VU_OUR_MAX_XFER VFIO_USER_DEFAULT_MAX_DATA_XFER

/* Bounds on values a server reports; anything outside is a broken server, not a choice. */
#define VU_MAX_PEER_FDS	   1024u       /* libvfio-user's own cap on max_msg_fds */
#define VU_MIN_XFER	   8u	       /* one 64-bit register access must fit in one message */
#define VU_INFO_MAX	   (64u << 10) /* region info with capabilities; real ones are < 1 KiB */
#define VU_MAX_IRQ_VECTORS 2048u       /* the MSI-X table size limit (PCI 3.0 section 6.8.2.3) */

/* The session's parameters after "VFIO_USER_VERSION" negotiation (spec, Capabilities). */
struct vu_caps {
	uint16_t minor;
	uint32_t max_msg_fds;	     /* fds the server accepts per message */
	uint32_t max_data_xfer_size; /* largest REGION_READ/WRITE count the server accepts */
	uint32_t max_dma_maps;	     /* DMA windows the server keeps at once */
	uint64_t pgsizes;	     /* DMA_MAP page sizes; the smallest is the granule */
};

/* One DMA_MAP window: the server may reach [iova, iova + len), which is va in this process. */
struct vu_dma_win {
	uint64_t iova;
	uint64_t len;
	void *va;
};

struct vu_dma_table {
	struct vu_dma_win *w;
	unsigned n, cap;
};

/* A region as the server describes it ("VFIO_USER_DEVICE_GET_REGION_INFO"). */
struct vu_region {
	uint32_t vflags;   /* VFIO_REGION_INFO_FLAG_* */
	uint64_t mmap_off; /* offset of the region in the fd sent with the reply */
	struct udrv_region_info info;
};

/* Build the VERSION request payload (major, minor, NUL-terminated JSON) into a malloc()ed
 * buffer. Returns its length, or -ENOMEM. */
int vu_version_build(void **out);

/* Check the VERSION reply payload and fill caps (defaults for what it leaves out). */
int vu_version_parse(const void *p, size_t len, struct vu_caps *caps);

/* Check a header read from the socket, before its payload is read: size within bounds, a known
 * message type. Returns 0 or -EPROTO. */
int vu_hdr_check(const struct vfio_user_header *h, size_t max_size);

/* Check that msg (len bytes, header included) is the reply to request id/cmd. Returns 0, the
 * negated errno of an error reply (-EIO when the server gave none), or -EPROTO. */
int vu_reply_check(const void *msg, size_t len, uint16_t id, uint16_t cmd);

int vu_decode_device_info(const void *p, size_t len, struct vfio_user_device_info *out);

/*
 * Decode a region info reply to a request for index with argsz asked. When the server needs a
 * larger buffer (spec, "Message sizes"), *need is set to the size to ask again with and 0 is
 * returned without filling out; otherwise *need is 0.
 */
int vu_decode_region_info(const void *p, size_t len, uint32_t index, uint32_t asked,
			  struct vu_region *out, uint32_t *need);

int vu_decode_irq_info(const void *p, size_t len, uint32_t index, struct vfio_user_irq_info *out);

/* Check a REGION_READ (read) or REGION_WRITE reply against its request; for a read, the data
 * is the count bytes after the 16-byte access header. */
int vu_decode_region_access(const void *p, size_t len, uint32_t region, uint64_t off,
			    uint32_t count, bool read);

/* A DMA_UNMAP reply carries nothing or the request's entry back (spec, "VFIO_USER_DMA_UNMAP"). */
int vu_decode_dma_unmap(const void *p, size_t len, uint64_t addr, uint64_t size);

/*
 * Answer a command from the server (msg, len bytes, header included; vu_hdr_check() passed):
 * DMA_READ and DMA_WRITE against the windows of t, everything else refused. Accesses must lie
 * wholly inside mapped windows, or the reply is an error (EFAULT). *reply is a malloc()ed
 * message to send back, or NULL when the command asked for none. Returns 0 or -ENOMEM.
 */
int vu_serve(const struct vu_dma_table *t, const void *msg, size_t len, void **reply,
	     size_t *reply_len);

/* Windows: add (-ENOMEM), remove the one starting at iova with len (-ENOENT). */
int vu_dma_add(struct vu_dma_table *t, uint64_t iova, uint64_t len, void *va);
int vu_dma_del(struct vu_dma_table *t, uint64_t iova, uint64_t len);
void vu_dma_fini(struct vu_dma_table *t);

/* ---- the connection (vfio_user_client_conn.c) ---- */

/* A message from the server. */
struct vu_msg {
	uint8_t *buf; /* len bytes, header included */
	size_t len;
	int fds[VU_OUR_MAX_FDS]; /* received with it; set to -1 when taken */
	unsigned nfds;
};

struct vu_conn {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int sock;
	int timeout_ms; /* for every request: UDRV_VFIO_USER_TIMEOUT_MS or 5 s */
	struct vu_caps caps;
	pthread_t rx; /* the receive thread */
	bool rx_started;
	pthread_mutex_t call_lock; /* one request in flight */
	pthread_mutex_t send_lock; /* one message at a time on the socket */
	pthread_mutex_t lock;	   /* everything below */
	pthread_cond_t cond;
	bool gone, closing;
	char why[128]; /* why the server is gone */
	uint16_t next_id;
	bool waiting;
	uint16_t wait_id;
	struct vu_msg *reply;	 /* the reply to wait_id, once received */
	struct vu_dma_table dma; /* read by the receive thread to serve DMA_READ/WRITE */
};

/* Connect to the server at path, start the receive thread and negotiate the version and
 * capabilities (spec, "VFIO_USER_VERSION"). On failure nothing is left to release. */
int vu_conn_open(struct vu_conn *c, const char *path);

/* Hang up, stop the receive thread, release everything. */
void vu_conn_close(struct vu_conn *c);

/*
 * Send command cmd with the payload in iov[0..iovcnt) (at most 3) and fds, and wait for its
 * reply, which must pass vu_reply_check(). On success *rep is the reply (free it with
 * vu_msg_free(), which closes the fds not taken). Returns 0, the server's error as -errno,
 * -EPROTO, or -ENODEV when the server is gone (timeout, EOF, send failure).
 */
int vu_call(struct vu_conn *c, uint16_t cmd, const struct iovec *iov, int iovcnt, const int *fds,
	    unsigned nfds, struct vu_msg **rep);

/* vu_call() for a request of len bytes whose reply carries nothing udrv needs. */
int vu_call_simple(struct vu_conn *c, uint16_t cmd, const void *req, size_t len, const int *fds,
		   unsigned nfds);

void vu_msg_free(struct vu_msg *m);

/* Re-record the current error with the socket path in front (-ENODEV passes unchanged). */
int vu_with_path(struct vu_conn *c, int rc);

static inline const void *vu_payload(const struct vu_msg *m)
{
	return m->buf + sizeof(struct vfio_user_header);
}

static inline size_t vu_plen(const struct vu_msg *m)
{
	return m->len - sizeof(struct vfio_user_header);
}

#endif
