//! The COSE_Sign1 facts both the signer (the enclave's development attester) and the checker
//! (this crate's parser) need: the one protected header Nitro documents carry, and the
//! `Sig_structure` the ES384 signature covers (RFC 9052 §4.4). Defined once, so the enclave
//! signs exactly the bytes the verifier checks.

/// The protected header of every Nitro document: the CBOR map `{1: -35}` (alg: ES384).
pub const ES384_PROTECTED_HEADER: [u8; 4] = [0xa1, 0x01, 0x38, 0x22];

/// `["Signature1", protected, h'', payload]` (empty external AAD): the bytes a COSE_Sign1
/// signature covers.
pub fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + protected.len() + 24);
    out.push(0x84); // array(4)
    out.push(0x6a); // text(10)
    out.extend_from_slice(b"Signature1");
    push_bytes_head(&mut out, protected.len());
    out.extend_from_slice(protected);
    out.push(0x40); // bytes(0): external_aad
    push_bytes_head(&mut out, payload.len());
    out.extend_from_slice(payload);
    out
}

/// The head of a CBOR byte string of `length` bytes (shortest form).
fn push_bytes_head(out: &mut Vec<u8>, length: usize) {
    let length = length as u64;
    if length < 24 {
        out.push(0x40 | length as u8);
    } else if length <= 0xff {
        out.extend_from_slice(&[0x58, length as u8]);
    } else if length <= 0xffff {
        out.push(0x59);
        out.extend_from_slice(&(length as u16).to_be_bytes());
    } else if length <= 0xffff_ffff {
        out.push(0x5a);
        out.extend_from_slice(&(length as u32).to_be_bytes());
    } else {
        out.push(0x5b);
        out.extend_from_slice(&length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_structure_is_the_rfc_9052_layout() {
        assert_eq!(
            sig_structure(&ES384_PROTECTED_HEADER, &[0xa0]),
            [
                0x84, 0x6a, b'S', b'i', b'g', b'n', b'a', b't', b'u', b'r', b'e', b'1', 0x44, 0xa1,
                0x01, 0x38, 0x22, 0x40, 0x41, 0xa0
            ]
        );
        // Byte-string heads take the shortest form at each boundary.
        for (length, head) in [
            (23usize, vec![0x57]),
            (24, vec![0x58, 24]),
            (256, vec![0x59, 1, 0]),
            (65_536, vec![0x5a, 0, 1, 0, 0]),
        ] {
            let structure = sig_structure(&[], &vec![0; length]);
            // array, text head, "Signature1", empty protected, empty AAD: 14 bytes.
            assert_eq!(&structure[14..14 + head.len()], head.as_slice(), "{length}");
        }
    }
}
