//! The development attester: documents in the NSM's exact format (untagged COSE_Sign1,
//! protected header `a1013822`, the nine payload fields in AWS's order, absent optionals as
//! CBOR null, `digest` "SHA384", 16 PCRs of 48 bytes, cabundle root first), signed ES384 by a
//! local P-384 chain root → intermediate → leaf.
//!
//! The root's key and certificate live in the development CA directory (`root-key.pem`,
//! `root.pem`), created when missing so that restarts keep the same root; the intermediate
//! and the per-document leaf keys live only in memory, as do all of the enclave's own keys.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use attestation_verifier::cose::ES384_PROTECTED_HEADER;
use attestation_verifier::{Policy, TrustAnchor, UnixMillis, Verifier};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P384_SHA384, SerialNumber,
};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::cbor::CborWriter;
use super::{AttestationRequest, Attester, AttesterError, AttesterKind, check_document_matches};

/// File name of the development root certificate (PEM) inside the CA directory.
pub const ROOT_CERTIFICATE_FILE: &str = "root.pem";
/// File name of the development root key (PKCS#8 PEM, mode 0600) inside the CA directory.
pub const ROOT_KEY_FILE: &str = "root-key.pem";
/// Held (advisory lock) while the CA is loaded or created, so enclaves sharing the directory
/// never see a half-written CA.
const LOCK_FILE: &str = ".lock";
/// How long a document's leaf certificate is valid, like AWS's (about three hours).
pub const DEV_LEAF_LIFETIME: Duration = Duration::from_secs(3 * 3600);
/// How long a generated intermediate is valid; a new one is made before it runs out.
const INTERMEDIATE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a new development root is valid.
const ROOT_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Certificates start this much before "now", for clocks that disagree a little.
const BACKDATE: Duration = Duration::from_secs(60);
/// Hashed into PCR1 in place of a Nitro kernel measurement.
pub const DEV_PCR1_MARKER: &[u8] = b"attested-inference development attester: no Nitro kernel";
/// Prefix of the canonical configuration text hashed into PCR2.
const DEV_PCR2_PREFIX: &str = "attested-inference development configuration v1\n";
/// Number of PCRs in a document, as the NSM reports them.
const PCR_COUNT: usize = 16;
const ORGANIZATION: &str = "attested-inference development";
const ROOT_COMMON_NAME: &str = "attested-inference development root";

/// The development attester's PCR values (SHA-384, 48 bytes each; PCR3..15 zero).
///
/// - PCR0: SHA-384 of the running executable's bytes (stands for the enclave image).
/// - PCR1: SHA-384 of [`DEV_PCR1_MARKER`] (stands for the kernel and boot ramdisk).
/// - PCR2: SHA-384 of the canonical configuration text
///   `"attested-inference development configuration v1\nmodel_sha256=<hex>\n"` (stands for the
///   application, which in a real image carries the expected model hash).
///
/// None of them is zero, so the documents are never mistaken for debug-mode ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevMeasurements {
    pcrs: [[u8; 48]; PCR_COUNT],
}

impl DevMeasurements {
    /// Measurements from the executable's SHA-384 and the expected model hash.
    pub fn new(executable_sha384: [u8; 48], model_sha256: &[u8; 32]) -> Self {
        let mut pcrs = [[0u8; 48]; PCR_COUNT];
        pcrs[0] = executable_sha384;
        pcrs[1] = sha384(DEV_PCR1_MARKER);
        pcrs[2] = sha384(Self::configuration_text(model_sha256).as_bytes());
        Self { pcrs }
    }

    /// Measures the running executable (PCR0) and the expected model hash (PCR2).
    ///
    /// # Errors
    /// [`AttesterError::Measurement`] when the executable cannot be read.
    pub fn for_running_executable(model_sha256: &[u8; 32]) -> Result<Self, AttesterError> {
        let path = std::env::current_exe().map_err(|source| AttesterError::Measurement {
            path: PathBuf::from("/proc/self/exe"),
            source,
        })?;
        let bytes = fs::read(&path).map_err(|source| AttesterError::Measurement {
            path: path.clone(),
            source,
        })?;
        Ok(Self::new(sha384(&bytes), model_sha256))
    }

    /// The canonical configuration text PCR2 measures.
    pub fn configuration_text(model_sha256: &[u8; 32]) -> String {
        format!(
            "{DEV_PCR2_PREFIX}model_sha256={}\n",
            hex::encode(model_sha256)
        )
    }

