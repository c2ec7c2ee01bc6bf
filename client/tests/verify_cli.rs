//! The real `attest` binary on the real documents.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;

fn vectors_dir() -> PathBuf {
    let dir = std::env::var_os("NITRO_VECTORS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/nitro"),
        PathBuf::from,
    );
    assert!(
        dir.join("marlin_aws_2024-12-13.cbor").is_file(),
        "real Nitro attestation documents not found at {}: put the shared vectors in \
         shared/vectors/nitro/ beside the repository checkout, or set NITRO_VECTORS_DIR",
        dir.display()
    );
    dir
}

fn document(name: &str) -> PathBuf {
    vectors_dir().join(format!("{name}.cbor"))
}

fn attest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(args)
        .output()
        .expect("run attest")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

const NON_DEBUG: [&str; 5] = [
    "evervault_beta_valid_2022-10-13",
    "evervault_tls_nondebug_2023-01-18",
    "marlin_aws_2024-12-13",
    "marlin_aws_pcr16_2025-04-29",
    "marlin_verifier_2024-08-07",
];
const DEBUG: [&str; 3] = [
    "evervault_beta_debug_2022-10-12",
    "evervault_ga_2023-09-18",
    "evervault_tls_debug_2023-01-18",
];

#[test]
fn real_documents_are_valid_at_their_own_time() {
    for name in NON_DEBUG {
        let file = document(name);
        let output = attest(&["verify", path(&file), "--at", "doc"]);
        let stdout = text(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {stdout}{}",
            text(&output.stderr)
        );
        assert!(stdout.contains("VALID attestation document"), "{stdout}");
        assert!(stdout.contains("module_id:"));
        assert!(stdout.contains("PCR0"));
        assert!(stdout.contains("AWS Nitro Enclaves Root G1"));
        assert!(stdout.contains("leaf: "), "{stdout}");
    }
}

#[test]
fn real_documents_are_expired_today() {
    for name in NON_DEBUG.iter().chain(DEBUG.iter()) {
        let file = document(name);
        let output = attest(&["verify", path(&file), "--allow-debug"]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("CertificateExpired"), "{stderr}");
        assert!(stderr.contains("expired at"), "{stderr}");
        assert!(stderr.contains("CN="), "names the certificate: {stderr}");
    }
}

#[test]
fn debug_documents_need_allow_debug() {
    for name in DEBUG {
        let file = document(name);
        let refused = attest(&["verify", path(&file), "--at", "doc"]);
        assert_eq!(refused.status.code(), Some(1), "{name}");
        assert!(text(&refused.stderr).contains("DebugModeRejected"));
        let allowed = attest(&["verify", path(&file), "--at", "doc", "--allow-debug"]);
        assert_eq!(
            allowed.status.code(),
            Some(0),
            "{name}: {}",
            text(&allowed.stderr)
        );
        assert!(text(&allowed.stdout).contains("debug mode:  YES"));
    }
}

