/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/log.h"
#include "packfs/plan.h"
#include "fixture-tree.h"
#include "run-suite.h"

static char tmp[PATH_MAX];

static void setup(void) {
        test_dir_make(tmp);
        pf_log_open(PF_LOG_STDERR, LOG_CRIT);
}

static void teardown(void) {
        temp_dir_remove(tmp);
}

/* The bytes of GENERATED extent COOKIE at OFFSET: a pattern a misplaced offset
 * or cookie cannot reproduce. */
static uint8_t gen_byte(uint64_t cookie, uint64_t offset) {
        return (uint8_t) (cookie * 37 + offset * 11 + (offset >> 8) + 1);
}

typedef struct gen_data {
        unsigned magic;
        unsigned *freed;        /* counts free_data calls */
        uint64_t fail_cookie;   /* generate fails for this cookie */
} gen_data;

static int generate(const void *format_data, uint64_t cookie, uint64_t offset, void *buf, size_t len) {
        const gen_data *d = format_data;

        ck_assert_uint_eq(d->magic, 0x5eed);
        if (cookie == d->fail_cookie)
                return -ENOTRECOVERABLE;
        for (size_t i = 0; i < len; i++)
                ((uint8_t *) buf)[i] = gen_byte(cookie, offset + i);
        return 0;
}

static void gen_free(void *p) {
        gen_data *d = p;

        (*d->freed)++;
        free(d);
}

static gen_data *gen_new(unsigned *freed) {
        gen_data *d = calloc(1, sizeof(*d));

        ck_assert_ptr_nonnull(d);
        d->magic = 0x5eed;
        d->freed = freed;
        d->fail_cookie = UINT64_MAX;
        return d;
}

/* A plan under construction and the bytes it must read back as. */
typedef struct model {
        pf_plan_builder *b;
        uint8_t ref[65536];
        size_t size;
} model;

static void model_bytes(model *m, const void *data, size_t len) {
        ck_assert_int_eq(pf_plan_add_bytes(m->b, data, len), 0);
        memcpy(m->ref + m->size, data, len);
        m->size += len;
}

static void model_zero(model *m, size_t len) {
        ck_assert_int_eq(pf_plan_add_zero(m->b, len), 0);
        memset(m->ref + m->size, 0, len);
        m->size += len;
}

static void model_generated(model *m, size_t len, uint64_t cookie) {
        ck_assert_int_eq(pf_plan_add_generated(m->b, len, cookie), 0);
        for (size_t i = 0; i < len; i++)
                m->ref[m->size + i] = gen_byte(cookie, i);
        m->size += len;
}

/* Adds [OFF, OFF+LEN) of file PATH, whose whole content is CONTENT. */
static void model_file(model *m, const char *path, const uint8_t *content, size_t file_size, size_t off,
                       size_t len) {
        struct stat st;

        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_size, file_size);
        const char *ipath = pf_plan_intern(m->b, path);
        ck_assert_ptr_nonnull(ipath);
        ck_assert_int_eq(pf_plan_add_file(m->b, ipath, file_size, st.st_mtime, off, len), 0);
        memcpy(m->ref + m->size, content + off, len);
        m->size += len;
}

