/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The format interface. A format turns a view (a closure plus the profile's
 * options) into a plan (plan.h). Formats are registered in one table
 * (formats/registry.c); the filesystem and `packfs build` only ever go through
 * pf_format_find()/pf_formats(), so adding a format touches formats/ alone.
 *
 * plan() must be deterministic: the same view gives the same plan on any machine.
 * It may be called from any thread; it reads the store (lstat, readlink) but
 * never file contents.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "packfs/cache.h"
#include "packfs/codec.h"
#include "packfs/config.h"
#include "packfs/plan.h"
#include "packfs/store.h"
#include "packfs/tree.h"

typedef struct pf_format pf_format;
typedef struct pf_view pf_view;

struct pf_view {
        const char *store_dir;
        pf_store *store;                /* for formats that need more than the closure */
        const pf_closure *closure;      /* closure->root is the profile's item */
        const char *name;               /* the view's name: profile path or item basename */
        const pf_options *options;
        pf_cache *cache;                /* NULL: encodings are not cached */
        /* The plan of another format over this view, through the caller's plan cache. */
        int (*plan_of)(const pf_view *view, const pf_format *format, pf_plan **ret);
        void *planner;                  /* plan_of's own data */
        /* NULL, or true while this plan is made ahead of use (the `prepare`
         * option) and nobody waits for it: encoders then work at idle priority
         * (background.h), and go back to normal once it turns false. */
        const bool *background;
};

struct pf_format {
        const char *file_name;          /* name in a view directory, e.g. "pack.tar" */
        int (*plan)(const pf_format *self, const pf_view *view, pf_plan **ret);
        /* Optional: writes the pack to FD while it is being made, for `packfs
         * build -o -` (no size is needed there, so nothing waits for the end). */
        int (*stream)(const pf_format *self, const pf_view *view, int fd);
        /* Optional, for formats with segments (plan.h): the plan with only the
         * segments WANT accepts (by identity) materialized; the others are zeros
         * of their exact length, never to be read. Same size, same segments.
         * Lets a compressed variant cut its units, and encode the missing ones,
         * without building what it finds in the cache. */
        int (*plan_sparse)(const pf_format *self, const pf_view *view,
                           bool (*want)(void *userdata, const uint8_t identity[32]), void *userdata,
                           pf_plan **ret);
        /* (A plan_sparse() with WANT pf_format_want_none is a sizing plan:
         * only its size is used, it is never read.) */
        /* For formats whose size is only known once encoded: 1 if plan() would
         * answer from the cache now, without encoding (and without pinning or
         * opening anything), 0 if not, or a negative errno. Formats without it
         * are planned from metadata alone and always cheap to stat, so a
         * directory listing shows them; the others only once they are ready
         * (SPEC guarantee 2, `--list ready`). */
        int (*cached)(const pf_format *self, const pf_view *view);
        /* Optional, for a format shown as a directory of a view (oci/): the
         * files below it (tree.h), which plan() makes and keeps as its plan's
         * data (the directory's own plan has no bytes). */
        const pf_tree *(*tree)(const pf_plan *plan);
        /* Built by a helper VM, in minutes, and only for profiles that boot
         * (disk images): `packfs warm VIEW` leaves it out; warm VIEW/FILE,
         * `prepare` or a read builds it. */
        bool warm_by_name_only;
        /* Optional, for a format whose plan() reads every store file, not
         * only their metadata (pack.rpm's digests), and whose sizing plan
         * (plan_sparse() with pf_format_want_none) has all its bytes but
         * those: makes a sizing plan the plan readers get, by that reading.
         * A mount's `stat` then reads no file, even without a cache, and the
         * open after it does not plan again. */
        int (*complete)(const pf_format *self, const pf_view *view, pf_plan *sizing_plan);
        /* Its bytes hold the view's name (an image's tag, a package's name):
         * two views of one closure ("demo", ".store/<item>") get two packs, so
         * its plans and cached encodings are keyed on the name as well
         * (pf_view_name_id()). A compressed variant follows its base. */
        bool named;
        /* Compressed variants (compressed.h): the format they compress, with what. */
        const pf_format *base;
        const pf_codec *codec;
};

/* The WANT of a sizing plan: no segment (see plan_sparse). */
bool pf_format_want_none(void *userdata, const uint8_t identity[32]);

/* Whether FORMAT (or the format it compresses) is named. */
bool pf_format_named(const pf_format *format);
/* What FORMAT's bytes over V depend on of V's name, in 32 bytes: the SHA-256
 * of the name if FORMAT (or the format it compresses) is named, else zeros. */
void pf_view_name_id(const pf_view *v, const pf_format *format, uint8_t id[32]);

/* All registered formats, in the order a view directory lists them. */
const pf_format *const *pf_formats(size_t *ret_n);
/* The format serving FILE_NAME, or NULL. */
const pf_format *pf_format_find(const char *file_name);

/* Formats, registered in formats/registry.c. */
extern const pf_format pf_format_closure;
extern const pf_format pf_format_tar;
extern const pf_format pf_format_tar_gz;
extern const pf_format pf_format_tar_xz;
extern const pf_format pf_format_tar_zst;
extern const pf_format pf_format_docker;
extern const pf_format pf_format_docker_gz;
extern const pf_format pf_format_docker_xz;
extern const pf_format pf_format_docker_zst;
extern const pf_format pf_format_oci;
extern const pf_format pf_format_squashfs;
extern const pf_format pf_format_deb;
extern const pf_format pf_format_rpm;
extern const pf_format pf_format_disk_raw;
extern const pf_format pf_format_disk_qcow2;
extern const pf_format pf_format_disk_iso;
