/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>

#include "packfs/cancel.h"
#include "packfs/io.h"
#include "packfs/macro.h"

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
