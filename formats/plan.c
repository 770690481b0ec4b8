/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/plan.h"

/* A growable byte buffer. Strings are interned into a chain of fixed blocks
 * instead, so pointers handed out stay valid while the arena grows. */
typedef struct buffer {
        uint8_t *data;
        size_t size, allocated;
} buffer;

#define STRING_BLOCK_SIZE (64 * 1024)

typedef struct string_block {
        struct string_block *next;
        size_t used, size;
        char data[];
} string_block;

struct pf_plan_builder {
        pf_extent *extents;
        size_t n_extents, allocated_extents;
        pf_plan_file *files;
        size_t n_files, allocated_files;
        pf_plan_segment *segments;
        size_t n_segments, allocated_segments;
        buffer bytes;
        string_block *strings;
        uint64_t size;
};

struct pf_plan {
        unsigned refcount;
        pf_extent *extents;
        size_t n_extents;
        pf_plan_file *files;
        size_t n_files;
        pf_plan_segment *segments;
        size_t n_segments;
        uint8_t *bytes;
        string_block *strings;
        uint64_t size;
        pf_generate_fn generate;
        void *format_data;
        void (*free_data)(void *);
        pf_read_observer observer;      /* set before the plan is shared */
};

static int buffer_append(buffer *b, const void *data, size_t len) {
        if (b->size + len > b->allocated) {
                size_t n = MAX(b->allocated * 2, b->size + len);
                n = MAX(n, (size_t) 4096);
                uint8_t *d = realloc(b->data, n);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->allocated = n;
        }
        memcpy(b->data + b->size, data, len);
        b->size += len;
        return 0;
}

static void string_blocks_free(string_block *s) {
        while (s) {
                string_block *next = s->next;
                free(s);
                s = next;
        }
}

int pf_plan_builder_new(pf_plan_builder **ret) {
        *ret = calloc(1, sizeof(pf_plan_builder));
        return *ret ? 0 : -ENOMEM;
}

static void files_free(pf_plan_file *files, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (files[i].fd >= 0)
                        close(files[i].fd);
        free(files);
}

void pf_plan_builder_free(pf_plan_builder *b) {
        if (!b)
                return;
        free(b->extents);
        files_free(b->files, b->n_files);
        free(b->segments);
        free(b->bytes.data);
        string_blocks_free(b->strings);
        free(b);
}

uint64_t pf_plan_builder_size(const pf_plan_builder *b) {
        return b->size;
}

const char *pf_plan_intern(pf_plan_builder *b, const char *str) {
        size_t len = strlen(str) + 1;
        string_block *s = b->strings;

        if (!s || s->size - s->used < len) {
                size_t size = MAX((size_t) STRING_BLOCK_SIZE, len);
                string_block *n = malloc(sizeof(*n) + size);
                if (!n)
                        return NULL;
                n->next = s;
                n->used = 0;
                n->size = size;
                b->strings = s = n;
        }
        char *p = s->data + s->used;
        memcpy(p, str, len);
        s->used += len;
        return p;
}

static pf_extent *push_extent(pf_plan_builder *b, enum pf_extent_kind kind, uint64_t len) {
        if (b->n_extents == b->allocated_extents) {
                size_t n = b->allocated_extents ? b->allocated_extents * 2 : 256;
                pf_extent *e = reallocarray(b->extents, n, sizeof(*e));
                if (!e)
                        return NULL;
                b->extents = e;
                b->allocated_extents = n;
        }
        pf_extent *e = &b->extents[b->n_extents++];
        *e = (pf_extent) { .offset = b->size, .length = len, .kind = kind };
        b->size += len;
        return e;
}

static pf_extent *last_extent(pf_plan_builder *b, enum pf_extent_kind kind) {
        if (b->n_extents == 0 || b->extents[b->n_extents - 1].kind != kind)
                return NULL;
        return &b->extents[b->n_extents - 1];
}

