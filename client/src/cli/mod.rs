//! The `chat` and `verify-evidence` subcommands, and what they share.

pub(crate) mod chat;
pub(crate) mod evidence;

use std::process::ExitCode;

use attest::policy::ClientPolicy;
pub(crate) use attest::policy::PolicyArgs;
use attestation_verifier::receipt::address_hex;

/// Exit status when a check fails (or the enclave cannot be reached).
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit status for usage errors (clap uses the same for argument errors).
pub(crate) const EXIT_USAGE: u8 = 2;

pub(crate) fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

pub(crate) fn failed(message: &str) -> ExitCode {
    eprintln!("REFUSED: {message}");
    ExitCode::from(EXIT_FAILED)
}

/// The short verification summary (to stderr, so that stdout holds only the answer).
#[derive(Debug)]
pub(crate) struct Summary<'a> {
    pub(crate) policy: &'a ClientPolicy,
    pub(crate) enclave: &'a attest::TrustedEnclave,
    pub(crate) receipt: &'a attestation_verifier::receipt::VerifiedReceipt,
    pub(crate) response_document: bool,
    pub(crate) stream_events: Option<usize>,
}

impl Summary<'_> {
    pub(crate) fn print(&self, heading: &str, extra: &[(&str, String)]) {
        let anchor = self.policy.anchor();
        let root = if anchor.is_aws_nitro_root_g1() {
            "AWS Nitro Enclaves Root G1".to_owned()
        } else {
            format!(
                "explicitly trusted root {} (NOT the AWS root)",
                anchor.sha256_hex()
            )
        };
        let attestation = &self.enclave.attestation;
        let model = hex::encode(self.enclave.binding.model_sha256);
        let model_note = if self.policy.model_sha256().is_some() {
            "as expected"
        } else {
            "not pinned (no --model-sha256)"
        };
        eprintln!("--- {heading} ---");
        eprintln!(
            "enclave key:   {} (module {})",
            address_hex(&self.enclave.signer.address),
            attestation.module_id()
        );
        eprintln!("root:          {root}");
        eprintln!("document time: {}", attestation.timestamp());
        for index in 0..3u8 {
            if let Some(value) = attestation.pcr(index) {
                eprintln!("PCR{index}:          {}", hex::encode(value));
            }
        }
        eprintln!("model sha256:  {model} ({model_note})");
        let claims = self.receipt.claims();
        let mut receipt = format!(
            "verified, signed at {} by the attested key",
            attestation_verifier::UnixMillis(claims.timestamp_ms)
        );
        if let Some(events) = self.stream_events {
            receipt.push_str(&format!(", {events} stream events each verified"));
        }
        eprintln!("receipt:       {receipt}");
        eprintln!("request hash:  {}", hex::encode(claims.request_hash));
        eprintln!("response hash: {}", hex::encode(claims.response_hash));
        eprintln!(
            "response doc:  {}",
            if self.response_document {
                "fresh per-response document verified (binds this receipt)"
            } else {
                "none"
            }
        );
        for (name, value) in extra {
            eprintln!("{name:<14} {value}");
        }
    }
}
