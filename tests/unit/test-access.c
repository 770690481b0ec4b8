/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Who may read a closure's packs (access.h), over small stores made here. */
#include <check.h>
#include <errno.h>
#include <gcrypt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "packfs/access.h"
#include "packfs/log.h"
#include "packfs/walkcache.h"
#include "fixture-tree.h"
#include "run-suite.h"

/* Owners other than us: only root can give files away, so the tests that need
 * them say so and pass trivially otherwise (CI runs them as root). */
#define OTHER_UID 4321
#define OTHER_GID 12345
#define THIRD_GID 23456

static char tmp[PATH_MAX];

static void setup(void) {
        test_dir_make(tmp);
        pf_log_open(PF_LOG_STDERR, LOG_CRIT);
}

static void teardown(void) {
        temp_dir_remove(tmp);
}

static bool root(void) {
        return geteuid() == 0;
}

static void set_mode(const char *item, const char *rel, mode_t mode) {
        char path[PATH_MAX];

        pathf(path, "%s%s%s", item, *rel ? "/" : "", rel);
        ck_assert_int_eq(chmod(path, mode), 0);
}

/* An item: a 0555 directory holding a 0444 file, a 0555 bin/ with a 0555
 * program and a symlink, as `packfs store add` makes them. Writes its path. */
static void make_item(const char *name, char *ret) {
        pathf(ret, "%s/%s", tmp, name);
        ck_assert_int_eq(mkdir(ret, 0755), 0);
        set_mode(ret, "", 0755); /* whatever the umask */
        fixture_write_str(ret, "README", "read me\n", 0444);
        fixture_mkdir(ret, "bin");
        set_mode(ret, "bin", 0755);
        fixture_write_str(ret, "bin/prog", "#!/bin/sh\n", 0555);
        fixture_symlink(ret, "bin/link", "prog");
        fixture_symlink(ret, "abs", "/etc/shadow");
}

static void set_owner(const char *item, const char *rel, uid_t uid, gid_t gid) {
        char path[PATH_MAX];

        pathf(path, "%s%s%s", item, *rel ? "/" : "", rel);
        ck_assert_int_eq(lchown(path, uid, gid), 0);
}

typedef struct closure_of {
        pf_closure closure;
        pf_closure_item items[4];
        char hashes[4][64];
} closure_of;

/* A closure named TAG of the N items at PATHS, with made-up NAR hashes: an
 * item's is the same in every closure of one GENERATION. */
static void closure_make(closure_of *c, const char *tag, const char *generation, const char *const *paths,
                         size_t n) {
        ck_assert_uint_le(n, 4);
        *c = (closure_of) { .closure = { .root = (char *) paths[0], .items = c->items, .n_items = n } };
        for (size_t i = 0; i < n; i++) {
                snprintf(c->hashes[i], sizeof(c->hashes[i]), "sha256:%s-%s", generation, strrchr(paths[i], '/') + 1);
                c->items[i] = (pf_closure_item) { .path = (char *) paths[i], .nar_hash = c->hashes[i] };
        }
        snprintf((char *) c->closure.id, sizeof(c->closure.id), "%s", tag);
}

static pf_access access_of(pf_cache *cache, const char *const *paths, size_t n) {
        static unsigned calls;
        closure_of c;
        char tag[32];
        pf_access a = {};

        snprintf(tag, sizeof(tag), "c%u", calls++);
        closure_make(&c, tag, tag, paths, n);
        ck_assert_int_eq(pf_access_closure(cache, &c.closure, &a), 0);
        return a;
}

#define ck_assert_access(a, want_open, want_mode, want_uid, want_gid)                  \
        do {                                                                            \
                pf_access a_ = (a);                                                     \
                ck_assert_msg(a_.open == (want_open) && a_.mode == (mode_t) (want_mode) && \
                                      (a_.open || (a_.uid == (uid_t) (want_uid) && a_.gid == (gid_t) (want_gid))), \
                              "got open=%d mode=%04o uid=%u gid=%u", a_.open, (unsigned) a_.mode, \
                              (unsigned) a_.uid, (unsigned) a_.gid);                    \
        } while (0)

START_TEST(test_open) {
        char a[PATH_MAX], b[PATH_MAX];

        make_item("a", a);
        make_item("b", b);
        set_mode(a, "", 0555);
        ck_assert_access(access_of(NULL, (const char *[]) { a, b }, 2), true, 0444, 0, 0);
        /* Another owner changes nothing when others may read it all. */
        if (root())
                set_owner(a, "README", OTHER_UID, OTHER_GID);
        ck_assert_access(access_of(NULL, (const char *[]) { a, b }, 2), true, 0444, 0, 0);
}
END_TEST

