/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "packfs/searchpath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/store.h"

/* Guix's etc/profile is a few KiB; anything far larger is not one. */
#define ETC_PROFILE_MAX (1 << 20)

typedef struct strv {
        char **v;
        size_t n, cap;
} strv;

static int strv_push(strv *s, char *str) {
        if (!str)
                return -ENOMEM;
        if (s->n + 2 > s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 8;
                char **v = realloc(s->v, cap * sizeof(*v));
                if (!v) {
                        free(str);
                        return -ENOMEM;
                }
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n++] = str;
        s->v[s->n] = NULL;
        return 0;
}

static bool strv_has_var(const strv *s, const char *name, size_t len) {
        for (size_t i = 0; i < s->n; i++)
                if (strncmp(s->v[i], name, len) == 0 && s->v[i][len] == '=')
                        return true;
        return false;
}

/* The canonical path of PROFILE_ROOT/REL, or NULL when it does not exist or
 * resolves outside the store (whose canonical path is STORE_REAL). */
static char *resolve_in_store(const char *store_real, const char *profile_root, const char *rel) {
        char *path, *real;
        size_t n = strlen(store_real);

        if (asprintf(&path, "%s/%s", profile_root, rel) < 0)
                return NULL;
        real = realpath(path, NULL);
        if (real && !(strncmp(real, store_real, n) == 0 && real[n] == '/')) {
                log_debug("search paths: %s leads out of the store (%s), left out", path, real);
                free(real);
                real = NULL;
        }
        free(path);
        return real;
}

static bool is_in_store(const char *store_real, const char *profile_root, const char *rel, mode_t type) {
        char *real = resolve_in_store(store_real, profile_root, rel);
        struct stat st;
        bool ok = real && stat(real, &st) == 0 && (st.st_mode & S_IFMT) == type;
        free(real);
        return ok;
}

/* Reads a regular file of at most ETC_PROFILE_MAX bytes; NULL if it is not one. */
static char *read_small_file(const char *path) {
        struct stat st;
        char *text = NULL;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

        if (fd < 0)
                return NULL;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= ETC_PROFILE_MAX &&
            (text = malloc(st.st_size + 1))) {
                ssize_t got = pread(fd, text, st.st_size, 0);
                if (got != st.st_size) {
                        free(text);
                        text = NULL;
                } else
                        text[got] = '\0';
        }
        close(fd);
        return text;
}

static bool is_var_name(const char *s, size_t len) {
        if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
                      (s[i] >= '0' && s[i] <= '9')))
                        return false;
        return true;
}

/*
 * One line of Guix's etc/profile into "VAR=value", or NULL when the line is not
 * an export of Guix's form. The value is what Guix evaluated for the profile:
 * "${GUIX_PROFILE:-X}" becomes X and the trailing "${VAR:+SEP}$VAR" (the inherited
 * value) is dropped, since an image starts with an empty environment.
 */
static char *parse_guix_export(const char *line, size_t len) {
        const char *p = line, *end = line + len, *eq, *name;
        size_t name_len;
        char *value, *out;
        size_t n = 0;

        if (len < 7 || strncmp(p, "export ", 7) != 0)
                return NULL;
        p += 7;
        eq = memchr(p, '=', end - p);
        if (!eq || !is_var_name(p, eq - p))
                return NULL;
        name = p;
        name_len = eq - p;
        p = eq + 1;
        if (p < end && *p == '"') {
                if (end - p < 2 || end[-1] != '"')
                        return NULL;
                p++;
                end--;
        }

        value = malloc(end - p + 1);
        if (!value)
                return NULL;
        while (p < end) {
                static const char profile_ref[] = "${GUIX_PROFILE:-";
                const size_t ref_len = sizeof(profile_ref) - 1;

                if (end - p >= (ptrdiff_t) ref_len && memcmp(p, profile_ref, ref_len) == 0) {
                        const char *close = memchr(p + ref_len, '}', end - p - ref_len);
                        if (!close)
                                goto not_guix;
                        memcpy(value + n, p + ref_len, close - p - ref_len);
                        n += close - p - ref_len;
                        p = close + 1;
                        continue;
                }
                if (*p == '$') {
                        /* Only the inherited value may follow, and only at the end:
                         * "${VAR:+SEP}$VAR" or "${VAR:+SEP}${VAR}". */
                        char *tail1, *tail2;
                        bool inherited = false;
                        if (end - p >= 6 && memcmp(p, "${", 2) == 0 &&
                            strncmp(p + 2, name, name_len) == 0 && memcmp(p + 2 + name_len, ":+", 2) == 0) {
                                const char *sep_end = memchr(p, '}', end - p);
                                if (sep_end && asprintf(&tail1, "$%.*s", (int) name_len, name) >= 0) {
                                        if (asprintf(&tail2, "${%.*s}", (int) name_len, name) >= 0) {
                                                size_t rest = end - sep_end - 1;
                                                inherited = (rest == strlen(tail1) &&
                                                             memcmp(sep_end + 1, tail1, rest) == 0) ||
                                                            (rest == strlen(tail2) &&
                                                             memcmp(sep_end + 1, tail2, rest) == 0);
                                                free(tail2);
                                        }
                                        free(tail1);
                                }
                        }
                        if (!inherited)
                                goto not_guix;
                        break;
                }
                if (*p == '"' || *p == '\\' || *p == '`' || *p == '\'' || (unsigned char) *p < 0x20)
                        goto not_guix;
                value[n++] = *p++;
        }
        value[n] = '\0';
        if (n == 0)
                goto not_guix;
        if (asprintf(&out, "%.*s=%s", (int) name_len, name, value) < 0)
                out = NULL;
        free(value);
        return out;

not_guix:
        free(value);
        return NULL;
}

