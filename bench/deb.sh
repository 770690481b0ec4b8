#!/usr/bin/env bash
# pack.deb against pack.tar (issue 12's target: pack.deb streams within 1.1x of
# pack.tar), on bench/run.sh's store: the same mount, `cat pack.deb` and
# `cat pack.tar` taking turns, each pack's pages evicted before its read (as
# run.sh does; the store's own pages stay warm), best of N and the median of
# the pairs' ratios. Also the first stat of each on a fresh mount (planning).
#
#   bench/deb.sh [--reps N]
#
# Needs the store run.sh builds (run it once first); run as root. Its mount and
# cache are its own ($PACKFS_BENCH_DIR/mnt-deb, cache-deb); it takes run.sh's
# lock, so the two never time each other's load.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")/.." && pwd)
argv=("$@")
reps=3
while [ $# -gt 0 ]; do
        case $1 in
        --reps) reps=$2; shift ;;
        -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/deb.sh: unknown option $1" >&2; exit 2 ;;
        esac
        shift
done

packfs=${PACKFS:-$here/build/fs/packfs}
bench=${PACKFS_BENCH_DIR:-/var/tmp/packfs-bench}
[ -x "$packfs" ] || { echo "bench/deb.sh: build packfs first ($packfs)" >&2; exit 1; }
[ -f "$bench/db.sqlite" ] && [ -e "$bench/profiles/big" ] ||
        { echo "bench/deb.sh: no bench store in $bench: run bench/run.sh once" >&2; exit 1; }

if [ -z "${PACKFS_BENCH_LOCKED:-}" ]; then
        flock -n "$bench.lock" true || printf '== another benchmark is using %s; waiting for it\n' "$bench" >&2
        PACKFS_BENCH_LOCKED=1 exec flock -o "$bench.lock" "$BASH" "$0" "${argv[@]}"
fi

S=(--store "$bench/store" --db "$bench/db.sqlite" --profiles "$bench/profiles")
mnt=$bench/mnt-deb cache=$bench/cache-deb
log() { printf '== %s\n' "$*" >&2; }

unmount() {
        mountpoint -q "$mnt" 2>/dev/null || return 0
        fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"
        for _ in $(seq 100); do
                mountpoint -q "$mnt" 2>/dev/null || break
                sleep 0.02
        done
        sleep 0.2 # the daemon's exit
}
mount_fs() {
        unmount
        mkdir -p "$mnt"
        "$packfs" mount "${S[@]}" --cache "$cache" "$mnt"
}
trap unmount EXIT

now() { echo "${EPOCHREALTIME/./}"; }
evict() { dd if="$1" iflag=nocache count=0 status=none; } # the pack's pages, not the store's
ms() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1000 }'; }
mbs() { awk -v u="$1" -v b="$2" 'BEGIN { printf "%.0f MB/s", b / u }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

tar=$mnt/big/pack.tar deb=$mnt/big/pack.deb
rm -rf "$cache"
mount_fs
log "warming: the store's pages and both plans"
cat "$tar" > /dev/null
cat "$deb" > /dev/null
tar_size=$(stat -c %s "$tar") deb_size=$(stat -c %s "$deb")
[ "$(cat "$deb" | wc -c)" = "$deb_size" ] || { echo "bench/deb.sh: pack.deb's size is wrong" >&2; exit 1; }

log "cat pack.tar / cat pack.deb, taking turns (alternating which first), $reps pairs"
t_tar= t_deb= pairs=()
# The daemon's CPU time (user + system, in clock ticks): what a read costs it,
# whatever else the machine runs.
daemon=$(for p in $(pgrep -x packfs); do
        tr '\0' '\n' < /proc/"$p"/cmdline | tail -n1 | grep -qxF "$mnt" && echo "$p"; done | head -n1)
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$daemon"/stat; }
cpu_tar=0 cpu_deb=0
# timed VAR FILE: the wall time of `cat FILE` after evicting its pages; the
# daemon's ticks go to cpu_tar or cpu_deb.
timed() {
        local t0 t1 c0 c1
        evict "$2"
        c0=$(ticks)
        t0=$(now); cat "$2" > /dev/null; t1=$(now)
        c1=$(ticks)
        if [ "$2" = "$tar" ]; then cpu_tar=$((cpu_tar + c1 - c0)); else cpu_deb=$((cpu_deb + c1 - c0)); fi
        printf -v "$1" '%s' $((t1 - t0))
}
for i in $(seq "$reps"); do
        # Which goes first alternates, so neither always follows the other.
        if ((i % 2)); then timed a "$tar"; timed b "$deb"; else timed b "$deb"; timed a "$tar"; fi
        if [ -z "$t_tar" ] || [ $a -lt "$t_tar" ]; then t_tar=$a; fi
        if [ -z "$t_deb" ] || [ $b -lt "$t_deb" ]; then t_deb=$b; fi
        pairs+=("$(ratio $b $a)")
done
median=$(printf '%s\n' "${pairs[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')

log "first stat on a fresh mount (the plan), cache kept"
best_stat() { # FILE: best of $reps, a fresh mount each
        local best= t0 t1
        for _ in $(seq "$reps"); do
                mount_fs
                t0=$(now); stat -c %s "$1" > /dev/null; t1=$(now)
                if [ -z "$best" ] || [ $((t1 - t0)) -lt "$best" ]; then best=$((t1 - t0)); fi
        done
        echo "$best"
}
s_tar=$(best_stat "$tar")
s_deb=$(best_stat "$deb")
unmount

commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')
printf '\npack.deb vs pack.tar, %s, %s, commit %s, %s\n' "$(date -u +%F)" \
        "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs" "$commit" "$("$packfs" --version)"
printf '  %-44s %s\n' "pack.tar size" "$tar_size bytes" \
        "pack.deb size" "$deb_size bytes" \
        "cat pack.tar (best of $reps)" "$(ms "$t_tar")  $(mbs "$t_tar" "$tar_size")" \
        "cat pack.deb (best of $reps)" "$(ms "$t_deb")  $(mbs "$t_deb" "$deb_size")" \
        "pack.deb / pack.tar, best" "$(ratio "$t_deb" "$t_tar")  (target <= 1.1)" \
        "pack.deb / pack.tar, median of the pairs" "$median  (${pairs[*]})" \
        "daemon CPU per cat: pack.tar" "$(awk -v t="$cpu_tar" -v n="$reps" -v h="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f ms", 1000 * t / n / h }')" \
        "daemon CPU per cat: pack.deb" "$(awk -v t="$cpu_deb" -v n="$reps" -v h="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f ms", 1000 * t / n / h }')" \
        "pack.deb / pack.tar, daemon CPU" "$(ratio "$cpu_deb" "$cpu_tar")" \
        "first stat, fresh mount: pack.tar" "$(ms "$s_tar")" \
        "first stat, fresh mount: pack.deb" "$(ms "$s_deb")"