START_TEST(test_builder_merging) {
        pf_plan_builder *b = NULL;
        pf_plan *p = NULL;
        unsigned freed = 0;
        const pf_extent *e;

        ck_assert_int_eq(pf_plan_builder_new(&b), 0);
        ck_assert_uint_eq(pf_plan_builder_size(b), 0);
        ck_assert_int_eq(pf_plan_add_bytes(b, "abc", 3), 0);
        ck_assert_int_eq(pf_plan_add_bytes(b, "", 0), 0);
        ck_assert_int_eq(pf_plan_add_bytes(b, "defg", 4), 0);          /* merged: 0 "abcdefg" */
        ck_assert_int_eq(pf_plan_add_zero(b, 0), 0);
        ck_assert_int_eq(pf_plan_add_zero(b, 5), 0);
        ck_assert_int_eq(pf_plan_add_zero(b, 6), 0);                   /* merged: 1 zero 11 */
        ck_assert_int_eq(pf_plan_add_generated(b, 0, 9), 0);
        ck_assert_int_eq(pf_plan_add_bytes(b, "hi", 2), 0);            /* 2 "hi" */
        ck_assert_int_eq(pf_plan_add_generated(b, 10, 1), 0);          /* 3 */
        ck_assert_int_eq(pf_plan_add_generated(b, 10, 2), 0);          /* 4: never merged */
        ck_assert_int_eq(pf_plan_add_bytes(b, "jk", 2), 0);            /* 5 "jk" */
        ck_assert_int_eq(pf_plan_add_zero(b, 1), 0);                   /* 6 */
        ck_assert_int_eq(pf_plan_add_bytes(b, "l", 1), 0);             /* 7 "l" */
        ck_assert_int_eq(pf_plan_add_file(b, pf_plan_intern(b, "/f"), 100, 7, 0, 0), 0);
        ck_assert_int_eq(pf_plan_add_file(b, pf_plan_intern(b, "/f"), 100, 7, 0, 50), 0); /* 8 */
        ck_assert_int_eq(pf_plan_add_file(b, pf_plan_intern(b, "/f"), 100, 7, 50, 50), 0); /* 9: not merged */
        ck_assert_int_eq(pf_plan_add_zero(b, 3), 0);                   /* 10 */
        ck_assert_uint_eq(pf_plan_builder_size(b), 7 + 11 + 2 + 20 + 2 + 1 + 1 + 100 + 3);
        ck_assert_int_eq(pf_plan_builder_finish(b, generate, gen_new(&freed), gen_free, &p), 0);

        ck_assert_uint_eq(pf_plan_size(p), 147);
        ck_assert_uint_eq(pf_plan_n_extents(p), 11);
        static const uint32_t kinds[] = {
                PF_EXTENT_BYTES, PF_EXTENT_ZERO,  PF_EXTENT_BYTES, PF_EXTENT_GENERATED,
                PF_EXTENT_GENERATED, PF_EXTENT_BYTES, PF_EXTENT_ZERO, PF_EXTENT_BYTES,
                PF_EXTENT_FILE, PF_EXTENT_FILE, PF_EXTENT_ZERO,
        };
        static const uint64_t lengths[] = { 7, 11, 2, 10, 10, 2, 1, 1, 50, 50, 3 };
        uint64_t at = 0;
        for (size_t i = 0; i < 11; i++) {
                e = pf_plan_extent(p, i);
                ck_assert_msg(e->kind == kinds[i], "extent %zu: kind %u", i, e->kind);
                ck_assert_msg(e->length == lengths[i], "extent %zu: length %llu", i,
                              (unsigned long long) e->length);
                ck_assert_uint_eq(e->offset, at);
                at += e->length;
        }
        /* Cookies, file offsets and the file table. */
        ck_assert_uint_eq(pf_plan_extent(p, 3)->arg, 1);
        ck_assert_uint_eq(pf_plan_extent(p, 4)->arg, 2);
        ck_assert_uint_eq(pf_plan_extent(p, 8)->arg, 0);
        ck_assert_uint_eq(pf_plan_extent(p, 9)->arg, 50);
        ck_assert_uint_ne(pf_plan_extent(p, 8)->file, pf_plan_extent(p, 9)->file);
        const pf_plan_file *f = pf_plan_file_at(p, pf_plan_extent(p, 9)->file);
        ck_assert_str_eq(f->path, "/f");
        ck_assert_uint_eq(f->size, 100);
        ck_assert_int_eq(f->mtime, 7);

        /* The memory-backed extents read back what was appended. */
        uint8_t buf[16];
        ck_assert_int_eq(pf_plan_pread(p, buf, 7, 0), 7);
        ck_assert_int_eq(memcmp(buf, "abcdefg", 7), 0);
        ck_assert_int_eq(pf_plan_pread(p, buf, 2, 18), 2);
        ck_assert_int_eq(memcmp(buf, "hi", 2), 0);
        ck_assert_int_eq(pf_plan_pread(p, buf, 4, 40), 4);
        ck_assert_int_eq(memcmp(buf, "jk\0l", 4), 0);
        ck_assert_int_eq(pf_plan_fill(p, pf_plan_extent(p, 0), 3, buf, 4), 0);
        ck_assert_int_eq(memcmp(buf, "defg", 4), 0);
        ck_assert_int_eq(pf_plan_fill(p, pf_plan_extent(p, 4), 5, buf, 1), 0);
        ck_assert_uint_eq(buf[0], gen_byte(2, 5));
        ck_assert_int_eq(pf_plan_fill(p, pf_plan_extent(p, 8), 0, buf, 1), -EINVAL);

        ck_assert_uint_eq(freed, 0);
        pf_plan_unref(p);
        ck_assert_uint_eq(freed, 1);
}
END_TEST

