//! Evidence bundles (docs/protocol.md §6): one JSON file holding everything needed to verify
//! an answer offline, years later: the attestation document that vouches for the enclave key,
//! the exact request and response bytes (or every signed stream event), the receipt and its
//! signature, and the per-response document when one was requested.
//!
//! Offline verification checks each document at its own timestamp (every Nitro leaf
//! certificate has long expired by then) and applies the same checks as a live answer.

use std::path::Path;

use attestation_verifier::receipt::{Receipt, ReceiptClaims, VerifiedReceipt};
use attestation_verifier::{VerifiedAttestation, parse_document};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::exchange::{
    CompletionExchange, ExchangeError, StreamCheck, VerifyTime, check_response_document,
    verify_completion,
};
use crate::headers::{HeaderError, parse_sha256_hex, parse_signature};
use crate::policy::{ClientPolicy, PolicyError, TrustedEnclave};
use crate::sse::SignedEvent;

/// The `format` value of bundles this version writes and reads.
pub const EVIDENCE_FORMAT: &str = "attested-inference-evidence/1";
/// The largest bundle file read (a bundle is a few KiB plus the answer).
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a bundle could not be read or does not verify: one variant per failed check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The file could not be read or written.
    #[error("evidence file {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// The bundle is not JSON of the expected shape.
    #[error("evidence bundle is not valid JSON of the expected shape: {reason}")]
    Json {
        /// The parser's reason.
        reason: String,
    },
    /// Another format or version.
    #[error("evidence bundle format {found:?} is not {EVIDENCE_FORMAT:?}")]
    UnsupportedFormat {
        /// The bundle's `format`.
        found: String,
    },
    /// A field's value is malformed.
    #[error("evidence bundle field {field}: {reason}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The attestation document fails the policy at its own time.
    #[error("attestation document rejected: {0}")]
    Document(PolicyError),
    /// The answer fails a check against the document.
    #[error("{0}")]
    Exchange(#[from] ExchangeError),
    /// A stream bundle's receipt is not the one its `[DONE]` event carries.
    #[error("the bundle's receipt is not the receipt of its stream's final event")]
    ReceiptMismatch,
}

/// The receipt as stored: the signed claims (hex) and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceReceipt {
    /// `modelHash`, 64 hex.
    pub model_sha256: String,
    /// `requestHash`, 64 hex.
    pub request_sha256: String,
    /// `responseHash`, 64 hex (a stream's final chain value).
    pub response_sha256: String,
    /// `timestampMs`.
    pub timestamp_ms: u64,
    /// `0x` + 130 hex: `r || s || v`.
    pub signature: String,
}

/// One signed stream event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceEvent {
    /// The event's data bytes (`chunk_i`), standard base64.
    pub data: String,
    /// The event's receipt timestamp.
    pub timestamp_ms: u64,
    /// The event's signature, `0x` + 130 hex.
    pub signature: String,
}

/// An evidence bundle (the JSON file's content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBundle {
    /// [`EVIDENCE_FORMAT`].
    pub format: String,
    /// The request's path, e.g. `/v1/chat/completions` (informational: the receipt binds the
    /// body, not the path).
    pub endpoint: String,
    /// The boot attestation document that vouches for the receipt key (COSE_Sign1, base64).
    pub attestation_document: String,
    /// The challenge the client sent for that document, hex (null when none).
    pub attestation_nonce: Option<String>,
    /// The exact request body, base64.
    pub request_body: String,
    /// The exact response body, base64 (non-streamed answers; null for streams).
    pub response_body: Option<String>,
    /// Every signed event of a streamed answer, `[DONE]` last (null for non-streamed).
    pub stream_events: Option<Vec<EvidenceEvent>>,
    /// The receipt of the whole answer.
    pub receipt: EvidenceReceipt,
    /// The per-response document binding the receipt's digest (base64), if requested.
    pub response_document: Option<String>,
    /// The nonce sent for the per-response document, hex.
    pub response_nonce: Option<String>,
}

