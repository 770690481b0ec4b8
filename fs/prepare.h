/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The `prepare` option of a running mount: the files it names are encoded into
 * the cache ahead of use, for every profile whose options name them, when the
 * mount starts and whenever a profile link changes (inotify on the profiles
 * root and every directory below it). Generation links ("demo-3-link") are
 * left alone: they never change, and the profile they belong to ("demo") is
 * what gets prepared.
 *
 * One thread does the work, one file at a time. Its encoders run at idle CPU
 * and I/O priority and pause while readers are served (background.h): a
 * reader's own request goes first, and a reader who comes to wait for a file
 * being prepared raises its encoding to normal priority. (The thread itself
 * plans at normal priority: planning is a walk of what changed, short, and a
 * reader may come to wait for it.) A new
 * generation costs what changed (cached units are reused). The queue shows in
 * `packfs status` (queued jobs in the cache index) and each file's encoding as
 * any other.
 */
#pragma once

#include "packs.h"

typedef struct pf_prepare pf_prepare;

/* Starts preparing for PACKS (which must outlive it). *ret is NULL when no
 * option anywhere asks for preparation, or there are no profiles. */
int pf_prepare_start(pf_packs *packs, pf_prepare **ret);
/* Stops the thread (cancelling an encoding under way: cancel.h) and frees PR. */
void pf_prepare_stop(pf_prepare *pr);
