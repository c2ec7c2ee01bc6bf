//! The enclave's identity, generated inside the process at boot and never written or logged:
//! - the secp256k1 signing key that signs receipts (its Ethereum address is the enclave's
//!   on-chain identity), and
//! - the TLS key with its self-signed certificate (TLS ends inside the enclave).
//!
//! The boot attestation document binds both: `public_key` = the signing key (65-byte
//! uncompressed SEC1), `user_data` = `0x01 || sha256(TLS SPKI DER) || model_sha256 || operator`
//! (the operator is zeros until the parent binds one: `crate::boot::BootClaims`).

use std::fmt;
use std::sync::Arc;

use attestation_verifier::binding::{BOOT_BINDING_BYTES, BootBinding};
use attestation_verifier::receipt::{
    EthereumAddress, RECOVERABLE_SIGNATURE_BYTES, Receipt, ReceiptClaims, address_hex,
    ethereum_address,
};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use k256::ecdsa::{RecoveryId, SigningKey};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use crate::attester::AttestationRequest;

/// ALPN protocols the server offers, most preferred first.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// How long the TLS certificate is valid. Clients trust the key through the attestation
/// document, not through the certificate's dates, and the key lives only as long as the
/// process; the window only has to cover any plausible uptime.
const TLS_CERTIFICATE_LIFETIME: time::Duration = time::Duration::days(3650);

/// Why an identity could not be created or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// A secret key is not a valid secp256k1 scalar (zero or not below the group order).
    #[error("the secret key is not a valid secp256k1 scalar")]
    InvalidSecretKey,
    /// Signing failed.
    #[error("secp256k1 signing failed: {reason}")]
    Signing {
        /// The library's reason.
        reason: String,
    },
    /// The TLS key or certificate could not be generated.
    #[error("cannot generate the TLS {what}: {reason}")]
    TlsGeneration {
        /// Key or certificate.
        what: &'static str,
        /// The library's reason.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("cannot build the TLS server configuration: {0}")]
    TlsConfig(#[from] rustls::Error),
}

/// The receipt signing key. No `Debug` or `Display` shows the secret; the key is zeroized on
/// drop (k256's `SigningKey` clears its scalar).
pub struct EnclaveSigningKey {
    key: SigningKey,
    public_key: [u8; 65],
    address: EthereumAddress,
}

impl fmt::Debug for EnclaveSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnclaveSigningKey")
            .field("address", &address_hex(&self.address))
            .finish_non_exhaustive()
    }
}

impl EnclaveSigningKey {
    /// A fresh key from the system random generator (the NSM feeds the enclave kernel's pool).
    ///
    /// # Errors
    /// [`IdentityError::Random`] when no randomness is available.
    pub fn generate() -> Result<Self, IdentityError> {
        let rng = SystemRandom::new();
        // A random 32-byte string is a valid scalar except with probability ~2^-128; retry
        // rather than reduce, so the key stays uniform.
        for _ in 0..16 {
            let mut secret = Zeroizing::new([0u8; 32]);
            rng.fill(secret.as_mut())
                .map_err(|_| IdentityError::Random)?;
            if let Ok(key) = Self::from_secret_bytes(&secret) {
                return Ok(key);
            }
        }
        Err(IdentityError::Random)
    }

