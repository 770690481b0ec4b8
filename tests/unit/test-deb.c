/* SPDX-License-Identifier: GPL-3.0-or-later */
/* pack.deb's pure parts: ar headers, GNU-style tar headers, the control file
 * and its derivation, and the ar size limit. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "packfs/config.h"
#include "packfs/format.h"
#include "packfs/log.h"
#include "packfs/plan.h"
#include "packfs/store.h"
#include "deb.h"
#include "fixture-tree.h"
#include "run-suite.h"
#include "tar-header.h"

static char tmp[PATH_MAX];

static void setup(void) {
        test_dir_make(tmp);
        pf_log_open(PF_LOG_STDERR, LOG_CRIT);
}

static void teardown(void) {
        temp_dir_remove(tmp);
}

START_TEST(test_ar_header) {
        uint8_t h[DEB_AR_HEADER + 1] = {};

        ck_assert_int_eq(deb_ar_header("debian-binary", 4, h), 0);
        ck_assert_mem_eq(h, "debian-binary   1           0     0     100644  4         `\n", DEB_AR_HEADER);
        ck_assert_int_eq(deb_ar_header("data.tar", DEB_AR_SIZE_MAX, h), 0);
        ck_assert_mem_eq(h, "data.tar        1           0     0     100644  9999999999`\n", DEB_AR_HEADER);
        ck_assert_int_eq(h[DEB_AR_HEADER], 0); /* nothing past the 60 bytes */
        /* What ar cannot hold. */
        ck_assert_int_eq(deb_ar_header("data.tar", DEB_AR_SIZE_MAX + 1, h), -EFBIG);
        ck_assert_int_eq(deb_ar_header("a-name-of-17-byte", 1, h), -ENAMETOOLONG);
        ck_assert_int_eq(deb_ar_header("sixteen-bytes-ok", 1, h), 0);
        ck_assert_int_eq(deb_ar_header("a/b", 1, h), -EINVAL);
        ck_assert_int_eq(deb_ar_header("a b", 1, h), -EINVAL);
        ck_assert_int_eq(deb_ar_header("", 1, h), -EINVAL);
        ck_assert_int_eq(deb_ar_header("a\nb", 1, h), -EINVAL);
}
END_TEST

START_TEST(test_arch) {
        ck_assert_str_eq(deb_arch("x86_64"), "amd64");
        ck_assert_str_eq(deb_arch("aarch64"), "arm64");
        ck_assert_str_eq(deb_arch("i686"), "i386");
        ck_assert_str_eq(deb_arch("ppc64le"), "ppc64el");
        ck_assert_str_eq(deb_arch("riscv64"), "riscv64");
}
END_TEST

static void check_split(const char *in, const char *name, const char *version) {
        char *n = NULL, *v = NULL;

        ck_assert_int_eq(deb_split_name(in, &n, &v), 0);
        ck_assert_str_eq(n, name);
        if (version)
                ck_assert_str_eq(v, version);
        else
                ck_assert_ptr_null(v);
        free(n);
        free(v);
}

START_TEST(test_names) {
        char *s;

        check_split("hello-2.12.1", "hello", "2.12.1");
        check_split("python3-3.11.2", "python3", "3.11.2");
        check_split("gcc-toolchain-12.3.0", "gcc-toolchain", "12.3.0");
        check_split("profile", "profile", NULL);
        check_split("user-environment", "user-environment", NULL);

        s = deb_package_name("per-user/Alice/Guix_Profile");
        ck_assert_str_eq(s, "per-user-alice-guix-profile");
        free(s);
        s = deb_package_name(".store/abc-hello");
        ck_assert_str_eq(s, "store-abc-hello");
        free(s);
        s = deb_package_name("-x");
        ck_assert_str_eq(s, "packfs");
        free(s);
        s = deb_package_name("g++");
        ck_assert_str_eq(s, "g++");
        free(s);

        s = deb_version(NULL);
        ck_assert_str_eq(s, "0.0.0");
        free(s);
        s = deb_version("2.12.1");
        ck_assert_str_eq(s, "2.12.1");
        free(s);
        s = deb_version("git:abc_1-2");
        ck_assert_str_eq(s, "0.git.abc.1.2");
        free(s);
}
END_TEST

