#!/usr/bin/env bash
# Short fuzz smoke run of the attestation document parser and verifier (part
# of `make test`). The fuzz project lives outside the workspace.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if ! cargo fuzz --version >/dev/null 2>&1; then
    step "cargo-fuzz (crates.io)" cargo install cargo-fuzz --version 0.13.2 --locked
fi
exec "$root/attestation-verifier/fuzz/smoke.sh" "${FUZZ_SECONDS:-20}"
