/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The package a profile stands for (package.h): what pack.deb's control file
 * and pack.rpm's header name and version. One place, so that both formats
 * name the same profile the same way.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/package.h"
#include "packfs/searchpath.h"

/* A manifest larger than this is not read (Guix's are tens of KiB). */
#define MANIFEST_MAX (16u << 20)

int pf_package_split_name(const char *name, char **ret_name, char **ret_version) {
        const char *dash = NULL;

        for (const char *p = name; *p; p++)
                if (*p == '-' && !isalpha((unsigned char) p[1])) {
                        dash = p;
                        break;
                }
        *ret_name = dash ? strndup(name, (size_t) (dash - name)) : strdup(name);
        *ret_version = dash ? strdup(dash + 1) : NULL;
        if (!*ret_name || (dash && !*ret_version)) {
                free(*ret_name);
                free(*ret_version);
                *ret_name = *ret_version = NULL;
                return -ENOMEM;
        }
        return 0;
}

char *pf_profile_base_name(const char *view_name) {
        char *name = strdup(view_name);
        size_t len, k;

        if (!name)
                return NULL;
        /* "<profile>-<N>-link", as Guix and Nix name a profile's generations. */
        len = strlen(name);
        if (len > 5 && !strcmp(name + len - 5, "-link")) {
                k = len - 5;
                while (k > 0 && isdigit((unsigned char) name[k - 1]))
                        k--;
                if (k < len - 5 && k > 1 && name[k - 1] == '-')
                        name[k - 1] = 0;
        }
        return name;
}

/* --- Guix manifests: just enough of an S-expression reader */

enum { SX_END, SX_OPEN, SX_CLOSE, SX_STRING, SX_ATOM };

typedef struct sx {
        const char *p;
        char *value;    /* SX_STRING, SX_ATOM: malloc'd */
} sx;

static int sx_next(sx *s) {
        free(s->value);
        s->value = NULL;
        for (;;) {
                while (isspace((unsigned char) *s->p))
                        s->p++;
                if (*s->p != ';')
                        break;
                while (*s->p && *s->p != '\n')
                        s->p++;
        }
        if (!*s->p)
                return SX_END;
        if (*s->p == '(' || *s->p == '[') {
                s->p++;
                return SX_OPEN;
        }
        if (*s->p == ')' || *s->p == ']') {
                s->p++;
                return SX_CLOSE;
        }
        if (*s->p == '"') {
                const char *start = ++s->p;
                char *o;
                while (*s->p && *s->p != '"')
                        s->p += *s->p == '\\' && s->p[1] ? 2 : 1;
                if (!*s->p)
                        return -EBADMSG;
                s->value = o = malloc((size_t) (s->p - start) + 1);
                if (!o)
                        return -ENOMEM;
                for (const char *q = start; q < s->p; q++) {
                        if (*q == '\\')
                                q++;
                        *o++ = *q;
                }
                *o = 0;
                s->p++;
                return SX_STRING;
        }
        const char *start = s->p;
        while (*s->p && !isspace((unsigned char) *s->p) && !strchr("()[]\";", *s->p))
                s->p++;
        s->value = strndup(start, (size_t) (s->p - start));
        return s->value ? SX_ATOM : -ENOMEM;
}

/* Skips to the end of the list whose opening was just read. */
static int sx_skip_list(sx *s) {
        for (int depth = 1; depth > 0;) {
                int k = sx_next(s);
                if (k < 0)
                        return k;
                if (k == SX_END)
                        return -EBADMSG;
                depth += k == SX_OPEN ? 1 : k == SX_CLOSE ? -1 : 0;
        }
        return 0;
}

static int strv_push(char ***v, size_t n, char *s) {
        char **nv = reallocarray(*v, n + 2, sizeof(char *));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[n] = s;
        nv[n + 1] = NULL;
        *v = nv;
        return 0;
}

