#!/usr/bin/env python3
"""Opens provenance records the issuer sealed to an auditor key with pycose, a COSE
implementation independent of the issuer's (coset, RustCrypto).

Each statement: a tagged COSE_Sign1 (ES384, CWT claims with iss and sub) whose content type is
`application/cose; cose-type="cose-encrypt"` and whose payload is a tagged COSE_Encrypt (96):
content alg A256GCM, one recipient with alg ECDH-ES + HKDF-256 (-25, RFC 9053 §6.3.1), an
ephemeral P-384 key (-1) and the kid of the auditor key, SHA-256 of its SubjectPublicKeyInfo
(computed here with `cryptography`). The statement's signature is verified under the log key
(no auditor key needed), then pycose derives the content key itself (its own COSE_KDF_Context,
RFC 9053 §5.2) and decrypts; the plaintext must be exactly the expected record JSON, whose
credential_id is the sub. Input on stdin:

    {"log_key": {JWK}, "auditor": {"d": "hex"},
     "records": [{"statement": "hex", "record_json": "..."}],
     "must_fail": [{"name": "...", "statement": "hex", "d": "hex (optional: another key)",
                    "ignore_kid": true (optional: try the key even if the kid names another)}]}

Prints one line per check and exits 0 only if all hold.
"""

import hashlib
import json
import sys

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.keys import EC2Key
from pycose.keys.curves import P384
from pycose.messages import EncMessage

from rfc9162 import Refused
from checks import b64url_decode, check, failures, refuses
from cose_sign1 import label, sign1, thaw

SEALED = 'application/cose; cose-type="cose-encrypt"'


def auditor_key(d_hex):
    """The auditor's pycose key, and its kid: SHA-256 of the SPKI."""
    private = ec.derive_private_key(int(d_hex, 16), ec.SECP384R1())
    numbers = private.public_key().public_numbers()
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = EC2Key(
        crv=P384,
        d=bytes.fromhex(d_hex),
        x=numbers.x.to_bytes(48, "big"),
        y=numbers.y.to_bytes(48, "big"),
    )
    return key, hashlib.sha256(spki).digest()


def open_record(statement_hex, log_key, d_hex, ignore_kid=False):
    """Verifies the statement and decrypts its record; returns (sub, plaintext)."""
    message = sign1(bytes.fromhex(statement_hex))
    alg = label(message.phdr, 1)
    if getattr(alg, "identifier", alg) != -35:
        raise Refused(f"alg {alg} is not ES384")
    if label(message.phdr, 3) != SEALED:
        raise Refused(f"the content type is not {SEALED}")
    claims = label(message.phdr, 15)
    if not isinstance(claims, dict) or not isinstance(claims.get(1), str) or not isinstance(claims.get(2), str):
        raise Refused("no CWT claims with iss and sub")
    message.key = log_key
    if not message.verify_signature():
        raise Refused("the statement's signature does not verify under the log key")
    tagged = cbor2.loads(message.payload)
    if not isinstance(tagged, cbor2.CBORTag) or tagged.tag != 96:
        raise Refused("the payload is not a tagged COSE_Encrypt (96)")
    encrypted = EncMessage.from_cose_obj(thaw(tagged.value), True)
    if len(encrypted.recipients) != 1:
        raise Refused("not exactly one recipient")
    recipient = encrypted.recipients[0]
    ralg = label(recipient.phdr, 1)
    if getattr(ralg, "identifier", ralg) != -25:
        raise Refused(f"the recipient's alg {ralg} is not ECDH-ES + HKDF-256")
    key, kid = auditor_key(d_hex)
    if label(recipient.uhdr, 4) != kid and not ignore_kid:
        raise Refused("the recipient's kid is not the SHA-256 of this auditor key's SPKI")
    recipient.key = key
    return claims[2], encrypted.decrypt(recipient)


def main():
    doc = json.load(sys.stdin)
    jwk = doc["log_key"]
    log_key = EC2Key(crv=P384, x=b64url_decode(jwk["x"]), y=b64url_decode(jwk["y"]))
    d_hex = doc["auditor"]["d"]
    for i, item in enumerate(doc["records"]):
        try:
            sub, plaintext = open_record(item["statement"], log_key, d_hex)
            exact = plaintext == item["record_json"].encode()
            about = json.loads(plaintext).get("credential_id") == sub
            check(f"record {i} (sub {sub}) decrypts to the exact record JSON, about its sub", exact and about)
        except Exception as e:  # noqa: BLE001 - any failure of the check is a failed check
            check(f"record {i} decrypts with the auditor key", False, f"{type(e).__name__}: {e}")
    refuses(
        doc.get("must_fail", []),
        lambda case: open_record(case["statement"], log_key, case.get("d", d_hex), case.get("ignore_kid", False)),
    )
    if failures:
        sys.exit(1)


main()
