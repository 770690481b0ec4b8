/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A plan is a pack's byte layout: its exact size and a sorted, gapless list of
 * extents, each one of
 *   - BYTES:     literal bytes held by the plan (small: headers of fixed formats),
 *   - FILE:      a range of a store file, checked against the size and mtime it had
 *                when planned,
 *   - ZERO:      zeros (padding),
 *   - GENERATED: bytes a format computes on demand from its own plan data, so
 *                memory stays proportional to the number of entries, not bytes.
 * Reading at any offset finds its extent by binary search.
 *
 * A plan may also be cut into segments: consecutive byte ranges whose bytes depend
 * only on an identity the format gives (one store item's members, keyed by its
 * path and NAR hash), or, for a segment without one, only on its own bytes.
 * Compressed variants encode and cache segments separately (compressed.h).
 *
 * Plans are built by one thread (pf_plan_builder) and then frozen: a frozen plan
 * is immutable and may be read by any number of threads. Reference counted so an
 * open file keeps the plan (and the closure snapshot) it was opened on.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "packfs/cache.h"

typedef struct pf_plan pf_plan;
typedef struct pf_plan_builder pf_plan_builder;

/* Fills BUF with LEN bytes of a GENERATED extent starting OFFSET bytes into it.
 * FORMAT_DATA is what the format attached to the plan; COOKIE is per extent. */
typedef int (*pf_generate_fn)(const void *format_data, uint64_t cookie, uint64_t offset, void *buf,
                              size_t len);

enum pf_extent_kind {
        PF_EXTENT_BYTES,
        PF_EXTENT_FILE,
        PF_EXTENT_ZERO,
        PF_EXTENT_GENERATED,
};

typedef struct pf_extent {
        uint64_t offset;        /* in the pack */
        uint64_t length;
        uint32_t kind;          /* enum pf_extent_kind */
        uint32_t file;          /* FILE: index into the plan's file table */
        uint64_t arg;           /* BYTES: offset in the byte arena; FILE: offset in the file;
                                 * GENERATED: the cookie */
} pf_extent;

_Static_assert(sizeof(pf_extent) == 32, "extents are packed into 32 bytes");

typedef struct pf_plan_file {
        const char *path;       /* absolute, in the plan's string arena; a name for logs if fd >= 0 */
        uint64_t size;          /* st_size when planned */
        int64_t mtime;          /* st_mtime when planned */
        int fd;                 /* >= 0: a file the plan owns (an uncached encoding), else -1 */
} pf_plan_file;

typedef struct pf_plan_segment {
        uint64_t offset, length;
        uint8_t identity[32];
        bool has_identity;      /* false: identified by its bytes */
} pf_plan_segment;

int pf_plan_builder_new(pf_plan_builder **ret);
void pf_plan_builder_free(pf_plan_builder *b);

/* Appends extents; each returns 0 or -ENOMEM. Zero-length appends are ignored.
 * Adjacent BYTES and ZERO extents are merged. */
int pf_plan_add_bytes(pf_plan_builder *b, const void *data, size_t len);
int pf_plan_add_zero(pf_plan_builder *b, uint64_t len);
/* PATH must come from pf_plan_intern() on the same builder (file tables share the
 * strings formats already interned for their headers). */
int pf_plan_add_file(pf_plan_builder *b, const char *path, uint64_t file_size, int64_t mtime,
                     uint64_t file_offset, uint64_t len);
int pf_plan_add_generated(pf_plan_builder *b, uint64_t len, uint64_t cookie);
/* Appends [FILE_OFFSET, +LEN) of FD, which the plan takes over (closes when freed,
 * also on failure). NAME (interned) names it in logs. FD must not change. */
int pf_plan_add_owned_fd(pf_plan_builder *b, int fd, const char *name, uint64_t file_size,
                         uint64_t file_offset, uint64_t len);
/* Starts a new segment at the current end; IDENTITY NULL for one identified by
 * its bytes. The bytes before the first call form an unidentified segment. */