int pf_guix_manifest_packages(const char *text, char ***ret_names, char ***ret_versions, size_t *ret_n) {
        sx s = { .p = text };
        char **names = NULL, **versions = NULL;
        size_t n = 0;
        int k, r = -EBADMSG;

        /* (manifest (version N) (packages (ENTRY ...)) ...) */
        if (sx_next(&s) != SX_OPEN || sx_next(&s) != SX_ATOM || strcmp(s.value, "manifest") != 0)
                goto out;
        for (;;) {
                k = sx_next(&s);
                if (k != SX_OPEN)
                        goto out; /* no packages */
                k = sx_next(&s);
                if (k == SX_ATOM && !strcmp(s.value, "packages"))
                        break;
                r = k < 0 ? k : k == SX_CLOSE ? 0 : sx_skip_list(&s);
                if (r < 0)
                        goto out;
                r = -EBADMSG;
        }
        names = calloc(1, sizeof(char *));
        versions = calloc(1, sizeof(char *));
        if (!names || !versions) {
                r = -ENOMEM;
                goto out;
        }
        k = sx_next(&s);
        if (k != SX_OPEN)
                goto out;
        /* The entries: ("name" "version" "output" "/store/path" ...). */
        while ((k = sx_next(&s)) == SX_OPEN) {
                char *name, *version;
                if (sx_next(&s) != SX_STRING)
                        goto out;
                name = TAKE_PTR(s.value);
                if (sx_next(&s) != SX_STRING) {
                        free(name);
                        goto out;
                }
                version = TAKE_PTR(s.value);
                r = strv_push(&names, n, name);
                if (r >= 0)
                        r = strv_push(&versions, n, version);
                else
                        free(version);
                if (r < 0)
                        goto out;
                n++;
                r = sx_skip_list(&s);
                if (r < 0)
                        goto out;
                r = -EBADMSG;
        }
        if (k != SX_CLOSE)
                goto out;
        *ret_names = names;
        *ret_versions = versions;
        *ret_n = n;
        free(s.value);
        return 0;
out:
        free(s.value);
        pf_strv_free(names);
        pf_strv_free(versions);
        return r < 0 ? r : -EBADMSG;
}

/* The store name of PATH: what follows "<hash>-" in its base name. */
static const char *store_name(const char *path) {
        const char *base = strrchr(path, '/'), *dash;

        base = base ? base + 1 : path;
        dash = strchr(base, '-');
        return dash ? dash + 1 : base;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && !strcmp(s + n - m, suffix);
}

/* 1 and the one package of a Guix profile's manifest; 0 if there is no
 * readable manifest (*RET_SEVERAL false) or it holds another number of
 * packages (*RET_SEVERAL true). */
static int from_guix_manifest(const char *store_dir, const char *root, char **ret_name, char **ret_version,
                              bool *ret_several) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char **names = NULL, **versions = NULL;
        size_t n = 0, len;
        int r = 0;

        *ret_several = false;
        if (pf_profile_file(store_dir, root, "manifest", S_IFREG, &path) < 0)
                return 0;
        f = fopen(path, "re");
        if (!f)
                return 0;
        text = malloc(MANIFEST_MAX + 1);
        if (!text)
                return -ENOMEM;
        len = fread(text, 1, MANIFEST_MAX, f);
        text[len] = 0;
        if (ferror(f) || pf_guix_manifest_packages(text, &names, &versions, &n) < 0) {
                log_debug("%s is not a Guix manifest this reads; package named otherwise", path);
                return 0;
        }
        if (n == 1) {
                *ret_name = TAKE_PTR(names[0]);
                *ret_version = TAKE_PTR(versions[0]);
                r = 1;
        }
        *ret_several = n != 1;
        pf_strv_free(names);
        pf_strv_free(versions);
        return r;
}

int pf_package_of_profile(pf_store *store, const char *store_dir, const char *root, const char *view_name,
                          char **ret_name, char **ret_version) {
        const char *base = strrchr(view_name, '/'), *root_base = strrchr(root, '/');
        char *name = NULL, *version = NULL;
        bool several = false;
        int r = 0;

        base = base ? base + 1 : view_name;
        root_base = root_base ? root_base + 1 : root;
        r = from_guix_manifest(store_dir, root, &name, &version, &several);
        if (r == 0 && !several && !strcmp(base, root_base))
                /* A view of one store item (.store/<hash>-<name>): that package. */
                r = pf_package_split_name(store_name(root), &name, &version);
        if (r < 0)
                return r;
        if (!name && !several && store) {
                const char *single = NULL;
                char **refs = NULL;
                size_t n = 0;

                r = pf_store_references(store, root, &refs);
                if (r < 0)
                        return r;
                for (char **ref = refs; *ref; ref++)
                        if (strcmp(*ref, root) != 0 && !ends_with(*ref, "env-manifest.nix")) {
                                n++;
                                single = *ref;
                        }
                if (n == 0)
                        single = root;
                r = n <= 1 ? pf_package_split_name(store_name(single), &name, &version) : 0;
                pf_strv_free(refs);
                if (r < 0)
                        return r;
        }
        if (!name) {
                name = pf_profile_base_name(view_name);
                if (!name)
                        return -ENOMEM;
        }
        *ret_name = name;
        *ret_version = version;
        return 0;
}
