/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "packfs/refscan.h"
#include "run-suite.h"

#define H1 "lynkcz24r9l795ifshx0k3qpazxi1rzv"
#define H2 "qhvz1qwpkmf6i5vxr752g52yivqkj4wb"
#define H3 "xrabnx1r49hn890prhx86h6iyn19p976"

static pf_refscan *new_scanner(void) {
        pf_refscan *s = NULL;

        ck_assert_int_eq(pf_refscan_new(&s), 0);
        ck_assert_int_eq(pf_refscan_add(s, H1), 0);
        ck_assert_int_eq(pf_refscan_add(s, H2), 1);
        ck_assert_int_eq(pf_refscan_add(s, H3), 2);
        return s;
}

/* Feeds DATA in chunks of CHUNK bytes. */
static void feed_chunked(pf_refscan *s, const char *data, size_t len, size_t chunk) {
        for (size_t off = 0; off < len; off += chunk)
                ck_assert_int_eq(pf_refscan_feed(s, data + off, len - off < chunk ? len - off : chunk), 0);
}

START_TEST(test_add) {
        _cleanup_refscan_ pf_refscan *s = new_scanner();

        ck_assert_uint_eq(pf_refscan_count(s), 3);
        /* Again: the same index. */
        ck_assert_int_eq(pf_refscan_add(s, H2), 1);
        ck_assert_uint_eq(pf_refscan_count(s), 3);
        /* Not base-32: 'e', 'o', 'u', 't', upper case, too short. */
        ck_assert_int_eq(pf_refscan_add(s, "elynkcz24r9l795ifshx0k3qpazxi1rz"), -EINVAL);
        ck_assert_int_eq(pf_refscan_add(s, "Lynkcz24r9l795ifshx0k3qpazxi1rzv"), -EINVAL);
        ck_assert_int_eq(pf_refscan_add(s, "lynkcz24r9l795ifshx0k3qpazxi1rz"), -EINVAL);
        ck_assert_int_eq(pf_refscan_feed(s, "x", 1), 0);
        ck_assert_int_eq(pf_refscan_add(s, "00000000000000000000000000000000"), -EBUSY);
}
END_TEST

START_TEST(test_finds_in_one_chunk) {
        _cleanup_refscan_ pf_refscan *s = new_scanner();
        static const char text[] = "#!/bin/sh\nexec /nix/store/" H2 "-hello/bin/hello \"$@\"\n";

        ck_assert_int_eq(pf_refscan_feed(s, text, strlen(text)), 0);
        ck_assert(!pf_refscan_seen(s, 0));
        ck_assert(pf_refscan_seen(s, 1));
        ck_assert(!pf_refscan_seen(s, 2));
        ck_assert(!pf_refscan_seen(s, 3));
        ck_assert_uint_eq(pf_refscan_n_seen(s), 1);
}
END_TEST

START_TEST(test_surrounded_by_base32) {
        /* Base-32 characters on both sides: every window position must be looked at. */
        _cleanup_refscan_ pf_refscan *s = new_scanner();
        static const char text[] = "abcd0123" H1 "zzzz" H3 "99";

        ck_assert_int_eq(pf_refscan_feed(s, text, strlen(text)), 0);
        ck_assert(pf_refscan_seen(s, 0));
        ck_assert(!pf_refscan_seen(s, 1));
        ck_assert(pf_refscan_seen(s, 2));
}
END_TEST

START_TEST(test_straddles_chunks) {
        /* Every chunk size from 1 byte up, so the hash part is cut at every position. */
        static const char text[] = "prefix-with-no-refs:" H1 "/and\0binary\xff" H3 "-tail";

        for (size_t chunk = 1; chunk <= sizeof(text); chunk++) {
                _cleanup_refscan_ pf_refscan *s = new_scanner();

                feed_chunked(s, text, sizeof(text) - 1, chunk);
                ck_assert_msg(pf_refscan_seen(s, 0), "chunk %zu", chunk);
                ck_assert_msg(!pf_refscan_seen(s, 1), "chunk %zu", chunk);
                ck_assert_msg(pf_refscan_seen(s, 2), "chunk %zu", chunk);
        }
}
END_TEST

