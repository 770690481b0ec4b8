/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The write side of packfs's own store (`packfs store init|add|profile`): a store
 * directory plus a SQLite database with the schema Nix 2.x creates, filled the
 * way `nix-store --add` and nix-env's buildEnv fill theirs, so a store made by
 * packfs can be read by packfs (and by Nix) like any other.
 *
 * Every function takes the store directory (absolute, no trailing slash) and
 * the database path explicitly, opens its own database connection and closes it
 * before returning, so calls are thread-safe and may run in several processes
 * at once: writers serialise on the database's write lock (waited for, up to a
 * busy timeout) and readers are never blocked (WAL).
 *
 * Functions return 0 or a negative errno. Database errors map to -EBUSY (locked
 * past the timeout), -EIO (I/O error), -EBADMSG (corrupt database or unknown
 * schema), -ENOSPC, -EROFS, -EACCES, -ENOMEM. Output parameters are written only
 * on success and are owned by the caller (free()).
 *
 * Nothing is logged above debug level, except the file collisions of
 * pf_store_make_profile(), which are warnings.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Nix 2.x's database schema (CREATE statements, "if not exists"), also used for
 * the databases packs carry (localstatedir). */
extern const char pf_nix_schema_sql[];

/*
 * Creates STORE_DIR (and parents, mode 0755) and the database DB_PATH (and its
 * parent directories) with Nix's schema in WAL mode. Idempotent: an existing
 * store and database are kept as they are. Returns -EBADMSG if DB_PATH exists
 * but lacks Nix's ValidPaths columns.
 */
int pf_store_init(const char *store_dir, const char *db_path);

/*
 * Computes the store path Nix gives a recursively (NAR) hashed source item:
 * "<store_dir>/<hash32>-<name>", where hash32 is the nix-base32 of the SHA-256 of
 * "source[:<ref>...]:sha256:<hex nar_sha256>:<store_dir>:<name>" XOR-folded to 20
 * bytes. REFS (N_REFS full store paths, any order; sorted here as Nix does) are
 * the references made part of the type, as Nix's makeType()/makeFixedOutputPath()
 * do; pass none to get the path `nix-store --add` gives. NAME must be a valid
 * store name (-EINVAL otherwise). *RET_PATH is malloc'd.
 */
int pf_store_path_make_source(const char *store_dir, const char *name, const uint8_t nar_sha256[32],
                              char *const *refs, size_t n_refs, char **ret_path);

/*
 * Adds the file, directory or symlink SRC to the store as `nix-store --add SRC`
 * does, and returns its store path in *RET_STORE_PATH (malloc'd).
 *
 * The item's name is the last component of SRC (-EINVAL if it is not a valid
 * store name). SRC is read once to compute its NAR hash and, in the same pass,
 * its references: the valid paths of this database whose hash part occurs in the
 * NAR (file contents, names, symlink targets). The path is the one
 * `nix-store --add` gives, so the same tree gets the same name in both stores:
 * like Nix's and Guix's --add, the references are NOT part of the path
 * computation (Nix would put them in the type, making names differ from
 * `nix-store --add` as soon as a tree mentions a store path); they are recorded
 * in Refs so closures are complete. If the path is already valid it is returned
 * as is.
 *
 * Otherwise SRC is copied into a temporary directory inside STORE_DIR (files
 * 0444, or 0555 if owner-executable; directories 0555; mtime 1 everywhere,
 * symlinks included; synced to disk with one syncfs()), the copy is hashed again
 * to make sure it is what was hashed (-EIO if SRC changed meanwhile), then moved
 * into place and registered in one transaction
 * (ValidPaths with hash "sha256:<hex>", narSize, ca "fixed:r:sha256:<base32>",
 * and Refs). -ENOENT if the database was not initialised, -EINVAL for special
 * files in SRC, -ESTALE if a referenced path vanished from the database during
 * the add.
 */
int pf_store_add(const char *store_dir, const char *db_path, const char *src, char **ret_store_path);

/*
 * Builds a symlink-union profile of ITEMS (N_ITEMS valid store paths, each a
 * directory; -ENOENT if one is not valid in the database, -ENOTDIR if one is not
 * a directory), adds it to the store as "<hash>-profile" and makes it the next
 * generation of profile NAME under PROFILES_DIR.
 *
 * The union is built as nix-env's buildEnv does: every file or symlink of an item
 * becomes a symlink to its path inside the item ("<item>/bin/hello"); a
 * directory found in only one item becomes one symlink to that directory, and
 * is turned into a real directory merging the items' entries (recursively) as
 * soon as a second item has it. Entries are followed when deciding whether they
 * are directories; dangling symlinks are skipped. Names starting with '.' and
 * buildEnv's ignored entries (propagated-build-inputs, nix-support,
 * perllocal.pod, info/dir, log, manifest.nix, manifest.json) are left out. On a
 * collision between two non-directories, or a directory and a non-directory,
 * the earlier item wins and a warning is logged. The profile's references are
 * the items its symlinks point into.
 *
 * NAME is relative and may contain '/' for nesting ("per-user/alice/guix-profile");
 * "." and ".." components are refused (-EINVAL). Missing directories are created
 * (0755). The generation link "NAME-N-link" -> store path is created with N one
 * more than the highest existing generation, unless the highest existing
 * generation already points to the same store path (as nix-env does), which is
 * then reused. "NAME" is then atomically replaced by a relative symlink to
 * "NAME-N-link". *RET_LINK is the path of NAME under PROFILES_DIR (malloc'd).
 */
int pf_store_make_profile(const char *store_dir, const char *db_path, const char *profiles_dir,
                          const char *name, char *const *items, size_t n_items, char **ret_link);
