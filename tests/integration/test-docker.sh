#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# docker.tar (issue 10): the archive `docker load` reads, checked by its own
# structure (every layer's sha256 is its diff_id, the config's is its name)
# and by a real dockerd: load each variant, run the profile's program, share
# layers between profiles, /tmp 1777, symlinks kept, the same bytes on every
# mount and from `packfs build`.
#
# Starts its own dockerd (vfs storage, no iptables, no bridge) with its own
# data root and socket, and stops it by pid.
#
# Usage: PACKFS=build/fs/packfs test-docker.sh   (or: test-docker.sh PACKFS)
source "$(dirname "$0")/lib.sh"
need_fuse
need_tools dockerd ctr skopeo docker-registry python3 gcc zstd cmp sha256sum timeout
[[ $(id -u) == 0 ]] || skip "needs root (to run dockerd)"
# Debian's client, for the daemon it ships with.
DOCKER_BIN=/usr/bin/docker
[[ -x $DOCKER_BIN ]] || DOCKER_BIN=$(command -v docker) || skip "no docker client"
setup_work
make_store

# A static program, so the image needs nothing but its closure: prints a
# greeting, or a path's mode ("mode PATH"), or a symlink's target ("link PATH").
mkdir -p "$WORK/src/hello/bin" "$WORK/src/data/share/data" "$WORK/src/links/share"
cat >"$WORK/hello.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
        struct stat st;
        char target[4096];
        ssize_t n;
        if (argc == 3 && !strcmp(argv[1], "mode")) {
                if (lstat(argv[2], &st) < 0)
                        return perror(argv[2]), 1;
                printf("%o\n", (unsigned) (st.st_mode & 07777));
                return 0;
        }
        if (argc == 3 && !strcmp(argv[1], "link")) {
                n = readlink(argv[2], target, sizeof(target) - 1);
                if (n < 0)
                        return perror(argv[2]), 1;
                target[n] = 0;
                printf("%s\n", target);
                return 0;
        }
        printf("hello from packfs\n");
        return 0;
}
C
gcc -static -O2 -o "$WORK/src/hello/bin/hello" "$WORK/hello.c" || skip "gcc cannot link statically"
echo "some data" >"$WORK/src/data/share/data/file"
ln -s /etc/shadow "$WORK/src/links/share/shadow" # hostile: must stay a symlink
HELLO=$(add_item "$WORK/src/hello")
DATA=$(add_item "$WORK/src/data")
LINKS=$(add_item "$WORK/src/links")
make_profile demo "$HELLO" "$DATA" "$LINKS"
make_profile other "$HELLO"
# The same items as demo: the same profile item, another name (and tag).
make_profile twin "$HELLO" "$DATA" "$LINKS"
# Past max-layers: LIB (referred to by four items) and LIB2 (by two) keep
# layers of their own, the rest share one.
mkdir -p "$WORK/src/lib/lib" "$WORK/src/lib2/lib"
echo lib >"$WORK/src/lib/lib/lib.txt"
echo lib2 >"$WORK/src/lib2/lib/lib2.txt"
LIB=$(add_item "$WORK/src/lib")
LIB2=$(add_item "$WORK/src/lib2")
user_item() { # NAME CONTENT REFS...: an item whose file names REFS (so it refers to them)
        mkdir -p "$WORK/src/$1/share"
        { echo "$2"; printf '%s\n' "${@:3}"; } >"$WORK/src/$1/share/refs-$1"
        add_item "$WORK/src/$1"
}
U1=$(user_item u1 one "$LIB" "$LIB2")
U2=$(user_item u2 two "$LIB" "$LIB2")
U3=$(user_item u3 three "$LIB")
U4=$(user_item u4 four "$LIB")
make_profile many "$HELLO" "$LIB" "$LIB2" "$U1" "$U2" "$U3" "$U4"
# A store item whose file will change behind the database's back.
mkdir -p "$WORK/src/changing/share"
head -c 300000 /dev/urandom >"$WORK/src/changing/share/data"
CHANGING=$(add_item "$WORK/src/changing")
make_profile changing "$CHANGING"
# A profile the way Guix makes them: its search paths in etc/profile; and an
# entry point, so `docker run IMAGE` with no command runs it.
mkdir -p "$WORK/src/guixenv/etc"
cat >"$WORK/src/guixenv/etc/profile" <<'SH'
# Source this file to define all the relevant environment variables in Bash
# for this profile.  You may want to define the 'GUIX_PROFILE' environment
export PATH="${GUIX_PROFILE:-/gnu/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-profile}/bin${PATH:+:}$PATH"
export GUIX_LOCPATH="${GUIX_PROFILE:-/gnu/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-profile}/lib/locale${GUIX_LOCPATH:+:}$GUIX_LOCPATH"
export EVIL="$(touch /tmp/evil)"
SH
GUIXENV=$(add_item "$WORK/src/guixenv")
make_profile guixish "$HELLO" "$GUIXENV"
printf '[many]\nmax-layers = 5\n[guixish]\nentry-point = bin/hello\n' >"$WORK/layers.ini"
mkdir -p "$PROFILES/per-user/Alice"
pf_store profile "per-user/Alice/Guix_Profile" "$HELLO" >/dev/null || die "nested profile"

