#!/usr/bin/env python3
"""`make bench`: revwallet under load on PostgreSQL and SQLite, its PostgreSQL ceiling (pgbench) in the same run,
and the resilience runs; writes bench/results/ and the figures section of docs/performance.md.

Every revwallet runs with access control on and every client request carries an API key, as in production. The
cost of the key check is measured in the same run: right after each authenticated reads and deposits measurement
on PostgreSQL, a second server on the same database with REVWALLET_AUTH=off serves the same workload to clients
that send no key; the report gives the ratio of the two throughputs.

Exit status: 1 when a run could not be measured or a resilience run failed (correctness); unmet performance
targets are reported, and fail the command only with BENCH_STRICT=1 (absolute figures vary on shared machines).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from revbench import load, pg, report, resilience  # noqa: E402
from revbench.cpu import CpuMeter  # noqa: E402
from revbench.load import Measurement  # noqa: E402
from revbench.server import Server, run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench/results"
RAW = RESULTS / "tmp"  # raw wrk/pgbench output and server logs; git-ignored
DOC = ROOT / "docs/performance.md"
SCRIPTS = {"reads": "read.lua", "deposits": "deposit.lua", "hot": "deposit.lua", "mix": "mix.lua", "keyed": "keyed.lua",
           "zipf": "zipf.lua", "hotpair": "hotpair.lua", "holds": "holds.lua"}
PGBENCH = {"reads": "read", "deposits": "deposit", "hot": "deposit"}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args() -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=env("REVWALLET_BIN", str(ROOT / "target/release/revwallet")))
    # `make bench` exports REVWALLET_TEST_POSTGRES_URL (its default is defined once, in mk/rust.mk).
    p.add_argument("--postgres-url", default=env("BENCH_POSTGRES_URL", env("REVWALLET_TEST_POSTGRES_URL")),
                   help="a database on a server where this role may CREATE DATABASE "
                   "(default: BENCH_POSTGRES_URL, else REVWALLET_TEST_POSTGRES_URL)")
    p.add_argument("--duration", type=int, default=int(env("BENCH_DURATION", "8")), help="seconds per measurement")
    p.add_argument("--clients", default=env("BENCH_CLIENTS", "16,64"))
    p.add_argument("--wallets", type=int, default=int(env("BENCH_WALLETS", "10000")),
                   help="wallets seeded through the API (the Zipf workload skews over all of them)")
    p.add_argument("--pool-size", type=int, default=int(env("BENCH_POOL_SIZE", "0")) or None,
                   help="REVWALLET_DB_POOL_SIZE for the measured server (default: the binary's default)")
    p.add_argument("--only", default=env("BENCH_ONLY", "postgres,sqlite,resilience"),
                   help="comma-separated parts: postgres, sqlite, resilience")
    p.add_argument("--no-doc", action="store_true", help="do not rewrite docs/performance.md")
    args = p.parse_args()
    if not args.postgres_url:
        p.error("no PostgreSQL server: set REVWALLET_TEST_POSTGRES_URL (make bench sets it) or pass --postgres-url")
    return args


def machine(admin_url: str, binary: Path) -> dict[str, str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        memory = "unknown RAM"
    cores = os.cpu_count() or 0

    def out(*command: str) -> str:
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
            return (result.stdout or result.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    settings = {}
    for name in ("server_version", "shared_buffers", "synchronous_commit", "fsync", "wal_sync_method", "max_connections"):
        try:
            settings[name] = pg.psql(admin_url, f"show {name}").strip()
        except RuntimeError:
            settings[name] = "?"
    commit = out("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
    dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "src"], capture_output=True,
                           check=False).returncode != 0
    return {
        "summary": f"{cores} cores ({cpu}), {memory}, Linux {platform.release()}",
        "postgres": f"{settings['server_version']} (shared_buffers {settings['shared_buffers']}, fsync "
                    f"{settings['fsync']}, synchronous_commit {settings['synchronous_commit']}, wal_sync_method "
                    f"{settings['wal_sync_method']}, max_connections {settings['max_connections']})",
        "wrk": out("wrk", "--version").split(" [")[0].replace("debian/", ""),
        "pgbench": out("pgbench", "--version"),
        "revwallet": out(str(binary), "--version"),
        "commit": commit + (" with uncommitted changes in src/" if dirty else ""),
        "python": platform.python_version(),
    }


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.binary = Path(args.binary).resolve()
        self.clients = [int(c) for c in args.clients.split(",")]
        self.measurements: list[Measurement] = []
        self.problems: list[str] = []
        self.admin_url = args.postgres_url
        self.run_id = f"{os.getpid()}"

    # -- helpers -----------------------------------------------------------------------------------------------

    def settle(self, database_url: str | None) -> None:
        """Between measurements: clear the dead row versions the last run left and flush dirty pages, so every
        run starts from the same state whatever ran before it."""
        if database_url:
            stale = pg.stale_transactions(database_url)
            if stale:
                # Reported as a failure, then ended, so the next measurement is not blocked behind its locks.
                self.problems.append(f"revwallet left {len(stale)} pooled connection(s) idle in transaction after "
                                     f"the previous run: {'; '.join(stale[:3])}")
                log(f"  FOUND {len(stale)} revwallet session(s) idle in transaction: {stale[0]}; ending them")
                pg.terminate_stale(database_url)
            pg.psql(database_url, "vacuum (analyze) wallets")
            pg.checkpoint(database_url)
        time.sleep(1)

    def measure_wrk(self, server: Server, target: str, workload: str, clients: int, ids: tuple[int, int],
                    database_url: str | None) -> None:
        """One wrk run; the clients send the server's API key (none to a server with auth off)."""
        first, last = ids
        if workload == "hot":
            last = first
        self.settle(database_url)
        server.reset_peak_rss()
        raw = RAW / f"wrk-{target}-{workload}-{clients}.txt"
        meter = CpuMeter(server.pid)
        try:
            data = load.wrk_run(server.url, SCRIPTS[workload], clients, self.args.duration, first, last, raw,
                                api_key=server.api_key)
            m = load.wrk_measurement(target, workload, clients, self.args.duration, data)
            m.extra.update(meter.stop())
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            m = Measurement(target, workload, clients, self.args.duration, error=str(error)[:200])
            self.problems.append(f"{target} {workload} @{clients}: {error}")
        rss = server.peak_rss_kib()
        m.peak_rss_mib = None if rss is None else round(rss / 1024, 1)
        if not server.running():
            m.error = "revwallet exited during the run"
            self.problems.append(f"{target} {workload} @{clients}: revwallet exited (see {server.log_path})")
        self.record(m)

    def measure_pgbench(self, database_url: str, workload: str, clients: int, ids: tuple[int, int]) -> None:
        first, last = ids
        if workload == "hot":
            last = first
        for target, variant in (("pgbench-revwallet-sql", "revwallet"), ("pgbench-textbook", "textbook")):
            self.settle(database_url)
            script = f"{PGBENCH[workload]}_{variant}.sql"
            meter = CpuMeter(None)
            m = load.pgbench_run(database_url, script, clients, self.args.duration, first, last,
                                 RAW / f"pgbench-{variant}-{workload}-{clients}")
            m.extra.update(meter.stop())
            m.target, m.workload = target, workload
            if m.error:
                self.problems.append(f"{target} {workload} @{clients}: {m.error}")
            self.record(m)

    def record(self, m: Measurement) -> None:
        self.measurements.append(m)
        if m.target.startswith("revwallet") and not m.error and (m.non_2xx or m.socket_errors):
            # Nothing in these workloads should be refused: an error answer here is a fault, not a figure.
            self.problems.append(f"{m.target} {m.workload} @{m.clients}: {m.non_2xx} non-2xx answers, "
                                 f"{m.socket_errors} socket errors ({m.rps:,.0f} requests/s, p99 {m.p99_ms} ms)")
        if m.error:
            log(f"  {m.target:24} {m.workload:8} @{m.clients:<3} FAILED: {m.error}")
        else:
            rss = "" if m.peak_rss_mib is None else f"  rss {m.peak_rss_mib} MiB"
            cores = "/".join("–" if m.extra.get(k) is None else str(m.extra[k])
                             for k in ("cores_revwallet", "cores_load_generator", "cores_machine"))
            log(f"  {m.target:24} {m.workload:8} @{m.clients:<3} {m.rps:>9,.0f}/s  p50 {m.p50_ms} ms  "
                f"p99 {m.p99_ms} ms  non-2xx {m.non_2xx}{rss}  cores {cores}")

    def warm_up(self, server: Server, ids: tuple[int, int]) -> None:
        """Opens every pooled connection and prepares the statements before anything is measured."""
        load.wrk_run(server.url, "mix.lua", 16, 3, ids[0], ids[1], RAW / "wrk-warm-up.txt", api_key=server.api_key)

    def measure_auth_off(self, database_url: str, workload: str, clients: int, ids: tuple[int, int]) -> None:
        """The same workload against a server with REVWALLET_AUTH=off on the same database, right after the
        authenticated run: the baseline of the key check's cost. Started for this one run (and warmed up like
        the measured server) so its pool holds no connections while pgbench runs."""
        server = Server(self.binary, database_url, RAW / "revwallet-postgres-auth-off.log",
                        pool_size=self.args.pool_size, auth=False)
        try:
            server.start()
            self.warm_up(server, ids)
            self.measure_wrk(server, report.AUTH_OFF_TARGET, workload, clients, ids, database_url)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            self.record(Measurement(report.AUTH_OFF_TARGET, workload, clients, self.args.duration,
                                    error=str(error)[:200]))
            self.problems.append(f"{report.AUTH_OFF_TARGET} {workload} @{clients}: {error}")
        finally:
            server.terminate()

    def audit(self, name: str, database_url: str) -> None:
        result = run_cli(self.binary, ["audit"], database_url, timeout=300)
        if result.returncode != 0:
            self.problems.append(f"revwallet audit after the {name} load is not clean: {result.stdout[-300:]}"
                                 f"{result.stderr[-300:]}")
        log(f"  audit after the {name} load: {'clean' if result.returncode == 0 else 'NOT CLEAN'}")

    # -- the parts ---------------------------------------------------------------------------------------------

    def postgres(self) -> None:
        name = f"revwallet_bench_{self.run_id}"
        database_url = pg.create_database(self.admin_url, name)
        log(f"PostgreSQL: database {name}; revwallet and pgbench take turns on it")
        server = Server(self.binary, database_url, RAW / "revwallet-postgres.log", pool_size=self.args.pool_size)
        try:
            server.start()
            self.pool_size = server.metric("revwallet_db_pool_max_connections")
            wallets = load.seed_wallets(server.port, self.args.wallets, api_key=server.api_key)
            ids = load.contiguous_range(wallets)
            log(f"  seeded wallets {ids[0]}..{ids[1]} (hot wallet {ids[0]}); pool size {self.pool_size}")
            self.warm_up(server, ids)
            for workload in report.WORKLOADS:
                for clients in self.clients:
                    self.measure_wrk(server, "revwallet-postgres", workload, clients, ids, database_url)
                    if workload in report.AUTH_COST_WORKLOADS:
                        self.measure_auth_off(database_url, workload, clients, ids)
                    if workload in PGBENCH:
                        self.measure_pgbench(database_url, workload, clients, ids)
            server.terminate()
            self.unbatched(database_url, ids, report.UNBATCHED_POSTGRES)
            self.audit("PostgreSQL", database_url)
        finally:
            server.terminate()
            pg.drop_database(self.admin_url, name)

    def sqlite(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="sqlite-", dir=RAW))
        database_url = f"sqlite://{directory / 'bench.db'}"
        log(f"SQLite: {directory / 'bench.db'}")
        server = Server(self.binary, database_url, RAW / "revwallet-sqlite.log", pool_size=self.args.pool_size)
        try:
            server.start()
            ids = load.contiguous_range(load.seed_wallets(server.port, self.args.wallets, api_key=server.api_key))
            self.warm_up(server, ids)
            for workload in report.WORKLOADS:
                for clients in self.clients:
                    self.measure_wrk(server, "revwallet-sqlite", workload, clients, ids, None)
            server.terminate()
            self.unbatched(database_url, ids, report.UNBATCHED_SQLITE)
            self.audit("SQLite", database_url)
        finally:
            server.terminate()
            shutil.rmtree(directory, ignore_errors=True)

    def unbatched(self, database_url: str, ids: tuple[int, int], target: str) -> None:
        """The write workloads again on the same database with REVWALLET_WRITE_BATCHING=false: group commit's
        baseline, at the highest client count."""
        server = Server(self.binary, database_url, RAW / f"{target}.log", pool_size=self.args.pool_size,
                        extra_env={"REVWALLET_WRITE_BATCHING": "false"})
        clients = max(self.clients)
        try:
            server.start()
            self.warm_up(server, ids)
            for workload in report.BATCHING_WORKLOADS:
                self.measure_wrk(server, target, workload, clients, ids, database_url if "postgres" in target else None)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            self.problems.append(f"{target}: {error}")
        finally:
            server.terminate()

    def resilience(self) -> dict[str, dict]:
        out: dict[str, dict] = {}

        def attempt(name: str, run) -> None:  # noqa: ANN001
            log(f"resilience: {name}")
            try:
                out[name] = run()
            except Exception as error:  # noqa: BLE001 - a harness failure is reported as a failed run
                traceback.print_exc()
                out[name] = {"passed": False, "error": f"{type(error).__name__}: {error}"[:300]}
            result = out[name]
            log(f"  {'pass' if result.get('passed') else 'FAIL'}: {report.resilience_figures(name, result)}")
            if not result.get("passed"):
                self.problems.append(f"resilience run {name} failed")

        def on_postgres(name: str, scenario) -> dict:  # noqa: ANN001
            database = f"revwallet_bench_{self.run_id}_{name}"
            url = pg.create_database(self.admin_url, database)
            try:
                return scenario(self.binary, url, RAW / f"revwallet-{name}.log",
                                lambda: resilience.ledger_postgres(url))
            finally:
                pg.drop_database(self.admin_url, database)

        def kill9_sqlite() -> dict:
            directory = Path(tempfile.mkdtemp(prefix="sqlite-kill-", dir=RAW))
            path = directory / "kill.db"
            try:
                return resilience.kill9(self.binary, f"sqlite://{path}", RAW / "revwallet-kill9-sqlite.log",
                                        lambda: resilience.ledger_sqlite(path))
            finally:
                shutil.rmtree(directory, ignore_errors=True)

        def disconnects_sqlite() -> dict:
            directory = Path(tempfile.mkdtemp(prefix="sqlite-disconnect-", dir=RAW))
            try:
                path = directory / "d.db"
                return resilience.disconnects(self.binary, f"sqlite://{path}", RAW / "revwallet-disconnects-sqlite.log",
                                              RAW / "wrk-disconnects.txt", lambda: resilience.ledger_sqlite(path))
            finally:
                shutil.rmtree(directory, ignore_errors=True)

        attempt("kill9_postgres", lambda: on_postgres("kill9", resilience.kill9))
        attempt("kill9_sqlite", kill9_sqlite)
        attempt("postgres_restart", lambda: resilience.postgres_restart(self.binary, RAW / "revwallet-pg-restart.log"))
        attempt("sigterm_postgres", lambda: on_postgres("sigterm", resilience.sigterm))
        attempt("disconnects_postgres", lambda: on_postgres(
            "disconnects", lambda binary, url, log, ledger: resilience.disconnects(
                binary, url, log, RAW / "wrk-disconnects.txt", ledger)))
        attempt("disconnects_sqlite", disconnects_sqlite)
        return out


