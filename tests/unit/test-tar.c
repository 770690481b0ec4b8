/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "packfs/cache.h"
#include "packfs/cancel.h"
#include "packfs/codec.h"
#include "packfs/compressed.h"
#include "packfs/config.h"
#include "packfs/format.h"
#include "packfs/log.h"
#include "packfs/plan.h"
#include "packfs/store.h"
#include "packfs/storewrite.h"
#include "packfs/walkcache.h"
#include "fixture-tree.h"
#include "tar-header.h"
#include "cache-index.h"
#include "run-suite.h"

static char tmp[PATH_MAX];

static void setup(void) {
        test_dir_make(tmp);
        pf_log_open(PF_LOG_STDERR, LOG_CRIT);
}

static void teardown(void) {
        temp_dir_remove(tmp);
}

/* ---- helpers ---- */

static bool tool_available(const char *name) {
        char cmd[256];

        snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
        if (system(cmd) == 0)
                return true;
        printf("%s not found: skipping its checks\n", name);
        return false;
}

/* Runs the shell command CMD; returns its stdout+stderr (malloc'd) and its exit status. */
static char *run(const char *cmd, int *ret_status) {
        FILE *f = popen(cmd, "r");
        char *out = NULL;
        size_t size = 0, n;
        char buf[4096];

        ck_assert_ptr_nonnull(f);
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
                out = realloc(out, size + n + 1);
                ck_assert_ptr_nonnull(out);
                memcpy(out + size, buf, n);
                size += n;
        }
        if (!out)
                out = calloc(1, 1);
        out[size] = 0;
        int status = pclose(f);
        *ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return out;
}

/* run() of a formatted command. */
__attribute__((format(printf, 2, 3))) static char *runf(int *ret_status, const char *fmt, ...) {
        char *cmd = NULL, *out;
        va_list ap;

        va_start(ap, fmt);
        ck_assert_int_ge(vasprintf(&cmd, fmt, ap), 0);
        va_end(ap);
        out = run(cmd, ret_status);
        free(cmd);
        return out;
}

static uint64_t parse_octal(const uint8_t *field, size_t width) {
        uint64_t v = 0;

        for (size_t i = 0; i < width && field[i] >= '0' && field[i] <= '7'; i++)
                v = v * 8 + (uint64_t) (field[i] - '0');
        return v;
}

/* Checks a header block's checksum the way readers do (chksum counted as spaces). */
static void assert_checksum(const uint8_t *h) {
        unsigned sum = 0;

        for (size_t i = 0; i < TAR_BLOCK; i++)
                sum += i >= 148 && i < 156 ? ' ' : h[i];
        ck_assert_uint_eq(parse_octal(h + 148, 8), sum);
        ck_assert_uint_eq(h[154], 0);
        ck_assert_uint_eq(h[155], ' ');
}

/* A tar archive assembled in memory. */
typedef struct archive {
        uint8_t *data;
        size_t size;
} archive;

static void archive_append(archive *a, const void *data, size_t len) {
        a->data = realloc(a->data, a->size + len);
        ck_assert_ptr_nonnull(a->data);
        memcpy(a->data + a->size, data, len);
        a->size += len;
}

/* tar_header_write(), checking that tar_header_size() predicts its length. */
static int checked_header_write(const tar_entry *e, uint8_t *buf) {
        int n = tar_header_write(e, buf);
        ck_assert_int_eq(tar_header_size(e), n);
        return n;
}

static void archive_zero(archive *a, size_t len) {
        a->data = realloc(a->data, a->size + len);
        ck_assert_ptr_nonnull(a->data);
        memset(a->data + a->size, 0, len);
        a->size += len;
}

/* Appends E's header(s) and SIZE bytes of CONTENT (or 'x's). Returns the header length. */
static int archive_add(archive *a, const tar_entry *e, const char *content) {
        uint8_t *h = malloc(TAR_HEADER_MAX);
        int n;

        ck_assert_ptr_nonnull(h);
        n = checked_header_write(e, h);
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(n % TAR_BLOCK, 0);
        archive_append(a, h, (size_t) n);
        free(h);
        if (S_ISREG(e->mode) && e->size > 0) {
                if (content)
                        archive_append(a, content, e->size);
                else {
                        size_t at = a->size;
                        archive_zero(a, e->size);
                        memset(a->data + at, 'x', e->size);
                }
                archive_zero(a, tar_padding(e->size));
        }
        return n;
}

static void archive_write(archive *a, const char *path) {
        archive_zero(a, 2 * TAR_BLOCK);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, a->data, a->size), (ssize_t) a->size);
        ck_assert_int_eq(close(fd), 0);
        free(a->data);
        *a = (archive) {};
}

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);

        ck_assert_ptr_nonnull(s);
        memset(s, c, n);
        s[n] = 0;
        return s;
}

/* ---- headers ---- */

/* The header of "./hello.txt", 0644, 14 bytes, written out from the ustar spec
 * (POSIX.1-2017 pax, "ustar Interchange Format") by hand. The checksum is the
 * sum of all bytes with the checksum field as eight spaces:
 *   name 1023 + mode 350 + uid 336 + gid 336 + size 535 + mtime 529 + chksum 256
 *   + typeflag 48 + magic 559 + version 96 + uname 452 + gname 452
 *   + devmajor 336 + devminor 336 = 5644 = 013014 octal. */
static void hello_header(uint8_t h[TAR_BLOCK]) {
        memset(h, 0, TAR_BLOCK);
        memcpy(h + 0, "./hello.txt", 11);
        memcpy(h + 100, "0000644", 8);
        memcpy(h + 108, "0000000", 8);
        memcpy(h + 116, "0000000", 8);
        memcpy(h + 124, "00000000016", 12);
        memcpy(h + 136, "00000000001", 12);
        memcpy(h + 148, "013014\0 ", 8);
        h[156] = '0';
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        memcpy(h + 265, "root", 4);
        memcpy(h + 297, "root", 4);
        memcpy(h + 329, "0000000", 8);
        memcpy(h + 337, "0000000", 8);
}

START_TEST(test_header_known_vector) {
        uint8_t expected[TAR_BLOCK], *got = malloc(TAR_HEADER_MAX);
        tar_entry e = { .name = "./hello.txt", .mode = S_IFREG | 0644, .size = 14 };
        char path[PATH_MAX];
        archive a = {};
        int status;

        hello_header(expected);
        ck_assert_int_eq(checked_header_write(&e, got), TAR_BLOCK);
        for (size_t i = 0; i < TAR_BLOCK; i++)
                ck_assert_msg(got[i] == expected[i], "byte %zu: %#x, expected %#x", i, got[i], expected[i]);
        assert_checksum(got);
        free(got);

        /* Readers agree: GNU tar and libarchive list it as we mean it. */
        archive_add(&a, &e, "Hello, world!\n");
        pathf(path, "%s/hello.tar", tmp);
        archive_write(&a, path);
        if (tool_available("tar")) {
                char *out = runf(&status, "TZ=UTC tar --full-time -tvf '%s' 2>&1", path);
                ck_assert_msg(status == 0, "%s", out);
                ck_assert_str_eq(out, "-rw-r--r-- root/root        14 1970-01-01 00:00:01 ./hello.txt\n");
                free(out);
                out = runf(&status, "tar -xOf '%s' ./hello.txt 2>&1", path);
                ck_assert_int_eq(status, 0);
                ck_assert_str_eq(out, "Hello, world!\n");
                free(out);
        }
        if (tool_available("bsdtar")) {
                char *out = runf(&status, "TZ=UTC bsdtar -tvf '%s' 2>&1", path);
                ck_assert_msg(status == 0, "%s", out);
                ck_assert_str_eq(out, "-rw-r--r--  0 root   root       14 Jan  1  1970 ./hello.txt\n");
                free(out);
        }
}
END_TEST

