/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "packfs/log.h"
#include "packfs/walk.h"
#include "packfs/walkcache.h"
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

/* Records every entry as "rel_path|type|depth|size|target\n". */
typedef struct record {
        char text[8192];
        size_t n;
        int stop_after;         /* > 0: return -ECANCELED at that entry */
} record;

static int on_entry(void *userdata, const pf_walk_entry *e) {
        record *r = userdata;
        char type = S_ISDIR(e->mode) ? 'd' : S_ISLNK(e->mode) ? 'l' : S_ISREG(e->mode) ? 'f' : '?';
        size_t len = strlen(r->text);

        /* path and rel_path agree. */
        ck_assert_ptr_nonnull(strstr(e->path, tmp));
        if (*e->rel_path)
                ck_assert_str_eq(e->path + strlen(e->path) - strlen(e->rel_path), e->rel_path);
        snprintf(r->text + len, sizeof(r->text) - len, "%s|%c|%u|%llu|%s\n", e->rel_path, type, e->depth,
                 (unsigned long long) e->size, e->link_target ? e->link_target : "");
        r->n++;
        if (r->stop_after > 0 && r->n == (size_t) r->stop_after)
                return -ECANCELED;
        return 0;
}

static void make_item(char *item) {
        pathf(item, "%s/item", tmp);
        ck_assert_int_eq(mkdir(item, 0755), 0);
        /* Bytewise order: "B" < "Z" < "_" < "a" < "a-b" < "a.b" < "a0" < "ab"; a locale-aware
         * sort would interleave the cases. */
        fixture_write_str(item, "a", "aaa", 0644);
        fixture_write_str(item, "B", "", 0644);
        fixture_write_str(item, "_", "_", 0644);
        fixture_write_str(item, "Z", "zz", 0755);
        fixture_write_str(item, "ab", "", 0644);
        fixture_write_str(item, "a.b", "", 0644);
        fixture_write_str(item, "a0", "", 0644);
        fixture_mkdir(item, "a-b");
        fixture_write_str(item, "a-b/inner", "12345", 0644);
        fixture_mkdir(item, "dir");
        fixture_mkdir(item, "dir/sub");
        fixture_write_str(item, "dir/sub/deep", "d", 0644);
        fixture_write_str(item, "dir/z", "", 0644);
        /* A symlink to a directory is reported, not followed. */
        fixture_symlink(item, "link-to-dir", "dir");
        fixture_symlink(item, "abs", "/etc");
}

START_TEST(test_order) {
        char item[PATH_MAX];
        record r = {};

        make_item(item);
        ck_assert_int_eq(pf_walk(item, on_entry, &r), 0);
        ck_assert_str_eq(r.text,
                         "|d|0|0|\n"
                         "B|f|1|0|\n"
                         "Z|f|1|2|\n"
                         "_|f|1|1|\n"
                         "a|f|1|3|\n"
                         "a-b|d|1|0|\n"
                         "a-b/inner|f|2|5|\n"
                         "a.b|f|1|0|\n"
                         "a0|f|1|0|\n"
                         "ab|f|1|0|\n"
                         "abs|l|1|0|/etc\n"
                         "dir|d|1|0|\n"
                         "dir/sub|d|2|0|\n"
                         "dir/sub/deep|f|3|1|\n"
                         "dir/z|f|2|0|\n"
                         "link-to-dir|l|1|0|dir\n");
}
END_TEST

/* A large item, as a profile is: 600 files and 1500 symlinks in two
 * directories. Checks each entry, in order. */
typedef struct large_check {
        size_t n;
        size_t stop_at;         /* > 0: the walk must fail before this entry */
} large_check;

