/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packfs/storepath.h"
#include "run-suite.h"

#define HASH "qhvz1qwpkmf6i5vxr752g52yivqkj4wb"
#define STORE "/nix/store"

START_TEST(test_base32_alphabet) {
        const char *alphabet = "0123456789abcdfghijklmnpqrsvwxyz";
        unsigned n = 0;

        for (int c = 0; c < 256; c++) {
                bool expected = c != 0 && strchr(alphabet, c) != NULL;
                ck_assert_msg(pf_is_base32_char((char) c) == expected, "char %d", c);
                n += expected;
        }
        ck_assert_uint_eq(n, 32);
        ck_assert(!pf_is_base32_char('e'));
        ck_assert(!pf_is_base32_char('o'));
        ck_assert(!pf_is_base32_char('u'));
        ck_assert(!pf_is_base32_char('t'));
        ck_assert(!pf_is_base32_char('A'));
}
END_TEST

START_TEST(test_basename_valid) {
        char buf[512];

        ck_assert(pf_store_basename_valid(HASH "-hello-2.12"));
        ck_assert(pf_store_basename_valid(HASH "-a"));
        ck_assert(pf_store_basename_valid(HASH "-A+b-c._?=9"));
        ck_assert(pf_store_basename_valid(HASH "--"));          /* "-" is a valid name */
        ck_assert(pf_store_basename_valid(HASH "-a.."));        /* dots are fine after the first */

        /* One bad hash character at each position of the alphabet gaps. */
        const char bad[] = { 'e', 'o', 'u', 't', 'E', 'Q', '-', '.', '/', ' ' };
        for (size_t i = 0; i < sizeof(bad); i++)
                for (size_t pos = 0; pos < 32; pos += 31) {
                        snprintf(buf, sizeof(buf), "%s-hello", HASH);
                        buf[pos] = bad[i];
                        ck_assert_msg(!pf_store_basename_valid(buf), "%s", buf);
                }
        snprintf(buf, sizeof(buf), "%s-hello", HASH);
        buf[17] = 't';
        ck_assert(!pf_store_basename_valid(buf));

        /* Hash length: 31 and 33 characters. */
        ck_assert(!pf_store_basename_valid("qhvz1qwpkmf6i5vxr752g52yivqkj4w-hello"));
        ck_assert(!pf_store_basename_valid(HASH "b-hello"));
        ck_assert(!pf_store_basename_valid(HASH));
        ck_assert(!pf_store_basename_valid(HASH "-"));
        ck_assert(!pf_store_basename_valid(HASH "_hello"));
        ck_assert(!pf_store_basename_valid(""));
        ck_assert(!pf_store_basename_valid("abc"));

        /* Name: leading dot, bad characters. */
        ck_assert(!pf_store_basename_valid(HASH "-.hidden"));
        ck_assert(!pf_store_basename_valid(HASH "-.."));
        ck_assert(!pf_store_basename_valid(HASH "-a b"));
        ck_assert(!pf_store_basename_valid(HASH "-a/b"));
        ck_assert(!pf_store_basename_valid(HASH "-a\nb"));
        ck_assert(!pf_store_basename_valid(HASH "-a:b"));
        ck_assert(!pf_store_basename_valid(HASH "-a~"));
        ck_assert(!pf_store_basename_valid(HASH "-caf\xc3\xa9"));

        /* Name length: 211 is the maximum. */
        char name[300];
        memset(name, 'n', 211);
        name[211] = 0;
        snprintf(buf, sizeof(buf), "%s-%s", HASH, name);
        ck_assert(pf_store_basename_valid(buf));
        ck_assert(pf_store_name_valid(name));
        name[211] = 'n';
        name[212] = 0;
        snprintf(buf, sizeof(buf), "%s-%s", HASH, name);
        ck_assert(!pf_store_basename_valid(buf));
        ck_assert(!pf_store_name_valid(name));
        ck_assert(!pf_store_name_valid(""));
}
END_TEST

START_TEST(test_path_basename) {
        const char *p = STORE "/" HASH "-hello";
        const char *b = pf_store_path_basename(STORE, p);

        ck_assert_ptr_eq(b, p + strlen(STORE) + 1);
        ck_assert_ptr_null(pf_store_path_basename(STORE, STORE "/" HASH "-hello/"));
        ck_assert_ptr_null(pf_store_path_basename(STORE, STORE "/" HASH "-hello/bin"));
        ck_assert_ptr_null(pf_store_path_basename(STORE, STORE "//" HASH "-hello"));
        ck_assert_ptr_null(pf_store_path_basename(STORE, STORE "/../etc"));
        ck_assert_ptr_null(pf_store_path_basename(STORE, "/etc/passwd"));
        ck_assert_ptr_null(pf_store_path_basename(STORE, STORE));
        ck_assert_ptr_null(pf_store_path_basename(STORE, STORE "/"));
        ck_assert_ptr_null(pf_store_path_basename(STORE, "/nix/storex/" HASH "-hello"));
        ck_assert_ptr_null(pf_store_path_basename(STORE, "/gnu/store/" HASH "-hello"));
        ck_assert_ptr_null(pf_store_path_basename(STORE, HASH "-hello"));
        ck_assert_ptr_nonnull(pf_store_path_basename("/gnu/store", "/gnu/store/" HASH "-hello"));
}
END_TEST

START_TEST(test_path_item_len) {
        const size_t item = strlen(STORE "/" HASH "-hello");

        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello"), item);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/bin/sh"), item);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/"), item);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/.config"), item);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/a..b/..c"), item);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/a/..."), item);

        /* "." and ".." components, at the end, in the middle, right after the item. */
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/.."), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/../x"), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/bin/../../x"), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/bin/.."), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/."), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/./bin"), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/" HASH "-hello/bin/."), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/../etc/passwd"), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/.."), 0);

        /* Not in a store item. */
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/"), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, STORE "/bad-name/bin"), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, "/etc/passwd"), 0);
        ck_assert_uint_eq(pf_store_path_item_len(STORE, "/nix/storex/" HASH "-hello"), 0);

        /* An over-long first component must not overflow the check's buffer. */
        char long_path[1024];
        int n = snprintf(long_path, sizeof(long_path), "%s/%s-", STORE, HASH);
        memset(long_path + n, 'x', 600);
        long_path[n + 600] = 0;
        ck_assert_uint_eq(pf_store_path_item_len(STORE, long_path), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("storepath");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_base32_alphabet);
        tcase_add_test(tc, test_basename_valid);
        tcase_add_test(tc, test_path_basename);
        tcase_add_test(tc, test_path_item_len);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