START_TEST(test_header_types) {
        uint8_t *h = malloc(TAR_HEADER_MAX);

        /* Directories carry no size, whatever the entry says; symlinks their target. */
        tar_entry d = { .name = "./gnu/store/", .mode = S_IFDIR | 0555, .size = 4096 };
        ck_assert_int_eq(checked_header_write(&d, h), TAR_BLOCK);
        ck_assert_uint_eq(h[156], '5');
        ck_assert_str_eq((char *) h + 100, "0000555");
        ck_assert_str_eq((char *) h + 124, "00000000000");
        ck_assert_str_eq((char *) h, "./gnu/store/");
        assert_checksum(h);

        tar_entry l = { .name = "./bin", .link = "/gnu/store/x-profile/bin", .mode = S_IFLNK | 0777 };
        ck_assert_int_eq(checked_header_write(&l, h), TAR_BLOCK);
        ck_assert_uint_eq(h[156], '2');
        ck_assert_str_eq((char *) h + 100, "0000777");
        ck_assert_str_eq((char *) h + 157, "/gnu/store/x-profile/bin");
        ck_assert_str_eq((char *) h + 124, "00000000000");
        assert_checksum(h);

        /* Only permission bits (with setuid/setgid/sticky) go into mode. */
        tar_entry f = { .name = "./f", .mode = S_IFREG | 04755, .size = 077777777777ULL };
        ck_assert_int_eq(checked_header_write(&f, h), TAR_BLOCK);
        ck_assert_str_eq((char *) h + 100, "0004755");
        /* The largest size ustar holds: no pax header yet. */
        ck_assert_str_eq((char *) h + 124, "77777777777");
        assert_checksum(h);
        free(h);
}
END_TEST

/* Splits NAME as the header H stores it back into one string. */
static void header_name(const uint8_t *h, char *out) {
        if (h[345])
                snprintf(out, 300, "%.155s/%.100s", (const char *) h + 345, (const char *) h);
        else
                snprintf(out, 300, "%.100s", (const char *) h);
}

START_TEST(test_header_name_split) {
        uint8_t *h = malloc(TAR_HEADER_MAX);
        char back[300];
        char *p155 = repeat('p', 155), *p156 = repeat('p', 156), *n100 = repeat('n', 100),
             *n101 = repeat('n', 101), *n99 = repeat('n', 99), *a60 = repeat('a', 60), *b96 = repeat('b', 96),
             *b105 = repeat('b', 105);
        char name[600];
        static const struct {
                int fmt;
                bool ustar;             /* fits ustar without pax */
                size_t prefix_len;      /* expected prefix length */
        } cases[] = {
                { 0, true, 0 },         /* n100: exactly 100, in name */
                { 1, true, 155 },       /* p155/n100: 256, the ustar maximum */
                { 2, false, 0 },        /* p155/n101 */
                { 3, false, 0 },        /* p156/n100 */
                { 4, true, 60 },        /* a60/b96/ccc: only the first slash fits */
                { 5, false, 0 },        /* a60/b105/ccc: no slash fits */
                { 6, true, 155 },       /* p155/n99/: a directory, trailing slash in the name */
                { 7, false, 0 },        /* p155/n100/: the slash makes the name 101 */
                { 8, false, 0 },        /* n101 without a slash: pax */
                { 9, true, 155 },       /* p155/n1 */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                mode_t mode = S_IFREG | 0644;
                switch (cases[i].fmt) {
                case 0: snprintf(name, sizeof(name), "%s", n100); break;
                case 1: snprintf(name, sizeof(name), "%s/%s", p155, n100); break;
                case 2: snprintf(name, sizeof(name), "%s/%s", p155, n101); break;
                case 3: snprintf(name, sizeof(name), "%s/%s", p156, n100); break;
                case 4: snprintf(name, sizeof(name), "%s/%s/ccc", a60, b96); break;
                case 5: snprintf(name, sizeof(name), "%s/%s/ccc", a60, b105); break;
                case 6: snprintf(name, sizeof(name), "%s/%s/", p155, n99); mode = S_IFDIR | 0755; break;
                case 7: snprintf(name, sizeof(name), "%s/%s/", p155, n100); mode = S_IFDIR | 0755; break;
                case 8: snprintf(name, sizeof(name), "%s", n101); break;
                case 9: snprintf(name, sizeof(name), "%s/n", p155); break;
                }
                tar_entry e = { .name = name, .mode = mode };
                int n = checked_header_write(&e, h);
                if (cases[i].ustar) {
                        ck_assert_msg(n == TAR_BLOCK, "case %zu: %d bytes", i, n);
                        header_name(h, back);
                        ck_assert_str_eq(back, name);
                        ck_assert_uint_eq(strnlen((char *) h + 345, 155), cases[i].prefix_len);
                } else {
                        ck_assert_msg(n > TAR_BLOCK, "case %zu: no pax header", i);
                        ck_assert_uint_eq(h[156], 'x');
                        /* The ustar header after the pax data has a recognisable truncation. */
                        const uint8_t *u = h + n - TAR_BLOCK;
                        ck_assert_int_eq(memcmp(u, name, 100), 0);
                        ck_assert_uint_eq(u[345], 0);
                        assert_checksum(u);
                }
                assert_checksum(h);
        }
        free(p155);
        free(p156);
        free(n100);
        free(n101);
        free(n99);
        free(a60);
        free(b96);
        free(b105);
        free(h);
}
END_TEST

/* Checks the pax records in the 'x' header at H (length N): each "LEN key=value\n"
 * has LEN equal to its own length; returns the records' text (malloc'd). */
static char *pax_records(const uint8_t *h, int n) {
        ck_assert_int_gt(n, TAR_BLOCK);
        ck_assert_uint_eq(h[156], 'x');
        assert_checksum(h);
        size_t size = parse_octal(h + 124, 12);
        ck_assert_uint_eq(ALIGN_TO(size, TAR_BLOCK) + 2 * TAR_BLOCK, (size_t) n);
        char *text = strndup((const char *) h + TAR_BLOCK, size);
        ck_assert_uint_eq(strlen(text), size);
        /* (Plain tests in the loops: every ck_assert costs check a write to its parent.) */
        for (size_t at = 0; at < size;) {
                char *end;
                unsigned long len = strtoul(text + at, &end, 10);
                if (*end != ' ' || len < 5 || at + len > size || text[at + len - 1] != '\n' ||
                    memchr(text + at, '\n', len - 1))
                        ck_abort_msg("record at %zu: length %lu is not its length: %.40s", at, len, text + at);
                at += len;
        }
        /* Padding is zeros. */
        for (size_t i = TAR_BLOCK + size; i < (size_t) n - TAR_BLOCK; i++)
                if (h[i] != 0)
                        ck_abort_msg("padding byte %zu is %#x", i, h[i]);
        return text;
}