static int on_large_entry(void *userdata, const pf_walk_entry *e) {
        large_check *c = userdata;
        char want[64];
        size_t i = c->n++;

        if (i == 0) {
                ck_assert_str_eq(e->rel_path, "");
                ck_assert(S_ISDIR(e->mode));
                return 0;
        }
        if (i == 1) {
                ck_assert_str_eq(e->rel_path, "f");
                ck_assert(S_ISDIR(e->mode));
                return 0;
        }
        if (i < 2 + 600) {
                snprintf(want, sizeof(want), "f/%04zu", i - 2);
                ck_assert_str_eq(e->rel_path, want);
                ck_assert(S_ISREG(e->mode));
                ck_assert_uint_eq(e->size, (i - 2) % 7);
                ck_assert_ptr_null(e->link_target);
                return 0;
        }
        if (i == 2 + 600) {
                ck_assert_str_eq(e->rel_path, "l");
                return 0;
        }
        snprintf(want, sizeof(want), "l/%04zu", i - 603);
        ck_assert_str_eq(e->rel_path, want);
        ck_assert(S_ISLNK(e->mode));
        snprintf(want, sizeof(want), "/target/%zu", i - 603);
        ck_assert_str_eq(e->link_target, want);
        ck_assert_uint_eq(e->depth, 2);
        if (c->stop_at > 0)
                ck_assert_uint_lt(i, c->stop_at);
        return 0;
}

START_TEST(test_large_item) {
        char item[PATH_MAX], name[PATH_MAX], target[64];
        static const char sevens[] = "1234567";
        large_check c = {};

        pathf(item, "%s/large", tmp);
        fixture_mkdir(tmp, "large");
        fixture_mkdir(item, "f");
        fixture_mkdir(item, "l");
        for (size_t i = 0; i < 600; i++) {
                snprintf(name, sizeof(name), "f/%04zu", i);
                fixture_write(item, name, sevens, i % 7, 0644);
        }
        for (size_t i = 0; i < 1500; i++) {
                snprintf(name, sizeof(name), "l/%04zu", i);
                snprintf(target, sizeof(target), "/target/%zu", i);
                fixture_symlink(item, name, target);
        }
        ck_assert_int_eq(pf_walk(item, on_large_entry, &c), 0);
        ck_assert_uint_eq(c.n, 3 + 600 + 1500);

        /* A fifo among the symlinks ends the walk there, after every entry
         * before it. */
        pathf(name, "%s/l/1234x", item);
        ck_assert_int_eq(mkfifo(name, 0644), 0);
        c = (large_check) { .stop_at = 603 + 1235 };
        ck_assert_int_eq(pf_walk(item, on_large_entry, &c), -EBADMSG);
        ck_assert_uint_eq(c.n, 603 + 1235);
}
END_TEST

START_TEST(test_single_file_and_symlink) {
        char path[PATH_MAX];
        record r = {};

        fixture_write_str(tmp, "file", "hello", 0644);
        pathf(path, "%s/file", tmp);
        ck_assert_int_eq(pf_walk(path, on_entry, &r), 0);
        ck_assert_str_eq(r.text, "|f|0|5|\n");

        memset(&r, 0, sizeof(r));
        fixture_mkdir(tmp, "target");
        fixture_write_str(tmp, "target/x", "x", 0644);
        fixture_symlink(tmp, "link", "target");
        pathf(path, "%s/link", tmp);
        ck_assert_int_eq(pf_walk(path, on_entry, &r), 0);
        ck_assert_str_eq(r.text, "|l|0|0|target\n");
}
END_TEST

START_TEST(test_stop) {
        char item[PATH_MAX];
        record r = { .stop_after = 3 };

        make_item(item);
        ck_assert_int_eq(pf_walk(item, on_entry, &r), -ECANCELED);
        ck_assert_uint_eq(r.n, 3);
}
END_TEST

START_TEST(test_fifo) {
        char item[PATH_MAX], fifo[PATH_MAX];
        record r = {};

        make_item(item);
        pathf(fifo, "%s/dir/sub/fifo", item);
        ck_assert_int_eq(mkfifo(fifo, 0644), 0);
        ck_assert_int_eq(pf_walk(item, on_entry, &r), -EBADMSG);
        /* The walk stopped at the fifo: nothing after it was reported. */
        ck_assert_ptr_null(strstr(r.text, "dir/z"));
        ck_assert_ptr_nonnull(strstr(r.text, "dir/sub/deep"));
}
END_TEST

START_TEST(test_newline_name) {
        char item[PATH_MAX];
        record r = {};

        make_item(item);
        fixture_write_str(item, "dir/bad\nname", "", 0644);
        ck_assert_int_eq(pf_walk(item, on_entry, &r), -EBADMSG);
}
END_TEST

START_TEST(test_errors) {
        char path[PATH_MAX];
        record r = {};

        pathf(path, "%s/missing", tmp);
        ck_assert_int_eq(pf_walk(path, on_entry, &r), -ENOENT);
        ck_assert_int_eq(pf_walk("relative", on_entry, &r), -EINVAL);
        pathf(path, "%s/", tmp);
        ck_assert_int_eq(pf_walk(path, on_entry, &r), -EINVAL);
        ck_assert_uint_eq(r.n, 0);
}
END_TEST

