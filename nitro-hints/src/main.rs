//! `nitro-hints DOCUMENT.cbor`: prints, as JSON, the hints `NitroRegistrar` needs to verify the
//! attestation document on-chain (one per signature below the root, in the contract's order).
//!
//! ```text
//! nitro-hints doc.cbor            # {"hints": ["0x…", …], "signed": ["cabundle[1]", …, "leaf", "document"]}
//! nitro-hints - < doc.cbor        # the document from standard input
//! ```
#![forbid(unsafe_code)]

use std::io::Read as _;
use std::process::ExitCode;

use nitro_hints::document::{Signed, document_hints};

const USAGE: &str = "usage: nitro-hints DOCUMENT.cbor   (or - for standard input)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if path == "-h" || path == "--help" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let document = if path == "-" {
        let mut buffer = Vec::new();
        std::io::stdin().read_to_end(&mut buffer).map(|_| buffer)
    } else {
        std::fs::read(path)
    };
    let document = match document {
        Ok(document) => document,
        Err(error) => {
            eprintln!("error: cannot read {path}: {error}");
            return ExitCode::FAILURE;
        }
    };
    match document_hints(&document) {
        Ok(hints) => {
            let quoted = |items: Vec<String>| items.join(", ");
            let hex_hints = hints
                .iter()
                .map(|hint| format!("\"0x{}\"", hex::encode(hint.hint.as_bytes())))
                .collect();
            let signed = hints
                .iter()
                .map(|hint| match hint.signed {
                    Signed::CaBundle(index) => format!("\"cabundle[{index}]\""),
                    Signed::Leaf => "\"leaf\"".to_owned(),
                    Signed::Document => "\"document\"".to_owned(),
                })
                .collect();
            println!(
                "{{\"hints\": [{}], \"signed\": [{}]}}",
                quoted(hex_hints),
                quoted(signed)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {path}: {error}");
            ExitCode::FAILURE
        }
    }
}
