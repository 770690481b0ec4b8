/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Codecs (round trips through the stock tools, determinism), unit cutting and
 * keys, and the cache (commit, lookup, pins, eviction, interrupted writes). */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "packfs/background.h"
#include "packfs/cache.h"
#include "packfs/codec.h"
#include "packfs/compressed.h"
#include "packfs/config.h"
#include "packfs/log.h"
#include "fixture-tree.h"
#include "cache-index.h"
#include "run-suite.h"

static char tmp[PATH_MAX];

static void setup(void) {
        test_dir_make(tmp);
        pf_log_open(PF_LOG_STDERR, LOG_CRIT);
}

static void teardown(void) {
        temp_dir_remove(tmp);
}

/* Input with both compressible text and incompressible noise. */
static uint8_t *sample(size_t n, unsigned seed) {
        uint8_t *p = malloc(n);
        uint32_t x = seed * 2654435761u + 1;

        ck_assert_ptr_nonnull(p);
        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                p[i] = (i / 4096) % 2 ? (uint8_t) (x >> 24) : (uint8_t) "packfs store items "[i % 19];
        }
        return p;
}

typedef struct mem_io {
        const uint8_t *in;
        size_t in_size, in_pos;
        uint8_t *out;
        size_t out_size;
} mem_io;

static int mem_read(void *userdata, void *buf, size_t len) {
        mem_io *m = userdata;
        ck_assert_uint_le(m->in_pos + len, m->in_size);
        memcpy(buf, m->in + m->in_pos, len);
        m->in_pos += len;
        return 0;
}

static int mem_write(void *userdata, const void *buf, size_t len) {
        mem_io *m = userdata;
        m->out = realloc(m->out, m->out_size + len);
        ck_assert_ptr_nonnull(m->out);
        memcpy(m->out + m->out_size, buf, len);
        m->out_size += len;
        return 0;
}

static void encode(const pf_codec *c, int level, const uint8_t *in, size_t n, mem_io *m) {
        *m = (mem_io) { .in = in, .in_size = n };
        ck_assert_int_eq(c->encode(level, n, mem_read, mem_write, m), 0);
        ck_assert_uint_eq(m->in_pos, n);
}

static void write_file(const char *path, const void *data, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, n), (ssize_t) n);
        close(fd);
}

static const pf_codec *const codecs[] = { &pf_codec_gzip, &pf_codec_xz, &pf_codec_zstd };
static const char *const decompress[] = { "gzip -dc", "xz -dc", "zstd -dcq" };

/* Units encoded separately and concatenated decompress, with the stock tool,
 * to the concatenated input: what every compressed pack relies on. */
START_TEST(test_codec_round_trip) {
        const pf_codec *c = codecs[_i];
        size_t sizes[] = { 0, 1, 5 * 1024 * 1024 + 7, 4096 };
        char in_path[PATH_MAX + 16], out_path[PATH_MAX + 16], cmd[3 * PATH_MAX];
        FILE *whole, *packed;

        snprintf(in_path, sizeof(in_path), "%s/in", tmp);
        snprintf(out_path, sizeof(out_path), "%s/out", tmp);
        whole = fopen(in_path, "we");
        packed = fopen(out_path, "we");
        ck_assert_ptr_nonnull(whole);
        ck_assert_ptr_nonnull(packed);
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                uint8_t *in = sample(sizes[i] + 1, (unsigned) i);
                mem_io m;
                encode(c, c->min_level, in, sizes[i], &m);
                ck_assert_uint_gt(m.out_size, 0); /* even an empty unit is a valid stream */
                ck_assert_uint_eq(fwrite(in, 1, sizes[i], whole), sizes[i]);
                ck_assert_uint_eq(fwrite(m.out, 1, m.out_size, packed), m.out_size);
                free(in);
                free(m.out);
        }
        fclose(whole);
        fclose(packed);
        snprintf(cmd, sizeof(cmd), "%s < '%s' | cmp -s - '%s'", decompress[_i], out_path, in_path);
        ck_assert_msg(system(cmd) == 0, "%s: concatenated units do not decompress to the input", c->name);
}
END_TEST

typedef struct encode_job {
        const pf_codec *codec;
        const uint8_t *in;
        size_t n;
        mem_io out;
} encode_job;

static void *encode_thread(void *p) {
        encode_job *j = p;
        encode(j->codec, j->codec->default_level, j->in, j->n, &j->out);
        return NULL;
}

