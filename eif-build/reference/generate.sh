#!/usr/bin/env bash
# Regenerates ../tests/data/reference/ with the official aws-nitro-enclaves-image-format crate
# (see README.md). Needs OpenSSL's headers (libssl-dev) and the `openssl` command.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../tests/data/reference"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
# A throwaway P-384 signing identity, as `nitro-cli build-enclave --signing-certificate` takes.
openssl ecparam -name secp384r1 -genkey -noout -out "$work/key.pem"
openssl req -new -x509 -key "$work/key.pem" -sha384 -days 36500 \
    -subj "/CN=eif-build reference signer" -out "$out/signing-cert.pem"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$work/target}" \
    cargo run --release --locked --manifest-path "$here/Cargo.toml" -- \
    "$out" "$out/signing-cert.pem" "$work/key.pem"
ls -l "$out"
