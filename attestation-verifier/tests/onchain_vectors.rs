//! The on-chain statements' digests against the vectors the contracts' own tests use
//! (`contracts/test/data/eip712-vectors.json`, produced with Foundry's `cast`): the signatures in
//! the file must recover to the enclave and verifier addresses through our digests.

use attestation_verifier::onchain::{ContractDomain, Fulfillment, Registration, image_id};
use attestation_verifier::receipt::{EthereumAddress, keccak256, recover_signer};

fn vectors() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/test/data/eip712-vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("read the contracts' EIP-712 vectors");
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn hex_field(vectors: &serde_json::Value, key: &str) -> Vec<u8> {
    let text = vectors[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing"));
    let text = text.strip_prefix("0x").expect("0x prefix");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn word(vectors: &serde_json::Value, key: &str) -> [u8; 32] {
    hex_field(vectors, key).try_into().expect("32 bytes")
}

fn address(vectors: &serde_json::Value, key: &str) -> EthereumAddress {
    hex_field(vectors, key).try_into().expect("20 bytes")
}

fn text(vectors: &serde_json::Value, key: &str) -> Vec<u8> {
    vectors[key].as_str().expect("text").as_bytes().to_vec()
}

#[test]
fn fulfillment_signature_recovers_to_the_enclave() {
    let v = vectors();
    let chain_id = v["chainId"].as_u64().expect("chainId");
    let fulfillment = Fulfillment::for_exchange(
        word(&v, "requestId"),
        address(&v, "operator"),
        word(&v, "modelHash"),
        &text(&v, "input"),
        &text(&v, "params"),
        &text(&v, "output"),
    );
    assert_eq!(fulfillment.input_hash, word(&v, "inputHash"));
    assert_eq!(fulfillment.params_hash, word(&v, "paramsHash"));
    assert_eq!(fulfillment.output_hash, word(&v, "outputHash"));

    let relay = ContractDomain::relay(chain_id, address(&v, "relay"));
    let digest = fulfillment.digest(&relay);
    let signature = hex_field(&v, "fulfillmentSignature");
    assert_eq!(
        recover_signer(&digest, &signature).expect("recovers"),
        address(&v, "enclave")
    );

    // The same statement for another chain, another relay, another output or another operator
    // names someone else: the signature is bound to all four.
    let other_chain = ContractDomain::relay(chain_id + 1, address(&v, "relay"));
    let other_relay = ContractDomain::relay(chain_id, address(&v, "registry"));
    let mut other_output = fulfillment;
    other_output.output_hash = keccak256(b"The capital of France is Lyon.");
    let mut other_operator = fulfillment;
    other_operator.operator = address(&v, "verifier");
    for digest in [
        fulfillment.digest(&other_chain),
        fulfillment.digest(&other_relay),
        other_output.digest(&relay),
        other_operator.digest(&relay),
    ] {
        assert_ne!(
            recover_signer(&digest, &signature).ok(),
            Some(address(&v, "enclave"))
        );
    }
}

#[test]
fn registration_signature_recovers_to_the_verifier() {
    let v = vectors();
    let chain_id = v["chainId"].as_u64().expect("chainId");
    let image = image_id(
        &hex_field(&v, "pcr0"),
        &hex_field(&v, "pcr1"),
        &hex_field(&v, "pcr2"),
    );
    assert_eq!(image, word(&v, "imageId"));
    let registration = Registration {
        enclave: address(&v, "enclave"),
        operator: address(&v, "operator"),
        image_id: image,
        model_hash: word(&v, "modelHash"),
        expiry: v["expiry"].as_u64().expect("expiry"),
        attested_at_ms: v["attestedAtMs"].as_u64().expect("attestedAtMs"),
    };
    let registry = ContractDomain::registry(chain_id, address(&v, "registry"));
    let signature = hex_field(&v, "registrationSignature");
    assert_eq!(
        recover_signer(&registration.digest(&registry), &signature).expect("recovers"),
        address(&v, "verifier")
    );
    let relay_domain = ContractDomain::relay(chain_id, address(&v, "registry"));
    assert_ne!(
        recover_signer(&registration.digest(&relay_domain), &signature).ok(),
        Some(address(&v, "verifier"))
    );
}
