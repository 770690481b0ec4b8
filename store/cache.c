/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "packfs/cache.h"
#include "packfs/digest.h"
#include "packfs/io.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "sqlite-util.h"

#define CACHE_BUSY_TIMEOUT_MS 10000
#define JOB_UPDATE_INTERVAL_NS (250 * 1000 * 1000LL)

typedef struct pin {
        uint8_t key[32];
        unsigned count;
} pin;

typedef struct pending_record {
        uint8_t key[32];
        void *data;
        size_t size;
        int64_t put_ns;         /* its last use, for eviction */
} pending_record;

/* Past either, a put writes the pending records out. */
#define PENDING_MAX_RECORDS 512
#define PENDING_MAX_BYTES (16u << 20)

struct pf_cache {
        char *dir;
        char *owner;
        uint64_t max_bytes;

        /* Guards everything below. */
        pthread_mutex_t lock;
        sqlite3 *db;
        /* The record lookup, prepared once per connection: it runs for every
         * store item of every plan (NULL until first used). */
        sqlite3_stmt *record_get;
        /* Records put but not yet in the index: a plan puts one or more per
         * store item, and a transaction each costs more than the walk they
         * save. Written in one transaction by pf_cache_flush_records(), when
         * there are many, and when the connection closes; gets see them. */
        pending_record *pending;
        size_t n_pending, allocated_pending, pending_bytes;
        pin *pins;
        size_t n_pins, allocated_pins;
        unsigned next_job_id;
        bool full_logged;
};

struct pf_cache_writer {
        pf_cache *cache;        /* NULL: memory only */
        uint8_t key[32];
        int fd;
        char *tmp_path;         /* NULL once in memory */
        uint64_t size;
};

struct pf_cache_job {
        pf_cache *cache;
        unsigned id;
        uint64_t total;
        int64_t last_update_ns; /* guarded by cache->lock */
};

static const char schema_sql[] =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        /* Member-list records are read whole at every plan: through a mapping,
         * not a pread per page. */
        "PRAGMA mmap_size=268435456;"
        "CREATE TABLE IF NOT EXISTS objects (key BLOB PRIMARY KEY, size INTEGER NOT NULL,"
        "  last_use INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE INDEX IF NOT EXISTS objects_by_use ON objects (last_use);"
        "CREATE TABLE IF NOT EXISTS manifests (key BLOB PRIMARY KEY, objects BLOB NOT NULL,"
        "  last_use INTEGER NOT NULL) WITHOUT ROWID;"
        /* A rowid table: in a WITHOUT ROWID one, every seek copies the large rows it passes. */
        "CREATE TABLE IF NOT EXISTS records (key BLOB PRIMARY KEY, size INTEGER NOT NULL,"
        "  last_use INTEGER NOT NULL, data BLOB NOT NULL);"
        "CREATE INDEX IF NOT EXISTS records_by_use ON records (last_use);"
        "CREATE TABLE IF NOT EXISTS jobs (pid INTEGER NOT NULL, id INTEGER NOT NULL, owner TEXT NOT NULL,"
        "  name TEXT NOT NULL, total INTEGER NOT NULL, done INTEGER NOT NULL, started INTEGER NOT NULL,"
        "  output INTEGER NOT NULL DEFAULT 0, queued INTEGER NOT NULL DEFAULT 0,"
        "  PRIMARY KEY (pid, id));";

void pf_hex(const uint8_t *bytes, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[bytes[i] >> 4];
                out[2 * i + 1] = digits[bytes[i] & 15];
        }
        out[2 * n] = 0;
}

static int64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool pid_alive(long pid) {
        return pid > 0 && (kill((pid_t) pid, 0) == 0 || errno != ESRCH);
}

int pf_cache_default_dir(char **ret) {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        int n;

        if (geteuid() == 0)
                n = asprintf(ret, "/var/cache/packfs");
        else if (xdg && xdg[0] == '/')
                n = asprintf(ret, "%s/packfs", xdg);
        else if (home && home[0] == '/')
                n = asprintf(ret, "%s/.cache/packfs", home);
        else
                return -ENOENT;
        return n < 0 ? -ENOMEM : 0;
}

int pf_cache_parse_size(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;
        unsigned shift = 0;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || s[0] == '-')
                return -EINVAL;
        switch (*end) {
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        case 't': case 'T': shift = 40; end++; break;
        }
        if (*end == 'i' && shift)
                end++;
        if (*end == 'B' || *end == 'b')
                end++;
        if (*end || (shift && v > (UINT64_MAX >> shift)))
                return -EINVAL;
        *ret = (uint64_t) v << shift;
        return 0;
}

/* Makes PATH with MODE, and its missing parents with 0755. */
static int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++)
                if (*s == '/') {
                        *s = 0;
                        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        *s = '/';
                }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

static void object_path(const pf_cache *c, const uint8_t key[32], char *buf, size_t size) {
        char hex[65];
        pf_hex(key, 32, hex);
        snprintf(buf, size, "%s/objects/%.2s/%s", c->dir, hex, hex);
}

static bool is_disk_full(int r) {
        return r == -ENOSPC || r == -EDQUOT;
}

static void log_disk_full_locked(pf_cache *c) {
        if (!c->full_logged)
                log_warning("cache %s: disk full; encoding without caching", c->dir);
        c->full_logged = true;
}

static int exec_sql(sqlite3 *db, const char *sql) {
        char *msg = NULL;
        int r = sqlite3_exec(db, sql, NULL, NULL, &msg);
        if (r != SQLITE_OK) {
                log_error("cache index: %s", msg ? msg : sqlite3_errstr(r));
                sqlite3_free(msg);
                return pf_sqlite_errno(r);
        }
        return 0;
}

/* Runs a prepared statement to completion; SQLITE_ROW results are ignored. */
static int step_done(sqlite3_stmt *st) {
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW)
                ;
        r = r == SQLITE_DONE ? 0 : pf_sqlite_errno(r);
        sqlite3_finalize(st);
        return r;
}

