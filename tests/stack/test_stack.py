"""The stack test: revwallet behind the repository's nginx edge, scraped by the repository's Prometheus config.

It checks, through nginx only (as a user of the Compose stack would):
- the README's curl flow (create, deposit, withdraw, transfer, balance, history, delete) with the API key;
- access control through the edge: no key, an unknown key or another scheme get revwallet's 401 problem JSON
  with `WWW-Authenticate: Bearer` (not the edge's basic-auth 401), counted by reason in the metrics; the web
  app's sign-in page answers;
- what the edge routes to revwallet, what it keeps inside (/metrics, /healthz, /readyz, unknown paths: 404
  problem JSON) and what needs the admin credentials (/grafana/, /prometheus/);
- request ids from the client reaching revwallet's JSON logs, security headers, the body limit, the write
  rate limit (429 problem JSON);
- Prometheus scraping revwallet, loading the alert rules, and every dashboard query evaluating.
Set-up and inputs: conftest.py. Tests share one stack; the rate-limit burst runs last (tests run in file order).
"""

from __future__ import annotations

import base64
import concurrent.futures
import os
import re
import socket
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

import harness

sys.path.insert(0, str(harness.ROOT / "tests" / "deploy"))
from dashboards import dashboard_promql_queries  # noqa: E402

