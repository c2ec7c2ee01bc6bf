//! P-384 ECDSA verification hints.
//!
//! The contracts verify an ES384 signature `(r, s)` over a digest `e` with public key `Q` without
//! a P-384 precompile. Plain verification computes `R = u1·G + u2·Q` (`u1 = e/s`, `u2 = r/s`
//! mod `n`) with two 384-bit scalar multiplications. The hint lets the contract check instead
//!
//! ```text
//! v·R − z·Q − w1·G − w2·G' = O        (w = v·u1 mod n = w1 + w2·2^192, G' = 2^192·G)
//! ```
//!
//! where `R` (its `y`, and whether `R.x = r` or `r + n`) and a short pair `(v, z)` with
//! `z ≡ v·u2 (mod n)` and `|v|, |z| < 2^192` come from the hint: four 192-bit scalars, half the
//! doublings. Because `n` is prime and `0 < |v| < n`, the equation implies `R = u1·G + u2·Q`, so a
//! wrong hint can only make the check fail.
//!
//! Hint layout (97 bytes, all integers big-endian):
//!
//! | bytes      | content                                                                   |
//! |------------|---------------------------------------------------------------------------|
//! | `[0..48)`  | `R.y`                                                                     |
//! | `[48]`     | flags: [`FLAG_RX_PLUS_N`], [`FLAG_V_NEGATIVE`]; other bits 0 (z ≥ 0)    |
//! | `[49..73)` | `|v|`                                                                     |
//! | `[73..97)` | `|z|`                                                                     |

use std::sync::OnceLock;

use num_bigint::{BigInt, BigUint, Sign};
use p384::elliptic_curve::PrimeField;
use p384::elliptic_curve::group::Group;
use p384::elliptic_curve::ops::Reduce;
use p384::elliptic_curve::point::AffineCoordinates;
use p384::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p384::{AffinePoint, EncodedPoint, FieldBytes, ProjectivePoint, Scalar, U384};

/// Length of an [`EcdsaHint`] in bytes.
pub const HINT_LEN: usize = 97;
/// Length of a P-384 digest, coordinate or scalar in bytes.
pub const COORDINATE_LEN: usize = 48;
/// Length of a P1363 signature `r || s` in bytes.
pub const SIGNATURE_LEN: usize = 2 * COORDINATE_LEN;
/// Length of a public key `x || y` (no SEC1 `0x04` prefix) in bytes.
pub const PUBLIC_KEY_LEN: usize = 2 * COORDINATE_LEN;

/// Flag bit: `R.x = r + n` (otherwise `R.x = r`).
pub const FLAG_RX_PLUS_N: u8 = 0x01;
/// Flag bit: `v` is negative.
pub const FLAG_V_NEGATIVE: u8 = 0x02;
/// Flag bit 2 (`0x04`) once meant "z is negative". The decomposition always gives `z > 0`, and
/// allowing a negative z made `(−v, −z)` a second valid hint for the same signature, so it is
/// reserved: with it set (or any other unknown bit) a hint fails. One hint per signature.
const KNOWN_FLAGS: u8 = FLAG_RX_PLUS_N | FLAG_V_NEGATIVE;

/// Bits in each half scalar (`|v|`, `|z|`, `w1`, `w2`).
const HALF_BITS: u64 = 192;
const HALF_LEN: usize = 24;
const Y_RANGE: std::ops::Range<usize> = 0..COORDINATE_LEN;
const FLAGS_AT: usize = COORDINATE_LEN;
const V_RANGE: std::ops::Range<usize> = FLAGS_AT + 1..FLAGS_AT + 1 + HALF_LEN;
const Z_RANGE: std::ops::Range<usize> = V_RANGE.end..HINT_LEN;

/// The P-384 group order `n`, big-endian.
const ORDER_HEX: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
/// The P-384 field prime `p`, big-endian.
const PRIME_HEX: &str = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff";