START_TEST(test_find) {
        /* Plans of 1..40 extents of lengths 1, 2, 3, ...: every offset, every boundary. */
        for (size_t n = 1; n <= 40; n++) {
                pf_plan_builder *b = NULL;
                pf_plan *p = NULL;

                ck_assert_int_eq(pf_plan_builder_new(&b), 0);
                for (size_t i = 0; i < n; i++)
                        ck_assert_int_eq(pf_plan_add_generated(b, (i % 7) + 1, i), 0);
                ck_assert_int_eq(pf_plan_builder_finish(b, NULL, NULL, NULL, &p), 0);
                ck_assert_uint_eq(pf_plan_n_extents(p), n);
                size_t expected = 0;
                for (uint64_t off = 0; off < pf_plan_size(p); off++) {
                        const pf_extent *e = pf_plan_extent(p, expected);
                        if (off == e->offset + e->length)
                                expected++;
                        size_t got = pf_plan_find(p, off);
                        ck_assert_msg(got == expected, "n %zu offset %llu: extent %zu, expected %zu", n,
                                      (unsigned long long) off, got, expected);
                        ck_assert_uint_eq(pf_plan_extent(p, got)->arg, expected);
                }
                ck_assert_uint_eq(expected, n - 1);
                pf_plan_unref(p);
        }
}
END_TEST

/* Builds the mixed plan used by the read tests into M; files in tmp. */
static pf_plan *mixed_plan(model *m, unsigned *freed, char paths[2][PATH_MAX], uint8_t *contents[2],
                           size_t sizes[2]) {
        static uint8_t a[3000], b2[700];
        pf_plan *p = NULL;

        for (size_t i = 0; i < sizeof(a); i++)
                a[i] = (uint8_t) (i * 13 + 5);
        for (size_t i = 0; i < sizeof(b2); i++)
                b2[i] = (uint8_t) (255 - i * 3);
        fixture_write(tmp, "a", a, sizeof(a), 0644);
        fixture_write(tmp, "b", b2, sizeof(b2), 0644);
        pathf(paths[0], "%s/a", tmp);
        pathf(paths[1], "%s/b", tmp);
        contents[0] = a;
        contents[1] = b2;
        sizes[0] = sizeof(a);
        sizes[1] = sizeof(b2);

        memset(m, 0, sizeof(*m));
        ck_assert_int_eq(pf_plan_builder_new(&m->b), 0);
        uint8_t hdr[600];
        for (size_t i = 0; i < sizeof(hdr); i++)
                hdr[i] = (uint8_t) (i ^ 0xa5);
        model_bytes(m, hdr, 1);
        model_bytes(m, hdr + 1, 100);
        model_generated(m, 512, 7);
        model_file(m, paths[0], a, sizeof(a), 0, 1);
        model_file(m, paths[0], a, sizeof(a), 1, 2999);
        model_zero(m, 1);
        model_zero(m, 510);
        model_generated(m, 1, 8);
        model_file(m, paths[1], b2, sizeof(b2), 123, 333);
        model_bytes(m, hdr + 101, 499);
        model_file(m, paths[0], a, sizeof(a), 2999, 1);
        model_file(m, paths[1], b2, sizeof(b2), 0, 700);
        model_generated(m, 1024, 9);
        model_zero(m, 1024);
        ck_assert_int_eq(pf_plan_builder_finish(m->b, generate, gen_new(freed), gen_free, &p), 0);
        m->b = NULL;
        ck_assert_uint_eq(pf_plan_size(p), m->size);
        return p;
}

START_TEST(test_pread_everywhere) {
        static const size_t lengths[] = { 1, 2, 3, 7, 100, 511, 512, 513, 4097, 65536 };
        char paths[2][PATH_MAX];
        uint8_t *contents[2], buf[65536];
        size_t sizes[2];
        unsigned freed = 0;
        model m;
        pf_plan *p = mixed_plan(&m, &freed, paths, contents, sizes);

        for (size_t off = 0; off <= m.size; off++)
                for (size_t k = 0; k < ELEMENTSOF(lengths); k++) {
                        size_t len = lengths[k];
                        size_t want = off + len <= m.size ? len : m.size - off;
                        memset(buf, 0xee, len);
                        ssize_t n = pf_plan_pread(p, buf, len, off);
                        /* Plain tests: every ck_assert costs check a write to its parent. */
                        if (n != (ssize_t) want)
                                ck_abort_msg("offset %zu len %zu: %zd, expected %zu", off, len, n, want);
                        if (memcmp(buf, m.ref + off, want) != 0)
                                ck_abort_msg("offset %zu len %zu: wrong bytes", off, len);
                        /* Nothing written past what was read. */
                        if (want < len && buf[want] != 0xee)
                                ck_abort_msg("offset %zu len %zu: wrote past the end", off, len);
                }
        ck_assert_int_eq(pf_plan_pread(p, buf, 10, m.size + 1), 0);
        ck_assert_int_eq(pf_plan_pread(p, buf, 10, UINT64_MAX), 0);
        ck_assert_int_eq(pf_plan_pread(p, buf, 0, 0), 0);
        pf_plan_unref(p);
        ck_assert_uint_eq(freed, 1);
}
END_TEST

