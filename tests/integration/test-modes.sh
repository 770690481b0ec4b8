#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Only who should (SPEC guarantee 6; issue 9, item 4). With -o allow_other the
# kernel checks the mode, owner and group packfs reports (default_permissions),
# so a pack must say that only those who could read everything it holds from
# the store may read it: 0444 for a closure others may read whole, else 0400
# (0440 with a common group) owned by the private members' owner. `closure`
# stays 0444. The cache is its owner's alone, and a remount over it tells who
# may read a cached pack without walking the store.
#
# Runs as root: it gives store files to others and reads as nobody.
#
# Usage: PACKFS=build/fs/packfs test-modes.sh   (or: test-modes.sh PACKFS)

source "$(dirname "$0")/lib.sh"

need_fuse
need_tools setpriv stat find zstd gzip xz tar sha256sum timeout python3
[[ $(id -u) == 0 ]] || skip "needs root (to chmod store files and read as nobody)"
getent passwd nobody >/dev/null && getent group nogroup >/dev/null || skip "no nobody user or nogroup group"
setup_work
# nobody must reach the store and the mount: mktemp made the work directory 0700.
chmod 0755 "$WORK"
make_store

NOGROUP=$(getent group nogroup | cut -d: -f3)
OTHER_GID=54321 # a group nobody is not in
# Commands, not functions: T (lib.sh) runs its command under timeout(1).
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
STRANGER=(setpriv --reuid=nobody --regid="$OTHER_GID" --clear-groups)
log_len() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }
log_since() { tail -n +$(($2 + 1)) "$1"; }
count() { grep -cF -- "$1" || true; }
quiet() { "$@" >/dev/null; }
# stat_ms FILE: "MODE UID GID MS", MS the time stat(2) took, in milliseconds.
stat_ms() {
        T python3 -c 'import os, sys, time
t = time.perf_counter(); st = os.stat(sys.argv[1]); t = time.perf_counter() - t
print("%o %d %d %d" % (st.st_mode & 0o7777, st.st_uid, st.st_gid, t * 1000))' "$1"
}

# ---- the store ----

src=$WORK/src
mkdir -p "$src/open/bin" "$src/open/share/doc" "$src/secret/etc" "$src/private/lib/private" "$src/grp/share"
printf '#!/bin/sh\necho open\n' >"$src/open/bin/open"
chmod 0755 "$src/open/bin/open"
printf 'anyone may read this\n' >"$src/open/share/doc/README"
ln -s ../share/doc/README "$src/open/bin/readme"
printf 'the password\n' >"$src/secret/etc/secret"
printf 'not secret\n' >"$src/secret/etc/public"
printf 'private data\n' >"$src/private/lib/private/data"
printf 'public data\n' >"$src/private/lib/public"
printf 'for the group\n' >"$src/grp/share/group-only"
OPEN=$(add_item "$src/open")
SECRET=$(add_item "$src/secret")
PRIVATE=$(add_item "$src/private")
GRP=$(add_item "$src/grp")
# After `store add` (a NAR hash does not depend on read bits or owners), as a
# store of private files would have them.
chmod 0400 "$SECRET/etc/secret"
chmod 0700 "$PRIVATE/lib/private"
chgrp nogroup "$GRP/share/group-only"
chmod 0440 "$GRP/share/group-only"

make_profile open "$OPEN"
make_profile secret "$OPEN" "$SECRET"
make_profile private "$PRIVATE"
make_profile grp "$OPEN" "$GRP"

# What the store itself allows: the checks below hold packfs to it.
check_fails "store: nobody cannot read the 0400 file" "Permission denied" "${NOBODY[@]}" cat "$SECRET/etc/secret"
check_fails "store: nobody cannot enter the 0700 directory" "Permission denied" \
        "${NOBODY[@]}" cat "$PRIVATE/lib/private/data"
check "store: nobody (group nogroup) reads the 0440 file" quiet "${NOBODY[@]}" cat "$GRP/share/group-only"
check_fails "store: nobody in another group cannot read it" "Permission denied" \
        "${STRANGER[@]}" cat "$GRP/share/group-only"
check "store: nobody reads the open item" quiet "${NOBODY[@]}" cat "$OPEN/share/doc/README"

