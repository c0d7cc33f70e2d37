"""The stack test's fixtures: revwallet on PostgreSQL, the real nginx and the real Prometheus, on loopback.

Inputs (the test FAILS, never skips, when one is missing):
  REVWALLET_BIN                 the revwallet binary (default: target/debug/revwallet)
  REVWALLET_TEST_POSTGRES_URL   a PostgreSQL server where the test may create and drop its own database,
                                e.g. postgres://revwallet_test:revwallet_test@127.0.0.1:5432/postgres
Tools: nginx, envsubst, openssl, prometheus, psql (`make deps-stack` installs them).

revwallet runs with access control on (REVWALLET_AUTH=api-key) and a bootstrap admin key made for this run, the
way Compose, Kubernetes and ECS start it; the tests send that key on every /wallet request unless they test its
absence.

Grafana cannot run on this machine (no Docker, no Debian package), so a small stand-in HTTP server takes its
place behind nginx: it proves the routing, the basic auth and the WebSocket upgrade of /grafana/, not Grafana.
Prometheus is real, with the repository's prometheus.yml and rules.

Everything binds 127.0.0.1 on ports the kernel hands out, waits on readiness by bounded polling, and is torn down
(processes and the database) even when a test or the set-up fails. The working directory (configs and every
process's log) is removed after a green run and kept, with its path printed, after a red one or when
REVWALLET_STACK_KEEP=1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

ADMIN_USER = "stack-admin"
ADMIN_PASSWORD = "stack-" + secrets.token_hex(8)
# revwallet's first admin API key for this run, in the format an operator makes with `openssl rand -hex 32`.
API_KEY = "rw_" + secrets.token_hex(32)
REQUIRED_TOOLS = ("nginx", "envsubst", "openssl", "prometheus", "psql")

_failed = False


def pytest_collection_modifyitems(session, config, items):
    """Missing inputs: one clear failure for the whole run, not the same error under every test."""
    here = Path(__file__).resolve().parent
    if items and all(here in Path(str(item.fspath)).resolve().parents for item in items):
        problems = _missing_inputs()
        if problems:
            pytest.exit("the stack test cannot run:\n  - " + "\n  - ".join(problems), returncode=1)


def pytest_runtest_makereport(item, call):
    global _failed
    if call.excinfo is not None:
        _failed = True


# --- Grafana stand-in ---------------------------------------------------------------------------------------


class GrafanaStandIn:
    """Answers every request with a JSON echo of what it received; completes WebSocket handshakes."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: the test reads self.requests instead
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                seen = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
                with stand_in.lock:
                    stand_in.requests.append(seen)
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    key = self.headers.get("Sec-WebSocket-Key", "")
                    accept = base64.b64encode(
                        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
                    ).decode()
                    self.send_response(101)
                    self.send_header("Upgrade", "websocket")
                    self.send_header("Connection", "Upgrade")
                    self.send_header("Sec-WebSocket-Accept", accept)
                    self.end_headers()
                    self.close_connection = True
                    return
                body = json.dumps({"stand_in": "grafana", **seen}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="grafana-stand-in", daemon=True)

    def start(self) -> "GrafanaStandIn":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def seen(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]


# --- PostgreSQL -----------------------------------------------------------------------------------------------


