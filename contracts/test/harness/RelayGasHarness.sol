// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {InferenceRelay} from "../../src/InferenceRelay.sol";
import {IEnclaveRegistry} from "../../src/interfaces/IEnclaveRegistry.sol";

/// @notice Exposes the gas of `fulfill`'s signature and registry checks (`_authorizedSigner`),
/// measured with gasleft() around the exact code `fulfill` runs.
contract RelayGasHarness is InferenceRelay {
    constructor(IEnclaveRegistry registry_, uint96 claimCollateral_, uint32 maxCallbackGasLimit_)
        InferenceRelay(registry_, claimCollateral_, maxCallbackGasLimit_)
    {}

    /// @return first the first run in this transaction: whatever the transaction has not touched
    /// yet is cold (in GasBenchmarkTest: the enclave record and the image allowlist slot).
    /// @return warm a second run in the same call: every account and slot already warm, so what
    /// remains is computation (hashing, ecrecover, the call) plus 100 gas per warm access.
    function measureChecks(bytes32 requestId, bytes calldata output, bytes calldata signature)
        external
        view
        returns (uint256 first, uint256 warm)
    {
        Request storage request = _requests[requestId];
        // Hashing the output is calldata-proportional work (6 gas per word plus the copy), not
        // part of the checks: it is done outside the measured spans.
        bytes32 outputHash = keccak256(output);
        uint256 start = gasleft();
        _authorizedSigner(request, requestId, outputHash, signature);
        uint256 middle = gasleft();
        _authorizedSigner(request, requestId, outputHash, signature);
        uint256 end = gasleft();
        first = start - middle;
        warm = middle - end;
    }
}
