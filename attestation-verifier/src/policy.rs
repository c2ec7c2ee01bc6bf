//! What a verified document must additionally say for the caller to accept it.

use std::time::Duration;

/// Acceptance policy applied after the document's authenticity is established.
///
/// The default policy accepts any genuine, non-debug document whose timestamp is not in the
/// future (beyond [`Policy::DEFAULT_CLOCK_SKEW`]); each builder method adds a requirement.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) expected_pcrs: Vec<(u8, Vec<u8>)>,
    pub(crate) allow_debug: bool,
    pub(crate) expected_nonce: Option<Vec<u8>>,
    pub(crate) max_age: Option<Duration>,
    pub(crate) expected_user_data: Option<Vec<u8>>,
    pub(crate) expected_public_key: Option<Vec<u8>>,
    pub(crate) clock_skew: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self::new()
    }
}

impl Policy {
    /// How far a document's timestamp may lie after the verification time, for clocks that
    /// disagree slightly between enclave and verifier.
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

    /// No expectations beyond authenticity; debug-mode documents rejected.
    pub fn new() -> Self {
        Self {
            expected_pcrs: Vec::new(),
            allow_debug: false,
            expected_nonce: None,
            max_age: None,
            expected_user_data: None,
            expected_public_key: None,
            clock_skew: Self::DEFAULT_CLOCK_SKEW,
        }
    }

    /// Requires PCR `index` to equal `value` (any subset of PCRs may be given; a later value
    /// for the same index replaces an earlier one).
    #[must_use]
    pub fn expect_pcr(mut self, index: u8, value: impl Into<Vec<u8>>) -> Self {
        self.expected_pcrs
            .retain(|(existing, _)| *existing != index);
        self.expected_pcrs.push((index, value.into()));
        self
    }

    /// Accepts debug-mode enclaves (PCR0, 1 and 2 all zero), whose memory the host can read.
    /// Only for development.
    #[must_use]
    pub fn allow_debug_mode(mut self) -> Self {
        self.allow_debug = true;
        self
    }

    /// Requires the document's `nonce` to equal `nonce` (a fresh challenge proves freshness).
    #[must_use]
    pub fn expect_nonce(mut self, nonce: impl Into<Vec<u8>>) -> Self {
        self.expected_nonce = Some(nonce.into());
        self
    }

    /// Rejects documents older than `max_age` at the verification time.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Requires `user_data` to equal `user_data`.
    #[must_use]
    pub fn expect_user_data(mut self, user_data: impl Into<Vec<u8>>) -> Self {
        self.expected_user_data = Some(user_data.into());
        self
    }

    /// Requires `public_key` to equal `public_key`.
    #[must_use]
    pub fn expect_public_key(mut self, public_key: impl Into<Vec<u8>>) -> Self {
        self.expected_public_key = Some(public_key.into());
        self
    }

    /// Replaces [`Policy::DEFAULT_CLOCK_SKEW`].
    #[must_use]
    pub fn max_clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }
}
