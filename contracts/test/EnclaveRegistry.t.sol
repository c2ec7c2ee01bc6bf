// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Fixtures} from "./utils/Fixtures.sol";
import {EnclaveRegistry} from "../src/EnclaveRegistry.sol";
import {IEnclaveRegistry} from "../src/interfaces/IEnclaveRegistry.sol";
import {ECDSA} from "../src/utils/ECDSA.sol";
import {Owned} from "../src/utils/Owned.sol";

contract EnclaveRegistryTest is Fixtures {
    uint256 internal constant NEW_KEY = 0x1234;
    address internal newEnclave;

    function setUp() public override {
        super.setUp();
        newEnclave = vm.addr(NEW_KEY);
    }

    function freshStatement() internal view returns (EnclaveRegistry.EnclaveRegistration memory) {
        return statementFor(newEnclave, MODEL, uint64(START + 1 days), uint64(START * 1000));
    }

    function status(address who, bytes32 modelHash) internal view returns (uint256) {
        return uint256(registry.enclaveStatus(who, modelHash));
    }

    // ----- construction and ownership -----

    function test_constructor_setsOwnerAndValidity() public view {
        assertEq(registry.owner(), address(this), "owner");
        assertEq(uint256(registry.maxRegistrationValidity()), VALIDITY, "validity");
    }

    function test_constructor_revertsOnZeroOwner() public {
        vm.expectRevert(Owned.ZeroOwner.selector);
        new EnclaveRegistry(address(0), VALIDITY);
    }

    function test_constructor_revertsOnValidityOutOfRange() public {
        vm.expectRevert(
            abi.encodeWithSelector(EnclaveRegistry.MaxRegistrationValidityOutOfRange.selector, uint64(0), 366 days)
        );
        new EnclaveRegistry(address(this), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                EnclaveRegistry.MaxRegistrationValidityOutOfRange.selector, uint64(366 days + 1), 366 days
            )
        );
        new EnclaveRegistry(address(this), 366 days + 1);
    }

    function test_ownership_twoStepTransfer() public {
        registry.transferOwnership(stranger);
        assertEq(registry.owner(), address(this), "owner unchanged until accepted");
        vm.prank(stranger);
        registry.acceptOwnership();
        assertEq(registry.owner(), stranger, "new owner");
        assertEq(registry.pendingOwner(), address(0), "pending cleared");
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, address(this)));
        registry.allowModel(OTHER_MODEL);
    }

    function test_acceptOwnership_revertsForOthers() public {
        registry.transferOwnership(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotPendingOwner.selector, requester));
        vm.prank(requester);
        registry.acceptOwnership();
    }

    function test_transferOwnership_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vm.prank(stranger);
        registry.transferOwnership(stranger);
    }

    // ----- images -----

    function test_allowImage_keysByKeccakOfPcrsAndEmits() public {
        bytes memory a = new bytes(48);
        bytes memory b = new bytes(48);
        bytes memory c = new bytes(48);
        a[0] = 0x01;
        bytes32 expected = keccak256(abi.encodePacked(a, b, c));
        vm.expectEmit(address(registry));
        emit IEnclaveRegistry.ImageAllowed(expected, a, b, c);
        bytes32 id = registry.allowImage(a, b, c);
        assertEq(id, expected, "imageId");
        assertTrue(registry.isImageAllowed(id), "allowed");
        assertEq(imageId, keccak256(abi.encodePacked(pcr0, pcr1, pcr2)), "fixture imageId");
    }

    function test_allowImage_revertsOnPcrLength() public {
        bytes memory short = new bytes(47);
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.PcrLengthInvalid.selector, 0, 47));
        registry.allowImage(short, pcr1, pcr2);
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.PcrLengthInvalid.selector, 1, 47));
        registry.allowImage(pcr0, short, pcr2);
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.PcrLengthInvalid.selector, 2, 49));
        registry.allowImage(pcr0, pcr1, new bytes(49));
    }

    function test_allowImage_revertsWhenAlreadyAllowed() public {
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.ImageAlreadyAllowed.selector, imageId));
        registry.allowImage(pcr0, pcr1, pcr2);
    }

    function test_allowImage_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vm.prank(stranger);
        registry.allowImage(pcr0, pcr1, pcr2);
    }

    function test_disallowImage_deauthorizesItsEnclaves() public {
        vm.expectEmit(address(registry));
        emit IEnclaveRegistry.ImageDisallowed(imageId);
        registry.disallowImage(imageId);
        assertFalse(registry.isImageAllowed(imageId), "disallowed");
        assertEq(status(enclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.ImageNotAllowed), "status");
        // Allowing it again restores the (unrevoked) enclave.
        registry.allowImage(pcr0, pcr1, pcr2);
        assertEq(status(enclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Authorized), "restored");
    }

    function test_disallowImage_revertsWhenNotAllowed() public {
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.ImageNotAllowed.selector, bytes32(uint256(1))));
        registry.disallowImage(bytes32(uint256(1)));
    }

    function test_disallowImage_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vm.prank(stranger);
        registry.disallowImage(imageId);
    }

    // ----- models -----

    function test_allowModel_emits() public {
        vm.expectEmit(address(registry));
        emit IEnclaveRegistry.ModelAllowed(OTHER_MODEL);
        registry.allowModel(OTHER_MODEL);
        assertTrue(registry.isModelAllowed(OTHER_MODEL), "allowed");
    }

    function test_allowModel_revertsWhenAlreadyAllowed() public {
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.ModelAlreadyAllowed.selector, MODEL));
        registry.allowModel(MODEL);
    }

    function test_allowModel_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vm.prank(stranger);
        registry.allowModel(OTHER_MODEL);
    }

    function test_disallowModel_deauthorizesItsEnclaves() public {
        vm.expectEmit(address(registry));
        emit IEnclaveRegistry.ModelDisallowed(MODEL);
        registry.disallowModel(MODEL);
        assertEq(status(enclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.ModelNotAllowed), "status");
    }

    function test_disallowModel_revertsWhenNotAllowed() public {
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.ModelNotAllowed.selector, OTHER_MODEL));
        registry.disallowModel(OTHER_MODEL);
    }

    function test_disallowModel_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vm.prank(stranger);
        registry.disallowModel(MODEL);
    }

    // ----- verifiers, registrars, validity -----

    function test_setVerifier_trustsAndDistrusts() public {
        vm.expectEmit(address(registry));
        emit IEnclaveRegistry.VerifierSet(stranger, true);
        registry.setVerifier(stranger, true);
        assertTrue(registry.isTrustedVerifier(stranger), "trusted");
        registry.setVerifier(stranger, false);
        assertFalse(registry.isTrustedVerifier(stranger), "distrusted");
    }

    function test_setVerifier_reverts() public {
        vm.expectRevert(EnclaveRegistry.ZeroAddress.selector);
        registry.setVerifier(address(0), true);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vm.prank(stranger);
        registry.setVerifier(stranger, true);
    }

    function test_setRegistrar_reverts() public {
        vm.expectRevert(EnclaveRegistry.ZeroAddress.selector);
        registry.setRegistrar(address(0), true);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vm.prank(stranger);
        registry.setRegistrar(stranger, true);
    }

    function test_setMaxRegistrationValidity() public {
        vm.expectEmit(address(registry));
        emit IEnclaveRegistry.MaxRegistrationValiditySet(1 days);
        registry.setMaxRegistrationValidity(1 days);
        assertEq(uint256(registry.maxRegistrationValidity()), 1 days, "validity");
        vm.expectRevert(
            abi.encodeWithSelector(EnclaveRegistry.MaxRegistrationValidityOutOfRange.selector, uint64(0), 366 days)
        );
        registry.setMaxRegistrationValidity(0);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vm.prank(stranger);
        registry.setMaxRegistrationValidity(1 days);
    }

    // ----- verifier-key registration -----

    function test_registerWithVerifierSignature_recordsAndEmits() public {
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();
        bytes memory signature = signRegistration(VERIFIER_KEY, statement);
        assertEq(registry.registrationDigest(statement), registrationDigest(statement), "digest");
        vm.expectEmit(address(registry));
        emit IEnclaveRegistry.EnclaveRegistered(
            newEnclave, imageId, MODEL, operator, statement.expiry, statement.attestedAtMs, verifier
        );
        vm.prank(stranger); // anyone may submit a signed statement
        registry.registerWithVerifierSignature(statement, signature);
        IEnclaveRegistry.Enclave memory record = registry.enclaves(newEnclave);
        assertEq(record.imageId, imageId, "imageId");
        assertEq(record.modelHash, MODEL, "model");
        assertEq(uint256(record.expiry), statement.expiry, "expiry");
        assertEq(uint256(record.attestedAtMs), statement.attestedAtMs, "attestedAtMs");
        assertFalse(record.revoked, "revoked");
        assertEq(record.operator, operator, "operator");
        assertEq(status(newEnclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Authorized), "status");
    }

    function test_register_revertsForUntrustedVerifier() public {
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.UntrustedVerifier.selector, vm.addr(OTHER_KEY)));
        registry.registerWithVerifierSignature(statement, signRegistration(OTHER_KEY, statement));
    }

    function test_register_revertsForDistrustedVerifier() public {
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();
        bytes memory signature = signRegistration(VERIFIER_KEY, statement);
        registry.setVerifier(verifier, false);
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.UntrustedVerifier.selector, verifier));
        registry.registerWithVerifierSignature(statement, signature);
    }

    function test_register_revertsForTamperedStatement() public {
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();
        bytes memory signature = signRegistration(VERIFIER_KEY, statement);
        statement.expiry += 1;
        // The signature now recovers to some other, untrusted address.
        vm.expectRevert();
        registry.registerWithVerifierSignature(statement, signature);
        assertEq(status(newEnclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Unknown), "not registered");
    }

    function test_register_revertsOnMalformedSignatures() public {
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();
        bytes memory signature = signRegistration(VERIFIER_KEY, statement);
        vm.expectRevert(abi.encodeWithSelector(ECDSA.SignatureLengthInvalid.selector, 64));
        registry.registerWithVerifierSignature(statement, slice(signature, 64));

        bytes memory badV = bytes.concat(slice(signature, 64), bytes1(uint8(29)));
        vm.expectRevert(abi.encodeWithSelector(ECDSA.SignatureVInvalid.selector, uint8(29)));
        registry.registerWithVerifierSignature(statement, badV);

        (uint8 v, bytes32 r, bytes32 s) = vm.sign(VERIFIER_KEY, registrationDigest(statement));
        bytes32 highS = bytes32(0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141 - uint256(s));
        vm.expectRevert(abi.encodeWithSelector(ECDSA.SignatureSInvalid.selector, highS));
        registry.registerWithVerifierSignature(statement, abi.encodePacked(r, highS, v == 27 ? uint8(28) : uint8(27)));

        vm.expectRevert(ECDSA.SignatureUnrecoverable.selector);
        registry.registerWithVerifierSignature(statement, abi.encodePacked(bytes32(0), s, v));
    }

    function test_register_acceptsZeroOneRecoveryId() public {
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(VERIFIER_KEY, registrationDigest(statement));
        registry.registerWithVerifierSignature(statement, abi.encodePacked(r, s, v - 27));
        assertEq(status(newEnclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Authorized), "status");
    }

    function test_register_revertsOnPolicyViolations() public {
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();

        statement.enclave = address(0);
        expectRegisterRevert(statement, abi.encodeWithSelector(EnclaveRegistry.ZeroAddress.selector));

        statement = freshStatement();
        statement.operator = address(0);
        expectRegisterRevert(statement, abi.encodeWithSelector(EnclaveRegistry.OperatorNotBound.selector, newEnclave));

        statement = freshStatement();
        statement.imageId = bytes32(uint256(7));
        expectRegisterRevert(
            statement, abi.encodeWithSelector(EnclaveRegistry.ImageNotAllowed.selector, statement.imageId)
        );

        statement = freshStatement();
        statement.modelHash = OTHER_MODEL;
        expectRegisterRevert(statement, abi.encodeWithSelector(EnclaveRegistry.ModelNotAllowed.selector, OTHER_MODEL));

        statement = freshStatement();
        statement.attestedAtMs = uint64((START + 5 minutes + 1) * 1000);
        expectRegisterRevert(
            statement,
            abi.encodeWithSelector(EnclaveRegistry.AttestationFromFuture.selector, statement.attestedAtMs, START)
        );

        statement = freshStatement();
        statement.expiry = uint64(START);
        expectRegisterRevert(
            statement, abi.encodeWithSelector(EnclaveRegistry.ExpiryNotInFuture.selector, statement.expiry, START)
        );

        statement = freshStatement();
        statement.expiry = uint64(START + VALIDITY + 1);
        expectRegisterRevert(
            statement,
            abi.encodeWithSelector(
                EnclaveRegistry.ExpiryBeyondValidity.selector, statement.expiry, uint64(START + VALIDITY)
            )
        );
    }

    function test_register_renewsWithNewerAttestationOnly() public {
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();
        bytes memory signature = signRegistration(VERIFIER_KEY, statement);
        registry.registerWithVerifierSignature(statement, signature);

        // Replaying the same statement is refused.
        vm.expectRevert(
            abi.encodeWithSelector(
                EnclaveRegistry.AttestationNotNewer.selector, newEnclave, statement.attestedAtMs, statement.attestedAtMs
            )
        );
        registry.registerWithVerifierSignature(statement, signature);

        // A newer attestation renews.
        vm.warp(START + 1 days - 1);
        EnclaveRegistry.EnclaveRegistration memory renewal =
            statementFor(newEnclave, MODEL, uint64(START + 20 days), uint64((START + 1 days - 10) * 1000));
        registry.registerWithVerifierSignature(renewal, signRegistration(VERIFIER_KEY, renewal));
        assertEq(uint256(registry.enclaves(newEnclave).expiry), START + 20 days, "renewed");
    }

    /// @notice The griefing attack of the review: anyone holding a newer attestation of a registered
    /// enclave (documents are free from `GET /v1/attestation`) re-registered it with an expiry one
    /// second away, and every claimed fulfilment then reverted. A renewal never shortens now.
    function test_attack_renewalCannotCutTheRegistrationShort_verifierRoute() public {
        EnclaveRegistry.EnclaveRegistration memory statement =
            statementFor(newEnclave, MODEL, uint64(START + 20 days), uint64(START * 1000));
        registry.registerWithVerifierSignature(statement, signRegistration(VERIFIER_KEY, statement));

        vm.warp(START + 1 hours);
        EnclaveRegistry.EnclaveRegistration memory grief =
            statementFor(newEnclave, MODEL, uint64(START + 1 hours + 1), uint64((START + 1 hours) * 1000));
        bytes memory signature = signRegistration(VERIFIER_KEY, grief);
        vm.prank(stranger);
        try registry.registerWithVerifierSignature(grief, signature) {} catch {}
        vm.warp(START + 2 hours);
        assertEq(status(newEnclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Authorized), "still registered");
        assertEq(uint256(registry.enclaves(newEnclave).expiry), START + 20 days, "expiry kept");
    }

    /// @notice The same attack through a registrar route (what NitroRegistrar.register does with a
    /// caller-chosen expiry; relayer/tests/chain.rs runs it through the real NitroRegistrar).
    function test_attack_renewalCannotCutTheRegistrationShort_registrarRoute() public {
        address registrar = address(0xCAFE);
        registry.setRegistrar(registrar, true);
        vm.prank(registrar);
        registry.registerFromRegistrar(
            newEnclave, operator, imageId, MODEL, uint64(START + 20 days), uint64(START * 1000)
        );

        vm.warp(START + 1 hours);
        vm.prank(registrar);
        try registry.registerFromRegistrar(
            newEnclave, operator, imageId, MODEL, uint64(START + 1 hours + 1), uint64((START + 1 hours) * 1000)
        ) {}
            catch {}
        vm.warp(START + 2 hours);
        assertEq(status(newEnclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Authorized), "still registered");
    }

    function test_register_revertsOnIdentityChange() public {
        registry.registerWithVerifierSignature(freshStatement(), signRegistration(VERIFIER_KEY, freshStatement()));
        registry.allowModel(OTHER_MODEL);
        EnclaveRegistry.EnclaveRegistration memory other =
            statementFor(newEnclave, OTHER_MODEL, uint64(START + 1 days), uint64(START * 1000 + 1));
        expectRegisterRevert(
            other,
            abi.encodeWithSelector(EnclaveRegistry.EnclaveIdentityChanged.selector, newEnclave, imageId, OTHER_MODEL)
        );
    }

    function test_register_renewalKeepsTheOperatorAndNeverShortens() public {
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();
        registry.registerWithVerifierSignature(statement, signRegistration(VERIFIER_KEY, statement));

        EnclaveRegistry.EnclaveRegistration memory renewal =
            statementFor(newEnclave, MODEL, uint64(START + 1 days), uint64(START * 1000 + 1));
        renewal.operator = stranger;
        expectRegisterRevert(
            renewal,
            abi.encodeWithSelector(EnclaveRegistry.EnclaveOperatorChanged.selector, newEnclave, stranger, operator)
        );

        renewal = statementFor(newEnclave, MODEL, uint64(START + 1 days - 1), uint64(START * 1000 + 1));
        expectRegisterRevert(
            renewal,
            abi.encodeWithSelector(
                EnclaveRegistry.ExpiryShortened.selector, newEnclave, uint64(START + 1 days - 1), uint64(START + 1 days)
            )
        );

        // The same expiry, or a later one, renews.
        renewal = statementFor(newEnclave, MODEL, uint64(START + 1 days), uint64(START * 1000 + 1));
        registry.registerWithVerifierSignature(renewal, signRegistration(VERIFIER_KEY, renewal));
        assertEq(uint256(registry.enclaves(newEnclave).attestedAtMs), START * 1000 + 1, "renewed");
    }

    function test_register_revertsForRevokedEnclave() public {
        registry.revoke(enclave);
        EnclaveRegistry.EnclaveRegistration memory statement =
            statementFor(enclave, MODEL, uint64(START + 1 days), uint64(START * 1000 + 1));
        expectRegisterRevert(
            statement, abi.encodeWithSelector(EnclaveRegistry.EnclaveRevokedPermanently.selector, enclave)
        );
    }

    // ----- registrar route -----

    function test_registerFromRegistrar_sharesTheRegistrationPath() public {
        address registrar = address(0xCAFE);
        vm.expectEmit(address(registry));
        emit IEnclaveRegistry.RegistrarSet(registrar, true);
        registry.setRegistrar(registrar, true);
        vm.expectEmit(address(registry));
        emit IEnclaveRegistry.EnclaveRegistered(
            newEnclave, imageId, MODEL, operator, uint64(START + 1 days), uint64(START * 1000), registrar
        );
        vm.prank(registrar);
        registry.registerFromRegistrar(
            newEnclave, operator, imageId, MODEL, uint64(START + 1 days), uint64(START * 1000)
        );
        assertEq(status(newEnclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Authorized), "status");

        // The same policy applies: validity counts from the attestation time.
        vm.expectRevert(
            abi.encodeWithSelector(
                EnclaveRegistry.ExpiryBeyondValidity.selector, uint64(START + 1 days), uint64(VALIDITY)
            )
        );
        vm.prank(registrar);
        registry.registerFromRegistrar(vm.addr(0x999), operator, imageId, MODEL, uint64(START + 1 days), 0);
    }

    function test_registerFromRegistrar_revertsForUnapproved() public {
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.RegistrarNotApproved.selector, stranger));
        vm.prank(stranger);
        registry.registerFromRegistrar(
            newEnclave, operator, imageId, MODEL, uint64(START + 1 days), uint64(START * 1000)
        );

        address registrar = address(0xCAFE);
        registry.setRegistrar(registrar, true);
        registry.setRegistrar(registrar, false);
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.RegistrarNotApproved.selector, registrar));
        vm.prank(registrar);
        registry.registerFromRegistrar(
            newEnclave, operator, imageId, MODEL, uint64(START + 1 days), uint64(START * 1000)
        );
    }

    // ----- revocation and status -----

    function test_revoke_isPermanentAndEmits() public {
        vm.expectEmit(address(registry));
        emit IEnclaveRegistry.EnclaveRevoked(enclave);
        registry.revoke(enclave);
        assertTrue(registry.enclaves(enclave).revoked, "revoked");
        assertEq(status(enclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Revoked), "status");
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.EnclaveRevokedPermanently.selector, enclave));
        registry.revoke(enclave);
    }

    function test_revoke_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.EnclaveNotRegistered.selector, newEnclave));
        registry.revoke(newEnclave);
        vm.expectRevert(abi.encodeWithSelector(Owned.NotOwner.selector, stranger));
        vm.prank(stranger);
        registry.revoke(enclave);
    }

    function test_enclaveStatus_reportsEachReason() public {
        assertEq(status(enclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Authorized), "authorized");
        assertEq(status(newEnclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Unknown), "unknown");
        assertEq(status(enclave, OTHER_MODEL), uint256(IEnclaveRegistry.EnclaveStatus.ModelMismatch), "mismatch");
        vm.warp(START + 7 days - 1);
        assertEq(status(enclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Authorized), "last second");
        vm.warp(START + 7 days);
        assertEq(status(enclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Expired), "expired");
    }

    // ----- fuzz -----

    function testFuzz_register_expiryWindow(uint64 expiry) public {
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();
        statement.expiry = expiry;
        bytes memory signature = signRegistration(VERIFIER_KEY, statement);
        bool valid = expiry > START && expiry <= START + VALIDITY;
        if (!valid) vm.expectRevert();
        registry.registerWithVerifierSignature(statement, signature);
        if (valid) {
            vm.warp(expiry - 1);
            assertEq(status(newEnclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Authorized), "before expiry");
            vm.warp(expiry);
            assertEq(status(newEnclave, MODEL), uint256(IEnclaveRegistry.EnclaveStatus.Expired), "at expiry");
        }
    }

    function testFuzz_register_onlyTrustedVerifierKeys(uint256 key) public {
        key = bound(key, 1, 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140);
        vm.assume(key != VERIFIER_KEY);
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();
        vm.expectRevert(abi.encodeWithSelector(EnclaveRegistry.UntrustedVerifier.selector, vm.addr(key)));
        registry.registerWithVerifierSignature(statement, signRegistration(key, statement));
    }

    function testFuzz_register_anyFieldChangeInvalidatesSignature(uint8 field, uint256 delta) public {
        delta = bound(delta, 1, type(uint32).max);
        EnclaveRegistry.EnclaveRegistration memory statement = freshStatement();
        bytes memory signature = signRegistration(VERIFIER_KEY, statement);
        field = uint8(bound(field, 0, 5));
        if (field == 0) statement.enclave = address(uint160(statement.enclave) ^ uint160(delta));
        if (field == 1) statement.imageId = bytes32(uint256(statement.imageId) ^ delta);
        if (field == 2) statement.modelHash = bytes32(uint256(statement.modelHash) ^ delta);
        if (field == 3) statement.expiry -= uint64(bound(delta, 1, 1 days));
        if (field == 4) statement.attestedAtMs -= uint64(delta);
        if (field == 5) statement.operator = address(uint160(statement.operator) ^ uint160(delta));
        // The signature recovers to an unrelated address (or none): never the trusted verifier.
        vm.expectRevert();
        registry.registerWithVerifierSignature(statement, signature);
    }

    // ----- helpers -----

    function expectRegisterRevert(EnclaveRegistry.EnclaveRegistration memory statement, bytes memory revertData)
        internal
    {
        bytes memory signature = signRegistration(VERIFIER_KEY, statement);
        vm.expectRevert(revertData);
        registry.registerWithVerifierSignature(statement, signature);
    }

    function slice(bytes memory data, uint256 length) internal pure returns (bytes memory out) {
        out = new bytes(length);
        for (uint256 i = 0; i < length; i++) {
            out[i] = data[i];
        }
    }
}
