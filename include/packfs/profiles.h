/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Profiles: symlinks under a profiles root that resolve to a valid store item
 * ("demo -> demo-3-link -> /nix/store/...-user-environment"). Nesting below the
 * root is kept ("per-user/alice/guix-profile").
 *
 * Resolution follows links by hand, never through the kernel's path walk: a
 * relative link must stay inside the profiles root, and the chain must end at a
 * "<store>/<hash>-<name>" path. Anything else (a link to /etc, "..", a loop) is
 * refused with an error and a log line. Reentrant; no shared state.
 */
#pragma once

#include <stddef.h>

#include "packfs/store.h"

#define PF_PROFILE_MAX_HOPS 40
#define PF_PROFILE_MAX_DEPTH 16

/* Resolves the link REL_PATH (relative to PROFILES_ROOT, no "." or ".." components)
 * to a store item path. *ret_item is malloc'd. -ENOENT if it does not exist,
 * -ELOOP for too many hops, -EXDEV if it leaves the profiles root or the store,
 * -ENOTDIR if REL_PATH names a directory. Does not check the database. */
int pf_profile_resolve(const char *profiles_root, const char *store_dir, const char *rel_path,
                       char **ret_item);

enum pf_profile_entry_kind {
        PF_PROFILE_ENTRY_LINK,       /* a symlink: a profile candidate */
        PF_PROFILE_ENTRY_DIRECTORY,  /* a directory that may hold profiles */
};

typedef struct pf_profile_entry {
        char *name;
        enum pf_profile_entry_kind kind;
} pf_profile_entry;

/* Lists the entries of directory REL_DIR ("" for the root) under PROFILES_ROOT,
 * sorted by name: symlinks and subdirectories only; hidden names, names that are
 * not valid file names and other file types are left out. Free with
 * pf_profile_entries_free(). */
int pf_profile_list(const char *profiles_root, const char *rel_dir, pf_profile_entry **ret,
                    size_t *ret_n);
void pf_profile_entries_free(pf_profile_entry *e, size_t n);

/* Whether REL_PATH is a clean relative path: non-empty components, none "." or
 * "..", no leading or doubled slash. */
int pf_relpath_is_clean(const char *rel_path);
