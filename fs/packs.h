/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Views and their plans, shared by the mount and `packfs build`.
 *
 * A view is named as in the mount: a profile link's path under the profiles root
 * ("demo", "per-user/alice/guix-profile") or ".store/<hash>-<name>". Resolving a
 * view gives its store item now; planning a format for an item gives a plan that
 * is cached by (format, closure identity, options identity), so a second stat or
 * open of the same pack does not walk the store again.
 *
 * Waiting: files whose size is only known once encoded (compressed packs) are
 * encoded on the first plan, once, whoever else comes to wait for it. A caller
 * passing a waiter has the plan made by a planner thread and can be
 * interrupted (pf_packs_interrupt(): -EINTR) while the planning goes on and
 * lands in the cache. pf_packs_free() cancels planner threads (cancel.h) and
 * waits for them.
 *
 * Thread rules: every function may be called from any thread; the caches and
 * waiters are guarded by pf_packs.lock.
 */
#pragma once

#include "packfs/access.h"
#include "packfs/cache.h"
#include "packfs/config.h"
#include "packfs/format.h"
#include "packfs/plan.h"
#include "packfs/store.h"

#define PF_STORE_VIEW_DIR ".store"

typedef struct pf_packs pf_packs;

/* Takes ownership of STORE, CONFIG and CACHE (NULL: nothing is cached).
 * PROFILES_ROOT may be NULL (no profiles). */
int pf_packs_new(pf_store *store, pf_config *config, pf_cache *cache, const char *profiles_root, pf_packs **ret);
void pf_packs_free(pf_packs *p);

pf_store *pf_packs_store(pf_packs *p);
pf_cache *pf_packs_cache(pf_packs *p);
const char *pf_packs_profiles_root(pf_packs *p);
const pf_config *pf_packs_config(pf_packs *p);
/* The options of VIEW (pf_options_done() them): a profile's own, or the
 * defaults for .store views. */
int pf_packs_options(pf_packs *p, const char *view, pf_options *ret);

/* Resolves VIEW (see above) to its store item (malloc'd, valid in the database).
 * -ENOENT for no such view, -EXDEV/-ELOOP for refused profile links. */
int pf_packs_resolve_view(pf_packs *p, const char *view, char **ret_item);

/* A caller's wait for a plan; zero-initialise it. */
typedef struct pf_packs_waiter {
        bool interrupted;       /* guarded by pf_packs.lock */
        /* Optional: polled twice a second while waiting; true ends the wait
         * with -EINTR (the mount is going away: its FUSE session ended). */
        bool (*gone)(void *userdata);
        void *userdata;
} pf_packs_waiter;

/* The plan of FORMAT for VIEW whose item is ITEM; *ret holds one reference.
 * Made once: concurrent callers for the same plan share the first one's work
 * (for compressed formats, its encoding). WAITER may be NULL (the caller then
 * plans itself and cannot be interrupted). */
int pf_packs_plan(pf_packs *p, const char *view, const char *item, const pf_format *format,
                  pf_packs_waiter *waiter, pf_plan **ret);
/* The exact size of FORMAT for VIEW whose item is ITEM, as pf_packs_plan()'s
 * plan would have, waited for in the same way. Formats planned from metadata
 * with segments (pf_format.plan_sparse) answer from a sizing plan when there
 * is a cache: each item a placeholder of its recorded length, so a pack whose
 * items were planned before costs a record lookup per item, not their member
 * lists. */
int pf_packs_size(pf_packs *p, const char *view, const char *item, const pf_format *format,
                  pf_packs_waiter *waiter, uint64_t *ret);
/* Ends WAITER's wait in pf_packs_plan() or pf_packs_size() with -EINTR, now or as soon as it
 * waits. Any thread (FUSE calls it from the thread reading the INTERRUPT). */
void pf_packs_interrupt(pf_packs *p, pf_packs_waiter *waiter);
/* Plans (encodes) FORMAT for VIEW ahead of use, in the calling thread: its
 * encoders work in the background (background.h: idle priority, pausing for
 * readers) until a reader comes to wait for the same plan. 0 or a negative
 * errno. */
int pf_packs_plan_ahead(pf_packs *p, const char *view, const char *item, const pf_format *format);
/* 1 if a stat of FORMAT in VIEW answers now without encoding (formats planned
 * from metadata always do), 0 if it would encode, or a negative errno. Starts
 * nothing. */
int pf_packs_ready(pf_packs *p, const char *view, const char *item, const pf_format *format);
/* Writes FORMAT for VIEW to FD as it is made (formats with a stream function;
 * -EOPNOTSUPP otherwise). */
int pf_packs_stream(pf_packs *p, const char *view, const char *item, const pf_format *format, int fd);
/* Who may read the packs of VIEW whose item is ITEM (access.h): kept with the
 * closure in memory, else the cache's record, else computed from the store
 * (and recorded). Never plans a pack, so a cached pack's stat stays cheap. */
int pf_packs_access(pf_packs *p, const char *view, const char *item, pf_access *ret);
