#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# A real FUSE mount of a small store made with `packfs store`: the layout, the
# `closure` and `pack.tar` views against the store, GNU tar and bsdtar, the
# header fields, every way of reading giving the same bytes, `packfs build`, a
# remount, read-only-ness and profile switching under an open reader.
#
# Usage: PACKFS=build/fs/packfs test-mount-tar.sh   (or: test-mount-tar.sh PACKFS)

source "$(dirname "$0")/lib.sh"

need_fuse
need_tools tar bsdtar rsync dd python3 sha256sum diff sqlite3 timeout
setup_work
make_store

# ---- the store ----

src=$WORK/src
pad() { # PREFIX LENGTH: PREFIX padded with digits to LENGTH bytes
        local s=$1
        while ((${#s} < $2)); do s+=0123456789; done
        printf '%s\n' "${s:0:$2}"
}
long150=$(pad long-name- 150)
long120=$(pad file- 120)
dir60=$(pad dir- 60)
dir110=$(pad Dir- 110)
linktarget=../../../$(pad target- 170)

# libfoo: odd names, symlinks of every kind, an empty file, an executable.
mkdir -p "$src/libfoo/lib" "$src/libfoo/share/doc" "$src/libfoo/bin"
head -c 200003 /dev/urandom >"$src/libfoo/lib/libfoo.so"
ln -s libfoo.so "$src/libfoo/lib/libfoo.so.1"
printf 'libfoo documentation\n' >"$src/libfoo/share/doc/README"
: >"$src/libfoo/share/empty"
printf '150\n' >"$src/libfoo/share/$long150"
deep=$src/libfoo/share/$dir60/$dir60/$dir60/$dir60/$dir60
mkdir -p "$deep" "$src/libfoo/share/$dir110"
printf 'deep file, path > 255 bytes\n' >"$deep/$long120"
printf 'in a directory with a 110-byte name\n' >"$src/libfoo/share/$dir110/x"
printf 'space\n' >"$src/libfoo/share/with space"
printf 'utf-8\n' >"$src/libfoo/share/ünïcødé.txt"
printf 'quotes\n' >"$src/libfoo/share/q'uo\"te"
ln -s /etc/passwd "$src/libfoo/share/abs-link"
ln -s ../nowhere "$src/libfoo/share/dangling"
ln -s "$linktarget" "$src/libfoo/share/long-link"
ln -s doc "$src/libfoo/share/doclink"
printf '#!/bin/sh\necho -lfoo\n' >"$src/libfoo/bin/foo-config"
chmod 0755 "$src/libfoo/bin/foo-config"
LIB=$(add_item "$src/libfoo")

# big: a file over 1 MiB, and one of an odd size.
mkdir -p "$src/big"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$src/big/data.bin"
head -c 1048577 /dev/zero >"$src/big/zeros.bin"
BIG=$(add_item "$src/big")

# app: refers to libfoo (found by scanning), so libfoo is in its closure.
mkdir -p "$src/app/bin" "$src/app/share/app"
printf '#!/bin/sh\n# links %s/lib/libfoo.so\necho app\n' "$LIB" >"$src/app/bin/app"
chmod 0755 "$src/app/bin/app"
printf 'config\n' >"$src/app/share/app/config"
APP=$(add_item "$src/app")

mkdir -p "$src/tool/bin"
printf '#!/bin/sh\necho tool\n' >"$src/tool/bin/tool"
chmod 0755 "$src/tool/bin/tool"
TOOL=$(add_item "$src/tool")

make_profile demo "$APP" "$BIG"
make_profile other "$TOOL"
make_profile per-user/alice/guix-profile "$APP"

config=$WORK/packfs.conf
cat >"$config" <<'EOF'
[*]
localstatedir = false

[demo]
symlinks = /bin=bin

[per-user/*]
symlinks = /usr/bin=bin /etc/app=share/app
EOF

views=(demo other per-user/alice/guix-profile ".store/${LIB##*/}")
view_item() { # VIEW: the store item a view is over
        if [[ $1 == .store/* ]]; then echo "$STORE/${1#.store/}"; else profile_item "$1"; fi
}

MNT=$WORK/mnt
mount_packfs "$MNT" --config "$config"
first_pid=$MOUNT_PID

# Sizes as a fresh mount reports them, before anything is read (a read that ends
# early would correct the kernel's idea of the size and hide a wrong st_size).
declare -A st_size
for v in "${views[@]}"; do
        for f in closure pack.tar; do
                st_size[$v/$f]=$(fsize "$MNT/$v/$f")
        done
done

# ---- the layout ----

check_eq "root lists the profiles and .store" \
        "$(printf '%s\n' .store demo demo-1-link other other-1-link per-user)" "$(T ls -A "$MNT")"
check_eq "nested profile directory" \
        "$(printf '%s\n' guix-profile guix-profile-1-link)" "$(T ls -A "$MNT/per-user/alice")"
check_eq ".store lists every valid path" \
        "$(sqlite3 "$DB" 'select path from ValidPaths' | sed 's|.*/||' | sort)" "$(T ls -A "$MNT/.store")"
for v in "${views[@]}"; do
        listing=$(T ls -A "$MNT/$v")
        check "$v holds closure" grep -qx closure <<<"$listing"
        check "$v holds pack.tar" grep -qx pack.tar <<<"$listing"
done
check_fails "no such profile" "No such file" T ls "$MNT/nonexistent"
check_fails "no such pack" "No such file" T cat "$MNT/demo/pack.nonexistent"

# ---- closure ----

demo_closure=$(pf_store closure "$(profile_item demo)")
for item in "$APP" "$LIB" "$BIG" "$(profile_item demo)"; do
        check "demo's closure (packfs store closure) holds ${item##*/}" grep -qxF "$item" <<<"$demo_closure"
done
for v in "${views[@]}"; do
        check_eq "$v/closure equals packfs store closure" \
                "$(pf_store closure "$(view_item "$v")")" "$(T cat "$MNT/$v/closure")"
done

# ---- sizes ----

for v in "${views[@]}"; do
        for f in closure pack.tar; do
                check_eq "$v/$f: st_size equals the bytes read" "${st_size[$v/$f]}" "$(bytes_read "$MNT/$v/$f")"
        done
done

# ---- pack.tar against the store, with GNU tar and bsdtar ----

# tree_listing DIR: type, mode, size and link target of everything under DIR.
tree_listing() {
        (cd "$1" && find . \( -type d -printf '%p d %m\n' \) -o -printf '%p %y %m %s %l\n' | sort)
}

store_rel=${STORE#/}
check_pack() { # VIEW EXTRACTED_DIR TOOL
        local v=$1 ex=$2 tool=$3 item expected_top
        expected_top=$(T cat "$MNT/$v/closure" | sed 's|.*/||')
        check_eq "$v ($tool): the store directory holds exactly the closure" \
                "$expected_top" "$(ls -A "$ex/$store_rel")"
        while read -r item; do
                check "$v ($tool): ${item##*/} extracts identical to the store (diff -r)" \
                        diff -r --no-dereference "$ex$item" "$item"
                check_eq "$v ($tool): ${item##*/}: types, modes, sizes and link targets" \
                        "$(tree_listing "$item")" "$(tree_listing "$ex$item")"
        done < <(T cat "$MNT/$v/closure")
}

pack_sha=()
for v in "${views[@]}"; do
        pk=$MNT/$v/pack.tar
        gnu=$WORK/ex-gnu/$v bsd=$WORK/ex-bsd/$v
        mkdir -p "$gnu" "$bsd"
        check "$v: GNU tar extracts pack.tar" T tar -xpf "$pk" -C "$gnu"
        check "$v: bsdtar extracts pack.tar" T bsdtar -xpf "$pk" -C "$bsd"
        check_pack "$v" "$gnu" "GNU tar"
        check_pack "$v" "$bsd" bsdtar
        check "$v: GNU tar and bsdtar extract the same tree" diff -r --no-dereference "$gnu" "$bsd"

        # Nothing but the store's parents, the closure and the configured links.
        outside=$(cd "$gnu" && find . -path "./$store_rel/*" -prune -o -print | sort)
        expected=$(
                d=.
                echo .
                IFS=/ read -ra parts <<<"$store_rel"
                for p in "${parts[@]}"; do d=$d/$p && echo "$d"; done
                case $v in
                demo) echo ./bin ;;
                per-user/*) printf '%s\n' ./etc ./etc/app ./usr ./usr/bin ;;
                esac
        )
        check_eq "$v: nothing outside the store but its parents and the configured symlinks" \
                "$(sort <<<"$expected")" "$outside"

        # GNU tar's --sort=name order, "./" names, as `tar -C root -cf - .` has them.
        check_eq "$v: members in GNU tar's --sort=name order" \
                "$(T tar --sort=name -cf - -C "$gnu" . | tar -tf -)" "$(T tar -tf "$pk")"

        # Header fields: mtime 1, uid/gid 0 (root), modes as in the store, and
        # only regular files, directories and symlinks.
        check "$v: tar header fields: mtime 1, root 0/0, store modes, no other types" \
                python3 - "$pk" "$STORE" <<'EOF'
import os, stat, sys, tarfile
pack, store = sys.argv[1], sys.argv[2]
bad = 0
def complain(m):
    global bad
    bad += 1
    if bad <= 20:
        print("  " + m, file=sys.stderr)
with tarfile.open(pack, "r:") as t:
    for m in t:
        if not m.name.startswith("./") and m.name != ".":
            complain(f"{m.name}: name does not start with ./")
        if m.mtime != 1: complain(f"{m.name}: mtime {m.mtime}")
        if m.uid != 0 or m.gid != 0: complain(f"{m.name}: uid/gid {m.uid}/{m.gid}")
        if m.uname != "root" or m.gname != "root": complain(f"{m.name}: owner {m.uname}/{m.gname}")
        if m.type not in (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE):
            complain(f"{m.name}: type {m.type!r}")
        path = m.name[1:].rstrip("/") or "/"
        if path.startswith(store + "/"):
            st = os.lstat(path)
            if stat.S_IMODE(st.st_mode) != m.mode:
                complain(f"{m.name}: mode {m.mode:o}, store has {stat.S_IMODE(st.st_mode):o}")
            if stat.S_ISREG(st.st_mode) and (not m.isreg() or m.size != st.st_size):
                complain(f"{m.name}: not a regular file of size {st.st_size}")
            if stat.S_ISLNK(st.st_mode) and (not m.issym() or m.linkname != os.readlink(path)):
                complain(f"{m.name}: not a symlink to {os.readlink(path)}")
            if stat.S_ISDIR(st.st_mode) and not m.isdir():
                complain(f"{m.name}: not a directory")
        elif m.isdir() and m.mode != 0o755:
            complain(f"{m.name}: directory mode {m.mode:o}, expected 755")
# Every raw header, pax extended headers included: mtime 1, uid/gid 0, valid checksum.
data = open(pack, "rb").read()
off = 0
while off + 512 <= len(data):
    h = data[off:off + 512]
    if h == bytes(512):
        break
    num = lambda f: int(f.split(b"\0")[0].strip() or b"0", 8)
    name = h[:100].split(b"\0")[0].decode(errors="replace")
    if num(h[136:148]) != 1: complain(f"raw header {name} at {off}: mtime {num(h[136:148])}")
    if num(h[108:116]) or num(h[116:124]): complain(f"raw header {name} at {off}: uid/gid not 0")
    if num(h[148:156]) != sum(h[:148]) + 8 * 32 + sum(h[156:]): complain(f"raw header {name}: checksum")
    if h[156:157] not in (b"0", b"2", b"5", b"x"): complain(f"raw header {name}: type {h[156:157]!r}")
    off += 512 + (num(h[124:136]) + 511) // 512 * 512
if data[off:] != bytes(len(data) - off) or len(data) - off < 1024 or len(data) % 512:
    complain(f"no clean end of archive (two zero blocks) at {off} of {len(data)}")
sys.exit(1 if bad else 0)
EOF
        listing=$(T tar --numeric-owner --full-time -tvf "$pk")
        check_eq "$v: GNU tar lists every member as 0/0 at 1970-01-01 00:00:01" "" \
                "$(awk '$2 != "0/0" || $4 != "1970-01-01" || $5 != "00:00:01"' <<<"$listing")"
        pack_sha+=("$(sha "$pk")")
done

# The long names really are long (so the pax and ustar-prefix paths are used).
deep_member=.${LIB}/share/$dir60/$dir60/$dir60/$dir60/$dir60/$long120
check "a member path over 255 bytes (${#deep_member})" test "${#deep_member}" -gt 255
check "it is in the pack" grep -qxF "$deep_member" < <(T tar -tf "$MNT/demo/pack.tar")
check_eq "a symlink target over 100 bytes survives" "$linktarget" \
        "$(readlink "$WORK/ex-gnu/demo$LIB/share/long-link")"
check_eq "an absolute symlink is stored, not followed" "/etc/passwd" \
        "$(readlink "$WORK/ex-bsd/demo$LIB/share/abs-link")"
check "the executable stays executable" test -x "$WORK/ex-gnu/demo$APP/bin/app"
check "the empty file is there and empty" test -f "$WORK/ex-gnu/demo$LIB/share/empty" -a \
        ! -s "$WORK/ex-gnu/demo$LIB/share/empty"

# Symlinks from the configuration point into the profile item.
check_eq "demo: /bin -> <profile item>/bin" "$(profile_item demo)/bin" "$(readlink "$WORK/ex-gnu/demo/bin")"
check_eq "alice: /usr/bin -> <profile item>/bin" "$(profile_item per-user/alice/guix-profile)/bin" \
        "$(readlink "$WORK/ex-gnu/per-user/alice/guix-profile/usr/bin")"
check_eq "alice: /etc/app -> <profile item>/share/app" "$(profile_item per-user/alice/guix-profile)/share/app" \
        "$(readlink "$WORK/ex-bsd/per-user/alice/guix-profile/etc/app")"
check "demo: bin/app is reachable through /bin" \
        test -x "$WORK/ex-gnu/demo$(readlink "$WORK/ex-gnu/demo$(profile_item demo)/bin")/app"
check "other: no /bin (not configured)" test ! -e "$WORK/ex-gnu/other/bin" -a ! -L "$WORK/ex-gnu/other/bin"

# ---- the same bytes, every way (page cache dropped before each) ----

drop() { dd if="$1" iflag=nocache count=0 status=none; }
ways_check() { # FILE REF_SHA
        local f=$1 ref=$2 size out=$WORK/copy
        size=$(fsize "$f")
        drop "$f"
        check_eq "$f: cat" "$ref" "$(T cat "$f" | sha256sum | cut -d' ' -f1)"
        drop "$f"
        rm -f "$out" && T cp "$f" "$out"
        check_eq "$f: cp" "$ref" "$(sha "$out")"
        drop "$f"
        rm -f "$out" && T rsync "$f" "$out"
        check_eq "$f: rsync" "$ref" "$(sha "$out")"
        drop "$f"
        check_eq "$f: dd bs=7777" "$ref" "$(T dd if="$f" bs=7777 status=none | sha256sum | cut -d' ' -f1)"
        check_eq "$f: dd bs=7777 iflag=direct (no page cache)" "$ref" \
                "$(T dd if="$f" bs=7777 iflag=direct status=none | sha256sum | cut -d' ' -f1)"
        drop "$f"
        # Pieces at odd offsets and lengths, put back together.
        local cuts=(0 1 511 513 4097 65537 1048575 1048577 2097153) prev=0 c
        (
                for c in "${cuts[@]}" "$size"; do
                        ((c > size)) && c=$size
                        ((c <= prev)) && continue
                        dd if="$f" bs=1M iflag=skip_bytes,count_bytes skip="$prev" count=$((c - prev)) status=none
                        prev=$c
                done
        ) >"$out"
        check_eq "$f: dd bs=1M pieces at odd offsets" "$ref" "$(sha "$out")"
}

ref=$WORK/ref.tar
T cat "$MNT/demo/pack.tar" >"$ref"
ref_sha=$(sha "$ref")
check "the pack is over 3 MiB" test "$(fsize "$ref")" -gt $((3 * 1024 * 1024))
ways_check "$MNT/demo/pack.tar" "$ref_sha"
ways_check "$MNT/per-user/alice/guix-profile/pack.tar" "${pack_sha[2]}"
ways_check "$MNT/demo/closure" "$(sha "$MNT/demo/closure")"

# Reads at random offsets and lengths, compared with the reference copy.
drop "$MNT/demo/pack.tar"
check "random-offset reads (O_DIRECT and cached) match" T python3 - "$MNT/demo/pack.tar" "$ref" <<'EOF'
import os, random, sys
f, ref = sys.argv[1], sys.argv[2]
data = open(ref, "rb").read()
rng = random.Random(1234)
for flags in (os.O_RDONLY, os.O_RDONLY | os.O_DIRECT):
    fd = os.open(f, flags)
    for _ in range(300):
        off = rng.randrange(0, len(data) + 1000)
        n = rng.choice([1, 3, 511, 512, 4096, 7777, 65536, 131073, 1 << 20])
        got = os.pread(fd, n, off)
        if got != data[off:off + n]:
            sys.exit(f"mismatch at offset {off} length {n} (flags {flags:o})")
    os.close(fd)
EOF

# Many readers at once, reading differently.
drop "$MNT/demo/pack.tar"
drop "$MNT/other/pack.tar"
par=$WORK/parallel
mkdir -p "$par"
readers=()
T cat "$MNT/demo/pack.tar" | sha256sum >"$par/1" &
readers+=($!)
T dd if="$MNT/demo/pack.tar" bs=4096 status=none | sha256sum >"$par/2" &
readers+=($!)
T dd if="$MNT/demo/pack.tar" bs=7777 iflag=direct status=none | sha256sum >"$par/3" &
readers+=($!)
T dd if="$MNT/demo/pack.tar" bs=1M status=none | sha256sum >"$par/4" &
readers+=($!)
T cat "$MNT/other/pack.tar" | sha256sum >"$par/5" &
readers+=($!)
wait "${readers[@]}" # not the server, which is a child too
for i in 1 2 3 4; do
        check_eq "parallel reader $i" "$ref_sha" "$(cut -d' ' -f1 "$par/$i")"
done
check_eq "parallel reader of another pack" "${pack_sha[1]}" "$(cut -d' ' -f1 "$par/5")"

# ---- packfs build: the same bytes without FUSE ----

build() { T "$PACKFS" build --cache "$WORK/cache" --store "$STORE" --db "$DB" --profiles "$PROFILES" --config "$config" "$@"; }
build demo/pack.tar -o "$WORK/built.tar" || fail "packfs build demo/pack.tar failed"
check_eq "packfs build -o FILE equals the mount" "$ref_sha" "$(sha "$WORK/built.tar")"
check_eq "packfs build -o - equals the mount" "$ref_sha" "$(build demo/pack.tar -o - | sha256sum | cut -d' ' -f1)"
for i in "${!views[@]}"; do
        v=${views[$i]}
        check_eq "packfs build $v/pack.tar" "${pack_sha[$i]}" "$(build "$v/pack.tar" -o - | sha256sum | cut -d' ' -f1)"
        check_eq "packfs build $v/closure" "$(T cat "$MNT/$v/closure")" "$(build "$v/closure" -o -)"
done
check_fails "packfs build of an unknown format fails" "" build demo/pack.bogus -o -
check_fails "packfs build of an unknown profile fails" "" build nope/pack.tar -o -

# ---- a second mount (daemonized this time) gives the same bytes ----

check "the first server exits 0 after unmounting" unmount_packfs "$MNT" "$first_pid"
check "nothing is mounted after unmounting" not_mounted "$MNT"
mount_packfs_daemon "$MNT" --config "$config"
daemon_pid=$MOUNT_PID
for i in "${!views[@]}"; do
        check_eq "remount: ${views[$i]}/pack.tar" "${pack_sha[$i]}" "$(sha "$MNT/${views[$i]}/pack.tar")"
done

# ---- read-only ----

erofs="Read-only file system"
check_fails "touch on a pack" "$erofs" T touch "$MNT/demo/pack.tar"
check_fails "echo > pack" "$erofs" T bash -c "echo x >'$MNT/demo/pack.tar'"
check_fails "echo >> pack" "$erofs" T bash -c "echo x >>'$MNT/demo/pack.tar'"
check_fails "truncate a pack" "$erofs" T truncate -s 0 "$MNT/demo/pack.tar"
check_fails "create a file in a view" "$erofs" T touch "$MNT/demo/newfile"
check_fails "create a file in the root" "$erofs" T bash -c "echo x >'$MNT/newfile'"
check_fails "mkdir" "$erofs" T mkdir "$MNT/newdir"
check_fails "rm a pack" "$erofs|Permission denied" T rm -f "$MNT/demo/closure"
check_fails "rename a profile" "$erofs|Permission denied" T mv "$MNT/demo" "$MNT/demo2"
check_fails "chmod a pack" "$erofs" T chmod 0777 "$MNT/demo/pack.tar"
check_fails "symlink in the root" "$erofs" T ln -s x "$MNT/link"
check_fails "open O_RDWR" "$erofs" T python3 -c "import os,sys; os.open(sys.argv[1], os.O_RDWR)" "$MNT/demo/pack.tar"
check_eq "the pack is unchanged" "$ref_sha" "$(sha "$MNT/demo/pack.tar")"

# ---- profile switching: an open file keeps its snapshot ----

old_closure=$(T cat "$MNT/demo/closure")
drop "$MNT/demo/pack.tar"
exec 3<"$MNT/demo/pack.tar" 4<"$MNT/demo/closure"
make_profile demo "$TOOL" "$LIB"
check_eq "the profile link moved to generation 2" demo-2-link "$(readlink "$PROFILES/demo")"
new_closure=$(pf_store closure "$(profile_item demo)")
check_ne "generation 2 has another closure" "$old_closure" "$new_closure"
sleep 1.5 # past the attribute and entry timeouts
check_eq "an open pack.tar keeps the old bytes" "$ref_sha" "$(T sha256sum <&3 | cut -d' ' -f1)"
check_eq "an open closure keeps the old closure" "$old_closure" "$(T cat <&4)"
exec 3<&- 4<&-
new_size=$(fsize "$MNT/demo/pack.tar")
check_eq "a new open sees the new closure" "$new_closure" "$(T cat "$MNT/demo/closure")"
new_sha=$(sha "$MNT/demo/pack.tar")
check_ne "a new open sees a new pack.tar" "$ref_sha" "$new_sha"
check_eq "the new pack.tar equals packfs build" "$new_sha" "$(build demo/pack.tar -o - | sha256sum | cut -d' ' -f1)"
check_eq "the new pack.tar: st_size equals the bytes read" "$new_size" "$(bytes_read "$MNT/demo/pack.tar")"
check "the new pack.tar holds tool" grep -qxF ".$TOOL/bin/tool" < <(T tar -tf "$MNT/demo/pack.tar")
check_eq "generation 1 still has the old closure" "$old_closure" "$(T cat "$MNT/demo-1-link/closure")"
# (Its options are those of the name "demo-1-link": no [demo] symlinks.)
check_eq "generation 1's pack.tar equals packfs build" \
        "$(build demo-1-link/pack.tar -o - | sha256sum | cut -d' ' -f1)" "$(sha "$MNT/demo-1-link/pack.tar")"
check "demo-2-link is listed" grep -qx demo-2-link < <(T ls "$MNT")

check "the daemon's mount goes away on unmount" unmount_packfs "$MNT"
for ((i = 0; i < 100; i++)); do
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
done
check "the daemon exits after unmounting" not_running "$daemon_pid"

finish
