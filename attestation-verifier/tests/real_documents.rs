//! The real AWS Nitro documents: genuine at their own time, expired today, debug handled.

mod common;

use attestation_verifier::{
    ChainPosition, Policy, TrustAnchor, UnixMillis, Verifier, VerifyError, parse_document,
};
use common::{Payload, aws_root_pem, real_documents};

fn verifier() -> Verifier {
    Verifier::new(TrustAnchor::aws_nitro_root_g1())
}

#[test]
fn embedded_root_is_the_published_aws_root() {
    let embedded = TrustAnchor::aws_nitro_root_g1();
    let shared = TrustAnchor::from_pem_explicit(&aws_root_pem()).expect("shared root parses");
    assert_eq!(embedded.der(), shared.der());
    assert_eq!(
        embedded.sha256_hex(),
        "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
    );
    assert!(embedded.is_aws_nitro_root_g1());
    assert_eq!(
        embedded.subject(),
        "C=US, O=Amazon, OU=AWS, CN=aws.nitro-enclaves"
    );
}

#[test]
fn every_document_verifies_at_its_own_timestamp() {
    let verifier = verifier();
    for document in real_documents() {
        let at = UnixMillis(document.timestamp_ms());
        let verified = verifier
            .verify(&document.bytes, &Policy::new().allow_debug_mode(), at)
            .unwrap_or_else(|error| panic!("{}: {error}", document.name));
        let decoded = &document.facts["decoded"];
        assert_eq!(verified.module_id(), decoded["module_id"].as_str().unwrap());
        assert_eq!(verified.timestamp(), at);
        assert_eq!(verified.verified_at(), at);
        assert_eq!(
            verified.pcrs().len() as u64,
            decoded["pcr_count"].as_u64().unwrap(),
            "{}",
            document.name
        );
        for (index, value) in verified.pcrs() {
            let expected = decoded["pcrs"][index.to_string()].as_str().unwrap();
            assert_eq!(
                common::decode_hex(expected),
                *value,
                "{} PCR{index}",
                document.name
            );
        }
        assert_eq!(
            verified.public_key().map(<[u8]>::to_vec),
            document.optional_hex("public_key")
        );
        assert_eq!(
            verified.user_data().map(<[u8]>::to_vec),
            document.optional_hex("user_data")
        );
        assert_eq!(
            verified.nonce().map(<[u8]>::to_vec),
            document.optional_hex("nonce")
        );
        assert_eq!(
            verified.is_debug_mode(),
            document.is_debug(),
            "{}",
            document.name
        );
        // root + 3 intermediates + leaf, root first.
        let chain = verified.chain();
        assert_eq!(chain.len(), 5, "{}", document.name);
        assert_eq!(chain[0].position, ChainPosition::Root);
        assert_eq!(chain[4].position, ChainPosition::Leaf);
        let facts_chain = document.facts["certs_root_to_leaf"].as_array().unwrap();
        assert_eq!(facts_chain.len(), chain.len());
        assert_eq!(
            verified.anchor_sha256(),
            TrustAnchor::aws_nitro_root_g1().sha256()
        );
    }
}

#[test]
fn non_debug_documents_pass_the_default_policy_and_debug_ones_do_not() {
    let verifier = verifier();
    let mut debug_seen = 0;
    for document in real_documents() {
        let at = UnixMillis(document.timestamp_ms());
        let result = verifier.verify(&document.bytes, &Policy::new(), at);
        if document.is_debug() {
            debug_seen += 1;
            assert_eq!(
                result.unwrap_err(),
                VerifyError::DebugModeRejected,
                "{}",
                document.name
            );
        } else {
            let verified = result.unwrap_or_else(|error| panic!("{}: {error}", document.name));
            assert!(!verified.is_debug_mode());
        }
    }
    assert_eq!(
        debug_seen, 3,
        "the shared vectors hold three debug-mode documents"
    );
}

