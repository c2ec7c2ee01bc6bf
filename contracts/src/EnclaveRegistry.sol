// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IEnclaveRegistry} from "./interfaces/IEnclaveRegistry.sol";
import {ECDSA} from "./utils/ECDSA.sol";
import {EIP712} from "./utils/EIP712.sol";
import {Owned} from "./utils/Owned.sol";

/// @title Registry of attested enclave signing keys
/// @notice The owner (later governance) allows images (PCR0/1/2) and models (SHA-256 of the GGUF);
/// enclave keys are registered for one allowed image and model, bound to the one operator their
/// attestation names, until an expiry, and can be revoked.
/// @dev Two kinds of registration route share `_register`: statements signed by an owner-trusted
/// attestation-verifier key (EIP-712, this contract's domain), and owner-approved registrar
/// contracts calling `registerFromRegistrar` (the seam for on-chain Nitro document verification).
contract EnclaveRegistry is IEnclaveRegistry, EIP712, Owned {
    /// @notice EIP-712 type of the verifier-key registration statement.
    bytes32 public constant ENCLAVE_REGISTRATION_TYPEHASH = keccak256(
        "EnclaveRegistration(address enclave,address operator,bytes32 imageId,bytes32 modelHash,uint64 expiry,uint64 attestedAtMs)"
    );
    uint256 public constant PCR_LENGTH = 48;
    /// @notice How far an attestation timestamp may run ahead of the block time (clock skew).
    uint64 public constant MAX_ATTESTATION_CLOCK_SKEW = 5 minutes;
    /// @notice Upper bound for `maxRegistrationValidity`: attestations are re-checked at least yearly.
    uint64 public constant MAX_REGISTRATION_VALIDITY_LIMIT = 366 days;

    /// @notice The statement an attestation verifier signs after checking a Nitro document.
    struct EnclaveRegistration {
        address enclave;
        /// The operator the attestation document binds (its `user_data`, docs/protocol.md §2).
        address operator;
        bytes32 imageId;
        bytes32 modelHash;
        uint64 expiry;
        uint64 attestedAtMs;
    }

    mapping(address enclave => Enclave) private _enclaves;
    mapping(bytes32 imageId => bool) public override isImageAllowed;
    mapping(bytes32 modelHash => bool) public override isModelAllowed;
    mapping(address verifier => bool) public isTrustedVerifier;
    mapping(address registrar => bool) public isApprovedRegistrar;
    /// @notice The longest a registration may last, counted from the attestation's timestamp.
    uint64 public maxRegistrationValidity;

    error PcrLengthInvalid(uint256 index, uint256 length);
    error ImageAlreadyAllowed(bytes32 imageId);
    error ImageNotAllowed(bytes32 imageId);
    error ModelAlreadyAllowed(bytes32 modelHash);
    error ModelNotAllowed(bytes32 modelHash);
    error ZeroAddress();
    error MaxRegistrationValidityOutOfRange(uint64 maxRegistrationValidity, uint64 limit);
    error UntrustedVerifier(address recovered);
    error RegistrarNotApproved(address caller);
    error ExpiryNotInFuture(uint64 expiry, uint256 blockTimestamp);
    error ExpiryBeyondValidity(uint64 expiry, uint64 latestAllowed);
    error AttestationFromFuture(uint64 attestedAtMs, uint256 blockTimestamp);
    error AttestationNotNewer(address enclave, uint64 attestedAtMs, uint64 registeredAttestedAtMs);
    error EnclaveIdentityChanged(address enclave, bytes32 imageId, bytes32 modelHash);
    error OperatorNotBound(address enclave);
    error EnclaveOperatorChanged(address enclave, address operator, address registeredOperator);
    error ExpiryShortened(address enclave, uint64 expiry, uint64 registeredExpiry);
    error EnclaveRevokedPermanently(address enclave);
    error EnclaveNotRegistered(address enclave);

    constructor(address initialOwner, uint64 maxRegistrationValidity_)
        EIP712("EnclaveRegistry", "1")
        Owned(initialOwner)
    {
        _setMaxRegistrationValidity(maxRegistrationValidity_);
    }

    // ----- owner: policy -----

    /// @notice Allows the image measured as (pcr0, pcr1, pcr2), each a 48-byte SHA-384 value.
    function allowImage(bytes calldata pcr0, bytes calldata pcr1, bytes calldata pcr2)
        external
        onlyOwner
        returns (bytes32 imageId)
    {
        if (pcr0.length != PCR_LENGTH) revert PcrLengthInvalid(0, pcr0.length);
        if (pcr1.length != PCR_LENGTH) revert PcrLengthInvalid(1, pcr1.length);
        if (pcr2.length != PCR_LENGTH) revert PcrLengthInvalid(2, pcr2.length);
        imageId = keccak256(abi.encodePacked(pcr0, pcr1, pcr2));
        if (isImageAllowed[imageId]) revert ImageAlreadyAllowed(imageId);
        isImageAllowed[imageId] = true;
        emit ImageAllowed(imageId, pcr0, pcr1, pcr2);
    }

    /// @notice Disallows an image; its enclaves stop being authorized at once (not revoked).
    function disallowImage(bytes32 imageId) external onlyOwner {
        if (!isImageAllowed[imageId]) revert ImageNotAllowed(imageId);
        isImageAllowed[imageId] = false;
        emit ImageDisallowed(imageId);
    }

    function allowModel(bytes32 modelHash) external onlyOwner {
        if (isModelAllowed[modelHash]) revert ModelAlreadyAllowed(modelHash);
        isModelAllowed[modelHash] = true;
        emit ModelAllowed(modelHash);
    }

    /// @notice Disallows a model; its enclaves stop being authorized at once (not revoked).
    function disallowModel(bytes32 modelHash) external onlyOwner {
        if (!isModelAllowed[modelHash]) revert ModelNotAllowed(modelHash);
        isModelAllowed[modelHash] = false;
        emit ModelDisallowed(modelHash);
    }

    /// @notice Trusts (or stops trusting) an attestation-verifier key for new registrations.
    /// Existing registrations are unaffected; revoke them individually if the key is compromised.
    function setVerifier(address verifier, bool trusted) external onlyOwner {
        if (verifier == address(0)) revert ZeroAddress();
        isTrustedVerifier[verifier] = trusted;
        emit VerifierSet(verifier, trusted);
    }

    /// @notice Approves (or removes) a registrar route contract.
    function setRegistrar(address registrar, bool approved) external onlyOwner {
        if (registrar == address(0)) revert ZeroAddress();
        isApprovedRegistrar[registrar] = approved;
        emit RegistrarSet(registrar, approved);
    }

    function setMaxRegistrationValidity(uint64 maxRegistrationValidity_) external onlyOwner {
        _setMaxRegistrationValidity(maxRegistrationValidity_);
    }

    /// @notice Revokes an enclave key for good (e.g. suspected key or image compromise).
    function revoke(address enclave) external onlyOwner {
        Enclave storage record = _enclaves[enclave];
        if (record.revoked) revert EnclaveRevokedPermanently(enclave);
        if (record.expiry == 0) revert EnclaveNotRegistered(enclave);
        record.revoked = true;
        emit EnclaveRevoked(enclave);
    }

    // ----- registration routes -----

    /// @notice Registers an enclave from a statement signed by a trusted attestation verifier.
    /// Anyone may submit it: the statement authenticates itself.
    function registerWithVerifierSignature(EnclaveRegistration calldata statement, bytes calldata signature) external {
        address verifier = ECDSA.recover(registrationDigest(statement), signature);
        if (!isTrustedVerifier[verifier]) revert UntrustedVerifier(verifier);
        _register(
            statement.enclave,
            statement.operator,
            statement.imageId,
            statement.modelHash,
            statement.expiry,
            statement.attestedAtMs,
            verifier
        );
    }

    /// @inheritdoc IEnclaveRegistry
    function registerFromRegistrar(
        address enclave,
        address operator,
        bytes32 imageId,
        bytes32 modelHash,
        uint64 expiry,
        uint64 attestedAtMs
    ) external override {
        if (!isApprovedRegistrar[msg.sender]) revert RegistrarNotApproved(msg.sender);
        _register(enclave, operator, imageId, modelHash, expiry, attestedAtMs, msg.sender);
    }

    /// @notice The EIP-712 digest a verifier signs for `statement`.
    function registrationDigest(EnclaveRegistration calldata statement) public view returns (bytes32) {
        return _hashTypedData(
            keccak256(
                abi.encode(
                    ENCLAVE_REGISTRATION_TYPEHASH,
                    statement.enclave,
                    statement.operator,
                    statement.imageId,
                    statement.modelHash,
                    statement.expiry,
                    statement.attestedAtMs
                )
            )
        );
    }

    // ----- views -----

    /// @inheritdoc IEnclaveRegistry
    function enclaveStatus(address enclave, bytes32 modelHash) external view override returns (EnclaveStatus) {
        Enclave storage record = _enclaves[enclave];
        // expiry, attestedAtMs and revoked share the record's third slot: read it once (this runs
        // on every fulfilment). Layout: expiry in bits 0-63, revoked in bits 128-135.
        uint256 packed;
        assembly ("memory-safe") {
            packed := sload(add(record.slot, 2))
        }
        // casting to 'uint64' is safe because it extracts exactly the 64-bit expiry field
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 expiry = uint64(packed);
        if ((packed >> 128) & 0xff != 0) return EnclaveStatus.Revoked;
        if (expiry == 0) return EnclaveStatus.Unknown;
        if (record.modelHash != modelHash) return EnclaveStatus.ModelMismatch;
        if (expiry <= block.timestamp) return EnclaveStatus.Expired;
        if (!isModelAllowed[modelHash]) return EnclaveStatus.ModelNotAllowed;
        if (!isImageAllowed[record.imageId]) return EnclaveStatus.ImageNotAllowed;
        return EnclaveStatus.Authorized;
    }

    function enclaves(address enclave) external view override returns (Enclave memory) {
        return _enclaves[enclave];
    }

    // ----- internals -----

    /// @dev The one registration path every route goes through; the checks here are the policy.
    /// Anyone may submit a registration (a statement or a document authenticates itself), so a
    /// renewal can never hurt the enclave's operator: it keeps the operator, never shortens the
    /// expiry and must carry a strictly newer attestation.
    function _register(
        address enclave,
        address operator,
        bytes32 imageId,
        bytes32 modelHash,
        uint64 expiry,
        uint64 attestedAtMs,
        address authorizedBy
    ) private {
        if (enclave == address(0)) revert ZeroAddress();
        // An enclave serving no operator would sign fulfilments for none: nothing to register.
        if (operator == address(0)) revert OperatorNotBound(enclave);
        if (!isImageAllowed[imageId]) revert ImageNotAllowed(imageId);
        if (!isModelAllowed[modelHash]) revert ModelNotAllowed(modelHash);
        if (attestedAtMs / 1000 > block.timestamp + MAX_ATTESTATION_CLOCK_SKEW) {
            revert AttestationFromFuture(attestedAtMs, block.timestamp);
        }
        if (expiry <= block.timestamp) revert ExpiryNotInFuture(expiry, block.timestamp);
        uint64 latestAllowed = attestedAtMs / 1000 + maxRegistrationValidity;
        if (expiry > latestAllowed) revert ExpiryBeyondValidity(expiry, latestAllowed);

        Enclave storage record = _enclaves[enclave];
        if (record.revoked) revert EnclaveRevokedPermanently(enclave);
        if (record.expiry != 0) {
            // A renewal: the key was generated inside one image serving one model, so a
            // registration under another identity means something is wrong upstream.
            if (record.imageId != imageId || record.modelHash != modelHash) {
                revert EnclaveIdentityChanged(enclave, imageId, modelHash);
            }
            // The enclave binds its operator once per key; another one means a forged statement.
            if (record.operator != operator) revert EnclaveOperatorChanged(enclave, operator, record.operator);
            // Fresh documents are free to anyone: a renewal with a nearer expiry would let a
            // stranger cut the registration short and have the operator slashed for its claims.
            if (expiry < record.expiry) revert ExpiryShortened(enclave, expiry, record.expiry);
            // Strictly newer attestations only: a replayed or older statement cannot renew.
            if (attestedAtMs <= record.attestedAtMs) {
                revert AttestationNotNewer(enclave, attestedAtMs, record.attestedAtMs);
            }
        }
        record.imageId = imageId;
        record.modelHash = modelHash;
        record.expiry = expiry;
        record.attestedAtMs = attestedAtMs;
        record.operator = operator;
        emit EnclaveRegistered(enclave, imageId, modelHash, operator, expiry, attestedAtMs, authorizedBy);
    }

    function _setMaxRegistrationValidity(uint64 maxRegistrationValidity_) private {
        if (maxRegistrationValidity_ == 0 || maxRegistrationValidity_ > MAX_REGISTRATION_VALIDITY_LIMIT) {
            revert MaxRegistrationValidityOutOfRange(maxRegistrationValidity_, MAX_REGISTRATION_VALIDITY_LIMIT);
        }
        maxRegistrationValidity = maxRegistrationValidity_;
        emit MaxRegistrationValiditySet(maxRegistrationValidity_);
    }
}
