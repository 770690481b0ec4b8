/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The package a profile stands for (package.h): name splitting, Guix
 * manifests, generation names, and the choice between them over a real store. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "packfs/log.h"
#include "packfs/package.h"
#include "packfs/store.h"
#include "packfs/storewrite.h"
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

static void check_split(const char *in, const char *name, const char *version) {
        char *n = NULL, *v = NULL;

        ck_assert_int_eq(pf_package_split_name(in, &n, &v), 0);
        ck_assert_str_eq(n, name);
        if (version)
                ck_assert_str_eq(v, version);
        else
                ck_assert_ptr_null(v);
        free(n);
        free(v);
}

START_TEST(test_split_name) {
        check_split("hello-2.12.1", "hello", "2.12.1");
        check_split("python3-3.11.2", "python3", "3.11.2");
        check_split("gcc-toolchain-12.3.0", "gcc-toolchain", "12.3.0");
        check_split("profile", "profile", NULL);
        check_split("user-environment", "user-environment", NULL);
        check_split("font-dejavu-2.37-", "font-dejavu", "2.37-");
        check_split("x-", "x", "");
}
END_TEST

static void check_base(const char *in, const char *expected) {
        char *s = pf_profile_base_name(in);

        ck_assert_str_eq(s, expected);
        free(s);
}

START_TEST(test_profile_base_name) {
        check_base("demo-3-link", "demo");
        check_base("per-user/alice/guix-profile-12-link", "per-user/alice/guix-profile");
        check_base("demo", "demo");
        check_base("demo-link", "demo-link");     /* no generation number */
        check_base("-3-link", "-3-link");         /* nothing before it */
        check_base("demo3-link", "demo3-link");   /* no dash before the number */
}
END_TEST

