/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The pure parts of pack.rpm (formats/rpm.c), inside formats/ only and for the
 * unit tests: rpm v4 header blobs and cpio newc entry headers.
 *
 * An rpm header is "8e ad e8 01" and 4 reserved bytes, the number of index
 * entries and the data length (big endian), 16-byte index entries (tag, type,
 * offset, count) and the data store. A package's headers are one immutable
 * region: the first entry (HEADERSIGNATURES 62 or HEADERIMMUTABLE 63, BIN,
 * count 16) points at a trailer, the last 16 bytes of the data, whose offset is
 * minus the size of the index. Entries are added in increasing tag order; their
 * data is aligned to its type's size (rpm checks both). Pure, thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
        RPM_INT16 = 3,
        RPM_INT32 = 4,
        RPM_INT64 = 5,
        RPM_STRING = 6,
        RPM_BIN = 7,
        RPM_STRING_ARRAY = 8,
        RPM_I18NSTRING = 9,
};

#define RPM_LEAD_SIZE 96
#define RPM_HEADER_MAGIC "\x8e\xad\xe8\x01\0\0\0\0"
/* rpm refuses a header's data past this (HEADER_DATA_MAX) and more entries
 * than this in one header. */
#define RPM_HEADER_DATA_MAX 0x0fffffffu

typedef struct rpm_header {
        uint8_t *index, *data;
        size_t n_entries, index_allocated;
        size_t data_len, data_allocated;
        uint32_t last_tag;
        bool failed;            /* out of memory, or a tag out of order: finish() fails */
        bool misordered;        /* a tag out of order, or an empty array */
} rpm_header;

/* Values of an array entry, given one at a time. */
typedef uint64_t (*rpm_int_fn)(void *userdata, size_t i);
typedef const char *(*rpm_string_fn)(void *userdata, size_t i);

void rpm_header_add_raw(rpm_header *h, uint32_t tag, uint32_t type, uint32_t count, const void *data, size_t len);
/* STRING or I18NSTRING (type), one value. */
void rpm_header_add_string(rpm_header *h, uint32_t tag, uint32_t type, const char *s);
void rpm_header_add_strings(rpm_header *h, uint32_t tag, size_t n, rpm_string_fn get, void *userdata);
/* INT16, INT32 or INT64 (type), N values. */
void rpm_header_add_ints(rpm_header *h, uint32_t tag, uint32_t type, size_t n, rpm_int_fn get, void *userdata);
void rpm_header_add_int(rpm_header *h, uint32_t tag, uint32_t type, uint64_t value);
/* The blob, region REGION_TAG around every entry, into *RET (malloc'd); the
 * builder is emptied either way. -ENOMEM, -EINVAL (tags out of order, an empty array), -E2BIG
 * (past rpm's limits). */
int rpm_header_finish(rpm_header *h, uint32_t region_tag, uint8_t **ret, size_t *ret_size);
void rpm_header_done(rpm_header *h);

/* The lead: NAME (truncated to 65 bytes) for an ARCHNUM machine, Linux,
 * signatures in a header. */
void rpm_lead_write(const char *name, uint16_t archnum, uint8_t lead[RPM_LEAD_SIZE]);

/* cpio: newc ("070701") entries, or rpm's stripped ones ("07070X" and the
 * file's index in the header), each padded to 4 bytes. */
#define CPIO_NEWC_SIZE 110
#define CPIO_STRIPPED_SIZE 16
#define CPIO_TRAILER "TRAILER!!!"

static inline uint64_t cpio_pad(uint64_t len) {
        return (4 - len % 4) % 4;
}
/* Length of a newc header for member NAME ("./gnu/store/..."), name and padding included. */
static inline size_t cpio_newc_length(size_t name_len) {
        return CPIO_NEWC_SIZE + name_len + 1 + (size_t) cpio_pad(CPIO_NEWC_SIZE + name_len + 1);
}
/* Writes that header into BUF (cpio_newc_length() bytes); SIZE < 4 GiB. */
void cpio_newc_write(uint8_t *buf, const char *name, size_t name_len, uint32_t ino, mode_t mode, uint32_t nlink,
                     uint32_t mtime, uint32_t size);
void cpio_stripped_write(uint8_t buf[CPIO_STRIPPED_SIZE], uint32_t index);
