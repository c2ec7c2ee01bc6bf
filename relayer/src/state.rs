//! The relayer's persistent state: how far it has read the chain, and every request it has seen
//! but not finished (with the enclave's answer once it has one). Saved atomically (write a
//! temporary file, fsync, rename) after every change, so a relayer killed at any point resumes
//! where it was: the chain is re-read from the cursor, unfinished requests are retried, and an
//! answer obtained before the crash is submitted as it was (never asked for twice).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, Bytes};
use serde::{Deserialize, Serialize};

use crate::error::RelayerError;

/// The state file's format version.
const STATE_VERSION: u32 = 1;

/// One on-chain request, as the relayer needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The relay's request id.
    pub request_id: B256,
    /// The model asked for.
    pub model_hash: B256,
    /// The prompt bytes.
    pub input: Bytes,
    /// The generation parameters bytes.
    pub params: Bytes,
    /// Unix seconds; fulfilment is possible up to and including it.
    pub deadline: u64,
    /// The fee in wei (decimal string: it can exceed u64).
    pub fee_wei: String,
    /// The block the request was emitted in.
    pub block: u64,
}

/// The enclave's signed answer to a [`Job`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAnswer {
    /// The answer bytes submitted to `fulfill`.
    pub output: Bytes,
    /// The enclave's 65-byte EIP-712 fulfilment signature.
    pub signature: Bytes,
    /// The enclave address that signed.
    pub enclave: Address,
}

/// A request the relayer is working on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingJob {
    /// The request.
    pub job: Job,
    /// The enclave's answer, once obtained.
    pub answer: Option<SignedAnswer>,
    /// Failed attempts so far (for backoff and logs).
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    chain_id: u64,
    relay: Address,
    next_block: u64,
    pending: BTreeMap<B256, PendingJob>,
    finished: u64,
}

/// The state, bound to one chain and relay, and to the file it is saved in.
#[derive(Debug)]
pub struct RelayerState {
    path: PathBuf,
    file: StateFile,
}

