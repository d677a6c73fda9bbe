"""RFC 9162 (Certificate Transparency 2.0) Merkle tree proofs for the receipt check
(cose_receipt_check.py): leaf and node hashes (§2.1.1), the root an inclusion
proof leads to (§2.1.3.2) and consistency proof verification (§2.1.4.2). Written from the RFC's
algorithms; no code of the issuer's.
"""
import hashlib


class Refused(Exception):
    """A proof or document the checks refuse, with the reason."""


def leaf_hash(leaf):
    return hashlib.sha256(b"\x00" + leaf).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from(leaf, index, size, path):
    """The root the inclusion proof `path` for `leaf` at `index` in a tree of `size` leads to."""
    if index >= size:
        raise Refused("index out of range")
    fn, sn, r = index, size - 1, leaf_hash(leaf)
    for p in path:
        if sn == 0:
            raise Refused("proof too long")
        if fn % 2 == 1 or fn == sn:
            r = node(p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Refused("proof too short")
    return r


def verify_inclusion(leaf, index, size, path, root):
    if root_from(leaf, index, size, path) != root:
        raise Refused("inclusion proof does not lead to the checkpoint's root")


def verify_consistency(size1, root1, size2, root2, path):
    """RFC 9162 §2.1.4.2."""
    if size1 > size2 or size1 == 0:
        raise Refused("sizes out of order")
    if size1 == size2:
        if path or root1 != root2:
            raise Refused("equal sizes need an empty proof and equal roots")
        return
    if size1 & (size1 - 1) == 0:
        path = [root1] + path
    if not path:
        raise Refused("empty consistency proof")
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Refused("proof too long")
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != root1 or sr != root2:
        raise Refused("consistency proof does not join the two roots")


