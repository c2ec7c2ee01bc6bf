//! Serving many requests at once: a worker thread owns the running sequences and advances
//! all of them in each batched forward pass, so concurrent users share the CPU fairly
//! (every running sequence gets one token, or one prompt chunk, per step).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::generate::{self, ActiveSequence, CancelToken, GenerationOutput, GenerationRequest};

/// Limits of the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Sequences advanced together in one forward pass.
    pub max_batch: usize,
    /// Requests accepted (running plus waiting) before `submit` answers `QueueFull`.
    pub max_pending: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            max_batch: 8,
            max_pending: 64,
        }
    }
}

/// What a request's owner receives.
#[derive(Debug)]
#[non_exhaustive]
pub enum GenerationEvent {
    /// New text.
    Delta(String),
    /// The generation ended; the last event.
    Finished(GenerationOutput),
    /// The forward pass failed; the last event.
    Failed(Arc<EngineError>),
}

/// The caller's side of a submitted request. Dropping it cancels the request.
#[derive(Debug)]
pub struct RequestHandle {
    events: mpsc::Receiver<GenerationEvent>,
    cancel: CancelToken,
    prompt_tokens: usize,
}

impl RequestHandle {
    /// The next event; `None` once the scheduler has gone away.
    pub fn recv(&self) -> Option<GenerationEvent> {
        self.events.recv().ok()
    }

    /// The event channel, for select-style use.
    pub fn events(&self) -> &mpsc::Receiver<GenerationEvent> {
        &self.events
    }

    /// Asks the scheduler to stop this request at its next step.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Prompt tokens of the request (known at submission).
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }

    /// Waits for the end, discarding deltas.
    pub fn wait(self) -> Result<GenerationOutput> {
        loop {
            match self.events.recv() {
                Ok(GenerationEvent::Delta(_)) => {}
                Ok(GenerationEvent::Finished(output)) => return Ok(output),
                Ok(GenerationEvent::Failed(error)) => {
                    return Err(EngineError::BatchFailed(error.to_string()));
                }
                Err(_) => return Err(EngineError::SchedulerStopped),
            }
        }
    }
}

impl Drop for RequestHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct Submission {
    sequence: ActiveSequence,
    events: mpsc::Sender<GenerationEvent>,
}

/// Runs generations for many callers on one worker thread.
#[derive(Debug)]
pub struct Scheduler {
    engine: Arc<Engine>,
    config: SchedulerConfig,
    submissions: Option<mpsc::Sender<Submission>>,
    pending: Arc<AtomicUsize>,
    worker: Option<JoinHandle<()>>,
}

impl Scheduler {
    /// Starts the worker thread.
    pub fn start(engine: Arc<Engine>, config: SchedulerConfig) -> Result<Self> {
        if config.max_batch == 0 || config.max_pending == 0 {
            return Err(EngineError::InvalidParameter {
                name: "scheduler",
                reason: "max_batch and max_pending must be at least 1".to_owned(),
            });
        }
        let (sender, receiver) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let worker_engine = Arc::clone(&engine);
        let worker_pending = Arc::clone(&pending);
        let worker = std::thread::Builder::new()
            .name("engine-scheduler".to_owned())
            .spawn(move || run(&worker_engine, config, &receiver, &worker_pending))
            .map_err(|error| EngineError::ThreadPool {
                threads: 1,
                reason: error.to_string(),
            })?;
        Ok(Self {
            engine,
            config,
            submissions: Some(sender),
            pending,
            worker: Some(worker),
        })
    }

    /// The engine this scheduler runs.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Validates and queues a request. Errors that concern the request itself (prompt too
    /// long, bad parameters) are returned here, before any work.
    pub fn submit(&self, request: GenerationRequest) -> Result<RequestHandle> {
        generate::validate_params(&request.params)?;
        // Reserve the slot before the (slow) tokenisation, atomically: checking first and
        // counting after would let simultaneous submits all pass the bound.
        let limit = self.config.max_pending;
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < limit).then_some(waiting + 1)
            })
            .map_err(|waiting| EngineError::QueueFull { waiting, limit })?;
        let accepted = self.enqueue(request);
        if accepted.is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
        accepted
    }

    /// Builds the sequence and hands it to the worker (the slot is already reserved).
    fn enqueue(&self, request: GenerationRequest) -> Result<RequestHandle> {
        let (events, receiver) = mpsc::channel();
        let cancel = CancelToken::new();
        let delta_events = events.clone();
        let sink = move |text: &str| {
            delta_events
                .send(GenerationEvent::Delta(text.to_owned()))
                .is_ok()
        };
        let sequence = ActiveSequence::new(&self.engine, request, Box::new(sink), cancel.clone())?;
        let prompt_tokens = sequence.prompt_tokens();
        self.submissions
            .as_ref()
            .ok_or(EngineError::SchedulerStopped)?
            .send(Submission { sequence, events })
            .map_err(|_| EngineError::SchedulerStopped)?;
        Ok(RequestHandle {
            events: receiver,
            cancel,
            prompt_tokens,
        })
    }

    /// Requests accepted and not yet finished.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Closing the channel lets the worker finish the running requests and exit.
        self.submissions = None;
        if let Some(worker) = self.worker.take()
            && worker.join().is_err()
        {
            tracing::error!("the scheduler worker panicked");
        }
    }
}

fn run(
    engine: &Engine,
    config: SchedulerConfig,
    submissions: &mpsc::Receiver<Submission>,
    pending: &AtomicUsize,
) {
    let mut waiting: VecDeque<Submission> = VecDeque::new();
    let mut sequences: Vec<ActiveSequence> = Vec::new();
    let mut senders: Vec<mpsc::Sender<GenerationEvent>> = Vec::new();
    let mut open = true;
    loop {
        if sequences.is_empty() && waiting.is_empty() {
            if !open {
                return;
            }
            match submissions.recv() {
                Ok(submission) => waiting.push_back(submission),
                Err(_) => return,
            }
        }
        loop {
            match submissions.try_recv() {
                Ok(submission) => waiting.push_back(submission),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        // First come, first admitted.
        while sequences.len() < config.max_batch
            && let Some(submission) = waiting.pop_front()
        {
            sequences.push(submission.sequence);
            senders.push(submission.events);
        }
        if let Err(error) = generate::step(engine, &mut sequences) {
            let error = Arc::new(error);
            tracing::error!(%error, "batched forward pass failed");
            pending.fetch_sub(sequences.len(), Ordering::AcqRel);
            for sender in senders.drain(..) {
                // A closed receiver means the caller left; nothing to tell.
                let _ = sender.send(GenerationEvent::Failed(Arc::clone(&error)));
            }
            sequences.clear();
            continue;
        }
        let mut index = 0;
        while index < sequences.len() {
            if sequences[index].is_finished() {
                let sequence = sequences.swap_remove(index);
                let sender = senders.swap_remove(index);
                // Counted out before the caller hears of the end, so `pending` never lags.
                pending.fetch_sub(1, Ordering::AcqRel);
                let _ = sender.send(GenerationEvent::Finished(sequence.output()));
            } else {
                index += 1;
            }
        }
    }
}
