#!/usr/bin/env bash
# packfs benchmark: a cold pack.squashfs against mksquashfs (issue 12).
#
#   bench/squashfs.sh [--reps N] [--compressor C] [--level L]
#
# On bench/run.sh's store (PACKFS_BENCH_DIR, default /var/tmp/packfs-bench;
# run bench/run.sh once first to make it): `packfs build big/pack.squashfs`
# into a fresh cache (a cold image: every store file read and compressed, the
# image written and committed to the cache, fsync included), and mksquashfs of
# the same closure's store items with the same compressor, level and block
# size (128 KiB), both on every core (-processors $(nproc)), no xattrs, all
# root, times 1. The page cache is warmed first, so both read from memory; the
# runs alternate (which goes first, too), N pairs (default 3), and the table
# shows the best of each, each pair's ratio and their median, the mean CPU
# time of each (the steadier figure on a shared machine) and the output sizes. Default compressor and level:
# packfs's own (zstd 6). Then, with bench/run.sh's generation-2 profiles (one
# package changed, $PACKFS_BENCH_DIR/profiles-gen), the next generation's image
# over the cold run's cache (its store items' blocks cached; best of N, at most
# 3), against the best cold time, and a check that it has the bytes a cold
# build gives. Every timed command starts with nothing left to write back
# (sync, untimed).
# Writes the table to $PACKFS_BENCH_DIR/squashfs-<date>.txt.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")/.." && pwd)
reps=3 compressor=zstd level=6
while [ $# -gt 0 ]; do
        case $1 in
        --reps) reps=$2; shift ;;
        --compressor) compressor=$2; shift ;;
        --level) level=$2; shift ;;
        *) echo "usage: $0 [--reps N] [--compressor C] [--level L]" >&2; exit 2 ;;
        esac
        shift
done

bench=${PACKFS_BENCH_DIR:-/var/tmp/packfs-bench}
packfs=${PACKFS:-$here/build/fs/packfs}
[ -x "$packfs" ] || { echo "no $packfs: build packfs first (ninja -C build)" >&2; exit 1; }
[ -f "$bench/ready" ] || { echo "no bench store in $bench: run bench/run.sh first" >&2; exit 1; }
command -v mksquashfs >/dev/null || { echo "mksquashfs is missing (apt-get install squashfs-tools)" >&2; exit 1; }
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null
S=(--store "$bench/store" --db "$bench/db.sqlite" --profiles "$bench/profiles")
work=$(mktemp -d "$bench/squashfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
cores=$(nproc)

mapfile -t closure < <("$packfs" store closure "${S[@]:0:4}" "$(readlink -f "$bench/profiles/big")")
entries=$(find "${closure[@]}" | wc -l)
bytes=$(du -scb --apparent-size "${closure[@]}" | tail -n1 | cut -f1)
find "${closure[@]}" -type f -exec cat {} + >/dev/null     # the page cache, for both

printf '[*]\nsquashfs-compressor = %s\nsquashfs-level = %s\n' "$compressor" "$level" >"$work/bench.ini"
# mksquashfs's option for the level (xz takes none: its preset is fixed at 6 there).
case $compressor in
gzip | zstd | lzo) mk_level=(-Xcompression-level "$level") ;;
*) mk_level=() ;;
esac

now() { date +%s.%N; }
# run_packfs / run_mksquashfs: one cold build each, its wall time in seconds
# in p / m, its CPU time (user + system, all threads) added to cpu_p / cpu_m.
# Nothing of the last run is left to write back when either starts (sync,
# untimed): packfs's fsyncs (its cache is durable) would wait for the other's
# output too.
cpu_p=0 cpu_m=0
run_packfs() {
        rm -rf "$work/cache" "$work/p.sqfs"
        sync
        local t0 t1
        t0=$(now)
        /usr/bin/time -f '%U %S' -o "$work/cpu" "$packfs" build "${S[@]}" --cache "$work/cache" \
                --config "$work/bench.ini" big/pack.squashfs -o "$work/p.sqfs" 2>/dev/null
        t1=$(now)
        cpu_p=$(awk -v c="$cpu_p" '{ print c + $1 + $2 }' "$work/cpu")
        p=$(echo "$t1 - $t0" | bc)
}
run_mksquashfs() {
        rm -f "$work/m.sqfs"
        sync
        local t0 t1
        t0=$(now)
        /usr/bin/time -f '%U %S' -o "$work/cpu" mksquashfs "${closure[@]}" "$work/m.sqfs" -comp "$compressor" \
                "${mk_level[@]}" -b 131072 -processors "$cores" -no-xattrs -all-root -all-time 1 -mkfs-time 1 \
                -noappend -quiet -no-progress >/dev/null
        t1=$(now)
        cpu_m=$(awk -v c="$cpu_m" '{ print c + $1 + $2 }' "$work/cpu")
        m=$(echo "$t1 - $t0" | bc)
}

