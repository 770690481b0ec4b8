/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The FUSE low-level filesystem: the SPEC layout over pf_packs.
 *
 *   /                         profiles root entries and ".store"
 *   /<dir>/...                directories of the profiles root
 *   /<profile>/               a view: one file per format
 *   /.store/<hash>-<name>/    a view over one store item
 *
 * Inodes are interned by key and freed when the kernel forgets them (see
 * struct node); their numbers are never reused. A pack file's key includes the
 * store item its view resolved to, so a profile switched to a new generation
 * gets a new inode: an inode's bytes never change, which is what makes
 * keep_cache safe, and an open file keeps the plan (snapshot) it was opened on.
 * An open file's handle holds that plan, not its node: read and release never
 * look a node up, and getattr on an open file takes its own reference.
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mount.h"
#include "prepare.h"
#include "packfs/background.h"
#include "packfs/hugemem.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/profiles.h"
#include "packfs/storepath.h"

#define ATTR_TIMEOUT 1.0
#define READ_CHUNK (1024 * 1024)
/* Workers kept (idle) and at most: a request waiting for an encoding holds a
 * worker, and libfuse starts no new reader once MAX_WORKERS are busy, so the
 * maximum leaves room for INTERRUPTs and other requests behind many waiters. */
#define IDLE_WORKERS 16
#define MAX_WORKERS 64
#define TABLE_MIN_BUCKETS 256
/* Below this many nodes at its peak, a shrinking table is not worth a trim. */
#define TRIM_MIN_PEAK 1024

enum node_kind {
        NODE_ROOT,
        NODE_PROFILE_DIR,       /* a directory of the profiles root */
        NODE_STORE_DIR,         /* ".store" */
        NODE_VIEW,              /* a profile link or a .store item */
        NODE_FILE,              /* a pack in a view */
        NODE_TREE_DIR,          /* a directory of a format's tree (oci/ and below) */
        NODE_TREE_FILE,         /* a file of a format's tree */
};

/* The two indexes over the nodes: by key, to intern; by ino, for requests. */
enum { BY_KEY, BY_INO, N_TABLES };

struct fs;

/*
 * One inode the kernel may know of.
 *
 * Identity (ino, kind, path, item, format) is set before the node is put in
 * the tables and never changes: whoever holds a reference reads it unlocked.
 *
 * Lifetime: nlookup is the kernel's count (one per successful
 * fuse_reply_entry(), given back by FORGET); refs counts the request handlers
 * using the node right now (get_node() and intern_node() take one, node_put()
 * drops it). When both are 0 the node leaves the tables and is freed, by
 * whichever of FORGET or node_put() brought the second to 0. The root is never
 * freed. nlookup, refs and next[] are guarded by fs.lock.
 */
typedef struct node {
        fuse_ino_t ino;
        enum node_kind kind;
        const char *path;       /* mount-relative: "" for the root, "demo", "demo/pack.tar"; in key[] */
        const char *item;       /* NODE_FILE, NODE_TREE_*: the store item its view resolved to; in key[] */
        const pf_format *format;/* NODE_FILE, NODE_TREE_* */
        size_t view_len;        /* NODE_TREE_*: path[0, view_len) is the view */
        struct fs *fs;          /* the table it is in, for node_put() */
        uint64_t nlookup;       /* fs.lock */
        unsigned refs;          /* fs.lock */
        struct node *next[N_TABLES];    /* fs.lock: chains of fs.buckets[] */
        char key[];             /* path and item, each NUL-terminated: one allocation */
} node;

typedef struct fs {
        pf_packs *packs;
        const char *mountpoint; /* absolute */
        pthread_once_t readahead_once;
        uid_t uid;
        gid_t gid;
        int ready_fd;           /* daemon: tells the waiting parent INIT went through; -1 after */
        unsigned max_read;      /* -o max_read=N, which op_init must repeat to libfuse */
        struct fuse_session *se;
        bool list_all;          /* --list all: views list files not encoded yet too */
        /* Guards the node tables and counters below, each node's nlookup, refs
         * and next[] (see struct node), and stopping. Held for table work
         * only: never across a reply or a call into pf_packs. */
        pthread_mutex_t lock;
        node **buckets[N_TABLES];       /* chained hash tables, n_buckets each */
        size_t n_buckets;       /* a power of two; doubled past one node a bucket */
        /* Never reused, so an ino the kernel still holds (a FORGET in flight,
         * a stale handle) never names another node. */
        fuse_ino_t next_ino;
        size_t n_nodes;
        size_t peak;            /* the most nodes there ever were */
        size_t trim_peak;       /* the most nodes since memory was last given back */
        bool stopping;          /* unmounted: the SIGUSR1 thread ends */
        pthread_t usr1_thread;  /* owned by pf_mount_run, which joins it */
        bool usr1_running;
        /* Surveys and `prepare` (prepare.h): started by op_init, stopped by
         * pf_mount_run once the session loop has ended. */
        pf_prepare *prepare;
} fs;

static void raise_readahead(void);

static fs *fs_of(fuse_req_t req) {
        fs *f = fuse_req_userdata(req);
        pthread_once(&f->readahead_once, raise_readahead);
        return f;
}

/* The key's hash, mixed (murmur3's finalizer) so that its low bits, the
 * bucket, depend on every character. */
static uint64_t key_hash(enum node_kind kind, const char *path, const char *item) {
        uint64_t h = 5381 + kind;
        for (const char *p = path; *p; p++)
                h = h * 33 + (unsigned char) *p;
        if (item)
                for (const char *p = item; *p; p++)
                        h = h * 33 + (unsigned char) *p;
        h ^= h >> 33;
        h *= UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 33;
        return h;
}

static uint64_t node_hash(const node *n, int table) {
        /* Inos are consecutive: they spread over the buckets as they are. */
        return table == BY_KEY ? key_hash(n->kind, n->path, n->item) : n->ino;
}

static node **bucket_locked(fs *f, int table, uint64_t h) {
        return &f->buckets[table][h & (f->n_buckets - 1)];
}