M=$WORK/mnt
mount_packfs "$M" --config "$WORK/layers.ini"

# ---- the archive's own structure ----
check_docker_tar() { # FILE: every digest checked; prints "TAG LAYERS"
        python3 - "$1" <<'PY'
import hashlib, json, sys, tarfile
t = tarfile.open(sys.argv[1])
m = json.load(t.extractfile("manifest.json"))
assert len(m) == 1
m = m[0]
cfg_bytes = t.extractfile(m["Config"]).read()
assert hashlib.sha256(cfg_bytes).hexdigest() + ".json" == m["Config"], "the config's name is not its sha256"
cfg = json.loads(cfg_bytes)
ids = cfg["rootfs"]["diff_ids"]
assert len(ids) == len(m["Layers"]) == len(cfg["history"]), "layers, diff_ids and history differ in number"
for layer, diff_id in zip(m["Layers"], ids):
    assert "sha256:" + hashlib.sha256(t.extractfile(layer).read()).hexdigest() == diff_id, layer
assert cfg["created"] == "1970-01-01T00:00:01Z"
repos = json.load(t.extractfile("repositories"))
name, tag = m["RepoTags"][0].rsplit(":", 1)
assert repos[name][tag] == m["Layers"][-1].split("/")[0]
print(m["RepoTags"][0], len(ids))
PY
}
check_eq "demo/docker.tar: digests, tag and layers (3 items, the profile, the last)" "demo:latest 5" \
        "$(check_docker_tar "$M/demo/docker.tar")"
check_eq "docker.tar size = bytes read" "$(fsize "$M/demo/docker.tar")" "$(bytes_read "$M/demo/docker.tar")"
check_eq "twin (demo's closure, another name) is tagged after itself" "twin:latest 5" \
        "$(check_docker_tar "$M/twin/docker.tar")"
check_eq "... in docker.tar.gz too (demo's read first)" "demo:latest 5 twin:latest 5" \
        "$(check_docker_tar "$M/demo/docker.tar.gz") $(check_docker_tar "$M/twin/docker.tar.gz")"
check_eq "a nested profile's tag is a valid repository name" "per-user/alice/guix_profile:latest 3" \
        "$(check_docker_tar "$M/per-user/Alice/Guix_Profile/docker.tar")"
check "packfs build gives the mount's bytes" cmp "$M/demo/docker.tar" \
        <("$PACKFS" build --store "$STORE" --db "$DB" --profiles "$PROFILES" --cache "$WORK/cache-build" \
                demo/docker.tar -o -)
sha_demo=$(sha256sum <"$M/demo/docker.tar")
unmount_packfs "$M" "$MOUNT_PID"
mount_packfs "$M" --config "$WORK/layers.ini"
check_eq "twin's docker.tar.gz from the cache keeps its own tag" "twin:latest 5" \
        "$(check_docker_tar "$M/twin/docker.tar.gz")"
