/* SPDX-License-Identifier: BSD-3-Clause */
/* The udrv command: each subcommand is `int cmd_x(int argc, char **argv)` with argv[0] its name,
 * returning the process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef UDRV_CLI_H
#define UDRV_CLI_H

int cmd_list(int argc, char **argv);
int cmd_bind(int argc, char **argv);
int cmd_unbind(int argc, char **argv);
int cmd_emu(int argc, char **argv);

/* Print "udrv: <what>: <udrv_errmsg() or strerror(-err)>" to stderr; returns 1. */
int cli_fail(const char *what, int err);

#endif
