/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * gzip with libdeflate (whole-buffer, deterministic, about twice zlib's speed at
 * the same level and ratio), xz with liblzma's multithreaded encoder, zstd with
 * libzstd's workers. See codec.h for why xz and zstd always use their MT formats.
 */
#include <errno.h>
#include <stdbool.h>
#include <libdeflate.h>
#include <lzma.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getCParams */
#include <zstd.h>
#include <zstd_errors.h>

#include "packfs/background.h"
#include "packfs/cancel.h"
#include "packfs/codec.h"
#include "packfs/hugemem.h"
#include "packfs/log.h"
#include "packfs/macro.h"

#define IO_BUFFER_SIZE (1024 * 1024)
#define XZ_CANCEL_POLL_MS 100
/* In the background, pausing between pieces of input (background.h) must
 * pause the compressor. liblzma's MT worker (5.4) compresses at most 16 KiB
 * each time it is handed input and otherwise waits until its block is
 * finished, then compresses the rest at once: fed 1 MiB pieces, it would do
 * most of a unit's work after its last input, deaf to pauses. So in the
 * background xz is fed 16 KiB at a time, each piece once the worker has
 * compressed the one before (lzma_get_progress()): a pause then stops it
 * within ~16 ms (xz -6 does about 1 MiB a second). Polling for that every
 * 200 us costs ~4 % of the background encoding's time; the bytes do not
 * depend on it. */
#define XZ_BACKGROUND_FEED (16 * 1024)
#define XZ_CATCH_UP_POLL_NS (200 * 1000)

/* Encoder contexts are kept per thread and reused for the next unit: a fresh
 * zstd or xz context per unit would allocate (and page-fault in) tens of MiB of
 * tables and buffers, and start a worker thread, every few MiB of input. Their
 * memory comes from hugemem.h: a new encoding's first contexts fault in a few
 * huge pages instead of thousands of small ones. */
typedef struct thread_contexts {
        ZSTD_CCtx *zstd;
        lzma_stream xz;
        bool xz_used;
        /* zstd's and xz's contexts run worker threads of their own, which take
         * the priority of the thread that made them: made again when this
         * thread goes to or leaves the background. */
        bool background;
        uint8_t *in, *out;      /* IO_BUFFER_SIZE each, for xz and zstd */
        struct libdeflate_compressor *deflate;
        int deflate_level;
        uint8_t *gzip_in, *gzip_out;    /* a gzip member's input, and room for its output */
        size_t gzip_out_size;
} thread_contexts;

static void *zstd_alloc(void *opaque, size_t size) {
        return pf_hugemem_alloc(size);
}

static void zstd_free(void *opaque, void *p) {
        pf_hugemem_free(p);
}

static const ZSTD_customMem zstd_memory = { zstd_alloc, zstd_free, NULL };

static void *xz_alloc(void *opaque, size_t nmemb, size_t size) {
        if (size != 0 && nmemb > SIZE_MAX / size)
                return NULL;
        return pf_hugemem_alloc(nmemb * size);
}

static void xz_free(void *opaque, void *p) {
        pf_hugemem_free(p);
}

static const lzma_allocator xz_memory = { xz_alloc, xz_free, NULL };

static pthread_key_t contexts_key;
static pthread_once_t contexts_once = PTHREAD_ONCE_INIT;

static void contexts_free(void *p) {
        thread_contexts *t = p;
        ZSTD_freeCCtx(t->zstd);
        if (t->xz_used)
                lzma_end(&t->xz);
        pf_hugemem_free(t->in);
        libdeflate_free_compressor(t->deflate);
        pf_hugemem_free(t->gzip_in);
        pf_hugemem_free(t->gzip_out);
        free(t);
}

static void contexts_init(void) {
        if (pthread_key_create(&contexts_key, contexts_free) != 0)
                abort();
}

/* Drops the contexts that own threads (made again on next use). */
static void contexts_drop_threaded(thread_contexts *t) {
        ZSTD_freeCCtx(t->zstd);
        t->zstd = NULL;
        if (t->xz_used)
                lzma_end(&t->xz);
        t->xz = (lzma_stream) LZMA_STREAM_INIT;
        t->xz.allocator = &xz_memory;
        t->xz_used = false;
}

