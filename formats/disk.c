/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * disk.raw and disk.qcow2: a BIOS-bootable disk holding the profile's closure,
 * as the seed's vm.scm makes VM images.
 *
 *   sector 0        MBR: GRUB's boot.img, one partition (bootable, type 83)
 *   sectors 1-2047  GRUB's core.img, embedded as grub-install embeds it
 *   1 MiB - end     ext4, label "packfs-root": the closure at its store paths,
 *                   /dev /proc /sys /run /tmp (1777), the profile's symlinks,
 *                   /boot/{vmlinuz,initrd}, /boot/grub/{grub.cfg,i386-pc/}
 *
 * The filesystem is made on the host, without root, by e2fsprogs writing into
 * the image file at the partition's offset: mke2fs with a UUID and hash seed
 * derived from the closure, then one debugfs session that creates every entry
 * in the walk's order, with E2FSPROGS_FAKE_TIME so that every time stamp is 1.
 * What needs a running Linux and a real block device is done in the helper VM
 * (vm.h): GRUB's installer (grub-bios-setup, the last step of grub-install)
 * writes boot.img and core.img onto /dev/vda, with the partition mounted
 * read-only so the filesystem is not touched. So the same closure, options
 * and tools give the same bytes, on any machine. disk.qcow2 is disk.raw
 * converted by qemu-img.
 *
 * The size is known once the image is built: the first stat or open builds it
 * (fs/packs.c makes concurrent callers wait for the one build) into the cache,
 * under a key of the closure, the options and the tools' identities (their
 * size and mtime: a new e2fsprogs or GRUB gives new bytes, so a new key).
 */
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "packfs/background.h"
#include "packfs/cache.h"
#include "packfs/cancel.h"
#include "packfs/format.h"
#include "packfs/io.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/searchpath.h"
#include "packfs/vm.h"
#include "packfs/walk.h"
#include "disk.h"

/* Bump when the image's layout or the way it is made changes. */
#define DISK_LAYOUT "packfs-disk-1"
#define LABEL "packfs-root"
#define SECTOR 512u
#define PART_START_SECTOR 2048u
#define MIB ((uint64_t) 1 << 20)
#define BLOCK 4096u
#define INODE_SIZE 256u
#define GRUB_DIR "/usr/lib/grub/i386-pc"

/* The ext4 features, fixed here rather than taken from the host's
 * /etc/mke2fs.conf, and only ones GRUB 2.06 and Linux 4.x read. */
static const char mke2fs_conf[] =
        "[defaults]\n"
        "\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr\n"
        "\tdefault_mntopts = acl,user_xattr\n"
        "\tenable_periodic_fsck = 0\n"
        "\tblocksize = 4096\n"
        "\tinode_size = 256\n"
        "\tinode_ratio = 16384\n"
        "[fs_types]\n"
        "\text4 = {\n"
        "\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize\n"
        "\t}\n";

/* The host tools an image depends on: their identities are part of its key. */
static const char *const raw_tools[] = { "sfdisk", "mke2fs", "debugfs", "grub-mkimage" };
static const char *const raw_files[] = { GRUB_DIR "/boot.img", GRUB_DIR "/kernel.img", GRUB_DIR "/grub-bios-setup",
                                         GRUB_DIR "/moddep.lst" };

int pf_disk_find_tool(const char *name, char *out, size_t size) {
        const char *path = getenv("PATH");
        _cleanup_free_ char *dirs = NULL;
        char *save = NULL;

        /* Non-root PATHs often lack the sbin directories mke2fs and sfdisk live in. */
        if (asprintf(&dirs, "%s:/usr/sbin:/sbin:/usr/bin:/bin", path && *path ? path : "/usr/bin:/bin") < 0)
                return -ENOMEM;
        for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                if (*d != '/' || snprintf(out, size, "%s/%s", d, name) >= (int) size)
                        continue;
                if (access(out, X_OK) == 0)
                        return 0;
        }
        return -ENOENT;
}

/* Digests the identity (path, size, mtime) of each tool and file; a missing
 * one is -ENOENT, logged when LOG_MISSING (a build; not a listing's look). */
static int tools_stamp(gcry_md_hd_t md, const char *const *tools, size_t n_tools, const char *const *files,
                       size_t n_files, bool log_missing) {
        for (size_t i = 0; i < n_tools + n_files; i++) {
                char path[PATH_MAX], line[PATH_MAX + 64];
                struct stat st;
                int n;

                if (i < n_tools) {
                        if (pf_disk_find_tool(tools[i], path, sizeof(path)) < 0) {
                                if (!log_missing)
                                        return -ENOENT;
                                log_error("disk images need %s (install %s)", tools[i],
                                          !strcmp(tools[i], "sfdisk")         ? "fdisk"
                                          : !strcmp(tools[i], "grub-mkimage") ? "grub-pc-bin and grub2-common"
                                          : !strcmp(tools[i], "qemu-img")     ? "qemu-utils"
                                                                              : "e2fsprogs");
                                return -ENOENT;
                        }
                } else
                        snprintf(path, sizeof(path), "%s", files[i - n_tools]);
                if (stat(path, &st) < 0)
                        return log_missing ? log_error_errno(-errno, "disk images need %s (install grub-pc-bin)", path)
                                           : -errno;
                n = snprintf(line, sizeof(line), "%s %lld %lld", path, (long long) st.st_size,
                             (long long) st.st_mtime);
                gcry_md_write(md, line, (size_t) n + 1);
        }
        return 0;
}

