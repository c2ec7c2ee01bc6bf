// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {P384} from "../src/nitro/P384.sol";

/// @notice forge's `parseJson` cheatcode (ABI-encoded JSON values), not in the shared Vm subset.
interface VmJson {
    function keyExistsJson(string calldata json, string calldata key) external view returns (bool);
    function parseJsonUint(string calldata json, string calldata key) external pure returns (uint256);
    function parseJsonBool(string calldata json, string calldata key) external pure returns (bool);
    function parseJsonBytes(string calldata json, string calldata key) external pure returns (bytes memory);
}

/// @notice Exposes the library through external calls, so tests see reverts and measure gas.
contract P384Harness {
    function verify(bytes memory digest, bytes memory signature, bytes memory publicKey, bytes memory hint)
        external
        view
        returns (bool)
    {
        return P384.verify(digest, signature, publicKey, hint);
    }

    function verifyGas(bytes memory digest, bytes memory signature, bytes memory publicKey, bytes memory hint)
        external
        view
        returns (bool ok, uint256 gasUsed)
    {
        gasUsed = gasleft();
        ok = P384.verify(digest, signature, publicKey, hint);
        gasUsed -= gasleft();
    }

    function isValidPublicKey(bytes memory publicKey) external pure returns (bool) {
        return P384.isValidPublicKey(publicKey);
    }

    function combinationIsInfinity(uint256[12] memory input) external view returns (bool) {
        return P384.combinationIsInfinity(input);
    }
}

