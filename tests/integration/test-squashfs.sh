#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# pack.squashfs (issue 12): read by unsquashfs (-s, -l, -d compared with the
# store: bytes, modes, symlinks) and by the kernel (mount -o loop,ro, then a
# static program of the profile run with chroot); the Singularity layout; the
# compressor and level from the config; exact sizes; listed only once built;
# the same bytes on every mount, from `packfs build` and on one core; a new
# generation compresses only its new store items and gives the bytes a cold
# build gives; a store file changed since planning gives EIO and a log line;
# `prepare` compresses at idle priority until a reader waits for the image.
#
# Usage: PACKFS=build/fs/packfs test-squashfs.sh   (or: test-squashfs.sh PACKFS)
source "$(dirname "$0")/lib.sh"
need_fuse
need_tools unsquashfs gcc cmp sha256sum timeout taskset
[[ $(id -u) == 0 ]] || skip "needs root (loop mounts, chroot)"
setup_work
make_store

# A static program, so the image needs nothing but its closure.
mkdir -p "$WORK/src/hello/bin" "$WORK/src/hello/share/doc" "$WORK/src/data/share/data" "$WORK/src/links/share"
cat >"$WORK/hello.c" <<'C'
#include <stdio.h>
int main(void) {
        printf("hello from packfs\n");
        return 0;
}
C
gcc -static -O2 -o "$WORK/src/hello/bin/hello" "$WORK/hello.c" || skip "gcc cannot link statically"
echo "some data" >"$WORK/src/data/share/data/file"
head -c 1000000 /dev/urandom >"$WORK/src/data/share/data/random"          # several blocks
head -c 300000 /dev/zero >"$WORK/src/data/share/data/zeros"               # sparse blocks
: >"$WORK/src/data/share/data/empty"
chmod 0600 "$WORK/src/data/share/data/file"
printf 'doc\n' >"$WORK/src/hello/share/doc/README"
ln -s /etc/shadow "$WORK/src/links/share/shadow" # hostile: must stay a symlink
ln -s ../share "$WORK/src/links/share/up"
HELLO=$(add_item "$WORK/src/hello")
DATA=$(add_item "$WORK/src/data")
LINKS=$(add_item "$WORK/src/links")
make_profile demo "$HELLO" "$DATA" "$LINKS"
make_profile gz "$HELLO"
# A store item whose file will change behind the database's back.
mkdir -p "$WORK/src/changing/share"
head -c 300000 /dev/urandom >"$WORK/src/changing/share/data"
CHANGING=$(add_item "$WORK/src/changing")
make_profile changing "$CHANGING"
cat >"$WORK/sq.ini" <<'INI'
[demo]
entry-point = bin/hello
symlinks = /usr/bin=bin /bin=bin
[gz]
squashfs-compressor = gzip
squashfs-level = 8
INI

M=$WORK/mnt
mount_packfs "$M" --config "$WORK/sq.ini"
P=$M/demo/pack.squashfs
listed() { T ls "$M/$1" | grep -qx pack.squashfs; } # VIEW

# ---- listed only once built ----
check "a cold view does not list pack.squashfs" eval '! listed demo'
size=$(T stat -c %s "$P")
check "stat by name builds it: a size" test "$size" -gt 0
check_eq "the size is exact" "$size" "$(bytes_read "$P")"
check_eq "the size is a multiple of 4096" 0 "$((size % 4096))"
check "then the view lists it" listed demo
check_contains "the log says it was built" "demo/pack.squashfs: built in" "$(cat "$MOUNT_LOG")"

# ---- unsquashfs ----
T cp "$P" "$WORK/demo.sqfs"
super=$(unsquashfs -s "$WORK/demo.sqfs")
check_contains "unsquashfs -s: zstd (the default)" "Compression zstd" "$super"
check_contains "unsquashfs -s: 128 KiB blocks" "Block size 131072" "$super"
check_contains "unsquashfs -s: no xattrs" "Xattrs are not stored" "$super"
check_contains "unsquashfs -s: made at time 1" "Thu Jan  1 00:00:01 1970" "$super"
listing=$(unsquashfs -lls "$WORK/demo.sqfs")
check "unsquashfs -l lists the closure's files" grep -q "squashfs-root$HELLO/bin/hello\$" <<<"$listing"
check_eq "every entry is root/root at time 1" 0 "$(grep -vc ' root/root .* 1970-01-01 00:00 ' <<<"$listing" || true)"
unsquashfs -q -n -d "$WORK/x" "$WORK/demo.sqfs" >/dev/null
describe() { # DIR: every entry's relative path, type, mode, size and link target
        (cd "$1" && find . -printf '%P %y %m %s %l\n' | sort)
}
for item in $(pf_store closure "$(profile_item demo)"); do
        check_eq "unsquashfs -d: $(basename "$item") has the store's entries, modes and links" \
                "$(describe "$item")" "$(describe "$WORK/x$item")"
        check "unsquashfs -d: $(basename "$item") has the store's bytes" diff -r --no-dereference "$item" "$WORK/x$item"
