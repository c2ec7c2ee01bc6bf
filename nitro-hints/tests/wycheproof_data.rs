//! Builds the Wycheproof ECDSA P-384/SHA-384 (P1363) vector file for the contracts' tests,
//! checks every vector's verdict through `check_hint`, and compares the file with the one
//! checked in at `contracts/test/data/` (`NITRO_HINTS_REGENERATE=1` rewrites it).
//!
//! Valid vectors carry the real hint. Invalid but well-formed vectors (96 bytes, `1 ≤ r, s < n`)
//! carry an adversarial hint: the real short decomposition of `u2` and a curve point with
//! `x = r` (or `r + n`), so that an on-chain verifier passes every check but the final equation
//! and must reject there. Malformed vectors carry no hint (`0x`).

use std::fmt::Write as _;
use std::path::PathBuf;

use nitro_hints::ecdsa::{
    COORDINATE_LEN, FLAG_RX_PLUS_N, FLAG_V_NEGATIVE, HINT_LEN, HintError, SIGNATURE_LEN,
    check_hint, ecdsa_hint,
};
use num_bigint::{BigInt, BigUint, Sign};
use sha2::{Digest, Sha384};
use wycheproof::TestResult;
use wycheproof::ecdsa::{TestName, TestSet};

const DATA_FILE: &str = "../contracts/test/data/wycheproof-ecdsa-p384-sha384-p1363.json";
const REGENERATE_ENV: &str = "NITRO_HINTS_REGENERATE";

/// P-384 parameters (FIPS 186-4 D.1.2.4), written out here independently of the crate.
const ORDER_HEX: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
const PRIME_HEX: &str = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff";
const B_HEX: &str = "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef";

fn big(hex: &str) -> BigUint {
    BigUint::parse_bytes(hex.as_bytes(), 16).expect("valid hex constant")
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + 2 * bytes.len());
    out.push_str("0x");
    for byte in bytes {
        write!(out, "{byte:02x}").expect("writing to a String");
    }
    out
}

fn fixed(x: &BigUint, len: usize) -> Vec<u8> {
    let bytes = x.to_bytes_be();
    assert!(bytes.len() <= len, "{x} does not fit {len} bytes");
    let mut out = vec![0u8; len - bytes.len()];
    out.extend_from_slice(&bytes);
    out
}

/// `y` with `y² = x³ − 3x + b (mod p)`, if `x < p` is the x-coordinate of a curve point.
fn curve_y(x: &BigUint) -> Option<BigUint> {
    let p = big(PRIME_HEX);
    if x >= &p {
        return None;
    }
    let rhs = (x.modpow(&BigUint::from(3u8), &p) + &p * 3u8 - (x * 3u8) % &p + big(B_HEX)) % &p;
    // p ≡ 3 (mod 4): the candidate root is rhs^((p+1)/4).
    let y = rhs.modpow(&((&p + 1u8) >> 2), &p);
    (&y * &y % &p == rhs).then_some(y)
}

/// A hint for a well-formed signature that does not verify: every check before the final
/// equation passes (short pair for the real `u2`, `R` on the curve with `R.x ∈ {r, r + n}`)
/// when such a point exists; otherwise `R.y = 0`, which is on no P-384 point.
fn adversarial_hint(signature: &[u8]) -> [u8; HINT_LEN] {
    let n = big(ORDER_HEX);
    let r = BigUint::from_bytes_be(&signature[..COORDINATE_LEN]);
    let s = BigUint::from_bytes_be(&signature[COORDINATE_LEN..]);
    let u2 = &r * s.modpow(&(&n - 2u8), &n) % &n;

    // Extended Euclid on (n, u2) down to the first remainder below 2^192.
    let bound = BigUint::from(1u8) << 192;
    let (mut r0, mut r1) = (n.clone(), u2);
    let (mut t0, mut t1) = (BigInt::from(0u8), BigInt::from(1u8));
    while r1 >= bound {
        let q = &r0 / &r1;
        let r2 = &r0 % &r1;
        let t2 = &t0 - BigInt::from(q) * &t1;
        (r0, r1) = (r1, r2);
        (t0, t1) = (t1, t2);
    }

    let mut flags = 0u8;
    let y = match curve_y(&r) {
        Some(y) => y,
        None => match curve_y(&(&r + &n)) {
            Some(y) => {
                flags |= FLAG_RX_PLUS_N;
                y
            }
            None => BigUint::from(0u8),
        },
    };
    if t1.sign() == Sign::Minus {
        flags |= FLAG_V_NEGATIVE;
    }
    let mut hint = [0u8; HINT_LEN];
    hint[..COORDINATE_LEN].copy_from_slice(&fixed(&y, COORDINATE_LEN));
    hint[COORDINATE_LEN] = flags;
    hint[COORDINATE_LEN + 1..COORDINATE_LEN + 25].copy_from_slice(&fixed(t1.magnitude(), 24));
    hint[COORDINATE_LEN + 25..].copy_from_slice(&fixed(&r1, 24));
    hint
}

/// One line of the data file; fields in alphabetical order, as forge's struct decoding needs.
struct Vector {
    digest: [u8; 48],
    expected: bool,
    hint: Vec<u8>,
    msg: Vec<u8>,
    public_key: Vec<u8>,
    signature: Vec<u8>,
    tc_id: usize,
}

