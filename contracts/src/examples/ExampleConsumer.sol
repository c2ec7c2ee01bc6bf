// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IInferenceConsumer} from "../interfaces/IInferenceConsumer.sol";
import {InferenceRelay} from "../InferenceRelay.sol";

/// @title Example consumer: asks a model a question and stores the attested answer
/// @notice Shows the requester side of the relay: pay the fee, receive the callback, check that it
/// comes from the relay and concerns a question asked here, store the answer.
contract ExampleConsumer is IInferenceConsumer {
    struct Question {
        string prompt;
        bool answered;
        string answer;
    }

    InferenceRelay public immutable relay;
    bytes32 public immutable modelHash;
    address public immutable owner;

    mapping(bytes32 requestId => Question) private _questions;
    bytes32 public lastRequestId;

    event Asked(bytes32 indexed requestId, string prompt);
    event Answered(bytes32 indexed requestId, string answer);

    error NotOwner(address caller);
    error NotRelay(address caller);
    error EmptyPrompt();
    error UnknownRequest(bytes32 requestId);
    error AlreadyAnswered(bytes32 requestId);

    constructor(InferenceRelay relay_, bytes32 modelHash_) {
        relay = relay_;
        modelHash = modelHash_;
        owner = msg.sender;
    }

    /// @notice Asks `prompt` (UTF-8 text) with generation `params`; `msg.value` pays the fee.
    function ask(string calldata prompt, bytes calldata params, uint32 callbackGasLimit, uint64 deadline)
        external
        payable
        returns (bytes32 requestId)
    {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        // An empty prompt would make the question indistinguishable from an unknown request.
        if (bytes(prompt).length == 0) revert EmptyPrompt();
        requestId = relay.requestInference{value: msg.value}(
            modelHash, bytes(prompt), params, address(this), callbackGasLimit, deadline
        );
        _questions[requestId].prompt = prompt;
        lastRequestId = requestId;
        emit Asked(requestId, prompt);
    }

    /// @inheritdoc IInferenceConsumer
    function onInferenceResult(bytes32 requestId, bytes calldata output) external override {
        if (msg.sender != address(relay)) revert NotRelay(msg.sender);
        Question storage asked = _questions[requestId];
        if (bytes(asked.prompt).length == 0) revert UnknownRequest(requestId);
        if (asked.answered) revert AlreadyAnswered(requestId);
        asked.answered = true;
        asked.answer = string(output);
        emit Answered(requestId, asked.answer);
    }

    function question(bytes32 requestId) external view returns (Question memory) {
        return _questions[requestId];
    }

    /// @notice Collects refunds of unanswered questions (credited by the relay) to `to`.
    function withdrawRefunds(address payable to) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        relay.withdraw(to);
    }
}