/* The same input gives the same bytes, also while other encodings run. */
START_TEST(test_codec_deterministic) {
        const pf_codec *c = codecs[_i];
        size_t n = 1024 * 1024 + 3;
        uint8_t *in = sample(n, 7);
        encode_job jobs[3];
        pthread_t threads[3];

        for (size_t i = 0; i < 3; i++) {
                jobs[i] = (encode_job) { .codec = c, .in = in, .n = n };
                ck_assert_int_eq(pthread_create(&threads[i], NULL, encode_thread, &jobs[i]), 0);
        }
        for (size_t i = 0; i < 3; i++)
                pthread_join(threads[i], NULL);
        for (size_t i = 1; i < 3; i++) {
                ck_assert_uint_eq(jobs[i].out.out_size, jobs[0].out.out_size);
                ck_assert_int_eq(memcmp(jobs[i].out.out, jobs[0].out.out, jobs[0].out.out_size), 0);
        }
        /* A different level is a different encoding. */
        mem_io other;
        encode(c, c->min_level, in, n, &other);
        ck_assert(other.out_size != jobs[0].out.out_size ||
                  memcmp(other.out, jobs[0].out.out, other.out_size) != 0);
        free(other.out);
        /* This thread's context, used at another level just before, gives
         * the bytes a fresh one gave. */
        encode(c, c->default_level, in, n, &other);
        ck_assert_uint_eq(other.out_size, jobs[0].out.out_size);
        ck_assert_int_eq(memcmp(other.out, jobs[0].out.out, other.out_size), 0);
        free(other.out);
        for (size_t i = 0; i < 3; i++)
                free(jobs[i].out.out);
        free(in);
}
END_TEST

/* In the background (idle priority), xz is fed in small pieces paced by its
 * worker's progress, and zstd's and xz's contexts are made anew: the same
 * bytes. Where the thread cannot go idle (no privilege), both runs are in the
 * foreground and the test is the plain determinism one. */
START_TEST(test_codec_background_same_bytes) {
        const pf_codec *c = codecs[_i];
        size_t n = 300 * 1024 + 11;
        uint8_t *in = sample(n, 11);
        mem_io fg, bg;

        encode(c, c->default_level, in, n, &fg);
        pf_background_set(true);
        encode(c, c->default_level, in, n, &bg);
        pf_background_set(false);
        ck_assert_uint_eq(bg.out_size, fg.out_size);
        ck_assert_int_eq(memcmp(bg.out, fg.out, fg.out_size), 0);
        free(fg.out);
        free(bg.out);
        free(in);
}
END_TEST

/* The config accepts exactly the levels the codecs take. */
START_TEST(test_levels_match_config) {
        for (size_t i = 0; i < ELEMENTSOF(codecs); i++) {
                const pf_codec *c = codecs[i];
                int levels[] = { c->min_level - 1, c->min_level, c->max_level, c->max_level + 1 };
                for (size_t j = 0; j < ELEMENTSOF(levels); j++) {
                        char text[128];
                        pf_config *cfg = NULL;
                        pf_options o;
                        snprintf(text, sizeof(text), "[*]\n%s-level = %d\n", c->name, levels[j]);
                        int r = pf_config_parse_string(text, "test.ini", &cfg);
                        bool valid = levels[j] >= c->min_level && levels[j] <= c->max_level;
                        ck_assert_int_eq(r, valid ? 0 : -EINVAL);
                        if (!valid)
                                continue;
                        ck_assert_int_eq(pf_config_options_for(cfg, "p", &o), 0);
                        ck_assert_int_eq(pf_options_level(&o, c->name), levels[j]);
                        pf_options_done(&o);
                        pf_config_free(cfg);
                }
                ck_assert_ptr_eq(pf_codec_find(c->name), c);
        }
        ck_assert_ptr_null(pf_codec_find("bzip2"));
}
END_TEST

/* A plan of segments: an unidentified head, small items (an eighth of GROUP
 * each), a big one, a tail. */
