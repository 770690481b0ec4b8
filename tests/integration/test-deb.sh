#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# pack.deb on a real mount: dpkg-deb --info, -c and -x against the store (every
# file's bytes and mode), dpkg -i into a fresh --root, the control file derived
# for a one-package profile and for a profile of several, control, postinst and
# triggers from the config, data.tar's members against pack.tar's, exact sizes,
# the same bytes across remounts and from `packfs build`, names dpkg cannot
# install, and a store file changed under the plan.
#
# Usage: PACKFS=build/fs/packfs test-deb.sh   (or: test-deb.sh PACKFS)

source "$(dirname "$0")/lib.sh"

need_fuse
need_tools dpkg dpkg-deb ar tar sha256sum diff cmp timeout
setup_work
make_store

eio="Input/output error"

# ---- the store ----

src=$WORK/src
pad() { # PREFIX LENGTH: PREFIX padded with digits to LENGTH bytes
        local s=$1
        while ((${#s} < $2)); do s+=0123456789; done
        printf '%s\n' "${s:0:$2}"
}
long150=$(pad long-name- 150)
dir60=$(pad dir- 60)
linktarget=../../../$(pad target- 170)

# libfoo: names past ustar's fields (GNU long names in data.tar), odd
# characters, symlinks, an empty file, an executable, a read-only file.
mkdir -p "$src/libfoo-1.0/lib" "$src/libfoo-1.0/share/doc" "$src/libfoo-1.0/bin"
head -c 200003 /dev/urandom >"$src/libfoo-1.0/lib/libfoo.so"
ln -s libfoo.so "$src/libfoo-1.0/lib/libfoo.so.1"
printf 'libfoo documentation\n' >"$src/libfoo-1.0/share/doc/README"
: >"$src/libfoo-1.0/share/empty"
printf '150\n' >"$src/libfoo-1.0/share/$long150"
deep=$src/libfoo-1.0/share/$dir60/$dir60/$dir60/$dir60/$dir60
mkdir -p "$deep"
printf 'deep file, path > 255 bytes\n' >"$deep/$(pad file- 120)"
printf 'space\n' >"$src/libfoo-1.0/share/with space"
printf 'utf-8\n' >"$src/libfoo-1.0/share/ünïcødé.txt"
printf 'quotes\n' >"$src/libfoo-1.0/share/q'uo\"te\\"
printf 'dash\n' >"$src/libfoo-1.0/share/-dash"
ln -s /etc/passwd "$src/libfoo-1.0/share/abs-link"
ln -s "$linktarget" "$src/libfoo-1.0/share/long-link"
printf '#!/bin/sh\necho -lfoo\n' >"$src/libfoo-1.0/bin/foo-config"
chmod 0755 "$src/libfoo-1.0/bin/foo-config"
chmod 0444 "$src/libfoo-1.0/share/doc/README"
LIB=$(add_item "$src/libfoo-1.0")

mkdir -p "$src/app/bin"
printf '#!/bin/sh\n# links %s/lib/libfoo.so\necho app\n' "$LIB" >"$src/app/bin/app"
chmod 0755 "$src/app/bin/app"
APP=$(add_item "$src/app")

mkdir -p "$src/big"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$src/big/data.bin"
BIG=$(add_item "$src/big")

mkdir -p "$src/hello-2.12.1/bin"
printf '#!/bin/sh\necho hello\n' >"$src/hello-2.12.1/bin/hello"
chmod 0755 "$src/hello-2.12.1/bin/hello"
HELLO=$(add_item "$src/hello-2.12.1")

mkdir -p "$src/grows/bin"
head -c 300000 /dev/urandom >"$src/grows/data"
GROWS=$(add_item "$src/grows")

mkdir -p "$src/newline"
printf 'x\n' >"$src/newline/a
b"
NEWLINE=$(add_item "$src/newline")

make_profile demo "$APP" "$BIG"       # several packages: "demo", 0.0.0
make_profile twin "$APP" "$BIG"       # demo's profile item, another name
make_profile hello "$HELLO"           # one package: its name and version
make_profile custom "$HELLO"          # control, postinst, triggers from the config
make_profile grows "$GROWS"
make_profile newline "$NEWLINE"

cat >"$WORK/control" <<'EOF'
Package: packfs-custom
Version: 7.1-2
Architecture: all
Maintainer: Somebody <somebody@example.org>
Description: a control file from the config
 with a second line
EOF
cat >"$WORK/postinst" <<'EOF'
#!/bin/sh
echo "postinst $1" >"$DPKG_ROOT/postinst-ran"
EOF
printf 'interest-noawait packfs-test-trigger\n' >"$WORK/triggers"
config=$WORK/packfs.conf
cat >"$config" <<EOF
[demo]
symlinks = /bin=bin
[custom]
deb-control = $WORK/control
deb-postinst = $WORK/postinst
deb-triggers = $WORK/triggers
EOF

MNT=$WORK/mnt
mount_packfs "$MNT" --config "$config"
views=(demo hello custom)

# ---- the ar archive, sizes ----

declare -A deb_sha
for v in "${views[@]}"; do
        d=$MNT/$v/pack.deb
        check_eq "$v: pack.deb is listed" pack.deb "$(T ls "$MNT/$v" | grep -x pack.deb)"
        check_eq "$v/pack.deb: st_size equals the bytes read" "$(fsize "$d")" "$(bytes_read "$d")"
        check_eq "$v: ar members" "$(printf 'debian-binary\ncontrol.tar\ndata.tar')" "$(T ar t "$d")"
        check_eq "$v: debian-binary" "2.0" "$(T ar p "$d" debian-binary)"
        deb_sha[$v]=$(sha "$d")
done

# ---- control files ----

info=$(T dpkg-deb --info "$MNT/hello/pack.deb")
check_contains "hello: one package: its name" "Package: hello" "$info"
check_contains "hello: one package: its version" "Version: 2.12.1" "$info"
check_contains "hello: Debian's architecture name" "Architecture: $(dpkg --print-architecture)" "$info"
check_contains "hello: Maintainer" "Maintainer: packfs" "$info"
check_contains "hello: Installed-Size" "Installed-Size: " "$info"
info=$(T dpkg-deb --info "$MNT/demo/pack.deb")
check_contains "demo: several packages: the profile's name" "Package: demo" "$info"
check_eq "twin: demo's closure, its own name" twin "$(T dpkg-deb --field "$MNT/twin/pack.deb" Package)"
check_contains "demo: several packages: 0.0.0" "Version: 0.0.0" "$info"
check_eq "a .store/ view: the item's name" "app 0.0.0" \
        "$(T dpkg-deb --field "$MNT/.store/${APP##*/}/pack.deb" Package Version | sed 's/.*: //' | paste -sd' ')"
check_eq "demo: Installed-Size as dpkg counts it (a KiB a member, files rounded up)" \
        "$(T dpkg-deb --fsys-tarfile "$MNT/demo/pack.deb" | tar -tvf - |
                awk '{ n += ($1 ~ /^-/) ? int(($3 + 1023) / 1024) : 1 } END { print n }')" \
        "$(T dpkg-deb --field "$MNT/demo/pack.deb" Installed-Size)"
check_eq "custom: the control file from the config, and Installed-Size" \
        "$(cat "$WORK/control"; echo "Installed-Size: $(T dpkg-deb --field "$MNT/hello/pack.deb" Installed-Size)")" \
        "$(T dpkg-deb --ctrl-tarfile "$MNT/custom/pack.deb" | tar -xOf - ./control)"
check_eq "custom: control.tar's members" "$(printf './\n./control\n./postinst\n./triggers')" \
        "$(T dpkg-deb --ctrl-tarfile "$MNT/custom/pack.deb" | tar -tf -)"
check_eq "custom: postinst as given" "$(cat "$WORK/postinst")" \
        "$(T dpkg-deb --ctrl-tarfile "$MNT/custom/pack.deb" | tar -xOf - ./postinst)"
check_contains "custom: postinst is executable" "-rwxr-xr-x" \
        "$(T dpkg-deb --ctrl-tarfile "$MNT/custom/pack.deb" | tar -tvf - ./postinst)"
check_eq "custom: triggers as given" "$(cat "$WORK/triggers")" \
        "$(T dpkg-deb --ctrl-tarfile "$MNT/custom/pack.deb" | tar -xOf - ./triggers)"

# ---- data.tar against pack.tar and the store ----

tree_listing() { # DIR: type, mode, size and link target of everything under DIR
        (cd "$1" && find . \( -type d -printf '%p d %m\n' \) -o -printf '%p %y %m %s %l\n' | sort)
}
for v in "${views[@]}"; do
        d=$MNT/$v/pack.deb
        check_eq "$v: data.tar holds pack.tar's members, in its order" "$(T tar -tf "$MNT/$v/pack.tar")" \
                "$(T dpkg-deb --fsys-tarfile "$d" | tar -tf -)"
        check_eq "$v: dpkg-deb -c lists them" "$(T tar -tvf "$MNT/$v/pack.tar" | awk '{ print $1, $2, $6 }')" \
                "$(T dpkg-deb -c "$d" | awk '{ print $1, $2, $6 }')"
        ex=$WORK/ex/$v
        mkdir -p "$ex"
        check "$v: dpkg-deb -x extracts" T dpkg-deb -x "$d" "$ex"
        check_eq "$v: the store directory holds exactly the closure" \
                "$(T cat "$MNT/$v/closure" | sed 's|.*/||')" "$(ls -A "$ex$STORE")"
        while read -r item; do
                check "$v: ${item##*/}: every file's bytes (diff -r)" diff -r --no-dereference "$ex$item" "$item"
                check_eq "$v: ${item##*/}: types, modes, sizes and link targets" \
                        "$(tree_listing "$item")" "$(tree_listing "$ex$item")"
        done < <(T cat "$MNT/$v/closure")
done
check_eq "demo: the profile's symlink" "$(profile_item demo)/bin" "$(readlink "$WORK/ex/demo/bin")"
# Without names past ustar's fields, data.tar is pack.tar byte for byte.
check "hello: data.tar is pack.tar, byte for byte" \
        cmp <(T dpkg-deb --fsys-tarfile "$MNT/hello/pack.deb") "$MNT/hello/pack.tar"

# ---- dpkg -i into a fresh root ----

# dpkg_root DIR: an empty dpkg database under DIR.
dpkg_root() {
        mkdir -p "$1/var/lib/dpkg/info" "$1/var/lib/dpkg/updates"
        : >"$1/var/lib/dpkg/status"
}
dpkg_in() { # ROOT ARGS...: dpkg on ROOT, its log there too, scripts run without chroot
        local root=$1
        shift
        T dpkg --root="$root" --log="$root/dpkg.log" --force-not-root --force-script-chrootless "$@"
}
for v in demo custom; do
        root=$WORK/root-$v
        dpkg_root "$root"
        check "$v: dpkg -i installs pack.deb" dpkg_in "$root" -i "$MNT/$v/pack.deb"
        pkg=$(T dpkg-deb --field "$MNT/$v/pack.deb" Package)
        check_contains "$v: dpkg says $pkg is installed" "install ok installed" "$(dpkg_in "$root" -s "$pkg")"
        while read -r item; do
                check "$v: ${item##*/} installed as in the store" diff -r --no-dereference "$root$item" "$item"
                check_eq "$v: ${item##*/}: installed modes" "$(tree_listing "$item")" "$(tree_listing "$root$item")"
        done < <(T cat "$MNT/$v/closure")
        check_contains "$v: dpkg -L lists the store files" "$(T cat "$MNT/$v/closure" | head -n1)" \
                "$(dpkg_in "$root" -L "$pkg")"
done
check_eq "custom: the postinst ran" "postinst configure" "$(cat "$WORK/root-custom/postinst-ran")"

# ---- the same bytes, every way ----

build() { T "$PACKFS" build --cache "$WORK/cache" --store "$STORE" --db "$DB" --profiles "$PROFILES" --config "$config" "$@"; }
for v in "${views[@]}"; do
        check_eq "packfs build $v/pack.deb -o - equals the mount" "${deb_sha[$v]}" \
                "$(build "$v/pack.deb" -o - | sha256sum | cut -d' ' -f1)"
done
check_eq "dd with 4 KiB blocks" "${deb_sha[demo]}" \
        "$(T dd if="$MNT/demo/pack.deb" bs=4k status=none | sha256sum | cut -d' ' -f1)"
check "unmount" unmount_packfs "$MNT" "$MOUNT_PID"
mount_packfs "$MNT" --config "$config" --cache "$WORK/cache2"
for v in "${views[@]}"; do
        check_eq "remount (another cache): $v/pack.deb" "${deb_sha[$v]}" "$(sha "$MNT/$v/pack.deb")"
done
check "unmount" unmount_packfs "$MNT" "$MOUNT_PID"

# A mount over the first cache: stat answers from the recorded item lengths
# and installed sizes (a sizing plan, no walk), and must agree with the bytes.
mount_packfs "$MNT" --config "$config"
for v in "${views[@]}"; do
        check_eq "warm cache: $v/pack.deb: st_size before any read equals the bytes read" \
                "$(fsize "$MNT/$v/pack.deb")" "$(bytes_read "$MNT/$v/pack.deb")"
        check_eq "warm cache: $v/pack.deb: the same bytes" "${deb_sha[$v]}" "$(sha "$MNT/$v/pack.deb")"
done
check "unmount" unmount_packfs "$MNT" "$MOUNT_PID"

# Options are part of the bytes: another control file, another .deb.
printf 'Package: packfs-custom\nVersion: 7.2\nArchitecture: all\nMaintainer: x\nDescription: y\n' >"$WORK/control"
mount_packfs "$MNT" --config "$config"
check_ne "custom: a changed deb-control gives other bytes" "${deb_sha[custom]}" "$(sha "$MNT/custom/pack.deb")"
check_eq "custom: ... with the new control" "7.2" "$(T dpkg-deb --field "$MNT/custom/pack.deb" Version)"
check_eq "hello: unchanged" "${deb_sha[hello]}" "$(sha "$MNT/hello/pack.deb")"

# ---- what a .deb cannot hold, and store files changing under a plan ----

check_fails "newline: a name with a newline gives an error, not a .deb dpkg refuses" "" \
        T stat -c %s "$MNT/newline/pack.deb"
# (The profile's own symlink to it may come first: items are taken by path.)
check "newline: the log names the file" grep -qE "^packfs: ($NEWLINE|$(profile_item newline))/a\$" "$MOUNT_LOG"
check "the other profiles still serve pack.deb" T dpkg-deb -c "$MNT/hello/pack.deb"

check "grows: stat plans pack.deb" test "$(fsize "$MNT/grows/pack.deb")" -gt 300000
exec 5<"$MNT/grows/pack.deb"
chmod u+w "$GROWS" "$GROWS/data"
printf 'more' >>"$GROWS/data"
check_eq "grows: the headers before the file still read" 2048 \
        "$(T dd if="$MNT/grows/pack.deb" iflag=direct bs=2048 count=1 status=none | wc -c)"
check_fails "grows: a read that reaches the changed file gives EIO" "$eio" T cat "$MNT/grows/pack.deb"
check_fails "grows: and through the file opened before" "$eio" T cat <&5
exec 5<&-
check_contains "grows: the log names the file" "$GROWS/data" "$(cat "$MOUNT_LOG")"
check "the server is still up" kill -0 "$MOUNT_PID"
check "unmount" unmount_packfs "$MNT" "$MOUNT_PID"

finish