    /// PCR `index` (0..16).
    pub fn pcr(&self, index: usize) -> Option<&[u8; 48]> {
        self.pcrs.get(index)
    }
}

/// The development CA: the root (persisted) and the current intermediate (in memory).
pub struct DevCa {
    directory: PathBuf,
    root_key: Zeroizing<KeyPair>,
    /// The root as an issuer: rebuilt from the fixed parameters and the persisted key, so that
    /// the names and key identifiers it writes into children match the persisted root.
    root_issuer: Certificate,
    root_der: Vec<u8>,
    root_not_after: OffsetDateTime,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa")
            .field("directory", &self.directory)
            .field("root_sha256", &hex::encode(sha256(&self.root_der)))
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// Loads the CA from `directory`, creating the directory and a new root when both files
    /// are missing. A directory holding only one of the two files is an error, never repaired
    /// silently: clients may be pinned to the old root.
    ///
    /// # Errors
    /// An [`AttesterError`] naming the file and what is wrong with it.
    pub fn load_or_create(directory: &Path) -> Result<Self, AttesterError> {
        create_private_directory(directory)?;
        // Several enclaves may share one directory (one root for a local fleet) and start at
        // once: the first creates the CA while the others wait, then load it.
        let lock_path = directory.join(LOCK_FILE);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .and_then(|file| file.lock().map(|()| file))
            .map_err(|source| AttesterError::DevCaIo {
                action: "lock",
                path: lock_path,
                source,
            })?;
        let certificate_path = directory.join(ROOT_CERTIFICATE_FILE);
        let key_path = directory.join(ROOT_KEY_FILE);
        let result = match (certificate_path.exists(), key_path.exists()) {
            (true, true) => Self::load(directory, &certificate_path, &key_path),
            (false, false) => Self::create(directory, &certificate_path, &key_path),
            (true, false) => Err(AttesterError::DevCaIncomplete {
                present: certificate_path,
                missing: key_path,
            }),
            (false, true) => Err(AttesterError::DevCaIncomplete {
                present: key_path,
                missing: certificate_path,
            }),
        };
        drop(lock);
        result
    }

    fn create(
        directory: &Path,
        certificate_path: &Path,
        key_path: &Path,
    ) -> Result<Self, AttesterError> {
        let root_key = Zeroizing::new(
            KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384)
                .map_err(|error| generation("development root key", error))?,
        );
        let now = now_datetime()?;
        let mut params = root_params();
        params.serial_number = Some(random_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = now + ROOT_LIFETIME;
        let root = params
            .self_signed(&root_key)
            .map_err(|error| generation("development root certificate", error))?;
        let key_pem = Zeroizing::new(root_key.serialize_pem());
        write_new_file(key_path, key_pem.as_bytes(), 0o600)?;
        write_new_file(certificate_path, root.pem().as_bytes(), 0o644)?;
        Self::from_parts(directory, root_key, root.der().to_vec(), certificate_path)
    }

    fn load(
        directory: &Path,
        certificate_path: &Path,
        key_path: &Path,
    ) -> Result<Self, AttesterError> {
        let key_pem = Zeroizing::new(fs::read_to_string(key_path).map_err(|source| {
            AttesterError::DevCaIo {
                action: "read",
                path: key_path.to_owned(),
                source,
            }
        })?);
        let root_key = Zeroizing::new(KeyPair::from_pem(&key_pem).map_err(|error| {
            AttesterError::DevCaInvalid {
                path: key_path.to_owned(),
                reason: format!("not a PKCS#8 PEM private key: {error}"),
            }
        })?);
        if root_key.algorithm() != &PKCS_ECDSA_P384_SHA384 {
            return Err(AttesterError::DevCaInvalid {
                path: key_path.to_owned(),
                reason: "not a P-384 ECDSA key".to_owned(),
            });
        }
        let certificate_pem =
            fs::read(certificate_path).map_err(|source| AttesterError::DevCaIo {
                action: "read",
                path: certificate_path.to_owned(),
                source,
            })?;
        let (_, block) = x509_parser::pem::parse_x509_pem(&certificate_pem).map_err(|error| {
            AttesterError::DevCaInvalid {
                path: certificate_path.to_owned(),
                reason: format!("no PEM certificate: {error}"),
            }
        })?;
        Self::from_parts(directory, root_key, block.contents, certificate_path)
    }

