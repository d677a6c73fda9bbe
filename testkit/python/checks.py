"""What every interop checker here shares: one line per check, the failures collected, and
base64url as JOSE and COSE keys spell it. The checkers import it from their own folder."""

import base64

failures = []


def check(name, ok, detail=""):
    """Prints `ok   NAME` or `FAIL NAME: DETAIL` and records a failure."""
    print(("ok   " if ok else "FAIL ") + name + (": " + detail if detail and not ok else ""))
    if not ok:
        failures.append(name)


def refuses(cases, attempt):
    """One check per case: `attempt(case)` must raise (any exception is a refusal; its reason
    is printed beneath)."""
    for case in cases:
        try:
            attempt(case)
            check(f"refused: {case['name']}", False, "accepted")
        except Exception as e:  # noqa: BLE001 - a refusal of any kind is what is expected
            check(f"refused: {case['name']}", True)
            print(f"     ({type(e).__name__}: {e})")


def b64url_decode(text):
    """Unpadded base64url (RFC 7515 §2) to bytes."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
