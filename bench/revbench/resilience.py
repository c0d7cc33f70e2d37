"""Resilience runs: kill -9 during a stream of deposits and transfers, PostgreSQL restarted under load, SIGTERM
under load. Each records every answer the clients got and then checks the ledger against them.

Every operation moves a unique amount (its sequence number in cents), so the ledger entries of one operation can
be found without trusting the server: an acknowledged operation must have exactly one set of entries (with the
ids it was answered with), an unanswered one at most one. Half the operations carry an Idempotency-Key and are
retried with it after a dropped connection or a 503, as a careful client does; the others are never retried.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import sqlite3
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import pg
from .server import Server, http_request, run_cli


@dataclass
class Attempt:
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    error: str | None = None


@dataclass
class Op:
    seq: int
    kind: str  # deposit | transfer
    wallet: int
    to_wallet: int | None
    key: str | None
    attempts: list[Attempt] = field(default_factory=list)
    outcome: str = "pending"  # acked | refused | unanswered | unresolved
    entry_ids: tuple[int, ...] = ()
    replayed: bool = False

    @property
    def amount_minor(self) -> int:
        return self.seq

    def body(self) -> dict[str, object]:
        amount = f"{self.seq // 100}.{self.seq % 100:02d}"
        if self.kind == "deposit":
            return {"id": self.wallet, "amount": amount}
        return {"from_id": self.wallet, "to_id": self.to_wallet, "amount": amount}


class Stream:
    """Worker threads sending deposits (60%) and transfers (40%) over keep-alive connections, recording every
    attempt. Unkeyed operations are tried once; keyed ones are retried on a dropped connection or a 503."""

    def __init__(self, port: int, wallets: list[int], workers: int, seed: int = 7, first_seq: int = 1,
                 api_key: str | None = None):
        self.port = port
        self.api_key = api_key
        self.wallets = wallets
        self.workers = workers
        self.ops: list[Op] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sequence = itertools.count(first_seq)
        self.random = random.Random(seed)
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, args=(n,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)

    def _next_op(self) -> Op:
        with self.lock:
            seq = next(self.sequence)
            roll = self.random.random()
            keyed = self.random.random() < 0.5
            wallet, other = self.random.sample(self.wallets, 2)
            op = Op(seq=seq, kind="deposit" if roll < 0.6 else "transfer", wallet=wallet,
                    to_wallet=None if roll < 0.6 else other, key=f"bench-{uuid.uuid4()}" if keyed else None)
            self.ops.append(op)
            return op

    def _work(self, n: int) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self.stopping.is_set():
            op = self._next_op()
            while True:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                started = time.monotonic()
                try:
                    status, body = self._send(conn, op)
                except (OSError, http.client.HTTPException) as error:
                    op.attempts.append(Attempt(started, time.monotonic(), None, type(error).__name__))
                    conn.close()
                    conn = None
                    if op.key is None or self.stopping.is_set():
                        op.outcome = "unanswered"
                        break
                    time.sleep(0.05)
                    continue
                op.attempts.append(Attempt(started, time.monotonic(), status))
                if 200 <= status < 300:
                    op.outcome = "acked"
                    op.entry_ids = _entry_ids(op.kind, body)
                    break
                if status == 503 and op.key is not None and not self.stopping.is_set():
                    time.sleep(0.1)
                    continue
                if status == 409 and b"idempotency_key_in_use" in body:
                    # The first try was claimed and then cut off by the crash: the key stays taken until the
                    # claim is abandoned (minutes), so the client cannot learn the outcome now.
                    op.outcome = "unresolved"
                    break
                op.outcome = "unanswered" if status >= 500 else "refused"
                break
        if conn is not None:
            conn.close()

    def _send(self, conn: http.client.HTTPConnection, op: Op) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if op.key:
            headers["Idempotency-Key"] = op.key
        path = "/wallet/deposit" if op.kind == "deposit" else "/wallet/transfer"
        conn.request("POST", path, body=json.dumps(op.body()).encode(), headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.getheader("Idempotent-Replayed") == "true":
            op.replayed = True
        return response.status, data


def _entry_ids(kind: str, body: bytes) -> tuple[int, ...]:
    data = json.loads(body)
    if kind == "deposit":
        return (int(data["transaction"]["id"]),)
    return (int(data["from"]["transaction"]["id"]), int(data["to"]["transaction"]["id"]))


# --- checking the ledger against what the clients were told --------------------------------------------------------

Ledger = list[tuple[int, int, str, int]]  # (id, wallet_id, kind, amount)


def ledger_postgres(url: str) -> tuple[Ledger, int]:
    rows = pg.psql(url, "select id, wallet_id, kind, amount from transactions order by id")
    ledger = []
    for line in rows.splitlines():
        i, w, k, a = line.split("|")
        ledger.append((int(i), int(w), k, int(a)))
    total = int(pg.psql(url, "select coalesce(sum(balance), 0) from wallets").strip())
    return ledger, total


def ledger_sqlite(path: Path) -> tuple[Ledger, int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        ledger = [tuple(row) for row in db.execute("select id, wallet_id, kind, amount from transactions order by id")]
        total = db.execute("select coalesce(sum(balance), 0) from wallets").fetchone()[0]
    return ledger, int(total)  # type: ignore[return-value]


def verify(ops: list[Op], ledger: Ledger, total_balance: int) -> dict[str, object]:
    """Zero lost acknowledged operations, nothing applied twice, both legs of every transfer, money conserved."""
    by_id = {row[0]: row for row in ledger}
    legs = Counter((kind, amount) for _, _, kind, amount in ledger if kind in ("deposit", "transfer_out", "transfer_in"))
    lost, wrong, doubled, half = [], [], [], []
    for op in ops:
        if op.kind == "deposit":
            count = legs[("deposit", op.amount_minor)]
            expected = [(op.wallet, "deposit")]
        else:
            count = legs[("transfer_out", op.amount_minor)]
            if count != legs[("transfer_in", op.amount_minor)]:
                half.append(op.seq)
            expected = [(op.wallet, "transfer_out"), (op.to_wallet, "transfer_in")]
        if count > 1:
            doubled.append(op.seq)
        if op.outcome == "acked":
            if count != 1:
                lost.append(op.seq)
            rows = [by_id.get(entry_id) for entry_id in op.entry_ids]
            if len(rows) != len(expected) or any(
                row is None or (row[1], row[2], row[3]) != (wallet, kind, op.amount_minor)
                for row, (wallet, kind) in zip(rows, expected)
            ):
                wrong.append(op.seq)
        elif op.outcome == "refused" and count != 0:
            wrong.append(op.seq)
    signed = {"opening": 1, "deposit": 1, "transfer_in": 1, "withdrawal": -1, "transfer_out": -1, "closing": -1}
    ledger_total = sum(signed[kind] * amount for _, _, kind, amount in ledger)
    outcomes = Counter(op.outcome for op in ops)
    return {
        "operations": len(ops),
        "acknowledged": outcomes["acked"],
        "unanswered": outcomes["unanswered"],
        "unresolved_keys": outcomes["unresolved"],
        "refused_4xx": outcomes["refused"],
        "replayed": sum(op.replayed for op in ops),
        "lost_acknowledged": len(lost),
        "wrong_entries": len(wrong),
        "applied_twice": len(doubled),
        "half_transfers": len(half),
        "money_conserved": ledger_total == total_balance,
        "ok": not (lost or wrong or doubled or half) and ledger_total == total_balance,
        "examples": {"lost": lost[:5], "wrong": wrong[:5], "doubled": doubled[:5], "half": half[:5]},
    }


def audit(binary: Path, database_url: str) -> dict[str, object]:
    result = run_cli(binary, ["audit"], database_url)
    return {"audit_clean": result.returncode == 0, "audit_output": (result.stdout + result.stderr).strip()[-400:]}


def attempts_5xx(ops: list[Op]) -> Counter[int]:
    return Counter(a.status for op in ops for a in op.attempts if a.status is not None and a.status >= 500)


# --- the scenarios -------------------------------------------------------------------------------------------------

def kill9(binary: Path, database_url: str, log: Path, ledger_of, cycles: int = 2, phase: float = 2.5,
          workers: int = 8) -> dict[str, object]:
    """kill -9 in the middle of the stream, restart on the same port and database, `cycles` times."""
    server = Server(binary, database_url, log)
    server.start()
    wallets = _seed(server, 20)
    stream = Stream(server.port, wallets, workers, api_key=server.api_key)
    downtimes = []
    try:
        stream.start()
        for _ in range(cycles):
            time.sleep(phase)
            killed = time.monotonic()
            server.kill9()
            time.sleep(0.3)
            server.start()
            downtimes.append(round(time.monotonic() - killed, 2))
        time.sleep(phase)
    finally:
        stream.stop()
        server.terminate()
    result = verify(stream.ops, *ledger_of())
    result.update(audit(binary, database_url))
    result["kills"] = cycles
    result["restart_s"] = downtimes
    result["passed"] = bool(result["ok"] and result["audit_clean"] and result["acknowledged"])
    return result


def postgres_restart(binary: Path, log: Path, outage: float = 5.0, workers: int = 8) -> dict[str, object]:
    """Stop the database under load (fast shutdown: sessions are cut), keep it down `outage` seconds (longer than
    revwallet's 3 s pool acquire timeout, so requests must fail rather than wait it out), start it again;
    revwallet is never restarted. Reports how long requests failed and when service came back."""
    cluster = pg.PrivateCluster()
    try:
        cluster.init()
        cluster.start()
        database_url = pg.create_database(cluster.url, "revwallet")
        server = Server(binary, database_url, log)
        server.start()
        wallets = _seed(server, 20)
        stream = Stream(server.port, wallets, workers, api_key=server.api_key)
        try:
            stream.start()
            time.sleep(3)
            down = time.monotonic()
            cluster.stop("fast")
            stopped = time.monotonic()
            time.sleep(outage)
            cluster.start()
            up = time.monotonic()
            time.sleep(5)
            ready = server.ready()
            same_process = server.running()
        finally:
            stream.stop()
            server.terminate()
        failed = [a for op in stream.ops for a in op.attempts if a.status is None or a.status >= 500]
        ok_after = [a.ended for op in stream.ops for a in op.attempts
                    if a.status is not None and 200 <= a.status < 300 and a.ended > up]
        statuses = attempts_5xx(stream.ops)
        waited = [a.ended - a.started for op in stream.ops for a in op.attempts
                  if a.status is not None and 200 <= a.status < 300 and a.started < up and a.ended > down]
        result = {
            "database_down_s": round(up - down, 2),
            "slowest_success_s": round(max(waited), 2) if waited else 0.0,
            "shutdown_s": round(stopped - down, 2),
            "failed_requests": len(failed),
            "failed_503": statuses.get(503, 0),
            "failed_other_5xx": sum(v for k, v in statuses.items() if k != 503),
            "failed_no_answer": sum(1 for a in failed if a.status is None),
            "failure_window_s": round(max(a.ended for a in failed) - min(a.started for a in failed), 2) if failed else 0.0,
            "slowest_failure_s": round(max(a.ended - a.started for a in failed), 2) if failed else 0.0,
            "first_success_after_restart_s": round(min(ok_after) - up, 2) if ok_after else None,
            "readyz_after": ready,
            "revwallet_restarted": not same_process,
        }
        result.update(verify(stream.ops, *ledger_postgres(database_url)))
        result.update(audit(binary, database_url))
        result["passed"] = bool(result["ok"] and result["audit_clean"] and ready and same_process and ok_after
                                and result["failed_other_5xx"] == 0)
        return result
    finally:
        cluster.destroy()


def sigterm(binary: Path, database_url: str, log: Path, ledger_of, workers: int = 16) -> dict[str, object]:
    """SIGTERM under load: the server must stop accepting, answer what it accepted without a 5xx, and exit 0."""
    server = Server(binary, database_url, log)
    server.start()
    wallets = _seed(server, 20)
    stream = Stream(server.port, wallets, workers, api_key=server.api_key)
    try:
        stream.start()
        time.sleep(2)
        signalled = time.monotonic()
        code = server.terminate(timeout=40)
        exited = time.monotonic()
        time.sleep(0.3)
    finally:
        stream.stop()
        if server.running():
            server.kill9()
    answered_after = [a for op in stream.ops for a in op.attempts if a.status is not None and a.ended >= signalled]
    statuses = attempts_5xx(stream.ops)
    result = {
        "exit_code": code,
        "drain_s": round(exited - signalled, 2),
        "answered_after_sigterm": len(answered_after),
        "responses_5xx": sum(statuses.values()),
        "dropped_connections": sum(1 for op in stream.ops for a in op.attempts if a.status is None),
    }
    result.update(verify(stream.ops, *ledger_of()))
    result.update(audit(binary, database_url))
    result["passed"] = bool(result["ok"] and result["audit_clean"] and code == 0 and result["responses_5xx"] == 0)
    return result


def disconnects(binary: Path, database_url: str, log: Path, raw: Path, ledger_of, bursts: int = 12) -> dict[str, object]:
    """Clients that hang up mid-request: short wrk bursts of the mix at 64 connections, each ending with every
    in-flight request cut. A dropped request must not leave a transaction or a lock behind: afterwards a
    deposit, a withdrawal and a transfer must each be answered 2xx promptly, a verified stream of deposits and
    transfers must get no 5xx and lose nothing once the server has closed its connections, and the audit must be
    clean (a pooled connection left inside a transaction would hold locks, or swallow later statements)."""
    from .load import contiguous_range, seed_wallets, wrk_run

    server = Server(binary, database_url, log)
    server.start()
    probes: dict[str, object] = {}
    stale: list[str] = []
    try:
        wallets = seed_wallets(server.port, 100, owner_prefix="disconnect", api_key=server.api_key)
        first, last = contiguous_range(wallets)
        served = []
        for n in range(bursts):
            served.append(int(wrk_run(server.url, "mix.lua", 64, 1, first, last, raw,  # type: ignore[arg-type]
                                      api_key=server.api_key)["requests"]))
        # A pooled connection still inside a transaction a second after the last burst was left there by a cancel.
        stale: list[str] = []
        if database_url.startswith("postgres"):
            time.sleep(1.5)
            stale = pg.stale_transactions(database_url, 1.0)
        # Then clients that check every answer against the ledger. Their amounts start above wrk's 1.00 so the
        # two never share an amount.
        stream = Stream(server.port, wallets, 8, first_seq=101, api_key=server.api_key)
        stream.start()
        time.sleep(3)
        stream.stop()
        for name, path, body in (("deposit", "/wallet/deposit", {"id": first, "amount": "1.00"}),
                                 ("withdraw", "/wallet/withdraw", {"id": first, "amount": "1.00"}),
                                 ("transfer", "/wallet/transfer", {"from_id": first, "to_id": last, "amount": "1.00"})):
            started = time.monotonic()
            try:
                status = http_request(server.port, "POST", path, body, timeout=15, api_key=server.api_key)[0]
            except OSError as error:
                status = f"no answer ({type(error).__name__})"
            probes[name] = {"status": status, "seconds": round(time.monotonic() - started, 2)}
    finally:
        server.terminate()
    result: dict[str, object] = {"bursts": bursts, "served_per_burst": served, "probes": probes,
                                 "idle_in_transaction": stale}
    result.update(verify(stream.ops, *ledger_of()))
    result["responses_5xx"] = sum(attempts_5xx(stream.ops).values())
    result.update(audit(binary, database_url))
    prompt = all(isinstance(p["status"], int) and 200 <= p["status"] < 300 and p["seconds"] < 2  # type: ignore[index]
                 for p in probes.values())
    result["passed"] = bool(prompt and result["ok"] and result["audit_clean"] and result["responses_5xx"] == 0
                            and not stale)
    return result


def _seed(server: Server, count: int) -> list[int]:
    from .load import seed_wallets

    return seed_wallets(server.port, count, owner_prefix="resilience", api_key=server.api_key)
