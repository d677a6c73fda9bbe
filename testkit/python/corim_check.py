#!/usr/bin/env python3
"""Checks the CoRIMs `twi build` writes with cbor2 and pycose, a CBOR and a COSE implementation
independent of the one that wrote them (the `corim` crate).

reference-values.corim (draft-ietf-rats-corim-10 §4.2): a tagged COSE_Sign1 (18) whose protected
header has alg ES384 (-35), content type application/rim+cbor and corim-meta (8), a bstr holding
{signer: {signer-name: text}}; its payload a tagged-unsigned-corim-map (501) with a text id and
exactly one CoMID (506, a bstr holding the concise-mid-tag) whose tag-identity has a tag-id and
whose reference-triples name each platform by class vendor and model, with mkey MEASUREMENT
(AMD SEV-SNP) or MRTD (Intel TDX) and digests [[7, 48 bytes]] (7: sha-384 in the Named
Information Hash Algorithm registry); SEV-SNP triples also carry POLICY, a masked raw value
(563). The signature verifies under the given P-384 key.

The IGVM file's CoRIM (optional): the document, a 501 map with the launch-measurement profile
URI (3) and one CoMID whose AMD SEV-SNP MEASUREMENT is the IGVM launch digest; its signature a
tagged COSE_Sign1 with a nil payload that verifies once the document is set as the payload.

Input on stdin:

    {"public_key": {"x": "hex", "y": "hex"}, "corim": "hex", "signer": "...",
     "expected": {"snp": ["hex"], "tdx": ["hex"], "policy_value": "hex", "policy_mask": "hex",
                  "sbom": "hex (optional: the TWI launch manifest's twi.sbom digest)"},
     "igvm": {"document": "hex", "signature": "hex", "digest": "hex"},
     "must_fail": [{"name": "...", "corim": "hex"}]}

Prints one line per check and exits 0 only if all hold.
"""

import json
import sys
import time

import cbor2
from pycose.keys import EC2Key
from pycose.keys.curves import P384

from checks import check, failures
from cose_sign1 import Refused, label, sign1, thaw

PROFILE = "tag:microsoft.com,2026:launch-measurement/v1"


def verify_envelope(message, key, signer):
    alg = label(message.phdr, 1)
    if getattr(alg, "identifier", alg) != -35:
        raise Refused(f"alg {alg} is not ES384")
    if label(message.phdr, 3) != "application/rim+cbor":
        raise Refused("the content type is not application/rim+cbor")
    meta = label(message.phdr, 8)
    if not isinstance(meta, bytes):
        raise Refused("no corim-meta (8) bstr in the protected header")
    meta = thaw(cbor2.loads(meta))
    if meta.get(0, {}).get(0) != signer:
        raise Refused(f"corim-meta names signer {meta!r}, not {signer!r}")
    message.key = key
    if not message.verify_signature():
        raise Refused("the signature does not verify under the key")


def corim_map(document):
    tagged = cbor2.loads(document)
    if not isinstance(tagged, cbor2.CBORTag) or tagged.tag != 501:
        raise Refused("the document is not a tagged-unsigned-corim-map (501)")
    corim = thaw(tagged.value)
    if not isinstance(corim.get(0), str):
        raise Refused("the corim-map has no text id (0)")
    tags = corim.get(1)
    if not isinstance(tags, list) or len(tags) != 1 or getattr(tags[0], "tag", None) != 506:
        raise Refused(f"tags (1) is not exactly one CoMID (506): {tags!r}")
    comid = thaw(cbor2.loads(tags[0].value))
    if not isinstance(comid.get(1, {}).get(0), str):
        raise Refused("the CoMID has no tag-identity tag-id")
    return corim, comid


def measurements(comid):
    """{(vendor, model, mkey): [values]} from the reference triples (0) of the triples (4)."""
    found = {}
    for environment, measured in comid[4][0]:
        cls = environment[0]
        for m in measured:
            key = (cls[1], cls[2], m[0])
            if 2 in m[1]:
                for alg, value in m[1][2]:
                    if alg != 7 or len(value) != 48:
                        raise Refused(f"{key}: digest [{alg}, {len(value)} bytes] is not sha-384")
                    found.setdefault(key, []).append(value.hex())
            elif 4 in m[1]:
                raw = m[1][4]
                if getattr(raw, "tag", None) != 563:
                    raise Refused(f"{key}: the raw value is not masked (563)")
                value, mask = raw.value
                found.setdefault(key, []).append((bytes(value).hex(), bytes(mask).hex()))
            else:
                raise Refused(f"{key}: neither digests nor a raw value")
    return found


