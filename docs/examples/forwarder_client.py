#!/usr/bin/env python3
"""A freight forwarder's integration with Lading, end to end, in one file.

It does what a forwarder's system does with the API:

1. subscribes a webhook (an HTTPS receiver this script runs) to one bill of lading;
2. signs a transition as the API's contract says — RFC 8785 canonical JSON, a compact JWS with
   Ed25519 (EdDSA) whose protected header is exactly {"alg","kid","typ"} — and submits it;
3. finds the bill again with the search API;
4. receives the webhook and verifies it with the Standard Webhooks library.

Requirements: Python 3.9+, `pip install requests cryptography standardwebhooks`.

Usage (the registry's TEST demo gives every value; see README "The HTTP API"):

    python3 forwarder_client.py --registry https://127.0.0.1:8443 --ca ca.pem \\
        --token "$TOKEN" --key carrier-oceanic.jwk --template issue.json \\
        --receiver-cert cert.pem --receiver-key key.pem

The signing key here is the carrier's because the example issues a bill; a forwarder signs
with its own key the transitions it takes part in. Prints one JSON line with what happened and
exits non-zero when any step fails.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.server
import json
import queue
import secrets
import ssl
import sys
import threading
import time
from datetime import datetime, timezone

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from standardwebhooks.webhooks import Webhook


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(value) -> bytes:
    """RFC 8785 canonical JSON for what Lading signs: objects with ASCII keys, strings,
    integers, booleans and null (sorted keys, no whitespace, UTF-8). A payload with
    fractional numbers needs a full RFC 8785 implementation (ECMAScript number form)."""

    def check(v):
        if isinstance(v, float):
            raise ValueError("fractional numbers need a full RFC 8785 serializer")
        if isinstance(v, dict):
            for k, x in v.items():
                if not k.isascii():
                    raise ValueError("non-ASCII keys need RFC 8785 UTF-16 key order")
                check(x)
        elif isinstance(v, list):
            for x in v:
                check(x)

    check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(payload: dict, jwk: dict, typ: str) -> str:
    """A compact JWS (RFC 7515) over the canonical payload, EdDSA with the JWK's key."""
    key = Ed25519PrivateKey.from_private_bytes(b64url_decode(jwk["d"]))
    header = canonical({"alg": "EdDSA", "kid": jwk["kid"], "typ": typ})
    signing_input = b64url(header) + "." + b64url(canonical(payload))
    return signing_input + "." + b64url(key.sign(signing_input.encode("ascii")))


def now() -> str:
    """A timestamp as Lading takes them: UTC, exactly milliseconds."""
    t = datetime.now(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class Receiver(http.server.BaseHTTPRequestHandler):
    """The webhook endpoint: verifies each delivery and hands its CloudEvent over."""

    webhook: Webhook | None = None
    received: "queue.Queue[dict]" = queue.Queue()

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            # Raises unless webhook-id, webhook-timestamp and webhook-signature check out.
            event = self.webhook.verify(body, {k.lower(): v for k, v in self.headers.items()})
        except Exception as error:  # noqa: BLE001 (refuse anything that does not verify)
            self.send_response(400)
            self.end_headers()
            self.wfile.write(str(error).encode())
            return
        self.received.put(event)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", required=True, help="the registry's base URL (https://…)")
    ap.add_argument("--ca", required=True, help="the CA that signed the registry's certificate (PEM)")
    ap.add_argument("--token", required=True, help="a credential with the read, submit and subscribe scopes")
    ap.add_argument("--key", required=True, help="the signer's private JWK")
    ap.add_argument("--template", required=True, help="an ISSUE payload whose transport document is copied")
    ap.add_argument("--reference", help="the new bill's reference (default: a fresh one)")
    ap.add_argument("--receiver-cert", required=True, help="the webhook receiver's certificate (PEM)")
    ap.add_argument("--receiver-key", required=True, help="the webhook receiver's key (PEM)")
    ap.add_argument("--receiver-host", default="127.0.0.1")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    api = requests.Session()
    # The registry's CA, and only it: not a CA bundle or proxy from the environment (requests
    # lets REQUESTS_CA_BUNDLE override a session's verify).
    api.trust_env = False
    api.verify = args.ca
    api.headers["Authorization"] = f"Bearer {args.token}"
    base = args.registry.rstrip("/")
    jwk = json.load(open(args.key))
    template = json.load(open(args.template))
    reference = args.reference or "FWD" + secrets.token_hex(6).upper()

    def check(answer: requests.Response, *expected: int) -> dict:
        if answer.status_code not in expected:
            # Every refusal is RFC 7807 problem+json with a stable code.
            problem = answer.json() if answer.headers.get("Content-Type", "").startswith("application/problem+json") else {}
            raise SystemExit(f"{answer.request.method} {answer.url}: {answer.status_code} {problem.get('code')}: {problem.get('detail') or answer.text}")
        return answer.json() if answer.content else {}

    # 1. The webhook receiver, over HTTPS, and a subscription for the new bill.
    server = http.server.ThreadingHTTPServer((args.receiver_host, 0), Receiver)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.receiver_cert, args.receiver_key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    callback = f"https://{args.receiver_host}:{server.server_address[1]}/hook"
    subscription = check(
        api.post(f"{base}/v1/subscriptions", json={"url": callback, "filter": {"documents": [reference]}}),
        201,
    )
    # The secret is shown once, in this answer: keep it where the receiver can read it.
    Receiver.webhook = Webhook(subscription["secret"])

    # 2. Sign and submit the ISSUE of a new bill.
    document = dict(template["transportDocument"], transportDocumentReference=reference)
    payload = {
        "documentReference": reference,
        "documentChecksum": hashlib.sha256(canonical(document)).hexdigest(),
        "action": "ISSUE",
        "actor": jwk["kid"].split(":")[0],
        "recipient": template["recipient"],
        "time": now(),
        "transportDocument": document,
    }
    jws = sign(payload, jwk, "lading-transition+jws")
    entry = check(
        api.post(f"{base}/v1/transitions", data=jws, headers={"Content-Type": "application/jose"}),
        201,
        200,
    )

    # 3. Find it: the search API, newest change first.
    found = check(api.get(f"{base}/v1/documents", params={"q": reference, "limit": 10}), 200)
    if [d["reference"] for d in found["documents"]] != [reference]:
        raise SystemExit(f"search for {reference} found {found['documents']}")

    # 4. The webhook: a CloudEvent for that entry, its signature verified.
    deadline = time.monotonic() + args.timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SystemExit(f"no verified webhook for entry {entry['index']} within {args.timeout} s")
        try:
            event = Receiver.received.get(timeout=remaining)
        except queue.Empty:
            continue
        if event["data"]["index"] == entry["index"]:
            break
    if event["data"]["signed"] != jws:
        raise SystemExit("the webhook's entry is not the one submitted")

    check(api.delete(f"{base}/v1/subscriptions/{subscription['id']}"), 204)
    server.shutdown()
    print(json.dumps({
        "reference": reference,
        "index": entry["index"],
        "state": (entry.get("state") or {}).get("status"),
        "found": len(found["documents"]),
        "webhook": {"type": event["type"], "id": event["id"], "verified": True},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
