/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Who may read a closure's packs (SPEC guarantee 6, "Only who should"). A pack
 * holds the bytes of every file of its closure and the names in every
 * directory, so it is readable only by those who could read all of them from
 * the store. The mount reports the result as each pack's mode, owner and group;
 * with `-o allow_other` it adds default_permissions, so the kernel enforces it.
 *
 * Conservative, from the members' mode bits, owners and groups (no ACLs):
 *   - others may read a member that is a regular file with o+r, or a directory
 *     with o+rx (listing and entering it); symlinks do not count, the
 *     directories holding them do;
 *   - when others may read every member, the packs are open: mode 0444 (the
 *     mount makes them its own user's, as ever);
 *   - else mode 0400, owned by the one owner of the members others may not read
 *     when they share one who may read them all (u+r, directories u+rx), else by
 *     root; plus 0040 when those members are all readable by their group (g+r,
 *     g+rx) and share one, which becomes the packs' group (else gid 0).
 *
 * Store items are immutable and named by path and NAR hash, so an item's summary
 * never changes, nor does a closure's (named by its id). Both are kept in the
 * cache as small records checked by a SHA-256 (a damaged one is dropped, logged
 * and computed again): a closure seen before costs one record lookup, and a new
 * generation looks up its items' summaries and computes only the missing ones,
 * from their member lists (walkcache.h: replayed when recorded, else walked in
 * parallel). As with member lists, a chmod or chown in the store behind its
 * database's back is not seen once recorded.
 *
 * Thread rules: reentrant; CACHE is shared as cache.h allows.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "packfs/cache.h"
#include "packfs/store.h"

typedef struct pf_access {
        bool open;      /* others may read every member: 0444, the mount's own owner */
        mode_t mode;    /* permission bits: 0444, 0440 or 0400 (never 0) */
        uid_t uid;      /* not open: the packs' owner and group */
        gid_t gid;
} pf_access;

/* Who may read the packs of CLOSURE. CACHE may be NULL: everything is walked
 * and nothing recorded. Returns 0, or a walk's negative errno (the walk logged
 * the file); *RET is written on success only. */
int pf_access_closure(pf_cache *cache, const pf_closure *closure, pf_access *ret);

/* Exposed for tests: the keys of an item's and a closure's records. */
void pf_access_item_record_key(const pf_closure_item *item, uint8_t key[32]);
void pf_access_closure_record_key(const pf_closure *closure, uint8_t key[32]);
