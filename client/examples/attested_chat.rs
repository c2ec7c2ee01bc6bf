//! The client SDK in a dozen lines: connect to an enclave (directly or through host-proxy),
//! have its attestation verified under a policy before any prompt is sent, ask, and get an
//! answer whose receipt is verified against the attested key and the bytes exchanged.
//!
//! ```text
//! cargo run -p attest --example attested_chat -- <https://HOST:PORT> <root.pem> "<prompt>"
//! ```
//! With `make demo-keep` running: the proxy URL it prints and `.cache/demo/dev-pki/root.pem`.
//! A development root is trusted only because it is passed explicitly; against production
//! enclaves use `ClientPolicy::aws()` and pin the image (`expect_pcr`).

use std::process::ExitCode;

use attest::ClientPolicy;
use attest::connection::{AttestedConnection, ChatRequest, ConnectOptions};
use attestation_verifier::TrustAnchor;
use attestation_verifier::receipt::address_hex;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [url, root_pem, prompt] = arguments.as_slice() else {
        eprintln!("usage: attested_chat <https://HOST:PORT> <root.pem> <prompt>");
        return ExitCode::from(2);
    };
    let anchor = match std::fs::read(root_pem)
        .map_err(|error| error.to_string())
        .and_then(|pem| TrustAnchor::from_pem_explicit(&pem).map_err(|error| error.to_string()))
    {
        Ok(anchor) => anchor,
        Err(error) => {
            eprintln!("error: {root_pem}: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The real model only. Under a development root no image pin is required; under
    // `ClientPolicy::aws()` one is (`expect_pcr` or a policy file), or the connect fails.
    let model_sha256 = [
        0xb1, 0x79, 0xc9, 0x52, 0x3d, 0x0e, 0x6a, 0x0f, 0x98, 0xa3, 0x30, 0xc7, 0x56, 0x2b, 0x68,
        0x27, 0x50, 0xa6, 0xf8, 0xc8, 0xc1, 0x5e, 0x5b, 0xc7, 0x0e, 0xa3, 0x73, 0x72, 0x81, 0x10,
        0xdb, 0x53,
    ];
    let policy = ClientPolicy::new(anchor).expect_model_sha256(model_sha256);

    let mut connection =
        match AttestedConnection::connect(url, policy, ConnectOptions::default()).await {
            Ok(connection) => connection,
            Err(error) => {
                eprintln!("error: the enclave is not trusted: {error}");
                return ExitCode::FAILURE;
            }
        };
    let request = ChatRequest {
        prompt: prompt.clone(),
        max_tokens: Some(64),
        temperature: Some(0.0),
        ..ChatRequest::default()
    };
    match connection.chat(&request).await {
        Ok(answer) => {
            println!("{}", answer.answer);
            eprintln!(
                "verified: receipt signed by the attested key {}",
                address_hex(&answer.receipt.signer())
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: the answer did not verify: {error}");
            ExitCode::FAILURE
        }
    }
}
