/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "packfs/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "packfs/cancel.h"
#include "packfs/io.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/store.h"
#include "initramfs.h"

#define QEMU "qemu-system-x86_64"
#define STATUS_MARK "PACKFS-HELPER-STATUS "
#define LOG_TAIL_LINES 20

int pf_vm_kernel_release(const char *path, char **ret) {
        uint8_t header[0x210];
        char version[256];
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        ssize_t n;
        int r = -EINVAL;

        if (fd < 0)
                return -errno;
        /* The boot protocol's setup header: "HdrS" at 0x202, and at 0x20e the
         * offset (from 0x200) of a NUL-terminated version string. */
        n = pread(fd, header, sizeof(header), 0);
        if (n == (ssize_t) sizeof(header) && memcmp(header + 0x202, "HdrS", 4) == 0) {
                unsigned off = header[0x20e] | (unsigned) header[0x20f] << 8;
                n = pread(fd, version, sizeof(version) - 1, (off_t) off + 0x200);
                if (off && n > 0) {
                        version[n] = 0;
                        version[strcspn(version, " ")] = 0;
                        if (version[0] && !strchr(version, '/'))
                                r = (*ret = strdup(version)) ? 0 : -ENOMEM;
                }
        }
        close(fd);
        return r;
}

int pf_vm_helper_kernel(const pf_vm_options *o, char **ret) {
        glob_t g = {};
        const char *best = NULL;

        if (o->kernel)
                return (*ret = strdup(o->kernel)) ? 0 : -ENOMEM;
        if (glob("/boot/vmlinuz-*", 0, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++)
                        if (!best || strverscmp(g.gl_pathv[i], best) > 0)
                                best = g.gl_pathv[i];
        if (!best) {
                globfree(&g);
                log_error("vm: no helper kernel: no /boot/vmlinuz-* (install linux-image-amd64, or set helper-kernel)");
                return -ENOENT;
        }
        *ret = strdup(best);
        globfree(&g);
        return *ret ? 0 : -ENOMEM;
}

/* --- Modules. */

typedef struct mod_entry {
        char *path;     /* relative to the modules directory */
        char *name;     /* its module name, '-' as '_' */
        char **deps;    /* paths */
        bool visited;
} mod_entry;

static void module_name_of(const char *path, char *out, size_t size) {
        const char *base = strrchr(path, '/');
        size_t len;

        base = base ? base + 1 : path;
        len = strcspn(base, ".");
        len = MIN(len, size - 1);
        for (size_t i = 0; i < len; i++)
                out[i] = base[i] == '-' ? '_' : base[i];
        out[len] = 0;
}

static mod_entry *mod_find_path(mod_entry *mods, size_t n, const char *path) {
        for (size_t i = 0; i < n; i++)
                if (!strcmp(mods[i].path, path))
                        return &mods[i];
        return NULL;
}

/* Depth-first: dependencies before the module; modules.dep lists a module's
 * dependencies (all of them, transitively) so that the last must load first. */
static int mod_visit(mod_entry *mods, size_t n, mod_entry *m, char ***out, size_t *n_out, unsigned depth) {
        size_t n_deps = 0;

        if (m->visited)
                return 0;
        if (depth > 64)
                return -ELOOP;
        m->visited = true;
        while (m->deps[n_deps])
                n_deps++;
        for (size_t i = n_deps; i-- > 0;) {
                mod_entry *d = mod_find_path(mods, n, m->deps[i]);
                int r = d ? mod_visit(mods, n, d, out, n_out, depth + 1) : 0;
                if (r < 0)
                        return r;
        }
        char **v = realloc(*out, (*n_out + 2) * sizeof(**out));
        if (!v)
                return -ENOMEM;
        *out = v;
        if (!(v[*n_out] = strdup(m->path)))
                return -ENOMEM;
        v[++*n_out] = NULL;
        return 0;
}

int pf_vm_module_order(const char *modules_dep_text, const char *const *modules, char ***ret) {
        mod_entry *mods = NULL;
        size_t n = 0;
        char **out = NULL;
        size_t n_out = 0;
        int r = 0;
        char *text = strdup(modules_dep_text), *save = NULL;

        if (!text)
                return -ENOMEM;
        for (char *line = strtok_r(text, "\n", &save); line && r >= 0; line = strtok_r(NULL, "\n", &save)) {
                char *colon = strchr(line, ':'), *dsave = NULL, name[128];
                size_t n_deps = 0;
                mod_entry *nm;

                if (!colon)
                        continue;
                *colon = 0;
                nm = realloc(mods, (n + 1) * sizeof(*mods));
                if (!nm) {
                        r = -ENOMEM;
                        break;
                }
                mods = nm;
                module_name_of(line, name, sizeof(name));
                mods[n] = (mod_entry) { .path = strdup(line), .name = strdup(name), .deps = calloc(1, sizeof(char *)) };
                n++;
                if (!mods[n - 1].path || !mods[n - 1].name || !mods[n - 1].deps) {
                        r = -ENOMEM;
                        break;
                }
                for (char *d = strtok_r(colon + 1, " \t", &dsave); d; d = strtok_r(NULL, " \t", &dsave)) {
                        char **nd = realloc(mods[n - 1].deps, (n_deps + 2) * sizeof(char *));
                        if (!nd || !(nd[n_deps] = strdup(d))) {
                                if (nd)
                                        mods[n - 1].deps = nd;
                                r = -ENOMEM;
                                break;
                        }
                        mods[n - 1].deps = nd;
                        nd[++n_deps] = NULL;
                }
        }
        for (size_t i = 0; modules[i] && r >= 0; i++)
                for (size_t j = 0; j < n; j++)
                        if (!strcmp(mods[j].name, modules[i])) {
                                r = mod_visit(mods, n, &mods[j], &out, &n_out, 0);
                                break;
                        }
        for (size_t i = 0; i < n; i++) {
                free(mods[i].path);
                free(mods[i].name);
                pf_strv_free(mods[i].deps);
        }
        free(mods);
        free(text);
        if (r >= 0 && !out)
                out = calloc(1, sizeof(*out));
        if (r < 0 || !out) {
                pf_strv_free(out);
                return r < 0 ? r : -ENOMEM;
        }
        *ret = out;
        return 0;
}

/* --- Running QEMU. */

static bool kvm_usable(void) {
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return false;
        close(fd);
        return true;
}

/* QEMU's option syntax: a ',' inside a value is written ",,". */
static char *qemu_escape(const char *prefix, const char *value, const char *suffix) {
        size_t n = strlen(prefix) + 2 * strlen(value) + strlen(suffix) + 1;
        char *out = malloc(n), *p = out;

        if (!out)
                return NULL;
        p = stpcpy(p, prefix);
        for (const char *s = value; *s; s++) {
                *p++ = *s;
                if (*s == ',')
                        *p++ = ',';
        }
        strcpy(p, suffix);
        return out;
}

/* The last lines of the file at PATH, into the log at LEVEL. */
static void log_tail(int level, const char *what, const char *path) {
        char buf[8192], *lines[LOG_TAIL_LINES] = {};
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        ssize_t n;
        size_t k = 0;

        if (fd < 0)
                return;
        if (fstat(fd, &st) < 0) {
                close(fd);
                return;
        }
        n = pread(fd, buf, sizeof(buf) - 1, MAX((off_t) 0, st.st_size - (off_t) sizeof(buf) + 1));
        close(fd);
        if (n <= 0)
                return;
        buf[n] = 0;
        for (char *save = NULL, *l = strtok_r(buf, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save))
                lines[k++ % LOG_TAIL_LINES] = l;
        for (size_t i = k > LOG_TAIL_LINES ? k - LOG_TAIL_LINES : 0; i < k; i++)
                pf_log(level, "%s: | %s", what, lines[i % LOG_TAIL_LINES]);
}

/* The status the guest reported in its serial log, or -1. */
static int guest_status(const char *log_path) {
        char buf[4096];
        int fd = open(log_path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        int status = -1;
        ssize_t n;

        if (fd < 0 || fstat(fd, &st) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        n = pread(fd, buf, sizeof(buf) - 1, MAX((off_t) 0, st.st_size - (off_t) sizeof(buf) + 1));
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        for (char *p = buf; (p = strstr(p, STATUS_MARK)); p += strlen(STATUS_MARK)) {
                char *end;
                long v = strtol(p + strlen(STATUS_MARK), &end, 10);
                if (end != p + strlen(STATUS_MARK) && v >= 0 && v <= 255)
                        status = (int) v;
        }
        return status;
}

typedef struct run_files {
        char dir[PATH_MAX];
        char initramfs[PATH_MAX], serial[PATH_MAX], qemu_log[PATH_MAX];
} run_files;

static int run_files_make(const pf_vm_options *o, run_files *f) {
        const char *tmp = o->tmp_dir ? o->tmp_dir : getenv("TMPDIR");

        if (!tmp || !*tmp)
                tmp = "/tmp";
        if (snprintf(f->dir, sizeof(f->dir), "%s/packfs-vm-XXXXXX", tmp) >= (int) sizeof(f->dir))
                return -ENAMETOOLONG;
        if (!mkdtemp(f->dir))
                return log_error_errno(-errno, "vm: cannot make a directory in %s", tmp);
        if (snprintf(f->initramfs, sizeof(f->initramfs), "%s/initramfs.cpio", f->dir) >= (int) sizeof(f->initramfs) ||
            snprintf(f->serial, sizeof(f->serial), "%s/serial.log", f->dir) >= (int) sizeof(f->serial) ||
            snprintf(f->qemu_log, sizeof(f->qemu_log), "%s/qemu.log", f->dir) >= (int) sizeof(f->qemu_log)) {
                rmdir(f->dir);
                return -ENAMETOOLONG;
        }
        return 0;
}

static void run_files_remove(const run_files *f) {
        unlink(f->initramfs);
        unlink(f->serial);
        unlink(f->qemu_log);
        rmdir(f->dir);
}

/* LEVEL: of the lines that say why a run failed (a probe's failure is news,
 * not an error). */
static int run_with(const pf_vm_options *o, const char *accel, const char *what, const char *script,
                    const char *const *disks, size_t n_disks, unsigned timeout_s, int level) {
        _cleanup_free_ char *kernel = NULL;
        char memory[32];
        run_files f;
        char **argv = NULL;
        size_t argc = 0;
        int r, status;
        pid_t pid;

        r = pf_vm_helper_kernel(o, &kernel);
        if (r < 0)
                return r;
        r = run_files_make(o, &f);
        if (r < 0)
                return r;
        r = pf_vm_initramfs_write(kernel, script, f.initramfs);
        if (r < 0)
                goto out;

        snprintf(memory, sizeof(memory), "%u", o->memory_mib ? o->memory_mib : 512);
        argv = calloc(32 + 2 * n_disks, sizeof(*argv));
        if (!argv) {
                r = -ENOMEM;
                goto out;
        }
#define ARG(s)                                  \
        do {                                    \
                if (!(argv[argc++] = (s))) {    \
                        r = -ENOMEM;            \
                        goto out;               \
                }                               \
        } while (0)
        ARG(strdup(QEMU));
        ARG(strdup("-accel"));
        ARG(strdup(accel));
        ARG(strdup("-cpu"));
        ARG(strdup(strcmp(accel, "kvm") ? "max" : "host"));
        ARG(strdup("-m"));
        ARG(strdup(memory));
        ARG(strdup("-smp"));
        ARG(strdup("1"));
        ARG(strdup("-nodefaults"));
        ARG(strdup("-no-user-config"));
        ARG(strdup("-display"));
        ARG(strdup("none"));
        ARG(strdup("-no-reboot"));
        ARG(strdup("-serial"));
        ARG(qemu_escape("file:", f.serial, ""));
        ARG(strdup("-kernel"));
        ARG(strdup(kernel));
        ARG(strdup("-initrd"));
        ARG(strdup(f.initramfs));
        ARG(strdup("-append"));
        ARG(strdup("console=ttyS0 quiet loglevel=4 panic=-1"));
        /* The host's tools, read-only; multidevs=remap keeps inode numbers of
         * files on different host filesystems apart. */
        ARG(strdup("-virtfs"));
        ARG(strdup("local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap"));
        for (size_t i = 0; i < n_disks; i++) {
                ARG(strdup("-drive"));
                ARG(qemu_escape("file=", disks[i], ",format=raw,if=virtio"));
        }
#undef ARG

        log_info("%s: helper VM (%s) started", what, accel);
        pid = fork();
        if (pid < 0) {
                r = log_error_errno(-errno, "%s: fork", what);
                goto out;
        }
        if (pid == 0) {
                int fd = open(f.qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                /* QEMU dies with the thread that waits for it. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                        _exit(126);
                execvp(argv[0], argv);
                dprintf(2, "%s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        status = pf_wait_child(pid, timeout_s);
        if (status == -ETIMEDOUT) {
                pf_log(level, "%s: the helper VM did not finish within %u s; killed. Its last lines:", what, timeout_s);
                log_tail(level, what, f.serial);
                r = -ETIMEDOUT;
        } else if (status == -ECANCELED) {
                log_info("%s: helper VM stopped (cancelled)", what);
                r = -ECANCELED;
        } else if (status < 0) {
                r = log_error_errno(status, "%s: waiting for the helper VM", what);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
                log_error("%s: cannot run %s (install qemu-system-x86)", what, QEMU);
                log_tail(LOG_ERR, what, f.qemu_log);
                r = -ENOENT;
        } else {
                int guest = guest_status(f.serial);
                if (guest == 0) {
                        /* What the helper printed, for `packfs mount -d`. */
                        log_tail(LOG_DEBUG, what, f.serial);
                        r = 0;
                } else {
                        if (guest > 0)
                                pf_log(level, "%s: the helper's script failed (exit status %d). Its last lines:", what,
                                       guest);
                        else
                                pf_log(level, "%s: the helper VM ended without reporting (QEMU %s %d). Its last lines:",
                                       what, WIFEXITED(status) ? "exit status" : "signal",
                                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                        log_tail(level, what, f.serial);
                        log_tail(level, what, f.qemu_log);
                        r = -EIO;
                }
        }
out:
        if (argv)
                for (size_t i = 0; i < argc; i++)
                        free(argv[i]);
        free(argv);
        run_files_remove(&f);
        return r;
}

/* --- The accelerator. */

static pthread_mutex_t accel_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *accel_answer; /* guarded by accel_lock */

static const char *accel_read(const char *state_dir) {
        char path[PATH_MAX], buf[8] = "";
        int fd;
        ssize_t n;

        if (!state_dir || snprintf(path, sizeof(path), "%s/vm-accelerator", state_dir) >= (int) sizeof(path))
                return NULL;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n > 0 && !strncmp(buf, "kvm\n", 4))
                return "kvm";
        if (n > 0 && !strncmp(buf, "tcg\n", 4))
                return "tcg";
        return NULL;
}

static void accel_write(const char *state_dir, const char *accel) {
        char path[PATH_MAX], tmp[PATH_MAX];
        int fd;

        if (!state_dir || snprintf(path, sizeof(path), "%s/vm-accelerator", state_dir) >= (int) sizeof(path) ||
            snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long) getpid()) >= (int) sizeof(tmp))
                return;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        if (dprintf(fd, "%s\n", accel) < 0 || close(fd) < 0 || rename(tmp, path) < 0)
                unlink(tmp);
}

const char *pf_vm_accelerator(const pf_vm_options *o) {
        const char *answer;

        pthread_mutex_lock(&accel_lock);
        if (!accel_answer) {
                if (!kvm_usable())
                        accel_answer = "tcg";
                else if (!(accel_answer = accel_read(o->state_dir))) {
                        log_info("vm: /dev/kvm is there; probing whether a guest boots under KVM (%d s at most)",
                                 PF_VM_PROBE_TIMEOUT);
                        int r = run_with(o, "kvm", "vm: KVM probe", "true\n", NULL, 0, PF_VM_PROBE_TIMEOUT, LOG_INFO);
                        if (r == -ECANCELED) {
                                pthread_mutex_unlock(&accel_lock);
                                return "tcg"; /* not an answer to keep */
                        }
                        accel_answer = r == 0 ? "kvm" : "tcg";
                        if (r != 0)
                                log_warning("vm: /dev/kvm is there but a guest did not boot under it; using TCG");
                        accel_write(o->state_dir, accel_answer);
                }
        }
        answer = accel_answer;
        pthread_mutex_unlock(&accel_lock);
        return answer;
}

int pf_vm_run(const pf_vm_options *o, const char *what, const char *script, const char *const *disks,
              size_t n_disks) {
        return run_with(o, pf_vm_accelerator(o), what, script, disks, n_disks,
                        o->timeout_s ? o->timeout_s : PF_VM_DEFAULT_TIMEOUT, LOG_ERR);
}

int pf_vm_boot(const pf_vm_options *o, int disk_fd, const char *format, unsigned cpus, char *const *extra) {
        const char *accel = pf_vm_accelerator(o);
        char memory[32], smp[32], drive[128];
        size_t n_extra = 0, argc = 0;
        char **argv;

        while (extra && extra[n_extra])
                n_extra++;
        argv = calloc(24 + n_extra, sizeof(*argv));
        if (!argv)
                return -ENOMEM;
        snprintf(memory, sizeof(memory), "%u", o->memory_mib ? o->memory_mib : 512);
        snprintf(smp, sizeof(smp), "%u", cpus ? cpus : 1);
        /* The descriptor, not a name: the cached image may be evicted while
         * the VM runs, and an open file outlives that. */
        snprintf(drive, sizeof(drive), "file=/proc/self/fd/%d,if=virtio,format=%s,snapshot=on", disk_fd, format);
        const char *const fixed[] = { QEMU, "-accel", accel, "-cpu", strcmp(accel, "kvm") ? "max" : "host",
                                      "-m", memory, "-smp", smp, "-nographic", "-drive", drive };
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                argv[argc++] = (char *) fixed[i];
        for (size_t i = 0; i < n_extra; i++)
                argv[argc++] = extra[i];
        argv[argc] = NULL;
        if (fcntl(disk_fd, F_SETFD, 0) < 0) {
                free(argv);
                return -errno;
        }
        log_info("run-vm: %s -accel %s -m %s -smp %s -drive %s", QEMU, accel, memory, smp, drive);
        execvp(argv[0], argv);
        int r = -errno;
        log_error("run-vm: cannot run %s: %s (install qemu-system-x86)", QEMU, strerror(errno));
        free(argv);
        return r;
}
