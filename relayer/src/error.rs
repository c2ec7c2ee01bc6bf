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
    #[error(
        "{action} transaction {tx}{} reverted",
        if request_id.is_zero() { String::new() } else { format!(" for request {request_id}") }
    )]
    Reverted {
        /// What was sent (`claim`, `fulfill`, `stake`, `register`, ...).
        action: &'static str,
        /// The transaction hash.
        tx: B256,
        /// The request (zero for a transaction of no request: stake, registration).
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
    /// restarted): `relayer run` binds its operator on the new enclave, registers the new key
    /// when it has a registration route, and goes on with it.
    #[error("the enclave at {url} now attests key {attested}, not {expected} (restarted?)")]
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
    /// The enclave's parent channel did not bind the operator (unreachable, another operator
    /// bound already, or its boot document could not be renewed).
    #[error("binding the operator on the enclave's parent channel {parent} failed: {reason}")]
    OperatorBinding {
        /// The parent channel's address.
        parent: String,
        /// What went wrong.
        reason: String,
    },
    /// The enclave's attestation does not bind this relayer's operator: it would refuse to
    /// sign fulfilments for it (bind it with `--enclave-parent` or `relayer bind-operator`).
    #[error(
        "the enclave at {url} serves operator {}, not {operator}: bind the operator over the enclave's parent channel (relayer bind-operator / run --enclave-parent)",
        attested.map_or_else(|| "none".to_owned(), |attested| attested.to_string())
    )]
    OperatorNotServed {
        /// The enclave's URL.
        url: String,
        /// This relayer's operator.
        operator: Address,
        /// The operator the attestation binds, if any.
        attested: Option<Address>,
    },
    /// The enclave's registration ends before the request's deadline: claiming it could end
    /// in a slash, so it is not claimed (retried, in case the registration is renewed).
    #[error(
        "enclave {enclave}'s registration ends at {expiry}, before request {request_id}'s deadline {deadline}: not claimed"
    )]
    RegistrationEndsTooSoon {
        /// The request.
        request_id: B256,
        /// The enclave.
        enclave: Address,
        /// Its registration's expiry (Unix seconds).
        expiry: u64,
        /// The request's deadline (Unix seconds).
        deadline: u64,
    },
    /// The registry binds the enclave to another operator: its fulfilments would not pay us.
    #[error("the registry binds enclave {enclave} to operator {registered}, not {operator}")]
    RegisteredForAnotherOperator {
        /// The enclave.
        enclave: Address,
        /// The operator the registry names.
        registered: Address,
        /// This relayer's operator.
        operator: Address,
    },
    /// A command-line value is unusable.
    #[error("{0}")]
    Usage(String),
}

impl RelayerError {
    /// Errors after which continuing could lose work or act for the wrong enclave (`relayer
    /// run` handles [`RelayerError::EnclaveKeyChanged`] by switching to the new enclave).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::State { .. } | Self::EnclaveKeyChanged { .. } | Self::OperatorNotServed { .. }
        )
    }

    /// A failed chain call, with what was being done.
    pub fn chain(action: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Chain {
            action,
            reason: error.to_string(),
        }
    }
}