static int disk_key(const pf_format *self, const pf_view *view, bool log_missing, uint8_t key[32]) {
        static const char *const qemu_img[] = { "qemu-img" };
        static const char *const iso_tools[] = { "grub-mkrescue", "xorriso" };
        gcry_md_hd_t md;
        int r;

        if (gcry_md_open(&md, GCRY_MD_SHA256, 0) != 0)
                return -ENOMEM;
        gcry_md_write(md, DISK_LAYOUT, sizeof(DISK_LAYOUT));
        gcry_md_write(md, self->file_name, strlen(self->file_name) + 1);
        gcry_md_write(md, view->closure->id, 32);
        gcry_md_write(md, view->options->id, 32);
        r = tools_stamp(md, raw_tools, ELEMENTSOF(raw_tools), raw_files, ELEMENTSOF(raw_files), log_missing);
        if (r >= 0 && !strcmp(self->file_name, "disk.qcow2"))
                r = tools_stamp(md, qemu_img, 1, NULL, 0, log_missing);
        if (r >= 0 && !strcmp(self->file_name, "disk.iso"))
                r = tools_stamp(md, iso_tools, ELEMENTSOF(iso_tools), NULL, 0, log_missing);
        if (r >= 0)
                memcpy(key, gcry_md_read(md, GCRY_MD_SHA256), 32);
        gcry_md_close(md);
        return r;
}

/* snprintf() into a PATH_MAX buffer: -ENAMETOOLONG instead of a cut path. */
_printf_(2, 3) static int pathf(char out[PATH_MAX], const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(out, PATH_MAX, fmt, ap);
        va_end(ap);
        return n < 0 ? -EINVAL : n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* --- Running host tools. */

/* Runs ARGV with INPUT (may be NULL) on its stdin, ENV added to the
 * environment; its output goes to OUTPUT_FD (stdout) and ERRORS_FD (stderr),
 * -1 for /dev/null. KEEP_FD (or -1) stays open across exec. Returns 0 if it
 * exits 0, -EIO otherwise (logged by the caller), -ECANCELED when asked. */
int pf_disk_run_tool(char *const argv[], const char *input, char *const env[], int output_fd, int errors_fd,
                     int keep_fd, void (*tick)(void *userdata), void *userdata) {
        extern char **environ;
        size_t n_environ = 0, n_env = 0, n = 0;
        char **envp;
        int in[2];
        pid_t pid;
        int status;

        /* The child's environment is made here: after fork() in a threaded
         * process, the child should only exec. */
        while (environ[n_environ])
                n_environ++;
        while (env && env[n_env])
                n_env++;
        envp = calloc(n_environ + n_env + 1, sizeof(*envp));
        if (!envp)
                return -ENOMEM;
        for (size_t i = 0; i < n_environ; i++) {
                bool replaced = false;
                for (size_t j = 0; j < n_env && !replaced; j++) {
                        size_t len = strcspn(env[j], "=");
                        replaced = !strncmp(environ[i], env[j], len) && environ[i][len] == '=';
                }
                if (!replaced)
                        envp[n++] = environ[i];
        }
        for (size_t j = 0; j < n_env; j++)
                envp[n++] = env[j];

        /* INPUT is a few lines: written into the pipe before the child runs
         * (the pipe holds 64 KiB), so a child that never reads it cannot
         * SIGPIPE us. */
        if (input && strlen(input) > 4096) {
                free(envp);
                return -E2BIG;
        }
        if (pipe2(in, O_CLOEXEC) < 0) {
                free(envp);
                return -errno;
        }
        int written = input ? pf_write_all(in[1], input, strlen(input)) : 0;
        if (written < 0) {
                int r = written;
                close(in[0]);
                close(in[1]);
                free(envp);
                return r;
        }
        close(in[1]);
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(in[0]);
                free(envp);
                return r;
        }
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null < 0 || dup2(in[0], 0) < 0 || dup2(output_fd >= 0 ? output_fd : null, 1) < 0 ||
                    dup2(errors_fd >= 0 ? errors_fd : null, 2) < 0)
                        _exit(126);
                if (keep_fd >= 0 && fcntl(keep_fd, F_SETFD, 0) < 0)
                        _exit(126);
                execve(argv[0], argv, envp);
                _exit(127);
        }
        free(envp);
        close(in[0]);
        status = pf_wait_child_ticking(pid, 0, tick, userdata);
        if (status < 0)
                return status;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                log_error("%s: cannot be run", argv[0]);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* A build's scratch directory and the files in it. */
typedef struct build {
        const pf_view *view;
        char what[PATH_MAX];            /* "demo/disk.raw", for logs */
        char dir[PATH_MAX];
        char cmds[PATH_MAX], errors[PATH_MAX], conf[PATH_MAX], grub_cfg[PATH_MAX], core_img[PATH_MAX];
        char *kernel, *initrd;          /* resolved in the store */
        FILE *script;                   /* debugfs commands */
        char **dirs;                    /* directories created outside the closure */
        size_t n_dirs;
        uint64_t data_bytes;            /* regular files, rounded up to blocks */
        uint64_t n_inodes;
        uint64_t n_commands, n_writes;  /* in the debugfs script */
        uint64_t script_bytes;
        int echo_fd;                    /* debugfs's stdout: its progress */
        int walk_error;
        pf_cache_job *job;
        struct timespec start;
} build;

/* A new stage of the build, shown by `packfs status` (a job whose name says
 * the stage; TOTAL 0 when it has no measure of progress). */
static void build_stage_measured(build *b, const char *stage, uint64_t total) {
        char name[PATH_MAX + 64];

        pf_cache_job_end(b->job);
        b->job = NULL;
        snprintf(name, sizeof(name), "%s: %s", b->what, stage);
        (void) pf_cache_job_begin(b->view->cache, name, total, &b->job);
        log_info("%s: %s (at %.1f s)", b->what, stage, pf_seconds_since(&b->start));
}

