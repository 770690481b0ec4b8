#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# packfs against a hostile or broken store: database rows that are not store
# paths, profile links that lead out of the profiles root or the store, store
# files that change under a plan, and databases that are corrupt, locked, of an
# unknown schema or missing. Each gives an error (and a log line), never other
# bytes, and the mount goes on serving everything else.
#
# Usage: PACKFS=build/fs/packfs test-hostile.sh   (or: test-hostile.sh PACKFS)

source "$(dirname "$0")/lib.sh"

need_fuse
need_tools sqlite3 python3 tar dd timeout
setup_work
make_store

eio="Input/output error"
enoent="No such file or directory"

# ---- the store ----

src=$WORK/src
mkitem() { # NAME [FILE CONTENT]...: makes and adds an item with some files
        local name=$1 d=$src/$1
        shift
        mkdir -p "$d/bin"
        printf '#!/bin/sh\necho %s\n' "$name" >"$d/bin/$name"
        chmod 0755 "$d/bin/$name"
        while (($# >= 2)); do
                printf '%s' "$2" >"$d/$1"
                shift 2
        done
        add_item "$d"
}
GOOD=$(mkitem good)
OTHER=$(mkitem other)
E1=$(mkitem evil-dotdot)
E2=$(mkitem evil-notstore)
big=$(head -c 200000 /dev/urandom | base64 -w0)
CH1=$(mkitem grows data "$big")
CH2=$(mkitem rewritten data "$big")
CH3=$(mkitem vanishes data "$big")
make_profile good "$GOOD"
make_profile other "$OTHER"
make_profile evil-dotdot "$E1"
make_profile evil-notstore "$E2"
make_profile grows "$CH1"
make_profile rewritten "$CH2"
make_profile vanishes "$CH3"

# Database rows that are not store paths, referenced from the evil profiles.
hostile_ref() { # PROFILE PATH
        sqlite3 "$DB" "
                INSERT INTO ValidPaths (path, hash, registrationTime, narSize)
                        VALUES ('$2', 'sha256:0000000000000000000000000000000000000000000000000000000000000000', 1, 0);
                INSERT INTO Refs (referrer, reference)
                        SELECT a.id, b.id FROM ValidPaths a, ValidPaths b
                        WHERE a.path = '$(profile_item "$1")' AND b.path = '$2';" ||
                die "cannot insert the hostile row $2"
}
hostile_ref evil-dotdot "$STORE/../../etc"
hostile_ref evil-notstore /etc
# A valid-looking row whose item is not on disk.
ghost=$STORE/00000000000000000000000000000000-ghost
hostile_ref other "$ghost"
# ... so "other" is poisoned too: a clean profile of its own for the checks below.
make_profile other2 "$OTHER" "$GOOD"

# Profile links that must not be served.
outside=$WORK/outside
mkdir -p "$outside"
ln -s "$(profile_item good)" "$outside/valid-item"
ln -s /etc "$PROFILES/etc-link"
ln -s /etc/passwd "$PROFILES/passwd-link"
ln -s ../../../../../../../../etc "$PROFILES/escape-rel"
ln -s ../outside/valid-item "$PROFILES/escape-to-valid"    # escapes, then would resolve to a valid item
ln -s "$PROFILES/../outside/valid-item" "$PROFILES/abs-dotdot"
ln -s "$STORE/11111111111111111111111111111111-fake" "$PROFILES/not-valid"
ln -s "$GOOD/bin" "$PROFILES/inside-item"
ln -s loop-b "$PROFILES/loop-a"
ln -s loop-a "$PROFILES/loop-b"
mkdir -p "$PROFILES/per-user/mallory"
ln -s ../../../outside/valid-item "$PROFILES/per-user/mallory/escape"
ln -s ../../good "$PROFILES/per-user/mallory/fine"    # inside the root: served
echo secret >"$PROFILES/secret.txt"
mkfifo "$PROFILES/fifo"
refused=(etc-link passwd-link escape-rel escape-to-valid abs-dotdot not-valid inside-item loop-a loop-b
        secret.txt fifo per-user/mallory/escape)

MNT=$WORK/mnt
mount_packfs "$MNT"
log=$MOUNT_LOG
server=$MOUNT_PID

# ---- hostile database rows ----

check_eq "good: closure" "$(pf_store closure "$(profile_item good)")" "$(T cat "$MNT/good/closure")"
for p in evil-dotdot evil-notstore; do
        check_fails "$p/closure is refused" "$eio|$enoent" T cat "$MNT/$p/closure"
        check_fails "$p/pack.tar is refused" "$eio|$enoent" T cat "$MNT/$p/pack.tar"
        check_fails "packfs build $p/pack.tar fails" "" \
                T "$PACKFS" build --cache "$WORK/cache" --store "$STORE" --db "$DB" --profiles "$PROFILES" "$p/pack.tar" -o "$WORK/out.tar"
        check_eq "packfs build $p/pack.tar -o - writes nothing" 0 \
                "$(T "$PACKFS" build --cache "$WORK/cache" --store "$STORE" --db "$DB" --profiles "$PROFILES" "$p/pack.tar" -o - 2>/dev/null |
                        wc -c)"
done
check_contains "log: the ../ row is refused" "refusing row $STORE/../../etc" "$(cat "$log")"
check_contains "log: the /etc row is refused" "refusing row /etc" "$(cat "$log")"
check_fails "a closure with an item missing on disk: pack.tar fails" "$eio|$enoent" T cat "$MNT/other/pack.tar"
check_contains "log: names the missing item" "$ghost" "$(cat "$log")"
store_listing=$(T ls -A "$MNT/.store")
check "the good item is listed in .store" grep -qx "${GOOD##*/}" <<<"$store_listing"
check_eq ".store lists only store items" "" "$(grep -v '^[0-9a-z]\{32\}-' <<<"$store_listing" || true)"
check_fails ".store/etc does not exist" "$enoent" T ls "$MNT/.store/etc"
check_fails ".store/<valid-looking, not valid>" "$enoent" T cat "$MNT/.store/11111111111111111111111111111111-fake/closure"

# ---- hostile profile links ----

root_listing=$(T ls -A "$MNT")
for r in "${refused[@]}"; do
        # shellcheck disable=SC2016 # expanded by the inner bash
        check "$r is not listed" bash -c '! grep -qx "$1" <<<"$2"' - "${r##*/}" \
                "$([[ $r == */* ]] && T ls -A "$MNT/${r%/*}" || echo "$root_listing")"
        check_fails "$r is not served" "$enoent|Not a directory" T cat "$MNT/$r/closure"
done
check_eq "the root lists exactly the good links" \
        "$(printf '%s\n' .store evil-dotdot evil-dotdot-1-link evil-notstore evil-notstore-1-link good good-1-link \
                grows grows-1-link other other-1-link other2 other2-1-link per-user rewritten rewritten-1-link \
                vanishes vanishes-1-link)" "$root_listing"
check_eq "a relative link inside the root is served" "$(T cat "$MNT/good/closure")" \
        "$(T cat "$MNT/per-user/mallory/fine/closure")"
check_contains "log: the link to /etc is refused" "refusing link to /etc" "$(cat "$log")"
check_contains "log: the escaping relative link is refused" "outside the profiles root" "$(cat "$log")"

# ---- store files that change under a plan ----

for p in grows rewritten vanishes; do
        check "$p: stat plans pack.tar" test "$(fsize "$MNT/$p/pack.tar")" -gt 200000
done
chmod u+w "$CH1" "$CH1/data" "$CH2" "$CH2/data" "$CH3"
printf 'more' >>"$CH1/data"                                  # size changed
printf '%s' "${big/A/B}" >"$CH2/data" && touch -d @12345 "$CH2/data" # same size, new mtime
rm "$CH3/data"                                              # vanished
for p in grows rewritten vanishes; do
        item=$(profile_item "$p")
        item=$(pf_store closure "$item" | grep -- "-$p\$")
        check_eq "$p: the headers before the file still read" 512 \
                "$(T dd if="$MNT/$p/pack.tar" iflag=direct bs=512 count=1 status=none | wc -c)"
        check_fails "$p: a read that reaches the file gives EIO" "$eio" T cat "$MNT/$p/pack.tar"
        check_fails "$p: and again (no stale success)" "$eio" T dd if="$MNT/$p/pack.tar" iflag=direct bs=1M status=none of=/dev/null
        check_contains "$p: the log names the file" "$item/data" "$(grep -F "$item/data" "$log" || true)"
done
check_eq "the other profiles still work" "$(pf_store closure "$(profile_item other2)")" "$(T cat "$MNT/other2/closure")"
check "other2/pack.tar still extracts" T tar -tf "$MNT/other2/pack.tar" >/dev/null
check "the server is still up" kill -0 "$server"
check "still mounted" is_packfs_mounted "$MNT"
check "the server exits 0 after unmounting" unmount_packfs "$MNT" "$server"

# ---- databases that cannot be used: refused before mounting ----

# check_refused WHAT CULPRIT MOUNT_ARGS...: `packfs mount` fails within 15 s,
# exits non-zero, prints one line naming CULPRIT, and mounts nothing.
check_refused() {
        local what=$1 culprit=$2 mnt=$WORK/mnt-refused err rc=0 t0=$SECONDS
        shift 2
        mkdir -p "$mnt"
        MOUNTS+=("$mnt")
        err=$(timeout 30 "$PACKFS" mount "$@" "$mnt" 2>&1 >/dev/null) || rc=$?
        CHECKS=$((CHECKS + 1))
        if is_mounted "$mnt"; then
                fail "$what: mounted anyway"
                unmount_quiet "$mnt"
        elif ((rc == 0)); then
                fail "$what: exited 0"
        elif ((rc == 124)); then
                fail "$what: still running after 30 s"
        elif ((SECONDS - t0 > 15)); then
                fail "$what: took $((SECONDS - t0)) s"
        elif (($(wc -l <<<"$err") > ${MAX_LINES:-1})); then
                fail "$what: not a one-line error: $err"
        elif [[ $err != *"$culprit"* ]]; then
                fail "$what: the error does not name $culprit: $err"
        else
                printf 'ok: %s: %s\n' "$what" "$err"
        fi
}

bad=$WORK/bad
mkdir -p "$bad"
head -c 65536 /dev/urandom >"$bad/random.sqlite"
: >"$bad/empty.sqlite"
sqlite3 "$bad/other-schema.sqlite" 'CREATE TABLE Foo (x integer); INSERT INTO Foo VALUES (1);'
sqlite3 "$bad/no-refs.sqlite" 'CREATE TABLE ValidPaths (id integer primary key, path text, hash text, narSize integer);'
opts=(--store "$STORE" --profiles "$PROFILES")
check_refused "corrupt database (random bytes)" "$bad/random.sqlite" "${opts[@]}" --db "$bad/random.sqlite"
check_refused "empty database file" "$bad/empty.sqlite" "${opts[@]}" --db "$bad/empty.sqlite"
check_refused "database of another schema" "$bad/other-schema.sqlite" "${opts[@]}" --db "$bad/other-schema.sqlite"
check_refused "database without Refs" "$bad/no-refs.sqlite" "${opts[@]}" --db "$bad/no-refs.sqlite"
check_refused "missing database" "$bad/missing.sqlite" "${opts[@]}" --db "$bad/missing.sqlite"
check_refused "missing store directory" "$WORK/no-store" --store "$WORK/no-store" --db "$DB" --profiles "$PROFILES"
check_refused "store that is a file" "$bad/random.sqlite" --store "$bad/random.sqlite" --db "$DB" --profiles "$PROFILES"
check_refused "missing profiles root" "$WORK/no-profiles" --store "$STORE" --db "$DB" --profiles "$WORK/no-profiles"
check_refused "missing configuration file" "$bad/bad.conf" "${opts[@]}" --db "$DB" --config "$bad/bad.conf"
printf '[demo]\nno-such-option = 1\n' >"$bad/bad.conf"
check_refused "configuration with an unknown option" "no-such-option" "${opts[@]}" --db "$DB" --config "$bad/bad.conf"
# (libfuse prints a line of its own before packfs's.)
MAX_LINES=2 check_refused "unknown FUSE option" "no_such_fuse_option" "${opts[@]}" --db "$DB" -o no_such_fuse_option
# libfuse checks max_read only at INIT, after the daemon has forked: the parent
# waits for INIT, so the option works (or fails here), never an exit 0 with
# nothing mounted; and the daemon's messages go to syslog, not the terminal.
mr=$WORK/mnt-max-read
mkdir -p "$mr"
MOUNTS+=("$mr")
rc=0
err=$(timeout 30 "$PACKFS" mount "${opts[@]}" --db "$DB" --cache "$WORK/cache" -o max_read=65536 "$mr" 2>&1) || rc=$?
check_eq "daemon with -o max_read=65536: exit 0, nothing printed" "0:" "$rc:$err"
check "daemon with -o max_read=65536 is mounted" is_packfs_mounted "$mr"
check "and serves pack.tar as packfs build makes it" \
        cmp "$mr/good/pack.tar" <("$PACKFS" build "${opts[@]}" --db "$DB" --cache "$WORK/cache" good/pack.tar -o -)
unmount_quiet "$mr"
check_fails "packfs build with a corrupt database fails" "$bad/random.sqlite" \
        T "$PACKFS" build --cache "$WORK/cache" --store "$STORE" --db "$bad/random.sqlite" good/pack.tar -o -

# A database corrupted after its schema: the mount may come up, but then every
# access is an error, never bytes, and the server stays up.
sqlite3 "$DB" ".backup '$bad/torn.sqlite'"
sqlite3 "$bad/torn.sqlite" 'PRAGMA journal_mode=DELETE; VACUUM;' >/dev/null
pages=$(($(fsize "$bad/torn.sqlite") / 4096))
if ((pages > 2)); then
        dd if=/dev/urandom of="$bad/torn.sqlite" bs=4096 seek=2 count=$((pages - 2)) conv=notrunc status=none
        mnt=$WORK/mnt-torn
        mkdir -p "$mnt"
        MOUNTS+=("$mnt")
        rc=0
        timeout 30 "$PACKFS" mount -f --store "$STORE" --db "$bad/torn.sqlite" --profiles "$PROFILES" "$mnt" \
                2>"$WORK/torn.log" &
        torn=$!
        PIDS+=("$torn")
        if wait_mounted "$mnt" "$torn"; then
                out=$(T cat "$mnt/good/closure" 2>&1) || rc=$?
                CHECKS=$((CHECKS + 1))
                if ((rc == 0)) && [[ $out != "$(pf_store closure "$(profile_item good)")" ]]; then
                        fail "torn database: good/closure gave other bytes: $out"
                else
                        printf 'ok: torn database: good/closure: %s\n' "${out:0:80}"
                fi
                check "torn database: the server is still up" kill -0 "$torn"
                check "torn database: the log names the database" grep -qF "$bad/torn.sqlite" "$WORK/torn.log"
                unmount_packfs "$mnt" "$torn" || true
        else
                check_eq "torn database: refused with one line" 1 "$(wc -l <"$WORK/torn.log")"
        fi
fi

# ---- a locked database ----

# The lock holder: a rollback-journal database held with BEGIN EXCLUSIVE (in WAL
# mode readers are never locked out) until $WORK/release exists.
sqlite3 "$DB" 'PRAGMA journal_mode=DELETE;' >/dev/null
cat >"$WORK/lock.py" <<'EOF'
import os, sqlite3, sys, time
db, ready, release = sys.argv[1:4]
c = sqlite3.connect(db, isolation_level=None, timeout=10)
c.execute("BEGIN EXCLUSIVE")
c.execute("UPDATE ValidPaths SET registrationTime = registrationTime WHERE id = 1")
open(ready, "w").close()
deadline = time.time() + 60
while not os.path.exists(release) and time.time() < deadline:
    time.sleep(0.05)
c.execute("ROLLBACK")
c.close()
EOF
lock_db() {
        rm -f "$WORK/locked" "$WORK/release"
        python3 "$WORK/lock.py" "$DB" "$WORK/locked" "$WORK/release" &
        LOCKER=$!
        PIDS+=("$LOCKER")
        for ((i = 0; i < 100; i++)); do
                [[ -e $WORK/locked ]] && return 0
                sleep 0.1
        done
        die "could not lock the database"
}
unlock_db() {
        touch "$WORK/release"
        wait "$LOCKER" || die "the lock holder failed"
}

# Locked while the mount starts: a clear error within ~10 s (at start or on the
# first access), and after the lock is gone the mount serves.
lock_db
LMNT=$WORK/mnt-locked
mkdir -p "$LMNT"
MOUNTS+=("$LMNT")
t0=$SECONDS rc=0
err=$(timeout 30 "$PACKFS" mount --store "$STORE" --db "$DB" --profiles "$PROFILES" "$LMNT" 2>&1) || rc=$?
took=$((SECONDS - t0))
if is_packfs_mounted "$LMNT"; then
        say "the mount came up with the database locked; its first access must fail"
        t0=$SECONDS
        check_fails "locked at start: first access fails" "$eio|$enoent|busy" timeout 20 cat "$LMNT/good/closure"
        check "locked at start: within 10 s" test $((SECONDS - t0)) -le 11
        unmount_quiet "$LMNT"
else
        check "locked at start: packfs mount exits non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
        check "locked at start: within 10 s ($took s)" test "$took" -le 11
        check_contains "locked at start: the error names the database" "$DB" "$err"
        check "locked at start: the error says busy or locked" grep -qiE 'busy|locked' <<<"$err"
fi
unlock_db

# Locked while mounted: an access that needs the database fails within ~10 s
# with a log line, and works again once the lock is released.
mount_packfs "$LMNT"
check_eq "unlocked: good/closure" "$(pf_store closure "$(profile_item good)")" "$(T cat "$LMNT/good/closure")"
lock_db
t0=$SECONDS
check_fails "locked: other2/closure fails" "$eio|$enoent|busy" timeout 20 cat "$LMNT/other2/closure"
check "locked: within 10 s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 11
check "locked: the log says busy or locked" grep -qiE 'busy|locked' "$MOUNT_LOG"
check_contains "locked: the log names the database" "$DB" "$(grep -iE 'busy|locked' "$MOUNT_LOG" || true)"
unlock_db
check "the mount stays up" kill -0 "$MOUNT_PID"
expected=$(pf_store closure "$(profile_item other2)")
got=
for ((i = 0; i < 30; i++)); do
        got=$(T cat "$LMNT/other2/closure" 2>/dev/null) && break
        sleep 0.2
done
check_eq "unlocked again: other2/closure is served" "$expected" "$got"
check_eq "unlocked again: good/closure is served" "$(pf_store closure "$(profile_item good)")" \
        "$(T cat "$LMNT/good/closure")"
check "unlocked again: good/pack.tar extracts" T tar -tf "$LMNT/good/pack.tar" >/dev/null

finish
