/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Work a running mount does ahead of its readers, for every profile, when the
 * mount starts and whenever a profile link changes (inotify on the profiles
 * root and every directory below it). Generation links ("demo-3-link") are
 * left alone: they never change, and the profile they belong to ("demo") is
 * what gets done.
 *
 *   - A survey of each profile: the sizes of the files planned from metadata
 *     (pack.tar) and who may read its packs, computed and recorded as a
 *     listing would, so the first `ls -l` of a fresh mount finds them (one
 *     that comes during the survey waits for the same walk, never a second).
 *     Surveys go first: they cost a walk of what changed.
 *   - The `prepare` option: the files it names are encoded into the cache
 *     ahead of use, for every profile whose options name them.
 *
 * One thread does the work, one task at a time. Its encoders run at idle CPU
 * and I/O priority and pause while readers are served (background.h): a
 * reader's own request goes first, and a reader who comes to wait for a file
 * being prepared raises its encoding to normal priority. (The thread itself
 * plans and surveys at normal priority: that is a walk of what changed,
 * short, and a reader may come to wait for it.) A new generation costs what
 * changed (cached units are reused). The queue of encodings shows in `packfs
 * status` (queued jobs in the cache index) and each encoding as any other.
 */
#pragma once

#include "packs.h"

typedef struct pf_prepare pf_prepare;

/* Starts the work for PACKS (which must outlive it). *ret is NULL when there
 * are no profiles or no cache. */
int pf_prepare_start(pf_packs *packs, pf_prepare **ret);
/* Stops the thread (cancelling an encoding under way: cancel.h) and frees PR. */
void pf_prepare_stop(pf_prepare *pr);