static void build_stage(build *b, const char *stage) {
        build_stage_measured(b, stage, 0);
}

/* Logs what a tool said on stderr (ERRORS_FD, rewound), for a failure. */
static void log_tool_errors(const char *what, const char *tool, int errors_fd) {
        char buf[4096];
        ssize_t n = pread(errors_fd, buf, sizeof(buf) - 1, 0);

        if (n <= 0)
                return;
        buf[n] = 0;
        for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                log_error("%s: %s: %s", what, tool, l);
}

/* Runs a tool of the build, its stderr kept for the log. */
static int build_run(build *b, const char *tool, char *const argv[], const char *input, char *const env[],
                     int keep_fd) {
        int errors_fd = open(b->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        int r;

        if (errors_fd < 0)
                return log_error_errno(-errno, "%s: %s", b->what, b->dir);
        r = pf_disk_run_tool(argv, input, env, -1, errors_fd, keep_fd, NULL, NULL);
        if (r == -EIO) {
                log_error("%s: %s failed", b->what, tool);
                log_tool_errors(b->what, tool, errors_fd);
        }
        close(errors_fd);
        return r;
}

/* --- The debugfs script. */

/* debugfs (libss) reads "..." as one word, with "" for a quote inside. */
void pf_disk_put_quoted(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '"')
                        fputc('"', f);
                fputc(*s, f);
        }
        fputc('"', f);
}

static void put_command(build *b, const char *command, const char *x, const char *y);

/* debugfs echoes each command it runs ("debugfs: CMD") and each inode a
 * write allocates ("Allocated inode: N"): its output so far, against what the
 * whole script makes it print, is about the share of the closure copied. */
static void copy_progress(void *userdata) {
        build *b = userdata;
        struct stat st;
        double total = (double) (b->script_bytes + b->n_commands * strlen("debugfs: ") +
                                 b->n_writes * strlen("Allocated inode: 12345\n"));

        if (b->echo_fd >= 0 && fstat(b->echo_fd, &st) == 0 && total > 0)
                pf_cache_job_progress(b->job, (uint64_t) (MIN((double) st.st_size / total, 0.99) * (double) b->data_bytes),
                                      0);
}

static void put_command(build *b, const char *command, const char *x, const char *y) {
        fputs(command, b->script);
        fputc(' ', b->script);
        pf_disk_put_quoted(b->script, x);
        if (y) {
                fputc(' ', b->script);
                pf_disk_put_quoted(b->script, y);
        }
        fputc('\n', b->script);
        b->n_commands++;
        b->n_writes += !strcmp(command, "write");
}

static void put_mode(build *b, const char *path, mode_t mode) {
        fputs("sif ", b->script);
        pf_disk_put_quoted(b->script, path);
        fprintf(b->script, " mode 0%o\n", (unsigned) mode);
        b->n_commands++;
}

/* Creates PATH's directory and its parents (outside the closure), once each;
 * PATH itself gets MODE. */
static int ensure_dir(build *b, const char *path, mode_t mode) {
        size_t len = strlen(path);

        for (size_t i = 1; i <= len; i++) {
                bool known = false;
                char *prefix;

                if (path[i] != '/' && path[i] != 0)
                        continue;
                prefix = strndup(path, i);
                if (!prefix)
                        return -ENOMEM;
                for (size_t j = 0; j < b->n_dirs && !known; j++)
                        known = !strcmp(b->dirs[j], prefix);
                if (known) {
                        free(prefix);
                        continue;
                }
                char **nd = realloc(b->dirs, (b->n_dirs + 1) * sizeof(*nd));
                if (!nd) {
                        free(prefix);
                        return -ENOMEM;
                }
                b->dirs = nd;
                nd[b->n_dirs++] = prefix;
                b->n_inodes++;
                put_command(b, "mkdir", prefix, NULL);
                if (i == len && mode != (S_IFDIR | 0755))
                        put_mode(b, prefix, mode);
        }
        return 0;
}

static int on_entry(void *userdata, const pf_walk_entry *e) {
        build *b = userdata;

        b->n_inodes++;
        if (S_ISDIR(e->mode)) {
                put_command(b, "mkdir", e->path, NULL);
                if ((e->mode & 07777) != 0755)
                        put_mode(b, e->path, e->mode);
                b->data_bytes += BLOCK;
        } else if (S_ISLNK(e->mode)) {
                put_command(b, "symlink", e->path, e->link_target);
                if (strlen(e->link_target) >= 60) /* not a fast symlink */
                        b->data_bytes += BLOCK;
        } else {
                /* debugfs takes the mode bits from the file it copies. */
                put_command(b, "write", e->path, e->path);
                b->data_bytes += (e->size + BLOCK - 1) / BLOCK * BLOCK;
        }
        return ferror(b->script) ? -EIO : 0;
}

static int add_file(build *b, const char *host_path, const char *image_path) {
        struct stat st;

        if (stat(host_path, &st) < 0)
                return log_error_errno(-errno, "%s: %s", b->what, host_path);
        put_command(b, "write", host_path, image_path);
        b->data_bytes += ((uint64_t) st.st_size + BLOCK - 1) / BLOCK * BLOCK;
        b->n_inodes++;
        return 0;
}

/* Words of the kernel command line must not be able to break out of GRUB's
 * `linux` line. */
static bool cmdline_word_safe(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9') &&
                    !strchr("_-=.,:/+@%", s[i]))
                        return false;
        return true;
}

