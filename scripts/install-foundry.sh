#!/usr/bin/env bash
# Install the pinned Foundry binaries (forge, anvil, cast) and the Solidity
# compiler (solc-js) from npm into a cache folder. Needs only node and npm.
# Idempotent: a second run with everything in place does no network access.
#
# Prints shell `export` lines for the installed paths on stdout, so callers can do
#   eval "$(scripts/install-foundry.sh)"
# and then use $FORGE, $ANVIL, $CAST and $SOLC (the native-looking solc wrapper
# that forge needs: `forge build --use "$SOLC" --offline`).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${ATTESTED_CACHE_DIR:-$root/.cache}"
prefix="$cache/foundry"

foundry_version="1.7.1"
solc_version="0.8.30"
packages=(
    "@foundry-rs/forge-linux-amd64@$foundry_version"
    "@foundry-rs/anvil-linux-amd64@$foundry_version"
    "@foundry-rs/cast-linux-amd64@$foundry_version"
    "solc@$solc_version"
)

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *)
        echo "install-foundry: only linux x86_64 is supported (the npm packages pinned here are linux-amd64)" >&2
        exit 1
        ;;
esac
command -v npm >/dev/null || { echo "install-foundry: npm is required" >&2; exit 1; }

# The package.json in the prefix records the pinned versions; reinstall when it
# differs (a version bump here) or a binary is missing.
manifest="$prefix/package.json"
wanted_manifest="$(printf '{\n  "private": true,\n  "dependencies": {\n    "@foundry-rs/forge-linux-amd64": "%s",\n    "@foundry-rs/anvil-linux-amd64": "%s",\n    "@foundry-rs/cast-linux-amd64": "%s",\n    "solc": "%s"\n  }\n}\n' \
    "$foundry_version" "$foundry_version" "$foundry_version" "$solc_version")"

find_bin() {
    # The binary's location inside the npm package (searched, so that a layout
    # change between package versions does not break the script silently).
    local package_dir="$prefix/node_modules/@foundry-rs/$1-linux-amd64"
    [ -d "$package_dir" ] || return 1
    find "$package_dir" -type f -name "$1" -perm -u+x 2>/dev/null | head -n1
}

installed() {
    [ -f "$manifest" ] && [ "$(cat "$manifest")" = "$wanted_manifest" ] || return 1
    [ -f "$prefix/node_modules/solc/package.json" ] || return 1
    grep -q "\"version\": \"$solc_version\"" "$prefix/node_modules/solc/package.json" || return 1
    for tool in forge anvil cast; do
        [ -n "$(find_bin "$tool")" ] || return 1
    done
}

if ! installed; then
    echo "install-foundry: installing ${packages[*]} into $prefix" >&2
    mkdir -p "$prefix"
    printf '%s' "$wanted_manifest" >"$manifest"
    # --ignore-scripts: the packages need no install scripts; the binaries are
    # in the tarballs. Some tarballs lose the executable bit, so restore it.
    (cd "$prefix" && npm install --no-audit --no-fund --ignore-scripts --no-save --loglevel=error "${packages[@]}" >&2)
    for tool in forge anvil cast; do
        find "$prefix/node_modules/@foundry-rs/$tool-linux-amd64" -type f -name "$tool" -exec chmod +x {} +
    done
    installed || { echo "install-foundry: installation incomplete under $prefix" >&2; exit 1; }
fi

solc_wrapper="$root/contracts/tools/solc"
echo "export FORGE=$(find_bin forge)"
echo "export ANVIL=$(find_bin anvil)"
echo "export CAST=$(find_bin cast)"
echo "export SOLC=$solc_wrapper"
echo "export SOLCJS_MODULE=$prefix/node_modules/solc"
