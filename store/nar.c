/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "packfs/nar.h"

#define NAR_BUF_SIZE (64 * 1024)
/* File contents are read straight into the buffer once this much of it is free. */
#define NAR_MIN_READ (16 * 1024)

/* ---- output: a buffer in front of the sink ---- */

typedef struct nar_writer {
        pf_nar_sink_fn sink;
        void *userdata;
        size_t len;
        uint8_t buf[NAR_BUF_SIZE];
} nar_writer;

static int w_flush(nar_writer *w) {
        int r;

        if (w->len == 0)
                return 0;
        r = w->sink(w->userdata, w->buf, w->len);
        w->len = 0;
        return r < 0 ? r : 0;
}

static int w_bytes(nar_writer *w, const void *data, size_t len) {
        const uint8_t *p = data;
        int r;

        while (len > 0) {
                size_t n = MIN(len, sizeof(w->buf) - w->len);

                memcpy(w->buf + w->len, p, n);
                w->len += n;
                p += n;
                len -= n;
                if (w->len == sizeof(w->buf)) {
                        r = w_flush(w);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int w_u64(nar_writer *w, uint64_t v) {
        uint8_t le[8];

        for (unsigned i = 0; i < 8; i++)
                le[i] = (uint8_t) (v >> (8 * i));
        return w_bytes(w, le, sizeof(le));
}

static int w_padding(nar_writer *w, uint64_t len) {
        static const uint8_t zeros[8];

        return w_bytes(w, zeros, (8 - len % 8) % 8);
}

static int w_str_len(nar_writer *w, const char *s, size_t len) {
        int r;

        r = w_u64(w, len);
        if (r < 0)
                return r;
        r = w_bytes(w, s, len);
        if (r < 0)
                return r;
        return w_padding(w, len);
}

static int w_str(nar_writer *w, const char *s) {
        return w_str_len(w, s, strlen(s));
}

/* Writes each of the NULL-terminated strings. */
static int w_strs(nar_writer *w, ...) {
        va_list ap;
        int r = 0;

        va_start(ap, w);
        for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *)) {
                r = w_str(w, s);
                if (r < 0)
                        break;
        }
        va_end(ap);
        return r;
}

/* ---- nodes ---- */

static int dump_at(nar_writer *w, int dirfd, const char *name);

/* Copies exactly SIZE bytes of FD into the stream, reading into the buffer itself. */
static int dump_contents(nar_writer *w, int fd, uint64_t size) {
        uint64_t done = 0;
        int r;

        r = w_u64(w, size);
        if (r < 0)
                return r;
        while (done < size) {
                size_t room = sizeof(w->buf) - w->len;
                ssize_t n;

                if (room < NAR_MIN_READ) {
                        r = w_flush(w);
                        if (r < 0)
                                return r;
                        room = sizeof(w->buf);
                }
                n = read(fd, w->buf + w->len, (size_t) MIN((uint64_t) room, size - done));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                /* The file shrank after fstat(): its NAR would be a lie. */
                if (n == 0)
                        return -EIO;
                w->len += (size_t) n;
                done += (uint64_t) n;
        }
        return w_padding(w, size);
}

static int dump_regular(nar_writer *w, int dirfd, const char *name) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        /* O_NONBLOCK: should the file have been swapped for a FIFO, do not hang on it. */
        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EIO;

        r = w_strs(w, "type", "regular", NULL);
        if (r < 0)
                return r;
        if (st.st_mode & S_IXUSR) {
                r = w_strs(w, "executable", "", NULL);
                if (r < 0)
                        return r;
        }
        r = w_str(w, "contents");
        if (r < 0)
                return r;
        return dump_contents(w, fd, (uint64_t) st.st_size);
}

