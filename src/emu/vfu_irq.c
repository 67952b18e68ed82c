/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interrupts of the emulated function: the client's eventfds ("VFIO_USER_DEVICE_SET_IRQS"),
 * MSI and MSI-X capability, table and pending-bit emulation (PCI Local Bus 3.0, 6.8), and
 * udrv_vfu_irq_trigger().
 *
 * Like the kernel's vfio-pci, which programs the real function when it is given eventfds,
 * assigning an MSI/MSI-X eventfd enables the capability and unmasks that vector, removing
 * it masks the vector, and disabling the index disables the capability. A client that
 * reaches the MSI-X table itself (masking vectors through REGION_WRITE) gets the PCI
 * behaviour: a masked vector's interrupt sets its pending bit and fires on unmask.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "vfu_internal.h"

static void signal_fd(int fd)
{
	uint64_t one = 1;
	ssize_t rc = write(fd, &one, sizeof(one));

	(void)rc; /* a full counter means the client has not consumed the previous event */
}

static int *alloc_fds(unsigned n)
{
	int *fds = malloc(n * sizeof(*fds));

	if (fds)
		for (unsigned i = 0; i < n; i++)
			fds[i] = -1;
	return fds;
}

int vfu_irq_init(struct udrv_vfu_dev *dev)
{
	static const unsigned singles[] = {VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_ERR_IRQ_INDEX,
					   VFIO_PCI_REQ_IRQ_INDEX};

	for (unsigned i = 0; i < sizeof(singles) / sizeof(singles[0]); i++) {
		dev->irq_fd[singles[i]] = alloc_fds(1);
		if (!dev->irq_fd[singles[i]])
			return -ENOMEM;
		dev->irq_count[singles[i]] = 1;
	}
	return 0;
}

void vfu_irq_fini(struct udrv_vfu_dev *dev)
{
	vfu_irq_disable_all(dev);
	for (unsigned i = 0; i < VFU_NUM_IRQS; i++) {
		free(dev->irq_fd[i]);
		dev->irq_fd[i] = NULL;
		dev->irq_count[i] = 0;
	}
	free(dev->msix.table);
	free(dev->msix.pending);
	dev->msix.table = NULL;
	dev->msix.pending = NULL;
}

/* --- state of one vector; dev->lock held --- */

