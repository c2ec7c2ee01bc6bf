//! Chain-side helpers over [`crate::Anvil`]: funded accounts with their own signing provider,
//! transactions that must succeed, anvil's clock, and the owner/requester/consumer functions of
//! the contracts that the relayer's own ABI (`relayer::contracts`) does not need.
#![allow(missing_docs, clippy::too_many_arguments)]

use alloy::network::{Ethereum, EthereumWallet};
use alloy::primitives::{Address, U256, keccak256};
use alloy::providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;

use crate::{Anvil, DEPLOYER_KEY};

alloy::sol! {
    #[sol(rpc)]
    interface IRegistryOwner {
        function allowImage(bytes calldata pcr0, bytes calldata pcr1, bytes calldata pcr2) external;
        function allowModel(bytes32 modelHash) external;
        function revoke(address enclave) external;
    }

    #[sol(rpc)]
    interface IRequests {
        function requestInference(
            bytes32 modelHash,
            bytes calldata input,
            bytes calldata params,
            address callback,
            uint32 callbackGasLimit,
            uint64 deadline
        ) external payable returns (bytes32 requestId);
        function refund(bytes32 requestId) external;
    }

    #[sol(rpc)]
    interface IExampleConsumer {
        struct Question {
            string prompt;
            bool answered;
            string answer;
        }
        function ask(string calldata prompt, bytes calldata params, uint32 callbackGasLimit, uint64 deadline)
            external
            payable
            returns (bytes32 requestId);
        function question(bytes32 requestId) external view returns (Question memory);
    }

    /// The relay's revert for a fulfilment whose signer the registry does not authorize.
    error EnclaveNotAuthorized(address enclave, bytes32 modelHash, uint8 status);
}

/// 10^18 wei.
pub const ONE_ETHER: u128 = 1_000_000_000_000_000_000;

/// An account with its own signing provider.
#[derive(Debug, Clone)]
pub struct Account {
    /// Its key.
    pub key: PrivateKeySigner,
    /// A provider that signs its transactions.
    pub provider: DynProvider,
}

impl Account {
    /// An account whose key is derived from `label`, given 100 ether with `anvil_setBalance`.
    pub async fn funded(anvil: &Anvil, label: &str) -> Self {
        let key = PrivateKeySigner::from_bytes(&keccak256(label)).expect("a key from a label");
        let account = Self::with_key(anvil, key);
        account
            .provider
            .raw_request::<_, serde_json::Value>(
                "anvil_setBalance".into(),
                (account.address(), U256::from(100 * ONE_ETHER).to_string()),
            )
            .await
            .expect("anvil_setBalance");
        account
    }

    /// An account for `key`.
    pub fn with_key(anvil: &Anvil, key: PrivateKeySigner) -> Self {
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(key.clone()))
            .connect_http(anvil.rpc_url().parse().expect("rpc url"))
            .erased();
        Self { key, provider }
    }

    /// anvil's account 0, which deployed and owns the contracts.
    pub fn deployer(anvil: &Anvil) -> Self {
        Self::with_key(anvil, DEPLOYER_KEY.parse().expect("anvil key 0"))
    }

    /// Its address.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Its private key as `0x` hex (for a child process's environment).
    pub fn key_hex(&self) -> String {
        format!("0x{}", alloy::hex::encode(self.key.to_bytes()))
    }
}

/// A key derived from `label` (not funded).
pub fn key_for(label: &str) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256(label)).expect("a key from a label")
}

/// Waits for the transaction `what` and panics unless it succeeded.
pub async fn mined(
    pending: Result<PendingTransactionBuilder<Ethereum>, alloy::contract::Error>,
    what: &str,
) -> TransactionReceipt {
    let receipt = pending
        .unwrap_or_else(|error| panic!("{what}: {error}"))
        .get_receipt()
        .await
        .unwrap_or_else(|error| panic!("{what} receipt: {error}"));
    assert!(receipt.status(), "{what} reverted");
    receipt
}

/// The latest block's timestamp.
pub async fn chain_time(provider: &DynProvider) -> u64 {
    provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .expect("latest block")
        .expect("a latest block")
        .header
        .timestamp
}

/// Moves anvil's clock forward by `seconds` and mines a block.
pub async fn advance_time(provider: &DynProvider, seconds: u64) {
    provider
        .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (seconds,))
        .await
        .expect("evm_increaseTime");
    provider
        .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
        .await
        .expect("evm_mine");
}