def _psql(url: str, sql: str) -> None:
    subprocess.run(
        ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


# --- the stack ------------------------------------------------------------------------------------------------


@dataclass
class Stack:
    workdir: Path
    edge_port: int
    status_port: int
    revwallet_port: int
    prometheus_port: int
    grafana: GrafanaStandIn
    revwallet_log: Path
    nginx_log: Path
    prometheus_log: Path
    admin_user: str = ADMIN_USER
    admin_password: str = ADMIN_PASSWORD
    api_key: str = API_KEY
    processes: list = field(default_factory=list)

    @property
    def admin_auth(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.admin_user}:{self.admin_password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def edge(
        self, method: str, path: str, body=None, headers=None, timeout: float = 10.0, anonymous: bool = False
    ) -> harness.Response:
        """A request to nginx, as a client would send it to http://revwallet.com/: /wallet requests carry the
        API key (`Authorization: Bearer`) unless `anonymous` or the caller sets its own Authorization."""
        base = {"Host": "revwallet.com"}
        if path.startswith("/wallet") and not anonymous:
            base["Authorization"] = f"Bearer {self.api_key}"
        headers = {**base, **(headers or {})}
        return harness.request(self.edge_port, method, path, body, headers, timeout)

    def admin(self, method: str, path: str, body=None, headers=None) -> harness.Response:
        return self.edge(method, path, body, {**self.admin_auth, **(headers or {})})

    def json_lines(self, path: Path) -> list[dict]:
        """The JSON objects among a log file's lines (anything else, e.g. a panic message, is skipped)."""
        out = []
        for line in path.read_text(errors="replace").splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def assert_running(self) -> None:
        for process in self.processes:
            process.assert_alive()


def _missing_inputs() -> list[str]:
    problems = []
    binary = Path(os.environ.get("REVWALLET_BIN", harness.ROOT / "target" / "debug" / "revwallet"))
    if not binary.is_file() or not os.access(binary, os.X_OK):
        problems.append(
            f"revwallet binary not found or not executable at {binary} "
            "(build it with `cargo build`, or point REVWALLET_BIN at it)"
        )
    if not os.environ.get("REVWALLET_TEST_POSTGRES_URL"):
        problems.append(
            "REVWALLET_TEST_POSTGRES_URL is not set (a PostgreSQL server where the test may create and drop a "
            "database, e.g. postgres://revwallet_test:revwallet_test@127.0.0.1:5432/postgres; `make pg-up` "
            "starts the local one)"
        )
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool) is None:
            problems.append(f"{tool} is not installed (run `make deps-stack`)")
    for path in (harness.NGINX_TEMPLATE, harness.HTPASSWD_SCRIPT, harness.PROMETHEUS_YML):
        if not path.exists():
            problems.append(f"{path.relative_to(harness.ROOT)} is missing")
    return problems


@pytest.fixture(scope="session")
def stack():
    problems = _missing_inputs()
    if problems:
        pytest.fail("the stack test cannot run:\n  - " + "\n  - ".join(problems), pytrace=False)

    binary = Path(os.environ.get("REVWALLET_BIN", harness.ROOT / "target" / "debug" / "revwallet")).resolve()
    server_url = os.environ["REVWALLET_TEST_POSTGRES_URL"]
    workdir = Path(tempfile.mkdtemp(prefix="revwallet-stack-"))
    # nginx's workers and Prometheus read files in here.
    os.chmod(workdir, 0o755)

    database = "revwallet_stack_" + secrets.token_hex(6)
    created_database = False
    processes: list[harness.Process] = []
    grafana = GrafanaStandIn()
    try:
        try:
            _psql(server_url, f'CREATE DATABASE "{database}"')
        except subprocess.CalledProcessError as exc:
            pytest.fail(f"cannot create a database on REVWALLET_TEST_POSTGRES_URL: {exc.stderr.strip()}", pytrace=False)
        created_database = True

        revwallet_port, prometheus_port = harness.free_port(), harness.free_port()
        edge_port, status_port = harness.free_port(), harness.free_port()
        grafana.start()

        # revwallet, started the way the brief and the container do it (migrates on start).
        revwallet_log = workdir / "revwallet.log"
        env = {
            **os.environ,
            "DATABASE_URL": _with_database(server_url, database),
            "REVWALLET_LISTEN": f"127.0.0.1:{revwallet_port}",
            "REVWALLET_LOG_FORMAT": "json",
            # Access control as deployed (api-key is the default; set here so no outer environment turns it off).
            "REVWALLET_AUTH": "api-key",
            "REVWALLET_BOOTSTRAP_ADMIN_KEY": API_KEY,
            # Request lines are INFO; keep sqlx's per-query lines out.
            "RUST_LOG": "info,sqlx=warn",
        }
        revwallet = harness.Process("revwallet", [str(binary), "serve"], revwallet_log, env).start()
        processes.append(revwallet)

        # nginx with the repository's template, upstreams on loopback.
        nginx_cfg = harness.write_nginx_config(
            workdir / "nginx",
            {
                "NGINX_LISTEN": f"127.0.0.1:{edge_port}",
                "NGINX_STATUS_LISTEN": f"127.0.0.1:{status_port}",
                "REVWALLET_UPSTREAM": f"127.0.0.1:{revwallet_port}",
                "GRAFANA_UPSTREAM": f"127.0.0.1:{grafana.port}",
                "PROMETHEUS_UPSTREAM": f"127.0.0.1:{prometheus_port}",
            },
            ADMIN_USER,
            ADMIN_PASSWORD,
        )
        checked = harness.nginx_test(nginx_cfg)
        if checked.returncode != 0:
            pytest.fail(f"nginx -t rejects the rendered template:\n{checked.stderr}", pytrace=False)
        nginx_log = workdir / "nginx.log"
        nginx = harness.nginx_process(nginx_cfg, nginx_log).start()
        processes.append(nginx)

        # Prometheus with the repository's prometheus.yml and rules.
        prometheus_config = harness.write_prometheus_config(
            workdir / "prometheus",
            {"revwallet": f"127.0.0.1:{revwallet_port}", "prometheus": f"127.0.0.1:{prometheus_port}"},
        )
        prometheus_log = workdir / "prometheus.log"
        prometheus = harness.prometheus_process(
            prometheus_config, workdir / "prometheus" / "data", prometheus_port, prometheus_log
        ).start()
        processes.append(prometheus)

        def ready(process: harness.Process, port: int, path: str) -> bool:
            process.assert_alive()
            return harness.request(port, "GET", path, timeout=2).status == 200

        # revwallet migrates first, which takes a moment on a fresh database.
        harness.wait_until("revwallet /readyz", lambda: ready(revwallet, revwallet_port, "/readyz"), timeout=90)
        harness.wait_until("nginx status /healthz", lambda: ready(nginx, status_port, "/healthz"), timeout=30)
        harness.wait_until(
            "prometheus /prometheus/-/ready", lambda: ready(prometheus, prometheus_port, "/prometheus/-/ready"),
            timeout=60,
        )

        result = Stack(
            workdir=workdir,
            edge_port=edge_port,
            status_port=status_port,
            revwallet_port=revwallet_port,
            prometheus_port=prometheus_port,
            grafana=grafana,
            revwallet_log=revwallet_log,
            nginx_log=nginx_log,
            prometheus_log=prometheus_log,
            processes=processes,
        )
        yield result
    finally:
        for process in reversed(processes):
            process.stop()
        grafana.stop()
        if created_database:
            try:
                _psql(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            except subprocess.CalledProcessError as exc:
                print(f"\nstack test: could not drop database {database}: {exc.stderr.strip()}", file=sys.stderr)
        if _failed or os.environ.get("REVWALLET_STACK_KEEP") == "1":
            print(f"\nstack test: logs and rendered configs kept in {workdir}", file=sys.stderr)
            for log in sorted(workdir.glob("*.log")):
                print(f"--- last lines of {log.name} ---\n{harness.tail(log, 25)}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
