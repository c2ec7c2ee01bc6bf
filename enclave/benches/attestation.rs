//! Costs on the enclave's request path: a development attestation document (what a
//! per-response document costs in development), receipt signing and verification, the stream
//! hash chain. Run: `cargo bench -p enclave --bench attestation`.

use std::hint::black_box;
use std::path::PathBuf;

use attestation_verifier::receipt::{ReceiptClaims, verify_receipt};
use attestation_verifier::stream::StreamHashChain;
use attestation_verifier::{Policy, TrustAnchor, UnixMillis, Verifier};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use enclave::attester::{Attester, DevAttester, DevCa, DevMeasurements};
use enclave::identity::EnclaveIdentity;

const MODEL: [u8; 32] = [0xb1; 32];

fn scratch_dir() -> PathBuf {
    let mut random = [0u8; 8];
    aws_lc_rs::rand::fill(&mut random).expect("random");
    let name: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    std::env::temp_dir().join(format!("enclave-bench-{name}"))
}

fn benches(c: &mut Criterion) {
    let directory = scratch_dir();
    let ca = DevCa::load_or_create(&directory).expect("dev CA");
    let attester = DevAttester::new(ca, DevMeasurements::new([1u8; 48], &MODEL)).expect("attester");
    let identity = EnclaveIdentity::generate(MODEL, &["localhost".to_owned()]).expect("identity");
    let request = identity.boot_attestation_request(Some(vec![7u8; 32]));

    c.bench_function("dev_attester_document", |b| {
        b.iter(|| attester.attest(black_box(&request)).expect("document"));
    });

    let request_body = vec![b'q'; 1024];
    let response_body = vec![b'a'; 4096];
    let claims = ReceiptClaims::for_bodies(MODEL, &request_body, &response_body, 1);
    c.bench_function("receipt_sign", |b| {
        b.iter(|| {
            identity
                .signing_key
                .sign_receipt(black_box(&claims))
                .expect("sign")
        });
    });

    let document = attester
        .attest(&identity.boot_attestation_request(None))
        .expect("document");
    let verifier =
        Verifier::new(TrustAnchor::from_der_explicit(attester.ca().root_der()).expect("anchor"));
    let attestation = verifier
        .verify(&document, &Policy::new(), UnixMillis::now())
        .expect("verifies");
    let receipt = identity.signing_key.sign_receipt(&claims).expect("sign");
    c.bench_function("receipt_verify_1k_request_4k_response", |b| {
        b.iter(|| {
            verify_receipt(
                black_box(&receipt),
                &attestation,
                &request_body,
                &response_body,
            )
            .expect("verifies")
        });
    });

    let chunk = vec![b'c'; 64];
    let mut group = c.benchmark_group("stream_chain");
    group.throughput(Throughput::Elements(1));
    group.bench_function("push_64_byte_chunk", |b| {
        let mut chain = StreamHashChain::new([0u8; 32]);
        b.iter(|| chain.push(black_box(&chunk)));
    });
    group.finish();

    let _ = std::fs::remove_dir_all(&directory);
}

criterion_group!(attestation, benches);
criterion_main!(attestation);
