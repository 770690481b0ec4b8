/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/log.h"
#include "packfs/walk.h"
#include "fixture-tree.h"

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

int main(void) {
        Suite *s = suite_create("walk");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_order);
        tcase_add_test(tc, test_single_file_and_symlink);
        tcase_add_test(tc, test_stop);
        tcase_add_test(tc, test_fifo);
        tcase_add_test(tc, test_newline_name);
        tcase_add_test(tc, test_errors);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
