//! `attest`: the command-line client for attested inference.
//!
//! Exit status: 0 when the command succeeded (for `verify`: the document is valid), 1 when a
//! check failed (for `chat`: also when the enclave cannot be reached or refuses), 2 for usage
//! errors (bad arguments, unreadable files).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;
mod verify;

#[derive(Debug, Parser)]
#[command(
    name = "attest",
    version,
    about = "Verify attested inference from AWS Nitro Enclaves"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify an AWS Nitro attestation document (raw CBOR, base64 or hex).
    Verify(verify::VerifyArgs),
    /// Chat with an enclave over an attested connection; every answer's receipt is verified.
    Chat(cli::chat::ChatArgs),
    /// Verify a saved evidence bundle offline, at the attestation document's own time.
    VerifyEvidence(cli::evidence::VerifyEvidenceArgs),
}

fn main() -> ExitCode {
    // clap exits with status 2 on usage errors and 0 for --help / --version.
    let cli = Cli::parse();
    match cli.command {
        Command::Verify(args) => verify::run(&args),
        Command::Chat(args) => cli::chat::run(&args),
        Command::VerifyEvidence(args) => cli::evidence::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
