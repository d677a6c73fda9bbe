"""What the COSE checkers here share: reading a tagged COSE_Sign1 with cbor2 into pycose, and a
header's value by its label. The checkers import it from their own folder; a malformed input
raises `Refused` (rfc9162's, so every checker catches one kind)."""

import cbor2
from pycose.messages import Sign1Message

from rfc9162 import Refused


def thaw(value):
    """cbor2 >= 5.7 hands tagged arrays and maps over as tuples and frozendicts, which pycose
    1.1's CoseMessage.decode does not take: the same as lists and dicts."""
    if isinstance(value, (tuple, list)):
        return [thaw(v) for v in value]
    if hasattr(value, "items"):
        return {k: thaw(v) for k, v in value.items()}
    return value


def label(header, number):
    """The value of a COSE header under `number`, whether pycose names the label or not."""
    for key, value in header.items():
        if key == number or getattr(key, "identifier", None) == number:
            return value
    return None


def sign1(data):
    """A tagged (18) COSE_Sign1 as pycose's Sign1Message."""
    tagged = cbor2.loads(data)
    if not isinstance(tagged, cbor2.CBORTag) or tagged.tag != 18:
        raise Refused("not a tagged COSE_Sign1 (18)")
    return Sign1Message.from_cose_obj(thaw(tagged.value), True)