check_eq "the same bytes on a second mount (digests from the cache)" "$sha_demo" "$(sha256sum <"$M/demo/docker.tar")"
# The layer of HELLO holds its members as pack.tar does: the same names and bytes.
layer_members() { # DOCKER_TAR ITEM: name and sha256 of each member of ITEM, from its layer
        python3 - "$1" "$2" <<'PY'
import hashlib, io, json, sys, tarfile
t = tarfile.open(sys.argv[1])
prefix = "./" + sys.argv[2].lstrip("/")
for layer in json.load(t.extractfile("manifest.json"))[0]["Layers"]:
    inner = tarfile.open(fileobj=io.BytesIO(t.extractfile(layer).read()))
    names = [m for m in inner.getmembers() if m.name.startswith(prefix)]
    for m in names:
        data = inner.extractfile(m).read() if m.isfile() else b""
        print(m.name, m.mode, m.linkname, hashlib.sha256(data).hexdigest())
PY
}
pack_members() { # PACK_TAR ITEM
        python3 - "$1" "$2" <<'PY'
import hashlib, sys, tarfile
t = tarfile.open(sys.argv[1])
prefix = "./" + sys.argv[2].lstrip("/")
for m in t.getmembers():
    if m.name.startswith(prefix):
        data = t.extractfile(m).read() if m.isfile() else b""
        print(m.name, m.mode, m.linkname, hashlib.sha256(data).hexdigest())
PY
}
check_eq "the hello layer holds the item's members as pack.tar does" "$(pack_members "$M/demo/pack.tar" "$HELLO")" \
        "$(layer_members "$M/demo/docker.tar" "$HELLO")"

# ---- skopeo reads it too ----
skopeo_layers=$(T skopeo inspect "docker-archive:$M/demo/docker.tar" |
        python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)["Layers"]))')
check_eq "skopeo inspect docker-archive: lists the diff_ids as layers" \
        "$(python3 - "$M/demo/docker.tar" <<'PY'
import json, sys, tarfile
t = tarfile.open(sys.argv[1])
m = json.load(t.extractfile("manifest.json"))[0]
print(" ".join(json.load(t.extractfile(m["Config"]))["rootfs"]["diff_ids"]))
PY
)" "$skopeo_layers"

