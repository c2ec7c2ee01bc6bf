//! Strict verifier for AWS Nitro Enclaves attestation documents.
//!
//! A document is accepted only when all of the following hold (details in `docs/verifier.md`):
//! - it is a COSE_Sign1 (tagged 18 or untagged) whose protected header is exactly `{1: -35}`
//!   (ES384) and whose payload follows AWS's rules, decoded by a strict CBOR reader;
//! - its `cabundle[0]` is the configured trust anchor (by default the pinned AWS Nitro
//!   Enclaves Root G1) and every link root → intermediates → leaf verifies (names, P-384
//!   ecdsa-with-SHA384 signatures, CA flags, keyCertSign, path lengths, an end-entity leaf
//!   with digitalSignature), each certificate valid at the caller's explicit time;
//! - the ES384 signature over the COSE `Sig_structure` verifies under the leaf's key;
//! - the caller's [`Policy`] holds (PCRs, debug mode, nonce, age, user_data, public_key).
//!
//! ```no_run
//! use attestation_verifier::{Policy, TrustAnchor, UnixMillis, Verifier};
//! # fn demo(document: &[u8], expected_pcr0: &[u8]) -> Result<(), attestation_verifier::VerifyError> {
//! let verifier = Verifier::new(TrustAnchor::aws_nitro_root_g1());
//! let policy = Policy::new().expect_pcr(0, expected_pcr0);
//! let verified = verifier.verify(document, &policy, UnixMillis::now())?;
//! println!("{} at {}", verified.module_id(), verified.timestamp());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod anchor;
pub mod binding;
mod cbor;
mod chain;
pub mod cose;
mod crypto;
mod document;
mod error;
pub mod onchain;
mod policy;
pub mod protocol;
pub mod receipt;
pub mod stream;
mod time;
mod verifier;

pub use anchor::{AWS_NITRO_ROOT_G1_SHA256, TrustAnchor};
pub use crypto::{P384_UNCOMPRESSED_POINT_BYTES, SignatureError, verify_es384};
pub use document::{AttestationDocument, MAX_CABUNDLE_ENTRIES, MAX_DOCUMENT_BYTES, parse_document};
pub use error::{AnchorError, CertificateRef, ChainPosition, DocumentError, Field, VerifyError};
pub use policy::Policy;
pub use time::UnixMillis;
pub use verifier::{CertificateSummary, VerifiedAttestation, Verifier};
