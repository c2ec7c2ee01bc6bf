//! The forward pass's threads: a small persistent pool built for many short parallel regions.
//!
//! One decoded token runs about five parallel regions per layer (fused Q/K/V, attention, the
//! attention output, fused gate/up, down), each only microseconds long, so the cost of
//! starting a region matters as much as the kernels. Workers spin briefly after each region
//! (the next one usually follows within microseconds) and then sleep on a condition variable,
//! so an idle engine uses no CPU. The calling thread takes part in every region and never
//! waits for a worker that has not joined it: tasks are claimed dynamically, so on a loaded
//! machine where a worker is descheduled the caller simply does the work itself.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps: longer than the sequential steps between
/// two regions of a forward pass (norms, sampling), short enough not to burn a core when idle.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(500);

/// Spins between two yields of the processor while waiting: a waiting thread must not keep
/// a core from the thread it waits for when the machine is oversubscribed.
const SPINS_PER_YIELD: u32 = 64;

/// A region's body, with its lifetime erased so that workers can reach it.
type Job = dyn Fn() + Sync + 'static;

/// A pointer to the current region's body.
#[derive(Clone, Copy)]
struct JobRef(*const Job);

// SAFETY: a `JobRef` points at a `Sync` closure, so calling it from other threads is allowed;
// `WorkerPool::run` keeps the closure alive while any worker may call it.
unsafe impl Send for JobRef {}

