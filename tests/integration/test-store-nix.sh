#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# packfs's store writer against Nix: the same trees added with `nix-store --add`
# and with the store write API (through tests/unit/storewrite-driver, until
# `packfs store add` exists) must get
#   - the same store path (computed for /nix/store),
#   - the same NAR hash (`nix-store --dump | sha256sum`, and Nix's database),
#   - the same narSize,
# and packfs must record the references it finds by scanning.
#
# Part 2, where a private mount namespace is possible, runs the writer with the
# store directory /nix/store itself (a tmpfs over it, with a database of its
# own), so the full paths, references included, are compared end to end.
#
# Needs root and nix-store; exits 77 (skip) without them.
#
# Usage: STOREWRITE_DRIVER=build/tests/unit/storewrite-driver test-store-nix.sh
#    or: test-store-nix.sh DRIVER

set -euo pipefail

driver=${STOREWRITE_DRIVER:-${1:-}}
if [[ -z $driver || ! -x $driver ]]; then
        echo "storewrite driver not given (STOREWRITE_DRIVER or \$1)" >&2
        exit 1
fi
driver=$(realpath "$driver")
if ! command -v nix-store >/dev/null || ! command -v nix-hash >/dev/null; then
        echo "SKIP: nix-store not installed"
        exit 77
fi
if [[ $(id -u) != 0 ]]; then
        echo "SKIP: needs root (nix-store --add writes /nix/store)"
        exit 77
fi

