/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * POSIX pax/ustar headers for reproducible archives: mtime 1, uid/gid 0, owner
 * "root". A name, link target or size that does not fit ustar gets a pax extended
 * header ('x') in front. Pure functions; thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TAR_BLOCK 512
#define TAR_MTIME 1
/* Longest header either style can produce: pax header block + its records
 * (two paths of at most 4096 bytes, a size) rounded up + the ustar block, or
 * two GNU long-link members (block + 4097 bytes rounded up) + the block. */
#define TAR_HEADER_MAX (3 * TAR_BLOCK + 2 * 4608)
_Static_assert(TAR_HEADER_MAX >= TAR_BLOCK + 2 * 4096 + 3 * 64 + TAR_BLOCK + TAR_BLOCK, "room for pax headers");

typedef struct tar_entry {
        const char *name;       /* archive member name, e.g. "./gnu/store/x-y/bin/" */
        const char *link;       /* symlink target, or NULL */
        mode_t mode;            /* type and permission bits */
        uint64_t size;          /* regular files */
} tar_entry;

/* Writes the header(s) of E into BUF (at least TAR_HEADER_MAX bytes) and returns
 * their length, a multiple of 512; -ENAMETOOLONG if a name exceeds 4096 bytes. */
int tar_header_write(const tar_entry *e, uint8_t *buf);
/* What tar_header_write() would return, without writing (cheap for the common
 * single-block header: planning asks it for every member). */
int tar_header_size(const tar_entry *e);

/* The same member in GNU tar's style, for readers that refuse pax headers
 * (dpkg 1.21: "unsupported PAX tar header type 'x'"): a member that fits ustar
 * gets the very block tar_header_write() gives; a longer name or link target
 * gets a "././@LongLink" member ('L', 'K') in front, and a size past ustar's
 * 8 GiB base-256, as GNU tar writes them. Same buffer and errors. */
int tar_header_write_gnu(const tar_entry *e, uint8_t *buf);
int tar_header_size_gnu(const tar_entry *e);

/* Padding after LEN bytes of data to the next 512-byte block. */
static inline uint64_t tar_padding(uint64_t len) {
        return (TAR_BLOCK - len % TAR_BLOCK) % TAR_BLOCK;
}
