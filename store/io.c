/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "packfs/cancel.h"
#include "packfs/io.h"
#include "packfs/macro.h"

double pf_seconds_since(const struct timespec *start) {
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double) (now.tv_sec - start->tv_sec) + (double) (now.tv_nsec - start->tv_nsec) / 1e9;
}

int pf_write_all(int fd, const void *buf, size_t len) {
        const uint8_t *p = buf;

        while (len > 0) {
                ssize_t k = write(fd, p, len);
                if (k < 0 && errno == EINTR) {
                        if (pf_cancel_requested())
                                return -ECANCELED;
                        continue;
                }
                if (k < 0)
                        return negative_errno();
                p += k;
                len -= (size_t) k;
        }
        return 0;
}

unsigned pf_cpu_count(void) {
        cpu_set_t set;
        long n = 0;

        if (sched_getaffinity(0, sizeof(set), &set) == 0)
                n = CPU_COUNT(&set);
        if (n <= 0)
                n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned) n : 1;
}

int pf_wait_child(pid_t pid, unsigned timeout_s) {
        return pf_wait_child_ticking(pid, timeout_s, NULL, NULL);
}

int pf_wait_child_ticking(pid_t pid, unsigned timeout_s, void (*tick)(void *userdata), void *userdata) {
        struct timespec start;
        unsigned polls = 0;
        int status;

        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid)
                        return status;
                if (w < 0 && errno != EINTR)
                        return negative_errno();
                int why = pf_cancel_requested()                                     ? -ECANCELED
                          : timeout_s && pf_seconds_since(&start) > (double) timeout_s ? -ETIMEDOUT
                                                                                     : 0;
                if (why) {
                        kill(pid, SIGKILL);
                        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                                ;
                        return why;
                }
                /* Children here run for seconds to minutes: 20 ms is noise. */
                nanosleep(&(struct timespec) { .tv_nsec = 20 * 1000 * 1000 }, NULL);
                if (tick && ++polls % 10 == 0)
                        tick(userdata);
        }
}
