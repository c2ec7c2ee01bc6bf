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
    /// A command-line value is unusable.
    #[error("{0}")]
    Usage(String),
}

impl RelayerError {
    /// A failed chain call, with what was being done.
    pub fn chain(action: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Chain {
            action,
            reason: error.to_string(),
        }
    }
}
