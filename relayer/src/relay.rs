//! The relayer's loop: read `InferenceRequested` events from a persistent cursor, have the
//! enclave answer each request for our model, then `claim` and `fulfill` it, with the chain as
//! the source of truth at every step (a request already claimed by someone else, fulfilled,
//! refunded or cancelled is dropped; one claimed by us is fulfilled, never claimed again).
//!
//! The relayer is untrusted: the answer and its signature come from the enclave, and the relay
//! contract checks the signature against the registry. The relayer checks the signature itself
//! before claiming, and that the registry authorizes the enclave, because claiming a request it
//! cannot fulfil would cost it its collateral.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent as _;
use attestation_verifier::onchain::{ContractDomain, Fulfillment};
use attestation_verifier::receipt::recover_signer;

use crate::contracts::IEnclaveRegistry::{self, EnclaveStatus};
use crate::contracts::IInferenceRelay::{self, InferenceRequested, Status};
use crate::contracts::mined;
use crate::error::RelayerError;
use crate::state::{Job, PendingJob, RelayerState, SignedAnswer};

/// Where answers come from: the attested enclave (see `crate::enclave`), or anything that
/// produces the same signed statements.
pub trait AnswerSource {
    /// The model the enclave serves (from its attestation).
    fn model_hash(&self) -> B256;
    /// The enclave's answer to `job`, with its fulfilment signature for `relay_domain`.
    fn answer(
        &self,
        job: &Job,
        relay_domain: &ContractDomain,
    ) -> impl Future<Output = Result<SignedAnswer, RelayerError>> + Send;
}

/// Tunables of the loop.
#[derive(Debug, Clone)]
pub struct RelayerSettings {
    /// Pause between polls when there is nothing to do.
    pub poll_interval: Duration,
    /// Most blocks per `eth_getLogs` call.
    pub max_block_range: u64,
    /// Blocks to wait before reading a block's events (0 on a local chain).
    pub confirmations: u64,
    /// Requests whose deadline is closer than this (seconds) are not claimed.
    pub deadline_margin_secs: u64,
    /// Longest wait between retries of one request.
    pub max_backoff: Duration,
}

impl Default for RelayerSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            max_block_range: 2_000,
            confirmations: 0,
            deadline_margin_secs: 10,
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// What happened to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// We fulfilled it in this transaction.
    Fulfilled {
        /// The fulfil transaction.
        tx: B256,
        /// Its gas.
        gas_used: u64,
    },
    /// It was already fulfilled (by us before a restart, or by another submitter).
    AlreadyFulfilled,
    /// Another operator claimed it.
    ClaimedByOther(Address),
    /// Refunded or cancelled.
    Closed,
    /// Too close to (or past) its deadline to be taken.
    DeadlineTooClose,
}

/// The relayer for one relay contract, one operator key and one enclave.
#[derive(Debug)]
pub struct Relayer<P, A> {
    provider: P,
    relay: Address,
    registry: Address,
    operator: Address,
    domain: ContractDomain,
    answers: A,
    state: RelayerState,
    settings: RelayerSettings,
    retry_at: HashMap<B256, Instant>,
}

