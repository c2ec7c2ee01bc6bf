//! Receipts end to end: the enclave signs with its generated key, the development attester
//! vouches for the key in a boot document, and the verifier crate accepts the receipt only for
//! the exact bodies, model and key (one error variant per failed check). Also the stream hash
//! chain and the per-response document binding.

mod common;

use attestation_verifier::binding::{BindingError, ResponseBinding};
use attestation_verifier::receipt::{
    Receipt, ReceiptClaims, ReceiptError, address_hex, verify_receipt,
};
use attestation_verifier::stream::{StreamHashChain, StreamVerifier};
use common::{SMOLLM2_SHA256, dev_attester, verified_boot_document, verified_document};
use enclave::attester::AttestationRequest;
use enclave::identity::{EnclaveIdentity, EnclaveSigningKey};

const REQUEST: &[u8] =
    br#"{"model":"SmolLM2-135M-Instruct","messages":[{"role":"user","content":"Hello"}]}"#;
const RESPONSE: &[u8] = br#"{"choices":[{"message":{"role":"assistant","content":"Hi!"}}]}"#;
const SIGNED_AT_MS: u64 = 1_767_225_600_123;

fn identity() -> EnclaveIdentity {
    EnclaveIdentity::generate(SMOLLM2_SHA256, &["localhost".to_owned()]).expect("identity")
}

fn signed_receipt(identity: &EnclaveIdentity) -> Receipt {
    let claims = ReceiptClaims::for_bodies(SMOLLM2_SHA256, REQUEST, RESPONSE, SIGNED_AT_MS);
    identity.signing_key.sign_receipt(&claims).expect("sign")
}

#[test]
fn a_genuine_receipt_verifies() {
    let (_directory, attester) = dev_attester();
    let identity = identity();
    let attestation = verified_boot_document(&attester, &identity);
    let receipt = signed_receipt(&identity);
    let verified = verify_receipt(&receipt, &attestation, REQUEST, RESPONSE).expect("verifies");
    assert_eq!(verified.signer(), identity.signing_key.address());
    assert_eq!(verified.claims(), &receipt.claims);
    assert_eq!(verified.digest(), receipt.claims.digest());
}

