/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "packfs/hugemem.h"
#include "run-suite.h"

/* Every size on both sides of the malloc()/mmap() boundary gives memory that is
 * aligned as malloc()'s, writable end to end, and separate from the others. */
START_TEST(test_hugemem_sizes) {
        static const size_t sizes[] = {
                0, 1, 15, 4096, PF_HUGEMEM_MIN - 1, PF_HUGEMEM_MIN, PF_HUGEMEM_MIN + 1,
                2 * 1024 * 1024, 5 * 1024 * 1024 + 3,
        };
        uint8_t *blocks[sizeof(sizes) / sizeof(sizes[0])];
        size_t n = sizeof(sizes) / sizeof(sizes[0]);

        for (size_t i = 0; i < n; i++) {
                blocks[i] = pf_hugemem_alloc(sizes[i]);
                ck_assert_ptr_nonnull(blocks[i]);
                ck_assert_uint_eq((uintptr_t) blocks[i] % 16, 0);
                memset(blocks[i], (int) i + 1, sizes[i]);
        }
        for (size_t i = 0; i < n; i++) {
                for (size_t k = 0; k < sizes[i]; k += 1 + k / 7)
                        ck_assert_uint_eq(blocks[i][k], i + 1);
                if (sizes[i] > 0)
                        ck_assert_uint_eq(blocks[i][sizes[i] - 1], i + 1);
                pf_hugemem_free(blocks[i]);
        }
        pf_hugemem_free(NULL);
}
END_TEST

START_TEST(test_hugemem_impossible) {
        ck_assert_ptr_null(pf_hugemem_alloc(SIZE_MAX));
        ck_assert_ptr_null(pf_hugemem_alloc(SIZE_MAX - 100));
        ck_assert_ptr_null(pf_hugemem_alloc((size_t) 1 << 62));
}
END_TEST

int main(void) {
        Suite *s = suite_create("hugemem");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_hugemem_sizes);
        tcase_add_test(tc, test_hugemem_impossible);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