/* Moves every node into N_BUCKETS buckets. On ENOMEM the tables stay as they
 * were: longer chains, nothing lost. */
static void tables_resize_locked(fs *f, size_t n_buckets) {
        node **b[N_TABLES] = {};

        for (int t = 0; t < N_TABLES; t++) {
                b[t] = calloc(n_buckets, sizeof(node *));
                if (!b[t]) {
                        for (int u = 0; u < t; u++)
                                free(b[u]);
                        return;
                }
        }
        for (int t = 0; t < N_TABLES; t++) {
                for (size_t i = 0; i < f->n_buckets; i++)
                        for (node *n = f->buckets[t][i], *next; n; n = next) {
                                node **d = &b[t][node_hash(n, t) & (n_buckets - 1)];
                                next = n->next[t];
                                n->next[t] = *d;
                                *d = n;
                        }
                free(f->buckets[t]);
                f->buckets[t] = b[t];
        }
        f->n_buckets = n_buckets;
}

static int tables_init(fs *f) {
        for (int t = 0; t < N_TABLES; t++) {
                f->buckets[t] = calloc(TABLE_MIN_BUCKETS, sizeof(node *));
                if (!f->buckets[t])
                        return -ENOMEM;
        }
        f->n_buckets = TABLE_MIN_BUCKETS;
        f->next_ino = FUSE_ROOT_ID;
        return 0;
}

/* Frees every node, whatever its counts: the mount is gone. */
static void tables_free(fs *f) {
        if (f->buckets[BY_INO])
                for (size_t i = 0; i < f->n_buckets; i++)
                        for (node *n = f->buckets[BY_INO][i], *next; n; n = next) {
                                next = n->next[BY_INO];
                                free(n);
                        }
        for (int t = 0; t < N_TABLES; t++)
                free(f->buckets[t]);
}

static node *find_by_key_locked(fs *f, uint64_t h, enum node_kind kind, const char *path, const char *item) {
        for (node *n = *bucket_locked(f, BY_KEY, h); n; n = n->next[BY_KEY])
                if (n->kind == kind && !strcmp(n->path, path) && (!item || !strcmp(n->item, item)))
                        return n;
        return NULL;
}

static node *find_by_ino_locked(fs *f, fuse_ino_t ino) {
        for (node *n = *bucket_locked(f, BY_INO, ino); n; n = n->next[BY_INO])
                if (n->ino == ino)
                        return n;
        return NULL;
}

/* A new node, in no table yet; NULL on ENOMEM. Freed with free(). */
static node *node_new(fs *f, enum node_kind kind, const char *path, const char *item, const pf_format *format,
                      size_t view_len) {
        size_t lp = strlen(path) + 1, li = item ? strlen(item) + 1 : 0;
        node *n = calloc(1, sizeof(*n) + lp + li);

        if (!n)
                return NULL;
        n->kind = kind;
        n->format = format;
        n->view_len = view_len;
        n->fs = f;
        n->path = memcpy(n->key, path, lp);
        n->item = item ? memcpy(n->key + lp, item, li) : NULL;
        return n;
}

/* Numbers N, whose key hashes to H, and puts it in both tables. */
static void node_insert_locked(fs *f, node *n, uint64_t h) {
        n->ino = f->next_ino++;
        for (int t = 0; t < N_TABLES; t++) {
                node **b = bucket_locked(f, t, t == BY_KEY ? h : n->ino);
                n->next[t] = *b;
                *b = n;
        }
        f->n_nodes++;
        f->peak = MAX(f->peak, f->n_nodes);
        f->trim_peak = MAX(f->trim_peak, f->n_nodes);
        if (f->n_nodes > f->n_buckets)
                tables_resize_locked(f, f->n_buckets * 2);
}

/* Returns the node for (KIND, PATH, ITEM), creating it, with a reference for
 * the caller (node_put() it); NULL on ENOMEM. */
static node *intern_node(fs *f, enum node_kind kind, const char *path, const char *item, const pf_format *format,
                         size_t view_len) {
        uint64_t h = key_hash(kind, path, item);
        node *n;

        pthread_mutex_lock(&f->lock);
        n = find_by_key_locked(f, h, kind, path, item);
        if (!n) {
                n = node_new(f, kind, path, item, format, view_len);
                if (!n)
                        goto out;
                node_insert_locked(f, n, h);
        }
        n->refs++;
out:
        pthread_mutex_unlock(&f->lock);
        return n;
}

/* The tables, holding the root: FUSE_ROOT_ID, known to the kernel without a
 * lookup (its count there starts at 1), and never freed. Before any thread. */
static int root_init(fs *f) {
        node *root;
        int r = tables_init(f);

        if (r < 0)
                return r;
        root = node_new(f, NODE_ROOT, "", NULL, NULL, 0);
        if (!root)
                return -ENOMEM;
        node_insert_locked(f, root, key_hash(NODE_ROOT, "", NULL));
        root->nlookup = 1;
        assert(root->ino == FUSE_ROOT_ID);
        return 0;
}

/* The node numbered INO, with a reference for the caller (node_put() it); NULL
 * for an ino the kernel was never given or has forgotten. */
static node *get_node(fs *f, fuse_ino_t ino) {
        node *n;

        pthread_mutex_lock(&f->lock);
        n = find_by_ino_locked(f, ino);
        if (n)
                n->refs++;
        pthread_mutex_unlock(&f->lock);
        return n;
}

/* If nothing uses N any more (no kernel lookup, no handler), takes it out of
 * the tables and onto *DEAD (chained through next[BY_KEY]), to be freed once
 * the lock is dropped. */
static void node_release_locked(fs *f, node *n, node **dead) {
        node **p;

        if (n->nlookup > 0 || n->refs > 0 || n->ino == FUSE_ROOT_ID)
                return;
        for (int t = 0; t < N_TABLES; t++) {
                for (p = bucket_locked(f, t, node_hash(n, t)); *p != n; p = &(*p)->next[t])
                        ;
                *p = n->next[t];
        }
        f->n_nodes--;
        n->next[BY_KEY] = *dead;
        *dead = n;
}

