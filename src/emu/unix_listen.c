/* SPDX-License-Identifier: BSD-3-Clause */
/* Listening UNIX sockets that replace a dead server's socket file: see unix_listen.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "emu/unix_listen.h"

static int bind_to(int fd, const struct sockaddr_un *a)
{
	return bind(fd, (const struct sockaddr *)a, sizeof(*a)) == 0 ? 0 : -errno;
}

/* path is in use: 0 if it is a socket file nobody listens on (removed), else the error. */
static int take_over(const struct sockaddr_un *a, const char *path, const char *what)
{
	struct stat st;
	int probe, perr = 0;

	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return udrv_err(
		    EEXIST, "%s exists and is not a socket: remove it or choose another %s path",
		    path, what);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return udrv_err(errno, "cannot create a UNIX socket: %s", strerror(errno));
	if (connect(probe, (const struct sockaddr *)a, sizeof(*a)) < 0)
		perr = errno;
	close(probe);
	/* Only a refused connection means nobody listens; a full backlog (EAGAIN) is a live one. */
	if (perr == 0 || perr == EAGAIN)
		return udrv_err(
		    EADDRINUSE,
		    "another server is listening on %s: stop it or choose another %s path", path,
		    what);
	if (perr != ECONNREFUSED)
		return udrv_err(perr, "cannot bind %s: it exists, and connecting to it failed: %s",
				path, strerror(perr));
	udrv_info("removing stale %s %s", what, path);
	unlink(path);
	return 0;
}

int udrv_unix_listen(const char *path, const char *what, ino_t *ino)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	struct stat st;
	int fd, rc;

	if (len >= sizeof(a.sun_path))
		return udrv_err(ENAMETOOLONG,
				"%s path %s is longer than %zu bytes: use a shorter one", what,
				path, sizeof(a.sun_path) - 1);
	memcpy(a.sun_path, path, len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return udrv_err(errno, "cannot create a UNIX socket: %s", strerror(errno));
	rc = bind_to(fd, &a);
	if (rc == -EADDRINUSE) {
		rc = take_over(&a, path, what);
		if (rc < 0) {
			close(fd);
			return rc;
		}
		rc = bind_to(fd, &a);
	}
	if (rc < 0) {
		close(fd);
		return udrv_err(-rc, "cannot bind the %s %s: %s", what, path, strerror(-rc));
	}
	if (lstat(path, &st) < 0 || listen(fd, 4) < 0) {
		rc = errno;
		close(fd);
		unlink(path);
		return udrv_err(rc, "cannot listen on the %s %s: %s", what, path, strerror(rc));
	}
	*ino = st.st_ino;
	return fd;
}

void udrv_unix_unlisten(int fd, const char *path, ino_t ino)
{
	struct stat st;

	if (fd < 0)
		return;
	close(fd);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == ino)
		unlink(path);
}
