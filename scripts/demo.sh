#!/usr/bin/env bash
# The main job (`make demo`): install what is missing, build, and show the
# product working end to end on real material. Grows as the parts land.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

"$root/scripts/install-deps.sh"
model="$("$root/scripts/fetch-model.sh")"
model_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

# The dev profile shares its build with `make test` (dependencies are
# optimised in it, see Cargo.toml), so a newcomer builds the workspace once.
step "build attest and enclave" cargo build --locked -p attest -p enclave
bin="${CARGO_TARGET_DIR:-$root/target}/debug"

vectors="${NITRO_VECTORS_DIR:-$root/../shared/vectors/nitro}"
document="$vectors/marlin_aws_2024-12-13.cbor"
if [ -f "$document" ]; then
    printf '\n==> 1. a real AWS Nitro attestation document, verified at its own time\n'
    "$bin/attest" verify --at doc "$document"
else
    printf '\n(skipping step 1: %s not found; put the shared vectors beside the checkout or set NITRO_VECTORS_DIR)\n' "$document"
fi

printf '\n==> 2. the real model, hash-checked over the bytes it parses, answering a chat prompt\n'
"$bin/enclave" generate --model "$model" --model-sha256 "$model_sha256" --chat --max-tokens 80 \
    "Explain in two sentences what a cryptographic signature proves."
