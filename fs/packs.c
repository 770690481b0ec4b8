/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "packfs/background.h"
#include "packfs/cancel.h"
#include "packfs/compressed.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/profiles.h"
#include "packfs/storepath.h"
#include "packs.h"

/* Small caches: a mount serves a handful of packs at a time, and an open file
 * holds its own plan reference, so eviction never disturbs a reader. */
#define PLAN_CACHE_SIZE 32
#define CLOSURE_CACHE_SIZE 32

typedef struct plan_slot {
        const pf_format *format;        /* NULL: a free slot */
        /* A sizing plan (pf_packs_size()): every segment a placeholder of its
         * exact length, never read; else the plan served to readers. */
        bool sizing;
        uint8_t closure_id[32];
        uint8_t options_id[32];
        uint8_t name_id[32];            /* pf_view_name_id(): zeros unless the format is named */
        pf_plan *plan;                  /* once made */
        bool busy;                      /* being planned; waiters sleep on pf_packs.planned */
        /* Planned ahead of use and nobody waits for it yet: its encoders run
         * at idle priority (pf_view.background). Written under the lock,
         * read by encoders without it. */
        bool background;
        int error;                      /* the last attempt failed with this */
        uint64_t attempt;               /* which attempt the slot holds (for its waiters) */
        uint64_t last_use;
} plan_slot;

typedef struct closure_slot {
        pf_closure *closure;
        uint64_t last_use;
        pf_access access;       /* who may read its packs; mode 0 until known */
} closure_slot;

struct pf_packs {
        pf_store *store;
        pf_config *config;
        pf_cache *cache;
        char *profiles_root;

        /* Guards the two caches, use_clock, attempts, n_planners and every
         * waiter's interrupted flag. Held only for lookups and inserts, never
         * while planning or querying the database. */
        pthread_mutex_t lock;
        pthread_cond_t planned;         /* a slot finished, a waiter was interrupted or a planner left */
        plan_slot plans[PLAN_CACHE_SIZE];
        closure_slot closures[CLOSURE_CACHE_SIZE];
        uint64_t use_clock, attempts;
        unsigned n_planners;            /* planner threads running */
};

int pf_packs_new(pf_store *store, pf_config *config, pf_cache *cache, const char *profiles_root, pf_packs **ret) {
        pf_packs *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        if (profiles_root) {
                p->profiles_root = strdup(profiles_root);
                if (!p->profiles_root) {
                        free(p);
                        return -ENOMEM;
                }
                for (size_t n = strlen(p->profiles_root); n > 1 && p->profiles_root[n - 1] == '/'; n--)
                        p->profiles_root[n - 1] = 0;
        }
        p->store = store;
        p->config = config;
        p->cache = cache;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->planned, NULL);
        *ret = p;
        return 0;
}

void pf_packs_free(pf_packs *p) {
        if (!p)
                return;
        /* Planner threads still encoding for readers long gone: stop them
         * (their partial objects are discarded) and wait until they left. */
        pthread_mutex_lock(&p->lock);
        if (p->n_planners > 0) {
                log_info("stopping %u encoding(s) under way", p->n_planners);
                pf_cancel_request();
        }
        while (p->n_planners > 0)
                pthread_cond_wait(&p->planned, &p->lock);
        pthread_mutex_unlock(&p->lock);
        for (size_t i = 0; i < PLAN_CACHE_SIZE; i++)
                pf_plan_unref(p->plans[i].plan);
        for (size_t i = 0; i < CLOSURE_CACHE_SIZE; i++)
                pf_closure_unref(p->closures[i].closure);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->planned);
        pf_cache_free(p->cache);
        pf_store_free(p->store);
        pf_config_free(p->config);
        free(p->profiles_root);
        free(p);
}

pf_store *pf_packs_store(pf_packs *p) {
        return p->store;
}

pf_cache *pf_packs_cache(pf_packs *p) {
        return p->cache;
}

const char *pf_packs_profiles_root(pf_packs *p) {
        return p->profiles_root;
}

const pf_config *pf_packs_config(pf_packs *p) {
        return p->config;
}

