/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * docker.tar: an image archive for `docker load` (the layout `docker save`
 * writes: manifest.json, the config, one directory per layer holding its
 * layer.tar, and `repositories`), as `guix pack -f docker` and nixpkgs'
 * streamLayeredImage make them.
 *
 *   <id>/            for each store item, in closure order, then one last layer
 *   <id>/layer.tar   the item at its store path with the store's parent
 *                    directories: the same members, byte for byte, as in
 *                    pack.tar (tar-plan.h), so two profiles sharing an item
 *                    share that layer's digest, and compressed units of
 *                    pack.tar serve docker.tar too
 *   ...              the last layer: the profile's symlinks, /tmp (1777) and
 *                    the localstatedir database
 *   <digest>.json    the image config (rootfs.diff_ids, history, Env, ...)
 *   manifest.json    Config, RepoTags, Layers
 *   repositories     the tag's top layer, for older readers
 *
 * The size is known from metadata: layer directories are named by the item
 * (not by the digest of their bytes), digests have a fixed width, and the
 * config and manifest come last. Their bytes are generated when a read reaches
 * them: the layer digests are then looked up (a record per store item in the
 * cache) or computed by reading the layers through the plan, once per plan.
 */
#include <errno.h>
#include <gcrypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "packfs/compressed.h"
#include "packfs/digest.h"
#include "packfs/cache.h"
#include "packfs/format.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/searchpath.h"
#include "docker.h"
#include "tar-plan.h"

/* Bump when a layer's members or their framing change: digests are recorded
 * under it. */
#define DOCKER_LAYER_LAYOUT "packfs docker layer 1"
#define DIGEST_RECORD "packfs docker layer digest 1"
#define DIGEST_RECORD_SIZE (32 + 32)
#define HEX_DIGEST 64
/* The epoch plus the archives' mtime: what `created` says. */
#define CREATED "1970-01-01T00:00:01Z"

/* Cookies of the generated extents that are not tar headers. */
enum {
        COOKIE_CONFIG_HEADER = 1u << 30, /* its name holds the config's digest */
        COOKIE_CONFIG,
        COOKIE_MANIFEST,
};

typedef struct docker_layer {
        uint8_t id[32];                 /* names its directory */
        bool keyed;                     /* its digest is recorded under id */
        bool materialized;              /* its bytes are in the plan (not a placeholder) */
        uint64_t offset, length;        /* layer.tar in the plan */
        size_t header;                  /* the entry of <id>/layer.tar */
        const char *created_by;         /* the history's words for it (interned) */
} docker_layer;

/* Reads kept while an earlier one is still on its way (see docker_observe()). */
#define STREAM_AHEAD (8u << 20)
#define STREAM_PIECES_MAX 64

typedef struct stream_piece {
        uint64_t offset;
        size_t len;
        uint8_t *data;
} stream_piece;

typedef struct docker_data {
        tar_plan_data tar;              /* first: the headers tar_generate() serves */
        docker_layer *layers;
        size_t n_layers;
        char *arch, *entry_point, *repo_tag;
        char **env;                     /* the profile's search paths, "VAR=value" */
        size_t config_size, manifest_size;
        pf_cache *cache;                /* NULL: digests are not recorded */
        const pf_plan *plan;            /* the plan owning this, to read layers from */

        /* Guards the digests below: computed once, by the first read that
         * needs them, whichever thread it is. */
        pthread_mutex_t lock;
        bool have_digests;
        uint8_t (*digests)[32];         /* n_layers */
        bool *known;                    /* n_layers: digests[i] is set; fixed once planned */
        uint8_t config_digest[32];

        /* Guards the streaming hash below (never held with lock taken after
         * it: digests_locked() reads through the plan, whose observer takes
         * this one). A sequential reader's bytes of a layer are hashed as
         * they pass (docker_observe()), so `docker load` never makes the
         * config wait for a second read of the layers. */
        pthread_mutex_t stream_lock;
        gcry_md_hd_t stream_md;
        size_t stream_layer;            /* being hashed; n_layers: none */
        uint64_t stream_pos;            /* the next offset the hashes expect */
        uint64_t stream_start;          /* the first layer to hash (fixed once planned) */
        stream_piece pending[STREAM_PIECES_MAX]; /* reads that came ahead of it */
        size_t n_pending;
        uint64_t pending_bytes;
        bool *streamed;                 /* n_layers: streamed_digests[i] is set */
        uint8_t (*streamed_digests)[32];
} docker_data;

typedef struct docker_planner {
        tar_planner t;
        docker_data *d;
        const char *store_dir;
        size_t allocated;
        /* Past max-layers: the items sharing one layer, in closure order,
         * after those with layers of their own (order, for tar_plan_items()). */
        size_t *order;
        bool *merged;                   /* by item index */
        size_t first_merged, last_merged;
        uint8_t merged_id[32];
        size_t n_merged;
} docker_planner;

static void pending_clear(docker_data *d) {
        for (size_t k = 0; k < d->n_pending; k++)
                free(d->pending[k].data);
        d->n_pending = 0;
        d->pending_bytes = 0;
}

static void docker_data_free(void *p) {
        docker_data *d = p;

        if (!d)
                return;
        free(d->tar.entries);
        free(d->layers);
        free(d->arch);
        pf_strv_free(d->env);
        free(d->entry_point);
        free(d->repo_tag);
        free(d->digests);
        free(d->known);
        free(d->streamed);
        free(d->streamed_digests);
        if (d->stream_md)
                gcry_md_close(d->stream_md);
        pending_clear(d);
        pthread_mutex_destroy(&d->stream_lock);
        pthread_mutex_destroy(&d->lock);
        free(d);
}

