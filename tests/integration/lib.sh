# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
#
# Common helpers for the packfs integration tests (sourced, not run).
#
#   PACKFS          the packfs binary (meson passes it; else $1, else build/fs/packfs)
#   WORK            a fresh temporary directory under /tmp, removed on exit
#   STORE DB PROFILES   the test store made by make_store
#
# Every mount made with mount_packfs/mount_packfs_daemon is unmounted and its
# server killed on exit, whatever happens. Checks are counted: `check*` record a
# failure and go on, `die` stops at once; `finish` ends the test (exit 1 if any
# check failed). Exit 77 (meson's "skipped") when /dev/fuse or a tool is missing.

set -euo pipefail
export LC_ALL=C TZ=UTC

TEST_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
FAILURES=0
CHECKS=0

say() { printf '%s: %s\n' "$TEST_NAME" "$*"; }
skip() {
        printf 'SKIP: %s: %s\n' "$TEST_NAME" "$*"
        exit 77
}
die() {
        printf 'FAIL: %s: %s\n' "$TEST_NAME" "$*" >&2
        exit 1
}
fail() {
        printf 'FAIL: %s\n' "$*" >&2
        FAILURES=$((FAILURES + 1))
}
ok() {
        CHECKS=$((CHECKS + 1))
        printf 'ok: %s\n' "$*"
}
# check DESCRIPTION COMMAND...: the command must succeed.
check() {
        local what=$1
        shift
        CHECKS=$((CHECKS + 1))
        if "$@"; then
                printf 'ok: %s\n' "$what"
        else
                fail "$what (command failed: $*)"
        fi
}
# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
        CHECKS=$((CHECKS + 1))
        if [[ $2 == "$3" ]]; then
                printf 'ok: %s\n' "$1"
        else
                fail "$1"
                diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | head -40 | sed 's/^/    /' >&2 || true
        fi
}
# check_ne DESCRIPTION UNEXPECTED ACTUAL
check_ne() {
        CHECKS=$((CHECKS + 1))
        if [[ $2 != "$3" ]]; then
                printf 'ok: %s\n' "$1"
        else
                fail "$1: got '$3' and should not have"
        fi
}
# check_contains DESCRIPTION NEEDLE HAYSTACK
check_contains() {
        CHECKS=$((CHECKS + 1))
        if [[ $3 == *"$2"* ]]; then
                printf 'ok: %s\n' "$1"
        else
                fail "$1: '$2' not found in:"
                printf '%s\n' "$3" | head -20 | sed 's/^/    /' >&2
        fi
}
# check_fails DESCRIPTION ERRNO_TEXT COMMAND...: the command must fail, and its
# stderr mention ERRNO_TEXT (a "|"-separated list of alternatives; empty: any).
check_fails() {
        local what=$1 want=$2 err rc=0
        shift 2
        CHECKS=$((CHECKS + 1))
        err=$("$@" 2>&1 >/dev/null) || rc=$?
        if ((rc == 0)); then
                fail "$what: succeeded and should have failed ($*)"
                return 0
        fi
        if [[ -n $want ]]; then
                local alt IFS='|'
                for alt in $want; do
                        if [[ $err == *"$alt"* ]]; then
                                printf 'ok: %s (%s)\n' "$what" "$alt"
                                return 0
                        fi
                done
                fail "$what: failed, but not with '$want': $err"
                return 0
        fi
        printf 'ok: %s\n' "$what"
}
finish() {
        if ((FAILURES > 0)); then
                printf '%s: %d of %d checks failed\n' "$TEST_NAME" "$FAILURES" "$CHECKS" >&2
                exit 1
        fi
        printf '%s: all %d checks passed\n' "$TEST_NAME" "$CHECKS"
        exit 0
}

need_tools() {
        local t
        for t in "$@"; do
                command -v "$t" >/dev/null || skip "'$t' is not installed"
        done
}
need_fuse() {
        [[ -c /dev/fuse ]] || skip "no /dev/fuse"
        [[ -r /dev/fuse && -w /dev/fuse ]] || skip "/dev/fuse is not usable by $(id -un)"
        need_tools fusermount3
}

# ---- the binary and the work directory ----

find_packfs() {
        local here
        here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
        PACKFS=${PACKFS:-${1:-}}
        if [[ -z $PACKFS ]]; then
                for c in "$here/../../build/fs/packfs" "$here/../../build-ci/fs/packfs"; do
                        [[ -x $c ]] && PACKFS=$c && break
                done
        fi
        [[ -n $PACKFS && -x $PACKFS ]] || die "packfs binary not found: set PACKFS or pass it as \$1"
        PACKFS=$(realpath "$PACKFS")
}

WORK=
MOUNTS=()       # mountpoints to unmount on exit
PIDS=()         # server processes to stop on exit
LOGS=()         # server logs to show on failure
EXIT_HOOKS=()   # commands run on exit, after unmounting