static int prepare(pf_cache *c, const char *sql, sqlite3_stmt **ret) {
        int r = sqlite3_prepare_v2(c->db, sql, -1, ret, NULL);
        if (r != SQLITE_OK) {
                log_error("cache index %s: %s", c->dir, sqlite3_errmsg(c->db));
                return pf_sqlite_errno(r);
        }
        return 0;
}

/* Caches made before jobs had their output and queued columns. */
static int upgrade_jobs(sqlite3 *db) {
        sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(db, "SELECT output, queued FROM jobs LIMIT 0", -1, &st, NULL) == SQLITE_OK) {
                sqlite3_finalize(st);
                return 0;
        }
        return exec_sql(db, "ALTER TABLE jobs ADD COLUMN output INTEGER NOT NULL DEFAULT 0;"
                            "ALTER TABLE jobs ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;");
}

/* The index names every pack's closure: created 0600 here, as SQLite would
 * make it 0644 (its -wal and -shm files take the index's mode). One a packfs
 * made 0644 before is tightened (if ours). Best effort: the cache directory
 * itself is 0700 (make_private()). */
static void index_make_private(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        struct stat st;

        if (fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 077) && st.st_uid == geteuid())
                (void) fchmod(fd, 0600);
}

int pf_cache_connect(pf_cache *c) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (c->db)
                return 0;
        if (asprintf(&path, "%s/index.sqlite", c->dir) < 0)
                return -ENOMEM;
        index_make_private(path);
        r = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (r != SQLITE_OK) {
                log_error("cache index %s: %s", path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(r));
                sqlite3_close(c->db);
                c->db = NULL;
                return pf_sqlite_errno(r);
        }
        sqlite3_busy_timeout(c->db, CACHE_BUSY_TIMEOUT_MS);
        r = exec_sql(c->db, schema_sql);
        if (r >= 0)
                r = upgrade_jobs(c->db);
        if (r < 0) {
                sqlite3_close(c->db);
                c->db = NULL;
        }
        return r;
}

static int flush_records_locked(pf_cache *c);

void pf_cache_disconnect(pf_cache *c) {
        pthread_mutex_lock(&c->lock);
        (void) flush_records_locked(c);
        pthread_mutex_unlock(&c->lock);
        sqlite3_finalize(c->record_get);
        c->record_get = NULL;
        sqlite3_close(c->db);
        c->db = NULL;
}

/* Removes tmp/ files whose writer is gone: encodings interrupted by a crash. */
static void discard_interrupted(pf_cache *c) {
        _cleanup_free_ char *tmp = NULL;
        unsigned n = 0;
        DIR *d;

        if (asprintf(&tmp, "%s/tmp", c->dir) < 0)
                return;
        d = opendir(tmp);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                long pid = strtol(de->d_name, NULL, 10);
                if (de->d_name[0] == '.' || pid_alive(pid))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                        n++;
        }
        closedir(d);
        if (n > 0)
                log_info("cache %s: discarded %u interrupted encoding%s", c->dir, n, n == 1 ? "" : "s");
}

/* Removes the files of objects/XX/ (names the cache makes); returns how many. */
static unsigned remove_objects(pf_cache *c) {
        _cleanup_free_ char *objects = NULL;
        unsigned n = 0;
        DIR *d;

        if (asprintf(&objects, "%s/objects", c->dir) < 0)
                return 0;
        d = opendir(objects);
        if (!d)
                return 0;
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] == '.' || strlen(de->d_name) != 2)
                        continue;
                int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                DIR *sub = fd >= 0 ? fdopendir(fd) : NULL;
                if (!sub) {
                        if (fd >= 0)
                                close(fd);
                        continue;
                }
                for (struct dirent *o; (o = readdir(sub));)
                        if (o->d_name[0] != '.' && strlen(o->d_name) == 64 && unlinkat(dirfd(sub), o->d_name, 0) == 0)
                                n++;
                closedir(sub);
        }
        closedir(d);
        return n;
}

/* The index cannot be read (SQLite says it is not a database, or damaged):
 * it is only a cache, so it is moved aside (for whoever wants to look at it),
 * the objects it indexed are removed (nothing would count them against
 * --cache-size any more), and the cache starts empty. */
static int start_over(pf_cache *c) {
        _cleanup_free_ char *index = NULL, *damaged = NULL, *wal = NULL, *shm = NULL;

        pf_cache_disconnect(c);
        if (asprintf(&index, "%s/index.sqlite", c->dir) < 0 || asprintf(&damaged, "%s.damaged", index) < 0 ||
            asprintf(&wal, "%s-wal", index) < 0 || asprintf(&shm, "%s-shm", index) < 0)
                return -ENOMEM;
        if (rename(index, damaged) < 0)
                return log_error_errno(negative_errno(), "cache %s: cannot move the damaged index aside", c->dir);
        (void) unlink(wal);
        (void) unlink(shm);
        unsigned n = remove_objects(c);
        log_warning("cache %s: the index was damaged; moved to %s, its %u object%s removed: packs are encoded again",
                    c->dir, damaged, n, n == 1 ? "" : "s");
        return pf_cache_connect(c);
}

/* Makes NAME (under the cache) MODE if it exists; best effort. */
static void chmod_in(pf_cache *c, const char *name, mode_t mode) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s", c->dir, name) >= 0)
                (void) chmod(path, mode);
}

/* The cache holds packs of closures others may not read (access.h): only its
 * owner gets in. A cache packfs made before (0755) is tightened once, with
 * what it holds; one of another user's is theirs to mind. */