    /// Checks that the certificate is a usable root for this key and builds the issuer.
    fn from_parts(
        directory: &Path,
        root_key: Zeroizing<KeyPair>,
        root_der: Vec<u8>,
        certificate_path: &Path,
    ) -> Result<Self, AttesterError> {
        let invalid = |reason: String| AttesterError::DevCaInvalid {
            path: certificate_path.to_owned(),
            reason,
        };
        // The verifier's own anchor rules: a self-signed P-384 CA.
        TrustAnchor::from_der_explicit(&root_der).map_err(|error| invalid(error.to_string()))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&root_der)
            .map_err(|error| invalid(error.to_string()))?;
        if parsed.public_key().subject_public_key.data.as_ref() != root_key.public_key_raw() {
            return Err(invalid(format!(
                "its public key is not the key in {ROOT_KEY_FILE}"
            )));
        }
        let root_not_after = parsed.validity().not_after.to_datetime();
        // Children name their issuer with the DN these parameters encode; it must be the
        // persisted root's subject byte for byte (checked again by the attester's self-check).
        let root_issuer = root_params()
            .self_signed(&root_key)
            .map_err(|error| generation("development root issuer", error))?;
        let rebuilt = x509_parser::parse_x509_certificate(root_issuer.der())
            .map_err(|error| invalid(error.to_string()))?
            .1;
        if rebuilt.subject().as_raw() != parsed.subject().as_raw() {
            return Err(invalid(format!(
                "its subject is not \"O={ORGANIZATION}, CN={ROOT_COMMON_NAME}\""
            )));
        }
        Ok(Self {
            directory: directory.to_owned(),
            root_key,
            root_issuer,
            root_der,
            root_not_after,
        })
    }

    /// The root certificate, DER (what clients pass as their explicit anchor).
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// Where the root certificate's PEM is.
    pub fn root_pem_path(&self) -> PathBuf {
        self.directory.join(ROOT_CERTIFICATE_FILE)
    }

    /// The root as a trust anchor.
    ///
    /// # Errors
    /// [`AttesterError::DevCaInvalid`] (already checked at load, so not expected).
    pub fn trust_anchor(&self) -> Result<TrustAnchor, AttesterError> {
        TrustAnchor::from_der_explicit(&self.root_der).map_err(|error| {
            AttesterError::DevCaInvalid {
                path: self.root_pem_path(),
                reason: error.to_string(),
            }
        })
    }

    fn issue_intermediate(&self, now: OffsetDateTime) -> Result<Intermediate, AttesterError> {
        let key = Zeroizing::new(
            KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384)
                .map_err(|error| generation("development intermediate key", error))?,
        );
        let serial = random_serial()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(&format!(
            "attested-inference development intermediate {}",
            hex::encode(&serial.to_bytes()[..8])
        ));
        params.serial_number = Some(serial);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = (now + INTERMEDIATE_LIFETIME).min(self.root_not_after);
        let not_after = params.not_after;
        let certificate = params
            .signed_by(&*key, &self.root_issuer, &self.root_key)
            .map_err(|error| generation("development intermediate certificate", error))?;
        Ok(Intermediate {
            der: certificate.der().to_vec(),
            certificate,
            key,
            not_after,
        })
    }
}

struct Intermediate {
    certificate: Certificate,
    der: Vec<u8>,
    key: Zeroizing<KeyPair>,
    not_after: OffsetDateTime,
}

/// The development attester (see the module documentation).
pub struct DevAttester {
    ca: DevCa,
    measurements: DevMeasurements,
    module_id: String,
    intermediate: Mutex<Intermediate>,
}

impl std::fmt::Debug for DevAttester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAttester")
            .field("ca", &self.ca)
            .field("module_id", &self.module_id)
            .finish_non_exhaustive()
    }
}

impl DevAttester {
    /// An attester signing with `ca` and reporting `measurements`. Produces one document and
    /// verifies it under the root with the project's verifier before returning, so a CA that
    /// cannot produce acceptable documents is refused at boot rather than at the first client.
    ///
    /// # Errors
    /// [`AttesterError::SelfCheckFailed`] or a generation error.
    pub fn new(ca: DevCa, measurements: DevMeasurements) -> Result<Self, AttesterError> {
        let now = now_datetime()?;
        let intermediate = ca.issue_intermediate(now)?;
        let mut instance = [0u8; 8];
        fill_random(&mut instance)?;
        let attester = Self {
            ca,
            measurements,
            module_id: format!("i-development-enc{}", hex::encode(instance)),
            intermediate: Mutex::new(intermediate),
        };
        attester.self_check()?;
        Ok(attester)
    }

