/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pack.tar: the closure at its store paths, the store directory's parents, and the
 * profile's symlinks (`guix pack -f tarball -S ...`), in GNU tar's --sort=name
 * order with "./" names, as `tar -C root -cf - .` gives them.
 *
 * Headers are not kept: the plan keeps one small tar_entry per member and
 * regenerates its header bytes when a read reaches them (GENERATED extents), so
 * the plan's memory grows with the number of members, never with their bytes.
 * File data is a FILE extent onto the store file itself.
 */
#include <errno.h>
#include <gcrypt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/compressed.h"
#include "packfs/digest.h"
#include "packfs/format.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/walkcache.h"
#include "statedb.h"
#include "tar-header.h"
#include "tar-plan.h"

void tar_extras_free(extra_node *n) {
        if (!n)
                return;
        for (size_t i = 0; i < n->n_children; i++)
                tar_extras_free(n->children[i]);
        free(n->children);
        free(n->name);
        free(n->link);
        free(n->data);
        free(n);
}

static extra_node *extra_child(extra_node *parent, const char *name, size_t len, bool create) {
        for (size_t i = 0; i < parent->n_children; i++)
                if (strlen(parent->children[i]->name) == len && !strncmp(parent->children[i]->name, name, len))
                        return parent->children[i];
        if (!create)
                return NULL;
        extra_node **v = reallocarray(parent->children, parent->n_children + 1, sizeof(*v));
        if (!v)
                return NULL;
        parent->children = v;
        extra_node *n = calloc(1, sizeof(*n));
        if (!n)
                return NULL;
        n->name = strndup(name, len);
        if (!n->name) {
                free(n);
                return NULL;
        }
        n->mode = S_IFDIR | 0755;
        v[parent->n_children++] = n;
        return n;
}

/* Adds the directories of absolute PATH to the tree and returns its node. Fails
 * with -EEXIST if a component is already something other than a directory. */
static int extra_add_path(extra_node *root, const char *path, extra_node **ret) {
        extra_node *n = root;

        for (const char *p = path; *p;) {
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                const char *end = strchrnul(p, '/');
                if (!S_ISDIR(n->mode) || n->is_store)
                        return -EEXIST;
                n = extra_child(n, p, (size_t) (end - p), true);
                if (!n)
                        return -ENOMEM;
                p = end;
        }
        *ret = n;
        return 0;
}

/* Adds absolute PATH as a new leaf (a symlink or a file) and returns its node;
 * -EEXIST if PATH is already taken: the root, the store, a parent directory of
 * another member, or another leaf. */
static int extra_add_leaf(extra_node *root, const char *path, extra_node **ret) {
        extra_node *n;
        int r;

        r = extra_add_path(root, path, &n);
        if (r < 0)
                return r;
        if (n == root || n->is_store || n->n_children > 0 || n->link || n->data)
                return -EEXIST;
        *ret = n;
        return 0;
}

static int extra_cmp(const void *a, const void *b) {
        return strcmp((*(extra_node *const *) a)->name, (*(extra_node *const *) b)->name);
}

static void extra_sort(extra_node *n) {
        if (n->n_children > 1)
                qsort(n->children, n->n_children, sizeof(*n->children), extra_cmp);
        for (size_t i = 0; i < n->n_children; i++)
                extra_sort(n->children[i]);
}