static thread_contexts *contexts(void) {
        thread_contexts *t;

        pthread_once(&contexts_once, contexts_init);
        t = pthread_getspecific(contexts_key);
        if (t) {
                if (t->background != pf_background_current()) {
                        contexts_drop_threaded(t);
                        t->background = !t->background;
                }
                return t;
        }
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->xz = (lzma_stream) LZMA_STREAM_INIT;
        t->xz.allocator = &xz_memory;
        t->background = pf_background_current();
        /* Both buffers in one block: one huge page. */
        t->in = pf_hugemem_alloc(2 * IO_BUFFER_SIZE);
        if (!t->in) {
                free(t);
                return NULL;
        }
        t->out = t->in + IO_BUFFER_SIZE;
        if (pthread_setspecific(contexts_key, t) != 0) {
                pf_hugemem_free(t->in);
                free(t);
                return NULL;
        }
        return t;
}

/* gzip: one member per unit. Members are independent, as pigz --independent
 * makes them; a unit of several MiB loses nothing measurable to the restart of
 * deflate's 32 KiB window. */
#define GZIP_UNIT_SIZE (4 * 1024 * 1024)

static uint64_t gzip_unit_size(int level) {
        return GZIP_UNIT_SIZE;
}

/* deflate looks back 32 KiB: 1 MiB groups cost nothing measurable. */
static uint64_t gzip_group_size(int level) {
        return 1024 * 1024;
}

/* This thread's compressor at LEVEL and member buffers, made on first use. */
static int gzip_context(int level, thread_contexts **ret) {
        thread_contexts *t = contexts();

        if (!t)
                return -ENOMEM;
        if (t->deflate && t->deflate_level != level) {
                libdeflate_free_compressor(t->deflate);
                t->deflate = NULL;
        }
        if (!t->deflate) {
                t->deflate = libdeflate_alloc_compressor(level);
                if (!t->deflate)
                        return -ENOMEM;
                t->deflate_level = level;
        }
        if (!t->gzip_in) {
                t->gzip_out_size = libdeflate_gzip_compress_bound(t->deflate, GZIP_UNIT_SIZE);
                t->gzip_in = pf_hugemem_alloc(GZIP_UNIT_SIZE);
                t->gzip_out = pf_hugemem_alloc(t->gzip_out_size);
                if (!t->gzip_in || !t->gzip_out) {
                        pf_hugemem_free(t->gzip_in);
                        pf_hugemem_free(t->gzip_out);
                        t->gzip_in = t->gzip_out = NULL;
                        return -ENOMEM;
                }
        }
        *ret = t;
        return 0;
}

static int gzip_encode(int level, uint64_t size, pf_codec_read_fn read, pf_codec_write_fn write, void *userdata) {
        thread_contexts *t;
        int r;

        r = gzip_context(level, &t);
        if (r < 0)
                return r;
        /* A unit larger than GZIP_UNIT_SIZE (never from compressed.c) is cut
         * into members at fixed offsets, so the output still depends on the
         * input alone. An empty unit is one empty member: gzip -d wants one. */
        for (uint64_t done = 0; done < size || (size == 0 && done == 0);) {
                size_t n = (size_t) MIN(size - done, (uint64_t) GZIP_UNIT_SIZE);
                r = read(userdata, t->gzip_in, n);
                if (r < 0)
                        return r;
                /* The buffer holds the bound of the level it was made for;
                 * should another level's be larger, a member that does not
                 * fit fails (0), it does not overflow. */
                size_t k = libdeflate_gzip_compress(t->deflate, t->gzip_in, n, t->gzip_out, t->gzip_out_size);
                if (k == 0)
                        return -EIO;
                r = write(userdata, t->gzip_out, k);
                if (r < 0)
                        return r;
                done += n;
                if (size == 0)
                        break;
        }
        return 0;
}

/* libdeflate has no run-time version call: this is the version packfs was
 * built against (an upgrade of the library alone goes unnoticed). */
static unsigned gzip_library_version(void) {
        return LIBDEFLATE_VERSION_MAJOR * 1000u + LIBDEFLATE_VERSION_MINOR;
}

const pf_codec pf_codec_gzip = {
        .name = "gzip",
        .suffix = ".gz",
        .min_level = 1,
        .max_level = 9,
        /* gzip's and pigz's default: -9 (guix pack's) costs about 3x the CPU
         * for about 1% smaller packs. */
        .default_level = 6,
        .unit_size = gzip_unit_size,
        .group_size = gzip_group_size,
        .library_version = gzip_library_version,
        .encode = gzip_encode,
};