#[test]
fn every_document_is_expired_today_naming_the_certificate() {
    let verifier = verifier();
    let now = UnixMillis::now();
    for document in real_documents() {
        let error = verifier
            .verify(&document.bytes, &Policy::new().allow_debug_mode(), now)
            .expect_err("a years-old document must not verify today");
        let VerifyError::CertificateExpired {
            certificate,
            not_after,
            verification_time,
        } = &error
        else {
            panic!("{}: expected an expiry error, got {error}", document.name);
        };
        assert_eq!(*verification_time, now);
        assert!(*not_after < now);
        assert!(!certificate.subject.is_empty());
        assert!(matches!(
            certificate.position,
            ChainPosition::Intermediate(_) | ChainPosition::Leaf
        ));
        let message = error.to_string();
        assert!(message.contains(&certificate.subject), "{message}");
        assert!(message.contains("expired at"), "{message}");
    }
}

#[test]
fn cached_verification_gives_the_same_verdicts() {
    let cached = Verifier::with_intermediate_cache(TrustAnchor::aws_nitro_root_g1());
    let uncached = verifier();
    let policy = Policy::new().allow_debug_mode();
    for _round in 0..2 {
        for document in real_documents() {
            let at = UnixMillis(document.timestamp_ms());
            let a = cached.verify(&document.bytes, &policy, at).unwrap();
            let b = uncached.verify(&document.bytes, &policy, at).unwrap();
            assert_eq!(a.chain(), b.chain());
            // Expiry is checked at every use of a cached intermediate.
            let later = UnixMillis::now();
            assert!(matches!(
                cached.verify(&document.bytes, &policy, later),
                Err(VerifyError::CertificateExpired { .. })
            ));
        }
    }
}

#[test]
fn high_s_signatures_are_accepted() {
    let verifier = verifier();
    let high_s: Vec<_> = real_documents()
        .into_iter()
        .filter(common::RealDocument::signature_is_high_s)
        .collect();
    assert!(
        high_s.len() >= 5,
        "the shared vectors hold several high-S signatures"
    );
    for document in high_s {
        let at = UnixMillis(document.timestamp_ms());
        verifier
            .verify(&document.bytes, &Policy::new().allow_debug_mode(), at)
            .unwrap_or_else(|error| panic!("{}: {error}", document.name));
    }
}

#[test]
fn tagged_documents_verify_like_untagged_ones() {
    let verifier = verifier();
    for document in real_documents() {
        let mut tagged = vec![0xd2];
        tagged.extend_from_slice(&document.bytes);
        let at = UnixMillis(document.timestamp_ms());
        verifier
            .verify(&tagged, &Policy::new().allow_debug_mode(), at)
            .unwrap_or_else(|error| panic!("{}: {error}", document.name));
    }
}

#[test]
fn real_documents_use_the_nsm_encoding_exactly() {
    // Untagged, protected header a1013822, nulls for absent fields, NSM field order: our
    // re-encoding reproduces each payload byte for byte.
    for document in real_documents() {
        assert_eq!(document.bytes[0], 0x84, "{} is untagged", document.name);
        let parsed = parse_document(&document.bytes).unwrap();
        assert_eq!(
            Payload::from_document(&parsed).encode(),
            parsed.payload(),
            "{}",
            document.name
        );
    }
}

#[test]
fn present_but_empty_user_data_is_kept() {
    let document = common::real_document("marlin_aws_pcr16_2025-04-29");
    let verified = verifier()
        .verify(
            &document.bytes,
            &Policy::new(),
            UnixMillis(document.timestamp_ms()),
        )
        .unwrap();
    assert_eq!(verified.user_data(), Some(&[][..]));
    assert_eq!(verified.pcrs().len(), 17);
    assert!(verified.pcr(16).is_some());
}