int pf_packs_resolve_view(pf_packs *p, const char *view, char **ret_item) {
        _cleanup_free_ char *item = NULL;
        const char *store_dir = pf_store_dir(p->store);
        size_t prefix = strlen(PF_STORE_VIEW_DIR);
        int r;

        if (strncmp(view, PF_STORE_VIEW_DIR "/", prefix + 1) == 0) {
                const char *base = view + prefix + 1;
                if (!pf_store_basename_valid(base))
                        return -ENOENT;
                if (asprintf(&item, "%s/%s", store_dir, base) < 0)
                        return -ENOMEM;
        } else {
                if (!p->profiles_root || !pf_relpath_is_clean(view))
                        return -ENOENT;
                r = pf_profile_resolve(p->profiles_root, store_dir, view, &item);
                if (r < 0)
                        return r;
        }
        r = pf_store_is_valid(p->store, item);
        if (r < 0)
                return r;
        if (r == 0) {
                log_warning("view %s: %s is not a valid store path", view, item);
                return -ENOENT;
        }
        *ret_item = TAKE_PTR(item);
        return 0;
}

static int get_closure(pf_packs *p, const char *item, pf_closure **ret) {
        pf_closure *c = NULL;
        closure_slot *victim;
        int r;

        pthread_mutex_lock(&p->lock);
        victim = &p->closures[0];
        for (size_t i = 0; i < CLOSURE_CACHE_SIZE; i++) {
                closure_slot *s = &p->closures[i];
                if (s->closure && strcmp(s->closure->root, item) == 0) {
                        s->last_use = ++p->use_clock;
                        c = pf_closure_ref(s->closure);
                        break;
                }
                if (s->last_use < victim->last_use)
                        victim = s;
        }
        pthread_mutex_unlock(&p->lock);
        if (c) {
                *ret = c;
                return 0;
        }

        r = pf_store_closure(p->store, item, &c);
        if (r < 0)
                return r;
        pthread_mutex_lock(&p->lock);
        pf_closure_unref(victim->closure);
        victim->closure = pf_closure_ref(c);
        victim->access = (pf_access) {};
        victim->last_use = ++p->use_clock;
        pthread_mutex_unlock(&p->lock);
        *ret = c;
        return 0;
}

static const char *options_name(const char *view) {
        /* .store views take the defaults; profiles their own path. */
        return strncmp(view, PF_STORE_VIEW_DIR "/", strlen(PF_STORE_VIEW_DIR) + 1) == 0 ? "" : view;
}

int pf_packs_options(pf_packs *p, const char *view, pf_options *ret) {
        return pf_config_options_for(p->config, options_name(view), ret);
}

static int plan_cached(pf_packs *p, const pf_view *v, const pf_format *format, bool sizing,
                       pf_packs_waiter *waiter, bool background, pf_plan **ret);

/* A plan another format needs (compressed variants: their base) is made in
 * the thread that needs it: that thread is already the one a reader waits on. */
static int plan_of(const pf_view *view, const pf_format *format, pf_plan **ret) {
        return plan_cached(view->planner, view, format, false, NULL, false, ret);
}

/* The slot holding FORMAT over V (planned, being planned, or failed), or NULL. */
static plan_slot *slot_find(pf_packs *p, const pf_view *v, const pf_format *format, bool sizing) {
        uint8_t name_id[32];

        pf_view_name_id(v, format, name_id);
        for (size_t i = 0; i < PLAN_CACHE_SIZE; i++) {
                plan_slot *s = &p->plans[i];
                if (s->format == format && s->sizing == sizing && !memcmp(s->closure_id, v->closure->id, 32) &&
                    !memcmp(s->options_id, v->options->id, 32) && !memcmp(s->name_id, name_id, 32))
                        return s;
        }
        return NULL;
}

/* The least recently used slot nobody is planning into, or NULL if all are busy. */
static plan_slot *slot_victim(pf_packs *p) {
        plan_slot *victim = NULL;

        for (size_t i = 0; i < PLAN_CACHE_SIZE; i++) {
                plan_slot *s = &p->plans[i];
                if (!s->busy && (!victim || s->last_use < victim->last_use))
                        victim = s;
        }
        return victim;
}

static void slot_claim(pf_packs *p, plan_slot *slot, const pf_view *v, const pf_format *format, bool sizing,
                       bool background) {
        pf_plan_unref(slot->plan);
        slot->plan = NULL;
        slot->format = format;
        slot->sizing = sizing;
        memcpy(slot->closure_id, v->closure->id, 32);
        memcpy(slot->options_id, v->options->id, 32);
        pf_view_name_id(v, format, slot->name_id);
        slot->busy = true;
        slot->background = background;
        slot->error = 0;
        slot->attempt = ++p->attempts;
}