DASHBOARDS = sorted((harness.ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
PROBLEM_JSON = "application/problem+json"


def new_request_id() -> str:
    return "stack-" + uuid.uuid4().hex


def assert_problem(resp: harness.Response, status: int, code: str) -> dict:
    assert resp.status == status, f"expected {status}, got {resp.status}: {resp.text[:300]}"
    assert (resp.header("Content-Type") or "").startswith(PROBLEM_JSON), resp.header("Content-Type")
    problem = resp.json()
    assert problem["status"] == status
    assert problem["code"] == code, problem
    return problem


def edge_log_line(stack, request_id: str) -> dict:
    """nginx's JSON access-log line for a request id (nginx writes it once the response is sent)."""

    def find():
        stack.assert_running()
        return next((line for line in stack.json_lines(stack.nginx_log) if line.get("request_id") == request_id), None)

    return harness.wait_until(f"nginx access log line for {request_id}", find, timeout=10)


# --- the README's curl flow ------------------------------------------------------------------------------


def test_the_readme_curl_flow_works_through_the_edge(stack):
    created = stack.edge("POST", "/wallet/", {"owner": "test1", "currency": "EUR", "initial_balance": "100.00"})
    assert created.status == 201, created.text
    wallet = created.json()
    assert wallet["owner"] == "test1" and wallet["balance"] == "100.00"
    first = wallet["id"]

    other = stack.edge("POST", "/wallet/", {"owner": "test2", "currency": "EUR"})
    assert other.status == 201, other.text
    second = other.json()["id"]

    deposited = stack.edge("POST", "/wallet/deposit", {"id": first, "amount": "50.25"})
    assert deposited.status == 200, deposited.text
    assert deposited.json()["balance"] == "150.25"

    withdrawn = stack.edge("POST", "/wallet/withdraw", {"id": first, "amount": "0.25"})
    assert withdrawn.status == 200, withdrawn.text
    assert withdrawn.json()["balance"] == "150.00"

    transferred = stack.edge("POST", "/wallet/transfer", {"from_id": first, "to_id": second, "amount": "20.00"})
    assert transferred.status == 200, transferred.text
    assert transferred.json()["from"]["balance"] == "130.00"
    assert transferred.json()["to"]["balance"] == "20.00"

    balance = stack.edge("GET", f"/wallet/balance/{second}")
    assert balance.status == 200 and balance.json()["balance"] == "20.00", balance.text

    history = stack.edge("GET", f"/wallet/{first}/transactions")
    assert history.status == 200, history.text
    assert {"deposit", "withdrawal", "transfer_out"} <= {entry["type"] for entry in history.json()}, history.text

    listed = stack.edge("GET", "/wallet")
    assert listed.status == 200 and any(w["id"] == first for w in listed.json()), listed.text

    refused = stack.edge("POST", "/wallet/withdraw", {"id": second, "amount": "1000.00"})
    assert_problem(refused, 409, "insufficient_funds")

    deleted = stack.edge("DELETE", f"/wallet/{second}")
    assert deleted.status == 204, deleted.text
    assert_problem(stack.edge("GET", f"/wallet/{second}"), 404, "wallet_not_found")


# --- access control through the edge ------------------------------------------------------------------------


def auth_failures(stack) -> dict[str, float]:
    """revwallet_auth_failures_total by reason, read from revwallet itself (the edge hides /metrics)."""
    text = harness.request(stack.revwallet_port, "GET", "/metrics").text
    out: dict[str, float] = {}
    for match in re.finditer(r'^revwallet_auth_failures_total\{[^}]*reason="([a-z_]+)"[^}]*\} (\S+)$', text, re.M):
        out[match.group(1)] = out.get(match.group(1), 0.0) + float(match.group(2))
    return out


@pytest.mark.parametrize(
    ("case", "headers", "reasons"),
    [
        ("no key", {}, ("missing",)),
        ("an unknown key", {"Authorization": "Bearer rw_" + "0" * 64}, ("unknown",)),
        # Whether a Basic header counts as no bearer key or a malformed one is the server's call.
        ("another scheme", {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()}, ("malformed", "missing")),
    ],
)
def test_a_request_without_a_valid_key_is_401_problem_json_through_the_edge(stack, case, headers, reasons):
    def counted() -> float:
        failures = auth_failures(stack)
        return sum(failures.get(reason, 0.0) for reason in reasons)

    before = counted()
    request_id = new_request_id()
    resp = stack.edge("GET", "/wallet/", headers={"X-Request-Id": request_id, **headers}, anonymous=True)
    # revwallet's own answer, passed through: the edge's basic-auth 401 says `unauthorized` and `Basic`.
    problem = assert_problem(resp, 401, "unauthenticated")
    assert problem.get("title"), problem
    assert (resp.header("WWW-Authenticate") or "").startswith("Bearer"), (case, resp.headers)
    assert edge_log_line(stack, request_id)["upstream_addr"] == f"127.0.0.1:{stack.revwallet_port}"
    assert counted() >= before + 1, f"{case}: revwallet_auth_failures_total{{reason={reasons}}} did not grow"


def test_a_refused_write_changes_nothing_and_the_key_makes_it_work(stack):
    created = stack.edge("POST", "/wallet/", {"owner": "auth-edge", "currency": "EUR", "initial_balance": "5.00"})
    assert created.status == 201, created.text
    wallet = created.json()["id"]
    refused = stack.edge("POST", "/wallet/deposit", {"id": wallet, "amount": "1.00"}, anonymous=True)
    assert_problem(refused, 401, "unauthenticated")
    balance = stack.edge("GET", f"/wallet/balance/{wallet}")
    assert balance.status == 200 and balance.json()["balance"] == "5.00", balance.text
    deposited = stack.edge("POST", "/wallet/deposit", {"id": wallet, "amount": "1.00"})
    assert deposited.status == 200 and deposited.json()["balance"] == "6.00", deposited.text


def test_the_web_app_sign_in_page_answers_through_the_edge(stack):
    page = stack.edge("GET", "/ui/sign-in")
    assert page.status == 200, page.text[:300]
    assert (page.header("Content-Type") or "").startswith("text/html")
    assert 'name="api_key"' in page.text, "the sign-in form takes the API key in a field named api_key"
    # Without a session the app's pages send the browser to sign in (or, at worst, answer without a 5xx).
    home = stack.edge("GET", "/")
    assert home.status in (200, 302, 303, 307), home.status
    if home.status != 200:
        assert "/ui/sign-in" in (home.header("Location") or ""), home.headers


def test_health_and_metrics_need_no_key(stack):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert harness.request(stack.revwallet_port, "GET", path).status == 200, path


# --- routing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/ui/wallets/1", "/static/stack-test-missing.css", "/wallet", "/wallet/", "/wallet/openapi.json"],
)
def test_app_paths_are_proxied_to_revwallet(stack, path):
    request_id = new_request_id()
    resp = stack.edge("GET", path, headers={"X-Request-Id": request_id})
    line = edge_log_line(stack, request_id)
    assert line["upstream_addr"] == f"127.0.0.1:{stack.revwallet_port}", line
    assert resp.status < 500, resp.text


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/healthz",
        "/readyz",
        "/nope",
        "/wallets",
        "/grafana-nope",
        "/wallet/../metrics",
        "/static/../metrics",
        "/%2Fmetrics",
    ],
)
def test_internal_and_unknown_paths_are_404_problem_json_at_the_edge(stack, path):
    request_id = new_request_id()
    resp = stack.edge("GET", path, headers={"X-Request-Id": request_id})
    assert_problem(resp, 404, "not_found")
    assert edge_log_line(stack, request_id)["upstream_addr"] == "", "nginx must not forward this path"


@pytest.mark.parametrize("path", ["/ui", "/static", "/grafana", "/prometheus"])
def test_a_section_without_its_trailing_slash_redirects_relative(stack, path):
    # nginx's own redirect for prefix locations; `absolute_redirect off` keeps the client's host and port.
    resp = stack.edge("GET", path)
    assert resp.status == 301, resp.text
    assert resp.header("Location") == path + "/"


def test_metrics_stay_reachable_for_prometheus_directly(stack):
    # The edge hides /metrics; the scraper still reads it from revwallet itself (the internal network).
    resp = harness.request(stack.revwallet_port, "GET", "/metrics")
    assert resp.status == 200 and "revwallet_http_requests_total" in resp.text


