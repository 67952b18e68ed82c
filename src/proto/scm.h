/* SPDX-License-Identifier: BSD-3-Clause */
/* File descriptors passed over a UNIX socket (unix(7), SCM_RIGHTS), for both vfio-user sides. */
#ifndef UDRV_PROTO_SCM_H
#define UDRV_PROTO_SCM_H

#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

/*
 * Attach fds[0..nfds) to mh as one SCM_RIGHTS control message stored in buf, which must be
 * aligned for struct cmsghdr and hold CMSG_SPACE(nfds * sizeof(int)) bytes. nfds > 0.
 */
static inline void scm_put_fds(struct msghdr *mh, void *buf, const int *fds, size_t nfds)
{
	struct cmsghdr *cm;

	memset(buf, 0, CMSG_SPACE(nfds * sizeof(int)));
	mh->msg_control = buf;
	mh->msg_controllen = CMSG_SPACE(nfds * sizeof(int));
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
}

#endif
