// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice One lock for every guarded function of a contract, kept in transient storage (EIP-1153)
/// so that it costs ~200 gas instead of two storage writes.
abstract contract ReentrancyGuard {
    bool private transient _entered;

    error ReentrantCall();

    modifier nonReentrant() {
        if (_entered) revert ReentrantCall();
        _entered = true;
        _;
        _entered = false;
    }
}