# --- admin paths: basic auth -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/grafana/", "/grafana/api/health", "/prometheus/", "/prometheus/-/ready"])
def test_admin_paths_need_the_admin_credentials(stack, path):
    anonymous = stack.edge("GET", path)
    assert_problem(anonymous, 401, "unauthorized")
    assert (anonymous.header("WWW-Authenticate") or "").startswith("Basic "), anonymous.headers

    wrong = base64.b64encode(f"{stack.admin_user}:not-the-password".encode()).decode()
    assert_problem(stack.edge("GET", path, headers={"Authorization": f"Basic {wrong}"}), 401, "unauthorized")


def test_prometheus_answers_through_the_edge_with_credentials(stack):
    resp = stack.admin("GET", "/prometheus/-/ready")
    assert resp.status == 200, resp.text
    assert stack.admin("GET", "/prometheus/api/v1/status/buildinfo").json()["status"] == "success"


def test_grafana_gets_its_sub_path_unchanged_and_the_admin_login(stack):
    resp = stack.admin("GET", "/grafana/api/health?probe=1")
    assert resp.status == 200, resp.text
    seen = resp.json()
    assert seen["stand_in"] == "grafana"
    # serve_from_sub_path: Grafana expects the /grafana/ prefix to arrive intact.
    assert seen["path"] == "/grafana/api/health?probe=1"
    # Grafana's admin is the edge's admin, so the same basic-auth header signs the user in there.
    assert seen["headers"]["authorization"] == stack.admin_auth["Authorization"]
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["headers"]["host"] == "revwallet.com"


def test_grafana_live_websocket_is_upgraded(stack):
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        "GET /grafana/api/live/ws HTTP/1.1\r\n"
        "Host: revwallet.com\r\n"
        f"Authorization: {stack.admin_auth['Authorization']}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=10) as sock:
        sock.sendall(handshake.encode())
        status_line = sock.makefile("rb").readline().decode()
    assert status_line.startswith("HTTP/1.1 101"), status_line
    upgraded = stack.grafana.seen("/grafana/api/live/ws")
    assert upgraded and upgraded[-1]["headers"].get("upgrade") == "websocket"


@pytest.mark.parametrize(
    ("path", "upgrade"), [("/grafana/api/health?h2c=1", "h2c"), ("/grafana/api/health?ws=1", "websocket")]
)
def test_other_upgrades_are_not_passed_on(stack, path, upgrade):
    # h2c upgrades through a proxy can smuggle requests past its rules; WebSockets only on Grafana Live's path.
    resp = stack.admin("GET", path, headers={"Upgrade": upgrade, "Connection": "Upgrade"})
    assert resp.status == 200, resp.text
    seen = stack.grafana.seen(path)[-1]["headers"]
    assert "upgrade" not in seen, seen
    assert seen.get("connection", "").lower() != "upgrade", seen


# --- request ids, headers, limits ---------------------------------------------------------------------------


def test_a_client_request_id_reaches_revwallet_logs_and_comes_back(stack):
    request_id = new_request_id()
    resp = stack.edge("POST", "/wallet/", {"owner": "request-id", "currency": "EUR"}, {"X-Request-Id": request_id})
    assert resp.status == 201, resp.text
    assert resp.header("X-Request-Id") == request_id
    assert len(resp.headers.get_all("X-Request-Id")) == 1

    def logged():
        stack.assert_running()
        for line in stack.json_lines(stack.revwallet_log):
            if line.get("request_id") == request_id or (line.get("span") or {}).get("request_id") == request_id:
                return line
        return None

    line = harness.wait_until(f"revwallet log line with request_id {request_id}", logged, timeout=10)
    assert line.get("level") and line.get("message"), line
    assert edge_log_line(stack, request_id)["status"] == 201


def test_a_malformed_request_id_is_replaced_by_the_edge(stack):
    resp = stack.edge("GET", "/wallet/", headers={"X-Request-Id": "bad id with spaces"})
    generated = resp.header("X-Request-Id") or ""
    assert re.fullmatch(r"[0-9a-f]{32}", generated), generated


def test_answers_carry_the_security_headers(stack):
    for resp in (stack.edge("GET", "/"), stack.edge("GET", "/nope")):
        assert resp.header("X-Content-Type-Options") == "nosniff"
        assert resp.header("X-Frame-Options") == "SAMEORIGIN"
        assert resp.header("Referrer-Policy") == "strict-origin-when-cross-origin"
        assert "default-src 'self'" in (resp.header("Content-Security-Policy") or "")
        assert resp.header("X-Request-Id")
        assert resp.header("Server") == "nginx", "server_tokens off hides the version"
    # Grafana brings its own policy; the edge's would break its UI.
    assert stack.admin("GET", "/grafana/").header("Content-Security-Policy") is None


