/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "packfs/cancel.h"
#include "packfs/io.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/profiles.h"
#include "prepare.h"

/* Profile switches come as a burst (a new generation link, then the profile
 * renamed onto it): look once the burst is over. */
#define SETTLE_MS 200
#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW)

/* A file a profile's options ask for (format NULL: its survey), and the item
 * it was last queued for. */
typedef struct wanted {
        char *view;
        const pf_format *format;
        char *item;
} wanted;

/* A file to encode, or with FORMAT NULL a survey: the sizes of the view's
 * planned files and who may read its packs, so that a listing finds them
 * recorded. Surveys go before encodings: they are short, and the first `ls`
 * of a fresh mount waits for them. */
typedef struct task {
        char *view, *item;
        const pf_format *format;
        pf_cache_job *queued;   /* its row in `packfs status` while it waits (encodings) */
} task;

struct pf_prepare {
        pf_packs *packs;
        pthread_t thread;
        int inotify_fd;
        int stop_fd;            /* eventfd: written once by pf_prepare_stop() */
        bool stopping;          /* atomic */

        /* Owned by the thread alone. */
        wanted *wanted;
        size_t n_wanted;
        task *queue;
        size_t n_queue;
};

static void task_done(task *t) {
        pf_cache_job_end(t->queued);
        free(t->view);
        free(t->item);
        *t = (task) {};
}

static wanted *wanted_find(pf_prepare *pr, const char *view, const pf_format *format) {
        for (size_t i = 0; i < pr->n_wanted; i++)
                if (pr->wanted[i].format == format && !strcmp(pr->wanted[i].view, view))
                        return &pr->wanted[i];
        return NULL;
}

