/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "initramfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <zstd.h>

#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/store.h"
#include "packfs/vm.h"

/* Modules are a few MiB; a file far larger than this is not one. */
#define MODULE_MAX (64u << 20)
#define BUSYBOX_MAX (16u << 20)

/* PID 1 of the helper: loads the modules, mounts the host's root read-only at
 * /host, runs /script and reports its exit status on the console, which is
 * the serial port the host logs. */
static const char init_script[] =
        "#!/bin/busybox sh\n"
        "/bin/busybox --install -s /bin\n"
        "export PATH=/bin\n"
        "mount -t devtmpfs dev /dev\n"
        "exec </dev/console >/dev/console 2>&1\n"
        "mount -t proc proc /proc\n"
        "mount -t sysfs sys /sys\n"
        "while read -r m; do insmod \"/lib/modules/$m\" || echo \"packfs-helper: insmod $m failed\"; done "
        "</lib/modules/order\n"
        "if mount -t 9p -o trans=virtio,version=9p2000.L,ro host /host; then\n"
        "  cd /\n"
        "  sh /script\n"
        "  rc=$?\n"
        "else\n"
        "  echo 'packfs-helper: cannot mount the host over 9p'\n"
        "  rc=125\n"
        "fi\n"
        "sync\n"
        "echo \"PACKFS-HELPER-STATUS $rc\"\n"
        "poweroff -f\n";

static int read_file(const char *path, size_t max, char **ret, size_t *ret_size) {
        struct stat st;
        char *buf;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size > max) {
                close(fd);
                return -EINVAL;
        }
        buf = malloc((size_t) st.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        ssize_t n = pread(fd, buf, (size_t) st.st_size, 0);
        close(fd);
        if (n != st.st_size) {
                free(buf);
                return n < 0 ? -errno : -EIO;
        }
        buf[n] = 0;
        *ret = buf;
        *ret_size = (size_t) n;
        return 0;
}

static bool has_suffix(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && !strcmp(s + a - b, suffix);
}

/* A .ko.xz or .ko.zst decompressed in memory (busybox's insmod may lack both). */
static int decompress_module(const char *path, char *in, size_t in_size, char **out, size_t *out_size) {
        if (has_suffix(path, ".ko.zst")) {
                unsigned long long n = ZSTD_getFrameContentSize(in, in_size);
                if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > MODULE_MAX)
                        return -EBADMSG;
                *out = malloc(n ? n : 1);
                if (!*out)
                        return -ENOMEM;
                size_t k = ZSTD_decompress(*out, n, in, in_size);
                if (ZSTD_isError(k) || k != n) {
                        free(*out);
                        return -EBADMSG;
                }
                *out_size = k;
                return 0;
        }
        if (has_suffix(path, ".ko.xz")) {
                uint64_t limit = UINT64_MAX;
                size_t in_pos = 0, out_pos = 0, cap = MODULE_MAX;
                *out = malloc(cap);
                if (!*out)
                        return -ENOMEM;
                if (lzma_stream_buffer_decode(&limit, 0, NULL, (uint8_t *) in, &in_pos, in_size, (uint8_t *) *out,
                                              &out_pos, cap) != LZMA_OK) {
                        free(*out);
                        return -EBADMSG;
                }
                *out_size = out_pos;
                return 0;
        }
        *out = in;
        *out_size = in_size;
        return 1; /* as it is */
}

/* True if the ELF file DATA has no program interpreter: it runs without ld.so. */
static bool elf_is_static(const char *data, size_t size) {
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *) data;

        if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
            eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
            (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
                return false;
        for (unsigned i = 0; i < eh->e_phnum; i++) {
                Elf64_Phdr ph;
                memcpy(&ph, data + eh->e_phoff + i * sizeof(ph), sizeof(ph));
                if (ph.p_type == PT_INTERP)
                        return false;
        }
        return true;
}

static int add(struct archive *a, const char *name, mode_t mode, dev_t rdev, const void *data, size_t size) {
        struct archive_entry *e = archive_entry_new();
        int r = 0;

        if (!e)
                return -ENOMEM;
        archive_entry_set_pathname(e, name);
        archive_entry_set_mode(e, mode);
        archive_entry_set_rdev(e, rdev);
        archive_entry_set_size(e, S_ISREG(mode) ? (la_int64_t) size : 0);
        archive_entry_set_mtime(e, 1, 0);
        if (archive_write_header(a, e) != ARCHIVE_OK ||
            (S_ISREG(mode) && size && archive_write_data(a, data, size) != (la_ssize_t) size)) {
                log_error("vm: initramfs: %s: %s", name, archive_error_string(a));
                r = -EIO;
        }
        archive_entry_free(e);
        return r;
}

