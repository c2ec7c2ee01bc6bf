// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {NitroVectors} from "./utils/NitroVectors.sol";
import {EnclaveRegistry} from "../src/EnclaveRegistry.sol";
import {IEnclaveRegistry} from "../src/interfaces/IEnclaveRegistry.sol";
import {IEs384Verifier} from "../src/nitro/IEs384Verifier.sol";
import {NitroDocument} from "../src/nitro/NitroDocument.sol";
import {NitroRegistrar} from "../src/nitro/NitroRegistrar.sol";
import {X509} from "../src/nitro/X509.sol";

/// @notice `NitroRegistrar` against the real AWS Nitro documents of `shared/vectors/nitro/`, each at
/// its own time (`vm.warp`), with the hints `nitro-hints` computed for them
/// (`test/data/nitro-document-hints.json`, kept current by `cargo test -p nitro-hints`).
/// Registration of a policy-conforming document (the DESIGN's `public_key` and `user_data`) runs
/// end to end on anvil in relayer/tests/chain.rs; here the real documents exercise the
/// verification and the policy checks that refuse them.
contract NitroRegistrarTest is Test, NitroVectors {
    string internal constant HINTS_FILE = "test/data/nitro-document-hints.json";
    uint256 internal constant DOCUMENTS = 8;
    /// A non-debug document (public_key and user_data not in our format) and a debug one.
    uint256 internal constant MARLIN = 5; // marlin_aws_2024-12-13 in the hints file's order
    uint256 internal constant EVERVAULT_DEBUG = 0; // evervault_beta_debug_2022-10-12

    EnclaveRegistry internal registry;
    NitroRegistrar internal registrar;
    IEs384Verifier internal es384;
    string internal hintsJson;

    function setUp() public {
        hintsJson = vm.readFile(HINTS_FILE);
        registry = new EnclaveRegistry(address(this), 30 days);
        (bytes memory document,,) = _document(MARLIN);
        NitroDocument.Document memory parsed = NitroDocument.parse(document);
        // From its own artifact: built at full optimizer runs, as deployed (importing it here would
        // build it with this file's 200-run restriction).
        es384 = IEs384Verifier(vm.deployCode("Es384Verifier.sol:Es384Verifier"));
        registrar = new NitroRegistrar(registry, es384, parsed.cabundle[0], 1 hours);
        registry.setRegistrar(address(registrar), true);
    }

    function _document(uint256 index)
        internal
        view
        returns (bytes memory document, bytes[] memory hints, string memory name)
    {
        string memory key = string.concat(".documents[", vm.toString(index), "]");
        name = vm.parseJsonString(hintsJson, string.concat(key, ".file"));
        hints = vm.parseJsonBytesArray(hintsJson, string.concat(key, ".hints"));
        document = vm.readFileBinary(string.concat(VECTORS, name));
    }

    function _warpTo(bytes memory document) internal returns (NitroDocument.Document memory parsed) {
        parsed = NitroDocument.parse(document);
        vm.warp(parsed.timestampMs / 1000);
    }

    function test_theRootIsTheAwsNitroRootG1() public view {
        assertTrue(registrar.isAwsRoot(), "the documents' root is the pinned AWS root");
        assertEq(registrar.rootCertificateSha256(), registrar.AWS_NITRO_ROOT_G1_SHA256(), "root hash");
        assertEq(registrar.AWS_NITRO_ROOT_G1_SHA256(), AWS_ROOT_SHA256, "the constant is the AWS root's hash");
    }

    function test_everyRealDocumentVerifiesAtItsOwnTime() public {
        for (uint256 i; i < DOCUMENTS; ++i) {
            (bytes memory document, bytes[] memory hints, string memory name) = _document(i);
            NitroDocument.Document memory parsed = _warpTo(document);
            NitroRegistrar.Attestation memory attestation = registrar.verifyAttestation(document, hints);
            assertEq(attestation.timestampMs, parsed.timestampMs, name);
            assertEq(attestation.debugMode, NitroDocument.isDebugMode(parsed), name);
            (, bytes memory pcr0) = NitroDocument.pcr(parsed, 0);
            (, bytes memory pcr1) = NitroDocument.pcr(parsed, 1);
            (, bytes memory pcr2) = NitroDocument.pcr(parsed, 2);
            assertEq(attestation.imageId, keccak256(abi.encodePacked(pcr0, pcr1, pcr2)), name);
            assertEq(attestation.userData, parsed.userData, name);
            assertEq(attestation.hasUserData, parsed.hasUserData, name);
            assertEq(attestation.hasPublicKey, parsed.hasPublicKey, name);
            assertEq(attestation.hasNonce, parsed.hasNonce, name);
        }
    }

    function test_cachedIntermediatesVerifyTheSameDocumentCheaper() public {
        (bytes memory document, bytes[] memory hints,) = _document(MARLIN);
        NitroDocument.Document memory parsed = _warpTo(document);
        uint256 before = gasleft();
        registrar.verifyAttestation(document, hints);
        uint256 cold = before - gasleft();

        bytes32 parent = keccak256(parsed.cabundle[0]);
        for (uint256 i = 1; i < parsed.cabundle.length; ++i) {
            bytes32 hash = registrar.cacheCertificate(parsed.cabundle[i], parent, hints[i - 1]);
            assertEq(hash, keccak256(parsed.cabundle[i]), "cache key");
            NitroRegistrar.Link memory link = registrar.cachedCertificate(hash);
            assertEq(link.parent, parent, "cached parent");
            parent = hash;
        }
        // Cached certificates need no hint any more.
        for (uint256 i; i + 2 < hints.length; ++i) {
            hints[i] = "";
        }
        before = gasleft();
        registrar.verifyAttestation(document, hints);
        uint256 warm = before - gasleft();
        emit log_named_uint("verify cold (one call)", cold);
        emit log_named_uint("verify warm (intermediates cached)", warm);
        assertLe(warm, cold, "the cache saves gas");
    }

    function test_aCachedCertificateIsRecheckedForExpiryOnEveryUse() public {
        (bytes memory document, bytes[] memory hints,) = _document(MARLIN);
        NitroDocument.Document memory parsed = _warpTo(document);
        bytes32 parent = keccak256(parsed.cabundle[0]);
        bytes32 cached = registrar.cacheCertificate(parsed.cabundle[1], parent, hints[0]);
        NitroRegistrar.Link memory link = registrar.cachedCertificate(cached);
        vm.warp(uint256(link.validUntil) + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                NitroRegistrar.CertificateExpired.selector, 1, link.validUntil, uint256(link.validUntil) + 1
            )
        );
        registrar.verifyAttestation(document, hints);
    }

    function test_cachingNeedsAKnownParent() public {
        (bytes memory document, bytes[] memory hints,) = _document(MARLIN);
        NitroDocument.Document memory parsed = _warpTo(document);
        bytes32 unknown = keccak256(parsed.cabundle[1]);
        vm.expectRevert(abi.encodeWithSelector(NitroRegistrar.ParentNotCached.selector, unknown));
        registrar.cacheCertificate(parsed.cabundle[2], unknown, hints[1]);
    }

    function test_expiredAndNotYetValidChainsAreRefused() public {
        (bytes memory document, bytes[] memory hints,) = _document(MARLIN);
        NitroDocument.Document memory parsed = _warpTo(document);
        // The leaf lives about three hours.
        vm.warp(parsed.timestampMs / 1000 + 1 days);
        vm.expectRevert();
        registrar.verifyAttestation(document, hints);
        vm.warp(parsed.timestampMs / 1000 - 1 days);
        vm.expectRevert();
        registrar.verifyAttestation(document, hints);
    }

    /// A flipped byte anywhere that matters (signature, payload fields, any certificate) reverts.
    function test_everyMutatedVariantReverts() public {
        (bytes memory document, bytes[] memory hints,) = _document(MARLIN);
        NitroDocument.Document memory parsed = _warpTo(document);
        uint256[] memory offsets = new uint256[](5);
        offsets[0] = document.length - 1; // inside the signature
        offsets[1] = document.length - 60; // signature, r
        offsets[2] = 40; // early payload: module id / digest
        offsets[3] = document.length / 2; // inside the chain
        offsets[4] = document.length - 250; // late payload: public key / user data / nonce
        for (uint256 i; i < offsets.length; ++i) {
            document[offsets[i]] ^= 0x01;
            vm.expectRevert();
            registrar.verifyAttestation(document, hints);
            document[offsets[i]] ^= 0x01;
        }
        // One byte in the middle of every certificate (signed part or signature).
        for (uint256 c; c <= parsed.cabundle.length; ++c) {
            bytes memory certificate = c < parsed.cabundle.length ? parsed.cabundle[c] : parsed.certificate;
            uint256 at = _find(document, certificate) + certificate.length / 2;
            document[at] ^= 0x01;
            vm.expectRevert();
            registrar.verifyAttestation(document, hints);
            document[at] ^= 0x01;
            at = _find(document, certificate) + certificate.length - 10;
            document[at] ^= 0x01;
            vm.expectRevert();
            registrar.verifyAttestation(document, hints);
            document[at] ^= 0x01;
        }
        registrar.verifyAttestation(document, hints); // restored: verifies again
    }

    /// A certificate whose key is not a P-384 point is refused before its signature is looked at
    /// (as the Rust verifier refuses to parse such a key).
    function test_aKeyOffTheCurveIsRefused() public {
        (bytes memory document, bytes[] memory hints,) = _document(MARLIN);
        NitroDocument.Document memory parsed = _warpTo(document);
        bytes memory leafKey = X509.parse(parsed.certificate).publicKey;
        uint256 at = _find(document, leafKey) + 20;
        document[at] ^= 0x01;
        vm.expectRevert(abi.encodeWithSelector(NitroRegistrar.CertificateKeyInvalid.selector, parsed.cabundle.length));
        registrar.verifyAttestation(document, hints);
    }

    function test_wrongHintsAreRefused() public {
        (bytes memory document, bytes[] memory hints,) = _document(MARLIN);
        _warpTo(document);
        bytes[] memory short = new bytes[](hints.length - 1);
        for (uint256 i; i < short.length; ++i) {
            short[i] = hints[i];
        }
        vm.expectRevert(abi.encodeWithSelector(NitroRegistrar.HintCountMismatch.selector, hints.length, short.length));
        registrar.verifyAttestation(document, short);
        // Swapped hints: the first link's hint for the document and back.
        (hints[0], hints[hints.length - 1]) = (hints[hints.length - 1], hints[0]);
        vm.expectRevert(abi.encodeWithSelector(NitroRegistrar.CertificateSignatureInvalid.selector, 1));
        registrar.verifyAttestation(document, hints);
    }

    /// A document whose root differs from the pinned one in a single byte (its signature) is
    /// refused before anything else is looked at.
    function test_anotherRootIsRefused() public {
        (bytes memory document, bytes[] memory hints,) = _document(MARLIN);
        NitroDocument.Document memory parsed = _warpTo(document);
        bytes memory root = parsed.cabundle[0];
        uint256 at = _find(document, root) + root.length - 3;
        document[at] ^= 0x01;
        root[root.length - 3] ^= 0x01;
        vm.expectRevert(abi.encodeWithSelector(NitroRegistrar.RootCertificateMismatch.selector, keccak256(root)));
        registrar.verifyAttestation(document, hints);
    }

    function test_theRootMustBeASelfIssuedAuthority() public {
        (bytes memory document,,) = _document(MARLIN);
        NitroDocument.Document memory parsed = NitroDocument.parse(document);
        // An intermediate is a CA but not self-issued; the leaf is no CA.
        vm.expectRevert(NitroRegistrar.RootNotSelfIssuedAuthority.selector);
        new NitroRegistrar(registry, es384, parsed.cabundle[1], 1 hours);
        vm.expectRevert(NitroRegistrar.RootNotSelfIssuedAuthority.selector);
        new NitroRegistrar(registry, es384, parsed.certificate, 1 hours);
    }

    function test_policyRefusesDebugDocuments() public {
        (bytes memory document, bytes[] memory hints,) = _document(EVERVAULT_DEBUG);
        NitroDocument.Document memory parsed = _warpTo(document);
        assertTrue(NitroDocument.isDebugMode(parsed), "a debug-mode document");
        vm.expectRevert(NitroRegistrar.DebugModeRejected.selector);
        registrar.register(document, hints, uint64(block.timestamp + 1 days));
    }

    function test_policyRefusesOldDocumentsAndForeignFormats() public {
        (bytes memory document, bytes[] memory hints,) = _document(MARLIN);
        NitroDocument.Document memory parsed = _warpTo(document);
        // Its public_key is not a 65-byte secp256k1 key: not one of our enclaves.
        vm.expectRevert(NitroRegistrar.EnclaveKeyMalformed.selector);
        registrar.register(document, hints, uint64(block.timestamp + 1 days));

        uint256 tooLate = parsed.timestampMs / 1000 + 1 hours + 1;
        vm.warp(tooLate);
        vm.expectRevert(abi.encodeWithSelector(NitroRegistrar.AttestationTooOld.selector, parsed.timestampMs, tooLate));
        registrar.register(document, hints, uint64(block.timestamp + 1 days));
    }

    function test_constructorChecks() public {
        (bytes memory document,,) = _document(MARLIN);
        NitroDocument.Document memory parsed = NitroDocument.parse(document);
        vm.expectRevert(NitroRegistrar.ZeroAddress.selector);
        new NitroRegistrar(IEnclaveRegistry(address(0)), es384, parsed.cabundle[0], 1 hours);
        vm.expectRevert(abi.encodeWithSelector(NitroRegistrar.MaxAttestationAgeOutOfRange.selector, 0, 1 days));
        new NitroRegistrar(registry, es384, parsed.cabundle[0], 0);
        vm.expectRevert(abi.encodeWithSelector(NitroRegistrar.MaxAttestationAgeOutOfRange.selector, 1 days + 1, 1 days));
        new NitroRegistrar(registry, es384, parsed.cabundle[0], 1 days + 1);
    }

    function _find(bytes memory haystack, bytes memory needle) internal pure returns (uint256) {
        bytes32 head;
        assembly ("memory-safe") {
            head := mload(add(needle, 0x20))
        }
        for (uint256 i; i + needle.length <= haystack.length; ++i) {
            bytes32 word;
            assembly ("memory-safe") {
                word := mload(add(add(haystack, 0x20), i))
            }
            if (word == head) return i;
        }
        revert("certificate not found in the document");
    }
}
