#!/usr/bin/env python3
"""Checks a SPIFFE trust bundle, and SVIDs under it, by go-spiffe's rules.

Go is not installed on the test machines, so this is a faithful re-implementation (in Python,
with the `cryptography` package, no code of the issuer's) of what go-spiffe v2 does:

- spiffebundle.Parse (bundle/spiffebundle/bundle.go): the document is a JSON object; `keys`
  MUST be present ("no authorities found"); each key is a JWK as go-jose reads it (an EC key
  with crv/x/y on its curve; `x5c` standard base64 DER certificates whose first certificate's
  public key MUST equal the JWK's key); `use` "x509-svid" needs exactly one certificate in
  `x5c` ("expected a single certificate in x509-svid entry N"); `use` "jwt-svid" needs a `kid`
  ("keyID cannot be empty"); any other `use` is ignored. `spiffe_refresh_hint` and
  `spiffe_sequence`, when present, are integers. WIT-SVID.md adds `use` "wit-svid", read like
  "jwt-svid" (a key with a `kid`).
- x509svid.Verify (svid/x509svid/verify.go): the leaf is not a CA, has keyUsage
  digitalSignature and neither keyCertSign nor cRLSign, exactly one URI SAN, a SPIFFE ID in the
  trust domain; the chain verifies to an X.509 authority of that trust domain's bundle with Go's
  crypto/x509, which refuses a certificate with an unhandled critical extension (the issuer's
  simulated-TEE marker is handled only when the input names its OID in `handled_critical`).
- a WIT verified like go-spiffe's jwtsvid.ParseAndValidate, against `wit-svid` authorities:
  `kid` names an authority, `alg` ES256/ES384 matching its curve, the signature, `typ`
  wit+jwt, `sub` a SPIFFE ID in the trust domain, `exp` not passed.

Input on stdin:

    {"bundle": {...}, "trust_domain": "example.org",
     "x509_svid": ["PEM leaf", ...], "handled_critical": ["OID", ...],
     "wit": "token", "now": 1234,
     "must_fail_wits": [{"name": "...", "token": "..."}],
     "must_fail_bundles": [{"name": "...", "bundle": {...}}]}

Prints one line per check and exits 0 only if all hold.
"""

import base64
import json
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtensionOID
from checks import check, failures

CURVES = {"P-256": (ec.SECP256R1(), 32, "ES256", hashes.SHA256()), "P-384": (ec.SECP384R1(), 48, "ES384", hashes.SHA384())}
# The critical extensions Go's crypto/x509 handles itself.
GO_HANDLED = {
    ExtensionOID.KEY_USAGE.dotted_string,
    ExtensionOID.EXTENDED_KEY_USAGE.dotted_string,
    ExtensionOID.BASIC_CONSTRAINTS.dotted_string,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string,
    ExtensionOID.NAME_CONSTRAINTS.dotted_string,
    ExtensionOID.CERTIFICATE_POLICIES.dotted_string,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string,
}


class BundleError(Exception):
    pass


def b64url_decode(text):
    if not isinstance(text, str) or "=" in text:
        raise BundleError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwk_key(jwk):
    """The public key of an EC JWK, as go-jose reads it."""
    if jwk.get("kty") != "EC" or jwk.get("crv") not in CURVES:
        raise BundleError(f"unsupported JWK {jwk.get('kty')!r}/{jwk.get('crv')!r}")
    curve, size, _, _ = CURVES[jwk["crv"]]
    x, y = b64url_decode(jwk.get("x")), b64url_decode(jwk.get("y"))
    if len(x) != size or len(y) != size:
        raise BundleError("invalid EC key coordinates")
    return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve).public_key()


def parse_bundle(doc):
    """go-spiffe's spiffebundle.Parse: (x509 authorities, {kid: key} for jwt-svid, for wit-svid)."""
    if not isinstance(doc, dict):
        raise BundleError("unable to parse JWKS")
    for field in ("spiffe_refresh_hint", "spiffe_sequence"):
        if field in doc and not isinstance(doc[field], int):
            raise BundleError(f"{field} is not an integer")
    if doc.get("keys") is None:
        raise BundleError("no authorities found")
    x509_authorities, jwt, wit = [], {}, {}
    for i, jwk in enumerate(doc["keys"]):
        key = jwk_key(jwk)
        certificates = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in jwk.get("x5c", [])]
        if certificates and certificates[0].public_key().public_numbers() != key.public_numbers():
            raise BundleError(f"entry {i}: invalid JWK, public keys mismatch")
        use = jwk.get("use")
        if use == "x509-svid":
            if len(certificates) != 1:
                raise BundleError(f"expected a single certificate in x509-svid entry {i}; got {len(certificates)}")
            x509_authorities.append(certificates[0])
        elif use in ("jwt-svid", "wit-svid"):
            if not jwk.get("kid"):
                raise BundleError(f"error adding authority {i} of JWKS: keyID cannot be empty")
            (jwt if use == "jwt-svid" else wit)[jwk["kid"]] = key
    return x509_authorities, jwt, wit


