//! The boot sequence on the real model: a wrong hash stops the boot; a right one yields keys
//! and a boot document that the verifier accepts under the development root, binding exactly
//! the generated keys and the model.

mod common;

use std::path::PathBuf;

use attestation_verifier::binding::BootBinding;
use attestation_verifier::{Policy, TrustAnchor, UnixMillis, Verifier};
use common::{SMOLLM2_SHA256, TempDir, model_path};
use enclave::attester::{AttesterError, DevMeasurements};
use enclave::boot::{BootError, boot};
use enclave::config::{AttesterChoice, EnclaveConfig, Limits};
use inference_engine::{EngineError, NoProgress};

fn config(pki_dir: PathBuf, model_sha256: [u8; 32]) -> EnclaveConfig {
    EnclaveConfig {
        model: model_path(),
        model_sha256,
        listen: "tcp:127.0.0.1:0".parse().expect("listen"),
        parent_listen: None,
        attester: AttesterChoice::Dev { pki_dir },
        server_names: vec!["localhost".to_owned()],
        limits: Limits::default(),
        onchain_relay: None,
    }
}

#[test]
fn a_wrong_model_hash_stops_the_boot_before_any_key() {
    let directory = TempDir::new();
    let pki = directory.path().join("pki");
    let mut wrong = SMOLLM2_SHA256;
    wrong[0] ^= 0xff;
    match boot(&config(pki.clone(), wrong), &mut NoProgress) {
        Err(BootError::Model(EngineError::ModelHashMismatch { .. })) => {}
        other => panic!("unexpected {other:?}"),
    }
    // The attester is opened only after the model check: not even the CA was created.
    assert!(!pki.exists());
}

#[test]
fn a_booted_enclave_has_an_attested_identity() {
    let directory = TempDir::new();
    let pki = directory.path().join("pki");
    let booted = boot(&config(pki.clone(), SMOLLM2_SHA256), &mut NoProgress).expect("boots");
    assert_eq!(booted.engine.model_sha256().0, SMOLLM2_SHA256);

    let root_pem = std::fs::read(pki.join("root.pem")).expect("root.pem written");
    let verifier = Verifier::new(TrustAnchor::from_pem_explicit(&root_pem).expect("anchor"));
    let identity = &booted.identity;
    let expected_pcr2 = DevMeasurements::new([0u8; 48], &SMOLLM2_SHA256);
    let policy = Policy::new()
        .expect_public_key(identity.signing_key.public_key_uncompressed().to_vec())
        .expect_user_data(identity.boot_user_data().to_vec())
        .expect_pcr(2, expected_pcr2.pcr(2).expect("pcr2").to_vec());
    let document = booted.documents.current();
    let verified = verifier
        .verify(&document.bytes, &policy, UnixMillis::now())
        .expect("boot document verifies");
    let binding = BootBinding::from_attestation(&verified).expect("boot binding");
    binding
        .check_tls_spki(identity.tls.spki_der())
        .expect("binds the TLS key");
    binding
        .check_model(&SMOLLM2_SHA256)
        .expect("binds the model");
    assert!(document.leaf_not_after > document.timestamp);

    // A refresh replaces the document with a new one for the same identity.
    let refreshed = booted.refresh_document().expect("refresh");
    assert_ne!(refreshed.bytes, document.bytes);
    assert_eq!(booted.documents.current(), refreshed);
    verifier
        .verify(&refreshed.bytes, &policy, UnixMillis::now())
        .expect("refreshed document verifies");
}

#[test]
fn the_nsm_attester_outside_an_enclave_is_a_clear_boot_error() {
    if std::path::Path::new("/dev/nsm").exists() {
        return; // Inside a Nitro enclave the NSM is available; nothing to check here.
    }
    let mut config = config(PathBuf::from("/unused"), SMOLLM2_SHA256);
    config.attester = AttesterChoice::Nsm;
    match boot(&config, &mut NoProgress) {
        Err(BootError::Attester(AttesterError::DeviceUnavailable { path, .. })) => {
            assert_eq!(path, PathBuf::from("/dev/nsm"));
        }
        other => panic!("unexpected {other:?}"),
    }
}
