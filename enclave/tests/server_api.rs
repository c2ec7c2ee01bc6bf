//! The attested server on the real model, over real TLS on loopback: receipts of streamed
//! and non-streamed answers verify with the verifier library (and fail after a one-byte
//! change), attestation documents bind the handshake certificate, parallel clients all get
//! verifiable answers, a client that leaves cancels its generation, and every bad input
//! gets its documented error.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use attestation_verifier::binding::{BootBinding, ResponseBinding};
use attestation_verifier::receipt::{Receipt, ReceiptClaims, ReceiptError, verify_receipt};
use attestation_verifier::{Policy, VerifiedAttestation};
use common::SMOLLM2_SHA256;
use common::https::{
    Reply, TestServer, Version, base64_decode, hex, hex_decode, parse_events, read_to_close,
    sha256, verify_stream, write_all,
};
use enclave::config::Limits;
use hyper::StatusCode;

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| TestServer::start(Limits::default()))
}

fn chat_body(model: &str, max_tokens: u32, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    })
    .to_string()
}

/// The boot document of an answer's headers, verified under the development root.
fn boot_document(server: &TestServer, reply: &Reply) -> VerifiedAttestation {
    let document = base64_decode(
        reply
            .header("x-attested-document")
            .expect("document header"),
    );
    server.verify(&document, &Policy::new())
}

