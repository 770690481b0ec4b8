/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
        const pf_format *format;
        uint8_t closure_id[32];
        uint8_t options_id[32];
        pf_plan *plan;
        bool busy;              /* being planned; waiters sleep on pf_packs.planned */
        uint64_t last_use;
} plan_slot;

typedef struct closure_slot {
        pf_closure *closure;
        uint64_t last_use;
} closure_slot;

struct pf_packs {
        pf_store *store;
        pf_config *config;
        pf_cache *cache;
        char *profiles_root;

        /* Guards the two caches and use_clock. Held only for lookups and inserts,
         * never while planning or querying the database. */
        pthread_mutex_t lock;
        pthread_cond_t planned;
        plan_slot plans[PLAN_CACHE_SIZE];
        closure_slot closures[CLOSURE_CACHE_SIZE];
        uint64_t use_clock;
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
        victim->last_use = ++p->use_clock;
        pthread_mutex_unlock(&p->lock);
        *ret = c;
        return 0;
}

static const char *options_name(const char *view) {
        /* .store views take the defaults; profiles their own path. */
        return strncmp(view, PF_STORE_VIEW_DIR "/", strlen(PF_STORE_VIEW_DIR) + 1) == 0 ? "" : view;
}

static int plan_of(const pf_view *view, const pf_format *format, pf_plan **ret);

/* The plan of FORMAT over V, from the plan cache or made once: concurrent
 * callers for the same plan wait for the first one's result. */
static int plan_cached(pf_packs *p, const pf_view *v, const pf_format *format, pf_plan **ret) {
        plan_slot *slot = NULL;
        pf_plan *plan = NULL;
        int r;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                plan_slot *victim = NULL;
                bool waited = false;

                for (size_t i = 0; i < PLAN_CACHE_SIZE; i++) {
                        plan_slot *s = &p->plans[i];
                        if (s->format == format && !memcmp(s->closure_id, v->closure->id, 32) &&
                            !memcmp(s->options_id, v->options->id, 32)) {
                                if (s->busy) {
                                        pthread_cond_wait(&p->planned, &p->lock);
                                        waited = true;
                                        break;
                                }
                                s->last_use = ++p->use_clock;
                                *ret = pf_plan_ref(s->plan);
                                pthread_mutex_unlock(&p->lock);
                                return 0;
                        }
                        if (!s->busy && (!victim || s->last_use < victim->last_use))
                                victim = s;
                }
                if (waited)
                        continue;
                /* With every slot busy, plan without caching. */
                if (victim) {
                        slot = victim;
                        pf_plan_unref(slot->plan);
                        slot->plan = NULL;
                        slot->format = format;
                        memcpy(slot->closure_id, v->closure->id, 32);
                        memcpy(slot->options_id, v->options->id, 32);
                        slot->busy = true;
                }
                break;
        }
        pthread_mutex_unlock(&p->lock);

        r = format->plan(format, v, &plan);
        if (r < 0)
                log_error_errno(r, "%s/%s: cannot plan", v->name, format->file_name);

        pthread_mutex_lock(&p->lock);
        if (slot) {
                slot->busy = false;
                if (r >= 0) {
                        slot->plan = pf_plan_ref(plan);
                        slot->last_use = ++p->use_clock;
                } else
                        slot->format = NULL; /* waiters try again themselves */
                pthread_cond_broadcast(&p->planned);
        }
        pthread_mutex_unlock(&p->lock);
        if (r >= 0)
                *ret = plan;
        return r;
}

static int plan_of(const pf_view *view, const pf_format *format, pf_plan **ret) {
        return plan_cached(view->planner, view, format, ret);
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
        pf_plan **ret;
} plan_request;

static int plan_in_view(pf_packs *p, const pf_view *v, void *userdata) {
        plan_request *req = userdata;
        return plan_cached(p, v, req->format, req->ret);
}

int pf_packs_plan(pf_packs *p, const char *view, const char *item, const pf_format *format, pf_plan **ret) {
        return with_view(p, view, item, plan_in_view, &(plan_request) { .format = format, .ret = ret });
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