/* True, once, when the table has fallen below half of its peak since the
 * last time: the hash tables are shrunk to fit now, and the caller hands the
 * freed heap back to the system (malloc_trim()) once the lock is dropped.
 * glibc would otherwise keep the freed nodes' pages in its arenas for good: a
 * mount that once looked at 50,000 paths would keep their megabytes. */
static bool trim_due_locked(fs *f) {
        size_t n_buckets = TABLE_MIN_BUCKETS;

        if (f->trim_peak < TRIM_MIN_PEAK || f->n_nodes >= f->trim_peak / 2)
                return false;
        f->trim_peak = f->n_nodes;
        while (n_buckets < f->n_nodes)
                n_buckets *= 2;
        if (n_buckets < f->n_buckets)
                tables_resize_locked(f, n_buckets);
        return true;
}

/* Drops the lock taken by the caller and frees DEAD, the nodes
 * node_release_locked() took out while it was held; then gives memory back if
 * the table shrank enough. */
static void unlock_and_free(fs *f, node *dead) {
        bool trim = dead && trim_due_locked(f);

        pthread_mutex_unlock(&f->lock);
        while (dead) {
                node *next = dead->next[BY_KEY];
                free(dead);
                dead = next;
        }
        /* Outside the lock: it walks every malloc arena. */
        if (trim)
                malloc_trim(0);
}

/* Ends a handler's use of N (from get_node() or intern_node()); NULL is fine. */
static void node_put(node *n) {
        node *dead = NULL;
        fs *f;

        if (!n)
                return;
        f = n->fs;
        pthread_mutex_lock(&f->lock);
        assert(n->refs > 0);
        n->refs--;
        node_release_locked(f, n, &dead);
        unlock_and_free(f, dead);
}

static void node_putp(node **n) {
        node_put(*n);
}

/* The kernel got N in a lookup reply: counted before the reply goes, since a
 * FORGET for it may come the moment it has. */
static void node_lookup_count(node *n) {
        pthread_mutex_lock(&n->fs->lock);
        n->nlookup++;
        pthread_mutex_unlock(&n->fs->lock);
}

/* Takes NLOOKUP from INO's lookup count and puts it on *DEAD if that was its
 * last use. */
static void forget_locked(fs *f, fuse_ino_t ino, uint64_t nlookup, node **dead) {
        node *n = find_by_ino_locked(f, ino);

        if (!n)
                return;
        if (nlookup > n->nlookup) {
                /* Only the root may: the kernel's count of it starts at 1 without a
                 * lookup. Anything else is our bug; do not underflow over it. */
                if (n->ino != FUSE_ROOT_ID)
                        log_warning("inode %" PRIu64 " (%s): the kernel forgets more than it looked up (%" PRIu64
                                    " > %" PRIu64 ")", (uint64_t) ino, n->path, nlookup, n->nlookup);
                nlookup = n->nlookup;
        }
        n->nlookup -= nlookup;
        node_release_locked(f, n, dead);
}

/* Takes back a lookup count N's handler added for a reply that did not go. */
static void node_forget(node *n, uint64_t nlookup) {
        node *dead = NULL;
        fs *f = n->fs;

        pthread_mutex_lock(&f->lock);
        forget_locked(f, n->ino, nlookup, &dead);
        unlock_and_free(f, dead);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
        fs *f = fs_of(req);
        node *dead = NULL;

        pthread_mutex_lock(&f->lock);
        forget_locked(f, ino, nlookup, &dead);
        unlock_and_free(f, dead);
        fuse_reply_none(req);
}

/* The kernel batches FORGETs when it drops many inodes at once (drop_caches,
 * memory pressure): one lock for the batch. */
static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
        fs *f = fs_of(req);
        node *dead = NULL;

        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < count; i++)
                forget_locked(f, forgets[i].ino, forgets[i].nlookup, &dead);
        unlock_and_free(f, dead);
        fuse_reply_none(req);
}

static void fill_dir_attr(fs *f, fuse_ino_t ino, struct stat *st) {
        *st = (struct stat) {
                .st_ino = ino,
                .st_mode = S_IFDIR | 0555,
                .st_nlink = 2,
                .st_uid = f->uid,
                .st_gid = f->gid,
        };
        st->st_mtim.tv_sec = 1;
        st->st_ctim.tv_sec = 1;
        st->st_atim.tv_sec = 1;
}

static bool is_tree_node(const node *n) {
        return n->kind == NODE_TREE_DIR || n->kind == NODE_TREE_FILE;
}

/* The view path of a file node's (or a tree node's) view. */
static int view_of_file(const node *n, char **ret) {
        const char *slash = strrchr(n->path, '/');
        *ret = strndup(n->path, is_tree_node(n) ? n->view_len : (size_t) (slash - n->path));
        return *ret ? 0 : -ENOMEM;
}

/* PATH below tree node N's format directory: "" for the directory itself. */
static const char *tree_path(const char *path, const node *n) {
        const char *p = path + n->view_len + 1 + strlen(n->format->file_name);
        return *p == '/' ? p + 1 : p;
}

/* A request's wait for a plan, ended by the kernel's INTERRUPT. */
typedef struct request_wait {
        pf_packs *packs;
        pf_packs_waiter waiter;
} request_wait;

/* Runs in the thread that read the INTERRUPT (or in fuse_req_interrupt_func()
 * itself if it came first), under libfuse's lock of the request. */
static void on_interrupt(fuse_req_t req, void *userdata) {
        request_wait *w = userdata;
        pf_packs_interrupt(w->packs, &w->waiter);
}

static int file_access(fs *f, const node *n, pf_access *ret);

/* Whether REQ's caller may read the packs ACCESS describes (as the kernel
 * would judge the mode, owner and group reported for them). */
