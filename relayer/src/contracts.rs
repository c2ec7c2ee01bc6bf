//! The contracts' ABI as the relayer uses it (docs/onchain.md): declared here with `sol!` so the
//! relayer builds without the Solidity toolchain. The declarations must match
//! `contracts/src/{InferenceRelay,EnclaveRegistry}.sol`; the end-to-end tests run them against
//! the real contracts on anvil.
#![allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::too_many_arguments
)]

alloy::sol! {
    #[sol(rpc)]
    interface IInferenceRelay {
        enum Status { None, Open, Claimed, Fulfilled, FulfilledCallbackFailed, Refunded, Cancelled }

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
            uint96 locked;
            uint32 fulfilledCount;
            uint32 missedCount;
        }

        #[allow(clippy::too_many_arguments)]
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
        event RequestFulfilled(
            bytes32 indexed requestId,
            address indexed operator,
            address indexed enclave,
            bytes32 outputHash,
            bytes output,
            bool callbackSucceeded
        );

        function registry() external view returns (address);
        function claimCollateral() external view returns (uint96);
        function stake() external payable;
        function claim(bytes32 requestId) external;
        function fulfill(bytes32 requestId, bytes calldata output, bytes calldata signature) external;
        function withdraw(address to) external;
        function getRequest(bytes32 requestId) external view returns (Request memory);
        function getOperator(address operator) external view returns (Operator memory);
        function credits(address account) external view returns (uint256);
        function fulfillmentDigest(
            bytes32 requestId,
            address operator,
            bytes32 modelHash,
            bytes32 inputHash,
            bytes32 paramsHash,
            bytes32 outputHash
        ) external view returns (bytes32);
    }

    #[sol(rpc)]
    interface IEnclaveRegistry {
        enum EnclaveStatus { Authorized, Unknown, Revoked, ModelMismatch, Expired, ModelNotAllowed, ImageNotAllowed }

        struct EnclaveRegistration {
            address enclave;
            address operator;
            bytes32 imageId;
            bytes32 modelHash;
            uint64 expiry;
            uint64 attestedAtMs;
        }

        struct Enclave {
            bytes32 imageId;
            bytes32 modelHash;
            uint64 expiry;
            uint64 attestedAtMs;
            bool revoked;
            address operator;
        }

        function registerWithVerifierSignature(EnclaveRegistration calldata statement, bytes calldata signature) external;
        function enclaveStatus(address enclave, bytes32 modelHash) external view returns (EnclaveStatus);
        function registrationDigest(EnclaveRegistration calldata statement) external view returns (bytes32);
        function maxRegistrationValidity() external view returns (uint64);
        function enclaves(address enclave) external view returns (Enclave memory);
    }

    /// `contracts/src/nitro/NitroRegistrar.sol`: the trustless registration route.
    #[sol(rpc)]
    interface INitroRegistrar {
        struct Link {
            bytes32 hash;
            bytes32 parent;
            bytes32 subjectHash;
            bytes publicKey;
            uint64 validFrom;
            uint64 validUntil;
            uint64 remainingPathLength;
        }

        struct Attestation {
            bytes32 imageId;
            bool debugMode;
            uint64 timestampMs;
            bytes moduleId;
            bytes publicKey;
            bytes userData;
            bytes nonce;
            bool hasPublicKey;
            bool hasUserData;
            bool hasNonce;
        }

        event CertificateCached(bytes32 indexed certificateHash, bytes32 indexed parent, uint64 validUntil);

        function registry() external view returns (address);
        function isAwsRoot() external view returns (bool);
        function verifyAttestation(bytes calldata document, bytes[] calldata hints) external view returns (Attestation memory);
        function register(bytes calldata document, bytes[] calldata hints, uint64 expiry) external returns (address);
        function cacheCertificate(bytes calldata certificate, bytes32 parent, bytes calldata hint) external returns (bytes32);
        function cachedCertificate(bytes32 certificateHash) external view returns (Link memory);
    }
}

/// Waits for a sent contract transaction and requires it to succeed: the one way every
/// transaction of the relayer is submitted. `sent` is the result of `.send().await`.
///
/// # Errors
/// [`RelayerError::Chain`] when it could not be sent or its receipt not read,
/// [`RelayerError::Reverted`] when it was mined and reverted.
pub async fn mined(
    sent: Result<
        alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
        alloy::contract::Error,
    >,
    action: &'static str,
    request_id: alloy::primitives::B256,
) -> Result<alloy::rpc::types::TransactionReceipt, crate::RelayerError> {
    let receipt = sent
        .map_err(|e| crate::RelayerError::chain(action, e))?
        .get_receipt()
        .await
        .map_err(|e| crate::RelayerError::Chain {
            action,
            reason: format!("waiting for the receipt: {e}"),
        })?;
    if !receipt.status() {
        return Err(crate::RelayerError::Reverted {
            action,
            tx: receipt.transaction_hash,
            request_id,
        });
    }
    Ok(receipt)
}