PACKS=(pack.tar pack.tar.gz pack.tar.xz pack.tar.zst)
RESTRICTED=(secret private ".store/${SECRET##*/}")
OPEN_VIEWS=(open ".store/${OPEN##*/}")
CACHE=$WORK/cache
MNT=$WORK/mnt
mount_packfs "$MNT" -o allow_other

# ---- modes and owners ----

# nobody first, on a cold pack.tar.zst: refused before anything is encoded
# (nobody must not make packfs encode it, nor learn its compressed size).
check_fails "nobody cannot read private/pack.tar.zst (cold)" "Permission denied" \
        T "${NOBODY[@]}" cat "$MNT/private/pack.tar.zst"
check_fails "nobody cannot even stat a cold private/pack.tar.xz" "Permission denied" \
        T "${NOBODY[@]}" stat "$MNT/private/pack.tar.xz"
check_eq "nothing was encoded for nobody" "0" "$(grep -c 'private/pack.tar.*: encoded' "$MOUNT_LOG" || true)"
check_contains "the log says why" "not encoded for uid" "$(cat "$MOUNT_LOG")"
for v in "${RESTRICTED[@]}"; do
        for f in "${PACKS[@]}"; do
                check_eq "$v/$f: mode 0400, owned by root" "400 0 0" "$(T stat -c '%a %u %g' "$MNT/$v/$f")"
        done
        check_eq "$v/closure: mode 0444" "444" "$(T stat -c '%a' "$MNT/$v/closure")"
done
for v in "${OPEN_VIEWS[@]}"; do
        for f in "${PACKS[@]}" closure; do
                check_eq "$v/$f: mode 0444, the mounting user's" "444 $(id -u)" "$(T stat -c '%a %u' "$MNT/$v/$f")"
        done
done
for f in "${PACKS[@]}"; do
        check_eq "grp/$f: mode 0440, group nogroup" "440 0 $NOGROUP" "$(T stat -c '%a %u %g' "$MNT/grp/$f")"
done
check_eq "ls -l says who may read them" "-r--------" "$(T ls -l "$MNT/secret/pack.tar" | cut -c1-10)"

# ---- who reads ----

for v in "${RESTRICTED[@]}"; do
        for f in "${PACKS[@]}"; do
                check_fails "nobody cannot read $v/$f" "Permission denied" T "${NOBODY[@]}" cat "$MNT/$v/$f"
        done
        check "nobody reads $v/closure" quiet T "${NOBODY[@]}" cat "$MNT/$v/closure"
done
# Root reads them: the same bytes as `packfs build`, the private files inside.
secret_tar=$(sha "$MNT/secret/pack.tar")
check_eq "root reads secret/pack.tar" "$secret_tar" \
        "$(T "$PACKFS" build --store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$CACHE" secret/pack.tar -o - |
                sha256sum | cut -d' ' -f1)"
check_contains "secret/pack.tar holds the 0400 file" "etc/secret" "$(T tar tf "$MNT/secret/pack.tar")"
check_eq "root reads secret/pack.tar.zst (encoded now)" "$secret_tar" \
        "$(T zstd -dc <"$MNT/secret/pack.tar.zst" | sha256sum | cut -d' ' -f1)"
check_eq "root reads private/pack.tar.gz" "$(sha "$MNT/private/pack.tar")" \
        "$(T gzip -dc <"$MNT/private/pack.tar.gz" | sha256sum | cut -d' ' -f1)"
# Encoded and cached by root's reads: still not nobody's.
check_fails "nobody cannot read secret/pack.tar.zst once encoded" "Permission denied" \
        T "${NOBODY[@]}" cat "$MNT/secret/pack.tar.zst"
check_fails "nobody cannot open secret/pack.tar.zst with dd either" "Permission denied" \
        T "${NOBODY[@]}" dd if="$MNT/secret/pack.tar.zst" of=/dev/null bs=1 count=1 status=none
for v in "${OPEN_VIEWS[@]}"; do
        for f in "${PACKS[@]}" closure; do
                check_eq "nobody reads $v/$f, the bytes root reads" "$(sha "$MNT/$v/$f")" \
                        "$(T "${NOBODY[@]}" cat "$MNT/$v/$f" | sha256sum | cut -d' ' -f1)"
        done