/* --- The walk cache (walkcache.h). */

/* Everything an entry carries: "path|mode|uid:gid|depth|size|mtime|target\n". */
static int on_entry_full(void *userdata, const pf_walk_entry *e) {
        record *r = userdata;
        size_t len = strlen(r->text);

        ck_assert_str_eq(*e->rel_path ? e->path + strlen(e->path) - strlen(e->rel_path) : "", e->rel_path);
        snprintf(r->text + len, sizeof(r->text) - len, "%s|%o|%u:%u|%u|%llu|%lld|%s\n", e->path, (unsigned) e->mode,
                 (unsigned) e->uid, (unsigned) e->gid, e->depth, (unsigned long long) e->size, (long long) e->mtime,
                 e->link_target ? e->link_target : "");
        r->n++;
        if (r->stop_after > 0 && r->n == (size_t) r->stop_after)
                return -ECANCELED;
        return 0;
}

static pf_cache *walk_cache_open(uint64_t max_bytes) {
        char dir[PATH_MAX];
        pf_cache *c;

        pathf(dir, "%s/cache", tmp);
        ck_assert_int_eq(pf_cache_open(dir, max_bytes, "test", &c), 0);
        return c;
}

static void walk_cached(pf_cache *c, const char *item, const char *nar_hash, record *r, bool expect_replayed) {
        bool replayed = !expect_replayed;

        memset(r, 0, sizeof(*r));
        ck_assert_int_eq(pf_walk_cached(c, item, nar_hash, on_entry_full, r, &replayed), 0);
        ck_assert(replayed == expect_replayed);
}

START_TEST(test_cached_replay) {
        char item[PATH_MAX], path[PATH_MAX];
        record plain = {}, r;
        pf_cache *c = walk_cache_open(UINT64_MAX);

        make_item(item);
        /* Owners come back as they were (who may read a pack depends on them:
         * access.h); only root can give a file away. */
        if (geteuid() == 0) {
                pathf(path, "%s/dir/z", item);
                ck_assert_int_eq(chown(path, 65534, 12345), 0);
                pathf(path, "%s/dir/sub", item);
                ck_assert_int_eq(chown(path, 4321, 65534), 0);
        }
        ck_assert_int_eq(pf_walk(item, on_entry_full, &plain), 0);
        if (geteuid() == 0) {
                ck_assert_ptr_nonnull(strstr(plain.text, "/item/dir/z|100644|65534:12345|"));
                ck_assert_ptr_nonnull(strstr(plain.text, "/item/dir/sub|40755|4321:65534|"));
        }
        walk_cached(c, item, "sha256:1111", &r, false);
        ck_assert_str_eq(r.text, plain.text);
        walk_cached(c, item, "sha256:1111", &r, true);
        ck_assert_str_eq(r.text, plain.text);
        ck_assert_uint_eq(r.n, 16);

        /* The record stands for the item as named by path and NAR hash: a change
         * behind the database's back is not seen (reads catch it: plan.h), a
         * new NAR hash is a new record. */
        fixture_write_str(item, "new", "n", 0644);
        walk_cached(c, item, "sha256:1111", &r, true);
        ck_assert_str_eq(r.text, plain.text);
        walk_cached(c, item, "sha256:2222", &r, false);
        ck_assert_ptr_nonnull(strstr(r.text, "/item/new|"));
        walk_cached(c, item, "sha256:2222", &r, true);
        ck_assert_ptr_nonnull(strstr(r.text, "/item/new|"));

        /* A reopened cache still has it. */
        pf_cache_free(c);
        c = walk_cache_open(UINT64_MAX);
        walk_cached(c, item, "sha256:1111", &r, true);
        ck_assert_str_eq(r.text, plain.text);

        /* No cache or no NAR hash: a plain walk, nothing recorded. */
        walk_cached(NULL, item, "sha256:3333", &r, false);
        walk_cached(c, item, "", &r, false);
        walk_cached(c, item, NULL, &r, false);
        walk_cached(c, item, "", &r, false);
        pf_cache_free(c);
}
END_TEST

