/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Compressors for the compressed pack variants (.gz, .xz, .zst).
 *
 * One call encodes one independent unit: a gzip member sequence, an .xz stream or
 * a zstd frame. Units concatenate into a valid file for the stock decompressors
 * (gzip, xz and zstd all accept concatenated members/streams/frames), which is
 * what lets a pack be assembled from separately encoded and cached pieces.
 *
 * Reproducibility: the output depends only on the input, the level and the
 * library's version (part of every cached unit's key), never on the machine. xz and zstd always use their multithreaded formats (liblzma's MT
 * encoder with a fixed block size, zstd with nbWorkers >= 1), whose bytes differ
 * from the single-threaded formats but not between thread counts; parallelism
 * comes from encoding many units at once (compressed.c), not from here.
 *
 * Encoders are stateless and may run on any number of threads at once.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Reads exactly LEN next bytes of the input into BUF; 0 or a negative errno. */
typedef int (*pf_codec_read_fn)(void *userdata, void *buf, size_t len);
/* Takes LEN bytes of output; 0 or a negative errno. */
typedef int (*pf_codec_write_fn)(void *userdata, const void *buf, size_t len);

typedef struct pf_codec {
        const char *name;       /* "gzip", "xz", "zstd"; the config key is "<name>-level" */
        const char *suffix;     /* ".gz", ".xz", ".zst" */
        int min_level, max_level, default_level;
        /* Input bytes per unit that keep the ratio of one whole-stream encoding
         * (xz: its MT block size, 3 x the dictionary; zstd: 4 x its window). */
        uint64_t (*unit_size)(int level);
        /* Input bytes up to which small store items share one unit. A changed
         * item re-encodes the groups it leaves and joins, so groups are as
         * small as the ratio allows: about as far back as the codec looks. */
        uint64_t (*group_size)(int level);
        /* The compression library's version: another may compress the same
         * input to other (valid) bytes, so it is part of every cache key. */
        unsigned (*library_version)(void);
        /* Encodes SIZE bytes from READ as one unit to WRITE. */
        int (*encode)(int level, uint64_t size, pf_codec_read_fn read, pf_codec_write_fn write, void *userdata);
} pf_codec;

extern const pf_codec pf_codec_gzip;
extern const pf_codec pf_codec_xz;
extern const pf_codec pf_codec_zstd;

/* The codec named NAME ("gzip", "xz", "zstd"), or NULL. */
const pf_codec *pf_codec_find(const char *name);
