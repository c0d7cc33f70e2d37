#!/usr/bin/env python3
"""End-to-end checks against a running revwallet Compose stack, from the outside, through Nginx only.

Run by `make compose-e2e` (see .github/workflows/compose-e2e.yml) after `make up`. Standard library only,
so it runs on any machine with Python 3.9+. Checks, in order:

1. the wallet API at /wallet/ with the API key: 401 problem JSON with WWW-Authenticate: Bearer without it or with
   an unknown one; open, deposit, insufficient funds (problem JSON), transfer, history, idempotent replay,
   request id echo, close then 404, OpenAPI document; the web UI's sign-in page;
   /metrics is not reachable through the edge;
2. /grafana/ and /prometheus/: 401 without credentials and with wrong ones, success with the right ones;
3. Grafana's data sources (through its API behind Nginx): every one reports healthy;
4. Loki (through Grafana's data source proxy) holds revwallet log lines, including this run's request id.

Credentials come from E2E_ADMIN_USER and E2E_ADMIN_PASSWORD, the API key from E2E_API_KEY (the stack's
REVWALLET_BOOTSTRAP_ADMIN_KEY, or any write/admin key). Each failure names what was expected.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any, Callable


class CheckFailed(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise CheckFailed(f"expected a JSON body, got {self.body[:200]!r}") from exc


class Client:
    def __init__(self, base_url: str, timeout: float = 10.0, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.api_key = api_key

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = None, anonymous: bool = False) -> Response:
        """/wallet requests carry the API key unless `anonymous` (or the caller sets its own Authorization)."""
        data = None
        req = urllib.request.Request(self.base_url + path, method=method)
        if body is not None:
            data = json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        if self.api_key and path.startswith("/wallet") and not anonymous and auth is None:
            # Unredirected: the key is for revwallet's API only, never for wherever a redirect points.
            req.add_unredirected_header("Authorization", f"Bearer {self.api_key}")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            # add_header (not unredirected): the credentials follow same-site redirects such as /prometheus/ ->
            # /prometheus/query.
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, data=data, timeout=self.timeout) as resp:
                return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
        except urllib.error.HTTPError as err:
            return Response(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())
        except (urllib.error.URLError, OSError) as err:
            raise CheckFailed(f"{method} {path}: no HTTP answer ({err})") from err


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


def expect_status(resp: Response, status: int, what: str) -> Response:
    expect(resp.status == status, f"{what}: expected HTTP {status}, got {resp.status}: {resp.body[:300]!r}")
    return resp


def expect_problem(resp: Response, status: int, code: str, what: str) -> None:
    expect_status(resp, status, what)
    ctype = resp.headers.get("content-type", "")
    expect(ctype.startswith("application/problem+json"),
           f"{what}: expected Content-Type application/problem+json, got {ctype!r}")
    got = resp.json().get("code")
    expect(got == code, f"{what}: expected problem code {code!r}, got {got!r}")


def retry(what: str, fn: Callable[[], Any], timeout: float, interval: float = 3.0) -> Any:
    """Call fn until it stops raising CheckFailed or the timeout passes (for eventually consistent checks)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except CheckFailed as exc:
            if time.monotonic() >= deadline:
                raise CheckFailed(f"{what} (still failing after {timeout:.0f}s): {exc}") from exc
            time.sleep(interval)


