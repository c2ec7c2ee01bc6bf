//! The official `openai` Python package (pinned in scripts/install-deps.sh) completes a chat
//! against the server, streamed and not, trusting only the enclave's certificate; the exact
//! bytes it exchanged carry receipts that verify with the verifier library, and one changed
//! byte makes verification fail.
//!
//! The interpreter is `$ENCLAVE_TEST_PYTHON`, or the virtual environment that
//! `scripts/install-deps.sh` creates in `.cache/openai-venv`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use attestation_verifier::Policy;
use attestation_verifier::binding::ResponseBinding;
use attestation_verifier::receipt::{Receipt, ReceiptClaims, ReceiptError, verify_receipt};
use common::TempDir;
use common::https::{TestServer, base64_decode, hex_decode, parse_events, verify_stream};
use enclave::config::Limits;

fn python() -> PathBuf {
    let path = std::env::var_os("ENCLAVE_TEST_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/openai-venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no Python with the `openai` package at {}: run scripts/install-deps.sh (or set \
         ENCLAVE_TEST_PYTHON)",
        path.display()
    );
    path
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[test]
fn the_openai_package_completes_chats_whose_receipts_verify() {
    let python = python();
    let server = TestServer::start(Limits::default());
    let directory = TempDir::new();
    let certificate = directory.path().join("enclave.pem");
    std::fs::write(&certificate, pem(server.server.certificate_der())).expect("write PEM");
    let port = server.server.socket_addr().expect("tcp").port();
    let output = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/openai_client.py"
        ))
        .arg(format!("https://localhost:{port}/v1"))
        .arg(&certificate)
        .arg(server.model())
        // Only the pinned certificate is trusted; no proxy in the way.
        .env_remove("SSL_CERT_FILE")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env("NO_PROXY", "*")
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");

    let exchanges = report["exchanges"].as_array().expect("exchanges");
    assert_eq!(exchanges.len(), 2, "{report}");
    let bytes = |exchange: &serde_json::Value, field: &str| {
        base64_decode(exchange[field].as_str().expect(field))
    };
    let header = |exchange: &serde_json::Value, name: &str| -> String {
        exchange["headers"][name]
            .as_str()
            .unwrap_or_else(|| panic!("header {name} missing"))
            .to_owned()
    };

    // The non-streamed chat: what the package parsed is what the receipt covers.
    let chat = &exchanges[0];
    assert_eq!(chat["status"], 200);
    let (request, response) = (bytes(chat, "request_body"), bytes(chat, "response_body"));
    let answer: serde_json::Value = serde_json::from_slice(&response).expect("json");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        report["chat"]["content"]
    );
    assert_eq!(
        report["chat"]["completion_tokens"],
        answer["usage"]["completion_tokens"]
    );
    let boot = server.verify(
        &base64_decode(&header(chat, "x-attested-document")),
        &Policy::new(),
    );
    let hash = |name: &str| -> [u8; 32] {
        hex_decode(&header(chat, name))
            .try_into()
            .expect("32 bytes")
    };
    let receipt = Receipt {
        claims: ReceiptClaims {
            model_hash: hash("x-attested-model-sha256"),
            request_hash: hash("x-attested-request-sha256"),
            response_hash: hash("x-attested-response-sha256"),
            timestamp_ms: header(chat, "x-attested-timestamp-ms").parse().expect("ms"),
        },
        signature: hex_decode(&header(chat, "x-attested-signature")),
    };
    verify_receipt(&receipt, &boot, &request, &response).expect("the chat's receipt verifies");
    let mut tampered = response.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x20;
    assert!(matches!(
        verify_receipt(&receipt, &boot, &request, &tampered),
        Err(ReceiptError::ResponseHashMismatch { .. })
    ));

    // The streamed chat: every event verifies, the text is what the package assembled, and
    // [DONE] carries a fresh document for the nonce the package sent.
    let streamed = &exchanges[1];
    assert_eq!(streamed["status"], 200);
    assert_eq!(header(streamed, "content-type"), "text/event-stream");
    let (request, body) = (
        bytes(streamed, "request_body"),
        bytes(streamed, "response_body"),
    );
    let boot = server.verify(
        &base64_decode(&header(streamed, "x-attested-document")),
        &Policy::new(),
    );
    let events = parse_events(&body);
    let (text, final_digest) = verify_stream(&boot, &request, &events).expect("stream verifies");
    assert_eq!(text, report["stream"]["content"].as_str().expect("text"));
    assert_eq!(
        text,
        report["chat"]["content"].as_str().expect("text"),
        "greedy: same text"
    );
    assert_eq!(
        report["stream"]["completion_tokens"],
        report["chat"]["completion_tokens"]
    );
    let document = events
        .last()
        .and_then(|event| event.response_document.clone())
        .expect("per-response document");
    let fresh = server.verify(
        &document,
        &Policy::new().expect_nonce(hex_decode("0badc0ffee")),
    );
    assert_eq!(
        ResponseBinding::parse(fresh.user_data().expect("user_data"))
            .expect("response binding")
            .receipt_digest,
        final_digest
    );
    let mut tampered = events.clone();
    tampered[2].data[0] ^= 0x01;
    assert!(verify_stream(&boot, &request, &tampered).is_err());
}
