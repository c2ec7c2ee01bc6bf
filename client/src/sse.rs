//! The server-sent events of an attested stream (docs/protocol.md §4a), decoded strictly and
//! incrementally: every event is one `data:` line and its signature fields, then a blank line.

use crate::headers::{
    HeaderError, RESPONSE_DOCUMENT, SIGNATURE, TIMESTAMP_MS, parse_base64, parse_signature,
    parse_timestamp,
};

/// The largest event accepted (an event is one completion chunk: a few hundred bytes).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// One signed event as it travelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    /// `chunk_i`: the exact bytes after `data: ` up to the line feed.
    pub data: Vec<u8>,
    /// The receipt timestamp of this prefix of the stream.
    pub timestamp_ms: u64,
    /// The receipt signature `r || s || v` over this prefix.
    pub signature: Vec<u8>,
    /// The per-response document (only on `[DONE]`, only when the request asked for one).
    pub response_document: Option<Vec<u8>>,
}

impl SignedEvent {
    /// Whether this is the final `[DONE]` event.
    pub fn is_done(&self) -> bool {
        self.data == b"[DONE]"
    }
}

/// The event stream does not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// An event grew beyond [`MAX_EVENT_BYTES`].
    #[error("a stream event exceeds {MAX_EVENT_BYTES} bytes")]
    EventTooLarge,
    /// A line is not `name: value`.
    #[error("stream event {event}: line {line:?} is not an SSE field")]
    MalformedLine {
        /// 1-based event index.
        event: u64,
        /// The line (lossy UTF-8, truncated).
        line: String,
    },
    /// A field other than the protocol's.
    #[error("stream event {event}: unexpected field {name:?}")]
    UnexpectedField {
        /// 1-based event index.
        event: u64,
        /// The field name.
        name: String,
    },
    /// A field appears twice in one event.
    #[error("stream event {event}: field {name} appears twice")]
    DuplicateField {
        /// 1-based event index.
        event: u64,
        /// The field name.
        name: &'static str,
    },
    /// A required field is missing.
    #[error("stream event {event} has no {name} field")]
    MissingField {
        /// 1-based event index.
        event: u64,
        /// The field name.
        name: &'static str,
    },
    /// A field's value is malformed.
    #[error("stream event {event}: {source}")]
    Field {
        /// 1-based event index.
        event: u64,
        /// What is wrong.
        source: HeaderError,
    },
}

/// Splits a byte stream into [`SignedEvent`]s.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: Vec<u8>,
    events: u64,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Whether bytes of an unfinished event are buffered.
    pub fn has_partial_event(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// The next complete event, if one is buffered.
    ///
    /// # Errors
    /// [`SseError`] for an event that breaks the format.
    pub fn next_event(&mut self) -> Result<Option<SignedEvent>, SseError> {
        let Some(end) = find_event_end(&self.buffer) else {
            if self.buffer.len() > MAX_EVENT_BYTES {
                return Err(SseError::EventTooLarge);
            }
            return Ok(None);
        };
        if end > MAX_EVENT_BYTES {
            return Err(SseError::EventTooLarge);
        }
        let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
        self.events += 1;
        parse_event(&block[..end], self.events).map(Some)
    }
}

/// Stores a field's value; a second occurrence is an error.
fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    event: u64,
    name: &'static str,
) -> Result<(), SseError> {
    if slot.replace(value).is_some() {
        return Err(SseError::DuplicateField { event, name });
    }
    Ok(())
}

/// Index of the first `\n\n` (the blank line that ends an event).
fn find_event_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(2).position(|pair| pair == b"\n\n")
}