    /// The key with this secret scalar (big-endian). For test vectors and tools; the enclave
    /// itself only ever uses [`EnclaveSigningKey::generate`].
    ///
    /// # Errors
    /// [`IdentityError::InvalidSecretKey`] for zero or a value not below the group order.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Result<Self, IdentityError> {
        let key = SigningKey::from_slice(secret).map_err(|_| IdentityError::InvalidSecretKey)?;
        let point = key.verifying_key().to_encoded_point(false);
        let mut public_key = [0u8; 65];
        public_key.copy_from_slice(point.as_bytes());
        let address = ethereum_address(&public_key).map_err(|_| IdentityError::InvalidSecretKey)?;
        Ok(Self {
            key,
            public_key,
            address,
        })
    }

    /// The public key, uncompressed SEC1 `0x04 || x || y` (the document's `public_key`).
    pub fn public_key_uncompressed(&self) -> [u8; 65] {
        self.public_key
    }

    /// The Ethereum address (keccak256 of x || y, last 20 bytes).
    pub fn address(&self) -> EthereumAddress {
        self.address
    }

    /// Signs any 32-byte digest (a receipt's EIP-712 digest, or the on-chain fulfilment's):
    /// `r || s || v`, v = 27 or 28, low-S, deterministic (RFC 6979).
    ///
    /// # Errors
    /// [`IdentityError::Signing`].
    pub fn sign_digest(
        &self,
        digest: &[u8; 32],
    ) -> Result<[u8; RECOVERABLE_SIGNATURE_BYTES], IdentityError> {
        let (mut signature, mut recovery_id) =
            self.key
                .sign_prehash_recoverable(digest)
                .map_err(|error| IdentityError::Signing {
                    reason: error.to_string(),
                })?;
        // k256 already returns low-S; normalising here keeps the guarantee independent of it.
        if let Some(normalized) = signature.normalize_s() {
            signature = normalized;
            recovery_id = RecoveryId::new(!recovery_id.is_y_odd(), recovery_id.is_x_reduced());
        }
        let mut out = [0u8; RECOVERABLE_SIGNATURE_BYTES];
        out[..64].copy_from_slice(&signature.to_bytes());
        out[64] = 27 + recovery_id.to_byte();
        Ok(out)
    }

    /// Signs a receipt (docs/protocol.md §3) with the digest the verifier checks.
    ///
    /// # Errors
    /// [`IdentityError::Signing`].
    pub fn sign_receipt(&self, claims: &ReceiptClaims) -> Result<Receipt, IdentityError> {
        Ok(Receipt {
            claims: *claims,
            signature: self.sign_digest(&claims.digest())?.to_vec(),
        })
    }
}

/// The TLS key (ECDSA P-256) and its self-signed certificate. The PKCS#8 key is zeroized on
/// drop; rustls keeps its own copy inside the server configuration.
pub struct TlsIdentity {
    certificate_der: Vec<u8>,
    private_key_pkcs8: Zeroizing<Vec<u8>>,
    spki_der: Vec<u8>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("spki_sha256", &hex::encode(self.spki_sha256()))
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// A fresh P-256 key and a self-signed certificate naming `server_names` (DNS names or IP
    /// addresses). Clients trust the key through the attested SPKI hash, not the names.
    ///
    /// # Errors
    /// [`IdentityError::TlsGeneration`].
    pub fn generate(server_names: &[String]) -> Result<Self, IdentityError> {
        let generation = |what: &'static str| {
            move |error: rcgen::Error| IdentityError::TlsGeneration {
                what,
                reason: error.to_string(),
            }
        };
        // Zeroizing: rcgen keeps a PKCS#8 copy of the key, cleared on drop this way.
        let key = Zeroizing::new(
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generation("key"))?,
        );
        let mut params =
            CertificateParams::new(server_names.to_vec()).map_err(generation("certificate"))?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "attested-inference enclave");
        params.distinguished_name = name;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + TLS_CERTIFICATE_LIFETIME;
        let certificate = params
            .self_signed(&key)
            .map_err(generation("certificate"))?;
        Ok(Self {
            certificate_der: certificate.der().to_vec(),
            private_key_pkcs8: Zeroizing::new(key.serialize_der()),
            spki_der: key.public_key_der(),
        })
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The certificate's SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// SHA-256 of the SubjectPublicKeyInfo DER (what the boot document binds).
    pub fn spki_sha256(&self) -> [u8; 32] {
        BootBinding::for_tls_spki(&self.spki_der, [0u8; 32]).tls_spki_sha256
    }

    /// A rustls server configuration: TLS 1.3 only, this certificate, ALPN h2 then http/1.1.
    ///
    /// # Errors
    /// [`IdentityError::TlsConfig`] when rustls refuses the key or certificate.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, IdentityError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            self.private_key_pkcs8.as_slice().to_vec(),
        ));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.certificate_der.clone())],
                key,
            )?;
        config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// Everything the enclave generates at boot, and what its boot document must bind.
