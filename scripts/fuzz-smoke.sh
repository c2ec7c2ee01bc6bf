#!/usr/bin/env bash
# Short fuzz smoke run of the attestation document parser and verifier (part
# of `make test`). The fuzz project lives outside the workspace.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
exec "$root/attestation-verifier/fuzz/smoke.sh" "${FUZZ_SECONDS:-20}"
