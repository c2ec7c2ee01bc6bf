//! The verifier: document structure, chain to the anchor, ES384 signature, then policy.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::anchor::TrustAnchor;
use crate::chain::{ExaminedCertificate, Role, check_issued_by, check_validity, examine};
use crate::crypto::{P384Key, sha256, verify_es384_with};
use crate::document::{AttestationDocument, parse_document};
use crate::error::{CertificateRef, ChainPosition, VerifyError, to_hex};
use crate::policy::Policy;
use crate::time::UnixMillis;

/// Most certificates remembered per role; a full cache is emptied rather than grown (genuine
/// traffic sees a handful of regional and zonal CAs, and one leaf per enclave, at a time).
const MAX_CACHED_CERTIFICATES: usize = 1024;

/// One certificate of a verified chain, as far as later links and the signature need it.
#[derive(Debug)]
struct CertificateNode {
    sha256: [u8; 32],
    subject: String,
    subject_raw: Vec<u8>,
    not_before: UnixMillis,
    not_after: UnixMillis,
    path_len_constraint: Option<u32>,
    key: Arc<P384Key>,
}

/// A cached fact: the certificate with this hash was verified as issued by `issuer_sha256`
/// and as well-formed for its role. Its validity is still checked at every use.
#[derive(Debug)]
struct CachedCertificate {
    issuer_sha256: [u8; 32],
    node: Arc<CertificateNode>,
}

/// Verified links, one map per role (a certificate's checks depend on its role).
#[derive(Debug, Default)]
struct LinkCache {
    intermediates: HashMap<[u8; 32], CachedCertificate>,
    leaves: HashMap<[u8; 32], CachedCertificate>,
}

impl LinkCache {
    fn map(&self, role: Role) -> &HashMap<[u8; 32], CachedCertificate> {
        match role {
            Role::CertificateAuthority => &self.intermediates,
            Role::Leaf => &self.leaves,
        }
    }
    fn map_mut(&mut self, role: Role) -> &mut HashMap<[u8; 32], CachedCertificate> {
        match role {
            Role::CertificateAuthority => &mut self.intermediates,
            Role::Leaf => &mut self.leaves,
        }
    }
}

/// Signature verdicts computed ahead of the chain walk (see `Verifier::precheck_signatures`).
#[derive(Debug, Default)]
struct PrecheckedSignatures {
    links: Vec<PrecheckedLink>,
    /// The leaf's SHA-256 and whether the document's ES384 signature verified under its key.
    document: Option<([u8; 32], bool)>,
}

/// One certificate examined ahead, with the verdict on its signature under its issuer's key.
#[derive(Debug)]
struct PrecheckedLink {
    position: ChainPosition,
    issuer_sha256: [u8; 32],
    examined: ExaminedCertificate,
    signature_valid: bool,
}

impl PrecheckedSignatures {
    /// The pre-checked link for exactly this position, certificate and issuer, if any.
    fn take(
        &mut self,
        position: ChainPosition,
        sha256: &[u8; 32],
        issuer_sha256: &[u8; 32],
    ) -> Option<PrecheckedLink> {
        let index = self.links.iter().position(|link| {
            link.position == position
                && link.examined.sha256 == *sha256
                && link.issuer_sha256 == *issuer_sha256
        })?;
        Some(self.links.swap_remove(index))
    }
}

/// Verifies Nitro attestation documents against one trust anchor.
#[derive(Debug)]
pub struct Verifier {
    anchor: TrustAnchor,
    root: Arc<CertificateNode>,
    cache: Option<RwLock<LinkCache>>,
    /// Threads a cold verification spreads its signature checks over (looked up once: the
    /// standard library reads cgroup limits from the filesystem for it).
    signature_threads: usize,
}

/// One certificate of a verified chain, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateSummary {
    /// Position in the chain.
    pub position: ChainPosition,
    /// Subject distinguished name.
    pub subject: String,
    /// notBefore.
    pub not_before: UnixMillis,
    /// notAfter.
    pub not_after: UnixMillis,
    /// SHA-256 of the DER.
    pub sha256: [u8; 32],
}