START_TEST(test_one_private_file) {
        char a[PATH_MAX], b[PATH_MAX];

        make_item("a", a);
        make_item("b", b);
        set_mode(b, "README", 0400);
        /* Owned by us (root in CI): ours, 0400. */
        ck_assert_access(access_of(NULL, (const char *[]) { a, b }, 2), false, 0400, geteuid(), 0);
        /* An executable others may run but not read is still private. */
        set_mode(b, "README", 0444);
        set_mode(a, "bin/prog", 0711);
        ck_assert_access(access_of(NULL, (const char *[]) { a, b }, 2), false, 0400, geteuid(), 0);
}
END_TEST

START_TEST(test_private_directory) {
        char a[PATH_MAX];

        make_item("a", a);
        set_mode(a, "bin", 0700);
        ck_assert_access(access_of(NULL, (const char *[]) { a }, 1), false, 0400, geteuid(), 0);
        /* Entered but not listed by others (0711), or listed but not entered
         * (0754): private too. */
        set_mode(a, "bin", 0711);
        ck_assert_access(access_of(NULL, (const char *[]) { a }, 1), false, 0400, geteuid(), 0);
        set_mode(a, "bin", 0754);
        ck_assert_access(access_of(NULL, (const char *[]) { a }, 1), false, 0400 | 0040, geteuid(), getegid());
        /* The item itself. */
        set_mode(a, "bin", 0555);
        set_mode(a, "", 0700);
        ck_assert_access(access_of(NULL, (const char *[]) { a }, 1), false, 0400, geteuid(), 0);
}
END_TEST

START_TEST(test_group) {
        char a[PATH_MAX], b[PATH_MAX];
        gid_t g = root() ? OTHER_GID : getegid();

        make_item("a", a);
        make_item("b", b);
        /* Files others may not read, readable by one group: 0440 with it. */
        set_mode(a, "README", 0440);
        set_mode(b, "bin/prog", 0550);
        if (root()) {
                set_owner(a, "README", 0, g);
                set_owner(b, "bin/prog", 0, g);
        }
        ck_assert_access(access_of(NULL, (const char *[]) { a, b }, 2), false, 0440, geteuid(), g);
        /* A directory readable but not searchable by the group: no group. */
        set_mode(a, "bin", 0740);
        ck_assert_access(access_of(NULL, (const char *[]) { a, b }, 2), false, 0400, geteuid(), 0);
        set_mode(a, "bin", 0750);
        if (root())
                set_owner(a, "bin", 0, g);
        ck_assert_access(access_of(NULL, (const char *[]) { a, b }, 2), false, 0440, geteuid(), g);
        /* One of them not group-readable: no group. */
        set_mode(b, "bin/prog", 0500);
        ck_assert_access(access_of(NULL, (const char *[]) { a, b }, 2), false, 0400, geteuid(), 0);
        set_mode(b, "bin/prog", 0550);
        /* Two groups: no group. */
        if (root()) {
                set_owner(b, "bin/prog", 0, THIRD_GID);
                ck_assert_access(access_of(NULL, (const char *[]) { a, b }, 2), false, 0400, 0, 0);
        }
}
END_TEST

START_TEST(test_owners) {
        char a[PATH_MAX], b[PATH_MAX];

        if (!root())
                return; /* needs chown */
        make_item("a", a);
        make_item("b", b);
        /* One other owner of every private member: it. */
        set_mode(a, "README", 0400);
        set_owner(a, "README", OTHER_UID, 0);
        set_mode(b, "bin", 0500);
        set_owner(b, "bin", OTHER_UID, 0);
        ck_assert_access(access_of(NULL, (const char *[]) { a, b }, 2), false, 0400, OTHER_UID, 0);
        /* Two owners: root. */
        set_owner(b, "bin", 0, 0);
        ck_assert_access(access_of(NULL, (const char *[]) { a, b }, 2), false, 0400, 0, 0);
        ck_assert_access(access_of(NULL, (const char *[]) { a }, 1), false, 0400, OTHER_UID, 0);
        /* One owner who may not read it (0040): root, with the group. */
        set_mode(a, "README", 0040);
        set_owner(a, "README", OTHER_UID, OTHER_GID);
        ck_assert_access(access_of(NULL, (const char *[]) { a }, 1), false, 0440, 0, OTHER_GID);
        /* Members others may read have no say on the owner. */
        set_mode(a, "README", 0400);
        set_owner(a, "bin/prog", 0, OTHER_GID);
        ck_assert_access(access_of(NULL, (const char *[]) { a }, 1), false, 0400, OTHER_UID, 0);
}
END_TEST

