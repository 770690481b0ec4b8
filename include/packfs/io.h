/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Small I/O helpers shared by the modules. */
#pragma once

#include <stddef.h>

/* Writes all LEN bytes of BUF to FD, retrying short writes and EINTR.
 * 0 or a negative errno. */
int pf_write_all(int fd, const void *buf, size_t len);
