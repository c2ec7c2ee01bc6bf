//! The few CBOR items an attestation document needs, in the encoding the NSM uses: definite
//! lengths and shortest-form heads (RFC 8949 §4.2.1).

/// Appends CBOR items to a buffer.
#[derive(Debug, Default)]
pub(crate) struct CborWriter {
    out: Vec<u8>,
}

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const SIMPLE_NULL: u8 = 0xf6;

impl CborWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn head(&mut self, major: u8, argument: u64) -> &mut Self {
        let major = major << 5;
        if argument < 24 {
            self.out.push(major | argument as u8);
        } else if argument <= u64::from(u8::MAX) {
            self.out.extend_from_slice(&[major | 24, argument as u8]);
        } else if argument <= u64::from(u16::MAX) {
            self.out.push(major | 25);
            self.out.extend_from_slice(&(argument as u16).to_be_bytes());
        } else if argument <= u64::from(u32::MAX) {
            self.out.push(major | 26);
            self.out.extend_from_slice(&(argument as u32).to_be_bytes());
        } else {
            self.out.push(major | 27);
            self.out.extend_from_slice(&argument.to_be_bytes());
        }
        self
    }

    pub(crate) fn unsigned(&mut self, value: u64) -> &mut Self {
        self.head(MAJOR_UNSIGNED, value)
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.head(MAJOR_BYTES, value.len() as u64);
        self.out.extend_from_slice(value);
        self
    }

    pub(crate) fn text(&mut self, value: &str) -> &mut Self {
        self.head(MAJOR_TEXT, value.len() as u64);
        self.out.extend_from_slice(value.as_bytes());
        self
    }

    pub(crate) fn null(&mut self) -> &mut Self {
        self.out.push(SIMPLE_NULL);
        self
    }

    /// Bytes, or null when absent (how the NSM encodes absent optional fields).
    pub(crate) fn optional_bytes(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(bytes) => self.bytes(bytes),
            None => self.null(),
        }
    }

    pub(crate) fn array(&mut self, length: usize) -> &mut Self {
        self.head(MAJOR_ARRAY, length as u64)
    }

    pub(crate) fn map(&mut self, entries: usize) -> &mut Self {
        self.head(MAJOR_MAP, entries as u64)
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::CborWriter;

    #[test]
    fn heads_are_shortest_form() {
        let mut writer = CborWriter::new();
        writer
            .unsigned(23)
            .unsigned(24)
            .unsigned(255)
            .unsigned(256)
            .unsigned(65_536)
            .unsigned(1_734_075_478_960);
        assert_eq!(
            writer.finish(),
            [
                0x17, 0x18, 0x18, 0x18, 0xff, 0x19, 0x01, 0x00, 0x1a, 0x00, 0x01, 0x00, 0x00, 0x1b,
                0x00, 0x00, 0x01, 0x93, 0xbe, 0xf3, 0xf3, 0xb0
            ]
        );
    }

    #[test]
    fn strings_maps_arrays_and_null() {
        let mut writer = CborWriter::new();
        writer
            .map(1)
            .text("digest")
            .text("SHA384")
            .array(2)
            .bytes(&[1, 2])
            .optional_bytes(None)
            .bytes(&[0u8; 48]);
        let out = writer.finish();
        assert_eq!(&out[..8], &[0xa1, 0x66, b'd', b'i', b'g', b'e', b's', b't']);
        assert_eq!(&out[8..15], &[0x66, b'S', b'H', b'A', b'3', b'8', b'4']);
        assert_eq!(&out[15..19], &[0x82, 0x42, 1, 2]);
        assert_eq!(out[19], 0xf6);
        assert_eq!(&out[20..22], &[0x58, 0x30]);
        assert_eq!(out.len(), 22 + 48);
    }
}
