// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Fixtures, RecordingConsumer, RejectingReceiver} from "./utils/Fixtures.sol";
import {InferenceRelay} from "../src/InferenceRelay.sol";
import {IEnclaveRegistry} from "../src/interfaces/IEnclaveRegistry.sol";
import {ECDSA} from "../src/utils/ECDSA.sol";
import {ReentrancyGuard} from "../src/utils/ReentrancyGuard.sol";

contract InferenceRelayTest is Fixtures {
    RecordingConsumer internal consumer;

    function setUp() public override {
        super.setUp();
        consumer = new RecordingConsumer(relay);
    }

    function statusOf(bytes32 requestId) internal view returns (uint256) {
        return uint256(relay.getRequest(requestId).status);
    }

    // ----- construction -----

    function test_constructor_setsParameters() public view {
        assertEq(address(relay.registry()), address(registry), "registry");
        assertEq(uint256(relay.claimCollateral()), COLLATERAL, "collateral");
        assertEq(uint256(relay.maxCallbackGasLimit()), MAX_CALLBACK_GAS, "max gas");
        assertEq(relay.domainSeparator(), domainSeparator("InferenceRelay", address(relay)), "domain");
        assertEq(relay.FULFILLMENT_TYPEHASH(), FULFILLMENT_TYPEHASH, "typehash");
    }

    function test_constructor_revertsOnZeroRegistry() public {
        vm.expectRevert(InferenceRelay.ZeroAddress.selector);
        new InferenceRelay(IEnclaveRegistry(address(0)), COLLATERAL, MAX_CALLBACK_GAS);
    }

    function test_constructor_revertsOnZeroCollateral() public {
        vm.expectRevert(InferenceRelay.ZeroAmount.selector);
        new InferenceRelay(registry, 0, MAX_CALLBACK_GAS);
    }

    function test_domainSeparator_followsChainId() public {
        vm.chainId(7);
        assertEq(relay.domainSeparator(), domainSeparator("InferenceRelay", address(relay)), "forked chain");
    }

    // ----- requestInference -----

    function test_requestInference_storesAndEmits() public {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        vm.expectEmit(address(relay));
        emit InferenceRelay.InferenceRequested(
            bytes32(uint256(1)), requester, MODEL, INPUT, PARAMS, address(consumer), 100_000, deadline, 0.01 ether
        );
        bytes32 requestId = request(address(consumer), 100_000);
        assertEq(requestId, bytes32(uint256(1)), "first id");
        InferenceRelay.Request memory stored = relay.getRequest(requestId);
        assertEq(stored.requester, requester, "requester");
        assertEq(uint256(stored.deadline), deadline, "deadline");
        assertEq(uint256(stored.status), uint256(InferenceRelay.Status.Open), "status");
        assertEq(uint256(stored.callbackGasLimit), 100_000, "gas limit");
        assertEq(stored.callback, address(consumer), "callback");
        assertEq(uint256(stored.fee), 0.01 ether, "fee");
        assertEq(stored.modelHash, MODEL, "model");
        assertEq(stored.inputHash, keccak256(INPUT), "input hash");
        assertEq(stored.paramsHash, keccak256(PARAMS), "params hash");
        assertEq(stored.operator, address(0), "no operator yet");
        assertEq(request(address(0), 0), bytes32(uint256(2)), "ids increase");
        assertEq(address(relay).balance, 1 ether + 0.02 ether, "fees held");
    }

    function test_requestInference_reverts() public {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.ModelNotAllowed.selector, OTHER_MODEL));
        relay.requestInference(OTHER_MODEL, INPUT, PARAMS, address(0), 0, deadline);

        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceRelay.DeadlineNotInFuture.selector, uint64(block.timestamp), block.timestamp
            )
        );
        relay.requestInference(MODEL, INPUT, PARAMS, address(0), 0, uint64(block.timestamp));

        uint64 far = uint64(type(uint40).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.DeadlineTooFar.selector, far));
        relay.requestInference(MODEL, INPUT, PARAMS, address(0), 0, far);

        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceRelay.CallbackGasLimitTooHigh.selector, MAX_CALLBACK_GAS + 1, MAX_CALLBACK_GAS
            )
        );
        relay.requestInference(MODEL, INPUT, PARAMS, address(consumer), MAX_CALLBACK_GAS + 1, deadline);

        vm.expectRevert(InferenceRelay.CallbackGasLimitZero.selector);
        relay.requestInference(MODEL, INPUT, PARAMS, address(consumer), 0, deadline);

        uint256 tooMuch = uint256(type(uint96).max) + 1;
        vm.deal(requester, tooMuch);
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.AmountTooLarge.selector, tooMuch));
        vm.prank(requester);
        relay.requestInference{value: tooMuch}(MODEL, INPUT, PARAMS, address(0), 0, deadline);
    }

    // ----- cancel -----

    function test_cancel_creditsFee() public {
        bytes32 requestId = request(address(0), 0);
        vm.expectEmit(address(relay));
        emit InferenceRelay.RequestCancelled(requestId);
        vm.prank(requester);
        relay.cancel(requestId);
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Cancelled), "status");
        assertEq(relay.credits(requester), 0.01 ether, "credited");
    }

    function test_cancel_reverts() public {
        bytes32 requestId = request(address(0), 0);
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.NotRequester.selector, requestId, stranger));
        vm.prank(stranger);
        relay.cancel(requestId);

        vm.prank(operator);
        relay.claim(requestId);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceRelay.RequestNotOpen.selector, requestId, InferenceRelay.Status.Claimed)
        );
        vm.prank(requester);
        relay.cancel(requestId);
    }

    // ----- staking -----

    function test_stake_accumulates() public {
        vm.expectEmit(address(relay));
        emit InferenceRelay.Staked(operator, 2 ether);
        vm.prank(operator);
        relay.stake{value: 2 ether}();
        assertEq(uint256(relay.getOperator(operator).staked), 3 ether, "staked");
    }

    function test_stake_reverts() public {
        vm.expectRevert(InferenceRelay.ZeroAmount.selector);
        relay.stake();
        uint256 big = type(uint96).max;
        vm.deal(operator, big);
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.AmountTooLarge.selector, big + 1 ether));
        vm.prank(operator);
        relay.stake{value: big}();
    }

    function test_unstake_returnsFreeStakeOnly() public {
        claimedRequest(address(0), 0);
        uint256 before = operator.balance;
        vm.expectRevert(
            abi.encodeWithSelector(InferenceRelay.InsufficientFreeStake.selector, operator, 0.9 ether, 1 ether)
        );
        vm.prank(operator);
        relay.unstake(1 ether);

        vm.expectEmit(address(relay));
        emit InferenceRelay.Unstaked(operator, 0.9 ether);
        vm.prank(operator);
        relay.unstake(0.9 ether);
        assertEq(operator.balance, before + 0.9 ether, "paid out");
        InferenceRelay.Operator memory state = relay.getOperator(operator);
        assertEq(uint256(state.staked), COLLATERAL, "collateral remains");
        assertEq(uint256(state.locked), COLLATERAL, "locked");
    }

    function test_unstake_reverts() public {
        vm.expectRevert(InferenceRelay.ZeroAmount.selector);
        vm.prank(operator);
        relay.unstake(0);

        RejectingReceiver rejecting = new RejectingReceiver();
        vm.deal(address(rejecting), 1 ether);
        vm.prank(address(rejecting));
        relay.stake{value: 1 ether}();
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.TransferFailed.selector, address(rejecting), 1 ether));
        vm.prank(address(rejecting));
        relay.unstake(1 ether);
        assertEq(uint256(relay.getOperator(address(rejecting)).staked), 1 ether, "stake kept");
    }

    // ----- claim -----

    function test_claim_locksCollateral() public {
        bytes32 requestId = request(address(0), 0);
        vm.expectEmit(address(relay));
        emit InferenceRelay.RequestClaimed(requestId, operator, COLLATERAL);
        vm.prank(operator);
        relay.claim(requestId);
        InferenceRelay.Request memory stored = relay.getRequest(requestId);
        assertEq(uint256(stored.status), uint256(InferenceRelay.Status.Claimed), "status");
        assertEq(stored.operator, operator, "operator");
        assertEq(uint256(stored.collateral), COLLATERAL, "collateral");
        assertEq(uint256(relay.getOperator(operator).locked), COLLATERAL, "locked");
    }

    function test_claim_reverts() public {
        bytes32 unknown = bytes32(uint256(99));
        vm.expectRevert(
            abi.encodeWithSelector(InferenceRelay.RequestNotOpen.selector, unknown, InferenceRelay.Status.None)
        );
        relay.claim(unknown);

        bytes32 requestId = request(address(0), 0);
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.InsufficientFreeStake.selector, stranger, 0, COLLATERAL));
        vm.prank(stranger);
        relay.claim(requestId);

        uint64 deadline = relay.getRequest(requestId).deadline;
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.DeadlinePassed.selector, requestId, deadline));
        vm.prank(operator);
        relay.claim(requestId);

        vm.warp(deadline);
        vm.prank(operator);
        relay.claim(requestId);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceRelay.RequestNotOpen.selector, requestId, InferenceRelay.Status.Claimed)
        );
        vm.prank(operator);
        relay.claim(requestId);
    }

    // ----- fulfill -----

    function test_fulfill_paysOperatorAndCallsBack() public {
        bytes32 requestId = claimedRequest(address(consumer), 200_000);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);
        vm.expectEmit(address(relay));
        emit InferenceRelay.RequestFulfilled(requestId, operator, enclave, keccak256(OUTPUT), OUTPUT, true);
        vm.prank(stranger); // anyone may deliver; the claimer is paid
        relay.fulfill(requestId, OUTPUT, signature);

        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Fulfilled), "status");
        assertEq(relay.credits(operator), 0.01 ether, "fee credited");
        assertEq(relay.credits(stranger), 0, "submitter not paid");
        InferenceRelay.Operator memory state = relay.getOperator(operator);
        assertEq(uint256(state.locked), 0, "collateral unlocked");
        assertEq(uint256(state.staked), 1 ether, "stake intact");
        assertEq(uint256(state.fulfilledCount), 1, "fulfilled count");
        assertEq(uint256(state.missedCount), 0, "missed count");
        assertEq(consumer.calls(), 1, "callback ran");
        assertEq(consumer.lastRequestId(), requestId, "callback request id");
        assertEq(consumer.lastOutput(), OUTPUT, "callback output");
    }

    function test_fulfill_digestMatchesIndependentComputation() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        assertEq(
            relay.fulfillmentDigest(requestId, operator, MODEL, keccak256(INPUT), keccak256(PARAMS), keccak256(OUTPUT)),
            fulfillmentDigest(requestId, operator, MODEL, INPUT, OUTPUT),
            "digest"
        );
    }

    function test_fulfill_withoutCallback() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        relay.fulfill(requestId, OUTPUT, signFulfillment(ENCLAVE_KEY, requestId, OUTPUT));
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Fulfilled), "status");
    }

    function test_fulfill_revertsTwice() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);
        relay.fulfill(requestId, OUTPUT, signature);
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceRelay.RequestNotClaimed.selector, requestId, InferenceRelay.Status.Fulfilled
            )
        );
        relay.fulfill(requestId, OUTPUT, signature);
        assertEq(relay.credits(operator), 0.01 ether, "paid once");
    }

    function test_fulfill_revertsWhenNotClaimed() public {
        bytes32 requestId = request(address(0), 0);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceRelay.RequestNotClaimed.selector, requestId, InferenceRelay.Status.Open)
        );
        relay.fulfill(requestId, OUTPUT, signature);
    }

    function test_fulfill_revertsAfterDeadline() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);
        uint64 deadline = relay.getRequest(requestId).deadline;
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.DeadlinePassed.selector, requestId, deadline));
        relay.fulfill(requestId, OUTPUT, signature);
    }

    function test_fulfill_acceptsAtDeadline() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        vm.warp(relay.getRequest(requestId).deadline);
        relay.fulfill(requestId, OUTPUT, signFulfillment(ENCLAVE_KEY, requestId, OUTPUT));
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Fulfilled), "status");
    }

    function test_fulfill_revertsForUnregisteredSigner() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceRelay.EnclaveNotAuthorized.selector,
                vm.addr(OTHER_KEY),
                MODEL,
                IEnclaveRegistry.EnclaveStatus.Unknown
            )
        );
        relay.fulfill(requestId, OUTPUT, signFulfillment(OTHER_KEY, requestId, OUTPUT));
    }

    /// @notice The harvesting attack of the review: another staker claimed a request and had a
    /// victim operator's enclave answer it (its fulfilment endpoint is reachable by anyone),
    /// collecting the fee for that operator's work. The statement an enclave signs now names the
    /// operator it serves, so the answer it gives anyone is worthless to any other claimer.
    function test_attack_anotherStakerCannotHarvestAnOperatorsEnclave() public {
        address harvester = address(0xBAD5);
        vm.deal(harvester, 10 ether);
        vm.prank(harvester);
        relay.stake{value: 1 ether}();
        bytes32 requestId = request(address(0), 0);
        vm.prank(harvester);
        relay.claim(requestId);

        // What the victim's enclave hands out for this request: signed for its own operator.
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);
        vm.prank(harvester);
        try relay.fulfill(requestId, OUTPUT, signature) {} catch {}
        assertEq(relay.credits(harvester), 0, "the harvester earned nothing");
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Claimed), "still claimed, not fulfilled");

        // Nor can it have the enclave's key sign for the harvester: the enclave refuses
        // (enclave/tests/onchain_fulfillment.rs); a statement naming it is not the enclave's.
        vm.expectRevert();
        relay.fulfill(requestId, OUTPUT, signFulfillmentFor(OTHER_KEY, harvester, requestId, OUTPUT));
    }

    function test_fulfill_revertsForSwappedOutput() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);
        // The signature is over OUTPUT; delivering something else recovers an unknown address.
        vm.expectRevert();
        relay.fulfill(requestId, "The capital of France is Lyon.", signature);
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Claimed), "still claimed");
    }

    function test_fulfill_revertsForSignatureOfAnotherRequest() public {
        bytes32 first = claimedRequest(address(0), 0);
        bytes32 second = claimedRequest(address(0), 0);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, first, OUTPUT);
        vm.expectRevert();
        relay.fulfill(second, OUTPUT, signature);
    }

    function test_fulfill_revertsForSignatureOnAnotherRelay() public {
        InferenceRelay otherRelay = new InferenceRelay(registry, COLLATERAL, MAX_CALLBACK_GAS);
        bytes32 requestId = claimedRequest(address(0), 0);
        bytes32 otherDigest = keccak256(
            abi.encodePacked(
                hex"1901",
                domainSeparator("InferenceRelay", address(otherRelay)),
                keccak256(
                    abi.encode(
                        FULFILLMENT_TYPEHASH,
                        requestId,
                        operator,
                        MODEL,
                        keccak256(INPUT),
                        keccak256(PARAMS),
                        keccak256(OUTPUT)
                    )
                )
            )
        );
        vm.expectRevert();
        relay.fulfill(requestId, OUTPUT, signDigest(ENCLAVE_KEY, otherDigest));
    }

    function test_fulfill_revertsForRevokedExpiredOrWrongModelEnclave() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);

        registry.disallowImage(imageId);
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceRelay.EnclaveNotAuthorized.selector,
                enclave,
                MODEL,
                IEnclaveRegistry.EnclaveStatus.ImageNotAllowed
            )
        );
        relay.fulfill(requestId, OUTPUT, signature);
        registry.allowImage(pcr0, pcr1, pcr2);

        registry.revoke(enclave);
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceRelay.EnclaveNotAuthorized.selector, enclave, MODEL, IEnclaveRegistry.EnclaveStatus.Revoked
            )
        );
        relay.fulfill(requestId, OUTPUT, signature);
    }

    function test_fulfill_revertsForExpiredEnclave() public {
        vm.warp(START + 7 days - 30 minutes);
        bytes32 requestId = claimedRequest(address(0), 0);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);
        vm.warp(START + 7 days);
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceRelay.EnclaveNotAuthorized.selector, enclave, MODEL, IEnclaveRegistry.EnclaveStatus.Expired
            )
        );
        relay.fulfill(requestId, OUTPUT, signature);
    }

    function test_fulfill_revertsForEnclaveOfAnotherModel() public {
        registry.allowModel(OTHER_MODEL);
        registerEnclave(OTHER_KEY, OTHER_MODEL, uint64(START + 1 days), uint64(START * 1000));
        bytes32 requestId = claimedRequest(address(0), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceRelay.EnclaveNotAuthorized.selector,
                vm.addr(OTHER_KEY),
                MODEL,
                IEnclaveRegistry.EnclaveStatus.ModelMismatch
            )
        );
        relay.fulfill(requestId, OUTPUT, signFulfillment(OTHER_KEY, requestId, OUTPUT));
    }

    function test_fulfill_revertsOnMalformedSignature() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        vm.expectRevert(abi.encodeWithSelector(ECDSA.SignatureLengthInvalid.selector, 0));
        relay.fulfill(requestId, OUTPUT, "");
    }

    function test_fulfill_recordsRevertingCallback() public {
        consumer.setMode(RecordingConsumer.Mode.Revert);
        assertCallbackFailureRecorded(claimedRequest(address(consumer), 200_000));
    }

    function test_fulfill_recordsCallbackOutOfGas() public {
        consumer.setMode(RecordingConsumer.Mode.BurnGas);
        assertCallbackFailureRecorded(claimedRequest(address(consumer), 200_000));
    }

    function test_fulfill_recordsCallbackWithoutCode() public {
        assertCallbackFailureRecorded(claimedRequest(address(0xC0FFEE), 200_000));
    }

    function test_fulfill_blocksReentrantFulfill() public {
        consumer.setMode(RecordingConsumer.Mode.ReenterFulfill);
        assertCallbackFailureRecorded(claimedRequest(address(consumer), 500_000));
    }

    function test_fulfill_blocksReentrantWithdraw() public {
        consumer.setMode(RecordingConsumer.Mode.ReenterWithdraw);
        assertCallbackFailureRecorded(claimedRequest(address(consumer), 500_000));
    }

    function test_fulfill_allowsNewRequestFromCallback() public {
        consumer.setMode(RecordingConsumer.Mode.RequestAgain);
        bytes32 requestId = claimedRequest(address(consumer), 500_000);
        relay.fulfill(requestId, OUTPUT, signFulfillment(ENCLAVE_KEY, requestId, OUTPUT));
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Fulfilled), "status");
        bytes32 followUp = consumer.followUpRequestId();
        assertEq(statusOf(followUp), uint256(InferenceRelay.Status.Open), "follow-up open");
        assertEq(relay.getRequest(followUp).inputHash, keccak256(OUTPUT), "follow-up input");
    }

    function test_fulfill_ignoresReturnDataBomb() public {
        consumer.setMode(RecordingConsumer.Mode.ReturnBomb);
        bytes32 requestId = claimedRequest(address(consumer), 500_000);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);
        uint256 before = gasleft();
        relay.fulfill(requestId, OUTPUT, signature);
        uint256 used = before - gasleft();
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Fulfilled), "status");
        // Copying 100 kB of return data into the relay's memory would cost far more than this.
        assertLe(used, 250_000, "return data not copied");
    }

    function test_fulfill_revertsWhenGasCannotCoverCallback() public {
        bytes32 requestId = claimedRequest(address(consumer), 1_000_000);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);
        // Enough for everything but the callback's full limit: the fulfilment must not go through
        // with a starved callback recorded as failed.
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.InsufficientGasForCallback.selector, uint32(1_000_000)));
        relay.fulfill{gas: 600_000}(requestId, OUTPUT, signature);
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Claimed), "still claimed");
        relay.fulfill{gas: 1_200_000}(requestId, OUTPUT, signature);
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Fulfilled), "fulfilled with enough gas");
    }

    // ----- refund -----

    function test_refund_openRequestReturnsFee() public {
        bytes32 requestId = request(address(0), 0);
        vm.warp(relay.getRequest(requestId).deadline + 1);
        vm.expectEmit(address(relay));
        emit InferenceRelay.RequestRefunded(requestId, requester, 0.01 ether, address(0));
        vm.prank(stranger);
        relay.refund(requestId);
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Refunded), "status");
        assertEq(relay.credits(requester), 0.01 ether, "fee back");
    }

    function test_refund_missedClaimSlashesOperator() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        vm.warp(relay.getRequest(requestId).deadline + 1);
        vm.expectEmit(address(relay));
        emit InferenceRelay.RequestRefunded(requestId, requester, 0.01 ether + COLLATERAL, operator);
        relay.refund(requestId);
        assertEq(relay.credits(requester), 0.01 ether + COLLATERAL, "fee and slash to requester");
        InferenceRelay.Operator memory state = relay.getOperator(operator);
        assertEq(uint256(state.staked), 1 ether - COLLATERAL, "slashed");
        assertEq(uint256(state.locked), 0, "unlocked");
        assertEq(uint256(state.missedCount), 1, "missed count");
        assertEq(uint256(state.fulfilledCount), 0, "fulfilled count");
    }

    function test_refund_reverts() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        uint64 deadline = relay.getRequest(requestId).deadline;
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.DeadlineNotPassed.selector, requestId, deadline));
        relay.refund(requestId);

        relay.fulfill(requestId, OUTPUT, signFulfillment(ENCLAVE_KEY, requestId, OUTPUT));
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceRelay.RequestNotPending.selector, requestId, InferenceRelay.Status.Fulfilled
            )
        );
        relay.refund(requestId);

        bytes32 missed = claimedRequest(address(0), 0);
        vm.warp(block.timestamp + 2 hours);
        relay.refund(missed);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceRelay.RequestNotPending.selector, missed, InferenceRelay.Status.Refunded)
        );
        relay.refund(missed);
    }

    // ----- withdraw -----

    function test_withdraw_paysCredits() public {
        bytes32 requestId = claimedRequest(address(0), 0);
        relay.fulfill(requestId, OUTPUT, signFulfillment(ENCLAVE_KEY, requestId, OUTPUT));
        address payable payee = payable(address(0xBEEF));
        vm.expectEmit(address(relay));
        emit InferenceRelay.Withdrawn(operator, payee, 0.01 ether);
        vm.prank(operator);
        relay.withdraw(payee);
        assertEq(payee.balance, 0.01 ether, "paid");
        assertEq(relay.credits(operator), 0, "credits cleared");
    }

    function test_withdraw_reverts() public {
        vm.expectRevert(InferenceRelay.ZeroAddress.selector);
        relay.withdraw(payable(address(0)));
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.NothingToWithdraw.selector, stranger));
        vm.prank(stranger);
        relay.withdraw(payable(stranger));

        bytes32 requestId = request(address(0), 0);
        vm.prank(requester);
        relay.cancel(requestId);
        RejectingReceiver rejecting = new RejectingReceiver();
        vm.expectRevert(abi.encodeWithSelector(InferenceRelay.TransferFailed.selector, address(rejecting), 0.01 ether));
        vm.prank(requester);
        relay.withdraw(payable(address(rejecting)));
        assertEq(relay.credits(requester), 0.01 ether, "credits kept");
    }

    function test_counters_saturateInsteadOfReverting() public {
        // _operators is the relay's third storage slot; counts sit in the top 64 bits.
        bytes32 slot = keccak256(abi.encode(operator, uint256(2)));
        uint256 packed = uint256(vm.load(address(relay), slot));
        vm.store(address(relay), slot, bytes32(packed | (uint256(type(uint64).max) << 192)));
        assertEq(uint256(relay.getOperator(operator).fulfilledCount), type(uint32).max, "slot layout");

        bytes32 fulfilled = claimedRequest(address(0), 0);
        relay.fulfill(fulfilled, OUTPUT, signFulfillment(ENCLAVE_KEY, fulfilled, OUTPUT));
        bytes32 missed = claimedRequest(address(0), 0);
        vm.warp(block.timestamp + 2 hours);
        relay.refund(missed);
        InferenceRelay.Operator memory state = relay.getOperator(operator);
        assertEq(uint256(state.fulfilledCount), type(uint32).max, "fulfilled saturates");
        assertEq(uint256(state.missedCount), type(uint32).max, "missed saturates");
        assertEq(uint256(state.staked), 1 ether - COLLATERAL, "stake still accounted");
    }

    // ----- fuzz -----

    function testFuzz_fulfill_anyOutputFromAuthorizedEnclave(bytes calldata output) public {
        // The consumer stores the output (~22,000 gas per 32 bytes): give its callback the most
        // gas a request may ask for, and keep outputs to what that can store (the fuzzer also
        // draws kilobyte-long constants from the contracts' bytecode).
        vm.assume(output.length <= 2048);
        bytes32 requestId = claimedRequest(address(consumer), MAX_CALLBACK_GAS);
        relay.fulfill(requestId, output, signFulfillment(ENCLAVE_KEY, requestId, output));
        assertEq(consumer.lastOutput(), output, "output delivered");
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.Fulfilled), "status");
    }

    function testFuzz_fulfill_rejectsUnregisteredKeys(uint256 key) public {
        key = bound(key, 1, 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140);
        vm.assume(key != ENCLAVE_KEY);
        bytes32 requestId = claimedRequest(address(0), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceRelay.EnclaveNotAuthorized.selector,
                vm.addr(key),
                MODEL,
                IEnclaveRegistry.EnclaveStatus.Unknown
            )
        );
        relay.fulfill(requestId, OUTPUT, signFulfillment(key, requestId, OUTPUT));
    }

    function testFuzz_deadline_separatesFulfilAndRefund(uint32 elapsed) public {
        bytes32 requestId = claimedRequest(address(0), 0);
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);
        uint64 deadline = relay.getRequest(requestId).deadline;
        vm.warp(block.timestamp + elapsed);
        if (block.timestamp <= deadline) {
            vm.expectRevert(abi.encodeWithSelector(InferenceRelay.DeadlineNotPassed.selector, requestId, deadline));
            relay.refund(requestId);
            relay.fulfill(requestId, OUTPUT, signature);
        } else {
            vm.expectRevert(abi.encodeWithSelector(InferenceRelay.DeadlinePassed.selector, requestId, deadline));
            relay.fulfill(requestId, OUTPUT, signature);
            relay.refund(requestId);
        }
    }

    /// Every wei the relay holds is owed to someone: stakes, credits or fees of pending requests.
    function testFuzz_accounting_conservesEther(uint8 actions, uint256 seed) public {
        actions = uint8(bound(actions, 1, 12));
        bytes32[] memory ids = new bytes32[](actions);
        for (uint256 i = 0; i < actions; i++) {
            ids[i] = request(address(0), 0);
            uint256 choice = uint256(keccak256(abi.encode(seed, i))) % 4;
            if (choice == 0) continue; // stays open
            if (choice == 1) {
                vm.prank(requester);
                relay.cancel(ids[i]);
            } else {
                vm.prank(operator);
                relay.claim(ids[i]);
                if (choice == 2) relay.fulfill(ids[i], OUTPUT, signFulfillment(ENCLAVE_KEY, ids[i], OUTPUT));
            }
        }
        vm.warp(block.timestamp + 2 hours);
        for (uint256 i = 0; i < actions; i++) {
            uint256 current = statusOf(ids[i]);
            if (current == uint256(InferenceRelay.Status.Open) || current == uint256(InferenceRelay.Status.Claimed)) {
                relay.refund(ids[i]);
            }
        }
        InferenceRelay.Operator memory state = relay.getOperator(operator);
        assertEq(uint256(state.locked), 0, "nothing locked after all deadlines");
        assertEq(
            address(relay).balance,
            uint256(state.staked) + relay.credits(operator) + relay.credits(requester),
            "balance == stakes + credits"
        );
        assertEq(
            uint256(state.fulfilledCount) * 0.01 ether + relay.credits(requester) - uint256(state.missedCount)
                * COLLATERAL,
            uint256(actions) * 0.01 ether,
            "every fee went to the operator or back to the requester"
        );
    }

    // ----- helpers -----

    function assertCallbackFailureRecorded(bytes32 requestId) internal {
        bytes memory signature = signFulfillment(ENCLAVE_KEY, requestId, OUTPUT);
        vm.expectEmit(address(relay));
        emit InferenceRelay.RequestFulfilled(requestId, operator, enclave, keccak256(OUTPUT), OUTPUT, false);
        relay.fulfill(requestId, OUTPUT, signature);
        assertEq(statusOf(requestId), uint256(InferenceRelay.Status.FulfilledCallbackFailed), "failure recorded");
        assertEq(relay.credits(operator), 0.01 ether, "operator still paid");
        assertEq(uint256(relay.getOperator(operator).fulfilledCount), 1, "counted as fulfilled");
    }
}