static bool caller_may_read(fuse_req_t req, const pf_access *access) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        gid_t groups[64];
        int n;

        if (access->open || ctx->uid == 0)
                return true;
        if (ctx->uid == access->uid)
                return access->mode & 0400;
        if (!(access->mode & 0040))
                return false;
        if (ctx->gid == access->gid)
                return true;
        n = fuse_req_getgroups(req, (int) ELEMENTSOF(groups), groups);
        for (int i = 0; i < n && i < (int) ELEMENTSOF(groups); i++)
                if (groups[i] == access->gid)
                        return true;
        return false;
}

/* A pack whose size needs an encoding is encoded only for those who may read
 * it: anyone may stat it, but others must neither make packfs encode it nor
 * learn its compressed size (which tells something of what it holds). */
static int may_encode(fuse_req_t req, fs *f, const node *n) {
        pf_access access;
        int r;

        if (!n->format->cached)
                return 0;
        r = file_access(f, n, &access);
        if (r < 0)
                return r;
        if (caller_may_read(req, &access))
                return 0;
        log_info("%s: not encoded for uid %u, who may not read it", n->path, (unsigned) fuse_req_ctx(req)->uid);
        return -EACCES;
}

/* Unmounted, or told to exit (SIGTERM): waits end, so the workers can. */
static bool session_gone(void *userdata) {
        return fuse_session_exited(userdata);
}

/* The plan of N's pack for REQ, or with RET NULL only its size (*RET_SIZE). A
 * wait for an encoding returns -EINTR as soon as the kernel interrupts REQ
 * (its caller got a signal: Ctrl-C); the encoding goes on for the next reader. */
static int file_plan(fuse_req_t req, fs *f, const node *n, pf_plan **ret, uint64_t *ret_size) {
        _cleanup_free_ char *view = NULL;
        request_wait w = { .packs = f->packs,
                           .waiter = { .gone = session_gone, .userdata = f->se } };
        int r = view_of_file(n, &view);

        if (r < 0)
                return r;
        r = may_encode(req, f, n);
        if (r < 0)
                return r;
        pf_background_note_foreground();
        fuse_req_interrupt_func(req, on_interrupt, &w);
        if (ret)
                r = pf_packs_plan(f->packs, view, n->item, n->format, &w.waiter, ret);
        else
                r = pf_packs_size(f->packs, view, n->item, n->format, &w.waiter, ret_size);
        /* After this, libfuse calls on_interrupt no more (it holds the
         * request's lock around both): W may go. */
        fuse_req_interrupt_func(req, NULL, NULL);
        return r;
}

/* The plan of tree node N's format (its tree is the plan's, format->tree()). */
static int tree_plan(fuse_req_t req, fs *f, const node *n, pf_plan **ret) {
        return file_plan(req, f, n, ret, NULL);
}

/* The plan of tree file N (one reference). */
static int tree_file_plan(fuse_req_t req, fs *f, const node *n, pf_plan **ret) {
        const pf_tree_file *file;
        pf_plan *plan = NULL;
        int r = tree_plan(req, f, n, &plan);

        if (r < 0)
                return r;
        file = pf_tree_find(n->format->tree(plan), tree_path(n->path, n));
        if (file)
                *ret = pf_plan_ref(file->plan);
        pf_plan_unref(plan);
        return file ? 0 : -ENOENT;
}

/* The errno a failed lookup, getattr or open replies with. */
static int reply_errno(int r) {
        switch (r) {
        case -ENOENT:
        case -ENOMEM:
        case -EINTR:
        case -EACCES:
                return -r;
        default:
                return EIO;
        }
}

static int file_access(fs *f, const node *n, pf_access *ret) {
        _cleanup_free_ char *view = NULL;
        int r = view_of_file(n, &view);
        if (r < 0)
                return r;
        return pf_packs_access(f->packs, view, n->item, ret);
}

/* A pack file of SIZE bytes. Its mode and owner say who may read it: those
 * who may read everything it holds from the store (access.h), which the kernel
 * enforces with allow_other (default_permissions). `closure` holds only store
 * paths, which the database tells anyone: 0444. */
static void fill_file_attr(fs *f, const node *n, uint64_t size, struct stat *st) {
        pf_access access = { .open = true, .mode = 0444 };

        if (n->format != &pf_format_closure && file_access(f, n, &access) < 0)
                /* Not known (logged; e.g. an open file's item collected since):
                 * root only, rather than fail a stat that needs no store. */
                access = (pf_access) { .mode = 0400 };
        fill_dir_attr(f, n->ino, st);
        st->st_mode = S_IFREG | access.mode;
        if (!access.open) {
                st->st_uid = access.uid;
                st->st_gid = access.gid;
        }
        st->st_nlink = 1;
        st->st_size = (off_t) size;
        st->st_blocks = (blkcnt_t) ((size + 511) / 512);
        st->st_blksize = READ_CHUNK;
}

static int node_attr(fuse_req_t req, fs *f, const node *n, struct stat *st) {
        uint64_t size;
        int r;

        if (n->kind == NODE_TREE_FILE) {
                pf_plan *plan = NULL;
                r = tree_file_plan(req, f, n, &plan);
                if (r < 0)
                        return r;
                fill_file_attr(f, n, pf_plan_size(plan), st);
                pf_plan_unref(plan);
                return 0;
        }
        if (n->kind != NODE_FILE) {
                fill_dir_attr(f, n->ino, st);
                return 0;
        }
        /* The size comes from metadata (or the cache), never file contents. */
        r = file_plan(req, f, n, NULL, &size);
        if (r < 0)
                return r;
        fill_file_attr(f, n, size, st);
        return 0;
}

static char *join(const char *dir, const char *name) {
        char *s;
        if (asprintf(&s, "%s%s%s", dir, *dir ? "/" : "", name) < 0)
                return NULL;
        return s;
}

