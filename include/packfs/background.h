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
 * Idle priority alone still lets background work take the cores a reader
 * leaves free between its requests, and share caches and memory bandwidth with
 * it. So background encoders also pause while readers are active: the mount
 * notes each reader's request (pf_background_note_foreground()), and a
 * background encoder waits until none came for a short while before it feeds
 * its compressor more input (pf_background_wait_quiet()).
 *
 * Per thread; best effort (a refused change is logged at debug level).
 */
#pragma once

#include <stdbool.h>

/* Puts the calling thread in the background (true) or back to normal (false).
 * Cheap when nothing changes. */
void pf_background_set(bool background);
/* FLAG NULL: leaves the thread as it is; else pf_background_set(*FLAG). */
void pf_background_follow(const bool *flag);
/* Whether the calling thread is in the background. */
bool pf_background_current(void);

/* A reader's request was served now (cheap: one clock read, one store). */
void pf_background_note_foreground(void);
/* Returns once no reader's request came for PF_BACKGROUND_QUIET_MS, or at once
 * if cancellation was requested (cancel.h). */
#define PF_BACKGROUND_QUIET_MS 50
void pf_background_wait_quiet(void);
