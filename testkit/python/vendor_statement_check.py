#!/usr/bin/env python3
"""Checks `twi vendor sign`'s vendor statements with pycose, a COSE implementation independent
of the one that wrote them (coset).

A vendor statement: a tagged COSE_Sign1 whose protected header has alg ES384 (-35), kid (4) the
SHA-256 of the vendor key's SubjectPublicKeyInfo (DER), and content type (3)
application/vnd.twi.vendor-statement+json; its payload is JSON with exactly `type`
("twi-vendor-statement/1"), `vendor` and `subject` (`name`, `version`, `sha384`); the signature
verifies under the vendor's P-384 key. Input on stdin:

    {"key_pem": "-----BEGIN PUBLIC KEY-----...", "statement": "hex",
     "expect": {"vendor": "...", "subject": {...}},
     "must_fail": [{"name": "...", "statement": "hex"}]}

Prints one line per check and exits 0 only if all hold.
"""

import hashlib
import json
import sys

from cryptography.hazmat.primitives import serialization
from pycose.keys import EC2Key
from pycose.keys.curves import P384

from checks import check, failures, refuses
from cose_sign1 import label, sign1
from rfc9162 import Refused

CONTENT_TYPE = "application/vnd.twi.vendor-statement+json"


def verify(statement_hex, pem):
    """The statement's header, kid and signature under the key; returns its payload (JSON)."""
    public = serialization.load_pem_public_key(pem.encode())
    spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    numbers = public.public_numbers()
    key = EC2Key(crv=P384, x=numbers.x.to_bytes(48, "big"), y=numbers.y.to_bytes(48, "big"))
    message = sign1(bytes.fromhex(statement_hex))
    alg = label(message.phdr, 1)
    if getattr(alg, "identifier", alg) != -35:
        raise Refused(f"alg {alg} is not ES384")
    if label(message.phdr, 3) != CONTENT_TYPE:
        raise Refused(f"the content type is not {CONTENT_TYPE}")
    if label(message.phdr, 4) != hashlib.sha256(spki).digest():
        raise Refused("the kid is not the SHA-256 of the key's SubjectPublicKeyInfo")
    message.key = key
    if not message.verify_signature():
        raise Refused("the signature does not verify under the vendor key")
    payload = json.loads(message.payload)
    if sorted(payload) != ["subject", "type", "vendor"] or payload["type"] != "twi-vendor-statement/1":
        raise Refused(f"the payload is not a vendor statement: {payload}")
    if sorted(payload["subject"]) != ["name", "sha384", "version"]:
        raise Refused(f"the subject is not name, version, sha384: {payload['subject']}")
    return payload


def main():
    doc = json.load(sys.stdin)
    try:
        payload = verify(doc["statement"], doc["key_pem"])
        check("the statement verifies under the vendor key", True)
        expect = doc["expect"]
        check("it names the vendor", payload["vendor"] == expect["vendor"], str(payload["vendor"]))
        check("it names the workload component", payload["subject"] == expect["subject"], str(payload["subject"]))
    except Exception as e:  # noqa: BLE001 - any failure of the check is a failed check
        check("the statement verifies under the vendor key", False, f"{type(e).__name__}: {e}")
    refuses(doc.get("must_fail", []), lambda case: verify(case["statement"], doc["key_pem"]))
    if failures:
        sys.exit(1)


main()
