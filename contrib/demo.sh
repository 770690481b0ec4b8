#!/usr/bin/env bash
# The README's first command: installs the dependencies, builds packfs, makes a
# small store of its own, mounts it and shows what is there. Run it as root or
# as a user with sudo. Leaves the mount up; `umount /var/tmp/packfs-demo/mnt`
# takes it down.
set -euo pipefail
# Root is needed (apt-get, FUSE mounts as root): a desktop re-runs this under
# sudo, a container already is root and may have no sudo at all.
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "$0: run this as root (there is no sudo here)" >&2
    exit 1
  fi
  exec sudo --preserve-env=PACKFS_DEMO_DIR,BUILD_DIR,ASAN_BUILD_DIR,CI bash "$0" "$@"
fi
cd "$(dirname "$0")/.."

demo=${PACKFS_DEMO_DIR:-/var/tmp/packfs-demo}
mnt=$demo/mnt

bash contrib/install-deps.sh >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
packfs=$PWD/build/fs/packfs
# Run through sudo: the build directory goes back to whoever ran it.
if [ -n "${SUDO_UID:-}" ]; then chown -R "$SUDO_UID:$SUDO_GID" build; fi

# Start over: a previous demo may still be mounted.
if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; fi
rm -rf "$demo"
mkdir -p "$demo/src" "$mnt"
store=(--store "$demo/store" --db "$demo/db.sqlite")

"$packfs" store init "${store[@]}"

# A library, and a program that refers to it by store path (a reference).
mkdir -p "$demo/src/greeting/share/greeting"
echo "Hello from a packfs store!" > "$demo/src/greeting/share/greeting/message"
greeting=$("$packfs" store add "${store[@]}" "$demo/src/greeting")

# A shell, as a store item: the program's interpreter is in its closure (as
# Guix and Nix patch shebangs), so it also runs in a container of the closure.
mkdir -p "$demo/src/busybox/bin"
cp /bin/busybox "$demo/src/busybox/bin/busybox"
ln -s busybox "$demo/src/busybox/bin/sh"
ln -s busybox "$demo/src/busybox/bin/cat"
busybox=$("$packfs" store add "${store[@]}" "$demo/src/busybox")

mkdir -p "$demo/src/hello/bin"
cat > "$demo/src/hello/bin/hello" <<SH
#!$busybox/bin/sh
$busybox/bin/cat $greeting/share/greeting/message
SH
chmod +x "$demo/src/hello/bin/hello"
hello=$("$packfs" store add "${store[@]}" "$demo/src/hello")

"$packfs" store profile "${store[@]}" --profiles "$demo/profiles" demo "$hello" >/dev/null

cat > "$demo/packfs.ini" <<'INI'
[*]
symlinks = /bin=bin
INI

"$packfs" mount "${store[@]}" --profiles "$demo/profiles" --config "$demo/packfs.ini" \
        --cache "$demo/cache" "$mnt"

echo "== packfs mounted at $mnt"
echo "\$ ls $mnt"
ls "$mnt"
echo "\$ ls -l $mnt/demo     # compressed packs are not listed before they are encoded"
ls -l "$mnt/demo"
echo "\$ cat $mnt/demo/closure"
cat "$mnt/demo/closure"
echo "\$ tar tvf $mnt/demo/pack.tar"
tar tvf "$mnt/demo/pack.tar"
echo "\$ tar xf $mnt/demo/pack.tar -C $demo/unpacked"
mkdir -p "$demo/unpacked"
tar xf "$mnt/demo/pack.tar" -C "$demo/unpacked"
echo "\$ diff -r --no-dereference $demo/unpacked$demo/store $demo/store && echo identical"
diff -r --no-dereference "$demo/unpacked$demo/store" "$demo/store" && echo identical
echo "\$ $demo/unpacked$hello/bin/hello"
"$demo/unpacked$hello/bin/hello"
for z in "gzip -dc:gz" "xz -dc:xz" "zstd -dcq:zst"; do
        echo "\$ ${z%%:*} < $mnt/demo/pack.tar.${z##*:} | cmp - $mnt/demo/pack.tar && echo identical"
        ${z%%:*} < "$mnt/demo/pack.tar.${z##*:}" | cmp - "$mnt/demo/pack.tar" && echo identical
done
echo "\$ ls -l $mnt/demo     # now they are, with their exact sizes"
ls -l "$mnt/demo"
# With a Docker daemon at hand, the profile as an image.
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        echo "\$ docker load < $mnt/demo/docker.tar.xz && docker run --rm demo hello"
        docker load < "$mnt/demo/docker.tar.xz" && docker run --rm --network none demo hello
else
        echo "== with dockerd running: docker load < $mnt/demo/docker.tar.xz && docker run --rm demo hello"
fi
echo "\$ packfs status --cache $demo/cache"
"$packfs" status --cache "$demo/cache"
echo "== done; unmount with: ${SUDO_USER:+sudo }umount $mnt"
