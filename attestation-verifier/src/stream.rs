//! Streamed responses (docs/protocol.md §4): a hash chain over the server-sent event data,
//! `h0 = requestHash`, `h_i = sha256(h_{i-1} || chunk_i)`. Each chunk carries a receipt
//! signature over `Receipt(modelHash, requestHash, h_i, timestampMs)`, so every prefix of a
//! stream is itself a signed receipt and a client stops trusting the stream at the first chunk
//! that fails; the final receipt's `responseHash` is the last chain value.

use crate::crypto::sha256;
use crate::receipt::{
    AttestedSigner, Receipt, ReceiptClaims, ReceiptError, VerifiedReceipt, check_hash,
};
use crate::verifier::VerifiedAttestation;

/// One link: `sha256(previous || chunk)`.
pub fn chain_step(previous: &[u8; 32], chunk: &[u8]) -> [u8; 32] {
    let mut input = Vec::with_capacity(32 + chunk.len());
    input.extend_from_slice(previous);
    input.extend_from_slice(chunk);
    sha256(&input)
}

/// The running chain value of a stream (the enclave's side, also used by the checker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHashChain {
    value: [u8; 32],
    chunks: u64,
}

impl StreamHashChain {
    /// Starts a chain at `h0 = request_hash`.
    pub fn new(request_hash: [u8; 32]) -> Self {
        Self {
            value: request_hash,
            chunks: 0,
        }
    }

    /// Starts a chain at `h0 = sha256(request_body)`.
    pub fn for_request_body(request_body: &[u8]) -> Self {
        Self::new(sha256(request_body))
    }

    /// Appends one chunk and returns the new value `h_i`.
    pub fn push(&mut self, chunk: &[u8]) -> [u8; 32] {
        self.value = chain_step(&self.value, chunk);
        self.chunks += 1;
        self.value
    }

    /// The current value (`h0` before any chunk).
    pub fn value(&self) -> [u8; 32] {
        self.value
    }

    /// How many chunks were appended.
    pub fn chunks(&self) -> u64 {
        self.chunks
    }
}

/// Checks a stream chunk by chunk against a verified boot document; after the first failure
/// every later call fails with [`ReceiptError::StreamAlreadyFailed`].
#[derive(Debug, Clone)]
pub struct StreamVerifier {
    signer: AttestedSigner,
    request_hash: [u8; 32],
    chain: StreamHashChain,
    last_timestamp_ms: u64,
    failed: bool,
}

impl StreamVerifier {
    /// A checker for the response to `request_body`, vouched for by `attestation`.
    ///
    /// # Errors
    /// When the document names no usable signer or boot binding.
    pub fn new(
        attestation: &VerifiedAttestation,
        request_body: &[u8],
    ) -> Result<Self, ReceiptError> {
        let request_hash = sha256(request_body);
        Ok(Self {
            signer: AttestedSigner::from_attestation(attestation)?,
            request_hash,
            chain: StreamHashChain::new(request_hash),
            last_timestamp_ms: 0,
            failed: false,
        })
    }

    /// Verifies the next chunk and its signature; returns the new chain value.
    ///
    /// # Errors
    /// The failed check; the stream is untrusted from here on.
    pub fn accept_chunk(
        &mut self,
        chunk: &[u8],
        timestamp_ms: u64,
        signature: &[u8],
    ) -> Result<[u8; 32], ReceiptError> {
        if self.failed {
            return Err(ReceiptError::StreamAlreadyFailed);
        }
        let result = self.check_chunk(chunk, timestamp_ms, signature);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn check_chunk(
        &mut self,
        chunk: &[u8],
        timestamp_ms: u64,
        signature: &[u8],
    ) -> Result<[u8; 32], ReceiptError> {
        if timestamp_ms < self.last_timestamp_ms {
            return Err(ReceiptError::StreamTimestampBackwards {
                chunk: self.chain.chunks() + 1,
                timestamp_ms,
                previous_ms: self.last_timestamp_ms,
            });
        }
        let mut next = self.chain;
        let value = next.push(chunk);
        let claims = ReceiptClaims {
            model_hash: self.signer.binding.model_sha256,
            request_hash: self.request_hash,
            response_hash: value,
            timestamp_ms,
        };
        self.signer.verify_claims(&claims, signature)?;
        self.chain = next;
        self.last_timestamp_ms = timestamp_ms;
        Ok(value)
    }

    /// Verifies the final receipt: signed by the attested key, for this request, and covering
    /// exactly the chunks accepted so far.
    ///
    /// # Errors
    /// The failed check.
    pub fn finish(&mut self, receipt: &Receipt) -> Result<VerifiedReceipt, ReceiptError> {
        if self.failed {
            return Err(ReceiptError::StreamAlreadyFailed);
        }
        let result = self.check_final(receipt);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn check_final(&self, receipt: &Receipt) -> Result<VerifiedReceipt, ReceiptError> {
        let verified = self
            .signer
            .verify_claims(&receipt.claims, &receipt.signature)?;
        check_hash(
            &receipt.claims.request_hash,
            &self.request_hash,
            |receipt_hex, actual_hex| ReceiptError::RequestHashMismatch {
                receipt_hex,
                actual_hex,
            },
        )?;
        check_hash(
            &receipt.claims.response_hash,
            &self.chain.value(),
            |receipt_hex, actual_hex| ReceiptError::ResponseHashMismatch {
                receipt_hex,
                actual_hex,
            },
        )?;
        Ok(verified)
    }

    /// The chain value after the chunks accepted so far.
    pub fn chain_value(&self) -> [u8; 32] {
        self.chain.value()
    }

    /// How many chunks were accepted.
    pub fn chunks_accepted(&self) -> u64 {
        self.chain.chunks()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_follows_the_definition() {
        let h0 = sha256(b"request");
        let mut chain = StreamHashChain::for_request_body(b"request");
        assert_eq!(chain.value(), h0);
        let h1 = chain.push(b"data: one");
        let mut expected_input = h0.to_vec();
        expected_input.extend_from_slice(b"data: one");
        assert_eq!(h1, sha256(&expected_input));
        let h2 = chain.push(b"");
        assert_eq!(h2, sha256(&h1));
        assert_eq!(chain.chunks(), 2);
        // Order matters: the same chunks swapped give another value.
        let mut swapped = StreamHashChain::new(h0);
        swapped.push(b"");
        swapped.push(b"data: one");
        assert_ne!(swapped.value(), chain.value());
    }
}
