//! Tampered real documents: every change is rejected with the right error.

mod common;

use attestation_verifier::{
    ChainPosition, DocumentError, Field, Policy, TrustAnchor, UnixMillis, Verifier, VerifyError,
    parse_document,
};
use common::{ES384_PROTECTED, Payload, encode_cose_sign1, real_document, real_documents};

fn verifier() -> Verifier {
    Verifier::new(TrustAnchor::aws_nitro_root_g1())
}

fn permissive() -> Policy {
    Policy::new().allow_debug_mode()
}

/// Rebuilds `document` with `payload` and its original signature.
fn with_payload(payload: &[u8], signature: &[u8]) -> Vec<u8> {
    encode_cose_sign1(&ES384_PROTECTED, payload, signature)
}

#[test]
fn flipping_any_single_byte_is_rejected_or_decodes_identically() {
    let verifier = verifier();
    // One document with a high-S signature and one with 17 PCRs and empty user_data.
    for name in ["marlin_aws_2024-12-13", "marlin_aws_pcr16_2025-04-29"] {
        let document = real_document(name);
        let at = UnixMillis(document.timestamp_ms());
        let original = parse_document(&document.bytes).unwrap();
        let mut accepted = 0;
        for index in 0..document.bytes.len() {
            let mut tampered = document.bytes.clone();
            tampered[index] ^= 0xff;
            if let Ok(verified) = verifier.verify(&tampered, &permissive(), at) {
                // Only acceptable when the bytes decode to the very same document.
                let reparsed = parse_document(&tampered).unwrap();
                assert_eq!(
                    reparsed, original,
                    "{name}: byte {index} changed an accepted document"
                );
                assert_eq!(verified.module_id(), original.module_id());
                accepted += 1;
            }
        }
        assert_eq!(
            accepted, 0,
            "{name}: {accepted} single-byte changes were accepted"
        );
    }
}

#[test]
fn cabundle_from_another_document_is_rejected() {
    let target = real_document("marlin_aws_2024-12-13");
    let donor = parse_document(&real_document("evervault_ga_2023-09-18").bytes).unwrap();
    let parsed = parse_document(&target.bytes).unwrap();
    let mut payload = Payload::from_document(&parsed);
    payload.cabundle = donor.cabundle().to_vec();
    let forged = with_payload(&payload.encode(), parsed.signature());
    let error = verifier()
        .verify(&forged, &permissive(), UnixMillis(target.timestamp_ms()))
        .unwrap_err();
    // The donor's intermediates are genuine but were not valid at the target's time, and in
    // any case they did not issue the target's leaf.
    assert!(
        matches!(
            error,
            VerifyError::IssuerMismatch { .. }
                | VerifyError::CertificateExpired { .. }
                | VerifyError::CertificateNotYetValid { .. }
        ),
        "{error}"
    );
    // At the donor's own time the chain is valid up to the leaf, which it did not issue.
    let error = verifier()
        .verify(
            &forged,
            &permissive(),
            UnixMillis(donor.timestamp().as_millis()),
        )
        .unwrap_err();
    assert!(
        matches!(
            &error,
            VerifyError::IssuerMismatch { certificate, .. }
                | VerifyError::CertificateSignatureInvalid { certificate }
                if certificate.position == ChainPosition::Leaf
        ) || matches!(
            error,
            VerifyError::CertificateNotYetValid { .. } | VerifyError::CertificateExpired { .. }
        ),
        "{error}"
    );
}

#[test]
fn leaf_from_another_document_is_rejected() {
    // Two documents of the same region and day would share intermediates; these do not, so
    // the swapped leaf fails its issuer link.
    let target = real_document("evervault_tls_nondebug_2023-01-18");
    let donor = parse_document(&real_document("evervault_tls_debug_2023-01-18").bytes).unwrap();
    let parsed = parse_document(&target.bytes).unwrap();
    let mut payload = Payload::from_document(&parsed);
    payload.certificate = donor.certificate().to_vec();
    let forged = with_payload(&payload.encode(), parsed.signature());
    let error = verifier()
        .verify(&forged, &permissive(), UnixMillis(target.timestamp_ms()))
        .unwrap_err();
    assert!(
        matches!(
            &error,
            VerifyError::IssuerMismatch { certificate, .. }
                | VerifyError::CertificateSignatureInvalid { certificate }
                | VerifyError::CertificateExpired { certificate, .. }
                | VerifyError::CertificateNotYetValid { certificate, .. }
                if certificate.position == ChainPosition::Leaf
        ) || error == VerifyError::SignatureInvalid,
        "{error}"
    );
}

#[test]
fn a_changed_payload_field_breaks_the_signature() {
    let target = real_document("marlin_verifier_2024-08-07");
    let parsed = parse_document(&target.bytes).unwrap();
    let mut payload = Payload::from_document(&parsed);
    payload.user_data = Some(b"attacker".to_vec());
    let forged = with_payload(&payload.encode(), parsed.signature());
    assert_eq!(
        verifier().verify(&forged, &permissive(), UnixMillis(target.timestamp_ms())),
        Err(VerifyError::SignatureInvalid)
    );
}