#[derive(Debug)]
pub struct EnclaveIdentity {
    /// The receipt signing key.
    pub signing_key: EnclaveSigningKey,
    /// The TLS key and certificate.
    pub tls: TlsIdentity,
    /// The hash of the model the enclave loaded and checked.
    pub model_sha256: [u8; 32],
}

impl EnclaveIdentity {
    /// Generates both keys for a model already loaded and hash-checked.
    ///
    /// # Errors
    /// An [`IdentityError`] from either key.
    pub fn generate(
        model_sha256: [u8; 32],
        server_names: &[String],
    ) -> Result<Self, IdentityError> {
        Ok(Self {
            signing_key: EnclaveSigningKey::generate()?,
            tls: TlsIdentity::generate(server_names)?,
            model_sha256,
        })
    }

    /// The boot binding: TLS SPKI hash and model hash, no operator.
    pub fn boot_binding(&self) -> BootBinding {
        BootBinding::for_tls_spki(self.tls.spki_der(), self.model_sha256)
    }

    /// The boot `user_data` before an operator is bound: `0x01 || sha256(TLS SPKI DER) ||
    /// model_sha256 || 20 zero bytes` (85 bytes).
    pub fn boot_user_data(&self) -> [u8; BOOT_BINDING_BYTES] {
        self.boot_binding().to_user_data()
    }

    /// The attestation request for a boot document with no operator bound, optionally
    /// answering a client's nonce.
    pub fn boot_attestation_request(&self, nonce: Option<Vec<u8>>) -> AttestationRequest {
        AttestationRequest::boot(
            &self.signing_key.public_key_uncompressed(),
            &self.boot_binding(),
            nonce,
        )
    }
}

