// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice The registry of attested enclave signing keys, as the relay and registrar routes see it.
/// @dev Every registration route (the EIP-712 verifier-key route built into `EnclaveRegistry`, and
/// owner-approved registrar contracts such as a future on-chain Nitro attestation verifier) ends in
/// the same registration record and the same `EnclaveRegistered` event.
interface IEnclaveRegistry {
    /// @notice Why an enclave may or may not sign for a model right now. `Authorized` is the only
    /// status under which a relay accepts the enclave's signature.
    enum EnclaveStatus {
        Authorized,
        Unknown,
        Revoked,
        ModelMismatch,
        Expired,
        ModelNotAllowed,
        ImageNotAllowed
    }

    /// @notice One registered enclave signing key (the Ethereum address of its secp256k1 key).
    struct Enclave {
        /// keccak256(pcr0 || pcr1 || pcr2) of the image the attestation measured.
        bytes32 imageId;
        /// SHA-256 of the GGUF model file the enclave serves.
        bytes32 modelHash;
        /// Unix seconds after which the registration no longer authorizes anything.
        uint64 expiry;
        /// The attestation document's `timestamp` (Unix milliseconds); renewals must be newer.
        uint64 attestedAtMs;
        /// Revocation is permanent: a revoked key can never be registered again.
        bool revoked;
        /// The operator the enclave serves, as its attestation binds it: the enclave signs
        /// fulfilments for this operator only (docs/onchain.md §3), for the key's whole life.
        address operator;
    }

    event ImageAllowed(bytes32 indexed imageId, bytes pcr0, bytes pcr1, bytes pcr2);
    event ImageDisallowed(bytes32 indexed imageId);
    event ModelAllowed(bytes32 indexed modelHash);
    event ModelDisallowed(bytes32 indexed modelHash);
    event VerifierSet(address indexed verifier, bool trusted);
    event RegistrarSet(address indexed registrar, bool approved);
    event MaxRegistrationValiditySet(uint64 maxRegistrationValidity);
    /// @param operator the operator the enclave's attestation binds.
    /// @param authorizedBy the verifier key that signed the statement, or the registrar contract.
    event EnclaveRegistered(
        address indexed enclave,
        bytes32 indexed imageId,
        bytes32 indexed modelHash,
        address operator,
        uint64 expiry,
        uint64 attestedAtMs,
        address authorizedBy
    );
    event EnclaveRevoked(address indexed enclave);

    /// @notice Registers (or renews) `enclave`, bound to `operator`, on behalf of an owner-approved
    /// registrar route.
    function registerFromRegistrar(
        address enclave,
        address operator,
        bytes32 imageId,
        bytes32 modelHash,
        uint64 expiry,
        uint64 attestedAtMs
    ) external;

    /// @notice Whether `enclave` may sign answers of `modelHash` now, and if not, why.
    function enclaveStatus(address enclave, bytes32 modelHash) external view returns (EnclaveStatus);

    function isModelAllowed(bytes32 modelHash) external view returns (bool);

    function isImageAllowed(bytes32 imageId) external view returns (bool);

    function enclaves(address enclave) external view returns (Enclave memory);
}
