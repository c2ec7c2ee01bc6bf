//! `attest chat`: an attested, verified chat with an enclave.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use attest::connection::{AttestedConnection, ChatRequest, ConnectOptions};
use clap::Args;

use super::{PolicyArgs, Summary, failed, usage_error};

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// The enclave (directly or through the host proxy): https://<host>:<port>.
    #[arg(long, value_name = "https://HOST:PORT")]
    url: String,
    #[command(flatten)]
    policy: PolicyArgs,
    /// A system message.
    #[arg(long, value_name = "TEXT")]
    system: Option<String>,
    /// Maximum tokens to generate.
    #[arg(long = "max-tokens", value_name = "N")]
    max_tokens: Option<u32>,
    /// Sampling temperature, 0..=2 (0: greedy, the same answer every time; default: the
    /// server's, 1).
    #[arg(long, value_name = "T", value_parser = parse_temperature)]
    temperature: Option<f32>,
    /// Seed for reproducible sampling.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Stream the answer, each event verified before it is printed.
    #[arg(long)]
    stream: bool,
    /// Save an evidence bundle (JSON) for offline verification; the answer then also carries
    /// a fresh per-response attestation document.
    #[arg(long = "save-evidence", value_name = "FILE")]
    save_evidence: Option<PathBuf>,
    /// The model id to request (default: the one the enclave lists with the attested hash).
    #[arg(long, value_name = "ID")]
    model: Option<String>,
    /// Seconds allowed for connecting and verifying the enclave.
    #[arg(long = "connect-timeout", default_value_t = 30, value_name = "SECS")]
    connect_timeout: u64,
    /// Seconds allowed for an answer (for streams: between two events).
    #[arg(long = "timeout", default_value_t = 300, value_name = "SECS")]
    timeout: u64,
    /// The prompt.
    prompt: String,
}

fn parse_temperature(text: &str) -> Result<f32, String> {
    text.parse::<f32>()
        .ok()
        .filter(|temperature| (0.0..=2.0).contains(temperature))
        .ok_or_else(|| format!("expected a number from 0 to 2, found {text:?}"))
}

pub(crate) fn run(args: &ChatArgs) -> ExitCode {
    let policy = match args.policy.build() {
        Ok(policy) => policy,
        Err(message) => return usage_error(&message),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return failed(&format!("cannot start the async runtime: {error}")),
    };
    let options = ConnectOptions {
        connect_timeout: Duration::from_secs(args.connect_timeout),
        answer_timeout: Duration::from_secs(args.timeout),
    };
    let request = ChatRequest {
        model: args.model.clone(),
        system: args.system.clone(),
        prompt: args.prompt.clone(),
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        seed: args.seed,
        response_document: args.save_evidence.is_some(),
    };
    runtime.block_on(async {
        let mut connection = match AttestedConnection::connect(&args.url, policy, options).await {
            Ok(connection) => connection,
            Err(error) => return failed(&error.to_string()),
        };
        let result = if args.stream {
            let mut stdout = std::io::stdout();
            let result = connection
                .chat_stream(&request, |text| {
                    let _ = stdout.write_all(text.as_bytes());
                    let _ = stdout.flush();
                })
                .await;
            println!();
            result
        } else {
            connection.chat(&request).await.inspect(|answer| {
                println!("{}", answer.answer);
            })
        };
        let answer = match result {
            Ok(answer) => answer,
            Err(error) => return failed(&error.to_string()),
        };
        let mut extra = vec![(
            "TLS key:",
            format!(
                "bound by the attestation document (SPKI sha256 {})",
                hex::encode(connection.tls_spki_sha256())
            ),
        )];
        if let Some(path) = &args.save_evidence {
            if let Err(error) = answer.evidence.save(path) {
                return failed(&error.to_string());
            }
            extra.push(("evidence:", format!("saved to {}", path.display())));
        }
        Summary {
            policy: connection.policy(),
            enclave: connection.enclave(),
            receipt: &answer.receipt,
            response_document: answer.response_document.is_some(),
            stream_events: answer.stream_events,
        }
        .print("verified", &extra);
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::parse_temperature;

    #[test]
    fn temperature_is_checked_before_anything_is_sent() {
        assert_eq!(parse_temperature("0"), Ok(0.0));
        assert_eq!(parse_temperature("1.5"), Ok(1.5));
        for bad in ["-0.1", "2.5", "hot", "NaN", ""] {
            assert!(parse_temperature(bad).is_err(), "{bad}");
        }
    }
}
