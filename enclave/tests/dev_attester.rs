//! The development attester's documents: the NSM's format, accepted by the project's verifier
//! only under the development root passed explicitly, with the requested fields and the
//! documented PCRs; the CA directory survives restarts and is never silently repaired.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use attestation_verifier::{
    ChainPosition, Policy, TrustAnchor, UnixMillis, Verifier, VerifyError, parse_document,
};
use common::{SMOLLM2_SHA256, TempDir, dev_attester, dev_verifier};
use enclave::attester::{
    AttestationRequest, Attester, AttesterError, AttesterKind, DEV_LEAF_LIFETIME, DevAttester,
    DevCa, DevMeasurements,
};

fn vectors_dir() -> std::path::PathBuf {
    let directory = std::env::var_os("NITRO_VECTORS_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/nitro"),
        std::path::PathBuf::from,
    );
    assert!(
        directory.join("marlin_aws_2024-12-13.cbor").is_file(),
        "real Nitro documents not found in {}: put shared/vectors/nitro beside the checkout \
         or set NITRO_VECTORS_DIR",
        directory.display()
    );
    directory
}

fn full_request() -> AttestationRequest {
    AttestationRequest {
        public_key: Some(vec![0x04; 65]),
        user_data: Some(vec![0x01; 65]),
        nonce: Some(b"client challenge 0123456789".to_vec()),
    }
}

#[test]
fn documents_verify_under_the_dev_root_with_the_requested_fields() {
    let (_directory, attester) = dev_attester();
    assert_eq!(attester.kind(), AttesterKind::Development);
    let request = full_request();
    let document = attester.attest(&request).expect("document");
    let measurements = attester.measurements();
    let policy = Policy::new()
        .expect_pcr(0, measurements.pcr(0).expect("pcr0").to_vec())
        .expect_pcr(1, measurements.pcr(1).expect("pcr1").to_vec())
        .expect_pcr(2, measurements.pcr(2).expect("pcr2").to_vec())
        .expect_nonce(request.nonce.clone().expect("nonce"))
        .expect_user_data(request.user_data.clone().expect("user_data"))
        .expect_public_key(request.public_key.clone().expect("public_key"))
        .max_age(Duration::from_secs(60));
    let verified = dev_verifier(&attester)
        .verify(&document, &policy, UnixMillis::now())
        .expect("verifies under the development root");
    assert!(!verified.is_debug_mode());
    assert_eq!(verified.module_id(), attester.module_id());
    assert_eq!(verified.pcrs().len(), 16);
    assert_eq!(verified.chain().len(), 3, "root, intermediate, leaf");
    assert_eq!(
        verified.anchor_sha256(),
        TrustAnchor::from_der_explicit(attester.ca().root_der())
            .expect("anchor")
            .sha256()
    );
    // PCR2 measures the configuration with the expected model hash.
    let expected_pcr2 = DevMeasurements::new([0u8; 48], &SMOLLM2_SHA256);
    assert_eq!(verified.pcr(2), expected_pcr2.pcr(2).map(|pcr| &pcr[..]));
    // The leaf lives about as long as AWS's.
    let leaf = verified.chain().last().expect("leaf");
    assert_eq!(leaf.position, ChainPosition::Leaf);
    let lifetime_ms = leaf.not_after.as_millis() - verified.timestamp().as_millis();
    let expected_ms = DEV_LEAF_LIFETIME.as_millis() as u64;
    assert!(
        lifetime_ms <= expected_ms && lifetime_ms + 2_000 >= expected_ms,
        "leaf lives {lifetime_ms} ms after the document"
    );
}

#[test]
fn documents_are_rejected_under_the_default_aws_root() {
    let (_directory, attester) = dev_attester();
    let document = attester.attest(&full_request()).expect("document");
    let error = Verifier::new(TrustAnchor::aws_nitro_root_g1())
        .verify(&document, &Policy::new(), UnixMillis::now())
        .expect_err("never trusted by default");
    assert!(
        matches!(error, VerifyError::UntrustedRoot { .. }),
        "{error:?}"
    );
    let error = Verifier::new(TrustAnchor::default())
        .verify(&document, &Policy::new(), UnixMillis::now())
        .expect_err("never trusted by default");
    assert!(matches!(error, VerifyError::UntrustedRoot { .. }));
}

