/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv/nvme.h - a poll-mode NVMe driver on udrv's device model.
 *
 * The same code drives a real SSD through VFIO (or UIO) and an emulated controller through
 * vfio-user: udrv_nvme_open("0000:01:00.0") or udrv_nvme_open("vfio-user:/tmp/nvme.sock").
 *
 *   udrv_nvme_open()                 reset, admin queues, Identify, Number of Queues
 *   udrv_nvme_qpair_create()         an I/O queue pair, owned by the calling thread
 *   udrv_nvme_read/write/...()       submit: no system call, no lock, no allocation
 *   udrv_nvme_process_completions()  poll: runs callbacks, never blocks
 *   udrv_nvme_qpair_destroy(), udrv_nvme_close()
 *
 * Threads: a queue pair is used by one thread at a time (submit and process_completions);
 * different queue pairs may be driven by different threads at once. Controller-wide calls
 * (open, close, info, admin commands, qpair create/destroy) may come from any thread; admin
 * commands are serialised inside.
 *
 * The device is untrusted: every completion entry is checked (phase, SQ id, command id in
 * range and outstanding, SQ head in range); a bad one is counted, logged with the device's
 * name and skipped. A command that does not complete within the timeout is aborted; if that
 * fails, or the controller reports fatal status, the controller is reset and the queue pairs
 * reconnect on their next use: the command that timed out fails with -ETIMEDOUT and the
 * other outstanding commands are submitted again. Each callback runs exactly once, with
 * success or an error. A controller that is gone (removed, its server died) fails
 * everything with -ENODEV.
 *
 * Buffers: data buffers must be DMA memory of the controller's domain
 * (udrv_nvme_dma_alloc(), udrv_dma_zalloc(udrv_nvme_domain(c), ...), or a mempool in it);
 * anything else is refused with -EFAULT. A buffer must start on a 4-byte boundary (PRP
 * rules, NVMe 1.4 4.3) unless the controller takes SGLs (info.sgl), which describe any
 * address. Transfers are at most udrv_nvme_ctrlr_info.max_xfer bytes: split larger ones.
 *
 * Errors: 0 (or a count) on success, a negative errno on failure, or NULL with errno;
 * udrv_errmsg() holds one sentence saying what to do (not on the submit/complete fast
 * path, where only the errno is set).
 */
#ifndef UDRV_NVME_H
#define UDRV_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <udrv/dma.h>

