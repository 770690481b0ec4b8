/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <stdarg.h>
#include <string.h>

#include "packfs/log.h"

static enum pf_log_target log_target = PF_LOG_STDERR;
static int log_max_level = LOG_INFO;

void pf_log_open(enum pf_log_target target, int max_level) {
        log_target = target;
        log_max_level = max_level;
        if (target == PF_LOG_SYSLOG)
                openlog("packfs", LOG_PID, LOG_DAEMON);
}

static void log_va(int level, const char *suffix, const char *fmt, va_list ap) {
        char buf[2048];

        if (level > log_max_level)
                return;
        vsnprintf(buf, sizeof(buf), fmt, ap);
        if (log_target == PF_LOG_SYSLOG)
                syslog(level, "%s%s", buf, suffix ? suffix : "");
        else
                /* One fprintf per line so lines from different threads do not interleave. */
                fprintf(stderr, "packfs: %s%s\n", buf, suffix ? suffix : "");
}

void pf_log(int level, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_va(level, NULL, fmt, ap);
        va_end(ap);
}

int pf_log_errno(int level, int r, const char *fmt, ...) {
        char suffix[256];
        va_list ap;

        snprintf(suffix, sizeof(suffix), ": %s", strerror(r < 0 ? -r : r));
        va_start(ap, fmt);
        log_va(level, suffix, fmt, ap);
        va_end(ap);
        return r;
}