#[test]
fn another_algorithm_in_the_header_is_rejected() {
    let target = real_document("marlin_aws_2024-12-13");
    let parsed = parse_document(&target.bytes).unwrap();
    // ES256 (-7), ES512 (-36), EdDSA (-8), and ES384 with an extra label.
    let headers: [&[u8]; 4] = [
        &[0xa1, 0x01, 0x26],
        &[0xa1, 0x01, 0x38, 0x23],
        &[0xa1, 0x01, 0x27],
        &[0xa2, 0x01, 0x38, 0x22, 0x04, 0x41, 0x00],
    ];
    for header in headers {
        let forged = encode_cose_sign1(header, parsed.payload(), parsed.signature());
        let error = verifier()
            .verify(&forged, &permissive(), UnixMillis(target.timestamp_ms()))
            .unwrap_err();
        assert!(
            matches!(
                error,
                VerifyError::Document(DocumentError::UnsupportedProtectedHeader { .. })
            ),
            "{header:02x?}: {error}"
        );
    }
}

#[test]
fn truncation_is_rejected_at_every_length() {
    let document = real_document("evervault_beta_valid_2022-10-13");
    for length in 0..document.bytes.len() {
        let error = parse_document(&document.bytes[..length]).unwrap_err();
        assert!(
            matches!(
                error,
                DocumentError::Empty | DocumentError::MalformedCose { .. }
            ),
            "length {length}: {error}"
        );
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let document = real_document("evervault_beta_valid_2022-10-13");
    let mut extended = document.bytes.clone();
    extended.push(0x00);
    assert_eq!(
        parse_document(&extended).unwrap_err(),
        DocumentError::TrailingBytesAfterCose
    );

    let parsed = parse_document(&document.bytes).unwrap();
    let mut payload = parsed.payload().to_vec();
    payload.push(0xf6);
    let forged = with_payload(&payload, parsed.signature());
    assert_eq!(
        parse_document(&forged).unwrap_err(),
        DocumentError::TrailingBytesInPayload { count: 1 }
    );
}

#[test]
fn duplicate_keys_are_rejected() {
    let document = real_document("marlin_aws_pcr16_2025-04-29");
    let parsed = parse_document(&document.bytes).unwrap();
    let payload = Payload::from_document(&parsed);
    let encoded = payload.encode_with(&[("nonce", &[0x41, 0x01])]);
    assert_eq!(
        parse_document(&with_payload(&encoded, parsed.signature())).unwrap_err(),
        DocumentError::DuplicateField(Field::Nonce)
    );
    let encoded = payload.encode_with(&[("module_id", &[0x61, 0x78])]);
    assert_eq!(
        parse_document(&with_payload(&encoded, parsed.signature())).unwrap_err(),
        DocumentError::DuplicateField(Field::ModuleId)
    );
    // A duplicated PCR index inside the pcrs map.
    let mut duplicated_pcr = payload.clone();
    duplicated_pcr.pcrs.push(duplicated_pcr.pcrs[0].clone());
    assert_eq!(
        parse_document(&with_payload(&duplicated_pcr.encode(), parsed.signature())).unwrap_err(),
        DocumentError::DuplicatePcr { index: 0 }
    );
}

#[test]
fn structural_rules_are_enforced() {
    let document = real_document("marlin_aws_2024-12-13");
    let parsed = parse_document(&document.bytes).unwrap();
    let base = Payload::from_document(&parsed);
    let reject = |payload: &Payload| {
        parse_document(&with_payload(&payload.encode(), parsed.signature())).unwrap_err()
    };

    let mut p = base.clone();
    p.digest = "SHA256".to_owned();
    assert!(matches!(
        reject(&p),
        DocumentError::UnsupportedDigest { .. }
    ));
    let mut p = base.clone();
    p.module_id = String::new();
    assert_eq!(reject(&p), DocumentError::EmptyModuleId);
    let mut p = base.clone();
    p.timestamp = 0;
    assert_eq!(reject(&p), DocumentError::ZeroTimestamp);
    let mut p = base.clone();
    p.pcrs.clear();
    assert_eq!(reject(&p), DocumentError::PcrCount { count: 0 });
    let mut p = base.clone();
    p.pcrs[1].0 = 32;
    assert_eq!(reject(&p), DocumentError::PcrIndexOutOfRange { index: 32 });
    let mut p = base.clone();
    p.pcrs[2].1.truncate(47);
    assert_eq!(
        reject(&p),
        DocumentError::PcrLength {
            index: 2,
            length: 47
        }
    );
    let mut p = base.clone();
    p.cabundle.clear();
    assert!(matches!(
        reject(&p),
        DocumentError::CabundleCount { count: 0, .. }
    ));
    let mut p = base.clone();
    p.cabundle[1] = vec![0x30; 1025];
    assert!(matches!(
        reject(&p),
        DocumentError::FieldLength {
            field: Field::Cabundle,
            length: 1025,
            ..
        }
    ));
    let mut p = base.clone();
    p.nonce = Some(vec![0; 513]);
    assert!(matches!(
        reject(&p),
        DocumentError::FieldLength {
            field: Field::Nonce,
            ..
        }
    ));
    let mut p = base.clone();
    p.user_data = Some(vec![0; 513]);
    assert!(matches!(
        reject(&p),
        DocumentError::FieldLength {
            field: Field::UserData,
            ..
        }
    ));
    let mut p = base.clone();
    p.public_key = Some(vec![0; 1025]);
    assert!(matches!(
        reject(&p),
        DocumentError::FieldLength {
            field: Field::PublicKey,
            ..
        }
    ));

    // Wrong types and unknown or missing fields, written by hand.
    let forged = |payload: Vec<u8>| parse_document(&with_payload(&payload, parsed.signature()));
    let mut wrong_type = base.encode();
    // "timestamp" as text: replace the map with one whose timestamp is a string.
    wrong_type.clear();
    let mut writer = common::CborWriter::default();
    writer.head(5, 1).text("timestamp").text("1");
    wrong_type.extend_from_slice(&writer.out);
    assert!(matches!(
        forged(wrong_type).unwrap_err(),
        DocumentError::WrongType {
            field: Field::Timestamp,
            ..
        }
    ));
    let mut writer = common::CborWriter::default();
    writer.head(5, 1).text("module_id").text("x");
    assert_eq!(
        forged(writer.out).unwrap_err(),
        DocumentError::MissingField(Field::Digest)
    );
    let mut writer = common::CborWriter::default();
    writer.head(5, 1).text("extra").text("x");
    assert!(matches!(
        forged(writer.out).unwrap_err(),
        DocumentError::UnknownField { .. }
    ));
    let mut writer = common::CborWriter::default();
    writer.head(4, 0);
    assert_eq!(
        forged(writer.out).unwrap_err(),
        DocumentError::PayloadNotMap
    );
    // Indefinite-length map.
    assert!(matches!(
        forged(vec![0xbf, 0xff]).unwrap_err(),
        DocumentError::NonCanonicalCbor { .. }
    ));
}

#[test]
fn oversized_and_empty_input_is_rejected_before_parsing() {
    assert_eq!(parse_document(&[]).unwrap_err(), DocumentError::Empty);
    let huge = vec![0u8; attestation_verifier::MAX_DOCUMENT_BYTES + 1];
    assert!(matches!(
        parse_document(&huge).unwrap_err(),
        DocumentError::TooLarge { .. }
    ));
    // A tag other than 18.
    let mut tagged = vec![0xd8, 0x62];
    tagged.extend_from_slice(&real_documents()[0].bytes);
    assert_eq!(
        parse_document(&tagged).unwrap_err(),
        DocumentError::UnexpectedTag
    );
}

#[test]
fn a_foreign_first_cabundle_entry_is_never_trusted() {
    // The document's own first entry replaced by another self-signed CA: rejected as untrusted
    // even though the chain below could be re-signed by it.
    let target = real_document("marlin_aws_2024-12-13");
    let parsed = parse_document(&target.bytes).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let fake_root = params.self_signed(&key).unwrap();
    let mut payload = Payload::from_document(&parsed);
    payload.cabundle[0] = fake_root.der().to_vec();
    let forged = with_payload(&payload.encode(), parsed.signature());
    assert!(matches!(
        verifier().verify(&forged, &permissive(), UnixMillis(target.timestamp_ms())),
        Err(VerifyError::UntrustedRoot { .. })
    ));
}

#[test]
fn a_cached_chain_never_skips_the_document_signature() {
    let target = real_document("marlin_verifier_2024-08-07");
    let at = UnixMillis(target.timestamp_ms());
    let cached = Verifier::with_intermediate_cache(TrustAnchor::aws_nitro_root_g1());
    cached.verify(&target.bytes, &Policy::new(), at).unwrap();
    // Same certificates (all cached now), different payload.
    let parsed = parse_document(&target.bytes).unwrap();
    let mut payload = Payload::from_document(&parsed);
    payload.nonce = Some(b"replayed".to_vec());
    let forged = with_payload(&payload.encode(), parsed.signature());
    assert_eq!(
        cached.verify(&forged, &Policy::new(), at),
        Err(VerifyError::SignatureInvalid)
    );
    // A cached leaf is still checked for validity at every use.
    let after_leaf_expiry = UnixMillis(at.0 + 4 * 3_600_000);
    assert!(matches!(
        cached.verify(&target.bytes, &Policy::new(), after_leaf_expiry),
        Err(VerifyError::CertificateExpired { certificate, .. }) if certificate.position == ChainPosition::Leaf
    ));
}