int pf_plan_add_bytes(pf_plan_builder *b, const void *data, size_t len) {
        pf_extent *e;
        size_t at = b->bytes.size;

        if (len == 0)
                return 0;
        if (buffer_append(&b->bytes, data, len) < 0)
                return -ENOMEM;
        e = last_extent(b, PF_EXTENT_BYTES);
        if (e && e->arg + e->length == at) {
                e->length += len;
                b->size += len;
                return 0;
        }
        e = push_extent(b, PF_EXTENT_BYTES, len);
        if (!e)
                return -ENOMEM;
        e->arg = at;
        return 0;
}

int pf_plan_add_zero(pf_plan_builder *b, uint64_t len) {
        pf_extent *e;

        if (len == 0)
                return 0;
        e = last_extent(b, PF_EXTENT_ZERO);
        if (e) {
                e->length += len;
                b->size += len;
                return 0;
        }
        return push_extent(b, PF_EXTENT_ZERO, len) ? 0 : -ENOMEM;
}

static int push_file(pf_plan_builder *b, const pf_plan_file *file, uint64_t file_offset, uint64_t len) {
        pf_extent *e;

        if (b->n_files == b->allocated_files) {
                size_t n = b->allocated_files ? b->allocated_files * 2 : 256;
                pf_plan_file *f = reallocarray(b->files, n, sizeof(*f));
                if (!f)
                        return -ENOMEM;
                b->files = f;
                b->allocated_files = n;
        }
        e = push_extent(b, PF_EXTENT_FILE, len);
        if (!e)
                return -ENOMEM;
        b->files[b->n_files] = *file;
        e->file = (uint32_t) b->n_files++;
        e->arg = file_offset;
        return 0;
}

int pf_plan_add_file(pf_plan_builder *b, const char *path, uint64_t file_size, int64_t mtime,
                     uint64_t file_offset, uint64_t len) {
        if (len == 0)
                return 0;
        return push_file(b, &(pf_plan_file) { .path = path, .size = file_size, .mtime = mtime, .fd = -1 },
                         file_offset, len);
}

int pf_plan_add_owned_fd(pf_plan_builder *b, int fd, const char *name, uint64_t file_size,
                         uint64_t file_offset, uint64_t len) {
        int r;

        r = push_file(b, &(pf_plan_file) { .path = name, .size = file_size, .fd = fd }, file_offset, len);
        if (r < 0)
                close(fd);
        return r;
}

int pf_plan_begin_segment(pf_plan_builder *b, const uint8_t identity[32]) {
        pf_plan_segment *s;

        /* A segment that got no bytes is replaced, not kept empty. */
        if (b->n_segments > 0 && b->segments[b->n_segments - 1].offset == b->size)
                s = &b->segments[b->n_segments - 1];
        else {
                if (b->n_segments + 2 > b->allocated_segments) {
                        size_t n = b->allocated_segments ? b->allocated_segments * 2 : 16;
                        pf_plan_segment *v = reallocarray(b->segments, n, sizeof(*v));
                        if (!v)
                                return -ENOMEM;
                        b->segments = v;
                        b->allocated_segments = n;
                }
                if (b->n_segments == 0 && b->size > 0) {
                        /* The bytes so far: an unidentified first segment. */
                        b->segments[b->n_segments++] = (pf_plan_segment) { .offset = 0 };
                }
                s = &b->segments[b->n_segments++];
        }
        *s = (pf_plan_segment) { .offset = b->size, .has_identity = identity != NULL };
        if (identity)
                memcpy(s->identity, identity, 32);
        return 0;
}

int pf_plan_add_generated(pf_plan_builder *b, uint64_t len, uint64_t cookie) {
        pf_extent *e;

        if (len == 0)
                return 0;
        e = push_extent(b, PF_EXTENT_GENERATED, len);
        if (!e)
                return -ENOMEM;
        e->arg = cookie;
        return 0;
}

