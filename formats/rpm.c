/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pack.rpm: an rpm v4 package of the closure (`guix pack -f rpm`), written
 * without rpmbuild, with an uncompressed cpio payload so that its size is known
 * from metadata and its data is served from the store files:
 *
 *   lead            96 bytes
 *   signature       a header: SHA256 and SHA1 of the main header, SIZE
 *                   (header + payload) and PAYLOADSIZE, or LONGSIZE and
 *                   LONGARCHIVESIZE past 4 GiB; padded to 8 bytes
 *   header          NAME, VERSION, RELEASE, ARCH, OS, SUMMARY, LICENSE, the
 *                   scripts, the files sorted by path (BASENAMES, DIRNAMES,
 *                   DIRINDEXES, modes, sizes, LINKTOS, owners root), their
 *                   SHA-256 digests (FILEDIGESTALGO 8), PAYLOADDIGEST and
 *                   PAYLOADDIGESTALT (the same: the payload is not compressed)
 *   payload         cpio newc, members "./<path>" in the header's order, or
 *                   rpm's stripped entries (the file's index only) for every
 *                   member when a file is 4 GiB or more, as rpm 4.12+ writes
 *                   them (then rpm reads it; cpio cannot); no
 *                   PAYLOADCOMPRESSOR, which rpm takes for a gzip stream and
 *                   its gzip reader passes through as it is
 *
 * The members are pack.tar's: the closure at its store paths with the store's
 * parent directories, the profile's symlinks and the localstatedir database,
 * but not the top directories of the file system hierarchy (/, /usr, /var...),
 * which belong to the system the package is installed on (as the seed does).
 *
 * Digests have a fixed width, so the plan is made from metadata alone. The
 * headers are generated when a read first reaches them: then every file's
 * digest is looked up (recorded per store item in the cache: items are
 * immutable and named by path and NAR hash) or computed, and the payload's
 * (recorded under the pack's identity: closure and options) is computed in one
 * pass over the payload on another thread at the same time. A store file that
 * changed since it was planned fails this with EIO and a log line, and no
 * digest of it is recorded.
 */
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "packfs/cancel.h"
#include "packfs/digest.h"
#include "packfs/format.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/package.h"
#include "packfs/walkcache.h"
#include "rpm.h"
#include "tar-plan.h"

/* Bump when the members or the header's layout change. */
#define RPM_LAYOUT "packfs pack.rpm 1"
#define DIGESTS_RECORD "packfs rpm file digests 1"
#define PAYLOAD_RECORD "packfs rpm payload digest 1"
#define MTIME 1
#define NO_ITEM UINT32_MAX
#define LARGE ((uint64_t) UINT32_MAX)

/* Tags (rpm's lib/rpmtag.h). */
enum {
        TAG_HEADERSIGNATURES = 62,
        TAG_HEADERIMMUTABLE = 63,
        TAG_HEADERI18NTABLE = 100,
        SIGTAG_SHA1 = 269,
        SIGTAG_LONGSIZE = 270,
        SIGTAG_LONGARCHIVESIZE = 271,
        SIGTAG_SHA256 = 273,
        SIGTAG_SIZE = 1000,
        SIGTAG_PAYLOADSIZE = 1007,
        TAG_NAME = 1000,
        TAG_VERSION = 1001,
        TAG_RELEASE = 1002,
        TAG_SUMMARY = 1004,
        TAG_DESCRIPTION = 1005,
        TAG_SIZE = 1009,
        TAG_LICENSE = 1014,
        TAG_GROUP = 1016,
        TAG_OS = 1021,
        TAG_ARCH = 1022,
        TAG_PREIN = 1023,
        TAG_POSTIN = 1024,
        TAG_PREUN = 1025,
        TAG_POSTUN = 1026,
        TAG_FILESIZES = 1028,
        TAG_FILEMODES = 1030,
        TAG_FILERDEVS = 1033,
        TAG_FILEMTIMES = 1034,
        TAG_FILEDIGESTS = 1035,
        TAG_FILELINKTOS = 1036,
        TAG_FILEFLAGS = 1037,
        TAG_FILEUSERNAME = 1039,
        TAG_FILEGROUPNAME = 1040,
        TAG_SOURCERPM = 1044,
        TAG_FILEVERIFYFLAGS = 1045,
        TAG_PROVIDENAME = 1047,
        TAG_REQUIREFLAGS = 1048,
        TAG_REQUIRENAME = 1049,
        TAG_REQUIREVERSION = 1050,
        TAG_PREINPROG = 1085,
        TAG_POSTINPROG = 1086,
        TAG_PREUNPROG = 1087,
        TAG_POSTUNPROG = 1088,
        TAG_FILEDEVICES = 1095,
        TAG_FILEINODES = 1096,
        TAG_FILELANGS = 1097,
        TAG_PREFIXES = 1098,
        TAG_PROVIDEFLAGS = 1112,
        TAG_PROVIDEVERSION = 1113,
        TAG_DIRINDEXES = 1116,
        TAG_BASENAMES = 1117,
        TAG_DIRNAMES = 1118,
        TAG_PAYLOADFORMAT = 1124,
        TAG_LONGFILESIZES = 5008,
        TAG_LONGSIZE = 5009,
        TAG_FILEDIGESTALGO = 5011,
        TAG_PAYLOADDIGEST = 5092,
        TAG_PAYLOADDIGESTALGO = 5093,
        TAG_PAYLOADDIGESTALT = 5097,
};

#define HASHALGO_SHA256 8
#define SENSE_LESS 0x02
#define SENSE_EQUAL 0x08
#define SENSE_RPMLIB 0x1000000

/* --- Header blobs */

static bool reserve(uint8_t **buf, size_t *allocated, size_t need) {
        if (need <= *allocated)
                return true;
        size_t n = MAX(*allocated * 2, need + 4096);
        uint8_t *v = realloc(*buf, n);
        if (!v)
                return false;
        *buf = v;
        *allocated = n;
        return true;
}

static void be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static size_t type_align(uint32_t type) {
        switch (type) {
        case RPM_INT16:
                return 2;
        case RPM_INT32:
                return 4;
        case RPM_INT64:
                return 8;
        default:
                return 1;
        }
}

/* Starts an entry: its index row, with the data aligned. Returns the data
 * offset, or SIZE_MAX when the builder failed. */
static size_t entry_begin(rpm_header *h, uint32_t tag, uint32_t type, uint32_t count) {
        size_t align = type_align(type), pad;

        if (h->failed)
                return SIZE_MAX;
        if (tag <= h->last_tag || count == 0) {
                h->failed = h->misordered = true;
                return SIZE_MAX;
        }
        h->last_tag = tag;
        pad = (align - h->data_len % align) % align;
        if (!reserve(&h->index, &h->index_allocated, (h->n_entries + 1) * 16) ||
            !reserve(&h->data, &h->data_allocated, h->data_len + pad)) {
                h->failed = true;
                return SIZE_MAX;
        }
        if (pad > 0) {
                memset(h->data + h->data_len, 0, pad);
                h->data_len += pad;
        }
        uint8_t *e = h->index + h->n_entries++ * 16;
        be32(e, tag);
        be32(e + 4, type);
        be32(e + 8, (uint32_t) h->data_len);
        be32(e + 12, count);
        return h->data_len;
}

static void data_put(rpm_header *h, const void *p, size_t len) {
        if (h->failed)
                return;
        if (!reserve(&h->data, &h->data_allocated, h->data_len + len)) {
                h->failed = true;
                return;
        }
        memcpy(h->data + h->data_len, p, len);
        h->data_len += len;
}

void rpm_header_add_raw(rpm_header *h, uint32_t tag, uint32_t type, uint32_t count, const void *data, size_t len) {
        if (entry_begin(h, tag, type, count) != SIZE_MAX)
                data_put(h, data, len);
}

void rpm_header_add_string(rpm_header *h, uint32_t tag, uint32_t type, const char *s) {
        rpm_header_add_raw(h, tag, type, 1, s, strlen(s) + 1);
}

void rpm_header_add_strings(rpm_header *h, uint32_t tag, size_t n, rpm_string_fn get, void *userdata) {
        if (n > UINT32_MAX || entry_begin(h, tag, RPM_STRING_ARRAY, (uint32_t) n) == SIZE_MAX) {
                h->failed = true;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const char *s = get(userdata, i);
                data_put(h, s, strlen(s) + 1);
        }
}

void rpm_header_add_ints(rpm_header *h, uint32_t tag, uint32_t type, size_t n, rpm_int_fn get, void *userdata) {
        size_t width = type_align(type);

        if (n > UINT32_MAX || entry_begin(h, tag, type, (uint32_t) n) == SIZE_MAX) {
                h->failed = true;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                uint64_t v = get(userdata, i);
                uint8_t b[8];
                for (size_t k = 0; k < width; k++)
                        b[k] = (uint8_t) (v >> (8 * (width - 1 - k)));
                data_put(h, b, width);
        }
}

static uint64_t one_value(void *userdata, size_t i) {
        return *(const uint64_t *) userdata;
}

void rpm_header_add_int(rpm_header *h, uint32_t tag, uint32_t type, uint64_t value) {
        rpm_header_add_ints(h, tag, type, 1, one_value, &value);
}

void rpm_header_done(rpm_header *h) {
        free(h->index);
        free(h->data);
        *h = (rpm_header) {};
}

int rpm_header_finish(rpm_header *h, uint32_t region_tag, uint8_t **ret, size_t *ret_size) {
        size_t il = h->n_entries + 1, dl = h->data_len + 16, size = 16 + il * 16 + dl;
        uint8_t *out, *p;

        if (h->failed) {
                bool misordered = h->misordered;
                rpm_header_done(h);
                return misordered ? -EINVAL : -ENOMEM;
        }
        if (dl > RPM_HEADER_DATA_MAX || il > 0xffff) {
                rpm_header_done(h);
                return -E2BIG;
        }
        out = malloc(size);
        if (!out) {
                rpm_header_done(h);
                return -ENOMEM;
        }
        memcpy(out, RPM_HEADER_MAGIC, 8);
        be32(out + 8, (uint32_t) il);
        be32(out + 12, (uint32_t) dl);
        p = out + 16;
        /* The region: its data is the trailer, at the end. */
        be32(p, region_tag);
        be32(p + 4, RPM_BIN);
        be32(p + 8, (uint32_t) h->data_len);
        be32(p + 12, 16);
        if (h->n_entries > 0)
                memcpy(p + 16, h->index, h->n_entries * 16);
        p += il * 16;
        if (h->data_len > 0)
                memcpy(p, h->data, h->data_len);
        p += h->data_len;
        be32(p, region_tag);
        be32(p + 4, RPM_BIN);
        be32(p + 8, (uint32_t) -(int32_t) (il * 16));
        be32(p + 12, 16);
        rpm_header_done(h);
        *ret = out;
        *ret_size = size;
        return 0;
}

void rpm_lead_write(const char *name, uint16_t archnum, uint8_t lead[RPM_LEAD_SIZE]) {
        memset(lead, 0, RPM_LEAD_SIZE);
        lead[0] = 0xed;
        lead[1] = 0xab;
        lead[2] = 0xee;
        lead[3] = 0xdb;
        lead[4] = 3;                    /* major */
        lead[5] = 0;                    /* minor */
        lead[6] = 0;                    /* type: binary */
        lead[7] = 0;
        lead[8] = (uint8_t) (archnum >> 8);
        lead[9] = (uint8_t) archnum;
        strncpy((char *) lead + 10, name, 65);
        lead[76] = 0;
        lead[77] = 1;                   /* os: Linux */
        lead[78] = 0;
        lead[79] = 5;                   /* signature type: a header */
}

/* --- cpio */

static void hex8(uint8_t *p, uint32_t v) {
        static const char digits[] = "0123456789abcdef";
        for (int i = 7; i >= 0; i--, v >>= 4)
                p[i] = (uint8_t) digits[v & 15];
}

void cpio_newc_write(uint8_t *buf, const char *name, size_t name_len, uint32_t ino, mode_t mode, uint32_t nlink,
                     uint32_t mtime, uint32_t size) {
        const uint32_t fields[13] = { ino, (uint32_t) mode, 0, 0, nlink, mtime, size, 0, 0, 0, 0,
                                      (uint32_t) name_len + 1, 0 };
        size_t len = cpio_newc_length(name_len);

        memcpy(buf, "070701", 6);
        for (size_t i = 0; i < 13; i++)
                hex8(buf + 6 + 8 * i, fields[i]);
        memcpy(buf + CPIO_NEWC_SIZE, name, name_len);
        memset(buf + CPIO_NEWC_SIZE + name_len, 0, len - CPIO_NEWC_SIZE - name_len);
}

void cpio_stripped_write(uint8_t buf[CPIO_STRIPPED_SIZE], uint32_t index) {
        memcpy(buf, "07070X", 6);
        hex8(buf + 6, index);
        buf[14] = buf[15] = 0;
}

/* --- The plan's data */

typedef struct rpm_file {
        const char *path;       /* absolute, interned */
        const char *link;       /* symlinks: the target */
        const uint8_t *data;    /* regular files outside the store: their bytes */
        uint64_t size;          /* regular files: bytes; symlinks: the target's length; else 0 */
        int64_t mtime;          /* store files, checked when read */
        uint32_t mode;
        uint32_t item;          /* the store item it belongs to, or NO_ITEM */
        uint32_t digest;        /* regular files: its digest's index */
        uint32_t dir;           /* its DIRNAMES index */
} rpm_file;

typedef struct rpm_item {
        uint32_t first, n;      /* its regular files' digests, in walk order */
        uint8_t key[32];        /* of their record */
        bool keyed;
} rpm_item;

/* Cookies of the generated extents: a member's cpio header (its index), a
 * symlink's target, the two headers. */
#define COOKIE_LINK (UINT64_C(1) << 40)
#define COOKIE_SIGNATURE (UINT64_C(1) << 41)
#define COOKIE_HEADER (COOKIE_SIGNATURE + 1)

typedef struct rpm_data {
        rpm_file *files;
        size_t n_files, allocated;
        char **dirs;            /* DIRNAMES, "/a/b/" */
        size_t n_dirs;
        rpm_item *items;        /* the closure's */
        size_t n_items;
        uint32_t *digest_file;  /* digest index -> file index */
        uint8_t (*digests)[32];
        size_t n_digests;
        char *name, *version, *arch, *summary, *description, *sourcerpm, *view_name;
        char *scripts[4];       /* prein, postin, preun, postun, or NULL */
        bool relocatable;
        bool large_files;       /* a file of 4 GiB or more: LONGFILESIZES, stripped cpio */
        uint64_t total_size;    /* of the files */
        uint64_t header_size, signature_size, signature_padded, payload_offset, payload_size;
        uint8_t payload_key[32];
        pf_cache *cache;
        const pf_plan *plan;    /* the plan owning this */

        /* The headers need every digest before their first byte. rpm_plan()
         * and rpm_complete() make them before a reader gets the plan: a mount
         * plans in a thread a reader's open waits for and may give up on
         * (Ctrl-C), while the hashing goes on for the next one. A sizing plan
         * (rpm_plan_sparse(), for a stat) has none, and makes them if read.
         *
         * Guards what follows. */
        pthread_mutex_t lock;
        bool ready;                     /* the headers are made */
        uint8_t *signature, *header;
        uint8_t payload_digest[32];
} rpm_data;

static void rpm_data_free(void *p) {
        rpm_data *d = p;

        if (!d)
                return;
        free(d->files);
        for (size_t i = 0; i < d->n_dirs; i++)
                free(d->dirs[i]);
        free(d->dirs);
        free(d->items);
        free(d->digest_file);
        free(d->digests);
        free(d->name);
        free(d->version);
        free(d->arch);
        free(d->summary);
        free(d->description);
        free(d->sourcerpm);
        free(d->view_name);
        for (size_t i = 0; i < ELEMENTSOF(d->scripts); i++)
                free(d->scripts[i]);
        free(d->signature);
        free(d->header);
        pthread_mutex_destroy(&d->lock);
        free(d);
}

static const char *base_name(const char *path) {
        return strrchr(path, '/') + 1;
}

/* --- The main header */

typedef struct header_ctx {
        const rpm_data *d;
        const uint8_t (*digests)[32];   /* NULL: zeros of the same width */
        char hex[65];
} header_ctx;

static uint64_t f_size(void *u, size_t i) {
        return ((header_ctx *) u)->d->files[i].size;
}
static uint64_t f_mode(void *u, size_t i) {
        return ((header_ctx *) u)->d->files[i].mode & 0xffff;
}
static uint64_t f_zero(void *u, size_t i) {
        return 0;
}
static uint64_t f_mtime(void *u, size_t i) {
        return MTIME;
}
static uint64_t f_verify(void *u, size_t i) {
        return UINT32_MAX;
}
static uint64_t f_one(void *u, size_t i) {
        return 1;
}
static uint64_t f_inode(void *u, size_t i) {
        return i + 1;
}
static uint64_t f_dir(void *u, size_t i) {
        return ((header_ctx *) u)->d->files[i].dir;
}
static const char *f_digest(void *u, size_t i) {
        header_ctx *c = u;
        const rpm_file *f = &c->d->files[i];
        static const uint8_t zero[32];

        if (!S_ISREG(f->mode))
                return "";
        pf_hex(c->digests ? c->digests[f->digest] : zero, 32, c->hex);
        return c->hex;
}
static const char *f_link(void *u, size_t i) {
        const char *l = ((header_ctx *) u)->d->files[i].link;
        return l ? l : "";
}
static const char *f_root(void *u, size_t i) {
        return "root";
}
static const char *f_empty(void *u, size_t i) {
        return "";
}
static const char *f_base(void *u, size_t i) {
        return base_name(((header_ctx *) u)->d->files[i].path);
}
static const char *f_dirname(void *u, size_t i) {
        return ((header_ctx *) u)->d->dirs[i];
}
static const char *f_strv(void *u, size_t i) {
        return ((const char *const *) u)[i];
}
static uint64_t f_u64v(void *u, size_t i) {
        return ((const uint64_t *) u)[i];
}

/* The main header; DIGESTS and PAYLOAD NULL: zeros of the same width, for its size. */
static int build_header(const rpm_data *d, const uint8_t (*digests)[32], const uint8_t *payload, uint8_t **ret,
                        size_t *ret_size) {
        static const char *const i18n[] = { "C" };
        static const uint8_t zero[32];
        header_ctx c = { .d = d, .digests = digests };
        rpm_header h = {};
        size_t n = d->n_files;
        char payload_hex[65];
        _cleanup_free_ char *evr = NULL;
        const char *provide_name[] = { d->name };
        const char *require_name[] = { "rpmlib(CompressedFileNames)", "rpmlib(FileDigests)", "rpmlib(LargeFiles)",
                                       "rpmlib(PayloadFilesHavePrefix)" };
        const char *require_version[] = { "3.0.4-1", "4.6.0-1", "4.12.0-1", "4.0-1" };
        const uint64_t rpmlib = SENSE_RPMLIB | SENSE_LESS | SENSE_EQUAL;
        const uint64_t require_flags[] = { rpmlib, rpmlib, rpmlib, rpmlib };
        const uint64_t equal = SENSE_EQUAL;
        static const char *const sh[] = { "/bin/sh" };
        static const char *const root[] = { "/" };
        size_t n_requires = d->large_files ? 4 : 3;

        if (asprintf(&evr, "%s-0", d->version) < 0)
                return -ENOMEM;
        if (!d->large_files) {
                /* Without rpmlib(LargeFiles), in order. */
                require_name[2] = require_name[3];
                require_version[2] = require_version[3];
        }
        pf_hex(payload ? payload : zero, 32, payload_hex);
        const char *payload_v[] = { payload_hex };
        const char *evr_v[] = { evr };

        rpm_header_add_strings(&h, TAG_HEADERI18NTABLE, 1, f_strv, (void *) i18n);
        rpm_header_add_string(&h, TAG_NAME, RPM_STRING, d->name);
        rpm_header_add_string(&h, TAG_VERSION, RPM_STRING, d->version);
        rpm_header_add_string(&h, TAG_RELEASE, RPM_STRING, "0");
        rpm_header_add_string(&h, TAG_SUMMARY, RPM_I18NSTRING, d->summary);
        rpm_header_add_string(&h, TAG_DESCRIPTION, RPM_I18NSTRING, d->description);
        if (d->total_size < LARGE)
                rpm_header_add_int(&h, TAG_SIZE, RPM_INT32, d->total_size);
        rpm_header_add_string(&h, TAG_LICENSE, RPM_STRING, "N/A");
        rpm_header_add_string(&h, TAG_GROUP, RPM_I18NSTRING, "Unspecified");
        rpm_header_add_string(&h, TAG_OS, RPM_STRING, "linux");
        rpm_header_add_string(&h, TAG_ARCH, RPM_STRING, d->arch);
        for (size_t i = 0; i < ELEMENTSOF(d->scripts); i++)
                if (d->scripts[i])
                        rpm_header_add_string(&h, TAG_PREIN + (uint32_t) i, RPM_STRING, d->scripts[i]);
        if (n > 0) {
                if (!d->large_files)
                        rpm_header_add_ints(&h, TAG_FILESIZES, RPM_INT32, n, f_size, &c);
                rpm_header_add_ints(&h, TAG_FILEMODES, RPM_INT16, n, f_mode, &c);
                rpm_header_add_ints(&h, TAG_FILERDEVS, RPM_INT16, n, f_zero, &c);
                rpm_header_add_ints(&h, TAG_FILEMTIMES, RPM_INT32, n, f_mtime, &c);
                rpm_header_add_strings(&h, TAG_FILEDIGESTS, n, f_digest, &c);
                rpm_header_add_strings(&h, TAG_FILELINKTOS, n, f_link, &c);
                rpm_header_add_ints(&h, TAG_FILEFLAGS, RPM_INT32, n, f_zero, &c);
                rpm_header_add_strings(&h, TAG_FILEUSERNAME, n, f_root, &c);
                rpm_header_add_strings(&h, TAG_FILEGROUPNAME, n, f_root, &c);
        }
        rpm_header_add_string(&h, TAG_SOURCERPM, RPM_STRING, d->sourcerpm);
        if (n > 0)
                rpm_header_add_ints(&h, TAG_FILEVERIFYFLAGS, RPM_INT32, n, f_verify, &c);
        rpm_header_add_strings(&h, TAG_PROVIDENAME, 1, f_strv, (void *) provide_name);
        rpm_header_add_ints(&h, TAG_REQUIREFLAGS, RPM_INT32, n_requires, f_u64v, (void *) require_flags);
        rpm_header_add_strings(&h, TAG_REQUIRENAME, n_requires, f_strv, (void *) require_name);
        rpm_header_add_strings(&h, TAG_REQUIREVERSION, n_requires, f_strv, (void *) require_version);
        for (size_t i = 0; i < ELEMENTSOF(d->scripts); i++)
                if (d->scripts[i])
                        rpm_header_add_strings(&h, TAG_PREINPROG + (uint32_t) i, 1, f_strv, (void *) sh);
        if (n > 0) {
                rpm_header_add_ints(&h, TAG_FILEDEVICES, RPM_INT32, n, f_one, &c);
                rpm_header_add_ints(&h, TAG_FILEINODES, RPM_INT32, n, f_inode, &c);
                rpm_header_add_strings(&h, TAG_FILELANGS, n, f_empty, &c);
        }
        if (d->relocatable)
                rpm_header_add_strings(&h, TAG_PREFIXES, 1, f_strv, (void *) root);
        rpm_header_add_ints(&h, TAG_PROVIDEFLAGS, RPM_INT32, 1, f_u64v, (void *) &equal);
        rpm_header_add_strings(&h, TAG_PROVIDEVERSION, 1, f_strv, (void *) evr_v);
        if (n > 0) {
                rpm_header_add_ints(&h, TAG_DIRINDEXES, RPM_INT32, n, f_dir, &c);
                rpm_header_add_strings(&h, TAG_BASENAMES, n, f_base, &c);
                rpm_header_add_strings(&h, TAG_DIRNAMES, d->n_dirs, f_dirname, &c);
        }
        rpm_header_add_string(&h, TAG_PAYLOADFORMAT, RPM_STRING, "cpio");
        if (n > 0 && d->large_files)
                rpm_header_add_ints(&h, TAG_LONGFILESIZES, RPM_INT64, n, f_size, &c);
        if (d->total_size >= LARGE)
                rpm_header_add_int(&h, TAG_LONGSIZE, RPM_INT64, d->total_size);
        if (n > 0)
                rpm_header_add_int(&h, TAG_FILEDIGESTALGO, RPM_INT32, HASHALGO_SHA256);
        rpm_header_add_strings(&h, TAG_PAYLOADDIGEST, 1, f_strv, (void *) payload_v);
        rpm_header_add_int(&h, TAG_PAYLOADDIGESTALGO, RPM_INT32, HASHALGO_SHA256);
        rpm_header_add_strings(&h, TAG_PAYLOADDIGESTALT, 1, f_strv, (void *) payload_v);
        return rpm_header_finish(&h, TAG_HEADERIMMUTABLE, ret, ret_size);
}

/* The signature header, unpadded; SHA256 and SHA1 NULL: zeros of the same width. */
static int build_signature(const rpm_data *d, const uint8_t *sha256, const uint8_t *sha1, uint8_t **ret,
                           size_t *ret_size) {
        static const uint8_t zero[32];
        uint64_t size = d->header_size + d->payload_size;
        char hex256[65], hex1[41];
        rpm_header h = {};

        pf_hex(sha256 ? sha256 : zero, 32, hex256);
        pf_hex(sha1 ? sha1 : zero, 20, hex1);
        rpm_header_add_string(&h, SIGTAG_SHA1, RPM_STRING, hex1);
        if (size >= LARGE || d->payload_size >= LARGE) {
                rpm_header_add_int(&h, SIGTAG_LONGSIZE, RPM_INT64, size);
                rpm_header_add_int(&h, SIGTAG_LONGARCHIVESIZE, RPM_INT64, d->payload_size);
        }
        rpm_header_add_string(&h, SIGTAG_SHA256, RPM_STRING, hex256);
        if (size < LARGE && d->payload_size < LARGE) {
                rpm_header_add_int(&h, SIGTAG_SIZE, RPM_INT32, size);
                rpm_header_add_int(&h, SIGTAG_PAYLOADSIZE, RPM_INT32, d->payload_size);
        }
        return rpm_header_finish(&h, TAG_HEADERSIGNATURES, ret, ret_size);
}

/* --- Digests */

static void digests_key(const pf_closure_item *item, uint8_t key[32]) {
        gcry_md_hd_t md;

        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                abort();
        gcry_md_write(md, DIGESTS_RECORD, sizeof(DIGESTS_RECORD));
        gcry_md_write(md, item->path, strlen(item->path) + 1);
        gcry_md_write(md, item->nar_hash, strlen(item->nar_hash) + 1);
        memcpy(key, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
}

/* A record: the digests, then a SHA-256 over the key and them. */
static bool record_lookup(pf_cache *cache, const uint8_t key[32], uint8_t *out, size_t len) {
        _cleanup_free_ uint8_t *data = NULL;
        uint8_t check[32];
        size_t size = 0;

        if (!cache || pf_cache_record_get(cache, key, (void **) &data, &size) < 0)
                return false;
        if (size == len + 32)
                pf_sha256_pair(key, 32, data, len, check);
        if (size != len + 32 || memcmp(check, data + len, 32) != 0) {
                log_warning("cache: a recorded pack.rpm digest is damaged; hashing again");
                (void) pf_cache_record_drop(cache, key);
                return false;
        }
        memcpy(out, data, len);
        return true;
}

static void record_put(pf_cache *cache, const uint8_t key[32], const uint8_t *digests, size_t len) {
        _cleanup_free_ uint8_t *data = malloc(len + 32);

        if (!cache || !data)
                return;
        memcpy(data, digests, len);
        pf_sha256_pair(key, 32, digests, len, data + len);
        (void) pf_cache_record_put(cache, key, data, len + 32);
}

#define CHUNK (1u << 20)

/* Checks that FD is still the file PATH was planned as. */
static int check_unchanged(int fd, const char *path, uint64_t size, int64_t mtime) {
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size != size || st.st_mtime != mtime) {
                log_error("%s: changed since it was planned; pack.rpm serves EIO", path);
                return -EIO;
        }
        return 0;
}

/* SHA-256 of store file F, which must be as planned before and after. */
static int hash_file(const rpm_file *f, uint8_t *buf, uint8_t digest[32]) {
        _cleanup_close_ int fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        uint64_t done = 0;
        gcry_md_hd_t md;
        int r;

        if (fd < 0) {
                log_error("%s: cannot open: %m; pack.rpm serves EIO", f->path);
                return -EIO;
        }
        r = check_unchanged(fd, f->path, f->size, f->mtime);
        if (r < 0)
                return r;
        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                return -ENOMEM;
        (void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        while (done < f->size) {
                ssize_t k = read(fd, buf, (size_t) MIN((uint64_t) CHUNK, f->size - done));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0 || (r = pf_cancel_check()) < 0)
                        break;
                gcry_md_write(md, buf, (size_t) k);
                done += (uint64_t) k;
        }
        if (r >= 0 && done == f->size)
                r = check_unchanged(fd, f->path, f->size, f->mtime);
        else if (r >= 0) {
                log_error("%s: short read; pack.rpm serves EIO", f->path);
                r = -EIO;
        }
        if (r >= 0)
                memcpy(digest, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
        return r;
}

/* The payload's SHA-256, in one pass over the plan's extents (store files
 * checked before and after they are read). */
typedef struct payload_job {
        rpm_data *d;
        int r;
        double seconds;
} payload_job;

static double now_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void *hash_payload(void *userdata) {
        payload_job *job = userdata;
        rpm_data *d = job->d;
        const pf_plan *p = d->plan;
        _cleanup_free_ uint8_t *buf = malloc(CHUNK);
        uint64_t end = d->payload_offset + d->payload_size;
        double start = now_seconds();
        gcry_md_hd_t md;
        int r = 0;

        if (!buf || gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0) {
                job->r = -ENOMEM;
                return NULL;
        }
        for (size_t i = pf_plan_find(p, d->payload_offset); r >= 0 && i < pf_plan_n_extents(p); i++) {
                const pf_extent *e = pf_plan_extent(p, i);
                if (e->offset >= end)
                        break;
                if (e->kind != PF_EXTENT_FILE) {
                        for (uint64_t at = 0; at < e->length && r >= 0;) {
                                size_t n = (size_t) MIN((uint64_t) CHUNK, e->length - at);
                                r = pf_plan_fill(p, e, at, buf, n);
                                if (r >= 0)
                                        gcry_md_write(md, buf, n);
                                at += n;
                        }
                        continue;
                }
                const pf_plan_file *f = pf_plan_file_at(p, e->file);
                _cleanup_close_ int fd = pf_plan_open_file(p, e);
                if (fd < 0) {
                        r = fd;
                        break;
                }
                (void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
                for (uint64_t at = 0; at < e->length && r >= 0;) {
                        ssize_t k = pread(fd, buf, (size_t) MIN((uint64_t) CHUNK, e->length - at), (off_t) (e->arg + at));
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0) {
                                log_error("%s: short read; pack.rpm serves EIO", f->path);
                                r = -EIO;
                                break;
                        }
                        gcry_md_write(md, buf, (size_t) k);
                        at += (uint64_t) k;
                        r = pf_cancel_check(); /* `packfs build` interrupted, an unmount */
                }
                if (r >= 0)
                        r = check_unchanged(fd, f->path, f->size, f->mtime);
        }
        if (r >= 0)
                memcpy(d->payload_digest, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
        job->r = r;
        job->seconds = now_seconds() - start;
        return NULL;
}

/* Every digest, then the headers. Called with D->lock held. */
static int make_headers_locked(rpm_data *d) {
        _cleanup_free_ bool *need = calloc(MAX(d->n_items, (size_t) 1), sizeof(bool));
        _cleanup_free_ uint8_t *buf = malloc(CHUNK);
        _cleanup_free_ uint8_t *header = NULL, *signature = NULL;
        size_t n_hashed = 0, n_with_files = 0, header_size = 0, signature_size = 0;
        uint64_t hashed_bytes = 0;
        payload_job job = { .d = d };
        pthread_t thread;
        bool payload_known, threaded = false;
        uint8_t sha256[32], sha1[20];
        double start = now_seconds(), files_seconds;
        int r = 0;

        if (!need || !buf)
                return -ENOMEM;
        payload_known = record_lookup(d->cache, d->payload_key, d->payload_digest, 32);
        if (!payload_known)
                threaded = pthread_create(&thread, NULL, hash_payload, &job) == 0;

        for (size_t k = 0; k < d->n_items; k++) {
                rpm_item *it = &d->items[k];
                if (it->n == 0)
                        continue;
                n_with_files++;
                need[k] = !(it->keyed && record_lookup(d->cache, it->key, d->digests[it->first], (size_t) it->n * 32));
        }
        for (size_t k = 0; k < d->n_items && r >= 0; k++) {
                rpm_item *it = &d->items[k];
                if (!need[k])
                        continue;
                for (uint32_t j = 0; j < it->n && r >= 0; j++) {
                        const rpm_file *f = &d->files[d->digest_file[it->first + j]];
                        r = hash_file(f, buf, d->digests[it->first + j]);
                        hashed_bytes += f->size;
                }
                if (r >= 0 && it->keyed)
                        record_put(d->cache, it->key, d->digests[it->first], (size_t) it->n * 32);
                n_hashed++;
        }
        files_seconds = now_seconds() - start;
        if (threaded)
                pthread_join(thread, NULL);
        else if (!payload_known && r >= 0)
                hash_payload(&job);
        if (r >= 0 && !payload_known) {
                r = job.r;
                if (r >= 0)
                        record_put(d->cache, d->payload_key, d->payload_digest, 32);
        }
        (void) pf_cache_flush_records(d->cache);
        if (r == -ECANCELED)
                return r;
        if (r < 0)
                return log_error_errno(r == -ENOMEM ? r : -EIO, "%s/pack.rpm: cannot compute its digests",
                                       d->view_name);
        log_info("%s/pack.rpm: hashed the files of %zu of %zu store items (%llu bytes, %.2f s), the others' "
                 "digests recorded; payload digest %s (%.2f s)",
                 d->view_name, n_hashed, n_with_files, (unsigned long long) hashed_bytes, files_seconds,
                 payload_known ? "recorded" : "computed", job.seconds);

        r = build_header(d, (const uint8_t (*)[32]) d->digests, d->payload_digest, &header, &header_size);
        if (r < 0)
                return r;
        if (header_size != d->header_size)
                return log_error_errno(-EIO, "%s/pack.rpm: its header changed size", d->view_name);
        gcry_md_hash_buffer(GCRY_MD_SHA256, sha256, header, header_size);
        gcry_md_hash_buffer(GCRY_MD_SHA1, sha1, header, header_size);
        r = build_signature(d, sha256, sha1, &signature, &signature_size);
        if (r < 0)
                return r;
        if (signature_size != d->signature_size)
                return log_error_errno(-EIO, "%s/pack.rpm: its signature changed size", d->view_name);
        d->header = TAKE_PTR(header);
        d->signature = TAKE_PTR(signature);
        d->ready = true;
        return 0;
}

/* The headers, made now if they are not yet. */
static int headers(rpm_data *d) {
        int r = 0;

        pthread_mutex_lock(&d->lock);
        if (!d->ready)
                r = make_headers_locked(d);
        pthread_mutex_unlock(&d->lock);
        return r;
}

static int rpm_generate(const void *format_data, uint64_t cookie, uint64_t offset, void *buf, size_t len) {
        rpm_data *d = (rpm_data *) format_data;
        int r = 0;

        if (cookie == COOKIE_SIGNATURE || cookie == COOKIE_HEADER) {
                r = headers(d);
                if (r < 0)
                        return r;
                if (cookie == COOKIE_HEADER) {
                        if (offset + len > d->header_size)
                                return -EINVAL;
                        memcpy(buf, d->header + offset, len);
                        return 0;
                }
                if (offset + len > d->signature_padded)
                        return -EINVAL;
                /* The signature, then zeros to 8 bytes. */
                memset(buf, 0, len);
                if (offset < d->signature_size)
                        memcpy(buf, d->signature + offset, (size_t) MIN((uint64_t) len, d->signature_size - offset));
                return 0;
        }
        if (cookie & COOKIE_LINK) {
                uint64_t i = cookie & ~COOKIE_LINK;
                if (i >= d->n_files || offset + len > d->files[i].size)
                        return -EINVAL;
                memcpy(buf, d->files[i].link + offset, len);
                return 0;
        }
        if (cookie >= d->n_files)
                return -EINVAL;
        const rpm_file *f = &d->files[cookie];
        uint8_t header[CPIO_NEWC_SIZE + PATH_MAX + 8];
        size_t n;
        if (d->large_files) {
                cpio_stripped_write(header, (uint32_t) cookie);
                n = CPIO_STRIPPED_SIZE;
        } else {
                size_t path_len = strlen(f->path);
                char name[PATH_MAX + 2];
                /* The member: "." + the path. */
                name[0] = '.';
                memcpy(name + 1, f->path, path_len);
                n = cpio_newc_length(path_len + 1);
                cpio_newc_write(header, name, path_len + 1, (uint32_t) cookie + 1, f->mode,
                                S_ISDIR(f->mode) ? 2 : 1, MTIME, (uint32_t) f->size);
        }
        if (offset + len > n)
                return -EINVAL;
        memcpy(buf, header + offset, len);
        return 0;
}

/* --- Planning */

typedef struct rpm_planner {
        rpm_data *d;
        pf_plan_builder *b;
        const pf_view *view;
        uint32_t item;          /* being walked */
        int error;
} rpm_planner;

static int add_file(rpm_planner *pl, const char *path, const char *link, mode_t mode, uint64_t size, int64_t mtime,
                    const uint8_t *data) {
        rpm_data *d = pl->d;
        rpm_file *f;

        /* cpio's member "./<path>" and rpm's paths are PATH_MAX at most. */
        if (strlen(path) + 2 > PATH_MAX || (link && strlen(link) + 1 > PATH_MAX)) {
                log_error("%s: name too long for an rpm: %s", pl->view->name, path);
                return -ENAMETOOLONG;
        }
        if (d->n_files == d->allocated) {
                size_t na = d->allocated ? d->allocated * 2 : 1024;
                rpm_file *v = reallocarray(d->files, na, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                d->files = v;
                d->allocated = na;
        }
        if (d->n_files >= UINT32_MAX / 2)
                return -E2BIG;
        f = &d->files[d->n_files];
        *f = (rpm_file) { .mode = (uint32_t) mode, .mtime = mtime, .data = data, .item = NO_ITEM };
        f->path = pf_plan_intern(pl->b, path);
        if (!f->path)
                return -ENOMEM;
        if (S_ISLNK(mode)) {
                f->link = pf_plan_intern(pl->b, link);
                if (!f->link)
                        return -ENOMEM;
                f->size = strlen(link);
        } else if (S_ISREG(mode)) {
                f->size = size;
                f->digest = (uint32_t) d->n_digests++;
        }
        d->n_files++;
        return 0;
}

static int on_store_entry(void *userdata, const pf_walk_entry *e) {
        rpm_planner *pl = userdata;
        int r = add_file(pl, e->path, e->link_target, e->mode, e->size, e->mtime, NULL);

        if (r >= 0)
                pl->d->files[pl->d->n_files - 1].item = pl->item;
        return r;
}

/* The directories of the file system hierarchy (FHS 3.0), the system's own:
 * a package that owned them would set their modes (/var/tmp's 1777) and
 * remove them with itself. The seed leaves the top ones out. */
static bool fhs_directory(const char *path) {
        static const char *const dirs[] = {
                "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt",
                "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
                "/usr/bin", "/usr/include", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libexec", "/usr/local",
                "/usr/sbin", "/usr/share", "/usr/src", "/usr/local/bin", "/usr/local/etc", "/usr/local/include",
                "/usr/local/lib", "/usr/local/sbin", "/usr/local/share", "/usr/local/src", "/var/cache",
                "/var/lib", "/var/local", "/var/lock", "/var/log", "/var/mail", "/var/opt", "/var/run",
                "/var/spool", "/var/tmp",
        };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                if (!strcmp(path, dirs[i]))
                        return true;
        return false;
}

static int plan_items(rpm_planner *pl) {
        const pf_closure *c = pl->view->closure;
        pf_walk_batch *batch = NULL;
        int r;

        r = pf_walk_batch_new(pl->view->cache, c->items, c->n_items, &batch);
        for (size_t k = 0; k < c->n_items && r >= 0; k++) {
                bool walked;
                pl->item = (uint32_t) k;
                r = pf_walk_batch_item(batch, k, on_store_entry, pl, &walked);
        }
        pf_walk_batch_free(batch);
        return r;
}

static int plan_extras(rpm_planner *pl, const extra_node *n, char *path, size_t len) {
        int r;

        if (n->name) {
                size_t l = strlen(n->name);
                if (len + 1 + l + 1 > PATH_MAX) {
                        log_error("%s: name too long for an rpm: %s/%s", pl->view->name, path, n->name);
                        return -ENAMETOOLONG;
                }
                path[len] = '/';
                memcpy(path + len + 1, n->name, l + 1);
                len += 1 + l;
                if (!fhs_directory(path)) {
                        r = add_file(pl, path, n->link, n->mode, n->size, 0, n->data);
                        if (r < 0)
                                return r;
                } else if (!S_ISDIR(n->mode))
                        /* A symlink (option symlinks) in place of one, as the seed: left out. */
                        log_warning("%s/pack.rpm: leaves out %s, a directory of the system it is installed on",
                                    pl->view->name, path);
        }
        if (n->is_store)
                return plan_items(pl);
        for (size_t i = 0; i < n->n_children; i++) {
                r = plan_extras(pl, n->children[i], path, len);
                path[len] = 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

static int file_cmp(const void *a, const void *b) {
        return strcmp(((const rpm_file *) a)->path, ((const rpm_file *) b)->path);
}

static int dir_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* DIRNAMES: every file's directory once, sorted; each file's index into them. */
static int index_dirs(rpm_data *d) {
        size_t n = 0;

        d->dirs = calloc(MAX(d->n_files, (size_t) 1), sizeof(char *));
        if (!d->dirs)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_files; i++) {
                const char *path = d->files[i].path;
                size_t len = (size_t) (base_name(path) - path);
                char *dir = strndup(path, len);
                if (!dir)
                        return -ENOMEM;
                d->dirs[d->n_dirs++] = dir;
        }
        qsort(d->dirs, d->n_dirs, sizeof(char *), dir_cmp);
        for (size_t i = 0; i < d->n_dirs; i++) {
                if (n > 0 && !strcmp(d->dirs[n - 1], d->dirs[i])) {
                        free(d->dirs[i]);
                        continue;
                }
                d->dirs[n++] = d->dirs[i];
        }
        d->n_dirs = n;
        for (size_t i = 0; i < d->n_files; i++) {
                const char *path = d->files[i].path;
                size_t len = (size_t) (base_name(path) - path), lo = 0, hi = n;
                char dir[PATH_MAX];
                memcpy(dir, path, len);
                dir[len] = 0;
                while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;
                        int c = strcmp(d->dirs[mid], dir);
                        if (c == 0) {
                                lo = mid;
                                break;
                        }
                        if (c < 0)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                d->files[i].dir = (uint32_t) lo;
        }
        return 0;
}

/* What rpm accepts in a name and a version. */
static void sanitize(char *s, const char *extra, char replacement) {
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr(extra, *s)))
                        *s = replacement;
}

/* The package's name and version (package.h says which), valid for rpm. */
static int name_and_version(const pf_view *view, char **ret_name, char **ret_version) {
        _cleanup_free_ char *name = NULL, *version = NULL;
        int r;

        r = pf_package_of_profile(view->store, view->store_dir, view->closure->root, view->name, &name, &version);
        if (r < 0)
                return r;
        if (!version || !*version) {
                free(version);
                version = strdup("0.0.0");
                if (!version)
                        return -ENOMEM;
        }
        sanitize(name, "._+-_", '-');
        sanitize(version, "._+~^", '_');
        if (!*name) {
                free(name);
                name = strdup("packfs");
                if (!name)
                        return -ENOMEM;
        }
        *ret_name = TAKE_PTR(name);
        *ret_version = TAKE_PTR(version);
        return 0;
}

/* The host's architecture as rpm names it, and its number in the lead. */
static const char *rpm_arch(uint16_t *ret_archnum) {
        static const struct {
                const char *machine;
                uint16_t num;
        } table[] = {
                { "x86_64", 1 }, { "i686", 1 }, { "i586", 1 }, { "i386", 1 }, { "aarch64", 19 },
                { "ppc64le", 16 }, { "ppc64", 16 }, { "s390x", 15 }, { "riscv64", 22 },
        };
        static char machine[65];
        struct utsname u;

        *ret_archnum = 0;
        if (uname(&u) < 0)
                return "x86_64";
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (!strcmp(u.machine, table[i].machine)) {
                        *ret_archnum = table[i].num;
                        return table[i].machine;
                }
        snprintf(machine, sizeof(machine), "%s", u.machine);
        return machine;
}

static uint64_t entry_header_length(const rpm_data *d, const rpm_file *f) {
        return d->large_files ? CPIO_STRIPPED_SIZE : cpio_newc_length(strlen(f->path) + 1);
}

static bool has_data(const rpm_file *f) {
        return f->size > 0 && !S_ISDIR(f->mode);
}

/* The payload's length, from the files alone. */
static uint64_t payload_length(const rpm_data *d) {
        uint64_t n = cpio_newc_length(strlen(CPIO_TRAILER));

        for (size_t i = 0; i < d->n_files; i++) {
                const rpm_file *f = &d->files[i];
                n += entry_header_length(d, f);
                if (has_data(f))
                        n += f->size + cpio_pad(f->size);
        }
        return n;
}

static int plan_payload(rpm_data *d, pf_plan_builder *b) {
        int r = 0;

        for (size_t i = 0; i < d->n_files && r >= 0; i++) {
                const rpm_file *f = &d->files[i];
                r = pf_plan_add_generated(b, entry_header_length(d, f), i);
                if (r < 0 || !has_data(f))
                        continue;
                if (S_ISLNK(f->mode))
                        r = pf_plan_add_generated(b, f->size, COOKIE_LINK | i);
                else if (f->data)
                        r = pf_plan_add_bytes(b, f->data, f->size);
                else
                        r = pf_plan_add_file(b, f->path, f->size, f->mtime, 0, f->size);
                if (r >= 0)
                        r = pf_plan_add_zero(b, cpio_pad(f->size));
        }
        if (r >= 0) {
                uint8_t trailer[CPIO_NEWC_SIZE + 16];
                size_t n = cpio_newc_length(strlen(CPIO_TRAILER));
                cpio_newc_write(trailer, CPIO_TRAILER, strlen(CPIO_TRAILER), 0, 0, 1, 0, 0);
                r = pf_plan_add_bytes(b, trailer, n);
        }
        return r;
}

/* The plan, its headers not made yet. */
static int plan_rpm(const pf_view *view, pf_plan **ret) {
        rpm_data *d = calloc(1, sizeof(*d));
        rpm_planner pl = { .d = d, .view = view };
        extra_node *extras = NULL;
        _cleanup_free_ uint8_t *probe = NULL;
        char path[PATH_MAX + 1] = "";
        uint8_t lead[RPM_LEAD_SIZE];
        const pf_closure *c = view->closure;
        pf_plan *plan = NULL;
        uint16_t archnum;
        size_t size;
        int r;

        if (!d)
                return -ENOMEM;
        pthread_mutex_init(&d->lock, NULL);
        d->cache = view->cache;
        r = pf_plan_builder_new(&pl.b);
        if (r < 0)
                goto fail;
        r = tar_extras_build(view, &extras);
        if (r < 0)
                goto fail;
        r = plan_extras(&pl, extras, path, 0);
        if (r < 0)
                goto fail;

        /* Digests in walk order, item by item; then the files sorted by path. */
        d->n_items = c->n_items;
        d->items = calloc(MAX(c->n_items, (size_t) 1), sizeof(*d->items));
        d->digests = calloc(MAX(d->n_digests, (size_t) 1), 32);
        d->digest_file = calloc(MAX(d->n_digests, (size_t) 1), sizeof(uint32_t));
        if (!d->items || !d->digests || !d->digest_file) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t k = 0; k < c->n_items; k++) {
                d->items[k].first = UINT32_MAX;
                d->items[k].keyed = pf_closure_item_keyed(&c->items[k]);
                if (d->items[k].keyed)
                        digests_key(&c->items[k], d->items[k].key);
        }
        for (size_t i = 0; i < d->n_files; i++) {
                rpm_file *f = &d->files[i];
                if (!S_ISREG(f->mode))
                        continue;
                if (f->item == NO_ITEM) {
                        /* The database: in memory, hashed now. */
                        gcry_md_hash_buffer(GCRY_MD_SHA256, d->digests[f->digest], f->data, f->size);
                        continue;
                }
                rpm_item *it = &d->items[f->item];
                if (it->first == UINT32_MAX)
                        it->first = f->digest;
                it->n++;
                if (f->size >= LARGE)
                        d->large_files = true;
        }
        for (size_t i = 0; i < d->n_files; i++)
                d->total_size += d->files[i].size;
        qsort(d->files, d->n_files, sizeof(*d->files), file_cmp);
        for (size_t i = 0; i < d->n_files; i++) {
                if (i > 0 && !strcmp(d->files[i - 1].path, d->files[i].path)) {
                        log_error("%s: %s: twice in the pack", view->name, d->files[i].path);
                        r = -EEXIST;
                        goto fail;
                }
                if (S_ISREG(d->files[i].mode))
                        d->digest_file[d->files[i].digest] = (uint32_t) i;
        }
        r = index_dirs(d);
        if (r < 0)
                goto fail;

        r = name_and_version(view, &d->name, &d->version);
        if (r < 0)
                goto fail;
        d->arch = strdup(rpm_arch(&archnum));
        d->view_name = strdup(view->name);
        if (asprintf(&d->summary, "%s, packed by packfs", d->name) < 0)
                d->summary = NULL;
        if (asprintf(&d->description, "The closure of %s, packed by packfs.", c->root) < 0)
                d->description = NULL;
        if (asprintf(&d->sourcerpm, "%s-%s-0.src.rpm", d->name, d->version) < 0)
                d->sourcerpm = NULL;
        const char *const scripts[] = { view->options->rpm_prein, view->options->rpm_postin,
                                        view->options->rpm_preun, view->options->rpm_postun };
        for (size_t i = 0; i < ELEMENTSOF(scripts); i++)
                if (scripts[i] && !(d->scripts[i] = strdup(scripts[i])))
                        r = -ENOMEM;
        d->relocatable = view->options->relocatable;
        if (r < 0 || !d->arch || !d->view_name || !d->summary || !d->description || !d->sourcerpm) {
                r = -ENOMEM;
                goto fail;
        }
        pf_sha256_pair(RPM_LAYOUT, sizeof(RPM_LAYOUT), c->id, 32, d->payload_key);
        pf_sha256_pair(PAYLOAD_RECORD, sizeof(PAYLOAD_RECORD), d->payload_key, 32, d->payload_key);
        pf_sha256_pair(d->payload_key, 32, view->options->id, 32, d->payload_key);

        /* Lead, signature and header, then the payload. */
        {
                _cleanup_free_ char *nvr = NULL;
                if (asprintf(&nvr, "%s-%s-0", d->name, d->version) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                rpm_lead_write(nvr, archnum, lead);
        }
        d->payload_size = payload_length(d);
        r = build_header(d, NULL, NULL, &probe, &size);
        if (r == -E2BIG)
                log_error("%s/pack.rpm: too many files for an rpm header (%zu)", view->name, d->n_files);
        if (r < 0)
                goto fail;
        d->header_size = size;
        free(probe);
        probe = NULL;
        r = build_signature(d, NULL, NULL, &probe, &size);
        if (r < 0)
                goto fail;
        d->signature_size = size;
        d->signature_padded = ALIGN_TO(size, 8);

        r = pf_plan_add_bytes(pl.b, lead, sizeof(lead));
        if (r >= 0)
                r = pf_plan_add_generated(pl.b, d->signature_padded, COOKIE_SIGNATURE);
        if (r >= 0)
                r = pf_plan_add_generated(pl.b, d->header_size, COOKIE_HEADER);
        d->payload_offset = pf_plan_builder_size(pl.b);
        if (r >= 0)
                r = plan_payload(d, pl.b);
        if (r >= 0 && pf_plan_builder_size(pl.b) != d->payload_offset + d->payload_size)
                r = -EIO;
        if (r < 0)
                goto fail;
        tar_extras_free(extras);
        /* Their bytes went into the plan with the extras. */
        for (size_t i = 0; i < d->n_files; i++)
                d->files[i].data = NULL;
        r = pf_plan_builder_finish(pl.b, rpm_generate, d, rpm_data_free, &plan);
        if (r < 0)
                return r;
        d->plan = plan; /* not a reference: D lives as long as the plan */
        *ret = plan;
        return 0;
fail:
        tar_extras_free(extras);
        pf_plan_builder_free(pl.b);
        rpm_data_free(d);
        return r;
}

static int rpm_plan(const pf_format *self, const pf_view *view, pf_plan **ret) {
        pf_plan *plan = NULL;
        int r = plan_rpm(view, &plan);

        if (r < 0)
                return r;
        /* Every digest now, in the thread a reader's open waits for (rpm_data). */
        r = headers((rpm_data *) pf_plan_format_data(plan));
        if (r < 0) {
                pf_plan_unref(plan);
                return r;
        }
        *ret = plan;
        return 0;
}

/* Its size needs no digest (their fields have fixed widths): a `stat` or a
 * listing gets the plan without its headers; rpm_complete() or a read makes
 * them. */
static int rpm_plan_sparse(const pf_format *self, const pf_view *view,
                           bool (*want)(void *userdata, const uint8_t identity[32]), void *userdata,
                           pf_plan **ret) {
        return plan_rpm(view, ret);
}

static int rpm_complete(const pf_format *self, const pf_view *view, pf_plan *sizing_plan) {
        return headers((rpm_data *) pf_plan_format_data(sizing_plan));
}

const pf_format pf_format_rpm = {
        .file_name = "pack.rpm",
        .plan = rpm_plan,
        .plan_sparse = rpm_plan_sparse,
        .complete = rpm_complete,
        .named = true,          /* NAME (a profile of several packages) */
};
