#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# packfs over a real Nix store (/nix/store, Nix's own database and profiles):
# two tiny derivations built offline, one referring to the other, put in two
# profiles (`nix-env --set`, and a user environment made by `nix-env -i`). The
# mount's closure must be `nix-store -qR`'s, pack.tar must extract to the store
# items byte for byte with the same NAR hashes as Nix's database, files that
# auto-optimise-store hard-linked come out as regular files, and switching a
# profile with nix-env while mounted shows in new opens, not in open files.
#
# Needs root and Nix (Debian's nix-bin); exits 77 (skip) without them.
#
# Usage: PACKFS=build/fs/packfs test-nix.sh   (or: test-nix.sh PACKFS)

source "$(dirname "$0")/lib.sh"

need_fuse
need_tools nix-build nix-env nix-store nix-hash tar bsdtar python3 diff
[[ $(id -u) == 0 ]] || skip "needs root (nix-build writes /nix/store)"
STORE=/nix/store
DB=/nix/var/nix/db/db.sqlite
PROFILES=/nix/var/nix/profiles
[[ -d $STORE && -f $DB && -d $PROFILES ]] || skip "no Nix store at /nix"
setup_work

nix_opts=(--option sandbox false --option substituters '' --option build-users-group '')

# ---- two derivations, the top one referring to the other ----

marker="packfs-$$-$(date +%s%N)"
cat >"$WORK/expr.nix" <<'EOF'
{ marker }:
let
  mk = name: script: derivation {
    inherit name marker;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
  };
