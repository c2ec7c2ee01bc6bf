#!/usr/bin/env bash
# Short fuzz smoke run of the attestation document parser and verifier, seeded with the real
# documents. Works on the stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z
# flags). Needs cargo-fuzz: `cargo install cargo-fuzz --locked`.
#
#   attestation-verifier/fuzz/smoke.sh [seconds per target, default 30]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
seconds="${1:-30}"
vectors="${NITRO_VECTORS_DIR:-$here/../../../shared/vectors/nitro}"
if ! ls "$vectors"/*.cbor >/dev/null 2>&1; then
    echo "real Nitro documents not found in $vectors: put shared/vectors/nitro/ beside the" \
         "checkout or set NITRO_VECTORS_DIR" >&2
    exit 1
fi
# The seeds are others' test data: the working corpus lives outside the repository.
corpus_root="${FUZZ_CORPUS_DIR:-${TMPDIR:-/tmp}/attestation-verifier-fuzz-corpus}"
cd "$here/.."
for target in parse_document verify_document; do
    corpus="$corpus_root/$target"
    mkdir -p "$corpus"
    cp "$vectors"/*.cbor "$corpus/"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len=16384 -print_final_stats=1
done
