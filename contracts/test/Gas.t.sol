// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Fixtures} from "./utils/Fixtures.sol";
import {RelayGasHarness} from "./harness/RelayGasHarness.sol";
import {InferenceRelay} from "../src/InferenceRelay.sol";

/// @notice Gas figures for docs/benchmarks.md (the signature + registry check of `fulfill`).
/// Whole-transaction figures (request, fulfil by answer size, register, revoke) come from
/// script/demo.sh on anvil, with intrinsic and calldata gas; print these with
/// `forge test --mc GasBenchmark -vv`.
contract GasBenchmarkTest is Fixtures {
    /// The target of the issue: checks cost at most this beyond calldata and storage access.
    uint256 internal constant CHECK_BUDGET = 5000;
    /// Warm accesses in the check: 4 request slots (model, input and params hashes, the
    /// claiming operator), the registry account, 5 registry slots.
    uint256 internal constant WARM_ACCESSES = 10;

    function test_gas_fulfillmentChecks() public {
        RelayGasHarness harness = new RelayGasHarness(registry, COLLATERAL, MAX_CALLBACK_GAS);
        relay = harness; // the signing helpers use the relay's address for the domain
        vm.prank(requester);
        bytes32 requestId = harness.requestInference{value: 0.01 ether}(
            MODEL, INPUT, PARAMS, address(0), 0, uint64(block.timestamp + 1 hours)
        );
        vm.startPrank(operator);
        harness.stake{value: 1 ether}();
        harness.claim(requestId);
        vm.stopPrank();
        bytes memory output = new bytes(4096);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, output);
        (uint256 first, uint256 warm) = harness.measureChecks(requestId, output, signature);
        emit log_named_uint("checks, first run (enclave record and image slot cold)", first);
        emit log_named_uint("checks, second run (all warm)", warm);
        emit log_named_uint("checks, warm minus warm-access charges", warm - WARM_ACCESSES * 100);
        assertLe(warm - WARM_ACCESSES * 100, CHECK_BUDGET, "checks within budget");
    }
}