#[test]
fn usage_errors_exit_2() {
    let file = document("marlin_aws_2024-12-13");
    let cases: [&[&str]; 6] = [
        &["verify"],
        &["verify", path(&file), "--pcr", "zz"],
        &["verify", path(&file), "--pcr", "40=00"],
        &["verify", path(&file), "--at", "yesterday"],
        &["verify", "/nonexistent/document.cbor"],
        &["verify", path(&file), "--root", "/nonexistent/root.pem"],
    ];
    for args in cases {
        let output = attest(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    assert_eq!(attest(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn base64_and_hex_input_are_detected() {
    let raw = std::fs::read(document("marlin_aws_pcr16_2025-04-29")).unwrap();
    let dir = std::env::temp_dir().join(format!("attest-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let encoded = [
        (
            "b64",
            base64::engine::general_purpose::STANDARD.encode(&raw),
        ),
        ("hex", format!("{}\n", hex::encode(&raw))),
    ];
    for (extension, content) in encoded {
        let file = dir.join(format!("document.{extension}"));
        std::fs::write(&file, content).unwrap();
        let output = attest(&["verify", path(&file), "--at", "doc"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{extension}: {}",
            text(&output.stderr)
        );
    }
    let garbage = dir.join("garbage.txt");
    std::fs::write(&garbage, "this is not a document!").unwrap();
    let output = attest(&["verify", path(&garbage)]);
    assert_eq!(output.status.code(), Some(1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_output_parses() {
    let file = document("marlin_aws_pcr16_2025-04-29");
    let output = attest(&["verify", path(&file), "--at", "doc", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(value["valid"], true);
    assert_eq!(
        value["module_id"],
        "i-07859a25773d39fcc-enc01968119042c6454"
    );
    assert_eq!(value["timestamp_ms"], 1_745_922_759_691_u64);
    assert_eq!(value["user_data"], "");
    assert_eq!(value["nonce"], serde_json::Value::Null);
    assert_eq!(value["pcrs"].as_object().unwrap().len(), 17);
    assert_eq!(value["chain"].as_array().unwrap().len(), 5);
    assert_eq!(value["root_is_aws_nitro_root_g1"], true);

    let failed = attest(&["verify", path(&file), "--json"]);
    assert_eq!(failed.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&failed.stdout).expect("JSON");
    assert_eq!(value["valid"], false);
    assert_eq!(value["error"]["check"], "CertificateExpired");
}

#[test]
fn policy_flags_are_applied() {
    let file = document("evervault_tls_nondebug_2023-01-18");
    let facts: serde_json::Value = serde_json::from_slice(
        &std::fs::read(vectors_dir().join("evervault_tls_nondebug_2023-01-18.json")).unwrap(),
    )
    .unwrap();
    let pcr0 = facts["decoded"]["pcrs"]["0"].as_str().unwrap();
    let nonce = facts["decoded"]["nonce"].as_str().unwrap();
    let pcr_arg = format!("0={pcr0}");
    let ok = attest(&[
        "verify",
        path(&file),
        "--at",
        "doc",
        "--pcr",
        &pcr_arg,
        "--nonce",
        nonce,
        "--max-age",
        "5",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));

    let wrong_pcr = format!("0={}", "11".repeat(48));
    let mismatch = attest(&["verify", path(&file), "--at", "doc", "--pcr", &wrong_pcr]);
    assert_eq!(mismatch.status.code(), Some(1));
    assert!(text(&mismatch.stderr).contains("PcrMismatch"));

    let wrong_nonce = attest(&["verify", path(&file), "--at", "doc", "--nonce", "00"]);
    assert_eq!(wrong_nonce.status.code(), Some(1));
    assert!(text(&wrong_nonce.stderr).contains("NonceMismatch"));

    // One hour after the document: within the leaf's three hours, older than 60 s.
    let later = (facts["decoded"]["timestamp_ms"].as_u64().unwrap() + 3_600_000).to_string();
    let too_old = attest(&["verify", path(&file), "--at", &later, "--max-age", "60"]);
    assert_eq!(too_old.status.code(), Some(1));
    assert!(text(&too_old.stderr).contains("TooOld"));

    // Another root given explicitly: the AWS document no longer chains to it.
    let other_root = std::env::temp_dir().join(format!("attest-root-{}.pem", std::process::id()));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    std::fs::write(&other_root, params.self_signed(&key).unwrap().pem()).unwrap();
    let untrusted = attest(&[
        "verify",
        path(&file),
        "--at",
        "doc",
        "--root",
        path(&other_root),
    ]);
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(text(&untrusted.stderr).contains("UntrustedRoot"));
    // The AWS root given as a PEM file behaves like the default.
    let aws_pem = vectors_dir().join("aws_nitro_root_g1.pem");
    let explicit = attest(&[
        "verify",
        path(&file),
        "--at",
        "doc",
        "--root",
        path(&aws_pem),
    ]);
    assert_eq!(explicit.status.code(), Some(0));
    std::fs::remove_file(&other_root).unwrap();
}