START_TEST(test_guix_manifest) {
        char **names = NULL, **versions = NULL;
        size_t n = 0;

        ck_assert_int_eq(pf_guix_manifest_packages(";; a comment\n"
                                                   "(manifest\n (version 4)\n (packages ((\"hello\" \"2.12.1\" \"out\" "
                                                   "\"/gnu/store/x-hello-2.12.1\" (propagated-inputs ((\"dep\" \"1\" "
                                                   "\"out\" \"/gnu/store/y-dep-1\" (propagated-inputs ())))) "
                                                   "(search-paths ()) (properties ())))))\n",
                                                   &names, &versions, &n),
                         0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(names[0], "hello");
        ck_assert_str_eq(versions[0], "2.12.1");
        pf_strv_free(names);
        pf_strv_free(versions);

        ck_assert_int_eq(pf_guix_manifest_packages("(manifest (version 3) (packages ((\"a\\\"q\" \"1\" \"out\" \"/p\") "
                                                   "(\"b\" \"2\" \"out\" \"/q\"))))",
                                                   &names, &versions, &n),
                         0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(names[0], "a\"q");
        ck_assert_str_eq(versions[1], "2");
        pf_strv_free(names);
        pf_strv_free(versions);

        /* Not a manifest, or a broken one. */
        ck_assert_int_eq(pf_guix_manifest_packages("", &names, &versions, &n), -EBADMSG);
        ck_assert_int_eq(pf_guix_manifest_packages("{\"elements\": []}", &names, &versions, &n), -EBADMSG);
        ck_assert_int_eq(pf_guix_manifest_packages("(manifest (version 3))", &names, &versions, &n), -EBADMSG);
        ck_assert_int_eq(pf_guix_manifest_packages("(manifest (packages ((\"a\" \"1\"", &names, &versions, &n),
                         -EBADMSG);
        ck_assert_int_eq(pf_guix_manifest_packages("(manifest (packages ((1 2))))", &names, &versions, &n),
                         -EBADMSG);
        ck_assert_int_eq(pf_guix_manifest_packages("(manifest (packages ((\"a", &names, &versions, &n), -EBADMSG);
}
END_TEST

/* A store of its own under tmp: STORE, DB. */
static void make_store(char *store, char *db) {
        pathf(store, "%s/store", tmp);
        pathf(db, "%s/db.sqlite", tmp);
        ck_assert_int_eq(pf_store_init(store, db), 0);
}

/* Adds DIR/NAME (a directory with bin/NAME) to the store. */
static char *add_package(const char *store, const char *db, const char *name) {
        char src[PATH_MAX], rel[PATH_MAX];
        char *item = NULL;

        pathf(src, "%s/%s", tmp, name);
        fixture_mkdir(tmp, name);
        pathf(rel, "%s/bin", name);
        fixture_mkdir(tmp, rel);
        pathf(rel, "%s/bin/%s", name, name);
        fixture_write_str(tmp, rel, "#!/bin/sh\n", 0755);
        ck_assert_int_eq(pf_store_add(store, db, src, &item), 0);
        return item;
}

static void check_package(pf_store *s, const char *store, const char *root, const char *view, const char *name,
                          const char *version) {
        char *n = NULL, *v = NULL;

        ck_assert_int_eq(pf_package_of_profile(s, store, root, view, &n, &v), 0);
        ck_assert_str_eq(n, name);
        if (version)
                ck_assert_str_eq(v, version);
        else
                ck_assert_ptr_null(v);
        free(n);
        free(v);
}

START_TEST(test_package_of_profile) {
        char store[PATH_MAX], db[PATH_MAX], profiles[PATH_MAX], view[PATH_MAX];
        char *hello, *sed, *link = NULL, root[PATH_MAX];
        pf_store *s = NULL;

        make_store(store, db);
        pathf(profiles, "%s/profiles", tmp);
        ck_assert_int_eq(mkdir(profiles, 0755), 0);
        hello = add_package(store, db, "hello-2.12.1");
        sed = add_package(store, db, "sed-4.9");

        /* One package: its name and version. */
        char *one[] = { hello };
        ck_assert_int_eq(pf_store_make_profile(store, db, profiles, "demo", one, 1, &link), 0);
        ck_assert_ptr_nonnull(realpath(link, root));
        ck_assert_int_eq(pf_store_open(store, db, &s), 0);
        check_package(s, store, root, "demo", "hello", "2.12.1");
        check_package(s, store, root, "demo-1-link", "hello", "2.12.1");
        /* Without the database, nothing says which package: the profile. */
        check_package(NULL, store, root, "demo-1-link", "demo", NULL);
        free(link);

        /* Two packages: the profile's name, without its generation. */
        char *two[] = { hello, sed };
        ck_assert_int_eq(pf_store_make_profile(store, db, profiles, "demo", two, 2, &link), 0);
        ck_assert_ptr_nonnull(realpath(link, root));
        check_package(s, store, root, "demo-2-link", "demo", NULL);
        free(link);

        /* A view of one store item: that item, whatever it refers to. */
        pathf(view, ".store/%s", strrchr(sed, '/') + 1);
        check_package(s, store, sed, view, "sed", "4.9");
        pathf(view, ".store/%s", strrchr(root, '/') + 1);
        check_package(s, store, root, view, "profile", NULL);
        pf_store_free(s);
        s = NULL;

        /* A Guix profile: its manifest says, and wins over the references. */
        char guix[PATH_MAX], *item = NULL, manifest[2 * PATH_MAX];
        pathf(guix, "%s/profile", tmp);
        fixture_mkdir(tmp, "profile");
        snprintf(manifest, sizeof(manifest),
                 "(manifest (version 4) (packages ((\"coreutils\" \"9.1\" \"out\" \"%s\"))))\n", sed);
        fixture_write_str(guix, "manifest", manifest, 0644);
        fixture_symlink(guix, "bin", sed);
        ck_assert_int_eq(pf_store_add(store, db, guix, &item), 0);
        ck_assert_int_eq(pf_store_open(store, db, &s), 0);
        check_package(s, store, item, "guix-profile", "coreutils", "9.1");
        /* Viewed as a store item too: the manifest names it, not the item's name. */
        pathf(view, ".store/%s", strrchr(item, '/') + 1);
        check_package(s, store, item, view, "coreutils", "9.1");
        free(item);

        /* A manifest of two packages: the profile, even though it refers to one item. */
        fixture_write_str(guix, "manifest",
                          "(manifest (version 3) (packages ((\"a\" \"1\" \"out\" \"/p\") (\"b\" \"2\" \"out\" \"/q\"))))",
                          0644);
        ck_assert_int_eq(pf_store_add(store, db, guix, &item), 0);
        pf_store_free(s);
        ck_assert_int_eq(pf_store_open(store, db, &s), 0);
        check_package(s, store, item, "guix-profile-7-link", "guix-profile", NULL);
        free(item);

        /* A broken manifest is not read: the references decide. */
        fixture_write_str(guix, "manifest", "(manifest (packages ((\"a", 0644);
        ck_assert_int_eq(pf_store_add(store, db, guix, &item), 0);
        pf_store_free(s);
        ck_assert_int_eq(pf_store_open(store, db, &s), 0);
        check_package(s, store, item, "guix-profile", "sed", "4.9");
        free(item);

        pf_store_free(s);
        free(hello);
        free(sed);
}
END_TEST

int main(void) {
        Suite *s = suite_create("package");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_split_name);
        tcase_add_test(tc, test_profile_base_name);
        tcase_add_test(tc, test_guix_manifest);
        tcase_add_test(tc, test_package_of_profile);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
