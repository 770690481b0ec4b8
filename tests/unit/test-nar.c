/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/nar.h"
#include "fixture-tree.h"
#include "run-suite.h"

static char tmp[PATH_MAX], fixture[PATH_MAX];

static void setup(void) {
        temp_dir_make(tmp);
        fixture_make(tmp, fixture);
}

static void teardown(void) {
        temp_dir_remove(tmp);
}

/* A sink that keeps everything, to look at the bytes. */
typedef struct buf_sink {
        uint8_t *data;
        size_t len;
        size_t max_chunk;
        unsigned calls;
        int fail_at; /* call number that fails, 0 = never */
} buf_sink;

static int buf_sink_fn(void *userdata, const void *data, size_t len) {
        buf_sink *b = userdata;

        b->calls++;
        if (b->fail_at && (int) b->calls == b->fail_at)
                return -ENOSPC;
        b->data = realloc(b->data, b->len + len);
        ck_assert_ptr_nonnull(b->data);
        memcpy(b->data + b->len, data, len);
        b->len += len;
        if (len > b->max_chunk)
                b->max_chunk = len;
        return 0;
}

static void assert_hash(const char *path, const char *hex, uint64_t size) {
        uint8_t sha[32];
        char got[65];
        uint64_t n = 0;

        ck_assert_int_eq(pf_nar_hash(path, sha, &n), 0);
        hex_of(sha, 32, got);
        ck_assert_str_eq(got, hex);
        ck_assert_uint_eq(n, size);
}

START_TEST(test_fixture_hash) {
        /* Constants from `nix-store --dump fixture | sha256sum` and `| wc -c`. */
        assert_hash(fixture, FIXTURE_NAR_SHA256, FIXTURE_NAR_SIZE);
}
END_TEST

START_TEST(test_single_nodes) {
        char p[PATH_MAX];

        /* Nix 2.8: nix-store --dump on the same nodes. */
        pathf(p, "%s/hello.txt", fixture);
        assert_hash(p, "5849379a8b8cbfc4131d0c0f89ad020ea270d85f161e257b7d52135b58337ece", 128);
        pathf(p, "%s/bin/link", fixture);
        assert_hash(p, "b89931f8448c6ce68e91cd7136b322e1715c95ffba5ebffc092f3353a08ea1ca", 120);
        pathf(p, "%s/big.bin", fixture);
        assert_hash(p, "cdd44d79e000b362d0cf2394d1a9f87ebab7a7ae7a720a5ed5b6b30f8a26b5b3", 200112);
}
END_TEST

START_TEST(test_regular_bytes) {
        static const char expected[] =
                "\x0d\0\0\0\0\0\0\0" "nix-archive-1\0\0\0"
                "\x01\0\0\0\0\0\0\0" "(\0\0\0\0\0\0\0"
                "\x04\0\0\0\0\0\0\0" "type\0\0\0\0"
                "\x07\0\0\0\0\0\0\0" "regular\0"
                "\x0a\0\0\0\0\0\0\0" "executable\0\0\0\0\0\0"
                "\0\0\0\0\0\0\0\0"
                "\x08\0\0\0\0\0\0\0" "contents"
                "\x03\0\0\0\0\0\0\0" "u\n\n\0\0\0\0\0"
                "\x01\0\0\0\0\0\0\0" ")\0\0\0\0\0\0\0";
        buf_sink b = {};
        char p[PATH_MAX];

        pathf(p, "%s/x", tmp);
        fixture_write_str(tmp, "x", "u\n\n", 0500);
        ck_assert_int_eq(pf_nar_dump(p, buf_sink_fn, &b), 0);
        ck_assert_uint_eq(b.len, sizeof(expected) - 1);
        ck_assert_mem_eq(b.data, expected, b.len);
        free(b.data);
}
END_TEST

START_TEST(test_streams_in_chunks) {
        buf_sink b = {};

        ck_assert_int_eq(pf_nar_dump(fixture, buf_sink_fn, &b), 0);
        ck_assert_uint_eq(b.len, FIXTURE_NAR_SIZE);
        ck_assert_uint_le(b.max_chunk, 64 * 1024);
        ck_assert_uint_ge(b.calls, 3);
        free(b.data);
}
END_TEST

START_TEST(test_sink_error) {
        buf_sink b = { .fail_at = 2 };

        ck_assert_int_eq(pf_nar_dump(fixture, buf_sink_fn, &b), -ENOSPC);
        free(b.data);
}
END_TEST

START_TEST(test_refuses_special_files) {
        char p[PATH_MAX];
        uint8_t sha[32];

        pathf(p, "%s/fifo", tmp);
        ck_assert_int_eq(mkfifo(p, 0644), 0);
        ck_assert_int_eq(pf_nar_hash(p, sha, NULL), -EINVAL);

        pathf(p, "%s/fifo", fixture);
        ck_assert_int_eq(mkfifo(p, 0644), 0);
        ck_assert_int_eq(pf_nar_hash(fixture, sha, NULL), -EINVAL);
}
END_TEST

START_TEST(test_missing) {
        char p[PATH_MAX];
        uint8_t sha[32];

        pathf(p, "%s/nope", tmp);
        ck_assert_int_eq(pf_nar_hash(p, sha, NULL), -ENOENT);
        ck_assert_int_eq(pf_nar_dump(NULL, buf_sink_fn, NULL), -EINVAL);
}
END_TEST

START_TEST(test_hasher) {
        pf_nar_hasher *h = NULL;
        uint8_t sha[32], again[32];
        uint64_t size;
        char hex[65];

        ck_assert_int_eq(pf_nar_hasher_new(&h), 0);
        ck_assert_int_eq(pf_nar_hasher_sink(h, "ab", 2), 0);
        ck_assert_int_eq(pf_nar_hasher_sink(h, "c", 1), 0);
        pf_nar_hasher_finish(h, sha, &size);
        hex_of(sha, 32, hex);
        ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        ck_assert_uint_eq(size, 3);
        ck_assert_int_eq(pf_nar_hasher_sink(h, "x", 1), -EINVAL);
        pf_nar_hasher_finish(h, again, NULL);
        ck_assert_mem_eq(again, sha, 32);
        pf_nar_hasher_free(h);
        pf_nar_hasher_free(NULL);
}
END_TEST

int main(void) {
        Suite *s = suite_create("nar");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_fixture_hash);
        tcase_add_test(tc, test_single_nodes);
        tcase_add_test(tc, test_regular_bytes);
        tcase_add_test(tc, test_streams_in_chunks);
        tcase_add_test(tc, test_sink_error);
        tcase_add_test(tc, test_refuses_special_files);
        tcase_add_test(tc, test_missing);
        tcase_add_test(tc, test_hasher);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
