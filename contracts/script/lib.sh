# Shared helpers for deploy.sh and demo.sh (sourced, not run).
# Needs $CAST (from scripts/install-foundry.sh) and python3.

# send KEY TO SIG ARGS...: sends a transaction, fails unless it succeeded, prints gasUsed.
send() {
    local key="$1" to="$2"
    shift 2
    local receipt
    if ! receipt="$("$CAST" send --rpc-url "$RPC_URL" --private-key "$key" --json "$to" "$@")"; then
        echo "send: $to $1 failed" >&2
        return 1
    fi
    python3 - "$receipt" <<'PY'
import json, sys
receipt = json.loads(sys.argv[1])
if int(receipt["status"], 16) != 1:
    sys.exit(f"transaction {receipt['transactionHash']} reverted")
print(int(receipt["gasUsed"], 16))
PY
}

# create KEY CONTRACT ARGS...: deploys src contract CONTRACT (path:name), prints "address gasUsed".
create() {
    local key="$1" contract="$2"
    shift 2
    local args=()
    if [ "$#" -gt 0 ]; then args=(--constructor-args "$@"); fi
    local out
    out="$("$FORGE" create --root "$CONTRACTS_DIR" --offline --broadcast --json --rpc-url "$RPC_URL" \
        --private-key "$key" "$contract" "${args[@]}")"
    local address tx
    read -r address tx < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["deployedTo"], d["transactionHash"])' "$out")
    echo "$address $("$CAST" receipt --rpc-url "$RPC_URL" "$tx" gasUsed)"
}

# sign_typed KEY FILE: EIP-712 signature (r||s||v, 65 bytes) of the typed data in FILE.
sign_typed() {
    "$CAST" wallet sign --private-key "$1" --data --from-file "$2"
}

# registration_typed_data FILE CHAIN_ID REGISTRY ENCLAVE OPERATOR IMAGE_ID MODEL_HASH EXPIRY ATTESTED_AT_MS
registration_typed_data() {
    cat >"$1" <<JSON
{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
    ],
    "EnclaveRegistration": [
      {"name": "enclave", "type": "address"}, {"name": "operator", "type": "address"},
      {"name": "imageId", "type": "bytes32"}, {"name": "modelHash", "type": "bytes32"},
      {"name": "expiry", "type": "uint64"}, {"name": "attestedAtMs", "type": "uint64"}
    ]
  },
  "primaryType": "EnclaveRegistration",
  "domain": {"name": "EnclaveRegistry", "version": "1", "chainId": $2, "verifyingContract": "$3"},
  "message": {"enclave": "$4", "operator": "$5", "imageId": "$6", "modelHash": "$7", "expiry": $8, "attestedAtMs": $9}
}
JSON
}

# fulfillment_typed_data FILE CHAIN_ID RELAY REQUEST_ID OPERATOR MODEL_HASH INPUT_HASH PARAMS_HASH OUTPUT_HASH
fulfillment_typed_data() {
    cat >"$1" <<JSON
{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
    ],
    "Fulfillment": [
      {"name": "requestId", "type": "bytes32"}, {"name": "operator", "type": "address"},
      {"name": "modelHash", "type": "bytes32"}, {"name": "inputHash", "type": "bytes32"},
      {"name": "paramsHash", "type": "bytes32"}, {"name": "outputHash", "type": "bytes32"}
    ]
  },
  "primaryType": "Fulfillment",
  "domain": {"name": "InferenceRelay", "version": "1", "chainId": $2, "verifyingContract": "$3"},
  "message": {"requestId": "$4", "operator": "$5", "modelHash": "$6", "inputHash": "$7", "paramsHash": "$8", "outputHash": "$9"}
}
JSON
}