int pf_plan_builder_finish(pf_plan_builder *b, pf_generate_fn generate, void *format_data,
                           void (*free_data)(void *), pf_plan **ret) {
        pf_plan *p = calloc(1, sizeof(*p));

        if (p && b->n_segments == 0 && b->size > 0 && pf_plan_begin_segment(b, NULL) < 0) {
                free(p);
                p = NULL;
        }
        if (!p) {
                pf_plan_builder_free(b);
                if (free_data)
                        free_data(format_data);
                return -ENOMEM;
        }
        /* Shrink to fit: plans live long, builders grow by doubling. */
        p->extents = b->n_extents ? realloc(b->extents, b->n_extents * sizeof(pf_extent)) : b->extents;
        if (!p->extents)
                p->extents = b->extents;
        p->n_extents = b->n_extents;
        p->files = b->files;
        p->n_files = b->n_files;
        /* Segment lengths run to the next one; a trailing empty one is dropped. */
        if (b->n_segments > 0 && b->segments[b->n_segments - 1].offset == b->size)
                b->n_segments--;
        for (size_t i = 0; i < b->n_segments; i++)
                b->segments[i].length =
                        (i + 1 < b->n_segments ? b->segments[i + 1].offset : b->size) - b->segments[i].offset;
        p->segments = b->segments;
        p->n_segments = b->n_segments;
        p->bytes = b->bytes.data;
        p->strings = b->strings;
        p->size = b->size;
        p->refcount = 1;
        p->generate = generate;
        p->format_data = format_data;
        p->free_data = free_data;
        free(b);
        *ret = p;
        return 0;
}

pf_plan *pf_plan_ref(pf_plan *p) {
        __atomic_add_fetch(&p->refcount, 1, __ATOMIC_RELAXED);
        return p;
}

void pf_plan_unref(pf_plan *p) {
        if (!p || __atomic_sub_fetch(&p->refcount, 1, __ATOMIC_ACQ_REL) != 0)
                return;
        if (p->free_data)
                p->free_data(p->format_data);
        free(p->extents);
        files_free(p->files, p->n_files);
        free(p->segments);
        free(p->bytes);
        string_blocks_free(p->strings);
        free(p);
}

uint64_t pf_plan_size(const pf_plan *p) {
        return p->size;
}

size_t pf_plan_n_extents(const pf_plan *p) {
        return p->n_extents;
}

const pf_extent *pf_plan_extent(const pf_plan *p, size_t i) {
        return &p->extents[i];
}

const pf_plan_file *pf_plan_file_at(const pf_plan *p, uint32_t i) {
        return &p->files[i];
}

size_t pf_plan_n_segments(const pf_plan *p) {
        return p->n_segments;
}

const pf_plan_segment *pf_plan_segment_at(const pf_plan *p, size_t i) {
        return &p->segments[i];
}

size_t pf_plan_find(const pf_plan *p, uint64_t offset) {
        size_t lo = 0, hi = p->n_extents;

        /* Invariant: extents[lo].offset <= offset < extents[hi].offset (hi past the end). */
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                if (p->extents[mid].offset <= offset)
                        lo = mid;
                else
                        hi = mid;
        }
        return lo;
}

int pf_plan_fill(const pf_plan *p, const pf_extent *e, uint64_t offset, void *buf, size_t len) {
        switch (e->kind) {
        case PF_EXTENT_BYTES:
                memcpy(buf, p->bytes + e->arg + offset, len);
                return 0;
        case PF_EXTENT_ZERO:
                memset(buf, 0, len);
                return 0;
        case PF_EXTENT_GENERATED:
                return p->generate(p->format_data, e->arg, offset, buf, len);
        default:
                return -EINVAL;
        }
}

