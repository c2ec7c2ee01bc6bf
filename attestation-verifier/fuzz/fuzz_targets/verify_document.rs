//! The full verifier must never panic on any input, at any verification time.
#![no_main]

use attestation_verifier::{Policy, TrustAnchor, UnixMillis, Verifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let verifier = Verifier::new(TrustAnchor::aws_nitro_root_g1());
    // A time when the real documents' chains were valid, so that mutated real documents used
    // as seeds reach the signature checks.
    let _ = verifier.verify(
        data,
        &Policy::new().allow_debug_mode(),
        UnixMillis(1_734_075_478_960),
    );
});
