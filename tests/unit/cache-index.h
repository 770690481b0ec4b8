/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests that reach into a cache's index behind pf_cache's back. */
#pragma once

#include <check.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

/* Runs SQL on CACHE_DIR/index.sqlite through a connection of its own; returns
 * the first column of the first row as an integer (0 without rows). */
static inline int64_t cache_index_sql(const char *cache_dir, const char *sql) {
        char index[2 * PATH_MAX];
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int64_t v = 0;
        int r;

        snprintf(index, sizeof(index), "%s/index.sqlite", cache_dir);
        ck_assert_int_eq(sqlite3_open(index, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        r = sqlite3_step(st);
        ck_assert(r == SQLITE_ROW || r == SQLITE_DONE);
        if (r == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}
