/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A profile's search paths: the environment a program of the profile expects
 * ("PATH=<profile>/bin", "GUIX_LOCPATH=<profile>/lib/locale", ...), for packs that
 * carry an environment (docker.tar's config Env, squashfs's 90-environment.sh).
 *
 * Guix writes its profiles' search paths, already evaluated against the profile,
 * into <profile>/etc/profile as lines of
 *     export VAR="${GUIX_PROFILE:-<profile>}/sub[:...]${VAR:+SEP}$VAR"
 * and those are taken as they are. A profile without one (Nix user environments,
 * packfs's own profiles) gets the conventional variables for the directories it
 * has: PATH (bin, sbin), XDG_DATA_DIRS (share), MANPATH, INFOPATH, TERMINFO_DIRS,
 * XDG_CONFIG_DIRS (etc/xdg), LOCALE_ARCHIVE (lib/locale/locale-archive) and
 * SSL_CERT_FILE/NIX_SSL_CERT_FILE (etc/ssl/certs/ca-bundle.crt).
 *
 * Only what resolves inside the store counts: a link out of it, or a line of
 * etc/profile that is not of Guix's form, is left out (with a debug line). PATH
 * always comes first and is always there. Pure function of the store contents;
 * thread-safe.
 */
#pragma once

#include <sys/types.h>

/* Sets *ret to a NULL-terminated vector of "VAR=value" for the profile whose store
 * item is PROFILE_ROOT (inside STORE_DIR); free it with pf_strv_free(). */
int pf_profile_search_paths(const char *store_dir, const char *profile_root, char ***ret);

/* PROFILE_ROOT/REL with its symlinks followed, if that is a file of TYPE
 * (S_IFREG, S_IFDIR) inside the store: its canonical path, malloc'd, in *ret.
 * -ENOENT if there is none, -EXDEV if it leads out of the store. */
int pf_profile_file(const char *store_dir, const char *profile_root, const char *rel, mode_t type, char **ret);
