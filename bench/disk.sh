#!/usr/bin/env bash
# packfs benchmark for disk images (issue 11): for a small closure (a kernel
# and an init, ~40 MB) and a large one (the same plus the ~600 MB closure of
# bench/run.sh's "big" profile), under TCG:
#   - the first stat of disk.qcow2 on an empty cache (it builds disk.raw, then
#     converts it), with the time of each stage from the daemon's log;
#   - a stat once cached;
#   - QEMU's start to the profile's init (a marker on the serial console);
#   - the same image made by hand (bench/disk-by-hand.sh: a helper VM running
#     sfdisk, mkfs.ext4, cp -a and grub-install, then qemu-img convert).
#
#   bench/disk.sh [--small-only] [--reps N]
#
# Needs bench/run.sh's store for the large closure (it is made by the first
# bench/run.sh). Run as root. Writes $dir/results-<date>.txt.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")/.." && pwd)
small_only=0 reps=3
while [ $# -gt 0 ]; do
        case $1 in
        --small-only) small_only=1 ;;
        --reps) reps=$2; shift ;;
        *) echo "bench/disk.sh: unknown option $1" >&2; exit 2 ;;
        esac
        shift
done
packfs=${PACKFS:-$here/build/fs/packfs}
bench=${PACKFS_BENCH_DIR:-/var/tmp/packfs-bench}
dir=$bench-disk
store=$dir/store db=$dir/db.sqlite profiles=$dir/profiles mnt=$dir/mnt
S=(--store "$store" --db "$db")
log() { printf '== %s\n' "$*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
daemon=
unmount() { fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true; [ -z "$daemon" ] || wait "$daemon" 2>/dev/null || true; daemon=; }
trap unmount EXIT
mount_fs() { # CACHE
        mkdir -p "$mnt"
        "$packfs" mount -f "${S[@]}" --profiles "$profiles" --cache "$1" "$mnt" 2>>"$dir/daemon.log" &
        daemon=$!
        for _ in $(seq 100); do mountpoint -q "$mnt" && return 0; sleep 0.1; done
        log "mount failed"; exit 1
}

kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
initrd=/boot/initrd.img-${kernel#/boot/vmlinuz-}
if [ ! -f "$dir/ready" ]; then
        log "making the disk bench store in $dir"
        rm -rf "$dir"
        mkdir -p "$dir/src/kernel/boot" "$dir/src/init/bin" "$profiles"
        "$packfs" store init "${S[@]}"
        cp "$kernel" "$dir/src/kernel/boot/vmlinuz"
        cp "$initrd" "$dir/src/kernel/boot/initrd"
        printf '#include <stdio.h>\n#include <sys/reboot.h>\n#include <unistd.h>\nint main(void) { puts("\\nPACKFS-BENCH-INIT"); fflush(stdout); sync(); reboot(RB_POWER_OFF); return 1; }\n' >"$dir/init.c"
        gcc -static -O2 -o "$dir/src/init/bin/init" "$dir/init.c"
        K=$("$packfs" store add "${S[@]}" "$dir/src/kernel")
        I=$("$packfs" store add "${S[@]}" "$dir/src/init")
        "$packfs" store profile "${S[@]}" --profiles "$profiles" small "$K" "$I" >/dev/null
        if [ -e "$bench/profiles/big" ]; then
                # The big closure's items, added to this store as they are.
                mapfile -t big < <("$packfs" store closure --store "$bench/store" --db "$bench/db.sqlite" \
                        "$(readlink -f "$bench/profiles/big")" | grep -v -- '-profile$')
                mapfile -t items < <("$packfs" store add "${S[@]}" "${big[@]}")
                "$packfs" store profile "${S[@]}" --profiles "$profiles" big "$K" "$I" "${items[@]}" >/dev/null
        fi
        rm -rf "$dir/src"
        touch "$dir/ready"
fi

boot_time() { # IMAGE: seconds from QEMU's start to the marker
        python3 - "$1" <<'PY'
import subprocess, sys, time
t0 = time.monotonic()
p = subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
                      "-drive", "file=%s,if=virtio,snapshot=on" % sys.argv[1]],
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
t = None
for line in p.stdout:
    if b"PACKFS-BENCH-INIT" in line:
        t = time.monotonic() - t0
        break
p.kill(); p.wait()
print("%.1f" % t if t is not None else "none")
PY
}
stat_ms() { python3 -c 'import os, sys, time; t = time.monotonic(); os.stat(sys.argv[1]); print("%.1f" % ((time.monotonic() - t) * 1000))' "$1"; }

out=$dir/results-$(date -u +%Y%m%d-%H%M%S).txt
{
echo "packfs disk images, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$here" rev-parse --short HEAD 2>/dev/null), $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), TCG"
printf '%-8s %-46s %s\n' profile measure value
for p in small big; do
        [ -e "$profiles/$p" ] || continue
        [ $p = big ] && [ $small_only = 1 ] && continue
        root=$(readlink -f "$profiles/$p")
        "$packfs" store closure "${S[@]}" "$root" >"$dir/closure-$p.txt"
        nar=$(du -sb --apparent-size $(cat "$dir/closure-$p.txt") | awk '{ s += $1 } END { printf "%.0f MB", s / 1e6 }')
        best_cold= best_hand=
        for ((r = 0; r < reps; r++)); do
                rm -rf "$dir/cache"
                : >"$dir/daemon.log"
                mount_fs "$dir/cache"
                t0=$(now)
                size=$(stat -c %s "$mnt/$p/disk.qcow2")
                t1=$(now)
                cold=$(secs "$t0" "$t1")
                stages=$(grep -oE "$p/disk\.(raw|qcow2): [a-zA-Z0-9 ().-]+ \(at [0-9.]+ s\)|$p/disk\.(raw|qcow2): built in [0-9.]+ s" "$dir/daemon.log" | sed "s|^$p/||" | paste -sd';' | sed 's/;/; /g')
                unmount
                mount_fs "$dir/cache"
                cached=$(stat_ms "$mnt/$p/disk.qcow2")
                boot=$(boot_time "$mnt/$p/disk.qcow2")
                unmount
                hand=$("$here/bench/disk-by-hand.sh" "$dir/closure-$p.txt" "$root" "$root/boot/vmlinuz" \
                        "$root/boot/initrd" $(( $(stat -c %s "$dir/cache/objects/"*/* 2>/dev/null | sort -n | tail -n 1) / 1048576 + 1 )) \
                        "$dir/hand.qcow2")
                hand_total=${hand##*total }
                hand_boot=$(boot_time "$dir/hand.qcow2")
                printf '%-8s %-46s %s\n' "$p" "run $((r + 1)): closure" "$nar, disk.qcow2 $((size / 1048576)) MiB"
                printf '%-8s %-46s %s\n' "$p" "  first stat of disk.qcow2, empty cache" "$cold s"
                printf '%-8s %-46s %s\n' "$p" "    stages" "$stages"
                printf '%-8s %-46s %s\n' "$p" "  by hand (helper VM: sfdisk, mkfs, cp, grub-install)" "$hand"
                printf '%-8s %-46s %s\n' "$p" "  ratio packfs / by hand" "$(ratio "$cold" "$hand_total") (target <= 1.2)"
                printf '%-8s %-46s %s\n' "$p" "  stat once cached (fresh mount)" "$cached ms (target < 10 ms)"
                printf '%-8s %-46s %s\n' "$p" "  QEMU start to init: packfs image | by hand" "$boot s | $hand_boot s"
        done
done
} | tee "$out"