START_TEST(test_header_pax) {
        uint8_t *h = malloc(TAR_HEADER_MAX);
        char *long_name = repeat('n', 300), *long_link = repeat('l', 101), *text;
        char expected[1024];
        int n;

        /* A name longer than 255 without a usable slash. */
        tar_entry e = { .name = long_name, .mode = S_IFREG | 0644, .size = 3 };
        n = checked_header_write(&e, h);
        ck_assert_int_eq(n, 3 * TAR_BLOCK);
        text = pax_records(h, n);
        snprintf(expected, sizeof(expected), "310 path=%s\n", long_name);
        ck_assert_str_eq(text, expected);
        free(text);
        ck_assert_str_eq((char *) h + 124 + 2 * TAR_BLOCK, "00000000003");

        /* A link target of 101: linkpath; 100 still fits. */
        tar_entry l = { .name = "./l", .link = long_link, .mode = S_IFLNK | 0777 };
        n = checked_header_write(&l, h);
        text = pax_records(h, n);
        snprintf(expected, sizeof(expected), "115 linkpath=%s\n", long_link);
        ck_assert_str_eq(text, expected);
        free(text);
        ck_assert_str_eq((char *) h + 2 * TAR_BLOCK, "./l");
        /* The ustar header holds the target truncated, as GNU tar writes it. */
        ck_assert_int_eq(memcmp(h + 2 * TAR_BLOCK + 157, long_link, 100), 0);
        long_link[100] = 0;
        ck_assert_int_eq(checked_header_write(&l, h), TAR_BLOCK);
        ck_assert_int_eq(memcmp(h + 157, long_link, 100), 0);      /* 100 bytes, no NUL */
        ck_assert_int_eq(memcmp(h + 257, "ustar", 6), 0);

        /* Sizes of 8 GiB and more: a size record and 0 in the ustar field. */
        tar_entry big = { .name = "./big", .mode = S_IFREG | 0644, .size = 8ULL << 30 };
        n = checked_header_write(&big, h);
        text = pax_records(h, n);
        ck_assert_str_eq(text, "19 size=8589934592\n");
        free(text);
        ck_assert_str_eq((char *) h + TAR_BLOCK * 2 + 124, "00000000000");
        big.size = UINT64_MAX;
        n = checked_header_write(&big, h);
        text = pax_records(h, n);
        ck_assert_str_eq(text, "29 size=18446744073709551615\n");
        free(text);
        /* No size record for a symlink or directory, whatever .size says. */
        tar_entry dir = { .name = "./d/", .mode = S_IFDIR | 0755, .size = 8ULL << 30 };
        ck_assert_int_eq(checked_header_write(&dir, h), TAR_BLOCK);

        /* All three at once, in the order path, linkpath, size. */
        tar_entry all = { .name = long_name, .link = "x", .mode = S_IFREG | 0644, .size = 10ULL << 30 };
        long_link[100] = 'l';
        n = checked_header_write(&all, h);
        text = pax_records(h, n);
        snprintf(expected, sizeof(expected), "310 path=%s\n20 size=10737418240\n", long_name);
        ck_assert_str_eq(text, expected);
        free(text);

        free(long_name);
        free(long_link);
        free(h);
}
END_TEST

START_TEST(test_header_pax_lengths) {
        uint8_t *h = malloc(TAR_HEADER_MAX);
        char *name = repeat('n', 4096), *link = repeat('l', 4096), *text;
        char prefix[16];

        /* Every path length a pax record can have, 256..4096: the record's length
         * field counts its own digits, across 999 -> 1000 (value 989 vs 990). */
        for (size_t len = 256; len <= 4096; len++) {
                name[len] = 0;
                tar_entry e = { .name = name, .mode = S_IFREG | 0644 };
                int n = checked_header_write(&e, h);
                text = pax_records(h, n);
                size_t payload = strlen(" path=\n") + len;
                size_t expected = payload + (payload + 1 < 10 ? 1 : payload + 2 < 100 ? 2 : payload + 3 < 1000 ? 3 : 4);
                snprintf(prefix, sizeof(prefix), "%zu ", expected);
                ck_assert_msg(!strncmp(text, prefix, strlen(prefix)), "path of %zu: %.8s", len, text);
                ck_assert_uint_eq(strlen(text), expected);
                free(text);
                if (len < 4096)
                        name[len] = 'n';
        }
        for (size_t len = 101; len <= 4096; len++) {
                link[len] = 0;
                tar_entry e = { .name = "./l", .link = link, .mode = S_IFLNK | 0777 };
                int n = checked_header_write(&e, h);
                text = pax_records(h, n);
                ck_assert_uint_eq(strtoul(text, NULL, 10), strlen(text));
                free(text);
                if (len < 4096)
                        link[len] = 'l';
        }
        /* The boundary records themselves. */
        name[989] = 0;
        tar_entry e = { .name = name, .mode = S_IFREG | 0644 };
        text = pax_records(h, checked_header_write(&e, h));
        ck_assert_int_eq(strncmp(text, "999 path=", 9), 0);
        free(text);
        name[989] = 'n';
        name[990] = 0;
        text = pax_records(h, checked_header_write(&e, h));
        ck_assert_int_eq(strncmp(text, "1001 path=", 10), 0);
        free(text);
        name[990] = 'n';

        /* Limits: 4096 is accepted, and the worst case fits TAR_HEADER_MAX exactly
         * allocated (ASan would catch an overflow). */
        tar_entry worst = { .name = name, .link = link, .mode = S_IFREG | 0644, .size = UINT64_MAX };
        int n = checked_header_write(&worst, h);
        ck_assert_int_gt(n, 0);
        ck_assert_int_le(n, TAR_HEADER_MAX);
        free(pax_records(h, n));
        char *too_long = repeat('n', 4097);
        tar_entry e1 = { .name = too_long, .mode = S_IFREG | 0644 };
        ck_assert_int_eq(checked_header_write(&e1, h), -ENAMETOOLONG);
        tar_entry e2 = { .name = "./l", .link = too_long, .mode = S_IFLNK | 0777 };
        ck_assert_int_eq(checked_header_write(&e2, h), -ENAMETOOLONG);
        free(too_long);
        free(name);
        free(link);
        free(h);
}
END_TEST

