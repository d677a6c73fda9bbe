#!/usr/bin/env python3
"""Checks the provenance log's records — SCITT signed statements — and their COSE receipts
(RFC 9942) with pycose, a COSE implementation independent of the issuer's (coset).

Each statement (draft-ietf-scitt-architecture's signed-statement profile): a tagged COSE_Sign1
whose protected header has alg ES384, a kid, content type application/json and CWT claims (15)
with iss (1) and sub (2); the payload is the record's JSON, whose credential_id is the sub; the
signature verifies under the log's P-384 key.

For each receipt: a tagged COSE_Sign1 with protected alg ES384 and vds (395) = 1
(RFC9162_SHA256); unprotected vdp (396) holding one inclusion proof (-1), a bstr of the CBOR
array [tree size, leaf index, [path hashes]]; a detached (nil) payload. The root is recomputed
from the statement's bytes (the leaf: hash SHA-256(0x00 || leaf), RFC 9162 §2.1.3.2) and the
proof, then set as the payload and the signature verified under the log's P-384 key. Input on
stdin:

    {"log_key": {JWK}, "receipts": [{"receipt": "hex", "statement": "hex"}],
     "must_fail": [{"name": "...", "receipt": "hex", "statement": "hex"}]}

Prints one line per check and exits 0 only if all hold.
"""

import json
import sys

import cbor2
from pycose.keys import EC2Key
from pycose.keys.curves import P384

from rfc9162 import Refused, root_from
from checks import b64url_decode, check, failures, refuses
from cose_sign1 import label, sign1, thaw


def verify_statement(statement, key):
    """The SCITT signed statement's profile and signature; returns (iss, sub, record)."""
    message = sign1(statement)
    alg = label(message.phdr, 1)
    if getattr(alg, "identifier", alg) != -35:
        raise Refused(f"alg {alg} is not ES384")
    if not label(message.phdr, 4):
        raise Refused("no kid")
    if label(message.phdr, 3) != "application/json":
        raise Refused("the content type is not application/json")
    claims = label(message.phdr, 15)
    if not isinstance(claims, dict) or not isinstance(claims.get(1), str) or not isinstance(claims.get(2), str):
        raise Refused("no CWT claims with iss and sub")
    if label(message.phdr, 395) is not None:
        raise Refused("a receipt (vds) is not a statement")
    record = json.loads(message.payload)
    if record.get("credential_id") != claims[2]:
        raise Refused("sub is not the record's credential_id")
    message.key = key
    if not message.verify_signature():
        raise Refused("the statement's signature does not verify under the log key")
    return claims[1], claims[2], record


def verify(receipt_hex, statement_hex, key):
    leaf = bytes.fromhex(statement_hex)
    verify_statement(leaf, key)
    message = sign1(bytes.fromhex(receipt_hex))
    alg = label(message.phdr, 1)
    if getattr(alg, "identifier", alg) != -35:
        raise Refused(f"alg {alg} is not ES384")
    if label(message.phdr, 395) != 1:
        raise Refused("vds is not RFC9162_SHA256")
    if message.payload is not None:
        raise Refused("the payload is not detached")
    proofs = label(message.uhdr, 396)
    if not isinstance(proofs, dict) or not isinstance(proofs.get(-1), list) or len(proofs[-1]) != 1:
        raise Refused("no single inclusion proof in vdp")
    size, index, path = cbor2.loads(proofs[-1][0])
    root = root_from(leaf, index, size, path)
    message.key = key
    message.payload = root
    if not message.verify_signature():
        raise Refused("the log's signature over the recomputed root does not verify")
    return size, index


def main():
    doc = json.load(sys.stdin)
    jwk = doc["log_key"]
    key = EC2Key(crv=P384, x=b64url_decode(jwk["x"]), y=b64url_decode(jwk["y"]))
    for i, item in enumerate(doc["receipts"]):
        try:
            size, index = verify(item["receipt"], item["statement"], key)
            check(f"receipt {i} proves its signed statement (leaf {index} of {size})", True)
        except Exception as e:  # noqa: BLE001 - any failure of the check is a failed check
            check(f"receipt {i} proves its signed statement", False, f"{type(e).__name__}: {e}")
    refuses(doc.get("must_fail", []), lambda case: verify(case["receipt"], case["statement"], key))
    if failures:
        sys.exit(1)


main()
