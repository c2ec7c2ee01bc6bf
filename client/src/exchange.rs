//! Checking one request/response exchange against a trusted enclave: the receipt of a
//! non-streamed answer, a stream event by event, and the per-response document. Used live by
//! the connection and offline by evidence bundles, so both decide the same way.

use attestation_verifier::binding::{BindingError, ResponseBinding};
use attestation_verifier::receipt::{
    Receipt, ReceiptClaims, ReceiptError, VerifiedReceipt, verify_receipt,
};
use attestation_verifier::stream::StreamVerifier;
use attestation_verifier::{UnixMillis, VerifiedAttestation, parse_document};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::headers::{CompletionHeaders, HeaderError, StreamHeaders};
use crate::policy::{ClientPolicy, PolicyError, TrustedEnclave};
use crate::sse::{SignedEvent, SseError};

/// When documents are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyTime {
    /// Now, with the policy's maximum age: live answers.
    Now,
    /// Each document at its own timestamp, without an age bound: archived evidence.
    DocumentTime,
}

/// Why an answer was refused: one variant per failed check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// A receipt header is missing or malformed.
    #[error("receipt headers: {0}")]
    Headers(#[from] HeaderError),
    /// The event stream breaks the format.
    #[error("stream format: {0}")]
    Sse(#[from] SseError),
    /// The receipt (or a stream event's signature) fails a check.
    #[error("receipt rejected: {0}")]
    Receipt(#[from] ReceiptError),
    /// The boot document sent with the answer fails the policy.
    #[error("the attestation document sent with the answer is rejected: {0}")]
    AnswerDocument(PolicyError),
    /// The boot document sent with the answer names another key or binding than the attested
    /// connection.
    #[error(
        "the attestation document sent with the answer names another enclave key or binding than the one this connection verified"
    )]
    AnswerDocumentMismatch,
    /// A stream's headers state another model or request than the attested ones.
    #[error("stream header {name} states {stated_hex}, expected {expected_hex}")]
    StreamHeaderMismatch {
        /// The header.
        name: &'static str,
        /// What it states, hex.
        stated_hex: String,
        /// What the client computed or attested, hex.
        expected_hex: String,
    },
    /// A per-response document was requested but not sent.
    #[error("the enclave sent no per-response attestation document although one was requested")]
    ResponseDocumentMissing,
    /// A per-response document was sent without being requested.
    #[error("a per-response attestation document arrived without being requested")]
    ResponseDocumentUnexpected,
    /// The per-response document fails the policy.
    #[error("per-response attestation document rejected: {0}")]
    ResponseDocument(PolicyError),
    /// The per-response document's user_data is not a response binding.
    #[error("per-response attestation document: {0}")]
    ResponseDocumentBinding(BindingError),
    /// The per-response document vouches for another receipt.
    #[error(
        "the per-response document binds receipt digest {bound_hex}, the answer's receipt digest is {receipt_hex}"
    )]
    ResponseDocumentDigestMismatch {
        /// What the document binds, hex.
        bound_hex: String,
        /// The verified receipt's digest, hex.
        receipt_hex: String,
    },
    /// The per-response document comes from another image than the boot document.
    #[error("the per-response document's PCRs differ from the boot document's")]
    ResponseDocumentPcrMismatch,
    /// An event arrived after `[DONE]`.
    #[error("the stream continues after its final [DONE] event")]
    EventAfterDone,
    /// The stream ended before `[DONE]`: what arrived is verified but incomplete.
    #[error(
        "the stream ended before its final [DONE] event: {chunks} events verified, the last signed at {last_timestamp_ms:?} ms; the answer is incomplete"
    )]
    StreamIncomplete {
        /// Events verified.
        chunks: u64,
        /// The last verified event's receipt timestamp.
        last_timestamp_ms: Option<u64>,
    },
    /// A verified stream event reports that the enclave failed (the stream then ends without
    /// `[DONE]`).
    #[error("the enclave reported an error in the stream: {message}")]
    EnclaveReportedError {
        /// The error message.
        message: String,
    },
    /// The verified answer is not an OpenAI-style completion.
    #[error("the verified answer is not a completion the client understands: {reason}")]
    MalformedAnswer {
        /// What is wrong.
        reason: String,
    },
}