int pf_plan_begin_segment(pf_plan_builder *b, const uint8_t identity[32]);
/* Copies STR into the plan's string arena; the result lives as long as the plan. */
const char *pf_plan_intern(pf_plan_builder *b, const char *str);
uint64_t pf_plan_builder_size(const pf_plan_builder *b);

/* Freezes the builder into a plan with one reference; the builder is consumed
 * (freed) whatever the outcome. FORMAT_DATA (may be NULL) is owned by the plan and
 * released with FREE_DATA when the last reference goes. */
int pf_plan_builder_finish(pf_plan_builder *b, pf_generate_fn generate, void *format_data,
                           void (*free_data)(void *), pf_plan **ret);

pf_plan *pf_plan_ref(pf_plan *p);
void pf_plan_unref(pf_plan *p);

uint64_t pf_plan_size(const pf_plan *p);
size_t pf_plan_n_extents(const pf_plan *p);
const pf_extent *pf_plan_extent(const pf_plan *p, size_t i);
const pf_plan_file *pf_plan_file_at(const pf_plan *p, uint32_t i);
/* The segments, in order, covering [0, size) without gaps; empty ones are dropped. */
size_t pf_plan_n_segments(const pf_plan *p);
const pf_plan_segment *pf_plan_segment_at(const pf_plan *p, size_t i);
/* Index of the extent containing OFFSET (OFFSET < size). */
size_t pf_plan_find(const pf_plan *p, uint64_t offset);

/* Copies the memory-backed part [OFFSET, OFFSET+LEN) of extent E (BYTES, ZERO or
 * GENERATED) into BUF. OFFSET is relative to the extent. */
int pf_plan_fill(const pf_plan *p, const pf_extent *e, uint64_t offset, void *buf, size_t len);

/* Opens the store file behind FILE extent E for reading and checks it still has
 * the size and mtime it was planned with: -EIO and a log line naming it if not.
 * For an owned fd, returns a duplicate. The caller closes the result. */
int pf_plan_open_file(const pf_plan *p, const pf_extent *e);

/* Told of every read pf_plan_pread() serves, with its bytes, in the reader's
 * thread (docker.tar hashes its layers as a sequential reader streams them).
 * Set once, before the plan is shared. */
typedef void (*pf_read_observer)(const void *format_data, uint64_t offset, const void *buf, size_t len);
void pf_plan_set_observer(pf_plan *p, pf_read_observer observer);

/* The bytes [OFFSET, +LENGTH) of BASE as a plan of their own (one GENERATED
 * extent reading BASE, which it holds a reference to): a blob of an image
 * layout that is a layer of docker.tar. -EINVAL past BASE's end. */
int pf_plan_slice(pf_plan *base, uint64_t offset, uint64_t length, pf_plan **ret);
/* What the format attached to P (pf_plan_builder_finish()'s FORMAT_DATA). */
const void *pf_plan_format_data(const pf_plan *p);

/* Reads up to LEN bytes at OFFSET into BUF: what the filesystem's reads, `packfs
 * build` and the encoders use. Returns the number of bytes read (short only at
 * the end) or a negative errno. */
ssize_t pf_plan_pread(const pf_plan *p, void *buf, size_t len, uint64_t offset);

/* The plan whose bytes are OBJS[0..N) one after another (objects of CACHE under
 * KEYS, as pf_cache_acquire() or pf_cache_writer_commit() gave them): it takes
 * over their pins (released when the plan goes) and open files; an object
 * without a path (an uncached memfd) is served from its fd. OBJS are consumed
 * whatever the outcome. */
int pf_plan_over_cache_objects(pf_cache *cache, const uint8_t (*keys)[32], pf_cache_object *objs, size_t n,
                               pf_plan **ret);
/* The plan over the objects of the manifest KEY (cache.h), pinned: 1 and *ret,
 * or 0 when the manifest or any of its objects is missing (nothing held). */
int pf_plan_from_manifest(const uint8_t key[32], pf_cache *cache, pf_plan **ret);
