/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Compressed variants of a format (pack.tar.xz, docker.tar.zst, ...), made from
 * the base format's plan by one codec (codec.h).
 *
 * The base plan's segments (plan.h) are cut into units: a large segment into
 * pieces of the codec's unit size, small segments with an identity grouped up to
 * the codec's (smaller) group size, about the distance it looks back
 * (boundaries partly chosen by the items' own digests, so a changed item moves
 * only its own group), unidentified segments alone. Each unit is encoded
 * independently and cached under a key derived from the codec, level and the
 * identities of what it holds; the pack is the concatenation of its units, which
 * every stock decompressor accepts. A new generation that changes one item
 * re-encodes only the units holding it (and the small parts that differ).
 *
 * Units are encoded in parallel, one per core at a time in the whole process;
 * units of background encodings (pf_view.background) only take a core no
 * foreground unit wants, and run at idle priority. An encoding stops with
 * -ECANCELED when cancellation is requested (cancel.h), discarding what it was
 * writing.
 * The list of a pack's units is cached too (a manifest, keyed by the format,
 * codec, level, closure and options), so a cache hit needs neither the base plan
 * nor the store walk: it costs a few index lookups and stat()s.
 *
 * The plan is then FILE extents onto the cached objects (read by the same path
 * as store files: pf_plan_pread() into the reply), or owned memfds for units that
 * could not be cached (disk full). It pins its objects against eviction while it
 * lives.
 */
#pragma once

#include "packfs/format.h"

int pf_compressed_plan(const pf_format *self, const pf_view *view, pf_plan **ret);
int pf_compressed_stream(const pf_format *self, const pf_view *view, int fd);
int pf_compressed_cached(const pf_format *self, const pf_view *view);

#define PF_COMPRESSED_FORMAT(name, base_format, codec_) \
        { \
                .file_name = (name), .plan = pf_compressed_plan, .stream = pf_compressed_stream, \
                .cached = pf_compressed_cached, \
                .base = &(base_format), .codec = &(codec_), \
        }

typedef struct pf_unit {
        uint64_t offset, length;        /* in the base plan */
        uint8_t key[32];
} pf_unit;

/* Cuts BASE into units for CODEC at LEVEL (described above). Exposed for tests. */
int pf_compressed_units(const pf_plan *base, const pf_codec *codec, int level, pf_unit **ret, size_t *ret_n);

/* Call after clearing a view's background flag (a reader came to wait): its
 * units waiting for a core as background ones look again. */
void pf_compressed_raised(void);

/* How many units encode at once in this process (the number of usable cores). */
unsigned pf_compressed_parallelism(void);