fn parse_event(block: &[u8], event: u64) -> Result<SignedEvent, SseError> {
    let mut data = None;
    let mut timestamp = None;
    let mut signature = None;
    let mut response_document = None;
    for line in block.split(|byte| *byte == b'\n') {
        let malformed = || SseError::MalformedLine {
            event,
            line: String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned(),
        };
        let colon = line
            .iter()
            .position(|byte| *byte == b':')
            .ok_or_else(malformed)?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").ok_or_else(malformed)?;
        let field_error = |source| SseError::Field { event, source };
        let text = || {
            std::str::from_utf8(value).map_err(|_| {
                field_error(HeaderError::Malformed {
                    name: "field",
                    reason: "not UTF-8".to_owned(),
                })
            })
        };
        match name {
            b"data" => set_once(&mut data, value.to_vec(), event, "data")?,
            name if name == TIMESTAMP_MS.as_bytes() => set_once(
                &mut timestamp,
                parse_timestamp(TIMESTAMP_MS, text()?).map_err(field_error)?,
                event,
                TIMESTAMP_MS,
            )?,
            name if name == SIGNATURE.as_bytes() => set_once(
                &mut signature,
                parse_signature(SIGNATURE, text()?).map_err(field_error)?,
                event,
                SIGNATURE,
            )?,
            name if name == RESPONSE_DOCUMENT.as_bytes() => set_once(
                &mut response_document,
                parse_base64(RESPONSE_DOCUMENT, text()?).map_err(field_error)?,
                event,
                RESPONSE_DOCUMENT,
            )?,
            other => {
                return Err(SseError::UnexpectedField {
                    event,
                    name: String::from_utf8_lossy(other).into_owned(),
                });
            }
        }
    }
    let missing = |name| SseError::MissingField { event, name };
    Ok(SignedEvent {
        data: data.ok_or_else(|| missing("data"))?,
        timestamp_ms: timestamp.ok_or_else(|| missing(TIMESTAMP_MS))?,
        signature: signature.ok_or_else(|| missing(SIGNATURE))?,
        response_document,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature_hex() -> String {
        format!("0x{}1b", "44".repeat(64))
    }

    fn event(data: &str) -> String {
        format!(
            "data: {data}\nx-attested-timestamp-ms: 12\nx-attested-signature: {}\n\n",
            signature_hex()
        )
    }

    #[test]
    fn decodes_events_split_anywhere() {
        let stream = format!("{}{}", event(r#"{"a":"b: c"}"#), event("[DONE]"));
        for split in 0..stream.len() {
            let mut decoder = SseDecoder::new();
            let mut events = Vec::new();
            for part in [&stream.as_bytes()[..split], &stream.as_bytes()[split..]] {
                decoder.push(part);
                while let Some(event) = decoder.next_event().unwrap() {
                    events.push(event);
                }
            }
            assert_eq!(events.len(), 2);
            assert_eq!(events[0].data, br#"{"a":"b: c"}"#);
            assert_eq!(events[0].timestamp_ms, 12);
            assert!(!events[0].is_done());
            assert!(events[1].is_done());
            assert!(!decoder.has_partial_event());
        }
    }

    #[test]
    fn keeps_the_exact_data_bytes() {
        let mut decoder = SseDecoder::new();
        decoder.push(event("  spaced  ").as_bytes());
        assert_eq!(decoder.next_event().unwrap().unwrap().data, b"  spaced  ");
    }

    #[test]
    fn rejects_malformed_events() {
        let sig = signature_hex();
        let cases = [
            "data: x\nx-attested-timestamp-ms: 1\n\n".to_owned(),
            format!("x-attested-timestamp-ms: 1\nx-attested-signature: {sig}\n\n"),
            format!(
                "data: x\ndata: y\nx-attested-timestamp-ms: 1\nx-attested-signature: {sig}\n\n"
            ),
            format!("data: x\nid: 3\nx-attested-timestamp-ms: 1\nx-attested-signature: {sig}\n\n"),
            format!("data:x\nx-attested-timestamp-ms: 1\nx-attested-signature: {sig}\n\n"),
            format!(
                ": comment\ndata: x\nx-attested-timestamp-ms: 1\nx-attested-signature: {sig}\n\n"
            ),
            format!("data: x\nx-attested-timestamp-ms: 01\nx-attested-signature: {sig}\n\n"),
            "data: x\nx-attested-timestamp-ms: 1\nx-attested-signature: 0x00\n\n".to_owned(),
        ];
        for case in cases {
            let mut decoder = SseDecoder::new();
            decoder.push(case.as_bytes());
            assert!(decoder.next_event().is_err(), "{case:?}");
        }
    }

    #[test]
    fn bounds_event_size() {
        let mut decoder = SseDecoder::new();
        decoder.push(&vec![b'a'; MAX_EVENT_BYTES + 1]);
        assert_eq!(decoder.next_event(), Err(SseError::EventTooLarge));
    }
}
