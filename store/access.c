/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <gcrypt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/access.h"
#include "packfs/digest.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/walkcache.h"

/* Bump when what a summary says, or its record, changes. */
#define ACCESS_ITEM_LAYOUT "packfs access item 1"
#define ACCESS_CLOSURE_LAYOUT "packfs access closure 1"

/*
 * What the members others may not read have in common. Merging is associative
 * and commutative, with the empty summary as its identity: entries merge into
 * an item's summary and items' into a closure's, in any order, which is what
 * lets both be recorded and reused.
 */
typedef struct summary {
        bool restricted;        /* some member others may not read */
        bool one_owner;         /* restricted: all owned by uid, who may read them */
        bool one_group;         /* restricted: all readable by group gid */
        uint32_t uid, gid;      /* 0 unless one_owner / one_group */
} summary;

static summary merge(summary a, summary b) {
        summary m = { .restricted = true };

        if (!b.restricted)
                return a;
        if (!a.restricted)
                return b;
        m.one_owner = a.one_owner && b.one_owner && a.uid == b.uid;
        m.uid = m.one_owner ? a.uid : 0;
        m.one_group = a.one_group && b.one_group && a.gid == b.gid;
        m.gid = m.one_group ? a.gid : 0;
        return m;
}

/* Whether the class whose read and search bits are R and X may read a member
 * of MODE: a file's bytes, or a directory's names and what it holds. */
static bool class_may_read(mode_t mode, mode_t r, mode_t x) {
        return (mode & r) && (!S_ISDIR(mode) || (mode & x));
}

static int add_entry(void *userdata, const pf_walk_entry *e) {
        summary *s = userdata;
        bool owner, group;

        /* A symlink's own bits are meaningless (0777 on Linux) and its target
         * is never followed: what guards it is the directory holding it. */
        if (S_ISLNK(e->mode) || class_may_read(e->mode, S_IROTH, S_IXOTH))
                return 0;
        owner = class_may_read(e->mode, S_IRUSR, S_IXUSR);
        group = class_may_read(e->mode, S_IRGRP, S_IXGRP);
        *s = merge(*s, (summary) { .restricted = true, .one_owner = owner, .uid = owner ? (uint32_t) e->uid : 0,
                                   .one_group = group, .gid = group ? (uint32_t) e->gid : 0 });
        return 0;
}

static pf_access access_of(summary s) {
        if (!s.restricted)
                return (pf_access) { .open = true, .mode = 0444 };
        return (pf_access) { .mode = 0400 | (s.one_group ? 0040 : 0), .uid = s.one_owner ? s.uid : 0,
                             .gid = s.one_group ? s.gid : 0 };
}

/* --- Records: u8 flags, 3 zero bytes, u32 uid, u32 gid (little-endian), then
 * the SHA-256 of the key and those 12 bytes. */

enum { HAS_RESTRICTED = 1, HAS_ONE_OWNER = 2, HAS_ONE_GROUP = 4 };
#define PAYLOAD 12
#define RECORD_SIZE (PAYLOAD + 32)