def preflight(bench: Bench) -> None:
    missing = [tool for tool in ("wrk", "pgbench", "psql", "pg_isready") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"bench: FAILED: {', '.join(missing)} not installed (run `make deps-bench`)")
    if not os.access(bench.binary, os.X_OK):
        sys.exit(f"bench: FAILED: no revwallet binary at {bench.binary} (run `make release`, or set REVWALLET_BIN)")
    pg.wait_ready(bench.admin_url, timeout=20)


def main() -> int:
    args = parse_args()
    bench = Bench(args)
    parts = set(args.only.split(","))
    preflight(bench)
    RAW.mkdir(parents=True, exist_ok=True)
    for old_log in RAW.glob("revwallet-*.log"):  # server logs are appended across restarts within one run only
        old_log.unlink()
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    log(f"{args.duration} s per measurement, clients {bench.clients}, {args.wallets} wallets, binary {bench.binary}")
    bench.pool_size = None
    resilience_results: dict[str, dict] = {}
    # Each part runs even if an earlier one broke: one failure should not hide the others' figures.
    for part, run in (("postgres", bench.postgres), ("sqlite", bench.sqlite), ("resilience", bench.resilience)):
        if part not in parts:
            continue
        try:
            result = run()
            if part == "resilience":
                resilience_results = result
        except Exception as error:  # noqa: BLE001
            traceback.print_exc()
            bench.problems.append(f"the {part} part stopped: {type(error).__name__}: {str(error)[:300]}")

    measurements = [m.to_dict() for m in bench.measurements]
    ratio_rows = report.ratios(measurements, bench.clients)
    auth_cost_rows = report.auth_cost(measurements, bench.clients)
    batching_rows = report.batching(measurements, bench.clients)
    results = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "wall_s": round(time.monotonic() - clock, 1),
        "machine": machine(bench.admin_url, bench.binary),
        "config": {
            "duration_s": args.duration, "clients": bench.clients, "wallets": args.wallets,
            "pool_size": bench.pool_size, "wrk_threads": 2, "pgbench": "-M prepared -j 2",
            "parts": sorted(parts),
        },
        "measurements": measurements,
        "ratios": ratio_rows,
        "auth_cost": auth_cost_rows,
        "batching": batching_rows,
        "targets": report.targets(measurements, ratio_rows, bench.clients, auth_cost_rows, batching_rows)
        if measurements else [],
        "resilience": resilience_results,
        "problems": bench.problems,
    }
    table = report.markdown(results)
    complete = parts >= {"postgres", "sqlite", "resilience"}
    # A partial run (BENCH_ONLY) writes to the git-ignored tmp/ directory, never over the full results.
    where = RESULTS if complete else RAW
    stem = "latest" if complete else "partial"
    (where / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (where / f"{stem}.md").write_text(f"# revwallet benchmark ({stem} run)\n\n{table}")
    if measurements:
        (where / ("chart.svg" if complete else "partial-chart.svg")).write_text(report.svg(results))
    # The doc shows the latest complete run, failures included: it must never look better than the run was.
    if complete and not args.no_doc and measurements:
        report.update_doc(DOC, results, table)
    print()
    print(table)
    unmet = [t["name"] for t in results["targets"] if not t["met"]]
    log(f"done in {results['wall_s']:.0f} s; results in {where.relative_to(ROOT)}/{stem}.*")
    if unmet:
        log("targets NOT met: " + "; ".join(unmet))
    if bench.problems:
        for problem in bench.problems:
            print(f"bench: FAILED: {problem}", file=sys.stderr)
        return 1
    if unmet and os.environ.get("BENCH_STRICT") == "1":
        print("bench: FAILED: performance targets not met (BENCH_STRICT=1)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