START_TEST(test_cached_single_entry_items) {
        char path[PATH_MAX];
        record plain = {}, r;
        pf_cache *c = walk_cache_open(UINT64_MAX);

        fixture_write_str(tmp, "file", "hello", 0755);
        fixture_symlink(tmp, "link", "file");
        pathf(path, "%s/file", tmp);
        ck_assert_int_eq(pf_walk(path, on_entry_full, &plain), 0);
        walk_cached(c, path, "sha256:f", &r, false);
        walk_cached(c, path, "sha256:f", &r, true);
        ck_assert_str_eq(r.text, plain.text);

        memset(&plain, 0, sizeof(plain));
        pathf(path, "%s/link", tmp);
        ck_assert_int_eq(pf_walk(path, on_entry_full, &plain), 0);
        walk_cached(c, path, "sha256:l", &r, false);
        walk_cached(c, path, "sha256:l", &r, true);
        ck_assert_str_eq(r.text, plain.text);
        pf_cache_free(c);
}
END_TEST

START_TEST(test_cached_damage_and_failures) {
        char item[PATH_MAX];
        record plain = {}, r;
        pf_cache *c = walk_cache_open(UINT64_MAX);
        uint8_t key[32];
        uint8_t *data;
        size_t size;

        make_item(item);
        ck_assert_int_eq(pf_walk(item, on_entry_full, &plain), 0);

        /* A walk that fails (a fifo) records nothing, and the error comes
         * through before the callback sees anything. */
        char fifo[PATH_MAX];
        pathf(fifo, "%s/dir/fifo", item);
        ck_assert_int_eq(mkfifo(fifo, 0644), 0);
        memset(&r, 0, sizeof(r));
        ck_assert_int_eq(pf_walk_cached(c, item, "sha256:1", on_entry_full, &r, NULL), -EBADMSG);
        ck_assert_uint_eq(r.n, 0);
        pf_walk_record_key(item, "sha256:1", key);
        ck_assert_int_eq(pf_cache_record_get(c, key, (void **) &data, &size), -ENOENT);
        ck_assert_int_eq(unlink(fifo), 0);
        /* The fifo came and went: dir's mtime may have moved to the next second. */
        memset(&plain, 0, sizeof(plain));
        ck_assert_int_eq(pf_walk(item, on_entry_full, &plain), 0);

        /* The callback's error stops the replay and comes back; the walk was
         * whole, so its record stays. */
        memset(&r, 0, sizeof(r));
        r.stop_after = 3;
        ck_assert_int_eq(pf_walk_cached(c, item, "sha256:1", on_entry_full, &r, NULL), -ECANCELED);
        ck_assert_uint_eq(r.n, 3);
        ck_assert_int_eq(pf_cache_record_get(c, key, (void **) &data, &size), 0);
        walk_cached(c, item, "sha256:1", &r, true);
        ck_assert_str_eq(r.text, plain.text);

        /* One flipped bit anywhere (here in a name) is noticed: the item is
         * walked again, never replayed wrong, and the record is rewritten. */
        for (size_t at = 0; at < size; at += size / 7 + 1) {
                data[at] ^= 0x20;
                ck_assert_int_eq(pf_cache_record_put(c, key, data, size), 0);
                walk_cached(c, item, "sha256:1", &r, false);
                ck_assert_str_eq(r.text, plain.text);
                walk_cached(c, item, "sha256:1", &r, true);
                ck_assert_str_eq(r.text, plain.text);
                data[at] ^= 0x20;
        }
        /* Truncated, and empty. */
        ck_assert_int_eq(pf_cache_record_put(c, key, data, size / 2), 0);
        walk_cached(c, item, "sha256:1", &r, false);
        ck_assert_str_eq(r.text, plain.text);
        ck_assert_int_eq(pf_cache_record_put(c, key, data, 0), 0);
        walk_cached(c, item, "sha256:1", &r, false);
        ck_assert_str_eq(r.text, plain.text);
        walk_cached(c, item, "sha256:1", &r, true);
        free(data);
        pf_cache_free(c);
}
END_TEST

