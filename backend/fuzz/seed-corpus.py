#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into backend/fuzz/corpus/<target>/ from fixtures/.

Run once from anywhere; files are named by the SHA-1 of their content (as libFuzzer names
them), so running it again adds nothing new. Afterwards minimise with `cargo fuzz cmin` (see
"Fuzzing" in README.md). The `proof` target reads `arbitrary` structures, which fixtures do not
have: its corpus is grown by fuzzing alone.

Mode bytes (see backend/fuzz/src/lib.rs): b"0" = a whole compact JWS follows, b"1" = a
payload follows (the target wraps it), b"3" = a transition payload whose documentChecksum the
target recomputes. Signed checkpoints and party statements need the `cryptography` package;
without it they are skipped (the payload form of each is still written).

With target names as arguments (`seed-corpus.py party_statement`), only their corpora are
written: running it for everything again would put back seeds `cargo fuzz cmin` removed.
"""

import base64
import hashlib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
CORPUS = ROOT / "backend" / "fuzz" / "corpus"


ONLY = set(sys.argv[1:])


def write(target: str, data: bytes) -> None:
    if ONLY and target not in ONLY:
        return
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def canonical(value) -> bytes:
    # Enough of RFC 8785 for the fixtures' checkpoint payloads (ASCII names, integers).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def main() -> None:
    samples = json.loads((FIXTURES / "samples.json").read_text())
    transitions = [t for chain in samples["chains"] for t in chain["transitions"]]
    events = samples["events"]

    for compact in transitions + events:
        header, payload, signature = (unb64(p) for p in compact.split("."))
        write("jws", b"0" + compact.encode())
        write("jws", b"1" + header + b"\xff" + payload + b"\xff" + signature)
        write("canonical_json", payload)
    for compact in transitions:
        payload = unb64(compact.split(".")[1])
        write("transition", b"0" + compact.encode())
        write("transition", b"1" + payload)
        document = json.loads(payload).get("transportDocument")
        if document is not None:
            write("transport_document", canonical(document))
    for compact in events:
        write("shipment_event", b"0" + compact.encode())
        write("shipment_event", b"1" + unb64(compact.split(".")[1]))

    for path in sorted((FIXTURES / "documents").glob("*.json")):
        text = path.read_bytes()
        write("transport_document", text)
        write("canonical_json", text)
    for name in ("issue", "transfer"):
        text = (FIXTURES / "payloads" / f"{name}.json").read_bytes()
        write("transition", b"3" + text)
        write("canonical_json", text)
    event = (FIXTURES / "payloads" / "event.json").read_bytes()
    write("shipment_event", b"1" + event)
    write("canonical_json", event)

    checkpoint_seeds()
    party_statement_seeds()


def checkpoint_seeds() -> None:
    """Checkpoints of the Merkle vectors' ledgers, as payloads and signed with the TEST key."""
    vectors = json.loads((FIXTURES / "merkle" / "vectors.json").read_text())
    key = json.loads((FIXTURES / "keys" / "registry.jwk").read_text())
    header = canonical({"alg": "EdDSA", "kid": key["kid"], "typ": "lading-checkpoint+jws"})
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        signer = Ed25519PrivateKey.from_private_bytes(unb64(key["d"]))
    except ImportError:
        signer = None
        print("seed-corpus: no `cryptography` package; signed checkpoints skipped")
    for ledger in vectors["ledgers"]:
        payload = canonical(
            {
                "blockSize": ledger["blockSize"],
                "root": ledger["root"],
                "size": ledger["size"],
                "time": "2026-11-02T08:00:00.000Z",
            }
        )
        write("checkpoint", b"1" + payload)
        write("canonical_json", payload)
        if signer is not None:
            signing_input = f"{b64(header)}.{b64(payload)}"
            signature = signer.sign(signing_input.encode())
            write("checkpoint", b"0" + f"{signing_input}.{b64(signature)}".encode())


def fixture_key(name: str) -> dict:
    return json.loads((FIXTURES / "keys" / f"{name}.jwk").read_text())


def public(name: str, kid: str) -> dict:
    """The public half of a fixture key, under `kid` (members as `Jwk` serialises them)."""
    key = {k: v for k, v in fixture_key(name).items() if k != "d"}
    key["kid"] = kid
    return key