START_TEST(test_tiny_chunks_keep_tail) {
        /* Chunks shorter than a hash part: the tail must carry over several feeds. */
        _cleanup_refscan_ pf_refscan *s = new_scanner();
        static const char text[] = H2;

        for (size_t i = 0; i < 32; i += 3)
                ck_assert_int_eq(pf_refscan_feed(s, text + i, i + 3 <= 32 ? 3 : 32 - i), 0);
        ck_assert(pf_refscan_seen(s, 1));
}
END_TEST

START_TEST(test_broken_hash_not_found) {
        _cleanup_refscan_ pf_refscan *s = new_scanner();
        /* A non-base-32 byte inside, or one character short. */
        static const char text[] = "lynkcz24r9l795ife" "shx0k3qpazxi1rzv "
                                   "qhvz1qwpkmf6i5vxr752g52yivqkj4w-";

        feed_chunked(s, text, strlen(text), 7);
        ck_assert_uint_eq(pf_refscan_n_seen(s), 0);
}
END_TEST

START_TEST(test_sink_signature) {
        _cleanup_refscan_ pf_refscan *s = new_scanner();

        ck_assert_int_eq(pf_refscan_sink(s, H3, 32), 0);
        ck_assert(pf_refscan_seen(s, 2));
}
END_TEST

/* Nix's alphabet, to make random base-32 text. */
static const char b32[] = "0123456789abcdfghijklmnpqrsvwxyz";

START_TEST(test_many_candidates_random) {
        /* Against a naive search, in streams from all base-32 (a lookup at every
         * byte) to mostly separators (skipping). */
        enum { N = 2000, LEN = 1 << 20 };
        static const int separator_percent[] = { 0, 3, 10, 60 };
        static char keys[N][33];
        char *data = malloc(LEN);

        ck_assert_ptr_nonnull(data);
        srand(7);
        for (int i = 0; i < N; i++) {
                for (int j = 0; j < 32; j++)
                        keys[i][j] = b32[rand() % 32];
                keys[i][32] = 0;
        }
        for (size_t r = 0; r < sizeof(separator_percent) / sizeof(separator_percent[0]); r++) {
                _cleanup_refscan_ pf_refscan *s = NULL;

                ck_assert_int_eq(pf_refscan_new(&s), 0);
                for (int i = 0; i < N; i++)
                        ck_assert_int_eq(pf_refscan_add(s, keys[i]), i);
                for (size_t i = 0; i < LEN; i++)
                        data[i] = rand() % 100 < separator_percent[r] ? '/' : b32[rand() % 32];
                /* Plant every third key at a random place. */
                for (int i = 0; i < N; i += 3)
                        memcpy(data + (size_t) rand() % (LEN - 32), keys[i], 32);

                feed_chunked(s, data, LEN, 4093);
                for (int i = 0; i < N; i++) {
                        bool found = memmem(data, LEN, keys[i], 32) != NULL;
                        ck_assert_msg(pf_refscan_seen(s, (size_t) i) == found, "key %d, %d%%", i,
                                      separator_percent[r]);
                }
        }
        free(data);
}
END_TEST

START_TEST(test_empty_scanner) {
        _cleanup_refscan_ pf_refscan *s = NULL;

        ck_assert_int_eq(pf_refscan_new(&s), 0);
        ck_assert_int_eq(pf_refscan_feed(s, H1, 32), 0);
        ck_assert_uint_eq(pf_refscan_n_seen(s), 0);
        ck_assert(!pf_refscan_seen(s, 0));
        pf_refscan_free(NULL);
}
END_TEST

int main(void) {
        Suite *s = suite_create("refscan");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_add);
        tcase_add_test(tc, test_finds_in_one_chunk);
        tcase_add_test(tc, test_surrounded_by_base32);
        tcase_add_test(tc, test_straddles_chunks);
        tcase_add_test(tc, test_tiny_chunks_keep_tail);
        tcase_add_test(tc, test_broken_hash_not_found);
        tcase_add_test(tc, test_sink_signature);
        tcase_add_test(tc, test_many_candidates_random);
        tcase_add_test(tc, test_empty_scanner);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