/* Reads the whole plan; returns pf_plan_pread's result. */
static ssize_t read_all(pf_plan *p, uint8_t *buf) {
        return pf_plan_pread(p, buf, (size_t) pf_plan_size(p), 0);
}

START_TEST(test_file_changed) {
        char paths[2][PATH_MAX];
        uint8_t *contents[2], buf[65536];
        size_t sizes[2];
        unsigned freed = 0;
        model m;
        pf_plan *p = mixed_plan(&m, &freed, paths, contents, sizes);
        const pf_extent *fe = pf_plan_extent(p, 3);

        ck_assert_int_eq(fe->kind, PF_EXTENT_FILE);
        ck_assert_int_eq(read_all(p, buf), (ssize_t) m.size);
        int fd = pf_plan_open_file(p, fe);
        ck_assert_int_ge(fd, 0);
        close(fd);

        /* Same size, other mtime. */
        struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = 12345 } };
        ck_assert_int_eq(utimensat(AT_FDCWD, paths[0], times, 0), 0);
        ck_assert_int_eq(pf_plan_open_file(p, fe), -EIO);
        ck_assert_int_eq(read_all(p, buf), -EIO);
        /* Reads that do not touch the changed file still work. */
        ck_assert_int_eq(pf_plan_pread(p, buf, 101 + 512, 0), 101 + 512);
        ck_assert_int_eq(memcmp(buf, m.ref, 101 + 512), 0);
        ck_assert_int_eq(pf_plan_pread(p, buf, 1, 101 + 512), -EIO);

        /* Back to the planned mtime: readable again. */
        times[1] = (struct timespec) { .tv_sec = pf_plan_file_at(p, fe->file)->mtime };
        ck_assert_int_eq(utimensat(AT_FDCWD, paths[0], times, 0), 0);
        ck_assert_int_eq(read_all(p, buf), (ssize_t) m.size);
        ck_assert_int_eq(memcmp(buf, m.ref, m.size), 0);

        /* Other size, same mtime. */
        int wfd = open(paths[0], O_WRONLY | O_APPEND);
        ck_assert_int_ge(wfd, 0);
        ck_assert_int_eq(write(wfd, "x", 1), 1);
        close(wfd);
        ck_assert_int_eq(utimensat(AT_FDCWD, paths[0], times, 0), 0);
        ck_assert_int_eq(pf_plan_open_file(p, fe), -EIO);
        ck_assert_int_eq(read_all(p, buf), -EIO);
        ck_assert_int_eq(truncate(paths[0], (off_t) sizes[0]), 0);
        ck_assert_int_eq(utimensat(AT_FDCWD, paths[0], times, 0), 0);
        ck_assert_int_eq(read_all(p, buf), (ssize_t) m.size);

        /* Gone, then replaced by a symlink to an identical file. */
        char moved[PATH_MAX];
        pathf(moved, "%s/a.moved", tmp);
        ck_assert_int_eq(rename(paths[0], moved), 0);
        ck_assert_int_eq(read_all(p, buf), -EIO);
        ck_assert_int_eq(symlink(moved, paths[0]), 0);
        ck_assert_int_eq(read_all(p, buf), -EIO);
        ck_assert_int_eq(unlink(paths[0]), 0);
        ck_assert_int_eq(rename(moved, paths[0]), 0);
        ck_assert_int_eq(read_all(p, buf), (ssize_t) m.size);

        /* A directory in its place. */
        ck_assert_int_eq(rename(paths[1], moved), 0);
        ck_assert_int_eq(mkdir(paths[1], 0755), 0);
        ck_assert_int_eq(read_all(p, buf), -EIO);
        pf_plan_unref(p);
}
END_TEST

