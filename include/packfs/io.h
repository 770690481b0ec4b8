/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Small I/O and system helpers shared by the modules. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Writes all LEN bytes of BUF to FD, retrying short writes and EINTR (unless
 * cancellation was requested: -ECANCELED, cancel.h). 0 or a negative errno. */
int pf_write_all(int fd, const void *buf, size_t len);

/* Seconds from START (CLOCK_MONOTONIC) to now. */
struct timespec;
double pf_seconds_since(const struct timespec *start);

/* The cores this process may run on (its affinity mask), at least 1. */
unsigned pf_cpu_count(void);

/* Waits for the child PID to exit, polling so that cancellation (cancel.h) and
 * TIMEOUT_S (0: none) are noticed: its wait status, or -ECANCELED or
 * -ETIMEDOUT once it has been killed (SIGKILL) and reaped. */
int pf_wait_child(pid_t pid, unsigned timeout_s);
/* The same, calling TICK(USERDATA) (if not NULL) at each poll, a few times a
 * second: for progress reports while the child works. */
int pf_wait_child_ticking(pid_t pid, unsigned timeout_s, void (*tick)(void *userdata), void *userdata);
