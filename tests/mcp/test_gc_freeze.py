"""Freezing the long-lived heap once the models are loaded (server/gc_freeze.py).

Invariant: after a server's models load, every object alive then sits in the permanent
generation, so a full garbage collection under load walks only what requests allocated since
(a stall of 0.3 s per pass otherwise); and it waits for the load without starting it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from server.gc_freeze import freeze_when_loaded
from server.runtime import ServerRuntime


@pytest.fixture
def unfrozen_afterwards() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as before


def test_long_lived_objects_are_frozen_once_the_models_load(
    runtime: ServerRuntime, unfrozen_afterwards: None
) -> None:
    alive_before = len(gc.get_objects())
    thread = freeze_when_loaded(runtime, poll_seconds=0.05)
    thread.join(timeout=0.3)
    if not runtime.model_status().loaded:
        assert thread.is_alive() and gc.get_freeze_count() == 0  # waits, never starts the load
    runtime.acquire()
    try:
        runtime.embedder()  # the models are loaded (the fixture's embedder, handed over)
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert gc.get_freeze_count() >= alive_before // 2
        assert len(gc.get_objects()) < gc.get_freeze_count() // 10  # what a full pass walks
        searcher_state = runtime.retrieval()
        assert searcher_state is runtime.retrieval()  # the runtime serves on as before
    finally:
        runtime.release()
