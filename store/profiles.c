/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/profiles.h"
#include "packfs/storepath.h"

int pf_relpath_is_clean(const char *p) {
        if (!*p || *p == '/')
                return 0;
        while (*p) {
                const char *slash = strchrnul(p, '/');
                size_t len = (size_t) (slash - p);
                if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
                        return 0;
                if (!*slash)
                        break;
                p = slash + 1;
                if (!*p)
                        return 0;
        }
        return 1;
}

/* Joins the directory part of REL (relative to the root) with the relative link
 * TARGET, resolving "." and ".." lexically. Returns -EXDEV if ".." would climb
 * above the root. */
static int join_relative(const char *rel, const char *target, char **ret) {
        char buf[PATH_MAX];
        const char *slash = strrchr(rel, '/');
        size_t n = slash ? (size_t) (slash - rel) : 0;

        if (n >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, rel, n);
        buf[n] = 0;
        for (const char *p = target; *p;) {
                const char *end = strchrnul(p, '/');
                size_t len = (size_t) (end - p);

                if (len == 0 || (len == 1 && p[0] == '.')) {
                        /* nothing */
                } else if (len == 2 && p[0] == '.' && p[1] == '.') {
                        if (n == 0)
                                return -EXDEV;
                        char *up = memrchr(buf, '/', n);
                        n = up ? (size_t) (up - buf) : 0;
                        buf[n] = 0;
                } else {
                        if (n + 1 + len >= sizeof(buf))
                                return -ENAMETOOLONG;
                        if (n > 0)
                                buf[n++] = '/';
                        memcpy(buf + n, p, len);
                        n += len;
                        buf[n] = 0;
                }
                p = *end ? end + 1 : end;
        }
        if (n == 0)
                return -EXDEV;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int pf_profile_resolve(const char *profiles_root, const char *store_dir, const char *rel_path,
                       char **ret_item) {
        _cleanup_free_ char *cur = NULL;
        _cleanup_close_ int root_fd = -1;
        size_t root_len = strlen(profiles_root);
        int r;

        if (!pf_relpath_is_clean(rel_path))
                return -EINVAL;
        cur = strdup(rel_path);
        if (!cur)
                return -ENOMEM;
        root_fd = open(profiles_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return negative_errno();

        for (unsigned hop = 0; hop < PF_PROFILE_MAX_HOPS; hop++) {
                char target[PATH_MAX];
                struct stat st;
                ssize_t len;

                /* Intermediate components must be real directories, not links. */
                for (char *p = strchr(cur, '/'); p; p = strchr(p + 1, '/')) {
                        *p = 0;
                        r = fstatat(root_fd, cur, &st, AT_SYMLINK_NOFOLLOW);
                        *p = '/';
                        if (r < 0)
                                return negative_errno();
                        if (!S_ISDIR(st.st_mode))
                                return -EXDEV;
                }
                if (fstatat(root_fd, cur, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return negative_errno();
                if (S_ISDIR(st.st_mode))
                        return -ENOTDIR;
                if (!S_ISLNK(st.st_mode))
                        return -EXDEV;
                len = readlinkat(root_fd, cur, target, sizeof(target) - 1);
                if (len < 0)
                        return negative_errno();
                target[len] = 0;

                if (target[0] == '/') {
                        /* Absolute: either a store item, or back inside the profiles root. */
                        if (pf_store_path_basename(store_dir, target)) {
                                *ret_item = strdup(target);
                                return *ret_item ? 0 : -ENOMEM;
                        }
                        if (strncmp(target, profiles_root, root_len) == 0 && target[root_len] == '/' &&
                            pf_relpath_is_clean(target + root_len + 1)) {
                                char *next = strdup(target + root_len + 1);
                                if (!next)
                                        return -ENOMEM;
                                free(cur);
                                cur = next;
                                continue;
                        }
                        log_warning("profile %s/%s: refusing link to %s, outside the store", profiles_root,
                                    rel_path, target);
                        return -EXDEV;
                }
                char *next = NULL;
                r = join_relative(cur, target, &next);
                if (r < 0) {
                        if (r == -EXDEV)
                                log_warning("profile %s/%s: refusing link to %s, outside the profiles root",
                                            profiles_root, rel_path, target);
                        return r;
                }
                free(cur);
                cur = next;
        }
        log_warning("profile %s/%s: too many levels of links", profiles_root, rel_path);
        return -ELOOP;
}

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const pf_profile_entry *) a)->name, ((const pf_profile_entry *) b)->name);
}

void pf_profile_entries_free(pf_profile_entry *e, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(e[i].name);
        free(e);
}

int pf_profile_list(const char *profiles_root, const char *rel_dir, pf_profile_entry **ret,
                    size_t *ret_n) {
        _cleanup_close_ int root_fd = -1;
        pf_profile_entry *v = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;
        DIR *d;
        int fd;

        if (*rel_dir && !pf_relpath_is_clean(rel_dir))
                return -EINVAL;
        root_fd = open(profiles_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return negative_errno();
        fd = *rel_dir ? openat(root_fd, rel_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                      : dup(root_fd);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return negative_errno();
        }
        while ((errno = 0, de = readdir(d))) {
                struct stat st;
                enum pf_profile_entry_kind kind;

                if (de->d_name[0] == '.')
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISLNK(st.st_mode))
                        kind = PF_PROFILE_ENTRY_LINK;
                else if (S_ISDIR(st.st_mode))
                        kind = PF_PROFILE_ENTRY_DIRECTORY;
                else
                        continue;
                if (n == allocated) {
                        size_t na = allocated ? allocated * 2 : 16;
                        pf_profile_entry *nv = reallocarray(v, na, sizeof(*v));
                        if (!nv)
                                goto oom;
                        v = nv;
                        allocated = na;
                }
                v[n].name = strdup(de->d_name);
                if (!v[n].name)
                        goto oom;
                v[n++].kind = kind;
        }
        closedir(d);
        if (n > 0)
                qsort(v, n, sizeof(*v), entry_cmp);
        *ret = v;
        *ret_n = n;
        return 0;
oom:
        closedir(d);
        pf_profile_entries_free(v, n);
        return -ENOMEM;
}
