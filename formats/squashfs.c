/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pack.squashfs: a SquashFS image of the closure with the Singularity/Apptainer
 * layout of the seed's `squashfs-image`:
 *
 *   /<store>/<hash>-<name>/...             the closure, with the store's parents
 *   /.singularity.d/env/90-environment.sh  the profile's search paths, exported
 *   /.singularity.d/actions/run            -> the entry point (Singularity 2.x)
 *   /.singularity.d/runscript              -> the entry point (Singularity 3.x)
 *   /proc /sys /dev /home (0555), /tmp (1777)
 *   the profile's `symlinks`, relative as the seed makes them, /bin=bin if none
 *   is given for /bin (Singularity runs /bin/sh)
 *
 * every time 1, uid and gid 0, no xattrs, written with libsquashfs
 * (squashfs-tools-ng). Each store item's files go through a block processor of
 * their own, compressed by one worker thread per core; the block processor
 * writes blocks and fragment blocks in submission order whatever the number of
 * workers, so the image's bytes do not depend on the cores. Inodes are written
 * after the data, depth-first with each directory after its entries, from a
 * tree whose directories are sorted bytewise.
 *
 * The image is a list of cache objects (a manifest under its key): a header
 * (superblock, compressor options), each store item's blocks (cached on their
 * own, keyed by the item's path and NAR hash and the compressor's settings, so
 * a new generation compresses only the items that changed), and a tail (the
 * layout's files and the tables). Its size is known once it is built: the
 * first stat or open builds it (fs/packs.c makes other callers wait for that
 * build), and it is listed once built, as disk.raw is. Its key holds the
 * closure, the options, the compressor and its level, the block size and the
 * libraries' versions.
 */
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <lzma.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>

#include "packfs/background.h"
#include "packfs/cache.h"
#include "packfs/cancel.h"
#include "packfs/format.h"
#include "packfs/io.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/searchpath.h"
#include "packfs/walkcache.h"
#include "squashfs.h"

/* Bump when the image's layout or the way it is written changes. */
#define SQUASHFS_LAYOUT "packfs-squashfs-3"
#define BLOCK_SIZE (128u * 1024u)      /* mksquashfs's default */
#define DEVBLK_SIZE 4096u               /* the image is padded to it, as mksquashfs does */
#define READ_SIZE ((size_t) 1 << 20)
#define NO_XATTR 0xFFFFFFFFu

#ifndef PF_LIBSQUASHFS_VERSION
#define PF_LIBSQUASHFS_VERSION "unknown"
#endif

/* The default compressor and level (README, "pack.squashfs"). */
#define DEFAULT_COMPRESSOR "zstd"
#define DEFAULT_ZSTD_LEVEL 6

/* --- The tree. */

int pf_sqfs_tree_new(mode_t mode, pf_sqfs_node **ret) {
        pf_sqfs_node *n = calloc(1, sizeof(*n));

        if (!n || !(n->name = strdup(""))) {
                free(n);
                return -ENOMEM;
        }
        n->mode = S_IFDIR | (mode & 07777);
        *ret = n;
        return 0;
}

void pf_sqfs_tree_free(pf_sqfs_node *n) {
        if (!n)
                return;
        for (size_t i = 0; i < n->n_children; i++)
                pf_sqfs_tree_free(n->children[i]);
        free(n->children);
        free(n->name);
        free(n->target);
        sqfs_free(n->inode);
        free(n);
}

int pf_sqfs_node_add(pf_sqfs_node *dir, const char *name, mode_t mode, const char *target, pf_sqfs_node **ret) {
        pf_sqfs_node *n;

        if (!S_ISDIR(dir->mode))
                return -ENOTDIR;
        if (dir->n_children == dir->cap) {
                size_t cap = dir->cap ? dir->cap * 2 : 8;
                pf_sqfs_node **nc = reallocarray(dir->children, cap, sizeof(*nc));
                if (!nc)
                        return -ENOMEM;
                dir->children = nc;
                dir->cap = cap;
        }
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->name = strdup(name);
        n->target = target ? strdup(target) : NULL;
        if (!n->name || (target && !n->target)) {
                free(n->name);
                free(n->target);
                free(n);
                return -ENOMEM;
        }
        n->mode = mode;
        n->parent = dir;
        dir->children[dir->n_children++] = n;
        if (ret)
                *ret = n;
        return 0;
}

static pf_sqfs_node *child_named(pf_sqfs_node *dir, const char *name, size_t len) {
        for (size_t i = 0; i < dir->n_children; i++)
                if (strlen(dir->children[i]->name) == len && !memcmp(dir->children[i]->name, name, len))
                        return dir->children[i];
        return NULL;
}

pf_sqfs_node *pf_sqfs_lookup(pf_sqfs_node *root, const char *path) {
        pf_sqfs_node *n = root;

        for (const char *p = path; n && *p;) {
                size_t len;
                p += strspn(p, "/");
                len = strcspn(p, "/");
                if (!len)
                        break;
                if (!S_ISDIR(n->mode))
                        return NULL;
                n = child_named(n, p, len);
                p += len;
        }
        return n;
}

int pf_sqfs_mkdir_p(pf_sqfs_node *root, const char *path, mode_t mode, pf_sqfs_node **ret) {
        pf_sqfs_node *n = root;

        for (const char *p = path; *p;) {
                pf_sqfs_node *c;
                size_t len;
                p += strspn(p, "/");
                len = strcspn(p, "/");
                if (!len)
                        break;
                if (!S_ISDIR(n->mode))
                        return -ENOTDIR;
                c = child_named(n, p, len);
                if (!c) {
                        _cleanup_free_ char *name = strndup(p, len);
                        bool last = !p[len + strspn(p + len, "/")];
                        int r;
                        if (!name)
                                return -ENOMEM;
                        r = pf_sqfs_node_add(n, name, last ? S_IFDIR | (mode & 07777) : S_IFDIR | 0755, NULL, &c);
                        if (r < 0)
                                return r;
                }
                n = c;
                p += len;
        }
        if (!S_ISDIR(n->mode))
                return -ENOTDIR;
        if (ret)
                *ret = n;
        return 0;
}

static int node_cmp(const void *a, const void *b) {
        return strcmp((*(pf_sqfs_node *const *) a)->name, (*(pf_sqfs_node *const *) b)->name);
}

static char *node_path(const pf_sqfs_node *n) {
        char *path = NULL;

        if (!n->parent)
                return strdup("/");
        for (; n->parent; n = n->parent) {
                char *p = NULL;
                if (asprintf(&p, "/%s%s", n->name, path ? path : "") < 0) {
                        free(path);
                        return NULL;
                }
                free(path);
                path = p;
        }
        return path;
}

static int finish_dir(pf_sqfs_node *dir, uint32_t *next, char **ret_clash) {
        if (dir->n_children > 1)
                qsort(dir->children, dir->n_children, sizeof(*dir->children), node_cmp);
        for (size_t i = 0; i < dir->n_children; i++) {
                pf_sqfs_node *c = dir->children[i];
                if (i > 0 && !strcmp(dir->children[i - 1]->name, c->name)) {
                        *ret_clash = node_path(c);
                        return -EEXIST;
                }
                if (S_ISDIR(c->mode)) {
                        int r = finish_dir(c, next, ret_clash);
                        if (r < 0)
                                return r;
                } else
                        c->ino = ++*next;
        }
        dir->ino = ++*next;
        return 0;
}

int pf_sqfs_tree_finish(pf_sqfs_node *root, uint32_t *ret_count, char **ret_clash) {
        uint32_t next = 0;
        int r;

        *ret_clash = NULL;
        r = finish_dir(root, &next, ret_clash);
        if (r < 0)
                return r;
        *ret_count = next;
        return 0;
}

int pf_sqfs_relative_target(const char *dir, const char *target, char **ret) {
        size_t common = 0, i = 0, ups = 0;
        char *out, *p;

        /* The longest common prefix of whole components. */
        for (;;) {
                while (dir[i] == '/')
                        i++;
                size_t dlen = strcspn(dir + i, "/");
                if (!dlen)
                        break;
                if (strncmp(dir + i, target + i, dlen) != 0 || (target[i + dlen] != '/' && target[i + dlen] != 0) ||
                    target[i - 1] != '/')
                        break;
                i += dlen;
                common = i;
        }
        for (const char *p2 = dir + common; *p2;) {
                p2 += strspn(p2, "/");
                size_t len = strcspn(p2, "/");
                if (!len)
                        break;
                ups++;
                p2 += len;
        }
        const char *rest = target + common;
        rest += strspn(rest, "/");
        out = malloc(ups * 3 + strlen(rest) + 2);
        if (!out)
                return -ENOMEM;
        p = out;
        for (size_t k = 0; k < ups; k++)
                p = stpcpy(p, "../");
        p = stpcpy(p, rest);
        if (p > out && p[-1] == '/')
                p[-1] = 0;
        if (!*out)
                strcpy(out, ".");
        *ret = out;
        return 0;
}

int pf_sqfs_environment_text(char *const *vars, char **ret) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        if (!f)
                return -ENOMEM;
        for (size_t i = 0; vars && vars[i]; i++) {
                const char *eq = strchr(vars[i], '=');
                if (!eq)
                        continue;
                fprintf(f, "%.*s='", (int) (eq - vars[i]), vars[i]);
                for (const char *c = eq + 1; *c; c++)
                        if (*c == '\'')
                                fputs("'\\''", f);
                        else
                                fputc(*c, f);
                fprintf(f, "'\nexport %.*s\n", (int) (eq - vars[i]), vars[i]);
        }
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}