static pf_plan *segmented_plan(uint64_t unit, uint64_t group, const uint8_t *small_ids, size_t n_small,
                               uint8_t changed) {
        pf_plan_builder *b = NULL;
        pf_plan *p = NULL;
        uint8_t id[32];

        ck_assert_int_eq(pf_plan_builder_new(&b), 0);
        ck_assert_int_eq(pf_plan_add_bytes(b, "head", 4), 0);
        for (size_t i = 0; i < n_small; i++) {
                memset(id, (int) i, sizeof(id));
                id[0] = small_ids[i];
                id[1] = i == 3 ? changed : id[1];
                ck_assert_int_eq(pf_plan_begin_segment(b, id), 0);
                ck_assert_int_eq(pf_plan_add_zero(b, group / 8 + i), 0);
        }
        memset(id, 0xbb, sizeof(id));
        ck_assert_int_eq(pf_plan_begin_segment(b, id), 0);
        ck_assert_int_eq(pf_plan_add_zero(b, 2 * unit + 5), 0);
        ck_assert_int_eq(pf_plan_begin_segment(b, NULL), 0);
        ck_assert_int_eq(pf_plan_add_bytes(b, "tail", 4), 0);
        ck_assert_int_eq(pf_plan_builder_finish(b, NULL, NULL, NULL, &p), 0);
        return p;
}

START_TEST(test_units) {
        const pf_codec *c = &pf_codec_zstd;
        uint64_t unit = c->unit_size(3);
        uint8_t small_ids[40];
        pf_unit *u1 = NULL, *u2 = NULL;
        size_t n1, n2, differ = 0;

        for (size_t i = 0; i < ELEMENTSOF(small_ids); i++)
                small_ids[i] = (uint8_t) (i % 5 == 0 ? 10 : 200); /* a cut every fifth item */
        pf_plan *p1 = segmented_plan(unit, c->group_size(3), small_ids, ELEMENTSOF(small_ids), 1);
        pf_plan *p2 = segmented_plan(unit, c->group_size(3), small_ids, ELEMENTSOF(small_ids), 2);
        ck_assert_uint_eq(pf_plan_n_segments(p1), ELEMENTSOF(small_ids) + 3);
        ck_assert_int_eq(pf_compressed_units(p1, c, 3, &u1, &n1), 0);
        ck_assert_int_eq(pf_compressed_units(p2, c, 3, &u2, &n2), 0);

        /* Units tile the plan; none is larger than the unit size; the big item
         * is cut in unit-size pieces. */
        uint64_t pos = 0;
        size_t pieces = 0;
        for (size_t i = 0; i < n1; i++) {
                ck_assert_uint_eq(u1[i].offset, pos);
                ck_assert_uint_le(u1[i].length, unit);
                pieces += u1[i].length == unit;
                /* Small items group up to the codec's group size, no further. */
                if (u1[i].length != unit)
                        ck_assert_uint_le(u1[i].length, c->group_size(3));
                pos += u1[i].length;
        }
        ck_assert_uint_eq(pos, pf_plan_size(p1));
        ck_assert_uint_eq(pieces, 2);
        ck_assert_uint_eq(u1[0].length, 4);             /* the head alone */
        ck_assert_uint_eq(u1[n1 - 1].length, 4);        /* the tail alone */

        /* Changing one item's identity changes one unit's key, nothing else. */
        ck_assert_uint_eq(n1, n2);
        for (size_t i = 0; i < n1; i++) {
                ck_assert_uint_eq(u1[i].offset, u2[i].offset);
                differ += memcmp(u1[i].key, u2[i].key, 32) != 0;
        }
        ck_assert_uint_eq(differ, 1);

        /* Another level: other keys. */
        pf_unit *u3 = NULL;
        size_t n3;
        ck_assert_int_eq(pf_compressed_units(p1, c, 4, &u3, &n3), 0);
        ck_assert_int_ne(memcmp(u3[1].key, u1[1].key, 32), 0);
        free(u1);
        free(u2);
        free(u3);
        pf_plan_unref(p1);
        pf_plan_unref(p2);
}
END_TEST

static pf_cache *cache_open(uint64_t max) {
        char dir[PATH_MAX + 8];
        pf_cache *c = NULL;

        snprintf(dir, sizeof(dir), "%s/cache", tmp);
        ck_assert_int_eq(pf_cache_open(dir, max, "test", &c), 0);
        return c;
}

