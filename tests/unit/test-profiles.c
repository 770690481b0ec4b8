/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/log.h"
#include "packfs/profiles.h"
#include "fixture-tree.h"
#include "run-suite.h"

#define ITEM_A "qhvz1qwpkmf6i5vxr752g52yivqkj4wb-env-a"
#define ITEM_B "xrabnx1r49hn890prhx86h6iyn19p976-env-b"

static char tmp[PATH_MAX], store[PATH_MAX], root[PATH_MAX];

static void setup(void) {
        test_dir_make(tmp);
        pathf(store, "%s/store", tmp);
        pathf(root, "%s/profiles", tmp);
        ck_assert_int_eq(mkdir(store, 0755), 0);
        ck_assert_int_eq(mkdir(root, 0755), 0);
        pf_log_open(PF_LOG_STDERR, LOG_CRIT);
}

static void teardown(void) {
        temp_dir_remove(tmp);
}

/* Makes link REL under the profiles root pointing to TARGET; "%S" in TARGET is the
 * store, "%R" the profiles root. */
static void link_make(const char *rel, const char *target_fmt) {
        char target[PATH_MAX] = "", *o = target;

        for (const char *p = target_fmt; *p; p++) {
                if (p[0] == '%' && (p[1] == 'S' || p[1] == 'R')) {
                        o = stpcpy(o, p[1] == 'S' ? store : root);
                        p++;
                } else
                        *o++ = *p;
        }
        *o = 0;
        fixture_symlink(root, rel, target);
}

static void assert_resolves(const char *rel, const char *item_basename) {
        char *item = NULL, expected[PATH_MAX];

        pathf(expected, "%s/%s", store, item_basename);
        ck_assert_msg(pf_profile_resolve(root, store, rel, &item) == 0, "%s does not resolve", rel);
        ck_assert_str_eq(item, expected);
        free(item);
}

static void assert_fails(const char *rel, int error) {
        char *item = NULL;
        int r = pf_profile_resolve(root, store, rel, &item);

        ck_assert_msg(r == error, "%s: %d (%s), expected %d (%s)", rel, r, strerror(-r), error, strerror(-error));
        ck_assert_ptr_null(item);
}

START_TEST(test_resolve_chains) {
        /* Nix's layout: profile -> generation link (relative) -> store item. */
        link_make("demo-3-link", "%S/" ITEM_A);
        link_make("demo", "demo-3-link");
        assert_resolves("demo", ITEM_A);
        assert_resolves("demo-3-link", ITEM_A);

        /* Nested, as Guix's per-user profiles. */
        fixture_mkdir(root, "per-user");
        fixture_mkdir(root, "per-user/alice");
        link_make("per-user/alice/guix-profile-1-link", "%S/" ITEM_B);
        link_make("per-user/alice/guix-profile", "guix-profile-1-link");
        assert_resolves("per-user/alice/guix-profile", ITEM_B);

        /* "..", "." and doubled slashes inside the root are fine. */
        link_make("per-user/alice/up", "../../demo");
        assert_resolves("per-user/alice/up", ITEM_A);
        link_make("per-user/alice/dots", "./.././alice//guix-profile");
        assert_resolves("per-user/alice/dots", ITEM_B);
        link_make("down", "per-user/alice/up");
        assert_resolves("down", ITEM_A);

        /* Absolute links back into the profiles root. */
        link_make("abs", "%R/per-user/alice/guix-profile");
        assert_resolves("abs", ITEM_B);
        link_make("per-user/abs2", "%R/abs");
        assert_resolves("per-user/abs2", ITEM_B);

        /* A chain of 39 links plus the store link is within the limit. */
        char name[64], target[64];
        for (int i = 0; i < PF_PROFILE_MAX_HOPS - 1; i++) {
                snprintf(name, sizeof(name), "chain-%d", i);
                snprintf(target, sizeof(target), "chain-%d", i + 1);
                link_make(name, target);
        }
        snprintf(name, sizeof(name), "chain-%d", PF_PROFILE_MAX_HOPS - 1);
        link_make(name, "%S/" ITEM_A);
        assert_resolves("chain-0", ITEM_A);
}
END_TEST

START_TEST(test_resolve_refused) {
        link_make("etc", "/etc");
        assert_fails("etc", -EXDEV);
        link_make("passwd", "/etc/passwd");
        assert_fails("passwd", -EXDEV);
        link_make("escape", "../outside");
        assert_fails("escape", -EXDEV);
        fixture_mkdir(root, "d");
        link_make("d/escape", "../../profiles/demo");
        assert_fails("d/escape", -EXDEV);
        link_make("d/escape2", "x/../../..");
        assert_fails("d/escape2", -EXDEV);
        link_make("dot", ".");
        assert_fails("dot", -EXDEV);
        /* Into the store, but not exactly an item. */
        link_make("sub", "%S/" ITEM_A "/bin");
        assert_fails("sub", -EXDEV);
        link_make("dotdot", "%S/../etc");
        assert_fails("dotdot", -EXDEV);
        link_make("store", "%S");
        assert_fails("store", -EXDEV);
        link_make("badname", "%S/not-a-store-item");
        assert_fails("badname", -EXDEV);
        /* Absolute links to the root itself or around it. */
        link_make("rootlink", "%R");
        assert_fails("rootlink", -EXDEV);
        link_make("rootdotdot", "%R/../store/" ITEM_A);
        assert_fails("rootdotdot", -EXDEV);
        /* A link into a regular file. */
        fixture_write_str(root, "file", "", 0644);
        link_make("to-file", "file");
        assert_fails("to-file", -EXDEV);
        assert_fails("file", -EXDEV);
        /* Intermediate components must be directories, not links to them. */
        link_make("dirlink", "d");
        link_make("d/ok", "%S/" ITEM_A);
        assert_resolves("d/ok", ITEM_A);
        assert_fails("dirlink/ok", -EXDEV);
}
END_TEST

