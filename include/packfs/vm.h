/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The QEMU backend: runs build steps that need a running Linux and a real block
 * device inside a small helper VM, in the manner of Guix's
 * expression->derivation-in-linux-vm.
 *
 * The helper boots a host kernel (the newest /boot/vmlinuz-*, or the one
 * configured) with an initramfs packfs writes itself: busybox-static, the
 * kernel modules it needs (virtio, 9p, ext4, resolved through the kernel's
 * modules.dep), an init script and the caller's script. The host's root is
 * visible read-only at /host (virtio-9p), so the script can `chroot /host` to
 * run host tools; the caller's disk images are /dev/vda, /dev/vdb, ... The
 * guest reports the script's exit status on its serial console, which is
 * logged to a file; nothing else crosses back.
 *
 * Accelerator: KVM when /dev/kvm opens *and* a probe boot under KVM reaches the
 * helper's init within PF_VM_PROBE_TIMEOUT seconds (some machines have a
 * /dev/kvm whose guests hang), TCG otherwise. The probe runs once per process
 * and its answer is kept in STATE_DIR (the cache directory) for later ones.
 *
 * Failures are errors, never a half-done disk the caller could mistake for a
 * finished one: no QEMU or kernel (-ENOENT, logged), a script that fails
 * (-EIO, with the guest's last log lines in the log), a helper that does not
 * finish in time (killed; -ETIMEDOUT), cancellation (cancel.h: killed;
 * -ECANCELED). Reentrant: each run has its own temporary files and process.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define PF_VM_PROBE_TIMEOUT 20
#define PF_VM_DEFAULT_TIMEOUT 900

typedef struct pf_vm_options {
        const char *kernel;     /* NULL: the newest /boot/vmlinuz-* */
        unsigned memory_mib;    /* 0: 512 */
        unsigned timeout_s;     /* 0: PF_VM_DEFAULT_TIMEOUT */
        const char *state_dir;  /* keeps the accelerator probe's answer; may be NULL */
        const char *tmp_dir;    /* for the initramfs and the log; NULL: $TMPDIR or /tmp */
} pf_vm_options;

/* The helper kernel O names, or the host's newest: malloc'd path in *ret. */
int pf_vm_helper_kernel(const pf_vm_options *o, char **ret);

/* "kvm" or "tcg", as described above (probing at most once per process). */
const char *pf_vm_accelerator(const pf_vm_options *o);

/* Runs SCRIPT (busybox sh, `set -e` is the script's to say) in the helper, with
 * DISKS (raw image files, written in place) attached as /dev/vda, /dev/vdb, ...
 * WHAT names the run in log lines. 0 when the script exits 0. */
int pf_vm_run(const pf_vm_options *o, const char *what, const char *script, const char *const *disks,
              size_t n_disks);

/* The kernel release a bzImage announces in its setup header ("6.1.0-57-amd64"),
 * malloc'd in *ret: it names the modules directory. -EINVAL if PATH is not one. */
int pf_vm_kernel_release(const char *path, char **ret);

/* The order in which MODULES (names as modinfo gives them, "virtio_blk") and
 * what they depend on must be loaded, from MODULES_DEP_TEXT (the contents of
 * modules.dep): a NULL-terminated vector of paths relative to the modules
 * directory, dependencies first, each once (pf_strv_free()). Modules that are
 * not listed are taken to be built in. Pure; exposed for tests. */
int pf_vm_module_order(const char *modules_dep_text, const char *const *modules, char ***ret);

/* `packfs run-vm`: replaces the process with QEMU booting DISK_FD (an open
 * image of FORMAT, "qcow2" or "raw") with the accelerator chosen as above,
 * O's memory and CPUS, the serial console on the terminal and -snapshot, so the
 * image is never written; EXTRA (NULL-terminated) is appended to QEMU's
 * arguments. Returns only on failure. */
int pf_vm_boot(const pf_vm_options *o, int disk_fd, const char *format, unsigned cpus, char *const *extra);