/// Why no hint could be computed for a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HintError {
    /// The signature is not 96 bytes `r || s`.
    #[error("signature is {0} bytes, expected {SIGNATURE_LEN} (r || s)")]
    SignatureLength(usize),
    /// `r` is zero or not below the group order.
    #[error("signature r is zero or not below the P-384 group order")]
    ROutOfRange,
    /// `s` is zero or not below the group order.
    #[error("signature s is zero or not below the P-384 group order")]
    SOutOfRange,
    /// The public key is neither 96 bytes `x || y` nor 97 bytes `0x04 || x || y`.
    #[error("public key is malformed: {0} bytes, expected 96 (x || y) or 97 (0x04 || x || y)")]
    PublicKeyMalformed(usize),
    /// A public key coordinate is not below `p`, or the point is not on P-384.
    #[error("public key is not a point on P-384")]
    PublicKeyNotOnCurve,
    /// The signature does not verify (`u1·G + u2·Q` is the identity or its `x mod n ≠ r`).
    #[error("signature does not verify for this digest and public key")]
    SignatureInvalid,
    /// The computed hint failed its own check; a bug in this crate, never expected.
    #[error("computed hint failed its self-check (bug)")]
    SelfCheckFailed,
}

/// A 97-byte hint for verifying one P-384 ECDSA signature on-chain (layout in the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdsaHint([u8; HINT_LEN]);

impl EcdsaHint {
    /// The hint's bytes, as passed to the contract.
    pub fn as_bytes(&self) -> &[u8; HINT_LEN] {
        &self.0
    }
}

fn order() -> &'static BigUint {
    static ORDER: OnceLock<BigUint> = OnceLock::new();
    ORDER.get_or_init(|| BigUint::parse_bytes(ORDER_HEX.as_bytes(), 16).expect("constant"))
}

fn prime() -> &'static BigUint {
    static PRIME: OnceLock<BigUint> = OnceLock::new();
    PRIME.get_or_init(|| BigUint::parse_bytes(PRIME_HEX.as_bytes(), 16).expect("constant"))
}

/// `G' = 2^192·G`, the constant second base point of the on-chain check.
fn shifted_generator() -> ProjectivePoint {
    let mut repr = FieldBytes::default();
    repr[COORDINATE_LEN - HALF_LEN - 1] = 1;
    let two_pow_192 = Option::<Scalar>::from(Scalar::from_repr(repr)).expect("2^192 < n");
    ProjectivePoint::GENERATOR * two_pow_192
}

/// A scalar `1 ≤ x < n` from 48 big-endian bytes, or `None`.
fn nonzero_scalar(bytes: &[u8]) -> Option<Scalar> {
    let scalar: Option<Scalar> = Scalar::from_repr(FieldBytes::clone_from_slice(bytes)).into();
    scalar.filter(|x| !bool::from(x.is_zero()))
}

/// The scalar of a 24-byte big-endian magnitude (always below `n`).
fn half_scalar(bytes: &[u8]) -> Scalar {
    let mut repr = FieldBytes::default();
    repr[COORDINATE_LEN - HALF_LEN..].copy_from_slice(bytes);
    Option::from(Scalar::from_repr(repr)).expect("2^192 < n")
}

fn to_biguint(scalar: &Scalar) -> BigUint {
    BigUint::from_bytes_be(&scalar.to_bytes())
}

/// Big-endian bytes of `x`, left-padded to `N` bytes, or `None` if `x` does not fit.
fn to_fixed<const N: usize>(x: &BigUint) -> Option<[u8; N]> {
    let bytes = x.to_bytes_be();
    let mut out = [0u8; N];
    let start = N.checked_sub(bytes.len())?;
    out[start..].copy_from_slice(&bytes);
    Some(out)
}

fn parse_public_key(public_key: &[u8]) -> Result<AffinePoint, HintError> {
    let coordinates = match public_key {
        [0x04, rest @ ..] if rest.len() == PUBLIC_KEY_LEN => rest,
        _ if public_key.len() == PUBLIC_KEY_LEN => public_key,
        _ => return Err(HintError::PublicKeyMalformed(public_key.len())),
    };
    let (x, y) = coordinates.split_at(COORDINATE_LEN);
    let encoded = EncodedPoint::from_affine_coordinates(
        FieldBytes::from_slice(x),
        FieldBytes::from_slice(y),
        false,
    );
    // Rejects coordinates ≥ p and points off the curve; the identity has no 96-byte form.
    Option::from(AffinePoint::from_encoded_point(&encoded)).ok_or(HintError::PublicKeyNotOnCurve)
}

