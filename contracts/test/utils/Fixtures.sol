// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {EnclaveRegistry} from "../../src/EnclaveRegistry.sol";
import {InferenceRelay} from "../../src/InferenceRelay.sol";
import {IEnclaveRegistry} from "../../src/interfaces/IEnclaveRegistry.sol";
import {IInferenceConsumer} from "../../src/interfaces/IInferenceConsumer.sol";

/// @notice A deployed registry and relay with one allowed image and model, a trusted verifier,
/// one registered enclave bound to one staked operator; plus signing helpers that compute the EIP-712
/// digests here, independently of the contracts' own digest functions.
abstract contract Fixtures is Test {
    /// SHA-256 of SmolLM2-135M-Instruct.Q4_1.gguf, the project's real model.
    bytes32 internal constant MODEL = 0xb179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53;
    bytes32 internal constant OTHER_MODEL = keccak256("another model");
    uint64 internal constant VALIDITY = 30 days;
    uint96 internal constant COLLATERAL = 0.1 ether;
    uint32 internal constant MAX_CALLBACK_GAS = 2_000_000;
    uint256 internal constant START = 1_800_000_000;

    uint256 internal constant ENCLAVE_KEY = 0xe7c1a4e;
    uint256 internal constant VERIFIER_KEY = 0x7e21f1e5;
    uint256 internal constant OTHER_KEY = 0xbad;

    bytes32 internal constant REGISTRATION_TYPEHASH = keccak256(
        "EnclaveRegistration(address enclave,address operator,bytes32 imageId,bytes32 modelHash,uint64 expiry,uint64 attestedAtMs)"
    );
    bytes32 internal constant FULFILLMENT_TYPEHASH = keccak256(
        "Fulfillment(bytes32 requestId,address operator,bytes32 modelHash,bytes32 inputHash,bytes32 paramsHash,bytes32 outputHash)"
    );

    EnclaveRegistry internal registry;
    InferenceRelay internal relay;
    bytes internal pcr0 = abi.encodePacked(sha256("pcr0"), bytes16(sha256("pcr0 tail")));
    bytes internal pcr1 = abi.encodePacked(sha256("pcr1"), bytes16(sha256("pcr1 tail")));
    bytes internal pcr2 = abi.encodePacked(sha256("pcr2"), bytes16(sha256("pcr2 tail")));
    bytes32 internal imageId;
    address internal enclave;
    address internal verifier;
    address internal operator = address(0x0FE1);
    address internal requester = address(0x4E0);
    address internal stranger = address(0x5742);

    bytes internal constant INPUT = "What is the capital of France?";
    bytes internal constant PARAMS = '{"max_tokens":32,"temperature":0}';
    bytes internal constant OUTPUT = "The capital of France is Paris.";

    function setUp() public virtual {
        vm.warp(START);
        enclave = vm.addr(ENCLAVE_KEY);
        verifier = vm.addr(VERIFIER_KEY);
        registry = new EnclaveRegistry(address(this), VALIDITY);
        imageId = registry.allowImage(pcr0, pcr1, pcr2);
        registry.allowModel(MODEL);
        registry.setVerifier(verifier, true);
        registerEnclave(ENCLAVE_KEY, MODEL, uint64(START + 7 days), uint64(START * 1000));
        relay = new InferenceRelay(registry, COLLATERAL, MAX_CALLBACK_GAS);
        vm.deal(operator, 10 ether);
        vm.prank(operator);
        relay.stake{value: 1 ether}();
        vm.deal(requester, 10 ether);
    }

    // ----- registry helpers -----

    function statementFor(address enclaveAddress, bytes32 modelHash, uint64 expiry, uint64 attestedAtMs)
        internal
        view
        returns (EnclaveRegistry.EnclaveRegistration memory)
    {
        return EnclaveRegistry.EnclaveRegistration({
            enclave: enclaveAddress,
            operator: operator,
            imageId: imageId,
            modelHash: modelHash,
            expiry: expiry,
            attestedAtMs: attestedAtMs
        });
    }

    function registrationDigest(EnclaveRegistry.EnclaveRegistration memory statement) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                REGISTRATION_TYPEHASH,
                statement.enclave,
                statement.operator,
                statement.imageId,
                statement.modelHash,
                statement.expiry,
                statement.attestedAtMs
            )
        );
        return keccak256(abi.encodePacked(hex"1901", domainSeparator("EnclaveRegistry", address(registry)), structHash));
    }

    function signRegistration(uint256 verifierKey, EnclaveRegistry.EnclaveRegistration memory statement)
        internal
        view
        returns (bytes memory)
    {
        return signDigest(verifierKey, registrationDigest(statement));
    }

    function registerEnclave(uint256 enclaveKey, bytes32 modelHash, uint64 expiry, uint64 attestedAtMs) internal {
        EnclaveRegistry.EnclaveRegistration memory statement =
            statementFor(vm.addr(enclaveKey), modelHash, expiry, attestedAtMs);
        registry.registerWithVerifierSignature(statement, signRegistration(VERIFIER_KEY, statement));
    }

    // ----- relay helpers -----

    function domainSeparator(string memory name, address verifyingContract) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes(name)),
                keccak256("1"),
                block.chainid,
                verifyingContract
            )
        );
    }

    function fulfillmentDigest(
        bytes32 requestId,
        address operatorAddress,
        bytes32 modelHash,
        bytes memory input,
        bytes memory output
    ) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                FULFILLMENT_TYPEHASH,
                requestId,
                operatorAddress,
                modelHash,
                keccak256(input),
                keccak256(PARAMS),
                keccak256(output)
            )
        );
        return keccak256(abi.encodePacked(hex"1901", domainSeparator("InferenceRelay", address(relay)), structHash));
    }

    /// @notice What the enclave `key` signs for `output`: for the operator it serves, `operator`.
    function signFulfillment(uint256 key, bytes32 requestId, bytes memory output) internal view returns (bytes memory) {
        return signFulfillmentFor(key, operator, requestId, output);
    }

    function signFulfillmentFor(uint256 key, address operatorAddress, bytes32 requestId, bytes memory output)
        internal
        view
        returns (bytes memory)
    {
        return signDigest(key, fulfillmentDigest(requestId, operatorAddress, MODEL, INPUT, output));
    }

    function request(address callback, uint32 callbackGasLimit) internal returns (bytes32 requestId) {
        vm.prank(requester);
        requestId = relay.requestInference{value: 0.01 ether}(
            MODEL, INPUT, PARAMS, callback, callbackGasLimit, uint64(block.timestamp + 1 hours)
        );
    }

    function claimedRequest(address callback, uint32 callbackGasLimit) internal returns (bytes32 requestId) {
        requestId = request(callback, callbackGasLimit);
        vm.prank(operator);
        relay.claim(requestId);
    }
}

