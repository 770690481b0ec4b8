/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "packfs/config.h"
#include "packfs/log.h"
#include "fixture-tree.h"
#include "run-suite.h"

static void setup(void) {
        pf_log_open(PF_LOG_STDERR, LOG_CRIT);
}

/* Options of PROFILE under the configuration TEXT, which must parse. */
static void options_of(const char *text, const char *profile, pf_options *ret) {
        pf_config *c = NULL;

        ck_assert_int_eq(pf_config_parse_string(text, "test.ini", &c), 0);
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(pf_config_options_for(c, profile, ret), 0);
        pf_config_free(c);
}

/* "source=target ..." of O, for comparisons. */
static void symlinks_text(const pf_options *o, char *out, size_t size) {
        out[0] = 0;
        for (size_t i = 0; i < o->n_symlinks; i++) {
                size_t len = strlen(out);
                snprintf(out + len, size - len, "%s%s=%s", i ? " " : "", o->symlinks[i].source,
                         o->symlinks[i].target);
        }
}

static void assert_options(const char *text, const char *profile, const char *symlinks, const char *entry_point,
                           bool localstatedir) {
        pf_options o = {};
        char s[1024];

        options_of(text, profile, &o);
        symlinks_text(&o, s, sizeof(s));
        ck_assert_msg(!strcmp(s, symlinks), "%s: symlinks '%s', expected '%s'", profile, s, symlinks);
        if (entry_point)
                ck_assert_pstr_eq(o.entry_point, entry_point);
        else
                ck_assert_ptr_null(o.entry_point);
        ck_assert_msg(o.localstatedir == localstatedir, "%s: localstatedir", profile);
        pf_options_done(&o);
}

static const char precedence[] =
        "; exact first in the file: still applied last\n"
        "[demo]\n"
        "entry-point = bin/exact\n"
        "\n"
        "[d*]\n"
        "entry-point = bin/glob-d\n"
        "symlinks = /usr/bin=bin /etc/profile=etc/profile /bin=bin\n"
        "\n"
        "[*]\n"
        "entry-point = bin/default\n"
        "localstatedir = yes\n"
        "symlinks = /bin=bin\n"
        "\n"
        "[de*]\n"
        "entry-point = bin/glob-de\n"
        "\n"
        "[web-?]\n"
        "localstatedir = off\n"
        "symlinks =\n"
        "\n"
        "[web-a*]\n"
        "entry-point = sbin/httpd\n";

START_TEST(test_precedence) {
        /* Default only. */
        assert_options(precedence, "other", "/bin=bin", "bin/default", true);
        /* Default, then the glob. */
        assert_options(precedence, "dx", "/bin=bin /etc/profile=etc/profile /usr/bin=bin", "bin/glob-d", true);
        /* Two globs: the later one in the file wins. */
        assert_options(precedence, "delta", "/bin=bin /etc/profile=etc/profile /usr/bin=bin", "bin/glob-de",
                       true);
        /* The exact name beats both globs and the default, whatever the file order. */
        assert_options(precedence, "demo", "/bin=bin /etc/profile=etc/profile /usr/bin=bin", "bin/exact", true);
        /* An empty symlinks value clears the list; '?' is one character. */
        assert_options(precedence, "web-1", "", "bin/default", false);
        assert_options(precedence, "web-12", "/bin=bin", "bin/default", true);
        /* Both web-? and web-a* apply, each for the keys it sets. */
        assert_options(precedence, "web-a", "", "sbin/httpd", false);
        assert_options(precedence, "web-ab", "/bin=bin", "sbin/httpd", true);
        /* Exact sections match exactly. */
        assert_options(precedence, "demo2", "/bin=bin /etc/profile=etc/profile /usr/bin=bin", "bin/glob-de",
                       true);
}
END_TEST

START_TEST(test_empty) {
        pf_config *c = NULL;
        pf_options o = {};

        assert_options("", "demo", "", NULL, false);
        ck_assert_int_eq(pf_config_load(NULL, &c), 0);
        ck_assert_int_eq(pf_config_options_for(c, "demo", &o), 0);
        ck_assert_uint_eq(o.n_symlinks, 0);
        ck_assert_ptr_null(o.entry_point);
        ck_assert(!o.localstatedir);
        pf_options_done(&o);
        pf_config_free(c);
        /* A section that does not match leaves the defaults. */
        assert_options("[x]\nlocalstatedir = 1\n", "demo", "", NULL, false);
}
END_TEST

