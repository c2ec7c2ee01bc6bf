// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {NitroVectors} from "./utils/NitroVectors.sol";
import {NitroDocument} from "../src/nitro/NitroDocument.sol";

/// @notice The cheatcodes these tests need beyond `Vm` (forge serves them at the same address).
interface DocumentVm {
    function readFileBinary(string calldata path) external view returns (bytes memory);
    function readFile(string calldata path) external view returns (string memory);
    function parseJson(string calldata json, string calldata key) external pure returns (bytes memory);
    function parseJsonKeys(string calldata json, string calldata key) external pure returns (string[] memory);
    function parseJsonString(string calldata json, string calldata key) external pure returns (string memory);
    function parseJsonUint(string calldata json, string calldata key) external pure returns (uint256);
    function parseJsonBool(string calldata json, string calldata key) external pure returns (bool);
    function parseJsonUintArray(string calldata json, string calldata key) external pure returns (uint256[] memory);
    function parseJsonBytes32Array(string calldata json, string calldata key) external pure returns (bytes32[] memory);
    function parseBytes(string calldata text) external pure returns (bytes memory);
    function parseUint(string calldata text) external pure returns (uint256);
}

/// @notice An external face for the library, so tests can expect reverts and catch them.
contract NitroDocumentHarness {
    /// @notice Parses `cose`; returns what the tests compare.
    function parse(bytes memory cose)
        external
        pure
        returns (NitroDocument.Document memory doc, bytes memory signed, bool debug, uint256 pcrs)
    {
        doc = NitroDocument.parse(cose);
        signed = NitroDocument.sigStructure(doc);
        debug = NitroDocument.isDebugMode(doc);
        pcrs = NitroDocument.pcrCount(doc);
    }
}

/// @notice A small CBOR writer (shortest-form heads) for crafting documents.
library DocumentCborWriter {
    function head(uint256 major, uint256 argument) internal pure returns (bytes memory) {
        uint8 m = uint8(major << 5);
        if (argument < 24) return abi.encodePacked(m | uint8(argument));
        if (argument <= 0xff) return abi.encodePacked(m | 24, uint8(argument));
        if (argument <= 0xffff) return abi.encodePacked(m | 25, uint16(argument));
        if (argument <= 0xffffffff) return abi.encodePacked(m | 26, uint32(argument));
        return abi.encodePacked(m | 27, uint64(argument));
    }

    function bstr(bytes memory value) internal pure returns (bytes memory) {
        return bytes.concat(head(2, value.length), value);
    }

    function tstr(bytes memory value) internal pure returns (bytes memory) {
        return bytes.concat(head(3, value.length), value);
    }

    function uint_(uint256 value) internal pure returns (bytes memory) {
        return head(0, value);
    }

    /// The COSE_Sign1 array with the ES384 protected header and an empty unprotected map.
    function cose(bytes memory payload, bytes memory signature) internal pure returns (bytes memory) {
        return bytes.concat(hex"8444a1013822a0", bstr(payload), bstr(signature));
    }
}

/// @notice The payload of a document as (key, encoded value) entries, to re-encode with changes.
struct DocumentEntries {
    bytes[] keys;
    bytes[] values;
}

