//! The real AWS Nitro documents of `shared/vectors/nitro/`: every one gets hints for all its
//! signatures, every hint passes the on-chain check (re-implemented in `check_hint`), tampered
//! documents get none. The hints are also the data of the contracts' tests
//! (`contracts/test/data/nitro-document-hints.json`, checked here to be current;
//! `NITRO_HINTS_REGENERATE=1` rewrites it).

use std::path::PathBuf;

use attestation_verifier::parse_document;
use nitro_hints::document::{DocumentHintError, Signed, document_hints};
use nitro_hints::ecdsa::HINT_LEN;

mod common;

use common::vectors_dir;

/// The real documents, sorted by file name.
fn documents() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(vectors_dir())
        .expect("shared/vectors/nitro beside the repository")
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".cbor"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 8,
        "expected the 8 real documents, found {names:?}"
    );
    names
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(vectors_dir().join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

#[test]
fn every_real_document_gets_one_hint_per_signature_in_chain_order() {
    for (name, bytes) in documents() {
        let document = parse_document(&bytes).unwrap();
        let hints = document_hints(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut expected: Vec<Signed> = (1..document.cabundle().len())
            .map(Signed::CaBundle)
            .collect();
        expected.extend([Signed::Leaf, Signed::Document]);
        let signed: Vec<Signed> = hints.iter().map(|hint| hint.signed).collect();
        assert_eq!(signed, expected, "{name}");
        assert!(
            hints
                .iter()
                .all(|hint| hint.hint.as_bytes().len() == HINT_LEN)
        );
    }
}

/// Flips one byte inside the part of `bytes` that equals `part` (found by search).
fn tamper(bytes: &[u8], part: &[u8], offset_in_part: usize) -> Vec<u8> {
    let start = bytes
        .windows(part.len())
        .position(|window| window == part)
        .expect("part inside the document");
    let mut tampered = bytes.to_vec();
    tampered[start + offset_in_part] ^= 0x01;
    tampered
}

#[test]
fn tampered_documents_get_no_hints() {
    let (name, bytes) = documents().swap_remove(0);
    let document = parse_document(&bytes).unwrap();

    // The document's own signature, and a byte of the signed payload (the module id).
    let signature = tamper(&bytes, document.signature(), 10);
    assert!(
        matches!(
            document_hints(&signature),
            Err(DocumentHintError::Signature {
                signed: Signed::Document,
                ..
            })
        ),
        "{name}: signature"
    );
    let module = tamper(&bytes, document.module_id().as_bytes(), 3);
    assert!(
        matches!(
            document_hints(&module),
            Err(DocumentHintError::Signature {
                signed: Signed::Document,
                ..
            })
        ),
        "{name}: payload"
    );

    // A byte inside each certificate's signed part: that link's signature fails (or, if the
    // byte breaks the DER, the certificate no longer parses).
    let mut certificates: Vec<&[u8]> = document.cabundle().iter().map(Vec::as_slice).collect();
    certificates.push(document.certificate());
    for (index, certificate) in certificates.iter().enumerate().skip(1) {
        let tampered = tamper(&bytes, certificate, certificate.len() / 2);
        let error = document_hints(&tampered).expect_err("tampered certificate");
        let signed = if index == certificates.len() - 1 {
            Signed::Leaf
        } else {
            Signed::CaBundle(index)
        };
        match error {
            DocumentHintError::Signature { signed: failed, .. }
            | DocumentHintError::CertificateMalformed { signed: failed, .. } => {
                assert_eq!(failed, signed, "{name}: certificate {index}");
            }
            other => panic!("{name}: certificate {index}: {other}"),
        }
    }
}

#[test]
fn junk_is_not_a_document() {
    assert!(matches!(
        document_hints(b"not cbor"),
        Err(DocumentHintError::Document(_))
    ));
    let (_, bytes) = documents().swap_remove(0);
    assert!(document_hints(&bytes[..bytes.len() - 1]).is_err());
}

/// The hints the contracts' tests use for the real documents.
#[test]
fn contract_test_data_is_current() {
    let mut json = String::from("{\n  \"documents\": [\n");
    let documents = documents();
    for (position, (name, bytes)) in documents.iter().enumerate() {
        let hints = document_hints(bytes).unwrap();
        let hints: Vec<String> = hints
            .iter()
            .map(|hint| format!("\"0x{}\"", hex::encode(hint.hint.as_bytes())))
            .collect();
        let separator = if position + 1 == documents.len() {
            ""
        } else {
            ","
        };
        json.push_str(&format!(
            "    {{\"file\": \"{name}\", \"hints\": [{}]}}{separator}\n",
            hints.join(", ")
        ));
    }
    json.push_str("  ]\n}\n");

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts/test/data/nitro-document-hints.json");
    if std::env::var_os("NITRO_HINTS_REGENERATE").is_some_and(|value| value == "1") {
        std::fs::write(&path, &json).unwrap();
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == json,
        "{} is missing or stale; regenerate it with NITRO_HINTS_REGENERATE=1 cargo test -p nitro-hints --test documents",
        path.display()
    );
}
