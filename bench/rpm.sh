#!/usr/bin/env bash
# packfs benchmark: pack.rpm against pack.tar (issue 12), on bench/run.sh's store.
#
#   bench/rpm.sh [--reps N]
#
# Uses the store bench/run.sh builds (default /var/tmp/packfs-bench, or
# $PACKFS_BENCH_DIR: store, db.sqlite, profiles/big); run bench/run.sh once
# first. Run as root. Each measurement is a fresh mount (-f, its log kept)
# reading the whole file with cat; best of N (default 3), tar and rpm taking
# turns so that both see the same machine:
#
#   cold   pack.tar and pack.rpm, each with an empty cache (so pack.rpm hashes
#          every file and its payload before its first byte; both walk the
#          closure)
#   warm   the same on a new mount over the cache the cold read left (pack.rpm's
#          digests recorded, both plans from recorded walks)
#
# Targets: cold pack.rpm <= 3x cold pack.tar, warm <= 1.1x warm pack.tar.
# Prints a table and writes it to $bench/results-rpm-<date>.txt.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")/.." && pwd)
argv=("$@")
reps=3
while [ $# -gt 0 ]; do
        case $1 in
        --reps) reps=$2; shift ;;
        -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/rpm.sh: unknown option $1" >&2; exit 2 ;;
        esac
        shift
done

packfs=${PACKFS:-$here/build/fs/packfs}
bench=${PACKFS_BENCH_DIR:-/var/tmp/packfs-bench}
[ -x "$packfs" ] || { echo "bench/rpm.sh: no $packfs (ninja -C build)" >&2; exit 1; }
[ -f "$bench/ready" ] && [ -e "$bench/profiles/big" ] || {
        echo "bench/rpm.sh: no bench store in $bench: run bench/run.sh first" >&2
        exit 1
}
# One benchmark at a time on this store (bench/run.sh takes the same lock).
if [ -z "${PACKFS_BENCH_LOCKED:-}" ]; then
        flock -n "$bench.lock" true || printf '== another benchmark is using %s; waiting for it\n' "$bench" >&2
        PACKFS_BENCH_LOCKED=1 exec flock -o "$bench.lock" "$BASH" "$0" "${argv[@]}"
fi

S=(--store "$bench/store" --db "$bench/db.sqlite" --profiles "$bench/profiles")
mnt=$bench/mnt-rpm
work=$bench/rpm
mkdir -p "$work" "$mnt"
log() { printf '== %s\n' "$*" >&2; }

pid=
umount_it() {
        if mountpoint -q "$mnt" 2>/dev/null; then
                fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"
        fi
        if [ -n "$pid" ]; then
                wait "$pid" 2>/dev/null || true
                pid=
        fi
}
trap umount_it EXIT

# mount_it CACHE LOG
mount_it() {
        umount_it
        "$packfs" mount -f "${S[@]}" --cache "$1" "$mnt" 2>>"$2" &
        pid=$!
        for _ in $(seq 200); do
                mountpoint -q "$mnt" && return 0
                sleep 0.05
        done
        echo "bench/rpm.sh: the mount did not come up; $(tail -5 "$2")" >&2
        exit 1
}

now() { echo "${EPOCHREALTIME/./}"; }
# timed FILE: microseconds to cat FILE
timed() {
        local t0 t1
        t0=$(now)
        cat "$1" > /dev/null
        t1=$(now)
        echo $((t1 - t0))
}
min() { if [ -z "$1" ] || [ "$2" -lt "$1" ]; then echo "$2"; else echo "$1"; fi; }
secs() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# The page cache holds the store for every run, as it would on a machine
# serving packs (bench/run.sh measures the same way).
log "reading the closure once into the page cache"
mount_it "$work/cache-prime" "$work/prime.log"
cat "$mnt/big/pack.tar" > /dev/null
size_tar=$(stat -c %s "$mnt/big/pack.tar")
t0=$(now)
size_rpm=$(stat -c %s "$mnt/big/pack.rpm")
t_stat=$(( $(now) - t0 ))
umount_it

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
cold_tar= cold_rpm= warm_tar= warm_rpm= first_byte=
for r in $(seq "$reps"); do
        log "round $r of $reps"
        for f in tar rpm; do
                c=$work/cache-$f
                rm -rf "$c"
                : > "$work/$f.log"
                mount_it "$c" "$work/$f.log"
                t=$(timed "$mnt/big/pack.$f")
                if [ "$f" = tar ]; then cold_tar=$(min "$cold_tar" "$t"); else cold_rpm=$(min "$cold_rpm" "$t"); fi
                # The warm read: a new mount over the cache the cold one filled.
                mount_it "$c" "$work/$f.log"
                t=$(timed "$mnt/big/pack.$f")
                if [ "$f" = tar ]; then warm_tar=$(min "$warm_tar" "$t"); else warm_rpm=$(min "$warm_rpm" "$t"); fi
                if [ "$f" = rpm ]; then
                        # The first byte of a cold pack.rpm: every digest first.
                        rm -rf "$c"
                        mount_it "$c" "$work/$f.log"
                        t0=$(now)
                        head -c1 "$mnt/big/pack.rpm" > /dev/null
                        first_byte=$(min "$first_byte" $(( $(now) - t0 )))
                fi
                umount_it
        done
done
# The bytes are right: rpm checks every digest (when it is installed).
check="rpm not installed"
if command -v rpm > /dev/null; then
        mount_it "$work/cache-rpm" "$work/rpm.log"
        check=$(rpm -K --nosignature "$mnt/big/pack.rpm" 2>&1 | sed 's/.*: //')
        umount_it
fi

out=$bench/results-rpm-$(date -u +%Y%m%d-%H%M%S).txt
{
        echo "pack.rpm vs pack.tar, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, packfs $("$packfs" --version)"
        echo "  (best of $reps; page cache warm; each read a fresh mount; load average $load_before before," \
                "$(cut -d' ' -f1-3 /proc/loadavg) after)"
        printf '  %-44s %12s\n' "pack.tar size" "$size_tar"
        printf '  %-44s %12s\n' "pack.rpm size" "$size_rpm"
        printf '  %-44s %10s ms\n' "stat pack.rpm, cold cache (planned)" "$((t_stat / 1000))"
        printf '  %-44s %10s s\n' "cold cat pack.tar (empty cache)" "$(secs "$cold_tar")"
        printf '  %-44s %10s s   %sx pack.tar (target <= 3)\n' "cold cat pack.rpm (empty cache)" \
                "$(secs "$cold_rpm")" "$(ratio "$cold_rpm" "$cold_tar")"
        printf '  %-44s %10s s\n' "  of which the first byte (every digest)" "$(secs "$first_byte")"
        printf '  %-44s %10s s\n' "warm cat pack.tar (new mount)" "$(secs "$warm_tar")"
        printf '  %-44s %10s s   %sx pack.tar (target <= 1.1)\n' "warm cat pack.rpm (new mount, digests recorded)" \
                "$(secs "$warm_rpm")" "$(ratio "$warm_rpm" "$warm_tar")"
        printf '  %-44s %s\n' "rpm -K --nosignature" "$check"
        echo "  daemon: $(grep -h 'pack.rpm: hashed' "$work/rpm.log" | tail -2 | sed 's/^.*pack.rpm: //' | paste -sd'|' -)"
} | tee "$out"
