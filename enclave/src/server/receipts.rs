//! Receipts on the wire (docs/protocol.md §3, §4, §4a): the headers of a non-streamed answer,
//! and the signed server-sent events of a stream.

use std::sync::Arc;

use attestation_verifier::UnixMillis;
use attestation_verifier::binding::ResponseBinding;
use attestation_verifier::receipt::ReceiptClaims;
use attestation_verifier::stream::StreamHashChain;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use attestation_verifier::protocol::headers;

use crate::attester::{AttestationRequest, Attester, AttesterError};
use crate::identity::{EnclaveSigningKey, IdentityError};

/// Why a receipt could not be produced.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReceiptFailure {
    #[error("signing the receipt failed: {0}")]
    Signing(#[from] IdentityError),
    #[error("the per-response attestation document failed: {0}")]
    Attestation(#[from] AttesterError),
}

/// Standard padded base64.
pub(crate) fn base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Parses a nonce given as hex (either case), 1..=64 bytes.
pub(crate) fn parse_nonce(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    if text.is_empty() || !text.len().is_multiple_of(2) || text.len() > headers::MAX_NONCE_BYTES * 2
    {
        return Err(format!(
            "a nonce is 1 to {} bytes as an even number of hex digits, found {} characters",
            headers::MAX_NONCE_BYTES,
            text.len()
        ));
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let digit = |byte: u8| (byte as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(high), Some(low)) => Ok((high * 16 + low) as u8),
                _ => Err("a nonce must be hex digits only".to_owned()),
            }
        })
        .collect()
}

/// The enclave clock, never going backwards within one response.
#[derive(Debug, Default)]
pub(crate) struct MonotonicClock {
    last_ms: u64,
}

impl MonotonicClock {
    pub(crate) fn now_ms(&mut self) -> u64 {
        self.last_ms = self.last_ms.max(UnixMillis::now().as_millis());
        self.last_ms
    }
}

/// What signs receipts: the attested key, the model hash, and (for per-response documents)
/// the attester.
#[derive(Debug, Clone)]
pub(crate) struct ReceiptSigner {
    pub(crate) key: Arc<EnclaveSigningKey>,
    pub(crate) model_sha256: [u8; 32],
    pub(crate) attester: Arc<dyn Attester>,
}

/// A signed receipt, ready for headers or an SSE event.
#[derive(Debug, Clone)]
pub(crate) struct SignedReceipt {
    pub(crate) claims: ReceiptClaims,
    pub(crate) signature: [u8; 65],
}

impl SignedReceipt {
    pub(crate) fn signature_hex(&self) -> String {
        format!("0x{}", hex::encode(self.signature))
    }
}

impl ReceiptSigner {
    /// Signs `Receipt(modelHash, requestHash, responseHash, now)`.
    pub(crate) fn sign(
        &self,
        request_hash: [u8; 32],
        response_hash: [u8; 32],
        timestamp_ms: u64,
    ) -> Result<SignedReceipt, ReceiptFailure> {
        let claims = ReceiptClaims {
            model_hash: self.model_sha256,
            request_hash,
            response_hash,
            timestamp_ms,
        };
        let signature = self.key.sign_digest(&claims.digest())?;
        Ok(SignedReceipt { claims, signature })
    }

    /// A fresh document with `nonce` whose `user_data` binds `receipt` (`0x02 || digest`).
    /// Blocking (the attester talks to the NSM): call it off the async threads.
    pub(crate) fn response_document(
        &self,
        receipt: &SignedReceipt,
        nonce: &[u8],
    ) -> Result<Vec<u8>, ReceiptFailure> {
        let binding = ResponseBinding {
            receipt_digest: receipt.claims.digest(),
        };
        Ok(self.attester.attest(&AttestationRequest {
            public_key: Some(self.key.public_key_uncompressed().to_vec()),
            user_data: Some(binding.to_user_data().to_vec()),
            nonce: Some(nonce.to_vec()),
        })?)
    }
}

/// Signs a stream event by event: `h0 = requestHash`, `h_i = sha256(h_{i-1} || chunk_i)`,
/// each event signed over `Receipt(modelHash, requestHash, h_i, timestampMs_i)`.
#[derive(Debug)]
pub(crate) struct StreamSigner {
    signer: ReceiptSigner,
    request_hash: [u8; 32],
    chain: StreamHashChain,
    clock: MonotonicClock,
}

impl StreamSigner {
    pub(crate) fn new(signer: ReceiptSigner, request_hash: [u8; 32]) -> Self {
        Self {
            signer,
            request_hash,
            chain: StreamHashChain::new(request_hash),
            clock: MonotonicClock::default(),
        }
    }

    /// One SSE event carrying `data` (a single line), signed; returns the event bytes and
    /// its receipt. `response_document`, when given, is computed from that receipt and added
    /// as a third field (the `[DONE]` event of a request with a nonce).
    pub(crate) fn event(
        &mut self,
        data: &[u8],
        nonce: Option<&[u8]>,
    ) -> Result<(Vec<u8>, SignedReceipt), ReceiptFailure> {
        debug_assert!(!data.contains(&b'\n') && !data.contains(&b'\r'));
        let mut next = self.chain;
        let value = next.push(data);
        let timestamp_ms = self.clock.now_ms();
        let receipt = self.signer.sign(self.request_hash, value, timestamp_ms)?;
        let document = nonce
            .map(|nonce| self.signer.response_document(&receipt, nonce))
            .transpose()?;
        self.chain = next;
        let mut event = Vec::with_capacity(data.len() + 220);
        event.extend_from_slice(b"data: ");
        event.extend_from_slice(data);
        event.extend_from_slice(
            format!(
                "\n{}: {timestamp_ms}\n{}: {}\n",
                headers::TIMESTAMP_MS,
                headers::SIGNATURE,
                receipt.signature_hex()
            )
            .as_bytes(),
        );
        if let Some(document) = document {
            event.extend_from_slice(
                format!("{}: {}\n", headers::RESPONSE_DOCUMENT, base64(&document)).as_bytes(),
            );
        }
        event.push(b'\n');
        Ok((event, receipt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_hex_of_1_to_64_bytes() {
        assert_eq!(parse_nonce("00ff").expect("valid"), [0x00, 0xff]);
        assert_eq!(parse_nonce("ABcd").expect("valid"), [0xab, 0xcd]);
        assert_eq!(parse_nonce(&"11".repeat(64)).expect("valid").len(), 64);
        for bad in ["", "0", "zz", &"11".repeat(65), "0x00"] {
            assert!(parse_nonce(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_clock_never_goes_backwards() {
        let mut clock = MonotonicClock { last_ms: u64::MAX };
        assert_eq!(clock.now_ms(), u64::MAX);
        let mut clock = MonotonicClock::default();
        let first = clock.now_ms();
        assert!(clock.now_ms() >= first);
    }
}