/* FORMAT's sizing plan over V if one is made, referenced, or NULL. */
static pf_plan *sizing_plan_of(pf_packs *p, const pf_view *v, const pf_format *format) {
        pf_plan *plan = NULL;
        plan_slot *slot;

        pthread_mutex_lock(&p->lock);
        slot = slot_find(p, v, format, true);
        if (slot && !slot->busy && slot->plan)
                plan = pf_plan_ref(slot->plan);
        pthread_mutex_unlock(&p->lock);
        return plan;
}

/* Plans FORMAT over V (a SIZING plan or the real one) into SLOT (NULL:
 * uncached, in the BACKGROUND or not) and publishes the result. */
static int plan_into(pf_packs *p, const pf_view *v, const pf_format *format, bool sizing, plan_slot *slot,
                     bool background, pf_plan **ret) {
        static const bool always = true;
        pf_view view = *v;
        pf_plan *plan = NULL;
        int r;

        view.background = slot ? &slot->background : background ? &always : NULL;
        if (sizing)
                r = format->plan_sparse(format, &view, pf_format_want_none, NULL, &plan);
        else if (format->complete && (plan = sizing_plan_of(p, v, format))) {
                r = format->complete(format, &view, plan);
                if (r < 0) {
                        pf_plan_unref(plan);
                        plan = NULL;
                }
        } else
                r = format->plan(format, &view, &plan);
        if (r < 0 && r != -ECANCELED)
                log_error_errno(r, "%s/%s: cannot plan", v->name, format->file_name);

        pthread_mutex_lock(&p->lock);
        if (slot) {
                slot->busy = false;
                if (r >= 0) {
                        slot->plan = pf_plan_ref(plan);
                        slot->last_use = ++p->use_clock;
                } else
                        slot->error = r;
                pthread_cond_broadcast(&p->planned);
        }
        pthread_mutex_unlock(&p->lock);
        if (r >= 0)
                *ret = plan;
        return r;
}

/* A planner thread: makes one plan into its slot for whoever waits on it, and
 * goes on when they stop waiting (interrupted), so the encoding lands in the
 * cache for the next reader. It owns its planner. */
typedef struct planner {
        pf_packs *packs;
        char *view, *item;
        const pf_format *format;
        bool sizing;
        plan_slot *slot;
        bool published;         /* plan_into() ran and published the outcome */
} planner;

static int with_view(pf_packs *p, const char *view_name, const char *item,
                     int (*fn)(pf_packs *p, const pf_view *v, void *userdata), void *userdata);

static int planner_plan(pf_packs *p, const pf_view *v, void *userdata) {
        planner *pl = userdata;
        pf_plan *plan = NULL;
        int r = plan_into(p, v, pl->format, pl->sizing, pl->slot, false, &plan);

        pl->published = true;
        pf_plan_unref(plan); /* the slot holds its own reference */
        return r;
}

static void *planner_main(void *userdata) {
        planner *pl = userdata;
        pf_packs *p = pl->packs;
        int r = with_view(p, pl->view, pl->item, planner_plan, pl);

        pthread_mutex_lock(&p->lock);
        if (!pl->published) {
                /* The view could not be set up (options, closure): the waiters get that. */
                log_error_errno(r, "%s/%s: cannot plan", pl->view, pl->format->file_name);
                pl->slot->busy = false;
                pl->slot->error = r;
        }
        p->n_planners--;
        pthread_cond_broadcast(&p->planned);
        pthread_mutex_unlock(&p->lock);
        free(pl->view);
        free(pl->item);
        free(pl);
        return NULL;
}

/* Starts a planner thread for SLOT (claimed for FORMAT over V). Called with the
 * lock held. */
static int planner_start_locked(pf_packs *p, const pf_view *v, const pf_format *format, bool sizing,
                                plan_slot *slot) {
        planner *pl = calloc(1, sizeof(*pl));
        pthread_attr_t attr;
        pthread_t thread;
        int r;

        if (!pl)
                return -ENOMEM;
        *pl = (planner) { .packs = p, .view = strdup(v->name), .item = strdup(v->closure->root),
                          .format = format, .sizing = sizing, .slot = slot };
        if (!pl->view || !pl->item) {
                r = -ENOMEM;
                goto fail;
        }
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        r = -pthread_create(&thread, &attr, planner_main, pl);
        pthread_attr_destroy(&attr);
        if (r < 0)
                goto fail;
        p->n_planners++;
        return 0;
fail:
        free(pl->view);
        free(pl->item);
        free(pl);
        return r;
}

#define GONE_POLL_NS (500 * 1000 * 1000L)

