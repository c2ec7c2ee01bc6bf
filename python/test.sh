#!/usr/bin/env bash
# Build the Python package (abi3 wheel, maturin), install it into the project's venv
# (.cache/python-venv, made by scripts/install-deps.sh) and run its pytest suite: the real
# Nitro documents, and evidence bundles saved by the Rust `attest` CLI from a real enclave
# server (development attester, real model). Needs the `attest` and `enclave` binaries: built
# here into the workspace's target directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${ATTESTED_CACHE_DIR:-$root/.cache}"
venv="$cache/python-venv"
target="${CARGO_TARGET_DIR:-$root/target}"

if [ ! -x "$venv/bin/maturin" ] || [ ! -x "$venv/bin/pytest" ]; then
    echo "python/test.sh: $venv lacks maturin or pytest; run scripts/install-deps.sh" >&2
    exit 1
fi

# The same build as the workspace's tests (same features), so after `cargo nextest run
# --workspace` this reuses its binaries instead of building a second feature set.
cargo test --quiet --workspace --locked --no-run
dist="$(mktemp -d)"
trap 'rm -rf "$dist"' EXIT
CARGO_TARGET_DIR="$target/python" "$venv/bin/maturin" build --quiet --locked \
    --manifest-path "$root/python/Cargo.toml" --interpreter "$venv/bin/python" --out "$dist"
"$venv/bin/pip" install --quiet --force-reinstall --no-deps "$dist"/*.whl

cd "$root/python"
ATTEST_BIN="$target/debug/attest" ENCLAVE_BIN="$target/debug/enclave" \
    "$venv/bin/pytest" -q -p no:cacheprovider tests