static void put(pf_cache *c, uint8_t id, size_t size, pf_cache_object *ret) {
        uint8_t key[32], buf[4096];
        pf_cache_writer *w = NULL;

        memset(key, id, sizeof(key));
        memset(buf, id, sizeof(buf));
        ck_assert_int_eq(pf_cache_writer_new(c, key, &w), 0);
        for (size_t done = 0; done < size; done += MIN(size - done, sizeof(buf)))
                ck_assert_int_eq(pf_cache_writer_write(w, buf, MIN(size - done, sizeof(buf))), 0);
        ck_assert_int_eq(pf_cache_writer_commit(w, ret), 0);
}

static int acquire_one(pf_cache *c, uint8_t id, pf_cache_object *o) {
        uint8_t key[1][32];
        memset(key[0], id, 32);
        return pf_cache_acquire(c, (const uint8_t (*)[32]) key, 1, o);
}

static void release(pf_cache *c, uint8_t id, pf_cache_object *o) {
        uint8_t key[32];
        memset(key, id, sizeof(key));
        pf_cache_unpin(c, key);
        pf_cache_object_done(o);
}

/* SQL on this test's cache index (cache-index.h). */
static int64_t index_sql(const char *sql) {
        char dir[PATH_MAX + 8];

        snprintf(dir, sizeof(dir), "%s/cache", tmp);
        return cache_index_sql(dir, sql);
}

