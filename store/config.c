/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <stddef.h>
#include <fnmatch.h>
#include <gcrypt.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "packfs/cache.h"
#include "packfs/config.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/profiles.h"

/* One "key = value" as written; resolution replays them in section order. */
typedef struct setting {
        char *key;
        char *value;
        char *content;  /* file-valued keys (deb-control, ...): the file, read at load */
} setting;

typedef struct section {
        char *pattern;
        setting *settings;
        size_t n_settings;
} section;

struct pf_config {
        section *sections;
        size_t n_sections;
};

struct parse_state {
        pf_config *config;
        const char *name;
        int error;
        char message[512];      /* why the handler stopped; ini_parse() gives the line */
};

static int parse_bool(const char *v, bool *ret) {
        if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1") || !strcasecmp(v, "on"))
                *ret = true;
        else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0") || !strcasecmp(v, "off"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

/* Compression levels, as the codecs accept them (codec.h; a unit test checks
 * that the two agree). */
static const struct level_key {
        const char *key, *codec;
        int min, max;
        size_t field;
} level_keys[] = {
        { "gzip-level", "gzip", 1, 9, offsetof(pf_options, gzip_level) },
        { "xz-level", "xz", 0, 9, offsetof(pf_options, xz_level) },
        { "zstd-level", "zstd", 1, 19, offsetof(pf_options, zstd_level) },
};

/* docker.tar's layers: Docker refuses images of more than ~125, and one is
 * the profile's own (symlinks, /tmp, the database), one the merged rest. */
static const struct level_key max_layers_key = { "max-layers", NULL, 3, 125, offsetof(pf_options, max_layers) };

/* Disk images: at least what an ext4 with a journal and GRUB needs, at most
 * what a 32-bit MBR partition table can describe. */
#define DISK_SIZE_MIN ((uint64_t) 16 << 20)
#define DISK_SIZE_MAX ((uint64_t) 2 << 40)
/* The VM of `packfs run-vm` and the helper, in MiB and CPUs. */
static const struct level_key vm_memory_key = { "vm-memory", NULL, 64, 1 << 20, offsetof(pf_options, vm_memory) };
static const struct level_key vm_cpus_key = { "vm-cpus", NULL, 1, 64, offsetof(pf_options, vm_cpus) };
static const struct level_key helper_timeout_key = { "helper-timeout", NULL, 1, 86400,
                                                     offsetof(pf_options, helper_timeout) };

/* pack.squashfs: the compressors libsquashfs writes, and a level in the
 * widest of their ranges (formats/squashfs.c checks it against the one chosen). */
static const struct level_key squashfs_level_key = { "squashfs-level", NULL, 0, 22,
                                                     offsetof(pf_options, squashfs_level) };
static const char *const squashfs_compressors[] = { "gzip", "xz", "zstd", "lz4", "lzo" };

static bool squashfs_compressor_valid(const char *v) {
        for (size_t i = 0; i < ELEMENTSOF(squashfs_compressors); i++)
                if (!strcmp(squashfs_compressors[i], v))
                        return true;
        return false;
}

static const struct level_key *level_key_find(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(level_keys); i++)
                if (!strcmp(level_keys[i].key, key))
                        return &level_keys[i];
        return NULL;
}

static int parse_level(const struct level_key *k, const char *v, int *ret) {
        char *end;
        long l;

        errno = 0;
        l = strtol(v, &end, 10);
        if (errno || end == v || *end || l < k->min || l > k->max)
                return -EINVAL;
        *ret = (int) l;
        return 0;
}

int pf_options_level(const pf_options *o, const char *codec_name) {
        for (size_t i = 0; i < ELEMENTSOF(level_keys); i++)
                if (!strcmp(level_keys[i].codec, codec_name))
                        return *(const int *) ((const uint8_t *) o + level_keys[i].field);
        return -1;
}

/* Keys whose value names a file read when the config is loaded (pack.deb's). */
#define FILE_SETTING_MAX (1u << 20)
static bool is_file_key(const char *key) {
        return !strcmp(key, "deb-control") || !strcmp(key, "deb-postinst") || !strcmp(key, "deb-triggers");
}

/* pack.rpm's scripts: files whose text the config keeps, read when it is loaded. */
static const char *const rpm_script_keys[] = { "rpm-prein", "rpm-postin", "rpm-preun", "rpm-postun" };
#define RPM_SCRIPT_MAX (1 << 20)

static bool is_rpm_script_key(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(rpm_script_keys); i++)
                if (!strcmp(key, rpm_script_keys[i]))
                        return true;
        return false;
}