int pf_plan_open_file(const pf_plan *p, const pf_extent *e) {
        const pf_plan_file *f = &p->files[e->file];
        struct stat st;
        int fd;

        if (f->fd >= 0) {
                fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 3);
                return fd >= 0 ? fd : log_error_errno(negative_errno(), "%s: cannot duplicate", f->path);
        }
        fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                log_error("%s: cannot open: %m; serving EIO", f->path);
                return -EIO;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size != f->size ||
            st.st_mtime != f->mtime) {
                log_error("%s: changed since it was planned (size %llu, now %llu); serving EIO", f->path,
                          (unsigned long long) f->size, (unsigned long long) st.st_size);
                close(fd);
                return -EIO;
        }
        return fd;
}

/* Walks the extents under a byte range [offset, offset + len), one piece per
 * extent touched: each cursor_next() gives the extent, the offset into it and
 * the length of the next piece, and returns false once the range is done. LEN
 * is clipped to the plan's size. */
typedef struct plan_cursor {
        const pf_plan *plan;
        size_t index;
        uint64_t pos, end;
} plan_cursor;

static void cursor_init(plan_cursor *c, const pf_plan *p, uint64_t offset, size_t len) {
        c->plan = p;
        c->pos = MIN(offset, p->size);
        c->end = c->pos + MIN((uint64_t) len, p->size - c->pos);
        c->index = c->pos < c->end ? pf_plan_find(p, c->pos) : 0;
}

static bool cursor_next(plan_cursor *c, const pf_extent **ret_extent, uint64_t *ret_in, size_t *ret_len) {
        const pf_extent *e;
        uint64_t in;

        if (c->pos >= c->end)
                return false;
        e = &c->plan->extents[c->index++];
        in = c->pos - e->offset;
        *ret_extent = e;
        *ret_in = in;
        *ret_len = (size_t) MIN(c->end - c->pos, e->length - in);
        c->pos += *ret_len;
        return true;
}

ssize_t pf_plan_pread(const pf_plan *p, void *buf, size_t len, uint64_t offset) {
        uint8_t *out = buf;
        size_t done = 0, n;
        const pf_extent *e;
        plan_cursor c;
        uint64_t in;
        int r;

        cursor_init(&c, p, offset, len);
        while (cursor_next(&c, &e, &in, &n)) {
                if (e->kind == PF_EXTENT_FILE) {
                        _cleanup_close_ int fd = pf_plan_open_file(p, e);
                        if (fd < 0)
                                return fd;
                        for (size_t got = 0; got < n;) {
                                ssize_t k = pread(fd, out + done + got, n - got, (off_t) (e->arg + in + got));
                                if (k < 0 && errno == EINTR)
                                        continue;
                                if (k <= 0) {
                                        log_error("%s: short read; serving EIO", p->files[e->file].path);
                                        return -EIO;
                                }
                                got += (size_t) k;
                        }
                } else {
                        r = pf_plan_fill(p, e, in, out + done, n);
                        if (r < 0)
                                return r;
                }
                done += n;
        }
        if (p->observer && done > 0)
                p->observer(p->format_data, offset, buf, done);
        return (ssize_t) done;
}

void pf_plan_set_observer(pf_plan *p, pf_read_observer observer) {
        p->observer = observer;
}

const void *pf_plan_format_data(const pf_plan *p) {
        return p->format_data;
}

/* A slice reads its base: one GENERATED extent over the whole of it. */
typedef struct slice_data {
        pf_plan *base;
        uint64_t offset;
} slice_data;

static int slice_generate(const void *format_data, uint64_t cookie, uint64_t offset, void *buf, size_t len) {
        const slice_data *s = format_data;
        ssize_t n = pf_plan_pread(s->base, buf, len, s->offset + offset);

        if (n < 0)
                return (int) n;
        return (size_t) n == len ? 0 : -EIO;
}

static void slice_data_free(void *p) {
        slice_data *s = p;

        if (s)
                pf_plan_unref(s->base);
        free(s);
}

