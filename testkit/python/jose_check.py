#!/usr/bin/env python3
"""Checks the issuer's JOSE tokens with an independent, standard library (jwcrypto).

Called through twi_testkit::tools::jose_check (issuer/tests/jose_interop.rs and the end-to-end
tests). Reads one JSON document on standard input:

    {
      "wit":  {"token": "...", "issuer_key": {JWK}, "alg": "ES256"},   (alg optional: ES384)
      "wpt":  {"token": "...", "aud": "https://..."},      (optional)
      "ear":  {"token": "...", "verifier_key": {JWK}},     (optional)
      "must_fail": [{"name": "...", "token": "...", "key": {JWK}, "alg": "ES256"}, ...]
    }

and checks, with jwcrypto only (no code of the issuer's):

- the WIT: an ES384 (or the named alg's: ES256) signature under the issuer key, with only
  that alg accepted, header typ "wit+jwt", exp/iat valid, sub, jti, and cnf.jwk (EC P-384 with
  alg ES384: the guest's vault key);
- the WPT: signed by the key in the WIT's cnf.jwk (proof of possession) with cnf.jwk's alg,
  typ "wpt+jwt", aud, exp, jti, and wth = base64url(SHA-256(WIT));
- the EAR JWT (draft-ietf-rats-ear-04): ES384 under the Verifier key, typ "eat+jwt",
  eat_profile, ear_verifier_id, the "twi" submod's ear_status equal to the worst AR4SI tier of
  its trustworthiness vector (and the top-level ear_status to the worst submod's), the status
  the caller expects if it names one, ear_appraisal_policy_ids an array, and its key
  attestation (akpub, a DER SubjectPublicKeyInfo) naming the same key as the WIT's cnf;
- every token in must_fail is rejected (accepting only its alg, ES384 unless named).

Prints one line per check and exits 0 only if all hold.
"""

import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.serialization import load_der_public_key
from jwcrypto import jwk, jwt
from checks import b64url_decode, check, failures



def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verify(token, key_json, typ, alg="ES384"):
    key = jwk.JWK(**key_json)
    # algs pins one algorithm: jwcrypto refuses any other alg in the header.
    parsed = jwt.JWT(jwt=token, key=key, algs=[alg], expected_type="JWS")
    header = json.loads(parsed.header)
    claims = json.loads(parsed.claims)
    check(f"{typ} header alg {alg}", header.get("alg") == alg, str(header))
    check(f"{typ} header typ", header.get("typ") == typ, str(header))
    return claims


TIERS = ["none", "affirming", "warning", "contraindicated"]


def tier(value):
    """The AR4SI tier of a trustworthiness claim value (draft-ietf-rats-ar4si §3.2)."""
    if -1 <= value <= 1:
        return "none"
    if 2 <= value <= 31 or -32 <= value <= -2:
        return "affirming"
    if 32 <= value <= 95 or -96 <= value <= -33:
        return "warning"
    return "contraindicated"


def check_ear(doc, cnf):
    """The EAR JWT: its profile, status, policy ids and the key it binds (the WIT's cnf.jwk)."""
    ear = verify(doc["token"], doc["verifier_key"], "eat+jwt")
    check("EAR profile", ear.get("eat_profile") == "tag:ietf.org,2026:rats/ear#04", str(ear.get("eat_profile")))
    check("EAR verifier id", set(ear.get("ear_verifier_id", {})) == {"build", "developer"}, str(ear.get("ear_verifier_id")))
    twi = ear.get("submods", {}).get("twi", {})
    vector = twi.get("ear_trustworthiness_vector")
    check("EAR trustworthiness vector", isinstance(vector, dict) and len(vector) > 0, str(twi))
    worst = max((tier(v) for v in (vector or {}).values()), key=TIERS.index, default="none")
    check("EAR status is the vector's worst tier", twi.get("ear_status") == worst, f"{twi.get('ear_status')} vs {worst}")
    check("EAR overall status", ear.get("ear_status") == twi.get("ear_status"), str(ear.get("ear_status")))
    expected = doc.get("status")
    if expected is not None:
        check(f"EAR status {expected}", twi.get("ear_status") == expected, str(twi.get("ear_status")))
    check("EAR policy ids", isinstance(twi.get("ear_appraisal_policy_ids"), list), str(twi))
    akpub = twi.get("ear_veraison_key_attestation", {}).get("akpub", "")
    try:
        numbers = load_der_public_key(b64url_decode(akpub)).public_numbers()
        same = b64url(numbers.x.to_bytes(48, "big")) == cnf.get("x") and b64url(numbers.y.to_bytes(48, "big")) == cnf.get("y")
        check("EAR binds the WIT's key", same, "akpub differs from cnf.jwk")
    except Exception as e:  # noqa: BLE001 - any decoding failure is a failed check
        check("EAR binds the WIT's key", False, repr(e))


def main():
    doc = json.load(sys.stdin)

    wit_token = doc["wit"]["token"]
    wit = verify(wit_token, doc["wit"]["issuer_key"], "wit+jwt", doc["wit"].get("alg", "ES384"))
    for claim in ("iss", "sub", "exp", "iat", "jti", "cnf"):
        check(f"WIT has {claim}", claim in wit, str(sorted(wit)))
    cnf = wit.get("cnf", {}).get("jwk", {})
    check("WIT cnf.jwk is EC P-384", cnf.get("kty") == "EC" and cnf.get("crv") == "P-384", str(cnf))
    check("WIT cnf.jwk has alg ES384", cnf.get("alg") == "ES384", str(cnf))
    for name, value in doc["wit"].get("claims", {}).items():
        check(f"WIT business claim {name}", wit.get(name) == value, f"{wit.get(name)!r} != {value!r}")

    # The WPT is optional: only the workload (its key) can make one.
    if "wpt" in doc:
        wpt = verify(doc["wpt"]["token"], cnf, "wpt+jwt", cnf.get("alg"))
        check("WPT aud", wpt.get("aud") == doc["wpt"]["aud"], str(wpt.get("aud")))
        check("WPT has exp and jti", "exp" in wpt and "jti" in wpt, str(sorted(wpt)))
        wth = b64url(hashlib.sha256(wit_token.encode("ascii")).digest())
        check("WPT wth is the WIT's hash", wpt.get("wth") == wth, f"{wpt.get('wth')} != {wth}")

    if "ear" in doc:
        check_ear(doc["ear"], cnf)

    for case in doc.get("must_fail", []):
        try:
            algs = [case.get("alg", "ES384")]
            jwt.JWT(jwt=case["token"], key=jwk.JWK(**case["key"]), algs=algs, expected_type="JWS")
            check(f"rejects {case['name']}", False, "accepted")
        except Exception:  # noqa: BLE001 - rejection of any kind is what is expected
            check(f"rejects {case['name']}", True)

    if failures:
        print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