best_p= best_m= ratios=()
for ((i = 1; i <= reps; i++)); do
        # Taking turns at going first, so that a drift of the host's load
        # favours neither.
        if ((i % 2)); then
                run_packfs
                run_mksquashfs
        else
                run_mksquashfs
                run_packfs
        fi
        ratios+=("$(echo "scale=2; $p / $m" | bc)")
        [ -z "$best_p" ] || [ "$(echo "$p < $best_p" | bc)" = 1 ] && best_p=$p
        [ -z "$best_m" ] || [ "$(echo "$m < $best_m" | bc)" = 1 ] && best_m=$m
        printf 'pair %d: packfs %.2f s, mksquashfs %.2f s\n' "$i" "$p" "$m" >&2
done
psize=$(stat -c %s "$work/p.sqfs") msize=$(stat -c %s "$work/m.sqfs")

# One package changed (bench/run.sh's generation-2 profiles): the next
# generation's image with the last cold run's cache, which holds every item's
# blocks; then the same image cold, to check the bytes are the same.
gens=()
if [ -s "$bench/profiles-gen/info" ]; then
        G=(--store "$bench/store" --db "$bench/db.sqlite" --profiles "$bench/profiles-gen")
        while read -r prof item ibytes _; do
                g=
                for ((i = 1; i <= (reps < 3 ? reps : 3); i++)); do
                        rm -rf "$work/cache-gen" "$work/g.sqfs"
                        cp -a "$work/cache" "$work/cache-gen"
                        sync
                        t0=$(now)
                        "$packfs" build "${G[@]}" --cache "$work/cache-gen" --config "$work/bench.ini" \
                                "$prof/pack.squashfs" -o "$work/g.sqfs" 2>/dev/null
                        t1=$(now)
                        d=$(echo "$t1 - $t0" | bc)
                        [ -z "$g" ] || [ "$(echo "$d < $g" | bc)" = 1 ] && g=$d
                done
                rm -rf "$work/cache-gen"
                "$packfs" build "${G[@]}" --cache "$work/cache-gen" --config "$work/bench.ini" "$prof/pack.squashfs" \
                        -o "$work/gc.sqfs" 2>/dev/null
                same=no
                cmp -s "$work/g.sqfs" "$work/gc.sqfs" && same=yes
                rm -rf "$work/cache-gen"
                gens+=("$(printf '%-34s %10.2f  %.2fx of cold; %s (%s bytes) changed; same bytes as cold: %s' \
                        "$prof (gen 2)" "$g" "$(echo "scale=3; $g / $best_p" | bc)" "${item#*-}" "$ibytes" "$same")")
                printf 'gen 2 %s: %.2f s\n' "$prof" "$g" >&2
        done <"$bench/profiles-gen/info"
fi

out=$bench/squashfs-$(date -u +%Y%m%d-%H%M%S).txt
{
        printf 'pack.squashfs vs mksquashfs: %s, %s cores, %s, commit %s\n' "$(date -u '+%F %H:%M UTC')" "$cores" \
                "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
                "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')"
        printf 'closure: %d store items, %d entries, %d bytes; %s level %s, 128 KiB blocks\n' "${#closure[@]}" \
                "$entries" "$bytes" "$compressor" "$level"
        printf '%-34s %10s %14s\n' "" "best (s)" "size (bytes)"
        printf '%-34s %10.2f %14d\n' "packfs build big/pack.squashfs" "$best_p" "$psize"
        printf '%-34s %10.2f %14d\n' "mksquashfs -processors $cores" "$best_m" "$msize"
        printf 'time ratio (best): %s; per pair: %s; median %s\n' "$(echo "scale=2; $best_p / $best_m" | bc)" \
                "${ratios[*]}" "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
        printf 'CPU time (user + system), mean of %d: packfs %.2f s, mksquashfs %.2f s (ratio %.2f)\n' "$reps" \
                "$(echo "$cpu_p / $reps" | bc -l)" "$(echo "$cpu_m / $reps" | bc -l)" "$(echo "$cpu_p / $cpu_m" | bc -l)"
        printf 'size ratio: %s\n' "$(echo "scale=4; $psize / $msize" | bc)"
        for l in "${gens[@]}"; do printf '%s\n' "$l"; done
} | tee "$out"