int pf_plan_slice(pf_plan *base, uint64_t offset, uint64_t length, pf_plan **ret) {
        pf_plan_builder *b = NULL;
        slice_data *s;
        int r;

        if (offset > base->size || length > base->size - offset)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        r = pf_plan_builder_new(&b);
        if (r >= 0)
                r = pf_plan_add_generated(b, length, 0);
        if (r < 0) {
                pf_plan_builder_free(b);
                free(s);
                return r;
        }
        s->base = pf_plan_ref(base);
        s->offset = offset;
        return pf_plan_builder_finish(b, slice_generate, s, slice_data_free, ret);
}

/* --- Plans over cache objects. */

typedef struct pins {
        pf_cache *cache;
        uint8_t (*keys)[32];
        size_t n;
} pins;

static void pins_free(void *userdata) {
        pins *p = userdata;

        for (size_t i = 0; i < p->n; i++)
                pf_cache_unpin(p->cache, p->keys[i]);
        free(p->keys);
        free(p);
}

int pf_plan_over_cache_objects(pf_cache *cache, const uint8_t (*keys)[32], pf_cache_object *objs, size_t n,
                             pf_plan **ret) {
        pf_plan_builder *b = NULL;
        pins *p = calloc(1, sizeof(*p));
        int r;

        if (!p || !(p->keys = malloc(MAX(n, (size_t) 1) * 32))) {
                free(p);
                return -ENOMEM;
        }
        p->cache = cache;
        r = pf_plan_builder_new(&b);
        for (size_t i = 0; i < n && r >= 0; i++) {
                if (objs[i].path) {
                        /* Pinned: the plan's pin set now holds it. */
                        memcpy(p->keys[p->n++], keys[i], 32);
                        const char *path = pf_plan_intern(b, objs[i].path);
                        /* Held open when it could be: pins are per process,
                         * and another one may evict the file. */
                        if (!path)
                                r = -ENOMEM;
                        else if (objs[i].fd >= 0)
                                r = pf_plan_add_owned_fd(b, objs[i].fd, path, objs[i].size, 0, objs[i].size);
                        else
                                r = pf_plan_add_file(b, path, objs[i].size, objs[i].mtime, 0, objs[i].size);
                        objs[i].fd = -1;
                } else {
                        char name[64];
                        char hex[17];
                        pf_hex(keys[i], 8, hex);
                        snprintf(name, sizeof(name), "uncached unit %s", hex);
                        const char *iname = pf_plan_intern(b, name);
                        r = iname ? pf_plan_add_owned_fd(b, objs[i].fd, iname, objs[i].size, 0, objs[i].size)
                                  : -ENOMEM;
                        objs[i].fd = -1;
                }
                free(objs[i].path);
                objs[i].path = NULL;
        }
        /* Whatever is left unconsumed still holds pins and fds. */
        for (size_t i = 0; i < n; i++) {
                if (objs[i].path)
                        pf_cache_unpin(cache, keys[i]);
                pf_cache_object_done(&objs[i]);
        }
        if (r < 0) {
                pf_plan_builder_free(b);
                pins_free(p);
                return r;
        }
        return pf_plan_builder_finish(b, NULL, p, pins_free, ret);
}

int pf_plan_from_manifest(const uint8_t key[32], pf_cache *cache, pf_plan **ret) {
        _cleanup_free_ uint8_t (*keys)[32] = NULL;
        _cleanup_free_ pf_cache_object *objs = NULL;
        size_t n;
        int r;

        r = pf_cache_manifest_get(cache, key, &keys, &n);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        objs = calloc(MAX(n, (size_t) 1), sizeof(*objs));
        if (!objs)
                return -ENOMEM;
        r = pf_cache_acquire(cache, (const uint8_t (*)[32]) keys, n, objs);
        if (r < 0)
                return r;
        if ((size_t) r < n) {
                for (size_t i = 0; i < n; i++) {
                        if (objs[i].path)
                                pf_cache_unpin(cache, keys[i]);
                        pf_cache_object_done(&objs[i]);
                }
                return 0;
        }
        r = pf_plan_over_cache_objects(cache, (const uint8_t (*)[32]) keys, objs, n, ret);
        return r < 0 ? r : 1;
}
