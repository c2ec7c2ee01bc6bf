//! The parser must never panic, and whatever it accepts must satisfy AWS's structural rules.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(document) = attestation_verifier::parse_document(data) {
        assert!(!document.module_id().is_empty());
        assert!(!document.cabundle().is_empty());
        assert!((1..=32).contains(&document.pcrs().len()));
        assert_eq!(document.signature().len(), 96);
    }
});
