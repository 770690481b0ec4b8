/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Idle priority for work done ahead of use (the `prepare` option): a thread in
 * the background runs under SCHED_IDLE with the idle I/O class, so a reader's
 * own request always goes first. Threads it creates inherit both.
 *
 * A background encoding that a reader comes to wait for is raised back to
 * normal priority: its workers call pf_background_follow() before each unit
 * with the encoding's current flag.
 *
 * Per thread; best effort (a refused change is logged once at debug level).
 */
#pragma once

#include <stdbool.h>

/* Puts the calling thread in the background (true) or back to normal (false).
 * Cheap when nothing changes. */
void pf_background_set(bool background);
/* FLAG NULL: leaves the thread as it is; else pf_background_set(*FLAG). */
void pf_background_follow(const bool *flag);