def test_bodies_over_64_kib_are_refused_at_the_edge(stack):
    big = b'{"owner":"' + b"x" * (70 * 1024) + b'","currency":"EUR"}'
    resp = stack.edge("POST", "/wallet/", big, {"Content-Type": "application/json"})
    assert_problem(resp, 413, "payload_too_large")


def test_the_status_server_answers_health_and_stub_status(stack):
    assert harness.request(stack.status_port, "GET", "/healthz").status == 200
    assert "Active connections" in harness.request(stack.status_port, "GET", "/stub_status").text


# --- Prometheus --------------------------------------------------------------------------------------------


def prometheus_api(stack, path: str, **params) -> dict:
    query = urllib.parse.urlencode(params)
    resp = stack.admin("GET", f"/prometheus/api/v1/{path}" + (f"?{query}" if query else ""))
    assert resp.status == 200, f"/prometheus/api/v1/{path}: {resp.status} {resp.text[:500]}"
    body = resp.json()
    assert body["status"] == "success", body
    return body["data"]


def test_prometheus_scrapes_revwallet(stack):
    def revwallet_up():
        targets = prometheus_api(stack, "targets")["activeTargets"]
        return any(t["labels"].get("job") == "revwallet" and t["health"] == "up" for t in targets)

    harness.wait_until("Prometheus to report the revwallet target up", revwallet_up, timeout=60)
    result = prometheus_api(stack, "query", query='up{job="revwallet"}')["result"]
    assert result and result[0]["value"][1] == "1", result


def test_prometheus_loads_the_repository_alert_rules(stack):
    groups = prometheus_api(stack, "rules")["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"RevwalletDown", "RevwalletAuthFailureBurst"} <= names, names
    assert all(rule.get("health") != "err" for group in groups for rule in group["rules"]), groups


def test_every_dashboard_query_evaluates_and_the_request_rate_has_data(stack):
    assert DASHBOARDS, "no dashboard in deploy/grafana/dashboards/"
    queries = [(d.name, title, expr) for d in DASHBOARDS for title, expr in dashboard_promql_queries(d)]
    assert queries, "the dashboards have no Prometheus queries"

    # Some traffic, then wait for Prometheus (1 s scrape interval) to have two scrapes of it for rate().
    for _ in range(5):
        stack.edge("GET", "/wallet/")
    # The core panels: the request rate over all statuses (panels narrowed to 4xx/5xx may rightly be empty).
    rate_queries = [
        q for q in queries if "revwallet_http_requests_total" in q[2] and "rate(" in q[2] and "status" not in q[2]
    ]
    assert rate_queries, "no dashboard panel shows the request rate (rate of revwallet_http_requests_total)"

    def has_data(expr: str):
        return prometheus_api(stack, "query", query=expr)["result"]

    for dashboard, title, expr in rate_queries:
        harness.wait_until(
            f"data for {dashboard} panel {title!r}: {expr}", lambda expr=expr: has_data(expr), timeout=60, interval=1
        )

    end = time.time()
    errors = []
    for dashboard, title, expr in queries:
        for path, params in (
            ("query", {"query": expr}),
            ("query_range", {"query": expr, "start": end - 300, "end": end, "step": "5"}),
        ):
            resp = stack.admin("GET", f"/prometheus/api/v1/{path}?" + urllib.parse.urlencode(params))
            body = resp.json() if resp.body.startswith(b"{") else {}
            if resp.status != 200 or body.get("status") != "success":
                errors.append(f"{dashboard} / {title!r} ({path}): {resp.status} {body.get('error', resp.text[:200])}\n    {expr}")
            elif body.get("warnings"):
                errors.append(f"{dashboard} / {title!r} ({path}) warns {body['warnings']}\n    {expr}")
    assert not errors, "dashboard queries that Prometheus rejects:\n" + "\n".join(errors)


# --- rate limit (last: it spends this client's write budget) --------------------------------------------------


def test_a_burst_of_writes_is_rate_limited_with_problem_json(stack):
    def write(_):
        # An empty body: revwallet rejects it cheaply (422) when the edge lets it through.
        return stack.edge("POST", "/wallet/deposit", {})

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(write, range(150)))
    limited = [r for r in responses if r.status == 429]
    assert limited, f"no 429 among {sorted({r.status for r in responses})}"
    problem = assert_problem(limited[0], 429, "rate_limited")
    assert problem["title"]
    assert limited[0].header("Retry-After") == "1"
    assert all(r.status in (422, 400, 404, 429) for r in responses), sorted({r.status for r in responses})

    # Reads are never limited, even right after the burst.
    reads = [stack.edge("GET", "/wallet/").status for _ in range(20)]
    assert 429 not in reads, reads