/* GNU tar and bsdtar read back names, link targets and sizes of every kind of header. */
START_TEST(test_header_readers) {
        char *p155 = repeat('p', 155), *n100 = repeat('n', 100), *n300 = repeat('q', 300),
             *l101 = repeat('l', 101), *deep = NULL;
        char names[4][512], path[PATH_MAX], expected[4096], link_line[256];
        archive a = {};
        int status;

        ck_assert_int_ge(asprintf(&deep, "./d/%s/%s/%s", p155, n100, n300), 0);
        snprintf(names[0], sizeof(names[0]), "%s/%s", p155, n100);
        snprintf(names[1], sizeof(names[1]), "%s/%s/", p155, "dir");
        tar_entry entries[] = {
                { .name = names[0], .mode = S_IFREG | 0644, .size = 5 },
                { .name = names[1], .mode = S_IFDIR | 0755 },
                { .name = deep, .mode = S_IFREG | 0600, .size = 1 },
                { .name = "./link", .link = l101, .mode = S_IFLNK | 0777 },
        };
        for (size_t i = 0; i < ELEMENTSOF(entries); i++)
                archive_add(&a, &entries[i], NULL);
        pathf(path, "%s/names.tar", tmp);
        archive_write(&a, path);
        snprintf(expected, sizeof(expected), "%s\n%s\n%s\n./link\n", names[0], names[1], deep);
        snprintf(link_line, sizeof(link_line), " ./link -> %s\n", l101);

        if (tool_available("tar")) {
                char *out = runf(&status, "tar -tf '%s' 2>&1", path);
                ck_assert_msg(status == 0, "%s", out);
                ck_assert_str_eq(out, expected);
                free(out);
                out = runf(&status, "tar -tvf '%s' 2>&1", path);
                ck_assert_int_eq(status, 0);
                ck_assert_msg(strstr(out, link_line), "tar: %s", out);
                free(out);
        }
        if (tool_available("bsdtar")) {
                char *out = runf(&status, "bsdtar -tf '%s' 2>&1", path);
                ck_assert_msg(status == 0, "%s", out);
                ck_assert_str_eq(out, expected);
                free(out);
                out = runf(&status, "bsdtar -tvf '%s' 2>&1", path);
                ck_assert_int_eq(status, 0);
                ck_assert_msg(strstr(out, link_line), "bsdtar: %s", out);
                free(out);
        }

        /* An 8 GiB member, its data a hole in a sparse file. */
        tar_entry big = { .name = "./big", .mode = S_IFREG | 0644, .size = (8ULL << 30) + 1 };
        uint8_t *h = malloc(TAR_HEADER_MAX);
        int n = checked_header_write(&big, h);
        pathf(path, "%s/big.tar", tmp);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, h, (size_t) n), n);
        ck_assert_int_eq(ftruncate(fd, (off_t) (n + big.size + tar_padding(big.size) + 2 * TAR_BLOCK)), 0);
        close(fd);
        free(h);
        if (tool_available("tar")) {
                char *out = runf(&status, "TZ=UTC tar --full-time -tvf '%s' 2>&1", path);
                ck_assert_msg(status == 0, "%s", out);
                ck_assert_str_eq(out, "-rw-r--r-- root/root 8589934593 1970-01-01 00:00:01 ./big\n");
                free(out);
        }
        if (tool_available("bsdtar")) {
                char *out = runf(&status, "bsdtar -tvf '%s' 2>&1", path);
                ck_assert_msg(status == 0, "%s", out);
                ck_assert_msg(strstr(out, " 8589934593 ") && strstr(out, " ./big\n"), "%s", out);
                free(out);
        }
        free(p155);
        free(n100);
        free(n300);
        free(l101);
        free(deep);
}
END_TEST

/* ---- pack.tar plans ---- */

static char store[PATH_MAX], db_path[PATH_MAX];
static char *item_hello, *item_lib, *item_link;
static pf_cache *plan_cache;    /* the views' cache: NULL unless a test sets it */

/* A store with: hello (a tree that references lib), lib (a file), link (a symlink
 * item, outside hello's closure). */
static void make_store(void) {
        char src[PATH_MAX], text[PATH_MAX + 64];
        char *long_dir = repeat('D', 120), *long_file = repeat('F', 150);

        pathf(store, "%s/store", tmp);
        pathf(db_path, "%s/db/db.sqlite", tmp);
        ck_assert_int_eq(pf_store_init(store, db_path), 0);

        fixture_mkdir(tmp, "src");
        fixture_write_str(tmp, "src/lib", "library bytes\n", 0644);
        pathf(src, "%s/src/lib", tmp);
        ck_assert_int_eq(pf_store_add(store, db_path, src, &item_lib), 0);

        fixture_mkdir(tmp, "src/hello");
        fixture_mkdir(tmp, "src/hello/bin");
        snprintf(text, sizeof(text), "#!/bin/sh\n# uses %s\necho hello\n", item_lib);
        fixture_write_str(tmp, "src/hello/bin/hello", text, 0755);
        fixture_symlink(tmp, "src/hello/bin/hi", "hello");
        fixture_mkdir(tmp, "src/hello/share");
        fixture_write_str(tmp, "src/hello/share/Empty", "", 0644);
        fixture_write_str(tmp, "src/hello/share/_x", "x", 0644);
        fixture_write_str(tmp, "src/hello/share/a.txt", "some text that is not a block long\n", 0644);
        static char blocks[1024 + 3];
        for (size_t i = 0; i < sizeof(blocks); i++)
                blocks[i] = (char) ('a' + i % 26);
        fixture_write(tmp, "src/hello/share/blocks", blocks, sizeof(blocks), 0644);
        pathf(src, "src/hello/share/%s", long_dir);
        fixture_mkdir(tmp, src);
        pathf(src, "src/hello/share/%s/%s", long_dir, long_file);
        fixture_write_str(tmp, src, "long\n", 0644);
        pathf(src, "%s/src/hello", tmp);
        ck_assert_int_eq(pf_store_add(store, db_path, src, &item_hello), 0);

        fixture_symlink(tmp, "src/link", "/nowhere");
        pathf(src, "%s/src/link", tmp);
        ck_assert_int_eq(pf_store_add(store, db_path, src, &item_link), 0);
        free(long_dir);
        free(long_file);
}

static void free_store(void) {
        free(item_hello);
        free(item_lib);
        free(item_link);
        item_hello = item_lib = item_link = NULL;
}

/* The view a mount would give profile "demo" whose item is ROOT, under CONFIG,
 * with the test's cache (and background flag). */
typedef struct test_view {
        pf_store *store;
        pf_closure *closure;
        pf_config *config;
        pf_options options;
        pf_view view;
} test_view;

static const bool *plan_background; /* the views' background flag: NULL unless a test sets it */

static void test_view_open(test_view *tv, const char *root, const char *config) {
        *tv = (test_view) {};
        ck_assert_int_eq(pf_store_open(store, db_path, &tv->store), 0);
        ck_assert_int_eq(pf_store_closure(tv->store, root, &tv->closure), 0);
        ck_assert_int_eq(pf_config_parse_string(config, "test", &tv->config), 0);
        ck_assert_int_eq(pf_config_options_for(tv->config, "demo", &tv->options), 0);
        tv->view = (pf_view) { .store_dir = store, .store = tv->store, .closure = tv->closure, .name = "demo",
                               .options = &tv->options, .cache = plan_cache, .background = plan_background };
}

static void test_view_close(test_view *tv) {
        pf_options_done(&tv->options);
        pf_config_free(tv->config);
        pf_closure_unref(tv->closure);
        pf_store_free(tv->store);
}

/* Plans FORMAT for the closure of ROOT under CONFIG, with the test's cache;
 * sparse (FORMAT must be pack.tar) if WANT is not NULL. Returns the plan's
 * result. */
static int plan_view(const pf_format *format, const char *root, const char *config,
                     bool (*want)(void *, const uint8_t *), void *userdata, pf_plan **ret) {
        test_view tv;
        int r;

        test_view_open(&tv, root, config);
        r = want ? format->plan_sparse(format, &tv.view, want, userdata, ret) : format->plan(format, &tv.view, ret);
        test_view_close(&tv);
        return r;
}

static int plan_tar_sparse(const char *root, const char *config, bool (*want)(void *, const uint8_t *),
                           void *userdata, pf_plan **ret) {
        ck_assert_ptr_eq(pf_format_find("pack.tar"), &pf_format_tar);
        return plan_view(&pf_format_tar, root, config, want, userdata, ret);
}

