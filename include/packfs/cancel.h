/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Process-wide cancellation of encodings: `packfs build` and `packfs warm` on
 * SIGINT/SIGTERM, and a mount at unmount. Encoders poll it between input
 * chunks and fail with -ECANCELED; their writers are aborted, so an
 * interrupted encoding leaves no partial object in the cache.
 *
 * pf_cancel_request() is async-signal-safe: a signal handler may call it.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>

void pf_cancel_request(void);
bool pf_cancel_requested(void);
/* -ECANCELED once cancellation was requested, else 0: an encoder's check
 * between chunks. */
static inline int pf_cancel_check(void) {
        return pf_cancel_requested() ? -ECANCELED : 0;
}
/* Installs a handler for SIGINT and SIGTERM that requests cancellation (without
 * SA_RESTART, so a blocked write returns) and remembers the signal. */
int pf_cancel_on_signals(void);
/* The signal that requested cancellation, or 0. */
int pf_cancel_signal(void);
