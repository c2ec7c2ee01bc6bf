# Shared helpers for the project's scripts (sourced, not run).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ATTESTED_CACHE_DIR="${ATTESTED_CACHE_DIR:-$root/.cache}"

# step "title" command...: runs one stage with a banner and its duration.
step() {
    local title="$1"; shift
    local start=$SECONDS
    printf '\n==> %s\n' "$title"
    "$@"
    printf '<== %s (%ds)\n' "$title" "$((SECONDS - start))"
}
