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

/// `0x`-prefixed hex (bytes in JSON and settings).
pub(crate) fn parse_0x_hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| "hex must start with 0x".to_owned())?;
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".to_owned());
    }
    hex::decode(digits).map_err(|_| "not hex".to_owned())
}

/// `0x`-prefixed hex of exactly `N` bytes (addresses and hashes).
pub(crate) fn parse_0x_hex<const N: usize>(text: &str) -> Result<[u8; N], String> {
    parse_0x_hex_bytes(text)?
        .try_into()
        .map_err(|bytes: Vec<u8>| format!("expected {N} bytes, found {}", bytes.len()))
}
