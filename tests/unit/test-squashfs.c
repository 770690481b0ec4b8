/* SPDX-License-Identifier: GPL-3.0-or-later */
/* pack.squashfs's pure parts: the tree's order and inode numbers, relative
 * symlink targets, 90-environment.sh's text, and the squashfs options of the
 * config. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/config.h"
#include "packfs/log.h"
#include "squashfs.h"
#include "run-suite.h"

static pf_sqfs_node *add(pf_sqfs_node *dir, const char *name, mode_t mode) {
        pf_sqfs_node *n = NULL;
        ck_assert_int_eq(pf_sqfs_node_add(dir, name, mode, S_ISLNK(mode) ? "target" : NULL, &n), 0);
        return n;
}

START_TEST(test_tree_order) {
        pf_sqfs_node *root = NULL, *store = NULL, *a, *b, *sub, *f1, *f2, *l;
        char *clash = NULL;
        uint32_t count = 0;

        ck_assert_int_eq(pf_sqfs_tree_new(0755, &root), 0);
        ck_assert_int_eq(pf_sqfs_mkdir_p(root, "/gnu/store", 0755, &store), 0);
        b = add(store, "bbb-b", S_IFDIR | 0555);
        a = add(store, "aaa-a", S_IFDIR | 0555);
        sub = add(a, "sub", S_IFDIR | 0555);
        f2 = add(sub, "z", S_IFREG | 0444);
        f1 = add(sub, "B", S_IFREG | 0444);     /* bytewise: "B" < "z" */
        l = add(b, "link", S_IFLNK | 0777);
        ck_assert_int_eq(pf_sqfs_mkdir_p(root, "/proc", 0555, NULL), 0);
        ck_assert_ptr_eq(pf_sqfs_lookup(root, "/gnu/store/aaa-a/sub/z"), f2);
        ck_assert_ptr_null(pf_sqfs_lookup(root, "/gnu/store/aaa-a/nope"));
        /* A path through a file is no directory. */
        ck_assert_int_eq(pf_sqfs_mkdir_p(root, "/gnu/store/aaa-a/sub/z/x", 0755, NULL), -ENOTDIR);

        ck_assert_int_eq(pf_sqfs_tree_finish(root, &count, &clash), 0);
        /* root gnu store aaa-a sub B z bbb-b link proc */
        ck_assert_uint_eq(count, 10);
        ck_assert_str_eq(store->children[0]->name, "aaa-a");
        ck_assert_str_eq(sub->children[0]->name, "B");
        ck_assert_str_eq(root->children[0]->name, "gnu");
        ck_assert_str_eq(root->children[1]->name, "proc");
        /* Post-order: entries before their directory, the root last. */
        ck_assert_uint_eq(f1->ino, 1);
        ck_assert_uint_eq(f2->ino, 2);
        ck_assert_uint_eq(sub->ino, 3);
        ck_assert_uint_eq(a->ino, 4);
        ck_assert_uint_eq(l->ino, 5);
        ck_assert_uint_eq(b->ino, 6);
        ck_assert_uint_eq(store->ino, 7);
        ck_assert_uint_eq(root->ino, count);
        ck_assert_uint_eq(pf_sqfs_lookup(root, "/proc")->mode, S_IFDIR | 0555);
        ck_assert_uint_eq(pf_sqfs_lookup(root, "/gnu")->mode, S_IFDIR | 0755);
        pf_sqfs_tree_free(root);
}
END_TEST

START_TEST(test_tree_clash) {
        pf_sqfs_node *root = NULL, *store = NULL;
        char *clash = NULL;
        uint32_t count = 0;

        ck_assert_int_eq(pf_sqfs_tree_new(0755, &root), 0);
        ck_assert_int_eq(pf_sqfs_mkdir_p(root, "/gnu/store", 0755, &store), 0);
        add(store, "x", S_IFDIR | 0555);
        add(store, "x", S_IFLNK | 0777);
        ck_assert_int_eq(pf_sqfs_tree_finish(root, &count, &clash), -EEXIST);
        ck_assert_str_eq(clash, "/gnu/store/x");
        free(clash);
        pf_sqfs_tree_free(root);
}
END_TEST