/* The text of script file PATH (absolute, a regular file of at most
 * RPM_SCRIPT_MAX bytes, no NUL), malloc'd. */
static int read_rpm_script(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *text = NULL;
        struct stat st;
        size_t n;

        if (path[0] != '/')
                return -EINVAL;
        f = fopen(path, "re");
        if (!f || fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > RPM_SCRIPT_MAX)
                return -EINVAL;
        text = malloc((size_t) st.st_size + 1);
        if (!text)
                return -ENOMEM;
        n = fread(text, 1, (size_t) st.st_size, f);
        if (n != (size_t) st.st_size || memchr(text, 0, n))
                return -EINVAL;
        text[n] = 0;
        *ret = TAKE_PTR(text);
        return 0;
}

/* Checks that VALUE is valid for KEY, so errors are reported at load time with a line. */
static int validate(const char *key, const char *value) {
        const struct level_key *k = level_key_find(key);
        if (k) {
                int level;
                return parse_level(k, value, &level);
        }
        if (!strcmp(key, "localstatedir") || !strcmp(key, "relocatable")) {
                bool b;
                return parse_bool(value, &b);
        }
        if (is_rpm_script_key(key)) {
                _cleanup_free_ char *text = NULL;
                return read_rpm_script(value, &text);
        }
        if (!strcmp(key, "max-layers")) {
                int n;
                return parse_level(&max_layers_key, value, &n);
        }
        if (!strcmp(key, "entry-point") || !strcmp(key, "kernel") || !strcmp(key, "initrd") ||
            !strcmp(key, "init"))
                return *value == 0 || pf_relpath_is_clean(value) ? 0 : -EINVAL;
        if (!strcmp(key, "disk-size")) {
                uint64_t size;
                return pf_cache_parse_size(value, &size) < 0 || size < DISK_SIZE_MIN || size > DISK_SIZE_MAX
                               ? -EINVAL
                               : 0;
        }
        if (!strcmp(key, "kernel-arguments"))
                return strpbrk(value, "\"'\\\n;{}$") ? -EINVAL : 0;
        if (!strcmp(key, "helper-kernel"))
                return value[0] == '/' ? 0 : -EINVAL;
        if (is_file_key(key))
                /* The file itself is read and checked by read_file_setting(). */
                return *value == 0 || value[0] == '/' ? 0 : -EINVAL;
        if (!strcmp(key, "vm-memory")) {
                int n;
                return parse_level(&vm_memory_key, value, &n);
        }
        if (!strcmp(key, "vm-cpus")) {
                int n;
                return parse_level(&vm_cpus_key, value, &n);
        }
        if (!strcmp(key, "helper-timeout")) {
                int n;
                return parse_level(&helper_timeout_key, value, &n);
        }
        if (!strcmp(key, "squashfs-compressor"))
                return squashfs_compressor_valid(value) ? 0 : -EINVAL;
        if (!strcmp(key, "squashfs-level")) {
                int n;
                return parse_level(&squashfs_level_key, value, &n);
        }
        if (!strcmp(key, "prepare")) {
                /* File names of a view; which ones exist is the formats' to say
                 * (pf_config_foreach_prepare()). */
                _cleanup_free_ char *copy = strdup(value);
                char *save = NULL;
                if (!copy)
                        return -ENOMEM;
                for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
                        if (strchr(tok, '/') || !strcmp(tok, ".") || !strcmp(tok, ".."))
                                return -EINVAL;
                return 0;
        }
        if (!strcmp(key, "symlinks")) {
                _cleanup_free_ char *copy = strdup(value);
                char *save = NULL;
                if (!copy)
                        return -ENOMEM;
                for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                        char *eq = strchr(tok, '=');
                        if (!eq || tok[0] != '/')
                                return -EINVAL;
                        *eq = 0;
                        if (!pf_relpath_is_clean(tok + 1) || !pf_relpath_is_clean(eq + 1))
                                return -EINVAL;
                }
                return 0;
        }
        return -ENOKEY;
}

/* Reads the file VALUE names for KEY into *RET (NULL for an empty value: unset).
 * On a bad file, a message for the log in MESSAGE and -EINVAL. */