/// A document that passed every check. Only [`Verifier::verify`] creates one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAttestation {
    module_id: String,
    timestamp: UnixMillis,
    pcrs: Vec<(u8, Vec<u8>)>,
    public_key: Option<Vec<u8>>,
    user_data: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
    chain: Vec<CertificateSummary>,
    verified_at: UnixMillis,
    debug_mode: bool,
    anchor_sha256: [u8; 32],
}

impl VerifiedAttestation {
    /// The enclave's `module_id`.
    pub fn module_id(&self) -> &str {
        &self.module_id
    }
    /// When the NSM produced the document.
    pub fn timestamp(&self) -> UnixMillis {
        self.timestamp
    }
    /// PCRs as (index, value), sorted by index.
    pub fn pcrs(&self) -> &[(u8, Vec<u8>)] {
        &self.pcrs
    }
    /// One PCR by index.
    pub fn pcr(&self, index: u8) -> Option<&[u8]> {
        self.pcrs
            .iter()
            .find(|(pcr_index, _)| *pcr_index == index)
            .map(|(_, value)| value.as_slice())
    }
    /// `public_key`, when present.
    pub fn public_key(&self) -> Option<&[u8]> {
        self.public_key.as_deref()
    }
    /// `user_data`, when present (possibly empty).
    pub fn user_data(&self) -> Option<&[u8]> {
        self.user_data.as_deref()
    }
    /// `nonce`, when present.
    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_deref()
    }
    /// The verified chain, root first, leaf last.
    pub fn chain(&self) -> &[CertificateSummary] {
        &self.chain
    }
    /// The time the document was verified at.
    pub fn verified_at(&self) -> UnixMillis {
        self.verified_at
    }
    /// True when PCR0, 1 and 2 are all zero (accepted only under `allow_debug_mode`).
    pub fn is_debug_mode(&self) -> bool {
        self.debug_mode
    }
    /// SHA-256 of the trust anchor the chain ends in.
    pub fn anchor_sha256(&self) -> [u8; 32] {
        self.anchor_sha256
    }
}

impl Verifier {
    /// A verifier for `anchor` that re-verifies every certificate of every document.
    pub fn new(anchor: TrustAnchor) -> Self {
        let root = Arc::new(CertificateNode {
            sha256: anchor.inner.sha256,
            subject: anchor.inner.subject.clone(),
            subject_raw: anchor.inner.subject_raw.clone(),
            not_before: anchor.inner.not_before,
            not_after: anchor.inner.not_after,
            path_len_constraint: anchor.inner.path_len_constraint,
            key: Arc::clone(&anchor.inner.key),
        });
        Self {
            anchor,
            root,
            cache: None,
            signature_threads: std::thread::available_parallelism()
                .map_or(1, std::num::NonZero::get),
        }
    }

    /// A verifier that remembers verified certificate links (keyed by the SHA-256 of the
    /// certificate's DER and of its issuer's), so that later documents from the same region
    /// skip the intermediates' signatures, and later documents from the same enclave (which
    /// keeps its leaf for about three hours) also the leaf's: only the document signature is
    /// then verified. Every certificate's validity is still checked at every use, and the
    /// anchor is still compared byte for byte.
    pub fn with_intermediate_cache(anchor: TrustAnchor) -> Self {
        let mut verifier = Self::new(anchor);
        verifier.cache = Some(RwLock::new(LinkCache::default()));
        verifier
    }

    /// The anchor this verifier trusts.
    pub fn anchor(&self) -> &TrustAnchor {
        &self.anchor
    }

    /// Verifies `document` (raw COSE_Sign1 bytes) at the explicit time `at`: for a live
    /// document pass [`UnixMillis::now`], for an archived one the time it must be judged at.
    ///
    /// # Errors
    /// The first failed check, as a [`VerifyError`].
    pub fn verify(
        &self,
        document: &[u8],
        policy: &Policy,
        at: UnixMillis,
    ) -> Result<VerifiedAttestation, VerifyError> {
        let document = parse_document(document)?;
        self.verify_parsed(&document, policy, at)
    }