static void check_relative(const char *dir, const char *target, const char *want) {
        char *got = NULL;
        ck_assert_int_eq(pf_sqfs_relative_target(dir, target, &got), 0);
        ck_assert_msg(!strcmp(got, want), "%s -> %s: %s, not %s", dir, target, got, want);
        free(got);
}

START_TEST(test_relative_target) {
        check_relative("/", "/gnu/store/abc-profile/bin", "gnu/store/abc-profile/bin");
        check_relative("/usr", "/gnu/store/abc-profile/bin", "../gnu/store/abc-profile/bin");
        check_relative("/.singularity.d/actions", "/gnu/store/p/bin/sh", "../../gnu/store/p/bin/sh");
        check_relative("/gnu", "/gnu/store/p", "store/p");
        check_relative("/gnu/store", "/gnu/store", ".");
        /* A shared prefix that is not a whole component. */
        check_relative("/gn", "/gnu/store/p", "../gnu/store/p");
        check_relative("/opt/a/b", "/opt/c", "../../c");
}
END_TEST

START_TEST(test_environment_text) {
        char *vars[] = { "PATH=/gnu/store/p/bin", "EVIL=it's $(here)", "NOEQUALS", NULL };
        char *text = NULL;

        ck_assert_int_eq(pf_sqfs_environment_text(vars, &text), 0);
        ck_assert_str_eq(text, "PATH='/gnu/store/p/bin'\nexport PATH\n"
                               "EVIL='it'\\''s $(here)'\nexport EVIL\n");
        free(text);
        ck_assert_int_eq(pf_sqfs_environment_text(NULL, &text), 0);
        ck_assert_str_eq(text, "");
        free(text);
}
END_TEST

static void options_of(const char *text, pf_options *o) {
        pf_config *c = NULL;

        ck_assert_int_eq(pf_config_parse_string(text, "test.ini", &c), 0);
        ck_assert_int_eq(pf_config_options_for(c, "demo", o), 0);
        pf_config_free(c);
}

START_TEST(test_options) {
        pf_options plain = {}, unset = {}, comp = {}, level = {};
        pf_config *c = NULL;

        pf_log_open(PF_LOG_STDERR, LOG_CRIT);
        options_of("[demo]\nentry-point = bin/x\n", &plain);
        ck_assert_ptr_null(plain.squashfs_compressor);
        ck_assert_int_eq(plain.squashfs_level, -1);
        /* Unset keys leave the identity as it was before they existed. */
        options_of("[*]\nentry-point = bin/x\n", &unset);
        ck_assert(memcmp(plain.id, unset.id, 32) == 0);
        options_of("[demo]\nentry-point = bin/x\nsquashfs-compressor = xz\n", &comp);
        ck_assert_str_eq(comp.squashfs_compressor, "xz");
        ck_assert(memcmp(plain.id, comp.id, 32) != 0);
        options_of("[*]\nsquashfs-level = 3\n[demo]\nentry-point = bin/x\nsquashfs-level = 19\n", &level);
        ck_assert_int_eq(level.squashfs_level, 19);
        ck_assert(memcmp(plain.id, level.id, 32) != 0);
        ck_assert(memcmp(comp.id, level.id, 32) != 0);
        pf_options_done(&plain);
        pf_options_done(&unset);
        pf_options_done(&comp);
        pf_options_done(&level);

        static const char *const bad[] = {
                "[demo]\nsquashfs-compressor = brotli\n",
                "[demo]\nsquashfs-compressor = lzma\n",         /* libsquashfs does not write it */
                "[demo]\nsquashfs-level = 23\n",
                "[demo]\nsquashfs-level = -1\n",
                "[demo]\nsquashfs-level = high\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ck_assert_msg(pf_config_parse_string(bad[i], "test.ini", &c) == -EINVAL, "accepted: %s", bad[i]);
                ck_assert_ptr_null(c);
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("squashfs");
        TCase *tc = tcase_create("squashfs");

        tcase_add_test(tc, test_tree_order);
        tcase_add_test(tc, test_tree_clash);
        tcase_add_test(tc, test_relative_target);
        tcase_add_test(tc, test_environment_text);
        tcase_add_test(tc, test_options);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
