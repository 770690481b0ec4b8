#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# pack.rpm (issue 12): rpm verifies its digests (header and payload, none
# missing), lists it, rpm2cpio | cpio extracts exactly the closure (bytes,
# modes, symlinks), rpm installs it into a fresh --root; its size is exact, its
# bytes the same on every mount and from `packfs build`; a second profile
# sharing items hashes only its new item; the scripts and `relocatable` of the
# config; hostile names; a store file changed since planning gives EIO and no
# digest of it is recorded; a file of 4 GiB or more; a reader interrupted while
# the digests are computed gets EINTR at once, and the hashing goes on.
#
# Usage: PACKFS=build/fs/packfs test-rpm.sh   (or: test-rpm.sh PACKFS)
source "$(dirname "$0")/lib.sh"
need_fuse
need_tools rpm rpm2cpio cpio cmp sha256sum timeout find sqlite3 truncate
setup_work
make_store

eio="Input/output error"

# ---- the store ----
src=$WORK/src
mkdir -p "$src/hello-2.12/bin" "$src/hello-2.12/share/doc" "$src/data/share/data" "$src/data/empty" \
        "$src/odd/share/names" "$src/new/lib"
printf '#!/bin/sh\necho hello\n' >"$src/hello-2.12/bin/hello"
chmod 0755 "$src/hello-2.12/bin/hello"
ln -s hello "$src/hello-2.12/bin/hi"
echo "the docs" >"$src/hello-2.12/share/doc/README"
head -c 300001 /dev/urandom >"$src/data/share/data/random" # not a multiple of 4
: >"$src/data/share/data/empty-file"
chmod 0600 "$src/data/share/data/empty-file"
chmod 0700 "$src/data/empty"
ln -s /etc/shadow "$src/data/share/shadow" # hostile: must stay a symlink
# Names a shell, cpio or rpm might trip on.
for n in "with space" "quote'\"s" 'back\slash' '%{macro}' 'TRAILER!!!' '-dash' 'ünïcödé' $'\x01ctl' '*?[x]'; do
        printf '%s\n' "$n" >"$src/odd/share/names/$n"
done
echo "new" >"$src/new/lib/new.txt"
# A Guix profile of one package: its manifest names it.
mkdir -p "$src/guix-profile/bin"
cat >"$src/guix-profile/manifest" <<'SCM'
;; This file was automatically generated and is for internal use only.
;; It cannot be passed to the '--manifest' option.

(manifest
  (version 4)
  (packages
    (("hello"
      "2.12.1"
      "out"
      "/gnu/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12.1"
      (propagated-inputs ())
      (search-paths ())
      (properties ((";; not a comment" "(paren\"")))))))
