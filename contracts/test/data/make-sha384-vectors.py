#!/usr/bin/env python3
"""Regenerates sha384-vectors.json, the SHA-384 vectors that Sha384.t.sol checks the Solidity
library against, computed by Python's hashlib (OpenSSL), i.e. independently of the contracts.

Messages: every length from 0 to 300 bytes (covering the padding boundaries 111/112, 127/128,
239/240, 255/256) and a few longer ones (1000, 4700 ~ a Nitro COSE Sig_structure, 10000). The
content is deterministic pseudo-random: the message of length n is the first n bytes of the
SHA-256 counter-mode stream SHA-256(b"sha384-vectors/<n>/<i>") for i = 0, 1, 2, ...

Also the digests of the real AWS Nitro attestation documents in ../shared/vectors/nitro/ (beside
the checkout; only their names and digests are written here, the documents are read in place).

Run from anywhere: python3 contracts/test/data/make-sha384-vectors.py. The output is checked in;
running it again gives the same file. Keys are in alphabetical order, as forge's JSON-to-struct
decoding requires.
"""
import hashlib
import json
import os

LENGTHS = list(range(301)) + [1000, 4700, 10000]


def message(n: int) -> bytes:
    stream = b""
    i = 0
    while len(stream) < n:
        stream += hashlib.sha256(b"sha384-vectors/%d/%d" % (n, i)).digest()
        i += 1
    return stream[:n]


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    documents_dir = os.path.join(here, "..", "..", "..", "..", "shared", "vectors", "nitro")
    documents = []
    for name in sorted(os.listdir(documents_dir)):
        if name.endswith(".cbor"):
            with open(os.path.join(documents_dir, name), "rb") as f:
                documents.append({"digest": "0x" + hashlib.sha384(f.read()).hexdigest(), "file": name})
    if not documents:
        raise SystemExit(f"no .cbor documents in {documents_dir}")
    vectors = []
    for n in LENGTHS:
        msg = message(n)
        vectors.append({"digest": "0x" + hashlib.sha384(msg).hexdigest(), "msg": "0x" + msg.hex()})
    out = os.path.join(here, "sha384-vectors.json")
    with open(out, "w") as f:
        json.dump({"documents": documents, "vectors": vectors}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