static int plan_tar(const char *root, const char *config, pf_plan **ret) {
        return plan_tar_sparse(root, config, NULL, NULL, ret);
}

/* Plans FORMAT over the closure of ROOT (no options), with the test's cache. */
static int plan_format(const pf_format *format, const char *root, pf_plan **ret) {
        return plan_view(format, root, "", NULL, NULL, ret);
}

/* Reads the whole plan in uneven chunks into a malloc'd buffer. */
static uint8_t *plan_read(pf_plan *p, size_t *ret_size) {
        size_t size = (size_t) pf_plan_size(p), done = 0, chunk = 1;
        uint8_t *buf = malloc(size + 1);

        ck_assert_ptr_nonnull(buf);
        while (done < size) {
                ssize_t n = pf_plan_pread(p, buf + done, chunk, done);
                ck_assert_int_gt(n, 0);
                done += (size_t) n;
                chunk = chunk * 3 + 7;
        }
        ck_assert_int_eq(pf_plan_pread(p, buf, 1, size), 0);
        *ret_size = done;
        return buf;
}

static void write_file(const char *path, const uint8_t *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, size), (ssize_t) size);
        ck_assert_int_eq(close(fd), 0);
}

/* GNU tar --sort=name order: paths compared component by component, bytewise;
 * a directory before what it holds. Negative if A comes first. */
static int tar_order_cmp(const char *a, const char *b) {
        for (;;) {
                size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
                int c = memcmp(a, b, MIN(la, lb));
                if (c != 0)
                        return c;
                if (la != lb)
                        return la < lb ? -1 : 1;
                a += la;
                b += lb;
                /* Skip the separator; a path that ends first is the parent. */
                if (*a == '/')
                        a++;
                if (*b == '/')
                        b++;
                if (!*a || !*b)
                        return !*a && !*b ? 0 : !*a ? -1 : 1;
        }
}

START_TEST(test_tar_order_cmp) {
        /* The oracle itself. */
        ck_assert_int_lt(tar_order_cmp("./", "./a"), 0);
        ck_assert_int_lt(tar_order_cmp("./a/", "./a/b"), 0);
        ck_assert_int_lt(tar_order_cmp("./a/z", "./a-b"), 0);      /* plain strcmp says otherwise */
        ck_assert_int_lt(tar_order_cmp("./a-b", "./a.b"), 0);
        ck_assert_int_lt(tar_order_cmp("./B", "./a"), 0);
        ck_assert_int_gt(tar_order_cmp("./b", "./a/z/z"), 0);
        ck_assert_int_eq(tar_order_cmp("./a/", "./a"), 0);
}
END_TEST

/* Lists ARCHIVE with GNU tar; returns the member lines (malloc'd, NULL-terminated). */
static char **tar_list(const char *archive_path, size_t *ret_n) {
        int status;

        char *out = runf(&status, "TZ=UTC tar --full-time -tvf '%s' 2>&1", archive_path);
        ck_assert_msg(status == 0, "tar: %s", out);
        size_t n = 0;
        char **lines = calloc(strlen(out) + 1, sizeof(char *));
        for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                lines[n++] = strdup(l);
        free(out);
        *ret_n = n;
        return lines;
}

/* The member name of a `tar -tv` line (field 6 on), without " -> target". */
static void line_name(const char *line, char *out) {
        const char *p = line;

        for (int field = 0; field < 5; field++) {
                p += strcspn(p, " ");
                p += strspn(p, " ");
        }
        snprintf(out, PATH_MAX, "%s", p);
        char *arrow = strstr(out, " -> ");
        if (arrow)
                *arrow = 0;
}

static bool has_line(char **lines, size_t n, const char *expected) {
        for (size_t i = 0; i < n; i++)
                if (!strcmp(lines[i], expected))
                        return true;
        return false;
}

START_TEST(test_tar_plan) {
        char path[PATH_MAX], expected[2 * PATH_MAX], name[PATH_MAX], prev[PATH_MAX] = "";
        pf_plan *p = NULL, *p2 = NULL;
        size_t size, size2, n;

        make_store();
        ck_assert_int_eq(plan_tar(item_hello, "[*]\nsymlinks = /bin=bin\n", &p), 0);
        uint8_t *data = plan_read(p, &size);
        ck_assert_uint_eq(size, pf_plan_size(p));
        ck_assert_uint_eq(size % TAR_BLOCK, 0);
        /* Ends with two zero blocks. */
        for (size_t i = size - 2 * TAR_BLOCK; i < size; i++)
                ck_assert_uint_eq(data[i], 0);

        /* Deterministic: a second plan (new store handle, new closure) gives the same bytes. */
        ck_assert_int_eq(plan_tar(item_hello, "[*]\nsymlinks = /bin=bin\n", &p2), 0);
        ck_assert_uint_eq(pf_plan_size(p2), pf_plan_size(p));
        uint8_t *data2 = plan_read(p2, &size2);
        ck_assert_uint_eq(size2, size);
        ck_assert_int_eq(memcmp(data, data2, size), 0);
        free(data2);
        pf_plan_unref(p2);

        pathf(path, "%s/pack.tar", tmp);
        write_file(path, data, size);
        free(data);
        pf_plan_unref(p);
        if (!tool_available("tar")) {
                free_store();
                return;
        }

        char **lines = tar_list(path, &n);
        ck_assert_uint_ge(n, 10);
        ck_assert_str_eq(lines[0], "drwxr-xr-x root/root         0 1970-01-01 00:00:01 ./");
        snprintf(expected, sizeof(expected), "lrwxrwxrwx root/root         0 1970-01-01 00:00:01 ./bin -> %s/bin",
                 item_hello);
        ck_assert_msg(has_line(lines, n, expected), "no %s", expected);
        for (size_t i = 0; i < n; i++) {
                ck_assert_msg(strstr(lines[i], " root/root ") && strstr(lines[i], " 1970-01-01 00:00:01 ./"),
                              "%s", lines[i]);
                line_name(lines[i], name);
                ck_assert_msg(!strncmp(name, "./", 2), "%s", name);
                if (i > 0)
                        ck_assert_msg(tar_order_cmp(prev, name) < 0, "out of order: %s then %s", prev, name);
                strcpy(prev, name);
        }
        /* The store's parents, the closure (hello and lib), not the unrelated item. */
        snprintf(expected, sizeof(expected), "dr-xr-xr-x root/root         0 1970-01-01 00:00:01 .%s/", item_hello);
        ck_assert_msg(has_line(lines, n, expected), "no %s", expected);
        snprintf(expected, sizeof(expected), "-r--r--r-- root/root        14 1970-01-01 00:00:01 .%s", item_lib);
        ck_assert_msg(has_line(lines, n, expected), "no %s", expected);
        snprintf(expected, sizeof(expected), "lrwxrwxrwx root/root         0 1970-01-01 00:00:01 .%s/bin/hi -> hello",
                 item_hello);
        ck_assert_msg(has_line(lines, n, expected), "no %s", expected);
        snprintf(expected, sizeof(expected), "drwxr-xr-x root/root         0 1970-01-01 00:00:01 .%s/", store);
        ck_assert_msg(has_line(lines, n, expected), "no %s", expected);
        for (size_t i = 0; i < n; i++)
                ck_assert_msg(!strstr(lines[i], item_link), "unrelated item in the pack: %s", lines[i]);
        /* The long names made it (pax or prefix). */
        char *long_dir = repeat('D', 120), *long_file = repeat('F', 150);
        snprintf(expected, sizeof(expected), "-r--r--r-- root/root         5 1970-01-01 00:00:01 .%s/share/%s/%s",
                 item_hello, long_dir, long_file);
        ck_assert_msg(has_line(lines, n, expected), "no %s", expected);
        free(long_dir);
        free(long_file);
        for (size_t i = 0; i < n; i++)
                free(lines[i]);
        free(lines);

        /* The data: extract and compare with the store. */
        char out[PATH_MAX];
        int status;
        pathf(out, "%s/out", tmp);
        ck_assert_int_eq(mkdir(out, 0755), 0);
        char *o = runf(&status,
                       "tar -xf '%s' -C '%s' && diff -r --no-dereference '%s' '%s%s' && "
                       "cmp '%s' '%s%s' && test \"$(readlink '%s/bin')\" = '%s/bin'",
                       path, out, item_hello, out, item_hello, item_lib, out, item_lib, out, item_hello);
        ck_assert_msg(status == 0, "%s", o);
        free(o);

        if (tool_available("bsdtar")) {
                /* Same names, and the same tree extracted. */
                o = runf(&status, "bsdtar -tf '%s' > '%s/bsd.txt' && tar -tf '%s' | cmp - '%s/bsd.txt'", path, tmp,
                         path, tmp);
                ck_assert_msg(status == 0, "%s", o);
                free(o);
                o = runf(&status, "mkdir '%s/bsd' && bsdtar -xf '%s' -C '%s/bsd' && diff -r --no-dereference '%s' '%s/bsd'",
                         tmp, path, tmp, out, tmp);
                ck_assert_msg(status == 0, "%s", o);
                free(o);
        }
        free_store();
}
END_TEST

