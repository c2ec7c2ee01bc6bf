//! What a client requires of an enclave before it trusts it: the trust root, the enclave image
//! (PCRs), the model, and how old a live document may be.
//!
//! Under the AWS Nitro root an expected image is required: PCR0 among the required PCRs, or a
//! list of allowed images each pinning PCR0 (a policy file). Without one, any genuine enclave
//! image, including one the operator wrote to leak prompts, would pass; accepting that takes
//! [`ClientPolicy::insecure_accept_any_image`]. Under an explicitly passed root (the
//! development attester's) the root itself already names who may sign.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use attestation_verifier::binding::{BindingError, BootBinding};
use attestation_verifier::receipt::{AttestedSigner, ReceiptError};
use attestation_verifier::{
    Policy, TrustAnchor, UnixMillis, VerifiedAttestation, Verifier, VerifyError,
};
use serde::Deserialize;

/// The default bound on the age of a live attestation document.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// Why a document or a policy was refused: one variant per failed check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Under the AWS root, no expected image was given.
    #[error(
        "no expected enclave image: under the AWS Nitro root pass PCR0 (--pcr 0=<hex>) or a policy \
         file listing allowed images; accepting any image needs --insecure-accept-any-image"
    )]
    ImageNotPinned,
    /// The attestation document failed verification (chain, signature, PCRs, nonce, age...).
    #[error("attestation document rejected: {0}")]
    Attestation(#[from] VerifyError),
    /// The document's PCRs match none of the allowed images.
    #[error("the enclave image (PCR0 {pcr0_hex}) is none of the {allowed} allowed images")]
    ImageNotAllowed {
        /// The document's PCR0, hex (empty when absent).
        pcr0_hex: String,
        /// How many images the policy allows.
        allowed: usize,
    },
    /// The document's user_data is not a boot binding, or binds another model.
    #[error("attestation document binding rejected: {0}")]
    Binding(#[from] BindingError),
    /// The document names no usable receipt signer.
    #[error("attestation document names no usable receipt key: {0}")]
    Signer(#[from] ReceiptError),
    /// A policy file could not be read or is malformed.
    #[error("policy file {path}: {reason}")]
    PolicyFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// One allowed enclave image: PCR values that must all match.
pub type ImagePcrs = BTreeMap<u8, Vec<u8>>;

/// What a client requires of an enclave.
#[derive(Debug, Clone)]
pub struct ClientPolicy {
    anchor: TrustAnchor,
    required_pcrs: ImagePcrs,
    allowed_images: Vec<ImagePcrs>,
    accept_any_image: bool,
    model_sha256: Option<[u8; 32]>,
    max_age: Duration,
}

/// A boot document that passed a [`ClientPolicy`]: the verified document, its binding (TLS key,
/// model) and its receipt signer.
#[derive(Debug, Clone)]
pub struct TrustedEnclave {
    /// The verified document.
    pub attestation: VerifiedAttestation,
    /// Its boot binding.
    pub binding: BootBinding,
    /// The attested receipt key and binding.
    pub signer: AttestedSigner,
}

impl ClientPolicy {
    /// A policy trusting `anchor`, with no image, model or age requirement beyond the defaults
    /// (maximum age [`DEFAULT_MAX_AGE`]).
    pub fn new(anchor: TrustAnchor) -> Self {
        Self {
            anchor,
            required_pcrs: BTreeMap::new(),
            allowed_images: Vec::new(),
            accept_any_image: false,
            model_sha256: None,
            max_age: DEFAULT_MAX_AGE,
        }
    }

    /// A policy under the AWS Nitro Enclaves Root G1 (an image must still be pinned).
    pub fn aws() -> Self {
        Self::new(TrustAnchor::aws_nitro_root_g1())
    }

    /// Requires PCR `index` to equal `value` in every document.
    pub fn expect_pcr(mut self, index: u8, value: impl Into<Vec<u8>>) -> Self {
        self.required_pcrs.insert(index, value.into());
        self
    }

    /// Adds an allowed image; when any are given, a document must match one of them entirely.
    pub fn allow_image(mut self, pcrs: ImagePcrs) -> Self {
        self.allowed_images.push(pcrs);
        self
    }

    /// Requires the enclave to serve the model with this SHA-256.
    pub fn expect_model_sha256(mut self, model_sha256: [u8; 32]) -> Self {
        self.model_sha256 = Some(model_sha256);
        self
    }

    /// Bounds the age of live documents (the connection's challenge document).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// INSECURE: accepts any enclave image under the AWS root. Any genuine enclave, including
    /// one built to leak prompts, then passes; only the model hash (if pinned) still binds.
    pub fn insecure_accept_any_image(mut self) -> Self {
        self.accept_any_image = true;
        self
    }

    /// Adds a policy file's images and model (JSON, see [`PolicyFile`]).
    ///
    /// # Errors
    /// [`PolicyError::PolicyFile`] when the file is unreadable or malformed.
    pub fn with_policy_file(self, path: &Path) -> Result<Self, PolicyError> {
        let file_error = |reason: String| PolicyError::PolicyFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|error| file_error(error.to_string()))?;
        let file: PolicyFile =
            serde_json::from_str(&text).map_err(|error| file_error(error.to_string()))?;
        self.with_policy(file).map_err(file_error)
    }

    /// Adds a parsed policy file's images and model.
    ///
    /// # Errors
    /// A description of the malformed entry.
    pub fn with_policy(mut self, file: PolicyFile) -> Result<Self, String> {
        if file.images.is_empty() {
            return Err("\"images\" lists no image".to_owned());
        }
        for (position, image) in file.images.into_iter().enumerate() {
            let mut pcrs = BTreeMap::new();
            for (index, value) in image.pcrs {
                let index: u8 =
                    index
                        .parse()
                        .ok()
                        .filter(|index| *index <= 31)
                        .ok_or_else(|| {
                            format!("image {position}: PCR index {index:?} is not 0..=31")
                        })?;
                pcrs.insert(
                    index,
                    parse_pcr_value(&value)
                        .map_err(|reason| format!("image {position}: PCR{index}: {reason}"))?,
                );
            }
            if pcrs.is_empty() {
                return Err(format!("image {position} pins no PCR"));
            }
            self.allowed_images.push(pcrs);
        }
        if let Some(model) = file.model_sha256 {
            self.model_sha256 = Some(parse_sha256(&model)?);
        }
        Ok(self)
    }

    /// The trust anchor.
    pub fn anchor(&self) -> &TrustAnchor {
        &self.anchor
    }

    /// The expected model hash, if pinned.
    pub fn model_sha256(&self) -> Option<&[u8; 32]> {
        self.model_sha256.as_ref()
    }

    /// The PCRs every document must carry.
    pub fn required_pcrs(&self) -> &ImagePcrs {
        &self.required_pcrs
    }

    /// Whether any image is accepted under the AWS root (the insecure option).
    pub fn accepts_any_image(&self) -> bool {
        self.accept_any_image
    }

    /// Fails unless an image is pinned where one is required (see the module docs).
    ///
    /// # Errors
    /// [`PolicyError::ImageNotPinned`].
    pub fn check_image_pinned(&self) -> Result<(), PolicyError> {
        let pinned = self.required_pcrs.contains_key(&0)
            || (!self.allowed_images.is_empty()
                && self
                    .allowed_images
                    .iter()
                    .all(|image| image.contains_key(&0)));
        if self.anchor.is_aws_nitro_root_g1() && !pinned && !self.accept_any_image {
            return Err(PolicyError::ImageNotPinned);
        }
        Ok(())
    }

    /// Verifies a boot document at `at`: the chain and signature under the anchor, the image,
    /// the nonce (when given), the age (when `live`), the boot binding, the model and the
    /// receipt key.
    ///
    /// # Errors
    /// The first failed check.
    pub fn verify_boot_document(
        &self,
        document: &[u8],
        nonce: Option<&[u8]>,
        at: UnixMillis,
        live: bool,
    ) -> Result<TrustedEnclave, PolicyError> {
        let attestation = self.verify_image(document, nonce, at, live)?;
        let binding = BootBinding::from_attestation(&attestation)?;
        if let Some(expected) = &self.model_sha256 {
            binding.check_model(expected)?;
        }
        let signer = AttestedSigner::from_attestation(&attestation)?;
        Ok(TrustedEnclave {
            attestation,
            binding,
            signer,
        })
    }

    /// Verifies a document's authenticity and image (no binding checks): the part shared by
    /// boot and per-response documents.
    ///
    /// # Errors
    /// The first failed check.
    pub fn verify_image(
        &self,
        document: &[u8],
        nonce: Option<&[u8]>,
        at: UnixMillis,
        live: bool,
    ) -> Result<VerifiedAttestation, PolicyError> {
        self.check_image_pinned()?;
        let mut policy = Policy::new();
        for (index, value) in &self.required_pcrs {
            policy = policy.expect_pcr(*index, value.clone());
        }
        if let Some(nonce) = nonce {
            policy = policy.expect_nonce(nonce.to_vec());
        }
        if live {
            policy = policy.max_age(self.max_age);
        }
        let attestation = Verifier::new(self.anchor.clone()).verify(document, &policy, at)?;
        if !self.allowed_images.is_empty()
            && !self.allowed_images.iter().any(|image| {
                image
                    .iter()
                    .all(|(index, value)| attestation.pcr(*index) == Some(value.as_slice()))
            })
        {
            return Err(PolicyError::ImageNotAllowed {
                pcr0_hex: attestation.pcr(0).map(hex::encode).unwrap_or_default(),
                allowed: self.allowed_images.len(),
            });
        }
        Ok(attestation)
    }
}

/// A policy file (JSON):
/// `{"images": [{"pcrs": {"0": "<hex>", "1": "<hex>", "2": "<hex>"}}, ...], "model_sha256": "<hex>"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Allowed images; a document must match one entirely.
    pub images: Vec<PolicyFileImage>,
    /// The expected model hash, hex (optional).
    #[serde(default)]
    pub model_sha256: Option<String>,
}

/// One allowed image of a [`PolicyFile`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFileImage {
    /// PCR index (decimal string) → value (hex).
    pub pcrs: BTreeMap<String, String>,
}