/* Queues FORMAT of VIEW for ITEM unless that is what was queued last. */
static int consider(pf_prepare *pr, const char *view, const char *item, const pf_format *format) {
        wanted *w = wanted_find(pr, view, format);
        _cleanup_free_ char *item_copy = strdup(item), *view_copy = strdup(view);
        char name[PATH_MAX + 64];
        task *t;

        if (!item_copy || !view_copy)
                return -ENOMEM;
        if (w && w->item && !strcmp(w->item, item))
                return 0;
        if (!w) {
                wanted *nv = reallocarray(pr->wanted, pr->n_wanted + 1, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                pr->wanted = nv;
                w = &nv[pr->n_wanted];
                *w = (wanted) { .view = strdup(view), .format = format };
                if (!w->view)
                        return -ENOMEM;
                pr->n_wanted++;
        }
        /* Queued first: what is remembered as prepared must be queued. */

        /* A task still waiting for this file is for an older generation. */
        for (size_t i = 0; i < pr->n_queue; i++)
                if (pr->queue[i].format == format && !strcmp(pr->queue[i].view, view)) {
                        task_done(&pr->queue[i]);
                        memmove(&pr->queue[i], &pr->queue[i + 1], (pr->n_queue - i - 1) * sizeof(task));
                        pr->n_queue--;
                        break;
                }
        t = reallocarray(pr->queue, pr->n_queue + 1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        pr->queue = t;
        size_t at = pr->n_queue;
        if (!format) /* after the other surveys, before any encoding */
                for (at = 0; at < pr->n_queue && !pr->queue[at].format; at++)
                        ;
        memmove(&t[at + 1], &t[at], (pr->n_queue - at) * sizeof(*t));
        t = &t[at];
        *t = (task) { .view = TAKE_PTR(view_copy), .item = TAKE_PTR(item_copy), .format = format };
        pr->n_queue++;
        if (format) {
                snprintf(name, sizeof(name), "%s/%s", view, format->file_name);
                pf_cache_job_queue(pf_packs_cache(pr->packs), name, &t->queued);
        }
        free(w->item);
        w->item = strdup(item); /* NULL (out of memory): queued again next time */
        return 0;
}

/* "demo-3-link" beside "demo": a generation, not a profile of its own. */
static bool is_generation_link(const pf_profile_entry *entries, size_t n, const char *name) {
        size_t len = strlen(name), end;

        if (len < 8 || strcmp(name + len - 5, "-link") != 0)
                return false;
        end = len - 5;
        while (end > 0 && name[end - 1] >= '0' && name[end - 1] <= '9')
                end--;
        if (end == len - 5 || end < 2 || name[end - 1] != '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (entries[i].kind == PF_PROFILE_ENTRY_LINK && strlen(entries[i].name) == end - 1 &&
                    !strncmp(entries[i].name, name, end - 1))
                        return true;
        return false;
}

static void consider_profile(pf_prepare *pr, const char *view) {
        _cleanup_free_ char *item = NULL;
        pf_options options = {};

        if (pf_packs_resolve_view(pr->packs, view, &item) < 0 || pf_packs_options(pr->packs, view, &options) < 0)
                return;
        if (consider(pr, view, item, NULL) == -ENOMEM)
                log_warning("prepare: out of memory queueing %s", view);
        for (size_t i = 0; i < options.n_prepare; i++) {
                const pf_format *format = pf_format_find(options.prepare[i]);
                if (format && consider(pr, view, item, format) == -ENOMEM)
                        log_warning("prepare: out of memory queueing %s", view);
        }
        pf_options_done(&options);
}

/* Watches directory REL_DIR of the profiles root and queues what its profiles
 * need, then does the same below. */
static void scan_dir(pf_prepare *pr, const char *root, const char *rel_dir, unsigned depth) {
        _cleanup_free_ char *full = NULL;
        pf_profile_entry *entries = NULL;
        size_t n = 0;

        if (depth > PF_PROFILE_MAX_DEPTH || asprintf(&full, "%s%s%s", root, *rel_dir ? "/" : "", rel_dir) < 0)
                return;
        /* Watching a directory twice gives the same watch: no need to remember. */
        if (inotify_add_watch(pr->inotify_fd, full, WATCH_MASK) < 0 && errno != ENOENT)
                log_warning("prepare: cannot watch %s: %s", full, strerror(errno));
        if (pf_profile_list(root, rel_dir, &entries, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s%s%s", rel_dir, *rel_dir ? "/" : "", entries[i].name) < 0)
                        break;
                if (entries[i].kind == PF_PROFILE_ENTRY_DIRECTORY)
                        scan_dir(pr, root, path, depth + 1);
                else if (!is_generation_link(entries, n, entries[i].name))
                        consider_profile(pr, path);
        }
        pf_profile_entries_free(entries, n);
}

static bool stopping(pf_prepare *pr) {
        return __atomic_load_n(&pr->stopping, __ATOMIC_ACQUIRE);
}

/* Reads whatever events are pending; true if there were any. */
static bool drain_events(pf_prepare *pr) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool any = false;

        while (read(pr->inotify_fd, buf, sizeof(buf)) > 0)
                any = true;
        return any;
}

/* Waits up to TIMEOUT_MS (-1: for ever) for an event or the stop; true on an event. */
static bool wait_event(pf_prepare *pr, int timeout_ms) {
        struct pollfd fds[2] = {
                { .fd = pr->inotify_fd, .events = POLLIN },
                { .fd = pr->stop_fd, .events = POLLIN },
        };

        if (poll(fds, 2, timeout_ms) <= 0)
                return false;
        return !(fds[1].revents & POLLIN) && (fds[0].revents & POLLIN);
}

static void rescan(pf_prepare *pr) {
        const char *root = pf_packs_profiles_root(pr->packs);

        drain_events(pr);
        scan_dir(pr, root, "", 0);
}

/* A survey: what a listing of the view asks, answered ahead. A failure is
 * the listing's to report (it gets the same error), so it is only logged at
 * debug level. */
static void survey(pf_prepare *pr, task *t) {
        size_t n_formats;
        const pf_format *const *formats = pf_formats(&n_formats);
        struct timespec start;
        pf_access access;
        uint64_t size;
        int r = 0;

        clock_gettime(CLOCK_MONOTONIC, &start);
        for (size_t i = 0; i < n_formats && r >= 0 && !stopping(pr); i++)
                /* (A format's directory, oci/, is not what a listing of the view asks.) */
                if (!formats[i]->cached && !formats[i]->tree)
                        r = pf_packs_size(pr->packs, t->view, t->item, formats[i], NULL, &size);
        if (r >= 0 && !stopping(pr))
                r = pf_packs_access(pr->packs, t->view, t->item, &access);
        (void) pf_cache_flush_records(pf_packs_cache(pr->packs));
        if (r >= 0)
                log_debug("survey: %s (%.3f s)", t->view, pf_seconds_since(&start));
        else
                log_debug("survey: %s: %s", t->view, strerror(-r));
}

static void run_task(pf_prepare *pr, task *t) {
        struct timespec start;
        int r;

        if (!t->format) {
                survey(pr, t);
                return;
        }
        pf_cache_job_end(t->queued);
        t->queued = NULL;
        clock_gettime(CLOCK_MONOTONIC, &start);
        r = pf_packs_plan_ahead(pr->packs, t->view, t->item, t->format);
        if (r >= 0)
                log_info("prepare: %s/%s is ready (%.2f s)", t->view, t->format->file_name, pf_seconds_since(&start));
        else if (r != -ECANCELED)
                log_error_errno(r, "prepare: %s/%s", t->view, t->format->file_name);
}

static void *prepare_main(void *userdata) {
        pf_prepare *pr = userdata;

        rescan(pr);
        while (!stopping(pr)) {
                if (pr->n_queue > 0) {
                        task t = pr->queue[0];
                        memmove(&pr->queue[0], &pr->queue[1], (pr->n_queue - 1) * sizeof(task));
                        pr->n_queue--;
                        run_task(pr, &t);
                        task_done(&t);
                        /* What changed meanwhile goes to the back of the queue. */
                        if (drain_events(pr) && !stopping(pr))
                                rescan(pr);
                        continue;
                }
                if (!wait_event(pr, -1))
                        continue;
                /* Let the burst settle, then look. */
                while (!stopping(pr) && (drain_events(pr), wait_event(pr, SETTLE_MS)))
                        ;
                if (!stopping(pr))
                        rescan(pr);
        }
        return NULL;
}

static int has_prepare(void *userdata, const char *name) {
        *(bool *) userdata = true;
        return 0;
}

int pf_prepare_start(pf_packs *packs, pf_prepare **ret) {
        pf_prepare *pr;
        bool any = false;
        int r;

        *ret = NULL;
        if (!pf_packs_profiles_root(packs))
                return 0;
        if (!pf_packs_cache(packs)) {
                /* Surveys would only fill the plan cache of this mount. */
                pf_config_foreach_prepare(pf_packs_config(packs), has_prepare, &any);
                if (any)
                        log_warning("prepare: no cache, so nothing is prepared ahead");
                return 0;
        }
        pr = calloc(1, sizeof(*pr));
        if (!pr)
                return -ENOMEM;
        pr->packs = packs;
        pr->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        pr->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (pr->inotify_fd < 0 || pr->stop_fd < 0) {
                r = log_error_errno(negative_errno(), "prepare: inotify");
                goto fail;
        }
        r = -pthread_create(&pr->thread, NULL, prepare_main, pr);
        if (r < 0) {
                log_error_errno(r, "prepare: cannot start its thread");
                goto fail;
        }
        *ret = pr;
        return 0;
fail:
        if (pr->inotify_fd >= 0)
                close(pr->inotify_fd);
        if (pr->stop_fd >= 0)
                close(pr->stop_fd);
        free(pr);
        return r;
}

void pf_prepare_stop(pf_prepare *pr) {
        uint64_t one = 1;

        if (!pr)
                return;
        __atomic_store_n(&pr->stopping, true, __ATOMIC_RELEASE);
        /* An encoding under way would otherwise run to its end. */
        pf_cancel_request();
        (void) !write(pr->stop_fd, &one, sizeof(one));
        pthread_join(pr->thread, NULL);
        for (size_t i = 0; i < pr->n_queue; i++)
                task_done(&pr->queue[i]);
        free(pr->queue);
        for (size_t i = 0; i < pr->n_wanted; i++) {
                free(pr->wanted[i].view);
                free(pr->wanted[i].item);
        }
        free(pr->wanted);
        close(pr->inotify_fd);
        close(pr->stop_fd);
        free(pr);
}