/* --- JSON */

typedef struct text {
        char *data;
        size_t len, allocated;
        bool failed;
} text;

static void put(text *t, const char *s, size_t n) {
        if (t->failed)
                return;
        if (t->len + n + 1 > t->allocated) {
                size_t na = MAX(t->allocated * 2, t->len + n + 256);
                char *v = realloc(t->data, na);
                if (!v) {
                        t->failed = true;
                        return;
                }
                t->data = v;
                t->allocated = na;
        }
        memcpy(t->data + t->len, s, n);
        t->len += n;
        t->data[t->len] = 0;
}

static void puts_(text *t, const char *s) {
        put(t, s, strlen(s));
}

/* A JSON string, quoted and escaped. */
static void put_string(text *t, const char *s) {
        put(t, "\"", 1);
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                char esc[8];
                if (c == '"' || c == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char) c;
                        put(t, esc, 2);
                } else if (c < 0x20) {
                        snprintf(esc, sizeof(esc), "\\u%04x", c);
                        put(t, esc, 6);
                } else
                        put(t, s, 1);
        }
        put(t, "\"", 1);
}

static void put_digest(text *t, const uint8_t digest[32]) {
        char h[HEX_DIGEST + 1];
        pf_hex(digest, 32, h);
        puts_(t, "\"sha256:");
        puts_(t, h);
        puts_(t, "\"");
}

/* The image config; DIGESTS NULL: zeros of the same width (for its size). */
static void build_config(const docker_data *d, const uint8_t (*digests)[32], text *t) {
        static const uint8_t zero[32];

        puts_(t, "{\"architecture\":");
        put_string(t, d->arch);
        puts_(t, ",\"config\":{\"Env\":[");
        for (size_t i = 0; d->env[i]; i++) {
                if (i)
                        puts_(t, ",");
                put_string(t, d->env[i]);
        }
        puts_(t, "]");
        if (d->entry_point) {
                puts_(t, ",\"Entrypoint\":[");
                put_string(t, d->entry_point);
                puts_(t, "]");
        }
        puts_(t, "},\"created\":\"" CREATED "\",\"history\":[");
        for (size_t i = 0; i < d->n_layers; i++) {
                puts_(t, i ? ",{" : "{");
                puts_(t, "\"created\":\"" CREATED "\",\"created_by\":");
                put_string(t, d->layers[i].created_by);
                puts_(t, "}");
        }
        puts_(t, "],\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[");
        for (size_t i = 0; i < d->n_layers; i++) {
                if (i)
                        puts_(t, ",");
                put_digest(t, digests ? digests[i] : zero);
        }
        puts_(t, "]}}");
}

static void layer_path(const docker_layer *l, char *out) {
        pf_hex(l->id, 32, out);
        strcpy(out + HEX_DIGEST, "/layer.tar");
}

static void build_manifest(const docker_data *d, const uint8_t config_digest[32], text *t) {
        static const uint8_t zero[32];
        char name[HEX_DIGEST + 16];

        pf_hex(config_digest ? config_digest : zero, 32, name);
        strcat(name, ".json");
        puts_(t, "[{\"Config\":");
        put_string(t, name);
        puts_(t, ",\"RepoTags\":[");
        put_string(t, d->repo_tag);
        puts_(t, "],\"Layers\":[");
        for (size_t i = 0; i < d->n_layers; i++) {
                char path[HEX_DIGEST + 16];
                layer_path(&d->layers[i], path);
                if (i)
                        puts_(t, ",");
                put_string(t, path);
        }
        puts_(t, "]}]\n");
}

/* --- Digests */

static void digest_record_key(const uint8_t id[32], uint8_t key[32]) {
        pf_sha256_pair(DIGEST_RECORD, sizeof(DIGEST_RECORD), id, 32, key);
}

static bool digest_lookup(pf_cache *cache, const uint8_t id[32], uint8_t digest[32]) {
        _cleanup_free_ uint8_t *data = NULL;
        uint8_t key[32], check[32];
        size_t size = 0;

        if (!cache)
                return false;
        digest_record_key(id, key);
        if (pf_cache_record_get(cache, key, (void **) &data, &size) < 0)
                return false;
        if (size == DIGEST_RECORD_SIZE)
                pf_sha256_pair(key, 32, data, 32, check);
        if (size != DIGEST_RECORD_SIZE || memcmp(check, data + 32, 32) != 0) {
                log_warning("cache: a docker layer's recorded digest is damaged; hashing the layer again");
                (void) pf_cache_record_drop(cache, key);
                return false;
        }
        memcpy(digest, data, 32);
        return true;
}

static void digest_record(pf_cache *cache, const uint8_t id[32], const uint8_t digest[32]) {
        uint8_t key[32], data[DIGEST_RECORD_SIZE];

        if (!cache)
                return;
        digest_record_key(id, key);
        memcpy(data, digest, 32);
        pf_sha256_pair(key, 32, digest, 32, data + 32);
        (void) pf_cache_record_put(cache, key, data, sizeof(data));
}

/* Set while this thread hashes a layer itself: its reads are not to be
 * hashed a second time by the plan's observer. */
static _Thread_local bool hashing_here;