impl<P: Provider + Clone, A: AnswerSource> Relayer<P, A> {
    /// A relayer whose transactions `provider` signs as `operator`.
    ///
    /// # Errors
    /// [`RelayerError::Chain`] when the chain id or the relay's registry cannot be read.
    pub async fn new(
        provider: P,
        operator: Address,
        relay: Address,
        answers: A,
        state: RelayerState,
        settings: RelayerSettings,
    ) -> Result<Self, RelayerError> {
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|e| RelayerError::chain("eth_chainId", e))?;
        let registry = IInferenceRelay::new(relay, provider.clone())
            .registry()
            .call()
            .await
            .map_err(|e| RelayerError::chain("InferenceRelay.registry()", e))?;
        Ok(Self {
            provider,
            relay,
            registry,
            operator,
            domain: ContractDomain::relay(chain_id, relay.into_array()),
            answers,
            state,
            settings,
            retry_at: HashMap::new(),
        })
    }

    /// The persistent state (cursor and unfinished requests).
    pub fn state(&self) -> &RelayerState {
        &self.state
    }

    /// Answers from now on come from `answers` (a restarted enclave, with its new key).
    /// Answers already stored, signed by the old key, are still submitted as they are.
    pub fn replace_answers(&mut self, answers: A) {
        self.answers = answers;
    }

    /// The registry the relay checks enclaves against.
    pub fn registry(&self) -> Address {
        self.registry
    }

    /// Where answers come from.
    pub fn answers(&self) -> &A {
        &self.answers
    }

    /// Runs until `shutdown` resolves; transient failures are logged and retried.
    ///
    /// # Errors
    /// Only [fatal](RelayerError::is_fatal) errors stop the loop: a state file that cannot be
    /// written (continuing could lose work), or an enclave that now attests another key.
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), RelayerError> {
        tokio::pin!(shutdown);
        loop {
            match self.poll_once().await {
                Ok(_) => {}
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => tracing::warn!(%error, "poll failed; retrying"),
            }
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// Reads new events, then advances every unfinished request once. Returns what finished.
    ///
    /// # Errors
    /// Reading the chain failed, or the state file cannot be written.
    pub async fn poll_once(&mut self) -> Result<Vec<(B256, Outcome)>, RelayerError> {
        self.read_new_events().await?;
        let now = self.chain_time().await?;
        let mut finished = Vec::new();
        let pending: Vec<PendingJob> = self.state.pending().cloned().collect();
        for job in pending {
            let request_id = job.job.request_id;
            if self
                .retry_at
                .get(&request_id)
                .is_some_and(|at| Instant::now() < *at)
            {
                continue;
            }
            match self.advance(job, now).await {
                Ok(outcome) => {
                    log_outcome(request_id, &outcome);
                    self.retry_at.remove(&request_id);
                    self.state.finish(request_id)?;
                    finished.push((request_id, outcome));
                }
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => {
                    let attempts = self.state.record_failure(request_id)?;
                    let delay = backoff(attempts, self.settings.max_backoff);
                    tracing::warn!(%request_id, attempts, retry_in_ms = delay.as_millis() as u64, %error, "request not done yet");
                    self.retry_at.insert(request_id, Instant::now() + delay);
                }
            }
        }
        Ok(finished)
    }

    async fn read_new_events(&mut self) -> Result<(), RelayerError> {
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(|e| RelayerError::chain("eth_blockNumber", e))?;
        let Some(last_readable) = head.checked_sub(self.settings.confirmations) else {
            return Ok(());
        };
        let model_hash = self.answers.model_hash();
        while self.state.next_block() <= last_readable {
            let from = self.state.next_block();
            let to = last_readable.min(from + self.settings.max_block_range - 1);
            let filter = Filter::new()
                .address(self.relay)
                .event_signature(InferenceRequested::SIGNATURE_HASH)
                .from_block(from)
                .to_block(to);
            let logs = self
                .provider
                .get_logs(&filter)
                .await
                .map_err(|e| RelayerError::chain("eth_getLogs", e))?;
            let mut jobs = Vec::new();
            for log in logs {
                let block = log.block_number.unwrap_or(to);
                let decoded = log
                    .log_decode::<InferenceRequested>()
                    .map_err(|e| RelayerError::chain("decoding InferenceRequested", e))?;
                let event = decoded.inner.data;
                if event.modelHash != model_hash {
                    tracing::debug!(request_id = %event.requestId, model = %event.modelHash, "not our model; skipped");
                    continue;
                }
                tracing::info!(request_id = %event.requestId, block, deadline = event.deadline, fee_wei = %event.fee, "request seen");
                jobs.push(Job {
                    request_id: event.requestId,
                    model_hash: event.modelHash,
                    input: event.input,
                    params: event.params,
                    deadline: event.deadline,
                    fee_wei: event.fee.to_string(),
                    block,
                });
            }
            self.state.record_blocks(jobs, to)?;
        }
        Ok(())
    }

    async fn chain_time(&self) -> Result<u64, RelayerError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| RelayerError::chain("eth_getBlockByNumber", e))?
            .ok_or_else(|| RelayerError::chain("eth_getBlockByNumber", "no latest block"))?;
        Ok(block.header.timestamp)
    }

    /// One request, from whatever point it had reached, to a final outcome.
    async fn advance(&mut self, pending: PendingJob, now: u64) -> Result<Outcome, RelayerError> {
        let relay = IInferenceRelay::new(self.relay, self.provider.clone());
        let job = pending.job;
        let request = relay
            .getRequest(job.request_id)
            .call()
            .await
            .map_err(|e| RelayerError::chain("InferenceRelay.getRequest", e))?;
        let ours = request.operator == self.operator;
        match request.status {
            Status::Open => {
                if now.saturating_add(self.settings.deadline_margin_secs) >= job.deadline {
                    return Ok(Outcome::DeadlineTooClose);
                }
            }
            Status::Claimed if ours => {
                if now > job.deadline {
                    return Ok(Outcome::DeadlineTooClose);
                }
            }
            Status::Claimed => return Ok(Outcome::ClaimedByOther(request.operator)),
            Status::Fulfilled | Status::FulfilledCallbackFailed => {
                return Ok(Outcome::AlreadyFulfilled);
            }
            _ => return Ok(Outcome::Closed),
        }

        let answer = match pending.answer {
            Some(answer) => answer,
            None => {
                let answer = self.answers.answer(&job, &self.domain).await?;
                self.check_signature(&job, &answer)?;
                self.state.record_answer(job.request_id, answer.clone())?;
                answer
            }
        };

        if matches!(request.status, Status::Open) {
            let registry = IEnclaveRegistry::new(self.registry, self.provider.clone());
            let status = registry
                .enclaveStatus(answer.enclave, job.model_hash)
                .call()
                .await
                .map_err(|e| RelayerError::chain("EnclaveRegistry.enclaveStatus", e))?;
            if !matches!(status, EnclaveStatus::Authorized) {
                return Err(RelayerError::EnclaveNotAuthorized {
                    request_id: job.request_id,
                    enclave: answer.enclave,
                    status: status as u8,
                });
            }
            // Authorized now is not enough: `fulfill` checks the registration when it lands,
            // up to the deadline, and the fee is paid to the operator the key is bound to.
            let record = registry
                .enclaves(answer.enclave)
                .call()
                .await
                .map_err(|e| RelayerError::chain("EnclaveRegistry.enclaves", e))?;
            if record.expiry <= job.deadline {
                return Err(RelayerError::RegistrationEndsTooSoon {
                    request_id: job.request_id,
                    enclave: answer.enclave,
                    expiry: record.expiry,
                    deadline: job.deadline,
                });
            }
            if record.operator != self.operator {
                return Err(RelayerError::RegisteredForAnotherOperator {
                    enclave: answer.enclave,
                    registered: record.operator,
                    operator: self.operator,
                });
            }
            let receipt = mined(
                relay.claim(job.request_id).send().await,
                "claim",
                job.request_id,
            )
            .await?;
            tracing::info!(request_id = %job.request_id, tx = %receipt.transaction_hash, "claimed");
        }

        let receipt = mined(
            relay
                .fulfill(
                    job.request_id,
                    answer.output.clone(),
                    answer.signature.clone(),
                )
                .send()
                .await,
            "fulfill",
            job.request_id,
        )
        .await?;
        Ok(Outcome::Fulfilled {
            tx: receipt.transaction_hash,
            gas_used: receipt.gas_used,
        })
    }

    /// The relay would reject a signature that is not the attested enclave's; check first.
    fn check_signature(&self, job: &Job, answer: &SignedAnswer) -> Result<(), RelayerError> {
        let digest = fulfillment_digest(job, self.operator, &answer.output, &self.domain);
        let recovered = recover_signer(&digest, &answer.signature);
        match recovered {
            Ok(address) if Address::from(address) == answer.enclave => Ok(()),
            other => Err(RelayerError::BadFulfillmentSignature {
                request_id: job.request_id,
                recovered: match other {
                    Ok(address) => Address::from(address).to_string(),
                    Err(error) => error.to_string(),
                },
                attested: answer.enclave,
            }),
        }
    }
}