int tar_extras_build(const pf_view *view, extra_node **ret) {
        extra_node *root = calloc(1, sizeof(*root)), *n;
        int r;

        if (!root)
                return -ENOMEM;
        root->mode = S_IFDIR | 0755;
        r = extra_add_path(root, view->store_dir, &n);
        if (r < 0)
                goto fail;
        n->is_store = true;

        for (size_t i = 0; i < view->options->n_symlinks; i++) {
                const pf_symlink_spec *s = &view->options->symlinks[i];
                r = extra_add_leaf(root, s->source, &n);
                if (r < 0) {
                        if (r == -EEXIST)
                                log_error("%s: symlink %s collides with another member of the pack", view->name,
                                          s->source);
                        goto fail;
                }
                n->mode = S_IFLNK | 0777;
                if (asprintf(&n->link, "%s/%s", view->closure->root, s->target) < 0) {
                        n->link = NULL;
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (view->options->localstatedir) {
                pf_state_layout layout = pf_state_layout_for(view->store_dir);
                r = extra_add_leaf(root, layout.db_path, &n);
                if (r >= 0) {
                        n->mode = S_IFREG | 0644;
                        r = pf_statedb_generate(view, &n->data, &n->size);
                }
                if (r >= 0)
                        r = extra_add_leaf(root, layout.profile_link, &n);
                if (r >= 0) {
                        n->mode = S_IFLNK | 0777;
                        n->link = strdup(view->closure->root);
                        if (!n->link)
                                r = -ENOMEM;
                }
                if (r < 0) {
                        if (r == -EEXIST)
                                log_error("%s: localstatedir collides with a symlink of the pack", view->name);
                        goto fail;
                }
        }
        extra_sort(root);
        *ret = root;
        return 0;
fail:
        tar_extras_free(root);
        return r;
}

int tar_extras_add_dir(extra_node *root, const char *path, mode_t mode) {
        extra_node *n;
        int r = extra_add_path(root, path, &n);

        if (r < 0)
                return r;
        if (n == root || n->is_store)
                return -EEXIST;
        n->mode = S_IFDIR | mode;
        extra_sort(root);
        return 0;
}

void tar_plan_data_free(void *p) {
        tar_plan_data *d = p;
        if (!d)
                return;
        free(d->entries);
        free(d);
}

int tar_generate(const void *format_data, uint64_t cookie, uint64_t offset, void *buf, size_t len) {
        const tar_plan_data *d = format_data;
        uint8_t header[TAR_HEADER_MAX];
        int n;

        if (cookie >= d->n_entries)
                return -EINVAL;
        n = d->gnu ? tar_header_write_gnu(&d->entries[cookie], header) : tar_header_write(&d->entries[cookie], header);
        if (n < 0)
                return n;
        if (offset + len > (uint64_t) n)
                return -EINVAL;
        memcpy(buf, header + offset, len);
        return 0;
}

/* Adds one member: its header, and for regular files the data (from FILE_PATH,
 * or DATA when FILE_PATH is NULL) and padding. */
int tar_add_member(tar_planner *t, const char *name, const char *link, mode_t mode, uint64_t size,
                   const char *file_path, int64_t mtime, const uint8_t *data) {
        tar_plan_data *d = t->data;
        const char *iname, *ilink = NULL;
        int n, r;

        iname = pf_plan_intern(t->builder, name);
        if (!iname)
                return -ENOMEM;
        if (link) {
                ilink = pf_plan_intern(t->builder, link);
                if (!ilink)
                        return -ENOMEM;
        }
        if (d->n_entries == d->allocated) {
                size_t na = d->allocated ? d->allocated * 2 : 256;
                tar_entry *v = reallocarray(d->entries, na, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                d->entries = v;
                d->allocated = na;
        }
        size_t index = d->n_entries;
        tar_entry *e = &d->entries[index];
        *e = (tar_entry) { .name = iname, .link = ilink, .mode = mode, .size = S_ISREG(mode) ? size : 0 };
        if (index > INT_MAX)
                return -EFBIG;
        n = d->gnu ? tar_header_size_gnu(e) : tar_header_size(e);
        if (n < 0) {
                log_error("%s: %s: name too long for a tar member", t->view->name, name);
                return n;
        }
        r = pf_plan_add_generated(t->builder, (uint64_t) n, d->n_entries++);
        if (r < 0 || !S_ISREG(mode) || size == 0)
                return r < 0 ? r : (int) index;
        if (file_path) {
                /* A store file's member name is "." + its path: share the string. */
                const char *ipath = strcmp(iname + 1, file_path) == 0 ? iname + 1 : pf_plan_intern(t->builder, file_path);
                if (!ipath)
                        return -ENOMEM;
                r = pf_plan_add_file(t->builder, ipath, size, mtime, 0, size);
        } else
                r = pf_plan_add_bytes(t->builder, data, size);
        if (r >= 0)
                r = pf_plan_add_zero(t->builder, tar_padding(size));
        return r < 0 ? r : (int) index;
}

/* A store item is immutable and named by its path; its NAR hash pins its
 * contents and the executable bits, and the layout version everything else this
 * file decides (names, modes, mtime, owners). Bump it when the members change. */
#define TAR_ITEM_LAYOUT "packfs pack.tar item 1"

void tar_item_identity(const pf_closure_item *item, uint8_t identity[32]) {
        gcry_md_hd_t md;

        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                abort();
        gcry_md_write(md, TAR_ITEM_LAYOUT, sizeof(TAR_ITEM_LAYOUT));
        gcry_md_write(md, item->path, strlen(item->path) + 1);
        gcry_md_write(md, item->nar_hash, strlen(item->nar_hash) + 1);
        memcpy(identity, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
}

#define TAR_ITEM_LAYOUT_GNU "packfs gnu tar item 1"

void tar_item_identity_gnu(const pf_closure_item *item, uint8_t identity[32]) {
        tar_item_identity(item, identity);
        pf_sha256_pair(TAR_ITEM_LAYOUT_GNU, sizeof(TAR_ITEM_LAYOUT_GNU), identity, 32, identity);
}

/* A store entry's member name: "." + its absolute path, and a trailing slash
 * for directories. */
static int member_name(const pf_walk_entry *e, char *name, size_t size) {
        size_t len = strlen(e->path);

        if (len + 3 > size) {
                log_error("%s: name too long for a tar member", e->path);
                return -ENAMETOOLONG;
        }
        name[0] = '.';
        memcpy(name + 1, e->path, len);
        if (S_ISDIR(e->mode))
                name[++len] = '/';
        name[len + 1] = 0;
        return 0;
}

static int on_store_entry(void *userdata, const pf_walk_entry *e) {
        tar_planner *t = userdata;
        char name[sizeof(t->path)];
        int r;

        r = member_name(e, name, sizeof(name));
        if (r >= 0)
                r = tar_add_member(t, name, e->link_target, e->mode, e->size, e->path, e->mtime, NULL);
        return MIN(r, 0);
}

/* The bytes an item's members take, for a sparse plan's placeholder: the same
 * sums add_member() makes, without keeping anything. */
typedef struct member_length {
        uint64_t length;
        bool gnu;
} member_length;

static int add_member_length(void *userdata, const pf_walk_entry *e) {
        member_length *m = userdata;
        uint64_t *length = &m->length;
        char name[sizeof(((tar_planner *) NULL)->path)];
        tar_entry te;
        int n;

        n = member_name(e, name, sizeof(name));
        if (n < 0)
                return n;
        te = (tar_entry) { .name = name, .link = e->link_target, .mode = e->mode, .size = S_ISREG(e->mode) ? e->size : 0 };
        n = m->gnu ? tar_header_size_gnu(&te) : tar_header_size(&te);
        if (n < 0) {
                /* As add_member() says it for a full plan. */
                log_error("%s: name too long for a tar member", e->path);
                return n;
        }
        *length += (uint64_t) n;
        if (S_ISREG(e->mode))
                *length += e->size + tar_padding(e->size);
        return 0;
}

/* Item lengths. A sparse plan's placeholder for an item it does not want is
 * the bytes the item's members take: a function of the item's identity alone,
 * so it is recorded in the cache the first time it is summed, and a new
 * generation's skeleton plan fetches no member list of an unchanged item. A
 * damaged record is dropped and the length summed again. */
#define TAR_LENGTH_RECORD "packfs pack.tar item length 1"

static void length_record_key(const uint8_t identity[32], uint8_t key[32]) {
        pf_sha256_pair(TAR_LENGTH_RECORD, sizeof(TAR_LENGTH_RECORD), identity, 32, key);
}

/* 1 and *RET with the recorded length, 0 when there is none (or it was damaged). */
static int length_lookup(pf_cache *cache, const pf_closure_item *item, const uint8_t identity[32], uint64_t *ret) {
        uint8_t key[32];
        int r;

        if (!cache || !pf_closure_item_keyed(item))
                return 0;
        length_record_key(identity, key);
        r = pf_cache_record_get_u64(cache, key, ret);
        if (r == -EBADMSG)
                log_warning("cache: %s: the recorded pack.tar length is damaged; summing it again", item->path);
        return r > 0;
}

/* Best effort: without the record the next plan sums the length again. */
static void length_record(pf_cache *cache, const pf_closure_item *item, const uint8_t identity[32], uint64_t length) {
        uint8_t key[32];

        if (!cache || !pf_closure_item_keyed(item))
                return;
        length_record_key(identity, key);
        pf_cache_record_put_u64(cache, key, length);
}

/* The closure's items, each a segment of its own: their bytes depend on the
 * item alone, so compressed variants encode and cache them once for every pack
 * that holds the item. Items the planner does not want are zeros of their
 * length; only the items whose members are needed (wanted, or of unknown
 * length) are replayed or walked. */
int tar_plan_items(tar_planner *t) {
        /* ITEM_MEMBERS_RECORD: members, and their length is not recorded yet. */
        enum { ITEM_MEMBERS, ITEM_MEMBERS_RECORD, ITEM_SUM_LENGTH, ITEM_KNOWN_LENGTH };
        const pf_closure *closure = t->view->closure;
        pf_cache *cache = t->view->cache;
        size_t n = closure->n_items, n_needed = 0, next = 0;
        _cleanup_free_ uint8_t (*ids)[32] = malloc(MAX(n, (size_t) 1) * 32);
        _cleanup_free_ uint64_t *lengths = malloc(MAX(n, (size_t) 1) * sizeof(uint64_t));
        _cleanup_free_ uint8_t *kind = malloc(MAX(n, (size_t) 1));
        _cleanup_free_ pf_closure_item *needed = calloc(MAX(n, (size_t) 1), sizeof(*needed));
        pf_walk_batch *batch = NULL;
        int r;

        if (!ids || !lengths || !kind || !needed)
                return -ENOMEM;
        /* Arrays by position in the pack; K is the item at position I. */
        for (size_t i = 0; i < n; i++) {
                const pf_closure_item *item = &closure->items[t->order ? t->order[i] : i];
                if (t->data->gnu)
                        tar_item_identity_gnu(item, ids[i]);
                else
                        tar_item_identity(item, ids[i]);
                if (!t->want || t->want(t->want_userdata, ids[i]))
                        /* Recorded as it goes, for the next sizing plan (pf_packs_size()). */
                        kind[i] = length_lookup(cache, item, ids[i], &lengths[i]) > 0 ? ITEM_MEMBERS
                                                                                      : ITEM_MEMBERS_RECORD;
                else if (length_lookup(cache, item, ids[i], &lengths[i]) > 0)
                        kind[i] = ITEM_KNOWN_LENGTH;
                else
                        kind[i] = ITEM_SUM_LENGTH;
                if (kind[i] != ITEM_KNOWN_LENGTH)
                        needed[n_needed++] = *item;
        }

        r = pf_walk_batch_new(cache, needed, n_needed, &batch);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                size_t k = t->order ? t->order[i] : i;
                bool walked = false;

                if (t->around_item) {
                        r = t->around_item(t, k, false, 0);
                        if (r < 0)
                                break;
                }
                uint64_t start = pf_plan_builder_size(t->builder);
                r = pf_plan_begin_segment(t->builder, ids[i]);
                if (r < 0)
                        break;
                switch (kind[i]) {
                case ITEM_KNOWN_LENGTH:
                        r = pf_plan_add_zero(t->builder, lengths[i]);
                        break;
                case ITEM_SUM_LENGTH: {
                        member_length m = { .gnu = t->data->gnu };
                        r = pf_walk_batch_item(batch, next++, add_member_length, &m, &walked);
                        lengths[i] = m.length;
                        if (r >= 0) {
                                length_record(cache, &closure->items[k], ids[i], lengths[i]);
                                r = pf_plan_add_zero(t->builder, lengths[i]);
                        }
                        break;
                }
                default: {
                        r = pf_walk_batch_item(batch, next++, on_store_entry, t, &walked);
                        if (r >= 0 && kind[i] == ITEM_MEMBERS_RECORD)
                                length_record(cache, &closure->items[k], ids[i],
                                              pf_plan_builder_size(t->builder) - start);
                        break;
                }
                }
                t->n_walked += r >= 0 && walked;
                if (r >= 0 && t->around_item) {
                        uint64_t length = pf_plan_builder_size(t->builder) - start;
                        /* The item's framing is not the item's: a segment identified by its bytes. */
                        r = pf_plan_begin_segment(t->builder, NULL);
                        if (r >= 0)
                                r = t->around_item(t, k, true, length);
                }
        }
        pf_walk_batch_free(batch);
        return r < 0 ? r : pf_plan_begin_segment(t->builder, NULL);
}

int tar_plan_extras(tar_planner *t, const extra_node *n, size_t path_len) {
        int r;

        if (n->name) {
                size_t len = strlen(n->name);
                if (path_len + 1 + len + 2 >= sizeof(t->path))
                        return -ENAMETOOLONG;
                t->path[path_len] = '/';
                memcpy(t->path + path_len + 1, n->name, len + 1);
                path_len += 1 + len;
        }
        if (S_ISLNK(n->mode) || S_ISREG(n->mode)) {
                r = tar_add_member(t, t->path, n->link, n->mode, n->size, NULL, 0, n->data);
                return MIN(r, 0);
        }

        /* Directories: "./" for the root, "./a/b/" below it. */
        t->path[path_len] = '/';
        t->path[path_len + 1] = 0;
        r = tar_add_member(t, t->path, NULL, n->mode, 0, NULL, 0, NULL);
        t->path[path_len] = 0;
        if (r < 0)
                return r;

        if (n->is_store)
                return t->no_items ? 0 : tar_plan_items(t);
        for (size_t i = 0; i < n->n_children; i++) {
                r = tar_plan_extras(t, n->children[i], path_len);
                t->path[path_len] = 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

static int tar_plan_sparse(const pf_format *self, const pf_view *view,
                           bool (*want)(void *userdata, const uint8_t identity[32]), void *userdata,
                           pf_plan **ret) {
        tar_planner t = { .view = view, .want = want, .want_userdata = userdata };
        extra_node *extras = NULL;
        int r;

        r = tar_extras_build(view, &extras);
        if (r < 0)
                return r;
        t.data = calloc(1, sizeof(*t.data));
        r = t.data ? pf_plan_builder_new(&t.builder) : -ENOMEM;
        if (r < 0)
                goto fail;
        t.path[0] = '.';
        t.path[1] = 0;
        r = tar_plan_extras(&t, extras, 1);
        if (r < 0)
                goto fail;
        /* End of archive: two zero blocks. */
        r = pf_plan_add_zero(t.builder, 2 * TAR_BLOCK);
        if (r < 0)
                goto fail;
        tar_extras_free(extras);
        if (view->cache && t.n_walked == view->closure->n_items)
                log_info("%s/%s: walked its %zu store items", view->name, self->file_name, t.n_walked);
        else if (view->cache && t.n_walked > 0)
                log_info("%s/%s: walked %zu of %zu store items, the others' member lists or lengths from the cache",
                         view->name, self->file_name, t.n_walked, view->closure->n_items);
        return pf_plan_builder_finish(t.builder, tar_generate, t.data, tar_plan_data_free, ret);
fail:
        tar_extras_free(extras);
        pf_plan_builder_free(t.builder);
        tar_plan_data_free(t.data);
        return r;
}

static int tar_plan(const pf_format *self, const pf_view *view, pf_plan **ret) {
        return tar_plan_sparse(self, view, NULL, NULL, ret);
}

const pf_format pf_format_tar = {
        .file_name = "pack.tar",
        .plan = tar_plan,
        .plan_sparse = tar_plan_sparse,
};

const pf_format pf_format_tar_gz = PF_COMPRESSED_FORMAT("pack.tar.gz", pf_format_tar, pf_codec_gzip);
const pf_format pf_format_tar_xz = PF_COMPRESSED_FORMAT("pack.tar.xz", pf_format_tar, pf_codec_xz);
const pf_format pf_format_tar_zst = PF_COMPRESSED_FORMAT("pack.tar.zst", pf_format_tar, pf_codec_zstd);
