/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/macro.h"
#include "tar-header.h"

struct ustar {
        char name[100];
        char mode[8];
        char uid[8];
        char gid[8];
        char size[12];
        char mtime[12];
        char chksum[8];
        char typeflag;
        char linkname[100];
        char magic[6];
        char version[2];
        char uname[32];
        char gname[32];
        char devmajor[8];
        char devminor[8];
        char prefix[155];
        char pad[12];
};
_Static_assert(sizeof(struct ustar) == TAR_BLOCK, "a ustar header is one block");

#define USTAR_MAX_SIZE 077777777777ULL

/* WIDTH-1 zero-padded octal digits and a NUL, as GNU tar writes them. By hand:
 * headers are made for every member read, and snprintf was most of it. Callers
 * pass values that fit (USTAR_MAX_SIZE and smaller). */
static void octal(char *field, size_t width, uint64_t v) {
        field[width - 1] = 0;
        for (size_t i = width - 1; i > 0; i--, v >>= 3)
                field[i - 1] = (char) ('0' + (v & 7));
}

static void finish_block(struct ustar *h) {
        unsigned sum = 0;

        memset(h->chksum, ' ', sizeof(h->chksum));
        for (size_t i = 0; i < sizeof(*h); i++)
                sum += ((const uint8_t *) h)[i];
        octal(h->chksum, 7, sum);
        h->chksum[7] = ' ';
}

static void fill_common(struct ustar *h, mode_t mode, uint64_t size, char type) {
        octal(h->mode, sizeof(h->mode), mode & 07777);
        octal(h->uid, sizeof(h->uid), 0);
        octal(h->gid, sizeof(h->gid), 0);
        octal(h->size, sizeof(h->size), size);
        octal(h->mtime, sizeof(h->mtime), TAR_MTIME);
        h->typeflag = type;
        memcpy(h->magic, "ustar", 6);
        memcpy(h->version, "00", 2);
        strcpy(h->uname, "root");
        strcpy(h->gname, "root");
        octal(h->devmajor, sizeof(h->devmajor), 0);
        octal(h->devminor, sizeof(h->devminor), 0);
}

/* Splits NAME into ustar's prefix and name fields if it can; 0 if it fits. */
static int split_name(const char *name, struct ustar *h) {
        size_t len = strlen(name);

        if (len <= sizeof(h->name)) {
                memcpy(h->name, name, len);
                return 0;
        }
        /* The prefix ends at a slash; the name after it must be 1..100 bytes. A
         * trailing slash (directories) belongs to the name. */
        for (size_t i = len - 1; i > 0; i--) {
                if (name[i] != '/' || i == len - 1)
                        continue;
                if (len - i - 1 > sizeof(h->name))
                        return -1;
                if (i > sizeof(h->prefix))
                        continue;
                memcpy(h->prefix, name, i);
                memcpy(h->name, name + i + 1, len - i - 1);
                return 0;
        }
        return -1;
}

static size_t decimal_digits(size_t v) {
        size_t n = 1;
        for (; v >= 10; v /= 10)
                n++;
        return n;
}

/* The length of the record "LEN KEY=VALUE\n", which counts its own digits. */
static size_t pax_record_length(size_t key_len, size_t value_len) {
        size_t payload = 1 + key_len + 1 + value_len + 1;
        size_t len = payload + 1;

        while (decimal_digits(len) + payload != len)
                len = decimal_digits(len) + payload;
        return len;
}

static size_t pax_record(char *out, const char *key, const char *value) {
        size_t len = pax_record_length(strlen(key), strlen(value));
        return (size_t) sprintf(out, "%zu %s=%s\n", len, key, value);
}

int tar_header_size(const tar_entry *e) {
        size_t name_len = strnlen(e->name, 4097), link_len = e->link ? strnlen(e->link, 4097) : 0, records = 0;
        struct ustar h;

        /* The same decisions as tar_header_write(), without the formatting. */
        if (name_len > 4096 || link_len > 4096)
                return -ENAMETOOLONG;
        if (name_len > sizeof(h.name) && split_name(e->name, &h) < 0)
                records += pax_record_length(strlen("path"), name_len);
        if (link_len > sizeof(h.linkname))
                records += pax_record_length(strlen("linkpath"), link_len);
        if (!S_ISDIR(e->mode) && !S_ISLNK(e->mode) && e->size > USTAR_MAX_SIZE)
                records += pax_record_length(strlen("size"), decimal_digits(e->size));
        if (records == 0)
                return TAR_BLOCK;
        return (int) (TAR_BLOCK + records + tar_padding(records) + TAR_BLOCK);
}

