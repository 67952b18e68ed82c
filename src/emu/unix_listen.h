/* SPDX-License-Identifier: BSD-3-Clause */
/* Listening UNIX sockets for the emulators' servers (vfio-user, the NVMe control socket). */
#ifndef UDRV_EMU_UNIX_LISTEN_H
#define UDRV_EMU_UNIX_LISTEN_H

#include <sys/types.h>

/*
 * Listen on a UNIX stream socket at path (non-blocking, close-on-exec). A socket file nobody
 * listens on is left by a server that died: it is replaced. A live socket, or anything that
 * is not a socket, is someone else's. what names the socket in messages ("socket", "control
 * socket"). Returns the listening fd with *ino set to the socket file's inode, or a negative
 * errno with the reason in udrv_errmsg().
 */
int udrv_unix_listen(const char *path, const char *what, ino_t *ino);

/* Close fd, and remove path only if it is still the socket file of inode ino: a later server
 * may have replaced it. */
void udrv_unix_unlisten(int fd, const char *path, ino_t ino);

#endif
