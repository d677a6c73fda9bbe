"""Interop check of TWI's HPKE (attester/src/hpke.rs) with pyhpke, an independent RFC 9180
implementation on top of pyca/cryptography. Driven by attester/tests/hpke_interop.rs
through twi_testkit::tools::hpke_check.

Input (JSON on stdin): the suite's recipient private key, public key, the ikm the Rust side
derived it from, a message Rust sealed (enc, ct, info, aad, and the expected plaintext).
Output (JSON on stdout): what pyhpke derived from the ikm, whether it opened Rust's message,
whether it refused tampered copies, and a message pyhpke sealed to the same public key.
"""
import json
import sys

from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey
from cryptography.hazmat.primitives.asymmetric import ec

req = json.load(sys.stdin)
h = bytes.fromhex
suite = CipherSuite.new(KEMId.DHKEM_P384_HKDF_SHA384, KDFId.HKDF_SHA384, AEADId.AES256_GCM)

derived = suite.kem.derive_key_pair(h(req["ikm"]))
sk = KEMKey.from_pyca_cryptography_key(ec.derive_private_key(int(req["sk"], 16), ec.SECP384R1()))
pk = suite.kem.deserialize_public_key(h(req["pk"]))

enc, ct, info, aad = h(req["enc"]), h(req["ct"]), h(req["info"]), h(req["aad"])


def open_(enc, ct, info, aad):
    return suite.create_recipient_context(enc, sk, info=info).open(ct, aad=aad)


opened = open_(enc, ct, info, aad)


def refused(**changes):
    args = dict(enc=enc, ct=ct, info=info, aad=aad)
    args.update(changes)
    try:
        open_(args["enc"], args["ct"], args["info"], args["aad"])
        return False
    except Exception:
        return True


flipped = bytearray(ct)
flipped[0] ^= 1
refusals = [refused(ct=bytes(flipped)), refused(info=info + b"x"), refused(aad=aad + b"x")]

py_info, py_aad, py_pt = b"pyhpke info", b"pyhpke aad", b"sealed by pyhpke for the Rust side"
py_enc, sender = suite.create_sender_context(pk, info=py_info)
py_ct = sender.seal(py_pt, aad=py_aad)

json.dump(
    {
        # to_private_bytes() left-pads the scalar; compare it as a 48-byte big-endian integer.
        "derived_sk": int.from_bytes(derived.private_key.to_private_bytes(), "big").to_bytes(48, "big").hex(),
        "derived_pk": derived.public_key.to_public_bytes().hex(),
        "opened": opened.hex(),
        "refused_all": all(refusals),
        "py_enc": py_enc.hex(),
        "py_ct": py_ct.hex(),
        "py_info": py_info.hex(),
        "py_aad": py_aad.hex(),
        "py_pt": py_pt.hex(),
    },
    sys.stdout,
)
