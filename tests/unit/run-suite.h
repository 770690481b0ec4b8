/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The end of every unit test's main(). */
#pragma once

#include <check.h>
#include <stdlib.h>

/* Runs suite S (with the test cases added to it) and frees it; returns the
 * process's exit status. */
static inline int run_suite(Suite *s) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