def check_api(client: Client, run_id: str) -> str:
    """The wallet API through Nginx. Returns the request id sent, to look for in Loki."""
    def api_ready() -> None:
        expect_status(client.request("GET", "/wallet/"), 200, "GET /wallet/")
    retry("the API answers through nginx", api_ready, timeout=60)

    # Access control: revwallet's own 401 (not the edge's basic-auth one) without a key or with an unknown one.
    for what, headers in (("without an API key", {}),
                          ("with an unknown API key", {"Authorization": "Bearer rw_" + "0" * 64})):
        resp = client.request("GET", "/wallet/", headers=headers, anonymous=True)
        expect_problem(resp, 401, "unauthenticated", f"GET /wallet/ {what}")
        challenge = resp.headers.get("www-authenticate", "")
        expect(challenge.startswith("Bearer"), f"GET /wallet/ {what}: expected WWW-Authenticate: Bearer, got {challenge!r}")

    request_id = f"e2e-{run_id}"
    resp = client.request("POST", "/wallet/", {"owner": f"e2e {run_id}", "currency": "eur",
                                                "initial_balance": "10.00"},
                          headers={"X-Request-Id": request_id})
    expect_status(resp, 201, "POST /wallet/ (open a wallet)")
    expect(resp.headers.get("x-request-id") == request_id,
           f"X-Request-Id not echoed: sent {request_id!r}, got {resp.headers.get('x-request-id')!r}")
    wallet = resp.json()
    first = str(wallet["id"])
    expect(wallet["currency"] == "EUR" and wallet["balance"] == "10.00",
           f"new wallet: expected EUR 10.00, got {wallet}")
    expect(resp.headers.get("location") == f"/wallet/{first}",
           f"POST /wallet/: expected Location /wallet/{first}, got {resp.headers.get('location')!r}")

    got = expect_status(client.request("GET", f"/wallet/{first}"), 200, "GET /wallet/{id}").json()
    expect(got["balance"] == "10.00", f"GET /wallet/{first}: expected balance 10.00, got {got}")

    dep = expect_status(client.request("POST", "/wallet/deposit", {"id": first, "amount": "5.50"}),
                        200, "POST /wallet/deposit").json()
    expect(dep["balance"] == "15.50" and dep["transaction"]["type"] == "deposit",
           f"deposit 5.50 on 10.00: expected balance 15.50 and a deposit entry, got {dep}")

    expect_problem(client.request("POST", "/wallet/withdraw", {"id": first, "amount": "100.00"}),
                   409, "insufficient_funds", "withdraw more than the balance")

    second = str(expect_status(client.request("POST", "/wallet/", {"owner": f"e2e {run_id} b", "currency": "EUR"}),
                               201, "POST /wallet/ (second wallet)").json()["id"])
    moved = expect_status(client.request("POST", "/wallet/transfer",
                                         {"from_id": first, "to_id": second, "amount": "1.50"}),
                          200, "POST /wallet/transfer").json()
    expect(moved["from"]["balance"] == "14.00" and moved["to"]["balance"] == "1.50",
           f"transfer 1.50: expected balances 14.00 / 1.50, got {moved}")
    bal = expect_status(client.request("GET", f"/wallet/balance/{second}"), 200, "GET /wallet/balance/{id}").json()
    expect(bal["balance"] == "1.50", f"GET /wallet/balance/{second}: expected 1.50, got {bal}")

    history = expect_status(client.request("GET", f"/wallet/{first}/transactions"), 200,
                            "GET /wallet/{id}/transactions").json()
    types = [entry["type"] for entry in history]
    expect(types[:3] == ["transfer_out", "deposit", "opening"],
           f"history of wallet {first}: expected newest first transfer_out, deposit, opening; got {types}")

    key = {"Idempotency-Key": f"e2e-{run_id}-deposit"}
    once = expect_status(client.request("POST", "/wallet/deposit", {"id": second, "amount": "1.00"}, headers=key),
                         200, "deposit with an Idempotency-Key")
    again = expect_status(client.request("POST", "/wallet/deposit", {"id": second, "amount": "1.00"}, headers=key),
                          200, "the same deposit replayed")
    expect(again.headers.get("idempotent-replayed") == "true",
           f"replay: expected header Idempotent-Replayed: true, got {again.headers.get('idempotent-replayed')!r}")
    expect(again.json() == once.json(), "replay: expected the stored response body again")
    bal = client.request("GET", f"/wallet/{second}").json()
    expect(bal["balance"] == "2.50", f"replayed deposit must not apply twice: expected 2.50, got {bal}")

    expect_status(client.request("DELETE", f"/wallet/{second}"), 204, "DELETE /wallet/{id}")
    expect_problem(client.request("GET", f"/wallet/{second}"), 404, "wallet_not_found", "GET a closed wallet")

    doc = expect_status(client.request("GET", "/wallet/openapi.json"), 200, "GET /wallet/openapi.json").json()
    expect(str(doc.get("openapi", "")).startswith("3."), f"openapi.json: expected an OpenAPI 3 document")

    # The web app signs people in with a key: its sign-in page is what an anonymous browser sees (GET / may
    # redirect there; urllib follows the redirect).
    page = expect_status(client.request("GET", "/ui/sign-in"), 200, "GET /ui/sign-in (web UI)")
    expect(page.headers.get("content-type", "").startswith("text/html"), "GET /ui/sign-in: expected an HTML page")
    expect_status(client.request("GET", "/"), 200, "GET / (web UI, or its sign-in page after a redirect)")

    metrics = client.request("GET", "/metrics")
    expect(metrics.status != 200, "GET /metrics through nginx: expected it not to be served at the edge")
    print("ok   wallet API (401 without a key, works with it), web UI and edge routing through nginx")
    return request_id


def check_basic_auth(client: Client, auth: tuple[str, str]) -> None:
    for path in ("/grafana/", "/prometheus/"):
        expect_status(client.request("GET", path), 401, f"GET {path} without credentials")
        expect_status(client.request("GET", path, auth=(auth[0], auth[1] + "-wrong")), 401,
                      f"GET {path} with a wrong password")

        def authorised(path: str = path) -> None:
            expect_status(client.request("GET", path, auth=auth), 200, f"GET {path} with the admin credentials")
        retry(f"{path} with credentials", authorised, timeout=60)
    print("ok   /grafana/ and /prometheus/: 401 without or with wrong credentials, 200 with them")


def grafana_datasources(client: Client, auth: tuple[str, str]) -> list[dict[str, Any]]:
    resp = expect_status(client.request("GET", "/grafana/api/datasources", auth=auth), 200,
                         "GET /grafana/api/datasources")
    sources = resp.json()
    expect(isinstance(sources, list) and sources, "Grafana has no data sources")
    return sources


