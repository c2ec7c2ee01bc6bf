//! Client SDK for attested inference on AWS Nitro Enclaves (docs/protocol.md):
//! - [`policy`]: what a client requires of an enclave (root, image, model, age);
//! - [`connection`] (feature `net`): an attested TLS connection: the enclave's self-signed
//!   certificate is accepted only once a document fetched with a fresh nonce on that same
//!   connection verifies and binds the certificate's key; then chat, non-streamed or streamed,
//!   every answer checked against its receipt;
//! - [`exchange`], [`headers`], [`sse`]: the receipt checks, the receipt headers and the
//!   signed event stream;
//! - [`evidence`]: evidence bundles, saved after a verified answer and verified offline.
//!
//! Everything fails closed: an answer is returned only after its receipt verified.
#![forbid(unsafe_code)]

#[cfg(feature = "net")]
pub mod connection;
pub mod evidence;
pub mod exchange;
pub mod headers;
pub mod policy;
pub mod sse;

pub use evidence::{EvidenceBundle, EvidenceError, VerifiedEvidence};
pub use exchange::ExchangeError;
pub use policy::{ClientPolicy, PolicyError, TrustedEnclave};
