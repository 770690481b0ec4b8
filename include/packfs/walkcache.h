/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A store item's walk (walk.h), recorded in the cache the first time the item is
 * walked and replayed from there afterwards, so planning a pack whose items were
 * planned before (an earlier generation of the profile, another profile, or the
 * same profile on an earlier mount) reads no directory of theirs: a new
 * generation costs a walk of what changed only.
 *
 * Sound because store items are immutable and named by their path and NAR hash,
 * which key the record. Plans still check each store file's size and mtime when
 * it is read, so a store changed behind its database's back gives EIO (as with a
 * fresh walk that went stale), never other bytes. A record carries a SHA-256 of
 * its contents; a damaged one is dropped, logged and the item walked again.
 *
 * Replay calls FN with the same entries, in the same order, as pf_walk(). An
 * item is always walked whole into a record first and then replayed, so FN's
 * errors stop the replay, not the recording; a walk that fails records nothing.
 */
#pragma once

#include <stdbool.h>

#include "packfs/cache.h"
#include "packfs/store.h"
#include "packfs/walk.h"

/* The items of a plan, in order: their records are fetched at once, and the
 * items that have none (the ones that changed since the last plan, or all of
 * them the first time) are walked by worker threads, one per core, while the
 * caller replays the others. CACHE may be NULL (every item is walked, nothing
 * is recorded); items without a NAR hash are walked and not recorded. A batch
 * belongs to one thread, which takes its items in order. */
typedef struct pf_walk_batch pf_walk_batch;

int pf_walk_batch_new(pf_cache *cache, const pf_closure_item *items, size_t n, pf_walk_batch **ret);
/* Replays item I's entries to FN (waiting for its walk if need be); *RET_WALKED
 * tells whether it had to be walked. Returns the walk's or FN's error. */
int pf_walk_batch_item(pf_walk_batch *b, size_t i, pf_walk_fn fn, void *userdata, bool *ret_walked);
/* Stops the walkers (after their current item) and frees everything. */
void pf_walk_batch_free(pf_walk_batch *b);

/* One item: walks ITEM_PATH, or replays its record. CACHE NULL, or NAR_HASH NULL
 * or empty, is a plain pf_walk(). *RET_REPLAYED (if not NULL) tells which. */
int pf_walk_cached(pf_cache *cache, const char *item_path, const char *nar_hash, pf_walk_fn fn, void *userdata,
                   bool *ret_replayed);

/* Exposed for tests: the record's key. */
void pf_walk_record_key(const char *item_path, const char *nar_hash, uint8_t key[32]);
