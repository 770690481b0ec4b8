/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "packfs/macro.h"
#include "packfs/profiles.h"
#include "packfs/tree.h"

struct pf_tree {
        pf_tree_file *files;    /* sorted by path once frozen */
        size_t n_files, allocated;
};

int pf_tree_new(pf_tree **ret) {
        *ret = calloc(1, sizeof(pf_tree));
        return *ret ? 0 : -ENOMEM;
}

void pf_tree_free(pf_tree *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->n_files; i++) {
                free(t->files[i].path);
                pf_plan_unref(t->files[i].plan);
        }
        free(t->files);
        free(t);
}

/* Whether A is B or a directory above it (or below it, with A and B swapped). */
static bool is_prefix_dir(const char *a, const char *b) {
        size_t n = strlen(a);
        return strncmp(a, b, n) == 0 && (b[n] == 0 || b[n] == '/');
}

int pf_tree_add(pf_tree *t, const char *path, pf_plan *plan) {
        if (!pf_relpath_is_clean(path)) {
                pf_plan_unref(plan);
                return -EINVAL;
        }
        for (size_t i = 0; i < t->n_files; i++)
                if (is_prefix_dir(path, t->files[i].path) || is_prefix_dir(t->files[i].path, path)) {
                        pf_plan_unref(plan);
                        return -EEXIST;
                }
        if (t->n_files == t->allocated) {
                size_t na = t->allocated ? 2 * t->allocated : 8;
                pf_tree_file *v = reallocarray(t->files, na, sizeof(*v));
                if (!v) {
                        pf_plan_unref(plan);
                        return -ENOMEM;
                }
                t->files = v;
                t->allocated = na;
        }
        t->files[t->n_files].path = strdup(path);
        if (!t->files[t->n_files].path) {
                pf_plan_unref(plan);
                return -ENOMEM;
        }
        t->files[t->n_files++].plan = plan;
        return 0;
}

static int file_cmp(const void *a, const void *b) {
        return strcmp(((const pf_tree_file *) a)->path, ((const pf_tree_file *) b)->path);
}

void pf_tree_freeze(pf_tree *t) {
        qsort(t->files, t->n_files, sizeof(*t->files), file_cmp);
}

const pf_tree_file *pf_tree_find(const pf_tree *t, const char *path) {
        pf_tree_file key = { .path = (char *) path };
        return bsearch(&key, t->files, t->n_files, sizeof(*t->files), file_cmp);
}

bool pf_tree_is_dir(const pf_tree *t, const char *path) {
        size_t n = strlen(path);

        if (n == 0)
                return true;
        for (size_t i = 0; i < t->n_files; i++)
                if (strncmp(t->files[i].path, path, n) == 0 && t->files[i].path[n] == '/')
                        return true;
        return false;
}

int pf_tree_list(const pf_tree *t, const char *dir, int (*fn)(void *userdata, const char *name, bool is_dir),
                 void *userdata) {
        size_t n = strlen(dir);
        char last[4096] = "";
        int r;

        /* Sorted paths: a directory's entries come together, each child's
         * files in a run (the same first component after DIR). */
        for (size_t i = 0; i < t->n_files; i++) {
                const char *p = t->files[i].path, *name, *slash;
                if (n > 0 && (strncmp(p, dir, n) != 0 || p[n] != '/'))
                        continue;
                name = n > 0 ? p + n + 1 : p;
                slash = strchr(name, '/');
                size_t len = slash ? (size_t) (slash - name) : strlen(name);
                if (len >= sizeof(last))
                        return -ENAMETOOLONG;
                if (strlen(last) == len && strncmp(last, name, len) == 0)
                        continue;
                memcpy(last, name, len);
                last[len] = 0;
                r = fn(userdata, last, slash != NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}