static void make_private(pf_cache *c) {
        static const char *const index_files[] = { "index.sqlite", "index.sqlite-wal", "index.sqlite-shm" };
        _cleanup_free_ char *objects = NULL;
        struct stat st;
        DIR *d;

        if (stat(c->dir, &st) < 0 || !(st.st_mode & 077))
                return;
        if (st.st_uid != geteuid()) {
                log_warning("cache %s: mode %04o and not ours (uid %u): left as it is, though others may read it",
                            c->dir, (unsigned) (st.st_mode & 07777), (unsigned) st.st_uid);
                return;
        }
        if (chmod(c->dir, 0700) < 0) {
                log_warning_errno(negative_errno(), "cache %s: cannot make it private", c->dir);
                return;
        }
        log_info("cache %s: was mode %04o, now 0700: it holds packs others may not read", c->dir,
                 (unsigned) (st.st_mode & 07777));
        for (size_t i = 0; i < ELEMENTSOF(index_files); i++)
                chmod_in(c, index_files[i], 0600);
        chmod_in(c, "objects", 0700);
        if (asprintf(&objects, "%s/objects", c->dir) < 0 || !(d = opendir(objects)))
                return;
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.' && strlen(de->d_name) == 2)
                        (void) fchmodat(dirfd(d), de->d_name, 0700, 0);
        closedir(d);
}

static void drop_dead_jobs(pf_cache *c) {
        sqlite3_stmt *st;
        long pids[64];
        size_t n = 0;

        if (prepare(c, "SELECT DISTINCT pid FROM jobs", &st) < 0)
                return;
        while (n < ELEMENTSOF(pids) && sqlite3_step(st) == SQLITE_ROW)
                pids[n++] = (long) sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        for (size_t i = 0; i < n; i++)
                if (!pid_alive(pids[i]) && prepare(c, "DELETE FROM jobs WHERE pid = ?", &st) >= 0) {
                        sqlite3_bind_int64(st, 1, pids[i]);
                        step_done(st);
                }
}

int pf_cache_open(const char *dir, uint64_t max_bytes, const char *owner, pf_cache **ret) {
        _cleanup_free_ char *sub = NULL;
        pf_cache *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);
        c->max_bytes = max_bytes;
        c->dir = strdup(dir);
        c->owner = strdup(owner ? owner : "");
        if (!c->dir || !c->owner) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t n = strlen(c->dir); n > 1 && c->dir[n - 1] == '/'; n--)
                c->dir[n - 1] = 0;
        r = mkdir_p(c->dir, 0700);
        if (r >= 0) {
                make_private(c);
                r = asprintf(&sub, "%s/objects", c->dir) < 0 ? -ENOMEM : mkdir_p(sub, 0700);
                free(sub);
                sub = NULL;
        }
        if (r >= 0)
                r = asprintf(&sub, "%s/tmp", c->dir) < 0 ? -ENOMEM : mkdir_p(sub, 0700);
        if (r < 0) {
                log_error_errno(r, "cache %s", dir);
                goto fail;
        }
        r = pf_cache_connect(c);
        if (r == -EBADMSG)
                r = start_over(c);
        if (r < 0)
                goto fail;
        discard_interrupted(c);
        drop_dead_jobs(c);
        *ret = c;
        return 0;
fail:
        pf_cache_free(c);
        return r;
}

void pf_cache_free(pf_cache *c) {
        if (!c)
                return;
        pf_cache_disconnect(c);
        pthread_mutex_destroy(&c->lock);
        free(c->pending);
        free(c->pins);
        free(c->dir);
        free(c->owner);
        free(c);
}

const char *pf_cache_dir(const pf_cache *c) {
        return c->dir;
}

static pin *pin_find(pf_cache *c, const uint8_t key[32]) {
        for (size_t i = 0; i < c->n_pins; i++)
                if (!memcmp(c->pins[i].key, key, 32))
                        return &c->pins[i];
        return NULL;
}

static void pin_locked(pf_cache *c, const uint8_t key[32]) {
        pin *p = pin_find(c, key);

        if (p) {
                p->count++;
                return;
        }
        if (c->n_pins == c->allocated_pins) {
                size_t n = c->allocated_pins ? c->allocated_pins * 2 : 64;
                pin *v = reallocarray(c->pins, n, sizeof(*v));
                if (!v) {
                        /* Unpinned, the object may be evicted under a reader, who then
                         * gets EIO and a log line: degraded, not wrong. */
                        log_warning("cache: out of memory pinning an object");
                        return;
                }
                c->pins = v;
                c->allocated_pins = n;
        }
        memcpy(c->pins[c->n_pins].key, key, 32);
        c->pins[c->n_pins++].count = 1;
}

void pf_cache_pin(pf_cache *c, const uint8_t key[32]) {
        pthread_mutex_lock(&c->lock);
        pin_locked(c, key);
        pthread_mutex_unlock(&c->lock);
}

void pf_cache_unpin(pf_cache *c, const uint8_t key[32]) {
        pthread_mutex_lock(&c->lock);
        pin *p = pin_find(c, key);
        if (p && --p->count == 0)
                *p = c->pins[--c->n_pins];
        pthread_mutex_unlock(&c->lock);
}

void pf_cache_object_done(pf_cache_object *o) {
        free(o->path);
        if (o->fd >= 0)
                close(o->fd);
        *o = (pf_cache_object) { .fd = -1 };
}

/* The LRU order of objects and records is kept at the grain of an hour, so a
 * cache hit is not a write to the index (on a fresh mount, updating the last
 * use of a .gz pack's 229 objects was a third of its stat(2)). */
#define TOUCH_INTERVAL_NS (3600 * 1000000000LL)

int pf_cache_contains(pf_cache *c, const uint8_t (*keys)[32], size_t n) {
        sqlite3_stmt *get = NULL;
        int found = 0, r;

        pthread_mutex_lock(&c->lock);
        r = prepare(c, "SELECT size FROM objects WHERE key = ?", &get);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                char path[PATH_MAX];
                struct stat st;

                sqlite3_reset(get);
                sqlite3_bind_blob(get, 1, keys[i], 32, SQLITE_STATIC);
                r = sqlite3_step(get);
                if (r == SQLITE_DONE) {
                        r = 0;
                        continue;
                }
                if (r != SQLITE_ROW) {
                        r = pf_sqlite_errno(r);
                        break;
                }
                r = 0;
                object_path(c, keys[i], path, sizeof(path));
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                    (uint64_t) st.st_size == (uint64_t) sqlite3_column_int64(get, 0))
                        found++;
        }
        sqlite3_finalize(get);
        pthread_mutex_unlock(&c->lock);
        return r < 0 ? r : found;
}