def party_statement_seeds() -> None:
    """Statements for the membership of fuzz_targets/party_statement.rs (its genesis and five
    statements, so at its index FIRST = 6): valid ones of every action, a few the membership
    refuses and two the parser refuses, signed with the fixture key behind each kid, and their payloads (mode byte odd,
    bits 1-3 the kid's place in the target's KIDS)."""
    # kid -> the fixture key whose private half signs for it (the target's membership reuses
    # fixture points under other kids).
    signers = {
        "operator:test-2026": "operator",
        "operator:2027": "registry",
        "carrier-oceanic:test-2026": "carrier-oceanic",
        "carrier-oceanic:2027": "carrier-polaris",
        "bank-harbour:test-2026": "bank-harbour",
        "customs-nl:test-2026": "customs-nl",
    }
    kids = list(signers) + ["shipper-acme:test-2026", "operator:2028"]
    time = "2026-12-05T10:00:00.000Z"

    def statement(action: str, actor: str, **members) -> dict:
        return {"action": action, "actor": actor, "time": time, **members}

    valid = [
        ("operator:test-2026", statement(
            "ADD_PARTY", "operator",
            party={"id": "shipper-acme", "name": "Acme Exports", "role": "shipper"},
            keys=[public("shipper-acme", "shipper-acme:test-2026")])),
        ("operator:2027", statement(
            "ADD_PARTY", "operator",
            party={"id": "customs-sg", "name": "Singapore Customs",
                   "role": "customs_authority", "ports": ["SGSIN"]},
            keys=[public("customs-sg", "customs-sg:test-2026"),
                  public("customs-us", "customs-sg:backup")])),
        ("operator:test-2026", statement("REMOVE_PARTY", "operator", partyId="bank-harbour")),
        ("operator:2027", statement("REMOVE_PARTY", "operator", partyId="carrier-oceanic")),
        ("bank-harbour:test-2026", statement(
            "ADD_KEY", "bank-harbour", partyId="bank-harbour",
            key=public("consignee-delta", "bank-harbour:2027"))),
        ("operator:test-2026", statement(
            "ADD_KEY", "operator", partyId="operator",
            key=public("shipper-borealis", "operator:2028"))),
        ("operator:2027", statement(
            "ADD_KEY", "operator", partyId="carrier-oceanic",
            key=public("forwarder-swift", "carrier-oceanic:2028"))),
        ("operator:2027", statement(
            "REVOKE_KEY", "operator", partyId="operator", kid="operator:test-2026")),
        ("bank-harbour:test-2026", statement(
            "REVOKE_KEY", "bank-harbour", partyId="bank-harbour", kid="bank-harbour:test-2026")),
        ("carrier-oceanic:2027", statement(
            "REVOKE_KEY", "carrier-oceanic", partyId="carrier-oceanic",
            kid="carrier-oceanic:2027")),
        ("operator:test-2026", statement(
            "REVOKE_KEY", "operator", partyId="operator", kid="operator:2027")),
    ]
    # The same statements as the schemas let them be written too: a JWK without its optional
    # members, a party with `"ports": []`.
    bare_key = {k: v for k, v in public("consignee-delta", "bank-harbour:2027").items()
                if k in ("kty", "crv", "x", "kid")}
    valid += [
        ("bank-harbour:test-2026", statement(
            "ADD_KEY", "bank-harbour", partyId="bank-harbour", key=bare_key)),
        ("operator:test-2026", statement(
            "ADD_PARTY", "operator",
            party={"id": "shipper-acme", "name": "Acme Exports", "role": "shipper", "ports": []},
            keys=[public("shipper-acme", "shipper-acme:test-2026")])),
    ]
    refused = [
        # revoked_key: the carrier's first key was revoked at 4.
        ("carrier-oceanic:test-2026", statement(
            "ADD_KEY", "carrier-oceanic", partyId="carrier-oceanic",
            key=public("forwarder-swift", "carrier-oceanic:2029"))),
        # not_a_member: customs-nl was removed at 5.
        ("customs-nl:test-2026", statement(
            "REVOKE_KEY", "customs-nl", partyId="customs-nl", kid="customs-nl:test-2026")),
        # not_owner_or_operator: a party about another party's key.
        ("bank-harbour:test-2026", statement(
            "REVOKE_KEY", "bank-harbour", partyId="carrier-oceanic", kid="carrier-oceanic:2027")),
        # party_exists
        ("operator:test-2026", statement(
            "ADD_PARTY", "operator",
            party={"id": "customs-nl", "name": "Douane Nederland", "role": "customs_authority"},
            keys=[public("customs-us", "customs-nl:2027")])),
    ]
    # Refused by the parser: a null is no absent member (`not in normal form`).
    refused += [
        ("operator:test-2026", statement(
            "REMOVE_PARTY", "operator", partyId="bank-harbour", kid=None)),
        ("bank-harbour:test-2026", statement(
            "ADD_KEY", "bank-harbour", partyId="bank-harbour",
            key={**public("consignee-delta", "bank-harbour:2027"), "use": None})),
    ]
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError:
        Ed25519PrivateKey = None
        print("seed-corpus: no `cryptography` package; signed party statements skipped")
    for kid, payload in valid + refused:
        body = canonical(payload)
        write("party_statement", bytes([1 | kids.index(kid) << 1]) + body)
        write("canonical_json", body)
        if Ed25519PrivateKey is not None:
            signer = Ed25519PrivateKey.from_private_bytes(unb64(fixture_key(signers[kid])["d"]))
            header = canonical({"alg": "EdDSA", "kid": kid, "typ": "lading-party+jws"})
            signing_input = f"{b64(header)}.{b64(body)}"
            signature = signer.sign(signing_input.encode())
            write("party_statement", b"0" + f"{signing_input}.{b64(signature)}".encode())


if __name__ == "__main__":
    main()
