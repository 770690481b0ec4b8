/* SPDX-License-Identifier: GPL-3.0-or-later */
/* pack.rpm: header and cpio encoding against known bytes, and a planned package
 * read back: exact size, structure, digests (and rpm -K when rpm is there). */
#include <check.h>
#include <errno.h>
#include <gcrypt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "packfs/config.h"
#include "packfs/format.h"
#include "packfs/log.h"
#include "packfs/plan.h"
#include "packfs/store.h"
#include "packfs/storewrite.h"
#include "fixture-tree.h"
#include "rpm.h"
#include "run-suite.h"

static char tmp[PATH_MAX];

static void setup(void) {
        test_dir_make(tmp);
        pf_log_open(PF_LOG_STDERR, LOG_CRIT);
}

static void teardown(void) {
        temp_dir_remove(tmp);
}

static uint64_t int16s(void *u, size_t i) {
        return ((const uint16_t *) u)[i];
}

START_TEST(test_header_bytes) {
        static const uint8_t expected[] = {
                0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0,     /* magic */
                0, 0, 0, 4, 0, 0, 0, 0x1c,              /* 4 entries, 28 bytes of data */
                0, 0, 0, 0x3f, 0, 0, 0, 7, 0, 0, 0, 0x0c, 0, 0, 0, 0x10,        /* region: trailer at 12 */
                0, 0, 0x03, 0xe8, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1,           /* NAME, STRING at 0 */
                0, 0, 0x04, 0x06, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 2,           /* FILEMODES, INT16 at 4 */
                0, 0, 0x13, 0x93, 0, 0, 0, 4, 0, 0, 0, 8, 0, 0, 0, 1,           /* FILEDIGESTALGO, INT32 at 8 */
                'a', 'b', 0, 0, 0x01, 0xed, 0x41, 0xed, 0, 0, 0, 8,             /* data, aligned */
                0, 0, 0, 0x3f, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xc0, 0, 0, 0, 0x10, /* trailer: -64 */
        };
        uint16_t modes[] = { 0x1ed, 0x41ed };
        rpm_header h = {};
        uint8_t *blob = NULL;
        size_t size = 0;

        rpm_header_add_string(&h, 1000, RPM_STRING, "ab");
        rpm_header_add_ints(&h, 1030, RPM_INT16, 2, int16s, modes);
        rpm_header_add_int(&h, 5011, RPM_INT32, 8);
        ck_assert_int_eq(rpm_header_finish(&h, 63, &blob, &size), 0);
        ck_assert_uint_eq(size, sizeof(expected));
        ck_assert_mem_eq(blob, expected, sizeof(expected));
        free(blob);

        /* An INT64 after a string is aligned to 8. */
        rpm_header_add_string(&h, 269, RPM_STRING, "x");
        rpm_header_add_int(&h, 270, RPM_INT64, UINT64_C(0x0102030405060708));
        ck_assert_int_eq(rpm_header_finish(&h, 62, &blob, &size), 0);
        ck_assert_uint_eq(size, 16 + 3 * 16 + 16 + 16);
        static const uint8_t data[] = { 'x', 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8 };
        ck_assert_mem_eq(blob + 16 + 3 * 16, data, sizeof(data));
        free(blob);
}
END_TEST

START_TEST(test_header_order) {
        rpm_header h = {};
        uint8_t *blob = NULL;
        size_t size = 0;

        rpm_header_add_string(&h, 1001, RPM_STRING, "b");
        rpm_header_add_string(&h, 1000, RPM_STRING, "a");
        ck_assert_int_eq(rpm_header_finish(&h, 63, &blob, &size), -EINVAL);
        ck_assert_ptr_null(blob);
}
END_TEST