int pf_cache_acquire(pf_cache *c, const uint8_t (*keys)[32], size_t n, pf_cache_object *objs) {
        sqlite3_stmt *get = NULL, *touch = NULL, *drop = NULL;
        int64_t now = now_ns();
        int found = 0, r;

        for (size_t i = 0; i < n; i++)
                objs[i] = (pf_cache_object) { .fd = -1 };
        pthread_mutex_lock(&c->lock);
        r = exec_sql(c->db, "BEGIN IMMEDIATE");
        if (r < 0)
                goto out;
        if ((r = prepare(c, "SELECT size, last_use FROM objects WHERE key = ?", &get)) < 0 ||
            (r = prepare(c, "UPDATE objects SET last_use = ? WHERE key = ?", &touch)) < 0 ||
            (r = prepare(c, "DELETE FROM objects WHERE key = ?", &drop)) < 0)
                goto rollback;
        for (size_t i = 0; i < n; i++) {
                char path[PATH_MAX];
                struct stat st;
                uint64_t size;

                sqlite3_reset(get);
                sqlite3_bind_blob(get, 1, keys[i], 32, SQLITE_STATIC);
                r = sqlite3_step(get);
                if (r == SQLITE_DONE)
                        continue;
                if (r != SQLITE_ROW) {
                        r = pf_sqlite_errno(r);
                        goto rollback;
                }
                size = (uint64_t) sqlite3_column_int64(get, 0);
                object_path(c, keys[i], path, sizeof(path));
                /* Opened for the holder (without a descriptor to spare, only
                 * checked): an open file stays readable when another process
                 * evicts it. */
                int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if ((fd >= 0 ? fstat(fd, &st) : stat(path, &st)) < 0 || !S_ISREG(st.st_mode) ||
                    (uint64_t) st.st_size != size) {
                        /* Removed or damaged behind our back: forget it, never serve it. */
                        bool missing = fd < 0 && errno == ENOENT;
                        if (fd >= 0)
                                close(fd);
                        log_warning("cache: %s is missing or damaged; it will be encoded again", path);
                        if (!missing)
                                unlink(path);
                        sqlite3_reset(drop);
                        sqlite3_bind_blob(drop, 1, keys[i], 32, SQLITE_STATIC);
                        sqlite3_step(drop);
                        continue;
                }
                objs[i].fd = fd;
                objs[i].path = strdup(path);
                if (!objs[i].path) {
                        r = -ENOMEM;
                        goto rollback;
                }
                objs[i].size = size;
                objs[i].mtime = st.st_mtime;
                if (now - sqlite3_column_int64(get, 1) >= TOUCH_INTERVAL_NS) {
                        sqlite3_reset(touch);
                        sqlite3_bind_int64(touch, 1, now);
                        sqlite3_bind_blob(touch, 2, keys[i], 32, SQLITE_STATIC);
                        sqlite3_step(touch);
                }
                pin_locked(c, keys[i]);
                found++;
        }
        r = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
        if (r == SQLITE_OK)
                goto out;
        r = pf_sqlite_errno(r);
        if (is_disk_full(r) || sqlite3_get_autocommit(c->db)) {
                /* The index's disk is full (SQLite may have rolled back
                 * already): only the last-use times are lost, the lookups
                 * stand. */
                if (!sqlite3_get_autocommit(c->db))
                        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
                log_disk_full_locked(c);
                r = 0;
                goto out;
        }
        log_error("cache index: %s", sqlite3_errmsg(c->db));
rollback:
        exec_sql(c->db, "ROLLBACK");
        for (size_t i = 0; i < n; i++) {
                if (objs[i].path) {
                        pin *p = pin_find(c, keys[i]);
                        if (p && --p->count == 0)
                                *p = c->pins[--c->n_pins];
                }
                pf_cache_object_done(&objs[i]); /* also the file of one whose path was not copied */
        }
out:
        sqlite3_finalize(get);
        sqlite3_finalize(touch);
        sqlite3_finalize(drop);
        pthread_mutex_unlock(&c->lock);
        return r < 0 ? r : found;
}

/* Evicts least recently used, unpinned objects and records until the total
 * fits. */
static void evict_locked(pf_cache *c) {
        sqlite3_stmt *st = NULL, *del_object = NULL, *del_record = NULL;
        uint64_t total = 0, freed = 0;
        unsigned n = 0;

        (void) flush_records_locked(c); /* counted and evicted like the others */

        if (prepare(c, "SELECT (SELECT COALESCE(SUM(size), 0) FROM objects) + (SELECT COALESCE(SUM(size), 0) FROM records)",
                    &st) < 0)
                return;
        if (sqlite3_step(st) == SQLITE_ROW)
                total = (uint64_t) sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (total <= c->max_bytes)
                return;
        if (prepare(c,
                    "SELECT key, size, 0, last_use FROM objects UNION ALL SELECT key, size, 1, last_use FROM records"
                    " ORDER BY 4",
                    &st) < 0 ||
            prepare(c, "DELETE FROM objects WHERE key = ?", &del_object) < 0 ||
            prepare(c, "DELETE FROM records WHERE key = ?", &del_record) < 0)
                goto out;
        while (total > c->max_bytes && sqlite3_step(st) == SQLITE_ROW) {
                const uint8_t *key = sqlite3_column_blob(st, 0);
                uint64_t size = (uint64_t) sqlite3_column_int64(st, 1);
                bool is_record = sqlite3_column_int(st, 2) != 0;
                sqlite3_stmt *del = is_record ? del_record : del_object;
                char path[PATH_MAX];

                if (sqlite3_column_bytes(st, 0) != 32 || (!is_record && pin_find(c, key)))
                        continue;
                if (!is_record) {
                        object_path(c, key, path, sizeof(path));
                        if (unlink(path) < 0 && errno != ENOENT) {
                                log_warning("cache: cannot evict %s: %m", path);
                                continue;
                        }
                }
                sqlite3_reset(del);
                sqlite3_bind_blob(del, 1, key, 32, SQLITE_TRANSIENT);
                sqlite3_step(del);
                total -= size;
                freed += size;
                n++;
        }
        if (n > 0)
                log_info("cache %s: evicted %u entr%s (%llu bytes) to stay under %llu bytes", c->dir, n,
                         n == 1 ? "y" : "ies", (unsigned long long) freed, (unsigned long long) c->max_bytes);
        if (total > c->max_bytes)
                log_warning("cache %s: %llu bytes in use by open packs, over the %llu byte limit", c->dir,
                            (unsigned long long) total, (unsigned long long) c->max_bytes);
out:
        sqlite3_finalize(st);
        sqlite3_finalize(del_object);
        sqlite3_finalize(del_record);
}

