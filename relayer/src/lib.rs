//! The chain relayer: untrusted, on the parent instance. It watches the relay contract for
//! inference requests, has the attested enclave answer them (the enclave signs the EIP-712
//! fulfilment itself; the relayer cannot forge it), and submits `claim` and `fulfill`, exactly
//! once per request across restarts (docs/onchain.md "What the relayer does").
//!
//! - [`relay`]: the loop and the [`relay::AnswerSource`] seam;
//! - [`state`]: the persistent cursor and unfinished requests;
//! - [`enclave`]: answers from the attested enclave;
//! - [`parent`]: the enclave's parent channel (binding the operator);
//! - [`register`]: the verifier-key registration;
//! - [`contracts`]: the contracts' ABI.
#![forbid(unsafe_code)]

pub mod contracts;
pub mod enclave;
pub mod error;
pub mod parent;
pub mod register;
pub mod relay;
pub mod state;

pub use error::RelayerError;