START_TEST(test_cpio) {
        static const char newc[] = "070701"
                                   "00000001000081a4000000000000000000000001000000010000000500000000"
                                   "0000000000000000000000000000000400000000"
                                   "./a";
        uint8_t buf[CPIO_NEWC_SIZE + 16];

        ck_assert_uint_eq(cpio_newc_length(3), 116);
        ck_assert_uint_eq(cpio_newc_length(1), 112);
        ck_assert_uint_eq(cpio_newc_length(2), 116);
        memset(buf, 0xaa, sizeof(buf));
        cpio_newc_write(buf, "./a", 3, 1, S_IFREG | 0644, 1, 1, 5);
        ck_assert_mem_eq(buf, newc, sizeof(newc) - 1);
        ck_assert_int_eq(buf[113], 0);
        ck_assert_int_eq(buf[114], 0);
        ck_assert_int_eq(buf[115], 0);
        ck_assert_int_eq(buf[116], 0xaa);

        cpio_stripped_write(buf, 42);
        ck_assert_mem_eq(buf, "07070X0000002a\0\0", 16);
        ck_assert_uint_eq(cpio_pad(5), 3);
        ck_assert_uint_eq(cpio_pad(8), 0);
}
END_TEST

START_TEST(test_lead) {
        uint8_t lead[RPM_LEAD_SIZE];

        rpm_lead_write("hello-2.12-0", 1, lead);
        ck_assert_mem_eq(lead, "\xed\xab\xee\xdb\x03\x00\x00\x00\x00\x01hello-2.12-0\0", 23);
        ck_assert_int_eq(lead[77], 1);
        ck_assert_int_eq(lead[79], 5);
        ck_assert_int_eq(lead[95], 0);
}
END_TEST

static uint32_t be32_at(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* The size of the header at P: preamble, index, data. */
static size_t header_size_at(const uint8_t *p) {
        ck_assert_mem_eq(p, RPM_HEADER_MAGIC, 8);
        return 16 + 16 * (size_t) be32_at(p + 8) + be32_at(p + 12);
}

START_TEST(test_plan) {
        char store[PATH_MAX], db[PATH_MAX], src[PATH_MAX], hex[65], path[PATH_MAX + 64];
        char *item = NULL;
        pf_store *s = NULL;
        pf_closure *c = NULL;
        pf_config *config = NULL;
        pf_options options = {};
        pf_plan *plan = NULL;
        uint8_t digest[32];

        pathf(store, "%s/store", tmp);
        pathf(db, "%s/db.sqlite", tmp);
        ck_assert_int_eq(pf_store_init(store, db), 0);
        fixture_mkdir(tmp, "src");
        fixture_mkdir(tmp, "src/bin");
        fixture_write_str(tmp, "src/bin/hello", "#!/bin/sh\necho hello\n", 0755);
        fixture_symlink(tmp, "src/bin/hi", "hello");
        fixture_write_str(tmp, "src/odd", "12345", 0644);
        pathf(src, "%s/src", tmp);
        ck_assert_int_eq(pf_store_add(store, db, src, &item), 0);
        pathf(path, "%s/post.sh", tmp);
        fixture_write_str(tmp, "post.sh", "echo installed\n", 0644);
        char ini[2 * PATH_MAX];
        snprintf(ini, sizeof(ini), "[*]\nrpm-postin = %s\nrelocatable = yes\n", path);
        ck_assert_int_eq(pf_config_parse_string(ini, "test", &config), 0);
        ck_assert_int_eq(pf_config_options_for(config, "demo", &options), 0);
        ck_assert_str_eq(options.rpm_postin, "echo installed\n");
        ck_assert(options.relocatable);
        ck_assert_int_eq(pf_store_open(store, db, &s), 0);
        ck_assert_int_eq(pf_store_closure(s, item, &c), 0);
        pf_view view = { .store_dir = store, .store = s, .closure = c, .name = "demo", .options = &options };

        ck_assert_ptr_eq(pf_format_find("pack.rpm"), &pf_format_rpm);
        ck_assert_int_eq(pf_format_rpm.plan(&pf_format_rpm, &view, &plan), 0);
        size_t size = (size_t) pf_plan_size(plan), done = 0, chunk = 1;
        uint8_t *buf = malloc(size);
        ck_assert_ptr_nonnull(buf);
        /* From the end first: the payload needs no digest. */
        ck_assert_int_eq(pf_plan_pread(plan, buf + size - 10, 10, size - 10), 10);
        while (done < size) {
                ssize_t n = pf_plan_pread(plan, buf + done, chunk, done);
                ck_assert_int_gt(n, 0);
                done += (size_t) n;
                chunk = chunk * 3 + 5;
        }
        ck_assert_int_eq(pf_plan_pread(plan, buf, 1, size), 0);

        ck_assert_mem_eq(buf, "\xed\xab\xee\xdb", 4);
        size_t sig = header_size_at(buf + RPM_LEAD_SIZE);
        size_t main_at = RPM_LEAD_SIZE + sig + (8 - sig % 8) % 8;
        size_t payload_at = main_at + header_size_at(buf + main_at);
        ck_assert_mem_eq(buf + payload_at, "070701", 6);
        ck_assert_mem_eq(buf + size - 124, "070701", 6);
        ck_assert_mem_eq(buf + size - 14, "TRAILER!!!", 10);
        /* The payload's digest is in the header, its header's in the signature. */
        gcry_md_hash_buffer(GCRY_MD_SHA256, digest, buf + payload_at, size - payload_at);
        hex_of(digest, 32, hex);
        ck_assert_ptr_nonnull(memmem(buf + main_at, payload_at - main_at, hex, 64));
        gcry_md_hash_buffer(GCRY_MD_SHA256, digest, buf + main_at, payload_at - main_at);
        hex_of(digest, 32, hex);
        ck_assert_ptr_nonnull(memmem(buf + RPM_LEAD_SIZE, sig, hex, 64));
        /* A file's digest, and the script. */
        gcry_md_hash_buffer(GCRY_MD_SHA256, digest, "12345", 5);
        hex_of(digest, 32, hex);
        ck_assert_ptr_nonnull(memmem(buf + main_at, payload_at - main_at, hex, 64));
        ck_assert_ptr_nonnull(memmem(buf + main_at, payload_at - main_at, "echo installed\n", 16));
        /* Every member's name, "./" and its path, in order. */
        pathf(path, ".%s/bin/hello", item);
        char *hello = memmem(buf + payload_at, size - payload_at, path, strlen(path) + 1);
        pathf(path, ".%s/odd", item);
        char *odd = memmem(buf + payload_at, size - payload_at, path, strlen(path) + 1);
        ck_assert_ptr_nonnull(hello);
        ck_assert_ptr_nonnull(odd);
        ck_assert(hello < odd);

        pathf(path, "%s/demo.rpm", tmp);
        FILE *f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(buf, 1, size, f), size);
        fclose(f);
        if (system("command -v rpm >/dev/null 2>&1") == 0) {
                char cmd[PATH_MAX + 128];
                snprintf(cmd, sizeof(cmd), "rpm -K --nosignature '%s' | grep -q 'digests OK'", path);
                ck_assert_int_eq(system(cmd), 0);
        }
        free(buf);
        pf_plan_unref(plan);
        pf_closure_unref(c);
        pf_store_free(s);
        pf_options_done(&options);
        pf_config_free(config);
        free(item);
}
END_TEST

