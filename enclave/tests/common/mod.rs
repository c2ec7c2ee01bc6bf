//! Shared helpers for the enclave's integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod https;

use std::path::{Path, PathBuf};

use attestation_verifier::{Policy, TrustAnchor, UnixMillis, VerifiedAttestation, Verifier};
use enclave::attester::{AttestationRequest, Attester, DevAttester, DevCa, DevMeasurements};
use enclave::identity::EnclaveIdentity;

/// The SHA-256 of the project's default model (docs/protocol.md §1).
pub const SMOLLM2_SHA256: [u8; 32] = [
    0xb1, 0x79, 0xc9, 0x52, 0x3d, 0x0e, 0x6a, 0x0f, 0x98, 0xa3, 0x30, 0xc7, 0x56, 0x2b, 0x68, 0x27,
    0x50, 0xa6, 0xf8, 0xc8, 0xc1, 0x5e, 0x5b, 0xc7, 0x0e, 0xa3, 0x73, 0x72, 0x81, 0x10, 0xdb, 0x53,
];

/// The real model: `ATTESTED_MODEL_PATH`, or `.cache/models/` in the workspace.
pub fn model_path() -> PathBuf {
    let path = std::env::var_os("ATTESTED_MODEL_PATH").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "the test model is missing at {}: run scripts/fetch-model.sh (or set ATTESTED_MODEL_PATH)",
        path.display()
    );
    path
}

/// A private temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let mut random = [0u8; 8];
        aws_lc_rs::rand::fill(&mut random).expect("random");
        let name: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        let path = std::env::temp_dir().join(format!("enclave-it-{name}"));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A development attester with a fresh CA in a temporary directory, measuring this test
/// binary and the default model.
pub fn dev_attester() -> (TempDir, DevAttester) {
    let directory = TempDir::new();
    let ca = DevCa::load_or_create(&directory.path().join("dev-pki")).expect("dev CA");
    let measurements = DevMeasurements::for_running_executable(&SMOLLM2_SHA256).expect("measure");
    (
        directory,
        DevAttester::new(ca, measurements).expect("dev attester"),
    )
}

/// A verifier trusting the attester's development root explicitly.
pub fn dev_verifier(attester: &DevAttester) -> Verifier {
    Verifier::new(TrustAnchor::from_der_explicit(attester.ca().root_der()).expect("anchor"))
}

/// A boot document for `identity`, verified under the development root.
pub fn verified_boot_document(
    attester: &DevAttester,
    identity: &EnclaveIdentity,
) -> VerifiedAttestation {
    let document = attester
        .attest(&identity.boot_attestation_request(None))
        .expect("boot document");
    dev_verifier(attester)
        .verify(&document, &Policy::new(), UnixMillis::now())
        .expect("boot document verifies")
}

/// A verified document for an arbitrary request.
pub fn verified_document(
    attester: &DevAttester,
    request: &AttestationRequest,
) -> VerifiedAttestation {
    let document = attester.attest(request).expect("document");
    dev_verifier(attester)
        .verify(&document, &Policy::new(), UnixMillis::now())
        .expect("document verifies")
}
