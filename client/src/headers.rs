//! The receipt headers of docs/protocol.md §4a, parsed strictly. Nothing in them is trusted by
//! itself: the client recomputes the hashes from the bytes it sent and received and recovers
//! the signer (see [`crate::exchange`]).

use attestation_verifier::receipt::{Receipt, ReceiptClaims};
use base64::Engine;

/// The header names, defined once for both ends in the verifier crate.
pub use attestation_verifier::protocol::headers::{
    DOCUMENT, MODEL_SHA256, NONCE, REQUEST_SHA256, RESPONSE_DOCUMENT, RESPONSE_SHA256, SIGNATURE,
    TIMESTAMP_MS,
};

/// A receipt header is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// A required header is absent.
    #[error("the response carries no {name} header")]
    Missing {
        /// The header.
        name: &'static str,
    },
    /// A header's value is not in its format.
    #[error("header {name} is malformed: {reason}")]
    Malformed {
        /// The header.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The receipt headers of a non-streamed completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionHeaders {
    /// The receipt as the headers state it.
    pub receipt: Receipt,
    /// The current boot document (COSE_Sign1).
    pub document: Vec<u8>,
    /// The per-response document, when the request asked for one.
    pub response_document: Option<Vec<u8>>,
}

impl CompletionHeaders {
    /// Parses the headers through `lookup` (header name → value).
    ///
    /// # Errors
    /// The first missing or malformed header.
    pub fn parse<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Result<Self, HeaderError> {
        let required = |name: &'static str| lookup(name).ok_or(HeaderError::Missing { name });
        let claims = ReceiptClaims {
            model_hash: parse_sha256_hex(MODEL_SHA256, required(MODEL_SHA256)?)?,
            request_hash: parse_sha256_hex(REQUEST_SHA256, required(REQUEST_SHA256)?)?,
            response_hash: parse_sha256_hex(RESPONSE_SHA256, required(RESPONSE_SHA256)?)?,
            timestamp_ms: parse_timestamp(TIMESTAMP_MS, required(TIMESTAMP_MS)?)?,
        };
        let signature = parse_signature(SIGNATURE, required(SIGNATURE)?)?;
        Ok(Self {
            receipt: Receipt { claims, signature },
            document: parse_base64(DOCUMENT, required(DOCUMENT)?)?,
            response_document: lookup(RESPONSE_DOCUMENT)
                .map(|value| parse_base64(RESPONSE_DOCUMENT, value))
                .transpose()?,
        })
    }
}

/// The headers of a streamed completion (receipts travel per event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeaders {
    /// The model hash the enclave states.
    pub model_sha256: [u8; 32],
    /// The request hash the enclave states.
    pub request_sha256: [u8; 32],
    /// The current boot document.
    pub document: Vec<u8>,
}

impl StreamHeaders {
    /// Parses the headers through `lookup`.
    ///
    /// # Errors
    /// The first missing or malformed header.
    pub fn parse<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Result<Self, HeaderError> {
        let required = |name: &'static str| lookup(name).ok_or(HeaderError::Missing { name });
        Ok(Self {
            model_sha256: parse_sha256_hex(MODEL_SHA256, required(MODEL_SHA256)?)?,
            request_sha256: parse_sha256_hex(REQUEST_SHA256, required(REQUEST_SHA256)?)?,
            document: parse_base64(DOCUMENT, required(DOCUMENT)?)?,
        })
    }
}

fn malformed(name: &'static str, reason: impl Into<String>) -> HeaderError {
    HeaderError::Malformed {
        name,
        reason: reason.into(),
    }
}

