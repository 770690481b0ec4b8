#!/usr/bin/env bash
# The baseline of bench/disk.sh: a bootable qcow2 of a closure made by hand the
# way issue 11's machine report did it, and as Guix's VM image builds used
# to: a helper VM (the host's kernel, a busybox initramfs with the virtio, 9p
# and ext4 modules) with the host's root read-only over virtio-9p, chrooted
# into to run sfdisk, mkfs.ext4, cp -a of the closure and grub-install on
# /dev/vda; then qemu-img convert.
#
#   bench/disk-by-hand.sh CLOSURE_FILE PROFILE_ITEM KERNEL INITRD SIZE_MIB OUT.qcow2
#
# CLOSURE_FILE lists the store paths, one a line. Prints "seconds: initramfs
# N, vm N, convert N, total N" on stdout. Run as root (nothing else needs it,
# but the host's root is exported to the guest).
set -euo pipefail
closure=$1 profile=$2 kernel=$3 initrd=$4 size_mib=$5 out=$6
helper_kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
release=${helper_kernel#/boot/vmlinuz-}
work=$(mktemp -d /var/tmp/disk-by-hand.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(now)
ir=$work/ir
mkdir -p "$ir"/{bin,dev,proc,sys,host,tmp,lib/modules}
cp /bin/busybox "$ir/bin/"
# Modules with their dependencies, dependencies first (modules.dep lists them
# so that the last loads first).
python3 - "/lib/modules/$release" "$ir/lib/modules" <<'PY'
import os, shutil, sys
mdir, out = sys.argv[1:]
dep = {}
for line in open(os.path.join(mdir, "modules.dep")):
    k, v = line.split(":", 1)
    dep[k] = v.split()
by_name = {os.path.basename(k).split(".")[0].replace("-", "_"): k for k in dep}
order = []
def visit(k):
    if k in order:
        return
    for d in reversed(dep[k]):
        visit(d)
    order.append(k)
for n in ["virtio_pci", "virtio_blk", "9pnet_virtio", "9p", "crc32c_generic", "ext4"]:
    if n in by_name:
        visit(by_name[n])
with open(os.path.join(out, "order"), "w") as f:
    for k in order:
        shutil.copy(os.path.join(mdir, k), out)
        f.write(os.path.basename(k) + "\n")
PY
cat >"$ir/init" <<'SH'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
while read -r m; do insmod "/lib/modules/$m"; done </lib/modules/order
mount -t 9p -o trans=virtio,version=9p2000.L,ro host /host
sh -e /script
echo "BY-HAND-STATUS $?"
sync
poweroff -f
SH
chmod +x "$ir/init"
store_dir=$(dirname "$(head -n 1 "$closure")")
cat >"$work/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
menuentry "by hand" {
	search --no-floppy --label --set=root packfs-root
	linux /boot/vmlinuz root=LABEL=packfs-root ro init=$profile/bin/init console=ttyS0
	initrd /boot/initrd
}
CFG
cat >"$ir/script" <<SH
mount -t devtmpfs dev /host/dev
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t tmpfs run /host/run
chroot /host sh -e -c '
printf "label: dos\nstart=2048, type=83, bootable\n" | sfdisk -q /dev/vda
mkfs.ext4 -q -L packfs-root /dev/vda1
mkdir /run/root
mount /dev/vda1 /run/root
mkdir -p /run/root$store_dir /run/root/dev /run/root/proc /run/root/sys /run/root/run /run/root/boot/grub
mkdir -p /run/root/tmp && chmod 1777 /run/root/tmp
while read -r item; do cp -a "\$item" /run/root$store_dir/; done <$closure
cp $kernel /run/root/boot/vmlinuz
cp $initrd /run/root/boot/initrd
cp $work/grub.cfg /run/root/boot/grub/grub.cfg
grub-install --target=i386-pc --boot-directory=/run/root/boot /dev/vda 2>&1 | grep -v "Installation finished" || true
umount /run/root
'
SH
(cd "$ir" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio"
truncate -s "${size_mib}M" "$work/disk.raw"
t1=$(now)
qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 -nodefaults -display none -no-reboot -serial stdio \
        -kernel "$helper_kernel" -initrd "$work/initramfs.cpio" -append "console=ttyS0 quiet panic=-1" \
        -drive "file=$work/disk.raw,format=raw,if=virtio" \
        -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
        </dev/null >"$work/serial.log" 2>&1
grep -q "BY-HAND-STATUS 0" "$work/serial.log" || {
        echo "disk-by-hand: the helper failed:" >&2
        tail -n 20 "$work/serial.log" >&2
        exit 1
}
t2=$(now)
qemu-img convert -q -f raw -O qcow2 "$work/disk.raw" "$out"
t3=$(now)
echo "seconds: initramfs $(secs "$t0" "$t1"), vm $(secs "$t1" "$t2"), convert $(secs "$t2" "$t3"), total $(secs "$t0" "$t3")"
