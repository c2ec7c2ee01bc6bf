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
/// (1 <= |v| < 2^192), z ≡ v·u2 (mod n) with |z| < 2^192, and flags bits 1 and 2 are the signs of v
/// and z. With w = v·u1 mod n = w1 + w2·2^192 and G' = 2^192·G, the contract checks
///
///   |v|·(±R) + |z|·(∓Q) + w1·(−G) + w2·(−G') = O
///
/// with one joint 192-bit double-and-add loop (Straus/Shamir) over a 16-entry table. As n is prime
/// and v ≠ 0, this holds exactly when R = u1·G + u2·Q, so a wrong hint can only make `verify` fail.
///
/// @dev Field elements are kept as two words `(hi, lo)` = hi·2^256 + lo with hi < 2^128, i.e. any
/// value below 2^384, not necessarily below p (lazy reduction): every field function accepts and
/// returns such values, and "is zero" tests for both 0 and p. The multiplication forms the 768-bit
/// product with the `mulmod(a, b, not(0))` trick and folds it with 2^384 ≡ 2^128 + 2^96 − 2^32 + 1.
/// Curve points in the loop are Jacobian (X, Y, Z) in memory; table points are affine. Every
/// exceptional case of the addition (equal points, opposite points, the point at infinity as an
/// operand or as a table entry) is handled exactly, so the result is right for every input.
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
                // Only the three defined flag bits; v ≠ 0 (|v|, |z| < 2^192 by their size).
                let flags := byte(0, mload(add(hint, 0x50)))
                mstore(add(sc, 0xc0), flags)
                let v := shr(64, mload(add(hint, 0x51)))
                mstore(add(input, 0x100), v)
                mstore(add(input, 0x120), shr(64, mload(add(hint, 0x69))))
                ok := and(ok, and(lt(flags, 8), iszero(iszero(v))))
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

    /// @notice Whether a·P1 + b·P2 + c·(−G) + d·(−G') is the point at infinity, with G' = 2^192·G.
    /// @dev The core of `verify`, exposed for tests of the curve arithmetic. `io` holds P1 and P2
    /// as affine coordinates (x hi, x lo, y hi, y lo each, as in the field representation) followed
    /// by the scalars a, b, c, d. Preconditions (unchecked; `verify` ensures them): P1 and P2 are
    /// on the curve with coordinates below p, and every scalar is below 2^192 (higher bits are
    /// ignored). The memory past the free memory pointer is used as scratch space.
    function combinationIsInfinity(uint256[12] memory io) internal view returns (bool isInfinity) {
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

            // Memory layout from m (scratch past the free memory pointer):
            //   0x000 accumulator (X, Y, Z: hi, lo words each)
            //   0x100 + j·0x80   table entry j, affine (x, y)
            //   0x900 + j·0xc0   table entry j, Jacobian, before normalisation
            //   0x1500 + k·0x40  prefix products of the Z coordinates
            //   0x1900           modexp buffer
            // Doubles the Jacobian point at pt (not the point at infinity: this curve has no
            // point of order 2, so the result is finite too). a = −3 (dbl-2001-b).
            function dbl(pt) {
                let x1 := mload(pt)
                let x0 := mload(add(pt, 0x20))
                let d1, d0 := fsqr(mload(add(pt, 0x80)), mload(add(pt, 0xa0)))
                let a1, a0 := fsub(x1, x0, d1, d0)
                let b1, b0 := fadd(x1, x0, d1, d0)
                a1, a0 := fmul(a1, a0, b1, b0)
                a1, a0 := fmulSmall(a1, a0, 3) // alpha = 3·(X − Z²)·(X + Z²)
                let y1 := mload(add(pt, 0x40))
                let y0 := mload(add(pt, 0x60))
                d1, d0 := fmul(y1, y0, mload(add(pt, 0x80)), mload(add(pt, 0xa0)))
                d1, d0 := fadd(d1, d0, d1, d0)
                mstore(add(pt, 0x80), d1) // Z3 = 2·Y·Z
                mstore(add(pt, 0xa0), d0)
                y1, y0 := fsqr(y1, y0) // gamma = Y²
                b1, b0 := fmul(x1, x0, y1, y0)
                b1, b0 := fmulSmall(b1, b0, 4) // 4·beta = 4·X·gamma
                x1, x0 := fsqr(a1, a0)
                x1, x0 := fsub(x1, x0, b1, b0)
                x1, x0 := fsub(x1, x0, b1, b0) // X3 = alpha² − 8·beta
                mstore(pt, x1)
                mstore(add(pt, 0x20), x0)
                b1, b0 := fsub(b1, b0, x1, x0)
                a1, a0 := fmul(a1, a0, b1, b0)
                y1, y0 := fsqr(y1, y0)
                y1, y0 := fmulSmall(y1, y0, 8)
                a1, a0 := fsub(a1, a0, y1, y0) // Y3 = alpha·(4·beta − X3) − 8·gamma²
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

            // Builds the table of the 16 combinations T[j] = Σ bit_i(j)·P_i with P1, P2 from points,
            // P3 = −G, P4 = −G'; returns the mask of entries that are the point at infinity
            // (bit 0 always set: T[0] is never added).
            function buildTable(m, points) -> infMask {
                let tab := add(m, 0x100)
                let jac := add(m, 0x900)
                storeAffine(
                    add(tab, 0x80),
                    mload(points),
                    mload(add(points, 0x20)),
                    mload(add(points, 0x40)),
                    mload(add(points, 0x60))
                )
                storeAffine(
                    add(tab, 0x100),
                    mload(add(points, 0x80)),
                    mload(add(points, 0xa0)),
                    mload(add(points, 0xc0)),
                    mload(add(points, 0xe0))
                )
                storeAffine(add(tab, 0x200), NEG_G_X_HI, NEG_G_X_LO, NEG_G_Y_HI, NEG_G_Y_LO)
                storeAffine(add(tab, 0x400), NEG_G2_X_HI, NEG_G2_X_LO, NEG_G2_Y_HI, NEG_G2_Y_LO)
                storeAffine(add(tab, 0x600), NEG_G3_X_HI, NEG_G3_X_LO, NEG_G3_Y_HI, NEG_G3_Y_LO)
                infMask := 1

                // T[3] = P1 + P2, then T[j] = T[j & 3] + T[j & 12] for the other nine.
                let e3 := add(jac, mul(3, 0xc0))
                toJacobian(e3, add(tab, 0x80))
                if madd(e3, add(tab, 0x100)) { infMask := or(infMask, 8) }
                for { let k := 0 } lt(k, 9) { k := add(k, 1) } {
                    // j in 5, 6, 7, 9, 10, 11, 13, 14, 15
                    // (byte() counts from the most significant byte of the word.)
                    let j := byte(add(k, 23), 0x050607090a0b0d0e0f)
                    let e := add(jac, mul(j, 0xc0))
                    let low := and(j, 3)
                    let high := add(tab, shl(7, and(j, 12)))
                    switch low
                    case 3 {
                        switch and(infMask, 8)
                        case 0 {
                            mcopy(e, e3, 0xc0)
                            if madd(e, high) { infMask := or(infMask, shl(j, 1)) }
                        }
                        default { toJacobian(e, high) }
                    }
                    default {
                        toJacobian(e, add(tab, shl(7, low)))
                        if madd(e, high) { infMask := or(infMask, shl(j, 1)) }
                    }
                }
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

            // Normalises the ten Jacobian table entries to affine with one inversion (Montgomery's
            // trick); entries at infinity are left out.
            function normalise(m, infMask) {
                let pre := add(m, 0x1500)
                let a1 := 0
                let a0 := 1
                for { let k := 0 } lt(k, 10) { k := add(k, 1) } {
                    let j := byte(add(k, 22), 0x03050607090a0b0d0e0f)
                    if iszero(and(shr(j, infMask), 1)) {
                        let e := add(add(m, 0x900), mul(j, 0xc0))
                        a1, a0 := fmul(a1, a0, mload(add(e, 0x80)), mload(add(e, 0xa0)))
                    }
                    mstore(add(pre, shl(6, k)), a1)
                    mstore(add(pre, add(shl(6, k), 0x20)), a0)
                }
                a1, a0 := finv(add(m, 0x1900), a1, a0)
                for { let k := 10 } k {} {
                    k := sub(k, 1)
                    let j := byte(add(k, 22), 0x03050607090a0b0d0e0f)
                    if iszero(and(shr(j, infMask), 1)) {
                        let e := add(add(m, 0x900), mul(j, 0xc0))
                        // 1/Z_j = 1/(Z_0···Z_k) · (Z_0···Z_{k−1}); then 1/(Z_0···Z_{k−1}).
                        let i1 := a1
                        let i0 := a0
                        if k {
                            let p := add(pre, shl(6, sub(k, 1)))
                            i1, i0 := fmul(a1, a0, mload(p), mload(add(p, 0x20)))
                        }
                        a1, a0 := fmul(a1, a0, mload(add(e, 0x80)), mload(add(e, 0xa0)))
                        toAffine(e, add(add(m, 0x100), shl(7, j)), i1, i0)
                    }
                }
            }

            let m := mload(0x40)
            let infMask := buildTable(m, io)
            normalise(m, infMask)
            let a := and(mload(add(io, 0x100)), MASK192)
            let b := and(mload(add(io, 0x120)), MASK192)
            let c := and(mload(add(io, 0x140)), MASK192)
            let d := and(mload(add(io, 0x160)), MASK192)
            // Joint double-and-add from bit 191 down; the accumulator starts at infinity.
            isInfinity := 1
            for { let i := 192 } i {} {
                i := sub(i, 1)
                if iszero(isInfinity) { dbl(m) }
                let j :=
                    or(
                        or(and(shr(i, a), 1), shl(1, and(shr(i, b), 1))),
                        or(shl(2, and(shr(i, c), 1)), shl(3, and(shr(i, d), 1)))
                    )
                if iszero(and(shr(j, infMask), 1)) {
                    let q := add(add(m, 0x100), shl(7, j))
                    switch isInfinity
                    case 1 {
                        toJacobian(m, q)
                        isInfinity := 0
                    }
                    default { isInfinity := madd(m, q) }
                }
            }
        }
    }
}
