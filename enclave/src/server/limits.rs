//! Limits on what an unauthenticated client can make the enclave spend beyond generations
//! (which the bounded queue limits): fresh attestation documents, each a signature by the
//! attester (docs/threat-model.md, "Denial of service").

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: `capacity` tokens, refilled continuously at `per_second`.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilled over `period`.
    pub(crate) fn new(capacity: u32, period: Duration, now: Instant) -> Self {
        let capacity = f64::from(capacity.max(1));
        Self {
            capacity,
            per_second: capacity / period.as_secs_f64(),
            tokens: capacity,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
    }

    /// Takes one token, or says how long until one is there.
    pub(crate) fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }

    /// Gives back a token taken by [`TokenBucket::take`] (its request was refused elsewhere).
    pub(crate) fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.capacity);
    }
}

/// The per-connection bucket of fresh documents, shared by the streams of one connection.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    attestations: Mutex<TokenBucket>,
}

impl ConnectionLimits {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            attestations: Mutex::new(TokenBucket::new(
                per_minute,
                Duration::from_secs(60),
                Instant::now(),
            )),
        }
    }
}

/// Admits one fresh document for a connection: its own bucket first, then the global one.
/// A refusal says when to retry, in whole seconds (`Retry-After`), and which limit it was.
pub(crate) fn admit_attestation(
    connection: &ConnectionLimits,
    global: &Mutex<TokenBucket>,
) -> Result<(), (u32, &'static str)> {
    let now = Instant::now();
    let mut own = lock(&connection.attestations);
    own.take(now)
        .map_err(|wait| (retry_after(wait), "connection"))?;
    if let Err(wait) = lock(global).take(now) {
        own.give_back();
        return Err((retry_after(wait), "enclave"));
    }
    Ok(())
}

/// Locks a bucket; a poisoned bucket is still a bucket (its counts stay meaningful).
fn lock(bucket: &Mutex<TokenBucket>) -> std::sync::MutexGuard<'_, TokenBucket> {
    bucket
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn retry_after(wait: Duration) -> u32 {
    (wait.as_secs_f64().ceil() as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, Duration::from_secs(60), start);
        for _ in 0..3 {
            bucket.take(start).expect("within the burst");
        }
        let wait = bucket.take(start).expect_err("empty");
        assert!((wait.as_secs_f64() - 20.0).abs() < 0.01, "{wait:?}");
        assert!(bucket.take(start + Duration::from_secs(19)).is_err());
        bucket
            .take(start + Duration::from_secs(21))
            .expect("refilled one token");
        // Never more than the capacity, however long it rested.
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            bucket.take(later).expect("full again");
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn a_connection_over_its_limit_spends_nothing_of_the_global_one() {
        let connection = ConnectionLimits::new(2);
        let global = Mutex::new(TokenBucket::new(3, Duration::from_secs(1), Instant::now()));
        admit_attestation(&connection, &global).expect("1");
        admit_attestation(&connection, &global).expect("2");
        let (seconds, which) = admit_attestation(&connection, &global).expect_err("3");
        assert_eq!(which, "connection");
        assert!((1..=30).contains(&seconds), "{seconds}");
        // The global bucket still has its third token for another connection.
        admit_attestation(&ConnectionLimits::new(2), &global).expect("another connection");
        let other = ConnectionLimits::new(2);
        let (seconds, which) = admit_attestation(&other, &global).expect_err("global");
        assert_eq!((seconds, which), (1, "enclave"));
        // Refused by the global limit, the connection kept its own token.
        let own = other.attestations.lock().expect("lock");
        assert!(own.tokens >= 1.9, "{}", own.tokens);
    }
}