work=$(mktemp -d /tmp/packfs-store-nix.XXXXXX)
cleanup() {
        chmod -R u+w "$work" 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT

failures=0
fail() {
        echo "FAIL: $*" >&2
        failures=$((failures + 1))
}
check_eq() { # what expected actual
        if [[ $2 != "$3" ]]; then
                fail "$1: expected '$2', got '$3'"
        else
                echo "ok: $1"
        fi
}

# ---- the trees ----

trees=$work/trees
mkdir -p "$trees"
# A marker that changes per run keeps Nix from finding items from earlier runs.
marker="run $$ $(date +%s%N)"

make_trees() {
        local t=$trees
        mkdir -p "$t/files"
        printf 'hello %s\n' "$marker" >"$t/files/hello.txt"
        printf 'second\n' >"$t/files/b"
        head -c 300000 /dev/urandom >"$t/files/random.bin"
        printf 'Z' >"$t/files/Z"
        printf '_' >"$t/files/_"

        mkdir -p "$t/exec/bin"
        printf '#!/bin/sh\necho %s\n' "$marker" >"$t/exec/bin/tool"
        chmod 0755 "$t/exec/bin/tool"
        printf 'owner only\n' >"$t/exec/bin/ux" && chmod 0700 "$t/exec/bin/ux"
        printf 'group only\n' >"$t/exec/bin/gx" && chmod 0654 "$t/exec/bin/gx"

        mkdir -p "$t/links/sub"
        printf '%s\n' "$marker" >"$t/links/target"
        ln -s target "$t/links/rel"
        ln -s ../target "$t/links/sub/up"
        ln -s /nonexistent/dangling "$t/links/dangling"
        ln -s sub "$t/links/dirlink"

        mkdir -p "$t/nested/a/b/c/d/e"
        printf 'deep %s\n' "$marker" >"$t/nested/a/b/c/d/e/deep"
        mkdir -p "$t/nested/a/empty" "$t/nested/x"
        : >"$t/nested/x/empty-file"

        mkdir -p "$t/emptydir"
        : >"$t/emptyfile"
        printf '%s\n' "$marker" >"$t/single.txt"
        ln -s "/some/where $marker" "$t/symlink-item"
}

# Writes a tree whose contents mention the store path $2 (in a file, a symlink
# target and, by hash part only, a file name).
make_ref_tree() { # dir ref_path
        mkdir -p "$1"
        printf '#!/bin/sh\nexec %s/bin/tool "$@"\n' "$2" >"$1/run"
        chmod 0755 "$1/run"
        ln -s "$2/hello.txt" "$1/link"
        local base=${2##*/}
        : >"$1/${base:0:32}.stamp"
}

make_trees
items=(files exec links nested emptydir emptyfile single.txt symlink-item)

nar_sha256() { nix-store --dump "$1" | sha256sum | cut -d' ' -f1; }

# ---- part 1: our own store under $work, compared with /nix/store ----

store=$work/store
db=$work/var/db/db.sqlite
"$driver" init "$store" "$db"
"$driver" init "$store" "$db" # idempotent

declare -A nix_path our_path
for name in "${items[@]}"; do
        src=$trees/$name
        nix_path[$name]=$(nix-store --add "$src")
        our_path[$name]=$("$driver" add "$store" "$db" "$src")

        check_eq "$name: path for /nix/store" "${nix_path[$name]}" "$("$driver" nixpath /nix/store "$src")"
        check_eq "$name: path in our store" "$("$driver" nixpath "$store" "$src")" "${our_path[$name]}"

        read -r our_hash our_size our_ca < <("$driver" info "$db" "${our_path[$name]}")
        hex=$(nar_sha256 "${nix_path[$name]}")
        check_eq "$name: NAR hash (nix-store --dump)" "sha256:$hex" "$our_hash"
        check_eq "$name: NAR hash of our copy" "$hex" "$(nar_sha256 "${our_path[$name]}")"
        nix_b32=$(nix-store -q --hash "${nix_path[$name]}")
        check_eq "$name: NAR hash in Nix's database" "$nix_b32" "sha256:$(nix-hash --type sha256 --to-base32 "$hex")"
        check_eq "$name: narSize" "$(nix-store -q --size "${nix_path[$name]}")" "$our_size"
        check_eq "$name: ca" "fixed:r:sha256:${nix_b32#sha256:}" "$our_ca"
        check_eq "$name: no references" "" "$("$driver" refs "$db" "${our_path[$name]}")"
        # Adding again changes nothing.
        check_eq "$name: idempotent" "${our_path[$name]}" "$("$driver" add "$store" "$db" "$src")"
done

# A tree referring to an earlier item: the same name as `nix-store --add` gives
# (which records no references), and the reference recorded by packfs.
make_ref_tree "$work/ours/withref" "${our_path[files]}"
withref=$("$driver" add "$store" "$db" "$work/ours/withref")
check_eq "withref: path as nix-store --add" "$(nix-store --add "$work/ours/withref")" \
        "$("$driver" nixpath /nix/store "$work/ours/withref")"
check_eq "withref: path in our store" "$("$driver" nixpath "$store" "$work/ours/withref")" "$withref"
check_eq "withref: references" "${our_path[files]}" "$("$driver" refs "$db" "$withref")"
read -r our_hash our_size _ < <("$driver" info "$db" "$withref")
check_eq "withref: NAR hash" "sha256:$(nar_sha256 "$work/ours/withref")" "$our_hash"

# Profiles: a union of two items, then a new generation.
link=$("$driver" profile "$store" "$db" "$work/profiles" per-user/alice/demo "${our_path[exec]}" "${our_path[nested]}")
check_eq "profile: link" "$work/profiles/per-user/alice/demo" "$link"
check_eq "profile: generation" "demo-1-link" "$(readlink "$link")"
check_eq "profile: bin/tool" "${our_path[exec]}/bin/tool" "$(readlink "$link/bin")/tool"
check_eq "profile: runs" "$marker" "$("$link/bin/tool")"
gen1=$(readlink "$(dirname "$link")/demo-1-link")
check_eq "profile: references" "$(printf '%s\n' "${our_path[exec]}" "${our_path[nested]}" | sort)" \
        "$("$driver" refs "$db" "$gen1")"
"$driver" profile "$store" "$db" "$work/profiles" per-user/alice/demo "${our_path[links]}" >/dev/null
check_eq "profile: second generation" "demo-2-link" "$(readlink "$link")"

# The database has Nix's schema.
if command -v sqlite3 >/dev/null && [[ -f /nix/var/nix/db/db.sqlite ]]; then
        check_eq "schema as Nix's" "$(sqlite3 /nix/var/nix/db/db.sqlite .schema)" "$(sqlite3 "$db" .schema)"
        check_eq "WAL mode" "wal" "$(sqlite3 "$db" 'pragma journal_mode')"
fi

# ---- part 2: store directory /nix/store itself, in a private mount namespace ----

if unshare -m true 2>/dev/null; then
        make_ref_tree "$work/nixref/withref" "${nix_path[files]}"
        nix_withref=$(nix-store --add "$work/nixref/withref")
        results=$work/ns-results
        # shellcheck disable=SC2016
        unshare -m bash -euc '
                driver=$1 work=$2 results=$3; shift 3
                mount -t tmpfs packfs-test /nix/store
                "$driver" init /nix/store "$work/ns/db.sqlite"
                for src in "$@"; do
                        "$driver" add /nix/store "$work/ns/db.sqlite" "$src"
                done >"$results"
                "$driver" refs "$work/ns/db.sqlite" "$(tail -n1 "$results")" >"$results.refs"
        ' ns "$driver" "$work" "$results" \
                $(for name in "${items[@]}"; do echo "$trees/$name"; done) "$work/nixref/withref"
        expected=$(for name in "${items[@]}"; do echo "${nix_path[$name]}"; done; echo "$nix_withref")
        check_eq "in /nix/store: the same paths as nix-store --add" "$expected" "$(cat "$results")"
        check_eq "in /nix/store: withref's references" "${nix_path[files]}" "$(cat "$results.refs")"
else
        echo "note: no private mount namespace; the /nix/store part is skipped"
fi

if ((failures > 0)); then
        echo "$failures check(s) failed" >&2
        exit 1
fi
echo "all checks passed"
