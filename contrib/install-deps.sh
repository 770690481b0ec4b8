#!/usr/bin/env bash
# Installs what packfs needs to build, run and test on Debian 12. Run as root.
set -euo pipefail

packages=(
  # build
  build-essential meson ninja-build pkg-config
  libfuse3-dev libsqlite3-dev libgcrypt20-dev libarchive-dev libsquashfs-dev
  liblzma-dev libzstd-dev libdeflate-dev zlib1g-dev libinih-dev check libclang-rt-14-dev
  # run
  fuse3
  # tests: the tools users check packs with, and Nix as an oracle
  sqlite3 tar libarchive-tools xz-utils zstd gzip pigz rsync nix-bin python3 procps
  # tests of pack.deb: dpkg and dpkg-deb (in every Debian), ar
  dpkg binutils
  # tests of docker.tar: a real dockerd (started by the test, vfs storage),
  # containerd's ctr (with docker.io), skopeo, a registry to push to (127.0.0.1 only)
  docker.io skopeo docker-registry
  # disk images: the tools that make them (e2fsprogs, sfdisk, GRUB, xorriso),
  # QEMU for the helper VM and the boot tests, and the helper's kernel and
  # busybox (the boot test's profile boots the same Debian kernel)
  qemu-system-x86 qemu-utils grub-pc-bin grub2-common xorriso mtools fdisk e2fsprogs
  busybox-static linux-image-amd64
  # pack.squashfs: unsquashfs and mksquashfs (the test's reader, the bench's
  # baseline), gensquashfs/sqfsdiff of the library packfs writes with
  squashfs-tools squashfs-tools-ng
  # tests of pack.rpm: rpm (rpm -K, -qlp, -i --root), rpm2cpio and cpio
  rpm rpm2cpio cpio
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get install)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
