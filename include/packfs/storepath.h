/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Store path syntax: "<store-dir>/<hash>-<name>", where <hash> is 32 characters of
 * Nix's base-32 alphabet and <name> is 1..211 characters of [A-Za-z0-9+-._?=] not
 * starting with '.'. Everything packfs takes from a database or a profile link goes
 * through these checks before it is used as a file name. Pure functions; thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_HASH_PART_LEN 32
#define PF_NAME_MAX_LEN 211

/* True if C is in Nix's base-32 alphabet ("0123456789abcdfghijklmnpqrsvwxyz"). */
bool pf_is_base32_char(char c);

/* True if BASENAME is a valid "<hash>-<name>" store item base name. */
bool pf_store_basename_valid(const char *basename);

/* True if NAME is a valid store path name (the part after "<hash>-"). */
bool pf_store_name_valid(const char *name);

/*
 * If PATH is exactly "<store_dir>/<hash>-<name>" (no trailing slash, no further
 * components), returns a pointer to the basename inside PATH; NULL otherwise.
 * STORE_DIR has no trailing slash.
 */
const char *pf_store_path_basename(const char *store_dir, const char *path);

/*
 * If PATH lies inside a store item ("<store_dir>/<hash>-<name>[/...]"), returns the
 * length of the item prefix of PATH; 0 otherwise. Components "." and ".." anywhere
 * in PATH make it invalid.
 */
size_t pf_store_path_item_len(const char *store_dir, const char *path);