/* Guix's search paths, from etc/profile; 0 with nothing added when there is none. */
static int guix_search_paths(const char *store_real, const char *profile_root, strv *out) {
        char *real = resolve_in_store(store_real, profile_root, "etc/profile");
        char *text = real ? read_small_file(real) : NULL;
        int r = 0;

        if (text && strstr(text, "GUIX_PROFILE")) {
                for (const char *line = text; *line;) {
                        const char *nl = strchrnul(line, '\n');
                        const char *start = line;
                        while (start < nl && (*start == ' ' || *start == '\t'))
                                start++;
                        if (nl > start && *start != '#') {
                                char *def = parse_guix_export(start, nl - start);
                                if (def) {
                                        size_t name_len = strchr(def, '=') - def;
                                        if (strv_has_var(out, def, name_len))
                                                free(def);
                                        else if ((r = strv_push(out, def)) < 0)
                                                break;
                                } else
                                        log_debug("search paths: %s: line not of Guix's form, left out: %.*s",
                                                  real, (int) (nl - start), start);
                        }
                        line = *nl ? nl + 1 : nl;
                }
        }
        free(text);
        free(real);
        return r;
}

/* What a profile without Guix's etc/profile gets: variable, subdirectories, and
 * the kind of file each must be. */
static const struct convention {
        const char *var;
        const char *subs[3];
        mode_t type;
} conventions[] = {
        { "PATH", { "bin", "sbin" }, S_IFDIR },
        { "XDG_DATA_DIRS", { "share" }, S_IFDIR },
        { "XDG_CONFIG_DIRS", { "etc/xdg" }, S_IFDIR },
        { "MANPATH", { "share/man" }, S_IFDIR },
        { "INFOPATH", { "share/info" }, S_IFDIR },
        { "TERMINFO_DIRS", { "share/terminfo" }, S_IFDIR },
        { "LOCALE_ARCHIVE", { "lib/locale/locale-archive" }, S_IFREG },
        { "SSL_CERT_FILE", { "etc/ssl/certs/ca-bundle.crt" }, S_IFREG },
        { "NIX_SSL_CERT_FILE", { "etc/ssl/certs/ca-bundle.crt" }, S_IFREG },
};

static int conventional_search_paths(const char *store_real, const char *profile_root, strv *out) {
        for (size_t i = 0; i < sizeof(conventions) / sizeof(conventions[0]); i++) {
                const struct convention *c = &conventions[i];
                char *def = NULL;
                size_t len = 0;
                FILE *f;
                int r;

                if (strv_has_var(out, c->var, strlen(c->var)))
                        continue;
                f = open_memstream(&def, &len);
                if (!f)
                        return -ENOMEM;
                fputs(c->var, f);
                fputc('=', f);
                bool any = false;
                for (size_t j = 0; j < 3 && c->subs[j]; j++)
                        if (is_in_store(store_real, profile_root, c->subs[j], c->type)) {
                                fprintf(f, "%s%s/%s", any ? ":" : "", profile_root, c->subs[j]);
                                any = true;
                        }
                if (fclose(f) != 0) {
                        free(def);
                        return -ENOMEM;
                }
                if (!any) {
                        free(def);
                        continue;
                }
                if ((r = strv_push(out, def)) < 0)
                        return r;
        }
        return 0;
}

int pf_profile_search_paths(const char *store_dir, const char *profile_root, char ***ret) {
        strv out = {};
        char *store_real = realpath(store_dir, NULL);
        int r;

        if (!store_real)
                return -errno;
        r = guix_search_paths(store_real, profile_root, &out);
        if (r >= 0 && out.n == 0)
                r = conventional_search_paths(store_real, profile_root, &out);
        free(store_real);

        /* PATH first, and always there: what `docker run IMAGE hello` needs. */
        if (r >= 0 && !strv_has_var(&out, "PATH", 4)) {
                char *path;
                r = strv_push(&out, asprintf(&path, "PATH=%s/bin", profile_root) < 0 ? NULL : path);
        }
        if (r < 0) {
                pf_strv_free(out.v);
                return r;
        }
        for (size_t i = 0; i < out.n; i++)
                if (strncmp(out.v[i], "PATH=", 5) == 0) {
                        char *path = out.v[i];
                        memmove(out.v + 1, out.v, i * sizeof(*out.v));
                        out.v[0] = path;
                        break;
                }
        *ret = out.v;
        return 0;
}

int pf_profile_file(const char *store_dir, const char *profile_root, const char *rel, mode_t type, char **ret) {
        _cleanup_free_ char *store_real = realpath(store_dir, NULL), *path = NULL;
        char *real;
        struct stat st;
        size_t n;

        if (!store_real)
                return -errno;
        if (asprintf(&path, "%s/%s", profile_root, rel) < 0)
                return -ENOMEM;
        real = realpath(path, NULL);
        if (!real)
                return errno == ENOMEM ? -ENOMEM : -ENOENT;
        n = strlen(store_real);
        if (strncmp(real, store_real, n) != 0 || real[n] != '/') {
                free(real);
                return -EXDEV;
        }
        if (stat(real, &st) < 0 || (st.st_mode & S_IFMT) != type) {
                free(real);
                return -ENOENT;
        }
        *ret = real;
        return 0;
}
