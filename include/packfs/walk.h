/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Deterministic walk of a store item: depth-first, pre-order, the entries of each
 * directory sorted bytewise by name (GNU tar's --sort=name order). Symlinks are
 * reported, never followed. Only regular files, directories and symlinks may occur
 * in a store; anything else fails the walk with -EBADMSG and a log line, as do
 * names containing '/' or a newline. Reentrant.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

typedef struct pf_walk_entry {
        const char *path;       /* absolute path of the entry */
        const char *rel_path;   /* relative to the item: "" for the item itself */
        mode_t mode;            /* type and permission bits, from lstat */
        uid_t uid;              /* owner and group, from lstat (access.h); like mtime, */
        gid_t gid;              /* 0 for symlinks, which need no owner */
        uint64_t size;          /* regular files: st_size; else 0 */
        int64_t mtime;          /* st_mtime, to notice a change after planning; 0 for
                                 * symlinks (their lstat is skipped when readdir
                                 * says what they are) */
        const char *link_target;/* symlinks: their target; else NULL */
        unsigned depth;         /* 0 for the item itself */
} pf_walk_entry;

/* Called for every entry; a negative return stops the walk and is returned. The
 * entry and its strings are valid during the call only. */
typedef int (*pf_walk_fn)(void *userdata, const pf_walk_entry *e);

int pf_walk(const char *item_path, pf_walk_fn fn, void *userdata);
