"""Runs the repository's edge and monitoring configuration for real on loopback, without Docker.

Used by the stack test (conftest.py) and by `make nginx-check` (`python3 tests/stack/harness.py nginx-check`).
The point is to exercise the very files Compose and Kubernetes mount, so nothing here copies their content:

- nginx: deploy/nginx/templates/revwallet.conf.template rendered with `envsubst` exactly as the official
  image's 20-envsubst-on-templates.sh does (only the listen addresses and upstreams differ: loopback), the
  basic-auth file written by the real deploy/nginx/docker-entrypoint.d/40-revwallet-htpasswd.sh, and a
  minimal wrapper nginx.conf in place of the image's (temp paths, pid and error log in a temp directory).
- Prometheus: deploy/prometheus/prometheus.yml with its targets rewritten to loopback ports (the file's own
  convention), intervals shortened to 1 s, the repository's rules/ beside it, and the same sub-path flags as
  compose.yaml.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[2]
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "templates" / "revwallet.conf.template"
HTPASSWD_SCRIPT = ROOT / "deploy" / "nginx" / "docker-entrypoint.d" / "40-revwallet-htpasswd.sh"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_YML = PROMETHEUS_DIR / "prometheus.yml"

# The template's variables (see its header); the official image substitutes exactly the variables defined in
# the container, and compose.yaml narrows that to these with NGINX_ENVSUBST_FILTER.
NGINX_TEMPLATE_VARIABLES = (
    "NGINX_LISTEN",
    "NGINX_STATUS_LISTEN",
    "REVWALLET_UPSTREAM",
    "GRAFANA_UPSTREAM",
    "PROMETHEUS_UPSTREAM",
)

# The sub-path flags of compose.yaml's (and Kubernetes') Prometheus.
PROMETHEUS_PATH_FLAGS = ("--web.external-url=/prometheus/", "--web.route-prefix=/prometheus/")

# The Compose addresses in prometheus.yml and the role that replaces each on loopback.
PROMETHEUS_TARGET_ROLES = {"revwallet-api:8080": "revwallet", "prometheus:9090": "prometheus"}

T = TypeVar("T")


class ProcessExited(RuntimeError):
    """A process the test depends on is gone: waiting longer cannot help."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.2) -> T:
    """Polls `probe` until it returns something truthy; fails with `what` after `timeout` seconds.

    Exceptions from the probe count as "not yet" (a port not listening yet), the last one is reported;
    ProcessExited ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = probe()
            if result:
                return result
            last = result
        except ProcessExited:
            raise
        except Exception as exc:  # noqa: BLE001 - any other failure of a probe means "not ready yet"
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last result: {last!r})")
        time.sleep(interval)


# --- HTTP ------------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def request(
    port: int,
    method: str,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Response:
    """One HTTP/1.1 request to 127.0.0.1:port; a dict/list body is sent as JSON."""
    headers = dict(headers or {})
    data: bytes | None
    if body is None:
        data = None
    elif isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    else:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


# --- processes --------------------------------------------------------------------------------------------


@dataclass
class Process:
    """A child process with its output in a log file; stopped (and its group killed) by `stop`."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> "Process":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")  # noqa: SIM115 - closed in stop(); the child writes to it meanwhile
        self._out = out
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env,
            # Own process group: stop() can end whatever the process started (nginx workers).
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def assert_alive(self) -> None:
        if not self.alive():
            raise ProcessExited(f"{self.name} exited with {self.popen.returncode if self.popen else '?'}; "
                               f"its output:\n{tail(self.log)}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, 15)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, 9)
                self.popen.wait(timeout)
        # Children that outlived the leader (none expected) go too.
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, 9)
        if getattr(self, "_out", None):
            self._out.close()


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


# --- nginx ------------------------------------------------------------------------------------------------


def template_variables(text: str) -> set[str]:
    """Upper-case `$NAME` / `${NAME}` references: what envsubst would replace if the variable were defined."""
    return set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", text))