/// What a bundle proves once verified.
#[derive(Debug, Clone)]
pub struct VerifiedEvidence {
    /// The enclave (document, binding, signer) verified at the document's time.
    pub enclave: TrustedEnclave,
    /// The verified receipt of the whole answer.
    pub receipt: VerifiedReceipt,
    /// The per-response document, verified, if the bundle has one.
    pub response_document: Option<VerifiedAttestation>,
    /// Whether the answer was streamed (and how many events it had).
    pub stream_events: Option<usize>,
    /// The answer text.
    pub answer: String,
    /// The bundle's endpoint.
    pub endpoint: String,
}

/// The parts of a verified exchange a bundle is built from.
#[derive(Debug, Clone, Copy)]
pub struct EvidenceParts<'a> {
    /// The request path.
    pub endpoint: &'a str,
    /// The verified boot document.
    pub attestation_document: &'a [u8],
    /// Its challenge.
    pub attestation_nonce: Option<&'a [u8]>,
    /// The exact request body.
    pub request_body: &'a [u8],
    /// The receipt's claims.
    pub claims: &'a ReceiptClaims,
    /// The receipt's signature.
    pub signature: &'a [u8],
    /// The per-response document and its nonce.
    pub response_document: Option<(&'a [u8], &'a [u8])>,
}

fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn malformed(field: &'static str) -> impl Fn(String) -> EvidenceError {
    move |reason| EvidenceError::Malformed { field, reason }
}

fn decode_base64(field: &'static str, value: &str) -> Result<Vec<u8>, EvidenceError> {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|error| malformed(field)(format!("invalid base64: {error}")))
}

fn decode_hex(field: &'static str, value: &str) -> Result<Vec<u8>, EvidenceError> {
    hex::decode(value).map_err(|error| malformed(field)(format!("invalid hex: {error}")))
}

fn header_field(field: &'static str) -> impl Fn(HeaderError) -> EvidenceError {
    move |error| match error {
        HeaderError::Malformed { reason, .. } => malformed(field)(reason),
        other => malformed(field)(other.to_string()),
    }
}

impl EvidenceReceipt {
    fn new(claims: &ReceiptClaims, signature: &[u8]) -> Self {
        Self {
            model_sha256: hex::encode(claims.model_hash),
            request_sha256: hex::encode(claims.request_hash),
            response_sha256: hex::encode(claims.response_hash),
            timestamp_ms: claims.timestamp_ms,
            signature: format!("0x{}", hex::encode(signature)),
        }
    }

    fn decode(&self) -> Result<Receipt, EvidenceError> {
        Ok(Receipt {
            claims: ReceiptClaims {
                model_hash: parse_sha256_hex("", &self.model_sha256)
                    .map_err(header_field("receipt.model_sha256"))?,
                request_hash: parse_sha256_hex("", &self.request_sha256)
                    .map_err(header_field("receipt.request_sha256"))?,
                response_hash: parse_sha256_hex("", &self.response_sha256)
                    .map_err(header_field("receipt.response_sha256"))?,
                timestamp_ms: self.timestamp_ms,
            },
            signature: parse_signature("", &self.signature)
                .map_err(header_field("receipt.signature"))?,
        })
    }
}

impl EvidenceBundle {
    fn from_parts(parts: &EvidenceParts<'_>) -> Self {
        Self {
            format: EVIDENCE_FORMAT.to_owned(),
            endpoint: parts.endpoint.to_owned(),
            attestation_document: base64_encode(parts.attestation_document),
            attestation_nonce: parts.attestation_nonce.map(hex::encode),
            request_body: base64_encode(parts.request_body),
            response_body: None,
            stream_events: None,
            receipt: EvidenceReceipt::new(parts.claims, parts.signature),
            response_document: parts
                .response_document
                .map(|(document, _)| base64_encode(document)),
            response_nonce: parts.response_document.map(|(_, nonce)| hex::encode(nonce)),
        }
    }

