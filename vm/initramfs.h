/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The helper VM's initramfs (vm.h): a cpio "newc" archive holding a static
 * busybox, the modules KERNEL needs for virtio disks, 9p and ext4 (from
 * /lib/modules/<its release>, decompressed when shipped as .ko.xz or .ko.zst),
 * an init script and SCRIPT. Written to PATH.
 */
#pragma once

/* The modules the helper loads (with their dependencies), by module name. */
#define PF_VM_MODULES "virtio_pci", "virtio_blk", "9pnet_virtio", "9p", "crc32c_generic", "ext4"

int pf_vm_initramfs_write(const char *kernel, const char *script, const char *path);