static int memfd_new(void) {
        int fd = memfd_create("packfs-uncached", MFD_CLOEXEC);
        return fd >= 0 ? fd : log_error_errno(negative_errno(), "memfd_create");
}

/* Logged once per process: a full disk stays full for a while. */
static void log_disk_full(pf_cache *c) {
        pthread_mutex_lock(&c->lock);
        log_disk_full_locked(c);
        pthread_mutex_unlock(&c->lock);
}

/* The cache's disk is full: carry on in memory with what was written so far. */
static int writer_to_memory(pf_cache_writer *w) {
        _cleanup_free_ uint8_t *buf = NULL;
        int fd, r = 0;

        log_disk_full(w->cache);
        fd = memfd_new();
        if (fd < 0)
                return fd;
        buf = malloc(1 << 20);
        if (!buf)
                r = -ENOMEM;
        for (uint64_t off = 0; r >= 0 && off < w->size;) {
                ssize_t k = pread(w->fd, buf, (size_t) MIN((uint64_t) 1 << 20, w->size - off), (off_t) off);
                if (k <= 0)
                        r = k < 0 ? negative_errno() : -EIO;
                else {
                        r = pf_write_all(fd, buf, (size_t) k);
                        off += (uint64_t) k;
                }
        }
        if (r < 0) {
                close(fd);
                return r;
        }
        close(w->fd);
        unlink(w->tmp_path);
        free(w->tmp_path);
        w->tmp_path = NULL;
        w->fd = fd;
        return 0;
}

int pf_cache_writer_new(pf_cache *c, const uint8_t key[32], pf_cache_writer **ret) {
        pf_cache_writer *w = calloc(1, sizeof(*w));

        if (!w)
                return -ENOMEM;
        w->cache = c;
        w->fd = -1;
        memcpy(w->key, key, 32);
        if (c) {
                if (asprintf(&w->tmp_path, "%s/tmp/%ld-XXXXXX", c->dir, (long) getpid()) < 0) {
                        free(w);
                        return -ENOMEM;
                }
                /* 0600, kept through the rename: the object is private. */
                w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
                if (w->fd < 0) {
                        int r = negative_errno();
                        free(w->tmp_path);
                        w->tmp_path = NULL;
                        if (is_disk_full(r))
                                log_disk_full(c);
                        else
                                log_warning("cache %s: cannot create a temporary file (%s); encoding without caching",
                                            c->dir, strerror(-r));
                }
        }
        if (w->fd < 0) {
                w->fd = memfd_new();
                if (w->fd < 0) {
                        int r = w->fd;
                        free(w);
                        return r;
                }
        }
        *ret = w;
        return 0;
}

int pf_cache_writer_write(pf_cache_writer *w, const void *buf, size_t len) {
        int r = pf_write_all(w->fd, buf, len);

        if (r < 0 && is_disk_full(r) && w->tmp_path) {
                r = writer_to_memory(w);
                if (r >= 0)
                        r = pf_write_all(w->fd, buf, len);
        }
        if (r < 0)
                return r;
        w->size += len;
        return 0;
}

const char *pf_cache_writer_path(const pf_cache_writer *w) {
        return w->tmp_path;
}

void pf_cache_writer_abort(pf_cache_writer *w) {
        if (!w)
                return;
        if (w->fd >= 0)
                close(w->fd);
        if (w->tmp_path)
                unlink(w->tmp_path);
        free(w->tmp_path);
        free(w);
}