impl Vector {
    fn json(&self) -> String {
        format!(
            r#"{{"digest":"{}","expected":{},"hint":"{}","msg":"{}","publicKey":"{}","signature":"{}","tcId":{}}}"#,
            hex(&self.digest),
            self.expected,
            hex(&self.hint),
            hex(&self.msg),
            hex(&self.public_key),
            hex(&self.signature),
            self.tc_id
        )
    }
}

#[derive(Debug, Default)]
struct Counts {
    valid: usize,
    invalid_adversarial_hint: usize,
    invalid_no_hint: usize,
    rx_plus_n: usize,
}

fn build_vectors() -> (Vec<Vector>, Counts) {
    let set = TestSet::load(TestName::EcdsaSecp384r1Sha384P1363).expect("wycheproof data");
    let mut vectors = Vec::new();
    let mut counts = Counts::default();
    for group in &set.test_groups {
        let key: &[u8] = &group.key.key;
        assert_eq!(key.len(), 1 + 2 * COORDINATE_LEN, "uncompressed SEC1 key");
        let public_key = key[1..].to_vec();
        for test in &group.tests {
            let digest: [u8; 48] = Sha384::digest(&test.msg[..]).into();
            let signature = test.sig.to_vec();
            let hint_result = ecdsa_hint(&digest, &signature, &public_key);
            let (expected, hint) = match test.result {
                TestResult::Valid => {
                    let hint = hint_result.unwrap_or_else(|error| {
                        panic!("tcId {}: valid vector refused: {error}", test.tc_id)
                    });
                    assert!(
                        check_hint(&digest, &signature, &public_key, hint.as_bytes()),
                        "tcId {}: valid vector's hint rejected",
                        test.tc_id
                    );
                    // The other choice of R.x (r versus r + n) must not pass as well.
                    let mut other_x = *hint.as_bytes();
                    other_x[COORDINATE_LEN] ^= FLAG_RX_PLUS_N;
                    assert!(
                        !check_hint(&digest, &signature, &public_key, &other_x),
                        "tcId {}: hint passes with the R.x flag flipped",
                        test.tc_id
                    );
                    counts.valid += 1;
                    if hint.as_bytes()[COORDINATE_LEN] & FLAG_RX_PLUS_N != 0 {
                        counts.rx_plus_n += 1;
                    }
                    (true, hint.as_bytes().to_vec())
                }
                TestResult::Invalid => match hint_result {
                    Ok(_) => panic!("tcId {}: invalid vector got a hint", test.tc_id),
                    Err(HintError::SignatureInvalid) => {
                        let hint = adversarial_hint(&signature);
                        assert!(
                            !check_hint(&digest, &signature, &public_key, &hint),
                            "tcId {}: invalid vector passed with the adversarial hint",
                            test.tc_id
                        );
                        counts.invalid_adversarial_hint += 1;
                        (false, hint.to_vec())
                    }
                    Err(
                        HintError::SignatureLength(_)
                        | HintError::ROutOfRange
                        | HintError::SOutOfRange,
                    ) => {
                        assert!(
                            !check_hint(&digest, &signature, &public_key, &[]),
                            "tcId {}: malformed vector passed without a hint",
                            test.tc_id
                        );
                        counts.invalid_no_hint += 1;
                        (false, Vec::new())
                    }
                    Err(error) => panic!("tcId {}: unexpected refusal: {error}", test.tc_id),
                },
                // None in this set; a new version with some needs a decision, not a guess.
                TestResult::Acceptable => {
                    panic!(
                        "tcId {}: 'acceptable' vector: decide its verdict",
                        test.tc_id
                    )
                }
            };
            vectors.push(Vector {
                digest,
                expected,
                hint,
                msg: test.msg.to_vec(),
                public_key: public_key.clone(),
                signature,
                tc_id: test.tc_id,
            });
        }
    }
    vectors.sort_by_key(|vector| vector.tc_id);
    (vectors, counts)
}

fn render(vectors: &[Vector]) -> String {
    let lines: Vec<String> = vectors.iter().map(Vector::json).collect();
    format!("{{\"vectors\":[\n{}\n]}}\n", lines.join(",\n"))
}

#[test]
fn wycheproof_vectors_give_expected_verdicts_and_match_data_file() {
    let (vectors, counts) = build_vectors();
    println!("{counts:?}");
    assert_eq!(
        vectors.len(),
        counts.valid + counts.invalid_adversarial_hint + counts.invalid_no_hint
    );
    // The set must exercise every path of the on-chain check.
    assert!(counts.valid > 0 && counts.invalid_adversarial_hint > 0 && counts.invalid_no_hint > 0);
    assert!(counts.rx_plus_n > 0, "no valid vector with R.x = r + n");
    assert!(
        vectors
            .iter()
            .all(|v| v.signature.len() == SIGNATURE_LEN || v.hint.is_empty())
    );

    let rendered = render(&vectors);
    let parsed: serde_json::Value = serde_json::from_str(&rendered).expect("rendered JSON parses");
    assert_eq!(
        parsed["vectors"].as_array().map(Vec::len),
        Some(vectors.len())
    );

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DATA_FILE);
    if std::env::var_os(REGENERATE_ENV).is_some_and(|value| value == "1") {
        std::fs::write(&path, &rendered).expect("write the data file");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == rendered,
        "{} is missing or stale; regenerate it with {REGENERATE_ENV}=1 cargo test -p nitro-hints --test wycheproof_data",
        path.display()
    );
}
