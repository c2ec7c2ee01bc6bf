// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {EnclaveRegistry} from "../src/EnclaveRegistry.sol";
import {InferenceRelay} from "../src/InferenceRelay.sol";
import {IEnclaveRegistry} from "../src/interfaces/IEnclaveRegistry.sol";

/// @notice The contracts against test/data/eip712-vectors.json: typed data signed by cast
/// (alloy's EIP-712 implementation, the one the Rust enclave and relayer use), so a digest
/// mismatch between the contracts and docs/onchain.md fails here.
contract EIP712VectorsTest is Test {
    string internal json;
    EnclaveRegistry internal registry;
    InferenceRelay internal relay;

    function setUp() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/test/data/eip712-vectors.json"));
        vm.chainId(vm.parseJsonUint(json, ".chainId"));
        // Deploy from the vector's deployer at nonces 0 and 1, giving the vector's addresses.
        address deployer = vm.parseJsonAddress(json, ".deployer");
        vm.startPrank(deployer);
        registry = new EnclaveRegistry(deployer, 30 days);
        relay = new InferenceRelay(registry, 0.1 ether, 1_000_000);
        registry.allowImage(
            vm.parseJsonBytes(json, ".pcr0"), vm.parseJsonBytes(json, ".pcr1"), vm.parseJsonBytes(json, ".pcr2")
        );
        registry.allowModel(vm.parseJsonBytes32(json, ".modelHash"));
        registry.setVerifier(vm.parseJsonAddress(json, ".verifier"), true);
        vm.stopPrank();
        vm.warp(vm.parseJsonUint(json, ".attestedAtMs") / 1000 + 60);
    }

    function test_addressesMatchVector() public view {
        assertEq(address(registry), vm.parseJsonAddress(json, ".registry"), "registry address");
        assertEq(address(relay), vm.parseJsonAddress(json, ".relay"), "relay address");
        assertEq(vm.addr(vm.parseJsonUint(json, ".enclaveKey")), vm.parseJsonAddress(json, ".enclave"), "enclave");
    }

    function test_typehashesMatchDocumentedTypes() public view {
        assertEq(
            relay.FULFILLMENT_TYPEHASH(),
            keccak256(
                "Fulfillment(bytes32 requestId,address operator,bytes32 modelHash,bytes32 inputHash,bytes32 paramsHash,bytes32 outputHash)"
            ),
            "fulfillment typehash"
        );
        assertEq(
            registry.ENCLAVE_REGISTRATION_TYPEHASH(),
            keccak256(
                "EnclaveRegistration(address enclave,address operator,bytes32 imageId,bytes32 modelHash,uint64 expiry,uint64 attestedAtMs)"
            ),
            "registration typehash"
        );
    }

    function test_registrationSignedByCastRegisters() public {
        EnclaveRegistry.EnclaveRegistration memory statement = EnclaveRegistry.EnclaveRegistration({
            enclave: vm.parseJsonAddress(json, ".enclave"),
            operator: vm.parseJsonAddress(json, ".operator"),
            imageId: vm.parseJsonBytes32(json, ".imageId"),
            modelHash: vm.parseJsonBytes32(json, ".modelHash"),
            expiry: uint64(vm.parseJsonUint(json, ".expiry")),
            attestedAtMs: uint64(vm.parseJsonUint(json, ".attestedAtMs"))
        });
        vm.expectEmit(address(registry));
        emit IEnclaveRegistry.EnclaveRegistered(
            statement.enclave,
            statement.imageId,
            statement.modelHash,
            statement.operator,
            statement.expiry,
            statement.attestedAtMs,
            vm.parseJsonAddress(json, ".verifier")
        );
        registry.registerWithVerifierSignature(statement, vm.parseJsonBytes(json, ".registrationSignature"));
    }

    function test_fulfillmentSignedByCastFulfils() public {
        test_registrationSignedByCastRegisters();
        bytes memory input = bytes(vm.parseJsonString(json, ".input"));
        bytes memory params = bytes(vm.parseJsonString(json, ".params"));
        bytes memory output = bytes(vm.parseJsonString(json, ".output"));
        assertEq(keccak256(input), vm.parseJsonBytes32(json, ".inputHash"), "input hash");
        assertEq(keccak256(params), vm.parseJsonBytes32(json, ".paramsHash"), "params hash");
        assertEq(keccak256(output), vm.parseJsonBytes32(json, ".outputHash"), "output hash");

        bytes32 requestId = relay.requestInference(
            vm.parseJsonBytes32(json, ".modelHash"), input, params, address(0), 0, uint64(block.timestamp + 600)
        );
        assertEq(requestId, vm.parseJsonBytes32(json, ".requestId"), "request id");
        address operator = vm.parseJsonAddress(json, ".operator");
        vm.deal(operator, 1 ether);
        vm.startPrank(operator);
        relay.stake{value: 1 ether}();
        relay.claim(requestId);
        vm.stopPrank();

        vm.expectEmit(address(relay));
        emit InferenceRelay.RequestFulfilled(
            requestId, operator, vm.parseJsonAddress(json, ".enclave"), keccak256(output), output, true
        );
        relay.fulfill(requestId, output, vm.parseJsonBytes(json, ".fulfillmentSignature"));
    }
}