/* SHA-256 of [OFFSET, +LENGTH) of PLAN. */
static int hash_range(const pf_plan *plan, uint64_t offset, uint64_t length, uint8_t digest[32]) {
        enum { CHUNK = 1 << 20 };
        _cleanup_free_ uint8_t *buf = malloc(CHUNK);
        gcry_md_hd_t md;
        int r = 0;

        if (!buf)
                return -ENOMEM;
        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                return -ENOMEM;
        hashing_here = true;
        while (length > 0) {
                ssize_t n = pf_plan_pread(plan, buf, (size_t) MIN(length, (uint64_t) CHUNK), offset);
                if (n <= 0) {
                        r = n < 0 ? (int) n : -EIO;
                        break;
                }
                gcry_md_write(md, buf, (size_t) n);
                offset += (uint64_t) n;
                length -= (uint64_t) n;
        }
        hashing_here = false;
        if (r >= 0)
                memcpy(digest, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
        return r;
}

static void stream_consume(docker_data *d, uint64_t offset, const uint8_t *p, size_t len);

/* The stream stopped inside layer I: a read still on its way on another
 * thread when the config was asked for. Its hash is finished from there, not
 * taken again from the layer's start. Called with stream_lock held; the
 * observer stays out (hashing_here). Returns the bytes read. */
static int64_t stream_finish_locked(docker_data *d, size_t i) {
        enum { CHUNK = 1 << 20 };
        const docker_layer *l = &d->layers[i];
        uint64_t end = l->offset + l->length, from = d->stream_pos;
        _cleanup_free_ uint8_t *buf = NULL;

        if (d->streamed[i] || !d->stream_md || d->stream_layer != i || d->stream_pos <= l->offset ||
            d->stream_pos >= end || !(buf = malloc(CHUNK)))
                return 0;
        hashing_here = true;
        while (d->stream_pos < end) {
                ssize_t n = pf_plan_pread(d->plan, buf, (size_t) MIN((uint64_t) CHUNK, end - d->stream_pos),
                                          d->stream_pos);
                if (n <= 0)
                        break; /* hashed whole below, which reports the error */
                stream_consume(d, d->stream_pos, buf, (size_t) n);
        }
        hashing_here = false;
        return (int64_t) (d->stream_pos - from);
}

/* Makes sure every layer's digest and the config's are known. Called with
 * D->lock held. */
static int digests_locked(docker_data *d) {
        size_t n_hashed = 0, n_streamed = 0, n_recorded = 0;
        uint64_t streamed_bytes = 0, finished_bytes = 0;
        text config = {};
        int r;

        if (d->have_digests)
                return 0;
        for (size_t i = 0; i < d->n_layers; i++) {
                docker_layer *l = &d->layers[i];
                bool streamed;
                pthread_mutex_lock(&d->stream_lock);
                finished_bytes += (uint64_t) stream_finish_locked(d, i);
                streamed = d->streamed[i];
                if (streamed)
                        memcpy(d->digests[i], d->streamed_digests[i], 32);
                pthread_mutex_unlock(&d->stream_lock);
                if (streamed && l->keyed)
                        digest_record(d->cache, l->id, d->digests[i]);
                if (streamed) {
                        n_streamed++;
                        streamed_bytes += l->length;
                        continue;
                }
                if (d->known[i] || (l->keyed && digest_lookup(d->cache, l->id, d->digests[i]))) {
                        n_recorded++;
                        continue;
                }
                if (!l->materialized)
                        /* docker_plan_sparse() settles these; an evicted record cannot be read back. */
                        return log_error_errno(-EIO, "docker.tar: the digest of layer %zu (%s) is unknown",
                                               i, l->created_by);
                r = hash_range(d->plan, l->offset, l->length, d->digests[i]);
                if (r < 0)
                        return log_error_errno(r, "docker.tar: cannot hash layer %zu (%s)", i, l->created_by);
                n_hashed++;
                if (l->keyed)
                        digest_record(d->cache, l->id, d->digests[i]);
        }
        build_config(d, (const uint8_t (*)[32]) d->digests, &config);
        if (config.failed || config.len != d->config_size) {
                free(config.data);
                return config.failed ? -ENOMEM : -EIO;
        }
        gcry_md_hash_buffer(GCRY_MD_SHA256, d->config_digest, config.data, config.len);
        free(config.data);
        d->have_digests = true;
        /* In one transaction (cache.h). */
        (void) pf_cache_flush_records(d->cache);
        log_info("docker.tar of %s: hashed %zu of %zu layers (%llu bytes) while streaming (%llu bytes of them "
                 "read again to finish a layer), %zu digests were recorded",
                 d->repo_tag, n_streamed, d->n_layers, (unsigned long long) streamed_bytes,
                 (unsigned long long) finished_bytes, n_recorded);
        if (n_hashed > 0)
                log_info("docker.tar: read %zu of %zu layers again for their digests (the others were streamed or recorded)",
                         n_hashed, d->n_layers);
        return 0;
}

/* The first layer starting after OFFSET, or N_LAYERS. */
static size_t layer_after(const docker_data *d, uint64_t offset) {
        size_t lo = 0, hi = d->n_layers;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (d->layers[mid].offset > offset)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return lo;
}

/* The layer whose bytes hold OFFSET, or N_LAYERS. */
static size_t layer_at(const docker_data *d, uint64_t offset) {
        size_t lo = 0, hi = d->n_layers;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const docker_layer *l = &d->layers[mid];
                if (offset < l->offset)
                        hi = mid;
                else if (offset >= l->offset + l->length)
                        lo = mid + 1;
                else
                        return mid;
        }
        return d->n_layers;
}

