/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "packfs/background.h"
#include "packfs/log.h"

/* From linux/ioprio.h, which older libcs do not wrap. */
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_CLASS_BE 2
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_VALUE(class, data) (((class) << IOPRIO_CLASS_SHIFT) | (data))

/* -1: not known yet (threads start with what their creator had). */
static __thread int thread_background = -1;

static void apply(bool background) {
        struct sched_param param = { .sched_priority = 0 };
        /* Normal best-effort I/O at the default level (4) on the way back. */
        int ioprio = background ? IOPRIO_VALUE(IOPRIO_CLASS_IDLE, 0) : IOPRIO_VALUE(IOPRIO_CLASS_BE, 4);

        /* With pid 0 both apply to the calling thread only (Linux). */
        if (sched_setscheduler(0, background ? SCHED_IDLE : SCHED_OTHER, &param) < 0)
                log_debug("background: cannot change the CPU policy: %s", strerror(errno));
        if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, ioprio) < 0)
                log_debug("background: cannot change the I/O priority: %s", strerror(errno));
}

void pf_background_set(bool background) {
        if (thread_background == (int) background)
                return;
        if (thread_background < 0) {
                /* Inherited state is unknown: look once. */
                int policy = sched_getscheduler(0);
                thread_background = policy == SCHED_IDLE;
                if (thread_background == (int) background)
                        return;
        }
        apply(background);
        thread_background = background;
}

void pf_background_follow(const bool *flag) {
        if (flag)
                pf_background_set(__atomic_load_n(flag, __ATOMIC_ACQUIRE));
}