START_TEST(test_symlinks_parsing) {
        /* Several separators, sorted by source bytewise. */
        assert_options("[*]\nsymlinks = /usr/share=share\t/bin=bin   /Zed=z /a/b/c=x/y/z\n", "p",
                       "/Zed=z /a/b/c=x/y/z /bin=bin /usr/share=share", NULL, false);
        /* A later setting replaces the list, within a section and across sections. */
        assert_options("[*]\nsymlinks = /a=a\nsymlinks = /b=b\n", "p", "/b=b", NULL, false);
        assert_options("[*]\nsymlinks = /a=a /c=c\n[p]\nsymlinks = /b=b\n", "p", "/b=b", NULL, false);
        /* Booleans. */
        const char *yes[] = { "true", "TRUE", "yes", "on", "1", "On" };
        const char *no[] = { "false", "no", "off", "0", "NO" };
        char text[128];
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                snprintf(text, sizeof(text), "[*]\nlocalstatedir = %s\n", yes[i]);
                assert_options(text, "p", "", NULL, true);
        }
        for (size_t i = 0; i < ELEMENTSOF(no); i++) {
                snprintf(text, sizeof(text), "[*]\nlocalstatedir = true\n[p]\nlocalstatedir = %s\n", no[i]);
                assert_options(text, "p", "", NULL, false);
        }
        /* An empty entry point unsets it. */
        assert_options("[*]\nentry-point = bin/sh\n[p]\nentry-point =\n", "p", "", NULL, false);
}
END_TEST

START_TEST(test_bad) {
        static const char *const bad[] = {
                "[*]\nlocalstatedir = maybe\n",
                "[*]\nlocalstatedir =\n",
                "[*]\nentry-point = /bin/sh\n",
                "[*]\nentry-point = ../bin/sh\n",
                "[*]\nentry-point = bin//sh\n",
                "[*]\nentry-point = bin/./sh\n",
                "[*]\nentry-point = bin/\n",
                "[*]\nsymlinks = bin=bin\n",
                "[*]\nsymlinks = /bin\n",
                "[*]\nsymlinks = /=bin\n",
                "[*]\nsymlinks = /bin=\n",
                "[*]\nsymlinks = /bin=/bin\n",
                "[*]\nsymlinks = /bin=../bin\n",
                "[*]\nsymlinks = /usr/../bin=bin\n",
                "[*]\nsymlinks = //bin=bin\n",
                "[*]\nsymlinks = /bin=bin /sbin\n",
                "[*]\nsymlink = /bin=bin\n",
                "[*]\nunknown = 1\n",
                "[*]\nEntry-Point = bin/sh\n",
                "localstatedir = true\n[*]\n",
                "symlinks = /bin=bin\n",
                "[*]\nthis is not ini\n",
                "[*\nlocalstatedir = true\n",
                "[*]\nprepare = demo/pack.tar.zst\n",
                "[*]\nprepare = pack.tar.zst ..\n",
                "[*]\nprepare = .\n",
                /* An error after good lines still fails the whole load. */
                "[*]\nlocalstatedir = true\n[demo]\nentry-point = bin/sh\nbogus = 1\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                pf_config *c = (pf_config *) 0x1;
                ck_assert_msg(pf_config_parse_string(bad[i], "bad.ini", &c) == -EINVAL, "accepted: %s", bad[i]);
                ck_assert_ptr_eq(c, (pf_config *) 0x1);
        }
}
END_TEST

static void id_of(const char *text, const char *profile, uint8_t id[32]) {
        pf_options o = {};

        options_of(text, profile, &o);
        memcpy(id, o.id, 32);
        pf_options_done(&o);
}