/* --- libsquashfs glue. */

static int sqfs_errno(int r) {
        switch (r) {
        case SQFS_ERROR_ALLOC:
                return -ENOMEM;
        case SQFS_ERROR_OVERFLOW:
                return -EOVERFLOW;
        case SQFS_ERROR_UNSUPPORTED:
                return -EOPNOTSUPP;
        case SQFS_ERROR_ARG_INVALID:
                return -EINVAL;
        default:
                return -EIO;
        }
}

/* An output: the file of a cache object, written with pwrite, holding the
 * image's bytes from offset ORIGIN on (a piece of it: the items' blocks and
 * the tables that follow them are separate objects). */
typedef struct fd_file {
        sqfs_file_t base;
        int fd;
        uint64_t origin;
        uint64_t size;                  /* the image's size so far, ORIGIN included */
        int error;                      /* the errno of a failed write */
        /* pf_view.background: the thread that writes the blocks (an item's
         * finishing thread) follows the build's priority, as the workers do
         * (following_compressor). */
        const bool *background;
} fd_file;

static void fd_file_destroy(sqfs_object_t *o) {
        free(o);
}

static int fd_file_read_at(sqfs_file_t *base, sqfs_u64 offset, void *buf, size_t len) {
        fd_file *f = (fd_file *) base;

        if (offset < f->origin)
                return SQFS_ERROR_OUT_OF_BOUNDS;
        offset -= f->origin;
        while (len > 0) {
                ssize_t n = pread(f->fd, buf, len, (off_t) offset);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        f->error = errno;
                        return SQFS_ERROR_IO;
                }
                if (n == 0)
                        return SQFS_ERROR_OUT_OF_BOUNDS;
                buf = (uint8_t *) buf + n;
                len -= (size_t) n;
                offset += (uint64_t) n;
        }
        return 0;
}

static int fd_file_write_at(sqfs_file_t *base, sqfs_u64 offset, const void *buf, size_t len) {
        fd_file *f = (fd_file *) base;
        uint64_t end = offset + len;

        if (offset < f->origin)
                return SQFS_ERROR_OUT_OF_BOUNDS;
        pf_background_follow(f->background);
        offset -= f->origin;
        while (len > 0) {
                ssize_t n = pwrite(f->fd, buf, len, (off_t) offset);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        f->error = n < 0 ? errno : EIO;
                        return SQFS_ERROR_IO;
                }
                buf = (const uint8_t *) buf + n;
                len -= (size_t) n;
                offset += (uint64_t) n;
        }
        if (end > f->size)
                f->size = end;
        return 0;
}

static sqfs_u64 fd_file_get_size(const sqfs_file_t *base) {
        return ((const fd_file *) base)->size;
}

static int fd_file_truncate(sqfs_file_t *base, sqfs_u64 size) {
        fd_file *f = (fd_file *) base;

        if (size < f->origin || ftruncate(f->fd, (off_t) (size - f->origin)) < 0) {
                f->error = errno;
                return SQFS_ERROR_IO;
        }
        f->size = size;
        return 0;
}

static fd_file *fd_file_new(int fd, uint64_t origin, const bool *background) {
        fd_file *f = calloc(1, sizeof(*f));

        if (!f)
                return NULL;
        f->base.base.destroy = fd_file_destroy;
        f->base.read_at = fd_file_read_at;
        f->base.write_at = fd_file_write_at;
        f->base.get_size = fd_file_get_size;
        f->base.truncate = fd_file_truncate;
        f->fd = fd;
        f->origin = f->size = origin;
        f->background = background;
        return f;
}

/* --- Options. */

typedef struct settings {
        const char *compressor;
        int id;                         /* SQFS_COMPRESSOR */
        int level;                      /* -1: none (lz4) */
} settings;

static int resolve_settings(const pf_options *o, settings *ret) {
        settings s = { .compressor = o->squashfs_compressor ? o->squashfs_compressor : DEFAULT_COMPRESSOR };
        static const struct {
                const char *name;
                int min, max, def;
        } ranges[] = {
                { "gzip", SQFS_GZIP_MIN_LEVEL, SQFS_GZIP_MAX_LEVEL, SQFS_GZIP_DEFAULT_LEVEL },
                { "xz", SQFS_XZ_MIN_LEVEL, SQFS_XZ_MAX_LEVEL, SQFS_XZ_DEFAULT_LEVEL },
                { "zstd", SQFS_ZSTD_MIN_LEVEL, SQFS_ZSTD_MAX_LEVEL, DEFAULT_ZSTD_LEVEL },
                { "lzo", SQFS_LZO_MIN_LEVEL, SQFS_LZO_MAX_LEVEL, SQFS_LZO_DEFAULT_LEVEL },
                { "lz4", -1, -1, -1 },
        };

        s.id = sqfs_compressor_id_from_name(s.compressor);
        if (s.id < 0)
                return -EOPNOTSUPP;
        for (size_t i = 0; i < ELEMENTSOF(ranges); i++) {
                if (strcmp(ranges[i].name, s.compressor) != 0)
                        continue;
                s.level = o->squashfs_level >= 0 ? o->squashfs_level : ranges[i].def;
                if (ranges[i].min < 0 ? o->squashfs_level >= 0 : s.level < ranges[i].min || s.level > ranges[i].max)
                        return -ERANGE;
                *ret = s;
                return 0;
        }
        return -EOPNOTSUPP;
}

