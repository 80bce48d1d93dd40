"""Helpers for the watch tests: polling with a deadline, atomic writes, search and manifest."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from server.ingest.manifest import load_manifest
from server.retrieval.factory import Retrieval
from server.retrieval.types import SearchRequest

T = TypeVar("T")
DEADLINE_SECONDS = 90.0
"""Generous: two shared cores, a model embedding each change; the poll returns as soon as the
condition holds, so a fast machine never waits this long."""


def poll(check: Callable[[], T | None], what: str, deadline: float = DEADLINE_SECONDS) -> T:
    """``check()`` until it returns something truthy; AssertionError naming ``what`` after
    ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def write_atomic(path: Path, text: str) -> None:
    """An editor's save: write a temporary file next to it, then rename it over the original."""
    tmp = path.with_name(path.name + ".tmp~")
    tmp.write_text(text)
    os.replace(tmp, path)


def hits_text(retrieval: Retrieval, tenant: str, query: str, domain: str = "docs") -> str:
    """Every hit's source and text for ``query``, joined (what a caller would read)."""
    response = retrieval.searcher.search(
        SearchRequest(query=query, domain=domain, tenant=tenant, top_k=10, mode="hybrid")
    )
    return "\n".join(f"{h.source}: {h.text}" for h in response.hits)


def sources(retrieval: Retrieval, tenant: str, domain: str = "docs") -> set[str]:
    """The stored sources of one tenant and domain."""
    collection = retrieval.settings.domains[domain].collection  # type: ignore[index]
    return set(load_manifest(retrieval.store, collection, tenant))


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` (a fixed identity, no user config) and return stdout."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(root),
    }
    done = subprocess.run(
        ["git", "-C", str(root), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()