/// Parses hex (optionally `0x`-prefixed).
///
/// # Errors
/// A description of the bad input.
pub fn parse_hex(value: &str) -> Result<Vec<u8>, String> {
    hex::decode(value.strip_prefix("0x").unwrap_or(value))
        .map_err(|error| format!("invalid hex: {error}"))
}

/// Parses a PCR value: hex of 32, 48 or 64 bytes.
///
/// # Errors
/// A description of the bad input.
pub fn parse_pcr_value(value: &str) -> Result<Vec<u8>, String> {
    let bytes = parse_hex(value)?;
    if !matches!(bytes.len(), 32 | 48 | 64) {
        return Err(format!("a PCR is 32, 48 or 64 bytes, got {}", bytes.len()));
    }
    Ok(bytes)
}

/// Parses a SHA-256 given as 64 hex digits.
///
/// # Errors
/// A description of the bad input.
pub fn parse_sha256(value: &str) -> Result<[u8; 32], String> {
    parse_hex(value)?
        .try_into()
        .map_err(|bytes: Vec<u8>| format!("a SHA-256 is 32 bytes, got {}", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_root_requires_a_pinned_image() {
        assert_eq!(
            ClientPolicy::aws().check_image_pinned(),
            Err(PolicyError::ImageNotPinned)
        );
        assert_eq!(
            ClientPolicy::aws()
                .expect_pcr(1, vec![0; 48])
                .check_image_pinned(),
            Err(PolicyError::ImageNotPinned)
        );
        assert!(
            ClientPolicy::aws()
                .expect_pcr(0, vec![0; 48])
                .check_image_pinned()
                .is_ok()
        );
        assert!(
            ClientPolicy::aws()
                .insecure_accept_any_image()
                .check_image_pinned()
                .is_ok()
        );
        let image = |index: u8| BTreeMap::from([(index, vec![1u8; 48])]);
        assert!(
            ClientPolicy::aws()
                .allow_image(image(0))
                .check_image_pinned()
                .is_ok()
        );
        // One allowed image without PCR0 lets any image through: refused.
        assert_eq!(
            ClientPolicy::aws()
                .allow_image(image(0))
                .allow_image(image(2))
                .check_image_pinned(),
            Err(PolicyError::ImageNotPinned)
        );
    }

    #[test]
    fn policy_files_parse_strictly() {
        let parse = |text: &str| {
            let file: PolicyFile = serde_json::from_str(text).map_err(|error| error.to_string())?;
            ClientPolicy::aws().with_policy(file)
        };
        let pcr = "ab".repeat(48);
        let model = "cd".repeat(32);
        let policy = parse(&format!(
            r#"{{"images":[{{"pcrs":{{"0":"{pcr}","2":"0x{pcr}"}}}}],"model_sha256":"{model}"}}"#
        ))
        .unwrap();
        assert!(policy.check_image_pinned().is_ok());
        assert_eq!(policy.model_sha256(), Some(&[0xcd; 32]));
        assert!(parse(r#"{"images":[]}"#).is_err());
        assert!(parse(r#"{"images":[{"pcrs":{}}]}"#).is_err());
        assert!(parse(&format!(r#"{{"images":[{{"pcrs":{{"32":"{pcr}"}}}}]}}"#)).is_err());
        assert!(parse(r#"{"images":[{"pcrs":{"0":"abcd"}}]}"#).is_err());
        assert!(
            parse(&format!(
                r#"{{"images":[{{"pcrs":{{"0":"{pcr}"}}}}],"other":1}}"#
            ))
            .is_err()
        );
        assert!(
            parse(&format!(
                r#"{{"images":[{{"pcrs":{{"0":"{pcr}"}}}}],"model_sha256":"abcd"}}"#
            ))
            .is_err()
        );
    }

    #[test]
    fn parses_hex_values() {
        assert_eq!(parse_hex("0x0aff").unwrap(), vec![0x0a, 0xff]);
        assert!(parse_hex("zz").is_err());
        assert!(parse_pcr_value(&"00".repeat(47)).is_err());
        assert_eq!(parse_sha256(&"11".repeat(32)).unwrap(), [0x11; 32]);
        assert!(parse_sha256(&"11".repeat(31)).is_err());
    }
}

/// What the enclave must be, as command-line flags (`--root`, `--pcr`, `--model-sha256`,
/// `--policy`, `--insecure-accept-any-image`): shared by the `attest` subcommands and the
/// relayer.
#[cfg(feature = "cli")]
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// Trust anchor: `aws` (the pinned AWS Nitro Enclaves Root G1) or a PEM file holding
    /// another root, e.g. the development attester's `root.pem`.
    #[arg(long, default_value = "aws", value_name = "aws|PEM")]
    root: String,
    /// Expected PCR value, `N=hex` (repeatable). Under the AWS root PCR0 (or --policy) is
    /// required.
    #[arg(long = "pcr", value_name = "N=HEX", value_parser = parse_pcr)]
    pcrs: Vec<(u8, Vec<u8>)>,
    /// Expected SHA-256 of the model file the enclave serves.
    #[arg(long = "model-sha256", value_name = "HEX", value_parser = parse_sha256)]
    model_sha256: Option<[u8; 32]>,
    /// A JSON policy file listing allowed images (and optionally the model):
    /// {"images":[{"pcrs":{"0":"<hex>","1":"<hex>","2":"<hex>"}}],"model_sha256":"<hex>"}.
    #[arg(long, value_name = "FILE")]
    policy: Option<std::path::PathBuf>,
    /// INSECURE: accept any enclave image under the AWS root. Any genuine enclave, including
    /// one built to read your prompts, would then pass.
    #[arg(long = "insecure-accept-any-image")]
    insecure_accept_any_image: bool,
}

#[cfg(feature = "cli")]
fn parse_pcr(value: &str) -> Result<(u8, Vec<u8>), String> {
    let (index, hex_value) = value
        .split_once('=')
        .ok_or_else(|| format!("expected N=HEX, got {value:?}"))?;
    let index: u8 = index
        .parse()
        .ok()
        .filter(|index| *index <= 31)
        .ok_or_else(|| format!("PCR index must be 0..=31, got {index:?}"))?;
    Ok((index, parse_pcr_value(hex_value)?))
}

#[cfg(feature = "cli")]
impl PolicyArgs {
    /// The policy, or a usage error message.
    ///
    /// # Errors
    /// A message naming the bad argument.
    pub fn build(&self) -> Result<ClientPolicy, String> {
        let anchor = if self.root == "aws" {
            TrustAnchor::aws_nitro_root_g1()
        } else {
            let pem = std::fs::read(&self.root)
                .map_err(|error| format!("cannot read root {}: {error}", self.root))?;
            TrustAnchor::from_pem_explicit(&pem)
                .map_err(|error| format!("root {}: {error}", self.root))?
        };
        let mut policy = ClientPolicy::new(anchor);
        for (index, value) in &self.pcrs {
            policy = policy.expect_pcr(*index, value.clone());
        }
        if let Some(path) = &self.policy {
            policy = policy
                .with_policy_file(path)
                .map_err(|error| error.to_string())?;
        }
        if let Some(model) = self.model_sha256 {
            policy = policy.expect_model_sha256(model);
        }
        if self.insecure_accept_any_image {
            eprintln!(
                "WARNING: --insecure-accept-any-image: any enclave image is accepted; \
                 only the model hash (if pinned) constrains what runs"
            );
            policy = policy.insecure_accept_any_image();
        }
        policy
            .check_image_pinned()
            .map_err(|error| error.to_string())?;
        Ok(policy)
    }
}