START_TEST(test_records_evicted) {
        pf_cache *c = walk_cache_open(10000);
        uint8_t key[3][32] = { { 1 }, { 2 }, { 3 } }, payload[4000] = { 7 };
        pf_cache_usage u;
        void *data;
        size_t size;

        /* Records count against --cache-size like objects, oldest first out. */
        for (int i = 0; i < 3; i++) {
                ck_assert_int_eq(pf_cache_record_put(c, key[i], payload, sizeof(payload)), 0);
                struct timespec ms = { 0, 2000000 };
                nanosleep(&ms, NULL);
        }
        /* Evicted when the next object is committed. */
        pf_cache_writer *w;
        pf_cache_object o;
        ck_assert_int_eq(pf_cache_writer_new(c, key[2], &w), 0);
        ck_assert_int_eq(pf_cache_writer_write(w, "x", 1), 0);
        ck_assert_int_eq(pf_cache_writer_commit(w, &o), 0);
        pf_cache_unpin(c, key[2]);
        pf_cache_object_done(&o);
        ck_assert_int_eq(pf_cache_record_get(c, key[0], &data, &size), -ENOENT);
        ck_assert_int_eq(pf_cache_record_get(c, key[2], &data, &size), 0);
        ck_assert_uint_eq(size, sizeof(payload));
        ck_assert_mem_eq(data, payload, sizeof(payload));
        free(data);
        ck_assert_int_eq(pf_cache_get_usage(c, &u), 0);
        ck_assert_uint_eq(u.records, 2);
        ck_assert_uint_eq(u.bytes, 2 * sizeof(payload) + 1);
        /* A record not used for an hour gets its last use updated when read. */
        char dir[PATH_MAX];
        pathf(dir, "%s/cache", tmp);
        cache_index_sql(dir, "UPDATE records SET last_use = 0");
        ck_assert_int_eq(pf_cache_record_get(c, key[2], &data, &size), 0);
        free(data);
        ck_assert_int_eq(cache_index_sql(dir, "SELECT COUNT(*) FROM records WHERE last_use > 0"), 1);

        ck_assert_int_eq(pf_cache_record_drop(c, key[2]), 0);
        ck_assert_int_eq(pf_cache_record_get(c, key[2], &data, &size), -ENOENT);
        pf_cache_free(c);
}
END_TEST

/* Records are written behind: gets see them at once, other connections once
 * flushed (explicitly, when many are pending, or when the cache closes). */
START_TEST(test_records_written_behind) {
        pf_cache *c = walk_cache_open(UINT64_MAX);
        uint8_t a[32] = { 1 }, b[32] = { 2 }, many[32] = { 3 };
        char dir[PATH_MAX];
        void *data;
        size_t size;

        pathf(dir, "%s/cache", tmp);
        ck_assert_int_eq(pf_cache_record_put(c, a, "first", 5), 0);
        ck_assert_int_eq(pf_cache_record_put(c, a, "second", 6), 0);
        ck_assert_int_eq(pf_cache_record_put(c, b, "b", 1), 0);
        ck_assert_int_eq(cache_index_sql(dir, "SELECT COUNT(*) FROM records"), 0);
        ck_assert_int_eq(pf_cache_record_get(c, a, &data, &size), 0);
        ck_assert_uint_eq(size, 6);
        ck_assert_mem_eq(data, "second", 6);
        free(data);
        ck_assert_int_eq(pf_cache_record_drop(c, b), 0);
        ck_assert_int_eq(pf_cache_record_get(c, b, &data, &size), -ENOENT);
        ck_assert_int_eq(pf_cache_flush_records(c), 0);
        ck_assert_int_eq(cache_index_sql(dir, "SELECT COUNT(*) FROM records"), 1);
        ck_assert_int_eq(cache_index_sql(dir, "SELECT COUNT(*) FROM records WHERE size = 6"), 1);

        /* Many pending: written without being asked. */
        for (int i = 0; i < 600; i++) {
                many[1] = (uint8_t) i;
                many[2] = (uint8_t) (i >> 8);
                ck_assert_int_eq(pf_cache_record_put(c, many, &i, sizeof(i)), 0);
        }
        ck_assert_int_ge(cache_index_sql(dir, "SELECT COUNT(*) FROM records"), 500);
        /* The rest when the cache closes. */
        pf_cache_free(c);
        ck_assert_int_eq(cache_index_sql(dir, "SELECT COUNT(*) FROM records"), 601);
        c = walk_cache_open(UINT64_MAX);
        ck_assert_int_eq(pf_cache_record_get(c, many, &data, &size), 0);
        ck_assert_uint_eq(size, sizeof(int));
        ck_assert_int_eq(*(int *) data, 599);
        free(data);
        pf_cache_free(c);
}
END_TEST

