/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The packfs command line: mount, build, store, status. */
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mount.h"
#include "packfs/cancel.h"
#include "packfs/io.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/storewrite.h"
#include "packfs/vm.h"
#include "packs.h"

typedef struct cli {
        const char *store_dir;
        const char *db_path;
        const char *profiles_dir;
        const char *config_path;
        const char *cache_dir;
        const char *cache_size;
        const char *output;
        const char *fuse_opts;
        const char *list;       /* mount: "ready" or "all" */
        bool foreground;
        bool debug;
} cli;

enum {
        OPT_STORE = 0x100,
        OPT_DB,
        OPT_PROFILES,
        OPT_CACHE,
        OPT_CACHE_SIZE,
        OPT_CONFIG,
        OPT_LIST,
        OPT_HELP,
        OPT_VERSION,
};

static const struct option long_options[] = {
        { "store", required_argument, NULL, OPT_STORE },
        { "db", required_argument, NULL, OPT_DB },
        { "profiles", required_argument, NULL, OPT_PROFILES },
        { "cache", required_argument, NULL, OPT_CACHE },
        { "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
        { "config", required_argument, NULL, OPT_CONFIG },
        { "list", required_argument, NULL, OPT_LIST },
        { "output", required_argument, NULL, 'o' },
        { "foreground", no_argument, NULL, 'f' },
        { "debug", no_argument, NULL, 'd' },
        { "help", no_argument, NULL, OPT_HELP },
        { "version", no_argument, NULL, OPT_VERSION },
        {}
};

static void usage(FILE *out) {
        fputs("Usage:\n"
              "  packfs mount [--store DIR] [--db FILE] [--profiles DIR] [--cache DIR] [--cache-size SIZE]\n"
              "               [--config FILE] [--list ready|all] [-f] [-o FUSE_OPTION,...] MOUNTPOINT\n"
              "  packfs build [store/config options] VIEW/FILE [-o OUTPUT|-]\n"
              "  packfs warm  [store/config options] VIEW[/FILE]...\n"
              "  packfs run-vm [store/config options] VIEW [-- QEMU_ARG...]\n"
              "  packfs store init    --store DIR --db FILE\n"
              "  packfs store add     --store DIR --db FILE PATH...\n"
              "  packfs store profile --store DIR --db FILE --profiles DIR NAME ITEM...\n"
              "  packfs store closure --store DIR --db FILE ITEM...\n"
              "  packfs status [--cache DIR] [MOUNTPOINT]\n"
              "  packfs --help | --version\n"
              "\n"
              "Defaults: /gnu/store with /var/guix/db/db.sqlite and /var/guix/profiles,\n"
              "else /nix/store with /nix/var/nix/db/db.sqlite and /nix/var/nix/profiles.\n"
              "Cache: /var/cache/packfs for root, else $XDG_CACHE_HOME/packfs; --cache-size 10G.\n",
              out);
}

static bool exists(const char *path) {
        return access(path, F_OK) == 0;
}

/* Fills in the store, database and profiles root the way Guix and Nix find them. */
static void apply_defaults(cli *c) {
        static const struct {
                const char *store, *db, *profiles;
        } defaults[] = {
                { "/gnu/store", "/var/guix/db/db.sqlite", "/var/guix/profiles" },
                { "/nix/store", "/nix/var/nix/db/db.sqlite", "/nix/var/nix/profiles" },
        };
        size_t pick = 0;

        if (!c->store_dir) {
                for (size_t i = 0; i < ELEMENTSOF(defaults); i++)
                        if (exists(defaults[i].store) && exists(defaults[i].db)) {
                                pick = i;
                                break;
                        }
                c->store_dir = defaults[pick].store;
        } else
                for (size_t i = 0; i < ELEMENTSOF(defaults); i++)
                        if (!strcmp(c->store_dir, defaults[i].store))
                                pick = i;
        if (!c->db_path)
                c->db_path = defaults[pick].db;
        if (!c->profiles_dir)
                c->profiles_dir = defaults[pick].profiles;
}

static int parse_options(int argc, char **argv, cli *c, char ***ret_args, int *ret_n) {
        int opt;

        /* "+" would stop at the first operand; options may follow operands here. */
        optind = 1;
        while ((opt = getopt_long(argc, argv, "o:fd", long_options, NULL)) >= 0) {
                switch (opt) {
                case OPT_STORE:
                        c->store_dir = optarg;
                        break;
                case OPT_DB:
                        c->db_path = optarg;
                        break;
                case OPT_PROFILES:
                        c->profiles_dir = optarg;
                        break;
                case OPT_CACHE:
                        c->cache_dir = optarg;
                        break;
                case OPT_CACHE_SIZE:
                        c->cache_size = optarg;
                        break;
                case OPT_CONFIG:
                        c->config_path = optarg;
                        break;
                case OPT_LIST:
                        c->list = optarg;
                        break;
                case 'o':
                        c->output = optarg;
                        break;
                case 'f':
                        c->foreground = true;
                        break;
                case 'd':
                        c->debug = true;
                        c->foreground = true;
                        break;
                case OPT_HELP:
                        usage(stdout);
                        exit(EXIT_SUCCESS);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        *ret_args = argv + optind;
        *ret_n = argc - optind;
        return 0;
}

/* Store paths in the database are absolute: so must the store directory be. */
static int absolutize(const char **path, char **storage) {
        if (!*path || (*path)[0] == '/')
                return 0;
        *storage = realpath(*path, NULL);
        if (!*storage)
                return log_error_errno(negative_errno(), "%s", *path);
        *path = *storage;
        return 0;
}

#define DEFAULT_CACHE_SIZE ((uint64_t) 10 << 30)

/* The cache directory, absolute (the daemon runs from /). */
static int cache_dir(const cli *c, char **ret) {
        _cleanup_free_ char *cwd = NULL;

        if (!c->cache_dir)
                return pf_cache_default_dir(ret);
        if (c->cache_dir[0] == '/')
                return (*ret = strdup(c->cache_dir)) ? 0 : -ENOMEM;
        cwd = getcwd(NULL, 0);
        if (!cwd)
                return negative_errno();
        return asprintf(ret, "%s/%s", cwd, c->cache_dir) < 0 ? -ENOMEM : 0;
}

/* Opens the cache. One given with --cache must work; the default one may be
 * unusable (no $HOME, read-only), and packs are then encoded without caching. */
static int open_cache(const cli *c, const char *owner, pf_cache **ret) {
        _cleanup_free_ char *dir = NULL;
        uint64_t size = DEFAULT_CACHE_SIZE;
        int r;

        *ret = NULL;
        if (c->cache_size && pf_cache_parse_size(c->cache_size, &size) < 0) {
                log_error("--cache-size %s: expected a size such as 500M or 10G", c->cache_size);
                return -EINVAL;
        }
        r = cache_dir(c, &dir);
        if (r >= 0)
                r = pf_cache_open(dir, size, owner, ret);
        if (r < 0 && !c->cache_dir) {
                log_warning("no usable cache (%s); compressed packs are encoded without caching", strerror(-r));
                return 0;
        }
        return r; /* pf_cache_open() said what failed */
}

static int check_prepare_name(void *userdata, const char *name) {
        const pf_format *format = pf_format_find(name);

        if (!format || format->tree) {
                log_error("%s: prepare: '%s' is no file of a view", (const char *) userdata, name);
                return -EINVAL;
        }
        return 0;
}

static int open_packs(cli *c, bool need_profiles, const char *owner, pf_packs **ret) {
        static char *store_abs, *profiles_abs;
        pf_store *store = NULL;
        pf_config *config = NULL;
        pf_cache *cache = NULL;
        struct stat st;
        int r;

        apply_defaults(c);
        r = absolutize(&c->store_dir, &store_abs);
        if (r >= 0 && need_profiles)
                r = absolutize(&c->profiles_dir, &profiles_abs);
        if (r < 0)
                return r;
        r = pf_store_open(c->store_dir, c->db_path, &store);
        if (r < 0)
                return r;
        r = pf_config_load(c->config_path, &config);
        if (r >= 0)
                r = pf_config_foreach_prepare(config, check_prepare_name, (void *) c->config_path);
        if (r < 0) {
                pf_config_free(config);
                pf_store_free(store);
                return r;
        }
        if (need_profiles && (stat(c->profiles_dir, &st) < 0 || !S_ISDIR(st.st_mode))) {
                log_error("profiles root %s: %s", c->profiles_dir, errno ? strerror(errno) : "not a directory");
                pf_store_free(store);
                pf_config_free(config);
                return -ENOENT;
        }
        r = open_cache(c, owner, &cache);
        if (r >= 0)
                r = pf_packs_new(store, config, cache, c->profiles_dir, ret);
        if (r < 0) {
                pf_cache_free(cache);
                pf_store_free(store);
                pf_config_free(config);
        }
        return r;
}

static int cmd_mount(cli *c, char **args, int n) {
        pf_packs *packs = NULL;
        struct stat st;
        int r;

        if (n != 1) {
                log_error("mount: expected one MOUNTPOINT");
                return -EINVAL;
        }
        if (c->list && strcmp(c->list, "ready") != 0 && strcmp(c->list, "all") != 0) {
                log_error("--list %s: expected 'ready' or 'all'", c->list);
                return -EINVAL;
        }
        if (stat(args[0], &st) < 0 || !S_ISDIR(st.st_mode)) {
                log_error("mountpoint %s: %s", args[0], errno ? strerror(errno) : "not a directory");
                return -ENOTDIR;
        }
        c->fuse_opts = c->output; /* for mount, -o carries FUSE options */
        _cleanup_free_ char *mountpoint = realpath(args[0], NULL);
        if (!mountpoint)
                return log_error_errno(negative_errno(), "mountpoint %s", args[0]);
        r = open_packs(c, true, mountpoint, &packs);
        if (r < 0)
                return r;
        r = pf_mount_run(packs, mountpoint, c->fuse_opts, c->foreground, c->debug,
                         c->list && !strcmp(c->list, "all"));
        pf_packs_free(packs);
        return r;
}

static int cmd_build(cli *c, char **args, int n) {
        _cleanup_free_ char *view = NULL, *item = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_ int out_fd = -1;
        const pf_format *format;
        pf_packs *packs = NULL;
        pf_plan *plan = NULL;
        const char *slash;
        int r;

        if (n != 1) {
                log_error("build: expected one VIEW/FILE");
                return -EINVAL;
        }
        slash = strrchr(args[0], '/');
        if (!slash || slash == args[0]) {
                log_error("build: %s: expected VIEW/FILE, e.g. demo/pack.tar", args[0]);
                return -EINVAL;
        }
        format = pf_format_find(slash + 1);
        if (!format) {
                log_error("build: %s: no such pack format", slash + 1);
                return -ENOENT;
        }
        if (format->tree) {
                log_error("build: %s is a directory of the view (read its files through a mount)", slash + 1);
                return -EISDIR;
        }
        view = strndup(args[0], (size_t) (slash - args[0]));
        buf = malloc(1 << 20);
        if (!view || !buf)
                return -ENOMEM;
        /* Ctrl-C stops an encoding at once and leaves no partial object. */
        r = pf_cancel_on_signals();
        if (r >= 0)
                r = open_packs(c, false, "build", &packs);
        if (r < 0)
                return r;
        r = pf_packs_resolve_view(packs, view, &item);
        if (r < 0) {
                log_error_errno(r, "build: view %s", view);
                goto out;
        }
        if (!c->output || !strcmp(c->output, "-"))
                out_fd = dup(STDOUT_FILENO);
        else
                out_fd = open(c->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out_fd < 0) {
                r = log_error_errno(negative_errno(), "build: %s", c->output ? c->output : "stdout");
                goto out;
        }
        if (format->stream) {
                /* Written as it is encoded: nothing waits for the whole pack. */
                r = pf_packs_stream(packs, view, item, format, out_fd);
                if (r < 0)
                        log_error_errno(r, "build: %s", args[0]);
                goto out;
        }
        r = pf_packs_plan(packs, view, item, format, NULL, &plan);
        if (r < 0)
                goto out;
        for (uint64_t off = 0; off < pf_plan_size(plan);) {
                if (pf_cancel_requested()) {
                        r = -ECANCELED;
                        goto out;
                }
                ssize_t k = pf_plan_pread(plan, buf, 1 << 20, off);
                if (k <= 0) {
                        r = k < 0 ? (int) k : -EIO;
                        log_error_errno(r, "build: %s at offset %llu", args[0], (unsigned long long) off);
                        goto out;
                }
                r = pf_write_all(out_fd, buf, (size_t) k);
                if (r < 0) {
                        log_error_errno(r, "build: writing %s", c->output ? c->output : "stdout");
                        goto out;
                }
                off += (uint64_t) k;
        }
        r = 0;
out:
        pf_plan_unref(plan);
        pf_packs_free(packs);
        return r;
}

static int require_store_db(const cli *c, const char *verb) {
        if (!c->store_dir || !c->db_path) {
                log_error("store %s: --store DIR and --db FILE are required", verb);
                return -EINVAL;
        }
        return 0;
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int cmd_store(cli *c, char **args, int n) {
        int r;

        if (n < 1) {
                log_error("store: expected init, add, profile or closure");
                return -EINVAL;
        }
        r = require_store_db(c, args[0]);
        if (r < 0)
                return r;
        if (!strcmp(args[0], "init")) {
                r = pf_store_init(c->store_dir, c->db_path);
                return r < 0 ? log_error_errno(r, "store init %s", c->store_dir) : 0;
        }
        if (!strcmp(args[0], "add")) {
                for (int i = 1; i < n; i++) {
                        _cleanup_free_ char *path = NULL;
                        r = pf_store_add(c->store_dir, c->db_path, args[i], &path);
                        if (r < 0)
                                return log_error_errno(r, "store add %s", args[i]);
                        printf("%s\n", path);
                }
                return 0;
        }
        if (!strcmp(args[0], "profile")) {
                _cleanup_free_ char *link = NULL;
                if (!c->profiles_dir || n < 3) {
                        log_error("store profile: --profiles DIR, NAME and at least one ITEM are required");
                        return -EINVAL;
                }
                r = pf_store_make_profile(c->store_dir, c->db_path, c->profiles_dir, args[1], args + 2,
                                          (size_t) (n - 2), &link);
                if (r < 0)
                        return log_error_errno(r, "store profile %s", args[1]);
                printf("%s\n", link);
                return 0;
        }
        if (!strcmp(args[0], "closure")) {
                pf_store *store = NULL;
                char **seen = NULL;
                size_t n_seen = 0;

                r = pf_store_open(c->store_dir, c->db_path, &store);
                if (r < 0)
                        return r;
                /* The union of the closures, sorted and unique, as nix-store -qR. */
                for (int i = 1; i < n && r >= 0; i++) {
                        pf_closure *cl = NULL;
                        r = pf_store_closure(store, args[i], &cl);
                        if (r < 0) {
                                log_error_errno(r, "store closure %s", args[i]);
                                break;
                        }
                        char **v = reallocarray(seen, n_seen + cl->n_items, sizeof(*v));
                        if (!v)
                                r = -ENOMEM;
                        else {
                                seen = v;
                                for (size_t j = 0; j < cl->n_items; j++)
                                        seen[n_seen++] = strdup(cl->items[j].path);
                        }
                        pf_closure_unref(cl);
                }
                if (r >= 0) {
                        qsort(seen, n_seen, sizeof(*seen), strcmp_ptr);
                        for (size_t j = 0; j < n_seen; j++)
                                if (j == 0 || strcmp(seen[j], seen[j - 1]))
                                        printf("%s\n", seen[j]);
                }
                for (size_t j = 0; j < n_seen; j++)
                        free(seen[j]);
                free(seen);
                pf_store_free(store);
                return r;
        }
        log_error("store: unknown command '%s'", args[0]);
        return -EINVAL;
}

static void print_size(FILE *out, uint64_t bytes) {
        if (bytes >= (uint64_t) 10 << 30)
                fprintf(out, "%.1f GiB", (double) bytes / (1 << 30));
        else if (bytes >= (uint64_t) 10 << 20)
                fprintf(out, "%.1f MiB", (double) bytes / (1 << 20));
        else
                fprintf(out, "%.1f KiB", (double) bytes / 1024);
}


/* --- packfs warm */

typedef struct warm_job {
        pf_packs *packs;
        const char *view, *item;
        const pf_format *format;
        uint64_t size;          /* the pack's, once planned */
        int result;
} warm_job;

static void *warm_thread(void *userdata) {
        warm_job *w = userdata;
        pf_plan *plan = NULL;

        w->result = pf_packs_plan(w->packs, w->view, w->item, w->format, NULL, &plan);
        if (w->result >= 0)
                w->size = pf_plan_size(plan);
        pf_plan_unref(plan);
        return NULL;
}

typedef struct warm_progress {
        uint64_t done, total, output;
} warm_progress;

static void add_own_job(void *userdata, const pf_cache_job_info *job) {
        warm_progress *p = userdata;

        if (job->pid != (long) getpid() || job->queued)
                return;
        p->done += job->done;
        p->total += job->total;
        p->output += job->output;
}

/* One line, rewritten in place: bytes in, bytes out, rate, time left. */
static void warm_show(const char *name, pf_cache *cache, const struct timespec *start) {
        warm_progress p = {};
        double elapsed = pf_seconds_since(start), rate;

        if (pf_cache_list_jobs(cache, add_own_job, &p) < 0 || p.total == 0)
                return;
        rate = elapsed > 0 ? (double) p.done / elapsed : 0;
        fprintf(stderr, "\r\033[K%s: ", name);
        print_size(stderr, p.done);
        fprintf(stderr, " of ");
        print_size(stderr, p.total);
        fprintf(stderr, " in, ");
        print_size(stderr, p.output);
        fprintf(stderr, " out, ");
        print_size(stderr, (uint64_t) rate);
        if (rate > 0 && p.done < p.total)
                fprintf(stderr, "/s, %.0f s left", (double) (p.total - p.done) / rate);
        else
                fprintf(stderr, "/s");
        fflush(stderr);
}

/* Encodes FORMAT of VIEW into the cache, showing progress on a terminal. */
static int warm_file(pf_packs *packs, const char *view, const char *item, const pf_format *format, bool tty) {
        warm_job w = { .packs = packs, .view = view, .item = item, .format = format };
        _cleanup_free_ char *name = NULL;
        struct timespec start;
        pthread_t thread;
        int r;

        if (asprintf(&name, "%s/%s", view, format->file_name) < 0)
                return -ENOMEM;
        clock_gettime(CLOCK_MONOTONIC, &start);
        r = -pthread_create(&thread, NULL, warm_thread, &w);
        if (r < 0)
                return log_error_errno(r, "warm: cannot start a thread");
        while (pthread_tryjoin_np(thread, NULL) == EBUSY) {
                struct timespec tick = { .tv_nsec = 250 * 1000 * 1000 };
                nanosleep(&tick, NULL);
                if (tty && pf_packs_cache(packs))
                        warm_show(name, pf_packs_cache(packs), &start);
        }
        if (tty)
                fprintf(stderr, "\r\033[K");
        if (w.result < 0) {
                if (w.result != -ECANCELED)
                        log_error_errno(w.result, "warm: %s", name);
                return w.result;
        }
        if (tty) {
                fprintf(stderr, "%s: ready, ", name);
                print_size(stderr, w.size);
                fprintf(stderr, " (%.1f s)\n", pf_seconds_since(&start));
        }
        return 0;
}

/* VIEW[/FILE]: FILE if the last component names a format, else all of VIEW. */
static int warm_arg(pf_packs *packs, const char *arg, bool tty) {
        _cleanup_free_ char *view = strdup(arg), *item = NULL;
        const pf_format *format = NULL;
        char *slash;
        int r;

        if (!view)
                return -ENOMEM;
        for (size_t n = strlen(view); n > 1 && view[n - 1] == '/'; n--)
                view[n - 1] = 0;
        slash = strrchr(view, '/');
        if (slash && (format = pf_format_find(slash + 1)))
                *slash = 0;
        r = pf_packs_resolve_view(packs, view, &item);
        if (r < 0)
                return log_error_errno(r, "warm: view %s", view);
        /* A stat reports who may read the pack: recorded now, so that a
         * mount's first stat of a warmed file costs a record lookup. */
        pf_access access;
        r = pf_packs_access(packs, view, item, &access);
        if (r < 0)
                return r;
        if (format)
                return warm_file(packs, view, item, format, tty);

        size_t n_formats;
        const pf_format *const *formats = pf_formats(&n_formats);
        for (size_t i = 0; i < n_formats; i++) {
                /* What a mount would encode: the files a listing waits for
                 * (disk images only when named: a VM each). */
                if (!formats[i]->cached || formats[i]->warm_by_name_only)
                        continue;
                r = warm_file(packs, view, item, formats[i], tty);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cmd_warm(cli *c, char **args, int n) {
        pf_packs *packs = NULL;
        bool tty = isatty(STDERR_FILENO);
        int r;

        if (n < 1) {
                log_error("warm: expected VIEW[/FILE]...");
                return -EINVAL;
        }
        r = pf_cancel_on_signals();
        if (r >= 0)
                r = open_packs(c, false, "warm", &packs);
        if (r < 0)
                return r;
        if (!pf_packs_cache(packs)) {
                log_error("warm: no usable cache to fill (see --cache)");
                pf_packs_free(packs);
                return -ENOENT;
        }
        for (int i = 0; i < n && r >= 0; i++)
                r = warm_arg(packs, args[i], tty);
        pf_packs_free(packs);
        return r;
}

/* Boots VIEW's disk.qcow2 (built first if need be) in QEMU, on the terminal. */
static int cmd_run_vm(cli *c, char **args, int n) {
        _cleanup_free_ char *item = NULL;
        const pf_format *format = pf_format_find("disk.qcow2");
        pf_packs *packs = NULL;
        pf_plan *plan = NULL;
        pf_options o = {};
        int r, fd = -1;

        if (n < 1) {
                log_error("run-vm: expected VIEW [-- QEMU_ARG...]");
                return -EINVAL;
        }
        r = pf_cancel_on_signals();
        if (r >= 0)
                r = open_packs(c, false, "run-vm", &packs);
        if (r < 0)
                return r;
        r = pf_packs_resolve_view(packs, args[0], &item);
        if (r < 0) {
                log_error_errno(r, "run-vm: view %s", args[0]);
                goto out;
        }
        r = pf_packs_options(packs, args[0], &o);
        if (r < 0)
                goto out;
        r = pf_packs_plan(packs, args[0], item, format, NULL, &plan);
        if (r < 0)
                goto out;
        fd = pf_plan_n_extents(plan) == 1 ? pf_plan_open_file(plan, pf_plan_extent(plan, 0)) : -EINVAL;
        if (fd < 0) {
                r = log_error_errno(fd, "run-vm: %s/disk.qcow2", args[0]);
                goto out;
        }
        pf_vm_options vo = { .kernel = o.helper_kernel, .memory_mib = (unsigned) o.vm_memory,
                             .state_dir = pf_packs_cache(packs) ? pf_cache_dir(pf_packs_cache(packs)) : NULL };
        r = pf_vm_boot(&vo, fd, "qcow2", (unsigned) o.vm_cpus, args + 1);
out:
        if (fd >= 0)
                close(fd);
        pf_options_done(&o);
        pf_plan_unref(plan);
        pf_packs_free(packs);
        return r;
}

typedef struct status_filter {
        const char *mountpoint; /* NULL: every owner */
        unsigned shown;
} status_filter;

static void print_job(void *userdata, const pf_cache_job_info *job) {
        status_filter *f = userdata;

        if (f->mountpoint && strcmp(job->owner, f->mountpoint) != 0)
                return;
        f->shown++;
        if (job->queued) {
                printf("  queued   %s for %s (pid %ld)\n", job->name, job->owner, job->pid);
                return;
        }
        if (!job->total) {
                /* A build in stages (disk images): its name says the stage. */
                printf("  building %s for %s (pid %ld), for %lld s\n", job->name, job->owner, job->pid,
                       (long long) (time(NULL) - job->started));
                return;
        }
        printf("  encoding %s for %s (pid %ld): %.0f%%, ", job->name, job->owner, job->pid,
               job->total ? 100.0 * (double) job->done / (double) job->total : 100.0);
        print_size(stdout, job->done);
        printf(" of ");
        print_size(stdout, job->total);
        printf(" in, ");
        print_size(stdout, job->output);
        printf(" out, for %lld s\n", (long long) (time(NULL) - job->started));
}

/* Lists packfs mounts (all, or the one at MOUNTPOINT), the cache's use and the
 * encodings under way. */
static int cmd_status(const cli *c, char **args, int n) {
        _cleanup_fclose_ FILE *fp = fopen("/proc/self/mounts", "re");
        _cleanup_free_ char *dir = NULL, *index = NULL;
        status_filter filter = { .mountpoint = n > 0 ? args[0] : NULL };
        pf_cache_usage usage;
        pf_cache *cache = NULL;
        char line[4096];
        int found = 0, r;

        if (!fp)
                return log_error_errno(negative_errno(), "/proc/self/mounts");
        while (fgets(line, sizeof(line), fp)) {
                char source[1024], target[2048], type[64];
                if (sscanf(line, "%1023s %2047s %63s", source, target, type) != 3)
                        continue;
                if (strcmp(type, "fuse.packfs") != 0)
                        continue;
                if (n > 0 && strcmp(target, args[0]) != 0)
                        continue;
                printf("%s: mounted\n", target);
                found++;
        }
        if (n > 0 && !found) {
                log_error("%s: not a packfs mount", args[0]);
                return -ENOENT;
        }
        if (!found)
                printf("no packfs mounts\n");

        r = cache_dir(c, &dir);
        if (r < 0)
                return log_error_errno(r, "cache directory");
        if (asprintf(&index, "%s/index.sqlite", dir) < 0)
                return -ENOMEM;
        if (access(index, F_OK) < 0) {
                printf("cache %s: empty\n", dir);
                return 0;
        }
        r = pf_cache_open(dir, UINT64_MAX, "status", &cache);
        if (r < 0)
                return r;
        r = pf_cache_get_usage(cache, &usage);
        if (r >= 0) {
                printf("cache %s: ", dir);
                print_size(stdout, usage.bytes);
                printf(" in %llu objects, %llu packs, %llu item records\n", (unsigned long long) usage.objects,
                       (unsigned long long) usage.manifests, (unsigned long long) usage.records);
                r = pf_cache_list_jobs(cache, print_job, &filter);
        }
        if (r >= 0 && filter.shown == 0)
                printf("  no encodings under way or queued\n");
        pf_cache_free(cache);
        return r < 0 ? log_error_errno(r, "cache %s", dir) : 0;
}

/* Cached plans of compressed packs hold their units' files open (a few hundred
 * per pack), so the soft descriptor limit goes up to the hard one, as systemd
 * advises for programs that do not use select(). Best effort: at the limit a
 * plan reopens its files by name at each read instead. */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

int main(int argc, char **argv) {
        cli c = {};
        char **args = NULL;
        int n = 0, r;

        gcry_check_version(NULL);
        gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);

        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(argv[1], "--version")) {
                printf("packfs %s\n", PACKFS_VERSION);
                return 0;
        }
        const char *cmd = argv[1];
        r = parse_options(argc - 1, argv + 1, &c, &args, &n);
        if (r < 0)
                return 2;
        if (c.debug)
                pf_log_open(PF_LOG_STDERR, LOG_DEBUG);
        raise_fd_limit();

        if (!strcmp(cmd, "mount"))
                r = cmd_mount(&c, args, n);
        else if (!strcmp(cmd, "build"))
                r = cmd_build(&c, args, n);
        else if (!strcmp(cmd, "store"))
                r = cmd_store(&c, args, n);
        else if (!strcmp(cmd, "warm"))
                r = cmd_warm(&c, args, n);
        else if (!strcmp(cmd, "run-vm"))
                r = cmd_run_vm(&c, args, n);
        else if (!strcmp(cmd, "status"))
                r = cmd_status(&c, args, n);
        else {
                log_error("unknown command '%s'; see packfs --help", cmd);
                return 2;
        }
        if (r == -ECANCELED && pf_cancel_signal()) {
                log_error("%s: interrupted; nothing partial was kept", cmd);
                return 128 + pf_cancel_signal();
        }
        return r < 0 ? 1 : 0;
}