#[cfg(test)]
mod tests {
    use attestation_verifier::receipt::recover_signer;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConnection};

    use super::*;

    #[test]
    fn address_follows_the_ethereum_rule() {
        // The public anvil development key #0 and its published address.
        let secret: [u8; 32] = [
            0xac, 0x09, 0x74, 0xbe, 0xc3, 0x9a, 0x17, 0xe3, 0x6b, 0xa4, 0xa6, 0xb4, 0xd2, 0x38,
            0xff, 0x94, 0x4b, 0xac, 0xb4, 0x78, 0xcb, 0xed, 0x5e, 0xfc, 0xae, 0x78, 0x4d, 0x7b,
            0xf4, 0xf2, 0xff, 0x80,
        ];
        let key = EnclaveSigningKey::from_secret_bytes(&secret).expect("valid key");
        assert_eq!(
            address_hex(&key.address()),
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
        assert_eq!(key.public_key_uncompressed()[0], 0x04);
    }

    #[test]
    fn invalid_scalars_are_refused() {
        assert!(matches!(
            EnclaveSigningKey::from_secret_bytes(&[0u8; 32]),
            Err(IdentityError::InvalidSecretKey)
        ));
        assert!(matches!(
            EnclaveSigningKey::from_secret_bytes(&[0xffu8; 32]),
            Err(IdentityError::InvalidSecretKey)
        ));
    }

    #[test]
    fn signatures_are_low_s_and_recover_to_the_address() {
        let key = EnclaveSigningKey::generate().expect("key");
        let other = EnclaveSigningKey::generate().expect("key");
        assert_ne!(key.address(), other.address());
        for index in 0u8..32 {
            let digest = [index; 32];
            let signature = key.sign_digest(&digest).expect("sign");
            assert!(signature[64] == 27 || signature[64] == 28);
            // recover_signer rejects high-S, so success also proves low-S.
            assert_eq!(
                recover_signer(&digest, &signature).expect("recovers"),
                key.address()
            );
        }
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let secret = [0x11u8; 32];
        let key = EnclaveSigningKey::from_secret_bytes(&secret).expect("key");
        let shown = format!("{key:?}");
        assert!(shown.contains(&address_hex(&key.address())), "{shown}");
        assert!(!shown.contains("1111111111"), "{shown}");
        let tls = TlsIdentity::generate(&["localhost".to_owned()]).expect("tls");
        let shown = format!("{tls:?}");
        assert!(!shown.contains("private"), "{shown}");
    }

    #[test]
    fn boot_user_data_binds_the_certificate_spki_and_the_model() {
        let model = [0x5au8; 32];
        let identity = EnclaveIdentity::generate(model, &["localhost".to_owned()]).expect("id");
        let (_, certificate) = x509_parser::parse_x509_certificate(identity.tls.certificate_der())
            .expect("certificate parses");
        // The SPKI we hash is exactly the one in the certificate clients will see.
        assert_eq!(certificate.public_key().raw, identity.tls.spki_der());
        let user_data = identity.boot_user_data();
        assert_eq!(user_data.len(), 85);
        assert_eq!(user_data[0], 0x01);
        assert_eq!(&user_data[1..33], &identity.tls.spki_sha256());
        assert_eq!(&user_data[33..65], &model);
        assert_eq!(&user_data[65..], &[0u8; 20], "no operator bound yet");
        let parsed = BootBinding::parse(&user_data).expect("parses");
        parsed
            .check_tls_spki(certificate.public_key().raw)
            .expect("binds the certificate's key");
        let request = identity.boot_attestation_request(Some(b"n".to_vec()));
        assert_eq!(
            request.public_key.as_deref(),
            Some(&identity.signing_key.public_key_uncompressed()[..])
        );
        assert_eq!(request.user_data.as_deref(), Some(&user_data[..]));
        assert_eq!(request.nonce.as_deref(), Some(&b"n"[..]));
    }

    fn handshake(tls: &TlsIdentity, client_alpn: &[&[u8]]) -> (ClientConnection, ServerConnection) {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(tls.certificate_der().to_vec()))
            .expect("self-signed certificate as a root");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut client_config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_config.alpn_protocols = client_alpn.iter().map(|p| p.to_vec()).collect();
        let mut client = Connection::Client(
            ClientConnection::new(
                Arc::new(client_config),
                ServerName::try_from("localhost").expect("name"),
            )
            .expect("client"),
        );
        let mut server = Connection::Server(
            ServerConnection::new(tls.server_config().expect("server config")).expect("server"),
        );
        for _ in 0..10 {
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
            transfer(&mut client, &mut server);
            transfer(&mut server, &mut client);
        }
        match (client, server) {
            (Connection::Client(client), Connection::Server(server)) => (client, server),
            _ => unreachable!("roles do not change"),
        }
    }

    fn transfer(from: &mut Connection, to: &mut Connection) {
        let mut buffer = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut buffer).expect("write");
        }
        let mut pending = buffer.as_slice();
        while !pending.is_empty() {
            to.read_tls(&mut pending).expect("read");
            to.process_new_packets().expect("peer accepts the messages");
        }
    }

    #[test]
    fn tls_handshake_is_tls13_with_alpn() {
        let tls = TlsIdentity::generate(&["localhost".to_owned()]).expect("tls");
        let (client, server) = handshake(&tls, &[b"h2", b"http/1.1"]);
        assert!(!client.is_handshaking() && !server.is_handshaking());
        assert_eq!(
            server.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert_eq!(server.alpn_protocol(), Some(&b"h2"[..]));
        let presented = client.peer_certificates().expect("certificate")[0].to_vec();
        assert_eq!(presented, tls.certificate_der());

        let (_, server) = handshake(&tls, &[b"http/1.1"]);
        assert_eq!(server.alpn_protocol(), Some(&b"http/1.1"[..]));
    }
}
