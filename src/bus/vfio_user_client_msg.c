/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user client's message layer: the VERSION offer, and the checks and decoding of every
 * message the server sends (replies, and its DMA_READ/DMA_WRITE commands). Sections cited are
 * those of QEMU docs/interop/vfio-user.rst. The server is untrusted: lengths, offsets, indexes
 * and counts are checked against the request and the buffer before anything is read or written.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "core/log_internal.h"
#include "vfio_user_client_internal.h"

#define HDR sizeof(struct vfio_user_header)

static const char *cmd_name(uint16_t cmd)
{
	static const char *const names[VFIO_USER_MAX_COMMAND] = {
	    [VFIO_USER_VERSION] = "VERSION",
	    [VFIO_USER_DMA_MAP] = "DMA_MAP",
	    [VFIO_USER_DMA_UNMAP] = "DMA_UNMAP",
	    [VFIO_USER_DEVICE_GET_INFO] = "DEVICE_GET_INFO",
	    [VFIO_USER_DEVICE_GET_REGION_INFO] = "DEVICE_GET_REGION_INFO",
	    [VFIO_USER_DEVICE_GET_IRQ_INFO] = "DEVICE_GET_IRQ_INFO",
	    [VFIO_USER_DEVICE_SET_IRQS] = "DEVICE_SET_IRQS",
	    [VFIO_USER_REGION_READ] = "REGION_READ",
	    [VFIO_USER_REGION_WRITE] = "REGION_WRITE",
	    [VFIO_USER_DMA_READ] = "DMA_READ",
	    [VFIO_USER_DMA_WRITE] = "DMA_WRITE",
	    [VFIO_USER_DEVICE_RESET] = "DEVICE_RESET",
	};

	return cmd < VFIO_USER_MAX_COMMAND && names[cmd] ? names[cmd] : "an unknown command";
}

/* ---- VERSION ---- */

int vu_version_build(void **out)
{
	struct json_object *root = json_object_new_object(), *caps = json_object_new_object();
	struct vfio_user_version v = {.major = VFIO_USER_MAJOR, .minor = VFIO_USER_MINOR};
	const char *s;
	size_t n;
	char *buf = NULL;

	/* "twin_socket" is not offered: server commands arrive on the main socket, where the
	 * receive thread serves them between replies. */
	if (root && caps &&
	    !json_object_object_add(caps, "max_msg_fds", json_object_new_int(VU_OUR_MAX_FDS)) &&
	    !json_object_object_add(caps, "max_data_xfer_size",
				    json_object_new_int64(VU_OUR_MAX_XFER)) &&
	    !json_object_object_add(caps, "pgsizes",
				    json_object_new_uint64(VFIO_USER_DEFAULT_PGSIZES)) &&
	    !json_object_object_add(caps, "max_dma_maps",
				    json_object_new_int(VFIO_USER_DEFAULT_MAX_DMA_MAPS))) {
		if (json_object_object_add(root, "capabilities", caps) == 0) {
			caps = NULL;
			s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
			n = s ? strlen(s) + 1 : 0;
			buf = n ? malloc(sizeof(v) + n) : NULL;
			if (buf) {
				memcpy(buf, &v, sizeof(v));
				memcpy(buf + sizeof(v), s, n);
			}
		}
	}
	json_object_put(caps);
	json_object_put(root);
	if (!buf)
		return udrv_err(ENOMEM, "out of memory");
	*out = buf;
	return (int)(sizeof(v) + n);
}

/* A capability that must be a non-negative integer within [min, max]. Absent: *val unchanged. */
static int cap_u64(struct json_object *caps, const char *key, uint64_t min, uint64_t max,
		   uint64_t *val)
{
	struct json_object *o;
	uint64_t u;

	if (!json_object_object_get_ex(caps, key, &o))
		return 0;
	if (json_object_get_type(o) != json_type_int || json_object_get_int64(o) < 0)
		return udrv_err(EPROTO,
				"the vfio-user server's \"%s\" capability is not a non-negative "
				"integer: upgrade or fix the server",
				key);
	u = json_object_get_uint64(o);
	if (u < min || u > max)
		return udrv_err(EPROTO,
				"the vfio-user server's \"%s\" capability is %" PRIu64
				", outside %" PRIu64 "-%" PRIu64 ": upgrade or fix the server",
				key, u, min, max);
	*val = u;
	return 0;
}

