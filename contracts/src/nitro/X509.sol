// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice Strict DER parser for the X.509 certificates of an AWS Nitro attestation chain, with the
/// per-certificate rules of the Rust verifier (`attestation-verifier/src/chain.rs`, `examine`).
/// @dev Every certificate must be X.509 v3, signed with ecdsa-with-SHA384 (the same algorithm inside
/// and outside the TBS, parameters absent), carry an uncompressed P-384 public key and no critical
/// extension other than basicConstraints and keyUsage. The parser never copies the TBS: it returns
/// its position so the caller hashes it in place. DER is enforced throughout: definite and minimal
/// lengths, every element inside its parent, no trailing bytes, DER booleans, DEFAULT values
/// omitted, minimal integers. Lengths of more than two bytes (elements of 64 KiB or more) are
/// refused: no certificate of a Nitro chain comes near that.
/// Not checked here (the caller's or another library's job): that the key is a point on the curve
/// (`P384.isValidPublicKey`), the signature itself, validity against a time (`checkValidity`), the
/// role rules (`checkCertificateAuthority`, `checkLeaf`) and the chain walk (names, path length).
library X509 {
    /// @notice What the chain walk needs from one certificate.
    struct Certificate {
        /// Offset of the TBSCertificate (tag, length and content) within the DER: hash
        /// `der[tbsOffset : tbsOffset + tbsLength]` with SHA-384 for the signature check.
        uint256 tbsOffset;
        /// Length of the TBSCertificate, header included.
        uint256 tbsLength;
        /// The issuer's ECDSA signature as 96 bytes `r || s`, each 48 bytes big-endian, 0 < r, s < n.
        bytes signature;
        /// The subject's P-384 public key as 96 bytes `x || y` (the point without its 0x04 prefix).
        bytes publicKey;
        /// Start of the validity window, Unix seconds (0 for times before 1970, as in Rust).
        uint64 notBefore;
        /// End of the validity window (inclusive), Unix seconds.
        uint64 notAfter;
        /// basicConstraints cA (false when the extension is absent).
        bool isCA;
        /// Whether basicConstraints carries a pathLenConstraint.
        bool hasPathLen;
        /// The pathLenConstraint (0 when absent): CAs allowed below this one, the leaf excluded.
        uint256 pathLen;
        /// keyUsage keyCertSign (false when the extension is absent).
        bool keyCertSign;
        /// keyUsage digitalSignature (false when the extension is absent).
        bool digitalSignature;
        /// keccak256 of the issuer Name (tag, length and content); equals the parent's `subjectHash`.
        bytes32 issuerHash;
        /// keccak256 of the subject Name (tag, length and content).
        bytes32 subjectHash;
    }

    // ---------------------------------------------------------------- errors: DER structure

    /// @notice An element header does not fit before the end of its parent.
    error X509Truncated(uint256 offset);
    /// @notice A high-tag-number identifier (low five bits all set): never used by certificates.
    error X509UnsupportedTag(uint256 offset);
    /// @notice An indefinite length (BER only).
    error X509IndefiniteLength(uint256 offset);
    /// @notice A length in long form that fits a shorter form (DER requires the minimal one).
    error X509NonMinimalLength(uint256 offset);
    /// @notice A length of three or more bytes (elements of 64 KiB or more).
    error X509UnsupportedLength(uint256 offset);
    /// @notice An element's content runs past the end of its parent.
    error X509LengthOutOfBounds(uint256 offset);
    /// @notice An element with another tag than the structure requires here.
    error X509UnexpectedTag(uint256 offset, uint256 expected, uint256 found);
    /// @notice Bytes left after the last element of a structure (or after the certificate).
    error X509TrailingBytes(uint256 offset);
    /// @notice An INTEGER that is empty or not minimally encoded.
    error X509InvalidInteger(uint256 offset);
    /// @notice A BOOLEAN that is not one byte 0x00 or 0xFF.
    error X509InvalidBoolean(uint256 offset);
    /// @notice A DEFAULT value encoded explicitly (critical FALSE, cA FALSE), which DER forbids.
    /// @notice An OBJECT IDENTIFIER that is empty or has a non-minimal or unterminated sub-identifier.
    error X509InvalidObjectIdentifier(uint256 offset);
    /// @notice A BIT STRING with a bad unused-bits count or non-zero padding bits.
    error X509InvalidBitString(uint256 offset);

    // ---------------------------------------------------------------- errors: certificate rules

    /// @notice Not an X.509 v3 certificate (Rust: "not an X.509 v3 certificate").
    error X509UnsupportedVersion(uint256 offset);
    /// @notice A signature algorithm other than ecdsa-with-SHA384 without parameters
    /// (Rust: `UnsupportedCertificateSignatureAlgorithm`).
    error X509UnsupportedSignatureAlgorithm(uint256 offset);
    /// @notice A key other than an uncompressed secp384r1 point (Rust: `UnsupportedPublicKey`).
    error X509UnsupportedPublicKey(uint256 offset);
    /// @notice A Name that is not a sequence of non-empty sets of (type, value) pairs.
    error X509InvalidName(uint256 offset);
    /// @notice A validity time that is not UTCTime YYMMDDHHMMSSZ / GeneralizedTime YYYYMMDDHHMMSSZ
    /// naming a real instant.
    error X509InvalidTime(uint256 offset);
    /// @notice The signature value is not a DER ECDSA-Sig-Value with 0 < r, s < n.
    error X509InvalidSignatureValue(uint256 offset);
    /// @notice A critical extension other than basicConstraints and keyUsage
    /// (Rust: `UnknownCriticalExtension`).
    error X509UnknownCriticalExtension(uint256 offset);
    /// @notice basicConstraints or keyUsage present twice (Rust: x509-parser's DuplicateExtensions).
    error X509DuplicateExtension(uint256 offset);
    /// @notice A malformed basicConstraints (pathLenConstraint negative or above 2^32 - 1 included).
    error X509InvalidBasicConstraints(uint256 offset);
    /// @notice A malformed keyUsage bit string.
    error X509InvalidKeyUsage(uint256 offset);
    /// @notice An empty extension list, or a malformed subjectKeyIdentifier, authorityKeyIdentifier
    /// or cRLDistributionPoints (extensions x509-parser parses, so Rust rejects them malformed).
    error X509InvalidExtension(uint256 offset);

    // ---------------------------------------------------------------- errors: role and time checks

    /// @notice A CA certificate without basicConstraints cA TRUE (Rust: `NotACertificateAuthority`).
    error X509NotCertificateAuthority();
    /// @notice A CA certificate without keyUsage keyCertSign (Rust: `MissingKeyCertSign`).
    error X509MissingKeyCertSign();
    /// @notice A leaf with basicConstraints cA TRUE (Rust: `LeafIsCertificateAuthority`).
    error X509LeafIsCertificateAuthority();
    /// @notice A leaf without keyUsage digitalSignature (Rust: `LeafMissingDigitalSignature`).
    error X509LeafMissingDigitalSignature();
    /// @notice Checked before notBefore (Rust: `CertificateNotYetValid`); both times in the unit
    /// of the check that failed (seconds for `checkValidity`, milliseconds for `checkValidityMillis`).
    error X509CertificateNotYetValid(uint256 notBefore, uint256 at);
    /// @notice Checked after notAfter (Rust: `CertificateExpired`); units as for the error above.
    error X509CertificateExpired(uint256 notAfter, uint256 at);

    // ---------------------------------------------------------------- constants

    uint256 private constant TAG_BOOLEAN = 0x01;
    uint256 private constant TAG_INTEGER = 0x02;
    uint256 private constant TAG_BIT_STRING = 0x03;
    uint256 private constant TAG_OCTET_STRING = 0x04;
    uint256 private constant TAG_OID = 0x06;
    uint256 private constant TAG_UTC_TIME = 0x17;
    uint256 private constant TAG_GENERALIZED_TIME = 0x18;
    uint256 private constant TAG_SEQUENCE = 0x30;
    uint256 private constant TAG_SET = 0x31;
    /// [0] EXPLICIT (version), [1]/[2] IMPLICIT BIT STRING (unique ids), [3] EXPLICIT (extensions).
    uint256 private constant TAG_VERSION = 0xa0;
    uint256 private constant TAG_ISSUER_UID = 0x81;
    uint256 private constant TAG_SUBJECT_UID = 0x82;
    uint256 private constant TAG_EXTENSIONS = 0xa3;

    /// AlgorithmIdentifier { ecdsa-with-SHA384 (1.2.840.10045.4.3.3) } without parameters, whole
    /// TLV (12 bytes): RFC 5758 3.2 says the parameters MUST be absent, and Rust refuses them.
    uint256 private constant ECDSA_SHA384_ALGORITHM = 0x300a06082a8648ce3d040303;
    uint256 private constant ECDSA_SHA384_ALGORITHM_LENGTH = 12;
    /// AlgorithmIdentifier { id-ecPublicKey (1.2.840.10045.2.1), secp384r1 (1.3.132.0.34) }, whole
    /// TLV (18 bytes).
    uint256 private constant P384_KEY_ALGORITHM = 0x301006072a8648ce3d020106052b81040022;
    uint256 private constant P384_KEY_ALGORITHM_LENGTH = 18;

    /// Extension OIDs (content bytes of 2.5.29.x).
    uint256 private constant OID_SUBJECT_KEY_IDENTIFIER = 0x551d0e;
    uint256 private constant OID_KEY_USAGE = 0x551d0f;
    uint256 private constant OID_BASIC_CONSTRAINTS = 0x551d13;
    uint256 private constant OID_CRL_DISTRIBUTION_POINTS = 0x551d1f;
    uint256 private constant OID_AUTHORITY_KEY_IDENTIFIER = 0x551d23;

    /// The P-384 group order n split into its high 16 and low 32 bytes.
    uint256 private constant ORDER_HIGH = 0xffffffffffffffffffffffffffffffff;
    uint256 private constant ORDER_LOW = 0xffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973;

    /// Bits of the `seen` mask that catch duplicated extensions.
    uint256 private constant SEEN_BASIC_CONSTRAINTS = 1;
    uint256 private constant SEEN_KEY_USAGE = 2;

    /// Byte-wise masks for checking up to 32 ASCII digits in one word.
    uint256 private constant HIGH_NIBBLES = 0xf0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0;
    uint256 private constant LOW_NIBBLES = 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f;
    uint256 private constant ASCII_DIGIT_HIGH = 0x3030303030303030303030303030303030303030303030303030303030303030;
    uint256 private constant SIXES = 0x0606060606060606060606060606060606060606060606060606060606060606;
    uint256 private constant SIXTEENS = 0x1010101010101010101010101010101010101010101010101010101010101010;

    /// Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar.
    uint256 private constant DAYS_TO_UNIX_EPOCH = 719_468;

    // ---------------------------------------------------------------- public API

    /// @notice Parses one DER certificate and applies every check that needs no other certificate.
    /// @param der The whole certificate; nothing may follow it.
    /// @return cert The fields the chain walk needs.
    function parse(bytes memory der) internal pure returns (Certificate memory cert) {
        uint256 total = der.length;
        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
        (uint256 certStart, uint256 certEnd) = _expect(der, 0, total, TAG_SEQUENCE);
        // Rust: "bytes after the certificate".
        if (certEnd != total) revert X509TrailingBytes(certEnd);

        (uint256 tbsStart, uint256 tbsEnd) = _expect(der, certStart, certEnd, TAG_SEQUENCE);
        cert.tbsOffset = certStart;
        cert.tbsLength = tbsEnd - certStart;
        _parseTbs(der, tbsStart, tbsEnd, cert);

        // Rust checks the outer algorithm and the TBS copy alike (RFC 5280 4.1.1.2).
        uint256 next = _expectSignatureAlgorithm(der, tbsEnd, certEnd);
        next = _parseSignatureValue(der, next, certEnd, cert);
        if (next != certEnd) revert X509TrailingBytes(next);
    }

    /// @notice The rules Rust applies to a CA certificate (`Role::CertificateAuthority`).
    function checkCertificateAuthority(Certificate memory cert) internal pure {
        if (!cert.isCA) revert X509NotCertificateAuthority();
        if (!cert.keyCertSign) revert X509MissingKeyCertSign();
    }

    /// @notice The rules Rust applies to the leaf (`Role::Leaf`). The leaf's pathLenConstraint,
    /// if any, means nothing (Rust drops it).
    function checkLeaf(Certificate memory cert) internal pure {
        if (cert.isCA) revert X509LeafIsCertificateAuthority();
        if (!cert.digitalSignature) revert X509LeafMissingDigitalSignature();
    }

    /// @notice `notBefore <= at <= notAfter` with both bounds inclusive (RFC 5280 4.1.2.5), compared
    /// in milliseconds exactly as Rust's `check_validity` does (a document timestamp is in ms).
    function checkValidityMillis(Certificate memory cert, uint256 atMillis) internal pure {
        uint256 notBeforeMillis = uint256(cert.notBefore) * 1000;
        uint256 notAfterMillis = uint256(cert.notAfter) * 1000;
        if (atMillis < notBeforeMillis) revert X509CertificateNotYetValid(notBeforeMillis, atMillis);
        if (atMillis > notAfterMillis) revert X509CertificateExpired(notAfterMillis, atMillis);
    }

    /// @notice `notBefore <= at <= notAfter` at a time in whole seconds (e.g. `block.timestamp`):
    /// the same verdict as `checkValidityMillis` at `atSeconds * 1000`.
    function checkValidity(Certificate memory cert, uint256 atSeconds) internal pure {
        if (atSeconds < cert.notBefore) revert X509CertificateNotYetValid(cert.notBefore, atSeconds);
        if (atSeconds > cert.notAfter) revert X509CertificateExpired(cert.notAfter, atSeconds);
    }

    // ---------------------------------------------------------------- TBSCertificate

    /// @dev TBSCertificate ::= SEQUENCE { version [0], serialNumber, signature, issuer, validity,
    /// subject, subjectPublicKeyInfo, issuerUniqueID [1] OPT, subjectUniqueID [2] OPT, extensions [3] OPT }
    function _parseTbs(bytes memory der, uint256 start, uint256 end, Certificate memory cert) private pure {
        uint256 next = _parseVersion(der, start, end);
        // serialNumber: any minimal INTEGER (x509-parser accepts negative and long serials too).
        (uint256 serialStart, uint256 serialEnd) = _expect(der, next, end, TAG_INTEGER);
        _checkInteger(der, serialStart, serialEnd, next);
        next = _expectSignatureAlgorithm(der, serialEnd, end);
        (next, cert.issuerHash) = _parseName(der, next, end);
        next = _parseValidity(der, next, end, cert);
        (next, cert.subjectHash) = _parseName(der, next, end);
        next = _parsePublicKey(der, next, end, cert);
        // The unique identifiers are allowed (v3) and carry nothing Rust looks at.
        if (next < end && _byteAt(der, next) == TAG_ISSUER_UID) next = _parseUniqueId(der, next, end);
        if (next < end && _byteAt(der, next) == TAG_SUBJECT_UID) next = _parseUniqueId(der, next, end);
        if (next < end && _byteAt(der, next) == TAG_EXTENSIONS) next = _parseExtensions(der, next, end, cert);
        if (next != end) revert X509TrailingBytes(next);
    }

    /// @dev version [0] EXPLICIT INTEGER, which must be v3 (2). Rust: "not an X.509 v3 certificate"
    /// (an absent version means v1 and is refused the same way).
    function _parseVersion(bytes memory der, uint256 offset, uint256 end) private pure returns (uint256) {
        if (offset >= end || _byteAt(der, offset) != TAG_VERSION) revert X509UnsupportedVersion(offset);
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_VERSION);
        (uint256 intStart, uint256 intEnd) = _expect(der, start, stop, TAG_INTEGER);
        if (intEnd != stop) revert X509TrailingBytes(intEnd);
        if (intEnd - intStart != 1 || _byteAt(der, intStart) != 2) revert X509UnsupportedVersion(offset);
        return stop;
    }

    /// @dev The whole AlgorithmIdentifier must be ecdsa-with-SHA384 without parameters (Rust checks
    /// `algorithm == OID_SIG_ECDSA_WITH_SHA384 && parameters.is_none()` for both copies).
    function _expectSignatureAlgorithm(bytes memory der, uint256 offset, uint256 end) private pure returns (uint256) {
        (, uint256 stop) = _expect(der, offset, end, TAG_SEQUENCE);
        if (
            stop - offset != ECDSA_SHA384_ALGORITHM_LENGTH
                || _word(der, offset) >> (256 - 8 * ECDSA_SHA384_ALGORITHM_LENGTH) != ECDSA_SHA384_ALGORITHM
        ) revert X509UnsupportedSignatureAlgorithm(offset);
        return stop;
    }

    /// @dev Name ::= SEQUENCE OF RelativeDistinguishedName (SET SIZE (1..MAX) OF
    /// SEQUENCE { type OBJECT IDENTIFIER, value ANY }), as x509-parser requires it. Returns the
    /// keccak256 of the whole Name: Rust compares the raw issuer and subject bytes.
    function _parseName(bytes memory der, uint256 offset, uint256 end) private pure returns (uint256, bytes32 hash) {
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_SEQUENCE);
        uint256 nameLength = stop - offset;
        assembly ("memory-safe") {
            hash := keccak256(add(add(der, 0x20), offset), nameLength)
        }
        uint256 rdn = start;
        while (rdn < stop) {
            (uint256 setStart, uint256 setEnd) = _expect(der, rdn, stop, TAG_SET);
            if (setStart == setEnd) revert X509InvalidName(rdn);
            uint256 attribute = setStart;
            while (attribute < setEnd) {
                attribute = _parseAttribute(der, attribute, setEnd);
            }
            rdn = setEnd;
        }
        return (stop, hash);
    }

    /// @dev AttributeTypeAndValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY }; the value
    /// (a string type in practice) is only framed, as x509-parser also takes malformed strings.
    function _parseAttribute(bytes memory der, uint256 offset, uint256 end) private pure returns (uint256) {
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_SEQUENCE);
        (uint256 oidStart, uint256 oidEnd) = _expect(der, start, stop, TAG_OID);
        _checkObjectIdentifier(der, oidStart, oidEnd);
        if (oidEnd == stop) revert X509InvalidName(offset);
        (,, uint256 valueEnd) = _header(der, oidEnd, stop);
        if (valueEnd != stop) revert X509TrailingBytes(valueEnd);
        return stop;
    }

    /// @dev Validity ::= SEQUENCE { notBefore Time, notAfter Time }.
    function _parseValidity(bytes memory der, uint256 offset, uint256 end, Certificate memory cert)
        private
        pure
        returns (uint256)
    {
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_SEQUENCE);
        uint256 next;
        (cert.notBefore, next) = _parseTime(der, start, stop);
        (cert.notAfter, next) = _parseTime(der, next, stop);
        if (next != stop) revert X509TrailingBytes(next);
        return stop;
    }

    /// @dev SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }. Rust requires
    /// id-ecPublicKey with the named curve secp384r1, no unused bits and a 97-byte 0x04 point.
    function _parsePublicKey(bytes memory der, uint256 offset, uint256 end, Certificate memory cert)
        private
        pure
        returns (uint256)
    {
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_SEQUENCE);
        (, uint256 algorithmEnd) = _expect(der, start, stop, TAG_SEQUENCE);
        if (
            algorithmEnd - start != P384_KEY_ALGORITHM_LENGTH
                || _word(der, start) >> (256 - 8 * P384_KEY_ALGORITHM_LENGTH) != P384_KEY_ALGORITHM
        ) revert X509UnsupportedPublicKey(start);
        (uint256 bitsStart, uint256 bitsEnd) = _expect(der, algorithmEnd, stop, TAG_BIT_STRING);
        if (bitsEnd != stop) revert X509TrailingBytes(bitsEnd);
        // 0x00 (no unused bits), 0x04 (uncompressed), x, y.
        if (bitsEnd - bitsStart != 98 || _word(der, bitsStart) >> 240 != 0x0004) {
            revert X509UnsupportedPublicKey(algorithmEnd);
        }
        bytes memory key = new bytes(96);
        assembly ("memory-safe") {
            let source := add(add(der, 0x20), add(bitsStart, 2))
            mcopy(add(key, 0x20), source, 96)
        }
        cert.publicKey = key;
        return stop;
    }

    /// @dev issuerUniqueID / subjectUniqueID: [1] / [2] IMPLICIT BIT STRING.
    function _parseUniqueId(bytes memory der, uint256 offset, uint256 end) private pure returns (uint256) {
        (, uint256 start, uint256 stop) = _header(der, offset, end);
        _checkBitString(der, start, stop, offset);
        return stop;
    }

    // ---------------------------------------------------------------- extensions

    /// @dev extensions [3] EXPLICIT SEQUENCE SIZE (1..MAX) OF Extension.
    function _parseExtensions(bytes memory der, uint256 offset, uint256 end, Certificate memory cert)
        private
        pure
        returns (uint256)
    {
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_EXTENSIONS);
        (uint256 listStart, uint256 listEnd) = _expect(der, start, stop, TAG_SEQUENCE);
        if (listEnd != stop) revert X509TrailingBytes(listEnd);
        if (listStart == listEnd) revert X509InvalidExtension(start);
        uint256 next = listStart;
        uint256 seen;
        while (next < listEnd) {
            (next, seen) = _parseExtension(der, next, listEnd, cert, seen);
        }
        return stop;
    }

    /// @dev Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }.
    function _parseExtension(bytes memory der, uint256 offset, uint256 end, Certificate memory cert, uint256 seen)
        private
        pure
        returns (uint256, uint256)
    {
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_SEQUENCE);
        (uint256 oid, uint256 next) = _extensionId(der, start, stop);
        bool critical;
        if (next < stop && _byteAt(der, next) == TAG_BOOLEAN) {
            // An explicit FALSE (a DEFAULT value, left out by strict DER, X.690 11.5) is accepted as
            // the Rust verifier (x509-parser) does: common issuers, rcgen among them, write it.
            critical = _parseBoolean(der, next, stop);
            (,, next) = _header(der, next, stop);
        }
        (uint256 valueStart, uint256 valueEnd) = _expect(der, next, stop, TAG_OCTET_STRING);
        if (valueEnd != stop) revert X509TrailingBytes(valueEnd);

        // Rust: x509-parser parses these (ParseError => CertificateMalformed) and refuses a second
        // basicConstraints or keyUsage (DuplicateExtensions).
        if (oid == OID_BASIC_CONSTRAINTS) {
            if (seen & SEEN_BASIC_CONSTRAINTS != 0) revert X509DuplicateExtension(offset);
            _parseBasicConstraints(der, valueStart, valueEnd, cert);
            return (stop, seen | SEEN_BASIC_CONSTRAINTS);
        }
        if (oid == OID_KEY_USAGE) {
            if (seen & SEEN_KEY_USAGE != 0) revert X509DuplicateExtension(offset);
            _parseKeyUsage(der, valueStart, valueEnd, cert);
            return (stop, seen | SEEN_KEY_USAGE);
        }
        if (oid == OID_SUBJECT_KEY_IDENTIFIER) {
            _parseSubjectKeyIdentifier(der, valueStart, valueEnd);
        } else if (oid == OID_AUTHORITY_KEY_IDENTIFIER) {
            _parseAuthorityKeyIdentifier(der, valueStart, valueEnd);
        } else if (oid == OID_CRL_DISTRIBUTION_POINTS) {
            _parseSequenceOfSequences(der, valueStart, valueEnd);
        }
        // Rust: a critical extension it does not process would change the certificate's meaning
        // unnoticed (RFC 5280 4.2): UnknownCriticalExtension.
        if (critical) revert X509UnknownCriticalExtension(offset);
        return (stop, seen);
    }

    /// @dev The extnID at `offset`: the three content bytes of a 2.5.29.x OID (0 for any other OID)
    /// and the offset after it.
    function _extensionId(bytes memory der, uint256 offset, uint256 end) private pure returns (uint256 oid, uint256) {
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_OID);
        _checkObjectIdentifier(der, start, stop);
        if (stop - start == 3) oid = _word(der, start) >> 232;
        return (oid, stop);
    }

    /// @dev BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL };
    /// x509-parser reads the constraint as a u32.
    function _parseBasicConstraints(bytes memory der, uint256 offset, uint256 end, Certificate memory cert)
        private
        pure
    {
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_SEQUENCE);
        if (stop != end) revert X509TrailingBytes(stop);
        uint256 next = start;
        if (next < stop && _byteAt(der, next) == TAG_BOOLEAN) {
            // cA FALSE written out (rcgen's leaves) is accepted, as in Rust; see _parseExtension.
            cert.isCA = _parseBoolean(der, next, stop);
            (,, next) = _header(der, next, stop);
        }
        if (next < stop) {
            (uint256 intStart, uint256 intEnd) = _expect(der, next, stop, TAG_INTEGER);
            _checkInteger(der, intStart, intEnd, next);
            uint256 length = intEnd - intStart;
            uint256 word = _word(der, intStart);
            // Non-negative (top bit clear) and below 2^32: at most four magnitude bytes.
            if (word >> 255 != 0 || length > 5 || (length == 5 && word >> 248 != 0)) {
                revert X509InvalidBasicConstraints(next);
            }
            cert.hasPathLen = true;
            cert.pathLen = word >> (256 - 8 * length);
            next = intEnd;
        }
        if (next != stop) revert X509TrailingBytes(next);
    }

    /// @dev KeyUsage ::= BIT STRING { digitalSignature (0), ..., keyCertSign (5), ..., decipherOnly (8) }.
    /// Like the Rust verifier (x509-parser), trailing zero bits are accepted: strict DER would drop
    /// them (X.690 11.2.2), but common issuers (rcgen, so the development CA) keep whole bytes.
    function _parseKeyUsage(bytes memory der, uint256 offset, uint256 end, Certificate memory cert) private pure {
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_BIT_STRING);
        if (stop != end) revert X509TrailingBytes(stop);
        uint256 length = stop - start;
        // Nine named bits fit in two bytes after the unused-bits count.
        if (length == 0 || length > 3) revert X509InvalidKeyUsage(offset);
        _checkBitString(der, start, stop, offset);
        if (length == 1) return; // no bit set
        uint256 first = _byteAt(der, start + 1);
        cert.digitalSignature = first & 0x80 != 0;
        cert.keyCertSign = first & 0x04 != 0;
    }

    /// @dev SubjectKeyIdentifier ::= OCTET STRING.
    function _parseSubjectKeyIdentifier(bytes memory der, uint256 offset, uint256 end) private pure {
        (, uint256 stop, uint256 found) = _tryExpect(der, offset, end, TAG_OCTET_STRING);
        if (found == 0 || stop != end) revert X509InvalidExtension(offset);
    }

    /// @dev AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL,
    /// authorityCertIssuer [1] IMPLICIT GeneralNames OPTIONAL, authorityCertSerialNumber [2] IMPLICIT
    /// INTEGER OPTIONAL }: at most one of each, in this order.
    function _parseAuthorityKeyIdentifier(bytes memory der, uint256 offset, uint256 end) private pure {
        (uint256 start, uint256 stop, uint256 found) = _tryExpect(der, offset, end, TAG_SEQUENCE);
        if (found == 0 || stop != end) revert X509InvalidExtension(offset);
        uint256 next = start;
        uint256 lowestAllowed;
        while (next < stop) {
            (uint256 tag,, uint256 fieldEnd) = _header(der, next, stop);
            uint256 field;
            if (tag == 0x80) field = 1;
            else if (tag == 0xa1) field = 2;
            else if (tag == 0x82) field = 3;
            if (field <= lowestAllowed) revert X509InvalidExtension(next);
            lowestAllowed = field;
            next = fieldEnd;
        }
    }

    /// @dev CRLDistributionPoints ::= SEQUENCE SIZE (1..MAX) OF DistributionPoint (a SEQUENCE).
    function _parseSequenceOfSequences(bytes memory der, uint256 offset, uint256 end) private pure {
        (uint256 start, uint256 stop, uint256 found) = _tryExpect(der, offset, end, TAG_SEQUENCE);
        if (found == 0 || stop != end || start == stop) revert X509InvalidExtension(offset);
        uint256 next = start;
        while (next < stop) {
            (uint256 tag,, uint256 pointEnd) = _header(der, next, stop);
            if (tag != TAG_SEQUENCE) revert X509InvalidExtension(next);
            next = pointEnd;
        }
    }

    // ---------------------------------------------------------------- signature value

    /// @dev signatureValue BIT STRING (no unused bits) holding ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }.
    function _parseSignatureValue(bytes memory der, uint256 offset, uint256 end, Certificate memory cert)
        private
        pure
        returns (uint256)
    {
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_BIT_STRING);
        if (start == stop || _byteAt(der, start) != 0) revert X509InvalidSignatureValue(offset);
        (uint256 sequenceStart, uint256 sequenceEnd) = _expect(der, start + 1, stop, TAG_SEQUENCE);
        if (sequenceEnd != stop) revert X509TrailingBytes(sequenceEnd);
        bytes memory signature = new bytes(96);
        uint256 next = _parseScalar(der, sequenceStart, sequenceEnd, signature, 0);
        next = _parseScalar(der, next, sequenceEnd, signature, 48);
        if (next != sequenceEnd) revert X509TrailingBytes(next);
        cert.signature = signature;
        return stop;
    }

    /// @dev One ECDSA scalar: a minimal positive INTEGER with 0 < value < n, written as 48 bytes
    /// big-endian at `out[at : at + 48]`.
    function _parseScalar(bytes memory der, uint256 offset, uint256 end, bytes memory out, uint256 at)
        private
        pure
        returns (uint256)
    {
        (uint256 start, uint256 stop) = _expect(der, offset, end, TAG_INTEGER);
        _checkInteger(der, start, stop, offset);
        uint256 first = _byteAt(der, start);
        if (first >= 0x80) revert X509InvalidSignatureValue(offset); // negative
        // The magnitude without the sign byte DER adds when the top bit is set.
        uint256 magnitude = stop - start - (first == 0 ? 1 : 0);
        if (magnitude > 48) revert X509InvalidSignatureValue(offset);
        uint256 high;
        uint256 low;
        if (magnitude > 32) {
            low = _word(der, stop - 32);
            // Shifts of 256 or more give 0 in the EVM.
            high = _word(der, stop - magnitude) >> (256 - 8 * (magnitude - 32));
        } else {
            low = _word(der, stop - magnitude) >> (256 - 8 * magnitude);
        }
        if ((high | low) == 0 || high > ORDER_HIGH || (high == ORDER_HIGH && low >= ORDER_LOW)) {
            revert X509InvalidSignatureValue(offset);
        }
        assembly ("memory-safe") {
            let target := add(add(out, 0x20), at)
            mstore(target, shl(128, high)) // bytes [0, 16) = high, [16, 32) overwritten next
            mstore(add(target, 16), low)
        }
        return stop;
    }

    // ---------------------------------------------------------------- time

    /// @dev UTCTime YYMMDDHHMMSSZ (YY >= 50 means 19YY, else 20YY: RFC 5280 4.1.2.5.1) or
    /// GeneralizedTime YYYYMMDDHHMMSSZ, as Unix seconds; times before 1970 give 0 as in Rust
    /// (`u64::try_from(seconds).unwrap_or(0)`).
    function _parseTime(bytes memory der, uint256 offset, uint256 end) private pure returns (uint64, uint256) {
        (uint256 tag, uint256 start, uint256 contentEnd) = _header(der, offset, end);
        uint256 digitCount;
        if (tag == TAG_UTC_TIME && contentEnd - start == 13) digitCount = 12;
        else if (tag == TAG_GENERALIZED_TIME && contentEnd - start == 15) digitCount = 14;
        else revert X509InvalidTime(offset);
        uint256 nibbles = _decimalDigits(der, start, digitCount, offset);
        uint256 year = _pair(nibbles, 0);
        uint256 cursor = 2;
        if (digitCount == 12) {
            year += year >= 50 ? 1900 : 2000;
        } else {
            year = year * 100 + _pair(nibbles, 2);
            cursor = 4;
        }
        uint256 days_ = _date(nibbles, cursor, year, offset);
        uint256 secondOfDay = _timeOfDay(nibbles, cursor + 4, offset);
        if (year < 1970) return (0, contentEnd);
        unchecked {
            // casting to 'uint64' is safe because the latest time, 9999-12-31T23:59:59Z, is
            // 253,402,300,799 s
            // forge-lint: disable-next-line(unsafe-typecast)
            return (uint64(days_ * 86_400 + secondOfDay), contentEnd);
        }
    }

    /// @dev Checks that `der[at : at + count]` are ASCII digits followed by 'Z' (UTC, no fraction)
    /// and returns the word at `at` with each of those bytes replaced by its digit value (the rest
    /// zero). All bytes are checked at once: a digit is 0x3_ with a low nibble that stays below 16
    /// when 6 is added.
    function _decimalDigits(bytes memory der, uint256 at, uint256 count, uint256 errorOffset)
        private
        pure
        returns (uint256 nibbles)
    {
        uint256 word = _word(der, at);
        uint256 mask = type(uint256).max << (256 - 8 * count);
        nibbles = word & mask & LOW_NIBBLES;
        if (
            word & mask & HIGH_NIBBLES != ASCII_DIGIT_HIGH & mask || (nibbles + (SIXES & mask)) & SIXTEENS & mask != 0
                || (word >> (248 - 8 * count)) & 0xff != 0x5a // 'Z'
        ) revert X509InvalidTime(errorOffset);
    }

    /// @dev The two-digit number at byte `at` of a `_decimalDigits` result.
    function _pair(uint256 nibbles, uint256 at) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := add(mul(10, byte(at, nibbles)), byte(add(at, 1), nibbles))
        }
    }

    /// @dev MMDD at byte `at` of `year`, checked against the calendar, as days since 1970-01-01
    /// (0 before 1970, where the caller returns 0 anyway).
    function _date(uint256 nibbles, uint256 at, uint256 year, uint256 errorOffset) private pure returns (uint256) {
        uint256 month = _pair(nibbles, at);
        uint256 day = _pair(nibbles, at + 2);
        if (month == 0 || month > 12 || day == 0 || day > _daysInMonth(year, month)) {
            revert X509InvalidTime(errorOffset);
        }
        if (year < 1970) return 0;
        return _daysFromCivil(year, month, day);
    }

    /// @dev HHMMSS at byte `at` as seconds since midnight (no leap second, as the time crate Rust uses).
    function _timeOfDay(uint256 nibbles, uint256 at, uint256 errorOffset) private pure returns (uint256) {
        uint256 hour = _pair(nibbles, at);
        uint256 minute = _pair(nibbles, at + 2);
        uint256 second = _pair(nibbles, at + 4);
        if (hour > 23 || minute > 59 || second > 59) revert X509InvalidTime(errorOffset);
        unchecked {
            return hour * 3600 + minute * 60 + second;
        }
    }

    function _daysInMonth(uint256 year, uint256 month) private pure returns (uint256) {
        if (month == 2) {
            bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            return leap ? 29 : 28;
        }
        return (month == 4 || month == 6 || month == 9 || month == 11) ? 30 : 31;
    }

    /// @dev Days since 1970-01-01 of a date from 1970 on (H. Hinnant's days_from_civil, with the
    /// year starting in March so the leap day falls last).
    function _daysFromCivil(uint256 year, uint256 month, uint256 day) private pure returns (uint256) {
        // year in 1970..9999, month in 1..12, day in 1..31: nothing below wraps.
        unchecked {
            if (month <= 2) year -= 1;
            uint256 era = year / 400;
            uint256 yearOfEra = year - era * 400;
            uint256 monthFromMarch = month > 2 ? month - 3 : month + 9;
            uint256 dayOfYear = (153 * monthFromMarch + 2) / 5 + day - 1;
            uint256 dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
            return era * 146_097 + dayOfEra - DAYS_TO_UNIX_EPOCH;
        }
    }

    // ---------------------------------------------------------------- primitives

    /// @dev DER BOOLEAN at `offset`: exactly one byte, 0x00 or 0xFF (X.690 11.1).
    function _parseBoolean(bytes memory der, uint256 offset, uint256 end) private pure returns (bool) {
        (, uint256 start, uint256 stop) = _header(der, offset, end);
        if (stop - start != 1) revert X509InvalidBoolean(offset);
        uint256 value = _byteAt(der, start);
        if (value == 0xff) return true;
        if (value != 0) revert X509InvalidBoolean(offset);
        return false;
    }

    /// @dev INTEGER content: non-empty, no redundant leading 0x00 or 0xFF byte (X.690 8.3.2).
    function _checkInteger(bytes memory der, uint256 start, uint256 stop, uint256 offset) private pure {
        if (start == stop) revert X509InvalidInteger(offset);
        if (stop - start > 1) {
            uint256 top = _word(der, start) >> 247; // the first byte and the next bit
            if (top == 0 || top == 0x1ff) revert X509InvalidInteger(offset);
        }
    }

    /// @dev BIT STRING content: an unused-bits count of 0..7 (0 when empty) with zero padding bits
    /// (X.690 11.2.1).
    function _checkBitString(bytes memory der, uint256 start, uint256 stop, uint256 offset) private pure {
        if (start == stop) revert X509InvalidBitString(offset);
        uint256 unused = _byteAt(der, start);
        if (unused > 7 || (stop - start == 1 && unused != 0)) revert X509InvalidBitString(offset);
        uint256 last = _byteAt(der, stop - 1);
        if ((last >> unused) << unused != last) revert X509InvalidBitString(offset);
    }

    /// @dev OBJECT IDENTIFIER content: non-empty, every sub-identifier minimal (no leading 0x80)
    /// and terminated (X.690 8.19.2).
    function _checkObjectIdentifier(bytes memory der, uint256 start, uint256 contentEnd) private pure {
        bool valid;
        assembly ("memory-safe") {
            // A byte starts a sub-identifier when the previous one had no continuation bit (0x80);
            // a starting byte of 0x80 is a redundant leading zero group.
            let atStart := 1
            valid := gt(contentEnd, start)
            let data := add(der, 0x20)
            for { let i := start } lt(i, contentEnd) { i := add(i, 1) } {
                let value := byte(0, mload(add(data, i)))
                if and(atStart, eq(value, 0x80)) { valid := 0 }
                atStart := lt(value, 0x80)
            }
            if iszero(atStart) { valid := 0 }
        }
        if (!valid) revert X509InvalidObjectIdentifier(start);
    }

    /// @dev Reads the header of the element at `offset`, which must lie within `end`; returns its
    /// tag and the bounds of its content. In assembly: every element goes through here.
    function _header(bytes memory der, uint256 offset, uint256 end)
        private
        pure
        returns (uint256 tag, uint256 start, uint256 contentEnd)
    {
        uint256 failure; // 0 or the HEADER_* code of the first failed check
        assembly ("memory-safe") {
            // One pass that stops at the first failure; offsets stay far below 2^64 (they are
            // bounded by the length of a bytes in memory), so the additions cannot overflow.
            for {} 1 {} {
                if gt(add(offset, 2), end) {
                    failure := 1 // HEADER_TRUNCATED
                    break
                }
                let word := mload(add(add(der, 0x20), offset))
                tag := shr(248, word)
                if eq(and(tag, 0x1f), 0x1f) {
                    failure := 2 // HEADER_HIGH_TAG
                    break
                }
                let length := byte(1, word)
                start := add(offset, 2)
                if gt(length, 0x7f) {
                    switch length
                    case 0x81 {
                        start := add(offset, 3)
                        length := byte(2, word)
                        if lt(length, 0x80) { failure := 4 } // HEADER_NON_MINIMAL
                    }
                    case 0x82 {
                        start := add(offset, 4)
                        length := and(shr(224, word), 0xffff)
                        if lt(length, 0x100) { failure := 4 } // HEADER_NON_MINIMAL
                    }
                    case 0x80 { failure := 3 } // HEADER_INDEFINITE
                    default { failure := 5 } // HEADER_LONG
                    // A length that does not fit is truncation, whatever its bytes say.
                    if gt(start, end) { failure := 1 }
                    if failure { break }
                }
                contentEnd := add(start, length)
                if gt(contentEnd, end) { failure := 6 } // HEADER_OUT_OF_BOUNDS
                break
            }
        }
        if (failure != 0) _revertHeader(failure, offset);
    }

    function _revertHeader(uint256 failure, uint256 offset) private pure {
        if (failure == 1) revert X509Truncated(offset);
        if (failure == 2) revert X509UnsupportedTag(offset);
        if (failure == 3) revert X509IndefiniteLength(offset);
        if (failure == 4) revert X509NonMinimalLength(offset);
        if (failure == 5) revert X509UnsupportedLength(offset);
        revert X509LengthOutOfBounds(offset);
    }

    /// @dev `_header` requiring the tag `expected`.
    function _expect(bytes memory der, uint256 offset, uint256 end, uint256 expected)
        private
        pure
        returns (uint256 start, uint256 stop)
    {
        uint256 tag;
        (tag, start, stop) = _header(der, offset, end);
        if (tag != expected) revert X509UnexpectedTag(offset, expected, tag);
    }

    /// @dev `_expect` for the inside of an extension value, where a wrong tag is the extension's
    /// fault: `found` is 0 when the tag differs (header errors still revert).
    function _tryExpect(bytes memory der, uint256 offset, uint256 end, uint256 expected)
        private
        pure
        returns (uint256 start, uint256 stop, uint256 found)
    {
        uint256 tag;
        (tag, start, stop) = _header(der, offset, end);
        found = tag == expected ? 1 : 0;
    }

    /// @dev The 32 bytes at `der[offset]` (bytes past the end read as whatever memory follows: the
    /// callers only use the bytes they bounded).
    function _word(bytes memory der, uint256 offset) private pure returns (uint256 word) {
        assembly ("memory-safe") {
            word := mload(add(add(der, 0x20), offset))
        }
    }

    function _byteAt(bytes memory der, uint256 offset) private pure returns (uint256) {
        return _word(der, offset) >> 248;
    }
}