    /// Like [`Verifier::verify`] for a document already parsed with
    /// [`crate::parse_document`].
    ///
    /// # Errors
    /// The first failed check, as a [`VerifyError`].
    pub fn verify_parsed(
        &self,
        document: &AttestationDocument,
        policy: &Policy,
        at: UnixMillis,
    ) -> Result<VerifiedAttestation, VerifyError> {
        let signed_bytes = document.signed_bytes();
        let mut prechecked = self.precheck_signatures(document, &signed_bytes);
        let mut chain = Vec::with_capacity(document.cabundle.len() + 1);
        let leaf = self.verify_chain(document, at, &mut chain, &mut prechecked)?;
        let signature_valid = match prechecked.document {
            Some((leaf_sha256, verdict)) if leaf_sha256 == leaf.sha256 => verdict,
            _ => verify_es384_with(&leaf.key, &signed_bytes, &document.signature).is_ok(),
        };
        if !signature_valid {
            return Err(VerifyError::SignatureInvalid);
        }
        let leaf = chain
            .last()
            .map(|summary| (summary.not_before, summary.not_after));
        let debug_mode = apply_policy(document, policy, at, leaf)?;
        Ok(VerifiedAttestation {
            module_id: document.module_id.clone(),
            timestamp: document.timestamp,
            pcrs: document.pcrs.clone(),
            public_key: document.public_key.clone(),
            user_data: document.user_data.clone(),
            nonce: document.nonce.clone(),
            chain,
            verified_at: at,
            debug_mode,
            anchor_sha256: self.root.sha256,
        })
    }

    /// Computes, spread over the available cores, the signature checks a verification will
    /// need: every chain link not already cached, and the document's ES384 signature. A cold
    /// verification makes five P-384 verifications, which dominate its time; on two cores
    /// this takes the time of three. Nothing is decided here: the sequential walk that follows
    /// makes every check in its usual order, reports the same first error, and only looks
    /// verdicts up instead of computing them. Certificates that fail to parse end the
    /// pre-check (the walk reports them); with one core, or fewer than two checks to make
    /// (a warm verification), nothing is pre-checked.
    fn precheck_signatures(
        &self,
        document: &AttestationDocument,
        signed_bytes: &[u8],
    ) -> PrecheckedSignatures {
        let threads = self.signature_threads;
        let mut prechecked = PrecheckedSignatures::default();
        // A document under another root is refused before any signature is computed; the
        // pre-check must not make refusing it more expensive.
        if threads < 2 || sha256(&document.cabundle[0]) != self.root.sha256 {
            return prechecked;
        }
        // Below the root, in chain order: the intermediates, then the leaf.
        let below_root = document
            .cabundle
            .iter()
            .enumerate()
            .skip(1)
            .map(|(index, der)| {
                (
                    der.as_slice(),
                    ChainPosition::Intermediate(index),
                    Role::CertificateAuthority,
                )
            })
            .chain(std::iter::once((
                document.certificate.as_slice(),
                ChainPosition::Leaf,
                Role::Leaf,
            )));
        let mut issuer_sha256 = self.root.sha256;
        let mut issuer_key = Arc::clone(&self.root.key);
        // Each link not cached, with the key that must have signed it.
        let mut links: Vec<(PrecheckedLink, Arc<P384Key>)> = Vec::new();
        let mut leaf = None;
        for (der, position, role) in below_root {
            let hash = sha256(der);
            let key = match self.cached_link(&hash, role, &issuer_sha256) {
                Some(node) => Arc::clone(&node.key),
                None => {
                    let Ok(examined) = examine(der, position, role) else {
                        break;
                    };
                    let key = Arc::clone(&examined.key);
                    let link = PrecheckedLink {
                        position,
                        issuer_sha256,
                        examined,
                        signature_valid: false,
                    };
                    links.push((link, issuer_key));
                    key
                }
            };
            if role == Role::Leaf {
                leaf = Some((hash, Arc::clone(&key)));
            }
            issuer_sha256 = hash;
            issuer_key = key;
        }
        let checks = links.len() + usize::from(leaf.is_some());
        if checks < 2 {
            return prechecked;
        }

        let verify_link = |(link, issuer_key): &(PrecheckedLink, Arc<P384Key>)| {
            issuer_key
                .verify(&link.examined.tbs, &link.examined.signature_der)
                .is_ok()
        };
        let verify_document =
            |key: &P384Key| verify_es384_with(key, signed_bytes, &document.signature).is_ok();
        // The document's check runs on this thread; the link checks are shared out so that
        // each thread makes about the same number of verifications.
        let per_thread = checks.div_ceil(threads.min(checks));
        let this_thread = per_thread.saturating_sub(usize::from(leaf.is_some()));
        let (mine, theirs) = links.split_at(this_thread.min(links.len()));
        let verdicts = std::thread::scope(|scope| {
            let handles: Vec<_> = theirs
                .chunks(per_thread)
                .map(|chunk| scope.spawn(move || chunk.iter().map(verify_link).collect::<Vec<_>>()))
                .collect();
            let document_verdict = leaf
                .as_ref()
                .map(|(hash, key)| (*hash, verify_document(key)));
            let mut link_verdicts: Vec<bool> = mine.iter().map(verify_link).collect();
            for handle in handles {
                // A panicked check leaves nothing pre-checked: the walk then computes (and
                // fails) it itself.
                link_verdicts.extend(handle.join().ok()?);
            }
            Some((link_verdicts, document_verdict))
        });
        let Some((link_verdicts, document_verdict)) = verdicts else {
            return prechecked;
        };
        prechecked.document = document_verdict;
        prechecked.links = links
            .into_iter()
            .zip(link_verdicts)
            .map(|((link, _), signature_valid)| PrecheckedLink {
                signature_valid,
                ..link
            })
            .collect();
        prechecked
    }