START_TEST(test_id) {
        static const char *const variants[] = {
                "",
                "[*]\nlocalstatedir = true\n",
                "[*]\nentry-point = bin/sh\n",
                "[*]\nentry-point = bin/bash\n",
                "[*]\nsymlinks = /bin=bin\n",
                "[*]\nsymlinks = /bin=sbin\n",
                "[*]\nsymlinks = /sbin=bin\n",
                "[*]\nsymlinks = /bin=bin /lib=lib\n",
                /* Strings that would collide if concatenated without separators. */
                "[*]\nsymlinks = /bi=nbin\n",
                "[*]\nsymlinks = /bin=bin\nentry-point = bin/sh\n",
                "[*]\nsymlinks = /bin=bin\nentry-point = bin/sh\nlocalstatedir = 1\n",
        };
        uint8_t ids[ELEMENTSOF(variants)][32], again[32];

        for (size_t i = 0; i < ELEMENTSOF(variants); i++) {
                id_of(variants[i], "p", ids[i]);
                /* Stable: parsing again gives the same id. */
                id_of(variants[i], "p", again);
                ck_assert_msg(!memcmp(ids[i], again, 32), "unstable id: %s", variants[i]);
                for (size_t j = 0; j < i; j++)
                        ck_assert_msg(memcmp(ids[i], ids[j], 32) != 0, "same id: '%s' and '%s'", variants[i],
                                      variants[j]);
        }
        /* The id is of the resolved options, not of how they were written. */
        id_of("[*]\nsymlinks = /lib=lib /bin=bin\n", "p", again);
        ck_assert(!memcmp(ids[7], again, 32));
        id_of("[p*]\nsymlinks = /bin=bin  /lib=lib\n[other]\nlocalstatedir = yes\n", "p", again);
        ck_assert(!memcmp(ids[7], again, 32));
        id_of("[*]\nlocalstatedir = on\n", "p", again);
        ck_assert(!memcmp(ids[1], again, 32));
        id_of("[*]\nlocalstatedir = false\n", "p", again);
        ck_assert(!memcmp(ids[0], again, 32));
        /* prepare says when bytes are made, not which. */
        id_of("[*]\nprepare = pack.tar.zst\n", "p", again);
        ck_assert(!memcmp(ids[0], again, 32));
}
END_TEST

static int collect_name(void *userdata, const char *name) {
        char *out = userdata;

        if (!strcmp(name, "stop"))
                return -ECANCELED;
        strcat(out, name);
        strcat(out, ",");
        return 0;
}

/* prepare: a list of file names per profile, the later section replacing the
 * earlier; every name any section lists can be checked at start-up. */
START_TEST(test_prepare) {
        static const char text[] = "[*]\nprepare = pack.tar.zst\n"
                                   "[web-*]\nprepare =  pack.tar.xz\tdocker.tar.zst \n"
                                   "[quiet]\nprepare =\n";
        pf_config *c = NULL;
        pf_options o = {};
        char names[256] = "";

        options_of(text, "demo", &o);
        ck_assert_uint_eq(o.n_prepare, 1);
        ck_assert_str_eq(o.prepare[0], "pack.tar.zst");
        pf_options_done(&o);
        options_of(text, "web-1", &o);
        ck_assert_uint_eq(o.n_prepare, 2);
        ck_assert_str_eq(o.prepare[0], "pack.tar.xz");
        ck_assert_str_eq(o.prepare[1], "docker.tar.zst");
        pf_options_done(&o);
        options_of(text, "quiet", &o);
        ck_assert_uint_eq(o.n_prepare, 0);
        pf_options_done(&o);

        ck_assert_int_eq(pf_config_parse_string(text, "test.ini", &c), 0);
        ck_assert_int_eq(pf_config_foreach_prepare(c, collect_name, names), 0);
        ck_assert_str_eq(names, "pack.tar.zst,pack.tar.xz,docker.tar.zst,");
        pf_config_free(c);
        ck_assert_int_eq(pf_config_parse_string("[*]\nprepare = a stop b\n", "test.ini", &c), 0);
        names[0] = 0;
        ck_assert_int_eq(pf_config_foreach_prepare(c, collect_name, names), -ECANCELED);
        ck_assert_str_eq(names, "a,");
        pf_config_free(c);
}
END_TEST

START_TEST(test_load_file) {
        char tmp[PATH_MAX], path[PATH_MAX];
        pf_config *c = NULL;
        pf_options o = {};

        test_dir_make(tmp);
        fixture_write_str(tmp, "packfs.ini", precedence, 0644);
        pathf(path, "%s/packfs.ini", tmp);
        ck_assert_int_eq(pf_config_load(path, &c), 0);
        ck_assert_int_eq(pf_config_options_for(c, "demo", &o), 0);
        ck_assert_pstr_eq(o.entry_point, "bin/exact");
        ck_assert_uint_eq(o.n_symlinks, 3);
        pf_options_done(&o);
        pf_config_free(c);

        fixture_write_str(tmp, "bad.ini", "[*]\nfoo = bar\n", 0644);
        pathf(path, "%s/bad.ini", tmp);
        ck_assert_int_eq(pf_config_load(path, &c), -EINVAL);
        pathf(path, "%s/missing.ini", tmp);
        ck_assert_int_eq(pf_config_load(path, &c), -ENOENT);
        temp_dir_remove(tmp);
}
END_TEST

int main(void) {
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("core");

        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_precedence);
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_symlinks_parsing);
        tcase_add_test(tc, test_bad);
        tcase_add_test(tc, test_id);
        tcase_add_test(tc, test_prepare);
        tcase_add_test(tc, test_load_file);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