/// A non-streamed answer whose receipt passed.
#[derive(Debug, Clone)]
pub struct VerifiedCompletion {
    /// The verified receipt.
    pub receipt: VerifiedReceipt,
    /// The receipt signature.
    pub signature: Vec<u8>,
    /// The per-response document, verified, when one was requested.
    pub response_document: Option<VerifiedAttestation>,
    /// The answer text (first choice).
    pub answer: String,
}

/// A non-streamed exchange as it travelled (or as an evidence bundle keeps it).
#[derive(Debug, Clone, Copy)]
pub struct CompletionExchange<'a> {
    /// The exact request body sent.
    pub request_body: &'a [u8],
    /// The exact response body received.
    pub response_body: &'a [u8],
    /// The receipt as stated by the enclave.
    pub receipt: &'a Receipt,
    /// The per-response document, if one came.
    pub response_document: Option<&'a [u8]>,
    /// The nonce the request sent for a per-response document, if any.
    pub response_nonce: Option<&'a [u8]>,
}

/// Checks a non-streamed answer: receipt signed by the attested key over the attested model
/// and the exact bodies, and the per-response document when a nonce asked for one.
///
/// # Errors
/// The first failed check.
pub fn verify_completion(
    policy: &ClientPolicy,
    enclave: &TrustedEnclave,
    exchange: &CompletionExchange<'_>,
    time: VerifyTime,
) -> Result<VerifiedCompletion, ExchangeError> {
    let verified = verify_receipt(
        exchange.receipt,
        &enclave.attestation,
        exchange.request_body,
        exchange.response_body,
    )?;
    let response_document = check_response_document(
        policy,
        enclave,
        exchange.response_document,
        exchange.response_nonce,
        &verified,
        time,
    )?;
    let answer = completion_text(exchange.response_body)?;
    Ok(VerifiedCompletion {
        receipt: verified,
        signature: exchange.receipt.signature.clone(),
        response_document,
        answer,
    })
}

/// [`verify_completion`] for a live answer: also checks the boot document sent with it
/// ([`check_answer_document`]).
///
/// # Errors
/// The first failed check.
pub fn verify_live_completion(
    policy: &ClientPolicy,
    enclave: &TrustedEnclave,
    request_body: &[u8],
    response_body: &[u8],
    headers: &CompletionHeaders,
    response_nonce: Option<&[u8]>,
) -> Result<VerifiedCompletion, ExchangeError> {
    check_answer_document(policy, enclave, &headers.document)?;
    let exchange = CompletionExchange {
        request_body,
        response_body,
        receipt: &headers.receipt,
        response_document: headers.response_document.as_deref(),
        response_nonce,
    };
    verify_completion(policy, enclave, &exchange, VerifyTime::Now)
}

/// Checks that the boot document sent with an answer verifies under the policy (now, without
/// an age bound: the enclave refreshes it on its own schedule) and names the attested key and
/// binding.
///
/// # Errors
/// [`ExchangeError::AnswerDocument`] or [`ExchangeError::AnswerDocumentMismatch`].
pub fn check_answer_document(
    policy: &ClientPolicy,
    enclave: &TrustedEnclave,
    document: &[u8],
) -> Result<(), ExchangeError> {
    let attestation = policy
        .verify_image(document, None, UnixMillis::now(), false)
        .map_err(ExchangeError::AnswerDocument)?;
    if attestation.public_key() != enclave.attestation.public_key()
        || attestation.user_data() != enclave.attestation.user_data()
    {
        return Err(ExchangeError::AnswerDocumentMismatch);
    }
    Ok(())
}