in rec {
  dep = mk "packfs-test-dep" ''
    set -e
    mkdir -p $out/lib $out/share/doc $out/share/empty-dir
    echo "dep $marker" > $out/lib/data
    ln -s data $out/lib/link
    ln -s /etc/hostname $out/lib/absolute-link
    head -c 1500000 /dev/urandom > $out/lib/blob
    : > $out/share/empty
    echo "the same in both $marker" > $out/share/same
    printf '#!/bin/sh\necho dep\n' > $out/share/doc/tool
    chmod 0755 $out/share/doc/tool
  '';
  top = mk "packfs-test-top" ''
    set -e
    mkdir -p $out/bin $out/share
    printf '#!/bin/sh\ncat ${dep}/lib/data\n' > $out/bin/hello
    chmod +x $out/bin/hello
    echo "the same in both $marker" > $out/share/same
  '';
}
EOF
out=$(T nix-build "${nix_opts[@]}" --option auto-optimise-store true --argstr marker "$marker" \
        "$WORK/expr.nix" -A top -A dep --no-out-link 2>"$WORK/nix-build.log") ||
        die "nix-build failed: $(tail -5 "$WORK/nix-build.log")"
{ read -r TOP && read -r DEP; } <<<"$out"
[[ $TOP == "$STORE"/*-packfs-test-top && $DEP == "$STORE"/*-packfs-test-dep ]] || die "nix-build printed '$out'"
say "built $TOP and $DEP"

P_SET=packfs-test-$$-set
P_ENV=packfs-test-$$-env
# shellcheck disable=SC2317 # run by the exit trap
nix_cleanup() {
        local paths p d pass n
        rm -f "$PROFILES/$P_SET" "$PROFILES/$P_SET"-*-link "$PROFILES/$P_ENV" "$PROFILES/$P_ENV"-*-link
        # Our paths and their derivations (all unique to this run), referrers first.
        paths=$(
                for p in "$TOP" "$DEP" ${ENV_ITEM:-}; do
                        nix-store -qR "$p" 2>/dev/null
                        d=$(nix-store -qd "$p" 2>/dev/null) && [[ -e $d ]] && nix-store -qR "$d" 2>/dev/null
                done | grep -E -- '-(packfs-test-(top|dep)(\.drv)?|user-environment(\.drv)?|env-manifest\.nix)$' | sort -u
        )
        for ((pass = 0; pass < 5; pass++)); do
                n=0
                for p in $paths; do
                        [[ -e $p ]] || continue
                        nix-store --delete "$p" >/dev/null 2>&1 && n=$((n + 1))
                done
                ((n == 0)) && break
        done
}
at_exit nix_cleanup

T nix-env "${nix_opts[@]}" -p "$PROFILES/$P_SET" --set "$TOP" 2>/dev/null || die "nix-env --set failed"
T nix-env "${nix_opts[@]}" -p "$PROFILES/$P_ENV" -i "$TOP" 2>"$WORK/nix-env.log" ||
        die "nix-env -i failed: $(tail -5 "$WORK/nix-env.log")"
ENV_ITEM=$(readlink -f "$PROFILES/$P_ENV")
check "the user environment is a store item" test "${ENV_ITEM%-user-environment}" != "$ENV_ITEM"

hardlinked=0
if [[ $(stat -c %h "$TOP/share/same") -gt 1 && $(stat -c %i "$TOP/share/same") == $(stat -c %i "$DEP/share/same") ]]; then
        hardlinked=1
else
        say "note: auto-optimise-store did not hard-link share/same; that check is skipped"
fi

# ---- the mount (daemonized, as users run it) ----

MNT=$WORK/mnt
mount_packfs_daemon "$MNT"
views=("$P_SET" "$P_ENV" ".store/${DEP##*/}")
view_item() { if [[ $1 == .store/* ]]; then echo "$STORE/${1#.store/}"; else readlink -f "$PROFILES/$1"; fi; }

root_listing=$(T ls -A "$MNT")
for p in "$P_SET" "$P_ENV" .store; do
        check "$p is listed" grep -qxF "$p" <<<"$root_listing"
done

for v in "${views[@]}"; do
        item=$(view_item "$v")
        closure=$(T cat "$MNT/$v/closure")
        check_eq "$v: closure equals nix-store -qR" "$(nix-store -qR "$item" | sort)" "$closure"
        check_eq "$v: closure equals packfs store closure" "$(pf_store closure "$item")" "$closure"
        size=$(fsize "$MNT/$v/pack.tar") # before any read
        check_eq "$v: st_size equals the bytes read" "$size" "$(bytes_read "$MNT/$v/pack.tar")"

        for tool in tar bsdtar; do
                ex=$WORK/ex-$tool/$v
                mkdir -p "$ex"
                check "$v: $tool extracts pack.tar" T "$tool" -xpf "$MNT/$v/pack.tar" -C "$ex"
                check_eq "$v ($tool): the store holds exactly the closure" \
                        "$(sed 's|.*/||' <<<"$closure")" "$(ls -A "$ex$STORE")"
                while read -r p; do
                        check "$v ($tool): ${p##*/}: identical to the store (diff -r)" \
                                diff -r --no-dereference "$ex$p" "$p"
                        check_eq "$v ($tool): ${p##*/}: NAR hash as in Nix's database" \
                                "$(nix-store -q --hash "$p")" "sha256:$(nix-hash --type sha256 --base32 "$ex$p")"
                done <<<"$closure"
        done
        check_eq "$v: packfs build gives the same bytes" "$(sha "$MNT/$v/pack.tar")" \
                "$(T "$PACKFS" build --cache "$WORK/cache" --store "$STORE" --db "$DB" --profiles "$PROFILES" "$v/pack.tar" -o - |
                        sha256sum | cut -d' ' -f1)"
done
check_eq "the user environment's bin links to top's" "$TOP/bin" "$(readlink "$WORK/ex-bsdtar/$P_ENV$ENV_ITEM/bin")"

# Hard links in the store are regular files in the pack.
if ((hardlinked)); then
        check "hard-linked files are regular files, each with its data" \
                python3 - "$MNT/$P_SET/pack.tar" "$TOP/share/same" "$DEP/share/same" <<'EOF'
import os, sys, tarfile
pack, *paths = sys.argv[1:]
with tarfile.open(pack) as t:
    for p in paths:
        m = t.getmember("." + p)
        if not m.isreg() or m.size != os.path.getsize(p):
            sys.exit(f"{p}: type {m.type!r} size {m.size}")
EOF
        check_eq "extracted, they are not hard links" "1 1" \
                "$(stat -c %h "$WORK/ex-tar/$P_SET$TOP/share/same" "$WORK/ex-tar/$P_SET$DEP/share/same" | xargs)"
fi

# ---- nix-env switches a profile while it is mounted and open ----

old_sha=$(sha "$MNT/$P_SET/pack.tar")
old_closure=$(T cat "$MNT/$P_SET/closure")
dd if="$MNT/$P_SET/pack.tar" iflag=nocache count=0 status=none
exec 3<"$MNT/$P_SET/pack.tar"
T nix-env "${nix_opts[@]}" -p "$PROFILES/$P_SET" --set "$DEP" 2>/dev/null || die "nix-env --set (generation 2) failed"
check_eq "nix-env made generation 2" "$P_SET-2-link" "$(readlink "$PROFILES/$P_SET")"
sleep 1.5 # past the attribute and entry timeouts
check_eq "the open pack.tar keeps generation 1's bytes" "$old_sha" "$(T sha256sum <&3 | cut -d' ' -f1)"
exec 3<&-
check_eq "a new open sees generation 2's closure" "$(nix-store -qR "$DEP" | sort)" "$(T cat "$MNT/$P_SET/closure")"
check_ne "and a new pack.tar" "$old_sha" "$(sha "$MNT/$P_SET/pack.tar")"
check_eq "generation 1 is still there" "$old_closure" "$(T cat "$MNT/$P_SET-1-link/closure")"

# A store path Nix adds while mounted shows in .store.
mkdir -p "$WORK/added"
echo "$marker" >"$WORK/added/file"
added=$(nix-store --add "$WORK/added")
at_exit "nix-store --delete '$added' >/dev/null 2>&1 || true"
sleep 1.1
check "a path nix-store --add added while mounted is in .store" grep -qxF "${added##*/}" < <(T ls -A "$MNT/.store")
check_eq "and its closure is served" "$added" "$(T cat "$MNT/.store/${added##*/}/closure")"

check "unmount" unmount_packfs "$MNT"

finish
