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
 * Thread rules: every function may be called from any thread; the caches are
 * guarded by pf_packs.lock.
 */
#pragma once

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

/* Resolves VIEW (see above) to its store item (malloc'd, valid in the database).
 * -ENOENT for no such view, -EXDEV/-ELOOP for refused profile links. */
int pf_packs_resolve_view(pf_packs *p, const char *view, char **ret_item);

/* The plan of FORMAT for VIEW whose item is ITEM; *ret holds one reference.
 * Made once: concurrent callers for the same plan share the first one's work
 * (for compressed formats, its encoding). */
int pf_packs_plan(pf_packs *p, const char *view, const char *item, const pf_format *format, pf_plan **ret);
/* Writes FORMAT for VIEW to FD as it is made (formats with a stream function;
 * -EOPNOTSUPP otherwise). */
int pf_packs_stream(pf_packs *p, const char *view, const char *item, const pf_format *format, int fd);
