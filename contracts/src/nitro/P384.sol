// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title P-384 (secp384r1) ECDSA verification with off-chain hints
/// @notice Verifies ES384 signatures (ECDSA over P-384 with a 48-byte digest, high-S accepted) for
/// the on-chain Nitro attestation verifier. The EVM has no P-384 precompile; a 97-byte hint computed
/// off-chain (the `nitro-hints` crate) turns the usual `u1·G + u2·Q` into a check of 192-bit scalars:
///
///   hint = R.y (48 bytes) || flags (1 byte) || |v| (24 bytes) || |z| (24 bytes)
///
/// where R is the signature's point (R.x = r, or r + n when flags bit 0 is set), v is small
/// (1 <= |v| < 2^192), z ≡ v·u2 (mod n) with 0 <= z < 2^192, flags bit 1 is the sign of v, and
/// every other bit is 0 (bit 2, once the sign of z, is reserved: (−v, −z) would be a second hint
/// for the same signature). With w = v·u1 mod n = w1 + w2·2^192 and G' = 2^192·G, the contract checks
///
///   |v|·(±R) + |z|·(∓Q) + w1·(−G) + w2·(−G') = O
///
/// with one joint 192-bit double-and-add loop (Straus/Shamir) over the width-5 signed-digit forms
/// (wNAF) of the four scalars: about 32 additions per scalar, from tables of the odd multiples
/// ±P, ±3P, …, ±15P (computed on-chain for ±R and ∓Q, constants for −G and −G'). As n is prime
/// and v ≠ 0, this holds exactly when R = u1·G + u2·Q, so a wrong hint can only make `verify` fail.
///
/// @dev Field elements are kept as two words `(hi, lo)` = hi·2^256 + lo with hi < 2^128, i.e. any
/// value below 2^384, not necessarily below p (lazy reduction): every field function accepts and
/// returns such values, and "is zero" tests for both 0 and p. The multiplication forms the 768-bit
/// product with the `mulmod(a, b, not(0))` trick and folds it with 2^384 ≡ 2^128 + 2^96 − 2^32 + 1.
/// Curve points in the loop are Jacobian (X, Y, Z) in memory; table points are affine (odd multiples
/// k·P with |k| ≤ 15 of points of prime order n, never the point at infinity). Every exceptional
/// case of the addition (equal points, opposite points, the point at infinity as the accumulator)
/// is handled exactly, so the result is right for every input. Field subtractions and small
/// multiples in the doubling are written out inline (generated from `fsub` and `fmulSmall`): the
/// doubling runs 193 times per verification and the call overhead was a sizeable share of it.
library P384 {
    // p = 2^384 − 2^128 − 2^96 + 2^32 − 1 (SEC 2 / FIPS 186-4), split as hi·2^256 + lo.
    uint256 private constant P_HI = 0xffffffffffffffffffffffffffffffff;
    uint256 private constant P_LO = 0xfffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff;
    // The group order n.
    uint256 private constant N_HI = 0xffffffffffffffffffffffffffffffff;
    uint256 private constant N_LO = 0xffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973;
    // The curve coefficient b (a = −3).
    uint256 private constant B_HI = 0xb3312fa7e23ee7e4988e056be3f82d19;
    uint256 private constant B_LO = 0x181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef;
    // Reduction constants: 2^384 ≡ C = 2^128 + CP (mod p), CP = 2^96 − 2^32 + 1.
    uint256 private constant CP = 0xffffffffffffffff00000001;
    uint256 private constant C = 0x100000000ffffffffffffffff00000001;
    uint256 private constant MASK128 = 0xffffffffffffffffffffffffffffffff;
    uint256 private constant MASK192 = 0xffffffffffffffffffffffffffffffffffffffffffffffff;

    // −G (G the SEC 2 base point): x, and p − G.y.
    uint256 private constant NEG_G_X_HI = 0xaa87ca22be8b05378eb1c71ef320ad74;
    uint256 private constant NEG_G_X_LO = 0x6e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7;
    uint256 private constant NEG_G_Y_HI = 0xc9e821b569d9d390a26167406d6d23d6;
    uint256 private constant NEG_G_Y_LO = 0x070be242d765eb831625ceec4a0f473ef59f4e30e2817e6285bce2846f15f1a0;
    // −G' with G' = 2^192·G.
    uint256 private constant NEG_G2_X_HI = 0xc19e0b4c800119c440f7f9e706421279;
    uint256 private constant NEG_G2_X_LO = 0xb42a31af8a3e297ddb2987894d10ddeaba065458a4f52d78a628b09aaa03bd53;
    uint256 private constant NEG_G2_Y_HI = 0xe90c0240fca94cfe1a5fe6e2e0a48809;
    uint256 private constant NEG_G2_Y_LO = 0xa885cf151ca985063e38352eca09140c5097559119c627a77dd2f03b193773be;
    // −(G + G').
    uint256 private constant NEG_G3_X_HI = 0xaab8bb9f0fdc3088567a6233cd6ce3a3;
    uint256 private constant NEG_G3_X_LO = 0x9bb183b270b375ddd37de424b860fae69097dbb1c6cb001730991560aa133909;
    uint256 private constant NEG_G3_Y_HI = 0xb76bd07eceb092d70f50fe2ed7dfaf4a;
    uint256 private constant NEG_G3_Y_LO = 0x09ffa037ea14fb53926aa44c368b840b14208c0c29d055bbe93a467f9ff52a59;

    /// @notice Verifies an ECDSA P-384 signature over a 48-byte digest with its off-chain hint.
    /// @param digest The 48-byte message digest (SHA-384 output), big-endian.
    /// @param signature 96 bytes `r || s`, each 48 bytes big-endian; high-S signatures are valid.
    /// @param publicKey 96 bytes `x || y`, uncompressed without the 0x04 prefix.
    /// @param hint 97 bytes: R.y, flags, |v|, |z| (see the library notes; `nitro-hints` computes it).
    /// @return True iff the signature is valid and the hint matches it; false for every malformed or
    /// invalid input (it never reverts on bad input).
    function verify(bytes memory digest, bytes memory signature, bytes memory publicKey, bytes memory hint)
        internal
        view
        returns (bool)
    {
        if (digest.length != 48 || signature.length != 96 || hint.length != 97) return false;
        if (!isValidPublicKey(publicKey)) return false;

        // input: P1 = ±R, P2 = ∓Q (affine, hi/lo words), |v|, |z|, w1, w2 for the combination;
        // sc: r, s, e (hi/lo words each) and the flags for the scalar checks.
        uint256[12] memory input;
        uint256[7] memory sc;
        bool ok = _load(digest, signature, publicKey, hint, input, sc);
        // P1 = ±R on the curve (negating y keeps a point on it); Q was checked above.
        if (!ok || !_isOnCurve(input[0], input[1], input[2], input[3])) return false;
        (bool consistent, uint256 w1, uint256 w2) = _scalars(sc, input[8], input[9]);
        if (!consistent) return false;
        input[10] = w1;
        input[11] = w2;
        return combinationIsInfinity(input);
    }

    /// @dev Parses the inputs of `verify` (lengths already checked) into `input` and `sc`, and
    /// checks the ranges: 0 < r, s < n; defined flags only; v ≠ 0; R.x, R.y < p.
    function _load(
        bytes memory digest,
        bytes memory signature,
        bytes memory publicKey,
        bytes memory hint,
        uint256[12] memory input,
        uint256[7] memory sc
    ) private pure returns (bool ok) {
        // Small scopes keep few values on the stack (the IR pipeline inlines this into `verify`).
        assembly ("memory-safe") {
            {
                let d := add(digest, 0x20)
                mstore(add(sc, 0x80), shr(128, mload(d)))
                mstore(add(sc, 0xa0), mload(add(d, 0x10)))
            }
            {
                // 0 < r < n
                let x1 := shr(128, mload(add(signature, 0x20)))
                let x0 := mload(add(signature, 0x30))
                mstore(sc, x1)
                mstore(add(sc, 0x20), x0)
                ok := and(iszero(iszero(or(x1, x0))), or(lt(x1, N_HI), and(eq(x1, N_HI), lt(x0, N_LO))))
            }
            {
                // 0 < s < n
                let x1 := shr(128, mload(add(signature, 0x50)))
                let x0 := mload(add(signature, 0x60))
                mstore(add(sc, 0x40), x1)
                mstore(add(sc, 0x60), x0)
                ok := and(ok, and(iszero(iszero(or(x1, x0))), or(lt(x1, N_HI), and(eq(x1, N_HI), lt(x0, N_LO)))))
            }
            {
                // Only the two defined flag bits; v ≠ 0 (|v|, |z| < 2^192 by their size).
                let flags := byte(0, mload(add(hint, 0x50)))
                mstore(add(sc, 0xc0), flags)
                let v := shr(64, mload(add(hint, 0x51)))
                mstore(add(input, 0x100), v)
                mstore(add(input, 0x120), shr(64, mload(add(hint, 0x69))))
                ok := and(ok, and(lt(flags, 4), iszero(iszero(v))))
            }
            {
                // R.x = r, or r + n when flags bit 0 is set; it must be below p.
                let x1 := mload(sc)
                let x0 := mload(add(sc, 0x20))
                if and(mload(add(sc, 0xc0)), 1) {
                    let t := add(x0, N_LO)
                    x1 := add(add(x1, N_HI), lt(t, x0))
                    x0 := t
                }
                ok := and(ok, or(lt(x1, P_HI), and(eq(x1, P_HI), lt(x0, P_LO))))
                mstore(input, x1)
                mstore(add(input, 0x20), x0)
            }
            {
                // R.y below p; P1 = ±R by the sign of v (y ≠ 0 here: no point of order 2).
                let y1 := shr(128, mload(add(hint, 0x20)))
                let y0 := mload(add(hint, 0x30))
                ok := and(ok, or(lt(y1, P_HI), and(eq(y1, P_HI), lt(y0, P_LO))))
                if and(mload(add(sc, 0xc0)), 2) {
                    let t := sub(P_LO, y0)
                    y1 := sub(sub(P_HI, y1), gt(y0, P_LO))
                    y0 := t
                }
                mstore(add(input, 0x40), y1)
                mstore(add(input, 0x60), y0)
            }
            {
                // P2 = ∓Q, minus the sign of z.
                mstore(add(input, 0x80), shr(128, mload(add(publicKey, 0x20))))
                mstore(add(input, 0xa0), mload(add(publicKey, 0x30)))
                let y1 := shr(128, mload(add(publicKey, 0x50)))
                let y0 := mload(add(publicKey, 0x60))
                if iszero(and(mload(add(sc, 0xc0)), 4)) {
                    let t := sub(P_LO, y0)
                    y1 := sub(sub(P_HI, y1), gt(y0, P_LO))
                    y0 := t
                }
                mstore(add(input, 0xc0), y1)
                mstore(add(input, 0xe0), y0)
            }
        }
    }

    /// @notice Whether `publicKey` is a valid uncompressed P-384 point: 96 bytes `x || y`, both
    /// coordinates below p, on the curve (the point at infinity has no such encoding).
    function isValidPublicKey(bytes memory publicKey) internal pure returns (bool) {
        if (publicKey.length != 96) return false;
        uint256 x1;
        uint256 x0;
        uint256 y1;
        uint256 y0;
        assembly ("memory-safe") {
            let q := add(publicKey, 0x20)
            x1 := shr(128, mload(q))
            x0 := mload(add(q, 0x10))
            y1 := shr(128, mload(add(q, 0x30)))
            y0 := mload(add(q, 0x40))
        }
        return _isOnCurve(x1, x0, y1, y0);
    }

    /// @dev Whether (x, y) is on the curve with both coordinates below p: y² = x³ − 3x + b.
    /// Pure, so it carries its own copy of the field functions (the main block calls the modexp
    /// precompile and is view).
    function _isOnCurve(uint256 x1, uint256 x0, uint256 y1, uint256 y0) private pure returns (bool on) {
        assembly ("memory-safe") {
            // a·b mod p for a, b < 2^384, result < 2^384 (see the library notes).
            function fmul(a1, a0, b1, b0) -> r1, r0 {
                // 768-bit product w2·2^512 + w1·2^256 + r0: the 512-bit a0·b0 and the 385-bit
                // cross sum a0·b1 + a1·b0 each from their residues mod 2^256 and 2^256 − 1.
                r0 := mul(a0, b0)
                let w1 := mulmod(a0, b0, not(0))
                w1 := sub(sub(w1, r0), lt(w1, r0))
                let sl := add(mul(a0, b1), mul(a1, b0))
                let sh := addmod(mulmod(a0, b1, not(0)), mulmod(a1, b0, not(0)), not(0))
                sh := sub(sub(sh, sl), lt(sh, sl))
                w1 := add(w1, sl)
                let w2 := add(add(mul(a1, b1), sh), lt(w1, sl))
                r0, r1 := fold(r0, w1, w2)
            }

            // a² mod p: fmul with the cross sum 2·a0·a1 as one product.
            function fsqr(a1, a0) -> r1, r0 {
                r0 := mul(a0, a0)
                let w1 := mulmod(a0, a0, not(0))
                w1 := sub(sub(w1, r0), lt(w1, r0))
                let t := shl(1, a1)
                let sl := mul(a0, t)
                let sh := mulmod(a0, t, not(0))
                sh := sub(sub(sh, sl), lt(sh, sl))
                w1 := add(w1, sl)
                let w2 := add(add(mul(a1, a1), sh), lt(w1, sl))
                r0, r1 := fold(r0, w1, w2)
            }

            // Reduces w2·2^512 + w1·2^256 + w0 (< 2^768) to a value < 2^384 congruent mod p.
            // With 128-bit digits d2..d5 of w1, w2 and 2^384 ≡ 2^128 + CP, 2^512 ≡ 2^256 + 2^128·CP,
            // 2^640 ≡ 2^256·CP + 2^128 + CP, the product is ≡ w0 + s·CP + 2^128·(s + d4·CP)
            // + 2^256·(d2 + d4 + d5·CP) with s = d3 + d5, a value below 2^482 (every term fits a
            // word: the digits are below 2^128, CP below 2^96); two cheap folds of the bits from
            // 2^384 up (2^384·x ≡ C·x) finish.
            function fold(w0, w1, w2) -> r0, r1 {
                let d4 := and(w2, MASK128)
                let s := add(shr(128, w1), shr(128, w2))
                let u := add(s, mul(d4, CP))
                r1 := add(add(and(w1, MASK128), d4), mul(shr(128, w2), CP))
                r0 := add(w0, mul(s, CP))
                let k := lt(r0, w0)
                s := shl(128, u)
                r0 := add(r0, s)
                r1 := add(add(add(r1, shr(128, u)), k), lt(r0, s))
                // r1 < 2^226: fold its bits from 128 up; the carry can reach 2^384 only when the
                // low word is small, so the last fold cannot overflow.
                s := mul(shr(128, r1), C)
                r1 := and(r1, MASK128)
                r0 := add(r0, s)
                r1 := add(r1, lt(r0, s))
                k := shr(128, r1)
                r1 := and(r1, MASK128)
                r0 := add(r0, mul(k, C))
            }

            // a − b mod p, result < 2^384.
            function fsub(a1, a0, b1, b0) -> r1, r0 {
                r0 := sub(a0, b0)
                r1 := sub(sub(a1, b1), lt(a0, b0))
                // Negative (> −2^384 > −2p): add p once, and again if b was above p.
                if slt(r1, 0) {
                    let t := add(r0, P_LO)
                    r1 := add(add(r1, P_HI), lt(t, r0))
                    r0 := t
                    if slt(r1, 0) {
                        t := add(r0, P_LO)
                        r1 := add(add(r1, P_HI), lt(t, r0))
                        r0 := t
                    }
                }
            }

            // Whether a ≡ 0 (mod p); a < 2^384 < 2p, so a is 0 or p.
            function fzero(a1, a0) -> z {
                z := or(iszero(or(a1, a0)), and(eq(a1, P_HI), eq(a0, P_LO)))
            }

            // a + b mod p, result < 2^384.
            function fadd(a1, a0, b1, b0) -> r1, r0 {
                r0 := add(a0, b0)
                r1 := add(add(a1, b1), lt(r0, a0))
                // At most 2^385 − 2: fold bit 384 (2^384 ≡ C) twice; the second fold only fires
                // for inputs above p and then leaves a small value.
                let f := shr(128, r1)
                r1 := and(r1, MASK128)
                let t := add(r0, mul(f, C))
                r1 := add(r1, lt(t, r0))
                r0 := t
                f := shr(128, r1)
                r1 := and(r1, MASK128)
                r0 := add(r0, mul(f, C))
            }

            if and(
                or(lt(x1, P_HI), and(eq(x1, P_HI), lt(x0, P_LO))),
                or(lt(y1, P_HI), and(eq(y1, P_HI), lt(y0, P_LO)))
            ) {
                let a1, a0 := fsqr(x1, x0)
                a1, a0 := fsub(a1, a0, 0, 3)
                a1, a0 := fmul(a1, a0, x1, x0)
                a1, a0 := fadd(a1, a0, B_HI, B_LO)
                let b1, b0 := fsqr(y1, y0)
                a1, a0 := fsub(a1, a0, b1, b0)
                on := fzero(a1, a0)
            }
        }
    }

    /// @dev The scalar side of `verify`: checks z ≡ v·u2 (mod n), i.e. v·r ≡ z·s, and returns
    /// w = v·u1 = v·e/s mod n split as w1 + w2·2^192. Mod-n arithmetic uses the modexp precompile
    /// (products reduced with exponent 1, s⁻¹ = s^(n−2)); it runs a handful of times per signature.
    function _scalars(uint256[7] memory sc, uint256 v, uint256 z)
        private
        view
        returns (bool ok, uint256 wLow, uint256 wHigh)
    {
        assembly ("memory-safe") {
            // Writes a 384-bit value as 48 big-endian bytes at ptr (the 16 bytes after it are
            // zeroed; values are written in increasing address order).
            function put48(ptr, hi, lo) {
                mstore(ptr, shl(128, hi))
                mstore(add(ptr, 0x10), lo)
            }

            // (a1·2^256 + a0)·(b1·2^256 + b0) mod n for a1, b1 < 2^128.
            function nmul(mx, a1, a0, b1, b0) -> r1, r0 {
                let w0 := mul(a0, b0)
                let w1 := mulmod(a0, b0, not(0))
                w1 := sub(sub(w1, w0), lt(w1, w0))
                let sl := add(mul(a0, b1), mul(a1, b0))
                let sh := addmod(mulmod(a0, b1, not(0)), mulmod(a1, b0, not(0)), not(0))
                sh := sub(sub(sh, sl), lt(sh, sl))
                w1 := add(w1, sl)
                let w2 := add(add(mul(a1, b1), sh), lt(w1, sl))
                // modexp(base = the 96-byte product, exponent = 1, modulus = n).
                mstore(mx, 0x60)
                mstore(add(mx, 0x20), 1)
                mstore(add(mx, 0x40), 0x30)
                mstore(add(mx, 0x60), w2)
                mstore(add(mx, 0x80), w1)
                mstore(add(mx, 0xa0), w0)
                mstore8(add(mx, 0xc0), 1)
                put48(add(mx, 0xc1), N_HI, N_LO)
                if iszero(staticcall(gas(), 0x05, mx, 0xf1, mx, 0x30)) { revert(0, 0) }
                r1 := shr(128, mload(mx))
                r0 := mload(add(mx, 0x10))
            }

            let mx := mload(0x40)
            let flags := mload(add(sc, 0xc0))
            {
                // |v|·r and |z|·s mod n must agree up to the signs of v and z.
                let a1, a0 := nmul(mx, 0, v, mload(sc), mload(add(sc, 0x20)))
                let b1, b0 := nmul(mx, 0, z, mload(add(sc, 0x40)), mload(add(sc, 0x60)))
                switch eq(and(shr(1, flags), 1), and(shr(2, flags), 1))
                case 1 { ok := and(eq(a1, b1), eq(a0, b0)) }
                default {
                    // a + b ≡ 0 with a, b < n: both zero, or a + b = n.
                    let t := add(a0, b0)
                    ok := or(
                        iszero(or(or(a1, a0), or(b1, b0))),
                        and(eq(t, N_LO), eq(add(add(a1, b1), lt(t, a0)), N_HI))
                    )
                }
            }

            // s⁻¹ = s^(n−2) mod n.
            mstore(mx, 0x30)
            mstore(add(mx, 0x20), 0x30)
            mstore(add(mx, 0x40), 0x30)
            put48(add(mx, 0x60), mload(add(sc, 0x40)), mload(add(sc, 0x60)))
            put48(add(mx, 0x90), N_HI, sub(N_LO, 2))
            put48(add(mx, 0xc0), N_HI, N_LO)
            if iszero(staticcall(gas(), 0x05, mx, 0xf0, mx, 0x30)) { revert(0, 0) }
            let i1 := shr(128, mload(mx))
            let i0 := mload(add(mx, 0x10))

            // w = ±|v|·e·s⁻¹ mod n.
            let a1, a0 := nmul(mx, 0, v, mload(add(sc, 0x80)), mload(add(sc, 0xa0)))
            a1, a0 := nmul(mx, a1, a0, i1, i0)
            if and(and(shr(1, flags), 1), iszero(iszero(or(a1, a0)))) {
                let t := sub(N_LO, a0)
                a1 := sub(sub(N_HI, a1), gt(a0, N_LO))
                a0 := t
            }
            wLow := and(a0, MASK192)
            wHigh := or(shl(64, a1), shr(192, a0))
        }
    }

    // Odd multiples k·(−G) and k·(−G') for k = 1, 3, …, 15 (x, y as 48 bytes each; G' = 2^192·G),
    // the constant tables of the signed-digit loop (computed off-line from G).
    bytes private constant NEG_G_MULTIPLES =
        hex"aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7c9e821b569d9d390a26167406d6d23d6070be242d765eb831625ceec4a0f473ef59f4e30e2817e6285bce2846f15f1a0077a41d4606ffa1464793c7e5fdc7d98cb9d3910202dcd06bea4f240d3566da6b408bbae5026580d02d7e5c70500c831366a0835f4f3bd7c82f44169fd5603667adf4be37aeea55a0897b3f123eee1523db542931b4a2d6749a0d7a0f5d0e20e11de24a2c251c777573cac5ea025e467f208e51dbff98fc54f6661cbe56583b037882f4a1ca297e60abcdbc3836d84bc705969388bbf06d2f0a7c816f5ff183ad7b4bb88ab2a211773679acc496fe513ce889791f51704cce7bbeb55193e8ec5283c1d7365ce4788f29f8ebf234edffead6fe997fbea5ffa2d58cc9dfa7b1c508b05526f55b9ebb2040f05b48fb6d0e16b8a366f9e1be47745ad102473e96fb8e59e2798128668d62636d32fe242dda8cf27b120cd5870619b99b3263aed10738f0a39a4049bcb3ef1bf29b8b025b78f2216f7291e6fd3bac6cb1ee285fb6e21c388528bfee2b9535c55e4461079118b9d3881ebc749fe29bad3b5acdd3c56866564c2835c3bff39489877ab51264cfc618bc100202ae497d9d25b075399b507099056e27da7b998da1eeec2904816c57fe935ed5837c37456c9fd14892d3f8c4749b66e3afb81d626356f3b55b4ddd8d1b3f3dcb1cf5469977afaabb53a1fc6903b1127203c9c02bc006c0be4ad5cd9ab992aec9c5500ca82a2457fc73a1f44a567ba97b67aea5bafdaf5002ffcc6ab9632bff9f01f873f6267bcd1f0f11c139ee5f441abd99f1baaf1ca1e3b5cbce721e4c74c6760cce79bb1beb850e9b133ae7aa6afb96cd13f79cd641fa87a82988894347c8dde75829bdc5ed9c90bd633b3d13fc8b32b01058cc15c11d813525522a94156fff01c205b21f9f7da7c4e9ca849557a10b6383b4b88701a9606860bead6e618206e9d59e4fb64dac9e9b4e411453b5ee28b650b7b2eeebc8c2040257c72db064d7b50af67a2a773cc08429dc19e0b4c800119c440f7f9e706421279b42a31af8a3e297ddb2987894d10ddeaba065458a4f52d78a628b09aaa03bd53e90c0240fca94cfe1a5fe6e2e0a48809a885cf151ca985063e38352eca09140c5097559119c627a77dd2f03b193773be1a509ee26fabc337f820ca874cdf382a623be1091e0922c4412788de72320efe88525311345523a8c6d13d9055de60e26572c2bff4335e2346b7b4b7f1f105e350c2f561a7e86748b8304a4ee0889f9f5221291483805904dedc49c0c25ac4624a8217c8e8cc4419738eb43dd2f845cc5ec8010e2c6a277499a04bbf5d54eef2b2ec62213b5e93cbc5405556f13d61f76ecf9242343679da9360395ac1259e6285975712ecd984fb6c57005a55911cfa1d5a9a925c5fbcadc9a8f87e6fd9042addde438ae7fe418c5fd943bdd58e4b2d0d57f75a8775011000098538b5829b862f7c46cd22f78e204eb8364d4f3bf0bb783195b6286e8156f101af92ebf0cb0e8cb12c597b29b2cc8f773b62590d253130cd6da3666522e01119eb9d19e8c3a8d4ac6ca5588b5558c94be86415ef4658d9a47617893a764b7341f958af1b2721773174ade385be745834d4f7db6c1be066cdb28dc2de0ea526507247600aed9679fa4cfc614033589beafced0b278afba9b6289a1bf22bc25976cd139fb17e713d19f7b68598ea1c283c8171ab5f0adfb20d327ab44da1d64e78c9326d4775c74646c2572e6ad902d10ca702a86b8e14c4a7b1df79e408530993b6e4ada5a7b4c435f1a731252b8793cd110da1e24598cb671ad4bf782a5139d8787e5aa1d0be0721e722e78b42300c0c95778fb3a10ad3be245cf876e128ef46906881ee09aeb905c03e035e69ab5426c15584bf0f5a4bcbda2886df8e432c83348490f8239e7096a7998cdb50bfa8d9c4ed9024355db1f20ed4d524baf176fd6eb726097fb557aa537d68956272256c2ece57e772e9f78c1e3b322dbc5504206e68132d5b6274bbf4ae28be38f9a6efa42d1912f7010266299e12bd167d9143c061f3941b8968736a8718d77f387c4e2c4eca787b35794e1ff55522d45596a702b2fd91f62f";

    /// @notice Whether a·P1 + b·P2 + c·(−G) + d·(−G') is the point at infinity, with G' = 2^192·G.
    /// @dev The core of `verify`, exposed for tests of the curve arithmetic. `io` holds P1 and P2
    /// as affine coordinates (x hi, x lo, y hi, y lo each, as in the field representation) followed
    /// by the scalars a, b, c, d. Preconditions (unchecked; `verify` ensures them): P1 and P2 are
    /// on the curve with coordinates below p, and every scalar is below 2^192 (higher bits are
    /// ignored). The memory past the free memory pointer is used as scratch space.
    function combinationIsInfinity(uint256[12] memory io) internal view returns (bool isInfinity) {
        bytes memory consts = NEG_G_MULTIPLES;
        assembly ("memory-safe") {
            // a·b mod p for a, b < 2^384, result < 2^384 (see the library notes).
            function fmul(a1, a0, b1, b0) -> r1, r0 {
                // 768-bit product w2·2^512 + w1·2^256 + r0: the 512-bit a0·b0 and the 385-bit
                // cross sum a0·b1 + a1·b0 each from their residues mod 2^256 and 2^256 − 1.
                r0 := mul(a0, b0)
                let w1 := mulmod(a0, b0, not(0))
                w1 := sub(sub(w1, r0), lt(w1, r0))
                let sl := add(mul(a0, b1), mul(a1, b0))
                let sh := addmod(mulmod(a0, b1, not(0)), mulmod(a1, b0, not(0)), not(0))
                sh := sub(sub(sh, sl), lt(sh, sl))
                w1 := add(w1, sl)
                let w2 := add(add(mul(a1, b1), sh), lt(w1, sl))
                r0, r1 := fold(r0, w1, w2)
            }

            // a² mod p: fmul with the cross sum 2·a0·a1 as one product.
            function fsqr(a1, a0) -> r1, r0 {
                r0 := mul(a0, a0)
                let w1 := mulmod(a0, a0, not(0))
                w1 := sub(sub(w1, r0), lt(w1, r0))
                let t := shl(1, a1)
                let sl := mul(a0, t)
                let sh := mulmod(a0, t, not(0))
                sh := sub(sub(sh, sl), lt(sh, sl))
                w1 := add(w1, sl)
                let w2 := add(add(mul(a1, a1), sh), lt(w1, sl))
                r0, r1 := fold(r0, w1, w2)
            }

            // Reduces w2·2^512 + w1·2^256 + w0 (< 2^768) to a value < 2^384 congruent mod p.
            // With 128-bit digits d2..d5 of w1, w2 and 2^384 ≡ 2^128 + CP, 2^512 ≡ 2^256 + 2^128·CP,
            // 2^640 ≡ 2^256·CP + 2^128 + CP, the product is ≡ w0 + s·CP + 2^128·(s + d4·CP)
            // + 2^256·(d2 + d4 + d5·CP) with s = d3 + d5, a value below 2^482 (every term fits a
            // word: the digits are below 2^128, CP below 2^96); two cheap folds of the bits from
            // 2^384 up (2^384·x ≡ C·x) finish.
            function fold(w0, w1, w2) -> r0, r1 {
                let d4 := and(w2, MASK128)
                let s := add(shr(128, w1), shr(128, w2))
                let u := add(s, mul(d4, CP))
                r1 := add(add(and(w1, MASK128), d4), mul(shr(128, w2), CP))
                r0 := add(w0, mul(s, CP))
                let k := lt(r0, w0)
                s := shl(128, u)
                r0 := add(r0, s)
                r1 := add(add(add(r1, shr(128, u)), k), lt(r0, s))
                // r1 < 2^226: fold its bits from 128 up; the carry can reach 2^384 only when the
                // low word is small, so the last fold cannot overflow.
                s := mul(shr(128, r1), C)
                r1 := and(r1, MASK128)
                r0 := add(r0, s)
                r1 := add(r1, lt(r0, s))
                k := shr(128, r1)
                r1 := and(r1, MASK128)
                r0 := add(r0, mul(k, C))
            }

            // a − b mod p, result < 2^384.
            function fsub(a1, a0, b1, b0) -> r1, r0 {
                r0 := sub(a0, b0)
                r1 := sub(sub(a1, b1), lt(a0, b0))
                // Negative (> −2^384 > −2p): add p once, and again if b was above p.
                if slt(r1, 0) {
                    let t := add(r0, P_LO)
                    r1 := add(add(r1, P_HI), lt(t, r0))
                    r0 := t
                    if slt(r1, 0) {
                        t := add(r0, P_LO)
                        r1 := add(add(r1, P_HI), lt(t, r0))
                        r0 := t
                    }
                }
            }

            // Whether a ≡ 0 (mod p); a < 2^384 < 2p, so a is 0 or p.
            function fzero(a1, a0) -> z {
                z := or(iszero(or(a1, a0)), and(eq(a1, P_HI), eq(a0, P_LO)))
            }

            // a + b mod p, result < 2^384.
            function fadd(a1, a0, b1, b0) -> r1, r0 {
                r0 := add(a0, b0)
                r1 := add(add(a1, b1), lt(r0, a0))
                // At most 2^385 − 2: fold bit 384 (2^384 ≡ C) twice; the second fold only fires
                // for inputs above p and then leaves a small value.
                let f := shr(128, r1)
                r1 := and(r1, MASK128)
                let t := add(r0, mul(f, C))
                r1 := add(r1, lt(t, r0))
                r0 := t
                f := shr(128, r1)
                r1 := and(r1, MASK128)
                r0 := add(r0, mul(f, C))
            }

            // k·a mod p for a small constant k (2 ≤ k ≤ 8), result < 2^384: cheaper than k − 1 additions.
            function fmulSmall(a1, a0, k) -> r1, r0 {
                r0 := mul(a0, k)
                let h := mulmod(a0, k, not(0))
                h := sub(sub(h, r0), lt(h, r0))
                r1 := add(mul(a1, k), h)
                // Below 2^387: fold the bits from 384 up, then the rare carry as in fadd.
                let t := mul(shr(128, r1), C)
                r1 := and(r1, MASK128)
                r0 := add(r0, t)
                r1 := add(r1, lt(r0, t))
                t := shr(128, r1)
                r1 := and(r1, MASK128)
                r0 := add(r0, mul(t, C))
            }

            // Doubles the Jacobian point at pt (not the point at infinity: this curve has no
            // point of order 2, so the result is finite too). a = −3 (dbl-2001-b). The blocks are
            // `fsub` and `fmulSmall` written out inline (see the library notes).
            function dbl(pt) {
                let x1 := mload(pt)
                let x0 := mload(add(pt, 0x20))
                let d1, d0 := fsqr(mload(add(pt, 0x80)), mload(add(pt, 0xa0)))
                let a1, a0
                {
                    let a1_1 := x1
                    let a0_1 := x0
                    let b1_1 := d1
                    let b0_1 := d0
                    let r1_1
                    let r0_1
                    r0_1 := sub(a0_1, b0_1)
                    r1_1 := sub(sub(a1_1, b1_1), lt(a0_1, b0_1))
                    if slt(r1_1, 0) {
                        let t_1 := add(r0_1, P_LO)
                        r1_1 := add(add(r1_1, P_HI), lt(t_1, r0_1))
                        r0_1 := t_1
                        if slt(r1_1, 0) {
                            t_1 := add(r0_1, P_LO)
                            r1_1 := add(add(r1_1, P_HI), lt(t_1, r0_1))
                            r0_1 := t_1
                        }
                    }
                    a1 := r1_1
                    a0 := r0_1
                }
                let b1, b0 := fadd(x1, x0, d1, d0)
                a1, a0 := fmul(a1, a0, b1, b0)
                // alpha = 3·(X − Z²)·(X + Z²)
                {
                    let a1_2 := a1
                    let a0_2 := a0
                    let k_2 := 3
                    let r1_2
                    let r0_2
                    r0_2 := mul(a0_2, k_2)
                    let h_2 := mulmod(a0_2, k_2, not(0))
                    h_2 := sub(sub(h_2, r0_2), lt(h_2, r0_2))
                    r1_2 := add(mul(a1_2, k_2), h_2)
                    let t_2 := mul(shr(128, r1_2), C)
                    r1_2 := and(r1_2, MASK128)
                    r0_2 := add(r0_2, t_2)
                    r1_2 := add(r1_2, lt(r0_2, t_2))
                    t_2 := shr(128, r1_2)
                    r1_2 := and(r1_2, MASK128)
                    r0_2 := add(r0_2, mul(t_2, C))
                    a1 := r1_2
                    a0 := r0_2
                }
                let y1 := mload(add(pt, 0x40))
                let y0 := mload(add(pt, 0x60))
                d1, d0 := fmul(y1, y0, mload(add(pt, 0x80)), mload(add(pt, 0xa0)))
                d1, d0 := fadd(d1, d0, d1, d0)
                mstore(add(pt, 0x80), d1) // Z3 = 2·Y·Z
                mstore(add(pt, 0xa0), d0)
                y1, y0 := fsqr(y1, y0) // gamma = Y²
                b1, b0 := fmul(x1, x0, y1, y0)
                // 4·beta = 4·X·gamma
                {
                    let a1_3 := b1
                    let a0_3 := b0
                    let k_3 := 4
                    let r1_3
                    let r0_3
                    r0_3 := mul(a0_3, k_3)
                    let h_3 := mulmod(a0_3, k_3, not(0))
                    h_3 := sub(sub(h_3, r0_3), lt(h_3, r0_3))
                    r1_3 := add(mul(a1_3, k_3), h_3)
                    let t_3 := mul(shr(128, r1_3), C)
                    r1_3 := and(r1_3, MASK128)
                    r0_3 := add(r0_3, t_3)
                    r1_3 := add(r1_3, lt(r0_3, t_3))
                    t_3 := shr(128, r1_3)
                    r1_3 := and(r1_3, MASK128)
                    r0_3 := add(r0_3, mul(t_3, C))
                    b1 := r1_3
                    b0 := r0_3
                }
                x1, x0 := fsqr(a1, a0)
                {
                    let a1_4 := x1
                    let a0_4 := x0
                    let b1_4 := b1
                    let b0_4 := b0
                    let r1_4
                    let r0_4
                    r0_4 := sub(a0_4, b0_4)
                    r1_4 := sub(sub(a1_4, b1_4), lt(a0_4, b0_4))
                    if slt(r1_4, 0) {
                        let t_4 := add(r0_4, P_LO)
                        r1_4 := add(add(r1_4, P_HI), lt(t_4, r0_4))
                        r0_4 := t_4
                        if slt(r1_4, 0) {
                            t_4 := add(r0_4, P_LO)
                            r1_4 := add(add(r1_4, P_HI), lt(t_4, r0_4))
                            r0_4 := t_4
                        }
                    }
                    x1 := r1_4
                    x0 := r0_4
                }
                // X3 = alpha² − 8·beta
                {
                    let a1_5 := x1
                    let a0_5 := x0
                    let b1_5 := b1
                    let b0_5 := b0
                    let r1_5
                    let r0_5
                    r0_5 := sub(a0_5, b0_5)
                    r1_5 := sub(sub(a1_5, b1_5), lt(a0_5, b0_5))
                    if slt(r1_5, 0) {
                        let t_5 := add(r0_5, P_LO)
                        r1_5 := add(add(r1_5, P_HI), lt(t_5, r0_5))
                        r0_5 := t_5
                        if slt(r1_5, 0) {
                            t_5 := add(r0_5, P_LO)
                            r1_5 := add(add(r1_5, P_HI), lt(t_5, r0_5))
                            r0_5 := t_5
                        }
                    }
                    x1 := r1_5
                    x0 := r0_5
                }
                mstore(pt, x1)
                mstore(add(pt, 0x20), x0)
                {
                    let a1_6 := b1
                    let a0_6 := b0
                    let b1_6 := x1
                    let b0_6 := x0
                    let r1_6
                    let r0_6
                    r0_6 := sub(a0_6, b0_6)
                    r1_6 := sub(sub(a1_6, b1_6), lt(a0_6, b0_6))
                    if slt(r1_6, 0) {
                        let t_6 := add(r0_6, P_LO)
                        r1_6 := add(add(r1_6, P_HI), lt(t_6, r0_6))
                        r0_6 := t_6
                        if slt(r1_6, 0) {
                            t_6 := add(r0_6, P_LO)
                            r1_6 := add(add(r1_6, P_HI), lt(t_6, r0_6))
                            r0_6 := t_6
                        }
                    }
                    b1 := r1_6
                    b0 := r0_6
                }
                a1, a0 := fmul(a1, a0, b1, b0)
                y1, y0 := fsqr(y1, y0)
                {
                    let a1_7 := y1
                    let a0_7 := y0
                    let k_7 := 8
                    let r1_7
                    let r0_7
                    r0_7 := mul(a0_7, k_7)
                    let h_7 := mulmod(a0_7, k_7, not(0))
                    h_7 := sub(sub(h_7, r0_7), lt(h_7, r0_7))
                    r1_7 := add(mul(a1_7, k_7), h_7)
                    let t_7 := mul(shr(128, r1_7), C)
                    r1_7 := and(r1_7, MASK128)
                    r0_7 := add(r0_7, t_7)
                    r1_7 := add(r1_7, lt(r0_7, t_7))
                    t_7 := shr(128, r1_7)
                    r1_7 := and(r1_7, MASK128)
                    r0_7 := add(r0_7, mul(t_7, C))
                    y1 := r1_7
                    y0 := r0_7
                }
                // Y3 = alpha·(4·beta − X3) − 8·gamma²
                {
                    let a1_8 := a1
                    let a0_8 := a0
                    let b1_8 := y1
                    let b0_8 := y0
                    let r1_8
                    let r0_8
                    r0_8 := sub(a0_8, b0_8)
                    r1_8 := sub(sub(a1_8, b1_8), lt(a0_8, b0_8))
                    if slt(r1_8, 0) {
                        let t_8 := add(r0_8, P_LO)
                        r1_8 := add(add(r1_8, P_HI), lt(t_8, r0_8))
                        r0_8 := t_8
                        if slt(r1_8, 0) {
                            t_8 := add(r0_8, P_LO)
                            r1_8 := add(add(r1_8, P_HI), lt(t_8, r0_8))
                            r0_8 := t_8
                        }
                    }
                    a1 := r1_8
                    a0 := r0_8
                }
                mstore(add(pt, 0x40), a1)
                mstore(add(pt, 0x60), a0)
            }

            // Adds the affine point at q to the Jacobian point at pt in place (madd-2004-hmv),
            // neither the point at infinity. Equal points fall back to doubling; opposite points
            // give the point at infinity, reported as inf = 1 (pt is then left unspecified).
            function madd(pt, q) -> inf {
                let z1 := mload(add(pt, 0x80))
                let z0 := mload(add(pt, 0xa0))
                let t1, t0 := fsqr(z1, z0)
                let h1, h0 := fmul(mload(q), mload(add(q, 0x20)), t1, t0)
                t1, t0 := fmul(t1, t0, z1, z0)
                let r1, r0 := fmul(mload(add(q, 0x40)), mload(add(q, 0x60)), t1, t0)
                h1, h0 := fsub(h1, h0, mload(pt), mload(add(pt, 0x20))) // H = x2·Z1² − X1
                r1, r0 := fsub(r1, r0, mload(add(pt, 0x40)), mload(add(pt, 0x60))) // r = y2·Z1³ − Y1
                if fzero(h1, h0) {
                    switch fzero(r1, r0)
                    case 1 { dbl(pt) }
                    default { inf := 1 }
                    leave
                }
                z1, z0 := fmul(z1, z0, h1, h0)
                mstore(add(pt, 0x80), z1) // Z3 = Z1·H
                mstore(add(pt, 0xa0), z0)
                t1, t0 := fsqr(h1, h0)
                h1, h0 := fmul(h1, h0, t1, t0) // H³
                t1, t0 := fmul(mload(pt), mload(add(pt, 0x20)), t1, t0) // V = X1·H²
                z1, z0 := fsqr(r1, r0)
                z1, z0 := fsub(z1, z0, h1, h0)
                z1, z0 := fsub(z1, z0, t1, t0)
                z1, z0 := fsub(z1, z0, t1, t0) // X3 = r² − H³ − 2·V
                mstore(pt, z1)
                mstore(add(pt, 0x20), z0)
                t1, t0 := fsub(t1, t0, z1, z0)
                r1, r0 := fmul(r1, r0, t1, t0)
                h1, h0 := fmul(mload(add(pt, 0x40)), mload(add(pt, 0x60)), h1, h0)
                r1, r0 := fsub(r1, r0, h1, h0) // Y3 = r·(V − X3) − Y1·H³
                mstore(add(pt, 0x40), r1)
                mstore(add(pt, 0x60), r0)
            }

            // Copies the affine point at q to the Jacobian point at pt (Z = 1).
            function toJacobian(pt, q) {
                mstore(pt, mload(q))
                mstore(add(pt, 0x20), mload(add(q, 0x20)))
                mstore(add(pt, 0x40), mload(add(q, 0x40)))
                mstore(add(pt, 0x60), mload(add(q, 0x60)))
                mstore(add(pt, 0x80), 0)
                mstore(add(pt, 0xa0), 1)
            }

            function storeAffine(q, x1, x0, y1, y0) {
                mstore(q, x1)
                mstore(add(q, 0x20), x0)
                mstore(add(q, 0x40), y1)
                mstore(add(q, 0x60), y0)
            }

            // a^(p−2) mod p (a ≢ 0) with the modexp precompile.
            function finv(mx, a1, a0) -> r1, r0 {
                mstore(mx, 0x30)
                mstore(add(mx, 0x20), 0x30)
                mstore(add(mx, 0x40), 0x30)
                mstore(add(mx, 0x60), shl(128, a1))
                mstore(add(mx, 0x70), a0)
                mstore(add(mx, 0x90), shl(128, P_HI))
                mstore(add(mx, 0xa0), sub(P_LO, 2))
                mstore(add(mx, 0xc0), shl(128, P_HI))
                mstore(add(mx, 0xd0), P_LO)
                if iszero(staticcall(gas(), 0x05, mx, 0xf0, mx, 0x30)) { revert(0, 0) }
                r1 := shr(128, mload(mx))
                r0 := mload(add(mx, 0x10))
            }

            // Converts the Jacobian point at e to affine at q, given zi = 1/Z.
            function toAffine(e, q, zi1, zi0) {
                let t1, t0 := fsqr(zi1, zi0)
                let x1, x0 := fmul(mload(e), mload(add(e, 0x20)), t1, t0)
                mstore(q, x1)
                mstore(add(q, 0x20), x0)
                t1, t0 := fmul(t1, t0, zi1, zi0)
                x1, x0 := fmul(mload(add(e, 0x40)), mload(add(e, 0x60)), t1, t0)
                mstore(add(q, 0x40), x1)
                mstore(add(q, 0x60), x0)
            }

            // Table entry of multiple k (odd, −15 ≤ k ≤ 15) of scalar slot s: index (k + 15) / 2.
            // Fills the tables of odd multiples ±P, ±3P, …, ±15P of P1, P2 (computed: 2P by a
            // doubling made affine, then a chain of mixed additions of 2P, normalised with one
            // inversion) and of −G, −G' (constants). Returns false if a chain addition gave the
            // point at infinity, which cannot happen for points of order n (kP = −2P would need
            // n | k + 2 with k ≤ 13); the caller then fails closed.
            function buildTables(m, pts, cst) -> ok {
                let mx := add(m, 0x33c0)
                // P and 2P (Jacobian; finite: no point of order 2) for P1 and P2.
                for { let s := 0 } lt(s, 2) { s := add(s, 1) } {
                    let one := add(add(m, 0x500), shl(11, s))
                    let pa := add(pts, shl(7, s))
                    storeAffine(one, mload(pa), mload(add(pa, 0x20)), mload(add(pa, 0x40)), mload(add(pa, 0x60)))
                    let two := add(add(m, 0x2b80), mul(s, 0xc0))
                    toJacobian(two, one)
                    dbl(two)
                }
                {
                    // Both 2P made affine with one inversion, into slot 0 of their tables (overwritten
                    // by −15P below).
                    let z1, z0 :=
                        fmul(mload(add(m, 0x2c00)), mload(add(m, 0x2c20)), mload(add(m, 0x2cc0)), mload(add(m, 0x2ce0)))
                    z1, z0 := finv(mx, z1, z0)
                    let i1, i0 := fmul(z1, z0, mload(add(m, 0x2cc0)), mload(add(m, 0x2ce0)))
                    toAffine(add(m, 0x2b80), add(m, 0x100), i1, i0)
                    i1, i0 := fmul(z1, z0, mload(add(m, 0x2c00)), mload(add(m, 0x2c20)))
                    toAffine(add(m, 0x2c40), add(m, 0x900), i1, i0)
                }
                for { let s := 0 } lt(s, 2) { s := add(s, 1) } {
                    let blk := add(add(m, 0x100), shl(11, s))
                    // 3P, 5P, …, 15P in Jacobian: P + 2P, then + 2P six times.
                    let prev := add(add(m, 0x2100), mul(mul(s, 7), 0xc0))
                    toJacobian(prev, add(blk, 0x400))
                    if madd(prev, blk) { leave }
                    for { let k := 1 } lt(k, 7) { k := add(k, 1) } {
                        let e := add(prev, 0xc0)
                        mcopy(e, prev, 0xc0)
                        if madd(e, blk) { leave }
                        prev := e
                    }
                }
                // Montgomery's trick over the 14 Jacobian entries (all finite).
                let pre := add(m, 0x2d00)
                let a1 := 0
                let a0 := 1
                for { let t := 0 } lt(t, 14) { t := add(t, 1) } {
                    let e := add(add(m, 0x2100), mul(t, 0xc0))
                    a1, a0 := fmul(a1, a0, mload(add(e, 0x80)), mload(add(e, 0xa0)))
                    mstore(add(pre, shl(6, t)), a1)
                    mstore(add(pre, add(shl(6, t), 0x20)), a0)
                }
                a1, a0 := finv(mx, a1, a0)
                for { let t := 14 } t {} {
                    t := sub(t, 1)
                    let e := add(add(m, 0x2100), mul(t, 0xc0))
                    // 1/Z_t = 1/(Z_0···Z_t) · (Z_0···Z_{t−1}); then 1/(Z_0···Z_{t−1}).
                    let i1 := a1
                    let i0 := a0
                    if t {
                        let p := add(pre, shl(6, sub(t, 1)))
                        i1, i0 := fmul(a1, a0, mload(p), mload(add(p, 0x20)))
                    }
                    a1, a0 := fmul(a1, a0, mload(add(e, 0x80)), mload(add(e, 0xa0)))
                    // Entry t is (2·(t mod 7) + 3)·P of slot t / 7: index 9 + t mod 7.
                    let s := div(t, 7)
                    toAffine(e, add(add(add(m, 0x100), shl(11, s)), shl(7, add(9, mod(t, 7)))), i1, i0)
                }
                // The constant multiples of −G and −G' (48-byte big-endian x, y each).
                for { let t := 0 } lt(t, 16) { t := add(t, 1) } {
                    let src := add(add(cst, 0x20), mul(t, 0x60))
                    storeAffine(
                        add(add(m, 0x1100), add(shl(11, shr(3, t)), shl(7, add(8, and(t, 7))))),
                        shr(128, mload(src)),
                        mload(add(src, 0x10)),
                        shr(128, mload(add(src, 0x30))),
                        mload(add(src, 0x40))
                    )
                }
                // Negatives: index 7 − j holds −(index 8 + j).
                for { let t := 0 } lt(t, 32) { t := add(t, 1) } {
                    let blk := add(add(m, 0x100), shl(11, shr(3, t)))
                    let q := add(blk, shl(7, add(8, and(t, 7))))
                    let y1, y0 := fsub(0, 0, mload(add(q, 0x40)), mload(add(q, 0x60)))
                    storeAffine(add(blk, shl(7, sub(7, and(t, 7)))), mload(q), mload(add(q, 0x20)), y1, y0)
                }
                ok := 1
            }

            // Width-5 NAF of each scalar (digits odd, |d| ≤ 15, at least four zeros after each
            // nonzero one), written as bytes: digit i of scalar s at digits + 4·i + s, as
            // 16·s + index + 2 (0 for a zero digit), so that its table entry is at m + 0x80·byte.
            // A 192-bit scalar has at most 193 digits.
            function recode(digits, scalars) {
                calldatacopy(digits, calldatasize(), 0x320)
                for { let s := 0 } lt(s, 4) { s := add(s, 1) } {
                    let k := and(mload(add(scalars, add(0x100, shl(5, s)))), MASK192)
                    let base := add(shl(4, s), 2)
                    for { let ptr := add(digits, s) } k {} {
                        if and(k, 1) {
                            // Digit d, or d − 32 when d > 15 (then k − digit carries upwards): index
                            // (digit + 15) / 2.
                            let d := and(k, 31)
                            let neg := gt(d, 15)
                            mstore8(ptr, sub(add(shr(1, add(d, 15)), base), shl(4, neg)))
                            // k − digit ≡ 0 (mod 32): the next four digits are zero.
                            k := shr(5, add(sub(k, d), shl(5, neg)))
                            ptr := add(ptr, 20)
                            continue
                        }
                        k := shr(1, k)
                        ptr := add(ptr, 4)
                    }
                }
            }

            let m := mload(0x40)
            // Memory from m (scratch past the free memory pointer):
            //   0x0000           accumulator (X, Y, Z: hi, lo words each)
            //   0x0100 + s·0x800 table of scalar slot s (P1, P2, −G, −G'): 16 affine entries of 0x80
            //   0x2100 + t·0xc0  the 14 computed multiples, Jacobian, before normalisation
            //   0x2b80 + s·0xc0  2P1, 2P2, Jacobian
            //   0x2d00 + t·0x40  prefix products of the Z coordinates
            //   0x3080           digits (0x320 bytes)
            //   0x33c0           modexp buffer
            if buildTables(m, io, consts) {
                let digits := add(m, 0x3080)
                recode(digits, io)
                // Joint double-and-add from digit 192 down; the accumulator starts at infinity.
                isInfinity := 1
                for { let i := 193 } i {} {
                    i := sub(i, 1)
                    if iszero(isInfinity) { dbl(m) }
                    let word := mload(add(digits, shl(2, i)))
                    if shr(224, word) {
                        for { let s := 0 } lt(s, 4) { s := add(s, 1) } {
                            let dd := byte(s, word)
                            if dd {
                                switch isInfinity
                                case 1 {
                                    toJacobian(m, add(m, shl(7, dd)))
                                    isInfinity := 0
                                }
                                default { isInfinity := madd(m, add(m, shl(7, dd))) }
                            }
                        }
                    }
                }
            }
            // Release the copy of the constant tables (allocated at the old free memory pointer).
            mstore(0x40, consts)
        }
    }
}
