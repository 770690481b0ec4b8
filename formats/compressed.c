/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "packfs/background.h"
#include "packfs/cancel.h"
#include "packfs/compressed.h"
#include "packfs/io.h"
#include "packfs/log.h"
#include "packfs/macro.h"

/* Bump when the way units are cut or keyed changes. A manifest's key also
 * holds the codec's unit and group sizes and both keys the library's version:
 * a manifest recorded by a packfs that cut differently (2 MiB zstd groups
 * before session 4), or units encoded by another zstd, would otherwise serve
 * other compressed bytes than a fresh encoding of the same pack. */
#define UNIT_LAYOUT "packfs unit 1"
#define MANIFEST_LAYOUT "packfs manifest 2"

/* Small items close their group early (at 1/4 of the group size or more) when
 * their identity's first byte is below this: about one item in four, chosen by
 * content, so unit boundaries among small items resynchronise right after a
 * change instead of shifting through the rest of the pack. */
#define GROUP_CUT_BELOW 64

#define COPY_BUFFER_SIZE (1024 * 1024)

/* --- Process-wide CPU slots: one unit encodes per core at a time, across all
 * packs being encoded, so concurrent encodings share the cores instead of
 * multiplying threads. Background units (made ahead of use) count apart: a
 * foreground unit never waits for them (they run at idle priority, so they
 * only get what the foreground leaves), and they start only when no
 * foreground unit is waiting and a core is free of both. */
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slots_free = PTHREAD_COND_INITIALIZER;
/* Guarded by slots_lock. */
static unsigned slots_total, foreground_used, background_used, foreground_waiting;

static void slots_init(void) {
        slots_total = pf_cpu_count();
}

unsigned pf_compressed_parallelism(void) {
        pthread_once(&slots_once, slots_init);
        return slots_total;
}

/* Takes a slot for one unit; returns whether it is a background one (for
 * slot_release()). BACKGROUND (may be NULL) is re-read while waiting: a unit
 * whose encoding a reader came to wait for stops waiting behind others'. */
static bool slot_acquire(const bool *background) {
        bool bg;

        pthread_once(&slots_once, slots_init);
        pthread_mutex_lock(&slots_lock);
        for (;;) {
                bg = background && __atomic_load_n(background, __ATOMIC_ACQUIRE);
                if (!bg || (foreground_waiting == 0 && foreground_used + background_used < slots_total))
                        break;
                pthread_cond_wait(&slots_free, &slots_lock);
        }
        if (bg)
                background_used++;
        else {
                foreground_waiting++;
                while (foreground_used >= slots_total)
                        pthread_cond_wait(&slots_free, &slots_lock);
                foreground_waiting--;
                foreground_used++;
        }
        pthread_mutex_unlock(&slots_lock);
        return bg;
}

void pf_compressed_raised(void) {
        pthread_mutex_lock(&slots_lock);
        pthread_cond_broadcast(&slots_free);
        pthread_mutex_unlock(&slots_lock);
}

static void slot_release(bool background) {
        pthread_mutex_lock(&slots_lock);
        if (background)
                background_used--;
        else
                foreground_used--;
        pthread_cond_broadcast(&slots_free);
        pthread_mutex_unlock(&slots_lock);
}

static int codec_level(const pf_format *self, const pf_view *view) {
        int level = pf_options_level(view->options, self->codec->name);
        return level >= 0 ? level : self->codec->default_level;
}

/* --- Units. */

typedef struct unit_builder {
        pf_unit *units;
        size_t n, allocated;
        gcry_md_hd_t md;        /* of the open unit, or NULL */
        const pf_codec *codec;
        int level;
        uint64_t unit_size, group_size;
} unit_builder;