/* Appends the words of TEXT to F, each checked. */
static int put_cmdline_words(build *b, FILE *f, const char *text, const char *origin) {
        for (const char *p = text; *p;) {
                size_t len;
                p += strspn(p, " \t\n");
                len = strcspn(p, " \t\n");
                if (!len)
                        break;
                if (!cmdline_word_safe(p, len)) {
                        log_error("%s: %s: refusing the kernel argument '%.*s' (only letters, digits and _-=.,:/+@%% "
                                  "are allowed)",
                                  b->what, origin, (int) MIN(len, (size_t) 200), p);
                        return -EINVAL;
                }
                fprintf(f, " %.*s", (int) len, p);
                p += len;
        }
        return 0;
}

static int write_grub_cfg(build *b, const char *init) {
        const char *root = b->view->closure->root;
        _cleanup_free_ char *cmdline_path = NULL;
        FILE *f = fopen(b->grub_cfg, "we");
        int r = 0;

        if (!f)
                return log_error_errno(-errno, "%s: %s", b->what, b->grub_cfg);
        fputs("# packfs: boots the profile's kernel with its init, console on the serial port.\n"
              "serial --unit=0 --speed=115200\n"
              "terminal_input serial console\n"
              "terminal_output serial console\n"
              "set timeout=0\n"
              "menuentry \"packfs\" {\n"
              "\tsearch --no-floppy --label --set=root " LABEL "\n"
              "\tlinux /boot/vmlinuz root=LABEL=" LABEL " ro",
              f);
        fprintf(f, " init=%s/%s console=tty0 console=ttyS0,115200", root, init);
        if (!cmdline_word_safe(root, strlen(root)) || !cmdline_word_safe(init, strlen(init))) {
                log_error("%s: the init path %s/%s cannot be put on a kernel command line", b->what, root, init);
                r = -EINVAL;
        }
        /* The profile's own extras (boot/cmdline), then the configured ones. */
        if (r >= 0 && pf_profile_file(b->view->store_dir, root, "boot/cmdline", S_IFREG, &cmdline_path) >= 0) {
                char text[4096] = "";
                int fd = open(cmdline_path, O_RDONLY | O_CLOEXEC);
                ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
                if (fd >= 0)
                        close(fd);
                if (n >= 0) {
                        text[n] = 0;
                        r = put_cmdline_words(b, f, text, "boot/cmdline");
                }
        }
        if (r >= 0 && b->view->options->kernel_arguments)
                r = put_cmdline_words(b, f, b->view->options->kernel_arguments, "kernel-arguments");
        fputs("\n", f);
        if (b->initrd)
                fputs("\tinitrd /boot/initrd\n", f);
        fputs("}\n", f);
        if (fclose(f) != 0 && r >= 0)
                r = log_error_errno(-errno, "%s: %s", b->what, b->grub_cfg);
        return r;
}

/* The kernel, initrd and init the image boots. */
static int find_boot_files(build *b, const char **ret_init) {
        const pf_options *o = b->view->options;
        const char *root = b->view->closure->root;
        static const char *const kernels[] = { "boot/vmlinuz", "boot/bzImage" };
        _cleanup_free_ char *init_path = NULL;
        int r = -ENOENT;

        if (o->kernel)
                r = pf_profile_file(b->view->store_dir, root, o->kernel, S_IFREG, &b->kernel);
        else
                for (size_t i = 0; i < ELEMENTSOF(kernels) && r < 0; i++)
                        r = pf_profile_file(b->view->store_dir, root, kernels[i], S_IFREG, &b->kernel);
        if (r < 0) {
                log_error("%s: no kernel: the profile has no %s inside the store (set `kernel` in the config)",
                          b->what, o->kernel ? o->kernel : "boot/vmlinuz or boot/bzImage");
                return -ENOENT;
        }
        r = pf_profile_file(b->view->store_dir, root, o->initrd ? o->initrd : "boot/initrd", S_IFREG, &b->initrd);
        if (r < 0 && o->initrd) {
                log_error("%s: no initrd: the profile has no %s inside the store", b->what, o->initrd);
                return -ENOENT;
        }
        *ret_init = o->init ? o->init : "bin/init";
        r = pf_profile_file(b->view->store_dir, root, *ret_init, S_IFREG, &init_path);
        if (r < 0) {
                log_error("%s: the profile has no %s to boot into (set `init` in the config)", b->what, *ret_init);
                return -ENOENT;
        }
        return 0;
}

