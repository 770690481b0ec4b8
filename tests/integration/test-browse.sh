#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# A mount people can browse (SPEC guarantee 2): listings never start an
# encoding (--list ready) or list everything (--list all); files are reached by
# name; a wait for an encoding ends at once on a signal while the encoding goes
# on into the cache; `packfs warm` fills the cache ahead; `prepare` encodes new
# generations in the background; build and warm leave nothing partial when
# interrupted.
source "$(dirname "$0")/lib.sh"
need_fuse
need_tools xz zstd gzip cmp find base64 timeout sqlite3
setup_work
make_store

# One item big enough that xz -6 takes seconds (one unit, one core), one small.
mkdir -p "$WORK/src/big/share" "$WORK/src/small/bin" "$WORK/src/extra/share"
head -c 9000000 /dev/urandom | base64 >"$WORK/src/big/share/data"
printf '#!/bin/sh\necho small\n' >"$WORK/src/small/bin/small"
chmod +x "$WORK/src/small/bin/small"
echo extra >"$WORK/src/extra/share/extra"
BIG=$(add_item "$WORK/src/big")
SMALL=$(add_item "$WORK/src/small")
EXTRA=$(add_item "$WORK/src/extra")
make_profile demo "$BIG" "$SMALL"
make_profile other "$SMALL"
make_profile prep "$BIG" "$SMALL"

planned=$'closure\ndocker.tar\noci\npack.deb\npack.rpm\npack.tar'
# What `packfs warm VIEW` makes ready (disk images only when named), and what
# --list all lists.
warmed=$'closure\ndocker.tar\ndocker.tar.gz\ndocker.tar.xz\ndocker.tar.zst\noci\npack.deb\npack.rpm\npack.squashfs\npack.tar\npack.tar.gz\npack.tar.xz\npack.tar.zst'
all=$(printf '%s\n' $warmed disk.iso disk.qcow2 disk.raw | sort)
objects() { find "$1/objects" -type f 2>/dev/null | wc -l; }
encoded_lines() { grep -c "$1: encoded" "$2" || true; }

# ---- cold listings: nothing encoded, nothing listed that would encode ----
M=$WORK/mnt
mount_packfs "$M"
check_eq "cold ls lists the planned files only" "$planned" "$(T ls "$M/demo")"
colour=$(T ls --color=always "$M/demo")
check_eq "cold ls --color lists the planned files only" "$planned" "$(printf '%s\n' "$colour" | sed 's/\x1b\[[0-9;]*m//g' | grep -v '^$')"
check_eq "cold ls -l lists the planned files only" "5" "$(T ls -l "$M/demo" | grep -c '^-')"
found=$(T find "$M" -printf '%s %P\n')
check_eq "cold find lists no compressed pack" "" "$(printf '%s\n' "$found" | grep -E '\.(gz|xz|zst)$' || true)"
check_eq "cold listings leave the cache without objects" "0" "$(objects "$WORK/cache")"
check_eq "cold listings encode nothing (log)" "0" "$(grep -c ': encoded' "$MOUNT_LOG" || true)"
# Every size listed is the number of bytes read.
while read -r size path; do
        [[ -f $M/$path ]] || continue
        [[ $path == .store/* && $path != */pack.tar ]] && continue
        check_eq "find size of $path = bytes read" "$size" "$(bytes_read "$M/$path")"
done <<<"$found"
check_eq ".store views list the planned files only" "$planned" "$(T ls "$M/.store/$(basename "$SMALL")")"

# ---- a wait is interrupted at once; the encoding goes on, once ----
start=$(date +%s%N)
rc=0
timeout -s INT 2 cat "$M/demo/pack.tar.xz" >/dev/null || rc=$?
elapsed=$((($(date +%s%N) - start) / 1000000))
check_eq "cat of a cold .xz killed by SIGINT exits by the signal" "124" "$rc"
check "SIGINT ends the wait within a second of the signal ($elapsed ms)" test "$elapsed" -lt 3000
check_eq "ls during the encoding still lists the planned files only" "$planned" "$(T ls "$M/demo")"
check_contains "status shows the encoding under way" "encoding demo/pack.tar.xz" \
        "$("$PACKFS" status --cache "$WORK/cache" "$M")"
