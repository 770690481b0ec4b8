/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pack.deb: a Debian binary package of the closure (`guix pack -f deb`), an ar
 * archive of
 *
 *   debian-binary   "2.0\n"
 *   control.tar     ./control (as the seed derives it, plus Installed-Size, or
 *                   the deb-control option's file), ./postinst and ./triggers
 *                   when the options give them
 *   data.tar        uncompressed: pack.tar's members (the closure at its store
 *                   paths, the store's parents, the profile's symlinks, the
 *                   localstatedir database), planned by the same code
 *
 * planned like pack.tar: an exact size from metadata, store file data served
 * from the store files. data.tar is a plan of its own (tar-plan.h with GNU-style
 * headers: dpkg 1.21's tar reader refuses pax headers, "unsupported PAX tar
 * header type 'x'", but reads GNU long names) that one GENERATED extent of the
 * .deb reads through: control.tar needs data.tar's Installed-Size, and comes
 * before it. A member that fits ustar has the very header pack.tar gives it.
 *
 * The ar headers are written by hand: 60 bytes of fixed ASCII fields, three of
 * them per package; libarchive's ar writer would need the bytes in order, not
 * planned. An ar member's size has 10 decimal digits, so a data.tar past
 * 9,999,999,999 bytes cannot be held: planning fails with EIO and a log line.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "packfs/digest.h"
#include "packfs/format.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/package.h"
#include "deb.h"
#include "tar-plan.h"

/* --- ar */

int deb_ar_header(const char *name, uint64_t size, uint8_t out[DEB_AR_HEADER]) {
        size_t len = strlen(name);
        char h[DEB_AR_HEADER + 1];

        if (len == 0)
                return -EINVAL;
        if (len > 16)
                return -ENAMETOOLONG;
        for (const char *p = name; *p; p++)
                if (*p == '/' || *p <= ' ' || *p > '~')
                        return -EINVAL;
        if (size > DEB_AR_SIZE_MAX)
                return -EFBIG;
        /* name[16] mtime[12] uid[6] gid[6] mode[8] size[10] "`\n" */
        snprintf(h, sizeof(h), "%-16s%-12u%-6u%-6u%-8s%-10llu`\n", name, 1u, 0u, 0u, "100644",
                 (unsigned long long) size);
        memcpy(out, h, DEB_AR_HEADER);
        return 0;
}

/* --- Control fields */

const char *deb_arch(const char *machine) {
        /* dpkg's cputable names for GNU machine types, as the seed maps them. */
        static const struct {
                const char *machine, *arch;
        } table[] = {
                { "x86_64", "amd64" },        { "aarch64", "arm64" },    { "i386", "i386" },
                { "i486", "i386" },           { "i586", "i386" },        { "i686", "i386" },
                { "armv7l", "armhf" },        { "armv6l", "armel" },     { "ppc64le", "ppc64el" },
                { "powerpc64le", "ppc64el" }, { "powerpc64", "ppc64" },  { "ppc64", "ppc64" },
                { "powerpcle", "powerpcel" }, { "mipsisa32r6", "mipsr6" }, { "mipsisa32r6el", "mipsr6el" },
                { "mipsisa64r6", "mips64r6" }, { "mipsisa64r6el", "mips64r6el" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (!strcmp(machine, table[i].machine))
                        return table[i].arch;
        return machine;
}

char *deb_package_name(const char *s) {
        size_t n = strlen(s);
        char *out = malloc(n + 8), *o = out;

        if (!out)
                return NULL;
        for (; *s; s++) {
                char c = (char) tolower((unsigned char) *s);
                bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                if (!alnum && c != '+' && c != '.' && c != '-')
                        c = '-';
                if (o == out && !alnum)
                        continue;
                *o++ = c;
        }
        *o = 0;
        if (o - out < 2)
                strcpy(out, "packfs");
        return out;
}

char *deb_version(const char *s) {
        char *out, *o;

        if (!s || !*s)
                return strdup("0.0.0");
        out = malloc(strlen(s) + 3);
        if (!out)
                return NULL;
        o = out;
        if (!isdigit((unsigned char) *s)) {
                *o++ = '0';
                *o++ = '.';
        }
        for (; *s; s++)
                *o++ = isalnum((unsigned char) *s) || *s == '.' || *s == '+' || *s == '~' ? *s : '.';
        *o = 0;
        return out;
}

uint64_t deb_installed_size(const tar_entry *entries, size_t n) {
        uint64_t kib = 0;

        for (size_t i = 0; i < n; i++)
                kib += S_ISREG(entries[i].mode) ? (entries[i].size + 1023) / 1024 : 1;
        return kib;
}

/* Whether TEXT has a field NAME (case-insensitive, at a line's start). */
static bool has_field(const char *text, const char *name) {
        size_t len = strlen(name);

        for (const char *line = text; line && *line;) {
                if (!strncasecmp(line, name, len) && line[len] == ':')
                        return true;
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return false;
}

int deb_control_text(const deb_control_input *in, char **ret) {
        char *text = NULL;
        int n;

        if (in->user_control) {
                size_t len = strlen(in->user_control);
                bool newline = len > 0 && in->user_control[len - 1] == '\n';
                if (has_field(in->user_control, "Installed-Size"))
                        n = asprintf(&text, "%s%s", in->user_control, newline ? "" : "\n");
                else
                        n = asprintf(&text, "%s%sInstalled-Size: %llu\n", in->user_control, newline ? "" : "\n",
                                     (unsigned long long) in->installed_size);
        } else {
                /* The view's name may hold anything a file name may: no line breaks
                 * or control characters into the paragraph. */
                _cleanup_free_ char *view = strdup(in->view);
                if (!view)
                        return -ENOMEM;
                for (char *p = view; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                *p = '?';
                n = asprintf(&text,
                             "Package: %s\n"
                             "Version: %s\n"
                             "Description: Debian archive generated by packfs\n"
                             " The closure of %s, at its store paths.\n"
                             "Maintainer: packfs\n"
                             "Architecture: %s\n"
                             "Priority: optional\n"
                             "Section: misc\n"
                             "Installed-Size: %llu\n",
                             in->package, in->version, view, in->arch, (unsigned long long) in->installed_size);
        }
        if (n < 0)
                return -ENOMEM;
        *ret = text;
        return 0;
}

/* --- Planning */

/* The package's name and version, valid for dpkg (package.h says which). */
static int package_identity(const pf_view *view, char **ret_name, char **ret_version) {
        _cleanup_free_ char *name = NULL, *version = NULL;
        int r;

        r = pf_package_of_profile(view->store, view->store_dir, view->closure->root, view->name, &name, &version);
        if (r < 0)
                return r;
        *ret_name = deb_package_name(name);
        *ret_version = deb_version(version);
        if (!*ret_name || !*ret_version) {
                free(*ret_name);
                free(*ret_version);
                return -ENOMEM;
        }
        return 0;
}

/* Installed sizes. A sizing plan (pf_format_want_none: st_size without a walk)
 * needs each item's share of Installed-Size, which the control file holds: a
 * function of the item's identity alone, recorded in the cache (in KiB) when a
 * whole plan counts it, as pack.tar records its items' lengths. */
#define INSTALLED_RECORD "packfs deb item installed size 1"

static void installed_key(const pf_closure_item *item, uint8_t key[32]) {
        uint8_t identity[32];

        tar_item_identity_gnu(item, identity);
        pf_sha256_pair(INSTALLED_RECORD, sizeof(INSTALLED_RECORD), identity, 32, key);
}

/* 1 and *RET from the record, 0 without one (a damaged one is dropped). */
static int installed_lookup(pf_cache *cache, const pf_closure_item *item, uint64_t *ret) {
        uint8_t key[32];
        int r;

        if (!cache || !pf_closure_item_keyed(item))
                return 0;
        installed_key(item, key);
        r = pf_cache_record_get_u64(cache, key, ret);
        if (r == -EBADMSG)
                log_warning("cache: %s: the recorded pack.deb installed size is damaged; counting it again", item->path);
        return r > 0;
}

/* Best effort: without it, the next stat makes a whole plan. */
static void installed_record(pf_cache *cache, const pf_closure_item *item, uint64_t kib) {
        uint8_t key[32];

        if (!cache || !pf_closure_item_keyed(item))
                return;
        installed_key(item, key);
        pf_cache_record_put_u64(cache, key, kib);
}

/* A whole plan's tar_planner.around_item: records each item's installed size
 * (its members are the entries added between the two calls). */
static int record_item(tar_planner *t, size_t i, bool after, uint64_t length) {
        size_t *start = t->userdata;

        if (!after)
                *start = t->data->n_entries;
        else
                installed_record(t->view->cache, &t->view->closure->items[i],
                                 deb_installed_size(t->data->entries + *start, t->data->n_entries - *start));
        return 0;
}

/* data.tar: pack.tar's members with GNU-style headers (see the top); SIZING:
 * the store items as zeros of their recorded lengths (tar-plan.h). */
static int plan_data_tar(const pf_view *view, bool sizing, pf_plan **ret) {
        tar_planner t = { .view = view };
        extra_node *extras = NULL;
        size_t start = 0;
        int r;

        if (sizing)
                t.want = pf_format_want_none;
        else if (view->cache) {
                t.around_item = record_item;
                t.userdata = &start;
        }

        r = tar_extras_build(view, &extras);
        if (r < 0)
                return r;
        t.data = calloc(1, sizeof(*t.data));
        r = t.data ? pf_plan_builder_new(&t.builder) : -ENOMEM;
        if (r < 0)
                goto fail;
        t.data->gnu = true;
        t.path[0] = '.';
        t.path[1] = 0;
        r = tar_plan_extras(&t, extras, 1);
        if (r >= 0)
                r = pf_plan_add_zero(t.builder, 2 * TAR_BLOCK);
        if (r < 0)
                goto fail;
        tar_extras_free(extras);
        return pf_plan_builder_finish(t.builder, tar_generate, t.data, tar_plan_data_free, ret);
fail:
        tar_extras_free(extras);
        pf_plan_builder_free(t.builder);
        tar_plan_data_free(t.data);
        return r;
}

/* A member of control.tar into BUF at *AT. */
static void control_member(uint8_t *buf, size_t *at, const char *name, mode_t mode, const char *data) {
        size_t len = data ? strlen(data) : 0;
        tar_entry e = { .name = name, .mode = mode, .size = len };
        int n = tar_header_write(&e, buf + *at);

        /* Short names and small files: a single ustar block. */
        assert(n == TAR_BLOCK);
        (void) n;
        *at += TAR_BLOCK;
        if (len > 0) {
                memcpy(buf + *at, data, len);
                memset(buf + *at + len, 0, tar_padding(len));
                *at += len + tar_padding(len);
        }
}

/* control.tar: ./, ./control, and ./postinst and ./triggers when set. */
static int control_tar(const char *control, const pf_options *o, uint8_t **ret, size_t *ret_size) {
        const char *files[] = { control, o->deb_postinst, o->deb_triggers };
        size_t size = TAR_BLOCK + 2 * TAR_BLOCK, at = 0;
        uint8_t *buf;

        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (files[i])
                        size += TAR_BLOCK + strlen(files[i]) + tar_padding(strlen(files[i]));
        buf = calloc(1, size);
        if (!buf)
                return -ENOMEM;
        control_member(buf, &at, "./", S_IFDIR | 0755, NULL);
        control_member(buf, &at, "./control", S_IFREG | 0644, control);
        if (o->deb_postinst)
                control_member(buf, &at, "./postinst", S_IFREG | 0755, o->deb_postinst);
        if (o->deb_triggers)
                control_member(buf, &at, "./triggers", S_IFREG | 0644, o->deb_triggers);
        assert(at + 2 * TAR_BLOCK == size);
        *ret = buf;
        *ret_size = size;
        return 0;
}

typedef struct deb_data {
        pf_plan *data_tar;
} deb_data;

static void deb_data_free(void *p) {
        deb_data *d = p;

        if (d)
                pf_plan_unref(d->data_tar);
        free(d);
}

/* The one GENERATED extent: data.tar, read through its own plan (which checks
 * every store file against what it was planned with). */
static int deb_generate(const void *format_data, uint64_t cookie, uint64_t offset, void *buf, size_t len) {
        const deb_data *d = format_data;
        ssize_t n;

        if (cookie != 0)
                return -EINVAL;
        n = pf_plan_pread(d->data_tar, buf, len, offset);
        if (n < 0)
                return (int) n;
        return (size_t) n == len ? 0 : -EIO;
}

static int add_ar_member(pf_plan_builder *b, const char *name, uint64_t size) {
        uint8_t h[DEB_AR_HEADER];
        int r = deb_ar_header(name, size, h);

        return r < 0 ? r : pf_plan_add_bytes(b, h, sizeof(h));
}

/* The .deb; a sizing plan (WANT pf_format_want_none, never read) when every
 * item's installed size is recorded: data.tar's items are then zeros of their
 * recorded lengths, and nothing is walked. Any other WANT: the whole plan
 * (there are no compressed variants of pack.deb to want parts of it). */
static int deb_plan_sparse(const pf_format *self, const pf_view *view,
                           bool (*want)(void *userdata, const uint8_t identity[32]), void *userdata,
                           pf_plan **ret) {
        _cleanup_free_ char *package = NULL, *version = NULL, *control = NULL;
        _cleanup_free_ uint8_t *ctar = NULL;
        bool sizing = want == pf_format_want_none && view->cache;
        const tar_plan_data *entries;
        pf_plan_builder *b = NULL;
        pf_plan *data_tar = NULL;
        uint64_t data_size, recorded = 0;
        deb_data *d = NULL;
        size_t ctar_size = 0;
        struct utsname u;
        int r;

        for (size_t i = 0; sizing && i < view->closure->n_items; i++) {
                uint64_t kib;
                if (installed_lookup(view->cache, &view->closure->items[i], &kib) > 0)
                        recorded += kib;
                else
                        sizing = false;
        }
        r = plan_data_tar(view, sizing, &data_tar);
        if (r < 0)
                return r;
        data_size = pf_plan_size(data_tar);
        if (data_size > DEB_AR_SIZE_MAX) {
                log_error("%s/%s: data.tar would be %llu bytes, more than the %llu an ar member can hold; "
                          "no .deb of this closure",
                          view->name, self->file_name, (unsigned long long) data_size,
                          (unsigned long long) DEB_AR_SIZE_MAX);
                r = -EIO;
                goto fail;
        }
        entries = pf_plan_format_data(data_tar);
        /* dpkg's file lists are one name a line: it refuses ("newline not
         * allowed in archive object name") what a tar holds. */
        for (size_t i = 0; i < entries->n_entries; i++)
                if (strchr(entries->entries[i].name, '\n')) {
                        log_error("%s/%s: %s: a file name with a newline, which dpkg cannot install; no .deb of "
                                  "this closure",
                                  view->name, self->file_name, entries->entries[i].name + 1);
                        r = -EINVAL;
                        goto fail;
                }
        r = package_identity(view, &package, &version);
        if (r < 0)
                goto fail;
        r = deb_control_text(&(deb_control_input) { .package = package, .version = version,
                                                    .arch = deb_arch(uname(&u) == 0 ? u.machine : "x86_64"),
                                                    .view = view->name,
                                                    .installed_size = (sizing ? recorded : 0) +
                                                                      deb_installed_size(entries->entries,
                                                                                         entries->n_entries),
                                                    .user_control = view->options->deb_control },
                             &control);
        if (r >= 0)
                r = control_tar(control, view->options, &ctar, &ctar_size);
        if (r >= 0)
                r = pf_plan_builder_new(&b);
        if (r >= 0)
                r = pf_plan_add_bytes(b, DEB_AR_MAGIC, DEB_AR_MAGIC_SIZE);
        if (r >= 0)
                r = add_ar_member(b, "debian-binary", 4);
        if (r >= 0)
                r = pf_plan_add_bytes(b, "2.0\n", 4);
        /* Members are padded to an even size: both tars are whole blocks. */
        if (r >= 0)
                r = add_ar_member(b, "control.tar", ctar_size);
        if (r >= 0)
                r = pf_plan_add_bytes(b, ctar, ctar_size);
        if (r >= 0)
                r = add_ar_member(b, "data.tar", data_size);
        if (r >= 0 && sizing) {
                r = pf_plan_add_zero(b, data_size);
                if (r < 0)
                        goto fail;
                pf_plan_unref(data_tar);
                return pf_plan_builder_finish(b, NULL, NULL, NULL, ret);
        }
        if (r >= 0)
                r = pf_plan_add_generated(b, data_size, 0);
        if (r >= 0 && !(d = calloc(1, sizeof(*d))))
                r = -ENOMEM;
        if (r < 0)
                goto fail;
        d->data_tar = data_tar;
        return pf_plan_builder_finish(b, deb_generate, d, deb_data_free, ret);
fail:
        pf_plan_builder_free(b);
        pf_plan_unref(data_tar);
        return r;
}

static int deb_plan(const pf_format *self, const pf_view *view, pf_plan **ret) {
        return deb_plan_sparse(self, view, NULL, NULL, ret);
}

const pf_format pf_format_deb = {
        .file_name = "pack.deb",
        .plan = deb_plan,
        .plan_sparse = deb_plan_sparse,
        .named = true,          /* Package: (a profile of several packages) */
};