contract P384Test is Test {
    /// @dev One Wycheproof vector (fields in alphabetical order, as forge decodes JSON objects).
    struct Vector {
        bytes digest;
        bool expected;
        bytes hint;
        bytes msg;
        bytes publicKey;
        bytes signature;
        uint256 tcId;
    }

    string internal constant VECTORS = "test/data/wycheproof-ecdsa-p384-sha384-p1363.json";
    VmJson internal constant vmJson = VmJson(VM_ADDRESS);

    // Base point G and small multiples (SEC 2), as 48-byte coordinates.
    bytes internal constant G_X =
        hex"aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7";
    bytes internal constant G_Y =
        hex"3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f";
    bytes internal constant G2_X =
        hex"08d999057ba3d2d969260045c55b97f089025959a6f434d651d207d19fb96e9e4fe0e86ebe0e64f85b96a9c75295df61";
    bytes internal constant G2_Y =
        hex"8e80f1fa5b1b3cedb7bfe8dffd6dba74b275d875bc6cc43e904e505f256ab4255ffd43e94d39e22d61501e700a940e80";
    bytes internal constant G3_X =
        hex"077a41d4606ffa1464793c7e5fdc7d98cb9d3910202dcd06bea4f240d3566da6b408bbae5026580d02d7e5c70500c831";
    bytes internal constant G3_Y =
        hex"c995f7ca0b0c42837d0bbe9602a9fc998520b41c85115aa5f7684c0edc111eacc24abd6be4b5d298b65f28600a2f1df1";
    bytes internal constant P =
        hex"fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff";
    uint256 internal constant N_HIGH = 0xffffffffffffffffffffffffffffffffffffffffffffffff; // n >> 192
    uint256 internal constant N_LOW = 0xc7634d81f4372ddf581a0db248b0a77aecec196accc52973; // n mod 2^192

    // A valid signature whose point R has R.x = r + n (r = 2), built off-chain by choosing R and
    // solving for the public key; its hint sets flags bit 0.
    bytes internal constant RN_DIGEST =
        hex"8200cc26df1efdb2c7ccc9ab60f0942304db5b81a71ddf231129610a10c15ddf9f4bf05105f692e3d0d0b4f653ec42bf";
    bytes internal constant RN_SIGNATURE = hex"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002"
        hex"9531985d5d9dc9f81818e811892f902bd23f0824128b2f330c5c7fd0a6a3a4506513270e269e0d37f2a74de452e6b439";
    bytes internal constant RN_PUBLIC_KEY = hex"7febd6d8a2edb07c931a3d6d1f60a8ec7eaf219d03f58304c672b9f3bc41d026efd1a9c3ee2677eabfa8dea9e99632ad"
        hex"793aa316e84f7749cfdf4ca1590c004d90aa533a864ca779227aaf63b469261ea9c88f136357fbd862f49c327b0a21ea";
    bytes internal constant RN_HINT = hex"674db71d55d1948b3c7d4c562474ad137465f9605bc7c67cb9fab6bf9f3ca2ef87d56a8d920568aa26f7eaf13ee70a45"
        hex"03" hex"0d1d23d422ef760777fda05e8ef8dbecbd2c524c154f814a"
        hex"c0b751ac70fe311b86815085bba5151ac0bcd1512e640031";

    // A valid signature (high-S, v < 0: flags 0x02) made with a fresh key off-chain, with its hint:
    // the base of the mutation and fuzz tests (parsing the JSON file per fuzz run would be slow).
    bytes internal constant VALID_DIGEST =
        hex"21a208ef957a8a3629dddbf2347194a6416550de1d5ed740b428ab9a22dc52023d4fcdcbb3e344e74dcd47393069fb7c";
    bytes internal constant VALID_SIGNATURE = hex"3a246d38412c1d58efa55b1e5f99cfdb58e7c9c216a6789381f24a71af1e920be5d4ea70b104b1dd0924bd39b69a9d56"
        hex"a4066b4fa67b05e374fbd1dd6abc5ed71d4146de71f397573a19cd466cc1807b125188abaf9f5ee5c5c099e1c487804c";
    bytes internal constant VALID_PUBLIC_KEY = hex"daa2d7eb022b963383a1e75e7823825d2f4fff8290b15275eaaec35f9f9e8c1b852d4ca01610f6cc21af77b9c8b6b486"
        hex"882ef66e68edf39b41d69b972b8110cbfebbb200209bf6188e8de4bd2672acb47959bc44388bb216e43dd1f25cf08fec";
    bytes internal constant VALID_HINT = hex"a329a6c82be3d98f29a9bb8c43d73383fbff8b34ecd33124898bbdb40ec92220cc6b4ca3950c4d71e1efe3a5420902c6"
        hex"0227e23a2a6b08df3c92d916f97c467fdb0f36a5b84b5184dcc01521c1a59bd6d9507017de6e1182e8cbb35a32488435" hex"55";

    P384Harness internal harness;

    function setUp() public {
        harness = new P384Harness();
    }

    /// @dev Reads the vectors field by field with explicit types (forge guesses the type of a
    /// whole object's hex strings from their length, e.g. bytes32 for a 32-byte message).
    function _vectors() internal view returns (Vector[] memory all) {
        string memory json = vm.readFile(VECTORS);
        uint256 count;
        while (vmJson.keyExistsJson(json, string.concat("$.vectors[", vm.toString(count), "]"))) {
            count++;
        }
        all = new Vector[](count);
        for (uint256 i = 0; i < count; i++) {
            string memory at = string.concat("$.vectors[", vm.toString(i), "].");
            all[i] = Vector({
                digest: vmJson.parseJsonBytes(json, string.concat(at, "digest")),
                expected: vmJson.parseJsonBool(json, string.concat(at, "expected")),
                hint: vmJson.parseJsonBytes(json, string.concat(at, "hint")),
                msg: vmJson.parseJsonBytes(json, string.concat(at, "msg")),
                publicKey: vmJson.parseJsonBytes(json, string.concat(at, "publicKey")),
                signature: vmJson.parseJsonBytes(json, string.concat(at, "signature")),
                tcId: vmJson.parseJsonUint(json, string.concat(at, "tcId"))
            });
        }
    }

    /// @dev The embedded valid vector, to mutate.
    function _validVector() internal pure returns (Vector memory v) {
        v.digest = bytes.concat(VALID_DIGEST);
        v.expected = true;
        v.hint = bytes.concat(VALID_HINT);
        v.publicKey = bytes.concat(VALID_PUBLIC_KEY);
        v.signature = bytes.concat(VALID_SIGNATURE);
    }

    function _verify(Vector memory v) internal view returns (bool) {
        return harness.verify(v.digest, v.signature, v.publicKey, v.hint);
    }

    // ---------------------------------------------------------------- Wycheproof

    function test_wycheproofVectors() public view {
        Vector[] memory all = _vectors();
        assertGe(all.length, 1, "vectors");
        uint256 validCount;
        for (uint256 i = 0; i < all.length; i++) {
            Vector memory v = all[i];
            string memory id = vm.toString(v.tcId);
            if (v.expected) {
                validCount++;
                assertEq(v.hint.length, 97, id);
            }
            assertEq(_verify(v), v.expected, id);
            if (!v.expected) {
                // No hint makes an invalid signature pass: neither another signature's hint nor zeros.
                assertFalse(harness.verify(v.digest, v.signature, v.publicKey, VALID_HINT), id);
                assertFalse(harness.verify(v.digest, v.signature, v.publicKey, new bytes(97)), id);
            }
        }
        assertGe(validCount, 1, "valid vectors");
    }

    function test_largeXCoordinate() public view {
        assertTrue(harness.verify(RN_DIGEST, RN_SIGNATURE, RN_PUBLIC_KEY, RN_HINT), "R.x = r + n");
        bytes memory hint = RN_HINT;
        hint[48] = 0x02; // R.x = r: not on the curve with this R.y
        assertFalse(harness.verify(RN_DIGEST, RN_SIGNATURE, RN_PUBLIC_KEY, hint), "R.x = r");
    }

    function test_gasPerVerify() public {
        Vector memory v = _validVector();
        (bool ok, uint256 gasUsed) = harness.verifyGas(v.digest, v.signature, v.publicKey, v.hint);
        assertTrue(ok, "valid");
        emit log_named_uint("P384.verify gas", gasUsed);
        // A regression bound (gas is deterministic), well above the figure reported in the docs.
        assertLe(gasUsed, 3_000_000, "verify gas");
    }

    // ---------------------------------------------------------------- mutations

    function _flipEach(Vector memory v, uint256 field) internal view {
        bytes memory b = field == 0 ? v.hint : field == 1 ? v.digest : field == 2 ? v.signature : v.publicKey;
        for (uint256 i = 0; i < b.length; i++) {
            bytes1 original = b[i];
            b[i] = original ^ 0x01;
            assertFalse(_verify(v), string.concat("field ", vm.toString(field), " byte ", vm.toString(i)));
            b[i] = original ^ 0x80;
            assertFalse(_verify(v), string.concat("field ", vm.toString(field), " byte ", vm.toString(i)));
            b[i] = original;
        }
        assertTrue(_verify(v), "restored");
    }

    function test_everyHintByteMatters() public view {
        _flipEach(_validVector(), 0);
    }

    function test_everyDigestByteMatters() public view {
        _flipEach(_validVector(), 1);
    }

    function test_everySignatureByteMatters() public view {
        _flipEach(_validVector(), 2);
    }

    function test_everyPublicKeyByteMatters() public view {
        _flipEach(_validVector(), 3);
    }

    function test_malformedHints() public view {
        Vector memory v = _validVector();
        bytes memory hint = v.hint;
        // v = 0
        bytes memory zeroV = bytes.concat(hint);
        for (uint256 i = 49; i < 73; i++) {
            zeroV[i] = 0;
        }
        assertFalse(harness.verify(v.digest, v.signature, v.publicKey, zeroV), "v = 0");
        // Undefined flag bits, alone or with the right ones.
        for (uint256 bit = 2; bit < 8; bit++) {
            bytes memory h = bytes.concat(hint);
            h[48] = hint[48] | bytes1(uint8(1 << bit));
            assertFalse(harness.verify(v.digest, v.signature, v.publicKey, h), "flag bit");
        }
        // Every other flag combination fails, also (−v, −z): it would be the same decomposition, but
        // bit 2 is reserved so that a signature has exactly one hint (as in nitro-hints' checker).
        for (uint8 flags = 0; flags < 8; flags++) {
            if (bytes1(flags) == hint[48]) continue;
            bytes memory h = bytes.concat(hint);
            h[48] = bytes1(flags);
            assertFalse(harness.verify(v.digest, v.signature, v.publicKey, h), "flags");
        }
        // R.y replaced by p − R.y (the other point with this x).
        bytes memory negR = bytes.concat(hint);
        bytes memory y = _sub48(P, _slice(hint, 0, 48));
        for (uint256 i = 0; i < 48; i++) {
            negR[i] = y[i];
        }
        assertFalse(harness.verify(v.digest, v.signature, v.publicKey, negR), "-R");
        // R.y + p (not reduced).
        // Wrong lengths.
        assertFalse(harness.verify(v.digest, v.signature, v.publicKey, bytes.concat(hint, hex"00")), "hint 98");
        assertFalse(harness.verify(v.digest, v.signature, v.publicKey, _slice(hint, 0, 96)), "hint 96");
        assertFalse(harness.verify(bytes.concat(v.digest, hex"00"), v.signature, v.publicKey, hint), "digest 49");
        assertFalse(harness.verify(_slice(v.digest, 0, 32), v.signature, v.publicKey, hint), "digest 32");
        assertFalse(harness.verify(v.digest, bytes.concat(v.signature, hex"00"), v.publicKey, hint), "sig 97");
        assertFalse(harness.verify(v.digest, _slice(v.signature, 0, 95), v.publicKey, hint), "sig 95");
        assertFalse(harness.verify(v.digest, v.signature, bytes.concat(hex"04", v.publicKey), hint), "key 97");
        assertFalse(harness.verify(v.digest, v.signature, v.publicKey, ""), "no hint");
    }

    function test_signatureRange() public view {
        Vector memory v = _validVector();
        bytes memory n = bytes.concat(bytes24(uint192(N_HIGH)), bytes24(uint192(N_LOW)));
        bytes memory zero = new bytes(48);
        bytes memory r = _slice(v.signature, 0, 48);
        bytes memory s = _slice(v.signature, 48, 96);
        assertFalse(harness.verify(v.digest, bytes.concat(zero, s), v.publicKey, v.hint), "r = 0");
        assertFalse(harness.verify(v.digest, bytes.concat(r, zero), v.publicKey, v.hint), "s = 0");
        assertFalse(harness.verify(v.digest, bytes.concat(n, s), v.publicKey, v.hint), "r = n");
        assertFalse(harness.verify(v.digest, bytes.concat(r, n), v.publicKey, v.hint), "s = n");
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_randomInputsNeverVerify(bytes32 d0, bytes16 d1, bytes32[3] memory sig, bytes32[4] memory h)
        public
        view
    {
        Vector memory v = _validVector();
        bytes memory digest = abi.encodePacked(d0, d1);
        bytes memory signature = abi.encodePacked(sig[0], sig[1], sig[2]);
        bytes memory hint = _slice(abi.encodePacked(h[0], h[1], h[2], h[3]), 0, 97);
        assertFalse(harness.verify(digest, signature, v.publicKey, hint), "random");
        // The valid signature with a random hint, and a random signature with the valid hint.
        assertFalse(harness.verify(v.digest, v.signature, v.publicKey, hint), "random hint");
        assertFalse(harness.verify(v.digest, signature, v.publicKey, v.hint), "random signature");
        assertFalse(harness.verify(digest, v.signature, v.publicKey, v.hint), "random digest");
    }

    /// @dev Inputs of any length and content return false, never revert (the harness call would
    /// bubble a revert up and fail the test).
    function testFuzz_arbitraryBytesNeverVerify(
        bytes memory digest,
        bytes memory signature,
        bytes memory publicKey,
        bytes memory hint
    ) public view {
        assertFalse(harness.verify(digest, signature, publicKey, hint), "arbitrary");
        assertFalse(harness.verify(VALID_DIGEST, signature, VALID_PUBLIC_KEY, hint), "arbitrary signature and hint");
    }

    /// @dev A random hint that keeps the signature's R and only changes v and z never verifies.
    function testFuzz_randomDecompositionNeverVerifies(uint192 a, uint192 b, uint8 flags) public view {
        Vector memory v = _validVector();
        bytes memory hint = bytes.concat(_slice(v.hint, 0, 48), bytes1(flags & 7), bytes24(a), bytes24(b));
        vm.assume(keccak256(hint) != keccak256(v.hint));
        assertFalse(harness.verify(v.digest, v.signature, v.publicKey, hint), "decomposition");
    }

    // ---------------------------------------------------------------- curve arithmetic

    function _point(bytes memory x, bytes memory y) internal pure returns (uint256[4] memory pt) {
        (pt[0], pt[1]) = _split(x);
        (pt[2], pt[3]) = _split(y);
    }

    function _split(bytes memory b48) internal pure returns (uint256 hi, uint256 lo) {
        assembly {
            hi := shr(128, mload(add(b48, 0x20)))
            lo := mload(add(b48, 0x30))
        }
    }

    /// @dev a·P1 + b·P2 − c·G − d·G' == O through the library.
    function _isO(uint256[4] memory p1, uint256[4] memory p2, uint256 a, uint256 b, uint256 c, uint256 d)
        internal
        view
        returns (bool)
    {
        uint256[12] memory input = [p1[0], p1[1], p1[2], p1[3], p2[0], p2[1], p2[2], p2[3], a, b, c, d];
        return harness.combinationIsInfinity(input);
    }

    function test_curveConstants() public view {
        assertTrue(harness.isValidPublicKey(bytes.concat(G_X, G_Y)), "G on curve");
        assertTrue(harness.isValidPublicKey(bytes.concat(G2_X, G2_Y)), "2G on curve");
        assertTrue(harness.isValidPublicKey(bytes.concat(G3_X, G3_Y)), "3G on curve");
        uint256[4] memory g = _point(G_X, G_Y);
        // n·G = O through the −G and −G' table entries (n = N_LOW + N_HIGH·2^192): checks G' too.
        assertTrue(_isO(g, g, 0, 0, N_LOW, N_HIGH), "n.G");
        assertFalse(_isO(g, g, 0, 0, N_LOW - 1, N_HIGH), "(n-1).G");
        assertFalse(_isO(g, g, 0, 0, N_LOW + 1, N_HIGH), "(n+1).G");
        // (n + 1)·G = G: G − (n + 1)·G = O, and G − (n − 1)·G = 2G.
        assertTrue(_isO(g, g, 1, 0, N_LOW + 1, N_HIGH), "G - (n+1).G");
        assertFalse(_isO(g, g, 1, 0, N_LOW - 1, N_HIGH), "G - (n-1).G");
        // 2^192·G = G' and 2^191·(2G) = G'.
        assertTrue(_isO(_point(G2_X, G2_Y), g, 1 << 191, 0, 0, 1), "2^191.2G");
        assertTrue(_isO(g, g, 0, 0, 0, 0), "empty sum");
    }

    function test_knownMultiples() public view {
        uint256[4] memory g = _point(G_X, G_Y);
        uint256[4] memory g2 = _point(G2_X, G2_Y);
        uint256[4] memory g3 = _point(G3_X, G3_Y);
        uint256[4] memory minusG = _point(G_X, _sub48(P, G_Y));
        // G + G = 2G (P1 = P2 makes the table's P1 + P2 a doubling).
        assertTrue(_isO(g, g, 1, 1, 2, 0), "G + G = 2G");
        assertTrue(_isO(g2, g, 1, 0, 2, 0), "2G");
        assertTrue(_isO(g3, g, 1, 0, 3, 0), "3G");
        assertTrue(_isO(g2, g, 1, 1, 3, 0), "2G + G = 3G");
        assertTrue(_isO(g3, g2, 2, 3, 12, 0), "2.3G + 3.2G = 12G");
        assertFalse(_isO(g3, g2, 2, 3, 11, 0), "not 11G");
        // P2 = −P1: P1 + P2 is the point at infinity in the table.
        assertTrue(_isO(g, minusG, 5, 3, 2, 0), "5G - 3G = 2G");
        assertTrue(_isO(g, minusG, 7, 7, 0, 0), "7G - 7G = O");
        assertTrue(_isO(minusG, g, 1, 0, 0, 0) == false, "-G alone");
        // P1 = G, P2 = −G: table entries P1 + (−G) = O and P2 + ... exercise every exceptional path.
        assertTrue(_isO(g, minusG, 3, 1, 1, 0) == false, "3G - G - G != O");
        assertTrue(_isO(g, minusG, 3, 1, 2, 0), "3G - G - 2G = O");
    }

    function testFuzz_linearity(uint192 a, uint192 b) public view {
        uint256[4] memory g = _point(G_X, G_Y);
        uint256[4] memory g3 = _point(G3_X, G3_Y);
        uint256 sum = uint256(a) + uint256(b);
        // a·G + b·G = (a + b)·G
        assertTrue(_isO(g, g, a, b, sum & type(uint192).max, sum >> 192), "a.G + b.G");
        assertFalse(_isO(g, g, a, b, (sum + 1) & type(uint192).max, (sum + 1) >> 192), "off by one");
        // a·G + b·(3G) = (a + 3b)·G
        sum = uint256(a) + 3 * uint256(b);
        assertTrue(_isO(g, g3, a, b, sum & type(uint192).max, sum >> 192), "a.G + b.3G");
    }

    /// @dev All-ones scalars: their signed-digit forms carry into a 193rd digit.
    function test_extremeScalars() public view {
        uint256[4] memory g = _point(G_X, G_Y);
        uint256[4] memory g3 = _point(G3_X, G3_Y);
        uint256 max = type(uint192).max;
        // (2^192 − 1)·G + (2^192 − 1)·G = (2^193 − 2)·G
        assertTrue(_isO(g, g, max, max, max - 1, 1), "max.G + max.G");
        assertFalse(_isO(g, g, max, max, max, 1), "off by one");
        // (2^192 − 1)·G + (2^192 − 1)·3G = (2^194 − 4)·G
        assertTrue(_isO(g, g3, max, max, max - 3, 3), "max.G + max.3G");
        // (2^384 − 1)·G = (2^384 − 1 − n)·G
        assertTrue(_isO(g, g, 0x389cb27e0bc8d220a7e5f24db74f58851313e695333ad68c, 0, max, max), "(2^384 - 1).G");
        assertFalse(_isO(g, g, 0x389cb27e0bc8d220a7e5f24db74f58851313e695333ad68d, 0, max, max), "(2^384).G");
    }

    function test_isValidPublicKey() public view {
        assertTrue(harness.isValidPublicKey(bytes.concat(G_X, _sub48(P, G_Y))), "-G");
        assertFalse(harness.isValidPublicKey(bytes.concat(G_X, G_X)), "off curve");
        assertFalse(harness.isValidPublicKey(new bytes(96)), "zeros");
        assertFalse(harness.isValidPublicKey(bytes.concat(G_X, G_Y, hex"00")), "97 bytes");
        assertFalse(harness.isValidPublicKey(bytes.concat(hex"04", G_X, G_Y)), "0x04 prefix");
        assertFalse(harness.isValidPublicKey(bytes.concat(G_X, _slice(G_Y, 0, 47))), "95 bytes");
        assertFalse(harness.isValidPublicKey(bytes.concat(P, G_Y)), "x = p");
        assertFalse(harness.isValidPublicKey(bytes.concat(G_X, P)), "y = p");
    }

    function testFuzz_randomKeysAreRejected(bytes32[3] memory k) public view {
        // A random (x, y) lies on the curve with probability about 2^-384.
        assertFalse(harness.isValidPublicKey(abi.encodePacked(k[0], k[1], k[2])), "random key");
    }

    // ---------------------------------------------------------------- helpers

    function _slice(bytes memory b, uint256 from, uint256 to) internal pure returns (bytes memory out) {
        out = new bytes(to - from);
        for (uint256 i = from; i < to; i++) {
            out[i - from] = b[i];
        }
    }

    /// @dev a − b for 48-byte big-endian a ≥ b.
    function _sub48(bytes memory a, bytes memory b) internal pure returns (bytes memory out) {
        out = new bytes(48);
        uint256 borrow;
        for (uint256 i = 48; i > 0; i--) {
            uint256 d = uint256(uint8(a[i - 1])) + 256 - uint256(uint8(b[i - 1])) - borrow;
            out[i - 1] = bytes1(uint8(d & 0xff));
            borrow = d < 256 ? 1 : 0;
        }
        require(borrow == 0, "negative");
    }
}