    /// A bundle for a non-streamed answer.
    pub fn for_completion(parts: &EvidenceParts<'_>, response_body: &[u8]) -> Self {
        Self {
            response_body: Some(base64_encode(response_body)),
            ..Self::from_parts(parts)
        }
    }

    /// A bundle for a streamed answer (`events` as received, `[DONE]` last).
    pub fn for_stream(parts: &EvidenceParts<'_>, events: &[SignedEvent]) -> Self {
        let events = events
            .iter()
            .map(|event| EvidenceEvent {
                data: base64_encode(&event.data),
                timestamp_ms: event.timestamp_ms,
                signature: format!("0x{}", hex::encode(&event.signature)),
            })
            .collect();
        Self {
            stream_events: Some(events),
            ..Self::from_parts(parts)
        }
    }

    /// The bundle as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain strings, numbers and options cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Parses a bundle from JSON (strictly: no unknown fields).
    ///
    /// # Errors
    /// [`EvidenceError::Json`].
    pub fn from_json(json: &[u8]) -> Result<Self, EvidenceError> {
        serde_json::from_slice(json).map_err(|error| EvidenceError::Json {
            reason: error.to_string(),
        })
    }

    /// Writes the bundle to `path`.
    ///
    /// # Errors
    /// [`EvidenceError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), EvidenceError> {
        std::fs::write(path, self.to_json()).map_err(|error| EvidenceError::Io {
            path: path.display().to_string(),
            reason: error.to_string(),
        })
    }

    /// Reads a bundle from `path` (at most [`MAX_BUNDLE_BYTES`]).
    ///
    /// # Errors
    /// [`EvidenceError::Io`] or [`EvidenceError::Json`].
    pub fn load(path: &Path) -> Result<Self, EvidenceError> {
        use std::io::Read as _;
        let io = |reason: String| EvidenceError::Io {
            path: path.display().to_string(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|error| io(error.to_string()))?;
        let mut bytes = Vec::new();
        file.take(MAX_BUNDLE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| io(error.to_string()))?;
        if bytes.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(io(format!("larger than {MAX_BUNDLE_BYTES} bytes")));
        }
        Self::from_json(&bytes)
    }

    /// Verifies the bundle offline under `policy`, each document at its own timestamp.
    ///
    /// Order: format; the boot document (chain, signature, image, the recorded nonce, boot
    /// binding, model, receipt key); the answer (receipt over the exact bodies, or every
    /// stream event and the final receipt); the per-response document.
    ///
    /// # Errors
    /// The first failed check.
    pub fn verify(&self, policy: &ClientPolicy) -> Result<VerifiedEvidence, EvidenceError> {
        if self.format != EVIDENCE_FORMAT {
            return Err(EvidenceError::UnsupportedFormat {
                found: self.format.clone(),
            });
        }
        let document = decode_base64("attestation_document", &self.attestation_document)?;
        let nonce = self
            .attestation_nonce
            .as_deref()
            .map(|nonce| decode_hex("attestation_nonce", nonce))
            .transpose()?;
        let request_body = decode_base64("request_body", &self.request_body)?;
        let receipt = self.receipt.decode()?;
        let response_document = self
            .response_document
            .as_deref()
            .map(|document| decode_base64("response_document", document))
            .transpose()?;
        let response_nonce = self
            .response_nonce
            .as_deref()
            .map(|nonce| decode_hex("response_nonce", nonce))
            .transpose()?;

        let at = parse_document(&document)
            .map_err(|error| EvidenceError::Document(PolicyError::Attestation(error.into())))?
            .timestamp();
        let enclave = policy
            .verify_boot_document(&document, nonce.as_deref(), at, false)
            .map_err(EvidenceError::Document)?;

        match (&self.response_body, &self.stream_events) {
            (Some(response_body), None) => {
                let response_body = decode_base64("response_body", response_body)?;
                let exchange = CompletionExchange {
                    request_body: &request_body,
                    response_body: &response_body,
                    receipt: &receipt,
                    response_document: response_document.as_deref(),
                    response_nonce: response_nonce.as_deref(),
                };
                let verified =
                    verify_completion(policy, &enclave, &exchange, VerifyTime::DocumentTime)?;
                Ok(VerifiedEvidence {
                    enclave,
                    receipt: verified.receipt,
                    response_document: verified.response_document,
                    stream_events: None,
                    answer: verified.answer,
                    endpoint: self.endpoint.clone(),
                })
            }
            (None, Some(events)) => {
                let mut check = StreamCheck::new(&enclave, &request_body, None)?;
                for event in events {
                    check.accept(SignedEvent {
                        data: decode_base64("stream_events[].data", &event.data)?,
                        timestamp_ms: event.timestamp_ms,
                        signature: parse_signature("", &event.signature)
                            .map_err(header_field("stream_events[].signature"))?,
                        response_document: None,
                    })?;
                }
                let stream = check.finish()?;
                if stream.receipt.claims() != &receipt.claims
                    || stream.signature != receipt.signature
                {
                    return Err(EvidenceError::ReceiptMismatch);
                }
                let response_document = check_response_document(
                    policy,
                    &enclave,
                    response_document.as_deref(),
                    response_nonce.as_deref(),
                    &stream.receipt,
                    VerifyTime::DocumentTime,
                )?;
                Ok(VerifiedEvidence {
                    enclave,
                    receipt: stream.receipt,
                    response_document,
                    stream_events: Some(stream.events.len()),
                    answer: stream.answer,
                    endpoint: self.endpoint.clone(),
                })
            }
            _ => Err(malformed("response_body")(
                "exactly one of response_body and stream_events must be present".to_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EvidenceBundle {
        let claims = ReceiptClaims {
            model_hash: [1; 32],
            request_hash: [2; 32],
            response_hash: [3; 32],
            timestamp_ms: 5,
        };
        let parts = EvidenceParts {
            endpoint: attestation_verifier::protocol::CHAT_COMPLETIONS_PATH,
            attestation_document: &[0x84, 0x40],
            attestation_nonce: Some(&[9; 32]),
            request_body: b"{}",
            claims: &claims,
            signature: &[0x44; 65],
            response_document: None,
        };
        EvidenceBundle::for_completion(&parts, b"{\"choices\":[]}")
    }

    #[test]
    fn round_trips_through_json() {
        let bundle = sample();
        let json = bundle.to_json();
        assert!(json.contains("\"format\": \"attested-inference-evidence/1\""));
        assert_eq!(EvidenceBundle::from_json(json.as_bytes()).unwrap(), bundle);
        assert_eq!(bundle.receipt.decode().unwrap().claims.timestamp_ms, 5);
    }

    #[test]
    fn refuses_unknown_fields_formats_and_malformed_values() {
        let json = sample().to_json().replacen('{', "{\"extra\": 1,", 1);
        assert!(matches!(
            EvidenceBundle::from_json(json.as_bytes()),
            Err(EvidenceError::Json { .. })
        ));
        let policy = ClientPolicy::aws().insecure_accept_any_image();
        let mut bundle = sample();
        bundle.format = "attested-inference-evidence/2".to_owned();
        assert!(matches!(
            bundle.verify(&policy),
            Err(EvidenceError::UnsupportedFormat { .. })
        ));
        let mut bundle = sample();
        bundle.receipt.signature = "0x12".to_owned();
        assert!(matches!(
            bundle.verify(&policy),
            Err(EvidenceError::Malformed {
                field: "receipt.signature",
                ..
            })
        ));
        let mut bundle = sample();
        bundle.request_body = "%%%".to_owned();
        assert!(matches!(
            bundle.verify(&policy),
            Err(EvidenceError::Malformed {
                field: "request_body",
                ..
            })
        ));
        // The document (two bytes) is not a COSE_Sign1.
        assert!(matches!(
            sample().verify(&policy),
            Err(EvidenceError::Document(_))
        ));
    }
}
