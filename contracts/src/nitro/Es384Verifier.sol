// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IEs384Verifier} from "./IEs384Verifier.sol";
import {P384} from "./P384.sol";
import {Sha384} from "./Sha384.sol";

/// @title ES384 (ECDSA over P-384 with SHA-384) signature verification, with off-chain hints.
/// @notice A stateless contract deployed once and shared: `NitroRegistrar` calls it for every
/// signature of a Nitro document (its own code would not fit the 24,576-byte limit of EIP-170
/// together with these libraries). The hint is computed by the `nitro-hints` crate; a wrong hint
/// only makes verification fail.
contract Es384Verifier is IEs384Verifier {
    /// @notice Whether `signature` (96 bytes r || s) by `publicKey` (96 bytes x || y) is valid
    /// over `message[offset : offset + length]` (hashed here with SHA-384). False for every
    /// malformed input; reverts only if the range lies outside `message`.
    function verify(
        bytes calldata message,
        uint256 offset,
        uint256 length,
        bytes calldata signature,
        bytes calldata publicKey,
        bytes calldata hint
    ) external view override returns (bool) {
        return P384.verify(Sha384.hash(message, offset, length), signature, publicKey, hint);
    }

    /// @notice Whether `signature` by `publicKey` is valid over a 48-byte SHA-384 `digest`.
    function verifyDigest(
        bytes calldata digest,
        bytes calldata signature,
        bytes calldata publicKey,
        bytes calldata hint
    ) external view override returns (bool) {
        if (digest.length != 48) return false;
        return P384.verify(digest, signature, publicKey, hint);
    }

    /// @notice Whether `publicKey` (96 bytes x || y) is a point of P-384 (coordinates below p,
    /// on the curve): what the Rust verifier's key parsing requires of every certificate.
    function isValidPublicKey(bytes calldata publicKey) external pure override returns (bool) {
        return P384.isValidPublicKey(publicKey);
    }

    /// @notice SHA-384 of `message` (48 bytes), for callers that need the digest itself.
    function sha384(bytes calldata message) external pure override returns (bytes memory) {
        return Sha384.hash(message);
    }
}