#[test]
fn another_development_root_is_not_trusted() {
    let (_first_directory, first) = dev_attester();
    let (_second_directory, second) = dev_attester();
    let document = first.attest(&full_request()).expect("document");
    assert!(matches!(
        dev_verifier(&second).verify(&document, &Policy::new(), UnixMillis::now()),
        Err(VerifyError::UntrustedRoot { .. })
    ));
}

#[test]
fn a_tampered_document_is_rejected() {
    let (_directory, attester) = dev_attester();
    let document = attester.attest(&full_request()).expect("document");
    let verifier = dev_verifier(&attester);
    let nonce = b"client challenge 0123456789";
    let position = document
        .windows(nonce.len())
        .position(|window| window == nonce)
        .expect("nonce in the payload");
    let mut tampered = document.clone();
    tampered[position] ^= 0x01;
    assert!(matches!(
        verifier.verify(&tampered, &Policy::new(), UnixMillis::now()),
        Err(VerifyError::SignatureInvalid)
    ));
    let mut bad_signature = document;
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x01;
    assert!(
        verifier
            .verify(&bad_signature, &Policy::new(), UnixMillis::now())
            .is_err()
    );
}

/// Offsets of each payload key, to compare field order with a real document.
fn key_offsets(payload: &[u8]) -> Vec<usize> {
    [
        "module_id",
        "digest",
        "timestamp",
        "pcrs",
        "certificate",
        "cabundle",
        "public_key",
        "user_data",
        "nonce",
    ]
    .iter()
    .map(|key| {
        let mut encoded = vec![0x60 | key.len() as u8];
        encoded.extend_from_slice(key.as_bytes());
        payload
            .windows(encoded.len())
            .position(|window| window == encoded.as_slice())
            .unwrap_or_else(|| panic!("key {key} not found"))
    })
    .collect()
}

#[test]
fn the_format_matches_real_nsm_documents() {
    let real = std::fs::read(vectors_dir().join("marlin_aws_2024-12-13.cbor")).expect("read");
    let (_directory, attester) = dev_attester();
    // Like the real one: public_key present, user_data and nonce absent.
    let request = AttestationRequest {
        public_key: Some(vec![0x04; 65]),
        user_data: None,
        nonce: None,
    };
    let ours = attester.attest(&request).expect("document");

    // Untagged COSE_Sign1: array(4), protected bstr(4) a1013822, empty unprotected map,
    // payload as a 2-byte-length bstr, a 96-byte signature last.
    assert_eq!(&ours[..7], &real[..7]);
    assert_eq!(&ours[..7], &[0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0]);
    assert_eq!(ours[7], real[7]);
    assert_eq!(&ours[ours.len() - 98..ours.len() - 96], &[0x58, 0x60]);

    let ours_parsed = parse_document(&ours).expect("parses");
    let real_parsed = parse_document(&real).expect("parses");
    let ours_payload = ours_parsed.payload();
    let real_payload = real_parsed.payload();
    // A nine-entry map with the keys in the NSM's order.
    assert_eq!(ours_payload[0], 0xa9);
    assert_eq!(real_payload[0], 0xa9);
    let ours_offsets = key_offsets(ours_payload);
    let real_offsets = key_offsets(real_payload);
    assert!(ours_offsets.is_sorted(), "{ours_offsets:?}");
    assert!(real_offsets.is_sorted(), "{real_offsets:?}");
    // Absent optionals are CBOR null, and the payload ends exactly like the real one.
    let tail = b"\x69user_data\xf6\x65nonce\xf6";
    assert!(ours_payload.ends_with(tail));
    assert!(real_payload.ends_with(tail));
    // digest "SHA384", 16 PCRs of 48 bytes, like the real one.
    assert_eq!(ours_parsed.pcrs().len(), real_parsed.pcrs().len());
    assert!(
        ours_parsed
            .pcrs()
            .iter()
            .all(|(_, value)| value.len() == 48)
    );
    let digest_entry = b"\x66digest\x66SHA384\x69timestamp";
    for payload in [ours_payload, real_payload] {
        assert!(
            payload
                .windows(digest_entry.len())
                .any(|window| window == digest_entry)
        );
    }
    // cabundle root first: its first entry is the development root.
    assert_eq!(ours_parsed.cabundle()[0], attester.ca().root_der());
    assert_eq!(ours_parsed.cabundle().len(), 2);
}

