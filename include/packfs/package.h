/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The package a profile stands for, as `guix pack` names its .deb and .rpm
 * archives: a profile of one package is that package, with its name and
 * version; any other is named after the profile and has no version (each
 * format writes its own placeholder, "0.0.0" for both today). Names come out
 * as found: each format makes them valid for itself.
 *
 * Every function is thread-safe; strings returned are malloc'd, the caller's.
 */
#pragma once

#include <stddef.h>

#include "packfs/store.h"

/* Splits a store item's name ("hello-2.12.1", no hash) as Nix's parseDrvName
 * does: the version starts after the first '-' that is not followed by a
 * letter. No version: *RET_VERSION NULL. -ENOMEM. */
int pf_package_split_name(const char *name, char **ret_name, char **ret_version);

/* The top-level entries of a Guix profile's `manifest` (an S-expression,
 * versions 3 and 4): *RET_N names and versions, NULL-terminated vectors to
 * free with pf_strv_free(). -EBADMSG if TEXT is not such a manifest. */
int pf_guix_manifest_packages(const char *text, char ***ret_names, char ***ret_versions, size_t *ret_n);

/* A profile's name without its generation: "demo-3-link" -> "demo"; any other
 * name as it is. NULL without memory. */
char *pf_profile_base_name(const char *view_name);

/* The package of the profile whose store item is ROOT, shown as VIEW_NAME
 * (a profile's path under the profiles directory, or ".store/<item>"):
 *  - a Guix manifest in the profile: its package if it has one, else
 *    (several) the profile;
 *  - else a view of one store item: that item's name split as above;
 *  - else, with STORE (may be NULL): the one store item the profile's item
 *    refers to besides itself and a Nix user environment's env-manifest.nix,
 *    or the profile's item itself when it refers to nothing else;
 *  - else the profile: pf_profile_base_name(VIEW_NAME), *RET_VERSION NULL.
 * -ENOMEM, or an error of reading the store's references. */
int pf_package_of_profile(pf_store *store, const char *store_dir, const char *root, const char *view_name,
                          char **ret_name, char **ret_version);
