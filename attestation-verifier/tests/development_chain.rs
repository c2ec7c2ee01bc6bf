//! A document in the NSM's exact format, signed by a locally generated P-384
//! root → intermediate → leaf chain (what the development attester will emit), passes when and
//! only when its root is trusted explicitly.

mod common;

use attestation_verifier::{
    ChainPosition, DocumentError, Policy, TrustAnchor, UnixMillis, Verifier, VerifyError,
};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
use common::{ES384_PROTECTED, Payload, encode_cose_sign1, sig_structure};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P384_SHA384, date_time_ymd,
};

/// 2030-01-01T00:00:00Z, inside every generated certificate's validity.
const DOCUMENT_TIME_MS: u64 = 1_893_456_000_000;

struct DevelopmentChain {
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    leaf_der: Vec<u8>,
    leaf_signer: EcdsaKeyPair,
}

fn name(params: &mut CertificateParams, common_name: &str) {
    params
        .distinguished_name
        .push(DnType::OrganizationName, "attested-inference development");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
}

fn build_chain(leaf_is_ca: bool, leaf_usage: KeyUsagePurpose) -> DevelopmentChain {
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let mut root_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    name(&mut root_params, "development root");
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root_params.not_before = date_time_ymd(2025, 1, 1);
    root_params.not_after = date_time_ymd(2035, 1, 1);
    let root = root_params.self_signed(&root_key).unwrap();

    let intermediate_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let mut intermediate_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    name(&mut intermediate_params, "development intermediate");
    intermediate_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    intermediate_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    intermediate_params.not_before = date_time_ymd(2029, 1, 1);
    intermediate_params.not_after = date_time_ymd(2031, 1, 1);
    let intermediate = intermediate_params
        .signed_by(&intermediate_key, &root, &root_key)
        .unwrap();

    let leaf_signer =
        EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).expect("P-384 key generation");
    let leaf_pkcs8 = leaf_signer.to_pkcs8v1().unwrap();
    let leaf_key = KeyPair::try_from(leaf_pkcs8.as_ref()).unwrap();
    let mut leaf_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    name(&mut leaf_params, "development enclave");
    leaf_params.is_ca = if leaf_is_ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    leaf_params.key_usages = vec![leaf_usage];
    leaf_params.not_before = date_time_ymd(2029, 12, 31);
    leaf_params.not_after = date_time_ymd(2030, 1, 2);
    let leaf = leaf_params
        .signed_by(&leaf_key, &intermediate, &intermediate_key)
        .unwrap();

    DevelopmentChain {
        root_der: root.der().to_vec(),
        intermediate_der: intermediate.der().to_vec(),
        leaf_der: leaf.der().to_vec(),
        leaf_signer,
    }
}

fn build_document(chain: &DevelopmentChain) -> Vec<u8> {
    let mut user_data = vec![0x01];
    user_data.extend_from_slice(&[0xab; 32]);
    user_data.extend_from_slice(&[0xcd; 32]);
    let payload = Payload {
        module_id: "i-0development-enc0000000000000000".to_owned(),
        digest: "SHA384".to_owned(),
        timestamp: DOCUMENT_TIME_MS,
        pcrs: (0..16u8)
            .map(|index| (index, vec![index + 1; 48]))
            .collect(),
        certificate: chain.leaf_der.clone(),
        cabundle: vec![chain.root_der.clone(), chain.intermediate_der.clone()],
        public_key: Some(vec![0x04; 65]),
        user_data: Some(user_data),
        nonce: None,
    }
    .encode();
    let signature = chain
        .leaf_signer
        .sign(
            &SystemRandom::new(),
            &sig_structure(&ES384_PROTECTED, &payload),
        )
        .unwrap();
    encode_cose_sign1(&ES384_PROTECTED, &payload, signature.as_ref())
}

#[test]
fn development_document_passes_only_with_its_root_passed_explicitly() {
    let chain = build_chain(false, KeyUsagePurpose::DigitalSignature);
    let document = build_document(&chain);
    let at = UnixMillis(DOCUMENT_TIME_MS);

    let development = Verifier::new(TrustAnchor::from_der_explicit(&chain.root_der).unwrap());
    let verified = development.verify(&document, &Policy::new(), at).unwrap();
    assert_eq!(verified.chain().len(), 3);
    assert_eq!(verified.chain()[1].position, ChainPosition::Intermediate(1));
    assert_eq!(verified.user_data().map(<[u8]>::len), Some(65));
    assert!(verified.nonce().is_none());

    // The default anchor refuses it.
    let default = Verifier::new(TrustAnchor::default());
    assert!(matches!(
        default.verify(&document, &Policy::new(), at),
        Err(VerifyError::UntrustedRoot { .. })
    ));
    // As does a different explicitly trusted development root.
    let other = build_chain(false, KeyUsagePurpose::DigitalSignature);
    let other_verifier = Verifier::new(TrustAnchor::from_der_explicit(&other.root_der).unwrap());
    assert!(matches!(
        other_verifier.verify(&document, &Policy::new(), at),
        Err(VerifyError::UntrustedRoot { .. })
    ));
    // PEM works too.
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64_encode(&chain.root_der)
    );
    let from_pem = Verifier::new(TrustAnchor::from_pem_explicit(pem.as_bytes()).unwrap());
    from_pem.verify(&document, &Policy::new(), at).unwrap();
}

