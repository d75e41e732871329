#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into backend/fuzz/corpus/<target>/ from fixtures/.

Run once from anywhere; files are named by the SHA-1 of their content (as libFuzzer names
them), so running it again adds nothing new. Afterwards minimise with `cargo fuzz cmin` (see
"Fuzzing" in README.md). The `proof` target reads `arbitrary` structures, which fixtures do not
have: its corpus is grown by fuzzing alone.

Mode bytes (see backend/fuzz/src/lib.rs): b"0" = a whole compact JWS follows, b"1" = a
payload follows (the target wraps it), b"3" = a transition payload whose documentChecksum the
target recomputes. Signed checkpoints need the `cryptography` package; without it they are
skipped (the payload form of each is still written).
"""

import base64
import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
CORPUS = ROOT / "backend" / "fuzz" / "corpus"


def write(target: str, data: bytes) -> None:
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


if __name__ == "__main__":
    main()
