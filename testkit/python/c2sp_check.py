#!/usr/bin/env python3
"""Checks the provenance log's checkpoints and proofs the way transparency-log tools do.

Go is not installed on the test machines, so this re-implements, over the `cryptography`
package and nothing of the issuer's, the rules of Go's golang.org/x/mod/sumdb/note (what
witnesses and `sumdb` clients run) and of C2SP tlog-checkpoint, and RFC 9162's proof checks:

- the verifier key `<name>+<8 hex digits>+<base64(alg ‖ key)>`: a valid name (non-empty, no
  space or '+'), alg 1 = Ed25519 with a 32-byte key, and the hex digits equal the first 4 bytes
  of SHA-256(name ‖ "\\n" ‖ alg ‖ key);
- the note (note.Open): UTF-8 with no control character but newline, ending in a newline; the
  text runs up to the last blank line; each signature line is "— <name> <base64(4-byte key
  hash ‖ signature)>"; a signature by the known key must verify over the text (else the note is
  refused); at least one must (else "no verifiable signatures");
- the checkpoint body: origin (non-empty; here the key's name), tree size in decimal without
  leading zeros, base64 of a 32-byte root, then optional non-empty extension lines;
- RFC 9162 §2.1.3.2 inclusion (leaf hash SHA-256(0x00 ‖ leaf)) against that size and root, and
  §2.1.4.2 consistency between two checkpoints.

Input on stdin:

    {"vkey": "...", "checkpoint": "note", "proof": {"statement": "hex", "index": N,
     "tree_size": N, "inclusion_proof": ["hex", ...]},
     "consistency": {"old_checkpoint": "note", "consistency_proof": ["hex", ...]},
     "must_fail_notes": [{"name": "...", "note": "..."}]}

Prints one line per check and exits 0 only if all hold.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rfc9162 import Refused, verify_consistency, verify_inclusion
from checks import check, failures



def valid_name(name):
    return name != "" and not any(c.isspace() or c == "+" for c in name)


def parse_vkey(vkey):
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3 or not valid_name(parts[0]) or len(parts[1]) != 8:
        raise Refused("malformed verifier key")
    name, hash_hex, key64 = parts
    key = base64.b64decode(key64, validate=True)
    if len(key) != 33 or key[0] != 1:
        raise Refused("unknown verifier algorithm (only Ed25519, alg 1)")
    if hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex() != hash_hex:
        raise Refused("invalid verifier ID")
    return name, bytes.fromhex(hash_hex), Ed25519PublicKey.from_public_bytes(key[1:])


def open_note(note, vkey):
    """note.Open with one known verifier: the verified text."""
    name, key_hash, key = parse_vkey(vkey)
    data = note.encode()
    if any(c < 0x20 and c != 0x0A for c in data) or not note.endswith("\n"):
        raise Refused("malformed note")
    split = note.rfind("\n\n")
    if split < 0:
        raise Refused("malformed note: no signatures")
    text, sigs = note[: split + 1], note[split + 2 :]
    verified = 0
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            raise Refused("malformed note: a signature line does not start with an em dash")
        signer, _, sig64 = line[2:].partition(" ")
        sig = base64.b64decode(sig64, validate=True)
        if not valid_name(signer) or len(sig) < 5:
            raise Refused("malformed note: bad signature line")
        if signer == name and sig[:4] == key_hash:
            try:
                key.verify(sig[4:], text.encode())
            except InvalidSignature:
                raise Refused(f"invalid signature for key {name}") from None
            verified += 1
    if verified == 0:
        raise Refused("note has no verifiable signatures")
    return name, text


def parse_checkpoint(text, origin):
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(line == "" for line in lines[:-1]):
        raise Refused("malformed checkpoint")
    if lines[0] != origin:
        raise Refused(f"checkpoint origin {lines[0]!r} is not the key's name {origin!r}")
    size = lines[1]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise Refused("malformed checkpoint size")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise Refused("root is not 32 bytes")
    return int(size), root


def attempt(name, fn, expect_ok=True):
    try:
        result = fn()
    except (Refused, ValueError) as e:
        check(name, not expect_ok, str(e))
        return None
    check(name, expect_ok, "" if expect_ok else "accepted")
    return result


def checkpoint_of(note, vkey):
    origin, text = open_note(note, vkey)
    return parse_checkpoint(text, origin)


def main():
    doc = json.load(sys.stdin)
    vkey = doc["vkey"]
    parsed = attempt("checkpoint verifies (sumdb/note rules, tlog-checkpoint body)", lambda: checkpoint_of(doc["checkpoint"], vkey))
    if parsed is None:
        sys.exit(1)
    size, root = parsed
    if "proof" in doc:
        p = doc["proof"]
        check("proof is against the checkpoint's size", p["tree_size"] == size, f"{p['tree_size']} != {size}")
        path = [bytes.fromhex(h) for h in p["inclusion_proof"]]
        attempt("record included (RFC 9162)", lambda: verify_inclusion(bytes.fromhex(p["statement"]), p["index"], size, path, root))
    if "consistency" in doc:
        c = doc["consistency"]
        old = attempt("older checkpoint verifies", lambda: checkpoint_of(c["old_checkpoint"], vkey))
        if old:
            path = [bytes.fromhex(h) for h in c["consistency_proof"]]
            attempt("log grew append-only (RFC 9162 consistency)", lambda: verify_consistency(old[0], old[1], size, root, path))
    for case in doc.get("must_fail_notes", []):
        attempt(f"refused note: {case['name']}", lambda c=case: checkpoint_of(c["note"], vkey), expect_ok=False)
    if failures:
        sys.exit(1)


main()
