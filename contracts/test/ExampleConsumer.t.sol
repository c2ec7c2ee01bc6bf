// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Fixtures} from "./utils/Fixtures.sol";
import {ExampleConsumer} from "../src/examples/ExampleConsumer.sol";
import {InferenceRelay} from "../src/InferenceRelay.sol";

contract ExampleConsumerTest is Fixtures {
    ExampleConsumer internal consumer;
    string internal constant PROMPT = "What is the capital of France?";

    function setUp() public override {
        super.setUp();
        vm.prank(requester);
        consumer = new ExampleConsumer(relay, MODEL);
    }

    function ask() internal returns (bytes32 requestId) {
        vm.prank(requester);
        requestId = consumer.ask{value: 0.01 ether}(PROMPT, PARAMS, 300_000, uint64(block.timestamp + 1 hours));
    }

    function test_ask_requestsThroughTheRelay() public {
        vm.expectEmit(address(consumer));
        emit ExampleConsumer.Asked(bytes32(uint256(1)), PROMPT);
        bytes32 requestId = ask();
        assertEq(consumer.lastRequestId(), requestId, "last request");
        assertEq(consumer.question(requestId).prompt, PROMPT, "prompt stored");
        InferenceRelay.Request memory stored = relay.getRequest(requestId);
        assertEq(stored.requester, address(consumer), "requester");
        assertEq(stored.callback, address(consumer), "callback");
        assertEq(stored.inputHash, keccak256(bytes(PROMPT)), "input is the prompt bytes");
        assertEq(stored.modelHash, MODEL, "model");
    }

    function test_ask_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.NotOwner.selector, stranger));
        vm.prank(stranger);
        consumer.ask(PROMPT, PARAMS, 300_000, uint64(block.timestamp + 1 hours));
        vm.expectRevert(ExampleConsumer.EmptyPrompt.selector);
        vm.prank(requester);
        consumer.ask("", PARAMS, 300_000, uint64(block.timestamp + 1 hours));
    }

    function test_endToEnd_storesAttestedAnswer() public {
        bytes32 requestId = ask();
        vm.prank(operator);
        relay.claim(requestId);
        vm.expectEmit(address(consumer));
        emit ExampleConsumer.Answered(requestId, string(OUTPUT));
        relay.fulfill(requestId, OUTPUT, signFulfillment(ENCLAVE_KEY, requestId, OUTPUT));
        ExampleConsumer.Question memory answered = consumer.question(requestId);
        assertTrue(answered.answered, "answered");
        assertEq(answered.answer, string(OUTPUT), "answer");
        assertEq(uint256(relay.getRequest(requestId).status), uint256(InferenceRelay.Status.Fulfilled), "status");
    }

    function test_onInferenceResult_reverts() public {
        bytes32 requestId = ask();
        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.NotRelay.selector, stranger));
        vm.prank(stranger);
        consumer.onInferenceResult(requestId, OUTPUT);

        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.UnknownRequest.selector, bytes32(uint256(42))));
        vm.prank(address(relay));
        consumer.onInferenceResult(bytes32(uint256(42)), OUTPUT);

        vm.prank(address(relay));
        consumer.onInferenceResult(requestId, OUTPUT);
        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.AlreadyAnswered.selector, requestId));
        vm.prank(address(relay));
        consumer.onInferenceResult(requestId, OUTPUT);
    }

    function test_withdrawRefunds_collectsMissedRequest() public {
        bytes32 requestId = ask();
        vm.prank(operator);
        relay.claim(requestId);
        vm.warp(block.timestamp + 2 hours);
        relay.refund(requestId);
        address payable payee = payable(address(0xBEEF));
        vm.prank(requester);
        consumer.withdrawRefunds(payee);
        assertEq(payee.balance, 0.01 ether + COLLATERAL, "fee and slashed collateral");

        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.NotOwner.selector, stranger));
        vm.prank(stranger);
        consumer.withdrawRefunds(payee);
    }

    function testFuzz_endToEnd_anyAnswer(string calldata answer) public {
        bytes32 requestId = ask();
        vm.prank(operator);
        relay.claim(requestId);
        relay.fulfill(requestId, bytes(answer), signFulfillment(ENCLAVE_KEY, requestId, bytes(answer)));
        assertEq(consumer.question(requestId).answer, answer, "answer stored");
    }
}
