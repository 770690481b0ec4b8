/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The pure parts of the disk formats and the QEMU backend: module load order
 * from modules.dep, the kernel release from a bzImage header, debugfs quoting,
 * and the disk options of the config. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"
#include "packfs/config.h"
#include "packfs/log.h"
#include "packfs/store.h"
#include "packfs/vm.h"
#include "fixture-tree.h"
#include "run-suite.h"

/* A modules.dep in the shape of Debian 6.1's, shuffled, with a cycle. */
static const char modules_dep[] =
        "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n"
        "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko "
        "kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko "
        "kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/drivers/virtio/virtio.ko:\n"
        "kernel/drivers/virtio/virtio_ring.ko:\n"
        "kernel/drivers/virtio/virtio_pci_legacy_dev.ko:\n"
        "kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"
        "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/lib/crc16.ko:\n"
        "kernel/fs/mbcache.ko:\n"
        "kernel/fs/jbd2/jbd2.ko:\n"
        "kernel/crypto/crc32c_generic.ko.xz:\n"
        "kernel/net/9p/9pnet.ko:\n"
        "kernel/a/loop-a.ko: kernel/a/loop-b.ko\n"
        "kernel/a/loop-b.ko: kernel/a/loop-a.ko\n";

static char *joined(char **v) {
        static char out[4096];
        out[0] = 0;
        for (size_t i = 0; v[i]; i++) {
                const char *name = strrchr(v[i], '/');
                strcat(out, i ? " " : "");
                strcat(out, name ? name + 1 : v[i]);
        }
        return out;
}

START_TEST(test_module_order) {
        const char *const wanted[] = { "virtio_blk", "ext4", "virtio_pci", "crc32c_generic", "9p", NULL };
        char **order = NULL;

        ck_assert_int_eq(pf_vm_module_order(modules_dep, wanted, &order), 0);
        /* Dependencies first (modules.dep lists them last-loaded-first), each
         * once; 9p is not listed: built in. */
        ck_assert_str_eq(joined(order), "virtio_ring.ko virtio.ko virtio_blk.ko jbd2.ko mbcache.ko crc16.ko ext4.ko "
                                        "virtio_pci_modern_dev.ko virtio_pci_legacy_dev.ko virtio_pci.ko "
                                        "crc32c_generic.ko.xz");
        pf_strv_free(order);
}
END_TEST

START_TEST(test_module_order_cycle) {
        const char *const wanted[] = { "loop_a", NULL };
        char **order = NULL;

        /* A cycle loads each module once, whatever the order. */
        ck_assert_int_eq(pf_vm_module_order(modules_dep, wanted, &order), 0);
        ck_assert_str_eq(joined(order), "loop-b.ko loop-a.ko");
        pf_strv_free(order);
}
END_TEST

START_TEST(test_kernel_release) {
        char dir[PATH_MAX], path[PATH_MAX];
        static unsigned char image[0x600];
        char *release = NULL;

        base_setup();
        test_dir_make(dir);
        memcpy(image + 0x202, "HdrS", 4);
        image[0x20e] = 0x00; /* version string at 0x200 + 0x300 */
        image[0x20f] = 0x03;
        strcpy((char *) image + 0x500, "6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP");
        pathf(path, "%s/vmlinuz", dir);
        fixture_write(dir, "vmlinuz", image, sizeof(image), 0644);
        ck_assert_int_eq(pf_vm_kernel_release(path, &release), 0);
        ck_assert_str_eq(release, "6.1.0-57-amd64");
        free(release);

        /* Not a bzImage, or one whose version would leave /lib/modules. */
        memcpy(image + 0x202, "HdrX", 4);
        fixture_write(dir, "vmlinuz", image, sizeof(image), 0644);
        ck_assert_int_eq(pf_vm_kernel_release(path, &release), -EINVAL);
        memcpy(image + 0x202, "HdrS", 4);
        strcpy((char *) image + 0x500, "../../etc");
        fixture_write(dir, "vmlinuz", image, sizeof(image), 0644);
        ck_assert_int_eq(pf_vm_kernel_release(path, &release), -EINVAL);
        pathf(path, "%s/absent", dir);
        ck_assert_int_eq(pf_vm_kernel_release(path, &release), -ENOENT);
        base_teardown();
}
END_TEST