/// @notice Records the answers it is given; can be told to revert, burn gas or reenter the relay.
contract RecordingConsumer is IInferenceConsumer {
    enum Mode {
        Record,
        Revert,
        BurnGas,
        ReenterFulfill,
        ReenterWithdraw,
        RequestAgain,
        ReturnBomb
    }

    InferenceRelay public immutable relay;
    Mode public mode;
    uint256 public calls;
    bytes32 public lastRequestId;
    bytes public lastOutput;
    bytes32 public followUpRequestId;

    constructor(InferenceRelay relay_) {
        relay = relay_;
    }

    function setMode(Mode mode_) external {
        mode = mode_;
    }

    function onInferenceResult(bytes32 requestId, bytes calldata output) external override {
        require(msg.sender == address(relay), "not relay");
        Mode current = mode;
        if (current == Mode.Revert) revert("consumer refuses");
        if (current == Mode.BurnGas) {
            while (true) {}
        }
        if (current == Mode.ReenterFulfill) relay.fulfill(requestId, output, "");
        if (current == Mode.ReenterWithdraw) relay.withdraw(payable(address(this)));
        if (current == Mode.RequestAgain) {
            followUpRequestId = relay.requestInference(
                relay.getRequest(requestId).modelHash, output, "", address(0), 0, uint64(block.timestamp + 1 hours)
            );
        }
        calls += 1;
        lastRequestId = requestId;
        lastOutput = output;
        if (current == Mode.ReturnBomb) {
            assembly {
                return(0, 100000)
            }
        }
    }

    receive() external payable {}
}

/// @notice Refuses every ETH transfer.
contract RejectingReceiver {
    receive() external payable {
        revert("no thanks");
    }
}
