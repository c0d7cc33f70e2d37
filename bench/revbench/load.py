"""The load generators: wrk (with the Lua scripts in bench/wrk) against revwallet, pgbench (with the scripts in
bench/pgbench) against PostgreSQL, and the seeding of the wallets both use."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .server import http_request

BENCH = Path(__file__).resolve().parents[1]
WRK_DIR = BENCH / "wrk"
PGBENCH_DIR = BENCH / "pgbench"

# Minor units of one deposit in pgbench (1.00 EUR, the amount the wrk scripts send).
AMOUNT_MINOR = 100
AMOUNT_TEXT = "1.00"
# Every wallet starts rich enough that the mix's withdrawals and transfers never run dry.
INITIAL_BALANCE = "1000000.00"


@dataclass
class Measurement:
    """One measured run: who served it, which workload, how many clients, and what came out."""

    target: str  # revwallet-postgres | revwallet-sqlite | pgbench-revwallet-sql | pgbench-textbook
    workload: str  # reads | deposits | hot | mix
    clients: int
    duration_s: float
    requests: int = 0
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    non_2xx: int = 0
    socket_errors: int = 0
    peak_rss_mib: float | None = None
    error: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def wrk_env(first_id: int, last_id: int, api_key: str | None) -> dict[str, str]:
    """wrk's environment: the Lua scripts read the wallet range, the amount and the API key from it (the key
    goes through the environment, never the command line, which the raw log records)."""
    env = dict(os.environ, BENCH_WRK_DIR=str(WRK_DIR), BENCH_FIRST_ID=str(first_id), BENCH_LAST_ID=str(last_id),
               BENCH_AMOUNT=AMOUNT_TEXT)
    env.pop("BENCH_API_KEY", None)
    if api_key:
        env["BENCH_API_KEY"] = api_key
    return env


def wrk_run(url: str, script: str, clients: int, duration: int, first_id: int, last_id: int,
            raw_log: Path, threads: int = 2, api_key: str | None = None) -> dict[str, object]:
    """Runs wrk once; returns the JSON its done() callback printed (see bench/wrk/report.lua). With `api_key`,
    every request carries it as `Authorization: Bearer`."""
    env = wrk_env(first_id, last_id, api_key)
    # A generous timeout so slow answers count in the latency instead of vanishing as socket timeouts.
    command = ["wrk", f"-t{min(threads, clients)}", f"-c{clients}", f"-d{duration}s", "--timeout", "10s",
               "-s", str(WRK_DIR / script), url]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 60, check=False)
    raw_log.parent.mkdir(parents=True, exist_ok=True)
    raw_log.write_text(f"$ {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"wrk printed no result (exit {result.returncode}): {result.stderr.strip()[:300]}")


def wrk_measurement(target: str, workload: str, clients: int, duration: int, data: dict[str, object]) -> Measurement:
    latency = data["latency_us"]
    sockets = data["socket_errors"]
    assert isinstance(latency, dict) and isinstance(sockets, dict)
    requests = int(data["requests"])  # type: ignore[arg-type]
    seconds = int(data["duration_us"]) / 1e6  # type: ignore[arg-type]
    return Measurement(
        target=target, workload=workload, clients=clients, duration_s=round(seconds, 2), requests=requests,
        rps=round(requests / seconds, 1) if seconds else 0.0,
        p50_ms=round(latency["p50"] / 1000, 2), p99_ms=round(latency["p99"] / 1000, 2),
        non_2xx=int(data["non_2xx"]),  # type: ignore[arg-type]
        socket_errors=sum(int(v) for v in sockets.values()),
        extra={"p999_ms": round(latency["p999"] / 1000, 2), "max_ms": round(latency["max"] / 1000, 2)},
    )


_TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")
_FAILED = re.compile(r"number of failed transactions: (\d+)")
_PROCESSED = re.compile(r"number of transactions actually processed: (\d+)")


def pgbench_run(url: str, script: str, clients: int, duration: int, first_id: int, last_id: int,
                raw_prefix: Path, threads: int = 2) -> Measurement:
    """pgbench in prepared mode (sqlx prepares and caches its statements too), with a per-transaction log
    for p50/p99. The -D variables are revwallet's parameters for one deposit of 1.00."""
    raw_prefix.parent.mkdir(parents=True, exist_ok=True)
    for old in raw_prefix.parent.glob(raw_prefix.name + ".*"):
        old.unlink()
    command = ["pgbench", "-n", "-M", "prepared", f"-c{clients}", f"-j{min(threads, clients)}", f"-T{duration}",
               "-f", str(PGBENCH_DIR / script),
               "-D", f"first_id={first_id}", "-D", f"last_id={last_id}", "-D", f"amount={AMOUNT_MINOR}",
               "-D", "kind=deposit", "-D", "now=2026-01-01T00:00:00Z", "-D", "actor=pgbench",
               "-D", "reference=pgbench", "-D", "description=pgbench", "-D", "metadata={}",
               "-l", f"--log-prefix={raw_prefix}", url]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False,
                                cwd=raw_prefix.parent)
    except subprocess.TimeoutExpired:
        return Measurement(target="", workload="?", clients=clients, duration_s=duration,
                           error=f"pgbench did not finish within {duration + 60} s (blocked on a lock?)")
    Path(str(raw_prefix) + ".out").write_text(f"$ pgbench ... -f {script} -c{clients}\n{result.stdout}\n{result.stderr}")
    tps, failed, processed = _TPS.search(result.stdout), _FAILED.search(result.stdout), _PROCESSED.search(result.stdout)
    workload = "?"
    if tps is None or processed is None:
        message = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return Measurement(target="", workload=workload, clients=clients, duration_s=duration,
                           error=f"pgbench failed: {message[:200]}")
    latencies = []
    for log in raw_prefix.parent.glob(raw_prefix.name + ".*"):
        if log.suffix == ".out":
            continue
        with open(log) as lines:
            for line in lines:
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    latencies.append(int(fields[2]))
        log.unlink()  # per-transaction logs are large; the percentiles are kept
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return Measurement(
        target="", workload=workload, clients=clients, duration_s=duration, requests=int(processed.group(1)),
        rps=round(float(tps.group(1)), 1),
        p50_ms=None if p50 is None else round(p50 / 1000, 2), p99_ms=None if p99 is None else round(p99 / 1000, 2),
        non_2xx=int(failed.group(1)) if failed else 0,
    )


