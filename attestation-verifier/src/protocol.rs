//! The wire facts both ends agree on (docs/protocol.md §2, §4a, §5, §5a), defined once here:
//! the enclave writes them, clients and relayers read them, and nobody spells them again.
//!
//! - [`headers`]: the `x-attested-*` receipt headers (also SSE fields) and the nonce limit;
//! - the endpoint paths of the attested API and of the enclave's parent channel;
//! - the attestation document's field limits (what the NSM accepts and the parser allows).

/// The receipt headers of docs/protocol.md §4a.
pub mod headers {
    /// `x-attested-model-sha256`: the attested model's SHA-256, hex.
    pub const MODEL_SHA256: &str = "x-attested-model-sha256";
    /// `x-attested-request-sha256`: SHA-256 of the exact request body, hex.
    pub const REQUEST_SHA256: &str = "x-attested-request-sha256";
    /// `x-attested-response-sha256`: SHA-256 of the exact response body, hex.
    pub const RESPONSE_SHA256: &str = "x-attested-response-sha256";
    /// `x-attested-timestamp-ms` (also an SSE field).
    pub const TIMESTAMP_MS: &str = "x-attested-timestamp-ms";
    /// `x-attested-signature` (also an SSE field).
    pub const SIGNATURE: &str = "x-attested-signature";
    /// `x-attested-document`: the boot document, base64.
    pub const DOCUMENT: &str = "x-attested-document";
    /// `x-attested-response-document` (also an SSE field of the `[DONE]` event).
    pub const RESPONSE_DOCUMENT: &str = "x-attested-response-document";
    /// `x-attested-nonce`: the client's request for a per-response document.
    pub const NONCE: &str = "x-attested-nonce";
    /// Most bytes of an `x-attested-nonce` (hex: twice as many digits).
    pub const MAX_NONCE_BYTES: usize = 64;
}

/// OpenAI-compatible chat completions.
pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";
/// OpenAI-compatible (legacy) completions.
pub const COMPLETIONS_PATH: &str = "/v1/completions";
/// The model list; `/v1/models/<id>` is one model.
pub const MODELS_PATH: &str = "/v1/models";
/// A fresh attestation document (`?nonce=<hex>`), or the boot document without a nonce.
pub const ATTESTATION_PATH: &str = "/v1/attestation";
/// Liveness and the served model.
pub const HEALTH_PATH: &str = "/health";
/// The enclave's endpoint that answers an on-chain request and signs its
/// [`crate::onchain::Fulfillment`] (docs/protocol.md §5), on the attested connection.
pub const FULFILLMENTS_PATH: &str = "/v1/onchain/fulfillments";
/// The parent channel's endpoint that binds the operator an enclave serves
/// (docs/protocol.md §5a): `PUT` `{"operator": "0x…"}` once per boot, `GET` to read it.
pub const PARENT_OPERATOR_PATH: &str = "/v1/operator";
/// The parent channel's Prometheus metrics.
pub const PARENT_METRICS_PATH: &str = "/metrics";

/// Most `public_key` bytes in a document (the NSM's limit; the parser refuses more).
pub const MAX_PUBLIC_KEY_BYTES: usize = 1024;
/// Most `user_data` bytes in a document.
pub const MAX_USER_DATA_BYTES: usize = 512;
/// Most `nonce` bytes in a document.
pub const MAX_NONCE_BYTES: usize = 512;