/* xz: the block size xz -T uses, 3 x the preset's dictionary (at least 1 MiB). */
static uint64_t xz_unit_size(int level) {
        lzma_options_lzma opt;

        if (lzma_lzma_preset(&opt, (uint32_t) level))
                return 3 * 8 * 1024 * 1024;
        return MAX(3 * (uint64_t) opt.dict_size, (uint64_t) 1024 * 1024);
}

/* xz: one dictionary (8 MiB at -6). Measured on the bench closure: 16 MiB and
 * 24 MiB groups cost no less CPU within this machine's noise (±5 %), and make a
 * new generation re-encode 2-3 times as much. */
static uint64_t xz_group_size(int level) {
        return xz_unit_size(level) / 3;
}

static int lzma_errno(lzma_ret ret) {
        switch (ret) {
        case LZMA_MEM_ERROR:
        case LZMA_MEMLIMIT_ERROR:
                return -ENOMEM;
        case LZMA_OPTIONS_ERROR:
                return -EINVAL;
        default:
                return -EIO;
        }
}

/* Whether SP's worker is still compressing some of the FED bytes. *LAST_IN
 * is the progress seen before: a worker that failed drops its progress, and
 * then only lzma_code() tells why (calling it without input to wait would fail
 * with LZMA_BUF_ERROR on the second call). */
static bool xz_worker_busy(lzma_stream *sp, uint64_t fed, uint64_t *last_in) {
        uint64_t in = 0, out = 0;

        lzma_get_progress(sp, &in, &out);
        if (in >= fed || in < *last_in)
                return false;
        *last_in = in;
        return true;
}

static int xz_encode(int level, uint64_t size, pf_codec_read_fn read, pf_codec_write_fn write, void *userdata) {
        thread_contexts *t = contexts();
        lzma_mt mt = {
                .flags = 0,
                .threads = 1,
                .block_size = xz_unit_size(level),
                /* lzma_code() returns now and then while a block compresses
                 * (seconds at -6), so a cancelled encoding stops at once. The
                 * bytes do not depend on it. */
                .timeout = XZ_CANCEL_POLL_MS,
                .preset = (uint32_t) level,
                .check = LZMA_CHECK_CRC64, /* xz's default */
        };
        uint64_t left = size, last_in = 0;
        lzma_ret ret;
        int r = 0;

        if (!t)
                return -ENOMEM;
        uint8_t *in = t->in, *out = t->out;
        /* Initialising a used stream again reuses its memory and threads. */
        lzma_stream *sp = &t->xz;
        t->xz_used = true;
        ret = lzma_stream_encoder_mt(sp, &mt);
        if (ret != LZMA_OK)
                return lzma_errno(ret);
        sp->next_in = NULL; /* nothing left over from a unit that failed */
        sp->avail_in = 0;
        sp->next_out = out;
        sp->avail_out = IO_BUFFER_SIZE;
        for (;;) {
                if (pf_cancel_requested()) {
                        r = -ECANCELED;
                        goto out;
                }
                /* Paced while this thread is in the background: it leaves
                 * it (read() below) as soon as a reader waits. */
                bool paced = t->background && pf_background_current();
                if (sp->avail_in == 0 && left > 0 && paced && xz_worker_busy(sp, size - left, &last_in)) {
                        const struct timespec poll = { .tv_nsec = XZ_CATCH_UP_POLL_NS };
                        nanosleep(&poll, NULL);
                        continue;
                }
                if (sp->avail_in == 0 && left > 0) {
                        size_t n = (size_t) MIN(left, (uint64_t) (paced ? XZ_BACKGROUND_FEED : IO_BUFFER_SIZE));
                        r = read(userdata, in, n);
                        if (r < 0)
                                goto out;
                        sp->next_in = in;
                        sp->avail_in = n;
                        left -= n;
                }
                ret = lzma_code(sp, left == 0 ? LZMA_FINISH : LZMA_RUN);
                if (sp->avail_out == 0 || ret == LZMA_STREAM_END) {
                        r = write(userdata, out, IO_BUFFER_SIZE - sp->avail_out);
                        if (r < 0)
                                goto out;
                        sp->next_out = out;
                        sp->avail_out = IO_BUFFER_SIZE;
                }
                if (ret == LZMA_STREAM_END)
                        break;
                if (ret != LZMA_OK) {
                        r = lzma_errno(ret);
                        goto out;
                }
        }
out:
        return r;
}

