/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udrv-vmtest: runs inside the VM tier's guest against QEMU's emulated devices, through
 * whichever backend the device is bound to (VFIO with the IOMMU translating, or UIO).
 *
 *   udrv-vmtest probe ADDR nvme|e1000e|virtio-net   open, config, BAR, DMA, MSI-X checks
 *   udrv-vmtest nvme-dma ADDR [expect-blocked]       Identify through DMA + MSI-X delivery
 *   udrv-vmtest hotplug ADDR                         wait for the kernel's request, release
 *   udrv-vmtest nvme-confine ADDR                    DMA aimed at an unmapped IOVA is blocked
 *   udrv-vmtest sigbus ADDR                          a revoked BAR mapping does not kill us
 *
 * Prints "vmtest: ..." lines (the harness shows them) and exits 0 only if every check held.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <udrv/udrv.h>

static int failures;

#define say(...) (printf("vmtest: " __VA_ARGS__), printf("\n"), fflush(stdout))
#define check(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			say("ok   " __VA_ARGS__);                                                  \
		} else {                                                                           \
			say("FAIL " __VA_ARGS__);                                                  \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static struct udrv_device *open_or_die(const char *addr)
{
	struct udrv_device *dev;
	int rc = udrv_device_open(addr, NULL, &dev);

	if (rc < 0) {
		say("FAIL open %s: %s (%s)", addr, udrv_errmsg(), strerror(-rc));
		exit(1);
	}
	say("ok   open %s via %s, DMA domain mode %s", addr, udrv_device_backend(dev),
	    udrv_dma_domain_mode(udrv_device_domain(dev)));
	return dev;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool wait_fd(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t v;

	if (poll(&p, 1, ms) != 1)
		return false;
	return read(fd, &v, sizeof(v)) == sizeof(v);
}

/* Attach every MSI-X vector to an eventfd, then detach. Returns the vector count. */
static int msix_roundtrip(struct udrv_device *dev, int *fds, int max)
{
	int n = udrv_device_irq_count(dev, UDRV_IRQ_MSIX);
	int rc;

	check(n > 0, "MSI-X: %d vectors", n);
	if (n <= 0)
		return n;
	if (n > max)
		n = max;
	for (int i = 0; i < n; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rc = udrv_device_irq_enable(dev, UDRV_IRQ_MSIX, 0, (unsigned)n, fds);
	check(rc == 0, "MSI-X: %d vectors attached to eventfds%s%s", n, rc ? ": " : "",
	      rc ? udrv_errmsg() : "");
	return n;
}

static void probe_dma(struct udrv_device *dev)
{
	struct udrv_dma_domain *dom = udrv_device_domain(dev);
	uint64_t iova = 0;
	void *buf = udrv_dma_zalloc(dom, 8192, 4096, &iova);

	check(buf != NULL, "DMA: 8 KiB mapped into the device's domain at IOVA 0x%llx%s%s",
	      (unsigned long long)iova, buf ? "" : ": ", buf ? "" : udrv_errmsg());
	if (buf) {
		check(udrv_dma_iova(dom, (char *)buf + 100) == iova + 100, "DMA: translation");
		udrv_dma_free(dom, buf);
	}
}

/* ---- NVMe (NVM Express Base Specification 1.4, section 3.1 registers, 5.15 Identify) ---- */
#define NVME_REG_CAP  0x00
#define NVME_REG_VS   0x08
#define NVME_REG_CC   0x14
#define NVME_REG_CSTS 0x1c
#define NVME_REG_AQA  0x24
#define NVME_REG_ASQ  0x28
#define NVME_REG_ACQ  0x30
#define NVME_DOORBELL 0x1000

struct nvme_sqe {
	uint8_t opc, flags;
	uint16_t cid;
	uint32_t nsid, rsvd[2];
	uint64_t mptr, prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

struct nvme_cqe {
	uint32_t dw0, dw1;
	uint16_t sq_head, sq_id, cid, status; /* status bit 0: phase tag */
};

static bool wait_rdy(volatile uint8_t *bar, uint32_t want, double timeout)
{
	double end = now() + timeout;

	while (now() < end) {
		uint32_t csts = udrv_mmio_read32(bar + NVME_REG_CSTS);
		if (csts == 0xffffffff)
			return false;
		if ((csts & 1) == want)
			return true;
		usleep(1000);
	}
	return false;
}

static void probe_nvme_regs(volatile uint8_t *bar)
{
	uint64_t cap = udrv_mmio_read64(bar + NVME_REG_CAP);
	uint32_t vs = udrv_mmio_read32(bar + NVME_REG_VS);

	check(cap != 0 && cap != ~0ull, "NVMe CAP 0x%016llx: MQES %u, TO %u x 500 ms, DSTRD %u",
	      (unsigned long long)cap, (unsigned)(cap & 0xffff) + 1, (unsigned)(cap >> 24) & 0xff,
	      (unsigned)(cap >> 32) & 0xf);
	check(vs >= 0x00010200 && vs < 0x00030000, "NVMe VS %u.%u", vs >> 16, (vs >> 8) & 0xff);
}

/*
 * A minimal admin bring-up and one Identify Controller through DMA (section 7.6.1), to prove
 * that the domain's IOVAs reach the device and that MSI-X vector 0 (the admin completion
 * queue's) arrives on its eventfd. With expect_blocked the DMA must NOT land (UIO under a
 * translating IOMMU: DMAR blocks physical addresses).
 */
static int nvme_dma(const char *addr, bool expect_blocked)
{
	struct udrv_device *dev = open_or_die(addr);
	struct udrv_dma_domain *dom = udrv_device_domain(dev);
	volatile uint8_t *bar = udrv_device_region_map(dev, UDRV_REGION_BAR0);
	uint64_t sq_iova, cq_iova, id_iova;
	struct nvme_sqe *sq;
	struct nvme_cqe *cq;
	uint8_t *id;
	int fds[8], nvec = 0;
	uint32_t dstrd;
	bool done = false, irq = false;

	if (!bar) {
		say("FAIL BAR0 map: %s", udrv_errmsg());
		return 1;
	}
	probe_nvme_regs(bar);
	dstrd = (uint32_t)(udrv_mmio_read64(bar + NVME_REG_CAP) >> 32) & 0xf;
	sq = udrv_dma_zalloc(dom, 4096, 4096, &sq_iova);
	cq = udrv_dma_zalloc(dom, 4096, 4096, &cq_iova);
	id = udrv_dma_zalloc(dom, 4096, 4096, &id_iova);
	if (!sq || !cq || !id) {
		say("FAIL DMA allocation: %s", udrv_errmsg());
		return 1;
	}
	memset(id, 0xa5, 4096);
	if (udrv_device_irq_count(dev, UDRV_IRQ_MSIX) > 0)
		nvec = msix_roundtrip(dev, fds, 8);
	check(udrv_device_set_bus_master(dev, true) == 0, "bus master on");

	udrv_mmio_write32(bar + NVME_REG_CC, 0);
	check(wait_rdy(bar, 0, 5), "controller disabled (CSTS.RDY=0)");
	udrv_mmio_write32(bar + NVME_REG_AQA, (15u << 16) | 15u);
	udrv_mmio_write64(bar + NVME_REG_ASQ, sq_iova);
	udrv_mmio_write64(bar + NVME_REG_ACQ, cq_iova);
	/* CC: EN, CSS NVM, MPS 4 KiB, AMS round robin, IOSQES 6 (64 B), IOCQES 4 (16 B). */
	udrv_mmio_write32(bar + NVME_REG_CC, 1u | (6u << 16) | (4u << 20));
	check(wait_rdy(bar, 1, 5), "controller enabled (CSTS.RDY=1)");

	sq[0] = (struct nvme_sqe){.opc = 0x06, .cid = 0x42, .prp1 = id_iova, .cdw10 = 1};
	udrv_dma_wmb(); /* the entry is visible before the doorbell */
	udrv_mmio_write32(bar + NVME_DOORBELL, 1);
	for (double end = now() + 5; now() < end && !done;) {
		done = (__atomic_load_n(&cq[0].status, __ATOMIC_ACQUIRE) & 1) == 1;
		if (!done)
			usleep(1000);
	}
	if (nvec > 0)
		irq = wait_fd(fds[0], 2000);
	if (done)
		udrv_mmio_write32(bar + NVME_DOORBELL + (4u << dstrd), 1); /* CQ 0 head */

	uint16_t vid = (uint16_t)(id[0] | id[1] << 8);
	char model[41];
	memcpy(model, id + 24, 40);
	model[40] = '\0';
	for (int i = 39; i >= 0 && (model[i] == ' ' || (uint8_t)model[i] == 0xa5); i--)
		model[i] = '\0';
	if (expect_blocked) {
		check(vid != 0x1b36 && id[24] == 0xa5,
		      "Identify data did NOT land in memory (DMA blocked), completion %s",
		      done ? "arrived anyway" : "never arrived");
	} else {
		check(done && (cq[0].status >> 1) == 0 && cq[0].cid == 0x42,
		      "Identify completed: cid 0x%x status 0x%x", cq[0].cid, cq[0].status >> 1);
		check(vid == 0x1b36 && strstr(model, "QEMU NVMe"),
		      "Identify data arrived by DMA: VID 0x%04x model \"%s\"", vid, model);
		if (nvec > 0)
			check(irq, "MSI-X vector 0 fired on its eventfd for the admin completion");
	}
	udrv_mmio_write32(bar + NVME_REG_CC, 0);
	wait_rdy(bar, 0, 5);
	udrv_dma_free(dom, id);
	udrv_dma_free(dom, cq);
	udrv_dma_free(dom, sq);
	udrv_device_close(dev);
	for (int i = 0; i < nvec; i++)
		close(fds[i]);
	return failures ? 1 : 0;
}

/* ---- virtio 1.x over PCI (virtio spec 1.1, section 4.1.4 capabilities, 4.1.4.3 common) ---- */
static void probe_virtio(struct udrv_device *dev)
{
	int pos = udrv_device_find_capability(dev, 0x09); /* vendor-specific */
	uint8_t cfg_type = 0, bar = 0, next = 0;
	uint32_t offset = 0;

	while (pos > 0) {
		udrv_device_config_read8(dev, (unsigned)pos + 3, &cfg_type);
		udrv_device_config_read8(dev, (unsigned)pos + 4, &bar);
		udrv_device_config_read32(dev, (unsigned)pos + 8, &offset);
		if (cfg_type == 1)
			break; /* VIRTIO_PCI_CAP_COMMON_CFG */
		/* Next vendor capability: walk the list by hand from this one. */
		udrv_device_config_read8(dev, (unsigned)pos + 1, &next);
		pos = 0;
		while (next >= 0x40) {
			uint8_t id;
			udrv_device_config_read8(dev, next, &id);
			if (id == 0x09) {
				pos = next;
				break;
			}
			udrv_device_config_read8(dev, next + 1u, &next);
		}
	}
	check(pos > 0 && cfg_type == 1 && bar < 6,
	      "virtio common config capability: BAR%u offset 0x%x", bar, offset);
	if (pos <= 0 || bar >= 6)
		return;
	volatile uint8_t *b = udrv_device_region_map(dev, bar);
	check(b != NULL, "virtio BAR%u mapped", bar);
	if (!b)
		return;
	volatile uint8_t *common = b + offset;
	udrv_mmio_write32(common + 0x00, 1); /* device_feature_select: bits 32..63 */
	uint32_t hi = udrv_mmio_read32(common + 0x04);
	uint16_t nq = *(volatile uint16_t *)(common + 0x12);
	check(hi & 1, "virtio VERSION_1 offered (features[63:32] 0x%08x)", hi);
	check(nq >= 2, "virtio num_queues %u", nq);
}

/* ---- e1000e (Intel 82574 datasheet, section 10.2: STATUS 0x8, RAL0/RAH0 0x5400) ---- */
static void probe_e1000e(volatile uint8_t *bar)
{
	uint32_t status = udrv_mmio_read32(bar + 0x8);
	uint32_t ral = udrv_mmio_read32(bar + 0x5400), rah = udrv_mmio_read32(bar + 0x5404);

	check(status != 0xffffffff, "e1000e STATUS 0x%08x", status);
	check((ral & 0xffffff) == 0x005452 && (rah & 0x80000000),
	      "e1000e receive address 0: %02x:%02x:%02x:%02x:%02x:%02x (valid)", ral & 0xff,
	      (ral >> 8) & 0xff, (ral >> 16) & 0xff, ral >> 24, rah & 0xff, (rah >> 8) & 0xff);
}

static int probe(const char *addr, const char *kind)
{
	static const struct {
		const char *kind;
		uint16_t vendor, device;
	} ids[] = {
	    {"nvme", 0x1b36, 0x0010}, {"e1000e", 0x8086, 0x10d3}, {"virtio-net", 0x1af4, 0x1041}};
	struct udrv_device *dev = open_or_die(addr);
	uint16_t vendor = 0, device = 0;
	struct udrv_region_info ri;
	int fds[64], nvec;
	unsigned k;

	for (k = 0; k < 3 && strcmp(ids[k].kind, kind); k++)
		;
	if (k == 3) {
		say("FAIL unknown kind %s", kind);
		return 2;
	}
	udrv_device_config_read16(dev, 0, &vendor);
	udrv_device_config_read16(dev, 2, &device);
	check(vendor == ids[k].vendor && device == ids[k].device,
	      "config space: %04x:%04x (expected %04x:%04x)", vendor, device, ids[k].vendor,
	      ids[k].device);
	check(udrv_device_region_info(dev, UDRV_REGION_BAR0, &ri) == 0,
	      "BAR0: %llu bytes, flags 0x%x, %u mappable area(s)", (unsigned long long)ri.size,
	      ri.flags, ri.nr_areas);
	if (strcmp(kind, "virtio-net") == 0) {
		probe_virtio(dev);
	} else {
		volatile uint8_t *bar = udrv_device_region_map(dev, UDRV_REGION_BAR0);
		check(bar != NULL, "BAR0 mapped%s%s", bar ? "" : ": ", bar ? "" : udrv_errmsg());
		if (bar && !strcmp(kind, "nvme"))
			probe_nvme_regs(bar);
		if (bar && !strcmp(kind, "e1000e"))
			probe_e1000e(bar);
	}
	probe_dma(dev);
	if (!strcmp(udrv_device_backend(dev), "uio")) {
		int fd = eventfd(0, EFD_CLOEXEC);
		check(udrv_device_irq_count(dev, UDRV_IRQ_INTX) == 1, "UIO: INTx available");
		check(udrv_device_irq_enable(dev, UDRV_IRQ_MSIX, 0, 1, &fd) == -ENOTSUP,
		      "UIO: MSI-X refused: %s", udrv_errmsg());
		close(fd);
		nvec = 0;
	} else {
		nvec = msix_roundtrip(dev, fds, 64);
	}
	if (nvec > 0) {
		check(udrv_device_irq_disable(dev, UDRV_IRQ_MSIX) == 0, "MSI-X disabled");
		for (int i = 0; i < nvec; i++)
			close(fds[i]);
	}
	int rc = udrv_device_reset(dev);
	check(rc == 0 || rc == -ENOTSUP, "reset: %s", rc == 0 ? "done" : strerror(-rc));
	udrv_device_close(dev);
	say("closed %s", addr);
	return failures ? 1 : 0;
}

/* Hold the device until the kernel asks for it back (QMP device_del), then release it. */
static int hotplug(const char *addr)
{
	struct udrv_device *dev = open_or_die(addr);
	int fd = eventfd(0, EFD_CLOEXEC);
	int rc = udrv_device_irq_enable(dev, UDRV_IRQ_REQ, 0, 1, &fd);

	check(rc == 0, "request notifier attached%s%s", rc ? ": " : "", rc ? udrv_errmsg() : "");
	if (rc)
		return 1;
	say("READY-FOR-UNPLUG");
	bool fired = wait_fd(fd, 60000);
	check(fired, "the kernel's device request arrived on the eventfd");
	udrv_device_close(dev);
	close(fd);
	say("released %s", addr);
	return failures ? 1 : 0;
}

/*
 * Confinement: an Identify whose data pointer is an IOVA udrv never mapped (1 GiB above the
 * driver's own buffer). The IOMMU must block the write (the harness prints the DMAR fault);
 * QEMU 7.2 may still complete the command with success, so the check is on data: the
 * driver's own memory right below is untouched, and the controller keeps working.
 */
static int nvme_confine(const char *addr)
{
	struct udrv_nvme_ctrlr *c;
	struct udrv_nvme_cpl cpl = {0};
	uint32_t cmd[16] = {0};
	uint8_t *canary, *id;
	uint64_t bad;
	int rc = udrv_nvme_open(addr, NULL, &c);
	bool intact = true;

	if (rc < 0) {
		say("FAIL udrv_nvme_open %s: %s", addr, udrv_errmsg());
		return 1;
	}
	canary = udrv_nvme_dma_alloc(c, 4096);
	id = malloc(4096);
	if (!canary || !id) {
		say("FAIL allocation");
		return 1;
	}
	memset(canary, 0x5a, 4096);
	bad = udrv_dma_iova(udrv_nvme_domain(c), canary) + (1ull << 30);
	cmd[0] = 0x06;		/* Identify (NVMe 1.4, 5.15) */
	cmd[6] = (uint32_t)bad; /* PRP1: never mapped */
	cmd[7] = (uint32_t)(bad >> 32);
	cmd[10] = 1; /* the controller data structure */
	rc = udrv_nvme_admin(c, cmd, NULL, 0, false, &cpl);
	say("info Identify to unmapped IOVA 0x%llx: rc %d, status 0x%x (the device may not know)",
	    (unsigned long long)bad, rc, cpl.status);
	for (int i = 0; i < 4096; i++)
		intact &= canary[i] == 0x5a;
	check(intact, "the driver's memory next to the target is untouched");
	memset(cmd, 0, sizeof(cmd));
	cmd[0] = 0x06;
	cmd[10] = 1;
	rc = udrv_nvme_admin(c, cmd, id, 4096, false, &cpl);
	check(rc == 0 && !memcmp(id + 24, "QEMU NVMe Ctrl", 14),
	      "the controller still works: Identify to mapped memory reads \"%.14s\"", id + 24);
	free(id);
	udrv_nvme_close(c);
	return failures ? 1 : 0;
}

/*
 * vfio-pci revokes a BAR's mappings when memory space is disabled (as on removal or reset);
 * the next access raises SIGBUS. udrv's guard must turn that into an all-ones read and
 * udrv_device_removed(), not a dead process.
 */
static int sigbus(const char *addr)
{
	struct udrv_device *dev = open_or_die(addr);
	volatile uint8_t *bar = udrv_device_region_map(dev, UDRV_REGION_BAR0);
	uint16_t cmd = 0;
	uint32_t v;

	if (!bar) {
		say("FAIL BAR0 map: %s", udrv_errmsg());
		return 1;
	}
	v = udrv_mmio_read32(bar + NVME_REG_VS);
	check(v != UINT32_MAX && !udrv_device_removed(dev), "BAR0 readable: VS %08x", v);
	udrv_device_config_read16(dev, 0x04, &cmd);
	udrv_device_config_write16(dev, 0x04, (uint16_t)(cmd & ~0x2u)); /* memory space off */
	v = udrv_mmio_read32(bar + NVME_REG_VS);
	check(v == UINT32_MAX, "a read of the revoked BAR returns all ones (%08x), no SIGBUS death", v);
	check(udrv_device_removed(dev), "udrv_device_removed() says the mapping is gone");
	udrv_mmio_write32(bar + 0x1000, 1); /* a doorbell write: survives too */
	udrv_device_config_write16(dev, 0x04, cmd);
	udrv_device_close(dev);
	say("ok   still alive after the revoked mapping");
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "probe"))
		return probe(argv[2], argv[3]);
	if (argc >= 3 && !strcmp(argv[1], "nvme-dma"))
		return nvme_dma(argv[2], argc >= 4 && !strcmp(argv[3], "expect-blocked"));
	if (argc >= 3 && !strcmp(argv[1], "hotplug"))
		return hotplug(argv[2]);
	if (argc >= 3 && !strcmp(argv[1], "nvme-confine"))
		return nvme_confine(argv[2]);
	if (argc >= 3 && !strcmp(argv[1], "sigbus"))
		return sigbus(argv[2]);
	fprintf(stderr, "usage: udrv-vmtest probe ADDR nvme|e1000e|virtio-net\n"
			"       udrv-vmtest nvme-dma ADDR [expect-blocked]\n"
			"       udrv-vmtest hotplug ADDR\n"
			"       udrv-vmtest nvme-confine ADDR\n"
			"       udrv-vmtest sigbus ADDR\n");
	return 2;
}