/* Sleeps until a slot changes (or half a second passes, for a waiter that can
 * be abandoned). Called with the lock held. */
static void wait_planned(pf_packs *p, const pf_packs_waiter *waiter) {
        struct timespec until;

        if (!waiter || !waiter->gone) {
                pthread_cond_wait(&p->planned, &p->lock);
                return;
        }
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += GONE_POLL_NS;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->planned, &p->lock, &until);
}

/* The plan of FORMAT over V (its SIZING plan or the real one), from the plan
 * cache or made once: concurrent callers for the same plan wait for the first
 * one's result.
 *
 * With a WAITER, the plan is made by a planner thread and the caller only
 * waits, so pf_packs_interrupt() can end its wait (-EINTR) while the planning
 * goes on. Without one, the caller plans itself. BACKGROUND: made ahead of
 * use (idle priority until a caller without BACKGROUND comes to wait). */
static int plan_cached(pf_packs *p, const pf_view *v, const pf_format *format, bool sizing,
                       pf_packs_waiter *waiter, bool background, pf_plan **ret) {
        uint64_t waited_for = 0;        /* the attempt this caller waited on */
        plan_slot *slot;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                slot = slot_find(p, v, format, sizing);
                if (slot && slot->busy) {
                        if (!background && __atomic_exchange_n(&slot->background, false, __ATOMIC_ACQ_REL))
                                pf_compressed_raised(); /* its slots_lock is never held with ours */
                        if (waiter && (waiter->interrupted || (waiter->gone && waiter->gone(waiter->userdata)))) {
                                pthread_mutex_unlock(&p->lock);
                                return -EINTR;
                        }
                        waited_for = slot->attempt;
                        wait_planned(p, waiter);
                        continue;
                }
                if (slot && slot->plan) {
                        slot->last_use = ++p->use_clock;
                        *ret = pf_plan_ref(slot->plan);
                        pthread_mutex_unlock(&p->lock);
                        return 0;
                }
                if (slot && waited_for == slot->attempt) {
                        /* The attempt this caller waited on failed. */
                        int r = slot->error;
                        pthread_mutex_unlock(&p->lock);
                        return r;
                }
                /* Not planned, or an earlier caller's attempt failed: plan anew. */
                if (!slot)
                        slot = slot_victim(p);
                if (!slot)
                        break; /* every slot busy: plan without caching */
                slot_claim(p, slot, v, format, sizing, background);
                if (waiter && planner_start_locked(p, v, format, sizing, slot) >= 0) {
                        waited_for = slot->attempt;
                        continue;
                }
                break;
        }
        pthread_mutex_unlock(&p->lock);
        return plan_into(p, v, format, sizing, slot, background, ret);
}

/* Sets up the view of VIEW_NAME whose item is ITEM and calls FN on it. */
static int with_view(pf_packs *p, const char *view_name, const char *item,
                     int (*fn)(pf_packs *p, const pf_view *v, void *userdata), void *userdata) {
        pf_closure *closure = NULL;
        pf_options options = {};
        int r;

        r = pf_config_options_for(p->config, options_name(view_name), &options);
        if (r < 0)
                return r;
        r = get_closure(p, item, &closure);
        if (r >= 0) {
                pf_view v = {
                        .store_dir = pf_store_dir(p->store),
                        .store = p->store,
                        .closure = closure,
                        .name = view_name,
                        .options = &options,
                        .cache = p->cache,
                        .plan_of = plan_of,
                        .planner = p,
                };
                r = fn(p, &v, userdata);
        }
        pf_closure_unref(closure);
        pf_options_done(&options);
        return r;
}

typedef struct plan_request {
        const pf_format *format;
        bool sizing;
        pf_packs_waiter *waiter;
        bool background;
        pf_plan **ret;
} plan_request;

static int plan_in_view(pf_packs *p, const pf_view *v, void *userdata) {
        plan_request *req = userdata;
        return plan_cached(p, v, req->format, req->sizing, req->waiter, req->background, req->ret);
}

int pf_packs_plan(pf_packs *p, const char *view, const char *item, const pf_format *format,
                  pf_packs_waiter *waiter, pf_plan **ret) {
        plan_request req = { .format = format, .waiter = waiter, .ret = ret };
        return with_view(p, view, item, plan_in_view, &req);
}

void pf_packs_interrupt(pf_packs *p, pf_packs_waiter *waiter) {
        pthread_mutex_lock(&p->lock);
        waiter->interrupted = true;
        pthread_cond_broadcast(&p->planned);
        pthread_mutex_unlock(&p->lock);
}