static int squashfs_key(const pf_view *view, const settings *s, uint8_t key[32]) {
        gcry_md_hd_t md;
        char line[256];
        int n;

        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                return -ENOMEM;
        gcry_md_write(md, SQUASHFS_LAYOUT, sizeof(SQUASHFS_LAYOUT));
        gcry_md_write(md, view->closure->id, 32);
        gcry_md_write(md, view->options->id, 32);
        /* The compressors' libraries too: a new one may give other bytes. */
        n = snprintf(line, sizeof(line), "%s %d %u libsquashfs %s zstd %s lzma %s", s->compressor, s->level,
                     BLOCK_SIZE, PF_LIBSQUASHFS_VERSION, ZSTD_versionString(), lzma_version_string());
        gcry_md_write(md, line, (size_t) n + 1);
        memcpy(key, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
        return 0;
}

/* --- Building. */

typedef struct file_list {
        pf_sqfs_node **v;
        size_t n, cap;
} file_list;

typedef struct build {
        const pf_view *view;
        char what[512];                 /* "demo/pack.squashfs", for logs */
        pf_sqfs_node *root, *store;
        pf_sqfs_node **stack;           /* the walk's directories by depth */
        size_t stack_size;
        sqfs_block_processor_t *proc;  /* NULL while an item's blocks come from the cache */
        struct file_list *files;        /* the current item's regular files, in walk order */
        uint8_t *buf;
        uint64_t done;
        pf_cache_job *job;
        unsigned workers;
        size_t items_cached;
        uint64_t image_size;            /* the image's bytes placed so far */
} build;

/* Feeds FD's SIZE bytes (or DATA's) into the block processor as NODE's data. */
static int feed_file(build *b, pf_sqfs_node *node, const char *path, uint64_t size, int64_t mtime, const void *data) {
        _cleanup_close_ int fd = -1;
        uint64_t left = size;
        int r;

        pf_background_follow(b->view->background);
        r = sqfs_block_processor_begin_file(b->proc, (sqfs_inode_generic_t **) &node->inode, NULL, 0);
        if (r != 0)
                return log_error_errno(sqfs_errno(r), "%s: %s", b->what, path);
        if (data) {
                r = sqfs_block_processor_append(b->proc, data, size);
                if (r != 0)
                        return log_error_errno(sqfs_errno(r), "%s: %s", b->what, path);
                left = 0;
        } else {
                struct stat st;
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
                if (fd < 0)
                        return log_error_errno(-EIO, "%s: store file %s: %m", b->what, path);
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size != size ||
                    (int64_t) st.st_mtime != mtime) {
                        log_error("%s: store file %s changed since it was planned (size or mtime)", b->what, path);
                        return -EIO;
                }
                (void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        }
        while (left > 0) {
                ssize_t n = read(fd, b->buf, MIN(left, READ_SIZE));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n < 0)
                                log_error("%s: reading store file %s: %m", b->what, path);
                        else
                                log_error("%s: store file %s changed since it was planned (shorter)", b->what, path);
                        return -EIO;
                }
                r = sqfs_block_processor_append(b->proc, b->buf, (size_t) n);
                if (r != 0)
                        return log_error_errno(sqfs_errno(r), "%s: compressing %s", b->what, path);
                left -= (uint64_t) n;
                b->done += (uint64_t) n;
                if ((r = pf_cancel_check()) < 0)
                        return r;
        }
        if (fd >= 0) {
                /* Longer than planned is a change too. */
                ssize_t n = read(fd, b->buf, 1);
                if (n != 0) {
                        log_error("%s: store file %s changed since it was planned (longer)", b->what, path);
                        return -EIO;
                }
        }
        r = sqfs_block_processor_end_file(b->proc);
        if (r != 0)
                return log_error_errno(sqfs_errno(r), "%s: %s", b->what, path);
        pf_cache_job_progress(b->job, b->done, 0);
        return 0;
}

static int on_entry(void *userdata, const pf_walk_entry *e) {
        build *b = userdata;
        pf_sqfs_node *parent, *node;
        const char *name;
        int r;

        if (e->depth >= b->stack_size) {
                size_t size = MAX(b->stack_size * 2, (size_t) e->depth + 16);
                pf_sqfs_node **ns = reallocarray(b->stack, size, sizeof(*ns));
                if (!ns)
                        return -ENOMEM;
                b->stack = ns;
                b->stack_size = size;
        }
        parent = e->depth == 0 ? b->store : b->stack[e->depth - 1];
        name = strrchr(e->path, '/') + 1;
        r = pf_sqfs_node_add(parent, name, e->mode, S_ISLNK(e->mode) ? e->link_target : NULL, &node);
        if (r < 0)
                return r;
        if (S_ISDIR(e->mode))
                b->stack[e->depth] = node;
        else if (S_ISREG(e->mode)) {
                file_list *l = b->files;
                if (l->n == l->cap) {
                        size_t cap = MAX(l->cap * 2, (size_t) 64);
                        pf_sqfs_node **nf = reallocarray(l->v, cap, sizeof(*nf));
                        if (!nf)
                                return -ENOMEM;
                        l->v = nf;
                        l->cap = cap;
                }
                l->v[l->n++] = node;
                if (b->proc)
                        return feed_file(b, node, e->path, e->size, e->mtime, NULL);
        }
        return 0;
}

/* The Singularity layout, the mount points and the profile's symlinks. */
static int add_layout(build *b) {
        const pf_view *view = b->view;
        const pf_options *o = view->options;
        const char *root = view->closure->root;
        pf_sqfs_node *dir, *node;
        char **env = NULL;
        _cleanup_free_ char *text = NULL;
        bool has_bin = false;
        int r;

        static const char *const mount_points[] = { "/proc", "/sys", "/dev", "/home" };
        for (size_t i = 0; i < ELEMENTSOF(mount_points); i++)
                if ((r = pf_sqfs_mkdir_p(b->root, mount_points[i], 0555, NULL)) < 0)
                        return r;
        /* /tmp is 1777 even when the store lies below it (tests' stores do). */
        if ((r = pf_sqfs_mkdir_p(b->root, "/tmp", 01777, &dir)) < 0)
                return r;
        dir->mode = S_IFDIR | 01777;

        /* Symlinks, relative to their directory (Singularity 2.x wants them so). */
        for (size_t i = 0; i <= o->n_symlinks; i++) {
                const char *source = i < o->n_symlinks ? o->symlinks[i].source : "/bin";
                const char *rel = i < o->n_symlinks ? o->symlinks[i].target : "bin";
                _cleanup_free_ char *parent = strdup(source), *target = NULL, *link = NULL;
                if (i == o->n_symlinks && has_bin)
                        break;
                has_bin = has_bin || !strcmp(source, "/bin");
                if (!parent || asprintf(&target, "%s%s%s", root, *rel ? "/" : "", rel) < 0)
                        return -ENOMEM;
                *strrchr(parent, '/') = 0;
                r = pf_sqfs_mkdir_p(b->root, parent, 0755, &dir);
                if (r < 0)
                        return log_error_errno(r, "%s: symlink %s: its directory", b->what, source);
                if ((r = pf_sqfs_relative_target(*parent ? parent : "/", target, &link)) < 0)
                        return r;
                if ((r = pf_sqfs_node_add(dir, strrchr(source, '/') + 1, S_IFLNK | 0777, link, NULL)) < 0)
                        return r;
        }

        /* /.singularity.d */
        if ((r = pf_sqfs_mkdir_p(b->root, "/.singularity.d/actions", 0555, NULL)) < 0 ||
            (r = pf_sqfs_mkdir_p(b->root, "/.singularity.d/env", 0555, &dir)) < 0)
                return r;
        pf_sqfs_lookup(b->root, "/.singularity.d")->mode = S_IFDIR | 0555;
        if (o->entry_point) {
                _cleanup_free_ char *target = NULL, *run = NULL, *runscript = NULL;
                if (asprintf(&target, "%s/%s", root, o->entry_point) < 0)
                        return -ENOMEM;
                if ((r = pf_sqfs_relative_target("/.singularity.d/actions", target, &run)) < 0 ||
                    (r = pf_sqfs_relative_target("/.singularity.d", target, &runscript)) < 0)
                        return r;
                if ((r = pf_sqfs_node_add(pf_sqfs_lookup(b->root, "/.singularity.d/actions"), "run", S_IFLNK | 0777,
                                          run, NULL)) < 0 ||
                    (r = pf_sqfs_node_add(pf_sqfs_lookup(b->root, "/.singularity.d"), "runscript", S_IFLNK | 0777,
                                          runscript, NULL)) < 0)
                        return r;
        }
        r = pf_profile_search_paths(view->store_dir, root, &env);
        if (r < 0)
                return log_error_errno(r, "%s: the profile's search paths", b->what);
        r = pf_sqfs_environment_text(env, &text);
        pf_strv_free(env);
        if (r < 0)
                return r;
        if ((r = pf_sqfs_node_add(dir, "90-environment.sh", S_IFREG | 0644, NULL, &node)) < 0)
                return r;
        return feed_file(b, node, "/.singularity.d/env/90-environment.sh", strlen(text), 0, text);
}

