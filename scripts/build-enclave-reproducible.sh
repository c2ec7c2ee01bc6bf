#!/usr/bin/env bash
# Builds the `enclave` binary (or another workspace binary: $1 = package, $2 = binary name)
# reproducibly and statically linked, ready for `eif-build build --enclave-bin`:
#   - the lockfile as committed (--locked), the toolchain named by `rustc -V` printed below;
#   - x86_64-unknown-linux-gnu with crt-static (the enclave image has no libc) and the fixed
#     target CPU of .cargo/config.toml (x86-64-v3: every Nitro-capable instance has it);
#   - every build-machine path remapped (checkout, cargo home, target directory) for Rust and
#     for C code (aws-lc), SOURCE_DATE_EPOCH fixed to the last commit's time;
#   - no incremental state.
# Prints the binary's path and SHA-256: two machines with the same commit and toolchain print
# the same hash, and so eif-build gives them the same PCRs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

package="${1:-enclave}"
binary="${2:-$package}"
target=x86_64-unknown-linux-gnu
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target-reproducible}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}"
export CARGO_INCREMENTAL=0
export TZ=UTC LC_ALL=C

remap="--remap-path-prefix=$root=/build --remap-path-prefix=$cargo_home=/cargo"
remap="$remap --remap-path-prefix=$CARGO_TARGET_DIR=/target"
# RUSTFLAGS replaces .cargo/config.toml's rustflags: repeat the target CPU here. With an
# explicit --target these flags reach only the target's code, not build scripts or macros.
export RUSTFLAGS="-C target-cpu=x86-64-v3 -C target-feature=+crt-static $remap"
prefix_map="-ffile-prefix-map=$root=/build -ffile-prefix-map=$cargo_home=/cargo"
prefix_map="$prefix_map -ffile-prefix-map=$CARGO_TARGET_DIR=/target"
export CFLAGS_x86_64_unknown_linux_gnu="$prefix_map"
export CXXFLAGS_x86_64_unknown_linux_gnu="$prefix_map"

echo "toolchain: $(rustc -V) / $(cargo -V)" >&2
echo "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH" >&2
cargo build --release --locked --target "$target" -p "$package" --bin "$binary"

out="$CARGO_TARGET_DIR/$target/release/$binary"
if readelf -l "$out" 2>/dev/null | grep -q 'Requesting program interpreter'; then
    echo "error: $out is dynamically linked" >&2
    exit 1
fi
echo "$out"
sha256sum "$out"