check "a later reader gets the whole .xz" bash -c "xz -dc <'$M/demo/pack.tar.xz' | cmp - '$M/demo/pack.tar'"
check_eq "the interrupted and the later reader shared one encoding" "1" "$(encoded_lines demo/pack.tar.xz "$MOUNT_LOG")"
check_eq "once encoded, ls lists the .xz" $'closure\ndocker.tar\noci\npack.deb\npack.rpm\npack.tar\npack.tar.xz' "$(T ls "$M/demo")"
check_eq ".xz size listed = bytes read" "$(fsize "$M/demo/pack.tar.xz")" "$(bytes_read "$M/demo/pack.tar.xz")"
for z in "gzip -dc:gz" "zstd -dcq:zst"; do
        check "by name, ${z##*:} of a cold view decompresses to pack.tar" \
                bash -c "${z%%:*} <'$M/demo/pack.tar.${z##*:}' | cmp - '$M/demo/pack.tar'"
done
check_eq "every file listed once encoded" $'closure\ndocker.tar\noci\npack.deb\npack.rpm\npack.tar\npack.tar.gz\npack.tar.xz\npack.tar.zst' \
        "$(T ls "$M/demo")"
unmount_packfs "$M" "$MOUNT_PID"

# ---- --list all: every name, and a stat encodes as before ----
M2=$WORK/mnt-all
mount_packfs "$M2" --list all --cache "$WORK/cache-all"
check_eq "--list all lists every file on a cold view" "$all" "$(T ls "$M2/other")"
check_eq "--list all: the listing itself encoded nothing" "0" "$(grep -c ': encoded' "$MOUNT_LOG" || true)"
# A stat of a disk image builds it: this profile has no kernel, so those fail
# (EIO, and the log says why); nothing else does.
T ls -l "$M2/other" >/dev/null 2>"$WORK/ls-all.err" || true
check_eq "--list all: ls -l fails only on the disk images of a profile without a kernel" \
        "disk.iso disk.qcow2 disk.raw" "$(grep -o "disk\.[a-z0-9]*" "$WORK/ls-all.err" | sort -u | paste -sd' ')"
check_eq "...and on nothing else" "" "$(grep -v 'disk\.' "$WORK/ls-all.err" || true)"
check_contains "...with the reason in the log" "other/disk.raw: no kernel" "$(cat "$MOUNT_LOG")"
check_eq "--list all: ls -l encodes (stat by name)" "3" "$(grep -c 'other/pack.tar.*: encoded' "$MOUNT_LOG" || true)"
for f in pack.tar.gz pack.tar.xz pack.tar.zst; do
        check_eq "--list all: $f size = bytes read" "$(fsize "$M2/other/$f")" "$(bytes_read "$M2/other/$f")"
done
unmount_packfs "$M2" "$MOUNT_PID"
check_fails "--list something else is refused" "--list" "$PACKFS" mount --store "$STORE" --db "$DB" \
        --profiles "$PROFILES" --list some "$WORK"

