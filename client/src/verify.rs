//! `attest verify`: check an attestation document and print what it proves.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use attestation_verifier::{
    CertificateSummary, ChainPosition, Policy, TrustAnchor, UnixMillis, VerifiedAttestation,
    Verifier, VerifyError, parse_document,
};
use base64::Engine;
use clap::Args;
use serde_json::{Value, json};

/// Exit status for a document that fails a check.
const EXIT_INVALID: u8 = 1;
/// Exit status for usage errors (clap uses the same for argument errors).
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// File holding the document: raw CBOR (COSE_Sign1), base64 or hex (detected).
    file: PathBuf,
    /// Trust anchor: `aws` (the pinned AWS Nitro Enclaves Root G1) or a PEM file holding
    /// another root, e.g. the development attester's.
    #[arg(long, default_value = "aws", value_name = "aws|PEM")]
    root: String,
    /// Verification time: `now`, `doc` (the document's own timestamp, for archived
    /// documents) or milliseconds since the Unix epoch.
    #[arg(long, default_value = "now", value_name = "now|doc|UNIX_MS", value_parser = parse_at)]
    at: At,
    /// Expected PCR value, `N=hex` (repeatable; any subset of PCRs).
    #[arg(long = "pcr", value_name = "N=HEX", value_parser = parse_pcr)]
    pcrs: Vec<(u8, Vec<u8>)>,
    /// Expected nonce, hex.
    #[arg(long, value_name = "HEX", value_parser = parse_hex)]
    nonce: Option<HexBytes>,
    /// Expected user_data, hex.
    #[arg(long = "user-data", value_name = "HEX", value_parser = parse_hex)]
    user_data: Option<HexBytes>,
    /// Maximum age of the document at the verification time, in seconds.
    #[arg(long = "max-age", value_name = "SECS")]
    max_age: Option<u64>,
    /// Accept debug-mode enclaves (PCR0, 1 and 2 all zero). Development only.
    #[arg(long = "allow-debug")]
    allow_debug: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// When to verify at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum At {
    Now,
    DocumentTimestamp,
    Pinned(UnixMillis),
}

fn parse_at(value: &str) -> Result<At, String> {
    match value {
        "now" => Ok(At::Now),
        "doc" => Ok(At::DocumentTimestamp),
        millis => millis
            .parse::<u64>()
            .map(|millis| At::Pinned(UnixMillis(millis)))
            .map_err(|_| {
                format!("expected now, doc or milliseconds since the epoch, got {millis:?}")
            }),
    }
}

/// Bytes given as hex on the command line (a newtype so that clap treats it as one value).
#[derive(Debug, Clone)]
pub(crate) struct HexBytes(Vec<u8>);

fn parse_hex(value: &str) -> Result<HexBytes, String> {
    let value = value.strip_prefix("0x").unwrap_or(value);
    hex::decode(value)
        .map(HexBytes)
        .map_err(|error| format!("invalid hex: {error}"))
}

fn parse_pcr(value: &str) -> Result<(u8, Vec<u8>), String> {
    let (index, hex_value) = value
        .split_once('=')
        .ok_or_else(|| format!("expected N=HEX, got {value:?}"))?;
    let index: u8 = index
        .parse()
        .ok()
        .filter(|index| *index <= 31)
        .ok_or_else(|| format!("PCR index must be 0..=31, got {index:?}"))?;
    let HexBytes(bytes) = parse_hex(hex_value)?;
    if !matches!(bytes.len(), 32 | 48 | 64) {
        return Err(format!("a PCR is 32, 48 or 64 bytes, got {}", bytes.len()));
    }
    Ok((index, bytes))
}

/// Raw CBOR, or text holding hex or base64 (standard or URL-safe, padded or not).
fn decode_input(input: &[u8]) -> Result<Vec<u8>, String> {
    // A COSE_Sign1 starts with array(4), possibly under tag 18; neither byte is printable
    // ASCII, so text encodings cannot be mistaken for it.
    if matches!(input.first(), Some(0x84 | 0xd2)) {
        return Ok(input.to_vec());
    }
    let text = std::str::from_utf8(input)
        .map_err(|_| "input is neither CBOR nor text (hex or base64)".to_owned())?;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err("input is empty".to_owned());
    }
    let hex_body = compact.strip_prefix("0x").unwrap_or(&compact);
    if hex_body.len().is_multiple_of(2) && hex_body.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return hex::decode(hex_body).map_err(|error| format!("invalid hex: {error}"));
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|engine| engine.decode(&compact).ok())
        .ok_or_else(|| "input is neither CBOR, hex nor base64".to_owned())
}