static int parse_caps(struct json_object *top, struct vu_caps *caps)
{
	struct json_object *c, *twin, *sup;
	uint64_t fds = caps->max_msg_fds, xfer = caps->max_data_xfer_size;
	uint64_t maps = caps->max_dma_maps, pg = caps->pgsizes;
	int rc;

	if (json_object_get_type(top) != json_type_object)
		return udrv_err(EPROTO, "the vfio-user server's VERSION data is not a JSON object: "
					"upgrade or fix the server");
	if (!json_object_object_get_ex(top, "capabilities", &c))
		return 0;
	if (json_object_get_type(c) != json_type_object)
		return udrv_err(EPROTO, "the vfio-user server's \"capabilities\" is not a JSON "
					"object: upgrade or fix the server");
	rc = cap_u64(c, "max_msg_fds", 0, VU_MAX_PEER_FDS, &fds);
	if (rc == 0)
		rc = cap_u64(c, "max_data_xfer_size", VU_MIN_XFER, UINT32_MAX, &xfer);
	if (rc == 0)
		rc = cap_u64(c, "max_dma_maps", 1, UINT32_MAX, &maps);
	if (rc == 0)
		rc = cap_u64(c, "pgsizes", 1, UINT64_MAX, &pg);
	if (rc < 0)
		return rc;
	/* The reply's capabilities are a subset of the offer (spec, "VFIO_USER_VERSION"). */
	if (json_object_object_get_ex(c, "twin_socket", &twin) &&
	    json_object_object_get_ex(twin, "supported", &sup) && json_object_get_boolean(sup))
		return udrv_err(EPROTO, "the vfio-user server enabled twin-socket mode, which udrv "
					"did not offer: upgrade or fix the server");
	caps->max_msg_fds = (uint32_t)fds;
	caps->max_data_xfer_size = (uint32_t)xfer;
	caps->max_dma_maps = (uint32_t)maps;
	caps->pgsizes = pg;
	return 0;
}

