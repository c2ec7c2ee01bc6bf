//! Turning generated token bytes into text deltas: never split a UTF-8 character, and never
//! emit any part of a stop sequence.

/// Accumulates token bytes and releases complete UTF-8 text.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns the text that is now complete. A character whose bytes are
    /// still arriving is kept back; bytes that can never be valid become U+FFFD.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    // The prefix was just validated.
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match error.error_len() {
                        // Incomplete character at the end: wait for more bytes.
                        None => {
                            rest = after;
                            break;
                        }
                        Some(invalid) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[invalid..];
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        text
    }

    /// Releases whatever is left at the end of generation (an unfinished character
    /// becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

/// Holds back text that might be the start of a stop sequence.
#[derive(Debug, Clone, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    pending: String,
}

/// What the matcher decided for newly arrived text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// Text that can be emitted now (possibly empty).
    Continue(String),
    /// A stop sequence was found: emit this text (before the stop) and finish.
    Stopped(String),
}

impl StopMatcher {
    /// A matcher for these stop sequences (empty ones are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
        }
    }

    /// Feeds new text.
    pub fn push(&mut self, text: &str) -> StopOutcome {
        self.pending.push_str(text);
        if self.stops.is_empty() {
            return StopOutcome::Continue(std::mem::take(&mut self.pending));
        }
        let earliest = self
            .stops
            .iter()
            .filter_map(|stop| self.pending.find(stop.as_str()))
            .min();
        if let Some(at) = earliest {
            let before = self.pending[..at].to_owned();
            self.pending.clear();
            return StopOutcome::Stopped(before);
        }
        // Keep the longest suffix that is a proper prefix of some stop sequence.
        let mut hold_from = self.pending.len();
        for (start, _) in self.pending.char_indices().rev() {
            let suffix = &self.pending[start..];
            if self.stops.iter().any(|stop| stop.starts_with(suffix)) {
                hold_from = start;
            }
            if self.pending.len() - start >= self.longest_stop() {
                break;
            }
        }
        let emitted = self.pending[..hold_from].to_owned();
        self.pending.drain(..hold_from);
        StopOutcome::Continue(emitted)
    }

    /// Releases held-back text when generation ends for another reason.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    fn longest_stop(&self) -> usize {
        self.stops.iter().map(String::len).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibyte_characters_are_never_split() {
        let mut stream = Utf8Stream::new();
        let bytes = "é€😀".as_bytes();
        let mut out = String::new();
        for byte in bytes {
            let delta = stream.push(std::slice::from_ref(byte));
            // Every delta is whole characters.
            assert!(delta.chars().all(|c| c != char::REPLACEMENT_CHARACTER));
            out.push_str(&delta);
        }
        assert_eq!(out, "é€😀");
        assert_eq!(stream.finish(), "");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut stream = Utf8Stream::new();
        assert_eq!(stream.push(&[b'a', 0xFF, b'b']), "a\u{FFFD}b");
        assert_eq!(stream.push(&[0xE2, 0x82]), "");
        assert_eq!(stream.finish(), "\u{FFFD}");
    }

    #[test]
    fn stop_sequences_spanning_deltas_are_caught_and_not_emitted() {
        let mut matcher = StopMatcher::new(&["\nUser:".to_owned()]);
        assert_eq!(
            matcher.push("Hello"),
            StopOutcome::Continue("Hello".to_owned())
        );
        assert_eq!(
            matcher.push(" there\nUs"),
            StopOutcome::Continue(" there".to_owned())
        );
        assert_eq!(matcher.push("er: hi"), StopOutcome::Stopped(String::new()));
    }

    #[test]
    fn held_back_text_is_released_when_it_stops_matching() {
        let mut matcher = StopMatcher::new(&["END".to_owned()]);
        assert_eq!(
            matcher.push("the EN"),
            StopOutcome::Continue("the ".to_owned())
        );
        assert_eq!(matcher.push("D"), StopOutcome::Stopped(String::new()));
        let mut matcher = StopMatcher::new(&["END".to_owned()]);
        assert_eq!(
            matcher.push("the EN"),
            StopOutcome::Continue("the ".to_owned())
        );
        assert_eq!(
            matcher.push("emy"),
            StopOutcome::Continue("ENemy".to_owned())
        );
        assert_eq!(matcher.push("E"), StopOutcome::Continue(String::new()));
        assert_eq!(matcher.finish(), "E");
    }
}
