/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The end of every unit test's main(). */
#pragma once

#include <check.h>
#include <gcrypt.h>
#include <stdlib.h>

/* Runs suite S (with the test cases added to it) and frees it; returns the
 * process's exit status. libgcrypt is initialised first, as packfs's main()
 * does: a test whose first digest is taken in a worker thread (walk batches)
 * would otherwise race libgcrypt's lazy start-up. */
static inline int run_suite(Suite *s) {
        SRunner *sr;
        int failed;

        gcry_check_version(NULL);
        gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
        sr = srunner_create(s);

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