def spiffe_id_in(uri, trust_domain):
    return isinstance(uri, str) and uri.startswith(f"spiffe://{trust_domain}/") and len(uri) > len(trust_domain) + 10


def verify_x509_svid(pems, authorities, trust_domain, handled):
    leaf = x509.load_pem_x509_certificate(pems[0].encode())
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    if basic.ca:
        raise BundleError("leaf certificate must not have CA flag set to true")
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    if not usage.digital_signature or usage.key_cert_sign or usage.crl_sign:
        raise BundleError("leaf key usage must be digitalSignature only")
    uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    )
    if len(uris) != 1 or not spiffe_id_in(uris[0], trust_domain):
        raise BundleError(f"the leaf must have exactly one URI SAN in {trust_domain}, has {uris}")
    for extension in leaf.extensions:
        oid = extension.oid.dotted_string
        if extension.critical and oid not in GO_HANDLED and oid not in handled:
            raise BundleError(f"x509: unhandled critical extension ({oid})")
    for authority in authorities:
        try:
            leaf.verify_directly_issued_by(authority)
            return uris[0]
        except (ValueError, TypeError, InvalidSignature):
            continue
    raise BundleError("x509: certificate signed by unknown authority")


def verify_wit(token, authorities, trust_domain, now):
    parts = token.split(".")
    if len(parts) != 3:
        raise BundleError("not a compact JWS")
    header, claims = json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1]))
    key = authorities.get(header.get("kid"))
    if key is None:
        raise BundleError(f"no WIT-SVID authority with kid {header.get('kid')!r}")
    curve = {"secp256r1": "P-256", "secp384r1": "P-384"}[key.curve.name]
    _, size, alg, digest = CURVES[curve]
    if header.get("alg") != alg:
        raise BundleError(f"alg {header.get('alg')!r} is not {alg} for this authority")
    signature = b64url_decode(parts[2])
    if len(signature) != 2 * size:
        raise BundleError("bad signature length")
    r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    try:
        key.verify(encode_dss_signature(r, s), f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(digest))
    except InvalidSignature:
        raise BundleError("signature does not verify") from None
    if header.get("typ") != "wit+jwt":
        raise BundleError(f"typ {header.get('typ')!r}")
    if not spiffe_id_in(claims.get("sub"), trust_domain):
        raise BundleError(f"sub {claims.get('sub')!r} is not a SPIFFE ID in {trust_domain}")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        raise BundleError("token has expired or has no exp")
    return claims["sub"]


def attempt(name, fn, expect_ok=True):
    try:
        result = fn()
        check(name, expect_ok, "" if expect_ok else f"accepted ({result!r})")
        return result
    except (BundleError, ValueError, KeyError, x509.ExtensionNotFound) as e:
        check(name, not expect_ok, str(e))
        if not expect_ok:
            print(f"     refused as expected: {e}")
        return None


def main():
    doc = json.load(sys.stdin)
    td = doc["trust_domain"]
    parsed = attempt("bundle parses by go-spiffe's rules", lambda: parse_bundle(doc["bundle"]))
    if parsed is None:
        sys.exit(1)
    x509_authorities, jwt_authorities, wit_authorities = parsed
    check("one X.509 authority", len(x509_authorities) == 1, str(len(x509_authorities)))
    check("WIT authorities only in wit-svid entries", not jwt_authorities and len(wit_authorities) >= 1)
    handled = set(doc.get("handled_critical", []))
    if "x509_svid" in doc:
        attempt("X.509-SVID verifies", lambda: verify_x509_svid(doc["x509_svid"], x509_authorities, td, handled))
        if handled:
            attempt(
                "X.509-SVID with an unhandled critical extension is refused",
                lambda: verify_x509_svid(doc["x509_svid"], x509_authorities, td, set()),
                expect_ok=False,
            )
    if "wit" in doc:
        attempt("WIT-SVID verifies", lambda: verify_wit(doc["wit"], wit_authorities, td, doc["now"]))
    for case in doc.get("must_fail_wits", []):
        attempt(f"refused WIT: {case['name']}", lambda c=case: verify_wit(c["token"], wit_authorities, td, doc["now"]), False)
    for case in doc.get("must_fail_bundles", []):
        attempt(f"refused bundle: {case['name']}", lambda c=case: parse_bundle(c["bundle"]), False)
    if failures:
        sys.exit(1)


main()