static int unit_open(unit_builder *u, uint64_t offset) {
        char header[128];
        int n;

        if (u->n == u->allocated) {
                size_t na = u->allocated ? u->allocated * 2 : 64;
                pf_unit *v = reallocarray(u->units, na, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                u->units = v;
                u->allocated = na;
        }
        if (gcry_md_open(&u->md, GCRY_MD_SHA256, 0) != 0)
                return -ENOMEM;
        n = snprintf(header, sizeof(header), "%s %s %u %d %llu", UNIT_LAYOUT, u->codec->name,
                     u->codec->library_version(), u->level, (unsigned long long) u->unit_size);
        gcry_md_write(u->md, header, (size_t) n + 1);
        u->units[u->n] = (pf_unit) { .offset = offset };
        return 0;
}

/* Adds [PIECE_OFFSET, +LENGTH) of the segment identified by DIGEST. */
static void unit_add(unit_builder *u, const uint8_t digest[32], uint64_t piece_offset, uint64_t length) {
        uint8_t le[16];

        for (int i = 0; i < 8; i++) {
                le[i] = (uint8_t) (piece_offset >> (8 * i));
                le[8 + i] = (uint8_t) (length >> (8 * i));
        }
        gcry_md_write(u->md, digest, 32);
        gcry_md_write(u->md, le, sizeof(le));
        u->units[u->n].length += length;
}

static void unit_close(unit_builder *u) {
        if (!u->md)
                return;
        memcpy(u->units[u->n++].key, gcry_md_read(u->md, GCRY_MD_SHA256), 32);
        gcry_md_close(u->md);
        u->md = NULL;
}

/* An unidentified segment is identified by its bytes. */
static int content_digest(const pf_plan *base, const pf_plan_segment *s, uint8_t digest[32]) {
        _cleanup_free_ uint8_t *buf = malloc(COPY_BUFFER_SIZE);
        gcry_md_hd_t md;

        if (!buf || gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                return -ENOMEM;
        for (uint64_t off = 0; off < s->length;) {
                ssize_t k = pf_plan_pread(base, buf, (size_t) MIN(s->length - off, (uint64_t) COPY_BUFFER_SIZE),
                                          s->offset + off);
                if (k <= 0) {
                        gcry_md_close(md);
                        return k < 0 ? (int) k : -EIO;
                }
                gcry_md_write(md, buf, (size_t) k);
                off += (uint64_t) k;
        }
        memcpy(digest, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
        return 0;
}

int pf_compressed_units(const pf_plan *base, const pf_codec *codec, int level, pf_unit **ret, size_t *ret_n) {
        unit_builder u = { .codec = codec, .level = level, .unit_size = codec->unit_size(level),
                           .group_size = MIN(codec->group_size(level), codec->unit_size(level)) };
        size_t n_segments = pf_plan_n_segments(base);
        int r = 0;

        for (size_t i = 0; i < n_segments && r >= 0; i++) {
                const pf_plan_segment *s = pf_plan_segment_at(base, i);
                uint8_t digest[32];

                if (s->has_identity)
                        memcpy(digest, s->identity, 32);
                else if ((r = content_digest(base, s, digest)) < 0)
                        break;

                if (!s->has_identity || s->length >= u.group_size) {
                        /* Alone, in pieces of the unit size. */
                        unit_close(&u);
                        for (uint64_t off = 0; off < s->length && r >= 0; off += u.unit_size) {
                                r = unit_open(&u, s->offset + off);
                                if (r >= 0) {
                                        unit_add(&u, digest, off, MIN(u.unit_size, s->length - off));
                                        unit_close(&u);
                                }
                        }
                        continue;
                }
                if (u.md && u.units[u.n].length + s->length > u.group_size)
                        unit_close(&u);
                if (!u.md && (r = unit_open(&u, s->offset)) < 0)
                        break;
                unit_add(&u, digest, 0, s->length);
                if (u.units[u.n].length >= u.group_size / 4 && s->identity[0] < GROUP_CUT_BELOW)
                        unit_close(&u);
        }
        if (r >= 0 && u.n == 0 && !u.md) {
                /* An empty pack is still a valid (empty) compressed file. */
                static const uint8_t nothing[32];
                r = unit_open(&u, 0);
                if (r >= 0)
                        unit_add(&u, nothing, 0, 0);
        }
        if (r >= 0)
                unit_close(&u);
        if (r < 0) {
                if (u.md)
                        gcry_md_close(u.md);
                free(u.units);
                return r;
        }
        *ret = u.units;
        *ret_n = u.n;
        return 0;
}

/* --- Encoding the missing units of one pack. */

enum unit_state { UNIT_MISSING, UNIT_BUSY, UNIT_READY };

typedef struct encoding {
        const pf_plan *base;
        const pf_codec *codec;
        int level;
        pf_cache *cache;
        pf_unit *units;
        size_t n_units;
        uint8_t (*keys)[32];    /* the units' keys, in the form the cache takes */
        pf_cache_object *objs;  /* per unit, once READY */
        pf_cache_job *job;
        const bool *background; /* the view's: NULL, or whether nobody waits yet */
        pthread_t *threads;
        unsigned n_threads;

        /* Guards state, next, error and the objs of units becoming READY. */
        pthread_mutex_t lock;
        pthread_cond_t changed;
        uint8_t *state;
        size_t next;
        int error;

        uint64_t done_bytes;    /* atomic: input bytes encoded so far */
        uint64_t out_bytes;     /* atomic: output bytes written so far */
} encoding;

typedef struct unit_io {
        encoding *enc;
        uint64_t pos;
        pf_cache_writer *writer;
} unit_io;

static int unit_read(void *userdata, void *buf, size_t len) {
        unit_io *io = userdata;
        ssize_t k;

        /* Polled here, between the codec's input chunks: a cancelled encoding
         * stops within one chunk, and its writer is aborted. */
        if (pf_cancel_requested())
                return -ECANCELED;
        /* Made ahead of use: readers first (background.h). Once a reader
         * waits for it, at full speed at once, not from the next unit on. */
        if (io->enc->background) {
                if (__atomic_load_n(io->enc->background, __ATOMIC_ACQUIRE))
                        pf_background_wait_quiet();
                else if (pf_background_current())
                        pf_background_set(false);
        }
        for (size_t got = 0; got < len; got += (size_t) k) {
                k = pf_plan_pread(io->enc->base, (uint8_t *) buf + got, len - got, io->pos + got);
                if (k <= 0)
                        return k < 0 ? (int) k : -EIO;
        }
        io->pos += len;
        uint64_t done = __atomic_add_fetch(&io->enc->done_bytes, len, __ATOMIC_RELAXED);
        pf_cache_job_progress(io->enc->job, done, __atomic_load_n(&io->enc->out_bytes, __ATOMIC_RELAXED));
        return 0;
}

static int unit_write(void *userdata, const void *buf, size_t len) {
        unit_io *io = userdata;

        __atomic_add_fetch(&io->enc->out_bytes, len, __ATOMIC_RELAXED);
        return pf_cache_writer_write(io->writer, buf, len);
}

static int encode_unit(encoding *e, size_t i, pf_cache_object *ret) {
        const pf_unit *u = &e->units[i];
        unit_io io = { .enc = e, .pos = u->offset };
        int r;

        r = pf_cache_writer_new(e->cache, u->key, &io.writer);
        if (r < 0)
                return r;
        r = e->codec->encode(e->level, u->length, unit_read, unit_write, &io);
        if (r < 0) {
                pf_cache_writer_abort(io.writer);
                return r;
        }
        return pf_cache_writer_commit(io.writer, ret);
}

static void *encode_worker(void *userdata) {
        encoding *e = userdata;

        for (;;) {
                pf_cache_object obj;
                bool background;
                size_t i;
                int r;

                pthread_mutex_lock(&e->lock);
                while (e->next < e->n_units && e->state[e->next] != UNIT_MISSING)
                        e->next++;
                if (e->error < 0 || e->next >= e->n_units) {
                        pthread_mutex_unlock(&e->lock);
                        return NULL;
                }
                i = e->next++;
                e->state[i] = UNIT_BUSY;
                pthread_mutex_unlock(&e->lock);

                /* A reader may have come to wait since the last unit. */
                background = slot_acquire(e->background);
                pf_background_set(background);
                r = encode_unit(e, i, &obj);
                slot_release(background);

                pthread_mutex_lock(&e->lock);
                if (r < 0) {
                        if (e->error >= 0)
                                e->error = r;
                        e->state[i] = UNIT_MISSING;
                } else {
                        e->objs[i] = obj;
                        e->state[i] = UNIT_READY;
                }
                pthread_cond_broadcast(&e->changed);
                pthread_mutex_unlock(&e->lock);
        }
}

static void encoding_done(encoding *e) {
        if (e->objs)
                for (size_t i = 0; i < e->n_units; i++) {
                        if (e->objs[i].path)
                                pf_cache_unpin(e->cache, e->units[i].key);
                        pf_cache_object_done(&e->objs[i]);
                }
        free(e->objs);
        free(e->state);
        free(e->keys);
        free(e->units);
        free(e->threads);
        pthread_mutex_destroy(&e->lock);
        pthread_cond_destroy(&e->changed);
}

/* Cuts BASE into units and looks them up in the cache; E is then ready for
 * encoding_start(). */
static int encoding_init(encoding *e, const pf_plan *base, const pf_codec *codec, int level, pf_cache *cache,
                         const bool *background) {
        int r;

        *e = (encoding) { .base = base, .codec = codec, .level = level, .cache = cache, .background = background };
        pthread_mutex_init(&e->lock, NULL);
        pthread_cond_init(&e->changed, NULL);
        r = pf_compressed_units(base, codec, level, &e->units, &e->n_units);
        if (r < 0)
                return r;
        e->objs = calloc(e->n_units, sizeof(*e->objs));
        e->state = calloc(e->n_units, 1);
        e->keys = malloc(e->n_units * sizeof(*e->keys));
        if (!e->objs || !e->state || !e->keys)
                return -ENOMEM;
        for (size_t i = 0; i < e->n_units; i++) {
                e->objs[i].fd = -1;
                memcpy(e->keys[i], e->units[i].key, 32);
        }
        if (!cache)
                return 0;
        r = pf_cache_acquire(cache, (const uint8_t (*)[32]) e->keys, e->n_units, e->objs);
        if (r < 0)
                return r;
        for (size_t i = 0; i < e->n_units; i++)
                if (e->objs[i].path)
                        e->state[i] = UNIT_READY;
        return 0;
}

static uint64_t encoding_missing_bytes(const encoding *e, size_t *ret_n) {
        uint64_t bytes = 0;
        size_t n = 0;

        for (size_t i = 0; i < e->n_units; i++)
                if (e->state[i] == UNIT_MISSING) {
                        bytes += e->units[i].length;
                        n++;
                }
        *ret_n = n;
        return bytes;
}

static int encoding_start(encoding *e, const char *name) {
        size_t missing;
        uint64_t bytes = encoding_missing_bytes(e, &missing);
        unsigned n = (unsigned) MIN((size_t) pf_compressed_parallelism(), missing);
        int r;

        if (n == 0)
                return 0;
        r = pf_cache_job_begin(e->cache, name, bytes, &e->job);
        if (r < 0)
                return r;
        e->threads = calloc(n, sizeof(*e->threads));
        if (!e->threads)
                return -ENOMEM;
        for (; e->n_threads < n; e->n_threads++) {
                r = -pthread_create(&e->threads[e->n_threads], NULL, encode_worker, e);
                if (r < 0)
                        break;
        }
        /* With at least one worker the encoding completes, only slower. */
        return e->n_threads > 0 ? 0 : r;
}

/* Waits for unit I; returns the encoding's error if it failed. */
static int encoding_wait(encoding *e, size_t i) {
        int r;

        pthread_mutex_lock(&e->lock);
        while (e->state[i] != UNIT_READY && e->error >= 0)
                pthread_cond_wait(&e->changed, &e->lock);
        r = e->state[i] == UNIT_READY ? 0 : e->error;
        pthread_mutex_unlock(&e->lock);
        return r;
}

/* Stops the workers (after their current unit) with R if R < 0, and joins them. */
static void encoding_stop(encoding *e, int r) {
        pthread_mutex_lock(&e->lock);
        if (r < 0 && e->error >= 0)
                e->error = r;
        pthread_mutex_unlock(&e->lock);
        for (unsigned i = 0; i < e->n_threads; i++)
                pthread_join(e->threads[i], NULL);
        e->n_threads = 0;
        pf_cache_job_end(e->job);
        e->job = NULL;
}

/* --- Manifests and plans. */

static void manifest_key(const pf_format *self, const pf_view *view, int level, uint8_t key[32]) {
        char header[256];
        gcry_md_hd_t md;
        int n;

        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                abort();
        n = snprintf(header, sizeof(header), "%s %s %s %u %d %llu %llu %d", MANIFEST_LAYOUT, self->file_name,
                     self->codec->name, self->codec->library_version(), level,
                     (unsigned long long) self->codec->unit_size(level),
                     (unsigned long long) self->codec->group_size(level), GROUP_CUT_BELOW);
        gcry_md_write(md, header, (size_t) n + 1);
        gcry_md_write(md, view->closure->id, 32);
        gcry_md_write(md, view->options->id, 32);
        if (pf_format_named(self)) {
                /* (Only then: the keys of the others' encodings stay as they were.) */
                uint8_t name_id[32];
                pf_view_name_id(view, self, name_id);
                gcry_md_write(md, name_id, 32);
        }
        memcpy(key, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
}

static int base_plan(const pf_format *self, const pf_view *view, pf_plan **ret) {
        if (view->plan_of)
                return view->plan_of(view, self->base, ret);
        return self->base->plan(self->base, view, ret);
}

static void job_name(const pf_format *self, const pf_view *view, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s", view->name, self->file_name);
}

static void log_summary(const encoding *e, const char *name, size_t encoded, uint64_t in_bytes,
                        const struct timespec *start, double planned, double looked_up) {
        uint64_t out_bytes = 0;
        for (size_t i = 0; i < e->n_units; i++)
                out_bytes += e->objs[i].size;
        log_info("%s: encoded %zu of %zu units (%llu bytes in) in %.2f s, %zu from the cache; %llu bytes"
                 " (base plan %.3f s, cutting and lookup %.3f s)",
                 name, encoded, e->n_units, (unsigned long long) in_bytes, pf_seconds_since(start),
                 e->n_units - encoded, (unsigned long long) out_bytes, planned, looked_up - planned);
}

static void store_manifest(const encoding *e, const uint8_t key[32]) {

        if (!e->cache)
                return;
        for (size_t i = 0; i < e->n_units; i++)
                if (!e->objs[i].path)
                        return; /* some parts live in memory only */
        if (pf_cache_manifest_put(e->cache, key, (const uint8_t (*)[32]) e->keys, e->n_units) < 0)
                log_warning("cache: cannot record a manifest; the next mount looks its parts up again");
}

/* One pack's encoding from its base plan: what plan() and stream() share. */
typedef struct pack_encoding {
        encoding e;
        pf_plan *base;          /* NULL until encoding_init() may run */
        char name[1024];
        struct timespec start;
        double planned, looked_up;      /* seconds from start: base plan made, units looked up */
        size_t missing;
        uint64_t missing_bytes;
} pack_encoding;

/* The identities of the segments the missing units hold, sorted. */
typedef struct wanted {
        uint8_t (*ids)[32];
        size_t n;
} wanted;

static int id_cmp(const void *a, const void *b) {
        return memcmp(a, b, 32);
}

/* USERDATA NULL: no item is wanted. */
static bool wanted_has(void *userdata, const uint8_t identity[32]) {
        const wanted *w = userdata;
        return w && w->n > 0 && bsearch(identity, w->ids, w->n, 32, id_cmp);
}

static int wanted_collect(const encoding *e, wanted *ret) {
        size_t n_segments = pf_plan_n_segments(e->base), unit = 0;

        *ret = (wanted) { .ids = malloc(MAX(n_segments, (size_t) 1) * 32) };
        if (!ret->ids)
                return -ENOMEM;
        /* Segments and units both tile the plan in order. */
        for (size_t i = 0; i < n_segments; i++) {
                const pf_plan_segment *s = pf_plan_segment_at(e->base, i);
                bool missing = false;

                while (unit < e->n_units && e->units[unit].offset + e->units[unit].length <= s->offset)
                        unit++;
                for (size_t k = unit; k < e->n_units && e->units[k].offset < s->offset + s->length; k++)
                        missing |= e->state[k] == UNIT_MISSING;
                if (missing && s->has_identity)
                        memcpy(ret->ids[ret->n++], s->identity, 32);
        }
        qsort(ret->ids, ret->n, 32, id_cmp);
        return 0;
}

static bool same_layout(const pf_plan *a, const pf_plan *b) {
        if (pf_plan_size(a) != pf_plan_size(b) || pf_plan_n_segments(a) != pf_plan_n_segments(b))
                return false;
        for (size_t i = 0; i < pf_plan_n_segments(a); i++) {
                const pf_plan_segment *x = pf_plan_segment_at(a, i), *y = pf_plan_segment_at(b, i);
                if (x->offset != y->offset || x->length != y->length)
                        return false;
        }
        return true;
}

/* With a sparse-capable base: cuts the units from a plan that materializes no
 * store item, then replans with only the items the missing units hold. A new
 * generation then replays none of the unchanged items' member lists into a
 * plan. */
static int sparse_base(pack_encoding *pe, const pf_format *self, const pf_view *view, int level) {
        wanted w = {};
        pf_plan *sparse = NULL;
        size_t missing;
        int r;

        r = self->base->plan_sparse(self->base, view, wanted_has, NULL, &pe->base);
        if (r < 0)
                return r;
        pe->planned = pf_seconds_since(&pe->start);
        r = encoding_init(&pe->e, pe->base, self->codec, level, view->cache, view->background);
        if (r < 0)
                return r;
        encoding_missing_bytes(&pe->e, &missing);
        if (missing == 0)
                return 0;
        r = wanted_collect(&pe->e, &w);
        if (r >= 0)
                r = self->base->plan_sparse(self->base, view, wanted_has, &w, &sparse);
        free(w.ids);
        if (r < 0)
                return r;
        if (!same_layout(pe->base, sparse)) {
                /* The store changed between the two plans. */
                pf_plan_unref(sparse);
                return log_error_errno(-ESTALE, "%s: the closure changed while it was being planned", pe->name);
        }
        pf_plan_unref(pe->base);
        pe->e.base = sparse;
        pe->base = sparse;
        return 0;
}

/* Plans the base, cuts it into units, looks them up, and starts encoding the
 * missing ones. */
static int pack_encoding_begin(pack_encoding *pe, const pf_format *self, const pf_view *view, int level) {
        int r;

        *pe = (pack_encoding) {};
        clock_gettime(CLOCK_MONOTONIC, &pe->start);
        job_name(self, view, pe->name, sizeof(pe->name));
        if (self->base->plan_sparse)
                r = sparse_base(pe, self, view, level);
        else {
                r = base_plan(self, view, &pe->base);
                if (r >= 0) {
                        pe->planned = pf_seconds_since(&pe->start);
                        r = encoding_init(&pe->e, pe->base, self->codec, level, view->cache,
                                          view->background);
                }
        }
        if (r < 0)
                return r;
        pe->looked_up = pf_seconds_since(&pe->start);
        pe->missing_bytes = encoding_missing_bytes(&pe->e, &pe->missing);
        return encoding_start(&pe->e, pe->name);
}

/* Stops the workers (with R < 0: at once), then logs and records the result. */
static int pack_encoding_end(pack_encoding *pe, int r, const uint8_t manifest[32]) {
        encoding_stop(&pe->e, r);
        if (r < 0)
                return log_error_errno(r, "%s: encoding failed", pe->name);
        if (pe->missing > 0)
                log_summary(&pe->e, pe->name, pe->missing, pe->missing_bytes, &pe->start, pe->planned,
                            pe->looked_up);
        store_manifest(&pe->e, manifest);
        return 0;
}

static void pack_encoding_done(pack_encoding *pe) {
        if (pe->base)
                encoding_done(&pe->e);
        pf_plan_unref(pe->base);
}

int pf_compressed_cached(const pf_format *self, const pf_view *view) {
        _cleanup_free_ uint8_t (*keys)[32] = NULL;
        uint8_t key[32];
        size_t n;
        int r;

        if (!view->cache)
                return 0;
        manifest_key(self, view, codec_level(self, view), key);
        r = pf_cache_manifest_get(view->cache, key, &keys, &n);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        r = pf_cache_contains(view->cache, (const uint8_t (*)[32]) keys, n);
        return r < 0 ? r : (size_t) r == n;
}

int pf_compressed_plan(const pf_format *self, const pf_view *view, pf_plan **ret) {
        int level = codec_level(self, view);
        pack_encoding pe;
        uint8_t key[32];
        int r;

        manifest_key(self, view, level, key);
        if (view->cache) {
                r = pf_plan_from_manifest(key, view->cache, ret);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        r = pack_encoding_begin(&pe, self, view, level);
        for (size_t i = 0; r >= 0 && i < pe.e.n_units; i++)
                r = encoding_wait(&pe.e, i);
        if (pe.base)
                r = pack_encoding_end(&pe, r, key);
        if (r >= 0)
                r = pf_plan_over_cache_objects(view->cache, (const uint8_t (*)[32]) pe.e.keys, pe.e.objs, pe.e.n_units, ret);
        pack_encoding_done(&pe);
        return r;
}

/* Copies object O to OUT; the object's own errors (read side) are logged. */
static int copy_object(const pf_cache_object *o, int out, uint8_t *buf) {
        _cleanup_close_ int fd = -1;
        int in = o->fd;

        if (in < 0) {
                fd = open(o->path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return log_error_errno(negative_errno(), "%s", o->path);
                in = fd;
        }
        for (uint64_t off = 0; off < o->size;) {
                ssize_t k = pread(in, buf, (size_t) MIN(o->size - off, (uint64_t) COPY_BUFFER_SIZE), (off_t) off);
                if (k <= 0)
                        return log_error_errno(k < 0 ? negative_errno() : -EIO, "%s: short read",
                                               o->path ? o->path : "uncached unit");
                int r = pf_write_all(out, buf, (size_t) k);
                if (r < 0)
                        return r;
                off += (uint64_t) k;
        }
        return 0;
}

int pf_compressed_stream(const pf_format *self, const pf_view *view, int fd) {
        _cleanup_free_ uint8_t *buf = malloc(COPY_BUFFER_SIZE);
        int level = codec_level(self, view);
        pf_plan *plan = NULL;
        pack_encoding pe;
        uint8_t key[32];
        int r;

        if (!buf)
                return -ENOMEM;
        manifest_key(self, view, level, key);
        if (view->cache) {
                r = pf_plan_from_manifest(key, view->cache, &plan);
                if (r < 0)
                        return r;
                if (r > 0) {
                        for (uint64_t off = 0; off < pf_plan_size(plan) && r >= 0;) {
                                ssize_t k = pf_plan_pread(plan, buf, COPY_BUFFER_SIZE, off);
                                r = k <= 0 ? (k < 0 ? (int) k : -EIO) : pf_write_all(fd, buf, (size_t) k);
                                off += k > 0 ? (uint64_t) k : 0;
                        }
                        pf_plan_unref(plan);
                        return r;
                }
        }
        r = pack_encoding_begin(&pe, self, view, level);
        /* Units go out in order as they are ready; uncached ones are released
         * as soon as they are written. */
        for (size_t i = 0; r >= 0 && i < pe.e.n_units; i++) {
                r = encoding_wait(&pe.e, i);
                if (r >= 0)
                        r = copy_object(&pe.e.objs[i], fd, buf);
                if (r >= 0 && pe.e.objs[i].fd >= 0) {
                        pthread_mutex_lock(&pe.e.lock);
                        close(pe.e.objs[i].fd);
                        pe.e.objs[i].fd = -1;
                        pthread_mutex_unlock(&pe.e.lock);
                }
        }
        if (pe.base)
                r = pack_encoding_end(&pe, r, key);
        pack_encoding_done(&pe);
        return r;
}