pub(crate) fn run(args: &VerifyArgs) -> ExitCode {
    let input = match std::fs::read(&args.file) {
        Ok(input) => input,
        Err(error) => return usage_error(&format!("cannot read {}: {error}", args.file.display())),
    };
    let anchor = match load_anchor(&args.root) {
        Ok(anchor) => anchor,
        Err(message) => return usage_error(&message),
    };
    let document = match decode_input(&input) {
        Ok(document) => document,
        Err(message) => return report_invalid(args, "Encoding", &message),
    };
    // Parse first so that `--at doc` can read the timestamp; nothing is trusted before the
    // full verification below.
    let parsed = match parse_document(&document) {
        Ok(parsed) => parsed,
        Err(error) => {
            let error = VerifyError::from(error);
            return report_invalid(args, &error_kind(&error), &error.to_string());
        }
    };
    let at = match args.at {
        At::Now => UnixMillis::now(),
        At::DocumentTimestamp => parsed.timestamp(),
        At::Pinned(at) => at,
    };
    let policy = build_policy(args);
    let verifier = Verifier::new(anchor);
    match verifier.verify_parsed(&parsed, &policy, at) {
        Ok(verified) => {
            if args.json {
                println!("{}", verified_json(&verified, &verifier));
            } else {
                print_summary(&verified, &verifier);
            }
            ExitCode::SUCCESS
        }
        Err(error) => report_invalid(args, &error_kind(&error), &error.to_string()),
    }
}

fn load_anchor(root: &str) -> Result<TrustAnchor, String> {
    if root == "aws" {
        return Ok(TrustAnchor::aws_nitro_root_g1());
    }
    let pem = std::fs::read(root).map_err(|error| format!("cannot read root {root}: {error}"))?;
    TrustAnchor::from_pem_explicit(&pem).map_err(|error| format!("root {root}: {error}"))
}

