/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <gcrypt.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "packfs/io.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/walkcache.h"

/* Bump when the record's layout or the walk's order or fields change: a record
 * of another layout is under another key, so the item is walked again. (2: the
 * owner and group.) */
#define WALK_RECORD_LAYOUT "packfs walk 2"
#define WALK_RECORD_MAGIC "PFWALK2\n"
#define NO_LINK UINT32_MAX

/*
 * A record: the magic, then per entry
 *   u32 mode, u32 depth, u64 size, i64 mtime, u32 rel_len, u32 link_len (NO_LINK:
 *   none), u32 uid, u32 gid, rel_len bytes of rel_path, link_len bytes of link
 *   target
 * (little-endian), then u64 entry count and the SHA-256 of all that.
 */
#define ENTRY_FIXED 40
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
        uint8_t *p = recorder_grow(rec, ENTRY_FIXED + rel_len + link_len);

        if (!p)
                return -ENOMEM;
        put_le(p, (uint32_t) e->mode, 4);
        put_le(p + 4, e->depth, 4);
        put_le(p + 8, e->size, 8);
        put_le(p + 16, (uint64_t) e->mtime, 8);
        put_le(p + 24, rel_len, 4);
        put_le(p + 28, e->link_target ? link_len : NO_LINK, 4);
        put_le(p + 32, e->uid, 4);
        put_le(p + 36, e->gid, 4);
        memcpy(p + ENTRY_FIXED, e->rel_path, rel_len);
        memcpy(p + ENTRY_FIXED + rel_len, e->link_target ? e->link_target : "", link_len);
        rec->n_entries++;
        return 0;
}

