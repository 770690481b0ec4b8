/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Per-profile pack options from an INI file (--config):
 *
 *   [*]                      defaults for every profile
 *   symlinks = /bin=bin /etc/profile=etc/profile
 *   [web-*]                  a glob (fnmatch) over profile names
 *   entry-point = bin/httpd
 *   [demo]                   one profile
 *   localstatedir = true
 *   max-layers = 100         docker.tar's layers at most (3-125)
 *   xz-level = 9             compression levels: gzip-level (1-9), xz-level (0-9),
 *                            zstd-level (1-19); unset means the codec's default
 *   prepare = pack.tar.zst   files a mount encodes ahead, in the background
 *   disk-size = 2G           disk images: size (default: from the closure's narSize),
 *   kernel = boot/bzImage    kernel, initrd and init relative to the profile
 *   initrd = boot/initrd     (defaults: boot/vmlinuz or boot/bzImage, boot/initrd
 *   init = bin/init          if there, bin/init), kernel-arguments (appended),
 *   kernel-arguments = quiet helper-kernel (the helper VM's: default the newest
 *   vm-memory = 512          /boot/vmlinuz-*), vm-memory (MiB) and vm-cpus for
 *   vm-cpus = 1              the helper and `packfs run-vm`; helper-timeout
 *   helper-timeout = 900     (seconds) bounds a helper VM's run
 *   deb-control = /etc/packfs/control   pack.deb's control file, postinst script and
 *   deb-postinst = /etc/packfs/postinst triggers file: absolute paths of files read
 *   deb-triggers = /etc/packfs/triggers when the config is loaded (at most 1 MiB,
 *                            text; a control file needs Package, Version and
 *                            Architecture; a postinst starts with "#!")
 *   squashfs-compressor = xz pack.squashfs: gzip, xz, zstd, lz4 or lzo, and a
 *   squashfs-level = 6       level in that compressor's range (unset: the
 *                            format's defaults, formats/squashfs.c)
 *   rpm-prein = /etc/x.sh    pack.rpm's scripts (rpm-prein, rpm-postin, rpm-preun,
 *                            rpm-postun): files read when the config is loaded,
 *                            their contents kept (at most 1 MiB each)
 *   relocatable = true       pack.rpm may be installed with --prefix (PREFIXES /)
 *
 * Sections apply in the order [*], globs (in file order), then the exact name, each
 * overriding the keys it sets. Unknown keys and bad values fail the load with
 * -EINVAL and a log line naming file, line and key. Options are part of a pack's
 * identity: pf_options.id is a digest of their canonical form. `prepare` says
 * when bytes are made, not which, and is not part of it; nor are helper-kernel,
 * helper-timeout, vm-memory and vm-cpus, which change no pack's bytes.
 *
 * A pf_config is immutable after pf_config_load() and may be shared by threads.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pf_symlink_spec {
        char *source;   /* absolute path in the pack, clean ("/bin") */
        char *target;   /* relative to the profile, clean ("bin") */
} pf_symlink_spec;

typedef struct pf_options {
        pf_symlink_spec *symlinks;
        size_t n_symlinks;
        char *entry_point;      /* relative to the profile, or NULL */
        bool localstatedir;
        int max_layers;         /* docker.tar */
        /* Disk images (disk.raw, disk.qcow2, disk.iso). KERNEL, INITRD and INIT are
         * relative to the profile (NULL: boot/vmlinuz or boot/bzImage, boot/initrd,
         * bin/init); DISK_SIZE 0: estimated from the closure's narSize. */
        uint64_t disk_size;
        char *kernel, *initrd, *init;
        char *kernel_arguments; /* appended to the kernel command line, or NULL */
        char *helper_kernel;    /* the helper VM's kernel, or NULL: the host's newest */
        int vm_memory;          /* MiB, for the helper and `packfs run-vm` */
        int vm_cpus;            /* `packfs run-vm` */
        int helper_timeout;     /* seconds a helper VM may take */
        int gzip_level, xz_level, zstd_level;  /* -1: the codec's default */
        /* pack.deb: the contents of the files deb-control, deb-postinst and
         * deb-triggers named when the config was loaded, or NULL. */
        char *deb_control, *deb_postinst, *deb_triggers;
        char *squashfs_compressor;      /* pack.squashfs: NULL for the default */
        int squashfs_level;             /* -1: the compressor's default there */
        /* pack.rpm: its scripts' text (NULL: none), and PREFIXES. */
        char *rpm_prein, *rpm_postin, *rpm_preun, *rpm_postun;
        bool relocatable;
        char **prepare;         /* file names to encode ahead of use */
        size_t n_prepare;
        uint8_t id[32];         /* sha256 of the canonical form (without prepare) */
} pf_options;

#define PF_DEFAULT_MAX_LAYERS 100
#define PF_DEFAULT_VM_MEMORY 512
#define PF_DEFAULT_HELPER_TIMEOUT 900

typedef struct pf_config pf_config;

/* Loads PATH; PATH NULL gives an empty configuration. Free with pf_config_free(). */
int pf_config_load(const char *path, pf_config **ret);
/* Parses an in-memory INI text; NAME is used in error messages. */
int pf_config_parse_string(const char *text, const char *name, pf_config **ret);
void pf_config_free(pf_config *c);

/* Resolves the options for profile PROFILE_NAME into *ret (caller frees with
 * pf_options_done()). */
int pf_config_options_for(const pf_config *c, const char *profile_name, pf_options *ret);
void pf_options_done(pf_options *o);

/* Calls FN for every file name a `prepare` option of any section lists (so a
 * caller that knows the formats can refuse unknown names at start-up); stops at
 * FN's first negative return and returns it. */
int pf_config_foreach_prepare(const pf_config *c, int (*fn)(void *userdata, const char *name), void *userdata);

/* The level set for codec CODEC_NAME ("gzip", "xz", "zstd"), or -1. */
int pf_options_level(const pf_options *o, const char *codec_name);