/* Feeds [OFFSET, +LEN) (OFFSET == stream_pos) to the layers' hashes: a layer's
 * hash starts at its first byte and ends, recorded, at its last; what lies
 * between layers is skipped. Called with stream_lock held. */
static void stream_consume(docker_data *d, uint64_t offset, const uint8_t *p, size_t len) {
        uint64_t end = offset + len;

        while (offset < end) {
                size_t i = layer_at(d, offset);
                if (i == d->n_layers) {
                        size_t next = layer_after(d, offset);
                        if (next == d->n_layers || d->layers[next].offset >= end)
                                break;
                        p += d->layers[next].offset - offset;
                        offset = d->layers[next].offset;
                        continue;
                }
                const docker_layer *l = &d->layers[i];
                uint64_t take = MIN(end, l->offset + l->length) - offset;
                if (offset == l->offset) {
                        if (!d->stream_md && gcry_md_open(&d->stream_md, GCRY_MD_SHA256, 0) != 0)
                                d->stream_md = NULL;
                        else if (d->stream_md)
                                gcry_md_reset(d->stream_md);
                        d->stream_layer = i;
                }
                if (d->stream_md && d->stream_layer == i && l->materialized && !d->known[i]) {
                        gcry_md_write(d->stream_md, p, take);
                        if (offset + take == l->offset + l->length) {
                                memcpy(d->streamed_digests[i], gcry_md_read(d->stream_md, GCRY_MD_SHA256), 32);
                                d->streamed[i] = true;
                                d->stream_layer = d->n_layers;
                        }
                }
                offset += take;
                p += take;
        }
        d->stream_pos = end;
}

/* The plan's read observer: hashes the layers as a reader streams them in
 * order. FUSE serves the kernel's read-ahead on several threads, so reads
 * arrive a little out of order: those up to STREAM_AHEAD bytes ahead are kept
 * until the gap before them is filled. A reader that seeks elsewhere (skopeo,
 * containerd) leaves the hashes behind; a later read from offset 0 starts
 * again. Whatever was not streamed is hashed when the config needs it. */
static void docker_observe(const void *format_data, uint64_t offset, const void *buf, size_t len) {
        docker_data *d = (docker_data *) format_data;
        const uint8_t *p = buf;

        /* Before the first layer with no digest yet: nothing to hash. */
        if (hashing_here || offset + len <= d->stream_start)
                return;
        pthread_mutex_lock(&d->stream_lock);
        if (offset == 0 && d->stream_pos != d->stream_start) {
                pending_clear(d);
                d->stream_pos = d->stream_start;
                d->stream_layer = d->n_layers;
        }
        if (offset <= d->stream_pos && offset + len > d->stream_pos) {
                uint64_t skip = d->stream_pos - offset;
                stream_consume(d, d->stream_pos, p + skip, len - skip);
                /* Kept pieces that now follow on. */
                for (bool progress = true; progress;) {
                        progress = false;
                        for (size_t k = 0; k < d->n_pending; k++) {
                                stream_piece *c = &d->pending[k];
                                if (c->offset > d->stream_pos)
                                        continue;
                                if (c->offset + c->len > d->stream_pos) {
                                        uint64_t cskip = d->stream_pos - c->offset;
                                        stream_consume(d, d->stream_pos, c->data + cskip, c->len - cskip);
                                        progress = true;
                                }
                                d->pending_bytes -= c->len;
                                free(c->data);
                                d->pending[k--] = d->pending[--d->n_pending];
                        }
                }
        } else if (offset > d->stream_pos && offset - d->stream_pos <= STREAM_AHEAD &&
                   d->n_pending < STREAM_PIECES_MAX && d->pending_bytes + len <= STREAM_AHEAD) {
                uint8_t *copy = malloc(len);
                if (copy) {
                        memcpy(copy, p, len);
                        d->pending[d->n_pending++] = (stream_piece) { .offset = offset, .len = len, .data = copy };
                        d->pending_bytes += len;
                }
        }
        pthread_mutex_unlock(&d->stream_lock);
}

static int copy_out(const text *t, size_t expected, uint64_t offset, void *buf, size_t len) {
        if (t->failed)
                return -ENOMEM;
        if (t->len != expected || offset + len > t->len)
                return -EIO;
        memcpy(buf, t->data + offset, len);
        return 0;
}

static int docker_generate(const void *format_data, uint64_t cookie, uint64_t offset, void *buf, size_t len) {
        docker_data *d = (docker_data *) format_data;
        text t = {};
        int r;

        if (cookie < COOKIE_CONFIG_HEADER)
                return tar_generate(&d->tar, cookie, offset, buf, len);

        pthread_mutex_lock(&d->lock);
        r = digests_locked(d);
        pthread_mutex_unlock(&d->lock);
        if (r < 0)
                return r;
        switch (cookie) {
        case COOKIE_CONFIG_HEADER: {
                char name[HEX_DIGEST + 16];
                uint8_t header[TAR_HEADER_MAX];
                pf_hex(d->config_digest, 32, name);
                strcat(name, ".json");
                tar_entry e = { .name = name, .mode = S_IFREG | 0644, .size = d->config_size };
                int n = tar_header_write(&e, header);
                if (n < 0)
                        return n;
                if (offset + len > (uint64_t) n)
                        return -EINVAL;
                memcpy(buf, header + offset, len);
                return 0;
        }
        case COOKIE_CONFIG:
                build_config(d, (const uint8_t (*)[32]) d->digests, &t);
                r = copy_out(&t, d->config_size, offset, buf, len);
                break;
        case COOKIE_MANIFEST:
                build_manifest(d, d->config_digest, &t);
                r = copy_out(&t, d->manifest_size, offset, buf, len);
                break;
        default:
                r = -EINVAL;
        }
        free(t.data);
        return r;
}

