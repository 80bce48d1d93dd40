"""The concurrency bench: its verdicts, and one short real run (servers, HTTP clients)."""

from __future__ import annotations

import pytest

from retrieval_eval.bench_concurrency import LEVELS, RunStats, _soak_rows, run_concurrency_bench


def _soak(samples: list[tuple[float, float]]) -> str:
    stats = RunStats(seconds=samples[-1][0], rss_mb=samples)
    return dict(_soak_rows(stats))["soak RSS: first-minute peak / later peak"]


def test_soak_rss_is_bounded_only_when_it_stays_within_the_first_minute_peak() -> None:
    assert "bounded" in _soak([(1.0, 800.0), (59.0, 900.0), (61.0, 850.0), (299.0, 900.0)])
    assert "GREW by 1.0 MB" in _soak([(1.0, 800.0), (59.0, 900.0), (61.0, 850.0), (299.0, 901.0)])
    assert "GREW by 0.4 MB" in _soak([(1.0, 800.0), (59.0, 900.0), (120.0, 900.4)])


@pytest.mark.slow
def test_a_short_concurrency_run_has_no_errors_and_no_leaks() -> None:
    rows = run_concurrency_bench(seconds=2.0)
    runs = [value for label, value in rows if label.split(":")[0] in ("before", "after")]
    assert len(runs) == 2 * len(LEVELS) + 1  # + the list_sources-only run
    for value in runs:
        assert "errors 0 " in value and "leaks 0 " in value, value
        assert float(value.split("calls/s")[0]) > 0
    labels = [label for label, _ in rows]
    assert f"throughput at {max(LEVELS)} clients, after / before" in labels
    # the clients run in their own processes, and both sides' CPU is measured
    cpu = [value for label, value in rows if label.strip() == "CPU per call"]
    assert len(cpu) == len(runs) + len(LEVELS)  # + the one-torch-thread server's runs
    for value in cpu:
        server, clients = (float(part.split()[-2]) for part in value.split(", "))
        assert server > 0 and clients > 0, value
    assert any(label.startswith("calls/s") and "cores allow" in label for label in labels)
