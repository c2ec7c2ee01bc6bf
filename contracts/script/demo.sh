#!/usr/bin/env bash
# End-to-end run on a real local chain: starts anvil, deploys with deploy.sh, registers an enclave
# key through the verifier-key route, then requests, claims and fulfils inference (answers of
# 100 B, 1 KB and 4 KB, with and without the example consumer's callback), revokes, and lets a
# claimed request miss its deadline to show the refund and slash. Fails on any unexpected
# result; prints the gas used by each transaction (the table in docs/benchmarks.md).
#
# The enclave and the attestation verifier are stood in for by anvil dev keys signing the
# documented EIP-712 statements with cast (alloy), as the Rust enclave and verifier will.
# ANVIL_PORT (default 18545) picks the port; the anvil started here is stopped on exit.
set -euo pipefail
CONTRACTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$("$CONTRACTS_DIR/../scripts/install-foundry.sh")"
# shellcheck source=lib.sh
source "$CONTRACTS_DIR/script/lib.sh"

port="${ANVIL_PORT:-18545}"
export RPC_URL="http://127.0.0.1:$port"
tmp="$(mktemp -d)"
"$ANVIL" --port "$port" --silent >"$tmp/anvil.log" 2>&1 &
anvil_pid=$!
trap 'kill "$anvil_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 50); do
    "$CAST" chain-id --rpc-url "$RPC_URL" >/dev/null 2>&1 && break
    sleep 0.2
done
"$CAST" chain-id --rpc-url "$RPC_URL" >/dev/null || { echo "demo: anvil did not start" >&2; cat "$tmp/anvil.log" >&2; exit 1; }

# anvil's development account 0 deploys and owns; the other roles get keys derived from their
# names, funded with anvil_setBalance.
owner_key=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
operator_key="$("$CAST" keccak "demo operator")"
requester_key="$("$CAST" keccak "demo requester")"
verifier_key="$("$CAST" keccak "demo attestation verifier")"
enclave_key="$("$CAST" keccak "demo enclave")"
enclave="$("$CAST" wallet address --private-key "$enclave_key")"
for key in "$operator_key" "$requester_key"; do
    "$CAST" rpc --rpc-url "$RPC_URL" anvil_setBalance "$("$CAST" wallet address --private-key "$key")" \
        0x56bc75e2d63100000 >/dev/null # 100 ether
done
operator="$("$CAST" wallet address --private-key "$operator_key")"

