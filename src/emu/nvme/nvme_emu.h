/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller's shared state and the contracts between its files:
 *   ctrl.c     life cycle, BAR0 registers, CC/CSTS state machine (NVMe 1.4, 7.6), stats
 *   queue.c    the device thread: doorbells, SQ fetch, CQ post, deferred completions, MSI-X
 *   admin.c    admin command set (NVMe 1.4, 5)
 *   io.c       NVM command set: read, write, flush, write zeroes, DSM, compare (NVMe 1.4, 6)
 *   dptr.c     PRP (4.3) and SGL (4.4) data pointers -> checked segments of host memory
 *   backing.c  where the blocks live: RAM, a file by pread/pwrite, or a file by io_uring
 *   faults.c   the fault-injection syntax and the armed faults
 *   control.c  the control socket (faults and stats at run time)
 *
 * Threads. The serving thread (vfio-user) answers register reads/writes; it never touches
 * queues: a CC write is stored and picked up by the device thread, which owns every queue,
 * namespace transfer, log and feature. CSTS is written by the device thread and read by
 * register reads. The library pauses the device thread around DMA table changes, device
 * reset and disconnect, so those callbacks may reset controller state directly.
 */
#ifndef UDRV_EMU_NVME_INTERNAL_H
#define UDRV_EMU_NVME_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <udrv/emu_nvme.h>
#include <udrv/vfio_user_server.h>

#include "proto/nvme.h"

#define NVEMU_PAGE	4096u /* the only memory page size (CAP.MPSMIN/MAX 0) */
#define NVEMU_MDTS	6u    /* max transfer 2^6 pages */
#define NVEMU_MAX_XFER	(NVEMU_PAGE << NVEMU_MDTS) /* 256 KiB */
#define NVEMU_MAX_SEGS	256u			   /* segments one command's data may span */
#define NVEMU_MAX_QID	UDRV_EMU_NVME_MAX_QUEUES
#define NVEMU_AERL	3u    /* 0's based: 4 outstanding Asynchronous Event Requests */
#define NVEMU_ACL	3u    /* 0's based: 4 outstanding Aborts */
#define NVEMU_ELPE	15u   /* 0's based: 16 error log entries */
#define NVEMU_PENDING	4096u /* completions waiting for their time (latency fault) */
#define NVEMU_BAR_REGS	0u
#define NVEMU_BAR0_SIZE 0x4000u
#define NVEMU_BAR_MSIX	4u
#define NVEMU_BAR_PBA	5u
#define NVEMU_VENDOR_ID 0x1b36 /* QEMU's vendor ID for emulated test devices, as dmacopy */
#define NVEMU_DEVICE_ID 0xd3a1
#define NVEMU_CLASS	0x010802 /* mass storage, NVM, NVM Express */

/* ---- dptr.c ------------------------------------------------------------------------- */

/* One piece of a command's data in host memory. A bit bucket (SGL, reads only) has no
 * memory: the controller discards those bytes. */
struct nvemu_seg {
	uint64_t iova;
	uint32_t len;
	bool bucket;
};

struct nvemu_dptr {
	struct nvemu_seg seg[NVEMU_MAX_SEGS];
	unsigned n;
	uint64_t len; /* sum of seg[].len: the transfer length */
};

/* Reads len bytes of host memory at iova (PRP lists, SGL segments). Returns 0 or -EFAULT. */
typedef int (*nvemu_read_fn)(void *ctx, uint64_t iova, void *buf, size_t len);

/*
 * Resolve cmd's data pointer for a transfer of len bytes (1..NVEMU_MAX_XFER) into segments:
 * PRP1/PRP2 and PRP lists (chained through each list page's last entry) when PSDT is 0,
 * SGL descriptors (data block, bit bucket, segment, last segment) otherwise. write: the
 * controller will write host memory (a Read command), so bit buckets are allowed. Lists are
 * read through read(). Never reads past the lists it needs.
 * Returns 0, or the status field to complete the command with: Data Transfer Error (a list
 * unreadable), PRP Offset Invalid, SGL Data Block/Segment errors, Invalid Field (reserved
 * PSDT, metadata SGL), SGL Descriptor Type Invalid, Data SGL Length Invalid.
 */
uint16_t nvemu_dptr_resolve(const struct nvme_sqe *cmd, uint64_t len, bool write,
			    nvemu_read_fn read, void *rctx, struct nvemu_dptr *out);