int vu_version_parse(const void *p, size_t len, struct vu_caps *caps)
{
	const char *json = (const char *)p + sizeof(struct vfio_user_version);
	struct vfio_user_version v;
	struct json_tokener *tok;
	struct json_object *top;
	size_t n, end;
	int rc;

	if (len < sizeof(v))
		return udrv_err(
		    EPROTO,
		    "the vfio-user server's VERSION reply has %zu bytes, fewer than the "
		    "4 the protocol needs",
		    len);
	memcpy(&v, p, sizeof(v));
	if (v.major != VFIO_USER_MAJOR || v.minor > VFIO_USER_MINOR)
		return udrv_err(EPROTONOSUPPORT,
				"the vfio-user server answered protocol version %u.%u to udrv's "
				"offer of %d.%d: use a server that speaks %d.0 to %d.%d",
				v.major, v.minor, VFIO_USER_MAJOR, VFIO_USER_MINOR, VFIO_USER_MAJOR,
				VFIO_USER_MAJOR, VFIO_USER_MINOR);
	caps->minor = v.minor;
	caps->max_msg_fds = VFIO_USER_DEFAULT_MAX_FDS;
	caps->max_data_xfer_size = VFIO_USER_DEFAULT_MAX_DATA_XFER;
	caps->max_dma_maps = VFIO_USER_DEFAULT_MAX_DMA_MAPS;
	caps->pgsizes = VFIO_USER_DEFAULT_PGSIZES;
	/* "version data ... (including terminating NUL). Optional." */
	n = strnlen(json, len - sizeof(v));
	if (n == 0)
		return 0;
	tok = json_tokener_new();
	if (!tok)
		return udrv_err(ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	top = json_tokener_parse_ex(tok, json, (int)(n > INT32_MAX ? INT32_MAX : n));
	end = top ? json_tokener_get_parse_end(tok) : 0;
	while (top && end < n && strchr(" \t\r\n", json[end]))
		end++;
	if (!top || json_tokener_get_error(tok) != json_tokener_success || end != n)
		rc = udrv_err(EPROTO, "the vfio-user server's VERSION data is not valid JSON: "
				      "upgrade or fix the server");
	else
		rc = parse_caps(top, caps);
	json_object_put(top);
	json_tokener_free(tok);
	return rc;
}

/* ---- replies ---- */

int vu_hdr_check(const struct vfio_user_header *h, size_t max_size)
{
	uint32_t type = h->flags & VFIO_USER_F_TYPE_MASK;

	if (h->msg_size < HDR || h->msg_size > max_size)
		return udrv_err(EPROTO,
				"the vfio-user server sent a message of %" PRIu32 " bytes, outside "
				"the %zu-%zu bytes the protocol allows here",
				h->msg_size, HDR, max_size);
	if (type != VFIO_USER_F_TYPE_COMMAND && type != VFIO_USER_F_TYPE_REPLY)
		return udrv_err(
		    EPROTO, "the vfio-user server sent a message of unknown type %" PRIu32, type);
	return 0;
}

int vu_reply_check(const void *msg, size_t len, uint16_t id, uint16_t cmd)
{
	struct vfio_user_header h;
	uint32_t err;

	if (len < HDR)
		return udrv_err(EPROTO, "the vfio-user server's reply to %s is truncated",
				cmd_name(cmd));
	memcpy(&h, msg, HDR);
	if (h.msg_size != len || (h.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_REPLY ||
	    (h.flags & VFIO_USER_F_NO_REPLY))
		return udrv_err(EPROTO, "the vfio-user server's reply to %s has a malformed header",
				cmd_name(cmd));
	if (h.msg_id != id || h.command != cmd)
		return udrv_err(EPROTO,
				"the vfio-user server answered message %u (%s) while udrv waited "
				"for message %u (%s)",
				h.msg_id, cmd_name(h.command), id, cmd_name(cmd));
	if (!(h.flags & VFIO_USER_F_ERROR))
		return 0;
	/* "It may be zero even if the Error bit is set" (spec, "Header"). */
	err = h.error_no > 0 && h.error_no < 4096 ? h.error_no : EIO;
	return udrv_err((int)err, "the vfio-user server refused %s: %s", cmd_name(cmd),
			strerror((int)err));
}

int vu_decode_device_info(const void *p, size_t len, struct vfio_user_device_info *out)
{
	if (len < sizeof(*out))
		return udrv_err(EPROTO,
				"the vfio-user server's DEVICE_GET_INFO reply is truncated");
	memcpy(out, p, sizeof(*out));
	if (out->argsz < sizeof(*out))
		return udrv_err(EPROTO,
				"the vfio-user server's DEVICE_GET_INFO reply has argsz "
				"%" PRIu32,
				out->argsz);
	return 0;
}

/* vfio.h: struct vfio_region_info_cap_sparse_mmap, then nr_areas vfio_region_sparse_mmap_area.
 * Offsets are from the start of the region info (spec, "VFIO cap header format"). */
static int region_sparse(const uint8_t *p, size_t avail, size_t off, uint32_t index,
			 struct vu_region *out)
{
	struct vfio_region_info_cap_sparse_mmap cap;
	uint64_t size = out->info.size;

	if (avail - off < sizeof(cap))
		return udrv_err(EPROTO,
				"the vfio-user server's sparse-mmap list of region %" PRIu32
				" is truncated",
				index);
	memcpy(&cap, p + off, sizeof(cap));
	if (cap.nr_areas >
	    (avail - off - sizeof(cap)) / sizeof(struct vfio_region_sparse_mmap_area))
		return udrv_err(EPROTO,
				"the vfio-user server lists %" PRIu32 " mappable areas for region "
				"%" PRIu32 ", more than its reply holds",
				cap.nr_areas, index);
	for (uint32_t i = 0; i < cap.nr_areas; i++) {
		struct vfio_region_sparse_mmap_area a;

		memcpy(&a, p + off + sizeof(cap) + i * sizeof(a), sizeof(a));
		if (a.offset > size || a.size > size - a.offset)
			return udrv_err(EPROTO,
					"the vfio-user server's mappable area 0x%llx+0x%llx lies "
					"outside region %" PRIu32 " (0x%" PRIx64 " bytes)",
					(unsigned long long)a.offset, (unsigned long long)a.size,
					index, size);
		if (a.size == 0 || out->info.nr_areas == UDRV_REGION_MAX_AREAS)
			continue;
		out->info.areas[out->info.nr_areas].offset = a.offset;
		out->info.areas[out->info.nr_areas].size = a.size;
		out->info.nr_areas++;
	}
	return 0;
}

int vu_decode_region_info(const void *p, size_t len, uint32_t index, uint32_t asked,
			  struct vu_region *out, uint32_t *need)
{
	struct vfio_user_region_info ri;
	size_t avail, off;

	*need = 0;
	memset(out, 0, sizeof(*out));
	if (len < sizeof(ri))
		return udrv_err(EPROTO,
				"the vfio-user server's info on region %" PRIu32 " is truncated",
				index);
	memcpy(&ri, p, sizeof(ri));
	if (ri.argsz < sizeof(ri) || ri.index != index)
		return udrv_err(EPROTO,
				"the vfio-user server answered a question on region %" PRIu32
				" with argsz %" PRIu32 " for region %" PRIu32,
				index, ri.argsz, ri.index);
	if (ri.argsz > asked) {
		/* Spec, "Message sizes": argsz says how large a buffer to ask again with. */
		if (ri.argsz > VU_INFO_MAX)
			return udrv_err(EPROTO,
					"the vfio-user server needs %" PRIu32 " bytes to describe "
					"region %" PRIu32 ", more than the %u udrv accepts",
					ri.argsz, index, VU_INFO_MAX);
		*need = ri.argsz;
		return 0;
	}
	out->vflags = ri.flags;
	out->mmap_off = ri.offset;
	out->info.size = ri.size;
	if (ri.size == 0)
		return 0;
	if (ri.flags & VFIO_REGION_INFO_FLAG_READ)
		out->info.flags |= UDRV_REGION_F_READ;
	if (ri.flags & VFIO_REGION_INFO_FLAG_WRITE)
		out->info.flags |= UDRV_REGION_F_WRITE;
	if (!(ri.flags & VFIO_REGION_INFO_FLAG_MMAP))
		return 0;
	/* mmap() takes the offset as a (64-bit, signed) off_t. */
	if (ri.offset > (uint64_t)INT64_MAX - ri.size)
		return udrv_err(EPROTO,
				"the vfio-user server's mmap offset 0x%" PRIx64
				" for region %" PRIu32 " is out of range",
				(uint64_t)ri.offset, index);
	avail = len < ri.argsz ? len : ri.argsz;
	off = (ri.flags & VFIO_REGION_INFO_FLAG_CAPS) ? ri.cap_offset : 0;
	for (unsigned hops = 0; off != 0; hops++) {
		struct vfio_info_cap_header h;

		if (hops == 64 || off < sizeof(ri) || off > avail || avail - off < sizeof(h))
			return udrv_err(EPROTO,
					"the vfio-user server's capability list for region %" PRIu32
					" is malformed",
					index);
		memcpy(&h, (const uint8_t *)p + off, sizeof(h));
		if (h.id == VFIO_REGION_INFO_CAP_SPARSE_MMAP)
			return region_sparse(p, avail, off, index, out);
		off = h.next;
	}
	/* No sparse list: the whole region maps. */
	out->info.nr_areas = 1;
	out->info.areas[0].offset = 0;
	out->info.areas[0].size = ri.size;
	return 0;
}

int vu_decode_irq_info(const void *p, size_t len, uint32_t index, struct vfio_user_irq_info *out)
{
	if (len < sizeof(*out))
		return udrv_err(EPROTO, "the vfio-user server's DEVICE_GET_IRQ_INFO reply is "
					"truncated");
	memcpy(out, p, sizeof(*out));
	if (out->argsz < sizeof(*out) || out->index != index || out->count > VU_MAX_IRQ_VECTORS)
		return udrv_err(EPROTO,
				"the vfio-user server answered a question on interrupt index "
				"%" PRIu32 " with index %" PRIu32 ", %" PRIu32 " vectors",
				index, out->index, out->count);
	return 0;
}

int vu_decode_region_access(const void *p, size_t len, uint32_t region, uint64_t off,
			    uint32_t count, bool read)
{
	struct vfio_user_region_access ra;
	size_t want = sizeof(ra) + (read ? count : 0);

	if (len != want)
		return udrv_err(EPROTO,
				"the vfio-user server's %s reply has %zu bytes instead of %zu",
				read ? "REGION_READ" : "REGION_WRITE", len, want);
	memcpy(&ra, p, sizeof(ra));
	if (ra.region != region || ra.offset != off || ra.count != count)
		return udrv_err(EPROTO,
				"the vfio-user server answered an access of %" PRIu32 " bytes at "
				"0x%" PRIx64 " of region %" PRIu32 " with %" PRIu32
				" bytes at 0x%" PRIx64 " of region %" PRIu32,
				count, off, region, ra.count, (uint64_t)ra.offset, ra.region);
	return 0;
}

int vu_decode_dma_unmap(const void *p, size_t len, uint64_t addr, uint64_t size)
{
	struct vfio_user_dma_unmap u;

	if (len == 0)
		return 0;
	if (len < sizeof(u))
		return udrv_err(EPROTO, "the vfio-user server's DMA_UNMAP reply is truncated");
	memcpy(&u, p, sizeof(u));
	if (u.addr != addr || u.size != size)
		return udrv_err(EPROTO,
				"the vfio-user server answered the unmap of 0x%" PRIx64
				"+0x%" PRIx64 " with 0x%" PRIx64 "+0x%" PRIx64,
				addr, size, (uint64_t)u.addr, (uint64_t)u.size);
	return 0;
}

/* ---- DMA windows and the server's DMA_READ/DMA_WRITE ---- */

int vu_dma_add(struct vu_dma_table *t, uint64_t iova, uint64_t len, void *va)
{
	if (len == 0 || iova + len < iova)
		return -EINVAL;
	if (t->n == t->cap) {
		unsigned cap = t->cap ? 2 * t->cap : 16;
		struct vu_dma_win *w = realloc(t->w, cap * sizeof(*w));

		if (!w)
			return -ENOMEM;
		t->w = w;
		t->cap = cap;
	}
	t->w[t->n++] = (struct vu_dma_win){iova, len, va};
	return 0;
}

int vu_dma_del(struct vu_dma_table *t, uint64_t iova, uint64_t len)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->w[i].iova == iova && t->w[i].len == len) {
			t->w[i] = t->w[--t->n];
			return 0;
		}
	return -ENOENT;
}