/// `(r, s)` as nonzero scalars below `n`.
fn parse_signature(signature: &[u8]) -> Result<(Scalar, Scalar), HintError> {
    if signature.len() != SIGNATURE_LEN {
        return Err(HintError::SignatureLength(signature.len()));
    }
    let (r, s) = signature.split_at(COORDINATE_LEN);
    let r = nonzero_scalar(r).ok_or(HintError::ROutOfRange)?;
    let s = nonzero_scalar(s).ok_or(HintError::SOutOfRange)?;
    Ok((r, s))
}

/// `(u1, u2) = (e/s, r/s) mod n` with `e` = the digest reduced mod `n`.
fn verification_scalars(digest: &[u8; COORDINATE_LEN], r: &Scalar, s: &Scalar) -> (Scalar, Scalar) {
    let e = <Scalar as Reduce<U384>>::reduce_bytes(FieldBytes::from_slice(digest));
    let s_inverse: Scalar = Option::from(s.invert()).expect("s is nonzero");
    (e * s_inverse, *r * s_inverse)
}

/// A short pair `(v, z)` with `z ≡ v·u2 (mod n)`, `1 ≤ |v| < 2^192`, `1 ≤ z < 2^192`.
///
/// Runs the extended Euclidean algorithm on `(n, u2)`, keeping `r_i ≡ t_i·u2 (mod n)`, and stops
/// at the first remainder below `2^192`. The cofactors satisfy `|t_i| ≤ n / r_(i-1)` and the
/// previous remainder is at least `2^192`, so `|t_i| < 2^384 / 2^192`.
fn short_decomposition(u2: &BigUint) -> (BigInt, BigUint) {
    let bound = BigUint::from(1u8) << HALF_BITS;
    let (mut previous, mut current) = (order().clone(), u2.clone());
    let (mut previous_t, mut current_t) = (BigInt::from(0u8), BigInt::from(1u8));
    while current >= bound {
        let quotient = &previous / &current;
        let remainder = &previous - &quotient * &current;
        let next_t = &previous_t - BigInt::from(quotient) * &current_t;
        previous = std::mem::replace(&mut current, remainder);
        previous_t = std::mem::replace(&mut current_t, next_t);
    }
    (current_t, current)
}

/// Computes the hint for a P-384 ECDSA signature that verifies.
///
/// `digest` is the SHA-384 of the signed data, `signature` 96 bytes `r || s` (high-S accepted,
/// not normalised), `public_key` 96 bytes `x || y` or 97 bytes `0x04 || x || y`. Refuses
/// (with [`HintError::SignatureInvalid`]) a signature that does not verify: a hint for it could
/// only make the on-chain check fail.
pub fn ecdsa_hint(
    digest: &[u8; COORDINATE_LEN],
    signature: &[u8],
    public_key: &[u8],
) -> Result<EcdsaHint, HintError> {
    let (r, s) = parse_signature(signature)?;
    let q = parse_public_key(public_key)?;
    let (u1, u2) = verification_scalars(digest, &r, &s);
    let point = (ProjectivePoint::GENERATOR * u1 + ProjectivePoint::from(q) * u2).to_affine();
    if bool::from(point.is_identity()) {
        return Err(HintError::SignatureInvalid);
    }
    let x = BigUint::from_bytes_be(&point.x());
    let r_int = to_biguint(&r);
    let mut flags = 0u8;
    if x != r_int {
        // x < p < 2n, so x ≡ r (mod n) leaves only x = r + n.
        if x != &r_int + order() {
            return Err(HintError::SignatureInvalid);
        }
        flags |= FLAG_RX_PLUS_N;
    }
    let (v, z) = short_decomposition(&to_biguint(&u2));
    if v.sign() == Sign::Minus {
        flags |= FLAG_V_NEGATIVE;
    }
    let encoded = point.to_encoded_point(false);
    let y = encoded.y().ok_or(HintError::SignatureInvalid)?;
    let v_bytes = to_fixed::<HALF_LEN>(v.magnitude()).ok_or(HintError::SelfCheckFailed)?;
    let z_bytes = to_fixed::<HALF_LEN>(&z).ok_or(HintError::SelfCheckFailed)?;

    let mut hint = [0u8; HINT_LEN];
    hint[Y_RANGE].copy_from_slice(y);
    hint[FLAGS_AT] = flags;
    hint[V_RANGE].copy_from_slice(&v_bytes);
    hint[Z_RANGE].copy_from_slice(&z_bytes);
    if !check_hint(digest, signature, public_key, &hint) {
        return Err(HintError::SelfCheckFailed);
    }
    Ok(EcdsaHint(hint))
}

