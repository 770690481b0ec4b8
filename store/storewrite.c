/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "packfs/log.h"
#include "packfs/nar.h"
#include "packfs/nixbase32.h"
#include "packfs/refscan.h"
#include "packfs/storepath.h"
#include "packfs/storewrite.h"

/* How long a writer waits for another one to release the database. */
#define DB_BUSY_TIMEOUT_MS (60 * 1000)
/* Deepest directory merge in a profile; deeper means a symlink loop. */
#define UNION_MAX_DEPTH 256
#define COPY_BUF_SIZE (128 * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3 *, sqlite3_close_v2);
DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize);
#define _cleanup_db_ _cleanup_(sqlite3_close_v2p)
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

/* Nix 2.x's schema.sql, verbatim but for the comments, so `.schema` reads the same. */
const char pf_nix_schema_sql[] =
        "create table if not exists ValidPaths (\n"
        "    id               integer primary key autoincrement not null,\n"
        "    path             text unique not null,\n"
        "    hash             text not null,\n"
        "    registrationTime integer not null,\n"
        "    deriver          text,\n"
        "    narSize          integer,\n"
        "    ultimate         integer, -- null implies \"false\"\n"
        "    sigs             text, -- space-separated\n"
        "    ca               text -- if not null, an assertion that the path is content-addressed; see ValidPathInfo\n"
        ");\n"
        "\n"
        "create table if not exists Refs (\n"
        "    referrer  integer not null,\n"
        "    reference integer not null,\n"
        "    primary key (referrer, reference),\n"
        "    foreign key (referrer) references ValidPaths(id) on delete cascade,\n"
        "    foreign key (reference) references ValidPaths(id) on delete restrict\n"
        ");\n"
        "\n"
        "create index if not exists IndexReferrer on Refs(referrer);\n"
        "create index if not exists IndexReference on Refs(reference);\n"
        "\n"
        "create trigger if not exists DeleteSelfRefs before delete on ValidPaths\n"
        "  begin\n"
        "    delete from Refs where referrer = old.id and reference = old.id;\n"
        "  end;\n"
        "\n"
        "create table if not exists DerivationOutputs (\n"
        "    drv  integer not null,\n"
        "    id   text not null, -- symbolic output id, usually \"out\"\n"
        "    path text not null,\n"
        "    primary key (drv, id),\n"
        "    foreign key (drv) references ValidPaths(id) on delete cascade\n"
        ");\n"
        "\n"
        "create index if not exists IndexDerivationOutputs on DerivationOutputs(path);\n";

/* ---- SQLite ---- */

static int db_errno(sqlite3 *db, int rc) {
        int sys = db ? sqlite3_system_errno(db) : 0;

        if (db)
                log_debug("sqlite: %s (%d)", sqlite3_errmsg(db), rc);
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CANTOPEN:
                return sys > 0 ? -sys : -ENOENT;
        case SQLITE_IOERR:
                return sys > 0 ? -sys : -EIO;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_MISUSE:
        case SQLITE_RANGE:
                return -EINVAL;
        default:
                return -EIO;
        }
}

static int db_exec(sqlite3 *db, const char *sql) {
        return db_errno(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static int db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret) {
        return db_errno(db, sqlite3_prepare_v2(db, sql, -1, ret, NULL));
}

/* Refuses databases that lack the columns we write, whatever else they have. */
static int db_check_schema(sqlite3 *db) {
        static const char *const probes[] = {
                "select id, path, hash, registrationTime, deriver, narSize, ultimate, sigs, ca "
                "from ValidPaths limit 0",
                "select referrer, reference from Refs limit 0",
        };

        for (size_t i = 0; i < ELEMENTSOF(probes); i++) {
                _cleanup_stmt_ sqlite3_stmt *st = NULL;
                int rc = sqlite3_prepare_v2(db, probes[i], -1, &st, NULL);

                if ((rc & 0xff) == SQLITE_ERROR) {
                        log_debug("sqlite: unknown schema: %s", sqlite3_errmsg(db));
                        return -EBADMSG;
                }
                if (rc != SQLITE_OK)
                        return db_errno(db, rc);
        }
        return 0;
}

/* Opens DB_PATH read-write (creating it if CREATE); -ENOENT if it is missing. */
static int db_open(const char *db_path, bool create, sqlite3 **ret) {
        _cleanup_db_ sqlite3 *db = NULL;
        int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
        int rc, r;

        /* sqlite3 would create a missing file; make "not initialised" an error of its own. */
        if (!create && access(db_path, F_OK) < 0)
                return negative_errno();
        rc = sqlite3_open_v2(db_path, &db, flags, NULL);
        if (rc != SQLITE_OK)
                return db_errno(db, rc);
        sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
        r = db_exec(db, "pragma foreign_keys = 1");
        if (r < 0)
                return r;
        *ret = TAKE_PTR(db);
        return 0;
}

static int db_open_store(const char *db_path, sqlite3 **ret) {
        _cleanup_db_ sqlite3 *db = NULL;
        int r;

        r = db_open(db_path, false, &db);
        if (r < 0)
                return r;
        r = db_check_schema(db);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(db);
        return 0;
}

/* Returns 1 if PATH is in ValidPaths, 0 if not. */
static int db_path_is_valid(sqlite3 *db, const char *path) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = db_prepare(db, "select 1 from ValidPaths where path = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return db_errno(db, rc);
}

/* A transaction that rolls back when it goes out of scope uncommitted. */
typedef struct db_txn {
        sqlite3 *db;
} db_txn;

static void db_txn_rollback(db_txn *t) {
        if (t->db)
                (void) sqlite3_exec(t->db, "rollback", NULL, NULL, NULL);
        t->db = NULL;
}
#define _cleanup_txn_ _cleanup_(db_txn_rollback)

/* "begin immediate" takes the write lock now, so the checks made inside hold until commit. */
static int db_txn_begin(sqlite3 *db, db_txn *t) {
        int r = db_exec(db, "begin immediate");

        if (r < 0)
                return r;
        t->db = db;
        return 0;
}

static int db_txn_commit(db_txn *t) {
        int r = db_exec(t->db, "commit");

        if (r < 0)
                return r;
        t->db = NULL;
        return 0;
}

/* ---- file system helpers ---- */

/* A malloc'd formatted string, or NULL when out of memory (asprintf leaves its
 * pointer undefined on failure, which a _cleanup_free_ variable cannot afford). */
_printf_(1, 2) static char *strprintf(const char *fmt, ...) {
        va_list ap;
        char *s;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        return n < 0 ? NULL : s;
}

static int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        struct stat st;

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != 0)
                        continue;
                char saved = *s;
                *s = 0;
                if (mkdir(p, mode) < 0) {
                        if (errno != EEXIST)
                                return negative_errno();
                        if (stat(p, &st) < 0)
                                return negative_errno();
                        if (!S_ISDIR(st.st_mode))
                                return -ENOTDIR;
                }
                *s = saved;
                if (saved == 0)
                        return 0;
        }
}