static int read_file_setting(const char *key, const char *value, char **ret, char *message, size_t size) {
        _cleanup_free_ char *data = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t n;

        *ret = NULL;
        if (!*value)
                return 0;
        f = fopen(value, "re");
        if (!f) {
                snprintf(message, size, "%s: cannot read %s: %m", key, value);
                return -EINVAL;
        }
        data = malloc(FILE_SETTING_MAX + 1);
        if (!data)
                return -ENOMEM;
        n = fread(data, 1, FILE_SETTING_MAX + 1, f);
        if (ferror(f) || n > FILE_SETTING_MAX) {
                snprintf(message, size, "%s: %s: %s", key, value, ferror(f) ? "cannot read it" : "larger than 1 MiB");
                return -EINVAL;
        }
        data[n] = 0;
        if (strlen(data) != n) {
                snprintf(message, size, "%s: %s: not a text file (a NUL byte)", key, value);
                return -EINVAL;
        }
        if (!strcmp(key, "deb-postinst") && strncmp(data, "#!", 2) != 0) {
                snprintf(message, size, "%s: %s: a script must start with \"#!\"", key, value);
                return -EINVAL;
        }
        if (!strcmp(key, "deb-control")) {
                static const char *const required[] = { "Package", "Version", "Architecture" };
                for (size_t i = 0; i < ELEMENTSOF(required); i++) {
                        bool found = false;
                        size_t len = strlen(required[i]);
                        for (const char *line = data; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
                                if (!strncasecmp(line, required[i], len) && line[len] == ':') {
                                        found = true;
                                        break;
                                }
                        if (!found) {
                                snprintf(message, size, "%s: %s: no %s field", key, value, required[i]);
                                return -EINVAL;
                        }
                }
                if (strstr(data, "\n\n") || data[0] == '\n') {
                        snprintf(message, size, "%s: %s: a blank line (a control file is one paragraph)", key, value);
                        return -EINVAL;
                }
        }
        *ret = TAKE_PTR(data);
        return 0;
}

/* inih as Debian builds it passes no line number to handlers: the handler keeps
 * its message and finish_parse() logs it with the line ini_parse() returns. */
static int on_ini_entry(void *user, const char *sec, const char *key, const char *value) {
        struct parse_state *st = user;
        pf_config *c = st->config;
        section *s;
        int r;

        if (!*sec) {
                snprintf(st->message, sizeof(st->message), "'%s' outside a section", key);
                st->error = -EINVAL;
                return 0;
        }
        r = validate(key, value);
        if (r == -ENOKEY) {
                snprintf(st->message, sizeof(st->message),
                         "unknown option '%s' (known: symlinks, entry-point, localstatedir, max-layers, gzip-level, "
                         "xz-level, zstd-level, prepare, disk-size, kernel, initrd, init, kernel-arguments, "
                         "helper-kernel, helper-timeout, vm-memory, vm-cpus, deb-control, deb-postinst, "
                         "deb-triggers, squashfs-compressor, squashfs-level, rpm-prein, rpm-postin, "
                         "rpm-preun, rpm-postun, relocatable)",
                         key);
                st->error = -EINVAL;
                return 0;
        }
        if (r < 0) {
                snprintf(st->message, sizeof(st->message), "bad value for %s: '%s'", key, value);
                st->error = r == -ENOMEM ? r : -EINVAL;
                return 0;
        }
        if (c->n_sections == 0 || strcmp(c->sections[c->n_sections - 1].pattern, sec) != 0) {
                section *ns = reallocarray(c->sections, c->n_sections + 1, sizeof(*ns));
                if (!ns)
                        goto oom;
                c->sections = ns;
                s = &c->sections[c->n_sections];
                *s = (section) { .pattern = strdup(sec) };
                if (!s->pattern)
                        goto oom;
                c->n_sections++;
        }
        s = &c->sections[c->n_sections - 1];
        setting *nv = reallocarray(s->settings, s->n_settings + 1, sizeof(*nv));
        if (!nv)
                goto oom;
        s->settings = nv;
        nv[s->n_settings].key = strdup(key);
        nv[s->n_settings].content = NULL;
        /* A script is kept as its text (validate() read it once already). */
        nv[s->n_settings].value = NULL;
        if (is_rpm_script_key(key)) {
                r = read_rpm_script(value, &nv[s->n_settings].value);
                if (r == -EINVAL) {
                        free(nv[s->n_settings].key);
                        snprintf(st->message, sizeof(st->message), "bad value for %s: '%s'", key, value);
                        st->error = -EINVAL;
                        return 0;
                }
        } else
                nv[s->n_settings].value = strdup(value);
        s->n_settings++;
        if (!nv[s->n_settings - 1].key || !nv[s->n_settings - 1].value)
                goto oom;
        if (is_file_key(key)) {
                r = read_file_setting(key, value, &nv[s->n_settings - 1].content, st->message, sizeof(st->message));
                if (r < 0) {
                        st->error = r;
                        return 0;
                }
        }
        return 1;
oom:
        st->error = -ENOMEM;
        return 0;
}

static int finish_parse(int ini_r, struct parse_state *st, pf_config **ret) {
        if (st->error < 0 && st->message[0])
                log_error("%s:%d: %s", st->name, ini_r, st->message);
        else if (st->error == 0 && ini_r != 0) {
                if (ini_r == -1)
                        log_error("%s: cannot open", st->name);
                else if (ini_r == -2)
                        st->error = -ENOMEM;
                else
                        log_error("%s:%d: syntax error", st->name, ini_r);
                st->error = ini_r == -1 ? -ENOENT : ini_r == -2 ? -ENOMEM : -EINVAL;
        }
        if (st->error < 0) {
                pf_config_free(st->config);
                return st->error;
        }
        *ret = st->config;
        return 0;
}

int pf_config_parse_string(const char *text, const char *name, pf_config **ret) {
        struct parse_state st = { .name = name };

        st.config = calloc(1, sizeof(pf_config));
        if (!st.config)
                return -ENOMEM;
        return finish_parse(ini_parse_string(text, on_ini_entry, &st), &st, ret);
}

int pf_config_load(const char *path, pf_config **ret) {
        struct parse_state st = { .name = path };

        st.config = calloc(1, sizeof(pf_config));
        if (!st.config)
                return -ENOMEM;
        if (!path) {
                *ret = st.config;
                return 0;
        }
        return finish_parse(ini_parse(path, on_ini_entry, &st), &st, ret);
}

void pf_config_free(pf_config *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_sections; i++) {
                for (size_t j = 0; j < c->sections[i].n_settings; j++) {
                        free(c->sections[i].settings[j].key);
                        free(c->sections[i].settings[j].value);
                        free(c->sections[i].settings[j].content);
                }
                free(c->sections[i].settings);
                free(c->sections[i].pattern);
        }
        free(c->sections);
        free(c);
}

