// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {NitroVectors} from "./utils/NitroVectors.sol";
import {NitroDocument} from "../src/nitro/NitroDocument.sol";
import {X509} from "../src/nitro/X509.sol";

/// @notice The file and JSON cheatcodes these tests use beyond `Vm`.
interface VmFiles {
    function readFileBinary(string calldata path) external view returns (bytes memory);
    function readFile(string calldata path) external view returns (string memory);
    function parseJsonUint(string calldata json, string calldata key) external pure returns (uint256);
    function parseJsonBool(string calldata json, string calldata key) external pure returns (bool);
    function parseJsonString(string calldata json, string calldata key) external pure returns (string memory);
    function parseJsonBytes(string calldata json, string calldata key) external pure returns (bytes memory);
}

/// @notice External entry points, so the tests can catch the library's reverts.
contract X509Harness {
    function parse(bytes memory der) external pure returns (X509.Certificate memory) {
        return X509.parse(der);
    }

    function parseGas(bytes memory der) external view returns (uint256 used) {
        uint256 before = gasleft();
        X509.parse(der);
        used = before - gasleft();
    }

    function checkCertificateAuthority(bytes memory der) external pure {
        X509.checkCertificateAuthority(X509.parse(der));
    }

    function checkLeaf(bytes memory der) external pure {
        X509.checkLeaf(X509.parse(der));
    }

    function checkValidity(bytes memory der, uint256 atSeconds) external pure {
        X509.checkValidity(X509.parse(der), atSeconds);
    }

    function checkValidityMillis(bytes memory der, uint256 atMillis) external pure {
        X509.checkValidityMillis(X509.parse(der), atMillis);
    }
}

