/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The persistent, content-addressed cache of encoded outputs.
 *
 *   DIR/index.sqlite          objects (key, size, last use), pack manifests, small
 *                             records, and the encodings under way (for
 *                             `packfs status`)
 *   DIR/objects/ab/<key>      one file per object, named by its 32-byte key in hex
 *   DIR/tmp/<pid>-XXXXXX      objects being written
 *
 * Keys are digests the caller derives from everything the bytes depend on, so an
 * object is never stale: a different input is a different key.
 *
 * Privacy: it holds packs of closures others may not read (access.h), so DIR
 * and its directories are 0700, objects and the index 0600, whatever the umask.
 * A DIR of ours that others may enter (made 0755 by an older packfs) is made
 * so when opened, with a log line; another user's is left alone, with a warning.
 *
 * Durability: an object is written to tmp/, fsynced, and renamed into objects/
 * (never over an existing one), then indexed. An interrupted write leaves only a
 * tmp/ file, removed when the cache is next opened once its writer is dead; it is
 * never served. Objects are immutable once renamed. An index SQLite cannot read
 * when the cache is opened (not a database, damaged) is moved to
 * index.sqlite.damaged, the objects are removed, and the cache starts empty:
 * a logged warning, not a failed mount.
 *
 * Size: after each insertion, least recently used objects are evicted until the
 * total fits --cache-size, skipping objects pinned in this process (served by an
 * open pack or being assembled). Pins are per process: a concurrent `packfs build`
 * on the same cache does not see this process's pins.
 *
 * A full disk: pf_cache_writer switches to an anonymous memory file (memfd) when a
 * write fails with ENOSPC or EDQUOT, logs it once, and the caller serves from that
 * instead ("encode without caching").
 *
 * Thread rules: a pf_cache may be used from any thread; its SQLite connection and
 * pin table are guarded by its own mutex. A pf_cache_writer belongs to one thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pf_cache pf_cache;
typedef struct pf_cache_writer pf_cache_writer;
typedef struct pf_cache_job pf_cache_job;

typedef struct pf_cache_object {
        char *path;             /* malloc'd; NULL for an uncached (memfd) object */
        int fd;                 /* owned by the holder: an uncached object's memfd, a cached
                                 * one's file (-1 when out of descriptors) */
        uint64_t size;
        int64_t mtime;
} pf_cache_object;

/* The default directory: /var/cache/packfs for root, $XDG_CACHE_HOME/packfs (or
 * ~/.cache/packfs) otherwise. Malloc'd. */
int pf_cache_default_dir(char **ret);
/* Parses a size such as "512M", "10G", "1T" or a byte count. */
int pf_cache_parse_size(const char *s, uint64_t *ret);

/* Opens (creating) the cache at DIR, bounded by MAX_BYTES, and discards writes
 * interrupted in dead processes. OWNER names this process's encodings in the jobs
 * table ("/mnt/packfs" or "build"). */
int pf_cache_open(const char *dir, uint64_t max_bytes, const char *owner, pf_cache **ret);
void pf_cache_free(pf_cache *c);
const char *pf_cache_dir(const pf_cache *c);
/* Around fork(): the SQLite connection must not cross it. */
void pf_cache_disconnect(pf_cache *c);
int pf_cache_connect(pf_cache *c);

/* Looks up N keys in one transaction. For each one found (indexed and its file
 * intact) fills objs[i], pins it and marks it used (at the grain of an hour: a
 * hit is no write to the index otherwise); objs[i].path is NULL for the
 * missing ones (whose stale index rows are dropped). Returns how many were found. */
int pf_cache_acquire(pf_cache *c, const uint8_t (*keys)[32], size_t n, pf_cache_object *objs);
/* How many of the N keys are indexed with their file intact, without pinning,
 * opening or marking them used: whether a pack would be a cache hit now. */
int pf_cache_contains(pf_cache *c, const uint8_t (*keys)[32], size_t n);
/* Pins KEY (again) / releases one pin. */
void pf_cache_pin(pf_cache *c, const uint8_t key[32]);
void pf_cache_unpin(pf_cache *c, const uint8_t key[32]);
void pf_cache_object_done(pf_cache_object *o);