/*
 * Zero copy: describe the segments as iovecs into host memory (udrv_vfu_dma_ptr(), valid
 * until the current poll function returns; bit buckets point into scratch, NVEMU_MAX_XFER
 * bytes). to_host: the controller writes the memory. Returns d->n, or 0 when some segment is
 * not in a window shared by fd (then use nvemu_dptr_copy()).
 */
unsigned nvemu_dptr_iov(struct udrv_vfu_dev *dev, const struct nvemu_dptr *d, bool to_host,
			void *scratch, struct iovec *iov);

/* Copy between buf (d->len bytes) and the segments: to_host copies buf into host memory
 * (skipping bit buckets), else host memory into buf. Returns 0, or -EFAULT when some byte
 * is not mapped with the needed permission (nothing is guaranteed about the rest). */
int nvemu_dptr_copy(struct udrv_vfu_dev *dev, const struct nvemu_dptr *d, void *buf, bool to_host);

/* ---- backing.c ---------------------------------------------------------------------- */

struct nvemu_backing;

/*
 * Open the blocks' store. path NULL: RAM of size bytes (anonymous, MAP_NORESERVE: pages are
 * used only once written). path: a regular file or block device; size 0 uses its size, else
 * it is created/extended to size. uring: transfers go through io_uring (liburing).
 * Returns 0 and *out, or -errno with udrv_errmsg() set.
 */
int nvemu_backing_open(struct nvemu_backing **out, const char *path, uint64_t size, bool uring);
void nvemu_backing_close(struct nvemu_backing *b);
uint64_t nvemu_backing_size(const struct nvemu_backing *b);

/*
 * Transfer between [off, off + total of iov) of the store and iov. write: iov -> store.
 * Returns 1 when done now (*res = 0 or -errno), 0 when queued (io_uring: the result comes
 * from nvemu_backing_reap() with cookie; the iov array and its buffers must stay valid until
 * then), -EAGAIN when the queue is full (reap, then retry), -EINVAL for a range beyond the
 * store. Queued transfers start only at the next reap: the device thread reaps at the end
 * of every pass, so nothing is queued when it is paused or the store is closed.
 */
int nvemu_backing_rw(struct nvemu_backing *b, bool write, uint64_t off, const struct iovec *iov,
		     unsigned iovcnt, void *cookie, int *res);
/* Submit what is queued and wait for all of it; done(ctx, cookie, res) for each, res 0 or
 * -errno. No-op for synchronous stores. */
void nvemu_backing_reap(struct nvemu_backing *b, void (*done)(void *ctx, void *cookie, int res),
			void *ctx);
/* Read synchronously (Compare). Returns 0 or -errno. */
int nvemu_backing_pread(struct nvemu_backing *b, uint64_t off, void *buf, size_t len);
/* Make [off, off+len) read as zeros; dealloc: release the space too where possible (hole
 * punching, MADV_DONTNEED). Returns 0 or -errno. Synchronous: not ordered against transfers
 * still queued in io_uring, as NVMe does not order commands in flight. */
int nvemu_backing_zero(struct nvemu_backing *b, uint64_t off, uint64_t len, bool dealloc);
/* Make written data durable (fdatasync for files; nothing for RAM). Returns 0 or -errno. */
int nvemu_backing_flush(struct nvemu_backing *b);

/* ---- faults.c ----------------------------------------------------------------------- */

/* Armed faults: written by udrv_emu_nvme_inject() on any thread, consumed by the device
 * thread. Counts are "the next N I/O commands". */
struct nvemu_faults {
	_Atomic uint64_t latency_ns;
	atomic_uint drop, error, dup_cid, bogus_cid, bad_sq_head;
	_Atomic uint16_t error_status;	 /* status field for error */
	atomic_bool fatal, hang, remove; /* requests the device thread acts on once */
};

/* Parse spec (see udrv_emu_nvme_inject()) and arm it. All or nothing: on a bad item nothing
 * is armed. Returns 0 or -EINVAL with udrv_errmsg() naming the item. */
int nvemu_faults_arm(struct nvemu_faults *f, const char *spec);
/* Take one hit of a counted fault: true when it was armed (and is now one lower). */
bool nvemu_fault_take(atomic_uint *count);
extern const char nvemu_fault_help[];

