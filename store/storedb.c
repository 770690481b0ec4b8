/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <gcrypt.h>

#include "packfs/log.h"
#include "packfs/store.h"
#include "packfs/storepath.h"
#include "sqlite-util.h"

struct pf_store {
        char *store_dir;
        char *db_path;
        /* Guards db and the prepared statements: sqlite connections are not to be
         * used by two threads at once, and statements carry cursor state. */
        pthread_mutex_t lock;
        sqlite3 *db;
        sqlite3_stmt *closure_stmt;
        sqlite3_stmt *valid_stmt;
};

/* Every column packfs reads; present in Guix's schema and in Nix's. */
static const char *const required_columns[] = {
        "ValidPaths.id", "ValidPaths.path", "ValidPaths.hash", "ValidPaths.narSize",
        "Refs.referrer", "Refs.reference",
};

static int check_schema(sqlite3 *db, const char *db_path) {
        for (size_t i = 0; i < sizeof(required_columns) / sizeof(required_columns[0]); i++) {
                char table[32];
                const char *dot = strchr(required_columns[i], '.');
                size_t tl = (size_t) (dot - required_columns[i]);
                int r;

                memcpy(table, required_columns[i], tl);
                table[tl] = 0;
                r = sqlite3_table_column_metadata(db, NULL, table, dot + 1, NULL, NULL, NULL, NULL, NULL);
                if (r != SQLITE_OK) {
                        r = pf_sqlite_errno(r);
                        if (r == -EIO || r == -EBADMSG) {
                                log_error("%s: not a store database: %s", db_path, sqlite3_errmsg(db));
                                return -EIO;
                        }
                        if (r != -ENOENT && r != -EINVAL)
                                return log_error_errno(r, "%s: cannot read schema", db_path);
                        log_error("%s: unknown schema: no column %s", db_path, required_columns[i]);
                        return -EMEDIUMTYPE;
                }
        }
        return 0;
}