/// Checks a per-response document: requested ⇔ present; verifies under the policy with the
/// nonce; binds the receipt's digest; same PCRs as the boot document.
///
/// # Errors
/// The first failed check.
pub fn check_response_document(
    policy: &ClientPolicy,
    enclave: &TrustedEnclave,
    document: Option<&[u8]>,
    nonce: Option<&[u8]>,
    receipt: &VerifiedReceipt,
    time: VerifyTime,
) -> Result<Option<VerifiedAttestation>, ExchangeError> {
    let (document, nonce) = match (document, nonce) {
        (None, None) => return Ok(None),
        (None, Some(_)) => return Err(ExchangeError::ResponseDocumentMissing),
        (Some(_), None) => return Err(ExchangeError::ResponseDocumentUnexpected),
        (Some(document), Some(nonce)) => (document, nonce),
    };
    let at = match time {
        VerifyTime::Now => UnixMillis::now(),
        VerifyTime::DocumentTime => parse_document(document)
            .map_err(|error| {
                ExchangeError::ResponseDocument(PolicyError::Attestation(error.into()))
            })?
            .timestamp(),
    };
    let attestation = policy
        .verify_image(document, Some(nonce), at, time == VerifyTime::Now)
        .map_err(ExchangeError::ResponseDocument)?;
    let binding = attestation
        .user_data()
        .ok_or(BindingError::UserDataMissing)
        .and_then(ResponseBinding::parse)
        .map_err(ExchangeError::ResponseDocumentBinding)?;
    if binding.receipt_digest != receipt.digest() {
        return Err(ExchangeError::ResponseDocumentDigestMismatch {
            bound_hex: hex::encode(binding.receipt_digest),
            receipt_hex: hex::encode(receipt.digest()),
        });
    }
    if attestation.pcrs() != enclave.attestation.pcrs() {
        return Err(ExchangeError::ResponseDocumentPcrMismatch);
    }
    Ok(Some(attestation))
}

/// A stream checked event by event; refuses everything after the first failure.
#[derive(Debug, Clone)]
pub struct StreamCheck {
    verifier: StreamVerifier,
    model_sha256: [u8; 32],
    request_sha256: [u8; 32],
    events: Vec<SignedEvent>,
    answer: String,
    done: Option<(VerifiedReceipt, Vec<u8>)>,
    failed: bool,
}

/// A complete stream whose every event and final receipt passed.
#[derive(Debug, Clone)]
pub struct VerifiedStream {
    /// The final receipt (`responseHash` = the last chain value).
    pub receipt: VerifiedReceipt,
    /// Its signature (the `[DONE]` event's).
    pub signature: Vec<u8>,
    /// Every event, as received.
    pub events: Vec<SignedEvent>,
    /// The concatenated answer text.
    pub answer: String,
}

impl StreamCheck {
    /// Starts checking the stream answering `request_body`, whose headers are `headers`.
    ///
    /// # Errors
    /// When the headers state another model or request, or the document names no signer.
    pub fn new(
        enclave: &TrustedEnclave,
        request_body: &[u8],
        headers: Option<&StreamHeaders>,
    ) -> Result<Self, ExchangeError> {
        let request_sha256: [u8; 32] = Sha256::digest(request_body).into();
        let model_sha256 = enclave.binding.model_sha256;
        if let Some(headers) = headers {
            for (name, stated, expected) in [
                (
                    crate::headers::MODEL_SHA256,
                    headers.model_sha256,
                    model_sha256,
                ),
                (
                    crate::headers::REQUEST_SHA256,
                    headers.request_sha256,
                    request_sha256,
                ),
            ] {
                if stated != expected {
                    return Err(ExchangeError::StreamHeaderMismatch {
                        name,
                        stated_hex: hex::encode(stated),
                        expected_hex: hex::encode(expected),
                    });
                }
            }
        }
        Ok(Self {
            verifier: StreamVerifier::new(&enclave.attestation, request_body)?,
            model_sha256,
            request_sha256,
            events: Vec::new(),
            answer: String::new(),
            done: None,
            failed: false,
        })
    }