#[test]
fn the_ca_directory_keeps_its_root_across_restarts() {
    let directory = TempDir::new();
    let pki = directory.path().join("nested").join("dev-pki");
    let first = DevCa::load_or_create(&pki).expect("create");
    let root_pem = std::fs::read_to_string(pki.join("root.pem")).expect("root.pem");
    assert!(root_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let key_mode = std::fs::metadata(pki.join("root-key.pem"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let directory_mode = std::fs::metadata(&pki).expect("dir").permissions().mode();
    assert_eq!(directory_mode & 0o077, 0, "CA directory is private");
    // The PEM clients are pointed at is the anchor documents chain to.
    let anchor = TrustAnchor::from_pem_explicit(root_pem.as_bytes()).expect("usable anchor");
    assert_eq!(anchor.der(), first.root_der());

    let first_root = first.root_der().to_vec();
    drop(first);
    let second = DevCa::load_or_create(&pki).expect("load");
    assert_eq!(second.root_der(), first_root.as_slice());
    // Documents from the reloaded CA verify under the PEM written the first time.
    let attester =
        DevAttester::new(second, DevMeasurements::new([9u8; 48], &SMOLLM2_SHA256)).expect("new");
    let document = attester.attest(&full_request()).expect("document");
    Verifier::new(anchor)
        .verify(&document, &Policy::new(), UnixMillis::now())
        .expect("verifies under the original root.pem");
    // Only the root's two files are written (and the empty lock file that serialises enclaves
    // sharing the directory): no intermediate, leaf or enclave key.
    let mut files: Vec<_> = std::fs::read_dir(&pki)
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    files.sort();
    assert_eq!(files, [".lock", "root-key.pem", "root.pem"]);
    assert_eq!(
        std::fs::metadata(pki.join(".lock")).expect("lock").len(),
        0,
        "the lock file holds nothing"
    );
}

#[test]
fn an_incomplete_or_corrupt_ca_directory_is_refused() {
    let directory = TempDir::new();
    let pki = directory.path().join("pki");
    drop(DevCa::load_or_create(&pki).expect("create"));

    let key = std::fs::read(pki.join("root-key.pem")).expect("key");
    std::fs::remove_file(pki.join("root-key.pem")).expect("remove");
    assert!(matches!(
        DevCa::load_or_create(&pki),
        Err(AttesterError::DevCaIncomplete { .. })
    ));
    std::fs::write(pki.join("root-key.pem"), &key).expect("restore");

    let root = std::fs::read(pki.join("root.pem")).expect("root");
    std::fs::remove_file(pki.join("root.pem")).expect("remove");
    assert!(matches!(
        DevCa::load_or_create(&pki),
        Err(AttesterError::DevCaIncomplete { .. })
    ));
    std::fs::write(pki.join("root.pem"), b"not a certificate").expect("corrupt");
    assert!(matches!(
        DevCa::load_or_create(&pki),
        Err(AttesterError::DevCaInvalid { .. })
    ));
    // Another CA's root beside this key: refused, not trusted.
    let other_directory = TempDir::new();
    let other = DevCa::load_or_create(other_directory.path()).expect("other");
    drop(other);
    let other_root = std::fs::read(other_directory.path().join("root.pem")).expect("other root");
    std::fs::write(pki.join("root.pem"), other_root).expect("swap");
    match DevCa::load_or_create(&pki) {
        Err(AttesterError::DevCaInvalid { reason, .. }) => {
            assert!(reason.contains("root-key.pem"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    std::fs::write(pki.join("root.pem"), root).expect("restore");
    DevCa::load_or_create(&pki).expect("whole again");
}

#[test]
fn oversized_requests_are_refused() {
    let (_directory, attester) = dev_attester();
    let request = AttestationRequest {
        user_data: Some(vec![0; 513]),
        ..AttestationRequest::default()
    };
    assert!(matches!(
        attester.attest(&request),
        Err(AttesterError::FieldTooLarge {
            field: "user_data",
            ..
        })
    ));
}

#[test]
fn every_document_has_a_fresh_leaf() {
    let (_directory, attester) = dev_attester();
    let first = parse_document(&attester.attest(&full_request()).expect("doc")).expect("parse");
    let second = parse_document(&attester.attest(&full_request()).expect("doc")).expect("parse");
    assert_ne!(first.certificate(), second.certificate());
    assert_eq!(first.cabundle(), second.cabundle());
}
