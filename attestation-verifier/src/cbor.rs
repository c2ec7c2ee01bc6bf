//! A small strict CBOR reader for the attestation payload.
//!
//! Only what the payload uses is accepted: definite lengths, shortest-form heads (what the
//! NSM's encoder emits), no tags, no floats. Rejecting everything else keeps one byte sequence
//! per document and makes duplicate keys and trailing bytes explicit checks.

use crate::error::DocumentError;

/// CBOR major types used by the payload.
pub(crate) const MAJOR_UNSIGNED: u8 = 0;
pub(crate) const MAJOR_BYTES: u8 = 2;
pub(crate) const MAJOR_TEXT: u8 = 3;
pub(crate) const MAJOR_ARRAY: u8 = 4;
pub(crate) const MAJOR_MAP: u8 = 5;
pub(crate) const MAJOR_SIMPLE: u8 = 7;

/// The simple value `null` (major 7, additional information 22).
const SIMPLE_NULL: u64 = 22;

/// An item head: major type and its argument (a value or a length).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub(crate) major: u8,
    pub(crate) argument: u64,
    /// Offset of the head's first byte, for error messages.
    pub(crate) offset: usize,
}

#[derive(Debug)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input, position: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.position
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], DocumentError> {
        if count > self.remaining() {
            return Err(DocumentError::Truncated {
                offset: self.input.len(),
            });
        }
        let slice = &self.input[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }

    /// Reads one head, enforcing shortest-form arguments and definite lengths.
    pub(crate) fn head(&mut self) -> Result<Head, DocumentError> {
        let offset = self.position;
        let initial = self.take(1)?[0];
        let major = initial >> 5;
        let info = initial & 0x1f;
        let non_canonical = |reason| DocumentError::NonCanonicalCbor { offset, reason };
        let argument = match info {
            0..=23 => u64::from(info),
            24 => {
                let value = u64::from(self.take(1)?[0]);
                if value < 24 {
                    return Err(non_canonical("argument not in shortest form"));
                }
                value
            }
            25 => {
                let bytes = self.take(2)?;
                let value = u64::from(u16::from_be_bytes([bytes[0], bytes[1]]));
                if value <= 0xff {
                    return Err(non_canonical("argument not in shortest form"));
                }
                value
            }
            26 => {
                let bytes = self.take(4)?;
                let value = u64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
                if value <= 0xffff {
                    return Err(non_canonical("argument not in shortest form"));
                }
                value
            }
            27 => {
                let bytes = self.take(8)?;
                let mut array = [0u8; 8];
                array.copy_from_slice(bytes);
                let value = u64::from_be_bytes(array);
                if value <= 0xffff_ffff {
                    return Err(non_canonical("argument not in shortest form"));
                }
                value
            }
            28..=30 => return Err(non_canonical("reserved additional information")),
            _ => return Err(non_canonical("indefinite length")),
        };
        if major == MAJOR_SIMPLE && info > 23 {
            return Err(non_canonical(
                "floats and extended simple values are not used",
            ));
        }
        Ok(Head {
            major,
            argument,
            offset,
        })
    }

    /// Reads `length` content bytes of a string whose head was just read.
    pub(crate) fn string_body(&mut self, length: u64) -> Result<&'a [u8], DocumentError> {
        let length = usize::try_from(length).map_err(|_| DocumentError::Truncated {
            offset: self.input.len(),
        })?;
        self.take(length)
    }

    /// True (and consumes it) when the next item is `null`.
    pub(crate) fn take_null(&mut self) -> bool {
        if self.input.get(self.position) == Some(&(0xe0 | SIMPLE_NULL as u8)) {
            self.position += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_shortest_and_indefinite_heads() {
        for input in [&[0x18, 0x05][..], &[0x19, 0x00, 0x10], &[0x5f], &[0x1c]] {
            let error = Reader::new(input).head().unwrap_err();
            assert!(
                matches!(error, DocumentError::NonCanonicalCbor { .. }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn reads_shortest_heads() {
        let head = Reader::new(&[0x19, 0x01, 0x00]).head().unwrap();
        assert_eq!((head.major, head.argument), (MAJOR_UNSIGNED, 256));
        let head = Reader::new(&[0x1b, 0, 0, 1, 0x96, 0x81, 0x1b, 0x1c, 0x0b])
            .head()
            .unwrap();
        assert_eq!(head.argument, 1_745_922_759_691);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let error = Reader::new(&[0x1a, 0x00]).head().unwrap_err();
        assert!(matches!(error, DocumentError::Truncated { .. }));
    }
}