/* Finds or creates the node for NAME in directory PARENT. */
static int lookup_child(fuse_req_t req, fs *f, const node *parent, const char *name, node **ret) {
        _cleanup_free_ char *path = NULL;
        struct stat st;
        node *n;
        int r;

        if (!strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
                return -ENOENT;
        path = join(parent->path, name);
        if (!path)
                return -ENOMEM;

        switch (parent->kind) {
        case NODE_ROOT:
                if (!strcmp(name, PF_STORE_VIEW_DIR)) {
                        n = intern_node(f, NODE_STORE_DIR, path, NULL, NULL, 0);
                        break;
                }
                _fallthrough_;
        case NODE_PROFILE_DIR: {
                const char *root = pf_packs_profiles_root(f->packs);
                _cleanup_free_ char *full = NULL;
                if (!root || name[0] == '.')
                        return -ENOENT;
                full = join(root, path);
                if (!full)
                        return -ENOMEM;
                if (lstat(full, &st) < 0)
                        return -ENOENT;
                if (S_ISDIR(st.st_mode))
                        n = intern_node(f, NODE_PROFILE_DIR, path, NULL, NULL, 0);
                else if (S_ISLNK(st.st_mode)) {
                        _cleanup_free_ char *item = NULL;
                        r = pf_packs_resolve_view(f->packs, path, &item);
                        if (r < 0)
                                return -ENOENT;
                        n = intern_node(f, NODE_VIEW, path, NULL, NULL, 0);
                } else
                        return -ENOENT;
                break;
        }
        case NODE_STORE_DIR: {
                _cleanup_free_ char *item = NULL;
                r = pf_packs_resolve_view(f->packs, path, &item);
                if (r < 0)
                        return r == -ENOENT ? r : -EIO;
                n = intern_node(f, NODE_VIEW, path, NULL, NULL, 0);
                break;
        }
        case NODE_VIEW: {
                const pf_format *format = pf_format_find(name);
                _cleanup_free_ char *item = NULL;
                if (!format)
                        return -ENOENT;
                r = pf_packs_resolve_view(f->packs, parent->path, &item);
                if (r < 0)
                        return r == -ENOENT ? r : -EIO;
                if (format->tree)
                        n = intern_node(f, NODE_TREE_DIR, path, item, format, strlen(parent->path));
                else
                        n = intern_node(f, NODE_FILE, path, item, format, 0);
                break;
        }
        case NODE_TREE_DIR: {
                pf_plan *plan = NULL;
                r = tree_plan(req, f, parent, &plan);
                if (r < 0)
                        return r;
                const pf_tree *tree = parent->format->tree(plan);
                const char *sub = tree_path(path, parent);
                if (pf_tree_find(tree, sub))
                        n = intern_node(f, NODE_TREE_FILE, path, parent->item, parent->format, parent->view_len);
                else if (pf_tree_is_dir(tree, sub))
                        n = intern_node(f, NODE_TREE_DIR, path, parent->item, parent->format, parent->view_len);
                else
                        r = -ENOENT;
                pf_plan_unref(plan);
                if (r < 0)
                        return r;
                break;
        }
        default:
                return -ENOTDIR;
        }
        if (!n)
                return -ENOMEM;
        *ret = n;
        return 0;
}

/* What a plan learnt (member lists, lengths, who may read) is kept in the
 * cache's pending records until this: after the reply, so the caller does not
 * wait for the index to be written. */
static void write_learnt(fs *f) {
        (void) pf_cache_flush_records(pf_packs_cache(f->packs));
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
        fs *f = fs_of(req);
        struct fuse_entry_param e = { .attr_timeout = ATTR_TIMEOUT, .entry_timeout = ATTR_TIMEOUT };
        _cleanup_(node_putp) node *p = get_node(f, parent), *n = NULL;
        int r;

        if (!p) {
                fuse_reply_err(req, ENOENT);
                return;
        }
        r = lookup_child(req, f, p, name, &n);
        if (r >= 0)
                r = node_attr(req, f, n, &e.attr);
        if (r < 0) {
                fuse_reply_err(req, reply_errno(r));
                return;
        }
        e.ino = n->ino;
        node_lookup_count(n);
        if (fuse_reply_entry(req, &e) != 0)
                node_forget(n, 1); /* the kernel did not take it: the request was interrupted */
        write_learnt(f);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        fs *f = fs_of(req);
        _cleanup_(node_putp) node *n = get_node(f, ino);
        struct stat st;
        int r;

        if (!n) {
                fuse_reply_err(req, ENOENT);
                return;
        }
        /* An open file answers from its own plan (the snapshot it reads). */
        if (fi && fi->fh && (n->kind == NODE_FILE || n->kind == NODE_TREE_FILE)) {
                fill_file_attr(f, n, pf_plan_size((pf_plan *) (uintptr_t) fi->fh), &st);
                fuse_reply_attr(req, &st, ATTR_TIMEOUT);
                return;
        }
        r = node_attr(req, f, n, &st);
        if (r < 0)
                fuse_reply_err(req, reply_errno(r));
        else
                fuse_reply_attr(req, &st, ATTR_TIMEOUT);
        write_learnt(f);
}

/* A directory listing, built whole at opendir and served in slices.
 * Reference counted (atomically): the kernel can send RELEASEDIR as soon as
 * our READDIR reply reached it, while the thread that wrote that reply is
 * still inside fuse_reply_buf(). */
typedef struct dir_buf {
        char *data;
        size_t size, allocated;
        unsigned refs;
} dir_buf;

static void dir_buf_unref(dir_buf *b) {
        if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) > 0)
                return;
        free(b->data);
        free(b);
}

static int dir_add(fuse_req_t req, dir_buf *b, const char *name, mode_t mode) {
        /* readdir(3) skips entries whose d_ino is 0; the real inode comes with lookup. */
        struct stat st = { .st_mode = mode, .st_ino = 1 + b->size };
        size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);

        if (b->size + need > b->allocated) {
                size_t na = MAX(b->allocated * 2, b->size + need);
                char *d = realloc(b->data, na);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->allocated = na;
        }
        fuse_add_direntry(req, b->data + b->size, need, name, &st, (off_t) (b->size + need));
        b->size += need;
        return 0;
}

typedef struct list_request {
        fuse_req_t req;
        dir_buf *b;
} list_request;

static int list_tree_entry(void *userdata, const char *name, bool is_dir) {
        list_request *lr = userdata;
        return dir_add(lr->req, lr->b, name, is_dir ? S_IFDIR : S_IFREG);
}

