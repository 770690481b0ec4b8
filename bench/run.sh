#!/usr/bin/env bash
# packfs benchmark: the performance targets of issues 2, 3, 9 and 10, measured in one run.
#
#   bench/run.sh [--quick] [--rebuild] [--profile] [--reps N] [--xz-reps N]
#                [--compressed-only | --no-compressed | --browse-only | --no-browse |
#                 --docker-only | --no-docker] [--codecs "zst gz xz"] [--pairs N]
#
#   --quick    a small store (~55 MB, ~3,000 files) instead of the >=500 MB,
#              >=15,000-file closure the targets are stated for
#   --rebuild  throw the cached bench store away and make it again
#   --profile  afterwards, look at where the daemon's time goes while reading
#              pack.tar: strace -c, perf stat, perf record (slows nothing measured)
#   --reps N   best of N for every timing (default 3)
#   --xz-reps N  cold runs of pack.tar.xz and of tar | xz (default 2: xz -6 of
#              the full closure takes 2 minutes a side, and one pair is at the
#              mercy of the host: 0.90x to 1.04x in single pairs); 0 skips xz
#              (in section i too: its xz warm and its --list all find)
#   --compressed-only  only the compressed packs of issue 3 (section h)
#   --codecs LIST      which of them (default "zst gz xz"; also what section i
#              warms)
#   --no-compressed    only the pack.tar measurements of issue 2 (sections a-g)
#   --browse-only      only browsing, warm and prepare of issue 9 (section i):
#              cold ls/find of a view, the first stat of a warmed pack, cat
#              pack.tar beside a background (prepare) xz encoding, SIGINT
#   --no-browse        everything but section i
#   --docker-only      only docker.tar, docker.tar.zst and oci/ of issue 10
#              (section j): cold and warm docker.tar against cat pack.tar (|
#              openssl dgst -sha256), docker.tar.zst against docker save | zstd
#              of the same image in a dockerd of the bench's own (vfs storage
#              under $PACKFS_BENCH_DIR/docker, ~22 GB for the full store, kept
#              for the next run), a changed generation, skopeo inspect oci:
#   --no-docker        everything but section j
#   --pairs N  section i's with/without-prepare cat pairs (default 6)
#   --setup-only       make the bench store and the generation-2 profiles
#              (what bench/squashfs.sh, deb.sh and rpm.sh read), then stop
#
# The store is built once from directories of /usr and cached under
# $PACKFS_BENCH_DIR (default /var/tmp/packfs-bench, or ...-quick). Run as root
# (FUSE mounts, the readahead knob in /sys, perf). Every mount gets its own
# --cache under $PACKFS_BENCH_DIR, never the system's. Prints a table and writes
# it to $PACKFS_BENCH_DIR/results-<date>.txt. See docs/performance.md.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")/.." && pwd)
argv=("$@")
setup_only=0 quick=0 rebuild=0 profile=0 reps=3 xz_reps=2 issue2=1 compressed=1 browse=1 docker=1 b_pairs=6 codecs="zst gz xz"
while [ $# -gt 0 ]; do
        case $1 in
        --quick) quick=1 ;;
        --rebuild) rebuild=1 ;;
        --profile) profile=1 ;;
        --reps) reps=$2; shift ;;
        --xz-reps) xz_reps=$2; shift ;;
        --compressed-only) issue2=0 browse=0 docker=0 ;;
        --no-compressed) compressed=0 browse=0 docker=0 ;;
        --browse-only) issue2=0 compressed=0 docker=0 ;;
        --no-browse) browse=0 ;;
        --docker-only) issue2=0 compressed=0 browse=0 ;;
        --no-docker) docker=0 ;;
        --pairs) b_pairs=$2; shift ;;
        --setup-only) setup_only=1 ;;
        --codecs) codecs=$2; shift ;;
        -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
        esac
        shift
done

packfs=${PACKFS:-$here/build/fs/packfs}
if [ ! -x "$packfs" ]; then
        (cd "$here" && { [ -f build/build.ninja ] || meson setup build >/dev/null; } && ninja -C build >/dev/null)
fi

# The closure is made of the machine's installed Debian packages, one store
# item per package (its files from `dpkg -L`), taken in name order: a closure
# shaped like a real profile's, hundreds of items of every size, so "one
# package changed" is one package. Packages over max_item bytes are skipped so
# no single one is a large part of the closure.
if [ $quick = 1 ]; then
        bench=${PACKFS_BENCH_DIR:-/var/tmp/packfs-bench-quick}
        min_bytes=$((40 * 1000 * 1000)) min_files=2000 max_item=$((4 * 1000 * 1000))
else
        bench=${PACKFS_BENCH_DIR:-/var/tmp/packfs-bench}
        min_bytes=$((600 * 1000 * 1000)) min_files=20000 max_item=$((40 * 1000 * 1000))
fi

# One run at a time per bench directory: two would share its mount points and
# caches, and each would time the other's load. The lock is held by flock(1)
# (-o: not by the daemons this script starts).
if [ -z "${PACKFS_BENCH_LOCKED:-}" ]; then
        flock -n "$bench.lock" true || printf '== another bench/run.sh is using %s; waiting for it\n' "$bench" >&2
        PACKFS_BENCH_LOCKED=1 exec flock -o "$bench.lock" "$BASH" "$0" "${argv[@]}"
fi

store=$bench/store db=$bench/db.sqlite profiles=$bench/profiles profiles100=$bench/profiles100
S=(--store "$store" --db "$db")
mnt=$bench/mnt
# Encoded packs (issue 3) go to caches of the bench's own: $cache for $mnt,
# $cache_ls for the 100-profile mount, wiped when a measurement needs them cold.
cache=$bench/cache cache_ls=$bench/cache-ls
daemon_log=$bench/daemon.log
profiles_gen=$bench/profiles-gen
version=$("$packfs" --version)

log() { printf '== %s\n' "$*" >&2; }

# --- mounting -----------------------------------------------------------------

daemon_pid=
# The packfs daemon serving MOUNTPOINT (a live process whose last argument it is).
find_daemon() {
        local p
        for p in $(pgrep -x packfs || true); do
                [ "$(awk '/^State:/ {print $2}' /proc/"$p"/status 2>/dev/null)" = Z ] && continue
                if tr '\0' '\n' 2>/dev/null < /proc/"$p"/cmdline | tail -n1 | grep -qxF "$1"; then
                        echo "$p"
                        return 0
                fi
        done
        return 1
}

unmount() {
        local m=$1 p
        mountpoint -q "$m" 2>/dev/null || return 0
        p=$(find_daemon "$m" || true)
        fusermount3 -u "$m" 2>/dev/null || umount "$m"
        # Wait for the daemon to go, so the next mount starts from nothing.
        for _ in $(seq 100); do
                [ -z "$p" ] && break
                [ -d /proc/"$p" ] || break
                [ "$(awk '/^State:/ {print $2}' /proc/"$p"/status 2>/dev/null)" = Z ] && break
                sleep 0.02
        done
}

# mount_fs MOUNTPOINT PROFILES_ROOT [CACHE]: a fresh daemon, no plans, no
# kernel caches; the cache of encoded packs is CACHE (default $cache).
mount_fs() {
        unmount "$1"
        mkdir -p "$1"
        "$packfs" mount "${S[@]}" --cache "${3:-$cache}" --profiles "$2" "$1"
        daemon_pid=$(find_daemon "$1")
}

# The docker daemon of section j (issue 10): its own data root, exec root,
# pidfile and socket under $bench/docker, vfs storage (no overlay, no
# networking set-up). Started by start_dockerd, stopped by its pid.
dk=$bench/docker
DOCKER=(docker -H "unix://$dk/docker.sock")
dockerd_pid=
start_dockerd() {
        mkdir -p "$dk/data" "$dk/exec"
        dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
                --data-root "$dk/data" --exec-root "$dk/exec" --pidfile "$dk/dockerd.pid" \
                -H "unix://$dk/docker.sock" >> "$dk/dockerd.log" 2>&1 &
        dockerd_pid=$!
        for _ in $(seq 300); do
                "${DOCKER[@]}" version > /dev/null 2>&1 && return 0
                kill -0 "$dockerd_pid" 2> /dev/null || break
                sleep 0.1
        done
        log "dockerd did not start; see $dk/dockerd.log"
        exit 1
}
stop_dockerd() {
        [ -n "$dockerd_pid" ] || return 0
        kill "$dockerd_pid" 2> /dev/null || true
        # It stops the containerd it started before it exits.
        for _ in $(seq 300); do
                kill -0 "$dockerd_pid" 2> /dev/null || break
                sleep 0.1
        done
        wait "$dockerd_pid" 2> /dev/null || true
        dockerd_pid=
}

cleanup() {
        stop_dockerd || true
        unmount "$mnt" || true
        unmount "$bench/mnt100" || true
        unmount "$bench/mntdbg" || true
        unmount "$bench/mnt-browse" || true
}
trap cleanup EXIT

# --- the store ----------------------------------------------------------------

