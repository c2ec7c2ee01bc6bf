#!/usr/bin/env bash
# Deploys and configures EnclaveRegistry, InferenceRelay, ExampleConsumer and the Nitro route
# (Es384Verifier, NitroRegistrar approved as a registrar) on the chain at
# $RPC_URL, then writes their addresses to $DEPLOYMENT_FILE (JSON) and prints it.
#
# Environment (defaults suit a local anvil; see docs/onchain.md "Deployment"):
#   RPC_URL                    http://127.0.0.1:8545
#   DEPLOYER_KEY               anvil account 0; becomes the registry owner and consumer owner
#   MODEL_HASH                 SHA-256 of the GGUF model (default: SmolLM2-135M-Instruct Q4_1)
#   PCR0, PCR1, PCR2           48-byte hex of the allowed image (default: none allowed)
#   VERIFIER_ADDRESS           attestation-verifier key to trust (default: none)
#   MAX_REGISTRATION_VALIDITY  seconds (default 30 days)
#   CLAIM_COLLATERAL_WEI       stake locked per claim and slashed on a miss (default 0.1 ether)
#   MAX_CALLBACK_GAS           largest callback gas limit a request may ask for (default 5,000,000)
#   NITRO_ROOT_CERT            PEM (or DER) of the root NitroRegistrar trusts (default: the AWS
#                              Nitro root G1; a development root only for local stacks and tests)
#   MAX_ATTESTATION_AGE        seconds a document may be old when it registers (default 3600)
#   DEPLOYMENT_FILE            default contracts/out/deployment.json
set -euo pipefail
CONTRACTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$("$CONTRACTS_DIR/../scripts/install-foundry.sh")"
# shellcheck source=lib.sh
source "$CONTRACTS_DIR/script/lib.sh"
# foundry.toml names the solc wrapper by a path relative to the project.
cd "$CONTRACTS_DIR"

RPC_URL="${RPC_URL:-http://127.0.0.1:8545}"
DEPLOYER_KEY="${DEPLOYER_KEY:-0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80}"
MODEL_HASH="${MODEL_HASH:-0xb179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53}"
MAX_REGISTRATION_VALIDITY="${MAX_REGISTRATION_VALIDITY:-2592000}"
CLAIM_COLLATERAL_WEI="${CLAIM_COLLATERAL_WEI:-100000000000000000}"
MAX_CALLBACK_GAS="${MAX_CALLBACK_GAS:-5000000}"
DEPLOYMENT_FILE="${DEPLOYMENT_FILE:-$CONTRACTS_DIR/out/deployment.json}"
NITRO_ROOT_CERT="${NITRO_ROOT_CERT:-$CONTRACTS_DIR/../attestation-verifier/src/aws_nitro_root_g1.pem}"
MAX_ATTESTATION_AGE="${MAX_ATTESTATION_AGE:-3600}"
# The root's DER as 0x-hex (PEM is decoded; DER passes through).
nitro_root_hex="$(python3 - "$NITRO_ROOT_CERT" <<'PY'
import base64, sys
data = open(sys.argv[1], "rb").read()
if data.lstrip().startswith(b"-----BEGIN"):
    body = b"".join(l for l in data.splitlines() if l and not l.startswith(b"-----"))
    data = base64.b64decode(body)
print("0x" + data.hex())
PY
)"

owner="$("$CAST" wallet address --private-key "$DEPLOYER_KEY")"
chain_id="$("$CAST" chain-id --rpc-url "$RPC_URL")"

read -r registry registry_gas < <(create "$DEPLOYER_KEY" src/EnclaveRegistry.sol:EnclaveRegistry \
    "$owner" "$MAX_REGISTRATION_VALIDITY")
read -r relay relay_gas < <(create "$DEPLOYER_KEY" src/InferenceRelay.sol:InferenceRelay \
    "$registry" "$CLAIM_COLLATERAL_WEI" "$MAX_CALLBACK_GAS")
read -r consumer consumer_gas < <(create "$DEPLOYER_KEY" src/examples/ExampleConsumer.sol:ExampleConsumer \
    "$relay" "$MODEL_HASH")

read -r es384 es384_gas < <(create "$DEPLOYER_KEY" src/nitro/Es384Verifier.sol:Es384Verifier)
read -r nitro_registrar nitro_registrar_gas < <(create "$DEPLOYER_KEY" src/nitro/NitroRegistrar.sol:NitroRegistrar \
    "$registry" "$es384" "$nitro_root_hex" "$MAX_ATTESTATION_AGE")

send "$DEPLOYER_KEY" "$registry" "allowModel(bytes32)" "$MODEL_HASH" >/dev/null
send "$DEPLOYER_KEY" "$registry" "setRegistrar(address,bool)" "$nitro_registrar" true >/dev/null
nitro_aws_root="$("$CAST" call --rpc-url "$RPC_URL" "$nitro_registrar" "isAwsRoot()(bool)")"
image_id=""
if [ -n "${PCR0:-}" ]; then
    send "$DEPLOYER_KEY" "$registry" "allowImage(bytes,bytes,bytes)" "$PCR0" "$PCR1" "$PCR2" >/dev/null
    image_id="$("$CAST" keccak "0x${PCR0#0x}${PCR1#0x}${PCR2#0x}")"
fi
if [ -n "${VERIFIER_ADDRESS:-}" ]; then
    send "$DEPLOYER_KEY" "$registry" "setVerifier(address,bool)" "$VERIFIER_ADDRESS" true >/dev/null
fi

mkdir -p "$(dirname "$DEPLOYMENT_FILE")"
cat >"$DEPLOYMENT_FILE" <<JSON
{
  "chainId": $chain_id,
  "rpcUrl": "$RPC_URL",
  "owner": "$owner",
  "enclaveRegistry": "$registry",
  "inferenceRelay": "$relay",
  "exampleConsumer": "$consumer",
  "nitroRegistrar": "$nitro_registrar",
  "es384Verifier": "$es384",
  "nitroRegistrarAwsRoot": $nitro_aws_root,
  "modelHash": "$MODEL_HASH",
  "imageId": "$image_id",
  "verifier": "${VERIFIER_ADDRESS:-}",
  "claimCollateralWei": "$CLAIM_COLLATERAL_WEI",
  "maxCallbackGas": $MAX_CALLBACK_GAS,
  "maxRegistrationValidity": $MAX_REGISTRATION_VALIDITY,
  "deployGas": {"enclaveRegistry": $registry_gas, "inferenceRelay": $relay_gas, "exampleConsumer": $consumer_gas, "es384Verifier": $es384_gas, "nitroRegistrar": $nitro_registrar_gas},
  "abis": {
    "enclaveRegistry": "contracts/out/EnclaveRegistry.sol/EnclaveRegistry.json",
    "inferenceRelay": "contracts/out/InferenceRelay.sol/InferenceRelay.json",
    "exampleConsumer": "contracts/out/ExampleConsumer.sol/ExampleConsumer.json",
    "nitroRegistrar": "contracts/out/NitroRegistrar.sol/NitroRegistrar.json"
  }
}
JSON
cat "$DEPLOYMENT_FILE"