    fn self_check(&self) -> Result<(), AttesterError> {
        let request = AttestationRequest {
            public_key: None,
            user_data: Some(b"development attester self-check".to_vec()),
            nonce: None,
        };
        let document = self.attest(&request)?;
        let verifier = Verifier::new(self.ca.trust_anchor()?);
        let policy = Policy::new().expect_pcr(0, self.measurements.pcrs[0].to_vec());
        verifier
            .verify(&document, &policy, UnixMillis::now())
            .map_err(|error| AttesterError::SelfCheckFailed(Box::new(error)))?;
        Ok(())
    }

    /// The CA this attester signs with.
    pub fn ca(&self) -> &DevCa {
        &self.ca
    }

    /// The PCRs this attester reports.
    pub fn measurements(&self) -> &DevMeasurements {
        &self.measurements
    }

    /// The `module_id` of this attester's documents.
    pub fn module_id(&self) -> &str {
        &self.module_id
    }

    fn document_at(
        &self,
        request: &AttestationRequest,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, AttesterError> {
        // The leaf key exists only for this document and is dropped (zeroized) right after.
        let rng = SystemRandom::new();
        let leaf_pkcs8 = Zeroizing::new(
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
                .map_err(|error| generation("development leaf key", error))?
                .as_ref()
                .to_vec(),
        );
        let leaf_signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, leaf_pkcs8.as_slice())
                .map_err(|error| generation("development leaf key", error))?;
        let leaf_key = Zeroizing::new(
            KeyPair::try_from(leaf_pkcs8.as_slice())
                .map_err(|error| generation("development leaf key", error))?,
        );

        let mut params = CertificateParams::default();
        params.distinguished_name = name(&format!("{}.development", self.module_id));
        params.serial_number = Some(random_serial()?);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = now - BACKDATE;
        params.not_after = now + DEV_LEAF_LIFETIME;

        let (leaf_der, intermediate_der) = {
            let mut intermediate = self
                .intermediate
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if intermediate.not_after < params.not_after {
                *intermediate = self.ca.issue_intermediate(now)?;
            }
            let leaf = params
                .signed_by(&*leaf_key, &intermediate.certificate, &intermediate.key)
                .map_err(|error| generation("development leaf certificate", error))?;
            (leaf.der().to_vec(), intermediate.der.clone())
        };

        let timestamp_ms = u64::try_from(now.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| clock_error("before the Unix epoch"))?;
        let payload = self.payload(
            request,
            timestamp_ms,
            &leaf_der,
            &[self.ca.root_der(), &intermediate_der],
        );
        let signature = leaf_signer
            .sign(&rng, &sig_structure(&payload))
            .map_err(|error| generation("ES384 document signature", error))?;

        let mut writer = CborWriter::new();
        writer
            .array(4)
            .bytes(&ES384_PROTECTED_HEADER)
            .map(0)
            .bytes(&payload)
            .bytes(signature.as_ref());
        Ok(writer.finish())
    }

    /// The payload map, fields in the NSM's order.
    fn payload(
        &self,
        request: &AttestationRequest,
        timestamp_ms: u64,
        leaf_der: &[u8],
        cabundle: &[&[u8]],
    ) -> Vec<u8> {
        let mut writer = CborWriter::new();
        writer
            .map(9)
            .text("module_id")
            .text(&self.module_id)
            .text("digest")
            .text("SHA384")
            .text("timestamp")
            .unsigned(timestamp_ms)
            .text("pcrs")
            .map(PCR_COUNT);
        for (index, value) in self.measurements.pcrs.iter().enumerate() {
            writer.unsigned(index as u64).bytes(value);
        }
        writer
            .text("certificate")
            .bytes(leaf_der)
            .text("cabundle")
            .array(cabundle.len());
        for der in cabundle {
            writer.bytes(der);
        }
        writer
            .text("public_key")
            .optional_bytes(request.public_key.as_deref())
            .text("user_data")
            .optional_bytes(request.user_data.as_deref())
            .text("nonce")
            .optional_bytes(request.nonce.as_deref());
        writer.finish()
    }
}

impl Attester for DevAttester {
    fn attest(&self, request: &AttestationRequest) -> Result<Vec<u8>, AttesterError> {
        request.check_limits()?;
        let document = self.document_at(request, now_datetime()?)?;
        check_document_matches(&document, request)?;
        Ok(document)
    }

    fn kind(&self) -> AttesterKind {
        AttesterKind::Development
    }
}

