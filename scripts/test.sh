#!/usr/bin/env bash
# Run every test of the project: formatting and lints, the Rust workspace
# (unit, integration and end-to-end tests), the contracts and a fuzz smoke run.
# This is the README's test command (`make test`) and what CI runs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
# A one-shot run gains nothing from incremental compilation state, which takes gigabytes.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

"$root/scripts/install-deps.sh"

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy (all targets, -D warnings)" \
    cargo clippy --workspace --all-targets --locked -- -D warnings
step "Rust tests (nextest)" \
    cargo nextest run --workspace --locked --no-fail-fast
step "Rust doc tests" cargo test --workspace --locked --doc
step "Python package (maturin wheel, pytest)" "$root/python/test.sh"
if [ -x "$root/contracts/test.sh" ]; then
    step "contracts (forge fmt --check, forge test)" "$root/contracts/test.sh"
fi
if [ -x "$root/scripts/fuzz-smoke.sh" ]; then
    step "fuzz smoke run (attestation document parser)" "$root/scripts/fuzz-smoke.sh"
fi
printf '\nall tests passed\n'
