// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice SHA-384 (FIPS 180-4) over memory, for the P-384 signatures of AWS Nitro attestation documents
/// and their X.509 certificates, which the EVM has no precompile for.
/// @dev SHA-384 is the SHA-512 compression function with its own initial value, truncated to 48 bytes.
/// Each 64-bit word lives in the low bits of a 256-bit EVM word. Additions are left unreduced (the
/// low 64 bits of a sum do not depend on the bits above them) and only the words that are rotated
/// next are masked. A rotation uses the doubled word `x * (2^64 + 1)` (x in bits 0-63 and 64-127),
/// whose right shift by n holds rotr(x, n) in its low 64 bits: one multiplication per rotated value and
/// one shift per rotation instead of two shifts and an or per rotation. Full blocks are read in place;
/// only the last one or two blocks (message tail and padding) are copied to scratch memory.
/// Compile with the legacy pipeline (via_ir = false, as the repository's test profile does): the IR
/// pipeline's optimiser cannot keep the unrolled rounds on the stack, rematerialises and spills them to
/// memory and makes a block cost about 256,000 gas instead of about 27,000 (measured with solc 0.8.30).
library Sha384 {
    /// @notice The range [offset, offset + length) does not lie within the data.
    error Sha384RangeOutOfBounds(uint256 offset, uint256 length, uint256 dataLength);

    /// @dev Low 64 bits.
    uint256 private constant M64 = 0xffffffffffffffff;
    /// @dev Bits 128-191: the second lane.
    uint256 private constant LANE1 = 0xffffffffffffffff00000000000000000000000000000000;
    /// @dev Two 64-bit lanes, bits 0-63 and 128-191.
    uint256 private constant LANES = 0xffffffffffffffff0000000000000000ffffffffffffffff;
    /// @dev Multiplying a 64-bit word by 2^64 + 1 puts a copy of it in bits 64-127 (and a lane in bits
    /// 128-191 gets its copy in bits 192-255).
    uint256 private constant DUP = 0x10000000000000001;

    /// @notice SHA-384 of `data`.
    /// @return digest The 48-byte digest.
    function hash(bytes memory data) internal pure returns (bytes memory digest) {
        uint256 start;
        assembly ("memory-safe") {
            start := add(data, 0x20)
        }
        return _hash(start, data.length);
    }

    /// @notice SHA-384 of `data[offset:offset + length]`, hashed in place without copying it.
    /// @dev Reverts with {Sha384RangeOutOfBounds} if the range does not lie within `data`.
    /// @return digest The 48-byte digest.
    function hash(bytes memory data, uint256 offset, uint256 length) internal pure returns (bytes memory digest) {
        if (offset > data.length || length > data.length - offset) {
            revert Sha384RangeOutOfBounds(offset, length, data.length);
        }
        uint256 start;
        assembly ("memory-safe") {
            start := add(add(data, 0x20), offset)
        }
        return _hash(start, length);
    }

    /// @dev Hashes the `length` bytes of memory from `start`.
    function _hash(uint256 start, uint256 length) private pure returns (bytes memory digest) {
        assembly ("memory-safe") {
            // The message schedule of one block, two words per EVM word: pair k holds W[2k] in bits 0-63
            // and W[2k + 1] in bits 128-191, so both words of a pair (which do not depend on each other)
            // are expanded by the same instructions; the 64 bits of headroom above each lane absorb the
            // rotations' spill and the carries of unreduced sums. The last eight pairs stay on the stack
            // (W[t-16..t-1]); what the rounds need, W[t] + K[t] per pair, goes to memory at `wk`, where
            // the round constants lie 0x500 bytes further on, paired the same way.
            function expand(chunk, wk) {
                // W[0..15]: the block's 64-bit big-endian words, four per 32-byte load.
                let m := mload(chunk)
                let p0 := or(shr(192, m), and(m, LANE1))
                let p1 := or(and(shr(64, m), M64), shr(64, shl(192, m)))
                m := mload(add(chunk, 0x20))
                let p2 := or(shr(192, m), and(m, LANE1))
                let p3 := or(and(shr(64, m), M64), shr(64, shl(192, m)))
                m := mload(add(chunk, 0x40))
                let p4 := or(shr(192, m), and(m, LANE1))
                let p5 := or(and(shr(64, m), M64), shr(64, shl(192, m)))
                m := mload(add(chunk, 0x60))
                let p6 := or(shr(192, m), and(m, LANE1))
                let p7 := or(and(shr(64, m), M64), shr(64, shl(192, m)))
                mstore(wk, add(p0, mload(add(wk, 0x500))))
                mstore(add(wk, 0x20), add(p1, mload(add(wk, 0x520))))
                mstore(add(wk, 0x40), add(p2, mload(add(wk, 0x540))))
                mstore(add(wk, 0x60), add(p3, mload(add(wk, 0x560))))
                mstore(add(wk, 0x80), add(p4, mload(add(wk, 0x580))))
                mstore(add(wk, 0xa0), add(p5, mload(add(wk, 0x5a0))))
                mstore(add(wk, 0xc0), add(p6, mload(add(wk, 0x5c0))))
                mstore(add(wk, 0xe0), add(p7, mload(add(wk, 0x5e0))))
                // W[16..79], eight pairs per iteration (the names rotate instead of the values):
                // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16] mod 2^64, with
                // s0(x) = rotr(x, 1) ^ rotr(x, 8) ^ (x >> 7) and s1(x) = rotr(x, 19) ^ rotr(x, 61) ^ (x >> 6).
                // For pair k, (W[t-2], W[t-1]) is pair k-1 and (W[t-16], W[t-15]) pair k-8, while
                // (W[t-15], W[t-14]) and (W[t-7], W[t-6]) straddle two pairs each.
                for { let q := add(wk, 0x100) } lt(q, add(wk, 0x500)) { q := add(q, 0x100) } {
                    {
                        // pair 8j+8 (W16 + W7, then s0, then s1)
                        let s := add(p0, add(shr(128, p4), shl(128, p5)))
                        {
                            let x := or(shr(128, p0), shl(128, p1))
                            let xx := mul(x, DUP)
                            s := add(s, and(xor(xor(shr(1, xx), shr(8, xx)), shr(7, x)), LANES))
                        }
                        {
                            let xx := mul(p7, DUP)
                            s := add(s, and(xor(xor(shr(19, xx), shr(61, xx)), shr(6, p7)), LANES))
                        }
                        p0 := and(s, LANES)
                        mstore(q, add(p0, mload(add(q, 0x500))))
                    }
                    {
                        // pair 8j+9 (W16 + W7, then s0, then s1)
                        let s := add(p1, add(shr(128, p5), shl(128, p6)))
                        {
                            let x := or(shr(128, p1), shl(128, p2))
                            let xx := mul(x, DUP)
                            s := add(s, and(xor(xor(shr(1, xx), shr(8, xx)), shr(7, x)), LANES))
                        }
                        {
                            let xx := mul(p0, DUP)
                            s := add(s, and(xor(xor(shr(19, xx), shr(61, xx)), shr(6, p0)), LANES))
                        }
                        p1 := and(s, LANES)
                        mstore(add(q, 0x20), add(p1, mload(add(q, 0x520))))
                    }
                    {
                        // pair 8j+10 (W16 + W7, then s0, then s1)
                        let s := add(p2, add(shr(128, p6), shl(128, p7)))
                        {
                            let x := or(shr(128, p2), shl(128, p3))
                            let xx := mul(x, DUP)
                            s := add(s, and(xor(xor(shr(1, xx), shr(8, xx)), shr(7, x)), LANES))
                        }
                        {
                            let xx := mul(p1, DUP)
                            s := add(s, and(xor(xor(shr(19, xx), shr(61, xx)), shr(6, p1)), LANES))
                        }
                        p2 := and(s, LANES)
                        mstore(add(q, 0x40), add(p2, mload(add(q, 0x540))))
                    }
                    {
                        // pair 8j+11 (W16 + W7, then s0, then s1)
                        let s := add(p3, add(shr(128, p7), shl(128, p0)))
                        {
                            let x := or(shr(128, p3), shl(128, p4))
                            let xx := mul(x, DUP)
                            s := add(s, and(xor(xor(shr(1, xx), shr(8, xx)), shr(7, x)), LANES))
                        }
                        {
                            let xx := mul(p2, DUP)
                            s := add(s, and(xor(xor(shr(19, xx), shr(61, xx)), shr(6, p2)), LANES))
                        }
                        p3 := and(s, LANES)
                        mstore(add(q, 0x60), add(p3, mload(add(q, 0x560))))
                    }
                    {
                        // pair 8j+12 (W16 + W7, then s0, then s1)
                        let s := add(p4, add(shr(128, p0), shl(128, p1)))
                        {
                            let x := or(shr(128, p4), shl(128, p5))
                            let xx := mul(x, DUP)
                            s := add(s, and(xor(xor(shr(1, xx), shr(8, xx)), shr(7, x)), LANES))
                        }
                        {
                            let xx := mul(p3, DUP)
                            s := add(s, and(xor(xor(shr(19, xx), shr(61, xx)), shr(6, p3)), LANES))
                        }
                        p4 := and(s, LANES)
                        mstore(add(q, 0x80), add(p4, mload(add(q, 0x580))))
                    }
                    {
                        // pair 8j+13 (W16 + W7, then s0, then s1)
                        let s := add(p5, add(shr(128, p1), shl(128, p2)))
                        {
                            let x := or(shr(128, p5), shl(128, p6))
                            let xx := mul(x, DUP)
                            s := add(s, and(xor(xor(shr(1, xx), shr(8, xx)), shr(7, x)), LANES))
                        }
                        {
                            let xx := mul(p4, DUP)
                            s := add(s, and(xor(xor(shr(19, xx), shr(61, xx)), shr(6, p4)), LANES))
                        }
                        p5 := and(s, LANES)
                        mstore(add(q, 0xa0), add(p5, mload(add(q, 0x5a0))))
                    }
                    {
                        // pair 8j+14 (W16 + W7, then s0, then s1)
                        let s := add(p6, add(shr(128, p2), shl(128, p3)))
                        {
                            let x := or(shr(128, p6), shl(128, p7))
                            let xx := mul(x, DUP)
                            s := add(s, and(xor(xor(shr(1, xx), shr(8, xx)), shr(7, x)), LANES))
                        }
                        {
                            let xx := mul(p5, DUP)
                            s := add(s, and(xor(xor(shr(19, xx), shr(61, xx)), shr(6, p5)), LANES))
                        }
                        p6 := and(s, LANES)
                        mstore(add(q, 0xc0), add(p6, mload(add(q, 0x5c0))))
                    }
                    {
                        // pair 8j+15 (W16 + W7, then s0, then s1)
                        let s := add(p7, add(shr(128, p3), shl(128, p4)))
                        {
                            let x := or(shr(128, p7), shl(128, p0))
                            let xx := mul(x, DUP)
                            s := add(s, and(xor(xor(shr(1, xx), shr(8, xx)), shr(7, x)), LANES))
                        }
                        {
                            let xx := mul(p6, DUP)
                            s := add(s, and(xor(xor(shr(19, xx), shr(61, xx)), shr(6, p6)), LANES))
                        }
                        p7 := and(s, LANES)
                        mstore(add(q, 0xe0), add(p7, mload(add(q, 0x5e0))))
                    }
                }
            }

            // 80 rounds (unrolled eight at a time) over the expanded schedule at `wk`, added into the
            // state H, which lies 0xa00 bytes after `wk` (after the round constants). Only `wk` is passed,
            // to leave the stack to a..h, the loop pointer and the round's temporaries.
            function rounds(wk) {
                let a := mload(add(wk, 0xa00))
                let b := mload(add(wk, 0xa20))
                let c := mload(add(wk, 0xa40))
                let d := mload(add(wk, 0xa60))
                let e := mload(add(wk, 0xa80))
                let f := mload(add(wk, 0xaa0))
                let g := mload(add(wk, 0xac0))
                let h := mload(add(wk, 0xae0))
                // Round t: T1 = h + S1(e) + Ch(e, f, g) + (K[t] + W[t]), T2 = S0(a) + Maj(a, b, c);
                // d + T1 becomes the new e and T1 + T2 the new a. Instead of shifting all eight
                // variables, each unrolled round renames them, so after eight rounds the names line up.
                // S0(a) = rotr(a, 28) ^ rotr(a, 34) ^ rotr(a, 39), S1(e) = rotr(e, 14) ^ rotr(e, 18) ^ rotr(e, 41).
                // Only the new a and e are reduced mod 2^64, as the next rounds rotate them; the rest
                // (the odd round's schedule pair included) is added unreduced.
                for { let p := wk } lt(p, add(wk, 0x500)) { p := add(p, 0x80) } {
                    {
                        // W[t] + K[t] of this pair of rounds (the second in bits 128-191)
                        let v := mload(p)
                        // round 8j+0
                        {
                            let t1 := add(add(h, xor(g, and(e, xor(f, g)))), v)
                            {
                                let x := mul(e, DUP)
                                t1 := add(t1, xor(xor(shr(14, x), shr(18, x)), shr(41, x)))
                            }
                            d := and(add(d, t1), M64)
                            {
                                let x := mul(a, DUP)
                                t1 := add(t1, xor(xor(shr(28, x), shr(34, x)), shr(39, x)))
                            }
                            h := and(add(t1, or(and(a, b), and(c, or(a, b)))), M64)
                        }
                        // round 8j+1
                        {
                            let t1 := add(add(g, xor(f, and(d, xor(e, f)))), shr(128, v))
                            {
                                let x := mul(d, DUP)
                                t1 := add(t1, xor(xor(shr(14, x), shr(18, x)), shr(41, x)))
                            }
                            c := and(add(c, t1), M64)
                            {
                                let x := mul(h, DUP)
                                t1 := add(t1, xor(xor(shr(28, x), shr(34, x)), shr(39, x)))
                            }
                            g := and(add(t1, or(and(h, a), and(b, or(h, a)))), M64)
                        }
                    }
                    {
                        // W[t] + K[t] of this pair of rounds (the second in bits 128-191)
                        let v := mload(add(p, 0x20))
                        // round 8j+2
                        {
                            let t1 := add(add(f, xor(e, and(c, xor(d, e)))), v)
                            {
                                let x := mul(c, DUP)
                                t1 := add(t1, xor(xor(shr(14, x), shr(18, x)), shr(41, x)))
                            }
                            b := and(add(b, t1), M64)
                            {
                                let x := mul(g, DUP)
                                t1 := add(t1, xor(xor(shr(28, x), shr(34, x)), shr(39, x)))
                            }
                            f := and(add(t1, or(and(g, h), and(a, or(g, h)))), M64)
                        }
                        // round 8j+3
                        {
                            let t1 := add(add(e, xor(d, and(b, xor(c, d)))), shr(128, v))
                            {
                                let x := mul(b, DUP)
                                t1 := add(t1, xor(xor(shr(14, x), shr(18, x)), shr(41, x)))
                            }
                            a := and(add(a, t1), M64)
                            {
                                let x := mul(f, DUP)
                                t1 := add(t1, xor(xor(shr(28, x), shr(34, x)), shr(39, x)))
                            }
                            e := and(add(t1, or(and(f, g), and(h, or(f, g)))), M64)
                        }
                    }
                    {
                        // W[t] + K[t] of this pair of rounds (the second in bits 128-191)
                        let v := mload(add(p, 0x40))
                        // round 8j+4
                        {
                            let t1 := add(add(d, xor(c, and(a, xor(b, c)))), v)
                            {
                                let x := mul(a, DUP)
                                t1 := add(t1, xor(xor(shr(14, x), shr(18, x)), shr(41, x)))
                            }
                            h := and(add(h, t1), M64)
                            {
                                let x := mul(e, DUP)
                                t1 := add(t1, xor(xor(shr(28, x), shr(34, x)), shr(39, x)))
                            }
                            d := and(add(t1, or(and(e, f), and(g, or(e, f)))), M64)
                        }
                        // round 8j+5
                        {
                            let t1 := add(add(c, xor(b, and(h, xor(a, b)))), shr(128, v))
                            {
                                let x := mul(h, DUP)
                                t1 := add(t1, xor(xor(shr(14, x), shr(18, x)), shr(41, x)))
                            }
                            g := and(add(g, t1), M64)
                            {
                                let x := mul(d, DUP)
                                t1 := add(t1, xor(xor(shr(28, x), shr(34, x)), shr(39, x)))
                            }
                            c := and(add(t1, or(and(d, e), and(f, or(d, e)))), M64)
                        }
                    }
                    {
                        // W[t] + K[t] of this pair of rounds (the second in bits 128-191)
                        let v := mload(add(p, 0x60))
                        // round 8j+6
                        {
                            let t1 := add(add(b, xor(a, and(g, xor(h, a)))), v)
                            {
                                let x := mul(g, DUP)
                                t1 := add(t1, xor(xor(shr(14, x), shr(18, x)), shr(41, x)))
                            }
                            f := and(add(f, t1), M64)
                            {
                                let x := mul(c, DUP)
                                t1 := add(t1, xor(xor(shr(28, x), shr(34, x)), shr(39, x)))
                            }
                            b := and(add(t1, or(and(c, d), and(e, or(c, d)))), M64)
                        }
                        // round 8j+7
                        {
                            let t1 := add(add(a, xor(h, and(f, xor(g, h)))), shr(128, v))
                            {
                                let x := mul(f, DUP)
                                t1 := add(t1, xor(xor(shr(14, x), shr(18, x)), shr(41, x)))
                            }
                            e := and(add(e, t1), M64)
                            {
                                let x := mul(b, DUP)
                                t1 := add(t1, xor(xor(shr(28, x), shr(34, x)), shr(39, x)))
                            }
                            a := and(add(t1, or(and(b, c), and(d, or(b, c)))), M64)
                        }
                    }
                }
                mstore(add(wk, 0xa00), and(add(mload(add(wk, 0xa00)), a), M64))
                mstore(add(wk, 0xa20), and(add(mload(add(wk, 0xa20)), b), M64))
                mstore(add(wk, 0xa40), and(add(mload(add(wk, 0xa40)), c), M64))
                mstore(add(wk, 0xa60), and(add(mload(add(wk, 0xa60)), d), M64))
                mstore(add(wk, 0xa80), and(add(mload(add(wk, 0xa80)), e), M64))
                mstore(add(wk, 0xaa0), and(add(mload(add(wk, 0xaa0)), f), M64))
                mstore(add(wk, 0xac0), and(add(mload(add(wk, 0xac0)), g), M64))
                mstore(add(wk, 0xae0), and(add(mload(add(wk, 0xae0)), h), M64))
            }

            // The digest is allocated first; the working memory after it is temporary and is not
            // allocated: W[t] + K[t] (40 pairs), the round constants K (40 pairs), the state H (8 words)
            // and two blocks for the padded tail.
            digest := mload(0x40)
            mstore(0x40, add(digest, 0x60))
            let w := add(digest, 0x60)
            let k := add(w, 0x500)
            let st := add(k, 0x500)
            let tail := add(st, 0x100)

            // K[0..79], K[2i] | K[2i + 1] << 128: the first 64 bits of the fractional parts of the cube
            // roots of the first 80 primes.
            mstore(k, 0x7137449123ef65cd0000000000000000428a2f98d728ae22)
            mstore(add(k, 0x20), 0xe9b5dba58189dbbc0000000000000000b5c0fbcfec4d3b2f)
            mstore(add(k, 0x40), 0x59f111f1b605d01900000000000000003956c25bf348b538)
            mstore(add(k, 0x60), 0xab1c5ed5da6d81180000000000000000923f82a4af194f9b)
            mstore(add(k, 0x80), 0x12835b0145706fbe0000000000000000d807aa98a3030242)
            mstore(add(k, 0xa0), 0x550c7dc3d5ffb4e20000000000000000243185be4ee4b28c)
            mstore(add(k, 0xc0), 0x80deb1fe3b1696b1000000000000000072be5d74f27b896f)
            mstore(add(k, 0xe0), 0xc19bf174cf69269400000000000000009bdc06a725c71235)
            mstore(add(k, 0x100), 0xefbe4786384f25e30000000000000000e49b69c19ef14ad2)
            mstore(add(k, 0x120), 0x240ca1cc77ac9c6500000000000000000fc19dc68b8cd5b5)
            mstore(add(k, 0x140), 0x4a7484aa6ea6e48300000000000000002de92c6f592b0275)
            mstore(add(k, 0x160), 0x76f988da831153b500000000000000005cb0a9dcbd41fbd4)
            mstore(add(k, 0x180), 0xa831c66d2db432100000000000000000983e5152ee66dfab)
            mstore(add(k, 0x1a0), 0xbf597fc7beef0ee40000000000000000b00327c898fb213f)
            mstore(add(k, 0x1c0), 0xd5a79147930aa7250000000000000000c6e00bf33da88fc2)
            mstore(add(k, 0x1e0), 0x142929670a0e6e70000000000000000006ca6351e003826f)
            mstore(add(k, 0x200), 0x2e1b21385c26c926000000000000000027b70a8546d22ffc)
            mstore(add(k, 0x220), 0x53380d139d95b3df00000000000000004d2c6dfc5ac42aed)
            mstore(add(k, 0x240), 0x766a0abb3c77b2a80000000000000000650a73548baf63de)
            mstore(add(k, 0x260), 0x92722c851482353b000000000000000081c2c92e47edaee6)
            mstore(add(k, 0x280), 0xa81a664bbc4230010000000000000000a2bfe8a14cf10364)
            mstore(add(k, 0x2a0), 0xc76c51a30654be300000000000000000c24b8b70d0f89791)
            mstore(add(k, 0x2c0), 0xd69906245565a9100000000000000000d192e819d6ef5218)
            mstore(add(k, 0x2e0), 0x106aa07032bbd1b80000000000000000f40e35855771202a)
            mstore(add(k, 0x300), 0x1e376c085141ab53000000000000000019a4c116b8d2d0c8)
            mstore(add(k, 0x320), 0x34b0bcb5e19b48a800000000000000002748774cdf8eeb99)
            mstore(add(k, 0x340), 0x4ed8aa4ae3418acb0000000000000000391c0cb3c5c95a63)
            mstore(add(k, 0x360), 0x682e6ff3d6b2b8a300000000000000005b9cca4f7763e373)
            mstore(add(k, 0x380), 0x78a5636f43172f600000000000000000748f82ee5defb2fc)
            mstore(add(k, 0x3a0), 0x8cc702081a6439ec000000000000000084c87814a1f0ab72)
            mstore(add(k, 0x3c0), 0xa4506cebde82bde9000000000000000090befffa23631e28)
            mstore(add(k, 0x3e0), 0xc67178f2e372532b0000000000000000bef9a3f7b2c67915)
            mstore(add(k, 0x400), 0xd186b8c721c0c2070000000000000000ca273eceea26619c)
            mstore(add(k, 0x420), 0xf57d4f7fee6ed1780000000000000000eada7dd6cde0eb1e)
            mstore(add(k, 0x440), 0x0a637dc5a2c898a6000000000000000006f067aa72176fba)
            mstore(add(k, 0x460), 0x1b710b35131c471b0000000000000000113f9804bef90dae)
            mstore(add(k, 0x480), 0x32caab7b40c72493000000000000000028db77f523047d84)
            mstore(add(k, 0x4a0), 0x431d67c49c100d4c00000000000000003c9ebe0a15c9bebc)
            mstore(add(k, 0x4c0), 0x597f299cfc657e2a00000000000000004cc5d4becb3e42b6)
            mstore(add(k, 0x4e0), 0x6c44198c4a47581700000000000000005fcb6fab3ad6faec)
            // SHA-384 initial value: the first 64 bits of the fractional parts of the square roots of
            // the 9th to 16th primes.
            mstore(st, 0xcbbb9d5dc1059ed8)
            mstore(add(st, 0x20), 0x629a292a367cd507)
            mstore(add(st, 0x40), 0x9159015a3070dd17)
            mstore(add(st, 0x60), 0x152fecd8f70e5939)
            mstore(add(st, 0x80), 0x67332667ffc00b31)
            mstore(add(st, 0xa0), 0x8eb44a8768581511)
            mstore(add(st, 0xc0), 0xdb0c2e0d64f98fa7)
            mstore(add(st, 0xe0), 0x47b5481dbefa4fa4)

            let full := add(start, and(length, not(0x7f)))
            for { let chunk := start } lt(chunk, full) { chunk := add(chunk, 0x80) } {
                expand(chunk, w)
                rounds(w)
            }

            // Padding: the tail (under 128 bytes), 0x80, zeros, and the 128-bit big-endian bit length
            // in the last 16 bytes of the last block; two blocks if the tail leaves under 17 bytes.
            let rest := and(length, 0x7f)
            mstore(tail, 0)
            mstore(add(tail, 0x20), 0)
            mstore(add(tail, 0x40), 0)
            mstore(add(tail, 0x60), 0)
            mstore(add(tail, 0x80), 0)
            mstore(add(tail, 0xa0), 0)
            mstore(add(tail, 0xc0), 0)
            mstore(add(tail, 0xe0), 0)
            mcopy(tail, full, rest)
            mstore8(add(tail, rest), 0x80)
            let last := tail
            if gt(rest, 111) { last := add(tail, 0x80) }
            // The bit length fits in the last word's low 16 bytes, which are still zero.
            mstore(add(last, 0x60), or(mload(add(last, 0x60)), shl(3, length)))
            expand(tail, w)
            rounds(w)
            if gt(rest, 111) {
                expand(last, w)
                rounds(w)
            }

            // The digest: H0..H5, big-endian.
            mstore(digest, 48)
            mstore(
                add(digest, 0x20),
                or(
                    or(shl(192, mload(st)), shl(128, mload(add(st, 0x20)))),
                    or(shl(64, mload(add(st, 0x40))), mload(add(st, 0x60)))
                )
            )
            mstore(add(digest, 0x40), or(shl(192, mload(add(st, 0x80))), shl(128, mload(add(st, 0xa0)))))
        }
    }
}