void vu_dma_fini(struct vu_dma_table *t)
{
	free(t->w);
	memset(t, 0, sizeof(*t));
}

static const struct vu_dma_win *dma_find(const struct vu_dma_table *t, uint64_t iova)
{
	for (unsigned i = 0; i < t->n; i++)
		if (iova >= t->w[i].iova && iova - t->w[i].iova < t->w[i].len)
			return &t->w[i];
	return NULL;
}

/* Copy between buf and [iova, iova + count) if every byte lies in a window (adjacent windows
 * may be crossed, as an IOMMU would allow); otherwise touch nothing and return false. With buf
 * NULL, only check. */
static bool dma_copy(const struct vu_dma_table *t, uint64_t iova, void *buf, uint64_t count,
		     bool to_client)
{
	for (int pass = 0; pass < (buf ? 2 : 1); pass++) {
		uint64_t done = 0;

		while (done < count) {
			const struct vu_dma_win *w = dma_find(t, iova + done);
			uint64_t at, n;

			if (!w)
				return false;
			at = iova + done - w->iova;
			n = w->len - at < count - done ? w->len - at : count - done;
			if (pass == 1 && to_client)
				memcpy((char *)w->va + at, (char *)buf + done, n);
			else if (pass == 1)
				memcpy((char *)buf + done, (char *)w->va + at, n);
			done += n;
		}
	}
	return true;
}

