#!/usr/bin/env python3
"""A revwallet webhook receiver that verifies each delivery's signature, with Python's standard library only.

Serve (answers 204 to a delivery whose signature verifies, 400 otherwise):

    REVWALLET_WEBHOOK_SECRET=whsec_... python3 docs/webhook-receiver.py serve 9000

Check one delivery (exit status 0 when it verifies; the test suite runs this against a real delivery):

    python3 docs/webhook-receiver.py verify <secret> '<Revwallet-Signature header>' <file with the body> [now]

The signature is `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, keyed with the secret's text
exactly as shown when the webhook was created, over the body's exact bytes (verify before parsing the JSON).
A delivery signed more than TOLERANCE seconds from now is refused, so a captured delivery cannot be replayed
later; deliveries are at least once, so a receiver also drops event ids it has already handled.
"""

import hashlib
import hmac
import http.server
import json
import os
import sys
import time

TOLERANCE = 300  # seconds either side of now


def verify(secret, header, body, now=None, tolerance=TOLERANCE):
    """Whether `header` (Revwallet-Signature) signs `body` (bytes) under `secret`, within the tolerance."""
    timestamp, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


class Receiver(http.server.BaseHTTPRequestHandler):
    secret = os.environ.get("REVWALLET_WEBHOOK_SECRET", "")
    seen = set()  # event ids already handled (keep them durably in a real receiver)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verify(self.secret, self.headers.get("Revwallet-Signature", ""), body):
            self.send_response(400)
            self.end_headers()
            return
        event_id = self.headers.get("Revwallet-Event-Id")
        if event_id not in self.seen:
            self.seen.add(event_id)
            event = json.loads(body)
            print(f"event {event['id']}: {event['type']} on wallet {event['wallet_id']}", flush=True)
        self.send_response(204)
        self.end_headers()


def main(argv):
    if len(argv) >= 4 and argv[0] == "verify":
        with open(argv[3], "rb") as body:
            now = float(argv[4]) if len(argv) > 4 else None
            return 0 if verify(argv[1], argv[2], body.read(), now) else 1
    if argv and argv[0] == "serve":
        port = int(argv[1]) if len(argv) > 1 else 9000
        http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
