/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Test driver for the store write API, for shell tests until `packfs store` exists:
 *
 *   storewrite-driver init STORE DB
 *   storewrite-driver add STORE DB PATH...                    prints the store paths
 *   storewrite-driver profile STORE DB PROFILES NAME ITEM...  prints the profile link
 *   storewrite-driver nixpath STORE PATH                      prints the path `add` would
 *                                                             give PATH in store STORE, no refs
 *   storewrite-driver info DB PATH                            prints "hash narSize ca" of PATH
 *   storewrite-driver refs DB PATH                            prints PATH's references, sorted
 *
 * Exits 0 on success, 1 with a message on stderr otherwise, 2 on bad usage.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packfs/log.h"
#include "packfs/nar.h"
#include "packfs/storewrite.h"

static int usage(void) {
        fputs("usage: storewrite-driver init STORE DB\n"
              "       storewrite-driver add STORE DB PATH...\n"
              "       storewrite-driver profile STORE DB PROFILES NAME ITEM...\n"
              "       storewrite-driver nixpath STORE PATH\n"
              "       storewrite-driver info DB PATH\n"
              "       storewrite-driver refs DB PATH\n",
              stderr);
        return 2;
}

static int fail(int r, const char *what, const char *arg) {
        fprintf(stderr, "storewrite-driver: %s %s: %s\n", what, arg, strerror(-r));
        return 1;
}

static int do_add(const char *store, const char *db, int n, char **paths) {
        for (int i = 0; i < n; i++) {
                char *p = NULL;
                int r = pf_store_add(store, db, paths[i], &p);
                if (r < 0)
                        return fail(r, "add", paths[i]);
                puts(p);
                free(p);
        }
        return 0;
}

static int do_nixpath(const char *store, const char *path) {
        const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        uint8_t sha[32];
        char *p = NULL;
        int r;

        r = pf_nar_hash(path, sha, NULL);
        if (r < 0)
                return fail(r, "hash", path);
        r = pf_store_path_make_source(store, name, sha, NULL, 0, &p);
        if (r < 0)
                return fail(r, "path of", path);
        puts(p);
        free(p);
        return 0;
}

/* Prints every row of SQL (one "?" bound to ARG), columns separated by spaces. */
static int query(const char *db_path, const char *sql, const char *arg) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int rc;

        if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
                fprintf(stderr, "storewrite-driver: %s: %s\n", db_path, sqlite3_errmsg(db));
                sqlite3_close(db);
                return 1;
        }
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                for (int i = 0; i < sqlite3_column_count(st); i++) {
                        const unsigned char *v = sqlite3_column_text(st, i);
                        printf("%s%s", i ? " " : "", v ? (const char *) v : "");
                }
                putchar('\n');
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return rc == SQLITE_DONE ? 0 : 1;
}

int main(int argc, char **argv) {
        int r;

        pf_log_open(PF_LOG_STDERR, getenv("PACKFS_DEBUG") ? LOG_DEBUG : LOG_INFO);
        if (argc >= 4 && strcmp(argv[1], "init") == 0) {
                r = pf_store_init(argv[2], argv[3]);
                return r < 0 ? fail(r, "init", argv[2]) : 0;
        }
        if (argc >= 5 && strcmp(argv[1], "add") == 0)
                return do_add(argv[2], argv[3], argc - 4, argv + 4);
        if (argc >= 7 && strcmp(argv[1], "profile") == 0) {
                char *link = NULL;
                r = pf_store_make_profile(argv[2], argv[3], argv[4], argv[5], argv + 6,
                                          (size_t) (argc - 6), &link);
                if (r < 0)
                        return fail(r, "profile", argv[5]);
                puts(link);
                free(link);
                return 0;
        }
        if (argc == 4 && strcmp(argv[1], "info") == 0)
                return query(argv[2], "select hash, narSize, ca from ValidPaths where path = ?1", argv[3]);
        if (argc == 4 && strcmp(argv[1], "refs") == 0)
                return query(argv[2],
                             "select r.path from Refs join ValidPaths v on v.id = referrer"
                             " join ValidPaths r on r.id = reference where v.path = ?1 order by r.path",
                             argv[3]);
        if (argc == 4 && strcmp(argv[1], "nixpath") == 0)
                return do_nixpath(argv[2], argv[3]);
        return usage();
}