START_TEST(test_symlinks_ignored) {
        char a[PATH_MAX], link_item[PATH_MAX], secret[PATH_MAX];

        make_item("a", a);
        /* A symlink to a file others may not read, owned by another user, and
         * an item that is itself a symlink: open (never followed). */
        fixture_write_str(tmp, "secret", "s", 0400);
        pathf(secret, "%s/secret", tmp);
        fixture_symlink(a, "bin/to-secret", secret);
        if (root())
                set_owner(a, "bin/to-secret", OTHER_UID, OTHER_GID);
        fixture_symlink(tmp, "link-item", secret);
        pathf(link_item, "%s/link-item", tmp);
        ck_assert_access(access_of(NULL, (const char *[]) { a, link_item }, 2), true, 0444, 0, 0);
        /* The directory holding a symlink counts. */
        set_mode(a, "bin", 0700);
        ck_assert_access(access_of(NULL, (const char *[]) { a, link_item }, 2), false, 0400, geteuid(), 0);
}
END_TEST

START_TEST(test_errors) {
        char a[PATH_MAX], missing[PATH_MAX];
        closure_of c;
        pf_access acc = { .mode = 0777 };

        make_item("a", a);
        pathf(missing, "%s/missing", tmp);
        closure_make(&c, "err", "1", (const char *[]) { a, missing }, 2);
        ck_assert_int_eq(pf_access_closure(NULL, &c.closure, &acc), -ENOENT);
        ck_assert_uint_eq(acc.mode, 0777);
}
END_TEST

/* --- Records. */

static pf_cache *cache_open(void) {
        char dir[PATH_MAX];
        pf_cache *c;

        pathf(dir, "%s/cache", tmp);
        ck_assert_int_eq(pf_cache_open(dir, UINT64_MAX, "test", &c), 0);
        return c;
}

static bool has_record(pf_cache *cache, const uint8_t key[32]) {
        void *data = NULL;
        size_t size;
        int r = pf_cache_record_get(cache, key, &data, &size);

        free(data);
        ck_assert(r == 0 || r == -ENOENT);
        return r == 0;
}

/* Flips one bit at AT (or truncates to AT when TRUNCATE) of KEY's record. */
static void damage(pf_cache *cache, const uint8_t key[32], size_t at, bool truncate) {
        uint8_t *data = NULL;
        size_t size;

        ck_assert_int_eq(pf_cache_record_get(cache, key, (void **) &data, &size), 0);
        ck_assert_uint_lt(at, size);
        data[at] ^= 0x01;
        ck_assert_int_eq(pf_cache_record_put(cache, key, data, truncate ? at : size), 0);
        free(data);
}

