//! The enclave application's building blocks (the `enclave` binary is in `main.rs`):
//! - [`attester`]: attestation documents from the Nitro Secure Module or the development CA;
//! - [`identity`]: the keys generated at boot (receipt signing key, TLS key and certificate);
//! - [`transport`]: vsock or TCP listeners;
//! - [`boot`]: model check → keys → boot document, and the document refresher;
//! - [`config`]: the server's settings from a TOML file, the environment and the command line;
//! - [`server`]: the attested HTTPS server (OpenAI-compatible API, receipts, metrics).
//!
//! Formats follow `docs/protocol.md`; receipts, bindings and stream hashes are computed by
//! the verifier crate (`attestation_verifier::{receipt, binding, stream}`), so the enclave
//! signs exactly what clients check.
#![forbid(unsafe_code)]

pub mod attester;
pub mod boot;
pub mod config;
pub mod identity;
pub mod server;
pub mod transport;

/// Lowercase hex, for logs and names (never for secrets).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}
