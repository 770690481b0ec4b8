#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# disk.raw, disk.qcow2, disk.iso (issue 11): built on first access by name
# through the QEMU backend, cached, the same bytes from every build, and
# booted by QEMU under TCG straight from the mount to the profile's init,
# which prints a marker and powers off. Also: `packfs run-vm`, listings that
# build nothing, one build for concurrent opens, `packfs status` stages, and
# failures (no kernel, a bad helper kernel, a helper that hangs) that give EIO,
# a log line and no cached image.
#
# The profile boots the host's own Debian kernel and initrd (linux-image-amd64).
#
# Usage: PACKFS=build/fs/packfs test-disk.sh   (or: test-disk.sh PACKFS)
source "$(dirname "$0")/lib.sh"
need_fuse
need_tools qemu-system-x86_64 qemu-img sfdisk mke2fs debugfs dumpe2fs grub-mkimage grub-mkrescue xorriso gcc \
        sha256sum timeout python3
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[[ -n $kernel && -r $kernel ]] || skip "no /boot/vmlinuz-* (install linux-image-amd64)"
initrd=/boot/initrd.img-${kernel#/boot/vmlinuz-}
[[ -r $initrd ]] || skip "no $initrd"
[[ -x /bin/busybox ]] || skip "no /bin/busybox (install busybox-static)"
setup_work
make_store

# The profile: a kernel item, and an init that prints a marker and powers off.
MARK="packfs-init-reached-$$"
mkdir -p "$WORK/src/kernel/boot" "$WORK/src/init/bin"
cp "$kernel" "$WORK/src/kernel/boot/vmlinuz"
cp "$initrd" "$WORK/src/kernel/boot/initrd"
cat >"$WORK/init.c" <<C
#include <stdio.h>
#include <sys/reboot.h>
#include <unistd.h>
int main(void) {
        printf("\\n$MARK\\n");
        fflush(stdout);
        sync();
        reboot(RB_POWER_OFF);
        return 1;
}
C
gcc -static -O2 -o "$WORK/src/init/bin/init" "$WORK/init.c" || skip "gcc cannot link statically"
KERNEL=$(add_item "$WORK/src/kernel")
INIT=$(add_item "$WORK/src/init")
make_profile demo "$KERNEL" "$INIT"
make_profile nokernel "$INIT"
make_profile badhelper "$KERNEL" "$INIT"
make_profile slowhelper "$KERNEL" "$INIT"
cat >"$WORK/packfs.ini" <<INI
[demo]
symlinks = /bin=bin
kernel-arguments = quiet
[badhelper]
helper-kernel = $WORK/no-such-kernel
[slowhelper]
helper-timeout = 2
[prepared]
prepare = disk.qcow2
INI

M=$WORK/mnt
mount_packfs "$M" --config "$WORK/packfs.ini"

# ---- looking costs nothing ----
check_eq "a cold view lists no disk image (--list ready)" "" "$(ls "$M/demo" | grep '^disk\.' || true)"
check_eq "the listing built nothing" "0" "$(grep -c 'helper VM' "$MOUNT_LOG" || true)"

# ---- built on first access by name, once for concurrent openers ----
stat -c %s "$M/demo/disk.raw" >"$WORK/size1" 2>&1 &
first=$!
stat -c %s "$M/demo/disk.raw" >"$WORK/size2" 2>&1 &
second=$!
seen_stage=""
for ((i = 0; i < 600; i++)); do
        kill -0 "$first" 2>/dev/null || break
        st=$("$PACKFS" status --cache "$WORK/cache" "$M" 2>/dev/null || true)
        [[ $st =~ (building|encoding)\ demo/disk.raw:\  ]] &&
                seen_stage=$(grep -oE '(building|encoding) demo/disk.raw: [^(]*' <<<"$st" | head -n1)
        sleep 0.2
done
wait "$first" && wait "$second" || fail "stat disk.raw failed: $(cat "$WORK/size1" "$WORK/size2")"
check_eq "two concurrent first stats see the same size" "$(cat "$WORK/size1")" "$(cat "$WORK/size2")"
check_eq "...and one build" "1" "$(grep -c 'demo/disk.raw: built in' "$MOUNT_LOG")"
check_contains "packfs status names the build's stage" "demo/disk.raw: " "$seen_stage"
check_contains "the log shows the helper VM's run" "demo/disk.raw: helper VM (" "$(cat "$MOUNT_LOG")"
check_eq "once built, a listing shows it" "disk.raw" "$(ls "$M/demo" | grep '^disk\.')"
check_eq "disk.raw's size is what reading it gives" "$(cat "$WORK/size1")" "$(wc -c <"$M/demo/disk.raw")"
if [[ -e /dev/kvm ]]; then
        check "with /dev/kvm, the accelerator was probed and its answer kept" \
                grep -qxE 'kvm|tcg' "$WORK/cache/vm-accelerator"
fi

# ---- what is in it ----
cp --sparse=always "$M/demo/disk.raw" "$WORK/disk.raw"
part="$WORK/disk.raw?offset=1048576"
check_contains "one bootable Linux partition at 1 MiB" "start=        2048" "$(sfdisk -d "$WORK/disk.raw")"
check_contains "...labelled packfs-root" "Filesystem volume name:   packfs-root" "$(dumpe2fs -h "$part" 2>/dev/null)"
check_contains "GRUB's boot code is in the MBR" "GRUB" "$(head -c 512 "$WORK/disk.raw" | strings)"
listing=$(debugfs -R "ls -p /" "$part" 2>/dev/null)
for d in dev proc sys run tmp boot bin; do
        check_contains "/$d is there" "/$d/" "$listing"
done
check_contains "/tmp is 1777" "/041777/" "$(debugfs -R 'ls -p /' "$part" 2>/dev/null | grep '/tmp/')"
check_contains "/bin is a symlink" "/120777/" "$(debugfs -R 'ls -p /' "$part" 2>/dev/null | grep '/bin/')"
check_eq "...into the profile" "$(profile_item demo)/bin" "$(debugfs -R 'cat /bin' "$part" 2>/dev/null)"
check_eq "the store item's file is byte for byte the store's" "$(sha256sum <"$INIT/bin/init")" \
        "$(debugfs -R "cat $INIT/bin/init" "$part" 2>/dev/null | sha256sum)"
check_contains "times are 1" "mtime: 0x00000001" "$(debugfs -R "stat $INIT/bin/init" "$part" 2>/dev/null)"
grub_cfg=$(debugfs -R "cat /boot/grub/grub.cfg" "$part" 2>/dev/null)
check_contains "grub.cfg: root by label, the profile's init" \
        "root=LABEL=packfs-root ro init=$(profile_item demo)/bin/init console=tty0 console=ttyS0,115200 quiet" \
        "$grub_cfg"

# ---- the same bytes from any build ----
sha_raw=$(sha256sum <"$WORK/disk.raw")
check_eq "packfs build on an empty cache gives the same bytes" "$sha_raw" \
        "$("$PACKFS" build --store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$WORK/cache-b" \
                --config "$WORK/packfs.ini" demo/disk.raw -o - 2>"$WORK/build.log" | sha256sum)"