START_TEST(test_cache_objects) {
        pf_cache *c = cache_open(UINT64_MAX);
        pf_cache_object o, again;
        pf_cache_usage u;
        struct stat st;

        put(c, 1, 10000, &o);
        ck_assert_ptr_nonnull(o.path);
        ck_assert_int_eq(stat(o.path, &st), 0);
        ck_assert_uint_eq((uint64_t) st.st_size, 10000);
        ck_assert_uint_eq(o.size, 10000);
        /* Handed over open on the object's file itself. */
        struct stat fst;
        ck_assert_int_ge(o.fd, 0);
        ck_assert_int_eq(fstat(o.fd, &fst), 0);
        ck_assert(fst.st_ino == st.st_ino && fst.st_dev == st.st_dev);

        /* Found again, also after reopening; a second commit of the same key
         * keeps the first file (it may be served). */
        ck_assert_int_eq(acquire_one(c, 1, &again), 1);
        ck_assert_str_eq(again.path, o.path);
        ck_assert_int_ge(again.fd, 0);
        ck_assert_int_eq(fstat(again.fd, &fst), 0);
        ck_assert(fst.st_ino == st.st_ino);
        release(c, 1, &again);
        put(c, 1, 10000, &again);
        ck_assert_int_eq(stat(o.path, &st), 0);
        ck_assert_int_eq(st.st_mtime, o.mtime);
        release(c, 1, &again);
        release(c, 1, &o);
        ck_assert_int_eq(acquire_one(c, 2, &o), 0);
        ck_assert_ptr_null(o.path);
        pf_cache_free(c);

        c = cache_open(UINT64_MAX);
        ck_assert_int_eq(acquire_one(c, 1, &o), 1);
        /* A damaged object is dropped, never served. */
        ck_assert_int_eq(truncate(o.path, 5), 0);
        release(c, 1, &o);
        ck_assert_int_eq(acquire_one(c, 1, &o), 0);
        ck_assert_int_eq(pf_cache_get_usage(c, &u), 0);
        ck_assert_uint_eq(u.objects, 0);

        /* Manifests. */
        uint8_t key[32] = { 9 }, list[2][32] = { { 1 }, { 2 } }, (*got)[32] = NULL;
        size_t n;
        ck_assert_int_eq(pf_cache_manifest_get(c, key, &got, &n), -ENOENT);
        ck_assert_int_eq(pf_cache_manifest_put(c, key, (const uint8_t (*)[32]) list, 2), 0);
        ck_assert_int_eq(pf_cache_manifest_get(c, key, &got, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(memcmp(got, list, sizeof(list)), 0);
        free(got);
        pf_cache_free(c);
}
END_TEST

START_TEST(test_cache_eviction) {
        pf_cache *c = cache_open(25000);
        pf_cache_object a, b, d, x;
        pf_cache_usage u;

        put(c, 1, 10000, &a);
        put(c, 2, 10000, &b);
        release(c, 2, &b);
        /* 1 is pinned, 2 is not: a third object evicts 2, not 1. */
        put(c, 3, 10000, &d);
        ck_assert_int_eq(acquire_one(c, 2, &x), 0);
        ck_assert_int_eq(acquire_one(c, 1, &x), 1);
        release(c, 1, &x);
        ck_assert_int_eq(pf_cache_get_usage(c, &u), 0);
        ck_assert_uint_eq(u.objects, 2);
        ck_assert_uint_le(u.bytes, 25000);

        /* Unpinned, the least recently used goes first: 1 was used after 3
         * (uses count at the grain of an hour: both are made an hour old). */
        release(c, 1, &a);
        release(c, 3, &d);
        index_sql("UPDATE objects SET last_use = 1");
        ck_assert_int_eq(acquire_one(c, 1, &x), 1);
        release(c, 1, &x);
        put(c, 4, 10000, &d);
        release(c, 4, &d);
        ck_assert_int_eq(acquire_one(c, 3, &x), 0);
        ck_assert_int_eq(acquire_one(c, 1, &x), 1);
        release(c, 1, &x);
        pf_cache_free(c);
}
END_TEST

/* A hit marks an object used only when its last use is an hour old or more:
 * a cache hit is otherwise no write to the index. */
START_TEST(test_cache_touch) {
        pf_cache *c = cache_open(UINT64_MAX);
        pf_cache_object o;

        put(c, 0xaa, 10, &o);
        release(c, 0xaa, &o);
        put(c, 0xbb, 10, &o);
        release(c, 0xbb, &o);
        int64_t b_use = index_sql("SELECT last_use FROM objects WHERE hex(key) LIKE 'BB%'");
        ck_assert_int_gt(b_use, 0);
        index_sql("UPDATE objects SET last_use = 7 WHERE hex(key) LIKE 'AA%'");
        ck_assert_int_eq(acquire_one(c, 0xaa, &o), 1);
        release(c, 0xaa, &o);
        ck_assert_int_eq(acquire_one(c, 0xbb, &o), 1);
        release(c, 0xbb, &o);
        ck_assert_int_gt(index_sql("SELECT last_use FROM objects WHERE hex(key) LIKE 'AA%'"), 7);
        ck_assert_int_eq(index_sql("SELECT last_use FROM objects WHERE hex(key) LIKE 'BB%'"), b_use);
        pf_cache_free(c);
}
END_TEST

/* An index SQLite cannot read is moved aside with its objects removed, and the
 * cache starts empty rather than failing the mount. */
START_TEST(test_cache_damaged_index) {
        char index[PATH_MAX + 32], damaged[PATH_MAX + 48], garbage[4096];
        pf_cache *c = cache_open(UINT64_MAX);
        pf_cache_object o;
        pf_cache_usage u;
        struct stat st;

        put(c, 1, 1000, &o);
        release(c, 1, &o);
        put(c, 2, 1000, &o);
        release(c, 2, &o);
        pf_cache_free(c);

        snprintf(index, sizeof(index), "%s/cache/index.sqlite", tmp);
        snprintf(damaged, sizeof(damaged), "%s.damaged", index);
        for (size_t i = 0; i < sizeof(garbage); i++)
                garbage[i] = (char) (i * 7 + 3);
        write_file(index, garbage, sizeof(garbage));

        c = cache_open(UINT64_MAX);
        ck_assert_int_eq(stat(damaged, &st), 0);
        ck_assert_int_eq(pf_cache_get_usage(c, &u), 0);
        ck_assert_uint_eq(u.objects, 0);
        ck_assert_int_eq(acquire_one(c, 1, &o), 0);
        ck_assert_int_eq(acquire_one(c, 2, &o), 0);
        char object_dir[PATH_MAX + 32];
        snprintf(object_dir, sizeof(object_dir), "%s/cache/objects/01", tmp);
        ck_assert_int_eq(rmdir(object_dir), 0); /* empty: the object file is gone */
        /* And it works as a cache again. */
        put(c, 3, 10, &o);
        release(c, 3, &o);
        ck_assert_int_eq(acquire_one(c, 3, &o), 1);
        release(c, 3, &o);
        pf_cache_free(c);
}
END_TEST

/* Out of descriptors, objects are still found, only not held open (the plan
 * then opens them by name at each read). */
START_TEST(test_cache_out_of_descriptors) {
        enum { N = 24 };
        pf_cache *c = cache_open(UINT64_MAX);
        uint8_t keys[N][32];
        pf_cache_object objs[N], o;
        struct rlimit saved, low;
        size_t open_fds = 0;

        for (size_t i = 0; i < N; i++) {
                put(c, (uint8_t) (0x40 + i), 100, &o);
                release(c, (uint8_t) (0x40 + i), &o);
                memset(keys[i], 0x40 + (int) i, 32);
        }
        /* Room for the SQLite connection's needs and a few objects, not all. */
        int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(probe, 0);
        close(probe);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
        low = saved;
        low.rlim_cur = (rlim_t) probe + 8;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
        int found = pf_cache_acquire(c, (const uint8_t (*)[32]) keys, N, objs);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);

        ck_assert_int_eq(found, N);
        for (size_t i = 0; i < N; i++) {
                ck_assert_ptr_nonnull(objs[i].path);
                ck_assert_uint_eq(objs[i].size, 100);
                open_fds += objs[i].fd >= 0;
                pf_cache_unpin(c, keys[i]);
                pf_cache_object_done(&objs[i]);
        }
        ck_assert_uint_gt(open_fds, 0);
        ck_assert_uint_lt(open_fds, N);
        pf_cache_free(c);
}
END_TEST

START_TEST(test_cache_interrupted) {
        char path[PATH_MAX + 64], live[PATH_MAX + 64];
        pf_cache *c = cache_open(UINT64_MAX);
        pf_cache_writer *w = NULL;
        uint8_t key[32] = { 5 };
        pf_cache_object o;

        /* A writer that never commits leaves nothing behind when aborted. */
        ck_assert_int_eq(pf_cache_writer_new(c, key, &w), 0);
        ck_assert_int_eq(pf_cache_writer_write(w, "partial", 7), 0);
        pf_cache_writer_abort(w);
        ck_assert_int_eq(acquire_one(c, 5, &o), 0);
        pf_cache_free(c);

        /* A dead writer's file (pids never exceed 2^22) is discarded on open; a
         * live one's is left to it. */
        snprintf(path, sizeof(path), "%s/cache/tmp/99999999-abcdef", tmp);
        snprintf(live, sizeof(live), "%s/cache/tmp/%ld-abcdef", tmp, (long) getpid());
        write_file(path, "partial", 7);
        write_file(live, "partial", 7);
        c = cache_open(UINT64_MAX);
        ck_assert_int_eq(access(path, F_OK), -1);
        ck_assert_int_eq(access(live, F_OK), 0);
        pf_cache_free(c);

        /* Without a cache the writer keeps the bytes in memory. */
        ck_assert_int_eq(pf_cache_writer_new(NULL, key, &w), 0);
        ck_assert_int_eq(pf_cache_writer_write(w, "in memory", 9), 0);
        ck_assert_int_eq(pf_cache_writer_commit(w, &o), 0);
        ck_assert_ptr_null(o.path);
        ck_assert_int_ge(o.fd, 0);
        char buf[16] = "";
        ck_assert_int_eq(pread(o.fd, buf, sizeof(buf), 0), 9);
        ck_assert_str_eq(buf, "in memory");
        pf_cache_object_done(&o);
}
END_TEST

static void count_job(void *userdata, const pf_cache_job_info *job) {
        ck_assert_int_eq(job->pid, getpid());
        ck_assert_str_eq(job->owner, "test");
        if (job->queued) {
                ck_assert_str_eq(job->name, "demo/pack.tar.zst");
                ck_assert_uint_eq(job->total, 0);
                (*(int *) userdata) += 100;
                return;
        }
        ck_assert_str_eq(job->name, "demo/pack.tar.xz");
        ck_assert_uint_eq(job->total, 100);
        (*(int *) userdata)++;
}

START_TEST(test_cache_jobs_and_sizes) {
        pf_cache *c = cache_open(UINT64_MAX);
        pf_cache_job *j = NULL, *q = NULL;
        uint64_t size;
        int n = 0;

        ck_assert_int_eq(pf_cache_job_begin(c, "demo/pack.tar.xz", 100, &j), 0);
        ck_assert_int_eq(pf_cache_job_queue(c, "demo/pack.tar.zst", &q), 0);
        pf_cache_job_progress(j, 50, 7);
        ck_assert_int_eq(pf_cache_list_jobs(c, count_job, &n), 0);
        ck_assert_int_eq(n, 101);
        pf_cache_job_end(q);
        n = 0;
        ck_assert_int_eq(pf_cache_list_jobs(c, count_job, &n), 0);
        ck_assert_int_eq(n, 1);
        pf_cache_job_end(j);
        n = 0;
        ck_assert_int_eq(pf_cache_list_jobs(c, count_job, &n), 0);
        ck_assert_int_eq(n, 0);
        pf_cache_free(c);

        ck_assert_int_eq(pf_cache_parse_size("10G", &size), 0);
        ck_assert_uint_eq(size, (uint64_t) 10 << 30);
        ck_assert_int_eq(pf_cache_parse_size("512MiB", &size), 0);
        ck_assert_uint_eq(size, (uint64_t) 512 << 20);
        ck_assert_int_eq(pf_cache_parse_size("4096", &size), 0);
        ck_assert_uint_eq(size, 4096);
        ck_assert_int_eq(pf_cache_parse_size("banana", &size), -EINVAL);
        ck_assert_int_eq(pf_cache_parse_size("-1G", &size), -EINVAL);
        ck_assert_int_eq(pf_cache_parse_size("10X", &size), -EINVAL);
        ck_assert_int_eq(pf_cache_parse_size("99999999999T", &size), -EINVAL);
}
END_TEST

/* Every file and directory under the cache is its owner's alone. */
static int check_private(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        ck_assert_msg(!(st->st_mode & 077), "%s: mode %04o", path, (unsigned) (st->st_mode & 07777));
        return 0;
}

static void check_cache_private(void) {
        char dir[PATH_MAX + 8];

        snprintf(dir, sizeof(dir), "%s/cache", tmp);
        ck_assert_int_eq(nftw(dir, check_private, 16, FTW_PHYS), 0);
}

START_TEST(test_cache_private) {
        char path[PATH_MAX + 64];
        mode_t saved = umask(0); /* the modes are the cache's own, not the umask's */
        pf_cache *c = cache_open(UINT64_MAX);
        pf_cache_object o;
        uint8_t key[32] = { 7 };
        struct stat st;

        /* Packs of closures others may not read go there (access.h). */
        put(c, 1, 1000, &o);
        release(c, 1, &o);
        ck_assert_int_eq(pf_cache_record_put(c, key, "r", 1), 0);
        snprintf(path, sizeof(path), "%s/cache/index.sqlite-wal", tmp);
        ck_assert_int_eq(stat(path, &st), 0);
        check_cache_private();
        pf_cache_free(c);

        /* A cache made before (0755 directories, a 0644 index) is tightened
         * when opened, what it holds included. (The last close removed the
         * -wal file: an empty one is a WAL without frames.) */
        snprintf(path, sizeof(path), "%s/cache/index.sqlite-wal", tmp);
        ck_assert_int_eq(close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)), 0);
        static const char *const loose[][2] = { { "", "755" }, { "/objects", "755" }, { "/objects/01", "755" },
                                                { "/index.sqlite", "644" }, { "/index.sqlite-wal", "644" } };
        for (size_t i = 0; i < ELEMENTSOF(loose); i++) {
                snprintf(path, sizeof(path), "%s/cache%s", tmp, loose[i][0]);
                ck_assert_int_eq(chmod(path, (mode_t) strtoul(loose[i][1], NULL, 8)), 0);
        }
        c = cache_open(UINT64_MAX);
        check_cache_private();
        ck_assert_int_eq(acquire_one(c, 1, &o), 1);
        release(c, 1, &o);
        pf_cache_free(c);
        umask(saved);
}
END_TEST

int main(void) {
        Suite *s = suite_create("compressed");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 120);
        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_loop_test(tc, test_codec_round_trip, 0, ELEMENTSOF(codecs));
        tcase_add_loop_test(tc, test_codec_deterministic, 0, ELEMENTSOF(codecs));
        tcase_add_loop_test(tc, test_codec_background_same_bytes, 0, ELEMENTSOF(codecs));
        tcase_add_test(tc, test_levels_match_config);
        tcase_add_test(tc, test_units);
        tcase_add_test(tc, test_cache_objects);
        tcase_add_test(tc, test_cache_eviction);
        tcase_add_test(tc, test_cache_touch);
        tcase_add_test(tc, test_cache_damaged_index);
        tcase_add_test(tc, test_cache_out_of_descriptors);
        tcase_add_test(tc, test_cache_interrupted);
        tcase_add_test(tc, test_cache_jobs_and_sizes);
        tcase_add_test(tc, test_cache_private);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
