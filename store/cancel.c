/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "packfs/cancel.h"
#include "packfs/macro.h"

static volatile sig_atomic_t cancel_signal;
static int cancelled; /* atomic */

void pf_cancel_request(void) {
        __atomic_store_n(&cancelled, 1, __ATOMIC_RELEASE);
}

bool pf_cancel_requested(void) {
        return __atomic_load_n(&cancelled, __ATOMIC_ACQUIRE);
}

int pf_cancel_signal(void) {
        return cancel_signal;
}

static void on_signal(int sig) {
        cancel_signal = sig;
        pf_cancel_request();
}

int pf_cancel_on_signals(void) {
        struct sigaction sa = { .sa_handler = on_signal };

        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
                return negative_errno();
        return 0;
}
