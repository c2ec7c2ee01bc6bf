//! Verifying a real Nitro document: cold (whole chain), warm (intermediates cached), and the
//! same work done by `attestation-doc-validation` (evervault) from crates.io, as a ratio.
//!
//! Run: `cargo bench -p attestation-verifier --bench verify` (reads the real document from
//! `../shared/vectors/nitro/` or `NITRO_VECTORS_DIR`).
//!
//! The peer's top-level `validate_and_parse_attestation_doc` reads the system clock, and every
//! real document is expired today, so it would stop at the expiry check. The peer pipeline is
//! therefore run step by step through its public parts at the document's own time: its own
//! decoder and structure check (`decode_attestation_document`, serde_cbor), the certificate
//! chain through `webpki` 0.22 exactly as the peer calls it (its root parsed from PEM, the same
//! algorithm list, the document's time instead of the clock), and the COSE signature through
//! `aws-nitro-enclaves-cose` with a P-384 key from the `p384` crate, as the peer's crypto
//! client does.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use attestation_verifier::{Policy, TrustAnchor, UnixMillis, Verifier};
use criterion::{Criterion, criterion_group, criterion_main};

const DOCUMENT: &str = "marlin_aws_2024-12-13.cbor";
const AWS_ROOT_PEM: &[u8] = include_bytes!("../src/aws_nitro_root_g1.pem");

fn load_document() -> Vec<u8> {
    let dir = std::env::var_os("NITRO_VECTORS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/nitro"),
        PathBuf::from,
    );
    let path = dir.join(DOCUMENT);
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "{} not found ({error}): put the shared vectors in shared/vectors/nitro/ beside the \
             checkout or set NITRO_VECTORS_DIR",
            path.display()
        )
    })
}

mod peer {
    //! The peer's pipeline (see the module documentation of this bench).
    use aws_nitro_enclaves_cose::crypto::{
        Hash, MessageDigest, SignatureAlgorithm, SigningPublicKey,
    };
    use aws_nitro_enclaves_cose::error::CoseError;
    use p384::ecdsa::signature::hazmat::PrehashVerifier;
    use sha2::Digest;

    struct Sha2Hash;

    impl Hash for Sha2Hash {
        fn hash(digest: MessageDigest, data: &[u8]) -> Result<Vec<u8>, CoseError> {
            match digest {
                MessageDigest::Sha384 => Ok(sha2::Sha384::digest(data).to_vec()),
                _ => Err(CoseError::UnsupportedError("digest".to_owned())),
            }
        }
    }

    struct P384Key(p384::ecdsa::VerifyingKey);

    impl SigningPublicKey for P384Key {
        fn get_parameters(&self) -> Result<(SignatureAlgorithm, MessageDigest), CoseError> {
            Ok((SignatureAlgorithm::ES384, MessageDigest::Sha384))
        }
        fn verify(&self, digest: &[u8], signature: &[u8]) -> Result<bool, CoseError> {
            let signature = p384::ecdsa::Signature::from_slice(signature)
                .map_err(|_| CoseError::SignatureError(Box::new(std::fmt::Error)))?;
            Ok(self.0.verify_prehash(digest, &signature).is_ok())
        }
    }

    static ALGORITHMS: &[&webpki::SignatureAlgorithm] = &[
        &webpki::ECDSA_P256_SHA256,
        &webpki::ECDSA_P256_SHA384,
        &webpki::ECDSA_P384_SHA256,
        &webpki::ECDSA_P384_SHA384,
    ];

    pub(super) fn verify(document: &[u8], root_pem: &[u8], at_seconds: u64) -> bool {
        let Ok((sign1, decoded)) =
            attestation_doc_validation::attestation_doc::decode_attestation_document(document)
        else {
            return false;
        };
        let Ok((_, root)) = x509_parser::pem::parse_x509_pem(root_pem) else {
            return false;
        };
        let Ok(anchor) = webpki::TrustAnchor::try_from_cert_der(&root.contents) else {
            return false;
        };
        let anchors = [anchor];
        let Ok(leaf) = webpki::EndEntityCert::try_from(decoded.certificate.as_slice()) else {
            return false;
        };
        let intermediates: Vec<&[u8]> = decoded.cabundle.iter().map(|c| c.as_slice()).collect();
        if leaf
            .verify_is_valid_tls_server_cert(
                ALGORITHMS,
                &webpki::TlsServerTrustAnchors(&anchors),
                &intermediates,
                webpki::Time::from_seconds_since_unix_epoch(at_seconds),
            )
            .is_err()
        {
            return false;
        }
        let Ok((_, certificate)) = x509_parser::parse_x509_certificate(&decoded.certificate) else {
            return false;
        };
        let Ok(key) = p384::ecdsa::VerifyingKey::from_sec1_bytes(
            &certificate.public_key().subject_public_key.data,
        ) else {
            return false;
        };
        sign1
            .verify_signature::<Sha2Hash>(&P384Key(key))
            .unwrap_or(false)
    }
}

fn bench_verify(c: &mut Criterion) {
    let document = load_document();
    let parsed = attestation_verifier::parse_document(&document).expect("real document parses");
    let at = parsed.timestamp();
    let policy = Policy::new();
    let anchor = TrustAnchor::aws_nitro_root_g1();

    let cold = Verifier::new(anchor.clone());
    cold.verify(&document, &policy, at)
        .expect("real document verifies");
    let warm = Verifier::with_intermediate_cache(anchor);
    warm.verify(&document, &policy, at)
        .expect("real document verifies");
    assert!(
        peer::verify(&document, AWS_ROOT_PEM, at.as_millis() / 1000),
        "the peer pipeline accepts the document at its own time"
    );
    assert!(!peer::verify(
        &document,
        AWS_ROOT_PEM,
        UnixMillis::now().as_millis() / 1000
    ));

    let mut group = c.benchmark_group("verify_real_document");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("ours_cold_whole_chain", |b| {
        b.iter(|| cold.verify(black_box(&document), &policy, at).unwrap());
    });
    group.bench_function("ours_warm_cached_intermediates", |b| {
        b.iter(|| warm.verify(black_box(&document), &policy, at).unwrap());
    });
    group.bench_function("peer_attestation_doc_validation", |b| {
        b.iter(|| {
            assert!(peer::verify(
                black_box(&document),
                AWS_ROOT_PEM,
                at.as_millis() / 1000
            ))
        });
    });
    group.finish();

    // Criterion reports each figure; the ratios are printed here from a direct measurement so
    // that the comparison sits on one line.
    let time = |run: &dyn Fn()| {
        let rounds = 200;
        run();
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            run();
        }
        start.elapsed().as_secs_f64() / f64::from(rounds)
    };
    let ours_cold = time(&|| {
        cold.verify(&document, &policy, at).unwrap();
    });
    let ours_warm = time(&|| {
        warm.verify(&document, &policy, at).unwrap();
    });
    let peer = time(&|| {
        assert!(peer::verify(&document, AWS_ROOT_PEM, at.as_millis() / 1000));
    });
    println!(
        "ratio: cold {:.3} ms, warm {:.3} ms, peer {:.3} ms; peer/cold = {:.2}x, peer/warm = {:.2}x",
        ours_cold * 1e3,
        ours_warm * 1e3,
        peer * 1e3,
        peer / ours_cold,
        peer / ours_warm
    );
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