make_store() {
        local bytes=0 files=0 src name staging=$bench/staging items=() i
        log "building the bench store in $bench (once; reused while $bench/ready says '$version')"
        if [ -d "$bench" ]; then
                cleanup
                chmod -R u+w "$bench" 2>/dev/null || true
                rm -rf "$bench"
        fi
        mkdir -p "$bench" "$profiles" "$profiles100" "$staging"
        "$packfs" store init "${S[@]}"

        # Installed packages, one store item each, until the closure is big
        # enough. A package's item holds the regular files, symlinks and
        # directories dpkg lists for it, at their paths under /.
        local pkg list kb
        while read -r kb pkg; do
                [ "$bytes" -ge "$min_bytes" ] && [ "$files" -ge "$min_files" ] && break
                [ $((kb * 1024)) -le "$max_item" ] || continue
                list=$staging/$pkg.list
                # Paths under a symlinked top directory (/lib -> usr/lib on a
                # merged-/usr system) are left out: their files are listed
                # under /usr too.
                dpkg-query -L "$pkg" 2> /dev/null | while read -r f; do
                        f=${f#/} top=${f%%/*}
                        [ -n "$f" ] && [ "$f" != . ] && [ ! -L "/$top" ] || continue
                        [ -L "/$f" ] || [ -f "/$f" ] || [ -d "/$f" ] && echo "$f"
                done > "$list" || true
                [ -s "$list" ] || { rm -f "$list"; continue; }
                name=$(echo "$pkg" | tr -c 'A-Za-z0-9+._?=\n-' '_')
                mkdir -p "$staging/$name"
                { tar -C / --no-recursion -T "$list" -cf - 2> /dev/null || true; } | tar -C "$staging/$name" -xf - || true
                rm -f "$list"
                bytes=$((bytes + $(du -sb --apparent-size "$staging/$name" | cut -f1)))
                files=$((files + $(find "$staging/$name" | wc -l)))
                items+=("$("$packfs" store add "${S[@]}" "$staging/$name")")
                chmod -R u+w "$staging/$name" && rm -rf "${staging:?}/$name"
        done < <(dpkg-query -W -f '${Installed-Size} ${Package}\n' | sort -k2)
        log "  ${#items[@]} packages -> $((bytes / 1000000)) MB, $files entries"
        "$packfs" store profile "${S[@]}" --profiles "$profiles" big "${items[@]}" >/dev/null

        # Small items: the "small" profile (a baseline for memory) and the 100
        # profiles of the ls target.
        for i in $(seq -w 0 99); do
                mkdir -p "$staging/small-$i/bin" "$staging/small-$i/share/doc/small-$i"
                printf '#!/bin/sh\necho %s\n' "$i" > "$staging/small-$i/bin/hello-$i"
                chmod +x "$staging/small-$i/bin/hello-$i"
                echo "item $i" > "$staging/small-$i/share/doc/small-$i/README"
        done
        mapfile -t items < <("$packfs" store add "${S[@]}" "$staging"/small-*)
        "$packfs" store profile "${S[@]}" --profiles "$profiles" small "${items[0]}" >/dev/null
        for i in $(seq 0 99); do
                "$packfs" store profile "${S[@]}" --profiles "$profiles100" "$(printf 'p%03d' "$i")" \
                        "${items[$i]}" "${items[$(((i + 1) % 100))]}" >/dev/null
        done
        rm -rf "$staging"
        echo "$version" > "$bench/ready"
}

# A store of 10,000 items with 3 references each, registered straight in the
# database (closures are computed from Refs alone): the "10,000-item store
# answers in well under 100 ms" target of issue 2.
make_db10k() {
        local d=$bench/db10k.sqlite
        [ -f "$d" ] && return 0
        rm -f "$d"
        "$packfs" store init --store "$bench/store10k" --db "$d"
        sqlite3 "$d" <<SQL
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
INSERT INTO ValidPaths (id, path, hash, registrationTime, narSize)
  SELECT i, '$bench/store10k/' || printf('%032d', i) || '-item-' || i,
         'sha256:' || printf('%064d', 0), 1, 1000 FROM n;
WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
INSERT OR IGNORE INTO Refs (referrer, reference)
  SELECT i, i - 1 FROM n UNION ALL
  SELECT i, (i * 7) % (i - 1) + 1 FROM n UNION ALL
  SELECT i, (i * 13) % (i - 1) + 1 FROM n;
COMMIT;
SQL
}

if [ $rebuild = 1 ] || [ ! -f "$bench/ready" ] || [ "$(cat "$bench/ready")" != "$version" ]; then
        make_store
fi
make_db10k || { rm -f "$bench/db10k.sqlite"; log "no 10,000-item database (sqlite3 missing?)"; }

big=$(readlink -f "$profiles/big")
mapfile -t closure < <("$packfs" store closure "${S[@]}" "$big")
rel=("${closure[@]#/}")
entries=$(find "${closure[@]}" | wc -l)
bytes=$(du -scb --apparent-size "${closure[@]}" | tail -n1 | cut -f1)

# --- timing -------------------------------------------------------------------

# best_of VAR PRE CMD: best wall time of $reps runs of CMD (a shell string), in
# microseconds, in VAR; PRE (untimed) runs before each one. No forks around the
# clock: EPOCHREALTIME is read by the shell itself.
best_of() {
        local __var=$1 pre=$2 cmd=$3 best= t0 t1 d
        for _ in $(seq "$reps"); do
                [ -n "$pre" ] && eval "$pre"
                t0=${EPOCHREALTIME/./}
                eval "$cmd"
                t1=${EPOCHREALTIME/./}
                d=$((t1 - t0))
                if [ -z "$best" ] || [ "$d" -lt "$best" ]; then best=$d; fi
        done
        printf -v "$__var" '%s' "$best"
}

ms() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1000 }'; }
mbs() { awk -v u="$1" -v b="$2" 'BEGIN { printf "%.0f MB/s", b / u }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
kib() { awk '/^'"$2"':/ {print $2}' /proc/"$1"/status; }

pack=$mnt/big/pack.tar
evict() { dd if="$1" iflag=nocache count=0 status=none; }  # drops the pack's pages, not the store's
tar_cmd="tar -C / --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner -cf - ${rel[*]} | cat > /dev/null"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "closure: ${#closure[@]} items, $entries entries, $((bytes / 1000000)) MB; warming the page cache"
tar -C / -cf - "${rel[@]}" | cat > /dev/null
mount_fs "$mnt" "$profiles"
cat "$pack" > /dev/null
pack_size=$(stat -c %s "$pack")
tar_size=$(eval "${tar_cmd% | cat > /dev/null}" | wc -c)
bdi=$(awk -v m="$mnt" '$5 == m {print $3}' /proc/self/mountinfo)
read_ahead=$(cat /sys/class/bdi/"$bdi"/read_ahead_kb 2>/dev/null || echo '?')

if [ $issue2 = 1 ]; then
        log "(a)(b) streaming pack.tar vs GNU tar"
        # GNU tar and cat of pack.tar take turns, so both see the same machine; the
        # ratio is reported for the best of each and as the median of the pairs.
        t_tar= t_cat= pair_ratios=()
        for _ in $(seq "$reps"); do
                t0=${EPOCHREALTIME/./}; eval "$tar_cmd"; t1=${EPOCHREALTIME/./}
                evict "$pack"
                t2=${EPOCHREALTIME/./}; cat "$pack" > /dev/null; t3=${EPOCHREALTIME/./}
                a=$((t1 - t0)) b=$((t3 - t2))
                if [ -z "$t_tar" ] || [ $a -lt "$t_tar" ]; then t_tar=$a; fi
                if [ -z "$t_cat" ] || [ $b -lt "$t_cat" ]; then t_cat=$b; fi
                pair_ratios+=("$(ratio $b $a)")
        done
        median_ratio=$(printf '%s\n' "${pair_ratios[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
        best_of t_dd "evict $pack" "dd if=$pack of=/dev/null bs=1M status=none"
        best_of t_cached "" "cat $pack > /dev/null"
        best_of t_cold "mount_fs $mnt $profiles" "cat $pack > /dev/null"
        best_of t_par "evict $pack" "for o in 0 1 2 3; do dd if=$pack of=/dev/null bs=1M skip=\$((o * $pack_size / 4)) count=$((pack_size / 4 / 1048576 + 1)) iflag=skip_bytes status=none & done; wait"

        log "(d) daemon memory"
        mount_fs "$mnt" "$profiles"
        cat "$mnt/small/pack.tar" > /dev/null
        rss_small=$(kib "$daemon_pid" VmHWM)
        cat "$pack" > /dev/null
        evict "$pack"
        cat "$pack" > /dev/null
        rss_seq=$(kib "$daemon_pid" VmHWM)
        # 16 readers at once: as many requests in flight as the daemon has threads.
        evict "$pack"
        for o in $(seq 0 15); do
                dd if="$pack" of=/dev/null bs=1M skip=$((o * pack_size / 16)) count=$((pack_size / 16 / 1048576 + 1)) \
                        iflag=skip_bytes status=none &
        done
        wait
        rss_big=$(kib "$daemon_pid" VmHWM)
        rss_now=$(kib "$daemon_pid" VmRSS)
        threads=$(kib "$daemon_pid" Threads)
        # Plans stay cached (by count, not bytes): plan pack.tar of every item of the
        # closure too, through the .store views.
        for item in "${closure[@]}"; do stat -c %s "$mnt/.store/${item##*/}/pack.tar" > /dev/null; done
        rss_views=$(kib "$daemon_pid" VmRSS)

        log "(c) first byte"
        best_of t_first "mount_fs $mnt $profiles" "head -c1 $pack > /dev/null"
        best_of t_stat "mount_fs $mnt $profiles" "stat -c %s $pack > /dev/null"
        best_of t_first2 "" "head -c1 $pack > /dev/null"
        best_of t_middle "evict $pack" "dd if=$pack of=/dev/null bs=64k count=1 skip=$((pack_size / 2)) iflag=skip_bytes status=none"

        log "(e) ls of 100 profiles"
        m100="$bench/mnt100 $profiles100 $cache_ls"
        best_of t_ls "mount_fs $m100" "ls $bench/mnt100 > /dev/null"
        best_of t_ls2 "" "ls $bench/mnt100 > /dev/null"
        best_of t_lsl "mount_fs $m100" "ls -l $bench/mnt100 > /dev/null"
        best_of t_lsl2 "" "ls -l $bench/mnt100 > /dev/null"
        # ls -l of a view stats pack.tar.{gz,xz,zst}, which encodes them (SPEC: on
        # first stat) unless the cache has them: measured both ways, never mixed.
        unmount "$bench/mnt100"
        rm -rf "$cache_ls"
        mount_fs $m100
        ls -l "$bench/mnt100/p000" > /dev/null
        best_of t_lsview "mount_fs $m100" "ls -l $bench/mnt100/p000 > /dev/null"
        best_of t_lsview_cold "unmount $bench/mnt100; rm -rf $cache_ls; mount_fs $m100" "ls -l $bench/mnt100/p000 > /dev/null"
        n_ls=$(ls "$bench/mnt100" | wc -l)
        unmount "$bench/mnt100"

        log "(f) closures"
        best_of t_closure "" "$packfs store closure ${S[*]} $big > /dev/null"
        t_closure10k= n10k=
        if [ -f "$bench/db10k.sqlite" ]; then
                top=$(sqlite3 "$bench/db10k.sqlite" 'SELECT path FROM ValidPaths WHERE id = 10000')
                n10k=$("$packfs" store closure --store "$bench/store10k" --db "$bench/db10k.sqlite" "$top" | wc -l)
                best_of t_closure10k "" "$packfs store closure --store $bench/store10k --db $bench/db10k.sqlite $top > /dev/null"
        fi
        best_of t_true "" "$packfs --version > /dev/null"

        log "(g) request sizes the kernel sends"
        dbg=$bench/mntdbg
        mkdir -p "$dbg"
        "$packfs" mount -f -d "${S[@]}" --cache "$cache" --profiles "$profiles" "$dbg" > "$bench/debug.log" 2>&1 &
        dbg_pid=$!
        for _ in $(seq 100); do mountpoint -q "$dbg" && break; sleep 0.02; done
        cat "$dbg/big/pack.tar" > /dev/null
        evict "$dbg/big/pack.tar"
        dd if="$dbg/big/pack.tar" of=/dev/null bs=4k count=4096 status=none
        unmount "$dbg"
        wait "$dbg_pid" || true
        # READ requests and the sizes of their replies (16-byte header off).
        read_sizes=$(awk '/opcode: READ/ { sub(",", "", $2); r[$2] = 1 }
                /success, outsize:/ { u = $2; sub(",", "", u); if (u in r) { n[$5 - 16]++; delete r[u] } }
                END { for (s in n) printf "%d KiB x %d\n", s / 1024, n[s] }' "$bench/debug.log" | sort -t' ' -k4 -rn | head -5 | paste -sd, -)
        init_ra=$(grep -m2 max_readahead "$bench/debug.log" | tail -n1 | awk -F= '{print $2}')
fi

# --- compressed packs (issue 3) -------------------------------------------------

# mount_fg MOUNTPOINT PROFILES_ROOT [CACHE [MOUNT_OPTION...]]: a fresh daemon
# as mount_fs (cache CACHE, default $cache), kept in the foreground (-f) with
# its log in $daemon_log, emptied first (older logs are appended to
# $bench/daemon-all.log). The log has the daemon's "VIEW/FILE: encoded N of M
# units ..." lines.
fg_pid=
mount_fg() {
        unmount_fg "$1"
        [ -f "$daemon_log" ] && cat "$daemon_log" >> "$bench/daemon-all.log"
        : > "$daemon_log"
        mkdir -p "$1"
        "$packfs" mount -f "${S[@]}" --cache "${3:-$cache}" --profiles "$2" "${@:4}" "$1" 2>> "$daemon_log" &
        fg_pid=$! daemon_pid=$!
        for _ in $(seq 500); do
                mountpoint -q "$1" && return 0
                kill -0 "$fg_pid" 2> /dev/null || break
                sleep 0.01
        done
        log "packfs mount -f $1 failed:"
        cat "$daemon_log" >&2
        exit 1
}

# unmount_fg MOUNTPOINT: unmounts and waits for mount_fg's daemon to exit (it
# stops the encodings under way first), so its cache can go.
unmount_fg() {
        unmount "$1"
        if [ -n "$fg_pid" ]; then wait "$fg_pid" 2> /dev/null || true; fg_pid=; fi
}

# make_gen2: the one-package-changed generations. For each changed item X
# (the median-sized item of big's closure, and the largest one under 10% of its
# bytes), profile "big-X" of $profiles_gen has generation 1 = big's items and
# generation 2 = the same with X replaced by a copy of X with one file changed,
# added with `store add` (a new store path, as a rebuilt package has); the
# profile link points at generation 2. Made once, kept while
# $profiles_gen/ready says $version. $profiles_gen/info: PROFILE ITEM BYTES FILE.
make_gen2() {
        local inputs=() sized=() picks=() x name copy file n i gen2 new
        [ -f "$profiles_gen/ready" ] && [ "$(cat "$profiles_gen/ready")" = "$version" ] && return 0
        log "making generation 2 profiles (one item changed) in $profiles_gen"
        chmod -R u+w "$profiles_gen" "$bench/staging-gen" 2> /dev/null || true
        rm -rf "$profiles_gen" "$bench/staging-gen"
        mkdir -p "$profiles_gen" "$bench/staging-gen"
        for i in "${closure[@]}"; do [ "$i" = "$big" ] || inputs+=("$i"); done
        mapfile -t sized < <(for i in "${inputs[@]}"; do
                echo "$(du -sb --apparent-size "$i" | cut -f1) $i"; done | sort -n)
        picks=("${sized[$(((${#sized[@]} - 1) / 2))]#* }")
        for ((i = ${#sized[@]} - 1; i >= 0; i--)); do
                if [ $((${sized[$i]%% *} * 10)) -lt "$bytes" ]; then
                        [ "${sized[$i]#* }" != "${picks[0]}" ] && picks+=("${sized[$i]#* }")
                        break
                fi
        done
        for x in "${picks[@]}"; do
                name=${x##*/} name=${name#*-}
                copy=$bench/staging-gen/$name
                cp -a "$x" "$copy"
                chmod -R u+w "$copy"
                # The middle regular file, in path order: one appended line.
                n=$(find "$copy" -type f | wc -l)
                file=$(find "$copy" -type f | sort | sed -n "$((n / 2 + 1))p")
                echo "changed by packfs bench/run.sh" >> "$file"
                new=$("$packfs" store add "${S[@]}" "$copy")
                chmod -R u+w "$copy" && rm -rf "$copy"
                gen2=()
                for i in "${inputs[@]}"; do [ "$i" = "$x" ] && gen2+=("$new") || gen2+=("$i"); done
                "$packfs" store profile "${S[@]}" --profiles "$profiles_gen" "big-$name" "${inputs[@]}" > /dev/null
                "$packfs" store profile "${S[@]}" --profiles "$profiles_gen" "big-$name" "${gen2[@]}" > /dev/null
                echo "big-$name ${x##*/} $(du -sb --apparent-size "$x" | cut -f1) ${file#"$copy"/}" >> "$profiles_gen/info"
                [ "$(readlink -f "$profiles_gen/big-$name-1-link")" = "$big" ] ||
                        log "  note: generation 1 of big-$name is not big's profile item"
                log "  big-$name: ${x##*/} -> ${new##*/} (${file#"$copy"/} changed)"
        done
        rm -rf "$bench/staging-gen"
        echo "$version" > "$profiles_gen/ready"
}

if [ $setup_only = 1 ]; then
        make_gen2
        log "bench store ready in $bench"
        exit 0
fi

# cpu_of PID: "USER SYS" CPU seconds of a live process, all its threads so far.
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f %.2f", $14 / t, $15 / t }' /proc/"$1"/stat; }
# machine_cpu: CPU time used by everything on the machine so far, in clock
# ticks; others TICKS "USER SYS": the part of TICKS (a difference of two
# machine_cpu) that was not USER+SYS seconds, in seconds: other processes' load.
machine_cpu() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
others() { awk -v m="$1" -v c="$2" -v t="$(getconf CLK_TCK)" 'BEGIN { split(c, a, " "); x = m / t - a[1] - a[2]; printf "%.1f", x < 0 ? 0 : x }'; }
# units LOGLINE: "N M BYTES_IN" of an "encoded N of M units (B bytes in)" line.
units() { sed -nE 's/.*encoded ([0-9]+) of ([0-9]+) units \(([0-9]+) bytes in\).*/\1 \2 \3/p' <<< "$1"; }

ref_tar() {
        tar --sort=name --format=posix --owner=0 --group=0 --numeric-owner --mtime=@1 -C / -cf - "${rel[@]}"
}

exts=()
TIMEFORMAT='%3U %3S'  # bash's time: user and sys CPU of the timed pipeline
declare -A ref_cmd=([zst]="zstd -T0 -3 -q" [gz]="pigz -6" [xz]="xz -T0 -6")
declare -A unpack=([zst]="zstd -dcq" [gz]="pigz -dc" [xz]="xz -T0 -dc")
# Per extension: best cold times (us), CPU "user sys" of the best runs, paired
# ratios, sizes, VmHWM, units; per extension and changed profile (EXT:P): gen 2.
declare -A c_ref_flt c_cold_flt c_noise c_n c_ref c_ref_rss c_ref_other c_cold_other c_hit_sys g_again c_cold c_ref_cpu c_cold_cpu c_pairs c_size c_ref_size c_hwm c_units c_hit c_hitcat c_ok
declare -A g_total g_stat g_units
gen_profiles=()

if [ $compressed = 1 ]; then
        command -v pigz > /dev/null || apt-get install -y pigz > /dev/null
        make_gen2
        mapfile -t gen_profiles < <(cut -d' ' -f1 "$profiles_gen/info")
        for ext in $codecs; do
                [ -n "${ref_cmd[$ext]:-}" ] || { echo "bench/run.sh: unknown codec $ext" >&2; exit 2; }
                [ "$ext" = xz ] && [ "$xz_reps" = 0 ] && continue
                exts+=("$ext")
        done
        unmount "$mnt"
        for ext in "${exts[@]}"; do
                n=$reps
                [ "$ext" = xz ] && n=$xz_reps
                c_n[$ext]=$n
                log "(h) pack.tar.$ext: $n cold runs against tar | ${ref_cmd[$ext]%% -q}, then the changed generations"
                pairs=() noise=()
                for _ in $(seq "$n"); do
                        # The reference: its wall time, its CPU (tar and the
                        # compressor, from bash's time), its output size.
                        m0=$(machine_cpu) t0=${EPOCHREALTIME/./}
                        { time { ref_tar | /usr/bin/time -f '%M %R' -o "$bench/ref.rss" ${ref_cmd[$ext]} |
                                wc -c > "$bench/ref.size"; }; } 2> "$bench/ref.time"
                        t1=${EPOCHREALTIME/./} m1=$(machine_cpu)
                        a=$((t1 - t0)) ma=$((m1 - m0))
                        # packfs: empty cache, fresh mount; cat costs lookup
                        # (which encodes), open and the reads.
                        unmount "$mnt"
                        rm -rf "$cache"
                        mount_fg "$mnt" "$profiles"
                        m0=$(machine_cpu) t0=${EPOCHREALTIME/./}
                        cat "$mnt/big/pack.tar.$ext" > /dev/null
                        t1=${EPOCHREALTIME/./} m1=$(machine_cpu)
                        b=$((t1 - t0)) mb=$((m1 - m0))
                        pairs+=("$(ratio $b $a)")
                        noise+=("$(others "$mb" "$(cpu_of "$daemon_pid")")/$(others "$ma" "$(tail -n1 "$bench/ref.time")")")
                        if [ -z "${c_ref[$ext]:-}" ] || [ $a -lt "${c_ref[$ext]}" ]; then
                                c_ref[$ext]=$a
                                c_ref_cpu[$ext]=$(tail -n1 "$bench/ref.time")
                                c_ref_other[$ext]=$(others "$ma" "${c_ref_cpu[$ext]}")
                                c_ref_size[$ext]=$(cat "$bench/ref.size")
                                read -r c_ref_rss[$ext] c_ref_flt[$ext] < "$bench/ref.rss"
                        fi
                        if [ -z "${c_cold[$ext]:-}" ] || [ $b -lt "${c_cold[$ext]}" ]; then
                                c_cold[$ext]=$b
                                c_cold_cpu[$ext]=$(cpu_of "$daemon_pid")
                                c_cold_flt[$ext]=$(awk '{ print $10 }' /proc/"$daemon_pid"/stat)
                                c_cold_other[$ext]=$(others "$mb" "${c_cold_cpu[$ext]}")
                                c_units[$ext]=$(units "$(grep -F "big/pack.tar.$ext: encoded" "$daemon_log" | tail -n1)")
                        fi
                        hwm=$(kib "$daemon_pid" VmHWM)
                        [ "$hwm" -gt "${c_hwm[$ext]:-0}" ] && c_hwm[$ext]=$hwm
                        c_size[$ext]=$(stat -c %s "$mnt/big/pack.tar.$ext")

                        # Generation 2 of each changed profile, the cache warm
                        # from generation 1 (= big, just encoded): stat + cat,
                        # each time from the same copy of that cache, by
                        #   fresh: a new mount's first request;
                        #   live:  a mount that has served generation 1 first
                        #          (its pack.tar planned, its .EXT read from
                        #          the cache), as a long-running mount has.
                        unmount "$mnt"
                        rm -rf "$cache.gen1"
                        cp -a "$cache" "$cache.gen1"
                        for p in "${gen_profiles[@]}"; do
                                for mode in fresh live; do
                                        unmount "$mnt"
                                        rm -rf "$cache"
                                        cp -a "$cache.gen1" "$cache"
                                        mount_fg "$mnt" "$profiles_gen"
                                        if [ $mode = live ]; then
                                                stat -c %s "$mnt/$p-1-link/pack.tar" > /dev/null
                                                cat "$mnt/$p-1-link/pack.tar.$ext" > /dev/null
                                        fi
                                        t0=${EPOCHREALTIME/./}
                                        stat -c %s "$mnt/$p/pack.tar.$ext" > /dev/null
                                        t1=${EPOCHREALTIME/./}
                                        cat "$mnt/$p/pack.tar.$ext" > /dev/null
                                        t2=${EPOCHREALTIME/./}
                                        k=$ext:$p:$mode
                                        if [ -z "${g_total[$k]:-}" ] || [ $((t2 - t0)) -lt "${g_total[$k]}" ]; then
                                                g_total[$k]=$((t2 - t0)) g_stat[$k]=$((t1 - t0))
                                                g_units[$k]=$(units "$(grep -F "$p/pack.tar.$ext: encoded" "$daemon_log" | tail -n1)")
                                        fi
                                done
                        done
                        unmount "$mnt"
                        rm -rf "$cache.gen1"
                done
                c_pairs[$ext]="${pairs[*]}" c_noise[$ext]="${noise[*]}"
                # The floor of the changed generation: the same, all of it
                # cached now (its manifest too), on a fresh mount.
                for p in "${gen_profiles[@]}"; do
                        # Each gen 2 above started from generation 1's cache:
                        # encode this one (untimed) before measuring the floor.
                        mount_fg "$mnt" "$profiles_gen"
                        cat "$mnt/$p/pack.tar.$ext" > /dev/null
                        best_of t "mount_fg $mnt $profiles_gen" "stat -c %s $mnt/$p/pack.tar.$ext > /dev/null; cat $mnt/$p/pack.tar.$ext > /dev/null"
                        g_again[$ext:$p]=$t
                done

                # Cache hits: fresh mount, warm cache.
                best_of t "mount_fg $mnt $profiles" "stat -c %s $mnt/big/pack.tar.$ext > /dev/null"
                c_hit[$ext]=$t
                # The same stat(2) made by the shell itself ([ -s ] stats):
                # no process start-up in the time.
                best_of t "mount_fg $mnt $profiles" "[ -s $mnt/big/pack.tar.$ext ]"
                c_hit_sys[$ext]=$t
                best_of t "mount_fg $mnt $profiles" "cat $mnt/big/pack.tar.$ext > /dev/null"
                c_hitcat[$ext]=$t
                [ -n "${t_stat_local:-}" ] || best_of t_stat_local "" "stat -c %s $bench/ready > /dev/null"

                # The bytes: they decompress to pack.tar, and packfs build
                # (no FUSE, same cache) gives the same file.
                c_ok[$ext]=yes
                cmp -s <(${unpack[$ext]} < "$mnt/big/pack.tar.$ext") "$mnt/big/pack.tar" ||
                        c_ok[$ext]="NO: does not decompress to pack.tar"
                cmp -s <("$packfs" build "${S[@]}" --cache "$cache" --profiles "$profiles" "big/pack.tar.$ext" -o -) \
                        "$mnt/big/pack.tar.$ext" || c_ok[$ext]="NO: packfs build differs"
        done
        unmount "$mnt"
        if [ -n "$fg_pid" ]; then wait "$fg_pid" 2> /dev/null || true; fg_pid=; fi
        cat "$daemon_log" >> "$bench/daemon-all.log"
fi

# --- browsing, warm and prepare (issue 9) ------------------------------------------

# times_of VAR N PRE CMD: as best_of, for N runs, keeping them all: VAR is the
# best (us), VAR_med the median, VAR_all every time in run order.
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
times_of() {
        local __var=$1 n=$2 pre=$3 cmd=$4 all=() t0 t1
        for _ in $(seq "$n"); do
                [ -n "$pre" ] && eval "$pre"
                t0=${EPOCHREALTIME/./}
                eval "$cmd"
                t1=${EPOCHREALTIME/./}
                all+=($((t1 - t0)))
        done
        printf -v "$__var" '%s' "$(printf '%s\n' "${all[@]}" | sort -n | head -n1)"
        printf -v "${__var}_med" '%s' "$(median "${all[@]}")"
        printf -v "${__var}_all" '%s' "${all[*]}"
}
# idle_ticks PID: CPU clock ticks (user+sys) of PID's threads at SCHED_IDLE
# (policy 5, field 41 of /proc/PID/task/TID/stat): the background encoder's;
# idle_threads PID: how many there are.
idle_ticks() { cat /proc/"$1"/task/*/stat 2> /dev/null | awk '{ sub(/^.*\) /, "") } $39 == 5 { s += $12 + $13 } END { print s + 0 }'; }
idle_threads() { cat /proc/"$1"/task/*/stat 2> /dev/null | awk '{ sub(/^.*\) /, "") } $39 == 5 { n++ } END { print n + 0 }'; }
proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$1"/stat; }
encoded() { grep -c ': encoded' "$daemon_log" || true; }
# The store's files and directories back in the page cache: this VM's host
# reclaims page cache idle for a minute or more (DAMON pageout), which would
# put disk reads into the first timing after a pause.
warm_store() { tar -C / -cf - "${rel[@]}" | cat > /dev/null; }

# host_check: h_a and h_b, the wall time (us) of a CPU loop pinned to cpu 0
# alone and beside a SCHED_IDLE spin loop pinned to cpu 1; h_ca and h_cb the
# CPU seconds it got each time.
host_loop() { taskset -c 0 bash -c 'for ((i = 0; i < 400000; i++)); do :; done'; }
host_check() {
        local t0 t1 hog
        t0=${EPOCHREALTIME/./}; { time host_loop; } 2> "$bench/loop.time"; t1=${EPOCHREALTIME/./}
        h_a=$((t1 - t0)) h_ca=$(awk '{ print $1 + $2 }' "$bench/loop.time")
        taskset -c 1 chrt -i 0 bash -c 'while :; do :; done' &
        hog=$!
        sleep 0.2
        t0=${EPOCHREALTIME/./}; { time host_loop; } 2> "$bench/loop.time"; t1=${EPOCHREALTIME/./}
        h_b=$((t1 - t0)) h_cb=$(awk '{ print $1 + $2 }' "$bench/loop.time")
        kill "$hog"; wait "$hog" 2> /dev/null || true
}

bmnt=$bench/mnt-browse view=$bench/mnt-browse/big
# The caches of section i: $cache_b emptied for each cold view, $cache_r holding
# only item records (member lists and lengths: one earlier plan of pack.tar),
# $cache_w filled by packfs warm, $cache_p the background encoding's.
cache_b=$bench/cache-browse cache_r=$bench/cache-records cache_w=$bench/cache-warm cache_p=$bench/cache-prepare
prep_ini=$bench/prepare.ini
declare -A w_time w_stat w_stat_med w_stat_all w_py w_enc
b_exts=()

# cold_mount [MOUNT_OPTION...]: a fresh daemon on $bmnt over an empty $cache_b.
cold_mount() { unmount_fg "$bmnt"; rm -rf "$cache_b"; mount_fg "$bmnt" "$profiles" "$cache_b" "$@"; }
# encoding_now: the prepare encoding of big/pack.tar.xz is under way (status).
encoding_now() { "$packfs" status --cache "$cache_p" "$bmnt" 2> /dev/null | grep -q 'encoding big/pack.tar.xz'; }

if [ $browse = 1 ]; then
        for ext in $codecs; do
                [ "$ext" = xz ] && [ "$xz_reps" = 0 ] && continue
                b_exts+=("$ext")
        done
        unmount "$mnt"

        # Host check: does work at idle priority on one CPU slow a CPU-bound
        # loop pinned to another? On bare metal it does not; on a VM whose
        # vCPUs share physical cores (or are overcommitted) it does, and no
        # scheduling policy inside the guest can prevent it.
        h_alone=() h_beside=() h_cpu_alone=() h_cpu_beside=()
        if [ "$(nproc)" -ge 2 ]; then
                log "(i) host check: a loop on cpu 0, alone and beside a SCHED_IDLE spin loop on cpu 1"
                for _ in 1 2 3; do
                        host_check
                        h_alone+=("$h_a") h_beside+=("$h_b") h_cpu_alone+=("$h_ca") h_cpu_beside+=("$h_cb")
                done
        fi

        log "(i) cold listings of a view: empty cache, then a cache of item records only"
        warm_store
        times_of b_ls "$reps" "cold_mount" "ls $view > /dev/null"
        times_of b_lscolor "$reps" "cold_mount" "ls --color=always $view > /dev/null"
        times_of b_lsl "$reps" "cold_mount" "ls -l $view > /dev/null"
        times_of b_find "$reps" "cold_mount" "find $view -printf %s > /dev/null"
        # The same a second after the mount: its survey of the profiles (a
        # walk of the closures, recorded) is done by then.
        times_of b_lsl_later "$reps" "cold_mount; sleep 1" "ls -l $view > /dev/null"
        times_of b_lscolor_later "$reps" "cold_mount; sleep 1" "ls --color=always $view > /dev/null"
        # What a walk of the closure costs here: find over its store paths
        # (page and dentry caches warm), the floor of an empty-cache listing.
        times_of b_find_closure "$reps" "" "find \$(cat $view/closure) -printf '%s\\n' > /dev/null"
        # What they list, and that they encoded nothing (the log of one more round).
        cold_mount
        b_names=$(ls "$view" | paste -sd' ')
        ls --color=always "$view" > /dev/null; ls -l "$view" > /dev/null; find "$view" -printf %s > /dev/null
        b_listing_enc=$(encoded)
        # The records: one mount plans pack.tar, the cache then holds its items'
        # member lists and lengths, no pack.
        unmount_fg "$bmnt"
        rm -rf "$cache_r"
        mount_fg "$bmnt" "$profiles" "$cache_r"
        stat -c %s "$view/pack.tar" > /dev/null
        unmount_fg "$bmnt"
        b_records=$("$packfs" status --cache "$cache_r" | sed -n 's/^cache [^:]*: //p')
        times_of b_lscolor_r "$reps" "mount_fg $bmnt $profiles $cache_r" "ls --color=always $view > /dev/null"
        times_of b_lsl_r "$reps" "mount_fg $bmnt $profiles $cache_r" "ls -l $view > /dev/null"
        times_of b_find_r "$reps" "mount_fg $bmnt $profiles $cache_r" "find $view -printf %s > /dev/null"
        # Where the empty-cache time goes: pack.tar's LOOKUP plans (walks) it;
        # ls itself starts in a few ms (an empty local directory).
        mkdir -p "$bench/empty"
        times_of b_ls_local "$reps" "" "ls -l --color=always $bench/empty > /dev/null"
        times_of b_stat_tar "$reps" "cold_mount" "[ -s $view/pack.tar ]"
        times_of b_stat_tar_r "$reps" "mount_fg $bmnt $profiles $cache_r" "[ -s $view/pack.tar ]"
        times_of b_stat_closure "$reps" "cold_mount" "[ -s $view/closure ]"
        unmount_fg "$bmnt"

        # --list all: find stats every file, which encodes the three packs. Once.
        b_find_all=
        if [ "$xz_reps" != 0 ]; then
                log "(i) cold find VIEW -printf %s with --list all (encodes .gz .xz .zst: minutes)"
                cold_mount --list all
                t0=${EPOCHREALTIME/./}
                find "$view" -printf %s > /dev/null
                t1=${EPOCHREALTIME/./}
                b_find_all=$((t1 - t0)) b_find_all_enc=$(encoded) b_find_all_names=$(ls "$view" | wc -l)
                unmount_fg "$bmnt"
        fi

        log "(i) packfs warm, then the first stat of the warmed files on fresh mounts"
        rm -rf "$cache_w"
        : > "$bench/warm.log"
        for ext in "${b_exts[@]}"; do
                t0=${EPOCHREALTIME/./}
                "$packfs" warm "${S[@]}" --cache "$cache_w" --profiles "$profiles" "big/pack.tar.$ext" \
                        < /dev/null 2>> "$bench/warm.log"
                t1=${EPOCHREALTIME/./}
                w_time[$ext]=$((t1 - t0))
        done
        for ext in "${b_exts[@]}"; do
                # [ -s ] is the shell's own stat(2): no process start-up in the time.
                times_of t "$reps" "mount_fg $bmnt $profiles $cache_w" "[ -s $view/pack.tar.$ext ]"
                w_stat[$ext]=$t w_stat_med[$ext]=$t_med w_stat_all[$ext]=$t_all
                # The same syscall timed inside python3 (its start-up before the clock).
                mount_fg "$bmnt" "$profiles" "$cache_w"
                w_py[$ext]=$(python3 -c 'import os, sys, time
t = time.perf_counter(); os.stat(sys.argv[1]); print(int((time.perf_counter() - t) * 1e6))' "$view/pack.tar.$ext")
                w_enc[$ext]=$(encoded)
        done
        times_of b_lsl_w "$reps" "mount_fg $bmnt $profiles $cache_w" "ls -l $view > /dev/null"
        b_names_w=$(ls "$view" | paste -sd' ')
        b_lsl_w_enc=$(encoded)
        unmount_fg "$bmnt"

        log "(i) cat pack.tar with and without a prepare (idle priority) xz encoding, $b_pairs pairs"
        printf '[big]\nprepare = pack.tar.xz\n' > "$prep_ini"
        warm_store
        p_with=() p_without=() p_ratios=() p_idle=() p_plan_with=() p_plan_without=() p_threads=()
        p_noise_with=() p_noise_without=() p_host=()
        p_seen=0 p_ready_early=0
        for i in $(seq "$b_pairs"); do
                # Alternate which goes first, so drift favours neither.
                if [ $((i % 2)) = 1 ]; then order="without with"; else order="with without"; fi
                for mode in $order; do
                        unmount_fg "$bmnt"
                        rm -rf "$cache_p"
                        if [ $mode = with ]; then
                                mount_fg "$bmnt" "$profiles" "$cache_p" --config "$prep_ini"
                                # Wait for the encoding itself (its planning done).
                                for _ in $(seq 600); do encoding_now && break; sleep 0.1; done
                                encoding_now && before=1 || before=0
                        else
                                mount_fg "$bmnt" "$profiles" "$cache_p"
                        fi
                        # pack.tar planned first (untimed here: (c) and the rows
                        # above time it), so the cat is the reading alone; its
                        # pages are in no cache (a fresh mount's new inode).
                        t0=${EPOCHREALTIME/./}
                        stat -c %s "$view/pack.tar" > /dev/null
                        t1=${EPOCHREALTIME/./}
                        c0=$(idle_ticks "$daemon_pid") d0=$(proc_ticks "$daemon_pid") m0=$(machine_cpu)
                        t2=${EPOCHREALTIME/./}
                        { time cat "$view/pack.tar" > /dev/null; } 2> "$bench/cat.time"
                        t3=${EPOCHREALTIME/./}
                        c1=$(idle_ticks "$daemon_pid") d1=$(proc_ticks "$daemon_pid") m1=$(machine_cpu)
                        # Others' CPU: the machine's busy time less the daemon's and cat's.
                        o=$(others $((m1 - m0 - (d1 - d0))) "$(tail -n1 "$bench/cat.time")")
                        if [ $mode = with ]; then
                                encoding_now && after=1 || after=0
                                [ $before = 1 ] && [ $after = 1 ] && p_seen=$((p_seen + 1))
                                grep -q 'prepare: big/pack.tar.xz is ready' "$daemon_log" && p_ready_early=$((p_ready_early + 1))
                                p_threads+=("$(idle_threads "$daemon_pid")")
                                p_with+=($((t3 - t2))) p_plan_with+=($((t1 - t0))) p_noise_with+=("$o")
                                p_idle+=("$(awk -v t=$((c1 - c0)) -v h="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / h }')")
                        else
                                p_without+=($((t3 - t2))) p_plan_without+=($((t1 - t0))) p_noise_without+=("$o")
                        fi
                done
                p_ratios+=("$(ratio "${p_with[-1]}" "${p_without[-1]}")")
                # What the host did meanwhile (1.00: idle work is free).
                if [ "$(nproc)" -ge 2 ]; then
                        unmount_fg "$bmnt"
                        host_check
                        p_host+=("$(ratio "$h_b" "$h_a")")
                fi
        done
        unmount_fg "$bmnt"
        p_with_best=$(printf '%s\n' "${p_with[@]}" | sort -n | head -n1) p_with_med=$(median "${p_with[@]}")
        p_without_best=$(printf '%s\n' "${p_without[@]}" | sort -n | head -n1) p_without_med=$(median "${p_without[@]}")
        p_ratio_med=$(printf '%s\n' "${p_ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')

        log "(i) SIGINT to a cat waiting for a cold pack.tar.xz"
        s_late=() s_rc=() s_going=0
        for _ in $(seq "$reps"); do
                cold_mount
                t0=${EPOCHREALTIME/./}
                rc=0
                timeout -s INT 2 cat "$view/pack.tar.xz" > /dev/null 2>&1 || rc=$?
                t1=${EPOCHREALTIME/./}
                s_late+=($((t1 - t0 - 2000000))) s_rc+=("$rc")
                # The encoding goes on for the next reader.
                sleep 0.2
                "$packfs" status --cache "$cache_b" "$bmnt" 2> /dev/null | grep -q 'encoding big/pack.tar.xz' &&
                        s_going=$((s_going + 1))
        done
        unmount_fg "$bmnt"
        s_best=$(printf '%s\n' "${s_late[@]}" | sort -n | head -n1) s_med=$(median "${s_late[@]}")
        s_worst=$(printf '%s\n' "${s_late[@]}" | sort -n | tail -n1)
        cat "$daemon_log" >> "$bench/daemon-all.log"; : > "$daemon_log"
fi

# --- docker.tar and oci/ (issue 10) ------------------------------------------------

# log_mark: the daemon log's length now; log_since N: what it got after.
log_mark() { wc -l < "$daemon_log"; }
log_since() { tail -n +$(($1 + 1)) "$daemon_log"; }
# hashed LOG: "STREAMED LAYERS BYTES RECORDED AGAIN" from docker.c's lines
# "docker.tar of NAME: hashed S of L layers (B bytes) while streaming, R digests
# were recorded" and "docker.tar: read A of L layers again" (the last of each).
hashed() {
        local h a
        # "... while streaming (N bytes of them read again to finish a layer), M digests ..."
        h=$(sed -nE 's/.*docker\.tar of [^ ]+: hashed ([0-9]+) of ([0-9]+) layers \(([0-9]+) bytes\) while streaming( \([^)]*\))?, ([0-9]+) digests were recorded.*/\1 \2 \3 \5/p' <<< "$1" | tail -n1)
        a=$(sed -nE 's/.*docker\.tar: read ([0-9]+) of [0-9]+ layers again.*/\1/p' <<< "$1" | tail -n1)
        echo "${h:-0 0 0 0} ${a:-0}"
}
# cold_j [PROFILES_ROOT]: a fresh foreground daemon on $mnt over an empty
# $cache, its survey done (1 s), the store's pages warm.
cold_j() {
        unmount_fg "$mnt"
        rm -rf "$cache"
        warm_store
        mount_fg "$mnt" "${1:-$profiles}"
        sleep 1
}
# best VALUES...: the smallest; ratios "A..." "B...": A[i]/B[i] for each pair.
best() { printf '%s\n' "$@" | sort -n | head -n1; }
ratios() {
        local -a a=($1) b=($2)
        local i out=()
        for i in "${!a[@]}"; do out+=("$(ratio "${a[$i]}" "${b[$i]}")"); done
        echo "${out[*]}"
}
median_r() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

j_cold=() j_ossl=() j_first=() j_first_ref=() j_warm=() j_warm_ref=() j_oci=() j_oci_docker=()
j_zst=() j_save=() j_zst_after=() j_cold_hash=() j_warm_hash=() j_oci_hash=() j_zst_cpu=() j_save_cpu=()
j_zst_units= j_zst_after_units= j_pack_units= j_zst_size= j_save_size= j_load= j_image= j_dockerd=
declare -A j_gen_hash j_gen_time j_gen_units j_gen_ztime j_gen_item

if [ $docker = 1 ]; then
        make_gen2
        mapfile -t gen_profiles < <(cut -d' ' -f1 "$profiles_gen/info")
        unmount "$mnt"
        dpack=$mnt/big/docker.tar

        log "(j) docker.tar: $reps rounds of a cold read (empty cache) and cat pack.tar | openssl dgst -sha256,"
        log "    a warm read (remount, digests recorded) and cat pack.tar, skopeo inspect oci: of a cold view"
        for _ in $(seq "$reps"); do
                # (1) Cold: no digest records, so they are hashed as the layers
                # stream; the reference hashes pack.tar's bytes in a pipe.
                cold_j
                m=$(log_mark)
                t0=${EPOCHREALTIME/./}; cat "$dpack" > /dev/null; t1=${EPOCHREALTIME/./}
                j_cold+=($((t1 - t0))) j_cold_hash+=("$(hashed "$(log_since "$m")")")
                t0=${EPOCHREALTIME/./}; cat "$pack" | openssl dgst -sha256 > /dev/null; t1=${EPOCHREALTIME/./}
                j_ossl+=($((t1 - t0)))
                # (2) Warm: a remount with the same cache (the digests recorded);
                # the first read of each on the fresh mount (planning included),
                # then reads with the plans made and the packs' pages evicted.
                mount_fg "$mnt" "$profiles"
                sleep 1
                m=$(log_mark)
                t0=${EPOCHREALTIME/./}; cat "$dpack" > /dev/null; t1=${EPOCHREALTIME/./}
                j_first+=($((t1 - t0))) j_warm_hash+=("$(hashed "$(log_since "$m")")")
                t0=${EPOCHREALTIME/./}; cat "$pack" > /dev/null; t1=${EPOCHREALTIME/./}
                j_first_ref+=($((t1 - t0)))
                evict "$dpack"
                t0=${EPOCHREALTIME/./}; cat "$dpack" > /dev/null; t1=${EPOCHREALTIME/./}
                evict "$pack"
                t2=${EPOCHREALTIME/./}; cat "$pack" > /dev/null; t3=${EPOCHREALTIME/./}
                j_warm+=($((t1 - t0))) j_warm_ref+=($((t3 - t2)))
                # (6) The first skopeo inspect of a cold view: index.json needs
                # every layer's digest, none recorded; against (1)'s cold read.
                cold_j
                m=$(log_mark)
                t0=${EPOCHREALTIME/./}; skopeo inspect "oci:$mnt/big/oci" > "$bench/oci-inspect.json"; t1=${EPOCHREALTIME/./}
                j_oci+=($((t1 - t0))) j_oci_hash+=("$(hashed "$(log_since "$m")")")
        done
        j_oci_layers=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["Layers"]))' "$bench/oci-inspect.json")

        # (3) docker.tar.zst against docker save | zstd -T0 -3 of the same
        # image, loaded into a docker daemon of the bench's own.
        start_dockerd
        j_dockerd=$("${DOCKER[@]}" version -f '{{.Server.Version}}' 2> /dev/null || echo '?')
        cold_j
        j_image=$(sed -nE 's/.*"Config":"([0-9a-f]{64})\.json".*/\1/p' < <(tar -xOf "$dpack" manifest.json))
        if [ "$("${DOCKER[@]}" image inspect -f '{{.Id}}' big:latest 2> /dev/null)" != "sha256:$j_image" ]; then
                log "(j) docker load < big/docker.tar into dockerd (vfs: minutes, once)"
                t0=${EPOCHREALTIME/./}
                "${DOCKER[@]}" load < "$dpack" > /dev/null
                t1=${EPOCHREALTIME/./}
                j_load=$((t1 - t0))
                [ "$("${DOCKER[@]}" image inspect -f '{{.Id}}' big:latest)" = "sha256:$j_image" ] ||
                        { log "docker load gave another image than big/docker.tar's"; exit 1; }
        fi
        # The daemon's copy of the layers in the page cache, as the store's is.
        "${DOCKER[@]}" save big:latest > /dev/null
        log "(j) docker.tar.zst: $reps rounds of docker save | zstd -T0 -3, a cold docker.tar.zst (empty cache)"
        log "    and one after pack.tar.zst was encoded into the cache"
        for _ in $(seq "$reps"); do
                warm_store
                t0=${EPOCHREALTIME/./}
                { time { "${DOCKER[@]}" save big:latest | zstd -T0 -3 -q | wc -c > "$bench/ref.size"; }; } 2> "$bench/ref.time"
                t1=${EPOCHREALTIME/./}
                j_save+=($((t1 - t0))) j_save_cpu+=("$(tail -n1 "$bench/ref.time")") j_save_size=$(cat "$bench/ref.size")
                cold_j
                m=$(log_mark)
                t0=${EPOCHREALTIME/./}; cat "$dpack.zst" > /dev/null; t1=${EPOCHREALTIME/./}
                j_zst+=($((t1 - t0))) j_zst_cpu+=("$(cpu_of "$daemon_pid")")
                j_zst_units=$(units "$(log_since "$m" | grep -F 'big/docker.tar.zst: encoded' | tail -n1)")
                j_zst_size=$(stat -c %s "$dpack.zst")
                # (4) The same after pack.tar.zst: its units are docker.tar's
                # too (the same member bytes), on a remount.
                cold_j
                m=$(log_mark)
                cat "$pack.zst" > /dev/null
                j_pack_units=$(units "$(log_since "$m" | grep -F 'big/pack.tar.zst: encoded' | tail -n1)")
                mount_fg "$mnt" "$profiles"
                sleep 1
                m=$(log_mark)
                t0=${EPOCHREALTIME/./}; cat "$dpack.zst" > /dev/null; t1=${EPOCHREALTIME/./}
                j_zst_after+=($((t1 - t0)))
                j_zst_after_units=$(units "$(log_since "$m" | grep -F 'big/docker.tar.zst: encoded' | tail -n1)")
        done
        stop_dockerd

        # (5) A profile sharing all but one package with big (make_gen2's
        # generation 2): its docker.tar after big's (its generation 1) on
        # the same cache hashes only what is new; the same for .zst's units.
        for p in "${gen_profiles[@]}"; do
                log "(j) $p: docker.tar and docker.tar.zst after big's, same cache"
                cold_j "$profiles_gen"
                cat "$mnt/$p-1-link/docker.tar" > /dev/null
                cat "$mnt/$p-1-link/docker.tar.zst" > /dev/null
                sync # the .zst's cache objects written back first: one timing, not the writeback's
                m=$(log_mark)
                t0=${EPOCHREALTIME/./}; cat "$mnt/$p/docker.tar" > /dev/null; t1=${EPOCHREALTIME/./}
                j_gen_time[$p]=$((t1 - t0)) j_gen_hash[$p]=$(hashed "$(log_since "$m")")
                m=$(log_mark)
                t0=${EPOCHREALTIME/./}; cat "$mnt/$p/docker.tar.zst" > /dev/null; t1=${EPOCHREALTIME/./}
                j_gen_ztime[$p]=$((t1 - t0))
                j_gen_units[$p]=$(units "$(log_since "$m" | grep -F "$p/docker.tar.zst: encoded" | tail -n1)")
        done
        unmount_fg "$mnt"
        cat "$daemon_log" >> "$bench/daemon-all.log"; : > "$daemon_log"
fi

# --- report -------------------------------------------------------------------

mem_total=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
met() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? "met" : "MISSED" }'; }

report() {
        echo "packfs benchmark ($version, $( [ $quick = 1 ] && echo quick || echo full ), best of $reps)"
        echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "machine: $(nproc) CPUs ($model), $mem_total RAM, kernel $(uname -r)," \
             "libfuse $(pkg-config --modversion fuse3 2>/dev/null || echo '?')"
        echo "load:    $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1/5/15 min)"
        echo "closure: ${#closure[@]} store items, $entries entries, $((bytes / 1000000)) MB of files;" \
             "pack.tar $pack_size bytes, GNU tar $tar_size bytes"
        [ $issue2 = 1 ] && echo "mount:   fuse bdi $bdi read_ahead_kb=$read_ahead; INIT max_readahead=$init_ra;" \
             "READ sizes: $read_sizes"
        [ $issue2 = 1 ] && report_issue2
        [ $compressed = 1 ] && report_compressed
        [ $browse = 1 ] && report_browse
        [ $docker = 1 ] && report_docker
        return 0
}

report_issue2() {
        echo
        printf '%-58s %12s %12s %8s  %s\n' "measure" "packfs" "GNU tar" "ratio" "target"
        printf '%-58s %12s %12s %8s  %s\n' "(a) cat pack.tar, plan cached, pack pages evicted" \
                "$(ms "$t_cat")" "$(ms "$t_tar")" "$(ratio "$t_cat" "$t_tar")" \
                "<= 1.00 $(met "$(ratio "$t_cat" "$t_tar")" 1)"
        printf '%-58s %12s %12s %8s\n' "    same, as throughput" "$(mbs "$t_cat" "$pack_size")" \
                "$(mbs "$t_tar" "$tar_size")" ""
        printf '%-58s %12s %12s %8s  %s\n' "    median of the $reps paired ratios (${pair_ratios[*]})" "" "" \
                "$median_ratio" "<= 1.00 $(met "$median_ratio" 1)"
        printf '%-58s %12s %12s %8s\n' "(a) dd bs=1M pack.tar, plan cached, pages evicted" \
                "$(ms "$t_dd")" "$(ms "$t_tar")" "$(ratio "$t_dd" "$t_tar")"
        printf '%-58s %12s %12s %8s\n' "(a) cat pack.tar on a fresh mount (planning included)" \
                "$(ms "$t_cold")" "$(ms "$t_tar")" "$(ratio "$t_cold" "$t_tar")"
        printf '%-58s %12s %12s %8s\n' "(a) 4 parallel dd readers, one quarter each, evicted" \
                "$(ms "$t_par")" "$(ms "$t_tar")" "$(ratio "$t_par" "$t_tar")"
        printf '%-58s %12s %12s %8s\n' "(a) cat pack.tar from the kernel page cache (keep_cache)" \
                "$(ms "$t_cached")" "$(ms "$t_tar")" "$(ratio "$t_cached" "$t_tar")"
        printf '%-58s %12s %12s %8s  %s\n' "(c) first byte, fresh mount (lookup+plan+open+read)" \
                "$(ms "$t_first")" "" "" "< 100 ms $(met "$t_first" 100000)"
        printf '%-58s %12s\n' "(c) stat pack.tar, fresh mount (= planning)" "$(ms "$t_stat")"
        printf '%-58s %12s\n' "(c) first byte, second open (plan and page cached)" "$(ms "$t_first2")"
        printf '%-58s %12s\n' "(c) 64 KiB at the middle, plan cached, pages evicted" "$(ms "$t_middle")"
        printf '%-58s %12s %12s %8s  %s\n' "(d) daemon peak RSS (VmHWM), big pack, + 16 readers at once" \
                "$((rss_big / 1024)) MiB" "" "" "< 64 MiB $(met "$rss_big" 65535)"
        printf '%-58s %12s\n' "(d) daemon peak RSS, big pack, sequential cat only" "$((rss_seq / 1024)) MiB"
        printf '%-58s %12s\n' "(d) daemon peak RSS after the small pack only" "$((rss_small / 1024)) MiB"
        printf '%-58s %12s\n' "(d) daemon RSS now / threads" "$((rss_now / 1024)) MiB / $threads"
        printf '%-58s %12s\n' "(d) RSS after also planning the ${#closure[@]} .store/ITEM/pack.tar" \
                "$((rss_views / 1024)) MiB"
        printf '%-58s %12s %12s %8s  %s\n' "(e) ls MNT, $n_ls entries (100 profiles), fresh mount" \
                "$(ms "$t_ls")" "" "" "< 100 ms $(met "$t_ls" 100000)"
        printf '%-58s %12s\n' "(e) ls MNT again" "$(ms "$t_ls2")"
        printf '%-58s %12s\n' "(e) ls -l MNT, fresh mount" "$(ms "$t_lsl")"
        printf '%-58s %12s\n' "(e) ls -l MNT again" "$(ms "$t_lsl2")"
        printf '%-58s %12s\n' "(e) ls -l MNT/p000 (a view), fresh mount, packs in the cache" "$(ms "$t_lsview")"
        printf '%-58s %12s\n' "(e) same, empty cache: includes encoding .gz .xz .zst" "$(ms "$t_lsview_cold")"
        printf '%-58s %12s\n' "(f) packfs store closure, big profile (${#closure[@]} items)" "$(ms "$t_closure")"
        [ -n "$t_closure10k" ] && printf '%-58s %12s  %s\n' \
                "(f) packfs store closure, 10,000-item store ($n10k items)" "$(ms "$t_closure10k")" \
                "well under 100 ms $(met "$t_closure10k" 100000)"
        printf '%-58s %12s\n' "    (packfs --version: process start-up alone)" "$(ms "$t_true")"
}

secs() { awk -v u="$1" 'BEGIN { printf "%.2f s", u / 1000000 }'; }
# busy "USER SYS" WALL_US: CPU seconds per wall second (cores kept busy)
busy() { awk -v c="$1" -v w="$2" 'BEGIN { split(c, a, " "); printf "%.2f", (a[1] + a[2]) / (w / 1000000) }'; }
plus() { awk -v c="$1" 'BEGIN { split(c, a, " "); printf "%.2f+%.2f s", a[1], a[2] }'; }

report_compressed() {
        local ext p n m b un um ub r k row='%-58s %12s %12s %8s  %s\n'
        echo
        echo "compressed packs (issue 3): 'cold' = empty --cache, fresh mount, then cat MNT/big/pack.tar.EXT"
        echo "(lookup encodes, then open and read); reference = tar --sort=name --format=posix --owner=0"
        echo "--group=0 --numeric-owner --mtime=@1 -C / -cf - CLOSURE | COMPRESSOR | wc -c. 'gen 2' = the cache warm"
        echo "from generation 1 (= big, just encoded cold), stat + cat of generation 2, ratio to cold; 'live' = on a"
        echo "mount that served generation 1 first (as a long-running mount has), 'fresh' = a new mount's first request:"
        [ -s "$profiles_gen/info" ] && while read -r p m b n; do
                echo "changed generation $p: $m (${b} bytes, $(awk -v b="$b" -v t="$bytes" 'BEGIN { printf "%.1f", 100 * b / t }')% of the closure's bytes) with $n changed"
        done < "$profiles_gen/info"
        echo
        printf "$row" "measure" "packfs" "reference" "ratio" "target"
        for ext in "${exts[@]}"; do
                r=$(ratio "${c_cold[$ext]}" "${c_ref[$ext]}")
                printf "$row" "(h) cold pack.tar.$ext vs tar | ${ref_cmd[$ext]%% -q} (best of ${c_n[$ext]})" \
                        "$(secs "${c_cold[$ext]}")" "$(secs "${c_ref[$ext]}")" "$r" "<= 1.00 $(met "$r" 1)"
                [ "${c_n[$ext]}" -gt 1 ] && printf "$row" "    paired ratios (${c_pairs[$ext]})" "" "" "" "" &&
                        printf "$row" "    others' CPU s in each pair, packfs/ref (${c_noise[$ext]})" "" "" "" ""
                printf "$row" "    CPU user+sys: daemon | tar and compressor" \
                        "$(plus "${c_cold_cpu[$ext]}")" "$(plus "${c_ref_cpu[$ext]}")" "" ""
                printf "$row" "    cores busy (CPU s per wall s)" "$(busy "${c_cold_cpu[$ext]}" "${c_cold[$ext]}")" \
                        "$(busy "${c_ref_cpu[$ext]}" "${c_ref[$ext]}")" "" ""
                printf "$row" "    CPU s other processes took meanwhile (noise)" "${c_cold_other[$ext]} s" \
                        "${c_ref_other[$ext]} s" "" ""
                read -r un um ub <<< "${c_units[$ext]:-? ? 0}"
                printf "$row" "    units encoded (daemon log)" "$un of $um" "" "" ""
                r=$(awk -v a="${c_size[$ext]}" -v b="${c_ref_size[$ext]}" 'BEGIN { printf "%.3f", a / b }')
                printf "$row" "    size in bytes" "${c_size[$ext]}" "${c_ref_size[$ext]}" "$r" "<= 1.03 $(met "$r" 1.03)"
                printf "$row" "    minor page faults: daemon | the compressor" "${c_cold_flt[$ext]}" "${c_ref_flt[$ext]}" "" ""
                printf "$row" "    peak RSS: daemon (VmHWM) | the compressor (time %M)" "$((c_hwm[$ext] / 1024)) MiB" \
                        "$((c_ref_rss[$ext] / 1024)) MiB" "" ""
                printf "$row" "(h) cache hit: stat(2) of pack.tar.$ext, fresh mount" "$(ms "${c_hit_sys[$ext]}")" "" "" \
                        "< 10 ms $(met "${c_hit_sys[$ext]}" 10000)"
                printf "$row" "    same with stat(1): process start-up included" "$(ms "${c_hit[$ext]}")" "" "" \
                        "< 10 ms $(met "${c_hit[$ext]}" 10000)"
                printf "$row" "    (stat(1) of a file outside the mount)" "$(ms "$t_stat_local")" "" "" ""
                printf "$row" "(h) cache hit: cat pack.tar.$ext, fresh mount" "$(ms "${c_hitcat[$ext]}")" "" "" ""
                for p in "${gen_profiles[@]}"; do
                        for mode in live fresh; do
                                k=$ext:$p:$mode
                                read -r un um ub <<< "${g_units[$k]:-0 ? 0}"
                                r=$(ratio "${g_total[$k]}" "${c_cold[$ext]}")
                                [ $mode = live ] && what="served gen 1 before" || what="its first request"
                                printf "$row" "(h) gen 2, $p, $mode mount ($what): stat + cat" \
                                        "$(secs "${g_total[$k]}")" "" "$r" "< 0.10 of cold $(met "$r" 0.0999)"
                                printf "$row" "    of which stat (the encoding)" "$(secs "${g_stat[$k]}")" "" "" ""
                                printf "$row" "    units encoded, input bytes" "$un of $um" "$((ub / 1000000)) MB" "" ""
                        done
                        printf "$row" "    again, all cached, fresh mount (the floor)" "$(secs "${g_again[$ext:$p]}")" "" \
                                "$(ratio "${g_again[$ext:$p]}" "${c_cold[$ext]}")" ""
                done
                printf "$row" "(h) .$ext decompresses to pack.tar, = packfs build" "${c_ok[$ext]}" "" "" ""
        done
}
report_browse() {
        local ext row='%-66s %10s %10s %7s  %s\n' us
        us() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }  # "t1 t2 ..." us -> ms
        echo
        echo "browsing (issue 9), section i: each timing on a fresh foreground daemon (mount -f), best and median of"
        echo "$reps (pairs: $b_pairs); 'empty cache' = rm -rf of its --cache before the mount; 'records only' = a cache in which"
        echo "one earlier mount planned big/pack.tar: $b_records"
        echo
        printf "$row" "measure" "best" "median" "ratio" "target"
        printf "$row" "(i) cold ls VIEW (no stat), empty cache" "$(ms "$b_ls")" "$(ms "$b_ls_med")" "" ""
        printf "$row" "(i) cold ls --color=always VIEW, empty cache" "$(ms "$b_lscolor")" "$(ms "$b_lscolor_med")" "" \
                "< 100 ms $(met "$b_lscolor" 100000)"
        printf "$row" "(i) cold ls -l VIEW, empty cache" "$(ms "$b_lsl")" "$(ms "$b_lsl_med")" "" \
                "< 100 ms $(met "$b_lsl" 100000)"
        printf "$row" "(i) cold find VIEW -printf %s, empty cache" "$(ms "$b_find")" "$(ms "$b_find_med")" "" ""
        printf "$row" "    find CLOSURE-PATHS -printf %s (GNU find, the walk's floor)" "$(ms "$b_find_closure")" \
                "$(ms "$b_find_closure_med")" "" ""
        printf "$row" "(i) ls --color=always VIEW 1 s after an empty-cache mount" "$(ms "$b_lscolor_later")" \
                "$(ms "$b_lscolor_later_med")" "" "< 100 ms $(met "$b_lscolor_later" 100000)"
        printf "$row" "(i) ls -l VIEW 1 s after an empty-cache mount (survey done)" "$(ms "$b_lsl_later")" \
                "$(ms "$b_lsl_later_med")" "" "< 100 ms $(met "$b_lsl_later" 100000)"
        printf "$row" "    of which stat(2) of pack.tar alone (its LOOKUP plans it)" "$(ms "$b_stat_tar")" "$(ms "$b_stat_tar_med")" "" ""
        printf "$row" "    stat(2) of closure alone" "$(ms "$b_stat_closure")" "$(ms "$b_stat_closure_med")" "" ""
        printf "$row" "    ls -l --color=always of an empty local directory (start-up)" "$(ms "$b_ls_local")" \
                "$(ms "$b_ls_local_med")" "" ""
        printf "$row" "(i) cold ls --color=always VIEW, records only" "$(ms "$b_lscolor_r")" "$(ms "$b_lscolor_r_med")" "" \
                "< 100 ms $(met "$b_lscolor_r" 100000)"
        printf "$row" "(i) cold ls -l VIEW, records only" "$(ms "$b_lsl_r")" "$(ms "$b_lsl_r_med")" "" \
                "< 100 ms $(met "$b_lsl_r" 100000)"
        printf "$row" "(i) cold find VIEW -printf %s, records only" "$(ms "$b_find_r")" "$(ms "$b_find_r_med")" "" ""
        printf "$row" "    stat(2) of pack.tar alone, records only" "$(ms "$b_stat_tar_r")" "$(ms "$b_stat_tar_r_med")" "" ""
        printf "$row" "    a cold view lists: $b_names" "" "" "" ""
        printf "$row" "    encodings those cold listings started (daemon log)" "$b_listing_enc" "" "" "0 $( [ "$b_listing_enc" = 0 ] && echo met || echo MISSED)"
        [ -n "$b_find_all" ] && printf "$row" "(i) cold find VIEW -printf %s, --list all (encodes .gz .xz .zst)" \
                "$(secs "$b_find_all")" "" "" "(once; $b_find_all_enc encodings, $b_find_all_names files)"
        for ext in "${b_exts[@]}"; do
                printf "$row" "(i) packfs warm big/pack.tar.$ext, empty cache (no FUSE)" "$(secs "${w_time[$ext]}")" "" "" ""
        done
        for ext in "${b_exts[@]}"; do
                printf "$row" "(i) first stat(2) of the warmed pack.tar.$ext, fresh mount ([ -s ])" "$(ms "${w_stat[$ext]}")" \
                        "$(ms "${w_stat_med[$ext]}")" "" "< 10 ms $(met "${w_stat[$ext]}" 10000)"
                printf "$row" "    the first mount after packfs warm (run 1 of the above)" "$(ms "${w_stat_all[$ext]%% *}")" "" "" \
                        "< 10 ms $(met "${w_stat_all[$ext]%% *}" 10000)"
                printf "$row" "    every run, ms" "" "" "" "$(for u in ${w_stat_all[$ext]}; do us "$u"; echo -n ' '; done)"
                printf "$row" "    the same os.stat() timed inside python3, one run" "$(ms "${w_py[$ext]}")" "" "" \
                        "< 10 ms $(met "${w_py[$ext]}" 10000)"
                printf "$row" "    encodings it started (daemon log)" "${w_enc[$ext]}" "" "" ""
        done
        printf "$row" "(i) cold ls -l VIEW, the packs warmed ($b_names_w)" "$(ms "$b_lsl_w")" "$(ms "$b_lsl_w_med")" "" \
                "(encoded: $b_lsl_w_enc)"
        printf "$row" "(i) cat pack.tar, fresh mount, planned, nothing else running" "$(ms "$p_without_best")" \
                "$(ms "$p_without_med")" "" ""
        printf "$row" "(i) same while prepare encodes pack.tar.xz (SCHED_IDLE)" "$(ms "$p_with_best")" "$(ms "$p_with_med")" \
                "" ""
        printf "$row" "    ratio with / without: of the bests, of the medians" "$(ratio "$p_with_best" "$p_without_best")" \
                "$(ratio "$p_with_med" "$p_without_med")" "" "<= 1.10 $(met "$(ratio "$p_with_med" "$p_without_med")" 1.10)"
        printf "$row" "    median of the $b_pairs paired ratios" "" "$p_ratio_med" "" "<= 1.10 $(met "$p_ratio_med" 1.10)"
        printf "$row" "    paired ratios" "" "" "" "${p_ratios[*]}"
        [ ${#p_host[@]} -gt 0 ] && printf "$row" "    host check after each pair (loop beside / alone)" "" "" "" "${p_host[*]}"
        printf "$row" "    cats without, ms" "" "" "" "$(for u in "${p_without[@]}"; do us "$u"; echo -n ' '; done)"
        printf "$row" "    cats with, ms" "" "" "" "$(for u in "${p_with[@]}"; do us "$u"; echo -n ' '; done)"
        printf "$row" "    encoding under way before and after each 'with' cat (status)" "$p_seen of $b_pairs" "" "" \
                "(finished early: $p_ready_early)"
        printf "$row" "    CPU s the SCHED_IDLE threads got during each 'with' cat" "" "" "" "${p_idle[*]}"
        printf "$row" "    others' CPU s during each cat (noise), without | with" "" "" "" \
                "${p_noise_without[*]} | ${p_noise_with[*]}"
        printf "$row" "    SCHED_IDLE threads in the daemon then" "" "" "" "${p_threads[*]}"
        printf "$row" "    stat pack.tar before the cat (plan), without | with, ms" "" "" "" \
                "$(for u in "${p_plan_without[@]}"; do us "$u"; echo -n ' '; done)| $(for u in "${p_plan_with[@]}"; do us "$u"; echo -n ' '; done)"
        if [ ${#h_alone[@]} -gt 0 ]; then
                printf "$row" "(i) host check: a CPU loop on cpu 0 alone (wall)" "$(ms "$(printf '%s\n' "${h_alone[@]}" | sort -n | head -n1)")" \
                        "$(ms "$(median "${h_alone[@]}")")" "" "CPU s: ${h_cpu_alone[*]}"
                printf "$row" "    the same beside a SCHED_IDLE spin loop on cpu 1" "$(ms "$(printf '%s\n' "${h_beside[@]}" | sort -n | head -n1)")" \
                        "$(ms "$(median "${h_beside[@]}")")" "$(ratio "$(median "${h_beside[@]}")" "$(median "${h_alone[@]}")")" \
                        "CPU s: ${h_cpu_beside[*]} (1.00: idle work costs the foreground nothing)"
        fi
        printf "$row" "(i) SIGINT to cat of a cold pack.tar.xz: its end after the signal" "$(ms "$s_best")" "$(ms "$s_med")" \
                "" "worst $(ms "$s_worst"); exit ${s_rc[*]}"
        printf "$row" "    encoding still under way after the interrupt (status)" "$s_going of $reps" "" "" ""
}
report_docker() {
        local row='%-62s %11s %11s %7s  %s\n' p r s l b rec a un um ub
        us() { awk -v u="$1" 'BEGIN { printf "%.0f", u / 1000 }'; }
        list() { local u; for u in "$@"; do us "$u"; echo -n ' '; done; }
        echo
        echo "docker.tar and oci/ (issue 10), section j: $reps rounds; 'cold' = rm -rf of --cache, a fresh mount -f,"
        echo "sleep 1 (its survey), the store's pages warm; 'warm' = a remount on that cache (the layer digests"
        echo "recorded); each round's pair gives a ratio; 'layers' = docker.c's log: hashed while streaming /"
        echo "recorded / read again for their digest. docker save runs in dockerd $j_dockerd (vfs storage)"
        echo
        printf "$row" "measure" "packfs" "reference" "ratio" "target"
        r=$(ratio "$(best "${j_cold[@]}")" "$(best "${j_ossl[@]}")")
        printf "$row" "(j) cold docker.tar vs cat pack.tar | openssl dgst -sha256" "$(ms "$(best "${j_cold[@]}")")" \
                "$(ms "$(best "${j_ossl[@]}")")" "$r" "<= 1.10 $(met "$r" 1.10)"
        p=$(ratios "${j_cold[*]}" "${j_ossl[*]}")
        printf "$row" "    median of the paired ratios ($p)" "" "" "$(median_r $p)" "<= 1.10 $(met "$(median_r $p)" 1.10)"
        printf "$row" "    every run, ms: docker.tar | openssl" "" "" "" "$(list "${j_cold[@]}")| $(list "${j_ossl[@]}")"
        for s in "${j_cold_hash[@]}"; do
                read -r a l b rec r <<< "$s"
                printf "$row" "    layers: $a of $l streamed ($((b / 1000000)) MB), $rec recorded, $r read again" "" "" "" ""
        done
        r=$(ratio "$(best "${j_warm[@]}")" "$(best "${j_warm_ref[@]}")")
        printf "$row" "(j) warm docker.tar vs cat pack.tar, planned, pages evicted" "$(ms "$(best "${j_warm[@]}")")" \
                "$(ms "$(best "${j_warm_ref[@]}")")" "$r" "<= 1.10 $(met "$r" 1.10)"
        p=$(ratios "${j_warm[*]}" "${j_warm_ref[*]}")
        printf "$row" "    median of the paired ratios ($p)" "" "" "$(median_r $p)" "<= 1.10 $(met "$(median_r $p)" 1.10)"
        printf "$row" "    every run, ms: docker.tar | pack.tar" "" "" "" "$(list "${j_warm[@]}")| $(list "${j_warm_ref[@]}")"
        r=$(ratio "$(best "${j_first[@]}")" "$(best "${j_first_ref[@]}")")
        printf "$row" "(j) warm, the remount's first read of each (planning incl.)" "$(ms "$(best "${j_first[@]}")")" \
                "$(ms "$(best "${j_first_ref[@]}")")" "$r" "(pairs $(ratios "${j_first[*]}" "${j_first_ref[*]}"))"
        read -r a l b rec r <<< "${j_warm_hash[0]}"
        printf "$row" "    layers: $a of $l streamed ($((b / 1000)) kB), $rec recorded, $r read again" "" "" "" ""
        r=$(ratio "$(best "${j_zst[@]}")" "$(best "${j_save[@]}")")
        printf "$row" "(j) cold docker.tar.zst vs docker save | zstd -T0 -3" "$(secs "$(best "${j_zst[@]}")")" \
                "$(secs "$(best "${j_save[@]}")")" "$r" "<= 1.00 $(met "$r" 1)"
        p=$(ratios "${j_zst[*]}" "${j_save[*]}")
        printf "$row" "    median of the paired ratios ($p)" "" "" "$(median_r $p)" "<= 1.00 $(met "$(median_r $p)" 1)"
        printf "$row" "    every run, ms: packfs | docker save" "" "" "" "$(list "${j_zst[@]}")| $(list "${j_save[@]}")"
        printf "$row" "    CPU user+sys: daemon (mount to end) | save, zstd" "" "" "" "${j_zst_cpu[*]} | ${j_save_cpu[*]}"
        read -r un um ub <<< "${j_zst_units:-? ? 0}"
        printf "$row" "    units encoded (daemon log), input bytes" "$un of $um" "$((ub / 1000000)) MB" "" ""
        printf "$row" "    size in bytes" "$j_zst_size" "$j_save_size" \
                "$(awk -v a="$j_zst_size" -v b="$j_save_size" 'BEGIN { printf "%.3f", a / b }')" ""
        if [ -n "$j_load" ]; then
                printf "$row" "    docker load < big/docker.tar (once, vfs)" "" "$(secs "$j_load")" "" ""
        else
                printf "$row" "    docker load: the image was in dockerd already (same Id)" "" "" "" ""
        fi
        r=$(ratio "$(best "${j_zst_after[@]}")" "$(best "${j_zst[@]}")")
        printf "$row" "(j) docker.tar.zst, remount after pack.tar.zst was encoded" "$(secs "$(best "${j_zst_after[@]}")")" \
                "" "$r" "of cold (pairs $(ratios "${j_zst_after[*]}" "${j_zst[*]}"))"
        read -r un um ub <<< "${j_zst_after_units:-? ? 0}"
        printf "$row" "    units encoded (daemon log), input bytes" "$un of $um" "$((ub / 1000)) kB" "" ""
        read -r un um ub <<< "${j_pack_units:-? ? 0}"
        printf "$row" "    (pack.tar.zst before it: units encoded, input bytes)" "$un of $um" "$((ub / 1000000)) MB" "" ""
        [ -s "$profiles_gen/info" ] && while read -r p m b s; do
                read -r a l b2 rec r <<< "${j_gen_hash[$p]}"
                printf "$row" "(j) $p after big, same cache: docker.tar" "$(ms "${j_gen_time[$p]}")" "" \
                        "$(ratio "${j_gen_time[$p]}" "$(best "${j_cold[@]}")")" "of cold"
                printf "$row" "    changed: ${m:33} ($((b / 1000)) kB)" "" "" "" ""
                printf "$row" "    layers: $a of $l streamed ($((b2 / 1000000)) MB), $rec recorded, $r read again" "" "" "" \
                        "only new: $((l - rec)) ($( [ "$((l - rec))" -le 3 ] && echo met || echo MISSED))"
                read -r un um ub <<< "${j_gen_units[$p]:-? ? 0}"
                printf "$row" "    docker.tar.zst: units encoded, input bytes" "$un of $um" "$((ub / 1000000)) MB" "" \
                        "$(secs "${j_gen_ztime[$p]}")"
        done < "$profiles_gen/info"
        r=$(ratio "$(best "${j_oci[@]}")" "$(best "${j_cold[@]}")")
        printf "$row" "(j) first skopeo inspect oci:MNT/big/oci, cold view" "$(ms "$(best "${j_oci[@]}")")" \
                "$(ms "$(best "${j_cold[@]}")")" "$r" "< 2.00 $(met "$r" 1.999)"
        p=$(ratios "${j_oci[*]}" "${j_cold[*]}")
        printf "$row" "    against the cold docker.tar read; paired ratios ($p)" "" "" "$(median_r $p)" \
                "< 2.00 $(met "$(median_r $p)" 1.999)"
        printf "$row" "    every run, ms" "" "" "" "$(list "${j_oci[@]}")"
        read -r a l b rec r <<< "${j_oci_hash[0]}"
        printf "$row" "    layers: $a of $l streamed, $rec recorded, $r read for their digest" "" "" "" \
                "(inspect lists $j_oci_layers layers)"
}
out=$bench/results-$(date -u +%Y%m%d-%H%M%S).txt
report | tee "$out"

# --- where the time goes (--profile) -------------------------------------------

if [ $profile = 1 ]; then
        mount_fs "$mnt" "$profiles"
        cat "$pack" > /dev/null
        prof=$bench/profile
        mkdir -p "$prof"
        echo
        echo "== strace -c -f on the daemon during one cat of pack.tar (pages evicted)"
        evict "$pack"
        strace -c -f -p "$daemon_pid" -o "$prof/strace.txt" 2> /dev/null &
        spid=$!
        sleep 1
        cat "$pack" > /dev/null
        kill -INT "$spid"; wait "$spid" || true
        head -n 14 "$prof/strace.txt"
        echo
        echo "== strace of the splice set-up (per thread pipe sizing)"
        evict "$pack"
        strace -f -p "$daemon_pid" -e trace=fcntl,splice,vmsplice,pipe2 -o "$prof/splice.txt" 2> /dev/null &
        spid=$!
        sleep 1
        cat "$pack" > /dev/null
        kill -INT "$spid"; wait "$spid" || true
        grep -c 'F_SETPIPE_SZ.*EPERM' "$prof/splice.txt" | sed 's/^/F_SETPIPE_SZ refused: /'
        grep -c ' splice(' "$prof/splice.txt" | sed 's/^/splice calls: /'
        echo
        echo "== perf stat (software events) on the daemon and on cat"
        evict "$pack"
        perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p "$daemon_pid" \
                -o "$prof/perf-stat-daemon.txt" &
        ppid_=$!
        sleep 0.5
        perf stat -e task-clock,context-switches,page-faults -o "$prof/perf-stat-cat.txt" cat "$pack" > /dev/null
        kill -INT "$ppid_"; wait "$ppid_" || true
        grep -E 'task-clock|context|migrations|faults|elapsed' "$prof/perf-stat-daemon.txt" "$prof/perf-stat-cat.txt" || true
        echo
        echo "== perf record -g on the daemon during one cat (top symbols, self time)"
        evict "$pack"
        perf record -q -g -p "$daemon_pid" -o "$prof/perf.data" 2> /dev/null &
        ppid_=$!
        sleep 0.5
        cat "$pack" > /dev/null
        kill -INT "$ppid_"; wait "$ppid_" || true
        perf report -i "$prof/perf.data" --no-children --sort dso,symbol -g none --stdio 2> /dev/null |
                grep -E '^ +[0-9]' | sed 's/  */ /g' | head -n 25
        unmount "$mnt"
fi