#ifdef __cplusplus
extern "C" {
#endif

struct udrv_nvme_ctrlr;
struct udrv_nvme_qpair;

/* udrv_nvme_opts.flags */
enum {
	UDRV_NVME_BIND = 1u << 0, /* bind to vfio-pci for the handle's life (UDRV_OPEN_BIND) */
	UDRV_NVME_INTERRUPTS = 1u << 1, /* MSI-X per queue pair (udrv_nvme_qpair_eventfd()) */
};

struct udrv_nvme_opts {
	unsigned flags;			/* UDRV_NVME_* */
	unsigned io_queues;		/* queue pairs to ask the controller for; 0: 8 */
	unsigned admin_entries;		/* 0: 32 */
	unsigned timeout_ms;		/* per command, before Abort; 0: 5000 */
	struct udrv_dma_domain *domain; /* share this DMA domain; NULL: the device's own */
};

/*
 * Open and bring up the controller (NVMe 1.4, 7.6.1): disable and wait for !CSTS.RDY
 * within CAP.TO, admin queues, enable and wait for RDY, Identify the controller and its
 * active namespaces, Set Features Number of Queues. name as for udrv_device_open().
 * Returns 0 and *out, or -errno: those of udrv_device_open(); -ENODEV (not an NVMe
 * controller), -ETIMEDOUT (CSTS.RDY did not follow CC.EN within CAP.TO), -EIO (the
 * controller failed a bring-up command or reported fatal status), -ENOMEM.
 */
int udrv_nvme_open(const char *name, const struct udrv_nvme_opts *opts,
		   struct udrv_nvme_ctrlr **out);

/* Delete the queues, shut the controller down (CC.SHN, 7.6.2), close the device. Queue
 * pairs still existing are destroyed, their outstanding commands failed with -ECANCELED.
 * NULL is ignored. */
void udrv_nvme_close(struct udrv_nvme_ctrlr *c);

struct udrv_nvme_ctrlr_info {
	uint16_t vid, ssvid;
	char sn[21], mn[41], fr[9]; /* trailing spaces removed */
	uint32_t version;	    /* VS: major << 16 | minor << 8 | tertiary */
	uint32_t nn;		    /* namespaces (highest NSID) */
	uint32_t max_xfer;	    /* bytes per command (MDTS, capped by the driver) */
	unsigned io_queues;	    /* queue pairs the controller granted */
	unsigned max_entries;	    /* entries per queue (CAP.MQES + 1) */
	uint16_t oncs;		    /* optional NVM commands (Identify ONCS) */
	bool sgl;		    /* the controller takes SGLs */
	bool vwc;		    /* volatile write cache present */
	const void *identify;	    /* the 4096-byte Identify Controller data */
	const char *device;	    /* the name it was opened with */
	const char *backend;	    /* "vfio", "uio" or "vfio-user" */
};
/* Valid until udrv_nvme_close(). Never NULL for an open controller. */
const struct udrv_nvme_ctrlr_info *udrv_nvme_ctrlr_info(const struct udrv_nvme_ctrlr *c);

struct udrv_nvme_ns_info {
	uint32_t nsid;
	uint64_t blocks;     /* NSZE */
	uint32_t block_size; /* bytes */
	bool active;
	const void *identify; /* the 4096-byte Identify Namespace data */
};
/* Namespace nsid (1..nn). Returns 0, or -EINVAL (no such NSID). */
int udrv_nvme_ns_info(const struct udrv_nvme_ctrlr *c, uint32_t nsid,
		      struct udrv_nvme_ns_info *out);

/* The controller's DMA domain, and a convenience allocator in it (4 KiB aligned, zeroed;
 * free with udrv_dma_free(udrv_nvme_domain(c), p)). NULL with errno ENOMEM. */
struct udrv_dma_domain *udrv_nvme_domain(const struct udrv_nvme_ctrlr *c);
void *udrv_nvme_dma_alloc(struct udrv_nvme_ctrlr *c, size_t size);

/* Counters of what the device did wrong and what the driver did about it. */
struct udrv_nvme_stats {
	uint64_t bad_cqes;  /* completion entries skipped: bad SQ id, cid or SQ head */
	uint64_t timeouts;  /* commands that reached their timeout */
	uint64_t aborts;    /* Abort commands sent */
	uint64_t resets;    /* controller resets */
	uint64_t resubmits; /* commands submitted again after a reset */
};
void udrv_nvme_stats(const struct udrv_nvme_ctrlr *c, struct udrv_nvme_stats *out);

/* The result of a command, given to its callback. */
struct udrv_nvme_cpl {
	/* 0; -EIO: the controller completed it with an error status (status below);
	 * -ETIMEDOUT: it did not complete (aborted, or the controller was reset);
	 * -ENODEV: the controller is gone; -ECANCELED: its queue pair was destroyed. */
	int rc;
	uint16_t status; /* NVMe status field: DNR << 14 | SCT << 8 | SC; 0 on success */
	uint32_t dw0;	 /* command specific (completion dword 0) */
};
/* A callback may submit on its queue pair; it must not destroy that queue pair or close the
 * controller (do that after process_completions() returns). */
typedef void (*udrv_nvme_cb)(void *arg, const struct udrv_nvme_cpl *cpl);

/*
 * Create an I/O queue pair with entries slots (2..max_entries; 0: min(256, max_entries));
 * at most entries - 1 commands are outstanding at once. The calling thread owns it.
 * Returns NULL with errno: ENOSPC (all granted queues in use), EINVAL, ENOMEM, EIO.
 */
struct udrv_nvme_qpair *udrv_nvme_qpair_create(struct udrv_nvme_ctrlr *c, unsigned entries);
/* Delete the queue pair; outstanding commands get -ECANCELED first. NULL is ignored. */
void udrv_nvme_qpair_destroy(struct udrv_nvme_qpair *qp);

/*
 * Submit a command; its callback runs later from udrv_nvme_process_completions() on this
 * queue pair (never from inside a submit call, not even other commands' callbacks). buf: DMA
 * memory of nlb blocks (read: filled, write/compare: sent). Returns 0, or:
 *   -EAGAIN  the queue pair is full, or must reconnect after a controller reset: process
 *            completions, then retry;
 *   -EINVAL  bad namespace, range (beyond the namespace), nlb 0 or over max_xfer;
 *   -EFAULT  buf is not DMA memory of this controller's domain;
 *   -ENODEV  the controller is gone.
 */
int udrv_nvme_read(struct udrv_nvme_qpair *qp, uint32_t nsid, void *buf, uint64_t lba, uint32_t nlb,
		   udrv_nvme_cb cb, void *arg);
int udrv_nvme_write(struct udrv_nvme_qpair *qp, uint32_t nsid, const void *buf, uint64_t lba,
		    uint32_t nlb, udrv_nvme_cb cb, void *arg);
int udrv_nvme_compare(struct udrv_nvme_qpair *qp, uint32_t nsid, const void *buf, uint64_t lba,
		      uint32_t nlb, udrv_nvme_cb cb, void *arg);
/* Scatter-gather: iov buffers (DMA memory) totalling nlb blocks. Every buffer but the first
 * must start on a 4 KiB page, every one but the last must end on one (PRP rules), unless the
 * controller takes SGLs, which describe any buffers. No buffer may be empty. */
int udrv_nvme_readv(struct udrv_nvme_qpair *qp, uint32_t nsid, const struct iovec *iov,
		    unsigned iovcnt, uint64_t lba, uint32_t nlb, udrv_nvme_cb cb, void *arg);
int udrv_nvme_writev(struct udrv_nvme_qpair *qp, uint32_t nsid, const struct iovec *iov,
		     unsigned iovcnt, uint64_t lba, uint32_t nlb, udrv_nvme_cb cb, void *arg);
int udrv_nvme_flush(struct udrv_nvme_qpair *qp, uint32_t nsid, udrv_nvme_cb cb, void *arg);
/* nlb up to 65536; deallocate: also release the blocks (they read as zeros after). */
int udrv_nvme_write_zeroes(struct udrv_nvme_qpair *qp, uint32_t nsid, uint64_t lba, uint32_t nlb,
			   bool deallocate, udrv_nvme_cb cb, void *arg);
/* Dataset Management, deallocate one range (trim); nlb up to 2^32 - 1. */
int udrv_nvme_deallocate(struct udrv_nvme_qpair *qp, uint32_t nsid, uint64_t lba, uint32_t nlb,
			 udrv_nvme_cb cb, void *arg);

/*
 * Reap up to max completions (0: all available) and run their callbacks, which may submit
 * again (those commands reach the controller together, in one doorbell write before this
 * returns). Also stamps and checks timeouts (about every millisecond; a command's timeout
 * starts at the first poll after its submission), reads CSTS after 100 ms without a
 * completion, and reconnects this queue pair after a controller reset. Never waits for the
 * device, except for the admin commands of a recovery (Abort, reset). Returns the number of
 * callbacks run (completions, plus commands a recovery failed), or -ENODEV once the
 * controller is gone (after failing every outstanding command with -ENODEV).
 */
int udrv_nvme_process_completions(struct udrv_nvme_qpair *qp, unsigned max);

/* Commands submitted and not yet completed on this queue pair. */
unsigned udrv_nvme_qpair_outstanding(const struct udrv_nvme_qpair *qp);

/* With UDRV_NVME_INTERRUPTS: an eventfd that becomes readable when the queue pair has
 * completions (read it to re-arm, then process completions); -1 otherwise. */
int udrv_nvme_qpair_eventfd(const struct udrv_nvme_qpair *qp);

/*
 * A raw admin command, synchronously (any thread; serialised). cmd is a 64-byte submission
 * entry whose command id and data pointer the driver fills; buf/len (up to max_xfer) is
 * copied to the controller (to_ctrlr) or from it. Returns 0 with *cpl filled, -EIO if the
 * controller reported an error (cpl->status says which), -ETIMEDOUT, -ENODEV.
 */
int udrv_nvme_admin(struct udrv_nvme_ctrlr *c, const void *cmd, void *buf, size_t len,
		    bool to_ctrlr, struct udrv_nvme_cpl *cpl);

/* A short English description of an NVMe status field ("LBA Out of Range"). */
const char *udrv_nvme_status_str(uint16_t status);

#ifdef __cplusplus
}
#endif
#endif
