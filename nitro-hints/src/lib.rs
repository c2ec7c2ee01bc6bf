//! Off-chain hints for the on-chain Nitro attestation verifier (`contracts/src/nitro/`).
//!
//! P-384 has no EVM precompile. The contracts verify each ES384 signature with a hint computed
//! here and checked cheaply on-chain (docs/onchain.md, "Nitro route"): the signature's point
//! `R` and a short decomposition of `u2 = r/s mod n` that halves the scalar-multiplication work.
//! A wrong hint can only make a verification fail, never pass.
#![forbid(unsafe_code)]

pub mod document;
pub mod ecdsa;
