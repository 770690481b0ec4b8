/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <gcrypt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/walkcache.h"

/* Bump when the record's layout or the walk's order or fields change. */
#define WALK_RECORD_LAYOUT "packfs walk 1"
#define WALK_RECORD_MAGIC "PFWALK1\n"
#define NO_LINK UINT32_MAX

/*
 * A record: the magic, then per entry
 *   u32 mode, u32 depth, u64 size, i64 mtime, u32 rel_len, u32 link_len (NO_LINK:
 *   none), rel_len bytes of rel_path, link_len bytes of link target
 * (little-endian), then u64 entry count and the SHA-256 of all that.
 */
#define ENTRY_FIXED 32
#define TRAILER (8 + 32)

void pf_walk_record_key(const char *item_path, const char *nar_hash, uint8_t key[32]) {
        gcry_md_hd_t md;

        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                abort();
        gcry_md_write(md, WALK_RECORD_LAYOUT, sizeof(WALK_RECORD_LAYOUT));
        gcry_md_write(md, item_path, strlen(item_path) + 1);
        gcry_md_write(md, nar_hash, strlen(nar_hash) + 1);
        memcpy(key, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
}

static void put_le(uint8_t *p, uint64_t v, int bytes) {
        for (int i = 0; i < bytes; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes) {
        uint64_t v = 0;
        for (int i = 0; i < bytes; i++)
                v |= (uint64_t) p[i] << (8 * i);
        return v;
}

typedef struct recorder {
        uint8_t *data;
        size_t size, allocated;
        uint64_t n_entries;
        pf_walk_fn fn;
        void *userdata;
} recorder;

static uint8_t *recorder_grow(recorder *rec, size_t more) {
        if (rec->size + more > rec->allocated) {
                size_t na = MAX(rec->allocated * 2, rec->size + more + 4096);
                uint8_t *v = realloc(rec->data, na);
                if (!v)
                        return NULL;
                rec->data = v;
                rec->allocated = na;
        }
        rec->size += more;
        return rec->data + rec->size - more;
}

static int record_entry(void *userdata, const pf_walk_entry *e) {
        recorder *rec = userdata;
        size_t rel_len = strlen(e->rel_path), link_len = e->link_target ? strlen(e->link_target) : 0;
        int r;

        r = rec->fn(rec->userdata, e);
        if (r < 0 || !rec->data)
                return r; /* a failed allocation only stops the recording */
        uint8_t *p = recorder_grow(rec, ENTRY_FIXED + rel_len + link_len);
        if (!p) {
                free(rec->data);
                rec->data = NULL;
                return 0;
        }
        put_le(p, (uint32_t) e->mode, 4);
        put_le(p + 4, e->depth, 4);
        put_le(p + 8, e->size, 8);
        put_le(p + 16, (uint64_t) e->mtime, 8);
        put_le(p + 24, rel_len, 4);
        put_le(p + 28, e->link_target ? link_len : NO_LINK, 4);
        memcpy(p + ENTRY_FIXED, e->rel_path, rel_len);
        memcpy(p + ENTRY_FIXED + rel_len, e->link_target ? e->link_target : "", link_len);
        rec->n_entries++;
        return 0;
}

static void record_seal(recorder *rec) {
        uint8_t *p = recorder_grow(rec, TRAILER);

        if (!p) {
                free(rec->data);
                rec->data = NULL;
                return;
        }
        put_le(p, rec->n_entries, 8);
        gcry_md_hash_buffer(GCRY_MD_SHA256, p + 8, rec->data, rec->size - 32);
}

/* Replays a record whose digest checked out; -EBADMSG if its structure does not
 * (a record of another layout under a colliding key, or a bug), before calling
 * FN at all when possible. */
static int replay(const char *item_path, const uint8_t *data, size_t size, pf_walk_fn fn, void *userdata) {
        size_t prefix_len = strlen(item_path), pos = sizeof(WALK_RECORD_MAGIC) - 1, end = size - TRAILER;
        uint64_t n = get_le(data + end, 8);
        char path[PATH_MAX], link[PATH_MAX];
        int r;

        if (prefix_len + 1 >= sizeof(path))
                return -ENAMETOOLONG;
        memcpy(path, item_path, prefix_len + 1);
        for (uint64_t i = 0; i < n; i++) {
                if (end - pos < ENTRY_FIXED)
                        return -EBADMSG;
                const uint8_t *p = data + pos;
                uint32_t rel_len = (uint32_t) get_le(p + 24, 4), link_len = (uint32_t) get_le(p + 28, 4);
                size_t link_bytes = link_len == NO_LINK ? 0 : link_len;
                pf_walk_entry e = {
                        .mode = (mode_t) get_le(p, 4),
                        .depth = (unsigned) get_le(p + 4, 4),
                        .size = get_le(p + 8, 8),
                        .mtime = (int64_t) get_le(p + 16, 8),
                        .path = path,
                };

                if (rel_len >= sizeof(path) - prefix_len - 1 || link_bytes >= sizeof(link) ||
                    end - pos - ENTRY_FIXED < (size_t) rel_len + link_bytes || (i == 0) != (rel_len == 0))
                        return -EBADMSG;
                if (rel_len > 0) {
                        path[prefix_len] = '/';
                        memcpy(path + prefix_len + 1, p + ENTRY_FIXED, rel_len);
                        path[prefix_len + 1 + rel_len] = 0;
                        e.rel_path = path + prefix_len + 1;
                } else
                        e.rel_path = path + prefix_len;
                if (link_len != NO_LINK) {
                        memcpy(link, p + ENTRY_FIXED + rel_len, link_bytes);
                        link[link_bytes] = 0;
                        e.link_target = link;
                }
                pos += ENTRY_FIXED + rel_len + link_bytes;
                r = fn(userdata, &e);
                if (r < 0)
                        return r;
                path[prefix_len] = 0;
        }
        return pos == end ? 0 : -EBADMSG;
}

static bool record_intact(const uint8_t *data, size_t size) {
        uint8_t digest[32];

        if (size < sizeof(WALK_RECORD_MAGIC) - 1 + TRAILER ||
            memcmp(data, WALK_RECORD_MAGIC, sizeof(WALK_RECORD_MAGIC) - 1) != 0)
                return false;
        gcry_md_hash_buffer(GCRY_MD_SHA256, digest, data, size - 32);
        return memcmp(digest, data + size - 32, 32) == 0;
}

int pf_walk_cached(pf_cache *cache, const char *item_path, const char *nar_hash, pf_walk_fn fn, void *userdata,
                   bool *ret_replayed) {
        recorder rec = { .fn = fn, .userdata = userdata };
        _cleanup_free_ void *data = NULL;
        uint8_t key[32];
        size_t size;
        int r;

        if (ret_replayed)
                *ret_replayed = false;
        if (!cache || !nar_hash || !*nar_hash)
                return pf_walk(item_path, fn, userdata);

        pf_walk_record_key(item_path, nar_hash, key);
        r = pf_cache_record_get(cache, key, &data, &size);
        if (r >= 0) {
                if (record_intact(data, size)) {
                        if (ret_replayed)
                                *ret_replayed = true;
                        /* A malformed record with a good digest was written so
                         * (a bug, not damage), and part of it may have reached FN
                         * already: fail rather than walk on top of it. */
                        r = replay(item_path, data, size, fn, userdata);
                        if (r == -EBADMSG)
                                log_error("cache: the member list of %s is malformed", item_path);
                        return r;
                }
                log_warning("cache: the member list of %s is damaged; walking the item again", item_path);
                pf_cache_record_drop(cache, key);
        } else if (r != -ENOENT)
                log_debug("cache: cannot look up the member list of %s: %s", item_path, strerror(-r));

        rec.data = malloc(4096);
        if (rec.data) {
                memcpy(rec.data, WALK_RECORD_MAGIC, sizeof(WALK_RECORD_MAGIC) - 1);
                rec.size = sizeof(WALK_RECORD_MAGIC) - 1;
                rec.allocated = 4096;
        }
        r = pf_walk(item_path, record_entry, &rec);
        if (r >= 0 && rec.data)
                record_seal(&rec);
        if (r >= 0 && rec.data && pf_cache_record_put(cache, key, rec.data, rec.size) < 0)
                log_debug("cache: cannot record the member list of %s", item_path);
        free(rec.data);
        return r;
}