START_TEST(test_resolve_errors) {
        link_make("a", "b");
        link_make("b", "a");
        assert_fails("a", -ELOOP);
        link_make("self", "self");
        assert_fails("self", -ELOOP);
        link_make("abs-loop", "%R/abs-loop");
        assert_fails("abs-loop", -ELOOP);

        /* One hop too many. */
        char name[64], target[64];
        for (int i = 0; i < PF_PROFILE_MAX_HOPS; i++) {
                snprintf(name, sizeof(name), "chain-%d", i);
                snprintf(target, sizeof(target), "chain-%d", i + 1);
                link_make(name, target);
        }
        snprintf(name, sizeof(name), "chain-%d", PF_PROFILE_MAX_HOPS);
        link_make(name, "%S/" ITEM_A);
        assert_fails("chain-0", -ELOOP);
        assert_resolves("chain-1", ITEM_A);

        assert_fails("missing", -ENOENT);
        link_make("dangling", "nothing-here");
        assert_fails("dangling", -ENOENT);
        assert_fails("missing-dir/x", -ENOENT);
        fixture_mkdir(root, "dir");
        assert_fails("dir", -ENOTDIR);

        assert_fails("", -EINVAL);
        assert_fails("/etc", -EINVAL);
        assert_fails("../x", -EINVAL);
        assert_fails("dir/../a", -EINVAL);
        assert_fails("./a", -EINVAL);
        assert_fails("dir//a", -EINVAL);
        assert_fails("a/", -EINVAL);

        char *item = NULL;
        pathf(name, "%s/no-root", tmp);
        ck_assert_int_eq(pf_profile_resolve(name, store, "a", &item), -ENOENT);
        ck_assert_ptr_null(item);
}
END_TEST

START_TEST(test_relpath_is_clean) {
        static const char *const clean[] = { "a", "a/b", "a/b/c", "...", ".a", "a.", "..a", "a/.b/c..", "a b" };
        static const char *const unclean[] = { "", "/", "/a", "a/", "a//b", ".", "..", "./a", "a/.", "a/..",
                                               "a/./b", "a/../b", "../a", "//", "a/b/" };

        for (size_t i = 0; i < ELEMENTSOF(clean); i++)
                ck_assert_msg(pf_relpath_is_clean(clean[i]), "'%s' should be clean", clean[i]);
        for (size_t i = 0; i < ELEMENTSOF(unclean); i++)
                ck_assert_msg(!pf_relpath_is_clean(unclean[i]), "'%s' should not be clean", unclean[i]);
}
END_TEST

static void assert_list(const char *rel_dir, const char *expected) {
        pf_profile_entry *v = NULL;
        size_t n = 0;
        char text[1024] = "";

        ck_assert_int_eq(pf_profile_list(root, rel_dir, &v, &n), 0);
        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(text);
                snprintf(text + len, sizeof(text) - len, "%s%s%s", i ? " " : "", v[i].name,
                         v[i].kind == PF_PROFILE_ENTRY_DIRECTORY ? "/" : "");
        }
        ck_assert_str_eq(text, expected);
        pf_profile_entries_free(v, n);
}

START_TEST(test_list) {
        char fifo[PATH_MAX];

        assert_list("", "");
        link_make("demo", "demo-1-link");
        link_make("demo-1-link", "%S/" ITEM_A);
        link_make("Zed", "%S/" ITEM_B);
        link_make("_under", "nowhere");                 /* dangling links are still listed */
        link_make(".hidden", "%S/" ITEM_A);
        fixture_mkdir(root, ".hidden-dir");
        fixture_mkdir(root, "per-user");
        fixture_mkdir(root, "per-user/alice");
        fixture_mkdir(root, "per-user/bob");
        link_make("per-user/alice/guix-profile", "%S/" ITEM_B);
        link_make("per-user/alice/.guix-profile-tmp", "%S/" ITEM_B);
        fixture_write_str(root, "regular-file", "", 0644);
        pathf(fifo, "%s/fifo", root);
        ck_assert_int_eq(mkfifo(fifo, 0644), 0);

        /* Bytewise order ('Z' < '_' < 'd'), kinds, hidden names and other types left out. */
        assert_list("", "Zed _under demo demo-1-link per-user/");
        assert_list("per-user", "alice/ bob/");
        assert_list("per-user/alice", "guix-profile");
        assert_list("per-user/bob", "");

        pf_profile_entry *v = NULL;
        size_t n = 0;
        ck_assert_int_eq(pf_profile_list(root, "../", &v, &n), -EINVAL);
        ck_assert_int_eq(pf_profile_list(root, "/etc", &v, &n), -EINVAL);
        ck_assert_int_eq(pf_profile_list(root, "per-user/../..", &v, &n), -EINVAL);
        ck_assert_int_eq(pf_profile_list(root, "missing", &v, &n), -ENOENT);
        ck_assert_int_eq(pf_profile_list(root, "regular-file", &v, &n), -ENOTDIR);
        /* A link to a directory is not listed through. */
        link_make("per-user-link", "per-user");
        ck_assert_int_lt(pf_profile_list(root, "per-user-link", &v, &n), 0);
        ck_assert_ptr_null(v);
}
END_TEST

int main(void) {
        Suite *s = suite_create("profiles");
        TCase *tc = tcase_create("core");

        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_resolve_chains);
        tcase_add_test(tc, test_resolve_refused);
        tcase_add_test(tc, test_resolve_errors);
        tcase_add_test(tc, test_relpath_is_clean);
        tcase_add_test(tc, test_list);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
