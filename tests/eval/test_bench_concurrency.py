"""The concurrency bench: its verdicts, and one short real run (servers, HTTP clients)."""

from __future__ import annotations

import pytest

from retrieval_eval.bench_concurrency import (
    LEAN_LEVELS,
    LEVELS,
    MIX,
    RunStats,
    ServerProcess,
    _Client,
    _queries,
    _run_spec,
    _soak_rows,
    run_concurrency_bench,
)


def _soak(samples: list[tuple[float, float]]) -> str:
    stats = RunStats(seconds=samples[-1][0], rss_mb=samples)
    return dict(_soak_rows(stats))["soak RSS: first-minute peak / later peak"]


def test_soak_rss_is_bounded_only_when_it_stays_within_the_first_minute_peak() -> None:
    assert "bounded" in _soak([(1.0, 800.0), (59.0, 900.0), (61.0, 850.0), (299.0, 900.0)])
    assert "GREW by 1.0 MB" in _soak([(1.0, 800.0), (59.0, 900.0), (61.0, 850.0), (299.0, 901.0)])
    assert "GREW by 0.4 MB" in _soak([(1.0, 800.0), (59.0, 900.0), (120.0, 900.4)])


def test_no_query_repeats_over_the_runs_against_one_server() -> None:
    """A server keeps its query cache from one run (level, soak) to the next: the same client
    numbers of two runs must not ask the same queries, or the later run measures cache hits
    (the 16-client level found a quarter of its searches cached by the 4-client level's)."""
    server = ServerProcess(None, "http://127.0.0.1:1/mcp", {"tenant-a": "a", "tenant-b": "b"})  # type: ignore[arg-type]
    queries = _queries()
    asked: list[str] = []
    for clients in LEVELS:
        spec = _run_spec(server, 1.0, MIX)
        for index in range(clients):
            client = _Client(index, spec["url"], spec["tokens"], queries, MIX, spec["run"])
            asked += [client.arguments("doc_search")["query"] for _ in range(300)]
    assert len(asked) == len(set(asked))


@pytest.mark.slow
def test_a_short_concurrency_run_has_no_errors_and_no_leaks() -> None:
    rows = run_concurrency_bench(seconds=2.0)
    runs = [value for label, value in rows if label.split(":")[0] in ("before", "after")]
    # SDK clients at every level, lean clients at LEAN_LEVELS, + the list_sources-only run
    assert len(runs) == 2 * len(LEVELS) + 2 * len(LEAN_LEVELS) + 1
    for value in runs:
        assert "errors 0 " in value and "leaks 0 " in value, value
        assert float(value.split("calls/s")[0]) > 0
    labels = [label for label, _ in rows]
    for clients in ("SDK clients", "lean clients"):
        assert f"throughput at {max(LEVELS)} {clients}, after / before" in labels
    # the clients run in their own processes, and both sides' CPU is measured
    cpu = [value for label, value in rows if label.strip() == "CPU per call"]
    assert len(cpu) == len(runs) + len(LEVELS) + len(LEAN_LEVELS)  # + the 1-thread server's
    for value in cpu:
        server, clients = (float(part.split()[-2]) for part in value.split(", "))
        assert server > 0 and clients > 0, value
    assert any(label.startswith("calls/s") and "cores allow" in label for label in labels)