done
check_eq "the hostile link stays a link" "/etc/shadow" "$(readlink "$WORK/x$LINKS/share/shadow")"

# ---- the Singularity layout ----
PROFILE=$(profile_item demo)
check_eq "/.singularity.d is 0555" 555 "$(stat -c %a "$WORK/x/.singularity.d")"
check_eq "actions/run points at the entry point" "../..$PROFILE/bin/hello" "$(readlink "$WORK/x/.singularity.d/actions/run")"
check_eq "runscript points at the entry point" "..$PROFILE/bin/hello" "$(readlink "$WORK/x/.singularity.d/runscript")"
env_sh=$(cat "$WORK/x/.singularity.d/env/90-environment.sh")
check_contains "90-environment.sh exports PATH" "PATH='$PROFILE/bin'"$'\n'"export PATH" "$env_sh"
check_eq "90-environment.sh sets the profile's PATH in sh" "$PROFILE/bin" "$(env -i sh -c ". '$WORK/x/.singularity.d/env/90-environment.sh'; echo \$PATH")"
for d in proc sys dev home; do
        check_eq "/$d is an empty 0555 directory" "555 0" "$(stat -c %a "$WORK/x/$d") $(ls -A "$WORK/x/$d" | wc -l)"
done
check_eq "/tmp is 1777" 1777 "$(stat -c %a "$WORK/x/tmp")"
check_eq "the symlinks option: /usr/bin, relative" "..$PROFILE/bin" "$(readlink "$WORK/x/usr/bin")"
check_eq "the symlinks option: /bin, relative" "${PROFILE#/}/bin" "$(readlink "$WORK/x/bin")"

# ---- the kernel mounts it and runs the profile's program ----
if modprobe squashfs 2>/dev/null || grep -qw squashfs /proc/filesystems; then
        mkdir -p "$WORK/k"
        if mount -o loop,ro "$P" "$WORK/k"; then
                at_exit "umount '$WORK/k' 2>/dev/null"
                check_eq "chroot into the mounted image runs /bin/hello" "hello from packfs" "$(chroot "$WORK/k" /bin/hello)"
                check_eq "and the entry point" "hello from packfs" "$(chroot "$WORK/k" /.singularity.d/runscript)"
                check "the kernel reads the store's bytes" cmp "$DATA/share/data/random" "$WORK/k$DATA/share/data/random"
                umount "$WORK/k"
        else
                fail "mount -o loop,ro pack.squashfs"
        fi
else
        fail "no squashfs in this kernel"
fi

# ---- compressor and level from the config ----
T cp "$M/gz/pack.squashfs" "$WORK/gz.sqfs"
super=$(unsquashfs -s "$WORK/gz.sqfs")
check_contains "squashfs-compressor = gzip" "Compression gzip" "$super"
check_contains "squashfs-level = 8" "compression-level 8" "$super"
printf '[*]\nsquashfs-compressor = brotli\n' >"$WORK/bad.ini"
mkdir -p "$WORK/nomnt"
check_fails "an unknown compressor fails the mount" "squashfs-compressor" \
        "$PACKFS" mount -f --store "$STORE" --db "$DB" --profiles "$PROFILES" --config "$WORK/bad.ini" "$WORK/nomnt"

# ---- the same bytes: remount, packfs build (fresh cache), one core ----
want=$(sha256sum <"$WORK/demo.sqfs" | cut -c1-64)
unmount_packfs "$M" "$MOUNT_PID"
mount_packfs "$M" --config "$WORK/sq.ini"
check "a remount lists it at once (cached)" listed demo
check_eq "a remount gives the same bytes" "$want" "$(sha "$P")"
T "$PACKFS" build --store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$WORK/cache-build" \
        --config "$WORK/sq.ini" demo/pack.squashfs -o "$WORK/build.sqfs" 2>/dev/null
check_eq "packfs build (a fresh cache) gives the same bytes" "$want" "$(sha256sum <"$WORK/build.sqfs" | cut -c1-64)"
T taskset -c 0 "$PACKFS" build --store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$WORK/cache-one" \
        --config "$WORK/sq.ini" demo/pack.squashfs -o "$WORK/one.sqfs" 2>/dev/null
check_eq "built on one core: the same bytes" "$want" "$(sha256sum <"$WORK/one.sqfs" | cut -c1-64)"
T "$PACKFS" build --store "$STORE" --db "$DB" --profiles "$PROFILES" --config "$WORK/sq.ini" \
        --cache "$WORK/cache-build" demo/pack.squashfs -o - 2>/dev/null >"$WORK/stdout.sqfs"
check_eq "packfs build -o - from the cache: the same bytes" "$want" "$(sha256sum <"$WORK/stdout.sqfs" | cut -c1-64)"

