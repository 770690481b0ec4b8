/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A small fixed tree for NAR and store tests, and temporary directories.
 *
 * fixture_make(DIR) creates DIR/fixture holding every kind of node (files with
 * and without the owner x bit, a file with only the group x bit, relative and
 * dangling absolute symlinks, an empty file and directory, a deep chain, names
 * that sort differently bytewise and by locale, and a 200000-byte file that
 * crosses the NAR writer's buffer). Its constants below were taken from Nix 2.8:
 *   nix-store --dump DIR/fixture | sha256sum ; ... | wc -c ; nix-store --add DIR/fixture
 */
#pragma once

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#define FIXTURE_NAR_SHA256 "48e94d0caddf6ff2b0150815c15033e33ad5b51d3cb733006a610d237c724058"
#define FIXTURE_NAR_SIZE 203520
#define FIXTURE_NIX_PATH "/nix/store/qhvz1qwpkmf6i5vxr752g52yivqkj4wb-fixture"
#define FIXTURE_CA "fixed:r:sha256:0n20f9y263b1d8037drw3nsxafp36d8c25882nqg4vyzml64vsa8"

/* snprintf() into a PATH_MAX buffer, failing the test on truncation. */
__attribute__((format(printf, 2, 3))) static inline void pathf(char *out, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(out, 4096, fmt, ap);
        va_end(ap);
        ck_assert(n >= 0 && n < 4096);
}

static inline void fixture_write(const char *dir, const char *name, const void *data, size_t len,
                                 mode_t mode) {
        char path[4096];
        int fd;

        pathf(path, "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, len), (ssize_t) len);
        ck_assert_int_eq(fchmod(fd, mode), 0);
        ck_assert_int_eq(close(fd), 0);
}

static inline void fixture_write_str(const char *dir, const char *name, const char *s, mode_t mode) {
        fixture_write(dir, name, s, strlen(s), mode);
}

static inline void fixture_mkdir(const char *dir, const char *name) {
        char path[4096];

        pathf(path, "%s/%s", dir, name);
        ck_assert_int_eq(mkdir(path, 0755), 0);
}

static inline void fixture_symlink(const char *dir, const char *name, const char *target) {
        char path[4096];

        pathf(path, "%s/%s", dir, name);
        ck_assert_int_eq(symlink(target, path), 0);
}

/* Creates DIR/fixture; writes its path to RET (PATH_MAX bytes). */
static inline void fixture_make(const char *dir, char *ret) {
        static unsigned char big[200000];
        char f[4096];

        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (unsigned char) ((i * 7 + i / 251) & 0xff);

        pathf(f, "%s/fixture", dir);
        ck_assert_int_eq(mkdir(f, 0755), 0);
        fixture_write_str(f, "hello.txt", "Hello, world!\n", 0644);
        fixture_mkdir(f, "bin");
        fixture_write_str(f, "bin/tool", "#!/bin/sh\necho tool\n", 0755);
        fixture_symlink(f, "bin/link", "tool");
        fixture_symlink(f, "abs-link", "/nix/store/absent-target");
        fixture_mkdir(f, "empty-dir");
        fixture_write_str(f, "empty-file", "", 0644);
        fixture_mkdir(f, "nested");
        fixture_mkdir(f, "nested/a");
        fixture_mkdir(f, "nested/a/b");
        fixture_mkdir(f, "nested/a/b/c");
        fixture_write_str(f, "nested/a/b/c/deep.txt", "deep\n", 0644);
        fixture_write(f, "big.bin", big, sizeof(big), 0644);
        fixture_write_str(f, "Z", "Z", 0644);
        fixture_write_str(f, "_", "_", 0644);
        fixture_write_str(f, "z", "z", 0644);
        fixture_write_str(f, "gx", "g\n", 0654);
        fixture_write_str(f, "ux", "u\n", 0744);
        pathf(ret, "%s", f);
}

/* A fresh directory under $TMPDIR (or /tmp); RET holds PATH_MAX bytes. */
static inline void temp_dir_make(char *ret) {
        const char *tmp = getenv("TMPDIR");

        pathf(ret, "%s/packfs-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(ret));
}

/* Removes DIR recursively, read-only store directories included. */
static inline void temp_dir_remove(const char *dir) {
        char cmd[4096];

        pathf(cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
        ck_assert_int_eq(system(cmd), 0);
}

/* The tests' directories live under one base made by an unchecked fixture: that
 * runs in check's parent process, so the base is removed even when a failing test
 * (a forked child that exits at once) skips its checked teardown. */
static char base[PATH_MAX] __attribute__((unused));

static inline void base_setup(void) {
        temp_dir_make(base);
}

static inline void base_teardown(void) {
        temp_dir_remove(base);
}

/* A fresh directory under the base; RET holds PATH_MAX bytes. */
static inline void test_dir_make(char *ret) {
        pathf(ret, "%s/t-XXXXXX", base);
        ck_assert_ptr_nonnull(mkdtemp(ret));
}

static inline void hex_of(const uint8_t *in, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", in[i]);
}
