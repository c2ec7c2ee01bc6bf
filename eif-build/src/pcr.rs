//! PCR measurements of an EIF, exactly as the Nitro hypervisor and `nitro-cli` compute them.
//!
//! Each PCR is a SHA-384 "extend" of the zero register with the SHA-384 of a run of section
//! bytes (section headers and the metadata section are never measured):
//!
//! | PCR | measured bytes |
//! |---|---|
//! | 0 | kernel, cmdline, every ramdisk, in file order (the whole image) |
//! | 1 | kernel, cmdline, the first ramdisk (the boot ramdisk: `init`, `nsm.ko`) |
//! | 2 | every ramdisk after the first (the application) |
//! | 8 | the DER of the signing certificate, only for a signed image |
//!
//! `PCRn = SHA-384(48 zero bytes ‖ SHA-384(measured bytes))`.

use serde::Serialize;
use sha2::{Digest, Sha384};

/// Length of a SHA-384 PCR value in bytes.
pub const PCR_LEN: usize = 48;

/// The `HashAlgorithm` string that `nitro-cli build-enclave` and `describe-eif` print (the
/// `Debug` text of the SHA-384 hasher in the released nitro-cli).
pub const HASH_ALGORITHM: &str = "Sha384 { ... }";

/// One PCR register value (48 bytes).
pub type Pcr = [u8; PCR_LEN];

/// Extends the zero register with `digest`: `SHA-384(0^48 ‖ digest)`.
#[must_use]
pub fn extend_zero_register(digest: &[u8]) -> Pcr {
    let mut register = Sha384::new();
    register.update([0u8; PCR_LEN]);
    register.update(digest);
    register.finalize().into()
}

/// The measurements of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurements {
    /// The whole image: kernel, cmdline and all ramdisks.
    pub pcr0: Pcr,
    /// Kernel, cmdline and the boot ramdisk.
    pub pcr1: Pcr,
    /// The application ramdisks.
    pub pcr2: Pcr,
    /// The signing certificate, for signed images.
    pub pcr8: Option<Pcr>,
}

impl Measurements {
    /// The `Measurements` object of `nitro-cli describe-eif` (keys in its order).
    #[must_use]
    pub fn to_describe_json(&self) -> MeasurementsJson {
        MeasurementsJson {
            hash_algorithm: HASH_ALGORITHM.to_string(),
            pcr0: hex::encode(self.pcr0),
            pcr1: hex::encode(self.pcr1),
            pcr2: hex::encode(self.pcr2),
            pcr8: self.pcr8.map(hex::encode),
        }
    }
}

/// The JSON shape `nitro-cli` prints under `"Measurements"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MeasurementsJson {
    /// Always [`HASH_ALGORITHM`].
    #[serde(rename = "HashAlgorithm")]
    pub hash_algorithm: String,
    /// PCR0, 96 lowercase hex characters.
    #[serde(rename = "PCR0")]
    pub pcr0: String,
    /// PCR1, 96 lowercase hex characters.
    #[serde(rename = "PCR1")]
    pub pcr1: String,
    /// PCR2, 96 lowercase hex characters.
    #[serde(rename = "PCR2")]
    pub pcr2: String,
    /// PCR8, only for signed images.
    #[serde(rename = "PCR8", skip_serializing_if = "Option::is_none", default)]
    pub pcr8: Option<String>,
}

/// Which PCR runs a section's bytes belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MeasuredAs {
    /// Kernel, cmdline and the first ramdisk: PCR0 and PCR1.
    Boot,
    /// Later ramdisks: PCR0 and PCR2.
    Application,
    /// Not measured (metadata, signature: the certificate is measured separately).
    Unmeasured,
}

/// Streaming PCR computation over the sections of an image, in file order.
#[derive(Debug, Clone, Default)]
pub(crate) struct PcrAccumulator {
    image: Sha384,
    boot: Sha384,
    application: Sha384,
    certificate: Option<Pcr>,
}

impl PcrAccumulator {
    pub(crate) fn update(&mut self, measured_as: MeasuredAs, bytes: &[u8]) {
        match measured_as {
            MeasuredAs::Boot => {
                self.image.update(bytes);
                self.boot.update(bytes);
            }
            MeasuredAs::Application => {
                self.image.update(bytes);
                self.application.update(bytes);
            }
            MeasuredAs::Unmeasured => {}
        }
    }

    /// Records the signing certificate (DER) of a signed image.
    pub(crate) fn set_certificate(&mut self, certificate_der: &[u8]) {
        self.certificate = Some(extend_zero_register(&Sha384::digest(certificate_der)));
    }

    pub(crate) fn finish(self) -> Measurements {
        Measurements {
            pcr0: extend_zero_register(&self.image.finalize()),
            pcr1: extend_zero_register(&self.boot.finalize()),
            pcr2: extend_zero_register(&self.application.finalize()),
            pcr8: self.certificate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extend_is_sha384_of_zeros_and_digest() {
        let digest = Sha384::digest(b"abc");
        let mut concatenated = vec![0u8; 48];
        concatenated.extend_from_slice(&digest);
        assert_eq!(
            extend_zero_register(&digest).to_vec(),
            Sha384::digest(&concatenated).to_vec()
        );
    }

    #[test]
    fn sections_split_into_the_right_registers() {
        let mut split = PcrAccumulator::default();
        split.update(MeasuredAs::Boot, b"kernel");
        split.update(MeasuredAs::Boot, b"cmdline");
        split.update(MeasuredAs::Unmeasured, b"metadata");
        split.update(MeasuredAs::Boot, b"boot ramdisk");
        split.update(MeasuredAs::Application, b"app ramdisk");
        let measured = split.finish();
        let pcr = |bytes: &[u8]| extend_zero_register(&Sha384::digest(bytes));
        assert_eq!(measured.pcr0, pcr(b"kernelcmdlineboot ramdiskapp ramdisk"));
        assert_eq!(measured.pcr1, pcr(b"kernelcmdlineboot ramdisk"));
        assert_eq!(measured.pcr2, pcr(b"app ramdisk"));
        assert_eq!(measured.pcr8, None);
    }

    #[test]
    fn describe_json_has_nitro_cli_keys() {
        let measured = PcrAccumulator::default().finish();
        let json = serde_json::to_string(&measured.to_describe_json()).unwrap();
        assert!(json.starts_with(r#"{"HashAlgorithm":"Sha384 { ... }","PCR0":""#));
        assert!(!json.contains("PCR8"));
    }
}
