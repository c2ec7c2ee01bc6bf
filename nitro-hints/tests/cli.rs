//! The `nitro-hints` binary: hints for a real document as JSON, clear errors and exit codes.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

mod common;

fn document_path() -> PathBuf {
    common::vectors_dir().join("marlin_aws_2024-12-13.cbor")
}

#[test]
fn prints_the_hints_of_a_real_document_as_json() {
    let output = Command::new(env!("CARGO_BIN_EXE_nitro-hints"))
        .arg(document_path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let hints = json["hints"].as_array().unwrap();
    let signed: Vec<&str> = json["signed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value.as_str().unwrap())
        .collect();
    assert_eq!(
        signed,
        [
            "cabundle[1]",
            "cabundle[2]",
            "cabundle[3]",
            "leaf",
            "document"
        ]
    );
    let bytes = std::fs::read(document_path()).unwrap();
    let expected = nitro_hints::document::document_hints(&bytes).unwrap();
    for (hint, expected) in hints.iter().zip(&expected) {
        assert_eq!(
            hint.as_str().unwrap(),
            format!("0x{}", hex::encode(expected.hint.as_bytes()))
        );
    }
}

#[test]
fn reads_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nitro-hints"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(document_path()).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"document\""));
}

#[test]
fn bad_input_gets_a_message_and_a_non_zero_exit() {
    let usage = Command::new(env!("CARGO_BIN_EXE_nitro-hints"))
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage"));

    let missing = Command::new(env!("CARGO_BIN_EXE_nitro-hints"))
        .arg("/nonexistent/doc.cbor")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));

    // A real document with its signature changed: no hints (it would only fail on-chain).
    let mut bytes = std::fs::read(document_path()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered =
        std::env::temp_dir().join(format!("nitro-hints-cli-{}.cbor", std::process::id()));
    std::fs::write(&tampered, &bytes).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_nitro-hints"))
        .arg(&tampered)
        .output()
        .unwrap();
    std::fs::remove_file(&tampered).unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Document"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(refused.stdout.is_empty());
}