# ---- a new generation compresses only what is new ----
mkdir -p "$WORK/src/new/share"
echo "new in generation 2" >"$WORK/src/new/share/new.txt"
NEW=$(add_item "$WORK/src/new")
make_profile demo "$HELLO" "$DATA" "$NEW"
sleep 1.5 # past the entry and attribute timeouts
T stat -c %s "$P" >/dev/null
check_contains "generation 2: only the new items are compressed" \
        "demo/pack.squashfs: built in" "$(grep -F "2 of 4 store items' blocks from the cache" "$MOUNT_LOG")"
T cp "$P" "$WORK/gen2.sqfs"
T "$PACKFS" build --store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$WORK/cache-gen2" \
        --config "$WORK/sq.ini" demo/pack.squashfs -o "$WORK/gen2-cold.sqfs" 2>/dev/null
check "generation 2 from cached blocks has the bytes of a cold build" cmp "$WORK/gen2.sqfs" "$WORK/gen2-cold.sqfs"
check_eq "generation 2 holds the new item" "new in generation 2" \
        "$(unsquashfs -cat "$WORK/gen2.sqfs" "$NEW/share/new.txt" 2>/dev/null)"

# ---- a store file that changed since planning ----
# Planning pack.tar records the item's member list; the image is then built
# from that record and finds the file's size changed.
T stat -c %s "$M/changing/pack.tar" >/dev/null
chmod u+w "$CHANGING/share" "$CHANGING/share/data"
echo "more bytes" >>"$CHANGING/share/data"
check_fails "a changed store file: EIO" "Input/output error" T cat "$M/changing/pack.squashfs"
check_contains "the log names the file" "$CHANGING/share/data changed since it was planned" "$(cat "$MOUNT_LOG")"
check "nothing is listed for it" eval '! listed changing'
unmount_packfs "$M" "$MOUNT_PID"

# ---- prepare: compressed at idle priority, raised once a reader waits ----
# Six items of text at zstd 19: seconds of compression, item after item.
slow=()
for i in 1 2 3 4 5 6; do
        mkdir -p "$WORK/src/slow$i/share"
        head -c 4000000 /dev/urandom | base64 >"$WORK/src/slow$i/share/text$i"
        slow+=("$(add_item "$WORK/src/slow$i")")
done
make_profile slow "${slow[@]}"
printf '[slow]\nprepare = pack.squashfs\nsquashfs-level = 19\n' >"$WORK/slow.ini"
# The daemon's threads under SCHED_IDLE (policy 5: field 41 of their stat),
# and the CPU time they used so far (utime + stime, in ticks).
idle_threads() {
        cat /proc/"$MOUNT_PID"/task/*/stat 2>/dev/null |
                awk '{ sub(/^.*\) /, "") } $39 == 5 { n++ } END { print n + 0 }'
}
thread_ticks() { # "TID POLICY TICKS" of each thread
        local t
        for t in /proc/"$MOUNT_PID"/task/*; do
                awk -v tid="${t##*/}" '{ sub(/^.*\) /, ""); print tid, $39, $12 + $13 }' "$t/stat" 2>/dev/null
        done
}
# The ticks used between two samples by the threads at idle priority in the
# second ("idle N") and by the others ("normal N").
ticks_used() { # BEFORE AFTER POLICY
        awk -v want="$3" 'NR == FNR { before[$1] = $3; next }
                ($2 == 5) == (want == "idle") { used += $3 - ($1 in before ? before[$1] : 0) }
                END { print used + 0 }' <(printf '%s\n' "$1") <(printf '%s\n' "$2")
}
M2=$WORK/mnt-slow
mount_packfs "$M2" --config "$WORK/slow.ini" --cache "$WORK/cache-slow"
for ((i = 0; i < 100; i++)); do
        (($(idle_threads) >= 3)) && break
        sleep 0.1
done
check "prepare compresses at idle priority (planner and workers)" test "$(idle_threads)" -ge 3
t0=$(thread_ticks)
sleep 0.3
check "... and they work" test "$(ticks_used "$t0" "$(thread_ticks)" idle)" -gt 5
T stat -c %s "$M2/slow/pack.squashfs" >"$WORK/slow.size" &
reader=$!
sleep 0.2 # a block's compression at most, then every worker follows
t0=$(thread_ticks)
sleep 0.5
t1=$(thread_ticks)
idle=$(ticks_used "$t0" "$t1" idle) normal=$(ticks_used "$t0" "$t1" normal)
check "the reader is still waiting (the build takes seconds)" kill -0 "$reader"
# A worker raised in the middle of a block finishes it at idle priority:
# starved by the others, it gets little.
check "once a reader waits, the build works at normal priority ($normal ticks; $idle idle)" \
        test "$normal" -gt $((idle * 5))
wait "$reader"
check "the reader gets the image's size" test "$(cat "$WORK/slow.size")" -gt 0
check_contains "it was built once, by prepare" "slow/pack.squashfs: built in" "$(cat "$MOUNT_LOG")"

finish