void pf_options_done(pf_options *o) {
        for (size_t i = 0; i < o->n_symlinks; i++) {
                free(o->symlinks[i].source);
                free(o->symlinks[i].target);
        }
        free(o->symlinks);
        free(o->entry_point);
        free(o->kernel);
        free(o->initrd);
        free(o->init);
        free(o->kernel_arguments);
        free(o->helper_kernel);
        free(o->deb_control);
        free(o->deb_postinst);
        free(o->deb_triggers);
        free(o->squashfs_compressor);
        free(o->rpm_prein);
        free(o->rpm_postin);
        free(o->rpm_preun);
        free(o->rpm_postun);
        for (size_t i = 0; i < o->n_prepare; i++)
                free(o->prepare[i]);
        free(o->prepare);
        *o = (pf_options) {};
}

/* Splits VALUE at blanks into a new list, replacing *LIST. */
static int set_words(const char *value, char ***list, size_t *n) {
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL;

        for (size_t i = 0; i < *n; i++)
                free((*list)[i]);
        *n = 0;
        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                char **nv = reallocarray(*list, *n + 1, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                *list = nv;
                nv[*n] = strdup(tok);
                if (!nv[*n])
                        return -ENOMEM;
                (*n)++;
        }
        return 0;
}

static int apply_setting(pf_options *o, const setting *s) {
        const struct level_key *k = level_key_find(s->key);
        if (k)
                return parse_level(k, s->value, (int *) ((uint8_t *) o + k->field));
        if (!strcmp(s->key, "localstatedir"))
                return parse_bool(s->value, &o->localstatedir);
        if (!strcmp(s->key, "relocatable"))
                return parse_bool(s->value, &o->relocatable);
        if (!strcmp(s->key, "max-layers"))
                return parse_level(&max_layers_key, s->value, &o->max_layers);
        if (!strcmp(s->key, "prepare"))
                return set_words(s->value, &o->prepare, &o->n_prepare);
        if (!strcmp(s->key, "vm-memory"))
                return parse_level(&vm_memory_key, s->value, &o->vm_memory);
        if (!strcmp(s->key, "vm-cpus"))
                return parse_level(&vm_cpus_key, s->value, &o->vm_cpus);
        if (!strcmp(s->key, "helper-timeout"))
                return parse_level(&helper_timeout_key, s->value, &o->helper_timeout);
        if (!strcmp(s->key, "disk-size"))
                return pf_cache_parse_size(s->value, &o->disk_size);
        if (!strcmp(s->key, "squashfs-level"))
                return parse_level(&squashfs_level_key, s->value, &o->squashfs_level);
        static const struct {
                const char *key;
                size_t field;
        } files[] = {
                { "deb-control", offsetof(pf_options, deb_control) },
                { "deb-postinst", offsetof(pf_options, deb_postinst) },
                { "deb-triggers", offsetof(pf_options, deb_triggers) },
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (!strcmp(s->key, files[i].key)) {
                        char **field = (char **) ((uint8_t *) o + files[i].field);
                        free(*field);
                        *field = s->content ? strdup(s->content) : NULL;
                        return s->content && !*field ? -ENOMEM : 0;
                }
        static const struct {
                const char *key;
                size_t field;
        } strings[] = {
                { "entry-point", offsetof(pf_options, entry_point) },
                { "kernel", offsetof(pf_options, kernel) },
                { "initrd", offsetof(pf_options, initrd) },
                { "init", offsetof(pf_options, init) },
                { "kernel-arguments", offsetof(pf_options, kernel_arguments) },
                { "helper-kernel", offsetof(pf_options, helper_kernel) },
                { "squashfs-compressor", offsetof(pf_options, squashfs_compressor) },
                { "rpm-prein", offsetof(pf_options, rpm_prein) },
                { "rpm-postin", offsetof(pf_options, rpm_postin) },
                { "rpm-preun", offsetof(pf_options, rpm_preun) },
                { "rpm-postun", offsetof(pf_options, rpm_postun) },
        };
        for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                if (!strcmp(s->key, strings[i].key)) {
                        char **field = (char **) ((uint8_t *) o + strings[i].field);
                        free(*field);
                        *field = *s->value ? strdup(s->value) : NULL;
                        return *s->value && !*field ? -ENOMEM : 0;
                }
        /* symlinks: the value replaces the whole list. */
        for (size_t i = 0; i < o->n_symlinks; i++) {
                free(o->symlinks[i].source);
                free(o->symlinks[i].target);
        }
        o->n_symlinks = 0;
        _cleanup_free_ char *copy = strdup(s->value);
        char *save = NULL;
        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                char *eq = strchr(tok, '=');
                pf_symlink_spec *nv = reallocarray(o->symlinks, o->n_symlinks + 1, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                o->symlinks = nv;
                *eq = 0;
                nv[o->n_symlinks].source = strdup(tok);
                nv[o->n_symlinks].target = strdup(eq + 1);
                o->n_symlinks++;
                if (!nv[o->n_symlinks - 1].source || !nv[o->n_symlinks - 1].target)
                        return -ENOMEM;
        }
        return 0;
}

static int symlink_cmp(const void *a, const void *b) {
        return strcmp(((const pf_symlink_spec *) a)->source, ((const pf_symlink_spec *) b)->source);
}

static void options_compute_id(pf_options *o) {
        gcry_md_hd_t md;

        gcry_check_version(NULL);
        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                abort();
        /* Canonical form: every option, in a fixed order, NUL-separated. */
        gcry_md_write(md, "packfs-options-1", 17);
        for (size_t i = 0; i < o->n_symlinks; i++) {
                gcry_md_write(md, o->symlinks[i].source, strlen(o->symlinks[i].source) + 1);
                gcry_md_write(md, o->symlinks[i].target, strlen(o->symlinks[i].target) + 1);
        }
        gcry_md_write(md, "\n", 1);
        if (o->entry_point)
                gcry_md_write(md, o->entry_point, strlen(o->entry_point) + 1);
        gcry_md_write(md, o->localstatedir ? "L1" : "L0", 2);
        /* Only when set otherwise: packs cached before the option keep their identity. */
        if (o->max_layers != PF_DEFAULT_MAX_LAYERS) {
                char layers[32];
                int n = snprintf(layers, sizeof(layers), "max-layers=%d", o->max_layers);
                gcry_md_write(md, layers, (size_t) n + 1);
        }
        /* Disk images' options, only when one is set (as max-layers). vm-memory,
         * vm-cpus, helper-kernel and helper-timeout change no pack's bytes. */
        if (o->disk_size || o->kernel || o->initrd || o->init || o->kernel_arguments) {
                char size[48];
                int n = snprintf(size, sizeof(size), "disk-size=%llu", (unsigned long long) o->disk_size);
                gcry_md_write(md, size, (size_t) n + 1);
                const char *const strings[] = { o->kernel, o->initrd, o->init, o->kernel_arguments };
                for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                        gcry_md_write(md, strings[i] ? strings[i] : "", strings[i] ? strlen(strings[i]) + 1 : 1);
        }
        /* pack.deb's files, only when one is set (as max-layers). */
        if (o->deb_control || o->deb_postinst || o->deb_triggers) {
                const char *const files[] = { o->deb_control, o->deb_postinst, o->deb_triggers };
                gcry_md_write(md, "deb-files", 10);
                for (size_t i = 0; i < ELEMENTSOF(files); i++)
                        gcry_md_write(md, files[i] ? files[i] : "", files[i] ? strlen(files[i]) + 1 : 1);
        }
        /* pack.squashfs's, only when one is set (as max-layers). */
        if (o->squashfs_compressor || o->squashfs_level >= 0) {
                char squashfs[64];
                int n = snprintf(squashfs, sizeof(squashfs), "squashfs=%s:%d",
                                 o->squashfs_compressor ? o->squashfs_compressor : "", o->squashfs_level);
                gcry_md_write(md, squashfs, (size_t) n + 1);
        }
        /* pack.rpm's, only when one is set (as max-layers). */
        if (o->rpm_prein || o->rpm_postin || o->rpm_preun || o->rpm_postun || o->relocatable) {
                const char *const scripts[] = { o->rpm_prein, o->rpm_postin, o->rpm_preun, o->rpm_postun };
                gcry_md_write(md, o->relocatable ? "rpm R1" : "rpm R0", 7);
                for (size_t i = 0; i < ELEMENTSOF(scripts); i++)
                        gcry_md_write(md, scripts[i] ? scripts[i] : "", scripts[i] ? strlen(scripts[i]) + 1 : 1);
        }
        for (size_t i = 0; i < ELEMENTSOF(level_keys); i++) {
                char level[32];
                int n = snprintf(level, sizeof(level), "%s=%d", level_keys[i].key, pf_options_level(o, level_keys[i].codec));
                gcry_md_write(md, level, (size_t) n + 1);
        }
        memcpy(o->id, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
}

static int apply_section(pf_options *o, const section *s) {
        for (size_t j = 0; j < s->n_settings; j++) {
                int r = apply_setting(o, &s->settings[j]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int pf_config_options_for(const pf_config *c, const char *profile_name, pf_options *ret) {
        pf_options o = { .gzip_level = -1, .xz_level = -1, .zstd_level = -1, .max_layers = PF_DEFAULT_MAX_LAYERS,
                         .vm_memory = PF_DEFAULT_VM_MEMORY, .vm_cpus = 1,
                         .helper_timeout = PF_DEFAULT_HELPER_TIMEOUT, .squashfs_level = -1 };
        int r = 0;

        for (int pass = 0; pass < 3 && r >= 0; pass++)
                for (size_t i = 0; i < c->n_sections && r >= 0; i++) {
                        const char *pat = c->sections[i].pattern;
                        bool is_default = !strcmp(pat, "*");
                        bool is_glob = !is_default && strpbrk(pat, "*?[");
                        bool match = (pass == 0 && is_default) ||
                                     (pass == 1 && is_glob && fnmatch(pat, profile_name, 0) == 0) ||
                                     (pass == 2 && !is_default && !is_glob && !strcmp(pat, profile_name));
                        if (match)
                                r = apply_section(&o, &c->sections[i]);
                }
        if (r < 0) {
                pf_options_done(&o);
                return r;
        }
        if (o.n_symlinks > 1)
                qsort(o.symlinks, o.n_symlinks, sizeof(*o.symlinks), symlink_cmp);
        options_compute_id(&o);
        *ret = o;
        return 0;
}

int pf_config_foreach_prepare(const pf_config *c, int (*fn)(void *userdata, const char *name), void *userdata) {
        for (size_t i = 0; i < c->n_sections; i++)
                for (size_t j = 0; j < c->sections[i].n_settings; j++) {
                        const setting *st = &c->sections[i].settings[j];
                        char **names = NULL;
                        size_t n = 0;
                        int r;

                        if (strcmp(st->key, "prepare") != 0)
                                continue;
                        r = set_words(st->value, &names, &n);
                        for (size_t k = 0; k < n; k++) {
                                if (r >= 0)
                                        r = fn(userdata, names[k]);
                                free(names[k]);
                        }
                        free(names);
                        if (r < 0)
                                return r;
                }
        return 0;
}