at_exit() { EXIT_HOOKS+=("$1"); }

cleanup() {
        local rc=$? m p i h
        set +e
        for m in "${MOUNTS[@]}"; do
                is_mounted "$m" && unmount_quiet "$m"
        done
        for p in "${PIDS[@]}"; do
                for ((i = 0; i < 50; i++)); do
                        kill -0 "$p" 2>/dev/null || break
                        sleep 0.1
                done
                if kill -0 "$p" 2>/dev/null; then
                        kill -TERM "$p" 2>/dev/null
                        sleep 0.5
                        kill -KILL "$p" 2>/dev/null
                fi
        done
        for m in "${MOUNTS[@]}"; do
                # A server killed while mounted leaves a dead mount: drop it lazily.
                is_mounted "$m" && umount -l "$m" 2>/dev/null
        done
        for h in "${EXIT_HOOKS[@]}"; do
                eval "$h"
        done
        if ((rc != 0 && rc != 77)); then
                dump_logs >&2
        fi
        if [[ -n $WORK && -d $WORK && -z ${KEEP_WORK:-} ]]; then
                chmod -R u+w "$WORK" 2>/dev/null
                rm -rf "$WORK"
        elif [[ -n $WORK ]]; then
                echo "work directory kept: $WORK"
        fi
        exit "$rc"
}

setup_work() {
        WORK=$(mktemp -d "/tmp/packfs-$TEST_NAME.XXXXXX")
        trap cleanup EXIT
        trap 'exit 130' INT TERM
        # A command that stops the test (set -e) says where.
        # shellcheck disable=SC2154 # err_rc is set by the trap itself
        trap 'err_rc=$?; printf "FAIL: %s: line %s: %s (exit %s)\n" "$TEST_NAME" "$LINENO" "$BASH_COMMAND" "$err_rc" >&2' ERR
}

dump_logs() {
        local l
        for l in "${LOGS[@]}"; do
                [[ -s $l ]] || continue
                echo "---- $l (last 30 lines) ----"
                tail -n 30 "$l"
        done
}

# ---- a store of our own ----

pf_store() { "$PACKFS" store "$1" --store "$STORE" --db "$DB" --profiles "$PROFILES" "${@:2}"; }

make_store() {
        STORE=$WORK/store
        DB=$WORK/var/db/db.sqlite
        PROFILES=$WORK/profiles
        mkdir -p "$PROFILES"
        pf_store init || die "packfs store init failed"
}

# add_item DIR: adds DIR to the store and prints its store path.
add_item() {
        local p
        p=$(pf_store add "$1") || die "packfs store add $1 failed"
        [[ -n $p && -e $p ]] || die "packfs store add $1 printed '$p'"
        printf '%s\n' "$p"
}

# make_profile NAME ITEM...: a new generation of profile NAME.
make_profile() {
        pf_store profile "$@" >/dev/null || die "packfs store profile $* failed"
}

# profile_item NAME: the store item the profile link resolves to.
profile_item() { readlink -f "$PROFILES/$1"; }

# ---- mounting ----

is_mounted() {
        local m
        m=$(realpath -m "$1")
        awk -v m="$m" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}
is_packfs_mounted() {
        local m
        m=$(realpath -m "$1")
        awk -v m="$m" '$5 == m && / - fuse\.packfs / { found = 1 } END { exit !found }' /proc/self/mountinfo
}
not_mounted() { ! is_mounted "$1"; }
not_running() { ! kill -0 "$1" 2>/dev/null; }
unmount_quiet() {
        fusermount3 -u "$1" 2>/dev/null || umount "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
}

# wait_mounted MNT PID: waits for MNT to be served (the server PID must live).
wait_mounted() {
        local i
        for ((i = 0; i < 200; i++)); do
                is_packfs_mounted "$1" && return 0
                if [[ -n ${2:-} ]] && ! kill -0 "$2" 2>/dev/null; then
                        return 1
                fi
                sleep 0.05
        done
        return 1
}

# cache_option OPTIONS...: sets CACHE_OPTION to `--cache $WORK/cache` unless
# OPTIONS already name a cache (tests never use the default /var/cache/packfs).
cache_option() {
        local a
        CACHE_OPTION=(--cache "$WORK/cache")
        for a in "$@"; do
                if [[ $a == --cache || $a == --cache=* ]]; then
                        CACHE_OPTION=()
                fi
        done
}