int pf_cache_writer_commit(pf_cache_writer *w, pf_cache_object *ret) {
        pf_cache *c = w->cache;
        char path[PATH_MAX];
        sqlite3_stmt *st = NULL;
        struct stat s;
        int r;

        *ret = (pf_cache_object) { .fd = -1 };
        /* A producer writing by name may have replaced the file (pf_cache_writer_path()). */
        if (w->tmp_path) {
                int fd = open(w->tmp_path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        r = log_error_errno(negative_errno(), "cache: %s", w->tmp_path);
                        goto fail;
                }
                close(w->fd);
                w->fd = fd;
                if (fstat(fd, &s) < 0) {
                        r = negative_errno();
                        goto fail;
                }
                w->size = (uint64_t) s.st_size;
        }
        if (w->tmp_path && fsync(w->fd) < 0) {
                r = negative_errno();
                if (!is_disk_full(r) || (r = writer_to_memory(w)) < 0)
                        goto fail;
        }
        if (!w->tmp_path) {
                *ret = (pf_cache_object) { .fd = w->fd, .size = w->size };
                free(w);
                return 0;
        }

        object_path(c, w->key, path, sizeof(path));
        *strrchr(path, '/') = 0;
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
                r = log_error_errno(negative_errno(), "cache: %s", path);
                goto fail;
        }
        path[strlen(path)] = '/';
        /* Never over an existing object: it may be served right now, and its
         * bytes are the same (same key, deterministic encoders). */
        if (renameat2(AT_FDCWD, w->tmp_path, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
                if (errno != EEXIST) {
                        r = log_error_errno(negative_errno(), "cache: rename to %s", path);
                        goto fail;
                }
                unlink(w->tmp_path);
        }
        free(w->tmp_path);
        w->tmp_path = NULL;
        close(w->fd);
        /* The directory is not fsynced: if a crash loses the rename, the index
         * row outlives the file, and pf_cache_acquire() drops it and the unit
         * is encoded again. Only the file's own bytes must be durable before
         * the rename can make them visible. The object is handed over open, as
         * pf_cache_acquire() does (-1 without a descriptor to spare). */
        w->fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if ((w->fd >= 0 ? fstat(w->fd, &s) : stat(path, &s)) < 0) {
                r = log_error_errno(negative_errno(), "cache: %s", path);
                goto fail;
        }

        pthread_mutex_lock(&c->lock);
        r = prepare(c, "INSERT OR REPLACE INTO objects (key, size, last_use) VALUES (?, ?, ?)", &st);
        if (r >= 0) {
                sqlite3_bind_blob(st, 1, w->key, 32, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, (int64_t) s.st_size);
                sqlite3_bind_int64(st, 3, now_ns());
                r = step_done(st);
        }
        if (r < 0)
                /* The file is whole and stays usable; unindexed, it is adopted by the
                 * next commit of the same key. */
                log_warning("cache %s: cannot index an object: %s", c->dir, strerror(-r));
        pin_locked(c, w->key);
        evict_locked(c);
        pthread_mutex_unlock(&c->lock);

        ret->path = strdup(path);
        if (!ret->path) {
                pf_cache_unpin(c, w->key);
                r = -ENOMEM;
                goto fail;
        }
        ret->size = (uint64_t) s.st_size;
        ret->mtime = s.st_mtime;
        ret->fd = w->fd;
        free(w);
        return 0;
fail:
        pf_cache_writer_abort(w);
        return r;
}

/* Runs SQL (one key parameter; a blob in column 0 and, if RET_INT is not NULL,
 * an integer in column 1) and copies the blob out. -ENOENT without a row. Called
 * with the lock held. */
/* Runs ST (a query by key of a blob and, with RET_INT, an integer) for KEY and
 * copies the blob to a malloc'd *RET; -ENOENT without a row. */
static int step_blob(sqlite3_stmt *st, const uint8_t key[32], void **ret, size_t *ret_size, int64_t *ret_int) {
        int r;

        sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
        r = sqlite3_step(st);
        if (r == SQLITE_DONE)
                r = -ENOENT;
        else if (r != SQLITE_ROW)
                r = pf_sqlite_errno(r);
        else {
                size_t size = (size_t) sqlite3_column_bytes(st, 0);
                *ret = malloc(MAX(size, (size_t) 1));
                r = *ret ? 0 : -ENOMEM;
                if (r >= 0 && size > 0) /* an empty blob is NULL */
                        memcpy(*ret, sqlite3_column_blob(st, 0), size);
                *ret_size = size;
                if (ret_int)
                        *ret_int = sqlite3_column_int64(st, 1);
        }
        return r;
}

static int get_blob_locked(pf_cache *c, const char *sql, const uint8_t key[32], void **ret, size_t *ret_size,
                           int64_t *ret_int) {
        sqlite3_stmt *st = NULL;
        int r;

        r = prepare(c, sql, &st);
        if (r < 0)
                return r;
        r = step_blob(st, key, ret, ret_size, ret_int);
        sqlite3_finalize(st);
        return r;
}

int pf_cache_manifest_get(pf_cache *c, const uint8_t key[32], uint8_t (**ret_keys)[32], size_t *ret_n) {
        void *data = NULL;
        size_t bytes = 0;
        int r;

        pthread_mutex_lock(&c->lock);
        r = get_blob_locked(c, "SELECT objects FROM manifests WHERE key = ?", key, &data, &bytes, NULL);
        pthread_mutex_unlock(&c->lock);
        if (r < 0)
                return r;
        if (bytes % 32 != 0) {
                free(data);
                return -EBADMSG;
        }
        *ret_keys = data;
        *ret_n = bytes / 32;
        return 0;
}

