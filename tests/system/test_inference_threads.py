"""How many intra-op threads the models get: the setting when given, else by the machine.

Measured on 2 cores (README "Where the CPU goes"): a second inference thread cost an HTTP
server 16-24% more CPU per call with latency unchanged, and gave ingest nothing. The invariant:
an explicit RETRIEVAL_TORCH_THREADS is used as given; 0 means one thread where the process may
use at most 2 cores and the runtime's own default (0, one per core) beyond; and what the
settings choose is what the loaded models are given.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server import settings as settings_module
from server.retrieval import factory
from server.settings import Settings


@given(cores=st.integers(1, 512), threads=st.integers(0, 256))
def test_an_explicit_count_wins_and_zero_chooses_by_the_cores(cores: int, threads: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings_module, "available_cores", lambda: cores)
        chosen = Settings(torch_threads=threads).inference_threads
    if threads:
        assert chosen == threads
    else:
        assert chosen == (1 if cores <= 2 else 0)


def test_the_cores_are_those_the_process_may_run_on() -> None:
    import os

    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert settings_module.available_cores() == expected


@pytest.mark.parametrize("cores", [2, 8])
def test_the_models_are_given_the_chosen_count(cores: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "available_cores", lambda: cores)
    given_threads: list[int] = []
    monkeypatch.setattr(
        factory, "LazyEmbedder", lambda *a, **kw: given_threads.append(kw["threads"])
    )
    settings = Settings(reranker_model="cross-encoder/x")
    factory.load_embedder(settings, lazy=True)
    reranker = factory.load_reranker(settings)  # not loaded until first used
    assert reranker is not None
    assert [*given_threads, reranker.threads] == [1 if cores == 2 else 0] * 2
