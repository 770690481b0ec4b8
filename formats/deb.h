/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The pure parts of pack.deb (deb.c), for its unit tests. Inside formats/ only.
 * Every function is thread-safe; strings returned are malloc'd, the caller's.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "tar-header.h"

#define DEB_AR_MAGIC "!<arch>\n"
#define DEB_AR_MAGIC_SIZE 8
#define DEB_AR_HEADER 60
/* The size field of an ar header holds 10 decimal digits: ~9.31 GiB. */
#define DEB_AR_SIZE_MAX 9999999999ULL

/* Writes the 60-byte ar member header of NAME (at most 16 bytes, printable, no
 * '/' or blank) for SIZE bytes: mtime 1, uid/gid 0, mode 100644, as a
 * reproducible `ar` writes it. -ENAMETOOLONG or -EINVAL for a name ar cannot
 * hold, -EFBIG past DEB_AR_SIZE_MAX. */
int deb_ar_header(const char *name, uint64_t size, uint8_t out[DEB_AR_HEADER]);

/* Debian's architecture name for a GNU/kernel machine name ("x86_64" ->
 * "amd64", "aarch64" -> "arm64", "i686" -> "i386", ...; unknown: itself). */
const char *deb_arch(const char *machine);

/* A valid Debian package name from S: lower case, characters outside
 * [a-z0-9+.-] become '-', starting with a letter or digit, at least two
 * characters ("packfs" if nothing is left). NULL without memory. */
char *deb_package_name(const char *s);
/* A valid Debian version from S (NULL: "0.0.0"): characters outside
 * [A-Za-z0-9.+~] become '.', "0." in front unless it starts with a digit. */
char *deb_version(const char *s);

typedef struct deb_control_input {
        const char *package, *version, *arch;
        const char *view;               /* in the description */
        uint64_t installed_size;        /* KiB */
        const char *user_control;       /* the deb-control option, or NULL */
} deb_control_input;

/* The control file: USER_CONTROL as written (a final newline added, and an
 * Installed-Size field if it has none), else the fields the seed writes
 * (Package, Version, Description, Maintainer, Architecture, Priority, Section)
 * plus Installed-Size. */
int deb_control_text(const deb_control_input *in, char **ret);

/* Installed-Size in KiB of data.tar's members, as dpkg-gencontrol counts it:
 * each regular file's size rounded up to a KiB, every other member one KiB. */
uint64_t deb_installed_size(const tar_entry *entries, size_t n);