/* A file of 4 GiB or more: every member gets a stripped entry (the file's
 * index), the trailer stays newc, and the big file's bytes come from the store
 * file. Planned over a sparse file grown in the store after it was added (the
 * plan reads metadata only; nothing here needs a digest). */
START_TEST(test_plan_large) {
        char store[PATH_MAX], db[PATH_MAX], src[PATH_MAX], path[PATH_MAX + 64];
        const uint64_t big = (UINT64_C(4) << 30) + 1;
        char *item = NULL;
        pf_store *s = NULL;
        pf_closure *c = NULL;
        pf_config *config = NULL;
        pf_options options = {};
        pf_plan *plan = NULL;
        size_t n_headers = 0, n_big = 0;
        uint8_t head[16], tail[124];

        pathf(store, "%s/store", tmp);
        pathf(db, "%s/db.sqlite", tmp);
        ck_assert_int_eq(pf_store_init(store, db), 0);
        fixture_mkdir(tmp, "src");
        fixture_write_str(tmp, "src/big", "x", 0644);
        fixture_write_str(tmp, "src/small", "small\n", 0644);
        pathf(src, "%s/src", tmp);
        ck_assert_int_eq(pf_store_add(store, db, src, &item), 0);
        pathf(path, "%s/big", item);
        ck_assert_int_eq(chmod(item, 0755), 0);
        ck_assert_int_eq(chmod(path, 0644), 0);
        ck_assert_int_eq(truncate(path, (off_t) big), 0);
        ck_assert_int_eq(pf_config_parse_string("", "test", &config), 0);
        ck_assert_int_eq(pf_config_options_for(config, "demo", &options), 0);
        ck_assert_int_eq(pf_store_open(store, db, &s), 0);
        ck_assert_int_eq(pf_store_closure(s, item, &c), 0);
        pf_view view = { .store_dir = store, .store = s, .closure = c, .name = "demo", .options = &options };

        ck_assert_int_eq(pf_format_rpm.plan(&pf_format_rpm, &view, &plan), 0);
        ck_assert_uint_gt(pf_plan_size(plan), big);
        /* The cpio headers: generated extents after the two headers (the
         * signature and the main header are the first two). */
        size_t generated = 0;
        for (size_t i = 0; i < pf_plan_n_extents(plan); i++) {
                const pf_extent *e = pf_plan_extent(plan, i);
                if (e->kind == PF_EXTENT_FILE && e->length == big)
                        n_big++;
                if (e->kind != PF_EXTENT_GENERATED || generated++ < 2)
                        continue;
                ck_assert_int_eq(pf_plan_pread(plan, head, sizeof(head), e->offset), (ssize_t) sizeof(head));
                if (e->length == CPIO_STRIPPED_SIZE) {
                        ck_assert_mem_eq(head, "07070X", 6);
                        n_headers++;
                }
        }
        /* The store's parents below /tmp, the store, the item, big and small. */
        ck_assert_uint_ge(n_headers, 4);
        ck_assert_uint_eq(n_big, 1);
        ck_assert_int_eq(pf_plan_pread(plan, tail, sizeof(tail), pf_plan_size(plan) - sizeof(tail)),
                         (ssize_t) sizeof(tail));
        ck_assert_mem_eq(tail, "070701", 6);
        ck_assert_mem_eq(tail + 110, "TRAILER!!!", 10);

        pf_plan_unref(plan);
        pf_closure_unref(c);
        pf_store_free(s);
        pf_options_done(&options);
        pf_config_free(config);
        free(item);
}
END_TEST