def check_grafana(client: Client, auth: tuple[str, str]) -> list[dict[str, Any]]:
    sources = retry("Grafana's data source API", lambda: grafana_datasources(client, auth), timeout=60)
    kinds = {s.get("type") for s in sources}
    expect({"prometheus", "loki"} <= kinds, f"expected Prometheus and Loki data sources, got types {sorted(kinds)}")
    for source in sources:
        uid, name = source["uid"], source.get("name", source["uid"])

        def healthy(uid: str = uid, name: str = name) -> None:
            resp = client.request("GET", f"/grafana/api/datasources/uid/{urllib.parse.quote(uid)}/health", auth=auth)
            expect_status(resp, 200, f"health of data source {name!r}")
            status = resp.json().get("status")
            expect(status == "OK", f"data source {name!r}: expected status OK, got {resp.json()}")
        retry(f"data source {name!r} healthy", healthy, timeout=90)
    print(f"ok   Grafana data sources healthy: {', '.join(sorted(s.get('name', s['uid']) for s in sources))}")
    return sources


def check_loki(client: Client, auth: tuple[str, str], sources: list[dict[str, Any]], selector: str,
               request_id: str) -> None:
    loki = next(s for s in sources if s.get("type") == "loki")
    base = f"/grafana/api/datasources/proxy/uid/{urllib.parse.quote(loki['uid'])}/loki/api/v1/query_range"

    def lines_for(query: str) -> list[str]:
        params = urllib.parse.urlencode({
            "query": query,
            "limit": "200",
            "start": str(time.time_ns() - 30 * 60 * 10**9),
            "end": str(time.time_ns()),
            "direction": "backward",
        })
        resp = client.request("GET", f"{base}?{params}", auth=auth)
        if resp.status == 200:
            result = resp.json().get("data", {}).get("result", [])
            return [line for stream in result for _, line in stream.get("values", [])]
        # Grafana versions that refuse the data source proxy for Loki still answer its query API.
        body = {"from": "now-30m", "to": "now", "queries": [{
            "refId": "A", "datasource": {"uid": loki["uid"], "type": "loki"}, "expr": query,
            "queryType": "range", "maxLines": 200}]}
        resp = expect_status(client.request("POST", "/grafana/api/ds/query", body, auth=auth), 200,
                             f"Loki query {query} (data source proxy answered {resp.status}, then /api/ds/query)")
        lines: list[str] = []
        for frame in resp.json().get("results", {}).get("A", {}).get("frames", []):
            names = [f.get("name") for f in frame.get("schema", {}).get("fields", [])]
            if "Line" in names:
                lines.extend(str(v) for v in frame["data"]["values"][names.index("Line")])
        return lines

    def has_revwallet_lines() -> None:
        lines = lines_for(selector)
        expect(lines, f"Loki has no lines for {selector}")
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except ValueError:
                continue
        expect(any({"timestamp", "level", "message"} <= set(p) for p in parsed if isinstance(p, dict)),
               f"Loki lines for {selector} are not revwallet's JSON log lines: {lines[:3]}")

    def has_this_request() -> None:
        lines = lines_for(f'{selector} |= "{request_id}"')
        expect(lines, f"Loki has no line with this run's request id {request_id}")

    retry("revwallet log lines in Loki", has_revwallet_lines, timeout=120, interval=5)
    retry("this run's request in Loki", has_this_request, timeout=120, interval=5)
    print(f"ok   Loki holds revwallet's JSON log lines ({selector}), including request {request_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("E2E_BASE_URL", "http://localhost"))
    parser.add_argument("--loki-selector", default=os.environ.get("E2E_LOKI_SELECTOR", '{service="revwallet-api"}'),
                        help="LogQL stream selector for revwallet's lines (Alloy's labels)")
    parser.add_argument("--skip", action="append", default=[], choices=["api", "auth", "grafana", "loki"],
                        help="skip a group of checks (repeatable)")
    args = parser.parse_args(argv)

    user, password = os.environ.get("E2E_ADMIN_USER", ""), os.environ.get("E2E_ADMIN_PASSWORD", "")
    if not user or not password:
        print("compose_e2e: set E2E_ADMIN_USER and E2E_ADMIN_PASSWORD (the stack's admin credentials)",
              file=sys.stderr)
        return 2
    auth = (user, password)
    api_key = os.environ.get("E2E_API_KEY", "")
    if "api" not in args.skip and not api_key:
        print("compose_e2e: set E2E_API_KEY (the stack's REVWALLET_BOOTSTRAP_ADMIN_KEY, e.g. from .env)",
              file=sys.stderr)
        return 2
    client = Client(args.base_url, api_key=api_key or None)
    run_id = uuid.uuid4().hex[:12]
    try:
        request_id = check_api(client, run_id) if "api" not in args.skip else f"e2e-{run_id}"
        if "auth" not in args.skip:
            check_basic_auth(client, auth)
        if "grafana" not in args.skip or "loki" not in args.skip:
            sources = check_grafana(client, auth)
            if "loki" not in args.skip and "api" not in args.skip:
                check_loki(client, auth, sources, args.loki_selector, request_id)
    except CheckFailed as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, IndexError) as exc:
        print(f"FAIL unexpected response shape ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    print(f"compose-e2e: all checks passed against {args.base_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