typedef struct writer {
        sqfs_meta_writer_t *im;
        sqfs_dir_writer_t *dirwr;
        uint16_t id0;
} writer;

static int write_inode(build *b, writer *w, pf_sqfs_node *n, sqfs_inode_generic_t *inode) {
        sqfs_u64 block;
        sqfs_u32 offset;
        int r;

        inode->base.mode = (sqfs_u16) n->mode;
        inode->base.uid_idx = w->id0;
        inode->base.gid_idx = w->id0;
        inode->base.mod_time = 1;
        inode->base.inode_number = n->ino;
        sqfs_meta_writer_get_position(w->im, &block, &offset);
        n->ref = (block << 16) | offset;
        r = sqfs_meta_writer_write_inode(w->im, inode);
        return r != 0 ? log_error_errno(sqfs_errno(r), "%s: writing the inode table", b->what) : 0;
}

/* Writes DIR's entries' inodes (depth-first), its listing and its own inode. */
static int write_dir(build *b, writer *w, pf_sqfs_node *dir, uint32_t parent_ino) {
        sqfs_inode_generic_t *inode;
        size_t subdirs = 0;
        int r;

        for (size_t i = 0; i < dir->n_children; i++) {
                pf_sqfs_node *c = dir->children[i];
                if (S_ISDIR(c->mode)) {
                        subdirs++;
                        r = write_dir(b, w, c, dir->ino);
                } else if (S_ISREG(c->mode)) {
                        inode = c->inode;
                        if (inode->base.type == SQFS_INODE_EXT_FILE) {
                                inode->data.file_ext.nlink = 1;
                                inode->data.file_ext.xattr_idx = NO_XATTR;
                        }
                        r = write_inode(b, w, c, inode);
                } else {
                        size_t len = strlen(c->target);
                        inode = calloc(1, sizeof(*inode) + len);
                        if (!inode)
                                return -ENOMEM;
                        inode->base.type = SQFS_INODE_SLINK;
                        inode->data.slink.nlink = 1;
                        inode->data.slink.target_size = (sqfs_u32) len;
                        inode->payload_bytes_available = inode->payload_bytes_used = (sqfs_u32) len;
                        memcpy(inode->extra, c->target, len);
                        r = write_inode(b, w, c, inode);
                        free(inode);
                }
                if (r < 0)
                        return r;
        }
        r = sqfs_dir_writer_begin(w->dirwr, 0);
        for (size_t i = 0; i < dir->n_children && r == 0; i++) {
                pf_sqfs_node *c = dir->children[i];
                r = sqfs_dir_writer_add_entry(w->dirwr, c->name, c->ino, c->ref, (sqfs_u16) c->mode);
        }
        if (r == 0)
                r = sqfs_dir_writer_end(w->dirwr);
        if (r != 0)
                return log_error_errno(sqfs_errno(r), "%s: writing the directory table", b->what);
        inode = sqfs_dir_writer_create_inode(w->dirwr, 2 + subdirs, NO_XATTR, parent_ino);
        if (!inode)
                return -ENOMEM;
        r = write_inode(b, w, dir, inode);
        sqfs_free(inode);
        return r;
}

/* --- The compressor libsquashfs's workers call.
 *
 * A `prepare` build runs at idle priority until a reader comes to wait for it
 * (background.h). libsquashfs's workers are threads it starts and keeps; each
 * gets a copy of the compressor, so the compressor is where they follow the
 * build's priority: before each block (cheap when nothing changes). */

typedef struct following_compressor {
        sqfs_compressor_t base;
        sqfs_compressor_t *inner;
        const bool *background;         /* pf_view.background */
} following_compressor;

static sqfs_compressor_t *following_compressor_new(sqfs_compressor_t *inner, const bool *background);

static void following_destroy(sqfs_object_t *o) {
        following_compressor *f = (following_compressor *) o;

        sqfs_destroy(f->inner);
        free(f);
}

static sqfs_object_t *following_copy(const sqfs_object_t *o) {
        const following_compressor *f = (const following_compressor *) o;
        sqfs_compressor_t *inner = sqfs_copy(f->inner);

        return inner ? (sqfs_object_t *) following_compressor_new(inner, f->background) : NULL;
}

static void following_get_configuration(const sqfs_compressor_t *cmp, sqfs_compressor_config_t *cfg) {
        const following_compressor *f = (const following_compressor *) cmp;
        f->inner->get_configuration(f->inner, cfg);
}

static int following_write_options(sqfs_compressor_t *cmp, sqfs_file_t *file) {
        following_compressor *f = (following_compressor *) cmp;
        return f->inner->write_options(f->inner, file);
}

static int following_read_options(sqfs_compressor_t *cmp, sqfs_file_t *file) {
        following_compressor *f = (following_compressor *) cmp;
        return f->inner->read_options(f->inner, file);
}

static sqfs_s32 following_do_block(sqfs_compressor_t *cmp, const sqfs_u8 *in, sqfs_u32 size, sqfs_u8 *out,
                                   sqfs_u32 outsize) {
        following_compressor *f = (following_compressor *) cmp;

        pf_background_follow(f->background);
        return f->inner->do_block(f->inner, in, size, out, outsize);
}

/* INNER (taken, also on failure) behind one that follows BACKGROUND. */
static sqfs_compressor_t *following_compressor_new(sqfs_compressor_t *inner, const bool *background) {
        following_compressor *f = calloc(1, sizeof(*f));

        if (!f) {
                sqfs_destroy(inner);
                return NULL;
        }
        f->base.base.destroy = following_destroy;
        f->base.base.copy = following_copy;
        f->base.get_configuration = following_get_configuration;
        f->base.write_options = following_write_options;
        f->base.read_options = following_read_options;
        f->base.do_block = following_do_block;
        f->inner = inner;
        f->background = background;
        return &f->base;
}