/// Set in `state` when the current region accepts no more workers.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// State shared by the dispatcher and the workers.
struct Shared {
    /// Incremented for every region; workers wake up when they see it change.
    epoch: AtomicU64,
    /// The open region's body; written only while the region is closed and empty.
    job: Mutex<Option<JobRef>>,
    /// [`CLOSED`] plus the number of workers inside (or checking in to) the region's body.
    state: AtomicUsize,
    /// Workers sleeping (or about to) on `wake`.
    sleepers: AtomicUsize,
    wake_lock: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
    /// A worker's part of the current region panicked.
    panicked: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The protected data stays consistent across panics (plain copies), so poisoning is moot.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Spins, yielding the processor now and then, until `done()`.
fn spin_until(mut done: impl FnMut() -> bool) {
    let mut spins = 0u32;
    while !done() {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(SPINS_PER_YIELD) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// A fixed set of threads running parallel regions for one caller at a time.
pub(crate) struct WorkerPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serializes regions from concurrent callers.
    dispatch: Mutex<()>,
    threads: usize,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl WorkerPool {
    /// A pool of `threads` threads in all: the caller plus `threads - 1` workers.
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: Mutex::new(None),
            state: AtomicUsize::new(CLOSED),
            sleepers: AtomicUsize::new(0),
            wake_lock: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
        });
        let mut pool = Self {
            shared: Arc::clone(&shared),
            workers: Vec::with_capacity(threads - 1),
            dispatch: Mutex::new(()),
            threads,
        };
        for index in 1..threads {
            let shared = Arc::clone(&shared);
            // On failure, dropping `pool` stops the workers started so far.
            let handle = std::thread::Builder::new()
                .name(format!("engine-{index}"))
                .spawn(move || worker_loop(&shared))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Runs `job` on the calling thread and on every worker that joins while the caller's
    /// own call runs (zero or more); returns once every call has finished. A panic in any
    /// call is re-raised here.
    fn run(&self, job: &(dyn Fn() + Sync)) {
        let _one_region_at_a_time = lock(&self.dispatch);
        let shared = &*self.shared;
        // SAFETY: only the lifetime is erased (same fat-pointer layout). Workers call the job
        // only after checking in to the open region, and this function does not return or
        // unwind before the region is closed and every checked-in worker has left
        // (`CloseAndDrain` does so in its destructor), so the closure outlives every use.
        let erased =
            unsafe { std::mem::transmute::<*const (dyn Fn() + Sync + '_), *const Job>(job) };
        *lock(&shared.job) = Some(JobRef(erased));
        shared.panicked.store(false, Ordering::Relaxed);
        // Open the region once late workers of the previous one have backed out.
        spin_until(|| {
            shared
                .state
                .compare_exchange_weak(CLOSED, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        shared.epoch.fetch_add(1, Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = lock(&shared.wake_lock);
            shared.wake.notify_all();
        }
        let drain = CloseAndDrain(shared);
        job();
        drop(drain);
        *lock(&shared.job) = None;
        if shared.panicked.swap(false, Ordering::SeqCst) {
            panic!("a forward-pass worker thread panicked");
        }
    }

    /// Calls `task(i)` for every `i` in `0..tasks`, spread over the pool's threads as they
    /// become free.
    pub(crate) fn for_each_task(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        if self.threads == 1 || tasks <= 1 {
            (0..tasks).for_each(task);
            return;
        }
        let next = AtomicUsize::new(0);
        self.run(&|| {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= tasks {
                    break;
                }
                task(i);
            }
        });
    }
}

/// Closes the region and waits until every worker that checked in has left it.
struct CloseAndDrain<'a>(&'a Shared);

impl Drop for CloseAndDrain<'_> {
    fn drop(&mut self) {
        self.0.state.fetch_or(CLOSED, Ordering::AcqRel);
        spin_until(|| self.0.state.load(Ordering::Acquire) == CLOSED);
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        {
            let _guard = lock(&self.shared.wake_lock);
            self.shared.wake.notify_all();
        }
        for worker in self.workers.drain(..) {
            // A worker that panicked outside a job has nothing left to clean up.
            let _ = worker.join();
        }
    }
}

fn worker_loop(shared: &Shared) {
    let mut seen = 0u64;
    while let Some(epoch) = wait_for_region(shared, seen) {
        seen = epoch;
        // Check in; a closed region (its work already done) is left alone.
        if shared.state.fetch_add(1, Ordering::AcqRel) & CLOSED == 0 {
            let job = *lock(&shared.job);
            if let Some(JobRef(job)) = job {
                // SAFETY: the region is open and this worker is checked in, so the
                // dispatcher keeps the job alive until this worker checks out below.
                let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() }));
                if result.is_err() {
                    shared.panicked.store(true, Ordering::SeqCst);
                }
            }
        }
        shared.state.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Returns the new epoch once a region after `seen` starts, or `None` on shutdown.
fn wait_for_region(shared: &Shared, seen: u64) -> Option<u64> {
    let mut spin_started = Instant::now();
    let mut spins = 0u32;
    loop {
        let epoch = shared.epoch.load(Ordering::Acquire);
        if epoch != seen {
            return Some(epoch);
        }
        if shared.shutdown.load(Ordering::Acquire) {
            return None;
        }
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(SPINS_PER_YIELD) {
            std::hint::spin_loop();
            continue;
        }
        if spin_started.elapsed() < SPIN_BEFORE_SLEEP {
            std::thread::yield_now();
            continue;
        }
        shared.sleepers.fetch_add(1, Ordering::SeqCst);
        {
            let mut guard = lock(&shared.wake_lock);
            // The dispatcher bumps the epoch before it reads `sleepers`, so either it sees
            // this sleeper and notifies under the lock, or this check sees the new epoch.
            while shared.epoch.load(Ordering::SeqCst) == seen
                && !shared.shutdown.load(Ordering::SeqCst)
            {
                guard = shared
                    .wake
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        shared.sleepers.fetch_sub(1, Ordering::SeqCst);
        spin_started = Instant::now();
    }
}

/// A mutable slice cut into fixed-size pieces that parallel tasks claim by index; each piece
/// can be claimed once, so two tasks never hold the same elements.
pub(crate) struct DisjointChunks<'a, T> {
    ptr: *mut T,
    len: usize,
    chunk: usize,
    claimed: Vec<AtomicBool>,
    _slice: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: the pieces handed out are disjoint (enforced by `claimed`), so sharing the
// splitter across threads is like sending distinct `&mut [T]` to them, which needs `T: Send`.
unsafe impl<T: Send> Sync for DisjointChunks<'_, T> {}

impl<T> std::fmt::Debug for DisjointChunks<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisjointChunks")
            .field("len", &self.len)
            .field("chunk", &self.chunk)
            .finish()
    }
}

impl<'a, T> DisjointChunks<'a, T> {
    /// Cuts `slice` into pieces of `chunk` elements (the last may be shorter).
    pub(crate) fn new(slice: &'a mut [T], chunk: usize) -> Self {
        let chunk = chunk.max(1);
        let pieces = slice.len().div_ceil(chunk);
        Self {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            chunk,
            claimed: (0..pieces).map(|_| AtomicBool::new(false)).collect(),
            _slice: std::marker::PhantomData,
        }
    }

    /// Piece `index`; panics if it was already claimed or does not exist.
    #[allow(clippy::mut_from_ref)] // Disjointness is checked at run time through `claimed`.
    pub(crate) fn claim(&self, index: usize) -> &'a mut [T] {
        assert!(
            !self.claimed[index].swap(true, Ordering::AcqRel),
            "piece {index} claimed twice"
        );
        let start = index * self.chunk;
        let len = self.chunk.min(self.len - start);
        // SAFETY: `start + len <= self.len` lies within the borrowed slice, which outlives
        // 'a; the `claimed` flag guarantees this range is handed out only once.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_exactly_once_on_several_threads() {
        let pool = WorkerPool::new(3).expect("threads start");
        for tasks in [0usize, 1, 2, 7, 100] {
            let counts: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            pool.for_each_task(tasks, &|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn sleeping_workers_wake_up_for_a_region() {
        let pool = WorkerPool::new(2).expect("threads start");
        for round in 0..3 {
            // Long enough for the worker to stop spinning and sleep.
            std::thread::sleep(SPIN_BEFORE_SLEEP * 4);
            // Each of the two tasks waits for the other to start: only two threads running
            // at once finish them (the caller alone would time out).
            let started = AtomicUsize::new(0);
            let deadline = Instant::now() + Duration::from_secs(10);
            pool.for_each_task(2, &|_| {
                started.fetch_add(1, Ordering::SeqCst);
                while started.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
                    std::hint::spin_loop();
                }
            });
            assert_eq!(started.load(Ordering::SeqCst), 2, "round {round}");
            assert!(
                Instant::now() < deadline,
                "round {round}: the worker never joined"
            );
        }
    }

    #[test]
    fn disjoint_chunks_cover_the_slice_and_refuse_a_second_claim() {
        let mut data = vec![0u32; 10];
        let pool = WorkerPool::new(2).expect("threads start");
        {
            let pieces = DisjointChunks::new(&mut data, 4);
            pool.for_each_task(3, &|i| {
                for v in pieces.claim(i).iter_mut() {
                    *v = i as u32 + 1;
                }
            });
            let again = catch_unwind(AssertUnwindSafe(|| pieces.claim(1).len()));
            assert!(again.is_err());
        }
        assert_eq!(data, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
    }

    #[test]
    fn a_panicking_task_is_reported_to_the_caller_and_the_pool_survives() {
        let pool = WorkerPool::new(2).expect("threads start");
        for failing in [0usize, 7] {
            let result = catch_unwind(AssertUnwindSafe(|| {
                pool.for_each_task(8, &|i| assert_ne!(i, failing, "task fails"));
            }));
            assert!(result.is_err(), "task {failing}");
        }
        let ran = AtomicUsize::new(0);
        pool.for_each_task(5, &|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 5);
    }
}