    /// Walks root → intermediates → leaf and returns the leaf's key.
    fn verify_chain(
        &self,
        document: &AttestationDocument,
        at: UnixMillis,
        chain: &mut Vec<CertificateSummary>,
        prechecked: &mut PrecheckedSignatures,
    ) -> Result<Arc<CertificateNode>, VerifyError> {
        // The root is the configured anchor, byte for byte; the document's own first entry
        // is never trusted on its own.
        let root_der = &document.cabundle[0];
        let root_sha256 = sha256(root_der);
        if root_sha256 != self.root.sha256 {
            return Err(VerifyError::UntrustedRoot {
                found_sha256: to_hex(&root_sha256),
                expected_sha256: to_hex(&self.root.sha256),
            });
        }
        let mut cas: Vec<Arc<CertificateNode>> = Vec::with_capacity(document.cabundle.len());
        cas.push(Arc::clone(&self.root));
        for (index, der) in document.cabundle.iter().enumerate().skip(1) {
            let position = ChainPosition::Intermediate(index);
            let parent = Arc::clone(&cas[cas.len() - 1]);
            let node = self.linked(
                der,
                position,
                Role::CertificateAuthority,
                &parent,
                prechecked,
            )?;
            cas.push(node);
        }
        for (index, node) in cas.iter().enumerate() {
            let position = position_of(index);
            check_validity(node.not_before, node.not_after, at, || CertificateRef {
                position,
                subject: node.subject.clone(),
            })?;
            // CAs below this one, excluding the leaf (RFC 5280 4.2.1.9).
            let cas_below = cas.len() - 1 - index;
            if let Some(limit) = node.path_len_constraint
                && cas_below > limit as usize
            {
                return Err(VerifyError::PathLengthExceeded {
                    certificate: CertificateRef {
                        position,
                        subject: node.subject.clone(),
                    },
                    path_len_constraint: limit,
                    cas_below,
                });
            }
            chain.push(CertificateSummary {
                position,
                subject: node.subject.clone(),
                not_before: node.not_before,
                not_after: node.not_after,
                sha256: node.sha256,
            });
        }

        let issuer = &cas[cas.len() - 1];
        let leaf = self.linked(
            &document.certificate,
            ChainPosition::Leaf,
            Role::Leaf,
            issuer,
            prechecked,
        )?;
        check_validity(leaf.not_before, leaf.not_after, at, || CertificateRef {
            position: ChainPosition::Leaf,
            subject: leaf.subject.clone(),
        })?;
        chain.push(CertificateSummary {
            position: ChainPosition::Leaf,
            subject: leaf.subject.clone(),
            not_before: leaf.not_before,
            not_after: leaf.not_after,
            sha256: leaf.sha256,
        });
        Ok(leaf)
    }