    /// Verifies the next event; returns its answer text (empty for `[DONE]` and role-only
    /// chunks).
    ///
    /// # Errors
    /// The failed check; every later call fails too.
    pub fn accept(&mut self, event: SignedEvent) -> Result<String, ExchangeError> {
        if self.failed {
            return Err(ReceiptError::StreamAlreadyFailed.into());
        }
        let result = self.check_event(event);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn check_event(&mut self, event: SignedEvent) -> Result<String, ExchangeError> {
        if self.done.is_some() {
            return Err(ExchangeError::EventAfterDone);
        }
        let chain_value =
            self.verifier
                .accept_chunk(&event.data, event.timestamp_ms, &event.signature)?;
        let delta = if event.is_done() {
            let receipt = Receipt {
                claims: ReceiptClaims {
                    model_hash: self.model_sha256,
                    request_hash: self.request_sha256,
                    response_hash: chain_value,
                    timestamp_ms: event.timestamp_ms,
                },
                signature: event.signature.clone(),
            };
            let verified = self.verifier.finish(&receipt)?;
            self.done = Some((verified, event.signature.clone()));
            String::new()
        } else {
            chunk_text(&event.data)?
        };
        self.answer.push_str(&delta);
        self.events.push(event);
        Ok(delta)
    }

    /// The events verified so far.
    pub fn events(&self) -> &[SignedEvent] {
        &self.events
    }

    /// The `[DONE]` event's per-response document, if it carried one.
    pub fn response_document(&self) -> Option<&[u8]> {
        self.events
            .last()
            .and_then(|event| event.response_document.as_deref())
    }

    /// The receipt of the whole stream, once `[DONE]` passed.
    pub fn final_receipt(&self) -> Option<&VerifiedReceipt> {
        self.done.as_ref().map(|(receipt, _)| receipt)
    }

    /// Ends the stream: complete only after `[DONE]`.
    ///
    /// # Errors
    /// [`ExchangeError::StreamIncomplete`] before `[DONE]`, or the earlier failure.
    pub fn finish(self) -> Result<VerifiedStream, ExchangeError> {
        if self.failed {
            return Err(ReceiptError::StreamAlreadyFailed.into());
        }
        let Some((receipt, signature)) = self.done else {
            return Err(ExchangeError::StreamIncomplete {
                chunks: self.verifier.chunks_accepted(),
                last_timestamp_ms: self.events.last().map(|event| event.timestamp_ms),
            });
        };
        Ok(VerifiedStream {
            receipt,
            signature,
            events: self.events,
            answer: self.answer,
        })
    }
}

fn malformed(reason: impl Into<String>) -> ExchangeError {
    ExchangeError::MalformedAnswer {
        reason: reason.into(),
    }
}

fn first_choice(body: &[u8]) -> Result<Value, ExchangeError> {
    let mut value: Value =
        serde_json::from_slice(body).map_err(|error| malformed(format!("not JSON: {error}")))?;
    value
        .get_mut("choices")
        .and_then(|choices| choices.get_mut(0))
        .map(Value::take)
        .ok_or_else(|| malformed("no choices[0]"))
}

/// The text of a non-streamed completion: `choices[0].message.content` (chat) or
/// `choices[0].text` (completions).
///
/// # Errors
/// [`ExchangeError::MalformedAnswer`].
pub fn completion_text(body: &[u8]) -> Result<String, ExchangeError> {
    let choice = first_choice(body)?;
    choice
        .pointer("/message/content")
        .or_else(|| choice.get("text"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| malformed("choices[0] has neither message.content nor text"))
}

/// The text of a stream chunk: `choices[0].delta.content` or `choices[0].text`, empty when
/// absent (role-only and finish chunks).
///
/// # Errors
/// [`ExchangeError::MalformedAnswer`] when the chunk is not a completion chunk.
pub fn chunk_text(data: &[u8]) -> Result<String, ExchangeError> {
    if let Ok(value) = serde_json::from_slice::<Value>(data)
        && let Some(message) = value.pointer("/error/message").and_then(Value::as_str)
    {
        return Err(ExchangeError::EnclaveReportedError {
            message: message.to_owned(),
        });
    }
    let choice = first_choice(data)?;
    Ok(choice
        .pointer("/delta/content")
        .or_else(|| choice.get("text"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_answer_text() {
        let chat = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"}}]}"#;
        assert_eq!(completion_text(chat).unwrap(), "Hi");
        assert_eq!(
            completion_text(br#"{"choices":[{"text":"T"}]}"#).unwrap(),
            "T"
        );
        assert!(completion_text(br#"{"choices":[]}"#).is_err());
        assert!(completion_text(b"not json").is_err());
        assert_eq!(
            chunk_text(br#"{"choices":[{"delta":{"content":"a"}}]}"#).unwrap(),
            "a"
        );
        assert_eq!(
            chunk_text(br#"{"choices":[{"delta":{"role":"assistant"}}]}"#).unwrap(),
            ""
        );
        assert!(chunk_text(b"[DON]").is_err());
        assert!(matches!(
            chunk_text(br#"{"error":{"message":"boom"}}"#),
            Err(ExchangeError::EnclaveReportedError { .. })
        ));
    }
}
