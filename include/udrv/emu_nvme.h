/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv/emu_nvme.h - an emulated NVMe 1.4 controller served over vfio-user.
 *
 * A PCI NVMe controller (class 010802h) that any vfio-user client - udrv's NVMe driver,
 * udrv_device_open("vfio-user:PATH"), SPDK - drives as a disk: BAR0 holds the controller
 * registers and, in a page the client can mmap, the doorbells; BAR4/BAR5 hold the MSI-X
 * table and PBA, one vector per completion queue. Data lives in RAM or in a file. It is the
 * test bed for drivers' error paths: faults (lost completions, bad status, bogus entries,
 * fatal status, a hung controller, surprise removal) can be injected at start-up and at run
 * time, from udrv_emu_nvme_inject() or a control socket. `udrv emu nvme --help` lists them.
 *
 * Everything the client writes is untrusted: register values, doorbells, queue entries,
 * PRP lists and SGLs are checked; data moves only to and from memory the client mapped for
 * DMA, and a bad pointer completes the command with Data Transfer Error.
 *
 * Threads: the vfio-user serving thread answers register accesses; a device thread executes
 * commands (it polls the doorbells, backing off when idle); an optional control thread
 * serves the control socket. All functions below may be called from any thread unless
 * noted.
 *
 * Errors: NULL with errno, or a negative errno; udrv_errmsg() has one sentence saying what
 * to do.
 */
#ifndef UDRV_EMU_NVME_H
#define UDRV_EMU_NVME_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct udrv_emu_nvme;

#define UDRV_EMU_NVME_MAX_NS	 16
#define UDRV_EMU_NVME_MAX_QUEUES 64

struct udrv_emu_nvme_opts {
	const char *socket_path; /* vfio-user socket (required) */
	/* Capacity in bytes, divided equally among the namespaces (each a whole number of
	 * blocks). RAM: 0 means 1 GiB; memory is only used where data was written. File: 0
	 * means the file's size; otherwise the file is created or extended to it. */
	uint64_t size;
	const char *backing;  /* file to keep the data in, or NULL for RAM */
	bool io_uring;	      /* file I/O through io_uring (one submission per poll pass) */
	unsigned namespaces;  /* 1..UDRV_EMU_NVME_MAX_NS; 0: 1 */
	unsigned queues;      /* I/O queue pairs offered, 1..UDRV_EMU_NVME_MAX_QUEUES; 0: 8 */
	unsigned max_entries; /* entries per queue (CAP.MQES + 1), 2..4096; 0: 1024 */
	unsigned block_size;  /* 512 or 4096; 0: 512 */
	const char *faults;   /* faults armed at start, see udrv_emu_nvme_inject(); or NULL */
	const char *control;  /* control socket path, or NULL for none */
	const char *serial;   /* Identify serial number (up to 20 characters); NULL: derived */
};

/*
 * Create the controller and bind its socket (and the control socket). Nothing is served
 * until udrv_emu_nvme_run()/start(). Returns NULL with errno: EINVAL (bad option: the
 * message names it), EADDRINUSE (someone serves that socket), ENOSPC/EFBIG (capacity), or
 * an error opening the backing file.
 */
struct udrv_emu_nvme *udrv_emu_nvme_create(const struct udrv_emu_nvme_opts *opts);

/* Serve clients in the calling thread until udrv_emu_nvme_stop(). Returns 0 or -errno. */
int udrv_emu_nvme_run(struct udrv_emu_nvme *e);
/* udrv_emu_nvme_run() on a new thread. Returns 0, -EBUSY or -errno. */
int udrv_emu_nvme_start(struct udrv_emu_nvme *e);
/* Make run() return; async-signal-safe. */
void udrv_emu_nvme_stop(struct udrv_emu_nvme *e);
/* Stop, disconnect the client, flush and close the backing, free. NULL is ignored. */
void udrv_emu_nvme_destroy(struct udrv_emu_nvme *e);

/*
 * Arm faults, in the syntax of --faults: comma-separated NAME or NAME=VALUE items, all or
 * nothing. Counted faults (latency, drop, error, dup-cid, bogus-cid, bad-sq-head) hit the
 * next N I/O commands, never admin commands; arming one again sets its count. One-shot
 * faults: fatal (CSTS.CFS), hang (nothing runs until CC.EN=0), remove (the client is
 * dropped), clear (disarm all). udrv_emu_nvme_fault_help() has the full syntax.
 * Returns 0, or -EINVAL with the offending item in udrv_errmsg().
 */
int udrv_emu_nvme_inject(struct udrv_emu_nvme *e, const char *spec);

/* The fault syntax above as text, for --help. */
const char *udrv_emu_nvme_fault_help(void);

/* Counters, as the controller keeps them (SMART values are these, in spec units). */
struct udrv_emu_nvme_stats {
	uint64_t admin_cmds, io_cmds;	    /* commands fetched */
	uint64_t read_cmds, write_cmds;	    /* SMART host read/write commands */
	uint64_t bytes_read, bytes_written; /* data moved to / from the host */
	uint64_t errors;		    /* completions with an error status */
	uint64_t bad_dptr;		    /* commands with an unmapped or bad PRP/SGL */
	uint64_t bad_doorbells;		    /* doorbell writes out of range */
	uint64_t faults_fired;		    /* injected faults that hit a command */
	uint64_t connects, resets;	    /* client connections; controller resets */
	uint32_t csts;			    /* CSTS as the host would read it */
	uint64_t capacity;		    /* bytes served, all namespaces together */
};
int udrv_emu_nvme_stats(struct udrv_emu_nvme *e, struct udrv_emu_nvme_stats *st);

#ifdef __cplusplus
}
#endif
#endif