static int add_modules(struct archive *a, const char *kernel) {
        _cleanup_free_ char *release = NULL, *dep_text = NULL, *order_text = NULL;
        static const char *const wanted[] = { PF_VM_MODULES, NULL };
        char dir[PATH_MAX], path[PATH_MAX];
        char **order = NULL;
        size_t dep_size, order_len = 0;
        int r;

        r = pf_vm_kernel_release(kernel, &release);
        if (r < 0)
                return log_error_errno(r, "vm: %s is not a bzImage with a version", kernel);
        if (snprintf(dir, sizeof(dir), "/lib/modules/%s", release) >= (int) sizeof(dir) ||
            snprintf(path, sizeof(path), "%s/modules.dep", dir) >= (int) sizeof(path))
                return -ENAMETOOLONG;
        r = read_file(path, 16u << 20, &dep_text, &dep_size);
        if (r < 0)
                return log_error_errno(r, "vm: %s (the helper kernel's modules)", path);
        r = pf_vm_module_order(dep_text, wanted, &order);
        if (r < 0)
                return r;
        order_text = calloc(1, 1);
        for (size_t i = 0; order[i] && r >= 0 && order_text; i++) {
                char *ko = NULL, *data = NULL, name[PATH_MAX], *base;
                size_t ko_size, size;
                if (snprintf(path, sizeof(path), "%s/%s", dir, order[i]) >= (int) sizeof(path)) {
                        r = -ENAMETOOLONG;
                        break;
                }
                r = read_file(path, MODULE_MAX, &ko, &ko_size);
                if (r < 0) {
                        log_error_errno(r, "vm: module %s", path);
                        break;
                }
                r = decompress_module(order[i], ko, ko_size, &data, &size);
                if (r < 0)
                        log_error_errno(r, "vm: module %s", path);
                else {
                        base = strrchr(order[i], '/');
                        base = base ? base + 1 : order[i];
                        r = snprintf(name, sizeof(name), "lib/modules/%.*s.ko", (int) strcspn(base, "."), base) >=
                                            (int) sizeof(name)
                                    ? -ENAMETOOLONG
                                    : add(a, name, S_IFREG | 0644, 0, data, size);
                        char *grown = realloc(order_text, order_len + strlen(name) + 2);
                        if (!grown)
                                r = -ENOMEM;
                        else {
                                order_text = grown;
                                order_len += (size_t) sprintf(order_text + order_len, "%s\n", name + strlen("lib/modules/"));
                        }
                        if (data != ko)
                                free(data);
                }
                free(ko);
        }
        pf_strv_free(order);
        if (!order_text)
                return -ENOMEM;
        return r < 0 ? r : add(a, "lib/modules/order", S_IFREG | 0644, 0, order_text, order_len);
}

int pf_vm_initramfs_write(const char *kernel, const char *script, const char *path) {
        static const char *const dirs[] = { "bin", "dev", "proc", "sys", "host", "tmp", "lib", "lib/modules" };
        _cleanup_free_ char *busybox = NULL;
        size_t busybox_size;
        struct archive *a;
        int r;

        r = read_file("/bin/busybox", BUSYBOX_MAX, &busybox, &busybox_size);
        if (r >= 0 && !elf_is_static(busybox, busybox_size))
                r = -ENOEXEC;
        if (r < 0)
                return log_error_errno(r, "vm: /bin/busybox must be a static busybox (install busybox-static)");
        a = archive_write_new();
        if (!a)
                return -ENOMEM;
        if (archive_write_set_format_cpio_newc(a) != ARCHIVE_OK || archive_write_open_filename(a, path) != ARCHIVE_OK) {
                log_error("vm: initramfs %s: %s", path, archive_error_string(a));
                archive_write_free(a);
                return -EIO;
        }
        for (size_t i = 0; i < ELEMENTSOF(dirs) && r >= 0; i++)
                r = add(a, dirs[i], S_IFDIR | 0755, 0, NULL, 0);
        /* The kernel opens it before init runs: its output must go somewhere. */
        if (r >= 0)
                r = add(a, "dev/console", S_IFCHR | 0600, makedev(5, 1), NULL, 0);
        if (r >= 0)
                r = add(a, "bin/busybox", S_IFREG | 0755, 0, busybox, busybox_size);
        if (r >= 0)
                r = add(a, "init", S_IFREG | 0755, 0, init_script, sizeof(init_script) - 1);
        if (r >= 0)
                r = add(a, "script", S_IFREG | 0644, 0, script, strlen(script));
        if (r >= 0)
                r = add_modules(a, kernel);
        if (archive_write_close(a) != ARCHIVE_OK && r >= 0) {
                log_error("vm: initramfs %s: %s", path, archive_error_string(a));
                r = -EIO;
        }
        archive_write_free(a);
        return r;
}