START_TEST(test_batch) {
        enum { N = 7 };
        char paths[N][PATH_MAX], hashes[N][32];
        pf_closure_item items[N];
        record expected = {}, r;
        pf_cache *c = walk_cache_open(UINT64_MAX);
        pf_walk_batch *b;
        bool walked;

        for (int i = 0; i < N; i++) {
                char name[32];
                snprintf(name, sizeof(name), "item%d", i);
                pathf(paths[i], "%s/%s", tmp, name);
                ck_assert_int_eq(mkdir(paths[i], 0755), 0);
                fixture_mkdir(paths[i], "bin");
                for (int k = 0; k <= i; k++) {
                        char file[32];
                        snprintf(file, sizeof(file), "bin/f%d", k);
                        fixture_write_str(paths[i], file, name, 0755);
                }
                fixture_symlink(paths[i], "link", "bin/f0");
                snprintf(hashes[i], sizeof(hashes[i]), "sha256:%d", i);
                items[i] = (pf_closure_item) { .path = paths[i], .nar_hash = hashes[i] };
                ck_assert_int_eq(pf_walk(paths[i], on_entry_full, &expected), 0);
        }
        /* Items 1 and 3 recorded before; the others walked by the batch's
         * threads or the caller, and replayed in order all the same. */
        walk_cached(c, paths[1], hashes[1], &r, false);
        walk_cached(c, paths[3], hashes[3], &r, false);
        for (int round = 0; round < 2; round++) {
                memset(&r, 0, sizeof(r));
                ck_assert_int_eq(pf_walk_batch_new(c, items, N, &b), 0);
                for (size_t i = 0; i < N; i++) {
                        ck_assert_int_eq(pf_walk_batch_item(b, i, on_entry_full, &r, &walked), 0);
                        ck_assert(walked == (round == 0 && i != 1 && i != 3));
                }
                pf_walk_batch_free(b);
                ck_assert_str_eq(r.text, expected.text);
        }

        /* No cache: everything walked, nothing recorded. */
        memset(&r, 0, sizeof(r));
        ck_assert_int_eq(pf_walk_batch_new(NULL, items, N, &b), 0);
        for (size_t i = 0; i < N; i++) {
                ck_assert_int_eq(pf_walk_batch_item(b, i, on_entry_full, &r, &walked), 0);
                ck_assert(walked);
        }
        pf_walk_batch_free(b);
        ck_assert_str_eq(r.text, expected.text);

        /* A failing item (a fifo) fails at its turn; the batch can be dropped
         * with walks under way. */
        char fifo[PATH_MAX];
        pathf(fifo, "%s/bin/fifo", paths[4]);
        ck_assert_int_eq(mkfifo(fifo, 0644), 0);
        for (int i = 4; i < N; i++) /* new items, walked by the batch's threads */
                snprintf(hashes[i], sizeof(hashes[i]), "sha256:new%d", i);
        memset(&r, 0, sizeof(r));
        ck_assert_int_eq(pf_walk_batch_new(c, items, N, &b), 0);
        for (size_t i = 0; i < 4; i++)
                ck_assert_int_eq(pf_walk_batch_item(b, i, on_entry_full, &r, &walked), 0);
        ck_assert_int_eq(pf_walk_batch_item(b, 4, on_entry_full, &r, &walked), -EBADMSG);
        pf_walk_batch_free(b);
        for (int i = 0; i < 3; i++) {
                ck_assert_int_eq(pf_walk_batch_new(c, items, N, &b), 0);
                pf_walk_batch_free(b);
        }
        pf_cache_free(c);
}
END_TEST

int main(void) {
        Suite *s = suite_create("walk");
        TCase *tc = tcase_create("core");

        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_order);
        tcase_add_test(tc, test_single_file_and_symlink);
        tcase_add_test(tc, test_large_item);
        tcase_add_test(tc, test_stop);
        tcase_add_test(tc, test_fifo);
        tcase_add_test(tc, test_newline_name);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_cached_replay);
        tcase_add_test(tc, test_cached_single_entry_items);
        tcase_add_test(tc, test_cached_damage_and_failures);
        tcase_add_test(tc, test_records_evicted);
        tcase_add_test(tc, test_records_written_behind);
        tcase_add_test(tc, test_batch);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
