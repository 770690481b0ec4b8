#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# pack.tar.gz, pack.tar.xz and pack.tar.zst on a real FUSE mount, checked with
# the real tools (gzip, xz, zstd, GNU tar, rsync, dd) against pack.tar: round
# trips, exact st_size at the first stat, `packfs build`, one encoding for many
# cold readers, the cache across remounts, a daemon killed mid-encoding, eviction
# under --cache-size, a full cache disk, a one-package change re-encoding little,
# compression levels, bad options and damaged cache objects.
#
# Usage: PACKFS=build/fs/packfs test-compressed.sh   (or: test-compressed.sh PACKFS)

source "$(dirname "$0")/lib.sh"

need_fuse
need_tools gzip xz zstd tar rsync dd python3 sha256sum sqlite3 timeout mount umount truncate
setup_work
make_store

# ---- the store ----

src=$WORK/src
# big: 26 MiB, blocks of 8 KiB of random bytes and 120 KiB of text (more than one
# unit for every codec, and cheap enough to encode with xz); medium: 8 MiB, the
# same mix for other profiles; killme: 5 MiB of random bytes, slow under xz -9;
# small/sNN: forty small items (text, a little binary, a symlink, a script);
# changed/s07: another s07.
python3 - "$src" <<'EOF'
import os, sys
src = sys.argv[1]
def text(tag, n): # one line repeated: compressible, and fast to compress
    line = b"%s: the quick brown fox jumps over the lazy dog\n" % tag
    return (line * (n // len(line) + 1))[:n]
def mixed(path, blocks, rnd, tag):
    with open(path, "wb") as f:
        for b in range(blocks):
            f.write(os.urandom(rnd))
            f.write(text(b"%s block %d" % (tag, b), 128 * 1024 - rnd))
def small(d, k, tag):
    os.makedirs(f"{d}/share/{k}", exist_ok=True)
    os.makedirs(f"{d}/bin", exist_ok=True)
    os.makedirs(f"{d}/lib", exist_ok=True)
    open(f"{d}/share/{k}/notes.txt", "wb").write(text(tag, 5000 + 1234 * int(k[1:])))
    open(f"{d}/lib/lib{k}.so", "wb").write(os.urandom(2048 + 97 * int(k[1:])))
    os.symlink("notes.txt", f"{d}/share/{k}/latest")
    open(f"{d}/bin/{k}", "w").write(f"#!/bin/sh\necho {k}\n")
    os.chmod(f"{d}/bin/{k}", 0o755)
for d in ("big", "medium", "killme"):
    os.makedirs(f"{src}/{d}/share", exist_ok=True)
mixed(f"{src}/big/share/big.bin", 208, 8 * 1024, b"big")
mixed(f"{src}/medium/share/medium.bin", 64, 20 * 1024, b"medium")
open(f"{src}/killme/share/random.bin", "wb").write(os.urandom(5 * 1024 * 1024))
open(f"{src}/killme/share/text", "wb").write(text(b"killme", 2 * 1024 * 1024))
for i in range(40):
    small(f"{src}/small/s{i:02d}", f"s{i:02d}", b"small %d" % i)
small(f"{src}/changed/s07", "s07", b"changed small 7")
EOF
BIG=$(add_item "$src/big")
MEDIUM=$(add_item "$src/medium")
KILLME=$(add_item "$src/killme")
mapfile -t SMALL < <(pf_store add "$src"/small/s*) # one call: quicker than 40
[[ ${#SMALL[@]} == 40 && -d ${SMALL[39]} ]] || die "packfs store add of the small items failed"
S07=${SMALL[7]}
S07_NEW=$(add_item "$src/changed/s07")

make_profile p "$BIG" "${SMALL[@]}"                    # the main one
make_profile b "$MEDIUM" "${SMALL[@]:0:5}"             # another, smaller
make_profile c "${SMALL[@]:10:3}"                      # a tiny one
make_profile lv "$MEDIUM" "${SMALL[0]}"                # zstd -19 by the config
make_profile killme "$KILLME"                          # xz -9 by the config

CFG=$WORK/packfs.ini
cat >"$CFG" <<'EOF'
[killme]
xz-level = 9

[lv]
zstd-level = 19
EOF

X=(gz xz zst)

# ---- helpers ----

section() { say "---- $1 (at $SECONDS s)"; }

# unpack EXT FILE: FILE decompressed by the real tool, on stdout.
unpack() {
        local tool
        case $1 in
        gz) tool=gzip ;;
        xz) tool=xz ;;
        zst) tool=zstd ;;
        esac
        # shellcheck disable=SC2016 # expanded by the inner bash
        T bash -c '"$1" -dc <"$2"' unpack "$tool" "$2"
}
unpack_sha() { unpack "$1" "$2" | sha256sum | cut -d' ' -f1; }
stream_sha() { sha256sum | cut -d' ' -f1; }
drop() { dd if="$1" iflag=nocache count=0 status=none; }
# log_len LOG: lines in LOG so far; log_since LOG N: its lines after the first N.
log_len() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }
log_since() { tail -n +$(($2 + 1)) "$1"; }
# count FIXED_STRING: lines of stdin holding it.
count() { grep -cF -- "$1" || true; }
# objects_bytes CACHE: the sum of the sizes of the object files.
objects_bytes() { find "$1/objects" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
index_bytes() { sqlite3 "$1/index.sqlite" 'select coalesce(sum(size), 0) from objects'; }
index_count() { sqlite3 "$1/index.sqlite" 'select count(*) from objects'; }
pbuild() { T "$PACKFS" build --store "$STORE" --db "$DB" --profiles "$PROFILES" "$@"; }
ms_now() { echo $(($(date +%s%N) / 1000000)); }
# units_of LINE: "N M K" from an "encoded N of M units ..., K from the cache" line.
units_of() {
        local re='encoded ([0-9]+) of ([0-9]+) units .*, ([0-9]+) from the cache'
        if [[ $1 =~ $re ]]; then
                echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"
        else
                echo "? ? ?"
        fi
}

# ---- 1. round trips ----

section "1. round trips"

MNT=$WORK/mnt
CACHE=$WORK/cache
mount_packfs "$MNT" --config "$CFG"
main_pid=$MOUNT_PID
MAIN_LOG=$MOUNT_LOG

# Sizes at the first stat, before anything is read (the lookup encodes).
declare -A st_size sha
for x in "${X[@]}"; do
        st_size[$x]=$(T stat -c %s "$MNT/p/pack.tar.$x")
done
check_eq "a second stat gives the same sizes and encodes nothing" \
        "${st_size[gz]} ${st_size[xz]} ${st_size[zst]} 3" \
        "$(T stat -c %s "$MNT/p/pack.tar."{gz,xz,zst} | tr '\n' ' ')$(count ": encoded" <"$MAIN_LOG")"
ls_out=$(T ls "$MNT/p")
for f in pack.tar pack.tar.gz pack.tar.xz pack.tar.zst; do
        check "p/ lists $f" grep -qxF "$f" <<<"$ls_out"
done

ref=$WORK/p.tar
T cat "$MNT/p/pack.tar" >"$ref"
ref_sha=$(sha "$ref")
ref_list=$(tar -tf "$ref")
check "p/pack.tar is over 26 MiB" test "$(fsize "$ref")" -gt $((26 * 1024 * 1024))
check "p/pack.tar holds the big item" grep -qxF ".$BIG/share/big.bin" <<<"$ref_list"

for x in "${X[@]}"; do
        f=$MNT/p/pack.tar.$x
        copy=$WORK/p.tar.$x
        drop "$f"
        T cat "$f" >"$copy"
        sha[$x]=$(sha "$copy")
        size=$(fsize "$copy")
        check_eq "p/pack.tar.$x: st_size at the first stat equals the bytes read" "${st_size[$x]}" "$size"
        check "p/pack.tar.$x is compressed (smaller than pack.tar)" test "$size" -lt "$(fsize "$ref")"
        drop "$f"
        check_eq "p/pack.tar.$x: decompresses to pack.tar" "$ref_sha" "$(unpack_sha "$x" "$f")"
        drop "$f"
        check_eq "p/pack.tar.$x: tar -tf of the decompressed stream lists pack.tar's members" \
                "$ref_list" "$(unpack "$x" "$f" | tar -tf -)"
        rm -rf "$WORK/rsync" && mkdir "$WORK/rsync"
        drop "$f"
        T rsync "$f" "$WORK/rsync/"
        check_eq "p/pack.tar.$x: rsync gives the same bytes" "${sha[$x]}" "$(sha "$WORK/rsync/pack.tar.$x")"
        for cut in "37 100" "$((size / 4097 - 3)) 10"; do
                read -r skip n <<<"$cut"
                drop "$f"
                check_eq "p/pack.tar.$x: dd bs=4097 skip=$skip count=$n equals that slice of cat" \
                        "$(tail -c +$((skip * 4097 + 1)) "$copy" | head -c $((n * 4097)) | stream_sha)" \
                        "$(T dd if="$f" bs=4097 skip="$skip" count="$n" status=none | stream_sha)"
        done
        check_eq "p/pack.tar.$x: dd bs=4097 iflag=direct gives the same bytes" "${sha[$x]}" \
                "$(T dd if="$f" bs=4097 iflag=direct status=none | stream_sha)"
        line=$(grep -F "p/pack.tar.$x: encoded" "$MAIN_LOG" || true)
        check_eq "p/pack.tar.$x: encoded once" 1 "$(count ": encoded" <<<"$line")"
        read -r n m k <<<"$(units_of "$line")"
        check "p/pack.tar.$x: several units ($m), all encoded ($n), none from the empty cache ($k)" \
                test "$m" -ge 3 -a "$n" = "$m" -a "$k" = 0
        check_contains "p/pack.tar.$x: the log gives the output size" "; $size bytes" "$line"
done
check_eq "the three compressed packs differ" 3 "$(printf '%s\n' "${sha[@]}" | sort -u | wc -l)"
check "gzip -t accepts pack.tar.gz" T gzip -t "$WORK/p.tar.gz"
check "xz -t accepts pack.tar.xz" T xz -t "$WORK/p.tar.xz"
check "zstd -t accepts pack.tar.zst" T zstd -qt "$WORK/p.tar.zst"

# ---- 2. packfs build ----

section "2. packfs build"

check_eq "packfs build p/pack.tar.xz -o - (same cache) equals the mount" "${sha[xz]}" \
        "$(pbuild --config "$CFG" --cache "$CACHE" p/pack.tar.xz -o - 2>"$WORK/build.log" | stream_sha)"
check_eq "packfs build from the same cache encodes nothing" 0 "$(count ": encoded" <"$WORK/build.log")"
check_eq "packfs build p/pack.tar.xz -o - (fresh cache) equals the mount" "${sha[xz]}" \
        "$(pbuild --config "$CFG" --cache "$WORK/cache-build" p/pack.tar.xz -o - 2>"$WORK/build.log" | stream_sha)"
check_eq "packfs build with a fresh cache encodes" 1 "$(count "p/pack.tar.xz: encoded" <"$WORK/build.log")"
pbuild --config "$CFG" --cache "$WORK/cache-build" p/pack.tar.zst -o "$WORK/built.zst" 2>/dev/null ||
        fail "packfs build p/pack.tar.zst -o FILE failed"
check_eq "packfs build p/pack.tar.zst -o FILE (fresh cache) equals the mount" "${sha[zst]}" "$(sha "$WORK/built.zst")"
check_eq "packfs build p/pack.tar.gz -o - (without a mount's cache in use) equals the mount" "${sha[gz]}" \
        "$(pbuild --config "$CFG" --cache "$WORK/cache-build" p/pack.tar.gz -o - 2>/dev/null | stream_sha)"
# Reproducible whatever the machine: the mount encoded on every core; one core
# (one unit at a time, one walker) gives the same bytes.
say "cores: $(nproc)"
for x in "${X[@]}"; do
        check_eq "packfs build p/pack.tar.$x on one core (taskset -c 0, fresh cache) equals the mount's" \
                "${sha[$x]}" "$(T taskset -c 0 "$PACKFS" build --store "$STORE" --db "$DB" --profiles "$PROFILES" \
                        --config "$CFG" --cache "$WORK/cache-1core" "p/pack.tar.$x" -o - 2>/dev/null | stream_sha)"
done

# ---- 3. concurrent cold readers share one encoding ----

section "3. concurrent cold readers share one encoding"

COLD=$WORK/mnt-cold
COLD_CACHE=$WORK/cache-cold
mount_packfs "$COLD" --config "$CFG" --cache "$COLD_CACHE"
cold_pid=$MOUNT_PID
readers=()
for i in 1 2 3; do
        T cat "$COLD/p/pack.tar.zst" >"$WORK/cold.$i" &
        readers+=($!)
done
wait "${readers[@]}"
for i in 1 2 3; do
        check_eq "cold reader $i of pack.tar.zst gets the same bytes" "${sha[zst]}" "$(sha "$WORK/cold.$i")"
done
check_eq "three cold readers: exactly one p/pack.tar.zst encoding" 1 \
        "$(count "p/pack.tar.zst: encoded" <"$MOUNT_LOG")"
# Two names of the same closure and options are one plan, encoded once too.
readers=()
for v in p p-1-link p p-1-link; do
        T cat "$COLD/$v/pack.tar.gz" >"$WORK/cold.$((${#readers[@]} + 1))" &
        readers+=($!)
done
wait "${readers[@]}"
for i in 1 2 3 4; do
        check_eq "cold reader $i of p/ or p-1-link/pack.tar.gz gets the same bytes" "${sha[gz]}" \
                "$(sha "$WORK/cold.$i")"
done
check_eq "p/ and p-1-link/ cold readers: exactly one pack.tar.gz encoding" 1 \
        "$(count "pack.tar.gz: encoded" <"$MOUNT_LOG")"
check_eq "no other encoding in the cold mount" 2 "$(count ": encoded" <"$MOUNT_LOG")"
check "the cold server exits 0 after unmounting" unmount_packfs "$COLD" "$cold_pid"

# ---- 4. the cache survives a remount ----

section "4. the cache survives a remount"

check "the main server exits 0 after unmounting" unmount_packfs "$MNT" "$main_pid"
mark=$(log_len "$MAIN_LOG")
mount_packfs "$MNT" --config "$CFG"
main_pid=$MOUNT_PID
t0=$(ms_now)
size=$(T stat -c %s "$MNT/p/pack.tar.xz")
t1=$(ms_now)
check_eq "remount: p/pack.tar.xz has the same size" "${st_size[xz]}" "$size"
check "remount: the stat is a cache hit and fast ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 1000
check_eq "remount: no encoding" 0 "$(log_since "$MAIN_LOG" "$mark" | count ": encoded")"
for x in "${X[@]}"; do
        check_eq "remount: p/pack.tar.$x has the same bytes" "${sha[$x]}" "$(sha "$MNT/p/pack.tar.$x")"
done
check_eq "remount: still no encoding" 0 "$(log_since "$MAIN_LOG" "$mark" | count ": encoded")"
status=$(T "$PACKFS" status --cache "$CACHE" "$MNT" 2>&1)
check_contains "packfs status: the mount" "$MNT: mounted" "$status"
check "packfs status: the cache's use" grep -qE "^cache $CACHE: [0-9.]+ [KMG]iB in [0-9]+ objects, [1-9][0-9]* packs, [1-9][0-9]* item records$" \
        <<<"$status"
check_contains "packfs status: nothing under way" "  no encodings under way" "$status"

# ---- 5. kill -9 during an encoding ----

section "5. kill -9 during an encoding"

KMNT=$WORK/mnt-kill
KCACHE=$WORK/cache-kill
mount_packfs "$KMNT" --config "$CFG" --cache "$KCACHE"
kill_pid=$MOUNT_PID
KILL_LOG=$MOUNT_LOG
T_LIMIT=120 T stat -c %s "$KMNT/killme/pack.tar.xz" >/dev/null 2>&1 &
stat_pid=$!
want="  encoding killme/pack.tar.xz for $KMNT (pid $kill_pid): "
status=
for ((i = 0; i < 200; i++)); do
        status=$("$PACKFS" status --cache "$KCACHE" 2>&1 || true)
        [[ $status == *"$want"* ]] && compgen -G "$KCACHE/tmp/$kill_pid-*" >/dev/null && break
        sleep 0.05
done
sleep 0.2
status=$("$PACKFS" status --cache "$KCACHE" 2>&1 || true)
check_contains "packfs status shows the encoding under way" "$want" "$status"
check "packfs status gives its progress" grep -qE "^  encoding killme/pack.tar.xz for .*: [0-9]+%, .* of .*, for [0-9]+ s$" \
        <<<"$status"
check "the stat is still waiting for the encoding" kill -0 "$stat_pid"
kill -KILL "$kill_pid"
wait "$kill_pid" 2>/dev/null || true # reaped: a zombie would still look alive
wait "$stat_pid" 2>/dev/null || true
umount -l "$KMNT" 2>/dev/null || fusermount3 -uz "$KMNT" 2>/dev/null || true
n_partial=$(compgen -G "$KCACHE/tmp/$kill_pid-*" | wc -l || true)
check "the killed encoding left its partial file(s) in tmp/ ($n_partial)" test "$n_partial" -ge 1
say "partial file: $(find "$KCACHE/tmp" -type f -printf '%f (%s bytes) ')"
check_eq "the killed encoding left no object of its big unit" 0 "$(find "$KCACHE/objects" -type f -size +1M | wc -l)"
mark=$(log_len "$KILL_LOG")
mount_packfs "$KMNT" --config "$CFG" --cache "$KCACHE"
kill_pid=$MOUNT_PID
# (Units encode in parallel: a small one may have been in its fsync too.)
discarded="cache $KCACHE: discarded $n_partial interrupted encoding"
((n_partial == 1)) || discarded+=s
check_eq "remount: the interrupted encoding is discarded" "packfs: $discarded" \
        "$(log_since "$KILL_LOG" "$mark" | grep -F "cache $KCACHE: discarded" || true)"
check_eq "remount: tmp/ holds no file of the dead server" "" "$(ls -A "$KCACHE/tmp")"
check_eq "killme/pack.tar.xz (xz -9) decompresses to its pack.tar" "$(sha "$KMNT/killme/pack.tar")" \
        "$(T_LIMIT=120 unpack_sha xz "$KMNT/killme/pack.tar.xz")"
check_eq "killme/pack.tar.xz: encoded again, once" 1 \
        "$(log_since "$KILL_LOG" "$mark" | count "killme/pack.tar.xz: encoded")"
check "killme/pack.tar.xz is made with xz -9 (its big block has a 64 MiB dictionary)" \
        grep -q "dict=64MiB" < <(T xz --robot --list -vv "$KMNT/killme/pack.tar.xz")
check "p/pack.tar.xz is made with xz -6 (8 MiB dictionaries)" \
        grep -q "dict=8MiB" < <(T xz --robot --list -vv "$WORK/p.tar.xz")
check "the kill server exits 0 after unmounting" unmount_packfs "$KMNT" "$kill_pid"

# ---- 6. eviction under --cache-size ----

section "6. eviction under --cache-size"

# A cache holding p's three packs (the one packfs build filled), and a limit
# below their total: reading b's packs must evict p's (unpinned) objects.
ECACHE=$WORK/cache-evict
cp -a "$WORK/cache-build" "$ECACHE"
sa=$(objects_bytes "$ECACHE")
limit=$((sa * 17 / 20))
say "eviction: p's packs take $sa bytes; limit $limit"
EMNT=$WORK/mnt-evict
mount_packfs "$EMNT" --config "$CFG" --cache "$ECACHE" --cache-size "$limit"
evict_pid=$MOUNT_PID
EVICT_LOG=$MOUNT_LOG
b_ref_sha=$(sha "$EMNT/b/pack.tar")
declare -A b_sha
sb=0
for x in "${X[@]}"; do
        T cat "$EMNT/b/pack.tar.$x" >"$WORK/b.tar.$x"
        b_sha[$x]=$(sha "$WORK/b.tar.$x")
        sb=$((sb + $(fsize "$WORK/b.tar.$x")))
        check_eq "eviction: b/pack.tar.$x decompresses to b/pack.tar" "$b_ref_sha" "$(unpack_sha "$x" "$EMNT/b/pack.tar.$x")"
done
check "eviction: b's packs ($sb bytes) fit the limit ($limit; the test's own premise)" test "$sb" -lt "$limit"
check_contains "eviction: the log says objects were evicted" "cache $ECACHE: evicted " "$(cat "$EVICT_LOG")"
eb=$(objects_bytes "$ECACHE")
check "eviction: the objects ($eb bytes) fit the limit ($limit) once p's are evicted" test "$eb" -le "$limit"
check_eq "eviction: the index agrees with objects/ (bytes)" "$eb" "$(index_bytes "$ECACHE")"
check_eq "eviction: the index agrees with objects/ (count)" "$(find "$ECACHE/objects" -type f | wc -l)" \
        "$(index_count "$ECACHE")"
# An open pack keeps its objects while others are encoded over the limit.
exec 5<"$EMNT/b/pack.tar.xz"
for x in "${X[@]}"; do
        check_eq "eviction: p/pack.tar.$x, encoded again, has the same bytes" "${sha[$x]}" "$(sha "$EMNT/p/pack.tar.$x")"
done
check_eq "eviction: an open b/pack.tar.xz still reads right" "${b_sha[xz]}" "$(T sha256sum <&5 | cut -d' ' -f1)"
exec 5<&-
# Pins are per process: another one (a packfs build on the same cache) may
# evict what this mount serves. Its planned packs hold their units open.
exec 5<"$EMNT/b/pack.tar.zst"
find "$ECACHE/objects" -type f -delete
drop "$EMNT/b/pack.tar.zst"
drop "$EMNT/b/pack.tar.gz"
check_eq "objects removed behind the mount: an open b/pack.tar.zst still reads right" "${b_sha[zst]}" \
        "$(T sha256sum <&5 | cut -d' ' -f1)"
exec 5<&-
check_eq "objects removed behind the mount: b/pack.tar.gz, planned before, still reads right" "${b_sha[gz]}" \
        "$(sha "$EMNT/b/pack.tar.gz")"
check "the evict server exits 0 after unmounting" unmount_packfs "$EMNT" "$evict_pid"
# Over the limit now (everything was pinned by the plans): the next insertion,
# in a new mount, brings it back under.
mark=$(log_len "$EVICT_LOG")
mount_packfs "$EMNT" --config "$CFG" --cache "$ECACHE" --cache-size "$limit"
evict_pid=$MOUNT_PID
c_ref_sha=$(sha "$EMNT/c/pack.tar")
check_eq "eviction remount: c/pack.tar.gz decompresses to c/pack.tar" "$c_ref_sha" "$(unpack_sha gz "$EMNT/c/pack.tar.gz")"
check_contains "eviction remount: the log says objects were evicted" "cache $ECACHE: evicted " \
        "$(log_since "$EVICT_LOG" "$mark")"
eb=$(objects_bytes "$ECACHE")
check "eviction remount: the objects ($eb bytes) fit the limit ($limit)" test "$eb" -le "$limit"
for x in "${X[@]}"; do
        check_eq "eviction remount: b/pack.tar.$x has the same bytes" "${b_sha[$x]}" "$(sha "$EMNT/b/pack.tar.$x")"
done
check_eq "eviction remount: p/pack.tar.zst has the same bytes" "${sha[zst]}" "$(sha "$EMNT/p/pack.tar.zst")"
check "the evict server exits 0 after unmounting" unmount_packfs "$EMNT" "$evict_pid"

# ---- 7. a full cache disk ----

section "7. a full cache disk"

TINY=$WORK/tinycache
mkdir -p "$TINY"
mount -t tmpfs -o size=1M tmpfs "$TINY" || die "cannot mount a tmpfs on $TINY"
at_exit "umount -l '$TINY' 2>/dev/null"
FMNT=$WORK/mnt-full
mount_packfs "$FMNT" --config "$CFG" --cache "$TINY" --cache-size 10G
full_pid=$MOUNT_PID
for x in "${X[@]}"; do
        f=$FMNT/b/pack.tar.$x
        size=$(T stat -c %s "$f")
        check "full disk: b/pack.tar.$x ($size bytes) is bigger than the 1 MiB cache disk" test "$size" -gt 1048576
        check_eq "full disk: b/pack.tar.$x has the same bytes" "${b_sha[$x]}" "$(sha "$f")"
        check_eq "full disk: b/pack.tar.$x: st_size equals the bytes read" "$size" "$(bytes_read "$f")"
        drop "$f"
        check_eq "full disk: b/pack.tar.$x decompresses to b/pack.tar" "$b_ref_sha" "$(unpack_sha "$x" "$f")"
done
check_eq "full disk: the log says so, once" 1 "$(count "cache $TINY: disk full; encoding without caching" <"$MOUNT_LOG")"
check_eq "full disk: packfs build b/pack.tar.zst on the full cache gives the same bytes" "${b_sha[zst]}" \
        "$(pbuild --config "$CFG" --cache "$TINY" b/pack.tar.zst -o - 2>/dev/null | stream_sha)"
check "the full-disk server exits 0 after unmounting" unmount_packfs "$FMNT" "$full_pid"

# ---- 8. one package changed: little is encoded again ----

section "8. one package changed: little is encoded again"

gen1_sha=$ref_sha
# The mount's survey of the new generation (on the inotify event) or the cat
# below walks what changed, once: which of the two depends on timing.
mark=$(log_len "$MAIN_LOG")
make_profile p "$BIG" "${SMALL[@]/"$S07"/"$S07_NEW"}"
check_eq "p moved to generation 2" p-2-link "$(readlink "$PROFILES/p")"
sleep 1.5 # past the entry and attribute timeouts
T cat "$MNT/p/pack.tar" >"$WORK/p2.tar"
gen2_sha=$(sha "$WORK/p2.tar")
check_ne "generation 2 has another pack.tar" "$gen1_sha" "$gen2_sha"
check "generation 2's pack.tar holds the changed s07" grep -qxF ".$S07_NEW/share/s07/notes.txt" < <(tar -tf "$WORK/p2.tar")
line=$(log_since "$MAIN_LOG" "$mark" | grep -F "p/pack.tar: " | grep -F " store items" || true)
say "generation 2: $line"
check_eq "generation 2: pack.tar walked only s07's new item and the new profile item, once" \
        "1 1" "$(grep -c . <<<"$line") $(grep -c "walked 2 of " <<<"$line")"
check_eq "generation 2: pack.tar from replayed member lists = packfs build with an empty cache" "$gen2_sha" \
        "$(pbuild --config "$CFG" --cache "$WORK/cache-empty" p/pack.tar -o - 2>/dev/null | stream_sha)"
check_eq "generation 2: p/pack.tar.zst decompresses to its pack.tar" "$gen2_sha" "$(unpack_sha zst "$MNT/p/pack.tar.zst")"
line=$(log_since "$MAIN_LOG" "$mark" | grep -F "p/pack.tar.zst: encoded" || true)
say "generation 2: $line"
read -r n m k <<<"$(units_of "$line")"
# Which neighbours share the changed item's units depends on the items' hashes
# (random bytes here), so the bound is on bytes: the re-encoded input is a
# small part of pack.tar (the changed item, the profile, their groups).
in_bytes=$(sed -nE 's/.* units \(([0-9]+) bytes in\).*/\1/p' <<<"$line")
tar_bytes=$(fsize "$WORK/p2.tar")
check "generation 2: few units encoded again ($n of $m)" test "$n" -ge 1 -a "$m" -gt "$n"
check "generation 2: they hold under a tenth of pack.tar (${in_bytes:-?} of $tar_bytes bytes)" \
        test -n "$in_bytes" -a "$((${in_bytes:-0} * 10))" -lt "$tar_bytes"
check "generation 2: the others from the cache ($k of $m)" test "$k" -gt 0 -a "$k" = $((m - n))
check_eq "generation 1 (p-1-link) still has its bytes" "${sha[zst]}" "$(sha "$MNT/p-1-link/pack.tar.zst")"
check_eq "generation 1 is not encoded again" 0 "$(log_since "$MAIN_LOG" "$mark" | count "p-1-link/pack.tar.zst: encoded")"

# ---- 9. compression levels ----

section "9. compression levels"

mark=$(log_len "$MAIN_LOG")
lv_ref_sha=$(sha "$MNT/lv/pack.tar")
lv19_sha=$(sha "$MNT/lv/pack.tar.zst")
lv3_sha=$(pbuild --cache "$CACHE" lv/pack.tar.zst -o - 2>/dev/null | stream_sha)
check_ne "zstd-level = 19 gives other bytes than the default level" "$lv3_sha" "$lv19_sha"
check_eq "zstd -19: decompresses to lv/pack.tar" "$lv_ref_sha" "$(unpack_sha zst "$MNT/lv/pack.tar.zst")"
check_eq "default level (packfs build, no config): decompresses to lv/pack.tar" "$lv_ref_sha" \
        "$(pbuild --cache "$CACHE" lv/pack.tar.zst -o - 2>/dev/null | zstd -dc | stream_sha)"
check_eq "levels do not change pack.tar" "$lv_ref_sha" "$(pbuild --cache "$CACHE" lv/pack.tar -o - | stream_sha)"
check_eq "lv/pack.tar.zst was encoded once" 1 "$(log_since "$MAIN_LOG" "$mark" | count "lv/pack.tar.zst: encoded")"
printf '[*]\ngzip-level = 1\n' >"$WORK/gzip1.ini"
gz1=$WORK/p2.tar.gz1
pbuild --config "$WORK/gzip1.ini" --cache "$CACHE" p/pack.tar.gz -o "$gz1" 2>/dev/null || fail "packfs build with gzip-level = 1 failed"
check_ne "gzip-level = 1 in [*] gives other bytes" "$(sha "$MNT/p/pack.tar.gz")" "$(sha "$gz1")"
check_eq "gzip-level = 1: decompresses to pack.tar" "$gen2_sha" "$(unpack_sha gz "$gz1")"
printf '[p]\nxz-level = 10\n' >"$WORK/bad-level.ini"
check_fails "xz-level = 10 is refused" "xz-level" pbuild --config "$WORK/bad-level.ini" --cache "$CACHE" p/pack.tar.xz -o -
check "the main server exits 0 after unmounting" unmount_packfs "$MNT" "$main_pid"

# ---- 10. bad options, damaged cache objects ----

section "10. bad options, damaged cache objects"

BAD=$WORK/mnt-bad
mkdir -p "$BAD"
MOUNTS+=("$BAD")
bad_mount() { # OPTIONS...: a packfs mount that must fail; its status in bad_rc, its stderr in err
        bad_rc=0
        timeout 30 "$PACKFS" mount --store "$STORE" --db "$DB" --profiles "$PROFILES" "$@" "$BAD" \
                2>"$WORK/bad.err" >/dev/null || bad_rc=$?
        err=$(cat "$WORK/bad.err")
}
bad_mount --cache "$WORK/cache-bad" --cache-size banana
check "--cache-size banana: mount fails" test "$bad_rc" -ne 0
check_eq "--cache-size banana: a one-line error" 1 "$(wc -l <"$WORK/bad.err")"
check_contains "--cache-size banana: the error names it" banana "$err"
check "--cache-size banana: nothing mounted" not_mounted "$BAD"
bad_mount --cache /proc/foo
check "--cache /proc/foo: mount fails" test "$bad_rc" -ne 0
check "--cache /proc/foo: a one-line error" test "$(wc -l <"$WORK/bad.err")" = 1
check_contains "--cache /proc/foo: the error names it" /proc/foo "$err"
check "--cache /proc/foo: nothing mounted" not_mounted "$BAD"
check_fails "packfs build --cache-size banana fails" banana \
        pbuild --cache "$WORK/cache-bad" --cache-size banana p/pack.tar.gz -o -

# The cold cache holds p's (generation 1) pack.tar.zst and pack.tar.gz.
damage_check() { # WHAT: remount the cold cache and check both packs
        local mark x
        mark=$(log_len "$COLD_LOG")
        mount_packfs "$COLD" --config "$CFG" --cache "$COLD_CACHE"
        for x in gz zst; do
                check_eq "$1: p-1-link/pack.tar.$x: the same size" "${st_size[$x]}" "$(T stat -c %s "$COLD/p-1-link/pack.tar.$x")"
                check_eq "$1: p-1-link/pack.tar.$x: the same bytes" "${sha[$x]}" "$(sha "$COLD/p-1-link/pack.tar.$x")"
                check_eq "$1: p-1-link/pack.tar.$x: decompresses to pack.tar" "$gen1_sha" \
                        "$(unpack_sha "$x" "$COLD/p-1-link/pack.tar.$x")"
        done
        log=$(log_since "$COLD_LOG" "$mark")
        check_contains "$1: the log names the damaged object" "cache: $victim is missing or damaged" "$log"
        check_eq "$1: one unit encoded again" 1 "$(count ": encoded 1 of " <<<"$log")"
        check "the cold server exits 0 after unmounting" unmount_packfs "$COLD" "$MOUNT_PID"
}
COLD_LOG=$WORK/mnt-cold.log
victim=$(find "$COLD_CACHE/objects" -type f -printf '%s %p\n' | sort -n | tail -n1 | cut -d' ' -f2)
rm "$victim"
damage_check "an object deleted while unmounted"
truncate -s $(($(fsize "$victim") / 2)) "$victim"
damage_check "an object truncated while unmounted"

# A cache index SQLite cannot read: moved aside, the cache starts empty, the
# packs are encoded again with the same bytes.
mark=$(log_len "$COLD_LOG")
dd if=/dev/urandom of="$COLD_CACHE/index.sqlite" bs=1 seek=16 count=4000 conv=notrunc status=none
rm -f "$COLD_CACHE/index.sqlite-wal" "$COLD_CACHE/index.sqlite-shm"
mount_packfs "$COLD" --config "$CFG" --cache "$COLD_CACHE"
for x in gz zst; do
        check_eq "damaged index: p-1-link/pack.tar.$x: the same bytes" "${sha[$x]}" "$(sha "$COLD/p-1-link/pack.tar.$x")"
done
log=$(log_since "$COLD_LOG" "$mark")
check_contains "damaged index: the log says it was moved aside" "the index was damaged; moved to $COLD_CACHE/index.sqlite.damaged" "$log"
check "damaged index: it is kept for a look" test -s "$COLD_CACHE/index.sqlite.damaged"
for x in gz zst; do
        check_eq "damaged index: p-1-link/pack.tar.$x encoded again" 1 "$(count "p-1-link/pack.tar.$x: encoded" <<<"$log")"
done
check "the cold server exits 0 after unmounting" unmount_packfs "$COLD" "$MOUNT_PID"

finish
