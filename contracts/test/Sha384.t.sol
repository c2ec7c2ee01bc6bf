// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {Sha384} from "../src/nitro/Sha384.sol";

/// @notice The cheatcodes this test needs beyond the shared `Vm` subset.
interface Sha384Vm {
    function readFileBinary(string calldata path) external view returns (bytes memory);
    function parseJsonTypeArray(string calldata json, string calldata key, string calldata typeDescription)
        external
        pure
        returns (bytes memory);
}

/// @notice External entry points: for `expectRevert` (a library revert must cross a call) and gas figures.
contract Sha384Harness {
    function hash(bytes memory data) external pure returns (bytes memory) {
        return Sha384.hash(data);
    }

    function hashRange(bytes memory data, uint256 offset, uint256 length) external pure returns (bytes memory) {
        return Sha384.hash(data, offset, length);
    }

    /// @dev Gas of the library call alone (no calldata decoding or return encoding).
    function gasOf(bytes memory data) external view returns (uint256 used) {
        uint256 before = gasleft();
        Sha384.hash(data);
        used = before - gasleft();
    }
}

contract Sha384Test is Test {
    /// @dev One record of test/data/sha384-vectors.json.
    struct HashVector {
        bytes digest;
        bytes msg;
    }

    /// @dev The digest of one real attestation document of ../shared/vectors/nitro/.
    struct DocumentDigest {
        bytes digest;
        string file;
    }

    /// @dev One record of the Wycheproof ECDSA P-384/SHA-384 file; only `digest` and `msg` matter here.
    struct WycheproofVector {
        bytes digest;
        bool expected;
        bytes hint;
        bytes msg;
        bytes publicKey;
        bytes signature;
        uint256 tcId;
    }

    string internal constant VECTORS = "test/data/sha384-vectors.json";
    string internal constant DOCUMENTS = "../../shared/vectors/nitro/";
    string internal constant WYCHEPROOF = "test/data/wycheproof-ecdsa-p384-sha384-p1363.json";
    /// @dev Explicit types: forge would otherwise read a 32-byte hex string as bytes32.
    string internal constant VECTOR_TYPE = "HashVector(bytes digest,bytes msg)";
    string internal constant DOCUMENT_TYPE = "DocumentDigest(bytes digest,string file)";
    string internal constant WYCHEPROOF_TYPE =
        "WycheproofVector(bytes digest,bool expected,bytes hint,bytes msg,bytes publicKey,bytes signature,uint256 tcId)";
    Sha384Vm internal constant VM_EXTRA = Sha384Vm(VM_ADDRESS);

    Sha384Harness internal harness;

    function setUp() public {
        harness = new Sha384Harness();
    }

    /// FIPS 180-4 / NIST CSRC example values for SHA-384.
    function test_nistExamples() public pure {
        assertEq(
            Sha384.hash(""),
            hex"38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b",
            "empty message"
        );
        assertEq(
            Sha384.hash("abc"),
            hex"cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            "abc"
        );
        assertEq(
            Sha384.hash(
                "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
            ),
            hex"09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039",
            "896-bit two-block message"
        );
    }

    /// Every length 0..300 (all padding boundaries) and 1000, 4700, 10000 bytes, against hashlib;
    /// each also hashed as a range inside a larger buffer with junk on both sides.
    function test_vectorFile() public view {
        HashVector[] memory vectors =
            abi.decode(VM_EXTRA.parseJsonTypeArray(vm.readFile(VECTORS), ".vectors", VECTOR_TYPE), (HashVector[]));
        assertEq(vectors.length, 304, "vector count");
        for (uint256 i = 0; i < vectors.length; i++) {
            bytes memory message = vectors[i].msg;
            string memory label = string.concat("length ", vm.toString(message.length));
            assertEq(Sha384.hash(message), vectors[i].digest, label);
            bytes memory framed = bytes.concat(bytes(vm.toString(i)), message, hex"80ff00");
            assertEq(Sha384.hash(framed, framed.length - message.length - 3, message.length), vectors[i].digest, label);
        }
    }

    /// The real AWS Nitro attestation documents (4.4 to 4.9 KB each), read in place from shared/.
    function test_realDocuments() public view {
        DocumentDigest[] memory documents = abi.decode(
            VM_EXTRA.parseJsonTypeArray(vm.readFile(VECTORS), ".documents", DOCUMENT_TYPE), (DocumentDigest[])
        );
        assertGe(documents.length, 8, "document count");
        for (uint256 i = 0; i < documents.length; i++) {
            bytes memory document = VM_EXTRA.readFileBinary(string.concat(DOCUMENTS, documents[i].file));
            assertEq(Sha384.hash(document), documents[i].digest, documents[i].file);
        }
    }

    /// The Wycheproof ECDSA file's `digest` is SHA-384(msg) computed by the Rust helper (nitro-hints,
    /// sha2 crate): a second, independent source.
    function test_wycheproofDigests() public view {
        WycheproofVector[] memory vectors = abi.decode(
            VM_EXTRA.parseJsonTypeArray(vm.readFile(WYCHEPROOF), ".vectors", WYCHEPROOF_TYPE), (WycheproofVector[])
        );
        assertGe(vectors.length, 100, "vector count");
        for (uint256 i = 0; i < vectors.length; i++) {
            assertEq(
                Sha384.hash(vectors[i].msg), vectors[i].digest, string.concat("tcId ", vm.toString(vectors[i].tcId))
            );
        }
    }

    /// The digest is a fresh 48-byte allocation; the input and memory allocated later stay intact.
    function test_memoryDiscipline() public pure {
        bytes memory data = "abc";
        bytes memory digest = Sha384.hash(data);
        bytes memory after_ = new bytes(4000);
        for (uint256 i = 0; i < after_.length; i++) {
            after_[i] = 0xaa;
        }
        assertEq(digest.length, 48, "digest length");
        assertEq(
            digest,
            hex"cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            "digest intact"
        );
        assertEq(data, "abc", "input intact");
        uint256 freePointer;
        uint256 digestAt;
        assembly ("memory-safe") {
            freePointer := mload(0x40)
            digestAt := digest
        }
        assertLe(digestAt + 0x60, freePointer, "digest allocated");
    }

    /// Hashing a range in place equals hashing a copy of it.
    function testFuzz_rangeEqualsCopy(bytes memory data, uint256 offset, uint256 length) public pure {
        offset = bound(offset, 0, data.length);
        length = bound(length, 0, data.length - offset);
        bytes memory copy = new bytes(length);
        for (uint256 i = 0; i < length; i++) {
            copy[i] = data[offset + i];
        }
        assertEq(Sha384.hash(data, offset, length), Sha384.hash(copy), "range vs copy");
    }

    /// Long inputs (many full blocks read in place) as ranges: equal to hashing the copy.
    function testFuzz_longRangeEqualsCopy(uint256 seed, uint256 offset, uint256 length) public pure {
        bytes memory data = new bytes(bound(seed, 0, 2000) + 300);
        for (uint256 i = 0; i < data.length; i += 32) {
            bytes32 word = keccak256(abi.encode(seed, i));
            assembly ("memory-safe") {
                mstore(add(add(data, 0x20), i), word)
            }
        }
        offset = bound(offset, 0, data.length);
        length = bound(length, 0, data.length - offset);
        bytes memory copy = new bytes(length);
        for (uint256 i = 0; i < length; i++) {
            copy[i] = data[offset + i];
        }
        assertEq(Sha384.hash(data, offset, length), Sha384.hash(copy), "range vs copy");
    }

    /// A range reaching past the data reverts with Sha384RangeOutOfBounds, overflowing ones included.
    function testFuzz_outOfRangeReverts(bytes memory data, uint256 offset, uint256 length) public {
        vm.assume(offset > data.length || length > data.length - offset);
        vm.expectRevert(abi.encodeWithSelector(Sha384.Sha384RangeOutOfBounds.selector, offset, length, data.length));
        harness.hashRange(data, offset, length);
    }

    function test_outOfRangeEdges() public {
        bytes memory data = new bytes(10);
        assertEq(harness.hashRange(data, 10, 0), Sha384.hash(""), "empty range at the end");
        uint256[3][4] memory cases =
            [[uint256(11), 0, 10], [uint256(0), 11, 10], [uint256(5), 6, 10], [type(uint256).max, 2, 10]];
        for (uint256 i = 0; i < cases.length; i++) {
            vm.expectRevert(
                abi.encodeWithSelector(Sha384.Sha384RangeOutOfBounds.selector, cases[i][0], cases[i][1], cases[i][2])
            );
            harness.hashRange(data, cases[i][0], cases[i][1]);
        }
        vm.expectRevert(
            abi.encodeWithSelector(Sha384.Sha384RangeOutOfBounds.selector, 1, type(uint256).max, uint256(10))
        );
        harness.hashRange(data, 1, type(uint256).max);
    }

    /// Gas figures for docs/benchmarks.md (not asserted): per block, a 1 KB certificate TBS and a
    /// 4.7 KB COSE Sig_structure.
    function test_gasReport() public {
        uint256 oneBlock = harness.gasOf(new bytes(100));
        uint256 elevenBlocks = harness.gasOf(new bytes(100 + 10 * 128));
        emit log_named_uint("gas, 100 B (1 block)", oneBlock);
        emit log_named_uint("gas per extra 128-byte block", (elevenBlocks - oneBlock) / 10);
        emit log_named_uint("gas, 1 KB (1024 B, 9 blocks)", harness.gasOf(new bytes(1024)));
        emit log_named_uint("gas, 4.7 KB (4700 B, 37 blocks)", harness.gasOf(new bytes(4700)));
    }
}