    /// The cached node for `der` in `role` when this exact link (the same certificate issued
    /// by the certificate whose hash is `issuer_sha256`) was verified before.
    fn cached_link(
        &self,
        sha256: &[u8; 32],
        role: Role,
        issuer_sha256: &[u8; 32],
    ) -> Option<Arc<CertificateNode>> {
        let cached = self
            .cache
            .as_ref()?
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cached
            .map(role)
            .get(sha256)
            .filter(|entry| entry.issuer_sha256 == *issuer_sha256)
            .map(|entry| Arc::clone(&entry.node))
    }

    /// A certificate issued by `parent` in `role`, from the cache when this exact link was
    /// verified before, else examined and verified now (and remembered). A link pre-checked
    /// for this position, certificate and issuer reuses that examination and verdict.
    fn linked(
        &self,
        der: &[u8],
        position: ChainPosition,
        role: Role,
        parent: &CertificateNode,
        prechecked: &mut PrecheckedSignatures,
    ) -> Result<Arc<CertificateNode>, VerifyError> {
        let hash = sha256(der);
        if let Some(node) = self.cached_link(&hash, role, &parent.sha256) {
            return Ok(node);
        }
        let (examined, signature_verdict) = match prechecked.take(position, &hash, &parent.sha256) {
            Some(link) => (link.examined, Some(link.signature_valid)),
            None => (examine(der, position, role)?, None),
        };
        check_issued_by(
            &examined,
            position,
            &parent.subject,
            &parent.subject_raw,
            &parent.key,
            signature_verdict,
        )?;
        let node = Arc::new(CertificateNode {
            sha256: examined.sha256,
            subject: examined.subject,
            subject_raw: examined.subject_raw,
            not_before: examined.not_before,
            not_after: examined.not_after,
            path_len_constraint: examined.path_len_constraint,
            key: examined.key,
        });
        if let Some(cache) = &self.cache {
            let mut cached = cache
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let map = cached.map_mut(role);
            if map.len() >= MAX_CACHED_CERTIFICATES {
                map.clear();
            }
            map.insert(
                node.sha256,
                CachedCertificate {
                    issuer_sha256: parent.sha256,
                    node: Arc::clone(&node),
                },
            );
        }
        Ok(node)
    }
}

fn position_of(index: usize) -> ChainPosition {
    if index == 0 {
        ChainPosition::Root
    } else {
        ChainPosition::Intermediate(index)
    }
}

/// PCR0, 1 and 2 all zero: an enclave started in debug mode. A missing one counts as zero,
/// so that dropping PCRs cannot hide debug mode.
fn is_debug_mode(document: &AttestationDocument) -> bool {
    (0..=2u8).all(|index| {
        document
            .pcr(index)
            .is_none_or(|value| value.iter().all(|&byte| byte == 0))
    })
}

