#!/usr/bin/env bash
# Starts the attested-inference enclave with nitro-cli and stays in the foreground while it
# runs, so that the supervisor (systemd's attested-enclave.service, or the Kubernetes
# launcher container) restarts it when it stops. Never passes --debug-mode: a debug enclave's
# attestation documents carry zero PCRs and every verifier rejects them.
#
# Settings (environment): EIF_PATH, ENCLAVE_NAME, ENCLAVE_CID, ENCLAVE_CPUS,
# ENCLAVE_MEMORY_MIB, POLL_SECONDS; NITRO_CLI (the nitro-cli to run, for tests).
set -euo pipefail

: "${EIF_PATH:=/opt/attested-inference/enclave.eif}"
: "${ENCLAVE_NAME:=attested-inference}"
: "${ENCLAVE_CID:=16}"
: "${ENCLAVE_CPUS:=2}"
: "${ENCLAVE_MEMORY_MIB:=1024}"
: "${POLL_SECONDS:=10}"
nitro_cli="${NITRO_CLI:-nitro-cli}"

# 0: running, 1: not running, 2: nitro-cli failed (unknown). The listing is read whole
# before it is searched: `grep -q` in a pipe would stop reading early, and under pipefail
# the writer's SIGPIPE would read as "not running".
running() {
    local listing
    listing="$("$nitro_cli" describe-enclaves)" || return 2
    grep -q "\"EnclaveName\": \"$ENCLAVE_NAME\"" <<<"$listing"
}
terminate() {
    "$nitro_cli" terminate-enclave --enclave-name "$ENCLAVE_NAME" >/dev/null 2>&1 || true
}

[ -r "$EIF_PATH" ] || { echo "run-enclave: no image at $EIF_PATH" >&2; exit 2; }
trap 'terminate; exit 0' TERM INT
# An enclave of this name left over from an earlier run would hold the CID.
state=0
running || state=$?
if [ "$state" -ne 1 ]; then terminate; fi
"$nitro_cli" run-enclave \
    --eif-path "$EIF_PATH" \
    --enclave-name "$ENCLAVE_NAME" \
    --enclave-cid "$ENCLAVE_CID" \
    --cpu-count "$ENCLAVE_CPUS" \
    --memory "$ENCLAVE_MEMORY_MIB"
# Poll until the enclave is gone; three failed nitro-cli calls in a row count as gone too.
failures=0
while [ "$failures" -lt 3 ]; do
    sleep "$POLL_SECONDS" &
    wait $!
    state=0
    running || state=$?
    case "$state" in
        0) failures=0 ;;
        1) break ;;
        *) failures=$((failures + 1)) ;;
    esac
done
echo "run-enclave: enclave $ENCLAVE_NAME is no longer running" >&2
exit 1
