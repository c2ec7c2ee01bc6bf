// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IEnclaveRegistry} from "../interfaces/IEnclaveRegistry.sol";
import {IEs384Verifier} from "./IEs384Verifier.sol";
import {NitroDocument} from "./NitroDocument.sol";
import {X509} from "./X509.sol";

/// @title The registry's trustless route: AWS Nitro attestation documents verified on-chain.
/// @notice Anyone may register an enclave by submitting its attestation document: this contract
/// checks the COSE_Sign1 document, its certificate chain up to the pinned root (P-384 ECDSA with
/// SHA-384 for every link, keys on the curve, validity against `block.timestamp`, CA, key-usage
/// and path-length rules), the document's ES384 signature, then the policy (no debug mode, fresh enough, the
/// protocol's `public_key` and `user_data` formats), and registers the enclave's signing key in
/// the registry, bound to the operator its `user_data` names. The registry's owner must approve this contract as a registrar, and the
/// registry itself decides which images and models are allowed.
/// @dev P-384 has no precompile: each signature comes with a hint computed off-chain by the
/// `nitro-hints` crate (docs/onchain.md §4a) and is checked by the shared `Es384Verifier`
/// contract (deployed once, see `IEs384Verifier`); a wrong hint only makes verification fail. Verified intermediate certificates are cached by keccak256 of their DER, with the
/// validity window and path-length budget they inherit from their ancestors, so every use of a
/// cached certificate re-checks its own expiry and that of every ancestor at once.
contract NitroRegistrar {
    /// @notice SHA-256 of the DER of the AWS Nitro Enclaves root G1, the production trust anchor.
    bytes32 public constant AWS_NITRO_ROOT_G1_SHA256 =
        0x641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b;
    /// @notice Upper bound for `maxAttestationAge`.
    uint64 public constant MAX_ATTESTATION_AGE_LIMIT = 1 days;
    uint256 private constant PCR_LENGTH = 48;
    uint256 private constant NO_PATH_LIMIT = type(uint64).max;
    /// @notice Length of a boot `user_data` binding: tag, TLS SPKI hash, model hash, operator.
    uint256 public constant BOOT_BINDING_BYTES = 85;

    /// @notice A certificate of a verified chain, as the walk and the cache keep it.
    struct Link {
        bytes32 hash; // keccak256 of the certificate's DER
        bytes32 parent; // keccak256 of its issuer's DER (zero for the root)
        bytes32 subjectHash; // keccak256 of its subject Name DER
        bytes publicKey; // 96 bytes x || y
        uint64 validFrom; // latest notBefore along the chain up to the root
        uint64 validUntil; // earliest notAfter along the chain up to the root
        uint64 remainingPathLength; // how many more CAs may follow it
    }

    /// @notice What a verified document attests.
    struct Attestation {
        bytes32 imageId; // keccak256(pcr0 || pcr1 || pcr2), as the registry keys images
        bool debugMode;
        uint64 timestampMs;
        bytes moduleId;
        bytes publicKey;
        bytes userData;
        bytes nonce;
        // Whether each optional field is present (false: CBOR null; true with empty bytes: present
        // and empty).
        bool hasPublicKey;
        bool hasUserData;
        bool hasNonce;
    }

    struct CachedCertificate {
        bytes32 parent;
        bytes32 subjectHash;
        bytes32[3] publicKey;
        uint64 validFrom;
        uint64 validUntil;
        uint64 remainingPathLength;
    }

    IEnclaveRegistry public immutable registry;
    /// @notice Checks every ES384 signature (SHA-384 and P-384 with hints).
    IEs384Verifier public immutable es384;
    /// @notice SHA-256 and keccak256 of the trusted root certificate's DER.
    bytes32 public immutable rootCertificateSha256;
    bytes32 public immutable rootCertificateHash;
    /// @notice How old (seconds) a document may be when it registers an enclave.
    uint64 public immutable maxAttestationAge;

    bytes32 private immutable _rootSubjectHash;
    bytes32 private immutable _rootKey0;
    bytes32 private immutable _rootKey1;
    bytes32 private immutable _rootKey2;
    uint64 private immutable _rootNotBefore;
    uint64 private immutable _rootNotAfter;
    uint64 private immutable _rootPathLength;

    mapping(bytes32 certificateHash => CachedCertificate) private _cache;

    event CertificateCached(bytes32 indexed certificateHash, bytes32 indexed parent, uint64 validUntil);

    error ZeroAddress();
    error MaxAttestationAgeOutOfRange(uint64 maxAttestationAge, uint64 limit);
    error RootNotSelfIssuedAuthority();
    error RootCertificateMismatch(bytes32 certificateHash);
    error HintCountMismatch(uint256 expected, uint256 given);
    error ParentNotCached(bytes32 parent);
    error IssuerMismatch(uint256 index);
    error NotACertificateAuthority(uint256 index);
    error MissingKeyCertSign(uint256 index);
    error PathLengthExceeded(uint256 index);
    error LeafIsCertificateAuthority();
    error LeafMissingDigitalSignature();
    error CertificateKeyInvalid(uint256 index);
    error CertificateSignatureInvalid(uint256 index);
    error CertificateNotYetValid(uint256 index, uint64 validFrom, uint256 blockTimestamp);
    error CertificateExpired(uint256 index, uint64 validUntil, uint256 blockTimestamp);
    error DocumentSignatureInvalid();
    error DebugModeRejected();
    error AttestationTooOld(uint64 timestampMs, uint256 blockTimestamp);
    error PcrMissing(uint256 index);
    error EnclaveKeyMalformed();
    error UserDataMalformed();

    /// @param registry_ the registry to register enclaves in (its owner approves this contract).
    /// @param es384_ the ES384 verifier contract.
    /// @param rootCertificate DER of the trust anchor: the AWS Nitro root G1 in production (see
    /// `isAwsRoot`); a development root only for tests and local stacks.
    /// @param maxAttestationAge_ seconds a document may be old when it registers an enclave.
    constructor(
        IEnclaveRegistry registry_,
        IEs384Verifier es384_,
        bytes memory rootCertificate,
        uint64 maxAttestationAge_
    ) {
        if (address(registry_) == address(0) || address(es384_) == address(0)) {
            revert ZeroAddress();
        }
        if (maxAttestationAge_ == 0 || maxAttestationAge_ > MAX_ATTESTATION_AGE_LIMIT) {
            revert MaxAttestationAgeOutOfRange(maxAttestationAge_, MAX_ATTESTATION_AGE_LIMIT);
        }
        X509.Certificate memory root = X509.parse(rootCertificate);
        if (!root.isCA || !root.keyCertSign || root.issuerHash != root.subjectHash) {
            revert RootNotSelfIssuedAuthority();
        }
        registry = registry_;
        es384 = es384_;
        maxAttestationAge = maxAttestationAge_;
        rootCertificateSha256 = sha256(rootCertificate);
        rootCertificateHash = keccak256(rootCertificate);
        _rootSubjectHash = root.subjectHash;
        (_rootKey0, _rootKey1, _rootKey2) = _splitKey(root.publicKey);
        _rootNotBefore = root.notBefore;
        _rootNotAfter = root.notAfter;
        // A pathLenConstraint is a DER INTEGER the X.509 parser bounds far below 2^64.
        // forge-lint: disable-next-line(unsafe-typecast)
        _rootPathLength = root.hasPathLen ? uint64(root.pathLen) : uint64(NO_PATH_LIMIT);
    }

    /// @notice Whether the trust anchor is the AWS Nitro root G1 (false: a development root).
    function isAwsRoot() external view returns (bool) {
        return rootCertificateSha256 == AWS_NITRO_ROOT_G1_SHA256;
    }

    /// @notice Verifies `document` (a COSE_Sign1 Nitro attestation document) at the current block
    /// time: structure, chain to the root, every signature. Applies no policy.
    /// @param hints one ECDSA hint per signature below the root, in chain order (`cabundle[1..]`,
    /// the leaf certificate, the document); an entry for a cached certificate may be empty.
    function verifyAttestation(bytes calldata document, bytes[] calldata hints)
        external
        view
        returns (Attestation memory attestation)
    {
        (attestation,) = _verify(document, hints);
    }

    /// @notice Verifies `document` and registers the enclave key it attests, valid until
    /// `expiry` (bounded by the registry). Newly verified intermediates are cached.
    /// @return enclave the Ethereum address of the attested secp256k1 key.
    function register(bytes calldata document, bytes[] calldata hints, uint64 expiry)
        external
        returns (address enclave)
    {
        (Attestation memory attestation, Link[] memory verified) = _verify(document, hints);
        for (uint256 i; i < verified.length; ++i) {
            if (verified[i].hash != bytes32(0)) _store(verified[i]);
        }
        if (attestation.debugMode) revert DebugModeRejected();
        if (uint256(attestation.timestampMs) + uint256(maxAttestationAge) * 1000 < block.timestamp * 1000) {
            revert AttestationTooOld(attestation.timestampMs, block.timestamp);
        }
        bytes memory key = attestation.publicKey;
        if (key.length != 65 || key[0] != 0x04) revert EnclaveKeyMalformed();
        bytes32 keyHash;
        assembly ("memory-safe") {
            keyHash := keccak256(add(key, 0x21), 64)
        }
        enclave = address(uint160(uint256(keyHash)));
        // The boot binding (docs/protocol.md §2): 0x01 || sha256(TLS SPKI) || model || operator.
        bytes memory userData = attestation.userData;
        if (userData.length != BOOT_BINDING_BYTES || userData[0] != 0x01) revert UserDataMalformed();
        bytes32 modelHash;
        address operator;
        assembly ("memory-safe") {
            modelHash := mload(add(userData, 0x41))
            operator := shr(96, mload(add(userData, 0x61)))
        }
        registry.registerFromRegistrar(
            enclave, operator, attestation.imageId, modelHash, expiry, attestation.timestampMs
        );
    }

    /// @notice Verifies `certificate` as issued by `parent` (the root, or a cached certificate)
    /// and caches it, so that later documents through it skip its signature. Idempotent. Its
    /// errors name the parent as index 0 and `certificate` as index 1.
    function cacheCertificate(bytes calldata certificate, bytes32 parent, bytes calldata hint)
        external
        returns (bytes32 certificateHash)
    {
        Link memory issuer = _link(parent);
        if (issuer.hash == bytes32(0)) revert ParentNotCached(parent);
        _checkWindow(issuer, 0);
        Link memory link = _verifyAuthority(certificate, 1, issuer, hint);
        _checkWindow(link, 1);
        _store(link);
        return link.hash;
    }

    /// @notice A cached (or the root) certificate by keccak256 of its DER; `hash` is zero when
    /// unknown. Cached entries carry the validity window of their whole chain.
    function cachedCertificate(bytes32 certificateHash) external view returns (Link memory) {
        return _link(certificateHash);
    }

    // ----- internals -----

    function _verify(bytes calldata documentBytes, bytes[] calldata hints)
        private
        view
        returns (Attestation memory attestation, Link[] memory verified)
    {
        NitroDocument.Document memory doc = NitroDocument.parse(documentBytes);
        if (hints.length != doc.cabundle.length + 1) revert HintCountMismatch(doc.cabundle.length + 1, hints.length);
        bytes memory leafKey;
        (leafKey, verified) = _verifyChain(doc, hints);
        if (!_signatureValid(NitroDocument.sigStructure(doc), doc.signature, leafKey, hints[hints.length - 1])) {
            revert DocumentSignatureInvalid();
        }
        attestation = _attestation(doc);
    }

    /// @dev Walks `cabundle` from the pinned root, through cached or freshly verified CAs, to the
    /// leaf. Returns the leaf's key and the CAs verified here (empty entries where cached).
    function _verifyChain(NitroDocument.Document memory doc, bytes[] calldata hints)
        private
        view
        returns (bytes memory leafKey, Link[] memory verified)
    {
        uint256 count = doc.cabundle.length;
        bytes32 rootHash = keccak256(doc.cabundle[0]);
        if (rootHash != rootCertificateHash) revert RootCertificateMismatch(rootHash);
        verified = new Link[](count);
        Link memory issuer = _link(rootHash);
        _checkWindow(issuer, 0);
        for (uint256 i = 1; i < count; ++i) {
            Link memory cached = _link(keccak256(doc.cabundle[i]));
            if (cached.hash != bytes32(0) && cached.parent == issuer.hash) {
                issuer = cached;
            } else {
                issuer = _verifyAuthority(doc.cabundle[i], i, issuer, hints[i - 1]);
                verified[i] = issuer;
            }
            _checkWindow(issuer, i);
        }
        leafKey = _verifyLeaf(doc.certificate, count, issuer, hints[count - 1]);
    }

    /// @dev The document's ES384 signature over its whole `Sig_structure`.
    function _signatureValid(bytes memory signed, bytes memory signature, bytes memory key, bytes calldata hint)
        private
        view
        returns (bool)
    {
        return es384.verify(signed, 0, signed.length, signature, key, hint);
    }

    function _attestation(NitroDocument.Document memory doc) private pure returns (Attestation memory attestation) {
        attestation.debugMode = NitroDocument.isDebugMode(doc);
        attestation.imageId = keccak256(abi.encodePacked(_pcr(doc, 0), _pcr(doc, 1), _pcr(doc, 2)));
        attestation.timestampMs = doc.timestampMs;
        attestation.moduleId = doc.moduleId;
        attestation.publicKey = doc.publicKey;
        attestation.userData = doc.userData;
        attestation.nonce = doc.nonce;
        attestation.hasPublicKey = doc.hasPublicKey;
        attestation.hasUserData = doc.hasUserData;
        attestation.hasNonce = doc.hasNonce;
    }

    /// @dev Checks one intermediate CA against its issuer: name link, CA flags, path length and
    /// signature. Returns its link with the window and path budget inherited from the issuer.
    function _verifyAuthority(bytes memory der, uint256 index, Link memory issuer, bytes calldata hint)
        private
        view
        returns (Link memory link)
    {
        X509.Certificate memory cert = X509.parse(der);
        if (cert.issuerHash != issuer.subjectHash) revert IssuerMismatch(index);
        if (!cert.isCA) revert NotACertificateAuthority(index);
        if (!cert.keyCertSign) revert MissingKeyCertSign(index);
        if (issuer.remainingPathLength == 0) revert PathLengthExceeded(index);
        _checkSignedBy(der, cert, index, issuer.publicKey, hint);
        uint64 remaining =
            issuer.remainingPathLength == NO_PATH_LIMIT ? issuer.remainingPathLength : issuer.remainingPathLength - 1;
        // forge-lint: disable-next-line(unsafe-typecast)
        if (cert.hasPathLen && cert.pathLen < remaining) remaining = uint64(cert.pathLen);
        link = Link({
            hash: keccak256(der),
            parent: issuer.hash,
            subjectHash: cert.subjectHash,
            publicKey: cert.publicKey,
            validFrom: cert.notBefore > issuer.validFrom ? cert.notBefore : issuer.validFrom,
            validUntil: cert.notAfter < issuer.validUntil ? cert.notAfter : issuer.validUntil,
            remainingPathLength: remaining
        });
    }

    /// @dev Checks the leaf (an end entity that may sign) against its issuer; returns its key.
    function _verifyLeaf(bytes memory der, uint256 index, Link memory issuer, bytes calldata hint)
        private
        view
        returns (bytes memory publicKey)
    {
        X509.Certificate memory cert = X509.parse(der);
        if (cert.issuerHash != issuer.subjectHash) revert IssuerMismatch(index);
        if (cert.isCA) revert LeafIsCertificateAuthority();
        if (!cert.digitalSignature) revert LeafMissingDigitalSignature();
        _checkSignedBy(der, cert, index, issuer.publicKey, hint);
        _checkValidity(index, cert.notBefore, cert.notAfter);
        return cert.publicKey;
    }

    /// @dev The certificate's own key is a P-384 point (as the Rust verifier's key parsing
    /// requires), and its issuer's key signed it.
    function _checkSignedBy(
        bytes memory der,
        X509.Certificate memory cert,
        uint256 index,
        bytes memory issuerKey,
        bytes calldata hint
    ) private view {
        if (!es384.isValidPublicKey(cert.publicKey)) revert CertificateKeyInvalid(index);
        if (!es384.verify(der, cert.tbsOffset, cert.tbsLength, cert.signature, issuerKey, hint)) {
            revert CertificateSignatureInvalid(index);
        }
    }

    function _checkWindow(Link memory link, uint256 index) private view {
        _checkValidity(index, link.validFrom, link.validUntil);
    }

    function _checkValidity(uint256 index, uint64 validFrom, uint64 validUntil) private view {
        if (block.timestamp < validFrom) revert CertificateNotYetValid(index, validFrom, block.timestamp);
        if (block.timestamp > validUntil) revert CertificateExpired(index, validUntil, block.timestamp);
    }

    /// @dev The root (from immutables) or a cached certificate; an empty link when unknown.
    function _link(bytes32 hash) private view returns (Link memory link) {
        if (hash == rootCertificateHash) {
            return Link({
                hash: hash,
                parent: bytes32(0),
                subjectHash: _rootSubjectHash,
                publicKey: abi.encodePacked(_rootKey0, _rootKey1, _rootKey2),
                validFrom: _rootNotBefore,
                validUntil: _rootNotAfter,
                remainingPathLength: _rootPathLength
            });
        }
        CachedCertificate storage entry = _cache[hash];
        if (entry.validUntil == 0) return link;
        link = Link({
            hash: hash,
            parent: entry.parent,
            subjectHash: entry.subjectHash,
            publicKey: abi.encodePacked(entry.publicKey[0], entry.publicKey[1], entry.publicKey[2]),
            validFrom: entry.validFrom,
            validUntil: entry.validUntil,
            remainingPathLength: entry.remainingPathLength
        });
    }

    function _store(Link memory link) private {
        CachedCertificate storage entry = _cache[link.hash];
        if (entry.validUntil != 0) return;
        entry.parent = link.parent;
        entry.subjectHash = link.subjectHash;
        (entry.publicKey[0], entry.publicKey[1], entry.publicKey[2]) = _splitKey(link.publicKey);
        entry.validFrom = link.validFrom;
        entry.validUntil = link.validUntil;
        entry.remainingPathLength = link.remainingPathLength;
        emit CertificateCached(link.hash, link.parent, link.validUntil);
    }

    function _pcr(NitroDocument.Document memory doc, uint256 index) private pure returns (bytes memory value) {
        bool present;
        (present, value) = NitroDocument.pcr(doc, index);
        if (!present || value.length != PCR_LENGTH) revert PcrMissing(index);
    }

    function _splitKey(bytes memory key) private pure returns (bytes32 a, bytes32 b, bytes32 c) {
        assembly ("memory-safe") {
            a := mload(add(key, 0x20))
            b := mload(add(key, 0x40))
            c := mload(add(key, 0x60))
        }
    }
}