int pf_packs_plan_ahead(pf_packs *p, const char *view, const char *item, const pf_format *format) {
        pf_plan *plan = NULL;
        plan_request req = { .format = format, .background = true, .ret = &plan };
        int r;

        r = with_view(p, view, item, plan_in_view, &req);
        pf_plan_unref(plan);
        return r;
}

typedef struct size_request {
        const pf_format *format;
        pf_packs_waiter *waiter;
        uint64_t *ret;
} size_request;

static int size_in_view(pf_packs *p, const pf_view *v, void *userdata) {
        size_request *req = userdata;
        const pf_format *format = req->format;
        pf_plan *plan = NULL;
        plan_slot *slot;
        bool sizing;
        int r;

        /* The real plan when there is one, or when only an encoding tells. */
        pthread_mutex_lock(&p->lock);
        slot = slot_find(p, v, format, false);
        if (slot && !slot->busy && slot->plan) {
                slot->last_use = ++p->use_clock;
                *req->ret = pf_plan_size(slot->plan);
                pthread_mutex_unlock(&p->lock);
                return 0;
        }
        pthread_mutex_unlock(&p->lock);
        /* Without a cache a sizing plan would walk what the real plan walks
         * again at open: the real one then, unless that one reads every file. */
        sizing = format->plan_sparse && !format->cached && (p->cache || format->complete);
        r = plan_cached(p, v, format, sizing, req->waiter, false, &plan);
        if (r >= 0)
                *req->ret = pf_plan_size(plan);
        pf_plan_unref(plan);
        return r;
}

int pf_packs_size(pf_packs *p, const char *view, const char *item, const pf_format *format,
                  pf_packs_waiter *waiter, uint64_t *ret) {
        return with_view(p, view, item, size_in_view, &(size_request) { .format = format, .waiter = waiter, .ret = ret });
}

static int ready_in_view(pf_packs *p, const pf_view *v, void *userdata) {
        const pf_format *format = userdata;
        plan_slot *slot;
        bool planned;

        if (!format->cached)
                return 1;
        pthread_mutex_lock(&p->lock);
        slot = slot_find(p, v, format, false);
        planned = slot && !slot->busy && slot->plan;
        pthread_mutex_unlock(&p->lock);
        return planned ? 1 : format->cached(format, v);
}

int pf_packs_ready(pf_packs *p, const char *view, const char *item, const pf_format *format) {
        if (!format->cached)
                return 1; /* no need for the view */
        return with_view(p, view, item, ready_in_view, (void *) format);
}

typedef struct stream_request {
        const pf_format *format;
        int fd;
} stream_request;

static int stream_in_view(pf_packs *p, const pf_view *v, void *userdata) {
        stream_request *req = userdata;
        return req->format->stream(req->format, v, req->fd);
}

int pf_packs_stream(pf_packs *p, const char *view, const char *item, const pf_format *format, int fd) {
        if (!format->stream)
                return -EOPNOTSUPP;
        return with_view(p, view, item, stream_in_view, &(stream_request) { .format = format, .fd = fd });
}

/* The slot holding C, if it is still cached. Called with the lock held. */
static closure_slot *slot_of_locked(pf_packs *p, const pf_closure *c) {
        for (size_t i = 0; i < CLOSURE_CACHE_SIZE; i++)
                if (p->closures[i].closure == c)
                        return &p->closures[i];
        return NULL;
}

int pf_packs_access(pf_packs *p, const char *view, const char *item, pf_access *ret) {
        pf_closure *closure = NULL;
        closure_slot *s;
        pf_access a = {};
        int r;

        r = get_closure(p, item, &closure);
        if (r < 0)
                return log_error_errno(r, "%s: cannot tell who may read its packs", view);
        pthread_mutex_lock(&p->lock);
        s = slot_of_locked(p, closure);
        if (s)
                a = s->access;
        pthread_mutex_unlock(&p->lock);
        /* Two threads may both compute it: the same answer, and rare. */
        if (a.mode == 0) {
                r = pf_access_closure(p->cache, closure, &a);
                if (r >= 0) {
                        pthread_mutex_lock(&p->lock);
                        s = slot_of_locked(p, closure);
                        if (s)
                                s->access = a;
                        pthread_mutex_unlock(&p->lock);
                }
        }
        pf_closure_unref(closure);
        if (r < 0)
                return log_error_errno(r, "%s: cannot tell who may read its packs", view);
        *ret = a;
        return 0;
}
