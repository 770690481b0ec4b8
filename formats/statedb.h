/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The store database a pack carries with the localstatedir option (as
 * `guix pack --localstatedir`): the closure registered with Nix's schema,
 * registrationTime 1 and the source database's hashes, sizes and references, so
 * the daemon of the machine the pack is unpacked on knows the items are valid.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "packfs/format.h"

typedef struct pf_state_layout {
        const char *db_path;            /* in the pack, e.g. "/var/guix/db/db.sqlite" */
        const char *profile_link;       /* the profile's GC root link in the pack */
} pf_state_layout;

/* Nix's layout for a store at /nix/store, Guix's for any other. */
pf_state_layout pf_state_layout_for(const char *store_dir);

/* Builds the database for VIEW's closure; *ret_data (free()) holds the file's
 * bytes. Deterministic: the same closure gives the same bytes. */
int pf_statedb_generate(const pf_view *view, uint8_t **ret_data, size_t *ret_size);
