/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * What the disk formats (disk.c) share with their tests and with
 * `packfs run-vm`: finding and running host tools, and debugfs's quoting.
 */
#pragma once

#include <stddef.h>
#include <stdio.h>

/* NAME's absolute path in OUT: on PATH, or in the sbin directories a non-root
 * PATH lacks. -ENOENT if it is nowhere. */
int pf_disk_find_tool(const char *name, char *out, size_t size);

/* Runs ARGV (ARGV[0] an absolute path) with INPUT on stdin, ENV added to the
 * environment, stdout to OUTPUT_FD and stderr to ERRORS_FD (-1: /dev/null),
 * KEEP_FD (or -1) left open across exec; killed on cancellation (cancel.h).
 * TICK (may be NULL) is called a few times a second while it runs. 0 if it
 * exits 0, -EIO if not, -ECANCELED. */
int pf_disk_run_tool(char *const argv[], const char *input, char *const env[], int output_fd, int errors_fd,
                     int keep_fd, void (*tick)(void *userdata), void *userdata);

/* Writes S as one word of a debugfs command: in double quotes, "" for '"'. */
void pf_disk_put_quoted(FILE *f, const char *s);