/// `["Signature1", protected, h'', payload]`, the bytes ES384 signs: the verifier's own
/// definition, so the development attester signs exactly what verifiers check.
fn sig_structure(payload: &[u8]) -> Vec<u8> {
    attestation_verifier::cose::sig_structure(&ES384_PROTECTED_HEADER, payload)
}

fn root_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(ROOT_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, ORGANIZATION);
    name.push(DnType::CommonName, common_name);
    name
}

fn random_serial() -> Result<SerialNumber, AttesterError> {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes)?;
    // Positive and without a leading zero byte, as RFC 5280 wants serials.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn fill_random(out: &mut [u8]) -> Result<(), AttesterError> {
    SystemRandom::new()
        .fill(out)
        .map_err(|error| generation("random bytes", error))
}

fn now_datetime() -> Result<OffsetDateTime, AttesterError> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| clock_error("before the Unix epoch"))?;
    let nanos = i128::try_from(since_epoch.as_nanos()).map_err(|_| clock_error("too far"))?;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|error| clock_error(&error.to_string()))
}

fn clock_error(reason: &str) -> AttesterError {
    AttesterError::Clock {
        reason: reason.to_owned(),
    }
}

fn generation(what: &'static str, error: impl std::fmt::Display) -> AttesterError {
    AttesterError::Generation {
        what,
        reason: error.to_string(),
    }
}

fn create_private_directory(directory: &Path) -> Result<(), AttesterError> {
    use std::os::unix::fs::DirBuilderExt;
    if directory.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .map_err(|source| AttesterError::DevCaIo {
            action: "create directory",
            path: directory.to_owned(),
            source,
        })
}

/// Writes a file that must not exist yet (never overwrites a CA file).
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), AttesterError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io_error = |source| AttesterError::DevCaIo {
        action: "write",
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_error)?;
    file.write_all(contents).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

pub(crate) fn sha384(bytes: &[u8]) -> [u8; 48] {
    let mut out = [0u8; 48];
    out.copy_from_slice(digest::digest(&digest::SHA384, bytes).as_ref());
    out
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_are_documented_hashes_and_not_debug() {
        let model = [0xabu8; 32];
        let measurements = DevMeasurements::new([7u8; 48], &model);
        assert_eq!(measurements.pcr(0), Some(&[7u8; 48]));
        assert_eq!(measurements.pcr(1), Some(&sha384(DEV_PCR1_MARKER)));
        let text = DevMeasurements::configuration_text(&model);
        assert_eq!(
            text,
            format!(
                "attested-inference development configuration v1\nmodel_sha256={}\n",
                "ab".repeat(32)
            )
        );
        assert_eq!(measurements.pcr(2), Some(&sha384(text.as_bytes())));
        for index in 3..16 {
            assert_eq!(measurements.pcr(index), Some(&[0u8; 48]));
        }
        assert_eq!(measurements.pcr(16), None);
        // Another model gives another PCR2.
        assert_ne!(
            DevMeasurements::new([7u8; 48], &[0u8; 32]).pcr(2),
            measurements.pcr(2)
        );
    }

    #[test]
    fn enclaves_starting_at_once_on_a_new_directory_share_one_root() {
        let directory = std::env::temp_dir().join(format!(
            "dev-ca-race-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos())
                .unwrap_or_default()
        ));
        let roots: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| DevCa::load_or_create(&directory).map(|ca| ca.root_der)))
                .collect();
            starts
                .into_iter()
                .map(|start| start.join().expect("thread").expect("load or create"))
                .collect()
        });
        let _ = fs::remove_dir_all(&directory);
        assert!(roots.windows(2).all(|pair| pair[0] == pair[1]));
    }

    #[test]
    fn running_executable_is_measured() {
        let measurements = DevMeasurements::for_running_executable(&[1u8; 32]).expect("measure");
        let exe = fs::read(std::env::current_exe().expect("exe")).expect("read exe");
        assert_eq!(measurements.pcr(0), Some(&sha384(&exe)));
    }

    #[test]
    fn sig_structure_matches_rfc_9052_layout() {
        let structure = sig_structure(&[0xa0]);
        assert_eq!(
            structure,
            [
                0x84, 0x6a, b'S', b'i', b'g', b'n', b'a', b't', b'u', b'r', b'e', b'1', 0x44, 0xa1,
                0x01, 0x38, 0x22, 0x40, 0x41, 0xa0
            ]
        );
    }
}