/// 64 lowercase hex digits.
///
/// # Errors
/// [`HeaderError::Malformed`].
pub fn parse_sha256_hex(name: &'static str, value: &str) -> Result<[u8; 32], HeaderError> {
    if value.len() != 64 || !is_lower_hex(value) {
        return Err(malformed(name, "expected 64 lowercase hex digits"));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(value, &mut out).map_err(|error| malformed(name, error.to_string()))?;
    Ok(out)
}

/// A decimal u64 without sign or leading zeros.
///
/// # Errors
/// [`HeaderError::Malformed`].
pub fn parse_timestamp(name: &'static str, value: &str) -> Result<u64, HeaderError> {
    let canonical = !value.is_empty()
        && value.bytes().all(|byte| byte.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    if !canonical {
        return Err(malformed(name, "expected a decimal number of milliseconds"));
    }
    value
        .parse()
        .map_err(|_| malformed(name, "the number does not fit in 64 bits"))
}

/// `0x` followed by 130 lowercase hex digits.
///
/// # Errors
/// [`HeaderError::Malformed`].
pub fn parse_signature(name: &'static str, value: &str) -> Result<Vec<u8>, HeaderError> {
    match value.strip_prefix("0x") {
        Some(digits) if digits.len() == 130 && is_lower_hex(digits) => {
            hex::decode(digits).map_err(|error| malformed(name, error.to_string()))
        }
        _ => Err(malformed(
            name,
            "expected 0x followed by 130 lowercase hex digits",
        )),
    }
}

/// Standard, padded base64.
///
/// # Errors
/// [`HeaderError::Malformed`].
pub fn parse_base64(name: &'static str, value: &str) -> Result<Vec<u8>, HeaderError> {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|error| malformed(name, format!("invalid base64: {error}")))
}

fn is_lower_hex(value: &str) -> bool {
    value
        .bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn headers() -> HashMap<&'static str, String> {
        HashMap::from([
            (MODEL_SHA256, "11".repeat(32)),
            (REQUEST_SHA256, "22".repeat(32)),
            (RESPONSE_SHA256, "33".repeat(32)),
            (TIMESTAMP_MS, "1763880000123".to_owned()),
            (SIGNATURE, format!("0x{}1b", "44".repeat(64))),
            (DOCUMENT, "hEA=".to_owned()),
        ])
    }

    fn parse(map: &HashMap<&'static str, String>) -> Result<CompletionHeaders, HeaderError> {
        CompletionHeaders::parse(|name| map.get(name).map(String::as_str))
    }

    #[test]
    fn parses_complete_headers() {
        let parsed = parse(&headers()).unwrap();
        assert_eq!(parsed.receipt.claims.model_hash, [0x11; 32]);
        assert_eq!(parsed.receipt.claims.response_hash, [0x33; 32]);
        assert_eq!(parsed.receipt.claims.timestamp_ms, 1_763_880_000_123);
        assert_eq!(parsed.receipt.signature.len(), 65);
        assert_eq!(parsed.document, vec![0x84, 0x40]);
        assert_eq!(parsed.response_document, None);
        let map = headers();
        let stream = StreamHeaders::parse(|name| map.get(name).map(String::as_str)).unwrap();
        assert_eq!(stream.request_sha256, [0x22; 32]);
    }

    #[test]
    fn rejects_missing_and_malformed_headers() {
        for name in [
            MODEL_SHA256,
            REQUEST_SHA256,
            RESPONSE_SHA256,
            TIMESTAMP_MS,
            SIGNATURE,
            DOCUMENT,
        ] {
            let mut map = headers();
            map.remove(name);
            assert_eq!(parse(&map), Err(HeaderError::Missing { name }));
        }
        let bad_values = [
            (MODEL_SHA256, "AA".repeat(32)),
            (REQUEST_SHA256, "22".repeat(31)),
            (TIMESTAMP_MS, "012".to_owned()),
            (TIMESTAMP_MS, "-1".to_owned()),
            (TIMESTAMP_MS, "99999999999999999999".to_owned()),
            (SIGNATURE, "44".repeat(65)),
            (SIGNATURE, format!("0x{}", "44".repeat(64))),
            (DOCUMENT, "not base64!".to_owned()),
        ];
        for (name, value) in bad_values {
            let mut map = headers();
            map.insert(name, value);
            assert!(
                matches!(parse(&map), Err(HeaderError::Malformed { name: found, .. }) if found == name),
                "{name}"
            );
        }
    }
}