impl RelayerState {
    /// Loads the state at `path`, or starts a new one reading from `start_block` when the file
    /// does not exist.
    ///
    /// # Errors
    /// [`RelayerError::State`] when the file is unreadable or belongs to another chain or relay
    /// (never silently reset: that could fulfil a request twice or skip one).
    pub fn open(
        path: &Path,
        chain_id: u64,
        relay: Address,
        start_block: u64,
    ) -> Result<Self, RelayerError> {
        let state_error = |reason: String| RelayerError::State {
            path: path.to_path_buf(),
            reason,
        };
        let file = match fs::read(path) {
            Ok(bytes) => {
                let file: StateFile = serde_json::from_slice(&bytes)
                    .map_err(|error| state_error(format!("not a relayer state file: {error}")))?;
                if file.version != STATE_VERSION {
                    return Err(state_error(format!(
                        "version {} is not the supported {STATE_VERSION}",
                        file.version
                    )));
                }
                if file.chain_id != chain_id || file.relay != relay {
                    return Err(state_error(format!(
                        "it belongs to relay {} on chain {}, not relay {relay} on chain {chain_id}; use another --state file",
                        file.relay, file.chain_id
                    )));
                }
                file
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => StateFile {
                version: STATE_VERSION,
                chain_id,
                relay,
                next_block: start_block,
                pending: BTreeMap::new(),
                finished: 0,
            },
            Err(error) => return Err(state_error(error.to_string())),
        };
        let state = Self {
            path: path.to_path_buf(),
            file,
        };
        state.save()?;
        Ok(state)
    }

    /// The first block not read yet.
    pub fn next_block(&self) -> u64 {
        self.file.next_block
    }

    /// Requests seen and not finished, oldest id first.
    pub fn pending(&self) -> impl Iterator<Item = &PendingJob> {
        self.file.pending.values()
    }

    /// How many requests were finished (fulfilled, or given up) since the state was created.
    pub fn finished_count(&self) -> u64 {
        self.file.finished
    }

    /// Records the requests found in blocks up to `last_block` and moves the cursor past it,
    /// in one save.
    ///
    /// # Errors
    /// [`RelayerError::State`] when the file cannot be written.
    pub fn record_blocks(&mut self, jobs: Vec<Job>, last_block: u64) -> Result<(), RelayerError> {
        for job in jobs {
            self.file
                .pending
                .entry(job.request_id)
                .or_insert(PendingJob {
                    job,
                    answer: None,
                    attempts: 0,
                });
        }
        self.file.next_block = self.file.next_block.max(last_block + 1);
        self.save()
    }

    /// Stores the enclave's answer to a pending request.
    ///
    /// # Errors
    /// [`RelayerError::State`] when the file cannot be written.
    pub fn record_answer(
        &mut self,
        request_id: B256,
        answer: SignedAnswer,
    ) -> Result<(), RelayerError> {
        if let Some(pending) = self.file.pending.get_mut(&request_id) {
            pending.answer = Some(answer);
        }
        self.save()
    }

    /// Counts a failed attempt on a pending request; returns the attempts so far.
    ///
    /// # Errors
    /// [`RelayerError::State`] when the file cannot be written.
    pub fn record_failure(&mut self, request_id: B256) -> Result<u32, RelayerError> {
        let attempts = match self.file.pending.get_mut(&request_id) {
            Some(pending) => {
                pending.attempts = pending.attempts.saturating_add(1);
                pending.attempts
            }
            None => 0,
        };
        self.save()?;
        Ok(attempts)
    }

    /// Removes a request that needs nothing more from this relayer.
    ///
    /// # Errors
    /// [`RelayerError::State`] when the file cannot be written.
    pub fn finish(&mut self, request_id: B256) -> Result<(), RelayerError> {
        if self.file.pending.remove(&request_id).is_some() {
            self.file.finished += 1;
        }
        self.save()
    }

    fn save(&self) -> Result<(), RelayerError> {
        let state_error = |reason: String| RelayerError::State {
            path: self.path.clone(),
            reason,
        };
        let bytes = serde_json::to_vec_pretty(&self.file)
            .map_err(|error| state_error(error.to_string()))?;
        let temporary = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&temporary, &self.path)?;
            // The rename itself must survive a crash too.
            if let Some(directory) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::File::open(directory)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|error| state_error(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u8, block: u64) -> Job {
        Job {
            request_id: B256::with_last_byte(id),
            model_hash: B256::repeat_byte(0xb1),
            input: Bytes::from_static(b"What is the capital of France?"),
            params: Bytes::from_static(b"{\"max_tokens\":16}"),
            deadline: 2_000_000_000,
            fee_wei: "1000".into(),
            block,
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("relayer-state-{}-{name}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        dir.join("state.json")
    }

    #[test]
    fn survives_a_restart_with_cursor_pending_and_answers() {
        let path = temp_path("restart");
        let relay = Address::repeat_byte(0x11);
        let mut state = RelayerState::open(&path, 31337, relay, 5).expect("new state");
        assert_eq!(state.next_block(), 5);
        state
            .record_blocks(vec![job(1, 6), job(2, 7)], 9)
            .expect("record");
        let answer = SignedAnswer {
            output: Bytes::from_static(b"Paris."),
            signature: Bytes::from(vec![7u8; 65]),
            enclave: Address::repeat_byte(0x22),
        };
        state
            .record_answer(B256::with_last_byte(1), answer.clone())
            .expect("answer");
        state.finish(B256::with_last_byte(2)).expect("finish");
        drop(state);

        let reopened = RelayerState::open(&path, 31337, relay, 0).expect("reopen");
        assert_eq!(reopened.next_block(), 10);
        assert_eq!(reopened.finished_count(), 1);
        let pending: Vec<_> = reopened.pending().collect();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].job, job(1, 6));
        assert_eq!(pending[0].answer.as_ref(), Some(&answer));
        let _ = fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn refuses_a_state_file_of_another_relay_or_chain() {
        let path = temp_path("other");
        let relay = Address::repeat_byte(0x11);
        RelayerState::open(&path, 31337, relay, 0).expect("new state");
        for (chain, other_relay) in [(1, relay), (31337, Address::repeat_byte(0x12))] {
            let error = RelayerState::open(&path, chain, other_relay, 0).expect_err("refused");
            assert!(error.to_string().contains("belongs to relay"), "{error}");
        }
        fs::write(&path, b"{not json").expect("corrupt");
        let error = RelayerState::open(&path, 31337, relay, 0).expect_err("refused");
        assert!(
            error.to_string().contains("not a relayer state file"),
            "{error}"
        );
        let _ = fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn the_cursor_never_moves_back() {
        let path = temp_path("cursor");
        let mut state =
            RelayerState::open(&path, 1, Address::repeat_byte(1), 100).expect("new state");
        state.record_blocks(Vec::new(), 50).expect("record");
        assert_eq!(state.next_block(), 100);
        let _ = fs::remove_dir_all(path.parent().expect("dir"));
    }
}