static unsigned n_workers(void) {
        cpu_set_t set;

        /* The cores this process may use (taskset), at least one. */
        if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned) CPU_COUNT(&set);
        return 1;
}

/* --- The image in pieces.
 *
 * The image is the concatenation of cache objects, recorded in a manifest under
 * its key: a header (the superblock and the compressor's options), each store
 * item's data and fragment blocks, and a tail (the layout's files, the inode,
 * directory, fragment and id tables). An item's blocks depend only on its files
 * and the compressor's settings: each item goes through a block processor of
 * its own, its fragments into fragment blocks of its own, offsets counted from
 * the item's first byte, and a record beside the object (its trailer) says
 * where each of its regular files (in walk order) and fragments are:
 *
 *   u64 blocks_size, u32 n_files, u32 n_frags, frags: (u64 offset, u32 size)...,
 *   files: (u64 size, u64 start, u64 sparse, u32 frag_index, u32 frag_offset,
 *           u32 n_blocks, u32 block_size...)...
 *
 * The tables give each file its offsets shifted by where its item lands, so a
 * new generation compresses only the items that changed, and shares the
 * others' objects with the images that hold them. */

#define ITEM_LAYOUT "packfs-squashfs-item-1"

typedef struct pieces {
        uint8_t (*keys)[32];
        pf_cache_object *objs;
        size_t n, cap;
} pieces;

static int pieces_add(pieces *p, const uint8_t key[32], pf_cache_object *obj) {
        if (p->n == p->cap) {
                size_t cap = MAX(p->cap * 2, (size_t) 16);
                uint8_t (*nk)[32] = reallocarray(p->keys, cap, sizeof(*nk));
                if (nk)
                        p->keys = nk;
                pf_cache_object *no = nk ? reallocarray(p->objs, cap, sizeof(*no)) : NULL;
                if (!no)
                        return -ENOMEM;
                p->objs = no;
                p->cap = cap;
        }
        memcpy(p->keys[p->n], key, 32);
        p->objs[p->n++] = *obj;
        *obj = (pf_cache_object) { .fd = -1 };
        return 0;
}

static void pieces_release(pf_cache *cache, pieces *p) {
        for (size_t i = 0; i < p->n; i++) {
                if (p->objs[i].path)
                        pf_cache_unpin(cache, p->keys[i]);
                pf_cache_object_done(&p->objs[i]);
        }
        free(p->keys);
        free(p->objs);
        *p = (pieces) {};
}

/* A piece being written: into the cache, or into an unnamed file in TMPDIR
 * when there is none (or its disk is full). */
typedef struct piece_writer {
        pf_cache_writer *w;
        int fd;
        uint8_t key[32];
} piece_writer;