static void *reply_new(const struct vfio_user_header *req, size_t payload, uint32_t err)
{
	struct vfio_user_header *h = calloc(1, HDR + payload);

	if (!h)
		return NULL;
	h->msg_id = req->msg_id;
	h->command = req->command;
	h->msg_size = (uint32_t)(HDR + payload);
	h->flags = VFIO_USER_F_TYPE_REPLY | (err ? VFIO_USER_F_ERROR : 0);
	h->error_no = err;
	return h;
}

/* Spec, "VFIO_USER_DMA_READ"/"VFIO_USER_DMA_WRITE". Returns 0 or the errno to answer with. */
static int serve_dma(const struct vu_dma_table *t, const struct vfio_user_header *h,
		     const uint8_t *p, size_t plen, void **reply, size_t *reply_len)
{
	bool write = h->command == VFIO_USER_DMA_WRITE;
	struct vfio_user_dma_access a;
	uint8_t *r;

	if (plen < sizeof(a))
		return EINVAL;
	memcpy(&a, p, sizeof(a));
	/* "The count field must not exceed the value of max_data_xfer_size of the peer." */
	if (a.count == 0 || a.count > VU_OUR_MAX_XFER ||
	    plen != sizeof(a) + (write ? a.count : 0)) {
		udrv_warn("the vfio-user server sent a malformed %s of %" PRIu64 " bytes; refused",
			  cmd_name(h->command), (uint64_t)a.count);
		return EINVAL;
	}
	if (a.addr > UINT64_MAX - a.count || !dma_copy(t, a.addr, NULL, a.count, false)) {
		udrv_warn("the vfio-user server asked to %s %" PRIu64 " bytes at IOVA 0x%" PRIx64
			  ", outside the memory mapped for it; refused",
			  write ? "write" : "read", (uint64_t)a.count, (uint64_t)a.addr);
		return EFAULT;
	}
	r = reply_new(h, sizeof(a) + (write ? 0 : a.count), 0);
	if (!r)
		return ENOMEM;
	memcpy(r + HDR, &a, sizeof(a));
	if (write)
		dma_copy(t, a.addr, (void *)(uintptr_t)(p + sizeof(a)), a.count, true);
	else
		dma_copy(t, a.addr, r + HDR + sizeof(a), a.count, false);
	*reply = r;
	*reply_len = HDR + sizeof(a) + (write ? 0 : a.count);
	return 0;
}

