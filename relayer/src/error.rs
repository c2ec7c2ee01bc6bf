//! The relayer's errors: one variant per thing that can go wrong, each saying what to do.

use std::path::PathBuf;

use alloy::primitives::{Address, B256};

/// Why a relayer step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayerError {
    /// The state file cannot be read, written, or belongs to another deployment.
    #[error("relayer state {path}: {reason}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A JSON-RPC call failed (node unreachable, call reverted, ...).
    #[error("chain: {action} failed: {reason}")]
    Chain {
        /// What the relayer was doing.
        action: &'static str,
        /// The node's or the transport's message.
        reason: String,
    },
    /// A transaction was mined but reverted.
    #[error("{action} transaction {tx} for request {request_id} reverted")]
    Reverted {
        /// `claim` or `fulfill`.
        action: &'static str,
        /// The transaction hash.
        tx: B256,
        /// The request.
        request_id: B256,
    },
    /// The enclave could not answer (connection, attestation, HTTP error, ...).
    #[error("enclave: {0}")]
    Enclave(String),
    /// The enclave's fulfilment signature does not recover to the attested enclave key: the
    /// answer is not submitted (the relay would reject it, and the operator would be slashed).
    #[error(
        "the enclave's fulfilment signature for request {request_id} recovers to {recovered}, not to the attested enclave {attested}"
    )]
    BadFulfillmentSignature {
        /// The request.
        request_id: B256,
        /// Who the signature names.
        recovered: String,
        /// The attested enclave.
        attested: Address,
    },
    /// The enclave now attests another key than the one this relayer started with (it was
    /// restarted): the relayer stops, so that its supervisor restarts it with the new key.
    #[error(
        "the enclave at {url} now attests key {attested}, not {expected} (restarted?); stopping: restart the relayer once the new key is registered"
    )]
    EnclaveKeyChanged {
        /// The enclave's URL.
        url: String,
        /// The key the relayer started with.
        expected: Address,
        /// The key the enclave attests now.
        attested: Address,
    },
    /// The registry does not (yet) authorize the enclave for the request's model: not claimed;
    /// retried until the deadline comes too close (a restarted enclave's key is registered a
    /// little after its boot).
    #[error(
        "the registry does not authorize enclave {enclave} for request {request_id} (status {status})"
    )]
    EnclaveNotAuthorized {
        /// The request.
        request_id: B256,
        /// The enclave.
        enclave: Address,
        /// `EnclaveRegistry.EnclaveStatus` as a number.
        status: u8,
    },
    /// A command-line value is unusable.
    #[error("{0}")]
    Usage(String),
}

impl RelayerError {
    /// Errors after which continuing could lose work or act for the wrong enclave.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::State { .. } | Self::EnclaveKeyChanged { .. })
    }

    /// A failed chain call, with what was being done.
    pub fn chain(action: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Chain {
            action,
            reason: error.to_string(),
        }
    }
}