/// @notice X509.sol on the certificates of the real Nitro documents, on certificates crafted from
/// them (one per rule) and on fuzzed input.
contract X509Test is Test, NitroVectors {
    VmFiles internal constant files = VmFiles(VM_ADDRESS);

    X509Harness internal harness;

    function setUp() public {
        harness = new X509Harness();
    }

    // ============================================================ real certificates

    /// Every certificate of every real document parses; validity windows, CA flags, path lengths and
    /// key usages equal the .json beside the document; names link along each chain; the root is
    /// AWS's; the role rules and the validity at the document's own time pass.
    function test_realChains_parseAndMatchTheirJson() public view {
        string[8] memory names = _documentNames();
        for (uint256 d = 0; d < names.length; ++d) {
            bytes[] memory chain = _chain(files.readFileBinary(string.concat(VECTORS, names[d], ".cbor")));
            string memory json = files.readFile(string.concat(VECTORS, names[d], ".json"));
            uint256 atMillis = files.parseJsonUint(json, ".decoded.timestamp_ms");
            assertEq(chain.length, 5, "four CAs and the leaf");
            assertEq(sha256(chain[0]), AWS_ROOT_SHA256, "root is AWS Nitro root G1");

            X509.Certificate memory parent;
            for (uint256 i = 0; i < chain.length; ++i) {
                X509.Certificate memory cert = harness.parse(chain[i]);
                _checkAgainstJson(cert, json, string.concat(".certs_root_to_leaf[", vm.toString(i), "]"));
                assertEq(cert.signature.length, 96, "signature r || s");
                assertEq(cert.publicKey.length, 96, "key x || y");
                assertEq(uint8(chain[i][cert.tbsOffset]), 0x30, "TBS is a SEQUENCE");
                assertTrue(cert.tbsOffset + cert.tbsLength < chain[i].length, "TBS inside the certificate");
                if (i == 0) {
                    assertEq(cert.issuerHash, cert.subjectHash, "root is self-issued");
                } else {
                    assertEq(cert.issuerHash, parent.subjectHash, "issuer is the parent's subject");
                }
                if (i + 1 < chain.length) {
                    harness.checkCertificateAuthority(chain[i]);
                } else {
                    harness.checkLeaf(chain[i]);
                }
                harness.checkValidityMillis(chain[i], atMillis);
                parent = cert;
            }
        }
    }

    function _checkAgainstJson(X509.Certificate memory cert, string memory json, string memory entry) internal pure {
        assertEq(cert.notBefore, _isoToUnix(files.parseJsonString(json, string.concat(entry, ".not_before"))), entry);
        assertEq(cert.notAfter, _isoToUnix(files.parseJsonString(json, string.concat(entry, ".not_after"))), entry);
        assertEq(cert.isCA, files.parseJsonBool(json, string.concat(entry, ".ca")), "cA");
        assertEq(cert.keyCertSign, files.parseJsonBool(json, string.concat(entry, ".key_cert_sign")), "keyCertSign");
        assertEq(
            cert.digitalSignature,
            files.parseJsonBool(json, string.concat(entry, ".digital_signature")),
            "digitalSignature"
        );
        // "pathlen" is null when absent, which parseJsonUint refuses.
        try files.parseJsonUint(json, string.concat(entry, ".pathlen")) returns (uint256 pathLen) {
            assertTrue(cert.hasPathLen, "pathLen present");
            assertEq(cert.pathLen, pathLen, "pathLen");
        } catch {
            assertFalse(cert.hasPathLen, "pathLen absent");
        }
    }

    /// Fields checked against independent facts: the root's window and key (the key as marlin's
    /// test expectations give it), the TBS bounds and the names' hashes recomputed from the DER.
    function test_marlinChain_fieldsMatchIndependentFacts() public view {
        bytes[] memory chain = _chain(files.readFileBinary(string.concat(VECTORS, "marlin_aws_2024-12-13.cbor")));
        string memory json = files.readFile(string.concat(VECTORS, "marlin_aws_2024-12-13.json"));
        X509.Certificate memory root = harness.parse(chain[0]);
        assertEq(root.notBefore, 1_572_269_285, "2019-10-28T13:28:05Z");
        assertEq(root.notAfter, 2_519_044_085, "2049-10-28T14:28:05Z");
        assertEq(
            root.publicKey, files.parseJsonBytes(json, ".test_expectations.expected_journal.root_pubkey_xy"), "root key"
        );

        bytes memory leafDer = chain[4];
        X509.Certificate memory leaf = harness.parse(leafDer);
        (uint256 tbsStart, uint256 tbsEnd) = _locate(leafDer, _path(0));
        assertEq(leaf.tbsOffset, tbsStart, "tbsOffset");
        assertEq(leaf.tbsLength, tbsEnd - tbsStart, "tbsLength");
        (uint256 issuerStart, uint256 issuerEnd) = _locate(leafDer, _path(0, 3));
        assertEq(leaf.issuerHash, keccak256(_slice(leafDer, issuerStart, issuerEnd)), "issuerHash");
        (uint256 subjectStart, uint256 subjectEnd) = _locate(leafDer, _path(0, 5));
        assertEq(leaf.subjectHash, keccak256(_slice(leafDer, subjectStart, subjectEnd)), "subjectHash");
        (uint256 keyStart, uint256 keyEnd) = _locate(leafDer, _path(0, 6, 1));
        assertEq(leaf.publicKey, _slice(leafDer, keyEnd - 96, keyEnd), "key after 00 04");
        assertEq(keyEnd - keyStart, 100, "BIT STRING of 98 content bytes");
        assertEq(leaf.pathLen, 0, "no pathLen");
    }

    /// The signature value: r and s left-padded to 48 bytes each.
    function test_signature_scalarsArePaddedTo48Bytes() public view {
        bytes memory der = _leaf();
        bytes memory r =
            hex"00ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52972";
        bytes memory s = hex"01";
        X509.Certificate memory cert = harness.parse(_withSignature(der, _integer(r), _integer(s)));
        bytes memory expected = bytes.concat(_slice(r, 1, 49), new bytes(47), hex"01");
        assertEq(cert.signature, expected, "n - 1 and 1");
        bytes memory thirtyThree = hex"0080000000000000000000000000000000000000000000000000000000000000ab";
        cert = harness.parse(_withSignature(der, _integer(thirtyThree), _integer(hex"7f")));
        assertEq(
            cert.signature, bytes.concat(new bytes(16), _slice(thirtyThree, 1, 33), new bytes(47), hex"7f"), "short"
        );
    }

    /// Gas of parsing typical certificates (the leaf and the intermediates), logged for
    /// docs/benchmarks.md.
    function test_gas_parseTypicalCertificates() public {
        bytes[] memory chain = _chain(files.readFileBinary(string.concat(VECTORS, "marlin_aws_2024-12-13.cbor")));
        string[5] memory labels = ["root", "regional CA", "zonal CA", "instance CA", "leaf"];
        for (uint256 i = 0; i < chain.length; ++i) {
            emit log_named_uint(string.concat("parse gas, ", labels[i]), harness.parseGas(chain[i]));
        }
    }

    // ============================================================ certificate rules

    function test_signatureAlgorithm_outerOtherThanEcdsaSha384_rejected() public view {
        _expectRejected(
            _replace(_leaf(), _path(1), hex"300a06082a8648ce3d040302"), X509.X509UnsupportedSignatureAlgorithm.selector
        );
    }

    function test_signatureAlgorithm_innerOtherThanEcdsaSha384_rejected() public view {
        _expectRejected(
            _replace(_leaf(), _path(0, 2), hex"300a06082a8648ce3d040302"),
            X509.X509UnsupportedSignatureAlgorithm.selector
        );
    }

    function test_signatureAlgorithm_withNullParameters_rejected() public view {
        _expectRejected(
            _replace(_leaf(), _path(1), hex"300c06082a8648ce3d0403030500"),
            X509.X509UnsupportedSignatureAlgorithm.selector
        );
        _expectRejected(
            _replace(_leaf(), _path(0, 2), hex"300c06082a8648ce3d0403030500"),
            X509.X509UnsupportedSignatureAlgorithm.selector
        );
    }

    function test_version_v1OrV2_rejected() public view {
        _expectRejected(_replace(_leaf(), _path(0, 0), ""), X509.X509UnsupportedVersion.selector);
        _expectRejected(_replace(_leaf(), _path(0, 0), hex"a003020101"), X509.X509UnsupportedVersion.selector);
        _expectRejected(_replace(_leaf(), _path(0, 0), hex"a00402020002"), X509.X509UnsupportedVersion.selector);
    }

    function test_publicKey_otherCurve_rejected() public view {
        _expectRejected(
            _replace(_leaf(), _path(0, 6, 0), hex"301306072a8648ce3d020106082a8648ce3d030107"),
            X509.X509UnsupportedPublicKey.selector
        );
        // secp384r1 with id-ecDH (1.3.132.1.12) instead of id-ecPublicKey
        _expectRejected(
            _replace(_leaf(), _path(0, 6, 0), hex"300e06052b8104010c06052b81040022"),
            X509.X509UnsupportedPublicKey.selector
        );
    }

    function test_publicKey_compressedOrPaddedBits_rejected() public view {
        bytes memory der = _leaf();
        bytes memory key = harness.parse(der).publicKey;
        _expectRejected(
            _replace(der, _path(0, 6, 1), _tlv(0x03, bytes.concat(hex"0002", _slice(key, 0, 48)))),
            X509.X509UnsupportedPublicKey.selector
        );
        _expectRejected(
            _replace(der, _path(0, 6, 1), _tlv(0x03, bytes.concat(hex"0104", key))),
            X509.X509UnsupportedPublicKey.selector
        );
        _expectRejected(
            _replace(der, _path(0, 6, 1), _tlv(0x03, bytes.concat(hex"0004", key, hex"00"))),
            X509.X509UnsupportedPublicKey.selector
        );
    }

    function test_extensions_unknownCritical_rejected() public view {
        // extendedKeyUsage serverAuth, critical, added to the leaf.
        bytes memory eku = _extension(hex"551d25", true, hex"300a06082b06010505070301");
        bytes memory der = _insertExtension(_leaf(), eku);
        _expectRejected(der, X509.X509UnknownCriticalExtension.selector);
        // The same extension non-critical is ignored, as in Rust.
        harness.checkLeaf(_insertExtension(_leaf(), _extension(hex"551d25", false, hex"300a06082b06010505070301")));
        // A known-but-unprocessed extension (subjectKeyIdentifier) made critical.
        bytes memory ca = _instanceCa();
        bytes memory ski = _extension(hex"551d0e", true, hex"0414282cb45dc3353f695ba02779e7bc842d6dde3b98");
        _expectRejected(_replace(ca, _path(0, 7, 0, 2), ski), X509.X509UnknownCriticalExtension.selector);
    }

    function test_extensions_criticalFalseEncoded_acceptedAsInRust() public view {
        bytes memory der = _replace(_leaf(), _path(0, 7, 0, 0, 1), hex"010100");
        harness.checkLeaf(der);
        der = _replace(_leaf(), _path(0, 7, 0, 0, 1), hex"010101");
        _expectRejected(der, X509.X509InvalidBoolean.selector);
        der = _replace(_leaf(), _path(0, 7, 0, 0, 1), hex"0102ffff");
        _expectRejected(der, X509.X509InvalidBoolean.selector);
    }

    function test_extensions_emptyOrDuplicated_rejected() public view {
        _expectRejected(_replace(_leaf(), _path(0, 7, 0), hex"3000"), X509.X509InvalidExtension.selector);
        bytes memory der = _leaf();
        (uint256 start, uint256 end) = _locate(der, _path(0, 7, 0, 0));
        _expectRejected(_insertExtension(der, _slice(der, start, end)), X509.X509DuplicateExtension.selector);
        (start, end) = _locate(der, _path(0, 7, 0, 1));
        _expectRejected(_insertExtension(der, _slice(der, start, end)), X509.X509DuplicateExtension.selector);
    }

    function test_caRole_withoutKeyCertSign_rejected() public view {
        bytes memory der = _replaceExtensionValue(_instanceCa(), 1, hex"03020780"); // digitalSignature only
        X509.Certificate memory cert = harness.parse(der);
        assertFalse(cert.keyCertSign, "keyCertSign");
        assertTrue(cert.digitalSignature, "digitalSignature");
        _expectRoleRejected(der, true, X509.X509MissingKeyCertSign.selector);
        // Without the keyUsage extension at all.
        _expectRoleRejected(_replace(_instanceCa(), _path(0, 7, 0, 1), ""), true, X509.X509MissingKeyCertSign.selector);
    }

    function test_caRole_withoutCaFlag_rejected() public view {
        bytes memory der = _replaceExtensionValue(_instanceCa(), 0, hex"3000");
        _expectRoleRejected(der, true, X509.X509NotCertificateAuthority.selector);
        _expectRoleRejected(
            _replace(_instanceCa(), _path(0, 7, 0, 0), ""), true, X509.X509NotCertificateAuthority.selector
        );
        // pathLen without cA (x509-parser accepts it; the certificate is still no CA).
        der = _replaceExtensionValue(_instanceCa(), 0, hex"3003020100");
        assertTrue(harness.parse(der).hasPathLen, "pathLen read");
        _expectRoleRejected(der, true, X509.X509NotCertificateAuthority.selector);
        harness.checkCertificateAuthority(_instanceCa());
    }

    function test_leafRole_caOrMissingDigitalSignature_rejected() public view {
        _expectRoleRejected(
            _replaceExtensionValue(_leaf(), 0, hex"30030101ff"), false, X509.X509LeafIsCertificateAuthority.selector
        );
        _expectRoleRejected(
            _replaceExtensionValue(_leaf(), 1, hex"03020204"), false, X509.X509LeafMissingDigitalSignature.selector
        );
        _expectRoleRejected(
            _replace(_leaf(), _path(0, 7, 0, 1), ""), false, X509.X509LeafMissingDigitalSignature.selector
        );
        // No extensions at all: not a CA, but no digitalSignature either.
        _expectRoleRejected(_replace(_leaf(), _path(0, 7), ""), false, X509.X509LeafMissingDigitalSignature.selector);
        // The instance CA (digitalSignature off, cA on) fails as a leaf on cA first.
        _expectRoleRejected(_instanceCa(), false, X509.X509LeafIsCertificateAuthority.selector);
    }

    function test_basicConstraints_malformed_rejected() public view {
        bytes memory ca = _instanceCa();
        // cA FALSE written out: accepted as in Rust, and the certificate is no CA.
        assertFalse(harness.parse(_replaceExtensionValue(ca, 0, hex"3003010100")).isCA, "explicit cA FALSE");
        _expectRejected(_replaceExtensionValue(ca, 0, hex"30060101ff0201ff"), X509.X509InvalidBasicConstraints.selector);
        _expectRejected(
            _replaceExtensionValue(ca, 0, hex"300a0101ff02050100000000"), X509.X509InvalidBasicConstraints.selector
        );
        _expectRejected(_replaceExtensionValue(ca, 0, hex"30070101ff02020001"), X509.X509InvalidInteger.selector);
        _expectRejected(_replaceExtensionValue(ca, 0, hex"30060201000101ff"), X509.X509TrailingBytes.selector);
        _expectRejected(_replaceExtensionValue(ca, 0, hex"30060101ff020100ff"), X509.X509TrailingBytes.selector);
        _expectRejected(_replaceExtensionValue(ca, 0, hex"04023000"), X509.X509UnexpectedTag.selector);
        X509.Certificate memory cert = harness.parse(_replaceExtensionValue(ca, 0, hex"300a0101ff020500ffffffff"));
        assertEq(cert.pathLen, type(uint32).max, "largest pathLen");
        cert = harness.parse(_replaceExtensionValue(ca, 0, hex"30030101ff"));
        assertTrue(cert.isCA && !cert.hasPathLen, "no pathLen");
    }

    function test_keyUsage_malformed_rejected() public view {
        bytes memory ca = _instanceCa();
        _expectRejected(_replaceExtensionValue(ca, 1, hex"03020105"), X509.X509InvalidBitString.selector); // padding bit set
        _expectRejected(_replaceExtensionValue(ca, 1, hex"03020880"), X509.X509InvalidBitString.selector); // 8 unused
        // Trailing zero bits (not strict DER) are accepted, as the Rust verifier (x509-parser) does.
        X509.Certificate memory trailing = harness.parse(_replaceExtensionValue(ca, 1, hex"0303008400"));
        assertTrue(trailing.keyCertSign && trailing.digitalSignature, "whole-byte key usage");
        _expectRejected(_replaceExtensionValue(ca, 1, hex"030400800000"), X509.X509InvalidKeyUsage.selector);
        _expectRejected(_replaceExtensionValue(ca, 1, hex"0300"), X509.X509InvalidKeyUsage.selector);
        _expectRejected(_replaceExtensionValue(ca, 1, hex"030100ff"), X509.X509TrailingBytes.selector);
        // decipherOnly (bit 8) with keyCertSign: valid DER, keyCertSign read from the first byte.
        X509.Certificate memory cert = harness.parse(_replaceExtensionValue(ca, 1, hex"0303070480"));
        assertTrue(cert.keyCertSign && !cert.digitalSignature, "flags");
        cert = harness.parse(_replaceExtensionValue(ca, 1, hex"030100"));
        assertTrue(!cert.keyCertSign && !cert.digitalSignature, "no bits");
    }

    function test_otherParsedExtensions_malformed_rejected() public view {
        bytes memory ca = _instanceCa(); // extensions: BC, KU, SKI, AKI
        _expectRejected(_replaceExtensionValue(ca, 2, hex"03020000"), X509.X509InvalidExtension.selector);
        _expectRejected(_replaceExtensionValue(ca, 2, hex"04000000"), X509.X509InvalidExtension.selector);
        _expectRejected(_replaceExtensionValue(ca, 3, hex"3006800100800100"), X509.X509InvalidExtension.selector);
        _expectRejected(_replaceExtensionValue(ca, 3, hex"3003830100"), X509.X509InvalidExtension.selector);
        _expectRejected(_replaceExtensionValue(ca, 3, hex"3006820100800100"), X509.X509InvalidExtension.selector);
        harness.parse(_replaceExtensionValue(ca, 3, hex"3008800100a100820101"));
        // The regional CA carries cRLDistributionPoints as its fifth extension.
        bytes memory regional = _chainOf("marlin_aws_2024-12-13")[1];
        harness.parse(regional);
        _expectRejected(_replaceExtensionValue(regional, 4, hex"3000"), X509.X509InvalidExtension.selector);
        _expectRejected(_replaceExtensionValue(regional, 4, hex"30020400"), X509.X509InvalidExtension.selector);
        _expectRejected(_replaceExtensionValue(regional, 4, hex"300230000000"), X509.X509InvalidExtension.selector);
    }

    function test_time_invalid_rejected() public view {
        bytes[11] memory invalid = [
            _tlv(0x17, "241313055742Z"), // month 13
            _tlv(0x17, "240230055742Z"), // 30 February
            _tlv(0x17, "230229055742Z"), // 29 February of a common year
            _tlv(0x17, "241213245742Z"), // hour 24
            _tlv(0x17, "241213056042Z"), // minute 60
            _tlv(0x17, "241213055760Z"), // second 60 (no leap seconds)
            _tlv(0x17, "2412130557Z"), // seconds missing
            _tlv(0x17, "24121305574a2"), // not a digit
            _tlv(0x17, "241213055742+"), // not Z
            _tlv(0x18, "20241213055742.5Z"), // fraction
            _tlv(0x02, hex"0102") // not a time
        ];
        for (uint256 i = 0; i < invalid.length; ++i) {
            _expectRejected(_replace(_leaf(), _path(0, 4, 0), invalid[i]), X509.X509InvalidTime.selector);
            _expectRejected(_replace(_leaf(), _path(0, 4, 1), invalid[i]), X509.X509InvalidTime.selector);
        }
        _expectRejected(_replace(_leaf(), _path(0, 4, 1), ""), X509.X509Truncated.selector);
    }

    function test_time_valid_forms() public view {
        _expectNotBefore(_tlv(0x17, "240229000000Z"), 1_709_164_800); // leap day
        _expectNotBefore(_tlv(0x17, "991231235959Z"), 946_684_799); // 19YY for YY >= 50
        _expectNotBefore(_tlv(0x17, "000229000000Z"), 951_782_400); // 2000 is a leap year
        _expectNotBefore(_tlv(0x17, "700101000000Z"), 0);
        _expectNotBefore(_tlv(0x17, "500101000000Z"), 0); // 1950: before 1970 gives 0, as in Rust
        _expectNotBefore(_tlv(0x18, "20491028142805Z"), 2_519_044_085);
        _expectNotBefore(_tlv(0x18, "20500101000000Z"), 2_524_608_000);
        _expectNotBefore(_tlv(0x18, "99991231235959Z"), 253_402_300_799);
        _expectNotBefore(_tlv(0x18, "19000228000000Z"), 0);
    }

    function test_validity_boundsAreInclusive() public view {
        bytes memory der = _leaf();
        X509.Certificate memory cert = harness.parse(der);
        harness.checkValidity(der, cert.notBefore);
        harness.checkValidity(der, cert.notAfter);
        harness.checkValidityMillis(der, uint256(cert.notAfter) * 1000);
        _expectValidityRejected(der, (uint256(cert.notBefore) - 1) * 1000, X509.X509CertificateNotYetValid.selector);
        _expectValidityRejected(der, uint256(cert.notBefore) * 1000 - 1, X509.X509CertificateNotYetValid.selector);
        _expectValidityRejected(der, (uint256(cert.notAfter) + 1) * 1000, X509.X509CertificateExpired.selector);
        // One millisecond past notAfter is past it (Rust compares milliseconds).
        _expectValidityRejected(der, uint256(cert.notAfter) * 1000 + 1, X509.X509CertificateExpired.selector);
        try harness.checkValidity(der, uint256(cert.notAfter) + 1) {
            revert("accepted after notAfter");
        } catch (bytes memory reason) {
            assertEq(
                reason,
                abi.encodeWithSelector(X509.X509CertificateExpired.selector, cert.notAfter, uint256(cert.notAfter) + 1),
                "expired, in seconds"
            );
        }
        try harness.checkValidity(der, uint256(cert.notBefore) - 1) {
            revert("accepted before notBefore");
        } catch (bytes memory reason) {
            assertEq(
                reason,
                abi.encodeWithSelector(
                    X509.X509CertificateNotYetValid.selector, cert.notBefore, uint256(cert.notBefore) - 1
                ),
                "not yet valid, in seconds"
            );
        }
        // No overflow for any time.
        _expectValidityRejected(der, type(uint256).max, X509.X509CertificateExpired.selector);
        try harness.checkValidity(der, type(uint256).max) {
            revert("accepted at the end of time");
        } catch (bytes memory reason) {
            assertEq(bytes32(bytes4(reason)), bytes32(X509.X509CertificateExpired.selector), "end of time");
        }
    }

    // ============================================================ DER strictness

    function test_der_nonMinimalOrIndefiniteLength_rejected() public view {
        bytes memory der = _leaf();
        (uint256 start, uint256 end) = _locate(der, _path(0, 1)); // serial, 16 bytes
        bytes memory serial = _slice(der, start + 2, end);
        _expectRejected(
            _replace(der, _path(0, 1), bytes.concat(hex"0281", bytes1(uint8(16)), serial)),
            X509.X509NonMinimalLength.selector
        );
        (start, end) = _locate(der, _path(0, 4)); // validity, 30 bytes
        _expectRejected(
            _replace(der, _path(0, 4), bytes.concat(hex"3082001e", _slice(der, start + 2, end))),
            X509.X509NonMinimalLength.selector
        );
        // The TBS (515 bytes) with three length bytes: refused as unsupported.
        (start, end) = _locate(der, _path(0));
        _expectRejected(
            _replace(der, _path(0), bytes.concat(hex"3083000203", _slice(der, start + 4, end))),
            X509.X509UnsupportedLength.selector
        );
        bytes memory indefinite = bytes.concat(hex"3080", _slice(der, 4, der.length), hex"0000");
        _expectRejected(indefinite, X509.X509IndefiniteLength.selector);
    }

    function test_der_trailingBytes_rejected() public view {
        bytes memory der = _leaf();
        _expectRejected(bytes.concat(der, hex"00"), X509.X509TrailingBytes.selector);
        // An element after the extensions inside the TBS.
        (uint256 start, uint256 end) = _locate(der, _path(0, 7));
        _expectRejected(
            _replace(der, _path(0, 7), bytes.concat(_slice(der, start, end), hex"0500")),
            X509.X509TrailingBytes.selector
        );
        // A fourth element in the certificate.
        (start, end) = _locate(der, _path(2));
        _expectRejected(
            _replace(der, _path(2), bytes.concat(_slice(der, start, end), hex"0500")), X509.X509TrailingBytes.selector
        );
        // A byte after an extension's value.
        (start, end) = _locate(der, _path(0, 7, 0, 1));
        _expectRejected(
            _replace(der, _path(0, 7, 0, 1), _tlv(0x30, bytes.concat(_slice(der, start + 2, end), hex"00"))),
            X509.X509TrailingBytes.selector
        );
        _expectRejected(
            _replace(der, _path(0, 7, 0, 1), _tlv(0x30, bytes.concat(_slice(der, start + 2, end), hex"0500"))),
            X509.X509TrailingBytes.selector
        );
        // Inside the version.
        _expectRejected(_replace(der, _path(0, 0), hex"a0050201020500"), X509.X509TrailingBytes.selector);
    }

    function test_der_truncated_rejected() public view {
        bytes memory der = _leaf();
        _expectRejected(_slice(der, 0, der.length - 1), X509.X509LengthOutOfBounds.selector);
        _expectRejected(_slice(der, 0, 1), X509.X509Truncated.selector);
        _expectRejected("", X509.X509Truncated.selector);
        _expectRejected(hex"3081", X509.X509Truncated.selector);
        _expectRejected(hex"308200", X509.X509Truncated.selector);
        _expectRejected(hex"3000", X509.X509Truncated.selector);
    }

    function test_der_unexpectedOrHighTag_rejected() public view {
        bytes memory der = _leaf();
        (uint256 start, uint256 end) = _locate(der, _path(0, 1));
        bytes memory serialContent = _slice(der, start + 2, end);
        try harness.parse(_replace(der, _path(0, 1), _tlv(0x04, serialContent))) {
            revert("accepted");
        } catch (bytes memory reason) {
            assertEq(reason, abi.encodeWithSelector(X509.X509UnexpectedTag.selector, start, 0x02, 0x04), "tag");
        }
        _expectRejected(_replace(der, _path(0, 1), hex"1f0201"), X509.X509UnsupportedTag.selector);
        _expectRejected(bytes.concat(hex"31", _slice(der, 1, der.length)), X509.X509UnexpectedTag.selector);
    }

    function test_der_integerAndOidEncoding_rejected() public view {
        bytes memory der = _leaf();
        _expectRejected(_replace(der, _path(0, 1), hex"0200"), X509.X509InvalidInteger.selector);
        _expectRejected(_replace(der, _path(0, 1), hex"02020001"), X509.X509InvalidInteger.selector);
        _expectRejected(_replace(der, _path(0, 1), hex"0202ff80"), X509.X509InvalidInteger.selector);
        // Negative and 0x00 0x80-prefixed serials are valid DER; x509-parser takes them.
        harness.parse(_replace(der, _path(0, 1), hex"0201ff"));
        harness.parse(_replace(der, _path(0, 1), hex"02020080"));
        // Attribute type OIDs: empty, non-minimal sub-identifier, unterminated.
        _expectRejected(_replace(der, _path(0, 3, 0, 0, 0), hex"0600"), X509.X509InvalidObjectIdentifier.selector);
        _expectRejected(_replace(der, _path(0, 3, 0, 0, 0), hex"0603558006"), X509.X509InvalidObjectIdentifier.selector);
        _expectRejected(_replace(der, _path(0, 3, 0, 0, 0), hex"0603550486"), X509.X509InvalidObjectIdentifier.selector);
        _expectRejected(_replace(der, _path(0, 7, 0, 0, 0), hex"0603551d93"), X509.X509InvalidObjectIdentifier.selector);
    }

    function test_names_malformed_rejected() public view {
        bytes memory der = _leaf();
        _expectRejected(_replace(der, _path(0, 3, 0), hex"3100"), X509.X509InvalidName.selector);
        _expectRejected(_replace(der, _path(0, 5, 0, 0), hex"3005060355040a"), X509.X509InvalidName.selector);
        _expectRejected(
            _replace(der, _path(0, 5, 0, 0), hex"300b0603550406130255530500"), X509.X509TrailingBytes.selector
        );
        _expectRejected(_replace(der, _path(0, 3, 0), hex"300b0603550406130255530500"), X509.X509UnexpectedTag.selector);
        // An empty Name parses (x509-parser allows it) but then links to nothing real.
        X509.Certificate memory cert = harness.parse(_replace(der, _path(0, 3), hex"3000"));
        assertEq(cert.issuerHash, keccak256(hex"3000"), "empty issuer");
    }

    function test_uniqueIdentifiers_acceptedWhenWellFormed() public view {
        bytes memory der = _leaf();
        (uint256 start, uint256 end) = _locate(der, _path(0, 6));
        bytes memory spki = _slice(der, start, end);
        harness.parse(_replace(der, _path(0, 6), bytes.concat(spki, hex"810200ff", hex"82020780")));
        _expectRejected(
            _replace(der, _path(0, 6), bytes.concat(spki, hex"81020801")), X509.X509InvalidBitString.selector
        );
        _expectRejected(_replace(der, _path(0, 6), bytes.concat(spki, hex"8100")), X509.X509InvalidBitString.selector);
        // Out of order: subjectUniqueID before issuerUniqueID.
        _expectRejected(
            _replace(der, _path(0, 6), bytes.concat(spki, hex"820100", hex"810100")), X509.X509TrailingBytes.selector
        );
    }

    function test_signatureValue_malformed_rejected() public view {
        bytes memory der = _leaf();
        bytes memory one = _integer(hex"01");
        bytes memory n =
            hex"00ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
        _expectRejected(_withSignature(der, _integer(n), one), X509.X509InvalidSignatureValue.selector); // r = n
        _expectRejected(_withSignature(der, one, _integer(n)), X509.X509InvalidSignatureValue.selector); // s = n
        _expectRejected(_withSignature(der, _integer(hex"00"), one), X509.X509InvalidSignatureValue.selector); // r = 0
        _expectRejected(_withSignature(der, _integer(hex"ff"), one), X509.X509InvalidSignatureValue.selector); // negative
        _expectRejected(_withSignature(der, _integer(hex"0001"), one), X509.X509InvalidInteger.selector); // non-minimal
        bytes memory fortyNine = bytes.concat(hex"01", new bytes(48));
        _expectRejected(_withSignature(der, _integer(fortyNine), one), X509.X509InvalidSignatureValue.selector);
        // Unused bits in the BIT STRING, a third INTEGER, a sequence of the wrong type.
        bytes memory sequence = _tlv(0x30, bytes.concat(one, one));
        _expectRejected(
            _replace(der, _path(2), _tlv(0x03, bytes.concat(hex"01", sequence))),
            X509.X509InvalidSignatureValue.selector
        );
        _expectRejected(_replace(der, _path(2), _tlv(0x03, "")), X509.X509InvalidSignatureValue.selector);
        _expectRejected(_withSignature(der, one, bytes.concat(one, one)), X509.X509TrailingBytes.selector);
        _expectRejected(
            _replace(der, _path(2), _tlv(0x03, bytes.concat(hex"00", sequence, hex"00"))),
            X509.X509TrailingBytes.selector
        );
        _expectRejected(
            _replace(der, _path(2), _tlv(0x03, bytes.concat(hex"00", _tlv(0x31, bytes.concat(one, one))))),
            X509.X509UnexpectedTag.selector
        );
    }

    // ============================================================ fuzz

    /// Random bytes: rejected with one of the parser's own errors (never a panic), or parsed.
    function testFuzz_randomBytes_onlyOwnErrors(bytes memory der) public view {
        try harness.parse(der) {}
        catch (bytes memory reason) {
            _assertOwnError(reason);
        }
    }

    /// Random bytes behind a valid certificate header (so the fuzzer reaches the inner parsers).
    function testFuzz_randomTbs_onlyOwnErrors(bytes memory tbs) public view {
        bytes memory der = _tlv(0x30, bytes.concat(_tlv(0x30, tbs), hex"300a06082a8648ce3d040303"));
        try harness.parse(der) {}
        catch (bytes memory reason) {
            _assertOwnError(reason);
        }
    }

    /// A real certificate with one byte changed: parsed or rejected with the parser's own errors;
    /// a change in the structure bytes that frame the certificate is never accepted.
    function testFuzz_oneByteChanged_onlyOwnErrors(uint256 which, uint256 position, uint8 delta) public view {
        bytes memory der = _someRealCertificate(which);
        position = bound(position, 0, der.length - 1);
        delta = uint8(bound(delta, 1, 255));
        der[position] = bytes1(uint8(der[position]) ^ delta);
        try harness.parse(der) returns (X509.Certificate memory) {
            // The outer and TBS headers (tag and lengths) decide the framing: a change there
            // cannot leave a valid certificate.
            assertTrue(position >= 8, "changed framing accepted");
        } catch (bytes memory reason) {
            _assertOwnError(reason);
        }
    }

    /// Every byte of the leaf inverted in turn, and every proper prefix of it: each either parses
    /// (a byte inside a string, key, signature or time digit) or fails with the parser's own
    /// error; no prefix parses.
    function test_leaf_everyByteInvertedAndEveryPrefix_onlyOwnErrors() public view {
        bytes memory der = _leaf();
        uint256 accepted;
        for (uint256 position = 0; position < der.length; ++position) {
            der[position] ^= 0xff;
            try harness.parse(der) {
                ++accepted;
            } catch (bytes memory reason) {
                _assertOwnError(reason);
            }
            der[position] ^= 0xff;
            try harness.parse(_slice(der, 0, position)) {
                revert("prefix accepted");
            } catch (bytes memory reason) {
                _assertOwnError(reason);
            }
        }
        // Key, signature and name bytes take any value; the structure bytes do not.
        assertTrue(accepted > 0 && accepted < der.length, "some but not all inversions parse");
    }

    /// A real certificate cut short is never accepted.
    function testFuzz_truncated_rejected(uint256 which, uint256 length) public view {
        bytes memory der = _someRealCertificate(which);
        length = bound(length, 0, der.length - 1);
        try harness.parse(_slice(der, 0, length)) {
            revert("truncated certificate accepted");
        } catch (bytes memory reason) {
            _assertOwnError(reason);
        }
    }

    /// A real certificate with bytes appended is never accepted.
    function testFuzz_appended_rejected(uint256 which, bytes memory extra) public view {
        vm.assume(extra.length > 0);
        try harness.parse(bytes.concat(_someRealCertificate(which), extra)) {
            revert("certificate with trailing bytes accepted");
        } catch (bytes memory reason) {
            assertEq(bytes4(reason), X509.X509TrailingBytes.selector, "trailing bytes");
        }
    }

    /// Any instant from 1970 to 9999 written as GeneralizedTime (and as UTCTime before 2050) reads
    /// back as itself; the date is formatted with a civil-from-days conversion independent of the
    /// parser's days-from-civil.
    function testFuzz_time_roundTrips(uint256 timestamp) public view {
        timestamp = bound(timestamp, 0, 253_402_300_799);
        (uint256 year, uint256 month, uint256 day) = _civilFromDays(timestamp / 86_400);
        uint256 secondOfDay = timestamp % 86_400;
        bytes memory rest = bytes.concat(
            _twoDigits(month),
            _twoDigits(day),
            _twoDigits(secondOfDay / 3600),
            _twoDigits((secondOfDay / 60) % 60),
            _twoDigits(secondOfDay % 60),
            "Z"
        );
        bytes memory generalized = _tlv(0x18, bytes.concat(_twoDigits(year / 100), _twoDigits(year % 100), rest));
        _expectNotBefore(generalized, timestamp);
        if (year < 2050) _expectNotBefore(_tlv(0x17, bytes.concat(_twoDigits(year % 100), rest)), timestamp);
    }

    // ============================================================ helpers: expectations

    function _expectRejected(bytes memory der, bytes4 selector) internal view {
        try harness.parse(der) {
            revert(string.concat("accepted, expected selector ", vm.toString(uint256(uint32(selector)))));
        } catch (bytes memory reason) {
            assertEq(bytes32(bytes4(reason)), bytes32(selector), "revert reason");
        }
    }

    function _expectRoleRejected(bytes memory der, bool asCa, bytes4 selector) internal view {
        if (asCa) {
            try harness.checkCertificateAuthority(der) {
                revert("accepted as CA");
            } catch (bytes memory reason) {
                assertEq(reason, abi.encodeWithSelector(selector), "CA rule");
            }
        } else {
            try harness.checkLeaf(der) {
                revert("accepted as leaf");
            } catch (bytes memory reason) {
                assertEq(reason, abi.encodeWithSelector(selector), "leaf rule");
            }
        }
    }

    function _expectValidityRejected(bytes memory der, uint256 atMillis, bytes4 selector) internal view {
        try harness.checkValidityMillis(der, atMillis) {
            revert("accepted outside the validity window");
        } catch (bytes memory reason) {
            assertEq(bytes32(bytes4(reason)), bytes32(selector), "validity");
        }
    }

    function _expectNotBefore(bytes memory time, uint256 expected) internal view {
        assertEq(harness.parse(_replace(_leaf(), _path(0, 4, 0), time)).notBefore, expected, string(time));
    }

    function _assertOwnError(bytes memory reason) internal pure {
        bytes4 selector = bytes4(reason);
        bytes4[23] memory own = [
            X509.X509Truncated.selector,
            X509.X509UnsupportedTag.selector,
            X509.X509IndefiniteLength.selector,
            X509.X509NonMinimalLength.selector,
            X509.X509UnsupportedLength.selector,
            X509.X509LengthOutOfBounds.selector,
            X509.X509UnexpectedTag.selector,
            X509.X509TrailingBytes.selector,
            X509.X509InvalidInteger.selector,
            X509.X509InvalidBoolean.selector,
            X509.X509InvalidObjectIdentifier.selector,
            X509.X509InvalidBitString.selector,
            X509.X509UnsupportedVersion.selector,
            X509.X509UnsupportedSignatureAlgorithm.selector,
            X509.X509UnsupportedPublicKey.selector,
            X509.X509InvalidName.selector,
            X509.X509InvalidTime.selector,
            X509.X509InvalidSignatureValue.selector,
            X509.X509UnknownCriticalExtension.selector,
            X509.X509DuplicateExtension.selector,
            X509.X509InvalidBasicConstraints.selector,
            X509.X509InvalidKeyUsage.selector,
            X509.X509InvalidExtension.selector
        ];
        for (uint256 i = 0; i < own.length; ++i) {
            if (selector == own[i]) return;
        }
        // Anything else (a panic, an empty revert) is a bug: re-raise it so forge shows it.
        assembly ("memory-safe") {
            revert(add(reason, 0x20), mload(reason))
        }
    }

    // ============================================================ helpers: real material

    /// Test-only extraction of the certificates from a document (the CBOR parser is another
    /// library): the byte strings under the "cabundle" and "certificate" keys, root first.
    /// The certificates of a document, root first, leaf last (parsed with NitroDocument).
    function _chain(bytes memory document) internal pure returns (bytes[] memory chain) {
        NitroDocument.Document memory parsed = NitroDocument.parse(document);
        chain = new bytes[](parsed.cabundle.length + 1);
        for (uint256 i = 0; i < parsed.cabundle.length; ++i) {
            chain[i] = parsed.cabundle[i];
        }
        chain[parsed.cabundle.length] = parsed.certificate;
    }

    function _chainOf(string memory name) internal view returns (bytes[] memory) {
        return _chain(files.readFileBinary(string.concat(VECTORS, name, ".cbor")));
    }

    /// The leaf of marlin_aws_2024-12-13 (extensions: basicConstraints, keyUsage, both critical).
    function _leaf() internal view returns (bytes memory) {
        return _chainOf("marlin_aws_2024-12-13")[4];
    }

    /// The instance CA of marlin_aws_2024-12-13 (extensions: basicConstraints pathLen 0, keyUsage
    /// keyCertSign, subjectKeyIdentifier, authorityKeyIdentifier).
    function _instanceCa() internal view returns (bytes memory) {
        return _chainOf("marlin_aws_2024-12-13")[3];
    }

    function _someRealCertificate(uint256 which) internal view returns (bytes memory) {
        string[8] memory names = _documentNames();
        bytes[] memory chain = _chainOf(names[which % names.length]);
        return chain[(which / names.length) % chain.length];
    }

    /// "YYYY-MM-DDTHH:MM:SS+00:00" as Unix seconds, counted year by year (independent of the
    /// parser's arithmetic).
    function _isoToUnix(string memory iso) internal pure returns (uint256 seconds_) {
        bytes memory b = bytes(iso);
        require(b.length == 25 && b[19] == "+", "unexpected time format");
        uint256 year = _number(b, 0, 4);
        uint256 month = _number(b, 5, 2);
        uint8[12] memory lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        uint256 days_;
        for (uint256 y = 1970; y < year; ++y) {
            days_ += _isLeap(y) ? 366 : 365;
        }
        for (uint256 m = 1; m < month; ++m) {
            days_ += lengths[m - 1] + (m == 2 && _isLeap(year) ? 1 : 0);
        }
        days_ += _number(b, 8, 2) - 1;
        seconds_ = days_ * 86_400 + _number(b, 11, 2) * 3600 + _number(b, 14, 2) * 60 + _number(b, 17, 2);
    }

    function _isLeap(uint256 year) internal pure returns (bool) {
        return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    }

    function _number(bytes memory b, uint256 start, uint256 count) internal pure returns (uint256 value) {
        for (uint256 i = 0; i < count; ++i) {
            value = value * 10 + (uint8(b[start + i]) - 48);
        }
    }

    /// Days since 1970-01-01 to a civil date, by walking years and months.
    function _civilFromDays(uint256 days_) internal pure returns (uint256 year, uint256 month, uint256 day) {
        year = 1970;
        // Jump 400-year cycles (146,097 days each) first to keep the walk short.
        year += (days_ / 146_097) * 400;
        days_ %= 146_097;
        while (days_ >= (_isLeap(year) ? 366 : 365)) {
            days_ -= _isLeap(year) ? 366 : 365;
            ++year;
        }
        uint8[12] memory lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        month = 1;
        while (true) {
            uint256 length = lengths[month - 1] + (month == 2 && _isLeap(year) ? 1 : 0);
            if (days_ < length) break;
            days_ -= length;
            ++month;
        }
        day = days_ + 1;
    }

    function _twoDigits(uint256 value) internal pure returns (bytes memory) {
        return abi.encodePacked(bytes1(uint8(48 + value / 10)), bytes1(uint8(48 + value % 10)));
    }

    // ============================================================ helpers: DER surgery

    function _path(uint256 a) internal pure returns (uint256[] memory p) {
        p = new uint256[](1);
        p[0] = a;
    }

    function _path(uint256 a, uint256 b) internal pure returns (uint256[] memory p) {
        p = new uint256[](2);
        (p[0], p[1]) = (a, b);
    }

    function _path(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory p) {
        p = new uint256[](3);
        (p[0], p[1], p[2]) = (a, b, c);
    }

    function _path(uint256 a, uint256 b, uint256 c, uint256 d) internal pure returns (uint256[] memory p) {
        p = new uint256[](4);
        (p[0], p[1], p[2], p[3]) = (a, b, c, d);
    }

    function _path(uint256 a, uint256 b, uint256 c, uint256 d, uint256 e) internal pure returns (uint256[] memory p) {
        p = new uint256[](5);
        (p[0], p[1], p[2], p[3], p[4]) = (a, b, c, d, e);
    }

    /// Header and content length of the (well-formed) element at `at`.
    function _headerAt(bytes memory der, uint256 at) internal pure returns (uint256 headerLength, uint256 length) {
        uint256 first = uint8(der[at + 1]);
        if (first < 0x80) return (2, first);
        uint256 count = first & 0x7f;
        for (uint256 i = 0; i < count; ++i) {
            length = (length << 8) | uint8(der[at + 2 + i]);
        }
        return (2 + count, length);
    }

    /// Bounds of the element reached by `path` (child indices, from the outer element's content).
    function _locate(bytes memory der, uint256[] memory path) internal pure returns (uint256 start, uint256 end) {
        (uint256 headerLength, uint256 length) = _headerAt(der, 0);
        end = headerLength + length;
        for (uint256 depth = 0; depth < path.length; ++depth) {
            uint256 child = start + headerLength;
            for (uint256 i = 0;; ++i) {
                require(child < end, "path leaves the element");
                (uint256 childHeader, uint256 childLength) = _headerAt(der, child);
                if (i == path[depth]) {
                    (start, end, headerLength) = (child, child + childHeader + childLength, childHeader);
                    break;
                }
                child += childHeader + childLength;
            }
        }
    }

    /// `der` with the element at `path` replaced by `replacement` (empty: removed) and every
    /// enclosing length re-encoded.
    function _replace(bytes memory der, uint256[] memory path, bytes memory replacement)
        internal
        pure
        returns (bytes memory)
    {
        if (path.length == 0) return replacement;
        uint256[] memory parentPath = new uint256[](path.length - 1);
        for (uint256 i = 0; i < parentPath.length; ++i) {
            parentPath[i] = path[i];
        }
        (uint256 parentStart, uint256 parentEnd) = _locate(der, parentPath);
        (uint256 start, uint256 end) = _locate(der, path);
        (uint256 parentHeader,) = _headerAt(der, parentStart);
        bytes memory content =
            bytes.concat(_slice(der, parentStart + parentHeader, start), replacement, _slice(der, end, parentEnd));
        bytes memory parent = _tlv(uint8(der[parentStart]), content);
        return _replace(der, parentPath, parent);
    }

    /// A DER element with a minimal length.
    function _tlv(uint256 tag, bytes memory content) internal pure returns (bytes memory) {
        uint256 length = content.length;
        if (length < 0x80) return bytes.concat(bytes1(uint8(tag)), bytes1(uint8(length)), content);
        if (length < 0x100) return bytes.concat(bytes1(uint8(tag)), hex"81", bytes1(uint8(length)), content);
        return bytes.concat(bytes1(uint8(tag)), hex"82", bytes2(uint16(length)), content);
    }

    function _integer(bytes memory content) internal pure returns (bytes memory) {
        return _tlv(0x02, content);
    }

    function _extension(bytes memory oid, bool critical, bytes memory value) internal pure returns (bytes memory) {
        return _tlv(0x30, bytes.concat(_tlv(0x06, oid), critical ? bytes(hex"0101ff") : bytes(""), _tlv(0x04, value)));
    }

    /// `der` with `extension` appended to its extension list.
    function _insertExtension(bytes memory der, bytes memory extension) internal pure returns (bytes memory) {
        (uint256 start, uint256 end) = _locate(der, _path(0, 7, 0));
        (uint256 header,) = _headerAt(der, start);
        return _replace(der, _path(0, 7, 0), _tlv(0x30, bytes.concat(_slice(der, start + header, end), extension)));
    }

    /// `der` with the value (inside the OCTET STRING) of its extension number `index` replaced.
    function _replaceExtensionValue(bytes memory der, uint256 index, bytes memory value)
        internal
        pure
        returns (bytes memory)
    {
        (uint256 start, uint256 end) = _locate(der, _path(0, 7, 0, index, 0));
        bytes memory oid = _slice(der, start, end);
        // The critical flag (three bytes), if any, sits between the OID and the value.
        bytes memory flag = uint8(der[end]) == 0x01 ? _slice(der, end, end + 3) : bytes("");
        return _replace(der, _path(0, 7, 0, index), _tlv(0x30, bytes.concat(oid, flag, _tlv(0x04, value))));
    }

    /// `der` with its signature value replaced by the DER SEQUENCE of `r` and `s` elements.
    function _withSignature(bytes memory der, bytes memory r, bytes memory s) internal pure returns (bytes memory) {
        return _replace(der, _path(2), _tlv(0x03, bytes.concat(hex"00", _tlv(0x30, bytes.concat(r, s)))));
    }

    function _slice(bytes memory data, uint256 start, uint256 end) internal pure returns (bytes memory out) {
        out = new bytes(end - start);
        for (uint256 i = 0; i < out.length; ++i) {
            out[i] = data[start + i];
        }
    }
}