/// The EIP-712 digest the relay checks for `output` as `operator`'s answer to `job`.
pub fn fulfillment_digest(
    job: &Job,
    operator: Address,
    output: &Bytes,
    domain: &ContractDomain,
) -> [u8; 32] {
    Fulfillment::for_exchange(
        job.request_id.0,
        operator.into_array(),
        job.model_hash.0,
        &job.input,
        &job.params,
        output,
    )
    .digest(domain)
}

fn backoff(attempts: u32, max: Duration) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    Duration::from_millis(500u64 << exponent).min(max)
}

fn log_outcome(request_id: B256, outcome: &Outcome) {
    match outcome {
        Outcome::Fulfilled { tx, gas_used } => {
            tracing::info!(%request_id, %tx, gas_used, "fulfilled");
        }
        Outcome::AlreadyFulfilled => tracing::info!(%request_id, "already fulfilled"),
        Outcome::ClaimedByOther(operator) => {
            tracing::info!(%request_id, %operator, "claimed by another operator")
        }
        Outcome::Closed => tracing::info!(%request_id, "refunded or cancelled"),
        Outcome::DeadlineTooClose => {
            tracing::warn!(%request_id, "deadline too close or passed; not taken")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let max = Duration::from_secs(60);
        assert_eq!(backoff(1, max), Duration::from_millis(500));
        assert_eq!(backoff(2, max), Duration::from_secs(1));
        assert_eq!(backoff(4, max), Duration::from_secs(4));
        assert_eq!(backoff(30, max), max);
    }
}
