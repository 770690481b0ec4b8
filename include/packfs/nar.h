/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * NAR ("Nix ARchive") serialisation of a file system tree, the canonical form
 * whose SHA-256 is a store item's "hash" in the store database and whose length
 * is its narSize (`nix-store --dump PATH`).
 *
 * Format: the string "nix-archive-1" followed by one node, where a string is a
 * little-endian u64 length, the bytes and zero padding to a multiple of 8, and
 * a node is "(" "type" then one of
 *   "regular" ["executable" ""] "contents" <file bytes as one string>
 *   "symlink" "target" <target>
 *   "directory" { "entry" "(" "name" <name> "node" <node> ")" }*
 * then ")". Directory entries are sorted bytewise by name; a regular file is
 * executable when its owner execute bit (S_IXUSR) is set. Nothing else of the
 * inode (owner, times, other mode bits, hard links) is represented.
 *
 * All functions are thread-safe; each call uses only its own state.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "packfs/macro.h"

/*
 * Receives the next LEN bytes of a NAR stream. Returns 0 to continue, or a
 * negative errno that aborts the dump and is returned by pf_nar_dump().
 */
typedef int (*pf_nar_sink_fn)(void *userdata, const void *data, size_t len);

/*
 * Streams the NAR serialisation of PATH (not followed if it is a symlink) to
 * SINK, in chunks of at most 64 KiB; files are read in chunks and never held
 * whole. Returns 0; -EINVAL if the tree holds a file that is not a regular
 * file, directory or symlink; -EIO if a file shrank while it was read; the
 * sink's error; or another negative errno from the file system.
 */
int pf_nar_dump(const char *path, pf_nar_sink_fn sink, void *userdata);

/*
 * Streaming SHA-256 and byte count of everything fed to it, usable as a NAR sink
 * (pf_nar_hasher_sink with the hasher as userdata). Not thread-safe itself.
 */
typedef struct pf_nar_hasher pf_nar_hasher;

/* Returns 0, -ENOMEM, or -EOPNOTSUPP if libgcrypt is unusable. Free with pf_nar_hasher_free(). */
int pf_nar_hasher_new(pf_nar_hasher **ret);
/* Frees H; NULL is accepted. */
void pf_nar_hasher_free(pf_nar_hasher *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(pf_nar_hasher *, pf_nar_hasher_free);
#define _cleanup_nar_hasher_ _cleanup_(pf_nar_hasher_freep)

/* pf_nar_sink_fn feeding the pf_nar_hasher USERDATA. Returns 0, or -EINVAL once finished. */
int pf_nar_hasher_sink(void *userdata, const void *data, size_t len);

/*
 * Writes the digest of everything fed to RET_SHA256 and its length to *RET_SIZE
 * (RET_SIZE may be NULL). Ends the hasher's stream: later feeds fail, later
 * calls return the same results.
 */
void pf_nar_hasher_finish(pf_nar_hasher *h, uint8_t ret_sha256[32], uint64_t *ret_size);

/*
 * SHA-256 and length of the NAR serialisation of PATH, as
 * `nix-store --dump PATH | sha256sum` and `wc -c`. RET_NAR_SIZE may be NULL.
 * Returns 0 or a negative errno as pf_nar_dump(); outputs are written only on
 * success.
 */
int pf_nar_hash(const char *path, uint8_t ret_sha256[32], uint64_t *ret_nar_size);