void pf_access_item_record_key(const pf_closure_item *item, uint8_t key[32]) {
        gcry_md_hd_t md;

        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                abort();
        gcry_md_write(md, ACCESS_ITEM_LAYOUT, sizeof(ACCESS_ITEM_LAYOUT));
        gcry_md_write(md, item->path, strlen(item->path) + 1);
        gcry_md_write(md, item->nar_hash, strlen(item->nar_hash) + 1);
        memcpy(key, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
}

void pf_access_closure_record_key(const pf_closure *closure, uint8_t key[32]) {
        pf_sha256_pair(ACCESS_CLOSURE_LAYOUT, sizeof(ACCESS_CLOSURE_LAYOUT), closure->id, 32, key);
}

static void put_u32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* Best effort: without the record, the summary (of WHAT) is computed again next
 * time. */
static void record_put(pf_cache *cache, const uint8_t key[32], const char *what, summary s) {
        uint8_t data[RECORD_SIZE] = { (s.restricted ? HAS_RESTRICTED : 0) | (s.one_owner ? HAS_ONE_OWNER : 0) |
                                      (s.one_group ? HAS_ONE_GROUP : 0) };

        put_u32(data + 4, s.uid);
        put_u32(data + 8, s.gid);
        pf_sha256_pair(key, 32, data, PAYLOAD, data + PAYLOAD);
        if (pf_cache_record_put(cache, key, data, sizeof(data)) < 0)
                log_debug("cache: cannot record who may read the packs of %s", what);
}

/* 1 and *RET from KEY's record; 0 without one (a damaged one, about WHAT, is
 * dropped and logged). */
static int record_get(pf_cache *cache, const uint8_t key[32], const char *what, summary *ret) {
        _cleanup_free_ uint8_t *data = NULL;
        uint8_t check[32];
        size_t size = 0;
        int r;

        r = pf_cache_record_get(cache, key, (void **) &data, &size);
        if (r < 0) {
                if (r != -ENOENT)
                        log_debug("cache: cannot look up who may read the packs of %s: %s", what, strerror(-r));
                return 0;
        }
        if (size == RECORD_SIZE)
                pf_sha256_pair(key, 32, data, PAYLOAD, check);
        if (size != RECORD_SIZE || memcmp(check, data + PAYLOAD, 32) != 0 || (data[0] & ~7) || data[1] || data[2] ||
            data[3]) {
                log_warning("cache: who may read the packs of %s: the record is damaged; computing it again", what);
                (void) pf_cache_record_drop(cache, key);
                return 0;
        }
        *ret = (summary) { .restricted = data[0] & HAS_RESTRICTED, .one_owner = data[0] & HAS_ONE_OWNER,
                           .one_group = data[0] & HAS_ONE_GROUP, .uid = get_u32(data + 4), .gid = get_u32(data + 8) };
        return 1;
}

/* Merges into *TOTAL the summaries of the N items that have no record, from
 * their member lists (replayed or walked), recording each one. */
static int summarize_items(pf_cache *cache, const pf_closure_item *items, size_t n, const pf_closure *closure,
                           summary *total) {
        pf_walk_batch *batch = NULL;
        size_t n_walked = 0;
        int r;

        r = pf_walk_batch_new(cache, items, n, &batch);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                summary s = {};
                bool walked = false;
                uint8_t key[32];

                r = pf_walk_batch_item(batch, i, add_entry, &s, &walked);
                if (r < 0)
                        break;
                n_walked += walked;
                if (cache && pf_closure_item_keyed(&items[i])) {
                        pf_access_item_record_key(&items[i], key);
                        record_put(cache, key, items[i].path, s);
                }
                *total = merge(*total, s);
        }
        pf_walk_batch_free(batch);
        if (r < 0)
                return r;
        if (n_walked > 0)
                log_info("%s: walked %zu of %zu store items to tell who may read its packs", closure->root, n_walked,
                         closure->n_items);
        return 0;
}

int pf_access_closure(pf_cache *cache, const pf_closure *closure, pf_access *ret) {
        _cleanup_free_ pf_closure_item *missing = NULL;
        summary total = {};
        size_t n_missing = 0;
        bool all_keyed = true;
        uint8_t key[32];
        int r;

        if (cache) {
                pf_access_closure_record_key(closure, key);
                if (record_get(cache, key, closure->root, &total) > 0) {
                        *ret = access_of(total);
                        return 0;
                }
        }
        missing = malloc(MAX(closure->n_items, (size_t) 1) * sizeof(*missing));
        if (!missing)
                return -ENOMEM;
        for (size_t i = 0; i < closure->n_items; i++) {
                const pf_closure_item *item = &closure->items[i];
                summary s;

                all_keyed = all_keyed && pf_closure_item_keyed(item);
                if (cache && pf_closure_item_keyed(item)) {
                        uint8_t item_key[32];
                        pf_access_item_record_key(item, item_key);
                        if (record_get(cache, item_key, item->path, &s) > 0) {
                                total = merge(total, s);
                                continue;
                        }
                }
                missing[n_missing++] = *item;
        }
        r = summarize_items(cache, missing, n_missing, closure, &total);
        if (r < 0)
                return r;
        /* An item without a NAR hash is not pinned by the closure's id. */
        if (cache && all_keyed)
                record_put(cache, key, closure->root, total);
        *ret = access_of(total);
        return 0;
}
