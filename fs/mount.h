/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "packs.h"

/* Mounts PACKS at MOUNTPOINT and serves it until unmounted. FUSE_OPTS is a
 * comma-separated list of -o options (may be NULL). Daemonizes unless FOREGROUND.
 * LIST_ALL (--list all) lists files not encoded yet in view directories too.
 * Returns 0 after a clean unmount, negative errno if it could not mount. */
int pf_mount_run(pf_packs *packs, const char *mountpoint, const char *fuse_opts, bool foreground,
                 bool debug, bool list_all);
