"""Percentiles and wallet ranges of the load runners."""

import pytest

from pathlib import Path

from revbench import server
from revbench.load import contiguous_range, percentile, wrk_env, wrk_measurement


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7], 99) == 7
    assert percentile([], 50) is None


def test_wallet_ids_with_a_hole_are_refused():
    assert contiguous_range([1, 2, 3]) == (1, 3)
    with pytest.raises(RuntimeError):
        contiguous_range([1, 2, 4])


def test_a_wrk_result_becomes_a_measurement_in_milliseconds():
    data = {"requests": 5000, "duration_us": 10_000_000, "non_2xx": 2,
            "socket_errors": {"connect": 0, "read": 1, "write": 0, "timeout": 0},
            "latency_us": {"mean": 900.0, "p50": 800, "p90": 1500, "p99": 4200, "p999": 9000, "max": 12000}}
    m = wrk_measurement("revwallet-postgres", "reads", 16, 10, data)
    assert (m.rps, m.p50_ms, m.p99_ms, m.non_2xx, m.socket_errors) == (500.0, 0.8, 4.2, 2, 1)


def test_wrk_gets_the_api_key_through_its_environment_only_when_there_is_one(monkeypatch):
    monkeypatch.setenv("BENCH_API_KEY", "rw_left-over-from-the-shell")
    assert wrk_env(1, 10, "rw_" + "a" * 64)["BENCH_API_KEY"] == "rw_" + "a" * 64
    # The auth-off baseline's clients send no key, whatever the shell had.
    assert "BENCH_API_KEY" not in wrk_env(1, 10, None)


def test_servers_run_with_access_control_and_the_runs_bootstrap_key_unless_told_off(monkeypatch):
    monkeypatch.setenv("REVWALLET_BOOTSTRAP_ADMIN_KEY", "rw_from-the-shell")
    monkeypatch.setenv("REVWALLET_AUTH", "off")
    on = server.Server(Path("revwallet"), "sqlite://x.db", Path("x.log"))
    assert on.env()["REVWALLET_AUTH"] == "api-key"
    assert on.env()["REVWALLET_BOOTSTRAP_ADMIN_KEY"] == server.API_KEY == on.api_key
    assert server.API_KEY.startswith("rw_") and len(server.API_KEY) == 3 + 64
    off = server.Server(Path("revwallet"), "sqlite://x.db", Path("x.log"), auth=False)
    assert off.env()["REVWALLET_AUTH"] == "off" and "REVWALLET_BOOTSTRAP_ADMIN_KEY" not in off.env()
    assert off.api_key is None


def test_requests_carry_the_key_as_a_bearer_token():
    assert server.auth_headers("rw_abc") == {"Authorization": "Bearer rw_abc"}
    assert server.auth_headers(None) == {}


def test_every_wrk_script_sends_the_key_headers():
    scripts = Path(__file__).resolve().parents[1] / "wrk"
    for script in ("read.lua", "deposit.lua", "mix.lua"):
        text = (scripts / script).read_text()
        for line in text.splitlines():
            if "wrk.format(" in line:
                assert "r.headers" in line or "r.json_headers" in line, f"{script}: {line.strip()} sends no key"
    assert 'os.getenv("BENCH_API_KEY")' in (scripts / "report.lua").read_text()