/* Opens the connection: read-only, schema checked, statements prepared. */
static int store_connect(pf_store *s) {
        int r;

        r = sqlite3_open_v2(s->db_path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
        if (r != SQLITE_OK) {
                log_error("database %s: %s", s->db_path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(r));
                pf_store_disconnect(s);
                return pf_sqlite_errno(r);
        }
        sqlite3_busy_timeout(s->db, PF_STORE_BUSY_TIMEOUT_MS);
        sqlite3_extended_result_codes(s->db, 1);

        r = check_schema(s->db, s->db_path);
        if (r < 0) {
                pf_store_disconnect(s);
                return r;
        }

        /* The recursive query walks Refs through IndexReferrer (both schemas have
         * it); UNION (not UNION ALL) keeps each item once, so cycles terminate. */
        r = sqlite3_prepare_v2(s->db,
                "WITH RECURSIVE c(id) AS ("
                "  SELECT id FROM ValidPaths WHERE path = ?1"
                "  UNION SELECT reference FROM Refs JOIN c ON Refs.referrer = c.id)"
                " SELECT path, hash, narSize FROM ValidPaths JOIN c USING (id) ORDER BY path",
                -1, &s->closure_stmt, NULL);
        if (r == SQLITE_OK)
                r = sqlite3_prepare_v2(s->db, "SELECT 1 FROM ValidPaths WHERE path = ?1", -1,
                                       &s->valid_stmt, NULL);
        if (r != SQLITE_OK) {
                log_error("database %s: %s", s->db_path, sqlite3_errmsg(s->db));
                r = pf_sqlite_errno(r);
                pf_store_disconnect(s);
                return r;
        }
        return 0;
}

void pf_store_disconnect(pf_store *s) {
        sqlite3_finalize(s->closure_stmt);
        sqlite3_finalize(s->valid_stmt);
        sqlite3_close(s->db);
        s->closure_stmt = s->valid_stmt = NULL;
        s->db = NULL;
}

int pf_store_connect(pf_store *s) {
        return s->db ? 0 : store_connect(s);
}

int pf_store_open(const char *store_dir, const char *db_path, pf_store **ret) {
        pf_store *s;
        struct stat st;
        int r;

        if (stat(store_dir, &st) < 0)
                return log_error_errno(negative_errno(), "store %s", store_dir);
        if (!S_ISDIR(st.st_mode)) {
                log_error("store %s: not a directory", store_dir);
                return -ENOTDIR;
        }
        if (stat(db_path, &st) < 0)
                return log_error_errno(negative_errno(), "database %s", db_path);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->lock, NULL);
        s->store_dir = strdup(store_dir);
        s->db_path = strdup(db_path);
        if (!s->store_dir || !s->db_path) {
                pf_store_free(s);
                return -ENOMEM;
        }
        /* Normalise away trailing slashes; "/" itself cannot be a store. */
        for (size_t n = strlen(s->store_dir); n > 1 && s->store_dir[n - 1] == '/'; n--)
                s->store_dir[n - 1] = 0;

        r = store_connect(s);
        if (r < 0) {
                pf_store_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

void pf_store_free(pf_store *s) {
        if (!s)
                return;
        pf_store_disconnect(s);
        pthread_mutex_destroy(&s->lock);
        free(s->store_dir);
        free(s->db_path);
        free(s);
}

const char *pf_store_dir(const pf_store *s) {
        return s->store_dir;
}

int pf_store_is_valid(pf_store *s, const char *path) {
        int r;

        pthread_mutex_lock(&s->lock);
        sqlite3_bind_text(s->valid_stmt, 1, path, -1, SQLITE_STATIC);
        r = sqlite3_step(s->valid_stmt);
        r = r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : pf_sqlite_errno(r);
        if (r < 0)
                log_error("database %s: %s", s->db_path, sqlite3_errmsg(s->db));
        sqlite3_reset(s->valid_stmt);
        sqlite3_clear_bindings(s->valid_stmt);
        pthread_mutex_unlock(&s->lock);
        return r;
}

static void closure_free(pf_closure *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_items; i++) {
                free(c->items[i].path);
                free(c->items[i].nar_hash);
        }
        free(c->items);
        free(c->root);
        free(c);
}

int pf_closure_find(const pf_closure *c, const char *path) {
        size_t lo = 0, hi = c->n_items;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int cmp = strcmp(c->items[mid].path, path);
                if (cmp == 0)
                        return (int) mid;
                if (cmp < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -1;
}

pf_closure *pf_closure_ref(pf_closure *c) {
        __atomic_add_fetch(&c->refcount, 1, __ATOMIC_RELAXED);
        return c;
}

void pf_closure_unref(pf_closure *c) {
        if (c && __atomic_sub_fetch(&c->refcount, 1, __ATOMIC_ACQ_REL) == 0)
                closure_free(c);
}

static void gcrypt_init_once(void) {
        /* libgcrypt must be initialised once before its first use. */
        gcry_check_version(NULL);
        gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
}

static void closure_compute_id(pf_closure *c) {
        static pthread_once_t gcrypt_once = PTHREAD_ONCE_INIT;
        gcry_md_hd_t md;

        pthread_once(&gcrypt_once, gcrypt_init_once);

        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                abort();
        gcry_md_write(md, c->root, strlen(c->root) + 1);
        for (size_t i = 0; i < c->n_items; i++) {
                gcry_md_write(md, c->items[i].path, strlen(c->items[i].path) + 1);
                gcry_md_write(md, c->items[i].nar_hash, strlen(c->items[i].nar_hash) + 1);
        }
        memcpy(c->id, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
}

static int closure_query(pf_store *s, const char *root, pf_closure *c) {
        size_t allocated = 0;
        int r;

        sqlite3_bind_text(s->closure_stmt, 1, root, -1, SQLITE_STATIC);
        while ((r = sqlite3_step(s->closure_stmt)) == SQLITE_ROW) {
                const char *path = (const char *) sqlite3_column_text(s->closure_stmt, 0);
                const char *hash = (const char *) sqlite3_column_text(s->closure_stmt, 1);
                sqlite3_int64 nar_size = sqlite3_column_int64(s->closure_stmt, 2);

                if (!path || !pf_store_path_basename(s->store_dir, path)) {
                        log_error("database %s: refusing row %s: not a path in %s", s->db_path,
                                  path ? path : "(null)", s->store_dir);
                        return -EBADMSG;
                }
                if (c->n_items == allocated) {
                        size_t n = allocated ? allocated * 2 : 64;
                        pf_closure_item *items = reallocarray(c->items, n, sizeof(*items));
                        if (!items)
                                return -ENOMEM;
                        c->items = items;
                        allocated = n;
                }
                pf_closure_item *it = &c->items[c->n_items++];
                it->path = strdup(path);
                it->nar_hash = strdup(hash ? hash : "");
                it->nar_size = nar_size > 0 ? (uint64_t) nar_size : 0;
                if (!it->path || !it->nar_hash)
                        return -ENOMEM;
                c->nar_size += it->nar_size;
        }
        if (r != SQLITE_DONE) {
                log_error("database %s: closure of %s: %s", s->db_path, root, sqlite3_errmsg(s->db));
                return pf_sqlite_errno(r);
        }
        return 0;
}

int pf_store_closure(pf_store *s, const char *root, pf_closure **ret) {
        pf_closure *c;
        int r;

        if (!pf_store_path_basename(s->store_dir, root))
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->refcount = 1;
        c->root = strdup(root);
        if (!c->root) {
                closure_free(c);
                return -ENOMEM;
        }

        pthread_mutex_lock(&s->lock);
        r = closure_query(s, root, c);
        sqlite3_reset(s->closure_stmt);
        sqlite3_clear_bindings(s->closure_stmt);
        pthread_mutex_unlock(&s->lock);

        if (r == 0 && c->n_items == 0)
                r = -ENOENT;
        if (r < 0) {
                closure_free(c);
                return r;
        }
        closure_compute_id(c);
        *ret = c;
        return 0;
}

void pf_strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

/* Runs SQL (one optional text parameter) and collects its first column, each row a
 * store path. HOSTILE_FATAL: whether a non-store-path row fails the query or is
 * skipped with a warning. */
static int query_paths(pf_store *s, const char *sql, const char *param, bool hostile_fatal, char ***ret_paths,
                       size_t *ret_n) {
        sqlite3_stmt *st = NULL;
        char **v = NULL;
        size_t n = 0, allocated = 0;
        int r;

        pthread_mutex_lock(&s->lock);
        r = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (r == SQLITE_OK && param)
                r = sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
        while (r == SQLITE_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
                const char *path = (const char *) sqlite3_column_text(st, 0);
                r = SQLITE_OK;
                if (!path || !pf_store_path_basename(s->store_dir, path)) {
                        if (hostile_fatal) {
                                log_error("database %s: refusing row %s: not a path in %s", s->db_path,
                                          path ? path : "(null)", s->store_dir);
                                r = SQLITE_CORRUPT;
                                break;
                        }
                        log_warning("database %s: skipping row %s: not a path in %s", s->db_path,
                                    path ? path : "(null)", s->store_dir);
                        continue;
                }
                if (n + 1 >= allocated) {
                        size_t na = allocated ? allocated * 2 : 64;
                        char **nv = reallocarray(v, na, sizeof(*v));
                        if (!nv) {
                                r = SQLITE_NOMEM;
                                break;
                        }
                        v = nv;
                        allocated = na;
                }
                v[n] = strdup(path);
                if (!v[n]) {
                        r = SQLITE_NOMEM;
                        break;
                }
                v[++n] = NULL;
        }
        if (r != SQLITE_DONE && r != SQLITE_CORRUPT)
                log_error("database %s: %s", s->db_path, sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->lock);

        if (r != SQLITE_DONE) {
                pf_strv_free(v);
                return pf_sqlite_errno(r);
        }
        if (!v) {
                v = calloc(1, sizeof(*v));
                if (!v)
                        return -ENOMEM;
        }
        *ret_paths = v;
        if (ret_n)
                *ret_n = n;
        return 0;
}

int pf_store_all_paths(pf_store *s, char ***ret_paths, size_t *ret_n) {
        return query_paths(s, "SELECT path FROM ValidPaths ORDER BY path", NULL, false, ret_paths, ret_n);
}

int pf_store_references(pf_store *s, const char *path, char ***ret_paths) {
        return query_paths(s,
                           "SELECT v2.path FROM ValidPaths v1"
                           " JOIN Refs ON Refs.referrer = v1.id"
                           " JOIN ValidPaths v2 ON Refs.reference = v2.id"
                           " WHERE v1.path = ?1 ORDER BY v2.path",
                           path, true, ret_paths, NULL);
}
