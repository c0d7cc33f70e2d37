"""Percentiles and wallet ranges of the load runners."""

import pytest

from revbench.load import contiguous_range, percentile, wrk_measurement


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