/// Checks a hint exactly as the contract does; `true` iff the signature verifies with it.
///
/// Checks: signature 96 bytes with `1 ≤ r, s < n`; public key on the curve; hint 97 bytes with
/// only known flag bits; `|v| ≥ 1` (`|v|, |z| < 2^192` by their width); `R = (r or r + n, y)`
/// with both coordinates below `p` and on the curve; `z ≡ v·u2 (mod n)`; and
/// `|v|·(±R) − |z|·(±Q) − w1·G − w2·G' = O`. Any malformed input gives `false`.
pub fn check_hint(
    digest: &[u8; COORDINATE_LEN],
    signature: &[u8],
    public_key: &[u8],
    hint: &[u8],
) -> bool {
    let Ok((r, s)) = parse_signature(signature) else {
        return false;
    };
    let Ok(q) = parse_public_key(public_key) else {
        return false;
    };
    let Ok(hint) = <&[u8; HINT_LEN]>::try_from(hint) else {
        return false;
    };
    let flags = hint[FLAGS_AT];
    if flags & !KNOWN_FLAGS != 0 {
        return false;
    }
    let v_magnitude = half_scalar(&hint[V_RANGE]);
    let z_magnitude = half_scalar(&hint[Z_RANGE]);
    if bool::from(v_magnitude.is_zero()) {
        return false;
    }

    // R.x is r or r + n; it must stay below p to be a field element.
    let mut x = to_biguint(&r);
    if flags & FLAG_RX_PLUS_N != 0 {
        x += order();
    }
    if &x >= prime() {
        return false;
    }
    let Some(x_bytes) = to_fixed::<COORDINATE_LEN>(&x) else {
        return false;
    };
    let encoded = EncodedPoint::from_affine_coordinates(
        FieldBytes::from_slice(&x_bytes),
        FieldBytes::from_slice(&hint[Y_RANGE]),
        false,
    );
    let Some(point) = Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&encoded)) else {
        return false;
    };

    let negate_if = |scalar: Scalar, flag: u8| if flags & flag != 0 { -scalar } else { scalar };
    let v = negate_if(v_magnitude, FLAG_V_NEGATIVE);
    let z = z_magnitude;
    let (u1, u2) = verification_scalars(digest, &r, &s);
    if z != v * u2 {
        return false;
    }

    // The contract's form: four 192-bit scalars with the signs moved onto the points.
    let w = (v * u1).to_bytes();
    let w1 = half_scalar(&w[COORDINATE_LEN - HALF_LEN..]);
    let w2 = half_scalar(&w[..COORDINATE_LEN - HALF_LEN]);
    let signed_r = negate_if_point(ProjectivePoint::from(point), flags & FLAG_V_NEGATIVE != 0);
    let sum = signed_r * v_magnitude
        - ProjectivePoint::from(q) * z_magnitude
        - ProjectivePoint::GENERATOR * w1
        - shifted_generator() * w2;
    bool::from(sum.is_identity())
}