static int piece_begin(pf_cache *cache, const uint8_t key[32], piece_writer *ret) {
        piece_writer pw = { .fd = -1 };
        int r = pf_cache_writer_new(cache, key, &pw.w);

        if (r < 0)
                return r;
        memcpy(pw.key, key, 32);
        if (pf_cache_writer_path(pw.w))
                pw.fd = open(pf_cache_writer_path(pw.w), O_RDWR | O_TRUNC | O_CLOEXEC);
        else {
                const char *tmp = getenv("TMPDIR");
                pw.fd = open(tmp && *tmp ? tmp : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        }
        if (pw.fd < 0) {
                r = -errno;
                pf_cache_writer_abort(pw.w);
                return r;
        }
        *ret = pw;
        return 0;
}

static void piece_abort(piece_writer *pw) {
        if (pw->fd >= 0)
                close(pw->fd);
        pf_cache_writer_abort(pw->w);
        *pw = (piece_writer) { .fd = -1 };
}

/* Commits PW into *RET (pinned, or the unnamed file). */
static int piece_commit(piece_writer *pw, pf_cache_object *ret) {
        int r;

        if (pf_cache_writer_path(pw->w)) {
                close(pw->fd);
                pw->fd = -1;
                r = pf_cache_writer_commit(pw->w, ret);
                pw->w = NULL;
                return r;
        }
        struct stat st;
        if (fstat(pw->fd, &st) < 0)
                return -errno;
        *ret = (pf_cache_object) { .fd = pw->fd, .size = (uint64_t) st.st_size };
        pw->fd = -1;
        pf_cache_writer_abort(pw->w);
        pw->w = NULL;
        return 0;
}

static void derive_key(const uint8_t base[32], const char *what, uint8_t key[32]) {
        gcry_md_hash_buffers(GCRY_MD_SHA256, 0, key,
                             (gcry_buffer_t[]) { { .data = (void *) base, .len = 32 },
                                                 { .data = (void *) what, .len = strlen(what) + 1 } },
                             2);
}

static void item_key(const pf_closure_item *item, const settings *s, uint8_t key[32]) {
        char line[256];
        int n = snprintf(line, sizeof(line), "%s %d %u libsquashfs %s zstd %s lzma %s", s->compressor, s->level,
                         BLOCK_SIZE, PF_LIBSQUASHFS_VERSION, ZSTD_versionString(), lzma_version_string());

        gcry_md_hash_buffers(GCRY_MD_SHA256, 0, key,
                             (gcry_buffer_t[]) { { .data = (void *) ITEM_LAYOUT, .len = sizeof(ITEM_LAYOUT) },
                                                 { .data = item->path, .len = strlen(item->path) + 1 },
                                                 { .data = item->nar_hash, .len = strlen(item->nar_hash) + 1 },
                                                 { .data = line, .len = (size_t) n } },
                             4);
}

typedef struct trailer {
        const uint8_t *data;
        size_t size, pos;
} trailer;

static int trailer_get(trailer *t, void *out, size_t len) {
        if (t->size - t->pos < len)
                return -EBADMSG;
        memcpy(out, t->data + t->pos, len);
        t->pos += len;
        return 0;
}

/* The trailer of B's current item: its files' inodes, FT's fragments. Malloc'd. */
static int make_trailer(const file_list *files, sqfs_frag_table_t *ft, uint64_t blocks_size, char **ret,
                        size_t *ret_size) {
        char *data = NULL;
        size_t size = 0;
        uint32_t n_frags = (uint32_t) sqfs_frag_table_get_size(ft), n_files = (uint32_t) files->n;
        FILE *m = open_memstream(&data, &size);

        if (!m)
                return -ENOMEM;
        fwrite(&blocks_size, 8, 1, m);
        fwrite(&n_files, 4, 1, m);
        fwrite(&n_frags, 4, 1, m);
        for (uint32_t i = 0; i < n_frags; i++) {
                sqfs_fragment_t frag;
                uint64_t off;
                uint32_t sz;
                if (sqfs_frag_table_lookup(ft, i, &frag) != 0) {
                        fclose(m);
                        free(data);
                        return -EIO;
                }
                off = frag.start_offset;
                sz = frag.size;
                fwrite(&off, 8, 1, m);
                fwrite(&sz, 4, 1, m);
        }
        for (size_t i = 0; i < files->n; i++) {
                const sqfs_inode_generic_t *inode = files->v[i]->inode;
                uint64_t fsize = 0, start = 0, sparse = 0;
                uint32_t idx = NO_XATTR, off = 0, n_blocks = (uint32_t) sqfs_inode_get_file_block_count(inode);
                sqfs_inode_get_file_size(inode, &fsize);
                sqfs_inode_get_file_block_start(inode, &start);
                sqfs_inode_get_frag_location(inode, &idx, &off);
                if (inode->base.type == SQFS_INODE_EXT_FILE)
                        sparse = inode->data.file_ext.sparse;
                fwrite(&fsize, 8, 1, m);
                fwrite(&start, 8, 1, m);
                fwrite(&sparse, 8, 1, m);
                fwrite(&idx, 4, 1, m);
                fwrite(&off, 4, 1, m);
                fwrite(&n_blocks, 4, 1, m);
                fwrite(inode->extra, 4, n_blocks, m);
        }
        if (fclose(m) != 0) {
                free(data);
                return -ENOMEM;
        }
        *ret = data;
        *ret_size = size;
        return 0;
}

/* Places an item whose blocks (BLOCKS_SIZE bytes) come next in the image:
 * adds its fragments to FT and gives each of B's files its inode. -EBADMSG
 * if the trailer does not fit the files. */
static int apply_item(build *b, const file_list *files, const void *data, size_t size, uint64_t blocks_size,
                      sqfs_frag_table_t *ft) {
        trailer t = { .data = data, .size = size };
        uint32_t n_files, n_frags, frag_base = (uint32_t) sqfs_frag_table_get_size(ft);
        uint64_t at = b->image_size, recorded;
        int r;

        if ((r = trailer_get(&t, &recorded, 8)) < 0 || (r = trailer_get(&t, &n_files, 4)) < 0 ||
            (r = trailer_get(&t, &n_frags, 4)) < 0)
                return r;
        if (recorded != blocks_size || n_files != files->n)
                return -EBADMSG;
        for (uint32_t i = 0; i < n_frags; i++) {
                uint64_t off;
                uint32_t fsize, idx;
                if ((r = trailer_get(&t, &off, 8)) < 0 || (r = trailer_get(&t, &fsize, 4)) < 0)
                        return r;
                if (sqfs_frag_table_append(ft, at + off, fsize, &idx) != 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < files->n; i++) {
                uint64_t fsize, start, sparse;
                uint32_t idx, off, n_blocks;
                sqfs_inode_generic_t *inode;
                if ((r = trailer_get(&t, &fsize, 8)) < 0 || (r = trailer_get(&t, &start, 8)) < 0 ||
                    (r = trailer_get(&t, &sparse, 8)) < 0 || (r = trailer_get(&t, &idx, 4)) < 0 ||
                    (r = trailer_get(&t, &off, 4)) < 0 || (r = trailer_get(&t, &n_blocks, 4)) < 0)
                        return r;
                if (n_blocks > (t.size - t.pos) / 4 || (idx != NO_XATTR && idx >= n_frags))
                        return -EBADMSG;
                inode = calloc(1, sizeof(*inode) + (size_t) n_blocks * 4);
                if (!inode)
                        return -ENOMEM;
                inode->base.type = SQFS_INODE_FILE;
                inode->payload_bytes_available = inode->payload_bytes_used = n_blocks * 4;
                (void) trailer_get(&t, inode->extra, (size_t) n_blocks * 4);
                if (fsize > UINT32_MAX || at + start > UINT32_MAX || sparse)
                        sqfs_inode_make_extended(inode);
                sqfs_inode_set_file_size(inode, fsize);
                sqfs_inode_set_file_block_start(inode, at + start);
                sqfs_inode_set_frag_location(inode, idx == NO_XATTR ? NO_XATTR : frag_base + idx,
                                             idx == NO_XATTR ? 0 : off);
                if (inode->base.type == SQFS_INODE_EXT_FILE)
                        inode->data.file_ext.sparse = sparse;
                sqfs_free(files->v[i]->inode);
                files->v[i]->inode = inode;
        }
        b->image_size = at + blocks_size;
        return t.pos == t.size ? 0 : -EBADMSG;
}

/* An item being compressed: fed by the walk, then finished (the last blocks,
 * its fragment block, the object committed) by a thread of its own while the
 * next item is fed, and placed in the image in closure order. */
typedef struct item_job {
        build *b;
        const pf_closure_item *item;
        bool cacheable;
        uint8_t key[32], tkey[32];
        file_list files;
        piece_writer pw;
        fd_file *f;
        sqfs_block_writer_t *ibw;
        sqfs_frag_table_t *ift;
        sqfs_block_processor_t *proc;
        pthread_t thread;
        bool running;
        int r;
        char *data;                     /* the trailer */
        size_t size;
        pf_cache_object obj;
} item_job;

static void item_job_free(item_job *j) {
        if (!j)
                return;
        if (j->running)
                pthread_join(j->thread, NULL);
        sqfs_destroy(j->proc);
        sqfs_destroy(j->ibw);
        sqfs_destroy(j->ift);
        sqfs_destroy(j->f);
        piece_abort(&j->pw);
        if (j->obj.path)
                pf_cache_unpin(j->b->view->cache, j->key);
        pf_cache_object_done(&j->obj);
        free(j->files.v);
        free(j->data);
        free(j);
}

static void *item_finish(void *userdata) {
        item_job *j = userdata;
        build *b = j->b;
        int r = sqfs_block_processor_finish(j->proc);

        if (r != 0)
                r = j->f->error ? log_error_errno(-j->f->error, "%s: writing the blocks of %s", b->what, j->item->path)
                                : log_error_errno(sqfs_errno(r), "%s: libsquashfs", b->what);
        if (r >= 0)
                r = make_trailer(&j->files, j->ift, j->f->size, &j->data, &j->size);
        if (r >= 0)
                r = piece_commit(&j->pw, &j->obj);
        j->r = r;
        return NULL;
}

/* Places a finished job's item and hands its object to P. */
static int item_place(build *b, item_job *j, sqfs_frag_table_t *ft, pieces *p) {
        int r;

        if (j->running) {
                pthread_join(j->thread, NULL);
                j->running = false;
        }
        if (j->r < 0)
                return j->r;
        r = apply_item(b, &j->files, j->data, j->size, j->obj.size, ft);
        if (r == -EBADMSG)
                r = -EIO;
        if (r >= 0 && j->cacheable && j->obj.path)
                (void) pf_cache_record_put(b->view->cache, j->tkey, j->data, j->size);
        if (r >= 0)
                r = pieces_add(p, j->key, &j->obj);     /* its pin goes with it */
        return r;
}

/* Items being finished, oldest first: placed in closure order. Small items
 * are fed faster than one is finished (its fsync above all), so several
 * finish at once. */
#define MAX_PENDING 8
typedef struct job_queue {
        item_job *v[MAX_PENDING];
        size_t n;
} job_queue;

/* Places the oldest pending item. */
static int place_oldest(build *b, job_queue *q, sqfs_frag_table_t *ft, pieces *p) {
        item_job *j = q->v[0];
        int r = item_place(b, j, ft, p);

        item_job_free(j);
        memmove(q->v, q->v + 1, (--q->n) * sizeof(*q->v));
        return r;
}

static int place_all(build *b, job_queue *q, sqfs_frag_table_t *ft, pieces *p) {
        int r = 0;

        while (q->n > 0) {
                int k = place_oldest(b, q, ft, p);
                if (r >= 0)
                        r = k;
        }
        return r;
}

/* Item I of the closure: its entries into the tree; its blocks a piece of the
 * image, from the cache or compressed now (and cached): placed at once, after
 * the pending ones, or finished by a thread and queued in PENDING. */
static int add_item(build *b, pf_walk_batch *batch, size_t i, const settings *s, sqfs_compressor_t *cmp,
                    sqfs_frag_table_t *ft, pieces *p, job_queue *pending) {
        const pf_view *view = b->view;
        item_job *j = calloc(1, sizeof(*j));
        bool walked;
        int r;

        if (!j)
                return -ENOMEM;
        *j = (item_job) { .b = b, .item = &view->closure->items[i], .pw = { .fd = -1 }, .obj = { .fd = -1 } };
        j->cacheable = view->cache && j->item->nar_hash && *j->item->nar_hash;
        b->files = &j->files;
        if (j->cacheable) {
                item_key(j->item, s, j->key);
                derive_key(j->key, "trailer", j->tkey);
                if (pf_cache_record_get(view->cache, j->tkey, (void **) &j->data, &j->size) >= 0) {
                        if (pf_cache_acquire(view->cache, (const uint8_t (*)[32]) j->key, 1, &j->obj) == 1) {
                                r = pf_walk_batch_item(batch, i, on_entry, b, &walked);
                                if (r >= 0)
                                        r = place_all(b, pending, ft, p);
                                if (r >= 0) {
                                        r = apply_item(b, &j->files, j->data, j->size, j->obj.size, ft);
                                        if (r == -EBADMSG) {
                                                /* Its entries are in the tree already: no second
                                                 * walk; this build fails, the next redoes it. */
                                                log_error("%s: the cached blocks of %s do not match its files",
                                                          b->what, j->item->path);
                                                (void) pf_cache_record_drop(view->cache, j->tkey);
                                                r = -EIO;
                                        }
                                }
                                if (r >= 0) {
                                        b->items_cached++;
                                        r = pieces_add(p, j->key, &j->obj);
                                }
                                item_job_free(j);
                                return r;
                        }
                        pf_cache_object_done(&j->obj);
                        free(j->data);
                        j->data = NULL;
                }
        }

        /* Compressed now, into an object of its own. */
        r = piece_begin(j->cacheable ? view->cache : NULL, j->key, &j->pw);
        if (r < 0) {
                log_error_errno(r, "%s: the blocks of %s", b->what, j->item->path);
                goto fail;
        }
        j->f = fd_file_new(j->pw.fd, 0, view->background);
        j->ibw = j->f ? sqfs_block_writer_create(&j->f->base, DEVBLK_SIZE, 0) : NULL;
        j->ift = sqfs_frag_table_create(0);
        if (!j->f || !j->ibw || !j->ift) {
                r = -ENOMEM;
                goto fail;
        }
        sqfs_block_processor_desc_t desc = { .size = sizeof(desc), .max_block_size = BLOCK_SIZE,
                                             .num_workers = b->workers, .max_backlog = 16 * b->workers,
                                             .cmp = cmp, .wr = j->ibw, .tbl = j->ift };
        r = sqfs_block_processor_create_ex(&desc, &j->proc);
        if (r != 0) {
                r = log_error_errno(sqfs_errno(r), "%s: libsquashfs", b->what);
                goto fail;
        }
        b->proc = j->proc;
        r = pf_walk_batch_item(batch, i, on_entry, b, &walked);
        b->proc = NULL;
        if (r < 0) {
                if (r != -ECANCELED && r != -EIO)
                        log_error_errno(r, "%s: walking %s", b->what, j->item->path);
                goto fail;
        }
        if (pending->n == MAX_PENDING && (r = place_oldest(b, pending, ft, p)) < 0)
                goto fail;
        r = -pthread_create(&j->thread, NULL, item_finish, j);
        if (r < 0)
                goto fail;
        j->running = true;
        pending->v[pending->n++] = j;
        return 0;
fail:
        item_job_free(j);
        return r;
}

/* Writes the image of B's view as pieces: P gets the header, the items and
 * the tail, in order. */
static int write_image(build *b, const settings *s, const uint8_t image_key[32], pieces *p) {
        const pf_view *view = b->view;
        pf_cache *cache = view->cache;
        sqfs_compressor_config_t cfg;
        sqfs_compressor_t *cmp = NULL;
        sqfs_super_t super;
        piece_writer head = { .fd = -1 }, tail = { .fd = -1 };
        pf_cache_object head_obj = { .fd = -1 }, tail_obj = { .fd = -1 };
        fd_file *hf = NULL, *file = NULL;
        sqfs_block_writer_t *bw = NULL;
        sqfs_frag_table_t *ft = NULL;
        sqfs_id_table_t *idt = NULL;
        sqfs_meta_writer_t *im = NULL, *dm = NULL;
        sqfs_dir_writer_t *dirwr = NULL;
        pf_walk_batch *batch = NULL;
        pieces items = {};
        job_queue pending = {};
        writer w = {};
        char *clash = NULL;
        uint8_t key[32];
        uint32_t count = 0;
        int r;

        b->workers = n_workers();
        r = sqfs_compressor_config_init(&cfg, (SQFS_COMPRESSOR) s->id, BLOCK_SIZE, 0);
        if (r == 0 && s->level >= 0)
                cfg.level = (sqfs_u32) s->level;
        if (r == 0)
                r = sqfs_compressor_create(&cfg, &cmp);
        if (r != 0) {
                log_error("%s: libsquashfs cannot compress with %s at level %d", b->what, s->compressor, s->level);
                return sqfs_errno(r);
        }
        if (view->background) {
                cmp = following_compressor_new(cmp, view->background);
                if (!cmp)
                        return -ENOMEM;
        }

        /* The header, its superblock written again at the end. */
        derive_key(image_key, "header", key);
        r = piece_begin(cache, key, &head);
        if (r < 0)
                goto out;
        hf = fd_file_new(head.fd, 0, view->background);
        if (!hf) {
                r = -ENOMEM;
                goto out;
        }
        sqfs_super_init(&super, BLOCK_SIZE, 1, (SQFS_COMPRESSOR) s->id);
        super.flags |= SQFS_FLAG_NO_XATTRS;
        r = sqfs_super_write(&super, &hf->base);
        if (r == 0) {
                r = cmp->write_options(cmp, &hf->base);
                if (r > 0)
                        super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;
                r = r < 0 ? r : 0;
        }
        if (r != 0)
                goto sqfs_failed;
        b->image_size = hf->size;
        ft = sqfs_frag_table_create(0);
        idt = sqfs_id_table_create(0);
        b->buf = malloc(READ_SIZE);
        if (!ft || !idt || !b->buf) {
                r = -ENOMEM;
                goto out;
        }
        r = sqfs_id_table_id_to_index(idt, 0, &w.id0);
        if (r != 0)
                goto sqfs_failed;

        /* The closure, item by item: blocks from the cache or compressed now. */
        r = pf_walk_batch_new(cache, view->closure->items, view->closure->n_items, &batch);
        for (size_t i = 0; i < view->closure->n_items && r >= 0; i++)
                r = add_item(b, batch, i, s, cmp, ft, &items, &pending);
        if (r >= 0)
                r = place_all(b, &pending, ft, &items);
        while (pending.n > 0)
                item_job_free(pending.v[--pending.n]);
        pf_walk_batch_free(batch);
        if (r < 0)
                goto out;

        /* The tail: the layout's own files, then the tables. */
        derive_key(image_key, "tail", key);
        r = piece_begin(cache, key, &tail);
        if (r < 0)
                goto out;
        file = fd_file_new(tail.fd, b->image_size, view->background);
        bw = file ? sqfs_block_writer_create(&file->base, DEVBLK_SIZE, 0) : NULL;
        if (!bw) {
                r = -ENOMEM;
                goto out;
        }
        sqfs_block_processor_desc_t desc = { .size = sizeof(desc), .max_block_size = BLOCK_SIZE,
                                             .num_workers = 1, .max_backlog = 4,
                                             .cmp = cmp, .wr = bw, .tbl = ft };
        r = sqfs_block_processor_create_ex(&desc, &b->proc);
        if (r != 0)
                goto sqfs_failed;
        r = add_layout(b);
        if (r < 0)
                goto out;
        r = sqfs_block_processor_finish(b->proc);
        if (r != 0)
                goto sqfs_failed;

        r = pf_sqfs_tree_finish(b->root, &count, &clash);
        if (r == -EEXIST) {
                log_error("%s: %s is given twice (a symlink over a store path?)", b->what, clash);
                free(clash);
                goto out;
        }
        im = sqfs_meta_writer_create(&file->base, cmp, 0);
        dm = sqfs_meta_writer_create(&file->base, cmp, SQFS_META_WRITER_KEEP_IN_MEMORY);
        dirwr = dm ? sqfs_dir_writer_create(dm, 0) : NULL;
        if (!im || !dm || !dirwr) {
                r = -ENOMEM;
                goto out;
        }
        w.im = im;
        w.dirwr = dirwr;
        super.inode_table_start = file->size;
        r = write_dir(b, &w, b->root, count + 1);
        if (r < 0)
                goto out;
        if ((r = sqfs_meta_writer_flush(im)) != 0 || (r = sqfs_meta_writer_flush(dm)) != 0)
                goto sqfs_failed;
        super.root_inode_ref = b->root->ref;
        super.directory_table_start = file->size;
        if ((r = sqfs_meta_write_write_to_file(dm)) != 0)
                goto sqfs_failed;
        super.inode_count = count;
        if ((r = sqfs_frag_table_write(ft, &file->base, &super, cmp)) != 0 ||
            (r = sqfs_id_table_write(idt, &file->base, &super, cmp)) != 0)
                goto sqfs_failed;
        super.bytes_used = file->size;
        if (file->size % DEVBLK_SIZE && (r = fd_file_truncate(&file->base, ALIGN_TO(file->size, DEVBLK_SIZE))) != 0)
                goto sqfs_failed;
        if ((r = sqfs_super_write(&super, &hf->base)) != 0) {
                file = NULL;
                goto sqfs_failed;
        }

        /* header, items, tail */
        r = piece_commit(&head, &head_obj);
        if (r >= 0)
                r = piece_commit(&tail, &tail_obj);
        if (r < 0)
                goto out;
        derive_key(image_key, "header", key);
        r = pieces_add(p, key, &head_obj);
        for (size_t i = 0; i < items.n && r >= 0; i++)
                r = pieces_add(p, items.keys[i], &items.objs[i]);
        derive_key(image_key, "tail", key);
        if (r >= 0)
                r = pieces_add(p, key, &tail_obj);
        goto out;

sqfs_failed:
        if (file && file->error)
                r = log_error_errno(-file->error, "%s: writing the image", b->what);
        else if (hf && hf->error)
                r = log_error_errno(-hf->error, "%s: writing the image", b->what);
        else
                r = log_error_errno(sqfs_errno(r), "%s: libsquashfs", b->what);
out:
        sqfs_destroy(b->proc);
        b->proc = NULL;
        sqfs_destroy(dirwr);
        sqfs_destroy(dm);
        sqfs_destroy(im);
        sqfs_destroy(bw);
        sqfs_destroy(ft);
        sqfs_destroy(idt);
        sqfs_destroy(cmp);
        sqfs_destroy(file);
        sqfs_destroy(hf);
        piece_abort(&head);
        piece_abort(&tail);
        if (head_obj.path && cache) {
                derive_key(image_key, "header", key);
                pf_cache_unpin(cache, key);
        }
        pf_cache_object_done(&head_obj);
        if (tail_obj.path && cache) {
                derive_key(image_key, "tail", key);
                pf_cache_unpin(cache, key);
        }
        pf_cache_object_done(&tail_obj);
        pieces_release(cache, &items);
        free(b->buf);
        b->buf = NULL;
        return r;
}

static int build_tree(build *b) {
        int r = pf_sqfs_tree_new(0755, &b->root);

        if (r < 0)
                return r;
        return pf_sqfs_mkdir_p(b->root, b->view->store_dir, 0755, &b->store);
}

/* --- The format. */

static int squashfs_plan(const pf_format *self, const pf_view *view, pf_plan **ret) {
        pieces p = {};
        uint8_t key[32];
        uint64_t size = 0;
        settings s;
        build b = { .view = view };
        struct timespec start;
        bool in_cache = true;
        int r;

        snprintf(b.what, sizeof(b.what), "%s/%s", view->name, self->file_name);
        r = resolve_settings(view->options, &s);
        if (r < 0) {
                log_error("%s: squashfs-level %d is not one %s takes", b.what, view->options->squashfs_level,
                          view->options->squashfs_compressor ? view->options->squashfs_compressor : DEFAULT_COMPRESSOR);
                return -EIO;
        }
        r = squashfs_key(view, &s, key);
        if (r < 0)
                return r;
        /* Ahead of use (`prepare`), the reading and the workers started now
         * run at idle priority (background.h). */
        pf_background_follow(view->background);
        if (view->cache) {
                r = pf_plan_from_manifest(key, view->cache, ret);
                if (r != 0)
                        return r < 0 ? -EIO : 0;
        }

        clock_gettime(CLOCK_MONOTONIC, &start);
        (void) pf_cache_job_begin(view->cache, b.what, view->closure->nar_size, &b.job);
        r = build_tree(&b);
        if (r >= 0)
                r = write_image(&b, &s, key, &p);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < p.n; i++) {
                size += p.objs[i].size;
                in_cache = in_cache && p.objs[i].path;
        }
        if (view->cache && in_cache &&
            pf_cache_manifest_put(view->cache, key, (const uint8_t (*)[32]) p.keys, p.n) < 0)
                log_warning("cache: cannot record a manifest; the next mount builds %s again", b.what);
        log_info("%s: built in %.1f s (%llu bytes, %s level %d; %zu of %zu store items' blocks from the cache)",
                 b.what, pf_seconds_since(&start), (unsigned long long) size, s.compressor, s.level,
                 b.items_cached, view->closure->n_items);
        r = pf_plan_over_cache_objects(view->cache, (const uint8_t (*)[32]) p.keys, p.objs, p.n, ret);
        free(p.keys);
        free(p.objs);
        p = (pieces) {};
out:
        if (r < 0 && r != -ECANCELED) {
                log_error("%s: not built: %s; nothing was cached", b.what, strerror(-r));
                if (r != -ENOMEM)
                        r = -EIO;
        }
        pieces_release(view->cache, &p);
        pf_cache_job_end(b.job);
        pf_sqfs_tree_free(b.root);
        free(b.stack);
        return r;
}

static int squashfs_cached(const pf_format *self, const pf_view *view) {
        _cleanup_free_ uint8_t (*keys)[32] = NULL;
        uint8_t key[32];
        size_t n;
        settings s;

        if (!view->cache || resolve_settings(view->options, &s) < 0 || squashfs_key(view, &s, key) < 0)
                return 0;
        if (pf_cache_manifest_get(view->cache, key, &keys, &n) < 0)
                return 0;
        return pf_cache_contains(view->cache, (const uint8_t (*)[32]) keys, n) == (int) n;
}

const pf_format pf_format_squashfs = { .file_name = "pack.squashfs", .plan = squashfs_plan, .cached = squashfs_cached };