# ---- disk.qcow2 and disk.iso ----
check "qemu-img check disk.qcow2" qemu-img check -q "$M/demo/disk.qcow2"
check_contains "qemu-img compare disk.raw disk.qcow2" "Images are identical" \
        "$(qemu-img compare "$M/demo/disk.raw" "$M/demo/disk.qcow2" 2>&1)"
check_contains "disk.iso is an El Torito ISO 9660 volume packfs-root" "packfs-root" \
        "$(xorriso -indev "$M/demo/disk.iso" -pvd_info 2>/dev/null | grep -i 'volume id')"
sha_iso=$(sha256sum <"$M/demo/disk.iso")
check_eq "disk.iso: the same bytes from packfs build" "$sha_iso" \
        "$("$PACKFS" build --store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$WORK/cache-b" \
                --config "$WORK/packfs.ini" demo/disk.iso -o - 2>>"$WORK/build.log" | sha256sum)"

# ---- QEMU boots them from the mount ----
boot() { # WHAT QEMU_ARGS...: the serial console of a TCG boot
        local out=$WORK/boot-$1.log
        shift
        timeout 300 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot "$@" </dev/null >"$out" 2>&1
        tr -d '\r' <"$out"
}
check_contains "disk.qcow2 boots to the profile's init" "$MARK" \
        "$(boot qcow2 -drive "file=$M/demo/disk.qcow2,if=virtio,snapshot=on")"
