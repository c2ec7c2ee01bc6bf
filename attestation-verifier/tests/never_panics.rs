//! Arbitrary and mutated input never panics the parser or the verifier.

mod common;

use attestation_verifier::{Policy, TrustAnchor, UnixMillis, Verifier, parse_document};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
        let _ = parse_document(&bytes);
        let verifier = Verifier::new(TrustAnchor::aws_nitro_root_g1());
        let _ = verifier.verify(&bytes, &Policy::new(), UnixMillis(1_700_000_000_000));
    }

    #[test]
    fn cbor_shaped_bytes_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..600),
        head in prop_oneof![Just(vec![0x84u8]), Just(vec![0xd2, 0x84]), Just(vec![0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x59])],
    ) {
        let mut bytes = head;
        bytes.extend_from_slice(&tail);
        let _ = parse_document(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn mutated_real_documents_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let documents = common::real_documents();
        let document = &documents[edits[0].0.index(documents.len())];
        let mut bytes = document.bytes.clone();
        for (position, value) in &edits {
            let index = position.index(bytes.len());
            bytes[index] = *value;
        }
        let keep = bytes.len() - cut.index(bytes.len() / 10 + 1);
        bytes.truncate(keep);
        let verifier = Verifier::new(TrustAnchor::aws_nitro_root_g1());
        let _ = verifier.verify(&bytes, &Policy::new().allow_debug_mode(), UnixMillis(document.timestamp_ms()));
    }
}