START_TEST(test_tar_plan_variants) {
        pf_plan *p = NULL, *q = NULL;
        char config[PATH_MAX + 64], top[PATH_MAX];
        size_t size;

        make_store();
        /* Without symlinks: no ./bin, and a smaller pack; other options change nothing here. */
        ck_assert_int_eq(plan_tar(item_hello, "[*]\nsymlinks = /bin=bin\n", &p), 0);
        ck_assert_int_eq(plan_tar(item_hello, "", &q), 0);
        ck_assert_uint_eq(pf_plan_size(p), pf_plan_size(q) + TAR_BLOCK);
        pf_plan_unref(q);
        ck_assert_int_eq(plan_tar(item_hello, "[*]\nlocalstatedir = no\n", &q), 0);
        ck_assert_uint_eq(pf_plan_size(p), pf_plan_size(q) + TAR_BLOCK);
        pf_plan_unref(q);

        /* Nested symlinks make their parent directories. */
        ck_assert_int_eq(plan_tar(item_hello, "[*]\nsymlinks = /usr/local/bin=bin /bin=bin\n", &q), 0);
        ck_assert_uint_eq(pf_plan_size(q), pf_plan_size(p) + 3 * TAR_BLOCK);
        pf_plan_unref(q);

        /* A closure of one file item, and one of a symlink item. */
        ck_assert_int_eq(plan_tar(item_lib, "", &q), 0);
        uint8_t *data = plan_read(q, &size);
        ck_assert_uint_eq(size, pf_plan_size(q));
        free(data);
        pf_plan_unref(q);
        ck_assert_int_eq(plan_tar(item_link, "", &q), 0);
        pf_plan_unref(q);

        /* Collisions: with the store directory, one of its parents, inside the store,
         * and two symlinks at one place. */
        size_t first = strcspn(store + 1, "/") + 1;
        snprintf(top, sizeof(top), "%.*s", (int) first, store);
        const char *colliding[] = { store, top };
        for (size_t i = 0; i < ELEMENTSOF(colliding); i++) {
                snprintf(config, sizeof(config), "[*]\nsymlinks = %s=bin\n", colliding[i]);
                q = NULL;
                ck_assert_msg(plan_tar(item_hello, config, &q) == -EEXIST, "symlink %s accepted", colliding[i]);
                ck_assert_ptr_null(q);
        }
        snprintf(config, sizeof(config), "[*]\nsymlinks = %s/x=bin\n", store);
        ck_assert_int_eq(plan_tar(item_hello, config, &q), -EEXIST);
        ck_assert_int_eq(plan_tar(item_hello, "[*]\nsymlinks = /bin=bin /bin=share\n", &q), -EEXIST);
        ck_assert_int_eq(plan_tar(item_hello, "[*]\nsymlinks = /bin=bin /bin/x=share\n", &q), -EEXIST);
        ck_assert_int_eq(plan_tar(item_hello, "[*]\nsymlinks = /bin/x=share /bin=bin\n", &q), -EEXIST);

        pf_plan_unref(p);
        free_store();
}
END_TEST

static bool want_one(void *userdata, const uint8_t *identity) {
        return userdata && memcmp(userdata, identity, 32) == 0;
}

START_TEST(test_tar_plan_sparse) {
        pf_plan *full = NULL, *none = NULL, *one = NULL;
        uint8_t *full_bytes, *none_bytes, *one_bytes;
        size_t full_size, none_size, one_size, n_items = 0;
        const char *config = "[demo]\nsymlinks = /bin=bin\n";

        make_store();
        ck_assert_int_eq(plan_tar(item_hello, config, &full), 0);
        ck_assert_int_eq(plan_tar_sparse(item_hello, config, want_one, NULL, &none), 0);
        full_bytes = plan_read(full, &full_size);
        none_bytes = plan_read(none, &none_size);

        /* Same size and segments; item segments are zeros, the rest is the same. */
        ck_assert_uint_eq(full_size, none_size);
        ck_assert_uint_eq(pf_plan_n_segments(full), pf_plan_n_segments(none));
        for (size_t i = 0; i < pf_plan_n_segments(full); i++) {
                const pf_plan_segment *a = pf_plan_segment_at(full, i), *b = pf_plan_segment_at(none, i);
                ck_assert_uint_eq(a->offset, b->offset);
                ck_assert_uint_eq(a->length, b->length);
                ck_assert(a->has_identity == b->has_identity);
                if (!a->has_identity) {
                        ck_assert_mem_eq(full_bytes + a->offset, none_bytes + a->offset, a->length);
                        continue;
                }
                ck_assert_mem_eq(a->identity, b->identity, 32);
                n_items++;
                for (uint64_t k = 0; k < b->length; k++)
                        ck_assert_uint_eq(none_bytes[b->offset + k], 0);

                /* Wanting this item alone materializes it, and only it. */
                ck_assert_int_eq(plan_tar_sparse(item_hello, config, want_one, (void *) a->identity, &one), 0);
                one_bytes = plan_read(one, &one_size);
                ck_assert_uint_eq(one_size, full_size);
                ck_assert_mem_eq(one_bytes + a->offset, full_bytes + a->offset, a->length);
                ck_assert_mem_eq(one_bytes, none_bytes, a->offset);
                ck_assert_mem_eq(one_bytes + a->offset + a->length, none_bytes + a->offset + a->length,
                                 full_size - a->offset - a->length);
                free(one_bytes);
                pf_plan_unref(one);
        }
        ck_assert_uint_eq(n_items, 2); /* hello and lib */
        free(full_bytes);
        free(none_bytes);
        pf_plan_unref(full);
        pf_plan_unref(none);
        free_store();
}
END_TEST