fn negate_if_point(point: ProjectivePoint, negate: bool) -> ProjectivePoint {
    if negate { -point } else { point }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::ecdsa::signature::hazmat::PrehashSigner;
    use p384::ecdsa::{Signature, SigningKey};
    use sha2::{Digest, Sha384};

    /// A deterministic signing key and signed digest per seed (RFC 6979 nonces).
    fn signed(seed: u32) -> ([u8; 48], Vec<u8>, Vec<u8>) {
        let secret = Sha384::digest(format!("nitro-hints test key {seed}"));
        let key = SigningKey::from_slice(&secret).expect("a hash is a valid secret key");
        let digest: [u8; 48] = Sha384::digest(format!("message {seed}")).into();
        let signature: Signature = key.sign_prehash(&digest).expect("signing");
        let public_key = key.verifying_key().to_encoded_point(false).as_bytes()[1..].to_vec();
        (digest, signature.to_bytes().to_vec(), public_key)
    }

    /// The same signature with `s` replaced by `n − s` (the other valid one).
    fn flip_s(signature: &[u8]) -> Vec<u8> {
        let s = BigUint::from_bytes_be(&signature[COORDINATE_LEN..]);
        let mut out = signature[..COORDINATE_LEN].to_vec();
        out.extend_from_slice(&to_fixed::<COORDINATE_LEN>(&(order() - s)).expect("below n"));
        out
    }

    fn order_bytes() -> [u8; COORDINATE_LEN] {
        to_fixed(order()).expect("n fits")
    }

    #[test]
    fn hints_for_low_and_high_s_signatures_pass_the_check() {
        let mut high_s_seen = 0;
        for seed in 0..24 {
            let (digest, signature, public_key) = signed(seed);
            for signature in [signature.clone(), flip_s(&signature)] {
                let s = BigUint::from_bytes_be(&signature[COORDINATE_LEN..]);
                if s > order() >> 1u8 {
                    high_s_seen += 1;
                }
                let hint = ecdsa_hint(&digest, &signature, &public_key).expect("valid signature");
                assert!(check_hint(
                    &digest,
                    &signature,
                    &public_key,
                    hint.as_bytes()
                ));
                assert_eq!(hint.as_bytes()[FLAGS_AT] & !KNOWN_FLAGS, 0);
                // The SEC1 form of the key gives the same hint.
                let mut sec1 = vec![0x04];
                sec1.extend_from_slice(&public_key);
                assert_eq!(ecdsa_hint(&digest, &signature, &sec1), Ok(hint));
            }
        }
        assert_eq!(high_s_seen, 24, "one of each pair is high-S");
    }

    #[test]
    fn every_single_bit_flip_of_a_hint_fails() {
        for seed in 0..3 {
            let (digest, signature, public_key) = signed(seed);
            let hint = ecdsa_hint(&digest, &signature, &public_key).expect("valid signature");
            for bit in 0..HINT_LEN * 8 {
                let mut mutated = *hint.as_bytes();
                mutated[bit / 8] ^= 0x80 >> (bit % 8);
                assert!(
                    !check_hint(&digest, &signature, &public_key, &mutated),
                    "seed {seed}: flipped bit {bit} still passes"
                );
            }
        }
    }

    #[test]
    fn a_hint_does_not_carry_over_to_other_inputs() {
        let (digest, signature, public_key) = signed(7);
        let hint = ecdsa_hint(&digest, &signature, &public_key).expect("valid signature");
        let (other_digest, other_signature, other_key) = signed(8);
        assert!(!check_hint(
            &other_digest,
            &signature,
            &public_key,
            hint.as_bytes()
        ));
        assert!(!check_hint(
            &digest,
            &other_signature,
            &public_key,
            hint.as_bytes()
        ));
        assert!(!check_hint(
            &digest,
            &signature,
            &other_key,
            hint.as_bytes()
        ));
        assert!(!check_hint(
            &digest,
            &flip_s(&signature),
            &public_key,
            hint.as_bytes()
        ));
        for byte in [0, 47, 48, 95] {
            let mut mutated = signature.clone();
            mutated[byte] ^= 1;
            assert!(!check_hint(&digest, &mutated, &public_key, hint.as_bytes()));
        }
        let mut mutated_digest = digest;
        mutated_digest[47] ^= 1;
        assert!(!check_hint(
            &mutated_digest,
            &signature,
            &public_key,
            hint.as_bytes()
        ));
        assert_eq!(
            ecdsa_hint(&mutated_digest, &signature, &public_key),
            Err(HintError::SignatureInvalid)
        );
        assert_eq!(
            ecdsa_hint(&digest, &signature, &other_key),
            Err(HintError::SignatureInvalid)
        );
    }

    #[test]
    fn zero_v_and_wrong_lengths_fail_the_check() {
        let (digest, signature, public_key) = signed(1);
        let hint = *ecdsa_hint(&digest, &signature, &public_key)
            .expect("valid")
            .as_bytes();
        let mut zero_pair = hint;
        zero_pair[V_RANGE].fill(0);
        zero_pair[Z_RANGE].fill(0);
        assert!(!check_hint(&digest, &signature, &public_key, &zero_pair));
        let mut zero_v = hint;
        zero_v[V_RANGE].fill(0);
        assert!(!check_hint(&digest, &signature, &public_key, &zero_v));
        // Negating both v and z would keep z ≡ v·u2 and the final equation; the reserved bit
        // makes that second encoding fail, so a signature has exactly one hint.
        let mut negated = hint;
        negated[FLAGS_AT] ^= FLAG_V_NEGATIVE | 0x04;
        assert!(!check_hint(&digest, &signature, &public_key, &negated));
        assert!(!check_hint(
            &digest,
            &signature,
            &public_key,
            &hint[..HINT_LEN - 1]
        ));
        let mut long = hint.to_vec();
        long.push(0);
        assert!(!check_hint(&digest, &signature, &public_key, &long));
        assert!(!check_hint(&digest, &signature, &public_key, &[]));
    }

    #[test]
    fn malformed_signatures_and_keys_are_refused() {
        let (digest, signature, public_key) = signed(2);
        let (r, s) = signature.split_at(COORDINATE_LEN);
        let zero = [0u8; COORDINATE_LEN];
        let n = order_bytes();
        let with = |r: &[u8], s: &[u8]| [r, s].concat();
        let cases: [(Vec<u8>, HintError); 7] = [
            (signature[..95].to_vec(), HintError::SignatureLength(95)),
            (
                [signature.as_slice(), &[0]].concat(),
                HintError::SignatureLength(97),
            ),
            (Vec::new(), HintError::SignatureLength(0)),
            (with(&zero, s), HintError::ROutOfRange),
            (with(&n, s), HintError::ROutOfRange),
            (with(r, &zero), HintError::SOutOfRange),
            (with(r, &[0xff; COORDINATE_LEN]), HintError::SOutOfRange),
        ];
        for (bad, error) in cases {
            assert_eq!(ecdsa_hint(&digest, &bad, &public_key), Err(error));
        }

        let mut off_curve = public_key.clone();
        off_curve[95] ^= 1;
        let mut x_too_big = public_key.clone();
        x_too_big[..COORDINATE_LEN].copy_from_slice(&[0xff; COORDINATE_LEN]);
        let compressed_prefix = [&[0x02u8][..], &public_key].concat();
        let key_cases: [(Vec<u8>, HintError); 5] = [
            (public_key[..95].to_vec(), HintError::PublicKeyMalformed(95)),
            (compressed_prefix, HintError::PublicKeyMalformed(97)),
            (Vec::new(), HintError::PublicKeyMalformed(0)),
            (off_curve, HintError::PublicKeyNotOnCurve),
            (x_too_big, HintError::PublicKeyNotOnCurve),
        ];
        for (bad, error) in key_cases {
            assert_eq!(ecdsa_hint(&digest, &signature, &bad), Err(error.clone()));
            let hint = ecdsa_hint(&digest, &signature, &public_key).expect("valid");
            assert!(
                !check_hint(&digest, &signature, &bad, hint.as_bytes()),
                "{error}"
            );
        }
    }

    #[test]
    fn short_decomposition_is_short_and_congruent() {
        let n = order();
        let bound = BigUint::from(1u8) << HALF_BITS;
        let mut signs = (0, 0);
        let samples = (0..64u32)
            .map(|i| BigUint::from_bytes_be(&Sha384::digest(i.to_be_bytes())) % n)
            .chain([
                BigUint::from(1u8),
                &bound - 1u8,
                bound.clone(),
                n - 1u8,
                n >> 1u8,
            ]);
        for u2 in samples {
            let (v, z) = short_decomposition(&u2);
            assert!(
                v.magnitude() >= &BigUint::from(1u8) && v.magnitude() < &bound,
                "{u2}"
            );
            assert!(z >= BigUint::from(1u8) && z < bound, "{u2}");
            let n_int = BigInt::from(n.clone());
            let lhs = (BigInt::from(z.clone()) - v.clone() * BigInt::from(u2.clone())) % &n_int;
            assert_eq!(lhs, BigInt::from(0u8), "z ≢ v·u2 for {u2}");
            if v.sign() == Sign::Minus {
                signs.0 += 1;
            } else {
                signs.1 += 1;
            }
        }
        // Both signs of v occur, so both flag paths get exercised.
        assert!(signs.0 > 0 && signs.1 > 0, "{signs:?}");
        // Below 2^192 the decomposition is trivial.
        assert_eq!(
            short_decomposition(&BigUint::from(5u8)),
            (BigInt::from(1u8), BigUint::from(5u8))
        );
    }
}