fn receipt_of(reply: &Reply) -> Receipt {
    let hash = |name| -> [u8; 32] {
        hex_decode(reply.header(name).expect(name))
            .try_into()
            .expect("32 bytes")
    };
    Receipt {
        claims: ReceiptClaims {
            model_hash: hash("x-attested-model-sha256"),
            request_hash: hash("x-attested-request-sha256"),
            response_hash: hash("x-attested-response-sha256"),
            timestamp_ms: reply
                .header("x-attested-timestamp-ms")
                .expect("timestamp")
                .parse()
                .expect("decimal"),
        },
        signature: hex_decode(reply.header("x-attested-signature").expect("signature")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_answer_carries_a_receipt_that_verifies_and_breaks_on_one_byte() {
    let server = server();
    let request = chat_body(server.model(), 8, false);
    let nonce = "00112233445566778899aabbccddeeff";
    let reply = server
        .request(
            Version::Http1,
            "POST",
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("x-attested-nonce", nonce),
            ],
            request.as_bytes(),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let answer = reply.json();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], server.model());
    assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
    assert!(
        !answer["choices"][0]["message"]["content"]
            .as_str()
            .expect("text")
            .is_empty()
    );
    assert_eq!(answer["usage"]["completion_tokens"], 8);
    assert_eq!(answer["choices"][0]["finish_reason"], "length");

    let boot = boot_document(server, &reply);
    let receipt = receipt_of(&reply);
    let verified =
        verify_receipt(&receipt, &boot, request.as_bytes(), &reply.body).expect("receipt verifies");
    assert_eq!(verified.signer(), server.server.enclave_address());
    assert_eq!(receipt.claims.model_hash, SMOLLM2_SHA256);

    // One byte changed anywhere breaks it.
    let mut tampered = reply.body.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    assert!(matches!(
        verify_receipt(&receipt, &boot, request.as_bytes(), &tampered),
        Err(ReceiptError::ResponseHashMismatch { .. })
    ));
    let mut tampered_request = request.clone().into_bytes();
    tampered_request[2] ^= 0x01;
    assert!(matches!(
        verify_receipt(&receipt, &boot, &tampered_request, &reply.body),
        Err(ReceiptError::RequestHashMismatch { .. })
    ));
    let mut bad_signature = receipt.clone();
    bad_signature.signature[10] ^= 0x01;
    assert!(verify_receipt(&bad_signature, &boot, request.as_bytes(), &reply.body).is_err());

    // The per-response document: fresh, with the nonce, binding this receipt's digest.
    let response_document = base64_decode(
        reply
            .header("x-attested-response-document")
            .expect("a nonce asks for a per-response document"),
    );
    let fresh = server.verify(
        &response_document,
        &Policy::new().expect_nonce(hex_decode(nonce)),
    );
    let binding = ResponseBinding::parse(fresh.user_data().expect("user_data")).expect("0x02");
    assert_eq!(binding.receipt_digest, verified.digest());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_signed_event_by_event_over_http2() {
    let server = server();
    let request = serde_json::json!({
        "model": server.model(),
        "messages": [{"role": "user", "content": "Name three colours."}],
        "max_tokens": 6,
        "temperature": 0,
        "stream": true,
        "stream_options": {"include_usage": true},
    })
    .to_string();
    let nonce = "a1b2c3";
    let reply = server
        .request(
            Version::Http2,
            "POST",
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("x-attested-nonce", nonce),
            ],
            request.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        reply.header("x-attested-request-sha256"),
        Some(hex(&sha256(request.as_bytes())).as_str())
    );
    assert!(reply.header("x-attested-signature").is_none());
    let boot = boot_document(server, &reply);
    let events = parse_events(&reply.body);
    // Role, deltas, finish, usage, [DONE].
    assert!(events.len() >= 5, "{events:?}");
    let (text, final_digest) =
        verify_stream(&boot, request.as_bytes(), &events).expect("stream verifies");
    assert!(!text.is_empty());
    let usage: serde_json::Value =
        serde_json::from_slice(&events[events.len() - 2].data).expect("usage chunk");
    assert_eq!(usage["usage"]["completion_tokens"], 6);
    let finish: serde_json::Value =
        serde_json::from_slice(&events[events.len() - 3].data).expect("finish chunk");
    assert_eq!(finish["choices"][0]["finish_reason"], "length");

    // Only [DONE] carries the per-response document, binding the whole stream's receipt.
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e.response_document.is_none())
    );
    let document = events
        .last()
        .and_then(|e| e.response_document.clone())
        .expect("document");
    let fresh = server.verify(&document, &Policy::new().expect_nonce(hex_decode(nonce)));
    let binding = ResponseBinding::parse(fresh.user_data().expect("user_data")).expect("0x02");
    assert_eq!(binding.receipt_digest, final_digest);

    // One byte changed in one chunk: that chunk and everything after it fail.
    let mut tampered = events.clone();
    let last_byte = tampered[1].data.len() - 3;
    tampered[1].data[last_byte] ^= 0x01;
    assert!(verify_stream(&boot, request.as_bytes(), &tampered).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_completions_endpoint_answers_streamed_and_not() {
    let server = server();
    let request = serde_json::json!({
        "model": server.model(), "prompt": "The capital of France is", "max_tokens": 5,
        "temperature": 0,
    })
    .to_string();
    let reply = server.post("/v1/completions", &request).await;
    assert_eq!(reply.status, StatusCode::OK);
    let answer = reply.json();
    assert_eq!(answer["object"], "text_completion");
    let text = answer["choices"][0]["text"]
        .as_str()
        .expect("text")
        .to_owned();
    let boot = boot_document(server, &reply);
    verify_receipt(&receipt_of(&reply), &boot, request.as_bytes(), &reply.body)
        .expect("receipt verifies");

    // The same request streamed gives the same (greedy) text.
    let streamed_request = request.replacen('{', "{\"stream\":true,", 1);
    let reply = server.post("/v1/completions", &streamed_request).await;
    assert_eq!(reply.status, StatusCode::OK);
    let events = parse_events(&reply.body);
    let (streamed_text, _) = verify_stream(
        &boot_document(server, &reply),
        streamed_request.as_bytes(),
        &events,
    )
    .expect("stream verifies");
    assert_eq!(streamed_text, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_documents_bind_the_handshake_certificate() {
    let server = server();
    let nonce = "5eed".repeat(16);
    let reply = server.get(&format!("/v1/attestation?nonce={nonce}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/cbor"));
    let policy = Policy::new()
        .expect_nonce(hex_decode(&nonce))
        .expect_public_key(
            server
                .verify(&server.server.boot_document(), &Policy::new())
                .public_key()
                .expect("key")
                .to_vec(),
        );
    let verified = server.verify(&reply.body, &policy);
    let binding = BootBinding::from_attestation(&verified).expect("boot binding");
    let (_, certificate) =
        x509_parser::parse_x509_certificate(&reply.peer_certificate).expect("certificate");
    binding
        .check_tls_spki(certificate.public_key().raw)
        .expect("the document binds the certificate seen in the handshake");
    binding.check_model(&SMOLLM2_SHA256).expect("model");
    assert_eq!(reply.peer_certificate, server.server.certificate_der());

    // Without a nonce: the current boot document.
    let reply = server.get("/v1/attestation").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, server.server.boot_document());
    assert!(server.verify(&reply.body, &Policy::new()).nonce().is_none());

    for bad in ["", "xyz", "abc", &"00".repeat(65)] {
        let reply = server.get(&format!("/v1/attestation?nonce={bad}")).await;
        let error = reply.expect_error(StatusCode::BAD_REQUEST);
        assert_eq!(error["param"], "nonce", "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_health_and_metrics() {
    let server = server();
    let models = server.get("/v1/models").await.json();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], server.model());
    assert_eq!(models["data"][0]["sha256"], hex(&SMOLLM2_SHA256));
    let one = server.get(&format!("/v1/models/{}", server.model())).await;
    assert_eq!(one.json()["id"], server.model());
    server
        .get("/v1/models/gpt-4")
        .await
        .expect_error(StatusCode::NOT_FOUND);

    let health = server.get("/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");

    // A completion, then the counters show it.
    let reply = server
        .post("/v1/chat/completions", &chat_body(server.model(), 2, false))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    // Metrics are the operator's: on the parent channel, not on the public port.
    server
        .get("/metrics")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    let text = server.metrics().await;
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} missing:\n{text}"))
            .trim()
            .parse()
            .expect("number")
    };
    assert!(
        value("enclave_http_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"}")
            >= 1.0
    );
    assert!(value("enclave_completion_tokens_total") >= 2.0);
    assert!(value("enclave_prompt_tokens_total") >= 1.0);
    assert!(
        value("enclave_completion_duration_seconds_count{endpoint=\"/v1/chat/completions\"}")
            >= 1.0
    );
    value("enclave_queue_depth");
    value("enclave_attestation_refreshes_total{outcome=\"ok\"}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_parallel_clients_all_get_verifiable_answers() {
    let questions = [
        "What is 2 + 2?",
        "Name a fruit.",
        "Say hello.",
        "What colour is the sky?",
        "Count to three.",
        "Name a planet.",
        "What is water made of?",
        "Name an animal.",
    ];
    let mut tasks = Vec::new();
    for (index, question) in questions.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let server = server();
            let stream = index % 2 == 0;
            let request = serde_json::json!({
                "model": server.model(),
                "messages": [{"role": "user", "content": question}],
                "max_tokens": 8, "temperature": 0.7, "seed": index, "stream": stream,
            })
            .to_string();
            let version = if index % 4 < 2 {
                Version::Http1
            } else {
                Version::Http2
            };
            let reply = server
                .request(
                    version,
                    "POST",
                    "/v1/chat/completions",
                    &[],
                    request.as_bytes(),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "client {index}");
            let boot = boot_document(server, &reply);
            if stream {
                let events = parse_events(&reply.body);
                let (text, _) =
                    verify_stream(&boot, request.as_bytes(), &events).expect("stream verifies");
                assert!(!text.is_empty(), "client {index}");
            } else {
                verify_receipt(&receipt_of(&reply), &boot, request.as_bytes(), &reply.body)
                    .expect("receipt verifies");
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_cancels_its_generation() {
    let server = server();
    let metric = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    let before = server.metrics().await;
    let cancelled_before = metric(&before, "enclave_generations_cancelled_total ");

    let request = serde_json::json!({
        "model": server.model(), "prompt": "Once upon a time", "max_tokens": 500,
        "ignore_eos": true, "stream": true,
    })
    .to_string();
    let mut tls = server.connect(&[b"http/1.1"]).await;
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{request}",
        request.len()
    );
    write_all(&mut tls, head.as_bytes()).await;
    // Wait for the first signed event, then leave.
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !received.windows(22).any(|w| w == b"x-attested-signature: ") {
        use tokio::io::AsyncReadExt as _;
        let read = tls.read(&mut buffer).await.expect("read");
        assert!(read > 0, "closed early");
        received.extend_from_slice(&buffer[..read]);
    }
    drop(tls);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = server.metrics().await;
        if metric(&text, "enclave_generations_cancelled_total ") > cancelled_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the generation was not cancelled:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_gets_its_documented_error() {
    let server = server();
    let model = server.model();
    let chat = |extra: &str| {
        format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"Hi"}}],"max_tokens":2{extra}}}"#
        )
    };
    let cases: Vec<(String, StatusCode, Option<&str>, Option<&str>)> = vec![
        ("{\"model\":".to_owned(), StatusCode::BAD_REQUEST, None, Some("invalid_json")),
        ("[]".to_owned(), StatusCode::BAD_REQUEST, None, None),
        (chat(r#","temperature":"warm""#), StatusCode::BAD_REQUEST, Some("temperature"), Some("invalid_value")),
        (chat(r#","temperature":3"#), StatusCode::BAD_REQUEST, Some("temperature"), Some("invalid_value")),
        (chat(r#","top_p":-0.5"#), StatusCode::BAD_REQUEST, Some("top_p"), Some("invalid_value")),
        (chat(r#","max_tokens":100000"#).replace(r#""max_tokens":2,"#, ""), StatusCode::BAD_REQUEST, Some("max_tokens"), Some("invalid_value")),
        (chat(r#","stream":1"#), StatusCode::BAD_REQUEST, Some("stream"), Some("invalid_value")),
        (chat(r#","n":3"#), StatusCode::BAD_REQUEST, Some("n"), Some("unsupported_parameter")),
        (chat(r#","unknown_extension_field":{"anything":true}"#), StatusCode::OK, None, None),
        (
            r#"{"model":"gpt-4","messages":[{"role":"user","content":"Hi"}]}"#.to_owned(),
            StatusCode::NOT_FOUND,
            Some("model"),
            Some("model_not_found"),
        ),
        (
            serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hello ".repeat(9000)}]}).to_string(),
            StatusCode::BAD_REQUEST,
            Some("messages"),
            Some("context_length_exceeded"),
        ),
    ];
    for (body, status, param, code) in cases {
        let reply = server.post("/v1/chat/completions", &body).await;
        let shown = &body[..body.len().min(80)];
        if status == StatusCode::OK {
            assert_eq!(reply.status, status, "{shown}");
            continue;
        }
        let error = reply.expect_error(status);
        if let Some(param) = param {
            assert_eq!(error["param"], param, "{shown}");
        }
        if let Some(code) = code {
            assert_eq!(error["code"], code, "{shown}");
        }
        // Errors to a request that was read are signed too.
        let boot = boot_document(server, &reply);
        verify_receipt(&receipt_of(&reply), &boot, body.as_bytes(), &reply.body)
            .expect("the error answer's receipt verifies");
    }

    // Paths and methods.
    server
        .get("/v1/nothing")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    let reply = server.get("/v1/chat/completions").await;
    reply.expect_error(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = server
        .request(Version::Http2, "DELETE", "/v1/models", &[], b"")
        .await;
    reply.expect_error(StatusCode::METHOD_NOT_ALLOWED);

    // A malformed nonce header.
    let reply = server
        .request(
            Version::Http1,
            "POST",
            "/v1/chat/completions",
            &[("x-attested-nonce", "not-hex")],
            chat("").as_bytes(),
        )
        .await;
    assert_eq!(
        reply.expect_error(StatusCode::BAD_REQUEST)["param"],
        "x-attested-nonce"
    );

    // Oversized bodies: announced (refused before reading), and chunked (counted).
    let limit = Limits::default().max_request_bytes as usize;
    // Raw bytes: the server answers and closes while a client would still be writing the body,
    // which a full HTTP client may report as a broken pipe instead of the answer.
    let mut tls = server.connect(&[b"http/1.1"]).await;
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{{\"model\":\"{model}\",\"prompt\":\"aaaa",
        limit + 1
    );
    write_all(&mut tls, head.as_bytes()).await;
    let answer = read_to_close(&mut tls).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"code\":\"request_too_large\""),
        "{answer}"
    );
    let mut tls = server.connect(&[b"http/1.1"]).await;
    write_all(
        &mut tls,
        b"POST /v1/completions HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n",
    )
    .await;
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    let mut answer = Vec::new();
    while sent <= limit + chunk.len() {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        use tokio::io::AsyncWriteExt as _;
        if tls.write_all(&frame).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    answer.extend(read_to_close(&mut tls).await);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"code\":\"request_too_large\""),
        "{answer}"
    );
}