#[test]
fn development_certificates_are_held_to_the_same_rules() {
    let at = UnixMillis(DOCUMENT_TIME_MS);
    let ca_leaf = build_chain(true, KeyUsagePurpose::DigitalSignature);
    let verifier = Verifier::new(TrustAnchor::from_der_explicit(&ca_leaf.root_der).unwrap());
    assert!(matches!(
        verifier.verify(&build_document(&ca_leaf), &Policy::new(), at),
        Err(VerifyError::LeafIsCertificateAuthority { .. })
    ));

    let wrong_usage = build_chain(false, KeyUsagePurpose::KeyEncipherment);
    let verifier = Verifier::new(TrustAnchor::from_der_explicit(&wrong_usage.root_der).unwrap());
    assert!(matches!(
        verifier.verify(&build_document(&wrong_usage), &Policy::new(), at),
        Err(VerifyError::LeafMissingDigitalSignature { .. })
    ));

    // Outside the intermediate's validity (2029..2031) the chain fails, naming it.
    let chain = build_chain(false, KeyUsagePurpose::DigitalSignature);
    let verifier = Verifier::new(TrustAnchor::from_der_explicit(&chain.root_der).unwrap());
    let document = build_document(&chain);
    let error = verifier
        .verify(&document, &Policy::new(), UnixMillis(1_956_528_000_000)) // 2032-01-01
        .unwrap_err();
    let VerifyError::CertificateExpired { certificate, .. } = error else {
        panic!("expected expiry, got {error}");
    };
    assert_eq!(certificate.position, ChainPosition::Intermediate(1));
    assert!(certificate.subject.contains("development intermediate"));

    // A signature by a key other than the leaf's.
    let mut forged = document.clone();
    let length = forged.len();
    forged[length - 1] ^= 0x01;
    assert_eq!(
        verifier.verify(&forged, &Policy::new(), at).unwrap_err(),
        VerifyError::SignatureInvalid
    );
    // r = 0 is out of range.
    let mut zero_r = document.clone();
    zero_r[length - 96..length - 48].fill(0);
    assert_eq!(
        verifier.verify(&zero_r, &Policy::new(), at).unwrap_err(),
        VerifyError::SignatureInvalid
    );
    assert!(matches!(
        attestation_verifier::parse_document(&document[..length - 1]),
        Err(DocumentError::MalformedCose { .. })
    ));
}

#[test]
fn path_length_constraints_are_enforced() {
    // root → intermediate (pathLen 0) → second intermediate → leaf: one CA too many.
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let mut root_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    name(&mut root_params, "root");
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let root = root_params.self_signed(&root_key).unwrap();
    let first_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let mut first_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    name(&mut first_params, "first");
    first_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    first_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let first = first_params
        .signed_by(&first_key, &root, &root_key)
        .unwrap();
    let second_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let mut second_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    name(&mut second_params, "second");
    second_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    second_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let second = second_params
        .signed_by(&second_key, &first, &first_key)
        .unwrap();
    let leaf_signer = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let leaf_key = KeyPair::try_from(leaf_signer.to_pkcs8v1().unwrap().as_ref()).unwrap();
    let mut leaf_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    name(&mut leaf_params, "leaf");
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let leaf = leaf_params
        .signed_by(&leaf_key, &second, &second_key)
        .unwrap();

    let now = UnixMillis::now();
    let payload = Payload {
        module_id: "i-0pathlen".to_owned(),
        digest: "SHA384".to_owned(),
        timestamp: now.as_millis(),
        pcrs: vec![(0, vec![1; 48])],
        certificate: leaf.der().to_vec(),
        cabundle: vec![
            root.der().to_vec(),
            first.der().to_vec(),
            second.der().to_vec(),
        ],
        public_key: None,
        user_data: None,
        nonce: None,
    }
    .encode();
    let signature = leaf_signer
        .sign(
            &SystemRandom::new(),
            &sig_structure(&ES384_PROTECTED, &payload),
        )
        .unwrap();
    let document = encode_cose_sign1(&ES384_PROTECTED, &payload, signature.as_ref());
    let verifier = Verifier::new(TrustAnchor::from_der_explicit(root.der()).unwrap());
    let error = verifier.verify(&document, &Policy::new(), now).unwrap_err();
    assert!(
        matches!(
            &error,
            VerifyError::PathLengthExceeded { certificate, path_len_constraint: 0, cas_below: 1 }
                if certificate.position == ChainPosition::Intermediate(1)
        ),
        "{error}"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
