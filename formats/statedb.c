/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/storewrite.h"
#include "statedb.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3 *, sqlite3_close);
DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize);

pf_state_layout pf_state_layout_for(const char *store_dir) {
        if (!strcmp(store_dir, "/nix/store"))
                return (pf_state_layout) { "/nix/var/nix/db/db.sqlite", "/nix/var/nix/profiles/default" };
        return (pf_state_layout) { "/var/guix/db/db.sqlite", "/var/guix/profiles/per-user/root/guix-profile" };
}

static int fill(sqlite3 *db, const pf_view *view) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *add_path = NULL, *add_ref = NULL;
        const pf_closure *c = view->closure;
        int r;

        if (sqlite3_exec(db, pf_nix_schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db,
                               "INSERT INTO ValidPaths (id, path, hash, registrationTime, narSize)"
                               " VALUES (?1, ?2, ?3, 1, ?4)", -1, &add_path, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db, "INSERT INTO Refs (referrer, reference) VALUES (?1, ?2)", -1, &add_ref,
                               NULL) != SQLITE_OK)
                return -EIO;

        /* Ids follow the sorted closure, so they do not depend on the source database. */
        for (size_t i = 0; i < c->n_items; i++) {
                sqlite3_bind_int64(add_path, 1, (sqlite3_int64) i + 1);
                sqlite3_bind_text(add_path, 2, c->items[i].path, -1, SQLITE_STATIC);
                sqlite3_bind_text(add_path, 3, c->items[i].nar_hash, -1, SQLITE_STATIC);
                sqlite3_bind_int64(add_path, 4, (sqlite3_int64) c->items[i].nar_size);
                if (sqlite3_step(add_path) != SQLITE_DONE)
                        return -EIO;
                sqlite3_reset(add_path);
        }
        for (size_t i = 0; i < c->n_items; i++) {
                char **refs = NULL;
                r = pf_store_references(view->store, c->items[i].path, &refs);
                if (r < 0)
                        return r;
                for (char **ref = refs; *ref && r >= 0; ref++) {
                        int j = pf_closure_find(c, *ref);
                        if (j < 0)
                                continue; /* the closure is a snapshot; a row added since is not ours */
                        sqlite3_bind_int64(add_ref, 1, (sqlite3_int64) i + 1);
                        sqlite3_bind_int64(add_ref, 2, (sqlite3_int64) j + 1);
                        if (sqlite3_step(add_ref) != SQLITE_DONE)
                                r = -EIO;
                        sqlite3_reset(add_ref);
                }
                pf_strv_free(refs);
                if (r < 0)
                        return r;
        }
        return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

int pf_statedb_generate(const pf_view *view, uint8_t **ret_data, size_t *ret_size) {
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        sqlite3_int64 size = 0;
        unsigned char *bytes;
        int r;

        if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
                return -ENOMEM;
        r = fill(db, view);
        if (r < 0) {
                log_error("%s: cannot build the pack's store database: %s", view->name, sqlite3_errmsg(db));
                return r;
        }
        bytes = sqlite3_serialize(db, "main", &size, 0);
        if (!bytes)
                return -ENOMEM;
        *ret_data = malloc((size_t) size);
        if (!*ret_data) {
                sqlite3_free(bytes);
                return -ENOMEM;
        }
        memcpy(*ret_data, bytes, (size_t) size);
        sqlite3_free(bytes);
        *ret_size = (size_t) size;
        return 0;
}
