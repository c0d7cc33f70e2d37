"""PostgreSQL helpers: the bench's own databases on the machine's server, and a private throwaway cluster that the
PostgreSQL-restart run may stop and start without disturbing anyone else using the machine's server."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def psql(url: str, sql: str, timeout: float = 120.0) -> str:
    """Runs SQL with psql (stops at the first error) and returns its unaligned, tuples-only output."""
    result = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                            capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed ({sql[:60]}...): {result.stderr.strip()}")
    return result.stdout


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run(["pg_isready", "-q", "-d", url], capture_output=True, check=False)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL at {redact(url)} is not ready (run `make pg-up`)")
        time.sleep(0.2)


def redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urllib.parse.urlunsplit(parts)


def create_database(admin_url: str, name: str) -> str:
    psql(admin_url, f'drop database if exists "{name}" with (force)')
    psql(admin_url, f'create database "{name}"')
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    try:
        psql(admin_url, f'drop database if exists "{name}" with (force)')
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"bench: could not drop database {name}: {error}")


def stale_transactions(url: str, min_age_s: float = 1.0) -> list[str]:
    """Sessions of this database left open in a transaction with nothing running: after a load run only revwallet
    is connected, so these are its pooled connections holding a transaction (and maybe row locks) nobody will end."""
    out = psql(url, "select pid || ' idle ' || round(extract(epoch from now() - state_change)::numeric, 1) || ' s, "
                    "last statement: ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 60) "
                    "from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() "
                    f"and state like 'idle in transaction%' and now() - state_change > interval '{min_age_s} s'")
    return [line for line in out.splitlines() if line.strip()]


def terminate_stale(url: str, min_age_s: float = 1.0) -> None:
    psql(url, "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() "
              f"and pid <> pg_backend_pid() and state like 'idle in transaction%' "
              f"and now() - state_change > interval '{min_age_s} s'")


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def checkpoint(url: str) -> bool:
    """A CHECKPOINT before each measured run, so none lands inside one by chance. Needs superuser or
    pg_checkpoint; as root on the machine's own server we ask the postgres OS user (peer authentication)."""
    try:
        psql(url, "checkpoint", timeout=60)
        return True
    except RuntimeError:
        pass
    host = urllib.parse.urlsplit(url).hostname
    if is_root() and host in ("127.0.0.1", "localhost", "::1") and shutil.which("runuser"):
        port = str(urllib.parse.urlsplit(url).port or 5432)
        result = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-p", port, "-c", "checkpoint"],
                                capture_output=True, text=True, timeout=60, check=False)
        return result.returncode == 0
    return False


def server_bindir() -> Path | None:
    """The PostgreSQL server binaries (initdb, pg_ctl): BENCH_PG_BINDIR, Debian's layout, or PATH."""
    if os.environ.get("BENCH_PG_BINDIR"):
        return Path(os.environ["BENCH_PG_BINDIR"])
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PrivateCluster:
    """A PostgreSQL cluster of our own in a temporary directory, on its own loopback port, with fsync on.
    initdb refuses to run as root, so as root the cluster belongs to the `postgres` OS user."""

    def __init__(self) -> None:
        bindir = server_bindir()
        if bindir is None:
            raise RuntimeError("initdb not found (install postgresql, or set BENCH_PG_BINDIR)")
        self.bindir = bindir
        # In the system temp directory: the postgres OS user must be able to reach it (the repository may not be).
        self.base = Path(tempfile.mkdtemp(prefix="revwallet-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = _free_port()
        self.password = secrets.token_hex(16)
        self.started = False

    @property
    def url(self) -> str:
        return f"postgres://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if is_root():
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def init(self) -> None:
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        if is_root():
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        os.chmod(self.base, 0o700)
        result = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--pwfile", str(pwfile),
                           "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--no-instructions")
        pwfile.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.strip()}")

    def start(self) -> None:
        # Loopback only, its socket in our own directory; fsync and synchronous_commit stay at their defaults (on).
        options = f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base}"
        result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stderr.strip() or result.stdout.strip()}; see {self.log}")
        self.started = True

    def stop(self, mode: str = "fast") -> None:
        result = self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", mode, "stop")
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {result.stderr.strip()}")
        self.started = False

    def destroy(self) -> None:
        if self.started:
            try:
                self.stop("immediate")
            except RuntimeError as error:
                print(f"bench: {error}")
        shutil.rmtree(self.base, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
