/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A small tree of files a format shows as a directory of a view (oci/): each
 * file a path below the directory ("oci-layout", "blobs/sha256/<hex>") and the
 * plan of its bytes. Directories are implied by the paths. Frozen once built,
 * so any number of threads may read it; it owns its files' plan references.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "packfs/plan.h"

typedef struct pf_tree_file {
        char *path;             /* relative, clean, no "." or ".." components */
        pf_plan *plan;
} pf_tree_file;

typedef struct pf_tree pf_tree;

int pf_tree_new(pf_tree **ret);
void pf_tree_free(pf_tree *t);
/* Adds PATH with PLAN (the tree takes the reference, also on failure).
 * -EEXIST if PATH is taken by a file or a directory, -EINVAL if it is not clean. */
int pf_tree_add(pf_tree *t, const char *path, pf_plan *plan);
/* Sorts the files; call once, after the last pf_tree_add(). */
void pf_tree_freeze(pf_tree *t);

/* The file at PATH, or NULL. */
const pf_tree_file *pf_tree_find(const pf_tree *t, const char *path);
/* Whether PATH is a directory of the tree ("" is its root). */
bool pf_tree_is_dir(const pf_tree *t, const char *path);
/* Calls FN once for each entry directly in directory DIR, in name order;
 * stops at FN's first negative return and returns it. */
int pf_tree_list(const pf_tree *t, const char *dir, int (*fn)(void *userdata, const char *name, bool is_dir),
                 void *userdata);
