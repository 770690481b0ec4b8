/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Logging for the daemon and the command line. Before pf_log_open() messages go
 * to stderr; the daemon switches to syslog when it detaches. Thread-safe.
 */
#pragma once

#include <syslog.h>
#include "packfs/macro.h"

enum pf_log_target { PF_LOG_STDERR, PF_LOG_SYSLOG };

void pf_log_open(enum pf_log_target target, int max_level);
void pf_log(int level, const char *fmt, ...) _printf_(2, 3);

/* Logs "fmt: strerror(-r)" and returns r, so a caller can log and fail in one step. */
int pf_log_errno(int level, int r, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) pf_log(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) pf_log(LOG_INFO, __VA_ARGS__)
#define log_warning(...) pf_log(LOG_WARNING, __VA_ARGS__)
#define log_error(...) pf_log(LOG_ERR, __VA_ARGS__)
#define log_error_errno(r, ...) pf_log_errno(LOG_ERR, r, __VA_ARGS__)
#define log_warning_errno(r, ...) pf_log_errno(LOG_WARNING, r, __VA_ARGS__)
