"""Starting, probing and stopping a revwallet process, and reading its peak memory.

Servers run as deployed, with access control on: each gets the run's API key as its bootstrap admin key
(REVWALLET_BOOTSTRAP_ADMIN_KEY) and clients send it as `Authorization: Bearer`. `auth=False` starts one with
REVWALLET_AUTH=off instead, to measure what the key check costs."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path


# This run's key, in the format an operator makes with `openssl rand -hex 32`; never written to a log or a file.
API_KEY = "rw_" + secrets.token_hex(32)


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(port: int, method: str, path: str, body: object | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 10.0,
                 api_key: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    """One request on a fresh connection: (status, body, lower-cased headers). Raises OSError when unreachable.
    With `api_key`, it is sent as `Authorization: Bearer`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {**auth_headers(api_key), **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


class Server:
    """A `revwallet serve` on 127.0.0.1, logging to a file; restartable on the same port and database."""

    def __init__(self, binary: Path, database_url: str, log_path: Path, port: int | None = None,
                 pool_size: int | None = None, extra_env: dict[str, str] | None = None, auth: bool = True):
        self.binary = binary
        self.auth = auth
        self.database_url = database_url
        self.log_path = log_path
        self.port = port or free_port()
        self.pool_size = pool_size
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_key(self) -> str | None:
        """The key its clients send; None when it runs with REVWALLET_AUTH=off (its clients send none)."""
        return API_KEY if self.auth else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not started"
        return self.process.pid

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "REVWALLET_LISTEN": f"127.0.0.1:{self.port}",
            "DATABASE_URL": self.database_url,
            # Logging off the hot path: only warnings and errors reach the log file.
            "RUST_LOG": "warn",
            "REVWALLET_LOG_FORMAT": "text",
            "REVWALLET_AUTH": "api-key" if self.auth else "off",
        })
        if self.auth:
            env["REVWALLET_BOOTSTRAP_ADMIN_KEY"] = API_KEY
        else:
            env.pop("REVWALLET_BOOTSTRAP_ADMIN_KEY", None)
        if self.pool_size:
            env["REVWALLET_DB_POOL_SIZE"] = str(self.pool_size)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        log.write(f"--- start {time.strftime('%H:%M:%S')}\n".encode())
        log.flush()
        self.process = subprocess.Popen([str(self.binary), "serve"], env=self.env(), stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"revwallet exited with {self.process.returncode} while starting; see {self.log_path}")
            try:
                if http_request(self.port, "GET", "/healthz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"revwallet did not answer /healthz within {timeout:.0f}s; see {self.log_path}")

    def ready(self) -> bool:
        try:
            return http_request(self.port, "GET", "/readyz", timeout=3)[0] == 200
        except OSError:
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait: the exit code, or None if it did not exit in time (then it is killed)."""
        if not self.running():
            return self.process.returncode if self.process else None
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def reset_peak_rss(self) -> bool:
        """Linux: writing 5 to clear_refs resets VmHWM to the current RSS, so each run gets its own peak."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def peak_rss_kib(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def metric(self, name: str) -> float | None:
        """One unlabelled sample from /metrics (e.g. revwallet_db_pool_max_connections)."""
        try:
            status, body, _ = http_request(self.port, "GET", "/metrics", timeout=5)
        except OSError:
            return None
        if status != 200:
            return None
        for line in body.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                try:
                    return float(line.rsplit(" ", 1)[1])
                except ValueError:
                    return None
        return None


def run_cli(binary: Path, args: list[str], database_url: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """`revwallet migrate`, `revwallet audit`, ... against a database."""
    env = dict(os.environ, DATABASE_URL=database_url, RUST_LOG="warn", REVWALLET_LOG_FORMAT="text")
    return subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