def seconds(t):
    """Unix seconds of a CBOR time: cbor2 gives tag 1 as a datetime, a bare number as is."""
    if hasattr(t, "timestamp"):
        return t.timestamp()
    if isinstance(t, cbor2.CBORTag) and t.tag == 1:
        return t.value
    if isinstance(t, (int, float)):
        return t
    raise Refused(f"{t!r} is not a CBOR time")


def verify_validity(corim, days):
    """rim-validity (4): a validity-map from about now for `days` days."""
    validity = corim.get(4)
    if not isinstance(validity, dict) or 1 not in validity:
        raise Refused(f"no rim-validity (4) with a not-after (1): {validity!r}")
    not_before, not_after = seconds(validity.get(0)), seconds(validity[1])
    if abs(not_after - not_before - days * 86400) > 1:
        raise Refused(f"rim-validity spans {not_after - not_before} s, not {days} days")
    if abs(not_before - time.time()) > 3600:
        raise Refused(f"rim-validity starts at {not_before}, not about now")


def verify_reference(doc, key):
    message = sign1(bytes.fromhex(doc["corim"]))
    verify_envelope(message, key, doc["signer"])
    corim, comid = corim_map(message.payload)
    if "valid_days" in doc["expected"]:
        verify_validity(corim, doc["expected"]["valid_days"])
    found = measurements(comid)
    expected = doc["expected"]
    policy = (expected["policy_value"], expected["policy_mask"])
    want = {
        ("AMD", "SEV-SNP", "MEASUREMENT"): sorted(expected["snp"]),
        ("AMD", "SEV-SNP", "POLICY"): [policy] * len(expected["snp"]),
        ("Intel", "TDX", "MRTD"): sorted(expected["tdx"]),
    }
    if "sbom" in expected:
        want[("TWI", "launch manifest", "twi.sbom")] = [expected["sbom"]]
    got = {k: sorted(v) for k, v in found.items()}
    if got != want:
        raise Refused(f"the reference triples state {got}, expected {want}")


def verify_igvm(igvm, key, signer):
    corim, comid = corim_map(bytes.fromhex(igvm["document"]))
    if corim.get(3) != PROFILE:
        raise Refused(f"profile {corim.get(3)!r} is not {PROFILE}")
    found = measurements(comid)
    if found.get(("AMD", "SEV-SNP", "MEASUREMENT")) != [igvm["digest"]]:
        raise Refused(f"the IGVM CoRIM states {found}, not the IGVM launch digest")
    message = sign1(bytes.fromhex(igvm["signature"]))
    if message.payload is not None:
        raise Refused("the IGVM CoRIM signature's payload is not detached (nil)")
    message.payload = bytes.fromhex(igvm["document"])
    verify_envelope(message, key, signer)


def main():
    doc = json.load(sys.stdin)
    key = EC2Key(crv=P384, x=bytes.fromhex(doc["public_key"]["x"]), y=bytes.fromhex(doc["public_key"]["y"]))
    try:
        verify_reference(doc, key)
        check("reference-values.corim: signed CoRIM, one CoMID, the launch measurements expected", True)
    except Exception as e:  # noqa: BLE001 - any failure of the check is a failed check
        check("reference-values.corim", False, f"{type(e).__name__}: {e}")
    if "igvm" in doc:
        try:
            verify_igvm(doc["igvm"], key, doc["signer"])
            check("the IGVM file's CoRIM document and detached signature", True)
        except Exception as e:  # noqa: BLE001
            check("the IGVM file's CoRIM", False, f"{type(e).__name__}: {e}")
    refused = 0
    for case in doc.get("must_fail", []):
        try:
            verify_reference(dict(doc, corim=case["corim"]), key)
            check(f"refused: {case['name']}", False, "accepted")
        except Exception:  # noqa: BLE001
            refused += 1
    check(f"refused all {len(doc.get('must_fail', []))} altered CoRIMs", refused == len(doc.get("must_fail", [])))
    if failures:
        sys.exit(1)


main()
