#!/usr/bin/env python3
"""Checks an SBOM with OWASP's cyclonedx-python-lib: the document validates against the
CycloneDX 1.5 JSON schema (JsonStrictValidator), the library loads it as a Bom, and it lists the
components the test names.

Input on stdin:

    {"sbom": "<the document's text>",
     "libraries": ["name", ...],          # each must be a component of type library
     "with_sha256": ["name", ...],        # ... listed with a SHA-256 hash
     "data": {"name": "sha384 hex", ...}} # attached data components and their SHA-384

Prints one line per check; exits 1 on the first failure.
"""
import json
import sys

from cyclonedx.model.bom import Bom
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def main():
    spec = json.load(sys.stdin)
    text = spec["sbom"]
    errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
    if errors is not None:
        fail("not CycloneDX 1.5: %s" % errors)
    print("ok: valid CycloneDX 1.5 (JSON schema, strict)")
    bom = Bom.from_json(json.loads(text))  # pylint: disable=no-member
    components = {c.name: c for c in bom.components}
    for name in spec.get("libraries", []):
        component = components.get(name)
        if component is None or component.type.value != "library":
            fail("no library component %s" % name)
    for name in spec.get("with_sha256", []):
        hashes = [h for h in components[name].hashes if h.alg.value == "SHA-256"]
        if len(hashes) != 1 or len(hashes[0].content) != 64:
            fail("%s has no SHA-256" % name)
    for name, sha384 in spec.get("data", {}).items():
        component = components.get(name)
        if component is None or component.type.value != "data":
            fail("no data component %s" % name)
        if [h.content for h in component.hashes if h.alg.value == "SHA-384"] != [sha384]:
            fail("%s does not carry SHA-384 %s" % (name, sha384))
    subject = bom.metadata.component
    if subject is None or not [h for h in subject.hashes if h.alg.value == "SHA-384"]:
        fail("the metadata names no subject with a SHA-384")
    print("ok: %d components, subject %s" % (len(components), subject.name))


main()
