/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/log.h"
#include "packfs/nar.h"
#include "packfs/nixbase32.h"
#include "packfs/storewrite.h"
#include "fixture-tree.h"
#include "run-suite.h"

static char tmp[PATH_MAX], store[PATH_MAX], db_path[PATH_MAX], profiles[PATH_MAX];

static void setup(void) {
        temp_dir_make(tmp);
        pathf(store, "%s/store", tmp);
        pathf(db_path, "%s/var/db/db.sqlite", tmp);
        pathf(profiles, "%s/var/profiles", tmp);
        pf_log_open(PF_LOG_STDERR, LOG_WARNING);
}

static void teardown(void) {
        temp_dir_remove(tmp);
}

static void from_hex(const char *hex, uint8_t *out) {
        for (size_t i = 0; hex[2 * i]; i++) {
                unsigned v;
                ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
                out[i] = (uint8_t) v;
        }
}

static sqlite3 *db_open_ro(void) {
        sqlite3 *db = NULL;

        ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        return db;
}

/* The single text result of SQL with one "?" bound to ARG (may be NULL); malloc'd or NULL. */
static char *db_query(const char *sql, const char *arg) {
        sqlite3 *db = db_open_ro();
        sqlite3_stmt *st = NULL;
        char *result = NULL;

        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (arg)
                sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
                result = strdup((const char *) sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return result;
}

static long db_count(const char *sql, const char *arg) {
        char *s = db_query(sql, arg);
        long n = s ? strtol(s, NULL, 10) : -1;

        free(s);
        return n;
}

/* The references of PATH, sorted, joined by spaces; malloc'd. */
static char *refs_of(const char *path) {
        char *s = db_query("select coalesce(group_concat(p, ' '), '') from ("
                           " select r.path as p from Refs join ValidPaths v on v.id = referrer"
                           " join ValidPaths r on r.id = reference where v.path = ?1 order by r.path)",
                           path);
        ck_assert_ptr_nonnull(s);
        return s;
}

static void init_store(void) {
        ck_assert_int_eq(pf_store_init(store, db_path), 0);
}

static char *add(const char *src) {
        char *p = NULL;

        ck_assert_int_eq(pf_store_add(store, db_path, src, &p), 0);
        ck_assert_ptr_nonnull(p);
        return p;
}

/* Nothing but store items may be left in the store directory. */
static void assert_no_temporaries(void) {
        DIR *d = opendir(store);
        struct dirent *de;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                ck_assert_msg(strncmp(de->d_name, ".packfs-", 8) != 0, "left over: %s", de->d_name);
        closedir(d);
}

START_TEST(test_path_make_source) {
        uint8_t sha[32];
        char *p = NULL;

        /* `nix-store --add` of the fixture and of its hello.txt, Nix 2.8. */
        from_hex(FIXTURE_NAR_SHA256, sha);
        ck_assert_int_eq(pf_store_path_make_source("/nix/store", "fixture", sha, NULL, 0, &p), 0);
        ck_assert_str_eq(p, FIXTURE_NIX_PATH);
        free(p);

        from_hex("5849379a8b8cbfc4131d0c0f89ad020ea270d85f161e257b7d52135b58337ece", sha);
        ck_assert_int_eq(pf_store_path_make_source("/nix/store", "hello.txt", sha, NULL, 0, &p), 0);
        ck_assert_str_eq(p, "/nix/store/xrabnx1r49hn890prhx86h6iyn19p976-hello.txt");
        free(p);
}
END_TEST

START_TEST(test_path_make_source_refs) {
        /* References join the type sorted ("source:/nix/store/lynk...:/nix/store/xrab..."),
         * as makeType() does; value from an independent Python implementation. */
        char *refs[] = { "/nix/store/xrabnx1r49hn890prhx86h6iyn19p976-hello.txt",
                         "/nix/store/lynkcz24r9l795ifshx0k3qpazxi1rzv-a" };
        char *sorted[] = { refs[1], refs[0] };
        uint8_t sha[32];
        char *p = NULL, *q = NULL;

        from_hex(FIXTURE_NAR_SHA256, sha);
        ck_assert_int_eq(pf_store_path_make_source("/nix/store", "fixture", sha, refs, 2, &p), 0);
        ck_assert_str_eq(p, "/nix/store/j4p6m9785j0dq7a3k704ajcx75sjvi6v-fixture");
        ck_assert_int_eq(pf_store_path_make_source("/nix/store", "fixture", sha, sorted, 2, &q), 0);
        ck_assert_str_eq(p, q);
        free(p);
        free(q);
}
END_TEST

START_TEST(test_path_make_source_invalid) {
        uint8_t sha[32] = {};
        char *p = NULL;

        ck_assert_int_eq(pf_store_path_make_source("/nix/store", ".hidden", sha, NULL, 0, &p), -EINVAL);
        ck_assert_int_eq(pf_store_path_make_source("/nix/store", "a b", sha, NULL, 0, &p), -EINVAL);
        ck_assert_int_eq(pf_store_path_make_source("/nix/store", "", sha, NULL, 0, &p), -EINVAL);
        ck_assert_int_eq(pf_store_path_make_source("nix/store", "a", sha, NULL, 0, &p), -EINVAL);
        ck_assert_int_eq(pf_store_path_make_source("/nix/store/", "a", sha, NULL, 0, &p), -EINVAL);
        ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_init) {
        struct stat st;

        init_store();
        ck_assert_int_eq(stat(store, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_int_eq(st.st_mode & 07777, 0755);
        /* Idempotent. */
        init_store();

        ck_assert_int_eq(db_count("select count(*) from sqlite_master where name in ("
                                  "'ValidPaths', 'Refs', 'DerivationOutputs', 'IndexReferrer',"
                                  "'IndexReference', 'IndexDerivationOutputs', 'DeleteSelfRefs')",
                                  NULL),
                         7);
        char *mode = db_query("pragma journal_mode", NULL);
        ck_assert_str_eq(mode, "wal");
        free(mode);
        ck_assert_int_eq(db_count("select count(*) from ValidPaths", NULL), 0);
}
END_TEST

START_TEST(test_init_foreign_db) {
        sqlite3 *db = NULL;
        char dir[PATH_MAX];

        /* A database that is not a Nix store's. */
        pathf(dir, "%s/var", tmp);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        pathf(dir, "%s/var/db", tmp);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_exec(db, "create table ValidPaths (id integer, path text)", NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        ck_assert_int_eq(pf_store_init(store, db_path), -EBADMSG);
}
END_TEST

static void assert_canonical(const char *path) {
        struct stat st;

        ck_assert_int_eq(lstat(path, &st), 0);
        ck_assert_msg(st.st_mtim.tv_sec == 1, "%s: mtime %ld", path, (long) st.st_mtim.tv_sec);
        if (S_ISDIR(st.st_mode))
                ck_assert_int_eq(st.st_mode & 07777, 0555);
        else if (S_ISREG(st.st_mode))
                ck_assert_msg((st.st_mode & 07777) == 0444 || (st.st_mode & 07777) == 0555, "%s: %o", path,
                              st.st_mode & 07777);
}

START_TEST(test_add_fixture) {
        char src[PATH_MAX], p[PATH_MAX], hex[65];
        uint8_t sha[32];
        uint64_t size;
        char *path, *expected = NULL, *again, *s;
        struct stat st;

        init_store();
        fixture_make(tmp, src);
        path = add(src);

        from_hex(FIXTURE_NAR_SHA256, sha);
        ck_assert_int_eq(pf_store_path_make_source(store, "fixture", sha, NULL, 0, &expected), 0);
        ck_assert_str_eq(path, expected);

        /* The copy serialises to the same NAR. */
        ck_assert_int_eq(pf_nar_hash(path, sha, &size), 0);
        hex_of(sha, 32, hex);
        ck_assert_str_eq(hex, FIXTURE_NAR_SHA256);
        ck_assert_uint_eq(size, FIXTURE_NAR_SIZE);

        /* Registered as Nix registers `nix-store --add`. */
        s = db_query("select hash from ValidPaths where path = ?1", path);
        ck_assert_str_eq(s, "sha256:" FIXTURE_NAR_SHA256);
        free(s);
        s = db_query("select ca from ValidPaths where path = ?1", path);
        ck_assert_str_eq(s, FIXTURE_CA);
        free(s);
        ck_assert_int_eq(db_count("select narSize from ValidPaths where path = ?1", path), FIXTURE_NAR_SIZE);
        ck_assert_int_gt(db_count("select registrationTime from ValidPaths where path = ?1", path), 1);
        ck_assert_int_eq(db_count("select count(*) from Refs", NULL), 0);

        /* Canonical modes and times. */
        assert_canonical(path);
        for (const char *const *n = (const char *const[]) { "hello.txt", "bin", "bin/tool", "bin/link",
                                                             "abs-link", "empty-dir", "empty-file",
                                                             "nested/a/b/c", "nested/a/b/c/deep.txt",
                                                             "gx", "ux", NULL };
             *n; n++) {
                pathf(p, "%s/%s", path, *n);
                assert_canonical(p);
        }
        pathf(p, "%s/bin/tool", path);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0555);
        pathf(p, "%s/ux", path);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0555);
        pathf(p, "%s/gx", path);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0444);

        /* Again: the same path, nothing new. */
        again = add(src);
        ck_assert_str_eq(again, path);
        ck_assert_int_eq(db_count("select count(*) from ValidPaths", NULL), 1);
        assert_no_temporaries();
        free(again);
        free(expected);
        free(path);
}
END_TEST

START_TEST(test_add_single_file_and_symlink) {
        char src[PATH_MAX];
        char *path, *s;

        init_store();
        fixture_make(tmp, src);
        pathf(src, "%s/fixture/hello.txt", tmp);
        path = add(src);
        s = db_query("select hash from ValidPaths where path = ?1", path);
        ck_assert_str_eq(s, "sha256:5849379a8b8cbfc4131d0c0f89ad020ea270d85f161e257b7d52135b58337ece");
        free(s);
        free(path);

        /* A symlink is added as a symlink, trailing slash or not. */
        pathf(src, "%s/fixture/bin/link/", tmp);
        path = add(src);
        s = db_query("select hash from ValidPaths where path = ?1", path);
        ck_assert_str_eq(s, "sha256:b89931f8448c6ce68e91cd7136b322e1715c95ffba5ebffc092f3353a08ea1ca");
        free(s);
        ck_assert_str_eq(strrchr(path, '-'), "-link");
        free(path);
}
END_TEST

START_TEST(test_add_references) {
        char src[PATH_MAX], dir[PATH_MAX], content[PATH_MAX + 64];
        char *a, *b, *user, *linker, *named, *plain, *both, *r;
        uint8_t sha[32];
        char *expected = NULL;

        init_store();
        fixture_make(tmp, src);
        a = add(src);
        pathf(dir, "%s/hello.txt", src);
        b = add(dir);

        /* In file contents. */
        pathf(dir, "%s/user", tmp);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        pathf(content, "#!/bin/sh\nexec %s/bin/tool\n", a);
        fixture_write_str(dir, "run", content, 0755);
        user = add(dir);
        r = refs_of(user);
        ck_assert_str_eq(r, a);
        free(r);
        /* The name is still the one `nix-store --add` gives: no references in the type. */
        ck_assert_int_eq(pf_nar_hash(dir, sha, NULL), 0);
        ck_assert_int_eq(pf_store_path_make_source(store, "user", sha, NULL, 0, &expected), 0);
        ck_assert_str_eq(user, expected);
        free(expected);

        /* In a symlink target. */
        pathf(dir, "%s/linker", tmp);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        fixture_symlink(dir, "to-b", b);
        linker = add(dir);
        r = refs_of(linker);
        ck_assert_str_eq(r, b);
        free(r);

        /* In a file name, the hash part alone. */
        pathf(dir, "%s/named", tmp);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        pathf(content, "%.32s.cache", strrchr(a, '/') + 1);
        fixture_write_str(dir, content, "", 0644);
        named = add(dir);
        r = refs_of(named);
        ck_assert_str_eq(r, a);
        free(r);

        /* Two references, one of them twice. */
        pathf(dir, "%s/both", tmp);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        pathf(content, "%s %s %s", b, a, b);
        fixture_write_str(dir, "f", content, 0644);
        both = add(dir);
        r = refs_of(both);
        char *want = NULL;
        ck_assert_int_ge(asprintf(&want, "%s %s", strcmp(a, b) < 0 ? a : b, strcmp(a, b) < 0 ? b : a), 0);
        ck_assert_str_eq(r, want);
        free(want);
        free(r);

        /* Nothing. */
        pathf(dir, "%s/plain", tmp);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        fixture_write_str(dir, "f", "/nix/store/qhvz1qwpkmf6i5vxr752g52yivqkj4wb-fixture", 0644);
        plain = add(dir);
        r = refs_of(plain);
        ck_assert_str_eq(r, "");
        free(r);

        free(a);
        free(b);
        free(user);
        free(linker);
        free(named);
        free(both);
        free(plain);
}
END_TEST

START_TEST(test_add_errors) {
        char src[PATH_MAX], p[PATH_MAX];
        char *path = NULL;

        /* Not initialised. */
        fixture_make(tmp, src);
        ck_assert_int_eq(pf_store_add(store, db_path, src, &path), -ENOENT);
        init_store();

        /* Names that are not store names. */
        pathf(p, "%s/.hidden", tmp);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        ck_assert_int_eq(pf_store_add(store, db_path, p, &path), -EINVAL);
        pathf(p, "%s/a b", tmp);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        ck_assert_int_eq(pf_store_add(store, db_path, p, &path), -EINVAL);
        ck_assert_int_eq(pf_store_add(store, db_path, "/", &path), -EINVAL);

        /* Missing. */
        pathf(p, "%s/absent", tmp);
        ck_assert_int_eq(pf_store_add(store, db_path, p, &path), -ENOENT);

        /* A FIFO inside: refused, nothing left behind. */
        pathf(p, "%s/fixture/fifo", tmp);
        ck_assert_int_eq(mkfifo(p, 0644), 0);
        ck_assert_int_eq(pf_store_add(store, db_path, src, &path), -EINVAL);
        ck_assert_ptr_null(path);
        ck_assert_int_eq(db_count("select count(*) from ValidPaths", NULL), 0);
        assert_no_temporaries();
}
END_TEST

/* Makes a package tree DIR/NAME from "path=content" specs; a content of "/" makes a directory. */
static char *make_package(const char *name, const char *const *specs) {
        char dir[PATH_MAX];

        pathf(dir, "%s/%s", tmp, name);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        for (; *specs; specs++) {
                char rel[PATH_MAX];
                const char *eq = strchr(*specs, '=');
                pathf(rel, "%.*s", (int) (eq - *specs), *specs);
                if (strcmp(eq + 1, "/") == 0)
                        fixture_mkdir(dir, rel);
                else
                        fixture_write_str(dir, rel, eq + 1, 0644);
        }
        return add(dir);
}

static void assert_link(const char *dir, const char *rel, const char *target_dir, const char *target_rel) {
        char p[PATH_MAX], want[PATH_MAX], got[PATH_MAX];
        ssize_t n;

        pathf(p, "%s/%s", dir, rel);
        pathf(want, "%s/%s", target_dir, target_rel);
        n = readlink(p, got, sizeof(got) - 1);
        ck_assert_msg(n > 0, "%s is not a symlink", p);
        got[n] = 0;
        ck_assert_str_eq(got, want);
}

static void assert_real_dir(const char *dir, const char *rel) {
        char p[PATH_MAX];
        struct stat st;

        pathf(p, "%s/%s", dir, rel);
        ck_assert_int_eq(lstat(p, &st), 0);
        ck_assert_msg(S_ISDIR(st.st_mode), "%s is not a directory", p);
}

static void assert_absent(const char *dir, const char *rel) {
        char p[PATH_MAX];
        struct stat st;

        pathf(p, "%s/%s", dir, rel);
        ck_assert_msg(lstat(p, &st) < 0 && errno == ENOENT, "%s exists", p);
}

static char *read_link_str(const char *path) {
        char buf[PATH_MAX];
        ssize_t n = readlink(path, buf, sizeof(buf) - 1);

        ck_assert_int_gt(n, 0);
        buf[n] = 0;
        return strdup(buf);
}

START_TEST(test_profile) {
        char *a, *b, *c, *link = NULL, *item, *gen, *r;
        char p[PATH_MAX];

        init_store();
        a = make_package("pkg-a", (const char *const[]) {
                "bin=/", "bin/a=A", "share=/", "share/x=/", "share/x/1=1", "lib=/", "lib/liba=l", NULL });
        b = make_package("pkg-b", (const char *const[]) {
                "bin=/", "bin/b=B", "bin/a=not A", "share=/", "share/x=/", "share/x/2=2", "share/y=/",
                "share/y/only-b=y", "nix-support=/", "nix-support/propagated=p", ".hidden=h", NULL });
        c = make_package("pkg-c", (const char *const[]) { "lib=file, not dir", "etc=/", "etc/c.conf=c", NULL });

        char *items[] = { a, b, c };
        ck_assert_int_eq(pf_store_make_profile(store, db_path, profiles, "per-user/alice/prof", items, 3, &link),
                         0);
        pathf(p, "%s/per-user/alice/prof", profiles);
        ck_assert_str_eq(link, p);

        /* prof -> prof-1-link -> <store>/<hash>-profile */
        gen = read_link_str(link);
        ck_assert_str_eq(gen, "prof-1-link");
        free(gen);
        pathf(p, "%s/per-user/alice/prof-1-link", profiles);
        item = read_link_str(p);
        ck_assert_str_eq(strrchr(item, '-'), "-profile");
        ck_assert_int_eq(db_count("select count(*) from ValidPaths where path = ?1", item), 1);

        /* The union: shared directories merged, others one link, first item wins. */
        assert_real_dir(item, "bin");
        assert_link(item, "bin/a", a, "bin/a");
        assert_link(item, "bin/b", b, "bin/b");
        assert_real_dir(item, "share");
        assert_real_dir(item, "share/x");
        assert_link(item, "share/x/1", a, "share/x/1");
        assert_link(item, "share/x/2", b, "share/x/2");
        assert_link(item, "share/y", b, "share/y");
        assert_link(item, "lib", a, "lib");
        assert_link(item, "etc", c, "etc");
        assert_absent(item, "nix-support");
        assert_absent(item, ".hidden");
        pathf(p, "%s/bin/b", link);
        ck_assert_int_eq(access(p, R_OK), 0);

        /* Its references are the items. */
        r = refs_of(item);
        ck_assert_int_eq(db_count("select count(*) from Refs join ValidPaths v on v.id = referrer"
                                  " where v.path = ?1",
                                  item),
                         3);
        ck_assert_ptr_nonnull(strstr(r, a));
        ck_assert_ptr_nonnull(strstr(r, b));
        ck_assert_ptr_nonnull(strstr(r, c));
        free(r);
        free(link);
        link = NULL;

        /* The same again: generation 1 is reused. */
        ck_assert_int_eq(pf_store_make_profile(store, db_path, profiles, "per-user/alice/prof", items, 3, &link),
                         0);
        gen = read_link_str(link);
        ck_assert_str_eq(gen, "prof-1-link");
        free(gen);
        pathf(p, "%s/per-user/alice", profiles);
        assert_absent(p, "prof-2-link");
        free(link);
        link = NULL;

        /* Something else: generation 2. */
        ck_assert_int_eq(pf_store_make_profile(store, db_path, profiles, "per-user/alice/prof", items + 1, 1, &link),
                         0);
        gen = read_link_str(link);
        ck_assert_str_eq(gen, "prof-2-link");
        free(gen);
        pathf(p, "%s/bin", link);
        char *bin = read_link_str(p);
        pathf(p, "%s/bin", b);
        ck_assert_str_eq(bin, p);
        free(bin);
        pathf(p, "%s/per-user/alice/prof-1-link", profiles);
        char *still = read_link_str(p);
        ck_assert_str_eq(still, item);
        free(still);

        free(link);
        free(item);
        free(a);
        free(b);
        free(c);
        assert_no_temporaries();
}
END_TEST

START_TEST(test_profile_errors) {
        char src[PATH_MAX], p[PATH_MAX];
        char *a, *f, *link = NULL;

        init_store();
        fixture_make(tmp, src);
        a = add(src);
        pathf(p, "%s/hello.txt", src);
        f = add(p);

        char *ok[] = { a };
        ck_assert_int_eq(pf_store_make_profile(store, db_path, profiles, "../x", ok, 1, &link), -EINVAL);
        ck_assert_int_eq(pf_store_make_profile(store, db_path, profiles, "/abs", ok, 1, &link), -EINVAL);
        ck_assert_int_eq(pf_store_make_profile(store, db_path, profiles, "a//b", ok, 1, &link), -EINVAL);
        ck_assert_int_eq(pf_store_make_profile(store, db_path, profiles, "a/./b", ok, 1, &link), -EINVAL);
        ck_assert_int_eq(pf_store_make_profile(store, db_path, profiles, "", ok, 1, &link), -EINVAL);

        /* Not a valid path of this store; not a directory. */
        char *invalid[] = { a, (char *) "/nix/store/qhvz1qwpkmf6i5vxr752g52yivqkj4wb-fixture" };
        ck_assert_int_eq(pf_store_make_profile(store, db_path, profiles, "p", invalid, 2, &link), -EINVAL);
        pathf(p, "%s/00000000000000000000000000000000-nothing", store);
        char *unknown[] = { p };
        ck_assert_int_eq(pf_store_make_profile(store, db_path, profiles, "p", unknown, 1, &link), -ENOENT);
        char *file[] = { f };
        ck_assert_int_eq(pf_store_make_profile(store, db_path, profiles, "p", file, 1, &link), -ENOTDIR);
        ck_assert_ptr_null(link);

        free(a);
        free(f);
        assert_no_temporaries();
}
END_TEST

int main(void) {
        Suite *s = suite_create("storewrite");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 60);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_path_make_source);
        tcase_add_test(tc, test_path_make_source_refs);
        tcase_add_test(tc, test_path_make_source_invalid);
        tcase_add_test(tc, test_init);
        tcase_add_test(tc, test_init_foreign_db);
        tcase_add_test(tc, test_add_fixture);
        tcase_add_test(tc, test_add_single_file_and_symlink);
        tcase_add_test(tc, test_add_references);
        tcase_add_test(tc, test_add_errors);
        tcase_add_test(tc, test_profile);
        tcase_add_test(tc, test_profile_errors);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
