//! Writes (and checks) `contracts/test/data/nitro-document-verdicts.json`: this crate's parse
//! verdict on real documents with one structural byte replaced (by every value), deleted, or
//! preceded by an inserted byte (every value). The Solidity parser (`NitroDocument.sol`) must
//! reach the same verdict on every one (`NitroDocument.t.sol`,
//! `test_verdictsMatchTheRustVerifier`). Run with `NITRO_WRITE_VERDICTS=1` to rewrite the file.

mod common;

use attestation_verifier::parse_document;
use common::real_document;

/// Documents covered: high-S and null optionals; 17 PCRs and an empty user_data; nonce and
/// user_data present.
const DOCUMENTS: [&str; 3] = [
    "marlin_aws_2024-12-13",
    "marlin_aws_pcr16_2025-04-29",
    "evervault_ga_2023-09-18",
];
const KEYS: [&str; 9] = [
    "module_id",
    "digest",
    "timestamp",
    "pcrs",
    "certificate",
    "cabundle",
    "public_key",
    "user_data",
    "nonce",
];

/// The bytes where structure lives: the envelope's heads and the payload map's head (the first
/// 14 bytes), each key's head and the three bytes after the key (its value's head and the first
/// heads inside it), and the signature's head.
fn structural_positions(document: &[u8]) -> Vec<usize> {
    let mut positions: Vec<usize> = (0..14).collect();
    for key in KEYS {
        let at = document
            .windows(key.len())
            .position(|window| window == key.as_bytes())
            .unwrap_or_else(|| panic!("{key} not found"));
        positions.extend([
            at - 1,
            at + key.len(),
            at + key.len() + 1,
            at + key.len() + 2,
        ]);
    }
    positions.extend([document.len() - 98, document.len() - 97]);
    positions.sort_unstable();
    positions.dedup();
    positions
}

/// 256 verdicts as a 256-bit word, bit `value` set when the variant for `value` parses.
fn verdict_word(variant: impl Fn(u8) -> Vec<u8>) -> String {
    let mut word = [0u8; 32];
    for value in 0..=255u8 {
        if parse_document(&variant(value)).is_ok() {
            word[31 - usize::from(value / 8)] |= 1 << (value % 8);
        }
    }
    let hex: String = word.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("\"0x{hex}\"")
}

fn verdicts_json() -> String {
    let mut documents = Vec::new();
    for name in DOCUMENTS {
        let document = real_document(name).bytes;
        let positions = structural_positions(&document);
        let mut deleted = Vec::new();
        let mut inserted = Vec::new();
        let mut replaced = Vec::new();
        for &position in &positions {
            let mut shorter = document.clone();
            shorter.remove(position);
            deleted.push(if parse_document(&shorter).is_ok() {
                "1"
            } else {
                "0"
            });
            inserted.push(verdict_word(|value| {
                let mut longer = document.clone();
                longer.insert(position, value);
                longer
            }));
            replaced.push(verdict_word(|value| {
                let mut changed = document.clone();
                changed[position] = value;
                changed
            }));
        }
        let positions: Vec<String> = positions.iter().map(usize::to_string).collect();
        documents.push(format!(
            "  {{\n   \"deleted\": [{}],\n   \"inserted\": [{}],\n   \"name\": \"{name}\",\n   \"positions\": [{}],\n   \"replaced\": [{}]\n  }}",
            deleted.join(", "),
            inserted.join(", "),
            positions.join(", "),
            replaced.join(", ")
        ));
    }
    format!("{{\n \"documents\": [\n{}\n ]\n}}\n", documents.join(",\n"))
}

#[test]
fn solidity_parser_verdicts_file_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/test/data/nitro-document-verdicts.json"
    );
    let expected = verdicts_json();
    if std::env::var_os("NITRO_WRITE_VERDICTS").is_some() {
        std::fs::write(path, &expected).expect("write the verdicts file");
    }
    let actual = std::fs::read_to_string(path).expect("read the verdicts file");
    assert!(
        actual == expected,
        "{path} is stale: rerun with NITRO_WRITE_VERDICTS=1"
    );
}