int docker_image_of(const pf_plan *plan, docker_image *ret) {
        docker_data *d = (docker_data *) pf_plan_format_data(plan);
        text config = {};
        int r;

        pthread_mutex_lock(&d->lock);
        r = digests_locked(d);
        pthread_mutex_unlock(&d->lock);
        if (r < 0)
                return r;
        *ret = (docker_image) { .n_layers = d->n_layers };
        ret->layers = calloc(MAX(d->n_layers, (size_t) 1), sizeof(*ret->layers));
        ret->repo_tag = strdup(d->repo_tag);
        build_config(d, (const uint8_t (*)[32]) d->digests, &config);
        if (!ret->layers || !ret->repo_tag || config.failed) {
                free(config.data);
                docker_image_done(ret);
                return -ENOMEM;
        }
        for (size_t i = 0; i < d->n_layers; i++) {
                ret->layers[i].offset = d->layers[i].offset;
                ret->layers[i].length = d->layers[i].length;
                memcpy(ret->layers[i].digest, d->digests[i], 32);
        }
        ret->config = (uint8_t *) config.data;
        ret->config_size = config.len;
        memcpy(ret->config_digest, d->config_digest, 32);
        return 0;
}

void docker_image_done(docker_image *image) {
        free(image->layers);
        free(image->config);
        free(image->repo_tag);
        *image = (docker_image) {};
}

/* --- Planning */

/* The host's architecture as Docker names it. */
static const char *docker_arch(void) {
        static const struct {
                const char *machine, *arch;
        } table[] = {
                { "x86_64", "amd64" }, { "aarch64", "arm64" }, { "i686", "386" },        { "i386", "386" },
                { "armv7l", "arm" },   { "ppc64le", "ppc64le" }, { "s390x", "s390x" }, { "riscv64", "riscv64" },
        };
        struct utsname u;

        if (uname(&u) == 0)
                for (size_t i = 0; i < ELEMENTSOF(table); i++)
                        if (!strcmp(u.machine, table[i].machine))
                                return table[i].arch;
        return "amd64";
}

/* A repository name Docker accepts from a view name: lower case, components of
 * [a-z0-9] joined by one of "._-", separated by "/" ("per-user/alice/guix-profile"
 * stays itself; ".store/abc-hello" becomes "store/abc-hello"); anything else
 * becomes "-", and an empty result "packfs". */
char *docker_repository_name(const char *view) {
        size_t n = strlen(view);
        char *out = malloc(n + 8), *o = out;

        if (!out)
                return NULL;
        for (const char *p = view; *p;) {
                const char *end = strchrnul(p, '/');
                char *start = o;
                for (; p < end; p++) {
                        char c = *p >= 'A' && *p <= 'Z' ? (char) (*p - 'A' + 'a') : *p;
                        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                        if (!alnum)
                                c = (c == '.' || c == '_') ? c : '-';
                        /* A separator only between alphanumerics. */
                        if (!alnum && (o == start || !((o[-1] >= 'a' && o[-1] <= 'z') || (o[-1] >= '0' && o[-1] <= '9'))))
                                continue;
                        *o++ = c;
                }
                while (o > start && !((o[-1] >= 'a' && o[-1] <= 'z') || (o[-1] >= '0' && o[-1] <= '9')))
                        o--;
                if (o > start && *end)
                        *o++ = '/';
                p = *end ? end + 1 : end;
        }
        while (o > out && o[-1] == '/')
                o--;
        *o = 0;
        if (!*out)
                strcpy(out, "packfs");
        return out;
}