START_TEST(test_config_scripts) {
        pf_config *config = NULL;
        char ini[2 * PATH_MAX];

        ck_assert_int_eq(pf_config_parse_string("[*]\nrpm-prein = relative.sh\n", "test", &config), -EINVAL);
        ck_assert_int_eq(pf_config_parse_string("[*]\nrpm-preun = /nonexistent/x.sh\n", "test", &config), -EINVAL);
        snprintf(ini, sizeof(ini), "[*]\nrpm-postun = %s\n", tmp);
        ck_assert_int_eq(pf_config_parse_string(ini, "test", &config), -EINVAL);
        ck_assert_int_eq(pf_config_parse_string("[*]\nrelocatable = maybe\n", "test", &config), -EINVAL);

        /* Options identity: unchanged unless set. */
        pf_options a = {}, b = {};
        ck_assert_int_eq(pf_config_parse_string("[x]\nrelocatable = no\n", "test", &config), 0);
        ck_assert_int_eq(pf_config_options_for(config, "x", &a), 0);
        ck_assert_int_eq(pf_config_options_for(config, "y", &b), 0);
        ck_assert_mem_eq(a.id, b.id, 32);
        pf_options_done(&a);
        pf_options_done(&b);
        pf_config_free(config);
        ck_assert_int_eq(pf_config_parse_string("[x]\nrelocatable = yes\n", "test", &config), 0);
        ck_assert_int_eq(pf_config_options_for(config, "x", &a), 0);
        ck_assert_int_eq(pf_config_options_for(config, "y", &b), 0);
        ck_assert_mem_ne(a.id, b.id, 32);
        pf_options_done(&a);
        pf_options_done(&b);
        pf_config_free(config);
}
END_TEST

int main(void) {
        Suite *s = suite_create("rpm");
        TCase *tc = tcase_create("rpm");

        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_header_bytes);
        tcase_add_test(tc, test_header_order);
        tcase_add_test(tc, test_cpio);
        tcase_add_test(tc, test_lead);
        tcase_add_test(tc, test_plan);
        tcase_add_test(tc, test_plan_large);
        tcase_add_test(tc, test_config_scripts);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