START_TEST(test_generate_error) {
        pf_plan_builder *b = NULL;
        pf_plan *p = NULL;
        unsigned freed = 0;
        uint8_t buf[32];
        gen_data *d = gen_new(&freed);

        /* A format's error reaches the reader, and only for reads touching its extent. */
        d->fail_cookie = 2;
        ck_assert_int_eq(pf_plan_builder_new(&b), 0);
        ck_assert_int_eq(pf_plan_add_generated(b, 10, 1), 0);
        ck_assert_int_eq(pf_plan_add_generated(b, 10, 2), 0);
        ck_assert_int_eq(pf_plan_add_zero(b, 10), 0);
        ck_assert_int_eq(pf_plan_builder_finish(b, generate, d, gen_free, &p), 0);
        ck_assert_int_eq(pf_plan_pread(p, buf, 10, 0), 10);
        ck_assert_uint_eq(buf[9], gen_byte(1, 9));
        ck_assert_int_eq(pf_plan_pread(p, buf, 11, 0), -ENOTRECOVERABLE);
        ck_assert_int_eq(pf_plan_pread(p, buf, 1, 15), -ENOTRECOVERABLE);
        ck_assert_int_eq(pf_plan_pread(p, buf, 10, 20), 10);
        pf_plan_unref(p);
        ck_assert_uint_eq(freed, 1);
}
END_TEST

START_TEST(test_refcount) {
        pf_plan_builder *b = NULL;
        pf_plan *p = NULL;
        unsigned freed = 0;
        uint8_t buf[4];

        ck_assert_int_eq(pf_plan_builder_new(&b), 0);
        ck_assert_int_eq(pf_plan_add_bytes(b, "data", 4), 0);
        ck_assert_int_eq(pf_plan_builder_finish(b, generate, gen_new(&freed), gen_free, &p), 0);
        ck_assert_ptr_eq(pf_plan_ref(p), p);
        ck_assert_ptr_eq(pf_plan_ref(p), p);
        pf_plan_unref(p);
        pf_plan_unref(p);
        ck_assert_uint_eq(freed, 0);
        /* Still usable with the last reference. */
        ck_assert_int_eq(pf_plan_pread(p, buf, 4, 0), 4);
        ck_assert_int_eq(memcmp(buf, "data", 4), 0);
        pf_plan_unref(p);
        ck_assert_uint_eq(freed, 1);
        pf_plan_unref(NULL);

        /* An empty plan; a plan without format data. */
        ck_assert_int_eq(pf_plan_builder_new(&b), 0);
        ck_assert_int_eq(pf_plan_builder_finish(b, NULL, NULL, NULL, &p), 0);
        ck_assert_uint_eq(pf_plan_size(p), 0);
        ck_assert_uint_eq(pf_plan_n_extents(p), 0);
        ck_assert_int_eq(pf_plan_pread(p, buf, 4, 0), 0);
        pf_plan_unref(p);

        /* A builder freed without finishing. */
        ck_assert_int_eq(pf_plan_builder_new(&b), 0);
        ck_assert_int_eq(pf_plan_add_bytes(b, "x", 1), 0);
        ck_assert_ptr_nonnull(pf_plan_intern(b, "y"));
        pf_plan_builder_free(b);
        pf_plan_builder_free(NULL);
}
END_TEST

START_TEST(test_intern) {
        pf_plan_builder *b = NULL;
        pf_plan *p = NULL;
        const char *first, *big_s, *s[5000];
        char name[32];
        static char big[100000];

        ck_assert_int_eq(pf_plan_builder_new(&b), 0);
        first = pf_plan_intern(b, "first");
        /* Enough strings to need several blocks, and one larger than a block. */
        for (size_t i = 0; i < ELEMENTSOF(s); i++) {
                snprintf(name, sizeof(name), "string-%zu-padding-padding", i);
                s[i] = pf_plan_intern(b, name);
                ck_assert_ptr_nonnull(s[i]);
                ck_assert_ptr_ne(s[i], name);
        }
        memset(big, 'b', sizeof(big) - 1);
        big_s = pf_plan_intern(b, big);
        ck_assert_ptr_nonnull(pf_plan_intern(b, "after"));
        ck_assert_int_eq(pf_plan_add_file(b, s[4999], 1, 1, 0, 1), 0);
        ck_assert_int_eq(pf_plan_builder_finish(b, NULL, NULL, NULL, &p), 0);
        /* Every pointer still holds its string once the plan is frozen. */
        ck_assert_str_eq(first, "first");
        for (size_t i = 0; i < ELEMENTSOF(s); i++) {
                snprintf(name, sizeof(name), "string-%zu-padding-padding", i);
                ck_assert_str_eq(s[i], name);
        }
        ck_assert_str_eq(big_s, big);
        ck_assert_ptr_eq(pf_plan_file_at(p, 0)->path, s[4999]);
        pf_plan_unref(p);
}
END_TEST

int main(void) {
        Suite *s = suite_create("plan");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 120);
        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_builder_merging);
        tcase_add_test(tc, test_find);
        tcase_add_test(tc, test_pread_everywhere);
        tcase_add_test(tc, test_file_changed);
        tcase_add_test(tc, test_generate_error);
        tcase_add_test(tc, test_refcount);
        tcase_add_test(tc, test_intern);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