int pf_cache_manifest_put(pf_cache *c, const uint8_t key[32], const uint8_t (*keys)[32], size_t n) {
        sqlite3_stmt *st = NULL;
        int r;

        pthread_mutex_lock(&c->lock);
        r = prepare(c, "INSERT OR REPLACE INTO manifests (key, objects, last_use) VALUES (?, ?, ?)", &st);
        if (r >= 0) {
                sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
                sqlite3_bind_blob(st, 2, n ? (const void *) keys : "", (int) (n * 32), SQLITE_STATIC);
                sqlite3_bind_int64(st, 3, now_ns());
                r = step_done(st);
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* Records are small enough for the index itself: one transaction, no file, no
 * fsync of their own. */

int pf_cache_record_get(pf_cache *c, const uint8_t key[32], void **ret, size_t *ret_size) {
        sqlite3_stmt *st = NULL;
        int64_t now = now_ns(), last_use = 0;
        int r;

        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < c->n_pending; i++)
                if (!memcmp(c->pending[i].key, key, 32)) {
                        void *copy = malloc(MAX(c->pending[i].size, (size_t) 1));
                        if (copy)
                                memcpy(copy, c->pending[i].data, c->pending[i].size);
                        pthread_mutex_unlock(&c->lock);
                        if (!copy)
                                return -ENOMEM;
                        *ret = copy;
                        *ret_size = c->pending[i].size;
                        return 0;
                }
        r = 0;
        if (!c->record_get) {
                r = sqlite3_prepare_v3(c->db, "SELECT data, last_use FROM records WHERE key = ?", -1,
                                       SQLITE_PREPARE_PERSISTENT, &c->record_get, NULL);
                if (r != SQLITE_OK) {
                        log_error("cache index %s: %s", c->dir, sqlite3_errmsg(c->db));
                        r = pf_sqlite_errno(r);
                }
        }
        if (r >= 0) {
                r = step_blob(c->record_get, key, ret, ret_size, &last_use);
                sqlite3_reset(c->record_get);
                sqlite3_clear_bindings(c->record_get);
        }
        if (r >= 0 && now - last_use >= TOUCH_INTERVAL_NS &&
            prepare(c, "UPDATE records SET last_use = ? WHERE key = ?", &st) >= 0) {
                sqlite3_bind_int64(st, 1, now);
                sqlite3_bind_blob(st, 2, key, 32, SQLITE_STATIC);
                step_done(st); /* best effort: only the eviction order depends on it */
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* Writes the pending records in one transaction. Best effort, as every
 * record is: on failure they are dropped (logged), and the next plan derives
 * them again. */
static int flush_records_locked(pf_cache *c) {
        sqlite3_stmt *st = NULL;
        int r;

        if (c->n_pending == 0 || !c->db)
                return 0;
        r = exec_sql(c->db, "BEGIN IMMEDIATE");
        if (r >= 0)
                r = prepare(c, "INSERT OR REPLACE INTO records (key, data, size, last_use) VALUES (?, ?, ?, ?)", &st);
        for (size_t i = 0; r >= 0 && i < c->n_pending; i++) {
                pending_record *p = &c->pending[i];
                sqlite3_reset(st);
                sqlite3_bind_blob(st, 1, p->key, 32, SQLITE_STATIC);
                sqlite3_bind_blob(st, 2, p->size ? p->data : "", (int) p->size, SQLITE_STATIC);
                sqlite3_bind_int64(st, 3, (int64_t) p->size);
                sqlite3_bind_int64(st, 4, p->put_ns);
                r = sqlite3_step(st);
                r = r == SQLITE_DONE ? 0 : pf_sqlite_errno(r);
        }
        sqlite3_finalize(st);
        if (r >= 0)
                r = exec_sql(c->db, "COMMIT");
        if (r < 0) {
                if (!sqlite3_get_autocommit(c->db))
                        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
                if (is_disk_full(r))
                        log_disk_full_locked(c);
                else
                        log_warning("cache index %s: %zu records not written: %s", c->dir, c->n_pending,
                                    strerror(-r));
        }
        /* No eviction here: a plan records a list per item, and each pass
         * sums the whole index. Records are small; the next object's commit
         * makes room for them. */
        for (size_t i = 0; i < c->n_pending; i++)
                free(c->pending[i].data);
        c->n_pending = 0;
        c->pending_bytes = 0;
        return r;
}

int pf_cache_flush_records(pf_cache *c) {
        int r;

        if (!c)
                return 0;
        pthread_mutex_lock(&c->lock);
        r = flush_records_locked(c);
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* Removes KEY's pending record, if any. Called with the lock held. */
static void drop_pending_locked(pf_cache *c, const uint8_t key[32]) {
        for (size_t i = 0; i < c->n_pending; i++)
                if (!memcmp(c->pending[i].key, key, 32)) {
                        c->pending_bytes -= c->pending[i].size;
                        free(c->pending[i].data);
                        c->pending[i] = c->pending[--c->n_pending];
                        return;
                }
}

int pf_cache_record_put(pf_cache *c, const uint8_t key[32], const void *data, size_t size) {
        void *copy;
        int r = 0;

        if (size > INT_MAX)
                return -EFBIG;
        copy = malloc(MAX(size, (size_t) 1));
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, size);
        pthread_mutex_lock(&c->lock);
        drop_pending_locked(c, key);
        if (c->n_pending == c->allocated_pending) {
                size_t na = c->allocated_pending ? c->allocated_pending * 2 : 64;
                pending_record *v = reallocarray(c->pending, na, sizeof(*v));
                if (!v) {
                        pthread_mutex_unlock(&c->lock);
                        free(copy);
                        return -ENOMEM;
                }
                c->pending = v;
                c->allocated_pending = na;
        }
        c->pending[c->n_pending] = (pending_record) { .data = copy, .size = size, .put_ns = now_ns() };
        memcpy(c->pending[c->n_pending].key, key, 32);
        c->n_pending++;
        c->pending_bytes += size;
        if (c->n_pending >= PENDING_MAX_RECORDS || c->pending_bytes >= PENDING_MAX_BYTES)
                r = flush_records_locked(c);
        pthread_mutex_unlock(&c->lock);
        return r;
}

int pf_cache_record_drop(pf_cache *c, const uint8_t key[32]) {
        sqlite3_stmt *st = NULL;
        int r;

        pthread_mutex_lock(&c->lock);
        drop_pending_locked(c, key);
        r = prepare(c, "DELETE FROM records WHERE key = ?", &st);
        if (r >= 0) {
                sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
                r = step_done(st);
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

static int job_insert(pf_cache *c, const char *name, uint64_t total, bool queued, pf_cache_job **ret) {
        pf_cache_job *j = calloc(1, sizeof(*j));
        sqlite3_stmt *st = NULL;
        int r;

        if (!j)
                return -ENOMEM;
        j->cache = c;
        j->total = total;
        *ret = j;
        if (!c)
                return 0;
        pthread_mutex_lock(&c->lock);
        j->id = ++c->next_job_id;
        j->last_update_ns = now_ns();
        r = prepare(c,
                    "INSERT OR REPLACE INTO jobs (pid, id, owner, name, total, done, started, output, queued)"
                    " VALUES (?, ?, ?, ?, ?, 0, ?, 0, ?)",
                    &st);
        if (r >= 0) {
                sqlite3_bind_int64(st, 1, getpid());
                sqlite3_bind_int64(st, 2, j->id);
                sqlite3_bind_text(st, 3, c->owner, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 5, (int64_t) total);
                sqlite3_bind_int64(st, 6, j->last_update_ns / 1000000000LL);
                sqlite3_bind_int(st, 7, queued);
                r = step_done(st);
        }
        pthread_mutex_unlock(&c->lock);
        if (r < 0) /* Status is best effort: the encoding goes on. */
                log_debug("cache: cannot record a job: %s", strerror(-r));
        return 0;
}

int pf_cache_job_begin(pf_cache *c, const char *name, uint64_t total, pf_cache_job **ret) {
        return job_insert(c, name, total, false, ret);
}

int pf_cache_job_queue(pf_cache *c, const char *name, pf_cache_job **ret) {
        return job_insert(c, name, 0, true, ret);
}

void pf_cache_job_progress(pf_cache_job *j, uint64_t done, uint64_t output) {
        pf_cache *c = j->cache;
        sqlite3_stmt *st = NULL;
        int64_t now;

        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        now = now_ns();
        if (now - j->last_update_ns >= JOB_UPDATE_INTERVAL_NS &&
            prepare(c, "UPDATE jobs SET done = ?, output = ? WHERE pid = ? AND id = ?", &st) >= 0) {
                j->last_update_ns = now;
                sqlite3_bind_int64(st, 1, (int64_t) done);
                sqlite3_bind_int64(st, 2, (int64_t) output);
                sqlite3_bind_int64(st, 3, getpid());
                sqlite3_bind_int64(st, 4, j->id);
                step_done(st);
        }
        pthread_mutex_unlock(&c->lock);
}

void pf_cache_job_end(pf_cache_job *j) {
        sqlite3_stmt *st = NULL;

        if (!j)
                return;
        if (j->cache) {
                pthread_mutex_lock(&j->cache->lock);
                if (prepare(j->cache, "DELETE FROM jobs WHERE pid = ? AND id = ?", &st) >= 0) {
                        sqlite3_bind_int64(st, 1, getpid());
                        sqlite3_bind_int64(st, 2, j->id);
                        step_done(st);
                }
                pthread_mutex_unlock(&j->cache->lock);
        }
        free(j);
}

int pf_cache_get_usage(pf_cache *c, pf_cache_usage *ret) {
        sqlite3_stmt *st = NULL;
        int r;

        *ret = (pf_cache_usage) { .max_bytes = c->max_bytes };
        pthread_mutex_lock(&c->lock);
        (void) flush_records_locked(c);
        r = prepare(c,
                    "SELECT (SELECT COUNT(*) FROM objects), (SELECT COALESCE(SUM(size), 0) FROM objects),"
                    " (SELECT COUNT(*) FROM manifests), (SELECT COUNT(*) FROM records),"
                    " (SELECT COALESCE(SUM(size), 0) FROM records)",
                    &st);
        if (r >= 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
                ret->objects = (uint64_t) sqlite3_column_int64(st, 0);
                ret->bytes = (uint64_t) sqlite3_column_int64(st, 1);
                ret->manifests = (uint64_t) sqlite3_column_int64(st, 2);
                ret->records = (uint64_t) sqlite3_column_int64(st, 3);
                ret->bytes += (uint64_t) sqlite3_column_int64(st, 4);
                r = 0;
        } else if (r >= 0)
                r = pf_sqlite_errno(r);
        sqlite3_finalize(st);
        pthread_mutex_unlock(&c->lock);
        return r;
}

int pf_cache_list_jobs(pf_cache *c, void (*fn)(void *userdata, const pf_cache_job_info *job), void *userdata) {
        sqlite3_stmt *st = NULL;
        int r;

        pthread_mutex_lock(&c->lock);
        r = prepare(c,
                    "SELECT pid, owner, name, done, total, started, output, queued FROM jobs"
                    " ORDER BY queued, started, pid, id",
                    &st);
        while (r >= 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
                pf_cache_job_info info = {
                        .pid = (long) sqlite3_column_int64(st, 0),
                        .owner = (const char *) sqlite3_column_text(st, 1),
                        .name = (const char *) sqlite3_column_text(st, 2),
                        .done = (uint64_t) sqlite3_column_int64(st, 3),
                        .total = (uint64_t) sqlite3_column_int64(st, 4),
                        .started = sqlite3_column_int64(st, 5),
                        .output = (uint64_t) sqlite3_column_int64(st, 6),
                        .queued = sqlite3_column_int(st, 7) != 0,
                };
                if (pid_alive(info.pid))
                        fn(userdata, &info);
        }
        r = r == SQLITE_DONE ? 0 : r < 0 ? r : pf_sqlite_errno(r);
        sqlite3_finalize(st);
        pthread_mutex_unlock(&c->lock);
        return r;
}

#define U64_RECORD_SIZE (8 + 32)

int pf_cache_record_get_u64(pf_cache *c, const uint8_t key[32], uint64_t *ret) {
        _cleanup_free_ uint8_t *data = NULL;
        uint8_t check[32];
        uint64_t value = 0;
        size_t size = 0;

        if (pf_cache_record_get(c, key, (void **) &data, &size) < 0)
                return 0;
        if (size == U64_RECORD_SIZE)
                pf_sha256_pair(key, 32, data, 8, check);
        if (size != U64_RECORD_SIZE || memcmp(check, data + 8, 32) != 0) {
                (void) pf_cache_record_drop(c, key);
                return -EBADMSG;
        }
        for (int i = 7; i >= 0; i--)
                value = value << 8 | data[i];
        *ret = value;
        return 1;
}

void pf_cache_record_put_u64(pf_cache *c, const uint8_t key[32], uint64_t value) {
        uint8_t data[U64_RECORD_SIZE];

        for (int i = 0; i < 8; i++)
                data[i] = (uint8_t) (value >> (8 * i));
        pf_sha256_pair(key, 32, data, 8, data + 8);
        (void) pf_cache_record_put(c, key, data, sizeof(data));
}
