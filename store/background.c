/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "packfs/background.h"
#include "packfs/cancel.h"
#include "packfs/log.h"

/* From linux/ioprio.h, which older libcs do not wrap. */
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_CLASS_BE 2
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_VALUE(class, data) (((class) << IOPRIO_CLASS_SHIFT) | (data))

/* -1: not known yet (threads start with what their creator had). */
static __thread int thread_background = -1;

/* Leaving SCHED_IDLE needs root or an RLIMIT_NICE that allows nice 0: a
 * thread that could not come back never goes (it keeps the idle I/O class,
 * which anyone may leave, and the pauses for readers). */
static pthread_once_t may_idle_once = PTHREAD_ONCE_INIT;
static bool may_idle;

static void may_idle_init(void) {
        struct rlimit rl;

        may_idle = geteuid() == 0 || (getrlimit(RLIMIT_NICE, &rl) == 0 && rl.rlim_cur >= 20);
}

/* 0, or -errno if the thread's CPU policy could not be set as asked. */
static int apply(bool background) {
        struct sched_param param = { .sched_priority = 0 };
        /* Normal best-effort I/O at the default level (4) on the way back. */
        int ioprio = background ? IOPRIO_VALUE(IOPRIO_CLASS_IDLE, 0) : IOPRIO_VALUE(IOPRIO_CLASS_BE, 4);
        int r = 0;

        pthread_once(&may_idle_once, may_idle_init);
        /* With pid 0 both apply to the calling thread only (Linux). */
        if ((may_idle || !background) && sched_setscheduler(0, background ? SCHED_IDLE : SCHED_OTHER, &param) < 0) {
                r = -errno;
                log_debug("background: cannot change the CPU policy: %s", strerror(errno));
        }
        if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, ioprio) < 0)
                log_debug("background: cannot change the I/O priority: %s", strerror(errno));
        return r;
}

bool pf_background_current(void) {
        /* Inherited state is unknown: look once. */
        if (thread_background < 0)
                thread_background = sched_getscheduler(0) == SCHED_IDLE;
        return thread_background;
}

void pf_background_set(bool background) {
        if (pf_background_current() == background)
                return;
        /* Believe the change only once made: a thread still idle must know. */
        if (apply(background) >= 0)
                thread_background = background;
}

/* When a reader's request was last served (CLOCK_MONOTONIC_COARSE, ns). */
static int64_t last_foreground_ns; /* atomic */

static int64_t coarse_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void pf_background_note_foreground(void) {
        __atomic_store_n(&last_foreground_ns, coarse_now_ns(), __ATOMIC_RELAXED);
}

void pf_background_wait_quiet(void) {
        const int64_t quiet = PF_BACKGROUND_QUIET_MS * 1000000LL;

        while (!pf_cancel_requested()) {
                int64_t since = coarse_now_ns() - __atomic_load_n(&last_foreground_ns, __ATOMIC_RELAXED);
                if (since >= quiet)
                        return;
                struct timespec pause = { .tv_nsec = (long) (quiet - since) };
                nanosleep(&pause, NULL);
        }
}

void pf_background_follow(const bool *flag) {
        if (flag)
                pf_background_set(__atomic_load_n(flag, __ATOMIC_ACQUIRE));
}
