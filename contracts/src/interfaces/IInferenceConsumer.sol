// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice Implemented by contracts that receive attested answers from an `InferenceRelay`.
interface IInferenceConsumer {
    /// @notice Called by the relay, with the requester's gas limit, once `output` is fulfilled.
    /// @dev Implementations must check `msg.sender` is the relay they requested from. A revert here
    /// does not undo the fulfilment; the relay records the failure.
    function onInferenceResult(bytes32 requestId, bytes calldata output) external;
}