contract NitroDocumentTest is Test, NitroVectors {
    DocumentVm internal constant dvm = DocumentVm(VM_ADDRESS);

    NitroDocumentHarness internal harness;

    function setUp() public {
        harness = new NitroDocumentHarness();
    }

    function _document(string memory name) internal view returns (bytes memory) {
        return dvm.readFileBinary(string.concat(VECTORS, name, ".cbor"));
    }

    function _facts(string memory name) internal view returns (string memory) {
        return dvm.readFile(string.concat(VECTORS, name, ".json"));
    }

    function _hex(string memory json, string memory key) internal pure returns (bytes memory) {
        return dvm.parseBytes(string.concat("0x", dvm.parseJsonString(json, key)));
    }

    /// JSON `null` comes back from parseJson as one zero word; a string as a longer encoding.
    function _isNull(string memory json, string memory key) internal pure returns (bool) {
        return dvm.parseJson(json, key).length == 32;
    }

    // ---------------------------------------------------------------------------------------
    // The real documents
    // ---------------------------------------------------------------------------------------

    function test_realDocumentsParseAndMatchTheirFacts() public view {
        string[8] memory names = _documentNames();
        for (uint256 i; i < names.length; ++i) {
            _checkRealDocument(names[i]);
        }
    }

    function _checkRealDocument(string memory name) internal view {
        bytes memory cose = _document(name);
        string memory json = _facts(name);
        (NitroDocument.Document memory doc, bytes memory signed, bool debug, uint256 pcrs) = harness.parse(cose);

        assertEq(doc.moduleId, bytes(dvm.parseJsonString(json, ".decoded.module_id")), name);
        assertEq(doc.timestampMs, dvm.parseJsonUint(json, ".decoded.timestamp_ms"), name);
        assertEq(doc.protectedHeader, _hex(json, ".decoded.protected_hex"), name);
        assertEq(doc.payload.length, dvm.parseJsonUint(json, ".decoded.payload_len"), name);
        assertEq(doc.signature.length, dvm.parseJsonUint(json, ".decoded.sig_len"), name);
        assertEq(doc.cabundle.length, dvm.parseJsonUint(json, ".decoded.cabundle_len"), name);
        assertEq(sha256(doc.cabundle[0]), AWS_ROOT_SHA256, name);
        assertGe(doc.certificate.length, 1, name);
        assertEq(debug, dvm.parseJsonBool(json, ".decoded.debug_mode_pcr0_zero"), name);
        _checkOptional(json, ".decoded.public_key", doc.hasPublicKey, doc.publicKey, name);
        _checkOptional(json, ".decoded.user_data", doc.hasUserData, doc.userData, name);
        _checkOptional(json, ".decoded.nonce", doc.hasNonce, doc.nonce, name);

        string[] memory keys = dvm.parseJsonKeys(json, ".decoded.pcrs");
        assertEq(pcrs, keys.length, name);
        for (uint256 k; k < keys.length; ++k) {
            (bool present, bytes memory value) = NitroDocument.pcr(doc, dvm.parseUint(keys[k]));
            assertTrue(present, name);
            assertEq(value, _hex(json, string.concat(".decoded.pcrs.", keys[k])), name);
        }

        // ["Signature1", h'a1013822', h'', payload]: payloads are 256..65535 bytes (head 59 xxxx).
        assertEq(signed.length, 21 + doc.payload.length, name);
        bytes memory prefix = bytes.concat(hex"846a5369676e61747572653144a1013822405900", bytes1(0));
        prefix[19] = bytes1(uint8(doc.payload.length >> 8));
        prefix[20] = bytes1(uint8(doc.payload.length));
        for (uint256 b; b < 21; ++b) {
            assertEq(uint8(signed[b]), uint8(prefix[b]), name);
        }
        assertEq(keccak256(_slice(signed, 21, signed.length)), keccak256(doc.payload), name);
        // The payload is the document's own bytes (after 8444a1013822a059xxxx).
        assertEq(keccak256(_slice(cose, 10, 10 + doc.payload.length)), keccak256(doc.payload), name);
        assertEq(_slice(cose, cose.length - 96, cose.length), doc.signature, name);
    }

    function _checkOptional(string memory json, string memory key, bool present, bytes memory value, string memory name)
        internal
        pure
    {
        if (_isNull(json, key)) {
            assertFalse(present, string.concat(name, key));
            assertEq(value.length, 0, string.concat(name, key));
        } else {
            assertTrue(present, string.concat(name, key));
            assertEq(value, _hex(json, key), string.concat(name, key));
        }
    }

    function test_emptyUserDataIsPresentAndEmpty() public view {
        (NitroDocument.Document memory doc,,, uint256 pcrs) = harness.parse(_document("marlin_aws_pcr16_2025-04-29"));
        assertTrue(doc.hasUserData, "present");
        assertEq(doc.userData.length, 0, "empty");
        assertEq(pcrs, 17, "17 PCRs");
        (bool present,) = NitroDocument.pcr(doc, 17);
        assertFalse(present, "PCR17 absent");
        (present,) = NitroDocument.pcr(doc, 1000);
        assertFalse(present, "index out of range is absent");
    }

    function test_tag18IsAccepted() public view {
        bytes memory cose = _document("marlin_aws_2024-12-13");
        (, bytes memory plain,,) = harness.parse(cose);
        (, bytes memory tagged,,) = harness.parse(bytes.concat(hex"d2", cose));
        assertEq(tagged, plain, "same signed bytes");
    }

    /// Gas of parse + sigStructure on real documents (4.5 and 4.7 KB), measured inline.
    function test_gas_parseAndSigStructure() public {
        _measure("marlin_aws_2024-12-13");
        _measure("evervault_ga_2023-09-18");
    }

    function _measure(string memory name) internal {
        bytes memory cose = _document(name);
        uint256 before = gasleft();
        NitroDocument.Document memory doc = NitroDocument.parse(cose);
        uint256 parsed = gasleft();
        bytes memory signed = NitroDocument.sigStructure(doc);
        uint256 done = gasleft();
        assertEq(signed.length, doc.payload.length + 21, "length");
        emit log_named_uint(string.concat(name, " bytes"), cose.length);
        emit log_named_uint(string.concat(name, " parse gas"), before - parsed);
        emit log_named_uint(string.concat(name, " sigStructure gas"), parsed - done);
        emit log_named_uint(string.concat(name, " total gas"), before - done);
    }

    // ---------------------------------------------------------------------------------------
    // Crafted documents: one rule each
    // ---------------------------------------------------------------------------------------

    /// The fields of a real document as entries in the NSM's order, to re-encode with changes.
    function _entries() internal view returns (DocumentEntries memory e, bytes memory signature) {
        NitroDocument.Document memory doc = NitroDocument.parse(_document("marlin_aws_2024-12-13"));
        signature = doc.signature;
        e.keys = new bytes[](9);
        e.values = new bytes[](9);
        e.keys[0] = "module_id";
        e.values[0] = DocumentCborWriter.tstr(doc.moduleId);
        e.keys[1] = "digest";
        e.values[1] = DocumentCborWriter.tstr("SHA384");
        e.keys[2] = "timestamp";
        e.values[2] = DocumentCborWriter.uint_(doc.timestampMs);
        e.keys[3] = "pcrs";
        bytes memory pcrs = DocumentCborWriter.head(5, 16);
        for (uint256 i; i < 16; ++i) {
            pcrs = bytes.concat(pcrs, DocumentCborWriter.uint_(i), DocumentCborWriter.bstr(doc.pcrs[i]));
        }
        e.values[3] = pcrs;
        e.keys[4] = "certificate";
        e.values[4] = DocumentCborWriter.bstr(doc.certificate);
        e.keys[5] = "cabundle";
        bytes memory cabundle = DocumentCborWriter.head(4, doc.cabundle.length);
        for (uint256 i; i < doc.cabundle.length; ++i) {
            cabundle = bytes.concat(cabundle, DocumentCborWriter.bstr(doc.cabundle[i]));
        }
        e.values[5] = cabundle;
        e.keys[6] = "public_key";
        e.values[6] = DocumentCborWriter.bstr(doc.publicKey);
        e.keys[7] = "user_data";
        e.values[7] = hex"f6";
        e.keys[8] = "nonce";
        e.values[8] = hex"f6";
    }

    function _encode(DocumentEntries memory e) internal pure returns (bytes memory payload) {
        payload = DocumentCborWriter.head(5, e.keys.length);
        for (uint256 i; i < e.keys.length; ++i) {
            payload = bytes.concat(payload, DocumentCborWriter.tstr(e.keys[i]), e.values[i]);
        }
    }

    /// The document with entry `index` given `value`.
    function _with(uint256 index, bytes memory value) internal view returns (bytes memory) {
        (DocumentEntries memory e, bytes memory signature) = _entries();
        e.values[index] = value;
        return DocumentCborWriter.cose(_encode(e), signature);
    }

    /// The document without entry `index`.
    function _without(uint256 index) internal view returns (bytes memory) {
        (DocumentEntries memory e, bytes memory signature) = _entries();
        DocumentEntries memory fewer;
        fewer.keys = new bytes[](8);
        fewer.values = new bytes[](8);
        for (uint256 i; i < 9; ++i) {
            if (i == index) continue;
            uint256 at = i < index ? i : i - 1;
            fewer.keys[at] = e.keys[i];
            fewer.values[at] = e.values[i];
        }
        return DocumentCborWriter.cose(_encode(fewer), signature);
    }

    /// The document whose payload is `payload`.
    function _withPayload(bytes memory payload) internal view returns (bytes memory) {
        (, bytes memory signature) = _entries();
        return DocumentCborWriter.cose(payload, signature);
    }

    function _expect(bytes memory revertData) internal {
        vm.expectRevert(revertData);
    }

    function test_reEncodedDocumentParsesLikeTheOriginal() public view {
        (DocumentEntries memory e, bytes memory signature) = _entries();
        bytes memory original = _document("marlin_aws_2024-12-13");
        assertEq(DocumentCborWriter.cose(_encode(e), signature), original, "the writer reproduces the NSM's bytes");
    }

    // Whole input and envelope.

    function test_rejectsEmptyInput() public {
        _expect(abi.encodeWithSelector(NitroDocument.DocumentEmpty.selector));
        harness.parse("");
    }

    function test_rejectsOversizedInput() public {
        _expect(abi.encodeWithSelector(NitroDocument.DocumentTooLarge.selector, 16_385));
        harness.parse(new bytes(16_385));
    }

    function test_rejectsOtherTags() public {
        bytes memory cose = _document("marlin_aws_2024-12-13");
        _expect(abi.encodeWithSelector(NitroDocument.UnexpectedTag.selector));
        harness.parse(bytes.concat(hex"d862", cose));
        // Tag 18 in its two-byte form is refused, as Rust refuses it.
        _expect(abi.encodeWithSelector(NitroDocument.UnexpectedTag.selector));
        harness.parse(bytes.concat(hex"d812", cose));
    }

    function test_rejectsTruncationAtEveryLength() public view {
        bytes memory cose = _document("evervault_beta_valid_2022-10-13");
        for (uint256 length = 1; length < cose.length; ++length) {
            bytes memory cut = _slice(cose, 0, length);
            try harness.parse(cut) {
                revert("a truncated document parsed");
            } catch (bytes memory reason) {
                assertEq(bytes4(reason), NitroDocument.CoseTruncated.selector, "CoseTruncated");
            }
        }
    }

    function test_rejectsTrailingBytesAfterCose() public {
        _expect(abi.encodeWithSelector(NitroDocument.TrailingBytesAfterCose.selector, 1));
        harness.parse(bytes.concat(_document("evervault_beta_valid_2022-10-13"), hex"00"));
    }

    function test_rejectsEnvelopeOfTheWrongShape() public {
        _expect(abi.encodeWithSelector(NitroDocument.CoseNotArray.selector, 0));
        harness.parse(hex"a0");
        _expect(abi.encodeWithSelector(NitroDocument.CoseArrayLength.selector, 0));
        harness.parse(hex"8344a1013822a040");
        _expect(abi.encodeWithSelector(NitroDocument.CoseArrayLength.selector, 0));
        harness.parse(hex"8544a1013822a0404000");
        // An indefinite array with a fifth item instead of the break.
        bytes memory signature = new bytes(96);
        _expect(abi.encodeWithSelector(NitroDocument.CoseArrayLength.selector, 107));
        harness.parse(bytes.concat(hex"9f44a1013822a04100", DocumentCborWriter.bstr(signature), hex"00ff"));
        _expect(abi.encodeWithSelector(NitroDocument.CoseInvalidHead.selector, 0));
        harness.parse(hex"9c");
        // An indefinite-length integer does not exist.
        _expect(abi.encodeWithSelector(NitroDocument.CoseInvalidHead.selector, 1));
        harness.parse(hex"841f");
    }

    function test_rejectsEnvelopeItemsOfTheWrongType() public {
        bytes memory signature = DocumentCborWriter.bstr(new bytes(96));
        // Protected header as text.
        _expect(abi.encodeWithSelector(NitroDocument.CoseWrongType.selector, 1));
        harness.parse(bytes.concat(hex"8464a1013822a04100", signature));
        // Unprotected header as an array.
        _expect(abi.encodeWithSelector(NitroDocument.CoseWrongType.selector, 6));
        harness.parse(bytes.concat(hex"8444a1013822804100", signature));
        // A tagged payload or unprotected header: coset reports a tag, as Rust does.
        _expect(abi.encodeWithSelector(NitroDocument.UnexpectedTag.selector));
        harness.parse(bytes.concat(hex"8444a1013822a0d8184100", signature));
        _expect(abi.encodeWithSelector(NitroDocument.UnexpectedTag.selector));
        harness.parse(bytes.concat(hex"8444a1013822c0a04100", signature));
        // Payload `true`.
        _expect(abi.encodeWithSelector(NitroDocument.CoseWrongType.selector, 7));
        harness.parse(bytes.concat(hex"8444a1013822a0f5", signature));
        // A text chunk inside an indefinite byte string.
        _expect(abi.encodeWithSelector(NitroDocument.CoseWrongType.selector, 8));
        harness.parse(bytes.concat(hex"8444a1013822a05f6100ff", signature));
        // Signature as an array.
        _expect(abi.encodeWithSelector(NitroDocument.CoseWrongType.selector, 9));
        harness.parse(hex"8444a1013822a0410080");
    }

    function test_rejectsOtherProtectedHeaders() public {
        bytes memory payload = NitroDocument.parse(_document("marlin_aws_2024-12-13")).payload;
        bytes memory signature = DocumentCborWriter.bstr(new bytes(96));
        bytes[5] memory headers = [
            bytes(hex"a10126"), // ES256
            hex"a1013823", // ES512
            hex"a10127", // EdDSA
            hex"a2013822044100", // ES384 plus another label
            hex"" // empty
        ];
        for (uint256 i; i < headers.length; ++i) {
            _expect(abi.encodeWithSelector(NitroDocument.UnsupportedProtectedHeader.selector, headers[i]));
            harness.parse(
                bytes.concat(
                    hex"84", DocumentCborWriter.bstr(headers[i]), hex"a0", DocumentCborWriter.bstr(payload), signature
                )
            );
        }
    }

    function test_rejectsNonEmptyUnprotectedHeader() public {
        bytes memory signature = DocumentCborWriter.bstr(new bytes(96));
        _expect(abi.encodeWithSelector(NitroDocument.UnexpectedUnprotectedHeader.selector));
        harness.parse(bytes.concat(hex"8444a1013822a1182a004100", signature));
        _expect(abi.encodeWithSelector(NitroDocument.UnexpectedUnprotectedHeader.selector));
        harness.parse(bytes.concat(hex"8444a1013822bf182a00ff4100", signature));
    }

    function test_rejectsDetachedPayload() public {
        _expect(abi.encodeWithSelector(NitroDocument.MissingPayload.selector));
        harness.parse(bytes.concat(hex"8444a1013822a0f6", DocumentCborWriter.bstr(new bytes(96))));
    }

    function test_rejectsSignatureOfAnotherLength() public {
        bytes memory payload = NitroDocument.parse(_document("marlin_aws_2024-12-13")).payload;
        _expect(abi.encodeWithSelector(NitroDocument.SignatureLength.selector, 95));
        harness.parse(DocumentCborWriter.cose(payload, new bytes(95)));
        _expect(abi.encodeWithSelector(NitroDocument.SignatureLength.selector, 97));
        harness.parse(DocumentCborWriter.cose(payload, new bytes(97)));
    }

    /// Rust decodes the envelope with ciborium, which accepts any encoding of the same values:
    /// non-shortest heads, indefinite arrays and maps, chunked (even nested) byte strings. They
    /// parse here to the same document.
    function test_acceptsTheEnvelopeEncodingsRustAccepts() public view {
        bytes memory cose = _document("marlin_aws_2024-12-13");
        (NitroDocument.Document memory canonical, bytes memory signed,,) = harness.parse(cose);
        bytes memory payload = canonical.payload;
        bytes memory signature = canonical.signature;
        bytes memory half = _slice(payload, 0, 1000);
        bytes memory rest = _slice(payload, 1000, payload.length);
        bytes[6] memory variants = [
            // Indefinite array, indefinite empty map.
            bytes.concat(
                hex"9f44a1013822bfff", DocumentCborWriter.bstr(payload), DocumentCborWriter.bstr(signature), hex"ff"
            ),
            // Non-shortest heads everywhere.
            bytes.concat(
                hex"98045a00000004a1013822b8005b000000000000",
                bytes2(uint16(payload.length)),
                payload,
                hex"5860",
                signature
            ),
            // Chunked payload and protected header.
            bytes.concat(
                hex"845f42a101423822ffa05f",
                DocumentCborWriter.bstr(half),
                DocumentCborWriter.bstr(rest),
                hex"ff",
                DocumentCborWriter.bstr(signature)
            ),
            // Nested chunks and empty chunks, as ciborium flattens them.
            bytes.concat(
                hex"8444a1013822a05f405f",
                DocumentCborWriter.bstr(half),
                hex"ff5fff",
                DocumentCborWriter.bstr(rest),
                hex"ff",
                DocumentCborWriter.bstr(signature)
            ),
            // Chunked signature.
            bytes.concat(
                hex"8444a1013822a0",
                DocumentCborWriter.bstr(payload),
                hex"5f",
                DocumentCborWriter.bstr(_slice(signature, 0, 48)),
                DocumentCborWriter.bstr(_slice(signature, 48, 96)),
                hex"ff"
            ),
            // Tagged, with the empty map's head in a wide form.
            bytes.concat(
                hex"d28444a1013822b90000", DocumentCborWriter.bstr(payload), DocumentCborWriter.bstr(signature)
            )
        ];
        for (uint256 i; i < variants.length; ++i) {
            (NitroDocument.Document memory doc, bytes memory variantSigned,,) = harness.parse(variants[i]);
            assertEq(variantSigned, signed, "same signed bytes");
            assertEq(doc.signature, signature, "same signature");
            assertEq(doc.moduleId, canonical.moduleId, "same fields");
        }
    }

    // Payload CBOR.

    function test_rejectsTruncatedPayload() public {
        bytes memory payload = NitroDocument.parse(_document("marlin_aws_2024-12-13")).payload;
        bytes memory cut = _slice(payload, 0, payload.length - 1);
        _expect(abi.encodeWithSelector(NitroDocument.PayloadTruncated.selector, cut.length));
        harness.parse(_withPayload(cut));
    }

    function test_rejectsTrailingBytesInPayload() public {
        bytes memory payload = NitroDocument.parse(_document("marlin_aws_2024-12-13")).payload;
        _expect(abi.encodeWithSelector(NitroDocument.TrailingBytesInPayload.selector, 1));
        harness.parse(_withPayload(bytes.concat(payload, hex"f6")));
    }

    function test_rejectsNonCanonicalPayloadHeads() public {
        // A key whose length is written in two bytes.
        _expect(abi.encodeWithSelector(NitroDocument.NonShortestHead.selector, 1));
        harness.parse(_withPayload(hex"a17809"));
        // A timestamp in eight bytes that fits in four, one in two bytes that fits in one
        // (the value sits at offset 11, after a1 69 "timestamp").
        _expect(abi.encodeWithSelector(NitroDocument.NonShortestHead.selector, 11));
        harness.parse(_withPayload(_timestampOnly(hex"1b00000000ffffffff")));
        _expect(abi.encodeWithSelector(NitroDocument.NonShortestHead.selector, 11));
        harness.parse(_withPayload(_timestampOnly(hex"1900ff")));
        _expect(abi.encodeWithSelector(NitroDocument.NonShortestHead.selector, 11));
        harness.parse(_withPayload(_timestampOnly(hex"1817")));
        _expect(abi.encodeWithSelector(NitroDocument.ReservedAdditionalInfo.selector, 0));
        harness.parse(_withPayload(hex"bc"));
        _expect(abi.encodeWithSelector(NitroDocument.IndefiniteLength.selector, 0));
        harness.parse(_withPayload(hex"bfff"));
        _expect(abi.encodeWithSelector(NitroDocument.IndefiniteLength.selector, 0));
        harness.parse(_withPayload(hex"ff"));
        // A half-precision float and an extended simple value as the timestamp.
        _expect(abi.encodeWithSelector(NitroDocument.UnsupportedSimpleValue.selector, 11));
        harness.parse(_withPayload(_timestampOnly(hex"f93c00")));
        _expect(abi.encodeWithSelector(NitroDocument.UnsupportedSimpleValue.selector, 11));
        harness.parse(_withPayload(_timestampOnly(hex"f820")));
        _expect(abi.encodeWithSelector(NitroDocument.ReservedAdditionalInfo.selector, 11));
        harness.parse(_withPayload(_timestampOnly(hex"1c")));
    }

    function _timestampOnly(bytes memory value) internal pure returns (bytes memory) {
        return bytes.concat(hex"a1", DocumentCborWriter.tstr("timestamp"), value);
    }

    function test_rejectsPayloadThatIsNotAMap() public {
        _expect(abi.encodeWithSelector(NitroDocument.PayloadNotMap.selector));
        harness.parse(_withPayload(hex"80"));
    }

    function test_rejectsNonTextKeys() public {
        _expect(abi.encodeWithSelector(NitroDocument.NonTextKey.selector, 1));
        harness.parse(_withPayload(hex"a10100"));
    }

    function test_rejectsUnknownFields() public {
        _expect(abi.encodeWithSelector(NitroDocument.UnknownField.selector, bytes("extra")));
        harness.parse(_withPayload(hex"a16565787472616178"));
        _expect(abi.encodeWithSelector(NitroDocument.UnknownField.selector, bytes("module_idx")));
        harness.parse(_withPayload(bytes.concat(hex"a1", DocumentCborWriter.tstr("module_idx"), hex"6178")));
        _expect(abi.encodeWithSelector(NitroDocument.UnknownField.selector, bytes("")));
        harness.parse(_withPayload(hex"a1606178"));
    }

    function test_rejectsDuplicateFields() public {
        (DocumentEntries memory e, bytes memory signature) = _entries();
        for (uint256 field; field < 9; ++field) {
            DocumentEntries memory more;
            more.keys = new bytes[](10);
            more.values = new bytes[](10);
            for (uint256 i; i < 9; ++i) {
                (more.keys[i], more.values[i]) = (e.keys[i], e.values[i]);
            }
            (more.keys[9], more.values[9]) = (e.keys[field], e.values[field]);
            _expect(abi.encodeWithSelector(NitroDocument.DuplicateField.selector, field));
            harness.parse(DocumentCborWriter.cose(_encode(more), signature));
        }
    }

    function test_rejectsMissingRequiredFields() public {
        // module_id, digest, timestamp, pcrs, certificate, cabundle are required.
        for (uint256 field; field < 6; ++field) {
            _expect(abi.encodeWithSelector(NitroDocument.MissingField.selector, field));
            harness.parse(_without(field));
        }
        // digest is reported first, as in Rust.
        _expect(abi.encodeWithSelector(NitroDocument.MissingField.selector, NitroDocument.Field.Digest));
        harness.parse(_withPayload(hex"a0"));
    }

    function test_optionalFieldsMayBeOmittedOrNull() public view {
        for (uint256 field = 6; field < 9; ++field) {
            (NitroDocument.Document memory doc,,,) = harness.parse(_without(field));
            assertFalse(doc.hasNonce, "nonce absent");
            assertFalse(doc.hasUserData, "user_data absent");
            assertEq(doc.hasPublicKey, field != 6, "public_key present unless omitted");
        }
        (NitroDocument.Document memory present,,,) = harness.parse(_with(8, hex"40"));
        assertTrue(present.hasNonce, "an empty nonce is present");
        assertEq(present.nonce.length, 0, "and empty");
    }

    function test_rejectsWrongTypes() public {
        _expectWrongType(0, hex"4178", NitroDocument.Field.ModuleId);
        _expectWrongType(1, hex"46534841333834", NitroDocument.Field.Digest);
        _expectWrongType(2, hex"6131", NitroDocument.Field.Timestamp);
        _expectWrongType(2, hex"20", NitroDocument.Field.Timestamp);
        _expectWrongType(2, hex"c11a5f000000", NitroDocument.Field.Timestamp);
        _expectWrongType(3, hex"80", NitroDocument.Field.Pcrs);
        _expectWrongType(
            3,
            bytes.concat(hex"a1", DocumentCborWriter.tstr("0"), DocumentCborWriter.bstr(new bytes(48))),
            NitroDocument.Field.Pcrs
        );
        _expectWrongType(3, bytes.concat(hex"a100", DocumentCborWriter.tstr(new bytes(48))), NitroDocument.Field.Pcrs);
        _expectWrongType(3, hex"a100f6", NitroDocument.Field.Pcrs);
        _expectWrongType(4, hex"6178", NitroDocument.Field.Certificate);
        _expectWrongType(4, hex"f6", NitroDocument.Field.Certificate);
        _expectWrongType(5, hex"a0", NitroDocument.Field.Cabundle);
        _expectWrongType(5, hex"816178", NitroDocument.Field.Cabundle);
        _expectWrongType(6, hex"6178", NitroDocument.Field.PublicKey);
        _expectWrongType(7, hex"f7", NitroDocument.Field.UserData);
        _expectWrongType(8, hex"80", NitroDocument.Field.Nonce);
    }

    function _expectWrongType(uint256 index, bytes memory value, NitroDocument.Field field) internal {
        _expect(abi.encodeWithSelector(NitroDocument.WrongType.selector, field));
        harness.parse(_with(index, value));
    }

    function test_moduleIdMustBeUtf8() public {
        bytes[6] memory invalid = [
            bytes(hex"ff"), // never valid
            hex"c080", // overlong
            hex"eda080", // surrogate U+D800
            hex"f4908080", // above U+10FFFF
            hex"e282", // truncated sequence
            bytes.concat("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", hex"80") // lone continuation after a word of ASCII
        ];
        for (uint256 i; i < invalid.length; ++i) {
            _expect(abi.encodeWithSelector(NitroDocument.InvalidUtf8.selector, NitroDocument.Field.ModuleId));
            harness.parse(_with(0, DocumentCborWriter.tstr(invalid[i])));
        }
        _expect(abi.encodeWithSelector(NitroDocument.InvalidUtf8.selector, NitroDocument.Field.Digest));
        harness.parse(_with(1, DocumentCborWriter.tstr(hex"ff")));
        // Two-, three- and four-byte characters at their boundaries are valid.
        bytes memory valid = hex"c2a0dfbfe0a080ed9fbfee8080efbfbff0908080f48fbfbfe282ac";
        (NitroDocument.Document memory doc,,,) = harness.parse(_with(0, DocumentCborWriter.tstr(valid)));
        assertEq(doc.moduleId, valid, "multi-byte UTF-8 accepted");
    }

    function test_rejectsEmptyModuleId() public {
        _expect(abi.encodeWithSelector(NitroDocument.EmptyModuleId.selector));
        harness.parse(_with(0, hex"60"));
    }

    function test_rejectsOtherDigests() public {
        _expect(abi.encodeWithSelector(NitroDocument.UnsupportedDigest.selector, bytes("SHA256")));
        harness.parse(_with(1, DocumentCborWriter.tstr("SHA256")));
        _expect(abi.encodeWithSelector(NitroDocument.UnsupportedDigest.selector, bytes("SHA3840")));
        harness.parse(_with(1, DocumentCborWriter.tstr("SHA3840")));
    }

    function test_timestampRules() public {
        _expect(abi.encodeWithSelector(NitroDocument.ZeroTimestamp.selector));
        harness.parse(_with(2, hex"00"));
        (NitroDocument.Document memory doc,,,) = harness.parse(_with(2, hex"1bffffffffffffffff"));
        assertEq(doc.timestampMs, type(uint64).max, "the largest timestamp");
    }

    function test_pcrRules() public {
        _expect(abi.encodeWithSelector(NitroDocument.PcrCount.selector, 0));
        harness.parse(_with(3, hex"a0"));
        _expect(abi.encodeWithSelector(NitroDocument.PcrCount.selector, 33));
        harness.parse(_with(3, hex"b821"));
        _expect(abi.encodeWithSelector(NitroDocument.PcrIndexOutOfRange.selector, 32));
        harness.parse(_with(3, bytes.concat(hex"a11820", DocumentCborWriter.bstr(new bytes(48)))));
        _expect(abi.encodeWithSelector(NitroDocument.DuplicatePcr.selector, 0));
        harness.parse(
            _with(
                3,
                bytes.concat(
                    hex"a200", DocumentCborWriter.bstr(new bytes(48)), hex"00", DocumentCborWriter.bstr(new bytes(48))
                )
            )
        );
        uint256[4] memory badLengths = [uint256(0), 31, 47, 65];
        for (uint256 i; i < badLengths.length; ++i) {
            _expect(abi.encodeWithSelector(NitroDocument.PcrLength.selector, 2, badLengths[i]));
            harness.parse(_with(3, bytes.concat(hex"a102", DocumentCborWriter.bstr(new bytes(badLengths[i])))));
        }
    }

    function test_pcrMapsMayBeSparseAndFull() public view {
        bytes memory one = new bytes(32);
        one[31] = 0x01;
        // {31: 64 bytes, 1: 32 bytes (one), 16: 48 zero bytes}: unordered and sparse.
        bytes memory sparse = bytes.concat(
            hex"a3181f",
            DocumentCborWriter.bstr(new bytes(64)),
            hex"01",
            DocumentCborWriter.bstr(one),
            hex"10",
            DocumentCborWriter.bstr(new bytes(48))
        );
        (NitroDocument.Document memory doc,, bool debug, uint256 count) = harness.parse(_with(3, sparse));
        assertEq(count, 3, "three PCRs");
        assertEq(doc.pcrMask, (1 << 31) | (1 << 16) | (1 << 1), "mask");
        (bool present, bytes memory value) = NitroDocument.pcr(doc, 1);
        assertTrue(present, "PCR1");
        assertEq(value, one, "PCR1 value");
        (present,) = NitroDocument.pcr(doc, 0);
        assertFalse(present, "PCR0 absent");
        assertFalse(debug, "PCR1 is not zero");

        // All 32 PCRs.
        bytes memory full = hex"b820";
        for (uint256 i; i < 32; ++i) {
            full = bytes.concat(full, DocumentCborWriter.uint_(i), DocumentCborWriter.bstr(new bytes(48)));
        }
        (,, debug, count) = harness.parse(_with(3, full));
        assertEq(count, 32, "32 PCRs");
        assertTrue(debug, "all-zero PCR0-2 is debug mode");
    }

    function test_debugModeCountsMissingPcrsAsZero() public view {
        bytes memory nonZero = new bytes(48);
        nonZero[47] = 0x01;
        // Only PCR3, non-zero: PCR0-2 are missing, so this is debug mode.
        (,, bool debug,) = harness.parse(_with(3, bytes.concat(hex"a103", DocumentCborWriter.bstr(nonZero))));
        assertTrue(debug, "missing PCR0-2 count as zero");
        // A non-zero byte anywhere in PCR0, 1 or 2 (first or last byte, 32/48/64 bytes) ends it.
        uint256[3] memory lengths = [uint256(32), 48, 64];
        for (uint256 index; index < 3; ++index) {
            for (uint256 l; l < 3; ++l) {
                bytes memory value = new bytes(lengths[l]);
                value[lengths[l] - 1] = 0x80;
                (,, debug,) = harness.parse(
                    _with(3, bytes.concat(hex"a1", DocumentCborWriter.uint_(index), DocumentCborWriter.bstr(value)))
                );
                assertFalse(debug, "last byte set");
                value[lengths[l] - 1] = 0;
                value[0] = 0x01;
                (,, debug,) = harness.parse(
                    _with(3, bytes.concat(hex"a1", DocumentCborWriter.uint_(index), DocumentCborWriter.bstr(value)))
                );
                assertFalse(debug, "first byte set");
            }
        }
        (,, debug,) = harness.parse(_document("marlin_aws_2024-12-13"));
        assertFalse(debug, "production document");
        (,, debug,) = harness.parse(_document("evervault_beta_debug_2022-10-12"));
        assertTrue(debug, "debug document");
    }

    function test_cabundleRules() public {
        _expect(abi.encodeWithSelector(NitroDocument.CabundleCount.selector, 0));
        harness.parse(_with(5, hex"80"));
        bytes memory nine = hex"89";
        bytes memory eight = hex"88";
        for (uint256 i; i < 9; ++i) {
            nine = bytes.concat(nine, hex"4130");
            if (i < 8) eight = bytes.concat(eight, hex"4130");
        }
        _expect(abi.encodeWithSelector(NitroDocument.CabundleCount.selector, 9));
        harness.parse(_with(5, nine));
        (NitroDocument.Document memory doc,,,) = harness.parse(_with(5, eight));
        assertEq(doc.cabundle.length, 8, "eight entries accepted");
        _expect(abi.encodeWithSelector(NitroDocument.FieldLength.selector, NitroDocument.Field.Cabundle, 0));
        harness.parse(_with(5, hex"8140"));
        _expect(abi.encodeWithSelector(NitroDocument.FieldLength.selector, NitroDocument.Field.Cabundle, 1025));
        harness.parse(_with(5, bytes.concat(hex"81", DocumentCborWriter.bstr(new bytes(1025)))));
    }

    function test_fieldLengthLimits() public {
        _expect(abi.encodeWithSelector(NitroDocument.FieldLength.selector, NitroDocument.Field.Certificate, 0));
        harness.parse(_with(4, hex"40"));
        _expect(abi.encodeWithSelector(NitroDocument.FieldLength.selector, NitroDocument.Field.Certificate, 1025));
        harness.parse(_with(4, DocumentCborWriter.bstr(new bytes(1025))));
        _expect(abi.encodeWithSelector(NitroDocument.FieldLength.selector, NitroDocument.Field.PublicKey, 1025));
        harness.parse(_with(6, DocumentCborWriter.bstr(new bytes(1025))));
        _expect(abi.encodeWithSelector(NitroDocument.FieldLength.selector, NitroDocument.Field.UserData, 513));
        harness.parse(_with(7, DocumentCborWriter.bstr(new bytes(513))));
        _expect(abi.encodeWithSelector(NitroDocument.FieldLength.selector, NitroDocument.Field.Nonce, 513));
        harness.parse(_with(8, DocumentCborWriter.bstr(new bytes(513))));
        // The limits themselves are accepted.
        (NitroDocument.Document memory doc,,,) = harness.parse(_with(4, DocumentCborWriter.bstr(new bytes(1024))));
        assertEq(doc.certificate.length, 1024, "certificate of 1024 bytes");
        (doc,,,) = harness.parse(_with(6, DocumentCborWriter.bstr(new bytes(1024))));
        assertEq(doc.publicKey.length, 1024, "public_key of 1024 bytes");
        (doc,,,) = harness.parse(_with(7, DocumentCborWriter.bstr(new bytes(512))));
        assertEq(doc.userData.length, 512, "user_data of 512 bytes");
        (doc,,,) = harness.parse(_with(8, DocumentCborWriter.bstr(new bytes(512))));
        assertEq(doc.nonce.length, 512, "nonce of 512 bytes");
    }

    function test_sigStructureHeadWidthsFollowThePayload() public pure {
        NitroDocument.Document memory doc;
        doc.protectedHeader = hex"a1013822";
        uint256[4] memory lengths = [uint256(0), 23, 24, 255];
        bytes[4] memory heads = [bytes(hex"40"), hex"57", hex"5818", hex"58ff"];
        for (uint256 i; i < lengths.length; ++i) {
            doc.payload = new bytes(lengths[i]);
            bytes memory signed = NitroDocument.sigStructure(doc);
            assertEq(
                signed, bytes.concat(hex"846a5369676e61747572653144a101382240", heads[i], doc.payload), "Sig_structure"
            );
        }
    }

    // ---------------------------------------------------------------------------------------
    // Differential: the Rust verifier's verdicts on mutated real documents
    // ---------------------------------------------------------------------------------------

    // test/data/nitro-document-verdicts.json holds, for three real documents and every
    // structural byte (envelope heads, each key's head and the heads after it, the signature's
    // head), whether attestation-verifier's parse_document accepts the document with that byte
    // replaced by each of the 256 values, with each value inserted before it, and with it deleted
    // (written by attestation-verifier/tests/document_verdicts.rs). The verdicts must match.

    function test_verdictsMatchTheRustVerifier_replaced0() public view {
        _matchVerdicts(0, true);
    }

    function test_verdictsMatchTheRustVerifier_replaced1() public view {
        _matchVerdicts(1, true);
    }

    function test_verdictsMatchTheRustVerifier_replaced2() public view {
        _matchVerdicts(2, true);
    }

    function test_verdictsMatchTheRustVerifier_inserted0() public view {
        _matchVerdicts(0, false);
    }

    function test_verdictsMatchTheRustVerifier_inserted1() public view {
        _matchVerdicts(1, false);
    }

    function test_verdictsMatchTheRustVerifier_inserted2() public view {
        _matchVerdicts(2, false);
    }

    function _matchVerdicts(uint256 index, bool replace) internal view {
        string memory json = dvm.readFile("test/data/nitro-document-verdicts.json");
        string memory entry = string.concat(".documents[", vm.toString(index), "]");
        bytes memory cose = _document(dvm.parseJsonString(json, string.concat(entry, ".name")));
        uint256[] memory positions = dvm.parseJsonUintArray(json, string.concat(entry, ".positions"));
        bytes32[] memory verdicts =
            dvm.parseJsonBytes32Array(json, string.concat(entry, replace ? ".replaced" : ".inserted"));
        uint256[] memory deleted = dvm.parseJsonUintArray(json, string.concat(entry, ".deleted"));
        assertEq(verdicts.length, positions.length, "one verdict word per position");
        assertGe(positions.length, 40, "structural positions");
        uint256 accepted;
        for (uint256 p; p < positions.length; ++p) {
            uint256 position = positions[p];
            for (uint256 value; value < 256; ++value) {
                // Each variant's memory is released at the end of its turn, so 12k calls fit.
                uint256 mark = _freeMemory();
                bytes memory variant = replace ? _replaced(cose, position, value) : _inserted(cose, position, value);
                bool rust = (uint256(verdicts[p]) >> value) & 1 == 1;
                bool ours = _acceptsAndForget(variant);
                if (ours != rust) {
                    revert(
                        string.concat(
                            rust ? "Rust accepts, NitroDocument rejects" : "NitroDocument accepts, Rust rejects",
                            ": position ",
                            vm.toString(position),
                            ", value ",
                            vm.toString(value)
                        )
                    );
                }
                if (ours) ++accepted;
                _releaseMemory(mark);
            }
            if (replace) {
                bool ours =
                    _acceptsAndForget(bytes.concat(_slice(cose, 0, position), _slice(cose, position + 1, cose.length)));
                assertEq(ours, deleted[p] == 1, "deleted byte");
            }
        }
        // Replacing a byte by itself, or inserting the tag 18 head first, keeps it valid.
        assertGe(accepted, replace ? positions.length : 1, "some variants parse");
    }

    /// Whether `input` parses (reverting with anything but the library's errors fails the test).
    function _acceptsAndForget(bytes memory input) internal view returns (bool accepted) {
        uint256 mark = _freeMemory();
        try harness.parse(input) {
            accepted = true;
        } catch (bytes memory reason) {
            assertTrue(_isOwnError(reason), "reverted with something other than the library's errors");
        }
        _releaseMemory(mark);
    }

    function _freeMemory() internal pure returns (uint256 mark) {
        assembly ("memory-safe") {
            mark := mload(0x40)
        }
    }

    /// Resets the free memory pointer to `mark`: what was allocated since is garbage now.
    function _releaseMemory(uint256 mark) internal pure {
        assembly ("memory-safe") {
            mstore(0x40, mark)
        }
    }

    function _replaced(bytes memory cose, uint256 position, uint256 value) internal pure returns (bytes memory out) {
        out = bytes.concat(cose);
        out[position] = bytes1(uint8(value));
    }

    function _inserted(bytes memory cose, uint256 position, uint256 value) internal pure returns (bytes memory) {
        return bytes.concat(_slice(cose, 0, position), bytes1(uint8(value)), _slice(cose, position, cose.length));
    }

    // ---------------------------------------------------------------------------------------
    // Fuzz: only this library's errors, and nothing that breaks the rules is accepted
    // ---------------------------------------------------------------------------------------

    function testFuzz_randomBytes(bytes memory input) public view {
        _parseOrOwnError(input);
    }

    function testFuzz_randomEnvelopeAroundRandomPayload(bytes memory payload, bytes memory signature) public view {
        _parseOrOwnError(DocumentCborWriter.cose(payload, signature));
    }

    function testFuzz_realDocumentWithOneByteChanged(uint256 which, uint256 position, uint8 value) public view {
        bytes memory cose = _document(_documentNames()[which % 8]);
        position = bound(position, 0, cose.length - 1);
        vm.assume(uint8(cose[position]) != value);
        cose[position] = bytes1(value);
        _parseOrOwnError(cose);
    }

    function testFuzz_realDocumentTruncated(uint256 which, uint256 length) public view {
        bytes memory cose = _document(_documentNames()[which % 8]);
        length = bound(length, 0, cose.length - 1);
        try harness.parse(_slice(cose, 0, length)) {
            revert("a truncated document parsed");
        } catch (bytes memory reason) {
            bytes4 selector = bytes4(reason);
            assertTrue(
                selector == NitroDocument.CoseTruncated.selector || selector == NitroDocument.DocumentEmpty.selector,
                "truncation error"
            );
        }
    }

    /// A real payload with one byte changed, re-wrapped so the envelope stays valid: exercises
    /// the strict payload rules rather than the envelope's length checks.
    function testFuzz_realPayloadWithOneByteChanged(uint256 which, uint256 position, uint8 value) public view {
        NitroDocument.Document memory doc = NitroDocument.parse(_document(_documentNames()[which % 8]));
        bytes memory payload = doc.payload;
        position = bound(position, 0, payload.length - 1);
        vm.assume(uint8(payload[position]) != value);
        payload[position] = bytes1(value);
        _parseOrOwnError(DocumentCborWriter.cose(payload, doc.signature));
    }

    function _parseOrOwnError(bytes memory input) internal view {
        try harness.parse(input) returns (NitroDocument.Document memory doc, bytes memory, bool, uint256 count) {
            // Accepted: everything Rust requires holds.
            assertEq(doc.protectedHeader, hex"a1013822", "protected header");
            assertEq(doc.signature.length, 96, "signature length");
            assertTrue(doc.moduleId.length != 0, "module_id");
            assertTrue(doc.timestampMs != 0, "timestamp");
            assertTrue(count >= 1 && count <= 32, "PCR count");
            assertTrue(doc.certificate.length >= 1 && doc.certificate.length <= 1024, "certificate");
            assertTrue(doc.cabundle.length >= 1 && doc.cabundle.length <= 8, "cabundle");
        } catch (bytes memory reason) {
            assertTrue(_isOwnError(reason), "reverted with something other than the library's errors");
        }
    }

    function _isOwnError(bytes memory reason) internal pure returns (bool) {
        if (reason.length < 4) return false;
        bytes4 selector = bytes4(reason);
        bytes4[35] memory own = [
            NitroDocument.DocumentEmpty.selector,
            NitroDocument.DocumentTooLarge.selector,
            NitroDocument.UnexpectedTag.selector,
            NitroDocument.CoseTruncated.selector,
            NitroDocument.CoseInvalidHead.selector,
            NitroDocument.CoseNotArray.selector,
            NitroDocument.CoseArrayLength.selector,
            NitroDocument.CoseWrongType.selector,
            NitroDocument.TrailingBytesAfterCose.selector,
            NitroDocument.UnsupportedProtectedHeader.selector,
            NitroDocument.UnexpectedUnprotectedHeader.selector,
            NitroDocument.MissingPayload.selector,
            NitroDocument.SignatureLength.selector,
            NitroDocument.PayloadTruncated.selector,
            NitroDocument.NonShortestHead.selector,
            NitroDocument.ReservedAdditionalInfo.selector,
            NitroDocument.IndefiniteLength.selector,
            NitroDocument.UnsupportedSimpleValue.selector,
            NitroDocument.PayloadNotMap.selector,
            NitroDocument.TrailingBytesInPayload.selector,
            NitroDocument.NonTextKey.selector,
            NitroDocument.UnknownField.selector,
            NitroDocument.DuplicateField.selector,
            NitroDocument.MissingField.selector,
            NitroDocument.WrongType.selector,
            NitroDocument.InvalidUtf8.selector,
            NitroDocument.EmptyModuleId.selector,
            NitroDocument.UnsupportedDigest.selector,
            NitroDocument.ZeroTimestamp.selector,
            NitroDocument.PcrCount.selector,
            NitroDocument.PcrIndexOutOfRange.selector,
            NitroDocument.DuplicatePcr.selector,
            NitroDocument.PcrLength.selector,
            NitroDocument.CabundleCount.selector,
            NitroDocument.FieldLength.selector
        ];
        for (uint256 i; i < own.length; ++i) {
            if (selector == own[i]) return true;
        }
        return false;
    }

    function _slice(bytes memory data, uint256 start, uint256 end) internal pure returns (bytes memory out) {
        require(start <= end && end <= data.length, "slice out of range");
        out = new bytes(end - start);
        assembly ("memory-safe") {
            mcopy(add(out, 0x20), add(add(data, 0x20), start), sub(end, start))
        }
    }
}