static int dump_symlink(nar_writer *w, int dirfd, const char *name, size_t size_hint) {
        size_t size = MAX(size_hint + 1, (size_t) 256);
        int r;

        /* The link may change between lstat and readlink: grow until it fits. */
        for (;;) {
                _cleanup_free_ char *target = malloc(size);
                ssize_t n;

                if (!target)
                        return -ENOMEM;
                n = readlinkat(dirfd, name, target, size);
                if (n < 0)
                        return negative_errno();
                if ((size_t) n < size) {
                        r = w_strs(w, "type", "symlink", "target", NULL);
                        if (r < 0)
                                return r;
                        return w_str_len(w, target, (size_t) n);
                }
                size *= 2;
        }
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void free_names(char **names, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

/* Reads the names of directory FD except "." and "..", sorted bytewise. */
static int read_sorted_names(int fd, char ***ret_names, size_t *ret_n) {
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        DIR *d;
        int dfd, r = 0;

        /* readdir consumes its own descriptor; FD stays for openat() of the entries. */
        dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return negative_errno();
        d = fdopendir(dfd);
        if (!d) {
                r = negative_errno();
                close(dfd);
                return r;
        }
        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = negative_errno();
                        break;
                }
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (n == cap) {
                        size_t new_cap = cap ? cap * 2 : 16;
                        char **p = realloc(names, new_cap * sizeof(*names));
                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        names = p;
                        cap = new_cap;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r < 0) {
                free_names(names, n);
                return r;
        }
        if (n > 0)
                qsort(names, n, sizeof(*names), cmp_names);
        *ret_names = names;
        *ret_n = n;
        return 0;
}

static int dump_entries(nar_writer *w, int fd) {
        char **names = NULL;
        size_t n = 0;
        int r;

        r = read_sorted_names(fd, &names, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = w_strs(w, "entry", "(", "name", names[i], "node", NULL);
                if (r < 0)
                        break;
                r = dump_at(w, fd, names[i]);
                if (r < 0)
                        break;
                r = w_str(w, ")");
                if (r < 0)
                        break;
        }
        free_names(names, n);
        return r;
}

static int dump_directory(nar_writer *w, int dirfd, const char *name) {
        _cleanup_close_ int fd = -1;
        int r;

        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        r = w_strs(w, "type", "directory", NULL);
        if (r < 0)
                return r;
        return dump_entries(w, fd);
}

/* Writes the node for NAME relative to DIRFD, NAME itself never followed. */
static int dump_at(nar_writer *w, int dirfd, const char *name) {
        struct stat st;
        int r;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        r = w_str(w, "(");
        if (r < 0)
                return r;
        if (S_ISREG(st.st_mode))
                r = dump_regular(w, dirfd, name);
        else if (S_ISDIR(st.st_mode))
                r = dump_directory(w, dirfd, name);
        else if (S_ISLNK(st.st_mode))
                r = dump_symlink(w, dirfd, name, (size_t) st.st_size);
        else
                r = -EINVAL;
        if (r < 0)
                return r;
        return w_str(w, ")");
}

int pf_nar_dump(const char *path, pf_nar_sink_fn sink, void *userdata) {
        _cleanup_free_ nar_writer *w = NULL;
        int r;

        if (!path || !sink)
                return -EINVAL;
        w = malloc(sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->sink = sink;
        w->userdata = userdata;
        w->len = 0;

        r = w_str(w, "nix-archive-1");
        if (r < 0)
                return r;
        r = dump_at(w, AT_FDCWD, path);
        if (r < 0)
                return r;
        return w_flush(w);
}

/* ---- hashing ---- */

static pthread_once_t gcrypt_once = PTHREAD_ONCE_INIT;
static bool gcrypt_ok;

static void gcrypt_init(void) {
        /* Another part of the program may have initialised libgcrypt already; then
         * only the version check is ours to do. */
        if (!gcry_check_version(GCRYPT_VERSION))
                return;
        if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
                gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
                gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
        }
        gcrypt_ok = true;
}

struct pf_nar_hasher {
        gcry_md_hd_t md;
        uint64_t size;
        bool finished;
        uint8_t digest[32];
};

int pf_nar_hasher_new(pf_nar_hasher **ret) {
        pf_nar_hasher *h;
        gcry_error_t e;

        pthread_once(&gcrypt_once, gcrypt_init);
        if (!gcrypt_ok)
                return -EOPNOTSUPP;
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        e = gcry_md_open(&h->md, GCRY_MD_SHA256, 0);
        if (e) {
                free(h);
                return -gcry_err_code_to_errno(gcry_err_code(e)) ?: -EIO;
        }
        *ret = h;
        return 0;
}

void pf_nar_hasher_free(pf_nar_hasher *h) {
        if (!h)
                return;
        gcry_md_close(h->md);
        free(h);
}

int pf_nar_hasher_sink(void *userdata, const void *data, size_t len) {
        pf_nar_hasher *h = userdata;

        if (h->finished)
                return -EINVAL;
        gcry_md_write(h->md, data, len);
        h->size += len;
        return 0;
}

void pf_nar_hasher_finish(pf_nar_hasher *h, uint8_t ret_sha256[32], uint64_t *ret_size) {
        if (!h->finished) {
                memcpy(h->digest, gcry_md_read(h->md, GCRY_MD_SHA256), sizeof(h->digest));
                h->finished = true;
        }
        memcpy(ret_sha256, h->digest, sizeof(h->digest));
        if (ret_size)
                *ret_size = h->size;
}

int pf_nar_hash(const char *path, uint8_t ret_sha256[32], uint64_t *ret_nar_size) {
        _cleanup_nar_hasher_ pf_nar_hasher *h = NULL;
        int r;

        r = pf_nar_hasher_new(&h);
        if (r < 0)
                return r;
        r = pf_nar_dump(path, pf_nar_hasher_sink, h);
        if (r < 0)
                return r;
        pf_nar_hasher_finish(h, ret_sha256, ret_nar_size);
        return 0;
}
