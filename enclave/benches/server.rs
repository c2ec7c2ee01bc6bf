//! The full attested server (TLS 1.3, HTTP/1.1, receipts on every event) against the bare
//! engine, in one run, on the real model:
//! - a 64-token answer: time to first token, decode tokens/s, total time, and the server's
//!   overhead on the total (target ≤ 1%);
//! - the cost of one receipt signature (SHA-256 of a body + EIP-712 digest + secp256k1);
//! - throughput of 8 concurrent clients versus 1 through the server (target ≥ 1.5×).
//!
//! Run: `cargo bench -p enclave --bench server` (the model from `scripts/fetch-model.sh`, or
//! `ATTESTED_MODEL_PATH`). `ENCLAVE_BENCH_ROUNDS` sets the rounds per case (default 5).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use attestation_verifier::receipt::ReceiptClaims;
use bytes::Bytes;
use enclave::config::{AttesterChoice, EnclaveConfig, Limits};
use enclave::identity::EnclaveSigningKey;
use enclave::server::Server;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use inference_engine::{
    Engine, EngineConfig, GenerationEvent, GenerationParams, GenerationRequest, ModelHash,
    NoProgress, Prompt, SamplingParams, Scheduler, SchedulerConfig,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const MODEL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const PROMPT: &str = "Write a short story about a lighthouse keeper.";
const ANSWER_TOKENS: usize = 64;

fn model_path() -> PathBuf {
    std::env::var_os("ATTESTED_MODEL_PATH").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        },
        PathBuf::from,
    )
}

fn hash_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&MODEL_SHA256[index * 2..index * 2 + 2], 16).expect("hex");
    }
    out
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One 64-token answer's timings, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Timing {
    first_token_ms: f64,
    total_ms: f64,
}

impl Timing {
    fn decode_tokens_per_s(self) -> f64 {
        (ANSWER_TOKENS - 1) as f64 / ((self.total_ms - self.first_token_ms) / 1000.0)
    }
}

fn answer_request() -> GenerationRequest {
    GenerationRequest {
        prompt: Prompt::Text(PROMPT.to_owned()),
        params: GenerationParams {
            max_tokens: ANSWER_TOKENS,
            sampling: SamplingParams::greedy(),
            stop: Vec::new(),
            ignore_eos: true,
        },
    }
}

/// The engine through its batch scheduler: the very path the server uses, without HTTP,
/// TLS or receipts.
fn bare_scheduler_answer(scheduler: &Scheduler) -> Timing {
    let started = Instant::now();
    let handle = scheduler.submit(answer_request()).expect("submit");
    let mut first = None;
    loop {
        match handle.recv().expect("event") {
            GenerationEvent::Delta(_) => {
                first.get_or_insert_with(Instant::now);
            }
            GenerationEvent::Finished(output) => {
                assert_eq!(output.completion_tokens, ANSWER_TOKENS);
                break;
            }
            other => panic!("generation failed: {other:?}"),
        }
    }
    Timing {
        first_token_ms: (first.expect("a first token") - started).as_secs_f64() * 1e3,
        total_ms: started.elapsed().as_secs_f64() * 1e3,
    }
}

fn bare_engine_answer(engine: &Engine) -> Timing {
    let first = Arc::new(Mutex::new(None::<Instant>));
    let seen = Arc::clone(&first);
    let started = Instant::now();
    let output = engine
        .generate(answer_request(), move |_| {
            let mut seen = seen.lock().expect("lock");
            seen.get_or_insert_with(Instant::now);
            true
        })
        .expect("generate");
    let total = started.elapsed();
    assert_eq!(output.completion_tokens, ANSWER_TOKENS);
    let first = first.lock().expect("lock").expect("a first token");
    Timing {
        first_token_ms: (first - started).as_secs_f64() * 1e3,
        total_ms: total.as_secs_f64() * 1e3,
    }
}

fn request_body(model: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model, "prompt": PROMPT, "max_tokens": ANSWER_TOKENS, "ignore_eos": true,
        "temperature": 0, "stream": stream,
    })
    .to_string()
}