static int list_dir(fuse_req_t req, fs *f, const node *n, dir_buf *b) {
        int r;

        r = dir_add(req, b, ".", S_IFDIR);
        if (r >= 0)
                r = dir_add(req, b, "..", S_IFDIR);
        if (r < 0)
                return r;

        switch (n->kind) {
        case NODE_ROOT:
                r = dir_add(req, b, PF_STORE_VIEW_DIR, S_IFDIR);
                if (r < 0)
                        return r;
                _fallthrough_;
        case NODE_PROFILE_DIR: {
                const char *root = pf_packs_profiles_root(f->packs);
                pf_profile_entry *entries = NULL;
                size_t n_entries = 0;
                if (!root)
                        return 0;
                r = pf_profile_list(root, n->path, &entries, &n_entries);
                if (r < 0)
                        return r == -ENOENT ? 0 : r;
                for (size_t i = 0; i < n_entries && r >= 0; i++) {
                        _cleanup_free_ char *path = join(n->path, entries[i].name);
                        _cleanup_free_ char *item = NULL;
                        if (!path) {
                                r = -ENOMEM;
                                break;
                        }
                        /* List only links that resolve to a valid item: the others
                         * would fail on lookup anyway. */
                        if (entries[i].kind == PF_PROFILE_ENTRY_LINK &&
                            pf_packs_resolve_view(f->packs, path, &item) < 0)
                                continue;
                        r = dir_add(req, b, entries[i].name, S_IFDIR);
                }
                pf_profile_entries_free(entries, n_entries);
                return r;
        }
        case NODE_STORE_DIR: {
                char **paths = NULL;
                size_t n_paths = 0;
                r = pf_store_all_paths(pf_packs_store(f->packs), &paths, &n_paths);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n_paths && r >= 0; i++)
                        r = dir_add(req, b, strrchr(paths[i], '/') + 1, S_IFDIR);
                pf_strv_free(paths);
                return r;
        }
        case NODE_VIEW: {
                size_t n_formats;
                const pf_format *const *formats = pf_formats(&n_formats);
                _cleanup_free_ char *item = NULL;
                /* A listing starts no encoding (SPEC guarantee 2): with --list
                 * ready, a file whose size needs one is listed once it is in
                 * the cache. A view that does not resolve lists what needs no
                 * item. */
                bool resolved = f->list_all || pf_packs_resolve_view(f->packs, n->path, &item) >= 0;
                for (size_t i = 0; i < n_formats && r >= 0; i++) {
                        if (!f->list_all && formats[i]->cached &&
                            (!resolved || pf_packs_ready(f->packs, n->path, item, formats[i]) <= 0))
                                continue;
                        r = dir_add(req, b, formats[i]->file_name, formats[i]->tree ? S_IFDIR : S_IFREG);
                }
                return r;
        }
        case NODE_TREE_DIR: {
                /* A format's directory lists what its tree holds, which may
                 * take its plan (oci/: the layer digests, once). */
                pf_plan *plan = NULL;
                r = tree_plan(req, f, n, &plan);
                if (r < 0)
                        return r;
                list_request lr = { .req = req, .b = b };
                r = pf_tree_list(n->format->tree(plan), tree_path(n->path, n), list_tree_entry, &lr);
                pf_plan_unref(plan);
                return r;
        }
        default:
                return -ENOTDIR;
        }
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        fs *f = fs_of(req);
        _cleanup_(node_putp) node *n = get_node(f, ino);
        dir_buf *b;
        int r;

        if (!n) {
                fuse_reply_err(req, ENOENT);
                return;
        }
        if (n->kind == NODE_FILE || n->kind == NODE_TREE_FILE) {
                fuse_reply_err(req, ENOTDIR);
                return;
        }
        b = calloc(1, sizeof(*b));
        if (!b) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        b->refs = 1;
        r = list_dir(req, f, n, b);
        if (r < 0) {
                dir_buf_unref(b);
                fuse_reply_err(req, -r);
                return;
        }
        fi->fh = (uintptr_t) b;
        if (fuse_reply_open(req, fi) != 0)
                dir_buf_unref(b);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        dir_buf *b = (dir_buf *) (uintptr_t) fi->fh;

        __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
        if ((size_t) off >= b->size)
                fuse_reply_buf(req, NULL, 0);
        else
                fuse_reply_buf(req, b->data + off, MIN(b->size - (size_t) off, size));
        dir_buf_unref(b);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        dir_buf_unref((dir_buf *) (uintptr_t) fi->fh);
        fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        fs *f = fs_of(req);
        _cleanup_(node_putp) node *n = get_node(f, ino);
        pf_plan *plan = NULL;
        int r;

        if (!n || (n->kind != NODE_FILE && n->kind != NODE_TREE_FILE)) {
                fuse_reply_err(req, n ? EISDIR : ENOENT);
                return;
        }
        if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
                fuse_reply_err(req, EROFS);
                return;
        }
        r = n->kind == NODE_TREE_FILE ? tree_file_plan(req, f, n, &plan) : file_plan(req, f, n, &plan, NULL);
        if (r < 0) {
                fuse_reply_err(req, reply_errno(r) == ENOENT ? EIO : reply_errno(r));
                return;
        }
        fi->fh = (uintptr_t) plan;
        fi->keep_cache = 1;
        if (fuse_reply_open(req, fi) != 0)
                pf_plan_unref(plan);
        write_learnt(f);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        pf_plan_unref((pf_plan *) (uintptr_t) fi->fh);
        fuse_reply_err(req, 0);
}

/* Each worker thread replies from one buffer of its own, kept for the thread's
 * life: libfuse 3.14 cannot splice a 1 MiB reply (the pipe would have to exceed
 * fs.pipe-max-size) and falls back to a fresh 1 MiB buffer per reply, which
 * costs a page fault per 4 KiB. pread into a reused buffer + fuse_reply_buf is
 * the same two copies without that. The buffer is in huge pages (hugemem.h):
 * a new mount's workers fault in one page each, not 256. */