SCM
GUIXPROF=$(add_item "$src/guix-profile")
HELLO=$(add_item "$src/hello-2.12")
DATA=$(add_item "$src/data")
ODD=$(add_item "$src/odd")
NEW=$(add_item "$src/new")
make_profile demo "$HELLO" "$DATA" "$ODD"
make_profile one "$HELLO"
make_profile twin "$HELLO" "$DATA" "$ODD" # demo's profile item, another name
make_profile more "$HELLO" "$DATA" "$ODD" "$NEW"
make_profile scripted "$HELLO"
# A store item whose file will change behind the database's back.
mkdir -p "$src/changing/share"
head -c 200000 /dev/urandom >"$src/changing/share/data"
CHANGING=$(add_item "$src/changing")
make_profile changing "$CHANGING"
# A path longer than cpio and rpm take: "./<path>" and its NUL past PATH_MAX,
# a path the kernel still takes (4095 bytes).
deep=$src/deep
need=$((4095 - ${#STORE} - 1 - 32 - 1 - 4)) rel=
while ((need > 253)); do
        rel+=/$(printf 'd%.0s' $(seq 250))
        need=$((need - 251))
done
rel+=/$(printf 'f%.0s' $(seq $((need - 1))))
mkdir -p "$deep$(dirname "$rel")" && echo deep >"$deep$rel"
DEEP=$(add_item "$deep")
check_eq "the deep file's path is 4095 bytes" 4095 "$(find "$DEEP" -type f | awk '{ print length($0) }')"
[[ -n $DEEP ]] && make_profile deep "$DEEP"
# A file of 4 GiB or more (stripped cpio entries, LONGFILESIZES), registered by
# hand: `store add` would write its 4.5 GiB; sparse, it costs no disk.
HUGE=$STORE/$(printf 'h%.0s' $(seq 32))-huge-1.0
HUGE_SIZE=$((4608 * 1024 * 1024 + 1))
mkdir -p "$HUGE/share" && truncate -s "$HUGE_SIZE" "$HUGE/share/huge"
sqlite3 "$DB" "INSERT INTO ValidPaths (path, hash, registrationTime, narSize)
        VALUES ('$HUGE', 'sha256:$(printf huge | sha256sum | cut -c1-64)', 1, $((HUGE_SIZE + 1024)));" ||
        die "cannot register $HUGE"
make_profile huge "$HUGE"

printf '#!/bin/sh\necho "post-install of packfs"\n' >"$WORK/post.sh"
printf 'echo "pre-uninstall"\n' >"$WORK/preun.sh"
cat >"$WORK/packfs.ini" <<INI
[scripted]
rpm-postin = $WORK/post.sh
rpm-preun = $WORK/preun.sh
relocatable = true
symlinks = /bin=bin /usr/bin/hello=bin/hello
INI

M=$WORK/mnt
mount_packfs "$M" --config "$WORK/packfs.ini"
P=$M/demo/pack.rpm

# ---- what rpm says ----
check "pack.rpm is listed on a cold view" grep -qx pack.rpm <(ls "$M/demo")
check_eq "size = bytes read" "$(fsize "$P")" "$(bytes_read "$P")"
kv=$(T rpm -Kv --nosignature "$P" 2>&1) || true
check_contains "rpm -K: header SHA256 OK" "Header SHA256 digest: OK" "$kv"
check_contains "rpm -K: payload SHA256 OK" "Payload SHA256 digest: OK" "$kv"
check_eq "rpm -K: nothing BAD or NOTFOUND" "" "$(grep -E 'BAD|NOTFOUND|FAIL' <<<"$kv" || true)"
check_eq "rpm -qp: name, version (a profile of several packages)" "demo-0.0.0-0" \
        "$(T rpm -qp --qf '%{NAME}-%{VERSION}-%{RELEASE}' "$P")"
check_eq "rpm -qp: a profile with demo's closure is named after itself" "twin-0.0.0-0" \
        "$(T rpm -qp --qf '%{NAME}-%{VERSION}-%{RELEASE}' "$M/twin/pack.rpm")"
check_eq "rpm -qp: a one-package profile is named after its package" "hello-2.12-0" \
        "$(T rpm -qp --qf '%{NAME}-%{VERSION}-%{RELEASE}' "$M/one/pack.rpm")"
check_eq "rpm -qp: a Guix profile of one package is named after it" "hello-2.12.1-0" \
        "$(T rpm -qp --qf '%{NAME}-%{VERSION}-%{RELEASE}' "$M/.store/$(basename "$GUIXPROF")/pack.rpm")"
check_eq "rpm -qp: arch, os, digest algorithm" "$(uname -m) linux 8" \
        "$(T rpm -qp --qf '%{ARCH} %{OS} %{FILEDIGESTALGO}' "$P")"

# The members: the items, the store and its parents but the system's top directories.
expected_list() { # ITEM...
        local p=$STORE
        {
                while [[ $p != / ]]; do
                        case $p in
                        /bin | /boot | /dev | /etc | /home | /lib | /lib64 | /media | /mnt | /opt | /proc | /root | \
                                /run | /sbin | /srv | /sys | /tmp | /usr | /var) ;;
                        *) printf '%s\n' "$p" ;;
                        esac
                        p=$(dirname "$p")
                done
                find "$@"
        } | sort
}
demo_closure=$(cat "$M/demo/closure")
# shellcheck disable=SC2086 # store paths have no blanks
check_eq "rpm -qlp lists exactly the closure" "$(expected_list $demo_closure)" "$(T rpm -qlp "$P" | sort)"
check_eq "owners root, mtimes 1" "root root 1" \
        "$(T rpm -qp --qf '[%{FILEUSERNAME} %{FILEGROUPNAME} %{FILEMTIMES}\n]' "$P" | sort -u)"

# ---- rpm2cpio | cpio ----
x=$WORK/x
mkdir -p "$x"
(cd "$x" && T rpm2cpio "$P" | cpio -idm --quiet) || fail "rpm2cpio | cpio -idm failed"
tree_of() { # ROOT ITEM...: mode, type, size, sha256 or target of each entry
        local root=$1 item
        shift
        for item in "$@"; do
                (cd "$root$item" && find . -printf '%m %y %p -> %l\n' | sort)
                (cd "$root$item" && find . -type f -print0 | sort -z | xargs -0r sha256sum)
        done
}
# shellcheck disable=SC2086
check_eq "rpm2cpio | cpio -idm: the store's bytes, modes and symlinks" "$(tree_of "" $demo_closure)" \
        "$(tree_of "$x" $demo_closure)"
check_eq "cpio: the symlink out of the store stays a symlink" "/etc/shadow" "$(readlink "$x$DATA/share/shadow")"

# ---- rpm -i ----
root=$WORK/root
mkdir -p "$root"
check "rpm --initdb" T rpm --root "$root" --initdb
check "rpm -i --root --nodeps --force-debian" T rpm -i --root "$root" --nodeps --force-debian "$P"
check_eq "rpm -qa in the root" "demo-0.0.0-0.$(uname -m)" "$(T rpm --root "$root" -qa)"
# shellcheck disable=SC2086
check_eq "installed: the store's bytes, modes and symlinks" "$(tree_of "" $demo_closure)" \
        "$(tree_of "$root" $demo_closure)"
check_eq "rpm -V: nothing differs" "" "$(T rpm --root "$root" -V demo 2>&1 || true)"

# ---- the same bytes, every way ----
sum=$(sha "$P")
check "packfs build gives the mount's bytes" cmp "$P" \
        <("$PACKFS" build --store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$WORK/cache-build" \
                --config "$WORK/packfs.ini" demo/pack.rpm -o -)
check "dd bs=4097 reads the same bytes" cmp "$P" <(T dd if="$P" bs=4097 status=none)
unmount_packfs "$M" "$MOUNT_PID"
mount_packfs "$M" --config "$WORK/packfs.ini"
check_eq "the same bytes on a second mount (digests recorded)" "$sum" "$(sha "$P")"
check_contains "the second mount hashed no file" "demo/pack.rpm: hashed the files of 0 of 3 store items" \
        "$(cat "$MOUNT_LOG")"
check_contains "... and took the payload digest from the cache" "payload digest recorded" \
        "$(grep 'demo/pack.rpm: hashed' "$MOUNT_LOG" | tail -n1)"

# A profile sharing three items with demo and one new: only the new one hashed.
T cat "$M/more/pack.rpm" >/dev/null
check_contains "a profile sharing items hashes only its new item" "more/pack.rpm: hashed the files of 1 of 4 store items" \
        "$(cat "$MOUNT_LOG")"
check "rpm -K of that profile" T rpm -K --nosignature "$M/more/pack.rpm"

# ---- scripts and relocatable ----
S=$M/scripted/pack.rpm
scripts=$(T rpm -qp --scripts "$S")
check_contains "postinstall script from the config" 'echo "post-install of packfs"' "$scripts"
check_contains "preuninstall script from the config" 'echo "pre-uninstall"' "$scripts"
check_eq "relocatable: PREFIXES /" "/" "$(T rpm -qp --qf '%{PREFIXES}' "$S")"
listing=$(T rpm -qlp "$S")
check "the profile's symlink /usr/bin/hello is there" grep -qx /usr/bin/hello <<<"$listing"
check_eq "... but not the system's directories, nor a symlink in place of one" "" \
        "$(grep -xE '/bin|/usr|/usr/bin' <<<"$listing" || true)"
check_contains "the left-out symlink is logged" "scripted/pack.rpm: leaves out /bin" "$(cat "$MOUNT_LOG")"
check_ne "options change the bytes" "$(sha "$M/one/pack.rpm")" "$(sha "$S")"
check "rpm -K of the scripted package" T rpm -K --nosignature "$S"
r2=$WORK/root2
mkdir -p "$r2"
T rpm --root "$r2" --initdb
check "rpm -i --prefix relocates it" T rpm -i --root "$r2" --nodeps --force-debian --noscripts --prefix /opt/p "$S"
check "the relocated files are under the prefix" test -x "$r2/opt/p$HELLO/bin/hello"

# ---- bad input ----
if [[ -n $DEEP ]]; then
        check_fails "a path longer than rpm takes is an error" "" T cat "$M/deep/pack.rpm"
        check_contains "the log names the file" "name too long for an rpm" "$(cat "$MOUNT_LOG")"
else
        fail "the store did not take the deep item (cannot test the path limit)"
fi

C=$M/changing/pack.rpm
check "changing: stat plans pack.rpm" test "$(fsize "$C")" -gt 200000
f=$CHANGING/share/data
mtime=$(stat -c %Y "$f")
cp "$f" "$WORK/data.orig"
chmod u+w "$CHANGING/share" "$f"
printf 'X' | dd of="$f" bs=1 seek=1000 conv=notrunc status=none # same size, new mtime
check_fails "a changed store file gives EIO" "$eio" T cat "$C"
check_contains "the log names the file" "$f: changed since it was planned" "$(cat "$MOUNT_LOG")"
# Put it back as it was planned: no digest of the changed bytes was recorded.
cp "$WORK/data.orig" "$f" && touch -d "@$mtime" "$f"
check "once restored, the package verifies" T rpm -K --nosignature "$C"
cx=$WORK/cx
mkdir -p "$cx"
(cd "$cx" && T rpm2cpio "$C" | cpio -idm --quiet)
check "and holds the original bytes" cmp "$WORK/data.orig" "$cx$f"

# ---- a file of 4 GiB or more, and a reader who gives up while pack.rpm hashes ----
# Its header needs every digest before its first byte: 4.5 GiB hashed twice
# (the file, the payload), seconds here, at open. A stat needs none of it; a
# reader that catches SIGINT (dd) gives up its open at once, and the hashing
# goes on for the next reader.
H=$M/huge/pack.rpm
t0=$(date +%s%N)
check "pack.rpm of a 4.5 GiB file is planned (its size from metadata)" test "$(fsize "$H")" -gt "$HUGE_SIZE"
check "... at once, no file read ($((($(date +%s%N) - t0) / 1000000)) ms)" \
        test $((($(date +%s%N) - t0) / 1000000)) -lt 1500
t0=$(date +%s%N)
timeout -s INT 0.5 dd if="$H" of=/dev/null bs=64k count=1 status=none 2>/dev/null && gave_up=no || gave_up=yes
waited_ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "dd interrupted while the digests are computed" yes "$gave_up"
check "... returns at once (${waited_ms} ms; hashing takes seconds)" test "$waited_ms" -lt 1500
kv=$(T rpm -Kv --nosignature "$H" 2>&1) || true
check_contains "rpm -K of the 4.5 GiB package: payload SHA256 OK" "Payload SHA256 digest: OK" "$kv"
check_contains "... header SHA256 OK" "Header SHA256 digest: OK" "$kv"
check_eq "the interrupted hashing went on: one attempt, not two" 1 \
        "$(grep -c 'huge/pack.rpm: hashed the files' "$MOUNT_LOG")"
check_eq "rpm -qlp --dump: the huge file's size" "$HUGE/share/huge $HUGE_SIZE" \
        "$(T rpm -qp --dump "$H" | awk -v f="$HUGE/share/huge" '$1 == f { print $1, $2 }')"
check_eq "the huge file's digest is the sha256 of its bytes" \
        "$(head -c "$HUGE_SIZE" /dev/zero | sha256sum | cut -c1-64)" \
        "$(T rpm -qp --dump "$H" | awk -v f="$HUGE/share/huge" '$1 == f { print $4 }')"

finish
