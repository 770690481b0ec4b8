/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Reference scanner, as Nix and Guix find a store item's references: a set of
 * candidate hash parts (the 32 base-32 characters of "<store>/<hash>-<name>") is
 * searched for in a byte stream, usually an item's NAR serialisation, so file
 * contents, file names and symlink targets are all covered.
 *
 * The stream is fed in chunks of any size; an occurrence straddling chunk
 * boundaries is found. Like Nix, the scan looks at 32-byte windows from their
 * end and skips past any byte outside the base-32 alphabet, so ordinary data is
 * scanned at a fraction of a lookup per byte.
 *
 * A pf_refscan is not thread-safe: one thread feeds it at a time. Distinct
 * scanners are independent.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "packfs/macro.h"

typedef struct pf_refscan pf_refscan;

/* Creates an empty scanner. Returns 0 or -ENOMEM; free with pf_refscan_free(). */
int pf_refscan_new(pf_refscan **ret);

/* Frees S; NULL is accepted. */
void pf_refscan_free(pf_refscan *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(pf_refscan *, pf_refscan_free);
#define _cleanup_refscan_ _cleanup_(pf_refscan_freep)

/*
 * Adds a candidate: HASH_PART points to 32 base-32 characters (no NUL needed).
 * Returns the candidate's index (0, 1, ... in the order first added; adding a
 * hash part again returns its existing index), -EINVAL if HASH_PART is not 32
 * base-32 characters, or -ENOMEM. Candidates must all be added before the first
 * pf_refscan_feed().
 */
int pf_refscan_add(pf_refscan *s, const char *hash_part);

/* Number of candidates added. */
size_t pf_refscan_count(const pf_refscan *s);

/* Scans the next LEN bytes of the stream. Returns 0. */
int pf_refscan_feed(pf_refscan *s, const void *data, size_t len);

/*
 * The same as pf_refscan_feed() with the signature of pf_nar_sink_fn, USERDATA
 * being the pf_refscan, so a scanner can be a NAR sink directly.
 */
int pf_refscan_sink(void *userdata, const void *data, size_t len);

/* True if candidate IDX occurred in the stream fed so far. */
bool pf_refscan_seen(const pf_refscan *s, size_t idx);

/* Number of distinct candidates seen so far. */
size_t pf_refscan_n_seen(const pf_refscan *s);