fn build_policy(args: &VerifyArgs) -> Policy {
    let mut policy = Policy::new();
    for (index, value) in &args.pcrs {
        policy = policy.expect_pcr(*index, value.clone());
    }
    if let Some(nonce) = &args.nonce {
        policy = policy.expect_nonce(nonce.0.clone());
    }
    if let Some(user_data) = &args.user_data {
        policy = policy.expect_user_data(user_data.0.clone());
    }
    if let Some(seconds) = args.max_age {
        policy = policy.max_age(Duration::from_secs(seconds));
    }
    if args.allow_debug {
        policy = policy.allow_debug_mode();
    }
    policy
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn report_invalid(args: &VerifyArgs, kind: &str, message: &str) -> ExitCode {
    if args.json {
        println!(
            "{}",
            json!({ "valid": false, "error": { "check": kind, "message": message } })
        );
    } else {
        eprintln!("INVALID ({kind}): {message}");
    }
    ExitCode::from(EXIT_INVALID)
}

/// The failed check's name: the error variant (`Document.Truncated` for structural ones).
fn error_kind(error: &VerifyError) -> String {
    fn variant_name(debug: &str) -> &str {
        debug.split(['(', '{', ' ']).next().unwrap_or(debug)
    }
    match error {
        VerifyError::Document(inner) => {
            format!("Document.{}", variant_name(&format!("{inner:?}")))
        }
        other => variant_name(&format!("{other:?}")).to_owned(),
    }
}

fn optional_hex(value: Option<&[u8]>) -> Value {
    value.map_or(Value::Null, |bytes| Value::String(hex::encode(bytes)))
}

fn position_name(position: ChainPosition) -> String {
    position.to_string()
}

fn certificate_json(certificate: &CertificateSummary) -> Value {
    json!({
        "position": position_name(certificate.position),
        "subject": certificate.subject,
        "not_before": certificate.not_before.to_string(),
        "not_after": certificate.not_after.to_string(),
        "sha256": hex::encode(certificate.sha256),
    })
}

fn verified_json(verified: &VerifiedAttestation, verifier: &Verifier) -> Value {
    let pcrs: serde_json::Map<String, Value> = verified
        .pcrs()
        .iter()
        .map(|(index, value)| (index.to_string(), Value::String(hex::encode(value))))
        .collect();
    json!({
        "valid": true,
        "module_id": verified.module_id(),
        "timestamp_ms": verified.timestamp().as_millis(),
        "timestamp": verified.timestamp().to_string(),
        "verified_at": verified.verified_at().to_string(),
        "root_sha256": verifier.anchor().sha256_hex(),
        "root_is_aws_nitro_root_g1": verifier.anchor().is_aws_nitro_root_g1(),
        "debug_mode": verified.is_debug_mode(),
        "pcrs": pcrs,
        "public_key": optional_hex(verified.public_key()),
        "user_data": optional_hex(verified.user_data()),
        "nonce": optional_hex(verified.nonce()),
        "chain": verified.chain().iter().map(certificate_json).collect::<Vec<_>>(),
    })
}

fn describe_optional(value: Option<&[u8]>) -> String {
    match value {
        None => "(absent)".to_owned(),
        Some([]) => "(present, empty)".to_owned(),
        Some(bytes) => hex::encode(bytes),
    }
}

fn print_summary(verified: &VerifiedAttestation, verifier: &Verifier) {
    let anchor = verifier.anchor();
    let root_name = if anchor.is_aws_nitro_root_g1() {
        "AWS Nitro Enclaves Root G1"
    } else {
        "explicitly trusted root (NOT the AWS root)"
    };
    println!("VALID attestation document");
    println!("  module_id:   {}", verified.module_id());
    println!(
        "  timestamp:   {} ({} ms)",
        verified.timestamp(),
        verified.timestamp().as_millis()
    );
    println!("  verified at: {}", verified.verified_at());
    println!(
        "  root:        {root_name}, SHA-256 {}",
        anchor.sha256_hex()
    );
    if verified.is_debug_mode() {
        println!("  debug mode:  YES (PCR0-2 are zero; accepted because of --allow-debug)");
    } else {
        println!("  debug mode:  no");
    }
    println!("  PCRs:");
    for (index, value) in verified.pcrs() {
        println!("    PCR{index:<2} {}", hex::encode(value));
    }
    println!(
        "  public_key:  {}",
        describe_optional(verified.public_key())
    );
    println!("  user_data:   {}", describe_optional(verified.user_data()));
    println!("  nonce:       {}", describe_optional(verified.nonce()));
    println!("  certificate chain (root first):");
    for certificate in verified.chain() {
        println!(
            "    {}: {}",
            position_name(certificate.position),
            certificate.subject
        );
        println!(
            "      valid {} .. {}",
            certificate.not_before, certificate.not_after
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attestation_verifier::DocumentError;

    #[test]
    fn detects_encodings() {
        assert_eq!(decode_input(&[0x84, 0x40]).unwrap(), vec![0x84, 0x40]);
        assert_eq!(decode_input(b"8440\n").unwrap(), vec![0x84, 0x40]);
        assert_eq!(decode_input(b"hEA=").unwrap(), vec![0x84, 0x40]);
        assert_eq!(decode_input(b"hEA").unwrap(), vec![0x84, 0x40]);
        assert!(decode_input(b"   ").is_err());
        assert!(decode_input(b"not base64 !!").is_err());
    }

    #[test]
    fn parses_arguments() {
        assert!(matches!(parse_at("doc"), Ok(At::DocumentTimestamp)));
        assert!(matches!(parse_at("12"), Ok(At::Pinned(UnixMillis(12)))));
        assert!(parse_at("yesterday").is_err());
        assert_eq!(parse_pcr(&format!("3={}", "00".repeat(48))).unwrap().0, 3);
        assert!(parse_pcr("32=00").is_err());
        assert!(parse_pcr(&format!("1={}", "00".repeat(47))).is_err());
        assert!(parse_hex("zz").is_err());
    }

    #[test]
    fn names_failed_checks() {
        assert_eq!(
            error_kind(&VerifyError::SignatureInvalid),
            "SignatureInvalid"
        );
        assert_eq!(
            error_kind(&VerifyError::Document(DocumentError::Truncated {
                offset: 3
            })),
            "Document.Truncated"
        );
    }
}
