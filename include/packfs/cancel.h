/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Process-wide cancellation of encodings: `packfs build` and `packfs warm` on
 * SIGINT/SIGTERM, and a mount at unmount. Encoders poll it between input
 * chunks and fail with -ECANCELED; their writers are aborted, so an
 * interrupted encoding leaves no partial object in the cache.
 *
 * pf_cancel_request() is async-signal-safe: a signal handler may call it.
 *
 * One request's cancellation, per thread: a mount's read of a pack may have
 * to wait for work done before its bytes exist (pack.rpm's digests), and its
 * caller may give up meanwhile (Ctrl-C; FUSE's INTERRUPT). The mount says how
 * to ask about the request its thread serves; a format that waits asks with
 * pf_request_interrupted() and returns -EINTR, while the work goes on for the
 * next reader.
 */
#pragma once

#include <stdbool.h>

void pf_cancel_request(void);
bool pf_cancel_requested(void);
/* Installs a handler for SIGINT and SIGTERM that requests cancellation (without
 * SA_RESTART, so a blocked write returns) and remembers the signal. */
int pf_cancel_on_signals(void);
/* The signal that requested cancellation, or 0. */
int pf_cancel_signal(void);

/* Sets (INTERRUPTED non-NULL) or clears the calling thread's check of its
 * current request. */
void pf_request_set_check(bool (*interrupted)(void *userdata), void *userdata);
/* Whether the calling thread's current request was interrupted, or the
 * process's cancellation requested; false without a check set. */
bool pf_request_interrupted(void);