/* ---- control.c ---------------------------------------------------------------------- */

struct nvemu_control;
/*
 * Serve the control socket at path on a thread of its own. Line protocol, one request per
 * line: "fault SPEC" -> "ok" or "error: MESSAGE"; "stats" -> "NAME VALUE" lines then "end".
 * Returns NULL with errno (bind failed: udrv_errmsg() says why).
 */
struct nvemu_control *nvemu_control_start(const char *path, struct udrv_emu_nvme *e);
void nvemu_control_stop(struct nvemu_control *c);

/* ---- the controller (ctrl.c, queue.c, admin.c, io.c) -------------------------------- */

#define NVEMU_CC_EN_FELL  1u
#define NVEMU_CC_SHN_ROSE 2u

struct nvemu_sq {
	bool live;
	uint16_t cqid;
	uint32_t size;	  /* entries */
	uint64_t base;	  /* iova */
	uint32_t head;	  /* next entry to fetch */
	uint32_t tail;	  /* last valid doorbell value */
	uint32_t db_last; /* the doorbell as last seen (0 at creation) */
};

struct nvemu_cq {
	bool live;
	bool ien;
	uint16_t iv;
	uint32_t size;
	uint64_t base;
	uint32_t tail, head; /* head: last valid doorbell value */
	uint32_t db_last;
	uint8_t phase;
	unsigned nsq;	     /* SQs that complete here */
	unsigned owed;	     /* completions fetched for it and not yet posted */
	unsigned unsignaled; /* posted since the last interrupt */
	uint64_t first_unsignaled_ns;
};

/* A completion held back until due_ns (latency fault); Abort can still find it. */
struct nvemu_pending {
	uint16_t sqid, cid;
	uint16_t status;
	uint32_t dw0;
	uint64_t due_ns;
};

/* A transfer queued in io_uring: completed by nvemu_io_done() when reaped. */
#define NVEMU_INFLIGHT 64u
struct nvemu_inflight {
	bool used, write, fua;
	uint16_t sqid, cid;
	uint64_t bytes;
	struct iovec iov[NVEMU_MAX_SEGS];
};

struct nvemu_ns {
	uint64_t off;	/* byte offset in the backing store */
	uint64_t nlbas; /* size in blocks */
};

struct nvemu_counters {
	_Atomic uint64_t admin_cmds, io_cmds, read_cmds, write_cmds, bytes_read, bytes_written,
	    errors, bad_dptr, bad_doorbells, faults_fired, connects, resets;
};

struct udrv_emu_nvme {
	struct udrv_emu_nvme_opts opts;
	char serial[21];
	struct udrv_vfu_dev *dev;
	struct nvemu_backing *store;
	struct nvemu_control *control;
	volatile uint32_t *db; /* the doorbell page (BAR0 1000h), shared with the host */
	unsigned lba_shift;
	unsigned nr_ns;
	struct nvemu_ns ns[UDRV_EMU_NVME_MAX_NS];
	unsigned nr_queues; /* I/O queue pairs offered */
	unsigned mqes;	    /* CAP.MQES (0's based) */
	uint64_t cap;

	/* Registers the host writes (serving thread); published to the device thread by
	 * cc_seq (release) and read by it after an acquire. */
	uint32_t aqa;
	uint64_t asq, acq;
	uint32_t intms;
	_Atomic uint32_t cc;
	atomic_uint cc_edges; /* NVEMU_CC_*: transitions since the device thread looked */
	atomic_uint cc_seq;
	atomic_uint cc_done; /* the last cc_seq the device thread applied */
	bool cc_sync;	     /* CC writes wait for cc_done (tests driving nvemu_poll() clear it) */
	_Atomic uint32_t csts;	/* written by the device thread */
	atomic_bool bus_master; /* Bus Master Enable, as of the host's last config write */
	atomic_bool in_pass;	/* the device thread is inside nvemu_poll() */