read -r pcr0 pcr1 pcr2 < <(python3 -c '
import hashlib
print(" ".join("0x" + hashlib.sha384(f"demo image pcr{i}".encode()).hexdigest() for i in range(3)))')
export PCR0="$pcr0" PCR1="$pcr1" PCR2="$pcr2"
export VERIFIER_ADDRESS="$("$CAST" wallet address --private-key "$verifier_key")"
export DEPLOYMENT_FILE="$tmp/deployment.json"
"$CONTRACTS_DIR/script/deploy.sh" >/dev/null
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$DEPLOYMENT_FILE" "$1"; }
registry="$(field enclaveRegistry)"
relay="$(field inferenceRelay)"
consumer="$(field exampleConsumer)"
model="$(field modelHash)"
image_id="$(field imageId)"
chain_id="$(field chainId)"

declare -A gas
now() { "$CAST" block latest --rpc-url "$RPC_URL" --field timestamp; }

# Register the enclave key, bound to the operator it serves: the verifier signs the statement,
# anyone submits it.
register_enclave() {
    local key="$1" address expiry attested_ms signature
    address="$("$CAST" wallet address --private-key "$key")"
    attested_ms=$(($(now) * 1000))
    expiry=$(($(now) + 7 * 24 * 3600))
    registration_typed_data "$tmp/registration.json" "$chain_id" "$registry" "$address" "$operator" "$image_id" \
        "$model" "$expiry" "$attested_ms"
    signature="$(sign_typed "$verifier_key" "$tmp/registration.json")"
    send "$owner_key" "$registry" "registerWithVerifierSignature((address,address,bytes32,bytes32,uint64,uint64),bytes)" \
        "($address,$operator,$image_id,$model,$expiry,$attested_ms)" "$signature"
}
gas[register]="$(register_enclave "$enclave_key")"

gas[stake]="$(send "$operator_key" "$relay" "stake()" --value 1ether)"
params='{"max_tokens":256,"temperature":0}'
params_hex="0x$(printf '%s' "$params" | od -An -tx1 | tr -d ' \n')"

text_of_size() { python3 -c 'import sys; n=int(sys.argv[1]); s="The capital of France is Paris. "; print((s * (n // len(s) + 1))[:n], end="")' "$1"; }

# fulfil_request REQUEST_ID INPUT_TEXT OUTPUT_TEXT: enclave-signs and submits, prints gasUsed.
fulfil_request() {
    local request_id="$1" input="$2" output="$3" output_hex signature
    output_hex="0x$(printf '%s' "$output" | od -An -tx1 | tr -d ' \n')"
    fulfillment_typed_data "$tmp/fulfillment.json" "$chain_id" "$relay" "$request_id" "$operator" "$model" \
        "$("$CAST" keccak "$input")" "$("$CAST" keccak "$params")" "$("$CAST" keccak "$output")"
    signature="$(sign_typed "$enclave_key" "$tmp/fulfillment.json")"
    send "$operator_key" "$relay" "fulfill(bytes32,bytes,bytes)" "$request_id" "$output_hex" "$signature"
}

request_count() { printf '0x%064x' "$("$CAST" call --rpc-url "$RPC_URL" "$relay" "requestCount()(uint256)" | awk '{print $1}')"; }

question='What is the capital of France?'
question_hex="0x$(printf '%s' "$question" | od -An -tx1 | tr -d ' \n')"
# The first fulfilment also creates the operator's credit slot (20,000 gas more than later
# ones): record it separately, so the table by size shows the steady state.
deadline=$(($(now) + 3600))
send "$requester_key" "$relay" "requestInference(bytes32,bytes,bytes,address,uint32,uint64)" \
    "$model" "$question_hex" "$params_hex" 0x0000000000000000000000000000000000000000 0 "$deadline" --value 0.01ether >/dev/null
id="$(request_count)"
send "$operator_key" "$relay" "claim(bytes32)" "$id" >/dev/null
gas[fulfil_first]="$(fulfil_request "$id" "$question" "$(text_of_size 100)")"
for size in 100 1024 4096; do
    answer="$(text_of_size "$size")"
    # Without callback: the requester reads the RequestFulfilled event.
    deadline=$(($(now) + 3600))
    gas[request]="$(send "$requester_key" "$relay" "requestInference(bytes32,bytes,bytes,address,uint32,uint64)" \
        "$model" "$question_hex" "$params_hex" 0x0000000000000000000000000000000000000000 0 "$deadline" --value 0.01ether)"
    id="$(request_count)"
    gas[claim]="$(send "$operator_key" "$relay" "claim(bytes32)" "$id")"
    gas[fulfil_$size]="$(fulfil_request "$id" "$question" "$answer")"
    status="$("$CAST" call --rpc-url "$RPC_URL" "$relay" "getRequest(bytes32)((address,uint40,uint8,uint32,address,uint96,bytes32,bytes32,bytes32,address,uint96))" "$id" | cut -d, -f3 | tr -d ' ')"
    [ "$status" = "3" ] || { echo "demo: request $id has status $status, expected 3 (Fulfilled)" >&2; exit 1; }

    # With the example consumer, which stores the answer in its callback.
    gas[ask]="$(send "$owner_key" "$consumer" "ask(string,bytes,uint32,uint64)" "$question" "$params_hex" 4000000 "$deadline" --value 0.01ether)"
    id="$(request_count)"
    send "$operator_key" "$relay" "claim(bytes32)" "$id" >/dev/null
    gas[fulfil_consumer_$size]="$(fulfil_request "$id" "$question" "$answer")"
    stored="$("$CAST" call --rpc-url "$RPC_URL" "$consumer" "question(bytes32)((string,bool,string))" "$id")"
    python3 - "$stored" "$answer" <<'PY' || { echo "demo: the consumer did not store the answer" >&2; exit 1; }
import sys
stored, answer = sys.argv[1], sys.argv[2]
sys.exit(0 if f'true, "{answer}"' in stored else 1)
PY
done

# A claimed request that misses its deadline: refund plus the operator's collateral.
deadline=$(($(now) + 60))
send "$requester_key" "$relay" "requestInference(bytes32,bytes,bytes,address,uint32,uint64)" \
    "$model" "$question_hex" "$params_hex" 0x0000000000000000000000000000000000000000 0 "$deadline" --value 0.01ether >/dev/null
missed="$(request_count)"
send "$operator_key" "$relay" "claim(bytes32)" "$missed" >/dev/null
"$CAST" rpc --rpc-url "$RPC_URL" evm_increaseTime 120 >/dev/null
"$CAST" rpc --rpc-url "$RPC_URL" evm_mine >/dev/null
gas[refund]="$(send "$requester_key" "$relay" "refund(bytes32)" "$missed")"
operator_state="$("$CAST" call --rpc-url "$RPC_URL" "$relay" "getOperator(address)((uint96,uint96,uint32,uint32))" "$operator")"
echo "operator (staked, locked, fulfilled, missed): $operator_state"
case "$operator_state" in
    "(900000000000000000 [9e17], 0, 7, 1)") ;;
    *) echo "demo: unexpected operator state $operator_state" >&2; exit 1 ;;
esac
gas[withdraw]="$(send "$operator_key" "$relay" "withdraw(address)" "$operator")"
gas[revoke]="$(send "$owner_key" "$registry" "revoke(address)" "$enclave")"

cat <<TABLE
chain id $chain_id; registry $registry; relay $relay; consumer $consumer
| transaction | gas used |
|---|---|
| deploy EnclaveRegistry | $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deployGas"]["enclaveRegistry"])' "$DEPLOYMENT_FILE") |
| deploy InferenceRelay | $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deployGas"]["inferenceRelay"])' "$DEPLOYMENT_FILE") |
| register enclave (verifier-key route) | ${gas[register]} |
| revoke enclave | ${gas[revoke]} |
| stake | ${gas[stake]} |
| requestInference (30 B input, 34 B params, no callback) | ${gas[request]} |
| ExampleConsumer.ask (same request via the consumer) | ${gas[ask]} |
| claim | ${gas[claim]} |
| fulfill, 100 B answer, no callback, operator's first | ${gas[fulfil_first]} |
| fulfill, 100 B answer, no callback | ${gas[fulfil_100]} |
| fulfill, 1 KB answer, no callback | ${gas[fulfil_1024]} |
| fulfill, 4 KB answer, no callback | ${gas[fulfil_4096]} |
| fulfill, 100 B answer, consumer stores it | ${gas[fulfil_consumer_100]} |
| fulfill, 1 KB answer, consumer stores it | ${gas[fulfil_consumer_1024]} |
| fulfill, 4 KB answer, consumer stores it | ${gas[fulfil_consumer_4096]} |
| refund of a missed claimed request (slash) | ${gas[refund]} |
| withdraw | ${gas[withdraw]} |
TABLE
echo "demo: all steps succeeded" >&2