#[test]
fn each_failed_check_has_its_own_error() {
    let (_directory, attester) = dev_attester();
    let identity = identity();
    let attestation = verified_boot_document(&attester, &identity);
    let receipt = signed_receipt(&identity);

    // The bodies.
    let mut request = REQUEST.to_vec();
    request[10] ^= 0x20;
    assert!(matches!(
        verify_receipt(&receipt, &attestation, &request, RESPONSE),
        Err(ReceiptError::RequestHashMismatch { .. })
    ));
    let mut response = RESPONSE.to_vec();
    response.push(b' ');
    assert!(matches!(
        verify_receipt(&receipt, &attestation, REQUEST, &response),
        Err(ReceiptError::ResponseHashMismatch { .. })
    ));

    // Any altered claim breaks the signature.
    for claims in [
        ReceiptClaims {
            timestamp_ms: SIGNED_AT_MS + 1,
            ..receipt.claims
        },
        ReceiptClaims {
            request_hash: receipt.claims.response_hash,
            ..receipt.claims
        },
        ReceiptClaims {
            model_hash: [0u8; 32],
            ..receipt.claims
        },
    ] {
        let altered = Receipt {
            claims,
            signature: receipt.signature.clone(),
        };
        let error =
            verify_receipt(&altered, &attestation, REQUEST, RESPONSE).expect_err("altered claims");
        assert!(
            matches!(
                error,
                ReceiptError::SignerMismatch { .. } | ReceiptError::SignerUnrecoverable
            ),
            "{error:?}"
        );
    }

    // A tampered byte anywhere in the signature.
    for index in 0..receipt.signature.len() {
        let mut signature = receipt.signature.clone();
        signature[index] ^= 0x01;
        let tampered = Receipt {
            claims: receipt.claims,
            signature,
        };
        let error = verify_receipt(&tampered, &attestation, REQUEST, RESPONSE)
            .expect_err("tampered signature");
        assert!(
            matches!(
                error,
                ReceiptError::SignerMismatch { .. }
                    | ReceiptError::SignerUnrecoverable
                    | ReceiptError::HighS
                    | ReceiptError::RecoveryByte { .. }
                    | ReceiptError::SignatureScalarOutOfRange
            ),
            "byte {index}: {error:?}"
        );
    }
    let mut short = receipt.clone();
    short.signature.pop();
    assert!(matches!(
        verify_receipt(&short, &attestation, REQUEST, RESPONSE),
        Err(ReceiptError::SignatureLength { length: 64 })
    ));

    // Signed by the attested key, but for another model.
    let other_model = ReceiptClaims {
        model_hash: [0x42; 32],
        ..receipt.claims
    };
    let other_model = identity
        .signing_key
        .sign_receipt(&other_model)
        .expect("sign");
    assert!(matches!(
        verify_receipt(&other_model, &attestation, REQUEST, RESPONSE),
        Err(ReceiptError::ModelHashMismatch { .. })
    ));

    // Signed by a key the document does not vouch for.
    let impostor = EnclaveSigningKey::generate().expect("key");
    let forged = impostor.sign_receipt(&receipt.claims).expect("sign");
    match verify_receipt(&forged, &attestation, REQUEST, RESPONSE) {
        Err(ReceiptError::SignerMismatch {
            expected,
            recovered,
        }) => {
            assert_eq!(expected, address_hex(&identity.signing_key.address()));
            assert_eq!(recovered, address_hex(&impostor.address()));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn documents_that_vouch_for_no_key_or_model_are_refused() {
    let (_directory, attester) = dev_attester();
    let identity = identity();
    let receipt = signed_receipt(&identity);

    let mut request = identity.boot_attestation_request(None);
    request.public_key = None;
    let no_key = verified_document(&attester, &request);
    assert!(matches!(
        verify_receipt(&receipt, &no_key, REQUEST, RESPONSE),
        Err(ReceiptError::AttestedKeyMissing)
    ));

    let mut request = identity.boot_attestation_request(None);
    request.public_key = Some(vec![0x04; 65]);
    let not_a_point = verified_document(&attester, &request);
    assert!(matches!(
        verify_receipt(&receipt, &not_a_point, REQUEST, RESPONSE),
        Err(ReceiptError::AttestedKeyInvalid { length: 65 })
    ));

    let mut request = identity.boot_attestation_request(None);
    request.user_data = None;
    let no_binding = verified_document(&attester, &request);
    assert!(matches!(
        verify_receipt(&receipt, &no_binding, REQUEST, RESPONSE),
        Err(ReceiptError::Binding(BindingError::UserDataMissing))
    ));

    // A per-response document is not a boot document.
    let mut request = identity.boot_attestation_request(None);
    request.user_data = Some(
        ResponseBinding {
            receipt_digest: receipt.claims.digest(),
        }
        .to_user_data()
        .to_vec(),
    );
    let response_document = verified_document(&attester, &request);
    assert!(matches!(
        verify_receipt(&receipt, &response_document, REQUEST, RESPONSE),
        Err(ReceiptError::Binding(BindingError::WrongKind { .. }))
    ));
}

#[test]
fn a_per_response_document_binds_the_receipt_digest() {
    let (_directory, attester) = dev_attester();
    let identity = identity();
    let receipt = signed_receipt(&identity);
    let request = AttestationRequest {
        public_key: Some(identity.signing_key.public_key_uncompressed().to_vec()),
        user_data: Some(
            ResponseBinding {
                receipt_digest: receipt.claims.digest(),
            }
            .to_user_data()
            .to_vec(),
        ),
        nonce: Some(b"per-response nonce".to_vec()),
    };
    let verified = verified_document(&attester, &request);
    let binding = ResponseBinding::parse(verified.user_data().expect("user_data")).expect("parse");
    assert_eq!(binding.receipt_digest, receipt.claims.digest());
    assert_eq!(verified.nonce(), Some(&b"per-response nonce"[..]));
}

#[test]
fn signing_matches_cast_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../attestation-verifier/tests/data/receipt_vectors.json"
    );
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json");
    let hex = |text: &str| -> Vec<u8> {
        let text = text.trim_start_matches("0x");
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    };
    let hash = |text: &str| -> [u8; 32] { hex(text).try_into().expect("32 bytes") };
    let secret: [u8; 32] = hash(vectors["private_key"].as_str().expect("key"));
    let key = EnclaveSigningKey::from_secret_bytes(&secret).expect("key");
    assert_eq!(
        address_hex(&key.address()),
        vectors["address"].as_str().expect("address")
    );
    for case in vectors["cases"].as_array().expect("cases") {
        let claims = ReceiptClaims {
            model_hash: hash(case["model_hash"].as_str().expect("model")),
            request_hash: hash(case["request_hash"].as_str().expect("request")),
            response_hash: hash(case["response_hash"].as_str().expect("response")),
            timestamp_ms: case["timestamp_ms"]
                .as_str()
                .expect("timestamp")
                .parse()
                .expect("u64"),
        };
        // Both sides sign deterministically (RFC 6979), so equal bytes mean an equal digest.
        let receipt = key.sign_receipt(&claims).expect("sign");
        assert_eq!(
            receipt.signature,
            hex(case["signature"].as_str().expect("signature")),
            "case {}",
            case["name"]
        );
    }
}

#[test]
fn a_signed_stream_verifies_chunk_by_chunk() {
    let (_directory, attester) = dev_attester();
    let identity = identity();
    let attestation = verified_boot_document(&attester, &identity);
    let chunks: [&[u8]; 3] = [
        br#"{"choices":[{"delta":{"content":"Hel"}}]}"#,
        br#"{"choices":[{"delta":{"content":"lo"}}]}"#,
        b"[DONE]",
    ];

    // The enclave's side: chain, sign each prefix, then the final receipt.
    let mut chain = StreamHashChain::for_request_body(REQUEST);
    let mut signed = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        let value = chain.push(chunk);
        let claims = ReceiptClaims {
            model_hash: SMOLLM2_SHA256,
            request_hash: StreamHashChain::for_request_body(REQUEST).value(),
            response_hash: value,
            timestamp_ms: SIGNED_AT_MS + index as u64,
        };
        let receipt = identity.signing_key.sign_receipt(&claims).expect("sign");
        signed.push((chunk.to_vec(), claims.timestamp_ms, receipt.signature));
    }
    let final_receipt = identity
        .signing_key
        .sign_receipt(&ReceiptClaims {
            model_hash: SMOLLM2_SHA256,
            request_hash: StreamHashChain::for_request_body(REQUEST).value(),
            response_hash: chain.value(),
            timestamp_ms: SIGNED_AT_MS + 10,
        })
        .expect("sign");

    let mut verifier = StreamVerifier::new(&attestation, REQUEST).expect("stream verifier");
    for (chunk, timestamp, signature) in &signed {
        verifier
            .accept_chunk(chunk, *timestamp, signature)
            .expect("chunk verifies");
    }
    assert_eq!(verifier.chunks_accepted(), 3);
    assert_eq!(verifier.chain_value(), chain.value());
    verifier.finish(&final_receipt).expect("final receipt");

    // A final receipt for fewer chunks does not match the stream.
    let mut verifier = StreamVerifier::new(&attestation, REQUEST).expect("stream verifier");
    verifier
        .accept_chunk(&signed[0].0, signed[0].1, &signed[0].2)
        .expect("first chunk");
    assert!(matches!(
        verifier.finish(&final_receipt),
        Err(ReceiptError::ResponseHashMismatch { .. })
    ));

    // A tampered chunk fails, and nothing after it is trusted.
    let mut verifier = StreamVerifier::new(&attestation, REQUEST).expect("stream verifier");
    verifier
        .accept_chunk(&signed[0].0, signed[0].1, &signed[0].2)
        .expect("first chunk");
    let mut tampered = signed[1].0.clone();
    tampered[5] ^= 0x01;
    assert!(matches!(
        verifier.accept_chunk(&tampered, signed[1].1, &signed[1].2),
        Err(ReceiptError::SignerMismatch { .. } | ReceiptError::SignerUnrecoverable)
    ));
    assert!(matches!(
        verifier.accept_chunk(&signed[1].0, signed[1].1, &signed[1].2),
        Err(ReceiptError::StreamAlreadyFailed)
    ));
    assert!(matches!(
        verifier.finish(&final_receipt),
        Err(ReceiptError::StreamAlreadyFailed)
    ));

    // Dropped or reordered chunks break the chain.
    let mut verifier = StreamVerifier::new(&attestation, REQUEST).expect("stream verifier");
    assert!(
        verifier
            .accept_chunk(&signed[1].0, signed[1].1, &signed[1].2)
            .is_err()
    );

    // Timestamps may not go backwards.
    let mut verifier = StreamVerifier::new(&attestation, REQUEST).expect("stream verifier");
    verifier
        .accept_chunk(&signed[0].0, signed[0].1, &signed[0].2)
        .expect("first chunk");
    assert!(matches!(
        verifier.accept_chunk(&signed[1].0, signed[0].1 - 1, &signed[1].2),
        Err(ReceiptError::StreamTimestampBackwards { chunk: 2, .. })
    ));

    // Another request's stream does not verify against this one.
    let mut verifier = StreamVerifier::new(&attestation, b"another request").expect("verifier");
    assert!(
        verifier
            .accept_chunk(&signed[0].0, signed[0].1, &signed[0].2)
            .is_err()
    );
}
