//! `attest verify-evidence`: offline check of a saved evidence bundle, each document at its
//! own time.

use std::path::PathBuf;
use std::process::ExitCode;

use attest::EvidenceBundle;
use clap::Args;

use super::{PolicyArgs, Summary, failed, usage_error};

#[derive(Debug, Args)]
pub(crate) struct VerifyEvidenceArgs {
    /// The evidence bundle (JSON) saved by `attest chat --save-evidence`.
    file: PathBuf,
    #[command(flatten)]
    policy: PolicyArgs,
}

pub(crate) fn run(args: &VerifyEvidenceArgs) -> ExitCode {
    let policy = match args.policy.build() {
        Ok(policy) => policy,
        Err(message) => return usage_error(&message),
    };
    let bundle = match EvidenceBundle::load(&args.file) {
        Ok(bundle) => bundle,
        Err(error) => return failed(&error.to_string()),
    };
    match bundle.verify(&policy) {
        Ok(verified) => {
            println!("{}", verified.answer);
            Summary {
                policy: &policy,
                enclave: &verified.enclave,
                receipt: &verified.receipt,
                response_document: verified.response_document.is_some(),
                stream_events: verified.stream_events,
            }
            .print(
                "VALID evidence (verified offline at the document's own time)",
                &[("endpoint:", verified.endpoint.clone())],
            );
            ExitCode::SUCCESS
        }
        Err(error) => failed(&error.to_string()),
    }
}