	/* Device thread state. */
	unsigned cc_seen; /* last cc_seq applied */
	uint32_t cc_applied;
	bool enabled, halted; /* halted: fatal, hang or shut down: no command runs */
	struct nvemu_sq sq[NVEMU_MAX_QID + 1];
	struct nvemu_cq cq[NVEMU_MAX_QID + 1];
	unsigned nsqa, ncqa;	       /* I/O queues granted by Set Features (0's based) */
	bool queues_created;	       /* an I/O queue existed since the last reset */
	struct nvemu_pending *pending; /* NVEMU_PENDING, unordered */
	unsigned npending;
	struct nvemu_inflight *inflight; /* NVEMU_INFLIGHT */
	unsigned ninflight;
	uint16_t aer_cid[NVEMU_AERL + 1]; /* outstanding Asynchronous Event Requests */
	unsigned naer;
	uint32_t aer_events[8]; /* events waiting for a request (completion dword 0) */
	unsigned naer_events;
	uint32_t aer_masked_events; /* event types reported and not yet cleared by a log read */
	uint32_t feat_irq_coalesce, feat_wce, feat_kato, feat_async_cfg, feat_temp_thresh;
	uint32_t feat_irq_config[NVEMU_MAX_QID + 1];
	uint64_t last_keep_alive_ns;
	struct nvme_error_log_page errlog[NVEMU_ELPE + 1];
	uint64_t error_count;
	uint64_t busy_ns, power_on_ns;
	uint64_t unsafe_shutdowns; /* the host went away while enabled, not shut down */
	struct nvemu_dptr dptr;	   /* for the command being executed */
	uint8_t *bounce;	   /* NVEMU_MAX_XFER, for non-zero-copy transfers and Compare */
	uint8_t *bounce2;
	uint8_t *scratch; /* bit buckets */

	struct nvemu_faults faults;
	struct nvemu_counters cnt;
};

/* ctrl.c */
uint64_t nvemu_now_ns(void);
/* Bring the controller to its reset state (queues gone, CSTS 0); device thread or paused. */
void nvemu_ctrl_reset(struct udrv_emu_nvme *e);
/* Apply a CC write the serving thread stored (device thread). Returns true if it did. */
bool nvemu_ctrl_service(struct udrv_emu_nvme *e);
/* Set CSTS.CFS and stop executing commands, logging why (the host sees the device fail). */
void nvemu_ctrl_fatal(struct udrv_emu_nvme *e, const char *why);

/* queue.c: the poll function (device thread). */
int nvemu_poll(void *ctx);
/* The host wrote the command register (serving thread): when Bus Master Enable went off,
 * returns only once the device thread can no longer start DMA. */
void nvemu_bus_master_changed(struct udrv_emu_nvme *e);
/* Complete cmd from sqid with status (status field) and dw0: posts now, or, with a latency
 * fault armed, later. Applies the completion faults. Device thread. */
void nvemu_complete(struct udrv_emu_nvme *e, uint16_t sqid, uint16_t cid, uint16_t status,
		    uint32_t dw0);
/* Post a held completion now (Abort), without the completion faults' latency. */
void nvemu_post(struct udrv_emu_nvme *e, uint16_t sqid, uint16_t cid, uint16_t status,
		uint32_t dw0);
/* An Asynchronous Event Request arrived (admin.c): hold it, or complete it with a queued
 * event. */
void nvemu_aer_submit(struct udrv_emu_nvme *e, uint16_t cid);
/* Report an asynchronous event (NVMe 1.4, 5.2): completes an outstanding request, or waits
 * for one; dropped while its type is masked (reported, log page not yet read). */
void nvemu_async_event(struct udrv_emu_nvme *e, uint32_t dw0);
/* Reading the log page of an event type unmasks it (5.2, 5.14.1 RAE). */
void nvemu_aer_unmask(struct udrv_emu_nvme *e, unsigned type);
/* Complete held completions of sqid (any cid when cid < 0) now with status instead (Abort,
 * SQ deletion). Returns how many. */
unsigned nvemu_pending_abort(struct udrv_emu_nvme *e, uint16_t sqid, int cid, uint16_t status);
/* nvemu_read_fn over the host's DMA mappings (ctx: the controller). */
int nvemu_host_read(void *ctx, uint64_t iova, void *buf, size_t len);

/* admin.c: execute one admin command; its completion goes through nvemu_complete() (an
 * AER's later, through nvemu_async_event()). */
void nvemu_admin(struct udrv_emu_nvme *e, const struct nvme_sqe *cmd);

/* io.c: execute one NVM command from sqid. */
void nvemu_io(struct udrv_emu_nvme *e, uint16_t sqid, const struct nvme_sqe *cmd);
/* io_uring completion of a pending command. */
void nvemu_io_done(void *ctx, void *cookie, int res);

#endif
