/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Read-only access to a store database (the schema Guix and Nix share:
 * ValidPaths + Refs), and closures computed from it.
 *
 * The database is opened read-only; every query is its own short read
 * transaction, so the store's daemon may write at the same time. SQLITE_BUSY is
 * retried for a bounded time (PF_STORE_BUSY_TIMEOUT_MS) and then reported as
 * -EBUSY. Every path taken from the database is checked with storepath.h before
 * it leaves this module; a row that is not "<store>/<hash>-<name>" fails the query
 * with -EBADMSG and a log line.
 *
 * Thread rules: a pf_store may be shared by threads; queries are serialised by an
 * internal mutex. A pf_closure is immutable once returned and may be shared.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_STORE_BUSY_TIMEOUT_MS 5000

typedef struct pf_store pf_store;

typedef struct pf_closure_item {
        char *path;         /* "<store>/<hash>-<name>" */
        char *nar_hash;     /* as in the database, e.g. "sha256:<hex>" */
        uint64_t nar_size;
} pf_closure_item;

typedef struct pf_closure {
        unsigned refcount;       /* atomic; pf_closure_ref/unref */
        char *root;              /* the item the closure was computed from */
        pf_closure_item *items;  /* sorted by path, unique */
        size_t n_items;
        uint64_t nar_size;       /* sum of the items' narSize */
        uint8_t id[32];          /* sha256 over root, paths and NAR hashes: the closure's identity */
} pf_closure;

/* Opens DB_PATH read-only for the store at STORE_DIR (no trailing slash is needed).
 * Fails with -ENOENT if either is missing, -EMEDIUMTYPE for an unknown schema, -EIO
 * for a corrupt file. *ret is freed with pf_store_free(). */
int pf_store_open(const char *store_dir, const char *db_path, pf_store **ret);
void pf_store_free(pf_store *s);

/* Closes and reopens the database connection. An SQLite connection must not be
 * used across fork(): a process about to fork (fuse_daemonize) disconnects first
 * and the child connects again. No query may run while disconnected. */
void pf_store_disconnect(pf_store *s);
int pf_store_connect(pf_store *s);

/* The store directory, normalised without trailing slash. Owned by S. */
const char *pf_store_dir(const pf_store *s);

/* Whether PATH is a registered valid path: 1 yes, 0 no, negative errno on failure. */
int pf_store_is_valid(pf_store *s, const char *path);

/* Closure of ROOT (a valid store path): ROOT and everything it references,
 * transitively. -ENOENT if ROOT is not valid. *ret has one reference. */
int pf_store_closure(pf_store *s, const char *root, pf_closure **ret);

/* Every valid path in the store, sorted; *ret_paths is a NULL-terminated strv the
 * caller frees with pf_strv_free(). */
int pf_store_all_paths(pf_store *s, char ***ret_paths, size_t *ret_n);

/* The direct references of PATH, sorted; a NULL-terminated strv (pf_strv_free).
 * Rows that are not store paths fail with -EBADMSG. */
int pf_store_references(pf_store *s, const char *path, char ***ret_paths);

/* Whether ITEM has a NAR hash, which (with its path) pins its contents: what
 * lets records about it (member lists, lengths, layer digests) be kept. */
static inline bool pf_closure_item_keyed(const pf_closure_item *item) {
        return item->nar_hash && item->nar_hash[0];
}

/* The index of the item at PATH in C (binary search: items are sorted), or -1. */
int pf_closure_find(const pf_closure *c, const char *path);

pf_closure *pf_closure_ref(pf_closure *c);
void pf_closure_unref(pf_closure *c);

void pf_strv_free(char **v);