START_TEST(test_records) {
        char a[PATH_MAX], b[PATH_MAX], c2[PATH_MAX];
        uint8_t key[32], key_a[32], key_b[32];
        closure_of c, other;
        pf_cache *cache = cache_open();
        pf_access acc;

        make_item("a", a);
        make_item("b", b);
        make_item("c", c2);
        set_mode(b, "README", 0440);
        closure_make(&c, "rec", "1", (const char *[]) { a, b }, 2);
        pf_access_closure_record_key(&c.closure, key);
        pf_access_item_record_key(&c.items[0], key_a);
        pf_access_item_record_key(&c.items[1], key_b);

        /* Computed once and recorded: the closure's and each item's summary. */
        ck_assert_int_eq(pf_access_closure(cache, &c.closure, &acc), 0);
        ck_assert_access(acc, false, 0440, geteuid(), getegid());
        ck_assert(has_record(cache, key));
        ck_assert(has_record(cache, key_a));
        ck_assert(has_record(cache, key_b));

        /* Recorded, the answer stands for the closure as named (a chmod behind
         * the database's back is not seen, as with member lists), also after a
         * reopen. Without a cache the store is read again. */
        set_mode(b, "README", 0444);
        set_mode(a, "bin", 0700);
        ck_assert_int_eq(pf_access_closure(cache, &c.closure, &acc), 0);
        ck_assert_access(acc, false, 0440, geteuid(), getegid());
        pf_cache_free(cache);
        cache = cache_open();
        ck_assert_int_eq(pf_access_closure(cache, &c.closure, &acc), 0);
        ck_assert_access(acc, false, 0440, geteuid(), getegid());
        ck_assert_int_eq(pf_access_closure(NULL, &c.closure, &acc), 0);
        ck_assert_access(acc, false, 0400, geteuid(), 0);
        /* A new closure sharing items takes their records and computes the new
         * item's (c, open): a's bin/ is still recorded open, b's README 0440. */
        closure_make(&other, "other", "1", (const char *[]) { a, b, c2 }, 3);
        ck_assert_int_eq(pf_access_closure(cache, &other.closure, &acc), 0);
        ck_assert_access(acc, false, 0440, geteuid(), getegid());

        /* A damaged closure record (any byte, or cut short) is noticed, dropped
         * and computed again from the items' records: the same answer, and a
         * good record again. */
        for (size_t at = 0; at < 44; at += 5) {
                damage(cache, key, at, false);
                ck_assert_int_eq(pf_access_closure(cache, &c.closure, &acc), 0);
                ck_assert_access(acc, false, 0440, geteuid(), getegid());
        }
        damage(cache, key, 20, true);
        ck_assert_int_eq(pf_access_closure(cache, &c.closure, &acc), 0);
        ck_assert_access(acc, false, 0440, geteuid(), getegid());
        ck_assert(has_record(cache, key));

        /* A damaged item record is computed again from the item's member list
         * (recorded with the old modes: the same answer). */
        damage(cache, key_b, 0, false);
        ck_assert_int_eq(pf_cache_record_drop(cache, key), 0);
        ck_assert_int_eq(pf_access_closure(cache, &c.closure, &acc), 0);
        ck_assert_access(acc, false, 0440, geteuid(), getegid());

        /* The closure's record alone answers: nothing of its items is read. */
        for (size_t i = 0; i < 2; i++) {
                uint8_t walk_key[32];
                pf_walk_record_key(c.items[i].path, c.items[i].nar_hash, walk_key);
                ck_assert_int_eq(pf_cache_record_drop(cache, walk_key), 0);
        }
        ck_assert_int_eq(pf_cache_record_drop(cache, key_a), 0);
        ck_assert_int_eq(pf_cache_record_drop(cache, key_b), 0);
        ck_assert_int_eq(pf_access_closure(cache, &c.closure, &acc), 0);
        ck_assert_access(acc, false, 0440, geteuid(), getegid());
        ck_assert(!has_record(cache, key_a));


        /* With the closure's and items' records gone, and their member lists
         * re-walked (a new NAR hash), the store is read again. */
        closure_make(&other, "fresh", "2", (const char *[]) { a, b }, 2);
        ck_assert_int_eq(pf_access_closure(cache, &other.closure, &acc), 0);
        ck_assert_access(acc, false, 0400, geteuid(), 0);
        pf_cache_free(cache);
}
END_TEST

START_TEST(test_no_hash_not_recorded) {
        char a[PATH_MAX];
        uint8_t key[32];
        closure_of c;
        pf_cache *cache = cache_open();
        pf_access acc;

        make_item("a", a);
        closure_make(&c, "nohash", "1", (const char *[]) { a }, 1);
        c.items[0].nar_hash = (char *) "";
        pf_access_closure_record_key(&c.closure, key);
        ck_assert_int_eq(pf_access_closure(cache, &c.closure, &acc), 0);
        ck_assert_access(acc, true, 0444, 0, 0);
        /* Nothing pins such an item's contents: no record, computed each time. */
        ck_assert(!has_record(cache, key));
        set_mode(a, "README", 0400);
        ck_assert_int_eq(pf_access_closure(cache, &c.closure, &acc), 0);
        ck_assert_access(acc, false, 0400, geteuid(), 0);
        pf_cache_free(cache);
}
END_TEST

int main(void) {
        Suite *s = suite_create("access");
        TCase *tc = tcase_create("core");

        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_open);
        tcase_add_test(tc, test_one_private_file);
        tcase_add_test(tc, test_private_directory);
        tcase_add_test(tc, test_group);
        tcase_add_test(tc, test_owners);
        tcase_add_test(tc, test_symlinks_ignored);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_records);
        tcase_add_test(tc, test_no_hash_not_recorded);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