static pthread_key_t reply_buffer_key;
static pthread_once_t reply_buffer_once = PTHREAD_ONCE_INIT;

typedef struct reply_buffer {
        size_t size;
        uint8_t *data;
} reply_buffer;

static void reply_buffer_free(void *p) {
        reply_buffer *b = p;

        if (b)
                pf_hugemem_free(b->data);
        free(b);
}

static void reply_buffer_key_init(void) {
        if (pthread_key_create(&reply_buffer_key, reply_buffer_free) != 0)
                abort();
}

static uint8_t *reply_buffer_get(size_t size) {
        reply_buffer *b;

        pthread_once(&reply_buffer_once, reply_buffer_key_init);
        b = pthread_getspecific(reply_buffer_key);
        if (b && b->size >= size)
                return b->data;
        reply_buffer_free(b);
        pthread_setspecific(reply_buffer_key, NULL);
        b = malloc(sizeof(*b));
        if (!b)
                return NULL;
        b->size = MAX(size, (size_t) READ_CHUNK);
        b->data = pf_hugemem_alloc(b->size);
        if (!b->data) {
                free(b);
                return NULL;
        }
        pthread_setspecific(reply_buffer_key, b);
        return b->data;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        const pf_plan *plan = (const pf_plan *) (uintptr_t) fi->fh;
        uint8_t *buf = reply_buffer_get(size);
        ssize_t n;

        if (!buf) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        /* Work done ahead of use pauses while readers read (background.h). */
        pf_background_note_foreground();
        n = pf_plan_pread(plan, buf, size, (uint64_t) off);
        if (n < 0)
                fuse_reply_err(req, n == -ENOMEM ? ENOMEM : EIO);
        else
                fuse_reply_buf(req, (const char *) buf, (size_t) n);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
        fuse_reply_err(req, EROFS);
}

static void daemon_ready(fs *f);

static void op_init(void *userdata, struct fuse_conn_info *conn) {
        fs *f = userdata;

        /* libfuse refuses INIT unless init() asks for the max_read it was given. */
        if (f->max_read)
                conn->max_read = f->max_read;
        daemon_ready(f);
        /* Once the kernel took the mount, and the daemon logs where it
         * should. Work ahead is an extra: the mount serves without it. */
        if (!f->prepare)
                (void) pf_prepare_start(f->packs, &f->prepare);
        conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
        conn->max_readahead = conn->max_readahead ? conn->max_readahead : READ_CHUNK;
}

static const struct fuse_lowlevel_ops ops = {
        .init = op_init,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .releasedir = op_releasedir,
        .open = op_open,
        .read = op_read,
        .release = op_release,
        .write = op_write,
};

/* The kernel caps readahead at mount to its default (128 KiB); a larger window
 * lets sequential readers get 1 MiB requests. Best effort: needs root and sysfs.
 * The kernel sets the window when it gets our INIT reply, so this runs once on
 * the first request after it. The device comes from mountinfo: a stat() of the
 * mountpoint from inside a request handler could wait on this filesystem. */
static fs *readahead_fs;

static void raise_readahead(void) {
        _cleanup_fclose_ FILE *mi = fopen("/proc/self/mountinfo", "re");
        const char *resolved = readahead_fs->mountpoint;
        char line[4096], path[128], dev[32] = "", target[2048];

        if (!mi)
                return;
        while (fgets(line, sizeof(line), mi))
                if (sscanf(line, "%*s %*s %31s %*s %2047s", dev, target) == 2 && !strcmp(target, resolved) &&
                    strstr(line, " - fuse.packfs "))
                        break;
                else
                        dev[0] = 0;
        if (!dev[0])
                return;
        snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
        _cleanup_fclose_ FILE *fp = fopen(path, "we");
        if (fp)
                fprintf(fp, "%d\n", READ_CHUNK / 1024);
}

/* The resident set size in bytes, from /proc/self/statm; 0 if unknown. */
static uint64_t rss_bytes(void) {
        _cleanup_fclose_ FILE *fp = fopen("/proc/self/statm", "re");
        unsigned long long size, resident;
        long page = sysconf(_SC_PAGESIZE);

        if (!fp || page <= 0 || fscanf(fp, "%llu %llu", &size, &resident) != 2)
                return 0;
        return (uint64_t) resident * (uint64_t) page;
}

/* SIGUSR1 asks for one log line on the inode table, for admins and tests:
 * "MOUNTPOINT: N inodes (peak P), RSS X MiB". The signal is blocked in every
 * thread (pf_mount_run blocks it before it makes any) and taken here by
 * sigwait(), so the line is written by an ordinary thread, never from a
 * signal handler. pf_mount_run ends the thread by setting f->stopping and
 * sending SIGUSR1 to it alone. */
static void *usr1_thread(void *userdata) {
        fs *f = userdata;
        sigset_t set;
        size_t n_nodes, peak;
        bool stopping;
        int sig;

        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        for (;;) {
                if (sigwait(&set, &sig) != 0)
                        continue;
                pthread_mutex_lock(&f->lock);
                stopping = f->stopping;
                n_nodes = f->n_nodes;
                peak = f->peak;
                pthread_mutex_unlock(&f->lock);
                if (stopping)
                        return NULL;
                log_info("%s: %zu inodes (peak %zu), RSS %.1f MiB", f->mountpoint, n_nodes, peak,
                         (double) rss_bytes() / (1024 * 1024));
        }
}

/* Best effort: the mount serves without it. */
static void usr1_start(fs *f) {
        int r = -pthread_create(&f->usr1_thread, NULL, usr1_thread, f);

        if (r < 0) {
                log_warning_errno(r, "%s: no SIGUSR1 thread", f->mountpoint);
                return;
        }
        f->usr1_running = true;
}

static void usr1_stop(fs *f) {
        if (!f->usr1_running)
                return;
        pthread_mutex_lock(&f->lock);
        f->stopping = true;
        pthread_mutex_unlock(&f->lock);
        pthread_kill(f->usr1_thread, SIGUSR1);
        pthread_join(f->usr1_thread, NULL);
        f->usr1_running = false;
}