static bool msi_enabled(const struct udrv_vfu_dev *dev)
{
	return dev->msi.nvec &&
	       (vfu_cfg_get16(dev, dev->msi.cap + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_ENABLE);
}

static bool msix_enabled(const struct udrv_vfu_dev *dev)
{
	return dev->msix.nvec &&
	       (vfu_cfg_get16(dev, dev->msix.cap + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_ENABLE);
}

static uint8_t *msix_ctrl(struct udrv_vfu_dev *dev, unsigned v)
{
	return &dev->msix.table[v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_CTRL];
}

static bool type_enabled(const struct udrv_vfu_dev *dev, unsigned index)
{
	switch (index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		/* 6.8: a function with MSI or MSI-X enabled does not use INTx. */
		return !(vfu_cfg_get16(dev, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE) &&
		       !msi_enabled(dev) && !msix_enabled(dev);
	case VFIO_PCI_MSI_IRQ_INDEX:
		return msi_enabled(dev);
	case VFIO_PCI_MSIX_IRQ_INDEX:
		return msix_enabled(dev);
	default:
		return true;
	}
}

static bool vec_masked(struct udrv_vfu_dev *dev, unsigned index, unsigned v)
{
	switch (index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		return dev->intx_masked;
	case VFIO_PCI_MSI_IRQ_INDEX:
		return vfu_cfg_get32(dev, dev->msi.cap + PCI_MSI_MASK_64) & (1u << v);
	case VFIO_PCI_MSIX_IRQ_INDEX:
		return (vfu_cfg_get16(dev, dev->msix.cap + PCI_MSIX_FLAGS) &
			PCI_MSIX_FLAGS_MASKALL) ||
		       (*msix_ctrl(dev, v) & PCI_MSIX_ENTRY_MASKBIT);
	default:
		return false;
	}
}

static void set_masked(struct udrv_vfu_dev *dev, unsigned index, unsigned v, bool masked)
{
	if (index == VFIO_PCI_MSI_IRQ_INDEX) {
		uint32_t m = vfu_cfg_get32(dev, dev->msi.cap + PCI_MSI_MASK_64);

		m = masked ? m | 1u << v : m & ~(1u << v);
		vfu_cfg_set32(dev, dev->msi.cap + PCI_MSI_MASK_64, m);
	} else if (index == VFIO_PCI_MSIX_IRQ_INDEX) {
		uint8_t *c = msix_ctrl(dev, v);

		*c = masked ? *c | PCI_MSIX_ENTRY_MASKBIT : *c & ~PCI_MSIX_ENTRY_MASKBIT;
	}
}

static void set_enabled(struct udrv_vfu_dev *dev, unsigned index, bool on)
{
	unsigned off;
	uint16_t bit, f;

	if (index == VFIO_PCI_MSI_IRQ_INDEX && dev->msi.nvec) {
		off = dev->msi.cap + PCI_MSI_FLAGS;
		bit = PCI_MSI_FLAGS_ENABLE;
	} else if (index == VFIO_PCI_MSIX_IRQ_INDEX && dev->msix.nvec) {
		off = dev->msix.cap + PCI_MSIX_FLAGS;
		bit = PCI_MSIX_FLAGS_ENABLE;
	} else {
		return;
	}
	f = vfu_cfg_get16(dev, off);
	vfu_cfg_set16(dev, off, on ? f | bit : f & ~bit);
}

static bool get_pending(struct udrv_vfu_dev *dev, unsigned index, unsigned v)
{
	switch (index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		return dev->intx_pending;
	case VFIO_PCI_MSI_IRQ_INDEX:
		return vfu_cfg_get32(dev, dev->msi.cap + PCI_MSI_PENDING_64) & (1u << v);
	case VFIO_PCI_MSIX_IRQ_INDEX:
		return dev->msix.pending[v / 64] & (1ull << (v % 64));
	default:
		return false;
	}
}

static void set_pending(struct udrv_vfu_dev *dev, unsigned index, unsigned v, bool on)
{
	if (index == VFIO_PCI_INTX_IRQ_INDEX) {
		dev->intx_pending = on;
	} else if (index == VFIO_PCI_MSI_IRQ_INDEX) {
		uint32_t p = vfu_cfg_get32(dev, dev->msi.cap + PCI_MSI_PENDING_64);

		vfu_cfg_set32(dev, dev->msi.cap + PCI_MSI_PENDING_64,
			      on ? p | 1u << v : p & ~(1u << v));
	} else if (index == VFIO_PCI_MSIX_IRQ_INDEX) {
		uint64_t *w = &dev->msix.pending[v / 64];

		*w = on ? *w | 1ull << (v % 64) : *w & ~(1ull << (v % 64));
	}
}

static int trigger_locked(struct udrv_vfu_dev *dev, unsigned index, unsigned v)
{
	int fd;

	if (!type_enabled(dev, index))
		return -ENOENT;
	if (vec_masked(dev, index, v)) {
		set_pending(dev, index, v, true);
		return 0;
	}
	fd = dev->irq_fd[index][v];
	if (fd < 0)
		return -ENOENT;
	signal_fd(fd);
	return 0;
}

void vfu_irq_update_locked(struct udrv_vfu_dev *dev)
{
	static const unsigned idx[] = {VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
				       VFIO_PCI_MSIX_IRQ_INDEX};

	for (unsigned k = 0; k < sizeof(idx) / sizeof(idx[0]); k++) {
		unsigned index = idx[k];

		if (!type_enabled(dev, index))
			continue;
		for (unsigned v = 0; v < dev->irq_count[index]; v++) {
			if (index == VFIO_PCI_MSIX_IRQ_INDEX && !dev->msix.pending[v / 64]) {
				v |= 63; /* skip a clear word */
				continue;
			}
			if (get_pending(dev, index, v) && !vec_masked(dev, index, v) &&
			    dev->irq_fd[index][v] >= 0) {
				set_pending(dev, index, v, false);
				signal_fd(dev->irq_fd[index][v]);
			}
		}
	}
}

static void clear_pending_locked(struct udrv_vfu_dev *dev, unsigned index)
{
	for (unsigned v = 0; v < dev->irq_count[index]; v++)
		set_pending(dev, index, v, false);
}

int udrv_vfu_irq_trigger(struct udrv_vfu_dev *dev, enum udrv_irq_type type, unsigned vector)
{
	int rc;

	if (!dev || (unsigned)type >= VFU_NUM_IRQS)
		return udrv_err(EINVAL, "interrupt type %d does not exist", (int)type);
	pthread_mutex_lock(&dev->lock);
	if (vector >= dev->irq_count[type]) {
		unsigned n = dev->irq_count[type];

		pthread_mutex_unlock(&dev->lock);
		return udrv_err(EINVAL, "interrupt type %d has %u vectors, not vector %u",
				(int)type, n, vector);
	}
	rc = trigger_locked(dev, type, vector);
	pthread_mutex_unlock(&dev->lock);
	return rc;
}

/* --- SET_IRQS --- */

/* Only eventfds: writing to a pipe or socket whose reader is gone would raise SIGPIPE in the
 * server, and a client could hand us anything. */
static bool is_eventfd(int fd)
{
	char path[64], link[64];
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		return strcmp(link, "anon_inode:[eventfd]") == 0;
	}
	/* No /proc: accept anonymous inodes (no file type), none of which can raise SIGPIPE. */
	return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == 0;
}

static void disable_index_locked(struct udrv_vfu_dev *dev, unsigned index)
{
	for (unsigned v = 0; v < dev->irq_count[index]; v++) {
		if (dev->irq_fd[index][v] >= 0)
			close(dev->irq_fd[index][v]);
		dev->irq_fd[index][v] = -1;
		set_masked(dev, index, v, true);
	}
	set_enabled(dev, index, false);
	clear_pending_locked(dev, index);
	if (index == VFIO_PCI_INTX_IRQ_INDEX)
		dev->intx_masked = false;
}

static int set_eventfds(struct udrv_vfu_dev *dev, unsigned index, unsigned start, unsigned count,
			int *fds, size_t nfds)
{
	if (nfds && nfds != count)
		return udrv_err(EINVAL, "SET_IRQS: %zu eventfds sent for %u vectors", nfds, count);
	for (size_t i = 0; i < nfds; i++)
		if (!is_eventfd(fds[i]))
			return udrv_err(EINVAL, "SET_IRQS: fd %zu is not an eventfd", i);
	pthread_mutex_lock(&dev->lock);
	for (unsigned i = 0; i < count; i++) {
		int *slot = &dev->irq_fd[index][start + i];

		if (*slot >= 0)
			close(*slot);
		*slot = nfds ? fds[i] : -1;
		if (nfds)
			fds[i] = -1; /* consumed */
		set_masked(dev, index, start + i, *slot < 0);
	}
	if (nfds)
		set_enabled(dev, index, true);
	vfu_irq_update_locked(dev);
	pthread_mutex_unlock(&dev->lock);
	return 0;
}

int vfu_irq_set(struct udrv_vfu_dev *dev, const struct vfio_user_irq_set *hdr, const uint8_t *data,
		size_t data_len, int *fds, size_t nfds)
{
	uint32_t dtype = hdr->flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
	uint32_t action = hdr->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
	unsigned index = hdr->index, n;

	if (hdr->flags & ~(uint32_t)(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK) ||
	    __builtin_popcount(dtype) != 1 || __builtin_popcount(action) != 1)
		return udrv_err(EINVAL, "SET_IRQS: flags 0x%x need one DATA_ and one ACTION_ bit",
				hdr->flags);
	if (index >= VFU_NUM_IRQS)
		return udrv_err(EINVAL, "SET_IRQS: no IRQ index %u", index);
	if (data_len != (dtype == VFIO_IRQ_SET_DATA_BOOL ? hdr->count : 0))
		return udrv_err(EINVAL, "SET_IRQS: %zu data bytes for count %u", data_len,
				hdr->count);
	if (nfds && dtype != VFIO_IRQ_SET_DATA_EVENTFD)
		return udrv_err(EINVAL, "SET_IRQS: fds sent without DATA_EVENTFD");
	n = dev->irq_count[index];

	/* "count (and start) of 0 with DATA_NONE disables all interrupts of the index"; an
	 * EVENTFD request without fds de-assigns, here all of them. */
	if (action == VFIO_IRQ_SET_ACTION_TRIGGER && hdr->count == 0 &&
	    (dtype == VFIO_IRQ_SET_DATA_NONE || (dtype == VFIO_IRQ_SET_DATA_EVENTFD && !nfds))) {
		if (hdr->start)
			return udrv_err(EINVAL, "SET_IRQS: disabling all needs start 0");
		pthread_mutex_lock(&dev->lock);
		disable_index_locked(dev, index);
		pthread_mutex_unlock(&dev->lock);
		return 0;
	}
	if (hdr->count == 0 || hdr->start >= n || hdr->count > n - hdr->start)
		return udrv_err(EINVAL, "SET_IRQS: vectors [%u, +%u) out of the %u of index %u",
				hdr->start, hdr->count, n, index);

	if (action == VFIO_IRQ_SET_ACTION_TRIGGER) {
		if (dtype == VFIO_IRQ_SET_DATA_EVENTFD)
			return set_eventfds(dev, index, hdr->start, hdr->count, fds, nfds);
		/* The client raises the interrupt itself. */
		pthread_mutex_lock(&dev->lock);
		for (unsigned i = 0; i < hdr->count; i++)
			if (dtype == VFIO_IRQ_SET_DATA_NONE || data[i])
				trigger_locked(dev, index, hdr->start + i);
		pthread_mutex_unlock(&dev->lock);
		return 0;
	}
	/* MASK/UNMASK: only INTx is maskable (GET_IRQ_INFO says so); no mask eventfds. */
	if (index != VFIO_PCI_INTX_IRQ_INDEX || dtype == VFIO_IRQ_SET_DATA_EVENTFD)
		return udrv_err(EINVAL, "SET_IRQS: mask/unmask is supported for INTx without fds");
	if (dtype == VFIO_IRQ_SET_DATA_BOOL && !data[0])
		return 0;
	pthread_mutex_lock(&dev->lock);
	dev->intx_masked = action == VFIO_IRQ_SET_ACTION_MASK;
	vfu_irq_update_locked(dev);
	pthread_mutex_unlock(&dev->lock);
	return 0;
}

int vfu_irq_info(struct udrv_vfu_dev *dev, unsigned index, uint32_t *flags, uint32_t *count)
{
	if (index >= VFU_NUM_IRQS)
		return udrv_err(EINVAL, "GET_IRQ_INFO: no IRQ index %u", index);
	*flags = VFIO_IRQ_INFO_EVENTFD;
	if (index == VFIO_PCI_INTX_IRQ_INDEX)
		*flags |= VFIO_IRQ_INFO_MASKABLE;
	*count = dev->irq_count[index];
	return 0;
}

void vfu_irq_disable_all(struct udrv_vfu_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	for (unsigned i = 0; i < VFU_NUM_IRQS; i++)
		if (dev->irq_fd[i])
			disable_index_locked(dev, i);
	dev->intx_pending = false;
	pthread_mutex_unlock(&dev->lock);
}

void vfu_irq_reset(struct udrv_vfu_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	for (unsigned i = 0; i < VFU_NUM_IRQS; i++)
		if (dev->irq_fd[i])
			clear_pending_locked(dev, i);
	pthread_mutex_unlock(&dev->lock);
}

/* --- MSI-X table and PBA (6.8.2.6-10) --- */

void vfu_msix_table_access_locked(struct udrv_vfu_dev *dev, uint64_t off, void *buf, size_t len,
				  bool write)
{
	uint8_t *t = dev->msix.table;

	if (!write) {
		memcpy(buf, t + off, len);
		return;
	}
	memcpy(t + off, buf, len);
	/* Vector Control bits 31:1 are reserved and read as 0. */
	for (uint64_t e = off / PCI_MSIX_ENTRY_SIZE; e <= (off + len - 1) / PCI_MSIX_ENTRY_SIZE;
	     e++) {
		uint8_t *c = t + e * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_CTRL;

		c[0] &= PCI_MSIX_ENTRY_MASKBIT;
		c[1] = c[2] = c[3] = 0;
	}
	vfu_irq_update_locked(dev);
}

void vfu_msix_pba_read_locked(struct udrv_vfu_dev *dev, uint64_t off, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		uint64_t b = off + i;

		p[i] = (uint8_t)(dev->msix.pending[b / 8] >> (8 * (b % 8)));
	}
}

static int check_msix_place(struct udrv_vfu_dev *dev, const char *what, unsigned bar, uint64_t off,
			    uint64_t len)
{
	const struct vfu_bar *b = bar < VFU_NUM_BARS ? &dev->bars[bar] : NULL;

	if (!b || !b->size || b->upper || (b->flags & UDRV_VFU_BAR_IO))
		return udrv_err(EINVAL, "MSI-X %s BAR %u is not a memory BAR: add it first", what,
				bar);
	if (off % 8 || off > 0xfffffff8u || off > b->size || len > b->size - off)
		return udrv_err(EINVAL,
				"MSI-X %s [%#llx, +%#llx) must be QWORD-aligned inside BAR %u "
				"(%#llx bytes)",
				what, (unsigned long long)off, (unsigned long long)len, bar,
				(unsigned long long)b->size);
	for (unsigned i = 0; i < b->nr_areas; i++)
		if (off < b->areas[i].off + b->areas[i].len && b->areas[i].off < off + len)
			return udrv_err(EEXIST, "MSI-X %s overlaps an mmap area of BAR %u", what,
					bar);
	return 0;
}

int udrv_vfu_add_msix(struct udrv_vfu_dev *dev, unsigned nvec, unsigned table_bar,
		      uint64_t table_off, unsigned pba_bar, uint64_t pba_off)
{
	uint8_t cap[PCI_MSIX_CAP_SIZE] = {0}, wmask[PCI_MSIX_CAP_SIZE] = {0};
	uint64_t tlen = (uint64_t)nvec * PCI_MSIX_ENTRY_SIZE, plen = (uint64_t)(nvec + 63) / 64 * 8;
	struct vfu_msix *x = &dev->msix;
	int *fds;
	int rc;

	if (atomic_load(&dev->running))
		return udrv_err(EBUSY, "add MSI-X before udrv_vfu_run()/udrv_vfu_start()");
	if (x->nvec)
		return udrv_err(EEXIST, "the device already has an MSI-X capability");
	if (nvec < 1 || nvec > VFU_MAX_MSIX_VECS)
		return udrv_err(EINVAL, "MSI-X has 1 to 2048 vectors, not %u", nvec);
	rc = check_msix_place(dev, "table", table_bar, table_off, tlen);
	if (rc < 0)
		return rc;
	rc = check_msix_place(dev, "PBA", pba_bar, pba_off, plen);
	if (rc < 0)
		return rc;
	if (table_bar == pba_bar && table_off < pba_off + plen && pba_off < table_off + tlen)
		return udrv_err(EINVAL, "the MSI-X table and PBA overlap in BAR %u", table_bar);

	cap[PCI_MSIX_FLAGS] = (uint8_t)(nvec - 1);
	cap[PCI_MSIX_FLAGS + 1] = (uint8_t)((nvec - 1) >> 8);
	wmask[PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE) >> 8;
	for (unsigned i = 0; i < 4; i++) {
		cap[PCI_MSIX_TABLE + i] = (uint8_t)((table_off | table_bar) >> (8 * i));
		cap[PCI_MSIX_PBA + i] = (uint8_t)((pba_off | pba_bar) >> (8 * i));
	}
	x->table = calloc(nvec, PCI_MSIX_ENTRY_SIZE);
	x->pending = calloc((nvec + 63) / 64, sizeof(uint64_t));
	fds = alloc_fds(nvec);
	if (!x->table || !x->pending || !fds) {
		free(x->table);
		free(x->pending);
		free(fds);
		x->table = NULL;
		x->pending = NULL;
		return udrv_err(ENOMEM, "out of memory for %u MSI-X vectors", nvec);
	}
	pthread_mutex_lock(&dev->lock);
	rc = vfu_cap_add_locked(dev, PCI_CAP_ID_MSIX, cap, sizeof(cap), wmask);
	if (rc >= 0) {
		x->cap = (unsigned)rc;
		x->nvec = nvec;
		x->table_bar = table_bar;
		x->table_off = table_off;
		x->pba_bar = pba_bar;
		x->pba_off = pba_off;
		for (unsigned v = 0; v < nvec; v++)
			*msix_ctrl(dev, v) = PCI_MSIX_ENTRY_MASKBIT; /* 6.8.2.9: reset masked */
		dev->irq_fd[VFIO_PCI_MSIX_IRQ_INDEX] = fds;
		dev->irq_count[VFIO_PCI_MSIX_IRQ_INDEX] = nvec;
	}
	pthread_mutex_unlock(&dev->lock);
	if (rc < 0) {
		free(x->table);
		free(x->pending);
		free(fds);
		x->table = NULL;
		x->pending = NULL;
	}
	return rc;
}

int udrv_vfu_add_msi(struct udrv_vfu_dev *dev, unsigned nvec)
{
	uint8_t cap[PCI_MSI_CAP_SIZE] = {0}, wmask[PCI_MSI_CAP_SIZE] = {0};
	uint32_t vmask = nvec >= 32 ? 0xffffffffu : (1u << nvec) - 1;
	uint16_t flags;
	int *fds;
	int rc;

	if (atomic_load(&dev->running))
		return udrv_err(EBUSY, "add MSI before udrv_vfu_run()/udrv_vfu_start()");
	if (dev->msi.nvec)
		return udrv_err(EEXIST, "the device already has an MSI capability");
	if (nvec < 1 || nvec > 32 || (nvec & (nvec - 1)))
		return udrv_err(EINVAL, "MSI has 1, 2, 4, 8, 16 or 32 vectors, not %u", nvec);
	flags = (uint16_t)(PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT |
			   (__builtin_ctz(nvec) << 1)); /* Multiple Message Capable */
	cap[PCI_MSI_FLAGS] = (uint8_t)flags;
	cap[PCI_MSI_FLAGS + 1] = (uint8_t)(flags >> 8);
	wmask[PCI_MSI_FLAGS] = PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE;
	for (unsigned i = 0; i < 4; i++) {
		wmask[PCI_MSI_ADDRESS_LO + i] = i ? 0xff : 0xfc;
		wmask[PCI_MSI_ADDRESS_HI + i] = 0xff;
		wmask[PCI_MSI_MASK_64 + i] = (uint8_t)(vmask >> (8 * i));
	}
	wmask[PCI_MSI_DATA_64] = wmask[PCI_MSI_DATA_64 + 1] = 0xff;
	fds = alloc_fds(nvec);
	if (!fds)
		return udrv_err(ENOMEM, "out of memory for %u MSI vectors", nvec);
	pthread_mutex_lock(&dev->lock);
	rc = vfu_cap_add_locked(dev, PCI_CAP_ID_MSI, cap, sizeof(cap), wmask);
	if (rc >= 0) {
		dev->msi.cap = (unsigned)rc;
		dev->msi.nvec = nvec;
		dev->irq_fd[VFIO_PCI_MSI_IRQ_INDEX] = fds;
		dev->irq_count[VFIO_PCI_MSI_IRQ_INDEX] = nvec;
	}
	pthread_mutex_unlock(&dev->lock);
	if (rc < 0)
		free(fds);
	return rc;
}