# ---- oci/: the same image as an OCI image layout ----
check_eq "a view lists oci/ as a directory" "d" "$(stat -c %A "$M/demo/oci" | cut -c1)"
check_eq "oci/ holds blobs, index.json, oci-layout" $'blobs\nindex.json\noci-layout' "$(T ls "$M/demo/oci")"
bad=0
for blob in "$M"/demo/oci/blobs/sha256/*; do
        [[ $(sha256sum <"$blob" | cut -c1-64) == "$(basename "$blob")" ]] || bad=$((bad + 1))
done
check_eq "every blob's name is its sha256 (of $(ls "$M/demo/oci/blobs/sha256" | wc -l) blobs)" 0 "$bad"
oci_layers=$(T skopeo inspect "oci:$M/demo/oci" |
        python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)["Layers"]))')
check_eq "skopeo inspect oci: has docker.tar's layers" "$skopeo_layers" "$oci_layers"

# ---- bad input: a store file that changed since planning ----
# The layer gives EIO and a log line naming the file; no digest of the wrong
# bytes is recorded: once the file is back, a fresh mount's digests are right.
exec 3<"$M/changing/docker.tar" # planned at open
cp -p "$CHANGING/share/data" "$WORK/data.orig"
echo "more bytes" >>"$CHANGING/share/data"
check_fails "reading the layer of a changed store file fails" "Input/output error" bash -c "cat <&3"
exec 3<&-
check_contains "the log names the changed file" "$CHANGING/share/data: changed since it was planned" "$(cat "$MOUNT_LOG")"
cp -p "$WORK/data.orig" "$CHANGING/share/data"
unmount_packfs "$M" "$MOUNT_PID"
mount_packfs "$M" --config "$WORK/layers.ini"
check_eq "the file restored, a fresh mount's digests are right" "changing:latest 3" \
        "$(check_docker_tar "$M/changing/docker.tar")"

# ---- max-layers ----
history() { # DOCKER_TAR: each layer's diff_id and what made it
        python3 - "$1" <<'PY'
import json, sys, tarfile
t = tarfile.open(sys.argv[1])
m = json.load(t.extractfile("manifest.json"))[0]
cfg = json.load(t.extractfile(m["Config"]))
for d, h in zip(cfg["rootfs"]["diff_ids"], cfg["history"]):
    print(d, h["created_by"])
PY
}
check_eq "many: 8 items in 5 layers" "many:latest 5" "$(check_docker_tar "$M/many/docker.tar")"
gen1=$(history "$M/many/docker.tar")
check_eq "many: the profile's item, LIB and LIB2 (the most referred to) keep layers of their own" \
        "$(printf '%s\n' "$LIB" "$LIB2" "$(profile_item many)" | sort | paste -sd' ')" \
        "$(awk '$2 ~ /^\// { print $2 }' <<<"$gen1" | sort | paste -sd' ')"
check_contains "many: the other five share one" "5 store items with fewer referrers" "$gen1"
U4_NEW=$(user_item u4 "four, changed" "$LIB")
make_profile many "$HELLO" "$LIB" "$LIB2" "$U1" "$U2" "$U3" "$U4_NEW"
sleep 1.5 # past the entry timeout
gen2=$(history "$M/many/docker.tar")
check_eq "many, one package changed: only the shared layer and the profile's own change" "3 5" \
        "$(comm -12 <(cut -d' ' -f1 <<<"$gen1" | sort) <(cut -d' ' -f1 <<<"$gen2" | sort) | wc -l) $(wc -l <<<"$gen2")"

# ---- a real dockerd ----
D=$WORK/docker
mkdir -p "$D/root" "$D/exec"
dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
        --data-root "$D/root" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" \
        -H "unix://$D/docker.sock" >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
PIDS+=("$DOCKERD_PID")
LOGS+=("$WORK/dockerd.log")
EXIT_HOOKS+=("kill -TERM $DOCKERD_PID 2>/dev/null")
DOCKER=("$DOCKER_BIN" -H "unix://$D/docker.sock")
for ((i = 0; i < 600; i++)); do
        "${DOCKER[@]}" version >/dev/null 2>&1 && break
        kill -0 "$DOCKERD_PID" 2>/dev/null || die "dockerd exited: $(tail -n 20 "$WORK/dockerd.log")"
        sleep 0.1
done
check "dockerd answers" "${DOCKER[@]}" version

for f in docker.tar docker.tar.gz docker.tar.xz docker.tar.zst; do
        "${DOCKER[@]}" rmi -f demo:latest >/dev/null 2>&1 || true
        case $f in
        *.zst) loaded=$(zstd -dcq <"$M/demo/$f" | T "${DOCKER[@]}" load 2>&1) ;; # 20.10 cannot read zstd
        *) loaded=$(T "${DOCKER[@]}" load <"$M/demo/$f" 2>&1) ;;
        esac
        check_contains "docker load < demo/$f" "Loaded image: demo:latest" "$loaded"
        check_eq "docker run demo hello, from $f" "hello from packfs" \
                "$(T "${DOCKER[@]}" run --rm --network none demo:latest hello 2>&1)"
done
check_eq "/tmp is 1777 inside" "1777" "$(T "${DOCKER[@]}" run --rm --network none demo:latest hello mode /tmp 2>&1)"
check_eq "a store symlink stays a symlink" "/etc/shadow" \
        "$(T "${DOCKER[@]}" run --rm --network none demo:latest hello link "$LINKS/share/shadow" 2>&1)"
check_contains "docker load < other/docker.tar" "Loaded image: other:latest" \
        "$(T "${DOCKER[@]}" load <"$M/other/docker.tar" 2>&1)"
layers() { "${DOCKER[@]}" image inspect -f '{{range .RootFS.Layers}}{{println .}}{{end}}' "$1" | grep . | sort; }
# Shared: the hello item's layer, and the last one (both hold only /tmp and
# the store's parents: no symlinks, no database); not the profile items'.
check_eq "demo and other share the hello item's layer and the last one" "2 of 5 and 3" \
        "$(comm -12 <(layers demo:latest) <(layers other:latest) | wc -l) of $(layers demo:latest | wc -l) and $(layers other:latest | wc -l)"
check_contains "docker load < many/docker.tar (5 layers)" "Loaded image: many:latest" \
        "$(T "${DOCKER[@]}" load <"$M/many/docker.tar" 2>&1)"
check_eq "docker run many hello" "hello from packfs" \
        "$(T "${DOCKER[@]}" run --rm --network none many:latest hello 2>&1)"
# containerd, on dockerd's own socket (its snapshotter "native": no overlayfs needed).
CTR=(ctr --address "$D/exec/containerd/containerd.sock" --namespace packfs-test)
check_contains "ctr images import demo/docker.tar" "docker.io/library/demo:latest" \
        "$(T "${CTR[@]}" images import --snapshotter native "$M/demo/docker.tar" 2>&1)"
check_eq "ctr run demo hello" "hello from packfs" \
        "$(T "${CTR[@]}" run --rm --snapshotter native docker.io/library/demo:latest packfs-hello hello 2>&1)"
# skopeo copies oci/ into the daemon, and to a registry the daemon pulls from.
check "skopeo copy oci: docker-daemon:" T skopeo copy --quiet "oci:$M/demo/oci" \
        "docker-daemon:demo-oci:latest" --dest-daemon-host "unix://$D/docker.sock"
check_eq "docker run the image skopeo copied from oci/" "hello from packfs" \
        "$(T "${DOCKER[@]}" run --rm --network none demo-oci:latest hello 2>&1)"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
PIDS+=("$REGISTRY_PID")
LOGS+=("$WORK/registry.log")
EXIT_HOOKS+=("kill -TERM $REGISTRY_PID 2>/dev/null")
for ((i = 0; i < 100; i++)); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
        sleep 0.1
done
check "skopeo copy oci: docker://127.0.0.1:$PORT/demo:latest" T skopeo copy --quiet --dest-tls-verify=false \
        "oci:$M/demo/oci" "docker://127.0.0.1:$PORT/demo:latest"
check "docker pull from the registry" T "${DOCKER[@]}" pull -q "127.0.0.1:$PORT/demo:latest"
check_eq "docker run the pulled image" "hello from packfs" \
        "$(T "${DOCKER[@]}" run --rm --network none "127.0.0.1:$PORT/demo:latest" hello 2>&1)"
kill -TERM "$REGISTRY_PID"
env_of() { "${DOCKER[@]}" image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$1" | grep .; }
check_eq "the image's Env: the profile's bin, and share (a Nix-style profile)" \
        "PATH=$(profile_item demo)/bin"$'\n'"XDG_DATA_DIRS=$(profile_item demo)/share" "$(env_of demo:latest)"
check_contains "docker load < guixish/docker.tar" "Loaded image: guixish:latest" \
        "$(T "${DOCKER[@]}" load <"$M/guixish/docker.tar" 2>&1)"
check_eq "a Guix profile's Env is its etc/profile's search paths (and no shell code)" \
        "PATH=/gnu/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-profile/bin"$'\n'"GUIX_LOCPATH=/gnu/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-profile/lib/locale" \
        "$(env_of guixish:latest)"
check_eq "the entry point runs with no command" "hello from packfs" \
        "$(T "${DOCKER[@]}" run --rm --network none guixish:latest 2>&1)"
check_eq "arguments go to the entry point" "1777" \
        "$(T "${DOCKER[@]}" run --rm --network none guixish:latest mode /tmp 2>&1)"
check_eq "the entry point is the profile's" "[$(profile_item guixish)/bin/hello]" \
        "$("${DOCKER[@]}" image inspect -f '{{.Config.Entrypoint}}' guixish:latest)"

kill -TERM "$DOCKERD_PID"
for ((i = 0; i < 200; i++)); do
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.1
done
check "dockerd stopped" bash -c "! kill -0 $DOCKERD_PID 2>/dev/null"
unmount_packfs "$M" "$MOUNT_PID"
finish