/* Drops the member lists of the closure of hello from the cache. */
static void drop_member_lists(pf_cache *c) {
        pf_store *s = NULL;
        pf_closure *closure = NULL;
        uint8_t key[32];

        ck_assert_int_eq(pf_store_open(store, db_path, &s), 0);
        ck_assert_int_eq(pf_store_closure(s, item_hello, &closure), 0);
        for (size_t i = 0; i < closure->n_items; i++) {
                pf_walk_record_key(closure->items[i].path, closure->items[i].nar_hash, key);
                ck_assert_int_eq(pf_cache_record_drop(c, key), 0);
        }
        pf_closure_unref(closure);
        pf_store_free(s);
}

static void assert_same_layout(pf_plan *a, pf_plan *b) {
        ck_assert_uint_eq(pf_plan_size(a), pf_plan_size(b));
        ck_assert_uint_eq(pf_plan_n_segments(a), pf_plan_n_segments(b));
        for (size_t i = 0; i < pf_plan_n_segments(a); i++) {
                ck_assert_uint_eq(pf_plan_segment_at(a, i)->offset, pf_plan_segment_at(b, i)->offset);
                ck_assert_uint_eq(pf_plan_segment_at(a, i)->length, pf_plan_segment_at(b, i)->length);
        }
}

/* A sparse plan records each unwanted item's length in the cache, and the next
 * one takes it from there: it needs neither the item nor its member list. A
 * damaged length is summed again. */
START_TEST(test_tar_plan_sparse_lengths) {
        const char *config = "[demo]\nsymlinks = /bin=bin\n";
        char cache_dir[PATH_MAX], moved[PATH_MAX];
        pf_plan *full = NULL, *first = NULL, *again = NULL;
        pf_cache_usage usage;

        make_store();
        pathf(cache_dir, "%s/cache", tmp);
        pathf(moved, "%s/moved", tmp);
        ck_assert_int_eq(pf_cache_open(cache_dir, 0, "test", &plan_cache), 0);
        ck_assert_int_eq(plan_tar(item_hello, config, &full), 0);
        ck_assert_int_eq(plan_tar_sparse(item_hello, config, want_one, NULL, &first), 0);
        assert_same_layout(full, first);
        ck_assert_int_eq(pf_cache_get_usage(plan_cache, &usage), 0);
        ck_assert_uint_eq(usage.records, 4); /* hello's and lib's member lists and lengths */

        /* Without the items and their member lists: the lengths alone. */
        drop_member_lists(plan_cache);
        ck_assert_int_eq(rename(item_hello, moved), 0);
        ck_assert_int_eq(plan_tar_sparse(item_hello, config, want_one, NULL, &again), 0);
        assert_same_layout(full, again);
        pf_plan_unref(again);
        /* ... which a plan wanting the items' members cannot do. */
        ck_assert_int_lt(plan_tar(item_hello, config, &again), 0);

        /* Damaged lengths are not used: without the items, no plan. */
        cache_index_sql(cache_dir, "UPDATE records SET data = zeroblob(40) WHERE size = 40");
        ck_assert_int_lt(plan_tar_sparse(item_hello, config, want_one, NULL, &again), 0);
        ck_assert_int_eq(rename(moved, item_hello), 0);
        /* With them, the lengths are summed and recorded again. */
        ck_assert_int_eq(plan_tar_sparse(item_hello, config, want_one, NULL, &again), 0);
        assert_same_layout(full, again);
        pf_plan_unref(again);
        drop_member_lists(plan_cache);
        ck_assert_int_eq(rename(item_hello, moved), 0);
        ck_assert_int_eq(plan_tar_sparse(item_hello, config, want_one, NULL, &again), 0);
        assert_same_layout(full, again);
        ck_assert_int_eq(rename(moved, item_hello), 0);

        pf_plan_unref(again);
        pf_plan_unref(first);
        pf_plan_unref(full);
        pf_cache_free(plan_cache);
        plan_cache = NULL;
        free_store();
}
END_TEST

/* A full plan records each item's length as it goes, so a sizing plan (every
 * item a placeholder: what pf_packs_size() makes) needs neither the member
 * lists nor the store afterwards, and has the full plan's size. */
START_TEST(test_full_plan_records_lengths) {
        const char *config = "[demo]\nsymlinks = /bin=bin\n";
        char cache_dir[PATH_MAX], moved[PATH_MAX];
        pf_plan *full = NULL, *sizing = NULL;
        pf_cache_usage usage;

        make_store();
        pathf(cache_dir, "%s/cache", tmp);
        pathf(moved, "%s/moved", tmp);
        ck_assert_int_eq(pf_cache_open(cache_dir, 0, "test", &plan_cache), 0);
        ck_assert_int_eq(plan_tar(item_hello, config, &full), 0);
        ck_assert_int_eq(pf_cache_get_usage(plan_cache, &usage), 0);
        ck_assert_uint_eq(usage.records, 4); /* hello's and lib's member lists and lengths */
        drop_member_lists(plan_cache);
        ck_assert_int_eq(rename(item_hello, moved), 0);
        ck_assert_int_eq(plan_tar_sparse(item_hello, config, want_one, NULL, &sizing), 0);
        assert_same_layout(full, sizing);
        ck_assert_uint_eq(pf_plan_size(sizing), pf_plan_size(full));
        ck_assert_int_eq(rename(moved, item_hello), 0);

        pf_plan_unref(sizing);
        pf_plan_unref(full);
        pf_cache_free(plan_cache);
        plan_cache = NULL;
        free_store();
}
END_TEST

/* zstd with one-byte groups: every item alone. */
static uint64_t tiny_group_size(int level) {
        return 1;
}

/* zstd as if the library were another version. */
static unsigned next_zstd_version(void) {
        return pf_codec_zstd.library_version() + 1;
}

/* A pack's manifest is keyed by how its units are cut, and its units by the
 * library's version: a cache filled by a packfs that grouped differently gives
 * the bytes a fresh encoding gives, not the old concatenation, and a new zstd
 * encodes again. */