static int not_dot_or_dotdot(const struct dirent *de) {
        return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
}

static int cmp_dirents(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

typedef struct dir_list {
        struct dirent **ents;
        int n;
} dir_list;

static void dir_list_free(dir_list *l) {
        for (int i = 0; i < l->n; i++)
                free(l->ents[i]);
        free(l->ents);
        l->ents = NULL;
        l->n = 0;
}
#define _cleanup_dir_list_ _cleanup_(dir_list_free)

/* Lists directory PATH relative to DIRFD (symlinks followed), sorted bytewise. */
static int dir_list_read(int dirfd, const char *path, dir_list *ret) {
        struct dirent **ents = NULL;
        int n;

        n = scandirat(dirfd, path, &ents, not_dot_or_dotdot, cmp_dirents);
        if (n < 0)
                return negative_errno();
        ret->ents = ents;
        ret->n = n;
        return 0;
}

/* Removes NAME under DIRFD recursively, making read-only directories writable first. */
static int rm_rf_at(int dirfd, const char *name) {
        _cleanup_dir_list_ dir_list l = {};
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode))
                return unlinkat(dirfd, name, 0) < 0 ? negative_errno() : 0;

        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        (void) fchmod(fd, 0700);
        r = dir_list_read(fd, ".", &l);
        if (r < 0)
                return r;
        for (int i = 0; i < l.n; i++) {
                r = rm_rf_at(fd, l.ents[i]->d_name);
                if (r < 0)
                        return r;
        }
        return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 ? negative_errno() : 0;
}

/* Cleanup for a malloc'd path of a temporary tree: removes the tree, frees the string. */
static void rm_rf_freep(char **path) {
        if (*path) {
                int r = rm_rf_at(AT_FDCWD, *path);
                if (r < 0)
                        log_debug("cannot remove %s: %s", *path, strerror(-r));
                free(*path);
        }
}
#define _cleanup_rm_rf_ _cleanup_(rm_rf_freep)

static int fsync_path(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return negative_errno();
        return fsync(fd) < 0 ? negative_errno() : 0;
}

/* Reads the target of symlink NAME under DIRFD into a malloc'd string. */
static int read_link_at(int dirfd, const char *name, char **ret) {
        for (size_t size = 256;; size *= 2) {
                _cleanup_free_ char *buf = malloc(size);
                ssize_t n;

                if (!buf)
                        return -ENOMEM;
                n = readlinkat(dirfd, name, buf, size);
                if (n < 0)
                        return negative_errno();
                if ((size_t) n < size) {
                        buf[n] = 0;
                        *ret = TAKE_PTR(buf);
                        return 0;
                }
        }
}

/* Makes a temporary directory inside STORE_DIR; its name starts with '.' so it is
 * never mistaken for a store item. */
static int make_temp_dir(const char *store_dir, const char *what, char **ret) {
        _cleanup_free_ char *p = strprintf("%s/.packfs-%s-XXXXXX", store_dir, what);

        if (!p)
                return -ENOMEM;
        if (!mkdtemp(p))
                return negative_errno();
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- copying a tree into the store, canonicalised as Nix does ---- */

static const struct timespec mtime_one[2] = {
        { .tv_nsec = UTIME_OMIT }, /* atime untouched */
        { .tv_sec = 1 },
};

static int copy_data(int in, int out) {
        _cleanup_free_ char *buf = NULL;
        bool try_cfr = true;

        /* copy_file_range shares extents where the file system can (reflinks). */
        while (try_cfr) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, SSIZE_MAX, 0);
                if (n == 0)
                        return 0;
                if (n > 0)
                        continue;
                if (errno == EINTR)
                        continue;
                if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                        return negative_errno();
                try_cfr = false;
        }

        buf = malloc(COPY_BUF_SIZE);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(in, buf, COPY_BUF_SIZE);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return 0;
                for (ssize_t done = 0; done < n;) {
                        ssize_t w = write(out, buf + done, (size_t) (n - done));
                        if (w < 0) {
                                if (errno == EINTR)
                                        continue;
                                return negative_errno();
                        }
                        done += w;
                }
        }
}