START_TEST(test_debugfs_quoting) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        pf_disk_put_quoted(f, "/gnu/store/x-a b");
        fputc(' ', f);
        pf_disk_put_quoted(f, "q\"uote\\ and \t tab");
        fputc(' ', f);
        pf_disk_put_quoted(f, "");
        fclose(f);
        ck_assert_str_eq(text, "\"/gnu/store/x-a b\" \"q\"\"uote\\ and \t tab\" \"\"");
        free(text);
}
END_TEST

START_TEST(test_find_tool) {
        char path[PATH_MAX];

        ck_assert_int_eq(pf_disk_find_tool("sh", path, sizeof(path)), 0);
        ck_assert_msg(path[0] == '/', "%s", path);
        ck_assert_int_eq(pf_disk_find_tool("packfs-no-such-tool", path, sizeof(path)), -ENOENT);
}
END_TEST

static void options_of(const char *text, pf_options *o) {
        pf_config *c = NULL;

        ck_assert_int_eq(pf_config_parse_string(text, "test.ini", &c), 0);
        ck_assert_int_eq(pf_config_options_for(c, "demo", o), 0);
        pf_config_free(c);
}

START_TEST(test_disk_options) {
        pf_options plain = {}, sized = {}, vm = {};
        pf_config *c = NULL;

        pf_log_open(PF_LOG_STDERR, LOG_CRIT);
        options_of("[demo]\nentry-point = bin/x\n", &plain);
        ck_assert_int_eq(plain.vm_memory, PF_DEFAULT_VM_MEMORY);
        ck_assert_int_eq(plain.vm_cpus, 1);
        ck_assert_int_eq(plain.helper_timeout, PF_DEFAULT_HELPER_TIMEOUT);
        ck_assert_ptr_null(plain.kernel);
        options_of("[demo]\nentry-point = bin/x\ndisk-size = 2G\nkernel = boot/bzImage\ninit = sbin/init\n"
                   "kernel-arguments = quiet loglevel=3\n",
                   &sized);
        ck_assert_uint_eq(sized.disk_size, (uint64_t) 2 << 30);
        ck_assert_str_eq(sized.kernel, "boot/bzImage");
        ck_assert_str_eq(sized.init, "sbin/init");
        ck_assert_str_eq(sized.kernel_arguments, "quiet loglevel=3");
        /* Disk options change the identity; the VM's memory, CPUs, helper kernel
         * and timeout do not (they change no bytes). */
        ck_assert(memcmp(plain.id, sized.id, 32) != 0);
        options_of("[demo]\nentry-point = bin/x\nvm-memory = 2048\nvm-cpus = 4\nhelper-kernel = /boot/vmlinuz\n"
                   "helper-timeout = 60\n",
                   &vm);
        ck_assert_int_eq(vm.vm_memory, 2048);
        ck_assert_int_eq(vm.vm_cpus, 4);
        ck_assert_int_eq(vm.helper_timeout, 60);
        ck_assert_str_eq(vm.helper_kernel, "/boot/vmlinuz");
        ck_assert(memcmp(plain.id, vm.id, 32) == 0);
        pf_options_done(&plain);
        pf_options_done(&sized);
        pf_options_done(&vm);

        static const char *const bad[] = {
                "[demo]\ndisk-size = 1k\n",                     /* below what a disk needs */
                "[demo]\ndisk-size = lots\n",
                "[demo]\nkernel = ../boot/vmlinuz\n",           /* out of the profile */
                "[demo]\ninit = /sbin/init\n",
                "[demo]\nkernel-arguments = quiet; reboot\n",   /* would leave GRUB's linux line */
                "[demo]\nkernel-arguments = init=\"$x\"\n",
                "[demo]\nhelper-kernel = boot/vmlinuz\n",       /* a host path: absolute */
                "[demo]\nvm-memory = 1\n",
                "[demo]\nhelper-timeout = 0\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ck_assert_msg(pf_config_parse_string(bad[i], "test.ini", &c) == -EINVAL, "accepted: %s", bad[i]);
                ck_assert_ptr_null(c);
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("disk");
        TCase *tc = tcase_create("disk");

        tcase_add_test(tc, test_module_order);
        tcase_add_test(tc, test_module_order_cycle);
        tcase_add_test(tc, test_kernel_release);
        tcase_add_test(tc, test_debugfs_quoting);
        tcase_add_test(tc, test_find_tool);
        tcase_add_test(tc, test_disk_options);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