int vu_serve(const struct vu_dma_table *t, const void *msg, size_t len, void **reply,
	     size_t *reply_len)
{
	struct vfio_user_header h;
	int err = EOPNOTSUPP;

	*reply = NULL;
	*reply_len = 0;
	if (len < HDR)
		return -EPROTO;
	memcpy(&h, msg, HDR);
	if (h.msg_size != len || (h.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_COMMAND)
		return -EPROTO;
	if (h.command == VFIO_USER_DMA_READ && (h.flags & VFIO_USER_F_NO_REPLY))
		err = EINVAL; /* a read whose data is never sent back is pointless */
	else if (h.command == VFIO_USER_DMA_READ || h.command == VFIO_USER_DMA_WRITE)
		err = serve_dma(t, &h, (const uint8_t *)msg + HDR, len - HDR, reply, reply_len);
	else
		udrv_warn("the vfio-user server sent command %u (%s), which a client does not "
			  "serve; refused",
			  h.command, cmd_name(h.command));
	if (err == ENOMEM)
		return udrv_err(ENOMEM, "out of memory");
	if (h.flags & VFIO_USER_F_NO_REPLY) {
		free(*reply);
		*reply = NULL;
		*reply_len = 0;
		return 0;
	}
	if (err) {
		*reply = reply_new(&h, 0, (uint32_t)err);
		if (!*reply)
			return udrv_err(ENOMEM, "out of memory");
		*reply_len = HDR;
	}
	return 0;
}