# ---- packfs warm, then a fresh mount does not encode ----
W=(--store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$WORK/cache-warm")
check "packfs warm other" "$PACKFS" warm "${W[@]}" other
check "packfs warm demo/pack.tar.zst" "$PACKFS" warm "${W[@]}" demo/pack.tar.zst
check_eq "warm prints nothing off a terminal" "" "$("$PACKFS" warm "${W[@]}" other 2>&1)"
check_fails "warm of no such view" "nosuch" "$PACKFS" warm "${W[@]}" nosuch
# Without the items' member lists (records of 40, 44 and 64 bytes are pack.tar
# lengths, who may read and docker layer digests), a warmed file's stat must
# find all it needs recorded: its size, and who may read it.
sqlite3 "$WORK/cache-warm/index.sqlite" 'DELETE FROM records WHERE size NOT IN (40, 44, 64)'
M3=$WORK/mnt-warm
mount_packfs "$M3" --cache "$WORK/cache-warm"
check_eq "warmed files are listed at once (disk images were not asked for)" "$warmed" "$(T ls "$M3/other")"
for f in pack.tar.gz pack.tar.xz pack.tar.zst; do
        T stat "$M3/other/$f" >/dev/null
done
T stat "$M3/demo/pack.tar.zst" >/dev/null
check_eq "the first stat of every warmed file encodes nothing" "0" "$(grep -c ': encoded' "$MOUNT_LOG" || true)"
# (prep was not warmed: the mount's survey walks its items.)
check_eq "the first stat of every warmed file walks no store item" "" \
        "$(grep walked "$MOUNT_LOG" | grep -v -e "prep/" -e "$(readlink -f "$PROFILES/prep")" || true)"
check "warmed .zst = what a mount encodes" cmp "$M3/demo/pack.tar.zst" <("$PACKFS" build \
        --store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$WORK/cache-fresh" demo/pack.tar.zst -o -)
unmount_packfs "$M3" "$MOUNT_PID"

# ---- the survey: a fresh mount records what a listing needs, ahead ----
S=$WORK/cache-survey
M5=$WORK/mnt-survey
mount_packfs "$M5" --cache "$S"
# demo and other have items of their own (their profile items); prep's closure
# is demo's (the same items give the same profile item), already recorded.
for ((i = 0; i < 100; i++)); do
        (($(grep -c '/pack.tar: walked' "$MOUNT_LOG" || true) >= 2)) && break
        sleep 0.1
done
check_eq "the survey walked each closure once, unasked" "demo other" \
        "$(grep -o '^packfs: [a-z]*/pack.tar: walked' "$MOUNT_LOG" | cut -d' ' -f2 | cut -d/ -f1 | sort | paste -sd' ')"
check_eq "the survey encoded nothing" "0 0" "$(grep -c ': encoded' "$MOUNT_LOG") $(objects "$S")"
mark=$(wc -l <"$MOUNT_LOG")
# Mode, size and name of each listed file.
sizes() { T ls -l "$1" | awk 'NR > 1 { print $1, $5, $NF }'; }
declare -A surveyed
for v in demo other prep; do
        surveyed[$v]=$(sizes "$M5/$v")
done
check_eq "ls -l after the survey walks nothing more" "" "$(tail -n +$((mark + 1)) "$MOUNT_LOG" | grep walked || true)"
unmount_packfs "$M5" "$MOUNT_PID"
# Sizes and who may read come from their own records, not member lists.
sqlite3 "$S/index.sqlite" 'DELETE FROM records WHERE size NOT IN (40, 44, 64)'
mark=$(wc -l <"$MOUNT_LOG")
mount_packfs "$M5" --cache "$S"
for v in demo other prep; do
        check_eq "$v: ls -l from the records alone, as before" "${surveyed[$v]}" "$(sizes "$M5/$v")"
done
check_eq "and walks nothing" "" "$(tail -n +$((mark + 1)) "$MOUNT_LOG" | grep walked || true)"
check_eq "demo/pack.tar: size from the records = bytes read" "$(fsize "$M5/demo/pack.tar")" \
        "$(bytes_read "$M5/demo/pack.tar")"
unmount_packfs "$M5" "$MOUNT_PID"

# ---- build and warm, interrupted, leave nothing partial ----
B=(--store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$WORK/cache-int")
for cmd in "build demo/pack.tar.xz -o $WORK/out.xz" "warm demo/pack.tar.xz"; do
        for sig in INT TERM; do
                rc=0
                start=$(date +%s%N)
                # shellcheck disable=SC2086 # cmd is split on purpose
                timeout -s "$sig" 1 "$PACKFS" ${cmd%% *} "${B[@]}" ${cmd#* } 2>"$WORK/int.log" || rc=$?
                elapsed=$((($(date +%s%N) - start) / 1000000))
                check_eq "${cmd%% *} stops on SIG$sig" "124" "$rc"
                check "${cmd%% *} stopped within a second of SIG$sig ($elapsed ms)" test "$elapsed" -lt 2500
                check_contains "${cmd%% *} says it was interrupted" "interrupted" "$(cat "$WORK/int.log")"
                check_eq "${cmd%% *} on SIG$sig leaves no partial object" "" "$(ls -A "$WORK/cache-int/tmp")"
        done
done
check_contains "no encoding is left in the status" "no encodings under way" \
        "$("$PACKFS" status --cache "$WORK/cache-int")"
check "after interruptions, the pack is whole" bash -c "'$PACKFS' build ${B[*]} demo/pack.tar.xz -o - | xz -dc | cmp - <('$PACKFS' build ${B[*]} demo/pack.tar -o -)"

# ---- prepare: new generations are encoded in the background ----
cat >"$WORK/prepare.ini" <<'INI'
[prep]
prepare = pack.tar.xz pack.tar.zst
INI
printf '[prep]\nprepare = pack.tar.bz2\n' >"$WORK/bad.ini"
check_fails "prepare of a file views do not have is refused at mount" "pack.tar.bz2" \
        "$PACKFS" mount --store "$STORE" --db "$DB" --profiles "$PROFILES" --config "$WORK/bad.ini" "$WORK"
M4=$WORK/mnt-prep
mount_packfs "$M4" --config "$WORK/prepare.ini" --cache "$WORK/cache-prep"
wait_log() { # PATTERN COUNT: waits up to 90 s for COUNT lines of PATTERN in the log
        local i
        for ((i = 0; i < 900; i++)); do
                (($(grep -c "$1" "$MOUNT_LOG" || true) >= $2)) && return 0
                sleep 0.1
        done
        return 1
}
for ((i = 0; i < 100; i++)); do # the row appears once its base is planned
        st=$("$PACKFS" status --cache "$WORK/cache-prep" "$M4")
        [[ $st == *"encoding prep/pack.tar.xz"* ]] && break
        sleep 0.1
done
check_contains "status shows the prepared file under way" "encoding prep/pack.tar.xz" "$st"
check_contains "status shows the next one queued" "queued   prep/pack.tar.zst" "$st"
check "prepare finishes the first generation" wait_log "prepare: prep/pack.tar.zst is ready" 1
check_eq "a prepared file is listed" $'closure\ndocker.tar\noci\npack.deb\npack.rpm\npack.tar\npack.tar.xz\npack.tar.zst' "$(T ls "$M4/prep")"
check_eq "only the profile with the option was prepared" "" "$(grep 'prepare: ' "$MOUNT_LOG" | grep -v 'prep/' || true)"
n=$(grep -c ': encoded' "$MOUNT_LOG" || true)
T stat "$M4/prep/pack.tar.zst" "$M4/prep/pack.tar.xz" >/dev/null
check_eq "a prepared file's stat encodes nothing" "$n" "$(grep -c ': encoded' "$MOUNT_LOG" || true)"
make_profile prep "$BIG" "$SMALL" "$EXTRA"
check "a new generation is prepared in the background" wait_log "prepare: prep/pack.tar.zst is ready" 2
# The kernel keeps the names it looked up for the entry timeout (1 s): only
# then do all of them lead to the new generation.
sleep 1.2
check_eq "the new generation's files are listed" $'closure\ndocker.tar\noci\npack.deb\npack.rpm\npack.tar\npack.tar.xz\npack.tar.zst' "$(T ls "$M4/prep")"
check_eq "generation links are not prepared" "" "$(grep 'prepare: prep-[0-9]*-link' "$MOUNT_LOG" || true)"
gen2=$(grep 'prep/pack.tar.xz: encoded' "$MOUNT_LOG" | tail -n1)
read -r k n < <(sed -n 's/.*encoded \([0-9]*\) of \([0-9]*\) units.*/\1 \2/p' <<<"$gen2")
check "the new generation re-encoded what changed only ($k of $n units)" test "${k:-0}" -gt 0 -a "${k:-0}" -lt "${n:-0}"
n=$(grep -c ': encoded' "$MOUNT_LOG" || true)
check "the new generation's .xz reads whole" bash -c "xz -dc <'$M4/prep/pack.tar.xz' | cmp - '$M4/prep/pack.tar'"
check_eq "and its stat encoded nothing" "$n" "$(grep -c ': encoded' "$MOUNT_LOG" || true)"
unmount_packfs "$M4" "$MOUNT_PID"

finish