check_contains "disk.raw boots to the profile's init" "$MARK" \
        "$(boot raw -drive "file=$M/demo/disk.raw,format=raw,if=virtio,snapshot=on")"
check_contains "disk.iso boots to the profile's init (-cdrom)" "$MARK" "$(boot iso -cdrom "$M/demo/disk.iso")"
check_contains "packfs run-vm boots the view and exits" "$MARK" \
        "$(timeout 300 "$PACKFS" run-vm --store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$WORK/cache" \
                --config "$WORK/packfs.ini" demo -- -no-reboot </dev/null 2>&1 | tr -d '\r')"

# ---- later mounts find it cached ----
unmount_packfs "$M" "$MOUNT_PID"
log_lines=$(wc -l <"$MOUNT_LOG")
mount_packfs "$M" --config "$WORK/packfs.ini"
check_eq "a new mount lists the built images at once" $'disk.iso\ndisk.qcow2\ndisk.raw' "$(ls "$M/demo" | grep '^disk\.')"
check_eq "...and serves the same bytes without building" "$sha_raw" "$(sha256sum <"$M/demo/disk.raw")"
check_eq "...nothing was built" "0" "$(tail -n +$((log_lines + 1)) "$MOUNT_LOG" | grep -c 'built in' || true)"

# ---- failures: EIO, a log line, nothing cached ----
objects() { "$PACKFS" status --cache "$WORK/cache" 2>/dev/null | sed -n 's/.* in \([0-9]*\) objects.*/\1/p'; }
before=$(objects)
check_fails "a profile without a kernel: EIO" "Input/output error" stat "$M/nokernel/disk.raw"
check_contains "...and the log says why" "nokernel/disk.raw: no kernel" "$(cat "$MOUNT_LOG")"
check_fails "a helper kernel that is not there: EIO" "Input/output error" stat "$M/badhelper/disk.raw"
check_contains "...and the log names it" "$WORK/no-such-kernel" "$(cat "$MOUNT_LOG")"
start=$(date +%s)
check_fails "a helper that does not finish in time: EIO" "Input/output error" stat "$M/slowhelper/disk.raw"
check_contains "...killed after its timeout, with its last lines" \
        "slowhelper/disk.raw: the helper VM did not finish within 2 s; killed" "$(cat "$MOUNT_LOG")"
check "...within a few seconds of it" test $(($(date +%s) - start)) -lt 60
check_eq "no image of a failed build was cached" "$before" "$(objects)"
check_eq "no scratch directories are left behind" "" "$(ls -d /tmp/packfs-disk-* /tmp/packfs-vm-* 2>/dev/null | \
        while read -r d; do [[ -O $d && $(stat -c %Y "$d") -ge $start ]] && echo "$d"; done)"

# ---- prepare = disk.qcow2: a new generation's image is built ahead ----
make_profile prepared "$KERNEL" "$INIT"
for ((i = 0; i < 600; i++)); do
        ls "$M/prepared" 2>/dev/null | grep -qx disk.qcow2 && break
        sleep 0.5
done
check_eq "prepare builds a new profile's disk.qcow2 unasked; a listing then shows it" "disk.qcow2 disk.raw" \
        "$(ls "$M/prepared" | grep '^disk\.' | paste -sd' ')"
check_contains "...in the background" "prepared/disk.qcow2: built in" "$(cat "$MOUNT_LOG")"

unmount_packfs "$M" "$MOUNT_PID"
finish
