// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title NitroDocument
/// @notice Parses an AWS Nitro attestation document (a COSE_Sign1 message whose payload is a CBOR
/// map) exactly as the Rust verifier does (`attestation-verifier/src/document.rs`, `cbor.rs`,
/// `verifier.rs`), so that the on-chain and off-chain verdicts agree. It verifies nothing
/// cryptographic: the registrar hashes `sigStructure` with SHA-384 and checks the ES384 signature
/// and the certificate chain.
/// @dev Which Rust rule each check mirrors (Rust error variant in brackets):
///
/// Whole input (document.rs `parse_document`):
///  - empty input [Empty] -> `DocumentEmpty`; longer than 16 KiB [TooLarge] -> `DocumentTooLarge`.
///  - the one-byte tag 18 (0xd2) may precede the message (coset `from_tagged_slice`); any other
///    leading tag head, including tag 18 in a longer form, and a tag on any item of the message
///    [UnexpectedTag] -> `UnexpectedTag`.
///
/// COSE_Sign1 envelope: Rust decodes it with coset on ciborium, which accepts any CBOR encoding
/// of the same values. Accepted here likewise: heads of any width (non-shortest), an
/// indefinite-length array, an indefinite-length empty map, and indefinite-length byte strings
/// whose chunks are definite byte strings or (as ciborium allows) nested indefinite ones; chunks
/// are concatenated. Rejected [MalformedCose]: truncation -> `CoseTruncated`; reserved
/// additional information 28-30, or 31 (indefinite) on a head that cannot have it ->
/// `CoseInvalidHead`; not an array -> `CoseNotArray`; not exactly 4 items -> `CoseArrayLength`;
/// an item of the wrong type or a non-bytes chunk -> `CoseWrongType`.
///  - bytes after the message [TrailingBytesAfterCose] -> `TrailingBytesAfterCose`.
///  - protected header content not exactly a1013822 = {1: -35} [UnsupportedProtectedHeader]
///    -> `UnsupportedProtectedHeader`.
///  - unprotected header not an empty map [UnexpectedUnprotectedHeader, or MalformedCose when
///    the map is also invalid] -> `UnexpectedUnprotectedHeader`.
///  - payload `null` (detached) [MissingPayload] -> `MissingPayload`.
///  - signature not 96 bytes [SignatureLength] -> `SignatureLength`.
///
/// Payload (cbor.rs `Reader`, document.rs `parse_payload`), strict: every head in shortest form
/// [NonCanonicalCbor "argument not in shortest form"] -> `NonShortestHead`; additional
/// information 28-30 -> `ReservedAdditionalInfo`; 31 (indefinite lengths, break) ->
/// `IndefiniteLength`; major type 7 with information 24-31 (floats, extended simple values) ->
/// `UnsupportedSimpleValue`; any item running past the end [Truncated] -> `PayloadTruncated`.
///  - top-level item not a map [PayloadNotMap] -> `PayloadNotMap`; bytes after it
///    [TrailingBytesInPayload] -> `TrailingBytesInPayload`.
///  - keys: text [NonTextKey] -> `NonTextKey`; one of the nine AWS field names [UnknownField] ->
///    `UnknownField`; each at most once [DuplicateField] -> `DuplicateField`; required
///    `digest`, `module_id`, `timestamp`, `pcrs`, `certificate`, `cabundle` (checked in that
///    order) [MissingField] -> `MissingField`.
///  - a value of the wrong major type [WrongType] -> `WrongType`; text that is not UTF-8
///    [InvalidUtf8] -> `InvalidUtf8`.
///  - module_id non-empty [EmptyModuleId]; digest exactly "SHA384" [UnsupportedDigest];
///    timestamp unsigned and non-zero [ZeroTimestamp].
///  - pcrs: a map of 1..=32 entries [PcrCount], unsigned keys 0..=31 [PcrIndexOutOfRange], no
///    index twice [DuplicatePcr], byte-string values of 32, 48 or 64 bytes [PcrLength]; sparse
///    maps are fine.
///  - certificate: 1..=1024 bytes; cabundle: array of 1..=8 [CabundleCount] byte strings of
///    1..=1024 bytes each; public_key (<= 1024), user_data (<= 512), nonce (<= 512): CBOR null
///    means absent, a present one may be empty [FieldLength] -> `FieldLength`.
///
/// Debug mode (verifier.rs `is_debug_mode`): PCR0, PCR1 and PCR2 all zero, a missing one
/// counting as zero.
library NitroDocument {
    /// @notice Largest document accepted (document.rs `MAX_DOCUMENT_BYTES`).
    uint256 internal constant MAX_DOCUMENT_BYTES = 16 * 1024;
    /// @notice Most `cabundle` entries accepted (document.rs `MAX_CABUNDLE_ENTRIES`).
    uint256 internal constant MAX_CABUNDLE_ENTRIES = 8;
    /// @notice Most bytes in `certificate` and in each `cabundle` entry.
    uint256 internal constant MAX_CERTIFICATE_BYTES = 1024;
    /// @notice Most bytes in `public_key`.
    uint256 internal constant MAX_PUBLIC_KEY_BYTES = 1024;
    /// @notice Most bytes in `user_data`.
    uint256 internal constant MAX_USER_DATA_BYTES = 512;
    /// @notice Most bytes in `nonce`.
    uint256 internal constant MAX_NONCE_BYTES = 512;
    /// @notice Highest PCR index.
    uint256 internal constant MAX_PCR_INDEX = 31;
    /// @notice Most PCR entries.
    uint256 internal constant MAX_PCR_COUNT = 32;
    /// @notice ES384 signature length (r || s).
    uint256 internal constant SIGNATURE_BYTES = 96;

    uint256 private constant MAJOR_UNSIGNED = 0;
    uint256 private constant MAJOR_BYTES = 2;
    uint256 private constant MAJOR_TEXT = 3;
    uint256 private constant MAJOR_ARRAY = 4;
    uint256 private constant MAJOR_MAP = 5;
    uint256 private constant MAJOR_TAG = 6;
    uint256 private constant MAJOR_SIMPLE = 7;
    /// Additional information 31: indefinite length (or, on major type 7, "break").
    uint256 private constant INFO_INDEFINITE = 31;
    uint256 private constant BREAK = 0xff;
    uint256 private constant NULL = 0xf6;
    /// Tag 18 (COSE_Sign1) as its one-byte head.
    uint256 private constant COSE_SIGN1_TAG_HEAD = 0xd2;
    /// The only protected header accepted, {1: -35} (alg: ES384), left-aligned, and its length.
    bytes32 private constant ES384_PROTECTED_HEADER = hex"a1013822";
    uint256 private constant ES384_PROTECTED_HEADER_BYTES = 4;
    /// The Sig_structure's first 12 bytes: array(4), text(10) "Signature1".
    bytes32 private constant SIG_STRUCTURE_PREFIX = hex"846a5369676e617475726531";
    /// The payload's field names, left-aligned, and the one digest accepted.
    bytes32 private constant KEY_MODULE_ID = "module_id";
    bytes32 private constant KEY_TIMESTAMP = "timestamp";
    bytes32 private constant KEY_USER_DATA = "user_data";
    bytes32 private constant KEY_DIGEST = "digest";
    bytes32 private constant KEY_PCRS = "pcrs";
    bytes32 private constant KEY_CERTIFICATE = "certificate";
    bytes32 private constant KEY_CABUNDLE = "cabundle";
    bytes32 private constant KEY_PUBLIC_KEY = "public_key";
    bytes32 private constant KEY_NONCE = "nonce";
    bytes32 private constant DIGEST_SHA384 = "SHA384";

    /// @notice A payload field of the attestation document (Rust `Field`).
    enum Field {
        ModuleId,
        Digest,
        Timestamp,
        Pcrs,
        Certificate,
        Cabundle,
        PublicKey,
        UserData,
        Nonce
    }

    /// @notice A decoded but **unverified** attestation document.
    struct Document {
        /// Protected header bytes (the bstr content; always a1013822), for the Sig_structure.
        bytes protectedHeader;
        /// The payload bytes the signature covers (the attestation document's CBOR map).
        bytes payload;
        /// ES384 signature, 96 bytes r || s.
        bytes signature;
        /// `module_id` (UTF-8 text, non-empty).
        bytes moduleId;
        /// `timestamp` in milliseconds since the Unix epoch.
        uint64 timestampMs;
        /// Bit i set when PCR i is present.
        uint256 pcrMask;
        /// PCR values by index; empty when absent (a present PCR is 32, 48 or 64 bytes).
        bytes[32] pcrs;
        /// The signing (leaf) certificate, DER.
        bytes certificate;
        /// The CA bundle, root first, DER.
        bytes[] cabundle;
        bool hasPublicKey;
        bytes publicKey;
        bool hasUserData;
        bytes userData;
        bool hasNonce;
        bytes nonce;
    }

    // Whole input.
    /// @notice The input is empty.
    error DocumentEmpty();
    /// @notice The input is longer than `MAX_DOCUMENT_BYTES`.
    error DocumentTooLarge(uint256 length);
    /// @notice The message carries a CBOR tag other than the one-byte tag 18.
    error UnexpectedTag();
    // COSE_Sign1 envelope (offsets are into the input).
    /// @notice The input ends inside the COSE_Sign1 message.
    error CoseTruncated(uint256 offset);
    /// @notice A head with reserved additional information, or indefinite where not allowed.
    error CoseInvalidHead(uint256 offset);
    /// @notice The message is not a CBOR array.
    error CoseNotArray(uint256 offset);
    /// @notice The COSE_Sign1 array does not have exactly 4 items.
    error CoseArrayLength(uint256 offset);
    /// @notice A COSE_Sign1 item (or byte-string chunk) has the wrong type.
    error CoseWrongType(uint256 offset);
    /// @notice Bytes follow the COSE_Sign1 message.
    error TrailingBytesAfterCose(uint256 count);
    /// @notice The protected header is not exactly {1: -35} (ES384).
    error UnsupportedProtectedHeader(bytes found);
    /// @notice The unprotected header is not an empty map.
    error UnexpectedUnprotectedHeader();
    /// @notice The payload is `null` (detached).
    error MissingPayload();
    /// @notice The signature is not 96 bytes.
    error SignatureLength(uint256 length);
    // Payload (offsets are into the payload).
    /// @notice The payload ends inside an item (offset: the payload length, as in Rust).
    error PayloadTruncated(uint256 offset);
    /// @notice A head whose argument is not in its shortest form.
    error NonShortestHead(uint256 offset);
    /// @notice A head with reserved additional information (28-30).
    error ReservedAdditionalInfo(uint256 offset);
    /// @notice An indefinite-length item or a break.
    error IndefiniteLength(uint256 offset);
    /// @notice A float or an extended simple value.
    error UnsupportedSimpleValue(uint256 offset);
    /// @notice The payload is not a map.
    error PayloadNotMap();
    /// @notice Bytes follow the payload map.
    error TrailingBytesInPayload(uint256 count);
    /// @notice A payload map key is not a text string.
    error NonTextKey(uint256 offset);
    /// @notice A payload key AWS does not define.
    error UnknownField(bytes name);
    /// @notice A payload key appears twice.
    error DuplicateField(Field field);
    /// @notice A required payload field is absent.
    error MissingField(Field field);
    /// @notice A payload field (or a PCR key or value) has the wrong CBOR type.
    error WrongType(Field field);
    /// @notice Text that is not valid UTF-8.
    error InvalidUtf8(Field field);
    /// @notice `module_id` is empty.
    error EmptyModuleId();
    /// @notice `digest` is not "SHA384".
    error UnsupportedDigest(bytes found);
    /// @notice `timestamp` is zero.
    error ZeroTimestamp();
    /// @notice `pcrs` has no entries or more than 32.
    error PcrCount(uint256 count);
    /// @notice A PCR index above 31.
    error PcrIndexOutOfRange(uint256 index);
    /// @notice A PCR index appears twice.
    error DuplicatePcr(uint256 index);
    /// @notice A PCR value is not 32, 48 or 64 bytes.
    error PcrLength(uint256 index, uint256 length);
    /// @notice `cabundle` is empty or has more than 8 entries.
    error CabundleCount(uint256 count);
    /// @notice A byte-string field is outside its allowed length.
    error FieldLength(Field field, uint256 length);

    // ---------------------------------------------------------------------------------------
    // Public API
    // ---------------------------------------------------------------------------------------

    /// @notice Decodes a COSE_Sign1 attestation document (untagged, or tagged with 18) and
    /// checks its structure against the Rust verifier's rules. Verifies no signature.
    /// @param cose The document bytes.
    /// @return doc The decoded fields; reverts with one of this library's errors otherwise.
    function parse(bytes memory cose) internal pure returns (Document memory doc) {
        uint256 end = cose.length;
        if (end == 0) revert DocumentEmpty();
        if (end > MAX_DOCUMENT_BYTES) revert DocumentTooLarge(end);
        uint256 data = _contents(cose);
        uint256 pos;
        uint256 first = _byteAt(data, 0);
        if (first == COSE_SIGN1_TAG_HEAD) pos = 1;
        else if (first >> 5 == MAJOR_TAG) revert UnexpectedTag();

        (uint256 major, uint256 info, uint256 count, uint256 next) = _looseHead(data, pos, end);
        if (major != MAJOR_ARRAY) revert CoseNotArray(pos);
        bool indefinite = info == INFO_INDEFINITE;
        if (!indefinite && count != 4) revert CoseArrayLength(pos);
        pos = next;

        (doc.protectedHeader, pos) = _looseBytes(data, pos, end);
        pos = _emptyMap(data, pos, end);
        if (pos < end && _byteAt(data, pos) == NULL) revert MissingPayload();
        (doc.payload, pos) = _looseBytes(data, pos, end);
        (doc.signature, pos) = _looseBytes(data, pos, end);
        if (indefinite) {
            if (pos >= end) revert CoseTruncated(pos);
            if (_byteAt(data, pos) != BREAK) revert CoseArrayLength(pos);
            ++pos;
        }
        if (pos != end) revert TrailingBytesAfterCose(end - pos);

        bytes memory protectedHeader = doc.protectedHeader;
        if (
            protectedHeader.length != ES384_PROTECTED_HEADER_BYTES
                || _word(_contents(protectedHeader), 0) & _prefixMask(ES384_PROTECTED_HEADER_BYTES)
                    != uint256(ES384_PROTECTED_HEADER)
        ) revert UnsupportedProtectedHeader(protectedHeader);
        if (doc.signature.length != SIGNATURE_BYTES) revert SignatureLength(doc.signature.length);

        _parsePayload(doc);
    }

    /// @notice The COSE Sig_structure for COSE_Sign1 with empty external AAD,
    /// `["Signature1", protected, h'', payload]`: the bytes the ES384 signature covers.
    function sigStructure(Document memory doc) internal pure returns (bytes memory out) {
        bytes memory protectedHeader = doc.protectedHeader;
        bytes memory payload = doc.payload;
        uint256 total = 1 + 11 + _bytesHeadLength(protectedHeader.length) + protectedHeader.length + 1
            + _bytesHeadLength(payload.length) + payload.length;
        out = new bytes(total);
        uint256 cursor = _contents(out);
        bytes32 prefix = SIG_STRUCTURE_PREFIX;
        assembly ("memory-safe") {
            mstore(cursor, prefix)
        }
        cursor = _writeBytes(cursor + 12, protectedHeader);
        assembly ("memory-safe") {
            mstore8(cursor, 0x40) // bytes(0): external_aad
        }
        _writeBytes(cursor + 1, payload);
    }

    /// @notice PCR `index`: whether the document has it, and its value (empty when absent).
    function pcr(Document memory doc, uint256 index) internal pure returns (bool present, bytes memory value) {
        if (index > MAX_PCR_INDEX || doc.pcrMask & _bit(index) == 0) return (false, value);
        return (true, doc.pcrs[index]);
    }

    /// @notice How many PCRs the document has.
    function pcrCount(Document memory doc) internal pure returns (uint256 count) {
        uint256 mask = doc.pcrMask;
        while (mask != 0) {
            mask &= mask - 1;
            ++count;
        }
    }

    /// @notice True when PCR0, PCR1 and PCR2 are all zero (an enclave started in debug mode,
    /// whose memory the host can read). A missing one counts as zero, so that dropping PCRs
    /// cannot hide debug mode (verifier.rs `is_debug_mode`).
    function isDebugMode(Document memory doc) internal pure returns (bool) {
        for (uint256 index; index < 3; ++index) {
            bytes memory value = doc.pcrs[index];
            uint256 data = _contents(value);
            uint256 length = value.length;
            for (uint256 offset; offset < length; offset += 32) {
                uint256 word = _word(data, offset);
                // Keep only the bytes inside the value (PCRs of 48 bytes end mid-word).
                if (length - offset < 32) word &= _prefixMask(length - offset);
                if (word != 0) return false;
            }
        }
        return true;
    }

    // ---------------------------------------------------------------------------------------
    // COSE_Sign1 envelope: ciborium's lenient decoding
    // ---------------------------------------------------------------------------------------

    /// Reads a head in any width. `info` is returned so callers can see indefinite lengths.
    function _looseHead(uint256 data, uint256 pos, uint256 end)
        private
        pure
        returns (uint256 major, uint256 info, uint256 argument, uint256 next)
    {
        if (pos >= end) revert CoseTruncated(pos);
        uint256 initial = _byteAt(data, pos);
        major = initial >> 5;
        info = initial & 0x1f;
        if (info < 24) return (major, info, info, pos + 1);
        if (info < 28) {
            uint256 width = _bit(info - 24);
            next = pos + 1 + width;
            if (next > end) revert CoseTruncated(end);
            argument = _word(data, pos + 1) >> (256 - 8 * width);
            return (major, info, argument, next);
        }
        // ciborium has no indefinite integers or tags.
        if (info < INFO_INDEFINITE || major < MAJOR_BYTES || major == MAJOR_TAG) revert CoseInvalidHead(pos);
        return (major, info, 0, pos + 1);
    }

    /// Reads a byte string (definite, or indefinite with chunks, possibly nested as ciborium
    /// accepts) and returns its content.
    function _looseBytes(uint256 data, uint256 pos, uint256 end) private pure returns (bytes memory, uint256) {
        (uint256 major, uint256 info, uint256 length, uint256 next) = _looseHead(data, pos, end);
        if (major == MAJOR_TAG) revert UnexpectedTag();
        if (major != MAJOR_BYTES) revert CoseWrongType(pos);
        if (info != INFO_INDEFINITE) {
            if (length > end - next) revert CoseTruncated(end);
            return (_copy(data + next, length), next + length);
        }
        (uint256 total, uint256 stop) = _scanChunks(data, next, end);
        return (_gatherChunks(data, next, stop, total), stop);
    }

    /// Checks the chunks of an indefinite byte string that starts before `pos`; returns their
    /// total length and the position after the closing break.
    function _scanChunks(uint256 data, uint256 pos, uint256 end) private pure returns (uint256 total, uint256) {
        // ciborium counts nesting: a nested indefinite string opens a level, a break closes one.
        uint256 depth = 1;
        while (depth != 0) {
            (uint256 major, uint256 info, uint256 length, uint256 next) = _looseHead(data, pos, end);
            if (major == MAJOR_SIMPLE && info == INFO_INDEFINITE) {
                --depth;
            } else if (major != MAJOR_BYTES) {
                revert CoseWrongType(pos);
            } else if (info == INFO_INDEFINITE) {
                ++depth;
            } else {
                if (length > end - next) revert CoseTruncated(end);
                next += length;
                total += length;
            }
            pos = next;
        }
        return (total, pos);
    }

    /// Concatenates the (already checked) chunks in `[pos, stop)`.
    function _gatherChunks(uint256 data, uint256 pos, uint256 stop, uint256 total)
        private
        pure
        returns (bytes memory content)
    {
        content = new bytes(total);
        uint256 cursor = _contents(content);
        while (pos < stop) {
            (, uint256 info, uint256 length, uint256 next) = _looseHead(data, pos, stop);
            if (info != INFO_INDEFINITE) {
                _copyTo(cursor, data + next, length);
                cursor += length;
                next += length;
            }
            pos = next;
        }
    }

    /// Reads the unprotected header, which must be an empty map (in any encoding).
    function _emptyMap(uint256 data, uint256 pos, uint256 end) private pure returns (uint256) {
        (uint256 major, uint256 info, uint256 count, uint256 next) = _looseHead(data, pos, end);
        if (major == MAJOR_TAG) revert UnexpectedTag();
        if (major != MAJOR_MAP) revert CoseWrongType(pos);
        if (info == INFO_INDEFINITE) {
            if (next >= end) revert CoseTruncated(end);
            if (_byteAt(data, next) != BREAK) revert UnexpectedUnprotectedHeader();
            return next + 1;
        }
        if (count != 0) revert UnexpectedUnprotectedHeader();
        return next;
    }

    // ---------------------------------------------------------------------------------------
    // Payload: the strict reader of cbor.rs
    // ---------------------------------------------------------------------------------------

    /// Reads one head, enforcing shortest-form arguments and definite lengths (cbor.rs `head`).
    function _head(uint256 data, uint256 pos, uint256 end)
        private
        pure
        returns (uint256 major, uint256 argument, uint256 next)
    {
        if (pos >= end) revert PayloadTruncated(end);
        uint256 initial = _byteAt(data, pos);
        major = initial >> 5;
        uint256 info = initial & 0x1f;
        if (info < 24) {
            argument = info;
            next = pos + 1;
        } else if (info < 28) {
            uint256 width = _bit(info - 24);
            next = pos + 1 + width;
            if (next > end) revert PayloadTruncated(end);
            argument = _word(data, pos + 1) >> (256 - 8 * width);
            // Shortest form: one byte for 24..255, two bytes above 0xff, four above 0xffff,
            // eight above 0xffffffff (the threshold has 4 * width bits).
            if (info == 24 ? argument < 24 : argument >> (4 * width) == 0) revert NonShortestHead(pos);
        } else if (info < INFO_INDEFINITE) {
            revert ReservedAdditionalInfo(pos);
        } else {
            revert IndefiniteLength(pos);
        }
        if (major == MAJOR_SIMPLE && info > 23) revert UnsupportedSimpleValue(pos);
    }

    /// Skips `length` content bytes at `pos` (cbor.rs `string_body`).
    function _body(uint256 pos, uint256 length, uint256 end) private pure returns (uint256) {
        if (length > end - pos) revert PayloadTruncated(end);
        return pos + length;
    }

    function _parsePayload(Document memory doc) private pure {
        bytes memory payload = doc.payload;
        uint256 data = _contents(payload);
        uint256 end = payload.length;
        (uint256 major, uint256 count, uint256 pos) = _head(data, 0, end);
        if (major != MAJOR_MAP) revert PayloadNotMap();
        uint256 seen;
        // Each entry consumes at least one byte, so a forged huge count ends in truncation.
        for (uint256 entry; entry < count; ++entry) {
            uint256 keyOffset = pos;
            uint256 keyLength;
            (major, keyLength, pos) = _head(data, pos, end);
            if (major != MAJOR_TEXT) revert NonTextKey(keyOffset);
            uint256 keyStart = pos;
            pos = _body(pos, keyLength, end);
            Field field = _fieldForKey(data, keyStart, keyLength);
            uint256 bit = _bit(uint256(field));
            if (seen & bit != 0) revert DuplicateField(field);
            seen |= bit;
            pos = _parseField(doc, field, data, pos, end);
        }
        if (pos != end) revert TrailingBytesInPayload(end - pos);
        if (seen & _bit(uint256(Field.Digest)) == 0) revert MissingField(Field.Digest);
        if (seen & _bit(uint256(Field.ModuleId)) == 0) revert MissingField(Field.ModuleId);
        if (seen & _bit(uint256(Field.Timestamp)) == 0) revert MissingField(Field.Timestamp);
        if (seen & _bit(uint256(Field.Pcrs)) == 0) revert MissingField(Field.Pcrs);
        if (seen & _bit(uint256(Field.Certificate)) == 0) revert MissingField(Field.Certificate);
        if (seen & _bit(uint256(Field.Cabundle)) == 0) revert MissingField(Field.Cabundle);
    }

    /// Maps a key to its field (document.rs `field_for_key`); the key is in bounds.
    function _fieldForKey(uint256 data, uint256 start, uint256 length) private pure returns (Field) {
        if (length <= 11) {
            uint256 key = _word(data, start) & _prefixMask(length);
            if (length == 9) {
                if (key == uint256(KEY_MODULE_ID)) return Field.ModuleId;
                if (key == uint256(KEY_TIMESTAMP)) return Field.Timestamp;
                if (key == uint256(KEY_USER_DATA)) return Field.UserData;
            } else if (length == 6) {
                if (key == uint256(KEY_DIGEST)) return Field.Digest;
            } else if (length == 4) {
                if (key == uint256(KEY_PCRS)) return Field.Pcrs;
            } else if (length == 11) {
                if (key == uint256(KEY_CERTIFICATE)) return Field.Certificate;
            } else if (length == 8) {
                if (key == uint256(KEY_CABUNDLE)) return Field.Cabundle;
            } else if (length == 10) {
                if (key == uint256(KEY_PUBLIC_KEY)) return Field.PublicKey;
            } else if (length == 5) {
                if (key == uint256(KEY_NONCE)) return Field.Nonce;
            }
        }
        revert UnknownField(_copy(data + start, length));
    }

    /// Reads the value of `field` at `pos` into `doc`; returns the position after it.
    function _parseField(Document memory doc, Field field, uint256 data, uint256 pos, uint256 end)
        private
        pure
        returns (uint256)
    {
        if (field == Field.ModuleId) {
            uint256 start;
            (start, pos) = _text(field, data, pos, end);
            if (pos == start) revert EmptyModuleId();
            doc.moduleId = _copy(data + start, pos - start);
        } else if (field == Field.Digest) {
            uint256 start;
            (start, pos) = _text(field, data, pos, end);
            if (pos - start != 6 || _word(data, start) & _prefixMask(6) != uint256(DIGEST_SHA384)) {
                revert UnsupportedDigest(_copy(data + start, pos - start));
            }
        } else if (field == Field.Timestamp) {
            (uint256 major, uint256 timestamp, uint256 next) = _head(data, pos, end);
            if (major != MAJOR_UNSIGNED) revert WrongType(field);
            if (timestamp == 0) revert ZeroTimestamp();
            // casting to 'uint64' is safe because a head's argument has at most 64 bits.
            // forge-lint: disable-next-line(unsafe-typecast)
            doc.timestampMs = uint64(timestamp);
            pos = next;
        } else if (field == Field.Pcrs) {
            pos = _parsePcrs(doc, data, pos, end);
        } else if (field == Field.Certificate) {
            (doc.certificate, pos) = _byteString(field, data, pos, end, 1, MAX_CERTIFICATE_BYTES);
        } else if (field == Field.Cabundle) {
            pos = _parseCabundle(doc, data, pos, end);
        } else if (field == Field.PublicKey) {
            (doc.hasPublicKey, doc.publicKey, pos) = _optionalBytes(field, data, pos, end, MAX_PUBLIC_KEY_BYTES);
        } else if (field == Field.UserData) {
            (doc.hasUserData, doc.userData, pos) = _optionalBytes(field, data, pos, end, MAX_USER_DATA_BYTES);
        } else {
            (doc.hasNonce, doc.nonce, pos) = _optionalBytes(field, data, pos, end, MAX_NONCE_BYTES);
        }
        return pos;
    }

    /// A UTF-8 text string (document.rs `read_text`): returns its content range.
    function _text(Field field, uint256 data, uint256 pos, uint256 end)
        private
        pure
        returns (uint256 start, uint256 next)
    {
        uint256 major;
        uint256 length;
        (major, length, start) = _head(data, pos, end);
        if (major != MAJOR_TEXT) revert WrongType(field);
        next = _body(start, length, end);
        if (!_isUtf8(data + start, length)) revert InvalidUtf8(field);
    }

    /// A byte string of `min..=max` bytes (document.rs `read_bytes`), copied.
    function _byteString(Field field, uint256 data, uint256 pos, uint256 end, uint256 min, uint256 max)
        private
        pure
        returns (bytes memory value, uint256 next)
    {
        (uint256 major, uint256 length, uint256 start) = _head(data, pos, end);
        if (major != MAJOR_BYTES) revert WrongType(field);
        next = _body(start, length, end);
        if (length < min || length > max) revert FieldLength(field, length);
        value = _copy(data + start, length);
    }

    /// An optional byte string: `null` means absent, a present one may be empty
    /// (document.rs `read_optional_bytes`).
    function _optionalBytes(Field field, uint256 data, uint256 pos, uint256 end, uint256 max)
        private
        pure
        returns (bool present, bytes memory value, uint256 next)
    {
        if (pos < end && _byteAt(data, pos) == NULL) return (false, value, pos + 1);
        (value, next) = _byteString(field, data, pos, end, 0, max);
        present = true;
    }

    /// The `pcrs` map (document.rs `read_pcrs`).
    function _parsePcrs(Document memory doc, uint256 data, uint256 pos, uint256 end) private pure returns (uint256) {
        (uint256 major, uint256 count, uint256 next) = _head(data, pos, end);
        if (major != MAJOR_MAP) revert WrongType(Field.Pcrs);
        if (count == 0 || count > MAX_PCR_COUNT) revert PcrCount(count);
        pos = next;
        uint256 mask;
        bytes[32] memory pcrs = doc.pcrs;
        for (uint256 entry; entry < count; ++entry) {
            uint256 index;
            (major, index, pos) = _head(data, pos, end);
            if (major != MAJOR_UNSIGNED) revert WrongType(Field.Pcrs);
            if (index > MAX_PCR_INDEX) revert PcrIndexOutOfRange(index);
            if (mask & _bit(index) != 0) revert DuplicatePcr(index);
            mask |= _bit(index);
            uint256 length;
            uint256 start;
            (major, length, start) = _head(data, pos, end);
            if (major != MAJOR_BYTES) revert WrongType(Field.Pcrs);
            pos = _body(start, length, end);
            if (length != 32 && length != 48 && length != 64) revert PcrLength(index, length);
            pcrs[index] = _copy(data + start, length);
        }
        doc.pcrMask = mask;
        return pos;
    }

    /// The `cabundle` array (document.rs `read_cabundle`).
    function _parseCabundle(Document memory doc, uint256 data, uint256 pos, uint256 end)
        private
        pure
        returns (uint256)
    {
        (uint256 major, uint256 count, uint256 next) = _head(data, pos, end);
        if (major != MAJOR_ARRAY) revert WrongType(Field.Cabundle);
        if (count == 0 || count > MAX_CABUNDLE_ENTRIES) revert CabundleCount(count);
        pos = next;
        bytes[] memory cabundle = new bytes[](count);
        for (uint256 entry; entry < count; ++entry) {
            (cabundle[entry], pos) = _byteString(Field.Cabundle, data, pos, end, 1, MAX_CERTIFICATE_BYTES);
        }
        doc.cabundle = cabundle;
        return pos;
    }

    /// UTF-8 validity as Rust's `std::str::from_utf8` decides it: no overlong forms, no
    /// surrogates, nothing above U+10FFFF.
    function _isUtf8(uint256 data, uint256 length) private pure returns (bool) {
        uint256 at;
        while (at < length) {
            // ASCII fast path, a word at a time.
            if (
                length - at >= 32
                    && _word(data, at) & 0x8080808080808080808080808080808080808080808080808080808080808080 == 0
            ) {
                at += 32;
                continue;
            }
            uint256 lead = _byteAt(data, at);
            if (lead < 0x80) {
                ++at;
                continue;
            }
            uint256 continuation;
            // Allowed range of the first continuation byte; later ones are 0x80..=0xbf.
            uint256 low = 0x80;
            uint256 high = 0xbf;
            if (lead >= 0xc2 && lead <= 0xdf) {
                continuation = 1;
            } else if (lead == 0xe0) {
                (continuation, low) = (2, 0xa0);
            } else if (lead == 0xed) {
                (continuation, high) = (2, 0x9f);
            } else if (lead >= 0xe1 && lead <= 0xef) {
                continuation = 2;
            } else if (lead == 0xf0) {
                (continuation, low) = (3, 0x90);
            } else if (lead == 0xf4) {
                (continuation, high) = (3, 0x8f);
            } else if (lead >= 0xf1 && lead <= 0xf3) {
                continuation = 3;
            } else {
                return false;
            }
            if (length - at <= continuation) return false;
            uint256 second = _byteAt(data, at + 1);
            if (second < low || second > high) return false;
            for (uint256 k = 2; k <= continuation; ++k) {
                uint256 next = _byteAt(data, at + k);
                if (next < 0x80 || next > 0xbf) return false;
            }
            at += continuation + 1;
        }
        return true;
    }

    // ---------------------------------------------------------------------------------------
    // Memory helpers
    // ---------------------------------------------------------------------------------------

    /// Address of the first content byte of `value`.
    function _contents(bytes memory value) private pure returns (uint256 data) {
        assembly ("memory-safe") {
            data := add(value, 0x20)
        }
    }

    /// The byte at `data + offset` (bounds checked by the caller).
    function _byteAt(uint256 data, uint256 offset) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := byte(0, mload(add(data, offset)))
        }
    }

    /// The 32 bytes at `data + offset`; bytes past the end of the value are garbage, and callers
    /// mask them off.
    function _word(uint256 data, uint256 offset) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := mload(add(data, offset))
        }
    }

    /// 2^n, for bit sets.
    function _bit(uint256 n) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := shl(n, 1)
        }
    }

    /// A mask keeping the first `length` (< 32) bytes of a word.
    function _prefixMask(uint256 length) private pure returns (uint256) {
        return ~(type(uint256).max >> (8 * length));
    }

    /// A new `bytes` holding `length` bytes copied from `source`.
    function _copy(uint256 source, uint256 length) private pure returns (bytes memory out) {
        assembly ("memory-safe") {
            out := mload(0x40)
            mstore(out, length)
            mcopy(add(out, 0x20), source, length)
            // Zero the padding after the content, as Solidity's own allocations keep it.
            mstore(add(add(out, 0x20), length), 0)
            mstore(0x40, and(add(add(out, 0x3f), length), not(0x1f)))
        }
    }

    function _copyTo(uint256 destination, uint256 source, uint256 length) private pure {
        assembly ("memory-safe") {
            mcopy(destination, source, length)
        }
    }

    /// Length of the shortest CBOR byte-string head for `length` (< 2^32).
    function _bytesHeadLength(uint256 length) private pure returns (uint256) {
        if (length < 24) return 1;
        if (length <= 0xff) return 2;
        if (length <= 0xffff) return 3;
        return 5;
    }

    /// Writes the shortest byte-string head for `value` and its content at `cursor`; returns the
    /// position after them.
    function _writeBytes(uint256 cursor, bytes memory value) private pure returns (uint256) {
        uint256 length = value.length;
        uint256 headLength = _bytesHeadLength(length);
        uint256 head;
        if (headLength == 1) head = 0x40 | length;
        else if (headLength == 2) head = 0x5800 | length;
        else if (headLength == 3) head = 0x590000 | length;
        else head = 0x5a00000000 | length;
        assembly ("memory-safe") {
            // The head goes big-endian into the word at `cursor`, keeping the bytes after it.
            let shifted := shl(sub(256, mul(8, headLength)), head)
            mstore(cursor, or(shifted, and(mload(cursor), shr(mul(8, headLength), not(0)))))
            mcopy(add(cursor, headLength), add(value, 0x20), length)
        }
        return cursor + headLength + length;
    }
}