async fn connect(address: std::net::SocketAddr, certificate: &[u8]) -> SendRequest<Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(certificate.to_vec()))
        .expect("pinned certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(address).await.expect("connect");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http1");
    tokio::spawn(connection);
    sender
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, body: &str) -> hyper::Response<Incoming> {
    sender.ready().await.expect("ready");
    let request = hyper::Request::post("/v1/completions")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    response
}

/// A streamed 64-token answer through the server: first event, then the whole stream.
async fn server_stream_answer(sender: &mut SendRequest<Full<Bytes>>, model: &str) -> Timing {
    let body = request_body(model, true);
    let started = Instant::now();
    let mut response = send(sender, &body).await;
    let mut first = None;
    let mut events = 0;
    while let Some(frame) = response.body_mut().frame().await {
        let frame = frame.expect("frame");
        if let Some(data) = frame.data_ref() {
            first.get_or_insert_with(Instant::now);
            events += data.windows(6).filter(|w| w == b"data: ").count();
        }
    }
    let total = started.elapsed();
    // 64 text events, the finish event and [DONE] (a text event may merge tokens).
    assert!(events >= 3, "{events} events");
    Timing {
        first_token_ms: (first.expect("first event") - started).as_secs_f64() * 1e3,
        total_ms: total.as_secs_f64() * 1e3,
    }
}

/// A non-streamed 64-token answer through the server (total time only).
async fn server_full_answer(sender: &mut SendRequest<Full<Bytes>>, model: &str) -> f64 {
    let body = request_body(model, false);
    let started = Instant::now();
    let response = send(sender, &body).await;
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let total = started.elapsed();
    let answer: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(answer["usage"]["completion_tokens"], ANSWER_TOKENS);
    total.as_secs_f64() * 1e3
}