START_TEST(test_guix_manifest) {
        char **names = NULL, **versions = NULL;
        size_t n = 0;

        ck_assert_int_eq(deb_guix_manifest(";; a comment\n"
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

        ck_assert_int_eq(deb_guix_manifest("(manifest (version 3) (packages ((\"a\\\"q\" \"1\" \"out\" \"/p\") "
                                           "(\"b\" \"2\" \"out\" \"/q\"))))",
                                           &names, &versions, &n),
                         0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(names[0], "a\"q");
        ck_assert_str_eq(versions[1], "2");
        pf_strv_free(names);
        pf_strv_free(versions);

        /* Not a manifest, or a broken one. */
        ck_assert_int_eq(deb_guix_manifest("", &names, &versions, &n), -EBADMSG);
        ck_assert_int_eq(deb_guix_manifest("{\"elements\": []}", &names, &versions, &n), -EBADMSG);
        ck_assert_int_eq(deb_guix_manifest("(manifest (version 3))", &names, &versions, &n), -EBADMSG);
        ck_assert_int_eq(deb_guix_manifest("(manifest (packages ((\"a\" \"1\"", &names, &versions, &n), -EBADMSG);
        ck_assert_int_eq(deb_guix_manifest("(manifest (packages ((1 2))))", &names, &versions, &n), -EBADMSG);
        ck_assert_int_eq(deb_guix_manifest("(manifest (packages ((\"a", &names, &versions, &n), -EBADMSG);
}
END_TEST

START_TEST(test_control) {
        char *text = NULL;
        deb_control_input in = { .package = "hello", .version = "2.12", .arch = "amd64", .view = "demo\nEvil: 1",
                                 .installed_size = 42 };

        ck_assert_int_eq(deb_control_text(&in, &text), 0);
        ck_assert_str_eq(text, "Package: hello\n"
                               "Version: 2.12\n"
                               "Description: Debian archive generated by packfs\n"
                               " The closure of demo?Evil: 1, at its store paths.\n"
                               "Maintainer: packfs\n"
                               "Architecture: amd64\n"
                               "Priority: optional\n"
                               "Section: misc\n"
                               "Installed-Size: 42\n");
        free(text);

        in.user_control = "Package: mine\nVersion: 1\nArchitecture: all";
        ck_assert_int_eq(deb_control_text(&in, &text), 0);
        ck_assert_str_eq(text, "Package: mine\nVersion: 1\nArchitecture: all\nInstalled-Size: 42\n");
        free(text);
        in.user_control = "Package: mine\nVersion: 1\nArchitecture: all\ninstalled-size: 7\n";
        ck_assert_int_eq(deb_control_text(&in, &text), 0);
        ck_assert_str_eq(text, in.user_control);
        free(text);
}
END_TEST

START_TEST(test_installed_size) {
        tar_entry e[] = {
                { .name = "./", .mode = S_IFDIR | 0755 },
                { .name = "./a", .mode = S_IFREG | 0644, .size = 0 },
                { .name = "./b", .mode = S_IFREG | 0644, .size = 1 },
                { .name = "./c", .mode = S_IFREG | 0644, .size = 1024 },
                { .name = "./d", .mode = S_IFREG | 0644, .size = 1025 },
                { .name = "./l", .link = "a", .mode = S_IFLNK | 0777 },
        };

        /* dir 1, a 0, b 1, c 1, d 2, link 1 */
        ck_assert_uint_eq(deb_installed_size(e, 6), 6);
}
END_TEST

START_TEST(test_gnu_headers) {
        uint8_t a[TAR_HEADER_MAX], b[TAR_HEADER_MAX];
        char name[300], link[200];
        tar_entry e = { .name = "./gnu/store/x-hello/bin/hello", .mode = S_IFREG | 0755, .size = 1234 };
        int n;

        /* What fits ustar is pack.tar's very block. */
        ck_assert_int_eq(tar_header_write_gnu(&e, a), TAR_BLOCK);
        ck_assert_int_eq(tar_header_write(&e, b), TAR_BLOCK);
        ck_assert_mem_eq(a, b, TAR_BLOCK);
        ck_assert_int_eq(tar_header_size_gnu(&e), TAR_BLOCK);

        /* A long name: a ././@LongLink 'L' member in front, no pax. */
        memset(name, 'n', sizeof(name) - 1);
        name[0] = '.';
        name[1] = '/';
        name[sizeof(name) - 1] = 0;
        memset(link, 'k', sizeof(link) - 1);
        link[sizeof(link) - 1] = 0;
        e = (tar_entry) { .name = name, .link = link, .mode = S_IFLNK | 0777 };
        n = tar_header_write_gnu(&e, a);
        ck_assert_int_eq(n, tar_header_size_gnu(&e));
        ck_assert_int_eq(n, 512 + 512 + 512 + 512 + 512); /* L + 300 bytes, K + 200 bytes, the member */
        ck_assert_str_eq((char *) a, "././@LongLink");
        ck_assert_int_eq(a[156], 'L');
        ck_assert_mem_eq(a + 257, "ustar  ", 8);
        ck_assert_mem_eq(a + 512, name, sizeof(name)); /* with its NUL */
        ck_assert_int_eq(a[1024 + 156], 'K');
        ck_assert_mem_eq(a + 1536, link, sizeof(link));
        ck_assert_int_eq(a[2048 + 156], '2');
        ck_assert_mem_eq(a + 2048 + 257, "ustar  ", 8);

        /* Past ustar's 8 GiB: base-256. */
        e = (tar_entry) { .name = "./big", .mode = S_IFREG | 0644, .size = 9000000000ULL };
        n = tar_header_write_gnu(&e, a);
        ck_assert_int_eq(n, TAR_BLOCK);
        ck_assert_int_eq(a[124], 0x80);
        uint64_t v = 0;
        for (int i = 1; i < 12; i++)
                v = v << 8 | a[124 + i];
        ck_assert_uint_eq(v, 9000000000ULL);

        /* Too long for either. */
        char huge[5000];
        memset(huge, 'h', sizeof(huge) - 1);
        huge[sizeof(huge) - 1] = 0;
        e = (tar_entry) { .name = huge, .mode = S_IFREG | 0644 };
        ck_assert_int_eq(tar_header_size_gnu(&e), -ENAMETOOLONG);
        ck_assert_int_eq(tar_header_write_gnu(&e, a), -ENAMETOOLONG);
}
END_TEST

/* A store item holding a sparse file of SIZE bytes, planned without a
 * database: pack.deb's data.tar is then past what ar holds. */
static int plan_big(uint64_t size, pf_plan **ret) {
        char store[PATH_MAX], item[PATH_MAX], file[PATH_MAX];
        pf_closure_item it = {};
        pf_closure c = { .refcount = 1 };
        pf_options o = { .max_layers = PF_DEFAULT_MAX_LAYERS };
        pf_view view;
        int fd;

        pathf(store, "%s/store", tmp);
        pathf(item, "%s/0123456789abcdfghijklmnpqrsvwxyz-big-1.0", store);
        pathf(file, "%s/data", item);
        mkdir(store, 0755);
        mkdir(item, 0755);
        fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, (off_t) size), 0);
        close(fd);
        it.path = item;
        it.nar_hash = (char *) "";
        c.root = item;
        c.items = &it;
        c.n_items = 1;
        view = (pf_view) { .store_dir = store, .closure = &c, .name = "big", .options = &o };
        return pf_format_deb.plan(&pf_format_deb, &view, ret);
}

START_TEST(test_size_limit) {
        pf_plan *p = NULL;
        uint8_t buf[DEB_AR_HEADER];

        ck_assert_ptr_eq(pf_format_find("pack.deb"), &pf_format_deb);
        /* Just under: the data.tar member's size has 10 digits. */
        ck_assert_int_eq(plan_big(DEB_AR_SIZE_MAX - 1024 * 1024, &p), 0);
        ck_assert_int_eq(pf_plan_pread(p, buf, 8, 0), 8);
        ck_assert_mem_eq(buf, "!<arch>\n", 8);
        pf_plan_unref(p);
        p = NULL;
        /* Past it: an error, not a broken .deb. */
        ck_assert_int_eq(plan_big(DEB_AR_SIZE_MAX, &p), -EIO);
        ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_config_keys) {
        char control[PATH_MAX], postinst[PATH_MAX], text[3 * PATH_MAX];
        pf_config *c = NULL;
        pf_options o, plain;

        pathf(control, "%s/control", tmp);
        pathf(postinst, "%s/postinst", tmp);
        fixture_write_str(tmp, "control", "Package: x\nVersion: 1\nArchitecture: all\n", 0644);
        fixture_write_str(tmp, "postinst", "#!/bin/sh\ntrue\n", 0755);
        fixture_write_str(tmp, "bad-control", "Package: x\n\nVersion: 1\nArchitecture: all\n", 0644);
        fixture_write_str(tmp, "no-arch", "Package: x\nVersion: 1\n", 0644);
        fixture_write_str(tmp, "no-shebang", "true\n", 0644);

        snprintf(text, sizeof(text), "[*]\ndeb-control = %s\ndeb-postinst = %s\n", control, postinst);
        ck_assert_int_eq(pf_config_parse_string(text, "t", &c), 0);
        ck_assert_int_eq(pf_config_options_for(c, "demo", &o), 0);
        ck_assert_str_eq(o.deb_control, "Package: x\nVersion: 1\nArchitecture: all\n");
        ck_assert_str_eq(o.deb_postinst, "#!/bin/sh\ntrue\n");
        ck_assert_ptr_null(o.deb_triggers);
        pf_config_free(c);
        /* Part of the identity only when set. */
        ck_assert_int_eq(pf_config_parse_string("[*]\nxz-level = 6\n", "t", &c), 0);
        ck_assert_int_eq(pf_config_options_for(c, "demo", &plain), 0);
        ck_assert_mem_ne(o.id, plain.id, 32);
        pf_config_free(c);
        pf_options_done(&o);
        pf_options_done(&plain);

        static const char *const bad[] = { "deb-control = relative", "deb-control = %s/missing",
                                           "deb-control = %s/bad-control", "deb-control = %s/no-arch",
                                           "deb-postinst = %s/no-shebang" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char line[PATH_MAX + 64];
                snprintf(line, sizeof(line), bad[i], tmp);
                snprintf(text, sizeof(text), "[*]\n%s\n", line);
                ck_assert_int_eq(pf_config_parse_string(text, "t", &c), -EINVAL);
        }
        /* An empty value unsets. */
        ck_assert_int_eq(pf_config_parse_string("[*]\ndeb-triggers =\n", "t", &c), 0);
        ck_assert_int_eq(pf_config_options_for(c, "demo", &o), 0);
        ck_assert_ptr_null(o.deb_triggers);
        pf_options_done(&o);
        pf_config_free(c);
}
END_TEST

int main(void) {
        Suite *s = suite_create("deb");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_ar_header);
        tcase_add_test(tc, test_arch);
        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_guix_manifest);
        tcase_add_test(tc, test_control);
        tcase_add_test(tc, test_installed_size);
        tcase_add_test(tc, test_gnu_headers);
        tcase_add_test(tc, test_size_limit);
        tcase_add_test(tc, test_config_keys);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
