/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <string.h>

#include "packfs/storepath.h"

bool pf_is_base32_char(char c) {
        /* Nix's alphabet omits e, o, u and t. */
        return (c >= '0' && c <= '9') ||
               (c >= 'a' && c <= 'z' && c != 'e' && c != 'o' && c != 'u' && c != 't');
}

bool pf_store_name_valid(const char *name) {
        size_t n = strlen(name);

        if (n == 0 || n > PF_NAME_MAX_LEN || name[0] == '.')
                return false;
        for (const char *p = name; *p; p++) {
                char c = *p;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      strchr("+-._?=", c)))
                        return false;
        }
        return true;
}

bool pf_store_basename_valid(const char *basename) {
        for (size_t i = 0; i < PF_HASH_PART_LEN; i++)
                if (!pf_is_base32_char(basename[i]))
                        return false;
        if (basename[PF_HASH_PART_LEN] != '-')
                return false;
        return pf_store_name_valid(basename + PF_HASH_PART_LEN + 1);
}

const char *pf_store_path_basename(const char *store_dir, const char *path) {
        size_t n = strlen(store_dir);

        if (strncmp(path, store_dir, n) != 0 || path[n] != '/')
                return NULL;
        path += n + 1;
        if (strchr(path, '/') || !pf_store_basename_valid(path))
                return NULL;
        return path;
}

size_t pf_store_path_item_len(const char *store_dir, const char *path) {
        size_t n = strlen(store_dir);
        const char *item, *slash, *p;
        char buf[PF_HASH_PART_LEN + 1 + PF_NAME_MAX_LEN + 1];

        if (strncmp(path, store_dir, n) != 0 || path[n] != '/')
                return 0;
        item = path + n + 1;
        slash = strchr(item, '/');
        size_t len = slash ? (size_t) (slash - item) : strlen(item);
        if (len >= sizeof(buf))
                return 0;
        memcpy(buf, item, len);
        buf[len] = 0;
        if (!pf_store_basename_valid(buf))
                return 0;
        /* Refuse "." and ".." below the item. */
        for (p = slash; p && *p; p = strchr(p + 1, '/')) {
                const char *c = p + 1;
                if ((c[0] == '.' && (c[1] == '/' || c[1] == 0)) ||
                    (c[0] == '.' && c[1] == '.' && (c[2] == '/' || c[2] == 0)))
                        return 0;
        }
        return (size_t) (item - path) + len;
}
