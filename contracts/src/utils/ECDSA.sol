// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice Strict recovery of secp256k1 signers from 65-byte `r || s || v` signatures.
/// @dev Rejects malleable (high-s) signatures and anything ecrecover would map to the zero address,
/// so a recovered address is always a real signer of `digest`.
library ECDSA {
    /// @dev Half the secp256k1 group order: signatures with s above it are the malleable twin.
    uint256 private constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    error SignatureLengthInvalid(uint256 length);
    error SignatureSInvalid(bytes32 s);
    error SignatureVInvalid(uint8 v);
    error SignatureUnrecoverable();

    /// @notice The address whose key signed `digest`; v may be 27/28 or 0/1.
    function recover(bytes32 digest, bytes calldata signature) internal view returns (address signer) {
        if (signature.length != 65) revert SignatureLengthInvalid(signature.length);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 0x20))
            v := byte(0, calldataload(add(signature.offset, 0x40)))
        }
        if (v < 27) v += 27;
        if (v != 27 && v != 28) revert SignatureVInvalid(v);
        if (uint256(s) > HALF_ORDER) revert SignatureSInvalid(s);
        signer = _ecrecover(digest, v, r, s);
        if (signer == address(0)) revert SignatureUnrecoverable();
    }

    /// @dev Calls the precompile directly: cheaper than the `ecrecover` builtin's memory handling.
    function _ecrecover(bytes32 digest, uint8 v, bytes32 r, bytes32 s) private view returns (address signer) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, digest)
            mstore(add(ptr, 0x20), v)
            mstore(add(ptr, 0x40), r)
            mstore(add(ptr, 0x60), s)
            // The precompile returns no data for an invalid signature: clear the slot first.
            mstore(0x00, 0)
            pop(staticcall(gas(), 0x01, ptr, 0x80, 0x00, 0x20))
            signer := mload(0x00)
        }
    }
}
