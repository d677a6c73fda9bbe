#!/usr/bin/env python3
"""Checks the provenance log's COSE receipts (RFC 9942) with pycose, a COSE implementation
independent of the issuer's (coset).

For each receipt: a tagged COSE_Sign1 with protected alg ES384 and vds (395) = 1
(RFC9162_SHA256); unprotected vdp (396) holding one inclusion proof (-1), a bstr of the CBOR
array [tree size, leaf index, [path hashes]]; a detached (nil) payload. The root is recomputed
from the record (leaf hash SHA-256(0x00 || leaf), RFC 9162 §2.1.3.2) and the proof, then set as
the payload and the signature verified under the log's P-384 key. Input on stdin:

    {"log_key": {JWK}, "receipts": [{"receipt": "hex", "leaf": "text"}],
     "must_fail": [{"name": "...", "receipt": "hex", "leaf": "text"}]}

Prints one line per check and exits 0 only if all hold.
"""

import json
import sys

import cbor2
from pycose.keys import EC2Key
from pycose.keys.curves import P384
from pycose.messages import Sign1Message

from rfc9162 import Refused, root_from
from checks import b64url_decode, check, failures



def label(header, number):
    for key, value in header.items():
        if key == number or getattr(key, "identifier", None) == number:
            return value
    return None


def thaw(value):
    if isinstance(value, (tuple, list)):
        return [thaw(v) for v in value]
    if hasattr(value, "items"):
        return {k: thaw(v) for k, v in value.items()}
    return value


def verify(receipt_hex, leaf, key):
    # Tag 18 first; cbor2 >= 5.7 hands tagged arrays and maps over as tuples and frozendicts,
    # which pycose 1.1's CoseMessage.decode does not take, so pycose gets them as list and dict.
    tagged = cbor2.loads(bytes.fromhex(receipt_hex))
    if not isinstance(tagged, cbor2.CBORTag) or tagged.tag != 18:
        raise Refused("not a tagged COSE_Sign1")
    message = Sign1Message.from_cose_obj(thaw(tagged.value), True)
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
    root = root_from(leaf.encode(), index, size, path)
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
            size, index = verify(item["receipt"], item["leaf"], key)
            check(f"receipt {i} proves its record (leaf {index} of {size})", True)
        except Exception as e:  # noqa: BLE001 - any failure of the check is a failed check
            check(f"receipt {i} proves its record", False, f"{type(e).__name__}: {e}")
    for case in doc.get("must_fail", []):
        try:
            verify(case["receipt"], case["leaf"], key)
            check(f"refused: {case['name']}", False, "accepted")
        except Exception as e:  # noqa: BLE001
            check(f"refused: {case['name']}", True)
            print(f"     ({type(e).__name__}: {e})")
    if failures:
        sys.exit(1)


main()
