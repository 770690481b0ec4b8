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
 * Replay calls FN with the same entries, in the same order, as pf_walk(). Only a
 * walk that completed (FN never failed) is recorded.
 */
#pragma once

#include <stdbool.h>

#include "packfs/cache.h"
#include "packfs/walk.h"

/* Walks ITEM_PATH, or replays its record. CACHE NULL, or NAR_HASH NULL or empty,
 * is a plain pf_walk(). *RET_REPLAYED (if not NULL) tells which happened. */
int pf_walk_cached(pf_cache *cache, const char *item_path, const char *nar_hash, pf_walk_fn fn, void *userdata,
                   bool *ret_replayed);

/* Exposed for tests: the record's key. */
void pf_walk_record_key(const char *item_path, const char *nar_hash, uint8_t key[32]);
