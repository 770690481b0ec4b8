/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The pieces of docker.tar and oci/ that need no store: repository names,
 * the tree a format shows as a directory, and plan slices (a layer blob). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "packfs/plan.h"
#include "packfs/tree.h"
#include "run-suite.h"

START_TEST(test_repository_names) {
        static const char *const cases[][2] = {
                { "demo", "demo" },
                { "per-user/Alice/Guix_Profile", "per-user/alice/guix_profile" },
                { ".store/0abc-hello-2.12", "store/0abc-hello-2.12" },
                { "web+db", "web-db" },
                { "a..b", "a.b" },
                { "-x-", "x" },
                { "--", "packfs" },
                { "a//b", "a/b" },
                { "A B", "a-b" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *name = docker_repository_name(cases[i][0]);
                ck_assert_ptr_nonnull(name);
                ck_assert_msg(!strcmp(name, cases[i][1]), "%s: got %s, expected %s", cases[i][0], name, cases[i][1]);
                free(name);
        }
}
END_TEST

static pf_plan *bytes(const char *s) {
        pf_plan_builder *b = NULL;
        pf_plan *p = NULL;

        ck_assert_int_eq(pf_plan_builder_new(&b), 0);
        ck_assert_int_eq(pf_plan_add_bytes(b, s, strlen(s)), 0);
        ck_assert_int_eq(pf_plan_builder_finish(b, NULL, NULL, NULL, &p), 0);
        return p;
}

typedef struct listing {
        char text[256];
} listing;

static int list_one(void *userdata, const char *name, bool is_dir) {
        listing *l = userdata;
        strcat(l->text, name);
        strcat(l->text, is_dir ? "/ " : " ");
        return 0;
}

START_TEST(test_tree) {
        pf_tree *t = NULL;
        listing l = {};

        ck_assert_int_eq(pf_tree_new(&t), 0);
        ck_assert_int_eq(pf_tree_add(t, "oci-layout", bytes("layout")), 0);
        ck_assert_int_eq(pf_tree_add(t, "blobs/sha256/bb", bytes("b")), 0);
        ck_assert_int_eq(pf_tree_add(t, "blobs/sha256/aa", bytes("a")), 0);
        ck_assert_int_eq(pf_tree_add(t, "index.json", bytes("{}")), 0);
        /* Taken, by a file or as a directory; not clean. */
        ck_assert_int_eq(pf_tree_add(t, "index.json", bytes("x")), -EEXIST);
        ck_assert_int_eq(pf_tree_add(t, "blobs", bytes("x")), -EEXIST);
        ck_assert_int_eq(pf_tree_add(t, "oci-layout/x", bytes("x")), -EEXIST);
        ck_assert_int_eq(pf_tree_add(t, "../x", bytes("x")), -EINVAL);
        ck_assert_int_eq(pf_tree_add(t, "/x", bytes("x")), -EINVAL);
        pf_tree_freeze(t);

        ck_assert_int_eq(pf_tree_list(t, "", list_one, &l), 0);
        ck_assert_str_eq(l.text, "blobs/ index.json oci-layout ");
        l = (listing) {};
        ck_assert_int_eq(pf_tree_list(t, "blobs/sha256", list_one, &l), 0);
        ck_assert_str_eq(l.text, "aa bb ");
        ck_assert(pf_tree_is_dir(t, ""));
        ck_assert(pf_tree_is_dir(t, "blobs"));
        ck_assert(pf_tree_is_dir(t, "blobs/sha256"));
        ck_assert(!pf_tree_is_dir(t, "blob"));
        ck_assert(!pf_tree_is_dir(t, "index.json"));
        ck_assert_ptr_nonnull(pf_tree_find(t, "blobs/sha256/aa"));
        ck_assert_ptr_null(pf_tree_find(t, "blobs/sha256"));
        ck_assert_uint_eq(pf_plan_size(pf_tree_find(t, "index.json")->plan), 2);
        pf_tree_free(t);
}
END_TEST

START_TEST(test_slice) {
        pf_plan *base = bytes("0123456789"), *slice = NULL;
        char buf[16] = {};

        ck_assert_int_eq(pf_plan_slice(base, 3, 4, &slice), 0);
        ck_assert_uint_eq(pf_plan_size(slice), 4);
        ck_assert_int_eq(pf_plan_pread(slice, buf, sizeof(buf), 0), 4);
        ck_assert_str_eq(buf, "3456");
        memset(buf, 0, sizeof(buf));
        ck_assert_int_eq(pf_plan_pread(slice, buf, 2, 3), 1);
        ck_assert_str_eq(buf, "6");
        pf_plan *past_end = NULL;
        ck_assert_int_eq(pf_plan_slice(base, 8, 3, &past_end), -EINVAL);
        pf_plan_unref(base); /* the slice holds its own reference */
        memset(buf, 0, sizeof(buf));
        ck_assert_int_eq(pf_plan_pread(slice, buf, 4, 0), 4);
        ck_assert_str_eq(buf, "3456");
        pf_plan_unref(slice);
}
END_TEST

int main(void) {
        Suite *s = suite_create("oci");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_repository_names);
        tcase_add_test(tc, test_tree);
        tcase_add_test(tc, test_slice);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
