/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pack.squashfs's pure parts, exposed for tests (tests/unit/test-squashfs.c):
 * the image's directory tree and the Singularity files' text.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pf_sqfs_node pf_sqfs_node;

struct pf_sqfs_node {
        char *name;                     /* "" for the root */
        pf_sqfs_node *parent;
        pf_sqfs_node **children;        /* directories: sorted by name once pf_sqfs_tree_finish() ran */
        size_t n_children, cap;
        mode_t mode;                    /* type and permission bits */
        uint32_t ino;                   /* from pf_sqfs_tree_finish(): post-order, 1-based */
        uint64_t ref;                   /* where its inode went in the inode table */
        char *target;                   /* symlinks */
        void *inode;                    /* regular files: the inode the block processor fills */
};

/* A tree with a root directory of MODE; free with pf_sqfs_tree_free(). */
int pf_sqfs_tree_new(mode_t mode, pf_sqfs_node **ret);
void pf_sqfs_tree_free(pf_sqfs_node *root);
/* Appends a child NAME (no lookup: the caller knows it is new, as a walk does). */
int pf_sqfs_node_add(pf_sqfs_node *dir, const char *name, mode_t mode, const char *target, pf_sqfs_node **ret);
/* The node at absolute PATH, or NULL. */
pf_sqfs_node *pf_sqfs_lookup(pf_sqfs_node *root, const char *path);
/* Makes the directories of absolute PATH that are missing (0755; PATH itself
 * MODE when made); -ENOTDIR if a component is not a directory. */
int pf_sqfs_mkdir_p(pf_sqfs_node *root, const char *path, mode_t mode, pf_sqfs_node **ret);
/* Sorts every directory bytewise, refuses a name given twice (-EEXIST, with
 * *ret_clash set to the full path, malloc'd) and numbers the inodes in the order
 * they are written: depth-first, a directory after its entries, the root last.
 * Returns the number of inodes. */
int pf_sqfs_tree_finish(pf_sqfs_node *root, uint32_t *ret_count, char **ret_clash);

/* A symlink's target as the seed writes them (relative, for Singularity 2.x):
 * TARGET (absolute) as seen from directory DIR (absolute). Malloc'd. */
int pf_sqfs_relative_target(const char *dir, const char *target, char **ret);
/* /.singularity.d/env/90-environment.sh for the "VAR=value" vector VARS: each
 * one assigned (single-quoted) and exported. Malloc'd. */
int pf_sqfs_environment_text(char *const *vars, char **ret);