/* Writing an object. C may be NULL: the writer then only ever uses memory. */
int pf_cache_writer_new(pf_cache *c, const uint8_t key[32], pf_cache_writer **ret);
int pf_cache_writer_write(pf_cache_writer *w, const void *buf, size_t len);
/* The file being written, for producers that write it by name (external tools
 * such as mke2fs or qemu-img, which may also seek, leave holes or truncate):
 * NULL for a writer in memory. Whatever is at that path when the writer is
 * committed is the object; pf_cache_writer_write() must not be mixed with it. */
const char *pf_cache_writer_path(const pf_cache_writer *w);
/* Makes the object durable and indexed (pinned), or hands over the memfd; the
 * writer is freed either way. */
int pf_cache_writer_commit(pf_cache_writer *w, pf_cache_object *ret);
void pf_cache_writer_abort(pf_cache_writer *w);

/* Manifests: a pack's list of object keys, stored under the pack's own key. */
int pf_cache_manifest_get(pf_cache *c, const uint8_t key[32], uint8_t (**ret_keys)[32], size_t *ret_n);
int pf_cache_manifest_put(pf_cache *c, const uint8_t key[32], const uint8_t (*keys)[32], size_t n);

/* Records: small byte strings kept in the index itself (a store item's member
 * list, walkcache.h), counted in the size and evicted least recently used like
 * objects (when an object is committed), never pinned: get returns a malloc'd
 * copy (-ENOENT if absent). Their integrity is their owner's to check.
 *
 * Puts are written behind: kept in memory (where gets find them) and written
 * in one transaction by pf_cache_flush_records(), once many are pending, or
 * when the cache is closed. A put's error is the flush's, if it flushed. Other
 * processes see a record once it is flushed; a crash loses the pending ones
 * (a record is always derivable again). */
int pf_cache_record_get(pf_cache *c, const uint8_t key[32], void **ret, size_t *ret_size);
int pf_cache_record_put(pf_cache *c, const uint8_t key[32], const void *data, size_t size);
int pf_cache_record_drop(pf_cache *c, const uint8_t key[32]);
/* A record holding one number: 8 bytes little endian and a SHA-256 over the
 * key and them, so a damaged one is noticed. Get returns 1 and *RET, 0 when
 * there is none, -EBADMSG when it was damaged (and is dropped now). Put is
 * best effort, as pf_cache_record_put(). */
int pf_cache_record_get_u64(pf_cache *c, const uint8_t key[32], uint64_t *ret);
void pf_cache_record_put_u64(pf_cache *c, const uint8_t key[32], uint64_t value);
/* Writes the pending records (C may be NULL). */
int pf_cache_flush_records(pf_cache *c);

/* Encodings under way, shown by `packfs status`: input bytes DONE of TOTAL and
 * OUTPUT bytes written so far. Progress updates are cheap (throttled to a few
 * database writes a second). C may be NULL. A queued job is one waiting its
 * turn (the `prepare` queue); it is ended when its encoding begins. */
int pf_cache_job_begin(pf_cache *c, const char *name, uint64_t total, pf_cache_job **ret);
int pf_cache_job_queue(pf_cache *c, const char *name, pf_cache_job **ret);
void pf_cache_job_progress(pf_cache_job *j, uint64_t done, uint64_t output);
void pf_cache_job_end(pf_cache_job *j);

typedef struct pf_cache_job_info {
        long pid;
        const char *owner, *name;
        uint64_t done, total, output;
        int64_t started;        /* seconds since the epoch */
        bool queued;
} pf_cache_job_info;

typedef struct pf_cache_usage {
        uint64_t bytes;         /* objects and records */
        uint64_t objects, max_bytes, manifests, records;
} pf_cache_usage;

int pf_cache_get_usage(pf_cache *c, pf_cache_usage *ret);
/* Calls FN for each live job (of any process using this cache): the ones under
 * way first, oldest first, then the queued ones. */
int pf_cache_list_jobs(pf_cache *c, void (*fn)(void *userdata, const pf_cache_job_info *job), void *userdata);

void pf_hex(const uint8_t *bytes, size_t n, char *out);