static int write_script(build *b, const char *init) {
        const pf_view *view = b->view;
        glob_t g = {};
        int r;

        b->script = fopen(b->cmds, "we");
        if (!b->script)
                return log_error_errno(-errno, "%s: %s", b->what, b->cmds);
        /* The closure, with its store directory's parents. */
        r = ensure_dir(b, view->store_dir, S_IFDIR | 0755);
        for (size_t i = 0; i < view->closure->n_items && r >= 0; i++) {
                r = pf_walk(view->closure->items[i].path, on_entry, b);
                if (r < 0)
                        log_error_errno(r, "%s: walking %s", b->what, view->closure->items[i].path);
        }
        /* What a booting system expects to find. */
        static const char *const mount_points[] = { "/dev", "/proc", "/sys", "/run", "/boot/grub/i386-pc" };
        for (size_t i = 0; i < ELEMENTSOF(mount_points) && r >= 0; i++)
                r = ensure_dir(b, mount_points[i], S_IFDIR | 0755);
        if (r >= 0)
                r = ensure_dir(b, "/tmp", S_IFDIR | 01777);
        if (r >= 0)
                put_mode(b, "/tmp", S_IFDIR | 01777);
        /* The profile's symlinks (`symlinks`), pointing into it. */
        for (size_t i = 0; i < view->options->n_symlinks && r >= 0; i++) {
                const pf_symlink_spec *s = &view->options->symlinks[i];
                _cleanup_free_ char *parent = strdup(s->source), *target = NULL;
                if (!parent || asprintf(&target, "%s/%s", view->closure->root, s->target) < 0) {
                        r = -ENOMEM;
                        break;
                }
                *strrchr(parent, '/') = 0;
                if (*parent)
                        r = ensure_dir(b, parent, S_IFDIR | 0755);
                put_command(b, "symlink", s->source, target);
                b->n_inodes++;
        }
        if (r >= 0)
                r = add_file(b, b->kernel, "/boot/vmlinuz");
        if (r >= 0 && b->initrd)
                r = add_file(b, b->initrd, "/boot/initrd");
        if (r >= 0)
                r = write_grub_cfg(b, init);
        if (r >= 0)
                r = add_file(b, b->grub_cfg, "/boot/grub/grub.cfg");
        /* GRUB's modules, as grub-install copies them, and the images its
         * installer embeds. */
        if (r >= 0 && glob(GRUB_DIR "/*.mod", 0, NULL, &g) == 0 && glob(GRUB_DIR "/*.lst", GLOB_APPEND, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc && r >= 0; i++) {
                        char image_path[PATH_MAX];
                        snprintf(image_path, sizeof(image_path), "/boot/grub/i386-pc/%s", strrchr(g.gl_pathv[i], '/') + 1);
                        r = add_file(b, g.gl_pathv[i], image_path);
                }
        else if (r >= 0) {
                log_error("%s: no GRUB modules in " GRUB_DIR " (install grub-pc-bin)", b->what);
                r = -ENOENT;
        }
        globfree(&g);
        if (r >= 0)
                r = add_file(b, GRUB_DIR "/boot.img", "/boot/grub/i386-pc/boot.img");
        if (r >= 0)
                r = add_file(b, b->core_img, "/boot/grub/i386-pc/core.img");
        long end = ftell(b->script);
        b->script_bytes = end > 0 ? (uint64_t) end : 0;
        if (fclose(b->script) != 0 && r >= 0)
                r = log_error_errno(-errno, "%s: %s", b->what, b->cmds);
        b->script = NULL;
        return r;
}

/* --- Building disk.raw. */

static void uuid_text(const uint8_t id[16], char out[37]) {
        char hex[33];
        pf_hex(id, 16, hex);
        snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* Values derived from the closure: UUID, hash seed, MBR disk signature. */
static void derived(const pf_view *view, const char *what, uint8_t out[16]) {
        uint8_t d[32];
        gcry_md_hash_buffers(GCRY_MD_SHA256, 0, d,
                             (gcry_buffer_t[]) { { .data = (void *) view->closure->id, .len = 32 },
                                                 { .data = (void *) what, .len = strlen(what) } },
                             2);
        memcpy(out, d, 16);
        /* An RFC 4122 version-4 shape, as mke2fs's own UUIDs have. */
        out[6] = (out[6] & 0x0f) | 0x40;
        out[8] = (out[8] & 0x3f) | 0x80;
}

static int make_core_img(build *b) {
        char tool[PATH_MAX], early[PATH_MAX];
        int r = pf_disk_find_tool("grub-mkimage", tool, sizeof(tool));
        FILE *f;

        if (r < 0)
                return r;
        /* core.img finds its partition by label, wherever the disk is attached. */
        snprintf(early, sizeof(early), "%s/early.cfg", b->dir);
        f = fopen(early, "we");
        if (!f)
                return -errno;
        fputs("search.fs_label " LABEL " root\nset prefix=($root)/boot/grub\n", f);
        if (fclose(f) != 0)
                return -errno;
        char *argv[] = { tool, "-O", "i386-pc", "-d", GRUB_DIR, "-c", early, "-p", "/boot/grub", "-o", b->core_img,
                         "biosdisk", "part_msdos", "ext2", "search_label", NULL };
        return build_run(b, "grub-mkimage", argv, NULL, NULL, -1);
}

static int build_raw(build *b, const char *image) {
        const pf_view *view = b->view;
        const char *init;
        char tool[PATH_MAX], uuid[37], seed[37], size_k[32], inodes[32], extended[256], input[256];
        char conf_env[PATH_MAX + 16];
        uint8_t id[16];
        uint64_t fs_bytes, disk_bytes;
        int r, fd;

        r = find_boot_files(b, &init);
        if (r < 0)
                return r;
        build_stage(b, "planning the filesystem");
        r = make_core_img(b);
        if (r < 0)
                return r;
        r = write_script(b, init);
        if (r < 0)
                return r;

        /* Room for the files, inodes and journal, and a margin to work in. */
        b->n_inodes += 1024;
        fs_bytes = b->data_bytes + b->n_inodes * INODE_SIZE;
        fs_bytes = fs_bytes + fs_bytes / 5 + 96 * MIB;
        if (view->options->disk_size) {
                if (view->options->disk_size < fs_bytes + MIB)
                        log_warning("%s: disk-size %llu is below the %llu bytes estimated for the closure", b->what,
                                    (unsigned long long) view->options->disk_size,
                                    (unsigned long long) (fs_bytes + MIB));
                fs_bytes = view->options->disk_size - PART_START_SECTOR * SECTOR;
        }
        fs_bytes = fs_bytes / (4 * MIB) * (4 * MIB);
        disk_bytes = PART_START_SECTOR * SECTOR + fs_bytes;

        build_stage(b, "partitioning");
        fd = open(image, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(-errno, "%s: %s", b->what, image);
        r = ftruncate(fd, (off_t) disk_bytes) < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
                return log_error_errno(r, "%s: %s", b->what, image);
        derived(view, "mbr", id);
        snprintf(input, sizeof(input),
                 "label: dos\nlabel-id: 0x%02x%02x%02x%02x\nunit: sectors\nstart=%u, size=%llu, type=83, bootable\n",
                 id[0], id[1], id[2], id[3], PART_START_SECTOR, (unsigned long long) (fs_bytes / SECTOR));
        if ((r = pf_disk_find_tool("sfdisk", tool, sizeof(tool))) < 0)
                return r;
        {
                char *argv[] = { tool, "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "never", (char *) image, NULL };
                r = build_run(b, "sfdisk", argv, input, NULL, -1);
                if (r < 0)
                        return r;
        }

        build_stage(b, "making ext4");
        derived(view, "ext4 uuid", id);
        uuid_text(id, uuid);
        derived(view, "ext4 hash seed", id);
        uuid_text(id, seed);
        snprintf(size_k, sizeof(size_k), "%lluk", (unsigned long long) (fs_bytes / 1024));
        snprintf(inodes, sizeof(inodes), "%llu", (unsigned long long) b->n_inodes);
        snprintf(extended, sizeof(extended),
                 "offset=%u,hash_seed=%s,root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0",
                 PART_START_SECTOR * SECTOR, seed);
        snprintf(conf_env, sizeof(conf_env), "MKE2FS_CONFIG=%s", b->conf);
        char fake_time[] = "E2FSPROGS_FAKE_TIME=1";
        char *env[] = { conf_env, fake_time, NULL };
        fd = open(b->conf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || pf_write_all(fd, mke2fs_conf, sizeof(mke2fs_conf) - 1) < 0) {
                r = -errno;
                if (fd >= 0)
                        close(fd);
                return log_error_errno(r, "%s: %s", b->what, b->conf);
        }
        close(fd);
        if ((r = pf_disk_find_tool("mke2fs", tool, sizeof(tool))) < 0)
                return r;
        {
                char *argv[] = { tool, "-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256", "-m", "0", "-N", inodes,
                                 "-L", LABEL, "-U", uuid, "-E", extended, (char *) image, size_k, NULL };
                r = build_run(b, "mke2fs", argv, NULL, env, -1);
                if (r < 0)
                        return r;
        }

        build_stage_measured(b, "copying the closure", b->data_bytes);
        {
                char device[PATH_MAX + 32];
                int errors_fd = open(b->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
                if (errors_fd < 0)
                        return log_error_errno(-errno, "%s: %s", b->what, b->dir);
                if ((r = pf_disk_find_tool("debugfs", tool, sizeof(tool))) < 0) {
                        close(errors_fd);
                        return r;
                }
                snprintf(device, sizeof(device), "%s?offset=%u", image, PART_START_SECTOR * SECTOR);
                char *argv[] = { tool, "-w", "-f", b->cmds, device, NULL };
                b->echo_fd = open(b->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
                r = pf_disk_run_tool(argv, NULL, env, b->echo_fd, errors_fd, -1, copy_progress, b);
                if (b->echo_fd >= 0)
                        close(b->echo_fd);
                b->echo_fd = -1;
                /* debugfs exits 0 whatever its commands did: any line on stderr
                 * but its banner is a command that failed (a full disk, a file
                 * that vanished). */
                if (r >= 0) {
                        char buf[4096];
                        ssize_t n = pread(errors_fd, buf, sizeof(buf) - 1, 0);
                        buf[n > 0 ? n : 0] = 0;
                        for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l && r >= 0;
                             l = strtok_r(NULL, "\n", &save))
                                if (strncmp(l, "debugfs ", 8) != 0)
                                        r = -EIO;
                }
                if (r == -EIO) {
                        log_error("%s: debugfs could not copy the closure:", b->what);
                        log_tool_errors(b->what, "debugfs", errors_fd);
                }
                close(errors_fd);
                if (r < 0)
                        return r;
        }

        build_stage(b, "installing GRUB (helper VM)");
        {
                pf_vm_options vo = { .kernel = view->options->helper_kernel,
                                     .memory_mib = (unsigned) view->options->vm_memory,
                                     .timeout_s = (unsigned) view->options->helper_timeout,
                                     .state_dir = view->cache ? pf_cache_dir(view->cache) : NULL };
                const char *disks[] = { image };
                /* The partition mounted read-only and without its journal: the
                 * filesystem is not written, only sectors 0-2047 are. */
                static const char script[] =
                        "set -e\n"
                        "mount -t devtmpfs dev /host/dev\n"
                        "mount -t proc proc /host/proc\n"
                        "mount -t sysfs sys /host/sys\n"
                        "mount -t tmpfs run /host/run\n"
                        "mkdir /host/run/packfs-root\n"
                        "mount -t ext4 -o ro,noload /dev/vda1 /host/run/packfs-root\n"
                        "chroot /host " GRUB_DIR "/grub-bios-setup --directory=/run/packfs-root/boot/grub/i386-pc /dev/vda\n"
                        "umount /host/run/packfs-root\n";
                r = pf_vm_run(&vo, b->what, script, disks, 1);
        }
        return r;
}

static int build_qcow2(build *b, const char *image) {
        const pf_view *view = b->view;
        pf_plan *raw = NULL;
        char tool[PATH_MAX], input[64];
        int r, fd;

        r = view->plan_of(view, &pf_format_disk_raw, &raw);
        if (r < 0)
                return r;
        build_stage(b, "converting disk.raw");
        fd = pf_plan_n_extents(raw) == 1 ? pf_plan_open_file(raw, pf_plan_extent(raw, 0)) : -EINVAL;
        if (fd < 0) {
                pf_plan_unref(raw);
                return log_error_errno(fd, "%s: disk.raw", b->what);
        }
        snprintf(input, sizeof(input), "/proc/self/fd/%d", fd);
        r = pf_disk_find_tool("qemu-img", tool, sizeof(tool));
        if (r >= 0) {
                char *argv[] = { tool, "convert", "-q", "-f", "raw", "-O", "qcow2", "-o", "compat=1.1", input,
                                 (char *) image, NULL };
                r = build_run(b, "qemu-img", argv, NULL, NULL, fd);
        }
        close(fd);
        pf_plan_unref(raw);
        return r;
}

/* --- disk.iso: an El Torito ISO 9660 image with Rock Ridge, by grub-mkrescue
 * (xorriso): /boot and the mount points from a small staging directory, the
 * closure mapped in from the store without a copy, every date fixed. */

static int stage_dir(const char *path, mode_t mode) {
        if (mkdir(path, mode & 07777) < 0 && errno != EEXIST)
                return -errno;
        return chmod(path, mode & 07777) < 0 ? -errno : 0;
}

static int build_iso(build *b, const char *image) {
        const pf_view *view = b->view;
        const char *init;
        char tool[PATH_MAX], stage[PATH_MAX], path[PATH_MAX];
        char **argv = NULL;
        size_t argc = 0;
        int r;

        r = find_boot_files(b, &init);
        if (r < 0)
                return r;
        build_stage(b, "staging /boot");
        if ((r = pathf(stage, "%s/iso", b->dir)) < 0)
                return r;
        static const char *const dirs[] = { "", "/boot", "/boot/grub", "/dev", "/proc", "/sys", "/run" };
        for (size_t i = 0; i < ELEMENTSOF(dirs) && r >= 0; i++)
                if ((r = pathf(path, "%s%s", stage, dirs[i])) >= 0)
                        r = stage_dir(path, S_IFDIR | 0755);
        if (r >= 0 && (r = pathf(path, "%s/tmp", stage)) >= 0)
                r = stage_dir(path, S_IFDIR | 01777);
        /* The profile's symlinks, as in disk.raw. */
        for (size_t i = 0; i < view->options->n_symlinks && r >= 0; i++) {
                const pf_symlink_spec *s = &view->options->symlinks[i];
                _cleanup_free_ char *target = NULL;
                if (asprintf(&target, "%s/%s", view->closure->root, s->target) < 0) {
                        r = -ENOMEM;
                        break;
                }
                for (char *slash = strchr(s->source + 1, '/'); slash && r >= 0; slash = strchr(slash + 1, '/'))
                        if ((r = pathf(path, "%s%.*s", stage, (int) (slash - s->source), s->source)) >= 0)
                                r = stage_dir(path, S_IFDIR | 0755);
                if (r >= 0)
                        r = pathf(path, "%s%s", stage, s->source);
                if (r >= 0 && symlink(target, path) < 0)
                        r = log_error_errno(-errno, "%s: symlink %s", b->what, s->source);
        }
        if (r < 0)
                return log_error_errno(r, "%s: staging %s", b->what, stage);
        r = pathf(b->grub_cfg, "%s/boot/grub/grub.cfg", stage);
        if (r >= 0)
                r = write_grub_cfg(b, init);
        if (r < 0)
                return r;

        build_stage(b, "writing the ISO (grub-mkrescue)");
        r = pf_disk_find_tool("grub-mkrescue", tool, sizeof(tool));
        if (r < 0) {
                log_error("%s: disk.iso needs grub-mkrescue (install grub-pc-bin, grub2-common, xorriso, mtools)",
                          b->what);
                return r;
        }
        argv = calloc(64 + 3 * view->closure->n_items, sizeof(*argv));
        if (!argv)
                return -ENOMEM;
        /* After "--", xorriso's own commands: the volume's name (the root's
         * LABEL), fixed dates, and the closure mapped in. */
        const char *const head[] = { tool, "-o", image, stage, "--", "-volid", LABEL, "-disk_pattern", "off",
                                     "-iso_rr_pattern", "off", "-volume_date", "c", "1970010100000100",
                                     "-volume_date", "m", "1970010100000100", "-volume_date", "x", "default",
                                     "-volume_date", "f", "default", "-volume_date", "uuid", "1970010100000100",
                                     "-map", b->kernel, "/boot/vmlinuz" };
        for (size_t i = 0; i < ELEMENTSOF(head); i++)
                argv[argc++] = (char *) head[i];
        if (b->initrd) {
                argv[argc++] = "-map";
                argv[argc++] = b->initrd;
                argv[argc++] = "/boot/initrd";
        }
        for (size_t i = 0; i < view->closure->n_items; i++) {
                argv[argc++] = "-map";
                argv[argc++] = view->closure->items[i].path;
                argv[argc++] = view->closure->items[i].path;
        }
        const char *const tail[] = { "-alter_date_r", "b", "19700101.000001", "/", "--" };
        for (size_t i = 0; i < ELEMENTSOF(tail); i++)
                argv[argc++] = (char *) tail[i];
        argv[argc] = NULL;
        char epoch[] = "SOURCE_DATE_EPOCH=1";
        char *env[] = { epoch, NULL };
        r = build_run(b, "grub-mkrescue", argv, NULL, env, -1);
        free(argv);
        return r;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) (flag == FTW_DP ? rmdir(path) : unlink(path));
        return 0;
}

static void build_done(build *b) {
        pf_cache_job_end(b->job);
        if (b->script)
                fclose(b->script);
        /* The scratch directory holds only what this build put there. */
        if (b->dir[0])
                nftw(b->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        for (size_t i = 0; i < b->n_dirs; i++)
                free(b->dirs[i]);
        free(b->dirs);
        free(b->kernel);
        free(b->initrd);
}

static int build_init(build *b, const pf_format *self, const pf_view *view) {
        const char *tmp = getenv("TMPDIR");

        *b = (build) { .view = view, .echo_fd = -1 };
        clock_gettime(CLOCK_MONOTONIC, &b->start);
        snprintf(b->what, sizeof(b->what), "%s/%s", view->name, self->file_name);
        if (snprintf(b->dir, sizeof(b->dir), "%s/packfs-disk-XXXXXX", tmp && *tmp ? tmp : "/tmp") >= (int) sizeof(b->dir))
                return -ENAMETOOLONG;
        if (!mkdtemp(b->dir)) {
                b->dir[0] = 0;
                return log_error_errno(-errno, "%s: a scratch directory", b->what);
        }
        if (snprintf(b->cmds, sizeof(b->cmds), "%s/debugfs.cmds", b->dir) >= (int) sizeof(b->cmds) ||
            snprintf(b->errors, sizeof(b->errors), "%s/errors", b->dir) >= (int) sizeof(b->errors) ||
            snprintf(b->conf, sizeof(b->conf), "%s/mke2fs.conf", b->dir) >= (int) sizeof(b->conf) ||
            snprintf(b->grub_cfg, sizeof(b->grub_cfg), "%s/grub.cfg", b->dir) >= (int) sizeof(b->grub_cfg) ||
            snprintf(b->core_img, sizeof(b->core_img), "%s/core.img", b->dir) >= (int) sizeof(b->core_img))
                return -ENAMETOOLONG;
        return 0;
}

/* --- The format. */

static int disk_plan(const pf_format *self, const pf_view *view, pf_plan **ret) {
        uint8_t key[32];
        pf_cache_object obj = { .fd = -1 };
        pf_cache_writer *w = NULL;
        char scratch_image[PATH_MAX] = "";
        const char *image;
        build b;
        struct timespec start;
        int r;

        r = disk_key(self, view, true, key);
        if (r < 0)
                return -EIO;
        /* Ahead of use (`prepare`), the tools and the helper VM inherit the
         * thread's idle priority (background.h). */
        pf_background_follow(view->background);
        if (view->cache && pf_cache_acquire(view->cache, (const uint8_t (*)[32]) key, 1, &obj) == 1)
                return pf_plan_over_cache_objects(view->cache, (const uint8_t (*)[32]) key, &obj, 1, ret);

        clock_gettime(CLOCK_MONOTONIC, &start);
        r = build_init(&b, self, view);
        if (r >= 0)
                r = pf_cache_writer_new(view->cache, key, &w);
        if (r < 0)
                goto out;
        image = pf_cache_writer_path(w);
        if (!image) {
                /* No cache (or its disk is full): build in the scratch directory
                 * and serve the file, unlinked, from memory's point of view. */
                int fd;
                snprintf(scratch_image, sizeof(scratch_image), "%s/image", b.dir);
                fd = open(scratch_image, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0) {
                        r = log_error_errno(-errno, "%s: %s", b.what, scratch_image);
                        goto out;
                }
                close(fd);
                image = scratch_image;
        }
        r = !strcmp(self->file_name, "disk.raw")     ? build_raw(&b, image)
            : !strcmp(self->file_name, "disk.qcow2") ? build_qcow2(&b, image)
                                                     : build_iso(&b, image);
        if (r < 0)
                goto out;
        if (scratch_image[0]) {
                struct stat st;
                int fd = open(scratch_image, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0) {
                        r = -errno;
                        if (fd >= 0)
                                close(fd);
                        goto out;
                }
                pf_cache_writer_abort(w);
                w = NULL;
                obj = (pf_cache_object) { .fd = fd, .size = (uint64_t) st.st_size };
        } else {
                r = pf_cache_writer_commit(w, &obj);
                w = NULL;
                if (r < 0)
                        goto out;
        }
        log_info("%s: built in %.1f s (%llu bytes)", b.what, pf_seconds_since(&start), (unsigned long long) obj.size);
        r = pf_plan_over_cache_objects(view->cache, (const uint8_t (*)[32]) key, &obj, 1, ret);
out:
        if (r < 0 && r != -ECANCELED) {
                log_error("%s: not built: %s; nothing was cached", b.what, strerror(-r));
                /* Whatever went wrong (no kernel, a tool, the helper), the
                 * reader gets an I/O error and the log says why. */
                if (r != -ENOMEM)
                        r = -EIO;
        }
        pf_cache_writer_abort(w);
        if (scratch_image[0])
                unlink(scratch_image);
        build_done(&b);
        return r;
}

static int disk_cached(const pf_format *self, const pf_view *view) {
        uint8_t key[32];
        int r;

        if (!view->cache)
                return 0;
        /* Without its tools an image cannot be built, nor was it: not ready. */
        r = disk_key(self, view, false, key);
        if (r < 0)
                return 0;
        return pf_cache_contains(view->cache, (const uint8_t (*)[32]) key, 1) == 1;
}

#define DISK_FORMAT(name) \
        { .file_name = (name), .plan = disk_plan, .cached = disk_cached, .warm_by_name_only = true }
const pf_format pf_format_disk_raw = DISK_FORMAT("disk.raw");
const pf_format pf_format_disk_qcow2 = DISK_FORMAT("disk.qcow2");
const pf_format pf_format_disk_iso = DISK_FORMAT("disk.iso");
