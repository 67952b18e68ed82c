/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One client message in, one reply out: vfu_handle_msg() validates every field of every
 * command against the spec (QEMU docs/interop/vfio-user.rst, section per handler) and the
 * device, and answers with a reply or an error reply. It touches no socket - replies go to a
 * sink - so the fuzzer drives it directly.
 *
 * Rules for all handlers: the request payload size is msg_size minus the header ("Message
 * sizes": argsz only bounds the reply); fds are accepted only where a command carries them
 * and every fd is either kept or closed; offsets and counts are checked without overflow.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "core/log_internal.h"
#include "vfu_internal.h"

/* One request being handled, and the reply the handler prepares. */
struct msg {
	struct udrv_vfu_dev *dev;
	struct vfio_user_header hdr;
	const uint8_t *p; /* payload */
	size_t plen;
	int *fds;
	size_t nfds;
	/* Reply payload: up to 3 pieces; heap is freed after sending. */
	struct iovec iov[3];
	int iovcnt;
	int reply_fd; /* -1: none; borrowed */
	void *heap;
	uint8_t small[64];
	bool close; /* close the connection after replying */
};

static void reply_add(struct msg *m, const void *p, size_t len)
{
	m->iov[m->iovcnt].iov_base = (void *)p;
	m->iov[m->iovcnt].iov_len = len;
	m->iovcnt++;
}

static int no_fds(const struct msg *m, const char *cmd)
{
	if (m->nfds)
		return udrv_err(EINVAL, "%s carries no file descriptors, got %zu", cmd, m->nfds);
	return 0;
}

void vfu_session_reset(struct udrv_vfu_dev *dev)
{
	dev->negotiated = false;
	dev->client_max_fds = VFIO_USER_DEFAULT_MAX_FDS;
	dev->client_max_xfer = VFIO_USER_DEFAULT_MAX_DATA_XFER;
}

/* --- VFIO_USER_VERSION --- */

/* A non-negative integral JSON number, clamped to max. Absent: *out untouched. */
static int json_uint(struct json_object *caps, const char *key, uint64_t max, uint64_t *out)
{
	struct json_object *o;
	uint64_t v;

	if (!json_object_object_get_ex(caps, key, &o))
		return 0;
	if (json_object_is_type(o, json_type_int)) {
		int64_t i = json_object_get_int64(o);

		if (i < 0)
			return udrv_err(EINVAL, "VERSION: capability %s is negative", key);
		v = (uint64_t)i;
	} else if (json_object_is_type(o, json_type_double)) {
		double d = json_object_get_double(o);

		if (!(d >= 0 && d < 18446744073709551616.0) || (double)(uint64_t)d != d)
			return udrv_err(EINVAL, "VERSION: capability %s is not a whole number",
					key);
		v = (uint64_t)d;
	} else {
		return udrv_err(EINVAL, "VERSION: capability %s is not a number", key);
	}
	*out = v < max ? v : max;
	return 0;
}

static int parse_caps(struct udrv_vfu_dev *dev, const char *json, size_t len)
{
	struct json_tokener *tok = json_tokener_new_ex(16);
	struct json_object *root, *caps, *o;
	uint64_t fds = VFIO_USER_DEFAULT_MAX_FDS, xfer = VFIO_USER_DEFAULT_MAX_DATA_XFER;
	uint64_t pgsizes = VFIO_USER_DEFAULT_PGSIZES, maps = 0;
	size_t end;
	int rc = 0;

	if (!tok)
		return udrv_err(ENOMEM, "VERSION: out of memory");
	root = json_tokener_parse_ex(tok, json, (int)len);
	end = json_tokener_get_parse_end(tok);
	while (end < len &&
	       (json[end] == ' ' || json[end] == '\t' || json[end] == '\n' || json[end] == '\r'))
		end++;
	if (!root || json_tokener_get_error(tok) != json_tokener_success || end != len) {
		rc = udrv_err(EINVAL, "VERSION: the capabilities are not valid JSON (%s)",
			      json_tokener_error_desc(json_tokener_get_error(tok)));
		goto out;
	}
	if (!json_object_is_type(root, json_type_object)) {
		rc = udrv_err(EINVAL, "VERSION: the version data is not a JSON object");
		goto out;
	}
	if (!json_object_object_get_ex(root, "capabilities", &caps))
		goto apply;
	if (!json_object_is_type(caps, json_type_object)) {
		rc = udrv_err(EINVAL, "VERSION: \"capabilities\" is not an object");
		goto out;
	}
	rc = json_uint(caps, "max_msg_fds", UINT32_MAX, &fds);
	if (!rc)
		rc = json_uint(caps, "max_data_xfer_size", UINT64_MAX, &xfer);
	if (!rc)
		rc = json_uint(caps, "pgsizes", UINT64_MAX, &pgsizes);
	if (!rc)
		rc = json_uint(caps, "max_dma_maps", UINT64_MAX, &maps);
	if (rc)
		goto out;
	if (json_object_object_get_ex(caps, "twin_socket", &o) &&
	    !json_object_is_type(o, json_type_object)) {
		rc = udrv_err(EINVAL, "VERSION: \"twin_socket\" is not an object");
		goto out;
	}
	if (json_object_object_get_ex(caps, "write_multiple", &o) &&
	    !json_object_is_type(o, json_type_boolean)) {
		rc = udrv_err(EINVAL, "VERSION: \"write_multiple\" is not a boolean");
		goto out;
	}
	if (!xfer) {
		rc = udrv_err(EINVAL, "VERSION: max_data_xfer_size is 0");
		goto out;
	}
	if (!(pgsizes & VFIO_USER_DEFAULT_PGSIZES)) {
		rc = udrv_err(ENOTSUP, "VERSION: the client has no 4 KiB DMA pages (pgsizes %#llx)",
			      (unsigned long long)pgsizes);
		goto out;
	}
apply:
	/* The poller may be using them for message-based DMA: change them with it paused. */
	vfu_poller_pause(dev);
	dev->client_max_fds = (uint32_t)fds;
	dev->client_max_xfer = xfer < VFU_MAX_XFER ? xfer : VFU_MAX_XFER;
	vfu_poller_resume(dev);
out:
	json_object_put(root);
	json_tokener_free(tok);
	return rc;
}

static int handle_version(struct msg *m)
{
	struct udrv_vfu_dev *dev = m->dev;
	struct vfio_user_version v;
	struct json_object *root, *caps;
	const char *s;
	size_t slen, dlen;
	int rc;

	if (dev->negotiated)
		return udrv_err(EINVAL, "VERSION was already negotiated on this connection");
	if (m->plen < sizeof(v))
		return udrv_err(EINVAL, "VERSION payload of %zu bytes is too short", m->plen);
	rc = no_fds(m, "VERSION");
	if (rc)
		return rc;
	memcpy(&v, m->p, sizeof(v));
	if (v.major != VFIO_USER_MAJOR) {
		/* "If the client does not support the proposed major, it closes the
		 * connection"; the server likewise. */
		m->close = true;
		return udrv_err(ENOTSUP, "VERSION: client speaks major %u, udrv speaks %u", v.major,
				VFIO_USER_MAJOR);
	}
	dlen = strnlen((const char *)m->p + sizeof(v), m->plen - sizeof(v));
	if (dlen) {
		rc = parse_caps(dev, (const char *)m->p + sizeof(v), dlen);
		if (rc)
			return rc;
	} else {
		vfu_session_reset(dev);
	}

	/* Our capabilities; no twin socket, no migration, no write_multiple. */
	root = json_object_new_object();
	caps = json_object_new_object();
	if (!root || !caps) {
		json_object_put(root);
		json_object_put(caps);
		return udrv_err(ENOMEM, "VERSION: out of memory");
	}
	json_object_object_add(caps, "max_msg_fds", json_object_new_int64(VFIO_USER_MAX_FDS));
	json_object_object_add(caps, "max_data_xfer_size", json_object_new_int64(VFU_MAX_XFER));
	json_object_object_add(caps, "pgsizes", json_object_new_int64(VFIO_USER_DEFAULT_PGSIZES));
	json_object_object_add(caps, "max_dma_maps", json_object_new_int64(dev->max_dma_maps));
	json_object_object_add(root, "capabilities", caps);
	s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	slen = s ? strlen(s) + 1 : 0; /* "including terminating NUL" */
	m->heap = malloc(sizeof(v) + slen);
	if (!s || !m->heap) {
		json_object_put(root);
		return udrv_err(ENOMEM, "VERSION: out of memory");
	}
	v.major = VFIO_USER_MAJOR;
	v.minor = v.minor < VFIO_USER_MINOR ? v.minor : VFIO_USER_MINOR;
	memcpy(m->heap, &v, sizeof(v));
	memcpy((uint8_t *)m->heap + sizeof(v), s, slen);
	json_object_put(root);
	reply_add(m, m->heap, sizeof(v) + slen);
	dev->negotiated = true;
	return 0;
}

/* --- DMA_MAP / DMA_UNMAP --- */

static int handle_dma_map(struct msg *m)
{
	struct vfio_user_dma_map map;
	int fd;

	if (m->plen != sizeof(map))
		return udrv_err(EINVAL, "DMA_MAP payload is %zu bytes, not 32", m->plen);
	memcpy(&map, m->p, sizeof(map));
	if (map.argsz != sizeof(map))
		return udrv_err(EINVAL, "DMA_MAP argsz is %u, not 32", map.argsz);
	if (m->nfds > 1)
		return udrv_err(EINVAL, "DMA_MAP carries at most one fd, got %zu", m->nfds);
	fd = m->nfds ? m->fds[0] : -1;
	if (m->nfds)
		m->fds[0] = -1; /* vfu_dma_map() keeps or closes it */
	return vfu_dma_map(m->dev, &map, fd);
}

static int handle_dma_unmap(struct msg *m)
{
	struct vfio_user_dma_unmap u;
	int rc;

	if (m->plen != sizeof(u))
		return udrv_err(EINVAL, "DMA_UNMAP payload is %zu bytes, not 24", m->plen);
	rc = no_fds(m, "DMA_UNMAP");
	if (rc)
		return rc;
	memcpy(&u, m->p, sizeof(u));
	if (u.argsz < sizeof(u))
		return udrv_err(EINVAL, "DMA_UNMAP argsz %u cannot hold the 24-byte reply",
				u.argsz);
	rc = vfu_dma_unmap(m->dev, &u);
	if (rc)
		return rc;
	/* "The server responds with the original DMA entry in the request." */
	memcpy(m->small, &u, sizeof(u));
	reply_add(m, m->small, sizeof(u));
	return 0;
}

/* --- DEVICE_GET_INFO / GET_REGION_INFO / GET_IRQ_INFO --- */

static int handle_device_info(struct msg *m)
{
	struct vfio_user_device_info in,
	    out = {
		.argsz = sizeof(out),
		.flags = VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI,
		.num_regions = VFU_NUM_REGIONS,
		.num_irqs = VFU_NUM_IRQS,
	    };
	int rc;

	if (m->plen != sizeof(in))
		return udrv_err(EINVAL, "DEVICE_GET_INFO payload is %zu bytes, not 16", m->plen);
	rc = no_fds(m, "DEVICE_GET_INFO");
	if (rc)
		return rc;
	memcpy(&in, m->p, sizeof(in));
	if (in.argsz < sizeof(out))
		return udrv_err(EINVAL, "DEVICE_GET_INFO argsz %u is below 16", in.argsz);
	memcpy(m->small, &out, sizeof(out));
	reply_add(m, m->small, sizeof(out));
	return 0;
}

static int handle_region_info(struct msg *m)
{
	struct udrv_vfu_dev *dev = m->dev;
	struct vfio_user_region_info in, out = {0};
	const struct vfu_bar *bar;
	struct vfio_region_info_cap_sparse_mmap *cap;
	size_t caplen = 0;
	int rc;

	if (m->plen != sizeof(in))
		return udrv_err(EINVAL, "GET_REGION_INFO payload is %zu bytes, not 32", m->plen);
	rc = no_fds(m, "GET_REGION_INFO");
	if (rc)
		return rc;
	memcpy(&in, m->p, sizeof(in));
	if (in.argsz < sizeof(out))
		return udrv_err(EINVAL, "GET_REGION_INFO argsz %u is below 32", in.argsz);
	if (in.index >= VFU_NUM_REGIONS)
		return udrv_err(EINVAL, "GET_REGION_INFO: no region %u", in.index);
	out.index = in.index;
	out.size = vfu_region_size(dev, in.index);
	out.flags = out.size ? VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE : 0;
	out.offset = 0; /* mmap offsets are BAR offsets in the BAR's memfd */
	bar = in.index < VFU_NUM_BARS ? &dev->bars[in.index] : NULL;
	/* Mappable parts need an fd in the reply: only if the client accepts one. */
	if (out.size && bar && bar->nr_areas && dev->client_max_fds >= 1) {
		out.flags |= VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS;
		caplen = sizeof(*cap) + bar->nr_areas * sizeof(cap->areas[0]);
	}
	out.argsz = (uint32_t)(sizeof(out) + caplen);
	/* A reply that does not fit argsz says how large it is, without caps and fd ("Message
	 * sizes"); the client asks again. */
	if (caplen && in.argsz >= out.argsz) {
		cap = calloc(1, caplen);
		if (!cap)
			return udrv_err(ENOMEM, "GET_REGION_INFO: out of memory");
		cap->header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
		cap->header.version = 1;
		cap->header.next = 0;
		cap->nr_areas = bar->nr_areas;
		for (unsigned i = 0; i < bar->nr_areas; i++) {
			cap->areas[i].offset = bar->areas[i].off;
			cap->areas[i].size = bar->areas[i].len;
		}
		out.cap_offset = sizeof(out);
		m->heap = cap;
		m->reply_fd = bar->memfd;
	}
	memcpy(m->small, &out, sizeof(out));
	reply_add(m, m->small, sizeof(out));
	if (m->heap)
		reply_add(m, m->heap, caplen);
	return 0;
}

static int handle_irq_info(struct msg *m)
{
	struct vfio_user_irq_info in, out;
	uint32_t flags, count;
	int rc;

	if (m->plen != sizeof(in))
		return udrv_err(EINVAL, "GET_IRQ_INFO payload is %zu bytes, not 16", m->plen);
	rc = no_fds(m, "GET_IRQ_INFO");
	if (rc)
		return rc;
	memcpy(&in, m->p, sizeof(in));
	if (in.argsz < sizeof(out))
		return udrv_err(EINVAL, "GET_IRQ_INFO argsz %u is below 16", in.argsz);
	out.argsz = sizeof(out);
	out.index = in.index;
	rc = vfu_irq_info(m->dev, in.index, &flags, &count);
	if (rc)
		return rc;
	out.flags = flags;
	out.count = count;
	memcpy(m->small, &out, sizeof(out));
	reply_add(m, m->small, sizeof(out));
	return 0;
}

static int handle_set_irqs(struct msg *m)
{
	struct vfio_user_irq_set s;

	if (m->plen < sizeof(s))
		return udrv_err(EINVAL, "SET_IRQS payload of %zu bytes is too short", m->plen);
	memcpy(&s, m->p, sizeof(s));
	if (s.argsz < sizeof(s))
		return udrv_err(EINVAL, "SET_IRQS argsz %u is below 20", s.argsz);
	return vfu_irq_set(m->dev, &s, m->p + sizeof(s), m->plen - sizeof(s), m->fds, m->nfds);
}

/* --- REGION_READ / REGION_WRITE --- */

static int check_access(struct msg *m, const struct vfio_user_region_access *ra, const char *cmd)
{
	uint64_t size;

	if (ra->region >= VFU_NUM_REGIONS)
		return udrv_err(EINVAL, "%s: no region %u", cmd, ra->region);
	size = vfu_region_size(m->dev, ra->region);
	if (!size)
		return udrv_err(EINVAL, "%s: region %u is not implemented", cmd, ra->region);
	if (ra->count > VFU_MAX_XFER)
		return udrv_err(EINVAL, "%s: count %u exceeds max_data_xfer_size", cmd, ra->count);
	if (ra->offset > size || ra->count > size - ra->offset)
		return udrv_err(EINVAL, "%s: [%#llx, +%u) is outside region %u (%#llx bytes)", cmd,
				(unsigned long long)ra->offset, ra->count, ra->region,
				(unsigned long long)size);
	return 0;
}

static int region_rw(struct udrv_vfu_dev *dev, const struct vfio_user_region_access *ra, void *data,
		     bool write)
{
	if (!ra->count)
		return 0;
	if (ra->region == VFIO_PCI_CONFIG_REGION_INDEX)
		return write ? vfu_cfg_client_write(dev, ra->offset, data, ra->count)
			     : vfu_cfg_client_read(dev, ra->offset, data, ra->count);
	return vfu_bar_access(dev, ra->region, ra->offset, data, ra->count, write);
}

static int handle_region_read(struct msg *m)
{
	struct vfio_user_region_access ra;
	int rc;

	if (m->plen != sizeof(ra))
		return udrv_err(EINVAL, "REGION_READ payload is %zu bytes, not 16", m->plen);
	rc = no_fds(m, "REGION_READ");
	if (rc)
		return rc;
	memcpy(&ra, m->p, sizeof(ra));
	rc = check_access(m, &ra, "REGION_READ");
	if (rc)
		return rc;
	m->heap = calloc(1, sizeof(ra) + ra.count);
	if (!m->heap)
		return udrv_err(ENOMEM, "REGION_READ: out of memory");
	rc = region_rw(m->dev, &ra, (uint8_t *)m->heap + sizeof(ra), false);
	if (rc < 0)
		return rc;
	memcpy(m->heap, &ra, sizeof(ra));
	reply_add(m, m->heap, sizeof(ra) + ra.count);
	return 0;
}

static int handle_region_write(struct msg *m)
{
	struct vfio_user_region_access ra;
	int rc;

	if (m->plen < sizeof(ra))
		return udrv_err(EINVAL, "REGION_WRITE payload of %zu bytes is too short", m->plen);
	rc = no_fds(m, "REGION_WRITE");
	if (rc)
		return rc;
	memcpy(&ra, m->p, sizeof(ra));
	if (m->plen - sizeof(ra) != ra.count)
		return udrv_err(EINVAL, "REGION_WRITE: count %u but %zu data bytes", ra.count,
				m->plen - sizeof(ra));
	rc = check_access(m, &ra, "REGION_WRITE");
	if (rc)
		return rc;
	/* The write paths only read the data. */
	rc = region_rw(m->dev, &ra, (void *)(m->p + sizeof(ra)), true);
	if (rc < 0)
		return rc;
	memcpy(m->small, &ra, sizeof(ra));
	reply_add(m, m->small, sizeof(ra));
	return 0;
}

/* --- DEVICE_RESET --- */

static int handle_reset(struct msg *m)
{
	struct udrv_vfu_dev *dev = m->dev;
	int rc = 0;

	if (m->plen)
		return udrv_err(EINVAL, "DEVICE_RESET has no payload, got %zu bytes", m->plen);
	rc = no_fds(m, "DEVICE_RESET");
	if (rc)
		return rc;
	vfu_poller_pause(dev);
	if (dev->opts.reset)
		rc = dev->opts.reset(dev->opts.ctx);
	vfu_irq_reset(dev);
	vfu_poller_resume(dev);
	if (rc > 0)
		rc = 0;
	return rc;
}

/* --- dispatch --- */

int vfu_reply_error(const struct vfu_sink *sink, const struct vfio_user_header *hdr, int err)
{
	struct vfio_user_header r = {
	    .msg_id = hdr->msg_id,
	    .command = hdr->command,
	    .msg_size = sizeof(r),
	    .flags = VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR,
	    .error_no = (uint32_t)(err > 0 && err < 4096 ? err : EINVAL),
	};
	struct iovec iov = {&r, sizeof(r)};

	if (hdr->flags & VFIO_USER_F_NO_REPLY)
		return 0;
	return sink->send(sink->ctx, &iov, 1, NULL, 0);
}

static int send_reply(const struct msg *m, const struct vfu_sink *sink)
{
	struct vfio_user_header r = {
	    .msg_id = m->hdr.msg_id,
	    .command = m->hdr.command,
	    .msg_size = sizeof(r),
	    .flags = VFIO_USER_F_TYPE_REPLY,
	};
	struct iovec iov[4] = {{&r, sizeof(r)}};

	if (m->hdr.flags & VFIO_USER_F_NO_REPLY)
		return 0;
	for (int i = 0; i < m->iovcnt; i++) {
		iov[i + 1] = m->iov[i];
		r.msg_size += (uint32_t)m->iov[i].iov_len;
	}
	return sink->send(sink->ctx, iov, m->iovcnt + 1, m->reply_fd >= 0 ? &m->reply_fd : NULL,
			  m->reply_fd >= 0 ? 1 : 0);
}

static int dispatch(struct msg *m)
{
	if (!m->dev->negotiated && m->hdr.command != VFIO_USER_VERSION)
		return udrv_err(EINVAL, "command %u before VERSION: negotiate first",
				m->hdr.command);
	switch (m->hdr.command) {
	case VFIO_USER_VERSION:
		return handle_version(m);
	case VFIO_USER_DMA_MAP:
		return handle_dma_map(m);
	case VFIO_USER_DMA_UNMAP:
		return handle_dma_unmap(m);
	case VFIO_USER_DEVICE_GET_INFO:
		return handle_device_info(m);
	case VFIO_USER_DEVICE_GET_REGION_INFO:
		return handle_region_info(m);
	case VFIO_USER_DEVICE_GET_IRQ_INFO:
		return handle_irq_info(m);
	case VFIO_USER_DEVICE_SET_IRQS:
		return handle_set_irqs(m);
	case VFIO_USER_REGION_READ:
		return handle_region_read(m);
	case VFIO_USER_REGION_WRITE:
		return handle_region_write(m);
	case VFIO_USER_DEVICE_RESET:
		return handle_reset(m);
	case VFIO_USER_DEVICE_FEATURE:
		/* No migration or dirty tracking: what VFIO_DEVICE_FEATURE answers then. */
		return udrv_err(ENOTTY, "DEVICE_FEATURE: no features are supported");
	default:
		/* Unknown, server->client (DMA_READ/WRITE), or not offered: REGION_IO_FDS,
		 * REGION_WRITE_MULTI (no write_multiple), MIG_DATA_*. */
		return udrv_err(ENOSYS, "command %u is not supported", m->hdr.command);
	}
}

int vfu_handle_msg(struct udrv_vfu_dev *dev, const void *buf, size_t len, int *fds, size_t nfds,
		   const struct vfu_sink *sink)
{
	struct msg m = {.dev = dev, .fds = fds, .nfds = nfds, .reply_fd = -1};
	uint32_t type;
	int rc, src;

	if (len < sizeof(m.hdr)) {
		vfu_close_fds(fds, nfds);
		return udrv_err(EPROTO, "a %zu-byte message is shorter than the header", len);
	}
	memcpy(&m.hdr, buf, sizeof(m.hdr));
	if (m.hdr.msg_size != len) {
		vfu_close_fds(fds, nfds);
		return udrv_err(EPROTO, "message size %u does not match the %zu bytes received",
				m.hdr.msg_size, len);
	}
	type = m.hdr.flags & VFIO_USER_F_TYPE_MASK;
	if (type != VFIO_USER_F_TYPE_COMMAND) {
		vfu_close_fds(fds, nfds);
		if (type == VFIO_USER_F_TYPE_REPLY)
			return 0; /* a reply nobody waits for: dropped */
		udrv_err(EINVAL, "message type %u is neither command nor reply", type);
		return vfu_reply_error(sink, &m.hdr, EINVAL) < 0 ? -EPIPE : 0;
	}
	m.p = (const uint8_t *)buf + sizeof(m.hdr);
	m.plen = len - sizeof(m.hdr);

	rc = dispatch(&m);
	vfu_close_fds(fds, nfds); /* everything the handler did not keep */
	src = rc < 0 ? vfu_reply_error(sink, &m.hdr, -rc) : send_reply(&m, sink);
	free(m.heap);
	if (src < 0)
		return src;
	return m.close ? -EPROTO : 0;
}