static int add_layer(docker_planner *dp, const uint8_t id[32], bool keyed, bool materialized,
                     const char *created_by) {
        docker_data *d = dp->d;
        tar_planner *t = &dp->t;
        char name[HEX_DIGEST + 16];
        docker_layer *l;
        int r;

        if (d->n_layers == dp->allocated) {
                size_t na = dp->allocated ? dp->allocated * 2 : 16;
                docker_layer *v = reallocarray(d->layers, na, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                d->layers = v;
                dp->allocated = na;
        }
        l = &d->layers[d->n_layers];
        *l = (docker_layer) { .keyed = keyed, .materialized = materialized,
                              .created_by = pf_plan_intern(t->builder, created_by) };
        if (!l->created_by)
                return -ENOMEM;
        memcpy(l->id, id, 32);
        pf_hex(id, 32, name);
        strcat(name, "/");
        r = tar_add_member(t, name, NULL, S_IFDIR | 0755, 0, NULL, 0, NULL);
        if (r < 0)
                return r;
        layer_path(l, name);
        /* Its size is patched in once the layer is planned. */
        r = tar_add_member(t, name, NULL, S_IFREG | 0644, 0, NULL, 0, NULL);
        if (r < 0)
                return r;
        l->header = (size_t) r;
        l->offset = pf_plan_builder_size(t->builder);
        d->n_layers++;
        return 0;
}

/* Ends the last layer: two zero blocks, and its size into its header. */
static int end_layer(docker_planner *dp) {
        docker_layer *l = &dp->d->layers[dp->d->n_layers - 1];
        int r = pf_plan_add_zero(dp->t.builder, 2 * TAR_BLOCK);

        if (r < 0)
                return r;
        l->length = pf_plan_builder_size(dp->t.builder) - l->offset;
        dp->d->tar.entries[l->header].size = l->length;
        return 0;
}

/* The store's parent directories and the store itself, as pack.tar has them. */
static int add_store_parents(docker_planner *dp) {
        tar_planner *t = &dp->t;
        char path[4096];
        int r;

        r = tar_add_member(t, "./", NULL, S_IFDIR | 0755, 0, NULL, 0, NULL);
        for (const char *p = dp->store_dir; r >= 0 && *p;) {
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                const char *end = strchrnul(p, '/');
                size_t len = (size_t) (end - dp->store_dir);
                if (len + 3 > sizeof(path))
                        return -ENAMETOOLONG;
                path[0] = '.';
                memcpy(path + 1, dp->store_dir, len);
                path[len + 1] = '/';
                path[len + 2] = 0;
                r = tar_add_member(t, path, NULL, S_IFDIR | 0755, 0, NULL, 0, NULL);
                p = end;
        }
        return MIN(r, 0);
}

static void layer_id(const uint8_t item_identity[32], uint8_t id[32]) {
        pf_sha256_pair(DOCKER_LAYER_LAYOUT, sizeof(DOCKER_LAYER_LAYOUT), item_identity, 32, id);
}

static bool wanted(const tar_planner *t, const pf_closure_item *item) {
        uint8_t identity[32];

        if (!t->want)
                return true;
        tar_item_identity(item, identity);
        return t->want(t->want_userdata, identity);
}

/* The merged layer: what its history says, and whether all its bytes are in
 * the plan and its digest may be recorded. */
static int add_merged_layer(docker_planner *dp) {
        const pf_closure *closure = dp->t.view->closure;
        _cleanup_free_ char *created_by = NULL;
        bool all_keyed = true, all_wanted = true;

        if (asprintf(&created_by, "packfs: %zu store items with fewer referrers, in one layer", dp->n_merged) < 0)
                return -ENOMEM;
        for (size_t k = 0; k < closure->n_items; k++)
                if (dp->merged[k]) {
                        all_keyed &= pf_closure_item_keyed(&closure->items[k]);
                        all_wanted &= wanted(&dp->t, &closure->items[k]);
                }
        return add_layer(dp, dp->merged_id, all_keyed, all_wanted, created_by);
}

/* Around each store item: its layer's directory, layer.tar's header and the
 * store's parents before; the end of the layer after. Merged items share one
 * layer, opened before the first and ended after the last. */
static int around_item(tar_planner *t, size_t i, bool after, uint64_t length) {
        docker_planner *dp = t->userdata;
        const pf_closure_item *item = &t->view->closure->items[i];
        uint8_t identity[32], id[32];
        int r;

        if (dp->merged && dp->merged[i]) {
                if (after)
                        return i == dp->last_merged ? end_layer(dp) : 0;
                if (i != dp->first_merged)
                        return 0;
                r = add_merged_layer(dp);
        } else if (after)
                return end_layer(dp);
        else {
                tar_item_identity(item, identity);
                layer_id(identity, id);
                r = add_layer(dp, id, pf_closure_item_keyed(item), wanted(t, item), item->path);
        }
        if (r >= 0)
                r = add_store_parents(dp);
        if (r >= 0)
                /* The layer's framing and the item's members are segments of their own. */
                r = pf_plan_begin_segment(t->builder, NULL);
        return r;
}

/* The last layer: everything outside the store but its parents (symlinks,
 * /tmp, the database). Its digest depends on all of it: not recorded. */
static int plan_last_layer(docker_planner *dp) {
        extra_node *extras = NULL;
        uint8_t id[32];
        int r;

        r = tar_extras_build(dp->t.view, &extras);
        if (r < 0)
                return r;
        r = tar_extras_add_dir(extras, "/tmp", 01777);
        if (r == -EEXIST) {
                log_error("%s: a symlink of the pack collides with /tmp", dp->t.view->name);
                goto out;
        }
        if (r < 0)
                goto out;
        /* Named after the closure and options, which decide its bytes. */
        pf_sha256_pair(dp->t.view->closure->id, 32, dp->t.view->options->id, 32, id);
        layer_id(id, id);
        r = add_layer(dp, id, false, true, "packfs: the profile's symlinks, /tmp and the database");
        if (r < 0)
                goto out;
        dp->t.no_items = true;
        dp->t.path[0] = '.';
        dp->t.path[1] = 0;
        r = tar_plan_extras(&dp->t, extras, 1);
        dp->t.no_items = false;
        if (r >= 0)
                r = end_layer(dp);
out:
        tar_extras_free(extras);
        return r;
}

static int add_generated_file(docker_planner *dp, const char *name, uint64_t cookie, size_t size) {
        tar_planner *t = &dp->t;
        int r;

        if (name)
                r = tar_add_member(t, name, NULL, S_IFREG | 0644, 0, NULL, 0, NULL);
        else {
                /* The config: its name holds its digest, so its header is generated too. */
                tar_entry e = { .name = "0000000000000000000000000000000000000000000000000000000000000000.json",
                                .mode = S_IFREG | 0644,
                                .size = size };
                r = tar_header_size(&e);
                if (r >= 0)
                        r = pf_plan_add_generated(t->builder, (uint64_t) r, COOKIE_CONFIG_HEADER);
        }
        if (r < 0)
                return r;
        if (name)
                dp->d->tar.entries[r].size = size;
        r = pf_plan_add_generated(t->builder, size, cookie);
        if (r >= 0)
                r = pf_plan_add_zero(t->builder, tar_padding(size));
        return r;
}

/* An item's referrers within the closure, for choosing which keep a layer. */
typedef struct ranked {
        size_t index;
        size_t referrers;
        const char *path;
        bool root;
} ranked;

static int ranked_cmp(const void *a, const void *b) {
        const ranked *x = a, *y = b;
        if (x->root != y->root)
                return x->root ? -1 : 1;
        if (x->referrers != y->referrers)
                return x->referrers > y->referrers ? -1 : 1;
        return strcmp(x->path, y->path);
}

/* Past max-layers (the last layer included), the items most referred to
 * within the closure keep layers of their own (they are the ones other
 * profiles share: libc, the toolchain's runtime) and the rest share one. Ranked
 * by referrers, then path, so one package more or less moves at most the
 * items at the cut. The profile's own item comes first: it is new in every
 * generation, and in the shared layer it would make that layer new too. */
static int choose_layers(docker_planner *dp) {
        const pf_view *view = dp->t.view;
        const pf_closure *c = view->closure;
        size_t n = c->n_items, own = (size_t) view->options->max_layers - 2, at = 0;
        _cleanup_free_ ranked *rank = NULL;
        gcry_md_hd_t md;

        if (n + 1 <= (size_t) view->options->max_layers)
                return 0;
        rank = calloc(n, sizeof(*rank));
        dp->order = calloc(n, sizeof(*dp->order));
        dp->merged = calloc(n, sizeof(*dp->merged));
        if (!rank || !dp->order || !dp->merged)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++)
                rank[k] = (ranked) { .index = k, .path = c->items[k].path, .root = !strcmp(c->items[k].path, c->root) };
        for (size_t k = 0; view->store && k < n; k++) {
                char **refs = NULL;
                int r = pf_store_references(view->store, c->items[k].path, &refs);
                if (r < 0)
                        return r;
                for (char **ref = refs; *ref; ref++) {
                        int j = pf_closure_find(c, *ref);
                        if (j >= 0 && (size_t) j != k)
                                rank[j].referrers++;
                }
                pf_strv_free(refs);
        }
        qsort(rank, n, sizeof(*rank), ranked_cmp);
        for (size_t p = own; p < n; p++)
                dp->merged[rank[p].index] = true;
        dp->n_merged = n - own;
        for (size_t k = 0; k < n; k++)
                if (!dp->merged[k])
                        dp->order[at++] = k;
        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                return -ENOMEM;
        gcry_md_write(md, DOCKER_LAYER_LAYOUT " merged", sizeof(DOCKER_LAYER_LAYOUT " merged"));
        for (size_t k = 0; k < n; k++)
                if (dp->merged[k]) {
                        uint8_t identity[32];
                        if (at == n - dp->n_merged)
                                dp->first_merged = k;
                        dp->last_merged = k;
                        dp->order[at++] = k;
                        tar_item_identity(&c->items[k], identity);
                        gcry_md_write(md, identity, 32);
                }
        memcpy(dp->merged_id, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
        dp->t.order = dp->order;
        return 0;
}

static int docker_plan(const pf_format *self, const pf_view *view, pf_plan **ret);

static int settle_placeholder_digests(const pf_format *self, const pf_view *view, docker_data *d) {
        pf_plan *whole = NULL;
        int r = 0;

        for (size_t i = 0; i < d->n_layers && r >= 0; i++) {
                docker_layer *l = &d->layers[i];
                if (l->materialized || d->known[i])
                        continue;
                if (!whole) {
                        r = view->plan_of ? view->plan_of(view, self, &whole) : docker_plan(self, view, &whole);
                        if (r < 0)
                                break;
                }
                r = hash_range(whole, l->offset, l->length, d->digests[i]);
                if (r >= 0) {
                        d->known[i] = true;
                        if (l->keyed)
                                digest_record(d->cache, l->id, d->digests[i]);
                }
        }
        (void) pf_cache_flush_records(d->cache);
        pf_plan_unref(whole);
        return r;
}

static int docker_plan_sparse(const pf_format *self, const pf_view *view,
                              bool (*want)(void *userdata, const uint8_t identity[32]), void *userdata,
                              pf_plan **ret) {
        docker_planner dp = { .store_dir = view->store_dir };
        text config = {}, manifest = {}, repositories = {};
        docker_data *d;
        pf_plan *plan = NULL;
        int r;

        d = dp.d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        pthread_mutex_init(&d->lock, NULL);
        pthread_mutex_init(&d->stream_lock, NULL);
        d->cache = view->cache;
        d->arch = strdup(docker_arch());
        d->repo_tag = docker_repository_name(view->name);
        r = pf_profile_search_paths(view->store_dir, view->closure->root, &d->env);
        if (r < 0)
                goto fail;
        if (view->options->entry_point && asprintf(&d->entry_point, "%s/%s", view->closure->root,
                                                   view->options->entry_point) < 0)
                d->entry_point = NULL;
        r = d->arch && d->repo_tag && (d->entry_point || !view->options->entry_point)
                    ? pf_plan_builder_new(&dp.t.builder)
                    : -ENOMEM;
        if (r < 0)
                goto fail;
        d->repo_tag = realloc(d->repo_tag, strlen(d->repo_tag) + sizeof(":latest"));
        if (!d->repo_tag) {
                r = -ENOMEM;
                goto fail;
        }
        strcat(d->repo_tag, ":latest");
        dp.t.data = &d->tar;
        dp.t.view = view;
        dp.t.want = want;
        dp.t.want_userdata = userdata;
        dp.t.around_item = around_item;
        dp.t.userdata = &dp;

        r = choose_layers(&dp);
        if (r >= 0)
                r = tar_plan_items(&dp.t);
        if (r >= 0)
                r = plan_last_layer(&dp);
        if (r < 0)
                goto fail;
        d->digests = calloc(MAX(d->n_layers, (size_t) 1), 32);
        d->known = calloc(MAX(d->n_layers, (size_t) 1), sizeof(bool));
        d->streamed = calloc(MAX(d->n_layers, (size_t) 1), sizeof(bool));
        d->streamed_digests = calloc(MAX(d->n_layers, (size_t) 1), 32);
        d->stream_layer = d->n_layers;
        if (!d->digests || !d->known || !d->streamed || !d->streamed_digests) {
                r = -ENOMEM;
                goto fail;
        }
        /* Digests recorded before need no streaming hash (KNOWN is fixed
         * from here on: the observer reads it unlocked). A sizing plan is
         * never read. */
        if (want != pf_format_want_none)
                for (size_t i = 0; i < d->n_layers; i++)
                        if (d->layers[i].keyed && digest_lookup(d->cache, d->layers[i].id, d->digests[i]))
                                d->known[i] = true;
        /* A sparse plan that will be read (a compressed variant's) has no
         * bytes for the layers it does not want: their digests now, from the
         * cache or else from the whole plan. A sizing plan is never read. */
        if (want && want != pf_format_want_none) {
                r = settle_placeholder_digests(self, view, d);
                if (r < 0)
                        goto fail;
        }

        build_config(d, NULL, &config);
        build_manifest(d, NULL, &manifest);
        /* "name:latest" -> {"name":{"latest":"<top layer>"}} */
        {
                char top[HEX_DIGEST + 1];
                size_t colon = strlen(d->repo_tag) - strlen(":latest");
                char *repo = strndup(d->repo_tag, colon);
                if (!repo) {
                        r = -ENOMEM;
                        goto fail;
                }
                pf_hex(d->layers[d->n_layers - 1].id, 32, top);
                puts_(&repositories, "{");
                put_string(&repositories, repo);
                puts_(&repositories, ":{\"latest\":\"");
                puts_(&repositories, top);
                puts_(&repositories, "\"}}\n");
                free(repo);
        }
        if (config.failed || manifest.failed || repositories.failed) {
                r = -ENOMEM;
                goto fail;
        }
        d->config_size = config.len;
        d->manifest_size = manifest.len;

        r = add_generated_file(&dp, NULL, COOKIE_CONFIG, config.len);
        if (r >= 0)
                r = add_generated_file(&dp, "manifest.json", COOKIE_MANIFEST, manifest.len);
        if (r >= 0)
                r = tar_add_member(&dp.t, "repositories", NULL, S_IFREG | 0644, repositories.len, NULL, 0,
                                   (const uint8_t *) repositories.data);
        if (r >= 0)
                r = pf_plan_add_zero(dp.t.builder, 2 * TAR_BLOCK);
        if (r < 0)
                goto fail;
        free(config.data);
        free(manifest.data);
        free(repositories.data);
        free(dp.order);
        free(dp.merged);
        if (view->cache && dp.t.n_walked > 0)
                log_info("%s/%s: walked %zu of %zu store items, the others' member lists or lengths from the cache",
                         view->name, self->file_name, dp.t.n_walked, view->closure->n_items);
        r = pf_plan_builder_finish(dp.t.builder, docker_generate, d, docker_data_free, &plan);
        if (r < 0)
                return r;
        d->plan = plan; /* not a reference: D lives as long as the plan */
        for (size_t i = 0; i < d->n_layers; i++)
                if (!d->known[i] && d->layers[i].materialized) {
                        /* Something to hash as it streams, from there. */
                        d->stream_start = d->stream_pos = d->layers[i].offset;
                        pf_plan_set_observer(plan, docker_observe);
                        break;
                }
        *ret = plan;
        return 0;
fail:
        free(config.data);
        free(manifest.data);
        free(repositories.data);
        free(dp.order);
        free(dp.merged);
        pf_plan_builder_free(dp.t.builder);
        docker_data_free(d);
        return r;
}

static int docker_plan(const pf_format *self, const pf_view *view, pf_plan **ret) {
        return docker_plan_sparse(self, view, NULL, NULL, ret);
}

const pf_format pf_format_docker = {
        .file_name = "docker.tar",
        .plan = docker_plan,
        .plan_sparse = docker_plan_sparse,
        .named = true,          /* RepoTags */
};

const pf_format pf_format_docker_gz = PF_COMPRESSED_FORMAT("docker.tar.gz", pf_format_docker, pf_codec_gzip);
const pf_format pf_format_docker_xz = PF_COMPRESSED_FORMAT("docker.tar.xz", pf_format_docker, pf_codec_xz);
const pf_format pf_format_docker_zst = PF_COMPRESSED_FORMAT("docker.tar.zst", pf_format_docker, pf_codec_zstd);