done
check "nobody (group nogroup) reads grp/pack.tar" quiet T "${NOBODY[@]}" cat "$MNT/grp/pack.tar"
check "nobody (group nogroup) reads grp/pack.tar.zst" quiet T "${NOBODY[@]}" cat "$MNT/grp/pack.tar.zst"
check_fails "nobody in another group cannot read grp/pack.tar" "Permission denied" \
        T "${STRANGER[@]}" cat "$MNT/grp/pack.tar"
# An open file answers fstat with the same mode (its own snapshot's).
check_eq "fstat of an open secret/pack.tar: 0400 root" "400 0" \
        "$(T python3 -c 'import os, sys; st = os.fstat(os.open(sys.argv[1], os.O_RDONLY)); print("%o %d" % (st.st_mode & 0o7777, st.st_uid))' "$MNT/secret/pack.tar")"

# ---- the cache is its owner's ----

check_eq "the cache directory is 0700" 700 "$(stat -c %a "$CACHE")"
check_eq "nothing in the cache is others' to read" "" "$(find "$CACHE" -perm /o+rwx)"
check_eq "nor the group's" "" "$(find "$CACHE" -perm /g+rwx)"
check "the cache holds objects" test -n "$(find "$CACHE/objects" -type f)"

# ---- a remount over the same cache: no walk ----

check "the server exits 0 after unmounting" unmount_packfs "$MNT" "$MOUNT_PID"
mark=$(log_len "$MOUNT_LOG")
mount_packfs "$MNT" -o allow_other
read -r mode uid gid ms < <(stat_ms "$MNT/secret/pack.tar.zst")
check_eq "remount: secret/pack.tar.zst is still 0400 root" "400 0 0" "$mode $uid $gid"
# Its first stat, the path's lookups included; well under 10 ms on an idle
# machine, bounded loosely here for loaded CI runners.
check "remount: its stat is quick ($ms ms)" test "$ms" -lt 200
check_eq "remount: private/pack.tar.zst is still 0400 root" "400 0 0" \
        "$(T stat -c '%a %u %g' "$MNT/private/pack.tar.zst")"
check_eq "remount: grp/pack.tar.zst is still 0440 nogroup" "440 0 $NOGROUP" \
        "$(T stat -c '%a %u %g' "$MNT/grp/pack.tar.zst")"
check_eq "remount: open/pack.tar.zst is still 0444" "444" "$(T stat -c '%a' "$MNT/open/pack.tar.zst")"
# Not even a look at the store: with the item moved away, an open pack of it
# still says 0444 (a walk would fail, and an unknown answer is 0400 root).
open_view=.store/${OPEN##*/}
mv "$OPEN" "$OPEN.away"
check_eq "remount: $open_view/pack.tar.zst says 0444 with its item moved away" "444 0" \
        "$(T stat -c '%a %u' "$MNT/$open_view/pack.tar.zst")"
mv "$OPEN.away" "$OPEN"
since=$(log_since "$MOUNT_LOG" "$mark")
check_eq "remount: nothing walked the store" 0 "$(count "walked" <<<"$since")"
check_eq "remount: nothing encoded" 0 "$(count ": encoded" <<<"$since")"
check_fails "remount: nobody cannot read secret/pack.tar.zst" "Permission denied" \
        T "${NOBODY[@]}" cat "$MNT/secret/pack.tar.zst"
check "remount: nobody reads open/pack.tar.zst" quiet T "${NOBODY[@]}" cat "$MNT/open/pack.tar.zst"
check "the server exits 0 after unmounting" unmount_packfs "$MNT" "$MOUNT_PID"

# ---- a cache an older packfs made 0755 is tightened ----

chmod 0755 "$CACHE" "$CACHE/objects"
chmod 0644 "$CACHE/index.sqlite"
mark=$(log_len "$MOUNT_LOG")
mount_packfs "$MNT" -o allow_other
check_contains "a loose cache is tightened, with a log line" "now 0700" "$(log_since "$MOUNT_LOG" "$mark")"
check_eq "the cache directory is 0700 again" 700 "$(stat -c %a "$CACHE")"
check_eq "nothing in it is others' to read again" "" "$(find "$CACHE" -perm /o+rwx)"
check_eq "still 0400 root from its records" "400 0 0" "$(T stat -c '%a %u %g' "$MNT/secret/pack.tar.zst")"
check "the server exits 0 after unmounting" unmount_packfs "$MNT" "$MOUNT_PID"

finish
