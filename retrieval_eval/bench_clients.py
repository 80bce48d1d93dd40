"""One process of the concurrency bench's HTTP clients (``python -m retrieval_eval.bench_clients``).

The bench spreads its clients over a few of these processes, so that the load generator's
own Python (one interpreter lock per process) is not what caps the calls per second it can
measure (see ``CLIENT_PROCESSES`` in bench_concurrency.py for the figures).

Protocol over stdin/stdout, one JSON line each way:

1. parent -> child: ``{"url", "tokens": {tenant: token}, "clients": [index, ...],
   "seconds", "mix": [tool, ...], "run", "client": "sdk" | "lean"}``;
2. child -> parent: ``"ready"`` once every client's session is open;
3. parent -> child: ``"go"`` (sent to every process at once);
4. child -> parent: the run's :class:`~retrieval_eval.bench_concurrency.RunStats` as JSON
   (latencies per tool in ms, errors, leaks, the process's CPU seconds during the run).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import anyio


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    from retrieval_eval import bench_concurrency as bc

    stats = bc.RunStats(latencies={t: [] for t in spec["mix"]})
    queries = bc._queries()
    cpu: list[float] = []

    async def wait_for_go() -> None:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        cpu.append(_cpu_seconds())

    start = bc._Start(len(spec["clients"]), float(spec["seconds"]), gate=wait_for_go)
    async with anyio.create_task_group() as group:
        for index in spec["clients"]:
            client = bc._Client(
                index, spec["url"], spec["tokens"], queries, tuple(spec["mix"]), spec["run"]
            )
            group.start_soon(client.run, start, stats, spec.get("client", "sdk"))
    return {
        "latencies": stats.latencies,
        "errors": stats.errors,
        "error_samples": stats.error_samples,
        "leaks": stats.leaks,
        "cpu_s": _cpu_seconds() - (cpu[0] if cpu else 0.0),
    }


def _cpu_seconds() -> float:
    # the process clock, not os.times(): its 10 ms ticks read 0 for a lean client that spent
    # a few milliseconds in a short run on a loaded machine (a flaky "clients 0.00 ms")
    return time.process_time()


def main() -> None:
    for name in ("httpx", "httpx2", "mcp"):  # a log line per request would load the clients
        logging.getLogger(name).setLevel(logging.WARNING)
    spec = json.loads(sys.stdin.readline())
    print(json.dumps(anyio.run(_run, spec)), flush=True)


if __name__ == "__main__":
    main()