def percentile(values: list[int], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(pct / 100 * len(ordered))))  # nearest rank, 1-based
    return float(ordered[rank - 1])


def seed_wallets(port: int, count: int, owner_prefix: str = "bench", initial: str = INITIAL_BALANCE,
                 workers: int = 4, api_key: str | None = None) -> list[int]:
    """Creates `count` EUR wallets through the API (as clients would) and returns their ids, sorted."""
    ids: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    numbers = iter(range(count))

    def work() -> None:
        while True:
            with lock:
                n = next(numbers, None)
            if n is None or errors:
                return
            body = {"owner": f"{owner_prefix}-{n}", "currency": "EUR", "initial_balance": initial}
            try:
                status, data, _ = http_request(port, "POST", "/wallet/", body, api_key=api_key)
            except OSError as error:
                status, data = 0, str(error).encode()
            with lock:
                if status == 201:
                    ids.append(int(json.loads(data)["id"]))
                else:
                    errors.append(f"POST /wallet/ answered {status}: {data[:200]!r}")

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"seeding wallets failed: {errors[0]}")
    return sorted(ids)


def contiguous_range(ids: list[int]) -> tuple[int, int]:
    """The wrk and pgbench scripts pick wallets uniformly from first..last, so the ids must have no holes."""
    if not ids or ids[-1] - ids[0] + 1 != len(ids):
        raise RuntimeError(f"seeded wallet ids are not contiguous ({ids[:3]}...{ids[-3:]}); use a fresh database")
    return ids[0], ids[-1]