int tar_header_write(const tar_entry *e, uint8_t *buf) {
        struct ustar h = {};
        char records[2 * 4096 + 3 * 64];
        size_t n_records = 0, at = 0;
        char type;

        if (strlen(e->name) > 4096 || (e->link && strlen(e->link) > 4096))
                return -ENAMETOOLONG;
        type = S_ISDIR(e->mode) ? '5' : S_ISLNK(e->mode) ? '2' : '0';
        if (split_name(e->name, &h) < 0) {
                memset(&h, 0, sizeof(h));
                /* A recognisable truncation for readers without pax support. */
                memcpy(h.name, e->name, sizeof(h.name));
                n_records += pax_record(records + n_records, "path", e->name);
        }
        if (e->link) {
                size_t len = strlen(e->link);
                if (len <= sizeof(h.linkname))
                        memcpy(h.linkname, e->link, len);
                else {
                        /* Truncated, as GNU tar writes it: libarchive (3.6) reads a
                         * symlink with an empty linkname as a regular file. */
                        memcpy(h.linkname, e->link, sizeof(h.linkname));
                        n_records += pax_record(records + n_records, "linkpath", e->link);
                }
        }
        uint64_t size = type == '0' ? e->size : 0;
        if (size > USTAR_MAX_SIZE) {
                char v[32];
                snprintf(v, sizeof(v), "%llu", (unsigned long long) size);
                n_records += pax_record(records + n_records, "size", v);
        }

        if (n_records > 0) {
                struct ustar x = {};
                const char *base = strrchr(e->name, '/');
                /* Directories end in '/': name their pax header after the last component. */
                if (base && !base[1]) {
                        const char *p = base;
                        while (p > e->name && p[-1] != '/')
                                p--;
                        base = p;
                } else
                        base = base ? base + 1 : e->name;
                snprintf(x.name, sizeof(x.name), "./PaxHeaders/%.*s", 86, base);
                fill_common(&x, 0644, n_records, 'x');
                finish_block(&x);
                memcpy(buf, &x, TAR_BLOCK);
                at = TAR_BLOCK;
                memcpy(buf + at, records, n_records);
                memset(buf + at + n_records, 0, tar_padding(n_records));
                at += n_records + tar_padding(n_records);
        }
        fill_common(&h, e->mode, size > USTAR_MAX_SIZE ? 0 : size, type);
        finish_block(&h);
        memcpy(buf + at, &h, TAR_BLOCK);
        return (int) (at + TAR_BLOCK);
}

/* --- GNU style */

/* Whether E needs no extension at all: then both styles give one ustar block. */
static bool fits_ustar(const tar_entry *e, size_t name_len, size_t link_len) {
        struct ustar h;

        if (name_len > sizeof(h.name) && split_name(e->name, &h) < 0)
                return false;
        if (link_len > sizeof(h.linkname))
                return false;
        return S_ISDIR(e->mode) || S_ISLNK(e->mode) || e->size <= USTAR_MAX_SIZE;
}

static uint64_t blocks_of(size_t len) {
        return len + tar_padding(len);
}

int tar_header_size_gnu(const tar_entry *e) {
        size_t name_len = strnlen(e->name, 4097), link_len = e->link ? strnlen(e->link, 4097) : 0;
        uint64_t n = TAR_BLOCK;

        if (name_len > 4096 || link_len > 4096)
                return -ENAMETOOLONG;
        if (fits_ustar(e, name_len, link_len))
                return TAR_BLOCK;
        if (name_len > 100)
                n += TAR_BLOCK + blocks_of(name_len + 1);
        if (link_len > 100)
                n += TAR_BLOCK + blocks_of(link_len + 1);
        return (int) n;
}

static void gnu_magic(struct ustar *h) {
        /* "ustar  \0": GNU tar's magic and version, without ustar's prefix field. */
        memcpy(h->magic, "ustar ", 6);
        memcpy(h->version, " ", 2);
}

/* A "././@LongLink" member of TYPE ('L' name, 'K' link target) holding VALUE. */
static size_t long_link(uint8_t *buf, char type, const char *value, size_t len) {
        struct ustar x = {};

        strcpy(x.name, "././@LongLink");
        fill_common(&x, 0644, len + 1, type);
        gnu_magic(&x);
        finish_block(&x);
        memcpy(buf, &x, TAR_BLOCK);
        memcpy(buf + TAR_BLOCK, value, len);
        memset(buf + TAR_BLOCK + len, 0, blocks_of(len + 1) - len);
        return TAR_BLOCK + blocks_of(len + 1);
}

int tar_header_write_gnu(const tar_entry *e, uint8_t *buf) {
        size_t name_len = strnlen(e->name, 4097), link_len = e->link ? strnlen(e->link, 4097) : 0, at = 0;
        struct ustar h = {};
        char type;

        if (name_len > 4096 || link_len > 4096)
                return -ENAMETOOLONG;
        if (fits_ustar(e, name_len, link_len))
                return tar_header_write(e, buf);
        type = S_ISDIR(e->mode) ? '5' : S_ISLNK(e->mode) ? '2' : '0';
        if (name_len > 100)
                at += long_link(buf + at, 'L', e->name, name_len);
        if (link_len > 100)
                at += long_link(buf + at, 'K', e->link, link_len);
        /* Truncated copies, as GNU tar leaves them for older readers. */
        memcpy(h.name, e->name, MIN(name_len, sizeof(h.name)));
        if (e->link)
                memcpy(h.linkname, e->link, MIN(link_len, sizeof(h.linkname)));
        uint64_t size = type == '0' ? e->size : 0;
        fill_common(&h, e->mode, size > USTAR_MAX_SIZE ? 0 : size, type);
        gnu_magic(&h);
        if (size > USTAR_MAX_SIZE) {
                /* Base-256: a leading 0x80, then the value big-endian. */
                memset(h.size, 0, sizeof(h.size));
                h.size[0] = (char) 0x80;
                for (size_t i = sizeof(h.size) - 1; i > 0; i--, size >>= 8)
                        h.size[i] = (char) (size & 0xff);
        }
        finish_block(&h);
        memcpy(buf + at, &h, TAR_BLOCK);
        return (int) (at + TAR_BLOCK);
}