/* Unlike fuse_daemonize(), the parent waits until the kernel's INIT went
 * through, so an option libfuse only refuses then (max_read=...) is an error
 * and a non-zero exit, not a silent exit 0 with nothing mounted. The daemon
 * keeps the terminal's stderr until then, so such errors show there. */
static int daemonize(fs *f) {
        int pipefd[2], devnull;
        pid_t pid;
        char status;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return log_error_errno(negative_errno(), "pipe");
        pid = fork();
        if (pid < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return log_error_errno(negative_errno(), "fork");
        }
        if (pid > 0) {
                int wstatus;
                close(pipefd[1]);
                if (read(pipefd[0], &status, 1) == 1)
                        _exit(EXIT_SUCCESS);
                waitpid(pid, &wstatus, 0);
                log_error("%s: the kernel did not accept the mount (see above)", f->mountpoint);
                _exit(EXIT_FAILURE);
        }
        close(pipefd[0]);
        f->ready_fd = pipefd[1];
        if (setsid() < 0 || chdir("/") < 0)
                return log_error_errno(negative_errno(), "daemonize");
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
                dup2(devnull, STDIN_FILENO);
                close(devnull);
        }
        return 0;
}

static void daemon_ready(fs *f) {
        int devnull;
        char ok = 0;

        if (f->ready_fd < 0)
                return;
        pf_log_open(PF_LOG_SYSLOG, LOG_INFO);
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
                dup2(devnull, STDOUT_FILENO);
                dup2(devnull, STDERR_FILENO);
                close(devnull);
        }
        log_info("serving %s", f->mountpoint);
        (void) !write(f->ready_fd, &ok, 1);
        close(f->ready_fd);
        f->ready_fd = -1;
}

int pf_mount_run(pf_packs *packs, const char *mountpoint, const char *fuse_opts, bool foreground, bool debug,
                 bool list_all) {
        struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
        struct fuse_loop_config *loop = NULL;
        struct fuse_session *se = NULL;
        fs f = { .packs = packs, .uid = getuid(), .gid = getgid(), .mountpoint = mountpoint, .ready_fd = -1,
                 .readahead_once = PTHREAD_ONCE_INIT, .list_all = list_all };
        sigset_t usr1;
        int r = -EIO;

        /* Before any thread is made (workers, preparing, the SIGUSR1 thread):
         * a thread made later inherits the mask, so only usr1_thread() takes
         * the signal. It stays blocked after we return: one that comes late
         * stays pending rather than killing a process on its way out. */
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &usr1, NULL);

        readahead_fs = &f;
        pthread_mutex_init(&f.lock, NULL);
        r = root_init(&f);
        if (r < 0)
                goto out;
        r = -EIO;

        if (fuse_opts) {
                const char *m = strstr(fuse_opts, "max_read=");
                if (m && (m == fuse_opts || m[-1] == ','))
                        f.max_read = (unsigned) strtoul(m + strlen("max_read="), NULL, 10);
        }
        fuse_opt_add_arg(&args, "packfs");
        fuse_opt_add_arg(&args, "-o");
        fuse_opt_add_arg(&args, "ro,fsname=packfs,subtype=packfs");
        if (fuse_opts && *fuse_opts) {
                fuse_opt_add_arg(&args, "-o");
                fuse_opt_add_arg(&args, fuse_opts);
                /* With other users let in, the mode bits decide who reads what. */
                if (strstr(fuse_opts, "allow_other")) {
                        fuse_opt_add_arg(&args, "-o");
                        fuse_opt_add_arg(&args, "default_permissions");
                }
        }
        if (debug)
                fuse_opt_add_arg(&args, "-d");

        se = fuse_session_new(&args, &ops, sizeof(ops), &f);
        f.se = se;
        if (!se) {
                log_error("%s: bad FUSE options '%s'", mountpoint, fuse_opts ? fuse_opts : "");
                r = -EINVAL;
                goto out;
        }
        if (fuse_set_signal_handlers(se) != 0)
                goto out_destroy;
        if (fuse_session_mount(se, mountpoint) != 0) {
                log_error("%s: cannot mount", mountpoint);
                goto out_signals;
        }
        if (!foreground) {
                /* The daemon must not use the parent's SQLite connections: it would
                 * not hold the parent's locks, and writers would then reset the WAL
                 * under it (a stale view of the database forever after). */
                pf_store_disconnect(pf_packs_store(packs));
                if (pf_packs_cache(packs))
                        pf_cache_disconnect(pf_packs_cache(packs));
                r = daemonize(&f);
                if (r < 0)
                        goto out_unmount;
                r = pf_store_connect(pf_packs_store(packs));
                if (r >= 0 && pf_packs_cache(packs))
                        r = pf_cache_connect(pf_packs_cache(packs));
                if (r < 0)
                        goto out_unmount;
                r = -EIO;
        }
        if (foreground)
                log_info("serving %s", mountpoint);
        /* After daemonize(): threads do not survive fork(). */
        usr1_start(&f);

        loop = fuse_loop_cfg_create();
        if (!loop)
                goto out_unmount;
        fuse_loop_cfg_set_clone_fd(loop, 0);
        /* Workers stay once made (idle = max): a worker that comes and goes
         * takes its reply buffer and malloc arena with it. */
        fuse_loop_cfg_set_max_threads(loop, MAX_WORKERS);
        fuse_loop_cfg_set_idle_threads(loop, IDLE_WORKERS);
        r = fuse_session_loop_mt(se, loop) == 0 ? 0 : -EIO;
        fuse_loop_cfg_destroy(loop);
        log_info("unmounted %s", mountpoint);
out_unmount:
        usr1_stop(&f);
        pf_prepare_stop(f.prepare);
        fuse_session_unmount(se);
out_signals:
        fuse_remove_signal_handlers(se);
out_destroy:
        fuse_session_destroy(se);
out:
        fuse_opt_free_args(&args);
        tables_free(&f);
        pthread_mutex_destroy(&f.lock);
        return r;
}
