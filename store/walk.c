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
#include "packfs/walk.h"

struct walk_state {
        char path[PATH_MAX];
        size_t prefix_len;      /* length of the item path inside path */
        pf_walk_fn fn;
        void *userdata;
};

typedef struct dir_name {
        char *name;
        unsigned char type;     /* d_type: DT_UNKNOWN when the filesystem does not say */
} dir_name;

static int name_cmp(const void *a, const void *b) {
        return strcmp(((const dir_name *) a)->name, ((const dir_name *) b)->name);
}

static void names_free(dir_name *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i].name);
        free(v);
}

static int read_sorted_names(int dir_fd, dir_name **ret, size_t *ret_n) {
        dir_name *v = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;
        int fd = dup(dir_fd);
        DIR *d;

        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return negative_errno();
        }
        while ((errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (n == allocated) {
                        size_t na = allocated ? allocated * 2 : 16;
                        dir_name *nv = reallocarray(v, na, sizeof(*v));
                        if (!nv)
                                goto oom;
                        v = nv;
                        allocated = na;
                }
                v[n].name = strdup(de->d_name);
                v[n].type = de->d_type;
                if (!v[n].name)
                        goto oom;
                n++;
        }
        if (errno != 0) {
                int r = negative_errno();
                closedir(d);
                names_free(v, n);
                return r;
        }
        closedir(d);
        if (n > 1)
                qsort(v, n, sizeof(*v), name_cmp);
        *ret = v;
        *ret_n = n;
        return 0;
oom:
        closedir(d);
        names_free(v, n);
        return -ENOMEM;
}

static int walk_entry(struct walk_state *w, int parent_fd, const char *name, unsigned char type, size_t path_len,
                      unsigned depth) {
        char target[PATH_MAX];
        struct stat st = {};
        pf_walk_entry e = {};
        int r;

        /* A symlink's lstat() says nothing readlink() does not (Linux gives them
         * all mode 0777), and profiles are mostly symlinks: skip it when the
         * directory entry already says what this is. */
        if (type == DT_LNK)
                st.st_mode = S_IFLNK | 0777;
        else if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return log_error_errno(negative_errno(), "%s", w->path);
        if (strchr(name, '\n')) {
                log_error("%s: refusing a file name with a newline", w->path);
                return -EBADMSG;
        }
        e.path = w->path;
        e.rel_path = w->path[w->prefix_len] ? w->path + w->prefix_len + 1 : "";
        e.mode = st.st_mode;
        e.uid = st.st_uid;
        e.gid = st.st_gid;
        e.mtime = st.st_mtime;
        e.depth = depth;
        if (S_ISREG(st.st_mode))
                e.size = (uint64_t) st.st_size;
        else if (S_ISLNK(st.st_mode)) {
                ssize_t len = readlinkat(parent_fd, name, target, sizeof(target) - 1);
                if (len < 0) {
                        /* EINVAL: d_type said symlink but it no longer is one. */
                        return log_error_errno(negative_errno(), "%s", w->path);
                }
                target[len] = 0;
                e.link_target = target;
        } else if (!S_ISDIR(st.st_mode)) {
                log_error("%s: refusing a file that is not a regular file, directory or symlink", w->path);
                return -EBADMSG;
        }

        r = w->fn(w->userdata, &e);
        if (r < 0 || !S_ISDIR(st.st_mode))
                return r;

        _cleanup_close_ int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "%s", w->path);
        dir_name *names = NULL;
        size_t n = 0;
        r = read_sorted_names(fd, &names, &n);
        if (r < 0)
                return log_error_errno(r, "%s", w->path);
        for (size_t i = 0; i < n && r >= 0; i++) {
                size_t len = strlen(names[i].name);
                if (path_len + 1 + len >= sizeof(w->path)) {
                        log_error("%s/%s: path too long", w->path, names[i].name);
                        r = -ENAMETOOLONG;
                        break;
                }
                w->path[path_len] = '/';
                memcpy(w->path + path_len + 1, names[i].name, len + 1);
                r = walk_entry(w, fd, names[i].name, names[i].type, path_len + 1 + len, depth + 1);
                w->path[path_len] = 0;
        }
        names_free(names, n);
        return r;
}

int pf_walk(const char *item_path, pf_walk_fn fn, void *userdata) {
        struct walk_state w = { .fn = fn, .userdata = userdata };
        size_t len = strlen(item_path);
        const char *slash = strrchr(item_path, '/');
        _cleanup_free_ char *parent = NULL;
        _cleanup_close_ int parent_fd = -1;

        if (len >= sizeof(w.path) || !slash || !slash[1])
                return -EINVAL;
        memcpy(w.path, item_path, len + 1);
        w.prefix_len = len;
        parent = strndup(item_path, slash == item_path ? 1 : (size_t) (slash - item_path));
        if (!parent)
                return -ENOMEM;
        parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent_fd < 0)
                return log_error_errno(negative_errno(), "%s", parent);
        return walk_entry(&w, parent_fd, slash + 1, DT_UNKNOWN, len, 0);
}
