// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IEnclaveRegistry} from "./interfaces/IEnclaveRegistry.sol";
import {IInferenceConsumer} from "./interfaces/IInferenceConsumer.sol";
import {ECDSA} from "./utils/ECDSA.sol";
import {EIP712} from "./utils/EIP712.sol";
import {ReentrancyGuard} from "./utils/ReentrancyGuard.sol";

/// @title Relay for attested LLM inference
/// @notice Contracts request inference for a model and receive the answer by callback; the answer
/// must be signed by an enclave key the registry authorizes for that model.
/// @dev Operator model: operators stake ETH here. An operator `claim`s an open request, which locks
/// `claimCollateral` of its free stake and gives it the fee on fulfilment. A claimed request missed
/// by its deadline is refunded to the requester together with the locked collateral (the slash).
/// Only the claiming operator can ever be slashed, and only for a request it chose to claim.
/// All payouts are credited and pulled with `withdraw`, so no recipient can block a state change.
contract InferenceRelay is EIP712, ReentrancyGuard {
    /// @notice EIP-712 type of the statement an enclave signs for an answer.
    bytes32 public constant FULFILLMENT_TYPEHASH = keccak256(
        "Fulfillment(bytes32 requestId,address operator,bytes32 modelHash,bytes32 inputHash,bytes32 paramsHash,bytes32 outputHash)"
    );
    /// @notice Gas kept back for the CALL itself when checking the callback gets its full limit.
    uint256 public constant CALLBACK_CALL_RESERVE = 5000;

    enum Status {
        None,
        Open,
        Claimed,
        Fulfilled,
        FulfilledCallbackFailed,
        Refunded,
        Cancelled
    }

    /// @dev Packed into six slots; the first two are read by every state change.
    struct Request {
        address requester;
        uint40 deadline;
        Status status;
        uint32 callbackGasLimit;
        address callback;
        uint96 fee;
        bytes32 modelHash;
        bytes32 inputHash;
        bytes32 paramsHash;
        address operator;
        uint96 collateral;
    }

    struct Operator {
        uint96 staked;
        /// Part of `staked` backing claimed, unfinished requests.
        uint96 locked;
        uint32 fulfilledCount;
        uint32 missedCount;
    }

    IEnclaveRegistry public immutable registry;
    /// @notice Stake an operator locks per claimed request, and loses if it misses the deadline.
    uint96 public immutable claimCollateral;
    /// @notice The largest callback gas limit a request may ask for (keeps `fulfill` within a block).
    uint32 public immutable maxCallbackGasLimit;

    uint256 public requestCount;
    mapping(bytes32 requestId => Request) internal _requests;
    mapping(address operator => Operator) private _operators;
    /// @notice Amounts owed (fees, refunds, slashed collateral) awaiting `withdraw`.
    mapping(address account => uint256) public credits;

    event InferenceRequested(
        bytes32 indexed requestId,
        address indexed requester,
        bytes32 indexed modelHash,
        bytes input,
        bytes params,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline,
        uint256 fee
    );
    event RequestClaimed(bytes32 indexed requestId, address indexed operator, uint96 collateral);
    event RequestFulfilled(
        bytes32 indexed requestId,
        address indexed operator,
        address indexed enclave,
        bytes32 outputHash,
        bytes output,
        bool callbackSucceeded
    );
    event RequestRefunded(
        bytes32 indexed requestId, address indexed requester, uint256 amount, address slashedOperator
    );
    event RequestCancelled(bytes32 indexed requestId);
    event Staked(address indexed operator, uint256 amount);
    event Unstaked(address indexed operator, uint256 amount);
    event Withdrawn(address indexed account, address indexed to, uint256 amount);

    error ZeroAddress();
    error ZeroAmount();
    error ModelNotAllowed(bytes32 modelHash);
    error DeadlineNotInFuture(uint64 deadline, uint256 blockTimestamp);
    error DeadlineTooFar(uint64 deadline);
    error CallbackGasLimitTooHigh(uint32 callbackGasLimit, uint32 maxCallbackGasLimit);
    error CallbackGasLimitZero();
    error AmountTooLarge(uint256 amount);
    error RequestNotOpen(bytes32 requestId, Status status);
    error RequestNotClaimed(bytes32 requestId, Status status);
    error RequestNotPending(bytes32 requestId, Status status);
    error DeadlinePassed(bytes32 requestId, uint64 deadline);
    error DeadlineNotPassed(bytes32 requestId, uint64 deadline);
    error NotRequester(bytes32 requestId, address caller);
    error InsufficientFreeStake(address operator, uint256 free, uint256 required);
    error EnclaveNotAuthorized(address enclave, bytes32 modelHash, IEnclaveRegistry.EnclaveStatus status);
    error RegistryCallFailed();
    error InsufficientGasForCallback(uint32 callbackGasLimit);
    error NothingToWithdraw(address account);
    error TransferFailed(address to, uint256 amount);

    constructor(IEnclaveRegistry registry_, uint96 claimCollateral_, uint32 maxCallbackGasLimit_)
        EIP712("InferenceRelay", "1")
    {
        if (address(registry_) == address(0)) revert ZeroAddress();
        // Without collateral a claim would cost nothing, and anyone could claim every request
        // and sit on it until the deadline.
        if (claimCollateral_ == 0) revert ZeroAmount();
        registry = registry_;
        claimCollateral = claimCollateral_;
        maxCallbackGasLimit = maxCallbackGasLimit_;
    }

    // ----- requesters -----

    /// @notice Asks for `input` to be run by an enclave serving `modelHash`; `msg.value` is the fee.
    /// @param params the generation parameters, opaque here, bound into the enclave's signature.
    /// @param callback contract to receive `onInferenceResult`, or zero for none (read the event).
    /// @param deadline Unix seconds; fulfilment is possible up to and including it, refund after it.
    function requestInference(
        bytes32 modelHash,
        bytes calldata input,
        bytes calldata params,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline
    ) external payable returns (bytes32 requestId) {
        if (!registry.isModelAllowed(modelHash)) revert ModelNotAllowed(modelHash);
        if (deadline <= block.timestamp) revert DeadlineNotInFuture(deadline, block.timestamp);
        if (deadline > type(uint40).max) revert DeadlineTooFar(deadline);
        if (callbackGasLimit > maxCallbackGasLimit) {
            revert CallbackGasLimitTooHigh(callbackGasLimit, maxCallbackGasLimit);
        }
        if (callback != address(0) && callbackGasLimit == 0) revert CallbackGasLimitZero();
        if (msg.value > type(uint96).max) revert AmountTooLarge(msg.value);

        requestId = bytes32(++requestCount);
        Request storage request = _requests[requestId];
        request.requester = msg.sender;
        // casting to 'uint40' is safe because deadline <= type(uint40).max was checked above
        // forge-lint: disable-next-line(unsafe-typecast)
        request.deadline = uint40(deadline);
        request.status = Status.Open;
        request.callbackGasLimit = callbackGasLimit;
        request.callback = callback;
        // casting to 'uint96' is safe because msg.value <= type(uint96).max was checked above
        // forge-lint: disable-next-line(unsafe-typecast)
        request.fee = uint96(msg.value);
        request.modelHash = modelHash;
        request.inputHash = keccak256(input);
        request.paramsHash = keccak256(params);
        emit InferenceRequested(
            requestId, msg.sender, modelHash, input, params, callback, callbackGasLimit, deadline, msg.value
        );
    }

    /// @notice Withdraws an unclaimed request; its fee is credited back to the requester.
    function cancel(bytes32 requestId) external nonReentrant {
        Request storage request = _requests[requestId];
        if (request.requester != msg.sender) revert NotRequester(requestId, msg.sender);
        if (request.status != Status.Open) revert RequestNotOpen(requestId, request.status);
        request.status = Status.Cancelled;
        credits[msg.sender] += request.fee;
        emit RequestCancelled(requestId);
    }

    /// @notice After the deadline of an unfulfilled request, credits the fee back to the requester,
    /// plus the claiming operator's collateral if one claimed it. Anyone may call it.
    function refund(bytes32 requestId) external nonReentrant {
        Request storage request = _requests[requestId];
        Status status = request.status;
        if (status != Status.Open && status != Status.Claimed) revert RequestNotPending(requestId, status);
        if (block.timestamp <= request.deadline) revert DeadlineNotPassed(requestId, request.deadline);

        request.status = Status.Refunded;
        uint256 amount = request.fee;
        address slashed;
        if (status == Status.Claimed) {
            slashed = request.operator;
            uint96 collateral = request.collateral;
            Operator storage operator = _operators[slashed];
            operator.staked -= collateral;
            operator.locked -= collateral;
            if (operator.missedCount != type(uint32).max) operator.missedCount += 1;
            amount += collateral;
        }
        credits[request.requester] += amount;
        emit RequestRefunded(requestId, request.requester, amount, slashed);
    }

    // ----- operators -----

    function stake() external payable {
        if (msg.value == 0) revert ZeroAmount();
        Operator storage operator = _operators[msg.sender];
        uint256 staked = operator.staked + msg.value;
        if (staked > type(uint96).max) revert AmountTooLarge(staked);
        // casting to 'uint96' is safe because staked <= type(uint96).max was checked above
        // forge-lint: disable-next-line(unsafe-typecast)
        operator.staked = uint96(staked);
        emit Staked(msg.sender, msg.value);
    }

    /// @notice Returns free (unlocked) stake to the operator.
    function unstake(uint96 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Operator storage operator = _operators[msg.sender];
        uint256 free = operator.staked - operator.locked;
        if (amount > free) revert InsufficientFreeStake(msg.sender, free, amount);
        operator.staked -= amount;
        emit Unstaked(msg.sender, amount);
        _send(payable(msg.sender), amount);
    }

    /// @notice Takes an open request: the caller alone is paid for it, and is slashed if it misses
    /// the deadline. Locks `claimCollateral` of the caller's free stake.
    function claim(bytes32 requestId) external nonReentrant {
        Request storage request = _requests[requestId];
        if (request.status != Status.Open) revert RequestNotOpen(requestId, request.status);
        if (block.timestamp > request.deadline) revert DeadlinePassed(requestId, request.deadline);
        Operator storage operator = _operators[msg.sender];
        uint96 collateral = claimCollateral;
        uint256 free = operator.staked - operator.locked;
        if (free < collateral) revert InsufficientFreeStake(msg.sender, free, collateral);
        operator.locked += collateral;
        request.status = Status.Claimed;
        request.operator = msg.sender;
        request.collateral = collateral;
        emit RequestClaimed(requestId, msg.sender, collateral);
    }

    /// @notice Delivers a claimed request's answer, signed by an enclave the registry authorizes for
    /// the request's model, for the claiming operator: the signed statement names the operator, and
    /// an enclave signs only for the one operator it serves, so no other staker can claim a request
    /// and collect the fee for another operator's enclave. Anyone may submit it; the fee goes to the
    /// claiming operator.
    /// @dev The callback runs last with exactly `callbackGasLimit` gas; its failure is recorded in
    /// the status and the event, and does not undo the fulfilment.
    function fulfill(bytes32 requestId, bytes calldata output, bytes calldata signature) external nonReentrant {
        Request storage request = _requests[requestId];
        if (request.status != Status.Claimed) revert RequestNotClaimed(requestId, request.status);
        if (block.timestamp > request.deadline) revert DeadlinePassed(requestId, request.deadline);

        bytes32 outputHash = keccak256(output);
        address enclave = _authorizedSigner(request, requestId, outputHash, signature);

        // Effects before the callback: the callback sees a finished fulfilment.
        request.status = Status.Fulfilled;
        address operatorAddress = request.operator;
        Operator storage operator = _operators[operatorAddress];
        operator.locked -= request.collateral;
        // Counters saturate: an overflow revert would lock the operator out of fulfilling.
        if (operator.fulfilledCount != type(uint32).max) operator.fulfilledCount += 1;
        credits[operatorAddress] += request.fee;

        bool callbackSucceeded = true;
        address callback = request.callback;
        if (callback != address(0)) {
            callbackSucceeded = _callWithExactGas(
                callback,
                request.callbackGasLimit,
                abi.encodeCall(IInferenceConsumer.onInferenceResult, (requestId, output))
            );
            if (!callbackSucceeded) request.status = Status.FulfilledCallbackFailed;
        }
        emit RequestFulfilled(requestId, operatorAddress, enclave, outputHash, output, callbackSucceeded);
    }

    // ----- everyone -----

    /// @notice Pays out the caller's credits (fees, refunds, slashed collateral) to `to`.
    function withdraw(address payable to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 amount = credits[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        credits[msg.sender] = 0;
        emit Withdrawn(msg.sender, to, amount);
        _send(to, amount);
    }

    /// @notice The EIP-712 digest an enclave signs for an answer (see docs/onchain.md).
    function fulfillmentDigest(
        bytes32 requestId,
        address operator,
        bytes32 modelHash,
        bytes32 inputHash,
        bytes32 paramsHash,
        bytes32 outputHash
    ) public view returns (bytes32) {
        bytes32 structHash;
        bytes32 typehash = FULFILLMENT_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            mstore(add(ptr, 0x20), requestId)
            mstore(add(ptr, 0x40), and(operator, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(ptr, 0x60), modelHash)
            mstore(add(ptr, 0x80), inputHash)
            mstore(add(ptr, 0xa0), paramsHash)
            mstore(add(ptr, 0xc0), outputHash)
            structHash := keccak256(ptr, 0xe0)
        }
        return _hashTypedData(structHash);
    }

    function getRequest(bytes32 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    function getOperator(address operator) external view returns (Operator memory) {
        return _operators[operator];
    }

    // ----- internals -----

    /// @dev The signature and registry checks of `fulfill`: recovers the enclave that signed the
    /// fulfilment of `request` with `outputHash` for the claiming operator, and requires the
    /// registry to authorize it now.
    function _authorizedSigner(Request storage request, bytes32 requestId, bytes32 outputHash, bytes calldata signature)
        internal
        view
        returns (address enclave)
    {
        bytes32 modelHash = request.modelHash;
        enclave = ECDSA.recover(
            fulfillmentDigest(
                requestId, request.operator, modelHash, request.inputHash, request.paramsHash, outputHash
            ),
            signature
        );
        IEnclaveRegistry.EnclaveStatus enclaveStatus = _enclaveStatus(enclave, modelHash);
        if (enclaveStatus != IEnclaveRegistry.EnclaveStatus.Authorized) {
            revert EnclaveNotAuthorized(enclave, modelHash, enclaveStatus);
        }
    }

    /// @dev `registry.enclaveStatus(enclave, modelHash)` without the ABI coder's overhead (this
    /// runs on every fulfilment); the answer is still validated: 32 bytes, a known status.
    function _enclaveStatus(address enclave, bytes32 modelHash)
        private
        view
        returns (IEnclaveRegistry.EnclaveStatus enclaveStatus)
    {
        address target = address(registry);
        bytes4 selector = IEnclaveRegistry.enclaveStatus.selector;
        bool ok;
        uint256 raw;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, selector)
            mstore(add(ptr, 0x04), enclave)
            mstore(add(ptr, 0x24), modelHash)
            ok := and(staticcall(gas(), target, ptr, 0x44, ptr, 0x20), eq(returndatasize(), 0x20))
            raw := mload(ptr)
        }
        if (!ok || raw > uint256(type(IEnclaveRegistry.EnclaveStatus).max)) revert RegistryCallFailed();
        enclaveStatus = IEnclaveRegistry.EnclaveStatus(raw);
    }

    /// @dev Calls `target` with exactly `gasLimit` gas, or reverts the whole fulfilment if the
    /// transaction did not bring enough gas for that: by the 63/64 rule a CALL forwards at most
    /// 63/64 of what is left, so a submitter could otherwise starve the callback on purpose and
    /// have it recorded as failed. Return data is never copied (no return-data bomb).
    function _callWithExactGas(address target, uint32 gasLimit, bytes memory data) private returns (bool success) {
        bytes4 insufficientGas = InsufficientGasForCallback.selector;
        uint256 reserve = CALLBACK_CALL_RESERVE;
        assembly ("memory-safe") {
            let available := gas()
            if lt(available, reserve) {
                mstore(0x00, insufficientGas)
                mstore(0x04, gasLimit)
                revert(0x00, 0x24)
            }
            available := sub(available, reserve)
            if lt(sub(available, div(available, 64)), gasLimit) {
                mstore(0x00, insufficientGas)
                mstore(0x04, gasLimit)
                revert(0x00, 0x24)
            }
            // A call to an address without code would "succeed" without running anything.
            if extcodesize(target) {
                success := call(gasLimit, target, 0, add(data, 0x20), mload(data), 0, 0)
            }
        }
    }

    function _send(address payable to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
