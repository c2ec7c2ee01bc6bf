//! The receipt digest and signer recovery against vectors produced by Foundry's `cast`, an
//! independent EIP-712 implementation (provenance in `tests/data/receipt_vectors.json`).

use attestation_verifier::receipt::{
    ReceiptClaims, ReceiptError, address_hex, ethereum_address, receipt_domain_separator,
    recover_signer,
};

fn hex_bytes(text: &str) -> Vec<u8> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    assert!(text.len().is_multiple_of(2), "odd hex length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).expect("hex digit"))
        .collect()
}

fn hash32(text: &str) -> [u8; 32] {
    hex_bytes(text).try_into().expect("32 bytes")
}

fn vectors() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/receipt_vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("receipt vectors"))
        .expect("receipt vectors are JSON")
}

struct Case {
    name: String,
    claims: ReceiptClaims,
    digest: [u8; 32],
    signature: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let vectors = vectors();
    vectors["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| Case {
            name: case["name"].as_str().expect("name").to_owned(),
            claims: ReceiptClaims {
                model_hash: hash32(case["model_hash"].as_str().expect("model_hash")),
                request_hash: hash32(case["request_hash"].as_str().expect("request_hash")),
                response_hash: hash32(case["response_hash"].as_str().expect("response_hash")),
                timestamp_ms: case["timestamp_ms"]
                    .as_str()
                    .expect("timestamp_ms")
                    .parse()
                    .expect("u64 timestamp"),
            },
            digest: hash32(case["digest"].as_str().expect("digest")),
            signature: hex_bytes(case["signature"].as_str().expect("signature")),
        })
        .collect()
}

fn expected_address() -> String {
    vectors()["address"].as_str().expect("address").to_owned()
}

#[test]
fn domain_separator_matches_cast() {
    let expected = vectors()["domain_separator"]
        .as_str()
        .expect("domain_separator")
        .to_owned();
    assert_eq!(hash32(&expected), receipt_domain_separator());
}

#[test]
fn digests_match_cast() {
    let cases = cases();
    assert_eq!(cases.len(), 3);
    for case in &cases {
        assert_eq!(case.claims.digest(), case.digest, "case {}", case.name);
    }
}

#[test]
fn bodies_hash_to_the_recorded_request_and_response_hashes() {
    let vectors = vectors();
    let case = &vectors["cases"][0];
    let claims = ReceiptClaims::for_bodies(
        hash32(case["model_hash"].as_str().expect("model")),
        case["request_body"]
            .as_str()
            .expect("request body")
            .as_bytes(),
        case["response_body"]
            .as_str()
            .expect("response body")
            .as_bytes(),
        1_767_225_600_123,
    );
    assert_eq!(
        claims.digest(),
        hash32(case["digest"].as_str().expect("digest"))
    );
}

#[test]
fn cast_signatures_recover_to_the_key_address() {
    for case in cases() {
        let signer = recover_signer(&case.digest, &case.signature)
            .unwrap_or_else(|error| panic!("case {}: {error}", case.name));
        assert_eq!(
            address_hex(&signer),
            expected_address(),
            "case {}",
            case.name
        );
    }
}

#[test]
fn every_tampered_signature_byte_is_caught() {
    let case = &cases()[0];
    let expected = expected_address();
    for index in 0..case.signature.len() {
        let mut tampered = case.signature.clone();
        tampered[index] ^= 0x01;
        match recover_signer(&case.digest, &tampered) {
            // A flipped bit in r or s may still recover some key, never the signer's.
            Ok(address) => assert_ne!(address_hex(&address), expected, "byte {index}"),
            Err(
                ReceiptError::RecoveryByte { .. }
                | ReceiptError::HighS
                | ReceiptError::SignatureScalarOutOfRange
                | ReceiptError::SignerUnrecoverable,
            ) => {}
            Err(other) => panic!("byte {index}: unexpected {other:?}"),
        }
    }
}

#[test]
fn every_tampered_claim_changes_the_digest() {
    let case = &cases()[0];
    let expected = expected_address();
    let variants = [
        ReceiptClaims {
            timestamp_ms: case.claims.timestamp_ms + 1,
            ..case.claims
        },
        ReceiptClaims {
            model_hash: [0x11; 32],
            ..case.claims
        },
        ReceiptClaims {
            request_hash: case.claims.response_hash,
            ..case.claims
        },
        ReceiptClaims {
            response_hash: case.claims.request_hash,
            ..case.claims
        },
    ];
    for claims in variants {
        let digest = claims.digest();
        assert_ne!(digest, case.digest);
        if let Ok(address) = recover_signer(&digest, &case.signature) {
            assert_ne!(address_hex(&address), expected);
        }
    }
}

#[test]
fn address_of_the_anvil_key_matches_cast() {
    // The uncompressed public key of the vectors' private key (from `cast wallet public-key`).
    let public_key = hex_bytes(
        "048318535b54105d4a7aae60c08fc45f9687181b4fdfc625bd1a753fa7397fed753547f11ca8696646f2f3acb08e31016afac23e630c5d11f59f61fef57b0d2aa5",
    );
    let address = ethereum_address(&public_key).expect("a valid point");
    assert_eq!(address_hex(&address), expected_address());
}