# mount_packfs MNT [OPTIONS...]: runs `packfs mount -f` in the background with the
# test store (and cache, see cache_option), logging to $WORK/<mnt>.log (MOUNT_LOG)
# and setting MOUNT_PID.
mount_packfs() {
        local mnt=$1
        shift
        mkdir -p "$mnt"
        MOUNT_LOG=$WORK/$(basename "$mnt").log
        [[ " ${LOGS[*]} " == *" $MOUNT_LOG "* ]] || LOGS+=("$MOUNT_LOG")
        MOUNTS+=("$mnt")
        cache_option "$@"
        "$PACKFS" mount -f --store "$STORE" --db "$DB" --profiles "$PROFILES" "${CACHE_OPTION[@]}" "$@" "$mnt" \
                2>>"$MOUNT_LOG" &
        MOUNT_PID=$!
        PIDS+=("$MOUNT_PID")
        wait_mounted "$mnt" "$MOUNT_PID" || die "packfs mount $mnt did not come up; log: $(cat "$MOUNT_LOG")"
}

# mount_packfs_daemon MNT [OPTIONS...]: as `packfs mount` is used (daemonizes), with
# the test cache as mount_packfs; sets MOUNT_PID to the daemon found by its (unique)
# mountpoint argument.
mount_packfs_daemon() {
        local mnt=$1 rc=0 p m
        shift
        mkdir -p "$mnt"
        mnt=$(realpath "$mnt")
        MOUNTS+=("$mnt")
        cache_option "$@"
        timeout 30 "$PACKFS" mount --store "$STORE" --db "$DB" --profiles "$PROFILES" "${CACHE_OPTION[@]}" "$@" \
                "$mnt" || rc=$?
        ((rc == 0)) || die "packfs mount (daemon) $mnt exited $rc"
        is_packfs_mounted "$mnt" || die "packfs mount (daemon) exited 0 but $mnt is not mounted"
        MOUNT_PID=
        for p in /proc/[0-9]*; do
                [[ -r $p/cmdline ]] || continue
                m=$(tr '\0' '\n' <"$p/cmdline" 2>/dev/null | tail -n1) || continue
                if [[ $m == "$mnt" ]] && tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qx mount; then
                        MOUNT_PID=${p#/proc/}
                        PIDS+=("$MOUNT_PID")
                        break
                fi
        done
        [[ -n $MOUNT_PID ]] || die "packfs daemon for $mnt not found"
}

# unmount MNT PID: unmounts and waits for the server to exit; returns its status
# (for background -f servers) or 0.
unmount_packfs() {
        local mnt=$1 pid=${2:-} i rc=0
        # A process that just closed a file of the mount may not be gone yet.
        for ((i = 0; i < 30; i++)); do
                fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null && break
                sleep 0.1
        done
        ((i < 30)) || die "cannot unmount $mnt: $(fusermount3 -u "$mnt" 2>&1)"
        if [[ -n $pid ]]; then
                for ((i = 0; i < 100; i++)); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.1
                done
                kill -0 "$pid" 2>/dev/null && die "packfs server $pid still running 10 s after unmounting $mnt"
                wait "$pid" 2>/dev/null || rc=$?
        fi
        return "$rc"
}

# ---- reading ----

# abort_mounts WHY: fails every request pending on our mounts (a hung server
# would otherwise leave readers in uninterruptible sleep, out of timeout's reach):
# through fusectl when it is mounted, else by killing the servers.
abort_mounts() {
        local m dev p aborted=0
        echo "$TEST_NAME: $1: aborting the FUSE connections" >&2
        for m in "${MOUNTS[@]}"; do
                dev=$(awk -v m="$(realpath -m "$m")" '$5 == m { print $3 }' /proc/self/mountinfo | tail -n1)
                if [[ -n $dev && -w /sys/fs/fuse/connections/${dev#*:}/abort ]]; then
                        echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort" && aborted=1
                fi
        done
        if ((!aborted)); then
                for p in "${PIDS[@]}"; do
                        kill -KILL "$p" 2>/dev/null
                done
        fi
}

# Runs a command with a time limit (T_LIMIT seconds, 60 by default), so a hung
# server fails the test instead of hanging it.
T() {
        local rc=0 watchdog limit=${T_LIMIT:-60}
        (
                # The trap first, and the sleep on /dev/null: a sleep orphaned by a
                # TERM that came early must not hold the pipe of a $(T ...) open.
                trap 'kill ${s:-} 2>/dev/null; exit 0' TERM
                # Nor files of the mount the test opened on 3-9 (`exec 5<PACK`):
                # a watchdog still exiting would make the next unmount EBUSY.
                for fd in 3 4 5 6 7 8 9; do
                        eval "exec $fd>&-"
                done 2>/dev/null
                sleep "$limit" >/dev/null 2>&1 &
                s=$!
                wait "$s"
                abort_mounts "'$*' still running after $limit s"
        ) &
        watchdog=$!
        timeout -k 5 "$limit" "$@" || rc=$?
        kill "$watchdog" 2>/dev/null
        wait "$watchdog" 2>/dev/null || true
        return "$rc"
}
sha() { T sha256sum "$1" | cut -d' ' -f1; }
fsize() { stat -c %s "$1"; }
# The bytes a reader gets (not `wc -c <FILE`, which trusts st_size).
bytes_read() { T cat "$1" | wc -c; }

find_packfs "${1:-}"