static int copy_regular(int src_dirfd, const char *src_name, int dst_dirfd, const char *dst_name) {
        _cleanup_close_ int in = -1, out = -1;
        struct stat st;
        int r;

        in = openat(src_dirfd, src_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (in < 0)
                return negative_errno();
        if (fstat(in, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EIO;
        out = openat(dst_dirfd, dst_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
                return negative_errno();
        r = copy_data(in, out);
        if (r < 0)
                return r;
        if (fchmod(out, (st.st_mode & S_IXUSR) ? 0555 : 0444) < 0)
                return negative_errno();
        return futimens(out, mtime_one) < 0 ? negative_errno() : 0;
}

static int copy_symlink(int src_dirfd, const char *src_name, int dst_dirfd, const char *dst_name) {
        _cleanup_free_ char *target = NULL;
        int r;

        r = read_link_at(src_dirfd, src_name, &target);
        if (r < 0)
                return r;
        if (symlinkat(target, dst_dirfd, dst_name) < 0)
                return negative_errno();
        if (utimensat(dst_dirfd, dst_name, mtime_one, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        return 0;
}

static int copy_node(int src_dirfd, const char *src_name, int dst_dirfd, const char *dst_name);

static int copy_directory(int src_dirfd, const char *src_name, int dst_dirfd, const char *dst_name) {
        _cleanup_dir_list_ dir_list l = {};
        _cleanup_close_ int in = -1, out = -1;
        int r;

        in = openat(src_dirfd, src_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
                return negative_errno();
        if (mkdirat(dst_dirfd, dst_name, 0700) < 0)
                return negative_errno();
        out = openat(dst_dirfd, dst_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (out < 0)
                return negative_errno();

        r = dir_list_read(in, ".", &l);
        if (r < 0)
                return r;
        for (int i = 0; i < l.n; i++) {
                r = copy_node(in, l.ents[i]->d_name, out, l.ents[i]->d_name);
                if (r < 0)
                        return r;
        }
        /* Made read-only only now that it is filled, so copying works without root. */
        if (fchmod(out, 0555) < 0)
                return negative_errno();
        return futimens(out, mtime_one) < 0 ? negative_errno() : 0;
}

static int copy_node(int src_dirfd, const char *src_name, int dst_dirfd, const char *dst_name) {
        struct stat st;

        if (fstatat(src_dirfd, src_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        if (S_ISREG(st.st_mode))
                return copy_regular(src_dirfd, src_name, dst_dirfd, dst_name);
        if (S_ISDIR(st.st_mode))
                return copy_directory(src_dirfd, src_name, dst_dirfd, dst_name);
        if (S_ISLNK(st.st_mode))
                return copy_symlink(src_dirfd, src_name, dst_dirfd, dst_name);
        return -EINVAL;
}

/* ---- store paths ---- */

static int cmp_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void hex_encode(const uint8_t *in, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 0xf];
        }
        out[2 * n] = 0;
}

static int sha256_buffer(const void *data, size_t len, uint8_t ret[32]) {
        _cleanup_nar_hasher_ pf_nar_hasher *h = NULL;
        int r;

        r = pf_nar_hasher_new(&h);
        if (r < 0)
                return r;
        r = pf_nar_hasher_sink(h, data, len);
        if (r < 0)
                return r;
        pf_nar_hasher_finish(h, ret, NULL);
        return 0;
}

/* "source[:<ref>...]:sha256:<hex>:<store_dir>:<name>", references sorted. */
static int source_fingerprint(const char *store_dir, const char *name, const uint8_t nar_sha256[32],
                              char *const *refs, size_t n_refs, char **ret, size_t *ret_len) {
        _cleanup_free_ char **sorted = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *s = NULL;
        char hex[65];
        size_t len = 0;

        if (n_refs > 0) {
                sorted = malloc(n_refs * sizeof(*sorted));
                if (!sorted)
                        return -ENOMEM;
                memcpy(sorted, refs, n_refs * sizeof(*sorted));
                qsort(sorted, n_refs, sizeof(*sorted), cmp_strings);
        }
        f = open_memstream(&s, &len);
        if (!f)
                return -ENOMEM;
        fputs("source", f);
        for (size_t i = 0; i < n_refs; i++)
                fprintf(f, ":%s", sorted[i]);
        hex_encode(nar_sha256, 32, hex);
        fprintf(f, ":sha256:%s:%s:%s", hex, store_dir, name);
        if (fclose(TAKE_PTR(f)) != 0 || !s)
                return -ENOMEM;
        *ret = TAKE_PTR(s);
        *ret_len = len;
        return 0;
}

static bool store_dir_valid(const char *store_dir) {
        size_t n = strlen(store_dir);

        return n > 1 && store_dir[0] == '/' && store_dir[n - 1] != '/';
}

int pf_store_path_make_source(const char *store_dir, const char *name, const uint8_t nar_sha256[32],
                              char *const *refs, size_t n_refs, char **ret_path) {
        _cleanup_free_ char *fp = NULL;
        uint8_t digest[32], folded[20] = {};
        char hash32[PF_HASH_PART_LEN + 1];
        size_t fp_len;
        char *path;
        int r;

        if (!store_dir || !name || !nar_sha256 || (n_refs > 0 && !refs) || !ret_path)
                return -EINVAL;
        if (!store_dir_valid(store_dir) || !pf_store_name_valid(name))
                return -EINVAL;

        r = source_fingerprint(store_dir, name, nar_sha256, refs, n_refs, &fp, &fp_len);
        if (r < 0)
                return r;
        r = sha256_buffer(fp, fp_len, digest);
        if (r < 0)
                return r;
        /* Nix's compressHash(): fold the digest onto 160 bits by XOR. */
        for (size_t i = 0; i < sizeof(digest); i++)
                folded[i % sizeof(folded)] ^= digest[i];
        static_assert(PF_HASH_PART_LEN == (sizeof(folded) * 8 + 4) / 5, "20 bytes make 32 chars");
        pf_nixbase32_encode(folded, sizeof(folded), hash32);

        path = strprintf("%s/%s-%s", store_dir, hash32, name);
        if (!path)
                return -ENOMEM;
        *ret_path = path;
        return 0;
}

/* ---- adding an item ---- */

/* What one pass over SRC's NAR yields. */
typedef struct nar_info {
        uint8_t sha256[32];
        uint64_t size;
        char **refs; /* sorted store paths, owned */
        size_t n_refs;
} nar_info;

static void nar_info_done(nar_info *info) {
        for (size_t i = 0; i < info->n_refs; i++)
                free(info->refs[i]);
        free(info->refs);
        info->refs = NULL;
        info->n_refs = 0;
}
#define _cleanup_nar_info_ _cleanup_(nar_info_done)

/* The valid paths of the store that an item may refer to, indexed like the scanner's candidates. */
typedef struct candidates {
        pf_refscan *scan;
        char **paths;
        size_t n, cap;
} candidates;

static void candidates_done(candidates *c) {
        pf_refscan_free(c->scan);
        for (size_t i = 0; i < c->n; i++)
                free(c->paths[i]);
        free(c->paths);
        *c = (candidates) {};
}
#define _cleanup_candidates_ _cleanup_(candidates_done)

static int candidates_add(candidates *c, const char *store_dir, const char *path) {
        const char *base = pf_store_path_basename(store_dir, path);
        char **paths;
        int idx;

        /* Paths of other store directories cannot be referred to from this one. */
        if (!base)
                return 0;
        idx = pf_refscan_add(c->scan, base);
        if (idx < 0)
                return idx;
        if ((size_t) idx < c->n)
                return 0; /* the same hash part twice: keep the first path */
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 256;
                paths = realloc(c->paths, cap * sizeof(*paths));
                if (!paths)
                        return -ENOMEM;
                c->paths = paths;
                c->cap = cap;
        }
        c->paths[c->n] = strdup(path);
        if (!c->paths[c->n])
                return -ENOMEM;
        c->n++;
        return 0;
}

static int candidates_load(sqlite3 *db, const char *store_dir, candidates *c) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = pf_refscan_new(&c->scan);
        if (r < 0)
                return r;
        r = db_prepare(db, "select path from ValidPaths", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *path = (const char *) sqlite3_column_text(st, 0);
                if (!path)
                        continue;
                r = candidates_add(c, store_dir, path);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : db_errno(db, rc);
}

typedef struct add_sink {
        pf_nar_hasher *hasher;
        pf_refscan *scan;
} add_sink;

static int add_sink_fn(void *userdata, const void *data, size_t len) {
        add_sink *s = userdata;
        int r;

        r = pf_nar_hasher_sink(s->hasher, data, len);
        if (r < 0)
                return r;
        return pf_refscan_feed(s->scan, data, len);
}

static int collect_refs(const candidates *c, nar_info *info) {
        size_t n = pf_refscan_n_seen(c->scan);

        if (n == 0)
                return 0;
        info->refs = calloc(n, sizeof(*info->refs));
        if (!info->refs)
                return -ENOMEM;
        for (size_t i = 0; i < c->n; i++) {
                if (!pf_refscan_seen(c->scan, i))
                        continue;
                info->refs[info->n_refs] = strdup(c->paths[i]);
                if (!info->refs[info->n_refs])
                        return -ENOMEM;
                info->n_refs++;
        }
        qsort(info->refs, info->n_refs, sizeof(*info->refs), cmp_strings);
        return 0;
}

/* Hashes SRC's NAR and finds its references in one pass. */
static int scan_source(sqlite3 *db, const char *store_dir, const char *src, nar_info *ret) {
        _cleanup_nar_hasher_ pf_nar_hasher *hasher = NULL;
        _cleanup_candidates_ candidates c = {};
        _cleanup_nar_info_ nar_info info = {};
        add_sink sink;
        int r;

        r = candidates_load(db, store_dir, &c);
        if (r < 0)
                return r;
        r = pf_nar_hasher_new(&hasher);
        if (r < 0)
                return r;
        sink = (add_sink) { .hasher = hasher, .scan = c.scan };
        r = pf_nar_dump(src, add_sink_fn, &sink);
        if (r < 0)
                return r;
        pf_nar_hasher_finish(hasher, info.sha256, &info.size);
        r = collect_refs(&c, &info);
        if (r < 0)
                return r;
        *ret = info;
        info = (nar_info) {};
        return 0;
}

/*
 * SRC without trailing slashes (so a symlink is added as a symlink, as Nix does)
 * and the item name `nix-store --add` takes from it: its last component.
 */
static int source_name(const char *src, char **ret_src, char **ret_name) {
        _cleanup_free_ char *path = strdup(src), *name = NULL;
        size_t len = strlen(src);
        char *slash;

        if (!path)
                return -ENOMEM;
        while (len > 1 && path[len - 1] == '/')
                path[--len] = 0;
        slash = strrchr(path, '/');
        name = strdup(slash ? slash + 1 : path);
        if (!name)
                return -ENOMEM;
        if (!pf_store_name_valid(name))
                return -EINVAL;
        *ret_src = TAKE_PTR(path);
        *ret_name = TAKE_PTR(name);
        return 0;
}

/* Copies SRC into a new temporary directory of the store; *RET_TMP is the directory. */
static int copy_to_temp(const char *store_dir, const char *src, char **ret_tmp, char **ret_item) {
        _cleanup_rm_rf_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        char *item;
        int r;

        r = make_temp_dir(store_dir, "add", &tmp);
        if (r < 0)
                return r;
        fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        r = copy_node(AT_FDCWD, src, fd, "item");
        if (r < 0)
                return r;
        /* One syncfs() instead of an fsync() per file and directory: as durable
         * before the item is registered, and not thousands of journal commits. */
        if (syncfs(fd) < 0)
                return negative_errno();
        item = strprintf("%s/item", tmp);
        if (!item)
                return -ENOMEM;
        *ret_item = item;
        *ret_tmp = TAKE_PTR(tmp);
        return 0;
}

/* The copy must be exactly what was hashed, or the database would lie about it. */
static int verify_copy(const char *item, const nar_info *info) {
        uint8_t sha256[32];
        uint64_t size;
        int r;

        r = pf_nar_hash(item, sha256, &size);
        if (r < 0)
                return r;
        if (size != info->size || memcmp(sha256, info->sha256, sizeof(sha256)) != 0) {
                log_debug("%s changed while it was added to the store", item);
                return -EIO;
        }
        return 0;
}

static int insert_valid_path(sqlite3 *db, const char *path, const nar_info *info, int64_t *ret_id) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char hash[7 + 64 + 1], ca[15 + 52 + 1];
        int r, rc;

        memcpy(hash, "sha256:", 7);
        hex_encode(info->sha256, 32, hash + 7);
        memcpy(ca, "fixed:r:sha256:", 15);
        pf_nixbase32_encode(info->sha256, 32, ca + 15);

        r = db_prepare(db,
                       "insert into ValidPaths (path, hash, registrationTime, narSize, ca) "
                       "values (?1, ?2, ?3, ?4, ?5)",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) time(NULL));
        sqlite3_bind_int64(st, 4, (sqlite3_int64) info->size);
        sqlite3_bind_text(st, 5, ca, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return db_errno(db, rc);
        *ret_id = sqlite3_last_insert_rowid(db);
        return 0;
}

static int insert_refs(sqlite3 *db, int64_t referrer, const nar_info *info) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = db_prepare(db,
                       "insert or ignore into Refs (referrer, reference) "
                       "select ?1, id from ValidPaths where path = ?2",
                       &st);
        if (r < 0)
                return r;
        for (size_t i = 0; i < info->n_refs; i++) {
                sqlite3_reset(st);
                sqlite3_bind_int64(st, 1, referrer);
                sqlite3_bind_text(st, 2, info->refs[i], -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
                if (rc != SQLITE_DONE)
                        return db_errno(db, rc);
                /* Deleted (garbage collected) since the scan: the item would miss a reference. */
                if (sqlite3_changes(db) != 1) {
                        log_debug("reference %s vanished from the database", info->refs[i]);
                        return -ESTALE;
                }
        }
        return 0;
}

/* Moves ITEM to PATH and registers it; the caller holds the write lock. */
static int install_item(sqlite3 *db, const char *store_dir, const char *path, const char *item,
                        const nar_info *info) {
        int64_t id = 0;
        int r;

        if (rename(item, path) < 0)
                return negative_errno();
        r = fsync_path(store_dir);
        if (r < 0)
                return r;
        r = insert_valid_path(db, path, info, &id);
        if (r < 0)
                return r;
        return insert_refs(db, id, info);
}

/*
 * Installs ITEM as PATH under the database write lock, so that concurrent adders
 * of the same path serialise: the second one finds it valid and drops its copy.
 * Returns 1 if PATH was added, 0 if it was valid already.
 */
static int commit_item(sqlite3 *db, const char *store_dir, const char *path, const char *item,
                       const nar_info *info) {
        _cleanup_txn_ db_txn txn = {};
        int r;

        r = db_txn_begin(db, &txn);
        if (r < 0)
                return r;
        r = db_path_is_valid(db, path);
        if (r < 0)
                return r;
        if (r > 0)
                return 0; /* added by someone else meanwhile; the rollback releases the lock */

        /* Whatever is at PATH is not valid: debris of an interrupted add. */
        r = rm_rf_at(AT_FDCWD, path);
        if (r < 0)
                return r;
        r = install_item(db, store_dir, path, item, info);
        if (r >= 0)
                r = db_txn_commit(&txn);
        if (r < 0) {
                /* Not registered, so nobody may rely on it: take it back out. */
                (void) rm_rf_at(AT_FDCWD, path);
                return r;
        }
        return 1;
}

int pf_store_add(const char *store_dir, const char *db_path, const char *src, char **ret_store_path) {
        _cleanup_free_ char *source = NULL, *name = NULL, *path = NULL, *item = NULL;
        _cleanup_rm_rf_ char *tmp = NULL;
        _cleanup_nar_info_ nar_info info = {};
        _cleanup_db_ sqlite3 *db = NULL;
        int r;

        if (!store_dir || !db_path || !src || !ret_store_path || !store_dir_valid(store_dir))
                return -EINVAL;
        r = source_name(src, &source, &name);
        if (r < 0)
                return r;
        r = db_open_store(db_path, &db);
        if (r < 0)
                return r;

        r = scan_source(db, store_dir, source, &info);
        if (r < 0)
                return r;
        /* No references in the type: the name `nix-store --add` gives (see storewrite.h). */
        r = pf_store_path_make_source(store_dir, name, info.sha256, NULL, 0, &path);
        if (r < 0)
                return r;
        r = db_path_is_valid(db, path);
        if (r < 0)
                return r;
        if (r == 0) {
                r = copy_to_temp(store_dir, source, &tmp, &item);
                if (r < 0)
                        return r;
                r = verify_copy(item, &info);
                if (r < 0)
                        return r;
                r = commit_item(db, store_dir, path, item, &info);
                if (r < 0)
                        return r;
                log_debug("added %s (%zu references)", path, info.n_refs);
        }
        *ret_store_path = TAKE_PTR(path);
        return 0;
}

int pf_store_init(const char *store_dir, const char *db_path) {
        _cleanup_free_ char *db_dir = NULL;
        _cleanup_db_ sqlite3 *db = NULL;
        _cleanup_txn_ db_txn txn = {};
        char *slash;
        int r;

        if (!store_dir || !db_path || !store_dir_valid(store_dir))
                return -EINVAL;
        r = mkdir_p(store_dir, 0755);
        if (r < 0)
                return r;
        db_dir = strdup(db_path);
        if (!db_dir)
                return -ENOMEM;
        slash = strrchr(db_dir, '/');
        if (slash && slash != db_dir) {
                *slash = 0;
                r = mkdir_p(db_dir, 0755);
                if (r < 0)
                        return r;
        }

        r = db_open(db_path, true, &db);
        if (r < 0)
                return r;
        /* WAL lets readers (the mount) go on while a writer commits. */
        r = db_exec(db, "pragma journal_mode = wal");
        if (r < 0)
                return r;
        r = db_txn_begin(db, &txn);
        if (r < 0)
                return r;
        r = db_exec(db, pf_nix_schema_sql);
        if (r < 0)
                return r;
        r = db_check_schema(db);
        if (r < 0)
                return r;
        return db_txn_commit(&txn);
}

/* ---- profiles: the symlink union ---- */

/* Entries buildEnv leaves out of profiles: useless there, or bound to collide. */
static bool union_ignored(const char *src_file) {
        static const char *const suffixes[] = {
                "/propagated-build-inputs", "/nix-support", "/perllocal.pod", "/info/dir",
                "/log", "/manifest.nix", "/manifest.json",
        };
        size_t n = strlen(src_file);

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t m = strlen(suffixes[i]);
                if (n >= m && strcmp(src_file + n - m, suffixes[i]) == 0)
                        return true;
        }
        return false;
}

static int union_dir(int dst_fd, const char *dst_path, const char *src_dir, unsigned depth);

static void warn_collision(const char *dst_path, const char *name, int dst_fd, const char *src_file) {
        _cleanup_free_ char *kept = NULL;

        if (read_link_at(dst_fd, name, &kept) < 0)
                kept = NULL;
        log_warning("profile: collision at %s/%s between %s and %s; keeping the first",
                    dst_path, name, kept ? kept : "a directory", src_file);
}

/*
 * The directory DST_FD/NAME is a symlink to another item's directory and a second
 * item has the same directory: replace the symlink by a real directory holding
 * links to the first item's entries, which SRC_FILE's are merged into next.
 * Returns the new directory's fd, or -ENOTDIR if the symlink is not to a directory.
 */
static int union_expand(int dst_fd, const char *dst_path, const char *name, unsigned depth) {
        _cleanup_free_ char *target = NULL, *sub_path = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        r = read_link_at(dst_fd, name, &target);
        if (r < 0)
                return r;
        if (stat(target, &st) < 0 || !S_ISDIR(st.st_mode))
                return -ENOTDIR;
        if (unlinkat(dst_fd, name, 0) < 0)
                return negative_errno();
        if (mkdirat(dst_fd, name, 0755) < 0)
                return negative_errno();
        fd = openat(dst_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        sub_path = strprintf("%s/%s", dst_path, name);
        if (!sub_path)
                return -ENOMEM;
        r = union_dir(fd, sub_path, target, depth + 1);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

/* Merges the directory SRC_FILE into DST_FD/NAME, which exists or not. */
static int union_subdir(int dst_fd, const char *dst_path, const char *name, const char *src_file,
                        unsigned depth) {
        _cleanup_free_ char *sub_path = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (fstatat(dst_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != ENOENT)
                        return negative_errno();
                /* Only this item has it so far: one link does. */
                return symlinkat(src_file, dst_fd, name) < 0 ? negative_errno() : 0;
        }
        if (S_ISDIR(st.st_mode)) {
                fd = openat(dst_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return negative_errno();
        } else {
                /* The profile holds only directories and symlinks. */
                assert(S_ISLNK(st.st_mode));
                fd = union_expand(dst_fd, dst_path, name, depth);
                if (fd == -ENOTDIR) {
                        warn_collision(dst_path, name, dst_fd, src_file);
                        return 0;
                }
                if (fd < 0)
                        return fd;
        }
        sub_path = strprintf("%s/%s", dst_path, name);
        if (!sub_path)
                return -ENOMEM;
        return union_dir(fd, sub_path, src_file, depth + 1);
}

/* Links the non-directory SRC_FILE as DST_FD/NAME unless an earlier item has that name. */
static int union_file(int dst_fd, const char *dst_path, const char *name, const char *src_file) {
        if (symlinkat(src_file, dst_fd, name) >= 0)
                return 0;
        if (errno != EEXIST)
                return negative_errno();
        warn_collision(dst_path, name, dst_fd, src_file);
        return 0;
}

/*
 * Links the entries of SRC_DIR (a directory inside an item, symlinks followed)
 * into the directory DST_FD, whose path in the profile is DST_PATH (for messages).
 */
static int union_dir(int dst_fd, const char *dst_path, const char *src_dir, unsigned depth) {
        _cleanup_dir_list_ dir_list l = {};
        int r;

        if (depth > UNION_MAX_DEPTH)
                return -ELOOP;
        r = dir_list_read(AT_FDCWD, src_dir, &l);
        if (r < 0)
                return r;
        for (int i = 0; i < l.n; i++) {
                const char *name = l.ents[i]->d_name;
                _cleanup_free_ char *src_file = NULL;
                struct stat st;

                if (name[0] == '.')
                        continue;
                src_file = strprintf("%s/%s", src_dir, name);
                if (!src_file)
                        return -ENOMEM;
                if (union_ignored(src_file))
                        continue;
                if (stat(src_file, &st) < 0) {
                        if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
                                return negative_errno();
                        log_debug("profile: skipping dangling symlink %s", src_file);
                        continue;
                }
                if (S_ISDIR(st.st_mode))
                        r = union_subdir(dst_fd, dst_path, name, src_file, depth);
                else
                        r = union_file(dst_fd, dst_path, name, src_file);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Every item must be a valid directory item of this store. */
static int check_profile_items(const char *store_dir, const char *db_path, char *const *items,
                               size_t n_items) {
        _cleanup_db_ sqlite3 *db = NULL;
        struct stat st;
        int r;

        r = db_open_store(db_path, &db);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_items; i++) {
                if (!items[i] || !pf_store_path_basename(store_dir, items[i]))
                        return -EINVAL;
                r = db_path_is_valid(db, items[i]);
                if (r < 0)
                        return r;
                if (r == 0) {
                        log_debug("profile: %s is not a valid store path", items[i]);
                        return -ENOENT;
                }
                if (stat(items[i], &st) < 0)
                        return negative_errno();
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
        }
        return 0;
}

static bool listed_before(char *const *items, size_t i) {
        for (size_t j = 0; j < i; j++)
                if (strcmp(items[j], items[i]) == 0)
                        return true;
        return false;
}

/* Builds the union of ITEMS as "<tmp>/profile"; *RET_TMP is the temporary directory. */
static int build_union(const char *store_dir, char *const *items, size_t n_items, char **ret_tmp,
                       char **ret_tree) {
        _cleanup_rm_rf_ char *tmp = NULL;
        _cleanup_free_ char *tree = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        r = make_temp_dir(store_dir, "profile", &tmp);
        if (r < 0)
                return r;
        tree = strprintf("%s/profile", tmp);
        if (!tree)
                return -ENOMEM;
        if (mkdir(tree, 0755) < 0)
                return negative_errno();
        fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        for (size_t i = 0; i < n_items; i++) {
                /* Listing an item twice would only make it collide with itself. */
                if (listed_before(items, i))
                        continue;
                r = union_dir(fd, "profile", items[i], 0);
                if (r < 0)
                        return r;
        }
        *ret_tree = TAKE_PTR(tree);
        *ret_tmp = TAKE_PTR(tmp);
        return 0;
}

/* ---- profiles: generation links ---- */

/* A relative path of non-empty components other than "." and "..". */
static bool profile_name_valid(const char *name) {
        const char *p = name;

        if (!*name || *name == '/')
                return false;
        for (;;) {
                size_t n = strcspn(p, "/");
                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                if (n > NAME_MAX)
                        return false;
                if (p[n] == 0)
                        return true;
                p += n + 1;
        }
}

/* If ENTRY is "<base>-<N>-link", returns N > 0; otherwise 0. */
static unsigned long generation_number(const char *entry, const char *base) {
        size_t n = strlen(base);
        unsigned long num = 0;
        const char *p;

        if (strncmp(entry, base, n) != 0 || entry[n] != '-')
                return 0;
        p = entry + n + 1;
        if (*p < '1' || *p > '9')
                return 0;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (num > (ULONG_MAX - 9) / 10)
                        return 0;
                num = num * 10 + (unsigned long) (*p - '0');
        }
        return strcmp(p, "-link") == 0 ? num : 0;
}

static int highest_generation(int dir_fd, const char *base, unsigned long *ret) {
        _cleanup_dir_list_ dir_list l = {};
        unsigned long max = 0;
        int r;

        r = dir_list_read(dir_fd, ".", &l);
        if (r < 0)
                return r;
        for (int i = 0; i < l.n; i++)
                max = MAX(max, generation_number(l.ents[i]->d_name, base));
        *ret = max;
        return 0;
}

/*
 * Creates "<base>-<N>-link" -> STORE_PATH in DIR_FD for the next free N, or
 * reuses the highest generation if it already points there, as nix-env does.
 * *RET_GEN is the link's name.
 */
static int make_generation_link(int dir_fd, const char *base, const char *store_path, char **ret_gen) {
        unsigned long num;
        int r;

        r = highest_generation(dir_fd, base, &num);
        if (r < 0)
                return r;
        if (num > 0) {
                _cleanup_free_ char *last = NULL, *target = NULL;
                last = strprintf("%s-%lu-link", base, num);
                if (!last)
                        return -ENOMEM;
                if (read_link_at(dir_fd, last, &target) >= 0 && strcmp(target, store_path) == 0) {
                        *ret_gen = TAKE_PTR(last);
                        return 0;
                }
        }
        /* Another writer may take a number first: symlinkat fails then, try the next. */
        for (unsigned tries = 0; tries < 1000; tries++) {
                _cleanup_free_ char *gen = NULL;
                gen = strprintf("%s-%lu-link", base, ++num);
                if (!gen)
                        return -ENOMEM;
                if (symlinkat(store_path, dir_fd, gen) >= 0) {
                        *ret_gen = TAKE_PTR(gen);
                        return 0;
                }
                if (errno != EEXIST)
                        return negative_errno();
        }
        return -EEXIST;
}

/* Points BASE in DIR_FD at TARGET atomically: a temporary symlink renamed over it. */
static int replace_symlink(int dir_fd, const char *base, const char *target) {
        _cleanup_free_ char *tmp = NULL;
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        tmp = strprintf(".%s.tmp-%d-%ld", base, (int) getpid(), (long) ts.tv_nsec);
        if (!tmp)
                return -ENOMEM;
        if (symlinkat(target, dir_fd, tmp) < 0)
                return negative_errno();
        if (renameat(dir_fd, tmp, dir_fd, base) < 0) {
                int r = negative_errno();
                (void) unlinkat(dir_fd, tmp, 0);
                return r;
        }
        return fsync(dir_fd) < 0 ? negative_errno() : 0;
}

static int switch_profile(const char *profiles_dir, const char *name, const char *store_path,
                          char **ret_link) {
        _cleanup_free_ char *link = NULL, *dir = NULL, *gen = NULL;
        _cleanup_close_ int dir_fd = -1;
        const char *base;
        int r;

        link = strprintf("%s/%s", profiles_dir, name);
        if (!link)
                return -ENOMEM;
        dir = strdup(link);
        if (!dir)
                return -ENOMEM;
        *strrchr(dir, '/') = 0;
        base = strrchr(link, '/') + 1;

        r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return negative_errno();
        r = make_generation_link(dir_fd, base, store_path, &gen);
        if (r < 0)
                return r;
        r = replace_symlink(dir_fd, base, gen);
        if (r < 0)
                return r;
        *ret_link = TAKE_PTR(link);
        return 0;
}

int pf_store_make_profile(const char *store_dir, const char *db_path, const char *profiles_dir,
                          const char *name, char *const *items, size_t n_items, char **ret_link) {
        _cleanup_free_ char *tree = NULL, *store_path = NULL;
        _cleanup_rm_rf_ char *tmp = NULL;
        int r;

        if (!store_dir || !db_path || !profiles_dir || !name || (n_items > 0 && !items) || !ret_link)
                return -EINVAL;
        if (!store_dir_valid(store_dir) || !*profiles_dir || !profile_name_valid(name))
                return -EINVAL;

        r = check_profile_items(store_dir, db_path, items, n_items);
        if (r < 0)
                return r;
        r = build_union(store_dir, items, n_items, &tmp, &tree);
        if (r < 0)
                return r;
        r = pf_store_add(store_dir, db_path, tree, &store_path);
        if (r < 0)
                return r;
        return switch_profile(profiles_dir, name, store_path, ret_link);
}