START_TEST(test_manifest_follows_the_cutting) {
        static pf_codec zstd_alone, zstd_next;
        static pf_format zst_alone, zst_next;
        pf_cache_usage before, after;
        char cache_dir[PATH_MAX], other_dir[PATH_MAX];
        pf_plan *p = NULL;
        uint8_t *usual_bytes, *alone_bytes, *fresh_bytes;
        size_t usual_size, alone_size, fresh_size;

        zstd_alone = pf_codec_zstd;
        zstd_alone.group_size = tiny_group_size;
        zst_alone = (pf_format) PF_COMPRESSED_FORMAT("pack.tar.zst", pf_format_tar, zstd_alone);
        make_store();
        pathf(cache_dir, "%s/cache", tmp);
        pathf(other_dir, "%s/cache-other", tmp);

        /* A plan of a compressed pack pins its cache: read and drop it first. */
        ck_assert_int_eq(pf_cache_open(cache_dir, UINT64_MAX, "test", &plan_cache), 0);
        ck_assert_int_eq(plan_format(&pf_format_tar_zst, item_hello, &p), 0);
        usual_bytes = plan_read(p, &usual_size);
        pf_plan_unref(p);
        ck_assert_int_eq(plan_format(&zst_alone, item_hello, &p), 0);
        alone_bytes = plan_read(p, &alone_size);
        pf_plan_unref(p);
        /* Another library version: the units are encoded again (new objects),
         * whatever the cache holds. */
        zstd_next = pf_codec_zstd;
        zstd_next.library_version = next_zstd_version;
        zst_next = (pf_format) PF_COMPRESSED_FORMAT("pack.tar.zst", pf_format_tar, zstd_next);
        ck_assert_int_eq(pf_cache_get_usage(plan_cache, &before), 0);
        ck_assert_int_eq(plan_format(&zst_next, item_hello, &p), 0);
        pf_plan_unref(p);
        ck_assert_int_eq(pf_cache_get_usage(plan_cache, &after), 0);
        ck_assert_uint_gt(after.objects, before.objects);
        ck_assert_uint_eq(after.manifests, before.manifests + 1);
        pf_cache_free(plan_cache);
        ck_assert_int_eq(pf_cache_open(other_dir, UINT64_MAX, "test", &plan_cache), 0);
        ck_assert_int_eq(plan_format(&zst_alone, item_hello, &p), 0);
        fresh_bytes = plan_read(p, &fresh_size);
        pf_plan_unref(p);
        pf_cache_free(plan_cache);
        plan_cache = NULL;

        ck_assert(usual_size != alone_size || memcmp(usual_bytes, alone_bytes, usual_size) != 0);
        ck_assert_uint_eq(alone_size, fresh_size);
        ck_assert_mem_eq(alone_bytes, fresh_bytes, fresh_size);
        free(usual_bytes);
        free(alone_bytes);
        free(fresh_bytes);
        free_store();
}
END_TEST

/* Whether a compressed pack is ready (what a listing shows) follows the cache:
 * not before its encoding, yes after, not once one of its objects is gone; it
 * pins, opens and encodes nothing. Planned formats have no such question. */
static int cached_now(const pf_format *format, const char *root) {
        test_view tv;
        int r;

        test_view_open(&tv, root, "");
        r = format->cached(format, &tv.view);
        test_view_close(&tv);
        return r;
}

START_TEST(test_cached_follows_the_cache) {
        char cache_dir[PATH_MAX];
        pf_cache_usage usage;
        pf_plan *p = NULL;

        make_store();
        ck_assert_ptr_null(pf_format_tar.cached);
        ck_assert_ptr_null(pf_format_closure.cached);
        ck_assert_ptr_nonnull(pf_format_tar_zst.cached);
        /* No cache: nothing is ever ready without encoding. */
        ck_assert_int_eq(cached_now(&pf_format_tar_zst, item_hello), 0);

        pathf(cache_dir, "%s/cache", tmp);
        ck_assert_int_eq(pf_cache_open(cache_dir, UINT64_MAX, "test", &plan_cache), 0);
        ck_assert_int_eq(cached_now(&pf_format_tar_zst, item_hello), 0);
        ck_assert_int_eq(pf_cache_get_usage(plan_cache, &usage), 0);
        ck_assert_uint_eq(usage.objects, 0);    /* asking encoded nothing */

        ck_assert_int_eq(plan_format(&pf_format_tar_zst, item_hello, &p), 0);
        pf_plan_unref(p);
        ck_assert_int_eq(cached_now(&pf_format_tar_zst, item_hello), 1);
        ck_assert_int_eq(cached_now(&pf_format_tar_gz, item_hello), 0);
        ck_assert_int_eq(cached_now(&pf_format_tar_zst, item_lib), 0);

        /* One object gone behind the index's back: a stat would encode it. */
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof(cmd), "find '%s/objects' -type f | head -n1 | xargs rm", cache_dir);
        ck_assert_int_eq(system(cmd), 0);
        ck_assert_int_eq(cached_now(&pf_format_tar_zst, item_hello), 0);

        pf_cache_free(plan_cache);
        plan_cache = NULL;
        free_store();
}
END_TEST

/* A cancelled encoding (build or warm on SIGINT, a mount at unmount) fails with
 * -ECANCELED and leaves neither a partial object nor a manifest. */
START_TEST(test_cancelled_encoding_keeps_nothing) {
        char cache_dir[PATH_MAX], tmp_dir[PATH_MAX];
        pf_cache_usage usage;
        pf_plan *p = NULL;
        DIR *d;
        struct dirent *de;

        make_store();
        pathf(cache_dir, "%s/cache", tmp);
        pathf(tmp_dir, "%s/cache/tmp", tmp);
        ck_assert_int_eq(pf_cache_open(cache_dir, UINT64_MAX, "test", &plan_cache), 0);
        /* This test runs in a process of its own (check forks): the request
         * stays there. */
        pf_cancel_request();
        ck_assert_int_eq(plan_format(&pf_format_tar_xz, item_hello, &p), -ECANCELED);
        ck_assert_int_eq(plan_format(&pf_format_tar_zst, item_hello, &p), -ECANCELED);
        ck_assert_int_eq(pf_cache_get_usage(plan_cache, &usage), 0);
        ck_assert_uint_eq(usage.manifests, 0);
        ck_assert_ptr_nonnull(d = opendir(tmp_dir));
        while ((de = readdir(d)))
                ck_assert_msg(de->d_name[0] == '.', "partial object %s kept", de->d_name);
        closedir(d);
        pf_cache_free(plan_cache);
        plan_cache = NULL;
        free_store();
}
END_TEST

/* Encoding ahead of use (idle priority) gives the same bytes, and a waiter
 * raising it midway (the flag turning false) too. */
START_TEST(test_background_same_bytes) {
        static bool background = true;
        pf_plan *p = NULL;
        uint8_t *fg, *bg;
        size_t fg_size, bg_size;

        make_store();
        ck_assert_int_eq(plan_format(&pf_format_tar_xz, item_hello, &p), 0);
        fg = plan_read(p, &fg_size);
        pf_plan_unref(p);
        plan_background = &background;
        ck_assert_int_eq(plan_format(&pf_format_tar_xz, item_hello, &p), 0);
        plan_background = NULL;
        bg = plan_read(p, &bg_size);
        pf_plan_unref(p);
        ck_assert_uint_eq(fg_size, bg_size);
        ck_assert_mem_eq(fg, bg, fg_size);
        free(fg);
        free(bg);
        free_store();
}
END_TEST

int main(void) {
        Suite *s = suite_create("tar");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 120);
        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_header_known_vector);
        tcase_add_test(tc, test_header_types);
        tcase_add_test(tc, test_header_name_split);
        tcase_add_test(tc, test_header_pax);
        tcase_add_test(tc, test_header_pax_lengths);
        tcase_add_test(tc, test_header_readers);
        tcase_add_test(tc, test_tar_order_cmp);
        tcase_add_test(tc, test_tar_plan);
        tcase_add_test(tc, test_tar_plan_variants);
        tcase_add_test(tc, test_tar_plan_sparse);
        tcase_add_test(tc, test_tar_plan_sparse_lengths);
        tcase_add_test(tc, test_full_plan_records_lengths);
        tcase_add_test(tc, test_manifest_follows_the_cutting);
        tcase_add_test(tc, test_cached_follows_the_cache);
        tcase_add_test(tc, test_cancelled_encoding_keeps_nothing);
        tcase_add_test(tc, test_background_same_bytes);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