static unsigned xz_library_version(void) {
        return (unsigned) lzma_version_number();
}

const pf_codec pf_codec_xz = {
        .name = "xz",
        .suffix = ".xz",
        .min_level = 0,
        .max_level = 9,
        .default_level = 6, /* xz's own default */
        .unit_size = xz_unit_size,
        .group_size = xz_group_size,
        .library_version = xz_library_version,
        .encode = xz_encode,
};

/* zstd: units of 8 windows (16 MiB at the default level), so independent frames
 * lose about what zstd -T0's job boundaries lose. */
static uint64_t zstd_unit_size(int level) {
        ZSTD_compressionParameters p = ZSTD_getCParams(level, 0, 0);
        return (uint64_t) 1 << MAX(24u, p.windowLog + 3);
}

/* zstd: a quarter of the window (512 KiB at the default level, at least that).
 * Measured on the bench closure at -3: 512 KiB groups made the pack 0.03 %
 * larger than 2 MiB groups (1 MiB ones 0.03 % smaller), and a new generation
 * of the median package re-encodes the package alone, not its neighbours. */
static uint64_t zstd_group_size(int level) {
        ZSTD_compressionParameters p = ZSTD_getCParams(level, 0, 0);
        return (uint64_t) 1 << MAX(19u, p.windowLog - 2);
}

static int zstd_errno(size_t ret) {
        return ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO;
}

static int zstd_encode(int level, uint64_t size, pf_codec_read_fn read, pf_codec_write_fn write, void *userdata) {
        thread_contexts *t = contexts();
        uint64_t left = size;
        ZSTD_CCtx *c;
        size_t ret;
        int r = 0;

        if (!t)
                return -ENOMEM;
        if (!t->zstd && !(t->zstd = ZSTD_createCCtx_advanced(zstd_memory)))
                return -ENOMEM;
        c = t->zstd;
        uint8_t *in = t->in, *out = t->out;
        /* A new frame; the parameters are all set again below. */
        ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
        /* nbWorkers >= 1 selects the MT format whatever the core count; the
         * checksum and the content size in the header are what zstd(1) writes. */
        if (ZSTD_isError(ret = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
            ZSTD_isError(ret = ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, 1)) ||
            ZSTD_isError(ret = ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)) ||
            ZSTD_isError(ret = ZSTD_CCtx_setPledgedSrcSize(c, size))) {
                log_error("zstd: %s", ZSTD_getErrorName(ret));
                r = -EINVAL;
                goto out;
        }
        for (;;) {
                ZSTD_inBuffer ib = { in, 0, 0 };
                if (left > 0) {
                        size_t n = (size_t) MIN(left, (uint64_t) IO_BUFFER_SIZE);
                        r = read(userdata, in, n);
                        if (r < 0)
                                goto out;
                        ib.size = n;
                        left -= n;
                }
                ZSTD_EndDirective mode = left == 0 ? ZSTD_e_end : ZSTD_e_continue;
                for (bool finished = false; !finished;) {
                        ZSTD_outBuffer ob = { out, IO_BUFFER_SIZE, 0 };
                        ret = ZSTD_compressStream2(c, &ob, &ib, mode);
                        if (ZSTD_isError(ret)) {
                                r = zstd_errno(ret);
                                goto out;
                        }
                        if (ob.pos > 0) {
                                r = write(userdata, out, ob.pos);
                                if (r < 0)
                                        goto out;
                        }
                        finished = mode == ZSTD_e_end ? ret == 0 : ib.pos == ib.size;
                }
                if (mode == ZSTD_e_end)
                        break;
        }
out:
        if (r < 0)
                ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
        return r;
}

static unsigned zstd_library_version(void) {
        return ZSTD_versionNumber();
}

const pf_codec pf_codec_zstd = {
        .name = "zstd",
        .suffix = ".zst",
        .min_level = 1,
        .max_level = 19,
        .default_level = 3, /* zstd's own default; guix pack's -19 is ~40x slower */
        .unit_size = zstd_unit_size,
        .group_size = zstd_group_size,
        .library_version = zstd_library_version,
        .encode = zstd_encode,
};

const pf_codec *pf_codec_find(const char *name) {
        static const pf_codec *const all[] = { &pf_codec_gzip, &pf_codec_xz, &pf_codec_zstd };

        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                if (!strcmp(all[i]->name, name))
                        return all[i];
        return NULL;
}