def render_nginx_template(values: dict[str, str], template: Path = NGINX_TEMPLATE) -> str:
    """The template through the real `envsubst`, limited to the template's variables (like the image's filter)."""
    missing = set(NGINX_TEMPLATE_VARIABLES) - set(values)
    if missing:
        raise ValueError(f"no value for template variables {sorted(missing)}")
    text = template.read_text()
    unknown = template_variables(text) - set(NGINX_TEMPLATE_VARIABLES)
    if unknown:
        raise ValueError(
            f"{template} uses variables {sorted(unknown)} that Compose/Kubernetes do not define "
            f"(known: {', '.join(NGINX_TEMPLATE_VARIABLES)})"
        )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **values}
    shell_format = " ".join(f"${{{name}}}" for name in NGINX_TEMPLATE_VARIABLES)
    done = subprocess.run(
        ["envsubst", shell_format], input=text, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


NGINX_WRAPPER = """\
# Stands in for the official image's /etc/nginx/nginx.conf, with everything in a temp directory.
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
daemon off;

events {{
    worker_connections 256;
}}

http {{
    {mime_types}
    default_type application/octet-stream;
    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    access_log {prefix}/access-other.log;
    sendfile on;
    keepalive_timeout 65;
    include {prefix}/conf.d/*.conf;
}}
"""


@dataclass
class NginxConfig:
    prefix: Path
    conf: Path
    rendered: Path


def write_nginx_config(prefix: Path, values: dict[str, str], admin_user: str, admin_password: str) -> NginxConfig:
    """Renders the template into prefix/conf.d/, runs the htpasswd entrypoint script, writes the wrapper."""
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "conf.d").mkdir(exist_ok=True)
    (prefix / "tmp").mkdir(exist_ok=True)
    rendered = prefix / "conf.d" / "revwallet.conf"
    rendered.write_text(render_nginx_template(values))

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ADMIN_USER": admin_user,
        "ADMIN_PASSWORD": admin_password,
        "NGINX_CONF_DIR": str(prefix),
    }
    done = subprocess.run([str(HTPASSWD_SCRIPT)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{HTPASSWD_SCRIPT.name} failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    mime = Path("/etc/nginx/mime.types")
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_WRAPPER.format(
            prefix=prefix,
            # As root nginx would switch its workers to `nobody`, who cannot enter the private temp directory.
            user="user root;" if os.geteuid() == 0 else "",
            mime_types=f"include {mime};" if mime.exists() else "",
        )
    )
    return NginxConfig(prefix=prefix, conf=conf, rendered=rendered)


def nginx_test(cfg: NginxConfig) -> subprocess.CompletedProcess:
    """`nginx -t` on the rendered configuration."""
    return subprocess.run(
        ["nginx", "-t", "-p", str(cfg.prefix), "-c", str(cfg.conf), "-e", str(cfg.prefix / "error.log")],
        capture_output=True,
        text=True,
    )


def nginx_process(cfg: NginxConfig, log: Path) -> Process:
    return Process(
        "nginx",
        ["nginx", "-p", str(cfg.prefix), "-c", str(cfg.conf), "-e", str(cfg.prefix / "error.log")],
        log,
    )


# --- Prometheus -------------------------------------------------------------------------------------------


def render_prometheus_config(targets: dict[str, str], interval: str = "1s") -> str:
    """deploy/prometheus/prometheus.yml with every target mapped to loopback and short intervals.

    `targets` maps a role of PROMETHEUS_TARGET_ROLES ("revwallet", "prometheus") to host:port. A target the
    mapping does not know is an error, so a new scrape job in prometheus.yml cannot silently go unscraped.
    """
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    glob = config.setdefault("global", {})
    for key in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
        glob[key] = interval
    for job in config.get("scrape_configs", []):
        for key in ("scrape_interval", "scrape_timeout"):
            if key in job:
                job[key] = interval
        for static in job.get("static_configs", []):
            mapped = []
            for target in static.get("targets", []):
                role = PROMETHEUS_TARGET_ROLES.get(target)
                if role is None or role not in targets:
                    raise ValueError(
                        f"prometheus.yml job {job.get('job_name')!r} scrapes {target!r}, which the stack test "
                        f"cannot map to loopback (known: {sorted(PROMETHEUS_TARGET_ROLES)})"
                    )
                mapped.append(targets[role])
            static["targets"] = mapped
    # No Alertmanager runs on loopback.
    config.pop("alerting", None)
    return yaml.safe_dump(config, sort_keys=False)


def write_prometheus_config(workdir: Path, targets: dict[str, str]) -> Path:
    """prometheus.yml in `workdir` with the repository's rules/ beside it (rule_files are relative)."""
    workdir.mkdir(parents=True, exist_ok=True)
    rules = workdir / "rules"
    if not rules.exists():
        rules.symlink_to(PROMETHEUS_DIR / "rules", target_is_directory=True)
    path = workdir / "prometheus.yml"
    path.write_text(render_prometheus_config(targets))
    return path


def prometheus_process(config: Path, data: Path, port: int, log: Path) -> Process:
    return Process(
        "prometheus",
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            *PROMETHEUS_PATH_FLAGS,
            "--log.level=info",
        ],
        log,
    )


# --- `make nginx-check` ------------------------------------------------------------------------------------


def nginx_check() -> int:
    """Renders the template to loopback and runs `nginx -t` on it. Exit status 0 when nginx accepts it."""
    for tool in ("nginx", "envsubst", "openssl"):
        if shutil.which(tool) is None:
            print(f"nginx-check: {tool} is not installed (run `make deps-stack`)", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory(prefix="revwallet-nginx-check-") as tmp:
        prefix = Path(tmp)
        os.chmod(prefix, 0o755)
        values = {
            "NGINX_LISTEN": f"127.0.0.1:{free_port()}",
            "NGINX_STATUS_LISTEN": f"127.0.0.1:{free_port()}",
            "REVWALLET_UPSTREAM": "127.0.0.1:18080",
            "GRAFANA_UPSTREAM": "127.0.0.1:13000",
            "PROMETHEUS_UPSTREAM": "127.0.0.1:19090",
        }
        try:
            cfg = write_nginx_config(prefix, values, "nginx-check", "nginx-check-password")
        except (ValueError, RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"nginx-check: cannot render the configuration: {exc}", file=sys.stderr)
            return 1
        done = nginx_test(cfg)
        output = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            print(output, file=sys.stderr)
            print(f"nginx-check: nginx -t rejected {NGINX_TEMPLATE.relative_to(ROOT)} (see above)", file=sys.stderr)
            return 1
        warnings = [line for line in output.splitlines() if "[warn]" in line or "[emerg]" in line]
        if warnings:
            print("\n".join(warnings), file=sys.stderr)
            print(f"nginx-check: nginx -t warns about {NGINX_TEMPLATE.relative_to(ROOT)} (see above)", file=sys.stderr)
            return 1
    print(f"nginx-check: OK ({NGINX_TEMPLATE.relative_to(ROOT)} rendered to loopback, nginx -t passed)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["nginx-check"]:
        sys.exit(nginx_check())
    print("usage: harness.py nginx-check", file=sys.stderr)
    sys.exit(2)