/// `clients` concurrent 64-token answers, each on its own connection: generated tokens/s.
async fn throughput(
    address: std::net::SocketAddr,
    certificate: &[u8],
    model: &str,
    clients: usize,
) -> f64 {
    let mut senders = Vec::new();
    for _ in 0..clients {
        senders.push(connect(address, certificate).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let model = model.to_owned();
            tokio::spawn(async move { server_full_answer(&mut sender, &model).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    (clients * ANSWER_TOKENS) as f64 / started.elapsed().as_secs_f64()
}

fn receipt_signature_us(rounds: usize) -> f64 {
    let key = EnclaveSigningKey::generate().expect("key");
    let model = hash_bytes();
    let request = vec![b'q'; 300];
    let response = vec![b'a'; 700];
    let started = Instant::now();
    for round in 0..rounds {
        let claims = ReceiptClaims::for_bodies(model, &request, &response, round as u64);
        std::hint::black_box(key.sign_receipt(&claims).expect("sign"));
    }
    started.elapsed().as_secs_f64() * 1e6 / rounds as f64
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a short smoke.
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    let rounds: usize = std::env::var("ENCLAVE_BENCH_ROUNDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(if smoke { 1 } else { 5 });
    let model = model_path();
    assert!(
        model.is_file(),
        "the model is missing at {}: run scripts/fetch-model.sh",
        model.display()
    );

    let pki = std::env::temp_dir().join(format!("enclave-bench-server-{}", std::process::id()));
    let server = Server::start(&EnclaveConfig {
        model: model.clone(),
        model_sha256: hash_bytes(),
        listen: "tcp:127.0.0.1:0".parse().expect("listen"),
        parent_listen: None,
        attester: AttesterChoice::Dev {
            pki_dir: pki.clone(),
        },
        server_names: vec!["localhost".to_owned()],
        limits: Limits::default(),
        onchain_relay: None,
    })
    .expect("server");
    let _ = std::fs::remove_dir_all(&pki);
    // The bare engine is loaded after the server's, so that the server's is not the fresher.
    let engine = Arc::new(
        Engine::load(
            &EngineConfig {
                expected_sha256: Some(ModelHash(hash_bytes())),
                ..EngineConfig::new(&model)
            },
            &mut NoProgress,
        )
        .expect("engine"),
    );
    let scheduler =
        Scheduler::start(Arc::clone(&engine), SchedulerConfig::default()).expect("scheduler");
    let address = server.socket_addr().expect("tcp");
    let certificate = server.certificate_der().to_vec();
    let model_id = server.model_id().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // Warm both (first-touch page faults, caches).
    bare_engine_answer(&engine);
    bare_scheduler_answer(&scheduler);
    let mut sender = runtime.block_on(connect(address, &certificate));
    runtime.block_on(server_stream_answer(&mut sender, &model_id));

    // Interleaved, so that load from other processes hits both sides alike.
    let (mut bare, mut scheduled, mut streamed, mut full) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        bare.push(bare_engine_answer(&engine));
        scheduled.push(bare_scheduler_answer(&scheduler));
        streamed.push(runtime.block_on(server_stream_answer(&mut sender, &model_id)));
        full.push(runtime.block_on(server_full_answer(&mut sender, &model_id)));
    }
    let stat = |timings: &[Timing], pick: fn(&Timing) -> f64| {
        let mut values: Vec<f64> = timings.iter().map(pick).collect();
        median(&mut values)
    };
    let bare_first = stat(&bare, |t| t.first_token_ms);
    let bare_total = stat(&bare, |t| t.total_ms);
    let bare_rate = stat(&bare, |t| t.decode_tokens_per_s());
    let scheduled_first = stat(&scheduled, |t| t.first_token_ms);
    let scheduled_total = stat(&scheduled, |t| t.total_ms);
    let scheduled_rate = stat(&scheduled, |t| t.decode_tokens_per_s());
    let stream_first = stat(&streamed, |t| t.first_token_ms);
    let stream_total = stat(&streamed, |t| t.total_ms);
    let stream_rate = stat(&streamed, |t| t.decode_tokens_per_s());
    let full_total = median(&mut full.clone());

    let signature_us = receipt_signature_us(if smoke { 10 } else { 2000 });

    let one = runtime.block_on(throughput(address, &certificate, &model_id, 1));
    let eight = runtime.block_on(throughput(address, &certificate, &model_id, 8));

    println!("64-token answer, median of {rounds} interleaved rounds (greedy, ignore_eos):");
    println!("| path | first token | decode | total for 64 tokens |");
    println!("|---|---|---|---|");
    println!(
        "| bare engine (`Engine::generate`) | {bare_first:.1} ms | {bare_rate:.1} tok/s | {bare_total:.1} ms |"
    );
    println!(
        "| bare engine through its `Scheduler` (the server's path) | {scheduled_first:.1} ms | {scheduled_rate:.1} tok/s | {scheduled_total:.1} ms |"
    );
    println!(
        "| server, streamed (TLS, 66 signed events) | {stream_first:.1} ms | {stream_rate:.1} tok/s | {stream_total:.1} ms |"
    );
    println!("| server, not streamed (TLS, one receipt) | | | {full_total:.1} ms |");
    println!(
        "server overhead on the total, against the scheduler: streamed {:+.2}%, not streamed {:+.2}% (target <= 1%); against Engine::generate: {:+.2}%, {:+.2}%",
        (stream_total / scheduled_total - 1.0) * 100.0,
        (full_total / scheduled_total - 1.0) * 100.0,
        (stream_total / bare_total - 1.0) * 100.0,
        (full_total / bare_total - 1.0) * 100.0
    );
    println!(
        "one receipt signature (SHA-256 of 300 + 700 bytes, EIP-712 digest, secp256k1): {signature_us:.1} us = {:.3}% of a 64-token answer",
        signature_us / 1e3 / bare_total * 100.0
    );
    println!(
        "throughput through the server: 1 client {one:.1} tok/s, 8 concurrent clients {eight:.1} tok/s, ratio {:.2}x (target >= 1.5x)",
        eight / one
    );
    drop(scheduler);
    drop(sender);
    drop(runtime);
    server.shutdown();
}