/* Walks ITEM_PATH into a sealed record (malloc'd). */
static int record_walk(const char *item_path, uint8_t **ret, size_t *ret_size) {
        recorder rec = { .data = malloc(4096), .allocated = 4096 };
        uint8_t *p;
        int r;

        if (!rec.data)
                return -ENOMEM;
        memcpy(rec.data, WALK_RECORD_MAGIC, sizeof(WALK_RECORD_MAGIC) - 1);
        rec.size = sizeof(WALK_RECORD_MAGIC) - 1;
        r = pf_walk(item_path, record_entry, &rec);
        if (r >= 0 && !(p = recorder_grow(&rec, TRAILER)))
                r = -ENOMEM;
        if (r < 0) {
                free(rec.data);
                return r;
        }
        put_le(p, rec.n_entries, 8);
        gcry_md_hash_buffer(GCRY_MD_SHA256, p + 8, rec.data, rec.size - 32);
        *ret = rec.data;
        *ret_size = rec.size;
        return 0;
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
                        .uid = (uid_t) get_le(p + 32, 4),
                        .gid = (gid_t) get_le(p + 36, 4),
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

/* --- Batches: the records a plan needs are fetched up front; items without one
 * are walked by worker threads while the caller replays the others, in order. */

enum item_state { ITEM_RECORDED, ITEM_QUEUED, ITEM_WALKING, ITEM_WALKED };

typedef struct batch_item {
        const char *path;       /* borrowed from the caller's items */
        bool keyed;             /* has a NAR hash: its record goes to the cache */
        bool recorded;          /* its record came from the cache; set before any walker
                                 * starts and never changed, so read without the lock */
        uint8_t key[32];
        uint8_t *data;          /* the record, once RECORDED or WALKED (NULL if the walk failed) */
        size_t size;
        int error;              /* WALKED: the walk's result */
        uint8_t state;          /* enum item_state */
} batch_item;

#define MAX_WALKERS 4

struct pf_walk_batch {
        pf_cache *cache;
        batch_item *items;
        size_t n;
        pthread_t walkers[MAX_WALKERS];
        unsigned n_walkers;

        /* Guards the state, data, size and error of items that were QUEUED, and
         * next and stopping. */
        pthread_mutex_t lock;
        pthread_cond_t walked;
        size_t next;            /* no QUEUED item before it */
        bool stopping;
};

/* Walks item I (marked WALKING by the caller, lock not held) and publishes it. */
static void batch_walk(pf_walk_batch *b, size_t i) {
        batch_item *it = &b->items[i];
        uint8_t *data = NULL;
        size_t size = 0;
        int r;

        r = record_walk(it->path, &data, &size);
        if (r >= 0 && it->keyed && b->cache && pf_cache_record_put(b->cache, it->key, data, size) < 0)
                log_debug("cache: cannot record the member list of %s", it->path);
        pthread_mutex_lock(&b->lock);
        it->data = data;
        it->size = size;
        it->error = r;
        it->state = ITEM_WALKED;
        pthread_cond_broadcast(&b->walked);
        pthread_mutex_unlock(&b->lock);
}

/* The next QUEUED item, marked WALKING, or -1. Called with the lock held. */
static ssize_t batch_take_locked(pf_walk_batch *b) {
        for (; b->next < b->n && !b->stopping; b->next++)
                if (b->items[b->next].state == ITEM_QUEUED) {
                        b->items[b->next].state = ITEM_WALKING;
                        return (ssize_t) b->next++;
                }
        return -1;
}

static void *walker(void *userdata) {
        pf_walk_batch *b = userdata;

        for (;;) {
                pthread_mutex_lock(&b->lock);
                ssize_t i = batch_take_locked(b);
                pthread_mutex_unlock(&b->lock);
                if (i < 0)
                        return NULL;
                batch_walk(b, (size_t) i);
        }
}

int pf_walk_batch_new(pf_cache *cache, const pf_closure_item *items, size_t n, pf_walk_batch **ret) {
        pf_walk_batch *b = calloc(1, sizeof(*b));
        size_t queued = 0;

        if (!b)
                return -ENOMEM;
        b->cache = cache;
        b->n = n;
        pthread_mutex_init(&b->lock, NULL);
        pthread_cond_init(&b->walked, NULL);
        b->items = calloc(MAX(n, (size_t) 1), sizeof(*b->items));
        if (!b->items) {
                pf_walk_batch_free(b);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                batch_item *it = &b->items[i];
                int r;

                it->path = items[i].path;
                it->keyed = pf_closure_item_keyed(&items[i]);
                it->state = ITEM_QUEUED;
                if (!it->keyed || !cache) {
                        queued++;
                        continue;
                }
                pf_walk_record_key(it->path, items[i].nar_hash, it->key);
                r = pf_cache_record_get(cache, it->key, (void **) &it->data, &it->size);
                if (r >= 0 && record_intact(it->data, it->size)) {
                        it->state = ITEM_RECORDED;
                        it->recorded = true;
                        continue;
                }
                if (r >= 0) {
                        log_warning("cache: the member list of %s is damaged; walking the item again", it->path);
                        pf_cache_record_drop(cache, it->key);
                        free(it->data);
                        it->data = NULL;
                } else if (r != -ENOENT)
                        log_debug("cache: cannot look up the member list of %s: %s", it->path, strerror(-r));
                queued++;
        }
        /* The caller walks too (what it reaches before a walker does), so one
         * item needs no thread. Walks are mostly system calls: a few threads
         * per core would do, one per core is plenty. */
        unsigned want = (unsigned) MIN((size_t) MIN(pf_cpu_count(), (unsigned) MAX_WALKERS), queued > 0 ? queued - 1 : 0);
        for (; b->n_walkers < want; b->n_walkers++)
                if (pthread_create(&b->walkers[b->n_walkers], NULL, walker, b) != 0)
                        break; /* fewer walkers: the caller walks the rest */
        *ret = b;
        return 0;
}

int pf_walk_batch_item(pf_walk_batch *b, size_t i, pf_walk_fn fn, void *userdata, bool *ret_walked) {
        batch_item *it = &b->items[i];
        int r;

        *ret_walked = false;
        if (!it->recorded) {
                pthread_mutex_lock(&b->lock);
                if (it->state == ITEM_QUEUED) {
                        /* Not taken yet: walk it here rather than wait. */
                        it->state = ITEM_WALKING;
                        pthread_mutex_unlock(&b->lock);
                        batch_walk(b, i);
                        pthread_mutex_lock(&b->lock);
                }
                while (it->state != ITEM_WALKED)
                        pthread_cond_wait(&b->walked, &b->lock);
                pthread_mutex_unlock(&b->lock);
                if (it->error < 0)
                        return it->error;
                *ret_walked = true;
        }
        /* A malformed record with a good digest was written so (a bug, not
         * damage), and part of it may have reached FN already: an error. */
        r = replay(it->path, it->data, it->size, fn, userdata);
        if (r == -EBADMSG)
                log_error("cache: the member list of %s is malformed", it->path);
        free(it->data);
        it->data = NULL;
        return r;
}

void pf_walk_batch_free(pf_walk_batch *b) {
        if (!b)
                return;
        pthread_mutex_lock(&b->lock);
        b->stopping = true;
        pthread_mutex_unlock(&b->lock);
        for (unsigned i = 0; i < b->n_walkers; i++)
                pthread_join(b->walkers[i], NULL);
        for (size_t i = 0; b->items && i < b->n; i++)
                free(b->items[i].data);
        free(b->items);
        pthread_mutex_destroy(&b->lock);
        pthread_cond_destroy(&b->walked);
        free(b);
}

int pf_walk_cached(pf_cache *cache, const char *item_path, const char *nar_hash, pf_walk_fn fn, void *userdata,
                   bool *ret_replayed) {
        pf_closure_item item = { .path = (char *) item_path, .nar_hash = (char *) nar_hash };
        pf_walk_batch *b;
        bool walked = false;
        int r;

        if (ret_replayed)
                *ret_replayed = false;
        if (!cache || !nar_hash || !*nar_hash)
                return pf_walk(item_path, fn, userdata);
        r = pf_walk_batch_new(cache, &item, 1, &b);
        if (r < 0)
                return r;
        r = pf_walk_batch_item(b, 0, fn, userdata, &walked);
        pf_walk_batch_free(b);
        if (ret_replayed)
                *ret_replayed = r >= 0 && !walked;
        return r;
}
