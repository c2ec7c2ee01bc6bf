// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice ES384 (ECDSA over P-384 with SHA-384) verification with off-chain hints, as
/// `Es384Verifier` implements it. Registrars depend on this interface only, so the verifier is
/// compiled once, at full optimizer runs, whatever their own settings.
interface IEs384Verifier {
    /// @notice Whether `signature` (96 bytes r || s) by `publicKey` (96 bytes x || y) is valid
    /// over `message[offset : offset + length]`, hashed with SHA-384.
    function verify(
        bytes calldata message,
        uint256 offset,
        uint256 length,
        bytes calldata signature,
        bytes calldata publicKey,
        bytes calldata hint
    ) external view returns (bool);

    /// @notice Whether `signature` by `publicKey` is valid over a 48-byte SHA-384 `digest`.
    function verifyDigest(
        bytes calldata digest,
        bytes calldata signature,
        bytes calldata publicKey,
        bytes calldata hint
    ) external view returns (bool);

    /// @notice Whether `publicKey` (96 bytes x || y) is a point of P-384.
    function isValidPublicKey(bytes calldata publicKey) external pure returns (bool);

    /// @notice SHA-384 of `message` (48 bytes).
    function sha384(bytes calldata message) external pure returns (bytes memory);
}
