#!/usr/bin/env python3
"""Statement memory bench (`make bench-statement`): a CSV statement streams with flat server memory.

Builds, on a throwaway PostgreSQL database, a wallet with 200,000 ledger entries (the opening entry through the
API, the rest inserted in one SQL statement with a correct balance chain, some with descriptions holding commas,
quotes and line breaks) and a wallet with 10 entries (all through the API). For each, it resets the server's peak
RSS (VmHWM), streams `GET /wallet/{id}/statement.csv` while parsing it with Python's csv module, then reads the peak
again. Each statement must equal the ledger as the database holds it: opening balance, every entry in id order with
its signed amount, balance after, type, reference and description, closing balance. Prints the figures (and
writes them to bench/results/statement.json); asserts no timing. Bounded: every step has a timeout.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from revbench import pg  # noqa: E402
from revbench.server import API_KEY, Server, http_request  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIG = int(os.environ.get("STATEMENT_ENTRIES", "200000"))
SMALL = 10
HEADER = ["created_at", "entry_id", "type", "amount", "balance_after", "currency", "reference", "description"]
DEBITS = {"withdrawal", "transfer_out", "closing"}


def post(server: Server, path: str, body: dict) -> dict:
    status, text, _ = http_request(server.port, "POST", path, body, api_key=API_KEY, timeout=30)
    if status not in (200, 201):
        raise RuntimeError(f"POST {path}: {status} {text[:200]!r}")
    return json.loads(text)


def cents(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{minor // 100}.{minor % 100:02d}"


def ledger(url: str, wallet: str) -> list[list[str]]:
    """The wallet's entries as the statement should show them, straight from the database, in id order."""
    out = pg.psql(url, f"""copy (
        select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), id, kind, amount,
               balance_after, coalesce(reference, ''), coalesce(description, '')
        from transactions where wallet_id = {int(wallet)} order by id) to stdout with (format csv)""", timeout=300)
    rows = []
    for at, entry_id, kind, amount, after, reference, description in csv.reader(io.StringIO(out, newline="")):
        signed = -int(amount) if kind in DEBITS else int(amount)
        rows.append([at, entry_id, kind, cents(signed), cents(int(after)), "EUR", reference, description])
    return rows


def stream_statement(server: Server, wallet: str) -> tuple[list[list[str]], int, float]:
    """Streams the statement through csv.reader as it arrives; returns its rows, the bytes read and the seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    started = time.monotonic()
    try:
        conn.request("GET", f"/wallet/{wallet}/statement.csv", headers={"Authorization": f"Bearer {API_KEY}"})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"statement of wallet {wallet}: {response.status} {response.read()[:200]!r}")
        if not response.getheader("content-type", "").startswith("text/csv"):
            raise RuntimeError("the statement is not text/csv")
        counted = CountingReader(response)
        text = io.TextIOWrapper(counted, encoding="utf-8", newline="")
        rows = list(csv.reader(text))
        return rows, counted.bytes, time.monotonic() - started
    finally:
        conn.close()


class CountingReader(io.RawIOBase):
    """The response body as a raw stream, counting bytes."""

    def __init__(self, response: http.client.HTTPResponse):
        self.response = response
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - memoryview
        chunk = self.response.read(len(buffer))
        buffer[: len(chunk)] = chunk
        self.bytes += len(chunk)
        return len(chunk)


def check(rows: list[list[str]], expected: list[list[str]], wallet: str) -> None:
    assert rows[0] == HEADER, rows[0]
    opening, entries, closing = rows[1], rows[2:-1], rows[-1]
    assert opening[2] == "opening_balance" and opening[4] == "0.00", opening
    assert len(entries) == len(expected), (len(entries), len(expected))
    for got, want in zip(entries, expected, strict=True):
        assert got == want, f"wallet {wallet}: {got} != {want}"
    assert closing[2] == "closing_balance" and closing[4] == expected[-1][4], closing


def measure(server: Server, url: str, wallet: str) -> dict:
    expected = ledger(url, wallet)
    server.reset_peak_rss()
    before = server.peak_rss_kib()
    rows, size, seconds = stream_statement(server, wallet)
    after = server.peak_rss_kib()
    check(rows, expected, wallet)
    return {"entries": len(expected), "bytes": size, "seconds": round(seconds, 2),
            "peak_rss_before_kib": before, "peak_rss_after_kib": after}


def main() -> int:
    binary = Path(os.environ.get("REVWALLET_BIN", REPO / "target/debug/revwallet")).resolve()
    admin = os.environ.get("REVWALLET_TEST_POSTGRES_URL",
                           "postgres://revwallet_test:revwallet_test@127.0.0.1:5432/postgres")
    pg.wait_ready(admin)
    name = f"revwallet_bench_statement_{os.getpid()}"
    url = pg.create_database(admin, name)
    log = REPO / "bench/results/tmp/statement-server.log"
    server = Server(binary, url, log)
    try:
        server.start()
        small = post(server, "/wallet/", {"owner": "small", "currency": "EUR", "initial_balance": "1.00"})["id"]
        for i in range(SMALL - 1):
            post(server, "/wallet/deposit", {"id": small, "amount": "0.50", "reference": f"s-{i}",
                                             "description": f"small, \"{i}\"\nline two"})
        big = post(server, "/wallet/", {"owner": "big", "currency": "EUR", "initial_balance": "0"})["id"]
        started = time.monotonic()
        # One statement, so the chain is right by construction: entry g deposits g mod 100 + 1 cents.
        pg.psql(url, f"""
            insert into transactions (wallet_id, kind, amount, balance_after, created_at, reference, description)
            select {int(big)}, 'deposit', g % 100 + 1,
                   sum(g % 100 + 1) over (order by g),
                   now() - interval '1 day' + g * interval '1 millisecond',
                   'ref-' || g,
                   case when g % 1000 = 0 then 'row ' || g || ', "quoted"' || chr(10) || 'second line' end
            from generate_series(1, {BIG - 1}) g;
            update wallets set balance = (select balance_after from transactions
                                          where wallet_id = {int(big)} order by id desc limit 1)
            where id = {int(big)};
            analyze transactions;""", timeout=600)
        print(f"bench-statement: {BIG} entries inserted in {time.monotonic() - started:.1f}s")
        results = {"small": measure(server, url, small), "big": measure(server, url, big),
                   "binary": str(binary.relative_to(REPO) if binary.is_relative_to(REPO) else binary)}
    finally:
        server.terminate()
        pg.drop_database(admin, name)
    for label in ("small", "big"):
        r = results[label]
        print(f"  {label:5}: {r['entries']:>7} entries, {r['bytes']:>10} bytes in {r['seconds']:>6}s; "
              f"server peak RSS {r['peak_rss_before_kib']} KiB before, {r['peak_rss_after_kib']} KiB after")
    growth = results["big"]["peak_rss_after_kib"] - results["small"]["peak_rss_after_kib"]
    print(f"  peak RSS of the {BIG}-entry statement minus the {SMALL}-entry one: {growth} KiB")
    out = REPO / "bench/results/statement.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench-statement: both statements equal the ledger; figures in {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