#[test]
fn policy_checks_on_a_real_document() {
    let document = common::real_document("evervault_tls_nondebug_2023-01-18");
    let verifier = verifier();
    let at = UnixMillis(document.timestamp_ms());
    let parsed = parse_document(&document.bytes).unwrap();
    let pcr0 = parsed.pcr(0).unwrap().to_vec();
    let nonce = parsed.nonce().unwrap().to_vec();
    let user_data = parsed.user_data().unwrap().to_vec();

    let strict = Policy::new()
        .expect_pcr(0, pcr0.clone())
        .expect_pcr(8, parsed.pcr(8).unwrap().to_vec())
        .expect_nonce(nonce.clone())
        .expect_user_data(user_data.clone())
        .max_age(std::time::Duration::from_secs(60));
    verifier.verify(&document.bytes, &strict, at).unwrap();

    let mut wrong_pcr0 = pcr0.clone();
    wrong_pcr0[0] ^= 1;
    assert!(matches!(
        verifier.verify(
            &document.bytes,
            &Policy::new().expect_pcr(0, wrong_pcr0),
            at
        ),
        Err(VerifyError::PcrMismatch { index: 0, .. })
    ));
    assert_eq!(
        verifier.verify(
            &document.bytes,
            &Policy::new().expect_pcr(20, vec![0; 48]),
            at
        ),
        Err(VerifyError::PcrMissing { index: 20 })
    );
    assert!(matches!(
        verifier.verify(
            &document.bytes,
            &Policy::new().expect_nonce(b"other".to_vec()),
            at
        ),
        Err(VerifyError::NonceMismatch { .. })
    ));
    assert!(matches!(
        verifier.verify(
            &document.bytes,
            &Policy::new().expect_user_data(b"x".to_vec()),
            at
        ),
        Err(VerifyError::UserDataMismatch { .. })
    ));
    assert_eq!(
        verifier.verify(
            &document.bytes,
            &Policy::new().expect_public_key(vec![1]),
            at
        ),
        Err(VerifyError::PublicKeyMissing)
    );
    // One hour after the document (still within the leaf's validity): too old for 60 s.
    let later = UnixMillis(at.0 + 3_600_000);
    assert_eq!(
        verifier.verify(&document.bytes, &strict, later),
        Err(VerifyError::TooOld {
            age_ms: 3_600_000,
            max_age_ms: 60_000
        })
    );
}

#[test]
fn a_timestamp_after_the_verification_time_is_refused_beyond_the_skew() {
    // The leaf of this document was issued 100 minutes before it, so earlier verification
    // times still have a valid chain and only the timestamp rule decides.
    let document = common::real_document("marlin_aws_2024-12-13");
    let verifier = verifier();
    let at = document.timestamp_ms();
    assert!(matches!(
        verifier.verify(&document.bytes, &Policy::new(), UnixMillis(at - 120_000)),
        Err(VerifyError::TimestampInFuture { .. })
    ));
    verifier
        .verify(&document.bytes, &Policy::new(), UnixMillis(at - 30_000))
        .expect("within the default 60 s skew");
    let no_skew = Policy::new().max_clock_skew(std::time::Duration::ZERO);
    assert!(matches!(
        verifier.verify(&document.bytes, &no_skew, UnixMillis(at - 1)),
        Err(VerifyError::TimestampInFuture { .. })
    ));
}

#[test]
fn another_root_does_not_accept_aws_documents() {
    // A verifier anchored elsewhere (here: a freshly generated root) rejects genuine documents.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let root = params.self_signed(&key).unwrap();
    let anchor = TrustAnchor::from_der_explicit(root.der()).unwrap();
    assert!(!anchor.is_aws_nitro_root_g1());
    let verifier = Verifier::new(anchor);
    for document in real_documents() {
        let at = UnixMillis(document.timestamp_ms());
        assert!(matches!(
            verifier.verify(&document.bytes, &Policy::new().allow_debug_mode(), at),
            Err(VerifyError::UntrustedRoot { .. })
        ));
    }
}
