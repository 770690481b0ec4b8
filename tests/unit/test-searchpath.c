/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "packfs/log.h"
#include "packfs/searchpath.h"
#include "packfs/store.h"
#include "fixture-tree.h"
#include "run-suite.h"

/* A store with an item DIR/store/<hash>-profile; STORE and PROFILE get their paths. */
static void make_store(char *store, char *profile) {
        char dir[PATH_MAX];

        pf_log_open(PF_LOG_STDERR, LOG_CRIT);
        test_dir_make(dir);
        pathf(store, "%s/store", dir);
        ck_assert_int_eq(mkdir(store, 0755), 0);
        pathf(profile, "%s/0123456789abcdfghijklmnpqrsvwxyz-profile", store);
        ck_assert_int_eq(mkdir(profile, 0755), 0);
}

/* The vector joined with '\n', for one comparison per case. */
static void assert_paths(const char *store, const char *profile, const char *expected) {
        char **v = NULL, got[8192] = "";

        ck_assert_int_eq(pf_profile_search_paths(store, profile, &v), 0);
        for (size_t i = 0; v[i]; i++) {
                strcat(got, v[i]);
                strcat(got, "\n");
        }
        ck_assert_msg(!strcmp(got, expected), "got:\n%s\nexpected:\n%s", got, expected);
        pf_strv_free(v);
}

START_TEST(test_empty_profile_still_has_path) {
        char store[PATH_MAX], profile[PATH_MAX], expected[PATH_MAX];

        make_store(store, profile);
        pathf(expected, "PATH=%s/bin\n", profile);
        assert_paths(store, profile, expected);
}
END_TEST

START_TEST(test_conventional_directories) {
        char store[PATH_MAX], profile[PATH_MAX], other[PATH_MAX], expected[4 * PATH_MAX];

        make_store(store, profile);
        /* share/ is a link to another item, as Nix's buildEnv makes them */
        pathf(other, "%s/11111111111111111111111111111111-share", store);
        ck_assert_int_eq(mkdir(other, 0755), 0);
        fixture_mkdir(other, "man");
        fixture_mkdir(profile, "bin");
        fixture_mkdir(profile, "sbin");
        fixture_symlink(profile, "share", other);
        fixture_mkdir(profile, "lib");
        fixture_mkdir(profile, "lib/locale");
        fixture_write_str(profile, "lib/locale/locale-archive", "", 0644);
        fixture_mkdir(profile, "etc");
        fixture_mkdir(profile, "etc/ssl");
        fixture_mkdir(profile, "etc/ssl/certs");
        fixture_write_str(profile, "etc/ssl/certs/ca-bundle.crt", "", 0644);
        /* leads out of the store: left out */
        fixture_symlink(profile, "etc/xdg", "/etc");
        /* a file where a directory is wanted: left out */
        fixture_write_str(other, "info", "", 0644);
        pathf(expected,
              "PATH=%1$s/bin:%1$s/sbin\n"
              "XDG_DATA_DIRS=%1$s/share\n"
              "MANPATH=%1$s/share/man\n"
              "LOCALE_ARCHIVE=%1$s/lib/locale/locale-archive\n"
              "SSL_CERT_FILE=%1$s/etc/ssl/certs/ca-bundle.crt\n"
              "NIX_SSL_CERT_FILE=%1$s/etc/ssl/certs/ca-bundle.crt\n",
              profile);
        assert_paths(store, profile, expected);
}
END_TEST

START_TEST(test_guix_etc_profile) {
        char store[PATH_MAX], profile[PATH_MAX], text[4 * PATH_MAX], expected[4 * PATH_MAX];

        make_store(store, profile);
        fixture_mkdir(profile, "etc");
        fixture_mkdir(profile, "share");
        pathf(text,
              "# Source this file to define all the relevant environment variables in Bash\n"
              "# for this profile.  You may want to define the 'GUIX_PROFILE' environment\n"
              "\n"
              "export GUIX_LOCPATH=\"${GUIX_PROFILE:-%1$s}/lib/locale${GUIX_LOCPATH:+:}$GUIX_LOCPATH\"\n"
              "export PATH=\"${GUIX_PROFILE:-%1$s}/bin:${GUIX_PROFILE:-%1$s}/sbin${PATH:+:}$PATH\"\n"
              "export SSL_CERT_DIR=\"${GUIX_PROFILE:-%1$s}/etc/ssl/certs\"\n"
              "export EVIL=\"$(rm -rf /)\"\n"
              "export LATE=\"${GUIX_PROFILE:-%1$s}/x${OTHER:+:}$OTHER\"\n"
              "export QUOTED=\"a\\\"b\"\n"
              "alias ls='ls -l'\n"
              "export PATH=\"/second/definition\"\n",
              profile);
        fixture_write_str(profile, "etc/profile", text, 0444);
        /* Guix's evaluation wins over conventions: no XDG_DATA_DIRS though share/ exists */
        pathf(expected,
              "PATH=%1$s/bin:%1$s/sbin\n"
              "GUIX_LOCPATH=%1$s/lib/locale\n"
              "SSL_CERT_DIR=%1$s/etc/ssl/certs\n",
              profile);
        assert_paths(store, profile, expected);
}
END_TEST

START_TEST(test_etc_profile_not_guix_or_hostile) {
        char store[PATH_MAX], profile[PATH_MAX], expected[PATH_MAX];

        make_store(store, profile);
        fixture_mkdir(profile, "etc");
        fixture_mkdir(profile, "share");
        /* a link out of the store is never read, even if it names GUIX_PROFILE */
        fixture_symlink(profile, "etc/profile", "/proc/self/environ");
        pathf(expected, "PATH=%1$s/bin\nXDG_DATA_DIRS=%1$s/share\n", profile);
        assert_paths(store, profile, expected);
        /* an etc/profile of another kind: conventions */
        ck_assert_int_eq(unlink(strcat(strcpy(expected, profile), "/etc/profile")), 0);
        fixture_write_str(profile, "etc/profile", "export PATH=/usr/bin\n", 0444);
        pathf(expected, "PATH=%1$s/bin\nXDG_DATA_DIRS=%1$s/share\n", profile);
        assert_paths(store, profile, expected);
}
END_TEST

int main(void) {
        Suite *s = suite_create("searchpath");
        TCase *tc = tcase_create("searchpath");

        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_test(tc, test_empty_profile_still_has_path);
        tcase_add_test(tc, test_conventional_directories);
        tcase_add_test(tc, test_guix_etc_profile);
        tcase_add_test(tc, test_etc_profile_not_guix_or_hostile);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