/// Applies `policy`; returns whether the document is in debug mode.
fn apply_policy(
    document: &AttestationDocument,
    policy: &Policy,
    at: UnixMillis,
    leaf_validity: Option<(UnixMillis, UnixMillis)>,
) -> Result<bool, VerifyError> {
    let timestamp = document.timestamp;
    if let Some((not_before, not_after)) = leaf_validity
        && (timestamp < not_before || timestamp > not_after)
    {
        return Err(VerifyError::TimestampOutsideLeafValidity {
            timestamp,
            not_before,
            not_after,
        });
    }
    let skew_ms = u64::try_from(policy.clock_skew.as_millis()).unwrap_or(u64::MAX);
    if timestamp.0 > at.0.saturating_add(skew_ms) {
        return Err(VerifyError::TimestampInFuture {
            timestamp,
            verification_time: at,
        });
    }
    if let Some(max_age) = policy.max_age {
        let age_ms = at.0.saturating_sub(timestamp.0);
        let max_age_ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        if age_ms > max_age_ms {
            return Err(VerifyError::TooOld { age_ms, max_age_ms });
        }
    }
    let debug_mode = is_debug_mode(document);
    if debug_mode && !policy.allow_debug {
        return Err(VerifyError::DebugModeRejected);
    }
    for (index, expected) in &policy.expected_pcrs {
        let actual = document
            .pcr(*index)
            .ok_or(VerifyError::PcrMissing { index: *index })?;
        if actual != expected.as_slice() {
            return Err(VerifyError::PcrMismatch {
                index: *index,
                expected_hex: to_hex(expected),
                actual_hex: to_hex(actual),
            });
        }
    }
    if let Some(expected) = &policy.expected_nonce {
        let actual = document.nonce().ok_or(VerifyError::NonceMissing)?;
        if actual != expected.as_slice() {
            return Err(VerifyError::NonceMismatch {
                expected_hex: to_hex(expected),
                actual_hex: to_hex(actual),
            });
        }
    }
    if let Some(expected) = &policy.expected_user_data {
        let actual = document.user_data().ok_or(VerifyError::UserDataMissing)?;
        if actual != expected.as_slice() {
            return Err(VerifyError::UserDataMismatch {
                expected_hex: to_hex(expected),
                actual_hex: to_hex(actual),
            });
        }
    }
    if let Some(expected) = &policy.expected_public_key {
        let actual = document.public_key().ok_or(VerifyError::PublicKeyMissing)?;
        if actual != expected.as_slice() {
            return Err(VerifyError::PublicKeyMismatch {
                expected_hex: to_hex(expected),
                actual_hex: to_hex(actual),
            });
        }
    }
    Ok(debug_mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real_document(name: &str) -> Vec<u8> {
        let dir = std::env::var_os("NITRO_VECTORS_DIR").map_or_else(
            || {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../shared/vectors/nitro")
            },
            std::path::PathBuf::from,
        );
        let path = dir.join(name);
        std::fs::read(&path).unwrap_or_else(|error| {
            panic!(
                "real Nitro document {} not found ({error}): put the shared vectors in \
                 shared/vectors/nitro/ beside the checkout, or set NITRO_VECTORS_DIR",
                path.display()
            )
        })
    }

    /// The parallel pre-check only moves work: for the real document and every single-byte
    /// flip of it, the verdict (and the first error) equals the one-thread walk's.
    #[test]
    fn parallel_signature_checks_decide_exactly_like_the_sequential_walk() {
        let document = real_document("marlin_aws_2024-12-13.cbor");
        let at = parse_document(&document).expect("parses").timestamp();
        let policy = Policy::new();
        let parallel = Verifier {
            signature_threads: 2,
            ..Verifier::new(TrustAnchor::aws_nitro_root_g1())
        };
        let sequential = Verifier {
            signature_threads: 1,
            ..Verifier::new(TrustAnchor::aws_nitro_root_g1())
        };
        let outcome = |verifier: &Verifier, bytes: &[u8]| {
            format!("{:?}", verifier.verify(bytes, &policy, at))
        };
        assert!(parallel.verify(&document, &policy, at).is_ok());
        let mut flipped = document.clone();
        for index in 0..flipped.len() {
            flipped[index] ^= 0x01;
            assert_eq!(
                outcome(&parallel, &flipped),
                outcome(&sequential, &flipped),
                "byte {index}"
            );
            flipped[index] ^= 0x01;
        }
    }
}
